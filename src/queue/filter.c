/* queue/filter.c -- SNS subscription filter policies: validation and
 * matching against message attributes or a JSON message body.
 *
 * Why here: publish evaluates every subscription's policy in the commit
 * that fans the message out, so matching must be cheap and must not fail:
 * a policy is validated once when it is set, and matching walks the
 * validated JSON.
 *
 * The language (as SNS documents it):
 *   {"key": [rule, ...], ...}      every key must match; a key matches when
 *                                  any of its rules matches any of its values
 *   {"key": {"nested": [...]}}     MessageBody scope: nested keys
 *   {"$or": [{...}, {...}], ...}   the other keys and any one of the branches
 *   rules: "string", 123 (numeric equality), true / false / null (body),
 *     {"prefix": "a"}, {"suffix": "z"}, {"equals-ignore-case": "x"},
 *     {"anything-but": "x" | 1 | ["x", 1] | {"prefix": "a"} | {"suffix": "z"}},
 *     {"numeric": ["=", 1]} / [">", 0, "<=", 10] (lower bound first),
 *     {"exists": true | false}
 * Values: a String attribute is a string, a Number attribute a number, a
 * String.Array attribute each element of its JSON array; Binary attributes
 * only satisfy "exists". In the body, JSON types are taken as they are and
 * an array value matches when any element does.
 *
 * Invariants:
 *   (1) queue_filter_match never fails and never allocates for attributes
 *       (the body and String.Array values are parsed once per match).
 *   (2) A policy has at most FILTER_MAX_COMBINATIONS value combinations,
 *       as SNS limits them.
 */
#include "internal.h"

#include "base/mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FILTER_MAX_COMBINATIONS 150
#define FILTER_MAX_DEPTH 8

struct queue_filter {
  json_t *policy;  /* validated */
};

/* ---- validation ---- */

#define bad(e, ...) err_set(e, QUEUE_ERR_FILTER, __VA_ARGS__)

static int check_numeric(json_t *arr, err *e)
{
  size_t n = json_array_size(arr);
  if (!json_is_array(arr) || (n != 2 && n != 4))
    return bad(e, "Value of numeric must be an array of one or two comparisons");
  bool lower = false, upper = false;
  for (size_t i = 0; i < n; i += 2) {
    const char *op = json_string_value(json_array_get(arr, i));
    json_t *v = json_array_get(arr, i + 1);
    if (op == NULL || !json_is_number(v))
      return bad(e, "Value of numeric must be an array of operators and numbers");
    if (strcmp(op, "=") == 0) {
      if (n != 2)
        return bad(e, "Bad numeric range operator: %s", op);
    } else if (strcmp(op, ">") == 0 || strcmp(op, ">=") == 0) {
      if (lower || upper)
        return bad(e, "Bad numeric range operator: %s", op);
      lower = true;
    } else if (strcmp(op, "<") == 0 || strcmp(op, "<=") == 0) {
      if (upper)
        return bad(e, "Bad numeric range operator: %s", op);
      upper = true;
    } else {
      return bad(e, "Unrecognized numeric range operator: %s", op);
    }
  }
  if (n == 4) {
    if (!lower || !upper)
      return bad(e, "Too many elements in numeric expression");
    if (json_number_value(json_array_get(arr, 1)) >= json_number_value(json_array_get(arr, 3)))
      return bad(e, "Bottom must be less than top");
  }
  return 0;
}

static int check_rule(json_t *r, err *e)
{
  if (json_is_string(r) || json_is_number(r) || json_is_boolean(r) || json_is_null(r))
    return 0;
  if (!json_is_object(r) || json_object_size(r) != 1)
    return bad(e, "Match value must be String, number, true, false, or null");
  const char *op = json_object_iter_key(json_object_iter(r));
  json_t *v = json_object_iter_value(json_object_iter(r));
  if (strcmp(op, "prefix") == 0 || strcmp(op, "suffix") == 0 ||
      strcmp(op, "equals-ignore-case") == 0) {
    if (!json_is_string(v))
      return bad(e, "%s match pattern must be a string", op);
    return 0;
  }
  if (strcmp(op, "exists") == 0) {
    if (!json_is_boolean(v))
      return bad(e, "exists match pattern must be either true or false.");
    return 0;
  }
  if (strcmp(op, "numeric") == 0)
    return check_numeric(v, e);
  if (strcmp(op, "anything-but") == 0) {
    if (json_is_string(v) || json_is_number(v))
      return 0;
    if (json_is_array(v)) {
      if (json_array_size(v) == 0)
        return bad(e, "Empty arrays are not allowed");
      size_t i;
      json_t *x;
      json_array_foreach(v, i, x) {
        if (!json_is_string(x) && !json_is_number(x))
          return bad(e, "Inside anything but list, start|null|boolean is not supported.");
      }
      return 0;
    }
    if (json_is_object(v) && json_object_size(v) == 1) {
      const char *k = json_object_iter_key(json_object_iter(v));
      json_t *kv = json_object_iter_value(json_object_iter(v));
      if ((strcmp(k, "prefix") == 0 || strcmp(k, "suffix") == 0) && json_is_string(kv))
        return 0;
      return bad(e, "Unsupported anything-but pattern: %s", k);
    }
    return bad(e, "Value of anything-but must be an array or single string/number value.");
  }
  return bad(e, "Unrecognized match type %s", op);
}

/* Validates an object of keys; *combos gets its number of combinations. */
static int check_object(json_t *o, int depth, size_t *combos, err *e)
{
  if (!json_is_object(o) || json_object_size(o) == 0)
    return bad(e, "Filter policy must be a non-empty JSON object");
  if (depth > FILTER_MAX_DEPTH)
    return bad(e, "Filter policy is nested too deeply");
  size_t total = 1;
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    size_t c = 0;
    if (strcmp(key, "$or") == 0) {
      if (!json_is_array(v) || json_array_size(v) < 2)
        return bad(e, "Or condition must be an array of at least two objects");
      size_t i;
      json_t *branch;
      json_array_foreach(v, i, branch) {
        size_t bc = 0;
        int rc = check_object(branch, depth + 1, &bc, e);
        if (rc != 0)
          return rc;
        c += bc;
      }
    } else if (json_is_object(v)) {
      int rc = check_object(v, depth + 1, &c, e);
      if (rc != 0)
        return rc;
    } else if (json_is_array(v)) {
      if (json_array_size(v) == 0)
        return bad(e, "Empty arrays are not allowed");
      size_t i;
      json_t *r;
      json_array_foreach(v, i, r) {
        int rc = check_rule(r, e);
        if (rc != 0)
          return rc;
      }
      c = json_array_size(v);
    } else {
      return bad(e, "\"%s\" must be an object or an array", key);
    }
    total *= c;
    if (total > FILTER_MAX_COMBINATIONS)
      return bad(e, "Filter policy is too complex");
  }
  *combos = total;
  return 0;
}

int queue_filter_new(const char *policy_json, queue_filter **out, err *e)
{
  *out = NULL;
  json_error_t je;
  json_t *j = json_loads(policy_json != NULL ? policy_json : "", JSON_REJECT_DUPLICATES, &je);
  if (j == NULL)
    return err_set(e, QUEUE_ERR_FILTER, "failed to parse JSON. %s", je.text);
  size_t combos = 0;
  int rc = check_object(j, 0, &combos, e);
  if (rc != 0) {
    json_decref(j);
    return rc;
  }
  queue_filter *f = xcalloc(1, sizeof *f);
  f->policy = j;
  *out = f;
  return 0;
}

queue_filter *queue_filter_free(queue_filter *f)
{
  if (f != NULL) {
    json_decref(f->policy);
    free(f);
  }
  return NULL;
}

/* ---- matching ---- */

enum vkind { V_STR, V_NUM, V_BOOL, V_NULL, V_OTHER };

typedef struct val {
  enum vkind kind;
  const char *s;   /* V_STR */
  double d;        /* V_NUM */
  bool b;          /* V_BOOL */
} val;

static val val_of_json(json_t *j)
{
  val v = {.kind = V_OTHER};
  if (json_is_string(j)) {
    v.kind = V_STR;
    v.s = json_string_value(j);
  } else if (json_is_number(j)) {
    v.kind = V_NUM;
    v.d = json_number_value(j);
  } else if (json_is_boolean(j)) {
    v.kind = V_BOOL;
    v.b = json_is_true(j);
  } else if (json_is_null(j)) {
    v.kind = V_NULL;
  }
  return v;
}

static bool literal_eq(json_t *lit, const val *v)
{
  if (json_is_string(lit))
    return v->kind == V_STR && strcmp(json_string_value(lit), v->s) == 0;
  if (json_is_number(lit))
    return v->kind == V_NUM && json_number_value(lit) == v->d;
  if (json_is_boolean(lit))
    return v->kind == V_BOOL && json_is_true(lit) == v->b;
  if (json_is_null(lit))
    return v->kind == V_NULL;
  return false;
}

static bool cmp_op(const char *op, double x, double bound)
{
  if (strcmp(op, "=") == 0)
    return x == bound;
  if (strcmp(op, ">") == 0)
    return x > bound;
  if (strcmp(op, ">=") == 0)
    return x >= bound;
  if (strcmp(op, "<") == 0)
    return x < bound;
  if (strcmp(op, "<=") == 0)
    return x <= bound;
  return false;
}

static bool rule_match(json_t *r, const val *v)
{
  if (!json_is_object(r))
    return literal_eq(r, v);
  const char *op = json_object_iter_key(json_object_iter(r));
  json_t *arg = json_object_iter_value(json_object_iter(r));
  if (strcmp(op, "exists") == 0)
    return json_is_true(arg);
  if (strcmp(op, "prefix") == 0)
    return v->kind == V_STR && str_starts(v->s, json_string_value(arg));
  if (strcmp(op, "suffix") == 0)
    return v->kind == V_STR && str_ends(v->s, json_string_value(arg));
  if (strcmp(op, "equals-ignore-case") == 0)
    return v->kind == V_STR && strcasecmp(v->s, json_string_value(arg)) == 0;
  if (strcmp(op, "numeric") == 0) {
    if (v->kind != V_NUM)
      return false;
    for (size_t i = 0; i + 1 < json_array_size(arg); i += 2)
      if (!cmp_op(json_string_value(json_array_get(arg, i)), v->d,
                  json_number_value(json_array_get(arg, i + 1))))
        return false;
    return true;
  }
  if (strcmp(op, "anything-but") == 0) {
    if (json_is_array(arg)) {
      size_t i;
      json_t *x;
      json_array_foreach(arg, i, x) {
        if (literal_eq(x, v))
          return false;
      }
      return true;
    }
    if (json_is_object(arg)) {
      const char *k = json_object_iter_key(json_object_iter(arg));
      const char *s = json_string_value(json_object_iter_value(json_object_iter(arg)));
      if (v->kind != V_STR)
        return true;
      return strcmp(k, "prefix") == 0 ? !str_starts(v->s, s) : !str_ends(v->s, s);
    }
    return !literal_eq(arg, v);
  }
  return false;
}

/* A key's rules against its values (n == 0: the key is absent). */
static bool rules_match(json_t *rules, const val *vals, size_t n, bool present)
{
  size_t i;
  json_t *r;
  json_array_foreach(rules, i, r) {
    if (!present) {
      if (json_is_object(r)) {
        json_t *ex = json_object_get(r, "exists");
        if (ex != NULL && json_is_false(ex))
          return true;
      }
      continue;
    }
    if (json_is_object(r) && json_object_get(r, "exists") != NULL) {
      if (json_is_true(json_object_get(r, "exists")))
        return true;
      continue;
    }
    for (size_t k = 0; k < n; k++)
      if (rule_match(r, &vals[k]))
        return true;
  }
  return false;
}

/* ---- attribute scope ---- */

static const queue_attr *attr_find(const queue_attr *attrs, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(attrs[i].name, name) == 0)
      return &attrs[i];
  return NULL;
}

static bool key_match_attr(const char *key, json_t *rules, const queue_attr *attrs, size_t n)
{
  if (!json_is_array(rules))
    return false;  /* nested policies apply to the body only */
  const queue_attr *at = attr_find(attrs, n, key);
  if (at == NULL)
    return rules_match(rules, NULL, 0, false);
  if (str_starts(at->type, "Binary") || at->value == NULL)
    return rules_match(rules, NULL, 0, true);
  if (str_starts(at->type, "Number")) {
    val v = {.kind = V_NUM, .d = strtod(at->value, NULL)};
    return rules_match(rules, &v, 1, true);
  }
  if (strcmp(at->type, "String.Array") == 0) {
    json_t *arr = json_loads(at->value, 0, NULL);
    bool m = false;
    if (json_is_array(arr)) {
      size_t cnt = json_array_size(arr);
      val *vals = xcalloc(cnt + 1, sizeof *vals);
      for (size_t i = 0; i < cnt; i++)
        vals[i] = val_of_json(json_array_get(arr, i));
      m = rules_match(rules, vals, cnt, true);
      free(vals);
    }
    json_decref(arr);
    return m;
  }
  val v = {.kind = V_STR, .s = at->value};
  return rules_match(rules, &v, 1, true);
}

static bool match_attrs(json_t *policy, const queue_attr *attrs, size_t n)
{
  const char *key;
  json_t *rules;
  json_object_foreach(policy, key, rules) {
    if (strcmp(key, "$or") == 0) {
      bool any = false;
      size_t i;
      json_t *branch;
      json_array_foreach(rules, i, branch) {
        if (match_attrs(branch, attrs, n)) {
          any = true;
          break;
        }
      }
      if (!any)
        return false;
    } else if (!key_match_attr(key, rules, attrs, n)) {
      return false;
    }
  }
  return true;
}

/* ---- body scope ---- */

static bool match_body(json_t *policy, json_t *obj);

static bool key_match_body(json_t *pv, json_t *bv)
{
  if (json_is_object(pv)) {
    if (json_is_array(bv)) {
      size_t i;
      json_t *x;
      json_array_foreach(bv, i, x) {
        if (json_is_object(x) && match_body(pv, x))
          return true;
      }
      return false;
    }
    return match_body(pv, json_is_object(bv) ? bv : NULL);
  }
  if (bv == NULL)
    return rules_match(pv, NULL, 0, false);
  if (json_is_array(bv)) {
    size_t cnt = json_array_size(bv);
    val *vals = xcalloc(cnt + 1, sizeof *vals);
    for (size_t i = 0; i < cnt; i++)
      vals[i] = val_of_json(json_array_get(bv, i));
    bool m = rules_match(pv, vals, cnt, true);
    free(vals);
    return m;
  }
  val v = val_of_json(bv);
  return rules_match(pv, &v, 1, true);
}

/* obj NULL: every key is absent. */
static bool match_body(json_t *policy, json_t *obj)
{
  const char *key;
  json_t *pv;
  json_object_foreach(policy, key, pv) {
    if (strcmp(key, "$or") == 0) {
      bool any = false;
      size_t i;
      json_t *branch;
      json_array_foreach(pv, i, branch) {
        if (match_body(branch, obj)) {
          any = true;
          break;
        }
      }
      if (!any)
        return false;
    } else if (!key_match_body(pv, obj != NULL ? json_object_get(obj, key) : NULL)) {
      return false;
    }
  }
  return true;
}

bool queue_filter_match(const queue_filter *f, bool body_scope, const queue_attr *attrs,
                        size_t nattrs, const char *body, size_t body_len)
{
  if (f == NULL)
    return true;
  if (!body_scope)
    return match_attrs(f->policy, attrs, nattrs);
  json_t *j = json_loadb(body != NULL ? body : "", body_len, 0, NULL);
  bool m = json_is_object(j) && match_body(f->policy, j);
  json_decref(j);
  return m;
}
