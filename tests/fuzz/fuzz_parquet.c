/* fuzz_parquet.c -- libFuzzer target for the Parquet reader: any bytes as a
 * whole object -- the tail, the footer (Thrift compact protocol, schema
 * tree, row groups, statistics), then every field of every row group
 * through the page decoders (levels, every encoding, every codec) and the
 * JSON assembly of nested fields, the dictionaries alone, and the page
 * index (ColumnIndex / OffsetIndex) with a decode of every other page
 * that it locates. The reader
 * must stay inside the buffer and either decode or report an error; it
 * must never crash or hang. */
#include "formats/parquet.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  err e;
  err_clear(&e);
  uint32_t flen = 0;
  if (pq_footer_len("fuzz", size, data, size, &flen, &e) < 0)
    return 0;
  pq_file *f = NULL;
  const uint8_t *footer = data + size - PARQUET_FOOTER_TAIL - flen;
  if (pq_file_parse("fuzz", size, footer, flen, &f, &e) < 0)
    return 0;
  for (int g = 0; g < f->nrgs && g < 16; g++) {
    for (int k = 0; k < f->nfields; k++) {
      const pq_field *fd = &f->fields[k];
      const uint8_t *ptrs[64];
      size_t lens[64];
      if (fd->nleaves > 64)
        continue;
      int ok = 1;
      for (int l = 0; l < fd->nleaves && ok; l++) {
        uint64_t off, len;
        if (pq_chunk_range(f, g, fd->first_leaf + l, &off, &len, &e) < 0) {
          ok = 0;
          break;
        }
        ptrs[l] = data + off;
        lens[l] = (size_t)len;
      }
      if (!ok)
        continue;
      pq_column c;
      if (pq_column_read(f, g, k, ptrs, lens, 64u << 20, &c, &e) == 0) {
        /* touch every value */
        volatile size_t sum = 0;
        for (int64_t r = 0; r < c.n; r++) {
          if (c.nulls != NULL && c.nulls[r])
            continue;
          if (c.phys == PHYS_STR)
            sum += c.s[r].len ? (unsigned char)c.s[r].ptr[c.s[r].len - 1] : 0;
          else
            sum += (size_t)c.i[r];
        }
        (void)sum;
        /* read as dictionary codes: the same values (a NULL row's code the
           dictionary's size) */
        pq_column cc;
        if (pq_column_read_codes(f, g, k, ptrs, lens, 64u << 20, NULL, &cc, &e) == 0) {
          if (cc.n != c.n || cc.phys != c.phys)
            __builtin_trap();
          for (int64_t r = 0; r < cc.n; r++) {
            bool nl = cc.nulls != NULL && cc.nulls[r];
            if (nl != (c.nulls != NULL && c.nulls[r]))
              __builtin_trap();
            if (cc.codes == NULL) {
              if (!nl && c.phys != PHYS_STR && cc.i[r] != c.i[r])
                __builtin_trap();
              continue;
            }
            if (cc.codes[r] > cc.ndict || nl != (cc.codes[r] == cc.ndict))
              __builtin_trap();
            if (nl)
              continue;
            if (c.phys == PHYS_STR) {
              str_ref a = ((const str_ref *)cc.dict)[cc.codes[r]];
              if (a.len != c.s[r].len || (a.len && memcmp(a.ptr, c.s[r].ptr, a.len) != 0))
                __builtin_trap();
            } else if (((const int64_t *)cc.dict)[cc.codes[r]] != c.i[r]) {
              __builtin_trap();
            }
          }
          pq_column_release(&cc);
        }
        pq_column_release(&c);
      }
      uint64_t doff, dlen;
      if (!fd->nested && pq_dict_range(f, g, fd->first_leaf, &doff, &dlen) == 0) {
        pq_column dc;
        if (pq_dict_read(f, g, fd->first_leaf, data + doff, (size_t)dlen, 64u << 20, &dc, &e) == 0)
          pq_column_release(&dc);
      }
      uint64_t oo, ol, co, cl, coff, clen;
      pq_page_index_ranges(f, g, fd->first_leaf, &oo, &ol, &co, &cl);
      pq_pageidx pi;
      if (ol > 0 && pq_page_index_parse(f, g, fd->first_leaf, data + oo, (size_t)ol,
                                        cl ? data + co : NULL, (size_t)cl, &pi, &e) == 0) {
        int64_t v2;
        double d2;
        str_ref s2;
        for (int p = 0; pi.has_ci && p < pi.n; p++) {
          pq_stat_value(f, fd->first_leaf, pi.st[p].min, pi.st[p].min_len, &v2, &d2, &s2);
          pq_stat_value(f, fd->first_leaf, pi.st[p].max, pi.st[p].max_len, &v2, &d2, &s2);
        }
        if (!fd->nested && fd->nleaves == 1 && fd->node->max_rep == 0 &&
            pq_chunk_range(f, g, fd->first_leaf, &coff, &clen, &e) == 0) {
          /* the dictionary part, then every other page */
          size_t n = (size_t)((uint64_t)pi.offset[0] - coff);
          for (int p = 0; p < pi.n; p += 2)
            n += (size_t)pi.size[p];
          uint8_t *b = malloc(n + 1);
          size_t w = (size_t)((uint64_t)pi.offset[0] - coff);
          memcpy(b, data + coff, w);
          int64_t rows = 0;
          for (int p = 0; p < pi.n; p += 2) {
            memcpy(b + w, data + pi.offset[p], (size_t)pi.size[p]);
            w += (size_t)pi.size[p];
            rows += pi.first_row[p + 1] - pi.first_row[p];
          }
          pq_column pc;
          if (pq_column_read_pages(f, g, k, b, w, rows, 64u << 20, NULL, &pc, &e) == 0)
            pq_column_release(&pc);
          free(b);
        }
        pq_page_index_free(&pi);
      }
      int64_t v;
      double d;
      str_ref s;
      const pq_stats *st = &f->rgs[g].chunks[fd->first_leaf].st;
      pq_stat_value(f, fd->first_leaf, st->min, st->min_len, &v, &d, &s);
      pq_stat_value(f, fd->first_leaf, st->max, st->max_len, &v, &d, &s);
    }
  }
  pq_file_free(f);
  return 0;
}
