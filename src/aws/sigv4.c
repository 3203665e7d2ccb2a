/* aws/sigv4.c -- AWS Signature Version 4: verification of the
 * Authorization header and of presigned queries, plus a client signer.
 *
 * Why: every API but /_tarn/health requires a SigV4 signature, and the
 * credential scope's service name routes the request. The AWS CLI, boto3
 * and the other SDKs must verify unchanged, so canonicalisation follows
 * what they sign, not only what the documentation says.
 *
 * Invariants:
 *   (1) Only the headers named in SignedHeaders are canonicalised, and
 *       "host" must be among them.
 *   (2) The canonical URI is the raw path for s3 and the normalised path
 *       URI-encoded once more for every other service (botocore, JS SDK).
 *   (3) The canonical query is every parameter (minus X-Amz-Signature when
 *       presigned) URI-encoded, sorted by encoded name then encoded value.
 *   (4) The scope date equals the date part of the request time; the time is
 *       within 15 minutes of now (header auth) or not past X-Amz-Expires and
 *       not more than 15 minutes ahead (presigned).
 *   (5) The signature is compared in constant time, and only after the
 *       access key is known: nothing about a secret leaks through timing.
 *   (6) Nothing here allocates outside the caller's arena.
 *
 * Start reading at sigv4_verify().
 */
#include "sigv4.h"

#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A string built in an arena: grows by doubling, old copies stay behind
 * until the arena goes (request-sized inputs only). */
typedef struct strb {
  arena *a;
  char *p;    /* NUL-terminated once anything was added */
  size_t len;
  size_t cap;
} strb;

static void sb_put(strb *s, const char *p, size_t n)
{
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap > 0 ? s->cap * 2 : 256;
    while (cap < s->len + n + 1)
      cap *= 2;
    char *np = arena_alloc(s->a, cap);
    if (s->len > 0)
      memcpy(np, s->p, s->len);
    s->p = np;
    s->cap = cap;
  }
  if (n > 0)
    memcpy(s->p + s->len, p, n);
  s->len += n;
  s->p[s->len] = '\0';
}

static void sb_puts(strb *s, const char *p)
{
  sb_put(s, p, strlen(p));
}

static char *sb_done(strb *s)
{
  if (s->p == NULL)
    return arena_strdup(s->a, "");
  return s->p;
}

static const char *header_get(const sigv4_request *req, const char *name)
{
  for (size_t i = 0; i < req->nheaders; i++)
    if (str_ieq(req->headers[i].name, name))
      return req->headers[i].value;
  return NULL;
}

static const char *query_get(const sigv4_request *req, const char *name)
{
  for (size_t i = 0; i < req->nquery; i++)
    if (strcmp(req->query[i].name, name) == 0)
      return req->query[i].value;
  return NULL;
}

static bool is_s3(const char *service)
{
  return strcmp(service, "s3") == 0;
}

/* Removes dot segments and empty segments, keeping a leading and a trailing
 * slash (botocore's remove_dot_segments). */
static char *path_normalise(const char *path, arena *a)
{
  size_t n = strlen(path);
  if (n == 0)
    return arena_strdup(a, "/");
  /* segment start offsets into a copy, popped on ".." */
  char *copy = arena_strdup(a, path);
  size_t *starts = arena_alloc(a, (n / 2 + 2) * sizeof *starts);
  size_t *lens = arena_alloc(a, (n / 2 + 2) * sizeof *lens);
  size_t nseg = 0;
  size_t i = 0;
  while (i <= n) {
    size_t j = i;
    while (j < n && copy[j] != '/')
      j++;
    size_t len = j - i;
    if (len == 2 && copy[i] == '.' && copy[i + 1] == '.') {
      if (nseg > 0)
        nseg--;
    } else if (len > 0 && !(len == 1 && copy[i] == '.')) {
      starts[nseg] = i;
      lens[nseg] = len;
      nseg++;
    }
    i = j + 1;
  }
  strb out = {.a = a};
  if (path[0] == '/')
    sb_put(&out, "/", 1);
  for (size_t k = 0; k < nseg; k++) {
    if (k > 0)
      sb_put(&out, "/", 1);
    sb_put(&out, copy + starts[k], lens[k]);
  }
  if (path[n - 1] == '/' && nseg > 0)
    sb_put(&out, "/", 1);
  return sb_done(&out);
}

static char *canonical_uri(const char *raw_path, const char *service, arena *a)
{
  const char *path = raw_path != NULL ? raw_path : "";
  if (is_s3(service))
    return arena_strdup(a, path[0] != '\0' ? path : "/");
  char *norm = path_normalise(path, a);
  return uri_encode(a, norm, strlen(norm), true);
}

typedef struct qpair {
  const char *name;  /* encoded */
  const char *value; /* encoded */
} qpair;

static int qpair_cmp(const void *x, const void *y)
{
  const qpair *p = x;
  const qpair *q = y;
  int c = strcmp(p->name, q->name);
  return c != 0 ? c : strcmp(p->value, q->value);
}

static char *canonical_query(const sigv4_request *req, bool presigned, arena *a)
{
  qpair *pairs = arena_alloc(a, (req->nquery + 1) * sizeof *pairs);
  size_t n = 0;
  for (size_t i = 0; i < req->nquery; i++) {
    const char *name = req->query[i].name;
    const char *value = req->query[i].value != NULL ? req->query[i].value : "";
    if (presigned && strcmp(name, "X-Amz-Signature") == 0)
      continue;
    pairs[n].name = uri_encode(a, name, strlen(name), false);
    pairs[n].value = uri_encode(a, value, strlen(value), false);
    n++;
  }
  if (n > 1)
    qsort(pairs, n, sizeof *pairs, qpair_cmp);
  strb out = {.a = a};
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      sb_put(&out, "&", 1);
    sb_puts(&out, pairs[i].name);
    sb_put(&out, "=", 1);
    sb_puts(&out, pairs[i].value);
  }
  return sb_done(&out);
}

/* "name:v1,v2\n" for each name of the ';'-separated list, in list order. */
static void canonical_headers(strb *out, const sigv4_request *req, const char *signed_headers)
{
  const char *p = signed_headers;
  while (*p != '\0') {
    const char *end = strchr(p, ';');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    char *name = arena_strndup(out->a, p, len);
    for (size_t k = 0; k < len; k++)
      if (name[k] >= 'A' && name[k] <= 'Z')
        name[k] = (char)(name[k] - 'A' + 'a');
    sb_puts(out, name);
    sb_put(out, ":", 1);
    bool first = true;
    for (size_t i = 0; i < req->nheaders; i++) {
      if (!str_ieq(req->headers[i].name, name))
        continue;
      if (!first)
        sb_put(out, ",", 1);
      const char *v = req->headers[i].value != NULL ? req->headers[i].value : "";
      sb_puts(out, str_trim_collapse(out->a, v));
      first = false;
    }
    sb_put(out, "\n", 1);
    if (end == NULL)
      break;
    p = end + 1;
  }
}

char *sigv4_canonical_request(const sigv4_request *req, const char *service,
                              const char *signed_headers, const char *payload_hash,
                              bool presigned, arena *a)
{
  strb out = {.a = a};
  sb_puts(&out, req->method);
  sb_put(&out, "\n", 1);
  sb_puts(&out, canonical_uri(req->raw_path, service, a));
  sb_put(&out, "\n", 1);
  sb_puts(&out, canonical_query(req, presigned, a));
  sb_put(&out, "\n", 1);
  canonical_headers(&out, req, signed_headers);
  sb_put(&out, "\n", 1);
  sb_puts(&out, signed_headers);
  sb_put(&out, "\n", 1);
  sb_puts(&out, payload_hash);
  return sb_done(&out);
}

char *sigv4_string_to_sign(const char *amz_date, const char *scope,
                           const char *canonical_request, arena *a)
{
  uint8_t digest[SHA256_LEN];
  char hex[2 * SHA256_LEN + 1];
  sha256(canonical_request, strlen(canonical_request), digest);
  hex_encode(digest, sizeof digest, hex);
  return arena_sprintf(a, ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hex);
}

void sigv4_signing_key(const char *secret, const char *date, const char *region,
                       const char *service, uint8_t out[SHA256_LEN])
{
  size_t slen = strlen(secret);
  char *k = xmalloc(slen + 5);
  memcpy(k, "AWS4", 4);
  memcpy(k + 4, secret, slen + 1);
  uint8_t kdate[SHA256_LEN];
  uint8_t kregion[SHA256_LEN];
  uint8_t kservice[SHA256_LEN];
  hmac_sha256(k, slen + 4, date, strlen(date), kdate);
  hmac_sha256(kdate, sizeof kdate, region, strlen(region), kregion);
  hmac_sha256(kregion, sizeof kregion, service, strlen(service), kservice);
  hmac_sha256(kservice, sizeof kservice, TERMINATOR, strlen(TERMINATOR), out);
  memset(k, 0, slen + 4);
  free(k);
}

/* The hex signature of a string to sign. */
static void sign_hex(const uint8_t key[SHA256_LEN], const char *sts, char out[2 * SHA256_LEN + 1])
{
  uint8_t mac[SHA256_LEN];
  hmac_sha256(key, SHA256_LEN, sts, strlen(sts), mac);
  hex_encode(mac, sizeof mac, out);
}

/* The parts of a credential, "AK/yyyymmdd/region/service/aws4_request". */
typedef struct credential {
  char access_key[129];
  char date[9];
  char region[64];
  char service[32];
} credential;

static bool copy_part(char *dst, size_t cap, const char *p, size_t n)
{
  if (n == 0 || n >= cap)
    return false;
  memcpy(dst, p, n);
  dst[n] = '\0';
  return true;
}

/* Splits from the right, so the access key is all that precedes the date. */
static bool credential_parse(const char *s, size_t n, credential *c)
{
  size_t cut[4];
  size_t end = n;
  for (int k = 0; k < 4; k++) {
    size_t i = end;
    while (i > 0 && s[i - 1] != '/')
      i--;
    if (i == 0)
      return false;
    cut[k] = i - 1; /* index of the slash before part 4-k */
    end = i - 1;
  }
  /* parts: [0,cut3) ak, (cut3,cut2) date, (cut2,cut1) region, (cut1,cut0) service, (cut0,n) term */
  if (n - cut[0] - 1 != strlen(TERMINATOR) || memcmp(s + cut[0] + 1, TERMINATOR, strlen(TERMINATOR)) != 0)
    return false;
  if (!copy_part(c->access_key, sizeof c->access_key, s, cut[3])
      || !copy_part(c->date, sizeof c->date, s + cut[3] + 1, cut[2] - cut[3] - 1)
      || !copy_part(c->region, sizeof c->region, s + cut[2] + 1, cut[1] - cut[2] - 1)
      || !copy_part(c->service, sizeof c->service, s + cut[1] + 1, cut[0] - cut[1] - 1))
    return false;
  if (strlen(c->date) != 8)
    return false;
  for (int i = 0; i < 8; i++)
    if (c->date[i] < '0' || c->date[i] > '9')
      return false;
  return true;
}

/* The three components of an Authorization header, pointing into it. */
typedef struct auth_fields {
  const char *credential;
  size_t credential_len;
  const char *signed_headers;
  size_t signed_headers_len;
  const char *signature;
  size_t signature_len;
} auth_fields;

static bool is_space(char c)
{
  return c == ' ' || c == '\t';
}

static int auth_header_parse(const char *v, auth_fields *f, err *e)
{
  memset(f, 0, sizeof *f);
  size_t alen = strlen(ALGORITHM);
  if (strncmp(v, ALGORITHM, alen) != 0 || !is_space(v[alen])) {
    size_t w = strcspn(v, " \t");
    return err_set(e, ERR_AUTH_MALFORMED, "unsupported authorization type '%.*s'",
                   (int)(w > 64 ? 64 : w), v);
  }
  const char *p = v + alen;
  while (*p != '\0') {
    while (is_space(*p) || *p == ',')
      p++;
    if (*p == '\0')
      break;
    const char *eq = strchr(p, '=');
    const char *comma = strchr(p, ',');
    if (eq == NULL || (comma != NULL && comma < eq))
      return err_set(e, ERR_AUTH_MALFORMED, "malformed authorization header component '%.*s'",
                     (int)strcspn(p, ","), p);
    size_t klen = (size_t)(eq - p);
    while (klen > 0 && is_space(p[klen - 1]))
      klen--;
    const char *val = eq + 1;
    while (is_space(*val))
      val++;
    size_t vlen = comma != NULL ? (size_t)(comma - val) : strlen(val);
    while (vlen > 0 && is_space(val[vlen - 1]))
      vlen--;
    const char **slot;
    size_t *slot_len;
    if (klen == 10 && memcmp(p, "Credential", 10) == 0) {
      slot = &f->credential;
      slot_len = &f->credential_len;
    } else if (klen == 13 && memcmp(p, "SignedHeaders", 13) == 0) {
      slot = &f->signed_headers;
      slot_len = &f->signed_headers_len;
    } else if (klen == 9 && memcmp(p, "Signature", 9) == 0) {
      slot = &f->signature;
      slot_len = &f->signature_len;
    } else {
      return err_set(e, ERR_AUTH_MALFORMED, "unknown authorization header component '%.*s'",
                     (int)klen, p);
    }
    if (*slot != NULL)
      return err_set(e, ERR_AUTH_MALFORMED, "authorization header repeats '%.*s'", (int)klen, p);
    *slot = val;
    *slot_len = vlen;
    p = comma != NULL ? comma + 1 : val + strlen(val);
  }
  if (f->credential == NULL || f->credential_len == 0)
    return err_set(e, ERR_AUTH_MALFORMED, "authorization header is missing 'Credential'");
  if (f->signed_headers == NULL || f->signed_headers_len == 0)
    return err_set(e, ERR_AUTH_MALFORMED, "authorization header is missing 'SignedHeaders'");
  if (f->signature == NULL || f->signature_len == 0)
    return err_set(e, ERR_AUTH_MALFORMED, "authorization header is missing 'Signature'");
  return 0;
}

/* SignedHeaders: non-empty names separated by ';', "host" among them. */
static int signed_headers_check(const char *sh, err *e)
{
  bool host = false;
  const char *p = sh;
  for (;;) {
    size_t len = strcspn(p, ";");
    if (len == 0)
      return err_set(e, ERR_AUTH_MALFORMED, "malformed signed headers '%s'", sh);
    for (size_t i = 0; i < len; i++) {
      unsigned char c = (unsigned char)p[i];
      if (c <= ' ' || c >= 0x7f || c == ':' || c == ',')
        return err_set(e, ERR_AUTH_MALFORMED, "malformed signed headers '%s'", sh);
    }
    if (len == 4 && strncasecmp(p, "host", 4) == 0)
      host = true;
    if (p[len] == '\0')
      break;
    p += len + 1;
  }
  if (!host)
    return err_set(e, ERR_AUTH_MALFORMED, "signed headers '%s' do not include 'host'", sh);
  return 0;
}

static bool is_hex64(const char *s)
{
  if (strlen(s) != 64)
    return false;
  for (int i = 0; i < 64; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
      return false;
  }
  return true;
}

static int content_sha256_check(const char *v, err *e)
{
  if (is_hex64(v) || strcmp(v, SIGV4_UNSIGNED_PAYLOAD) == 0
      || strcmp(v, SIGV4_STREAMING_SIGNED) == 0 || strcmp(v, SIGV4_STREAMING_SIGNED_TRAILER) == 0
      || strcmp(v, SIGV4_STREAMING_UNSIGNED_TRAILER) == 0)
    return 0;
  return err_set(e, ERR_INVALID, "invalid 'x-amz-content-sha256' value '%.80s'", v);
}

/* The payload hash the client signed; see sigv4_result.payload_hash. */
static int payload_hash_pick(const sigv4_request *req, const char *service, bool presigned,
                             const char **out, err *e)
{
  const char *sent = header_get(req, "x-amz-content-sha256");
  if (sent != NULL) {
    int rc = content_sha256_check(sent, e);
    if (rc != 0)
      return rc;
    *out = sent;
    return 0;
  }
  if (is_s3(service)) {
    if (presigned) {
      *out = SIGV4_UNSIGNED_PAYLOAD;
      return 0;
    }
    /* S3 itself requires the header; a caller that hashed the body itself
       (tarn's own endpoints, signed with the s3 scope) may do without. */
    if (req->body_sha256_hex == NULL)
      return err_set(e, ERR_INVALID_REQUEST, "missing required header 'x-amz-content-sha256'");
  }
  *out = req->body_sha256_hex != NULL ? req->body_sha256_hex : EMPTY_SHA256;
  return 0;
}

/* What the two auth forms have in common once parsed. */
typedef struct auth_claim {
  credential cred;
  const char *signed_headers; /* arena copy */
  const char *signature;      /* arena copy */
  char amz_date[17];
  time_t when;
  long expires;               /* presigned only */
  bool presigned;
} auth_claim;

static int claim_from_header(const sigv4_request *req, const char *auth, arena *a,
                             auth_claim *c, err *e)
{
  auth_fields f;
  int rc = auth_header_parse(auth, &f, e);
  if (rc != 0)
    return rc;
  if (!credential_parse(f.credential, f.credential_len, &c->cred))
    return err_set(e, ERR_AUTH_MALFORMED,
                   "malformed credential '%.*s': expected 'key/yyyymmdd/region/service/aws4_request'",
                   (int)(f.credential_len > 200 ? 200 : f.credential_len), f.credential);
  c->signed_headers = arena_strndup(a, f.signed_headers, f.signed_headers_len);
  c->signature = arena_strndup(a, f.signature, f.signature_len);

  const char *xdate = header_get(req, "x-amz-date");
  if (xdate != NULL) {
    if (!time_parse_iso8601_basic(xdate, &c->when))
      return err_set(e, ERR_AUTH_MALFORMED, "malformed 'x-amz-date' value '%.40s'", xdate);
    memcpy(c->amz_date, xdate, 17);
    return 0;
  }
  const char *date = header_get(req, "date");
  if (date == NULL)
    return err_set(e, ERR_AUTH_MALFORMED, "request has neither an 'x-amz-date' nor a 'date' header");
  if (!time_parse_http(date, &c->when))
    return err_set(e, ERR_AUTH_MALFORMED, "malformed 'date' value '%.40s'", date);
  time_format_iso8601_basic(c->when, c->amz_date);
  return 0;
}

static int claim_from_query(const sigv4_request *req, arena *a, auth_claim *c, err *e)
{
  static const char *const required[] = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                                         "X-Amz-Expires", "X-Amz-SignedHeaders",
                                         "X-Amz-Signature"};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
    if (query_get(req, required[i]) == NULL)
      return err_set(e, ERR_AUTH_MALFORMED, "presigned query is missing '%s'", required[i]);
  const char *algo = query_get(req, "X-Amz-Algorithm");
  if (strcmp(algo, ALGORITHM) != 0)
    return err_set(e, ERR_AUTH_MALFORMED, "unsupported 'X-Amz-Algorithm' value '%.40s'", algo);
  const char *cred = query_get(req, "X-Amz-Credential");
  if (!credential_parse(cred, strlen(cred), &c->cred))
    return err_set(e, ERR_AUTH_MALFORMED,
                   "malformed credential '%.200s': expected 'key/yyyymmdd/region/service/aws4_request'",
                   cred);
  const char *date = query_get(req, "X-Amz-Date");
  if (!time_parse_iso8601_basic(date, &c->when))
    return err_set(e, ERR_AUTH_MALFORMED, "malformed 'X-Amz-Date' value '%.40s'", date);
  memcpy(c->amz_date, date, 17);

  const char *exp = query_get(req, "X-Amz-Expires");
  size_t elen = strlen(exp);
  bool digits = elen > 0 && elen <= 7;
  for (size_t i = 0; i < elen && digits; i++)
    digits = exp[i] >= '0' && exp[i] <= '9';
  c->expires = digits ? strtol(exp, NULL, 10) : 0;
  if (!digits || c->expires < 1 || c->expires > SIGV4_MAX_EXPIRES)
    return err_set(e, ERR_AUTH_MALFORMED,
                   "'X-Amz-Expires' value '%.40s' is not a number of seconds in 1..604800", exp);
  c->signed_headers = arena_strdup(a, query_get(req, "X-Amz-SignedHeaders"));
  c->signature = arena_strdup(a, query_get(req, "X-Amz-Signature"));
  c->presigned = true;
  return 0;
}

static int time_check(const auth_claim *c, time_t now, err *e)
{
  char server[17];
  time_format_iso8601_basic(now, server);
  if (c->presigned) {
    if ((int64_t)c->when - (int64_t)now > SIGV4_MAX_SKEW_SECONDS)
      return err_set(e, ERR_TIME_SKEWED,
                     "request time '%s' is more than 15 minutes ahead of the server time '%s'",
                     c->amz_date, server);
    if ((int64_t)now > (int64_t)c->when + c->expires)
      return err_set(e, ERR_EXPIRED, "request has expired");
    return 0;
  }
  int64_t d = (int64_t)now - (int64_t)c->when;
  if (d > SIGV4_MAX_SKEW_SECONDS || d < -SIGV4_MAX_SKEW_SECONDS)
    return err_set(e, ERR_TIME_SKEWED,
                   "request time '%s' is more than 15 minutes away from the server time '%s'",
                   c->amz_date, server);
  return 0;
}

int sigv4_verify(const sigv4_request *req, sigv4_secret_fn lookup, void *lookup_ctx,
                 time_t now, arena *a, sigv4_result *out, err *e)
{
  memset(out, 0, sizeof *out);
  const char *auth = header_get(req, "authorization");
  bool query = query_get(req, "X-Amz-Signature") != NULL
               || query_get(req, "X-Amz-Credential") != NULL
               || query_get(req, "X-Amz-Algorithm") != NULL;
  if (auth == NULL && !query)
    return err_set(e, ERR_DENIED, "request is not signed");
  if (auth != NULL && query)
    return err_set(e, ERR_INVALID,
                   "request has both an 'authorization' header and a presigned query");

  auth_claim c;
  memset(&c, 0, sizeof c);
  int rc = auth != NULL ? claim_from_header(req, auth, a, &c, e) : claim_from_query(req, a, &c, e);
  if (rc != 0)
    return rc;
  if (memcmp(c.cred.date, c.amz_date, 8) != 0)
    return err_set(e, ERR_AUTH_MALFORMED,
                   "credential date '%s' is not the date of the request time '%s'", c.cred.date,
                   c.amz_date);
  rc = signed_headers_check(c.signed_headers, e);
  if (rc != 0)
    return rc;
  uint8_t claimed[SHA256_LEN];
  if (!hex_decode(c.signature, strlen(c.signature), claimed, sizeof claimed))
    return err_set(e, ERR_AUTH_MALFORMED, "malformed signature '%.80s'", c.signature);

  memcpy(out->access_key, c.cred.access_key, sizeof out->access_key);
  memcpy(out->date, c.cred.date, sizeof out->date);
  memcpy(out->region, c.cred.region, sizeof out->region);
  memcpy(out->service, c.cred.service, sizeof out->service);
  memcpy(out->amz_date, c.amz_date, sizeof out->amz_date);
  snprintf(out->scope, sizeof out->scope, "%s/%s/%s/" TERMINATOR, c.cred.date, c.cred.region,
           c.cred.service);
  out->presigned = c.presigned;

  rc = time_check(&c, now, e);
  if (rc != 0)
    return rc;
  rc = payload_hash_pick(req, c.cred.service, c.presigned, &out->payload_hash, e);
  if (rc != 0)
    return rc;
  out->payload_hash = arena_strdup(a, out->payload_hash);

  const char *secret = lookup(lookup_ctx, c.cred.access_key);
  if (secret == NULL)
    return err_set(e, ERR_UNKNOWN_ACCESS_KEY, "unknown access key '%s'", c.cred.access_key);
  sigv4_signing_key(secret, c.cred.date, c.cred.region, c.cred.service, out->signing_key);

  char *creq = sigv4_canonical_request(req, c.cred.service, c.signed_headers, out->payload_hash,
                                       c.presigned, a);
  char *sts = sigv4_string_to_sign(c.amz_date, out->scope, creq, a);
  uint8_t mac[SHA256_LEN];
  hmac_sha256(out->signing_key, SHA256_LEN, sts, strlen(sts), mac);
  if (!mem_equal_ct(mac, claimed, sizeof mac)) {
    memset(out->signing_key, 0, sizeof out->signing_key);
    return err_set(e, ERR_SIGNATURE, "signature does not match for access key '%s'",
                   c.cred.access_key);
  }
  hex_encode(mac, sizeof mac, out->signature);
  return 0;
}

bool sigv4_scope_service(const sigv4_request *req, char service[32])
{
  credential c;
  const char *auth = header_get(req, "authorization");
  if (auth != NULL) {
    auth_fields f;
    if (auth_header_parse(auth, &f, NULL) != 0
        || !credential_parse(f.credential, f.credential_len, &c))
      return false;
  } else {
    const char *cred = query_get(req, "X-Amz-Credential");
    if (cred == NULL || !credential_parse(cred, strlen(cred), &c))
      return false;
  }
  memcpy(service, c.service, sizeof c.service);
  return true;
}

static int name_cmp(const void *x, const void *y)
{
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Every header name of req, lower-case, sorted, each once. */
static char *all_header_names(const sigv4_request *req, arena *a)
{
  char **names = arena_alloc(a, (req->nheaders + 1) * sizeof *names);
  for (size_t i = 0; i < req->nheaders; i++) {
    names[i] = arena_strdup(a, req->headers[i].name);
    for (char *p = names[i]; *p != '\0'; p++)
      if (*p >= 'A' && *p <= 'Z')
        *p = (char)(*p - 'A' + 'a');
  }
  if (req->nheaders > 1)
    qsort(names, req->nheaders, sizeof *names, name_cmp);
  strb out = {.a = a};
  for (size_t i = 0; i < req->nheaders; i++) {
    if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
      continue;
    if (out.len > 0)
      sb_put(&out, ";", 1);
    sb_puts(&out, names[i]);
  }
  return sb_done(&out);
}

char *sigv4_sign_header(const sigv4_request *req, const char *access_key, const char *secret,
                        const char *region, const char *service, const char *amz_date,
                        const char *signed_headers, const char *payload_hash, arena *a)
{
  char date[9];
  snprintf(date, sizeof date, "%.8s", amz_date);
  char *scope = arena_sprintf(a, "%s/%s/%s/" TERMINATOR, date, region, service);
  const char *sh = signed_headers != NULL ? signed_headers : all_header_names(req, a);
  const char *ph = payload_hash != NULL ? payload_hash : EMPTY_SHA256;
  char *creq = sigv4_canonical_request(req, service, sh, ph, false, a);
  char *sts = sigv4_string_to_sign(amz_date, scope, creq, a);
  uint8_t key[SHA256_LEN];
  sigv4_signing_key(secret, date, region, service, key);
  char sig[2 * SHA256_LEN + 1];
  sign_hex(key, sts, sig);
  return arena_sprintf(a, ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                       access_key, scope, sh, sig);
}
