/* api/native_events.h -- GET /_tarn/events: the events part's live log
 * (events_watch_read) over HTTP, as JSON lines; with ?follow=1 the
 * response is a stream that stays open and carries each new line.
 *
 * native.c routes /_tarn/events here (prepare, then handle; cleanup has
 * nothing to do: the stream outlives the request).
 */
#ifndef TARN_API_NATIVE_EVENTS_H
#define TARN_API_NATIVE_EVENTS_H

#include "events/events.h"
#include "http/http.h"

/* The events part to read (borrowed). Attaching NULL detaches it and waits
 * until every follower has ended (call after events_system_stop, which ends
 * them, and before events_system_close). */
void native_events_attach(events_system *ev);

/* ?after=N (lines after N), ?follow=1 (stream), only GET. */
int native_events_prepare(http_req *r, err *e);
void native_events_handle(http_req *r);


#endif
