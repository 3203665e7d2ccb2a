/* bench/fn/bootstrap.c -- the `provided` runtime of the function benchmarks:
 * a Lambda Runtime API client over one raw keep-alive socket, statically
 * linked, so a cold start measures tarn and not the runtime.
 *
 * Loop: GET /2018-06-01/runtime/invocation/next, then POST
 * .../invocation/<id>/response with {"ok":1}. Handlers ($_HANDLER):
 *   echo   answer only (the default);
 *   stamp  first write "EVT <wall-clock ns> <key>" to stderr (the function's
 *          log), <key> being the first "key" of an S3 event (bench/queue's
 *          event latency reads it back).
 * Exits 0 when the Runtime API closes the connection (the floor in
 * fnload.c runs it outside any sandbox that way), 1 on any other error.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (1u << 20)

static char buf[BUF_SIZE];   /* one response: headers and body */
static size_t len;            /* bytes held in buf */

static void write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k <= 0)
      exit(1);
    p += k;
    n -= (size_t)k;
  }
}

/* Reads one response whose body has a Content-Length; returns the body
 * offset in buf and sets *body_len; the response is consumed on the next
 * call (no pipelining, so nothing follows it). */
static size_t response_read(int fd, size_t *body_len)
{
  len = 0;
  char *hend = NULL;
  for (;;) {
    if (len > 0 && (hend = memmem(buf, len, "\r\n\r\n", 4)) != NULL)
      break;
    ssize_t k = read(fd, buf + len, BUF_SIZE - 1 - len);
    if (k == 0)
      exit(0); /* the Runtime API went away */
    if (k < 0 || len + (size_t)k >= BUF_SIZE - 1)
      exit(1);
    len += (size_t)k;
  }
  size_t off = (size_t)(hend + 4 - buf);
  buf[off - 1] = '\0';
  size_t clen = 0;
  for (char *h = strchr(buf, '\n'); h != NULL; h = strchr(h + 1, '\n'))
    if (strncasecmp(h + 1, "content-length:", 15) == 0)
      clen = strtoul(h + 16, NULL, 10);
  if (off + clen >= BUF_SIZE)
    exit(1);
  while (len < off + clen) {
    ssize_t k = read(fd, buf + len, off + clen - len);
    if (k <= 0)
      exit(1);
    len += (size_t)k;
  }
  buf[off + clen] = '\0';
  *body_len = clen;
  return off;
}

int main(void)
{
  const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
  const char *handler = getenv("_HANDLER");
  int stamp = handler != NULL && strcmp(handler, "stamp") == 0;
  if (api == NULL)
    return 1;
  char host[64];
  snprintf(host, sizeof host, "%s", api);
  char *colon = strchr(host, ':');
  if (colon == NULL)
    return 1;
  *colon = '\0';
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return 1;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
    return 1;

  static const char next[] = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n"
                              "Host: rt\r\n\r\n";
  static const char answer[] = "{\"ok\":1}";
  for (;;) {
    write_all(fd, next, sizeof next - 1);
    size_t blen;
    size_t body = response_read(fd, &blen);
    char id[128] = "";
    for (char *h = strchr(buf, '\n'); h != NULL; h = strchr(h + 1, '\n'))
      if (strncasecmp(h + 1, "lambda-runtime-aws-request-id:", 30) == 0) {
        const char *v = h + 31;
        while (*v == ' ')
          v++;
        size_t n = strcspn(v, "\r\n");
        if (n >= sizeof id)
          return 1;
        memcpy(id, v, n);
        id[n] = '\0';
      }
    if (id[0] == '\0')
      return 1;
    if (stamp) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      const char *k = strstr(buf + body, "\"key\":");
      char key[256] = "-";
      if (k != NULL && (k = strchr(k + 6, '"')) != NULL) {
        size_t n = strcspn(k + 1, "\"");
        if (n < sizeof key) {
          memcpy(key, k + 1, n);
          key[n] = '\0';
        }
      }
      char line[400];
      int n = snprintf(line, sizeof line, "EVT %lld %s\n",
                       (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, key);
      write_all(2, line, (size_t)n);
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\n"
                     "Host: rt\r\nContent-Length: %zu\r\n\r\n%s",
                     id, sizeof answer - 1, answer);
    write_all(fd, req, (size_t)n);
    response_read(fd, &blen);
  }
}
