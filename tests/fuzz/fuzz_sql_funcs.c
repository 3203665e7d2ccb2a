/* fuzz_sql_funcs.c -- libFuzzer target for the SQL functions with large
 * and adversarial arguments: the input bytes pick a tree of function calls
 * (string, regexp, JSON, URL, date and math functions, ||, CAST, CASE)
 * whose leaves are hostile values -- huge and negative lengths, NULL, the
 * empty string, invalid UTF-8, strings near the 32 MiB value limit,
 * catastrophic regular expressions -- and runs `SELECT <expr>`, also over
 * a table of a few rows (so the row loops run, not only constant folding).
 *
 * What must hold: the process neither crashes nor aborts (ASan/UBSan), and
 * every failure has a message; a query ends within its time limit.
 */
#include "sql/exec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct gen {
  const uint8_t *p;
  size_t n;
  size_t at;
  char *out;
  size_t len;
  size_t cap;
} gen;

static unsigned pick(gen *g, unsigned k)
{
  if (g->at >= g->n)
    return 0;
  return g->p[g->at++] % k;
}

static void put(gen *g, const char *s)
{
  size_t l = strlen(s);
  if (g->len + l + 1 > g->cap)
    return;
  memcpy(g->out + g->len, s, l);
  g->len += l;
  g->out[g->len] = '\0';
}

static const char *const ints[] = {
    "0", "1", "-1", "2", "3", "7", "40", "100000", "16777216", "33554431", "33554432",
    "33554433", "2147483647", "-2147483648", "9223372036854775807",
    "(-9223372036854775807 - 1)", "4294967296", "1000000", "5", "-40", "id", "k"};
static const char *const strs[] = {
    "''", "'a'", "'xy'", "'\xc3\xa9'", "'\xe2\x82\xac'", "'\x80'", "'\xc3'", "'%Y-%m-%d %H'",
    "'(a+)+$'", "'(a|aa)+$'", "'(x+x+)+y'", "'a*'", "''", "'['", "'\\\\1'", "'$1'",
    "'{\"a\":[1,{\"b\":\"c\"}]}'", "'$.a[1].b'", "'$[\"a\"]'", "'http://u@h:80/p?q=1&r=2#f'",
    "'q'", "NULL", "CAST(id AS VARCHAR)", "s", "rpad('', 40, 'a') || 'b'",
    "rpad('', 1000000, 'ab')", "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'"};

/* string-valued calls: name, then the argument kinds (s string, i int) */
static const char *const sfuncs[][2] = {
    {"lower", "s"},          {"upper", "s"},           {"substr", "sii"},
    {"substr", "si"},        {"trim", "s"},            {"ltrim", "s"},
    {"rtrim", "s"},          {"replace", "sss"},       {"replace", "ss"},
    {"split_part", "ssi"},   {"reverse", "s"},         {"lpad", "sis"},
    {"rpad", "sis"},         {"chr", "i"},             {"regexp_extract", "ssi"},
    {"regexp_extract", "ss"}, {"regexp_replace", "sss"}, {"regexp_replace", "ss"},
    {"url_extract_host", "s"}, {"url_extract_path", "s"}, {"url_extract_parameter", "ss"},
    {"json_extract_scalar", "ss"}, {"json_extract", "ss"}, {"to_hex", "i"},
    {"typeof", "s"},         {"concat", "ss"},         {"concat", "sss"},
    {"coalesce", "ss"},      {"nullif", "ss"},         {"date_format", "ts"}};
/* int-valued calls */
static const char *const ifuncs[][2] = {
    {"length", "s"},       {"strpos", "ss"},        {"regexp_count", "ss"},
    {"codepoint", "s"},    {"json_array_length", "s"}, {"abs", "i"},
    {"mod", "ii"},         {"greatest", "ii"},      {"least", "iii"},
    {"round", "i"},        {"sign", "i"},           {"year", "t"}};

static void gen_str(gen *g, int depth);
static void gen_int(gen *g, int depth);

static void gen_ts(gen *g)
{
  static const char *const ts[] = {"TIMESTAMP '2024-01-02 03:04:05'", "DATE '1970-01-01'",
                                   "from_unixtime(1e15)", "from_unixtime(-1e12)",
                                   "from_unixtime(k)", "now()"};
  put(g, ts[pick(g, sizeof ts / sizeof ts[0])]);
}

static void gen_args(gen *g, const char *kinds, int depth)
{
  for (const char *k = kinds; *k; k++) {
    if (k != kinds)
      put(g, ", ");
    if (*k == 's')
      gen_str(g, depth + 1);
    else if (*k == 'i')
      gen_int(g, depth + 1);
    else
      gen_ts(g);
  }
}

static void gen_str(gen *g, int depth)
{
  unsigned c = depth >= 4 ? 0 : pick(g, 6);
  if (c <= 1) {
    put(g, strs[pick(g, sizeof strs / sizeof strs[0])]);
  } else if (c == 2) {
    gen_str(g, depth + 1);
    put(g, " || ");
    gen_str(g, depth + 1);
  } else if (c == 3) {
    put(g, "CAST(");
    gen_int(g, depth + 1);
    put(g, " AS VARCHAR)");
  } else {
    unsigned f = pick(g, sizeof sfuncs / sizeof sfuncs[0]);
    put(g, sfuncs[f][0]);
    put(g, "(");
    gen_args(g, sfuncs[f][1], depth);
    put(g, ")");
  }
}

static void gen_int(gen *g, int depth)
{
  unsigned c = depth >= 4 ? 0 : pick(g, 5);
  if (c <= 1) {
    put(g, ints[pick(g, sizeof ints / sizeof ints[0])]);
  } else if (c == 2) {
    static const char *const ops[] = {" + ", " - ", " * ", " / ", " % "};
    put(g, "(");
    gen_int(g, depth + 1);
    put(g, ops[pick(g, 5)]);
    gen_int(g, depth + 1);
    put(g, ")");
  } else {
    unsigned f = pick(g, sizeof ifuncs / sizeof ifuncs[0]);
    put(g, ifuncs[f][0]);
    put(g, "(");
    gen_args(g, ifuncs[f][1], depth);
    put(g, ")");
  }
}

static char root[64];

static void make_table(void)
{
  snprintf(root, sizeof root, "/tmp/tarn-fuzz-funcs-%d", (int)getpid());
  char dir[128];
  snprintf(dir, sizeof dir, "%s/b", root);
  mkdir(root, 0755);
  mkdir(dir, 0755);
  char path[160];
  snprintf(path, sizeof path, "%s/t.csv", dir);
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    abort();
  fputs("id,k,s\n1,-1,a\n2,16777216,\xc3\xa9\n3,0,\n4,33554433,xyz\n", f);
  fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 512)
    return 0;
  if (root[0] == '\0')
    make_table();
  char text[8192];
  gen g = {.p = data, .n = size, .out = text, .cap = sizeof text};
  text[0] = '\0';
  bool over_table = size > 0 && (data[0] & 1);
  put(&g, "SELECT ");
  if (size > 0 && (data[0] & 2))
    gen_int(&g, 0);
  else
    gen_str(&g, 0);
  if (over_table)
    put(&g, " FROM 's3://b/t.csv'");
  sql_objsrc src;
  sql__objsrc_dir(&src, root);
  sql_options opt;
  memset(&opt, 0, sizeof opt);
  opt.threads = 1;
  opt.memory_limit = 256u << 20;
  opt.time_limit_ms = 5000;
  sql_stats st;
  err e;
  err_clear(&e);
  bool verbose = getenv("FUZZ_FUNCS_VERBOSE") != NULL;
  if (verbose)
    fprintf(stderr, "%s\n", text);
  int rc = sql__run_src(&src, text, &opt, NULL, &st, &e);
  if (verbose)
    fprintf(stderr, "  -> %d %s\n", rc, e.msg);
  if (rc < 0 && e.msg[0] == '\0')
    abort(); /* every failure has a message */
  sql__objsrc_dir_free(&src);
  return 0;
}
