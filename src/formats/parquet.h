/* formats/parquet.h -- the Parquet reader: the footer (schema, row groups,
 * column chunks, statistics) and the decoding of one column chunk into a
 * column of engine values.
 *
 * The reader never touches storage: the caller reads the footer bytes (the
 * object's tail) and each column chunk's bytes (one ranged read each, at
 * pq_chunk_range) and hands them in. So a query reads the footer and the
 * projected chunks of the row groups it keeps, and nothing else.
 *
 * Type mapping (Parquet -> engine), values never changed:
 *   BOOLEAN -> BOOLEAN; INT32/INT64 (signed, UINT_8/16/32) -> BIGINT;
 *   UINT_64 -> BIGINT (a value past 2^63-1 is an error); FLOAT/DOUBLE ->
 *   DOUBLE; FLOAT16 -> DOUBLE; DATE -> DATE; TIMESTAMP (millis, micros,
 *   nanos; UTC-adjusted or not) and INT96 -> TIMESTAMP (microseconds;
 *   nanoseconds are truncated toward minus infinity); DECIMAL of precision
 *   <= 18 (INT32, INT64, FIXED_LEN_BYTE_ARRAY, BYTE_ARRAY) -> DECIMAL(p,s)
 *   (scaled 64-bit, exact); DECIMAL of precision 19..38 -> VARCHAR holding
 *   the exact decimal text (the engine's DECIMAL is 64-bit); TIME -> VARCHAR
 *   'HH:MM:SS[.ffffff]'; UUID -> VARCHAR (8-4-4-4-12 hex); BYTE_ARRAY and
 *   FIXED_LEN_BYTE_ARRAY (strings, JSON, enums, binary) -> VARCHAR with the
 *   bytes as stored; nested groups (LIST, MAP, STRUCT) -> VARCHAR holding
 *   JSON text.
 */
#ifndef TARN_FORMATS_PARQUET_H
#define TARN_FORMATS_PARQUET_H

#include "base/err.h"
#include "formats/column.h"
#include "formats/parquet_format.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PQ_FOOTER_MAX (64u << 20)   /* a larger footer is refused */
#define PQ_PAGE_MAX (1u << 30)      /* a larger page is refused */

/* What a column becomes in the engine. */
typedef enum pq_out {
  PQO_BOOLEAN,
  PQO_BIGINT,
  PQO_DOUBLE,
  PQO_DATE,
  PQO_TIMESTAMP,
  PQO_DECIMAL,    /* prec <= 18, scaled int64 */
  PQO_VARCHAR,
} pq_out;

/* One node of the schema tree. */
typedef struct pq_node {
  const char *name;
  int ptype;          /* PQ_* physical type; -1 for a group */
  int type_len;       /* FIXED_LEN_BYTE_ARRAY width */
  int rep;            /* PQ_REQUIRED / OPTIONAL / REPEATED */
  int converted;      /* PQ_CT_*, -1 none */
  int logical;        /* PQ_LT_*, 0 none */
  int scale, prec;    /* DECIMAL */
  int unit;           /* TIME / TIMESTAMP: PQ_UNIT_* */
  bool is_signed;     /* INTEGER */
  int bits;           /* INTEGER */
  int nchildren;
  struct pq_node **children;
  int max_def;        /* levels at this node */
  int max_rep;
  int leaf;           /* leaf index, -1 for a group */
} pq_node;

/* A leaf column (a column chunk per row group). */
typedef struct pq_leaf {
  pq_node *node;
  int field;          /* top-level field it belongs to */
  pq_out out;         /* engine type of its values (flat fields) */
} pq_leaf;

/* A top-level field: one engine column. */
typedef struct pq_field {
  const char *name;
  pq_node *node;
  bool nested;        /* JSON text assembled from its leaves */
  int first_leaf;     /* its leaves: [first_leaf, first_leaf + nleaves) */
  int nleaves;
  pq_out out;
  int prec, scale;    /* PQO_DECIMAL */
} pq_field;

typedef struct pq_stats {
  const uint8_t *min, *max;   /* plain-encoded bounds, NULL when absent */
  uint32_t min_len, max_len;
  int64_t null_count;         /* -1 unknown */
} pq_stats;

typedef struct pq_chunk {
  int codec;           /* PQ_CODEC_* */
  int ptype;
  int64_t num_values;
  int64_t data_off;    /* first data page */
  int64_t dict_off;    /* dictionary page, -1 none */
  int64_t total;       /* total_compressed_size */
  int all_dict;        /* 1: every data page is dictionary-encoded */
  pq_stats st;
  int64_t oi_off;      /* OffsetIndex / ColumnIndex (page index), -1 none */
  int64_t ci_off;
  int32_t oi_len, ci_len;
} pq_chunk;

typedef struct pq_rowgroup {
  int64_t num_rows;
  pq_chunk *chunks;    /* one per leaf */
} pq_rowgroup;

typedef struct pq_file pq_file;
struct pq_file {
  struct arena *a;     /* everything below lives here */
  const char *name;    /* object name for messages */
  uint64_t size;       /* object size */
  pq_node *root;
  pq_leaf *leaves;
  int nleaves;
  pq_field *fields;
  int nfields;
  pq_rowgroup *rgs;
  int nrgs;
  int64_t num_rows;
};

/* The footer length from the object's last 8 bytes (tail), checked
 * against the object size: errors name the object. */
int pq_footer_len(const char *name, uint64_t size, const uint8_t *tail, size_t n,
                  uint32_t *len, err *e);
/* Parses the footer (FileMetaData, without the 8-byte tail). *out is
 * freed with pq_file_free. */
int pq_file_parse(const char *name, uint64_t size, const uint8_t *footer, size_t n,
                  pq_file **out, err *e);
pq_file *pq_file_free(pq_file *f);

/* The byte range of a column chunk (dictionary page included), checked
 * against the object. */
int pq_chunk_range(const pq_file *f, int rg, int leaf, uint64_t *off, uint64_t *len, err *e);

/* Decodes a statistics bound of a flat field's leaf into an engine value
 * (i64/f64 or a string pointing into the footer). False when the bound
 * cannot be used (absent, or a type whose order differs). */
bool pq_stat_value(const pq_file *f, int leaf, const uint8_t *p, uint32_t n, int64_t *i,
                   double *d, str_ref *s);

/* One decoded column of a row group. Strings point into the chunk bytes
 * handed to pq_column_read (keep them until pq_column_release) or into the
 * column's own buffers. */
typedef struct pq_column {
  int phys;            /* PHYS_* */
  int64_t n;           /* rows */
  uint8_t *nulls;      /* NULL when none */
  union {
    int64_t *i;
    double *f;
    str_ref *s;
    void *p;
  };
  struct pq_buf *bufs; /* owned buffers */
  size_t bytes;        /* memory held */
  /* pq_column_read_codes of a chunk whose data pages all use its
     dictionary: each row's dictionary index (a NULL row has ndict), and
     the dictionary's values (engine types, owned by the column: ndict of
     them and then a zero / empty one, a NULL row's value). The values are
     then not written out: p is NULL, row r's value is dict[codes[r]].
     codes is NULL otherwise (another encoding on some page, nested, no
     dictionary), and p holds the values. */
  uint32_t *codes;
  const void *dict;
  uint32_t ndict;
} pq_column;

/* The page index of a column chunk: its OffsetIndex (where each data page
 * lies and its first row) and, when the file has one, its ColumnIndex
 * (per page min/max, plain-encoded as statistics are, null_pages and null
 * counts). Arrays are malloc'd; bounds point into the ColumnIndex bytes the
 * caller read (keep them while the index is used). */
typedef struct pq_pageidx {
  int n;                  /* data pages */
  int64_t *offset;        /* page header's offset in the object */
  int32_t *size;          /* header + compressed body */
  int64_t *first_row;     /* within the row group; first_row[n] = its rows */
  bool has_ci;
  uint8_t *null_page;     /* page holds only NULLs */
  pq_stats *st;           /* per page: min/max/null_count */
} pq_pageidx;

/* The byte ranges of a chunk's OffsetIndex and ColumnIndex (0 when the
 * file has none), checked against the object. */
void pq_page_index_ranges(const pq_file *f, int rg, int leaf, uint64_t *oi_off,
                          uint64_t *oi_len, uint64_t *ci_off, uint64_t *ci_len);
/* Parses them (ci may be NULL: offsets only). A page index that does not
 * fit its chunk (pages outside it, rows out of order) is an error naming
 * the object. */
int pq_page_index_parse(const pq_file *f, int rg, int leaf, const uint8_t *oi, size_t oin,
                        const uint8_t *ci, size_t cin, pq_pageidx *out, err *e);
void pq_page_index_free(pq_pageidx *p);

/* A cache of freed buffers, so that decoding row group after row group
 * reuses memory already mapped instead of faulting in fresh pages each time
 * (one per reading thread; not thread-safe). pq_pool_take gives a buffer of
 * at least n bytes (free it with free() or hand it back with pq_pool_give);
 * the pool keeps at most a few buffers. */
typedef struct pq_pool pq_pool;
pq_pool *pq_pool_new(void);
void pq_pool_free(pq_pool *p);
void *pq_pool_take(pq_pool *p, size_t n);
void pq_pool_give(pq_pool *p, void *buf);

/* Decodes field fi of row group rg. chunks[k] / lens[k] are the bytes of
 * the field's leaves (pq_chunk_range of first_leaf + k). More than max
 * bytes of decoded data is ERR_ENTITY_TOO_LARGE; corrupt data ERR_INVALID
 * with a message naming the object, the column and what is wrong. */
int pq_column_read(const pq_file *f, int rg, int fi, const uint8_t *const *chunks,
                   const size_t *lens, size_t max, pq_column *out, err *e);
void pq_column_release(pq_column *c);
/* The same, taking buffers from pool and (recycle) handing them back to
 * it; pool may be NULL. */
int pq_column_read_pool(const pq_file *f, int rg, int fi, const uint8_t *const *chunks,
                        const size_t *lens, size_t max, pq_pool *pool, pq_column *out, err *e);
void pq_column_recycle(pq_column *c, pq_pool *pool);
/* The same, also giving each row's dictionary code (pq_column.codes)
 * when the field is flat and every data page of its chunk uses the
 * dictionary. */
int pq_column_read_codes(const pq_file *f, int rg, int fi, const uint8_t *const *chunks,
                         const size_t *lens, size_t max, pq_pool *pool, pq_column *out, err *e);
/* The same for a flat field, decoding only the data pages that hold a row
 * of the row ranges rr ([rr[2i], rr[2i+1]), sorted, disjoint, within the
 * row group): the rows of the other pages are NULL (or zero / empty when
 * the column has no NULLs), their pages neither decompressed nor decoded.
 * A nested field is decoded whole. */
int pq_column_read_rows(const pq_file *f, int rg, int fi, const uint8_t *const *chunks,
                        const size_t *lens, size_t max, pq_pool *pool, const int64_t *rr,
                        int nrr, pq_column *out, err *e);
/* Decodes a flat field (one leaf, no repetition) from some of its chunk's
 * pages only: chunk holds its dictionary page (if any) followed by the
 * chosen data pages, which hold `rows` rows in all. */
int pq_column_read_pages(const pq_file *f, int rg, int fi, const uint8_t *chunk, size_t len,
                         int64_t rows, size_t max, pq_pool *pool, pq_column *out, err *e);

/* The dictionary of a flat field's chunk whose data pages all use it
   (all_dict): its byte range ([dict_off, data_off), checked), then its
   values decoded into out (out->n values, engine types, no NULLs).
   Returns 1 when the chunk has no usable dictionary (nothing decoded). */
int pq_dict_range(const pq_file *f, int rg, int leaf, uint64_t *off, uint64_t *len);
int pq_dict_read(const pq_file *f, int rg, int leaf, const uint8_t *p, size_t n, size_t max,
                 pq_column *out, err *e);

#endif
