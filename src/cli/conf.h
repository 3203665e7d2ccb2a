/* cli/conf.h -- the server's configuration file (`tarn server --config`). */
#ifndef TARN_CLI_CONF_H
#define TARN_CLI_CONF_H

#include "base/err.h"

/* Reads FILE into the flags it stands for: a line `name = value` becomes
 * `--name value`, `name = true` becomes `--name`, `name = false` nothing.
 * *argv gets a NULL-terminated heap array (cli_conf_free it), *argc its
 * length. Errors: ERR_INVALID (a line that is no setting, a name not in
 * known), ERR_IO (the file cannot be read), ERR_ENTITY_TOO_LARGE (over
 * 64 KiB). known: the accepted names, NULL-terminated. */
int cli_conf_args(const char *path, const char *const *known, int *argc, char ***argv, err *e);
void cli_conf_free(int argc, char **argv);

#endif
