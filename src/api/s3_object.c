/* api/s3_object.c -- S3's object operations: PutObject, GetObject,
 * HeadObject, DeleteObject, DeleteObjects, CopyObject and object tagging.
 *
 * Invariants:
 *   (1) PutObject checks everything it can (key, metadata, tags, bucket,
 *       declared size) in prepare, before a byte is stored; its bytes go
 *       into a store writer and are committed only in s3_put_object(), so a
 *       body that fails a check later is unlinked in cleanup.
 *   (2) Stored metadata is what GetObject/HeadObject answer as headers,
 *       names in lower case. x-amz-checksum-* is stored with the object but
 *       returned only with x-amz-checksum-mode: ENABLED on a whole-object
 *       answer (a range has no checksum of its own).
 *   (3) ETags are hex MD5 ("-N" for multipart), quoted on the wire.
 *   (4) GetObject sends a blob as a descriptor (the HTTP edge reads small
 *       ones into memory) and an inline object (store.h) from its bytes in
 *       the request's arena, copied into the response body.
 *   (5) ?partNumber=n answers the bytes of part n (206, Content-Range,
 *       x-amz-mp-parts-count) from the part sizes the store recorded at
 *       complete; a non-multipart object is one part. No such part of a
 *       multipart object is 416 InvalidPartNumber; a part past 1 of a
 *       non-multipart object is 400 InvalidPart.
 *   (6) ?versionId= (GET, HEAD, DELETE, tagging) and a copy source's
 *       versionId name one version; the version headers, delete markers and
 *       object lock headers come from s3_version.c (s3_version_headers,
 *       s3_delete_object_version), kept out of this file's handlers.
 *   (7) CopyObject with x-amz-checksum-algorithm computes the copy's
 *       checksum from the source's bytes (read through the store: the
 *       plaintext of an encrypted source), keeps it instead of the source's
 *       and answers it in CopyObjectResult (FULL_OBJECT); without it the
 *       source's checksums go with the bytes.
 *
 * Start reading at s3_put_object_prepare() and s3_send_object().
 */
#include "api/s3_internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- PutObject ---- */

int s3_put_object_prepare(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = s3_meta_from_headers(req, &c->meta, &c->nmeta, e);
  if (rc != 0)
    return rc;
  rc = s3_tags_from_header(req, &c->tags, &c->ntags, e);
  if (rc != 0)
    return rc;
  store_bucket b;
  rc = store_bucket_get(s->st, c->bucket, req->arena, &b, e);
  if (rc != 0)
    return rc;
  /* a conditional write that cannot hold fails before its body is read
     (and is checked again in the commit itself) */
  store_expect x;
  if ((rc = s3_write_expect(req, &x, e)) != 0 || (rc = s3_write_expect_check(s, req, c, &x, e)) != 0)
    return rc;
  if ((rc = s3_lock_from_headers(s, req, c->bucket, &x, e)) != 0)
    return rc;
  s3_sse_key k;
  if ((rc = s3_sse_target(s, req, c->bucket, &k, &c->sse, e)) != 0)
    return rc;
  c->sse_key_md5 = k.key_md5;
  rc = s3_stream_begin(s, req, c, S3_MAX_PUT_SIZE, e);
  if (rc == 0)
    rc = s3_sse_writer(s, req, c->writer, c->sse, &k, e);
  if (rc == 0 && c->declared > 0)
    store_writer_expect(c->writer, (uint64_t)c->declared);
  return rc;
}

/* meta plus the verified checksum of the body, when the client sent one. */
static void meta_add_checksum(http_req *req, s3_call *c)
{
  if (req->checksum_name == NULL || req->checksum_value == NULL)
    return;
  str_pair *m = arena_alloc(req->arena, (c->nmeta + 1) * sizeof *m);
  if (c->nmeta > 0)
    memcpy(m, c->meta, c->nmeta * sizeof *m);
  m[c->nmeta].name = req->checksum_name;
  m[c->nmeta].value = req->checksum_value;
  c->meta = m;
  c->nmeta++;
}

int s3_write_expect(http_req *req, store_expect *x, err *e)
{
  memset(x, 0, sizeof *x);
  const char *inm = http_req_header(req, "if-none-match");
  const char *im = http_req_header(req, "if-match");
  if (inm != NULL) {
    if (strcmp(inm, "*") != 0)
      return err_set(e, ERR_NOT_IMPLEMENTED, "A header you provided implies functionality that is "
                     "not implemented: If-None-Match supports only '*' on writes");
    x->absent = true;
  }
  if (im != NULL) {
    if (im[0] == '\0' || strcmp(im, "*") == 0)
      return err_set(e, ERR_NOT_IMPLEMENTED, "A header you provided implies functionality that is "
                     "not implemented: If-Match needs an ETag on writes");
    x->etag = im;
  }
  return 0;
}

int s3_write_expect_check(s3_svc *s, http_req *req, const s3_call *c, const store_expect *x,
                          err *e)
{
  if (!x->absent && x->etag == NULL)
    return 0;
  store_object old;
  int rc = store_object_get(s->st, c->bucket, c->key, req->arena, &old, NULL, e);
  if (rc == ERR_NO_SUCH_KEY) {
    if (x->etag == NULL) {
      err_clear(e);
      return 0;
    }
    return err_set(e, ERR_NO_SUCH_KEY, "The specified key does not exist.");
  }
  if (rc != 0)
    return rc;
  if (x->absent || strcmp(s3_unquote_etag(req->arena, x->etag), old.etag) != 0)
    return err_set(e, ERR_PRECONDITION, "At least one of the pre-conditions you specified did not "
                   "hold");
  return 0;
}

int s3_put_object(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  store_expect x;
  int rc = s3_write_expect(req, &x, e);
  if (rc == 0)
    rc = s3_lock_from_headers(s, req, c->bucket, &x, e);
  if (rc != 0)
    return rc;
  const char *etag = s3_writer_etag(req, c);
  meta_add_checksum(req, c);
  store_object o;
  rc = store_object_commit_if(c->writer, c->bucket, c->key, etag, c->meta, c->nmeta,
                              c->tags, c->ntags, &x, req->arena, &o, e);
  if (rc == ERR_NO_SUCH_KEY && x.etag != NULL) {
    /* it matched in prepare and was deleted while the body arrived: S3's
       409, which asks the client to retry */
    err_clear(e);
    return err_set(e, ERR_CONDITIONAL_CONFLICT, "A conflicting operation occurred. If using "
                   "PutObject you can retry the request.");
  }
  if (rc != 0)
    return rc;
  http_resp_header(req, "ETag", s3_quote_etag(req->arena, etag));
  s3_sse_answer(req, c->sse, c->sse_key_md5);
  s3_expiration_header(s, req, &o);
  if (o.version_id != NULL)
    http_resp_header(req, "x-amz-version-id", o.version_id);
  if (req->checksum_name != NULL && req->checksum_value != NULL)
    http_resp_header(req, req->checksum_name, req->checksum_value);
  return 0;
}

/* ---- GetObject / HeadObject ---- */

#define RANGE_MAX 999999999999999999L  /* 18 digits: what s3_parse_long takes */

/* Range: bytes=a-b | a- | -n. Returns 1 with the span to send, 0 to send
 * the whole object (no header, a syntax S3 ignores, or several ranges), or
 * ERR_INVALID_RANGE. */
static int range_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *len)
{
  if (h == NULL || strncmp(h, "bytes=", 6) != 0)
    return 0;
  const char *spec = h + 6;
  if (strchr(spec, ',') != NULL)
    return 0;
  const char *dash = strchr(spec, '-');
  if (dash == NULL)
    return 0;
  char a[24];
  size_t an = (size_t)(dash - spec);
  if (an >= sizeof a)
    return 0;
  memcpy(a, spec, an);
  a[an] = '\0';
  const char *b = dash + 1;
  long av = 0;
  long bv = 0;
  if (an == 0) {  /* suffix: the last n bytes */
    if (!s3_parse_long(b, 0, RANGE_MAX, &bv))
      return 0;
    if (bv == 0 || size == 0)
      return ERR_INVALID_RANGE;
    uint64_t n = (uint64_t)bv < size ? (uint64_t)bv : size;
    *first = size - n;
    *len = n;
    return 1;
  }
  if (!s3_parse_long(a, 0, RANGE_MAX, &av))
    return 0;
  uint64_t last = size == 0 ? 0 : size - 1;
  if (*b != '\0') {
    if (!s3_parse_long(b, 0, RANGE_MAX, &bv) || bv < av)
      return 0;
    if ((uint64_t)bv < last)
      last = (uint64_t)bv;
  }
  if ((uint64_t)av >= size)
    return ERR_INVALID_RANGE;
  *first = (uint64_t)av;
  *len = last - (uint64_t)av + 1;
  return 1;
}

/* ?partNumber=n: 1 with the part's span (a non-multipart object is one
 * part, the whole object, sent as a range as S3 does), or -1 when the
 * object has no part n. */
static int part_span(const store_object *o, int n, uint64_t *first, uint64_t *len)
{
  if (o->nparts == 0 || o->part_sizes == NULL) {
    if (n != 1)
      return -1;
    *first = 0;
    *len = o->size;
    return 1;
  }
  if ((size_t)n > o->nparts)
    return -1;
  uint64_t off = 0;
  for (int i = 0; i < n - 1; i++)
    off += o->part_sizes[i];
  *first = off;
  *len = o->part_sizes[n - 1];
  return 1;
}

/* response-* query parameters and the header each overrides. */
static const char *const overrides[][2] = {
  {"response-content-type", "content-type"},
  {"response-content-language", "content-language"},
  {"response-expires", "expires"},
  {"response-cache-control", "cache-control"},
  {"response-content-disposition", "content-disposition"},
  {"response-content-encoding", "content-encoding"},
};
#define NOVERRIDES (sizeof overrides / sizeof overrides[0])

/* The usual spelling of a stored header name (names are stored lower-case). */
static const char *header_name(const char *name)
{
  static const char *const canon[] = {
    "Content-Type", "Content-Encoding", "Content-Disposition",
    "Cache-Control", "Content-Language", "Expires",
  };
  for (size_t i = 0; i < sizeof canon / sizeof canon[0]; i++)
    if (str_ieq(canon[i], name))
      return canon[i];
  return name;
}

static bool overridden(http_req *req, const char *name)
{
  for (size_t i = 0; i < NOVERRIDES; i++)
    if (strcmp(overrides[i][1], name) == 0 && http_req_param(req, overrides[i][0]) != NULL)
      return true;
  return false;
}

static void object_headers(http_req *req, const store_object *o)
{
  char date[30];
  time_format_rfc1123((time_t)(o->mtime_ms / 1000), date);
  http_resp_header(req, "ETag", s3_quote_etag(req->arena, o->etag));
  http_resp_header(req, "Last-Modified", date);
}

/* The object a GET or HEAD names: ?versionId= picks a version (a delete
 * marker is 405 MethodNotAllowed); a key whose current version is a delete
 * marker is 404 with x-amz-delete-marker. The website (whole) reads the
 * current version. */
static int versioned_get(s3_svc *s, http_req *req, const char *bucket, const char *key,
                         bool whole, store_object *o, int *fd, err *e)
{
  const char *vid = whole ? NULL : s3_version_param(req);
  int rc = store_object_get_version(s->st, bucket, key, vid, req->arena, o, fd, e);
  if (rc == ERR_NO_SUCH_KEY && vid == NULL)
    s3_missing_object_headers(s, req, bucket, key);
  if (rc == 0 && o->delete_marker) {
    s3_version_headers(req, o);
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "The specified method is not allowed against this "
                   "resource.");
  }
  return rc;
}

int s3_send_object(s3_svc *s, http_req *req, const char *bucket, const char *key, bool whole,
                   err *e)
{
  bool any_override = false;
  for (size_t i = 0; i < NOVERRIDES; i++)
    if (http_req_param(req, overrides[i][0]) != NULL)
      any_override = true;
  if (any_override && !req->authenticated)
    return err_set(e, ERR_INVALID_REQUEST,
                   "request specific response headers cannot be used for anonymous GET requests");

  int part = 0;
  const char *pn = whole ? NULL : http_req_param(req, "partNumber");
  if (pn != NULL) {
    long v;
    if (!s3_parse_long(pn, 1, STORE_MAX_PARTS, &v))
      return err_set(e, ERR_INVALID, "part number must be an integer between 1 and %d, inclusive",
                     STORE_MAX_PARTS);
    if (http_req_header(req, "range") != NULL)
      return err_set(e, ERR_INVALID_REQUEST,
                     "cannot specify both Range header and partNumber query parameter");
    part = (int)v;
  }
  store_object o;
  int fd = -1;
  int rc = versioned_get(s, req, bucket, key, whole, &o, &fd, e);
  if (rc != 0)
    return rc;
  const char *key_md5 = NULL;
  rc = s3_sse_unlock(s, req, &o, false, &key_md5, e);
  if (rc != 0) {
    if (fd >= 0)
      close(fd);
    return rc;
  }
  if (!whole)
    s3_expiration_header(s, req, &o);
  rc = whole ? 0 : s3_conditions(req, "if-", &o, e);
  if (rc != 0) {
    if (rc == ERR_NOT_MODIFIED)
      object_headers(req, &o);
    if (fd >= 0)
      close(fd);
    return rc;
  }
  uint64_t first = 0;
  uint64_t len = o.size;
  int ranged = 0;
  if (part != 0) {
    ranged = part_span(&o, part, &first, &len);
    if (ranged < 0 && o.nparts == 0) {
      if (fd >= 0)
        close(fd);
      return err_set(e, ERR_INVALID_PART, "the object was not uploaded in parts: "
                     "part %d does not exist", part);
    }
    if (ranged < 0) {
      if (fd >= 0)
        close(fd);
      return err_set(e, ERR_INVALID_PART_NUMBER, "the requested partnumber is not satisfiable: "
                     "the object has %zu part%s", o.nparts > 0 ? o.nparts : 1,
                     o.nparts > 1 ? "s" : "");
    }
    if (o.nparts > 0)
      http_resp_headerf(req, "x-amz-mp-parts-count", "%zu", o.nparts);
    if (len == 0)
      ranged = 0;  /* an empty object: no range to name */
  } else {
    ranged = whole ? 0 : range_parse(http_req_header(req, "range"), o.size, &first, &len);
  }
  if (ranged < 0) {
    if (fd >= 0)
      close(fd);
    http_resp_headerf(req, "Content-Range", "bytes */%llu", (unsigned long long)o.size);
    return err_set(e, ERR_INVALID_RANGE, "the requested range is not satisfiable: the object has %llu bytes",
                   (unsigned long long)o.size);
  }

  const char *mode = http_req_header(req, "x-amz-checksum-mode");
  bool checksums = mode != NULL && str_ieq(mode, "ENABLED") && ranged == 0;
  for (size_t i = 0; i < o.nmeta; i++) {
    const char *name = o.meta[i].name;
    if (s3_meta_internal(name))
      continue;
    if (str_starts(name, "x-amz-checksum-")) {
      if (!checksums)
        continue;
      http_resp_header(req, "x-amz-checksum-type",
                       strchr(o.meta[i].value, '-') != NULL ? "COMPOSITE" : "FULL_OBJECT");
    }
    if (overridden(req, name))
      continue;
    http_resp_header(req, header_name(name), o.meta[i].value);  /* "" too: server.c */
  }
  for (size_t i = 0; i < NOVERRIDES; i++) {
    const char *v = http_req_param(req, overrides[i][0]);
    if (v != NULL)
      http_resp_header(req, header_name(overrides[i][1]), v);
  }
  object_headers(req, &o);
  s3_sse_answer(req, o.sse, key_md5);
  s3_version_headers(req, &o);
  http_resp_header(req, "Accept-Ranges", "bytes");
  if (o.ntags > 0)
    http_resp_headerf(req, "x-amz-tagging-count", "%zu", o.ntags);
  if (ranged > 0) {
    http_resp_status(req, 206);
    http_resp_headerf(req, "Content-Range", "bytes %llu-%llu/%llu", (unsigned long long)first,
                      (unsigned long long)(first + len - 1), (unsigned long long)o.size);
  }
  if ((fd >= 0 && o.sse != STORE_SSE_NONE) || o.remote != NULL)
    return s3_sse_send(req, &o, fd, first, len, e);  /* decrypted, or fetched, as it is sent */
  if (fd >= 0)
    http_resp_fd(req, fd, first, len);
  else if (len > 0 && buf_append(&req->resp_body, (const char *)o.data + first, (size_t)len) != 0)
    abort();  /* at most STORE_INLINE_MAX bytes: far below the body's limit */
  return 0;
}

int s3_get_object(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  return s3_send_object(s, req, c->bucket, c->key, false, e);
}

int s3_head_object(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  return s3_send_object(s, req, c->bucket, c->key, false, e);
}

/* ---- deleting ---- */

int s3_delete_object(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *im = http_req_header(req, "if-match");
  if (im != NULL && s3_version_param(req) == NULL) {
    int rc = store_object_delete_if_match(s->st, c->bucket, c->key, im, NULL, e);
    if (rc != 0)
      return rc;
    http_resp_status(req, 204);
    return 0;
  }
  return s3_delete_object_version(s, req, c, e);
}

int s3_delete_objects(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "Delete", &root, e);
  if (rc != 0)
    return rc;
  const char *q = xml_child_text(root, "Quiet");
  bool quiet = q != NULL && str_ieq(q, "true");
  size_t n = 0;
  for (xml_node *o = xml_child(root, "Object"); o != NULL; o = xml_next_same(o)) {
    if (xml_child_text(o, "Key") == NULL)
      return err_set(e, ERR_MALFORMED_XML, "every <Object> must have a <Key>");
    n++;
  }
  if (n == 0 || n > S3_MAX_DELETE_KEYS)
    return err_set(e, ERR_MALFORMED_XML, "a DeleteObjects request names 1 to %d objects, not %zu",
                   S3_MAX_DELETE_KEYS, n);
  store_bucket b;
  rc = store_bucket_get(s->st, c->bucket, req->arena, &b, e);
  if (rc != 0)
    return rc;

  s3_xml x;
  s3_xml_open(&x, req, "DeleteResult");
  for (xml_node *o = xml_child(root, "Object"); o != NULL; o = xml_next_same(o)) {
    const xml_node *kn = xml_child(o, "Key");
    const char *key = kn->text;
    err ke;
    err_clear(&ke);
    if (strlen(key) != kn->text_len)
      rc = err_set(&ke, ERR_INVALID, "object key must not contain NUL characters");
    else if (*key == '\0')
      rc = err_set(&ke, ERR_INVALID, "object key must not be empty");
    else
      rc = s3_key_check(key, &ke);
    const char *vid = xml_child_text(o, "VersionId");
    store_delete_result dr;
    memset(&dr, 0, sizeof dr);
    bool bypass = false;
    if (rc == 0)
      rc = s3_bypass_governance(req, c->bucket, key, &bypass, &ke);
    if (rc == 0)
      rc = store_object_delete_version(s->st, c->bucket, key, vid, bypass, &dr, &ke);
    if (rc != 0) {
      s3_xml_start(&x, "Error");
      s3_xml_text(&x, "Key", key);
      if (vid != NULL)
        s3_xml_text(&x, "VersionId", vid);
      s3_xml_text(&x, "Code", err_aws_code(rc));
      s3_xml_text(&x, "Message", ke.msg);
      s3_xml_end(&x, "Error");
    } else if (!quiet) {
      s3_delete_result_xml(&x, key, vid, &dr);
    }
  }
  s3_xml_close(&x, "DeleteResult");
  return s3_xml_done(&x, e);
}

/* ---- CopyObject ---- */

/* "COPY" (the default) or "REPLACE"; *replace tells which. */
static int directive(http_req *req, const char *header, bool *replace, err *e)
{
  const char *v = http_req_header(req, header);
  *replace = false;
  if (v == NULL || strcmp(v, "COPY") == 0)
    return 0;
  if (strcmp(v, "REPLACE") == 0) {
    *replace = true;
    return 0;
  }
  return err_set(e, ERR_INVALID, "unknown %s '%s': COPY or REPLACE", header, v);
}

/* CopyObject through a decrypting reader and an encrypting writer: the
 * source or the target is encrypted, so the copy cannot share the
 * source's blob (each object has its own data key, or none). meta / tags
 * NULL keep the source's. The answer's etag is the copy's own (for SSE-S3
 * the MD5 of the data, as a PUT's). */
static int copy_through(s3_svc *s, http_req *req, s3_call *c, const char *sb, const char *sk,
                        const char *svid, const str_pair *meta, size_t nmeta, const str_pair *tags, size_t ntags,
                        int mode, const s3_sse_key *k, store_object *out, err *e)
{
  store_object src;
  int fd = -1;
  int rc = store_object_get_version(s->st, sb, sk, svid, req->arena, &src, &fd, e);
  if (rc != 0)
    return rc;
  const char *md5_ignored;
  rc = s3_sse_unlock(s, req, &src, true, &md5_ignored, e);
  store_writer *w = NULL;
  if (rc == 0)
    rc = store_writer_new(s->st, &w, e);
  if (rc == 0)
    rc = s3_sse_writer(s, req, w, mode, k, e);
  if (rc == 0)
    rc = store_writer_commit_copy(w, &src, fd, c->bucket, c->key, meta, nmeta, tags, ntags,
                                  req->arena, out, e);   /* takes fd */
  else if (fd >= 0)
    close(fd);
  store_writer_free(w);
  return rc;
}

int s3_copy_object(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *sb;
  const char *sk;
  int rc = s3_copy_source(req, &sb, &sk, e);
  if (rc != 0)
    return rc;
  bool replace_meta;
  bool replace_tags;
  rc = directive(req, "x-amz-metadata-directive", &replace_meta, e);
  if (rc == 0)
    rc = directive(req, "x-amz-tagging-directive", &replace_tags, e);
  if (rc != 0)
    return rc;
  const char *svid = s3_copy_source_version(req);  /* s3_version.c */
  if (strcmp(sb, c->bucket) == 0 && strcmp(sk, c->key) == 0 && !replace_meta &&
      !s3_sse_requested(req) && svid == NULL)
    return err_set(e, ERR_INVALID_REQUEST,
                   "this copy request is illegal because it is trying to copy an object to itself "
                   "without changing the object's metadata, storage class, website redirect "
                   "location or encryption attributes");

  if (svid != NULL && (rc = store_version_id_check(svid, e)) != 0)
    return rc;
  const char *algo;
  enum hash_algo h;
  if ((rc = s3_copy_checksum_algo(req, &algo, &h, e)) != 0)
    return rc;
  store_object src;
  int fd = -1;   /* only to compute the copy's checksum */
  rc = store_object_get_version(s->st, sb, sk, svid, req->arena, &src, algo != NULL ? &fd : NULL,
                                e);
  if (rc == 0 && src.delete_marker)
    rc = err_set(e, svid != NULL ? ERR_INVALID_REQUEST : ERR_NO_SUCH_KEY,
                 "The source of a copy request may not specifically refer to a delete marker "
                 "by version id.");
  if (rc == 0)
    rc = s3_conditions(req, "x-amz-copy-source-if-", &src, e);
  s3_sse_key tk;
  const char *src_md5;
  if (rc == 0 && (rc = s3_sse_unlock(s, req, &src, true, &src_md5, e)) == 0)
    rc = s3_sse_target(s, req, c->bucket, &tk, &c->sse, e);
  const char *sum = NULL;   /* the copy's new checksum (invariant 7) */
  if (rc == 0 && algo != NULL)
    rc = s3_checksum_of(req, &src, fd, 0, src.size, h, &sum, e);
  if (fd >= 0)
    close(fd);
  if (rc != 0)
    return rc;

  str_pair *meta = NULL;
  size_t nmeta = 0;
  if (replace_meta) {
    rc = s3_meta_from_headers(req, &meta, &nmeta, e);
    if (rc != 0)
      return rc;
    /* the checksums describe the bytes, which the copy keeps */
    size_t nsum = 0;
    for (size_t i = 0; i < src.nmeta; i++)
      if (str_starts(src.meta[i].name, "x-amz-checksum-"))
        nsum++;
    str_pair *m = arena_alloc(req->arena, (nmeta + nsum + 1) * sizeof *m);
    memcpy(m, meta, nmeta * sizeof *m);
    for (size_t i = 0; sum == NULL && i < src.nmeta; i++)
      if (str_starts(src.meta[i].name, "x-amz-checksum-"))
        m[nmeta++] = src.meta[i];
    meta = m;
  } else if (sum != NULL) {   /* the source's metadata, its checksum replaced */
    meta = arena_alloc(req->arena, (src.nmeta + 1) * sizeof *meta);
    for (size_t i = 0; i < src.nmeta; i++)
      if (!str_starts(src.meta[i].name, "x-amz-checksum-"))
        meta[nmeta++] = src.meta[i];
  }
  if (sum != NULL)
    meta[nmeta++] = (str_pair){arena_sprintf(req->arena, "x-amz-checksum-%s", algo), sum};
  if (meta == NULL) { /* the source's metadata, without what belonged to its upload */
    for (size_t i = 0; i < src.nmeta && meta == NULL; i++)
      if (s3_meta_upload_only(src.meta[i].name))
        meta = arena_alloc(req->arena, (src.nmeta + 1) * sizeof *meta);
    for (size_t i = 0; meta != NULL && i < src.nmeta; i++)
      if (!s3_meta_upload_only(src.meta[i].name))
        meta[nmeta++] = src.meta[i];
  } else {
    size_t kept = 0;
    for (size_t i = 0; i < nmeta; i++)
      if (!s3_meta_upload_only(meta[i].name))
        meta[kept++] = meta[i];
    nmeta = kept;
  }
  str_pair *tags = NULL;
  size_t ntags = 0;
  if (replace_tags) {
    rc = s3_tags_from_header(req, &tags, &ntags, e);
    if (rc != 0)
      return rc;
    if (tags == NULL)
      tags = arena_alloc(req->arena, sizeof *tags);  /* REPLACE with no tags */
  }
  if ((rc = s3_acl_copy_meta(s, req, c->bucket, &src, &meta, &nmeta, e)) != 0)
    return rc;
  store_object o;
  if (src.sse != STORE_SSE_NONE || c->sse != STORE_SSE_NONE)
    rc = copy_through(s, req, c, sb, sk, svid, meta, nmeta, tags, ntags, c->sse, &tk, &o, e);
  else
    rc = store_object_copy_version(s->st, sb, sk, svid, c->bucket, c->key, meta, nmeta, tags,
                                   ntags, req->arena, &o, e);
  if (rc != 0)
    return rc;
  s3_sse_answer(req, c->sse, tk.key_md5);
  s3_expiration_header(s, req, &o);
  if (src.version_id != NULL)
    http_resp_header(req, "x-amz-copy-source-version-id", src.version_id);
  if (o.version_id != NULL)
    http_resp_header(req, "x-amz-version-id", o.version_id);
  s3_xml x;
  s3_xml_open(&x, req, "CopyObjectResult");
  s3_xml_etag(&x, "ETag", o.etag);
  s3_xml_time(&x, "LastModified", o.mtime_ms);
  if (sum != NULL) {
    s3_xml_text(&x, "ChecksumType", "FULL_OBJECT");
    s3_xml_text(&x, s3_checksum_xml_name(algo), sum);
  }
  s3_xml_close(&x, "CopyObjectResult");
  return s3_xml_done(&x, e);
}

/* ---- tagging ---- */

int s3_get_object_tagging(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  store_object o;
  int rc = store_object_get_version(s->st, c->bucket, c->key, s3_version_param(req), req->arena,
                                    &o, NULL, e);
  if (rc == 0 && o.delete_marker)
    rc = err_set(e, ERR_METHOD_NOT_ALLOWED, "The specified method is not allowed against this "
                 "resource.");
  if (rc != 0)
    return rc;
  if (o.version_id != NULL)
    http_resp_header(req, "x-amz-version-id", o.version_id);
  return s3_tagging_write(req, o.tags, o.ntags, e);
}

/* Replaces the tags of the version ?versionId= names (or the current one). */
static int tags_set(s3_svc *s, http_req *req, s3_call *c, const str_pair *tags, size_t n, err *e)
{
  char vid[STORE_VID_MAX];
  int rc = store_object_tags_set_version(s->st, c->bucket, c->key, s3_version_param(req), tags,
                                         n, vid, e);
  if (rc == 0 && vid[0] != '\0')
    http_resp_header(req, "x-amz-version-id", vid);
  return rc;
}

int s3_put_object_tagging(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  str_pair *tags;
  size_t k;
  int rc = s3_tagging_parse(req, STORE_MAX_TAGS, "object", &tags, &k, e);
  if (rc != 0)
    return rc;
  return tags_set(s, req, c, tags, k, e);
}

int s3_delete_object_tagging(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = tags_set(s, req, c, NULL, 0, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}
