/* events/stream_mapping.c -- event source mappings from DynamoDB streams:
 * one poller thread reads each enabled mapping's stream after its position
 * (kv_stream_read), hands the batch to one synchronous invocation of the
 * function as Lambda's DynamoDB event {"Records": [...]}, and moves the
 * position on success.
 *
 * Why a poller of its own: a stream has no receive, no visibility timeout
 * and no delete (what mapping.c's queue slots are built on); what was
 * delivered is a position, kept in the mapping's record (mapping.c,
 * invariant (5)).
 *
 * Invariants:
 *   (1) The position moves only after the function returned without an
 *       error, and is saved with the mapping: a failed batch is retried
 *       (after a second) from the same record, in order; a crash repeats
 *       at most the batch in flight, never skips one.
 *   (2) No lock is held while reading the stream or invoking.
 *
 * Start reading at poller_main().
 */
#include "events/internal.h"

#include "base/mem.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_POLL_MS 200
#define STREAM_JOBS_MAX 64

int events__stream_source(events_system *ev, const char *arn, const char *starting_position,
                          uint64_t *pos, err *e)
{
  if (ev->kv == NULL)
    return err_set(e, ERR_INVALID, "DynamoDB streams are not available");
  if (starting_position == NULL)
    return err_set(e, ERR_INVALID, "1 validation error detected: Value null at "
                                   "'startingPosition' failed to satisfy constraint: Member "
                                   "must not be null");
  bool latest = strcmp(starting_position, "LATEST") == 0;
  if (!latest && strcmp(starting_position, "TRIM_HORIZON") != 0)
    return err_set(e, ERR_INVALID, "Unsupported starting position for DynamoDB streams: '%s' "
                                   "(TRIM_HORIZON or LATEST)", starting_position);
  uint64_t newest = 0;
  err ke = {0};
  if (kv_stream_latest(ev->kv, arn, &newest, &ke) != 0)
    return err_set(e, ERR_INVALID, "Stream not found: %s", arn);
  *pos = latest ? newest : 0;
  return 0;
}

/* Lambda's form of a stream record: the source ARN added, the identity's
 * fields in lower case. */
static json_t *lambda_record(json_t *r, const char *arn)
{
  json_t *o = json_deep_copy(r);
  json_object_set_new(o, "eventSourceARN", json_string(arn));
  json_t *id = json_object_get(o, "userIdentity");
  if (id != NULL)
    json_object_set_new(o, "userIdentity",
                        json_pack("{sOsO}", "type", json_object_get(id, "Type"), "principalId",
                                  json_object_get(id, "PrincipalId")));
  return o;
}

static void run_job(events_system *ev, events_stream_job *j)
{
  json_t *records = NULL;
  uint64_t last = j->pos;
  err e = {0};
  char result[160];
  if (kv_stream_read(ev->kv, j->source_arn, j->pos, j->batch_size, &records, &last, &e) != 0) {
    snprintf(result, sizeof result, "PROBLEM: %.140s", e.msg);
    events__stream_mapping_done(ev, j, j->pos, false, result);
    return;
  }
  if (json_array_size(records) == 0) {
    json_decref(records);
    return;
  }
  json_t *ev_records = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(records, i, r) json_array_append_new(ev_records, lambda_record(r, j->source_arn));
  json_decref(records);
  json_t *event = json_pack("{so}", "Records", ev_records);
  char *payload = json_dumps(event, JSON_COMPACT);
  json_decref(event);
  bool function_error = false;
  int rc = events__mapping_invoke(ev, j->fname, j->fqual, payload, &function_error, &e);
  free(payload);
  bool ok = rc == 0 && !function_error;
  if (ok)
    snprintf(result, sizeof result, "OK");
  else
    snprintf(result, sizeof result, "PROBLEM: %.140s", rc != 0 ? e.msg : "Function call failed");
  events__stream_mapping_done(ev, j, last, ok, result); /* (1) */
}

static bool wait_round(events_system *ev)
{
  pthread_mutex_lock(&ev->map_mu);
  if (!ev->stream_stop) {
    struct timespec ts = time_deadline(CLOCK_MONOTONIC, STREAM_POLL_MS);
    pthread_cond_timedwait(&ev->stream_cond, &ev->map_mu, &ts);
  }
  bool stop = ev->stream_stop;
  pthread_mutex_unlock(&ev->map_mu);
  return !stop;
}

static void *poller_main(void *arg)
{
  events_system *ev = arg;
  events_stream_job *jobs = xcalloc(STREAM_JOBS_MAX, sizeof *jobs);
  while (wait_round(ev)) {
    size_t n = events__stream_mappings(ev, jobs, STREAM_JOBS_MAX);
    for (size_t i = 0; i < n; i++) {
      run_job(ev, &jobs[i]); /* (2) */
      free(jobs[i].source_arn);
      free(jobs[i].fname);
      free(jobs[i].fqual);
    }
  }
  free(jobs);
  return NULL;
}

int events__streams_start(events_system *ev, err *e)
{
  if (ev->kv == NULL || ev->fn == NULL || ev->stream_running)
    return 0;
  int rc = pthread_create(&ev->stream_thread, NULL, poller_main, ev);
  if (rc != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the DynamoDB stream poller: %s", strerror(rc));
  ev->stream_running = true;
  return 0;
}

void events__streams_stop(events_system *ev)
{
  if (!ev->stream_running)
    return;
  pthread_mutex_lock(&ev->map_mu);
  ev->stream_stop = true;
  pthread_cond_broadcast(&ev->stream_cond);
  pthread_mutex_unlock(&ev->map_mu);
  pthread_join(ev->stream_thread, NULL);
  ev->stream_running = false;
}
