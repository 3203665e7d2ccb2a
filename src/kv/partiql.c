/* kv/partiql.c -- PartiQL for DynamoDB: ExecuteStatement and
 * BatchExecuteStatement with SELECT, INSERT, UPDATE and DELETE.
 *
 * Why a translator: a statement says nothing the expression language
 * (expr.c) cannot; so it is rewritten into the request of the matching
 * operation (Scan with FilterExpression and ProjectionExpression, PutItem
 * with a not-exists condition, UpdateItem and DeleteItem with the WHERE
 * clause as ConditionExpression), every name and literal turned into #pN
 * and :pN placeholders, and run by that operation.
 *
 * Grammar (keywords case-insensitive; names bare or "quoted"):
 *   SELECT * | path (, path)* FROM "table"["."index] [WHERE cond]
 *   INSERT INTO "table" VALUE {'attr': value, ...}
 *   UPDATE "table" (SET path = value | REMOVE path)+ WHERE cond
 *   DELETE FROM "table" WHERE cond
 *   cond: the condition language with literals ('s', 12, TRUE, NULL,
 *         {..}, [..], <<..>>, ?), IN [..], IS [NOT] MISSING.
 *
 * Invariants:
 *   (1) UPDATE and DELETE name one item: the WHERE clause holds an equality
 *       on every key attribute, ANDed at its top.
 *   (2) Parameters (?) are used in order and all of them.
 *
 * Start reading at kv__execute_statement().
 */
#include "internal.h"

#include "base/hash.h"
#include "base/mem.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PQ_MAX 8192
#define PQ_BATCH_MAX 25

enum ptok { P_EOF, P_WORD, P_QNAME, P_STR, P_NUM, P_PARAM, P_PUNCT, P_BAD };

typedef struct pq {
  const char *s;
  size_t pos;
  enum ptok t;
  char *text;                /* the token's text (unquoted) */
  json_t *params;            /* Parameters */
  size_t nparam;             /* used so far */
  json_t *names, *values;    /* placeholders made */
  buf out;                   /* the expression being written */
  json_t *eqs;               /* top-level equalities: name -> value */
  int rc;
  err *e;
} pq;

static int perr(pq *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr(pq *p, const char *fmt, ...)
{
  if (p->rc != 0)
    return p->rc;
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  p->rc = err_set(p->e, KV_ERR_VALIDATION, "%s", msg);
  return p->rc;
}

static void lex(pq *p)
{
  const char *s = p->s;
  while (isspace((unsigned char)s[p->pos]))
    p->pos++;
  free(p->text);
  p->text = NULL;
  char c = s[p->pos];
  size_t i = p->pos;
  if (c == '\0') {
    p->t = P_EOF;
    p->text = xstrdup("<EOF>");
    return;
  }
  if (c == '"' || c == '\'') {
    buf b;
    buf_init(&b, PQ_MAX);
    for (i++;; i++) {
      if (s[i] == '\0') {
        buf_release(&b);
        p->t = P_BAD;
        p->text = xstrdup("unterminated quote");
        p->pos = i;
        return;
      }
      if (s[i] == c && s[i + 1] == c) {
        buf_append(&b, &c, 1);
        i++;
      } else if (s[i] == c) {
        break;
      } else {
        buf_append(&b, &s[i], 1);
      }
    }
    p->t = c == '"' ? P_QNAME : P_STR;
    p->text = xstrdup(b.data != NULL ? b.data : "");
    buf_release(&b);
    p->pos = i + 1;
    return;
  }
  if (isalpha((unsigned char)c) || c == '_') {
    while (isalnum((unsigned char)s[i]) || s[i] == '_')
      i++;
    p->t = P_WORD;
  } else if (isdigit((unsigned char)c) || (c == '-' && isdigit((unsigned char)s[i + 1]))) {
    i++;
    while (isalnum((unsigned char)s[i]) || s[i] == '.' ||
           ((s[i] == '+' || s[i] == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E')))
      i++;
    p->t = P_NUM;
  } else if (c == '?') {
    i++;
    p->t = P_PARAM;
  } else {
    static const char *const two[] = {"<>", "!=", "<=", ">=", "<<", ">>"};
    p->t = P_PUNCT;
    i++;
    for (int k = 0; k < 6; k++)
      if (s[p->pos] == two[k][0] && s[p->pos + 1] == two[k][1])
        i = p->pos + 2;
  }
  p->text = xstrndup(s + p->pos, i - p->pos);
  p->pos = i;
}

static bool kw(const pq *p, const char *w)
{
  return p->t == P_WORD && strcasecmp(p->text, w) == 0;
}

static bool punct(const pq *p, const char *x)
{
  return p->t == P_PUNCT && strcmp(p->text, x) == 0;
}

static int unexpected(pq *p)
{
  return perr(p, "Statement wasn't well formed, can't be processed: unexpected token '%s'",
              p->text != NULL ? p->text : "");
}

static int expect(pq *p, const char *x)
{
  if (!punct(p, x) && !kw(p, x))
    return unexpected(p);
  lex(p);
  return 0;
}

static void emit(pq *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(pq *p, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  if (buf_vprintf(&p->out, fmt, ap) != 0)
    perr(p, "Statement wasn't well formed, can't be processed: too long");
  va_end(ap);
}

/* A new :pN for v (taken). */
static const char *value_ph(pq *p, json_t *v)
{
  char ph[32];
  snprintf(ph, sizeof ph, ":p%zu", json_object_size(p->values));
  json_object_set_new(p->values, ph, v);
  return json_object_iter_key(json_object_iter_at(p->values, ph));
}

static const char *name_ph(pq *p, const char *name)
{
  const char *k;
  json_t *v;
  json_object_foreach(p->names, k, v) if (strcmp(json_string_value(v), name) == 0) return k;
  char ph[32];
  snprintf(ph, sizeof ph, "#p%zu", json_object_size(p->names));
  json_object_set_new(p->names, ph, json_string(name));
  return json_object_iter_key(json_object_iter_at(p->names, ph));
}

/* ---- literals ---- */

static json_t *literal(pq *p);

static json_t *collection(pq *p, const char *close, bool map)
{
  json_t *items = map ? json_object() : json_array();
  lex(p);
  while (p->rc == 0 && !punct(p, close)) {
    if (map) {
      if (p->t != P_STR && p->t != P_QNAME) {
        unexpected(p);
        break;
      }
      char *key = xstrdup(p->text);
      lex(p);
      expect(p, ":");
      json_t *v = p->rc == 0 ? literal(p) : NULL;
      if (v != NULL)
        json_object_set_new(items, key, v);
      free(key);
    } else {
      json_t *v = literal(p);
      if (v != NULL)
        json_array_append_new(items, v);
    }
    if (p->rc == 0 && punct(p, ","))
      lex(p);
    else if (p->rc == 0 && !punct(p, close))
      unexpected(p);
  }
  if (p->rc != 0) {
    json_decref(items);
    return NULL;
  }
  lex(p);
  return items;
}

static json_t *literal(pq *p)
{
  json_t *v = NULL;
  if (p->t == P_STR) {
    v = json_pack("{ss}", "S", p->text);
  } else if (p->t == P_NUM) {
    v = json_pack("{ss}", "N", p->text);
  } else if (kw(p, "TRUE") || kw(p, "FALSE")) {
    v = json_pack("{sb}", "BOOL", kw(p, "TRUE"));
  } else if (kw(p, "NULL")) {
    v = json_pack("{sb}", "NULL", 1);
  } else if (p->t == P_PARAM) {
    json_t *x = json_array_get(p->params, p->nparam++);
    if (x == NULL) {
      perr(p, "Number of parameters in request and statement don't match.");
      return NULL;
    }
    v = json_deep_copy(x);
  } else if (punct(p, "{")) {
    json_t *m = collection(p, "}", true);
    return m == NULL ? NULL : json_pack("{so}", "M", m);
  } else if (punct(p, "[")) {
    json_t *l = collection(p, "]", false);
    return l == NULL ? NULL : json_pack("{so}", "L", l);
  } else if (punct(p, "<<")) {
    json_t *l = collection(p, ">>", false);
    if (l == NULL)
      return NULL;
    const char *t = kv__av_type(json_array_get(l, 0));
    json_t *set = json_array();
    size_t i;
    json_t *x;
    bool ok = t != NULL && (strcmp(t, "S") == 0 || strcmp(t, "N") == 0 || strcmp(t, "B") == 0);
    json_array_foreach(l, i, x) {
      const char *xt = kv__av_type(x);
      ok = ok && xt != NULL && strcmp(xt, t) == 0;
      if (ok)
        json_array_append(set, json_object_get(x, t));
    }
    json_decref(l);
    if (!ok) {
      json_decref(set);
      perr(p, "Statement wasn't well formed: a set holds strings, numbers or binaries of one type");
      return NULL;
    }
    char st[3] = {t[0], 'S', '\0'};
    return json_pack("{so}", st, set);
  } else {
    unexpected(p);
    return NULL;
  }
  lex(p);
  return v;
}

static bool starts_literal(const pq *p)
{
  return p->t == P_STR || p->t == P_NUM || p->t == P_PARAM || kw(p, "TRUE") || kw(p, "FALSE") ||
         kw(p, "NULL") || punct(p, "{") || punct(p, "[") || punct(p, "<<");
}

/* ---- paths and conditions ---- */

/* Writes a path; *single gets its name when it is one plain attribute. */
static int path(pq *p, const char **single)
{
  if (p->t != P_WORD && p->t != P_QNAME)
    return unexpected(p);
  char *first = xstrdup(p->text);
  emit(p, "%s", name_ph(p, first));
  lex(p);
  bool plain = true;
  while (p->rc == 0 && (punct(p, ".") || punct(p, "["))) {
    plain = false;
    if (punct(p, ".")) {
      lex(p);
      if (p->t != P_WORD && p->t != P_QNAME) {
        free(first);
        return unexpected(p);
      }
      emit(p, ".%s", name_ph(p, p->text));
      lex(p);
    } else {
      lex(p);
      if (p->t != P_NUM) {
        free(first);
        return unexpected(p);
      }
      emit(p, "[%s]", p->text);
      lex(p);
      expect(p, "]");
    }
  }
  if (single != NULL)
    *single = plain ? name_ph(p, first) : NULL;
  free(first);
  return p->rc;
}

static int operand(pq *p, const char **single, json_t **lit)
{
  if (single != NULL)
    *single = NULL;
  if (lit != NULL)
    *lit = NULL;
  if (starts_literal(p)) {
    json_t *v = literal(p);
    if (v == NULL)
      return p->rc;
    if (lit != NULL)
      *lit = json_incref(v);
    emit(p, "%s", value_ph(p, v));
    return p->rc;
  }
  if (kw(p, "size")) {
    lex(p);
    emit(p, "size(");
    expect(p, "(");
    path(p, NULL);
    expect(p, ")");
    emit(p, ")");
    return p->rc;
  }
  return path(p, single);
}

static int cond_or(pq *p, bool top);

static int predicate(pq *p, bool top)
{
  if (punct(p, "(")) {
    lex(p);
    emit(p, "(");
    cond_or(p, false);
    emit(p, ")");
    return expect(p, ")");
  }
  static const char *const fns[] = {"begins_with", "contains", "attribute_type",
                                    "attribute_exists", "attribute_not_exists"};
  for (int i = 0; i < 5; i++) {
    if (!kw(p, fns[i]))
      continue;
    emit(p, "%s(", fns[i]);
    lex(p);
    expect(p, "(");
    path(p, NULL);
    while (p->rc == 0 && punct(p, ",")) {
      lex(p);
      emit(p, ", ");
      operand(p, NULL, NULL);
    }
    expect(p, ")");
    emit(p, ")");
    return p->rc;
  }
  const char *single;
  json_t *lit = NULL;
  size_t mark = p->out.len;
  if (operand(p, &single, NULL) != 0)
    return p->rc;
  if (kw(p, "IS")) {
    lex(p);
    bool neg = kw(p, "NOT");
    if (neg)
      lex(p);
    if (!kw(p, "MISSING"))
      return unexpected(p);
    lex(p);
    /* rewrite "x" as attribute_(not_)exists(x) */
    char *operand_text = xstrdup(p->out.data + mark);
    p->out.len = mark;
    p->out.data[mark] = '\0';
    emit(p, "%s(%s)", neg ? "attribute_exists" : "attribute_not_exists", operand_text);
    free(operand_text);
    return p->rc;
  }
  if (kw(p, "BETWEEN")) {
    lex(p);
    emit(p, " BETWEEN ");
    operand(p, NULL, NULL);
    expect(p, "AND");
    emit(p, " AND ");
    return operand(p, NULL, NULL);
  }
  if (kw(p, "IN")) {
    lex(p);
    emit(p, " IN (");
    expect(p, "[");
    for (bool first = true; p->rc == 0 && !punct(p, "]"); first = false) {
      if (!first) {
        expect(p, ",");
        emit(p, ", ");
      }
      operand(p, NULL, NULL);
    }
    expect(p, "]");
    emit(p, ")");
    return p->rc;
  }
  static const char *const cmps[] = {"=", "<>", "!=", "<", "<=", ">", ">="};
  for (int i = 0; i < 7; i++) {
    if (!punct(p, cmps[i]))
      continue;
    emit(p, " %s ", i == 2 ? "<>" : cmps[i]);
    lex(p);
    operand(p, NULL, &lit);
    if (top && i == 0 && single != NULL && lit != NULL)
      json_object_set(p->eqs, json_string_value(json_object_get(p->names, single)), lit);
    json_decref(lit);
    return p->rc;
  }
  return unexpected(p);
}

static int cond_not(pq *p, bool top)
{
  if (kw(p, "NOT")) {
    lex(p);
    emit(p, "NOT ");
    return cond_not(p, false);
  }
  return predicate(p, top);
}

static int cond_and(pq *p, bool top)
{
  cond_not(p, top);
  while (p->rc == 0 && kw(p, "AND")) {
    lex(p);
    emit(p, " AND ");
    cond_not(p, top);
  }
  return p->rc;
}

static int cond_or(pq *p, bool top)
{
  json_t *eqs_before = json_deep_copy(p->eqs);
  cond_and(p, top);
  bool any_or = false;
  while (p->rc == 0 && kw(p, "OR")) {
    any_or = true;
    lex(p);
    emit(p, " OR ");
    cond_and(p, false);
  }
  if (any_or) { /* equalities under an OR do not pin the item */
    json_object_clear(p->eqs);
    json_object_update(p->eqs, eqs_before);
  }
  json_decref(eqs_before);
  return p->rc;
}

/* ---- statements ---- */

static int table_name(pq *p, char **table, char **index)
{
  if (p->t != P_QNAME && p->t != P_WORD)
    return unexpected(p);
  *table = xstrdup(p->text);
  lex(p);
  if (index != NULL && punct(p, ".")) {
    lex(p);
    if (p->t != P_QNAME && p->t != P_WORD)
      return unexpected(p);
    *index = xstrdup(p->text);
    lex(p);
  }
  return 0;
}

static void add_placeholders(pq *p, json_t *req)
{
  if (json_object_size(p->names) > 0)
    json_object_set(req, "ExpressionAttributeNames", p->names);
  if (json_object_size(p->values) > 0)
    json_object_set(req, "ExpressionAttributeValues", p->values);
}

/* The key of an UPDATE or DELETE from its WHERE equalities (1). */
static int where_key(kv *k, pq *p, const char *table, json_t **key, bool *only_keys, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(k->env, &txn, e);
  if (rc != 0)
    return rc;
  kv_table t;
  rc = kv__table_open(k, txn, table, &t, e);
  mdb_txn_abort(txn);
  if (rc != 0)
    return rc;
  *key = json_object();
  const char *names[2] = {t.base.hash, t.base.range};
  for (int i = 0; i < 2 && rc == 0; i++) {
    if (names[i] == NULL)
      continue;
    json_t *v = json_object_get(p->eqs, names[i]);
    if (v == NULL)
      rc = err_set(e, KV_ERR_VALIDATION, "Where clause does not contain a mandatory equality on "
                   "all key attributes");
    else
      json_object_set(*key, names[i], v);
  }
  *only_keys = json_object_size(p->eqs) == json_object_size(*key);
  kv__table_release(&t);
  if (rc != 0) {
    json_decref(*key);
    *key = NULL;
  }
  return rc;
}

static json_t *next_token(json_t *lek)
{
  char *text = json_dumps(lek, JSON_COMPACT);
  char *b64 = xmalloc(base64_encoded_len(strlen(text)) + 1);
  base64_encode((const uint8_t *)text, strlen(text), b64);
  json_t *s = json_string(b64);
  free(b64);
  free(text);
  return s;
}

static int run_select(kv *k, pq *p, json_t *in, json_t **out, err *e)
{
  buf proj;
  buf_init(&proj, PQ_MAX);
  if (punct(p, "*")) {
    lex(p);
  } else {
    for (;;) {
      size_t mark = p->out.len;
      path(p, NULL);
      if (p->rc != 0)
        break;
      buf_printf(&proj, "%s%.*s", proj.len ? ", " : "", (int)(p->out.len - mark),
                 p->out.data + mark);
      p->out.len = mark;
      p->out.data[mark] = '\0';
      if (!punct(p, ","))
        break;
      lex(p);
    }
  }
  char *table = NULL, *index = NULL;
  if (p->rc == 0)
    expect(p, "FROM");
  if (p->rc == 0)
    table_name(p, &table, &index);
  if (p->rc == 0 && kw(p, "WHERE")) {
    lex(p);
    cond_or(p, true);
  }
  if (p->rc == 0 && p->t != P_EOF)
    unexpected(p);
  int rc = p->rc;
  if (rc == 0) {
    json_t *req = json_pack("{ss}", "TableName", table);
    if (index != NULL)
      json_object_set_new(req, "IndexName", json_string(index));
    if (p->out.len > 0)
      json_object_set_new(req, "FilterExpression", json_string(p->out.data));
    if (proj.len > 0)
      json_object_set_new(req, "ProjectionExpression", json_string(proj.data));
    add_placeholders(p, req);
    json_t *lim = json_object_get(in, "Limit");
    if (lim != NULL)
      json_object_set(req, "Limit", lim);
    const char *token = kv__in_str(in, "NextToken");
    if (token != NULL) {
      uint8_t raw[8192];
      long n = base64_decode(token, strlen(token), raw, sizeof raw - 1);
      json_t *esk = n > 0 ? json_loadb((const char *)raw, (size_t)n, 0, NULL) : NULL;
      if (esk == NULL)
        rc = err_set(e, KV_ERR_VALIDATION, "Invalid NextToken");
      else
        json_object_set_new(req, "ExclusiveStartKey", esk);
    }
    json_t *res = NULL;
    if (rc == 0)
      rc = kv__scan(k, req, &res, e);
    if (rc == 0) {
      *out = json_pack("{sO}", "Items", json_object_get(res, "Items"));
      json_t *lek = json_object_get(res, "LastEvaluatedKey");
      if (lek != NULL)
        json_object_set_new(*out, "NextToken", next_token(lek));
    }
    json_decref(res);
    json_decref(req);
  }
  free(table);
  free(index);
  buf_release(&proj);
  return rc;
}

static int run_insert(kv *k, pq *p, json_t **out, err *e)
{
  expect(p, "INTO");
  char *table = NULL;
  if (p->rc == 0)
    table_name(p, &table, NULL);
  if (p->rc == 0)
    expect(p, "VALUE");
  json_t *item = NULL;
  if (p->rc == 0 && !punct(p, "{"))
    unexpected(p);
  if (p->rc == 0)
    item = literal(p);
  if (p->rc == 0 && p->t != P_EOF)
    unexpected(p);
  int rc = p->rc;
  MDB_txn *txn = NULL;
  kv_table t;
  memset(&t, 0, sizeof t);
  if (rc == 0)
    rc = lmdb_read_begin(k->env, &txn, e);
  if (rc == 0) {
    rc = kv__table_open(k, txn, table, &t, e);
    mdb_txn_abort(txn);
  }
  if (rc == 0) {
    json_t *req = json_pack("{sssOsss{ss}}", "TableName", table, "Item",
                            json_object_get(item, "M"), "ConditionExpression",
                            "attribute_not_exists(#k)", "ExpressionAttributeNames", "#k",
                            t.base.hash);
    json_t *res = NULL;
    rc = kv__put_item(k, req, &res, e);
    json_decref(res);
    json_decref(req);
    if (rc == KV_ERR_CONDITION)
      rc = err_set(e, KV_ERR_DUPLICATE, "Duplicate primary key exists in table");
    if (rc == 0)
      *out = json_pack("{s[]}", "Items");
  }
  kv__table_release(&t);
  json_decref(item);
  free(table);
  return rc;
}

static int run_update(kv *k, pq *p, json_t *in, json_t **out, err *e)
{
  char *table = NULL;
  table_name(p, &table, NULL);
  buf upd;
  buf_init(&upd, PQ_MAX);
  buf sets, removes;
  buf_init(&sets, PQ_MAX);
  buf_init(&removes, PQ_MAX);
  while (p->rc == 0 && (kw(p, "SET") || kw(p, "REMOVE"))) {
    bool set = kw(p, "SET");
    lex(p);
    size_t mark = p->out.len;
    path(p, NULL);
    if (set) {
      expect(p, "=");
      emit(p, " = ");
      if (p->t == P_WORD && (strcmp(p->text, "list_append") == 0 ||
                             strcmp(p->text, "if_not_exists") == 0)) {
        emit(p, "%s(", p->text);
        lex(p);
        expect(p, "(");
        operand(p, NULL, NULL);
        expect(p, ",");
        emit(p, ", ");
        operand(p, NULL, NULL);
        expect(p, ")");
        emit(p, ")");
      } else {
        operand(p, NULL, NULL);
        if (p->rc == 0 && (punct(p, "+") || punct(p, "-"))) {
          emit(p, " %s ", p->text);
          lex(p);
          operand(p, NULL, NULL);
        }
      }
    }
    if (p->rc != 0)
      break;
    buf *dst = set ? &sets : &removes;
    buf_printf(dst, "%s%.*s", dst->len ? ", " : "", (int)(p->out.len - mark), p->out.data + mark);
    p->out.len = mark;
    p->out.data[mark] = '\0';
    while (p->rc == 0 && punct(p, ",")) {
      /* SET a = 1, b = 2 */
      lex(p);
      mark = p->out.len;
      path(p, NULL);
      if (set) {
        expect(p, "=");
        emit(p, " = ");
        operand(p, NULL, NULL);
        if (p->rc == 0 && (punct(p, "+") || punct(p, "-"))) {
          emit(p, " %s ", p->text);
          lex(p);
          operand(p, NULL, NULL);
        }
      }
      buf_printf(dst, ", %.*s", (int)(p->out.len - mark), p->out.data + mark);
      p->out.len = mark;
      p->out.data[mark] = '\0';
    }
  }
  if (p->rc == 0 && sets.len == 0 && removes.len == 0)
    unexpected(p);
  if (p->rc == 0)
    expect(p, "WHERE");
  if (p->rc == 0)
    cond_or(p, true);
  if (p->rc == 0 && p->t != P_EOF)
    unexpected(p);
  int rc = p->rc;
  json_t *key = NULL;
  bool only_keys;
  if (rc == 0)
    rc = where_key(k, p, table, &key, &only_keys, e);
  if (rc == 0) {
    if (sets.len > 0)
      buf_printf(&upd, "SET %s ", sets.data);
    if (removes.len > 0)
      buf_printf(&upd, "REMOVE %s", removes.data);
    const char *hash_ph = name_ph(p, json_object_iter_key(json_object_iter(key)));
    char *cond = xasprintf("attribute_exists(%s) AND (%s)", hash_ph, p->out.data);
    json_t *req = json_pack("{sssOssss}", "TableName", table, "Key", key, "UpdateExpression",
                            upd.data, "ConditionExpression", cond);
    free(cond);
    add_placeholders(p, req);
    const char *rv = kv__in_str(in, "ReturnValuesOnConditionCheckFailure");
    if (rv != NULL)
      json_object_set_new(req, "ReturnValuesOnConditionCheckFailure", json_string(rv));
    json_t *res = NULL;
    rc = kv__update_item(k, req, &res, e);
    if (rc == 0)
      *out = json_pack("{s[]}", "Items");
    else
      *out = res, res = NULL;
    json_decref(res);
    json_decref(req);
  }
  json_decref(key);
  buf_release(&upd);
  buf_release(&sets);
  buf_release(&removes);
  free(table);
  return rc;
}

static int run_delete(kv *k, pq *p, json_t *in, json_t **out, err *e)
{
  expect(p, "FROM");
  char *table = NULL;
  if (p->rc == 0)
    table_name(p, &table, NULL);
  if (p->rc == 0)
    expect(p, "WHERE");
  if (p->rc == 0)
    cond_or(p, true);
  if (p->rc == 0 && p->t != P_EOF)
    unexpected(p);
  int rc = p->rc;
  json_t *key = NULL;
  bool only_keys = true;
  if (rc == 0)
    rc = where_key(k, p, table, &key, &only_keys, e);
  if (rc == 0) {
    json_t *req = json_pack("{sssO}", "TableName", table, "Key", key);
    if (!only_keys) {
      json_object_set_new(req, "ConditionExpression", json_string(p->out.data));
      add_placeholders(p, req);
    }
    json_t *res = NULL;
    rc = kv__delete_item(k, req, &res, e);
    if (rc == 0)
      *out = json_pack("{s[]}", "Items");
    json_decref(res);
    json_decref(req);
  }
  json_decref(key);
  free(table);
  return rc;
}

static int execute(kv *k, const char *stmt, json_t *params, json_t *in, json_t **out, err *e)
{
  if (stmt == NULL || strlen(stmt) == 0 || strlen(stmt) > PQ_MAX)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value at 'statement' "
                   "failed to satisfy constraint: Member must have length between 1 and %d",
                   PQ_MAX);
  pq p;
  memset(&p, 0, sizeof p);
  p.s = stmt;
  p.e = e;
  p.params = params;
  p.names = json_object();
  p.values = json_object();
  p.eqs = json_object();
  buf_init(&p.out, PQ_MAX);
  lex(&p);
  int rc;
  if (kw(&p, "SELECT")) {
    lex(&p);
    rc = run_select(k, &p, in, out, e);
  } else if (kw(&p, "INSERT")) {
    lex(&p);
    rc = run_insert(k, &p, out, e);
  } else if (kw(&p, "UPDATE")) {
    lex(&p);
    rc = run_update(k, &p, in, out, e);
  } else if (kw(&p, "DELETE")) {
    lex(&p);
    rc = run_delete(k, &p, in, out, e);
  } else {
    rc = unexpected(&p);
  }
  if (rc == 0 && p.nparam != json_array_size(params)) {
    json_decref(*out);
    *out = NULL;
    rc = err_set(e, KV_ERR_VALIDATION, "Number of parameters in request and statement don't "
                 "match.");
  }
  free(p.text);
  buf_release(&p.out);
  json_decref(p.names);
  json_decref(p.values);
  json_decref(p.eqs);
  return rc;
}

int kv_statement_target(const char *stmt, const char **action, char **table, char **index)
{
  *action = NULL;
  *table = *index = NULL;
  if (stmt == NULL || *stmt == '\0' || strlen(stmt) > PQ_MAX)
    return -1;
  err e = {0};
  pq p;
  memset(&p, 0, sizeof p);
  p.s = stmt;
  p.e = &e;
  lex(&p);
  int rc = -1;
  if (kw(&p, "SELECT")) {
    *action = "dynamodb:PartiQLSelect";
    while (p.t != P_EOF && p.t != P_BAD && !kw(&p, "FROM"))
      lex(&p);
    if (kw(&p, "FROM")) {
      lex(&p);
      rc = table_name(&p, table, index);
    }
  } else if (kw(&p, "INSERT")) {
    *action = "dynamodb:PartiQLInsert";
    lex(&p);
    if (expect(&p, "INTO") == 0)
      rc = table_name(&p, table, NULL);
  } else if (kw(&p, "UPDATE")) {
    *action = "dynamodb:PartiQLUpdate";
    lex(&p);
    rc = table_name(&p, table, NULL);
  } else if (kw(&p, "DELETE")) {
    *action = "dynamodb:PartiQLDelete";
    lex(&p);
    if (expect(&p, "FROM") == 0)
      rc = table_name(&p, table, NULL);
  }
  free(p.text);
  if (rc != 0) {
    free(*table);
    free(*index);
    *table = *index = NULL;
    return -1;
  }
  return 0;
}

int kv__execute_statement(kv *k, json_t *in, json_t **out, err *e)
{
  json_t *params = json_object_get(in, "Parameters");
  if (params != NULL && (!json_is_array(params) || json_array_size(params) == 0))
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '[]' at "
                   "'parameters' failed to satisfy constraint: Member must have length greater "
                   "than or equal to 1");
  return execute(k, kv__in_str(in, "Statement"), params, in, out, e);
}

int kv__batch_execute_statement(kv *k, json_t *in, json_t **out, err *e)
{
  json_t *stmts = json_object_get(in, "Statements");
  if (!json_is_array(stmts) || json_array_size(stmts) == 0 ||
      json_array_size(stmts) > PQ_BATCH_MAX)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value at 'statements' "
                   "failed to satisfy constraint: Member must have length between 1 and %d",
                   PQ_BATCH_MAX);
  json_t *responses = json_array();
  size_t i;
  json_t *s;
  json_array_foreach(stmts, i, s) {
    json_t *res = NULL;
    err se = {0};
    int rc = execute(k, kv__in_str(s, "Statement"), json_object_get(s, "Parameters"), s, &res,
                     &se);
    json_t *r = json_object();
    if (rc == 0) {
      json_t *first = json_array_get(json_object_get(res, "Items"), 0);
      if (first != NULL)
        json_object_set(r, "Item", first);
    } else {
      const char *code = rc == KV_ERR_CONDITION ? "ConditionalCheckFailed"
                         : rc == KV_ERR_DUPLICATE ? "DuplicateItem"
                         : rc == KV_ERR_NO_TABLE ? "ResourceNotFound"
                                                 : "ValidationError";
      json_object_set_new(r, "Error", json_pack("{ssss}", "Code", code, "Message", se.msg));
    }
    json_decref(res);
    json_array_append_new(responses, r);
  }
  *out = json_pack("{so}", "Responses", responses);
  return 0;
}
