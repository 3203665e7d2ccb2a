/* api/s3_version.c -- S3 versioning and object lock on the wire:
 * Put/GetBucketVersioning, ListObjectVersions, Put/GetObjectLockConfiguration,
 * Put/GetObjectRetention, Put/GetObjectLegalHold, and the version and lock
 * headers the object operations (s3_object.c) add to their answers.
 *
 * Why: the versions themselves live in the store (store/version.c); this
 * file is their XML and headers, as S3 documents them.
 *
 * Invariants:
 *   (1) A bucket's versioning is the store's "versioning" document; object
 *       lock is the "objectlock" document (the configuration as S3 answers
 *       it) plus "lock-default" ("MODE days"), which the store reads when a
 *       new version gets its default retention.
 *   (2) Object lock needs versioning: enabling it on a bucket whose
 *       versioning is not Enabled is InvalidBucketState, and a bucket with
 *       object lock cannot suspend versioning (InvalidBucketState).
 *   (3) x-amz-version-id is answered exactly when the store gives the
 *       object a version id: never in a bucket that never had versioning.
 *
 * Start reading at s3_put_bucket_versioning().
 */
#include "api/s3_internal.h"

#include "api/iam.h"
#include "base/xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCK_CONF "objectlock"        /* the configuration document */
#define LOCK_DEFAULT "lock-default"   /* "GOVERNANCE 30": read by the store */
#define MAX_RETENTION_DAYS 36500      /* 100 years, as S3 */

/* ---- versioning ---- */

static bool lock_enabled(s3_svc *s, http_req *req, const char *bucket)
{
  const char *v = NULL;
  err e;
  return store_bucket_conf_get(s->st, bucket, LOCK_CONF, req->arena, &v, &e) == 0 && v != NULL;
}

int s3_put_bucket_versioning(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "VersioningConfiguration", &root, e);
  if (rc != 0)
    return rc;
  const char *status = xml_child_text(root, "Status");
  const char *mfa = xml_child_text(root, "MfaDelete");
  if (mfa != NULL && strcmp(mfa, "Enabled") == 0)
    return err_set(e, ERR_NOT_IMPLEMENTED, "MFA Delete is not supported by tarn (it needs an "
                   "MFA device); set MfaDelete to Disabled or leave it out");
  if (mfa != NULL && strcmp(mfa, "Disabled") != 0)
    return err_set(e, ERR_MALFORMED_XML, "MfaDelete must be Enabled or Disabled");
  if (http_req_header(req, "x-amz-mfa") != NULL)
    return err_set(e, ERR_NOT_IMPLEMENTED, "MFA Delete (x-amz-mfa) is not supported by tarn");
  int state;
  if (status != NULL && strcmp(status, "Enabled") == 0)
    state = STORE_VERSIONING_ENABLED;
  else if (status != NULL && strcmp(status, "Suspended") == 0)
    state = STORE_VERSIONING_SUSPENDED;
  else
    return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                   "validate against our published schema: Status must be Enabled or Suspended");
  if (state == STORE_VERSIONING_SUSPENDED && lock_enabled(s, req, c->bucket))
    return err_set(e, ERR_INVALID_BUCKET_STATE, "An Object Lock configuration is present on this "
                   "bucket, so the versioning state cannot be changed.");
  return store_bucket_versioning_set(s->st, c->bucket, state, e);
}

int s3_get_bucket_versioning(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int state;
  int rc = store_bucket_versioning_get(s->st, c->bucket, &state, e);
  if (rc != 0)
    return rc;
  s3_xml x;
  s3_xml_open(&x, req, "VersioningConfiguration");
  if (state != STORE_VERSIONING_OFF)
    s3_xml_text(&x, "Status", state == STORE_VERSIONING_ENABLED ? "Enabled" : "Suspended");
  s3_xml_close(&x, "VersioningConfiguration");
  return s3_xml_done(&x, e);
}

/* ---- headers of the object operations ---- */

void s3_version_headers(http_req *req, const store_object *o)
{
  if (o->version_id != NULL)
    http_resp_header(req, "x-amz-version-id", o->version_id);
  if (o->delete_marker)
    http_resp_header(req, "x-amz-delete-marker", "true");
  if (o->lock_mode != STORE_LOCK_NONE) {
    char t[25];
    time_format_iso8601_ms(o->retain_until_ms, t);
    http_resp_header(req, "x-amz-object-lock-mode",
                     o->lock_mode == STORE_LOCK_COMPLIANCE ? "COMPLIANCE" : "GOVERNANCE");
    http_resp_header(req, "x-amz-object-lock-retain-until-date", t);
  }
  if (o->legal_hold)
    http_resp_header(req, "x-amz-object-lock-legal-hold", "ON");
}

void s3_missing_object_headers(s3_svc *s, http_req *req, const char *bucket, const char *key)
{
  const char *vid;
  if (store_object_latest_marker(s->st, bucket, key, req->arena, &vid)) {
    http_resp_header(req, "x-amz-delete-marker", "true");
    http_resp_header(req, "x-amz-version-id", vid);
  }
}

const char *s3_version_param(http_req *req)
{
  return http_req_param(req, "versionId");
}

const char *s3_copy_source_version(http_req *req)
{
  const char *h = http_req_header(req, "x-amz-copy-source");
  const char *q = h != NULL ? strstr(h, "?versionId=") : NULL;
  if (q == NULL)
    return NULL;
  q += strlen("?versionId=");
  size_t len = 0;
  return percent_decode(req->arena, q, strlen(q), &len);
}

static bool header_true(http_req *req, const char *name)
{
  const char *v = http_req_header(req, name);
  return v != NULL && str_ieq(v, "true");
}

int s3_bypass_governance(http_req *req, const char *bucket, const char *key, bool *bypass,
                         err *e)
{
  *bypass = header_true(req, "x-amz-bypass-governance-retention");
  if (!*bypass || !req->authenticated || req->admin)
    return 0;
  return api_authorize(req, "s3:BypassGovernanceRetention",
                       arena_sprintf(req->arena, "arn:aws:s3:::%s/%s", bucket, key), e);
}

static int mode_parse(const char *v, int *mode, err *e)
{
  if (v != NULL && strcmp(v, "GOVERNANCE") == 0)
    *mode = STORE_LOCK_GOVERNANCE;
  else if (v != NULL && strcmp(v, "COMPLIANCE") == 0)
    *mode = STORE_LOCK_COMPLIANCE;
  else
    return err_set(e, ERR_INVALID, "Unknown wormMode directive: '%.32s' (GOVERNANCE or "
                   "COMPLIANCE)", v != NULL ? v : "");
  return 0;
}

int s3_lock_from_headers(s3_svc *s, http_req *req, const char *bucket, store_expect *x, err *e)
{
  x->lock_mode = STORE_LOCK_NONE;
  x->retain_until_ms = 0;
  x->legal_hold = false;
  const char *mode = http_req_header(req, "x-amz-object-lock-mode");
  const char *until = http_req_header(req, "x-amz-object-lock-retain-until-date");
  const char *hold = http_req_header(req, "x-amz-object-lock-legal-hold");
  if (mode == NULL && until == NULL && hold == NULL)
    return 0;
  if ((mode == NULL) != (until == NULL))
    return err_set(e, ERR_INVALID, "x-amz-object-lock-retain-until-date and "
                   "x-amz-object-lock-mode must both be supplied");
  if (!lock_enabled(s, req, bucket))
    return err_set(e, ERR_INVALID_REQUEST, "Bucket is missing Object Lock Configuration");
  if (mode != NULL) {
    int rc = mode_parse(mode, &x->lock_mode, e);
    if (rc != 0)
      return rc;
    if (!time_parse_iso8601(until, &x->retain_until_ms))
      return err_set(e, ERR_INVALID, "The retain until date must be an ISO 8601 date");
    if (x->retain_until_ms <= time_now_ms())
      return err_set(e, ERR_INVALID, "The retain until date must be in the future!");
  }
  if (hold != NULL) {
    if (strcmp(hold, "ON") != 0 && strcmp(hold, "OFF") != 0)
      return err_set(e, ERR_INVALID, "Legal Hold must be either of 'ON' or 'OFF'");
    x->legal_hold = strcmp(hold, "ON") == 0;
  }
  return 0;
}

/* ---- DeleteObject, DeleteObjects ---- */

int s3_delete_object_version(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *vid = s3_version_param(req);
  bool bypass = false;
  int rc = s3_bypass_governance(req, c->bucket, c->key, &bypass, e);
  store_delete_result dr;
  if (rc == 0)
    rc = store_object_delete_version(s->st, c->bucket, c->key, vid, bypass, &dr, e);
  if (rc != 0)
    return rc;
  if (dr.version_id[0] != '\0')
    http_resp_header(req, "x-amz-version-id", dr.version_id);
  if (dr.delete_marker)
    http_resp_header(req, "x-amz-delete-marker", "true");
  http_resp_status(req, 204);
  return 0;
}

void s3_delete_result_xml(s3_xml *x, const char *key, const char *vid,
                          const store_delete_result *dr)
{
  s3_xml_start(x, "Deleted");
  s3_xml_text(x, "Key", key);
  if (vid != NULL)
    s3_xml_text(x, "VersionId", vid);
  if (dr->delete_marker) {
    s3_xml_bool(x, "DeleteMarker", true);
    s3_xml_text(x, "DeleteMarkerVersionId", dr->version_id);
  }
  s3_xml_end(x, "Deleted");
}

/* ---- ListObjectVersions ---- */

int s3_list_object_versions(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int url = s3_encoding_type(req, e);
  if (url < 0)
    return url;
  long max = 1000;
  const char *mk = http_req_param(req, "max-keys");
  if (mk != NULL && !s3_parse_long(mk, 0, 2147483647L, &max))
    return err_set(e, ERR_INVALID, "Provided max-keys not an integer or within integer range");
  if (max > STORE_MAX_LIST_KEYS)
    max = STORE_MAX_LIST_KEYS;
  store_version_params p = {
    .prefix = http_req_param(req, "prefix"),
    .delimiter = http_req_param(req, "delimiter"),
    .key_marker = http_req_param(req, "key-marker"),
    .version_id_marker = http_req_param(req, "version-id-marker"),
    .max_keys = (size_t)max,
  };
  if (p.version_id_marker != NULL && p.version_id_marker[0] != '\0') {
    if (p.key_marker == NULL || p.key_marker[0] == '\0')
      return err_set(e, ERR_INVALID, "A version-id marker cannot be specified without a key "
                     "marker.");
    int rc = store_version_id_check(p.version_id_marker, e);
    if (rc != 0)
      return rc;
  }
  store_version_list l;
  int rc = store_object_versions(s->st, c->bucket, &p, req->arena, &l, e);
  if (rc != 0)
    return rc;
  bool u = url == 1;
  s3_xml x;
  s3_xml_open(&x, req, "ListVersionsResult");
  s3_xml_text(&x, "Name", c->bucket);
  s3_xml_text(&x, "Prefix", s3_list_enc(req, u, p.prefix != NULL ? p.prefix : ""));
  s3_xml_text(&x, "KeyMarker", s3_list_enc(req, u, p.key_marker != NULL ? p.key_marker : ""));
  s3_xml_text(&x, "VersionIdMarker", p.version_id_marker != NULL ? p.version_id_marker : "");
  if (l.truncated) {
    s3_xml_text(&x, "NextKeyMarker", s3_list_enc(req, u, l.next_key_marker));
    if (l.next_version_id_marker != NULL)
      s3_xml_text(&x, "NextVersionIdMarker", l.next_version_id_marker);
  }
  s3_xml_textf(&x, "MaxKeys", "%ld", max);
  if (p.delimiter != NULL && p.delimiter[0] != '\0')
    s3_xml_text(&x, "Delimiter", s3_list_enc(req, u, p.delimiter));
  if (u)
    s3_xml_text(&x, "EncodingType", "url");
  s3_xml_bool(&x, "IsTruncated", l.truncated);
  for (size_t i = 0; i < l.nversions; i++) {
    const store_object *o = &l.versions[i];
    const char *el = o->delete_marker ? "DeleteMarker" : "Version";
    s3_xml_start(&x, el);
    s3_xml_text(&x, "Key", s3_list_enc(req, u, o->key));
    s3_xml_text(&x, "VersionId", o->version_id != NULL ? o->version_id : "null");
    s3_xml_bool(&x, "IsLatest", o->is_latest);
    s3_xml_time(&x, "LastModified", o->mtime_ms);
    if (!o->delete_marker) {
      s3_xml_etag(&x, "ETag", o->etag);
      s3_xml_textf(&x, "Size", "%llu", (unsigned long long)o->size);
      s3_xml_text(&x, "StorageClass", "STANDARD");
    }
    s3_xml_owner(&x, "Owner");
    s3_xml_end(&x, el);
  }
  for (size_t i = 0; i < l.nprefixes; i++) {
    s3_xml_start(&x, "CommonPrefixes");
    s3_xml_text(&x, "Prefix", s3_list_enc(req, u, l.prefixes[i]));
    s3_xml_end(&x, "CommonPrefixes");
  }
  s3_xml_close(&x, "ListVersionsResult");
  return s3_xml_done(&x, e);
}

/* ---- object lock configuration ---- */

size_t s3_bucket_lock_conf(http_req *req, str_pair conf[2])
{
  const char *lock = http_req_header(req, "x-amz-bucket-object-lock-enabled");
  if (lock == NULL || !str_ieq(lock, "true"))
    return 0;
  conf[0] = (str_pair){"versioning", "Enabled"};
  conf[1] = (str_pair){LOCK_CONF, "<ObjectLockEnabled>Enabled</ObjectLockEnabled>"};
  return 2;
}

int s3_put_object_lock_config(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "ObjectLockConfiguration", &root, e);
  if (rc != 0)
    return rc;
  const char *enabled = xml_child_text(root, "ObjectLockEnabled");
  if (enabled == NULL || strcmp(enabled, "Enabled") != 0)
    return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                   "validate against our published schema: ObjectLockEnabled must be Enabled");
  const char *deflt = NULL;
  const char *body = "<ObjectLockEnabled>Enabled</ObjectLockEnabled>";
  const xml_node *rule = xml_child(root, "Rule");
  if (rule != NULL) {
    const xml_node *dr = xml_child(rule, "DefaultRetention");
    if (dr == NULL)
      return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                     "validate against our published schema: Rule needs DefaultRetention");
    int mode = STORE_LOCK_GOVERNANCE;
    rc = mode_parse(xml_child_text(dr, "Mode"), &mode, e);
    if (rc != 0)
      return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                     "validate against our published schema: unknown Mode");
    const char *days = xml_child_text(dr, "Days");
    const char *years = xml_child_text(dr, "Years");
    long n = 0;
    if ((days == NULL) == (years == NULL))
      return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                     "validate against our published schema: give Days or Years");
    if (!s3_parse_long(days != NULL ? days : years, 1, MAX_RETENTION_DAYS, &n))
      return err_set(e, ERR_INVALID, "Default retention period must be a positive integer "
                     "value");
    long total = days != NULL ? n : n * 365;
    if (total > MAX_RETENTION_DAYS)
      return err_set(e, ERR_INVALID, "Default retention period is too large");
    const char *mname = mode == STORE_LOCK_COMPLIANCE ? "COMPLIANCE" : "GOVERNANCE";
    deflt = arena_sprintf(req->arena, "%s %ld", mname, total);
    body = arena_sprintf(req->arena, "<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>"
                         "<DefaultRetention><Mode>%s</Mode><%s>%ld</%s></DefaultRetention>"
                         "</Rule>", mname, days != NULL ? "Days" : "Years", n,
                         days != NULL ? "Days" : "Years");
  }
  if (!lock_enabled(s, req, c->bucket)) {
    int state;
    rc = store_bucket_versioning_get(s->st, c->bucket, &state, e);
    if (rc != 0)
      return rc;
    if (state != STORE_VERSIONING_ENABLED)
      return err_set(e, ERR_INVALID_BUCKET_STATE, "Versioning must be 'Enabled' on the bucket "
                     "to apply a Object Lock configuration");
  }
  rc = store_bucket_conf_set(s->st, c->bucket, LOCK_DEFAULT, deflt, e);
  if (rc == 0)
    rc = store_bucket_conf_set(s->st, c->bucket, LOCK_CONF, body, e);
  return rc;
}

int s3_get_object_lock_config(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *v = NULL;
  int rc = store_bucket_conf_get(s->st, c->bucket, LOCK_CONF, req->arena, &v, e);
  if (rc != 0)
    return rc;
  if (v == NULL)
    return err_set(e, ERR_NO_LOCK_CONFIG, "Object Lock configuration does not exist for this "
                   "bucket");
  http_resp_header(req, "Content-Type", "application/xml");
  if (buf_printf(&req->resp_body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<ObjectLockConfiguration xmlns=\"%s\">%s</ObjectLockConfiguration>",
                 S3_XMLNS, v) != 0)
    return err_set(e, ERR_INTERNAL, "the configuration does not fit the answer");
  return 0;
}

/* ---- retention and legal hold of one version ---- */

static int lock_set(s3_svc *s, http_req *req, s3_call *c, store_lock_change *ch, err *e)
{
  if (!lock_enabled(s, req, c->bucket))
    return err_set(e, ERR_INVALID_REQUEST, "Bucket is missing Object Lock Configuration");
  char vid[STORE_VID_MAX];
  int rc = store_object_lock_set(s->st, c->bucket, c->key, s3_version_param(req), ch, vid, e);
  if (rc != 0)
    return rc;
  if (vid[0] != '\0')
    http_resp_header(req, "x-amz-version-id", vid);
  return 0;
}

int s3_put_object_retention(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "Retention", &root, e);
  if (rc != 0)
    return rc;
  store_lock_change ch = { .set_retention = true };
  const char *mode = xml_child_text(root, "Mode");
  const char *until = xml_child_text(root, "RetainUntilDate");
  if (mode != NULL || until != NULL) {
    if (mode == NULL || until == NULL)
      return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                     "validate against our published schema: Mode and RetainUntilDate go "
                     "together");
    rc = mode_parse(mode, &ch.mode, e);
    if (rc != 0)
      return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                     "validate against our published schema: unknown Mode");
    if (!time_parse_iso8601(until, &ch.retain_until_ms))
      return err_set(e, ERR_INVALID, "The retain until date must be an ISO 8601 date");
    if (ch.retain_until_ms <= time_now_ms())
      return err_set(e, ERR_INVALID, "The retain until date must be in the future!");
  }
  rc = s3_bypass_governance(req, c->bucket, c->key, &ch.bypass_governance, e);
  if (rc != 0)
    return rc;
  return lock_set(s, req, c, &ch, e);
}

int s3_put_object_legal_hold(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "LegalHold", &root, e);
  if (rc != 0)
    return rc;
  const char *st = xml_child_text(root, "Status");
  if (st == NULL || (strcmp(st, "ON") != 0 && strcmp(st, "OFF") != 0))
    return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                   "validate against our published schema: Status must be ON or OFF");
  store_lock_change ch = { .set_legal_hold = true, .legal_hold = strcmp(st, "ON") == 0 };
  return lock_set(s, req, c, &ch, e);
}

/* The version a retention or legal-hold GET names, refusing markers. */
static int lock_get(s3_svc *s, http_req *req, s3_call *c, store_object *o, err *e)
{
  if (!lock_enabled(s, req, c->bucket))
    return err_set(e, ERR_INVALID_REQUEST, "Bucket is missing Object Lock Configuration");
  int rc = store_object_get_version(s->st, c->bucket, c->key, s3_version_param(req), req->arena,
                                    o, NULL, e);
  if (rc == 0 && o->delete_marker)
    rc = err_set(e, ERR_METHOD_NOT_ALLOWED, "The specified method is not allowed against this "
                 "resource.");
  if (rc == 0 && o->version_id != NULL)
    http_resp_header(req, "x-amz-version-id", o->version_id);
  return rc;
}

int s3_get_object_retention(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  store_object o;
  int rc = lock_get(s, req, c, &o, e);
  if (rc != 0)
    return rc;
  if (o.lock_mode == STORE_LOCK_NONE)
    return err_set(e, ERR_NO_SUCH_LOCK_CONFIG, "The specified object does not have a ObjectLock "
                   "configuration");
  s3_xml x;
  s3_xml_open(&x, req, "Retention");
  s3_xml_text(&x, "Mode", o.lock_mode == STORE_LOCK_COMPLIANCE ? "COMPLIANCE" : "GOVERNANCE");
  s3_xml_time(&x, "RetainUntilDate", o.retain_until_ms);
  s3_xml_close(&x, "Retention");
  return s3_xml_done(&x, e);
}

int s3_get_object_legal_hold(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  store_object o;
  int rc = lock_get(s, req, c, &o, e);
  if (rc != 0)
    return rc;
  /* a version that never had a hold placed has none to show (as S3: 404) */
  if (!o.legal_hold && !o.legal_hold_set)
    return err_set(e, ERR_NO_SUCH_LOCK_CONFIG, "The specified object does not have a ObjectLock "
                   "configuration");
  s3_xml x;
  s3_xml_open(&x, req, "LegalHold");
  s3_xml_text(&x, "Status", o.legal_hold ? "ON" : "OFF");
  s3_xml_close(&x, "LegalHold");
  return s3_xml_done(&x, e);
}
