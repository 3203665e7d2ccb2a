/* cli/flow.h -- `tarn flow`: state machines and executions from the command
 * line (cli/flow.c), over the Step Functions API. */
#ifndef TARN_CLI_FLOW_H
#define TARN_CLI_FLOW_H

/* `tarn flow [--data DIR] ls|create|validate|run|start|status|history|stop|rm ...`,
 * argv after "flow"; returns the exit code (0, 1 for a failure, 2 for bad
 * usage). */
int cli_flow(int argc, char **argv);

#endif
