/* flow/query.h -- what step.c, path.c and asl.c share with query.c: the
 * state's query language, JSONata states and workflow variables.
 */
#ifndef TARN_FLOW_QUERY_H
#define TARN_FLOW_QUERY_H

#include "flow/internal.h"
#include "flow/jsonata.h"

#define FLOW_MAX_VARIABLE 262144u          /* bytes of one variable's value (AWS: 256 KiB) */
#define FLOW_MAX_ASSIGN 262144u            /* bytes of one Assign's values together */
#define FLOW_MAX_VARIABLES (10u << 20)     /* bytes of every variable of a run (AWS: 10 MiB) */
#define FLOW_MAX_VARIABLE_NAME 80

/* The variables the current step sees (JSONPath paths "$name.x" read
 * them): an object, or NULL outside a step. */
extern _Thread_local json_t *flow__vars_now;

/* True when state (of the definition def) uses JSONata. */
bool flow__ql_jsonata(json_t *def, json_t *state);
/* The expression of a "{% expr %}" string (len bytes), or NULL. */
const char *flow__jsonata_expr(json_t *v, size_t *len);
/* A variable name: a letter or '_', then letters, digits, '_'. */
bool flow__var_name_valid(const char *name, size_t len);
/* A field value of a JSONata state: every "{% expr %}" string in it parses.
 * 0, or ERR_INVALID with the parser's message. */
int flow__jsonata_check(json_t *v, err *e);

/* The variables run t sees: its own over its ancestors' (a new object). */
json_t *flow__vars_visible(stepper *st, touch *t);
/* The error name of a failed evaluation's code. */
const char *flow__error_name(int rc);

/* A JSONata state entered (step.c's enter_state for JSONPath). */
enum outcome flow__ja_enter(stepper *st, touch *t, json_t *state, json_t *ctx);
/* A Task's, Parallel's or Map's result: Output and Assign (JSONata), or
 * Assign over sel, the selected result (JSONPath; *out untouched). */
int flow__result_shape(stepper *st, touch *t, json_t *state, json_t *input, json_t *result,
                       json_t *ctx, json_t **out, err *e);
/* JSONPath Assign of state (or a Choice rule) over doc. */
int flow__assign_path(stepper *st, touch *t, json_t *assign, json_t *doc, json_t *ctx, err *e);
/* A catcher matched: 1 with *out (JSONata Output), 0 when ResultPath
 * decides (JSONPath; its Assign applied), or an error. */
int flow__catch_shape(stepper *st, touch *t, json_t *state, json_t *catcher, json_t *errobj,
                      json_t **out, err *e);
/* A JSONata Map's ItemSelector for item i. */
int flow__ja_item(stepper *st, touch *t, json_t *sel, json_t *item, size_t i, json_t *ctx,
                  json_t **out, err *e);
/* A Task's TimeoutSeconds or HeartbeatSeconds: the state's, or what a
 * JSONata expression gave on entry. */
json_t *flow__task_seconds(touch *t, json_t *state, const char *key);

/* step.c's pieces, for query.c */
enum outcome flow__transition(stepper *st, touch *t, json_t *state, json_t *output);
enum outcome flow__fail_state(stepper *st, touch *t, json_t *state, const char *error,
                              const char *cause);
void flow__run_end(stepper *st, touch *t, json_t *output, const char *error, const char *cause);
void flow__exit_event(stepper *st, touch *t, const char *type, json_t *out);
enum outcome flow__task_schedule(stepper *st, touch *t, json_t *state);
enum outcome flow__spawn(stepper *st, touch *t, json_t *state, json_t *ctx, json_t *eff, err *e);
const char *flow__token_new(touch *t);
/* The context object ($$, $states.context) of run t (a new object). */
json_t *flow__context(stepper *st, touch *t);

#endif
