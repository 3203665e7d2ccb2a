/* store/remote.c -- the object backend: blob bytes kept in another S3
 * endpoint (Ceph RGW, MinIO, AWS S3, another tarn), the index kept here.
 *
 * Why: a store that outgrows one disk keeps its bytes in an S3 cluster and
 * its index, events and SigV4 front here; only blob bytes move.
 *
 * Invariants:
 *   (1) A blob is staged locally (blob.c, not fsync'd: blob.c (7)),
 *       uploaded, and its file removed, all before the commit that
 *       references it: the backend's 2xx is its durability point. It stays
 *       in flight until that commit returned; when the commit fails, the
 *       drop (store__blob_unlink, finding no local file) deletes it in the
 *       backend.
 *   (2) A committed blob lives in exactly one place: its local file (one
 *       committed before the backend was configured, or a copy of one),
 *       else the backend object PREFIX + 32 hex of its id. Readers try the
 *       local file first. The commit fsyncs the blob's directory (commit.c),
 *       so the removal of a staged file is durable before the record is:
 *       a crash never leaves a staged (unsynced) file that a record names.
 *   (3) Reads are ranged GETs into at most two buffers of RD_MAX bytes per
 *       reader (the window being read, the next one fetched ahead): no
 *       object is ever held whole in memory. A reader told its span (a
 *       GET's range) over plain http streams it instead: one ranged GET
 *       whose body goes from the backend's socket straight into the
 *       caller's buffer (egress_stream), the socket's buffer being the
 *       read-ahead; a read elsewhere, or an answer that is not exactly
 *       the range asked for, sends that reader back to windows.
 *   (4) Every request is signed (SigV4, service s3, path style) and goes
 *       only to the configured endpoint (its own netpolicy).
 *   (5) Backend deletes of dropped blobs are queued and made by a thread
 *       of their own (the janitor), never on the committer's thread: a
 *       slow or absent backend never holds up a commit. The queue is
 *       drained when the store closes (up to the first failure: a backend
 *       gone away does not hold the stop); a delete still queued at a
 *       crash or left at a stop leaves an orphan, which (7) removes.
 *   (6) Backend names are per write (a new blob id for every PUT, copy and
 *       completion), so a reader never sees other bytes under its name. A
 *       dropped blob is deleted no sooner than delete_delay_s after the
 *       commit that dropped it (a GET that looked its record up before that
 *       commit has opened its reader by then) and never while a reader has
 *       it open (readers pin their blob: pin_add/pin_del).
 *   (7) The orphan sweep (at start, then every sweep_s) lists PREFIX in the
 *       backend, then snapshots the in-flight set, then reads db_blobs (the
 *       order of sweep.c (1)): it deletes a name of 32 hex digits that is
 *       not in flight, not referenced, not pinned, not queued for (6), and
 *       older than grace_s by the backend's LastModified. Other names are
 *       left alone.
 *   (11) With the index in PostgreSQL (store_metadata_set) there is no
 *       sweep: the references, the in-flight writes and the open readers
 *       are spread over several nodes, and db_blobs here is empty, so a
 *       sweep would delete every object. Orphans then stay in the backend.
 *   (9) A PUT whose length is announced (TAIL_MIN to MULTIPART_OVER) is
 *       uploaded as its bytes come: a thread of its own sends the staged
 *       file while it grows (remote_tail), so the client's upload and the
 *       backend's overlap. Only a complete upload of exactly the announced
 *       bytes stands in for store__remote_put; anything else (the client
 *       gave up, a failed call) is abandoned, and the commit uploads the
 *       file as before. (1) is unchanged: the 2xx comes before the commit.
 *   (12) Uploads to a plain http endpoint go from the staged file to the
 *       socket by sendfile (egress_upload), never through a buffer here;
 *       https ones through libcurl, which reads the file.
 *   (10) DIR/objects-backend records s3://BUCKET[/PREFIX] the first time a
 *       data directory runs with a backend; a start without it, or with
 *       another one, is refused (store_remote_mark): the index would name
 *       bytes that are not there.
 *   (8) Calls made on a server thread take one of max_calls slots (waiting
 *       at most SLOT_WAIT_MS, else SlowDown), and every call fails once no
 *       byte moved for stall_s: a slow backend holds at most max_calls
 *       server threads, each for a bounded time. Background threads (the
 *       janitor, read-ahead) take no slot.
 *
 * Start reading at store_remote_set().
 */
#include "remote.h"

#include "blob.h"

#include "aws/sigv4.h"
#include "base/egress.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/netpolicy.h"
#include "base/xml.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RD_FIRST (256u << 10)   /* a reader's first fetch */
#define RD_MAX (4u << 20)       /* later fetches (sequential reads), at most */
#define CALL_TIMEOUT_MS 120000   /* a whole call, but uploads */
#define PUT_TIMEOUT_MS 3600000
#define ERROR_BODY_MAX (64u << 10)
#define MULTIPART_OVER ((uint64_t)64 << 20)  /* larger blobs go up in parts */
#define PART_SIZE ((uint64_t)64 << 20)
#define SLOT_WAIT_MS 1000        /* (8) */
#define TAIL_MIN (4u << 20)      /* (9): smaller PUTs are uploaded once staged */
#define TAIL_BATCH (1u << 20)    /* (9): the upload is woken per this many bytes */
#define LIST_MAX (8u << 20)      /* a ListObjectsV2 page's answer, at most */

/* (8): set in threads that serve no HTTP request, which take no slot */
static __thread bool background;

typedef struct queued {
  blob_id id;
  int64_t due;                 /* monotonic ms: not deleted before (6) */
} queued;

struct store_remote {
  char *endpoint;              /* scheme://host[:port], no trailing slash */
  char *hostport;              /* the Host header */
  char *bucket;
  char *prefix;                /* "" or ends with '/' */
  char *access_key;
  char *secret_key;
  char *region;
  netpolicy *policy;           /* allows the endpoint only (4) */
  int stall_s;                 /* (8) */
  int max_calls;
  int delete_delay_s;          /* (6) */
  int grace_s;                 /* (7) */
  int sweep_s;

  pthread_mutex_t mu;          /* guards the queue and the sweep's state */
  pthread_cond_t wake;
  bool stopping;
  bool running;                /* the janitor was started (join it) */
  pthread_t janitor;
  queued *dq;                  /* blobs to delete in the backend (5) */
  size_t ndq;
  size_t capdq;
  int64_t next_sweep;          /* monotonic ms (7) */
  uint64_t swept;              /* orphans deleted since start */

  pthread_mutex_t slot_mu;     /* (8) */
  pthread_cond_t slot_free;
  int busy;                    /* slots taken */

  pthread_mutex_t pin_mu;      /* (6): blobs open by readers, a multiset */
  blob_id *pins;
  size_t npins;
  size_t cappins;
};

static int64_t mono_ms(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- pins (6) ---- */

static void pin_add(store_remote *r, const blob_id *id)
{
  pthread_mutex_lock(&r->pin_mu);
  if (r->npins == r->cappins) {
    r->cappins = r->cappins ? r->cappins * 2 : 16;
    r->pins = xrealloc(r->pins, r->cappins * sizeof *r->pins);
  }
  r->pins[r->npins++] = *id;
  pthread_mutex_unlock(&r->pin_mu);
}

static void pin_del(store_remote *r, const blob_id *id)
{
  pthread_mutex_lock(&r->pin_mu);
  for (size_t i = 0; i < r->npins; i++)
    if (memcmp(&r->pins[i], id, sizeof *id) == 0) {
      r->pins[i] = r->pins[--r->npins];
      break;
    }
  pthread_mutex_unlock(&r->pin_mu);
}

static bool pinned(store_remote *r, const blob_id *id)
{
  bool found = false;
  pthread_mutex_lock(&r->pin_mu);
  for (size_t i = 0; !found && i < r->npins; i++)
    found = memcmp(&r->pins[i], id, sizeof *id) == 0;
  pthread_mutex_unlock(&r->pin_mu);
  return found;
}

/* ---- slots (8) ---- */

static int slot_take(store_remote *r, err *e)
{
  if (background)
    return 0;
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += SLOT_WAIT_MS / 1000;
  until.tv_nsec += (long)(SLOT_WAIT_MS % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  int rc = 0;
  pthread_mutex_lock(&r->slot_mu);
  while (rc == 0 && r->busy >= r->max_calls)
    if (pthread_cond_timedwait(&r->slot_free, &r->slot_mu, &until) == ETIMEDOUT &&
        r->busy >= r->max_calls)
      rc = err_set(e, ERR_TOO_MANY_REQUESTS, "the object backend is slow: %d calls to it are "
                   "in progress already; please reduce your request rate", r->max_calls);
  if (rc == 0)
    r->busy++;
  pthread_mutex_unlock(&r->slot_mu);
  return rc;
}

static void slot_give(store_remote *r)
{
  if (background)
    return;
  pthread_mutex_lock(&r->slot_mu);
  r->busy--;
  pthread_cond_signal(&r->slot_free);
  pthread_mutex_unlock(&r->slot_mu);
}

const char *store__remote_name(const store_remote *r, const blob_id *id, arena *a)
{
  char hex[33];
  hex_encode(id->b, sizeof id->b, hex);
  return arena_sprintf(a, "%s%s", r->prefix, hex);
}

/* e (a failed call's) as code, its message prefixed with where it failed
 * (err_wrap: a message is never formatted into itself). */
static int backend_error(err *e, int code)
{
  e->code = code;
  return err_wrap(e, "object backend");
}

/* One signed request, built in rq (arena memory). name NULL: the bucket
 * itself. extra: more headers (lower-case names). up: an upload body (or
 * NULL). */
static void build(const store_remote *r, const char *method, const char *name,
                  const str_pair *query, size_t nquery, const str_pair *extra, size_t nextra,
                  const egress_request *up, size_t max_response, arena *a, egress_request *out)
{
  char *path = name == NULL ? arena_sprintf(a, "/%s", r->bucket)
                            : arena_sprintf(a, "/%s/%s", r->bucket,
                                            uri_encode(a, name, strlen(name), true));
  char *qs = "";
  for (size_t i = 0; i < nquery; i++)
    qs = arena_sprintf(a, "%s%c%s=%s", qs, i == 0 ? '?' : '&', query[i].name,
                       uri_encode(a, query[i].value, strlen(query[i].value), false));
  char amz_date[17];
  time_format_iso8601_basic(time(NULL), amz_date);
  const char *payload = up != NULL ? SIGV4_UNSIGNED_PAYLOAD
                                   : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  size_t nh = 3 + nextra;
  str_pair *h = arena_alloc(a, (nh + 1) * sizeof *h);
  h[0] = (str_pair){"host", r->hostport};
  h[1] = (str_pair){"x-amz-date", arena_strdup(a, amz_date)};
  h[2] = (str_pair){"x-amz-content-sha256", payload};
  for (size_t i = 0; i < nextra; i++)
    h[3 + i] = extra[i];
  sigv4_request sr = {.method = method, .raw_path = path, .query = query, .nquery = nquery,
                      .headers = h, .nheaders = nh};
  char *authz = sigv4_sign_header(&sr, r->access_key, r->secret_key, r->region, "s3", amz_date,
                                  NULL, payload, a);
  h[nh++] = (str_pair){"authorization", authz};
  *out = (egress_request){.method = method,
                       .url = arena_sprintf(a, "%s%s%s", r->endpoint, path, qs),
                       .headers = h, .nheaders = nh, .timeout_ms = CALL_TIMEOUT_MS,
                       .connect_timeout_ms = r->stall_s < 10 ? r->stall_s * 1000 : 10000,
                       .stall_ms = r->stall_s * 1000,
                       .max_response = max_response > ERROR_BODY_MAX ? max_response
                                                                      : ERROR_BODY_MAX};
  if (up != NULL && up->upload) {
    out->upload = true;
    out->upload_fd = up->upload_fd;
    out->upload_off = up->upload_off;
    out->upload_len = up->upload_len;
    out->upload_fn = up->upload_fn;
    out->upload_ready = up->upload_ready;
    out->upload_ctx = up->upload_ctx;
    out->timeout_ms = PUT_TIMEOUT_MS;
  } else if (up != NULL) {  /* a small body in memory (multipart's XML) */
    out->body = up->body;
    out->body_len = up->body_len;
  }
}

static int call_q(const store_remote *r, const char *method, const char *name,
                  const str_pair *query, size_t nquery,
                  const str_pair *extra, size_t nextra, const egress_request *up,
                  size_t max_response, arena *a, egress_response *out, err *e)
{
  egress_request rq;
  build(r, method, name, query, nquery, extra, nextra, up, max_response, a, &rq);
  const char *path = rq.url + strlen(r->endpoint);
  int pl = egress_url_shown(path);  /* never the query string in a message */
  store_remote *rw = (store_remote *)r;  /* the slots are mutable state */
  int rc = slot_take(rw, e);
  if (rc != 0)
    return rc;
  if (rq.upload && rq.upload_fn == NULL && strncmp(r->endpoint, "http://", 7) == 0)
    rc = egress_upload(r->policy, &rq, a, out, e);  /* by sendfile (12) */
  else
    rc = egress_fetch(r->policy, &rq, a, out, e);
  slot_give(rw);
  if (rc != 0)
    return backend_error(e, ERR_UNAVAILABLE);
  /* (1): S3 may answer a failed copy or completion with 200 and an Error */
  if (out->status == 200 && nquery + nextra > 0 && strcmp(method, "GET") != 0 &&
      out->body.data != NULL &&
      strstr(out->body.data, "<Error>") != NULL) {
    rc = err_set(e, ERR_UNAVAILABLE, "object backend: %s %.*s failed: %.300s", method, pl,
                 path, out->body.data);
    buf_release(&out->body);
    return rc;
  }
  if (out->status >= 200 && out->status < 300)
    return 0;
  int code = out->status == 404 ? ERR_NO_SUCH_KEY : ERR_UNAVAILABLE;
  size_t show = out->body.len < 300 ? out->body.len : 300;
  rc = err_set(e, code, "object backend: %s %.*s answered %ld: %.*s", method, pl, path,
               out->status,
               (int)show, out->body.data != NULL ? out->body.data : "");
  buf_release(&out->body);
  return rc;
}

static int call(const store_remote *r, const char *method, const char *name,
                const str_pair *extra, size_t nextra, const egress_request *up,
                size_t max_response, arena *a, egress_response *out, err *e)
{
  return call_q(r, method, name, NULL, 0, extra, nextra, up, max_response, a, out, e);
}

static const char *header(const egress_response *o, const char *name)
{
  for (size_t i = 0; i < o->nheaders; i++)
    if (strcmp(o->headers[i].name, name) == 0)
      return o->headers[i].value;
  return NULL;
}

/* A blob over MULTIPART_OVER bytes goes up in PART_SIZE parts (S3 limits a
 * single PUT to 5 GiB; parts are retried one by one by nobody: a failed
 * part aborts the upload, and the PUT fails). */
static int put_multipart(store *s, const char *name, int fd, uint64_t size, arena *a, err *e)
{
  const store_remote *r = s->remote;
  str_pair q1[1] = {{"uploads", ""}};
  egress_request none = {.body = "", .body_len = 0};
  egress_response out;
  int rc = call_q(r, "POST", name, q1, 1, NULL, 0, &none, 0, a, &out, e);
  if (rc != 0)
    return rc;
  xml_node *root = NULL;
  const char *uid = NULL;
  if (xml_parse(out.body.data ? out.body.data : "", out.body.len, a, &root, e) == 0)
    uid = xml_child_text(root, "UploadId");
  buf_release(&out.body);
  if (uid == NULL || *uid == '\0')
    return err_set(e, ERR_UNAVAILABLE, "object backend: no UploadId for '%s'", name);
  uid = arena_strdup(a, uid);
  uint64_t psize = PART_SIZE;
  while ((size + psize - 1) / psize > 10000)  /* S3 takes at most 10,000 parts */
    psize *= 2;
  size_t nparts = (size_t)((size + psize - 1) / psize);
  buf doc;
  buf_init(&doc, 64 + nparts * 128);
  char line[256];
  buf_append(&doc, "<CompleteMultipartUpload>", 25);
  for (size_t i = 0; rc == 0 && i < nparts; i++) {
    char num[24];
    snprintf(num, sizeof num, "%zu", i + 1);
    str_pair q[2] = {{"partNumber", num}, {"uploadId", uid}};
    uint64_t off = (uint64_t)i * psize;
    egress_request up = {.upload = true, .upload_fd = fd, .upload_off = off,
                         .upload_len = size - off < psize ? size - off : psize};
    rc = call_q(r, "PUT", name, q, 2, NULL, 0, &up, 0, a, &out, e);
    if (rc == 0) {
      const char *etag = header(&out, "etag");
      buf_release(&out.body);
      if (etag == NULL)
        rc = err_set(e, ERR_UNAVAILABLE, "object backend: part %zu of '%s' has no ETag", i + 1,
                     name);
      else if (strlen(etag) > 150 || strpbrk(etag, "<>&") != NULL)
        rc = err_set(e, ERR_UNAVAILABLE, "object backend: part %zu of '%s' has a bad ETag",
                     i + 1, name);
      else
        buf_append(&doc, line, (size_t)snprintf(line, sizeof line,
                   "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1, etag));
    }
  }
  buf_append(&doc, "</CompleteMultipartUpload>", 26);
  str_pair q2[1] = {{"uploadId", uid}};
  if (rc == 0) {
    egress_request body = {.body = doc.data, .body_len = doc.len};
    rc = call_q(r, "POST", name, q2, 1, NULL, 0, &body, 0, a, &out, e);
    if (rc == 0)
      buf_release(&out.body);
  }
  if (rc != 0) {  /* the parts stored so far go */
    err ignored;
    err_clear(&ignored);
    if (call_q(r, "DELETE", name, q2, 1, NULL, 0, NULL, 0, a, &out, &ignored) == 0)
      buf_release(&out.body);
  }
  buf_release(&doc);
  return rc;
}

int store__remote_put(store *s, const blob_id *id, err *e)
{
  char path[BLOB_PATH_MAX];
  store__blob_path(s, id, path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    int saved = errno;
    if (fd >= 0)
      close(fd);
    return err_set(e, err_from_errno(saved), "cannot read blob '%s': %s", path,
                   strerror(saved));
  }
  arena *a = arena_new();
  const char *name = store__remote_name(s->remote, id, a);
  int rc;
  if ((uint64_t)st.st_size > MULTIPART_OVER) {
    rc = put_multipart(s, name, fd, (uint64_t)st.st_size, a, e);
  } else {
    egress_request up = {.upload = true, .upload_fd = fd, .upload_len = (uint64_t)st.st_size};
    egress_response out;
    rc = call(s->remote, "PUT", name, NULL, 0, &up, 0, a, &out, e);
    if (rc == 0)
      buf_release(&out.body);
  }
  close(fd);
  arena_free(a);
  return rc;
}

int store__remote_copy(store *s, const blob_id *from, const blob_id *to, err *e)
{
  arena *a = arena_new();
  const char *src = store__remote_name(s->remote, from, a);
  str_pair h[1] = {{"x-amz-copy-source",
                    arena_sprintf(a, "/%s/%s", s->remote->bucket,
                                  uri_encode(a, src, strlen(src), true))}};
  egress_response out;
  int rc = call(s->remote, "PUT", store__remote_name(s->remote, to, a), h, 1, NULL, 0, a, &out,
                e);
  if (rc == 0)
    buf_release(&out.body);
  arena_free(a);
  return rc;
}

int store__remote_delete(store *s, const blob_id *id, err *e)
{
  arena *a = arena_new();
  egress_response out;
  int rc = call(s->remote, "DELETE", store__remote_name(s->remote, id, a), NULL, 0, NULL, 0, a,
                &out, e);
  if (rc == 0)
    buf_release(&out.body);
  else if (rc == ERR_NO_SUCH_KEY)
    rc = 0;
  arena_free(a);
  return rc;
}

/* ---- uploads as the bytes come (9) ---- */

struct remote_tail {
  store *s;
  blob_id id;
  uint64_t size;               /* the PutObject's Content-Length */
  int fd;                      /* the blob's file, read as it grows */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t grew;
  uint64_t avail;              /* bytes in the file (guarded by mu) */
  uint64_t sent;               /* bytes read for the upload (tail_read's) */
  uint64_t need;               /* the upload waits for avail >= need (mu) */
  bool abort;                  /* the writer gave up (guarded by mu) */
  int rc;                      /* the upload's outcome, once joined */
  err e;
};

/* upload_ready: waits until a batch of TAIL_BATCH bytes past sent (or the
 * rest) is in the file, not for every write of the client's body. */
static long tail_ready(void *ctx, uint64_t sent)
{
  remote_tail *t = ctx;
  pthread_mutex_lock(&t->mu);
  uint64_t left = t->size - sent;
  t->need = sent + (left < TAIL_BATCH ? left : TAIL_BATCH);
  while (t->avail < t->need && !t->abort)
    pthread_cond_wait(&t->grew, &t->mu);
  t->need = 0;
  bool stop = t->abort;
  uint64_t have = t->avail - sent;
  pthread_mutex_unlock(&t->mu);
  if (stop || have == 0)
    return -1;
  return have > (1u << 30) ? (1L << 30) : (long)have;
}

/* upload_fn (an https endpoint: libcurl reads the body) */
static long tail_read(void *ctx, void *p, size_t n)
{
  remote_tail *t = ctx;
  long have = tail_ready(t, t->sent);
  if (have < 0)
    return -1;
  if (n > (size_t)have)
    n = (size_t)have;
  for (;;) {
    ssize_t r = pread(t->fd, p, n, (off_t)t->sent);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    t->sent += (uint64_t)r;
    return (long)r;
  }
}

static void *tail_main(void *arg)
{
  remote_tail *t = arg;
  arena *a = arena_new();
  egress_request up = {.upload = true, .upload_len = t->size, .upload_ctx = t};
  if (strncmp(t->s->remote->endpoint, "http://", 7) == 0) {
    up.upload_fd = t->fd;         /* sendfile as the file grows (12) */
    up.upload_ready = tail_ready;
  } else {
    up.upload_fn = tail_read;
  }
  egress_response out;
  err_clear(&t->e);
  t->rc = call(t->s->remote, "PUT", store__remote_name(t->s->remote, &t->id, a), NULL, 0, &up,
               0, a, &out, &t->e);
  if (t->rc == 0)
    buf_release(&out.body);
  arena_free(a);
  return NULL;
}

remote_tail *store__remote_tail_start(store *s, const blob_id *id, uint64_t size)
{
  /* one PutObject: larger ones go up in parts; small ones arrive too fast
     for the overlap to pay for a thread */
  if (size > MULTIPART_OVER || size < TAIL_MIN)
    return NULL;
  char path[BLOB_PATH_MAX];
  store__blob_path(s, id, path);
  remote_tail *t = xcalloc(1, sizeof *t);
  t->s = s;
  t->id = *id;
  t->size = size;
  t->fd = open(path, O_RDONLY | O_CLOEXEC);
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->grew, NULL);
  if (t->fd < 0 || pthread_create(&t->thread, NULL, tail_main, t) != 0) {
    if (t->fd >= 0)
      close(t->fd);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->grew);
    free(t);
    return NULL;
  }
  return t;
}

void store__remote_tail_grow(remote_tail *t, uint64_t n)
{
  pthread_mutex_lock(&t->mu);
  t->avail = n;
  if (t->need > 0 && n >= t->need)
    pthread_cond_signal(&t->grew);
  pthread_mutex_unlock(&t->mu);
}

int store__remote_tail_end(remote_tail *t, bool complete, err *e)
{
  pthread_mutex_lock(&t->mu);
  if (!complete || t->avail != t->size)
    t->abort = true;
  bool aborted = t->abort;
  pthread_cond_signal(&t->grew);
  pthread_mutex_unlock(&t->mu);
  pthread_join(t->thread, NULL);
  int rc = 0;
  if (aborted) {
    /* a writer given up whose bytes went up whole: they go; a commit's
       caller uploads the file again under the same name (a size that
       differs from the one announced) */
    if (t->rc == 0 && !complete)
      store__remote_delete_later(t->s, &t->id);
    rc = err_set(e, ERR_INVALID, "the upload as the bytes came was given up");
  } else if (t->rc != 0) {
    rc = err_set(e, t->rc, "%s", t->e.msg);
  }
  close(t->fd);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->grew);
  free(t);
  return rc;
}

int store__remote_stage(store *s, const blob_id *id, remote_tail **tail, err *e)
{
  int rc = -1;
  if (tail != NULL && *tail != NULL) {  /* uploaded as it came (9)? else as before */
    err te;
    err_clear(&te);
    rc = store__remote_tail_end(*tail, true, &te);
    *tail = NULL;
    if (rc != 0)
      log_warn("object backend: uploading again: %s", te.msg);
  }
  if (rc != 0)
    rc = store__remote_put(s, id, e);
  if (rc == 0) {
    char path[BLOB_PATH_MAX];
    store__blob_path(s, id, path);
    unlink(path);
  }
  return rc;
}

/* ---- deletes (5), (6) and the orphan sweep (7) ---- */

void store__remote_delete_later(store *s, const blob_id *id)
{
  store_remote *r = s->remote;
  pthread_mutex_lock(&r->mu);
  if (r->ndq == r->capdq) {
    r->capdq = r->capdq ? r->capdq * 2 : 64;
    r->dq = xrealloc(r->dq, r->capdq * sizeof *r->dq);
  }
  r->dq[r->ndq++] = (queued){*id, mono_ms() + (int64_t)r->delete_delay_s * 1000};
  pthread_cond_signal(&r->wake);
  pthread_mutex_unlock(&r->mu);
}

/* The blob id of a backend name PREFIX + 32 lower-case hex digits (7). */
static bool blob_of(const store_remote *r, const char *name, blob_id *id)
{
  size_t pl = strlen(r->prefix);
  if (strncmp(name, r->prefix, pl) != 0 || strlen(name + pl) != 32)
    return false;
  for (const char *c = name + pl; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
      return false;
  return hex_decode(name + pl, 32, id->b, sizeof id->b);
}

/* Whether id waits in the delete queue: the janitor deletes it when due
 * (6), never the sweep. */
static bool queued_delete(store_remote *r, const blob_id *id)
{
  bool found = false;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; !found && i < r->ndq; i++)
    found = memcmp(&r->dq[i].id, id, sizeof *id) == 0;
  pthread_mutex_unlock(&r->mu);
  return found;
}

/* Of the n candidates, deletes those not in flight, not referenced, not
 * pinned and not queued (7); *removed counts them. */
static int sweep_some(store *s, const blob_id *ids, size_t n, long *removed, err *e)
{
  store_remote *r = s->remote;
  size_t nfly = 0;
  blob_id *fly = store__fly_snapshot(s, &nfly);
  MDB_txn *txn = NULL;
  int rc = store__read_begin(s, &txn, e);
  bool *drop = xcalloc(n ? n : 1, sizeof *drop);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (bsearch(&ids[i], fly, nfly, sizeof *fly, store__blob_id_cmp) != NULL)
      continue;
    MDB_val k = {sizeof ids[i].b, (void *)ids[i].b};
    MDB_val v;
    int mrc = mdb_get(txn, s->db_blobs, &k, &v);
    if (mrc == MDB_NOTFOUND)
      drop[i] = true;
    else if (mrc != 0)
      rc = lmdb_error(e, mrc, "read the blob references");
  }
  if (txn != NULL)
    mdb_txn_abort(txn);
  free(fly);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (!drop[i] || pinned(r, &ids[i]) || queued_delete(r, &ids[i]))
      continue;
    err de;
    err_clear(&de);
    if (store__remote_delete(s, &ids[i], &de) == 0)
      (*removed)++;
    else
      log_warn("orphan sweep: %s", de.msg);
  }
  free(drop);
  return rc;
}

long store__remote_sweep(store *s, err *e)
{
  store_remote *r = s->remote;
  long removed = 0;
  if (s->pg != NULL) /* (11) */
    return 0;
  char *token = NULL;
  int64_t now_ms = (int64_t)time(NULL) * 1000;
  int rc = 0;
  do {
    arena *a = arena_new();
    str_pair q[3] = {{"list-type", "2"}, {"prefix", r->prefix}, {"continuation-token", token}};
    egress_response out;
    rc = call_q(r, "GET", NULL, q, token != NULL ? 3 : 2, NULL, 0, NULL, LIST_MAX, a, &out, e);
    free(token);
    token = NULL;
    xml_node *root = NULL;
    if (rc == 0) {
      rc = xml_parse(out.body.data ? out.body.data : "", out.body.len, a, &root, e);
      buf_release(&out.body);
    }
    blob_id *ids = NULL;
    size_t n = 0;
    for (xml_node *c = rc == 0 ? xml_child(root, "Contents") : NULL; c; c = xml_next_same(c)) {
      const char *key = xml_child_text(c, "Key");
      const char *lm = xml_child_text(c, "LastModified");
      int64_t ms = 0;
      blob_id id;
      if (key == NULL || lm == NULL || !time_parse_iso8601(lm, &ms) || !blob_of(r, key, &id) ||
          now_ms - ms < (int64_t)r->grace_s * 1000)
        continue;
      ids = xrealloc(ids, (n + 1) * sizeof *ids);
      ids[n++] = id;
    }
    if (rc == 0 && n > 0)
      rc = sweep_some(s, ids, n, &removed, e);
    free(ids);
    const char *more = rc == 0 ? xml_child_text(root, "IsTruncated") : NULL;
    const char *next = rc == 0 ? xml_child_text(root, "NextContinuationToken") : NULL;
    if (more != NULL && strcmp(more, "true") == 0 && next != NULL && *next)
      token = xstrdup(next);
    arena_free(a);
  } while (token != NULL);
  pthread_mutex_lock(&r->mu);
  r->swept += (uint64_t)removed;
  pthread_mutex_unlock(&r->mu);
  return rc != 0 ? rc : removed;
}

/* The janitor: makes queued deletes once due and unpinned (6), sweeps
 * orphans (7); at stop, makes every queued delete. */
static void *janitor_main(void *arg)
{
  store *s = arg;
  store_remote *r = s->remote;
  background = true;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    int64_t now = mono_ms();
    if (!r->stopping && now >= r->next_sweep) {
      pthread_mutex_unlock(&r->mu);
      err e;
      err_clear(&e);
      long n = store__remote_sweep(s, &e);
      if (n < 0)
        log_warn("orphan sweep of the object backend: %s", e.msg);
      else if (n > 0)
        log_info("orphan sweep: %ld objects deleted in the backend", n);
      pthread_mutex_lock(&r->mu);
      r->next_sweep = mono_ms() + (int64_t)r->sweep_s * 1000;
      continue;
    }
    size_t pick = r->ndq;
    int64_t wake_at = r->next_sweep;
    for (size_t i = 0; i < r->ndq && pick == r->ndq; i++) {
      if (r->stopping || (r->dq[i].due <= now && !pinned(r, &r->dq[i].id)))
        pick = i;
      else if (r->dq[i].due <= now)   /* pinned: look again soon */
        wake_at = wake_at < now + 200 ? wake_at : now + 200;
      else if (r->dq[i].due < wake_at)
        wake_at = r->dq[i].due;
    }
    if (pick < r->ndq) {
      blob_id id = r->dq[pick].id;
      r->dq[pick] = r->dq[--r->ndq];
      pthread_mutex_unlock(&r->mu);
      err e;
      err_clear(&e);
      int drc = store__remote_delete(s, &id, &e);
      if (drc != 0)
        log_warn("cannot delete a dropped object in the backend: %s", e.msg);
      pthread_mutex_lock(&r->mu);
      if (drc != 0 && r->stopping && r->ndq > 0) {  /* the next start's sweep (7) */
        log_warn("%zu deletes in the backend left to the orphan sweep", r->ndq);
        r->ndq = 0;
      }
      continue;
    }
    if (r->stopping)
      break;
    struct timespec until = {.tv_sec = (time_t)(wake_at / 1000),
                             .tv_nsec = (long)(wake_at % 1000) * 1000000L};
    pthread_cond_timedwait(&r->wake, &r->mu, &until);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* ---- reading (3) ----
 * A reader holds the window it serves from and, once it has been read
 * sequentially past its first two fetches, the next window fetched by a
 * thread of its own while the current one is sent: two buffers of RD_MAX
 * at most. */

typedef struct window {
  uint8_t *b;                  /* len bytes (at most RD_MAX), heap */
  uint64_t start;              /* the object offset of b[0] */
  size_t len;                  /* bytes held */
  bool eof;                    /* the object ends at start + len */
} window;

struct remote_rd {
  const store_remote *r;
  char *name;
  bool pin;                    /* id is pinned (6) */
  blob_id id;
  window cur;
  uint64_t end;                /* reads stop here (store__remote_rd_span), or 0 */
  unsigned fetches;
  bool ahead;                  /* the thread fetches next (join it) */
  pthread_t thread;
  window next;
  int next_rc;
  err next_err;
  egress_stream *st;           /* the span streamed (3), or NULL */
  arena *sa;                   /* the stream's request */
  uint64_t st_pos;             /* the object offset of its next byte */
  uint8_t back[64];            /* the last read of the stream, when it was */
  size_t nback;                /* this small (a peek before the answer) */
  bool no_stream;              /* reads go by windows */
};

remote_rd *store__remote_rd_new(const store_remote *r, const char *name)
{
  remote_rd *rd = xcalloc(1, sizeof *rd);
  rd->r = r;
  rd->name = xstrdup(name);
  rd->pin = blob_of(r, name, &rd->id);
  if (rd->pin)
    pin_add((store_remote *)r, &rd->id);
  return rd;
}

static void ahead_join(remote_rd *rd)
{
  if (rd->ahead)
    pthread_join(rd->thread, NULL);
  rd->ahead = false;
}

static void stream_end(remote_rd *rd)
{
  rd->st = egress_stream_close(rd->st);
  if (rd->sa != NULL)
    arena_free(rd->sa);
  rd->sa = NULL;
}

remote_rd *store__remote_rd_free(remote_rd *rd)
{
  if (rd == NULL)
    return NULL;
  ahead_join(rd);
  stream_end(rd);
  if (rd->pin)
    pin_del((store_remote *)rd->r, &rd->id);
  free(rd->cur.b);
  free(rd->next.b);
  free(rd->name);
  free(rd);
  return NULL;
}

/* Fills w with up to want bytes at off (a ranged GET). */
static int fetch(const store_remote *r, const char *name, window *w, uint64_t off, size_t want,
                 err *e)
{
  arena *a = arena_new();
  str_pair h[1] = {{"range", arena_sprintf(a, "bytes=%llu-%llu", (unsigned long long)off,
                                           (unsigned long long)(off + want - 1))}};
  egress_response out;
  int rc = call(r, "GET", name, h, 1, NULL, want, a, &out, e);
  w->start = off;
  w->len = 0;
  w->eof = false;
  if (rc == 0) {
    if (out.status == 200 && off > 0)
      rc = err_set(e, ERR_UNAVAILABLE, "object backend: ranges are not supported");
    else {
      free(w->b);  /* the answer's buffer becomes the window's */
      w->b = (uint8_t *)out.body.data;
      w->len = out.body.len;
      out.body.data = NULL;
      w->eof = w->len < want;
    }
    buf_release(&out.body);
  } else if (e->code == ERR_UNAVAILABLE && strstr(e->msg, "answered 416") != NULL) {
    err_clear(e);
    w->eof = true;
    rc = 0;
  }
  arena_free(a);
  return rc;
}

/* How much a fetch at off asks for: want, or with a known end, what is
 * left up to it (at most RD_MAX, at least n). */
static size_t fetch_size(const remote_rd *rd, uint64_t off, size_t want, size_t n)
{
  if (rd->end > off)
    want = rd->end - off < RD_MAX ? (size_t)(rd->end - off) : RD_MAX;
  if (want < n)
    want = n < RD_MAX ? n : RD_MAX;
  return want;
}

static void *ahead_main(void *arg)
{
  remote_rd *rd = arg;
  background = true;
  err_clear(&rd->next_err);
  rd->next_rc = fetch(rd->r, rd->name, &rd->next, rd->next.start,
                      fetch_size(rd, rd->next.start, RD_MAX, 0), &rd->next_err);
  return NULL;
}

void store__remote_rd_span(remote_rd *rd, uint64_t end)
{
  rd->end = end;
}

/* Starts fetching the window after cur, when reads have been sequential
 * (or are known to go on: a span). */
static void ahead_start(remote_rd *rd)
{
  if (rd->ahead || rd->cur.eof || rd->fetches < (rd->end > 0 ? 1u : 2u))
    return;
  if (rd->end > 0 && rd->cur.start + rd->cur.len >= rd->end)
    return;
  rd->next.start = rd->cur.start + rd->cur.len;
  rd->next.len = 0;
  rd->ahead = pthread_create(&rd->thread, NULL, ahead_main, rd) == 0;
}

/* Streams [off, rd->end) in one ranged GET whose body is read straight
 * into the callers' buffers (3): 0 when it could, 1 when this reader goes
 * by windows instead (an answer not understood, or not the range asked
 * for: the windows report what is wrong), or an error (no slot, no
 * answer). A slot is taken for the exchange of heads (8). */
static int stream_start(remote_rd *rd, uint64_t off, err *e)
{
  store_remote *r = (store_remote *)rd->r;
  rd->no_stream = true;  /* one try per reader */
  if (strncmp(r->endpoint, "http://", 7) != 0)
    return 1;
  int rc = slot_take(r, e);
  if (rc != 0)
    return rc;
  rd->sa = arena_new();
  char *range = arena_sprintf(rd->sa, "bytes=%llu-%llu", (unsigned long long)off,
                              (unsigned long long)(rd->end - 1));
  str_pair h[1] = {{"range", range}};
  egress_request rq;
  build(r, "GET", rd->name, NULL, 0, h, 1, NULL, 0, rd->sa, &rq);
  egress_response out;
  rc = egress_stream_open(r->policy, &rq, rd->sa, &out, &rd->st, e);
  slot_give(r);
  if (rc != 0 && rc != ERR_NOT_IMPLEMENTED) {
    stream_end(rd);
    return backend_error(e, ERR_UNAVAILABLE);
  }
  if (rc == 0) {
    buf_release(&out.body);
    const char *cr = header(&out, "content-range");
    const char *want = arena_sprintf(rd->sa, "bytes %llu-%llu/", (unsigned long long)off,
                                     (unsigned long long)(rd->end - 1));
    if (out.status != 206 || cr == NULL || strncmp(cr, want, strlen(want)) != 0 ||
        egress_stream_left(rd->st) != rd->end - off)
      rc = -1;  /* not the bytes asked for: windows tell what is wrong */
  }
  if (rc != 0) {
    err_clear(e);
    stream_end(rd);
    return 1;
  }
  rd->st_pos = off;
  return 0;
}

/* The next bytes of the stream: without a slot when they are there, else
 * waiting for them (at most stall_s) in a slot (8). 1 when the backend
 * closed the stream early (it may drop a connection left idle while the
 * client was slow): the rest goes by windows. */
static int stream_read(remote_rd *rd, void *p, size_t n, size_t *got, err *e)
{
  store_remote *r = (store_remote *)rd->r;
  int rc = egress_stream_read(rd->st, p, n, false, got, e);
  if (rc == 0 && *got == 0) {
    rc = slot_take(r, e);
    if (rc == 0) {
      rc = egress_stream_read(rd->st, p, n, true, got, e);
      slot_give(r);
    }
  }
  if (rc != 0) {
    stream_end(rd);
    if (rc == ERR_UNAVAILABLE) {
      err_clear(e);
      return 1;
    }
    if (rc == ERR_REQUEST_TIMEOUT)
      rc = backend_error(e, ERR_UNAVAILABLE);
    return rc;
  }
  rd->nback = *got <= sizeof rd->back ? *got : 0;
  memcpy(rd->back, p, rd->nback);
  rd->st_pos += *got;
  return 0;
}

int store__remote_rd_read(remote_rd *rd, uint64_t off, void *p, size_t n, size_t *got, err *e)
{
  *got = 0;
  if (n == 0)
    return 0;
  window *c = &rd->cur;
  if (rd->st != NULL && off < rd->st_pos && off >= rd->st_pos - rd->nback) {  /* again */
    size_t from = rd->nback - (size_t)(rd->st_pos - off);
    *got = rd->nback - from < n ? rd->nback - from : n;
    memcpy(p, rd->back + from, *got);
    return 0;
  }
  if (rd->st != NULL && (off != rd->st_pos || egress_stream_left(rd->st) == 0))
    stream_end(rd);  /* a read elsewhere, or past the span: by windows */
  if (rd->st == NULL && !rd->no_stream && rd->end > off && rd->fetches == 0) {
    int rc = stream_start(rd, off, e);
    if (rc < 0)
      return rc;
  }
  if (rd->st != NULL) {
    int rc = stream_read(rd, p, n, got, e);
    if (rc <= 0)
      return rc;
  }
  if (off < c->start || off >= c->start + c->len) {
    if (c->eof && off >= c->start + c->len && c->len > 0)
      return 0;
    bool took = false;
    if (rd->ahead && rd->next.start == off) {  /* the window fetched ahead */
      ahead_join(rd);
      if (rd->next_rc == 0) {
        window t = *c;
        *c = rd->next;
        rd->next = t;
        rd->fetches++;
        took = true;
      }
    }
    ahead_join(rd);  /* a window not wanted, or failed: fetch here */
    if (!took) {
      size_t want = fetch_size(rd, off, rd->fetches == 0 ? RD_FIRST : RD_MAX, n);
      int rc = fetch(rd->r, rd->name, c, off, want, e);
      rd->fetches++;
      if (rc != 0)
        return rc;
    }
    if (c->len == 0)
      return 0;
  }
  ahead_start(rd);
  size_t from = (size_t)(off - c->start);
  size_t take = c->len - from < n ? c->len - from : n;
  memcpy(p, c->b + from, take);
  *got = take;
  return 0;
}

/* ---- configuration ---- */

/* DIR/objects-backend names the bucket and prefix that hold this data
 * directory's bytes (10). */
#define MARK_MAX 2048

/* a and b name the same bucket and prefix (trailing '/' aside) */
static bool same_url(const char *a, const char *b)
{
  size_t na = strlen(a);
  size_t nb = strlen(b);
  while (na > 0 && a[na - 1] == '/')
    na--;
  while (nb > 0 && b[nb - 1] == '/')
    nb--;
  return na == nb && memcmp(a, b, na) == 0;
}

int store_remote_mark(store *s, const char *url, bool record, err *e)
{
  char path[STORE_DIR_MAX + 32];
  snprintf(path, sizeof path, "%s/objects-backend", s->dir);
  char had[MARK_MAX] = "";
  FILE *f = fopen(path, "r");
  if (f != NULL) {
    size_t n = fread(had, 1, sizeof had - 1, f);
    fclose(f);
    had[n] = '\0';
    had[strcspn(had, "\n")] = '\0';
  }
  if (url == NULL || *url == '\0') {
    if (*had == '\0')
      return 0;
    return err_set(e, ERR_INVALID, "the object bytes of this data directory are in %s "
                   "(%s): start with --objects %s (remove that file to go back to local "
                   "files; the objects in the backend are then lost to this index)", had, path,
                   had);
  }
  if (*had != '\0') {
    if (same_url(had, url))
      return 0;
    return err_set(e, ERR_INVALID, "the object bytes of this data directory are in %s (%s), "
                   "not %s", had, path, url);
  }
  if (!record)
    return 0;
  if (strlen(url) >= MARK_MAX)
    return err_set(e, ERR_INVALID, "--objects is too long");
  char tmp[STORE_DIR_MAX + 40];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && write(fd, url, strlen(url)) == (ssize_t)strlen(url) &&
            write(fd, "\n", 1) == 1 && fsync(fd) == 0;
  if (fd >= 0)
    close(fd);
  if (!ok || rename(tmp, path) != 0) {
    int saved = errno;
    unlink(tmp);
    return err_set(e, err_from_errno(saved), "cannot write '%s': %s", path, strerror(saved));
  }
  return 0;
}

void store__remote_free(store_remote *r)
{
  if (r == NULL)
    return;
  pthread_mutex_lock(&r->mu);
  r->stopping = true;
  pthread_cond_signal(&r->wake);
  pthread_mutex_unlock(&r->mu);
  if (r->running)
    pthread_join(r->janitor, NULL);  /* drains the queue */
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->wake);
  pthread_mutex_destroy(&r->slot_mu);
  pthread_cond_destroy(&r->slot_free);
  pthread_mutex_destroy(&r->pin_mu);
  free(r->pins);
  free(r->dq);
  free(r->endpoint);
  free(r->hostport);
  free(r->bucket);
  free(r->prefix);
  free(r->access_key);
  if (r->secret_key != NULL)
    memset(r->secret_key, 0, strlen(r->secret_key));
  free(r->secret_key);
  free(r->region);
  netpolicy_free(r->policy);
  free(r);
}

int store_remote_set(store *s, const store_remote_conf *c, err *e)
{
  if (c->url == NULL || strncmp(c->url, "s3://", 5) != 0 || c->url[5] == '\0' ||
      c->url[5] == '/')
    return err_set(e, ERR_INVALID, "--objects takes s3://BUCKET[/PREFIX], not '%s'",
                   c->url ? c->url : "");
  if (c->access_key == NULL || c->secret_key == NULL)
    return err_set(e, ERR_INVALID, "the object backend needs an access key and a secret key");
  store_remote *r = xcalloc(1, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_mutex_init(&r->slot_mu, NULL);
  pthread_mutex_init(&r->pin_mu, NULL);
  pthread_condattr_t ca;  /* both waits are on the monotonic clock */
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->wake, &ca);
  pthread_cond_init(&r->slot_free, &ca);
  pthread_condattr_destroy(&ca);
  r->stall_s = c->timeout_s > 0 ? c->timeout_s : 30;
  r->max_calls = c->max_calls > 0 ? c->max_calls : 16;
  r->delete_delay_s = c->delete_delay_s > 0 ? c->delete_delay_s : 10;
  r->grace_s = c->orphan_grace_s > 0 ? c->orphan_grace_s : 3600;
  r->sweep_s = c->sweep_s > 0 ? c->sweep_s : 600;
  const char *b = c->url + 5;
  const char *slash = strchr(b, '/');
  r->bucket = slash ? xstrndup(b, (size_t)(slash - b)) : xstrdup(b);
  const char *pre = slash ? slash + 1 : "";
  size_t pl = strlen(pre);
  while (pl > 0 && pre[pl - 1] == '/')
    pl--;
  r->prefix = xmalloc(pl + 2);
  memcpy(r->prefix, pre, pl);
  r->prefix[pl] = '/';
  r->prefix[pl > 0 ? pl + 1 : 0] = '\0';
  r->region = xstrdup(c->region != NULL && *c->region ? c->region : "us-east-1");
  char aws[160];
  snprintf(aws, sizeof aws, "https://s3.%s.amazonaws.com", r->region);
  r->endpoint = xstrdup(c->endpoint != NULL && *c->endpoint ? c->endpoint : aws);
  size_t el = strlen(r->endpoint);
  while (el > 0 && r->endpoint[el - 1] == '/')
    r->endpoint[--el] = '\0';
  r->access_key = xstrdup(c->access_key);
  r->secret_key = xstrdup(c->secret_key);
  const char *hp = strstr(r->endpoint, "://");
  hp = hp != NULL ? hp + 3 : r->endpoint;
  r->hostport = xstrndup(hp, strcspn(hp, "/"));
  if (strchr(hp, '/') != NULL) {
    store__remote_free(r);
    return err_set(e, ERR_INVALID, "the object backend's endpoint has no path: '%s'",
                   c->endpoint);
  }
  char host[NETPOLICY_HOST_MAX];
  unsigned port = 0;
  r->policy = netpolicy_new();
  int rc = egress_url_host(r->endpoint, host, sizeof host, &port, e);
  if (rc == 0) {
    char allow[NETPOLICY_HOST_MAX + 16];
    snprintf(allow, sizeof allow, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    rc = netpolicy_allow(r->policy, allow, e);
  }
  if (rc == 0) {  /* the bucket must answer now, not at the first PUT */
    arena *a = arena_new();
    egress_response out;
    rc = call(r, "HEAD", NULL, NULL, 0, NULL, 0, a, &out, e);
    if (rc == 0)
      buf_release(&out.body);
    else if (rc == ERR_NO_SUCH_KEY)
      rc = err_set(e, ERR_NO_SUCH_BUCKET, "the object backend has no bucket '%s'", r->bucket);
    arena_free(a);
  }
  if (rc != 0) {
    store__remote_free(r);
    return rc;
  }
  s->remote = r;
  if (pthread_create(&r->janitor, NULL, janitor_main, s) != 0) {
    s->remote = NULL;
    store__remote_free(r);
    return err_set(e, ERR_INTERNAL, "cannot start the object backend's janitor");
  }
  r->running = true;
  return 0;
}
