/* formats/csv.c -- CSV sniffing and tokenizing (see csv.h for the model).
 *
 * Why hand-written: this is the inner loop of most queries. The fast path
 * reads the bytes once: 64 at a time it marks the delimiters, line breaks
 * and quotes (SSE2), and splits a line on those marks; a line with a quote
 * goes to the careful parser (parse_record_slow). No separate pass looks
 * for quotes or for the last whole record of a piece: a record that runs
 * into the end of a piece (csv_cursor.partial) is left for the next one.
 *
 * Invariants:
 *   (1) A record starts at the object's start (after BOM and header) or
 *       right after a '\n' outside quotes.
 *   (2) Empty lines (only "\n" or "\r\n") are not records.
 *   (3) A cursor never reads outside [base, end).
 *
 * Start reading at csv_tokenize().
 */
#include "csv.h"

#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* line (1-based) and column (1-based, in bytes) of position p */
static void where(const char *base, const char *p, size_t *line, size_t *col)
{
  *line = fmt_count_lines(base, (size_t)(p - base)) + 1;
  const char *ls = p;
  while (ls > base && ls[-1] != '\n')
    ls--;
  *col = (size_t)(p - ls) + 1;
}

static int malformed(csv_cursor *c, const char *at, err *e, const char *what)
{
  size_t line, col;
  where(c->base, at, &line, &col);
  return err_set(e, ERR_INVALID, "malformed CSV in '%s' line %zu column %zu: %s", c->object, line,
                 col, what);
}

/* ---- one record, slow path (quotes, possibly newlines inside them) ---- */

typedef struct rec_out {
  const int *cols;
  int ncols;
  fspan **spans;
  int row;
} rec_out;

/* the first byte at or after p that is the delimiter or '\n' (or end);
 * 16 bytes at a time, never reading at or past end */
static inline const char *next_special(const char *p, const char *end, char d)
{
#ifdef __SSE2__
  const __m128i vd = _mm_set1_epi8(d);
  const __m128i vn = _mm_set1_epi8('\n');
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, vd), _mm_cmpeq_epi8(v, vn)));
    if (m != 0)
      return p + __builtin_ctz((unsigned)m);
    p += 16;
  }
#endif
  while (p < end && *p != d && *p != '\n')
    p++;
  return p;
}

/* Parses the record at c->pos; on success advances c->pos past it and
 * returns the field count; on a malformed record returns -1 and *bad_at,
 * -2 when a quoted field runs to the end of the bytes. */
static long parse_record_slow(csv_cursor *c, rec_out *o, const char **bad_at, const char **why)
{
  const char *p = c->pos;
  const char *end = c->end;
  const char q = c->s->quote;
  const char esc = c->s->escape;
  const char d = c->s->delim;
  long f = 0;
  int k = 0;
  for (;;) {
    const char *fs;
    const char *fe;
    uint32_t flags = 0;
    bool last = false;
    if (p < end && *p == q) {
      flags = SPAN_QUOTED;
      fs = ++p;
      for (;;) {
        const char *x = p;
        if (esc != q) {
          while (x < end && *x != q && *x != esc)
            x++;
          if (x < end && *x == esc) {
            flags |= SPAN_ESCAPED;
            p = x + 2;
            if (p > end) {
              *bad_at = x;
              *why = "unterminated quoted field";
              return -2;
            }
            continue;
          }
        } else {
          x = memchr(p, q, (size_t)(end - p));
          if (x == NULL)
            x = end;
        }
        if (x >= end) {
          *bad_at = fs - 1;
          *why = "unterminated quoted field";
          return -2;
        }
        if (esc == q && x + 1 < end && x[1] == q) {
          flags |= SPAN_ESCAPED;
          p = x + 2;
          continue;
        }
        fe = x;
        p = x + 1;
        break;
      }
      if (p >= end) {
        last = true;
      } else if (*p == d) {
        p++;
      } else if (*p == '\n') {
        p++;
        last = true;
      } else if (*p == '\r' && p + 1 < end && p[1] == '\n') {
        p += 2;
        last = true;
      } else if (*p == '\r' && p + 1 == end) {
        p++;
        last = true;
      } else {
        *bad_at = p;
        *why = "unexpected character after a closing quote";
        return -1;
      }
    } else {
      fs = p;
      p = next_special(p, end, d);
      fe = p;
      if (p >= end) {
        last = true;
        if (fe > fs && fe[-1] == '\r')
          fe--;
      } else if (*p == '\n') {
        if (fe > fs && fe[-1] == '\r')
          fe--;
        p++;
        last = true;
      } else {
        p++;
      }
    }
    if (o != NULL && k < o->ncols && o->cols[k] == f) {
      fspan *sp = &o->spans[k][o->row];
      sp->p = fs;
      sp->n = (uint32_t)(fe - fs);
      sp->flags = flags;
      k++;
    }
    f++;
    if (last)
      break;
    if (p >= end) {
      /* a trailing delimiter at the very end: one more, empty field */
      if (o != NULL && k < o->ncols && o->cols[k] == f) {
        fspan *sp = &o->spans[k][o->row];
        sp->p = p;
        sp->n = 0;
        sp->flags = 0;
        k++;
      }
      f++;
      break;
    }
  }
  c->pos = p;
  return f;
}

/* ---- sniffing ---- */

typedef struct sample_rec {
  long nf;
  const char *start;
} sample_rec;

/* counts fields of up to max records of p[0..n) with delimiter d */
static size_t sample_counts(const char *p, size_t n, char d, char q, sample_rec *out, size_t max)
{
  csv_schema s = {.delim = d, .quote = q, .escape = q};
  csv_cursor c = {.s = &s, .base = p, .end = p + n, .pos = p};
  size_t nrec = 0;
  while (c.pos < c.end && nrec < max) {
    if (*c.pos == '\n') {
      c.pos++;
      continue;
    }
    if (*c.pos == '\r' && c.pos + 1 < c.end && c.pos[1] == '\n') {
      c.pos += 2;
      continue;
    }
    const char *bad;
    const char *why;
    const char *start = c.pos;
    long nf = parse_record_slow(&c, NULL, &bad, &why);
    if (nf < 0)
      break;
    out[nrec].nf = nf;
    out[nrec].start = start;
    nrec++;
  }
  return nrec;
}

#define SNIFF_MAX_RECS 20000

static int collect_fields(const csv_schema *s, const char *p, size_t n, const char *rec,
                          fspan *fields, size_t ncols)
{
  csv_cursor c = {.s = s, .base = p, .end = p + n, .pos = rec};
  int cols[CSV_MAX_COLUMNS];
  fspan *spans[CSV_MAX_COLUMNS];
  for (size_t i = 0; i < ncols; i++) {
    cols[i] = (int)i;
    spans[i] = &fields[i];
  }
  rec_out o = {.cols = cols, .ncols = (int)ncols, .spans = spans, .row = 0};
  const char *bad;
  const char *why;
  return (int)parse_record_slow(&c, &o, &bad, &why);
}

static fmt_type span_type(const csv_schema *s, const fspan *f)
{
  if (f->n == 0)
    return FT_NULL;
  if (s->nullstr != NULL && !(f->flags & SPAN_QUOTED) && strlen(s->nullstr) == f->n &&
      memcmp(s->nullstr, f->p, f->n) == 0)
    return FT_NULL;
  if (f->flags & SPAN_ESCAPED)
    return FT_VARCHAR;
  return fmt_guess_type(f->p, f->n);
}

int csv_sniff(const char *p, size_t n, bool whole, const csv_options *opt, arena *a,
              csv_schema *out, err *e)
{
  memset(out, 0, sizeof *out);
  out->quote = opt->quote ? opt->quote : '"';
  out->escape = opt->escape ? opt->escape : out->quote;
  out->nullstr = opt->nullstr;
  /* skip a BOM */
  if (n >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
      (unsigned char)p[2] == 0xBF) {
    p += 3;
    n -= 3;
  }
  /* when the sample is cut, drop the last (maybe partial) line */
  if (!whole) {
    const char *nl = memrchr(p, '\n', n);
    if (nl != NULL)
      n = (size_t)(nl - p) + 1;
  }
  sample_rec *recs = xmalloc(sizeof *recs * SNIFF_MAX_RECS);
  static const char cands[] = {',', '\t', ';', '|'};
  size_t best_rows = 0;
  long best_nf = 0;
  char best_d = ',';
  for (size_t ci = 0; ci < sizeof cands; ci++) {
    char d = cands[ci];
    if (opt->delim && d != opt->delim)
      continue;
    size_t nrec = sample_counts(p, n, d, out->quote, recs, 200);
    /* the modal field count and how many records have it */
    long modal = 0;
    size_t modal_rows = 0;
    for (size_t i = 0; i < nrec; i++) {
      size_t cnt = 0;
      for (size_t j = 0; j < nrec; j++)
        cnt += recs[j].nf == recs[i].nf;
      if (cnt > modal_rows || (cnt == modal_rows && recs[i].nf > modal)) {
        modal_rows = cnt;
        modal = recs[i].nf;
      }
    }
    bool better;
    if (best_nf <= 1)
      better = modal > best_nf || (modal == best_nf && modal_rows > best_rows);
    else
      better = modal > 1 && (modal_rows > best_rows || (modal_rows == best_rows && modal > best_nf));
    if (better) {
      best_rows = modal_rows;
      best_nf = modal;
      best_d = d;
    }
  }
  if (opt->delim)
    best_d = opt->delim;
  out->delim = best_d;
  size_t nrec = sample_counts(p, n, best_d, out->quote, recs, SNIFF_MAX_RECS);
  if (opt->ncols > 0) {
    out->declared = true;
    out->ncols = opt->ncols;
  } else {
    out->ncols = best_nf > 0 ? (size_t)best_nf : 1;
    if (nrec > 0 && best_nf == 0)
      out->ncols = (size_t)recs[0].nf;
  }
  if (out->ncols > CSV_MAX_COLUMNS) {
    free(recs);
    return err_set(e, ERR_INVALID, "CSV has %zu columns (at most %d)", out->ncols,
                   CSV_MAX_COLUMNS);
  }
  size_t nc = out->ncols;
  out->names = arena_alloc(a, sizeof(char *) * nc);
  out->types = arena_alloc(a, sizeof(fmt_type) * nc);
  fspan *fields = xmalloc(sizeof(fspan) * (nc + 1));
  fmt_type *rest = xcalloc(nc, sizeof(fmt_type));
  fmt_type *firstt = xcalloc(nc, sizeof(fmt_type));
  fspan *first = xcalloc(nc, sizeof(fspan));
  bool first_ok = false;
  for (size_t r = 0; r < nrec; r++) {
    if ((size_t)recs[r].nf != nc)
      continue;
    collect_fields(out, p, n, recs[r].start, fields, nc);
    for (size_t i = 0; i < nc; i++) {
      fmt_type t = span_type(out, &fields[i]);
      if (r == 0) {
        firstt[i] = t;
        first[i] = fields[i];
      } else {
        rest[i] = fmt_type_merge(rest[i], t);
      }
    }
    if (r == 0)
      first_ok = true;
  }
  bool header;
  if (opt->header >= 0) {
    header = opt->header == 1;
  } else if (!first_ok) {
    header = false;
  } else {
    bool any_empty = false;
    bool all_text = true;
    bool conflict = false;
    for (size_t i = 0; i < nc; i++) {
      if (firstt[i] == FT_NULL)
        any_empty = true;
      if (firstt[i] != FT_VARCHAR)
        all_text = false;
      if (rest[i] != FT_NULL && rest[i] != FT_VARCHAR && firstt[i] == FT_VARCHAR)
        conflict = true;
    }
    if (any_empty)
      header = false;
    else if (conflict)
      header = true;
    else if (all_text) {
      bool rest_text = true;
      for (size_t i = 0; i < nc; i++)
        if (rest[i] != FT_VARCHAR && rest[i] != FT_NULL)
          rest_text = false;
      header = rest_text;
    } else {
      header = false;
    }
  }
  out->header = header;
  for (size_t i = 0; i < nc; i++) {
    fmt_type t = header ? rest[i] : fmt_type_merge(rest[i], firstt[i]);
    out->types[i] = t == FT_NULL ? FT_VARCHAR : t;
    if (opt->ncols > 0) {
      out->types[i] = opt->types[i];
      out->names[i] = arena_strdup(a, opt->names[i]);
      continue;
    }
    if (header && first[i].n > 0) {
      char *nm = arena_strndup(a, first[i].p, first[i].n);
      if (first[i].flags & SPAN_ESCAPED) {
        /* collapse doubled quotes */
        char *w = nm;
        for (char *r = nm; *r; r++) {
          *w++ = *r;
          if (*r == out->quote && r[1] == out->quote)
            r++;
        }
        *w = '\0';
      }
      out->names[i] = nm;
    } else {
      out->names[i] = arena_sprintf(a, "column%zu", i);
    }
  }
  /* duplicate names get a suffix */
  for (size_t i = 0; i < nc; i++) {
    for (size_t j = 0; j < i; j++) {
      if (strcmp(out->names[i], out->names[j]) == 0) {
        out->names[i] = arena_sprintf(a, "%s_%zu", out->names[i], i);
        j = (size_t)-1;
        continue;
      }
    }
  }
  free(fields);
  free(rest);
  free(firstt);
  free(first);
  free(recs);
  return 0;
}

void csv_sample_types(const csv_schema *s, const char *p, size_t n, bool mid, fmt_type *types)
{
  if (mid) {
    const char *nl = memchr(p, '\n', n);
    if (nl == NULL)
      return;
    n -= (size_t)(nl + 1 - p);
    p = nl + 1;
  }
  const char *nl = memrchr(p, '\n', n);
  if (nl == NULL)
    return;
  n = (size_t)(nl - p) + 1;
  sample_rec *recs = xmalloc(sizeof *recs * 2000);
  fspan *fields = xmalloc(sizeof(fspan) * (s->ncols + 1));
  size_t nrec = sample_counts(p, n, s->delim, s->quote, recs, 2000);
  for (size_t r = 0; r < nrec; r++) {
    if ((size_t)recs[r].nf != s->ncols)
      continue;
    collect_fields(s, p, n, recs[r].start, fields, s->ncols);
    for (size_t i = 0; i < s->ncols; i++)
      types[i] = fmt_type_merge(types[i], span_type(s, &fields[i]));
  }
  free(fields);
  free(recs);
}

/* ---- cursor ---- */

size_t csv_count_quotes(const char *p, size_t n, char q)
{
  size_t c = 0;
  size_t i = 0;
#ifdef __SSE2__
  /* byte counters (a match subtracts -1), summed before they can wrap */
  const __m128i vq = _mm_set1_epi8(q);
  const __m128i zero = _mm_setzero_si128();
  __m128i acc = zero;
  int k = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
    acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v, vq));
    if (++k == 255) {
      __m128i sum = _mm_sad_epu8(acc, zero);
      c += (size_t)_mm_cvtsi128_si32(sum) + (size_t)_mm_extract_epi16(sum, 4);
      acc = zero;
      k = 0;
    }
  }
  __m128i sum = _mm_sad_epu8(acc, zero);
  c += (size_t)_mm_cvtsi128_si32(sum) + (size_t)_mm_extract_epi16(sum, 4);
#endif
  for (; i < n; i++)
    c += p[i] == q;
  return c;
}

int csv_cursor_init(csv_cursor *c, const csv_schema *s, const char *base, size_t size,
                    size_t start, size_t stop, const char *object, bool skip_malformed, err *e)
{
  return csv_cursor_init_at(c, s, base, size, start, stop, object, skip_malformed, -1, e);
}

int csv_cursor_init_at(csv_cursor *c, const csv_schema *s, const char *base, size_t size,
                       size_t start, size_t stop, const char *object, bool skip_malformed,
                       int in_quote, err *e)
{
  memset(c, 0, sizeof *c);
  c->s = s;
  c->base = base;
  c->end = base + size;
  c->stop = base + stop;
  c->object = object;
  c->skip_malformed = skip_malformed;
  if (start == 0) {
    const char *p = base;
    if (size >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
      p += 3;
    c->pos = p;
    if (s->header) {
      /* skip blank lines, then one record */
      while (c->pos < c->end && (*c->pos == '\n' || *c->pos == '\r'))
        c->pos++;
      if (c->pos < c->end) {
        const char *bad;
        const char *why;
        if (parse_record_slow(c, NULL, &bad, &why) < 0)
          return malformed(c, bad, e, why);
      }
    }
  } else if (in_quote < 0) {
    const char *nl = memchr(base + start - 1, '\n', size - (start - 1));
    c->pos = nl == NULL ? c->end : nl + 1;
  } else {
    /* the first line break outside quotes, knowing whether base[start-1]
       is inside a quoted field */
    const char *p = base + start - 1;
    const char *end = base + size;
    bool inq = in_quote == 1;
    while (p < end) {
      char ch = *p;
      if (ch == s->quote)
        inq = !inq;
      else if (ch == '\n' && !inq)
        break;
      p++;
    }
    c->pos = p < end ? p + 1 : end;
  }
  c->first = c->pos;
  return 0;
}

void csv_cursor_resume(csv_cursor *c, const csv_schema *s, const char *base, size_t size,
                       size_t stop, const char *object, bool skip_malformed)
{
  memset(c, 0, sizeof *c);
  c->s = s;
  c->base = base;
  c->end = base + size;
  c->stop = base + (stop < size ? stop : size);
  c->pos = base;
  c->first = base;
  c->object = object;
  c->skip_malformed = skip_malformed;
}

/* ---- the structural scan: 64 bytes at a time ----
 *
 * The tokenizer looks for three bytes: the delimiter, '\n' and the quote.
 * One pass classifies 64 bytes into a bit mask; the fields of a line are
 * then its bits (a shift and a count of trailing zeros each), so a quote
 * is seen by the same scan that splits the fields, and a record with one
 * goes to the careful parser. */

/* bit i: p[i] is a, b or c (i < n <= 64) */
static inline uint64_t block_mask(const char *p, size_t n, char a, char b, char c)
{
#ifdef __SSE2__
  if (n == 64) {
    const __m128i va = _mm_set1_epi8(a);
    const __m128i vb = _mm_set1_epi8(b);
    const __m128i vc = _mm_set1_epi8(c);
    uint64_t m = 0;
    for (int i = 0; i < 4; i++) {
      __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
      __m128i x = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb)),
                               _mm_cmpeq_epi8(v, vc));
      m |= (uint64_t)(unsigned)_mm_movemask_epi8(x) << (16 * i);
    }
    return m;
  }
#endif
  uint64_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (p[i] == a || p[i] == b || p[i] == c)
      m |= 1ull << i;
  return m;
}

typedef struct scanner {
  const char *blk;       /* the classified block [blk, bend) */
  const char *bend;
  uint64_t mask;         /* its bytes that are special */
  const char *end;       /* never read at or past it */
  char d, q;             /* the special bytes besides '\n' */
} scanner;

static inline void scanner_init(scanner *sc, const char *at, const char *end, char d, char q)
{
  sc->blk = sc->bend = at;
  sc->mask = 0;
  sc->end = end;
  sc->d = d;
  sc->q = q;
}

/* the first special byte at or after p, or end */
static inline const char *scan_next(scanner *sc, const char *p)
{
  for (;;) {
    if (p >= sc->blk && p < sc->bend) {
      uint64_t m = sc->mask >> (unsigned)(p - sc->blk);
      if (m != 0)
        return p + __builtin_ctzll(m);
      p = sc->bend;
    }
    if (p >= sc->end)
      return sc->end;
    size_t n = (size_t)(sc->end - p);
    if (n > 64)
      n = 64;
    sc->blk = p;
    sc->bend = p + n;
    sc->mask = block_mask(p, n, sc->d, '\n', sc->q);
  }
}

/* a record the slow path read (or failed on) that runs into the end of a
   piece (c->partial): the rest of it is in the next piece */
static bool cut_short(const csv_cursor *c, long f)
{
  if (!c->partial)
    return false;
  if (f == -2)
    return true;
  return f >= 0 && c->pos == c->end && c->end[-1] != '\n';
}

int csv_tokenize(csv_cursor *c, const int *cols, int ncols, fspan **spans, const char **rec,
                 int max, err *e)
{
  const csv_schema *s = c->s;
  const char d = s->delim;
  const char q = s->quote;
  const long want = (long)s->ncols;
  const char *end = c->end;
  const char *pos = c->pos;
  const char *stop = c->stop < end ? c->stop : end;
  /* with no column to read only line breaks and quotes matter */
  scanner sc;
  scanner_init(&sc, pos, end, ncols == 0 ? '\n' : d, q);
  int row = 0;
  while (row < max && pos < stop) {
    if (*pos == '\n') {
      /* an empty line is not a record */
      pos++;
      continue;
    }
    if (*pos == '\r' && (pos + 1 == end || pos[1] == '\n')) {
      if (pos + 1 == end && c->partial)
        break;
      pos += pos + 1 == end ? 1 : 2;
      continue;
    }
    /* fast path: fields end at the delimiter or the newline; a quote
       anywhere in the record sends it to the slow path */
    const char *p = pos;
    const char *x;
    long f = 0;
    int k = 0;
    bool quoted = false;
    if (ncols == 0) {
      x = scan_next(&sc, p);
      quoted = x < end && *x == q;
    } else {
      for (;;) {
        x = scan_next(&sc, p);
        if (x < end && *x == q) {
          quoted = true;
          break;
        }
        const char *fe = x;
        if (k < ncols && f == cols[k]) {
          if ((x == end || *x == '\n') && fe > p && fe[-1] == '\r')
            fe--;
          fspan *sp = &spans[k][row];
          sp->p = p;
          sp->n = (uint32_t)(fe - p);
          sp->flags = 0;
          k++;
        }
        f++;
        if (x == end || *x == '\n')
          break;
        p = x + 1;
      }
    }
    if (!quoted) {
      if (x == end && c->partial)
        break; /* the record goes on in the next piece */
      if (ncols > 0 && f != want && s->lenient) {
        for (; k < ncols; k++)
          spans[k][row] = (fspan){NULL, 0, 0};
      } else if (ncols > 0 && f != want) {
        const char *le = x;
        if (le > pos && le[-1] == '\r')
          le--;
        if (c->skip_malformed) {
          c->skipped++;
          pos = x < end ? x + 1 : end;
          continue;
        }
        c->pos = pos;
        char what[96];
        snprintf(what, sizeof what, "expected %ld fields, found %ld", want, f);
        return malformed(c, le, e, what);
      }
      rec[row++] = pos;
      pos = x < end ? x + 1 : end;
      continue;
    }
    /* slow path: quotes, maybe newlines inside them */
    c->pos = pos;
    rec_out o = {.cols = cols, .ncols = ncols, .spans = spans, .row = row};
    const char *bad = NULL;
    const char *why = NULL;
    f = parse_record_slow(c, &o, &bad, &why);
    if (cut_short(c, f))
      break;
    if (f >= 0 && f < want && ncols > 0 && s->lenient) {
      for (int j = 0; j < ncols; j++)
        if (cols[j] >= f)
          spans[j][row] = (fspan){NULL, 0, 0};
    }
    if (f < 0 || (f != want && ncols > 0 && !s->lenient)) {
      if (c->skip_malformed) {
        if (f < 0) {
          /* resynchronize at the next line */
          const char *nl = memchr(bad, '\n', (size_t)(end - bad));
          if (nl == NULL && c->partial)
            break;
          c->pos = nl == NULL ? end : nl + 1;
        }
        c->skipped++;
        pos = c->pos;
        continue;
      }
      if (f >= 0) {
        char what[96];
        snprintf(what, sizeof what, "expected %ld fields, found %ld", want, f);
        const char *at = c->pos;
        if (at > pos && at[-1] == '\n')
          at--;
        if (at > pos && at[-1] == '\r')
          at--;
        c->pos = pos;
        return malformed(c, at, e, what);
      }
      c->pos = pos;
      return malformed(c, bad, e, why);
    }
    rec[row++] = pos;
    pos = c->pos;
  }
  c->pos = pos;
  return row;
}

/* ---- conversion ---- */

size_t fmt_json_unescape(const char *p, size_t n, char *dst)
{
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (ch != '\\' || i + 1 >= n) {
      dst[o++] = ch;
      continue;
    }
    char x = p[++i];
    switch (x) {
    case 'n': dst[o++] = '\n'; break;
    case 't': dst[o++] = '\t'; break;
    case 'r': dst[o++] = '\r'; break;
    case 'b': dst[o++] = '\b'; break;
    case 'f': dst[o++] = '\f'; break;
    case 'u': {
      if (i + 4 >= n) {
        dst[o++] = '?';
        i = n;
        break;
      }
      unsigned cp = 0;
      for (int k = 1; k <= 4; k++) {
        char h = p[i + (size_t)k];
        cp <<= 4;
        if (h >= '0' && h <= '9')
          cp |= (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f')
          cp |= (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
          cp |= (unsigned)(h - 'A' + 10);
      }
      i += 4;
      if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < n && p[i + 1] == '\\' && p[i + 2] == 'u') {
        unsigned lo = 0;
        for (int k = 3; k <= 6; k++) {
          char h = p[i + (size_t)k];
          lo <<= 4;
          if (h >= '0' && h <= '9')
            lo |= (unsigned)(h - '0');
          else if (h >= 'a' && h <= 'f')
            lo |= (unsigned)(h - 'a' + 10);
          else if (h >= 'A' && h <= 'F')
            lo |= (unsigned)(h - 'A' + 10);
        }
        if (lo >= 0xDC00 && lo < 0xE000) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          i += 6;
        }
      }
      /* 6 escape bytes become at most 4 UTF-8 bytes */
      if (cp < 0x80) {
        dst[o++] = (char)cp;
      } else if (cp < 0x800) {
        dst[o++] = (char)(0xC0 | (cp >> 6));
        dst[o++] = (char)(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        dst[o++] = (char)(0xE0 | (cp >> 12));
        dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[o++] = (char)(0x80 | (cp & 0x3F));
      } else {
        dst[o++] = (char)(0xF0 | (cp >> 18));
        dst[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[o++] = (char)(0x80 | (cp & 0x3F));
      }
      break;
    }
    default: dst[o++] = x; break;
    }
  }
  return o;
}

/* the text of a span, unescaped into h when needed */
/* An integer that reads back as written: no '+', no leading zeros. A
 * BIGINT column (sniffed from samples) that meets "000042" further on
 * reports a bad value rather than turning it into 42. */
static inline bool keeps_text(const char *p, size_t n)
{
  if (n < 2)
    return true;
  if (p[0] == '+' || p[0] == '0')
    return false;
  return !(p[0] == '-' && p[1] == '0' && n > 2);
}

static str_ref span_text(const fspan *sp, char quote, char escape, strheap *h)
{
  str_ref r = {sp->p, sp->n};
  if (!(sp->flags & SPAN_ESCAPED))
    return r;
  char *dst = strheap_alloc(h, sp->n + 1);
  size_t o;
  if (sp->flags & SPAN_JSON_STR) {
    o = fmt_json_unescape(sp->p, sp->n, dst);
  } else {
    o = 0;
    for (uint32_t i = 0; i < sp->n; i++) {
      char ch = sp->p[i];
      if ((ch == escape || ch == quote) && i + 1 < sp->n) {
        dst[o++] = sp->p[++i];
        continue;
      }
      dst[o++] = ch;
    }
  }
  r.ptr = dst;
  r.len = o;
  return r;
}

int fmt_convert(const fspan *spans, const uint16_t *sel, int nsel, fmt_type t, char quote,
                char escape, const char *nullstr, vec *out, uint8_t *nullbuf, strheap *h,
                uint8_t *bad)
{
  return fmt_convert_sniffed(spans, sel, nsel, t, quote, escape, nullstr, false, out, nullbuf, h,
                             bad);
}

const char fmt_no_null[] = "";

int fmt_convert_sniffed(const fspan *spans, const uint16_t *sel, int nsel, fmt_type t,
                        char quote, char escape, const char *nullstr, bool sniffed, vec *out,
                        uint8_t *nullbuf, strheap *h, uint8_t *bad)
{
  int nbad = 0;
  bool anynull = false;
  size_t nulllen = nullstr != NULL ? strlen(nullstr) : 0;
  bool empty_null = nullstr != fmt_no_null;
  for (int j = 0; j < nsel; j++) {
    int r = sel != NULL ? sel[j] : j;
    const fspan *sp = &spans[r];
    bool isnull = sp->p == NULL;
    if (!isnull && empty_null && sp->n == 0 && !(sp->flags & (SPAN_QUOTED | SPAN_JSON_STR)))
      isnull = true;
    if (!isnull && sp->n == 0 && t != FT_VARCHAR)
      isnull = true;
    if (!isnull && empty_null && nullstr != NULL && !(sp->flags & (SPAN_QUOTED | SPAN_JSON_STR)) &&
        sp->n == nulllen && memcmp(sp->p, nullstr, nulllen) == 0)
      isnull = true;
    nullbuf[r] = isnull;
    if (isnull) {
      anynull = true;
      if (out->phys == PHYS_STR) {
        out->s[r].ptr = "";
        out->s[r].len = 0;
      } else {
        out->i[r] = 0;
      }
      continue;
    }
    bool ok = true;
    switch (t) {
    case FT_VARCHAR:
      out->s[r] = span_text(sp, quote, escape, h);
      break;
    case FT_BIGINT:
      ok = fmt_parse_i64(sp->p, sp->n, &out->i[r]) && (!sniffed || keeps_text(sp->p, sp->n));
      if (!ok && (sp->flags & SPAN_ESCAPED)) {
        str_ref s = span_text(sp, quote, escape, h);
        ok = fmt_parse_i64(s.ptr, s.len, &out->i[r]);
      }
      break;
    case FT_DOUBLE:
      ok = fmt_parse_f64(sp->p, sp->n, &out->f[r]);
      break;
    case FT_BOOLEAN:
      ok = fmt_parse_bool(sp->p, sp->n, &out->i[r]);
      break;
    case FT_DATE:
      ok = fmt_parse_date(sp->p, sp->n, &out->i[r]);
      break;
    case FT_TIMESTAMP:
      ok = fmt_parse_timestamp(sp->p, sp->n, &out->i[r]);
      break;
    case FT_NULL:
      ok = true;
      nullbuf[r] = 1;
      anynull = true;
      break;
    }
    if (!ok) {
      nbad++;
      nullbuf[r] = 1;
      anynull = true;
      if (out->phys == PHYS_STR) {
        out->s[r].ptr = "";
        out->s[r].len = 0;
      } else {
        out->i[r] = 0;
      }
      if (bad != NULL)
        bad[r] = 1;
    }
  }
  out->nulls = anynull ? nullbuf : NULL;
  return nbad;
}
