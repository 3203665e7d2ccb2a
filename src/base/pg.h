/* base/pg.h -- a pool of PostgreSQL connections for the parts that keep their
 * metadata in PostgreSQL (`tarn server --metadata postgres://...`), so that
 * several tarn nodes share one state.
 *
 * A part opens one pool (pg_pool_open) with the server's URL, creates its
 * tables once with pg_pool_schema (idempotent DDL, run under an advisory lock
 * so that two nodes starting at once do not race), and runs each change as a
 * transaction with pg_transaction: the callback's statements commit together
 * or not at all, and a serialization failure or deadlock (SQLSTATE 40001,
 * 40P01) runs the callback again, up to PG_RETRIES times. A connection that
 * broke is replaced the next time it is taken.
 *
 * Durability: PostgreSQL's commit (synchronous_commit on, its default) is the
 * acknowledgement; a call that returned 0 survives a crash of this node and of
 * the database server.
 *
 * Errors: pg_error maps a failed result to the err table: unique violation
 * (23505) to ERR_CONFLICT, serialization failure and deadlock to ERR_CONFLICT
 * (retried by pg_transaction first), a lost or refused connection to
 * ERR_UNAVAILABLE, anything else to ERR_INTERNAL; the message names what was
 * being done and PostgreSQL's own message.
 *
 * Threads: the pool is safe to use from many threads; a connection is used by
 * one thread between pg_acquire and pg_release (pg_transaction does both).
 */
#ifndef TARN_BASE_PG_H
#define TARN_BASE_PG_H

#include "base/buf.h"
#include "base/err.h"

#include <stdbool.h>

/* libpq's own handles (the same typedefs as <libpq-fe.h>, which a part that
 * runs statements includes, adding `libpq` to its meson dependencies). */
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

#define PG_RETRIES 20

typedef struct pg_pool pg_pool;

/* Connects once (to check the URL and the server), and keeps at most
 * max_conns connections. url is a libpq connection URI or key=value string. */
int pg_pool_open(const char *url, int max_conns, pg_pool **out, err *e);
void pg_pool_close(pg_pool *p);

/* Runs ddl (one or more statements, each idempotent: CREATE TABLE IF NOT
 * EXISTS...) in one transaction under an advisory lock named by `name`. */
int pg_pool_schema(pg_pool *p, const char *name, const char *ddl, err *e);

/* A connection for this thread alone until pg_release; NULL with e filled
 * (ERR_UNAVAILABLE) when no connection can be made. `broken` tells the pool
 * to drop the connection instead of reusing it. */
PGconn *pg_acquire(pg_pool *p, err *e);
void pg_release(pg_pool *p, PGconn *c, bool broken);

/* Runs sql with text parameters (NULL for SQL NULL). On success *out (if not
 * NULL) gets the result, to PQclear; on failure returns pg_error's code. */
int pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
            PGresult **out, const char *what, err *e);

/* Same with explicit lengths and formats (1 = binary) for bytea values. */
int pg_exec_bin(PGconn *c, const char *sql, int nparams, const char *const *params,
                const int *lengths, const int *formats, PGresult **out, const char *what,
                err *e);

/* One statement on a connection of the pool, outside a transaction (it
 * commits alone); run again once on a fresh connection when the one taken
 * turned out to be lost. Arguments and result as pg_exec_bin's. */
int pg_pool_exec(pg_pool *p, const char *sql, int nparams, const char *const *params,
                 const int *lengths, const int *formats, PGresult **out, const char *what,
                 err *e);

/* A claim's lease in milliseconds: the environment variable env_name in
 * seconds (1 to 86400), else default_s. For the parts whose rows are
 * claimed by one node at a time and taken over when the lease ends. */
long long pg_lease_ms(const char *env_name, long long default_s);

/* A column of a text result as an integer; NULL is 0. */
long long pg_col_int(const PGresult *r, int row, int col);

/* Builds a text array parameter ("{a,NULL,\"b c\"}") for statements that
 * insert many rows at once (unnest($1::text[], ...)): pg_array_add appends
 * v (NULL: SQL NULL) as the next element of the array in b (empty before
 * the first), pg_array_end closes it. Non-zero when b's limit is passed. */
int pg_array_add(buf *b, const char *v);
/* The same for a bytea[] parameter: n bytes at v as the next element. */
int pg_array_add_bytes(buf *b, const void *v, size_t n);
int pg_array_end(buf *b);

/* Maps a failed result (r may be NULL: the connection's error is used). */
int pg_error(PGconn *c, const PGresult *r, const char *what, err *e);

/* True when the last pg_error on this thread was a serialization failure,
 * a deadlock or a lost connection: the whole transaction may run again. */
bool pg_last_retryable(void);

/* BEGIN (at the given isolation: NULL is READ COMMITTED), fn, COMMIT; on a
 * serialization failure, a deadlock or a connection lost before COMMIT was
 * sent, runs it all again. fn returns 0 or a negative code (which rolls
 * back and is returned). A positive return from fn also rolls back and is
 * returned as is (for "nothing to do" answers that must not commit). */
typedef int (*pg_txn_fn)(PGconn *c, void *arg, err *e);
int pg_transaction(pg_pool *p, const char *isolation, pg_txn_fn fn, void *arg, err *e);

#endif
