/* sql/value.h -- values outside vectors (private): string banks, value
 * sets, LIKE patterns, casts and the text form of every type. */
#ifndef TARN_SQL_VALUE_H
#define TARN_SQL_VALUE_H

#include "plan.h"

/* ---- a bank of string copies that lives as long as its owner ---- */
typedef struct sbank sbank;
sbank *sql__sbank_new(void);
sbank *sql__sbank_free(sbank *b);
const char *sql__sbank_copy(sbank *b, const char *p, size_t n);
size_t sql__sbank_bytes(const sbank *b);   /* accepts NULL */

/* ---- sets of values (IN lists and subqueries, DISTINCT aggregates) ---- */
typedef struct valset valset;
valset *sql__valset_new(int phys);
valset *sql__valset_free(valset *s);
bool sql__valset_add(valset *s, value v);        /* true when new; strings are copied */
bool sql__valset_has(const valset *s, value v);  /* v not NULL */
bool sql__valset_has_null(const valset *s);
size_t sql__valset_size(const valset *s);        /* distinct non-NULL values */
size_t sql__valset_bytes(const valset *s);
void sql__valset_each(const valset *s, void (*fn)(void *arg, value v), void *arg);

/* ---- LIKE ---- */
typedef struct like_pat like_pat;
like_pat *sql__like_compile(const char *p, size_t n, char esc, bool ci);
void sql__like_free(like_pat *lp);
bool sql__like_match(const like_pat *lp, const char *s, size_t n);

/* ---- casts and text ---- */

/* Casts v (not NULL) from one type to another. On failure returns false
 * with a message ("cannot cast 'abc' to bigint"). Strings go to heap. */
bool sql__cast_value(stype from, stype to, value v, value *out, strheap *heap, char *msg,
                    size_t msgn);
/* The text of v (not NULL) of type t: into tmp (at least 64 bytes) or, for
 * strings, the string itself. */
str_ref sql__value_text(stype t, value v, char *tmp);

/* frees per-thread function state (PCRE2 match data) */
void sql__func_scratch_free(fn_ctx *c);

#endif
