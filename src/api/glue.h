/* api/glue.h -- the AWS Glue Data Catalog endpoint (JSON 1.1,
 * X-Amz-Target: AWSGlue.*) over the catalog part. */
#ifndef TARN_API_GLUE_H
#define TARN_API_GLUE_H

#include "catalog/catalog.h"
#include "http/http.h"

/* c is borrowed: it must outlive the service. Never fails. */
http_service *glue_service_new(catalog *c);
/* Accepts NULL; returns NULL. */
http_service *glue_service_free(http_service *svc);

#endif
