/* fn/concurrency.c -- reserved concurrency (Put/Get/DeleteFunctionConcurrency).
 *
 * Why: a reservation is both a field of the function's record and a change
 * of the scheduler's accounting (reserved_sum, unreserved_active); the two
 * must move together.
 *
 * Invariants:
 *   (1) The reservations plus the unreserved floor (100, or 0 when the
 *       account limit is under 100) never exceed the account limit.
 *   (2) The counters move only after the commit, under s->lock, so
 *       admission sees the old reservation or the new one, whole.
 *
 * Start reading at fn_concurrency_put().
 */
#include "fn/internal.h"
#include "fn/registry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- concurrency ---- */

int fn_concurrency_put(fn_system *s, const char *function, int reserved, err *e)
{
  fn__registry_sync(s, function);
  uint32_t floor = s->account_limit < 100 ? 0 : 100;
  pthread_mutex_lock(&s->write_lock);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, function);
  int rc = f ? 0 : fn__not_found(function, e);
  if (rc == 0 && reserved >= 0) {
    uint32_t others = s->reserved_sum - (f->reserved >= 0 ? (uint32_t)f->reserved : 0);
    if ((uint64_t)others + (uint64_t)reserved + floor > s->account_limit)
      rc = err_set(e, ERR_INVALID, "Specified ReservedConcurrentExecutions for function decreases "
                                   "account's UnreservedConcurrentExecution below its minimum "
                                   "value of [%u].", floor);
  }
  conf *latest = f ? f->latest : NULL;
  uint32_t next_version = f ? f->next_version : 0;
  if (rc == 0)
    fn__conf_ref(latest);
  pthread_mutex_unlock(&s->lock);
  if (rc == 0) {
    char *published = fn__published_revision_of(s, function);
    json_t *fr = fn__function_record(f, latest, next_version, reserved, published);
    free(published);
    rc = fn__function_record_put(s, function, fr, e);
    json_decref(fr);
    pthread_mutex_lock(&s->lock);
    if (rc == 0) {
      if (f->reserved >= 0) {
        s->reserved_sum -= (uint32_t)f->reserved;
        s->unreserved_active += f->active; /* its runs move to the shared pool */
      }
      f->reserved = reserved;
      if (reserved >= 0) {
        s->reserved_sum += (uint32_t)reserved;
        s->unreserved_active -= f->active;
      }
    }
    fn__conf_unref(latest);
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&s->write_lock);
  return rc;
}

int fn_concurrency_get(fn_system *s, const char *function, int *reserved, err *e)
{
  fn__registry_sync(s, function);
  pthread_mutex_lock(&s->lock);
  fn_entry *f = fn__registry_find(s, function);
  int rc = f ? 0 : fn__not_found(function, e);
  if (rc == 0)
    *reserved = f->reserved;
  pthread_mutex_unlock(&s->lock);
  return rc;
}
