/* api/rds.h -- the RDS endpoint (query protocol, scope "rds"): the
 * serverless PostgreSQL clusters of rdb/rdb.h. */
#ifndef TARN_API_RDS_H
#define TARN_API_RDS_H

#include "http/http.h"
#include "rdb/rdb.h"

/* r is borrowed and must outlive the service. Never fails. */
http_service *rds_service_new(rdb *r);
/* Accepts NULL; returns NULL. */
http_service *rds_service_free(http_service *svc);

#endif
