/* cli/client.c -- signed requests from tarn's commands to a tarn server.
 *
 * Why: every client command talks to the server through the same APIs the
 * AWS tools use, so it signs with SigV4 like they do (x-amz-content-sha256
 * with the body's digest, so the server checks the body too).
 *
 * Invariants:
 *   (1) The headers that are signed are exactly the headers that are sent:
 *       host, x-amz-date, x-amz-content-sha256 and the caller's.
 */
#include "cli/client.h"

#include "base/arena.h"
#include "base/hash.h"
#include "aws/sigv4.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_target_init(cli_target *t, const char *dir, err *e)
{
  memset(t, 0, sizeof *t);
  const char *ep = getenv("TARN_ENDPOINT");
  if (ep == NULL || *ep == '\0')
    ep = "http://127.0.0.1:9000";
  if (snprintf(t->endpoint, sizeof t->endpoint, "%s", ep) >= (int)sizeof t->endpoint)
    return err_set(e, ERR_INVALID, "TARN_ENDPOINT '%s' is too long", ep);
  size_t n = strlen(t->endpoint);
  while (n > 0 && t->endpoint[n - 1] == '/')
    t->endpoint[--n] = '\0';
  t->region = "us-east-1";
  return cli_credentials_client(dir, &t->keys, e);
}

int cli_sink_body(void *sink, const char *p, size_t n)
{
  cli_sink *s = sink;
  if (buf_append(s->b, p, n) != 0) {
    s->over = true;
    return 1;
  }
  return 0;
}

typedef struct transfer {
  const cli_call *call;
  int stopped;
  double started;    /* monotonic seconds at the start */
  double last_wait;  /* when on_wait was last called */
} transfer;

static size_t on_header(char *p, size_t size, size_t nmemb, void *userdata)
{
  transfer *tr = userdata;
  size_t n = size * nmemb;
  size_t len = n;
  while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'))
    len--;
  if (tr->call->on_header != NULL && len > 0)
    tr->call->on_header(tr->call->ctx, p, len);
  return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
  transfer *tr = userdata;
  double now = (double)time_mono_ms() / 1000.0;
  if (now - tr->last_wait >= 1.0) {
    tr->last_wait = now;
    tr->call->on_wait(tr->call->ctx, now - tr->started);
  }
  return 0;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *userdata)
{
  transfer *tr = userdata;
  size_t n = size * nmemb;
  if (tr->call->on_body != NULL && tr->call->on_body(tr->call->ctx, p, n) != 0) {
    tr->stopped = 1;
    return 0;
  }
  return n;
}

int cli_send(const cli_target *t, const cli_call *c, long *status, err *e)
{
  *status = 0;
  const char *hostport = strstr(t->endpoint, "://");
  hostport = hostport ? hostport + 3 : t->endpoint;
  arena *a = arena_new();
  char amz_date[17];
  time_format_iso8601_basic(time(NULL), amz_date);
  uint8_t digest[SHA256_LEN];
  char digest_hex[2 * SHA256_LEN + 1];
  sha256(c->body ? c->body : "", c->body_len, digest);
  hex_encode(digest, sizeof digest, digest_hex);

  size_t nh = c->nheaders + 3;
  str_pair *headers = arena_alloc(a, nh * sizeof *headers);
  headers[0] = (str_pair){"host", hostport};
  headers[1] = (str_pair){"x-amz-date", amz_date};
  headers[2] = (str_pair){"x-amz-content-sha256", digest_hex};
  for (size_t i = 0; i < c->nheaders; i++) {
    char *name = arena_strdup(a, c->headers[i].name);
    for (char *p = name; *p; p++)
      if (*p >= 'A' && *p <= 'Z')
        *p = (char)(*p - 'A' + 'a');
    headers[3 + i] = (str_pair){name, c->headers[i].value};
  }
  /* The signer wants the path and the decoded query apart. */
  const char *q = strchr(c->path, '?');
  char *raw_path = arena_strndup(a, c->path, q ? (size_t)(q - c->path) : strlen(c->path));
  str_pair *query = NULL;
  size_t nquery = 0;
  if (q != NULL) {
    size_t cap = 1;
    for (const char *s = q; *s; s++)
      cap += *s == '&';
    query = arena_alloc(a, cap * sizeof *query);
    char *rest = arena_strdup(a, q + 1);
    for (char *tok = strtok(rest, "&"); tok != NULL; tok = strtok(NULL, "&")) {
      char *eq = strchr(tok, '=');
      size_t dn;
      if (eq != NULL)
        *eq = '\0';
      query[nquery].name = percent_decode(a, tok, strlen(tok), &dn);
      query[nquery].value = eq ? percent_decode(a, eq + 1, strlen(eq + 1), &dn) : "";
      if (query[nquery].name == NULL || query[nquery].value == NULL) {
        arena_free(a);
        return err_set(e, ERR_INVALID, "malformed query in '%s'", c->path);
      }
      nquery++;
    }
  }
  sigv4_request sr = {.method = c->method, .raw_path = raw_path, .query = query, .nquery = nquery,
                      .headers = headers, .nheaders = nh};
  char *authz = sigv4_sign_header(&sr, t->keys.access_key, t->keys.secret_key, t->region,
                                  c->service, amz_date, NULL, digest_hex, a);

  CURL *curl = curl_easy_init();
  if (curl == NULL) {
    arena_free(a);
    return err_set(e, ERR_INTERNAL, "cannot start an HTTP client");
  }
  struct curl_slist *list = NULL;
  for (size_t i = 1; i < nh; i++)
    list = curl_slist_append(list, arena_sprintf(a, "%s: %s", headers[i].name, headers[i].value));
  list = curl_slist_append(list, arena_sprintf(a, "Authorization: %s", authz));
  list = curl_slist_append(list, "Expect:");
  char *url = arena_sprintf(a, "%s%s", t->endpoint, c->path);
  transfer tr = {.call = c};
  tr.started = tr.last_wait = (double)time_mono_ms() / 1000.0;
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c->method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &tr);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (c->on_header != NULL) {
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &tr);
  }
  if (c->on_wait != NULL) {
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &tr);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  }
  if (strcmp(c->method, "HEAD") == 0)
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (c->body != NULL || strcmp(c->method, "POST") == 0 || strcmp(c->method, "PUT") == 0) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body ? c->body : "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
  }
  CURLcode rc = curl_easy_perform(curl);
  int result = 0;
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && tr.stopped))
    result = err_set(e, ERR_UNAVAILABLE, "cannot reach tarn at '%s': %s", t->endpoint,
                     curl_easy_strerror(rc));
  else
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  arena_free(a);
  return result;
}
