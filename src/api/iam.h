/* api/iam.h -- access control at the API edge: the IAM endpoint (query
 * protocol, service "iam") and the authorizer every service asks before it
 * does anything for a caller who is not the account root.
 *
 * Who is who (by the request's access key):
 *   root      the server's own key (http_req.admin): everything, no policy
 *             is evaluated (the fast path: one branch);
 *   function  a key derived for a live function (fn_credentials_lookup):
 *             its role's policies when tarn knows the role; else the
 *             default below, or nothing under strict IAM;
 *   user      an IAM user's access key: the user's policies;
 *   anyone else is refused.
 * The default for a function whose role tarn does not know: the data
 * planes (S3 object reads, writes, deletes and listings; SQS send, receive,
 * delete; SNS publish; lambda:InvokeFunction), never a control plane, the
 * /_tarn/ endpoints or IAM.
 *
 * A state machine acts as its role (api_authorize_role): a role tarn knows
 * is enforced on every service call the engine makes for it; a role tarn
 * does not know gets the same default (plus Athena's query actions), or
 * nothing under strict IAM. So do a Batch Operations job (its RoleArn), a
 * delivery stream (its destination's RoleARN) and a crawler (its Role;
 * api_authorize_role_also: an unknown one keeps glue:*), through the
 * authorize callbacks src/main.c gives their parts. Passing a role (CreateFunction,
 * Create/UpdateStateMachine) needs iam:PassRole on it.
 *
 * A service's hook, once per request where its operation and resource are
 * known (after routing, before doing anything):
 *   if ((rc = api_authorize(r, "s3:GetObject", "arn:aws:s3:::b/k", e)) != 0) return rc;
 * It answers ERR_DENIED with IAM's message ("User: ARN is not authorized to
 * perform: ACTION on resource: RESOURCE"), for the service's error shape.
 */
#ifndef TARN_API_IAM_H
#define TARN_API_IAM_H

#include "base/err.h"
#include "fn/fn.h"
#include "http/http.h"
#include "iam/iam.h"

#include <stdbool.h>

#define API_ACCOUNT_ID "000000000000"
#define API_REGION "us-east-1"

/* What the authorizer consults (borrowed; NULLs detach). strict: a
 * function whose role tarn does not know gets nothing. root_key: the
 * server's own access key (for api_authorize_later). */
void api_authz_attach(iam_system *iam, fn_system *fn, bool strict, const char *root_key);

/* 0 when r may do action on resource; else ERR_DENIED with e set. */
int api_authorize(http_req *r, const char *action, const char *resource, err *e);
/* Whether e, an ERR_DENIED of api_authorize, came from an explicit Deny
 * (which a resource's own grants cannot override) rather than from no
 * Allow. */
bool api_denied_explicitly(const err *e);

/* An action a request implies besides its own (the Data API reading the
 * secret it is given: secretsmanager:GetSecretValue), asked as
 * api_authorize does, except that a function on the default role (its
 * role unknown to tarn, IAM not strict) is allowed: the default grants
 * the operation, and so what it needs. */
int api_authorize_implied(http_req *r, const char *action, const char *resource, err *e);

/* A caller that names a role for tarn to act as (a function's Role, a
 * state machine's roleArn, a job's RoleArn, ...) must be allowed
 * iam:PassRole on it, as in AWS: otherwise keys that may create a function
 * could give it any role's permissions. NULL or empty role: 0. */
int api_authorize_pass_role(http_req *r, const char *role_arn, err *e);

/* The same decision for work done after the request that asked for it
 * (an Athena query reading objects): principal is the access key that
 * signed it (NULL or root's: allowed). Conditions on the request (e.g.
 * aws:SourceIp) see no value. A key revoked since is refused
 * (ERR_UNKNOWN_ACCESS_KEY). ctx is unused (a callback's shape). */
int api_authorize_later(void *ctx, const char *principal, const char *action,
                        const char *resource, err *e);

/* The keyring's non-root part: the secret of a function's or a user's
 * access key, or NULL (secret is the caller's, FN_KEY_MAX bytes). */
const char *api_authz_secret(const char *access_key, char secret[FN_KEY_MAX]);

/* Logs a warning when a new function's role is one tarn does not know
 * (it then gets the default, or nothing under strict IAM). */
void api_authz_warn_role(const char *function, const char *role_arn);
/* Decides action on resource for a workload acting as role_arn (a state
 * machine's execution: session names it in the message): 0, or ERR_DENIED
 * with IAM's message. A role tarn does not know gets the default data-plane
 * actions and Athena's query actions, or nothing under strict IAM. */
int api_authorize_role(const char *role_arn, const char *session, const char *action,
                       const char *resource, err *e);
/* api_authorize_role for a service's own workload (a crawler writing its
 * tables): a role tarn does not know also gets the actions that start
 * with one of the prefixes in also (NULL-terminated, e.g. "glue:"), as
 * the service's managed role would, unless IAM is strict. */
int api_authorize_role_also(const char *role_arn, const char *session, const char *action,
                            const char *resource, const char *const *also, err *e);
/* The warning of api_authz_warn_role, for a state machine. */
void api_authz_warn_machine_role(const char *machine, const char *role_arn);

/* The IAM endpoint. */
http_service *iam_service_new(iam_system *iam);
http_service *iam_service_free(http_service *svc);

#endif
