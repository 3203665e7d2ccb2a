/* iam/iam.h -- identities and their permissions (AWS IAM): roles, users,
 * their access keys, inline and customer managed policies, and the policy
 * language's evaluator that decides one request.
 *
 * Layout of DATA/iam/: an LMDB environment; keys "role/NAME", "user/NAME"
 * and "policy/NAME", values JSON (policy documents as text, access keys'
 * secrets inside their user's record). Everything is also kept in memory:
 * an authorization is a hash lookup and a walk over parsed documents,
 * never a read from disk.
 *
 * Threads: every function here is safe to call from many threads at once;
 * writers are serialised, readers never wait for an LMDB commit.
 * A write returns only after its LMDB commit (durable), and memory changes
 * only after that commit succeeded.
 *
 * Wire formats are the caller's (api/iam.c): entities come back as JSON
 * objects in IAM's member names (RoleName, Arn, CreateDate, ...), owned by
 * the caller (json_decref).
 */
#ifndef TARN_IAM_IAM_H
#define TARN_IAM_IAM_H

#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define IAM_ACCOUNT_ID "000000000000"
#define IAM_MAX_ROLE_INLINE 10240   /* a role's inline policies, all together (IAM's) */
#define IAM_MAX_USER_INLINE 2048    /* a user's inline policies, all together (IAM's) */
#define IAM_MAX_MANAGED 6144        /* one managed policy document (IAM's) */
#define IAM_MAX_TRUST 2048          /* AssumeRolePolicyDocument (IAM's default quota) */
#define IAM_MAX_ATTACHED 20         /* managed policies per role or user */
#define IAM_MAX_KEYS 2              /* access keys per user (IAM's) */
#define IAM_MAX_ENTITIES 5000       /* roles, users, policies: each */
#define IAM_SECRET_MAX 64           /* an access key's secret, with NUL */

typedef struct iam_system iam_system;

/* Opens (creating) DATA/iam and loads it. */
int iam_system_open(const char *data_dir, iam_system **out, err *e);
/* Accepts NULL; returns NULL. */
iam_system *iam_system_close(iam_system *s);

/* ---- the policy language (policy.c) ---- */

enum iam_decision {
  IAM_IMPLICIT_DENY = 0,  /* no statement allows */
  IAM_ALLOW,              /* a statement allows, none denies */
  IAM_EXPLICIT_DENY       /* a statement denies: wins over every Allow */
};

/* What conditions may test about the request. NULL: the key is absent. */
typedef struct iam_context {
  const char *source_ip;      /* aws:SourceIp (text form), NULL on a Unix socket */
  bool secure_transport;      /* aws:SecureTransport */
  const char *s3_prefix;      /* s3:prefix (ListBucket's prefix parameter) */
  const char *username;       /* aws:username (users only) */
} iam_context;

/* Parses and validates an identity-based policy document (Version,
 * Statement as object or array, Sid, Effect, Action/NotAction,
 * Resource/NotResource, Condition with StringEquals, StringNotEquals,
 * StringLike, StringNotLike, IpAddress, NotIpAddress, Bool). On success
 * *out is the parsed document (the caller's). ERR_MALFORMED_POLICY with a
 * message that names what is wrong. */
int iam_policy_parse(const char *text, size_t len, json_t **out, err *e);

/* Decides action (service:Operation) on resource (an ARN, or "*") over
 * the given parsed documents, as IAM does within one account: an explicit
 * Deny wins, else any Allow, else denied. */
enum iam_decision iam_policy_evaluate(json_t *const *docs, size_t ndocs, const char *action,
                                      const char *resource, const iam_context *ctx);

/* IAM's wildcard match: '*' any run, '?' one character; nocase for
 * actions. */
bool iam_wildcard_match(const char *pattern, const char *s, bool nocase);

/* ---- who may do what ---- */

/* Decides for a role by its ARN (arn:aws:iam::ACCOUNT:role/[PATH/]NAME):
 * *known tells whether tarn has that role (when not, the decision is
 * IAM_IMPLICIT_DENY and the caller applies its default). */
enum iam_decision iam_role_decide(iam_system *s, const char *role_arn, const char *action,
                                  const char *resource, const iam_context *ctx, bool *known);
/* Decides for a user by name (an unknown user: IAM_IMPLICIT_DENY). */
enum iam_decision iam_user_decide(iam_system *s, const char *user, const char *action,
                                  const char *resource, const iam_context *ctx);
/* The keyring: true and secret (and user, 65 bytes) filled when access_key
 * is an active key of a user. */
bool iam_key_lookup(iam_system *s, const char *access_key, char secret[IAM_SECRET_MAX],
                    char user[65]);

/* ---- entities (store.c). Kinds: "role", "user". ---- */

/* Roles. */
int iam_role_create(iam_system *s, const char *name, const char *path, const char *trust,
                    const char *description, json_t **out, err *e);
int iam_role_get(iam_system *s, const char *name, json_t **out, err *e);
/* ERR_DELETE_CONFLICT while the role has inline or attached policies. */
int iam_role_delete(iam_system *s, const char *name, err *e);
/* Every role (or user), by name: a new array. */
json_t *iam_entity_list(iam_system *s, const char *kind);

/* Users. */
int iam_user_create(iam_system *s, const char *name, const char *path, json_t **out, err *e);
int iam_user_get(iam_system *s, const char *name, json_t **out, err *e);
/* ERR_DELETE_CONFLICT while the user has access keys or policies. */
int iam_user_delete(iam_system *s, const char *name, err *e);

/* Access keys: the new key's record with its SecretAccessKey. */
int iam_key_create(iam_system *s, const char *user, json_t **out, err *e);
int iam_key_delete(iam_system *s, const char *user, const char *access_key, err *e);
/* The user's keys (without secrets): a new array. */
int iam_key_list(iam_system *s, const char *user, json_t **out, err *e);

/* Inline policies of a role or user. */
int iam_inline_put(iam_system *s, const char *kind, const char *entity, const char *policy,
                   const char *doc, err *e);
/* *doc: the document's text (a new string). */
int iam_inline_get(iam_system *s, const char *kind, const char *entity, const char *policy,
                   json_t **doc, err *e);
int iam_inline_delete(iam_system *s, const char *kind, const char *entity, const char *policy,
                      err *e);
/* The names, sorted: a new array. */
int iam_inline_list(iam_system *s, const char *kind, const char *entity, json_t **out, err *e);

/* Customer managed policies, by ARN. */
int iam_policy_create(iam_system *s, const char *name, const char *path, const char *doc,
                      const char *description, json_t **out, err *e);
int iam_policy_get(iam_system *s, const char *arn, json_t **out, err *e);
/* *doc: the document's text. */
int iam_policy_document(iam_system *s, const char *arn, json_t **doc, err *e);
/* ERR_DELETE_CONFLICT while attached. */
int iam_policy_delete(iam_system *s, const char *arn, err *e);
json_t *iam_policy_list(iam_system *s);
int iam_attach(iam_system *s, const char *kind, const char *entity, const char *arn, err *e);
int iam_detach(iam_system *s, const char *kind, const char *entity, const char *arn, err *e);
/* [{PolicyName, PolicyArn}]: a new array. */
int iam_attached_list(iam_system *s, const char *kind, const char *entity, json_t **out,
                      err *e);

#endif
