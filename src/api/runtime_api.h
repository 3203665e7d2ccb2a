/* api/runtime_api.h -- the Lambda Runtime API (2018-06-01) that function
 * instances speak, as an HTTP service for tarn's private runtime socket.
 * The instance side (what each call does to the scheduler) is fn_runtime_*
 * in fn/fn.h.
 */
#ifndef TARN_API_RUNTIME_API_H
#define TARN_API_RUNTIME_API_H

#include "fn/fn.h"
#include "http/http.h"

/* Creates the service over fn (borrowed: it must outlive the service), for
 * a server with http_config.open_service on the runtime socket. GET next
 * parks its request while it waits, so a small pool of threads serves any
 * number of idle instances. */
http_service *runtime_api_service_new(fn_system *fn);

/* Accepts NULL; returns NULL. Call once the server using it has stopped. */
http_service *runtime_api_service_free(http_service *svc);

#endif
