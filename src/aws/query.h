/* aws/query.h -- AWS's query protocol, shared by the services that speak
 * it (SQS's older shape, SNS, IAM): on the way in, form-encoded parameters
 * (Action=...&Foo.1.Bar=...) and the parameter tree that their dotted
 * names describe; on the way out, the envelope of an answer. No HTTP
 * here: api/query_protocol.h reads a request.
 */
#ifndef TARN_AWS_QUERY_H
#define TARN_AWS_QUERY_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/text.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The parameters: the URL's query pairs, then (when the body is
 * form-encoded: content_type NULL or application/x-www-form-urlencoded)
 * the body's, percent-decoded with '+' as a space. Arena memory.
 * ERR_INVALID for a malformed percent escape. */
int aws_query_params(arena *a, const str_pair *query, size_t nquery, const char *content_type,
                     const char *body, size_t body_len, str_pair **out, size_t *n, err *e);

/* Sets tree[a][b][c] = value for the dotted name "a.b.c", making the inner
 * objects it needs. A name with an empty or overlong segment, or one that
 * runs into a string already set, is ignored. */
void aws_query_tree_set(json_t *tree, const char *name, const char *value);

/* The members of o whose keys are "1", "2", ... (up to 1000), in numeric
 * order, as a new array; an empty array when o is not an object. */
json_t *aws_query_numbered(json_t *o);

/* A successful answer to action in namespace ns is
 *   <?xml version="1.0"?><ACTIONResponse xmlns="NS"><ACTIONResult>...
 *   </ACTIONResult><ResponseMetadata><RequestId>ID</RequestId>
 *   </ResponseMetadata></ACTIONResponse>
 * where an action without a result has no ACTIONResult element (result
 * false). The caller writes the result between begin and end. */
void aws_query_response_begin(buf *b, const char *ns, const char *action, bool result);
void aws_query_response_end(buf *b, const char *action, bool result, const char *request_id);

#endif
