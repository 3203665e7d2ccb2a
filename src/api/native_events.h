/* api/native_events.h -- GET /_tarn/events: the events part's live log
 * (events_watch_read) over HTTP, as JSON lines; with ?follow=1 the
 * response is a stream that stays open and carries each new line.
 *
 * Routing: native.c routes /_tarn/events here with three lines
 *   prepare:  if (str_starts(r->raw_path, "/_tarn/events")) { r->op = "Events"; return native_events_prepare(r, e); }
 *   handle:   if (strcmp(r->op, "Events") == 0) { native_events_handle(r); return; }
 *   (cleanup has nothing to do: the stream outlives the request)
 * Until then, native_events_wrap puts a service in front of native's that
 * takes /_tarn/events and passes everything else on.
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

/* A service that answers /_tarn/events itself and hands every other
 * request to native (which it does not own). Free with
 * native_events_unwrap. */
http_service *native_events_wrap(http_service *native);
/* Accepts NULL; returns NULL. */
http_service *native_events_unwrap(http_service *wrapper);

#endif
