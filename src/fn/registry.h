/* fn/registry.h -- what the registry's files share (registry.c, names.c,
 * functions.c, aliases.c, concurrency.c), and nobody else in fn/: the rest
 * of fn/ reaches the registry through internal.h.
 *
 * "Under lock" is fn_system.lock; the LMDB helpers are called with
 * write_lock held and s->lock not (registry.c, invariant (1)).
 */
#ifndef TARN_FN_REGISTRY_H
#define TARN_FN_REGISTRY_H

#include "fn/internal.h"

#include <jansson.h>

#define KEY_MAX 256                 /* an LMDB key of the registry */

/* ---- names.c: names and validation ---- */
bool fn__name_ok(const char *n);
bool fn__all_digits(const char *s);
int fn__page_args(const char *marker, size_t *start, size_t *max, err *e);
bool fn__alias_name_ok(const char *n);
/* Checks settings (creating: those CreateFunction requires are there). */
int fn__validate(const fn_settings *set, bool creating, err *e);

/* ---- registry.c: confs ---- */
conf *fn__conf_from_json(fn_system *s, const char *name, uint32_t number, json_t *j);
json_t *fn__conf_to_json(const conf *c);
void fn__config_copy(const fn_entry *f, const conf *c, arena *a, fn_config *out);

/* ---- registry.c: the table (under lock) ---- */
fn_entry *fn__entry_new(fn_system *s, const char *name);
void fn__entry_unlink(fn_system *s, fn_entry *f);
alias_rec *fn__entry_alias(fn_entry *f, const char *name);
conf *fn__conf_of_version(fn_entry *f, const char *version);

/* ---- registry.c: the records, in LMDB or (fn_system.pg) PostgreSQL ---- */
typedef struct wtxn {
  MDB_txn *txn;               /* LMDB */
  json_t *ops;                /* pg: [kind, key, value?]... run at commit */
  fn_system *s;
} wtxn;

int fn__txn_begin(fn_system *s, wtxn *w, err *e);
int fn__txn_put_json(wtxn *w, fn_system *s, const char *key, json_t *j, err *e);
/* Same for a key that must not exist yet: the commit fails with ERR_CONFLICT
 * when it does (with pg, another node may have written it). */
int fn__txn_put_new_json(wtxn *w, fn_system *s, const char *key, json_t *j, err *e);
int fn__txn_del(wtxn *w, fn_system *s, const char *key, err *e);
int fn__txn_del_prefix(wtxn *w, fn_system *s, const char *prefix, err *e);
int fn__txn_commit(wtxn *w, err *e);
void fn__txn_abort(wtxn *w);                                   /* after a commit too */
/* The f/NAME record (f: NULL for a new function). */
json_t *fn__function_record(const fn_entry *f, const conf *latest, uint32_t next_version,
                        int reserved, const char *published_revision);
int fn__function_record_put(fn_system *s, const char *name, json_t *fr, err *e);
char *fn__published_revision_of(fn_system *s, const char *name); /* heap, or NULL */
json_t *fn__alias_record(const alias_rec *al);

/* ---- functions.c ---- */
void fn__new_revision(char out[37]);
int fn__not_found(const char *name, err *e);               /* "Function not found" */

#endif
