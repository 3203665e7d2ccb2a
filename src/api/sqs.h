/* api/sqs.h -- the SQS endpoint: both of SQS's wire protocols over the
 * queue part (queue/queue.h).
 *
 *   query      form-encoded POST (or GET) with Action=..., answered in XML
 *              (Debian's awscli 2.9 and boto3 1.26 speak it)
 *   JSON 1.0   POST with X-Amz-Target: AmazonSQS.<Action>, answered in JSON
 *              (current SDKs)
 *
 * The service plugs into the HTTP edge under the SigV4 scope name "sqs".
 * Queue URLs are http://HOST/000000000000/NAME with HOST the request's Host
 * header. Operations, limits and error codes are described at the top of
 * api/sqs.c.
 */
#ifndef TARN_API_SQS_H
#define TARN_API_SQS_H

#include "http/http.h"
#include "queue/queue.h"

/* Creates the SQS service over q (borrowed: it must outlive the service).
 * Never fails (out-of-memory aborts). */
http_service *sqs_service_new(queue_system *q);

/* Accepts NULL; returns NULL. Call once the servers using it have stopped. */
http_service *sqs_service_free(http_service *svc);

#endif
