/* api/athena.h -- the Athena endpoint: AWS JSON 1.1
 * (X-Amz-Target: AmazonAthena.*) over the athena part (athena/athena.h).
 *
 * The service plugs into the HTTP edge under the SigV4 scope name
 * "athena". Operations and error names are described at the top of
 * api/athena.c.
 */
#ifndef TARN_API_ATHENA_H
#define TARN_API_ATHENA_H

#include "athena/athena.h"
#include "http/http.h"

/* Creates the service over a (borrowed: it must outlive the service).
 * Never fails (out-of-memory aborts). */
http_service *athena_service_new(athena *a);

/* Accepts NULL; returns NULL. Call once the servers using it have stopped. */
http_service *athena_service_free(http_service *svc);

#endif
