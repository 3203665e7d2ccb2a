/* api/dynamodb.h -- the DynamoDB and DynamoDB Streams endpoints: AWS JSON
 * 1.0 (X-Amz-Target: DynamoDB_20120810.* and DynamoDBStreams_20120810.*)
 * over the kv part (kv/kv.h), under the SigV4 scope name "dynamodb".
 */
#ifndef TARN_API_DYNAMODB_H
#define TARN_API_DYNAMODB_H

#include "http/http.h"
#include "kv/kv.h"

/* Creates the service over k (borrowed: it must outlive the service). */
http_service *dynamodb_service_new(kv *k);
/* Accepts NULL; returns NULL. */
http_service *dynamodb_service_free(http_service *svc);

#endif
