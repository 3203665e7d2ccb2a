/* main.c -- the `tarn` command: subcommand dispatch, and the only place
 * that wires the parts together (store, services, HTTP server).
 *
 * `tarn server` blocks SIGINT/SIGTERM in every thread and waits for them in
 * main: on either it stops accepting, lets in-flight requests finish for up
 * to SHUTDOWN_DEADLINE_MS, then closes the store (pending commits finish).
 *
 * Invariants (cmd_server):
 *   (1) sandbox_system_init runs before any thread starts (it forks).
 *   (2) Stop order: events before fn and queue (it delivers into them);
 *       fn_system_stop and queue_system_stop before the HTTP servers stop
 *       (parked requests are answered first); the store closes last.
 *   (3) A failed start step jumps forward to the one release block, which
 *       runs the stop order over whatever was made (every destructor there
 *       accepts NULL).
 *
 * Start reading at cmd_server().
 */
#include "api/apigatewayv2.h"
#include "api/athena.h"
#include "api/console.h"
#include "api/dynamodb.h"
#include "api/firehose.h"
#include "api/glue.h"
#include "api/iam.h"
#include "api/kinesis.h"
#include "api/lambda.h"
#include "api/lambda_events.h"
#include "api/lambda_urls.h"
#include "api/native.h"
#include "api/native_events.h"
#include "api/rds.h"
#include "api/rds_data.h"
#include "api/runtime_api.h"
#include "api/s3.h"
#include "api/s3control.h"
#include "api/secretsmanager.h"
#include "api/sns.h"
#include "api/sqs.h"
#include "api/states.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/netpolicy.h"
#include "base/pg.h"
#include "base/seal.h"
#include "batch/batch.h"
#include "catalog/catalog.h"
#include "cli/batch.h"
#include "cli/cli.h"
#include "cli/conf.h"
#include "cli/events.h"
#include "cli/flow.h"
#include "cli/fn.h"
#include "cli/queue.h"
#include "cli/stream.h"
#include "events/events.h"
#include "flow/flow.h"
#include "fn/fn.h"
#include "gateway/gateway.h"
#include "http/http.h"
#include "queue/queue.h"
#include "sandbox/sandbox.h"
#include "store/store.h"
#include "stream/stream.h"

#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define TARN_VERSION "0.1.0"
#define SHUTDOWN_DEADLINE_MS 10000
#define RUNTIME_API_THREADS 4   /* the Runtime API socket's server (functions_open) */

static cli_credentials server_keys;
static const char *progname = "tarn";

/* The keyring: the administrator's key, then live functions' derived keys
 * and IAM users' keys (api/iam.c). */
static const char *lookup_secret(void *ctx, const char *access_key)
{
  static _Thread_local char other[FN_KEY_MAX];
  size_t n = strlen(access_key);
  if (n == strlen(server_keys.access_key)) {
    /* not secret, but compare without an early exit anyway */
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
      diff |= (unsigned char)(access_key[i] ^ server_keys.access_key[i]);
    if (diff == 0)
      return server_keys.secret_key;
  }
  return api_authz_secret(access_key, other);
}

static void usage(FILE *f)
{
  fputs("usage: tarn <command> [options]\n"
        "\n"
        "  server [--data DIR] [--listen HOST:PORT] [--strict-iam]\n"
        "                                             run the server (default ./tarn-data, "
        "127.0.0.1:9000)\n"
        "         [--allow-endpoint HOST[:PORT]]...   let SNS deliver to this loopback or private\n"
        "                                             host (also TARN_ALLOW_ENDPOINTS=h1,h2)\n"
        "         [--objects s3://BUCKET[/PREFIX]]    keep object bytes in another S3 endpoint\n"
        "         [--objects-endpoint URL] [--objects-region R]   (also TARN_OBJECTS,\n"
        "                                             TARN_OBJECTS_ENDPOINT, TARN_OBJECTS_REGION,\n"
        "                                             TARN_OBJECTS_ACCESS_KEY, TARN_OBJECTS_SECRET_KEY)\n"
        "         [--objects-access-key K] [--objects-secret-key S] [--objects-timeout SECONDS]\n"
        "         [--objects-max-calls N] [--objects-delete-delay SECONDS]\n"
        "         [--objects-orphan-grace SECONDS] [--objects-sweep-interval SECONDS]\n"
        "         [--config FILE]                     the same settings from a file (name = value;\n"
        "                                             flags given as well win)\n"
        "         [--metadata postgres://...]         keep metadata in PostgreSQL, shared by nodes\n"
        "                                             (also TARN_METADATA)\n"
        "  env    [--data DIR] [--listen HOST:PORT]   print export lines for the AWS CLI and SDKs\n"
        "  sql    [--format table|csv|json] \"SQL\"     run SQL over the objects in the buckets\n"
        "         [--database DB]                     and the catalog's tables (default: default)\n"
        "  fn     deploy|invoke|logs|ls|rm ...        run folders as functions (tarn fn help)\n"
        "  events [--once] [--json]                   watch object events, deliveries and batches live\n"
        "  queue  ls|create|send|receive|tail|...     queues (tarn queue help)\n"
        "  topic  ls|create|publish|subscribe|...     topics (tarn topic help)\n"
        "  stream ls|create|put|tail|rm               Kinesis streams (tarn stream help)\n"
        "  flow   ls|create|run|start|history|...     state machines (tarn flow help)\n"
        "  batch  ls|show|tag|confirm|cancel          S3 Batch Operations jobs (tarn batch help)\n"
        "  version                                    print the version\n",
        f);
}

static int parse_listen(const char *s, char *host, size_t hostcap, int *port)
{
  const char *colon = strrchr(s, ':');
  if (colon == NULL || colon == s || (size_t)(colon - s) >= hostcap)
    return -1;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end != '\0' || p < 0 || p > 65535 || end == colon + 1)
    return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  *port = (int)p;
  return 0;
}

/* ---- functions (fn/, sandbox/, the Runtime API and platform sockets) ---- */

/* The runtimes/ folder: $TARN_RUNTIME_DIR, else beside the binary's build
 * or install folder. */
static void find_runtime_dir(char *out, size_t cap)
{
  const char *env = getenv("TARN_RUNTIME_DIR");
  if (env != NULL && *env) {
    snprintf(out, cap, "%s", env);
    return;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash != NULL)
    *slash = '\0';
  const char *tries[] = {"/../runtimes", "/runtimes", "/../share/tarn/runtimes"};
  for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s%s", exe, tries[i]);
    char real[PATH_MAX];
    if (realpath(path, real) != NULL && access(real, R_OK | X_OK) == 0) {
      snprintf(out, cap, "%s", real);
      return;
    }
  }
  snprintf(out, cap, "/usr/share/tarn/runtimes");
}

/* The built Java runtime client's folder (runtimes/java/meson.build) beside
 * the binary, or "" when there is none. */
static void find_java_runtime_dir(char *out, size_t cap)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash != NULL)
    *slash = '\0';
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/runtimes/java/tarn-runtime.jar", exe);
  out[0] = '\0';
  if (access(path, R_OK) == 0)
    snprintf(out, cap, "%s/runtimes/java", exe);
}

/* The server's settings a configuration file may hold (cli/conf.h): the
 * names of cmd_server's flags. */
static const char *const server_settings[] = {
  "data", "listen", "strict-iam", "allow-endpoint", "objects", "objects-endpoint",
  "objects-region", "objects-access-key", "objects-secret-key", "objects-timeout",
  "objects-max-calls", "objects-delete-delay", "objects-orphan-grace",
  "objects-sweep-interval", "metadata", NULL};

/* A positive number of seconds (or calls) of a flag or variable; -1 when
 * it is not one. NULL: 0 (the default). */
static int positive(const char *v)
{
  if (v == NULL)
    return 0;
  char *end;
  long n = strtol(v, &end, 10);
  return *v != '\0' && *end == '\0' && n > 0 && n <= 1000000 ? (int)n : -1;
}

static uint32_t env_u32(const char *name)
{
  const char *v = getenv(name);
  return v != NULL ? (uint32_t)strtoul(v, NULL, 10) : 0;
}

typedef struct functions {
  fn_system *fn;
  http_service *lambda;
  http_service *runtime_api;  /* the Runtime API's HTTP side */
  http_server *runtime_srv;   /* DATA/run/runtime.sock: the Runtime API */
  http_server *platform_srv;  /* DATA/run/platform.sock: tarn's APIs for functions */
  char run_dir[PATH_MAX];
} functions;

/* Opens the function system (sandbox_system_init must have succeeded). */
static int functions_open(functions *f, const char *data, store *st, pg_pool *metadata, err *e)
{
  if (snprintf(f->run_dir, sizeof f->run_dir, "%s/run", data) >= (int)sizeof f->run_dir)
    return err_set(e, ERR_INVALID, "the data directory's path '%s' is too long", data);
  if (cli_make_dir(f->run_dir, e) != 0)
    return -1;
  char runtime_dir[PATH_MAX];
  find_runtime_dir(runtime_dir, sizeof runtime_dir);
  char rt_sock[PATH_MAX + 16];
  char pf_sock[PATH_MAX + 16];
  snprintf(rt_sock, sizeof rt_sock, "%s/runtime.sock", f->run_dir);
  snprintf(pf_sock, sizeof pf_sock, "%s/platform.sock", f->run_dir);
  char java_dir[PATH_MAX + 64];
  find_java_runtime_dir(java_dir, sizeof java_dir);
  fn_options o = {
      .data_dir = data,
      .runtime_dir = runtime_dir,
      .java_runtime_dir = java_dir[0] ? java_dir : NULL,
      .runtime_socket = rt_sock,
      .platform_socket = pf_sock,
      .access_key = server_keys.access_key,
      .secret_key = server_keys.secret_key,
      .account_concurrency = env_u32("TARN_FN_CONCURRENCY"),
      .idle_seconds = env_u32("TARN_FN_IDLE_SECONDS"),
      .metadata = metadata,
  };
  if (fn_system_open(&o, &f->fn, e) != 0)
    return -1;
  /* A small pool: every call is short, and an idle instance's GET next is
     parked (api/runtime_api.c), holding no thread. */
  f->runtime_api = runtime_api_service_new(f->fn);
  http_config rt = {.listen_unix = rt_sock, .open_service = f->runtime_api,
                    .threads = RUNTIME_API_THREADS};
  if (http_server_start(&rt, &f->runtime_srv, e) != 0)
    return -1;
  f->lambda = lambda_service_new(f->fn, st);
  log_info("functions: runtimes from %s, Runtime API on %s", runtime_dir, rt_sock);
  return 0;
}

/* The platform socket: the main server's services, for functions. */
static int functions_start(functions *f, const http_config *main_cfg, err *e)
{
  http_config pf = *main_cfg;
  char pf_sock[PATH_MAX + 16];
  snprintf(pf_sock, sizeof pf_sock, "%s/platform.sock", f->run_dir);
  pf.listen_unix = pf_sock;
  pf.listen_host = NULL;
  pf.listen_port = 0;
  if (http_server_start(&pf, &f->platform_srv, e) != 0)
    return -1;
  return fn_system_start(f->fn, e);
}

/* Stops the platform and runtime servers, then closes the function system;
 * accepts a zeroed or half-built f. Call after fn_system_stop (parked
 * invocations are answered before their servers stop). */
static void functions_close(functions *f)
{
  f->platform_srv = http_server_stop(f->platform_srv, SHUTDOWN_DEADLINE_MS);
  f->runtime_srv = http_server_stop(f->runtime_srv, 1000);
  f->fn = fn_system_close(f->fn);
  f->lambda = lambda_service_free(f->lambda);
  f->runtime_api = runtime_api_service_free(f->runtime_api);
}

static void raise_fd_limit(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void write_fn_metrics(void *ctx, buf *out)
{
  fn_metrics(ctx, out);
}

static void write_events_metrics(void *ctx, buf *out)
{
  events_metrics(ctx, out);
}

/* Firehose's format conversion: a Glue table's columns from the catalog. */
static int firehose_table_columns(void *ctx, const char *catalog_id, const char *database,
                                  const char *table, const char *version_id, json_t **columns,
                                  err *e)
{
  json_t *doc = NULL;
  int rc = catalog_table_get(ctx, database, table, &doc, e);
  if (rc == ERR_ENTITY_NOT_FOUND)
    return STREAM_ERR_NOT_FOUND;
  if (rc != 0)
    return rc;
  json_t *cols = json_object_get(json_object_get(doc, "StorageDescriptor"), "Columns");
  *columns = json_is_array(cols) ? json_incref(cols) : json_array();
  json_decref(doc);
  return 0;
}

static void write_stream_metrics(void *ctx, buf *out)
{
  stream_metrics(ctx, out);
}

/* A state machine's execution acts as its role (api/iam.h). */
static int authorize_execution(void *ctx, const char *role_arn, const char *action,
                               const char *resource, err *e)
{
  return api_authorize_role(role_arn, "StepFunctions", action, resource, e);
}

/* A Batch Operations job acts as its RoleArn on every task (api/iam.h). */
static int authorize_job(void *ctx, const char *role_arn, const char *action,
                         const char *resource, err *e)
{
  return api_authorize_role(role_arn, "s3-batch-operations", action, resource, e);
}

/* A delivery stream writes its objects as its destination's role. */
static int authorize_delivery(void *ctx, const char *role_arn, const char *action,
                              const char *resource, err *e)
{
  return api_authorize_role(role_arn, "Firehose", action, resource, e);
}

/* A crawler lists and reads its targets and writes its tables as its Role;
   one tarn does not know may also write the catalog (AWSGlueServiceRole's
   part), unless IAM is strict. */
static int authorize_crawler(void *ctx, const char *role_arn, const char *action,
                             const char *resource, err *e)
{
  static const char *const glue[] = {"glue:", NULL};
  return api_authorize_role_also(role_arn, "AWS-Crawler", action, resource, glue, e);
}

static void write_rdb_metrics(void *ctx, buf *out)
{
  rdb_metrics(ctx, out);
}

static void log_delivery_failed(const char *subscription, const char *why)
{
  log_warn("delivery to '%s' failed: %s", subscription, why);
}

/* The heap of a long-lived server: one malloc arena per core (at least
 * two), and freed memory kept up to SERVER_HEAP_KEEP at each arena's top
 * instead of handed back at once. A query's buffers (aggregation
 * partitions, decoded pages) are then reused by the next query instead of
 * faulted in again page by page, which cost about half the CPU of a
 * high-cardinality GROUP BY over Parquet (bench/RESULTS.md); fewer arenas
 * keep what is retained near one query's peak. Blocks below
 * SERVER_HEAP_MMAP come from the arenas (setting the trim threshold stops
 * glibc from raising its mmap threshold by itself, to this same 32 MiB
 * ceiling). Set before any thread starts. */
#define SERVER_HEAP_KEEP (64 << 20)
#define SERVER_HEAP_MMAP (32 << 20)
static void server_heap(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  mallopt(M_ARENA_MAX, n > 2 ? (int)n : 2);
  mallopt(M_TRIM_THRESHOLD, SERVER_HEAP_KEEP);
  mallopt(M_MMAP_THRESHOLD, SERVER_HEAP_MMAP);
}

/* Runs the server until SIGINT or SIGTERM. Every resource is released in
 * one place, at `out`, in the stop order; each destructor there accepts
 * NULL (or a part that was never started), so a failed start step only
 * jumps there. Start order: sandbox_system_init before any thread (it
 * forks the spawner), then the store, queues, functions, events and the
 * HTTP server. */
static int cmd_server(int argc, char **argv)
{
  server_heap();
  const char *dir = "./tarn-data";
  const char *listen = "127.0.0.1:9000";
  /* what tarn may connect to for a caller: base/netpolicy.h */
  static netpolicy *egress;
  egress = netpolicy_new();
  err pe = {0};
  const char *allow_env = getenv("TARN_ALLOW_ENDPOINTS");
  if (allow_env != NULL && netpolicy_allow(egress, allow_env, &pe) != 0) {
    fprintf(stderr, "tarn server: TARN_ALLOW_ENDPOINTS: %s\n", pe.msg);
    egress = netpolicy_free(egress);
    return 2;
  }
  /* the object backend (store/remote.c): flags, else the configuration
   * file, else the environment */
  store_remote_conf objects = {.url = getenv("TARN_OBJECTS"),
                               .endpoint = getenv("TARN_OBJECTS_ENDPOINT"),
                               .access_key = getenv("TARN_OBJECTS_ACCESS_KEY"),
                               .secret_key = getenv("TARN_OBJECTS_SECRET_KEY"),
                               .region = getenv("TARN_OBJECTS_REGION")};
  const char *obj_num[5] = {getenv("TARN_OBJECTS_TIMEOUT_SECONDS"),
                            getenv("TARN_OBJECTS_MAX_CALLS"),
                            getenv("TARN_OBJECTS_DELETE_DELAY_SECONDS"),
                            getenv("TARN_OBJECTS_ORPHAN_GRACE_SECONDS"),
                            getenv("TARN_OBJECTS_SWEEP_SECONDS")};
  static const char *const obj_flags[5] = {"--objects-timeout", "--objects-max-calls",
                                           "--objects-delete-delay", "--objects-orphan-grace",
                                           "--objects-sweep-interval"};
  /* shared metadata (base/pg.h): flags, else the environment */
  const char *metadata_url = getenv("TARN_METADATA");
  const char *strict_env = getenv("TARN_STRICT_IAM");
  bool strict_iam = strict_env != NULL && strcmp(strict_env, "1") == 0;
  /* --config FILE: its settings come first, so flags given as well win */
  static char **args;
  static int nargs;
  for (int i = 0; i + 1 < argc; i++) {
    if (strcmp(argv[i], "--config") != 0)
      continue;
    if (args != NULL) {
      fprintf(stderr, "tarn server: --config is given twice\n");
      egress = netpolicy_free(egress);
      return 2;
    }
    if (cli_conf_args(argv[i + 1], server_settings, &nargs, &args, &pe) != 0) {
      fprintf(stderr, "tarn server: %s\n", pe.msg);
      egress = netpolicy_free(egress);
      return 2;
    }
  }
  static char **all;  /* dir, listen and the rest point into it until exit */
  all = xcalloc((size_t)(nargs + argc) + 1, sizeof *all);
  int nall = 0;
  for (int i = 0; i < nargs; i++)
    all[nall++] = args[i];
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      i++;
    else
      all[nall++] = argv[i];
  }
  argv = all;
  argc = nall;
  for (int i = 0; i < argc; i++) {
    int num = -1;
    for (int k = 0; k < 5 && num < 0; k++)
      if (strcmp(argv[i], obj_flags[k]) == 0)
        num = k;
    if (num >= 0 && i + 1 < argc)
      obj_num[num] = argv[++i];
    else if (strcmp(argv[i], "--strict-iam") == 0)
      strict_iam = true;
    else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
      dir = argv[++i];
    else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
      listen = argv[++i];
    else if (strcmp(argv[i], "--objects") == 0 && i + 1 < argc)
      objects.url = argv[++i];
    else if (strcmp(argv[i], "--objects-endpoint") == 0 && i + 1 < argc)
      objects.endpoint = argv[++i];
    else if (strcmp(argv[i], "--objects-region") == 0 && i + 1 < argc)
      objects.region = argv[++i];
    else if (strcmp(argv[i], "--objects-access-key") == 0 && i + 1 < argc)
      objects.access_key = argv[++i];
    else if (strcmp(argv[i], "--objects-secret-key") == 0 && i + 1 < argc)
      objects.secret_key = argv[++i];
    else if (strcmp(argv[i], "--metadata") == 0 && i + 1 < argc)
      metadata_url = argv[++i];
    else if (strcmp(argv[i], "--allow-endpoint") == 0 && i + 1 < argc) {
      if (netpolicy_allow(egress, argv[++i], &pe) != 0) {
        fprintf(stderr, "tarn server: --allow-endpoint: %s\n", pe.msg);
        egress = netpolicy_free(egress);
        free(all);
        return 2;
      }
    } else {
      fprintf(stderr, "tarn server: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      egress = netpolicy_free(egress);
      free(all);
      return 2;
    }
  }
  int *obj_val[5] = {&objects.timeout_s, &objects.max_calls, &objects.delete_delay_s,
                     &objects.orphan_grace_s, &objects.sweep_s};
  for (int k = 0; k < 5; k++)
    if ((*obj_val[k] = positive(obj_num[k])) < 0) {
      fprintf(stderr, "tarn server: %s wants a positive whole number, not '%s'\n",
              obj_flags[k], obj_num[k]);
      egress = netpolicy_free(egress);
      free(all);
      return 2;
    }
  if (metadata_url != NULL && (*metadata_url == '\0' || strcmp(metadata_url, "lmdb") == 0))
    metadata_url = NULL; /* the embedded index, the default */
  if (metadata_url != NULL && strncmp(metadata_url, "postgres://", 11) != 0 &&
      strncmp(metadata_url, "postgresql://", 13) != 0) {
    fprintf(stderr, "tarn server: --metadata wants lmdb or a postgres:// URL, not '%s'\n",
            metadata_url);
    egress = netpolicy_free(egress);
    free(all);
    return 2;
  }
  char host[256];
  int port;
  if (parse_listen(listen, host, sizeof host, &port) != 0 ||
      netpolicy_self(egress, host, (unsigned)port, &pe) != 0) {
    fprintf(stderr, "tarn server: --listen wants HOST:PORT, not '%s'\n", listen);
    egress = netpolicy_free(egress);
    return 2;
  }

  /* Signals are taken by sigwait below; every thread started after this inherits the mask. */
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  int rc = 1;
  err e = {0};
  store *st = NULL;
  pg_pool *metadata = NULL; /* --metadata: the parts whose state it keeps share this pool */
  queue_system *qs = NULL;
  events_system *ev = NULL;
  functions fns = {0};
  http_service *sqs = NULL;
  http_service *sns = NULL;
  http_service *native = NULL;
  http_service *s3 = NULL;
  iam_system *iam = NULL;
  http_service *iam_svc = NULL;
  stream_system *streams = NULL;
  http_service *kinesis = NULL;
  http_service *firehose = NULL;
  flow_system *flows = NULL;
  http_service *states_svc = NULL;
  batch_system *batches = NULL;
  http_service *control = NULL;
  kv *kvs = NULL;
  athena *ath = NULL;
  http_service *athena_svc = NULL;
  http_service *ddb = NULL;
  catalog *cat = NULL;
  http_service *glue = NULL;
  crawlers *crawls = NULL;
  gateway *gw = NULL;
  apigw *apis = NULL;
  rdb *dbs = NULL;
  http_service *rds_svc = NULL;
  http_service *rds_data_svc = NULL;
  http_service *secrets_svc = NULL;
  http_service *console_svc = NULL;
  http_server *srv = NULL;

  if (cli_make_dir(dir, &e) != 0) {
    log_error("%s", e.msg);
    goto out;
  }
  char real[PATH_MAX];
  if (realpath(dir, real) == NULL)
    snprintf(real, sizeof real, "%s", dir);
  /* The sandbox starts its spawner process here, before any thread. */
  char sandbox_state[PATH_MAX + 16];
  snprintf(sandbox_state, sizeof sandbox_state, "%s/sandbox", real);
  bool sandboxes = sandbox_system_init(sandbox_state, &e) == 0;
  if (!sandboxes)
    log_warn("functions disabled: %s", e.msg);
  err_clear(&e);
  bool created = false;
  if (cli_credentials_load(real, true, &server_keys, &created, &e) != 0) {
    log_error("%s", e.msg);
    goto out;
  }
  seal_set_secret(server_keys.secret_key); /* shard iterators outlive a restart */

  if (getenv("TARN_ACCESS_KEY") != NULL)
    log_info("credentials: from TARN_ACCESS_KEY / TARN_SECRET_KEY");
  else
    log_info("credentials: %s/credentials%s", real, created ? " (created)" : "");
  if (store_open(real, &st, &e) != 0) {
    log_error("cannot open the store in '%s': %s", real, e.msg);
    goto out;
  }
  if (store_remote_mark(st, objects.url, false, &e) != 0) {
    log_error("%s", e.msg);
    goto out;
  }
  if (objects.url != NULL && *objects.url) {
    if (store_remote_set(st, &objects, &e) != 0 ||
        store_remote_mark(st, objects.url, true, &e) != 0) {
      log_error("object backend %s: %s", objects.url, e.msg);
      goto out;
    }
    log_info("objects: %s at %s", objects.url,
             objects.endpoint != NULL ? objects.endpoint : "AWS S3");
  }
  if (metadata_url != NULL) {
    if (pg_pool_open(metadata_url, 32, &metadata, &e) != 0) {
      log_error("metadata database: %s", e.msg);
      goto out;
    }
    if (store_metadata_set(st, metadata, &e) != 0) {
      log_error("metadata database: the object index: %s", e.msg);
      goto out;
    }
    log_info("metadata: PostgreSQL (--metadata)");
  }
  queue_options qo = {.data_dir = real, .access_key = server_keys.access_key,
                      .secret_key = server_keys.secret_key, .egress = egress,
                      .delivery_failed = log_delivery_failed, .metadata = metadata};
  if (queue_system_open(&qo, &qs, &e) != 0) {
    log_error("cannot open the queues in '%s': %s", real, e.msg);
    goto out;
  }
  sqs = sqs_service_new(qs);
  sns = sns_service_new(qs);
  native = native_service_new(st, TARN_VERSION);
  s3 = s3_service_new(st);
  s3_service_set_keys(s3, lookup_secret, NULL, server_keys.access_key);
  if (sandboxes && functions_open(&fns, real, st, metadata, &e) != 0) {
    log_error("cannot start functions: %s", e.msg);
    goto out;
  }
  if (fns.fn != NULL)
    native_service_add_metrics(native, write_fn_metrics, fns.fn);
  if (iam_system_open(real, &iam, &e) != 0) {
    log_error("cannot open IAM in '%s': %s", real, e.msg);
    goto out;
  }
  iam_svc = iam_service_new(iam);
  api_authz_attach(iam, fns.fn, strict_iam, server_keys.access_key);
  if (strict_iam)
    log_info("strict IAM: functions whose role tarn does not know get no access");
  /* before the streams: Firehose's format conversion reads its tables */
  if ((metadata != NULL ? catalog_open_pg(metadata, &cat, &e) : catalog_open(real, &cat, &e)) !=
      0) {
    log_error("cannot open the catalog in '%s': %s", metadata != NULL ? "PostgreSQL" : real,
              e.msg);
    goto out;
  }
  stream_options so = {.data_dir = real, .st = st, .fn = fns.fn,
                       .schema_lookup = firehose_table_columns, .schema_ctx = cat,
                       .authorize = authorize_delivery};
  if (stream_system_open(&so, &streams, &e) != 0) {
    log_error("cannot open the streams in '%s': %s", real, e.msg);
    goto out;
  }
  native_service_add_metrics(native, write_stream_metrics, streams);
  /* events: bucket notifications, event source mappings, async destinations */
  if (kv_open(real, &kvs, &e) != 0) {
    log_error("cannot open the key-value tables in '%s': %s", real, e.msg);
    goto out;
  }
  ddb = dynamodb_service_new(kvs);
  events_options eo = {.data_dir = real, .st = st, .q = qs, .fn = fns.fn, .streams = streams,
                       .kv = kvs, .metadata = metadata};
  if (events_system_open(&eo, &ev, &e) != 0)
    log_warn("bucket notifications and event source mappings are off: %s", e.msg);
  s3_service_set_events(s3, ev);
  lambda_events_attach(ev);
  native_events_attach(ev);
  if (ev != NULL)
    native_service_add_metrics(native, write_events_metrics, ev);
  kinesis = kinesis_service_new(streams);
  firehose = firehose_service_new(streams);
  /* on shared metadata, crawls and Athena's queries are owned by this node */
  char node[PATH_MAX + 300] = "";
  if (metadata != NULL) {
    char hostname[256] = "";
    gethostname(hostname, sizeof hostname - 1);
    snprintf(node, sizeof node, "%s:%s", hostname, real);
  }
  athena_options ao = {.data_dir = real, .st = st, .catalog = cat,
                       .authorize = api_authorize_later, .metadata = metadata,
                       .node = node[0] != '\0' ? node : NULL};
  if (athena_open(&ao, &ath, &e) != 0) {
    log_error("cannot open the query history in '%s': %s", real, e.msg);
    goto out;
  }
  flow_options fo = {.data_dir = real, .fn = fns.fn, .q = qs, .st = st, .athena = ath,
                     .kv = kvs, .streams = streams, .authorize = authorize_execution};
  if (flow_system_open(&fo, &flows, &e) != 0) {
    log_error("cannot open the workflows in '%s': %s", real, e.msg);
    goto out;
  }
  states_svc = states_service_new(flows);
  crawler_options co = {.cat = cat, .st = st, .authorize = authorize_crawler,
                        .node = node[0] != '\0' ? node : NULL};
  if (crawlers_open(&co, &crawls, &e) != 0) {
    log_error("cannot open the crawlers: %s", e.msg);
    goto out;
  }
  events_observe(ev, crawlers_observe, crawls); /* crawlers in event mode */
  glue = glue_service_new(cat, crawls);
  native_service_set_catalog(native, cat); /* SQL sees the catalog's tables */
  athena_svc = athena_service_new(ath);
  native_service_add_metrics(native, athena_metrics, ath);
  batch_options bo = {.data_dir = real, .fn = fns.fn, .st = st, .authorize = authorize_job};
  if (batch_system_open(&bo, &batches, &e) != 0) {
    log_error("cannot open the batch jobs in '%s': %s", real, e.msg);
    goto out;
  }
  control = s3control_service_new(batches);
  s3_service_set_control(s3, control);
  /* HTTP APIs and function URLs: the front door needs functions */
  if (gateway_open(real, &gw, &e) != 0) {
    log_error("cannot open the HTTP APIs in '%s': %s", real, e.msg);
    goto out;
  }
  if (metadata != NULL && gateway_share(gw, metadata, &e) != 0) {
    log_error("metadata database: function URLs: %s", e.msg);
    goto out;
  }
  lambda_urls_attach(gw);
  /* serverless PostgreSQL: clusters, the Data API, the secrets they read */
  rdb_options ro = {.data_dir = real};
  const char *tx_idle = getenv("TARN_RDB_TX_IDLE_SECONDS"); /* AWS: 180 */
  if (tx_idle != NULL && atol(tx_idle) > 0)
    ro.tx_idle_ms = (int64_t)atol(tx_idle) * 1000;
  /* how long a statement waits for a resume (0: AWS's way, DatabaseResumingException at once) */
  const char *rwait = getenv("TARN_RDB_RESUME_WAIT_SECONDS");
  if (rwait != NULL && rwait[0] != '\0')
    ro.resume_wait_ms = atol(rwait) > 0 ? (int64_t)atol(rwait) * 1000 : -1;
  const char *rdelay = getenv("TARN_RDB_TEST_RESUME_DELAY_MS"); /* tests: a slow resume */
  if (rdelay != NULL && atol(rdelay) > 0)
    ro.resume_delay_ms = atol(rdelay);
  if (rdb_open(&ro, &dbs, &e) != 0) {
    log_warn("RDS clusters and the Data API are off: %s", e.msg);
    err_clear(&e);
  }
  http_service *services[18] = {s3, sqs, sns, iam_svc, kinesis, firehose, states_svc, ddb, glue,
                                athena_svc};
  size_t nservices = 10;
  if (dbs != NULL) {
    rds_svc = rds_service_new(dbs);
    rds_data_svc = rds_data_service_new(dbs);
    secrets_svc = secretsmanager_service_new(dbs);
    services[nservices++] = rds_svc;
    services[nservices++] = rds_data_svc;
    services[nservices++] = secrets_svc;
    native_service_add_metrics(native, write_rdb_metrics, dbs);
  }
  if (fns.lambda != NULL) {
    apis = apigw_new(gw, fns.fn, egress);
    services[nservices++] = fns.lambda;
    services[nservices++] = apigw_management(apis);
    services[nservices++] = apigw_front_door(apis);
  }
  console_svc = console_service_new(); /* the web console's files at /_tarn/console/ */
  services[nservices++] = console_svc;
  http_config cfg = {
      .listen_host = host,
      .listen_port = port,
      .secret_lookup = lookup_secret,
      .admin_access_key = server_keys.access_key,
      .native = native,
      .services = services,
      .nservices = nservices,
      .log_requests = true,
  };
  if (http_server_start(&cfg, &srv, &e) != 0) {
    log_error("%s", e.msg);
    goto out;
  }
  native_service_attach(native, srv);
  if (fns.fn != NULL && functions_start(&fns, &cfg, &e) != 0) {
    log_error("cannot start functions: %s", e.msg);
    goto out;
  }
  int bound = http_server_port(srv);
  char queue_endpoint[300];
  snprintf(queue_endpoint, sizeof queue_endpoint, "http://%s:%d",
           strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, bound);
  if (queue_system_start(qs, queue_endpoint, &e) != 0)
    log_warn("topic deliveries to functions and HTTP endpoints are off: %s", e.msg);
  if (ev != NULL && events_system_start(ev, &e) != 0)
    log_warn("event deliveries are off: %s", e.msg);
  if (stream_system_start(streams, &e) != 0)
    log_warn("Firehose deliveries are off: %s", e.msg);
  if (flow_system_start(flows, &e) != 0)
    log_warn("workflow executions are off: %s", e.msg);
  if (athena_start(ath, &e) != 0)
    log_warn("Athena query executions are off: %s", e.msg);
  if (batch_system_start(batches, &e) != 0)
    log_warn("batch jobs are off: %s", e.msg);
  log_info("tarn %s serving %s on http://%s:%d", TARN_VERSION, real, host, bound);
  fprintf(stderr,
          "\n  endpoint     http://%s:%d\n"
          "  credentials  %s/credentials\n"
          "  AWS CLI      eval \"$(%s env --data %s --listen %s:%d)\" && aws s3 ls\n\n",
          host, bound, real, progname, dir, host, bound);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  log_info("signal %d: stopping (in-flight requests get %d ms)", sig, SHUTDOWN_DEADLINE_MS);
  rc = 0;

out:
  events_system_stop(ev); /* before what it delivers into */
  stream_system_stop(streams); /* deliveries call functions and the store */
  native_events_attach(NULL);
  flow_system_stop(flows); /* before fn: no step starts an invocation after this */
  batch_system_stop(batches); /* likewise for batch tasks */
  fn_system_stop(fns.fn); /* invocations waiting in handlers return first */
  queue_system_stop(qs);  /* long polls answer first */
  srv = http_server_stop(srv, SHUTDOWN_DEADLINE_MS);
  athena_stop(ath); /* running queries end; they are failed at the next start */
  lambda_events_attach(NULL);
  ev = events_system_close(ev);
  api_authz_attach(NULL, NULL, false, NULL);
  functions_close(&fns);
  apis = apigw_free(apis); /* after every server that used it stopped */
  dbs = rdb_close(dbs); /* stops every PostgreSQL cleanly */
  rds_svc = rds_service_free(rds_svc);
  rds_data_svc = rds_data_service_free(rds_data_svc);
  secrets_svc = secretsmanager_service_free(secrets_svc);
  lambda_urls_attach(NULL);
  console_svc = console_service_free(console_svc);
  gw = gateway_close(gw);
  states_svc = states_service_free(states_svc);
  athena_svc = athena_service_free(athena_svc);
  ath = athena_close(ath); /* before the store its queries write into */
  flows = flow_system_close(flows); /* after fn: no invocation calls back any more */
  batches = batch_system_close(batches);
  control = s3control_service_free(control);
  iam_svc = iam_service_free(iam_svc);
  iam = iam_system_close(iam);
  sqs = sqs_service_free(sqs);
  sns = sns_service_free(sns);
  ddb = dynamodb_service_free(ddb);
  glue = glue_service_free(glue);
  kvs = kv_close(kvs);
  qs = queue_system_close(qs);
  kinesis = kinesis_service_free(kinesis);
  firehose = firehose_service_free(firehose);
  streams = stream_system_close(streams);
  s3 = s3_service_free(s3);
  native = native_service_free(native);
  crawls = crawlers_close(crawls); /* crawls write into the catalog; events stopped above */
  cat = catalog_close(cat); /* after the SQL queries that read it */
  st = store_close(st); /* last: pending commits finish */
  pg_pool_close(metadata);
  sandbox_system_release();
  egress = netpolicy_free(egress); /* after the queues: their workers read it */
  if (rc == 0)
    log_info("stopped");
  return rc;
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  progname = argv[0];
  const char *cmd = argv[1];
  if (strcmp(cmd, "server") == 0)
    return cmd_server(argc - 2, argv + 2);
  if (strcmp(cmd, "env") == 0)
    return cli_env(argc - 2, argv + 2);
  if (strcmp(cmd, "sql") == 0)
    return cli_sql(argc - 2, argv + 2);
  if (strcmp(cmd, "fn") == 0)
    return cli_fn(argc - 2, argv + 2);
  if (strcmp(cmd, "events") == 0)
    return cli_events(argc - 2, argv + 2);
  if (strcmp(cmd, "queue") == 0)
    return cli_queue(argc - 2, argv + 2);
  if (strcmp(cmd, "topic") == 0)
    return cli_topic(argc - 2, argv + 2);
  if (strcmp(cmd, "stream") == 0)
    return cli_stream(argc - 2, argv + 2);
  if (strcmp(cmd, "flow") == 0)
    return cli_flow(argc - 2, argv + 2);
  if (strcmp(cmd, "batch") == 0)
    return cli_batch(argc - 2, argv + 2);
  if (strcmp(cmd, "version") == 0) {
    printf("tarn %s\n", TARN_VERSION);
    return 0;
  }
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "tarn: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
