/* cli/fn.c -- `tarn fn`: deploy a folder as a function, invoke it, read its
 * log, list and remove functions (DESIGN.md §3, §5).
 *
 * Why: running a folder as a function should take one command, not a zip
 * tool and the AWS CLI. Every subcommand is a plain call of the signed
 * Lambda API (cli/client.h), so the CLI can do nothing an SDK cannot.
 *
 * Invariants:
 *   (1) A failure is one line on stderr ("tarn fn: ...") and exit code 1;
 *       bad usage exits 2.
 *   (2) Every answer is read into a buffer with a limit (RESP_MAX); the zip
 *       and the payload are refused above Lambda's limits before anything
 *       is sent.
 *   (3) deploy zips the folder in memory, entries in name order, each with
 *       its mode (a bootstrap keeps its exec bit), symlinks as symlinks.
 *   (4) invoke asks for ?tarn-function-error=status (api/lambda.c): the
 *       client sees statuses, not headers, and a function error must never
 *       pass for a result.
 *   (5) logs -f polls the log once a second and prints what follows the
 *       end of the previous answer (all of it when that end is gone).
 *
 * Start reading at cli_fn().
 */
#include "cli/fn.h"

#include "base/arena.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/text.h"
#include "cli/client.h"
#include "cli/command.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#define API "/2015-03-31/functions"
#define RESP_MAX (16u << 20)      /* any answer: a 6 MB payload, a log, a listing */
#define ZIP_MAX (50u << 20)       /* Lambda's limit on a zip sent in the request */
#define PAYLOAD_MAX 6291456u      /* Lambda's synchronous payload */
#define LOG_BYTES 65536           /* what `logs` shows first */
#define FOLLOW_BYTES (1u << 20)   /* what each poll of `logs -f` reads */
#define FOLLOW_ANCHOR 4096        /* bytes of one poll looked for in the next */
#define FOLLOW_INTERVAL_US 1000000
#define ROLE "arn:aws:iam::000000000000:role/tarn"
#define WHO "fn"                  /* messages begin "tarn fn: " */

static const char usage_text[] =
    "usage: tarn fn [--data DIR] <command>\n"
    "\n"
    "  deploy NAME DIR --runtime R --handler H [--memory MB] [--timeout S] [--env K=V ...]\n"
    "                      zip DIR and create the function, or update its code and\n"
    "                      configuration (--env replaces the variables; none keeps them)\n"
    "  invoke NAME [JSON|-]  run it with the event JSON (- reads stdin; default {})\n"
    "                      and print its answer; a function error exits 1\n"
    "  logs NAME [-f]      print the end of its log; -f follows\n"
    "  ls                  list the functions\n"
    "  rm NAME             delete the function\n"
    "\n"
    "The server is TARN_ENDPOINT (default http://127.0.0.1:9000); credentials come\n"
    "from TARN_ACCESS_KEY/TARN_SECRET_KEY, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or\n"
    "DIR/credentials (default ./tarn-data).\n";

typedef struct ctx {
  cli_target t;
  arena *a;  /* everything of this run */
} ctx;

static const char *str_or(const char *s, const char *dflt)
{
  return s != NULL ? s : dflt;
}

/* ---- calls ---- */

/* One call of the Lambda API: *status and the answer's body in out. */
static int call(ctx *c, const char *method, const char *path, const void *body, size_t len,
                long *status, buf *out, err *e)
{
  buf_reset(out);
  cli_sink s = {.b = out};
  str_pair json = {"content-type", "application/json"};
  cli_call cc = {
      .method = method,
      .path = path,
      .service = "lambda",
      .headers = &json,
      .nheaders = body != NULL ? 1 : 0,
      .body = body,
      .body_len = len,
      .on_body = cli_sink_body,
      .ctx = &s,
  };
  int rc = cli_send(&c->t, &cc, status, e);
  if (rc == 0 && s.over)
    rc = err_set(e, ERR_ENTITY_TOO_LARGE, "the answer to %s '%s' is larger than %u bytes",
                 method, path, RESP_MAX);
  return rc;
}

/* s on one line (newlines and tabs as spaces), in c's arena. */
static const char *one_line(ctx *c, const char *s, size_t n)
{
  char *out = arena_strndup(c->a, s, n);
  for (char *p = out; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t')
      *p = ' ';
  return out;
}

/* The message of Lambda's error answer, or what else explains it. */
static const char *api_message(ctx *c, long status, const buf *b)
{
  json_t *j = b->len > 0 ? json_loadb(b->data, b->len, 0, NULL) : NULL;
  const char *m = json_string_value(json_object_get(j, "message"));
  if (m == NULL)
    m = json_string_value(json_object_get(j, "Message"));
  const char *out;
  if (m != NULL)
    out = one_line(c, m, strlen(m));
  else if (b->len > 0 && j == NULL)
    out = one_line(c, b->data, b->len > 300 ? 300 : b->len);
  else
    out = arena_sprintf(c->a, "the server answered %ld", status);
  json_decref(j);
  return out;
}

/* Sends j (consumed) as the body. */
static int call_json(ctx *c, const char *method, const char *path, json_t *j, long *status,
                     buf *out, err *e)
{
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (text == NULL)
    return err_set(e, ERR_INTERNAL, "cannot encode the request to '%s'", path);
  int rc = call(c, method, path, text, strlen(text), status, out, e);
  free(text);
  return rc;
}

static const char *fn_path(ctx *c, const char *name, const char *suffix)
{
  return arena_sprintf(c->a, API "/%s%s", uri_encode(c->a, name, strlen(name), false), suffix);
}

/* ---- deploy: the zip ---- */

static int cmp_names(const void *x, const void *y)
{
  return strcmp(*(char *const *)x, *(char *const *)y);
}

static int set_mode(zip_t *za, zip_int64_t idx, mode_t mode, const char *path, err *e)
{
  if (idx < 0 ||
      zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX,
                                       (zip_uint32_t)mode << 16) != 0)
    return err_set(e, ERR_INTERNAL, "cannot add '%s' to the zip: %s", path, zip_strerror(za));
  return 0;
}

/* Adds one entry (rel is its name in the zip) and, for a folder, its tree. */
static int zip_entry(zip_t *za, const char *root, const char *rel, err *e);

/* Adds the folder root/rel ("" for the top) to the zip, in name order. */
static int zip_tree(zip_t *za, const char *root, const char *rel, err *e)
{
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof path)
    return err_set(e, ERR_INVALID, "path '%s/%s' is too long", root, rel);
  DIR *d = opendir(path);
  if (d == NULL)
    return err_set(e, ERR_IO, "cannot read '%s': %s", path, strerror(errno));
  char **names = NULL;
  size_t n = 0;
  size_t cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 32;
      names = xrealloc(names, cap * sizeof *names);
    }
    char *name = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
    names[n++] = name;
  }
  closedir(d);
  if (n > 0)
    qsort(names, n, sizeof *names, cmp_names);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc == 0)
      rc = zip_entry(za, root, names[i], e);
    free(names[i]);
  }
  free(names);
  return rc;
}

static int zip_entry(zip_t *za, const char *root, const char *rel, err *e)
{
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", root, rel) >= (int)sizeof path)
    return err_set(e, ERR_INVALID, "path '%s/%s' is too long", root, rel);
  struct stat st;
  if (lstat(path, &st) != 0)
    return err_set(e, ERR_IO, "cannot read '%s': %s", path, strerror(errno));
  mode_t perm = st.st_mode & 0777;
  if (S_ISDIR(st.st_mode)) {
    int rc = set_mode(za, zip_dir_add(za, rel, ZIP_FL_ENC_UTF_8), S_IFDIR | perm, path, e);
    return rc ? rc : zip_tree(za, root, rel, e);
  }
  zip_source_t *src = NULL;
  if (S_ISREG(st.st_mode)) {
    src = zip_source_file(za, path, 0, -1);
  } else if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t m = readlink(path, target, sizeof target);
    if (m < 0 || m == (ssize_t)sizeof target)
      return err_set(e, ERR_IO, "cannot read the link '%s': %s", path,
                     m < 0 ? strerror(errno) : "too long");
    char *copy = xmalloc((size_t)m);
    memcpy(copy, target, (size_t)m);
    src = zip_source_buffer(za, copy, (zip_uint64_t)m, 1);
    if (src == NULL)
      free(copy);
    perm = 0777;
  } else {
    return err_set(e, ERR_INVALID, "cannot zip '%s': not a file, folder or symlink", path);
  }
  if (src == NULL)
    return err_set(e, ERR_INTERNAL, "cannot add '%s' to the zip: %s", path, zip_strerror(za));
  zip_int64_t idx = zip_file_add(za, rel, src, ZIP_FL_ENC_UTF_8);
  if (idx < 0)
    zip_source_free(src);
  return set_mode(za, idx, (st.st_mode & S_IFMT) | perm, path, e);
}

/* Zips the folder dir into out (limit ZIP_MAX). */
static int zip_folder(const char *dir, buf *out, err *e)
{
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return err_set(e, ERR_INVALID, "'%s' is not a folder", dir);
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
  zip_t *za = src != NULL ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
  if (za == NULL) {
    int rc = err_set(e, ERR_INTERNAL, "cannot make a zip: %s", zip_error_strerror(&ze));
    zip_source_free(src);
    zip_error_fini(&ze);
    return rc;
  }
  zip_error_fini(&ze);
  zip_source_keep(src); /* the archive's close must leave us the bytes */
  int rc = zip_tree(za, dir, "", e);
  if (rc == 0 && zip_get_num_entries(za, 0) == 0)
    rc = err_set(e, ERR_INVALID, "folder '%s' is empty", dir);
  if (rc == 0 && zip_close(za) != 0)
    rc = err_set(e, ERR_IO, "cannot zip '%s': %s", dir, zip_strerror(za));
  else if (rc == 0)
    za = NULL;
  if (za != NULL)
    zip_discard(za);
  if (rc == 0 && zip_source_open(src) != 0)
    rc = err_set(e, ERR_INTERNAL, "cannot read the zip of '%s'", dir);
  if (rc == 0) {
    char chunk[65536];
    zip_int64_t n;
    while (rc == 0 && (n = zip_source_read(src, chunk, sizeof chunk)) > 0)
      if (buf_append(out, chunk, (size_t)n) != 0)
        rc = err_set(e, ERR_ENTITY_TOO_LARGE, "the zip of '%s' is larger than Lambda's %u MB",
                     dir, ZIP_MAX >> 20);
    zip_source_close(src);
  }
  zip_source_free(src);
  return rc;
}

/* ---- deploy ---- */

typedef struct deploy_args {
  const char *name;
  const char *dir;
  const char *runtime;
  const char *handler;
  long memory;    /* 0: not given */
  long timeout;   /* 0: not given */
  json_t *env;    /* NULL: not given */
} deploy_args;

static bool parse_long(const char *s, long *out)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v <= 0)
    return false;
  *out = v;
  return true;
}

static int deploy_parse(int argc, char **argv, deploy_args *d)
{
  const char *pos[2];
  int npos = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (a[0] != '-' || strcmp(a, "-") == 0) {
      if (npos == 2)
        return cli_usage_error(WHO, usage_text,
                               "deploy takes NAME and DIR, and '%s' is one more", a);
      pos[npos++] = a;
      continue;
    }
    if (v == NULL)
      return cli_usage_error(WHO, usage_text, "'%s' needs a value", a);
    i++;
    if (strcmp(a, "--runtime") == 0) {
      d->runtime = v;
    } else if (strcmp(a, "--handler") == 0) {
      d->handler = v;
    } else if (strcmp(a, "--memory") == 0) {
      if (!parse_long(v, &d->memory))
        return cli_usage_error(WHO, usage_text, "--memory takes megabytes, not '%s'", v);
    } else if (strcmp(a, "--timeout") == 0) {
      if (!parse_long(v, &d->timeout))
        return cli_usage_error(WHO, usage_text, "--timeout takes seconds, not '%s'", v);
    } else if (strcmp(a, "--env") == 0) {
      const char *eq = strchr(v, '=');
      if (eq == NULL || eq == v)
        return cli_usage_error(WHO, usage_text, "--env takes KEY=VALUE, not '%s'", v);
      if (d->env == NULL)
        d->env = json_object();
      char *key = xstrndup(v, (size_t)(eq - v));
      json_t *val = json_string(eq + 1);
      int rc = val != NULL ? json_object_set_new(d->env, key, val) : -1;
      free(key);
      if (rc != 0)
        return cli_usage_error(WHO, usage_text, "--env '%s' is not valid UTF-8", v);
    } else {
      return cli_usage_error(WHO, usage_text, "deploy has no option '%s'", a);
    }
  }
  if (npos < 2)
    return cli_usage_error(WHO, usage_text, "deploy needs NAME and DIR");
  d->name = pos[0];
  d->dir = pos[1];
  if (d->runtime == NULL || d->handler == NULL)
    return cli_usage_error(WHO, usage_text, "deploy needs --runtime and --handler");
  return 0;
}

/* Runtime, Handler, MemorySize, Timeout and Environment, as given. */
static json_t *deploy_config(const deploy_args *d)
{
  json_t *j = json_pack("{s:s, s:s}", "Runtime", d->runtime, "Handler", d->handler);
  if (d->memory)
    json_object_set_new(j, "MemorySize", json_integer(d->memory));
  if (d->timeout)
    json_object_set_new(j, "Timeout", json_integer(d->timeout));
  if (d->env != NULL)
    json_object_set_new(j, "Environment", json_pack("{s:O}", "Variables", d->env));
  return j;
}

static int cmd_deploy(ctx *c, int argc, char **argv)
{
  deploy_args d = {0};
  int rc = deploy_parse(argc, argv, &d);
  if (rc != 0) {
    json_decref(d.env);
    return rc;
  }
  err e = {0};
  buf zip;
  buf_init(&zip, ZIP_MAX);
  if (zip_folder(d.dir, &zip, &e) != 0) {
    buf_release(&zip);
    json_decref(d.env);
    return cli_fail(WHO, "cannot deploy '%s': %s", d.name, e.msg);
  }
  char *zip64 = xmalloc(base64_encoded_len(zip.len));
  base64_encode((const uint8_t *)zip.data, zip.len, zip64);
  buf_release(&zip);

  buf resp;
  buf_init(&resp, RESP_MAX);
  long status = 0;
  const char *path = fn_path(c, d.name, "");
  const char *verb = "updated";
  rc = call(c, "GET", path, NULL, 0, &status, &resp, &e);
  if (rc == 0 && status == 404) {
    verb = "created";
    json_t *j = deploy_config(&d);
    json_object_set_new(j, "FunctionName", json_string(d.name));
    json_object_set_new(j, "Role", json_string(ROLE));
    json_object_set_new(j, "Code", json_pack("{s:s}", "ZipFile", zip64));
    rc = call_json(c, "POST", API, j, &status, &resp, &e);
    if (rc == 0 && status != 201)
      rc = cli_fail(WHO, "cannot create '%s': %s", d.name, api_message(c, status, &resp));
  } else if (rc == 0 && status == 200) {
    json_t *j = json_pack("{s:s}", "ZipFile", zip64);
    rc = call_json(c, "PUT", fn_path(c, d.name, "/code"), j, &status, &resp, &e);
    if (rc == 0 && status != 200)
      rc = cli_fail(WHO, "cannot update the code of '%s': %s", d.name,
                    api_message(c, status, &resp));
    if (rc == 0) {
      rc = call_json(c, "PUT", fn_path(c, d.name, "/configuration"), deploy_config(&d), &status,
                     &resp, &e);
      if (rc == 0 && status != 200)
        rc = cli_fail(WHO, "cannot update the configuration of '%s': %s", d.name,
                  api_message(c, status, &resp));
    }
  } else if (rc == 0) {
    rc = cli_fail(WHO, "cannot deploy '%s': %s", d.name, api_message(c, status, &resp));
  }
  if (rc < 0)
    rc = cli_fail(WHO, "cannot deploy '%s': %s", d.name, e.msg);
  free(zip64);
  json_decref(d.env);
  if (rc == 0) {
    json_t *cfg = json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL);
    printf("%s '%s': %s, %s, %lld MB, %lld s, code %lld bytes\n", verb, d.name,
           str_or(json_string_value(json_object_get(cfg, "Runtime")), d.runtime),
           str_or(json_string_value(json_object_get(cfg, "Handler")), d.handler),
           json_integer_value(json_object_get(cfg, "MemorySize")),
           json_integer_value(json_object_get(cfg, "Timeout")),
           json_integer_value(json_object_get(cfg, "CodeSize")));
    json_decref(cfg);
  }
  buf_release(&resp);
  return rc;
}

/* ---- invoke ---- */

static int read_stdin(buf *out, err *e)
{
  char chunk[65536];
  for (;;) {
    size_t n = fread(chunk, 1, sizeof chunk, stdin);
    if (n > 0 && buf_append(out, chunk, n) != 0)
      return err_set(e, ERR_ENTITY_TOO_LARGE, "the payload is larger than Lambda's %u bytes",
                     PAYLOAD_MAX);
    if (n < sizeof chunk)
      break;
  }
  if (ferror(stdin))
    return err_set(e, ERR_IO, "cannot read the payload from stdin: %s", strerror(errno));
  return 0;
}

static int cmd_invoke(ctx *c, int argc, char **argv)
{
  if (argc < 1 || argc > 2)
    return cli_usage_error(WHO, usage_text, "invoke takes NAME and an optional JSON (or -)");
  const char *name = argv[0];
  err e = {0};
  buf payload;
  buf_init(&payload, PAYLOAD_MAX);
  int rc = 0;
  if (argc == 2 && strcmp(argv[1], "-") == 0)
    rc = read_stdin(&payload, &e);
  else if (buf_puts(&payload, argc == 2 ? argv[1] : "{}") != 0)
    rc = err_set(&e, ERR_ENTITY_TOO_LARGE, "the payload is larger than Lambda's %u bytes",
                 PAYLOAD_MAX);
  if (rc != 0) {
    buf_release(&payload);
    return cli_fail(WHO, "cannot invoke '%s': %s", name, e.msg);
  }
  buf resp;
  buf_init(&resp, RESP_MAX);
  long status = 0;
  rc = call(c, "POST", fn_path(c, name, "/invocations?tarn-function-error=status"),
            payload.data ? payload.data : "", payload.len, &status, &resp, &e);
  buf_release(&payload);
  if (rc != 0) {
    rc = cli_fail(WHO, "cannot invoke '%s': %s", name, e.msg);
  } else if (status == 200) {
    fwrite(resp.data ? resp.data : "", 1, resp.len, stdout);
    if (resp.len == 0 || resp.data[resp.len - 1] != '\n')
      putchar('\n');
  } else if (status == 502) {
    /* The function failed: its error document is the body. */
    json_t *j = json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "errorType"));
    const char *msg = json_string_value(json_object_get(j, "errorMessage"));
    const char *text = msg != NULL ? one_line(c, msg, strlen(msg))
                                   : one_line(c, resp.data ? resp.data : "", resp.len);
    rc = cli_fail(WHO, "function '%s' failed: %s%s%s", name, type ? type : "",
                  type ? ": " : "", text);
    json_decref(j);
  } else {
    rc = cli_fail(WHO, "cannot invoke '%s': %s", name, api_message(c, status, &resp));
  }
  buf_release(&resp);
  return rc;
}

/* ---- logs ---- */

/* Where the new part of cur starts, given the previous answer prev: after
 * the last place prev's end appears (0 when it does not: all is new). */
static size_t follow_new_from(const buf *prev, const buf *cur)
{
  if (prev->len == 0 || cur->len == 0)
    return 0;
  size_t k = prev->len < FOLLOW_ANCHOR ? prev->len : FOLLOW_ANCHOR;
  const char *anchor = prev->data + prev->len - k;
  const char *end = cur->data + cur->len;
  const char *found = NULL;
  for (const char *p = cur->data; (size_t)(end - p) >= k;) {
    p = memmem(p, (size_t)(end - p), anchor, k);
    if (p == NULL)
      break;
    found = p;
    p++;
  }
  return found != NULL ? (size_t)(found - cur->data) + k : 0;
}

static int cmd_logs(ctx *c, int argc, char **argv)
{
  const char *name = NULL;
  bool follow = false;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0)
      follow = true;
    else if (argv[i][0] == '-')
      return cli_usage_error(WHO, usage_text, "logs has no option '%s'", argv[i]);
    else if (name == NULL)
      name = argv[i];
    else
      return cli_usage_error(WHO, usage_text, "logs takes one NAME");
  }
  if (name == NULL)
    return cli_usage_error(WHO, usage_text, "logs needs NAME");
  buf cur;
  buf prev;
  buf_init(&cur, RESP_MAX);
  buf_init(&prev, RESP_MAX);
  err e = {0};
  int rc = 0;
  size_t bytes = LOG_BYTES;
  for (;;) {
    long status = 0;
    const char *path = fn_path(c, name, arena_sprintf(c->a, "/logs?bytes=%zu", bytes));
    if (call(c, "GET", path, NULL, 0, &status, &cur, &e) != 0) {
      rc = cli_fail(WHO, "cannot read the log of '%s': %s", name, e.msg);
      break;
    }
    if (status != 200) {
      rc = cli_fail(WHO, "cannot read the log of '%s': %s", name, api_message(c, status, &cur));
      break;
    }
    size_t from = follow_new_from(&prev, &cur);
    fwrite(cur.data ? cur.data + from : "", 1, cur.len - from, stdout);
    fflush(stdout);
    if (!follow)
      break;
    buf tmp = prev;
    prev = cur;
    cur = tmp;
    bytes = FOLLOW_BYTES;
    usleep(FOLLOW_INTERVAL_US);
  }
  buf_release(&cur);
  buf_release(&prev);
  return rc;
}

/* ---- ls, rm ---- */

static int cmd_ls(ctx *c, int argc, char **argv)
{
  if (argc != 0)
    return cli_usage_error(WHO, usage_text, "ls takes no arguments");
  json_t *all = json_array();
  buf resp;
  buf_init(&resp, RESP_MAX);
  err e = {0};
  int rc = 0;
  const char *marker = NULL;
  do {
    long status = 0;
    const char *path = marker != NULL
                           ? arena_sprintf(c->a, API "/?MaxItems=50&Marker=%s",
                                           uri_encode(c->a, marker, strlen(marker), false))
                           : API "/?MaxItems=50";
    if (call(c, "GET", path, NULL, 0, &status, &resp, &e) != 0) {
      rc = cli_fail(WHO, "cannot list the functions: %s", e.msg);
      break;
    }
    if (status != 200) {
      rc = cli_fail(WHO, "cannot list the functions: %s", api_message(c, status, &resp));
      break;
    }
    json_t *j = json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL);
    json_array_extend(all, json_object_get(j, "Functions"));
    const char *next = json_string_value(json_object_get(j, "NextMarker"));
    marker = next != NULL ? arena_strdup(c->a, next) : NULL;
    json_decref(j);
  } while (marker != NULL);
  buf_release(&resp);
  if (rc == 0) {
    int wn = 4;
    int wr = 7;
    size_t i;
    json_t *f;
    json_array_foreach(all, i, f)
    {
      int n = (int)strlen(str_or(json_string_value(json_object_get(f, "FunctionName")), ""));
      int r = (int)strlen(str_or(json_string_value(json_object_get(f, "Runtime")), ""));
      wn = n > wn ? n : wn;
      wr = r > wr ? r : wr;
    }
    printf("%-*s  %-*s  %7s  %7s  %s\n", wn, "NAME", wr, "RUNTIME", "MEMORY", "TIMEOUT",
           "LAST MODIFIED");
    json_array_foreach(all, i, f)
    {
      printf("%-*s  %-*s  %4lld MB  %5lld s  %s\n", wn,
             str_or(json_string_value(json_object_get(f, "FunctionName")), ""), wr,
             str_or(json_string_value(json_object_get(f, "Runtime")), ""),
             json_integer_value(json_object_get(f, "MemorySize")),
             json_integer_value(json_object_get(f, "Timeout")),
             str_or(json_string_value(json_object_get(f, "LastModified")), ""));
    }
  }
  json_decref(all);
  return rc;
}

static int cmd_rm(ctx *c, int argc, char **argv)
{
  if (argc != 1)
    return cli_usage_error(WHO, usage_text, "rm takes one NAME");
  buf resp;
  buf_init(&resp, RESP_MAX);
  err e = {0};
  long status = 0;
  int rc = 0;
  if (call(c, "DELETE", fn_path(c, argv[0], ""), NULL, 0, &status, &resp, &e) != 0)
    rc = cli_fail(WHO, "cannot remove '%s': %s", argv[0], e.msg);
  else if (status != 204 && status != 200)
    rc = cli_fail(WHO, "cannot remove '%s': %s", argv[0], api_message(c, status, &resp));
  else
    printf("removed '%s'\n", argv[0]);
  buf_release(&resp);
  return rc;
}

/* ---- the command ---- */

int cli_fn(int argc, char **argv)
{
  static const struct {
    const char *name;
    int (*run)(ctx *c, int argc, char **argv);
  } cmds[] = {{"deploy", cmd_deploy}, {"invoke", cmd_invoke}, {"logs", cmd_logs},
              {"ls", cmd_ls}, {"rm", cmd_rm}};
  cli_args args;
  int rc = cli_args_init(&args, WHO, usage_text, argc, argv);
  int which = -1;
  for (size_t i = 0; rc < 0 && i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(args.argv[0], cmds[i].name) == 0)
      which = (int)i;
  if (rc < 0 && which < 0)
    rc = cli_usage_error(WHO, usage_text, "unknown command '%s'", args.argv[0]);
  if (rc < 0) {
    ctx c = {.a = arena_new()};
    err e = {0};
    if (cli_target_init(&c.t, args.dir, &e) != 0)
      rc = cli_fail(WHO, "%s", e.msg);
    else
      rc = cmds[which].run(&c, args.argc - 1, args.argv + 1);
    arena_free(c.a);
  }
  cli_args_release(&args);
  return rc;
}
