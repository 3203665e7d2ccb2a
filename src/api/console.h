/* api/console.h -- the web console's files over HTTP: GET /_tarn/console/.
 *
 * A public front door (http_service.claim): the page and its scripts are
 * static and hold nothing secret, so they are served without a signature;
 * every call the page then makes is a signed AWS API request (SigV4 in the
 * browser), answered by the same services the CLI talks to.
 */
#ifndef TARN_API_CONSOLE_H
#define TARN_API_CONSOLE_H

#include "http/http.h"

http_service *console_service_new(void);
/* Accepts NULL; returns NULL. */
http_service *console_service_free(http_service *svc);

#endif
