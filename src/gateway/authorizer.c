/* gateway/authorizer.c -- HTTP API authorizers: JWT (tokens signed by an
 * issuer whose keys are published as a JWKS) and REQUEST (a function that
 * allows or denies), as API Gateway runs them before a route's
 * integration.
 *
 * JWT: the token is the identity source's value (a leading "Bearer " is
 * dropped); its header names the key (kid) and the algorithm (RS256,
 * RS384 or RS512: API Gateway takes RSA keys only); the keys come from
 * <issuer>/.well-known/openid-configuration -> jwks_uri, fetched through
 * base/egress.h (the outbound address policy) and cached. A token passes
 * when its signature verifies, iss is the issuer, aud (or client_id)
 * names one of the audiences, exp is in the future and nbf in the past.
 * The route's authorizationScopes then need one scope of the token's
 * "scope" (space separated) or "scp" claim: else 403.
 *
 * Invariants:
 *   (1) Every failure of the token itself is ERR_UNAUTHORIZED (401
 *       {"message":"Unauthorized"}); a valid token without a required
 *       scope is ERR_DENIED (403 {"message":"Forbidden"}).
 *   (2) The key cache is refreshed at most every JWKS_MIN_REFRESH_MS per
 *       issuer (an unknown kid does not make tarn fetch on every request),
 *       and its entries live JWKS_TTL_MS.
 *   (3) A fetched document is bounded (JWKS_MAX_BYTES), and so is the
 *       cache (JWKS_MAX_ISSUERS; the oldest issuer goes first).
 *
 * Start reading at gateway_jwt_check().
 */
#include "gateway/internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "iam/iam.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define JWKS_TTL_MS (3600 * 1000)
#define JWKS_MIN_REFRESH_MS (30 * 1000)
#define JWKS_MAX_BYTES (256u << 10)
#define JWKS_MAX_ISSUERS 64
#define JWKS_FETCH_TIMEOUT_MS 5000
#define JWT_MAX_BYTES (16u << 10)

struct gateway_jwks {
  const netpolicy *policy;
  pthread_mutex_t mu;
  json_t *issuers;             /* issuer -> {"keys":[...], "at": ms} */
};

gateway_jwks *gateway_jwks_new(const netpolicy *policy)
{
  gateway_jwks *k = xcalloc(1, sizeof *k);
  k->policy = policy;
  pthread_mutex_init(&k->mu, NULL);
  k->issuers = json_object();
  return k;
}

gateway_jwks *gateway_jwks_free(gateway_jwks *k)
{
  if (k == NULL)
    return NULL;
  json_decref(k->issuers);
  pthread_mutex_destroy(&k->mu);
  free(k);
  return NULL;
}

/* ---- fetching keys ---- */

static int fetch_json(const netpolicy *p, const char *url, json_t **out, err *e)
{
  arena *a = arena_new();
  egress_request rq = {.method = "GET", .url = url, .timeout_ms = JWKS_FETCH_TIMEOUT_MS,
                       .max_response = JWKS_MAX_BYTES, .user_agent = "tarn"};
  str_pair accept = {"Accept", "application/json"};
  rq.headers = &accept;
  rq.nheaders = 1;
  egress_response res;
  int rc = egress_fetch(p, &rq, a, &res, e);
  if (rc == 0) {
    if (res.status != 200)
      rc = err_set(e, ERR_UNAVAILABLE, "'%s' answered %ld", url, res.status);
    json_error_t je;
    if (rc == 0 && (*out = json_loadb(res.body.data ? res.body.data : "", res.body.len, 0, &je)) == NULL)
      rc = err_set(e, ERR_UNAVAILABLE, "'%s' is not JSON: %s", url, je.text);
    buf_release(&res.body);
  }
  arena_free(a);
  return rc;
}

/* The issuer's keys (a new reference), fetched when missing, stale or
 * without kid (2). */
static json_t *issuer_keys(gateway_jwks *k, const char *issuer, const char *kid, err *e)
{
  int64_t now = time_mono_ms();
  pthread_mutex_lock(&k->mu);
  json_t *entry = json_object_get(k->issuers, issuer);
  json_t *keys = json_incref(json_object_get(entry, "keys"));
  int64_t at = (int64_t)json_integer_value(json_object_get(entry, "at"));
  pthread_mutex_unlock(&k->mu);
  bool has_kid = false;
  size_t i;
  json_t *key;
  json_array_foreach(keys, i, key)
  {
    const char *kk = json_string_value(json_object_get(key, "kid"));
    has_kid |= kk != NULL && kid != NULL && strcmp(kk, kid) == 0;
  }
  bool fresh = entry != NULL && now - at < JWKS_TTL_MS;
  if ((fresh && has_kid) || (entry != NULL && now - at < JWKS_MIN_REFRESH_MS))
    return keys;
  /* fetch: discovery document, then the key set */
  size_t il = strlen(issuer);
  char *disc = xasprintf("%.*s/.well-known/openid-configuration",
                         (int)(il > 0 && issuer[il - 1] == '/' ? il - 1 : il), issuer);
  json_t *conf = NULL;
  json_t *set = NULL;
  int rc = fetch_json(k->policy, disc, &conf, e);
  free(disc);
  const char *jwks_uri = rc == 0 ? json_string_value(json_object_get(conf, "jwks_uri")) : NULL;
  if (rc == 0 && jwks_uri == NULL)
    rc = err_set(e, ERR_UNAVAILABLE, "the issuer '%s' publishes no jwks_uri", issuer);
  if (rc == 0)
    rc = fetch_json(k->policy, jwks_uri, &set, e);
  if (rc == 0 && !json_is_array(json_object_get(set, "keys")))
    rc = err_set(e, ERR_UNAVAILABLE, "the JWKS of '%s' has no keys", issuer);
  if (rc == 0) {
    json_decref(keys);
    keys = json_incref(json_object_get(set, "keys"));
    pthread_mutex_lock(&k->mu);
    if (json_object_size(k->issuers) >= JWKS_MAX_ISSUERS && json_object_get(k->issuers, issuer) == NULL)
      json_object_clear(k->issuers); /* (3): rare; every issuer is fetched again */
    json_object_set_new(k->issuers, issuer, json_pack("{s:O, s:I}", "keys", keys, "at",
                                                      (json_int_t)now));
    pthread_mutex_unlock(&k->mu);
  } else if (entry != NULL) {
    /* keep serving what we had; remember the attempt (2) */
    pthread_mutex_lock(&k->mu);
    json_t *cur = json_object_get(k->issuers, issuer);
    if (cur != NULL)
      json_object_set_new(cur, "at", json_integer((json_int_t)now - JWKS_TTL_MS + JWKS_MIN_REFRESH_MS));
    pthread_mutex_unlock(&k->mu);
  }
  json_decref(conf);
  json_decref(set);
  return keys;
}

/* ---- tokens ---- */

/* base64url (no padding) -> bytes (arena); -1 when invalid. */
static long b64url_decode(arena *a, const char *s, size_t n, uint8_t **out)
{
  char *t = arena_alloc(a, n + 4);
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '-')
      c = '+';
    else if (c == '_')
      c = '/';
    else if (c == '=' )
      break;
    t[j++] = c;
  }
  while (j % 4 != 0)
    t[j++] = '=';
  *out = arena_alloc(a, j / 4 * 3 + 3);
  return base64_decode(t, j, *out, j / 4 * 3 + 3);
}

static json_t *b64url_json(arena *a, const char *s, size_t n)
{
  uint8_t *p;
  long len = b64url_decode(a, s, n, &p);
  if (len < 0)
    return NULL;
  json_t *j = json_loadb((const char *)p, (size_t)len, 0, NULL);
  if (j != NULL && !json_is_object(j)) {
    json_decref(j);
    return NULL;
  }
  return j;
}

static EVP_PKEY *rsa_key(arena *a, const json_t *jwk)
{
  const char *n64 = json_string_value(json_object_get(jwk, "n"));
  const char *e64 = json_string_value(json_object_get(jwk, "e"));
  if (n64 == NULL || e64 == NULL)
    return NULL;
  uint8_t *nb;
  uint8_t *eb;
  long nl = b64url_decode(a, n64, strlen(n64), &nb);
  long el = b64url_decode(a, e64, strlen(e64), &eb);
  if (nl <= 0 || el <= 0)
    return NULL;
  BIGNUM *n = BN_bin2bn(nb, (int)nl, NULL);
  BIGNUM *ex = BN_bin2bn(eb, (int)el, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  EVP_PKEY *pkey = NULL;
  if (n != NULL && ex != NULL && bld != NULL &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ex) == 1 &&
      (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
      (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) != NULL &&
      EVP_PKEY_fromdata_init(ctx) == 1)
    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(n);
  BN_free(ex);
  return pkey;
}

static bool signature_ok(arena *a, const json_t *jwk, const EVP_MD *md, const char *signed_part,
                         size_t signed_len, const char *sig64, size_t sig64_len)
{
  uint8_t *sig;
  long sl = b64url_decode(a, sig64, sig64_len, &sig);
  if (sl <= 0)
    return false;
  EVP_PKEY *pkey = rsa_key(a, jwk);
  if (pkey == NULL)
    return false;
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  bool ok = m != NULL && EVP_DigestVerifyInit(m, NULL, md, NULL, pkey) == 1 &&
            EVP_DigestVerify(m, sig, (size_t)sl, (const uint8_t *)signed_part, signed_len) == 1;
  EVP_MD_CTX_free(m);
  EVP_PKEY_free(pkey);
  return ok;
}

static bool claim_has(const json_t *claim, const char *value)
{
  if (json_is_string(claim))
    return strcmp(json_string_value(claim), value) == 0;
  size_t i;
  json_t *v;
  json_array_foreach(claim, i, v)
  {
    if (json_is_string(v) && strcmp(json_string_value(v), value) == 0)
      return true;
  }
  return false;
}

/* The token's scopes as an array (a new reference): "scope" split on
 * spaces, or "scp" (array or string). */
static json_t *token_scopes(const json_t *claims)
{
  json_t *out = json_array();
  const json_t *scp = json_object_get(claims, "scp");
  const char *scope = json_string_value(json_object_get(claims, "scope"));
  if (json_is_array(scp)) {
    size_t i;
    json_t *v;
    json_array_foreach(scp, i, v) if (json_is_string(v)) json_array_append(out, v);
  } else {
    if (scope == NULL)
      scope = json_string_value(scp);
    for (const char *p = scope; p != NULL && *p;) {
      while (*p == ' ')
        p++;
      size_t n = strcspn(p, " ");
      if (n > 0)
        json_array_append_new(out, json_stringn(p, n));
      p += n;
    }
  }
  return out;
}

/* Claims as API Gateway passes them: every value a string. */
static json_t *string_claims(const json_t *claims)
{
  json_t *out = json_object();
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)claims, k, v)
  {
    if (json_is_string(v)) {
      json_object_set(out, k, v);
    } else if (json_is_array(v)) { /* "[a b c]" */
      buf b;
      buf_init(&b, 65536);
      buf_puts(&b, "[");
      size_t i;
      json_t *item;
      json_array_foreach(v, i, item)
      {
        if (i > 0)
          buf_puts(&b, " ");
        if (json_is_string(item)) {
          buf_puts(&b, json_string_value(item));
        } else {
          char *s = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
          buf_puts(&b, s);
          free(s);
        }
      }
      buf_puts(&b, "]");
      json_object_set_new(out, k, json_stringn(b.data, b.len));
      buf_release(&b);
    } else {
      char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
      json_object_set_new(out, k, json_string(s));
      free(s);
    }
  }
  return out;
}

int gateway_jwt_check(gateway_jwks *k, const json_t *az, const char *token,
                      const json_t *route_scopes, const char *format, json_t **authorizer,
                      err *e)
{
  *authorizer = NULL;
  if (token == NULL || *token == '\0')
    return err_set(e, ERR_UNAUTHORIZED, "no token");
  if (str_istarts(token, "Bearer "))
    token += 7;
  size_t tl = strlen(token);
  if (tl > JWT_MAX_BYTES)
    return err_set(e, ERR_UNAUTHORIZED, "the token is too long");
  const char *d1 = strchr(token, '.');
  const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL)
    return err_set(e, ERR_UNAUTHORIZED, "the token is not a JWT");
  arena *a = arena_new();
  json_t *hdr = b64url_json(a, token, (size_t)(d1 - token));
  json_t *claims = b64url_json(a, d1 + 1, (size_t)(d2 - d1 - 1));
  json_t *keys = NULL;
  json_t *scopes = NULL;
  int rc = 0;
  const char *alg = json_string_value(json_object_get(hdr, "alg"));
  const char *kid = json_string_value(json_object_get(hdr, "kid"));
  const EVP_MD *md = NULL;
  if (hdr == NULL || claims == NULL)
    rc = err_set(e, ERR_UNAUTHORIZED, "the token is not a JWT");
  else if (alg != NULL && strcmp(alg, "RS256") == 0)
    md = EVP_sha256();
  else if (alg != NULL && strcmp(alg, "RS384") == 0)
    md = EVP_sha384();
  else if (alg != NULL && strcmp(alg, "RS512") == 0)
    md = EVP_sha512();
  if (rc == 0 && md == NULL)
    rc = err_set(e, ERR_UNAUTHORIZED, "the token's alg is not RS256, RS384 or RS512");
  const json_t *conf = json_object_get(az, "jwtConfiguration");
  const char *issuer = json_string_value(json_object_get(conf, "issuer"));
  if (rc == 0) {
    err fe = {0};
    keys = issuer_keys(k, issuer, kid, &fe);
    const json_t *jwk = NULL;
    size_t i;
    json_t *key;
    json_array_foreach(keys, i, key)
    {
      const char *kk = json_string_value(json_object_get(key, "kid"));
      const char *kty = json_string_value(json_object_get(key, "kty"));
      if (kty != NULL && strcmp(kty, "RSA") == 0 &&
          (kid == NULL ? json_array_size(keys) == 1 : kk != NULL && strcmp(kk, kid) == 0))
        jwk = key;
    }
    if (jwk == NULL)
      rc = err_set(e, ERR_UNAUTHORIZED, "no key '%s' in the issuer's JWKS%s%s", kid ? kid : "",
                   fe.code ? ": " : "", fe.code ? fe.msg : "");
    else if (!signature_ok(a, jwk, md, token, (size_t)(d2 - token), d2 + 1, strlen(d2 + 1)))
      rc = err_set(e, ERR_UNAUTHORIZED, "the token's signature does not verify");
  }
  if (rc == 0) {
    int64_t now = time_now_ms() / 1000;
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (iss == NULL || strcmp(iss, issuer) != 0)
      rc = err_set(e, ERR_UNAUTHORIZED, "the token's issuer is not '%s'", issuer);
    else if (!json_is_number(exp) || json_number_value(exp) <= (double)now)
      rc = err_set(e, ERR_UNAUTHORIZED, "the token has expired");
    else if (nbf != NULL && (!json_is_number(nbf) || json_number_value(nbf) > (double)now))
      rc = err_set(e, ERR_UNAUTHORIZED, "the token is not valid yet");
  }
  if (rc == 0) {
    const json_t *aud = json_object_get(conf, "audience");
    bool ok = json_array_size(aud) == 0;
    size_t i;
    json_t *want;
    json_array_foreach(aud, i, want)
    {
      const char *w = json_string_value(want);
      if (w != NULL && (claim_has(json_object_get(claims, "aud"), w) ||
                        claim_has(json_object_get(claims, "client_id"), w)))
        ok = true;
    }
    if (!ok)
      rc = err_set(e, ERR_UNAUTHORIZED, "the token's audience is not allowed");
  }
  if (rc == 0) {
    scopes = token_scopes(claims);
    if (json_array_size(route_scopes) > 0) {
      bool ok = false;
      size_t i;
      json_t *want;
      json_array_foreach(route_scopes, i, want)
      {
        const char *w = json_string_value(want);
        if (w != NULL && claim_has(scopes, w))
          ok = true;
      }
      if (!ok)
        rc = err_set(e, ERR_DENIED, "the token has none of the route's scopes");
    }
  }
  if (rc == 0) {
    json_t *sc = json_array_size(scopes) > 0 ? json_incref(scopes) : json_null();
    json_t *inner = json_pack("{s:o, s:o}", "claims", string_claims(claims), "scopes", sc);
    *authorizer = strcmp(format, "1.0") == 0 ? inner : json_pack("{s:o}", "jwt", inner);
  }
  json_decref(scopes);
  json_decref(keys);
  json_decref(hdr);
  json_decref(claims);
  arena_free(a);
  return rc;
}

/* ---- identity sources and REQUEST authorizers ---- */

/* The value of one identitySource expression, or NULL. */
static const char *identity_value(const gateway_target *t, const gateway_request *q,
                                  const char *expr)
{
  /* WebSocket APIs spell them route.request.header.X, request.querystring.X,
     stageVariables.X, context.X: the same without route. and with $ */
  char spelled[300];
  if (expr[0] != '$') {
    snprintf(spelled, sizeof spelled, "$%s", str_starts(expr, "route.") ? expr + 6 : expr);
    expr = spelled;
  }
  return gateway__request_value(t, q, q->path, expr);
}

int gateway_identity(const gateway_target *t, const gateway_request *q, json_t **values, err *e)
{
  *values = json_array();
  const json_t *ids = json_object_get(t->authorizer, "identitySource");
  size_t i;
  json_t *v;
  json_array_foreach(ids, i, v)
  {
    const char *s = identity_value(t, q, json_string_value(v));
    if (s == NULL || *s == '\0') {
      json_decref(*values);
      *values = NULL;
      return err_set(e, ERR_UNAUTHORIZED, "the identity source '%s' is missing",
                     json_string_value(v));
    }
    json_array_append_new(*values, json_string(s));
  }
  return 0;
}

int gateway_authorizer_event(const gateway_target *t, const gateway_request *q,
                             const char *full_path, const char *route_arn,
                             const json_t *identity, buf *out, err *e)
{
  const char *fmt = json_string_value(json_object_get(t->authorizer,
                                                      "authorizerPayloadFormatVersion"));
  bool v1 = fmt != NULL && strcmp(fmt, "1.0") == 0;
  gateway_request nq = *q;
  nq.authorizer = NULL;
  nq.body_len = 0;
  json_t *ev = gateway__event_json(t, v1 ? "1.0" : "2.0", NULL, &nq, full_path);
  json_object_del(ev, "body");
  json_object_del(ev, "isBase64Encoded");
  json_object_set_new(ev, "type", json_string("REQUEST"));
  if (v1) {
    json_object_set_new(ev, "methodArn", json_string(route_arn));
    /* 1.0 joins the values with commas */
    buf b;
    buf_init(&b, 65536);
    size_t i;
    json_t *v;
    json_array_foreach(identity, i, v)
    {
      if (i > 0)
        buf_puts(&b, ",");
      buf_puts(&b, json_string_value(v));
    }
    json_object_set_new(ev, "identitySource", json_stringn(b.data ? b.data : "", b.len));
    buf_release(&b);
  } else {
    json_object_set_new(ev, "routeArn", json_string(route_arn));
    json_object_set(ev, "identitySource", (json_t *)identity);
  }
  char *s = json_dumps(ev, JSON_COMPACT);
  int rc = buf_puts(out, s);
  free(s);
  json_decref(ev);
  return rc != 0 ? err_set(e, ERR_ENTITY_TOO_LARGE, "the authorizer's event is too large") : 0;
}

int gateway_authorizer_answer(const json_t *az, const char *payload, size_t len,
                              const char *route_arn, const char *format, bool *allowed,
                              json_t **authorizer, err *e)
{
  *allowed = false;
  *authorizer = NULL;
  json_t *j = json_loadb(payload, len, 0, NULL);
  if (!json_is_object(j)) {
    json_decref(j);
    return err_set(e, ERR_INTERNAL, "the authorizer's answer is not a JSON object");
  }
  json_t *ctx = json_object_get(j, "context");
  int rc = 0;
  if (json_is_true(json_object_get(az, "enableSimpleResponses"))) {
    json_t *ok = json_object_get(j, "isAuthorized");
    if (!json_is_boolean(ok))
      rc = err_set(e, ERR_INTERNAL, "the authorizer's answer has no isAuthorized");
    *allowed = json_is_true(ok);
  } else {
    json_t *doc = json_object_get(j, "policyDocument");
    json_t *parsed = NULL;
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (text == NULL || iam_policy_parse(text, strlen(text), &parsed, e) != 0)
      rc = err_set(e, ERR_INTERNAL, "the authorizer's answer has no valid policyDocument");
    else
      {
      iam_context ic = {0};
      *allowed = iam_policy_evaluate(&parsed, 1, "execute-api:Invoke", route_arn, &ic) ==
                 IAM_ALLOW;
    }
    free(text);
    json_decref(parsed);
  }
  if (rc == 0 && *allowed) {
    json_t *c = json_is_object(ctx) ? json_deep_copy(ctx) : json_object();
    if (strcmp(format, "1.0") == 0) {
      json_t *pid = json_object_get(j, "principalId");
      if (pid != NULL)
        json_object_set(c, "principalId", pid);
      *authorizer = c;
    } else {
      *authorizer = json_pack("{s:o}", "lambda", c);
    }
  }
  json_decref(j);
  return rc;
}
