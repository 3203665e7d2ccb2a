/* queue/publish.c -- Publish: checks, filter policies, the SNS envelope, and
 * the fan-out to queues (in the publish's own commit) and to functions and
 * HTTP endpoints (through the outbox).
 *
 * Why in one commit: a publish acknowledged must reach every matching
 * subscription even after a crash. Queues live in the same LMDB
 * environment, so their copies are written in the publish's transaction;
 * deliveries that leave the process are written to db_outbox in it and
 * sent by deliver.c until they succeed (at least once). With --metadata
 * the topic store's publish (pg_topic.c) does the same in one PostgreSQL
 * transaction, and may ask for the targets to be built again.
 *
 * Envelope (JSON, keys in this order, as SNS sends them):
 *   Type, MessageId, [SequenceNumber], TopicArn, [Subject], Message,
 *   Timestamp, SignatureVersion, Signature, SigningCertURL, UnsubscribeURL,
 *   [MessageAttributes {name: {Type, Value}}].
 * The Lambda event's Sns object spells SigningCertUrl and UnsubscribeUrl,
 * has Subject null when absent and always has MessageAttributes.
 * Signature is a fixed placeholder: tarn does not sign notifications.
 *
 * Invariants:
 *   (1) Filters are matched and envelopes built before the commit, on the
 *       caller's thread, against a snapshot of the subscriptions; the apply
 *       only writes.
 *   (2) A subscription whose queue does not exist (any more) loses its copy,
 *       as SNS does without a redrive policy.
 *
 * Start reading at queue_topic_publish_batch().
 */
#include "internal.h"

#include "base/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNS_SENDER_ID "AIDAIT2UOQQY3AUEKVGXU"

/* ---- checks ---- */

static int publish_check(const mtopic *t, const queue_publish *p, err *e)
{
  if (p->message == NULL || p->len == 0)
    return err_set(e, ERR_INVALID, "Invalid parameter: Empty message");
  size_t size = p->len + queue__attrs_size(p->attrs, p->nattrs);
  if (size > QUEUE_MAX_MESSAGE)
    return err_set(e, ERR_INVALID, "Invalid parameter: Message too long");
  if (!queue__chars_valid(p->message, p->len))
    return err_set(e, ERR_INVALID, "Invalid parameter: Message contains invalid characters");
  if (p->subject != NULL) {
    size_t n = strlen(p->subject);
    bool ok = n > 0 && n <= 100;
    for (size_t i = 0; ok && i < n; i++)
      ok = p->subject[i] >= 32 && p->subject[i] < 127;
    if (!ok)
      return err_set(e, ERR_INVALID, "Invalid parameter: Subject");
  }
  if (p->nattrs > QUEUE_MAX_ATTRS)
    return err_set(e, ERR_INVALID, "Invalid parameter: Number of message attributes [%zu] "
                   "exceeds the allowed maximum [%d].", p->nattrs, QUEUE_MAX_ATTRS);
  for (size_t i = 0; i < p->nattrs; i++) {
    const queue_attr *at = &p->attrs[i];
    int rc = queue__attr_check(at, e);
    if (rc != 0)
      return err_wrap(e, "Invalid parameter: MessageAttributes");
    if (strcmp(at->type, "String.Array") == 0) {
      json_t *j = json_loads(at->value, 0, NULL);
      bool ok = json_is_array(j);
      json_decref(j);
      if (!ok)
        return err_set(e, ERR_INVALID, "Invalid parameter: Message attribute '%s' of type "
                       "String.Array must be a JSON array", at->name);
    }
  }
  if (p->structure != NULL) {
    if (strcmp(p->structure, "json") != 0)
      return err_set(e, ERR_INVALID, "Invalid parameter: MessageStructure");
    json_t *j = json_loadb(p->message, p->len, 0, NULL);
    bool ok = json_is_object(j);
    bool def = json_is_string(json_object_get(j, "default"));
    json_decref(j);
    if (!ok)
      return err_set(e, ERR_INVALID, "Invalid parameter: Message Structure - JSON message body "
                     "failed to parse");
    if (!def)
      return err_set(e, ERR_INVALID, "Invalid parameter: Message Structure - No default entry "
                     "in JSON message body");
  }
  if (t->fifo) {
    if (p->group_id == NULL || *p->group_id == '\0')
      return err_set(e, ERR_INVALID, "Invalid parameter: The MessageGroupId parameter is "
                     "required for FIFO topics");
    if ((p->dedup_id == NULL || *p->dedup_id == '\0') && !t->content_dedup)
      return err_set(e, ERR_INVALID, "Invalid parameter: The topic should either have "
                     "ContentBasedDeduplication enabled or MessageDeduplicationId provided "
                     "explicitly");
  } else if (p->group_id != NULL || p->dedup_id != NULL) {
    return err_set(e, ERR_INVALID, "Invalid parameter: MessageGroupId and "
                   "MessageDeduplicationId are valid only for FIFO topics");
  }
  return 0;
}

/* ---- envelopes ---- */

static json_t *attrs_json(const queue_attr *attrs, size_t n, arena *a)
{
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++) {
    const char *value = attrs[i].value;
    if (attrs[i].bin != NULL) {
      char *b64 = arena_alloc(a, base64_encoded_len(attrs[i].bin_len));
      base64_encode(attrs[i].bin, attrs[i].bin_len, b64);
      value = b64;
    }
    json_object_set_new(o, attrs[i].name,
                        json_pack("{s:s, s:s}", "Type", attrs[i].type, "Value",
                                  value != NULL ? value : ""));
  }
  return o;
}

/* The message for one protocol (MessageStructure json picks by protocol). */
static const char *message_for(const queue_publish *p, const char *protocol, arena *a,
                               size_t *len)
{
  if (p->structure == NULL) {
    *len = p->len;
    return p->message;
  }
  json_t *j = json_loadb(p->message, p->len, 0, NULL);
  const char *m = json_string_value(json_object_get(j, protocol));
  if (m == NULL)
    m = json_string_value(json_object_get(j, "default"));
  char *out = arena_strdup(a, m != NULL ? m : "");
  json_decref(j);
  *len = strlen(out);
  return out;
}

static char *dumps(json_t *j, arena *a)
{
  char *s = json_dumps(j, JSON_COMPACT);
  char *out = arena_strdup(a, s != NULL ? s : "{}");
  free(s);
  json_decref(j);
  return out;
}

static json_t *envelope(queue_system *q, arena *a, const mtopic *t, const msub *s,
                        const queue_publish *p, const char *message, size_t mlen,
                        const char *id, const char *seqnum, const char *ts, bool lambda)
{
  str_pair up[2] = {{"Action", "Unsubscribe"}, {"SubscriptionArn", s->arn}};
  char *unsub = queue__presign(q, a, up, 2);
  char *cert = arena_sprintf(a, "%s/_tarn/sns/SimpleNotificationService.pem",
                             queue__endpoint(q, a));
  json_t *o = json_object();
  json_object_set_new(o, "Type", json_string("Notification"));
  json_object_set_new(o, "MessageId", json_string(id));
  if (seqnum != NULL && *seqnum && !lambda)
    json_object_set_new(o, "SequenceNumber", json_string(seqnum));
  json_object_set_new(o, "TopicArn", json_string(t->arn));
  if (p->subject != NULL)
    json_object_set_new(o, "Subject", json_string(p->subject));
  else if (lambda)
    json_object_set_new(o, "Subject", json_null());
  json_object_set_new(o, "Message", json_stringn(message, mlen));
  json_object_set_new(o, "Timestamp", json_string(ts));
  json_object_set_new(o, "SignatureVersion", json_string("1"));
  json_object_set_new(o, "Signature", json_string(queue__signature_placeholder()));
  json_object_set_new(o, lambda ? "SigningCertUrl" : "SigningCertURL", json_string(cert));
  json_object_set_new(o, lambda ? "UnsubscribeUrl" : "UnsubscribeURL", json_string(unsub));
  if (p->nattrs > 0 || lambda)
    json_object_set_new(o, "MessageAttributes", attrs_json(p->attrs, p->nattrs, a));
  return o;
}

/* Builds the deliveries of one publish (mu held, read). */
static void targets_build(queue_system *q, arena *a, const mtopic *t, pub_entry *pe,
                          const char *seqnum, const char *ts)
{
  const queue_publish *p = pe->p;
  pe->targets = arena_alloc(a, (q->nsubs + 1) * sizeof *pe->targets);
  pe->ntargets = 0;
  const char *content_dedup = NULL;
  if (t->fifo && (p->dedup_id == NULL || *p->dedup_id == '\0')) {
    uint8_t d[SHA256_LEN];
    sha256(p->message, p->len, d);
    char *hex = arena_alloc(a, 2 * SHA256_LEN + 1);
    hex_encode(d, SHA256_LEN, hex);
    content_dedup = hex;
  }
  for (size_t i = 0; i < q->nsubs; i++) {
    const msub *s = q->subs[i];
    if (!s->confirmed || strcmp(s->topic, t->name) != 0)
      continue;
    size_t mlen = 0;
    const char *message = message_for(p, s->protocol, a, &mlen);
    if (s->filter != NULL &&
        !queue_filter_match(s->filter, s->body_scope, p->attrs, p->nattrs, message, mlen))
      continue;
    pub_target *tg = &pe->targets[pe->ntargets++];
    memset(tg, 0, sizeof *tg);
    tg->sub = arena_strdup(a, s->arn);
    if (strcmp(s->protocol, "sqs") == 0) {
      const char *name = NULL;
      err ignore = {0};
      if (queue_ref_name(s->endpoint, a, &name, &ignore) != 0) {
        pe->ntargets--;
        continue;
      }
      tg->sqs = true;
      tg->queue = name;
      tg->send.delay_seconds = 0;
      tg->send.sender_id = SNS_SENDER_ID;
      if (s->raw) {
        tg->send.body = message;
        tg->send.body_len = mlen;
        tg->send.attrs = p->attrs;
        tg->send.nattrs = p->nattrs;
      } else {
        json_t *env = envelope(q, a, t, s, p, message, mlen, pe->message_id, seqnum, ts, false);
        tg->send.body = dumps(env, a);
        tg->send.body_len = strlen(tg->send.body);
      }
      if (t->fifo) {
        tg->send.group_id = p->group_id;
        tg->send.dedup_id = p->dedup_id != NULL && *p->dedup_id ? p->dedup_id : content_dedup;
      }
      continue;
    }
    const char *body;
    if (strcmp(s->protocol, "lambda") == 0) {
      json_t *sns = envelope(q, a, t, s, p, message, mlen, pe->message_id, seqnum, ts, true);
      json_t *rec = json_pack("{s:[{s:s, s:s, s:s, s:o}]}", "Records", "EventSource", "aws:sns",
                              "EventVersion", "1.0", "EventSubscriptionArn", s->arn, "Sns", sns);
      body = dumps(rec, a);
    } else if (s->raw) {
      body = arena_strndup(a, message, mlen);
    } else {
      json_t *env = envelope(q, a, t, s, p, message, mlen, pe->message_id, seqnum, ts, false);
      body = dumps(env, a);
    }
    tg->entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "sub", s->arn, "protocol",
                          s->protocol, "endpoint", s->endpoint, "type", "Notification",
                          "message_id", pe->message_id, "topic", t->arn, "body", body, "raw",
                          s->raw);
  }
}

/* ---- the commit ---- */

bool queue__publish_fits(const qsnap *s, queue_send *m)
{
  if (!s->fifo) {
    m->group_id = NULL;
    m->dedup_id = NULL;
  } else if (m->group_id == NULL) {
    return false;  /* a standard topic cannot feed a FIFO queue */
  }
  return m->body_len + queue__attrs_size(m->attrs, m->nattrs) <= s->max_size;
}

static int apply_publish(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  pub_arg *arg = c->arg;
  MDB_val k = {strlen(arg->topic), (void *)arg->topic};
  MDB_val v;
  int mrc = mdb_get(txn, q->db_topics, &k, &v);
  if (mrc == MDB_NOTFOUND)
    return err_set(e, QUEUE_ERR_NO_TOPIC, "Topic does not exist");
  if (mrc != 0)
    return lmdb_error(e, mrc, "read a topic");
  int64_t now = queue__now_ms();
  for (size_t i = 0; i < arg->n; i++) {
    pub_entry *pe = &arg->entries[i];
    if (pe->e->code != 0)
      continue;
    for (size_t k2 = 0; k2 < pe->ntargets; k2++) {
      pub_target *tg = &pe->targets[k2];
      int rc;
      if (tg->sqs) {
        qsnap s;
        err ignore = {0};
        if (queue__snap_name(q, tg->queue, &s, &ignore) != 0 || !queue__qid_live(q, txn, s.id))
          continue;  /* invariant 2 */
        queue_send m = tg->send;
        if (!queue__publish_fits(&s, &m))
          continue;
        rc = queue__msg_insert(q, c, txn, a, &s, &m, now, NULL, e);
      } else {
        rc = queue__outbox_put(q, c, txn, tg->entry, e);
      }
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

int queue__lmdb_publish(queue_system *q, pub_arg *arg, err *e)
{
  qchange c;
  queue__change_init(&c, apply_publish, arg);
  return queue__commit_run(q, &c, e);
}

/* Drops the targets built by a try (their outbox entries). */
static void targets_free(pub_arg *arg)
{
  for (size_t i = 0; i < arg->n; i++) {
    for (size_t k = 0; k < arg->entries[i].ntargets; k++)
      json_decref(arg->entries[i].targets[k].entry);
    arg->entries[i].ntargets = 0;
  }
}

int queue_topic_publish_batch(queue_system *q, const char *topic_arn, const queue_publish *p,
                              size_t n, char (*message_ids)[QUEUE_ID_MAX], err *errs, err *e)
{
  arena *a = arena_new();
  const char *name = NULL;
  int rc = queue__topic_name(topic_arn, a, &name, e);
  if (rc != 0) {
    arena_free(a);
    return rc;
  }
  pub_arg arg = {.topic = name, .n = n};
  arg.entries = arena_alloc(a, (n + 1) * sizeof *arg.entries);
  memset(arg.entries, 0, (n + 1) * sizeof *arg.entries);
  char ts[25];
  time_format_iso8601_ms(queue__now_ms(), ts);
  /* With a shared store, the targets are built from the cache and the
     commit checks that the topic's version is still the one they were
     built from; when another node changed the topic or its subscriptions
     (rc > 0), the cache is reloaded and the targets built again. */
  for (int attempt = 0;; attempt++) {
    pthread_rwlock_rdlock(&q->mu);
    mtopic *t = queue__topic_find(q, name);
    if (t == NULL && attempt == 0 && q->tstore->refresh != NULL) {
      pthread_rwlock_unlock(&q->mu);
      pthread_mutex_lock(&q->meta_mu); /* a miss: perhaps made by another node */
      q->tstore->refresh(q, name, e);
      pthread_mutex_unlock(&q->meta_mu);
      err_clear(e);
      pthread_rwlock_rdlock(&q->mu);
      t = queue__topic_find(q, name);
    }
    if (t == NULL) {
      pthread_rwlock_unlock(&q->mu);
      arena_free(a);
      return err_set(e, QUEUE_ERR_NO_TOPIC, "Topic does not exist");
    }
    arg.fifo = t->fifo;
    arg.version = t->version;
    for (size_t i = 0; i < n; i++) {
      pub_entry *pe = &arg.entries[i];
      pe->p = &p[i];
      pe->e = &errs[i];
      err_clear(pe->e);
      if (attempt == 0)
        uuid_v4(pe->message_id);
      if (publish_check(t, &p[i], pe->e) != 0)
        continue;
      targets_build(q, a, t, pe, NULL, ts);
    }
    pthread_rwlock_unlock(&q->mu);
    rc = q->tstore->publish(q, &arg, e);
    targets_free(&arg);
    if (rc <= 0 || attempt >= PG_RETRIES)
      break;
    pthread_mutex_lock(&q->meta_mu);
    int rrc = q->tstore->refresh(q, name, e);
    pthread_mutex_unlock(&q->meta_mu);
    if (rrc != 0)
      break;
  }
  if (rc > 0)
    rc = err_set(e, ERR_CONFLICT, "the topic kept changing while it was published to");
  for (size_t i = 0; i < n; i++)
    if (message_ids != NULL)
      snprintf(message_ids[i], QUEUE_ID_MAX, "%s", arg.entries[i].message_id);
  arena_free(a);
  return rc;
}

int queue_topic_publish(queue_system *q, const char *topic_arn, const queue_publish *p,
                        char message_id[QUEUE_ID_MAX], char sequence[24], err *e)
{
  err entry = {0};
  char ids[1][QUEUE_ID_MAX];
  int rc = queue_topic_publish_batch(q, topic_arn, p, 1, ids, &entry, e);
  if (rc == 0 && entry.code != 0) {
    *e = entry;
    rc = entry.code;
  }
  if (rc == 0) {
    snprintf(message_id, QUEUE_ID_MAX, "%s", ids[0]);
    if (sequence != NULL) {
      /* FIFO topics: increasing within this process (and with the clock) */
      static _Atomic uint64_t counter;
      sequence[0] = '\0';
      if (str_ends(topic_arn, ".fifo"))
        queue__seqnum((uint64_t)queue__now_ms() * 1000 + (counter++ % 1000), sequence);
    }
  }
  return rc;
}
