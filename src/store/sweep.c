/* store/sweep.c -- removes blobs nothing references.
 *
 * Why: blobs are unlinked by the committer after the commit that dropped
 * them, and by store_writer_free; a crash between a commit and those
 * unlinks, or in the middle of a write, leaves files behind. The sweep finds
 * them: at open (nothing is in flight then) and every SWEEP_INTERVAL in the
 * background, for files older than SWEEP_MIN_AGE. Inline objects have no
 * file (their bytes are in the index record), so the sweep never sees them.
 *
 * Invariants:
 *   (1) Per directory, in this order: list the files, snapshot the in-flight
 *       set, begin a read transaction. A file listed was registered in
 *       flight before it existed (blob.c (1)); if it is no longer in flight
 *       its commit has returned, so the later read transaction sees its
 *       reference in db_blobs -- or it was abandoned and is garbage.
 *   (2) Age is measured from the newer of mtime and ctime: link() (copies)
 *       refreshes ctime, so an old blob newly linked is not "old".
 *   (3) Only names of exactly 32 lower-case hex digits in the directory of
 *       their first two are considered; anything else is left alone.
 *
 * Start reading at store__sweep_run().
 */
#include "blob.h"
#include "index.h"

#include "base/hash.h"
#include "base/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_INTERVAL 600   /* seconds between background sweeps */
#define SWEEP_MIN_AGE 3600   /* seconds an unreferenced blob is left alone */

static bool blob_name(const char *name, unsigned xx, blob_id *id)
{
  if (strlen(name) != 32)
    return false;
  for (size_t i = 0; i < 32; i++)
    if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
      return false;
  return hex_decode(name, 32, id->b, sizeof id->b) && id->b[0] == xx;
}

static int64_t newest_change(const struct stat *st)
{
  int64_t m = (int64_t)st->st_mtim.tv_sec;
  int64_t c = (int64_t)st->st_ctim.tv_sec;
  return m > c ? m : c;
}

/* Sweeps one directory; adds what it removed to *removed. */
static int sweep_dir(store *s, unsigned xx, int min_age, long *removed, err *e)
{
  char path[BLOB_PATH_MAX];
  store__blob_dir_path(s, xx, path);
  DIR *d = opendir(path);
  if (d == NULL) {
    int saved = errno;
    if (saved == ENOENT)
      return 0;
    return err_set(e, err_from_errno(saved), "cannot read directory '%s': %s", path,
                   strerror(saved));
  }
  blob_id *ids = NULL;
  size_t n = 0;
  size_t cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    blob_id id;
    if (!blob_name(de->d_name, xx, &id))
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      blob_id *p = xrealloc(ids, cap * sizeof *p);
      ids = p;
    }
    ids[n++] = id;
  }
  int rc = 0;
  if (n > 0) {
    size_t nfly = 0;
    blob_id *fly = store__fly_snapshot(s, &nfly);
    MDB_txn *txn = NULL;
    rc = store__read_begin(s, &txn, e);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
      if (bsearch(&ids[i], fly, nfly, sizeof *fly, store__blob_id_cmp) != NULL)
        continue;
      MDB_val k = { sizeof ids[i].b, ids[i].b };
      MDB_val v;
      int mrc = mdb_get(txn, s->db_blobs, &k, &v);
      if (mrc == 0)
        continue;
      if (mrc != MDB_NOTFOUND) {
        rc = lmdb_error(e, mrc, "read the blob references");
        break;
      }
      char name[33];
      hex_encode(ids[i].b, sizeof ids[i].b, name);
      struct stat st;
      if (min_age > 0 &&
          (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
           now - newest_change(&st) < min_age))
        continue;
      if (unlinkat(dirfd(d), name, 0) == 0)
        (*removed)++;
    }
    if (txn != NULL)
      mdb_txn_abort(txn);
    free(fly);
  }
  free(ids);
  closedir(d);
  return rc;
}

long store__sweep_run(store *s, int min_age, err *e)
{
  pthread_mutex_lock(&s->sweep_mu);
  long removed = 0;
  int rc = 0;
  for (unsigned xx = 0; rc == 0 && xx < 256; xx++)
    rc = sweep_dir(s, xx, min_age, &removed, e);
  pthread_mutex_lock(&s->mu);
  s->swept += (uint64_t)removed;
  pthread_mutex_unlock(&s->mu);
  pthread_mutex_unlock(&s->sweep_mu);
  return rc != 0 ? rc : removed;
}

static void *sweeper_main(void *arg)
{
  store *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += SWEEP_INTERVAL;
    while (!s->stopping) {
      if (pthread_cond_timedwait(&s->sweep_wake, &s->mu, &until) == ETIMEDOUT)
        break;
    }
    if (s->stopping)
      break;
    pthread_mutex_unlock(&s->mu);
    store__sweep_run(s, SWEEP_MIN_AGE, NULL);  /* failures: try again next time */
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int store__sweeper_start(store *s, err *e)
{
  int rc = pthread_create(&s->sweeper, NULL, sweeper_main, s);
  if (rc != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the sweep thread: %s", strerror(rc));
  s->sweeper_running = true;
  return 0;
}
