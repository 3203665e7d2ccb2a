/* aws/json_load.h -- JSON request bodies into jansson values, fast (json_load.c). */
#ifndef TARN_AWS_JSON_LOAD_H
#define TARN_AWS_JSON_LOAD_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

#define AWS_JSON_MAX_DEPTH 2048   /* jansson's own limit */

/* The JSON value in [p, p + n): a new reference, or NULL with ERR_INVALID
 * in e saying what is wrong and where. Accepts what json_loadb(p, n,
 * JSON_DECODE_ANY) accepts and builds the same value. */
json_t *aws_json_load(const char *p, size_t n, err *e);

#endif
