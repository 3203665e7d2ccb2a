/* catalog/crawler.c -- Glue's crawlers: definitions and state in the
 * catalog's LMDB, crawls on threads of their own that turn a prefix of
 * objects into catalog tables and partitions (crawler.h).
 *
 * How a crawl groups objects (as Glue's crawlers do for S3 targets):
 *   - Objects whose name (or a folder of it) starts with '_' or '.'
 *     (_SUCCESS, .crc, _temporary/) and those matching an Exclusions glob
 *     (relative to the target; '*' within a folder, '**' across) are
 *     skipped, as are empty objects.
 *   - When the target holds objects directly, or all its folders are Hive
 *     folders (k=v), the target is one table named after its last folder;
 *     otherwise every folder right below the target is a table named after
 *     that folder.
 *   - Folders below a table's folder are partitions: "k=v" gives key k,
 *     any other folder partition_N (N its depth), as Glue names them.
 *   - The format of each object comes from its first bytes (Parquet's PAR1,
 *     a JSON object, else CSV), its compression from the name or magic
 *     bytes; the schema from the formats' sniffers (csv_sniff, jsonl_sniff,
 *     the Parquet footer). Schemas merge across objects: columns in order
 *     of first appearance, types widened (int < bigint < double, date <
 *     timestamp, anything else mixed: string). Objects of another format
 *     than the table's first, and objects no sniffer reads, are skipped.
 *
 * Invariants:
 *   (1) Every change of state (READY -> RUNNING -> STOPPING -> READY) is a
 *       catalog commit made under cr->mu, so a reader sees one state and a
 *       restart recovers it (crawlers_open).
 *   (2) A crawl writes only through the catalog's calls (each one commit);
 *       a crawl stopped or failed half-way leaves whole tables behind.
 *   (3) The crawl threads hold no lock while listing, reading or writing.
 *   (4) A crawl acts as its crawler's Role (crawler_options.authorize):
 *       a target or object the role may not read is left out, never read;
 *       a table it may not write is not written (nor its partitions).
 *   (5) On a catalog other nodes share (catalog_shared), a crawl is one
 *       node's: StartCrawler claims the crawler (READY -> RUNNING in one
 *       commit, CATALOG_PUT_CLAIM; the node's identity in "_node"), so two
 *       nodes never run the same crawl; StopCrawler on another node marks
 *       it STOPPING, which the running node reads between objects; a
 *       restart recovers only the crawls of its own node.
 *   (6) A claimed crawl has a lease ("_lease_ms", TARN_CRAWLER_LEASE_SECONDS,
 *       default 300) that its node's lease thread renews every quarter of
 *       it (CATALOG_PUT_RENEW, only while the crawl is still that node's).
 *       A crawl whose lease ran out (its node died and never came back) is
 *       ended by whichever node reads it next: READY, its LastCrawl FAILED
 *       with a message naming the node (CATALOG_PUT_EXPIRE, which checks
 *       the lease again inside the commit). A node that finds its crawl
 *       taken stops it and writes nothing more (finish: CATALOG_PUT_OWNED).
 */
#include "catalog/crawler.h"

#include "base/arena.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/pg.h"
#include "base/text.h"
#include "formats/codec.h"
#include "formats/csv.h"
#include "formats/jsonl.h"
#include "formats/parquet.h"
#include "store/store.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct run {
  struct run *next;
  char *name;
  atomic_bool stop;
  atomic_bool lost;   /* another node ended it (6): nothing more is written */
  crawlers *cr;
  json_t *def;        /* the crawler's document at start */
  double start;
} run;

typedef struct change {
  struct change *next;
  char *bucket;
  char *key;
  uint64_t size;
} change;

struct crawlers {
  catalog *cat;
  store *st;
  int (*authorize)(void *ctx, const char *role_arn, const char *action, const char *resource,
                   err *e);           /* crawler_options.authorize, or NULL */
  void *authorize_ctx;
  char *node;         /* crawler_options.node, or NULL */
  pthread_mutex_t mu;
  pthread_cond_t idle;
  run *runs;          /* crawls in flight */
  /* event mode: changes waiting for the event thread */
  pthread_mutex_t qmu;
  pthread_cond_t qcond;
  change *head, *tail;
  size_t pending;
  bool qstop;
  bool qthread;
  pthread_t events;
  /* shared catalog: the lease thread (6) */
  int64_t lease_ms;
  pthread_cond_t lcond;
  bool lstop;
  bool lthread;
  pthread_t leases;
};

static double now_s(void)
{
  return (double)time_now_ms() / 1000.0;
}

static int not_found(const char *name, err *e)
{
  return err_set(e, ERR_ENTITY_NOT_FOUND, "Crawler entry with name %s does not exist", name);
}

/* (6): a crawl of another node whose lease ran out ends here; *doc is
 * then the stored document as it is now. */
static void expire(crawlers *cr, const char *name, json_t **doc)
{
  const char *s = json_string_value(json_object_get(*doc, "State"));
  if (!catalog_shared(cr->cat) || s == NULL || strcmp(s, "READY") == 0 ||
      json_integer_value(json_object_get(*doc, "_lease_ms")) >= time_now_ms())
    return;
  const char *owner = json_string_value(json_object_get(*doc, "_node"));
  char msg[ERR_MSG_MAX];
  snprintf(msg, sizeof msg, "The crawl was interrupted: the node running it (%.300s) stopped "
           "renewing its lease of %lld s (it crashed or lost the metadata database)",
           owner != NULL ? owner : "unknown", (long long)(cr->lease_ms / 1000));
  json_t *d = json_deep_copy(*doc);
  json_t *lc = json_pack("{s:s, s:s, s:f, s:s, s:s, s:s}", "Status", "FAILED", "ErrorMessage",
                         msg, "StartTime", now_s(), "LogGroup", "/aws-glue/crawlers",
                         "LogStream", name, "MessagePrefix", name);
  json_object_set_new(d, "LastCrawl", lc);
  json_object_set_new(d, "State", json_string("READY"));
  json_object_set_new(d, "CrawlElapsedTime", json_integer(0));
  json_object_del(d, "_lease_ms");
  err e = {0};
  int rc = catalog_crawler_put(cr->cat, name, d, CATALOG_PUT_EXPIRE, &e);
  if (rc == 0) {
    log_warn("crawler %s: %s", name, msg);
    json_decref(*doc);
    *doc = d;
    return;
  }
  json_decref(d);
  json_t *now = NULL;
  if (catalog_crawler_get(cr->cat, name, &now, &e) == 0) { /* renewed or ended meanwhile */
    json_decref(*doc);
    *doc = now;
  }
}

static int load(crawlers *cr, const char *name, json_t **doc, err *e)
{
  int rc = catalog_crawler_get(cr->cat, name, doc, e);
  if (rc == ERR_ENTITY_NOT_FOUND)
    return not_found(name, e);
  if (rc == 0)
    expire(cr, name, doc);
  return rc;
}

/* ---- definitions ---- */

static int bad(err *e, const char *what, const char *why)
{
  return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' failed to "
                 "satisfy constraint: %s", what, why);
}

static bool one_of(const char *v, const char *const *set)
{
  for (; *set != NULL; set++)
    if (strcmp(v, *set) == 0)
      return true;
  return false;
}

static int check_str(const json_t *in, const char *name, const char *path, size_t max, err *e)
{
  json_t *v = json_object_get(in, name);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return bad(e, path, "Member must be a string");
  if (json_string_length(v) > max)
    return err_set(e, ERR_INVALID_INPUT, "1 validation error detected: Value at '%s' failed to "
                   "satisfy constraint: Member must have length less than or equal to %zu",
                   path, max);
  return 0;
}

/* Checks the members CreateCrawler and UpdateCrawler share and copies them
 * into doc. */
static int apply_def(const json_t *in, json_t *doc, err *e)
{
  static const char *const strs[] = {"Role", "DatabaseName", "Description", "TablePrefix",
                                     "Configuration", "Schedule", "CrawlerSecurityConfiguration",
                                     NULL};
  static const size_t lens[] = {2048, CATALOG_MAX_NAME, CATALOG_MAX_DESCRIPTION, 128, 10000,
                                1024, 128};
  for (int i = 0; strs[i] != NULL; i++) {
    char path[64];
    snprintf(path, sizeof path, "%c%s", tolower((unsigned char)strs[i][0]), strs[i] + 1);
    if (check_str(in, strs[i], path, lens[i], e) != 0)
      return e->code;
  }
  const char *conf = json_string_value(json_object_get(in, "Configuration"));
  if (conf != NULL && conf[0] != 0) {
    json_error_t je;
    json_t *j = json_loads(conf, 0, &je);
    bool ok = json_is_object(j);
    json_decref(j);
    if (!ok)
      return err_set(e, ERR_INVALID_INPUT, "Crawler configuration not valid: %s",
                     j == NULL ? je.text : "not a JSON object");
  }
  json_t *t = json_object_get(in, "Targets");
  if (t != NULL) {
    if (!json_is_object(t))
      return bad(e, "targets", "Member must be a structure");
    json_t *s3 = json_object_get(t, "S3Targets");
    if (s3 != NULL && !json_is_array(s3))
      return bad(e, "targets.s3Targets", "Member must be a list");
    if (json_array_size(s3) > CRAWLER_MAX_TARGETS)
      return err_set(e, ERR_INVALID_INPUT, "A crawler has at most %d S3 targets",
                     CRAWLER_MAX_TARGETS);
    size_t i;
    json_t *tg;
    json_array_foreach(s3, i, tg)
    {
      const char *p = json_string_value(json_object_get(tg, "Path"));
      if (p == NULL || strncmp(p, "s3://", 5) != 0 || p[5] == 0 || p[5] == '/' ||
          strlen(p) > CATALOG_MAX_LOCATION)
        return err_set(e, ERR_INVALID_INPUT, "S3 target path must be s3://bucket/prefix");
      json_t *ex = json_object_get(tg, "Exclusions");
      if (ex != NULL && (!json_is_array(ex) || json_array_size(ex) > CRAWLER_MAX_EXCLUSIONS))
        return err_set(e, ERR_INVALID_INPUT, "Exclusions must be a list of at most %d globs",
                       CRAWLER_MAX_EXCLUSIONS);
      size_t k;
      json_t *g;
      json_array_foreach(ex, k, g) if (!json_is_string(g) || json_string_length(g) > 1024)
        return err_set(e, ERR_INVALID_INPUT, "An exclusion must be a glob of at most 1024 "
                       "characters");
    }
  }
  json_t *scp = json_object_get(in, "SchemaChangePolicy");
  if (scp != NULL) {
    static const char *const ub[] = {"LOG", "UPDATE_IN_DATABASE", NULL};
    static const char *const db[] = {"LOG", "DELETE_FROM_DATABASE", "DEPRECATE_IN_DATABASE",
                                     NULL};
    const char *u = json_string_value(json_object_get(scp, "UpdateBehavior"));
    const char *d = json_string_value(json_object_get(scp, "DeleteBehavior"));
    if (u != NULL && !one_of(u, ub))
      return bad(e, "schemaChangePolicy.updateBehavior",
                 "Member must satisfy enum value set: [LOG, UPDATE_IN_DATABASE]");
    if (d != NULL && !one_of(d, db))
      return bad(e, "schemaChangePolicy.deleteBehavior", "Member must satisfy enum value set: "
                 "[LOG, DELETE_FROM_DATABASE, DEPRECATE_IN_DATABASE]");
  }
  json_t *rp = json_object_get(in, "RecrawlPolicy");
  if (rp != NULL) {
    static const char *const rb[] = {"CRAWL_EVERYTHING", "CRAWL_NEW_FOLDERS_ONLY",
                                     "CRAWL_EVENT_MODE", NULL};
    const char *b = json_string_value(json_object_get(rp, "RecrawlBehavior"));
    if (b != NULL && !one_of(b, rb))
      return bad(e, "recrawlPolicy.recrawlBehavior", "Member must satisfy enum value set: "
                 "[CRAWL_EVERYTHING, CRAWL_NEW_FOLDERS_ONLY, CRAWL_EVENT_MODE]");
  }
  static const char *const copy[] = {"Role", "DatabaseName", "Description", "TablePrefix",
                                     "Configuration", "Targets", "SchemaChangePolicy",
                                     "RecrawlPolicy", "Classifiers", "LineageConfiguration",
                                     "LakeFormationConfiguration", "CrawlerSecurityConfiguration",
                                     NULL};
  for (int i = 0; copy[i] != NULL; i++) {
    json_t *v = json_object_get(in, copy[i]);
    if (v != NULL)
      json_object_set(doc, copy[i], v);
  }
  const char *sched = json_string_value(json_object_get(in, "Schedule"));
  if (sched != NULL)
    json_object_set_new(doc, "Schedule", json_pack("{s:s, s:s}", "ScheduleExpression", sched,
                                                   "State", "SCHEDULED"));
  return 0;
}

int crawler_create(crawlers *cr, const json_t *in, err *e)
{
  const char *name = json_string_value(json_object_get(in, "Name"));
  if (name == NULL)
    return bad(e, "name", "Member must not be null");
  if (json_object_get(in, "Role") == NULL)
    return bad(e, "role", "Member must not be null");
  if (json_object_get(in, "Targets") == NULL)
    return bad(e, "targets", "Member must not be null");
  json_t *doc = json_pack("{s:s, s:s, s:f, s:f, s:i, s:i, s:[], s:{s:s, s:s}, s:{s:s}}",
                          "Name", name, "State", "READY", "CreationTime", now_s(),
                          "LastUpdated", now_s(), "Version", 1, "CrawlElapsedTime", 0,
                          "Classifiers", "SchemaChangePolicy", "UpdateBehavior",
                          "UPDATE_IN_DATABASE", "DeleteBehavior", "DEPRECATE_IN_DATABASE",
                          "RecrawlPolicy", "RecrawlBehavior", "CRAWL_EVERYTHING");
  int rc = apply_def(in, doc, e);
  if (rc == 0) {
    pthread_mutex_lock(&cr->mu);
    rc = catalog_crawler_put(cr->cat, name, doc, CATALOG_PUT_CREATE, e);
    pthread_mutex_unlock(&cr->mu);
  }
  json_decref(doc);
  return rc;
}

static json_t *public_doc(json_t *doc)
{
  json_object_del(doc, "_metrics");
  json_object_del(doc, "_node");
  json_object_del(doc, "_lease_ms");
  return doc;
}

int crawler_get(crawlers *cr, const char *name, json_t **out, err *e)
{
  int rc = load(cr, name, out, e);
  if (rc == 0)
    public_doc(*out);
  return rc;
}

static int busy(const json_t *doc, const char *name, err *e)
{
  const char *s = json_string_value(json_object_get(doc, "State"));
  if (s != NULL && strcmp(s, "READY") != 0)
    return err_set(e, ERR_CRAWLER_RUNNING, "Crawler with name %s has already started", name);
  return 0;
}

int crawler_update(crawlers *cr, const json_t *in, err *e)
{
  const char *name = json_string_value(json_object_get(in, "Name"));
  if (name == NULL)
    return bad(e, "name", "Member must not be null");
  pthread_mutex_lock(&cr->mu);
  json_t *doc = NULL;
  int rc = load(cr, name, &doc, e);
  if (rc == 0)
    rc = busy(doc, name, e);
  if (rc == 0)
    rc = apply_def(in, doc, e);
  if (rc == 0) {
    json_object_set_new(doc, "LastUpdated", json_real(now_s()));
    json_object_set_new(doc, "Version",
                        json_integer(json_integer_value(json_object_get(doc, "Version")) + 1));
    rc = catalog_crawler_put(cr->cat, name, doc, CATALOG_PUT_REPLACE, e);
  }
  pthread_mutex_unlock(&cr->mu);
  json_decref(doc);
  return rc;
}

int crawler_delete(crawlers *cr, const char *name, err *e)
{
  pthread_mutex_lock(&cr->mu);
  json_t *doc = NULL;
  int rc = load(cr, name, &doc, e);
  if (rc == 0)
    rc = busy(doc, name, e);
  if (rc == 0) {
    rc = catalog_crawler_delete(cr->cat, name, e);
    if (rc == ERR_ENTITY_NOT_FOUND)
      rc = not_found(name, e);
  }
  pthread_mutex_unlock(&cr->mu);
  json_decref(doc);
  return rc;
}

int crawler_list(crawlers *cr, const char *token, size_t max, bool names_only, json_t **out,
                 char **next, err *e)
{
  json_t *list;
  int rc = catalog_crawler_list(cr->cat, token, max, &list, next, e);
  if (rc != 0)
    return rc;
  size_t i;
  json_t *d;
  if (names_only) {
    json_t *names = json_array();
    json_array_foreach(list, i, d) json_array_append(names, json_object_get(d, "Name"));
    json_decref(list);
    list = names;
  } else {
    for (i = 0; i < json_array_size(list); i++) {
      json_t *doc = json_incref(json_array_get(list, i));
      const char *name = json_string_value(json_object_get(doc, "Name"));
      if (name != NULL)
        expire(cr, name, &doc);
      json_array_set(list, i, public_doc(doc));
      json_decref(doc);
    }
  }
  *out = list;
  return 0;
}

int crawler_metrics(crawlers *cr, const char *name, json_t **out, err *e)
{
  json_t *doc;
  int rc = load(cr, name, &doc, e);
  if (rc != 0)
    return rc;
  json_t *m = json_object_get(doc, "_metrics");
  const char *state = json_string_value(json_object_get(doc, "State"));
  json_t *r = json_pack("{s:s, s:f, s:b}", "CrawlerName", name, "TimeLeftSeconds", 0.0,
                        "StillEstimating", state != NULL && strcmp(state, "READY") != 0);
  static const char *const keys[] = {"LastRuntimeSeconds", "MedianRuntimeSeconds",
                                     "TablesCreated", "TablesUpdated", "TablesDeleted", NULL};
  for (int i = 0; keys[i] != NULL; i++) {
    json_t *v = json_object_get(m, keys[i]);
    json_object_set(r, keys[i], v != NULL ? v : json_integer(0));
  }
  json_decref(doc);
  *out = r;
  return 0;
}

/* ---- grouping objects into tables ---- */

/* Glob of Glue's Exclusions: '**' any run, '*' a run within a folder,
 * '?' one character, everything else itself. */
static bool glob(const char *p, const char *s)
{
  for (; *p != 0; p++, s++) {
    if (p[0] == '*' && p[1] == '*') {
      p += 2;
      if (*p == '/')
        p++;
      for (const char *t = s;; t++) {
        if (glob(p, t))
          return true;
        if (*t == 0)
          return false;
      }
    }
    if (*p == '*') {
      for (const char *t = s;; t++) {
        if (glob(p + 1, t))
          return true;
        if (*t == 0 || *t == '/')
          return false;
      }
    }
    if (*s == 0 || (*p != '?' && *p != *s) || (*p == '?' && *s == '/'))
      return false;
  }
  return *s == 0;
}

typedef struct table {
  char *name;          /* table name (prefix + folder, folded) */
  char *location;      /* s3://bucket/dir/ */
  const char *format;  /* "csv", "json", "parquet"; NULL before the first object */
  codec_kind codec;
  char delim;
  bool header;
  json_t *cols;        /* [{Name, Type}] merged */
  int nkeys;           /* partition folders below the table */
  json_t *keys;        /* [{Name, Type}] */
  json_t *parts;       /* "rel/folders" -> [values] */
  uint64_t objects, bytes, records;
  double recsize;
} table;

/* True once the crawl is to stop: StopCrawler here, or (shared catalog,
 * looked at every 64th call) a StopCrawler of another node (5). */
struct crawl;
static bool stopping(struct crawl *cw);

typedef struct crawl {
  crawlers *cr;
  run *r;
  const char *bucket;
  json_t *tables;      /* name -> index into tabs */
  table *tabs;
  size_t ntabs, cap;
  char *buf;           /* sample buffer, CRAWLER_SAMPLE bytes */
  size_t objects;      /* looked at */
  char *role;          /* the crawler's Role as an ARN (malloc'd), or NULL */
  size_t denied;       /* refusals: targets, objects, tables (the role may not) */
  char first_denial[ERR_MSG_MAX];
  unsigned polls;      /* calls of stopping() */
} crawl;

static bool stopping(crawl *cw)
{
  if (atomic_load(&cw->r->stop))
    return true;
  if (!catalog_shared(cw->cr->cat) || cw->polls++ % 64 != 0)
    return false;
  json_t *doc;
  err e = {0};
  if (catalog_crawler_get(cw->cr->cat, cw->r->name, &doc, &e) == 0) {
    const char *s = json_string_value(json_object_get(doc, "State"));
    if (s != NULL && strcmp(s, "STOPPING") == 0)
      atomic_store(&cw->r->stop, true);
    json_decref(doc);
  }
  return atomic_load(&cw->r->stop);
}

/* A crawler's Role as an ARN (Glue takes a name or an ARN), malloc'd, or
 * NULL without one. */
static char *role_arn(const json_t *def)
{
  const char *role = json_string_value(json_object_get(def, "Role"));
  if (role == NULL || role[0] == '\0')
    return NULL;
  if (strncmp(role, "arn:", 4) == 0)
    return xstrdup(role);
  return xasprintf("arn:aws:iam::" CATALOG_ID ":role/%s", role);
}

/* Whether the crawl's role may do action on resource; a refusal is
 * counted, logged, and the first one kept for LastCrawl. */
static bool may(crawl *cw, const char *action, const char *resource)
{
  crawlers *cr = cw->cr;
  if (cr->authorize == NULL)
    return true;
  err e = {0};
  if (cr->authorize(cr->authorize_ctx, cw->role, action, resource, &e) == 0)
    return true;
  if (cw->denied++ == 0)
    snprintf(cw->first_denial, sizeof cw->first_denial, "%s", e.msg);
  log_warn("crawler %s: refused: %s", cw->r->name, e.msg);
  return false;
}

/* "Sales Data" -> "sales_data" (Glue's table names: lower case, [a-z0-9_]). */
static char *table_name(const char *prefix, const char *p, size_t n)
{
  size_t pl = prefix != NULL ? strlen(prefix) : 0;
  char *o = xmalloc(pl + n + 1);
  memcpy(o, prefix != NULL ? prefix : "", pl);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    o[pl + i] = isalnum(c) ? (char)tolower(c) : '_';
  }
  o[pl + n] = 0;
  if (strlen(o) > CATALOG_MAX_NAME)
    o[CATALOG_MAX_NAME] = 0;
  return o;
}

static table *table_for(crawl *cw, char *name, const char *location)
{
  json_t *ix = json_object_get(cw->tables, name);
  if (ix != NULL) {
    free(name);
    return &cw->tabs[json_integer_value(ix)];
  }
  if (cw->ntabs == cw->cap) {
    cw->cap = cw->cap ? cw->cap * 2 : 8;
    cw->tabs = xrealloc(cw->tabs, cw->cap * sizeof *cw->tabs);
  }
  table *t = &cw->tabs[cw->ntabs];
  memset(t, 0, sizeof *t);
  t->name = name;
  t->location = xstrdup(location);
  t->cols = json_array();
  t->parts = json_object();
  t->nkeys = -1;
  json_object_set_new(cw->tables, name, json_integer((json_int_t)cw->ntabs));
  cw->ntabs++;
  return t;
}

/* ---- types ---- */

static int rank(const char *t)
{
  if (!strcmp(t, "tinyint") || !strcmp(t, "smallint") || !strcmp(t, "int"))
    return 1;
  if (!strcmp(t, "bigint"))
    return 2;
  if (!strcmp(t, "float") || !strcmp(t, "double"))
    return 3;
  return 0;
}

/* The type holding values of both. */
static const char *widen(const char *a, const char *b)
{
  if (strcmp(a, b) == 0)
    return a;
  int ra = rank(a), rb = rank(b);
  if (ra > 0 && rb > 0)
    return ra >= rb ? (ra == 3 ? "double" : a) : (rb == 3 ? "double" : b);
  if ((!strcmp(a, "date") && !strcmp(b, "timestamp")) ||
      (!strcmp(b, "date") && !strcmp(a, "timestamp")))
    return "timestamp";
  return "string";
}

static const char *ft_hive(fmt_type t)
{
  switch (t) {
  case FT_BOOLEAN: return "boolean";
  case FT_BIGINT: return "bigint";
  case FT_DOUBLE: return "double";
  case FT_DATE: return "date";
  case FT_TIMESTAMP: return "timestamp";
  default: return "string";
  }
}

static void merge_col(table *t, const char *name, const char *type)
{
  size_t i;
  json_t *c;
  json_array_foreach(t->cols, i, c)
  {
    if (strcasecmp(json_string_value(json_object_get(c, "Name")), name) == 0) {
      const char *w = widen(json_string_value(json_object_get(c, "Type")), type);
      json_object_set_new(c, "Type", json_string(w));
      return;
    }
  }
  if (json_array_size(t->cols) < CATALOG_MAX_COLUMNS)
    json_array_append_new(t->cols, json_pack("{s:s, s:s}", "Name", name, "Type", type));
}

static const char *pq_hive(const pq_field *f, arena *a)
{
  if (f->nested)
    return "string";
  if (f->node != NULL && f->node->prec > 0) /* DECIMAL, also those wider than 18 digits */
    return arena_sprintf(a, "decimal(%d,%d)", f->node->prec, f->node->scale);
  switch (f->out) {
  case PQO_BOOLEAN: return "boolean";
  case PQO_BIGINT:
    return f->node != NULL && f->node->ptype == 1 /* INT32 */ ? "int" : "bigint";
  case PQO_DOUBLE: return f->node != NULL && f->node->ptype == 4 /* FLOAT */ ? "float" : "double";
  case PQO_DATE: return "date";
  case PQO_TIMESTAMP: return "timestamp";
  case PQO_DECIMAL: return arena_sprintf(a, "decimal(%d,%d)", f->prec, f->scale);
  default: return "string";
  }
}

/* ---- one object ---- */

/* Records of an object of size bytes from the lines of its first got bytes
 * (Glue's recordCount is such an estimate too). */
static uint64_t estimate(size_t lines, bool whole, uint64_t size, size_t got)
{
  if (whole || got == 0)
    return lines;
  return (uint64_t)((double)lines * (double)size / (double)got);
}

/* Reads the object's schema into t (format, columns, estimates). 1 when
 * it was skipped (another format than the table's). */
static int sniff(crawl *cw, table *t, const char *key, uint64_t size, err *e)
{
  store *st = cw->cr->st;
  arena *a = arena_new();
  store_object o;
  int fd = -1;
  int rc = store_object_get(st, cw->bucket, key, a, &o, &fd, e);
  size_t got = 0;
  if (rc == 0)
    rc = store_object_read(&o, fd, 0, cw->buf, CRAWLER_SAMPLE, &got, e);
  if (rc != 0)
    goto out;
  size = o.size;
  const char *fmt;
  codec_kind ck = codec_from_name(key);
  if (ck == CODEC_NONE)
    ck = codec_sniff(cw->buf, got);
  char *plain = NULL;
  const char *p = cw->buf;
  size_t n = got;
  bool whole = got == size;
  if (got >= 4 && memcmp(cw->buf, "PAR1", 4) == 0 && ck == CODEC_NONE) {
    fmt = "parquet";
  } else {
    if (ck != CODEC_NONE) {
      size_t pn = 0;
      if ((rc = codec_decompress_head(ck, cw->buf, got, CRAWLER_SAMPLE, &plain, &pn, e)) != 0)
        goto out;
      p = plain, n = pn;
      whole = whole && pn < CRAWLER_SAMPLE;
    }
    size_t i = 0;
    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
      i = 3;
    while (i < n && isspace((unsigned char)p[i]))
      i++;
    fmt = i < n && p[i] == '{' ? "json" : "csv";
  }
  if (t->format != NULL && (strcmp(t->format, fmt) != 0 || t->codec != ck)) {
    free(plain);
    rc = 1;
    goto out;
  }
  if (!strcmp(fmt, "parquet")) {
    uint8_t tail[8];
    size_t tn = 0;
    uint32_t flen = 0;
    if (size < 12)
      rc = err_set(e, ERR_INVALID, "%s is not a Parquet file", key);
    if (rc == 0)
      rc = store_object_read(&o, fd, size - 8, tail, 8, &tn, e);
    if (rc == 0)
      rc = pq_footer_len(key, size, tail, tn, &flen, e);
    uint8_t *footer = rc == 0 ? xmalloc(flen + 1) : NULL;
    size_t fn = 0;
    if (rc == 0)
      rc = store_object_read(&o, fd, size - 8 - flen, footer, flen, &fn, e);
    pq_file *f = NULL;
    if (rc == 0)
      rc = pq_file_parse(key, size, footer, fn, &f, e);
    free(footer);
    if (rc == 0) {
      for (int i = 0; i < f->nfields; i++)
        merge_col(t, f->fields[i].name, pq_hive(&f->fields[i], a));
      t->records += (uint64_t)f->num_rows;
    }
    pq_file_free(f);
  } else if (!strcmp(fmt, "json")) {
    jsonl_schema js;
    rc = jsonl_sniff(p, n, whole, a, &js, e);
    if (rc == 0) {
      for (size_t i = 0; i < js.ncols; i++)
        merge_col(t, js.names[i], ft_hive(js.types[i]));
      size_t lines = fmt_count_lines(p, n);
      t->records += estimate(lines, whole, size, got);
    }
  } else {
    csv_options opt = {.header = -1};
    csv_schema cs;
    rc = csv_sniff(p, n, whole, &opt, a, &cs, e);
    if (rc == 0) {
      if (t->format == NULL) {
        t->delim = cs.delim;
        t->header = cs.header;
      }
      for (size_t i = 0; i < cs.ncols; i++) {
        const char *nm = cs.header ? cs.names[i] : arena_sprintf(a, "col%zu", i);
        merge_col(t, nm, ft_hive(cs.types[i]));
      }
      size_t lines = fmt_count_lines(p, n);
      if (cs.header && lines > 0)
        lines--;
      t->records += estimate(lines, whole, size, got);
    }
  }
  free(plain);
  if (rc == 0) {
    t->format = fmt;
    t->codec = ck;
    t->objects++;
    t->bytes += size;
  }
out:
  if (fd >= 0)
    close(fd);
  arena_free(a);
  return rc;
}

/* Places one object of the target: its table, its partition. */
static int place(crawl *cw, const char *tname, const char *tloc, const char *rel,
                 const char *key, uint64_t size, err *e)
{
  char *name = table_name(json_string_value(json_object_get(cw->r->def, "TablePrefix")), tname,
                          strlen(tname));
  table *t = table_for(cw, name, tloc);
  /* partition folders of rel */
  int depth = 0;
  for (const char *s = rel; (s = strchr(s, '/')) != NULL; s++)
    depth++;
  if (t->nkeys < 0) {
    t->nkeys = depth;
    t->keys = json_array();
    const char *s = rel;
    for (int k = 0; k < depth; k++) {
      const char *sl = strchr(s, '/');
      const char *eq = memchr(s, '=', (size_t)(sl - s));
      char *kn = eq != NULL ? table_name(NULL, s, (size_t)(eq - s)) : xasprintf("partition_%d", k);
      json_array_append_new(t->keys, json_pack("{s:s, s:s}", "Name", kn, "Type", "string"));
      free(kn);
      s = sl + 1;
    }
  }
  if (depth != t->nkeys)
    return 0; /* Glue leaves objects at another depth out of the table */
  char *arn = xasprintf("arn:aws:s3:::%s/%s", cw->bucket, key);
  bool ok = may(cw, "s3:GetObject", arn);
  free(arn);
  if (!ok)
    return 0;
  int rc = sniff(cw, t, key, size, e);
  if (rc < 0) { /* unreadable, removed meanwhile, not a format tarn reads: left out */
    log_warn("crawler %s: s3://%s/%s left out: %s", cw->r->name, cw->bucket, key, e->msg);
    err_clear(e);
    return 0;
  }
  if (rc != 0)
    return 0;
  if (depth > 0) {
    const char *last = strrchr(rel, '/');
    char *folders = xstrndup(rel, (size_t)(last - rel));
    if (json_object_get(t->parts, folders) == NULL) {
      json_t *vals = json_array();
      const char *s = rel;
      for (int k = 0; k < depth; k++) {
        const char *sl = strchr(s, '/');
        const char *eq = memchr(s, '=', (size_t)(sl - s));
        const char *v = eq != NULL ? eq + 1 : s;
        char *val = catalog_hive_unescape(v, (size_t)(sl - v));
        json_array_append_new(vals, json_string(val));
        free(val);
        s = sl + 1;
      }
      json_object_set_new(t->parts, folders, vals);
    }
    free(folders);
  }
  return 0;
}

static bool skipped(const char *rel, const json_t *exclusions)
{
  if (rel[0] == 0 || rel[strlen(rel) - 1] == '/')
    return true;
  for (const char *s = rel; s != NULL; s = strchr(s, '/')) {
    if (*s == '/')
      s++;
    if (*s == '_' || *s == '.')
      return true;
  }
  size_t i;
  json_t *g;
  json_array_foreach(exclusions, i, g) if (glob(json_string_value(g), rel)) return true;
  return false;
}

typedef struct obj {
  char *key;
  uint64_t size;
} obj;

/* Lists one S3 target and places its objects. */
static int crawl_target(crawl *cw, const json_t *target, err *e)
{
  const char *path = json_string_value(json_object_get(target, "Path")) + 5;
  const char *slash = strchr(path, '/');
  char *bucket = slash != NULL ? xstrndup(path, (size_t)(slash - path)) : xstrdup(path);
  const char *kp = slash != NULL ? slash + 1 : "";
  size_t kl = strlen(kp);
  char *prefix = kl == 0 || kp[kl - 1] == '/' ? xstrdup(kp) : xasprintf("%s/", kp);
  size_t plen = strlen(prefix);
  json_t *excl = json_object_get(target, "Exclusions");
  char *barn = xasprintf("arn:aws:s3:::%s", bucket);
  bool listable = may(cw, "s3:ListBucket", barn);
  free(barn);
  if (!listable) {
    free(prefix);
    free(bucket);
    return 0;
  }
  obj *objs = NULL;
  size_t nobj = 0, cap = 0;
  char *after = NULL;
  int rc = 0;
  for (;;) {
    arena *a = arena_new();
    store_list_params lp = {.prefix = prefix, .after = after, .max_keys = STORE_MAX_LIST_KEYS};
    store_list_result res;
    rc = store_object_list(cw->cr->st, bucket, &lp, a, &res, e);
    if (rc != 0) {
      arena_free(a);
      break;
    }
    for (size_t i = 0; i < res.nobjects; i++) {
      const char *rel = res.objects[i].key + plen;
      if (res.objects[i].size == 0 || skipped(rel, excl))
        continue;
      if (++cw->objects > CRAWLER_MAX_OBJECTS) {
        rc = err_set(e, ERR_RESOURCE_LIMIT, "a crawl looks at most %d objects",
                     CRAWLER_MAX_OBJECTS);
        break;
      }
      if (nobj == cap) {
        cap = cap ? cap * 2 : 64;
        objs = xrealloc(objs, cap * sizeof *objs);
      }
      objs[nobj].key = xstrdup(res.objects[i].key);
      objs[nobj].size = res.objects[i].size;
      nobj++;
    }
    bool more = rc == 0 && res.truncated && res.next_after != NULL;
    free(after);
    after = more ? xstrdup(res.next_after) : NULL;
    arena_free(a);
    if (!more)
      break;
  }
  free(after);
  /* the target is one table when it holds objects or only Hive folders */
  bool one = false;
  bool any_plain_dir = false;
  for (size_t i = 0; i < nobj; i++) {
    const char *rel = objs[i].key + plen;
    const char *sl = strchr(rel, '/');
    if (sl == NULL)
      one = true;
    else if (memchr(rel, '=', (size_t)(sl - rel)) == NULL)
      any_plain_dir = true;
  }
  one = one || !any_plain_dir;
  char *tname;
  if (plen > 0) {
    const char *end = prefix + plen - 1;
    const char *b = end;
    while (b > prefix && b[-1] != '/')
      b--;
    tname = xstrndup(b, (size_t)(end - b));
  } else {
    tname = xstrdup(bucket);
  }
  cw->bucket = bucket;
  for (size_t i = 0; i < nobj && rc == 0; i++) {
    if (stopping(cw))
      break;
    const char *rel = objs[i].key + plen;
    if (one) {
      char *loc = xasprintf("s3://%s/%s", bucket, prefix);
      rc = place(cw, tname, loc, rel, objs[i].key, objs[i].size, e);
      free(loc);
    } else {
      const char *sl = strchr(rel, '/');
      char *folder = xstrndup(rel, (size_t)(sl - rel));
      char *loc = xasprintf("s3://%s/%s%s/", bucket, prefix, folder);
      rc = place(cw, folder, loc, sl + 1, objs[i].key, objs[i].size, e);
      free(loc);
      free(folder);
    }
  }
  for (size_t i = 0; i < nobj; i++)
    free(objs[i].key);
  free(objs);
  free(tname);
  free(prefix);
  cw->bucket = NULL;
  free(bucket);
  return rc;
}

/* ---- writing the tables ---- */

static json_t *table_input(const crawl *cw, const table *t)
{
  char delim[2] = {t->delim != 0 ? t->delim : ',', 0};
  json_t *sd = catalog_storage_new(t->format, t->location, json_deep_copy(t->cols),
                                   !strcmp(t->format, "csv") ? delim : NULL);
  const char *comp = t->codec == CODEC_GZIP ? "gzip" : t->codec == CODEC_ZSTD ? "zstd"
                     : t->codec == CODEC_BZIP2 ? "bzip2" : "none";
  json_object_set_new(sd, "Compressed", json_boolean(t->codec != CODEC_NONE));
  json_object_set_new(sd, "NumberOfBuckets", json_integer(-1));
  json_t *pm = json_object();
  json_object_set_new(pm, "classification", json_string(t->format));
  json_object_set_new(pm, "compressionType", json_string(comp));
  json_object_set_new(pm, "typeOfData", json_string("file"));
  json_object_set_new(pm, "UPDATED_BY_CRAWLER",
                      json_string(json_string_value(json_object_get(cw->r->def, "Name"))));
  json_object_set_new(pm, "CrawlerSchemaSerializerVersion", json_string("1.0"));
  json_object_set_new(pm, "CrawlerSchemaDeserializerVersion", json_string("1.0"));
  char num[32];
  snprintf(num, sizeof num, "%llu", (unsigned long long)t->objects);
  json_object_set_new(pm, "objectCount", json_string(num));
  snprintf(num, sizeof num, "%llu", (unsigned long long)t->records);
  json_object_set_new(pm, "recordCount", json_string(num));
  snprintf(num, sizeof num, "%llu", (unsigned long long)t->bytes);
  json_object_set_new(pm, "sizeKey", json_string(num));
  snprintf(num, sizeof num, "%llu",
           (unsigned long long)(t->records > 0 ? t->bytes / t->records : 0));
  json_object_set_new(pm, "averageRecordSize", json_string(num));
  if (!strcmp(t->format, "csv")) {
    json_object_set_new(pm, "delimiter", json_string(delim));
    json_object_set_new(pm, "areColumnsQuoted", json_string("false"));
    json_object_set_new(pm, "columnsOrdered", json_string("true"));
    if (t->header)
      json_object_set_new(pm, "skip.header.line.count", json_string("1"));
  }
  json_object_set(sd, "Parameters", pm);
  return json_pack("{s:s, s:s, s:o, s:o, s:o}", "Name", t->name, "TableType", "EXTERNAL_TABLE",
                   "Parameters", pm, "PartitionKeys", json_deep_copy(t->keys),
                   "StorageDescriptor", sd);
}

typedef struct tally {
  long created, updated, deleted;
} tally;

/* The catalog ARN of table name of db (malloc'd). */
static char *table_arn(const char *db, const char *name)
{
  return xasprintf("arn:aws:glue:us-east-1:" CATALOG_ID ":table/%s/%s", db, name);
}

static int write_table(crawl *cw, const char *db, const table *t, bool log_only, tally *n,
                       err *e)
{
  json_t *old = NULL;
  int rc = catalog_table_get(cw->cr->cat, db, t->name, &old, e);
  /* what the role must be allowed, asked before anything is written */
  char *arn = table_arn(db, t->name);
  bool ok = (rc != 0 || log_only || may(cw, "glue:UpdateTable", arn)) &&
            (rc != ERR_ENTITY_NOT_FOUND || may(cw, "glue:CreateTable", arn)) &&
            (t->nkeys <= 0 || may(cw, "glue:BatchCreatePartition", arn));
  free(arn);
  if (!ok) {
    json_decref(old);
    err_clear(e);
    return 0;
  }
  json_t *in = table_input(cw, t);
  if (rc == 0) {
    json_decref(old);
    if (!log_only) {
      rc = catalog_table_update(cw->cr->cat, db, in, e);
      n->updated += rc == 0;
    }
  } else if (rc == ERR_ENTITY_NOT_FOUND) {
    err_clear(e);
    rc = catalog_table_create(cw->cr->cat, db, in, NULL, e);
    n->created += rc == 0;
  }
  if (rc == 0 && t->nkeys > 0) {
    json_t *sd = json_object_get(in, "StorageDescriptor");
    json_t *inputs = json_array();
    const char *folders;
    json_t *vals;
    const char *base = t->location;
    json_object_foreach(t->parts, folders, vals)
    {
      const char **cv = xmalloc(sizeof(char *) * (size_t)t->nkeys);
      for (int k = 0; k < t->nkeys; k++)
        cv[k] = json_string_value(json_array_get(vals, (size_t)k));
      char *ploc = xasprintf("%s%s/", base, folders);
      json_array_append_new(inputs, catalog_partition_input(cv, (size_t)t->nkeys, ploc, sd));
      free(ploc);
      free(cv);
    }
    size_t added = 0;
    rc = catalog_partitions_add(cw->cr->cat, db, t->name, inputs, true, &added, e);
    json_decref(inputs);
  }
  json_decref(in);
  return rc;
}

/* Tables this crawler made that the crawl did not find. */
static int vanished(crawl *cw, const char *db, const char *behavior, tally *n, err *e)
{
  if (!strcmp(behavior, "LOG"))
    return 0;
  const char *me = json_string_value(json_object_get(cw->r->def, "Name"));
  char *token = NULL;
  int rc = 0;
  do {
    json_t *list;
    char *next = NULL;
    rc = catalog_table_list(cw->cr->cat, db, NULL, token, 0, &list, &next, e);
    free(token);
    token = next;
    if (rc != 0)
      break;
    size_t i;
    json_t *doc;
    json_array_foreach(list, i, doc)
    {
      const char *name = json_string_value(json_object_get(doc, "Name"));
      const char *by = catalog_param(doc, "UPDATED_BY_CRAWLER");
      if (name == NULL || by == NULL || strcmp(by, me) != 0 ||
          json_object_get(cw->tables, name) != NULL)
        continue;
      char *arn = table_arn(db, name);
      bool ok = may(cw, !strcmp(behavior, "DELETE_FROM_DATABASE") ? "glue:DeleteTable"
                                                                 : "glue:UpdateTable", arn);
      free(arn);
      if (!ok)
        continue;
      if (!strcmp(behavior, "DELETE_FROM_DATABASE")) {
        rc = catalog_table_delete(cw->cr->cat, db, name, e);
        n->deleted += rc == 0;
      } else if (catalog_param(doc, "DEPRECATED_BY_CRAWLER") == NULL) {
        json_t *pm = json_object_get(doc, "Parameters");
        json_object_set_new(pm, "DEPRECATED_BY_CRAWLER", json_string("1"));
        rc = catalog_table_update(cw->cr->cat, db, doc, e);
        n->updated += rc == 0;
      }
      if (rc == ERR_ENTITY_NOT_FOUND)
        rc = 0, err_clear(e);
      if (rc != 0)
        break;
    }
    json_decref(list);
  } while (rc == 0 && token != NULL);
  free(token);
  return rc;
}

static int crawl_all(crawl *cw, tally *n, err *e)
{
  const json_t *def = cw->r->def;
  const char *db = json_string_value(json_object_get(def, "DatabaseName"));
  if (db == NULL)
    return err_set(e, ERR_INVALID_INPUT, "the crawler has no DatabaseName");
  json_t *dbdoc;
  int rc = catalog_database_get(cw->cr->cat, db, &dbdoc, e);
  if (rc != 0)
    return rc;
  json_decref(dbdoc);
  json_t *targets = json_object_get(json_object_get(def, "Targets"), "S3Targets");
  size_t i;
  json_t *tg;
  json_array_foreach(targets, i, tg)
  {
    if ((rc = crawl_target(cw, tg, e)) != 0)
      return rc;
  }
  if (stopping(cw))
    return 0;
  size_t unread = cw->denied;
  json_t *scp = json_object_get(def, "SchemaChangePolicy");
  const char *ub = json_string_value(json_object_get(scp, "UpdateBehavior"));
  const char *delb = json_string_value(json_object_get(scp, "DeleteBehavior"));
  for (size_t k = 0; k < cw->ntabs && rc == 0; k++) {
    if (stopping(cw))
      return 0;
    if (cw->tabs[k].format != NULL)
      rc = write_table(cw, db, &cw->tabs[k], ub != NULL && !strcmp(ub, "LOG"), n, e);
  }
  /* what the role could not read is not known to be gone */
  if (rc == 0 && unread == 0)
    rc = vanished(cw, db, delb != NULL ? delb : "DEPRECATE_IN_DATABASE", n, e);
  if (rc == 0 && cw->denied > 0)
    rc = err_set(e, ERR_DENIED, "the crawler's role was refused %zu time%s (left out): %s",
                 cw->denied, cw->denied == 1 ? "" : "s", cw->first_denial);
  return rc;
}

/* ---- running ---- */

static void finish(run *r, int rc, const err *e, const tally *n)
{
  crawlers *cr = r->cr;
  double end = now_s();
  pthread_mutex_lock(&cr->mu);
  json_t *doc = NULL;
  err e2 = {0};
  if (!atomic_load(&r->lost) && catalog_crawler_get(cr->cat, r->name, &doc, &e2) == 0) {
    bool stopped = atomic_load(&r->stop);
    const char *status = rc != 0 ? "FAILED" : stopped ? "CANCELLED" : "SUCCEEDED";
    json_t *lc = json_pack("{s:s, s:f, s:s, s:s, s:s}", "Status", status, "StartTime", r->start,
                           "LogGroup", "/aws-glue/crawlers", "LogStream", r->name,
                           "MessagePrefix", r->name);
    if (rc != 0)
      json_object_set_new(lc, "ErrorMessage", json_string(e->msg[0] ? e->msg : "crawl failed"));
    json_object_set_new(doc, "LastCrawl", lc);
    json_object_set_new(doc, "State", json_string("READY"));
    json_object_set_new(doc, "CrawlElapsedTime", json_integer(0));
    json_t *m = json_object_get(doc, "_metrics");
    if (m == NULL) {
      m = json_object();
      json_object_set_new(doc, "_metrics", m);
    }
    double secs = end - r->start;
    json_object_set_new(m, "LastRuntimeSeconds", json_real(secs));
    json_object_set_new(m, "MedianRuntimeSeconds", json_real(secs));
    json_object_set_new(m, "TablesCreated", json_integer(n->created));
    json_object_set_new(m, "TablesUpdated", json_integer(n->updated));
    json_object_set_new(m, "TablesDeleted", json_integer(n->deleted));
    json_object_del(doc, "_lease_ms");
    /* shared: only while still this node's crawl (6) */
    catalog_crawler_put(cr->cat, r->name, doc,
                        catalog_shared(cr->cat) && cr->node != NULL ? CATALOG_PUT_OWNED
                                                                    : CATALOG_PUT_REPLACE,
                        &e2);
    json_decref(doc);
  }
  run **pp = &cr->runs;
  while (*pp != r)
    pp = &(*pp)->next;
  *pp = r->next;
  pthread_cond_broadcast(&cr->idle);
  pthread_mutex_unlock(&cr->mu);
}

static void *crawl_thread(void *arg)
{
  run *r = arg;
  crawl cw = {.cr = r->cr, .r = r, .tables = json_object(), .buf = xmalloc(CRAWLER_SAMPLE),
              .role = role_arn(r->def)};
  err e = {0};
  tally n = {0};
  int rc = crawl_all(&cw, &n, &e);
  finish(r, rc, &e, &n);
  for (size_t i = 0; i < cw.ntabs; i++) {
    table *t = &cw.tabs[i];
    free(t->name);
    free(t->location);
    json_decref(t->cols);
    json_decref(t->keys);
    json_decref(t->parts);
  }
  free(cw.tabs);
  free(cw.buf);
  free(cw.role);
  json_decref(cw.tables);
  json_decref(r->def);
  free(r->name);
  free(r);
  return NULL;
}

int crawler_start(crawlers *cr, const char *name, err *e)
{
  pthread_mutex_lock(&cr->mu);
  json_t *doc = NULL;
  int rc = load(cr, name, &doc, e);
  if (rc == 0)
    rc = busy(doc, name, e);
  run *r = NULL;
  if (rc == 0) {
    json_object_set_new(doc, "State", json_string("RUNNING"));
    if (cr->node != NULL) {
      json_object_set_new(doc, "_node", json_string(cr->node));
      json_object_set_new(doc, "_lease_ms", json_integer(time_now_ms() + cr->lease_ms));
    }
    rc = catalog_crawler_put(cr->cat, name, doc, CATALOG_PUT_CLAIM, e);
    if (rc == ERR_CONFLICT) /* another node started it meanwhile */
      rc = err_set(e, ERR_CRAWLER_RUNNING, "Crawler with name %s has already started", name);
  }
  if (rc == 0) {
    r = xcalloc(1, sizeof *r);
    r->name = xstrdup(name);
    r->cr = cr;
    r->def = json_incref(doc);
    r->start = now_s();
    atomic_init(&r->stop, false);
    atomic_init(&r->lost, false);
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &at, crawl_thread, r) != 0) {
      json_object_set_new(doc, "State", json_string("READY"));
      catalog_crawler_put(cr->cat, name, doc, CATALOG_PUT_REPLACE, e);
      json_decref(r->def);
      free(r->name);
      free(r);
      rc = err_set(e, ERR_INTERNAL, "cannot start the crawl");
    } else {
      r->next = cr->runs;
      cr->runs = r;
    }
    pthread_attr_destroy(&at);
  }
  pthread_mutex_unlock(&cr->mu);
  json_decref(doc);
  return rc;
}

int crawler_stop(crawlers *cr, const char *name, err *e)
{
  pthread_mutex_lock(&cr->mu);
  json_t *doc = NULL;
  int rc = load(cr, name, &doc, e);
  run *r = cr->runs;
  while (r != NULL && strcmp(r->name, name) != 0)
    r = r->next;
  if (rc == 0) {
    const char *s = json_string_value(json_object_get(doc, "State"));
    if (s != NULL && !strcmp(s, "STOPPING"))
      rc = err_set(e, ERR_CRAWLER_STOPPING, "Crawler with name %s is stopping", name);
    else if (r == NULL && catalog_shared(cr->cat) && s != NULL && !strcmp(s, "RUNNING"))
      ; /* another node's crawl: it reads STOPPING (5) */
    else if (r == NULL)
      rc = err_set(e, ERR_CRAWLER_NOT_RUNNING, "Crawler with name %s isn't running", name);
  }
  if (rc == 0) {
    json_object_set_new(doc, "State", json_string("STOPPING"));
    rc = catalog_crawler_put(cr->cat, name, doc, CATALOG_PUT_REPLACE, e);
    if (rc == 0 && r != NULL)
      atomic_store(&r->stop, true);
  }
  pthread_mutex_unlock(&cr->mu);
  json_decref(doc);
  return rc;
}

/* ---- event mode ---- */

void crawlers_observe(void *ctx, const struct store_change *ch)
{
  crawlers *cr = ctx;
  if (ch->event != STORE_EVENT_PUT && ch->event != STORE_EVENT_POST &&
      ch->event != STORE_EVENT_COPY && ch->event != STORE_EVENT_COMPLETE)
    return;
  pthread_mutex_lock(&cr->qmu);
  if (cr->pending < CRAWLER_MAX_PENDING && !cr->qstop) {
    change *c = xmalloc(sizeof *c);
    c->next = NULL;
    c->bucket = xstrdup(ch->bucket);
    c->key = xstrdup(ch->key);
    c->size = ch->size;
    if (cr->tail != NULL)
      cr->tail->next = c;
    else
      cr->head = c;
    cr->tail = c;
    cr->pending++;
    pthread_cond_signal(&cr->qcond);
  }
  pthread_mutex_unlock(&cr->qmu);
}

/* Every crawler's definition, all pages of the listing; those listed
   before a failing page when one fails (the callers retry on their next
   round). */
static json_t *crawler_defs(crawlers *cr)
{
  json_t *all = json_array();
  char *token = NULL;
  err e = {0};
  do {
    json_t *list;
    char *next = NULL;
    if (catalog_crawler_list(cr->cat, token, 0, &list, &next, &e) != 0)
      break;
    free(token);
    token = next;
    json_array_extend(all, list);
    json_decref(list);
  } while (token != NULL);
  free(token);
  return all;
}

/* One created object under one event-mode crawler's targets. */
static int event_object(crawlers *cr, json_t *def, const change *c, err *e)
{
  const char *db = json_string_value(json_object_get(def, "DatabaseName"));
  json_t *targets = json_object_get(json_object_get(def, "Targets"), "S3Targets");
  size_t i;
  json_t *tg;
  int rc = 0;
  json_array_foreach(targets, i, tg)
  {
    const char *path = json_string_value(json_object_get(tg, "Path")) + 5;
    const char *slash = strchr(path, '/');
    size_t bl = slash != NULL ? (size_t)(slash - path) : strlen(path);
    if (db == NULL || c->size == 0 || strlen(c->bucket) != bl || memcmp(c->bucket, path, bl) != 0)
      continue;
    const char *kp = slash != NULL ? slash + 1 : "";
    size_t kl = strlen(kp);
    char *prefix = kl == 0 || kp[kl - 1] == '/' ? xstrdup(kp) : xasprintf("%s/", kp);
    size_t plen = strlen(prefix);
    const char *rel = c->key + plen;
    if (strncmp(c->key, prefix, plen) != 0 || skipped(rel, json_object_get(tg, "Exclusions"))) {
      free(prefix);
      continue;
    }
    run r = {.name = (char *)json_string_value(json_object_get(def, "Name")), .cr = cr,
             .def = def};
    atomic_init(&r.stop, false);
    crawl cw = {.cr = cr, .r = &r, .tables = json_object(), .buf = xmalloc(CRAWLER_SAMPLE),
                .bucket = c->bucket, .role = role_arn(def)};
    /* the table: the target itself when it holds the object directly or
       through Hive folders, or when a table there exists; else the first
       folder (as a full crawl decides from the whole listing) */
    const char *sl = strchr(rel, '/');
    char *tname;
    if (plen > 0) {
      const char *end = prefix + plen - 1;
      const char *b = end;
      while (b > prefix && b[-1] != '/')
        b--;
      tname = xstrndup(b, (size_t)(end - b));
    } else {
      tname = xstrdup(c->bucket);
    }
    char *whole = table_name(json_string_value(json_object_get(def, "TablePrefix")), tname,
                             strlen(tname));
    json_t *old = NULL;
    bool one = sl == NULL || memchr(rel, '=', (size_t)(sl - rel)) != NULL ||
               catalog_table_get(cr->cat, db, whole, &old, e) == 0;
    json_decref(old);
    old = NULL;
    err_clear(e);
    free(whole);
    char *loc;
    if (one) {
      loc = xasprintf("s3://%s/%s", c->bucket, prefix);
      rc = place(&cw, tname, loc, rel, c->key, c->size, e);
    } else {
      char *folder = xstrndup(rel, (size_t)(sl - rel));
      loc = xasprintf("s3://%s/%s%s/", c->bucket, prefix, folder);
      rc = place(&cw, folder, loc, sl + 1, c->key, c->size, e);
      free(folder);
    }
    free(loc);
    free(tname);
    table *t = cw.ntabs > 0 ? &cw.tabs[0] : NULL;
    if (rc == 0 && t != NULL && t->format != NULL) {
      int g = catalog_table_get(cr->cat, db, t->name, &old, e);
      bool fits = true;
      if (g == 0) {
        /* widen the table's columns with the object's; counts grow */
        json_t *cols = json_deep_copy(json_object_get(json_object_get(old, "StorageDescriptor"),
                                                      "Columns"));
        json_t *mine = t->cols;
        t->cols = json_is_array(cols) ? cols : json_array();
        if (!json_is_array(cols))
          json_decref(cols);
        size_t k;
        json_t *col;
        json_array_foreach(mine, k, col)
          merge_col(t, json_string_value(json_object_get(col, "Name")),
                    json_string_value(json_object_get(col, "Type")));
        json_decref(mine);
        const char *cls = catalog_param(old, "classification");
        fits = json_array_size(json_object_get(old, "PartitionKeys")) == (size_t)t->nkeys &&
               (cls == NULL || strcmp(cls, t->format) == 0);
        const char *pv;
        if ((pv = catalog_param(old, "objectCount")) != NULL)
          t->objects += strtoull(pv, NULL, 10);
        if ((pv = catalog_param(old, "recordCount")) != NULL)
          t->records += strtoull(pv, NULL, 10);
        if ((pv = catalog_param(old, "sizeKey")) != NULL)
          t->bytes += strtoull(pv, NULL, 10);
        if (fits) { /* the table's key names and types stay */
          json_decref(t->keys);
          json_t *ok = json_object_get(old, "PartitionKeys");
          t->keys = json_is_array(ok) ? json_incref(ok) : json_array();
        }
        json_decref(old);
      } else if (g != ERR_ENTITY_NOT_FOUND) {
        rc = g;
      }
      err_clear(e);
      json_t *scp = json_object_get(def, "SchemaChangePolicy");
      const char *ub = json_string_value(json_object_get(scp, "UpdateBehavior"));
      tally n = {0};
      if (rc == 0 && fits)
        rc = write_table(&cw, db, t, ub != NULL && !strcmp(ub, "LOG"), &n, e);
    }
    for (size_t k = 0; k < cw.ntabs; k++) {
      table *x = &cw.tabs[k];
      free(x->name);
      free(x->location);
      json_decref(x->cols);
      json_decref(x->keys);
      json_decref(x->parts);
    }
    free(cw.tabs);
    free(cw.buf);
    free(cw.role);
    json_decref(cw.tables);
    free(prefix);
    if (rc != 0)
      break;
  }
  return rc;
}

static bool event_mode(const json_t *def)
{
  const char *b = json_string_value(
      json_object_get(json_object_get(def, "RecrawlPolicy"), "RecrawlBehavior"));
  return b != NULL && strcmp(b, "CRAWL_EVENT_MODE") == 0;
}

static void *event_thread(void *arg)
{
  crawlers *cr = arg;
  for (;;) {
    pthread_mutex_lock(&cr->qmu);
    while (cr->head == NULL && !cr->qstop)
      pthread_cond_wait(&cr->qcond, &cr->qmu);
    if (cr->qstop) {
      pthread_mutex_unlock(&cr->qmu);
      break;
    }
    change *batch = cr->head;
    cr->head = cr->tail = NULL;
    cr->pending = 0;
    pthread_mutex_unlock(&cr->qmu);
    /* the event-mode crawlers, once per batch */
    json_t *defs = json_array();
    json_t *all = crawler_defs(cr);
    err e = {0};
    size_t k;
    json_t *def;
    json_array_foreach(all, k, def) if (event_mode(def)) json_array_append(defs, def);
    json_decref(all);
    while (batch != NULL) {
      change *c = batch;
      batch = c->next;
      size_t i;
      json_t *d;
      json_array_foreach(defs, i, d)
      {
        err_clear(&e);
        if (event_object(cr, d, c, &e) != 0)
          log_warn("crawler %s: %s/%s not taken into the catalog: %s",
                   json_string_value(json_object_get(d, "Name")), c->bucket, c->key, e.msg);
      }
      free(c->bucket);
      free(c->key);
      free(c);
    }
    json_decref(defs);
  }
  return NULL;
}

/* ---- leases (6) ---- */

static void *lease_thread(void *arg)
{
  crawlers *cr = arg;
  pthread_mutex_lock(&cr->mu);
  while (!cr->lstop) {
    int64_t now = time_now_ms();
    for (run *r = cr->runs; r != NULL; r = r->next) {
      json_t *d = json_pack("{s:s, s:I}", "_node", cr->node, "_lease_ms",
                            (json_int_t)(now + cr->lease_ms));
      err e = {0};
      int rc = catalog_crawler_put(cr->cat, r->name, d, CATALOG_PUT_RENEW, &e);
      json_decref(d);
      if (rc == ERR_CONFLICT || rc == ERR_ENTITY_NOT_FOUND) { /* ended by another node */
        log_warn("crawler %s: the crawl is no longer this node's; stopping it", r->name);
        atomic_store(&r->lost, true);
        atomic_store(&r->stop, true);
      } else if (rc != 0) {
        log_warn("crawler %s: cannot renew the crawl's lease: %s", r->name, e.msg);
      }
    }
    pthread_mutex_unlock(&cr->mu);
    /* other nodes' crawls whose lease ran out */
    json_t *all = crawler_defs(cr);
    for (size_t i = 0; i < json_array_size(all); i++) {
      json_t *doc = json_incref(json_array_get(all, i));
      const char *name = json_string_value(json_object_get(doc, "Name"));
      if (name != NULL)
        expire(cr, name, &doc);
      json_decref(doc);
    }
    json_decref(all);
    pthread_mutex_lock(&cr->mu);
    if (cr->lstop)
      break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wait_ms = cr->lease_ms / 4;
    ts.tv_sec += (time_t)(wait_ms / 1000);
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&cr->lcond, &cr->mu, &ts);
  }
  pthread_mutex_unlock(&cr->mu);
  return NULL;
}

/* ---- open, close ---- */

int crawlers_open(const crawler_options *o, crawlers **out, err *e)
{
  catalog *c = o->cat;
  crawlers *cr = xcalloc(1, sizeof *cr);
  cr->cat = c;
  cr->st = o->st;
  cr->authorize = o->authorize;
  cr->authorize_ctx = o->authorize_ctx;
  cr->node = o->node != NULL ? xstrdup(o->node) : NULL;
  pthread_mutex_init(&cr->mu, NULL);
  pthread_cond_init(&cr->idle, NULL);
  pthread_mutex_init(&cr->qmu, NULL);
  pthread_cond_init(&cr->qcond, NULL);
  pthread_cond_init(&cr->lcond, NULL);
  cr->lease_ms = pg_lease_ms("TARN_CRAWLER_LEASE_SECONDS", 300);
  char *token = NULL;
  int rc = 0;
  do {
    json_t *list;
    char *next = NULL;
    rc = catalog_crawler_list(c, token, 0, &list, &next, e);
    free(token);
    token = next;
    if (rc != 0)
      break;
    size_t i;
    json_t *doc;
    json_array_foreach(list, i, doc)
    {
      const char *s = json_string_value(json_object_get(doc, "State"));
      if (s == NULL || !strcmp(s, "READY"))
        continue;
      const char *owner = json_string_value(json_object_get(doc, "_node"));
      if (catalog_shared(c) && (owner == NULL || o->node == NULL || strcmp(owner, o->node) != 0))
        continue; /* another node's crawl, maybe running (5) */
      json_t *lc = json_pack("{s:s, s:s, s:f}", "Status", "FAILED", "ErrorMessage",
                             "The crawl was interrupted: the server stopped while it ran",
                             "StartTime", now_s());
      json_object_set_new(doc, "LastCrawl", lc);
      json_object_set_new(doc, "State", json_string("READY"));
      const char *name = json_string_value(json_object_get(doc, "Name"));
      if (name != NULL &&
          (rc = catalog_crawler_put(c, name, doc, CATALOG_PUT_REPLACE, e)) != 0)
        break;
    }
    json_decref(list);
  } while (rc == 0 && token != NULL);
  free(token);
  if (rc == 0 && pthread_create(&cr->events, NULL, event_thread, cr) != 0)
    rc = err_set(e, ERR_INTERNAL, "cannot start the crawlers' event thread");
  else if (rc == 0)
    cr->qthread = true;
  if (rc == 0 && catalog_shared(c) && cr->node != NULL) {
    if (pthread_create(&cr->leases, NULL, lease_thread, cr) != 0)
      rc = err_set(e, ERR_INTERNAL, "cannot start the crawlers' lease thread");
    else
      cr->lthread = true;
  }
  if (rc != 0) {
    crawlers_close(cr);
    return rc;
  }
  *out = cr;
  return 0;
}

crawlers *crawlers_close(crawlers *cr)
{
  if (cr == NULL)
    return NULL;
  pthread_mutex_lock(&cr->mu);
  for (run *r = cr->runs; r != NULL; r = r->next)
    atomic_store(&r->stop, true);
  while (cr->runs != NULL)
    pthread_cond_wait(&cr->idle, &cr->mu);
  cr->lstop = true;
  pthread_cond_signal(&cr->lcond);
  pthread_mutex_unlock(&cr->mu);
  if (cr->lthread)
    pthread_join(cr->leases, NULL);
  pthread_mutex_lock(&cr->qmu);
  cr->qstop = true;
  pthread_cond_signal(&cr->qcond);
  pthread_mutex_unlock(&cr->qmu);
  if (cr->qthread)
    pthread_join(cr->events, NULL);
  while (cr->head != NULL) {
    change *c = cr->head;
    cr->head = c->next;
    free(c->bucket);
    free(c->key);
    free(c);
  }
  pthread_mutex_destroy(&cr->qmu);
  pthread_cond_destroy(&cr->qcond);
  pthread_mutex_destroy(&cr->mu);
  pthread_cond_destroy(&cr->idle);
  pthread_cond_destroy(&cr->lcond);
  free(cr->node);
  free(cr);
  return NULL;
}
