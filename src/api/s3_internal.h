/* api/s3_internal.h -- what the files of the S3 endpoint share: the
 * per-request state, the operation table's entry type, the handlers, and
 * the helpers for XML answers, metadata, tags and conditions.
 *
 * Private to src/api/s3*.c; see api/s3.c for the design notes.
 */
#ifndef TARN_API_S3_INTERNAL_H
#define TARN_API_S3_INTERNAL_H

#include "api/s3.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/text.h"
#include "http/http.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"
#define S3_OWNER "tarn"                          /* the owner's DisplayName */
/* The account's canonical user id (the Owner ID of every bucket and object,
 * and what ACL grants name): hex SHA-256 of "tarn account 000000000000". */
#define S3_OWNER_ID "8b570c6ff1160fe5be8854a2f585a0e4520a04d5916ea69341729b77bb673746"
#define S3_ACL_META "x-tarn-acl"                 /* an object's ACL in its metadata */
#define S3_REGION "us-east-1"
#define S3_MAX_USER_META 2048                    /* x-amz-meta-* names (after the prefix) + values */
#define S3_MAX_TAG_KEY 128                       /* characters */
#define S3_MAX_TAG_VALUE 256                     /* characters */
#define S3_MAX_DELETE_KEYS 1000                  /* DeleteObjects */
#define S3_DELETE_BODY_MAX (2u << 20)            /* DeleteObjects XML */
#define S3_COMPLETE_BODY_MAX (2u << 20)          /* 10,000 <Part>s with checksums */
#define S3_XML_BODY_MAX (1u << 20)               /* every other XML body */
#define S3_MAX_PUT_SIZE STORE_MAX_PART_SIZE      /* one PutObject: 5 GiB, as S3 */
#define S3_MAX_RESPONSE (64u << 20)              /* an XML answer (1000 keys of 1 KiB, escaped) */

typedef struct s3_svc s3_svc;
typedef struct s3_call s3_call;
typedef struct s3_select_pool s3_select_pool;

/* An operation step: 0, or an ERR_* code with e set. */
typedef int (*s3_fn)(s3_svc *s, http_req *req, s3_call *c, err *e);

typedef struct s3_op {
  const char *name;   /* S3's operation name, for req->op */
  s3_fn prepare;      /* NULL, or checks made before the body arrives (installs a sink) */
  s3_fn handle;       /* runs once the whole body arrived and passed its checks */
  size_t body_max;    /* buffered body limit; 0 keeps the server's default (1 MiB) */
} s3_op;

struct s3_svc {
  http_service base;  /* first member: what the server holds */
  store *st;          /* borrowed */
  struct events_system *ev;  /* borrowed, or NULL: ?notification answers NotImplemented */
  s3_select_pool *select;    /* running SelectObjectContent queries (s3_select.c) */
  http_service *control;     /* borrowed, or NULL: S3 Control (/v20180820/...) */
  sigv4_secret_fn secret_lookup;  /* access key -> secret, for POST policies (s3_post.c) */
  void *secret_ctx;
  const char *admin_key;     /* the root access key (NULL: every known key is root) */
};

/* Per-request state, in the request's arena (req->svc). */
struct s3_call {
  const s3_op *op;        /* the routed operation */
  const char *bucket;     /* NULL at the service level */
  const char *key;        /* NULL unless the path names an object */
  store_writer *writer;   /* bytes being streamed or copied; freed in cleanup */
  uint64_t max_size;      /* limit on what the writer may receive */
  int64_t declared;       /* the body's announced length (s3_stream_begin), or -1 */
  str_pair *meta;         /* metadata parsed from the headers in prepare */
  size_t nmeta;
  str_pair *tags;         /* x-amz-tagging parsed in prepare */
  size_t ntags;
  const char *upload_id;  /* multipart: the uploadId parameter */
  int part_number;        /* UploadPart / UploadPartCopy: 1..10000 */
  struct sel_job *select; /* SelectObjectContent's job, released in cleanup */
  const char *site_path;  /* a website request (s3_website.c): the decoded path
                             after the bucket, from its '/'; NULL otherwise */
  const char *site_base;  /* what precedes that path in this site's URLs:
                             "" or "/_tarn/sites/<bucket>" */
  struct s3_post *post;   /* a POST upload's form state (s3_post.c), freed in cleanup */
  int sse;                /* STORE_SSE_*: how the object written is encrypted */
  const char *sse_key_md5; /* SSE-C: the key's MD5 as the client sent it */
};

/* ---- the operations: one handler each, grouped by file ---- */

/* s3_bucket.c */
int s3_list_buckets(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_create_bucket(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_bucket(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_head_bucket(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_bucket_location(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_bucket_tagging(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_put_bucket_tagging(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_bucket_tagging(s3_svc *s, http_req *req, s3_call *c, err *e);

/* s3_object.c */
int s3_put_object_prepare(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_put_object(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_object(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_head_object(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_object(s3_svc *s, http_req *req, s3_call *c, err *e);
/* Conditional writes (PutObject, CompleteMultipartUpload): If-None-Match
 * ("*" only) and If-Match (an ETag) into x. Errors: ERR_NOT_IMPLEMENTED
 * for any other If-None-Match. */
int s3_write_expect(http_req *req, store_expect *x, err *e);
/* x against the current object, before the body is read (the commit checks
 * again atomically). Errors: ERR_PRECONDITION, ERR_NO_SUCH_KEY. */
int s3_write_expect_check(s3_svc *s, http_req *req, const s3_call *c, const store_expect *x,
                          err *e);
int s3_delete_objects(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_copy_object(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_object_tagging(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_put_object_tagging(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_object_tagging(s3_svc *s, http_req *req, s3_call *c, err *e);

/* Answers GetObject / HeadObject for bucket/key: metadata headers, the
 * bytes (from the store's fd or inline copy). Unless whole, the request's
 * conditional headers, Range and partNumber apply as for GetObject. */
int s3_send_object(s3_svc *s, http_req *req, const char *bucket, const char *key, bool whole,
                   err *e);

/* s3.c: whether the caller may do action on res (the ARN) in bucket (key:
 * the object, or NULL), as every operation is decided: the bucket policy,
 * the caller's identity policies, the ACLs (see s3.c's invariant 3).
 * policy_op: a bucket-policy call, which a policy's Deny does not refuse.
 * Errors: ERR_DENIED. */
int s3_access(s3_svc *s, http_req *req, const char *bucket, const char *key, const char *action,
              const char *res, bool policy_op, err *e);

/* s3_attributes.c */
int s3_get_object_attributes(s3_svc *s, http_req *req, s3_call *c, err *e);

/* s3_acl.c: ACLs and object ownership */
int s3_get_acl(s3_svc *s, http_req *req, s3_call *c, err *e);   /* bucket or object */
int s3_put_acl(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_put_ownership(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_ownership(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_ownership(s3_svc *s, http_req *req, s3_call *c, err *e);
/* The ACL a write of an object into bucket asks for in its headers
 * (x-amz-acl, x-amz-grant-*), checked against the bucket's ownership
 * setting and PublicAccessBlock: *text is what to keep under S3_ACL_META,
 * NULL for the default (the owner's FULL_CONTROL). Errors: ERR_INVALID,
 * ERR_INVALID_REQUEST, ERR_ACL_NOT_SUPPORTED, ERR_DENIED, ... */
int s3_acl_for_write(s3_svc *s, http_req *req, const char *bucket, const char **text, err *e);
/* The same for a canned ACL given by name (a POST form's acl field). */
int s3_acl_canned_for_write(s3_svc *s, http_req *req, const char *bucket, const char *name,
                            const char **text, err *e);
/* CopyObject's: the ACL of the copy (the request's, never the source's)
 * into *meta (NULL: the source's metadata is kept, then made explicit when
 * the ACL changes). */
int s3_acl_copy_meta(s3_svc *s, http_req *req, const char *bucket, const store_object *src,
                     str_pair **meta, size_t *n, err *e);
/* meta without any S3_ACL_META, plus text's when not NULL (arena copy). */
void s3_acl_meta_add(http_req *req, const char *text, str_pair **meta, size_t *n);
/* CreateBucket's x-amz-object-ownership and ACL headers, checked: appends
 * their configuration documents (at most two) to conf, which the bucket's
 * creation commits with it. */
int s3_acl_bucket_conf(s3_svc *s, http_req *req, s3_call *c, str_pair *conf, size_t *nconf,
                       err *e);
/* Whether the ACL of bucket (or of bucket/key, for object permissions)
 * grants action to anyone (anonymous) or to any signed caller. */
bool s3_acl_allows(s3_svc *s, http_req *req, const char *bucket, const char *key,
                   const char *action, bool anonymous);

/* s3_policy.c: bucket policies (statements whose principal is "*") */
int s3_put_bucket_policy(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_bucket_policy(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_bucket_policy(s3_svc *s, http_req *req, s3_call *c, err *e);
/* True when the bucket's policy lets anyone (Principal "*") do action on
 * the resource ARN, and no statement denies it, unless the bucket's
 * PublicAccessBlock RestrictPublicBuckets is on. False without a policy. */
bool s3_policy_public(s3_svc *s, http_req *req, const char *bucket, const char *action,
                      const char *resource);
/* What the bucket's policy says about action on resource, for anyone. */
enum s3_policy_decision { S3_POLICY_NONE, S3_POLICY_ALLOW, S3_POLICY_DENY };
enum s3_policy_decision s3_policy_decide(s3_svc *s, http_req *req, const char *bucket,
                                         const char *action, const char *resource);
/* Whether the bucket's PublicAccessBlock sets flag ("BlockPublicAcls"...). */
bool s3_pab_on(s3_svc *s, http_req *req, const char *bucket, const char *flag);

/* PublicAccessBlock (s3_policy.c): kept in the bucket record; it can
 * refuse public policies and make policies grant nothing. */
int s3_put_public_access_block(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_public_access_block(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_public_access_block(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_policy_status(s3_svc *s, http_req *req, s3_call *c, err *e);

/* s3_cors.c: CORS rules, preflights and the headers of actual requests */
int s3_put_bucket_cors(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_bucket_cors(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_bucket_cors(s3_svc *s, http_req *req, s3_call *c, err *e);
/* OPTIONS /bucket[/key]: answered from the rules, without a signature. */
int s3_cors_preflight(s3_svc *s, http_req *req, s3_call *c, err *e);
/* Adds the Access-Control-* headers when the request has an Origin that
 * one of the bucket's rules allows with its method. */
void s3_cors_actual(s3_svc *s, http_req *req, s3_call *c);

/* s3_sse.c: server-side encryption headers and ?encryption */
typedef struct s3_sse_key {
  bool given;                       /* the SSE-C headers were sent */
  uint8_t key[STORE_SSE_KEY_LEN];   /* the customer's key (this request only) */
  const char *key_md5;              /* its MD5, base64, as sent */
} s3_sse_key;
int s3_put_bucket_encryption(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_bucket_encryption(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_bucket_encryption(s3_svc *s, http_req *req, s3_call *c, err *e);
/* The SSE-C headers (copy_source: the x-amz-copy-source-... ones), checked
 * as S3 does (algorithm AES256, a 256-bit key, its MD5); k->given false
 * when none was sent. Errors: ERR_INVALID, ERR_INVALID_ENCRYPTION. */
int s3_sse_customer_key(http_req *req, bool copy_source, s3_sse_key *k, err *e);
/* How a new object of bucket is encrypted (*mode STORE_SSE_*): the
 * request's headers, else the bucket's default; k gets an SSE-C key.
 * Errors: ERR_INVALID, ERR_INVALID_ENCRYPTION, ERR_NOT_IMPLEMENTED (KMS). */
int s3_sse_target(s3_svc *s, http_req *req, const char *bucket, s3_sse_key *k, int *mode,
                  err *e);
/* s3_sse_target for a value of x-amz-server-side-encryption given some
 * other way (a POST form field; NULL: none), without SSE-C. */
int s3_sse_target_value(s3_svc *s, http_req *req, const char *bucket, const char *h, int *mode,
                        err *e);
/* True when the request names an encryption (x-amz-server-side-encryption
 * or SSE-C) for what it writes. */
bool s3_sse_requested(http_req *req);
/* Makes w encrypt with a new data key for mode (nothing for NONE). */
int s3_sse_writer(s3_svc *s, http_req *req, store_writer *w, int mode, const s3_sse_key *k,
                  err *e);
/* The headers S3 answers about an object's encryption. */
void s3_sse_answer(http_req *req, int mode, const char *key_md5);
/* Opens an object for reading: an SSE-C object needs its key in the
 * request (copy_source: the copy-source headers); *key_md5 gets the MD5
 * to echo. Errors: ERR_INVALID_REQUEST (no key, or a key for an object
 * without SSE-C), ERR_DENIED (wrong key), and s3_sse_customer_key's. */
int s3_sse_unlock(s3_svc *s, http_req *req, store_object *o, bool copy_source,
                  const char **key_md5, err *e);
/* Answers len bytes of encrypted o from first, decrypted as they are sent
 * (takes fd, even on an error). Errors: the first chunk's (ERR_IO). */
int s3_sse_send(http_req *req, const store_object *o, int fd, uint64_t first, uint64_t len,
                err *e);

/* s3_lifecycle.c: lifecycle configurations (rules and sweep: store/lifecycle.c) */
int s3_put_bucket_lifecycle(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_bucket_lifecycle(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_bucket_lifecycle(s3_svc *s, http_req *req, s3_call *c, err *e);
/* Adds x-amz-expiration when a lifecycle rule of o's bucket expires o. */
void s3_expiration_header(s3_svc *s, http_req *req, const store_object *o);
/* Adds x-amz-abort-date and x-amz-abort-rule-id to CreateMultipartUpload's
 * answer when an AbortIncompleteMultipartUpload rule covers key. */
void s3_abort_date_header(s3_svc *s, http_req *req, const char *bucket, const char *key);

/* s3_version.c: versioning and object lock (the versions: store/version.c) */
int s3_put_bucket_versioning(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_bucket_versioning(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_list_object_versions(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_put_object_lock_config(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_object_lock_config(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_put_object_retention(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_object_retention(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_put_object_legal_hold(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_object_legal_hold(s3_svc *s, http_req *req, s3_call *c, err *e);
/* DeleteObject with ?versionId= or in a bucket with versioning (markers). */
int s3_delete_object_version(s3_svc *s, http_req *req, s3_call *c, err *e);
/* CreateBucket with x-amz-bucket-object-lock-enabled: the configuration
 * documents (versioning and lock on) the new bucket is created with, in
 * conf; returns their count (0 without the header). */
size_t s3_bucket_lock_conf(http_req *req, str_pair conf[2]);
/* x-amz-version-id, x-amz-delete-marker and the object lock headers of o. */
void s3_version_headers(http_req *req, const store_object *o);
/* On a 404 for key: x-amz-delete-marker and the marker's id when the key's
 * current version is a delete marker. */
void s3_missing_object_headers(s3_svc *s, http_req *req, const char *bucket, const char *key);
/* ?versionId=, or NULL. */
const char *s3_version_param(http_req *req);
/* The versionId of x-amz-copy-source (decoded), or NULL. */
const char *s3_copy_source_version(http_req *req);
/* x-amz-bypass-governance-retention: true into *bypass, checked against
 * s3:BypassGovernanceRetention on bucket/key for callers other than root. */
int s3_bypass_governance(http_req *req, const char *bucket, const char *key, bool *bypass,
                         err *e);
/* PutObject's x-amz-object-lock-* headers into x (the bucket must have
 * object lock). Errors: ERR_INVALID, ERR_INVALID_REQUEST. */
int s3_lock_from_headers(s3_svc *s, http_req *req, const char *bucket, store_expect *x, err *e);

/* s3_website.c: the website configuration and the website endpoint */
int s3_put_bucket_website(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_bucket_website(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_delete_bucket_website(s3_svc *s, http_req *req, s3_call *c, err *e);
/* A website request: Host <bucket>.s3-website[-.]<region>.localhost or the
 * path /_tarn/sites/<bucket>/...; fills c->bucket, c->site_path and
 * c->site_base and returns true. */
bool s3_site_address(http_req *req, s3_call *c);
/* Serves a website request (GET or HEAD) and writes its own errors, as
 * HTML pages. */
int s3_site_serve(s3_svc *s, http_req *req, s3_call *c, err *e);
/* The HTML error page of the website endpoint for e. */
void s3_site_error_page(http_req *req, s3_call *c, const err *e);

/* s3_post.c: browser uploads (POST with a multipart/form-data body and a
 * signed policy). prepare installs the form parser as the sink; the file
 * part is checked (policy, signature, IAM) when it begins and streamed
 * into a writer; handle commits. */
int s3_post_object_prepare(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_post_object(s3_svc *s, http_req *req, s3_call *c, err *e);
void s3_post_cleanup(s3_call *c);

/* s3_select.c */
int s3_select_object(s3_svc *s, http_req *req, s3_call *c, err *e);
void s3_select_cleanup(s3_call *c);
s3_select_pool *s3_select_pool_new(void);
/* Cancels the running queries and waits for them (before the store closes). */
s3_select_pool *s3_select_pool_free(s3_select_pool *p);

/* s3_notify.c */
int s3_put_notification(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_get_notification(s3_svc *s, http_req *req, s3_call *c, err *e);

/* s3_list.c */
int s3_list_objects(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_list_objects_v2(s3_svc *s, http_req *req, s3_call *c, err *e);

/* s3_multipart.c */
int s3_create_upload(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_upload_part_prepare(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_upload_part(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_upload_part_copy(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_complete_upload(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_abort_upload(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_list_parts(s3_svc *s, http_req *req, s3_call *c, err *e);
int s3_list_uploads(s3_svc *s, http_req *req, s3_call *c, err *e);

/* ---- XML answers (s3.c) ----
 * Writes into req->resp_body. The first failed append sticks in rc, so a
 * handler writes everything and checks once with s3_xml_done. */
typedef struct s3_xml {
  buf *b;
  int rc;
} s3_xml;

/* Sets Content-Type, writes the declaration and <root xmlns="...">. */
void s3_xml_open(s3_xml *x, http_req *req, const char *root);
void s3_xml_close(s3_xml *x, const char *root);
void s3_xml_start(s3_xml *x, const char *name);
void s3_xml_end(s3_xml *x, const char *name);
void s3_xml_text(s3_xml *x, const char *name, const char *text);
void s3_xml_textf(s3_xml *x, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void s3_xml_bool(s3_xml *x, const char *name, bool v);
void s3_xml_time(s3_xml *x, const char *name, int64_t ms);  /* ISO 8601 with ms */
void s3_xml_etag(s3_xml *x, const char *name, const char *etag);  /* quoted */
void s3_xml_owner(s3_xml *x, const char *name);  /* <name><ID/><DisplayName/></name> */
/* 0, or ERR_INTERNAL when the answer outgrew S3_MAX_RESPONSE. */
int s3_xml_done(s3_xml *x, err *e);

/* S3's error document (REST-XML) with the status and S3 error code given:
 * Key, BucketName and UploadId as far as they are not NULL; HEAD and 304
 * answers carry no body. For codes outside the ERR_* table (S3 Select's). */
void s3_error_doc(http_req *req, const char *bucket, const char *key, const char *upload_id,
                  int status, const char *code, const char *msg);

/* Parses the XML request body; ERR_MALFORMED_XML when it is not a document
 * whose root element is called root. */
struct xml_node;
int s3_body_xml(http_req *req, const char *root, struct xml_node **out, err *e);

/* s3_version.c: one <Deleted> of DeleteObjects for key (version vid). */
void s3_delete_result_xml(s3_xml *x, const char *key, const char *vid,
                          const store_delete_result *dr);

/* ---- helpers (s3.c) ---- */

/* "\"etag\"" in the arena. */
const char *s3_quote_etag(arena *a, const char *etag);
/* Strips quotes (and a W/ prefix) from an entity tag; arena copy. */
const char *s3_unquote_etag(arena *a, const char *etag);

/* A strict decimal integer in [min, max]; false on anything else. */
bool s3_parse_long(const char *s, long min, long max, long *out);

/* 0, or ERR_KEY_TOO_LONG / ERR_INVALID for a key S3 would refuse. */
int s3_key_check(const char *key, err *e);

/* The object metadata a PUT (or a REPLACE copy, or a multipart create)
 * carries in its headers: Content-Type (default binary/octet-stream),
 * Content-Encoding (without aws-chunked), Content-Disposition,
 * Cache-Control, Content-Language, Expires and x-amz-meta-*. Errors:
 * ERR_METADATA_TOO_LARGE. */
int s3_meta_from_headers(http_req *req, str_pair **out, size_t *n, err *e);
/* The same from any list of lower-case names and values (a POST form's
 * fields), in a. */
int s3_meta_from_pairs(arena *a, const str_pair *pairs, size_t npairs, str_pair **out, size_t *n,
                       err *e);
/* x-amz-storage-class's value (NULL: none sent) must name one of S3's
 * classes. Errors: ERR_INVALID_STORAGE_CLASS. */
int s3_storage_class_check(const char *v, err *e);

/* Parses x-amz-tagging ("k1=v1&k2=v2", URL-query-encoded) and checks the
 * tags; an absent header gives no tags. Errors: ERR_INVALID_TAG. */
int s3_tags_from_header(http_req *req, str_pair **out, size_t *n, err *e);
/* S3's rules for a tag set: <= 10 tags, keys 1..128 and values <= 256
 * characters of valid UTF-8, no duplicate keys, no "aws:" prefix. */
int s3_tags_check(const str_pair *tags, size_t n, err *e);
/* The same rules but the count (bucket tags allow 50). */
int s3_tagset_check(const str_pair *tags, size_t n, err *e);
/* Parses a <Tagging><TagSet> body (PutObjectTagging, PutBucketTagging) of
 * at most max tags and checks it with s3_tagset_check; what ("object",
 * "bucket") names the limit in the error. Errors: ERR_MALFORMED_XML,
 * ERR_INVALID_TAG. */
int s3_tagging_parse(http_req *req, size_t max, const char *what, str_pair **out, size_t *n,
                     err *e);
/* The same from a <Tagging> document given as text (a POST form's tagging
 * field), in a. */
int s3_tagging_parse_text(arena *a, const char *text, size_t len, size_t max, const char *what,
                          str_pair **out, size_t *n, err *e);
/* Answers with <Tagging><TagSet> of the tags (GetObjectTagging,
 * GetBucketTagging): s3_xml_done's result. */
int s3_tagging_write(http_req *req, const str_pair *tags, size_t n, err *e);

/* Evaluates conditional headers against an object, with S3's precedence:
 * a passing If-Match overrides If-Unmodified-Since and a failing
 * If-None-Match overrides If-Modified-Since. prefix is "if-" for GET/HEAD
 * (failures: ERR_PRECONDITION, ERR_NOT_MODIFIED) or
 * "x-amz-copy-source-if-" for copies (every failure is ERR_PRECONDITION). */
int s3_conditions(http_req *req, const char *prefix, const store_object *o, err *e);

/* Parses x-amz-copy-source ("bucket/key" or "/bucket/key", URL-encoded,
 * with an optional ?versionId= that is ignored) and checks the key. */
int s3_copy_source(http_req *req, const char **bucket, const char **key, err *e);

/* Installs req->sink so the body streams into a new store writer owned by
 * c (freed in cleanup), refusing bodies over max bytes. */
int s3_stream_begin(s3_svc *s, http_req *req, s3_call *c, uint64_t max, err *e);

/* Hex MD5 of what c->writer received, in the arena. */
const char *s3_writer_etag(http_req *req, const s3_call *c);

/* encoding-type: 0 (none), 1 (url), or ERR_INVALID for anything else. */
int s3_encoding_type(http_req *req, err *e);
/* The value as listed: URL-encoded (keeping '/') when url is true. */
const char *s3_list_enc(http_req *req, bool url, const char *s);

/* Continuation tokens are opaque to clients: base64 of the store's
 * next_after. decode fails with ERR_INVALID on anything else. */
const char *s3_token_encode(arena *a, const char *s);
int s3_token_decode(http_req *req, const char *token, const char **out, err *e);

/* The checksum algorithms S3 knows, by the suffix of their header name
 * ("crc32" for x-amz-checksum-crc32) and their XML element name
 * ("ChecksumCRC32"). Returns NULL for an unknown suffix. */
const char *s3_checksum_xml_name(const char *suffix);
/* The x-amz-checksum-algorithm of a copy (CopyObject, UploadPartCopy):
 * *lower its header suffix ("crc64nvme"), or NULL when not sent.
 * Errors: ERR_INVALID (an unknown algorithm). s3_multipart.c. */
int s3_copy_checksum_algo(http_req *req, const char **lower, enum hash_algo *h, err *e);
/* The base64 checksum (algo h) of len bytes of o from first, read through
 * the store (plaintext of encrypted objects; fd as store_object_get gave
 * it), in req's arena. s3_multipart.c. */
int s3_checksum_of(http_req *req, const store_object *o, int fd, uint64_t first, uint64_t len,
                   enum hash_algo h, const char **b64, err *e);

/* Object metadata tarn keeps for itself ("x-tarn-..."): an object's ACL,
 * an upload's checksum choice. Never answered as a header. */
bool s3_meta_internal(const char *name);
/* The internal pairs that belong to a multipart upload (its checksum choice
 * and object lock), which its object keeps but a copy of it must not carry.
 * s3_multipart.c. */
bool s3_meta_upload_only(const char *name);

#endif
