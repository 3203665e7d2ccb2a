/* bench/sql/gen.c -- the data of bench/sql_bench.sh: the seed talk's sales
 * shape (custid, year, gram, count, price, ts, url) as CSV or JSON lines.
 *
 * Usage: sqlgen ROWS [json] > file. Deterministic (xorshift, fixed seed), so
 * every run and every engine reads the same bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
static uint64_t s = 42;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
int main(int argc, char **argv) {
  long n = atol(argv[1]);
  int json = argc > 2 && argv[2][0] == 'j';
  const char *grams[] = {"alpha","beta","gamma","delta","epsilon","zeta","eta","theta"};
  const char *paths[] = {"/","/index.html","/search","/product/","/cart","/checkout","/blog/post-"};
  static char buf[1 << 20];
  setvbuf(stdout, buf, _IOFBF, sizeof buf);
  if (!json) printf("custid,year,gram,count,price,ts,url\n");
  for (long i = 0; i < n; i++) {
    long c = 100000 + rnd() % 900000; int y = 2010 + rnd() % 10; const char *g = grams[rnd() % 8];
    int cnt = 1 + rnd() % 1000; int pc = rnd() % 10000;
    int mo = 1 + rnd() % 12, d = 1 + rnd() % 28, h = rnd() % 24, mi = rnd() % 60, se = rnd() % 60;
    int host = 1 + rnd() % 50; const char *p = paths[rnd() % 7]; int id = 1 + rnd() % 100000;
    if (json)
      printf("{\"custid\":%ld,\"year\":%d,\"gram\":\"%s\",\"count\":%d,\"price\":%d.%02d,\"ts\":\"%d-%02d-%02d %02d:%02d:%02d\",\"url\":\"https://example%d.com%s%d\"}\n",
             c, y, g, cnt, pc / 100, pc % 100, y, mo, d, h, mi, se, host, p, id);
    else
      printf("%ld,%d,%s,%d,%d.%02d,%d-%02d-%02d %02d:%02d:%02d,https://example%d.com%s%d\n",
             c, y, g, cnt, pc / 100, pc % 100, y, mo, d, h, mi, se, host, p, id);
  }
  return 0;
}
