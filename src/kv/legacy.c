/* kv/legacy.c -- DynamoDB's legacy conditional parameters (AttributesToGet,
 * Expected, KeyConditions, QueryFilter, ScanFilter, AttributeUpdates,
 * ConditionalOperator) rewritten into the expression parameters, so older
 * code and `aws dynamodb --key-conditions ...` work.
 *
 * Why a rewrite: the two forms say the same things; rewriting keeps one
 * evaluator (expr.c). Placeholders are #lgN and :lgN.
 *
 * Invariants:
 *   (1) A request that mixes the two forms is refused, as AWS does.
 *   (2) The rewrite happens before the operation reads its input; nothing
 *       else changes in the request.
 *
 * Start reading at kv_legacy_rewrite().
 */
#include "internal.h"

#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lg {
  json_t *names, *values;
  buf out;
  err *e;
  int rc;
} lg;

static const char *nm(lg *g, const char *name)
{
  char ph[32];
  snprintf(ph, sizeof ph, "#lg%zu", json_object_size(g->names));
  json_object_set_new(g->names, ph, json_string(name));
  return json_object_iter_key(json_object_iter_at(g->names, ph));
}

static const char *val(lg *g, json_t *v)
{
  char ph[32];
  snprintf(ph, sizeof ph, ":lg%zu", json_object_size(g->values));
  json_object_set(g->values, ph, v);
  return json_object_iter_key(json_object_iter_at(g->values, ph));
}

/* One attribute's condition ({ComparisonOperator, AttributeValueList} or
 * Expected's {Value, Exists}) written to g->out. */
static int one(lg *g, const char *attr, json_t *c)
{
  const char *op = kv__in_str(c, "ComparisonOperator");
  json_t *list = json_object_get(c, "AttributeValueList");
  json_t *value = json_object_get(c, "Value");
  json_t *exists = json_object_get(c, "Exists");
  const char *a = nm(g, attr);
  if (op == NULL) {
    if (json_is_false(exists)) {
      if (value != NULL)
        return g->rc = err_set(g->e, KV_ERR_VALIDATION, "One or more parameter values were "
                               "invalid: Value cannot be used when Exists is false for "
                               "Attribute: %s", attr);
      return buf_printf(&g->out, "attribute_not_exists(%s)", a);
    }
    if (value == NULL)
      return g->rc = err_set(g->e, KV_ERR_VALIDATION, "One or more parameter values were "
                             "invalid: Value must be provided when Exists is true for "
                             "Attribute: %s", attr);
    return buf_printf(&g->out, "%s = %s", a, val(g, value));
  }
  static const struct {
    const char *op, *pre, *mid, *post;  /* pre ATTR mid VALUE post; mid NULL: no value */
  } ops[] = {{"EQ", "", " = ", ""},           {"NE", "", " <> ", ""},
             {"LE", "", " <= ", ""},          {"LT", "", " < ", ""},
             {"GE", "", " >= ", ""},          {"GT", "", " > ", ""},
             {"NOT_NULL", "attribute_exists(", NULL, ")"},
             {"NULL", "attribute_not_exists(", NULL, ")"},
             {"CONTAINS", "contains(", ", ", ")"},
             {"NOT_CONTAINS", "NOT contains(", ", ", ")"},
             {"BEGINS_WITH", "begins_with(", ", ", ")"}};
  json_t *v0 = json_array_get(list, 0);
  if (value != NULL && v0 == NULL)
    v0 = value;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    if (strcmp(ops[i].op, op) != 0)
      continue;
    if (ops[i].mid == NULL)
      return buf_printf(&g->out, "%s%s%s", ops[i].pre, a, ops[i].post);
    if (v0 == NULL)
      break;
    return buf_printf(&g->out, "%s%s%s%s%s", ops[i].pre, a, ops[i].mid, val(g, v0), ops[i].post);
  }
  if (strcmp(op, "BETWEEN") == 0 && json_array_size(list) == 2)
    return buf_printf(&g->out, "%s BETWEEN %s AND %s", a, val(g, json_array_get(list, 0)),
                      val(g, json_array_get(list, 1)));
  if (strcmp(op, "IN") == 0 && json_array_size(list) > 0) {
    buf_printf(&g->out, "%s IN (", a);
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) buf_printf(&g->out, "%s%s", i ? ", " : "", val(g, x));
    return buf_puts(&g->out, ")");
  }
  return g->rc = err_set(g->e, KV_ERR_VALIDATION, "One or more parameter values were invalid: "
                         "Invalid number of argument(s) for the %s ComparisonOperator", op);
}

/* A map of conditions joined by ConditionalOperator into key expr. */
static int conditions(lg *g, json_t *in, const char *from, const char *to, const char *join)
{
  json_t *m = json_object_get(in, from);
  if (m == NULL)
    return 0;
  buf_reset(&g->out);
  const char *attr;
  json_t *c;
  size_t n = 0;
  json_object_foreach(m, attr, c) {
    if (n++ > 0)
      buf_printf(&g->out, " %s ", join);
    if (one(g, attr, c) != 0 || g->rc != 0)
      return g->rc != 0 ? g->rc : err_set(g->e, KV_ERR_VALIDATION, "%s is too long", from);
  }
  if (n > 0)
    json_object_set_new(in, to, json_string(g->out.data));
  json_object_del(in, from);
  return 0;
}

static int updates(lg *g, json_t *in)
{
  json_t *m = json_object_get(in, "AttributeUpdates");
  if (m == NULL)
    return 0;
  buf sets, removes, adds, dels;
  buf_init(&sets, 1 << 20);
  buf_init(&removes, 1 << 20);
  buf_init(&adds, 1 << 20);
  buf_init(&dels, 1 << 20);
  const char *attr;
  json_t *u;
  json_object_foreach(m, attr, u) {
    const char *action = kv__in_str(u, "Action");
    json_t *v = json_object_get(u, "Value");
    const char *a = nm(g, attr);
    if (action == NULL || strcmp(action, "PUT") == 0) {
      if (v == NULL) {
        g->rc = err_set(g->e, KV_ERR_VALIDATION, "One or more parameter values were invalid: "
                        "Only DELETE action is allowed when no attribute value is specified");
        break;
      }
      buf_printf(&sets, "%s%s = %s", sets.len ? ", " : "", a, val(g, v));
    } else if (strcmp(action, "DELETE") == 0 && v == NULL) {
      buf_printf(&removes, "%s%s", removes.len ? ", " : "", a);
    } else if (strcmp(action, "DELETE") == 0 || strcmp(action, "ADD") == 0) {
      buf *b = action[0] == 'A' ? &adds : &dels;
      if (v == NULL) {
        g->rc = err_set(g->e, KV_ERR_VALIDATION, "One or more parameter values were invalid: "
                        "ADD action requires a value");
        break;
      }
      buf_printf(b, "%s%s %s", b->len ? ", " : "", a, val(g, v));
    } else {
      g->rc = err_set(g->e, KV_ERR_VALIDATION, "1 validation error detected: Value '%s' at "
                      "'attributeUpdates.%s.member.action' failed to satisfy constraint: Member "
                      "must satisfy enum value set: [ADD, PUT, DELETE]", action, attr);
      break;
    }
  }
  if (g->rc == 0) {
    buf_reset(&g->out);
    if (sets.len)
      buf_printf(&g->out, "SET %s ", sets.data);
    if (removes.len)
      buf_printf(&g->out, "REMOVE %s ", removes.data);
    if (adds.len)
      buf_printf(&g->out, "ADD %s ", adds.data);
    if (dels.len)
      buf_printf(&g->out, "DELETE %s", dels.data);
    if (g->out.len > 0)
      json_object_set_new(in, "UpdateExpression", json_string(g->out.data));
    json_object_del(in, "AttributeUpdates");
  }
  buf_release(&sets);
  buf_release(&removes);
  buf_release(&adds);
  buf_release(&dels);
  return g->rc;
}

int kv_legacy_rewrite(json_t *in, err *e)
{
  static const char *const legacy[] = {"AttributesToGet", "Expected", "KeyConditions",
                                       "QueryFilter", "ScanFilter", "AttributeUpdates"};
  static const char *const modern[] = {"ProjectionExpression", "ConditionExpression",
                                       "KeyConditionExpression", "FilterExpression",
                                       "UpdateExpression", "ExpressionAttributeNames",
                                       "ExpressionAttributeValues"};
  const char *old = NULL, *nw = NULL;
  for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++)
    if (json_object_get(in, legacy[i]) != NULL)
      old = legacy[i];
  if (old == NULL)
    return 0;
  for (size_t i = 0; i < sizeof modern / sizeof modern[0]; i++)
    if (json_object_get(in, modern[i]) != NULL)
      nw = modern[i];
  if (nw != NULL) /* (1) */
    return err_set(e, KV_ERR_VALIDATION, "Can not use both expression and non-expression "
                   "parameters in the same request: Non-expression parameters: {%s} Expression "
                   "parameters: {%s}", old, nw);
  lg g = {json_object(), json_object(), {0}, e, 0};
  buf_init(&g.out, 1 << 20);
  const char *join = kv__in_str(in, "ConditionalOperator");
  if (join == NULL)
    join = "AND";
  if (strcmp(join, "AND") != 0 && strcmp(join, "OR") != 0)
    g.rc = err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%s' at "
                   "'conditionalOperator' failed to satisfy constraint: Member must satisfy "
                   "enum value set: [AND, OR]", join);
  json_t *atg = json_object_get(in, "AttributesToGet");
  if (g.rc == 0 && json_is_array(atg) && json_array_size(atg) > 0) {
    size_t i;
    json_t *x;
    json_array_foreach(atg, i, x) {
      if (json_is_string(x))
        buf_printf(&g.out, "%s%s", g.out.len ? ", " : "", nm(&g, json_string_value(x)));
    }
    json_object_set_new(in, "ProjectionExpression", json_string(g.out.data));
  }
  json_object_del(in, "AttributesToGet");
  if (g.rc == 0)
    conditions(&g, in, "Expected", "ConditionExpression", join);
  if (g.rc == 0)
    conditions(&g, in, "KeyConditions", "KeyConditionExpression", "AND");
  if (g.rc == 0)
    conditions(&g, in, "QueryFilter", "FilterExpression", join);
  if (g.rc == 0)
    conditions(&g, in, "ScanFilter", "FilterExpression", join);
  if (g.rc == 0)
    updates(&g, in);
  json_object_del(in, "ConditionalOperator");
  if (g.rc == 0 && json_object_size(g.names) > 0)
    json_object_set(in, "ExpressionAttributeNames", g.names);
  if (g.rc == 0 && json_object_size(g.values) > 0)
    json_object_set(in, "ExpressionAttributeValues", g.values);
  json_decref(g.names);
  json_decref(g.values);
  buf_release(&g.out);
  return g.rc;
}
