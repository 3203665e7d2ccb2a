/* api/console.c -- serves the web console (console/console.h) at
 * /_tarn/console/.
 *
 * Why: a console that ships inside the binary needs no other server, no
 * build step and no files to keep in sync; this file is the only HTTP the
 * console adds, and it serves static bytes only.
 *
 * Invariants:
 *   (1) Only GET and HEAD of embedded files are answered; everything under
 *       /_tarn/console is claimed here so no other service (native's signed
 *       endpoints) sees these paths.
 *   (2) Nothing here reads data: the page does its work through signed AWS
 *       API calls, so an unsigned visitor sees the sign-in form and nothing
 *       else.
 *   (3) Pages carry a strict Content-Security-Policy (scripts and styles from
 *       this origin only, no inline script, no framing) so the keys the page
 *       holds in sessionStorage are not reachable by injected markup.
 *
 * Start reading at console_prepare().
 */
#include "api/console.h"

#include "base/mem.h"
#include "console/console.h"

#include <stdlib.h>
#include <string.h>

#define CONSOLE_ROOT "/_tarn/console"

static bool console_claim(void *ctx, const http_req *r)
{
  const char *p = r->raw_path;
  size_t n = strlen(CONSOLE_ROOT);
  return strncmp(p, CONSOLE_ROOT, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static int console_prepare(void *ctx, http_req *r, err *e)
{
  r->op = "Console";
  if (!console_claim(ctx, r)) /* signed for the scope "console" elsewhere */
    return err_set(e, ERR_NOT_FOUND, "no console file at '%s'", r->raw_path);
  if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
    return err_set(e, ERR_METHOD_NOT_ALLOWED, "'%s' answers GET and HEAD only", CONSOLE_ROOT);
  return 0;
}

static void console_handle(void *ctx, http_req *r)
{
  const char *rest = r->raw_path + strlen(CONSOLE_ROOT);
  if (rest[0] == '\0') {
    /* relative links need the trailing slash */
    http_resp_status(r, 301);
    http_resp_header(r, "Location", CONSOLE_ROOT "/");
    return;
  }
  const char *name = rest + 1;
  if (name[0] == '\0')
    name = "index.html";
  const console_asset *a = console_asset_find(name);
  if (a == NULL) {
    http_resp_status(r, 404);
    http_resp_header(r, "Content-Type", "text/plain; charset=utf-8");
    buf_puts(&r->resp_body, "no such console file\n");
    return;
  }
  http_resp_header(r, "Content-Type", a->content_type);
  http_resp_header(r, "Cache-Control", "no-cache");
  http_resp_header(r, "X-Content-Type-Options", "nosniff");
  http_resp_header(r, "Referrer-Policy", "no-referrer");
  http_resp_header(r, "X-Frame-Options", "DENY");
  http_resp_header(r, "Content-Security-Policy",
                   "default-src 'self'; script-src 'self'; style-src 'self'; "
                   "img-src 'self' data: blob:; connect-src 'self'; "
                   "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  buf_append(&r->resp_body, a->data, a->len);
}

static void console_error(void *ctx, http_req *r, const err *e)
{
  http_resp_header(r, "Content-Type", "text/plain; charset=utf-8");
  buf_printf(&r->resp_body, "%s: %s\n", err_aws_code(e->code), e->msg);
}

http_service *console_service_new(void)
{
  http_service *svc = xcalloc(1, sizeof *svc);
  *svc = (http_service){
      .name = "console",
      .prepare = console_prepare,
      .handle = console_handle,
      .error = console_error,
      .claim = console_claim,
  };
  return svc;
}

http_service *console_service_free(http_service *svc)
{
  free(svc);
  return NULL;
}
