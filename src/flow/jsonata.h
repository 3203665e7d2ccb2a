/* flow/jsonata.h -- the JSONata query language, the subset Step Functions
 * states use (QueryLanguage "JSONata"): parse an expression once, evaluate
 * it against an input document and a set of variables.
 *
 * Values cross this header as jansson values; "undefined" (JSONata's
 * absence of a value, distinct from null) is a NULL result.
 *
 * Evaluation is bounded: nesting depth, evaluation steps, the length of a
 * string or array built, the size of a range. A query past a bound fails
 * with FLOW_ERR_QUERY and a message, like any other evaluation error.
 */
#ifndef TARN_FLOW_JSONATA_H
#define TARN_FLOW_JSONATA_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

/* A JSONata expression failed at run time: States.QueryEvaluationError. */
#define FLOW_ERR_QUERY (-1330)

#define JSONATA_MAX_SOURCE 65536       /* bytes of one expression */
#define JSONATA_MAX_DEPTH 120          /* nesting of the parse and of evaluation */
#define JSONATA_MAX_STEPS 5000000      /* evaluation steps of one query */
#define JSONATA_MAX_STRING (1u << 20)  /* bytes of one string built */
#define JSONATA_MAX_ARRAY 1000000      /* elements of one array built (and of a range) */

typedef struct jsonata jsonata;

/* Parses src (len bytes): ERR_INVALID with "... at position N" on a syntax
 * error or an unsupported construct. */
int jsonata_parse(const char *src, size_t len, jsonata **out, err *e);
/* Accepts NULL; returns NULL. */
jsonata *jsonata_free(jsonata *j);

/* Evaluates j with input as $ and $$ and vars (an object, name without
 * the '$' -> value; may be NULL) as variables. *out is a new reference, or
 * NULL for undefined. FLOW_ERR_QUERY with the reason on failure. */
int jsonata_eval(const jsonata *j, json_t *input, json_t *vars, json_t **out, err *e);

/* Both in one call. */
int jsonata_eval_text(const char *src, json_t *input, json_t *vars, json_t **out, err *e);

#endif
