/* cli/queue.h -- `tarn queue` and `tarn topic`: queues and topics from the
 * command line (cli/queue.c), over the same SQS and SNS APIs the AWS CLI and
 * SDKs use. */
#ifndef TARN_CLI_QUEUE_H
#define TARN_CLI_QUEUE_H

/* `tarn queue [--data DIR] ls|create|rm|send|receive|tail|purge|stats ...`,
 * argv after "queue"; returns the exit code (0, 1 for a failure, 2 for bad
 * usage). */
int cli_queue(int argc, char **argv);

/* `tarn topic [--data DIR] ls|create|rm|publish|subscribe|subs ...`. */
int cli_topic(int argc, char **argv);

#endif
