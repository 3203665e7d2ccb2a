/* fuzz_gate.c -- libFuzzer target for the gate's request head check
 * (http__gate_head_check in http/gate.c).
 *
 * The input is what a client sent so far. The check must never crash or
 * read out of bounds, and when it accepts a head, every string it hands
 * out must lie inside the input.
 */
#include "http/gate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *s, const char *p, size_t n)
{
  if (s != NULL && (s < p || s + strlen(s) > p + n))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *p = malloc(size + 1);
  if (p == NULL)
    return 0;
  memcpy(p, data, size);
  p[size] = '\0';
  str_pair headers[GATE_MAX_HEADERS];
  gate_head h = {0};
  err e = {0};
  int rc = http__gate_head_check(p, size, 16u << 10, &h, headers, &e);
  if (rc == 0) {
    inside(h.method, p, size);
    inside(h.target, p, size);
    for (size_t i = 0; i < h.nheaders; i++) {
      inside(h.headers[i].name, p, size);
      inside(h.headers[i].value, p, size);
    }
  }
  free(p);
  return 0;
}
