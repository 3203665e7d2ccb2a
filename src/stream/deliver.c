/* stream/deliver.c -- the delivery thread: turns Firehose buffers into
 * objects once they reach their size (BufferingHints.SizeInMBs) or age
 * (IntervalInSeconds), through the Lambda processor and dynamic
 * partitioning, compressed, named as Firehose names them.
 *
 * Why one thread: deliveries are few and large; one thread keeps each
 * stream's objects in arrival order and needs no locking beyond picking
 * the next stream that is due.
 *
 * One delivery, for one stream (deliver_one):
 *   1. read the oldest buffered records, up to the size hint (at least one)
 *   2. the Lambda processor, in batches of its BufferSizeInMBs: each record
 *      comes back Ok (maybe changed, maybe with partition keys), Dropped or
 *      ProcessingFailed
 *   3. partition keys: the processor's metadata, then the
 *      MetadataExtractionQuery (a jq subset) over the record's JSON
 *   4. one object per partition: records concatenated, compressed, written
 *      through the store (bucket notifications fire), or with format
 *      conversion on, converted to one Parquet file (convert.c) against
 *      the table's columns (looked up once per delivery through
 *      stream_options.schema_lookup); failed records as JSON lines under
 *      the error prefix; source records to the backup bucket when S3 backup
 *      is on. Each object is authorized as the stream's role
 *      (stream_options.authorize: s3:PutObject) and staged (written, not
 *      committed); they are committed together once all are staged, so a
 *      refused one leaves none behind (see outbox)
 *   5. one commit removes the delivered records from the buffer
 *
 * Invariants:
 *   (1) Records leave the buffer only after every object holding them is
 *       durable (store_object_commit returned 0). A crash in between
 *       delivers them again: at least once, never lost.
 *   (2) An object's time (prefix and name) is the arrival time of its
 *       oldest record, in UTC.
 *   (3) A failed write (no bucket, no space, the role refused) keeps the
 *       records and retries the stream after RETRY_MS (logged once per run
 *       of failures with Firehose's error code, S3.AccessDenied, ...); puts meanwhile fill the buffer up to
 *       STREAM_MAX_BUFFERED and are then refused (back-pressure).
 *
 * Start reading at stream__deliver_main().
 */
#include "internal.h"

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/text.h"
#include "fn/fn.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <snappy-c.h>
#include <zlib.h>

#define RETRY_MS 5000
#define TICK_MS 1000
#define TRIM_EVERY_MS 60000
#define PULL_MAX (8u << 20) /* bytes moved from a Kinesis source per tick */
#define BODY_MAX (512u << 20) /* bytes of one object (a buffer is at most 128 MiB) */

/* ---- one delivery ---- */

enum outcome { OUT_OK, OUT_DROPPED, OUT_FAILED };

typedef struct drec {
  uint64_t seq;
  int64_t ts;
  const uint8_t *src;        /* the source record */
  size_t src_len;
  const uint8_t *data;       /* after processing */
  size_t len;
  enum outcome out;
  const char *error_type;    /* "processing-failed", ... */
  const char *error_code;
  const char *error_msg;
  json_t *keys;              /* partition keys, or NULL */
  const char *group;         /* the partition's identity */
} drec;

static void fail_all(drec *r, size_t n, const char *code, const char *msg, arena *a)
{
  for (size_t i = 0; i < n; i++) {
    r[i].out = OUT_FAILED;
    r[i].error_type = "processing-failed";
    r[i].error_code = code;
    r[i].error_msg = arena_strdup(a, msg);
  }
}

static bool stopping(void *ctx)
{
  stream_system *s = ctx;
  pthread_mutex_lock(&s->mu);
  bool v = s->stopping;
  pthread_mutex_unlock(&s->mu);
  return v;
}

/* Sends r[0..n) to the function in Firehose's transformation event and
 * applies its answer. Returns 0, or ERR_UNAVAILABLE / ERR_THROTTLED when
 * the delivery should wait and try again (tarn stopping, no concurrency
 * left): then no record's outcome is set. */
static int process_batch(stream_system *s, const char *stream_name, const dconfig *cfg,
                         drec *r, size_t n, arena *a)
{
  if (s->fn == NULL) {
    fail_all(r, n, "Lambda.InvokeFailed", "functions are off on this server", a);
    return 0;
  }
  err ae = {0};
  if (s->authorize != NULL &&
      s->authorize(s->authorize_ctx, cfg->role_arn, "lambda:InvokeFunction", cfg->lambda_arn,
                   &ae) != 0) {
    fail_all(r, n, "Lambda.InvokeAccessDenied", ae.msg, a);
    return 0;
  }
  char arn[200];
  snprintf(arn, sizeof arn, "arn:aws:firehose:us-east-1:000000000000:deliverystream/%s",
           stream_name);
  char inv[37];
  uuid_v4(inv);
  json_t *records = json_array();
  for (size_t i = 0; i < n; i++) {
    char *b64 = xmalloc(base64_encoded_len(r[i].src_len));
    base64_encode(r[i].src, r[i].src_len, b64);
    char id[40];
    snprintf(id, sizeof id, "%020" PRIu64, r[i].seq);
    json_array_append_new(records, json_pack("{s:s, s:I, s:s}", "recordId", id,
                                             "approximateArrivalTimestamp",
                                             (json_int_t)r[i].ts, "data", b64));
    free(b64);
  }
  json_t *ev = json_pack("{s:s, s:s, s:s, s:o}", "invocationId", inv, "deliveryStreamArn", arn,
                         "region", "us-east-1", "records", records);
  char *payload = json_dumps(ev, JSON_COMPACT);
  json_decref(ev);
  fn_answer w;
  err e = {0};
  int rc = fn_invoke_wait(s->fn, cfg->lambda_arn, NULL, payload, stopping, s, &w, &e);
  free(payload);
  if (rc == ERR_UNAVAILABLE || rc == ERR_THROTTLED) {
    buf_release(&w.payload);
    return rc;
  }
  if (rc != 0) {
    fail_all(r, n, "Lambda.InvokeFailed", e.msg, a);
    buf_release(&w.payload);
    return 0;
  }
  if (w.function_error) {
    fail_all(r, n, "Lambda.FunctionError", "The Lambda function was successfully invoked but "
             "it returned an error result.", a);
    buf_release(&w.payload);
    return 0;
  }
  json_t *ans = json_loadb(w.payload.data != NULL ? w.payload.data : "", w.payload.len, 0, NULL);
  buf_release(&w.payload);
  json_t *out = json_object_get(ans, "records");
  if (!json_is_array(out)) {
    fail_all(r, n, "Lambda.FunctionError", "the function's answer has no 'records' array", a);
    json_decref(ans);
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    char id[40];
    snprintf(id, sizeof id, "%020" PRIu64, r[i].seq);
    json_t *match = NULL;
    size_t j;
    json_t *o;
    json_array_foreach(out, j, o)
      if (strcmp(stream__str(json_string_value(json_object_get(o, "recordId"))), id) == 0) {
        match = o;
        break;
      }
    const char *result = json_string_value(json_object_get(match, "result"));
    if (match == NULL) {
      fail_all(&r[i], 1, "Lambda.MissingRecordId", "The function's answer leaves out this "
               "record's recordId.", a);
      continue;
    }
    if (result != NULL && strcmp(result, "Dropped") == 0) {
      r[i].out = OUT_DROPPED;
      continue;
    }
    if (result == NULL || strcmp(result, "Ok") != 0) {
      bool known = result != NULL && strcmp(result, "ProcessingFailed") == 0;
      fail_all(&r[i], 1, known ? "Lambda.ProcessingFailedStatus" : "Lambda.InvalidResult",
               known ? "ProcessingFailed status set for record" : "the result is not Ok, "
               "Dropped or ProcessingFailed", a);
      continue;
    }
    const char *b64 = json_string_value(json_object_get(match, "data"));
    size_t blen = b64 != NULL ? strlen(b64) : 0;
    uint8_t *data = arena_alloc(a, blen + 1);
    long dl = b64 != NULL ? base64_decode(b64, blen, data, blen + 1) : -1;
    if (dl < 0) {
      fail_all(&r[i], 1, "Lambda.InvalidData", "the record's data is not base64", a);
      continue;
    }
    r[i].data = data;
    r[i].len = (size_t)dl;
    json_t *pk = json_object_get(json_object_get(match, "metadata"), "partitionKeys");
    if (json_is_object(pk)) {
      r[i].keys = json_object();
      const char *k;
      json_t *v;
      json_object_foreach(pk, k, v)
        if (json_is_string(v))
          json_object_set(r[i].keys, k, v);
    }
  }
  json_decref(ans);
  return 0;
}

/* Deflates src into out: gzip framing (bits 31) or raw (bits -15, for ZIP). */
static int deflate_into(const void *src, size_t n, int bits, buf *out, err *e)
{
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return err_set(e, ERR_INTERNAL, "cannot start deflate");
  uLong bound = deflateBound(&z, (uLong)n);
  char *dst = buf_extend(out, bound);
  if (dst == NULL) {
    deflateEnd(&z);
    return err_set(e, ERR_ENTITY_TOO_LARGE, "an object would pass %u bytes", BODY_MAX);
  }
  z.next_in = (Bytef *)src;
  z.avail_in = (uInt)n;
  z.next_out = (Bytef *)dst;
  z.avail_out = (uInt)bound;
  int zr = deflate(&z, Z_FINISH);
  size_t produced = bound - z.avail_out;
  deflateEnd(&z);
  out->len -= bound - produced;
  return zr == Z_STREAM_END ? 0 : err_set(e, ERR_INTERNAL, "deflate failed");
}

static void le16(buf *b, unsigned v)
{
  uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  buf_append(b, p, 2);
}

static void le32(buf *b, uint32_t v)
{
  uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  buf_append(b, p, 4);
}

static void be32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* A ZIP archive of one deflated entry named name (a local header, the
 * data, the central directory and its end; no ZIP64: bodies are bounded
 * far below 4 GiB). */
static int zip_into(const void *src, size_t n, const char *name, buf *out, err *e)
{
  uint32_t crc = crc32_update(0, src, n);
  size_t nlen = strlen(name);
  size_t start = out->len;
  le32(out, 0x04034b50);
  le16(out, 20);
  le16(out, 0);
  le16(out, 8);             /* deflate */
  le16(out, 0);
  le16(out, 0x21);          /* 1980-01-01 */
  le32(out, crc);
  size_t sizes = out->len;
  le32(out, 0);
  le32(out, (uint32_t)n);
  le16(out, (unsigned)nlen);
  le16(out, 0);
  buf_append(out, name, nlen);
  size_t data = out->len;
  int rc = deflate_into(src, n, -15, out, e);
  if (rc != 0)
    return rc;
  uint32_t csize = (uint32_t)(out->len - data);
  uint8_t *cs = (uint8_t *)out->data + sizes;
  cs[0] = (uint8_t)csize;
  cs[1] = (uint8_t)(csize >> 8);
  cs[2] = (uint8_t)(csize >> 16);
  cs[3] = (uint8_t)(csize >> 24);
  size_t central = out->len;
  le32(out, 0x02014b50);
  le16(out, 20);
  le16(out, 20);
  le16(out, 0);
  le16(out, 8);
  le16(out, 0);
  le16(out, 0x21);
  le32(out, crc);
  le32(out, csize);
  le32(out, (uint32_t)n);
  le16(out, (unsigned)nlen);
  le16(out, 0);
  le16(out, 0);
  le16(out, 0);
  le16(out, 0);
  le32(out, 0);
  le32(out, (uint32_t)(start));
  buf_append(out, name, nlen);
  size_t cdlen = out->len - central;
  le32(out, 0x06054b50);
  le16(out, 0);
  le16(out, 0);
  le16(out, 1);
  le16(out, 1);
  le32(out, (uint32_t)cdlen);
  le32(out, (uint32_t)(central - start));
  le16(out, 0);
  return 0;
}

/* Snappy: the framing format (Snappy) or Hadoop's blocks (HADOOP_SNAPPY). */
static int snappy_into(const void *src, size_t n, bool hadoop, buf *out, err *e)
{
  static const uint8_t ident[] = {0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y'};
  const uint8_t *p = src;
  size_t block = hadoop ? (256u << 10) : 65536;
  if (!hadoop)
    buf_append(out, ident, sizeof ident);
  for (size_t off = 0; off < n || (off == 0 && hadoop && n == 0); off += block) {
    size_t len = n - off < block ? n - off : block;
    size_t max = snappy_max_compressed_length(len);
    size_t head = 8; /* Hadoop: two lengths; framing: type, length, CRC */
    uint8_t *h = (uint8_t *)buf_extend(out, head + max);
    if (h == NULL)
      return err_set(e, ERR_ENTITY_TOO_LARGE, "an object would pass %u bytes", BODY_MAX);
    size_t clen = max;
    if (snappy_compress((const char *)p + off, len, (char *)h + head, &clen) != SNAPPY_OK)
      return err_set(e, ERR_INTERNAL, "snappy failed");
    if (hadoop) {
      be32(h, (uint32_t)len);
      be32(h + 4, (uint32_t)clen);
    } else {
      uint32_t crc = crc32c_update(0, p + off, len);
      uint32_t masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
      size_t chunk = clen + 4;
      h[0] = 0x00;
      h[1] = (uint8_t)chunk;
      h[2] = (uint8_t)(chunk >> 8);
      h[3] = (uint8_t)(chunk >> 16);
      h[4] = (uint8_t)masked;
      h[5] = (uint8_t)(masked >> 8);
      h[6] = (uint8_t)(masked >> 16);
      h[7] = (uint8_t)(masked >> 24);
    }
    out->len -= max - clen;
    if (n == 0)
      break;
  }
  return 0;
}

/* Compresses body into out as cfg says; name names a ZIP's one entry. */
static int compress_body(enum compression comp, const buf *body, const char *name, buf *out,
                         err *e)
{
  const char *src = body->data != NULL ? body->data : "";
  switch (comp) {
  case COMP_NONE:
    return buf_append(out, src, body->len) == 0
               ? 0
               : err_set(e, ERR_ENTITY_TOO_LARGE, "an object would pass %u bytes", BODY_MAX);
  case COMP_GZIP:
    return deflate_into(src, body->len, 31, out, e);
  case COMP_ZIP:
    return zip_into(src, body->len, name, out, e);
  case COMP_SNAPPY:
  case COMP_HADOOP_SNAPPY:
    return snappy_into(src, body->len, comp == COMP_HADOOP_SNAPPY, out, e);
  }
  return err_set(e, ERR_INTERNAL, "unknown compression");
}

/* The name's ending: of the delivered objects (data), or of the error and
 * backup objects (which hold source records, never converted). */
static const char *extension(const dconfig *cfg, bool data)
{
  static const char *const ext[] = {"", ".gz", ".zip", ".snappy", ".snappy"};
  if (cfg->conv != NULL)
    return !data ? "" : cfg->extension != NULL ? cfg->extension : ".parquet";
  if (cfg->extension != NULL)
    return cfg->extension;
  return ext[cfg->comp];
}

/* The objects of one delivery, written but not yet committed: each one is
 * authorized as the stream's role before its bytes are written, and they
 * are committed together at the end, so a refused object leaves none behind
 * (the delivery is tried again). A writer may hold an open blob: past
 * OUTBOX_MAX objects (dynamic partitioning into that many partitions) the
 * staged ones are committed early, and only a refusal after that leaves
 * some written (they are written again when the delivery is retried). */
#define OUTBOX_MAX 256
typedef struct staged {
  store_writer *w;
  const char *bucket, *key;   /* in the delivery's arena */
  char etag[33];
} staged;

typedef struct outbox {
  staged *v;
  size_t n, cap;
} outbox;

/* Frees the writers (the uncommitted bytes go). */
static void outbox_release(outbox *ob)
{
  for (size_t i = 0; i < ob->n; i++)
    store_writer_free(ob->v[i].w);
  free(ob->v);
  memset(ob, 0, sizeof *ob);
}

/* Commits the staged objects in order and empties the outbox. */
static int outbox_commit(stream_system *s, outbox *ob, arena *a, err *e)
{
  int rc = 0;
  for (size_t i = 0; i < ob->n && rc == 0; i++) {
    rc = store_object_commit(ob->v[i].w, ob->v[i].bucket, ob->v[i].key, ob->v[i].etag, NULL, 0,
                             NULL, 0, a, NULL, e);
    if (rc == 0) {
      pthread_mutex_lock(&s->mu);
      s->objects++;
      pthread_mutex_unlock(&s->mu);
    }
  }
  outbox_release(ob);
  return rc;
}

/* Stages one object: prefix + "<stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid><ext>",
 * to be written as role. */
static int write_object(stream_system *s, const dconfig *cfg, const char *bucket,
                        const char *role, const char *prefix, const char *stream_name,
                        int64_t ts, const buf *body, bool data, outbox *ob, arena *a, err *e)
{
  time_t t = (time_t)(ts / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char uuid[37];
  uuid_v4(uuid);
  const char *base = arena_sprintf(a, "%s-%" PRIu64 "-%04d-%02d-%02d-%02d-%02d-%02d-%s",
                                   stream_name, cfg->version, tm.tm_year + 1900, tm.tm_mon + 1,
                                   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, uuid);
  const char *key = arena_sprintf(a, "%s%s%s", prefix, base, extension(cfg, data));
  int rc = 0;
  if (s->authorize != NULL &&
      (rc = s->authorize(s->authorize_ctx, role, "s3:PutObject",
                         arena_sprintf(a, "arn:aws:s3:::%s/%s", bucket, key), e)) != 0)
    return rc;
  if (ob->n >= OUTBOX_MAX && (rc = outbox_commit(s, ob, a, e)) != 0)
    return rc;
  buf packed;
  buf_init(&packed, BODY_MAX);
  rc = compress_body(cfg->comp, body, base, &packed, e);
  store_writer *w = NULL;
  if (rc == 0)
    rc = store_writer_new(s->st, &w, e);
  if (rc == 0)
    rc = store_writer_encrypt_default(s->st, w, bucket, NULL, e);
  if (rc == 0 && packed.len > 0)
    rc = store_writer_write(w, packed.data, packed.len, e);
  if (rc == 0) {
    if (ob->n == ob->cap) {
      ob->cap = ob->cap ? ob->cap * 2 : 8;
      ob->v = xrealloc(ob->v, ob->cap * sizeof *ob->v);
    }
    staged *st = &ob->v[ob->n++];
    uint8_t md[16];
    store_writer_md5(w, md);
    hex_encode(md, 16, st->etag);
    st->w = w;
    st->bucket = arena_strdup(a, bucket);
    st->key = key;
    w = NULL;
  }
  store_writer_free(w);
  buf_release(&packed);
  return rc;
}

/* The error prefix for an error type: ErrorOutputPrefix evaluated, or
 * Firehose's default "<type>/YYYY/MM/dd/HH/". */
static const char *error_prefix(const dconfig *cfg, const char *type, int64_t ts, arena *a,
                                err *e)
{
  if (cfg->error_prefix == NULL) {
    return stream__prefix_eval(arena_sprintf(a, "%s/!{timestamp:yyyy/MM/dd/HH/}", type), ts,
                               type, NULL, a, e);
  }
  const char *p = cfg->error_prefix;
  if (strstr(p, "!{") == NULL)
    p = arena_sprintf(a, "%s!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH/}", p);
  return stream__prefix_eval(p, ts, type, NULL, a, e);
}

/* The table of a format conversion error record ("dataCatalogTable"). */
static json_t *catalog_table(const conv_config *c)
{
  json_t *o = json_object();
  if (c == NULL)
    return o;
  json_object_set_new(o, "catalogId",
                      json_string(c->catalog_id != NULL ? c->catalog_id : "000000000000"));
  json_object_set_new(o, "databaseName", json_string(c->database));
  json_object_set_new(o, "tableName", json_string(c->table));
  json_object_set_new(o, "region", json_string(c->region != NULL ? c->region : "us-east-1"));
  json_object_set_new(o, "versionId",
                      json_string(c->version_id != NULL ? c->version_id : "LATEST"));
  if (c->role_arn != NULL)
    json_object_set_new(o, "roleArn", json_string(c->role_arn));
  return o;
}

static int write_errors(stream_system *s, const dconfig *cfg, const char *stream_name, drec *r,
                        size_t n, outbox *ob, arena *a, err *e)
{
  static const char *const types[] = {"processing-failed", "partitioning-failed",
                                      "format-conversion-failed"};
  for (size_t t = 0; t < 3; t++) {
    buf body;
    buf_init(&body, BODY_MAX);
    int64_t oldest = 0;
    for (size_t i = 0; i < n; i++) {
      if (r[i].out != OUT_FAILED || strcmp(r[i].error_type, types[t]) != 0)
        continue;
      if (oldest == 0)
        oldest = r[i].ts;
      char *b64 = xmalloc(base64_encoded_len(r[i].src_len));
      base64_encode(r[i].src, r[i].src_len, b64);
      json_t *o;
      if (t == 2) /* the shape of format conversion's errors */
        o = json_pack("{s:i, s:I, s:s, s:s, s:I, s:s, s:o}", "attemptsMade", 1,
                      "arrivalTimestamp", (json_int_t)r[i].ts, "lastErrorCode", r[i].error_code,
                      "lastErrorMessage", r[i].error_msg, "attemptEndingTimestamp",
                      (json_int_t)time_now_ms(), "rawData", b64, "dataCatalogTable",
                      catalog_table(cfg->conv));
      else
        o = json_pack("{s:i, s:I, s:s, s:s, s:I, s:s}", "attemptsMade", 1, "arrivalTimestamp",
                      (json_int_t)r[i].ts, "errorCode", r[i].error_code, "errorMessage",
                      r[i].error_msg, "attemptEndingTimestamp", (json_int_t)time_now_ms(),
                      "rawData", b64);
      free(b64);
      if (cfg->lambda_arn != NULL && t == 0)
        json_object_set_new(o, "lambdaArn", json_string(cfg->lambda_arn));
      char *line = json_dumps(o, JSON_COMPACT);
      json_decref(o);
      buf_puts(&body, line);
      buf_puts(&body, "\n");
      free(line);
    }
    int rc = 0;
    if (body.len > 0) {
      const char *prefix = error_prefix(cfg, types[t], oldest, a, e);
      rc = prefix == NULL ? e->code
                          : write_object(s, cfg, cfg->bucket, cfg->role_arn, prefix, stream_name,
                                         oldest, &body, false, ob, a, e);
    }
    buf_release(&body);
    if (rc != 0)
      return rc;
  }
  return 0;
}

typedef struct trim_arg {
  uint64_t id;
  uint64_t last;       /* remove records up to this sequence */
  int64_t oldest;      /* out: the first remaining record's arrival, 0: none */
} trim_arg;

static int apply_trim(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  trim_arg *ta = c->arg;
  uint8_t prefix[8];
  stream__be64(prefix, ta->id);
  return stream__range_delete(txn, s->db_dbuf, prefix, 8, ta->last, &ta->oldest, e);
}

/* The table's columns, looked up once per delivery. */
typedef struct schema_state {
  bool done;
  conv_schema *sch;            /* NULL: the records fail with code and msg */
  const char *code;
  const char *msg;
} schema_state;

static void fail_conversion(drec *r, const char *code, const char *msg)
{
  r->out = OUT_FAILED;
  r->error_type = "format-conversion-failed";
  r->error_code = code;
  r->error_msg = msg;
}

/* Returns an error only when the lookup should be tried again later (the
 * catalog could not answer); a missing table fails the records instead. */
static int load_schema(stream_system *s, const conv_config *cv, schema_state *st, arena *a,
                       err *e)
{
  if (st->done)
    return 0;
  if (s->schema_lookup == NULL) {
    st->done = true;
    st->code = "DataFormatConversion.EntityNotFound";
    st->msg = "tarn runs without a catalog: the table cannot be found";
    return 0;
  }
  json_t *cols = NULL;
  err le = {0};
  int rc = s->schema_lookup(s->schema_ctx, cv->catalog_id, cv->database, cv->table,
                            cv->version_id, &cols, &le);
  if (rc == STREAM_ERR_NOT_FOUND || rc == ERR_NOT_FOUND || rc == ERR_NO_SUCH_ENTITY) {
    st->done = true;
    st->code = "DataFormatConversion.EntityNotFound";
    st->msg = arena_sprintf(a, "The specified table/database could not be found (%s). Ensure "
                            "that the table/database exists and that the values provided in "
                            "the schema configuration are correct.", le.msg);
    return 0;
  }
  if (rc != 0) {
    err_set(e, rc, "cannot look up the table '%s.%s': %s", cv->database, cv->table, le.msg);
    return rc;
  }
  st->done = true;
  err se = {0};
  if (stream__conv_schema_new(cv, cols, &st->sch, &se) != 0) {
    st->code = "DataFormatConversion.InvalidSchema";
    st->msg = arena_sprintf(a, "The schema is invalid. %s", se.msg);
  }
  json_decref(cols);
  return 0;
}

/* Converts the Ok records of one partition into a Parquet file in body
 * (empty when none converts); the rest fail to the error output. */
static int convert_group(stream_system *s, const dconfig *cfg, drec *r, size_t n,
                         schema_state *st, buf *body, arena *a, err *e)
{
  int rc = load_schema(s, cfg->conv, st, a, e);
  if (rc != 0)
    return rc;
  if (st->sch == NULL) {
    for (size_t i = 0; i < n; i++)
      if (r[i].out == OUT_OK)
        fail_conversion(&r[i], st->code, st->msg);
    return 0;
  }
  conv_rec *cr = arena_alloc(a, sizeof *cr * (n > 0 ? n : 1));
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (r[i].out == OUT_OK)
      cr[m++] = (conv_rec){r[i].data, r[i].len, NULL, NULL};
  rc = stream__conv_write(cfg->conv, st->sch, cr, m, body, a, e);
  if (rc != 0)
    return rc;
  m = 0;
  for (size_t i = 0; i < n; i++)
    if (r[i].out == OUT_OK) {
      if (cr[m].err_code != NULL)
        fail_conversion(&r[i], cr[m].err_code, cr[m].err_msg);
      m++;
    }
  return 0;
}

static int by_seq(const void *x, const void *y)
{
  const drec *a = x;
  const drec *b = y;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int by_group(const void *x, const void *y)
{
  const drec *a = x;
  const drec *b = y;
  int c = strcmp(a->group, b->group);
  if (c != 0)
    return c;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int deliver_one(stream_system *s, dstream *d, const dconfig *cfg, const char *name,
                       int64_t *delivered_bytes, int64_t *delivered_count, int64_t *oldest,
                       err *e)
{
  arena *a = arena_new();
  MDB_txn *txn = NULL;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0) {
    arena_free(a);
    return rc;
  }
  /* 1: the oldest records, up to the size hint */
  size_t cap = 64, n = 0;
  drec *r = xcalloc(cap, sizeof *r);
  uint64_t total = 0;
  uint8_t k[16];
  stream__be64(k, d->id);
  stream__be64(k + 8, 0);
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_dbuf, &cur);
  MDB_val key = {16, k};
  MDB_val v;
  int mrc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
  for (; mrc == 0 && key.mv_size == 16 && memcmp(key.mv_data, k, 8) == 0;
       mrc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
    if (total >= cfg->size_bytes)
      break;
    if (n == cap) {
      cap *= 2;
      r = xrealloc(r, cap * sizeof *r);
    }
    drec *x = &r[n++];
    memset(x, 0, sizeof *x);
    x->seq = stream__rd64((const uint8_t *)key.mv_data + 8);
    x->ts = (int64_t)stream__rd64(v.mv_data);
    x->src_len = v.mv_size - 8;
    x->src = arena_memdup(a, (const uint8_t *)v.mv_data + 8, x->src_len);
    x->data = x->src;
    x->len = x->src_len;
    x->group = "";
    total += x->src_len;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  *delivered_bytes = (int64_t)total;
  *delivered_count = (int64_t)n;
  if (n == 0) {
    free(r);
    arena_free(a);
    *oldest = 0;
    return 0;
  }
  uint64_t last = r[n - 1].seq;
  /* 2: the Lambda processor */
  if (cfg->lambda_arn != NULL) {
    size_t start = 0;
    while (start < n) {
      size_t end = start;
      size_t bytes = 0;
      while (end < n && (end == start || bytes + r[end].src_len <= cfg->lambda_max_bytes)) {
        bytes += r[end].src_len;
        end++;
      }
      if ((rc = process_batch(s, name, cfg, r + start, end - start, a)) != 0)
        break;
      start = end;
    }
    if (rc != 0) {
      err_set(e, rc, "the Lambda processor cannot run now");
      for (size_t x = 0; x < n; x++)
        json_decref(r[x].keys);
      free(r);
      arena_free(a);
      return rc;
    }
  }
  /* 3: partition keys */
  for (size_t i = 0; i < n && cfg->dynamic; i++) {
    if (r[i].out != OUT_OK)
      continue;
    if (cfg->query != NULL) {
      json_t *rec = json_loadb((const char *)r[i].data, r[i].len, JSON_DISABLE_EOF_CHECK, NULL);
      err qe = {0};
      json_t *keys = json_is_object(rec) ? stream__query_eval(cfg->query, rec, &qe) : NULL;
      json_decref(rec);
      if (keys == NULL) {
        r[i].out = OUT_FAILED;
        r[i].error_type = "partitioning-failed";
        r[i].error_code = "DynamicPartitioning.MetadataExtractionFailed";
        r[i].error_msg = arena_strdup(a, qe.msg[0] ? qe.msg : "the record is not a JSON object");
        json_decref(r[i].keys);
        r[i].keys = NULL;
        continue;
      }
      if (r[i].keys == NULL)
        r[i].keys = keys;
      else {
        json_object_update(r[i].keys, keys);
        json_decref(keys);
      }
    }
    if (r[i].keys == NULL)
      r[i].keys = json_object();
    char *g = json_dumps(r[i].keys, JSON_COMPACT | JSON_SORT_KEYS);
    r[i].group = arena_strdup(a, g);
    free(g);
  }
  /* 4: objects, one per partition, in order of their records */
  qsort(r, n, sizeof *r, by_group);
  rc = 0;
  outbox ob = {0};
  schema_state schema = {false, NULL, NULL, NULL};
  size_t i = 0;
  while (i < n && rc == 0) {
    if (r[i].out != OUT_OK) {
      i++;
      continue;
    }
    size_t j = i;
    buf body;
    buf_init(&body, BODY_MAX);
    int64_t first_ts = r[i].ts;
    for (; j < n && strcmp(r[j].group, r[i].group) == 0; j++) {
      if (r[j].out != OUT_OK)
        continue;
      if (r[j].ts < first_ts)
        first_ts = r[j].ts;
      if (cfg->conv != NULL)
        continue;
      buf_append(&body, r[j].data, r[j].len);
      if (cfg->append_newline)
        buf_append(&body, "\n", 1);
    }
    if (cfg->conv != NULL) {
      rc = convert_group(s, cfg, r + i, j - i, &schema, &body, a, e);
      if (rc != 0 || body.len == 0) {
        buf_release(&body);
        i = j;
        continue;
      }
    }
    err pe = {0};
    const char *prefix = stream__prefix_eval(cfg->prefix != NULL ? cfg->prefix : "", first_ts,
                                             NULL, r[i].keys, a, &pe);
    if (prefix == NULL) {
      for (size_t x = i; x < j; x++)
        if (r[x].out == OUT_OK) {
          r[x].out = OUT_FAILED;
          r[x].error_type = "partitioning-failed";
          r[x].error_code = "DynamicPartitioning.PartitionKeyMissing";
          r[x].error_msg = arena_strdup(a, pe.msg);
        }
    } else {
      rc = write_object(s, cfg, cfg->bucket, cfg->role_arn, prefix, name, first_ts, &body, true,
                        &ob, a, e);
    }
    buf_release(&body);
    i = j;
  }
  if (rc == 0)
    rc = write_errors(s, cfg, name, r, n, &ob, a, e);
  if (rc == 0 && cfg->backup_bucket != NULL) {
    qsort(r, n, sizeof *r, by_seq); /* the source records, in arrival order */
    buf body;
    buf_init(&body, BODY_MAX);
    int64_t first_ts = r[0].ts;
    for (size_t x = 0; x < n; x++) {
      buf_append(&body, r[x].src, r[x].src_len);
      if (r[x].ts < first_ts)
        first_ts = r[x].ts;
    }
    const char *bp = stream__prefix_eval(cfg->backup_prefix ? cfg->backup_prefix : "", first_ts,
                                         NULL, NULL, a, e);
    rc = bp == NULL ? e->code
                    : write_object(s, cfg, cfg->backup_bucket,
                                   cfg->backup_role_arn != NULL ? cfg->backup_role_arn
                                                                : cfg->role_arn,
                                   bp, name, first_ts, &body, false, &ob, a, e);
    buf_release(&body);
  }
  if (rc == 0)
    rc = outbox_commit(s, &ob, a, e);
  else
    outbox_release(&ob);
  for (size_t x = 0; x < n; x++)
    json_decref(r[x].keys);
  free(r);
  stream__conv_schema_free(schema.sch);
  arena_free(a);
  if (rc != 0)
    return rc;
  /* 5: the delivered records leave the buffer */
  trim_arg ta = {d->id, last, 0};
  rc = stream__commit(s, apply_trim, &ta, e);
  *oldest = ta.oldest;
  return rc;
}

/* Reads new records of Kinesis sources into their delivery streams' buffers
 * (called and returning with s->mu held; unlocks around each pull). */
static void pull_sources(stream_system *s)
{
  for (dstream *d = s->dstreams; d != NULL; d = d->next) {
    if (d->source == NULL || d->deleted)
      continue;
    int64_t room = (int64_t)(STREAM_MAX_BUFFERED + 2 * d->cfg->size_bytes) - d->bytes;
    if (room <= 0)
      continue;
    d->busy = true; /* keeps d (and its source string) alive while unlocked */
    pthread_mutex_unlock(&s->mu);
    int64_t bytes = 0, count = 0, first = 0;
    err e = {0};
    stream__kinesis_pull(s, d->id, d->source, d->source_from,
                         (size_t)(room < PULL_MAX ? room : PULL_MAX), &bytes, &count, &first, &e);
    pthread_mutex_lock(&s->mu);
    d->busy = false;
    s->firehose_records += (uint64_t)count;
    d->bytes += bytes;
    d->count += count;
    if (d->oldest_ms == 0 && count > 0)
      d->oldest_ms = first;
  }
  /* streams deleted while their pull ran */
  for (dstream **pp = &s->dstreams; *pp != NULL;) {
    dstream *d = *pp;
    if (d->deleted && !d->busy) {
      *pp = d->next;
      stream__dstream_free(d);
    } else {
      pp = &d->next;
    }
  }
}

/* Firehose's error code of a failed S3 delivery (its CloudWatch log's). */
static const char *s3_error_code(int rc)
{
  switch (rc) {
  case ERR_DENIED:
    return "S3.AccessDenied";
  case ERR_NO_SUCH_BUCKET:
    return "S3.NoSuchBucket";
  case ERR_UNAVAILABLE:
  case ERR_THROTTLED:
    return "S3.ServiceUnavailable";
  default:
    return "S3.InternalError";
  }
}

void *stream__deliver_main(void *arg)
{
  stream_system *s = arg;
  int64_t next_trim = 0;
  int64_t next_pull = 0;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    int64_t now = time_now_ms();
    if (now >= next_trim) {
      /* Kinesis retention: once a minute, outside the lock */
      next_trim = now + TRIM_EVERY_MS;
      pthread_mutex_unlock(&s->mu);
      err te = {0};
      stream__kinesis_trim(s, now, &te);
      pthread_mutex_lock(&s->mu);
      continue;
    }
    int64_t next = now + TICK_MS;
    if (now >= next_pull) {
      next_pull = now + TICK_MS;
      pull_sources(s);
      now = time_now_ms();
    }
    dstream *due = NULL;
    for (dstream *d = s->dstreams; d != NULL && due == NULL; d = d->next) {
      if (d->deleted || d->count <= 0 || d->oldest_ms == 0)
        continue;
      if (now < d->retry_at_ms) {
        if (d->retry_at_ms < next)
          next = d->retry_at_ms;
        continue;
      }
      int64_t deadline = d->oldest_ms + d->cfg->interval_ms;
      if ((uint64_t)d->bytes >= d->cfg->size_bytes || now >= deadline)
        due = d;
      else if (deadline < next)
        next = deadline;
    }
    if (due != NULL) {
      /* round robin: the stream delivered goes to the end of the list */
      dstream **pp = &s->dstreams;
      while (*pp != due)
        pp = &(*pp)->next;
      *pp = due->next;
      due->next = NULL;
      dstream **tail = &s->dstreams;
      while (*tail != NULL)
        tail = &(*tail)->next;
      *tail = due;
      due->busy = true;
      dconfig *cfg = due->cfg;
      cfg->refs++;
      char *name = xstrdup(due->name);
      pthread_mutex_unlock(&s->mu);
      int64_t bytes = 0, count = 0, oldest = 0;
      err e = {0};
      int rc = deliver_one(s, due, cfg, name, &bytes, &count, &oldest, &e);
      free(name);
      pthread_mutex_lock(&s->mu);
      stream__dconfig_unref(cfg);
      due->busy = false;
      if (rc != 0) {
        s->delivery_failures++;
        due->retry_at_ms = time_now_ms() + RETRY_MS;
        if (!due->failing) /* once per run of failures, as Firehose's error log */
          log_warn("firehose %s: delivery to S3 failed (%s): %s; the records stay buffered and "
                   "the delivery is retried every %d s", due->name, s3_error_code(rc), e.msg,
                   RETRY_MS / 1000);
        due->failing = true;
      } else {
        if (due->failing)
          log_info("firehose %s: delivery to S3 succeeds again", due->name);
        due->failing = false;
        due->retry_at_ms = 0;
        due->bytes -= bytes;
        due->count -= count;
        if (due->bytes < 0 || due->count <= 0 || oldest == 0) {
          /* the table is the truth: nothing left, or the counters lagged */
          if (oldest == 0) {
            due->bytes = 0;
            due->count = 0;
          }
        }
        due->oldest_ms = oldest;
      }
      if (due->deleted) {
        dstream **p = &s->dstreams;
        while (*p != due)
          p = &(*p)->next;
        *p = due->next;
        stream__dstream_free(due);
      }
      pthread_cond_broadcast(&s->drained);
      continue;
    }
    int64_t wait_ms = next - now;
    if (wait_ms < 10)
      wait_ms = 10;
    struct timespec ts = time_deadline(CLOCK_REALTIME, wait_ms);
    pthread_cond_timedwait(&s->wake, &s->mu, &ts);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}
