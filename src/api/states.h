/* api/states.h -- the Step Functions endpoint: AWS JSON 1.0
 * (X-Amz-Target: AWSStepFunctions.*) over the flow part (flow/flow.h).
 *
 * The service plugs into the HTTP edge under the SigV4 scope name
 * "states". Operations, limits and error names are described at the top
 * of api/states.c.
 */
#ifndef TARN_API_STATES_H
#define TARN_API_STATES_H

#include "flow/flow.h"
#include "http/http.h"

/* Creates the service over f (borrowed: it must outlive the service).
 * Never fails (out-of-memory aborts). */
http_service *states_service_new(flow_system *f);

/* Accepts NULL; returns NULL. Call once the servers using it have stopped. */
http_service *states_service_free(http_service *svc);

#endif
