/* api/secretsmanager.h -- a minimal Secrets Manager endpoint (JSON 1.1,
 * X-Amz-Target secretsmanager.*): CreateSecret, GetSecretValue,
 * ListSecrets, DeleteSecret, over the secrets of rdb/rdb.h (which the Data
 * API's secretArn names). */
#ifndef TARN_API_SECRETSMANAGER_H
#define TARN_API_SECRETSMANAGER_H

#include "http/http.h"
#include "rdb/rdb.h"

http_service *secretsmanager_service_new(rdb *r);
http_service *secretsmanager_service_free(http_service *svc);

#endif
