/* api/s3control.h -- the S3 Control endpoint of Batch Operations jobs
 * (REST-XML under /v20180820/jobs) over batch/batch.h. Its requests are
 * signed for "s3": the S3 endpoint hands it every request whose path
 * starts with /v20180820/ (s3_service_set_control). */
#ifndef TARN_API_S3CONTROL_H
#define TARN_API_S3CONTROL_H

#include "batch/batch.h"
#include "http/http.h"

#include <stdbool.h>

/* b is borrowed: it must outlive the service. Never fails. */
http_service *s3control_service_new(batch_system *b);
/* Accepts NULL; returns NULL. */
http_service *s3control_service_free(http_service *svc);
/* True for a request this endpoint answers (its path). */
bool s3control_path(const http_req *req);

#endif
