/* store/remote.h -- blob bytes kept in another S3 endpoint (remote.c).
 * Private to src/store/. */
#ifndef TARN_STORE_REMOTE_H
#define TARN_STORE_REMOTE_H

#include "internal.h"

/* The backend object that holds blob id (arena memory). */
const char *store__remote_name(const store_remote *r, const blob_id *id, arena *a);

/* Uploads the (finished, fsync'd) local blob id to the backend: 0 once the
 * backend acknowledged it (its 200 is the durability point). */
int store__remote_put(store *s, const blob_id *id, err *e);
/* An upload of blob id made while its file is written (remote.c (9)):
 * size bytes will be; NULL when it cannot be (then upload as before). */
typedef struct remote_tail remote_tail;
remote_tail *store__remote_tail_start(store *s, const blob_id *id, uint64_t size);
/* The file holds n bytes now. */
void store__remote_tail_grow(remote_tail *t, uint64_t n);
/* complete: the file is whole; 0 once the backend acknowledged exactly
 * the announced bytes. Else (or !complete) the upload is given up (and a
 * finished one deleted when !complete). Frees t. */
int store__remote_tail_end(remote_tail *t, bool complete, err *e);

/* Uploads the blob (through *tail when it holds a finished upload, else
 * store__remote_put; *tail is ended and set NULL), then removes the local
 * file: the blob is only in the backend (invariant (1) of remote.c). */
int store__remote_stage(store *s, const blob_id *id, remote_tail **tail, err *e);
/* Server-side copy of blob from to blob to in the backend. ERR_NO_SUCH_KEY
 * when from is not there (an overwrite removed it meanwhile). */
int store__remote_copy(store *s, const blob_id *from, const blob_id *to, err *e);
/* Removes blob id from the backend (a missing one is no error). */
int store__remote_delete(store *s, const blob_id *id, err *e);
/* Queues that removal for the deleter thread (invariant (5)). */
void store__remote_delete_later(store *s, const blob_id *id);

/* The orphan sweep (remote.c (7)): deletes unreferenced backend objects
 * older than the grace period; returns how many, or an error code. */
long store__remote_sweep(store *s, err *e);

/* A reader of one backend object: ranged GETs into a read-ahead buffer of
 * bounded size, never the whole object; or, told its span over plain
 * http, one ranged GET read straight into the caller's buffers. */
typedef struct remote_rd remote_rd;
remote_rd *store__remote_rd_new(const store_remote *r, const char *name);
/* Reads will stop at end (a GET's range): the span is streamed (remote.c
 * (3)), or fetches ask for what is left (RD_MAX at most), and the next is
 * fetched ahead at once. */
void store__remote_rd_span(remote_rd *rd, uint64_t end);
/* Up to n bytes at off (fewer only at the object's end). */
int store__remote_rd_read(remote_rd *rd, uint64_t off, void *p, size_t n, size_t *got, err *e);
remote_rd *store__remote_rd_free(remote_rd *rd);

void store__remote_free(store_remote *r);

#endif
