/* sql/table.c -- tables over objects: globs to object lists, format and
 * schema detection from samples, and access to an object's bytes during
 * a scan. Also the two object sources: the store, and a local folder
 * (tests, benchmarks).
 *
 * Glob rules: '*' matches within one path segment, '**' across segments
 * (also none: 'logs/' '**' '/x.json' matches 'logs/x.json'), '?' one
 * character, '[abc]' a class. A path without wildcards names one object,
 * or when no object has that key, every object below it as a folder.
 * Listings skip folder markers (keys ending in '/') and, as Athena does,
 * objects whose name starts with '_' or '.'.
 *
 * Hive partitions: folders named key=value in an object's key (as in
 * 's3://b/sales/year=2024/month=01/part-0.csv') give columns after the
 * file's own, in the order the keys first appear; an object without a key
 * has NULL there, as has the value __HIVE_DEFAULT_PARTITION__; %XX is
 * decoded. A column's type is what the CSV sniffer gives all its values
 * (year=2024 BIGINT, dt=2024-01-05 DATE, month=01 VARCHAR: leading zeros
 * stay text). A file column of the same name wins. Filters that read
 * partition columns only are evaluated per object before the scan starts
 * (sql__table_prune): the objects they reject are never opened.
 *
 * Invariants:
 *   (1) An object's bytes are mapped (or decompressed) once, by the first
 *       morsel that needs them, and released when its last morsel ends.
 *   (2) Bytes scanned count the stored size of each object once (CSV and
 *       JSON lines; Parquet objects count only what scan_parquet.c reads).
 *
 * Start reading at sql__table_open(). The store as a source is in store_src.c
 * (so tests and tools that read folders do not link the store).
 */
#include "exec.h"

#include "base/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SAMPLE_BYTES (1u << 20)
#define SAMPLE_MORE (256u << 10)
#define SAMPLE_OBJECTS 8

/* ---- globs ---- */

static bool class_match(const char **pp, char c)
{
  const char *p = *pp + 1;
  bool neg = false;
  if (*p == '!' || *p == '^') {
    neg = true;
    p++;
  }
  bool hit = false;
  while (*p && *p != ']') {
    if (p[1] == '-' && p[2] && p[2] != ']') {
      if (c >= p[0] && c <= p[2])
        hit = true;
      p += 3;
    } else {
      if (c == *p)
        hit = true;
      p++;
    }
  }
  *pp = *p ? p + 1 : p;
  return hit != neg;
}

bool sql__glob_match(const char *pat, const char *s)
{
  while (*pat) {
    if (pat[0] == '*' && pat[1] == '*') {
      const char *rest = pat + 2;
      if (*rest == '/') {
        /* zero or more whole segments */
        if (sql__glob_match(rest + 1, s))
          return true;
        for (const char *t = s; *t; t++)
          if (*t == '/' && sql__glob_match(rest + 1, t + 1))
            return true;
        return false;
      }
      for (const char *t = s;; t++) {
        if (sql__glob_match(rest, t))
          return true;
        if (*t == '\0')
          return false;
      }
    }
    if (*pat == '*') {
      const char *rest = pat + 1;
      for (const char *t = s;; t++) {
        if (sql__glob_match(rest, t))
          return true;
        if (*t == '\0' || *t == '/')
          return false;
      }
    }
    if (*s == '\0')
      return false;
    if (*pat == '?') {
      if (*s == '/')
        return false;
      pat++;
      s++;
      continue;
    }
    if (*pat == '[') {
      if (!class_match(&pat, *s))
        return false;
      s++;
      continue;
    }
    if (*pat != *s)
      return false;
    pat++;
    s++;
  }
  return *s == '\0';
}

/* ---- listing ---- */

typedef struct listing {
  qctx *q;
  const char *pattern;   /* NULL: take all (folder) */
  const char *exact;     /* a key without wildcards */
  tobj *objs;
  size_t n;
  size_t cap;
  bool exact_hit;
  const char *bucket;
} listing;

static bool hidden_key(const char *key)
{
  const char *base = strrchr(key, '/');
  base = base ? base + 1 : key;
  return base[0] == '_' || base[0] == '.';
}

static int list_cb(void *arg, const char *key, uint64_t size)
{
  listing *l = arg;
  size_t klen = strlen(key);
  if (klen > 0 && key[klen - 1] == '/')
    return 0;
  if (l->exact != NULL) {
    if (strcmp(key, l->exact) == 0) {
      l->exact_hit = true;
    } else if (l->pattern == NULL) {
      return 0;
    }
  }
  if (l->pattern != NULL && !sql__glob_match(l->pattern, key))
    return 0;
  if (l->pattern != NULL && hidden_key(key))
    return 0;
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 64;
    tobj *no = arena_alloc(l->q->a, sizeof(tobj) * nc);
    if (l->n)
      memcpy(no, l->objs, sizeof(tobj) * l->n);
    l->objs = no;
    l->cap = nc;
  }
  if (l->n >= 1000000)
    return ERR_ENTITY_TOO_LARGE;
  tobj *o = &l->objs[l->n++];
  memset(o, 0, sizeof *o);
  o->bucket = l->bucket;
  o->key = arena_strdup(l->q->a, key);
  o->name = arena_sprintf(l->q->a, "s3://%s/%s", l->bucket, key);
  o->size = size;
  o->codec = codec_from_name(key);
  return 0;
}

/* Hive partitions, below sql__table_open() */
static void part_scan(qctx *q, table *t, char ***names_out, fmt_type **types_out,
                      int *n_out);
static void part_attach(qctx *q, table *t, char **pnames, const fmt_type *ptypes, int np);
static int part_prefilter(qctx *q, table *t, const table_opts *o, char **pnames,
                          fmt_type *ptypes, int np, tobj **full, size_t *nfull);
static int cat_list(qctx *q, const table_opts *o, listing *l, err *e);
static int table_open_cat(qctx *q, const char *path, const table_opts *o, table **out, err *e);
static int table_finish(qctx *q, const char *path, const table_opts *o, listing *lp,
                        table **out, err *e);
static int table_declared(qctx *q, table *t, const table_opts *o, char **pnames,
                          fmt_type *ptypes, int np, table **out, err *e);

/* ---- reading samples ---- */

static int read_head(qctx *q, tobj *o, size_t max, char **out, size_t *len, bool *whole,
                     err *e)
{
  int fd = -1;
  uint64_t size = 0;
  int rc = q->src->open(q->src->ctx, o->bucket, o->key, &fd, &size, e);
  if (rc < 0)
    return rc;
  size_t want = size;
  if (o->codec == CODEC_NONE && want > max)
    want = max;
  if (o->codec != CODEC_NONE && want > (64u << 20))
    want = 64u << 20;
  char *sbuf = xmalloc(want + 1);
  size_t got = 0;
  while (got < want) {
    ssize_t r = pread(fd, sbuf + got, want - got, (off_t)got);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      int en = errno;
      close(fd);
      free(sbuf);
      return err_set(e, ERR_IO, "cannot read '%s': %s", o->name, strerror(en));
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }
  close(fd);
  codec_kind k = o->codec != CODEC_NONE ? o->codec : codec_sniff(sbuf, got);
  if (k != CODEC_NONE) {
    o->codec = k;
    char *d;
    size_t dl;
    rc = codec_decompress_head(k, sbuf, got, max, &d, &dl, e);
    free(sbuf);
    if (rc < 0)
      return err_wrap(e, "cannot read '%s'", o->name);
    *out = d;
    *len = dl;
    *whole = dl < max;
    return 0;
  }
  *out = sbuf;
  *len = got;
  *whole = got == size;
  return 0;
}

static int read_range(qctx *q, tobj *o, uint64_t off, size_t n, char **out, size_t *len,
                      err *e)
{
  int fd = -1;
  uint64_t size = 0;
  int rc = q->src->open(q->src->ctx, o->bucket, o->key, &fd, &size, e);
  if (rc < 0)
    return rc;
  char *sbuf = xmalloc(n + 1);
  ssize_t r = pread(fd, sbuf, n, (off_t)off);
  close(fd);
  if (r < 0) {
    free(sbuf);
    return err_set(e, ERR_IO, "cannot read '%s'", o->name);
  }
  *out = sbuf;
  *len = (size_t)r;
  return 0;
}

static int format_of(const char *key)
{
  char tmp[64];
  const char *k = key;
  size_t n = strlen(k);
  /* drop a compression suffix */
  const char *sfx[] = {".gz", ".gzip", ".zst", ".zstd"};
  for (int i = 0; i < 4; i++) {
    size_t m = strlen(sfx[i]);
    if (n > m && strcmp(k + n - m, sfx[i]) == 0) {
      n -= m;
      break;
    }
  }
  const char *dot = NULL;
  for (size_t i = n; i > 0; i--) {
    if (k[i - 1] == '.') {
      dot = k + i - 1;
      break;
    }
    if (k[i - 1] == '/')
      break;
  }
  if (dot == NULL || (size_t)(k + n - dot) >= sizeof tmp)
    return -1;
  size_t el = (size_t)(k + n - dot);
  memcpy(tmp, dot, el);
  tmp[el] = '\0';
  for (char *c = tmp; *c; c++)
    if (*c >= 'A' && *c <= 'Z')
      *c = (char)(*c + 32);
  if (!strcmp(tmp, ".csv") || !strcmp(tmp, ".tsv") || !strcmp(tmp, ".txt") ||
      !strcmp(tmp, ".psv") || !strcmp(tmp, ".dat"))
    return FMT_CSV;
  if (!strcmp(tmp, ".json") || !strcmp(tmp, ".jsonl") || !strcmp(tmp, ".ndjson"))
    return FMT_JSONL;
  if (!strcmp(tmp, ".parquet") || !strcmp(tmp, ".parq"))
    return FMT_PARQUET;
  return -1;
}

/* A table of Parquet objects: the schema is the first object's footer. */
/* After the file's schema is known (any format): the partition columns
 * join the table; when a file column took the name of a partition key the
 * prefilter used, the filter means the file's column, so every object (the
 * full list) is back. */
static void partitions_finish(qctx *q, table *t, char **pnames, const fmt_type *ptypes, int np,
                              tobj *full, size_t nfull)
{
  part_attach(q, t, pnames, ptypes, np);
  if (full != NULL) {
    bool clash = false;
    for (int c = 0; c < np && c < 64; c++) {
      if (!(t->prune_keys & (1ull << c)))
        continue;
      bool kept = false;
      for (int j = 0; j < t->npart; j++)
        kept = kept || t->names[t->nfile + j] == pnames[c];
      clash = clash || !kept;
    }
    if (clash) {
      t->objs = full;
      t->nobjs = nfull;
      t->pruned = 0;
      for (size_t i = 0; i < nfull; i++)
        pthread_mutex_init(&t->objs[i].mu, NULL);
      part_attach(q, t, pnames, ptypes, np);
    }
  }
  t->prune_keys = 0;
}

static int open_parquet(qctx *q, table *t, tobj *first, const char *path, char **pnames,
                        const fmt_type *ptypes, int np, tobj *full, size_t nfull, table **out,
                        err *e)
{
  if (first->size == 0)
    return err_set(e, ERR_INVALID, "cannot open table '%s': '%s' is empty, not Parquet", path,
                   first->name);
  int rc = sql__pqt_open(q, t, first, e);
  if (rc < 0)
    return err_wrap(e, "cannot open table '%s'", path);
  partitions_finish(q, t, pnames, ptypes, np, full, nfull);
  *out = t;
  return 0;
}

int sql__table_open(qctx *q, const char *path, const table_opts *o, table **out, err *e)
{
  if (o->cat != NULL)
    return table_open_cat(q, path, o, out, e);
  const char *p = path;
  if (strncmp(p, "s3://", 5) == 0)
    p += 5;
  else if (strncmp(p, "s3a://", 6) == 0)
    p += 6;
  else
    return err_set(e, ERR_INVALID,
                   "cannot open table '%s': a table is a path like 's3://bucket/prefix/*.csv'",
                   path);
  const char *slash = strchr(p, '/');
  char *bucket = slash ? arena_strndup(q->a, p, (size_t)(slash - p)) : arena_strdup(q->a, p);
  const char *rest = slash ? slash + 1 : "";
  if (bucket[0] == '\0')
    return err_set(e, ERR_INVALID, "cannot open table '%s': no bucket", path);
  size_t wild = strcspn(rest, "*?[");
  listing l = {.q = q, .bucket = bucket};
  char *prefix = arena_strndup(q->a, rest, wild);
  int rc;
  if (rest[wild] != '\0') {
    l.pattern = rest;
    rc = q->src->list(q->src->ctx, bucket, prefix, list_cb, &l, e);
  } else {
    l.exact = rest;
    rc = q->src->list(q->src->ctx, bucket, rest, list_cb, &l, e);
    if (rc == 0 && !l.exact_hit) {
      /* a folder: everything below it */
      l.n = 0;
      l.exact = NULL;
      size_t rl = strlen(rest);
      char *folder = rl == 0 || rest[rl - 1] == '/' ? arena_strdup(q->a, rest)
                                                    : arena_sprintf(q->a, "%s/", rest);
      l.pattern = arena_sprintf(q->a, "%s**", folder);
      rc = q->src->list(q->src->ctx, bucket, folder, list_cb, &l, e);
    } else if (rc == 0) {
      /* only the exact key */
      size_t k = 0;
      for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.objs[i].key, rest) == 0)
          l.objs[k++] = l.objs[i];
      l.n = k;
    }
  }
  if (rc == ERR_ENTITY_TOO_LARGE)
    return err_set(e, rc, "cannot open table '%s': more than 1,000,000 objects match", path);
  if (rc < 0)
    return err_wrap(e, "cannot open table '%s'", path);
  if (l.n == 0)
    return err_set(e, ERR_INVALID, "cannot open table '%s': no objects match", path);
  return table_finish(q, path, o, &l, out, e);
}

/* A catalog table: its partitions' locations (those the prefilter keeps)
 * or its location are listed, partition values come from the catalog,
 * and the columns are the declared ones (a table without objects is
 * empty, not an error). */
static int table_open_cat(qctx *q, const char *path, const table_opts *o, table **out, err *e)
{
  listing l = {.q = q};
  int rc = cat_list(q, o, &l, e);
  if (rc == ERR_ENTITY_TOO_LARGE)
    return err_set(e, rc, "cannot open table '%s': more than 1,000,000 objects", path);
  if (rc < 0)
    return err_wrap(e, "cannot open table '%s'", path);
  return table_finish(q, path, o, &l, out, e);
}

static int table_finish(qctx *q, const char *path, const table_opts *o, listing *lp,
                        table **out, err *e)
{
  listing l = *lp;
  int rc;
  const table_cat *cat = o->cat;
  table *t = arena_alloc(q->a, sizeof *t);
  t->objs = l.objs;
  t->nobjs = l.n;
  t->display = arena_strdup(q->a, path);
  t->skip_malformed = o->skip_malformed;
  for (size_t i = 0; i < t->nobjs; i++)
    pthread_mutex_init(&t->objs[i].mu, NULL);
  /* register for release before anything can fail */
  if (q->ntables == q->tables_cap) {
    int nc = q->tables_cap ? q->tables_cap * 2 : 8;
    table **nt = arena_alloc(q->a, sizeof(table *) * (size_t)nc);
    if (q->ntables)
      memcpy(nt, q->tables, sizeof(table *) * (size_t)q->ntables);
    q->tables = nt;
    q->tables_cap = nc;
  }
  q->tables[q->ntables++] = t;
  char **pnames = NULL;
  fmt_type *ptypes = NULL;
  int np = 0;
  tobj *full = NULL;
  size_t nfull = 0;
  if (cat != NULL) {
    /* partitions were pruned before listing (cat_list) */
    pnames = cat->pkey_names;
    ptypes = cat->pkey_types;
    np = cat->npkeys;
  } else {
    if (!o->no_partitions)
      part_scan(q, t, &pnames, &ptypes, &np);
    if ((rc = part_prefilter(q, t, o, pnames, ptypes, np, &full, &nfull)) < 0)
      return rc;
  }
  if (cat != NULL && (t->nobjs == 0 || o->format != FMT_PARQUET))
    return table_declared(q, t, o, pnames, ptypes, np, out, e);
  /* the first object with bytes decides the format and the schema */
  tobj *first = &t->objs[0];
  for (size_t i = 0; i < t->nobjs; i++) {
    if (t->objs[i].size > 0) {
      first = &t->objs[i];
      break;
    }
  }
  int fmt = o->format;
  if (fmt < 0)
    fmt = format_of(first->key);
  if (fmt == FMT_PARQUET)
    return open_parquet(q, t, first, path, pnames, ptypes, np, full, nfull, out, e);
  char *sbuf = NULL;
  size_t len = 0;
  bool whole = true;
  if (first->size > 0 && (rc = read_head(q, first, SAMPLE_BYTES, &sbuf, &len, &whole, e)) < 0)
    return rc;
  if (fmt < 0 && sbuf != NULL && sql__pqt_sniff(sbuf, len)) {
    free(sbuf);
    return open_parquet(q, t, first, path, pnames, ptypes, np, full, nfull, out, e);
  }
  if (fmt < 0) {
    size_t i = 0;
    while (i < len && (sbuf[i] == ' ' || sbuf[i] == '\n' || sbuf[i] == '\r' || sbuf[i] == '\t'))
      i++;
    fmt = i < len && sbuf[i] == '{' ? FMT_JSONL : FMT_CSV;
  }
  t->format = fmt;
  if (fmt == FMT_CSV) {
    rc = csv_sniff(sbuf != NULL ? sbuf : "", len, whole, &o->csv, q->a, &t->csv, e);
    if (rc == 0 && o->csv.ncols == 0) {
      /* widen the types with samples from other places */
      fmt_type *types = t->csv.types;
      int samples = 0;
      for (size_t i = 0; i < t->nobjs && samples < SAMPLE_OBJECTS && rc == 0; i++) {
        tobj *ob = &t->objs[i];
        if (ob->size == 0)
          continue;
        if (ob != first) {
          char *b2 = NULL;
          size_t l2 = 0;
          bool w2 = false;
          if (read_head(q, ob, SAMPLE_MORE, &b2, &l2, &w2, e) == 0) {
            /* skip its header row */
            const char *s2 = b2;
            size_t n2 = l2;
            if (t->csv.header) {
              const char *nl = memchr(b2, '\n', l2);
              if (nl != NULL) {
                n2 = l2 - (size_t)(nl + 1 - b2);
                s2 = nl + 1;
              } else {
                n2 = 0;
              }
            }
            csv_sample_types(&t->csv, s2, n2, false, types);
            free(b2);
          }
          samples++;
        }
        if (ob->codec == CODEC_NONE && ob->size > 4 * SAMPLE_MORE) {
          for (int k = 1; k <= 3; k++) {
            uint64_t off = ob->size * (uint64_t)k / 4;
            char *b3 = NULL;
            size_t l3 = 0;
            if (read_range(q, ob, off, SAMPLE_MORE, &b3, &l3, e) == 0) {
              csv_sample_types(&t->csv, b3, l3, true, types);
              free(b3);
            }
          }
        }
      }
      for (size_t c = 0; c < t->csv.ncols; c++)
        if (types[c] == FT_NULL)
          types[c] = FT_VARCHAR;
      err_clear(e);
    }
    t->ncols = (int)t->csv.ncols;
    t->names = t->csv.names;
    t->types = t->csv.types;
  } else {
    rc = jsonl_sniff(sbuf != NULL ? sbuf : "", len, whole, q->a, &t->js, e);
    if (rc < 0) {
      free(sbuf);
      return err_wrap(e, "cannot read '%s'", first->name);
    }
    int samples = 0;
    for (size_t i = 0; i < t->nobjs && samples < SAMPLE_OBJECTS; i++) {
      tobj *ob = &t->objs[i];
      if (ob == first || ob->size == 0)
        continue;
      char *b2;
      size_t l2;
      bool w2;
      if (read_head(q, ob, SAMPLE_MORE, &b2, &l2, &w2, e) == 0) {
        jsonl_sample_types(&t->js, b2, l2 + (w2 ? 0 : 0), false, t->js.types);
        free(b2);
      }
      samples++;
    }
    err_clear(e);
    t->ncols = (int)t->js.ncols;
    t->names = t->js.names;
    t->types = t->js.types;
    t->csv.quote = '"';
    t->csv.escape = '"';
  }
  free(sbuf);
  if (rc < 0)
    return err_wrap(e, "cannot read '%s'", first->name);
  partitions_finish(q, t, pnames, ptypes, np, full, nfull);
  *out = t;
  return 0;
}

/* ---- Hive partitions ---- */

#define PART_MAX_KEYS 32

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static char *part_decode(arena *a, const char *p, size_t n)
{
  char *out = arena_alloc(a, n + 1);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
      out[k++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
      i += 2;
    } else {
      out[k++] = p[i];
    }
  }
  out[k] = '\0';
  return out;
}

/* Finds the key=value folders of every object's key: the names (in the
 * order they first appear) and each object's values as text. */
static void part_scan(qctx *q, table *t, char ***names_out, fmt_type **types_out, int *n_out)
{
  char **names = arena_alloc(q->a, sizeof(char *) * PART_MAX_KEYS);
  int n = 0;
  for (size_t i = 0; i < t->nobjs; i++) {
    tobj *o = &t->objs[i];
    const char *k = o->key;
    const char *last = strrchr(k, '/');
    if (last == NULL)
      continue;
    const char *seg = k;
    while (seg < last) {
      const char *end = memchr(seg, '/', (size_t)(last - seg) + 1);
      const char *eq = memchr(seg, '=', (size_t)(end - seg));
      if (eq != NULL && eq > seg) {
        size_t kl = (size_t)(eq - seg);
        int c = 0;
        while (c < n && (strlen(names[c]) != kl || strncasecmp(names[c], seg, kl) != 0))
          c++;
        if (c == n && n < PART_MAX_KEYS)
          names[n++] = part_decode(q->a, seg, kl);
        if (c < n) {
          if (o->part_text == NULL)
            o->part_text = arena_alloc(q->a, sizeof(char *) * PART_MAX_KEYS);
          const char *v = part_decode(q->a, eq + 1, (size_t)(end - eq - 1));
          o->part_text[c] = strcmp(v, "__HIVE_DEFAULT_PARTITION__") == 0 ? NULL : v;
        }
      }
      seg = end + 1;
    }
  }
  /* types from every listed object, before any filter drops one: a
     filter must not change the type it is bound with */
  fmt_type *types = arena_alloc(q->a, sizeof(fmt_type) * PART_MAX_KEYS);
  for (int c = 0; c < n; c++) {
    fmt_type ft = FT_NULL;
    for (size_t i = 0; i < t->nobjs; i++) {
      const char **pt = t->objs[i].part_text;
      if (pt != NULL && pt[c] != NULL)
        ft = fmt_type_merge(ft, fmt_guess_type(pt[c], strlen(pt[c])));
    }
    types[c] = ft == FT_NULL ? FT_VARCHAR : ft;
  }
  *names_out = names;
  *types_out = types;
  *n_out = n;
}

static value part_value(arena *a, fmt_type ft, const char *txt)
{
  value v = {.null = txt == NULL};
  if (v.null)
    return v;
  size_t n = strlen(txt);
  bool ok = true;
  switch (ft) {
  case FT_BIGINT: ok = fmt_parse_i64(txt, n, &v.i); break;
  case FT_DOUBLE: ok = fmt_parse_f64(txt, n, &v.f); break;
  case FT_BOOLEAN: ok = fmt_parse_bool(txt, n, &v.i); break;
  case FT_DATE: ok = fmt_parse_date(txt, n, &v.i); break;
  case FT_TIMESTAMP: ok = fmt_parse_timestamp(txt, n, &v.i); break;
  default:
    v.s.ptr = arena_strndup(a, txt, n);
    v.s.len = n;
    break;
  }
  if (!ok)
    v.null = true;
  return v;
}

/* After the file's schema is known: appends the partition columns that
 * no file column already names, typed from all their values. */
static void part_attach(qctx *q, table *t, char **pnames, const fmt_type *ptypes, int np)
{
  if (t->npart > 0)
    t->ncols = t->nfile; /* again, after the objects came back */
  t->nfile = t->ncols;
  t->npart = 0;
  if (np == 0)
    return;
  int keep[PART_MAX_KEYS];
  int nk = 0;
  for (int c = 0; c < np; c++) {
    bool clash = false;
    for (int f = 0; f < t->nfile && !clash; f++)
      clash = strcasecmp(t->names[f], pnames[c]) == 0;
    if (!clash)
      keep[nk++] = c;
  }
  if (nk == 0)
    return;
  int nc = t->nfile + nk;
  char **names = arena_alloc(q->a, sizeof(char *) * (size_t)nc);
  fmt_type *types = arena_alloc(q->a, sizeof(fmt_type) * (size_t)nc);
  memcpy(names, t->names, sizeof(char *) * (size_t)t->nfile);
  memcpy(types, t->types, sizeof(fmt_type) * (size_t)t->nfile);
  for (int j = 0; j < nk; j++) {
    names[t->nfile + j] = pnames[keep[j]];
    types[t->nfile + j] = ptypes[keep[j]];
  }
  for (size_t i = 0; i < t->nobjs; i++) {
    tobj *o = &t->objs[i];
    o->part = arena_alloc(q->a, sizeof(value) * (size_t)nk);
    for (int j = 0; j < nk; j++)
      o->part[j] = part_value(q->a, types[t->nfile + j],
                              o->part_text != NULL ? o->part_text[keep[j]] : NULL);
  }
  t->names = names;
  t->types = types;
  t->npart = nk;
  t->ncols = nc;
}

/* Runs o->prefilter with t showing its partition columns only (every key
 * found, typed from its values), before any object is read. Keeps a copy
 * of the full list in *full for part_attach's clash check. */
static int part_prefilter(qctx *q, table *t, const table_opts *o, char **pnames,
                          fmt_type *types, int np, tobj **full, size_t *nfull)
{
  *full = NULL;
  *nfull = 0;
  if (o->prefilter == NULL || np == 0)
    return 0;
  for (size_t i = 0; i < t->nobjs; i++) {
    tobj *ob = &t->objs[i];
    ob->part = arena_alloc(q->a, sizeof(value) * (size_t)np);
    for (int c = 0; c < np; c++)
      ob->part[c] = part_value(q->a, types[c], ob->part_text != NULL ? ob->part_text[c] : NULL);
  }
  *full = arena_alloc(q->a, sizeof(tobj) * t->nobjs);
  memcpy(*full, t->objs, sizeof(tobj) * t->nobjs);
  *nfull = t->nobjs;
  t->nfile = 0;
  t->npart = np;
  t->ncols = np;
  t->names = pnames;
  t->types = types;
  int rc = o->prefilter(o->prefilter_ctx, t);
  if (rc == 0 && t->nobjs == 0) {
    /* nothing matches: one object still gives the schema (read for
       sampling, never scanned: the same filter drops it again) */
    t->objs[0] = (*full)[0];
    pthread_mutex_init(&t->objs[0].mu, NULL);
    t->nobjs = 1;
  }
  t->ncols = 0;
  t->npart = 0;
  t->names = NULL;
  t->types = NULL;
  return rc;
}

static uint8_t part_null_byte = 1;

void sql__table_part_fill(const table *t, const tobj *o, batch *b)
{
  for (int j = 0; j < t->npart; j++) {
    vec *v = &b->cols[t->nfile + j];
    fmt_type ft = t->types[t->nfile + j];
    v->phys = (uint8_t)(ft == FT_DOUBLE ? PHYS_F64 : ft == FT_VARCHAR ? PHYS_STR : PHYS_I64);
    v->is_const = 1;
    v->nulls = o->part[j].null ? &part_null_byte : NULL;
    v->p = (void *)&o->part[j].i;
  }
}

/* a predicate that can decide about a whole object: it reads partition
 * columns only, and gives the same answer each time it is evaluated */
static bool part_pred(const table *t, const bexpr *x)
{
  if (x == NULL)
    return true;
  if (x->kind == BX_COL)
    return x->colno >= t->nfile;
  if (x->kind == BX_SUBQ || x->kind == BX_EXISTS || x->kind == BX_AGG || x->kind == BX_WIN ||
      (x->kind == BX_IN_SET && x->set == NULL))
    return false;
  if (x->kind == BX_FUNC && x->fn != NULL &&
      (strcasecmp(x->fn->name, "random") == 0 || strcasecmp(x->fn->name, "rand") == 0 ||
       strcasecmp(x->fn->name, "uuid") == 0))
    return false;
  for (int i = 0; i < x->nargs; i++)
    if (!part_pred(t, x->args[i]))
      return false;
  return true;
}

static bool same_folder(const char *a, const char *b)
{
  const char *sa = strrchr(a, '/');
  const char *sb = strrchr(b, '/');
  if (sa == NULL || sb == NULL || sa - a != sb - b)
    return false;
  return memcmp(a, b, (size_t)(sa - a)) == 0;
}

int sql__table_prune(qctx *q, table *t, bexpr **preds, int npreds)
{
  if (t->npart == 0 || t->nobjs == 0)
    return 0;
  bexpr **use = arena_alloc(q->a, sizeof(bexpr *) * (size_t)(npreds > 0 ? npreds : 1));
  int nuse = 0;
  for (int k = 0; k < npreds; k++) {
    int lo = -1;
    bool any_col = false;
    const bexpr *stack[256];
    int sp = 0;
    stack[sp++] = preds[k];
    while (sp > 0) {
      const bexpr *x = stack[--sp];
      if (x->kind == BX_COL) {
        any_col = true;
        lo = lo < 0 || x->colno < lo ? x->colno : lo;
      }
      for (int a = 0; a < x->nargs && sp < 255; a++)
        stack[sp++] = x->args[a];
    }
    if (any_col && lo >= t->nfile && part_pred(t, preds[k])) {
      use[nuse++] = preds[k];
      sp = 0;
      stack[sp++] = preds[k];
      while (sp > 0) {
        const bexpr *x = stack[--sp];
        if (x->kind == BX_COL && x->colno - t->nfile < 64)
          t->prune_keys |= 1ull << (x->colno - t->nfile);
        for (int a = 0; a < x->nargs && sp < 255; a++)
          stack[sp++] = x->args[a];
      }
    }
  }
  if (nuse == 0)
    return 0;
  static int64_t zero[2];
  vec *cols = arena_alloc(q->a, sizeof(vec) * (size_t)t->ncols);
  for (int c = 0; c < t->nfile; c++) {
    cols[c].phys = PHYS_I64;
    cols[c].is_const = 1;
    cols[c].nulls = &part_null_byte;
    cols[c].p = zero;
  }
  batch b = {.n = 1, .nsel = 1, .ncols = t->ncols, .cols = cols};
  ectx x;
  sql__ectx_init(&x, q);
  int rc = 0;
  size_t kept = 0;
  bool last = false;
  for (size_t i = 0; i < t->nobjs && rc == 0; i++) {
    tobj *o = &t->objs[i];
    bool keep;
    if (i > 0 && same_folder(o->key, t->objs[i - 1].key)) {
      keep = last;
    } else {
      sql__table_part_fill(t, o, &b);
      keep = true;
      for (int k = 0; k < nuse && keep; k++) {
        sql__ectx_reset(&x);
        vec out;
        if ((rc = sql__expr_eval(&x, use[k], &b, &out)) < 0)
          break;
        keep = !vec_is_null(&out, 0) && out.i[0] != 0;
      }
    }
    last = keep;
    if (keep)
      t->objs[kept++] = *o;
    else
      pthread_mutex_destroy(&o->mu);
  }
  sql__ectx_release(&x);
  if (rc < 0)
    return rc;
  t->pruned += t->nobjs - kept;
  /* the mutexes of kept objects moved: make them anew */
  for (size_t i = 0; i < kept; i++)
    pthread_mutex_init(&t->objs[i].mu, NULL);
  t->nobjs = kept;
  return 0;
}

/* ---- catalog tables ---- */

/* Adds every object below s3://bucket/prefix (a folder) to l, with the
 * partition values part_text. */
/* s3://bucket/prefix -> bucket and the folder "prefix/" ("" for the
 * bucket); false when loc is not an s3:// path. */
static bool s3_folder(qctx *q, const char *loc, char **bucket, char **folder)
{
  const char *p = loc;
  if (strncmp(p, "s3://", 5) == 0)
    p += 5;
  else if (strncmp(p, "s3a://", 6) == 0)
    p += 6;
  else
    return false;
  const char *slash = strchr(p, '/');
  *bucket = slash ? arena_strndup(q->a, p, (size_t)(slash - p)) : arena_strdup(q->a, p);
  const char *rest = slash ? slash + 1 : "";
  size_t rl = strlen(rest);
  *folder = rl == 0 || rest[rl - 1] == '/' ? arena_strdup(q->a, rest)
                                           : arena_sprintf(q->a, "%s/", rest);
  return true;
}

static int cat_list_location(qctx *q, const char *loc, const char **part_text, listing *l,
                             err *e)
{
  char *bucket, *folder;
  if (!s3_folder(q, loc, &bucket, &folder))
    return err_set(e, ERR_INVALID, "location '%s' is not an s3:// path", loc);
  l->bucket = bucket;
  l->pattern = arena_sprintf(q->a, "%s**", folder);
  l->exact = NULL;
  size_t before = l->n;
  int rc = q->src->list(q->src->ctx, l->bucket, folder, list_cb, l, e);
  if (rc == ERR_NO_SUCH_BUCKET)
    err_clear(e), rc = 0; /* a location in a bucket that is gone: no rows */
  for (size_t i = before; i < l->n; i++)
    l->objs[i].part_text = part_text;
  return rc;
}

/* Many partitions below the table's location are one listing of it, not
 * one each (objects go to the partition whose folder holds them; others
 * are dropped); partitions elsewhere are listed on their own. */
#define CAT_ONE_LISTING 8

typedef struct below {
  listing *l;
  const char **prefix;     /* sorted folders of the partitions below */
  const char ***values;
  size_t n;
  size_t at;               /* keys come in order: prefixes before it are done */
} below;

static int below_cb(void *arg, const char *key, uint64_t size)
{
  below *b = arg;
  while (b->at < b->n && strcmp(b->prefix[b->at], key) < 0 &&
         strncmp(key, b->prefix[b->at], strlen(b->prefix[b->at])) != 0)
    b->at++;
  if (b->at == b->n || strncmp(key, b->prefix[b->at], strlen(b->prefix[b->at])) != 0)
    return 0;
  size_t before = b->l->n;
  int rc = list_cb(b->l, key, size);
  if (rc == 0 && b->l->n > before)
    b->l->objs[before].part_text = b->values[b->at];
  return rc;
}

typedef struct pref {
  const char *folder;
  size_t part;
} pref;

static int pref_cmp(const void *a, const void *b)
{
  return strcmp(((const pref *)a)->folder, ((const pref *)b)->folder);
}

static int cat_list_below(qctx *q, const table_cat *cat, const size_t *kept, size_t n,
                          listing *l, err *e)
{
  char *tbucket, *tfolder;
  if (!s3_folder(q, cat->location, &tbucket, &tfolder))
    return err_set(e, ERR_INVALID, "location '%s' is not an s3:// path", cat->location);
  pref *in = arena_alloc(q->a, sizeof(pref) * n);
  size_t nin = 0;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const table_cat_part *cp = &cat->parts[kept[i]];
    char *b, *f;
    if (s3_folder(q, cp->location, &b, &f) && strcmp(b, tbucket) == 0 &&
        strncmp(f, tfolder, strlen(tfolder)) == 0) {
      in[nin].folder = f;
      in[nin].part = kept[i];
      nin++;
    } else {
      rc = cat_list_location(q, cp->location, cp->values, l, e);
    }
  }
  if (rc < 0 || nin == 0)
    return rc;
  qsort(in, nin, sizeof(pref), pref_cmp);
  bool nested = false;
  for (size_t i = 0; i + 1 < nin && !nested; i++)
    nested = strncmp(in[i + 1].folder, in[i].folder, strlen(in[i].folder)) == 0;
  if (nested) { /* one folder inside another: each its own listing */
    for (size_t i = 0; i < nin && rc == 0; i++)
      rc = cat_list_location(q, cat->parts[in[i].part].location, cat->parts[in[i].part].values,
                             l, e);
    return rc;
  }
  below b = {.l = l, .n = nin};
  b.prefix = arena_alloc(q->a, sizeof(char *) * nin);
  b.values = arena_alloc(q->a, sizeof(char **) * nin);
  for (size_t i = 0; i < nin; i++) {
    b.prefix[i] = in[i].folder;
    b.values[i] = cat->parts[in[i].part].values;
  }
  l->bucket = tbucket;
  l->pattern = arena_sprintf(q->a, "%s**", tfolder);
  l->exact = NULL;
  rc = q->src->list(q->src->ctx, tbucket, tfolder, below_cb, &b, e);
  if (rc == ERR_NO_SUCH_BUCKET)
    err_clear(e), rc = 0;
  return rc;
}

static int cat_list(qctx *q, const table_opts *o, listing *l, err *e)
{
  const table_cat *cat = o->cat;
  if (cat->npkeys == 0)
    return cat_list_location(q, cat->location, NULL, l, e);
  /* one pseudo-object per partition, its values as Hive's would be, for
     the prefilter: the partitions it drops are never listed */
  size_t n = cat->nparts;
  table pt;
  memset(&pt, 0, sizeof pt);
  pt.objs = arena_alloc(q->a, sizeof(tobj) * (n > 0 ? n : 1));
  for (size_t i = 0; i < n; i++) {
    tobj *ob = &pt.objs[i];
    memset(ob, 0, sizeof *ob);
    ob->key = arena_sprintf(q->a, "%zu/p", i); /* each its own folder (prune) */
    ob->name = cat->parts[i].location;
    ob->size = i;
    ob->part = arena_alloc(q->a, sizeof(value) * (size_t)cat->npkeys);
    for (int c = 0; c < cat->npkeys; c++)
      ob->part[c] = part_value(q->a, cat->pkey_types[c], cat->parts[i].values[c]);
    pthread_mutex_init(&ob->mu, NULL);
  }
  pt.nobjs = n;
  pt.npart = cat->npkeys;
  pt.ncols = cat->npkeys;
  pt.names = cat->pkey_names;
  pt.types = cat->pkey_types;
  int rc = 0;
  if (o->prefilter != NULL && n > 0)
    rc = o->prefilter(o->prefilter_ctx, &pt);
  for (size_t i = 0; i < pt.nobjs; i++)
    pthread_mutex_destroy(&pt.objs[i].mu);
  size_t *kept = arena_alloc(q->a, sizeof(size_t) * (pt.nobjs + 1));
  for (size_t i = 0; i < pt.nobjs; i++)
    kept[i] = pt.objs[i].size;
  if (rc == 0 && pt.nobjs >= CAT_ONE_LISTING)
    return cat_list_below(q, cat, kept, pt.nobjs, l, e);
  for (size_t i = 0; i < pt.nobjs && rc == 0; i++) {
    const table_cat_part *cp = &cat->parts[kept[i]];
    rc = cat_list_location(q, cp->location, cp->values, l, e);
  }
  return rc;
}

/* Hive's JSON SerDes match keys ignoring case: a declared column takes
 * the spelling of the key that the first object's first lines use (names
 * keep the declared spelling where no key matches). */
static void json_key_case(qctx *q, table *t, char **names, size_t nc)
{
  tobj *first = NULL;
  for (size_t i = 0; i < t->nobjs && first == NULL; i++)
    if (t->objs[i].size > 0)
      first = &t->objs[i];
  if (first == NULL)
    return;
  char *sbuf = NULL;
  size_t len = 0;
  bool whole = false;
  err e;
  err_clear(&e);
  jsonl_schema js;
  if (read_head(q, first, SAMPLE_MORE, &sbuf, &len, &whole, &e) < 0)
    return;
  if (jsonl_sniff(sbuf, len, whole, q->a, &js, &e) == 0) {
    for (size_t i = 0; i < nc; i++) {
      size_t hit = js.ncols;
      for (size_t k = 0; k < js.ncols && hit == js.ncols; k++)
        if (strcasecmp(js.names[k], names[i]) == 0)
          hit = k;
      for (size_t k = hit; k < js.ncols; k++)
        if (strcmp(js.names[k], names[i]) == 0)
          hit = js.ncols; /* the exact spelling is there too: keep it */
      if (hit < js.ncols)
        names[i] = js.names[hit];
    }
  }
  free(sbuf);
}

/* The declared columns of a catalog table (CSV, JSON lines, or any table
 * without objects): nothing is sniffed. */
static int table_declared(qctx *q, table *t, const table_opts *o, char **pnames,
                          fmt_type *ptypes, int np, table **out, err *e)
{
  const table_cat *cat = o->cat;
  t->format = o->format == FMT_JSONL ? FMT_JSONL : FMT_CSV;
  size_t nc = (size_t)cat->ncols;
  char **names = arena_alloc(q->a, sizeof(char *) * (nc > 0 ? nc : 1));
  fmt_type *types = arena_alloc(q->a, sizeof(fmt_type) * (nc > 0 ? nc : 1));
  for (size_t i = 0; i < nc; i++) {
    names[i] = arena_strdup(q->a, cat->names[i]);
    types[i] = cat->types[i];
  }
  if (t->format == FMT_CSV) {
    csv_options co = o->csv;
    co.ncols = nc;
    co.names = (const char **)names;
    co.types = types;
    int rc = csv_sniff("", 0, true, &co, q->a, &t->csv, e);
    if (rc < 0)
      return err_wrap(e, "cannot open table '%s'", t->display);
    t->csv.names = names;
    t->csv.types = types;
    t->csv.lenient = true;
  } else {
    json_key_case(q, t, names, nc);
    t->js.ncols = nc;
    t->js.names = names;
    t->js.types = types;
    t->csv.quote = '"';
    t->csv.escape = '"';
  }
  t->csv.declared = true;
  t->ncols = (int)nc;
  t->names = names;
  t->types = types;
  /* the partition values were given by the catalog: each object has all */
  if (np > 0)
    for (size_t i = 0; i < t->nobjs; i++)
      if (t->objs[i].part_text == NULL)
        t->objs[i].part_text = arena_alloc(q->a, sizeof(char *) * (size_t)np);
  part_attach(q, t, pnames, ptypes, np);
  *out = t;
  return 0;
}

/* ---- object bytes during a scan ---- */

int sql__tobj_acquire(qctx *q, tobj *o, err *e)
{
  pthread_mutex_lock(&o->mu);
  if (o->state == 1) {
    pthread_mutex_unlock(&o->mu);
    return 0;
  }
  if (o->state == 2 || o->state == 3) {
    pthread_mutex_unlock(&o->mu);
    return err_set(e, ERR_IO, "object '%s' is not available", o->name);
  }
  int fd = -1;
  uint64_t size = 0;
  int rc = q->src->open(q->src->ctx, o->bucket, o->key, &fd, &size, e);
  if (rc < 0) {
    o->state = 2;
    pthread_mutex_unlock(&o->mu);
    return rc;
  }
  atomic_fetch_add(&q->bytes_scanned, size);
  atomic_fetch_add(&q->objects_scanned, 1);
  const char *data = "";
  if (size > 0) {
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int en = errno;
      close(fd);
      o->state = 2;
      pthread_mutex_unlock(&o->mu);
      return err_set(e, ERR_IO, "cannot map '%s': %s", o->name, strerror(en));
    }
    data = m;
  }
  codec_kind k = o->codec != CODEC_NONE ? o->codec : codec_sniff(data, size);
  if (k != CODEC_NONE && size > 0) {
    char *d;
    size_t dl;
    int64_t room = (int64_t)q->mem_limit - atomic_load(&q->mem_used);
    if (room < (1 << 20))
      room = 1 << 20;
    rc = codec_decompress(k, data, size, (size_t)room, &d, &dl, e);
    munmap((void *)data, size);
    close(fd);
    if (rc < 0) {
      o->state = 2;
      pthread_mutex_unlock(&o->mu);
      if (rc == ERR_ENTITY_TOO_LARGE)
        return err_set(e, rc, "decompressing '%s' passed the query's memory limit of %llu MB",
                       o->name, (unsigned long long)(q->mem_limit >> 20));
      return err_wrap(e, "cannot read '%s'", o->name);
    }
    o->data = d;
    o->len = dl;
    o->mapped = false;
    o->has_fd = false;
    sql__qctx_mem(q, (int64_t)dl);
  } else {
    o->data = data;
    o->len = size;
    o->mapped = size > 0;
    o->has_fd = size > 0;
    o->fd = fd;
    if (size == 0)
      close(fd);
  }
  o->state = 1;
  pthread_mutex_unlock(&o->mu);
  return 0;
}

static void tobj_unmap(qctx *q, tobj *o)
{
  if (o->state != 1)
    return;
  if (o->has_fd)
    close(o->fd);
  o->has_fd = false;
  if (o->mapped)
    munmap((void *)o->data, o->len);
  else if (o->len > 0) {
    free((void *)o->data);
    sql__qctx_mem(q, -(int64_t)o->len);
  }
  o->data = NULL;
  o->state = 3;
}

void sql__tobj_release(qctx *q, tobj *o)
{
  if (atomic_fetch_sub(&o->ranges_left, 1) == 1) {
    pthread_mutex_lock(&o->mu);
    tobj_unmap(q, o);
    pthread_mutex_unlock(&o->mu);
  }
}

void sql__table_release_all(qctx *q)
{
  for (int i = 0; i < q->ntables; i++) {
    table *t = q->tables[i];
    for (size_t k = 0; k < t->nobjs; k++) {
      tobj_unmap(q, &t->objs[k]);
      pthread_mutex_destroy(&t->objs[k].mu);
    }
  }
}

/* ---- a local folder as the object source ---- */

typedef struct dirsrc {
  char root[4096];
} dirsrc;

typedef struct keyent {
  char *key;
  uint64_t size;
} keyent;

typedef struct keylist {
  keyent *v;
  size_t n;
  size_t cap;
} keylist;

static void walk(const char *base, const char *rel, keylist *kl)
{
  char path[8192];
  snprintf(path, sizeof path, "%s/%s", base, rel);
  DIR *d = opendir(path);
  if (d == NULL)
    return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    char r2[4096];
    snprintf(r2, sizeof r2, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
    char full[8192];
    snprintf(full, sizeof full, "%s/%s", base, r2);
    struct stat stt;
    if (stat(full, &stt) != 0)
      continue;
    if (S_ISDIR(stt.st_mode)) {
      walk(base, r2, kl);
    } else if (S_ISREG(stt.st_mode)) {
      if (kl->n == kl->cap) {
        kl->cap = kl->cap ? kl->cap * 2 : 64;
        kl->v = xrealloc(kl->v, sizeof(keyent) * kl->cap);
      }
      kl->v[kl->n].key = xstrdup(r2);
      kl->v[kl->n].size = (uint64_t)stt.st_size;
      kl->n++;
    }
  }
  closedir(d);
}

static int keycmp(const void *a, const void *b)
{
  return strcmp(((const keyent *)a)->key, ((const keyent *)b)->key);
}

static int dir_list(void *ctx, const char *bucket, const char *prefix, objsrc_list_fn fn,
                    void *arg, err *e)
{
  dirsrc *d = ctx;
  char base[8192];
  snprintf(base, sizeof base, "%s/%s", d->root, bucket);
  struct stat stt;
  if (strchr(bucket, '/') != NULL || strstr(bucket, "..") != NULL || stat(base, &stt) != 0 ||
      !S_ISDIR(stt.st_mode))
    return err_set(e, ERR_NO_SUCH_BUCKET, "no bucket '%s'", bucket);
  keylist kl = {0};
  walk(base, "", &kl);
  qsort(kl.v, kl.n, sizeof(keyent), keycmp);
  int rc = 0;
  size_t pl = strlen(prefix);
  for (size_t i = 0; i < kl.n; i++) {
    if (rc == 0 && strncmp(kl.v[i].key, prefix, pl) == 0)
      rc = fn(arg, kl.v[i].key, kl.v[i].size);
    free(kl.v[i].key);
  }
  free(kl.v);
  return rc;
}

static int dir_open(void *ctx, const char *bucket, const char *key, int *fd, uint64_t *size,
                    err *e)
{
  dirsrc *d = ctx;
  char path[8192];
  snprintf(path, sizeof path, "%s/%s/%s", d->root, bucket, key);
  if (strstr(key, "..") != NULL)
    return err_set(e, ERR_NO_SUCH_KEY, "no object '%s' in bucket '%s'", key, bucket);
  int f = open(path, O_RDONLY | O_CLOEXEC);
  if (f < 0)
    return err_set(e, ERR_NO_SUCH_KEY, "no object '%s' in bucket '%s'", key, bucket);
  struct stat stt;
  fstat(f, &stt);
  *fd = f;
  *size = (uint64_t)stt.st_size;
  return 0;
}

void sql__objsrc_dir(sql_objsrc *out, const char *root)
{
  dirsrc *d = xcalloc(1, sizeof *d);
  snprintf(d->root, sizeof d->root, "%s", root);
  out->ctx = d;
  out->list = dir_list;
  out->open = dir_open;
  out->put_new = NULL;   /* read-only: COPY ... TO needs the store */
  out->put_write = NULL;
  out->put_commit = NULL;
  out->put_abort = NULL;
}

void sql__objsrc_dir_free(sql_objsrc *src)
{
  free(src->ctx);
  src->ctx = NULL;
}
