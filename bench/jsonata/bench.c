/* bench/jsonata/bench.c -- tarn's side of bench/jsonata_bench.sh: the same
 * as bench.js, with flow/jsonata.c (built -O2 by the script). */
#include "flow/jsonata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
  int n = argc > 1 ? atoi(argv[1]) : 20000;
  const char *dir = argc > 2 ? argv[2] : ".";
  char path[4096];
  snprintf(path, sizeof path, "%s/doc.json", dir);
  json_t *doc = json_load_file(path, 0, NULL);
  snprintf(path, sizeof path, "%s/exprs.txt", dir);
  FILE *f = fopen(path, "r");
  if (doc == NULL || f == NULL)
    return 1;
  json_t *vars = json_pack("{s:{s:O}}", "states", "input", doc);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] == '\n')
      line[--len] = '\0';
    if (len == 0)
      continue;
    err e = {0};
    jsonata *j;
    if (jsonata_parse(line, (size_t)len, &j, &e) != 0) {
      printf("0 0 ERROR %s\n", e.msg);
      continue;
    }
    json_t *r = NULL;
    double t0 = now();
    for (int i = 0; i < n; i++) {
      json_decref(r);
      if (jsonata_eval(j, NULL, vars, &r, &e) != 0)
        r = NULL;
    }
    double compiled = n / (now() - t0);
    jsonata_free(j);
    t0 = now();
    for (int i = 0; i < n; i++) {
      json_decref(r);
      if (jsonata_eval_text(line, NULL, vars, &r, &e) != 0)
        r = NULL;
    }
    double fresh = n / (now() - t0);
    char *d = r != NULL ? json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("undefined");
    printf("%.0f %.0f %s\n", compiled, fresh, d);
    free(d);
    json_decref(r);
  }
  free(line);
  fclose(f);
  json_decref(vars);
  json_decref(doc);
  return 0;
}
