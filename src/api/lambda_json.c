/* api/lambda_json.c -- reading and writing the JSON of Lambda's REST-JSON
 * operations (lambda_json.h).
 *
 * Why: api/lambda.c, api/lambda_layers.c and api/lambda_events.c answer
 * the same SDKs with the same conventions (and functions and layers take
 * their code in the same shape); their input checks must say the same words as Lambda
 * ("Could not parse request body into json", "1 validation error
 * detected: ...") and their answers carry the same headers.
 *
 * Invariants:
 *   (1) An accessor sets its output before it can fail, so a caller may
 *       chain them with || and read every output afterwards.
 *   (2) lambda_json_send consumes j on every path.
 */
#include "api/lambda_json.h"

#include "api/iam.h"

#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int lambda_json_body(http_req *r, json_t **out, err *e)
{
  if (r->body.len == 0) {
    *out = json_object();
    return 0;
  }
  json_error_t je;
  json_t *j = json_loadb(r->body.data, r->body.len, 0, &je);
  if (j == NULL || !json_is_object(j)) {
    json_decref(j);
    return err_set(e, ERR_INVALID_REQUEST, "Could not parse request body into json: %s",
                   je.text);
  }
  *out = j;
  return 0;
}

int lambda_json_string(json_t *o, const char *key, const char **out, err *e)
{
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return err_set(e, ERR_INVALID_REQUEST, "'%s' must be a string", key);
  *out = json_string_value(v);
  return 0;
}

int lambda_json_int(json_t *o, const char *key, long lo, long hi, bool *has, long *out, err *e)
{
  json_t *v = json_object_get(o, key);
  *has = false;
  *out = 0;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_integer(v))
    return err_set(e, ERR_INVALID_REQUEST, "'%s' must be an integer", key);
  json_int_t n = json_integer_value(v);
  if (n < lo || n > hi)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%lld' at '%s' failed to "
                                   "satisfy constraint: Member must have value between %ld and %ld",
                   (long long)n, key, lo, hi);
  *has = true;
  *out = (long)n;
  return 0;
}

int lambda_json_bool(json_t *o, const char *key, bool *out, err *e)
{
  json_t *v = json_object_get(o, key);
  *out = false;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_boolean(v))
    return err_set(e, ERR_INVALID_REQUEST, "'%s' must be a boolean", key);
  *out = json_is_true(v);
  return 0;
}

void lambda_json_time(int64_t ms, char out[LAMBDA_JSON_TIME])
{
  char day[40];
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, LAMBDA_JSON_TIME, "%s.%03d+0000", day, (int)(ms % 1000));
}

void lambda_json_send(http_req *r, int status, json_t *j)
{
  http_resp_status(r, status);
  http_resp_header(r, "Content-Type", "application/json");
  http_resp_header(r, "x-amzn-RequestId", r->request_id);
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (text == NULL)
    mem_out_of_memory();
  buf_puts(&r->resp_body, text);
  free(text);
}

void lambda_json_send_page(http_req *r, const char *member, json_t *items, const char *next)
{
  json_t *j = json_pack("{s:o}", member, items);
  if (next != NULL)
    json_object_set_new(j, "NextMarker", json_string(next));
  lambda_json_send(r, 200, j);
}

int lambda_json_code(fn_system *fn, store *st, json_t *o, http_req *r, fn_code *code,
                     bool *given, err *e)
{
  const char *zip64 = NULL;
  const char *bucket = NULL;
  const char *key = NULL;
  const char *image = NULL;
  int rc;
  *given = false;
  if ((rc = lambda_json_string(o, "ZipFile", &zip64, e)) ||
      (rc = lambda_json_string(o, "S3Bucket", &bucket, e)) ||
      (rc = lambda_json_string(o, "S3Key", &key, e)) ||
      (rc = lambda_json_string(o, "ImageUri", &image, e)))
    return rc;
  if (image != NULL)
    return err_set(e, ERR_INVALID, "tarn runs .zip file packages only, not container images");
  if (zip64 != NULL && (bucket != NULL || key != NULL))
    return err_set(e, ERR_INVALID, "Please do not provide other FunctionCode parameters when "
                                   "providing a ZipFile.");
  if (zip64 != NULL) {
    size_t n = strlen(zip64);
    uint8_t *zip = arena_alloc(r->arena, n / 4 * 3 + 3);
    long len = base64_decode(zip64, n, zip, n / 4 * 3 + 3);
    if (len < 0)
      return err_set(e, ERR_INVALID_REQUEST, "ZipFile is not valid base64");
    *given = true;
    return fn_code_add(fn, zip, (size_t)len, code, e);
  }
  if (bucket != NULL || key != NULL) {
    if (bucket == NULL || key == NULL)
      return err_set(e, ERR_INVALID, "Please provide a source for function code.");
    /* tarn reads the object for the caller: only one it may read itself */
    if ((rc = api_authorize(r, "s3:GetObject",
                            arena_sprintf(r->arena, "arn:aws:s3:::%s/%s", bucket, key), e)) != 0)
      return rc;
    store_object obj;
    int fd = -1;
    err se = {0};
    if (store_object_get(st, bucket, key, r->arena, &obj, &fd, &se) != 0)
      return err_set(e, ERR_INVALID, "Error occurred while GetObject. S3 Error Code: %s. S3 Error "
                                     "Message: %s", err_aws_code(se.code), se.msg);
    if (store_object_plain_fd(&obj, &fd, &se) != 0) {
      if (fd >= 0)
        close(fd);
      return err_set(e, ERR_INVALID, "Error occurred while GetObject. S3 Error Code: %s. S3 Error "
                                     "Message: %s", err_aws_code(se.code), se.msg);
    }
    *given = true;
    if (fd < 0)  /* a small object, inline in the store: its bytes are in obj.data */
      return fn_code_add(fn, obj.data, (size_t)obj.size, code, e);
    rc = fn_code_add_fd(fn, fd, code, e);
    close(fd);
    return rc;
  }
  return 0;
}

