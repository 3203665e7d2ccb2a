/* api/kinesis.h -- the Kinesis Data Streams endpoint (JSON 1.1,
 * X-Amz-Target: Kinesis_20131202.*) over the stream part. */
#ifndef TARN_API_KINESIS_H
#define TARN_API_KINESIS_H

#include "http/http.h"
#include "stream/stream.h"

/* s is borrowed: it must outlive the service. Never fails. */
http_service *kinesis_service_new(stream_system *s);
/* Accepts NULL; returns NULL. */
http_service *kinesis_service_free(http_service *svc);

#endif
