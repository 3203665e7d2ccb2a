/* cli/stream.h -- `tarn stream`: Kinesis data streams from the command line
 * (cli/stream.c), over the same Kinesis API the AWS CLI and SDKs use. */
#ifndef TARN_CLI_STREAM_H
#define TARN_CLI_STREAM_H

/* `tarn stream [--data DIR] ls|create|rm|put|tail ...`, argv after
 * "stream"; returns the exit code (0, 1 for a failure, 2 for bad usage). */
int cli_stream(int argc, char **argv);

#endif
