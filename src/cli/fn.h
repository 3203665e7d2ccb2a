/* cli/fn.h -- `tarn fn`: functions from the command line (cli/fn.c), over
 * the same Lambda API the AWS CLI and SDKs use. */
#ifndef TARN_CLI_FN_H
#define TARN_CLI_FN_H

/* `tarn fn [--data DIR] deploy|invoke|logs|ls|rm ...`, argv after "fn";
 * returns the exit code (0, 1 for a failure, 2 for bad usage). */
int cli_fn(int argc, char **argv);

#endif
