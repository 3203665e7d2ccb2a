/* api/s3_post_form.h -- the pieces of S3's browser POST upload that need no
 * server: a streaming multipart/form-data parser and the POST policy
 * checker. api/s3_post.c wires them to the request; the fuzz target
 * tests/fuzz/fuzz_s3_post.c drives them alone.
 */
#ifndef TARN_API_S3_POST_FORM_H
#define TARN_API_S3_POST_FORM_H

#include "base/arena.h"
#include "base/err.h"
#include "base/text.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S3_POST_FIELDS_MAX (20u << 10)  /* the fields before the file, headers included (S3: 20 KB) */
#define S3_POST_BOUNDARY_MAX 200        /* RFC 2046 allows 70; browsers stay far below */

/* ---- the form parser ----
 * Bytes go in as they arrive (s3_form_feed); the fields before the part
 * named "file" are kept (names lower-cased, values as sent), the file's
 * content goes out through file_data as it is found, never held whole.
 * What follows the file is read and ignored, as S3 does. */
typedef struct s3_form s3_form;

typedef struct s3_form_cb {
  /* The file part starts: the fields are complete (s3_form_fields).
   * filename is the part's filename parameter ("" when none). */
  int (*file_begin)(void *ctx, const char *filename, err *e);
  int (*file_data)(void *ctx, const void *p, size_t n, err *e);
  void *ctx;
} s3_form_cb;

/* A parser for a body of content_type (multipart/form-data with a
 * boundary), allocated in a; its window buffer is on the heap until
 * s3_form_free. Errors: ERR_MALFORMED_POST. */
int s3_form_new(arena *a, const char *content_type, const s3_form_cb *cb, s3_form **out, err *e);
/* Accepts NULL; returns NULL. */
s3_form *s3_form_free(s3_form *f);
/* Errors: ERR_MALFORMED_POST, ERR_MAX_POST_PRE_DATA, or a callback's. */
int s3_form_feed(s3_form *f, const void *p, size_t n, err *e);
/* The body has ended: 0 when the file part was complete. Errors:
 * ERR_INVALID (no file field), ERR_MALFORMED_POST (cut short). */
int s3_form_finish(s3_form *f, err *e);
/* The fields received before the file, in order. */
const str_pair *s3_form_fields(const s3_form *f, size_t *n);
/* The first value of the field called lname (lower case), or NULL. */
const char *s3_form_field(const s3_form *f, const char *lname);

/* ---- the policy ----
 * policy is the decoded JSON document; fields are the form's fields (names
 * lower case) with the key already expanded, bucket the request's bucket.
 * Checks the expiration against now_ms, every condition, and that every
 * field but x-amz-signature, file, policy and x-ignore-* is named by a
 * condition. Fills the content-length-range (0 and UINT64_MAX when the
 * policy has none). Errors: ERR_INVALID_POLICY_DOCUMENT (not a policy),
 * ERR_DENIED ("Invalid according to Policy: ..."). */
int s3_post_policy_check(arena *a, const char *policy, size_t len, const str_pair *fields,
                         size_t nfields, const char *bucket, int64_t now_ms, uint64_t *len_min,
                         uint64_t *len_max, err *e);

#endif
