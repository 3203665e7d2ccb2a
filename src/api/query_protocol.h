/* api/query_protocol.h -- the input side of AWS's query protocol, shared by
 * api/sqs.c and api/sns.c: form-encoded parameters (Action=...&Foo.1.Bar=...)
 * and the parameter tree that their dotted names describe.
 */
#ifndef TARN_API_QUERY_PROTOCOL_H
#define TARN_API_QUERY_PROTOCOL_H

#include "base/err.h"
#include "base/text.h"
#include "http/http.h"

#include <jansson.h>
#include <stddef.h>

/* The request's parameters: the URL's query, then (for a form-encoded
 * body) the body's, percent-decoded with '+' as a space. Arena memory.
 * ERR_INVALID for a malformed percent escape. */
int query_params(http_req *r, str_pair **out, size_t *n, err *e);

/* Sets tree[a][b][c] = value for the dotted name "a.b.c", making the inner
 * objects it needs. A name with an empty or overlong segment, or one that
 * runs into a string already set, is ignored. */
void query_tree_set(json_t *tree, const char *name, const char *value);

/* The members of o whose keys are "1", "2", ... (up to 1000), in numeric
 * order, as a new array; an empty array when o is not an object. */
json_t *query_numbered(json_t *o);

#endif
