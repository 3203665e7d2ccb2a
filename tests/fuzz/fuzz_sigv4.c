/* fuzz_sigv4.c -- libFuzzer target for SigV4 verification: the input is
 * split into an Authorization header, an x-amz-date and a raw path; the
 * verifier must reject garbage cleanly and never crash. */
#include "aws/sigv4.h"

#include <stdint.h>
#include <string.h>

static const char *secret(void *ctx, const char *ak)
{
  (void)ctx;
  return strcmp(ak, "AKIAIOSFODNN7EXAMPLE") == 0 ? "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  arena *a = arena_new();
  char *text = arena_strndup(a, (const char *)data, size);
  char *parts[3] = {text, "", "/"};
  char *nl = strchr(text, '\n');
  if (nl != NULL) {
    *nl = '\0';
    parts[1] = nl + 1;
    char *nl2 = strchr(parts[1], '\n');
    if (nl2 != NULL) {
      *nl2 = '\0';
      parts[2] = nl2 + 1;
    }
  }
  str_pair headers[] = {{"authorization", parts[0]}, {"x-amz-date", parts[1]},
                        {"host", "examplebucket.s3.amazonaws.com"},
                        {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}};
  str_pair query[] = {{"X-Amz-Credential", parts[0]}, {"X-Amz-Date", parts[1]}};
  sigv4_request req = {.method = "GET", .raw_path = parts[2], .headers = headers, .nheaders = 4,
                       .query = query, .nquery = size % 2 ? 2 : 0};
  sigv4_result out;
  err e = {0};
  sigv4_verify(&req, secret, NULL, 1369353600, a, &out, &e);
  char service[32];
  sigv4_scope_service(&req, service);
  arena_free(a);
  return 0;
}
