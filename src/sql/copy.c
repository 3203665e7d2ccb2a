/* sql/copy.c -- COPY (query) TO 's3://bucket/prefix/' (options): a query's
 * rows written to objects as Parquet, CSV or JSON lines, optionally split
 * into Hive-style partitions (key=value/ prefixes), as DuckDB's COPY does.
 *
 *   COPY (SELECT ...) TO 's3://b/out/' (FORMAT parquet, COMPRESSION zstd,
 *                                       PARTITION_BY (year, month))
 *
 * Options: FORMAT parquet|csv|json; COMPRESSION snappy|zstd|gzip|none
 * (Parquet: default snappy; CSV/JSON: none, gzip or zstd, default none);
 * PARTITION_BY name or (names); ROW_GROUP_SIZE rows; ROW_GROUP_SIZE_BYTES;
 * FILE_SIZE_BYTES (start a new object past it); HEADER (CSV, default true);
 * OVERWRITE_OR_IGNORE / APPEND (a target folder that already holds objects).
 *
 * Target: a path ending in '/', or any partitioned COPY, is a folder: the
 * objects are named data_N.ext below it (below each partition's
 * key=value/ prefix); otherwise the path is the one object's key.
 *
 * Invariants:
 *   (1) Nothing is visible before the whole query succeeded: every object
 *       is written to an uncommitted store writer and all are committed at
 *       the end (each commit atomic, raising ObjectCreated:Put); on any
 *       failure every writer is dropped. (A failure in the middle of the
 *       final commits leaves the objects committed before it.)
 *   (2) Memory: the rows buffered for the row groups (and CSV/JSON text
 *       not yet written) are charged to the query's budget (sql__qctx_mem);
 *       past half of what the rest of the query leaves of it, every open
 *       row group is written out early; a row group never buffers more than
 *       a quarter of the budget.
 *   (3) Partition columns are not written into the files (their values are
 *       in the keys); at most COPY_MAX_PARTITIONS partitions and
 *       COPY_MAX_OBJECTS objects per statement (each is an open store
 *       writer until the end).
 *   (4) Values are written as the engine holds them: a VARCHAR '000042'
 *       stays '000042'; types map as parquet_write.h says.
 *
 * Start reading at sql__copy_exec().
 */
#include "ddl.h"
#include "formats/parquet_write.h"
#include "catalog/catalog.h"

#include "base/mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define COPY_MAX_PARTITIONS 1000
#define COPY_MAX_OBJECTS 2000     /* objects written by one statement */
#define TEXT_CHUNK (4u << 20)
#define WRITER_BYTES (17 << 10)   /* memory of one open object writer, about */   /* CSV/JSON bytes compressed and written at once */
#define HIVE_NULL "__HIVE_DEFAULT_PARTITION__"

enum { CF_PARQUET, CF_CSV, CF_JSON };
enum { TZ_NONE, TZ_GZIP, TZ_ZSTD };

typedef struct cfile {
  char *dir;              /* key prefix of its partition ("out/year=2024/") */
  int seq;                /* objects started in this partition */
  void *w;                /* the object being written, or NULL */
  char *key;              /* its key */
  pqw_writer *pq;         /* CF_PARQUET */
  buf text;               /* CF_CSV / CF_JSON: bytes not yet written */
  uint64_t text_out;      /* bytes written to w (text formats) */
  uint16_t *sel;          /* rows of the current batch */
  int nsel;
  const char **pvals;     /* its partition values as text (NULL: the default partition) */
} cfile;

typedef struct done_obj {
  char *key;
  void *w;
} done_obj;

typedef struct copyrun {
  qctx *q;
  const sql_objsrc *src;
  char *bucket;
  char *base;             /* folder prefix (ends with '/', or "") or the key */
  bool folder;
  int format;
  pqw_codec codec;        /* CF_PARQUET */
  int tz;                 /* text formats: TZ_* */
  bool header;
  char delim;             /* CSV field delimiter */
  bool append;
  bool overwrite;
  uint64_t file_size;     /* 0: no bound */
  pqw_options popt;
  int ncols;
  const pcol *cols;
  int *data;              /* data column indices */
  int ndata;
  int *part;              /* partition column indices */
  int npart;
  pqw_column *pcols;
  vec *dv;                /* scratch: the data columns of a batch */
  cfile **files;          /* one per partition */
  int nfiles;
  int *slots;             /* hash of partition dir -> file index + 1 */
  size_t nslots;
  done_obj *done;
  int ndone;
  int capdone;
  int nstarted;           /* objects begun */
  int64_t charged;        /* bytes charged to q (invariant (2)) */
  uint64_t rows;
  char uniq[20];          /* APPEND: part of every name */
  buf kb;                 /* scratch: a partition's dir */
  err *e;
} copyrun;

/* ---- options ---- */

#define opt_err(pos, e, o, ...) sql__error_at(e, pos, (o)->line, (o)->col, __VA_ARGS__)

static bool opt_bool(const ast_copt *o, bool *out)
{
  if (o->text == NULL) {
    *out = true;
    return true;
  }
  if (!strcmp(o->text, "true") || !strcmp(o->text, "1")) {
    *out = true;
    return true;
  }
  if (!strcmp(o->text, "false") || !strcmp(o->text, "0")) {
    *out = false;
    return true;
  }
  return false;
}

static bool opt_u64(const ast_copt *o, uint64_t *out)
{
  if (o->text == NULL || o->is_string)
    return false;
  char *end;
  unsigned long long v = strtoull(o->text, &end, 10);
  if (*end != 0 || v == 0)
    return false;
  *out = v;
  return true;
}

static int lower_eq(const char *a, const char *b)
{
  for (; *a && *b; a++, b++) {
    char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
    if (x != *b)
      return 0;
  }
  return *a == 0 && *b == 0;
}

static bool ends_with(const char *s, const char *suf)
{
  size_t a = strlen(s);
  size_t b = strlen(suf);
  return a >= b && lower_eq(s + a - b, suf);
}

static int read_options(copyrun *c, ast_copy *ac, sql_pos *pos, err *e)
{
  const char *compression = NULL;
  const ast_copt *comp_opt = NULL;
  const ast_copt *part_opt = NULL;
  c->format = -1;
  c->header = ac->table == NULL; /* Hive text tables have no header row */
  c->delim = ',';
  for (int i = 0; i < ac->nopts; i++) {
    const ast_copt *o = &ac->opts[i];
    bool b;
    if (!strcmp(o->name, "format")) {
      if (o->text != NULL && lower_eq(o->text, "parquet"))
        c->format = CF_PARQUET;
      else if (o->text != NULL && (lower_eq(o->text, "csv") ||
                                   (ac->table != NULL && lower_eq(o->text, "textfile"))))
        c->format = CF_CSV;
      else if (o->text != NULL && (lower_eq(o->text, "json") || lower_eq(o->text, "jsonl")))
        c->format = CF_JSON;
      else
        return opt_err(pos, e, o, "unknown FORMAT '%s': use parquet, csv or json",
                       o->text != NULL ? o->text : "");
    } else if (!strcmp(o->name, "compression") || !strcmp(o->name, "codec") ||
               !strcmp(o->name, "write_compression") ||
               !strcmp(o->name, "parquet_compression")) {
      if (o->text == NULL)
        return opt_err(pos, e, o, "%s needs a value", "COMPRESSION");
      compression = o->text;
      comp_opt = o;
    } else if (!strcmp(o->name, "partition_by") || !strcmp(o->name, "partitioned_by")) {
      part_opt = o;
    } else if (!strcmp(o->name, "row_group_size")) {
      if (!opt_u64(o, &c->popt.row_group_rows) || c->popt.row_group_rows > 100000000)
        return opt_err(pos, e, o, "%s must be a number of rows from 1 to 100000000",
                       "ROW_GROUP_SIZE");
    } else if (!strcmp(o->name, "row_group_size_bytes")) {
      if (!opt_u64(o, &c->popt.row_group_bytes))
        return opt_err(pos, e, o, "%s must be a positive number of bytes",
                       "ROW_GROUP_SIZE_BYTES");
    } else if (!strcmp(o->name, "file_size_bytes")) {
      if (!opt_u64(o, &c->file_size))
        return opt_err(pos, e, o, "%s must be a positive number of bytes", "FILE_SIZE_BYTES");
    } else if (!strcmp(o->name, "header")) {
      if (!opt_bool(o, &c->header))
        return opt_err(pos, e, o, "%s must be true or false", "HEADER");
    } else if (!strcmp(o->name, "overwrite_or_ignore") || !strcmp(o->name, "overwrite")) {
      if (!opt_bool(o, &b))
        return opt_err(pos, e, o, "%s must be true or false", o->name);
      c->overwrite = b;
    } else if (!strcmp(o->name, "append")) {
      if (!opt_bool(o, &b))
        return opt_err(pos, e, o, "%s must be true or false", "APPEND");
      c->append = b;
    } else if (ac->table != NULL && !strcmp(o->name, "field_delimiter")) {
      if (o->text == NULL || !o->is_string || strlen(o->text) != 1)
        return opt_err(pos, e, o, "field_delimiter must be one character");
      c->delim = o->text[0];
    } else if (ac->table != NULL) {
      return opt_err(pos, e, o,
                     "unsupported table property '%s' (format, write_compression, "
                     "partitioned_by, external_location, field_delimiter)",
                     o->name);
    } else {
      return opt_err(pos, e, o,
                     "unknown COPY option '%s' (FORMAT, COMPRESSION, PARTITION_BY, "
                     "ROW_GROUP_SIZE, ROW_GROUP_SIZE_BYTES, FILE_SIZE_BYTES, HEADER, "
                     "OVERWRITE_OR_IGNORE, APPEND)",
                     o->name);
    }
  }
  if (c->format < 0) {
    const char *p = ac->path;
    if (ends_with(p, ".csv") || ends_with(p, ".csv.gz") || ends_with(p, ".csv.zst"))
      c->format = CF_CSV;
    else if (ends_with(p, ".json") || ends_with(p, ".jsonl") || ends_with(p, ".json.gz") ||
             ends_with(p, ".jsonl.gz") || ends_with(p, ".json.zst") ||
             ends_with(p, ".jsonl.zst"))
      c->format = CF_JSON;
    else
      c->format = CF_PARQUET;
  }
  if (compression == NULL && c->format != CF_PARQUET) {
    if (ends_with(ac->path, ".gz"))
      compression = "gzip";
    else if (ends_with(ac->path, ".zst"))
      compression = "zstd";
  }
  c->codec = PQW_SNAPPY;
  c->tz = TZ_NONE;
  if (compression != NULL) {
    bool none = lower_eq(compression, "none") || lower_eq(compression, "uncompressed");
    if (c->format == CF_PARQUET) {
      if (none)
        c->codec = PQW_UNCOMPRESSED;
      else if (lower_eq(compression, "snappy"))
        c->codec = PQW_SNAPPY;
      else if (lower_eq(compression, "zstd"))
        c->codec = PQW_ZSTD;
      else if (lower_eq(compression, "gzip"))
        c->codec = PQW_GZIP;
      else
        return opt_err(pos, e, comp_opt,
                       "unknown COMPRESSION '%s' for parquet: use snappy, zstd, gzip or none",
                       compression);
    } else {
      if (none)
        c->tz = TZ_NONE;
      else if (lower_eq(compression, "gzip"))
        c->tz = TZ_GZIP;
      else if (lower_eq(compression, "zstd"))
        c->tz = TZ_ZSTD;
      else
        return opt_err(pos, e, comp_opt,
                       "unknown COMPRESSION '%s' for csv and json: use gzip, zstd or none",
                       compression);
    }
  }
  if (part_opt != NULL) {
    int n = part_opt->nlist > 0 ? part_opt->nlist : part_opt->text != NULL ? 1 : 0;
    if (n == 0)
      return opt_err(pos, e, part_opt, "%s needs column names: PARTITION_BY (a, b)",
                     "PARTITION_BY");
    const char *const *names = part_opt->nlist > 0 ? part_opt->list : &part_opt->text;
    c->part = arena_alloc(c->q->a, sizeof(int) * (size_t)n);
    for (int k = 0; k < n; k++) {
      int found = -1;
      for (int j = 0; j < c->ncols && found < 0; j++)
        if (lower_eq(c->cols[j].name, names[k]) || !strcmp(c->cols[j].name, names[k]))
          found = j;
      if (found < 0)
        return opt_err(pos, e, part_opt, "PARTITION_BY column '%s' is not in the query",
                       names[k]);
      for (int j = 0; j < c->npart; j++)
        if (c->part[j] == found)
          return opt_err(pos, e, part_opt, "PARTITION_BY names '%s' twice", names[k]);
      c->part[c->npart++] = found;
    }
  }
  return 0;
}

/* ---- types ---- */

static int kind_of(const pcol *col, pqw_kind *k, err *e)
{
  switch (col->type.t) {
  case SQL_BOOLEAN:
    *k = PQW_BOOLEAN;
    return 0;
  case SQL_SMALLINT:
    *k = PQW_INT16;
    return 0;
  case SQL_NULL:
  case SQL_INTEGER:
    *k = PQW_INT32;
    return 0;
  case SQL_BIGINT:
    *k = PQW_INT64;
    return 0;
  case SQL_DOUBLE:
    *k = PQW_DOUBLE;
    return 0;
  case SQL_DECIMAL:
    *k = PQW_DECIMAL;
    return 0;
  case SQL_VARCHAR:
    *k = PQW_STRING;
    return 0;
  case SQL_DATE:
    *k = PQW_DATE;
    return 0;
  case SQL_TIMESTAMP:
    *k = PQW_TIMESTAMP;
    return 0;
  default:
    return err_set(e, ERR_NOT_IMPLEMENTED,
                   "cannot write column '%s' of type %s to parquet: cast it to varchar",
                   col->name, sql_type_name(col->type.t));
  }
}

/* ---- objects ---- */

typedef struct outctx {
  copyrun *c;
  cfile *f;
} outctx;

static int pq_out(void *ctx, const void *p, size_t n, err *e)
{
  outctx *o = ctx;
  return o->c->src->put_write(o->f->w, p, n, e);
}

static const char *ext_of(const copyrun *c)
{
  if (c->format == CF_PARQUET)
    return ".parquet";
  const char *base = c->format == CF_CSV ? ".csv" : ".json";
  if (c->tz == TZ_GZIP)
    return c->format == CF_CSV ? ".csv.gz" : ".json.gz";
  if (c->tz == TZ_ZSTD)
    return c->format == CF_CSV ? ".csv.zst" : ".json.zst";
  return base;
}

/* text: the header row of a CSV object */
static int csv_field(buf *b, const char *p, size_t n, char delim);

static int file_start(copyrun *c, cfile *f, outctx *oc, err *e)
{
  if (c->folder) {
    if (c->append)
      f->key = arena_sprintf(c->q->a, "%sdata_%s_%d%s", f->dir, c->uniq, f->seq, ext_of(c));
    else
      f->key = arena_sprintf(c->q->a, "%sdata_%d%s", f->dir, f->seq, ext_of(c));
  } else {
    f->key = c->base;   /* one object (FILE_SIZE_BYTES makes a folder) */
  }
  f->seq++;
  /* every object stays open until the end (invariant (1)): bound them */
  if (++c->nstarted > COPY_MAX_OBJECTS)
    return err_set(e, ERR_INVALID,
                   "COPY would write more than %d objects (raise FILE_SIZE_BYTES)",
                   COPY_MAX_OBJECTS);
  if (strlen(f->key) > 1024)
    return err_set(e, ERR_INVALID, "cannot write 's3://%s/%s...': the key is longer than 1024 bytes",
                   c->bucket, arena_strndup(c->q->a, f->key, 64));
  int rc = c->src->put_new(c->src->ctx, c->bucket, &f->w, e);
  if (rc < 0)
    return rc;
  f->text_out = 0;
  if (c->format == CF_PARQUET) {
    oc->c = c;
    oc->f = f;
    pqw_options po = c->popt;
    po.codec = c->codec;
    return pqw_new(c->pcols, c->ndata, &po, pq_out, oc, &f->pq, e);
  }
  if (c->format == CF_CSV && c->header) {
    for (int k = 0; k < c->ndata && rc == 0; k++) {
      if (k > 0)
        rc = buf_append(&f->text, &c->delim, 1);
      const char *nm = c->cols[c->data[k]].name;
      if (rc == 0)
        rc = csv_field(&f->text, nm, strlen(nm), c->delim);
    }
    if (rc == 0)
      rc = buf_append(&f->text, "\n", 1);
  }
  return rc;
}

/* Writes out the text bytes held (compressed as one gzip member or zstd
 * frame: concatenations of them are valid files). */
static int text_flush(copyrun *c, cfile *f, err *e)
{
  if (f->text.len == 0)
    return 0;
  char *z = NULL;
  size_t zl = f->text.len;
  int rc = 0;
  if (c->tz == TZ_GZIP)
    rc = codec_gzip_compress(f->text.data, f->text.len, 6, &z, &zl, e);
  else if (c->tz == TZ_ZSTD)
    rc = codec_zstd_compress(f->text.data, f->text.len, 3, &z, &zl, e);
  if (rc == 0)
    rc = c->src->put_write(f->w, z != NULL ? z : f->text.data, zl, e);
  free(z);
  f->text_out += zl;
  buf_reset(&f->text);
  return rc;
}

static int file_end(copyrun *c, cfile *f, err *e)
{
  if (f->w == NULL)
    return 0;
  int rc;
  if (f->pq != NULL) {
    rc = pqw_finish(f->pq, e);
    f->pq = pqw_free(f->pq);
  } else {
    rc = text_flush(c, f, e);
  }
  if (rc < 0)
    return rc;
  if (c->ndone == c->capdone) {
    c->capdone = c->capdone ? c->capdone * 2 : 16;
    c->done = xrealloc(c->done, sizeof(done_obj) * (size_t)c->capdone);
  }
  c->done[c->ndone].key = f->key;
  c->done[c->ndone].w = f->w;
  c->ndone++;
  f->w = NULL;
  return 0;
}

static uint64_t file_size_now(const cfile *f)
{
  if (f->pq != NULL)
    return pqw_written(f->pq) + pqw_buffered(f->pq);
  return f->text_out + f->text.len;
}

/* ---- text rows ---- */

static int csv_field(buf *b, const char *p, size_t n, char delim)
{
  bool quote = n == 0;
  for (size_t i = 0; i < n && !quote; i++)
    if (p[i] == delim || p[i] == '"' || p[i] == '\r' || p[i] == '\n')
      quote = true;
  if (!quote)
    return buf_append(b, p, n);
  int rc = buf_append(b, "\"", 1);
  size_t st = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (p[i] == '"') {
      rc = buf_append(b, p + st, i - st + 1);
      if (rc == 0)
        rc = buf_append(b, "\"", 1);
      st = i + 1;
    }
  }
  if (rc == 0)
    rc = buf_append(b, p + st, n - st);
  if (rc == 0)
    rc = buf_append(b, "\"", 1);
  return rc;
}

static int text_rows(copyrun *c, cfile *f, const batch *b, const uint16_t *sel, int n)
{
  int rc = 0;
  char tmp[64];
  for (int j = 0; j < n && rc == 0; j++) {
    int r = sel != NULL ? sel[j] : j;
    if (c->format == CF_JSON)
      rc = buf_append(&f->text, "{", 1);
    for (int k = 0; k < c->ndata && rc == 0; k++) {
      const pcol *col = &c->cols[c->data[k]];
      value v = vec_get(&b->cols[c->data[k]], r);
      if (c->format == CF_CSV) {
        if (k > 0)
          rc = buf_append(&f->text, &c->delim, 1);
        if (rc == 0 && !v.null) {
          str_ref s = sql__value_text(col->type, v, tmp);
          rc = csv_field(&f->text, s.ptr, s.len, c->delim);
        }
        continue;
      }
      if (k > 0)
        rc = buf_append(&f->text, ",", 1);
      if (rc == 0)
        rc = buf_json_string(&f->text, col->name, strlen(col->name));
      if (rc == 0)
        rc = buf_append(&f->text, ":", 1);
      if (rc < 0)
        break;
      if (v.null) {
        rc = buf_puts(&f->text, "null");
        continue;
      }
      str_ref s = sql__value_text(col->type, v, tmp);
      sql_type t = col->type.t;
      bool raw = t == SQL_BOOLEAN || t == SQL_SMALLINT || t == SQL_INTEGER ||
                 t == SQL_BIGINT || t == SQL_DECIMAL ||
                 (t == SQL_DOUBLE && !isnan(v.f) && !isinf(v.f));
      rc = raw ? buf_append(&f->text, s.ptr, s.len) : buf_json_string(&f->text, s.ptr, s.len);
    }
    if (rc == 0)
      rc = buf_append(&f->text, c->format == CF_JSON ? "}\n" : "\n", c->format == CF_JSON ? 2 : 1);
    if (rc == 0 && f->text.len >= TEXT_CHUNK)
      rc = text_flush(c, f, c->e);
    else if (rc < 0)
      rc = err_set(c->e, ERR_ENTITY_TOO_LARGE, "a row is larger than the COPY buffer");
  }
  return rc;
}

/* ---- partitions ---- */

/* Hive's escaping of a partition value: the characters a path or a
 * key=value pair cannot hold become %XX. */
static void hive_escape(buf *b, const char *p, size_t n)
{
  static const char bad[] = "\"#%'*/:=?\\{}[]^";
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch < 0x20 || ch == 0x7f || strchr(bad, ch) != NULL) {
      char h[4];
      snprintf(h, sizeof h, "%%%02X", ch);
      buf_append(b, h, 3);
    } else {
      buf_append(b, p + i, 1);
    }
  }
}

static uint64_t str_hash(const char *p, size_t n)
{
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return h;
}

static cfile *file_new(copyrun *c, const char *dir, size_t n)
{
  cfile *f = arena_alloc(c->q->a, sizeof *f);
  f->dir = arena_strndup(c->q->a, dir, n);
  buf_init(&f->text, SQL_VALUE_MAX + TEXT_CHUNK);
  f->sel = arena_alloc(c->q->a, sizeof(uint16_t) * COL_BATCH);
  return f;
}

/* The partition of row r (its file, made when new). */
static int partition_of(copyrun *c, const batch *b, int r, cfile **out, err *e)
{
  buf *k = &c->kb;
  buf_reset(k);
  buf_puts(k, c->base);
  char tmp[64];
  for (int i = 0; i < c->npart; i++) {
    const pcol *col = &c->cols[c->part[i]];
    hive_escape(k, col->name, strlen(col->name));
    buf_append(k, "=", 1);
    value v = vec_get(&b->cols[c->part[i]], r);
    str_ref s = {HIVE_NULL, strlen(HIVE_NULL)};
    if (!v.null)
      s = sql__value_text(col->type, v, tmp);
    if (s.len == 0)
      s = (str_ref){HIVE_NULL, strlen(HIVE_NULL)};
    if (k->len + s.len * 3 > 1024)
      return err_set(e, ERR_INVALID, "partition value of '%s' too long for an object key",
                     col->name);
    hive_escape(k, s.ptr, s.len);
    buf_append(k, "/", 1);
  }
  uint64_t h = str_hash(k->data, k->len);
  size_t s = (size_t)h & (c->nslots - 1);
  for (;;) {
    int fi = c->slots[s];
    if (fi == 0)
      break;
    cfile *f = c->files[fi - 1];
    if (strlen(f->dir) == k->len && memcmp(f->dir, k->data, k->len) == 0) {
      *out = f;
      return 0;
    }
    s = (s + 1) & (c->nslots - 1);
  }
  if (c->nfiles >= COPY_MAX_PARTITIONS)
    return err_set(e, ERR_INVALID, "COPY would write more than %d partitions",
                   COPY_MAX_PARTITIONS);
  cfile *f = file_new(c, k->data, k->len);
  f->pvals = arena_alloc(c->q->a, sizeof(char *) * (size_t)c->npart);
  for (int i = 0; i < c->npart; i++) {
    const pcol *col = &c->cols[c->part[i]];
    value v = vec_get(&b->cols[c->part[i]], r);
    str_ref t = {NULL, 0};
    if (!v.null)
      t = sql__value_text(col->type, v, tmp);
    f->pvals[i] = t.len > 0 ? arena_strndup(c->q->a, t.ptr, t.len) : NULL;
  }
  c->files[c->nfiles++] = f;
  c->slots[s] = c->nfiles;
  *out = f;
  return 0;
}

/* ---- the sink ---- */

typedef struct copy_sink {
  copyrun *c;
  outctx *ocs;            /* per file, for the parquet writer's out() */
} copy_sink;

static int append_rows(copyrun *c, outctx *oc, cfile *f, const batch *b, const uint16_t *sel,
                       int n, err *e)
{
  int rc = 0;
  if (f->w == NULL && (rc = file_start(c, f, oc, e)) < 0)
    return rc;
  if (c->format == CF_PARQUET) {
    for (int k = 0; k < c->ndata; k++)
      c->dv[k] = b->cols[c->data[k]];
    rc = pqw_append(f->pq, c->dv, sel, n, e);
  } else {
    rc = text_rows(c, f, b, sel, n);
  }
  if (rc == 0 && c->file_size > 0 && file_size_now(f) >= c->file_size)
    rc = file_end(c, f, e);
  return rc;
}

static int64_t held_bytes(const copyrun *c)
{
  /* an object being written holds about 16 KiB (the store's inline head) */
  int64_t held = (int64_t)c->ndone * WRITER_BYTES;
  for (int i = 0; i < c->nfiles; i++) {
    cfile *f = c->files[i];
    held += (int64_t)(f->pq != NULL ? pqw_buffered(f->pq) : 0) + (int64_t)f->text.cap;
    if (f->w != NULL)
      held += WRITER_BYTES;
  }
  return held;
}

static int charge(copyrun *c)
{
  int64_t held = held_bytes(c);
  int64_t delta = held - c->charged;
  c->charged = held;
  return sql__qctx_mem(c->q, delta);
}

static int on_batch(void *arg, const batch *b, err *e)
{
  copy_sink *s = arg;
  copyrun *c = s->c;
  int rc = 0;
  if (b->nsel == 0)
    return 0;
  c->rows += (uint64_t)b->nsel;
  if (c->npart == 0) {
    rc = append_rows(c, &s->ocs[0], c->files[0], b, b->sel, b->nsel, e);
  } else {
    cfile *touched[COL_BATCH];
    int nt = 0;
    for (int j = 0; j < b->nsel && rc == 0; j++) {
      int r = ROW(b, j);
      cfile *f = NULL;
      rc = partition_of(c, b, r, &f, e);
      if (rc < 0 || f == NULL)
        break;
      if (f->nsel == 0)
        touched[nt++] = f;
      f->sel[f->nsel++] = (uint16_t)r;
    }
    for (int t = 0; t < nt; t++) {
      cfile *f = touched[t];
      int fi = 0;
      while (c->files[fi] != f)
        fi++;
      if (rc == 0)
        rc = append_rows(c, &s->ocs[fi], f, b, f->sel, f->nsel, e);
      f->nsel = 0;
    }
  }
  if (rc < 0)
    return rc;
  /* invariant (2): past half of what the rest of the query leaves of the
     budget, write the open row groups out */
  int64_t others = (int64_t)atomic_load(&c->q->mem_used) - c->charged;
  if (c->q->mem_limit > 0 && others + 2 * held_bytes(c) > (int64_t)c->q->mem_limit)
    for (int i = 0; i < c->nfiles && rc == 0; i++)
      if (c->files[i]->pq != NULL)
        rc = pqw_flush(c->files[i]->pq, e);
  if (rc == 0)
    rc = charge(c);
  if (rc < 0 && c->q->err_code != 0)
    *e = c->q->err;
  return rc;
}

/* ---- the statement ---- */

typedef struct count_ctx {
  bool any;
} count_ctx;

static int found_one(void *arg, const char *key, uint64_t size)
{
  (void)key;
  (void)size;
  ((count_ctx *)arg)->any = true;
  return 1;   /* stop */
}

static void copy_cleanup(copyrun *c, outctx *ocs)
{
  (void)ocs;
  for (int i = 0; i < c->nfiles; i++) {
    cfile *f = c->files[i];
    f->pq = pqw_free(f->pq);
    if (f->w != NULL)
      c->src->put_abort(f->w);
    f->w = NULL;
    buf_release(&f->text);
  }
  for (int i = 0; i < c->ndone; i++)
    if (c->done[i].w != NULL)
      c->src->put_abort(c->done[i].w);
  free(c->done);
  c->done = NULL;
  buf_release(&c->kb);
  if (c->charged != 0)
    sql__qctx_mem(c->q, -c->charged);
  c->charged = 0;
}

static plan *result_plan(qctx *q, uint64_t rows)
{
  plan *p = arena_alloc(q->a, sizeof *p);
  p->kind = P_VALUES;
  p->ncols = 1;
  p->cols = arena_alloc(q->a, sizeof(pcol));
  p->cols[0].name = "rows";
  p->cols[0].type.t = SQL_BIGINT;
  p->nrows = 1;
  p->rows = arena_alloc(q->a, sizeof(value *));
  p->rows[0] = arena_alloc(q->a, sizeof(value));
  p->rows[0][0].i = (int64_t)rows;
  return p;
}

/* ---- CREATE TABLE AS and INSERT INTO: the catalog's side ---- */

typedef struct ctab {
  const char *db;
  const char *name;
  cat_tdef td;            /* INSERT: the table */
  bool exists;            /* CTAS IF NOT EXISTS over an existing table */
} ctab;

/* Before anything is written: CTAS's table must not exist and its
 * database must; INSERT's table must exist (its location becomes the
 * path). */
static int table_check(qctx *q, ast_copy *ac, ctab *ct, err *e, sql_pos *pos)
{
  if (q->cat == NULL)
    return sql__error_at(e, pos, ac->line, ac->col,
                         "%s needs the table catalog, which this engine was started without",
                         ac->insert ? "INSERT INTO" : "CREATE TABLE AS");
  int rc;
  if (ac->insert) {
    rc = sql__cat_table(q, ac->table, &ct->td, e);
    if (rc == ERR_ENTITY_NOT_FOUND)
      return sql__error_at(e, pos, ac->table_line, ac->table_col, "table '%s.%s' does not exist",
                           ct->td.db, ct->td.name);
    if (rc < 0) {
      pos->line = ac->table_line;
      pos->col = ac->table_col;
      return rc;
    }
    ct->db = ct->td.db;
    ct->name = ct->td.name;
    ac->path = ct->td.cat.location;
    ac->path_line = ac->table_line;
    ac->path_col = ac->table_col;
    return 0;
  }
  sql__cat_split(q, ac->table, &ct->db, &ct->name);
  json_t *doc = NULL;
  rc = catalog_database_get(q->cat, ct->db, &doc, e);
  if (rc < 0) {
    json_decref(doc);
    return rc == ERR_ENTITY_NOT_FOUND
               ? sql__error_at(e, pos, ac->table_line, ac->table_col,
                               "database '%s' does not exist", ct->db)
               : rc;
  }
  const char *dloc = json_string_value(json_object_get(doc, "LocationUri"));
  if (ac->path == NULL && dloc != NULL && dloc[0] != 0) {
    size_t dl = strlen(dloc);
    ac->path = arena_sprintf(q->a, "%s%s%s/", dloc, dloc[dl - 1] == '/' ? "" : "/", ct->name);
    ac->path_line = ac->table_line;
    ac->path_col = ac->table_col;
  }
  json_decref(doc);
  json_t *tdoc = NULL;
  rc = catalog_table_get(q->cat, ct->db, ct->name, &tdoc, e);
  json_decref(tdoc);
  if (rc == 0) {
    if (ac->if_not_exists) {
      ct->exists = true;
      return 0;
    }
    return sql__error_at(e, pos, ac->table_line, ac->table_col, "table '%s.%s' already exists",
                         ct->db, ct->name);
  }
  if (rc != ERR_ENTITY_NOT_FOUND)
    return rc;
  err_clear(e);
  return 0;
}

/* INSERT INTO: the query's columns, by position, become the table's
 * (data columns then partition keys), cast to the declared types. */
static int insert_shape(qctx *q, ast_copy *ac, ctab *ct, plan **pp, err *e, sql_pos *pos)
{
  plan *p = *pp;
  int n = ct->td.ncols + ct->td.npkeys;
  /* src[i]: the query's column for table column i, -1 for none (NULL) */
  int *src = arena_alloc(q->a, sizeof(int) * (size_t)n);
  for (int i = 0; i < n; i++)
    src[i] = ac->ncols > 0 ? -1 : i;
  for (int k = 0; k < ac->ncols; k++) {
    int i = 0;
    while (i < n && strcasecmp(ct->td.names[i], ac->cols[k]) != 0)
      i++;
    if (i == n)
      return sql__error_at(e, pos, ac->table_line, ac->table_col,
                           "INSERT INTO %s: the table has no column '%s'", ct->td.display,
                           ac->cols[k]);
    if (src[i] >= 0)
      return sql__error_at(e, pos, ac->table_line, ac->table_col,
                           "INSERT INTO %s: column '%s' is named twice", ct->td.display,
                           ac->cols[k]);
    src[i] = k;
  }
  int want_n = ac->ncols > 0 ? ac->ncols : n;
  if (p->ncols != want_n)
    return sql__error_at(e, pos, ac->line, ac->col,
                         "INSERT INTO %s: the query gives %d columns, %s %d",
                         ct->td.display, p->ncols,
                         ac->ncols > 0 ? "the column list names" : "the table has", want_n);
  plan *pr = arena_alloc(q->a, sizeof *pr);
  pr->kind = P_PROJECT;
  pr->limit = -1;
  pr->child = p;
  pr->ncols = n;
  pr->cols = arena_alloc(q->a, sizeof(pcol) * (size_t)n);
  pr->exprs = arena_alloc(q->a, sizeof(bexpr *) * (size_t)n);
  for (int i = 0; i < n; i++) {
    stype want = ct->td.stypes[i];
    if (src[i] < 0) {
      bexpr *nul = arena_alloc(q->a, sizeof *nul);
      nul->kind = BX_CONST;
      nul->type = want;
      nul->v.null = true;
      pr->exprs[i] = nul;
      pr->cols[i].name = ct->td.names[i];
      pr->cols[i].type = want;
      continue;
    }
    stype have = p->cols[src[i]].type;
    if (have.t != SQL_NULL && have.t != want.t &&
        !((sql__stype_numeric(have.t) && sql__stype_numeric(want.t)) ||
          want.t == SQL_VARCHAR || have.t == SQL_VARCHAR ||
          (have.t == SQL_DATE && want.t == SQL_TIMESTAMP)))
      return sql__error_at(e, pos, ac->line, ac->col,
                           "INSERT INTO %s: column '%s' is %s, the query gives %s",
                           ct->td.display, ct->td.names[i], sql_type_name(want.t),
                           sql_type_name(have.t));
    bexpr *x = arena_alloc(q->a, sizeof *x);
    x->kind = BX_COL;
    x->colno = src[i];
    x->type = have;
    pr->exprs[i] = sql__bind_cast(q, x, want);
    pr->cols[i].name = ct->td.names[i];
    pr->cols[i].type = want;
  }
  *pp = pr;
  return 0;
}

/* INSERT INTO: what the table says of the files to write. */
static int insert_options(copyrun *c, ctab *ct, err *e)
{
  const table_opts *o = &ct->td.opts;
  json_t *doc = ct->td.doc;
  c->format = o->format == FMT_PARQUET ? CF_PARQUET : o->format == FMT_JSONL ? CF_JSON : CF_CSV;
  c->header = o->csv.header == 1;
  c->delim = o->csv.delim != 0 ? o->csv.delim : ',';
  c->append = true;
  const char *comp = catalog_param(doc, "parquet.compression");
  if (comp == NULL)
    comp = catalog_param(doc, "write.compression");
  c->codec = PQW_SNAPPY;
  c->tz = TZ_NONE;
  if (comp != NULL && c->format == CF_PARQUET) {
    if (lower_eq(comp, "zstd"))
      c->codec = PQW_ZSTD;
    else if (lower_eq(comp, "gzip"))
      c->codec = PQW_GZIP;
    else if (lower_eq(comp, "none") || lower_eq(comp, "uncompressed"))
      c->codec = PQW_UNCOMPRESSED;
  } else if (comp != NULL && lower_eq(comp, "gzip")) {
    c->tz = TZ_GZIP;
  } else if (comp != NULL && lower_eq(comp, "zstd")) {
    c->tz = TZ_ZSTD;
  }
  c->npart = ct->td.npkeys;
  c->part = arena_alloc(c->q->a, sizeof(int) * (size_t)(c->npart > 0 ? c->npart : 1));
  for (int k = 0; k < c->npart; k++)
    c->part[k] = ct->td.ncols + k;
  (void)e;
  return 0;
}

/* After the objects are committed: CTAS registers its table, both add the
 * partitions written. */
static int table_register(copyrun *c, ast_copy *ac, ctab *ct, err *e, sql_pos *pos)
{
  qctx *q = c->q;
  const char *loc = arena_sprintf(q->a, "s3://%s/%s", c->bucket, c->base);
  int rc = 0;
  json_t *sd = NULL;
  if (!ac->insert) {
    json_t *cols = json_array();
    for (int k = 0; k < c->ndata; k++) {
      const pcol *col = &c->cols[c->data[k]];
      json_t *o = json_object();
      json_object_set_new(o, "Name", json_string(col->name));
      json_object_set_new(o, "Type", json_string(sql__hive_type_of(q->a, col->type)));
      json_array_append_new(cols, o);
    }
    const char *fmt = c->format == CF_PARQUET ? "parquet" : c->format == CF_JSON ? "json" : "csv";
    char delim[2] = {c->delim, 0};
    sd = catalog_storage_new(fmt, loc, cols, delim);
    json_t *keys = json_array();
    for (int k = 0; k < c->npart; k++) {
      const pcol *col = &c->cols[c->part[k]];
      json_t *o = json_object();
      json_object_set_new(o, "Name", json_string(col->name));
      json_object_set_new(o, "Type", json_string(sql__hive_type_of(q->a, col->type)));
      json_array_append_new(keys, o);
    }
    json_t *params = json_object();
    json_object_set_new(params, "EXTERNAL", json_string("TRUE"));
    json_object_set_new(params, "classification", json_string(fmt));
    if (c->format == CF_PARQUET)
      json_object_set_new(params, "parquet.compression",
                          json_string(c->codec == PQW_ZSTD     ? "ZSTD"
                                      : c->codec == PQW_GZIP   ? "GZIP"
                                      : c->codec == PQW_SNAPPY ? "SNAPPY"
                                                               : "UNCOMPRESSED"));
    else if (c->tz != TZ_NONE)
      json_object_set_new(params, "write.compression",
                          json_string(c->tz == TZ_GZIP ? "GZIP" : "ZSTD"));
    json_t *in = json_object();
    json_object_set_new(in, "Name", json_string(ct->name));
    json_object_set_new(in, "TableType", json_string("EXTERNAL_TABLE"));
    json_object_set_new(in, "Parameters", params);
    json_object_set_new(in, "PartitionKeys", keys);
    json_object_set(in, "StorageDescriptor", sd);
    rc = catalog_table_create(q->cat, ct->db, in, NULL, e);
    json_decref(in);
  } else {
    sd = json_incref(json_object_get(ct->td.doc, "StorageDescriptor"));
  }
  if (rc == 0 && c->npart > 0) {
    json_t *inputs = json_array();
    for (int i = 0; i < c->nfiles; i++) {
      cfile *f = c->files[i];
      if (f->seq == 0)
        continue;
      const char *ploc = arena_sprintf(q->a, "s3://%s/%s", c->bucket, f->dir);
      json_array_append_new(inputs,
                            catalog_partition_input(f->pvals, (size_t)c->npart, ploc, sd));
    }
    size_t added = 0;
    rc = catalog_partitions_add(q->cat, ct->db, ct->name, inputs, true, &added, e);
    json_decref(inputs);
  }
  json_decref(sd);
  if (rc < 0) {
    pos->line = ac->line;
    pos->col = ac->col;
    return err_wrap(e, "the objects were written to '%s' but the catalog was not updated", loc);
  }
  return 0;
}

int sql__copy_exec(qctx *q, ast_copy *ac, plan **result, err *e, sql_pos *pos)
{
  const sql_objsrc *src = q->src;
  if (src->put_new == NULL)
    return sql__error_at(e, pos, ac->line, ac->col, "COPY ... TO cannot write here: %s",
                        "the objects are read-only");
  ctab ct;
  memset(&ct, 0, sizeof ct);
  int rc;
  if (ac->table != NULL) {
    if ((rc = table_check(q, ac, &ct, e, pos)) < 0)
      return rc;
    if (ct.exists) {
      *result = result_plan(q, 0);
      return 0;
    }
  }
  const char *path = ac->path;
  if (path == NULL)
    return sql__error_at(e, pos, ac->line, ac->col,
                        "CREATE TABLE '%s' AS needs WITH (external_location = "
                        "'s3://bucket/prefix/'), or a database with a LOCATION",
                        ac->table);
  if (strncmp(path, "s3://", 5) != 0 || path[5] == 0 || path[5] == '/')
    return sql__error_at(e, pos, ac->path_line, ac->path_col,
                        "COPY target '%s' must be 's3://bucket/key' or 's3://bucket/prefix/'",
                        path);
  plan *p;
  rc = sql__bind(q, ac->query, &p, e, pos);
  if (rc < 0)
    return rc;
  if (ac->insert && (rc = insert_shape(q, ac, &ct, &p, e, pos)) < 0)
    return rc;
  copyrun c = {.q = q, .src = src, .e = e};
  c.ncols = p->ncols;
  c.cols = p->cols;
  buf_init(&c.kb, 4096);
  rc = ac->insert ? insert_options(&c, &ct, e) : read_options(&c, ac, pos, e);
  if (rc < 0) {
    buf_release(&c.kb);
    return rc;
  }
  /* Athena: the partition columns come last in the select list, in order */
  for (int k = 0; k < c.npart && ac->table != NULL && !ac->insert; k++)
    if (c.part[k] != c.ncols - c.npart + k) {
      buf_release(&c.kb);
      return sql__error_at(e, pos, ac->line, ac->col,
                           "partitioned_by columns must be the last columns of the query, in "
                           "the same order ('%s' is not)",
                           c.cols[c.part[k]].name);
    }
  const char *slash = strchr(path + 5, '/');
  c.bucket = slash != NULL ? arena_strndup(q->a, path + 5, (size_t)(slash - path - 5))
                           : arena_strdup(q->a, path + 5);
  const char *key = slash != NULL ? slash + 1 : "";
  size_t kl = strlen(key);
  c.folder = ac->table != NULL || c.npart > 0 || c.file_size > 0 || kl == 0 ||
             key[kl - 1] == '/';
  c.base = c.folder && kl > 0 && key[kl - 1] != '/' ? arena_sprintf(q->a, "%s/", key)
                                                      : arena_strdup(q->a, key);
  /* columns written */
  c.data = arena_alloc(q->a, sizeof(int) * (size_t)(c.ncols > 0 ? c.ncols : 1));
  for (int i = 0; i < c.ncols; i++) {
    bool is_part = false;
    for (int k = 0; k < c.npart; k++)
      is_part |= c.part[k] == i;
    if (!is_part)
      c.data[c.ndata++] = i;
  }
  if (c.ndata == 0 || c.ndata > PQW_MAX_COLUMNS) {
    buf_release(&c.kb);
    return sql__error_at(e, pos, ac->line, ac->col,
                        "COPY needs 1 to %d columns besides the partition columns",
                        PQW_MAX_COLUMNS);
  }
  for (int k = 0; k < c.ndata; k++) {
    const char *nm = c.cols[c.data[k]].name;
    if (strlen(nm) > 255) {
      buf_release(&c.kb);
      return sql__error_at(e, pos, ac->line, ac->col,
                          "COPY column name '%.40s...' is longer than 255 bytes", nm);
    }
    for (int j = 0; j < k; j++)
      if (strcasecmp(c.cols[c.data[j]].name, nm) == 0) {
        buf_release(&c.kb);
        return sql__error_at(e, pos, ac->line, ac->col,
                            "COPY needs distinct column names: '%s' appears twice (use AS)",
                            nm);
      }
  }
  for (int k = 0; k < c.npart; k++)
    if (strlen(c.cols[c.part[k]].name) > 255) {
      buf_release(&c.kb);
      return sql__error_at(e, pos, ac->line, ac->col, "PARTITION_BY column name too long");
    }
  c.dv = arena_alloc(q->a, sizeof(vec) * (size_t)c.ndata);
  c.pcols = arena_alloc(q->a, sizeof(pqw_column) * (size_t)c.ndata);
  for (int k = 0; k < c.ndata && c.format == CF_PARQUET; k++) {
    const pcol *col = &c.cols[c.data[k]];
    c.pcols[k].name = col->name;
    c.pcols[k].precision = col->type.prec;
    c.pcols[k].scale = col->type.scale;
    if ((rc = kind_of(col, &c.pcols[k].kind, e)) < 0) {
      buf_release(&c.kb);
      return rc;
    }
  }
  /* invariant (2): one row group holds at most a quarter of the budget */
  uint64_t rgmax = q->mem_limit / 4;
  if (rgmax > 0 && (c.popt.row_group_bytes == 0 || c.popt.row_group_bytes > rgmax))
    c.popt.row_group_bytes = rgmax < PQW_ROW_GROUP_BYTES ? rgmax : PQW_ROW_GROUP_BYTES;
  /* the bucket must exist; a folder must be empty unless told otherwise */
  count_ctx cc = {false};
  rc = src->list(src->ctx, c.bucket, c.base, found_one, &cc, e);
  if (rc < 0) {
    buf_release(&c.kb);
    return rc;
  }
  if (c.folder && cc.any && !c.overwrite && !c.append && ac->table != NULL) {
    buf_release(&c.kb);
    return sql__error_at(e, pos, ac->path_line, ac->path_col,
                         "external_location 's3://%s/%s' must be empty: it holds objects",
                         c.bucket, c.base);
  }
  if (c.folder && cc.any && !c.overwrite && !c.append) {
    buf_release(&c.kb);
    return sql__error_at(e, pos, ac->path_line, ac->path_col,
                        "COPY target 's3://%s/%s' already holds objects: add "
                        "OVERWRITE_OR_IGNORE to replace same-named ones, or APPEND",
                        c.bucket, c.base);
  }
  if (c.append) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(c.uniq, sizeof c.uniq, "%llx%05lx", (unsigned long long)ts.tv_sec,
             (unsigned long)(ts.tv_nsec / 10000) & 0xfffff);
  }
  size_t maxfiles = c.npart > 0 ? COPY_MAX_PARTITIONS : 1;
  c.files = arena_alloc(q->a, sizeof(cfile *) * maxfiles);
  c.nslots = 4096;
  c.slots = arena_alloc(q->a, sizeof(int) * c.nslots);
  outctx *ocs = arena_alloc(q->a, sizeof(outctx) * maxfiles);
  if (c.npart == 0)
    c.files[c.nfiles++] = file_new(&c, c.folder ? c.base : "", c.folder ? strlen(c.base) : 0);
  copy_sink s = {.c = &c, .ocs = ocs};
  rc = sql__exec_stream(q, p, on_batch, &s);
  if (rc < 0 && q->err_code != 0)
    *e = q->err;
  /* the result of an empty query: one empty object when not partitioned */
  if (rc == 0 && c.npart == 0 && c.files[0]->w == NULL && c.files[0]->seq == 0)
    rc = file_start(&c, c.files[0], &ocs[0], e);
  for (int i = 0; i < c.nfiles && rc == 0; i++)
    rc = file_end(&c, c.files[i], e);
  /* invariant (1): everything written; now make it visible */
  for (int i = 0; i < c.ndone && rc == 0; i++) {
    void *w = c.done[i].w;
    c.done[i].w = NULL;
    rc = src->put_commit(src->ctx, w, c.bucket, c.done[i].key, e);
  }
  if (rc == 0 && ac->table != NULL)
    rc = table_register(&c, ac, &ct, e, pos);
  copy_cleanup(&c, ocs);
  if (rc < 0)
    return rc;
  *result = result_plan(q, c.rows);
  return 0;
}
