/* queue/message.c -- messages: send, receive, delete, change visibility,
 * with redrive to a dead-letter queue and FIFO groups.
 *
 * Why this shape: a message lives under (queue id, seq) in db_msgs (its
 * header) and db_bodies (attributes and body), and has exactly one entry
 * (queue id, visible_at, seq) in db_vis. Receiving from a standard queue is
 * then a range scan of db_vis up to now, never a scan of the queue; the
 * visibility deadline is a wall-clock time on disk, so an in-flight message
 * comes back after its timeout also across a restart. A FIFO queue is read
 * in seq order (db_msgs) instead, because a group's order and its in-flight
 * blocking matter more there than the scan.
 *
 * Invariants:
 *   (1) header.visible_at always equals the time in the message's db_vis
 *       key; every change of one moves the other in the same transaction.
 *   (2) A receipt handle names (queue id, seq, token); the token changes at
 *       every receive, so only the latest receiver's handle changes
 *       visibility, and an old handle cannot delete a message received again.
 *   (3) A message received more than maxReceiveCount times is moved to the
 *       dead-letter queue (same message id, body, attributes and send time;
 *       counts reset) at the receive that would exceed the count.
 *   (4) FIFO: within a group, messages are returned in seq order and none
 *       while an earlier one of the group is in flight (or delayed).
 *   (5) Everything here that writes runs as an apply on the committer.
 *   (6) The public functions check their input and the queue, then call
 *       the store (q->store): the functions here are the LMDB store's;
 *       pg_store.c keeps the same contract in PostgreSQL.
 *
 * Start reading at queue_message_send() and queue__receive_apply().
 */
#include "internal.h"

#include "base/hash.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECEIVE_CANDIDATES 64
#define FIFO_SCAN_MAX 20000

static const char no_queue_msg[] = "The specified queue does not exist.";

/* ---- small LMDB helpers ---- */

static int get_header(queue_system *q, MDB_txn *txn, uint64_t qid, uint64_t seq, arena *a,
                      qmsg *m, bool *found, err *e)
{
  uint8_t k[MSG_KEY_LEN];
  queue__msg_key(k, qid, seq);
  MDB_val key = {MSG_KEY_LEN, k};
  MDB_val v;
  int mrc = mdb_get(txn, q->db_msgs, &key, &v);
  if (mrc == MDB_NOTFOUND) {
    *found = false;
    return 0;
  }
  if (mrc != 0)
    return lmdb_error(e, mrc, "read a message");
  *found = true;
  return queue__msg_decode(&v, a, m, e);
}

static int put_header(queue_system *q, MDB_txn *txn, uint64_t qid, uint64_t seq, const qmsg *m,
                      arena *a, err *e)
{
  uint8_t k[MSG_KEY_LEN];
  queue__msg_key(k, qid, seq);
  MDB_val key = {MSG_KEY_LEN, k};
  MDB_val v = queue__msg_encode(m, a);
  int mrc = mdb_put(txn, q->db_msgs, &key, &v, 0);
  return mrc ? lmdb_error(e, mrc, "write a message") : 0;
}

static int vis_put(queue_system *q, MDB_txn *txn, uint64_t qid, int64_t at, uint64_t seq,
                   uint8_t state, err *e)
{
  uint8_t k[VIS_KEY_LEN];
  queue__vis_key(k, qid, at, seq);
  MDB_val key = {VIS_KEY_LEN, k};
  MDB_val v = {1, &state};
  int mrc = mdb_put(txn, q->db_vis, &key, &v, 0);
  return mrc ? lmdb_error(e, mrc, "index a message") : 0;
}

static int vis_del(queue_system *q, MDB_txn *txn, uint64_t qid, int64_t at, uint64_t seq,
                   err *e)
{
  uint8_t k[VIS_KEY_LEN];
  queue__vis_key(k, qid, at, seq);
  MDB_val key = {VIS_KEY_LEN, k};
  int mrc = mdb_del(txn, q->db_vis, &key, NULL);
  return mrc && mrc != MDB_NOTFOUND ? lmdb_error(e, mrc, "unindex a message") : 0;
}

/* Moves a message's deadline (invariant 1). */
static int move_visibility(queue_system *q, MDB_txn *txn, uint64_t qid, uint64_t seq, qmsg *m,
                           int64_t at, arena *a, err *e)
{
  int rc = vis_del(q, txn, qid, m->visible_at, seq, e);
  if (rc != 0)
    return rc;
  m->visible_at = at;
  if ((rc = vis_put(q, txn, qid, at, seq, m->state, e)) != 0)
    return rc;
  return put_header(q, txn, qid, seq, m, a, e);
}

static int remove_message(queue_system *q, MDB_txn *txn, uint64_t qid, uint64_t seq,
                          const qmsg *m, err *e)
{
  int rc = vis_del(q, txn, qid, m->visible_at, seq, e);
  if (rc != 0)
    return rc;
  uint8_t k[MSG_KEY_LEN];
  queue__msg_key(k, qid, seq);
  MDB_val key = {MSG_KEY_LEN, k};
  int mrc = mdb_del(txn, q->db_msgs, &key, NULL);
  if (mrc == 0 || mrc == MDB_NOTFOUND)
    mrc = mdb_del(txn, q->db_bodies, &key, NULL);
  return mrc && mrc != MDB_NOTFOUND ? lmdb_error(e, mrc, "delete a message") : 0;
}

/* ---- send ---- */

static void md5_hex(const void *p, size_t n, char out[33])
{
  uint8_t d[MD5_LEN];
  md5(p, n, d);
  hex_encode(d, MD5_LEN, out);
}

/* Checks a message before anything is written. */
static int send_check(const qsnap *s, const queue_send *m, err *e)
{
  if (m->body == NULL || m->body_len == 0)
    return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter MessageBody.");
  if (m->nattrs > QUEUE_MAX_ATTRS)
    return err_set(e, ERR_INVALID, "Number of message attributes [%zu] exceeds the allowed "
                   "maximum [%d].", m->nattrs, QUEUE_MAX_ATTRS);
  for (size_t i = 0; i < m->nattrs; i++) {
    int rc = queue__attr_check(&m->attrs[i], e);
    if (rc != 0)
      return rc;
    for (size_t j = 0; j < i; j++)
      if (strcmp(m->attrs[i].name, m->attrs[j].name) == 0)
        return err_set(e, ERR_INVALID, "Message attribute name '%s' is duplicated.",
                       m->attrs[i].name);
  }
  size_t size = m->body_len + queue__attrs_size(m->attrs, m->nattrs);
  size_t limit = s->max_size ? s->max_size : QUEUE_MAX_MESSAGE;
  if (size > limit)
    return err_set(e, ERR_INVALID, "One or more parameters are invalid. Reason: Message must "
                   "be shorter than %zu bytes.", limit);
  if (!queue__chars_valid(m->body, m->body_len))
    return err_set(e, QUEUE_ERR_CONTENTS, "Invalid characters found. Valid unicode characters "
                   "are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to "
                   "#x10FFFF");
  if (m->trace_header != NULL && (strlen(m->trace_header) == 0 ||
                                  strlen(m->trace_header) > 256))
    return err_set(e, ERR_INVALID, "Value for message system attribute AWSTraceHeader is "
                   "invalid.");
  if (m->delay_seconds > QUEUE_MAX_DELAY)
    return err_set(e, ERR_INVALID, "Value %d for parameter DelaySeconds is invalid. Reason: "
                   "DelaySeconds must be >= 0 and <= 900.", m->delay_seconds);
  if (s->fifo) {
    if (m->group_id == NULL || *m->group_id == '\0')
      return err_set(e, QUEUE_ERR_MISSING, "The request must contain the parameter "
                     "MessageGroupId.");
    if (m->delay_seconds > 0)
      return err_set(e, ERR_INVALID, "Value %d for parameter DelaySeconds is invalid. Reason: "
                     "The request include parameter that is not valid for this queue type.",
                     m->delay_seconds);
    if ((m->dedup_id == NULL || *m->dedup_id == '\0') && !s->content_dedup)
      return err_set(e, ERR_INVALID, "The queue should either have ContentBasedDeduplication "
                     "enabled or MessageDeduplicationId provided explicitly");
    const char *ids[2] = {m->group_id, m->dedup_id};
    for (int k = 0; k < 2; k++) {
      if (ids[k] == NULL)
        continue;
      size_t n = strlen(ids[k]);
      bool ok = n >= 1 && n <= 128;
      for (size_t i = 0; ok && i < n; i++)
        ok = ids[k][i] >= 33 && ids[k][i] <= 126;
      if (!ok)
        return err_set(e, ERR_INVALID, "Value %s for parameter %s is invalid. Reason: it must "
                       "be 1 to 128 characters from alphanumeric and punctuation.", ids[k],
                       k == 0 ? "MessageGroupId" : "MessageDeduplicationId");
    }
  } else if (m->group_id != NULL || m->dedup_id != NULL) {
    return err_set(e, ERR_INVALID, "Value %s for parameter %s is invalid. Reason: The request "
                   "include parameter that is not valid for this queue type.",
                   m->group_id != NULL ? m->group_id : m->dedup_id,
                   m->group_id != NULL ? "MessageGroupId" : "MessageDeduplicationId");
  }
  return 0;
}

void queue__send_prepare(const qsnap *s, const queue_send *m, arena *a, qprep *p)
{
  memset(p, 0, sizeof *p);
  if (s->fifo) {
    p->dedup = m->dedup_id;
    if (p->dedup == NULL || *p->dedup == '\0') {
      uint8_t d[SHA256_LEN];
      sha256(m->body, m->body_len, d);
      char *hex = arena_alloc(a, 2 * SHA256_LEN + 1);
      hex_encode(d, SHA256_LEN, hex);
      p->dedup = hex;
    }
  }
  uuid_v4(p->id);
  p->delay = m->delay_seconds >= 0 ? m->delay_seconds : (int)s->delay;
  md5(m->body, m->body_len, p->md5_body);
  p->has_attrs = m->nattrs > 0;
  if (p->has_attrs) {
    char hex[33];
    queue_md5_attrs(m->attrs, m->nattrs, hex);
    hex_decode(hex, 32, p->md5_attrs, 16);
  }
}

void queue__sent_fill(const queue_send *m, const char *id, uint64_t seq, bool fifo,
                      queue_sent *out)
{
  memset(out, 0, sizeof *out);
  snprintf(out->message_id, sizeof out->message_id, "%s", id);
  md5_hex(m->body, m->body_len, out->md5_body);
  if (m->nattrs > 0)
    queue_md5_attrs(m->attrs, m->nattrs, out->md5_attrs);
  if (m->trace_header != NULL)
    queue_md5_trace_header(m->trace_header, out->md5_sys_attrs);
  if (fifo)
    queue__seqnum(seq, out->sequence_number);
}

int queue__msg_insert(queue_system *q, qchange *c, MDB_txn *txn, arena *a, const qsnap *s,
                      const queue_send *m, int64_t now, queue_sent *out, err *e)
{
  qprep p;
  queue__send_prepare(s, m, a, &p);
  const char *dedup = p.dedup;
  uint8_t dkey[8 + 130];
  size_t dklen = 0;
  if (s->fifo) {
    size_t n = strlen(dedup);
    if (n > 128)
      n = 128;
    queue__be64_put(dkey, s->id);
    memcpy(dkey + 8, dedup, n);
    dklen = 8 + n;
    MDB_val k = {dklen, dkey};
    MDB_val v;
    int mrc = mdb_get(txn, q->db_dedup, &k, &v);
    if (mrc == 0 && v.mv_size > 16 && (int64_t)queue__be64_get(v.mv_data) > now) {
      /* a duplicate: acknowledged again with the first send's ids */
      if (out != NULL) {
        char first[QUEUE_ID_MAX];
        size_t idlen = v.mv_size - 16 < QUEUE_ID_MAX - 1 ? v.mv_size - 16 : QUEUE_ID_MAX - 1;
        memcpy(first, (const uint8_t *)v.mv_data + 16, idlen);
        first[idlen] = '\0';
        queue__sent_fill(m, first, queue__be64_get((const uint8_t *)v.mv_data + 8), true, out);
      }
      return 0;
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND)
      return lmdb_error(e, mrc, "read a deduplication id");
  }
  uint64_t seq = queue__counter_next(q, txn, "seq", &q->next_seq, e);
  if (seq == 0)
    return e->code;
  const char *id = p.id;
  int delay = p.delay;
  qmsg h = {
      .state = MSG_NEW,
      .sent_ms = now,
      .visible_at = now + (int64_t)delay * 1000,
      .has_attrs = p.has_attrs,
      .id = id,
      .sender = m->sender_id != NULL ? m->sender_id : QUEUE_ACCOUNT,
      .group = s->fifo ? m->group_id : NULL,
      .dedup = s->fifo ? dedup : NULL,
      .trace = m->trace_header,
  };
  memcpy(h.md5_body, p.md5_body, 16);
  memcpy(h.md5_attrs, p.md5_attrs, 16);
  int rc = put_header(q, txn, s->id, seq, &h, a, e);
  if (rc != 0)
    return rc;
  uint8_t k[MSG_KEY_LEN];
  queue__msg_key(k, s->id, seq);
  MDB_val key = {MSG_KEY_LEN, k};
  MDB_val body = queue__body_encode(m->attrs, m->nattrs, m->body, m->body_len, a);
  int mrc = mdb_put(txn, q->db_bodies, &key, &body, 0);
  if (mrc != 0)
    return lmdb_error(e, mrc, "write a message body");
  if ((rc = vis_put(q, txn, s->id, h.visible_at, seq, MSG_NEW, e)) != 0)
    return rc;
  if (s->fifo) {
    uint8_t dv[16 + 37];
    queue__be64_put(dv, (uint64_t)(now + QUEUE_DEDUP_WINDOW_MS));
    queue__be64_put(dv + 8, seq);
    memcpy(dv + 16, id, 36);
    MDB_val dk = {dklen, dkey};
    MDB_val dval = {16 + 36, dv};
    if ((mrc = mdb_put(txn, q->db_dedup, &dk, &dval, 0)) != 0)
      return lmdb_error(e, mrc, "write a deduplication id");
  }
  if (delay == 0)
    queue__note(c, NOTE_WAKE, s->id, 1);
  else
    queue__note(c, NOTE_TIMER, 0, 0);
  if (out != NULL)
    queue__sent_fill(m, id, seq, s->fifo, out);
  return 0;
}

typedef struct send_arg {
  qsnap s;
  const queue_send *m;
  size_t n;
  queue_sent *out;
  err *errs;       /* per entry; entries with a code are skipped */
} send_arg;

static int apply_send(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  send_arg *arg = c->arg;
  if (!queue__qid_live(q, txn, arg->s.id))
    return err_set(e, QUEUE_ERR_NO_QUEUE, no_queue_msg);
  int64_t now = queue__now_ms();
  for (size_t i = 0; i < arg->n; i++) {
    if (arg->errs[i].code != 0)
      continue;
    int rc = queue__msg_insert(q, c, txn, a, &arg->s, &arg->m[i], now, &arg->out[i], e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int queue__lmdb_send(queue_system *q, const qsnap *s, const queue_send *m, size_t n,
                     queue_sent *out, err *errs, err *e)
{
  send_arg arg = {.s = *s, .m = m, .n = n, .out = out, .errs = errs};
  qchange c;
  queue__change_init(&c, apply_send, &arg);
  return queue__commit_run(q, &c, e);
}

int queue_message_send_batch(queue_system *q, const char *ref, const queue_send *m, size_t n,
                             queue_sent *out, err *errs, err *e)
{
  qsnap s;
  int rc = queue__snap(q, ref, &s, e);
  if (rc != 0)
    return rc;
  size_t good = 0;
  for (size_t i = 0; i < n; i++) {
    err_clear(&errs[i]);
    if (send_check(&s, &m[i], &errs[i]) == 0)
      good++;
  }
  if (good == 0)
    return 0;
  return q->store->send(q, &s, m, n, out, errs, e);
}

int queue_message_send(queue_system *q, const char *ref, const queue_send *m, queue_sent *out,
                       err *e)
{
  err entry = {0};
  int rc = queue_message_send_batch(q, ref, m, 1, out, &entry, e);
  if (rc != 0)
    return rc;
  if (entry.code != 0) {
    *e = entry;
    return entry.code;
  }
  return 0;
}

/* ---- receive ---- */

typedef struct received {
  queue_message *msgs;
  size_t n;
  uint64_t *seqs;   /* returned in this call */
} received;

static bool already(const received *r, uint64_t seq)
{
  for (size_t i = 0; i < r->n; i++)
    if (r->seqs[i] == seq)
      return true;
  return false;
}

/* Moves a message to the dead-letter queue (invariant 3). */
static int redrive(queue_system *q, qchange *c, MDB_txn *txn, arena *a, const qsnap *s,
                   const qsnap *dlq, uint64_t seq, const qmsg *m, int64_t now, err *e)
{
  uint8_t k[MSG_KEY_LEN];
  queue__msg_key(k, s->id, seq);
  MDB_val key = {MSG_KEY_LEN, k};
  MDB_val body;
  int mrc = mdb_get(txn, q->db_bodies, &key, &body);
  if (mrc != 0)
    return lmdb_error(e, mrc, "read a message body");
  void *copy = arena_memdup(a, body.mv_data, body.mv_size ? body.mv_size : 1);
  size_t blen = body.mv_size;
  uint64_t nseq = queue__counter_next(q, txn, "seq", &q->next_seq, e);
  if (nseq == 0)
    return e->code;
  int rc = remove_message(q, txn, s->id, seq, m, e);
  if (rc != 0)
    return rc;
  qmsg h = *m;
  h.state = MSG_NEW;
  h.recv_count = 0;
  h.first_recv_ms = 0;
  h.token = 0;
  h.visible_at = now;
  if (!dlq->fifo) {
    h.group = NULL;
    h.dedup = NULL;
  }
  if ((rc = put_header(q, txn, dlq->id, nseq, &h, a, e)) != 0)
    return rc;
  uint8_t nk[MSG_KEY_LEN];
  queue__msg_key(nk, dlq->id, nseq);
  MDB_val nkey = {MSG_KEY_LEN, nk};
  MDB_val nbody = {blen, copy};
  if ((mrc = mdb_put(txn, q->db_bodies, &nkey, &nbody, 0)) != 0)
    return lmdb_error(e, mrc, "write a message body");
  if ((rc = vis_put(q, txn, dlq->id, now, nseq, MSG_NEW, e)) != 0)
    return rc;
  queue__note(c, NOTE_WAKE, dlq->id, 1);
  return 0;
}

/* Receives one message (header m, still visible) into r. */
static int take(queue_system *q, MDB_txn *txn, arena *scratch, const qsnap *s, uint64_t seq,
                qmsg *m, int64_t now, int64_t vt_ms, arena *oa, received *r, err *e)
{
  m->recv_count++;
  if (m->first_recv_ms == 0)
    m->first_recv_ms = now;
  m->token = queue__rand64();
  m->state = MSG_RECEIVED;
  int rc = move_visibility(q, txn, s->id, seq, m, now + vt_ms, scratch, e);
  if (rc != 0)
    return rc;
  uint8_t k[MSG_KEY_LEN];
  queue__msg_key(k, s->id, seq);
  MDB_val key = {MSG_KEY_LEN, k};
  MDB_val body;
  int mrc = mdb_get(txn, q->db_bodies, &key, &body);
  if (mrc != 0)
    return lmdb_error(e, mrc, "read a message body");
  queue_message *out = &r->msgs[r->n];
  memset(out, 0, sizeof *out);
  rc = queue__body_decode(&body, oa, &out->attrs, &out->nattrs, &out->body, &out->body_len, e);
  if (rc != 0)
    return rc;
  out->message_id = arena_strdup(oa, m->id);
  out->receipt_handle = queue__handle_make(oa, s->id, seq, m->token);
  hex_encode(m->md5_body, 16, out->md5_body);
  if (m->has_attrs)
    hex_encode(m->md5_attrs, 16, out->md5_attrs);
  out->trace_header = m->trace != NULL ? arena_strdup(oa, m->trace) : NULL;
  out->sent_ms = m->sent_ms;
  out->first_receive_ms = m->first_recv_ms;
  out->receive_count = m->recv_count;
  out->sender_id = arena_strdup(oa, m->sender != NULL ? m->sender : QUEUE_ACCOUNT);
  if (s->fifo) {
    out->group_id = m->group != NULL ? arena_strdup(oa, m->group) : NULL;
    out->dedup_id = m->dedup != NULL ? arena_strdup(oa, m->dedup) : NULL;
    char sn[24];
    queue__seqnum(seq, sn);
    out->sequence_number = arena_strdup(oa, sn);
  }
  r->seqs[r->n++] = seq;
  return 0;
}

/* What to do with a visible candidate before taking it: 1 take, 0 it was
 * expired or redriven (gone), <0 an error. */
static int triage(queue_system *q, qchange *c, MDB_txn *txn, arena *a, const qsnap *s,
                  const qsnap *dlq, uint64_t seq, const qmsg *m, int64_t now, err *e)
{
  if (s->retention > 0 && m->sent_ms + (int64_t)s->retention * 1000 <= now) {
    int rc = remove_message(q, txn, s->id, seq, m, e);
    return rc != 0 ? rc : 0;
  }
  if (dlq != NULL && m->recv_count >= s->max_receive) {
    int rc = redrive(q, c, txn, a, s, dlq, seq, m, now, e);
    return rc != 0 ? rc : 0;
  }
  return 1;
}

typedef struct cand {
  uint64_t seq;
  int64_t at;
} cand;

static int receive_standard(queue_system *q, qchange *c, MDB_txn *txn, arena *a,
                            const qsnap *s, const qsnap *dlq, uint32_t max, int64_t now,
                            int64_t vt_ms, arena *oa, received *r, err *e)
{
  uint8_t pos[VIS_KEY_LEN];
  queue__vis_key(pos, s->id, 0, 0);
  bool exclusive = false;
  for (;;) {
    cand cands[RECEIVE_CANDIDATES];
    size_t nc = 0;
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, q->db_vis, &cur);
    if (mrc != 0)
      return lmdb_error(e, mrc, "open a cursor");
    MDB_val k = {VIS_KEY_LEN, pos};
    MDB_val v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc == 0 && exclusive && k.mv_size == VIS_KEY_LEN && memcmp(k.mv_data, pos, VIS_KEY_LEN) == 0)
      mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    while (mrc == 0 && nc < RECEIVE_CANDIDATES) {
      const uint8_t *kb = k.mv_data;
      if (k.mv_size != VIS_KEY_LEN || queue__be64_get(kb) != s->id)
        break;
      int64_t at = (int64_t)queue__be64_get(kb + 8);
      if (at > now)
        break;
      cands[nc].seq = queue__be64_get(kb + 16);
      cands[nc].at = at;
      nc++;
      memcpy(pos, kb, VIS_KEY_LEN);
      mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
      return lmdb_error(e, mrc, "scan visible messages");
    exclusive = true;
    for (size_t i = 0; i < nc && r->n < max; i++) {
      if (already(r, cands[i].seq))
        continue;
      qmsg m;
      bool found = false;
      int rc = get_header(q, txn, s->id, cands[i].seq, a, &m, &found, e);
      if (rc != 0)
        return rc;
      if (!found || m.visible_at != cands[i].at) {
        /* an index entry without its message: drop it */
        if ((rc = vis_del(q, txn, s->id, cands[i].at, cands[i].seq, e)) != 0)
          return rc;
        continue;
      }
      rc = triage(q, c, txn, a, s, dlq, cands[i].seq, &m, now, e);
      if (rc < 0)
        return rc;
      if (rc == 0)
        continue;
      if ((rc = take(q, txn, a, s, cands[i].seq, &m, now, vt_ms, oa, r, e)) != 0)
        return rc;
    }
    if (r->n >= max || nc < RECEIVE_CANDIDATES)
      return 0;
  }
}

static bool group_in(const char **groups, size_t n, const char *g)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(groups[i], g) == 0)
      return true;
  return false;
}

static int receive_fifo(queue_system *q, qchange *c, MDB_txn *txn, arena *a, const qsnap *s,
                        const qsnap *dlq, uint32_t max, int64_t now, int64_t vt_ms, arena *oa,
                        received *r, err *e)
{
  const char **blocked = NULL;
  size_t nblocked = 0, capblocked = 0;
  uint64_t next = 0;
  size_t scanned = 0;
  while (r->n < max && scanned < FIFO_SCAN_MAX) {
    uint64_t seqs[RECEIVE_CANDIDATES];
    size_t nc = 0;
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, q->db_msgs, &cur);
    if (mrc != 0)
      return lmdb_error(e, mrc, "open a cursor");
    uint8_t pos[MSG_KEY_LEN];
    queue__msg_key(pos, s->id, next);
    MDB_val k = {MSG_KEY_LEN, pos};
    MDB_val v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && nc < RECEIVE_CANDIDATES) {
      if (k.mv_size != MSG_KEY_LEN || queue__be64_get(k.mv_data) != s->id)
        break;
      seqs[nc++] = queue__be64_get((const uint8_t *)k.mv_data + 8);
      mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
      return lmdb_error(e, mrc, "scan a FIFO queue");
    for (size_t i = 0; i < nc && r->n < max; i++) {
      scanned++;
      next = seqs[i] + 1;
      qmsg m;
      bool found = false;
      int rc = get_header(q, txn, s->id, seqs[i], a, &m, &found, e);
      if (rc != 0)
        return rc;
      if (!found)
        continue;
      const char *g = m.group != NULL ? m.group : "";
      if (group_in(blocked, nblocked, g))
        continue;
      if (m.visible_at > now || already(r, seqs[i])) {
        if (nblocked == capblocked) {
          capblocked = capblocked ? capblocked * 2 : 16;
          const char **p = arena_alloc(a, capblocked * sizeof *p);
          if (nblocked > 0)
            memcpy(p, blocked, nblocked * sizeof *p);
          blocked = p;
        }
        blocked[nblocked++] = g;
        continue;
      }
      rc = triage(q, c, txn, a, s, dlq, seqs[i], &m, now, e);
      if (rc < 0)
        return rc;
      if (rc == 0)
        continue;
      if ((rc = take(q, txn, a, s, seqs[i], &m, now, vt_ms, oa, r, e)) != 0)
        return rc;
    }
    if (nc < RECEIVE_CANDIDATES)
      break;
  }
  return 0;
}

int queue__receive_apply(queue_system *q, qchange *c, MDB_txn *txn, const qsnap *s,
                         const queue_receive *rq, int64_t now, arena *oa, queue_message **out,
                         size_t *n, err *e)
{
  *out = NULL;
  *n = 0;
  if (!queue__qid_live(q, txn, s->id))
    return err_set(e, QUEUE_ERR_NO_QUEUE, no_queue_msg);
  uint32_t max = rq->max == 0 ? 1 : rq->max;
  if (max > QUEUE_MAX_BATCH)
    max = QUEUE_MAX_BATCH;
  int64_t vt_ms = (int64_t)(rq->visibility_timeout >= 0 ? (uint32_t)rq->visibility_timeout
                                                        : s->visibility) * 1000;
  qsnap dlq_snap;
  const qsnap *dlq = NULL;
  err ignore = {0};
  if (s->max_receive > 0 && s->dlq_name[0] != '\0' &&
      queue__snap_name(q, s->dlq_name, &dlq_snap, &ignore) == 0 &&
      queue__qid_live(q, txn, dlq_snap.id) && dlq_snap.id != s->id)
    dlq = &dlq_snap;
  arena *scratch = arena_new();
  received r = {.msgs = arena_alloc(oa, max * sizeof *r.msgs),
                .seqs = arena_alloc(scratch, max * sizeof *r.seqs)};
  int rc = s->fifo ? receive_fifo(q, c, txn, scratch, s, dlq, max, now, vt_ms, oa, &r, e)
                   : receive_standard(q, c, txn, scratch, s, dlq, max, now, vt_ms, oa, &r, e);
  arena_free(scratch);
  if (rc != 0)
    return rc;
  if (r.n > 0)
    queue__note(c, NOTE_TIMER, 0, 0);
  *out = r.msgs;
  *n = r.n;
  return 0;
}

int64_t queue__lmdb_next_visible(queue_system *q, uint64_t qid, int64_t after)
{
  MDB_txn *txn = NULL;
  err ignore = {0};
  if (queue__read_begin(q, &txn, &ignore) != 0)
    return INT64_MAX;
  MDB_cursor *cur = NULL;
  if (mdb_cursor_open(txn, q->db_vis, &cur) != 0) {
    mdb_txn_abort(txn);
    return INT64_MAX;
  }
  uint8_t k0[VIS_KEY_LEN];
  queue__vis_key(k0, qid, after + 1, 0);
  MDB_val k = {VIS_KEY_LEN, k0};
  MDB_val v;
  int64_t at = INT64_MAX;
  if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == VIS_KEY_LEN &&
      queue__be64_get(k.mv_data) == qid)
    at = (int64_t)queue__be64_get((const uint8_t *)k.mv_data + 8);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return at;
}

int queue_counts(queue_system *q, const char *ref, uint64_t *visible, uint64_t *inflight,
                 uint64_t *delayed, err *e)
{
  qsnap s;
  int rc = queue__snap(q, ref, &s, e);
  if (rc != 0)
    return rc;
  *visible = *inflight = *delayed = 0;
  return q->store->counts(q, &s, visible, inflight, delayed, e);
}

int queue__lmdb_counts(queue_system *q, const qsnap *sp, uint64_t *visible, uint64_t *inflight,
                       uint64_t *delayed, err *e)
{
  const qsnap s = *sp;
  int rc;
  MDB_txn *txn = NULL;
  if ((rc = queue__read_begin(q, &txn, e)) != 0)
    return rc;
  MDB_cursor *cur = NULL;
  int mrc = mdb_cursor_open(txn, q->db_vis, &cur);
  if (mrc != 0) {
    mdb_txn_abort(txn);
    return lmdb_error(e, mrc, "open a cursor");
  }
  int64_t now = queue__now_ms();
  uint8_t k0[VIS_KEY_LEN];
  queue__vis_key(k0, s.id, 0, 0);
  MDB_val k = {VIS_KEY_LEN, k0};
  MDB_val v;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != VIS_KEY_LEN || queue__be64_get(k.mv_data) != s.id)
      break;
    int64_t at = (int64_t)queue__be64_get((const uint8_t *)k.mv_data + 8);
    uint8_t state = v.mv_size > 0 ? *(const uint8_t *)v.mv_data : MSG_NEW;
    if (at <= now)
      (*visible)++;
    else if (state == MSG_NEW)
      (*delayed)++;
    else
      (*inflight)++;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return 0;
}

/* ---- delete and visibility ---- */

typedef struct handle_arg {
  qsnap s;
  const char *const *handles;
  const uint32_t *seconds;  /* NULL: delete */
  size_t n;
  err *errs;
  bool release;             /* visibility 0, errors ignored */
} handle_arg;

static int handle_one(queue_system *q, qchange *c, MDB_txn *txn, arena *a, handle_arg *arg,
                      size_t i, int64_t now, err *e)
{
  err *ee = &arg->errs[i];
  uint64_t qid, seq, token;
  const char *h = arg->handles[i];
  if (!queue__handle_parse(h, &qid, &seq, &token) || qid != arg->s.id) {
    err_set(ee, QUEUE_ERR_RECEIPT, "The input receipt handle \"%s\" is not a valid receipt "
            "handle.", h != NULL ? h : "");
    return 0;
  }
  qmsg m;
  bool found = false;
  int rc = get_header(q, txn, qid, seq, a, &m, &found, e);
  if (rc != 0)
    return rc;
  if (arg->seconds == NULL) {
    /* delete: a gone message or a stale handle is accepted, as SQS does */
    if (!found || m.token != token || m.state != MSG_RECEIVED)
      return 0;
    if ((rc = remove_message(q, txn, qid, seq, &m, e)) != 0)
      return rc;
    if (arg->s.fifo)
      queue__note(c, NOTE_WAKE, qid, 1);  /* the group may be unblocked */
    return 0;
  }
  if (!found || m.token != token || m.state != MSG_RECEIVED) {
    err_set(ee, ERR_INVALID, "Value %s for parameter ReceiptHandle is invalid. Reason: Message "
            "does not exist or is not available for visibility timeout change.", h);
    return 0;
  }
  if (m.visible_at <= now) {
    err_set(ee, QUEUE_ERR_NOT_INFLIGHT, "Message does not exist or is not available for "
            "visibility timeout change.");
    return 0;
  }
  uint32_t secs = arg->seconds[i];
  if ((rc = move_visibility(q, txn, qid, seq, &m, now + (int64_t)secs * 1000, a, e)) != 0)
    return rc;
  if (secs == 0)
    queue__note(c, NOTE_WAKE, qid, 1);
  else
    queue__note(c, NOTE_TIMER, 0, 0);
  return 0;
}

static int apply_handles(queue_system *q, qchange *c, MDB_txn *txn, arena *a, err *e)
{
  handle_arg *arg = c->arg;
  if (!queue__qid_live(q, txn, arg->s.id))
    return err_set(e, QUEUE_ERR_NO_QUEUE, no_queue_msg);
  int64_t now = queue__now_ms();
  for (size_t i = 0; i < arg->n; i++) {
    if (arg->errs[i].code != 0)
      continue;
    int rc = handle_one(q, c, txn, a, arg, i, now, e);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int queue__lmdb_handles(queue_system *q, const qsnap *s, const char *const *handles,
                        const uint32_t *seconds, size_t n, err *errs, err *e)
{
  handle_arg arg = {.s = *s, .handles = handles, .seconds = seconds, .n = n, .errs = errs};
  qchange c;
  queue__change_init(&c, apply_handles, &arg);
  return queue__commit_run(q, &c, e);
}

static int handles_run(queue_system *q, const char *ref, const char *const *handles,
                       const uint32_t *seconds, size_t n, err *errs, err *e)
{
  qsnap s;
  int rc = queue__snap(q, ref, &s, e);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < n; i++) {
    err_clear(&errs[i]);
    if (seconds != NULL && seconds[i] > QUEUE_MAX_VISIBILITY)
      err_set(&errs[i], ERR_INVALID, "Value %u for parameter VisibilityTimeout is invalid. "
              "Reason: Must be between 0 and 43200, if provided.", seconds[i]);
  }
  return q->store->handles(q, &s, handles, seconds, n, errs, e);
}

int queue_message_delete_batch(queue_system *q, const char *ref, const char *const *handles,
                               size_t n, err *errs, err *e)
{
  return handles_run(q, ref, handles, NULL, n, errs, e);
}

int queue_message_delete(queue_system *q, const char *ref, const char *handle, err *e)
{
  err entry = {0};
  int rc = handles_run(q, ref, &handle, NULL, 1, &entry, e);
  if (rc == 0 && entry.code != 0) {
    *e = entry;
    rc = entry.code;
  }
  return rc;
}

int queue_message_visibility_batch(queue_system *q, const char *ref,
                                   const char *const *handles, const uint32_t *seconds,
                                   size_t n, err *errs, err *e)
{
  return handles_run(q, ref, handles, seconds, n, errs, e);
}

int queue_message_visibility(queue_system *q, const char *ref, const char *handle,
                             uint32_t seconds, err *e)
{
  err entry = {0};
  int rc = handles_run(q, ref, &handle, &seconds, 1, &entry, e);
  if (rc == 0 && entry.code != 0) {
    *e = entry;
    rc = entry.code;
  }
  return rc;
}

/* ---- release (asynchronous) ---- */

typedef struct release_change {
  qchange c;
  handle_arg arg;
  char **handles;
  uint32_t *zeros;
  err *errs;
} release_change;

static void release_complete(queue_system *q, qchange *c)
{
  release_change *rc = (release_change *)c;
  for (size_t i = 0; i < rc->arg.n; i++)
    free(rc->handles[i]);
  free(rc->handles);
  free(rc->zeros);
  free(rc->errs);
  free(rc);
}

void queue_message_release(queue_system *q, const char *ref, const queue_message *msgs,
                           size_t n)
{
  if (n == 0)
    return;
  qsnap s;
  err ignore = {0};
  if (queue__snap(q, ref, &s, &ignore) == 0)
    q->store->release(q, &s, msgs, n);
}

void queue__lmdb_release(queue_system *q, const qsnap *s, const queue_message *msgs, size_t n)
{
  release_change *rc = xcalloc(1, sizeof *rc);
  rc->arg.s = *s;
  rc->handles = xcalloc(n, sizeof *rc->handles);
  rc->zeros = xcalloc(n, sizeof *rc->zeros);
  rc->errs = xcalloc(n, sizeof *rc->errs);
  for (size_t i = 0; i < n; i++)
    rc->handles[i] = queue__strdup(msgs[i].receipt_handle);
  rc->arg.handles = (const char *const *)rc->handles;
  rc->arg.seconds = rc->zeros;
  rc->arg.n = n;
  rc->arg.errs = rc->errs;
  rc->arg.release = true;
  queue__change_init(&rc->c, apply_handles, &rc->arg);
  rc->c.complete = release_complete;
  if (!queue__commit_submit(q, &rc->c))
    release_complete(q, &rc->c);
}
