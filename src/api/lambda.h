/* api/lambda.h -- the Lambda REST-JSON endpoint (/2015-03-31/functions...):
 * translates Lambda requests into calls on the function system (fn/fn.h)
 * and answers in Lambda's wire format (JSON bodies, x-amzn-ErrorType).
 *
 * The service plugs into the HTTP edge under the SigV4 scope name "lambda".
 * Code given as S3Bucket/S3Key is read from tarn's own store.
 */
#ifndef TARN_API_LAMBDA_H
#define TARN_API_LAMBDA_H

#include "fn/fn.h"
#include "http/http.h"
#include "store/store.h"

/* Creates the Lambda service over fn and st (both borrowed: they must
 * outlive the service). Never fails (out-of-memory aborts). */
http_service *lambda_service_new(fn_system *fn, store *st);

/* Accepts NULL; returns NULL. Call once the servers using it have stopped. */
http_service *lambda_service_free(http_service *svc);

#endif
