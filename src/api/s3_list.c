/* api/s3_list.c -- ListObjects (v1) and ListObjectsV2: the S3 listing
 * parameters mapped onto store_object_list(), and the ListBucketResult
 * document.
 *
 * Invariants:
 *   (1) A page holds at most 1000 entries (keys + common prefixes); a larger
 *       max-keys is clamped, as S3 does.
 *   (2) Continuation tokens are opaque: base64 of the store's next_after
 *       (a key or a common prefix), so a page resumes exactly after the
 *       last entry of the previous one, whatever changed in between.
 *   (3) With encoding-type=url every key-derived field (Key, Prefix,
 *       Delimiter, StartAfter, Marker, NextMarker, CommonPrefixes) is
 *       URL-encoded keeping '/'; tokens are not.
 *
 * Start reading at list_objects().
 */
#include "api/s3_internal.h"

#include <string.h>

#define MAX_KEYS_PARAM 2147483647L

/* "CRC32" for an object stored with x-amz-checksum-crc32, or NULL. */
static const char *checksum_algorithm(http_req *req, const store_object *o)
{
  for (size_t i = 0; i < o->nmeta; i++) {
    if (!str_starts(o->meta[i].name, "x-amz-checksum-"))
      continue;
    char *a = arena_strdup(req->arena, o->meta[i].name + 15);
    for (char *p = a; *p != '\0'; p++)
      if (*p >= 'a' && *p <= 'z')
        *p = (char)(*p - 'a' + 'A');
    return a;
  }
  return NULL;
}

static int list_objects(s3_svc *s, http_req *req, s3_call *c, bool v2, err *e)
{
  int url = s3_encoding_type(req, e);
  if (url < 0)
    return url;
  const char *prefix = http_req_param(req, "prefix");
  const char *delim = http_req_param(req, "delimiter");
  const char *mk = http_req_param(req, "max-keys");
  long max = STORE_MAX_LIST_KEYS;
  if (mk != NULL && !s3_parse_long(mk, 0, MAX_KEYS_PARAM, &max))
    return err_set(e, ERR_INVALID, "provided max-keys '%s' not an integer or within integer range", mk);
  if (max > STORE_MAX_LIST_KEYS)
    max = STORE_MAX_LIST_KEYS;

  const char *after = NULL;
  const char *token = NULL;
  const char *start_after = NULL;
  const char *marker = NULL;
  bool fetch_owner = !v2;
  if (v2) {
    token = http_req_param(req, "continuation-token");
    if (token != NULL && *token == '\0')
      token = NULL;  /* an empty token is none, as S3 treats it */
    start_after = http_req_param(req, "start-after");
    const char *fo = http_req_param(req, "fetch-owner");
    fetch_owner = fo != NULL && str_ieq(fo, "true");
    if (token != NULL) {
      int rc = s3_token_decode(req, token, &after, e);
      if (rc != 0)
        return rc;
    } else if (start_after != NULL && *start_after != '\0') {
      after = start_after;
    }
  } else {
    marker = http_req_param(req, "marker");
    if (marker != NULL && *marker != '\0')
      after = marker;
  }

  store_list_result r;
  memset(&r, 0, sizeof r);
  int rc;
  if (max > 0) {
    store_list_params p = {
      .prefix = prefix,
      .delimiter = delim,
      .after = after,
      .max_keys = (size_t)max,
    };
    rc = store_object_list(s->st, c->bucket, &p, req->arena, &r, e);
  } else {
    store_bucket b;
    rc = store_bucket_get(s->st, c->bucket, req->arena, &b, e);
  }
  if (rc != 0)
    return rc;

  s3_xml x;
  s3_xml_open(&x, req, "ListBucketResult");
  s3_xml_text(&x, "Name", c->bucket);
  s3_xml_text(&x, "Prefix", s3_list_enc(req, url, prefix != NULL ? prefix : ""));
  if (!v2) {
    s3_xml_text(&x, "Marker", s3_list_enc(req, url, marker != NULL ? marker : ""));
    if (r.truncated && delim != NULL && *delim != '\0' && r.next_after != NULL)
      s3_xml_text(&x, "NextMarker", s3_list_enc(req, url, r.next_after));
  }
  if (delim != NULL && *delim != '\0')
    s3_xml_text(&x, "Delimiter", s3_list_enc(req, url, delim));
  s3_xml_textf(&x, "MaxKeys", "%ld", max);
  if (url)
    s3_xml_text(&x, "EncodingType", "url");
  if (v2) {
    s3_xml_textf(&x, "KeyCount", "%zu", r.nobjects + r.nprefixes);
    if (token != NULL)
      s3_xml_text(&x, "ContinuationToken", token);
    if (r.truncated && r.next_after != NULL)
      s3_xml_text(&x, "NextContinuationToken", s3_token_encode(req->arena, r.next_after));
    if (start_after != NULL)
      s3_xml_text(&x, "StartAfter", s3_list_enc(req, url, start_after));
  }
  s3_xml_bool(&x, "IsTruncated", r.truncated);
  for (size_t i = 0; i < r.nobjects; i++) {
    const store_object *o = &r.objects[i];
    s3_xml_start(&x, "Contents");
    s3_xml_text(&x, "Key", s3_list_enc(req, url, o->key));
    s3_xml_time(&x, "LastModified", o->mtime_ms);
    s3_xml_etag(&x, "ETag", o->etag);
    const char *algo = checksum_algorithm(req, o);
    if (algo != NULL)
      s3_xml_text(&x, "ChecksumAlgorithm", algo);
    s3_xml_textf(&x, "Size", "%llu", (unsigned long long)o->size);
    s3_xml_text(&x, "StorageClass", "STANDARD");
    if (fetch_owner)
      s3_xml_owner(&x, "Owner");
    s3_xml_end(&x, "Contents");
  }
  for (size_t i = 0; i < r.nprefixes; i++) {
    s3_xml_start(&x, "CommonPrefixes");
    s3_xml_text(&x, "Prefix", s3_list_enc(req, url, r.prefixes[i]));
    s3_xml_end(&x, "CommonPrefixes");
  }
  s3_xml_close(&x, "ListBucketResult");
  return s3_xml_done(&x, e);
}

int s3_list_objects(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  return list_objects(s, req, c, false, e);
}

int s3_list_objects_v2(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  return list_objects(s, req, c, true, e);
}
