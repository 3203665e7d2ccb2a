/* bench/queue/qload.c -- the SQS load generator of bench/queue_bench.sh:
 * SendMessage, ReceiveMessage and DeleteMessage (or their batches of 10)
 * from concurrent clients, over the SQS JSON protocol (AWS JSON 1.0, what
 * current SDKs speak), each request signed with tarn's own SigV4 signer.
 *
 * Usage: qload --port N --queue NAME [--conns C] [--batch 1|10]
 *              [--duration SECS] [--size BYTES] [--port2 M]
 * With --port2, every second client talks to the node on port M (two
 * nodes sharing their queues: `tarn server --metadata`).
 * With --topic T, the send phase publishes instead (SNS Publish, or
 * PublishBatch for --batch > 1) to topic T, to which the queue is
 * subscribed (raw delivery): op=publish counts acknowledged publishes,
 * and the receive phase shows that their copies arrived.
 * creates the queue, then runs three timed phases, one line each on stdout:
 *   send     every client sends for --duration seconds;
 *   receive  every client receives (MaxNumberOfMessages = --batch, a
 *            visibility time-out of 10 minutes, no wait) until the queue
 *            answers empty or --duration passes, keeping the receipt handles;
 *   delete   every client deletes the messages it received (one by one or
 *            10 per DeleteMessageBatch) until done or --duration passes.
 * A line: op=send conns=8 batch=10 msgs=... requests=... errors=0 secs=...
 * msgs_s=... p50_ms=... p99_ms=... (latency of one request).
 *
 * Invariants:
 *   (1) One thread and one keep-alive connection (bench/fn/httpc.c) per
 *       client; one request at a time per connection.
 *   (2) A message counts only when the server confirmed it: status 200 and,
 *       for a batch, an empty "Failed" list; anything else is an error and
 *       the first one is printed on stderr.
 *
 * Start reading at main().
 */
#include "httpc.h"

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
  int port2;                   /* 0, or the second node's: odd clients use it */
  const char *access_key;
  const char *secret_key;
  const char *queue;
  const char *topic;           /* --topic: publish instead of send */
  int conns;
  int batch;
  double duration;
  int size;
} options;

static options opt = {.conns = 1, .batch = 1, .duration = 2, .size = 100};
static char queue_url[512];
static char topic_arn[512];    /* form-encoded */
static char *message;          /* --size bytes of text */

enum phase { SEND, RECEIVE, DELETE };
static const char *phase_name[] = {"send", "receive", "delete"};
#define PHASE_NAME(ph) ((ph) == SEND && opt.topic != NULL ? "publish" : phase_name[ph])

typedef struct worker {
  int id;
  enum phase phase;
  pthread_barrier_t *start;
  httpc_conn c;
  char **handles;              /* receipt handles, JSON-escaped as received */
  size_t nhandles;
  size_t caphandles;
  long msgs;
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
  fputs("qload: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static int sqs_call(httpc_conn *c, const char *action, const char *body, size_t len)
{
  char target[64];
  snprintf(target, sizeof target, "AmazonSQS.%s", action);
  str_pair h[2] = {{"Content-Type", "application/x-amz-json-1.0"}, {"X-Amz-Target", target}};
  httpc_request r = {.method = "POST", .path = "/", .headers = h, .nheaders = 2,
                     .service = "sqs", .body = body, .len = len};
  return httpc_do(c, &r);
}

/* An SNS call (query protocol: a form body). */
static int sns_call(httpc_conn *c, const char *body, size_t len)
{
  str_pair h[1] = {{"Content-Type", "application/x-www-form-urlencoded"}};
  httpc_request r = {.method = "POST", .path = "/", .headers = h, .nheaders = 1,
                     .service = "sns", .body = body, .len = len};
  return httpc_do(c, &r);
}

static void worker_fail(worker *w, const char *what)
{
  w->errors++;
  if (w->err[0] == '\0')
    snprintf(w->err, sizeof w->err, "%s: %d %.200s%.200s", what, w->c.status,
             w->c.status < 0 ? w->c.err : "", w->c.body);
}

/* A batch answer lists its failures in "Failed": [...]. */
static bool batch_ok(const char *body)
{
  const char *f = strstr(body, "\"Failed\"");
  if (f == NULL)
    return true;
  f = strchr(f, '[');
  return f != NULL && f[1] == ']';
}

static void handle_add(worker *w, const char *h, size_t n)
{
  if (w->nhandles == w->caphandles) {
    w->caphandles = w->caphandles ? w->caphandles * 2 : 4096;
    w->handles = realloc(w->handles, w->caphandles * sizeof *w->handles);
    if (w->handles == NULL)
      die("out of memory");
  }
  char *s = malloc(n + 1);
  if (s == NULL)
    die("out of memory");
  memcpy(s, h, n);
  s[n] = '\0';
  w->handles[w->nhandles++] = s;
}

/* Collects every "ReceiptHandle":"..." of a ReceiveMessage answer, still
 * JSON-escaped (sent back inside JSON as is); returns how many. */
static int handles_take(worker *w, const char *body)
{
  int n = 0;
  for (const char *p = strstr(body, "\"ReceiptHandle\""); p != NULL;
       p = strstr(p, "\"ReceiptHandle\"")) {
    p = strchr(p + 15, '"');
    if (p == NULL)
      break;
    const char *s = ++p;
    while (*p && *p != '"')
      p += *p == '\\' && p[1] ? 2 : 1;
    handle_add(w, s, (size_t)(p - s));
    n++;
  }
  return n;
}

/* One request of the worker's phase; returns the messages it moved, 0 when
 * a receive found the queue empty, -1 on error. */
static int step(worker *w, char *body, size_t cap, size_t *next_handle)
{
  int k = 0;
  size_t n = 0;
  switch (w->phase) {
  case SEND:
    if (opt.topic != NULL) {
      if (opt.batch == 1) {
        n = (size_t)snprintf(body, cap, "Action=Publish&TopicArn=%s&Message=%s", topic_arn,
                             message);
      } else {
        n = (size_t)snprintf(body, cap, "Action=PublishBatch&TopicArn=%s", topic_arn);
        for (k = 1; k <= opt.batch; k++)
          n += (size_t)snprintf(body + n, cap - n,
                                "&PublishBatchRequestEntries.member.%d.Id=m%d"
                                "&PublishBatchRequestEntries.member.%d.Message=%s",
                                k, k, k, message);
      }
      if (sns_call(&w->c, body, n) != 200 || strstr(w->c.body, "<Failed><member>") != NULL) {
        worker_fail(w, opt.batch == 1 ? "Publish" : "PublishBatch");
        return -1;
      }
      return opt.batch;
    }
    if (opt.batch == 1) {
      n = (size_t)snprintf(body, cap, "{\"QueueUrl\":\"%s\",\"MessageBody\":\"%s\"}", queue_url,
                           message);
      if (sqs_call(&w->c, "SendMessage", body, n) != 200 || !strstr(w->c.body, "MessageId")) {
        worker_fail(w, "SendMessage");
        return -1;
      }
      return 1;
    }
    n = (size_t)snprintf(body, cap, "{\"QueueUrl\":\"%s\",\"Entries\":[", queue_url);
    for (k = 0; k < opt.batch; k++)
      n += (size_t)snprintf(body + n, cap - n, "%s{\"Id\":\"m%d\",\"MessageBody\":\"%s\"}",
                            k ? "," : "", k, message);
    n += (size_t)snprintf(body + n, cap - n, "]}");
    if (sqs_call(&w->c, "SendMessageBatch", body, n) != 200 || !batch_ok(w->c.body)) {
      worker_fail(w, "SendMessageBatch");
      return -1;
    }
    return opt.batch;
  case RECEIVE:
    n = (size_t)snprintf(body, cap, "{\"QueueUrl\":\"%s\",\"MaxNumberOfMessages\":%d,"
                         "\"VisibilityTimeout\":600,\"WaitTimeSeconds\":0}", queue_url,
                         opt.batch);
    if (sqs_call(&w->c, "ReceiveMessage", body, n) != 200) {
      worker_fail(w, "ReceiveMessage");
      return -1;
    }
    return handles_take(w, w->c.body);
  case DELETE:
    if (*next_handle >= w->nhandles)
      return 0;
    if (opt.batch == 1) {
      n = (size_t)snprintf(body, cap, "{\"QueueUrl\":\"%s\",\"ReceiptHandle\":\"%s\"}", queue_url,
                           w->handles[(*next_handle)++]);
      if (sqs_call(&w->c, "DeleteMessage", body, n) != 200) {
        worker_fail(w, "DeleteMessage");
        return -1;
      }
      return 1;
    }
    n = (size_t)snprintf(body, cap, "{\"QueueUrl\":\"%s\",\"Entries\":[", queue_url);
    for (k = 0; k < opt.batch && *next_handle < w->nhandles; k++)
      n += (size_t)snprintf(body + n, cap - n, "%s{\"Id\":\"d%d\",\"ReceiptHandle\":\"%s\"}",
                            k ? "," : "", k, w->handles[(*next_handle)++]);
    n += (size_t)snprintf(body + n, cap - n, "]}");
    if (sqs_call(&w->c, "DeleteMessageBatch", body, n) != 200 || !batch_ok(w->c.body)) {
      worker_fail(w, "DeleteMessageBatch");
      return -1;
    }
    return k;
  }
  return -1;
}

static void *worker_main(void *arg)
{
  worker *w = arg;
  size_t cap = 64 * 1024 + (size_t)(opt.size + 64) * 10;
  char *body = malloc(cap);
  size_t next_handle = 0;
  httpc_conn_open(&w->c);
  pthread_barrier_wait(w->start);
  w->t_start = httpc_now();
  double deadline = w->t_start + opt.duration;
  for (;;) {
    double t0 = httpc_now();
    if (t0 >= deadline)
      break;
    int n = step(w, body, cap, &next_handle);
    if (n > 0) {
      w->msgs += n;
      w->requests++;
      lat_add(&w->lat, httpc_now() - t0);
    } else if (n == 0) {
      break; /* queue empty, or nothing left to delete */
    } else if (w->errors > 100) {
      break;
    }
  }
  w->t_end = httpc_now();
  free(body);
  return NULL;
}

static int run_phase(worker *ws, enum phase ph)
{
  pthread_t th[MAX_CONNS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)opt.conns);
  for (int i = 0; i < opt.conns; i++) {
    worker *w = &ws[i];
    w->phase = ph;
    w->start = &start;
    w->msgs = w->requests = w->errors = 0;
    w->err[0] = '\0';
    lat_release(&w->lat);
    pthread_create(&th[i], NULL, worker_main, w);
  }
  lat_set all = {0};
  long msgs = 0, requests = 0, errors = 0;
  double t0 = 0, t1 = 0;
  const char *err = NULL;
  for (int i = 0; i < opt.conns; i++) {
    pthread_join(th[i], NULL);
    msgs += ws[i].msgs;
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
  printf("op=%s conns=%d batch=%d msgs=%ld requests=%ld errors=%ld secs=%.3f msgs_s=%.1f "
         "p50_ms=%.3f p99_ms=%.3f\n",
         PHASE_NAME(ph), opt.conns, opt.batch, msgs, requests, errors, secs, (double)msgs / secs,
         lat_ms(&all, 0.5), lat_ms(&all, 0.99));
  fflush(stdout);
  if (err != NULL)
    fprintf(stderr, "qload: %s\n", err);
  lat_release(&all);
  return errors > 0 || msgs == 0 ? 1 : 0;
}

static void usage(void)
{
  fputs("usage: qload --port N --queue NAME [--conns C] [--batch 1..10] [--duration SECS]\n"
        "             [--size BYTES] [--port2 N] [--topic NAME]   (credentials:\n"
        "             TARN_ACCESS_KEY /\n"
        "             TARN_SECRET_KEY)\n"
        "       qload freeport\n",
        stderr);
}

int main(int argc, char **argv)
{
  static const struct option longopts[] = {
    {"port", required_argument, NULL, 'p'},     {"queue", required_argument, NULL, 'q'},
    {"conns", required_argument, NULL, 'c'},    {"batch", required_argument, NULL, 'b'},
    {"duration", required_argument, NULL, 'd'}, {"size", required_argument, NULL, 's'},
    {"port2", required_argument, NULL, 'P'},    {"topic", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
  };
  if (argc > 1 && strcmp(argv[1], "freeport") == 0) {
    printf("%d\n", httpc_free_port());
    return 0;
  }
  opt.access_key = getenv("TARN_ACCESS_KEY");
  opt.secret_key = getenv("TARN_SECRET_KEY");
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
    case 'p': opt.port = atoi(optarg); break;
    case 'P': opt.port2 = atoi(optarg); break;
    case 'q': opt.queue = optarg; break;
    case 'c': opt.conns = atoi(optarg); break;
    case 'b': opt.batch = atoi(optarg); break;
    case 'd': opt.duration = atof(optarg); break;
    case 's': opt.size = atoi(optarg); break;
    case 't': opt.topic = optarg; break;
    default: usage(); return 2;
    }
  }
  if (opt.port <= 0 || opt.queue == NULL || opt.conns < 1 || opt.conns > MAX_CONNS ||
      opt.batch < 1 || opt.batch > 10 || opt.size < 1 || opt.size > 65536) {
    usage();
    return 2;
  }
  if (opt.access_key == NULL || opt.secret_key == NULL)
    die("need TARN_ACCESS_KEY and TARN_SECRET_KEY");
  signal(SIGPIPE, SIG_IGN);
  message = malloc((size_t)opt.size + 1);
  for (int i = 0; i < opt.size; i++)
    message[i] = (char)('a' + i % 26);
  message[opt.size] = '\0';

  httpc_conn c;
  httpc_conn_init(&c, "127.0.0.1", opt.port, opt.access_key, opt.secret_key);
  char body[512];
  int n = snprintf(body, sizeof body, "{\"QueueName\":\"%s\"}", opt.queue);
  if (sqs_call(&c, "CreateQueue", body, (size_t)n) != 200)
    die("CreateQueue '%s': %d %s%.300s", opt.queue, c.status, c.status < 0 ? c.err : "", c.body);
  const char *u = strstr(c.body, "\"QueueUrl\"");
  if (u == NULL || (u = strchr(u + 10, '"')) == NULL || strcspn(u + 1, "\"") >= sizeof queue_url)
    die("CreateQueue '%s': no QueueUrl in %.300s", opt.queue, c.body);
  snprintf(queue_url, sizeof queue_url, "%.*s", (int)strcspn(u + 1, "\""), u + 1);
  if (opt.topic != NULL) { /* the topic, the queue subscribed with raw delivery */
    n = snprintf(body, sizeof body, "Action=CreateTopic&Name=%s", opt.topic);
    if (sns_call(&c, body, (size_t)n) != 200)
      die("CreateTopic '%s': %d %s%.300s", opt.topic, c.status, c.status < 0 ? c.err : "",
          c.body);
    snprintf(topic_arn, sizeof topic_arn, "arn%%3Aaws%%3Asns%%3Aus-east-1%%3A000000000000%%3A%s",
             opt.topic);
    n = snprintf(body, sizeof body, "Action=Subscribe&TopicArn=%s&Protocol=sqs&Endpoint="
                 "arn%%3Aaws%%3Asqs%%3Aus-east-1%%3A000000000000%%3A%s"
                 "&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true",
                 topic_arn, opt.queue);
    if (sns_call(&c, body, (size_t)n) != 200)
      die("Subscribe: %d %s%.300s", c.status, c.status < 0 ? c.err : "", c.body);
  }
  httpc_conn_release(&c);

  worker *ws = calloc((size_t)opt.conns, sizeof *ws);
  for (int i = 0; i < opt.conns; i++) {
    ws[i].id = i;
    httpc_conn_init(&ws[i].c, "127.0.0.1", opt.port2 > 0 && i % 2 == 1 ? opt.port2 : opt.port,
                    opt.access_key, opt.secret_key);
  }
  int rc = run_phase(ws, SEND);
  rc |= run_phase(ws, RECEIVE);
  rc |= run_phase(ws, DELETE);
  for (int i = 0; i < opt.conns; i++) {
    httpc_conn_release(&ws[i].c);
    for (size_t k = 0; k < ws[i].nhandles; k++)
      free(ws[i].handles[k]);
    free(ws[i].handles);
    lat_release(&ws[i].lat);
  }
  free(ws);
  free(message);
  return rc;
}
