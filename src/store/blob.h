/* store/blob.h -- blob files: names, the writer's state, the in-flight set.
 * Private to src/store/. */
#ifndef TARN_STORE_BLOB_H
#define TARN_STORE_BLOB_H

#include "internal.h"

#include <openssl/evp.h>

#define BLOB_PATH_MAX 4096

struct store_writer {
  store *s;            /* owner */
  bool has_blob;       /* the file exists (id, fd): the bytes outgrew head,
                          or a part needed one; else they are all in head */
  blob_id id;          /* the blob's name, when has_blob */
  int fd;              /* open for writing; -1 without a blob or once finished */
  EVP_MD_CTX *md5;     /* MD5 of the bytes written so far */
  uint64_t size;       /* bytes written so far */
  bool consumed;       /* handed to a commit call: no more writes */
  bool committed;      /* the index references the blob: keep it */
  bool staged;         /* the blob goes to the object backend (remote.c):
                          writer_finish does not fsync it */
  uint64_t expect;     /* the size announced (store_writer_expect), or 0 */
  struct remote_tail *tail; /* uploading while written (remote.c (9)), or NULL */
  struct crypt_wr *crypt; /* encrypting (crypt.c): the bytes are in a blob,
                          as chunks; size and md5 count the plaintext */
  char *sealed;        /* the sealed data key, when crypt (heap) */
  uint8_t head[STORE_INLINE_MAX]; /* the bytes while !has_blob (size of them) */
};

/* DIR/blobs/XX/ID, and DIR/blobs/XX for the directory byte xx. */
void store__blob_path(const store *s, const blob_id *id, char out[BLOB_PATH_MAX]);
void store__blob_dir_path(const store *s, unsigned xx, char out[BLOB_PATH_MAX]);
/* Unlinks a blob; returns 0 or -errno (ENOENT included). */
int store__blob_unlink(const store *s, const blob_id *id);

/* The in-flight set (invariant (1) of blob.c). */
void store__fly_add(store *s, const blob_id *id);
void store__fly_del(store *s, const blob_id *id);
/* A sorted heap copy of the set (free it); *n gets its length. */
blob_id *store__fly_snapshot(store *s, size_t *n);
int store__blob_id_cmp(const void *a, const void *b);

/* Marks the writer consumed and, when it has a blob, fsyncs and closes the
 * file. need_blob (parts) first moves bytes still in head to a new blob.
 * Afterwards w->has_blob tells whether the bytes are in w->id or in head. */
int store__writer_finish(store_writer *w, bool need_blob, err *e);

#endif
