/* fuzz_standalone.c -- a main() for the fuzz targets when libFuzzer is
 * not there (gcc builds, `meson test`): runs the target on each file given,
 * then on a few thousand inputs mutated from them with a fixed seed, so
 * every build smoke-tests the parsers with odd input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

int main(int argc, char **argv)
{
  int iters = 3000;
  static const char *const dict[] = {",", "\"", "\n", "\r\n", ";", "{", "}", ":", "[", "]",
                                     "SELECT", " FROM ", "(", ")", "'", "\\", "null", "1e9",
                                     "--", "/*", "*", " OVER (", "CAST(", " AS ", "\xc3\xa9"};
  for (int f = 1; f < argc; f++) {
    FILE *fp = fopen(argv[f], "rb");
    if (fp == NULL)
      continue;
    char seed[8192];
    size_t n = fread(seed, 1, sizeof seed, fp);
    fclose(fp);
    LLVMFuzzerTestOneInput((const uint8_t *)seed, n);
    for (int i = 0; i < iters / (argc - 1); i++) {
      char buf[9000];
      size_t m = n;
      memcpy(buf, seed, n);
      int edits = 1 + (int)(next() % 6);
      for (int k = 0; k < edits; k++) {
        int op = (int)(next() % 4);
        if (op == 0 && m > 0) {
          buf[next() % m] = (char)(next() & 0xFF);
        } else if (op == 1 && m > 0) {
          size_t at = next() % m;
          size_t len = 1 + next() % 8;
          if (at + len > m)
            len = m - at;
          memmove(buf + at, buf + at + len, m - at - len);
          m -= len;
        } else {
          const char *w = dict[next() % (sizeof dict / sizeof dict[0])];
          size_t wl = strlen(w);
          if (m + wl < sizeof buf) {
            size_t at = m ? next() % (m + 1) : 0;
            memmove(buf + at + wl, buf + at, m - at);
            memcpy(buf + at, w, wl);
            m += wl;
          }
        }
      }
      LLVMFuzzerTestOneInput((const uint8_t *)buf, m);
    }
  }
  printf("ok\n");
  return 0;
}
