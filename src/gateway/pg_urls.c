/* gateway/pg_urls.c -- function URL configurations in PostgreSQL, shared
 * by several tarn nodes (`tarn server --metadata postgres://...`): the
 * other side of gateway.c's "urls" LMDB database.
 *
 * Why: a function is shared by the nodes (fn/pg_registry.c), so is its
 * URL: created on one node, it is served by every node under the same id
 * (the path /_tarn/urls/URL_ID/ or the host URL_ID.lambda-url.localhost),
 * and deleted on one, no node serves it any more.
 *
 * Table (created by gateway_share):
 *   tarn_gateway_urls  url id -> the configuration (gateway.c's document),
 *                      with its function and qualifier ('' for none),
 *                      unique together
 *
 * Invariants:
 *   (1) Nothing is kept in memory: every call, and every request to a URL,
 *       reads the table, so what one node wrote is what the next call on
 *       any node sees (one primary-key read per request).
 *   (2) One configuration per function and qualifier, by the table's
 *       unique key: two nodes creating it at once give one a conflict.
 *   (3) The number of configurations is checked in the INSERT itself.
 *
 * Start reading at gateway__pg_url_insert().
 */
#include "gateway/internal.h"

#include "base/mem.h"
#include "base/pg.h"

#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS tarn_gateway_urls ("
    "  id text COLLATE \"C\" PRIMARY KEY,"
    "  function text COLLATE \"C\" NOT NULL,"
    "  qualifier text COLLATE \"C\" NOT NULL,"
    "  doc text NOT NULL,"
    "  UNIQUE (function, qualifier));";

int gateway__pg_urls_open(pg_pool *pg, err *e)
{
  return pg_pool_schema(pg, "tarn_gateway_urls", SCHEMA, e);
}

static const char *member(const json_t *u, const char *name)
{
  const char *v = json_string_value(json_object_get(u, name));
  return v ? v : "";
}

static char *doc_text(const json_t *u, err *e)
{
  char *text = json_dumps(u, JSON_COMPACT);
  if (text == NULL)
    mem_out_of_memory();
  if (strlen(text) > GATEWAY_MAX_DOCUMENT) {
    free(text);
    err_set(e, ERR_LIMIT_EXCEEDED, "the function URL's configuration is larger than %u bytes",
            GATEWAY_MAX_DOCUMENT);
    return NULL;
  }
  return text;
}

int gateway__pg_url_insert(pg_pool *pg, const json_t *u, err *e)
{
  char *text = doc_text(u, e);
  if (text == NULL)
    return e->code;
  char max[24];
  snprintf(max, sizeof max, "%d", GATEWAY_MAX_URLS);
  const char *p[] = {member(u, "UrlId"), member(u, "FunctionName"), member(u, "Qualifier"), text,
                     max};
  PGresult *r = NULL;
  /* invariant (3) */
  int rc = pg_pool_exec(pg, "INSERT INTO tarn_gateway_urls (id, function, qualifier, doc) "
                            "SELECT $1, $2, $3, $4 WHERE (SELECT count(*) FROM tarn_gateway_urls) "
                            "< $5::bigint",
                        5, p, NULL, NULL, &r, "store the function URL", e);
  free(text);
  if (rc != 0)
    return rc;
  bool added = atoi(PQcmdTuples(r)) == 1;
  PQclear(r);
  return added ? 0 : err_set(e, ERR_LIMIT_EXCEEDED, "at most %d function URLs", GATEWAY_MAX_URLS);
}

/* The docs of a statement's first column, as a JSON array. */
static json_t *docs(PGresult *r)
{
  json_t *out = json_array();
  for (int i = 0; i < PQntuples(r); i++) {
    json_t *d = json_loads(PQgetvalue(r, i, 0), 0, NULL);
    if (d != NULL)
      json_array_append_new(out, d);
  }
  return out;
}

/* The one doc a statement selects into *out (NULL when none). */
static int one_doc(pg_pool *pg, const char *sql, int n, const char *const *p, json_t **out,
                   err *e)
{
  *out = NULL;
  PGresult *r = NULL;
  int rc = pg_pool_exec(pg, sql, n, p, NULL, NULL, &r, "read the function URL", e);
  if (rc != 0)
    return rc;
  json_t *all = docs(r);
  PQclear(r);
  *out = json_incref(json_array_get(all, 0));
  json_decref(all);
  return 0;
}

int gateway__pg_url_find(pg_pool *pg, const char *function, const char *qualifier, json_t **out,
                         err *e)
{
  const char *p[] = {function, qualifier ? qualifier : ""};
  return one_doc(pg, "SELECT doc FROM tarn_gateway_urls WHERE function = $1 AND qualifier = $2",
                 2, p, out, e);
}

int gateway__pg_url_by_id(pg_pool *pg, const char *id, json_t **out, err *e)
{
  const char *p[] = {id};
  return one_doc(pg, "SELECT doc FROM tarn_gateway_urls WHERE id = $1", 1, p, out, e);
}

int gateway__pg_url_list(pg_pool *pg, const char *function, json_t **out, err *e)
{
  const char *p[] = {function};
  PGresult *r = NULL;
  int rc = pg_pool_exec(pg, "SELECT doc FROM tarn_gateway_urls WHERE function = $1 ORDER BY id",
                        1, p, NULL, NULL, &r, "read the function URLs", e);
  if (rc != 0)
    return rc;
  *out = docs(r);
  PQclear(r);
  return 0;
}

int gateway__pg_url_update(pg_pool *pg, const json_t *u, err *e)
{
  char *text = doc_text(u, e);
  if (text == NULL)
    return e->code;
  const char *p[] = {member(u, "UrlId"), text};
  PGresult *r = NULL;
  int rc = pg_pool_exec(pg, "UPDATE tarn_gateway_urls SET doc = $2 WHERE id = $1", 2, p, NULL,
                        NULL, &r, "store the function URL", e);
  free(text);
  if (rc != 0)
    return rc;
  bool there = atoi(PQcmdTuples(r)) == 1;
  PQclear(r);
  return there ? 0 : 1;
}

int gateway__pg_url_delete(pg_pool *pg, const char *function, const char *qualifier, bool all,
                           err *e)
{
  const char *p[] = {function, qualifier ? qualifier : ""};
  PGresult *r = NULL;
  int rc = all ? pg_pool_exec(pg, "DELETE FROM tarn_gateway_urls WHERE function = $1", 1, p, NULL,
                              NULL, &r, "delete the function URLs", e)
               : pg_pool_exec(pg, "DELETE FROM tarn_gateway_urls WHERE function = $1 AND "
                                  "qualifier = $2",
                              2, p, NULL, NULL, &r, "delete the function URL", e);
  if (rc != 0)
    return rc;
  bool any = atoi(PQcmdTuples(r)) > 0;
  PQclear(r);
  return any || all ? 0 : 1;
}
