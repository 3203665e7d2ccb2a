/* cli/batch.h -- `tarn batch`: S3 Batch Operations jobs from the command
 * line (cli/batch.c), over the same S3 Control API the AWS CLI uses. */
#ifndef TARN_CLI_BATCH_H
#define TARN_CLI_BATCH_H

/* `tarn batch [--data DIR] ls|show|tag|confirm|cancel ...`, argv after
 * "batch"; returns the exit code (0, 1 for a failure, 2 for bad usage). */
int cli_batch(int argc, char **argv);

#endif
