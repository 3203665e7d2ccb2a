/* formats/codec.c -- gzip and zstd decompression of whole objects, and the
 * block codecs of Parquet pages (snappy decoded by our own code, below).
 *
 * Invariants:
 *   (1) The output never grows past the caller's max (checked before each
 *       growth), so a small bomb cannot take the server's memory.
 *   (2) Concatenated gzip members and zstd frames are all decoded, as the
 *       command-line tools do.
 *   (3) The block decoders (Parquet pages) write into the caller's buffer of
 *       the announced size and never past it; a short or long result is an
 *       error, not a partial value (codec_block_snappy_prefix stops early
 *       on purpose, and says how much it wrote).
 */
#include "codec.h"

#include "base/mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <brotli/decode.h>
#include <bzlib.h>
#include <lz4.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

codec_kind codec_sniff(const void *p, size_t n)
{
  const unsigned char *b = p;
  if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
    return CODEC_GZIP;
  if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
    return CODEC_ZSTD;
  /* "BZh" and the block size, then a block's magic (pi) or the end of an
     empty stream (sqrt(pi)): text that merely starts with "BZh9" is not bzip2 */
  if (n >= 10 && b[0] == 'B' && b[1] == 'Z' && b[2] == 'h' && b[3] >= '1' && b[3] <= '9' &&
      (memcmp(b + 4, "\x31\x41\x59\x26\x53\x59", 6) == 0 ||
       memcmp(b + 4, "\x17\x72\x45\x38\x50\x90", 6) == 0))
    return CODEC_BZIP2;
  return CODEC_NONE;
}

static int ends(const char *s, const char *suf)
{
  size_t a = strlen(s);
  size_t b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

codec_kind codec_from_name(const char *name)
{
  if (ends(name, ".gz") || ends(name, ".gzip"))
    return CODEC_GZIP;
  if (ends(name, ".zst") || ends(name, ".zstd"))
    return CODEC_ZSTD;
  if (ends(name, ".bz2"))
    return CODEC_BZIP2;
  return CODEC_NONE;
}

static int grow(char **buf, size_t *cap, size_t need, size_t max, err *e)
{
  if (need <= *cap)
    return 0;
  if (need > max)
    return err_set(e, ERR_ENTITY_TOO_LARGE,
                   "decompressed object is larger than the query's memory limit (%zu MB)",
                   max >> 20);
  size_t nc = *cap ? *cap : 1 << 20;
  while (nc < need)
    nc *= 2;
  if (nc > max)
    nc = max;
  char *nb = xrealloc(*buf, nc);
  *buf = nb;
  *cap = nc;
  return 0;
}

/* ---- streamed decoders (gzip, bzip2) through one driver ----
 * A decoder consumes input and makes output in steps; the driver feeds it
 * at most 1 GiB at a time (the libraries count in unsigned int), grows the
 * output to max, and restarts it when a stream ends before the input does
 * (several gzip members, or bzip2 streams, one after another). */

typedef struct decoder {
  const char *name;          /* "gzip", for messages */
  bool (*init)(void *z);
  /* one step over in[0..*used) into out[0..room): sets *used and *made;
     1 at a stream's end, 0 to go on, -1 on corrupt input (msg set) */
  int (*step)(void *z, const char *in, size_t avail, size_t *used, char *out, size_t room,
              size_t *made, const char **msg);
  void (*end)(void *z);
} decoder;

static bool gz_init(void *z)
{
  memset(z, 0, sizeof(z_stream));
  return inflateInit2((z_stream *)z, 15 + 32) == Z_OK;
}

static int gz_step(void *zp, const char *in, size_t avail, size_t *used, char *out, size_t room,
                   size_t *made, const char **msg)
{
  z_stream *z = zp;
  z->next_in = (Bytef *)(uintptr_t)in;
  z->avail_in = (uInt)avail;
  z->next_out = (Bytef *)out;
  z->avail_out = (uInt)room;
  int zr = inflate(z, Z_NO_FLUSH);
  *used = avail - z->avail_in;
  *made = room - z->avail_out;
  if (zr == Z_STREAM_END)
    return 1;
  if (zr == Z_OK || zr == Z_BUF_ERROR)
    return 0;
  *msg = z->msg != NULL ? z->msg : "?";
  return -1;
}

static void gz_end(void *z)
{
  inflateEnd((z_stream *)z);
}

static bool bz_init(void *z)
{
  memset(z, 0, sizeof(bz_stream));
  return BZ2_bzDecompressInit((bz_stream *)z, 0, 0) == BZ_OK;
}

static int bz_step(void *zp, const char *in, size_t avail, size_t *used, char *out, size_t room,
                   size_t *made, const char **msg)
{
  bz_stream *z = zp;
  z->next_in = (char *)(uintptr_t)in;
  z->avail_in = (unsigned)avail;
  z->next_out = out;
  z->avail_out = (unsigned)room;
  int zr = BZ2_bzDecompress(z);
  *used = avail - z->avail_in;
  *made = room - z->avail_out;
  if (zr == BZ_STREAM_END)
    return 1;
  if (zr == BZ_OK)
    return 0;
  *msg = zr == BZ_DATA_ERROR_MAGIC ? "not bzip2 data" : "bad data";
  return -1;
}

static void bz_end(void *z)
{
  BZ2_bzDecompressEnd((bz_stream *)z);
}

static const decoder gzip_decoder = {"gzip", gz_init, gz_step, gz_end};
static const decoder bzip2_decoder = {"bzip2", bz_init, bz_step, bz_end};

static int decode_all(const decoder *d, const void *src, size_t n, size_t max, char **out,
                      size_t *outlen, err *e, bool head)
{
  union {
    z_stream gz;
    bz_stream bz;
  } z;
  if (!d->init(&z))
    return err_set(e, ERR_INTERNAL, "cannot start %s", d->name);
  char *buf = NULL;
  size_t cap = 0;
  size_t len = 0;
  const char *in = src;
  size_t left = n;
  int rc = 0;
  for (;;) {
    if (len == cap) {
      if (head && len >= max)
        break;
      size_t want = cap ? cap * 2 : (n * 4 > (1u << 20) ? n * 4 : (1u << 20));
      if (want > max)
        want = max > len ? max : len + 1;
      rc = grow(&buf, &cap, want, max, e);
      if (rc < 0)
        break;
    }
    size_t room = cap - len;
    if (room > (1u << 30))
      room = 1u << 30;
    size_t avail = left > (1u << 30) ? (1u << 30) : left;
    size_t used = 0, made = 0;
    const char *msg = NULL;
    int r = d->step(&z, in, avail, &used, buf + len, room, &made, &msg);
    in += used;
    left -= used;
    len += made;
    if (r < 0) {
      rc = err_set(e, ERR_INVALID, "corrupt %s data (%s)", d->name, msg);
      break;
    }
    if (r == 1) {
      if (left == 0)
        break;
      d->end(&z); /* another member or stream follows */
      if (!d->init(&z)) {
        rc = err_set(e, ERR_INTERNAL, "cannot start %s", d->name);
        break;
      }
      continue;
    }
    if (left == 0 && made < room) {
      rc = err_set(e, ERR_INVALID, "truncated %s data", d->name);
      break;
    }
  }
  d->end(&z);
  if (rc < 0) {
    free(buf);
    return rc;
  }
  *out = buf;
  *outlen = len;
  return 0;
}

static int gunzip(const void *src, size_t n, size_t max, char **out, size_t *outlen, err *e,
                  bool head)
{
  return decode_all(&gzip_decoder, src, n, max, out, outlen, e, head);
}

static int unzstd(const void *src, size_t n, size_t max, char **out, size_t *outlen, err *e,
                  bool head)
{
  ZSTD_DStream *z = ZSTD_createDStream();
  if (z == NULL)
    mem_out_of_memory();
  ZSTD_initDStream(z);
  char *buf = NULL;
  size_t cap = 0;
  size_t len = 0;
  ZSTD_inBuffer in = {src, n, 0};
  int rc = 0;
  unsigned long long fsz = ZSTD_getFrameContentSize(src, n);
  if (fsz != ZSTD_CONTENTSIZE_UNKNOWN && fsz != ZSTD_CONTENTSIZE_ERROR) {
    if (head && fsz + 1 > max)
      fsz = max - 1;
    rc = grow(&buf, &cap, (size_t)fsz + 1, max, e);
  }
  while (rc == 0) {
    if (len == cap) {
      if (head && len >= max)
        break;
      size_t want = cap ? cap * 2 : (n * 4 > (1u << 20) ? n * 4 : (1u << 20));
      if (want > max)
        want = max > len ? max : len + 1;
      rc = grow(&buf, &cap, want, max, e);
      if (rc < 0)
        break;
    }
    ZSTD_outBuffer o = {buf + len, cap - len, 0};
    size_t r = ZSTD_decompressStream(z, &o, &in);
    len += o.pos;
    if (ZSTD_isError(r)) {
      rc = err_set(e, ERR_INVALID, "corrupt zstd data (%s)", ZSTD_getErrorName(r));
      break;
    }
    if (in.pos == in.size && o.pos < o.size) {
      if (r != 0)
        rc = err_set(e, ERR_INVALID, "truncated zstd data");
      break;
    }
  }
  ZSTD_freeDStream(z);
  if (rc < 0) {
    free(buf);
    return rc;
  }
  *out = buf;
  *outlen = len;
  return 0;
}

static int bunzip2(const void *src, size_t n, size_t max, char **out, size_t *outlen, err *e,
                   bool head)
{
  return decode_all(&bzip2_decoder, src, n, max, out, outlen, e, head);
}

int codec_decompress(codec_kind k, const void *src, size_t n, size_t max, char **out,
                     size_t *outlen, err *e)
{
  *out = NULL;
  *outlen = 0;
  if (k == CODEC_GZIP)
    return gunzip(src, n, max, out, outlen, e, false);
  if (k == CODEC_ZSTD)
    return unzstd(src, n, max, out, outlen, e, false);
  if (k == CODEC_BZIP2)
    return bunzip2(src, n, max, out, outlen, e, false);
  return err_set(e, ERR_INTERNAL, "no codec");
}

int codec_decompress_head(codec_kind k, const void *src, size_t n, size_t max, char **out,
                          size_t *outlen, err *e)
{
  *out = NULL;
  *outlen = 0;
  if (k == CODEC_GZIP)
    return gunzip(src, n, max, out, outlen, e, true);
  if (k == CODEC_ZSTD)
    return unzstd(src, n, max, out, outlen, e, true);
  if (k == CODEC_BZIP2)
    return bunzip2(src, n, max, out, outlen, e, true);
  return err_set(e, ERR_INTERNAL, "no codec");
}

/* ---- blocks of known size ---- */

int codec_block_gzip(const void *src, size_t n, void *dst, size_t dstlen, err *e)
{
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 15 + 32) != Z_OK)
    return err_set(e, ERR_INTERNAL, "cannot start zlib");
  if (n > UINT32_MAX || dstlen > UINT32_MAX) {
    inflateEnd(&z);
    return err_set(e, ERR_INVALID, "gzip block too large");
  }
  z.next_in = (Bytef *)(uintptr_t)src;
  z.avail_in = (unsigned)n;
  z.next_out = dst;
  z.avail_out = (unsigned)dstlen;
  int zr = Z_OK;
  for (;;) {
    zr = inflate(&z, Z_FINISH);
    if (zr == Z_STREAM_END && z.avail_in > 0 && z.avail_out > 0) {
      inflateReset(&z);   /* another member */
      continue;
    }
    break;
  }
  size_t got = dstlen - z.avail_out;
  inflateEnd(&z);
  if (zr != Z_STREAM_END && !(zr == Z_BUF_ERROR && got == dstlen && z.avail_in == 0))
    return err_set(e, ERR_INVALID, "corrupt gzip data");
  if (got != dstlen)
    return err_set(e, ERR_INVALID, "gzip data gave %zu bytes, not %zu", got, dstlen);
  return 0;
}

int codec_block_zstd(const void *src, size_t n, void *dst, size_t dstlen, err *e)
{
  size_t r = ZSTD_decompress(dst, dstlen, src, n);
  if (ZSTD_isError(r))
    return err_set(e, ERR_INVALID, "corrupt zstd data (%s)", ZSTD_getErrorName(r));
  if (r != dstlen)
    return err_set(e, ERR_INVALID, "zstd data gave %zu bytes, not %zu", r, dstlen);
  return 0;
}

/* Snappy's raw format: a varint of the uncompressed length, then elements
 * by the low 2 bits of a tag byte: a literal (its length - 1 in the tag's
 * upper 6 bits, or in the 1 to 4 bytes after when those say 60 to 63),
 * or a copy of earlier output (length 4-11 with an 11-bit offset, or
 * length 1-64 with a 2- or 4-byte offset; a copy may overlap its own
 * output, repeating a pattern). Decoded here rather than by libsnappy,
 * whose copies call memmove: with constant-size 16-byte moves inlined, a
 * page of short strings decodes in about half the time. Every read is
 * checked against the input's end and every write against dstlen; the
 * fast paths write up to 64 bytes past a short element, only while that
 * much room is left (the next elements overwrite them). */
static int snappy_fail(err *e)
{
  return err_set(e, ERR_INVALID, "corrupt snappy data");
}

/* decodes elements until the stream ends or at least stop bytes are out;
   *got: the bytes written by whole elements */
static int snappy_run(const void *src, size_t n, void *dst, size_t dstlen, size_t stop,
                      size_t *got, err *e)
{
  const uint8_t *ip = src, *iend = ip + n;
  uint64_t want = 0;
  for (int sh = 0;; sh += 7) {
    if (ip >= iend || sh > 28)
      return snappy_fail(e);
    uint8_t b = *ip++;
    want |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80))
      break;
  }
  if (want != dstlen)
    return err_set(e, ERR_INVALID, "snappy data holds %llu bytes, not %zu",
                   (unsigned long long)want, dstlen);
  uint8_t *base = dst, *op = base, *oend = base + dstlen, *ostop = base + stop;
  while (ip < iend && op < ostop) {
    uint8_t tag = *ip++;
    size_t len, off;
    if ((tag & 3) == 0) {
      len = (size_t)(tag >> 2) + 1;
      if (len <= 16 && iend - ip >= 16 && oend - op >= 16) {
        memcpy(op, ip, 16);
        op += len;
        ip += len;
        continue;
      }
      if (len > 60) {
        size_t nb = len - 60;
        if ((size_t)(iend - ip) < nb)
          return snappy_fail(e);
        len = 0;
        for (size_t k = 0; k < nb; k++)
          len |= (size_t)ip[k] << (8 * k);
        len += 1;
        ip += nb;
      }
      if ((size_t)(iend - ip) < len || (size_t)(oend - op) < len)
        return snappy_fail(e);
      memcpy(op, ip, len);
      op += len;
      ip += len;
      continue;
    }
    if ((tag & 3) == 1) {
      if (ip >= iend)
        return snappy_fail(e);
      len = 4 + ((tag >> 2) & 7);
      off = ((size_t)(tag >> 5) << 8) | *ip++;
    } else if ((tag & 3) == 2) {
      if (iend - ip < 2)
        return snappy_fail(e);
      len = 1 + (size_t)(tag >> 2);
      off = (size_t)ip[0] | (size_t)ip[1] << 8;
      ip += 2;
    } else {
      if (iend - ip < 4)
        return snappy_fail(e);
      len = 1 + (size_t)(tag >> 2);
      off = (size_t)ip[0] | (size_t)ip[1] << 8 | (size_t)ip[2] << 16 | (size_t)ip[3] << 24;
      ip += 4;
    }
    if (off == 0 || off > (size_t)(op - base) || len > (size_t)(oend - op))
      return snappy_fail(e);
    const uint8_t *from = op - off;
    if (off >= 16 && oend - op >= 64) {
      /* each 16-byte move reads only bytes before the ones it writes */
      memcpy(op, from, 16);
      if (len > 16) {
        memcpy(op + 16, from + 16, 16);
        if (len > 32) {
          memcpy(op + 32, from + 32, 16);
          memcpy(op + 48, from + 48, 16);
        }
      }
    } else if (off >= 8) {
      size_t k = 0;
      for (; k + 8 <= len; k += 8)
        memcpy(op + k, from + k, 8);
      for (; k < len; k++)
        op[k] = from[k];
    } else {
      for (size_t k = 0; k < len; k++)
        op[k] = from[k];
    }
    op += len;
  }
  *got = (size_t)(op - base);
  if (op < ostop ? op != oend : stop == dstlen && ip != iend)
    return snappy_fail(e);
  return 0;
}

int codec_block_snappy(const void *src, size_t n, void *dst, size_t dstlen, err *e)
{
  size_t got;
  return snappy_run(src, n, dst, dstlen, dstlen, &got, e);
}

int codec_block_snappy_prefix(const void *src, size_t n, void *dst, size_t dstlen, size_t need,
                              size_t *got, err *e)
{
  return snappy_run(src, n, dst, dstlen, need < dstlen ? need : dstlen, got, e);
}

int codec_block_lz4_raw(const void *src, size_t n, void *dst, size_t dstlen, err *e)
{
  if (n > INT32_MAX || dstlen > INT32_MAX)
    return err_set(e, ERR_INVALID, "lz4 block too large");
  int r = LZ4_decompress_safe(src, dst, (int)n, (int)dstlen);
  if (r < 0)
    return err_set(e, ERR_INVALID, "corrupt lz4 data");
  if ((size_t)r != dstlen)
    return err_set(e, ERR_INVALID, "lz4 data gave %d bytes, not %zu", r, dstlen);
  return 0;
}

static uint32_t be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int codec_block_lz4_hadoop(const void *src, size_t n, void *dst, size_t dstlen, err *e)
{
  const unsigned char *p = src;
  size_t left = n;
  size_t out = 0;
  bool framed = true;
  while (left > 0 && framed) {
    if (left < 8) {
      framed = false;
      break;
    }
    uint32_t raw = be32(p);
    uint32_t comp = be32(p + 4);
    if (comp > left - 8 || raw > dstlen - out) {
      framed = false;
      break;
    }
    int r = LZ4_decompress_safe((const char *)p + 8, (char *)dst + out, (int)comp, (int)raw);
    if (r < 0 || (uint32_t)r != raw) {
      framed = false;
      break;
    }
    out += raw;
    p += 8 + comp;
    left -= 8 + comp;
  }
  if (framed && out == dstlen)
    return 0;
  /* not Hadoop framing: one raw block */
  return codec_block_lz4_raw(src, n, dst, dstlen, e);
}

int codec_block_brotli(const void *src, size_t n, void *dst, size_t dstlen, err *e)
{
  size_t got = dstlen;
  BrotliDecoderResult r = BrotliDecoderDecompress(n, src, &got, dst);
  if (r != BROTLI_DECODER_RESULT_SUCCESS)
    return err_set(e, ERR_INVALID, "corrupt brotli data");
  if (got != dstlen)
    return err_set(e, ERR_INVALID, "brotli data gave %zu bytes, not %zu", got, dstlen);
  return 0;
}

/* ---- compression ---- */

int codec_gzip_compress(const void *src, size_t n, int level, char **out, size_t *outlen,
                        err *e)
{
  *out = NULL;
  *outlen = 0;
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return err_set(e, ERR_INTERNAL, "cannot start zlib");
  size_t cap = deflateBound(&z, (uLong)n) + 64;
  char *buf = xmalloc(cap);
  z.next_in = (Bytef *)(uintptr_t)src;
  z.next_out = (Bytef *)buf;
  size_t left = n;
  int zr = Z_OK;
  while (zr != Z_STREAM_END) {
    if (z.avail_in == 0 && left > 0) {
      unsigned chunk = left > (1u << 30) ? (1u << 30) : (unsigned)left;
      z.avail_in = chunk;
      left -= chunk;
    }
    size_t room = cap - (size_t)((char *)z.next_out - buf);
    z.avail_out = room > (1u << 30) ? (1u << 30) : (unsigned)room;
    zr = deflate(&z, left == 0 ? Z_FINISH : Z_NO_FLUSH);
    if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
      deflateEnd(&z);
      free(buf);
      return err_set(e, ERR_INTERNAL, "gzip compression failed");
    }
  }
  *outlen = (size_t)((char *)z.next_out - buf);
  deflateEnd(&z);
  *out = buf;
  return 0;
}

int codec_zstd_compress(const void *src, size_t n, int level, char **out, size_t *outlen,
                        err *e)
{
  *out = NULL;
  *outlen = 0;
  size_t cap = ZSTD_compressBound(n);
  char *buf = xmalloc(cap ? cap : 1);
  size_t r = ZSTD_compress(buf, cap, src, n, level);
  if (ZSTD_isError(r)) {
    free(buf);
    return err_set(e, ERR_INTERNAL, "zstd compression failed (%s)", ZSTD_getErrorName(r));
  }
  *out = buf;
  *outlen = r;
  return 0;
}

int codec_snappy_compress(const void *src, size_t n, char **out, size_t *outlen, err *e)
{
  *out = NULL;
  *outlen = 0;
  size_t cap = snappy_max_compressed_length(n);
  char *buf = xmalloc(cap ? cap : 1);
  size_t len = cap;
  if (snappy_compress(src, n, buf, &len) != SNAPPY_OK) {
    free(buf);
    return err_set(e, ERR_INTERNAL, "snappy compression failed");
  }
  *out = buf;
  *outlen = len;
  return 0;
}
