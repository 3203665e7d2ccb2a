/* bench/fn/fnload.c -- the client of bench/fn_bench.sh: times tarn's Lambda
 * API (cold starts, warm invocations, new sandboxes per second) and the
 * floors it is compared with (the same bootstrap fork+exec'd with no
 * isolation against an in-process Runtime API; any command fork+exec'd);
 * and, for bench/queue_bench.sh, the latency from an S3 PUT to the start of
 * the function its bucket notifies (op event).
 *
 * Usage: fnload OP [options] (see usage()). Each OP prints one line of
 * name=value pairs on stdout, times in milliseconds.
 *
 * Invariants:
 *   (1) Every request goes through bench/fn/httpc.c: a keep-alive TCP
 *       connection per thread, signed with tarn's own SigV4 signer
 *       (service "lambda"), so the client's cost is the same C code path
 *       for every figure.
 *   (2) An invocation counts only when its answer is 200 and carries the
 *       function's {"ok":1}; anything else is an error, and the first one
 *       is printed on stderr.
 *   (3) Functions a measurement creates, it deletes (untimed) before it
 *       prints, so one measurement's instances do not load the next.
 *
 * Start reading at main().
 */
#include "httpc.h"

#include "base/hash.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CONNS 64

typedef struct options {
  int port;
  const char *access_key;
  const char *secret_key;
  const char *runtime;      /* provided, python3.11, nodejs20.x */
  const char *handler;
  const char *zip_path;
  const char *function;     /* one function's name */
  const char *prefix;       /* names of many: <prefix>-<i> */
  int count;
  int conns;
  double duration;
  const char *bootstrap;    /* floor-rt: the program */
  const char *url;          /* warm: GET this path unsigned (an HTTP API route
                               or function URL) instead of Invoke */
} options;

static options opt = {.runtime = "provided", .handler = "echo", .prefix = "bench", .count = 20,
                      .conns = 1, .duration = 2};
static char *create_tail; /* ...,"Code":{"ZipFile":"<base64>"}} (one copy) */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("fnload: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void conn_init(httpc_conn *c)
{
  if (opt.url != NULL)
    httpc_conn_init(c, "127.0.0.1", opt.port, NULL, NULL);
  else
    httpc_conn_init(c, "127.0.0.1", opt.port, opt.access_key, opt.secret_key);
}

/* ---- the Lambda API ---- */

static void zip_load(void)
{
  int fd = open(opt.zip_path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0)
    die("cannot open zip '%s'", opt.zip_path);
  uint8_t *zip = malloc((size_t)st.st_size);
  if (zip == NULL || read(fd, zip, (size_t)st.st_size) != st.st_size)
    die("cannot read zip '%s'", opt.zip_path);
  close(fd);
  size_t b64 = base64_encoded_len((size_t)st.st_size);
  create_tail = malloc(b64 + 512);
  int n = sprintf(create_tail, "\"Runtime\":\"%s\",\"Handler\":\"%s\",\"Role\":"
                  "\"arn:aws:iam::000000000000:role/bench\",\"Code\":{\"ZipFile\":\"",
                  opt.runtime, opt.handler);
  base64_encode(zip, (size_t)st.st_size, create_tail + n);
  strcat(create_tail, "\"}}");
  free(zip);
}

/* CreateFunction; 0 or -1 (message on stderr). */
static int fn_create(httpc_conn *c, const char *name)
{
  size_t tl = strlen(create_tail);
  char *body = malloc(tl + 256);
  int n = sprintf(body, "{\"FunctionName\":\"%s\",", name);
  memcpy(body + n, create_tail, tl + 1);
  httpc_request r = {.method = "POST", .path = "/2015-03-31/functions", .service = "lambda",
                     .body = body, .len = (size_t)n + tl};
  int st = httpc_do(c, &r);
  free(body);
  if (st != 201) {
    fprintf(stderr, "fnload: CreateFunction '%s': %d %s%.300s\n", name, st,
            st < 0 ? c->err : "", c->body);
    return -1;
  }
  return 0;
}

static int fn_delete(httpc_conn *c, const char *name)
{
  char path[256];
  snprintf(path, sizeof path, "/2015-03-31/functions/%s", name);
  httpc_request r = {.method = "DELETE", .path = path, .service = "lambda"};
  int st = httpc_do(c, &r);
  if (st != 204 && st != 200) {
    fprintf(stderr, "fnload: DeleteFunction '%s': %d %s%.300s\n", name, st,
            st < 0 ? c->err : "", c->body);
    return -1;
  }
  return 0;
}

/* Invoke (RequestResponse); 0 when the function answered {"ok":1}. errmsg
 * (optional) gets the first failure. */
static int fn_invoke(httpc_conn *c, const char *name, char *errmsg, size_t cap)
{
  char path[256];
  snprintf(path, sizeof path, "/2015-03-31/functions/%s/invocations", name);
  httpc_request r = {.method = "POST", .path = path, .service = "lambda", .body = "{}",
                     .len = 2};
  if (opt.url != NULL) /* through the front door: anonymous GET */
    r = (httpc_request){.method = "GET", .path = opt.url, .service = "execute-api"};
  int st = httpc_do(c, &r);
  if (st == 200 && strstr(c->body, "\"ok\"") != NULL)
    return 0;
  if (errmsg != NULL && errmsg[0] == '\0')
    snprintf(errmsg, cap, "Invoke '%s': %d %.200s%.200s", name, st, st < 0 ? c->err : "", c->body);
  return -1;
}

static void name_of(char *out, size_t cap, int i)
{
  snprintf(out, cap, "%s-%d", opt.prefix, i);
}

/* ---- cold: CreateFunction then its first Invoke, one function at a time ---- */

static int op_cold(void)
{
  zip_load();
  httpc_conn c;
  conn_init(&c);
  lat_set create = {0}, first = {0}, total = {0}, second = {0};
  char err[512] = "";
  int errors = 0;
  for (int i = 0; i < opt.count; i++) {
    char name[128];
    name_of(name, sizeof name, i);
    double t0 = httpc_now();
    if (fn_create(&c, name) != 0)
      return 1;
    double t1 = httpc_now();
    int rc = fn_invoke(&c, name, err, sizeof err);
    double t2 = httpc_now();
    int rc2 = fn_invoke(&c, name, err, sizeof err);
    double t3 = httpc_now();
    if (rc == 0 && rc2 == 0) {
      lat_add(&create, t1 - t0);
      lat_add(&first, t2 - t1);
      lat_add(&total, t2 - t0);
      lat_add(&second, t3 - t2);
    } else {
      errors++;
    }
    fn_delete(&c, name);
  }
  printf("op=cold runtime=%s n=%zu errors=%d create_p50_ms=%.3f create_p99_ms=%.3f "
         "cold_p50_ms=%.3f cold_p99_ms=%.3f total_p50_ms=%.3f total_p99_ms=%.3f "
         "second_p50_ms=%.3f\n",
         opt.runtime, first.n, errors, lat_ms(&create, 0.5), lat_ms(&create, 0.99),
         lat_ms(&first, 0.5), lat_ms(&first, 0.99), lat_ms(&total, 0.5), lat_ms(&total, 0.99),
         lat_ms(&second, 0.5));
  if (err[0])
    fprintf(stderr, "fnload: %s\n", err);
  httpc_conn_release(&c);
  return errors > 0 ? 1 : 0;
}

/* ---- warm: invocations of one function for --duration ---- */

typedef struct worker {
  int id;
  pthread_barrier_t *start;
  long ops;
  long errors;
  lat_set lat;
  double t_start;
  double t_end;
  char err[512];
} worker;

static atomic_int next_index;

static void *warm_main(void *arg)
{
  worker *w = arg;
  httpc_conn c;
  conn_init(&c);
  httpc_conn_open(&c);
  pthread_barrier_wait(w->start);
  w->t_start = httpc_now();
  double deadline = w->t_start + opt.duration;
  for (;;) {
    double t0 = httpc_now();
    if (t0 >= deadline)
      break;
    if (fn_invoke(&c, opt.function, w->err, sizeof w->err) == 0) {
      w->ops++;
      lat_add(&w->lat, httpc_now() - t0);
    } else if (++w->errors > 100) {
      break;
    }
  }
  w->t_end = httpc_now();
  httpc_conn_release(&c);
  return NULL;
}

/* Each worker invokes functions <prefix>-<i> for the next free i, once. */
static void *sandboxes_main(void *arg)
{
  worker *w = arg;
  httpc_conn c;
  conn_init(&c);
  httpc_conn_open(&c);
  pthread_barrier_wait(w->start);
  w->t_start = httpc_now();
  for (;;) {
    int i = atomic_fetch_add(&next_index, 1);
    if (i >= opt.count)
      break;
    char name[128];
    name_of(name, sizeof name, i);
    double t0 = httpc_now();
    if (fn_invoke(&c, name, w->err, sizeof w->err) == 0) {
      w->ops++;
      lat_add(&w->lat, httpc_now() - t0);
    } else {
      w->errors++;
    }
  }
  w->t_end = httpc_now();
  httpc_conn_release(&c);
  return NULL;
}

static int run_workers(const char *op, void *(*fn)(void *))
{
  worker ws[MAX_CONNS];
  pthread_t th[MAX_CONNS];
  pthread_barrier_t start;
  memset(ws, 0, sizeof ws);
  pthread_barrier_init(&start, NULL, (unsigned)opt.conns);
  for (int i = 0; i < opt.conns; i++) {
    ws[i].id = i;
    ws[i].start = &start;
    pthread_create(&th[i], NULL, fn, &ws[i]);
  }
  lat_set all = {0};
  long ops = 0, errors = 0;
  double t0 = 0, t1 = 0;
  const char *err = NULL;
  for (int i = 0; i < opt.conns; i++) {
    pthread_join(th[i], NULL);
    ops += ws[i].ops;
    errors += ws[i].errors;
    lat_merge(&all, &ws[i].lat);
    lat_release(&ws[i].lat);
    if (i == 0 || ws[i].t_start < t0)
      t0 = ws[i].t_start;
    if (ws[i].t_end > t1)
      t1 = ws[i].t_end;
    if (err == NULL && ws[i].err[0])
      err = ws[i].err;
  }
  double secs = t1 > t0 ? t1 - t0 : 1e-9;
  printf("op=%s conns=%d ops=%ld errors=%ld secs=%.3f ops_s=%.1f p50_ms=%.3f p99_ms=%.3f\n", op,
         opt.conns, ops, errors, secs, (double)ops / secs, lat_ms(&all, 0.5),
         lat_ms(&all, 0.99));
  if (err != NULL)
    fprintf(stderr, "fnload: %s\n", err);
  lat_release(&all);
  return errors > 0 || ops == 0 ? 1 : 0;
}

static int op_sandboxes(void)
{
  zip_load();
  httpc_conn c;
  conn_init(&c);
  for (int i = 0; i < opt.count; i++) {
    char name[128];
    name_of(name, sizeof name, i);
    if (fn_create(&c, name) != 0)
      return 1;
  }
  atomic_store(&next_index, 0);
  int rc = run_workers("sandboxes", sandboxes_main);
  for (int i = 0; i < opt.count; i++) {
    char name[128];
    name_of(name, sizeof name, i);
    fn_delete(&c, name);
  }
  httpc_conn_release(&c);
  return rc;
}

static int op_create(void)
{
  zip_load();
  httpc_conn c;
  conn_init(&c);
  int rc = fn_create(&c, opt.function);
  char err[512] = "";
  if (rc == 0 && fn_invoke(&c, opt.function, err, sizeof err) != 0) {
    fprintf(stderr, "fnload: %s\n", err);
    rc = -1;
  }
  if (rc == 0)
    printf("op=create function=%s runtime=%s\n", opt.function, opt.runtime);
  httpc_conn_release(&c);
  return rc ? 1 : 0;
}

static int op_delete(void)
{
  httpc_conn c;
  conn_init(&c);
  int rc = fn_delete(&c, opt.function);
  if (rc == 0)
    printf("op=delete function=%s\n", opt.function);
  httpc_conn_release(&c);
  return rc ? 1 : 0;
}

/* ---- event: S3 PUT to the start of a warm function ---- */

typedef struct put_rec {
  int64_t start_ns;          /* wall clock before the PUT was sent */
  int64_t end_ns;            /* when its 200 came back */
  int64_t fn_ns;             /* the function's "EVT" stamp, 0 until seen */
} put_rec;

static int s3_call(httpc_conn *c, const char *method, const char *path, const char *sub,
                   const char *body)
{
  str_pair q[1] = {{sub ? sub : "", ""}};
  httpc_request r = {.method = method, .path = path, .query = q, .nquery = sub ? 1 : 0,
                     .service = "s3", .body = body, .len = body ? strlen(body) : 0};
  return httpc_do(c, &r);
}

/* The bucket (--prefix) notifies --function (handler "stamp") of every
 * object created; --count PUTs one every --duration milliseconds, then
 * the function's log gives when each event reached it. */
static int op_event(void)
{
  zip_load();
  httpc_conn c;
  conn_init(&c);
  char path[512], err[512] = "";
  snprintf(path, sizeof path, "/%s", opt.prefix);
  int st = s3_call(&c, "PUT", path, NULL, NULL);
  if (st != 200)
    die("CreateBucket '%s': %d %s%.300s", opt.prefix, st, st < 0 ? c.err : "", c.body);
  if (fn_create(&c, opt.function) != 0)
    return 1;
  const char *a = strstr(c.body, "\"FunctionArn\"");
  char arn[256];
  if (a == NULL || (a = strchr(a + 13, '"')) == NULL || strcspn(a + 1, "\"") >= sizeof arn)
    die("CreateFunction: no FunctionArn in %.300s", c.body);
  snprintf(arn, sizeof arn, "%.*s", (int)strcspn(a + 1, "\""), a + 1);
  if (fn_invoke(&c, opt.function, err, sizeof err) != 0) /* one warm instance */
    die("%s", err);
  char xml[1024];
  snprintf(xml, sizeof xml,
           "<NotificationConfiguration><CloudFunctionConfiguration><Id>bench</Id>"
           "<CloudFunction>%s</CloudFunction><Event>s3:ObjectCreated:*</Event>"
           "</CloudFunctionConfiguration></NotificationConfiguration>", arn);
  st = s3_call(&c, "PUT", path, "notification", xml);
  if (st != 200)
    die("PutBucketNotificationConfiguration: %d %s%.300s", st, st < 0 ? c.err : "", c.body);

  put_rec *recs = calloc((size_t)opt.count, sizeof *recs);
  double interval = opt.duration / 1e3;
  double next = httpc_now();
  for (int i = 0; i < opt.count; i++) {
    while (httpc_now() < next)
      usleep(200);
    next += interval;
    snprintf(path, sizeof path, "/%s/ev-%d", opt.prefix, i);
    recs[i].start_ns = httpc_wall_ns();
    st = s3_call(&c, "PUT", path, NULL, "x");
    recs[i].end_ns = httpc_wall_ns();
    if (st != 200)
      die("PUT '%s': %d %s%.300s", path, st, st < 0 ? c.err : "", c.body);
  }

  /* The log, until every event is in it (or 20 s). */
  int seen = 0;
  double give_up = httpc_now() + 20;
  snprintf(path, sizeof path, "/2015-03-31/functions/%s/logs", opt.function);
  while (seen < opt.count && httpc_now() < give_up) {
    usleep(200 * 1000);
    str_pair q[1] = {{"bytes", "4000000"}};
    httpc_request r = {.method = "GET", .path = path, .query = q, .nquery = 1,
                       .service = "lambda"};
    if (httpc_do(&c, &r) != 200)
      die("GetFunctionLogs: %d %s%.300s", c.status, c.status < 0 ? c.err : "", c.body);
    seen = 0;
    for (const char *p = strstr(c.body, "EVT "); p != NULL; p = strstr(p + 4, "EVT ")) {
      long long ns;
      int i;
      if (sscanf(p, "EVT %lld ev-%d", &ns, &i) == 2 && i >= 0 && i < opt.count) {
        recs[i].fn_ns = ns;
      }
    }
    for (int i = 0; i < opt.count; i++)
      seen += recs[i].fn_ns != 0;
  }
  lat_set from_start = {0}, from_ack = {0}, put = {0};
  for (int i = 0; i < opt.count; i++) {
    lat_add(&put, (double)(recs[i].end_ns - recs[i].start_ns) / 1e9);
    if (recs[i].fn_ns == 0)
      continue;
    lat_add(&from_start, (double)(recs[i].fn_ns - recs[i].start_ns) / 1e9);
    lat_add(&from_ack, (double)(recs[i].fn_ns - recs[i].end_ns) / 1e9);
  }
  printf("op=event n=%d seen=%d put_to_fn_p50_ms=%.3f put_to_fn_p99_ms=%.3f "
         "ack_to_fn_p50_ms=%.3f ack_to_fn_p99_ms=%.3f put_p50_ms=%.3f put_p99_ms=%.3f\n",
         opt.count, seen, lat_ms(&from_start, 0.5), lat_ms(&from_start, 0.99),
         lat_ms(&from_ack, 0.5), lat_ms(&from_ack, 0.99), lat_ms(&put, 0.5),
         lat_ms(&put, 0.99));
  free(recs);
  httpc_conn_release(&c);
  return seen == opt.count ? 0 : 1;
}

/* ---- floors ---- */

static pid_t spawn(char **argv, char **envp)
{
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    execve(argv[0], argv, envp);
    _exit(127);
  }
  return pid;
}

/* fork+exec+wait of argv, --count times, with the environment variables a
 * function's instance gets besides Lambda's own (fn/registry.c): the
 * caller's could slow the floor down (NODE_EXTRA_CA_CERTS makes node read
 * every CA certificate at start). */
static int op_spawn(char **argv)
{
  static char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=en_US.UTF-8",
                         "TZ=:UTC", NULL};
  lat_set l = {0};
  for (int i = 0; i < opt.count; i++) {
    double t0 = httpc_now();
    pid_t pid = spawn(argv, envp);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
      die("'%s' failed", argv[0]);
    lat_add(&l, httpc_now() - t0);
  }
  printf("op=spawn n=%zu p50_ms=%.3f p99_ms=%.3f\n", l.n, lat_ms(&l, 0.5), lat_ms(&l, 0.99));
  return 0;
}

/* Reads from fd until buf holds a full request (headers and a
 * Content-Length body); 0 or -1. */
static int request_read(int fd, char *buf, size_t cap)
{
  size_t len = 0;
  for (;;) {
    char *h = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
    if (h != NULL) {
      buf[len] = '\0';
      size_t off = (size_t)(h + 4 - buf);
      char *cl = strcasestr(buf, "content-length:");
      size_t clen = cl && cl < h ? strtoul(cl + 15, NULL, 10) : 0;
      if (len >= off + clen)
        return 0;
    }
    ssize_t k = read(fd, buf + len, cap - 1 - len);
    if (k <= 0)
      return -1;
    len += (size_t)k;
  }
}

/* The bootstrap outside any sandbox: fork+exec it against a Runtime API
 * served here (one event, like tarn's first invocation), timed from fork
 * to its response; then the connection closes and it exits. */
static int op_floor_rt(void)
{
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 16) != 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &sl) != 0)
    die("cannot listen: %s", strerror(errno));
  char api[64], *envp[4], *argv[2] = {(char *)opt.bootstrap, NULL};
  snprintf(api, sizeof api, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%d", ntohs(sa.sin_port));
  envp[0] = api;
  envp[1] = "_HANDLER=echo";
  envp[2] = NULL;
  lat_set l = {0};
  static char buf[65536];
  static const char event[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Lambda-Runtime-Aws-Request-Id: 8476a536-e9f4-11e8-9739\r\n"
                              "Lambda-Runtime-Deadline-Ms: 9999999999999\r\n"
                              "Content-Length: 2\r\n\r\n{}";
  static const char accepted[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
  for (int i = 0; i < opt.count; i++) {
    double t0 = httpc_now();
    pid_t pid = spawn(argv, envp);
    int fd = accept(ls, NULL, NULL);
    if (pid < 0 || fd < 0 || request_read(fd, buf, sizeof buf) != 0)
      die("the bootstrap '%s' did not ask for an event", opt.bootstrap);
    if (write(fd, event, sizeof event - 1) < 0 || request_read(fd, buf, sizeof buf) != 0 ||
        strstr(buf, "\"ok\"") == NULL)
      die("the bootstrap '%s' did not answer", opt.bootstrap);
    lat_add(&l, httpc_now() - t0);
    if (write(fd, accepted, sizeof accepted - 1) < 0)
      die("write: %s", strerror(errno));
    close(fd);
    int st;
    waitpid(pid, &st, 0);
  }
  close(ls);
  printf("op=floor-rt n=%zu p50_ms=%.3f p99_ms=%.3f\n", l.n, lat_ms(&l, 0.5), lat_ms(&l, 0.99));
  return 0;
}

static void usage(void)
{
  fputs("usage: fnload OP [options]\n"
        "  cold        CreateFunction then Invoke twice, --count functions one by one\n"
        "  warm        Invoke --function from --conns clients for --duration seconds\n"
        "  sandboxes   create --count functions, then --conns clients invoke each once\n"
        "  create      CreateFunction --function and invoke it once; delete: DeleteFunction\n"
        "  floor-rt    fork+exec --bootstrap against a Runtime API served here, --count times\n"
        "  event       bucket --prefix notifies --function (handler stamp); --count PUTs,\n"
        "              one per --duration ms; PUT to function start from its log\n"
        "  spawn       fork+exec+wait the command after --, --count times, clean env\n"
        "  freeport    print a free TCP port on 127.0.0.1\n"
        "options: --port N, --runtime R, --handler H, --zip FILE, --function F,\n"
        "  --prefix P (functions P-0, P-1, ...), --count N, --conns N, --duration S,\n"
        "  --bootstrap FILE, --url PATH (warm: GET PATH unsigned instead of Invoke);\n"
        "  credentials from TARN_ACCESS_KEY / TARN_SECRET_KEY\n",
        stderr);
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    usage();
    return 2;
  }
  const char *op = argv[1];
  static const struct option longopts[] = {
    {"port", required_argument, NULL, 'p'},     {"runtime", required_argument, NULL, 'r'},
    {"handler", required_argument, NULL, 'H'},  {"zip", required_argument, NULL, 'z'},
    {"function", required_argument, NULL, 'f'}, {"prefix", required_argument, NULL, 'P'},
    {"count", required_argument, NULL, 'n'},    {"conns", required_argument, NULL, 'c'},
    {"duration", required_argument, NULL, 'd'}, {"bootstrap", required_argument, NULL, 'b'},
    {"url", required_argument, NULL, 'u'},      {NULL, 0, NULL, 0},
  };
  opt.access_key = getenv("TARN_ACCESS_KEY");
  opt.secret_key = getenv("TARN_SECRET_KEY");
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
    switch (ch) {
    case 'p': opt.port = atoi(optarg); break;
    case 'r': opt.runtime = optarg; break;
    case 'H': opt.handler = optarg; break;
    case 'z': opt.zip_path = optarg; break;
    case 'f': opt.function = optarg; break;
    case 'P': opt.prefix = optarg; break;
    case 'n': opt.count = atoi(optarg); break;
    case 'c': opt.conns = atoi(optarg); break;
    case 'd': opt.duration = atof(optarg); break;
    case 'b': opt.bootstrap = optarg; break;
    case 'u': opt.url = optarg; break;
    default: usage(); return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  if (opt.conns < 1 || opt.conns > MAX_CONNS)
    die("--conns must be 1..%d", MAX_CONNS);
  if (strcmp(op, "freeport") == 0) {
    printf("%d\n", httpc_free_port());
    return 0;
  }
  if (strcmp(op, "spawn") == 0) {
    if (optind >= argc)
      die("spawn needs a command after --");
    return op_spawn(argv + optind);
  }
  if (strcmp(op, "floor-rt") == 0) {
    if (opt.bootstrap == NULL)
      die("floor-rt needs --bootstrap");
    return op_floor_rt();
  }
  if (opt.port <= 0 || opt.access_key == NULL || opt.secret_key == NULL)
    die("need --port and TARN_ACCESS_KEY / TARN_SECRET_KEY");
  bool needs_zip = strcmp(op, "cold") == 0 || strcmp(op, "sandboxes") == 0 ||
                   strcmp(op, "create") == 0 || strcmp(op, "event") == 0;
  if (needs_zip && opt.zip_path == NULL)
    die("%s needs --zip", op);
  if ((strcmp(op, "warm") == 0 || strcmp(op, "create") == 0 || strcmp(op, "delete") == 0 ||
       strcmp(op, "event") == 0) &&
      opt.function == NULL)
    die("%s needs --function", op);
  if (strcmp(op, "cold") == 0)
    return op_cold();
  if (strcmp(op, "warm") == 0)
    return run_workers("warm", warm_main);
  if (strcmp(op, "sandboxes") == 0)
    return op_sandboxes();
  if (strcmp(op, "create") == 0)
    return op_create();
  if (strcmp(op, "delete") == 0)
    return op_delete();
  if (strcmp(op, "event") == 0)
    return op_event();
  usage();
  return 2;
}
