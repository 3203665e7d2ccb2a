/* api/s3_multipart.c -- S3's multipart uploads: CreateMultipartUpload,
 * UploadPart, UploadPartCopy, CompleteMultipartUpload,
 * AbortMultipartUpload, ListParts and ListMultipartUploads.
 *
 * Invariants:
 *   (1) UploadPart checks the part number and that the upload exists in
 *       prepare, streams into a store writer, and commits in handle only.
 *   (2) A part's verified checksum is stored with it as "<algo>:<base64>"
 *       (algo as in its header, e.g. "crc32:AAAAAA=="), so ListParts can
 *       answer it and Complete can combine them. UploadPartCopy computes
 *       it from the bytes it copies when its x-amz-checksum-algorithm or
 *       the upload's asks for one, and answers it in CopyPartResult.
 *   (3) When every part named in Complete carries a checksum of the same
 *       algorithm, the object gets S3's checksum under x-amz-checksum-<algo>:
 *       COMPOSITE: base64(H(decoded part checksums in order)) "-" N, where
 *       H is that algorithm; FULL_OBJECT (CRC64NVME always, CRC32 and
 *       CRC32C when the upload asked for it): the CRC of the whole object,
 *       combined from the parts' CRCs and sizes (base/hash crc_combine)
 *       without reading a byte. The algorithm and type chosen at create are
 *       kept in the upload's metadata under CHECKSUM_META (never answered
 *       as a header: s3_meta_internal); Complete then refuses parts without
 *       that checksum. Order, sizes and ETags of the parts are the store's
 *       to check.
 *   (4) A complete of an upload that is gone succeeds when the object at
 *       the key was made by that upload (the store's record remembers it
 *       until the object is overwritten or deleted): a client retrying a
 *       complete whose answer it lost gets the same ETag, not NoSuchUpload.
 *       A part uploaded twice is the last upload (the store replaces it).
 *   (5) CreateMultipartUpload's x-amz-object-lock-* headers (checked as
 *       PutObject's) are kept with the upload under LOCK_META and become
 *       the completed object's retention and legal hold, as on S3.
 *
 * Start reading at s3_complete_upload().
 */
#include "api/s3_internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COPY_CHUNK (256u << 10)
#define CHECKSUM_META "x-tarn-checksum"  /* "<algo> FULL_OBJECT|COMPOSITE" of an upload */
#define LOCK_META "x-tarn-lock"   /* "<mode> <retain until ms> <hold 0|1>" of an upload */
#define PAGE_MAX 1000

static int part_number(http_req *req, s3_call *c, err *e)
{
  long n;
  if (!s3_parse_long(http_req_param(req, "partNumber"), 1, STORE_MAX_PARTS, &n))
    return err_set(e, ERR_INVALID, "part number must be an integer between 1 and %d, inclusive",
                   STORE_MAX_PARTS);
  c->part_number = (int)n;
  return 0;
}

/* The upload named by ?uploadId, which must exist for bucket/key. */
static int upload_lookup(s3_svc *s, http_req *req, s3_call *c, store_upload *u, err *e)
{
  c->upload_id = http_req_param(req, "uploadId");
  if (c->upload_id == NULL || *c->upload_id == '\0')
    return err_set(e, ERR_NO_SUCH_UPLOAD, "the specified upload does not exist: no uploadId given");
  return store_upload_get(s->st, c->bucket, c->key, c->upload_id, req->arena, u, e);
}

static enum hash_algo algo_of(const char *name, bool *ok)
{
  *ok = true;
  if (strcmp(name, "crc32") == 0)
    return HASH_CRC32;
  if (strcmp(name, "crc32c") == 0)
    return HASH_CRC32C;
  if (strcmp(name, "sha1") == 0)
    return HASH_SHA1;
  if (strcmp(name, "sha256") == 0)
    return HASH_SHA256;
  if (strcmp(name, "crc64nvme") == 0)
    return HASH_CRC64NVME;
  *ok = false;
  return HASH_CRC32;
}

int s3_copy_checksum_algo(http_req *req, const char **lower, enum hash_algo *h, err *e)
{
  const char *a = http_req_header(req, "x-amz-checksum-algorithm");
  *lower = NULL;
  if (a == NULL)
    return 0;
  char *l = arena_strdup(req->arena, a);
  for (char *q = l; *q != '\0'; q++)
    if (*q >= 'A' && *q <= 'Z')
      *q = (char)(*q - 'A' + 'a');
  bool ok;
  *h = algo_of(l, &ok);
  if (!ok)
    return err_set(e, ERR_INVALID, "Checksum algorithm provided is unsupported. Please try again "
                   "with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]");
  *lower = l;
  return 0;
}

int s3_checksum_of(http_req *req, const store_object *o, int fd, uint64_t first, uint64_t len,
                   enum hash_algo h, const char **b64, err *e)
{
  hasher hs;
  hash_init(&hs, h);
  char *chunk = xmalloc(COPY_CHUNK);
  int rc = 0;
  for (uint64_t done = 0; rc == 0 && done < len;) {
    size_t want = len - done < COPY_CHUNK ? (size_t)(len - done) : COPY_CHUNK;
    size_t got = 0;
    rc = store_object_read(o, fd, first + done, chunk, want, &got, e);
    if (rc == 0 && got == 0)
      rc = err_set(e, ERR_IO, "the copy source ended early");
    if (rc == 0)
      hash_update(&hs, chunk, got);
    done += (uint64_t)got;
  }
  free(chunk);
  uint8_t d[SHA256_LEN];
  size_t n = hash_final(&hs, d);
  hash_release(&hs);
  if (rc == 0) {
    char *out = arena_alloc(req->arena, base64_encoded_len(n));
    base64_encode(d, n, out);
    *b64 = out;
  }
  return rc;
}

/* Splits a stored part checksum "algo:value"; false when there is none. */
static bool part_checksum(arena *a, const char *stored, const char **algo, const char **value)
{
  if (stored == NULL)
    return false;
  const char *colon = strchr(stored, ':');
  if (colon == NULL)
    return false;
  *algo = arena_strndup(a, stored, (size_t)(colon - stored));
  *value = colon + 1;
  return true;
}

/* ---- encryption: the upload's data key is made at create, kept (sealed)
 * in its metadata, and opened by each part (with the customer's key for
 * SSE-C, which every UploadPart carries) ---- */

/* Adds the sealed data key of a new upload to *meta as the request (or the
 * bucket's default) asks. */
static int upload_sse(s3_svc *s, http_req *req, s3_call *c, str_pair **meta, size_t *nmeta,
                      err *e)
{
  s3_sse_key k;
  int rc = s3_sse_target(s, req, c->bucket, &k, &c->sse, e);
  if (rc != 0 || c->sse == STORE_SSE_NONE)
    return rc;
  c->sse_key_md5 = k.key_md5;
  const char *sealed;
  rc = store_sse_new(s->st, c->sse, k.given ? k.key : NULL, req->arena, &sealed, e);
  if (rc != 0)
    return rc;
  str_pair *m = arena_alloc(req->arena, (*nmeta + 1) * sizeof *m);
  if (*nmeta > 0)
    memcpy(m, *meta, *nmeta * sizeof *m);
  m[*nmeta].name = STORE_SSE_META;
  m[*nmeta].value = sealed;
  *meta = m;
  (*nmeta)++;
  return 0;
}

/* Makes w encrypt a part of upload u as u requires. */
static int part_sse(s3_svc *s, http_req *req, s3_call *c, const store_upload *u,
                    store_writer *w, err *e)
{
  s3_sse_key k;
  int rc = s3_sse_customer_key(req, false, &k, e);
  if (rc != 0)
    return rc;
  if (u->sse == STORE_SSE_C && !k.given)
    return err_set(e, ERR_INVALID_REQUEST, "The multipart upload initiate requested encryption. "
                   "Subsequent part requests must include the appropriate encryption "
                   "parameters.");
  if (u->sse != STORE_SSE_C && k.given)
    return err_set(e, ERR_INVALID_REQUEST, "The multipart upload initiate did not request "
                   "encryption with a customer-provided key: the part request must not "
                   "include customer key parameters.");
  c->sse = u->sse;
  c->sse_key_md5 = k.key_md5;
  if (u->sse == STORE_SSE_NONE)
    return 0;
  rc = store_writer_encrypt(w, u->sse_sealed, k.given ? k.key : NULL, e);
  if (rc == ERR_DENIED)
    return err_set(e, ERR_DENIED, "Access Denied: the customer-provided key is not the one the "
                   "multipart upload was initiated with");
  return rc;
}

/* ---- create ---- */

/* x-amz-checksum-algorithm and x-amz-checksum-type of a create: *algo the
 * algorithm in lower case ("crc64nvme") or NULL, *type "FULL_OBJECT" or
 * "COMPOSITE" (CRC64NVME is only FULL_OBJECT, SHA-1 and SHA-256 only
 * COMPOSITE; the default is the one each allows, COMPOSITE for CRC32 and
 * CRC32C). Errors: ERR_INVALID (an unknown algorithm or type),
 * ERR_INVALID_REQUEST (a type without algorithm, or one it does not allow). */
static int checksum_choice(http_req *req, const char **algo, const char **type, err *e)
{
  const char *a = http_req_header(req, "x-amz-checksum-algorithm");
  const char *t = http_req_header(req, "x-amz-checksum-type");
  *algo = NULL;
  *type = NULL;
  if (t != NULL && strcmp(t, "FULL_OBJECT") != 0 && strcmp(t, "COMPOSITE") != 0)
    return err_set(e, ERR_INVALID, "Value for x-amz-checksum-type header is invalid.");
  if (a == NULL) {
    if (t != NULL)
      return err_set(e, ERR_INVALID_REQUEST, "The x-amz-checksum-type header can only be used "
                     "with the x-amz-checksum-algorithm header.");
    return 0;
  }
  char *lower = arena_strdup(req->arena, a);
  for (char *p = lower; *p != '\0'; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  bool ok;
  enum hash_algo h = algo_of(lower, &ok);
  if (!ok)
    return err_set(e, ERR_INVALID, "Checksum algorithm provided is unsupported. Please try again "
                   "with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]");
  bool crc = h == HASH_CRC32 || h == HASH_CRC32C || h == HASH_CRC64NVME;
  if (t == NULL)
    t = h == HASH_CRC64NVME ? "FULL_OBJECT" : "COMPOSITE";
  if ((strcmp(t, "FULL_OBJECT") == 0 && !crc) ||
      (strcmp(t, "COMPOSITE") == 0 && h == HASH_CRC64NVME))
    return err_set(e, ERR_INVALID_REQUEST, "The %s checksum type cannot be used with the %s "
                   "checksum algorithm.", t, a);
  *algo = lower;
  *type = t;
  return 0;
}

int s3_create_upload(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  str_pair *meta;
  size_t nmeta;
  str_pair *tags;
  size_t ntags;
  int rc = s3_meta_from_headers(req, &meta, &nmeta, e);
  if (rc == 0)
    rc = s3_tags_from_header(req, &tags, &ntags, e);
  store_expect lx;   /* x-amz-object-lock-*: the object's at complete */
  if (rc == 0)
    rc = s3_lock_from_headers(s, req, c->bucket, &lx, e);
  if (rc != 0)
    return rc;
  if (lx.lock_mode != STORE_LOCK_NONE || lx.legal_hold) {
    str_pair *m = arena_alloc(req->arena, (nmeta + 1) * sizeof *m);
    if (nmeta > 0)
      memcpy(m, meta, nmeta * sizeof *m);
    m[nmeta].name = LOCK_META;
    m[nmeta].value = arena_sprintf(req->arena, "%d %lld %d", lx.lock_mode,
                                   (long long)lx.retain_until_ms, lx.legal_hold ? 1 : 0);
    meta = m;
    nmeta++;
  }
  const char *algo;
  const char *type;
  const char *acl;
  rc = checksum_choice(req, &algo, &type, e);
  if (rc == 0)
    rc = s3_acl_for_write(s, req, c->bucket, &acl, e);
  if (rc != 0)
    return rc;
  if (acl != NULL)  /* x-amz-acl, x-amz-grant-*: the object's at complete */
    s3_acl_meta_add(req, acl, &meta, &nmeta);
  if (algo != NULL) {  /* kept with the upload for Complete (invariant 3) */
    str_pair *m = arena_alloc(req->arena, (nmeta + 1) * sizeof *m);
    if (nmeta > 0)
      memcpy(m, meta, nmeta * sizeof *m);
    m[nmeta].name = CHECKSUM_META;
    m[nmeta].value = arena_sprintf(req->arena, "%s %s", algo, type);
    meta = m;
    nmeta++;
  }
  rc = upload_sse(s, req, c, &meta, &nmeta, e);
  if (rc != 0)
    return rc;
  const char *id;
  rc = store_upload_create(s->st, c->bucket, c->key, meta, nmeta, tags, ntags, req->arena, &id, e);
  if (rc == 0)
    s3_abort_date_header(s, req, c->bucket, c->key);
  if (rc != 0)
    return rc;
  if (algo != NULL) {
    http_resp_header(req, "x-amz-checksum-algorithm", http_req_header(req, "x-amz-checksum-algorithm"));
    http_resp_header(req, "x-amz-checksum-type", type);
  }
  s3_sse_answer(req, c->sse, c->sse_key_md5);
  s3_xml x;
  s3_xml_open(&x, req, "InitiateMultipartUploadResult");
  s3_xml_text(&x, "Bucket", c->bucket);
  s3_xml_text(&x, "Key", c->key);
  s3_xml_text(&x, "UploadId", id);
  s3_xml_close(&x, "InitiateMultipartUploadResult");
  return s3_xml_done(&x, e);
}

/* ---- parts ---- */

int s3_upload_part_prepare(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = part_number(req, c, e);
  if (rc != 0)
    return rc;
  store_upload u;
  rc = upload_lookup(s, req, c, &u, e);
  if (rc != 0)
    return rc;
  rc = s3_stream_begin(s, req, c, STORE_MAX_PART_SIZE, e);
  if (rc == 0)
    rc = part_sse(s, req, c, &u, c->writer, e);
  return rc;
}

int s3_upload_part(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *etag = s3_writer_etag(req, c);
  const char *checksum = NULL;
  if (req->checksum_name != NULL && req->checksum_value != NULL &&
      str_starts(req->checksum_name, "x-amz-checksum-"))
    checksum = arena_sprintf(req->arena, "%s:%s", req->checksum_name + 15, req->checksum_value);
  store_part p;
  int rc = store_part_commit(c->writer, c->bucket, c->key, c->upload_id, c->part_number, etag,
                             checksum, req->arena, &p, e);
  if (rc != 0)
    return rc;
  http_resp_header(req, "ETag", s3_quote_etag(req->arena, etag));
  s3_sse_answer(req, c->sse, c->sse_key_md5);
  if (checksum != NULL)
    http_resp_header(req, req->checksum_name, req->checksum_value);
  return 0;
}

/* x-amz-copy-source-range: exactly bytes=first-last within the source. */
static int copy_range(http_req *req, uint64_t size, uint64_t *first, uint64_t *len, err *e)
{
  const char *h = http_req_header(req, "x-amz-copy-source-range");
  *first = 0;
  *len = size;
  if (h == NULL)
    return 0;
  const char *dash = strchr(h, '-');
  long a;
  long b;
  char tmp[24];
  size_t an = dash != NULL ? (size_t)(dash - h) : 0;
  if (strncmp(h, "bytes=", 6) != 0 || dash == NULL || an <= 6 || an - 6 >= sizeof tmp)
    goto malformed;
  memcpy(tmp, h + 6, an - 6);
  tmp[an - 6] = '\0';
  if (!s3_parse_long(tmp, 0, 999999999999999999L, &a) ||
      !s3_parse_long(dash + 1, 0, 999999999999999999L, &b) || b < a)
    goto malformed;
  if ((uint64_t)b >= size)
    return err_set(e, ERR_INVALID_RANGE, "the x-amz-copy-source-range '%s' is outside the source "
                   "object of %llu bytes", h, (unsigned long long)size);
  *first = (uint64_t)a;
  *len = (uint64_t)(b - a) + 1;
  return 0;
malformed:
  return err_set(e, ERR_INVALID, "the x-amz-copy-source-range value must be of the form "
                 "bytes=first-last where first and last are the zero-based offsets of the first "
                 "and last bytes to copy");
}

/* Copies len bytes of src from first into c->writer (fd: as
 * store_object_get gave it, -1 for an inline object). */
static int copy_bytes(s3_svc *s, http_req *req, s3_call *c, const store_upload *u,
                      const store_object *src, int fd, uint64_t first, uint64_t len,
                      hasher *hs, err *e)
{
  int rc = store_writer_new(s->st, &c->writer, e);
  if (rc == 0)
    rc = part_sse(s, req, c, u, c->writer, e);
  if (rc != 0)
    return rc;
  char *chunk = xmalloc(COPY_CHUNK);
  uint64_t done = 0;
  while (rc == 0 && done < len) {
    size_t want = len - done < COPY_CHUNK ? (size_t)(len - done) : COPY_CHUNK;
    size_t got = 0;
    rc = store_object_read(src, fd, first + done, chunk, want, &got, e);
    if (rc == 0 && got == 0)
      rc = err_set(e, ERR_IO, "the copy source ended early");
    if (rc == 0) {
      if (hs != NULL)
        hash_update(hs, chunk, got);
      rc = store_writer_write(c->writer, chunk, got, e);
      done += (uint64_t)got;
    }
  }
  free(chunk);
  return rc;
}

static bool upload_choice(arena *a, const store_upload *u, const char **algo, bool *full);

int s3_upload_part_copy(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = part_number(req, c, e);
  if (rc != 0)
    return rc;
  store_upload u;
  rc = upload_lookup(s, req, c, &u, e);
  if (rc != 0)
    return rc;
  const char *sb;
  const char *sk;
  rc = s3_copy_source(req, &sb, &sk, e);
  if (rc != 0)
    return rc;
  const char *svid = s3_copy_source_version(req);  /* s3_version.c */
  if (svid != NULL && (rc = store_version_id_check(svid, e)) != 0)
    return rc;
  store_object src;
  int fd = -1;
  rc = store_object_get_version(s->st, sb, sk, svid, req->arena, &src, &fd, e);
  if (rc == 0 && src.delete_marker)
    rc = err_set(e, ERR_INVALID_REQUEST, "The source of a copy request may not specifically "
                 "refer to a delete marker by version id.");
  if (rc != 0)
    return rc;
  if (src.version_id != NULL)
    http_resp_header(req, "x-amz-copy-source-version-id", src.version_id);
  uint64_t first;
  uint64_t len;
  const char *src_md5;
  rc = s3_sse_unlock(s, req, &src, true, &src_md5, e);
  if (rc == 0)
    rc = s3_conditions(req, "x-amz-copy-source-if-", &src, e);
  if (rc == 0)
    rc = copy_range(req, src.size, &first, &len, e);
  if (rc == 0 && len > STORE_MAX_PART_SIZE)
    rc = err_set(e, ERR_INVALID_REQUEST, "the specified copy source is larger than the maximum "
                 "allowable size for a copy source: %llu", (unsigned long long)STORE_MAX_PART_SIZE);
  /* the part's checksum: as the request or the upload asks (invariant 2) */
  const char *algo = NULL;
  enum hash_algo h = HASH_CRC32;
  bool full_ignored;
  if (rc == 0)
    rc = s3_copy_checksum_algo(req, &algo, &h, e);
  if (rc == 0 && algo == NULL && upload_choice(req->arena, &u, &algo, &full_ignored)) {
    bool ok;
    h = algo_of(algo, &ok);
  }
  hasher hs = {0};
  if (algo != NULL)
    hash_init(&hs, h);
  if (rc == 0)
    rc = copy_bytes(s, req, c, &u, &src, fd, first, len, algo != NULL ? &hs : NULL, e);
  if (fd >= 0)
    close(fd);
  const char *sum = NULL;
  if (rc == 0 && algo != NULL) {
    uint8_t d[SHA256_LEN];
    size_t n = hash_final(&hs, d);
    char *b64 = arena_alloc(req->arena, base64_encoded_len(n));
    base64_encode(d, n, b64);
    sum = b64;
  }
  hash_release(&hs);
  if (rc != 0)
    return rc;
  const char *etag = s3_writer_etag(req, c);
  store_part p;
  rc = store_part_commit(c->writer, c->bucket, c->key, c->upload_id, c->part_number, etag,
                         sum != NULL ? arena_sprintf(req->arena, "%s:%s", algo, sum) : NULL,
                         req->arena, &p, e);
  if (rc != 0)
    return rc;
  s3_sse_answer(req, c->sse, c->sse_key_md5);
  s3_xml x;
  s3_xml_open(&x, req, "CopyPartResult");
  s3_xml_etag(&x, "ETag", etag);
  s3_xml_time(&x, "LastModified", p.mtime_ms);
  if (sum != NULL)
    s3_xml_text(&x, s3_checksum_xml_name(algo), sum);
  s3_xml_close(&x, "CopyPartResult");
  return s3_xml_done(&x, e);
}

/* ---- complete ---- */

/* Every stored part of the upload, indexed by number (NULL where none). */
static int parts_by_number(s3_svc *s, http_req *req, s3_call *c, store_part ***out, err *e)
{
  store_part **by = arena_alloc(req->arena, (STORE_MAX_PARTS + 1) * sizeof *by);
  int after = 0;
  bool more = true;
  while (more) {
    store_part *p;
    size_t n;
    int rc = store_part_list(s->st, c->bucket, c->key, c->upload_id, after, PAGE_MAX,
                             req->arena, &p, &n, &more, e);
    if (rc != 0)
      return rc;
    for (size_t i = 0; i < n; i++)
      if (p[i].number >= 1 && p[i].number <= STORE_MAX_PARTS)
        by[p[i].number] = &p[i];
    if (n == 0)
      break;
    after = p[n - 1].number;
  }
  *out = by;
  return 0;
}

/* The checksum the upload asked for at create (invariant 3): false when
 * none. */
static bool upload_choice(arena *a, const store_upload *u, const char **algo, bool *full)
{
  for (size_t i = 0; i < u->nmeta; i++) {
    if (strcmp(u->meta[i].name, CHECKSUM_META) != 0)
      continue;
    const char *sp = strchr(u->meta[i].value, ' ');
    if (sp == NULL)
      return false;
    *algo = arena_strndup(a, u->meta[i].value, (size_t)(sp - u->meta[i].value));
    *full = strcmp(sp + 1, "FULL_OBJECT") == 0;
    return true;
  }
  return false;
}

bool s3_meta_upload_only(const char *name)
{
  return strcmp(name, CHECKSUM_META) == 0 || strcmp(name, LOCK_META) == 0;
}

/* The object lock CreateMultipartUpload's headers asked for, into x. */
static void upload_lock(const store_upload *u, store_expect *x)
{
  for (size_t i = 0; i < u->nmeta; i++) {
    int mode, hold;
    long long until;
    if (strcmp(u->meta[i].name, LOCK_META) == 0 &&
        sscanf(u->meta[i].value, "%d %lld %d", &mode, &until, &hold) == 3) {
      x->lock_mode = mode;
      x->retain_until_ms = until;
      x->legal_hold = hold != 0;
    }
  }
}

/* The object's checksum from the named parts (invariant 3), or *have false
 * when they do not all carry one of the same (supported) algorithm and the
 * upload asked for none. Errors: ERR_INVALID_PART when the document names a
 * checksum that differs from the stored one, ERR_INVALID_REQUEST when the
 * upload asked for an algorithm some part lacks. */
static int object_checksum(http_req *req, const store_upload *u, store_part **by,
                           const store_part_ref *refs, const xml_node **xparts, size_t n,
                           str_pair *out, bool *have, err *e)
{
  *have = false;
  const char *want = NULL;
  bool full = false;
  bool chosen = upload_choice(req->arena, u, &want, &full);
  const char *algo = NULL;
  bool all = true;
  for (size_t i = 0; i < n; i++) {
    const store_part *p = by[refs[i].number];
    const char *pa;
    const char *pv;
    if (p == NULL || !part_checksum(req->arena, p->checksum, &pa, &pv)) {
      all = false;
      if (chosen && p != NULL)
        return err_set(e, ERR_INVALID_REQUEST, "The upload was created using a %s checksum. "
                       "The complete request must include the checksum for each part. It was "
                       "missing for part %d in the request.", want, refs[i].number);
      continue;
    }
    if (chosen && strcmp(pa, want) != 0)
      return err_set(e, ERR_INVALID_REQUEST, "Checksum Type mismatch occurred, expected checksum "
                     "Type: %s, actual checksum Type: %s", want, pa);
    const char *xname = s3_checksum_xml_name(pa);
    const char *sent = xname != NULL ? xml_child_text(xparts[i], xname) : NULL;
    if (sent != NULL && strcmp(sent, pv) != 0)
      return err_set(e, ERR_INVALID_PART, "the %s checksum of part %d does not match the part's",
                     pa, refs[i].number);
    if (algo == NULL)
      algo = pa;
    else if (strcmp(algo, pa) != 0)
      all = false;
  }
  bool ok;
  enum hash_algo h = algo != NULL ? algo_of(algo, &ok) : HASH_CRC32;
  if (!all || algo == NULL || !ok)
    return 0;
  if (!chosen)
    full = h == HASH_CRC64NVME;
  size_t dl = hash_len(h);
  hasher hs;
  hash_init(&hs, full ? HASH_CRC32 : h);  /* composite: H over the part digests */
  uint64_t crc = 0;
  for (size_t i = 0; i < n; i++) {
    const store_part *p = by[refs[i].number];
    const char *pa = NULL;
    const char *pv = NULL;
    uint8_t d[SHA256_LEN];
    if (!part_checksum(req->arena, p->checksum, &pa, &pv) ||
        base64_decode(pv, strlen(pv), d, sizeof d) != (long)dl) {
      hash_release(&hs);
      return 0;
    }
    if (full) {
      uint64_t v = 0;
      for (size_t k = 0; k < dl; k++)
        v = (v << 8) | d[k];
      crc = i == 0 ? v : crc_combine(h, crc, v, p->size);
    } else {
      hash_update(&hs, d, dl);
    }
  }
  uint8_t digest[SHA256_LEN];
  if (full) {
    for (size_t k = 0; k < dl; k++)
      digest[k] = (uint8_t)(crc >> (8 * (dl - 1 - k)));
  } else {
    hash_final(&hs, digest);
  }
  hash_release(&hs);
  char *b64 = arena_alloc(req->arena, base64_encoded_len(dl));
  base64_encode(digest, dl, b64);
  out->name = arena_sprintf(req->arena, "x-amz-checksum-%s", algo);
  out->value = full ? b64 : arena_sprintf(req->arena, "%s-%zu", b64, n);
  /* the whole object's checksum sent with the complete must be this one */
  const char *sent = http_req_header(req, out->name);
  if (sent != NULL && strcmp(sent, out->value) != 0)
    return err_set(e, ERR_BAD_DIGEST, "The %s you specified did not match the calculated "
                   "checksum.", out->name);
  *have = true;
  return 0;
}

/* The CompleteMultipartUploadResult for o (sum: its composite checksum
 * header, or NULL). */
static int complete_answer(http_req *req, s3_call *c, const store_object *o, const str_pair *sum,
                           err *e)
{
  const char *host = http_req_header(req, "host");
  s3_xml x;
  s3_xml_open(&x, req, "CompleteMultipartUploadResult");
  s3_xml_text(&x, "Location", arena_sprintf(req->arena, "http://%s/%s/%s",
                                            host != NULL ? host : "localhost", c->bucket,
                                            uri_encode(req->arena, c->key, strlen(c->key), true)));
  s3_xml_text(&x, "Bucket", c->bucket);
  s3_xml_text(&x, "Key", c->key);
  s3_xml_etag(&x, "ETag", o->etag);
  if (sum != NULL) {
    s3_xml_text(&x, s3_checksum_xml_name(sum->name + 15), sum->value);
    s3_xml_text(&x, "ChecksumType", strchr(sum->value, '-') != NULL ? "COMPOSITE" : "FULL_OBJECT");
  }
  s3_xml_close(&x, "CompleteMultipartUploadResult");
  return s3_xml_done(&x, e);
}

/* A complete of an upload that no longer exists: when the object at the
 * key is the one this upload made, the client is retrying a complete
 * whose answer it lost; S3 answers it again (invariant (4)). */
static int complete_again(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  store_object o;
  err ignored;
  err_clear(&ignored);
  if (c->upload_id == NULL || *c->upload_id == '\0' ||
      store_object_get(s->st, c->bucket, c->key, req->arena, &o, NULL, &ignored) != 0 ||
      strcmp(o.upload_id, c->upload_id) != 0)
    return ERR_NO_SUCH_UPLOAD;
  const str_pair *sum = NULL;
  for (size_t i = 0; i < o.nmeta; i++)
    if (str_starts(o.meta[i].name, "x-amz-checksum-") &&
        s3_checksum_xml_name(o.meta[i].name + 15) != NULL)
      sum = &o.meta[i];
  err_clear(e);
  return complete_answer(req, c, &o, sum, e);
}

int s3_complete_upload(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  store_upload u;
  int rc = upload_lookup(s, req, c, &u, e);
  if (rc == ERR_NO_SUCH_UPLOAD && complete_again(s, req, c, e) == 0)
    return 0;
  if (rc != 0)
    return rc;
  xml_node *root;
  rc = s3_body_xml(req, "CompleteMultipartUpload", &root, e);
  if (rc != 0)
    return rc;
  size_t n = 0;
  for (xml_node *p = xml_child(root, "Part"); p != NULL; p = xml_next_same(p))
    n++;
  if (n == 0 || n > STORE_MAX_PARTS)
    return err_set(e, ERR_MALFORMED_XML, "a CompleteMultipartUpload names 1 to %d parts, not %zu",
                   STORE_MAX_PARTS, n);
  store_part_ref *refs = arena_alloc(req->arena, n * sizeof *refs);
  const xml_node **xparts = arena_alloc(req->arena, n * sizeof *xparts);
  size_t i = 0;
  for (xml_node *p = xml_child(root, "Part"); p != NULL; p = xml_next_same(p), i++) {
    long num;
    const char *etag = xml_child_text(p, "ETag");
    if (!s3_parse_long(xml_child_text(p, "PartNumber"), 1, STORE_MAX_PARTS, &num) || etag == NULL)
      return err_set(e, ERR_MALFORMED_XML, "every <Part> needs a <PartNumber> (1 to %d) and an <ETag>",
                     STORE_MAX_PARTS);
    refs[i].number = (int)num;
    refs[i].etag = etag;
    xparts[i] = p;
  }

  store_part **by;
  rc = parts_by_number(s, req, c, &by, e);
  if (rc != 0)
    return rc;
  str_pair sum;
  bool have_sum;
  rc = object_checksum(req, &u, by, refs, xparts, n, &sum, &have_sum, e);
  if (rc != 0)
    return rc;

  store_expect x;
  if ((rc = s3_write_expect(req, &x, e)) != 0)
    return rc;
  upload_lock(&u, &x);
  store_object o;
  rc = store_upload_complete_if(s->st, c->bucket, c->key, c->upload_id, refs, n,
                                have_sum ? &sum : NULL, have_sum ? 1 : 0, &x, req->arena, &o, e);
  if (rc != 0)
    return rc;
  s3_expiration_header(s, req, &o);
  s3_sse_answer(req, o.sse, NULL);
  if (o.version_id != NULL)
    http_resp_header(req, "x-amz-version-id", o.version_id);
  return complete_answer(req, c, &o, have_sum ? &sum : NULL, e);
}

int s3_abort_upload(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  c->upload_id = http_req_param(req, "uploadId");
  int rc = store_upload_abort(s->st, c->bucket, c->key, c->upload_id, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

/* ---- listings ---- */

/* <ChecksumAlgorithm> and <ChecksumType> of an upload created with one. */
static void checksum_choice_xml(s3_xml *x, http_req *req, const store_upload *u)
{
  const char *algo;
  bool full;
  if (!upload_choice(req->arena, u, &algo, &full))
    return;
  char *upper = arena_strdup(req->arena, algo);
  for (char *p = upper; *p != '\0'; p++)
    if (*p >= 'a' && *p <= 'z')
      *p = (char)(*p - 'a' + 'A');
  s3_xml_text(x, "ChecksumAlgorithm", upper);
  s3_xml_text(x, "ChecksumType", full ? "FULL_OBJECT" : "COMPOSITE");
}

int s3_list_parts(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *pm = http_req_param(req, "part-number-marker");
  const char *mp = http_req_param(req, "max-parts");
  long marker = 0;
  long max = PAGE_MAX;
  if (pm != NULL && !s3_parse_long(pm, 0, STORE_MAX_PARTS, &marker))
    return err_set(e, ERR_INVALID, "part-number-marker must be an integer between 0 and %d",
                   STORE_MAX_PARTS);
  if (mp != NULL && !s3_parse_long(mp, 0, 2147483647L, &max))
    return err_set(e, ERR_INVALID, "max-parts must be a non-negative integer");
  if (max > PAGE_MAX)
    max = PAGE_MAX;
  store_upload u;
  int rc = upload_lookup(s, req, c, &u, e);
  if (rc != 0)
    return rc;
  store_part *parts = NULL;
  size_t n = 0;
  bool truncated = false;
  rc = store_part_list(s->st, c->bucket, c->key, c->upload_id, (int)marker, (size_t)max,
                       req->arena, &parts, &n, &truncated, e);
  if (rc != 0)
    return rc;

  s3_xml x;
  s3_xml_open(&x, req, "ListPartsResult");
  s3_xml_text(&x, "Bucket", c->bucket);
  s3_xml_text(&x, "Key", c->key);
  s3_xml_text(&x, "UploadId", c->upload_id);
  s3_xml_owner(&x, "Initiator");
  s3_xml_owner(&x, "Owner");
  s3_xml_text(&x, "StorageClass", "STANDARD");
  s3_xml_textf(&x, "PartNumberMarker", "%ld", marker);
  s3_xml_textf(&x, "NextPartNumberMarker", "%d", n > 0 ? parts[n - 1].number : 0);
  s3_xml_textf(&x, "MaxParts", "%ld", max);
  s3_xml_bool(&x, "IsTruncated", truncated);
  checksum_choice_xml(&x, req, &u);
  for (size_t i = 0; i < n; i++) {
    s3_xml_start(&x, "Part");
    s3_xml_textf(&x, "PartNumber", "%d", parts[i].number);
    s3_xml_time(&x, "LastModified", parts[i].mtime_ms);
    s3_xml_etag(&x, "ETag", parts[i].etag);
    s3_xml_textf(&x, "Size", "%llu", (unsigned long long)parts[i].size);
    const char *pa;
    const char *pv;
    if (part_checksum(req->arena, parts[i].checksum, &pa, &pv) && s3_checksum_xml_name(pa) != NULL)
      s3_xml_text(&x, s3_checksum_xml_name(pa), pv);
    s3_xml_end(&x, "Part");
  }
  s3_xml_close(&x, "ListPartsResult");
  return s3_xml_done(&x, e);
}

/* One entry of ListMultipartUploads: an upload, or a common prefix. */
typedef struct upload_entry {
  const store_upload *upload;  /* NULL for a common prefix */
  const char *prefix;
} upload_entry;

int s3_list_uploads(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int url = s3_encoding_type(req, e);
  if (url < 0)
    return url;
  const char *prefix = http_req_param(req, "prefix");
  const char *delim = http_req_param(req, "delimiter");
  const char *km = http_req_param(req, "key-marker");
  const char *um = http_req_param(req, "upload-id-marker");
  const char *mu = http_req_param(req, "max-uploads");
  long max = PAGE_MAX;
  if (mu != NULL && !s3_parse_long(mu, 0, 2147483647L, &max))
    return err_set(e, ERR_INVALID, "max-uploads must be a non-negative integer");
  if (max > PAGE_MAX)
    max = PAGE_MAX;
  if (km != NULL && *km == '\0')
    km = NULL;
  const char *cur_um = km != NULL && um != NULL && *um != '\0' ? um : NULL;
  const char *cur_km = km;
  if (prefix == NULL)
    prefix = "";
  if (delim != NULL && *delim == '\0')
    delim = NULL;

  upload_entry *ent = arena_alloc(req->arena, ((size_t)max + 1) * sizeof *ent);
  size_t nent = 0;
  bool truncated = false;
  const char *last_prefix = NULL;
  bool more = true;
  store_bucket b;
  int rc = store_bucket_get(s->st, c->bucket, req->arena, &b, e);
  if (rc != 0)
    return rc;
  while (more && !truncated && max > 0) {
    store_upload *u;
    size_t n;
    rc = store_upload_list(s->st, c->bucket, prefix, cur_km, cur_um, PAGE_MAX, req->arena,
                           &u, &n, &more, e);
    if (rc != 0)
      return rc;
    for (size_t i = 0; i < n && !truncated; i++) {
      const char *cp = NULL;
      if (delim != NULL) {
        const char *d = strstr(u[i].key + strlen(prefix), delim);
        if (d != NULL)
          cp = arena_strndup(req->arena, u[i].key, (size_t)(d - u[i].key) + strlen(delim));
      }
      if (cp != NULL && ((last_prefix != NULL && strcmp(cp, last_prefix) == 0) ||
                         (km != NULL && strcmp(cp, km) == 0)))
        continue;  /* rolled up already, on this page or the previous one */
      if (nent == (size_t)max) {
        truncated = true;
        break;
      }
      if (cp != NULL) {
        ent[nent].prefix = cp;
        last_prefix = cp;
      } else {
        ent[nent].upload = &u[i];
      }
      nent++;
    }
    if (n == 0)
      break;
    cur_km = u[n - 1].key;
    cur_um = u[n - 1].upload_id;
  }

  s3_xml x;
  s3_xml_open(&x, req, "ListMultipartUploadsResult");
  s3_xml_text(&x, "Bucket", c->bucket);
  s3_xml_text(&x, "KeyMarker", s3_list_enc(req, url, km != NULL ? km : ""));
  s3_xml_text(&x, "UploadIdMarker", um != NULL ? um : "");
  if (truncated && nent > 0) {
    const upload_entry *last = &ent[nent - 1];
    s3_xml_text(&x, "NextKeyMarker",
                s3_list_enc(req, url, last->upload != NULL ? last->upload->key : last->prefix));
    s3_xml_text(&x, "NextUploadIdMarker", last->upload != NULL ? last->upload->upload_id : "");
  }
  if (delim != NULL)
    s3_xml_text(&x, "Delimiter", s3_list_enc(req, url, delim));
  s3_xml_text(&x, "Prefix", s3_list_enc(req, url, prefix));
  s3_xml_textf(&x, "MaxUploads", "%ld", max);
  if (url)
    s3_xml_text(&x, "EncodingType", "url");
  s3_xml_bool(&x, "IsTruncated", truncated);
  for (size_t i = 0; i < nent; i++) {
    const store_upload *up = ent[i].upload;
    if (up == NULL)
      continue;
    s3_xml_start(&x, "Upload");
    s3_xml_text(&x, "Key", s3_list_enc(req, url, up->key));
    s3_xml_text(&x, "UploadId", up->upload_id);
    s3_xml_owner(&x, "Initiator");
    s3_xml_owner(&x, "Owner");
    s3_xml_text(&x, "StorageClass", "STANDARD");
    checksum_choice_xml(&x, req, up);
    s3_xml_time(&x, "Initiated", up->initiated_ms);
    s3_xml_end(&x, "Upload");
  }
  for (size_t i = 0; i < nent; i++) {
    if (ent[i].upload != NULL)
      continue;
    s3_xml_start(&x, "CommonPrefixes");
    s3_xml_text(&x, "Prefix", s3_list_enc(req, url, ent[i].prefix));
    s3_xml_end(&x, "CommonPrefixes");
  }
  s3_xml_close(&x, "ListMultipartUploadsResult");
  return s3_xml_done(&x, e);
}
