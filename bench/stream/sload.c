/* bench/stream/sload.c -- the stream load generator of bench/stream_bench.sh:
 * durable records per second through Firehose PutRecordBatch or Kinesis
 * PutRecords (AWS JSON 1.1), from concurrent clients, each request signed
 * with tarn's own SigV4 signer (bench/fn/httpc.c).
 *
 * Usage: sload --port N --mode firehose|kinesis [--conns C] [--batch B]
 *              [--duration SECS] [--size BYTES]
 * creates its stream (and for Firehose a bucket, with buffering hints of
 * 128 MiB / 900 s so the run measures acknowledged puts, not delivery),
 * then puts batches for --duration seconds. One line on stdout:
 *   op=firehose conns=8 batch=500 records=... requests=... errors=0
 *   secs=... rec_s=... p50_ms=... p99_ms=...
 *
 * Invariants:
 *   (1) One thread and one keep-alive connection per client; one request
 *       at a time per connection.
 *   (2) A record counts only when acknowledged: status 200 and a zero
 *       FailedPutCount / FailedRecordCount (tarn acknowledges after the
 *       commit, so every counted record is durable).
 *
 * Start reading at main().
 */
#include "httpc.h"

#include "base/hash.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONNS 64

typedef struct options {
  int port;
  const char *access_key;
  const char *secret_key;
  bool firehose;
  int conns;
  int batch;
  double duration;
  int size;
} options;

static options opt = {.conns = 1, .batch = 500, .duration = 2, .size = 100};
static char name[64];
static char *body;             /* the request every client sends */
static size_t body_len;

typedef struct worker {
  pthread_barrier_t *start;
  httpc_conn c;
  long records;
  long requests;
  long errors;
  lat_set lat;
  double t_start;
  double t_end;
  char err[512];
} worker;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("sload: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static int call(httpc_conn *c, const char *action, const char *b, size_t len)
{
  char target[64];
  snprintf(target, sizeof target, "%s.%s",
           opt.firehose ? "Firehose_20150804" : "Kinesis_20131202", action);
  str_pair h[2] = {{"Content-Type", "application/x-amz-json-1.1"}, {"X-Amz-Target", target}};
  httpc_request r = {.method = "POST", .path = "/", .headers = h, .nheaders = 2,
                     .service = opt.firehose ? "firehose" : "kinesis", .body = b, .len = len};
  return httpc_do(c, &r);
}

/* The answer acknowledges every record: a zero failed count. */
static bool all_ok(const char *answer)
{
  const char *f = strstr(answer, opt.firehose ? "\"FailedPutCount\":" : "\"FailedRecordCount\":");
  return f != NULL && f[opt.firehose ? 17 : 20] == '0';
}

static void *worker_main(void *arg)
{
  worker *w = arg;
  httpc_conn_open(&w->c);
  pthread_barrier_wait(w->start);
  w->t_start = httpc_now();
  double deadline = w->t_start + opt.duration;
  while (httpc_now() < deadline && w->errors <= 100) {
    double t0 = httpc_now();
    if (call(&w->c, opt.firehose ? "PutRecordBatch" : "PutRecords", body, body_len) == 200 &&
        all_ok(w->c.body)) {
      w->records += opt.batch;
      w->requests++;
      lat_add(&w->lat, httpc_now() - t0);
    } else {
      w->errors++;
      if (w->err[0] == '\0')
        snprintf(w->err, sizeof w->err, "%d %.200s%.200s", w->c.status,
                 w->c.status < 0 ? w->c.err : "", w->c.body);
    }
  }
  w->t_end = httpc_now();
  return NULL;
}

static void setup(void)
{
  httpc_conn c;
  httpc_conn_init(&c, "127.0.0.1", opt.port, opt.access_key, opt.secret_key);
  char b[1024];
  int n;
  if (opt.firehose) {
    char bucket[80];
    snprintf(bucket, sizeof bucket, "/%s", name);
    httpc_request r = {.method = "PUT", .path = bucket, .service = "s3"};
    if (httpc_do(&c, &r) != 200)
      die("CreateBucket '%s': %d %.300s", name, c.status, c.body);
    n = snprintf(b, sizeof b,
                 "{\"DeliveryStreamName\":\"%s\",\"ExtendedS3DestinationConfiguration\":"
                 "{\"RoleARN\":\"arn:aws:iam::000000000000:role/r\",\"BucketARN\":"
                 "\"arn:aws:s3:::%s\",\"BufferingHints\":{\"SizeInMBs\":128,"
                 "\"IntervalInSeconds\":900}}}", name, name);
    if (call(&c, "CreateDeliveryStream", b, (size_t)n) != 200)
      die("CreateDeliveryStream: %d %.300s", c.status, c.body);
  } else {
    n = snprintf(b, sizeof b, "{\"StreamName\":\"%s\",\"ShardCount\":4}", name);
    if (call(&c, "CreateStream", b, (size_t)n) != 200)
      die("CreateStream: %d %.300s", c.status, c.body);
  }
  httpc_conn_release(&c);
}

/* One batch of --batch records of --size bytes (base64 in JSON). */
static void make_body(void)
{
  char *raw = malloc((size_t)opt.size);
  for (int i = 0; i < opt.size; i++)
    raw[i] = (char)('a' + i % 26);
  char *b64 = malloc(base64_encoded_len((size_t)opt.size));
  base64_encode((const uint8_t *)raw, (size_t)opt.size, b64);
  size_t cap = 256 + (size_t)opt.batch * (strlen(b64) + 64);
  body = malloc(cap);
  size_t n = (size_t)snprintf(body, cap, "{\"%s\":\"%s\",\"Records\":[",
                              opt.firehose ? "DeliveryStreamName" : "StreamName", name);
  for (int i = 0; i < opt.batch; i++)
    n += (size_t)snprintf(body + n, cap - n,
                          opt.firehose ? "%s{\"Data\":\"%s\"}" : "%s{\"Data\":\"%s\","
                                                                 "\"PartitionKey\":\"k%d\"}",
                          i ? "," : "", b64, i);
  n += (size_t)snprintf(body + n, cap - n, "]}");
  body_len = n;
  free(raw);
  free(b64);
}

static void usage(void)
{
  fputs("usage: sload --port N --mode firehose|kinesis [--conns C] [--batch 1..500]\n"
        "             [--duration SECS] [--size BYTES]\n"
        "             (credentials: TARN_ACCESS_KEY / TARN_SECRET_KEY)\n",
        stderr);
}

int main(int argc, char **argv)
{
  static const struct option longopts[] = {
    {"port", required_argument, NULL, 'p'},     {"mode", required_argument, NULL, 'm'},
    {"conns", required_argument, NULL, 'c'},    {"batch", required_argument, NULL, 'b'},
    {"duration", required_argument, NULL, 'd'}, {"size", required_argument, NULL, 's'},
    {NULL, 0, NULL, 0},
  };
  opt.access_key = getenv("TARN_ACCESS_KEY");
  opt.secret_key = getenv("TARN_SECRET_KEY");
  const char *mode = NULL;
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
    case 'p': opt.port = atoi(optarg); break;
    case 'm': mode = optarg; break;
    case 'c': opt.conns = atoi(optarg); break;
    case 'b': opt.batch = atoi(optarg); break;
    case 'd': opt.duration = atof(optarg); break;
    case 's': opt.size = atoi(optarg); break;
    default: usage(); return 2;
    }
  }
  if (opt.port <= 0 || mode == NULL ||
      (strcmp(mode, "firehose") != 0 && strcmp(mode, "kinesis") != 0) || opt.conns < 1 ||
      opt.conns > MAX_CONNS || opt.batch < 1 || opt.batch > 500 || opt.size < 1 ||
      opt.size > 8192) {
    usage();
    return 2;
  }
  if (opt.access_key == NULL || opt.secret_key == NULL)
    die("need TARN_ACCESS_KEY and TARN_SECRET_KEY");
  opt.firehose = strcmp(mode, "firehose") == 0;
  signal(SIGPIPE, SIG_IGN);
  snprintf(name, sizeof name, "sload-%s-%d-%ld", mode, opt.conns, (long)httpc_wall_ns() % 1000000);
  setup();
  make_body();

  worker ws[MAX_CONNS];
  memset(ws, 0, sizeof ws);
  pthread_t th[MAX_CONNS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)opt.conns);
  for (int i = 0; i < opt.conns; i++) {
    httpc_conn_init(&ws[i].c, "127.0.0.1", opt.port, opt.access_key, opt.secret_key);
    ws[i].start = &start;
    pthread_create(&th[i], NULL, worker_main, &ws[i]);
  }
  lat_set all = {0};
  long records = 0, requests = 0, errors = 0;
  double t0 = 0, t1 = 0;
  const char *err = NULL;
  for (int i = 0; i < opt.conns; i++) {
    pthread_join(th[i], NULL);
    records += ws[i].records;
    requests += ws[i].requests;
    errors += ws[i].errors;
    lat_merge(&all, &ws[i].lat);
    if (i == 0 || ws[i].t_start < t0)
      t0 = ws[i].t_start;
    if (ws[i].t_end > t1)
      t1 = ws[i].t_end;
    if (err == NULL && ws[i].err[0])
      err = ws[i].err;
  }
  pthread_barrier_destroy(&start);
  double secs = t1 > t0 ? t1 - t0 : 1e-9;
  printf("op=%s conns=%d batch=%d records=%ld requests=%ld errors=%ld secs=%.3f rec_s=%.1f "
         "p50_ms=%.3f p99_ms=%.3f\n",
         mode, opt.conns, opt.batch, records, requests, errors, secs, (double)records / secs,
         lat_ms(&all, 0.5), lat_ms(&all, 0.99));
  if (err != NULL)
    fprintf(stderr, "sload: %s\n", err);
  lat_release(&all);
  for (int i = 0; i < opt.conns; i++) {
    httpc_conn_release(&ws[i].c);
    lat_release(&ws[i].lat);
  }
  free(body);
  return errors > 0 || records == 0 ? 1 : 0;
}
