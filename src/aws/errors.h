/* aws/errors.h -- the bodies of AWS's error shapes, one per wire protocol.
 *
 * Each service keeps its own table from ERR_* codes to its error names (SQS
 * says AWS.SimpleQueueService.NonExistentQueue where S3 says NoSuchBucket);
 * what the body looks like for a protocol is written once, here:
 *   query    <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>
 *            (SQS's older shape, SNS, IAM)
 *   JSON     {"__type": "...", "message": "..."} (JSON 1.0 / 1.1 services)
 *   REST-XML <Error><Code/><Message/>...<RequestId/></Error> (S3)
 * Status lines and headers belong to the HTTP side (api/).
 */
#ifndef TARN_AWS_ERRORS_H
#define TARN_AWS_ERRORS_H

#include "base/buf.h"
#include "base/text.h"

#include <stdbool.h>
#include <stddef.h>

/* "Sender" for a client's error (status < 500), else "Receiver". */
const char *aws_error_fault(int status);

/* The query protocol's error document in namespace ns. detail adds the
 * empty <Detail/> element that SQS writes. */
void aws_error_query_xml(buf *b, const char *ns, int status, const char *code, const char *msg,
                         bool detail, const char *request_id);

/* The JSON protocols' error document: {"__type": type, "message": msg}. */
void aws_error_json(buf *b, const char *type, const char *msg);

/* The REST-XML error document (S3): Code, Message, then the extra elements
 * in order (BucketName, Key, ...), then RequestId. */
void aws_error_rest_xml(buf *b, const char *code, const char *msg, const str_pair *extra,
                        size_t nextra, const char *request_id);

#endif
