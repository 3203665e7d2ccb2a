/* api/glue.h -- the AWS Glue Data Catalog endpoint (JSON 1.1,
 * X-Amz-Target: AWSGlue.*) over the catalog part and its crawlers. */
#ifndef TARN_API_GLUE_H
#define TARN_API_GLUE_H

#include "catalog/catalog.h"
#include "catalog/crawler.h"
#include "http/http.h"

/* c and cr are borrowed: they must outlive the service. Never fails. */
http_service *glue_service_new(catalog *c, crawlers *cr);
/* Accepts NULL; returns NULL. */
http_service *glue_service_free(http_service *svc);

#endif
