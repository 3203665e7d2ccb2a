/* base/err.c -- the error table's lookups and the message setters.
 *
 * Invariants:
 *   (1) err_set never fails and never allocates: messages are truncated to
 *       ERR_MSG_MAX - 1 bytes.
 */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(err *e, int code, const char *fmt, ...)
{
  if (e == NULL)
    return code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->code = code;
  return code;
}

void err_clear(err *e)
{
  if (e == NULL)
    return;
  e->code = 0;
  e->msg[0] = '\0';
}

int err_wrap(err *e, const char *fmt, ...)
{
  if (e == NULL)
    return ERR_INTERNAL;
  char prefix[ERR_MSG_MAX];
  char old[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, e->msg, sizeof old);
  size_t n = strlen(prefix);
  if (n > sizeof e->msg - 3)
    n = sizeof e->msg - 3;
  memcpy(e->msg, prefix, n);
  memcpy(e->msg + n, ": ", 2);
  size_t room = sizeof e->msg - n - 3;
  size_t m = strnlen(old, room);
  memcpy(e->msg + n + 2, old, m);
  e->msg[n + 2 + m] = '\0';
  return e->code;
}

int err_http_status(int code)
{
  switch (code) {
  case 0:
    return 200;
#define X(name, c, http, aws) case c: return http;
  TARN_ERRORS(X)
#undef X
  default:
    return 500;
  }
}

const char *err_aws_code(int code)
{
  switch (code) {
#define X(name, c, http, aws) case c: return aws;
  TARN_ERRORS(X)
#undef X
  default:
    return "InternalError";
  }
}

const char *err_name(int code)
{
  switch (code) {
  case 0:
    return "OK";
#define X(name, c, http, aws) case c: return #name;
  TARN_ERRORS(X)
#undef X
  default:
    return "UNKNOWN";
  }
}

int err_from_errno(int errnum)
{
  if (errnum == ENOSPC || errnum == EDQUOT)
    return ERR_NO_SPACE;
  return ERR_IO;
}
