/* flow/choice.c -- the Choice state's rules: the comparison operators
 * (String*, Numeric*, Boolean*, Timestamp*, each with its *Path form),
 * StringMatches, the type tests (IsNull, IsPresent, IsNumeric, IsString,
 * IsBoolean, IsTimestamp) and And / Or / Not.
 *
 * Why a table: every comparison is one of four types and one of five
 * relations, with or without Path; the operator's name says which, so one
 * table decodes it (the definition check uses the same table).
 *
 * Invariants:
 *   (1) A comparison whose Variable is missing is States.Runtime, except
 *       under IsPresent, which tests exactly that.
 *   (2) A value of the wrong type does not match (AWS: no error).
 *
 * Start reading at flow_choice_eval().
 */
#include "flow/internal.h"

#include "base/text.h"

#include <string.h>

enum ctype { CT_STRING, CT_NUMERIC, CT_BOOLEAN, CT_TIMESTAMP };
enum crel { CR_EQ, CR_LT, CR_GT, CR_LE, CR_GE };

static const struct {
  const char *name;
  enum ctype type;
} types[] = {{"String", CT_STRING}, {"Numeric", CT_NUMERIC}, {"Boolean", CT_BOOLEAN},
             {"Timestamp", CT_TIMESTAMP}};

static const struct {
  const char *name;
  enum crel rel;
} rels[] = {{"Equals", CR_EQ},         {"LessThanEquals", CR_LE}, {"GreaterThanEquals", CR_GE},
            {"LessThan", CR_LT},       {"GreaterThan", CR_GT}};

/* Decodes a comparison operator name: true when it is one. */
bool flow__choice_operator(const char *op, int *type, int *rel, bool *path)
{
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    size_t tl = strlen(types[t].name);
    if (strncmp(op, types[t].name, tl) != 0)
      continue;
    for (size_t r = 0; r < sizeof rels / sizeof rels[0]; r++) {
      size_t rl = strlen(rels[r].name);
      if (strncmp(op + tl, rels[r].name, rl) != 0)
        continue;
      const char *rest = op + tl + rl;
      if (*rest != '\0' && strcmp(rest, "Path") != 0)
        continue;
      if (types[t].type == CT_BOOLEAN && rels[r].rel != CR_EQ)
        return false;
      *type = (int)types[t].type;
      *rel = (int)rels[r].rel;
      *path = *rest != '\0';
      return true;
    }
  }
  return false;
}

const char *const flow__choice_tests[] = {"IsNull",    "IsPresent",   "IsNumeric", "IsString",
                                          "IsBoolean", "IsTimestamp", "StringMatches", NULL};

/* '*' matches any run of characters; '\*' a star, '\\' a backslash. */
static bool glob(const char *pat, const char *s)
{
  while (*pat) {
    if (*pat == '*') {
      pat++;
      for (;;) {
        if (glob(pat, s))
          return true;
        if (*s == '\0')
          return false;
        s++;
      }
    }
    char want = *pat;
    if (want == '\\' && pat[1] != '\0')
      want = *++pat;
    if (*s != want)
      return false;
    pat++;
    s++;
  }
  return *s == '\0';
}

static bool is_timestamp(json_t *v, int64_t *ms)
{
  int64_t x;
  if (!json_is_string(v) || !time_parse_iso8601(json_string_value(v), &x))
    return false;
  if (ms != NULL)
    *ms = x;
  return true;
}

static bool compare(enum ctype t, enum crel r, json_t *a, json_t *b)
{
  int c;
  switch (t) {
  case CT_STRING:
    if (!json_is_string(a) || !json_is_string(b))
      return false;
    c = strcmp(json_string_value(a), json_string_value(b));
    break;
  case CT_NUMERIC: {
    if (!json_is_number(a) || !json_is_number(b))
      return false;
    double x = json_number_value(a);
    double y = json_number_value(b);
    c = x < y ? -1 : x > y ? 1 : 0;
    break;
  }
  case CT_BOOLEAN:
    if (!json_is_boolean(a) || !json_is_boolean(b))
      return false;
    c = json_is_true(a) == json_is_true(b) ? 0 : 1;
    break;
  default: {
    int64_t x, y;
    if (!is_timestamp(a, &x) || !is_timestamp(b, &y))
      return false;
    c = x < y ? -1 : x > y ? 1 : 0;
    break;
  }
  }
  switch (r) {
  case CR_EQ:
    return c == 0;
  case CR_LT:
    return c < 0;
  case CR_GT:
    return c > 0;
  case CR_LE:
    return c <= 0;
  default:
    return c >= 0;
  }
}

int flow_choice_eval(json_t *rule, json_t *input, json_t *ctx, bool *match, err *e)
{
  *match = false;
  json_t *list;
  if ((list = json_object_get(rule, "And")) != NULL || (list = json_object_get(rule, "Or")) != NULL) {
    bool is_and = json_object_get(rule, "And") != NULL;
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r) {
      bool m;
      int rc = flow_choice_eval(r, input, ctx, &m, e);
      if (rc != 0)
        return rc;
      if (is_and && !m)
        return 0;
      if (!is_and && m) {
        *match = true;
        return 0;
      }
    }
    *match = is_and;
    return 0;
  }
  json_t *not = json_object_get(rule, "Not");
  if (not != NULL) {
    bool m;
    int rc = flow_choice_eval(not, input, ctx, &m, e);
    *match = !m;
    return rc;
  }
  const char *var = json_string_value(json_object_get(rule, "Variable"));
  json_t *val = NULL;
  err ve = {0};
  int vrc = var != NULL ? flow_path_get(var, input, ctx, &val, &ve) : -1;
  json_t *present = json_object_get(rule, "IsPresent");
  if (present != NULL) {
    *match = (vrc == 0) == json_is_true(present);
    json_decref(val);
    return 0;
  }
  if (vrc != 0) {
    if (var == NULL)
      return err_set(e, FLOW_ERR_RUNTIME, "a Choice rule has no Variable");
    *e = ve;
    return e->code;
  }
  const char *k;
  json_t *operand;
  int rc = 0;
  json_object_foreach(rule, k, operand) {
    if (strcmp(k, "Variable") == 0 || strcmp(k, "Next") == 0 || strcmp(k, "Comment") == 0)
      continue;
    int t, r;
    bool path;
    if (flow__choice_operator(k, &t, &r, &path)) {
      json_t *other = operand;
      json_t *owned = NULL;
      if (path) {
        if ((rc = flow_path_get(json_string_value(operand), input, ctx, &owned, e)) != 0)
          break;
        other = owned;
      }
      *match = compare((enum ctype)t, (enum crel)r, val, other);
      json_decref(owned);
    } else if (strcmp(k, "StringMatches") == 0) {
      *match = json_is_string(val) && json_is_string(operand) &&
               glob(json_string_value(operand), json_string_value(val));
    } else if (strcmp(k, "IsNull") == 0) {
      *match = json_is_null(val) == json_is_true(operand);
    } else if (strcmp(k, "IsNumeric") == 0) {
      *match = json_is_number(val) == json_is_true(operand);
    } else if (strcmp(k, "IsString") == 0) {
      *match = json_is_string(val) == json_is_true(operand);
    } else if (strcmp(k, "IsBoolean") == 0) {
      *match = json_is_boolean(val) == json_is_true(operand);
    } else if (strcmp(k, "IsTimestamp") == 0) {
      *match = is_timestamp(val, NULL) == json_is_true(operand);
    } else {
      continue;
    }
    break;
  }
  json_decref(val);
  return rc;
}
