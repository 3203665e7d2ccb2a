/* queue/topic.c -- topics and subscriptions: their records, their cache,
 * attributes and tags, the confirmation of HTTP subscriptions, and the
 * presigned URLs that notifications carry.
 *
 * Why a cache: publish matches every subscription of a topic; it must not
 * read and parse their records (and compile filter policies) each time. As
 * for queues (queues.c), the store's records are the truth and the cache
 * changes only after a commit, under meta_mu. The records are written by a
 * topic_store (internal.h): LMDB (the apply functions below) or PostgreSQL
 * (pg_topic.c), which is shared by several nodes; then every call reloads
 * the topics it reads or changes first (sync_topic), and publish checks
 * the topic's version in its own commit (pg_topic.c).
 *
 * HTTP subscriptions start pending: Subscribe commits the subscription and,
 * in the same commit, a SubscriptionConfirmation delivery in the outbox
 * whose SubscribeURL is a presigned ConfirmSubscription call to this
 * server (valid for SIGV4_MAX_EXPIRES, 7 days). The token is random, 64
 * hex characters.
 *
 * Invariants:
 *   (1) A subscription ARN is its topic's ARN, ':' and a UUID; deleting a
 *       topic deletes its subscriptions in the same commit.
 *   (2) A subscription's filter policy in the cache is compiled from the
 *       validated text in its record; invalid text is never stored.
 *
 * Start reading at queue_sub_create().
 */
#include "internal.h"

#include "base/hash.h"
#include "base/mem.h"
#include "aws/sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC_NAME_MAX 256
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- names ---- */

static bool topic_name_valid(const char *name, bool *fifo)
{
  size_t n = strlen(name);
  if (n == 0 || n > TOPIC_NAME_MAX)
    return false;
  *fifo = n > 5 && strcmp(name + n - 5, ".fifo") == 0;
  size_t end = *fifo ? n - 5 : n;
  for (size_t i = 0; i < end; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_'))
      return false;
  }
  return end > 0;
}

int queue__topic_name(const char *arn, arena *a, const char **name, err *e)
{
  if (arn == NULL || *arn == '\0')
    return err_set(e, ERR_INVALID, "Invalid parameter: TopicArn");
  if (!str_starts(arn, "arn:aws:sns:"))
    return err_set(e, ERR_INVALID, "Invalid parameter: TopicArn");
  const char *p = arn;
  int colons = 0;
  for (; *p != '\0' && colons < 5; p++)
    if (*p == ':')
      colons++;
  bool fifo;
  if (colons < 5 || strchr(p, ':') != NULL || !topic_name_valid(p, &fifo))
    return err_set(e, ERR_INVALID, "Invalid parameter: TopicArn");
  *name = arena_strdup(a, p);
  return 0;
}

/* ---- the caches ---- */

mtopic *queue__topic_find(queue_system *q, const char *name)
{
  for (size_t i = 0; i < q->ntopics; i++)
    if (strcmp(q->topics[i]->name, name) == 0)
      return q->topics[i];
  return NULL;
}

static msub *sub_find(queue_system *q, const char *arn)
{
  for (size_t i = 0; i < q->nsubs; i++)
    if (strcmp(q->subs[i]->arn, arn) == 0)
      return q->subs[i];
  return NULL;
}

static void grow(void **arr, size_t *cap, size_t n, size_t elem)
{
  if (n < *cap)
    return;
  size_t c = *cap ? *cap * 2 : 16;
  void *p = xrealloc(*arr, c * elem);
  *arr = p;
  *cap = c;
}

static int topic_cmp(const void *x, const void *y)
{
  return strcmp((*(mtopic *const *)x)->name, (*(mtopic *const *)y)->name);
}

static int sub_cmp(const void *x, const void *y)
{
  return strcmp((*(msub *const *)x)->arn, (*(msub *const *)y)->arn);
}

static void topic_insert(queue_system *q, mtopic *t)
{
  grow((void **)&q->topics, &q->captopics, q->ntopics, sizeof *q->topics);
  q->topics[q->ntopics++] = t;
  qsort(q->topics, q->ntopics, sizeof *q->topics, topic_cmp);
}

static void sub_insert(queue_system *q, msub *s)
{
  grow((void **)&q->subs, &q->capsubs, q->nsubs, sizeof *q->subs);
  q->subs[q->nsubs++] = s;
  qsort(q->subs, q->nsubs, sizeof *q->subs, sub_cmp);
}

void queue__topic_free(mtopic *t)
{
  if (t == NULL)
    return;
  free(t->name);
  free(t->arn);
  json_decref(t->attrs);
  json_decref(t->tags);
  free(t);
}

void queue__sub_free(msub *s)
{
  if (s == NULL)
    return;
  free(s->arn);
  free(s->topic);
  free(s->protocol);
  free(s->endpoint);
  free(s->token);
  json_decref(s->attrs);
  queue_filter_free(s->filter);
  free(s);
}

static void topic_remove(queue_system *q, const char *name)
{
  for (size_t i = 0; i < q->ntopics; i++)
    if (strcmp(q->topics[i]->name, name) == 0) {
      queue__topic_free(q->topics[i]);
      memmove(q->topics + i, q->topics + i + 1, (q->ntopics - i - 1) * sizeof *q->topics);
      q->ntopics--;
      return;
    }
}

static void sub_remove(queue_system *q, const char *arn)
{
  for (size_t i = 0; i < q->nsubs; i++)
    if (strcmp(q->subs[i]->arn, arn) == 0) {
      queue__sub_free(q->subs[i]);
      memmove(q->subs + i, q->subs + i + 1, (q->nsubs - i - 1) * sizeof *q->subs);
      q->nsubs--;
      return;
    }
}

/* Derived fields of a subscription from its attributes. */
static void sub_parse(msub *s)
{
  const char *raw = json_string_value(json_object_get(s->attrs, "RawMessageDelivery"));
  s->raw = raw != NULL && strcmp(raw, "true") == 0;
  const char *scope = json_string_value(json_object_get(s->attrs, "FilterPolicyScope"));
  s->body_scope = scope != NULL && strcmp(scope, "MessageBody") == 0;
  s->filter = queue_filter_free(s->filter);
  const char *fp = json_string_value(json_object_get(s->attrs, "FilterPolicy"));
  if (fp != NULL && *fp) {
    err ignore = {0};
    queue_filter_new(fp, &s->filter, &ignore);
  }
}

mtopic *queue__topic_from_record(const char *name, size_t n, const char *rec, size_t len)
{
  json_t *j = json_loadb(rec, len, 0, NULL);
  if (j == NULL)
    return NULL;
  mtopic *t = xcalloc(1, sizeof *t);
  t->name = xstrndup(name, n);
  t->arn = xasprintf(ARN_SNS_PREFIX "%s", t->name);
  t->fifo = json_is_true(json_object_get(j, "fifo"));
  t->created_ms = json_integer_value(json_object_get(j, "created"));
  t->attrs = json_incref(json_object_get(j, "attrs"));
  t->tags = json_incref(json_object_get(j, "tags"));
  if (!json_is_object(t->attrs)) {
    json_decref(t->attrs);
    t->attrs = json_object();
  }
  if (!json_is_object(t->tags)) {
    json_decref(t->tags);
    t->tags = json_object();
  }
  const char *cbd = json_string_value(json_object_get(t->attrs, "ContentBasedDeduplication"));
  t->content_dedup = cbd != NULL && strcmp(cbd, "true") == 0;
  json_decref(j);
  return t;
}

msub *queue__sub_from_record(const char *arn, size_t n, const char *rec, size_t len)
{
  json_t *j = json_loadb(rec, len, 0, NULL);
  if (j == NULL)
    return NULL;
  msub *s = xcalloc(1, sizeof *s);
  s->arn = xstrndup(arn, n);
  s->topic = queue__strdup(json_string_value(json_object_get(j, "topic")));
  s->protocol = queue__strdup(json_string_value(json_object_get(j, "protocol")));
  s->endpoint = queue__strdup(json_string_value(json_object_get(j, "endpoint")));
  s->token = queue__strdup(json_string_value(json_object_get(j, "token")));
  s->confirmed = json_is_true(json_object_get(j, "confirmed"));
  s->attrs = json_incref(json_object_get(j, "attrs"));
  if (!json_is_object(s->attrs)) {
    json_decref(s->attrs);
    s->attrs = json_object();
  }
  json_decref(j);
  sub_parse(s);
  return s;
}

char *queue__topic_record(const mtopic *t)
{
  json_t *j = json_pack("{s:b, s:I, s:O, s:O}", "fifo", t->fifo, "created",
                        (json_int_t)t->created_ms, "attrs", t->attrs, "tags", t->tags);
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (s == NULL)
    mem_out_of_memory();
  return s;
}

char *queue__sub_record(const msub *s)
{
  json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:b, s:O}", "topic", s->topic, "protocol",
                        s->protocol, "endpoint", s->endpoint, "token", s->token, "confirmed",
                        s->confirmed, "attrs", s->attrs);
  char *r = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (r == NULL)
    mem_out_of_memory();
  return r;
}

int queue__topics_load(queue_system *q, MDB_txn *txn, err *e)
{
  MDB_dbi dbs[2] = {q->db_topics, q->db_subs};
  for (int d = 0; d < 2; d++) {
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, dbs[d], &cur);
    if (mrc != 0)
      return lmdb_error(e, mrc, "read the topics");
    MDB_val k, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (d == 0) {
        mtopic *t = queue__topic_from_record(k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (t != NULL) {
          grow((void **)&q->topics, &q->captopics, q->ntopics, sizeof *q->topics);
          q->topics[q->ntopics++] = t;
        }
      } else {
        msub *s = queue__sub_from_record(k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (s != NULL) {
          grow((void **)&q->subs, &q->capsubs, q->nsubs, sizeof *q->subs);
          q->subs[q->nsubs++] = s;
        }
      }
    }
    mdb_cursor_close(cur);
  }
  return 0;
}

void queue__topics_free(queue_system *q)
{
  for (size_t i = 0; i < q->ntopics; i++)
    queue__topic_free(q->topics[i]);
  for (size_t i = 0; i < q->nsubs; i++)
    queue__sub_free(q->subs[i]);
  free(q->topics);
  free(q->subs);
  q->topics = NULL;
  q->subs = NULL;
  q->ntopics = q->nsubs = 0;
  q->captopics = q->capsubs = 0;
}

void queue__topic_cache_set(queue_system *q, const char *name, mtopic **ts, size_t nt,
                            msub **subs, size_t n)
{
  pthread_rwlock_wrlock(&q->mu);
  if (name == NULL) {
    queue__topics_free(q);
  } else {
    topic_remove(q, name);
    for (size_t i = 0; i < q->nsubs;) {
      if (strcmp(q->subs[i]->topic, name) == 0) {
        queue__sub_free(q->subs[i]);
        memmove(q->subs + i, q->subs + i + 1, (q->nsubs - i - 1) * sizeof *q->subs);
        q->nsubs--;
      } else {
        i++;
      }
    }
  }
  for (size_t i = 0; i < nt; i++) {
    grow((void **)&q->topics, &q->captopics, q->ntopics, sizeof *q->topics);
    q->topics[q->ntopics++] = ts[i];
  }
  for (size_t i = 0; i < n; i++) {
    grow((void **)&q->subs, &q->capsubs, q->nsubs, sizeof *q->subs);
    q->subs[q->nsubs++] = subs[i];
  }
  if (q->ntopics > 0)
    qsort(q->topics, q->ntopics, sizeof *q->topics, topic_cmp);
  if (q->nsubs > 0)
    qsort(q->subs, q->nsubs, sizeof *q->subs, sub_cmp);
  pthread_rwlock_unlock(&q->mu);
}

/* With a shared store, reloads topic `name` (NULL: all) before the cache is
 * read or changed (meta_mu held): another node may have changed it. A
 * failed reload leaves the cache as it was; the store's own checks (rows
 * and versions) still refuse what is out of date. */
static void sync_topic(queue_system *q, const char *name)
{
  if (q->tstore->refresh == NULL)
    return;
  err ignore = {0};
  q->tstore->refresh(q, name, &ignore);
}

static void sync_read(queue_system *q, const char *name)
{
  if (q->tstore->refresh == NULL)
    return;
  pthread_mutex_lock(&q->meta_mu);
  sync_topic(q, name);
  pthread_mutex_unlock(&q->meta_mu);
}

/* The topic of a subscription ARN (arena), "" when malformed. */
static const char *sub_topic(const char *arn, arena *a)
{
  const char *colon = arn != NULL ? strrchr(arn, ':') : NULL;
  const char *name = NULL;
  err ignore = {0};
  if (colon == NULL ||
      queue__topic_name(arena_strndup(a, arn, (size_t)(colon - arn)), a, &name, &ignore) != 0)
    return "";
  return name;
}

/* ---- presigned URLs ---- */

const char *queue__endpoint(queue_system *q, arena *a)
{
  pthread_mutex_lock(&q->emu);
  const char *out = arena_strdup(a, q->endpoint);
  pthread_mutex_unlock(&q->emu);
  return out;
}

char *queue__presign(queue_system *q, arena *a, const str_pair *params, size_t n)
{
  const char *endpoint = queue__endpoint(q, a);
  const char *host = strstr(endpoint, "://");
  host = host != NULL ? host + 3 : endpoint;
  time_t now = (time_t)(queue__now_ms() / 1000);
  char amz_date[17];
  time_format_iso8601_basic(now, amz_date);
  char date[9];
  memcpy(date, amz_date, 8);
  date[8] = '\0';
  const char *scope = arena_sprintf(a, "%s/%s/sns/aws4_request", date, QUEUE_REGION);
  str_pair *qp = arena_alloc(a, (n + 5) * sizeof *qp);
  memcpy(qp, params, n * sizeof *qp);
  size_t k = n;
  qp[k++] = (str_pair){"X-Amz-Algorithm", "AWS4-HMAC-SHA256"};
  qp[k++] = (str_pair){"X-Amz-Credential", arena_sprintf(a, "%s/%s", q->access_key, scope)};
  qp[k++] = (str_pair){"X-Amz-Date", arena_strdup(a, amz_date)};
  qp[k++] = (str_pair){"X-Amz-Expires", arena_sprintf(a, "%d", SIGV4_MAX_EXPIRES)};
  qp[k++] = (str_pair){"X-Amz-SignedHeaders", "host"};
  str_pair hdr = {"host", host};
  sigv4_request req = {.method = "GET", .raw_path = "/", .query = qp, .nquery = k,
                       .headers = &hdr, .nheaders = 1};
  char *canonical = sigv4_canonical_request(&req, "sns", "host", EMPTY_SHA256, true, a);
  char *sts = sigv4_string_to_sign(amz_date, scope, canonical, a);
  uint8_t key[SHA256_LEN];
  sigv4_signing_key(q->secret_key, date, QUEUE_REGION, "sns", key);
  uint8_t sig[SHA256_LEN];
  hmac_sha256(key, sizeof key, sts, strlen(sts), sig);
  char sighex[2 * SHA256_LEN + 1];
  hex_encode(sig, sizeof sig, sighex);
  char *url = arena_sprintf(a, "%s/?", endpoint);
  for (size_t i = 0; i < k; i++)
    url = arena_sprintf(a, "%s%s=%s&", url, uri_encode(a, qp[i].name, strlen(qp[i].name), false),
                        uri_encode(a, qp[i].value, strlen(qp[i].value), false));
  return arena_sprintf(a, "%sX-Amz-Signature=%s", url, sighex);
}

/* ---- topics ---- */

static bool topic_attr_known(const char *name, bool fifo, bool creating)
{
  static const char *const names[] = {
      "DisplayName", "Policy", "DeliveryPolicy", "KmsMasterKeyId", "SignatureVersion",
      "TracingConfig", "ArchivePolicy", "DataProtectionPolicy", NULL};
  for (size_t i = 0; names[i] != NULL; i++)
    if (strcmp(names[i], name) == 0)
      return true;
  if (strcmp(name, "FifoTopic") == 0)
    return creating;
  if (strcmp(name, "ContentBasedDeduplication") == 0)
    return fifo;
  static const char *const who[] = {"HTTP", "HTTPS", "Lambda", "SQS", "Firehose",
                                    "Application", NULL};
  for (size_t i = 0; who[i] != NULL; i++) {
    if (!str_starts(name, who[i]))
      continue;
    const char *rest = name + strlen(who[i]);
    if (strcmp(rest, "SuccessFeedbackRoleArn") == 0 || strcmp(rest, "FailureFeedbackRoleArn") == 0 ||
        strcmp(rest, "SuccessFeedbackSampleRate") == 0)
      return true;
  }
  return false;
}

typedef struct topic_arg {
  mtopic *t;
  const char *name;
  char **sub_arns;     /* delete: the subscriptions to remove */
  size_t nsubs;
} topic_arg;

static int apply_topic_put(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  topic_arg *arg = c->arg;
  char *rec = queue__topic_record(arg->t);
  MDB_val k = {strlen(arg->t->name), arg->t->name};
  MDB_val v = {strlen(rec), rec};
  int mrc = mdb_put(txn, q->db_topics, &k, &v, 0);
  free(rec);
  return mrc ? lmdb_error(e, mrc, "write a topic") : 0;
}

static int apply_topic_delete(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  topic_arg *arg = c->arg;
  MDB_val k = {strlen(arg->name), (void *)arg->name};
  int mrc = mdb_del(txn, q->db_topics, &k, NULL);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    return lmdb_error(e, mrc, "delete a topic");
  for (size_t i = 0; i < arg->nsubs; i++) {
    MDB_val sk = {strlen(arg->sub_arns[i]), arg->sub_arns[i]};
    mrc = mdb_del(txn, q->db_subs, &sk, NULL);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
      return lmdb_error(e, mrc, "delete a subscription");
  }
  return 0;
}

static void topic_info(const mtopic *t, arena *a, queue_topic_info *out)
{
  out->name = arena_strdup(a, t->name);
  out->arn = arena_strdup(a, t->arn);
  out->fifo = t->fifo;
}

int queue_topic_create(queue_system *q, const char *name, const str_pair *attrs, size_t nattrs,
                       const str_pair *tags, size_t ntags, arena *a, queue_topic_info *out,
                       err *e)
{
  bool fifo_name = false;
  if (name == NULL || !topic_name_valid(name, &fifo_name))
    return err_set(e, ERR_INVALID, "Invalid parameter: Topic Name");
  bool fifo = false;
  for (size_t i = 0; i < nattrs; i++) {
    if (attrs[i].name == NULL || !topic_attr_known(attrs[i].name, fifo_name, true))
      return err_set(e, ERR_INVALID, "Invalid parameter: Attributes Reason: Unknown attribute "
                     "%s", attrs[i].name ? attrs[i].name : "");
    if (strcmp(attrs[i].name, "FifoTopic") == 0)
      fifo = attrs[i].value != NULL && str_ieq(attrs[i].value, "true");
  }
  if (fifo != fifo_name)
    return err_set(e, ERR_INVALID, "Invalid parameter: Fifo Topic names must end with .fifo and "
                   "must be made up of only uppercase and lowercase ASCII letters, numbers, "
                   "underscores, and hyphens, and must be between 1 and 256 characters long.");
  if (ntags > QUEUE_MAX_TAGS)
    return err_set(e, ERR_INVALID, "Could not complete request: tag quota of per resource "
                   "exceeded");
  pthread_mutex_lock(&q->meta_mu);
  sync_topic(q, name);
  mtopic *existing = queue__topic_find(q, name);
  if (existing != NULL) {
    topic_info(existing, a, out);
    pthread_mutex_unlock(&q->meta_mu);
    return 0;
  }
  mtopic *t = xcalloc(1, sizeof *t);
  t->name = queue__strdup(name);
  t->arn = xasprintf(ARN_SNS_PREFIX "%s", name);
  t->fifo = fifo;
  t->created_ms = queue__now_ms();
  t->attrs = json_object();
  t->tags = json_object();
  for (size_t i = 0; i < nattrs; i++)
    if (strcmp(attrs[i].name, "FifoTopic") != 0)
      json_object_set_new(t->attrs, attrs[i].name,
                          json_string(attrs[i].value ? attrs[i].value : ""));
  for (size_t i = 0; i < ntags; i++)
    json_object_set_new(t->tags, tags[i].name ? tags[i].name : "",
                        json_string(tags[i].value ? tags[i].value : ""));
  const char *cbd = json_string_value(json_object_get(t->attrs, "ContentBasedDeduplication"));
  t->content_dedup = cbd != NULL && str_ieq(cbd, "true");
  int rc = q->tstore->topic_put(q, t, true, e);
  if (rc == 0) {
    pthread_rwlock_wrlock(&q->mu);
    topic_insert(q, t);
    topic_info(t, a, out);
    pthread_rwlock_unlock(&q->mu);
  } else {
    queue__topic_free(t);
    if (rc == ERR_CONFLICT) { /* created by another node meanwhile */
      sync_topic(q, name);
      pthread_rwlock_rdlock(&q->mu);
      existing = queue__topic_find(q, name);
      if (existing != NULL) {
        topic_info(existing, a, out);
        rc = 0;
      }
      pthread_rwlock_unlock(&q->mu);
    }
  }
  pthread_mutex_unlock(&q->meta_mu);
  return rc;
}

int queue_topic_delete(queue_system *q, const char *arn, err *e)
{
  arena *a = arena_new();
  const char *name = NULL;
  int rc = queue__topic_name(arn, a, &name, e);
  if (rc != 0) {
    arena_free(a);
    return rc;
  }
  pthread_mutex_lock(&q->meta_mu);
  sync_topic(q, name);
  if (queue__topic_find(q, name) == NULL) {
    pthread_mutex_unlock(&q->meta_mu);
    arena_free(a);
    return 0;
  }
  topic_arg arg = {.name = name};
  arg.sub_arns = arena_alloc(a, (q->nsubs + 1) * sizeof *arg.sub_arns);
  for (size_t i = 0; i < q->nsubs; i++)
    if (strcmp(q->subs[i]->topic, name) == 0)
      arg.sub_arns[arg.nsubs++] = arena_strdup(a, q->subs[i]->arn);
  rc = q->tstore->topic_delete(q, name, arg.sub_arns, arg.nsubs, e);
  if (rc == 0) {
    pthread_rwlock_wrlock(&q->mu);
    topic_remove(q, name);
    for (size_t i = 0; i < arg.nsubs; i++)
      sub_remove(q, arg.sub_arns[i]);
    pthread_rwlock_unlock(&q->mu);
  }
  pthread_mutex_unlock(&q->meta_mu);
  arena_free(a);
  return rc;
}

int queue_topic_lookup(queue_system *q, const char *arn, arena *a, queue_topic_info *out,
                       err *e)
{
  const char *name = NULL;
  int rc = queue__topic_name(arn, a, &name, e);
  if (rc != 0)
    return rc;
  sync_read(q, name);
  pthread_rwlock_rdlock(&q->mu);
  mtopic *t = queue__topic_find(q, name);
  if (t != NULL)
    topic_info(t, a, out);
  pthread_rwlock_unlock(&q->mu);
  return t != NULL ? 0 : err_set(e, QUEUE_ERR_NO_TOPIC, "Topic does not exist");
}

int queue_topic_list(queue_system *q, const char *marker, size_t max, arena *a,
                     const char ***arns, size_t *n, const char **next, err *e)
{
  if (max == 0 || max > 100)
    max = 100;
  *n = 0;
  *next = NULL;
  sync_read(q, NULL);
  pthread_rwlock_rdlock(&q->mu);
  *arns = arena_alloc(a, (q->ntopics + 1) * sizeof **arns);
  for (size_t i = 0; i < q->ntopics; i++) {
    if (marker != NULL && strcmp(q->topics[i]->arn, marker) <= 0)
      continue;
    if (*n == max) {
      *next = arena_strdup(a, (*arns)[*n - 1]);
      break;
    }
    (*arns)[(*n)++] = arena_strdup(a, q->topics[i]->arn);
  }
  pthread_rwlock_unlock(&q->mu);
  return 0;
}

static const char *default_policy(arena *a, const char *arn)
{
  return arena_sprintf(
      a,
      "{\"Version\":\"2008-10-17\",\"Id\":\"__default_policy_ID\",\"Statement\":[{\"Sid\":"
      "\"__default_statement_ID\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"*\"},"
      "\"Action\":[\"SNS:GetTopicAttributes\",\"SNS:SetTopicAttributes\","
      "\"SNS:AddPermission\",\"SNS:RemovePermission\",\"SNS:DeleteTopic\",\"SNS:Subscribe\","
      "\"SNS:ListSubscriptionsByTopic\",\"SNS:Publish\"],\"Resource\":\"%s\",\"Condition\":"
      "{\"StringEquals\":{\"AWS:SourceOwner\":\"" QUEUE_ACCOUNT "\"}}}]}",
      arn);
}

static const char effective_delivery[] =
    "{\"http\":{\"defaultHealthyRetryPolicy\":{\"minDelayTarget\":20,\"maxDelayTarget\":20,"
    "\"numRetries\":3,\"numMaxDelayRetries\":0,\"numNoDelayRetries\":0,"
    "\"numMinDelayRetries\":0,\"backoffFunction\":\"linear\"},\"disableSubscriptionOverrides\":"
    "false,\"defaultRequestPolicy\":{\"headerContentType\":\"text/plain; charset=UTF-8\"}}}";

int queue_topic_attrs_get(queue_system *q, const char *arn, arena *a, str_pair **out,
                          size_t *n, err *e)
{
  const char *name = NULL;
  int rc = queue__topic_name(arn, a, &name, e);
  if (rc != 0)
    return rc;
  sync_read(q, name);
  pthread_rwlock_rdlock(&q->mu);
  mtopic *t = queue__topic_find(q, name);
  if (t == NULL) {
    pthread_rwlock_unlock(&q->mu);
    return err_set(e, QUEUE_ERR_NO_TOPIC, "Topic does not exist");
  }
  size_t confirmed = 0, pending = 0;
  for (size_t i = 0; i < q->nsubs; i++)
    if (strcmp(q->subs[i]->topic, name) == 0)
      (*(q->subs[i]->confirmed ? &confirmed : &pending))++;
  str_pair *p = arena_alloc(a, (json_object_size(t->attrs) + 12) * sizeof *p);
  size_t k = 0;
  p[k++] = (str_pair){"TopicArn", arena_strdup(a, t->arn)};
  p[k++] = (str_pair){"Owner", QUEUE_ACCOUNT};
  p[k++] = (str_pair){"SubscriptionsConfirmed", arena_sprintf(a, "%zu", confirmed)};
  p[k++] = (str_pair){"SubscriptionsPending", arena_sprintf(a, "%zu", pending)};
  p[k++] = (str_pair){"SubscriptionsDeleted", "0"};
  if (json_object_get(t->attrs, "Policy") == NULL)
    p[k++] = (str_pair){"Policy", default_policy(a, t->arn)};
  if (json_object_get(t->attrs, "DisplayName") == NULL)
    p[k++] = (str_pair){"DisplayName", ""};
  p[k++] = (str_pair){"EffectiveDeliveryPolicy", effective_delivery};
  if (t->fifo) {
    p[k++] = (str_pair){"FifoTopic", "true"};
    if (json_object_get(t->attrs, "ContentBasedDeduplication") == NULL)
      p[k++] = (str_pair){"ContentBasedDeduplication", "false"};
  }
  const char *key;
  json_t *val;
  json_object_foreach(t->attrs, key, val) {
    p[k++] = (str_pair){arena_strdup(a, key), arena_strdup(a, json_string_value(val))};
  }
  pthread_rwlock_unlock(&q->mu);
  *out = p;
  *n = k;
  return 0;
}

/* Runs an edit of a copy of a topic under meta_mu, commits, swaps it in. */
static int topic_edit(queue_system *q, const char *arn,
                      int (*edit)(mtopic *t, void *ctx, err *e), void *ctx, err *e)
{
  arena *a = arena_new();
  const char *name = NULL;
  int rc = queue__topic_name(arn, a, &name, e);
  if (rc != 0) {
    arena_free(a);
    return rc;
  }
  pthread_mutex_lock(&q->meta_mu);
  sync_topic(q, name);
  mtopic *t = queue__topic_find(q, name);
  if (t == NULL) {
    pthread_mutex_unlock(&q->meta_mu);
    arena_free(a);
    return err_set(e, QUEUE_ERR_NO_TOPIC, "Topic does not exist");
  }
  mtopic *copy = xcalloc(1, sizeof *copy);
  copy->name = queue__strdup(t->name);
  copy->arn = queue__strdup(t->arn);
  copy->fifo = t->fifo;
  copy->created_ms = t->created_ms;
  copy->attrs = json_deep_copy(t->attrs);
  copy->tags = json_deep_copy(t->tags);
  rc = edit(copy, ctx, e);
  const char *cbd = json_string_value(json_object_get(copy->attrs, "ContentBasedDeduplication"));
  copy->content_dedup = cbd != NULL && str_ieq(cbd, "true");
  if (rc == 0)
    rc = q->tstore->topic_put(q, copy, false, e);
  if (rc == 0) {
    pthread_rwlock_wrlock(&q->mu);
    topic_remove(q, name);
    topic_insert(q, copy);
    pthread_rwlock_unlock(&q->mu);
  } else {
    queue__topic_free(copy);
  }
  pthread_mutex_unlock(&q->meta_mu);
  arena_free(a);
  return rc;
}

typedef struct kv_ctx {
  const char *name;
  const char *value;
  const str_pair *pairs;
  const char *const *keys;
  size_t n;
} kv_ctx;

static int edit_topic_attr(mtopic *t, void *ctx, err *e)
{
  kv_ctx *k = ctx;
  if (!topic_attr_known(k->name, t->fifo, false))
    return err_set(e, ERR_INVALID, "Invalid parameter: AttributeName");
  json_object_set_new(t->attrs, k->name, json_string(k->value != NULL ? k->value : ""));
  return 0;
}

int queue_topic_attr_set(queue_system *q, const char *arn, const char *name, const char *value,
                         err *e)
{
  if (name == NULL)
    return err_set(e, ERR_INVALID, "Invalid parameter: AttributeName");
  kv_ctx k = {.name = name, .value = value};
  return topic_edit(q, arn, edit_topic_attr, &k, e);
}

static int edit_topic_tags_set(mtopic *t, void *ctx, err *e)
{
  kv_ctx *k = ctx;
  for (size_t i = 0; i < k->n; i++) {
    const char *key = k->pairs[i].name;
    if (key == NULL || *key == '\0' || strlen(key) > 128 ||
        (k->pairs[i].value != NULL && strlen(k->pairs[i].value) > 256))
      return err_set(e, ERR_INVALID, "Invalid parameter: Tags");
    json_object_set_new(t->tags, key, json_string(k->pairs[i].value ? k->pairs[i].value : ""));
  }
  if (json_object_size(t->tags) > QUEUE_MAX_TAGS)
    return err_set(e, ERR_INVALID, "Could not complete request: tag quota of per resource "
                   "exceeded");
  return 0;
}

static int edit_topic_tags_remove(mtopic *t, void *ctx, err *e)
{
  kv_ctx *k = ctx;
  for (size_t i = 0; i < k->n; i++)
    json_object_del(t->tags, k->keys[i]);
  return 0;
}

int queue_topic_tags_set(queue_system *q, const char *arn, const str_pair *tags, size_t n,
                         err *e)
{
  kv_ctx k = {.pairs = tags, .n = n};
  return topic_edit(q, arn, edit_topic_tags_set, &k, e);
}

int queue_topic_tags_remove(queue_system *q, const char *arn, const char *const *keys,
                            size_t n, err *e)
{
  kv_ctx k = {.keys = keys, .n = n};
  return topic_edit(q, arn, edit_topic_tags_remove, &k, e);
}

int queue_topic_tags_get(queue_system *q, const char *arn, arena *a, str_pair **out, size_t *n,
                         err *e)
{
  const char *name = NULL;
  int rc = queue__topic_name(arn, a, &name, e);
  if (rc != 0)
    return rc;
  sync_read(q, name);
  pthread_rwlock_rdlock(&q->mu);
  mtopic *t = queue__topic_find(q, name);
  if (t != NULL) {
    *n = 0;
    *out = arena_alloc(a, (json_object_size(t->tags) + 1) * sizeof **out);
    const char *key;
    json_t *val;
    json_object_foreach(t->tags, key, val) {
      (*out)[*n].name = arena_strdup(a, key);
      (*out)[*n].value = arena_strdup(a, json_string_value(val));
      (*n)++;
    }
  }
  pthread_rwlock_unlock(&q->mu);
  return t != NULL ? 0 : err_set(e, QUEUE_ERR_NO_TOPIC, "Resource does not exist");
}

/* ---- subscriptions ---- */

/* Validates a subscription attribute; *norm gets the value to store. */
static int sub_attr_check(const char *protocol, const char *name, const char *value,
                          arena *a, const char **norm, err *e)
{
  if (value == NULL)
    value = "";
  *norm = value;
  if (strcmp(name, "RawMessageDelivery") == 0) {
    if (strcmp(protocol, "lambda") == 0)
      return err_set(e, ERR_INVALID, "Invalid parameter: Attributes Reason: Delivery protocol "
                     "[lambda] does not support raw message delivery.");
    if (str_ieq(value, "true"))
      *norm = "true";
    else if (str_ieq(value, "false"))
      *norm = "false";
    else
      return err_set(e, ERR_INVALID, "Invalid parameter: Attributes Reason: "
                     "RawMessageDelivery: Invalid value [%s]. Must be true or false.", value);
    return 0;
  }
  if (strcmp(name, "FilterPolicy") == 0) {
    if (*value == '\0')
      return 0;
    queue_filter *f = NULL;
    int rc = queue_filter_new(value, &f, e);
    queue_filter_free(f);
    if (rc != 0)
      return err_wrap(e, "Invalid parameter: FilterPolicy");
    return 0;
  }
  if (strcmp(name, "FilterPolicyScope") == 0) {
    if (strcmp(value, "MessageAttributes") != 0 && strcmp(value, "MessageBody") != 0)
      return err_set(e, ERR_INVALID, "Invalid parameter: Attributes Reason: FilterPolicyScope: "
                     "Invalid value [%s]. Please use either MessageBody or MessageAttributes",
                     value);
    return 0;
  }
  if (strcmp(name, "RedrivePolicy") == 0 || strcmp(name, "DeliveryPolicy") == 0) {
    if (*value != '\0') {
      json_t *j = json_loads(value, 0, NULL);
      bool ok = json_is_object(j);
      json_decref(j);
      if (!ok)
        return err_set(e, ERR_INVALID, "Invalid parameter: %s: failed to parse JSON", name);
    }
    return 0;
  }
  if (strcmp(name, "SubscriptionRoleArn") == 0 || strcmp(name, "ReplayPolicy") == 0)
    return 0;
  (void)a;
  return err_set(e, ERR_INVALID, "Invalid parameter: AttributeName");
}

typedef struct sub_arg {
  msub *s;
  const char *arn;          /* delete */
  json_t *confirm;          /* an outbox entry to add with it */
} sub_arg;

static int apply_sub_put(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  sub_arg *arg = c->arg;
  char *rec = queue__sub_record(arg->s);
  MDB_val k = {strlen(arg->s->arn), arg->s->arn};
  MDB_val v = {strlen(rec), rec};
  int mrc = mdb_put(txn, q->db_subs, &k, &v, 0);
  free(rec);
  if (mrc != 0)
    return lmdb_error(e, mrc, "write a subscription");
  if (arg->confirm != NULL)
    return queue__outbox_put(q, c, txn, arg->confirm, e);
  return 0;
}

static int apply_sub_delete(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  sub_arg *arg = c->arg;
  MDB_val k = {strlen(arg->arn), (void *)arg->arn};
  int mrc = mdb_del(txn, q->db_subs, &k, NULL);
  return mrc && mrc != MDB_NOTFOUND ? lmdb_error(e, mrc, "delete a subscription") : 0;
}

static void sub_info(const msub *s, arena *a, queue_sub_info *out)
{
  out->arn = arena_strdup(a, s->confirmed ? s->arn : "PendingConfirmation");
  out->topic_arn = arena_sprintf(a, ARN_SNS_PREFIX "%s", s->topic);
  out->protocol = arena_strdup(a, s->protocol);
  out->endpoint = arena_strdup(a, s->endpoint);
  out->confirmed = s->confirmed;
}

static const char signature_placeholder[] =
    "dGFybjogbm90aWZpY2F0aW9ucyBhcmUgbm90IHNpZ25lZDsgdGhpcyBpcyBhIHBsYWNlaG9sZGVy";

/* The SubscriptionConfirmation delivery of a new HTTP subscription. */
static json_t *confirmation(queue_system *q, const msub *s, const char *topic_arn, arena *a)
{
  char id[37];
  uuid_v4(id);
  char ts[25];
  time_format_iso8601_ms(queue__now_ms(), ts);
  str_pair params[3] = {{"Action", "ConfirmSubscription"},
                        {"TopicArn", topic_arn},
                        {"Token", s->token}};
  char *url = queue__presign(q, a, params, 3);
  json_t *msg = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Type", "SubscriptionConfirmation",
      "MessageId", id, "Token", s->token, "TopicArn", topic_arn, "Message",
      arena_sprintf(a, "You have chosen to subscribe to the topic %s.\nTo confirm the "
                    "subscription, visit the SubscribeURL included in this message.", topic_arn),
      "SubscribeURL", url, "Timestamp", ts, "SignatureVersion", "1", "Signature",
      signature_placeholder, "SigningCertURL",
      arena_sprintf(a, "%s/_tarn/sns/SimpleNotificationService.pem", queue__endpoint(q, a)));
  char *body = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "sub", s->arn, "protocol",
                            s->protocol, "endpoint", s->endpoint, "type",
                            "SubscriptionConfirmation", "message_id", id, "topic", topic_arn,
                            "body", body);
  free(body);
  return entry;
}

int queue_sub_create(queue_system *q, const char *topic_arn, const char *protocol,
                     const char *endpoint, const str_pair *attrs, size_t nattrs, arena *a,
                     queue_sub_info *out, err *e)
{
  const char *topic = NULL;
  int rc = queue__topic_name(topic_arn, a, &topic, e);
  if (rc != 0)
    return rc;
  if (protocol == NULL || *protocol == '\0')
    return err_set(e, ERR_INVALID, "Invalid parameter: Protocol");
  bool http = strcmp(protocol, "http") == 0 || strcmp(protocol, "https") == 0;
  if (!http && strcmp(protocol, "sqs") != 0 && strcmp(protocol, "lambda") != 0)
    return err_set(e, ERR_INVALID, "Invalid parameter: Amazon SNS does not support this "
                   "protocol string: %s", protocol);
  if (endpoint == NULL || *endpoint == '\0')
    return err_set(e, ERR_INVALID, "Invalid parameter: Endpoint");
  if (strcmp(protocol, "sqs") == 0 && !str_starts(endpoint, "arn:aws:sqs:"))
    return err_set(e, ERR_INVALID, "Invalid parameter: SQS endpoint ARN");
  if (strcmp(protocol, "lambda") == 0 && !str_starts(endpoint, "arn:aws:lambda:"))
    return err_set(e, ERR_INVALID, "Invalid parameter: Lambda endpoint ARN");
  if (http && !str_starts(endpoint, arena_sprintf(a, "%s://", protocol)))
    return err_set(e, ERR_INVALID, "Invalid parameter: Endpoint must match the specified "
                   "protocol");
  if (http) {
    err why = {0};
    if (queue__endpoint_check(q, endpoint, &why) != 0)
      return err_set(e, ERR_INVALID, "Invalid parameter: Endpoint: %s", why.msg);
  }
  json_t *jattrs = json_object();
  for (size_t i = 0; i < nattrs; i++) {
    const char *norm = NULL;
    rc = sub_attr_check(protocol, attrs[i].name ? attrs[i].name : "", attrs[i].value, a, &norm,
                        e);
    if (rc != 0) {
      json_decref(jattrs);
      return rc;
    }
    if (*norm != '\0')
      json_object_set_new(jattrs, attrs[i].name, json_string(norm));
  }
  pthread_mutex_lock(&q->meta_mu);
  sync_topic(q, topic);
  mtopic *t = queue__topic_find(q, topic);
  if (t == NULL) {
    pthread_mutex_unlock(&q->meta_mu);
    json_decref(jattrs);
    return err_set(e, QUEUE_ERR_NO_TOPIC, "Topic does not exist");
  }
  for (size_t i = 0; i < q->nsubs; i++) {
    msub *s = q->subs[i];
    if (strcmp(s->topic, topic) == 0 && strcmp(s->protocol, protocol) == 0 &&
        strcmp(s->endpoint, endpoint) == 0) {
      sub_info(s, a, out);
      out->arn = arena_strdup(a, s->arn);
      pthread_mutex_unlock(&q->meta_mu);
      json_decref(jattrs);
      return 0;
    }
  }
  msub *s = xcalloc(1, sizeof *s);
  char id[37];
  uuid_v4(id);
  s->arn = xasprintf("%s:%s", t->arn, id);
  s->topic = queue__strdup(topic);
  s->protocol = queue__strdup(protocol);
  s->endpoint = queue__strdup(endpoint);
  s->attrs = jattrs;
  s->confirmed = !http;
  uint8_t tok[32];
  for (int i = 0; i < 4; i++)
    queue__be64_put(tok + 8 * i, queue__rand64());
  char hex[65];
  hex_encode(tok, sizeof tok, hex);
  s->token = queue__strdup(hex);
  sub_parse(s);
  sub_arg arg = {.s = s};
  if (http)
    arg.confirm = confirmation(q, s, t->arn, a);
  rc = q->tstore->sub_put(q, s, true, arg.confirm, e);
  json_decref(arg.confirm);
  if (rc == 0) {
    pthread_rwlock_wrlock(&q->mu);
    sub_insert(q, s);
    sub_info(s, a, out);
    out->arn = arena_strdup(a, s->arn);
    pthread_rwlock_unlock(&q->mu);
  } else {
    if (rc == ERR_CONFLICT) { /* the same subscription, made by another node meanwhile */
      sync_topic(q, topic);
      pthread_rwlock_rdlock(&q->mu);
      for (size_t i = 0; i < q->nsubs; i++) {
        msub *x = q->subs[i];
        if (strcmp(x->topic, topic) == 0 && strcmp(x->protocol, protocol) == 0 &&
            strcmp(x->endpoint, endpoint) == 0) {
          sub_info(x, a, out);
          out->arn = arena_strdup(a, x->arn);
          rc = 0;
          break;
        }
      }
      pthread_rwlock_unlock(&q->mu);
    }
    queue__sub_free(s);
  }
  pthread_mutex_unlock(&q->meta_mu);
  return rc;
}

/* Replaces subscription arn by an edited copy (meta_mu held). */
static int sub_replace(queue_system *q, msub *old, msub *copy, err *e)
{
  int rc = q->tstore->sub_put(q, copy, false, NULL, e);
  if (rc == 0) {
    pthread_rwlock_wrlock(&q->mu);
    char *arn = queue__strdup(old->arn);
    sub_remove(q, arn);
    free(arn);
    sub_insert(q, copy);
    pthread_rwlock_unlock(&q->mu);
  } else {
    queue__sub_free(copy);
  }
  return rc;
}

static msub *sub_copy(const msub *s)
{
  msub *c = xcalloc(1, sizeof *c);
  c->arn = queue__strdup(s->arn);
  c->topic = queue__strdup(s->topic);
  c->protocol = queue__strdup(s->protocol);
  c->endpoint = queue__strdup(s->endpoint);
  c->token = queue__strdup(s->token);
  c->confirmed = s->confirmed;
  c->attrs = json_deep_copy(s->attrs);
  return c;
}

int queue_sub_confirm(queue_system *q, const char *topic_arn, const char *token, arena *a,
                      queue_sub_info *out, err *e)
{
  const char *topic = NULL;
  int rc = queue__topic_name(topic_arn, a, &topic, e);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&q->meta_mu);
  sync_topic(q, topic);
  if (queue__topic_find(q, topic) == NULL) {
    pthread_mutex_unlock(&q->meta_mu);
    return err_set(e, QUEUE_ERR_NO_TOPIC, "Topic does not exist");
  }
  msub *found = NULL;
  for (size_t i = 0; i < q->nsubs && found == NULL; i++)
    if (strcmp(q->subs[i]->topic, topic) == 0 && token != NULL &&
        strcmp(q->subs[i]->token, token) == 0)
      found = q->subs[i];
  if (found == NULL) {
    pthread_mutex_unlock(&q->meta_mu);
    return err_set(e, QUEUE_ERR_TOKEN, "Invalid token");
  }
  if (found->confirmed) {
    sub_info(found, a, out);
    pthread_mutex_unlock(&q->meta_mu);
    return 0;
  }
  msub *copy = sub_copy(found);
  copy->confirmed = true;
  sub_parse(copy);
  rc = sub_replace(q, found, copy, e);
  if (rc == 0)
    sub_info(copy, a, out);
  pthread_mutex_unlock(&q->meta_mu);
  return rc;
}

int queue_sub_delete(queue_system *q, const char *sub_arn, err *e)
{
  if (sub_arn == NULL || !str_starts(sub_arn, "arn:aws:sns:"))
    return err_set(e, ERR_INVALID, "Invalid parameter: SubscriptionArn");
  pthread_mutex_lock(&q->meta_mu);
  arena *a = arena_new();
  sync_topic(q, sub_topic(sub_arn, a));
  arena_free(a);
  msub *s = sub_find(q, sub_arn);
  if (s == NULL) {
    pthread_mutex_unlock(&q->meta_mu);
    return err_set(e, QUEUE_ERR_NO_SUB, "Subscription does not exist");
  }
  int rc = q->tstore->sub_delete(q, s, e);
  if (rc == 0) {
    pthread_rwlock_wrlock(&q->mu);
    sub_remove(q, sub_arn);
    pthread_rwlock_unlock(&q->mu);
  }
  pthread_mutex_unlock(&q->meta_mu);
  return rc;
}

int queue_sub_list(queue_system *q, const char *topic_arn, const char *marker, size_t max,
                   arena *a, queue_sub_info **out, size_t *n, const char **next, err *e)
{
  const char *topic = NULL;
  if (topic_arn != NULL) {
    int rc = queue__topic_name(topic_arn, a, &topic, e);
    if (rc != 0)
      return rc;
  }
  if (max == 0 || max > 100)
    max = 100;
  *n = 0;
  *next = NULL;
  sync_read(q, topic);
  pthread_rwlock_rdlock(&q->mu);
  if (topic != NULL && queue__topic_find(q, topic) == NULL) {
    pthread_rwlock_unlock(&q->mu);
    return err_set(e, QUEUE_ERR_NO_TOPIC, "Topic does not exist");
  }
  *out = arena_alloc(a, (q->nsubs + 1) * sizeof **out);
  for (size_t i = 0; i < q->nsubs; i++) {
    msub *s = q->subs[i];
    if (topic != NULL && strcmp(s->topic, topic) != 0)
      continue;
    if (marker != NULL && strcmp(s->arn, marker) <= 0)
      continue;
    if (*n == max) {
      *next = arena_strdup(a, q->subs[i - 1]->arn);
      break;
    }
    sub_info(s, a, &(*out)[(*n)++]);
  }
  pthread_rwlock_unlock(&q->mu);
  return 0;
}

int queue_sub_attrs_get(queue_system *q, const char *sub_arn, arena *a, str_pair **out,
                        size_t *n, err *e)
{
  sync_read(q, sub_topic(sub_arn, a));
  pthread_rwlock_rdlock(&q->mu);
  msub *s = sub_arn != NULL ? sub_find(q, sub_arn) : NULL;
  if (s == NULL) {
    pthread_rwlock_unlock(&q->mu);
    return err_set(e, QUEUE_ERR_NO_SUB, "Subscription does not exist");
  }
  str_pair *p = arena_alloc(a, (json_object_size(s->attrs) + 12) * sizeof *p);
  size_t k = 0;
  p[k++] = (str_pair){"SubscriptionArn", arena_strdup(a, s->arn)};
  p[k++] = (str_pair){"TopicArn", arena_sprintf(a, ARN_SNS_PREFIX "%s", s->topic)};
  p[k++] = (str_pair){"Owner", QUEUE_ACCOUNT};
  p[k++] = (str_pair){"Protocol", arena_strdup(a, s->protocol)};
  p[k++] = (str_pair){"Endpoint", arena_strdup(a, s->endpoint)};
  p[k++] = (str_pair){"ConfirmationWasAuthenticated", s->confirmed ? "true" : "false"};
  p[k++] = (str_pair){"PendingConfirmation", s->confirmed ? "false" : "true"};
  p[k++] = (str_pair){"SubscriptionPrincipal", "arn:aws:iam::" QUEUE_ACCOUNT ":user/tarn"};
  if (json_object_get(s->attrs, "RawMessageDelivery") == NULL)
    p[k++] = (str_pair){"RawMessageDelivery", "false"};
  if (json_object_get(s->attrs, "FilterPolicy") != NULL &&
      json_object_get(s->attrs, "FilterPolicyScope") == NULL)
    p[k++] = (str_pair){"FilterPolicyScope", "MessageAttributes"};
  const char *key;
  json_t *val;
  json_object_foreach(s->attrs, key, val) {
    p[k++] = (str_pair){arena_strdup(a, key), arena_strdup(a, json_string_value(val))};
  }
  pthread_rwlock_unlock(&q->mu);
  *out = p;
  *n = k;
  return 0;
}

int queue_sub_attr_set(queue_system *q, const char *sub_arn, const char *name,
                       const char *value, err *e)
{
  if (name == NULL)
    return err_set(e, ERR_INVALID, "Invalid parameter: AttributeName");
  pthread_mutex_lock(&q->meta_mu);
  arena *a = arena_new();
  sync_topic(q, sub_topic(sub_arn, a));
  msub *s = sub_arn != NULL ? sub_find(q, sub_arn) : NULL;
  if (s == NULL) {
    pthread_mutex_unlock(&q->meta_mu);
    arena_free(a);
    return err_set(e, QUEUE_ERR_NO_SUB, "Subscription does not exist");
  }
  const char *norm = NULL;
  int rc = sub_attr_check(s->protocol, name, value, a, &norm, e);
  if (rc == 0) {
    msub *copy = sub_copy(s);
    if (*norm == '\0')
      json_object_del(copy->attrs, name);
    else
      json_object_set_new(copy->attrs, name, json_string(norm));
    sub_parse(copy);
    rc = sub_replace(q, s, copy, e);
  }
  arena_free(a);
  pthread_mutex_unlock(&q->meta_mu);
  return rc;
}

/* ---- the LMDB topic store ---- */

static int lmdb_topic_put(queue_system *q, const mtopic *t, bool create, err *e)
{
  (void)create;
  topic_arg arg = {.t = (mtopic *)t};
  qchange c;
  queue__change_init(&c, apply_topic_put, &arg);
  return queue__commit_run(q, &c, e);
}

static int lmdb_topic_delete(queue_system *q, const char *name, char *const *subs, size_t nsubs,
                             err *e)
{
  topic_arg arg = {.name = name, .sub_arns = (char **)subs, .nsubs = nsubs};
  qchange c;
  queue__change_init(&c, apply_topic_delete, &arg);
  return queue__commit_run(q, &c, e);
}

static int lmdb_sub_put(queue_system *q, const msub *s, bool create, json_t *confirm, err *e)
{
  (void)create;
  sub_arg arg = {.s = (msub *)s, .confirm = confirm};
  qchange c;
  queue__change_init(&c, apply_sub_put, &arg);
  return queue__commit_run(q, &c, e);
}

static int lmdb_sub_delete(queue_system *q, const msub *s, err *e)
{
  sub_arg arg = {.arn = s->arn};
  qchange c;
  queue__change_init(&c, apply_sub_delete, &arg);
  return queue__commit_run(q, &c, e);
}

const topic_store queue__lmdb_topics = {
    .refresh = NULL,
    .topic_put = lmdb_topic_put,
    .topic_delete = lmdb_topic_delete,
    .sub_put = lmdb_sub_put,
    .sub_delete = lmdb_sub_delete,
    .publish = queue__lmdb_publish,
};

/* ---- for publish.c and deliver.c ---- */

const char *queue__signature_placeholder(void)
{
  return signature_placeholder;
}
