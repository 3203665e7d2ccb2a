/* cli/command.h -- what the client commands share around their work: the
 * one-line failures on stderr (every client command), and for those with
 * subcommands (`tarn fn`, `tarn queue`, `tarn topic`) the global --data
 * option and help.
 */
#ifndef TARN_CLI_COMMAND_H
#define TARN_CLI_COMMAND_H


/* "tarn WHO: message" on stderr; returns 1, a failure's exit code. */
int cli_fail(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same, then a blank line and usage; returns 2, bad usage's exit code. */
int cli_usage_error(const char *who, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct cli_args {
  const char *dir; /* --data DIR, else "./tarn-data" */
  char **argv;     /* the other arguments in order, argv[0] the subcommand (heap) */
  int argc;
} cli_args;

/* Takes --data DIR / --data=DIR from anywhere on the line and keeps the
 * rest. Returns -1 when a->argv[0] is a subcommand to run; otherwise the
 * exit code, after it printed the usage (0 for help, 2 with no subcommand)
 * or a usage error (2). Call cli_args_release in every case. */
int cli_args_init(cli_args *a, const char *who, const char *usage, int argc, char **argv);
void cli_args_release(cli_args *a);

#endif
