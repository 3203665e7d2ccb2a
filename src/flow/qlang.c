/* flow/qlang.c -- what the definition check (asl.c) and JSONPath (path.c)
 * need to know of the query languages and of workflow variables: which
 * language a state uses, a "{% expr %}" string, a variable's name, and
 * the variables the current step sees. The states themselves are in
 * query.c; the JSONata language in jsonata.c.
 *
 * Invariant: nothing here depends on the engine, so the definition check
 * and its fuzz target link without it.
 */
#include "flow/query.h"

#include <ctype.h>
#include <string.h>

_Thread_local json_t *flow__vars_now;

bool flow__ql_jsonata(json_t *def, json_t *state)
{
  const char *ql = json_string_value(json_object_get(state, "QueryLanguage"));
  if (ql == NULL)
    ql = json_string_value(json_object_get(def, "QueryLanguage"));
  return ql != NULL && strcmp(ql, "JSONata") == 0;
}

bool flow__var_name_valid(const char *name, size_t len)
{
  if (len == 0 || len > FLOW_MAX_VARIABLE_NAME)
    return false;
  if (!isalpha((unsigned char)name[0]) && name[0] != '_')
    return false;
  for (size_t i = 1; i < len; i++)
    if (!isalnum((unsigned char)name[i]) && name[i] != '_')
      return false;
  return true;
}

/* The expression of "{% expr %}", or NULL for a literal string. */
const char *flow__jsonata_expr(json_t *v, size_t *len)
{
  const char *s = json_string_value(v);
  size_t n = json_string_length(v);
  if (s == NULL || n < 4 || strncmp(s, "{%", 2) != 0 || strcmp(s + n - 2, "%}") != 0)
    return NULL;
  *len = n - 4;
  return s + 2;
}

int flow__jsonata_check(json_t *v, err *e)
{
  size_t len;
  const char *x = flow__jsonata_expr(v, &len);
  if (x != NULL) {
    jsonata *j;
    int rc = jsonata_parse(x, len, &j, e);
    jsonata_free(j);
    return rc;
  }
  size_t i;
  json_t *item;
  const char *k;
  if (json_is_array(v)) {
    json_array_foreach(v, i, item) {
      int rc = flow__jsonata_check(item, e);
      if (rc != 0)
        return rc;
    }
  } else if (json_is_object(v)) {
    json_object_foreach(v, k, item) {
      int rc = flow__jsonata_check(item, e);
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

