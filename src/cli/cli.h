/* cli/cli.h -- what the `tarn` command line shares: the credentials file
 * and the client-side commands (`tarn env`). */
#ifndef TARN_CLI_CLI_H
#define TARN_CLI_CLI_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>

#define CLI_KEY_MAX 128

typedef struct cli_credentials {
  char access_key[CLI_KEY_MAX + 1];
  char secret_key[CLI_KEY_MAX + 1];
} cli_credentials;

/* The server's credentials: TARN_ACCESS_KEY / TARN_SECRET_KEY when both are
 * set, else DIR/credentials; when create is true and the file is missing, a
 * new random pair is written there (mode 0600) and *created is set. */
int cli_credentials_load(const char *dir, bool create, cli_credentials *out, bool *created,
                         err *e);

/* A client's credentials (DESIGN.md §3): TARN_ACCESS_KEY / TARN_SECRET_KEY,
 * then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, then DIR/credentials. */
int cli_credentials_client(const char *dir, cli_credentials *out, err *e);

/* Creates dir (and parents) with mode 0700 when missing. */
int cli_make_dir(const char *dir, err *e);

/* `tarn sql [--format table|csv|json] "SQL"`: runs SQL through the server. */
int cli_sql(int argc, char **argv);

/* `tarn env [--data DIR] [--listen HOST:PORT]`: prints export lines. */
int cli_env(int argc, char **argv);

#endif
