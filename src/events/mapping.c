/* events/mapping.c -- event source mappings: a queue or a Kinesis stream
 * drives a function (streams: see "Kinesis sources" below).
 * The records (Create/Get/Update/Delete/List), and the pollers that
 * receive batches, invoke the function synchronously and delete what it
 * processed.
 *
 * Why this shape: Lambda's SQS pollers long-poll the queue, hand each
 * batch to one synchronous invocation, delete the messages on success and
 * leave them on failure, so the queue's visibility timeout and redrive
 * policy decide what is retried and what ends in a dead-letter queue. We do
 * the same with the queue part's own calls.
 *
 * A mapping has slots: each slot is one batch at a time, cycling
 *   POLL (a queue_poll_start long poll, no thread held)
 *     -> JOB (messages copied, waiting for a worker)
 *     -> RUN (a worker gathers up to BatchSize within the batching window,
 *             invokes, deletes) -> POLL again.
 * A mapping starts with one slot; a full batch adds one (up to its
 * ScalingConfig.MaximumConcurrency, else EVENTS_DEFAULT_CONCURRENCY), an
 * empty long poll removes one (never the last). Throttles and errors put
 * the slot to sleep (a JOB of kind poll with a not_before time).
 *
 * Invariants:
 *   (1) A message is deleted only after the invocation that carried it
 *       ended without a function error (and, with ReportBatchItemFailures,
 *       was not reported failed). Anything else leaves it in flight: it
 *       comes back after the visibility timeout, counted by the queue's
 *       redrive policy. So a crash anywhere repeats work, never loses it.
 *   (2) poll_done runs on the queue part's commit thread: it only copies,
 *       queues a job, or releases messages; never calls the queue part
 *       otherwise, nor fn.
 *   (3) A slot belongs to exactly one place: its poll (sl->poll set), the
 *       job list, or a worker. Whoever ends it decrements the mapping's and
 *       the system's slot counts under map_mu.
 *   (4) A mapping marked deleted is freed when its last slot ends.
 *   (5) A mapping from a DynamoDB stream has no slots: stream_mapping.c
 *       polls it, and its position (the last record its function took)
 *       moves here, under map_mu, only after a successful invocation.
 *   (6) With --metadata (ev->pg) the records are shared by several nodes:
 *       events__mappings_reconcile brings this node's mappings to them
 *       (every SYNC_INTERVAL_MS, and before each API call) through the same
 *       paths a local create, update or delete takes (adopt_mapping,
 *       enabled_changed, drop_mapping). A scan that raced a local change
 *       (map_gen moved) is not applied. Stream mappings stay per node and
 *       are refused there.
 *
 * Start reading at worker_main().
 */
#include "events/internal.h"

#include "base/hash.h"
#include "base/mem.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_WAIT_SECONDS 20
#define BATCH_BYTES_MAX (5u << 20)     /* stop gathering past this (6 MB payload limit) */

typedef struct slot slot;

struct mapping_rt {
  char uuid[37];
  char *source_arn;            /* the queue */
  char *function_arn;          /* as stored: qualified when the mapping is */
  char *fname;                 /* function name */
  char *fqual;                 /* qualifier, or NULL */
  uint32_t batch_size;
  uint32_t window_s;
  uint32_t max_concurrency;    /* 0: EVENTS_DEFAULT_CONCURRENCY */
  bool enabled;
  bool report_failures;
  bool deleted;                /* invariant (4) */
  int64_t modified_ms;
  char last_result[160];
  uint32_t slots;              /* alive */
  bool ddb;                    /* the source is a DynamoDB stream (5) */
  uint64_t pos;                /*   the last record delivered */
  int64_t retry_ms;            /*   after a failure: not before (monotonic) */
  slot *polling;               /* slots with a poll in flight */
  /* Kinesis sources: one slot; the fields below the line are its worker's */
  bool kinesis;                /* the source is a Kinesis stream */
  char *stream;                /* its name */
  char start[16];              /* StartingPosition */
  bool bisect;                 /* BisectBatchOnFunctionError */
  int max_retries;             /* MaximumRetryAttempts, -1: no limit */
  /* --- */
  size_t next_shard;           /* the shard read next (round robin) */
  uint32_t limit;              /* records per batch now (bisection halves it) */
  uint32_t attempts;           /* failed attempts of the batch at the checkpoint */
  int64_t window_until;        /* a partial batch waits for its window until then */
  mapping_rt *next;
};

/* Where a slot is (invariant (3)). */
enum slot_state {
  SLOT_IDLE,                   /* in the job list, or with a worker */
  SLOT_STARTING,               /* a worker is inside queue_poll_start */
  SLOT_POLLING,                /* poll set: poll_done will come (or a cancel) */
  SLOT_EARLY,                  /* poll_done came while STARTING: `early` holds its verdict */
};

enum verdict { V_END = 1, V_LATER, V_JOB };

struct slot {
  events_system *ev;
  mapping_rt *m;
  enum slot_state state;
  queue_poll *poll;            /* SLOT_POLLING */
  enum verdict early;          /* SLOT_EARLY: what poll_done decided */
  int64_t early_delay_ms;      /*   V_LATER */
  batch_job *early_job;        /*   V_JOB */
  slot *next;                  /* in m->polling (STARTING, POLLING, EARLY) */
};

enum job_kind { JOB_POLL, JOB_BATCH };

struct batch_job {
  enum job_kind kind;
  slot *sl;
  int64_t not_before_ms;       /* JOB_POLL: monotonic */
  arena *a;                    /* JOB_BATCH: the messages' memory */
  queue_message *msgs;
  size_t n;
  batch_job *next;
};

/* ---- records ---- */

/* A copy of s, or NULL for NULL. */
static char *dup_or_null(const char *s)
{
  return s != NULL ? xstrdup(s) : NULL;
}

static mapping_rt *mapping_free(mapping_rt *m)
{
  if (m != NULL) {
    free(m->source_arn);
    free(m->function_arn);
    free(m->fname);
    free(m->fqual);
    free(m->stream);
    free(m);
  }
  return NULL;
}

static char *mapping_json(const mapping_rt *m)
{
  json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:i, s:i, s:b, s:b, s:i, s:I, s:s, s:I}",
                        "uuid", m->uuid, "source", m->source_arn, "function", m->function_arn,
                        "name", m->fname, "qual", m->fqual, "batch", (int)m->batch_size,
                        "window", (int)m->window_s, "enabled", m->enabled, "report",
                        m->report_failures, "concurrency", (int)m->max_concurrency, "modified",
                        (json_int_t)m->modified_ms, "result", m->last_result, "pos",
                        (json_int_t)m->pos);
  if (m->kinesis)
    json_object_update_new(o, json_pack("{s:s, s:s, s:b, s:i}", "stream", m->stream, "start",
                                        m->start, "bisect", m->bisect, "retries",
                                        m->max_retries));
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (text == NULL)
    mem_out_of_memory();
  return text;
}

static mapping_rt *mapping_from_json(const char *text)
{
  json_error_t je;
  json_t *o = json_loads(text, 0, &je);
  const char *uuid = json_string_value(json_object_get(o, "uuid"));
  const char *src = json_string_value(json_object_get(o, "source"));
  const char *fn = json_string_value(json_object_get(o, "function"));
  const char *name = json_string_value(json_object_get(o, "name"));
  if (o == NULL || uuid == NULL || strlen(uuid) != 36 || src == NULL || fn == NULL ||
      name == NULL) {
    json_decref(o);
    return NULL;
  }
  mapping_rt *m = xcalloc(1, sizeof *m);
  memcpy(m->uuid, uuid, 37);
  m->source_arn = dup_or_null(src);
  m->function_arn = dup_or_null(fn);
  m->fname = dup_or_null(name);
  m->fqual = dup_or_null(json_string_value(json_object_get(o, "qual")));
  m->batch_size = (uint32_t)json_integer_value(json_object_get(o, "batch"));
  m->window_s = (uint32_t)json_integer_value(json_object_get(o, "window"));
  m->enabled = json_is_true(json_object_get(o, "enabled"));
  m->report_failures = json_is_true(json_object_get(o, "report"));
  m->max_concurrency = (uint32_t)json_integer_value(json_object_get(o, "concurrency"));
  m->modified_ms = (int64_t)json_integer_value(json_object_get(o, "modified"));
  m->ddb = str_starts(src, "arn:aws:dynamodb:");
  m->pos = (uint64_t)json_integer_value(json_object_get(o, "pos"));
  const char *res = json_string_value(json_object_get(o, "result"));
  snprintf(m->last_result, sizeof m->last_result, "%s", res ? res : "No records processed");
  if (m->batch_size == 0)
    m->batch_size = 10;
  const char *stream = json_string_value(json_object_get(o, "stream"));
  if (stream != NULL) {
    m->kinesis = true;
    m->stream = dup_or_null(stream);
    snprintf(m->start, sizeof m->start, "%s",
             json_string_value(json_object_get(o, "start")) ? json_string_value(json_object_get(o, "start")) : "LATEST");
    m->bisect = json_is_true(json_object_get(o, "bisect"));
    m->max_retries = (int)json_integer_value(json_object_get(o, "retries"));
  }
  json_decref(o);
  return m;
}

static int mapping_save(events_system *ev, const mapping_rt *m, err *e)
{
  char key[40];
  snprintf(key, sizeof key, "m/%s", m->uuid);
  char *text = mapping_json(m);
  int rc = events__meta_write(ev, key, text, e);
  free(text);
  return rc;
}

/* Copies what callers see, under map_mu. */
static void mapping_out(const mapping_rt *m, const char *state, arena *a, events_mapping *out)
{
  out->uuid = arena_strdup(a, m->uuid);
  out->source_arn = arena_strdup(a, m->source_arn);
  out->function_arn = arena_strdup(a, m->function_arn);
  out->batch_size = m->batch_size;
  out->window_s = m->window_s;
  out->enabled = m->enabled;
  out->report_failures = m->report_failures;
  out->max_concurrency = m->max_concurrency;
  out->modified_ms = m->modified_ms;
  out->last_result = arena_strdup(a, m->last_result);
  out->state = arena_strdup(a, state != NULL ? state : m->enabled ? "Enabled" : "Disabled");
  out->starting_position = m->kinesis ? arena_strdup(a, m->start) : NULL;
  out->bisect = m->bisect;
  out->max_retries = m->kinesis ? m->max_retries : 0;
}

static mapping_rt *find(events_system *ev, const char *uuid)
{
  for (mapping_rt *m = ev->maps; m != NULL; m = m->next)
    if (!m->deleted && strcmp(m->uuid, uuid) == 0)
      return m;
  return NULL;
}

int events__mappings_load(events_system *ev, err *e)
{
  arena *a = arena_new();
  str_pair *rows = NULL;
  size_t n = 0;
  int rc = events__meta_scan(ev, "m/", a, &rows, &n, e);
  mapping_rt **tail = &ev->maps;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    mapping_rt *m = mapping_from_json(rows[i].value);
    if (m == NULL)
      continue;  /* a corrupt record is skipped, not fatal */
    *tail = m;
    tail = &m->next;
  }
  arena_free(a);
  return rc;
}

/* ---- validation ---- */

static int check_params(events_system *ev, const events_mapping_params *p, bool fifo,
                        bool kinesis, uint32_t batch, uint32_t window, err *e)
{
  if (batch < 1 || batch > EVENTS_MAX_BATCH)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%" PRIu32 "' at "
                                   "'batchSize' failed to satisfy constraint: Member must have "
                                   "value between 1 and %d", batch, EVENTS_MAX_BATCH);
  if (fifo && batch > EVENTS_MAX_FIFO_BATCH)
    return err_set(e, ERR_INVALID, "Batch size for FIFO queues must be between 1 and %d",
                   EVENTS_MAX_FIFO_BATCH);
  if (window > EVENTS_MAX_WINDOW)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%" PRIu32 "' at "
                                   "'maximumBatchingWindowInSeconds' failed to satisfy "
                                   "constraint: Member must have value less than or equal to %d",
                   window, EVENTS_MAX_WINDOW);
  if (!kinesis && batch > 10 && window == 0)
    return err_set(e, ERR_INVALID, "Maximum batch window in seconds must be greater than 0 if "
                                   "maximum batch size is greater than 10");
  if (p->has_retries && (p->max_retries < -1 || p->max_retries > 10000))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%d' at "
                                   "'maximumRetryAttempts' failed to satisfy constraint: Member "
                                   "must have value between -1 and 10000", p->max_retries);
  if (!kinesis && (p->starting_position != NULL || p->has_bisect || p->has_retries))
    return err_set(e, ERR_INVALID, "StartingPosition, BisectBatchOnFunctionError and "
                                   "MaximumRetryAttempts are not valid for SQS event sources.");
  if (p->has_concurrency && p->max_concurrency != 0 &&
      (p->max_concurrency < 2 || p->max_concurrency > EVENTS_MAX_CONCURRENCY))
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%" PRIu32 "' at "
                                   "'scalingConfig.maximumConcurrency' failed to satisfy "
                                   "constraint: Member must have value between 2 and %d",
                   p->max_concurrency, EVENTS_MAX_CONCURRENCY);
  return 0;
}

static int queue_of(events_system *ev, const char *arn, arena *a, queue_info *qi, err *e)
{
  if (arn == NULL || !str_starts(arn, "arn:aws:sqs:"))
    return err_set(e, ERR_INVALID, "tarn supports event source mappings from SQS queues only, "
                                   "not '%s'", arn != NULL ? arn : "");
  if (ev->q == NULL)
    return err_set(e, ERR_INVALID, "queues are not running");
  err qe = { 0 };
  if (queue_lookup(ev->q, arn, a, qi, &qe) != 0)
    return err_set(e, ERR_INVALID, "Error occurred while ReceiveMessage. SQS Error Code: "
                                   "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: "
                                   "The specified queue does not exist or you do not have "
                                   "access to it.");
  return 0;
}

/* The stream name of a Kinesis stream ARN, or NULL (any other ARN). */
static const char *kinesis_stream(const char *arn)
{
  if (arn == NULL || !str_starts(arn, "arn:aws:kinesis:") || strstr(arn, ":stream/") == NULL)
    return NULL;
  return strstr(arn, ":stream/") + strlen(":stream/");
}

static int kinesis_check(events_system *ev, const char *stream, const events_mapping_params *p,
                         err *e)
{
  if (ev->streams == NULL)
    return err_set(e, ERR_INVALID, "streams are not running");
  const char *pos = p->starting_position;
  if (pos == NULL)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value null at "
                                   "'startingPosition' failed to satisfy constraint: Member "
                                   "must not be null");
  if (strcmp(pos, "TRIM_HORIZON") != 0 && strcmp(pos, "LATEST") != 0 &&
      strcmp(pos, "AT_TIMESTAMP") != 0)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value '%s' at "
                                   "'startingPosition' failed to satisfy constraint: Member "
                                   "must satisfy enum value set: [TRIM_HORIZON, LATEST, "
                                   "AT_TIMESTAMP]", pos);
  err se = {0};
  if (stream_kinesis_exists(ev->streams, stream, &se) != 0)
    return err_set(e, ERR_INVALID, "Stream not found: %s", stream);
  return 0;
}

/* ---- slots ---- */

static void job_push(events_system *ev, batch_job *j)
{
  j->next = NULL;
  if (ev->jobs_tail != NULL)
    ev->jobs_tail->next = j;
  else
    ev->jobs = j;
  ev->jobs_tail = j;
  pthread_cond_signal(&ev->map_cond);
}

static batch_job *job_free(batch_job *j)
{
  if (j != NULL) {
    arena_free(j->a);
    free(j);
  }
  return NULL;
}

static uint32_t cap_of(const mapping_rt *m)
{
  return m->max_concurrency != 0 ? m->max_concurrency : EVENTS_DEFAULT_CONCURRENCY;
}

static void unlink_mapping(events_system *ev, mapping_rt *m)
{
  for (mapping_rt **pp = &ev->maps; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == m) {
      *pp = m->next;
      return;
    }
  }
}

/* Ends a slot (invariant (3)); under map_mu. True when that freed its
 * mapping (invariant (4)). */
static bool slot_end(events_system *ev, slot *sl)
{
  mapping_rt *m = sl->m;
  free(sl);
  m->slots--;
  ev->nslots--;
  if (ev->nslots == 0)
    pthread_cond_broadcast(&ev->map_idle);
  if (m->deleted && m->slots == 0) {
    unlink_mapping(ev, m);
    mapping_free(m);
    return true;
  }
  return false;
}

/* Is the slot's mapping still to be served? Under map_mu. */
static bool slot_active(events_system *ev, const slot *sl)
{
  return !ev->map_stopping && sl->m->enabled && !sl->m->deleted;
}

/* Queues the slot's next poll after delay_ms. Under map_mu. */
static void slot_later(events_system *ev, slot *sl, int64_t delay_ms)
{
  batch_job *j = xcalloc(1, sizeof *j);
  sl->state = SLOT_IDLE;
  j->kind = JOB_POLL;
  j->sl = sl;
  j->not_before_ms = delay_ms > 0 ? time_mono_ms() + delay_ms : 0;
  job_push(ev, j);
}

/* A new slot for m, polling now. Under map_mu. */
static void slot_add(events_system *ev, mapping_rt *m)
{
  if (m->ddb)
    return; /* (5) */
  slot *sl = xcalloc(1, sizeof *sl);
  sl->ev = ev;
  sl->m = m;
  m->slots++;
  ev->nslots++;
  slot_later(ev, sl, 0);
}

static void unlink_polling(mapping_rt *m, slot *sl)
{
  for (slot **pp = &m->polling; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == sl) {
      *pp = sl->next;
      break;
    }
  }
  sl->next = NULL;
  sl->poll = NULL;
}

/* Applies poll_done's verdict. Under map_mu. */
static void slot_apply(events_system *ev, slot *sl, enum verdict v, int64_t delay_ms,
                       batch_job *job)
{
  sl->state = SLOT_IDLE;
  if (v == V_END)
    slot_end(ev, sl);
  else if (v == V_LATER)
    slot_later(ev, sl, delay_ms);
  else
    job_push(ev, job);
}

static void copy_messages(arena *a, const queue_message *in, size_t n, queue_message *m)
{
  for (size_t i = 0; i < n; i++) {
    m[i] = in[i];
    m[i].message_id = arena_strdup(a, in[i].message_id);
    m[i].receipt_handle = arena_strdup(a, in[i].receipt_handle);
    m[i].body = arena_memdup(a, in[i].body != NULL ? in[i].body : "", in[i].body_len + 1);
    m[i].trace_header = in[i].trace_header ? arena_strdup(a, in[i].trace_header) : NULL;
    m[i].sender_id = in[i].sender_id ? arena_strdup(a, in[i].sender_id) : NULL;
    m[i].group_id = in[i].group_id ? arena_strdup(a, in[i].group_id) : NULL;
    m[i].dedup_id = in[i].dedup_id ? arena_strdup(a, in[i].dedup_id) : NULL;
    m[i].sequence_number = in[i].sequence_number ? arena_strdup(a, in[i].sequence_number)
                                                 : NULL;
    m[i].attrs = arena_alloc(a, (in[i].nattrs + 1) * sizeof *m[i].attrs);
    for (size_t k = 0; k < in[i].nattrs; k++) {
      const queue_attr *s = &in[i].attrs[k];
      queue_attr *d = &m[i].attrs[k];
      d->name = arena_strdup(a, s->name);
      d->type = s->type ? arena_strdup(a, s->type) : NULL;
      d->value = s->value ? arena_strdup(a, s->value) : NULL;
      d->bin = s->bin ? arena_memdup(a, s->bin, s->bin_len) : NULL;
      d->bin_len = s->bin_len;
    }
  }
}

/* The end of a long poll: on the queue's commit thread (invariant (2)). */
static void poll_done(void *ctx, int rc, queue_message *msgs, size_t n, const err *e)
{
  slot *sl = ctx;
  events_system *ev = sl->ev;
  pthread_mutex_lock(&ev->map_mu);
  mapping_rt *m = sl->m;
  unlink_polling(m, sl);
  enum verdict v;
  int64_t delay = 0;
  batch_job *job = NULL;
  if (!slot_active(ev, sl)) {
    if (n > 0)
      queue_message_release(ev->q, m->source_arn, msgs, n);
    v = V_END;
  } else if (rc != 0) {
    snprintf(m->last_result, sizeof m->last_result, "PROBLEM: %.140s", e != NULL ? e->msg : "");
    v = V_LATER;
    delay = events__retry_delay(ev, 1);
  } else if (n == 0) {
    v = m->slots > 1 ? V_END : V_LATER;  /* the backlog is gone: one poller fewer */
  } else {
    job = xcalloc(1, sizeof *job);
    job->kind = JOB_BATCH;
    job->sl = sl;
    job->a = arena_new();
    job->n = n;
    job->msgs = arena_alloc(job->a, (n + 1) * sizeof *job->msgs);
    copy_messages(job->a, msgs, n, job->msgs);
    v = V_JOB;
  }
  if (sl->state == SLOT_STARTING) {
    /* queue_poll_start has not returned: slot_poll applies the verdict */
    sl->state = SLOT_EARLY;
    sl->early = v;
    sl->early_delay_ms = delay;
    sl->early_job = job;
  } else {
    slot_apply(ev, sl, v, delay, job);
  }
  pthread_mutex_unlock(&ev->map_mu);
}

static void kinesis_poll(events_system *ev, slot *sl);

/* Starts the slot's long poll (from a worker, no lock held). */
static void slot_poll(events_system *ev, slot *sl)
{
  pthread_mutex_lock(&ev->map_mu);
  if (!slot_active(ev, sl)) {
    slot_end(ev, sl);
    pthread_mutex_unlock(&ev->map_mu);
    return;
  }
  mapping_rt *m = sl->m;
  if (m->kinesis) {
    pthread_mutex_unlock(&ev->map_mu);
    kinesis_poll(ev, sl);
    return;
  }
  char *source = dup_or_null(m->source_arn);
  uint32_t max = m->batch_size < QUEUE_MAX_BATCH ? m->batch_size : QUEUE_MAX_BATCH;
  sl->state = SLOT_STARTING;
  sl->next = m->polling;
  m->polling = sl;
  pthread_mutex_unlock(&ev->map_mu);

  queue_receive r = { .max = max, .visibility_timeout = -1, .wait_seconds = POLL_WAIT_SECONDS };
  arena *a = arena_new();
  queue_message *out = NULL;
  size_t n = 0;
  queue_poll *poll = NULL;
  err e = { 0 };
  int rc = queue_poll_start(ev->q, source, &r, a, &out, &n, poll_done, sl, &poll, &e);
  free(source);

  pthread_mutex_lock(&ev->map_mu);
  if (rc != 0) {
    unlink_polling(m, sl);
    snprintf(m->last_result, sizeof m->last_result, "PROBLEM: %.140s", e.msg);
    if (slot_active(ev, sl))
      slot_later(ev, sl, events__retry_delay(ev, 1));
    else
      slot_end(ev, sl);
  } else if (sl->state == SLOT_EARLY) {
    slot_apply(ev, sl, sl->early, sl->early_delay_ms, sl->early_job);
  } else if (poll == NULL) {
    /* answered at once (wait 0 only, but be ready for it) */
    unlink_polling(m, sl);
    if (n > 0)
      queue_message_release(ev->q, m->source_arn, out, n);
    slot_later(ev, sl, 0);
  } else {
    sl->state = SLOT_POLLING;
    sl->poll = poll;
    if (!slot_active(ev, sl) && queue_poll_cancel(ev->q, poll)) {
      unlink_polling(m, sl);
      slot_end(ev, sl);
    }
  }
  pthread_mutex_unlock(&ev->map_mu);
  arena_free(a);
}

/* Cancels m's polls that can be cancelled. Under map_mu. True when that
 * freed m. */
static bool cancel_polls(events_system *ev, mapping_rt *m)
{
  for (;;) {
    slot *sl = m->polling;
    while (sl != NULL && sl->state != SLOT_POLLING)
      sl = sl->next;
    if (sl == NULL)
      return false;
    if (!queue_poll_cancel(ev->q, sl->poll)) {
      sl->state = SLOT_IDLE;  /* poll_done is coming; do not cancel twice */
      unlink_polling(m, sl);
      continue;
    }
    unlink_polling(m, sl);
    if (slot_end(ev, sl))
      return true;
  }
}

/* ---- running a batch ---- */

static bool stopping(void *ctx)
{
  events_system *ev = ctx;
  pthread_mutex_lock(&ev->map_mu);
  bool s = ev->map_stopping;
  pthread_mutex_unlock(&ev->map_mu);
  return s;
}

int events__mapping_invoke(events_system *ev, const char *name, const char *qual,
                           const char *payload, bool *function_error, err *e)
{
  fn_answer w;
  int rc = fn_invoke_wait(ev->fn, name, qual, payload, stopping, ev, &w, e);
  *function_error = rc == 0 && w.function_error;
  buf_release(&w.payload);
  return rc;
}

size_t events__stream_mappings(events_system *ev, events_stream_job *out, size_t max)
{
  size_t n = 0;
  int64_t now = time_mono_ms();
  pthread_mutex_lock(&ev->map_mu);
  for (mapping_rt *m = ev->maps; m != NULL && n < max; m = m->next) {
    if (!m->ddb || !m->enabled || m->deleted || m->retry_ms > now)
      continue;
    events_stream_job *j = &out[n++];
    memcpy(j->uuid, m->uuid, sizeof j->uuid);
    j->source_arn = dup_or_null(m->source_arn);
    j->fname = dup_or_null(m->fname);
    j->fqual = dup_or_null(m->fqual);
    j->batch_size = m->batch_size;
    j->pos = m->pos;
  }
  pthread_mutex_unlock(&ev->map_mu);
  return n;
}

void events__stream_mapping_done(events_system *ev, const events_stream_job *j, uint64_t to,
                                 bool ok, const char *result)
{
  pthread_mutex_lock(&ev->map_mu);
  mapping_rt *m = find(ev, j->uuid);
  if (m != NULL && m->pos == j->pos) {
    if (ok)
      m->pos = to;
    m->retry_ms = ok ? 0 : time_mono_ms() + 1000;
    snprintf(m->last_result, sizeof m->last_result, "%s", result);
    err e = {0};
    mapping_save(ev, m, &e); /* lost on failure: the batch is delivered again */
  }
  if (ok)
    ev->batches++;
  else
    ev->batch_failures++;
  pthread_mutex_unlock(&ev->map_mu);
}

/* Receives more within the batching window (blocking this worker). */
static void gather(events_system *ev, const char *source, uint32_t batch, uint32_t window,
                   batch_job *j)
{
  if (window == 0 || j->n >= batch)
    return;
  size_t bytes = 0;
  for (size_t i = 0; i < j->n; i++)
    bytes += j->msgs[i].body_len;
  queue_message *all = arena_alloc(j->a, (batch + 1) * sizeof *all);
  memcpy(all, j->msgs, j->n * sizeof *all);
  j->msgs = all;
  int64_t deadline = time_mono_ms() + (int64_t)window * 1000;
  while (j->n < batch && bytes < BATCH_BYTES_MAX && time_mono_ms() < deadline &&
         !stopping(ev)) {
    size_t want = batch - j->n;
    queue_receive r = { .max = (uint32_t)(want < QUEUE_MAX_BATCH ? want : QUEUE_MAX_BATCH),
                        .visibility_timeout = -1, .wait_seconds = 1 };
    queue_message *more = NULL;
    size_t k = 0;
    err e = { 0 };
    if (queue_message_receive(ev->q, source, &r, j->a, &more, &k, &e) != 0)
      break;
    for (size_t i = 0; i < k; i++) {
      j->msgs[j->n++] = more[i];
      bytes += more[i].body_len;
    }
  }
}

/* Deletes the batch's messages not named in failed. */
static size_t delete_done(events_system *ev, const char *source, const batch_job *j,
                          const char **failed, size_t nfailed)
{
  const char *handles[QUEUE_MAX_BATCH];
  err errs[QUEUE_MAX_BATCH];
  size_t deleted = 0;
  size_t k = 0;
  for (size_t i = 0; i <= j->n; i++) {
    if (i < j->n) {
      bool skip = false;
      for (size_t f = 0; f < nfailed && !skip; f++)
        skip = strcmp(failed[f], j->msgs[i].message_id) == 0;
      if (!skip)
        handles[k++] = j->msgs[i].receipt_handle;
    }
    if (k == QUEUE_MAX_BATCH || (i == j->n && k > 0)) {
      err e = { 0 };
      if (queue_message_delete_batch(ev->q, source, handles, k, errs, &e) == 0)
        for (size_t x = 0; x < k; x++)
          deleted += errs[x].code == 0;
      k = 0;
    }
  }
  return deleted;
}

/* Adds a batch's line (consumed) to the live log of `tarn events`. */
static void watch_json(events_system *ev, json_t *line)
{
  char *text = json_dumps(line, JSON_COMPACT);
  if (text != NULL)
    events__watch_add(ev, text);
  free(text);
  json_decref(line);
}

static void run_batch(events_system *ev, batch_job *j)
{
  slot *sl = j->sl;
  pthread_mutex_lock(&ev->map_mu);
  mapping_rt *m = sl->m;
  bool active = slot_active(ev, sl);
  const char *source = arena_strdup(j->a, m->source_arn);
  const char *fname = arena_strdup(j->a, m->fname);
  const char *fqual = m->fqual ? arena_strdup(j->a, m->fqual) : NULL;
  const char *farn = arena_strdup(j->a, m->function_arn);
  const char *uuid = arena_strdup(j->a, m->uuid);
  uint32_t batch = m->batch_size;
  uint32_t window = m->window_s;
  bool report = m->report_failures;
  pthread_mutex_unlock(&ev->map_mu);
  if (!active || ev->fn == NULL) {
    queue_message_release(ev->q, source, j->msgs, j->n);
    pthread_mutex_lock(&ev->map_mu);
    if (ev->fn == NULL && active)
      snprintf(m->last_result, sizeof m->last_result, "PROBLEM: functions are disabled");
    slot_end(ev, sl);
    pthread_mutex_unlock(&ev->map_mu);
    return;
  }
  gather(ev, source, batch, window, j);
  size_t first_receive = j->n;
  const char *payload = events_sqs_message(j->a, source, j->msgs, j->n);
  fn_answer w;
  err e = { 0 };
  int rc = fn_invoke_wait(ev->fn, fname, fqual, payload, stopping, ev, &w, &e);
  const char *result;
  const char **failed = NULL;
  size_t nfailed = 0;
  size_t deleted = 0;
  bool ok = false;
  int64_t delay = 0;
  if (rc != 0) {
    result = arena_sprintf(j->a, "PROBLEM: %s", e.msg);
    delay = events__retry_delay(ev, 1);
  } else if (w.function_error) {
    result = "PROBLEM: Function call failed";
  } else {
    err fe = { 0 };
    if (report && events_batch_failures(w.payload.data, w.payload.len, j->msgs, j->n, j->a,
                                        &failed, &nfailed, &fe) != 0) {
      result = arena_sprintf(j->a, "PROBLEM: %s", fe.msg);
    } else {
      deleted = delete_done(ev, source, j, failed, nfailed);
      ok = nfailed == 0;
      result = nfailed == 0 ? "OK" : arena_sprintf(j->a, "OK: %zu of %zu failed", nfailed, j->n);
    }
  }
  buf_release(&w.payload);

  char when[25];
  time_format_iso8601_ms(time_now_ms(), when);
  watch_json(ev, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s}", "type", "sqs", "time",
                           when, "mapping", uuid, "queue", source, "function", farn, "messages",
                           (int)j->n, "deleted", (int)deleted, "result", result));

  pthread_mutex_lock(&ev->map_mu);
  ev->batches++;
  ev->batch_failures += ok ? 0 : 1;
  ev->messages_deleted += deleted;
  snprintf(m->last_result, sizeof m->last_result, "%s", result);
  if (slot_active(ev, sl)) {
    size_t full = batch < QUEUE_MAX_BATCH ? batch : QUEUE_MAX_BATCH;
    if (first_receive >= full && m->slots < cap_of(m))
      slot_add(ev, m);  /* a full batch: the backlog may be growing */
    slot_later(ev, sl, delay);
  } else {
    slot_end(ev, sl);
  }
  pthread_mutex_unlock(&ev->map_mu);
}

/* ---- Kinesis sources ----
 * A Kinesis mapping has one slot (records of a shard are processed in
 * order, one batch at a time). Its JOB_POLL reads a batch from the
 * mapping's checkpoint (stream_consumer_read, never blocking), invokes the
 * function and moves the checkpoint past what succeeded
 * (stream_consumer_commit); a failure leaves it, so the batch is retried:
 * halved each time with BisectBatchOnFunctionError, skipped after
 * MaximumRetryAttempts. With ReportBatchItemFailures the checkpoint moves
 * to the first failed record. */

#define KINESIS_IDLE_MS 250          /* an empty read polls again after this */

/* How many leading records of b succeeded: all (n) unless the answer names
 * failures; -1 when the answer is malformed or names a record not in b. */
static long kinesis_succeeded(const buf *answer, const stream_batch *b)
{
  json_t *o = json_loadb(answer->data != NULL ? answer->data : "", answer->len, 0, NULL);
  json_t *failures = json_object_get(o, "batchItemFailures");
  long first = (long)b->n;
  if (o == NULL || json_is_null(o) || failures == NULL || json_is_null(failures)) {
    json_decref(o);
    return first;
  }
  if (!json_is_array(failures)) {
    json_decref(o);
    return -1;
  }
  size_t i;
  json_t *f;
  json_array_foreach(failures, i, f) {
    const char *id = json_string_value(json_object_get(f, "itemIdentifier"));
    long at = -1;
    for (size_t k = 0; id != NULL && k < b->n && at < 0; k++)
      if (strcmp(b->recs[k].sequence, id) == 0)
        at = (long)k;
    if (at < 0) {
      first = -1;
      break;
    }
    if (at < first)
      first = at;
  }
  json_decref(o);
  return first;
}

static void kinesis_poll(events_system *ev, slot *sl)
{
  arena *a = arena_new();
  pthread_mutex_lock(&ev->map_mu);
  mapping_rt *m = sl->m;
  const char *stream = arena_strdup(a, m->stream);
  const char *source = arena_strdup(a, m->source_arn);
  const char *fname = arena_strdup(a, m->fname);
  const char *fqual = m->fqual ? arena_strdup(a, m->fqual) : NULL;
  const char *farn = arena_strdup(a, m->function_arn);
  const char *uuid = arena_strdup(a, m->uuid);
  uint32_t batch = m->batch_size;
  if (m->limit == 0 || m->limit > batch)
    m->limit = batch;
  uint32_t limit = m->limit;
  size_t next_shard = m->next_shard;
  bool report = m->report_failures;
  bool bisect = m->bisect;
  int retries = m->max_retries;
  int64_t window_until = m->window_until;
  uint32_t window = m->window_s;
  pthread_mutex_unlock(&ev->map_mu);

  stream_batch b;
  memset(&b, 0, sizeof b);
  err e = {0};
  int rc = ev->fn == NULL ? err_set(&e, ERR_INVALID, "functions are disabled")
                          : stream_consumer_read(ev->streams, stream, uuid, &next_shard, limit,
                                                 BATCH_BYTES_MAX, a, &b, &e);
  int64_t now = time_mono_ms();
  int64_t delay = 0;
  const char *result = NULL;
  bool ran = false;
  bool ok = false;
  long done = 0;
  if (rc != 0) {
    result = arena_sprintf(a, "PROBLEM: %s", e.msg);
    delay = events__retry_delay(ev, 1);
  } else if (b.n == 0) {
    delay = KINESIS_IDLE_MS;
  } else if (b.n < limit && window > 0 && (window_until == 0 || now < window_until)) {
    /* a partial batch gathers for MaximumBatchingWindowInSeconds */
    if (window_until == 0)
      window_until = now + (int64_t)window * 1000;
    delay = window_until - now < KINESIS_IDLE_MS ? window_until - now : KINESIS_IDLE_MS;
    next_shard = (size_t)atoi(b.shard_id + 8);
  } else {
    window_until = 0;
    ran = true;
    const char *payload = events_kinesis_message(a, source, &b);
    fn_answer w;
    rc = fn_invoke_wait(ev->fn, fname, fqual, payload, stopping, ev, &w, &e);
    if (rc != 0)
      result = arena_sprintf(a, "PROBLEM: %s", e.msg);
    else if (w.function_error)
      result = "PROBLEM: Function call failed";
    else if ((done = report ? kinesis_succeeded(&w.payload, &b) : (long)b.n) < 0)
      result = "PROBLEM: the function's batchItemFailures name no record of the batch";
    else
      ok = done == (long)b.n;
    buf_release(&w.payload);
    if (done < 0)
      done = 0;
    if (rc != 0 || w.function_error)
      done = 0;
    if (ok) {
      result = "OK";
      limit = batch;
      pthread_mutex_lock(&ev->map_mu);
      m->attempts = 0;
      pthread_mutex_unlock(&ev->map_mu);
    } else {
      pthread_mutex_lock(&ev->map_mu);
      uint32_t attempts = ++m->attempts;
      pthread_mutex_unlock(&ev->map_mu);
      if (result == NULL)
        result = arena_sprintf(a, "OK: %zu of %zu failed", b.n - (size_t)done, b.n);
      if (retries >= 0 && attempts > (uint32_t)retries) {
        /* given up: the batch is skipped (Lambda would send it to an
           on-failure destination, which tarn does not have for streams) */
        done = (long)b.n;
        limit = batch;
        result = arena_sprintf(a, "PROBLEM: %u attempts failed; %zu records skipped",
                               attempts, b.n);
        pthread_mutex_lock(&ev->map_mu);
        m->attempts = 0;
        pthread_mutex_unlock(&ev->map_mu);
      } else {
        if (bisect && done == 0 && b.n > 1)
          limit = (uint32_t)((b.n + 1) / 2);
        delay = events__retry_delay(ev, attempts);
      }
      if (done < (long)b.n)
        next_shard = (size_t)atoi(b.shard_id + 8); /* the same shard again: in order */
    }
    if (done > 0) {
      err ce = {0};
      if (stream_consumer_commit(ev->streams, stream, uuid, b.shard_id,
                                 b.recs[done - 1].sequence, &ce) != 0)
        result = arena_sprintf(a, "PROBLEM: %s", ce.msg);
      else if (done < (long)b.n)
        limit = batch; /* the failed record leads the next batch */
    }
  }
  if (ran) {
    char when[25];
    time_format_iso8601_ms(time_now_ms(), when);
    watch_json(ev, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s}", "type", "kinesis",
                             "time", when, "mapping", uuid, "stream", source, "function", farn,
                             "records", (int)b.n, "processed", (int)done, "result", result));
  }
  pthread_mutex_lock(&ev->map_mu);
  if (ran) {
    ev->batches++;
    ev->batch_failures += ok ? 0 : 1;
  }
  if (result != NULL)
    snprintf(m->last_result, sizeof m->last_result, "%s", result);
  m->next_shard = next_shard;
  m->limit = limit;
  m->window_until = window_until;
  if (slot_active(ev, sl))
    slot_later(ev, sl, delay);
  else
    slot_end(ev, sl);
  pthread_mutex_unlock(&ev->map_mu);
  arena_free(a);
}

/* The first job a worker may run now; else *wake_at the earliest time a
 * delayed one becomes runnable (0: none). Under map_mu. */
static batch_job *job_take(events_system *ev, int64_t *wake_at)
{
  int64_t now = time_mono_ms();
  *wake_at = 0;
  batch_job *prev = NULL;
  for (batch_job *j = ev->jobs; j != NULL; prev = j, j = j->next) {
    if (j->kind == JOB_BATCH || j->not_before_ms <= now) {
      if (prev != NULL)
        prev->next = j->next;
      else
        ev->jobs = j->next;
      if (ev->jobs_tail == j)
        ev->jobs_tail = prev;
      j->next = NULL;
      return j;
    }
    if (*wake_at == 0 || j->not_before_ms < *wake_at)
      *wake_at = j->not_before_ms;
  }
  return NULL;
}

static void *worker_main(void *arg)
{
  events_system *ev = arg;
  pthread_mutex_lock(&ev->map_mu);
  while (!ev->map_stopping) {
    int64_t wake_at = 0;
    batch_job *j = job_take(ev, &wake_at);
    if (j == NULL) {
      if (wake_at == 0) {
        pthread_cond_wait(&ev->map_cond, &ev->map_mu);
      } else {
        struct timespec ts = { (time_t)(wake_at / 1000), (long)(wake_at % 1000) * 1000000 };
        pthread_cond_timedwait(&ev->map_cond, &ev->map_mu, &ts);
      }
      continue;
    }
    ev->nbusy++;
    pthread_mutex_unlock(&ev->map_mu);
    if (j->kind == JOB_POLL)
      slot_poll(ev, j->sl);
    else
      run_batch(ev, j);
    job_free(j);
    pthread_mutex_lock(&ev->map_mu);
    ev->nbusy--;
  }
  pthread_mutex_unlock(&ev->map_mu);
  return NULL;
}

static void *sync_main(void *arg);

int events__mappings_start(events_system *ev, err *e)
{
  int src = events__streams_start(ev, e);
  if (src != 0 || ev->q == NULL)
    return src;
  pthread_mutex_lock(&ev->map_mu);
  ev->map_started = true;
  for (mapping_rt *m = ev->maps; m != NULL; m = m->next)
    if (m->enabled && !m->deleted)
      slot_add(ev, m);
  pthread_mutex_unlock(&ev->map_mu);
  ev->workers = xcalloc(ev->nworkers, sizeof *ev->workers);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 512 << 10);
  int rc = 0;
  for (uint32_t i = 0; i < ev->nworkers; i++) {
    rc = pthread_create(&ev->workers[i], &at, worker_main, ev);
    if (rc != 0)
      break;
    ev->nworkers_running++;
  }
  if (rc == 0 && ev->pg != NULL) {
    rc = pthread_create(&ev->sync_thread, &at, sync_main, ev);
    ev->sync_running = rc == 0;
  }
  pthread_attr_destroy(&at);
  if (rc != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the event source mapping workers: %s",
                   strerror(rc));
  return 0;
}

void events__mappings_stop(events_system *ev)
{
  pthread_mutex_lock(&ev->map_mu);
  ev->map_stopping = true;
  for (mapping_rt *m = ev->maps, *next; m != NULL; m = next) {
    next = m->next;
    cancel_polls(ev, m);
  }
  pthread_cond_broadcast(&ev->map_cond);
  pthread_cond_broadcast(&ev->sync_cond);
  pthread_mutex_unlock(&ev->map_mu);
  if (ev->sync_running)
    pthread_join(ev->sync_thread, NULL);
  ev->sync_running = false;
  events__streams_stop(ev);
  for (uint32_t i = 0; i < ev->nworkers_running; i++)
    pthread_join(ev->workers[i], NULL);
  ev->nworkers_running = 0;
  free(ev->workers);
  ev->workers = NULL;
  /* jobs no worker took: their messages go back to the queue now */
  pthread_mutex_lock(&ev->map_mu);
  batch_job *jobs = ev->jobs;
  ev->jobs = NULL;
  ev->jobs_tail = NULL;
  for (batch_job *j = jobs, *next; j != NULL; j = next) {
    next = j->next;
    if (j->kind == JOB_BATCH && ev->q != NULL)
      queue_message_release(ev->q, j->sl->m->source_arn, j->msgs, j->n);
    slot_end(ev, j->sl);
    job_free(j);
  }
  pthread_mutex_unlock(&ev->map_mu);
}

void events__mappings_free(events_system *ev)
{
  pthread_mutex_lock(&ev->map_mu);
  /* polls still out end when the queue part stops (it must have by now) */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += 30;
  while (ev->nslots > 0)
    if (pthread_cond_timedwait(&ev->map_idle, &ev->map_mu, &ts) != 0)
      break;
  bool leak = ev->nslots > 0;  /* a poll still out would touch its mapping */
  mapping_rt *maps = ev->maps;
  ev->maps = NULL;
  pthread_mutex_unlock(&ev->map_mu);
  for (mapping_rt *m = maps, *next; m != NULL && !leak; m = next) {
    next = m->next;
    mapping_free(m);
  }
}

/* ---- the API ---- */

/* m's enabled flag went from `was` to m->enabled: its first slot starts,
 * or its polls end. *state gets what Lambda says then. Under map_mu; true
 * when that freed m. */
static bool enabled_changed(events_system *ev, mapping_rt *m, bool was, const char **state)
{
  if (!was && m->enabled) {
    *state = "Enabling";
    if (ev->map_started && !ev->map_stopping && m->slots == 0)
      slot_add(ev, m);
  } else if (was && !m->enabled) {
    *state = "Disabling";
    return cancel_polls(ev, m);
  }
  return false;
}

/* The in-memory end of a deleted mapping: polls cancelled, freed once its
 * last slot ends (invariant (4)). Under map_mu. */
static void drop_mapping(events_system *ev, mapping_rt *m)
{
  if (m->kinesis && ev->streams != NULL) {
    err de = {0};
    stream_consumer_drop(ev->streams, m->uuid, &de); /* a leftover is harmless */
  }
  m->deleted = true;
  if (!cancel_polls(ev, m) && m->slots == 0) {
    unlink_mapping(ev, m);
    mapping_free(m);
  }
}

/* Links a new mapping and starts its first slot when due. Under map_mu. */
static void adopt_mapping(events_system *ev, mapping_rt *m)
{
  m->next = ev->maps;
  ev->maps = m;
  if (m->enabled && ev->map_started && !ev->map_stopping)
    slot_add(ev, m);
}

/* Takes what another node changed in r's record into m (the last result
   stays this node's own). Under map_mu; true when that freed m. */
static bool take_record(events_system *ev, mapping_rt *m, mapping_rt *r)
{
  if (m->modified_ms == r->modified_ms)
    return false;
  char *t;
  t = m->function_arn, m->function_arn = r->function_arn, r->function_arn = t;
  t = m->fname, m->fname = r->fname, r->fname = t;
  t = m->fqual, m->fqual = r->fqual, r->fqual = t;
  m->batch_size = r->batch_size;
  m->window_s = r->window_s;
  m->report_failures = r->report_failures;
  m->max_concurrency = r->max_concurrency;
  m->modified_ms = r->modified_ms;
  bool was = m->enabled;
  m->enabled = r->enabled;
  const char *state;
  return enabled_changed(ev, m, was, &state);
}

void events__mappings_reconcile(events_system *ev)
{
  if (ev->pg == NULL)
    return;
  pthread_mutex_lock(&ev->sync_mu);
  pthread_mutex_lock(&ev->map_mu);
  uint64_t gen = ev->map_gen;
  pthread_mutex_unlock(&ev->map_mu);
  arena *a = arena_new();
  str_pair *rows = NULL;
  size_t n = 0;
  err e = {0};
  if (events__meta_scan(ev, "m/", a, &rows, &n, &e) != 0) {
    arena_free(a);
    pthread_mutex_unlock(&ev->sync_mu);
    return; /* the database is away: keep what runs, look again later */
  }
  mapping_rt **recs = arena_alloc(a, (n + 1) * sizeof *recs);
  for (size_t i = 0; i < n; i++) {
    recs[i] = mapping_from_json(rows[i].value);
    if (recs[i] != NULL && (recs[i]->ddb || recs[i]->kinesis))
      recs[i] = mapping_free(recs[i]); /* streams are per node: never shared */
  }
  pthread_mutex_lock(&ev->map_mu);
  if (ev->map_gen == gen && !ev->map_stopping) { /* else a local change raced the scan */
    for (mapping_rt *m = ev->maps, *next; m != NULL; m = next) {
      next = m->next;
      if (m->deleted || m->ddb || m->kinesis)
        continue;
      size_t i = 0;
      while (i < n && (recs[i] == NULL || strcmp(recs[i]->uuid, m->uuid) != 0))
        i++;
      if (i == n)
        drop_mapping(ev, m);  /* deleted by another node */
      else
        take_record(ev, m, recs[i]);
    }
    for (size_t i = 0; i < n; i++) {
      if (recs[i] != NULL && find(ev, recs[i]->uuid) == NULL) {
        adopt_mapping(ev, recs[i]);  /* created by another node */
        recs[i] = NULL;
      }
    }
  }
  pthread_mutex_unlock(&ev->map_mu);
  for (size_t i = 0; i < n; i++)
    mapping_free(recs[i]);
  arena_free(a);
  pthread_mutex_unlock(&ev->sync_mu);
}

#define SYNC_INTERVAL_MS 1000

static void *sync_main(void *arg)
{
  events_system *ev = arg;
  pthread_mutex_lock(&ev->map_mu);
  while (!ev->map_stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += SYNC_INTERVAL_MS / 1000;
    pthread_cond_timedwait(&ev->sync_cond, &ev->map_mu, &ts);
    if (ev->map_stopping)
      break;
    pthread_mutex_unlock(&ev->map_mu);
    events__mappings_reconcile(ev);
    pthread_mutex_lock(&ev->map_mu);
  }
  pthread_mutex_unlock(&ev->map_mu);
  return NULL;
}

static int resolve(events_system *ev, const char *function, arena *a, const char **name,
                   const char **qual, const char **arn, err *e)
{
  return events__function_resolve(ev, function, NULL, a, name, qual, arn, e);
}

int events_mapping_create(events_system *ev, const events_mapping_params *p, arena *a,
                          events_mapping *out, err *e)
{
  if (p->function == NULL || *p->function == '\0')
    return err_set(e, ERR_INVALID, "FunctionName is required");
  if (ev->pg != NULL && (kinesis_stream(p->source_arn) != NULL ||
                         (p->source_arn != NULL && str_starts(p->source_arn,
                                                              "arn:aws:dynamodb:"))))
    return err_set(e, ERR_INVALID, "tarn keeps Kinesis and DynamoDB streams on each node: with "
                                   "--metadata, event source mappings are from SQS queues only");
  events__mappings_reconcile(ev);  /* the conflict check below sees other nodes' */
  queue_info qi;
  memset(&qi, 0, sizeof qi);
  uint64_t pos = 0;
  const char *stream = kinesis_stream(p->source_arn);
  bool ddb = p->source_arn != NULL && str_starts(p->source_arn, "arn:aws:dynamodb:");
  int rc = stream != NULL ? kinesis_check(ev, stream, p, e)
           : ddb ? events__stream_source(ev, p->source_arn, p->starting_position, &pos, e)
                 : queue_of(ev, p->source_arn, a, &qi, e);
  if (rc != 0)
    return rc;
  const char *name = NULL;
  const char *qual = NULL;
  const char *arn = NULL;
  rc = resolve(ev, p->function, a, &name, &qual, &arn, e);
  if (rc != 0)
    return rc;
  uint32_t batch = p->has_batch_size ? p->batch_size : stream != NULL || ddb ? 100 : 10;
  uint32_t window = p->has_window ? p->window_s : 0;
  rc = check_params(ev, p, qi.fifo, stream != NULL || ddb, batch, window, e);
  if (rc != 0)
    return rc;
  mapping_rt *m = xcalloc(1, sizeof *m);
  uuid_v4(m->uuid);
  m->source_arn = dup_or_null(qi.arn != NULL ? qi.arn : p->source_arn);
  m->ddb = ddb;
  m->pos = pos;
  m->function_arn = dup_or_null(arn);
  m->fname = dup_or_null(name);
  m->fqual = dup_or_null(qual);
  m->batch_size = batch;
  m->window_s = window;
  m->enabled = p->has_enabled ? p->enabled : true;
  m->report_failures = p->has_response_types && p->report_failures;
  m->max_concurrency = p->has_concurrency ? p->max_concurrency : 0;
  m->modified_ms = time_now_ms();
  snprintf(m->last_result, sizeof m->last_result, "No records processed");
  if (stream != NULL) {
    m->kinesis = true;
    m->stream = dup_or_null(stream);
    snprintf(m->start, sizeof m->start, "%s", p->starting_position);
    m->bisect = p->has_bisect && p->bisect;
    m->max_retries = p->has_retries ? p->max_retries : -1;
    enum stream_iterator_type t = strcmp(m->start, "TRIM_HORIZON") == 0 ? STREAM_TRIM_HORIZON
                                  : strcmp(m->start, "AT_TIMESTAMP") == 0 ? STREAM_AT_TIMESTAMP
                                                                          : STREAM_LATEST;
    rc = stream_consumer_start(ev->streams, stream, m->uuid, t, p->starting_timestamp_ms, e);
    if (rc != 0) {
      mapping_free(m);
      return rc;
    }
  }

  pthread_mutex_lock(&ev->map_mu);
  size_t count = 0;
  for (mapping_rt *o = ev->maps; o != NULL; o = o->next) {
    if (o->deleted)
      continue;
    count++;
    if (strcmp(o->source_arn, m->source_arn) == 0 && strcmp(o->function_arn, arn) == 0) {
      rc = err_set(e, ERR_CONFLICT, "An event source mapping with SQS arn (\" %s \") and "
                                    "function (\" %s \") already exists. Please update or "
                                    "delete the existing mapping with UUID %s",
                   o->source_arn, name, o->uuid);
      break;
    }
  }
  if (rc == 0 && count >= EVENTS_MAX_MAPPINGS)
    rc = err_set(e, ERR_INVALID, "tarn keeps at most %d event source mappings",
                 EVENTS_MAX_MAPPINGS);
  if (rc == 0)
    rc = mapping_save(ev, m, e);
  if (rc != 0) {
    pthread_mutex_unlock(&ev->map_mu);
    mapping_free(m);
    return rc;
  }
  ev->map_gen++;
  adopt_mapping(ev, m);
  mapping_out(m, "Creating", a, out);
  pthread_mutex_unlock(&ev->map_mu);
  return 0;
}

int events_mapping_get(events_system *ev, const char *uuid, arena *a, events_mapping *out,
                       err *e)
{
  events__mappings_reconcile(ev);  /* --metadata: answer from the shared records */
  pthread_mutex_lock(&ev->map_mu);
  mapping_rt *m = find(ev, uuid);
  if (m != NULL)
    mapping_out(m, NULL, a, out);
  pthread_mutex_unlock(&ev->map_mu);
  if (m == NULL)
    return err_set(e, ERR_NOT_FOUND, "The resource you requested does not exist. (Service: "
                                     "Lambda, Status Code: 404, Request ID: %s)", uuid);
  return 0;
}

int events_mapping_update(events_system *ev, const char *uuid, const events_mapping_params *p,
                          arena *a, events_mapping *out, err *e)
{
  /* what the mapping is now, to validate the result outside the lock */
  events_mapping cur;
  int rc = events_mapping_get(ev, uuid, a, &cur, e);
  if (rc != 0)
    return rc;
  const char *name = NULL;
  const char *qual = NULL;
  const char *arn = NULL;
  if (p->function != NULL && *p->function != '\0') {
    rc = resolve(ev, p->function, a, &name, &qual, &arn, e);
    if (rc != 0)
      return rc;
  }
  queue_info qi;
  bool fifo = false;
  if (ev->q != NULL && queue_lookup(ev->q, cur.source_arn, a, &qi, e) == 0)
    fifo = qi.fifo;
  err_clear(e);
  uint32_t batch = p->has_batch_size ? p->batch_size : cur.batch_size;
  uint32_t window = p->has_window ? p->window_s : cur.window_s;
  rc = check_params(ev, p, fifo, cur.starting_position != NULL, batch, window, e);
  if (rc != 0)
    return rc;

  pthread_mutex_lock(&ev->map_mu);
  mapping_rt *m = find(ev, uuid);
  if (m == NULL) {
    pthread_mutex_unlock(&ev->map_mu);
    return err_set(e, ERR_NOT_FOUND, "The resource you requested does not exist.");
  }
  bool was = m->enabled;
  mapping_rt saved = *m;
  if (arn != NULL) {
    m->function_arn = dup_or_null(arn);
    m->fname = dup_or_null(name);
    m->fqual = dup_or_null(qual);
  }
  m->batch_size = batch;
  m->window_s = window;
  if (p->has_enabled)
    m->enabled = p->enabled;
  if (p->has_response_types)
    m->report_failures = p->report_failures;
  if (p->has_concurrency)
    m->max_concurrency = p->max_concurrency;
  if (p->has_bisect)
    m->bisect = p->bisect;
  if (p->has_retries)
    m->max_retries = p->max_retries;
  m->modified_ms = time_now_ms();
  rc = mapping_save(ev, m, e);
  if (rc != 0) {
    if (arn != NULL) {
      free(m->function_arn);
      free(m->fname);
      free(m->fqual);
    }
    *m = saved;  /* nothing changed */
    pthread_mutex_unlock(&ev->map_mu);
    return rc;
  }
  if (arn != NULL) {
    free(saved.function_arn);
    free(saved.fname);
    free(saved.fqual);
  }
  ev->map_gen++;
  const char *state = "Updating";
  bool freed = enabled_changed(ev, m, was, &state);
  if (!freed)
    mapping_out(m, state, a, out);
  pthread_mutex_unlock(&ev->map_mu);
  return 0;
}

int events_mapping_delete(events_system *ev, const char *uuid, arena *a, events_mapping *out,
                          err *e)
{
  events__mappings_reconcile(ev);
  pthread_mutex_lock(&ev->map_mu);
  mapping_rt *m = find(ev, uuid);
  if (m == NULL) {
    pthread_mutex_unlock(&ev->map_mu);
    return err_set(e, ERR_NOT_FOUND, "The resource you requested does not exist. (Service: "
                                     "Lambda, Status Code: 404, Request ID: %s)", uuid);
  }
  char key[40];
  snprintf(key, sizeof key, "m/%s", m->uuid);
  int rc = events__meta_write(ev, key, NULL, e);
  if (rc != 0) {
    pthread_mutex_unlock(&ev->map_mu);
    return rc;
  }
  mapping_out(m, "Deleting", a, out);
  ev->map_gen++;
  drop_mapping(ev, m);
  pthread_mutex_unlock(&ev->map_mu);
  return 0;
}

static int by_uuid(const void *x, const void *y)
{
  return strcmp(((const events_mapping *)x)->uuid, ((const events_mapping *)y)->uuid);
}

int events_mapping_list(events_system *ev, const char *source_arn, const char *function,
                        const char *marker, size_t max, arena *a, events_mapping **out,
                        size_t *n, const char **next, err *e)
{
  *out = NULL;
  *n = 0;
  *next = NULL;
  if (max == 0 || max > 10000)
    max = 100;
  const char *fname = NULL;
  const char *fqual = NULL;
  if (function != NULL && *function != '\0') {
    int rc = fn_name_parse(function, NULL, a, &fname, &fqual, e);
    if (rc != 0)
      return rc;
  }
  events__mappings_reconcile(ev);
  pthread_mutex_lock(&ev->map_mu);
  size_t total = 0;
  for (mapping_rt *m = ev->maps; m != NULL; m = m->next)
    total++;
  events_mapping *all = arena_alloc(a, (total + 1) * sizeof *all);
  size_t k = 0;
  for (mapping_rt *m = ev->maps; m != NULL; m = m->next) {
    if (m->deleted)
      continue;
    if (source_arn != NULL && *source_arn != '\0' && strcmp(m->source_arn, source_arn) != 0)
      continue;
    if (fname != NULL && (strcmp(m->fname, fname) != 0 ||
                          (fqual != NULL && (m->fqual == NULL || strcmp(m->fqual, fqual) != 0))))
      continue;
    mapping_out(m, NULL, a, &all[k++]);
  }
  pthread_mutex_unlock(&ev->map_mu);
  qsort(all, k, sizeof *all, by_uuid);
  size_t start = 0;
  if (marker != NULL && *marker != '\0')
    while (start < k && strcmp(all[start].uuid, marker) <= 0)
      start++;
  size_t count = k - start < max ? k - start : max;
  *out = all + start;
  *n = count;
  if (start + count < k)
    *next = all[start + count - 1].uuid;
  return 0;
}
