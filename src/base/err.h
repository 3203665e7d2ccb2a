/* base/err.h -- error codes and the error value every fallible call fills.
 *
 * One X-macro table gives each code its number, HTTP status and AWS error
 * code, so the API edge maps any failure to a wire error without a switch of
 * its own. A function that can fail returns 0 or one of these negative codes
 * and fills the `err *` it was given with one message (lower-case, no full
 * stop, subject in quotes).
 *
 * Codes from -1 down to -999 are this table's. A part that maps its own
 * errors to a service's wire codes numbers them in its own range, so that no
 * two parts' codes meet if one's code reaches another's mapping:
 *   -1101.. queue     -1201.. api/sqs    -1251.. api/sns
 *   -1301.. flow (jsonata -1330, api/states -1351)
 *   -1390.. api/json_rpc and api/dynamodb   -1401.. stream   -1501.. kv
 *   -1601.. api/rds (api/rds_data -1611)
 */
#ifndef TARN_BASE_ERR_H
#define TARN_BASE_ERR_H

#include <stddef.h>

/*  name                   code  http  aws code */
#define TARN_ERRORS(X)                                                      \
  X(INTERNAL,                -1,  500, "InternalError")                    \
  X(INVALID,                 -2,  400, "InvalidArgument")                  \
  X(NOT_FOUND,               -3,  404, "NotFound")                         \
  X(NO_SUCH_BUCKET,          -4,  404, "NoSuchBucket")                     \
  X(NO_SUCH_KEY,             -5,  404, "NoSuchKey")                        \
  X(NO_SUCH_UPLOAD,          -6,  404, "NoSuchUpload")                     \
  X(BUCKET_EXISTS,           -7,  409, "BucketAlreadyOwnedByYou")          \
  X(BUCKET_NOT_EMPTY,        -8,  409, "BucketNotEmpty")                   \
  X(INVALID_BUCKET_NAME,     -9,  400, "InvalidBucketName")                \
  X(KEY_TOO_LONG,           -10,  400, "KeyTooLongError")                  \
  X(DENIED,                 -11,  403, "AccessDenied")                     \
  X(SIGNATURE,              -12,  403, "SignatureDoesNotMatch")            \
  X(UNKNOWN_ACCESS_KEY,     -13,  403, "InvalidAccessKeyId")               \
  X(TIME_SKEWED,            -14,  403, "RequestTimeTooSkewed")             \
  X(AUTH_MALFORMED,         -15,  400, "AuthorizationHeaderMalformed")     \
  X(CONTENT_SHA256,         -16,  400, "XAmzContentSHA256Mismatch")        \
  X(BAD_DIGEST,             -17,  400, "BadDigest")                        \
  X(INVALID_DIGEST,         -18,  400, "InvalidDigest")                    \
  X(INCOMPLETE_BODY,        -19,  400, "IncompleteBody")                   \
  X(MALFORMED_XML,          -20,  400, "MalformedXML")                     \
  X(ENTITY_TOO_SMALL,       -21,  400, "EntityTooSmall")                   \
  X(ENTITY_TOO_LARGE,       -22,  400, "EntityTooLarge")                   \
  X(INVALID_PART,           -23,  400, "InvalidPart")                      \
  X(INVALID_PART_ORDER,     -24,  400, "InvalidPartOrder")                 \
  X(INVALID_RANGE,          -25,  416, "InvalidRange")                     \
  X(PRECONDITION,           -26,  412, "PreconditionFailed")               \
  X(NOT_MODIFIED,           -27,  304, "NotModified")                      \
  X(INVALID_REQUEST,        -28,  400, "InvalidRequest")                   \
  X(METHOD_NOT_ALLOWED,     -29,  405, "MethodNotAllowed")                 \
  X(NOT_IMPLEMENTED,        -30,  501, "NotImplemented")                   \
  X(MISSING_LENGTH,         -31,  411, "MissingContentLength")             \
  X(INVALID_TAG,            -32,  400, "InvalidTag")                       \
  X(METADATA_TOO_LARGE,     -33,  400, "MetadataTooLarge")                 \
  X(UNAVAILABLE,            -34,  503, "ServiceUnavailable")               \
  X(TOO_MANY_REQUESTS,      -35,  503, "SlowDown")                         \
  X(REQUEST_TIMEOUT,        -36,  400, "RequestTimeout")                   \
  X(INVALID_ENCRYPTION,     -37,  400, "InvalidEncryptionAlgorithmError")  \
  X(NO_SUCH_TAG_SET,        -38,  404, "NoSuchTagSet")                     \
  X(EXPIRED,                -39,  403, "AccessDenied")                     \
  X(HEADERS_TOO_LARGE,      -40,  400, "RequestHeaderSectionTooLarge")     \
  X(IO,                     -41,  500, "InternalError")                    \
  X(NO_SPACE,               -42,  507, "InsufficientStorage")              \
  X(CONFLICT,               -43,  409, "Conflict")                         \
  X(THROTTLED,              -44,  429, "TooManyRequestsException")        \
  X(NO_SUCH_ENTITY,         -45,  404, "NoSuchEntity")                     \
  X(ENTITY_EXISTS,          -46,  409, "EntityAlreadyExists")              \
  X(MALFORMED_POLICY,       -47,  400, "MalformedPolicyDocument")          \
  X(DELETE_CONFLICT,        -48,  409, "DeleteConflict")                   \
  X(LIMIT_EXCEEDED,         -49,  409, "LimitExceeded")                    \
  X(INVALID_PART_NUMBER,    -50,  416, "InvalidPartNumber")                \
  X(URI_TOO_LONG,           -51,  414, "RequestURITooLong")                \
  X(INVALID_STORAGE_CLASS,  -52,  400, "InvalidStorageClass")              \
  X(ENTITY_NOT_FOUND,       -53,  400, "EntityNotFoundException")          \
  X(ALREADY_EXISTS,         -54,  400, "AlreadyExistsException")           \
  X(INVALID_INPUT,          -55,  400, "InvalidInputException")            \
  X(RESOURCE_LIMIT,         -56,  400, "ResourceNumberLimitExceededException") \
  X(NO_SUCH_WEBSITE,        -57,  404, "NoSuchWebsiteConfiguration")       \
  X(NO_SUCH_BUCKET_POLICY,  -58,  404, "NoSuchBucketPolicy")               \
  X(MALFORMED_BUCKET_POLICY, -59, 400, "MalformedPolicy")                 \
  X(INVALID_REDIRECT,       -60,  400, "InvalidRedirectLocation")          \
  X(CRAWLER_RUNNING,        -61,  400, "CrawlerRunningException")          \
  X(CRAWLER_NOT_RUNNING,    -62,  400, "CrawlerNotRunningException")       \
  X(CRAWLER_STOPPING,       -63,  400, "CrawlerStoppingException")         \
  X(NO_SUCH_CORS,           -64,  404, "NoSuchCORSConfiguration")          \
  X(NO_SUCH_LIFECYCLE,      -65,  404, "NoSuchLifecycleConfiguration")     \
  X(NO_SUCH_PUBLIC_ACCESS_BLOCK, -66, 404, "NoSuchPublicAccessBlockConfiguration") \
  X(CORS_FORBIDDEN,         -67,  403, "AccessForbidden")                  \
  X(DB_RESUMING,            -68,  400, "DatabaseResumingException")       \
  X(UNAUTHORIZED,           -69,  401, "Unauthorized")                    \
  X(MALFORMED_POST,         -70,  400, "MalformedPOSTRequest")            \
  X(CONDITIONAL_CONFLICT,   -71,  409, "ConditionalRequestConflict")      \
  X(INVALID_POLICY_DOCUMENT, -72, 400, "InvalidPolicyDocument")           \
  X(MAX_POST_PRE_DATA,      -73,  400, "MaxPostPreDataLengthExceededError") \
  X(NO_SUCH_ENCRYPTION,     -74,  404, "ServerSideEncryptionConfigurationNotFoundError") \
  X(MALFORMED_ACL,          -75,  400, "MalformedACLError")               \
  X(UNRESOLVABLE_GRANT_BY_EMAIL, -76, 400, "UnresolvableGrantByEmailAddress") \
  X(INVALID_BUCKET_ACL_WITH_OWNERSHIP, -77, 400, "InvalidBucketAclWithObjectOwnership") \
  X(ACL_NOT_SUPPORTED,      -78,  400, "AccessControlListNotSupported")   \
  X(OWNERSHIP_CONTROLS_NOT_FOUND, -79, 404, "OwnershipControlsNotFoundError") \
  X(UNEXPECTED_CONTENT,     -80,  400, "UnexpectedContent")               \
  X(MISSING_SECURITY_HEADER, -81, 400, "MissingSecurityHeader") \
  X(NO_SUCH_VERSION,        -82,  404, "NoSuchVersion")                   \
  X(INVALID_BUCKET_STATE,   -83,  409, "InvalidBucketState")              \
  X(NO_LOCK_CONFIG,         -84,  404, "ObjectLockConfigurationNotFoundError") \
  X(NO_SUCH_LOCK_CONFIG,    -85,  404, "NoSuchObjectLockConfiguration") \
  X(MISSING_AUTH,           -86,  403, "MissingAuthenticationToken")

enum {
  ERR_OK = 0,
#define X(name, code, http, aws) ERR_##name = code,
  TARN_ERRORS(X)
#undef X
};

#define ERR_MSG_MAX 512

typedef struct err {
  int code;               /* 0 or an ERR_* code */
  char msg[ERR_MSG_MAX];  /* one message, for humans; empty when code is 0 */
} err;

/* Sets *e (when e is not NULL) and returns code, so `return err_set(...)`. */
int err_set(err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears e to "no error". */
void err_clear(err *e);

/* Prepends context: "context: previous message". Returns e->code. */
int err_wrap(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The HTTP status and AWS error code of a code; unknown codes are 500s. */
int err_http_status(int code);
const char *err_aws_code(int code);
/* The X-macro name, e.g. "NO_SUCH_KEY", for logs and tests. */
const char *err_name(int code);

/* Maps an errno value to ERR_IO or ERR_NO_SPACE. */
int err_from_errno(int errnum);

#endif
