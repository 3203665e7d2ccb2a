/* cli/stream.c -- `tarn stream`: list, create and remove Kinesis streams,
 * put lines from stdin as records, and tail a stream (DESIGN.md §3).
 *
 * Why: the everyday cases (a stream to try, lines into it, what arrives)
 * should take one short command each. Every subcommand is a plain signed
 * Kinesis call (JSON 1.1), so the CLI can do nothing an SDK cannot.
 *
 * Invariants:
 *   (1) A failure is one line on stderr ("tarn stream: ...") and exit code
 *       1; bad usage exits 2.
 *   (2) Every answer is read into a buffer with a limit (RESP_MAX); put
 *       sends at most PUT_BATCH lines per call and refuses a line over the
 *       record limit.
 *   (3) put prints nothing but failures; a line is acknowledged (durable)
 *       when its batch's call returns.
 *
 * Start reading at cli_stream().
 */
#include "cli/stream.h"

#include "base/arena.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"
#include "cli/client.h"
#include "cli/command.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESP_MAX (16u << 20)
#define PUT_BATCH 500
#define PUT_BATCH_BYTES (4u << 20)
#define LINE_MAX_BYTES (1u << 20)
#define MAX_SHARDS 1000

static const char usage[] =
    "usage: tarn stream [--data DIR] <command>\n"
    "\n"
    "  ls                              list the streams\n"
    "  create NAME [--shards N]        create a stream (N shards, default 1)\n"
    "  rm NAME                         delete a stream and its records\n"
    "  put NAME [--key K]              put each line of stdin as a record (partition key K,\n"
    "                                  default the line's number), in batches\n"
    "  tail NAME [--from-start] [--once]\n"
    "                                  print records as they arrive (from the start with\n"
    "                                  --from-start); --once stops at the end\n"
    "\n"
    "The server is TARN_ENDPOINT (default http://127.0.0.1:9000); credentials come\n"
    "from TARN_ACCESS_KEY/TARN_SECRET_KEY, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or\n"
    "DIR/credentials (default ./tarn-data).\n";

typedef struct ctx {
  cli_target t;
  const char *name;       /* the stream */
  const char *key;        /* --key */
  int shards;             /* --shards */
  bool from_start, once;
} ctx;

/* One Kinesis call: the answer object, or NULL after printing the failure
 * (*rc = 1). in is consumed. */
static json_t *call(ctx *c, const char *action, json_t *in, int *rc)
{
  char *text = json_dumps(in, JSON_COMPACT);
  json_decref(in);
  char target[64];
  snprintf(target, sizeof target, "Kinesis_20131202.%s", action);
  str_pair h[2] = {{"content-type", "application/x-amz-json-1.1"}, {"x-amz-target", target}};
  buf out;
  buf_init(&out, RESP_MAX);
  cli_sink sink = {.b = &out};
  cli_call cc = {.method = "POST", .path = "/", .service = "kinesis", .headers = h,
                 .nheaders = 2, .body = text, .body_len = strlen(text),
                 .on_body = cli_sink_body, .ctx = &sink};
  long status = 0;
  err e = {0};
  json_t *j = NULL;
  if (cli_send(&c->t, &cc, &status, &e) != 0) {
    *rc = cli_fail("stream", "%s failed: %s", action, e.msg);
  } else if (sink.over) {
    *rc = cli_fail("stream", "%s failed: the answer is larger than %u bytes", action, RESP_MAX);
  } else {
    j = json_loadb(out.data != NULL ? out.data : "{}", out.len ? out.len : 2, 0, NULL);
    if (status != 200 || j == NULL) {
      const char *m = json_string_value(json_object_get(j, "message"));
      if (m != NULL)
        *rc = cli_fail("stream", "%s failed: %s", action, m);
      else
        *rc = cli_fail("stream", "%s failed: the server answered %ld", action, status);
      json_decref(j);
      j = NULL;
    }
  }
  free(text);
  buf_release(&out);
  return j;
}

static int s_ls(ctx *c)
{
  int rc = 0;
  json_t *start = NULL;
  for (;;) {
    json_t *in = json_object();
    if (start != NULL)
      json_object_set_new(in, "ExclusiveStartStreamName", start);
    json_t *r = call(c, "ListStreams", in, &rc);
    if (r == NULL)
      return rc;
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(r, "StreamNames"), i, n)
      printf("%s\n", json_string_value(n));
    bool more = json_is_true(json_object_get(r, "HasMoreStreams"));
    size_t count = json_array_size(json_object_get(r, "StreamNames"));
    start = more && count > 0 ? json_copy(json_array_get(json_object_get(r, "StreamNames"),
                                                         count - 1))
                              : NULL;
    json_decref(r);
    if (start == NULL)
      return 0;
  }
}

static int s_create(ctx *c)
{
  int rc = 0;
  json_t *r = call(c, "CreateStream",
                   json_pack("{s:s, s:i}", "StreamName", c->name, "ShardCount", c->shards), &rc);
  json_decref(r);
  return r != NULL ? 0 : rc;
}

static int s_rm(ctx *c)
{
  int rc = 0;
  json_t *r = call(c, "DeleteStream", json_pack("{s:s}", "StreamName", c->name), &rc);
  json_decref(r);
  return r != NULL ? 0 : rc;
}

/* Sends the batch; failures per record are retried once, then reported. */
static int put_batch(ctx *c, json_t *records)
{
  int rc = 0;
  for (int attempt = 0; attempt < 2 && json_array_size(records) > 0; attempt++) {
    json_t *r = call(c, "PutRecords",
                     json_pack("{s:s, s:O}", "StreamName", c->name, "Records", records), &rc);
    if (r == NULL)
      return rc;
    json_t *again = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(r, "Records"), i, x)
      if (json_object_get(x, "ErrorCode") != NULL)
        json_array_append(again, json_array_get(records, i));
    json_decref(r);
    json_array_clear(records);
    json_array_extend(records, again);
    json_decref(again);
  }
  if (json_array_size(records) > 0)
    return cli_fail("stream", "%zu records were not accepted", json_array_size(records));
  return 0;
}

static int s_put(ctx *c)
{
  json_t *records = json_array();
  size_t bytes = 0;
  unsigned long lineno = 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int rc = 0;
  while (rc == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
    lineno++;
    if (n > 0 && line[n - 1] == '\n')
      line[--n] = '\0';
    if ((size_t)n > LINE_MAX_BYTES) {
      rc = cli_fail("stream", "line %lu is longer than a record may be (1 MiB)", lineno);
      break;
    }
    char *b64 = xmalloc(base64_encoded_len((size_t)n));
    base64_encode((const uint8_t *)line, (size_t)n, b64);
    char key[32];
    snprintf(key, sizeof key, "%lu", lineno);
    if (bytes + (size_t)n + 256 > PUT_BATCH_BYTES || json_array_size(records) == PUT_BATCH) {
      rc = put_batch(c, records);
      bytes = 0;
    }
    json_array_append_new(records, json_pack("{s:s, s:s}", "Data", b64, "PartitionKey",
                                             c->key != NULL ? c->key : key));
    bytes += (size_t)n + 256;
    free(b64);
  }
  free(line);
  if (rc == 0 && json_array_size(records) > 0)
    rc = put_batch(c, records);
  json_decref(records);
  return rc;
}

static int s_tail(ctx *c)
{
  int rc = 0;
  json_t *r = call(c, "ListShards", json_pack("{s:s}", "StreamName", c->name), &rc);
  if (r == NULL)
    return rc;
  size_t n = json_array_size(json_object_get(r, "Shards"));
  if (n > MAX_SHARDS)
    n = MAX_SHARDS;
  char **its = xcalloc(n, sizeof *its);
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *id = json_string_value(
        json_object_get(json_array_get(json_object_get(r, "Shards"), i), "ShardId"));
    json_t *it = call(c, "GetShardIterator",
                      json_pack("{s:s, s:s, s:s}", "StreamName", c->name, "ShardId", id,
                                "ShardIteratorType", c->from_start ? "TRIM_HORIZON" : "LATEST"),
                      &rc);
    if (it != NULL)
      its[i] = xstrdup(json_string_value(json_object_get(it, "ShardIterator")));
    json_decref(it);
  }
  json_decref(r);
  bool open = true;
  while (rc == 0 && open) {
    bool any = false;
    open = false;
    for (size_t i = 0; i < n && rc == 0; i++) {
      if (its[i] == NULL)
        continue;
      json_t *g = call(c, "GetRecords", json_pack("{s:s}", "ShardIterator", its[i]), &rc);
      if (g == NULL)
        break;
      size_t k;
      json_t *x;
      json_array_foreach(json_object_get(g, "Records"), k, x) {
        const char *d = json_string_value(json_object_get(x, "Data"));
        size_t len = d != NULL ? strlen(d) : 0;
        uint8_t *raw = xmalloc(len + 1);
        long got = d != NULL ? base64_decode(d, len, raw, len + 1) : -1;
        if (got >= 0) {
          fwrite(raw, 1, (size_t)got, stdout);
          fputc('\n', stdout);
        }
        free(raw);
        any = true;
      }
      fflush(stdout);
      free(its[i]);
      const char *next = json_string_value(json_object_get(g, "NextShardIterator"));
      its[i] = next != NULL ? xstrdup(next) : NULL;
      open = open || its[i] != NULL;
      json_decref(g);
    }
    if (c->once && !any)
      break;
    if (!any)
      sleep(1);
  }
  for (size_t i = 0; i < n; i++)
    free(its[i]);
  free(its);
  return rc;
}

int cli_stream(int argc, char **argv)
{
  cli_args args;
  int rc = cli_args_init(&args, "stream", usage, argc, argv);
  if (rc >= 0) {
    cli_args_release(&args);
    return rc;
  }
  ctx c = {.shards = 1};
  const char *cmd = args.argv[0];
  for (int i = 1; i < args.argc && rc < 0; i++) {
    const char *a = args.argv[i];
    bool more = i + 1 < args.argc;
    if (strcmp(a, "--shards") == 0 && more)
      c.shards = atoi(args.argv[++i]);
    else if (strcmp(a, "--key") == 0 && more)
      c.key = args.argv[++i];
    else if (strcmp(a, "--from-start") == 0)
      c.from_start = true;
    else if (strcmp(a, "--once") == 0)
      c.once = true;
    else if (a[0] == '-' && a[1] == '-')
      rc = cli_usage_error("stream", usage, "unknown option '%s'", a);
    else if (c.name == NULL)
      c.name = a;
    else
      rc = cli_usage_error("stream", usage, "too many arguments");
  }
  static const struct {
    const char *name;
    int (*run)(ctx *c);
    bool needs_name;
  } cmds[] = {{"ls", s_ls, false}, {"create", s_create, true}, {"rm", s_rm, true},
              {"put", s_put, true}, {"tail", s_tail, true}};
  int found = -1;
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(cmds[i].name, cmd) == 0)
      found = (int)i;
  if (rc < 0 && found < 0)
    rc = cli_usage_error("stream", usage, "unknown command '%s'", cmd);
  if (rc < 0 && cmds[found].needs_name && c.name == NULL)
    rc = cli_usage_error("stream", usage, "%s needs a stream NAME", cmd);
  if (rc < 0) {
    err e = {0};
    if (cli_target_init(&c.t, args.dir, &e) != 0)
      rc = cli_fail("stream", "%s", e.msg);
    else
      rc = cmds[found].run(&c);
  }
  cli_args_release(&args);
  return rc;
}
