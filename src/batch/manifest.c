/* batch/manifest.c -- a job's task list: read from a CSV manifest
 * (bucket,key[,versionId], keys URL-encoded), from an S3 Inventory
 * manifest.json and its CSV data files (gzip'd or not), or generated from
 * a bucket listing with S3JobManifestGenerator's filter.
 *
 * Why: a job runs over a fixed list fixed when it is prepared (AWS's
 * "Preparing" state); committing that list (task i -> its row) lets the
 * runners and a restart address tasks by index.
 *
 * Invariants:
 *   (1) Tasks are committed in batches of TASK_BATCH rows; a preparation
 *       interrupted by a crash starts again from the first row (rows are
 *       overwritten by index, so nothing is duplicated).
 *   (2) What a client controls is bounded: the manifest (and every
 *       inventory data file, unpacked) to BATCH_MAX_MANIFEST bytes, the
 *       tasks to BATCH_MAX_TASKS.
 *   (3) A task row is [bucket, key, versionId, key as in the manifest]:
 *       the key decoded for the store, and URL-encoded as AWS passes it to
 *       functions and writes it in reports.
 *
 * Start reading at batch__manifest_load().
 */
#include "batch/internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define TASK_BATCH 1000
#define CSV_FIELD_MAX 8192   /* bytes of one manifest field (a key is at most 1024, encoded 3072) */

typedef struct emitter {
  batch_system *s;
  const char *id;
  lmdb_ops ops;
  uint64_t n;
  arena *a;
  store_writer *out;        /* EnableManifestOutput: the generated manifest's CSV */
} emitter;

static int emit_flush(emitter *em, err *e)
{
  if (em->ops.n == 0)
    return 0;
  return batch__commit(em->s, &em->ops, e);
}

/* Adds task em->n: key is the decoded key, enc its manifest form. */
static int emit(emitter *em, const char *bucket, const char *key, const char *version,
                const char *enc, err *e)
{
  if (em->n >= BATCH_MAX_TASKS)
    return err_set(e, ERR_LIMIT_EXCEEDED, "the manifest has more than %u tasks",
                   BATCH_MAX_TASKS);
  json_t *row = json_pack("[s, s, s, s]", bucket, key, version != NULL ? version : "", enc);
  if (row == NULL)
    return err_set(e, ERR_INVALID, "task %llu of the manifest is not valid UTF-8",
                   (unsigned long long)em->n + 1);
  char k[64];
  size_t kl = batch__task_key(em->id, 't', em->n, k);
  char *v = json_dumps(row, JSON_COMPACT);
  json_decref(row);
  lmdb_ops_put_owned(&em->ops, em->s->db_tasks, k, kl, v, strlen(v));
  em->n++;
  if (em->out != NULL) {
    char *line = xasprintf("\"%s\",\"%s\"\n", bucket, enc); /* neither holds a quote */
    int rc = store_writer_write(em->out, line, strlen(line), e);
    free(line);
    if (rc != 0)
      return rc;
  }
  if (em->ops.n >= TASK_BATCH)
    return emit_flush(em, e);
  return 0;
}

/* ---- reading objects ---- */

/* The whole object bucket/key into *out (malloc'd), at most
 * BATCH_MAX_MANIFEST bytes; *etag (arena) gets its etag. */
static int object_slurp(batch_system *s, const char *bucket, const char *key, arena *a,
                        char **out, size_t *len, const char **etag, err *e)
{
  *out = NULL;
  store_object o;
  int fd = -1;
  int rc = store_object_get(s->st, bucket, key, a, &o, &fd, e);
  if (rc != 0)
    return rc;
  if (o.size > BATCH_MAX_MANIFEST) {
    if (fd >= 0)
      close(fd);
    return err_set(e, ERR_LIMIT_EXCEEDED, "the object '%s' of bucket '%s' is larger than %u bytes",
                   key, bucket, BATCH_MAX_MANIFEST);
  }
  char *p = xmalloc(o.size + 1);
  size_t got = 0;
  rc = store_object_read(&o, fd, 0, p, o.size, &got, e);
  if (fd >= 0)
    close(fd);
  if (rc != 0) {
    free(p);
    return rc;
  }
  p[got] = '\0';
  *out = p;
  *len = got;
  if (etag != NULL)
    *etag = o.etag;
  return 0;
}

/* Unpacks gzip data in place of *p when it starts with gzip's magic. */
static int maybe_gunzip(char **p, size_t *len, err *e)
{
  if (*len < 2 || (uint8_t)(*p)[0] != 0x1f || (uint8_t)(*p)[1] != 0x8b)
    return 0;
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 15 + 32) != Z_OK)
    return err_set(e, ERR_INTERNAL, "cannot start gzip");
  size_t cap = *len * 4 + 1024, n = 0;
  char *out = xmalloc(cap + 1);
  z.next_in = (Bytef *)*p;
  z.avail_in = (uInt)*len;
  int zr = Z_OK;
  while (zr != Z_STREAM_END) {
    if (n == cap) {
      if (cap >= BATCH_MAX_MANIFEST) {
        inflateEnd(&z);
        free(out);
        return err_set(e, ERR_LIMIT_EXCEEDED, "an unpacked manifest file is larger than %u bytes",
                       BATCH_MAX_MANIFEST);
      }
      cap = cap * 2 > BATCH_MAX_MANIFEST ? BATCH_MAX_MANIFEST : cap * 2;
      out = xrealloc(out, cap + 1);
    }
    z.next_out = (Bytef *)out + n;
    z.avail_out = (uInt)(cap - n);
    zr = inflate(&z, Z_NO_FLUSH);
    n = cap - z.avail_out;
    if (zr != Z_OK && zr != Z_STREAM_END) {
      inflateEnd(&z);
      free(out);
      return err_set(e, ERR_INVALID, "a manifest file is not valid gzip");
    }
    if (zr == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
      inflateEnd(&z);
      free(out);
      return err_set(e, ERR_INVALID, "a manifest file ends inside its gzip stream");
    }
  }
  inflateEnd(&z);
  out[n] = '\0';
  free(*p);
  *p = out;
  *len = n;
  return 0;
}

/* ---- CSV ---- */

/* One RFC 4180 record from p (n bytes left) into fields (strings, in a):
 * returns the bytes it took (0 at the end). */
static size_t csv_row(const char *p, size_t n, arena *a, const char **fields, size_t max,
                      size_t *nf)
{
  size_t i = 0;
  *nf = 0;
  if (n == 0)
    return 0;
  buf f;
  buf_init(&f, CSV_FIELD_MAX);
  for (;;) {
    buf_reset(&f);
    if (i < n && p[i] == '"') {
      i++;
      while (i < n) {
        if (p[i] == '"') {
          if (i + 1 < n && p[i + 1] == '"') {
            buf_append(&f, "\"", 1);
            i += 2;
            continue;
          }
          i++;
          break;
        }
        buf_append(&f, p + i, 1);
        i++;
      }
    }
    while (i < n && p[i] != ',' && p[i] != '\n' && p[i] != '\r') {
      buf_append(&f, p + i, 1);
      i++;
    }
    if (*nf < max)
      fields[(*nf)++] = f.len == CSV_FIELD_MAX ? NULL /* too long */
                                                : arena_strndup(a, f.len ? f.data : "", f.len);
    if (i < n && p[i] == ',') {
      i++;
      continue;
    }
    break;
  }
  if (i < n && p[i] == '\r')
    i++;
  if (i < n && p[i] == '\n')
    i++;
  buf_release(&f);
  return i;
}

/* Rows of a CSV text whose columns bucket, key, version are at the given
 * positions (version -1: none). */
static int csv_tasks(emitter *em, const char *text, size_t len, int cb, int ck, int cv,
                     const char *what, err *e)
{
  size_t off = 0;
  uint64_t line = 0;
  while (off < len) {
    const char *f[32];
    size_t nf;
    arena_free(em->a);
    em->a = arena_new();
    size_t used = csv_row(text + off, len - off, em->a, f, 32, &nf);
    if (used == 0)
      break;
    off += used;
    line++;
    if (nf == 1 && f[0][0] == '\0')
      continue; /* an empty line */
    int need = ck > cb ? ck : cb; /* a version column may be left off */
    if ((int)nf <= need)
      return err_set(e, ERR_INVALID, "line %llu of %s has %zu fields, expected %d",
                     (unsigned long long)line, what, nf, need + 1);
    for (size_t x = 0; x < nf; x++)
      if (f[x] == NULL)
        return err_set(e, ERR_INVALID, "line %llu of %s has a field longer than %d bytes",
                       (unsigned long long)line, what, CSV_FIELD_MAX - 1);
    const char *enc = f[ck];
    size_t kl;
    char *key = percent_decode(em->a, enc, strlen(enc), &kl);
    if (key == NULL || kl != strlen(key) || kl == 0 || kl > STORE_MAX_KEY)
      return err_set(e, ERR_INVALID, "line %llu of %s: the key '%.200s' is not a valid URL-encoded key",
                     (unsigned long long)line, what, enc);
    const char *ver = cv >= 0 && (size_t)cv < nf ? f[cv] : "";
    int rc = emit(em, f[cb], key, ver, enc, e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* "bucket" and "key" of "arn:aws:s3:::bucket/key" (in a). */
static int object_arn(const char *arn, arena *a, const char **bucket, const char **key, err *e)
{
  if (arn == NULL || !str_starts(arn, "arn:aws:s3:::"))
    return err_set(e, ERR_INVALID, "the manifest ObjectArn must be arn:aws:s3:::BUCKET/KEY");
  const char *p = arn + 13;
  const char *slash = strchr(p, '/');
  if (slash == NULL || slash == p || slash[1] == '\0')
    return err_set(e, ERR_INVALID, "the manifest ObjectArn must be arn:aws:s3:::BUCKET/KEY");
  *bucket = arena_strndup(a, p, (size_t)(slash - p));
  *key = slash + 1;
  return 0;
}

static int field_index(json_t *fields, const char *name)
{
  size_t i;
  json_t *v;
  json_array_foreach(fields, i, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
      return (int)i;
  }
  return -1;
}

int batch__manifest_check(batch_system *s, json_t *req, err *e)
{
  json_t *m = json_object_get(req, "Manifest");
  json_t *g = json_object_get(req, "ManifestGenerator");
  if ((m == NULL) == (g == NULL))
    return err_set(e, ERR_INVALID, "give either Manifest or ManifestGenerator");
  arena *a = arena_new();
  int rc = 0;
  if (m != NULL) {
    json_t *spec = json_object_get(m, "Spec");
    const char *fmt = batch__str(spec, "Format");
    json_t *fields = json_object_get(spec, "Fields");
    const char *bucket, *key;
    if (fmt == NULL || (strcmp(fmt, "S3BatchOperations_CSV_20180820") != 0 &&
                        strcmp(fmt, "S3InventoryReport_CSV_20161130") != 0))
      rc = err_set(e, ERR_INVALID, "the manifest Format must be S3BatchOperations_CSV_20180820 or "
                                   "S3InventoryReport_CSV_20161130");
    else if (strcmp(fmt, "S3BatchOperations_CSV_20180820") == 0 &&
             (!json_is_array(fields) || field_index(fields, "Bucket") < 0 ||
              field_index(fields, "Key") < 0 || json_array_size(fields) > 3))
      rc = err_set(e, ERR_INVALID, "a CSV manifest's Fields must be Bucket, Key[, VersionId]");
    else if ((rc = object_arn(batch__str(json_object_get(m, "Location"), "ObjectArn"), a, &bucket,
                              &key, e)) == 0 &&
             batch__str(json_object_get(m, "Location"), "ETag") == NULL)
      rc = err_set(e, ERR_INVALID, "the manifest Location needs the ETag of the manifest object");
  } else {
    json_t *gen = json_object_get(g, "S3JobManifestGenerator");
    char b[80];
    const char *bucket = batch__bucket_of_arn(batch__str(gen, "SourceBucket"), b, sizeof b);
    store_bucket sb;
    if (!json_is_object(gen))
      rc = err_set(e, ERR_INVALID, "ManifestGenerator needs S3JobManifestGenerator");
    else if (bucket == NULL)
      rc = err_set(e, ERR_INVALID, "SourceBucket must be a bucket ARN (arn:aws:s3:::NAME)");
    else if (store_bucket_get(s->st, bucket, a, &sb, e) != 0)
      rc = err_set(e, ERR_INVALID, "the source bucket '%s' does not exist", bucket);
    const char *eo = batch__str(gen, "EnableManifestOutput");
    if (eo != NULL) /* XML text: kept as the boolean it is */
      json_object_set_new(gen, "EnableManifestOutput", json_boolean(strcmp(eo, "true") == 0));
    bool output = json_is_true(json_object_get(gen, "EnableManifestOutput"));
    json_t *loc = json_object_get(gen, "ManifestOutputLocation");
    char ob[80];
    const char *fmt = batch__str(loc, "ManifestFormat");
    if (rc == 0 && output) {
      const char *obucket = batch__bucket_of_arn(batch__str(loc, "Bucket"), ob, sizeof ob);
      if (obucket == NULL)
        rc = err_set(e, ERR_INVALID, "EnableManifestOutput needs a ManifestOutputLocation Bucket "
                                     "ARN");
      else if (store_bucket_get(s->st, obucket, a, &sb, e) != 0)
        rc = err_set(e, ERR_INVALID, "the manifest output bucket '%s' does not exist", obucket);
      else if (fmt != NULL && strcmp(fmt, "S3InventoryReport_CSV_20211130") != 0)
        rc = err_set(e, ERR_INVALID, "ManifestFormat must be S3InventoryReport_CSV_20211130");
    }
    json_t *f = json_object_get(gen, "Filter");
    const char *times[] = {"CreatedAfter", "CreatedBefore"};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
      const char *t = batch__str(f, times[i]);
      int64_t ms;
      if (t != NULL && !time_parse_iso8601(t, &ms))
        rc = err_set(e, ERR_INVALID, "%s must be an ISO 8601 time", times[i]);
    }
    const char *sizes[] = {"ObjectSizeGreaterThanBytes", "ObjectSizeLessThanBytes"};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
      const char *t = batch__str(f, sizes[i]);
      char *end;
      if (t != NULL && (strtoll(t, &end, 10) < 0 || end == t || *end != '\0'))
        rc = err_set(e, ERR_INVALID, "%s must be a number of bytes", sizes[i]);
    }
  }
  arena_free(a);
  return rc;
}

static int load_csv(emitter *em, json_t *m, const char **fcode, err *e)
{
  json_t *loc = json_object_get(m, "Location");
  const char *bucket, *key, *etag;
  int rc = object_arn(batch__str(loc, "ObjectArn"), em->a, &bucket, &key, e);
  if (rc != 0)
    return rc;
  arena *a = arena_new();
  char *text = NULL;
  size_t len;
  rc = object_slurp(em->s, bucket, key, a, &text, &len, &etag, e);
  if (rc == ERR_NO_SUCH_KEY || rc == ERR_NO_SUCH_BUCKET) {
    *fcode = "ManifestNotFound";
    rc = err_set(e, rc, "the manifest object '%s' of bucket '%s' does not exist", key, bucket);
  }
  const char *want = batch__str(loc, "ETag");
  if (rc == 0 && want != NULL) {
    size_t wl = strlen(want);
    if (wl >= 2 && want[0] == '"')
      want = arena_strndup(a, want + 1, wl - 2);
    if (strcmp(want, etag) != 0) {
      *fcode = "ManifestETagMismatch";
      rc = err_set(e, ERR_PRECONDITION, "the manifest's ETag is '%s', not '%s' as the job says",
                   etag, want);
    }
  }
  json_t *spec = json_object_get(m, "Spec");
  if (rc == 0 && strcmp(batch__str(spec, "Format"), "S3BatchOperations_CSV_20180820") == 0) {
    json_t *fields = json_object_get(spec, "Fields");
    rc = csv_tasks(em, text, len, field_index(fields, "Bucket"), field_index(fields, "Key"),
                   field_index(fields, "VersionId"), "the manifest", e);
  } else if (rc == 0) {
    /* S3 Inventory: manifest.json names the data files and their schema */
    json_t *inv = json_loadb(text, len, 0, NULL);
    const char *schema = batch__str(inv, "fileSchema");
    const char *dest = batch__str(inv, "destinationBucket");
    json_t *files = json_object_get(inv, "files");
    char db[80];
    const char *dbucket = batch__bucket_of_arn(dest, db, sizeof db);
    if (inv == NULL || schema == NULL || !json_is_array(files) || dbucket == NULL) {
      rc = err_set(e, ERR_INVALID, "the inventory manifest.json needs fileSchema, files and "
                                   "destinationBucket");
    } else {
      int cb = -1, ck = -1, cv = -1, col = 0;
      for (const char *p = schema; *p != '\0'; col++) {
        size_t n = strcspn(p, ",");
        const char *t = p;
        while (n > 0 && *t == ' ')
          t++, n--;
        while (n > 0 && t[n - 1] == ' ')
          n--;
        if (n == 6 && memcmp(t, "Bucket", 6) == 0)
          cb = col;
        else if (n == 3 && memcmp(t, "Key", 3) == 0)
          ck = col;
        else if (n == 9 && memcmp(t, "VersionId", 9) == 0)
          cv = col;
        p += strcspn(p, ",");
        if (*p == ',')
          p++;
      }
      if (cb < 0 || ck < 0)
        rc = err_set(e, ERR_INVALID, "the inventory fileSchema must name Bucket and Key");
      size_t i;
      json_t *file;
      json_array_foreach(files, i, file) {
        if (rc != 0)
          break;
        const char *fk = batch__str(file, "key");
        if (fk == NULL) {
          rc = err_set(e, ERR_INVALID, "an inventory file has no key");
          break;
        }
        char *data = NULL;
        size_t dl;
        rc = object_slurp(em->s, dbucket, fk, a, &data, &dl, NULL, e);
        if (rc == ERR_NO_SUCH_KEY || rc == ERR_NO_SUCH_BUCKET) {
          *fcode = "ManifestNotFound";
          rc = err_set(e, rc, "the inventory file '%s' of bucket '%s' does not exist", fk, dbucket);
        }
        if (rc == 0)
          rc = maybe_gunzip(&data, &dl, e);
        if (rc == 0)
          rc = csv_tasks(em, data, dl, cb, ck, cv, fk, e);
        free(data);
      }
    }
    json_decref(inv);
  }
  free(text);
  arena_free(a);
  return rc;
}

static bool any_match(json_t *list, const char *key, int how)
{
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v) {
    const char *t = json_string_value(v);
    if (t == NULL)
      continue;
    size_t tl = strlen(t), kl = strlen(key);
    if ((how == 0 && str_starts(key, t)) ||
        (how == 1 && kl >= tl && memcmp(key + kl - tl, t, tl) == 0) ||
        (how == 2 && strstr(key, t) != NULL))
      return true;
  }
  return false;
}

/* Commits the generated manifest (EnableManifestOutput): PREFIX/job-ID/
 * data/ID.csv and PREFIX/job-ID/manifest.json in the S3 Inventory shape;
 * desc gets DescribeJob's GeneratedManifestDescriptor. */
static int output_commit(emitter *em, json_t *gen, json_t **desc, err *e)
{
  json_t *loc = json_object_get(gen, "ManifestOutputLocation");
  char ob[80], sb[80];
  const char *bucket = batch__bucket_of_arn(batch__str(loc, "Bucket"), ob, sizeof ob);
  const char *source = batch__bucket_of_arn(batch__str(gen, "SourceBucket"), sb, sizeof sb);
  const char *prefix = batch__str(loc, "ManifestPrefix");
  size_t pl = prefix != NULL ? strlen(prefix) : 0;
  if (pl > 0 && prefix[pl - 1] == '/')
    pl--;
  arena *a = arena_new();
  const char *base = pl > 0 ? arena_sprintf(a, "%.*s/job-%s", (int)pl, prefix, em->id)
                            : arena_sprintf(a, "job-%s", em->id);
  const char *data_key = arena_sprintf(a, "%s/data/%s.csv", base, em->id);
  uint8_t d[16];
  char md5hex[33];
  store_writer_md5(em->out, d);
  hex_encode(d, 16, md5hex);
  uint64_t size = store_writer_size(em->out);
  str_pair csv_type = {"content-type", "text/csv"};
  int rc = store_object_commit(em->out, bucket, data_key, md5hex, &csv_type, 1, NULL, 0, a, NULL,
                               e);
  char *text = NULL;
  store_writer *w = NULL;
  if (rc == 0) {
    char when[25];
    time_format_iso8601_ms(time_now_ms(), when);
    json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:I, s:s}]}", "sourceBucket",
                          source, "destinationBucket", batch__str(loc, "Bucket"), "version",
                          "2021-11-30", "creationTimestamp", when, "fileFormat", "CSV",
                          "fileSchema", "Bucket, Key", "files", "key", data_key, "size",
                          (json_int_t)size, "MD5checksum", md5hex);
    text = json_dumps(m, JSON_INDENT(2));
    json_decref(m);
    rc = store_writer_new(em->s->st, &w, e);
  }
  if (rc == 0)
    rc = store_writer_encrypt_default(em->s->st, w, bucket, NULL, e);
  if (rc == 0)
    rc = store_writer_write(w, text, strlen(text), e);
  if (rc == 0) {
    store_writer_md5(w, d);
    hex_encode(d, 16, md5hex);
    const char *mkey = arena_sprintf(a, "%s/manifest.json", base);
    str_pair json_type = {"content-type", "application/json"};
    rc = store_object_commit(w, bucket, mkey, md5hex, &json_type, 1, NULL, 0, a, NULL, e);
    if (rc == 0)
      *desc = json_pack("{s:s, s:{s:s, s:s}}", "Format", "S3InventoryReport_CSV_20211130",
                        "Location", "ObjectArn", arena_sprintf(a, "arn:aws:s3:::%s/%s", bucket, mkey),
                        "ETag", md5hex);
  }
  store_writer_free(w);
  free(text);
  arena_free(a);
  return rc;
}

static int load_generated(emitter *em, json_t *gen, json_t **desc, err *e)
{
  char b[80];
  const char *bucket = batch__bucket_of_arn(batch__str(gen, "SourceBucket"), b, sizeof b);
  json_t *f = json_object_get(gen, "Filter");
  json_t *knc = json_object_get(f, "KeyNameConstraint");
  json_t *pre = json_object_get(knc, "MatchAnyPrefix");
  json_t *suf = json_object_get(knc, "MatchAnySuffix");
  json_t *sub = json_object_get(knc, "MatchAnySubstring");
  int64_t after = INT64_MIN, before = INT64_MAX;
  long long gt = -1, lt = -1;
  if (batch__str(f, "CreatedAfter") != NULL)
    time_parse_iso8601(batch__str(f, "CreatedAfter"), &after);
  if (batch__str(f, "CreatedBefore") != NULL)
    time_parse_iso8601(batch__str(f, "CreatedBefore"), &before);
  if (batch__str(f, "ObjectSizeGreaterThanBytes") != NULL)
    gt = atoll(batch__str(f, "ObjectSizeGreaterThanBytes"));
  if (batch__str(f, "ObjectSizeLessThanBytes") != NULL)
    lt = atoll(batch__str(f, "ObjectSizeLessThanBytes"));
  /* one prefix narrows the listing itself */
  const char *lprefix = json_array_size(pre) == 1 ? json_string_value(json_array_get(pre, 0)) : NULL;
  char *after_key = NULL;
  int rc = 0;
  if (json_is_true(json_object_get(gen, "EnableManifestOutput"))) {
    char ob[80];
    const char *out_bucket = batch__bucket_of_arn(
        batch__str(json_object_get(gen, "ManifestOutputLocation"), "Bucket"), ob, sizeof ob);
    rc = store_writer_new(em->s->st, &em->out, e);
    if (rc == 0)
      rc = store_writer_encrypt_default(em->s->st, em->out, out_bucket, NULL, e);
  }
  for (; rc == 0;) {
    arena *a = arena_new();
    store_list_params p = {.prefix = lprefix, .after = after_key,
                           .max_keys = STORE_MAX_LIST_KEYS};
    store_list_result r;
    rc = store_object_list(em->s->st, bucket, &p, a, &r, e);
    for (size_t i = 0; rc == 0 && i < r.nobjects; i++) {
      store_object *o = &r.objects[i];
      if (json_array_size(pre) > 0 && !any_match(pre, o->key, 0))
        continue;
      if (json_array_size(suf) > 0 && !any_match(suf, o->key, 1))
        continue;
      if (json_array_size(sub) > 0 && !any_match(sub, o->key, 2))
        continue;
      if (o->mtime_ms <= after || o->mtime_ms >= before)
        continue;
      if ((gt >= 0 && o->size <= (uint64_t)gt) || (lt >= 0 && o->size >= (uint64_t)lt))
        continue;
      rc = emit(em, bucket, o->key, "", uri_encode(a, o->key, strlen(o->key), true), e);
    }
    free(after_key);
    after_key = rc == 0 && r.truncated ? xstrdup(r.next_after) : NULL;
    arena_free(a);
    if (after_key == NULL)
      break;
  }
  free(after_key);
  if (rc == 0 && em->out != NULL)
    rc = output_commit(em, gen, desc, e);
  em->out = store_writer_free(em->out);
  return rc;
}

int batch__manifest_load(batch_system *s, const char *id, json_t *rec, uint64_t *total,
                         json_t **desc, const char **fcode, err *e)
{
  *desc = NULL;
  emitter em = {.s = s, .id = id, .a = arena_new()};
  *fcode = "ManifestInvalid";
  json_t *m = json_object_get(rec, "Manifest");
  int rc = m != NULL ? load_csv(&em, m, fcode, e)
                     : load_generated(&em, json_object_get(json_object_get(rec, "ManifestGenerator"),
                                                           "S3JobManifestGenerator"),
                                      desc, e);
  if (rc == 0)
    rc = emit_flush(&em, e);
  lmdb_ops_release(&em.ops);
  arena_free(em.a);
  *total = em.n;
  return rc;
}
