/* cli/flow.c -- `tarn flow`: state machines and executions from the command
 * line (DESIGN.md §3), over the Step Functions API the AWS CLI and SDKs use.
 *
 * Why: "make a machine from this file and run it" should be two short
 * commands. Names stand for ARNs (NAME -> arn:aws:states:...:stateMachine:
 * NAME); `run` starts an execution and waits for its end, printing the
 * output (StartSyncExecution for EXPRESS machines).
 *
 * Invariants:
 *   (1) A failure is one line on stderr ("tarn flow: ...") and exit code 1;
 *       bad usage exits 2; a run that ends other than SUCCEEDED exits 1.
 *   (2) Every answer is read into a buffer with a limit (RESP_MAX).
 *
 * Start reading at cli_flow().
 */
#include "cli/flow.h"

#include "base/arena.h"
#include "base/buf.h"
#include "base/text.h"
#include "cli/client.h"
#include "cli/command.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESP_MAX (16u << 20)
#define FILE_MAX (1u << 20)
#define ROLE "arn:aws:iam::000000000000:role/tarn-flow"

static const char usage[] =
    "usage: tarn flow [--data DIR] <command>\n"
    "\n"
    "  ls                              list the state machines\n"
    "  create NAME FILE [--express]    create (or update) a machine from an ASL file\n"
    "  validate FILE                   check an ASL file; prints the problem and its path\n"
    "  run NAME [INPUT|-]              start an execution, wait, print its output\n"
    "  start NAME [INPUT|-]            start an execution; prints its ARN\n"
    "  status EXECUTION_ARN            print the execution's description\n"
    "  history EXECUTION_ARN           print its events, one per line\n"
    "  stop EXECUTION_ARN              stop a running execution\n"
    "  rm NAME                         delete a machine\n"
    "\n"
    "The server is TARN_ENDPOINT (default http://127.0.0.1:9000); credentials come\n"
    "from TARN_ACCESS_KEY/TARN_SECRET_KEY, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or\n"
    "DIR/credentials (default ./tarn-data).\n";

typedef struct ctx {
  cli_target t;
  arena *a;
  int rc;
  bool quiet;            /* the next failure is not printed */
  char last_type[128];   /* the last failure's __type */
  char last_msg[512];    /* and its message */
} ctx;

/* One call: the answer object, or NULL after printing the failure. in is
 * consumed. */
static json_t *call(ctx *c, const char *op, json_t *in)
{
  char *text = json_dumps(in, JSON_COMPACT);
  json_decref(in);
  str_pair h[2] = {{"content-type", "application/x-amz-json-1.0"},
                   {"x-amz-target", arena_sprintf(c->a, "AWSStepFunctions.%s", op)}};
  buf out;
  buf_init(&out, RESP_MAX);
  cli_sink s = {.b = &out};
  cli_call cc = {.method = "POST", .path = "/", .service = "states", .headers = h,
                 .nheaders = 2, .body = text, .body_len = strlen(text),
                 .on_body = cli_sink_body, .ctx = &s};
  long status = 0;
  err e = {0};
  json_t *j = NULL;
  if (cli_send(&c->t, &cc, &status, &e) != 0) {
    c->rc = cli_fail("flow", "%s failed: %s", op, e.msg);
  } else if (s.over) {
    c->rc = cli_fail("flow", "%s failed: the answer is larger than %u bytes", op, RESP_MAX);
  } else {
    j = json_loadb(out.data != NULL ? out.data : "{}", out.len ? out.len : 2, 0, NULL);
    if (status != 200 || j == NULL) {
      const char *m = json_string_value(json_object_get(j, "message"));
      const char *type = json_string_value(json_object_get(j, "__type"));
      snprintf(c->last_type, sizeof c->last_type, "%s", type != NULL ? type : "");
      snprintf(c->last_msg, sizeof c->last_msg, "%s failed: %s", op,
               m != NULL ? m : arena_sprintf(c->a, "the server answered %ld", status));
      c->rc = 1;
      if (!c->quiet)
        cli_fail("flow", "%s", c->last_msg);
      json_decref(j);
      j = NULL;
    }
  }
  free(text);
  buf_release(&out);
  return j;
}

static const char *machine_arn(ctx *c, const char *name)
{
  if (str_starts(name, "arn:"))
    return name;
  return arena_sprintf(c->a, "arn:aws:states:us-east-1:000000000000:stateMachine:%s", name);
}

/* A file's text (or stdin for "-"), at most FILE_MAX bytes. */
static char *read_text(ctx *c, const char *path)
{
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (f == NULL) {
    c->rc = cli_fail("flow", "cannot open '%s'", path);
    return NULL;
  }
  buf b;
  buf_init(&b, FILE_MAX);
  char chunk[8192];
  size_t n;
  bool over = false;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && !over)
    over = buf_append(&b, chunk, n) != 0;
  if (f != stdin)
    fclose(f);
  if (over) {
    buf_release(&b);
    c->rc = cli_fail("flow", "'%s' is larger than %u bytes", path, FILE_MAX);
    return NULL;
  }
  char *s = arena_strndup(c->a, b.data != NULL ? b.data : "", b.len);
  buf_release(&b);
  return s;
}

static void print_json(json_t *v)
{
  char *d = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
  puts(d != NULL ? d : "null");
  free(d);
}

static int cmd_ls(ctx *c)
{
  json_t *r = call(c, "ListStateMachines", json_pack("{s:i}", "maxResults", 1000));
  if (r == NULL)
    return c->rc;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(r, "stateMachines"), i, m) {
    printf("%s\t%s\n", json_string_value(json_object_get(m, "name")),
           json_string_value(json_object_get(m, "type")));
  }
  json_decref(r);
  return 0;
}

static int cmd_create(ctx *c, int argc, char **argv)
{
  if (argc < 3)
    return cli_usage_error("flow", usage, "create wants NAME FILE");
  bool express = argc > 3 && strcmp(argv[3], "--express") == 0;
  char *def = read_text(c, argv[2]);
  if (def == NULL)
    return c->rc;
  c->quiet = true;
  json_t *r = call(c, "CreateStateMachine",
                   json_pack("{s:s, s:s, s:s, s:s}", "name", argv[1], "definition", def,
                             "roleArn", ROLE, "type", express ? "EXPRESS" : "STANDARD"));
  c->quiet = false;
  if (r == NULL && strcmp(c->last_type, "StateMachineAlreadyExists") != 0) {
    return cli_fail("flow", "%s", c->last_msg);
  } else if (r == NULL) {
    /* an existing machine: update its definition */
    c->rc = 0;
    r = call(c, "UpdateStateMachine", json_pack("{s:s, s:s}", "stateMachineArn",
                                                machine_arn(c, argv[1]), "definition", def));
    if (r == NULL)
      return c->rc;
    json_object_set_new(r, "stateMachineArn", json_string(machine_arn(c, argv[1])));
  }
  if (r == NULL)
    return c->rc;
  puts(json_string_value(json_object_get(r, "stateMachineArn")));
  json_decref(r);
  return 0;
}

static int cmd_validate(ctx *c, int argc, char **argv)
{
  if (argc < 2)
    return cli_usage_error("flow", usage, "validate wants FILE");
  char *def = read_text(c, argv[1]);
  if (def == NULL)
    return c->rc;
  json_t *r = call(c, "ValidateStateMachineDefinition", json_pack("{s:s}", "definition", def));
  if (r == NULL)
    return c->rc;
  int rc = 0;
  if (strcmp(json_string_value(json_object_get(r, "result")), "OK") == 0) {
    puts("ok");
  } else {
    json_t *d = json_array_get(json_object_get(r, "diagnostics"), 0);
    rc = cli_fail("flow", "%s: %s at %s", json_string_value(json_object_get(d, "code")),
                  json_string_value(json_object_get(d, "message")),
                  json_string_value(json_object_get(d, "location")));
  }
  json_decref(r);
  return rc;
}

static int cmd_start(ctx *c, int argc, char **argv, bool wait)
{
  if (argc < 2)
    return cli_usage_error("flow", usage, "%s wants NAME", argv[0]);
  const char *input = argc > 2 ? (strcmp(argv[2], "-") == 0 ? read_text(c, "-") : argv[2])
                               : "{}";
  if (input == NULL)
    return c->rc;
  const char *arn = machine_arn(c, argv[1]);
  json_t *m = wait ? call(c, "DescribeStateMachine", json_pack("{s:s}", "stateMachineArn", arn))
                   : NULL;
  if (wait && m == NULL)
    return c->rc;
  bool express = m != NULL && strcmp(json_string_value(json_object_get(m, "type")), "EXPRESS") == 0;
  json_decref(m);
  json_t *d = NULL;
  if (express) {
    d = call(c, "StartSyncExecution", json_pack("{s:s, s:s}", "stateMachineArn", arn, "input",
                                                input));
  } else {
    json_t *r = call(c, "StartExecution", json_pack("{s:s, s:s}", "stateMachineArn", arn,
                                                    "input", input));
    if (r == NULL)
      return c->rc;
    const char *ex = arena_strdup(c->a, json_string_value(json_object_get(r, "executionArn")));
    json_decref(r);
    if (!wait) {
      puts(ex);
      return 0;
    }
    for (;;) {
      d = call(c, "DescribeExecution", json_pack("{s:s}", "executionArn", ex));
      if (d == NULL || strcmp(json_string_value(json_object_get(d, "status")), "RUNNING") != 0)
        break;
      json_decref(d);
      struct timespec ts = {0, 100 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  if (d == NULL)
    return c->rc;
  const char *status = json_string_value(json_object_get(d, "status"));
  int rc = 0;
  if (strcmp(status, "SUCCEEDED") == 0) {
    puts(json_string_value(json_object_get(d, "output")));
  } else {
    const char *error = json_string_value(json_object_get(d, "error"));
    const char *cause = json_string_value(json_object_get(d, "cause"));
    rc = cli_fail("flow", "the execution ended %s: %s%s%s", status, error ? error : "",
                  cause ? ": " : "", cause ? cause : "");
  }
  json_decref(d);
  return rc;
}

static int cmd_exec(ctx *c, int argc, char **argv)
{
  if (argc < 2)
    return cli_usage_error("flow", usage, "%s wants EXECUTION_ARN", argv[0]);
  bool status = strcmp(argv[0], "status") == 0;
  bool stop = !status && strcmp(argv[0], "stop") == 0;
  bool history = !status && !stop;
  const char *op = status ? "DescribeExecution" : stop ? "StopExecution" : "GetExecutionHistory";
  json_t *in = json_pack("{s:s}", "executionArn", argv[1]);
  if (history)
    json_object_set_new(in, "maxResults", json_integer(1000));
  json_t *r = call(c, op, in);
  if (r == NULL)
    return c->rc;
  if (history) {
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(r, "events"), i, ev) {
      const char *k;
      json_t *v;
      const char *detail = "";
      json_object_foreach(ev, k, v) {
        if (str_ends(k, "EventDetails"))
          detail = arena_strdup(c->a, json_string_value(json_object_get(v, "name")) != NULL
                                          ? json_string_value(json_object_get(v, "name"))
                                          : "");
      }
      printf("%lld\t%s\t%s\n", (long long)json_integer_value(json_object_get(ev, "id")),
             json_string_value(json_object_get(ev, "type")), detail);
    }
  } else if (status) {
    print_json(r);
  }
  json_decref(r);
  return 0;
}

static int cmd_rm(ctx *c, int argc, char **argv)
{
  if (argc < 2)
    return cli_usage_error("flow", usage, "rm wants NAME");
  json_t *r = call(c, "DeleteStateMachine",
                   json_pack("{s:s}", "stateMachineArn", machine_arn(c, argv[1])));
  json_decref(r);
  return r == NULL ? c->rc : 0;
}

int cli_flow(int argc, char **argv)
{
  cli_args args;
  int rc = cli_args_init(&args, "flow", usage, argc, argv);
  if (rc >= 0) {
    cli_args_release(&args);
    return rc;
  }
  ctx c = {.a = arena_new()};
  err e = {0};
  if (cli_target_init(&c.t, args.dir, &e) != 0) {
    rc = cli_fail("flow", "%s", e.msg);
  } else {
    const char *cmd = args.argv[0];
    if (strcmp(cmd, "ls") == 0)
      rc = cmd_ls(&c);
    else if (strcmp(cmd, "create") == 0)
      rc = cmd_create(&c, args.argc, args.argv);
    else if (strcmp(cmd, "validate") == 0)
      rc = cmd_validate(&c, args.argc, args.argv);
    else if (strcmp(cmd, "run") == 0)
      rc = cmd_start(&c, args.argc, args.argv, true);
    else if (strcmp(cmd, "start") == 0)
      rc = cmd_start(&c, args.argc, args.argv, false);
    else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "history") == 0 ||
             strcmp(cmd, "stop") == 0)
      rc = cmd_exec(&c, args.argc, args.argv);
    else if (strcmp(cmd, "rm") == 0)
      rc = cmd_rm(&c, args.argc, args.argv);
    else
      rc = cli_usage_error("flow", usage, "unknown command '%s'", cmd);
  }
  arena_free(c.a);
  cli_args_release(&args);
  return rc;
}
