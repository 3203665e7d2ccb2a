/* api/query_protocol.h -- a request's query-protocol parameters (the
 * protocol itself is aws/query.h), for the services that speak it.
 */
#ifndef TARN_API_QUERY_PROTOCOL_H
#define TARN_API_QUERY_PROTOCOL_H

#include "aws/query.h"
#include "http/http.h"

/* The request's parameters: the URL's query, then a form-encoded body's
 * (aws_query_params). Arena memory of the request. */
static inline int query_params(http_req *r, str_pair **out, size_t *n, err *e)
{
  return aws_query_params(r->arena, r->query, r->nquery, http_req_header(r, "content-type"),
                          r->body.data, r->body.len, out, n, e);
}

#endif
