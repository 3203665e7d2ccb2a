/* api/s3_sse.c -- S3's server-side encryption on the wire: the request
 * headers of SSE-S3 and SSE-C, the headers answered with encrypted
 * objects, and Put/Get/DeleteBucketEncryption.
 *
 * Why: the encryption itself (keys, chunked AES-GCM) belongs to the store
 * (store/crypt.c); this file decides, per request, which key a new object
 * gets and which key opens an existing one, with S3's errors.
 *
 * Invariants:
 *   (1) A new object is encrypted as its request says (x-amz-server-side-
 *       encryption: AES256, or the SSE-C headers), else as its bucket's
 *       default (?encryption), else not at all -- unless the server runs
 *       with TARN_S3_DEFAULT_SSE=AES256, which makes SSE-S3 the default of
 *       every bucket without a configuration, as AWS does since 2023.
 *   (2) A customer key is used for the request only: checked against its
 *       MD5, handed to the store (which never stores it), and echoed back
 *       only as the MD5 the client sent.
 *   (3) SSE-KMS (aws:kms, aws:kms:dsse) is refused with 501 NotImplemented
 *       naming it: tarn has no key management service.
 *   (4) The bucket configuration is kept as its canonical answer (one rule,
 *       AES256, BucketKeyEnabled) in the bucket record under "encryption".
 *   (5) tarn speaks plain HTTP; S3 refuses SSE-C headers on a connection
 *       that is not HTTPS (400 InvalidRequest), since the key would travel
 *       in clear. tarn accepts them from loopback and Unix-socket peers
 *       (the key never leaves the machine) and behind a TLS-terminating
 *       proxy (X-Forwarded-Proto: https), and refuses them otherwise.
 *       TARN_S3_SSE_C_HTTP=allow accepts them on any connection (a private
 *       network the operator trusts); =refuse refuses them from loopback
 *       too (only a proxy's https requests pass), as S3 does.
 *
 * Start reading at s3_sse_target().
 */
#include "api/s3_internal.h"

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SSE_CONF STORE_SSE_CONF  /* the document's name in the bucket record */
#define SSE_C_PREFIX "x-amz-server-side-encryption-customer-"
#define SSE_COPY_PREFIX "x-amz-copy-source-server-side-encryption-customer-"

static const char *header2(http_req *req, const char *prefix, const char *name)
{
  char h[96];
  snprintf(h, sizeof h, "%s%s", prefix, name);
  return http_req_header(req, h);
}

/* Whether a customer key may travel on req's connection (invariant (5)). */
static bool sse_c_channel_ok(http_req *req)
{
  const char *proto = http_req_header(req, "x-forwarded-proto");
  if (proto != NULL && strcasecmp(proto, "https") == 0)
    return true;
  const char *policy = getenv("TARN_S3_SSE_C_HTTP");
  if (policy != NULL && strcmp(policy, "allow") == 0)
    return true;
  if (policy != NULL && strcmp(policy, "refuse") == 0)
    return false;
  const char *a = req->peer_addr != NULL ? req->peer_addr : "";
  return a[0] == '\0' || strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0 ||
         strncmp(a, "::ffff:127.", 11) == 0;
}

int s3_sse_customer_key(http_req *req, bool copy_source, s3_sse_key *k, err *e)
{
  const char *prefix = copy_source ? SSE_COPY_PREFIX : SSE_C_PREFIX;
  const char *alg = header2(req, prefix, "algorithm");
  const char *key = header2(req, prefix, "key");
  const char *md5h = header2(req, prefix, "key-md5");
  memset(k, 0, sizeof *k);
  if (alg == NULL && key == NULL && md5h == NULL)
    return 0;
  if (!sse_c_channel_ok(req))
    return err_set(e, ERR_INVALID_REQUEST, "Requests specifying Server Side Encryption with "
                   "Customer provided keys must be made over a secure connection.");
  if (alg == NULL)
    return err_set(e, ERR_INVALID, "Requests specifying Server Side Encryption with Customer "
                   "provided keys must provide a valid encryption algorithm.");
  if (strcmp(alg, "AES256") != 0)
    return err_set(e, ERR_INVALID_ENCRYPTION, "The encryption request you specified is not "
                   "valid. The valid value is AES256.");
  if (key == NULL)
    return err_set(e, ERR_INVALID, "Requests specifying Server Side Encryption with Customer "
                   "provided keys must provide an appropriate secret key.");
  uint8_t raw[64];
  size_t kl = strlen(key);
  long n = kl <= 88 ? base64_decode(key, kl, raw, sizeof raw) : -1;
  if (n != STORE_SSE_KEY_LEN)
    return err_set(e, ERR_INVALID, "The secret key was invalid for the specified algorithm.");
  if (md5h == NULL)
    return err_set(e, ERR_INVALID, "Requests specifying Server Side Encryption with Customer "
                   "provided keys must provide the client calculated MD5 of the secret key.");
  uint8_t want[MD5_LEN + 8];
  uint8_t got[MD5_LEN];
  size_t ml = strlen(md5h);
  long wn = ml <= 32 ? base64_decode(md5h, ml, want, sizeof want) : -1;
  md5(raw, STORE_SSE_KEY_LEN, got);
  if (wn != MD5_LEN || memcmp(want, got, MD5_LEN) != 0)
    return err_set(e, ERR_INVALID, "The calculated MD5 hash of the key did not match the hash "
                   "that was provided.");
  k->given = true;
  memcpy(k->key, raw, STORE_SSE_KEY_LEN);
  k->key_md5 = md5h;
  return 0;
}

static int sse_choose(s3_svc *s, http_req *req, const char *bucket, const char *h,
                      const s3_sse_key *k, int *mode, err *e);

/* The bucket's default: STORE_SSE_S3 or STORE_SSE_NONE (invariant (1)). */
static int bucket_default(s3_svc *s, http_req *req, const char *bucket, bool *configured)
{
  (void)req;
  return store_bucket_sse_default(s->st, bucket, configured);
}

int s3_sse_target(s3_svc *s, http_req *req, const char *bucket, s3_sse_key *k, int *mode,
                  err *e)
{
  int rc = s3_sse_customer_key(req, false, k, e);
  if (rc != 0)
    return rc;
  if (k->given &&
      http_req_header(req, "x-amz-server-side-encryption-aws-kms-key-id") != NULL)
    return err_set(e, ERR_INVALID, "Server Side Encryption with Customer provided key is "
                   "incompatible with the encryption method specified");
  return sse_choose(s, req, bucket, http_req_header(req, "x-amz-server-side-encryption"), k,
                    mode, e);
}

int s3_sse_target_value(s3_svc *s, http_req *req, const char *bucket, const char *h, int *mode,
                        err *e)
{
  s3_sse_key none = { .given = false };
  return sse_choose(s, req, bucket, h, &none, mode, e);
}

/* The mode for x-amz-server-side-encryption h (NULL: not sent) and the
 * customer key k. */
static int sse_choose(s3_svc *s, http_req *req, const char *bucket, const char *h,
                      const s3_sse_key *k, int *mode, err *e)
{
  if (h != NULL && k->given)
    return err_set(e, ERR_INVALID, "Server Side Encryption with Customer provided key is "
                   "incompatible with the encryption method specified");
  if (h != NULL && (strcmp(h, "aws:kms") == 0 || strcmp(h, "aws:kms:dsse") == 0))
    return err_set(e, ERR_NOT_IMPLEMENTED, "A header you provided implies functionality that "
                   "is not implemented: tarn has no KMS, so x-amz-server-side-encryption '%s' "
                   "is not supported (use AES256 or SSE-C)", h);
  if (h != NULL && strcmp(h, "AES256") != 0)
    return err_set(e, ERR_INVALID, "The encryption method specified is not supported");
  if (h == NULL && http_req_header(req, "x-amz-server-side-encryption-aws-kms-key-id") != NULL)
    return err_set(e, ERR_INVALID, "x-amz-server-side-encryption-aws-kms-key-id is only "
                   "valid with x-amz-server-side-encryption 'aws:kms'");
  if (h != NULL && strcmp(h, "AES256") == 0 &&
      http_req_header(req, "x-amz-server-side-encryption-aws-kms-key-id") != NULL)
    return err_set(e, ERR_INVALID, "x-amz-server-side-encryption-aws-kms-key-id is only "
                   "valid with x-amz-server-side-encryption 'aws:kms'");
  bool configured;
  if (k->given)
    *mode = STORE_SSE_C;
  else if (h != NULL)
    *mode = STORE_SSE_S3;
  else
    *mode = bucket_default(s, req, bucket, &configured);
  return 0;
}

bool s3_sse_requested(http_req *req)
{
  return http_req_header(req, "x-amz-server-side-encryption") != NULL ||
         http_req_header(req, SSE_C_PREFIX "algorithm") != NULL;
}

int s3_sse_writer(s3_svc *s, http_req *req, store_writer *w, int mode, const s3_sse_key *k,
                  err *e)
{
  if (mode == STORE_SSE_NONE)
    return 0;
  const char *sealed;
  int rc = store_sse_new(s->st, mode, k->given ? k->key : NULL, req->arena, &sealed, e);
  if (rc == 0)
    rc = store_writer_encrypt(w, sealed, k->given ? k->key : NULL, e);
  return rc;
}

void s3_sse_answer(http_req *req, int mode, const char *key_md5)
{
  if (mode == STORE_SSE_S3) {
    http_resp_header(req, "x-amz-server-side-encryption", "AES256");
  } else if (mode == STORE_SSE_C) {
    http_resp_header(req, SSE_C_PREFIX "algorithm", "AES256");
    if (key_md5 != NULL)
      http_resp_header(req, SSE_C_PREFIX "key-MD5", key_md5);
  }
}

int s3_sse_unlock(s3_svc *s, http_req *req, store_object *o, bool copy_source,
                  const char **key_md5, err *e)
{
  s3_sse_key k;
  *key_md5 = NULL;
  int rc = s3_sse_customer_key(req, copy_source, &k, e);
  if (rc != 0)
    return rc;
  if (o->sse != STORE_SSE_C) {
    if (k.given)
      return err_set(e, ERR_INVALID_REQUEST, "The encryption parameters are not applicable to "
                     "this object.");
    return 0;
  }
  if (!k.given)
    return err_set(e, ERR_INVALID_REQUEST, "The object was stored using a form of Server Side "
                   "Encryption. The correct parameters must be provided to retrieve the object.");
  rc = store_object_unlock(s->st, o, k.key, req->arena, e);
  memset(&k.key, 0, sizeof k.key);
  if (rc == ERR_DENIED)
    return err_set(e, ERR_DENIED, "Access Denied");
  if (rc == 0)
    *key_md5 = k.key_md5;
  return rc;
}

/* ---- the bucket configuration ---- */

int s3_put_bucket_encryption(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "ServerSideEncryptionConfiguration", &root, e);
  if (rc != 0)
    return rc;
  size_t nrules = 0;
  for (xml_node *r = xml_child(root, "Rule"); r != NULL; r = xml_next_same(r))
    nrules++;
  if (nrules != 1)
    return err_set(e, ERR_MALFORMED_XML, "a ServerSideEncryptionConfiguration has exactly one "
                   "<Rule>, not %zu", nrules);
  xml_node *rule = xml_child(root, "Rule");
  xml_node *by = xml_child(rule, "ApplyServerSideEncryptionByDefault");
  const char *alg = by != NULL ? xml_child_text(by, "SSEAlgorithm") : NULL;
  if (alg == NULL)
    return err_set(e, ERR_MALFORMED_XML, "the <Rule> must have an "
                   "<ApplyServerSideEncryptionByDefault> with an <SSEAlgorithm>");
  if (strcmp(alg, "aws:kms") == 0 || strcmp(alg, "aws:kms:dsse") == 0)
    return err_set(e, ERR_NOT_IMPLEMENTED, "A header you provided implies functionality that "
                   "is not implemented: tarn has no KMS, so SSEAlgorithm '%s' is not supported "
                   "(use AES256)", alg);
  if (strcmp(alg, "AES256") != 0)
    return err_set(e, ERR_MALFORMED_XML, "SSEAlgorithm '%s' is not one of AES256, aws:kms, "
                   "aws:kms:dsse", alg);
  if (xml_child_text(by, "KMSMasterKeyID") != NULL)
    return err_set(e, ERR_INVALID, "a KMSMasterKeyID is only valid with SSEAlgorithm aws:kms");
  const char *bk = xml_child_text(rule, "BucketKeyEnabled");
  if (bk != NULL && strcmp(bk, "true") != 0 && strcmp(bk, "false") != 0)
    return err_set(e, ERR_MALFORMED_XML, "BucketKeyEnabled must be true or false");
  const char *text = bk != NULL && strcmp(bk, "true") == 0 ? "AES256 true" : "AES256 false";
  return store_bucket_conf_set(s->st, c->bucket, SSE_CONF, text, e);
}

int s3_get_bucket_encryption(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *text;
  int rc = store_bucket_conf_get(s->st, c->bucket, SSE_CONF, req->arena, &text, e);
  if (rc != 0)
    return rc;
  bool configured;
  if (text == NULL && bucket_default(s, req, c->bucket, &configured) == STORE_SSE_NONE)
    return err_set(e, ERR_NO_SUCH_ENCRYPTION, "The server side encryption configuration was "
                   "not found");
  bool bucket_key = text != NULL && strstr(text, "true") != NULL;
  s3_xml x;
  s3_xml_open(&x, req, "ServerSideEncryptionConfiguration");
  s3_xml_start(&x, "Rule");
  s3_xml_start(&x, "ApplyServerSideEncryptionByDefault");
  s3_xml_text(&x, "SSEAlgorithm", "AES256");
  s3_xml_end(&x, "ApplyServerSideEncryptionByDefault");
  s3_xml_text(&x, "BucketKeyEnabled", bucket_key ? "true" : "false");
  s3_xml_end(&x, "Rule");
  s3_xml_close(&x, "ServerSideEncryptionConfiguration");
  return s3_xml_done(&x, e);
}

int s3_delete_bucket_encryption(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = store_bucket_conf_set(s->st, c->bucket, SSE_CONF, NULL, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

/* ---- sending an encrypted object ---- */

typedef struct sse_body {
  store_reader *r;
  uint64_t first;    /* the object offset of the body's first byte */
} sse_body;

static ssize_t body_read(void *ctx, uint64_t pos, char *p, size_t max)
{
  sse_body *b = ctx;
  size_t got = 0;
  err e;
  err_clear(&e);
  if (store_reader_read(b->r, b->first + pos, p, max, &got, &e) != 0 || got == 0) {
    /* the response is cut short (its Content-Length is out): say why */
    log_warn("a response body cut short after %llu of its bytes: %s", (unsigned long long)pos,
             got == 0 && e.msg[0] == '\0' ? "no more bytes" : e.msg);
    return -1;
  }
  return (ssize_t)got;
}

static void body_free(void *ctx)
{
  sse_body *b = ctx;
  store_reader_free(b->r);
  free(b);
}

int s3_sse_send(http_req *req, const store_object *o, int fd, uint64_t first, uint64_t len,
                err *e)
{
  sse_body *b = xcalloc(1, sizeof *b);
  b->r = store_reader_new(o, fd);
  store_reader_span(b->r, first, len);
  b->first = first;
  /* the first chunk is opened before the answer starts, so a chunk that
     fails its integrity check there is a clean 500, not a cut body */
  uint8_t one;
  size_t got;
  int rc = len > 0 ? store_reader_read(b->r, first, &one, 1, &got, e) : 0;
  if (rc != 0) {
    body_free(b);
    return rc;
  }
  http_resp_reader(req, len, body_read, body_free, b);
  return 0;
}
