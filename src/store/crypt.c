/* store/crypt.c -- server-side encryption: the master key, sealed data
 * keys, and blobs as chunked AES-256-GCM.
 *
 * Why: S3's SSE-S3 and SSE-C keep object bytes encrypted at rest while a
 * ranged GET, an S3 Select or a SQL scan still reads any span without
 * decrypting the object from its start.
 *
 * Keys:
 *   - The master key: 32 random bytes in DIR/sse-master.key (mode 0600),
 *     created on first use (written to a temporary name, fsync'd, renamed,
 *     directory fsync'd), read once per open store. With the index in
 *     PostgreSQL (--metadata) every node shares one master key, kept in
 *     the database's tarn_keys table (pg_index.c), never in the object
 *     backend with the bytes it protects.
 *   - Each object (each multipart upload) has its own random 32-byte data
 *     key. Its sealed form, kept in the object's (upload's) metadata as the
 *     internal pair STORE_SSE_META, is base64 of
 *       version (1) | mode (1) | nonce (12) | AES-256-GCM(data key) (32) | tag (16)
 *     under the master key (SSE-S3) or the customer's key (SSE-C), with
 *     "tarn-sse" | version | mode as additional data. The customer's key is
 *     never stored: the tag is what verifies it (a wrong key does not open
 *     the seal: 403), like S3's salted HMAC.
 *
 * Bytes: an encrypted blob is one segment; a multipart object's blob is
 * its parts' segments end to end (the record's part sizes locate them).
 * A segment is
 *     header (16): "TSE1" | nonce prefix (8 random bytes) | 4 zero bytes
 *     chunk 0 | tag 0 | chunk 1 | tag 1 | ...
 * each chunk CRYPT_CHUNK plaintext bytes (the last one shorter, none for an
 * empty segment), encrypted with AES-256-GCM under the data key with the
 * nonce  prefix | chunk index (4 bytes, big-endian).
 *
 * Invariants:
 *   (1) A (data key, nonce) pair is never reused: every segment draws its
 *       own 64-bit prefix, and a segment has fewer than 2^32 chunks
 *       (5 TiB / 64 KiB = 2^26).
 *   (2) A chunk's position is bound by its nonce and its length by the
 *       record's size: a moved, swapped or truncated chunk fails its tag,
 *       and a reader returns no byte of a chunk whose tag failed.
 *   (3) Encrypted objects always have a blob (never inline), so the index
 *       never holds plaintext of an encrypted object.
 *   (4) The internal pair is stripped from store_object.meta and
 *       store_upload.meta (store__obj_out, store__upload_out): callers see
 *       it only as the sse / sse_sealed fields.
 *
 * Start reading at store_sse_new() and store__crypt_wr_feed().
 */
#include "crypt.h"
#include "pg_index.h"
#include "remote.h"

#include "blob.h"

#include "base/hash.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEAL_VERSION 1
#define SEAL_NONCE 12
#define SEAL_RAW (2 + SEAL_NONCE + CRYPT_KEY + CRYPT_TAG)
#define MASTER_FILE "sse-master.key"
static const char seg_magic[4] = { 'T', 'S', 'E', '1' };

uint64_t store__crypt_stored_size(uint64_t plain)
{
  uint64_t chunks = (plain + CRYPT_CHUNK - 1) / CRYPT_CHUNK;
  return CRYPT_HEAD + plain + chunks * CRYPT_TAG;
}

/* ---- the master key ---- */

static int sync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = fsync(fd) == 0 ? 0 : -errno;
  close(fd);
  return rc;
}

static int master_read(const char *path, uint8_t key[CRYPT_KEY], err *e)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t r = read(fd, key, CRYPT_KEY);
  int saved = errno;
  close(fd);
  if (r != CRYPT_KEY)
    return err_set(e, ERR_IO, "cannot read the encryption master key '%s': %s", path,
                   r < 0 ? strerror(saved) : "short file");
  return 0;
}

/* Creates the key file durably; another thread or process may win the race
 * (link fails with EEXIST): then its key is the key. */
static int master_create(store *s, const char *path, uint8_t key[CRYPT_KEY], err *e)
{
  char tmp[BLOB_PATH_MAX];
  uint8_t rnd[8];
  random_bytes(rnd, sizeof rnd);
  char hex[17];
  hex_encode(rnd, sizeof rnd, hex);
  snprintf(tmp, sizeof tmp, "%s/.%s.%s", s->dir, MASTER_FILE, hex);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return err_set(e, err_from_errno(errno), "cannot create '%s': %s", tmp, strerror(errno));
  random_bytes(key, CRYPT_KEY);
  bool ok = write(fd, key, CRYPT_KEY) == CRYPT_KEY && fsync(fd) == 0;
  int saved = errno;
  close(fd);
  if (ok && link(tmp, path) != 0) {
    saved = errno;
    ok = false;
  }
  unlink(tmp);
  if (!ok && saved == EEXIST)
    return master_read(path, key, e);
  if (!ok)
    return err_set(e, err_from_errno(saved), "cannot write the encryption master key '%s': %s",
                   path, strerror(saved));
  int rc = sync_dir(s->dir);
  if (rc != 0)
    return err_set(e, err_from_errno(-rc), "cannot sync '%s': %s", s->dir, strerror(-rc));
  return 0;
}

/* The master key, loaded (or created) once. */
static int master_key(store *s, const uint8_t **out, err *e)
{
  pthread_mutex_lock(&s->crypt_mu);
  int rc = 0;
  if (!s->crypt_loaded && s->pg != NULL) {
    uint8_t candidate[CRYPT_KEY];
    random_bytes(candidate, sizeof candidate);
    rc = store__pg_master_key(s, candidate, s->master, e);
    memset(candidate, 0, sizeof candidate);
    s->crypt_loaded = rc == 0;
  } else if (!s->crypt_loaded) {
    char path[BLOB_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s->dir, MASTER_FILE);
    rc = master_read(path, s->master, e);
    if (rc == -ENOENT)
      rc = master_create(s, path, s->master, e);
    else if (rc < 0 && e->code == 0)
      rc = err_set(e, ERR_IO, "cannot open the encryption master key '%s': %s", path,
                   strerror(-rc));
    s->crypt_loaded = rc == 0;
  }
  pthread_mutex_unlock(&s->crypt_mu);
  *out = s->master;
  return rc;
}

/* ---- sealing data keys ---- */

static void seal_aad(uint8_t aad[10], int mode)
{
  memcpy(aad, "tarn-sse", 8);
  aad[8] = SEAL_VERSION;
  aad[9] = (uint8_t)mode;
}

/* A context keyed once for a stream of chunks (the key schedule and the
 * cipher lookup are paid once, not per chunk). */
static EVP_CIPHER_CTX *ctx_keyed(bool enc, const uint8_t key[CRYPT_KEY])
{
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL || EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, NULL, enc ? 1 : 0) != 1)
    abort();
  return ctx;
}

/* AES-256-GCM of n bytes under a keyed context, with a 12-byte nonce (the
 * GCM default) and optional additional data: 0, or -1 when decryption's
 * tag fails. */
static int gcm_chunk(EVP_CIPHER_CTX *ctx, bool enc, const uint8_t nonce[12], const uint8_t *aad,
                     size_t aad_len, const uint8_t *in, size_t n, uint8_t *out,
                     uint8_t tag[CRYPT_TAG])
{
  int len = 0;
  if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc ? 1 : 0) != 1)
    abort();
  if (aad_len > 0 && EVP_CipherUpdate(ctx, NULL, &len, aad, (int)aad_len) != 1)
    abort();
  if (n > 0 && EVP_CipherUpdate(ctx, out, &len, in, (int)n) != 1)
    abort();
  if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG, tag) != 1)
    abort();
  if (EVP_CipherFinal_ex(ctx, out + (n > 0 ? len : 0), &len) != 1)
    return -1;  /* decryption: the tag did not match */
  if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPT_TAG, tag) != 1)
    abort();
  return 0;
}

/* gcm_chunk in one call, for sealing and opening data keys. */
static int gcm(bool enc, const uint8_t *key, const uint8_t nonce[12], const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[CRYPT_TAG])
{
  EVP_CIPHER_CTX *ctx = ctx_keyed(enc, key);
  int rc = gcm_chunk(ctx, enc, nonce, aad, aad_len, in, n, out, tag);
  EVP_CIPHER_CTX_free(ctx);
  return rc;
}

int store_sse_new(store *s, int mode, const uint8_t *customer_key, arena *a,
                  const char **sealed, err *e)
{
  const uint8_t *wrap = customer_key;
  if (mode == STORE_SSE_S3) {
    int rc = master_key(s, &wrap, e);
    if (rc != 0)
      return rc;
  } else if (mode != STORE_SSE_C || customer_key == NULL) {
    return err_set(e, ERR_INVALID, "unknown server-side encryption mode %d", mode);
  }
  uint8_t raw[SEAL_RAW];
  uint8_t data_key[CRYPT_KEY];
  uint8_t aad[10];
  raw[0] = SEAL_VERSION;
  raw[1] = (uint8_t)mode;
  random_bytes(raw + 2, SEAL_NONCE);
  random_bytes(data_key, sizeof data_key);
  seal_aad(aad, mode);
  gcm(true, wrap, raw + 2, aad, sizeof aad, data_key, CRYPT_KEY, raw + 2 + SEAL_NONCE,
      raw + 2 + SEAL_NONCE + CRYPT_KEY);
  char *text = arena_alloc(a, base64_encoded_len(sizeof raw));
  base64_encode(raw, sizeof raw, text);
  *sealed = text;
  memset(data_key, 0, sizeof data_key);
  return 0;
}

static bool seal_decode(const char *sealed, uint8_t raw[SEAL_RAW])
{
  if (sealed == NULL)
    return false;
  size_t n = strlen(sealed);
  if (n > 2 * SEAL_RAW)
    return false;
  uint8_t tmp[2 * SEAL_RAW];
  long len = base64_decode(sealed, n, tmp, sizeof tmp);
  if (len != SEAL_RAW || tmp[0] != SEAL_VERSION ||
      (tmp[1] != STORE_SSE_S3 && tmp[1] != STORE_SSE_C))
    return false;
  memcpy(raw, tmp, SEAL_RAW);
  return true;
}

int store__crypt_mode(const char *sealed)
{
  uint8_t raw[SEAL_RAW];
  return seal_decode(sealed, raw) ? raw[1] : STORE_SSE_NONE;
}

int store__crypt_open(store *s, const char *sealed, const uint8_t *customer_key,
                      struct store_crypt *out, err *e)
{
  uint8_t raw[SEAL_RAW];
  if (!seal_decode(sealed, raw))
    return err_set(e, ERR_INTERNAL, "the object's sealed data key is corrupt");
  const uint8_t *wrap = customer_key;
  if (raw[1] == STORE_SSE_S3) {
    int rc = master_key(s, &wrap, e);
    if (rc != 0)
      return rc;
  } else if (customer_key == NULL) {
    return err_set(e, ERR_INVALID_REQUEST, "The object was stored using a form of Server Side "
                   "Encryption. The correct parameters must be provided to retrieve the object.");
  }
  uint8_t aad[10];
  seal_aad(aad, raw[1]);
  int rc = gcm(false, wrap, raw + 2, aad, sizeof aad, raw + 2 + SEAL_NONCE, CRYPT_KEY, out->key,
               raw + 2 + SEAL_NONCE + CRYPT_KEY);
  out->mode = raw[1];
  if (rc != 0) {
    memset(out->key, 0, sizeof out->key);
    if (raw[1] == STORE_SSE_C)
      return err_set(e, ERR_DENIED, "Access Denied: the customer-provided encryption key does "
                     "not match the key the object was encrypted with");
    return err_set(e, ERR_INTERNAL, "the object's data key does not open with the server's "
                   "master key");
  }
  return 0;
}

/* ---- the internal metadata pair ---- */

const char *store__crypt_find(const str_pair *meta, size_t nmeta)
{
  for (size_t i = 0; i < nmeta; i++)
    if (strcmp(meta[i].name, STORE_SSE_META) == 0)
      return meta[i].value;
  return NULL;
}

const char *store__crypt_take(str_pair *meta, size_t *nmeta)
{
  for (size_t i = 0; i < *nmeta; i++) {
    if (strcmp(meta[i].name, STORE_SSE_META) == 0) {
      const char *v = meta[i].value;
      memmove(meta + i, meta + i + 1, (*nmeta - i - 1) * sizeof *meta);
      (*nmeta)--;
      return v;
    }
  }
  return NULL;
}

str_pair *store__crypt_meta_add(arena *a, const str_pair *meta, size_t nmeta, const char *sealed,
                                size_t *n)
{
  str_pair *m = arena_alloc(a, (nmeta + 1) * sizeof *m);
  size_t k = 0;
  for (size_t i = 0; i < nmeta; i++)
    if (strcmp(meta[i].name, STORE_SSE_META) != 0)
      m[k++] = meta[i];
  m[k].name = STORE_SSE_META;
  m[k].value = sealed;
  *n = k + 1;
  return m;
}

/* ---- writing a segment ---- */

struct crypt_wr {
  EVP_CIPHER_CTX *ctx;
  struct store_crypt k;      /* the data key */
  uint8_t prefix[8];         /* this segment's nonce prefix */
  uint32_t index;            /* the next chunk's number */
  size_t fill;               /* plaintext bytes waiting in plain */
  uint8_t plain[CRYPT_CHUNK];
  uint8_t out[CRYPT_CHUNK + CRYPT_TAG];
};

static void chunk_nonce(const uint8_t prefix[8], uint32_t index, uint8_t nonce[12])
{
  memcpy(nonce, prefix, 8);
  nonce[8] = (uint8_t)(index >> 24);
  nonce[9] = (uint8_t)(index >> 16);
  nonce[10] = (uint8_t)(index >> 8);
  nonce[11] = (uint8_t)index;
}

crypt_wr *store__crypt_wr_new(const struct store_crypt *k)
{
  crypt_wr *c = xcalloc(1, sizeof *c);
  c->ctx = ctx_keyed(true, k->key);
  c->k = *k;
  random_bytes(c->prefix, sizeof c->prefix);  /* invariant (1) */
  return c;
}

int store__crypt_wr_head(crypt_wr *c, crypt_emit_fn emit, void *ctx, err *e)
{
  uint8_t head[CRYPT_HEAD] = { 0 };
  memcpy(head, seg_magic, sizeof seg_magic);
  memcpy(head + 4, c->prefix, sizeof c->prefix);
  return emit(ctx, head, sizeof head, e);
}

static int flush_chunk(crypt_wr *c, crypt_emit_fn emit, void *ctx, err *e)
{
  uint8_t nonce[12];
  chunk_nonce(c->prefix, c->index++, nonce);
  gcm_chunk(c->ctx, true, nonce, NULL, 0, c->plain, c->fill, c->out, c->out + c->fill);
  size_t n = c->fill + CRYPT_TAG;
  c->fill = 0;
  return emit(ctx, c->out, n, e);
}

int store__crypt_wr_feed(crypt_wr *c, const void *p, size_t n, crypt_emit_fn emit, void *ctx,
                         err *e)
{
  const uint8_t *b = p;
  while (n > 0) {
    size_t take = CRYPT_CHUNK - c->fill;
    if (take > n)
      take = n;
    memcpy(c->plain + c->fill, b, take);
    c->fill += take;
    b += take;
    n -= take;
    if (c->fill == CRYPT_CHUNK) {
      int rc = flush_chunk(c, emit, ctx, e);
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

int store__crypt_wr_end(crypt_wr *c, crypt_emit_fn emit, void *ctx, err *e)
{
  return c->fill > 0 ? flush_chunk(c, emit, ctx, e) : 0;
}

void store__crypt_etag(const crypt_wr *c, const uint8_t md5[16], uint8_t out[16])
{
  if (c == NULL || c->k.mode != STORE_SSE_C) {
    memcpy(out, md5, 16);
    return;
  }
  uint8_t mac[SHA256_LEN];
  hmac_sha256(c->k.key, sizeof c->k.key, md5, 16, mac);
  memcpy(out, mac, 16);
}

crypt_wr *store__crypt_wr_free(crypt_wr *c)
{
  if (c == NULL)
    return NULL;
  EVP_CIPHER_CTX_free(c->ctx);
  memset(&c->k, 0, sizeof c->k);
  free(c);
  return NULL;
}

/* ---- reading ---- */

struct store_reader {
  int fd;                    /* the blob */
  struct remote_rd *rd;      /* or its backend object (remote.c), fd -1 */
  bool own_fd;               /* close it on free */
  bool plain;                /* not encrypted: pread straight through */
  const void *data;          /* an inline object's bytes (fd -1), borrowed */
  uint64_t size;             /* plaintext bytes */
  char *what;                /* "key 'k' in bucket 'b'", for messages */
  struct store_crypt k;
  size_t nseg;               /* segments: 1, or the object's parts */
  uint64_t *seg_plain;       /* each segment's plaintext size */
  EVP_CIPHER_CTX *ctx;
  size_t hseg;               /* the segment whose prefix is in hprefix */
  bool hvalid;
  uint8_t hprefix[8];
  bool cvalid;               /* plain holds the chunk at cstart (clen bytes) */
  uint64_t cstart;
  size_t clen;
  uint8_t cplain[CRYPT_CHUNK];
  uint8_t cbuf[CRYPT_CHUNK + CRYPT_TAG];
};

store_reader *store_reader_new(const store_object *o, int fd)
{
  store_reader *r = xcalloc(1, sizeof *r);
  r->fd = fd;
  r->own_fd = true;
  r->size = o->size;
  r->data = o->data;
  size_t wl = strlen(o->key ? o->key : "") + strlen(o->bucket ? o->bucket : "") + 32;
  r->what = xmalloc(wl);
  snprintf(r->what, wl, "key '%s' in bucket '%s'", o->key ? o->key : "",
           o->bucket ? o->bucket : "");
  r->plain = o->sse == STORE_SSE_NONE;
  if (o->remote != NULL && fd < 0)
    r->rd = store__remote_rd_new(o->remote, o->remote_name);
  if (!r->plain) {
    if (o->crypt != NULL)
      r->k = *o->crypt;
    else
      r->k.mode = STORE_SSE_NONE;  /* locked: every read is refused */
    if (o->nparts > 0 && o->part_sizes != NULL) {
      r->nseg = o->nparts;
      r->seg_plain = xmalloc(o->nparts * sizeof *r->seg_plain);
      memcpy(r->seg_plain, o->part_sizes, o->nparts * sizeof *r->seg_plain);
    } else {
      r->nseg = 1;
      r->seg_plain = xmalloc(sizeof *r->seg_plain);
      r->seg_plain[0] = o->size;
    }
  }
  return r;
}

void store_reader_span(store_reader *r, uint64_t first, uint64_t len)
{
  if (r->plain && r->rd != NULL && len > 0)
    store__remote_rd_span(r->rd, first + len);
}

store_reader *store_reader_free(store_reader *r)
{
  if (r == NULL)
    return NULL;
  if (r->own_fd && r->fd >= 0)
    close(r->fd);
  EVP_CIPHER_CTX_free(r->ctx);
  store__remote_rd_free(r->rd);
  memset(&r->k, 0, sizeof r->k);
  free(r->seg_plain);
  free(r->what);
  free(r);
  return NULL;
}

static int pread_all(store_reader *r, void *p, size_t n, uint64_t off, err *e)
{
  size_t done = 0;
  while (r->rd != NULL && done < n) {
    size_t got = 0;
    int rc = store__remote_rd_read(r->rd, off + done, (uint8_t *)p + done, n - done, &got, e);
    if (rc != 0)
      return rc;
    if (got == 0)
      return err_set(e, ERR_IO, "cannot read %s: its blob is shorter than its record", r->what);
    done += got;
  }
  while (done < n) {
    ssize_t got = pread(r->fd, (uint8_t *)p + done, n - done, (off_t)(off + done));
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      int saved = errno;
      return err_set(e, err_from_errno(saved), "cannot read %s: %s", r->what, strerror(saved));
    }
    if (got == 0)
      return err_set(e, ERR_IO, "cannot read %s: its blob is shorter than its record", r->what);
    done += (size_t)got;
  }
  return 0;
}

/* Decrypts the chunk holding plaintext offset off into the cache. */
static int load_chunk(store_reader *r, uint64_t off, err *e)
{
  uint64_t seg_start = 0;    /* plaintext offset of the segment */
  uint64_t seg_stored = 0;   /* its stored offset */
  size_t i = 0;
  for (; i + 1 < r->nseg && off >= seg_start + r->seg_plain[i]; i++) {
    seg_start += r->seg_plain[i];
    seg_stored += store__crypt_stored_size(r->seg_plain[i]);
  }
  if (!r->hvalid || r->hseg != i) {
    uint8_t head[CRYPT_HEAD];
    int rc = pread_all(r, head, sizeof head, seg_stored, e);
    if (rc != 0)
      return rc;
    if (memcmp(head, seg_magic, sizeof seg_magic) != 0)
      return err_set(e, ERR_IO, "cannot read %s: its blob is not encrypted as its record says",
                     r->what);
    memcpy(r->hprefix, head + 4, sizeof r->hprefix);
    r->hseg = i;
    r->hvalid = true;
  }
  uint64_t in_seg = off - seg_start;
  uint32_t index = (uint32_t)(in_seg / CRYPT_CHUNK);
  uint64_t cplain_start = (uint64_t)index * CRYPT_CHUNK;
  uint64_t left = r->seg_plain[i] - cplain_start;
  size_t len = left < CRYPT_CHUNK ? (size_t)left : CRYPT_CHUNK;
  uint64_t at = seg_stored + CRYPT_HEAD + (uint64_t)index * (CRYPT_CHUNK + CRYPT_TAG);
  int rc = pread_all(r, r->cbuf, len + CRYPT_TAG, at, e);
  if (rc != 0)
    return rc;
  uint8_t nonce[12];
  chunk_nonce(r->hprefix, index, nonce);
  r->cvalid = false;
  if (r->ctx == NULL)
    r->ctx = ctx_keyed(false, r->k.key);
  if (gcm_chunk(r->ctx, false, nonce, NULL, 0, r->cbuf, len, r->cplain, r->cbuf + len) != 0)
    return err_set(e, ERR_IO, "cannot read %s: chunk %u of its bytes fails its integrity check",
                   r->what, (unsigned)index);
  r->cvalid = true;
  r->cstart = seg_start + cplain_start;
  r->clen = len;
  return 0;
}

int store_reader_read(store_reader *r, uint64_t off, void *p, size_t n, size_t *got, err *e)
{
  *got = 0;
  if (off >= r->size)
    return 0;
  if (n > r->size - off)
    n = (size_t)(r->size - off);
  if (r->plain && r->rd != NULL)
    return store__remote_rd_read(r->rd, off, p, n, got, e);
  if (r->plain && r->fd < 0) {
    memcpy(p, (const uint8_t *)r->data + off, n);
    *got = n;
    return 0;
  }
  if (r->plain) {
    for (;;) {
      ssize_t k = pread(r->fd, p, n, (off_t)off);
      if (k < 0 && errno == EINTR)
        continue;
      if (k < 0) {
        int saved = errno;
        return err_set(e, err_from_errno(saved), "cannot read %s: %s", r->what,
                       strerror(saved));
      }
      *got = (size_t)k;
      return 0;
    }
  }
  if (r->k.mode == STORE_SSE_NONE)
    return err_set(e, ERR_INVALID_REQUEST, "The object was stored using a form of Server Side "
                   "Encryption. The correct parameters must be provided to retrieve the object.");
  uint8_t *to = p;
  while (*got < n) {
    uint64_t at = off + *got;
    if (!r->cvalid || at < r->cstart || at >= r->cstart + r->clen) {
      int rc = load_chunk(r, at, e);
      if (rc != 0)
        return rc;
    }
    size_t from = (size_t)(at - r->cstart);
    size_t take = r->clen - from;
    if (take > n - *got)
      take = n - *got;
    memcpy(to + *got, r->cplain + from, take);
    *got += take;
  }
  return 0;
}

/* ---- objects ---- */

int store_object_unlock(store *s, store_object *o, const uint8_t *customer_key, arena *a, err *e)
{
  if (o->sse == STORE_SSE_NONE)
    return 0;
  struct store_crypt *k = arena_alloc(a, sizeof *k);
  int rc = store__crypt_open(s, o->sse_sealed, customer_key, k, e);
  if (rc != 0)
    return rc;
  o->crypt = k;
  return 0;
}

int store__object_read_crypt(const store_object *o, int fd, uint64_t offset, void *p, size_t n,
                             size_t *got, err *e)
{
  store_reader *r = store_reader_new(o, fd);
  r->own_fd = false;
  int rc = store_reader_read(r, offset, p, n, got, e);
  store_reader_free(r);
  return rc;
}

int store_object_plain_fd(const store_object *o, int *fd, err *e)
{
  if (o->sse == STORE_SSE_NONE && (o->remote == NULL || *fd >= 0))
    return 0;
  if (*fd < 0 && o->remote == NULL)
    return err_set(e, ERR_INTERNAL, "encrypted key '%s' has no blob", o->key);
  int mfd = memfd_create("tarn-sse", MFD_CLOEXEC);
  if (mfd < 0)
    return err_set(e, err_from_errno(errno), "cannot make a buffer for %s: %s", o->key,
                   strerror(errno));
  store_reader *r = store_reader_new(o, *fd);
  r->own_fd = false;
  uint8_t *b = xmalloc(1u << 20);
  int rc = 0;
  for (uint64_t off = 0; rc == 0 && off < o->size;) {
    size_t got = 0;
    rc = store_reader_read(r, off, b, 1u << 20, &got, e);
    for (size_t done = 0; rc == 0 && done < got;) {
      ssize_t w = write(mfd, b + done, got - done);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        rc = err_set(e, ERR_NO_SPACE, "cannot hold the plaintext of '%s': %s", o->key,
                     strerror(errno));
      else
        done += (size_t)w;
    }
    off += got;
    if (rc == 0 && got == 0)
      break;
  }
  free(b);
  store_reader_free(r);
  if (rc != 0) {
    close(mfd);
    return rc;
  }
  if (*fd >= 0)
    close(*fd);
  *fd = mfd;
  return 0;
}

int store_bucket_sse_default(store *s, const char *bucket, bool *configured)
{
  arena *a = arena_new();
  const char *text = NULL;
  err ignored;
  bool has = store_bucket_conf_get(s, bucket, STORE_SSE_CONF, a, &text, &ignored) == 0 &&
             text != NULL;
  arena_free(a);
  if (configured != NULL)
    *configured = has;
  if (has)
    return STORE_SSE_S3;
  const char *env = getenv("TARN_S3_DEFAULT_SSE");
  return env != NULL && strcmp(env, "AES256") == 0 ? STORE_SSE_S3 : STORE_SSE_NONE;
}

int store_writer_encrypt_default(store *s, store_writer *w, const char *bucket, int *mode,
                                 err *e)
{
  int m = store_bucket_sse_default(s, bucket, NULL);
  if (mode != NULL)
    *mode = m;
  if (m == STORE_SSE_NONE)
    return 0;
  arena *a = arena_new();
  const char *sealed;
  int rc = store_sse_new(s, m, NULL, a, &sealed, e);
  if (rc == 0)
    rc = store_writer_encrypt(w, sealed, NULL, e);
  arena_free(a);
  return rc;
}
