/* stream/firehose.c -- Firehose delivery streams: their configuration, and
 * putting records into their durable buffers.
 *
 * Why: a record acknowledged by PutRecord(Batch) must never be lost, so it
 * is committed into the dbuf table before the answer; the delivery thread
 * (deliver.c) turns the buffer into objects and removes what it delivered
 * in a later commit. A crash between the two delivers some records twice,
 * never none (at least once).
 *
 * Invariants:
 *   (1) A put is acknowledged only after its records are committed.
 *   (2) A full buffer (STREAM_MAX_BUFFERED + twice the size hint) refuses puts with
 *       STREAM_ERR_BUSY (ServiceUnavailableException): nothing is dropped.
 *   (3) A dstream's dconfig is immutable; UpdateDestination makes a new one
 *       (version + 1) and the delivery thread keeps its reference to the old
 *       one for the delivery under way.
 *   (4) The in-memory counters (bytes, count, oldest) may lag a commit; they
 *       only decide when to deliver. The table is the truth.
 *
 * Start reading at stream_delivery_put().
 */
#include "internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARN_PREFIX "arn:aws:firehose:us-east-1:000000000000:deliverystream/"

static char *dup_or_null(const char *s)
{
  return s != NULL && *s != '\0' ? xstrdup(s) : NULL;
}

void stream__dconfig_unref(dconfig *c)
{
  if (c == NULL || --c->refs > 0)
    return;
  free(c->bucket);
  free(c->prefix);
  free(c->error_prefix);
  free(c->extension);
  free(c->lambda_arn);
  free(c->query);
  free(c->backup_bucket);
  free(c->backup_prefix);
  free(c->role_arn);
  free(c->backup_role_arn);
  stream__conv_free(c->conv);
  free(c);
}

void stream__dstream_free(dstream *d)
{
  if (d == NULL)
    return;
  stream__dconfig_unref(d->cfg);
  free(d->source);
  free(d->name);
  free(d);
}

static int invalid(err *e, const char *what)
{
  return err_set(e, STREAM_ERR_INVALID, "%s", what);
}

static const char *param(json_t *proc, const char *name)
{
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(proc, "Parameters"), i, p)
    if (strcmp(stream__str(json_string_value(json_object_get(p, "ParameterName"))), name) == 0)
      return json_string_value(json_object_get(p, "ParameterValue"));
  return NULL;
}

static const char *bucket_of(const char *arn)
{
  return arn != NULL && str_starts(arn, "arn:aws:s3:::") && arn[13] != '\0' &&
                 strchr(arn + 13, '/') == NULL
             ? arn + 13
             : NULL;
}

/* The destination of a stored or requested configuration: the extended
 * S3 destination, or the plain one. */
static json_t *destination(json_t *input)
{
  json_t *d = json_object_get(input, "ExtendedS3DestinationConfiguration");
  return d != NULL ? d : json_object_get(input, "S3DestinationConfiguration");
}

/* Parses a destination into a new dconfig (refs 1). shape names it in
 * validation messages (extendedS3DestinationConfiguration, ...Update). */
static int parse_destination(json_t *dst, const char *shape, uint64_t version, dconfig **out,
                             err *e)
{
  *out = NULL;
  if (!json_is_object(dst))
    return invalid(e, "an ExtendedS3DestinationConfiguration is required (tarn delivers to "
                      "S3 only)");
  const char *bucket = bucket_of(json_string_value(json_object_get(dst, "BucketARN")));
  if (bucket == NULL)
    return invalid(e, "BucketARN must be an S3 bucket ARN, arn:aws:s3:::BUCKET");
  dconfig *c = xcalloc(1, sizeof *c);
  c->refs = 1;
  c->version = version;
  c->bucket = xstrdup(bucket);
  c->role_arn = dup_or_null(json_string_value(json_object_get(dst, "RoleARN")));
  c->prefix = dup_or_null(json_string_value(json_object_get(dst, "Prefix")));
  c->error_prefix = dup_or_null(json_string_value(json_object_get(dst, "ErrorOutputPrefix")));
  c->extension = dup_or_null(json_string_value(json_object_get(dst, "FileExtension")));
  json_t *bh = json_object_get(dst, "BufferingHints");
  /* a converting stream buffers 128 MiB unless told otherwise, as Firehose */
  json_int_t mb = stream__conv_enabled(dst) ? 128 : 5, secs = 300;
  if (json_is_integer(json_object_get(bh, "SizeInMBs")))
    mb = json_integer_value(json_object_get(bh, "SizeInMBs"));
  if (json_is_integer(json_object_get(bh, "IntervalInSeconds")))
    secs = json_integer_value(json_object_get(bh, "IntervalInSeconds"));
  int rc = 0;
  if (mb < 1 || mb > 128)
    rc = invalid(e, "BufferingHints.SizeInMBs must be between 1 and 128");
  else if (secs < 0 || secs > 900)
    rc = invalid(e, "BufferingHints.IntervalInSeconds must be between 0 and 900");
  c->size_bytes = (uint64_t)mb << 20;
  c->interval_ms = (int64_t)secs * 1000;
  const char *comp = json_string_value(json_object_get(dst, "CompressionFormat"));
  if (comp == NULL || strcmp(comp, "UNCOMPRESSED") == 0)
    c->comp = COMP_NONE;
  else if (strcmp(comp, "GZIP") == 0)
    c->comp = COMP_GZIP;
  else if (strcmp(comp, "ZIP") == 0)
    c->comp = COMP_ZIP;
  else if (strcmp(comp, "Snappy") == 0)
    c->comp = COMP_SNAPPY;
  else if (strcmp(comp, "HADOOP_SNAPPY") == 0)
    c->comp = COMP_HADOOP_SNAPPY;
  else if (rc == 0)
    rc = err_set(e, STREAM_ERR_INVALID, "CompressionFormat '%s' is not one of UNCOMPRESSED, "
                 "GZIP, ZIP, Snappy, HADOOP_SNAPPY", comp);
  if (rc == 0)
    rc = stream__conv_parse(dst, shape, &c->conv, e);
  json_t *proc = json_object_get(dst, "ProcessingConfiguration");
  if (rc == 0 && json_is_true(json_object_get(proc, "Enabled"))) {
    size_t i;
    json_t *p;
    c->lambda_max_bytes = 1u << 20;
    json_array_foreach(json_object_get(proc, "Processors"), i, p) {
      const char *type = stream__str(json_string_value(json_object_get(p, "Type")));
      if (strcmp(type, "Lambda") == 0) {
        const char *arn = param(p, "LambdaArn");
        if (arn == NULL) {
          rc = invalid(e, "the Lambda processor needs a LambdaArn parameter");
          break;
        }
        c->lambda_arn = xstrdup(arn);
        const char *mbs = param(p, "BufferSizeInMBs");
        if (mbs != NULL) {
          double v = strtod(mbs, NULL);
          if (v < 0.2 || v > 3) {
            rc = invalid(e, "the Lambda processor's BufferSizeInMBs must be 0.2 to 3");
            break;
          }
          c->lambda_max_bytes = (size_t)(v * (1 << 20));
        }
      } else if (strcmp(type, "MetadataExtraction") == 0) {
        const char *q = param(p, "MetadataExtractionQuery");
        if (q == NULL) {
          rc = invalid(e, "MetadataExtraction needs a MetadataExtractionQuery parameter");
          break;
        }
        c->query = xstrdup(q);
      } else if (strcmp(type, "AppendDelimiterToRecord") == 0) {
        c->append_newline = true;
      } else {
        rc = err_set(e, STREAM_ERR_INVALID, "processor type '%s' is not supported by tarn "
                     "(Lambda, MetadataExtraction and AppendDelimiterToRecord are)", type);
        break;
      }
    }
  }
  json_t *dyn = json_object_get(dst, "DynamicPartitioningConfiguration");
  c->dynamic = json_is_true(json_object_get(dyn, "Enabled"));
  if (rc == 0 && c->dynamic && (c->prefix == NULL || strstr(c->prefix, "!{partitionKeyFrom") == NULL))
    rc = invalid(e, "dynamic partitioning needs a Prefix with !{partitionKeyFromQuery:KEY} or "
                    "!{partitionKeyFromLambda:KEY}");
  if (rc == 0 && c->prefix != NULL && strstr(c->prefix, "!{partitionKeyFrom") != NULL &&
      !c->dynamic)
    rc = invalid(e, "a Prefix with partition keys needs DynamicPartitioningConfiguration "
                    "Enabled");
  if (rc == 0 && c->prefix != NULL && strstr(c->prefix, "!{") != NULL &&
      c->error_prefix == NULL)
    rc = invalid(e, "ErrorOutputPrefix is required when Prefix has expressions");
  if (rc == 0 && c->prefix != NULL) {
    err pe = {0};
    arena *a = arena_new();
    json_t *keys = json_object();
    /* every expression must parse: check with placeholder keys */
    for (const char *p = strstr(c->prefix, "!{partitionKeyFrom"); p != NULL;
         p = strstr(p + 1, "!{partitionKeyFrom")) {
      const char *colon = strchr(p, ':');
      const char *end = strchr(p, '}');
      if (colon != NULL && end != NULL && colon < end)
        json_object_set_new(keys, arena_strndup(a, colon + 1, (size_t)(end - colon - 1)),
                            json_string("x"));
    }
    if (stream__prefix_eval(c->prefix, 0, "x", keys, a, &pe) == NULL)
      rc = err_set(e, STREAM_ERR_INVALID, "Prefix: %s", pe.msg);
    else if (c->error_prefix != NULL &&
             stream__prefix_eval(c->error_prefix, 0, "x", NULL, a, &pe) == NULL)
      rc = err_set(e, STREAM_ERR_INVALID, "ErrorOutputPrefix: %s", pe.msg);
    json_decref(keys);
    arena_free(a);
  }
  if (rc == 0 && strcmp(stream__str(json_string_value(json_object_get(dst, "S3BackupMode"))),
                        "Enabled") == 0) {
    json_t *b = json_object_get(dst, "S3BackupConfiguration");
    const char *bb = bucket_of(json_string_value(json_object_get(b, "BucketARN")));
    if (bb == NULL)
      rc = invalid(e, "S3BackupMode Enabled needs S3BackupConfiguration with a BucketARN");
    else {
      c->backup_bucket = xstrdup(bb);
      c->backup_prefix = dup_or_null(json_string_value(json_object_get(b, "Prefix")));
      c->backup_role_arn = dup_or_null(json_string_value(json_object_get(b, "RoleARN")));
    }
  }
  if (rc != 0) {
    stream__dconfig_unref(c);
    return rc;
  }
  *out = c;
  return 0;
}

dstream *stream__dstream_find(stream_system *s, const char *name)
{
  for (dstream *d = s->dstreams; d != NULL; d = d->next)
    if (!d->deleted && strcmp(d->name, name) == 0)
      return d;
  return NULL;
}

static int no_stream(err *e, const char *name)
{
  return stream__not_found(e, "Firehose", name);
}

/* Counts what a crash left in a stream's buffer. */
static void count_buffer(stream_system *s, MDB_txn *txn, dstream *d)
{
  uint8_t prefix[8];
  stream__be64(prefix, d->id);
  MDB_cursor *cur;
  if (mdb_cursor_open(txn, s->db_dbuf, &cur) != 0)
    return;
  MDB_val k = {8, prefix};
  MDB_val v;
  int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  for (; mrc == 0 && k.mv_size == 16 && memcmp(k.mv_data, prefix, 8) == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (d->count == 0)
      d->oldest_ms = (int64_t)stream__rd64(v.mv_data);
    d->count++;
    d->bytes += (int64_t)v.mv_size - 8;
  }
  mdb_cursor_close(cur);
}

int stream__dstreams_load(stream_system *s, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  mdb_cursor_open(txn, s->db_dstreams, &cur);
  MDB_val k, v;
  for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (rec == NULL)
      continue;
    dconfig *c = NULL;
    err pe = {0};
    if (parse_destination(destination(json_object_get(rec, "input")),
                          "extendedS3DestinationConfiguration", (uint64_t)json_integer_value(json_object_get(rec, "version")), &c,
                          &pe) == 0) {
      dstream *d = xcalloc(1, sizeof *d);
      d->id = (uint64_t)json_integer_value(json_object_get(rec, "id"));
      d->name = xstrndup(k.mv_data, k.mv_size);
      d->cfg = c;
      const char *src = json_string_value(json_object_get(rec, "source"));
      d->source = src != NULL ? xstrdup(src) : NULL;
      d->source_from = (uint64_t)json_integer_value(json_object_get(rec, "from"));
      count_buffer(s, txn, d);
      d->next = s->dstreams;
      s->dstreams = d;
    }
    json_decref(rec);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return 0;
}

void stream__dstreams_free(stream_system *s)
{
  while (s->dstreams != NULL) {
    dstream *d = s->dstreams;
    s->dstreams = d->next;
    stream__dstream_free(d);
  }
}

/* ---- create, delete, update ---- */

typedef struct create_arg {
  const char *name;
  json_t *input;
  const char *source;   /* KinesisStreamAsSource: the stream, else NULL */
  uint64_t id;          /* out */
  uint64_t from;        /* out: the source's LATEST */
} create_arg;

/* The stream name of a Kinesis stream ARN, or NULL. */
static const char *kinesis_name(const char *arn)
{
  const char *pre = "arn:aws:kinesis:";
  if (arn == NULL || !str_starts(arn, pre) || strstr(arn, ":stream/") == NULL)
    return NULL;
  const char *n = strstr(arn, ":stream/") + 8;
  return *n != '\0' ? n : NULL;
}

static int apply_create(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  create_arg *ca = c->arg;
  MDB_val k = {strlen(ca->name), (void *)ca->name};
  MDB_val d;
  if (mdb_get(txn, s->db_dstreams, &k, &d) == 0)
    return err_set(e, STREAM_ERR_IN_USE, "Firehose %s under account 000000000000 already "
                   "exists with type %s.", ca->name,
                   ca->source != NULL ? "KinesisStreamAsSource" : "DirectPut");
  if (ca->source != NULL) {
    MDB_val sk = {strlen(ca->source), (void *)ca->source};
    if (mdb_get(txn, s->db_kstreams, &sk, &d) != 0)
      return err_set(e, STREAM_ERR_INVALID, "Kinesis stream %s under account 000000000000 "
                     "not found", ca->source);
    ca->from = stream__counter_get(s, txn, "seq") + 1;
  }
  int rc = stream__counter_next(s, txn, "sid", &ca->id, e);
  if (rc != 0)
    return rc;
  json_t *rec = json_pack("{s:I, s:I, s:I, s:O}", "id", (json_int_t)ca->id, "version",
                          (json_int_t)1, "created", (json_int_t)time_now_ms(), "input",
                          ca->input);
  if (ca->source != NULL) {
    json_object_set_new(rec, "source", json_string(ca->source));
    json_object_set_new(rec, "from", json_integer((json_int_t)ca->from));
  }
  rc = stream__json_put(txn, s->db_dstreams, ca->name, rec, e);
  json_decref(rec);
  return rc;
}

int stream_delivery_create(stream_system *s, json_t *input, err *e)
{
  const char *name = json_string_value(json_object_get(input, "DeliveryStreamName"));
  if (name == NULL || !stream__name_valid(name, 64))
    return invalid(e, "DeliveryStreamName must be 1 to 64 characters of [a-zA-Z0-9_.-]");
  const char *type = json_string_value(json_object_get(input, "DeliveryStreamType"));
  const char *source = NULL;
  if (type != NULL && strcmp(type, "KinesisStreamAsSource") == 0) {
    json_t *src = json_object_get(input, "KinesisStreamSourceConfiguration");
    source = kinesis_name(json_string_value(json_object_get(src, "KinesisStreamARN")));
    if (source == NULL)
      return invalid(e, "KinesisStreamAsSource needs KinesisStreamSourceConfiguration with a "
                        "KinesisStreamARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)");
  } else if (type != NULL && strcmp(type, "DirectPut") != 0) {
    return err_set(e, STREAM_ERR_INVALID, "DeliveryStreamType '%s' is not supported by tarn "
                   "(DirectPut and KinesisStreamAsSource are)", type);
  }
  dconfig *c;
  int rc = parse_destination(destination(input),
                             json_object_get(input, "ExtendedS3DestinationConfiguration") != NULL
                                 ? "extendedS3DestinationConfiguration"
                                 : "s3DestinationConfiguration",
                             1, &c, e);
  if (rc != 0)
    return rc;
  create_arg ca = {name, input, source, 0, 0};
  if ((rc = stream__commit(s, apply_create, &ca, e)) != 0) {
    pthread_mutex_lock(&s->mu);
    stream__dconfig_unref(c);
    pthread_mutex_unlock(&s->mu);
    return rc;
  }
  dstream *d = xcalloc(1, sizeof *d);
  d->id = ca.id;
  d->name = xstrdup(name);
  d->cfg = c;
  d->source = source != NULL ? xstrdup(source) : NULL;
  d->source_from = ca.from;
  pthread_mutex_lock(&s->mu);
  d->next = s->dstreams;
  s->dstreams = d;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

static int load(stream_system *s, MDB_txn *txn, const char *name, json_t **out, err *e)
{
  return stream__json_load(txn, s->db_dstreams, "Firehose", name, out, e);
}

static int apply_delete(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  const char *name = c->arg;
  int rc = stream__drop(txn, s->db_dstreams, s->db_dbuf, name, e);
  return rc == 1 ? no_stream(e, name) : rc;
}

int stream_delivery_delete(stream_system *s, const char *name, err *e)
{
  int rc = stream__commit(s, apply_delete, (void *)name, e);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&s->mu);
  for (dstream **pp = &s->dstreams; *pp != NULL; pp = &(*pp)->next) {
    dstream *d = *pp;
    if (!d->deleted && strcmp(d->name, name) == 0) {
      if (d->busy) {
        d->deleted = true; /* the delivery thread unlinks and frees it */
      } else {
        *pp = d->next;
        stream__dstream_free(d);
      }
      break;
    }
  }
  pthread_cond_broadcast(&s->drained);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

int stream_delivery_describe(stream_system *s, const char *name, json_t **out, err *e)
{
  MDB_txn *txn;
  int rc = lmdb_read_begin(s->env, &txn, e);
  if (rc != 0)
    return rc;
  json_t *rec = NULL;
  rc = load(s, txn, name, &rec, e);
  mdb_txn_abort(txn);
  if (rc != 0)
    return rc;
  json_t *in = json_object_get(rec, "input");
  json_t *dst = json_deep_copy(destination(in));
  if (json_object_get(dst, "BufferingHints") == NULL)
    json_object_set_new(dst, "BufferingHints",
                        json_pack("{s:i, s:i}", "SizeInMBs", stream__conv_enabled(dst) ? 128 : 5,
                                  "IntervalInSeconds", 300));
  if (json_object_get(dst, "CompressionFormat") == NULL)
    json_object_set_new(dst, "CompressionFormat", json_string("UNCOMPRESSED"));
  if (json_object_get(dst, "EncryptionConfiguration") == NULL)
    json_object_set_new(dst, "EncryptionConfiguration",
                        json_pack("{s:s}", "NoEncryptionConfig", "NoEncryption"));
  if (json_object_get(dst, "S3BackupMode") == NULL)
    json_object_set_new(dst, "S3BackupMode", json_string("Disabled"));
  if (json_object_get(dst, "RoleARN") == NULL)
    json_object_set_new(dst, "RoleARN", json_string("arn:aws:iam::000000000000:role/firehose"));
  json_t *b = json_object_get(dst, "S3BackupConfiguration");
  if (b != NULL) {
    json_object_set(dst, "S3BackupDescription", b);
    json_object_del(dst, "S3BackupConfiguration");
  }
  json_t *plain = json_pack("{s:O, s:O, s:O, s:O, s:O}", "RoleARN",
                            json_object_get(dst, "RoleARN"), "BucketARN",
                            json_object_get(dst, "BucketARN"), "BufferingHints",
                            json_object_get(dst, "BufferingHints"), "CompressionFormat",
                            json_object_get(dst, "CompressionFormat"),
                            "EncryptionConfiguration",
                            json_object_get(dst, "EncryptionConfiguration"));
  if (json_object_get(dst, "Prefix") != NULL)
    json_object_set(plain, "Prefix", json_object_get(dst, "Prefix"));
  char arn[160];
  snprintf(arn, sizeof arn, ARN_PREFIX "%s", name);
  char version[24];
  snprintf(version, sizeof version, "%" JSON_INTEGER_FORMAT,
           json_integer_value(json_object_get(rec, "version")));
  double created = (double)json_integer_value(json_object_get(rec, "created")) / 1000.0;
  const char *source = json_string_value(json_object_get(rec, "source"));
  *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:[{s:s, s:o, s:o}], s:b, s:{s:s}}",
                   "DeliveryStreamName", name, "DeliveryStreamARN", arn,
                   "DeliveryStreamStatus", "ACTIVE", "DeliveryStreamType",
                   source != NULL ? "KinesisStreamAsSource" : "DirectPut",
                   "VersionId", version, "CreateTimestamp", created, "LastUpdateTimestamp",
                   created, "Destinations", "DestinationId", "destinationId-000000000001",
                   "ExtendedS3DestinationDescription", dst, "S3DestinationDescription", plain,
                   "HasMoreDestinations", 0, "DeliveryStreamEncryptionConfiguration", "Status",
                   "DISABLED");
  if (source != NULL) {
    json_t *src = json_object_get(in, "KinesisStreamSourceConfiguration");
    json_object_set_new(*out, "Source",
                        json_pack("{s:{s:O, s:O, s:f}}", "KinesisStreamSourceDescription",
                                  "KinesisStreamARN", json_object_get(src, "KinesisStreamARN"),
                                  "RoleARN", json_object_get(src, "RoleARN"),
                                  "DeliveryStartTimestamp", created));
  }
  json_decref(rec);
  return 0;
}

static void add_name(void *ctx, const char *name, json_t *rec)
{
  json_array_append_new(ctx, json_string(name));
}

int stream_delivery_list(stream_system *s, const char *start, size_t max, json_t **names,
                         bool *more, err *e)
{
  *names = json_array();
  return stream__scan(s, s->db_dstreams, start, max, add_name, *names, more, e);
}

typedef struct update_arg {
  const char *name;
  const char *version;   /* CurrentDeliveryStreamVersionId */
  json_t *update;        /* the destination update (merged over the current) */
  bool extended;
  json_t *merged;        /* out: the new destination */
  uint64_t new_version;  /* out */
} update_arg;

static int edit_update(stream_system *s, MDB_txn *txn, json_t *rec, void *arg, err *e)
{
  update_arg *ua = arg;
  json_int_t v = json_integer_value(json_object_get(rec, "version"));
  if (ua->version == NULL || strtoll(ua->version, NULL, 10) != v)
    return err_set(e, STREAM_ERR_VERSION, "Cannot update firehose: %s since the current "
                   "version id: %" JSON_INTEGER_FORMAT " and the requested version id: %s do "
                   "not match", ua->name, v, ua->version ? ua->version : "(none)");
  json_t *in = json_object_get(rec, "input");
  json_t *dst = destination(in);
  json_t *merged = dst != NULL ? json_deep_copy(dst) : json_object();
  json_object_update(merged, ua->update);
  dconfig *cfg;
  int rc = parse_destination(merged, "extendedS3DestinationUpdate", (uint64_t)v + 1, &cfg, e);
  if (rc != 0) {
    json_decref(merged);
    return rc;
  }
  pthread_mutex_lock(&s->mu);
  stream__dconfig_unref(cfg); /* only checked here; made again after the commit */
  pthread_mutex_unlock(&s->mu);
  json_object_del(in, "S3DestinationConfiguration");
  json_object_set(in, "ExtendedS3DestinationConfiguration", merged);
  json_object_set_new(rec, "version", json_integer(v + 1));
  ua->merged = merged;
  ua->new_version = (uint64_t)v + 1;
  return 0;
}

static int apply_update(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  update_arg *ua = c->arg;
  ua->merged = NULL;
  int rc = stream__json_edit(s, txn, s->db_dstreams, "Firehose", ua->name, edit_update, ua, e);
  if (rc != 0 && ua->merged != NULL) { /* edited, but not stored */
    json_decref(ua->merged);
    ua->merged = NULL;
  }
  return rc;
}

int stream_delivery_update(stream_system *s, json_t *input, err *e)
{
  const char *name = json_string_value(json_object_get(input, "DeliveryStreamName"));
  if (name == NULL)
    return invalid(e, "DeliveryStreamName is required");
  json_t *upd = json_object_get(input, "ExtendedS3DestinationUpdate");
  if (upd == NULL)
    upd = json_object_get(input, "S3DestinationUpdate");
  if (!json_is_object(upd))
    return invalid(e, "an ExtendedS3DestinationUpdate is required (tarn delivers to S3 only)");
  update_arg ua = {name, json_string_value(json_object_get(input,
                                                            "CurrentDeliveryStreamVersionId")),
                   upd, true, NULL, 0};
  int rc = stream__commit(s, apply_update, &ua, e);
  if (rc != 0)
    return rc;
  dconfig *cfg = NULL;
  err pe = {0};
  parse_destination(ua.merged, "extendedS3DestinationUpdate", ua.new_version, &cfg, &pe);
  json_decref(ua.merged);
  pthread_mutex_lock(&s->mu);
  dstream *d = stream__dstream_find(s, name);
  if (d != NULL && cfg != NULL) {
    stream__dconfig_unref(d->cfg);
    d->cfg = cfg;
    cfg = NULL;
  }
  stream__dconfig_unref(cfg);
  pthread_cond_signal(&s->wake);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

/* ---- put ---- */

typedef struct put_arg {
  const char *name;
  uint64_t id;
  const stream_blob *recs;
  size_t n;
  int64_t now;
  uint64_t first;       /* out: the first record's sequence */
} put_arg;

static int apply_put(stream_system *s, schange *c, MDB_txn *txn, arena *a, err *e)
{
  put_arg *pa = c->arg;
  json_t *rec;
  int rc = load(s, txn, pa->name, &rec, e);
  if (rc != 0)
    return rc;
  bool same = (uint64_t)json_integer_value(json_object_get(rec, "id")) == pa->id;
  json_decref(rec);
  if (!same)
    return no_stream(e, pa->name);
  uint64_t seq = stream__counter_get(s, txn, "seq");
  pa->first = seq + 1;
  for (size_t i = 0; i < pa->n; i++) {
    uint8_t k[16];
    stream__be64(k, pa->id);
    stream__be64(k + 8, ++seq);
    MDB_val key = {16, k};
    MDB_val val = {8 + pa->recs[i].len, NULL};
    int mrc = mdb_put(txn, s->db_dbuf, &key, &val, MDB_RESERVE);
    if (mrc != 0)
      return lmdb_error(e, mrc, "buffer a record");
    stream__be64(val.mv_data, (uint64_t)pa->now);
    if (pa->recs[i].len > 0)
      memcpy((uint8_t *)val.mv_data + 8, pa->recs[i].data, pa->recs[i].len);
  }
  return stream__counter_set(s, txn, "seq", seq, e);
}

int stream_delivery_put(stream_system *s, const char *name, const stream_blob *recs, size_t n,
                        arena *a, const char **ids, err *e)
{
  if (n == 0 || n > STREAM_MAX_FIREHOSE_BATCH)
    return err_set(e, STREAM_ERR_INVALID, "a batch takes 1 to %d records, not %zu",
                   STREAM_MAX_FIREHOSE_BATCH, n);
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (recs[i].len > STREAM_MAX_FIREHOSE_RECORD)
      return err_set(e, STREAM_ERR_INVALID, "1 validation error detected: Value at "
                     "'record.data' failed to satisfy constraint: Member must have length less "
                     "than or equal to %u", STREAM_MAX_FIREHOSE_RECORD);
    total += recs[i].len;
  }
  if (total > STREAM_MAX_FIREHOSE_BATCH_BYTES)
    return err_set(e, STREAM_ERR_INVALID, "the batch is %zu bytes; the limit is 4 MiB", total);
  pthread_mutex_lock(&s->mu);
  dstream *d = stream__dstream_find(s, name);
  uint64_t id = d != NULL ? d->id : 0;
  bool sourced = d != NULL && d->source != NULL;
  bool full = d != NULL &&
              (uint64_t)d->bytes + total > STREAM_MAX_BUFFERED + 2 * d->cfg->size_bytes;
  pthread_mutex_unlock(&s->mu);
  if (d == NULL)
    return no_stream(e, name);
  if (sourced)
    return err_set(e, STREAM_ERR_INVALID, "This operation is not permitted on "
                   "KinesisStreamAsSource delivery stream type.");
  if (full)
    return err_set(e, STREAM_ERR_BUSY, "Slow down: the buffer of Firehose %s is full; its "
                   "records are being delivered", name);
  put_arg pa = {name, id, recs, n, time_now_ms(), 0};
  int rc = stream__commit(s, apply_put, &pa, e);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < n; i++) {
    /* the record id: the stream's id and the record's sequence, as hex,
       padded to the length of AWS's */
    char *id_text = arena_sprintf(a, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64
                                  "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
                                  id, pa.first + i, (uint64_t)0, (uint64_t)0, (uint64_t)0,
                                  (uint64_t)pa.now, (uint64_t)i);
    ids[i] = id_text;
  }
  pthread_mutex_lock(&s->mu);
  s->firehose_records += n;
  d = stream__dstream_find(s, name);
  if (d != NULL && d->id == id) {
    d->bytes += (int64_t)total;
    d->count += (int64_t)n;
    if (d->oldest_ms == 0)
      d->oldest_ms = pa.now;
    if ((uint64_t)d->bytes >= d->cfg->size_bytes || d->cfg->interval_ms == 0)
      pthread_cond_signal(&s->wake);
  }
  pthread_mutex_unlock(&s->mu);
  return 0;
}
