/* api/sns.h -- the SNS endpoint: SNS's query protocol (form in, XML out)
 * over the topics of the queue part (queue/queue.h).
 *
 * The service plugs into the HTTP edge under the SigV4 scope name "sns".
 * It also answers the presigned GET links that notifications carry
 * (SubscribeURL: ConfirmSubscription; UnsubscribeURL: Unsubscribe).
 * Operations and error codes are described at the top of api/sns.c.
 */
#ifndef TARN_API_SNS_H
#define TARN_API_SNS_H

#include "http/http.h"
#include "queue/queue.h"

/* Creates the SNS service over q (borrowed: it must outlive the service).
 * Never fails (out-of-memory aborts). */
http_service *sns_service_new(queue_system *q);

/* Accepts NULL; returns NULL. Call once the servers using it have stopped. */
http_service *sns_service_free(http_service *svc);

#endif
