/* api/firehose.h -- the Firehose endpoint (JSON 1.1,
 * X-Amz-Target: Firehose_20150804.*) over the stream part. */
#ifndef TARN_API_FIREHOSE_H
#define TARN_API_FIREHOSE_H

#include "http/http.h"
#include "stream/stream.h"

/* s is borrowed: it must outlive the service. Never fails. */
http_service *firehose_service_new(stream_system *s);
/* Accepts NULL; returns NULL. */
http_service *firehose_service_free(http_service *svc);

#endif
