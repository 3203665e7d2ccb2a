/* api/s3_acl.c -- S3's access control lists and object ownership:
 * GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl, the canned ACLs
 * and x-amz-grant-* headers of the writes, Put/Get/DeleteBucketOwnership-
 * Controls, and what an ACL grants when a request is authorized (s3.c).
 *
 * Why: old tools and public datasets still share with ACLs (public-read),
 * and S3's current default (ObjectOwnership BucketOwnerEnforced) turns them
 * off; a client must get the same answers as from S3 either way.
 *
 * tarn has one account: its canonical user id is S3_OWNER_ID, which owns
 * every bucket and object. A grant names that id, or a group
 * (AllUsers, AuthenticatedUsers, LogDelivery); an e-mail grantee is
 * refused as S3 refuses it outside its old regions
 * (UnresolvableGrantByEmailAddress), any other id as an invalid id.
 *
 * Where they live: a bucket's ACL in its record ("acl"), its ownership
 * setting likewise ("ownershipControls"), an object's ACL in its metadata
 * under S3_ACL_META (never answered as a header: s3_meta_internal). An ACL
 * is kept as text, one grant a line: "<PERMISSION> <id|uri> <value>". The
 * owner's FULL_CONTROL alone (private) is the default and is not stored.
 *
 * Invariants:
 *   (1) With BucketOwnerEnforced (given to every bucket created since
 *       ACLs exist in tarn, unless x-amz-object-ownership says otherwise)
 *       ACLs grant nothing: reads answer the owner's FULL_CONTROL, writes
 *       other than private / bucket-owner-full-control (canned, or the
 *       equivalent grants) answer 400 AccessControlListNotSupported
 *       (InvalidBucketAclWithObjectOwnership at CreateBucket).
 *   (2) An ACL grants only to the groups: the account's own callers are
 *       decided by IAM (s3.c). AllUsers grants to unsigned requests too;
 *       both groups are public: the bucket's PublicAccessBlock
 *       BlockPublicAcls refuses to set such an ACL (403 AccessDenied),
 *       IgnorePublicAcls makes them grant nothing.
 *   (3) Bad input changes nothing: an ACL is parsed and checked whole
 *       before it is stored.
 *
 * Start reading at s3_acl_allows() and s3_put_acl().
 */
#include "api/s3_internal.h"

#include "base/xml.h"

#include <string.h>
#include <strings.h>

#define ACL_CONF "acl"
#define OWNERSHIP_CONF "ownershipControls"
#define ACL_MAX_GRANTS 100  /* S3's limit on grants in one ACL */

#define URI_ALL "http://acs.amazonaws.com/groups/global/AllUsers"
#define URI_AUTH "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
#define URI_LOG "http://acs.amazonaws.com/groups/s3/LogDelivery"

typedef struct grant {
  const char *perm;  /* FULL_CONTROL, READ, WRITE, READ_ACP, WRITE_ACP */
  bool group;        /* who is a group URI, else a canonical id */
  const char *who;
} grant;

typedef struct acl {
  grant g[ACL_MAX_GRANTS];
  size_t n;
} acl;

static const char *const perms[] = {"FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP"};

static bool perm_known(const char *p)
{
  for (size_t i = 0; i < sizeof perms / sizeof perms[0]; i++)
    if (strcmp(p, perms[i]) == 0)
      return true;
  return false;
}

static int add(acl *a, const char *perm, bool group, const char *who, err *e)
{
  if (a->n == ACL_MAX_GRANTS)
    return err_set(e, ERR_MALFORMED_ACL, "an ACL holds at most %d grants", ACL_MAX_GRANTS);
  for (size_t i = 0; i < a->n; i++)  /* the same grant twice is one grant */
    if (strcmp(a->g[i].perm, perm) == 0 && a->g[i].group == group && strcmp(a->g[i].who, who) == 0)
      return 0;
  a->g[a->n++] = (grant){perm, group, who};
  return 0;
}

static void add_owner(acl *a)
{
  add(a, "FULL_CONTROL", false, S3_OWNER_ID, NULL);
}

/* A canned ACL into a; for_bucket tells which set applies. */
static int canned(const char *name, bool for_bucket, acl *a, err *e)
{
  a->n = 0;
  add_owner(a);
  if (strcmp(name, "private") == 0 || strcmp(name, "bucket-owner-full-control") == 0 ||
      strcmp(name, "bucket-owner-read") == 0 || strcmp(name, "aws-exec-read") == 0)
    return 0;  /* the bucket's owner is the object's: its FULL_CONTROL says it all */
  if (strcmp(name, "public-read") == 0)
    return add(a, "READ", true, URI_ALL, e);
  if (strcmp(name, "public-read-write") == 0) {
    add(a, "READ", true, URI_ALL, e);
    return add(a, "WRITE", true, URI_ALL, e);
  }
  if (strcmp(name, "authenticated-read") == 0)
    return add(a, "READ", true, URI_AUTH, e);
  if (strcmp(name, "log-delivery-write") == 0 && for_bucket) {
    add(a, "WRITE", true, URI_LOG, e);
    return add(a, "READ_ACP", true, URI_LOG, e);
  }
  return err_set(e, ERR_INVALID, "the canned ACL '%.64s' is not valid", name);
}

/* A grantee named by id, uri or email (whichever is not NULL). */
static int grantee(acl *a, const char *perm, const char *id, const char *uri, const char *email,
                   err *e)
{
  if (email != NULL)
    return err_set(e, ERR_UNRESOLVABLE_GRANT_BY_EMAIL, "The e-mail address you provided does not "
                   "match any account on record.");
  if (uri != NULL) {
    if (strcmp(uri, URI_ALL) != 0 && strcmp(uri, URI_AUTH) != 0 && strcmp(uri, URI_LOG) != 0)
      return err_set(e, ERR_INVALID, "Invalid group uri");
    return add(a, perm, true, uri, e);
  }
  if (id != NULL) {
    if (strcmp(id, S3_OWNER_ID) != 0)
      return err_set(e, ERR_INVALID, "Invalid id");
    return add(a, perm, false, S3_OWNER_ID, e);
  }
  return err_set(e, ERR_MALFORMED_ACL, "The XML you provided was not well-formed or did not "
                 "validate against our published schema");
}

/* One x-amz-grant-* header: `id="...", uri="...", emailAddress="..."`. */
static int grant_header(http_req *req, const char *value, const char *perm, acl *a, err *e)
{
  const char *p = value;
  while (*p != '\0') {
    while (*p == ' ' || *p == ',')
      p++;
    if (*p == '\0')
      break;
    const char *eq = strchr(p, '=');
    if (eq == NULL)
      return err_set(e, ERR_INVALID, "Invalid grant header value: %.128s", value);
    char *name = arena_strndup(req->arena, p, (size_t)(eq - p));
    while (*name == ' ')
      name++;
    for (char *t = name + strlen(name); t > name && t[-1] == ' '; t--)
      t[-1] = '\0';
    const char *v = eq + 1;
    while (*v == ' ')
      v++;
    size_t n;
    const char *next;
    if (*v == '"') {
      const char *close = strchr(v + 1, '"');
      if (close == NULL)
        return err_set(e, ERR_INVALID, "Invalid grant header value: %.128s", value);
      v++;
      n = (size_t)(close - v);
      next = close + 1;
    } else {
      n = strcspn(v, ", ");
      next = v + n;
    }
    char *val = arena_strndup(req->arena, v, n);
    int rc;
    if (strcasecmp(name, "id") == 0)
      rc = grantee(a, perm, val, NULL, NULL, e);
    else if (strcasecmp(name, "uri") == 0)
      rc = grantee(a, perm, NULL, val, NULL, e);
    else if (strcasecmp(name, "emailAddress") == 0)
      rc = grantee(a, perm, NULL, NULL, val, e);
    else
      rc = err_set(e, ERR_INVALID, "Invalid grant header value: %.128s", value);
    if (rc != 0)
      return rc;
    p = next;
  }
  return 0;
}

static const struct {
  const char *header;
  const char *perm;
} grant_headers[] = {
    {"x-amz-grant-full-control", "FULL_CONTROL"}, {"x-amz-grant-read", "READ"},
    {"x-amz-grant-write", "WRITE"},               {"x-amz-grant-read-acp", "READ_ACP"},
    {"x-amz-grant-write-acp", "WRITE_ACP"},
};

/* The ACL of the request's headers into a; *sent false when it names none.
 * *owner_only tells whether it grants the owner alone (what
 * BucketOwnerEnforced accepts). */
static int acl_of_headers(http_req *req, bool for_bucket, acl *a, bool *sent, bool *owner_only,
                          err *e)
{
  const char *name = http_req_header(req, "x-amz-acl");
  bool grants = false;
  for (size_t i = 0; i < sizeof grant_headers / sizeof grant_headers[0]; i++)
    if (http_req_header(req, grant_headers[i].header) != NULL)
      grants = true;
  *sent = name != NULL || grants;
  *owner_only = true;
  a->n = 0;
  if (name != NULL && grants)
    return err_set(e, ERR_INVALID_REQUEST, "Specifying both Canned ACLs and Header Grants is not "
                   "allowed");
  if (name != NULL) {
    int rc = canned(name, for_bucket, a, e);
    if (rc != 0)
      return rc;
    *owner_only = a->n == 1;
    return 0;
  }
  for (size_t i = 0; i < sizeof grant_headers / sizeof grant_headers[0]; i++) {
    const char *v = http_req_header(req, grant_headers[i].header);
    int rc;
    if (v != NULL && (rc = grant_header(req, v, grant_headers[i].perm, a, e)) != 0)
      return rc;
  }
  if (!*sent)
    add_owner(a);
  *owner_only = a->n == 1 && !a->g[0].group && strcmp(a->g[0].perm, "FULL_CONTROL") == 0;
  return 0;
}

/* ---- the stored form ---- */

static const char *acl_text(arena *ar, const acl *a)
{
  const char *t = "";
  for (size_t i = 0; i < a->n; i++)
    t = arena_sprintf(ar, "%s%s %s %s\n", t, a->g[i].perm, a->g[i].group ? "uri" : "id",
                      a->g[i].who);
  return t;
}

/* Parses the stored form; NULL text is the default (private). */
static void acl_parse(arena *ar, const char *text, acl *a)
{
  a->n = 0;
  if (text == NULL) {
    add_owner(a);
    return;
  }
  const char *p = text;
  while (*p != '\0' && a->n < ACL_MAX_GRANTS) {
    const char *nl = strchr(p, '\n');
    size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
    char *line = arena_strndup(ar, p, len);
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp2 != NULL) {
      *sp1 = '\0';
      *sp2 = '\0';
      a->g[a->n++] = (grant){line, strcmp(sp1 + 1, "uri") == 0, sp2 + 1};
    }
    p += len + (nl != NULL ? 1 : 0);
  }
}

static bool acl_public(const acl *a)
{
  for (size_t i = 0; i < a->n; i++)
    if (a->g[i].group && (strcmp(a->g[i].who, URI_ALL) == 0 || strcmp(a->g[i].who, URI_AUTH) == 0))
      return true;
  return false;
}

static bool owner_only(const acl *a)
{
  return a->n == 1 && !a->g[0].group && strcmp(a->g[0].perm, "FULL_CONTROL") == 0;
}

/* ---- object ownership ---- */

static const char *const ownerships[] = {"BucketOwnerEnforced", "BucketOwnerPreferred",
                                         "ObjectWriter"};

static bool ownership_known(const char *v)
{
  for (size_t i = 0; i < sizeof ownerships / sizeof ownerships[0]; i++)
    if (strcmp(v, ownerships[i]) == 0)
      return true;
  return false;
}

/* The bucket's ObjectOwnership, or NULL when it has none (a bucket from
 * before ACLs, or after DeleteBucketOwnershipControls: ObjectWriter). */
static int ownership(s3_svc *s, http_req *req, const char *bucket, const char **out, err *e)
{
  return store_bucket_conf_get(s->st, bucket, OWNERSHIP_CONF, req->arena, out, e);
}

static int enforced(s3_svc *s, http_req *req, const char *bucket, bool *on, err *e)
{
  const char *v;
  int rc = ownership(s, req, bucket, &v, e);
  *on = rc == 0 && v != NULL && strcmp(v, "BucketOwnerEnforced") == 0;
  return rc;
}

int s3_put_ownership(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "OwnershipControls", &root, e);
  if (rc != 0)
    return rc;
  xml_node *rule = xml_child(root, "Rule");
  const char *v = rule != NULL ? xml_child_text(rule, "ObjectOwnership") : NULL;
  if (v == NULL || !ownership_known(v) || xml_next_same(rule) != NULL)
    return err_set(e, ERR_MALFORMED_XML, "The XML you provided was not well-formed or did not "
                   "validate against our published schema");
  if (strcmp(v, "BucketOwnerEnforced") == 0) {
    const char *text;
    if ((rc = store_bucket_conf_get(s->st, c->bucket, ACL_CONF, req->arena, &text, e)) != 0)
      return rc;
    acl a;
    acl_parse(req->arena, text, &a);
    if (!owner_only(&a))
      return err_set(e, ERR_INVALID_BUCKET_ACL_WITH_OWNERSHIP, "Bucket cannot have ACLs set with "
                     "ObjectOwnership's BucketOwnerEnforced setting");
  }
  return store_bucket_conf_set(s->st, c->bucket, OWNERSHIP_CONF, v, e);
}

int s3_get_ownership(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  const char *v;
  int rc = ownership(s, req, c->bucket, &v, e);
  if (rc != 0)
    return rc;
  if (v == NULL)
    return err_set(e, ERR_OWNERSHIP_CONTROLS_NOT_FOUND, "The bucket ownership controls were not "
                   "found");
  s3_xml x;
  s3_xml_open(&x, req, "OwnershipControls");
  s3_xml_start(&x, "Rule");
  s3_xml_text(&x, "ObjectOwnership", v);
  s3_xml_end(&x, "Rule");
  s3_xml_close(&x, "OwnershipControls");
  return s3_xml_done(&x, e);
}

int s3_delete_ownership(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  int rc = store_bucket_conf_set(s->st, c->bucket, OWNERSHIP_CONF, NULL, e);
  if (rc != 0)
    return rc;
  http_resp_status(req, 204);
  return 0;
}

/* ---- setting an ACL ---- */

/* a may be set on bucket (invariants 1 and 2); enforced_code is the error
 * when ACLs are off. */
static int settable(s3_svc *s, http_req *req, const char *bucket, const acl *a, int enforced_code,
                    err *e)
{
  bool on;
  int rc = enforced(s, req, bucket, &on, e);
  if (rc != 0)
    return rc;
  if (on && !owner_only(a)) {
    if (enforced_code == ERR_INVALID_BUCKET_ACL_WITH_OWNERSHIP)
      return err_set(e, enforced_code, "Bucket cannot have ACLs set with ObjectOwnership's "
                     "BucketOwnerEnforced setting");
    return err_set(e, enforced_code, "The bucket does not allow ACLs");
  }
  if (acl_public(a) && s3_pab_on(s, req, bucket, "BlockPublicAcls"))
    return err_set(e, ERR_DENIED, "Access Denied: the bucket's PublicAccessBlock "
                   "(BlockPublicAcls) refuses public ACLs");
  return 0;
}

int s3_acl_for_write(s3_svc *s, http_req *req, const char *bucket, const char **text, err *e)
{
  *text = NULL;
  acl a;
  bool sent;
  bool only;
  int rc = acl_of_headers(req, false, &a, &sent, &only, e);
  if (rc != 0 || !sent)
    return rc;
  if ((rc = settable(s, req, bucket, &a, ERR_ACL_NOT_SUPPORTED, e)) != 0)
    return rc;
  if (!only)
    *text = acl_text(req->arena, &a);
  return 0;
}

int s3_acl_canned_for_write(s3_svc *s, http_req *req, const char *bucket, const char *name,
                            const char **text, err *e)
{
  *text = NULL;
  acl a;
  int rc = canned(name, false, &a, e);
  if (rc == 0)
    rc = settable(s, req, bucket, &a, ERR_ACL_NOT_SUPPORTED, e);
  if (rc == 0 && !owner_only(&a))
    *text = acl_text(req->arena, &a);
  return rc;
}

void s3_acl_meta_add(http_req *req, const char *text, str_pair **meta, size_t *n)
{
  size_t k = 0;
  str_pair *m = arena_alloc(req->arena, (*n + 1) * sizeof *m);
  for (size_t i = 0; i < *n; i++)
    if (strcmp((*meta)[i].name, S3_ACL_META) != 0)
      m[k++] = (*meta)[i];
  if (text != NULL)
    m[k++] = (str_pair){S3_ACL_META, text};
  *meta = m;
  *n = k;
}

int s3_acl_copy_meta(s3_svc *s, http_req *req, const char *bucket, const store_object *src,
                     str_pair **meta, size_t *n, err *e)
{
  const char *text;
  int rc = s3_acl_for_write(s, req, bucket, &text, e);
  if (rc != 0)
    return rc;
  bool src_acl = false;
  for (size_t i = 0; i < src->nmeta; i++)
    if (strcmp(src->meta[i].name, S3_ACL_META) == 0)
      src_acl = true;
  if (*meta == NULL && text == NULL && !src_acl)
    return 0;  /* the source's metadata as it is */
  if (*meta == NULL) {
    *meta = src->meta;
    *n = src->nmeta;
  }
  s3_acl_meta_add(req, text, meta, n);  /* a copy never inherits its source's ACL */
  return 0;
}

int s3_acl_bucket_conf(s3_svc *s, http_req *req, s3_call *c, str_pair *conf, size_t *nconf,
                       err *e)
{
  const char *own = http_req_header(req, "x-amz-object-ownership");
  if (own != NULL && !ownership_known(own))
    return err_set(e, ERR_INVALID, "Invalid x-amz-object-ownership header: %.64s", own);
  acl a;
  bool sent;
  bool only;
  int rc = acl_of_headers(req, true, &a, &sent, &only, e);
  if (rc != 0)
    return rc;
  if (own == NULL)
    own = "BucketOwnerEnforced";  /* S3's default since April 2023 */
  if (!only && strcmp(own, "BucketOwnerEnforced") == 0)
    return err_set(e, ERR_INVALID_BUCKET_ACL_WITH_OWNERSHIP, "Bucket cannot have ACLs set with "
                   "ObjectOwnership's BucketOwnerEnforced setting");
  conf[(*nconf)++] = (str_pair){OWNERSHIP_CONF, own};
  if (!only) {
    if (acl_public(&a) && s3_pab_on(s, req, c->bucket, "BlockPublicAcls"))
      return err_set(e, ERR_DENIED, "Access Denied");
    conf[(*nconf)++] = (str_pair){ACL_CONF, acl_text(req->arena, &a)};
  }
  return 0;
}

/* The AccessControlPolicy body of a Put*Acl. */
static int acl_of_body(http_req *req, acl *a, err *e)
{
  xml_node *root;
  int rc = s3_body_xml(req, "AccessControlPolicy", &root, e);
  if (rc != 0)
    return rc;
  a->n = 0;
  xml_node *owner = xml_child(root, "Owner");
  const char *oid = owner != NULL ? xml_child_text(owner, "ID") : NULL;
  if (oid != NULL && strcmp(oid, S3_OWNER_ID) != 0)
    return err_set(e, ERR_DENIED, "Access Denied: the Owner is not the bucket's owner");
  xml_node *list = xml_child(root, "AccessControlList");
  if (list == NULL)
    return err_set(e, ERR_MALFORMED_ACL, "The XML you provided was not well-formed or did not "
                   "validate against our published schema");
  for (xml_node *g = xml_child(list, "Grant"); g != NULL; g = xml_next_same(g)) {
    xml_node *who = xml_child(g, "Grantee");
    const char *perm = xml_child_text(g, "Permission");
    if (who == NULL || perm == NULL || !perm_known(perm))
      return err_set(e, ERR_MALFORMED_ACL, "The XML you provided was not well-formed or did not "
                     "validate against our published schema");
    rc = grantee(a, perm, xml_child_text(who, "ID"), xml_child_text(who, "URI"),
                 xml_child_text(who, "EmailAddress"), e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int s3_put_acl(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  acl a;
  bool sent;
  bool only;
  int rc = acl_of_headers(req, c->key == NULL, &a, &sent, &only, e);
  if (rc != 0)
    return rc;
  if (req->body.len > 0) {
    if (sent)
      return err_set(e, ERR_UNEXPECTED_CONTENT, "This request does not support content");
    if ((rc = acl_of_body(req, &a, e)) != 0)
      return rc;
  } else if (!sent) {
    return err_set(e, ERR_MISSING_SECURITY_HEADER, "Your request was missing a required header");
  }
  const char *text = owner_only(&a) ? NULL : acl_text(req->arena, &a);
  if (c->key == NULL) {
    if ((rc = settable(s, req, c->bucket, &a, ERR_ACL_NOT_SUPPORTED, e)) != 0)
      return rc;
    return store_bucket_conf_set(s->st, c->bucket, ACL_CONF, text, e);
  }
  store_object o;
  if ((rc = store_object_get(s->st, c->bucket, c->key, req->arena, &o, NULL, e)) != 0 ||
      (rc = settable(s, req, c->bucket, &a, ERR_ACL_NOT_SUPPORTED, e)) != 0)
    return rc;
  str_pair *meta = o.meta;
  size_t n = o.nmeta;
  s3_acl_meta_add(req, text, &meta, &n);
  return store_object_meta_set(s->st, c->bucket, c->key, meta, n, e);
}

/* ---- reading an ACL ---- */

/* The ACL in force on the bucket or object of c (invariant 1). */
static int acl_in_force(s3_svc *s, http_req *req, const char *bucket, const char *key, acl *a,
                        err *e)
{
  const char *text = NULL;
  int rc;
  if (key != NULL) {
    store_object o;
    if ((rc = store_object_get(s->st, bucket, key, req->arena, &o, NULL, e)) != 0)
      return rc;
    for (size_t i = 0; i < o.nmeta; i++)
      if (strcmp(o.meta[i].name, S3_ACL_META) == 0)
        text = o.meta[i].value;
  } else if ((rc = store_bucket_conf_get(s->st, bucket, ACL_CONF, req->arena, &text, e)) != 0) {
    return rc;
  }
  bool on;
  if ((rc = enforced(s, req, bucket, &on, e)) != 0)
    return rc;
  acl_parse(req->arena, on ? NULL : text, a);
  return 0;
}

int s3_get_acl(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  acl a;
  int rc = acl_in_force(s, req, c->bucket, c->key, &a, e);
  if (rc != 0)
    return rc;
  s3_xml x;
  s3_xml_open(&x, req, "AccessControlPolicy");
  s3_xml_owner(&x, "Owner");
  s3_xml_start(&x, "AccessControlList");
  for (size_t i = 0; i < a.n; i++) {
    s3_xml_start(&x, "Grant");
    if (a.g[i].group) {
      s3_xml_start(&x, "Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                       "xsi:type=\"Group\"");
      s3_xml_text(&x, "URI", a.g[i].who);
    } else {
      s3_xml_start(&x, "Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                       "xsi:type=\"CanonicalUser\"");
      s3_xml_text(&x, "ID", a.g[i].who);
      s3_xml_text(&x, "DisplayName", S3_OWNER);
    }
    s3_xml_end(&x, "Grantee");
    s3_xml_text(&x, "Permission", a.g[i].perm);
    s3_xml_end(&x, "Grant");
  }
  s3_xml_end(&x, "AccessControlList");
  s3_xml_close(&x, "AccessControlPolicy");
  return s3_xml_done(&x, e);
}

/* ---- deciding ---- */

/* The ACL permission an IAM action needs, and whether on the object. */
static const struct {
  const char *action;
  const char *perm;
  bool object;
} needs[] = {
    {"s3:ListBucket", "READ", false},      {"s3:ListBucketMultipartUploads", "READ", false},
    {"s3:PutObject", "WRITE", false},      {"s3:DeleteObject", "WRITE", false},
    {"s3:AbortMultipartUpload", "WRITE", false},
    {"s3:GetBucketAcl", "READ_ACP", false}, {"s3:PutBucketAcl", "WRITE_ACP", false},
    {"s3:GetObject", "READ", true},        {"s3:GetObjectAcl", "READ_ACP", true},
    {"s3:PutObjectAcl", "WRITE_ACP", true},
};

bool s3_acl_allows(s3_svc *s, http_req *req, const char *bucket, const char *key,
                   const char *action, bool anonymous)
{
  size_t i = 0;
  while (i < sizeof needs / sizeof needs[0] && strcmp(needs[i].action, action) != 0)
    i++;
  if (i == sizeof needs / sizeof needs[0] || bucket == NULL || (needs[i].object && key == NULL))
    return false;
  err e;
  err_clear(&e);
  acl a;
  if (acl_in_force(s, req, bucket, needs[i].object ? key : NULL, &a, &e) != 0)
    return false;
  if (s3_pab_on(s, req, bucket, "IgnorePublicAcls"))
    return false;  /* every grant an ACL can make to others is public */
  for (size_t k = 0; k < a.n; k++) {
    const grant *g = &a.g[k];
    if (!g->group || (strcmp(g->perm, needs[i].perm) != 0 && strcmp(g->perm, "FULL_CONTROL") != 0))
      continue;
    if (strcmp(g->who, URI_ALL) == 0 || (!anonymous && strcmp(g->who, URI_AUTH) == 0))
      return true;
  }
  return false;
}
