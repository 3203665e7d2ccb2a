/* cli/events.c -- `tarn events`: watch what the event wiring does, live.
 *
 * Why: an upload that should have started a function and did not is the
 * first thing a user of notifications debugs; this shows every change with
 * the deliveries it caused, every event source mapping batch and every
 * asynchronous outcome sent to a destination, as it happens.
 *
 * It reads GET /_tarn/events (api/native_events.c): JSON lines, streamed
 * with follow=1. Lines are printed one per delivery in a fixed-width human
 * form, or as they came with --json. Blank lines are the server's
 * keep-alives and are skipped.
 *
 * Invariants:
 *   (1) stdout gets only event lines (and the help asked for); an error
 *       goes to stderr as one line "tarn events: ..." (cli/command.h),
 *       followed by the usage when it is bad usage, and the exit status
 *       is non-zero.
 */
#include "cli/events.h"

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/command.h"

#include "base/buf.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (1u << 20)
#define WHO "events" /* messages begin "tarn events: " */

typedef struct watch {
  bool json;          /* print lines as they came */
  long status;        /* HTTP status, from the status line */
  buf line;           /* a partial line */
  buf error;          /* the body of an error answer */
} watch;

static const char *clock_part(const char *iso)
{
  const char *t = iso != NULL ? strchr(iso, 'T') : NULL;
  return t != NULL ? t + 1 : (iso != NULL ? iso : "");
}

static const char *str(json_t *o, const char *name)
{
  const char *s = json_string_value(json_object_get(o, name));
  return s != NULL ? s : "";
}

static void human_size(char *out, size_t cap, json_int_t b)
{
  if (b < 1000)
    snprintf(out, cap, "%lld B", (long long)b);
  else if (b < 1000000)
    snprintf(out, cap, "%.1f KB", (double)b / 1e3);
  else
    snprintf(out, cap, "%.1f MB", (double)b / 1e6);
}

/* The last part of an ARN (queue, topic or function name). */
static const char *arn_name(const char *arn)
{
  if (strncmp(arn, "arn:aws:lambda:", 15) == 0) {
    const char *f = strstr(arn, ":function:");
    return f != NULL ? f + 10 : arn;
  }
  const char *c = strrchr(arn, ':');
  return c != NULL ? c + 1 : arn;
}

static void print_human(json_t *o)
{
  const char *type = str(o, "type");
  const char *when = clock_part(str(o, "time"));
  if (strcmp(type, "s3") == 0) {
    char what[1200];
    json_t *size = json_object_get(o, "size");
    if (json_is_integer(size)) {
      char sz[32];
      human_size(sz, sizeof sz, json_integer_value(size));
      snprintf(what, sizeof what, "%s/%s (%s)", str(o, "bucket"), str(o, "key"), sz);
    } else {
      snprintf(what, sizeof what, "%s/%s", str(o, "bucket"), str(o, "key"));
    }
    json_t *ds = json_object_get(o, "deliveries");
    if (json_array_size(ds) == 0) {
      printf("%-12s s3     %-38s %s  (no matching rule)\n", when, str(o, "event"), what);
      return;
    }
    for (size_t i = 0; i < json_array_size(ds); i++) {
      json_t *d = json_array_get(ds, i);
      printf("%-12s s3     %-38s %s  -> %s %s: %s\n", when, str(o, "event"), what,
             str(d, "target"), arn_name(str(d, "arn")), str(d, "result"));
    }
  } else if (strcmp(type, "test") == 0) {
    printf("%-12s s3     %-38s %s  -> %s: %s\n", when, "s3:TestEvent", str(o, "bucket"),
           arn_name(str(o, "arn")), str(o, "result"));
  } else if (strcmp(type, "sqs") == 0) {
    printf("%-12s sqs    queue %s -> function %s: %lld messages, %lld deleted, %s\n", when,
           arn_name(str(o, "queue")), arn_name(str(o, "function")),
           (long long)json_integer_value(json_object_get(o, "messages")),
           (long long)json_integer_value(json_object_get(o, "deleted")), str(o, "result"));
  } else if (strcmp(type, "async") == 0) {
    printf("%-12s async  function %s %s after %lld attempt(s)", when,
           arn_name(str(o, "function")), str(o, "condition"),
           (long long)json_integer_value(json_object_get(o, "attempts")));
    static const char *const where[] = {"onSuccess", "onFailure", "deadLetter"};
    for (size_t i = 0; i < 3; i++) {
      json_t *d = json_object_get(o, where[i]);
      if (d != NULL)
        printf("  -> %s %s: %s", where[i], arn_name(str(d, "arn")), str(d, "result"));
    }
    printf("\n");
  } else {
    char *text = json_dumps(o, JSON_COMPACT);
    printf("%-12s %s\n", when, text != NULL ? text : "");
    free(text);
  }
}

static void emit(watch *w, const char *p, size_t n)
{
  if (n == 0)
    return;  /* keep-alive */
  if (w->json) {
    fwrite(p, 1, n, stdout);
    fputc('\n', stdout);
  } else {
    json_t *o = json_loadb(p, n, 0, NULL);
    if (o != NULL)
      print_human(o);
    json_decref(o);
  }
  fflush(stdout);
}

static int on_body(void *ctx, const char *p, size_t n)
{
  watch *w = ctx;
  if (w->status != 200)
    return buf_append(&w->error, p, n) != 0;
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl != NULL ? (size_t)(nl - p) : n;
    if (buf_append(&w->line, p, take) != 0)
      return 1;
    if (nl == NULL)
      break;
    emit(w, w->line.data != NULL ? w->line.data : "", w->line.len);
    buf_reset(&w->line);
    p += take + 1;
    n -= take + 1;
  }
  return 0;
}

static void on_header(void *ctx, const char *line, size_t n)
{
  watch *w = ctx;
  if (n > 9 && strncmp(line, "HTTP/", 5) == 0) {
    const char *sp = memchr(line, ' ', n);
    if (sp != NULL)
      w->status = strtol(sp + 1, NULL, 10);
  }
}

static const char usage_text[] =
    "usage: tarn events [--data DIR] [--once] [--json] [--after N]\n"
    "  watches the event log: object changes and their deliveries, event source\n"
    "  mapping batches, asynchronous invocation outcomes (Ctrl-C stops)\n"
    "  --once     print what the server kept (the last 1000 lines) and exit\n"
    "  --json     print the JSON lines as the server sends them\n"
    "  --after N  start after line N\n";

int cli_events(int argc, char **argv)
{
  const char *dir = "./tarn-data";
  bool once = false;
  watch w = {0};
  unsigned long long after = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
      dir = argv[++i];
    } else if (strcmp(argv[i], "--once") == 0) {
      once = true;
    } else if (strcmp(argv[i], "--json") == 0) {
      w.json = true;
    } else if (strcmp(argv[i], "--after") == 0 && i + 1 < argc) {
      char *end = NULL;
      after = strtoull(argv[++i], &end, 10);
      if (end == NULL || *end != '\0')
        return cli_usage_error(WHO, usage_text, "--after wants a line number, not '%s'",
                               argv[i]);
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(usage_text, stdout);
      return 0;
    } else {
      return cli_usage_error(WHO, usage_text, "unknown argument '%s'", argv[i]);
    }
  }
  err e = {0};
  cli_target t;
  if (cli_target_init(&t, dir, &e) != 0)
    return cli_fail(WHO, "%s", e.msg);
  char path[96];
  snprintf(path, sizeof path, "/_tarn/events?after=%llu%s", after, once ? "" : "&follow=1");
  buf_init(&w.line, LINE_MAX_BYTES);
  buf_init(&w.error, 64 << 10);
  cli_call call = {.method = "GET", .path = path, .service = "s3", .on_body = on_body,
                   .ctx = &w, .on_header = on_header};
  long status = 0;
  int rc = cli_send(&t, &call, &status, &e);
  int code = 0;
  if (rc != 0) {
    code = cli_fail(WHO, "%s", e.msg);
  } else if (status != 200) {
    json_t *o = json_loadb(w.error.data ? w.error.data : "", w.error.len, 0, NULL);
    const char *msg = json_string_value(json_object_get(o, "message"));
    code = cli_fail(WHO, "the server answered %ld: %s", status,
                    msg != NULL ? msg : (w.error.data ? w.error.data : ""));
    json_decref(o);
  } else if (w.line.len > 0) {
    emit(&w, w.line.data, w.line.len);
  }
  buf_release(&w.line);
  buf_release(&w.error);
  return code;
}
