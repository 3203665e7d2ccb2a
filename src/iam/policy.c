/* iam/policy.c -- the core of IAM's policy language: validation of a
 * document at put time, and the decision over a set of documents.
 *
 * Why here and not in each service: every service asks the same question
 * (may this principal do action A on resource R?), and one evaluator
 * means one set of rules to get right.
 *
 * Rules (IAM's, for identity-based policies within one account):
 *   (1) Default deny; any matching Allow allows; any matching Deny wins
 *       over every Allow.
 *   (2) A statement matches when its Action (or NotAction) matches the
 *       action, its Resource (or NotResource) matches the resource, and
 *       every condition holds.
 *   (3) Actions match case-insensitively, resources case-sensitively; both
 *       take '*' (any run) and '?' (one character).
 *   (4) Conditions: operators are ANDed, keys within an operator are
 *       ANDed, values of one key are ORed. A key absent from the request
 *       fails a positive operator and satisfies a negated one
 *       (StringNotEquals, StringNotLike, NotIpAddress).
 *   (5) Validation refuses what the evaluator would not understand (an
 *       unknown element or condition operator): a policy is never
 *       silently broader than it reads.
 *
 * Start reading at iam_policy_evaluate().
 */
#include "iam/iam.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- matching ---- */

static char fold(char c, bool nocase)
{
  return nocase && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool iam_wildcard_match(const char *p, const char *s, bool nocase)
{
  const char *star = NULL;
  const char *resume = NULL;
  while (*s) {
    if (*p == '*') {
      star = p++;
      resume = s;
    } else if (*p == '?' || (*p && fold(*p, nocase) == fold(*s, nocase))) {
      p++;
      s++;
    } else if (star != NULL) {
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (*p == '*')
    p++;
  return *p == '\0';
}

/* A string or an array of strings matches value (any of them). */
static bool any_match(json_t *v, const char *value, bool nocase)
{
  if (json_is_string(v))
    return iam_wildcard_match(json_string_value(v), value, nocase);
  size_t i;
  json_t *x;
  json_array_foreach(v, i, x)
  {
    if (json_is_string(x) && iam_wildcard_match(json_string_value(x), value, nocase))
      return true;
  }
  return false;
}

/* ---- conditions ---- */

static bool cidr_contains(const char *cidr, const char *ip)
{
  char net[64];
  snprintf(net, sizeof net, "%s", cidr);
  char *slash = strchr(net, '/');
  int bits = -1;
  if (slash != NULL) {
    *slash = '\0';
    bits = atoi(slash + 1);
  }
  unsigned char a[16];
  unsigned char b[16];
  size_t len;
  if (inet_pton(AF_INET, net, a) == 1 && inet_pton(AF_INET, ip, b) == 1) {
    len = 4;
  } else if (inet_pton(AF_INET6, net, a) == 1) {
    if (inet_pton(AF_INET6, ip, b) != 1) {
      /* an IPv4 peer against an IPv6 range: as ::ffff:a.b.c.d */
      unsigned char v4[4];
      if (inet_pton(AF_INET, ip, v4) != 1)
        return false;
      memset(b, 0, 10);
      b[10] = b[11] = 0xff;
      memcpy(b + 12, v4, 4);
    }
    len = 16;
  } else {
    return false;
  }
  if (bits < 0 || bits > (int)len * 8)
    bits = (int)len * 8;
  for (int i = 0; i < bits; i++) {
    int byte = i / 8;
    int mask = 0x80 >> (i % 8);
    if ((a[byte] & mask) != (b[byte] & mask))
      return false;
  }
  return true;
}

static const char *context_value(const iam_context *ctx, const char *key)
{
  if (ctx == NULL)
    return NULL;
  if (strcasecmp(key, "aws:SourceIp") == 0)
    return ctx->source_ip;
  if (strcasecmp(key, "aws:SecureTransport") == 0)
    return ctx->secure_transport ? "true" : "false";
  if (strcasecmp(key, "s3:prefix") == 0)
    return ctx->s3_prefix;
  if (strcasecmp(key, "aws:username") == 0)
    return ctx->username;
  return NULL;
}

enum op_kind { OP_STR_EQ, OP_STR_NE, OP_STR_LIKE, OP_STR_NOT_LIKE, OP_IP, OP_NOT_IP, OP_BOOL };

static const struct {
  const char *name;
  enum op_kind kind;
} operators[] = {
    {"StringEquals", OP_STR_EQ},  {"StringNotEquals", OP_STR_NE},
    {"StringLike", OP_STR_LIKE},  {"StringNotLike", OP_STR_NOT_LIKE},
    {"IpAddress", OP_IP},         {"NotIpAddress", OP_NOT_IP},
    {"Bool", OP_BOOL},
};

static int operator_of(const char *name)
{
  for (size_t i = 0; i < sizeof operators / sizeof operators[0]; i++)
    if (strcmp(operators[i].name, name) == 0)
      return (int)operators[i].kind;
  return -1;
}

static bool value_matches(enum op_kind k, const char *want, const char *got)
{
  switch (k) {
  case OP_STR_EQ:
  case OP_STR_NE:
    return strcmp(want, got) == 0;
  case OP_STR_LIKE:
  case OP_STR_NOT_LIKE:
    return iam_wildcard_match(want, got, false);
  case OP_IP:
  case OP_NOT_IP:
    return cidr_contains(want, got);
  case OP_BOOL:
    return strcasecmp(want, got) == 0;
  }
  return false;
}

static bool condition_holds(enum op_kind k, json_t *values, const char *got)
{
  bool negated = k == OP_STR_NE || k == OP_STR_NOT_LIKE || k == OP_NOT_IP;
  if (got == NULL)
    return negated;
  bool any = false;
  if (json_is_string(values)) {
    any = value_matches(k, json_string_value(values), got);
  } else {
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v)
    {
      if (json_is_string(v) && value_matches(k, json_string_value(v), got)) {
        any = true;
        break;
      }
    }
  }
  return negated ? !any : any;
}

static bool conditions_hold(json_t *cond, const iam_context *ctx)
{
  const char *op;
  json_t *keys;
  json_object_foreach(cond, op, keys)
  {
    int k = operator_of(op);
    if (k < 0)
      return false; /* refused at validation; never allow on what is not understood */
    const char *key;
    json_t *values;
    json_object_foreach(keys, key, values)
    {
      if (!condition_holds((enum op_kind)k, values, context_value(ctx, key)))
        return false;
    }
  }
  return true;
}

/* ---- evaluation ---- */

static bool statement_matches(json_t *st, const char *action, const char *resource,
                              const iam_context *ctx)
{
  json_t *a = json_object_get(st, "Action");
  json_t *na = json_object_get(st, "NotAction");
  if (a != NULL ? !any_match(a, action, true) : na == NULL || any_match(na, action, true))
    return false;
  json_t *r = json_object_get(st, "Resource");
  json_t *nr = json_object_get(st, "NotResource");
  if (r != NULL ? !any_match(r, resource, false)
                : nr == NULL || any_match(nr, resource, false))
    return false;
  json_t *c = json_object_get(st, "Condition");
  return c == NULL || conditions_hold(c, ctx);
}

enum iam_decision iam_policy_evaluate(json_t *const *docs, size_t ndocs, const char *action,
                                      const char *resource, const iam_context *ctx)
{
  bool allowed = false;
  for (size_t d = 0; d < ndocs; d++) {
    json_t *sts = json_object_get(docs[d], "Statement");
    size_t n = json_is_array(sts) ? json_array_size(sts) : 1;
    for (size_t i = 0; i < n; i++) {
      json_t *st = json_is_array(sts) ? json_array_get(sts, i) : sts;
      if (!statement_matches(st, action, resource, ctx))
        continue;
      if (strcmp(json_string_value(json_object_get(st, "Effect")), "Deny") == 0)
        return IAM_EXPLICIT_DENY;
      allowed = true;
    }
  }
  return allowed ? IAM_ALLOW : IAM_IMPLICIT_DENY;
}

/* ---- validation ---- */

#define malformed(e, ...) err_set((e), ERR_MALFORMED_POLICY, __VA_ARGS__)

/* A string or a non-empty array of strings. */
static bool strings(json_t *v)
{
  if (json_is_string(v))
    return true;
  if (!json_is_array(v) || json_array_size(v) == 0)
    return false;
  size_t i;
  json_t *x;
  json_array_foreach(v, i, x)
  {
    if (!json_is_string(x))
      return false;
  }
  return true;
}

static bool action_ok(const char *a)
{
  if (strcmp(a, "*") == 0)
    return true;
  const char *colon = strchr(a, ':');
  if (colon == NULL || colon == a || colon[1] == '\0')
    return false;
  for (const char *c = a; c < colon; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '-'))
      return false;
  return true;
}

static int check_actions(json_t *v, const char *member, err *e)
{
  if (!strings(v))
    return malformed(e, "%s must be a string or a non-empty array of strings", member);
  size_t n = json_is_array(v) ? json_array_size(v) : 1;
  for (size_t i = 0; i < n; i++) {
    const char *a = json_string_value(json_is_array(v) ? json_array_get(v, i) : v);
    if (!action_ok(a))
      return err_set(e, ERR_MALFORMED_POLICY, "Actions/Conditions must be prefaced by a "
                                              "vendor, e.g., iamcore, not '%s'", a);
  }
  return 0;
}

static int check_resources(json_t *v, const char *member, err *e)
{
  if (!strings(v))
    return malformed(e, "%s must be a string or a non-empty array of strings", member);
  size_t n = json_is_array(v) ? json_array_size(v) : 1;
  for (size_t i = 0; i < n; i++) {
    const char *r = json_string_value(json_is_array(v) ? json_array_get(v, i) : v);
    if (strcmp(r, "*") != 0 && strncmp(r, "arn:", 4) != 0)
      return err_set(e, ERR_MALFORMED_POLICY, "Resource %s must be in ARN format or \"*\".", r);
  }
  return 0;
}

static int check_condition(json_t *c, err *e)
{
  if (!json_is_object(c))
    return malformed(e, "%s must be an object", "Condition");
  const char *op;
  json_t *keys;
  json_object_foreach(c, op, keys)
  {
    int k = operator_of(op);
    if (k < 0)
      return err_set(e, ERR_MALFORMED_POLICY, "condition operator '%s' is not supported by "
                                              "tarn (StringEquals, StringNotEquals, StringLike, "
                                              "StringNotLike, IpAddress, NotIpAddress, Bool)", op);
    if (!json_is_object(keys) || json_object_size(keys) == 0)
      return malformed(e, "condition '%s' must map keys to values", op);
    const char *key;
    json_t *values;
    json_object_foreach(keys, key, values)
    {
      if (!strings(values))
        return malformed(e, "condition key '%s' must have a string or an array of strings", key);
      if (k == OP_IP || k == OP_NOT_IP) {
        size_t n = json_is_array(values) ? json_array_size(values) : 1;
        for (size_t i = 0; i < n; i++) {
          const char *v =
              json_string_value(json_is_array(values) ? json_array_get(values, i) : values);
          char net[64];
          snprintf(net, sizeof net, "%s", v);
          char *slash = strchr(net, '/');
          if (slash != NULL)
            *slash = '\0';
          unsigned char tmp[16];
          if (inet_pton(AF_INET, net, tmp) != 1 && inet_pton(AF_INET6, net, tmp) != 1)
            return malformed(e, "invalid IP address or range '%s' in the condition", v);
        }
      }
    }
  }
  return 0;
}

static int check_statement(json_t *st, err *e)
{
  if (!json_is_object(st))
    return malformed(e, "%s must be an object", "each Statement");
  const char *k;
  json_t *v;
  json_object_foreach(st, k, v)
  {
    if (strcmp(k, "Principal") == 0 || strcmp(k, "NotPrincipal") == 0)
      return malformed(e, "%s", "Policy document should not specify a principal.");
    if (strcmp(k, "Sid") != 0 && strcmp(k, "Effect") != 0 && strcmp(k, "Action") != 0 &&
        strcmp(k, "NotAction") != 0 && strcmp(k, "Resource") != 0 &&
        strcmp(k, "NotResource") != 0 && strcmp(k, "Condition") != 0)
      return malformed(e, "Syntax errors in policy: unknown element '%s'", k);
  }
  json_t *sid = json_object_get(st, "Sid");
  if (sid != NULL && !json_is_string(sid))
    return malformed(e, "%s must be a string", "Sid");
  const char *effect = json_string_value(json_object_get(st, "Effect"));
  if (effect == NULL)
    return malformed(e, "%s", "Policy statement must contain an Effect.");
  if (strcmp(effect, "Allow") != 0 && strcmp(effect, "Deny") != 0)
    return malformed(e, "Invalid effect: %s", effect);
  json_t *a = json_object_get(st, "Action");
  json_t *na = json_object_get(st, "NotAction");
  if ((a == NULL) == (na == NULL))
    return malformed(e, "%s", "Policy statement must contain exactly one of Action or "
                              "NotAction.");
  int rc = check_actions(a ? a : na, a ? "Action" : "NotAction", e);
  if (rc != 0)
    return rc;
  json_t *r = json_object_get(st, "Resource");
  json_t *nr = json_object_get(st, "NotResource");
  if ((r == NULL) == (nr == NULL))
    return malformed(e, "%s", "Policy statement must contain resources.");
  if ((rc = check_resources(r ? r : nr, r ? "Resource" : "NotResource", e)) != 0)
    return rc;
  json_t *c = json_object_get(st, "Condition");
  return c != NULL ? check_condition(c, e) : 0;
}

int iam_policy_parse(const char *text, size_t len, json_t **out, err *e)
{
  *out = NULL;
  json_error_t je;
  json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (doc == NULL)
    return err_set(e, ERR_MALFORMED_POLICY, "Syntax errors in policy: %s (line %d, column %d)",
                   je.text, je.line, je.column);
  int rc = 0;
  if (!json_is_object(doc)) {
    rc = malformed(e, "%s", "Syntax errors in policy: the document is not a JSON object");
    goto out;
  }
  const char *k;
  json_t *v;
  json_object_foreach(doc, k, v)
  {
    if (strcmp(k, "Version") != 0 && strcmp(k, "Statement") != 0 && strcmp(k, "Id") != 0) {
      rc = malformed(e, "Syntax errors in policy: unknown element '%s'", k);
      goto out;
    }
  }
  json_t *ver = json_object_get(doc, "Version");
  if (ver != NULL && (!json_is_string(ver) || (strcmp(json_string_value(ver), "2012-10-17") != 0 &&
                                               strcmp(json_string_value(ver), "2008-10-17") != 0))) {
    rc = malformed(e, "%s", "The policy must contain a valid version string");
    goto out;
  }
  json_t *sts = json_object_get(doc, "Statement");
  if (sts == NULL || (json_is_array(sts) && json_array_size(sts) == 0)) {
    rc = malformed(e, "%s", "Syntax errors in policy: the policy has no Statement");
    goto out;
  }
  if (json_is_array(sts)) {
    size_t i;
    json_t *st;
    json_array_foreach(sts, i, st)
    {
      if ((rc = check_statement(st, e)) != 0)
        goto out;
    }
  } else if ((rc = check_statement(sts, e)) != 0) {
    goto out;
  }
  *out = doc;
  return 0;
out:
  json_decref(doc);
  return rc;
}
