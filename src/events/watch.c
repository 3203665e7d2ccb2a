/* events/watch.c -- the live log behind `tarn events`: the last
 * EVENTS_WATCH_KEEP lines of JSON describing what the events part did
 * (changes and their deliveries, mapping batches, asynchronous outcomes,
 * test events), numbered, with readers that wait for new lines.
 *
 * Why in memory: it is a view for people, not a record; the durable record
 * is the feed (until delivered) and the targets themselves.
 *
 * Invariants:
 *   (1) Line numbers start at 1 and never repeat; line n is ring[(n-1) %
 *       KEEP] while n > wlast - KEEP.
 *   (2) After events__watch_stop no reader waits and no line is added.
 *
 * Start reading at events_watch_read().
 */
#include "events/internal.h"

#include "base/mem.h"
#include "base/text.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void events__watch_add(events_system *ev, const char *line)
{
  char *copy = xstrdup(line);
  pthread_mutex_lock(&ev->wmu);
  if (ev->wstop) {
    pthread_mutex_unlock(&ev->wmu);
    free(copy);
    return;
  }
  ev->wlast++;
  size_t slot = (size_t)((ev->wlast - 1) % EVENTS_WATCH_KEEP);
  free(ev->ring[slot]);
  ev->ring[slot] = copy;
  pthread_cond_broadcast(&ev->wcond);
  pthread_mutex_unlock(&ev->wmu);
}

int events_watch_read(events_system *ev, uint64_t after, size_t max, int wait_ms, buf *out,
                      uint64_t *last, err *e)
{
  *last = after;
  if (max == 0)
    max = EVENTS_WATCH_KEEP;
  pthread_mutex_lock(&ev->wmu);
  if (wait_ms > 0 && ev->wlast <= after && !ev->wstop) {
    struct timespec ts = time_deadline(CLOCK_MONOTONIC, wait_ms);
    while (ev->wlast <= after && !ev->wstop)
      if (pthread_cond_timedwait(&ev->wcond, &ev->wmu, &ts) != 0)
        break;
  }
  if (ev->wstop && ev->wlast <= after) {
    pthread_mutex_unlock(&ev->wmu);
    return err_set(e, ERR_UNAVAILABLE, "tarn is stopping");
  }
  uint64_t first = after + 1;
  if (ev->wlast > EVENTS_WATCH_KEEP && first <= ev->wlast - EVENTS_WATCH_KEEP)
    first = ev->wlast - EVENTS_WATCH_KEEP + 1;  /* older lines are gone */
  int rc = 0;
  size_t given = 0;
  for (uint64_t n = first; n <= ev->wlast && given < max; n++) {
    const char *line = ev->ring[(n - 1) % EVENTS_WATCH_KEEP];
    rc = buf_puts(out, line);
    if (rc == 0)
      rc = buf_puts(out, "\n");
    if (rc != 0)
      break;
    *last = n;
    given++;
  }
  pthread_mutex_unlock(&ev->wmu);
  if (rc != 0 && given == 0)
    return err_set(e, rc, "the event log line does not fit");
  return 0;
}

void events__watch_stop(events_system *ev)
{
  pthread_mutex_lock(&ev->wmu);
  ev->wstop = true;
  pthread_cond_broadcast(&ev->wcond);
  pthread_mutex_unlock(&ev->wmu);
}

void events__watch_free(events_system *ev)
{
  for (size_t i = 0; i < EVENTS_WATCH_KEEP; i++) {
    free(ev->ring[i]);
    ev->ring[i] = NULL;
  }
}
