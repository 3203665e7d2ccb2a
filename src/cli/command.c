/* cli/command.c -- the frame of the client commands: failures, usage
 * errors, and the global --data option of those with subcommands.
 *
 * Why: the client commands promise the same things (DESIGN.md §3): an
 * error as one line "tarn WHO: ..." on stderr with exit code 1, bad usage
 * with exit code 2; `tarn fn`, `tarn queue` and `tarn topic` also take
 * --data anywhere on the line and help on `help`/-h/--help. Written once,
 * they cannot drift.
 *
 * Invariants:
 *   (1) Nothing here prints to stdout but the help that was asked for.
 *   (2) cli_args_init leaves a releasable cli_args on every path.
 *
 * Start reading at cli_args_init().
 */
#include "cli/command.h"

#include "base/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vreport(const char *who, const char *fmt, va_list ap)
{
  fprintf(stderr, "tarn %s: ", who);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

int cli_fail(const char *who, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vreport(who, fmt, ap);
  va_end(ap);
  return 1;
}

int cli_usage_error(const char *who, const char *usage, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vreport(who, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fputs(usage, stderr);
  return 2;
}

int cli_args_init(cli_args *a, const char *who, const char *usage, int argc, char **argv)
{
  a->dir = "./tarn-data";
  a->argc = 0;
  a->argv = xcalloc((size_t)argc + 1, sizeof *a->argv);
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--data") == 0) {
      if (i + 1 == argc)
        return cli_usage_error(who, usage, "--data needs a folder");
      a->dir = argv[++i];
    } else if (strncmp(argv[i], "--data=", 7) == 0) {
      a->dir = argv[i] + 7;
    } else {
      a->argv[a->argc++] = argv[i];
    }
  }
  const char *sub = a->argc > 0 ? a->argv[0] : NULL;
  if (sub == NULL) {
    fputs(usage, stderr);
    return 2;
  }
  if (strcmp(sub, "help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  return -1;
}

void cli_args_release(cli_args *a)
{
  free(a->argv);
  a->argv = NULL;
  a->argc = 0;
}
