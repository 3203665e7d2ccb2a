/* api/native_sql.h -- POST /_tarn/sql, called from native.c's routes. */
#ifndef TARN_API_NATIVE_SQL_H
#define TARN_API_NATIVE_SQL_H

#include "http/http.h"
#include "sql/sql.h"
#include "store/store.h"

typedef struct native_sql native_sql;

native_sql *native_sql_new(store *st);
/* The table catalog the statements see (NULL: none); set before serving.
 * A request may name its default database with ?database=name. */
void native_sql_set_catalog(native_sql *n, catalog *cat);
/* Cancels running queries and waits for them to end. */
void native_sql_stop(native_sql *n);
/* Stops, then frees; accepts NULL; returns NULL. */
native_sql *native_sql_free(native_sql *n);

int native_sql_prepare(native_sql *n, http_req *r, err *e);
void native_sql_handle(native_sql *n, http_req *r);
void native_sql_cleanup(native_sql *n, http_req *r);
/* Appends the SQL metrics (running, queued, rejected, cancelled, timed out)
 * in Prometheus text format; ctx is the native_sql. */
void native_sql_metrics(void *ctx, buf *out);

#endif
