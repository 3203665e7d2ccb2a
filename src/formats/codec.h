/* formats/codec.h -- compression codecs of objects: gzip (zlib), zstd and
 * bzip2 (libbz2).
 *
 * An object is decompressed whole into memory: gzip cannot be split into
 * independent byte ranges, and the readers want one contiguous buffer. The
 * caller's limit bounds the output (a query's memory budget).
 */
#ifndef TARN_FORMATS_CODEC_H
#define TARN_FORMATS_CODEC_H

#include "base/err.h"

#include <stddef.h>

typedef enum codec_kind {
  CODEC_NONE = 0,
  CODEC_GZIP,
  CODEC_ZSTD,
  CODEC_BZIP2,
} codec_kind;

/* By the magic bytes at the start of an object. */
codec_kind codec_sniff(const void *p, size_t n);
/* By the name: ".gz" / ".gzip", ".zst" / ".zstd", ".bz2". */
codec_kind codec_from_name(const char *name);

/* Decompresses src[0..n) into a malloc'd buffer (*out, free it) of
 * *outlen bytes. More than max bytes of output is ERR_ENTITY_TOO_LARGE;
 * corrupt input is ERR_INVALID. */
int codec_decompress(codec_kind k, const void *src, size_t n, size_t max, char **out,
                     size_t *outlen, err *e);
/* Like codec_decompress, but stops quietly after max bytes (a sample of
 * the start of an object). */
int codec_decompress_head(codec_kind k, const void *src, size_t n, size_t max, char **out,
                          size_t *outlen, err *e);

/* ---- blocks of known size (Parquet pages) ----
 *
 * Each decodes src[0..n) into exactly dstlen bytes at dst (the size the
 * page header gives); output of any other length, or corrupt input, is
 * ERR_INVALID with a message naming the codec. */
int codec_block_gzip(const void *src, size_t n, void *dst, size_t dstlen, err *e);
int codec_block_zstd(const void *src, size_t n, void *dst, size_t dstlen, err *e);
int codec_block_snappy(const void *src, size_t n, void *dst, size_t dstlen, err *e);
/* snappy, the first bytes only: decodes until at least need bytes (or all
 * dstlen) are written; *got gets how many are (whole elements, at most
 * dstlen, at least need unless the data is corrupt). The stream's end is
 * checked only when it is reached: a prefix of a corrupt block may pass. */
int codec_block_snappy_prefix(const void *src, size_t n, void *dst, size_t dstlen, size_t need,
                              size_t *got, err *e);
/* LZ4_RAW: one LZ4 block */
int codec_block_lz4_raw(const void *src, size_t n, void *dst, size_t dstlen, err *e);
/* Parquet's old LZ4: Hadoop frames (4-byte big-endian sizes), else one raw
 * block (as some writers made it) */
int codec_block_lz4_hadoop(const void *src, size_t n, void *dst, size_t dstlen, err *e);
int codec_block_brotli(const void *src, size_t n, void *dst, size_t dstlen, err *e);

/* ---- compression (the Parquet writer's pages) ----
 * Each compresses src[0..n) into a malloc'd buffer (*out, free it) of
 * *outlen bytes; a failure of the library is ERR_INTERNAL. gzip writes a
 * gzip member (RFC 1952, what Parquet's GZIP means), zstd one frame,
 * snappy the raw block format (not the framed one), as Parquet wants. */
int codec_gzip_compress(const void *src, size_t n, int level, char **out, size_t *outlen,
                        err *e);
int codec_zstd_compress(const void *src, size_t n, int level, char **out, size_t *outlen,
                        err *e);
int codec_snappy_compress(const void *src, size_t n, char **out, size_t *outlen, err *e);

#endif
