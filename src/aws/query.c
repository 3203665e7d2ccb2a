/* aws/query.c -- the query protocol's input: parameters from the URL and a
 * form-encoded body, and the tree their dotted names describe; and the
 * envelope of its answers.
 *
 * Why: SQS (its older wire shape), SNS and IAM all speak it; each service
 * turns the tree into its own input (sqs.c normalises it to the JSON
 * protocol's shapes, sns.c reads it with small accessors), but reading
 * the form and building the tree are the same for both.
 *
 * Invariants:
 *   (1) Everything returned by aws_query_params is in the arena given.
 *   (2) The tree holds only objects and strings: a list is an object with
 *       the keys "1".."N", ordered by aws_query_numbered.
 *
 * Start reading at aws_query_params().
 */
#include "aws/query.h"

#include "base/arena.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NUMBERED_MAX 1000 /* members query_numbered looks for */
#define SEGMENT_MAX 256   /* bytes of one dotted name segment, NUL included */

static void plus_to_space(char *s)
{
  for (char *c = s; *c; c++)
    if (*c == '+')
      *c = ' ';
}

/* Appends the name=value pairs of the form s (n bytes) at out[*k]. */
static int form_add(arena *a, const char *s, size_t n, str_pair *out, size_t *k, err *e)
{
  const char *p = s;
  const char *end = s + n;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp != NULL ? amp : end;
    if (stop > p) {
      const char *eq = memchr(p, '=', (size_t)(stop - p));
      const char *nend = eq != NULL ? eq : stop;
      char *name = arena_strndup(a, p, (size_t)(nend - p));
      char *value = eq != NULL ? arena_strndup(a, eq + 1, (size_t)(stop - eq - 1))
                               : arena_strdup(a, "");
      plus_to_space(name);
      plus_to_space(value);
      size_t len;
      out[*k].name = percent_decode(a, name, strlen(name), &len);
      out[*k].value = percent_decode(a, value, strlen(value), &len);
      if (out[*k].name == NULL || out[*k].value == NULL)
        return err_set(e, ERR_INVALID, "malformed form encoding in the request");
      (*k)++;
    }
    p = stop + 1;
  }
  return 0;
}

int aws_query_params(arena *a, const str_pair *query, size_t nquery, const char *content_type,
                     const char *body, size_t body_len, str_pair **out, size_t *n, err *e)
{
  size_t cap = nquery + 1;
  bool form = body_len > 0 &&
              (content_type == NULL || str_istarts(content_type, "application/x-www-form-urlencoded"));
  if (form)
    for (size_t i = 0; i < body_len; i++)
      cap += body[i] == '&';
  cap += 1;
  str_pair *p = arena_alloc(a, cap * sizeof *p);
  size_t k = 0;
  for (size_t i = 0; i < nquery; i++)
    p[k++] = query[i];
  if (form) {
    int rc = form_add(a, body, body_len, p, &k, e);
    if (rc != 0)
      return rc;
  }
  *out = p;
  *n = k;
  return 0;
}

void aws_query_tree_set(json_t *tree, const char *name, const char *value)
{
  json_t *node = tree;
  const char *p = name;
  for (;;) {
    const char *dot = strchr(p, '.');
    if (dot == NULL) {
      if (json_is_object(node))
        json_object_set_new(node, p, json_string(value));
      return;
    }
    char seg[SEGMENT_MAX];
    size_t n = (size_t)(dot - p);
    if (n == 0 || n >= sizeof seg)
      return;
    memcpy(seg, p, n);
    seg[n] = '\0';
    json_t *child = json_object_get(node, seg);
    if (child == NULL) {
      child = json_object();
      json_object_set_new(node, seg, child);
    }
    if (!json_is_object(child))
      return;
    node = child;
    p = dot + 1;
  }
}

json_t *aws_query_numbered(json_t *o)
{
  json_t *arr = json_array();
  if (!json_is_object(o))
    return arr;
  for (long i = 1; i <= NUMBERED_MAX && json_array_size(arr) < json_object_size(o); i++) {
    char k[16];
    snprintf(k, sizeof k, "%ld", i);
    json_t *v = json_object_get(o, k);
    if (v != NULL)
      json_array_append(arr, v);
  }
  return arr;
}

/* ---- answers ---- */

void aws_query_response_begin(buf *b, const char *ns, const char *action, bool result)
{
  buf_printf(b, "<?xml version=\"1.0\"?><%sResponse xmlns=\"%s\">", action, ns);
  if (result)
    buf_printf(b, "<%sResult>", action);
}

void aws_query_response_end(buf *b, const char *action, bool result, const char *request_id)
{
  if (result)
    buf_printf(b, "</%sResult>", action);
  buf_puts(b, "<ResponseMetadata>");
  buf_xml_elem(b, "RequestId", request_id);
  buf_printf(b, "</ResponseMetadata></%sResponse>", action);
}
