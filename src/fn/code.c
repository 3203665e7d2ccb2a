/* fn/code.c -- function code: zip validation and extraction (libzip).
 *
 * Why: a zip comes from a client and is unpacked on the host, then mounted
 * read-only into sandboxes; a hostile zip must not write outside its folder,
 * fill the disk, or plant a link that leads out of /var/task.
 *
 * Invariants:
 *   (1) Extraction never follows a symlink: folders are walked with
 *       O_NOFOLLOW|O_DIRECTORY, files created with O_EXCL|O_NOFOLLOW, and
 *       symlinks are created last, after every file and folder.
 *   (2) A symlink target is relative, of the form (../)*name(/name)*, with
 *       no more ".." than the link's folder is deep. Since every link's
 *       folder is a real folder (1), such a target resolves inside the code
 *       folder whatever other links it crosses (each of which does too).
 *   (3) Sizes are counted on the bytes actually inflated, not taken from the
 *       headers, and stop at the limit.
 *   (4) A code folder DATA/fn/code/<hex> appears whole (extracted into
 *       tmp-*, synced, renamed) and is never changed after; hex is the
 *       SHA-256 of the zip, so equal zips share one folder.
 *   (5) A file keeps the modification time its entry has (the extended
 *       timestamp field `zip` writes, to the second, else the DOS time),
 *       as unzip does: Python's cached bytecode (__pycache__) is used only
 *       when its source's time matches, so a zip of a library with its
 *       .pyc files starts as fast as the library installed.
 *
 * Start reading at fn_code_extract().
 */
#include "fn/internal.h"

#include "base/hash.h"
#include "base/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#define BAD_ZIP "Could not unzip uploaded file. Please check your file, then try to upload again."
#define MAX_NAME 4096
#define MAX_COMPONENT 255

typedef struct link_rec {
  char *name;
  char *target;
} link_rec;

/* Splits a zip entry name into validated components in comps (pointers
 * into copy). "." and empty components (a trailing '/') are dropped. */
static int split_name(const char *name, char *copy, char **comps, size_t *ncomps, err *e)
{
  size_t len = strlen(name);
  if (len == 0 || len >= MAX_NAME)
    return err_set(e, ERR_INVALID, "%s (entry name of %zu bytes)", BAD_ZIP, len);
  if (name[0] == '/')
    return err_set(e, ERR_INVALID, "the zip entry '%s' has an absolute path", name);
  memcpy(copy, name, len + 1);
  size_t n = 0;
  char *save = NULL;
  for (char *c = strtok_r(copy, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0)
      continue;
    if (strcmp(c, "..") == 0)
      return err_set(e, ERR_INVALID, "the zip entry '%s' leads out of its folder", name);
    if (strlen(c) > MAX_COMPONENT)
      return err_set(e, ERR_INVALID, "the zip entry '%s' has a name part over %d bytes", name,
                     MAX_COMPONENT);
    comps[n++] = c;
  }
  *ncomps = n;
  return 0;
}

/* Opens (creating) the folder comps[0..n) under root, never following a
 * link. Returns an fd or -1 with e set. */
static int open_dirs(int root, char **comps, size_t n, const char *name, err *e)
{
  int fd = dup(root);
  if (fd < 0) {
    err_set(e, err_from_errno(errno), "cannot extract the zip: %s", strerror(errno));
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (mkdirat(fd, comps[i], 0755) != 0 && errno != EEXIST) {
      err_set(e, err_from_errno(errno), "cannot extract '%s': %s", name, strerror(errno));
      close(fd);
      return -1;
    }
    int next = openat(fd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(fd);
    if (next < 0) {
      err_set(e, ERR_INVALID, "the zip entry '%s' conflicts with another entry", name);
      return -1;
    }
    fd = next;
  }
  return fd;
}

/* Invariant (2). depth: components of the link's folder. */
static bool link_target_ok(const char *target, size_t depth)
{
  if (target[0] == '\0' || target[0] == '/' || strlen(target) >= MAX_NAME)
    return false;
  size_t ups = 0;
  bool in_names = false;
  const char *p = target;
  while (*p) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.') {
      if (in_names)
        return false;
      ups++;
    } else if (n == 1 && p[0] == '.') {
      /* no-op */
    } else if (n == 0) {
      if (slash == NULL)
        break;
    } else {
      in_names = true;
    }
    if (slash == NULL)
      break;
    p = slash + 1;
  }
  return ups <= depth;
}

static int read_entry(zip_t *z, zip_uint64_t i, const char *name, int outfd, char *small,
                      size_t small_cap, size_t *small_len, uint64_t *total, uint64_t max,
                      err *e)
{
  zip_file_t *zf = zip_fopen_index(z, i, 0);
  if (zf == NULL)
    return err_set(e, ERR_INVALID, "%s (entry '%s': %s)", BAD_ZIP, name, zip_strerror(z));
  char chunk[65536];
  int rc = 0;
  size_t got = 0;
  for (;;) {
    zip_int64_t n = zip_fread(zf, chunk, sizeof chunk);
    if (n < 0) {
      rc = err_set(e, ERR_INVALID, "%s (entry '%s': %s)", BAD_ZIP, name,
                   zip_file_strerror(zf));
      break;
    }
    if (n == 0)
      break;
    *total += (uint64_t)n;
    if (*total > max) {
      rc = err_set(e, ERR_INVALID, "Unzipped size must be smaller than %llu bytes",
                   (unsigned long long)max);
      break;
    }
    if (outfd >= 0) {
      const char *p = chunk;
      size_t left = (size_t)n;
      while (left > 0) {
        ssize_t w = write(outfd, p, left);
        if (w < 0 && errno == EINTR)
          continue;
        if (w <= 0) {
          rc = err_set(e, err_from_errno(errno), "cannot write '%s': %s", name, strerror(errno));
          break;
        }
        p += w;
        left -= (size_t)w;
      }
      if (rc != 0)
        break;
    } else {
      if (got + (size_t)n >= small_cap) {
        rc = err_set(e, ERR_INVALID, "the zip entry '%s' is a symlink with too long a target",
                     name);
        break;
      }
      memcpy(small + got, chunk, (size_t)n);
      got += (size_t)n;
    }
  }
  zip_fclose(zf);
  if (small != NULL) {
    small[got] = '\0';
    *small_len = got;
  }
  return rc;
}

/* Invariant (5): the entry's time, or 0 when it has none. */
static time_t entry_mtime(zip_t *z, zip_uint64_t i)
{
  static const zip_flags_t where[] = {ZIP_FL_LOCAL, ZIP_FL_CENTRAL};
  for (size_t k = 0; k < 2; k++) {
    zip_uint16_t len = 0;
    const zip_uint8_t *ut = zip_file_extra_field_get_by_id(z, i, 0x5455, 0, &len, where[k]);
    if (ut != NULL && len >= 5 && (ut[0] & 1))
      return (time_t)(int32_t)((uint32_t)ut[1] | (uint32_t)ut[2] << 8 | (uint32_t)ut[3] << 16 |
                               (uint32_t)ut[4] << 24);
  }
  zip_stat_t st;
  if (zip_stat_index(z, i, 0, &st) == 0 && (st.valid & ZIP_STAT_MTIME))
    return st.mtime;
  return 0;
}

static int extract_all(zip_t *z, int root, uint64_t max, uint64_t *unzipped, err *e)
{
  zip_int64_t count = zip_get_num_entries(z, 0);
  if (count < 0)
    return err_set(e, ERR_INVALID, "%s", BAD_ZIP);
  if (count > FN_MAX_ZIP_ENTRIES)
    return err_set(e, ERR_INVALID, "the zip has %lld entries, more than %d",
                   (long long)count, FN_MAX_ZIP_ENTRIES);
  /* A first pass over the declared sizes refuses the obvious bombs early. */
  uint64_t declared = 0;
  for (zip_int64_t i = 0; i < count; i++) {
    zip_stat_t st;
    if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) != 0)
      return err_set(e, ERR_INVALID, "%s", BAD_ZIP);
    if (st.valid & ZIP_STAT_SIZE)
      declared += st.size;
  }
  if (declared > max)
    return err_set(e, ERR_INVALID, "Unzipped size must be smaller than %llu bytes",
                   (unsigned long long)max);

  link_rec *links = NULL;
  size_t nlinks = 0;
  uint64_t total = 0;
  int rc = 0;
  char *copy = xmalloc(MAX_NAME);
  char **comps = xmalloc(sizeof(char *) * (MAX_NAME / 2 + 1));
  for (zip_int64_t i = 0; i < count && rc == 0; i++) {
    const char *name = zip_get_name(z, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
    if (name == NULL) {
      rc = err_set(e, ERR_INVALID, "%s", BAD_ZIP);
      break;
    }
    size_t ncomps = 0;
    if ((rc = split_name(name, copy, comps, &ncomps, e)) != 0)
      break;
    zip_uint8_t opsys = 0;
    zip_uint32_t attr = 0;
    zip_file_get_external_attributes(z, (zip_uint64_t)i, 0, &opsys, &attr);
    mode_t mode = opsys == ZIP_OPSYS_UNIX ? (mode_t)(attr >> 16) : 0;
    bool is_dir = name[strlen(name) - 1] == '/' || S_ISDIR(mode);
    if (ncomps == 0) {
      if (is_dir)
        continue; /* "./" */
      rc = err_set(e, ERR_INVALID, "%s (entry '%s')", BAD_ZIP, name);
      break;
    }
    if (is_dir) {
      int fd = open_dirs(root, comps, ncomps, name, e);
      if (fd < 0) {
        rc = e->code;
        break;
      }
      close(fd);
      continue;
    }
    if ((mode & S_IFMT) != 0 && !S_ISREG(mode) && !S_ISLNK(mode)) {
      rc = err_set(e, ERR_INVALID, "the zip entry '%s' is neither a file, a folder nor a symlink",
                   name);
      break;
    }
    int dfd = open_dirs(root, comps, ncomps - 1, name, e);
    if (dfd < 0) {
      rc = e->code;
      break;
    }
    if (S_ISLNK(mode)) {
      char *target = xmalloc(MAX_NAME + 1);
      size_t tlen = 0;
      rc = read_entry(z, (zip_uint64_t)i, name, -1, target, MAX_NAME, &tlen, &total, max, e);
      if (rc == 0 && (memchr(target, '\0', tlen) != NULL || !link_target_ok(target, ncomps - 1)))
        rc = err_set(e, ERR_INVALID, "the zip entry '%s' is a symlink that leads out of its folder",
                     name);
      if (rc == 0) {
        /* The link is made last (invariant 1); reserve its name now. */
        int fd = openat(dfd, comps[ncomps - 1], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0600);
        if (fd < 0)
          rc = err_set(e, ERR_INVALID, "the zip entry '%s' is there twice", name);
        else
          close(fd);
      }
      if (rc == 0) {
        links = xrealloc(links, (nlinks + 1) * sizeof *links);
        /* Its path relative to root, rebuilt from the components. */
        size_t plen = 0;
        char *path = xmalloc(MAX_NAME + 1);
        for (size_t k = 0; k < ncomps; k++)
          plen += (size_t)snprintf(path + plen, MAX_NAME + 1 - plen, "%s%s", k ? "/" : "",
                                   comps[k]);
        links[nlinks].name = path;
        links[nlinks].target = target;
        nlinks++;
      } else {
        free(target);
      }
      close(dfd);
      continue;
    }
    mode_t perm = (mode & 0100) ? 0755 : 0644;
    int fd = openat(dfd, comps[ncomps - 1], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
    if (fd < 0) {
      rc = errno == EEXIST ? err_set(e, ERR_INVALID, "the zip entry '%s' is there twice", name)
                           : err_set(e, err_from_errno(errno), "cannot extract '%s': %s", name,
                                     strerror(errno));
      close(dfd);
      break;
    }
    rc = read_entry(z, (zip_uint64_t)i, name, fd, NULL, 0, NULL, &total, max, e);
    if (rc == 0 && fchmod(fd, perm) != 0)
      rc = err_set(e, err_from_errno(errno), "cannot extract '%s': %s", name, strerror(errno));
    time_t mtime = rc == 0 ? entry_mtime(z, (zip_uint64_t)i) : 0;
    if (mtime > 0) {
      struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
      futimens(fd, ts);
    }
    close(fd);
    close(dfd);
  }
  for (size_t i = 0; i < nlinks; i++) {
    if (rc == 0) {
      /* Replace the placeholder by the link, in its real folder. */
      char *slash = strrchr(links[i].name, '/');
      int dfd;
      const char *leaf;
      if (slash != NULL) {
        *slash = '\0';
        dfd = openat(root, links[i].name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        leaf = slash + 1;
      } else {
        dfd = dup(root);
        leaf = links[i].name;
      }
      if (dfd < 0 || unlinkat(dfd, leaf, 0) != 0 || symlinkat(links[i].target, dfd, leaf) != 0)
        rc = err_set(e, ERR_INVALID, "cannot create the symlink '%s'", leaf);
      if (dfd >= 0)
        close(dfd);
    }
    free(links[i].name);
    free(links[i].target);
  }
  free(links);
  free(copy);
  free(comps);
  *unzipped = total;
  return rc;
}

static int extract_zip(zip_t *z, const char *dir, uint64_t max, uint64_t *unzipped, err *e)
{
  if (mkdir(dir, 0755) != 0)
    return err_set(e, err_from_errno(errno), "cannot create '%s': %s", dir, strerror(errno));
  int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    int rc = err_set(e, err_from_errno(errno), "cannot open '%s': %s", dir, strerror(errno));
    fn__rmtree(dir);
    return rc;
  }
  int rc = extract_all(z, root, max, unzipped, e);
  if (rc == 0 && syncfs(root) != 0)
    rc = err_set(e, err_from_errno(errno), "cannot sync '%s': %s", dir, strerror(errno));
  close(root);
  if (rc != 0)
    fn__rmtree(dir);
  return rc;
}

static zip_t *open_buffer(const void *data, size_t len, err *e)
{
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
  if (src == NULL) {
    zip_error_fini(&ze);
    err_set(e, ERR_INVALID, "%s", BAD_ZIP);
    return NULL;
  }
  zip_t *z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
  if (z == NULL) {
    zip_source_free(src);
    err_set(e, ERR_INVALID, "%s", BAD_ZIP);
  }
  zip_error_fini(&ze);
  return z;
}

int fn_code_extract(const void *zip, size_t len, const char *dir, uint64_t max_unzipped,
                    uint64_t *unzipped, err *e)
{
  zip_t *z = open_buffer(zip, len, e);
  if (z == NULL)
    return e->code;
  int rc = extract_zip(z, dir, max_unzipped, unzipped, e);
  zip_discard(z);
  return rc;
}

/* Extracts z (whose digest is known) into DATA/fn/code/<hex> unless it is
 * there already. */
static int code_install(fn_system *s, zip_t *z, fn_code *out, err *e)
{
  char final[4096];
  snprintf(final, sizeof final, "%s/%s", s->code_dir, out->sha256_hex);
  struct stat st;
  if (stat(final, &st) == 0 && S_ISDIR(st.st_mode)) {
    out->unzipped_size = fn__tree_size(final);
    return 0;
  }
  char tmp[4096];
  char id[37];
  uuid_v4(id);
  snprintf(tmp, sizeof tmp, "%s/tmp-%s", s->code_dir, id);
  int rc = extract_zip(z, tmp, FN_MAX_UNZIPPED, &out->unzipped_size, e);
  if (rc != 0)
    return rc;
  if (rename(tmp, final) != 0) {
    int saved = errno;
    fn__rmtree(tmp);
    if (saved != EEXIST && saved != ENOTEMPTY)
      return err_set(e, err_from_errno(saved), "cannot install code '%s': %s", final,
                     strerror(saved));
  }
  int dfd = open(s->code_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

static void digest_names(const uint8_t d[SHA256_LEN], fn_code *out)
{
  hex_encode(d, SHA256_LEN, out->sha256_hex);
  base64_encode(d, SHA256_LEN, out->sha256_b64);
}

int fn_code_add(fn_system *s, const void *zip, size_t len, fn_code *out, err *e)
{
  memset(out, 0, sizeof *out);
  if (len > FN_MAX_ZIP_REQUEST)
    return err_set(e, ERR_ENTITY_TOO_LARGE, "Zipped size must be smaller than %u bytes",
                   FN_MAX_ZIP_REQUEST);
  uint8_t d[SHA256_LEN];
  sha256(zip, len, d);
  digest_names(d, out);
  out->zip_size = len;
  zip_t *z = open_buffer(zip, len, e);
  if (z == NULL)
    return e->code;
  int rc = code_install(s, z, out, e);
  zip_discard(z);
  if (rc == 0 && s->pg != NULL)
    rc = fn__pg_code_put(s, out->sha256_hex, zip, len, e);
  return rc;
}

int fn_code_add_fd(fn_system *s, int fd, fn_code *out, err *e)
{
  memset(out, 0, sizeof *out);
  struct stat st;
  if (fstat(fd, &st) != 0)
    return err_set(e, err_from_errno(errno), "cannot read the code object: %s", strerror(errno));
  if ((uint64_t)st.st_size > FN_MAX_ZIP_S3)
    return err_set(e, ERR_INVALID, "Zipped size must be smaller than %u bytes", FN_MAX_ZIP_S3);
  hasher h;
  hash_init(&h, HASH_SHA256);
  char chunk[65536];
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, chunk, sizeof chunk, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      hash_release(&h);
      return err_set(e, err_from_errno(errno), "cannot read the code object: %s", strerror(errno));
    }
    if (n == 0)
      break;
    hash_update(&h, chunk, (size_t)n);
    off += n;
  }
  uint8_t d[SHA256_LEN];
  hash_final(&h, d);
  hash_release(&h);
  digest_names(d, out);
  out->zip_size = (uint64_t)off;
  int zfd = dup(fd);
  if (zfd < 0)
    return err_set(e, err_from_errno(errno), "cannot read the code object: %s", strerror(errno));
  int zerr = 0;
  zip_t *z = zip_fdopen(zfd, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
  if (z == NULL) {
    close(zfd);
    return err_set(e, ERR_INVALID, "%s", BAD_ZIP);
  }
  int rc = code_install(s, z, out, e);
  zip_discard(z);
  if (rc == 0 && s->pg != NULL && off > 0) {
    void *m = mmap(NULL, (size_t)off, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
      return err_set(e, err_from_errno(errno), "cannot read the code object: %s",
                     strerror(errno));
    rc = fn__pg_code_put(s, out->sha256_hex, m, (size_t)off, e);
    munmap(m, (size_t)off);
  }
  return rc;
}

int fn__code_ensure(fn_system *s, const char *hex, err *e)
{
  char final[4096];
  snprintf(final, sizeof final, "%s/%s", s->code_dir, hex);
  struct stat st;
  if (s->pg == NULL || hex[0] == '\0' || (stat(final, &st) == 0 && S_ISDIR(st.st_mode)))
    return 0;
  if (strlen(hex) != 2 * SHA256_LEN || strspn(hex, "0123456789abcdef") != 2 * SHA256_LEN)
    return err_set(e, ERR_INTERNAL, "the code '%s' is no SHA-256", hex);
  buf zip;
  buf_init(&zip, (size_t)FN_MAX_ZIP_S3);
  int rc = fn__pg_code_get(s, hex, &zip, e);
  zip_t *z = NULL;
  if (rc == 0 && (z = open_buffer(zip.data, zip.len, e)) == NULL)
    rc = e->code;
  if (rc == 0) {
    fn_code c = {0};
    snprintf(c.sha256_hex, sizeof c.sha256_hex, "%s", hex);
    rc = code_install(s, z, &c, e);
    zip_discard(z);
  }
  buf_release(&zip);
  return rc;
}

/* Removes code folders no configuration references, and abandoned tmp-*
 * folders. Called at open only, before any instance runs: the code of a
 * deleted function stays until the next start. */
void fn__code_sweep(fn_system *s)
{
  DIR *d = opendir(s->code_dir);
  if (d == NULL)
    return;
  struct dirent *de;
  char path[4096];
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    bool remove = false;
    if (strncmp(de->d_name, "tmp-", 4) == 0) {
      remove = true;
    } else {
      pthread_mutex_lock(&s->lock);
      remove = !fn__registry_code_used(s, de->d_name);
      pthread_mutex_unlock(&s->lock);
    }
    if (remove) {
      snprintf(path, sizeof path, "%s/%s", s->code_dir, de->d_name);
      fn__rmtree(path);
    }
  }
  closedir(d);
}
