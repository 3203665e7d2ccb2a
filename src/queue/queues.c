/* queue/queues.c -- queues themselves: names, attributes, tags, create,
 * delete, purge, listings, and the in-memory cache of them.
 *
 * Why a cache: every message operation needs the queue's id and settings;
 * reading and parsing its LMDB record each time would cost more than the
 * operation. The record (db_queues, JSON) stays the truth: the cache is
 * loaded from it at open and changed only after a commit succeeded.
 *
 * Invariants:
 *   (1) Metadata changes (create, delete, attributes, tags) run one at a
 *       time under meta_mu: check against the cache, commit, then update the
 *       cache, so the cache never runs ahead of the disk.
 *   (2) A queue id is never reused; db_qids holds the live ones, so a send
 *       racing a delete cannot leave a message under a dead id.
 *   (3) Attribute values are validated and normalised before they are
 *       stored (numbers as decimal, booleans "true"/"false", RedrivePolicy as
 *       compact JSON), so an idempotent CreateQueue compares normal forms.
 *   (4) The store (q->store: LMDB or PostgreSQL) writes; this file decides.
 *       With a shared store (PostgreSQL) the cache may lag another node's
 *       change: a metadata change first reloads it, a lookup that misses
 *       reloads the name, listings reload everything, and an update whose
 *       record another node changed meanwhile is redone on the new record.
 *
 * Start reading at queue_create().
 */
#include "internal.h"

#include "base/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- attribute definitions ---- */

enum akind { A_INT, A_BOOL, A_REDRIVE, A_STRING, A_ENUM };
enum { F_FIFO_ONLY = 1, F_CREATE_ONLY = 2 };

typedef struct attr_def {
  const char *name;
  enum akind kind;
  long min;
  long max;
  const char *def;       /* the default, or NULL when absent unless set */
  unsigned flags;
  const char *enums[3];
} attr_def;

static const attr_def defs[] = {
    {"VisibilityTimeout", A_INT, 0, QUEUE_MAX_VISIBILITY, "30", 0, {0}},
    {"MaximumMessageSize", A_INT, 1024, QUEUE_MAX_MESSAGE, "262144", 0, {0}},
    {"MessageRetentionPeriod", A_INT, 60, 1209600, "345600", 0, {0}},
    {"DelaySeconds", A_INT, 0, QUEUE_MAX_DELAY, "0", 0, {0}},
    {"ReceiveMessageWaitTimeSeconds", A_INT, 0, QUEUE_MAX_WAIT_SECONDS, "0", 0, {0}},
    {"Policy", A_STRING, 0, 0, NULL, 0, {0}},
    {"RedrivePolicy", A_REDRIVE, 0, 0, NULL, 0, {0}},
    {"RedriveAllowPolicy", A_STRING, 0, 0, NULL, 0, {0}},
    {"KmsMasterKeyId", A_STRING, 0, 0, NULL, 0, {0}},
    {"KmsDataKeyReusePeriodSeconds", A_INT, 60, 86400, NULL, 0, {0}},
    {"SqsManagedSseEnabled", A_BOOL, 0, 0, "false", 0, {0}},
    {"FifoQueue", A_BOOL, 0, 0, NULL, F_CREATE_ONLY, {0}},
    {"ContentBasedDeduplication", A_BOOL, 0, 0, "false", F_FIFO_ONLY, {0}},
    {"DeduplicationScope", A_ENUM, 0, 0, "queue", F_FIFO_ONLY, {"messageGroup", "queue", NULL}},
    {"FifoThroughputLimit", A_ENUM, 0, 0, "perQueue", F_FIFO_ONLY,
     {"perQueue", "perMessageGroupId", NULL}},
};

static const attr_def *def_find(const char *name)
{
  for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
    if (strcmp(defs[i].name, name) == 0)
      return &defs[i];
  return NULL;
}

static bool parse_long(const char *s, long *out)
{
  if (s == NULL || *s == '\0')
    return false;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  *out = v;
  return true;
}

static bool valid_name(const char *name, bool *fifo)
{
  size_t n = strlen(name);
  if (n == 0 || n > QUEUE_NAME_MAX)
    return false;
  *fifo = n > 5 && strcmp(name + n - 5, ".fifo") == 0;
  size_t end = *fifo ? n - 5 : n;
  for (size_t i = 0; i < end; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok)
      return false;
  }
  return end > 0;
}

int queue_ref_name(const char *ref, arena *a, const char **name, err *e)
{
  if (ref == NULL || *ref == '\0')
    return err_set(e, ERR_INVALID, "the queue is not named");
  const char *n = ref;
  if (str_starts(ref, "arn:")) {
    /* arn:aws:sqs:REGION:ACCOUNT:NAME */
    const char *p = ref;
    int colons = 0;
    for (; *p != '\0' && colons < 5; p++)
      if (*p == ':')
        colons++;
    if (colons < 5 || !str_starts(ref, "arn:aws:sqs:"))
      return err_set(e, ERR_INVALID, "'%s' is not a queue ARN", ref);
    n = p;
  } else if (strstr(ref, "://") != NULL) {
    const char *path = strchr(strstr(ref, "://") + 3, '/');
    if (path == NULL)
      return err_set(e, ERR_INVALID, "'%s' is not a queue URL", ref);
    const char *last = strrchr(path, '/');
    n = last + 1;
    if (last == path)
      return err_set(e, ERR_INVALID, "'%s' is not a queue URL", ref);
  }
  bool fifo;
  if (!valid_name(n, &fifo))
    return err_set(e, QUEUE_ERR_NO_QUEUE, "The specified queue does not exist.");
  *name = arena_strdup(a, n);
  return 0;
}

/* ---- the cache ---- */

static int mq_cmp_key(const void *key, const void *elem)
{
  const mqueue *const *m = elem;
  return strcmp(key, (*m)->name);
}

mqueue *queue__find(queue_system *q, const char *name)
{
  if (q->nqueues == 0)
    return NULL;
  mqueue **p = bsearch(name, q->queues, q->nqueues, sizeof *q->queues, mq_cmp_key);
  return p != NULL ? *p : NULL;
}

static size_t find_slot(queue_system *q, const char *name)
{
  size_t lo = 0, hi = q->nqueues;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (strcmp(q->queues[mid]->name, name) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void cache_insert(queue_system *q, mqueue *m)
{
  if (q->nqueues == q->capqueues) {
    size_t cap = q->capqueues ? q->capqueues * 2 : 16;
    mqueue **p = xrealloc(q->queues, cap * sizeof *p);
    q->queues = p;
    q->capqueues = cap;
  }
  size_t i = find_slot(q, m->name);
  if (q->nqueues > i)
    memmove(q->queues + i + 1, q->queues + i, (q->nqueues - i) * sizeof *q->queues);
  q->queues[i] = m;
  q->nqueues++;
}

mqueue *queue__mq_free(mqueue *m)
{
  if (m == NULL)
    return NULL;
  free(m->name);
  free(m->dlq_name);
  json_decref(m->attrs);
  json_decref(m->tags);
  free(m);
  return NULL;
}

static void cache_remove(queue_system *q, const char *name)
{
  size_t i = find_slot(q, name);
  if (i < q->nqueues && strcmp(q->queues[i]->name, name) == 0) {
    queue__mq_free(q->queues[i]);
    if (q->nqueues > i + 1)
      memmove(q->queues + i, q->queues + i + 1, (q->nqueues - i - 1) * sizeof *q->queues);
    q->nqueues--;
  }
}

void queue__cache_set(queue_system *q, const char *name, mqueue *m)
{
  pthread_rwlock_wrlock(&q->mu);
  cache_remove(q, name);
  if (m != NULL)
    cache_insert(q, m);
  pthread_rwlock_unlock(&q->mu);
}

void queue__cache_replace(queue_system *q, mqueue **ms, size_t n)
{
  pthread_rwlock_wrlock(&q->mu);
  queue__queues_free(q);
  for (size_t i = 0; i < n; i++)
    if (queue__find(q, ms[i]->name) == NULL)
      cache_insert(q, ms[i]);
    else
      queue__mq_free(ms[i]);
  pthread_rwlock_unlock(&q->mu);
}

/* Reloads the cache from a shared store (no-op for LMDB), meta_mu held
 * (invariant 1: the cache changes under it, so a queue found under meta_mu
 * stays). A failure keeps the cache as it was: the caller answers from it. */
static void refresh_locked(queue_system *q, const char *name)
{
  err ignore = {0};
  if (q->store->refresh != NULL)
    q->store->refresh(q, name, &ignore);
}

static void refresh(queue_system *q, const char *name)
{
  if (q->store->refresh == NULL)
    return;
  pthread_mutex_lock(&q->meta_mu);
  refresh_locked(q, name);
  pthread_mutex_unlock(&q->meta_mu);
}

static const char *attr_str(json_t *attrs, const char *name)
{
  json_t *v = json_object_get(attrs, name);
  if (json_is_string(v))
    return json_string_value(v);
  const attr_def *d = def_find(name);
  return d != NULL ? d->def : NULL;
}

static uint32_t attr_u32(json_t *attrs, const char *name)
{
  long v = 0;
  parse_long(attr_str(attrs, name), &v);
  return (uint32_t)v;
}

/* Fills the parsed fields from m->attrs. */
static void mq_parse(mqueue *m)
{
  m->visibility = attr_u32(m->attrs, "VisibilityTimeout");
  m->delay = attr_u32(m->attrs, "DelaySeconds");
  m->wait = attr_u32(m->attrs, "ReceiveMessageWaitTimeSeconds");
  m->retention = attr_u32(m->attrs, "MessageRetentionPeriod");
  m->max_size = attr_u32(m->attrs, "MaximumMessageSize");
  const char *cbd = attr_str(m->attrs, "ContentBasedDeduplication");
  m->content_dedup = m->fifo && cbd != NULL && strcmp(cbd, "true") == 0;
  free(m->dlq_name);
  m->dlq_name = NULL;
  m->max_receive = 0;
  const char *rp = attr_str(m->attrs, "RedrivePolicy");
  if (rp != NULL && *rp) {
    json_t *j = json_loads(rp, 0, NULL);
    const char *arn = json_string_value(json_object_get(j, "deadLetterTargetArn"));
    json_t *mrc = json_object_get(j, "maxReceiveCount");
    const char *colon = arn != NULL ? strrchr(arn, ':') : NULL;
    if (colon != NULL && json_is_integer(mrc)) {
      m->dlq_name = queue__strdup(colon + 1);
      m->max_receive = (uint32_t)json_integer_value(mrc);
    }
    json_decref(j);
  }
}

mqueue *queue__mq_from_record(const char *name, size_t nlen, const char *rec, size_t len)
{
  json_t *j = json_loadb(rec, len, 0, NULL);
  if (j == NULL)
    return NULL;
  mqueue *m = xcalloc(1, sizeof *m);
  m->name = xstrndup(name, nlen);
  m->id = (uint64_t)json_integer_value(json_object_get(j, "id"));
  m->fifo = json_is_true(json_object_get(j, "fifo"));
  m->created_ms = json_integer_value(json_object_get(j, "created"));
  m->modified_ms = json_integer_value(json_object_get(j, "modified"));
  m->attrs = json_incref(json_object_get(j, "attrs"));
  m->tags = json_incref(json_object_get(j, "tags"));
  if (!json_is_object(m->attrs)) {
    json_decref(m->attrs);
    m->attrs = json_object();
  }
  if (!json_is_object(m->tags)) {
    json_decref(m->tags);
    m->tags = json_object();
  }
  json_decref(j);
  mq_parse(m);
  return m;
}

char *queue__mq_record(const mqueue *m)
{
  json_t *j = json_pack("{s:I, s:b, s:I, s:I, s:O, s:O}", "id", (json_int_t)m->id, "fifo",
                        m->fifo, "created", (json_int_t)m->created_ms, "modified",
                        (json_int_t)m->modified_ms, "attrs", m->attrs, "tags", m->tags);
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (s == NULL)
    mem_out_of_memory();
  return s;
}

int queue__queues_load(queue_system *q, MDB_txn *txn, err *e)
{
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, q->db_queues, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "read the queues");
  MDB_val k, v;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    mqueue *m = queue__mq_from_record(k.mv_data, k.mv_size, v.mv_data, v.mv_size);
    if (m == NULL) {
      mdb_cursor_close(cur);
      return err_set(e, ERR_INTERNAL, "damaged record of queue '%.*s'", (int)k.mv_size,
                     (const char *)k.mv_data);
    }
    cache_insert(q, m);
  }
  mdb_cursor_close(cur);
  return 0;
}

void queue__queues_free(queue_system *q)
{
  for (size_t i = 0; i < q->nqueues; i++)
    queue__mq_free(q->queues[i]);
  free(q->queues);
  q->queues = NULL;
  q->nqueues = q->capqueues = 0;
}

static void snap_fill(const mqueue *m, qsnap *out)
{
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", m->name);
  out->id = m->id;
  out->fifo = m->fifo;
  out->visibility = m->visibility;
  out->delay = m->delay;
  out->wait = m->wait;
  out->retention = m->retention;
  out->max_size = m->max_size;
  out->content_dedup = m->content_dedup;
  if (m->dlq_name != NULL)
    snprintf(out->dlq_name, sizeof out->dlq_name, "%s", m->dlq_name);
  out->max_receive = m->max_receive;
}

int queue__snap_name(queue_system *q, const char *name, qsnap *out, err *e)
{
  for (int pass = 0; pass < 2; pass++) {
    pthread_rwlock_rdlock(&q->mu);
    mqueue *m = queue__find(q, name);
    if (m != NULL)
      snap_fill(m, out);
    pthread_rwlock_unlock(&q->mu);
    if (m != NULL)
      return 0;
    if (pass == 0 && q->store->refresh == NULL)
      break;
    if (pass == 0)
      refresh(q, name); /* (4): created on another node */
  }
  return err_set(e, QUEUE_ERR_NO_QUEUE, "The specified queue does not exist.");
}

int queue__snap(queue_system *q, const char *ref, qsnap *out, err *e)
{
  arena *a = arena_new();
  const char *name = NULL;
  int rc = queue_ref_name(ref, a, &name, e);
  if (rc == 0)
    rc = queue__snap_name(q, name, out, e);
  arena_free(a);
  return rc;
}

bool queue__qid_live(queue_system *q, MDB_txn *txn, uint64_t qid)
{
  uint8_t b[8];
  queue__be64_put(b, qid);
  MDB_val k = {8, b};
  MDB_val v;
  return mdb_get(txn, q->db_qids, &k, &v) == 0;
}

int queue__delete_prefix(MDB_txn *txn, MDB_dbi db, uint64_t qid, err *e)
{
  uint8_t p[8];
  queue__be64_put(p, qid);
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, db, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  for (;;) {
    MDB_val k = {8, p};
    MDB_val v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND || k.mv_size < 8 || memcmp(k.mv_data, p, 8) != 0) {
      mrc = 0;
      break;
    }
    if (mrc != 0 || (mrc = mdb_cursor_del(cur, 0)) != 0)
      break;
  }
  mdb_cursor_close(cur);
  return mrc ? lmdb_error(e, mrc, "delete messages") : 0;
}

/* ---- attribute validation ---- */

/* Validates one settable attribute and returns its normal form (arena). */
static int attr_normalise(queue_system *q, const char *name, const char *value, bool fifo,
                          bool creating, arena *a, const char **out, err *e)
{
  const attr_def *d = def_find(name);
  if (d == NULL)
    return err_set(e, QUEUE_ERR_ATTR_NAME, "Unknown Attribute %s.", name);
  if ((d->flags & F_FIFO_ONLY) && !fifo)
    return err_set(e, QUEUE_ERR_ATTR_NAME, "Unknown Attribute %s.", name);
  if ((d->flags & F_CREATE_ONLY) && !creating)
    return err_set(e, QUEUE_ERR_ATTR_NAME, "Attribute %s can only be set when the queue is "
                   "created.", name);
  if (value == NULL)
    value = "";
  switch (d->kind) {
  case A_INT: {
    long v;
    if (!parse_long(value, &v) || v < d->min || v > d->max)
      return err_set(e, ERR_INVALID, "Invalid value for the parameter %s.", name);
    *out = arena_sprintf(a, "%ld", v);
    return 0;
  }
  case A_BOOL:
    if (str_ieq(value, "true"))
      *out = "true";
    else if (str_ieq(value, "false"))
      *out = "false";
    else
      return err_set(e, ERR_INVALID, "Invalid value for the parameter %s.", name);
    return 0;
  case A_ENUM:
    for (size_t i = 0; d->enums[i] != NULL; i++)
      if (strcmp(value, d->enums[i]) == 0) {
        *out = d->enums[i];
        return 0;
      }
    return err_set(e, ERR_INVALID, "Invalid value for the parameter %s.", name);
  case A_STRING:
    *out = arena_strdup(a, value);
    return 0;
  case A_REDRIVE: {
    if (*value == '\0') {
      *out = "";
      return 0;
    }
    json_t *j = json_loads(value, 0, NULL);
    const char *arn = json_string_value(json_object_get(j, "deadLetterTargetArn"));
    json_t *mrc = json_object_get(j, "maxReceiveCount");
    long count = 0;
    bool ok = json_is_object(j) && arn != NULL;
    if (json_is_integer(mrc))
      count = (long)json_integer_value(mrc);
    else if (!json_is_string(mrc) || !parse_long(json_string_value(mrc), &count))
      ok = false;
    const char *dlq = NULL;
    err ignore = {0};
    if (ok && queue_ref_name(arn, a, &dlq, &ignore) != 0)
      ok = false;
    char *arn_copy = ok ? arena_strdup(a, arn) : NULL;
    json_decref(j);
    if (!ok)
      return err_set(e, ERR_INVALID, "Value %s for parameter RedrivePolicy is invalid. Reason: "
                     "Redrive policy is not a valid JSON map with deadLetterTargetArn and "
                     "maxReceiveCount.", value);
    if (count < 1 || count > 1000)
      return err_set(e, ERR_INVALID, "Value %s for parameter RedrivePolicy is invalid. Reason: "
                     "Invalid value for maxReceiveCount: %ld, valid values are from 1 to 1000 "
                     "both inclusive.", value, count);
    mqueue *target = queue__find(q, dlq);  /* meta_mu held: the cache is stable */
    if (target == NULL)
      return err_set(e, ERR_INVALID, "Value %s for parameter RedrivePolicy is invalid. Reason: "
                     "Dead letter target does not exist.", value);
    if (target->fifo != fifo)
      return err_set(e, ERR_INVALID, "Value %s for parameter RedrivePolicy is invalid. Reason: "
                     "Dead-letter queue must be same type of queue as the source.", value);
    json_t *n = json_pack("{s:s, s:I}", "deadLetterTargetArn", arn_copy, "maxReceiveCount",
                          (json_int_t)count);
    char *s = json_dumps(n, JSON_COMPACT);
    *out = arena_strdup(a, s);
    free(s);
    json_decref(n);
    return 0;
  }
  }
  return err_set(e, ERR_INTERNAL, "unknown attribute kind");
}

static int tags_check(const str_pair *tags, size_t n, err *e)
{
  if (n > QUEUE_MAX_TAGS)
    return err_set(e, ERR_INVALID, "Too many tags added for queue. Maximum is %d.",
                   QUEUE_MAX_TAGS);
  for (size_t i = 0; i < n; i++) {
    size_t kl = tags[i].name ? strlen(tags[i].name) : 0;
    size_t vl = tags[i].value ? strlen(tags[i].value) : 0;
    if (kl == 0 || kl > 128)
      return err_set(e, ERR_INVALID, "Tag keys must be between 1 and 128 characters in length.");
    if (vl > 256)
      return err_set(e, ERR_INVALID, "Tag values may only be up to 256 characters in length.");
    if (str_starts(tags[i].name, "aws:"))
      return err_set(e, ERR_INVALID, "Tag keys must not start with 'aws:'.");
  }
  return 0;
}

/* ---- changes ---- */

typedef struct meta_arg {
  const char *name;
  mqueue *m;              /* the new state (create, update) */
  uint64_t id;            /* delete, purge */
} meta_arg;

static int put_record(queue_system *q, MDB_txn *txn, const mqueue *m, unsigned flags, err *e)
{
  char *rec = queue__mq_record(m);
  MDB_val k = {strlen(m->name), m->name};
  MDB_val v = {strlen(rec), rec};
  int mrc = mdb_put(txn, q->db_queues, &k, &v, flags);
  free(rec);
  if (mrc == MDB_KEYEXIST)
    return err_set(e, QUEUE_ERR_QUEUE_EXISTS, "A queue already exists with the same name and "
                   "a different value for attribute(s)");
  return mrc ? lmdb_error(e, mrc, "write a queue") : 0;
}

static int apply_create(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  meta_arg *arg = c->arg;
  uint64_t id = queue__counter_next(q, txn, "qid", &q->next_qid, e);
  if (id == 0)
    return e->code;
  arg->m->id = id;
  int rc = put_record(q, txn, arg->m, MDB_NOOVERWRITE, e);
  if (rc != 0)
    return rc;
  uint8_t b[8];
  queue__be64_put(b, id);
  MDB_val k = {8, b};
  MDB_val v = {strlen(arg->m->name), arg->m->name};
  int mrc = mdb_put(txn, q->db_qids, &k, &v, 0);
  return mrc ? lmdb_error(e, mrc, "write a queue id") : 0;
}

static int apply_update(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  meta_arg *arg = c->arg;
  return put_record(q, txn, arg->m, 0, e);
}

static int apply_delete(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  meta_arg *arg = c->arg;
  MDB_val k = {strlen(arg->name), (void *)arg->name};
  int mrc = mdb_del(txn, q->db_queues, &k, NULL);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    return lmdb_error(e, mrc, "delete a queue");
  uint8_t b[8];
  queue__be64_put(b, arg->id);
  MDB_val ik = {8, b};
  mrc = mdb_del(txn, q->db_qids, &ik, NULL);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    return lmdb_error(e, mrc, "delete a queue id");
  int rc = queue__delete_prefix(txn, q->db_msgs, arg->id, e);
  if (rc == 0)
    rc = queue__delete_prefix(txn, q->db_bodies, arg->id, e);
  if (rc == 0)
    rc = queue__delete_prefix(txn, q->db_vis, arg->id, e);
  if (rc == 0)
    rc = queue__delete_prefix(txn, q->db_dedup, arg->id, e);
  if (rc == 0)
    queue__note(c, NOTE_WAKE, arg->id, UINT64_MAX);
  return rc;
}

static int apply_purge(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  meta_arg *arg = c->arg;
  if (!queue__qid_live(q, txn, arg->id))
    return err_set(e, QUEUE_ERR_NO_QUEUE, "The specified queue does not exist.");
  int rc = queue__delete_prefix(txn, q->db_msgs, arg->id, e);
  if (rc == 0)
    rc = queue__delete_prefix(txn, q->db_bodies, arg->id, e);
  if (rc == 0)
    rc = queue__delete_prefix(txn, q->db_vis, arg->id, e);
  return rc;
}

/* ---- the LMDB store's metadata changes (queue__lmdb_store) ---- */

static int lmdb_run(queue_system *q, qchange_fn apply, const mqueue *m, err *e)
{
  meta_arg arg = {.name = m->name, .m = (mqueue *)m, .id = m->id};
  qchange c;
  queue__change_init(&c, apply, &arg);
  return queue__commit_run(q, &c, e);
}

int queue__lmdb_create(queue_system *q, mqueue *m, err *e)
{
  return lmdb_run(q, apply_create, m, e);
}

int queue__lmdb_update(queue_system *q, const mqueue *old, mqueue *m, err *e)
{
  (void)old; /* meta_mu held: this node is the only writer */
  return lmdb_run(q, apply_update, m, e);
}

int queue__lmdb_remove(queue_system *q, const mqueue *m, err *e)
{
  return lmdb_run(q, apply_delete, m, e);
}

int queue__lmdb_purge(queue_system *q, const mqueue *m, err *e)
{
  return lmdb_run(q, apply_purge, m, e);
}

/* ---- the API ---- */

static void info_fill(const mqueue *m, arena *a, queue_info *out)
{
  memset(out, 0, sizeof *out);
  out->name = arena_strdup(a, m->name);
  out->arn = arena_sprintf(a, ARN_SQS_PREFIX "%s", m->name);
  out->fifo = m->fifo;
  out->visibility_timeout = m->visibility;
  out->delay_seconds = m->delay;
  out->receive_wait_seconds = m->wait;
  out->retention_seconds = m->retention;
  out->max_message_size = m->max_size;
  if (m->dlq_name != NULL)
    out->dlq_arn = arena_sprintf(a, ARN_SQS_PREFIX "%s", m->dlq_name);
  out->max_receive_count = m->max_receive;
}

int queue_lookup(queue_system *q, const char *ref, arena *a, queue_info *out, err *e)
{
  const char *name = NULL;
  int rc = queue_ref_name(ref, a, &name, e);
  if (rc != 0)
    return rc;
  for (int pass = 0; pass < 2; pass++) {
    pthread_rwlock_rdlock(&q->mu);
    mqueue *m = queue__find(q, name);
    if (m != NULL)
      info_fill(m, a, out);
    pthread_rwlock_unlock(&q->mu);
    if (m != NULL)
      return 0;
    if (q->store->refresh == NULL)
      break;
    if (pass == 0)
      refresh(q, name); /* (4) */
  }
  return err_set(e, QUEUE_ERR_NO_QUEUE, "The specified queue does not exist.");
}

static int create_locked(queue_system *q, const char *name, bool fifo, const str_pair *attrs,
                         size_t nattrs, const str_pair *tags, size_t ntags, arena *a,
                         queue_info *out, err *e);

int queue_create(queue_system *q, const char *name, const str_pair *attrs, size_t nattrs,
                 const str_pair *tags, size_t ntags, arena *a, queue_info *out, err *e)
{
  bool fifo_name = false;
  if (name == NULL || *name == '\0')
    return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter QueueName.");
  if (!valid_name(name, &fifo_name))
    return err_set(e, ERR_INVALID, "Can only include alphanumeric characters, hyphens, or "
                   "underscores. 1 to 80 in length");
  bool fifo = false;
  for (size_t i = 0; i < nattrs; i++)
    if (attrs[i].name != NULL && strcmp(attrs[i].name, "FifoQueue") == 0)
      fifo = attrs[i].value != NULL && str_ieq(attrs[i].value, "true");
  if (fifo && !fifo_name)
    return err_set(e, ERR_INVALID, "The name of a FIFO queue can only include alphanumeric "
                   "characters, hyphens, or underscores, must end with .fifo suffix and be 1 to "
                   "80 in length.");
  if (!fifo && fifo_name)
    return err_set(e, ERR_INVALID, "Can only include alphanumeric characters, hyphens, or "
                   "underscores. 1 to 80 in length");
  int rc = tags_check(tags, ntags, e);
  if (rc != 0)
    return rc;

  pthread_mutex_lock(&q->meta_mu);
  refresh_locked(q, NULL); /* (4): the target of a RedrivePolicy, the queue itself */
  for (int attempt = 0;; attempt++) {
    rc = create_locked(q, name, fifo, attrs, nattrs, tags, ntags, a, out, e);
    if (rc != ERR_CONFLICT || attempt > 0 || q->store->refresh == NULL)
      break;
    refresh_locked(q, name); /* another node created it meanwhile: compare with it */
  }
  pthread_mutex_unlock(&q->meta_mu);
  return rc;
}

/* queue_create's work under meta_mu. ERR_CONFLICT: another node created
 * the name between the cache's refresh and the store's create. */
static int create_locked(queue_system *q, const char *name, bool fifo, const str_pair *attrs,
                         size_t nattrs, const str_pair *tags, size_t ntags, arena *a,
                         queue_info *out, err *e)
{
  int rc = 0;
  json_t *given = json_object();
  for (size_t i = 0; rc == 0 && i < nattrs; i++) {
    const char *norm = NULL;
    rc = attr_normalise(q, attrs[i].name ? attrs[i].name : "", attrs[i].value, fifo, true, a,
                        &norm, e);
    if (rc == 0 && *norm != '\0')
      json_object_set_new(given, attrs[i].name, json_string(norm));
  }
  mqueue *existing = rc == 0 ? queue__find(q, name) : NULL;
  if (existing != NULL) {
    const char *key;
    json_t *val;
    json_object_foreach(given, key, val) {
      const char *have = attr_str(existing->attrs, key);
      if (strcmp(key, "FifoQueue") == 0)
        have = existing->fifo ? "true" : "false";
      if (have == NULL || strcmp(have, json_string_value(val)) != 0) {
        rc = err_set(e, QUEUE_ERR_QUEUE_EXISTS, "A queue already exists with the same name "
                     "and a different value for attribute %s", key);
        break;
      }
    }
    if (rc == 0)
      info_fill(existing, a, out);
    json_decref(given);
    return rc;
  }
  if (rc != 0) {
    json_decref(given);
    return rc;
  }
  json_object_del(given, "FifoQueue");
  mqueue *m = xcalloc(1, sizeof *m);
  m->name = queue__strdup(name);
  m->fifo = fifo;
  m->created_ms = m->modified_ms = queue__now_ms();
  m->attrs = given;
  m->tags = json_object();
  for (size_t i = 0; i < ntags; i++)
    json_object_set_new(m->tags, tags[i].name, json_string(tags[i].value ? tags[i].value : ""));
  mq_parse(m);
  rc = q->store->create(q, m, e);
  if (rc == 0) {
    info_fill(m, a, out);
    queue__cache_set(q, name, m);
  } else {
    queue__mq_free(m);
  }
  return rc;
}

enum meta_op { OP_UPDATE, OP_DELETE, OP_PURGE };

#define META_ATTEMPTS 8

/* Runs a metadata change against an existing queue: edit gets a copy of
 * the queue to change (OP_UPDATE). With a shared store, a record changed
 * by another node meanwhile (ERR_CONFLICT) is reloaded and edited again. */
static int meta_change(queue_system *q, const char *ref, enum meta_op op,
                       int (*edit)(queue_system *q, mqueue *copy, void *ctx, arena *a, err *e),
                       void *ctx, err *e)
{
  arena *a = arena_new();
  const char *name = NULL;
  int rc = queue_ref_name(ref, a, &name, e);
  if (rc != 0) {
    arena_free(a);
    return rc;
  }
  pthread_mutex_lock(&q->meta_mu);
  for (int attempt = 0; attempt < META_ATTEMPTS; attempt++) {
    refresh_locked(q, op == OP_UPDATE ? NULL : name); /* (4) */
    mqueue *m = queue__find(q, name);
    if (m == NULL) {
      rc = err_set(e, QUEUE_ERR_NO_QUEUE, "The specified queue does not exist.");
      break;
    }
    mqueue *copy = NULL;
    if (op == OP_UPDATE) {
      copy = xcalloc(1, sizeof *copy);
      copy->name = queue__strdup(m->name);
      copy->id = m->id;
      copy->version = m->version;
      copy->fifo = m->fifo;
      copy->created_ms = m->created_ms;
      copy->modified_ms = m->modified_ms;
      copy->attrs = json_deep_copy(m->attrs);
      copy->tags = json_deep_copy(m->tags);
      rc = edit(q, copy, ctx, a, e);
      mq_parse(copy);
      if (rc == 0)
        rc = q->store->update(q, m, copy, e);
    } else if (op == OP_DELETE) {
      rc = q->store->remove(q, m, e);
    } else {
      rc = q->store->purge(q, m, e);
    }
    if (rc == 0 && op != OP_PURGE) {
      queue__cache_set(q, name, copy); /* frees m; copy NULL removes */
      copy = NULL;
    }
    queue__mq_free(copy);
    if (rc != ERR_CONFLICT || q->store->refresh == NULL)
      break;
    err_clear(e);
  }
  pthread_mutex_unlock(&q->meta_mu);
  arena_free(a);
  return rc;
}

int queue_delete(queue_system *q, const char *ref, err *e)
{
  return meta_change(q, ref, OP_DELETE, NULL, NULL, e);
}

int queue_purge(queue_system *q, const char *ref, err *e)
{
  return meta_change(q, ref, OP_PURGE, NULL, NULL, e);
}

typedef struct set_ctx {
  const str_pair *pairs;
  const char *const *keys;
  size_t n;
} set_ctx;

static int edit_attrs(queue_system *q, mqueue *m, void *ctx, arena *a, err *e)
{
  set_ctx *s = ctx;
  for (size_t i = 0; i < s->n; i++) {
    const char *name = s->pairs[i].name ? s->pairs[i].name : "";
    const char *norm = NULL;
    int rc = attr_normalise(q, name, s->pairs[i].value, m->fifo, false, a, &norm, e);
    if (rc != 0)
      return rc;
    if (*norm == '\0')
      json_object_del(m->attrs, name);
    else
      json_object_set_new(m->attrs, name, json_string(norm));
  }
  m->modified_ms = queue__now_ms();
  return 0;
}

int queue_attrs_set(queue_system *q, const char *ref, const str_pair *attrs, size_t nattrs,
                    err *e)
{
  set_ctx s = {.pairs = attrs, .n = nattrs};
  return meta_change(q, ref, OP_UPDATE, edit_attrs, &s, e);
}

static int edit_tags_set(queue_system *q, mqueue *m, void *ctx, arena *a, err *e)
{
  set_ctx *s = ctx;
  int rc = tags_check(s->pairs, s->n, e);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < s->n; i++)
    json_object_set_new(m->tags, s->pairs[i].name, json_string(s->pairs[i].value ?
                                                                s->pairs[i].value : ""));
  if (json_object_size(m->tags) > QUEUE_MAX_TAGS)
    return err_set(e, ERR_INVALID, "Too many tags added for queue. Maximum is %d.",
                   QUEUE_MAX_TAGS);
  return 0;
}

static int edit_tags_remove(queue_system *q, mqueue *m, void *ctx, arena *a, err *e)
{
  set_ctx *s = ctx;
  for (size_t i = 0; i < s->n; i++)
    json_object_del(m->tags, s->keys[i]);
  return 0;
}

int queue_tags_set(queue_system *q, const char *ref, const str_pair *tags, size_t n, err *e)
{
  set_ctx s = {.pairs = tags, .n = n};
  return meta_change(q, ref, OP_UPDATE, edit_tags_set, &s, e);
}

int queue_tags_remove(queue_system *q, const char *ref, const char *const *keys, size_t n,
                      err *e)
{
  set_ctx s = {.keys = keys, .n = n};
  return meta_change(q, ref, OP_UPDATE, edit_tags_remove, &s, e);
}

int queue_tags_get(queue_system *q, const char *ref, arena *a, str_pair **out, size_t *n,
                   err *e)
{
  const char *name = NULL;
  int rc = queue_ref_name(ref, a, &name, e);
  if (rc != 0)
    return rc;
  refresh(q, name); /* (4) */
  pthread_rwlock_rdlock(&q->mu);
  mqueue *m = queue__find(q, name);
  if (m != NULL) {
    *n = json_object_size(m->tags);
    *out = arena_alloc(a, (*n + 1) * sizeof **out);
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(m->tags, key, val) {
      (*out)[i].name = arena_strdup(a, key);
      (*out)[i].value = arena_strdup(a, json_string_value(val));
      i++;
    }
  }
  pthread_rwlock_unlock(&q->mu);
  if (m == NULL)
    return err_set(e, QUEUE_ERR_NO_QUEUE, "The specified queue does not exist.");
  return 0;
}

int queue_list(queue_system *q, const char *prefix, const char *marker, size_t max, arena *a,
               const char ***names, size_t *n, const char **next, err *e)
{
  if (max == 0 || max > 1000)
    max = 1000;
  *n = 0;
  *next = NULL;
  refresh(q, NULL); /* (4) */
  pthread_rwlock_rdlock(&q->mu);
  *names = arena_alloc(a, (q->nqueues + 1) * sizeof **names);
  size_t i = marker != NULL ? find_slot(q, marker) : 0;
  if (marker != NULL && i < q->nqueues && strcmp(q->queues[i]->name, marker) == 0)
    i++;
  for (; i < q->nqueues; i++) {
    const char *name = q->queues[i]->name;
    if (prefix != NULL && !str_starts(name, prefix))
      continue;
    if (*n == max) {
      *next = arena_strdup(a, (*names)[*n - 1]);
      break;
    }
    (*names)[(*n)++] = arena_strdup(a, name);
  }
  pthread_rwlock_unlock(&q->mu);
  return 0;
}

int queue_dlq_sources(queue_system *q, const char *ref, arena *a, const char ***names,
                      size_t *n, err *e)
{
  const char *name = NULL;
  int rc = queue_ref_name(ref, a, &name, e);
  if (rc != 0)
    return rc;
  *n = 0;
  refresh(q, NULL); /* (4) */
  pthread_rwlock_rdlock(&q->mu);
  bool exists = queue__find(q, name) != NULL;
  *names = arena_alloc(a, (q->nqueues + 1) * sizeof **names);
  for (size_t i = 0; exists && i < q->nqueues; i++)
    if (q->queues[i]->dlq_name != NULL && strcmp(q->queues[i]->dlq_name, name) == 0)
      (*names)[(*n)++] = arena_strdup(a, q->queues[i]->name);
  pthread_rwlock_unlock(&q->mu);
  if (!exists)
    return err_set(e, QUEUE_ERR_NO_QUEUE, "The specified queue does not exist.");
  return 0;
}

int queue_attrs_get(queue_system *q, const char *ref, arena *a, str_pair **out, size_t *n,
                    err *e)
{
  uint64_t visible = 0, inflight = 0, delayed = 0;
  int rc = queue_counts(q, ref, &visible, &inflight, &delayed, e);
  if (rc != 0)
    return rc;
  const char *name = NULL;
  if ((rc = queue_ref_name(ref, a, &name, e)) != 0)
    return rc;
  refresh(q, name); /* (4) */
  pthread_rwlock_rdlock(&q->mu);
  mqueue *m = queue__find(q, name);
  if (m == NULL) {
    pthread_rwlock_unlock(&q->mu);
    return err_set(e, QUEUE_ERR_NO_QUEUE, "The specified queue does not exist.");
  }
  size_t cap = 8 + sizeof defs / sizeof defs[0];
  str_pair *p = arena_alloc(a, cap * sizeof *p);
  size_t k = 0;
  p[k++] = (str_pair){"QueueArn", arena_sprintf(a, ARN_SQS_PREFIX "%s", m->name)};
  p[k++] = (str_pair){"ApproximateNumberOfMessages",
                      arena_sprintf(a, "%llu", (unsigned long long)visible)};
  p[k++] = (str_pair){"ApproximateNumberOfMessagesNotVisible",
                      arena_sprintf(a, "%llu", (unsigned long long)inflight)};
  p[k++] = (str_pair){"ApproximateNumberOfMessagesDelayed",
                      arena_sprintf(a, "%llu", (unsigned long long)delayed)};
  p[k++] = (str_pair){"CreatedTimestamp",
                      arena_sprintf(a, "%lld", (long long)(m->created_ms / 1000))};
  p[k++] = (str_pair){"LastModifiedTimestamp",
                      arena_sprintf(a, "%lld", (long long)(m->modified_ms / 1000))};
  for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
    const attr_def *d = &defs[i];
    if ((d->flags & F_FIFO_ONLY) && !m->fifo)
      continue;
    const char *v = strcmp(d->name, "FifoQueue") == 0 ? (m->fifo ? "true" : NULL)
                                                      : attr_str(m->attrs, d->name);
    if (v != NULL)
      p[k++] = (str_pair){d->name, arena_strdup(a, v)};
  }
  pthread_rwlock_unlock(&q->mu);
  *out = p;
  *n = k;
  return 0;
}

/* ---- the retention and deduplication sweep ---- */

typedef struct sweep_arg {
  uint64_t qid;
  int64_t cutoff;  /* messages sent before are expired */
  size_t removed;
} sweep_arg;

#define SWEEP_BATCH 5000

static int apply_sweep_queue(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  sweep_arg *s = c->arg;
  s->removed = 0;
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, q->db_msgs, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  uint8_t start[MSG_KEY_LEN];
  queue__msg_key(start, s->qid, 0);
  uint64_t after = 0;
  while (s->removed < SWEEP_BATCH) {
    queue__msg_key(start, s->qid, after);
    MDB_val k = {MSG_KEY_LEN, start};
    MDB_val v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc != 0 || k.mv_size != MSG_KEY_LEN || queue__be64_get(k.mv_data) != s->qid)
      break;
    uint64_t seq = queue__be64_get((const uint8_t *)k.mv_data + 8);
    qmsg m;
    err ignore = {0};
    if (queue__msg_decode(&v, a, &m, &ignore) != 0 || m.sent_ms >= s->cutoff) {
      /* FIFO of sends: the first young message ends the expired run (DLQ
         moves keep their send time, so a few may wait for receive to drop them) */
      break;
    }
    uint8_t kc[MSG_KEY_LEN];
    memcpy(kc, k.mv_data, MSG_KEY_LEN);
    if ((mrc = mdb_cursor_del(cur, 0)) != 0)
      break;
    uint8_t vk[VIS_KEY_LEN];
    queue__vis_key(vk, s->qid, m.visible_at, seq);
    MDB_val vkey = {VIS_KEY_LEN, vk};
    mdb_del(txn, q->db_vis, &vkey, NULL);
    MDB_val bkey = {MSG_KEY_LEN, kc};
    mdb_del(txn, q->db_bodies, &bkey, NULL);
    after = seq + 1;
    s->removed++;
  }
  mdb_cursor_close(cur);
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    return lmdb_error(e, mrc, "remove expired messages");
  return 0;
}

static int apply_sweep_dedup(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  int64_t now = *(int64_t *)c->arg;
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, q->db_dedup, &cur);
  if (mrc != 0)
    return lmdb_error(e, mrc, "open a cursor");
  MDB_val k, v;
  size_t removed = 0;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && removed < SWEEP_BATCH;) {
    if (v.mv_size >= 8 && (int64_t)queue__be64_get(v.mv_data) < now) {
      if ((mrc = mdb_cursor_del(cur, 0)) != 0)
        break;
      removed++;
      mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
      continue;
    }
    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (mrc != 0 && mrc != MDB_NOTFOUND && mrc != EINVAL)
    return lmdb_error(e, mrc, "remove expired deduplication ids");
  return 0;
}

typedef struct sweep_all {
  sweep_arg *args;
  size_t n;
  int64_t now;
} sweep_all;

static int apply_sweep_all(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  sweep_all *all = c->arg;
  void *saved = c->arg;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < all->n; i++) {
    c->arg = &all->args[i];
    rc = apply_sweep_queue(q, c, txn, a, e);
  }
  c->arg = &all->now;
  if (rc == 0)
    rc = apply_sweep_dedup(q, c, txn, a, e);
  c->arg = saved;
  return rc;
}

void queue__lmdb_sweep(queue_system *q)
{
  int64_t now = queue__now_ms();
  pthread_rwlock_rdlock(&q->mu);
  size_t n = q->nqueues;
  sweep_arg *args = xcalloc(n + 1, sizeof *args);
  for (size_t i = 0; i < n; i++) {
    args[i].qid = q->queues[i]->id;
    args[i].cutoff = now - (int64_t)q->queues[i]->retention * 1000;
  }
  pthread_rwlock_unlock(&q->mu);
  err e = {0};
  sweep_all all = {args, n, now};
  qchange c;
  queue__change_init(&c, apply_sweep_all, &all);
  queue__commit_run(q, &c, &e);  /* a failure is retried at the next sweep */
  free(args);
}
