/* api/rds_data.h -- the RDS Data API endpoint (REST-JSON, scope
 * "rds-data"): POST /Execute, /BatchExecute, /BeginTransaction,
 * /CommitTransaction, /RollbackTransaction over rdb/rdb.h. */
#ifndef TARN_API_RDS_DATA_H
#define TARN_API_RDS_DATA_H

#include "http/http.h"
#include "rdb/rdb.h"

http_service *rds_data_service_new(rdb *r);
http_service *rds_data_service_free(http_service *svc);

#endif
