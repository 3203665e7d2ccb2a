/* cli/sql.c -- `tarn sql [--format table|csv|json] "SQL"`: runs a statement
 * through the server's POST /_tarn/sql and prints the result.
 *
 * Why: the quickest way to ask the lake a question from a shell, with the
 * scan's size and cost shown the way Athena shows them.
 *
 * csv and json stream straight to stdout as the server sends them; table
 * reads the JSON result (up to TABLE_MAX bytes) and lines the columns up.
 * The statistics come in the response's trailers and go to stderr, so
 * stdout holds only the result.
 *
 * Invariants:
 *   (1) Exit status 0 only when the query succeeded to its end; an error
 *       prints one line on stderr (with line and column when it has them).
 */
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/command.h"

#include "base/buf.h"
#include "base/mem.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TABLE_MAX (256u << 20)
#define WHO "sql"   /* messages begin "tarn sql: " */
#define CELL_MAX 60 /* table cells wider than this are cut with "..." */

typedef struct sql_call {
  bool table;         /* buffer for the table format */
  buf body;           /* the buffered response (table, or an error) */
  long status;
  bool progress;      /* stderr is a terminal: show a waiting line */
  bool progress_shown;
  char rows[32], bytes[32], objects[32], ms[32], cost[32];
  char error[512];    /* x-tarn-error trailer */
} sql_call;

static int on_body(void *ctx, const char *p, size_t n)
{
  sql_call *c = ctx;
  if (c->progress_shown) {
    fputs("\r\033[K", stderr);
    c->progress_shown = false;
  }
  if (c->table || c->status != 200) {   /* an error answer is read, not printed */
    if (buf_append(&c->body, p, n) != 0) {
      return cli_fail(WHO, "the result is larger than %u MiB; use --format csv",
                      TABLE_MAX >> 20);
    }
    return 0;
  }
  return fwrite(p, 1, n, stdout) == n ? 0 : 1;
}

static void copy_value(char *dst, size_t cap, const char *line, size_t n, size_t skip)
{
  while (skip < n && line[skip] == ' ')
    skip++;
  size_t len = n - skip < cap - 1 ? n - skip : cap - 1;
  memcpy(dst, line + skip, len);
  dst[len] = '\0';
}

static void on_header(void *ctx, const char *line, size_t n)
{
  sql_call *c = ctx;
  static const struct {
    const char *name;
    size_t off;
    size_t cap;
  } fields[] = {
      {"x-tarn-rows:", offsetof(sql_call, rows), sizeof((sql_call *)0)->rows},
      {"x-tarn-bytes-scanned:", offsetof(sql_call, bytes), sizeof((sql_call *)0)->bytes},
      {"x-tarn-objects-scanned:", offsetof(sql_call, objects), sizeof((sql_call *)0)->objects},
      {"x-tarn-elapsed-ms:", offsetof(sql_call, ms), sizeof((sql_call *)0)->ms},
      {"x-tarn-cost-usd:", offsetof(sql_call, cost), sizeof((sql_call *)0)->cost},
      {"x-tarn-error:", offsetof(sql_call, error), sizeof((sql_call *)0)->error},
  };
  if (n > 9 && strncmp(line, "HTTP/", 5) == 0) {
    const char *sp = memchr(line, ' ', n);
    if (sp != NULL)
      c->status = strtol(sp + 1, NULL, 10);
    return;
  }
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    size_t len = strlen(fields[i].name);
    if (n >= len && strncasecmp(line, fields[i].name, len) == 0)
      copy_value((char *)c + fields[i].off, fields[i].cap, line, n, len);
  }
}

static void on_wait(void *ctx, double seconds)
{
  sql_call *c = ctx;
  if (!c->progress || seconds < 1.0)
    return;
  fprintf(stderr, "\r\033[Krunning... %.0f s", seconds);
  c->progress_shown = true;
}

static void human_bytes(char *out, size_t cap, double b)
{
  const char *units[] = {"B", "KB", "MB", "GB", "TB"};
  size_t u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    u++;
  }
  snprintf(out, cap, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
}

/* A cell for the table: NULL shown as NULL, long text cut. */
static char *cell_text(json_t *v)
{
  char *s;
  if (json_is_null(v))
    s = xstrdup("NULL");
  else if (json_is_string(v))
    s = xstrdup(json_string_value(v));
  else
    s = json_dumps(v, JSON_ENCODE_ANY);
  if (s == NULL)
    mem_out_of_memory();
  for (char *p = s; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t')
      *p = ' ';
  return s;
}

/* Display width of UTF-8 text: code points (wide characters count as one). */
static size_t text_width(const char *s)
{
  size_t w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80)
      w++;
  return w;
}

static void print_cell(const char *s, size_t width, bool right)
{
  size_t w = text_width(s);
  bool cut = w > CELL_MAX;
  if (cut) {
    size_t bytes = 0, cps = 0;
    while (s[bytes] && cps < CELL_MAX - 3) {
      bytes++;
      if (((unsigned char)s[bytes] & 0xC0) != 0x80)
        cps++;
    }
    printf(" %.*s...%*s |", (int)bytes, s, (int)(width - CELL_MAX), "");
    return;
  }
  if (right)
    printf(" %*s%s |", (int)(width - w), "", s);
  else
    printf(" %s%*s |", s, (int)(width - w), "");
}

static void print_rule(const size_t *width, size_t ncols)
{
  putchar('+');
  for (size_t c = 0; c < ncols; c++) {
    for (size_t i = 0; i < width[c] + 2; i++)
      putchar('-');
    putchar('+');
  }
  putchar('\n');
}

static int print_table(const char *text, size_t len)
{
  json_error_t jerr;
  json_t *doc = json_loadb(text, len, 0, &jerr);
  if (doc == NULL) {
    return cli_fail(WHO, "cannot read the server's answer: %s", jerr.text);
  }
  json_t *cols = json_object_get(doc, "columns");
  json_t *rows = json_object_get(doc, "rows");
  size_t ncols = json_array_size(cols);
  size_t nrows = json_array_size(rows);
  size_t *width = xcalloc(ncols + 1, sizeof *width);
  bool *right = xcalloc(ncols + 1, sizeof *right);
  for (size_t c = 0; c < ncols; c++) {
    json_t *col = json_array_get(cols, c);
    const char *type = json_string_value(json_object_get(col, "type"));
    width[c] = text_width(json_string_value(json_object_get(col, "name")));
    right[c] = type != NULL && (strstr(type, "int") || strcmp(type, "double") == 0 ||
                                strncmp(type, "decimal", 7) == 0);
  }
  for (size_t r = 0; r < nrows; r++) {
    for (size_t c = 0; c < ncols; c++) {
      char *s = cell_text(json_array_get(json_array_get(rows, r), c));
      size_t w = text_width(s);
      if (w > CELL_MAX)
        w = CELL_MAX;
      if (w > width[c])
        width[c] = w;
      free(s);
    }
  }
  if (ncols == 0) /* a statement without a result (CREATE, DROP, ALTER): no table */
    nrows = 0;
  else {
    print_rule(width, ncols);
    putchar('|');
    for (size_t c = 0; c < ncols; c++)
      print_cell(json_string_value(json_object_get(json_array_get(cols, c), "name")), width[c],
                 false);
    putchar('\n');
    print_rule(width, ncols);
  }
  for (size_t r = 0; r < nrows; r++) {
    putchar('|');
    for (size_t c = 0; c < ncols; c++) {
      char *s = cell_text(json_array_get(json_array_get(rows, r), c));
      print_cell(s, width[c], right[c]);
      free(s);
    }
    putchar('\n');
  }
  if (ncols > 0)
    print_rule(width, ncols);
  int rc = 0;
  json_t *error = json_object_get(doc, "error");
  if (error != NULL)
    rc = cli_fail(WHO, "%s", json_string_value(json_object_get(error, "message")));
  free(width);
  free(right);
  json_decref(doc);
  return rc;
}

/* An error answer: {"error","message","line","column"}. */
static void print_error(const sql_call *c)
{
  json_t *doc = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, NULL);
  const char *msg = doc ? json_string_value(json_object_get(doc, "message")) : NULL;
  if (msg == NULL) {
    cli_fail(WHO, "the server answered %ld: %.*s", c->status, (int)c->body.len,
             c->body.data ? c->body.data : "");
  } else {
    cli_fail(WHO, "%s", msg);
  }
  json_decref(doc);
}

static void usage(FILE *f)
{
  fputs("usage: tarn sql [--data DIR] [--format table|csv|json] [--database DB] \"SQL\"\n"
        "       (reads the statement from stdin when it is \"-\")\n",
        f);
}

int cli_sql(int argc, char **argv)
{
  const char *dir = "./tarn-data";
  const char *format = "table";
  const char *text = NULL;
  const char *database = NULL;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
      format = argv[++i];
    else if (strcmp(argv[i], "--database") == 0 && i + 1 < argc)
      database = argv[++i];
    else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
      dir = argv[++i];
    else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (text == NULL)
      text = argv[i];
    else {
      usage(stderr);
      return 2;
    }
  }
  bool db_ok = database == NULL || (database[0] != 0 && strlen(database) <= 255);
  for (const char *d = database; d != NULL && *d && db_ok; d++)
    db_ok = (*d >= 'a' && *d <= 'z') || (*d >= 'A' && *d <= 'Z') || (*d >= '0' && *d <= '9') ||
            *d == '_' || *d == '-';
  if (text == NULL || !db_ok ||
      (strcmp(format, "table") != 0 && strcmp(format, "csv") != 0 &&
       strcmp(format, "json") != 0)) {
    usage(stderr);
    return 2;
  }
  buf stdin_text;
  buf_init(&stdin_text, 1u << 20);
  if (strcmp(text, "-") == 0) {
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
      if (buf_append(&stdin_text, chunk, n) != 0) {
        buf_release(&stdin_text);
        cli_fail(WHO, "the statement is longer than 1 MiB");
        return 2;
      }
    }
    text = stdin_text.data ? stdin_text.data : "";
  }
  cli_target t;
  err e = {0};
  if (cli_target_init(&t, dir, &e) != 0) {
    buf_release(&stdin_text);
    return cli_fail(WHO, "%s", e.msg);
  }
  sql_call c;
  memset(&c, 0, sizeof c);
  c.table = strcmp(format, "table") == 0;
  c.progress = isatty(STDERR_FILENO);
  buf_init(&c.body, TABLE_MAX);
  char path[320];
  snprintf(path, sizeof path, "/_tarn/sql?format=%s%s%s", c.table ? "json" : format,
           database != NULL ? "&database=" : "", database != NULL ? database : "");
  cli_call call = {.method = "POST", .path = path, .service = "s3", .body = text,
                   .body_len = strlen(text), .on_body = on_body, .ctx = &c,
                   .on_header = on_header, .on_wait = on_wait};
  long status = 0;
  int rc = cli_send(&t, &call, &status, &e);
  if (c.progress_shown)
    fputs("\r\033[K", stderr);
  int exit_code = 0;
  if (rc != 0) {
    exit_code = cli_fail(WHO, "%s", e.msg);
  } else if (status != 200) {
    print_error(&c);
    exit_code = 1;
  } else {
    if (c.table)
      exit_code = print_table(c.body.data ? c.body.data : "", c.body.len);
    fflush(stdout);
    if (c.error[0] != '\0')
      exit_code = cli_fail(WHO, "%s", c.error);
    if (c.rows[0] != '\0') {
      char scanned[32];
      human_bytes(scanned, sizeof scanned, strtod(c.bytes, NULL));
      fprintf(stderr, "%s rows, %s scanned in %s objects, %.3f s, $%.6f\n", c.rows, scanned,
              c.objects, strtod(c.ms, NULL) / 1000.0, strtod(c.cost, NULL));
    }
  }
  buf_release(&c.body);
  buf_release(&stdin_text);
  return exit_code;
}
