/* cli/events.h -- `tarn events`: the event log, live (cli/events.c), over
 * GET /_tarn/events. */
#ifndef TARN_CLI_EVENTS_H
#define TARN_CLI_EVENTS_H

/* `tarn events [--data DIR] [--once] [--json] [--after N]`, argv after
 * "events"; returns the exit code (0, 1 for a failure, 2 for bad usage). */
int cli_events(int argc, char **argv);

#endif
