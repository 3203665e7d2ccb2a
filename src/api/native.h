/* api/native.h -- tarn's own endpoints under /_tarn/: health and metrics. */
#ifndef TARN_API_NATIVE_H
#define TARN_API_NATIVE_H

#include "http/http.h"
#include "store/store.h"

typedef struct catalog catalog;

/* The service answering /_tarn/...; version is shown by health. */
http_service *native_service_new(store *st, const char *version);
/* Tells the service which server to read request metrics from (the server
 * is started after the service exists, so this may run while requests are
 * served: it is safe to). */
void native_service_attach(http_service *svc, http_server *srv);
/* The table catalog POST /_tarn/sql uses (sql_options.catalog); before serving. */
void native_service_set_catalog(http_service *svc, catalog *cat);
/* Adds a part's own metrics to GET /_tarn/metrics: write appends
 * Prometheus text to out. At most 8 providers. */
void native_service_add_metrics(http_service *svc, void (*write)(void *ctx, buf *out), void *ctx);
/* Accepts NULL; returns NULL. */
http_service *native_service_free(http_service *svc);

#endif
