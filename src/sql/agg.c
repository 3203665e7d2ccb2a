/* sql/agg.c -- hash aggregation (GROUP BY, DISTINCT) and the set
 * operations (UNION, INTERSECT, EXCEPT), both on one group table.
 *
 * Parallel plan (see "the sink" below): every thread aggregates its
 * batches into a bounded table of its own (pre-aggregation, no locks),
 * flushed into 64 hash partitions whenever it fills; when the pipeline
 * ends, each partition's table is built once from every thread's flushed
 * groups, sized from their number, and read out. A thread whose table
 * barely reduces its rows (nearly unique keys) stops aggregating locally
 * and writes each row straight into its partition (direct mode, see
 * DIRECT_RATIO). A global aggregation
 * (no GROUP BY) merges the threads' single groups.
 *
 * The group table: key columns stored column-wise (strings copied into its
 * bank), a stored hash per group, an open-addressing index of group ids,
 * and one fixed-size state per (group, aggregate). Slots hold 32 bits of
 * the hash with the group id, so keys are compared only on a tag match;
 * a single BIGINT key is also kept in the slot (inline_key), so a probe
 * touches one cache line (its NULL group lives outside the slots). Probes
 * are prefetched PF_DIST rows ahead, and so are the states in the update
 * loops. COUNT(DISTINCT x) is rewritten by the binder into a GROUP BY on
 * (keys, x) below a plain count, so it runs on this table too.
 *
 * Memory: slot arrays are zeroed by writing (table_zalloc), not calloc:
 * calloc's pages are the shared zero page until written, and the first
 * write after a probe read is a copy-on-write fault that flushes the TLB
 * of every thread of the query (an IPI per 4 KB page, a fifth of a
 * high-cardinality aggregation).
 *
 * Invariants:
 *   (1) Grouping treats NULL as a value (all NULL keys form one group),
 *       unlike join equality.
 *   (2) Aggregates skip NULL inputs; sum/avg/min/max of no values is NULL,
 *       count is 0. A global aggregation (no GROUP BY) has one row even
 *       over no input.
 *   (3) Integer sums that overflow fail the query (as Presto does).
 *
 * Start reading at sql__exec_agg().
 */
#include "exec.h"

#include "base/mem.h"

#include <math.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

typedef union aval {
  int64_t i;
  double f;
  str_ref s;
} aval;

typedef struct astate {
  int64_t n;          /* values seen (count, has-value flag) */
  aval v;             /* sum / min / max / value */
  union {             /* by the aggregate (40 bytes in all: cache footprint) */
    aval k;           /* max_by / min_by: the ordering value */
    struct {
      double mean;    /* variance: Welford */
      double m2;
    };
    valset *set;      /* DISTINCT, approx_distinct */
  };
} astate;

static bool has_set(const aggcall *a)
{
  return a->distinct || a->fn == AGG_APPROX_DISTINCT;
}

/* the bytes of a state that aggregates other than by, variance and the
 * set ones use (n and v): a partition block stores only these when every
 * aggregate is such (fewer fresh pages written per flushed group) */
#define SLIM offsetof(astate, set)

static bool slim_aggs(int na, const aggcall *aggs)
{
  for (int a = 0; a < na; a++) {
    const aggcall *ac = &aggs[a];
    if (has_set(ac))
      return false;
    switch (ac->fn) {
    case AGG_COUNT_STAR: case AGG_COUNT: case AGG_COUNT_IF: case AGG_SUM: case AGG_AVG:
    case AGG_MIN: case AGG_MAX: case AGG_BOOL_AND: case AGG_BOOL_OR: case AGG_ARBITRARY:
      break;
    default:
      return false;
    }
  }
  return true;
}

typedef struct gslot {
  uint64_t tg;        /* (hash tag << 32) | (group id + 1) */
  int64_t key;        /* a single non-NULL integer key, kept here to compare
                         without touching the key arrays (inline_key) */
} gslot;

typedef struct gtable {
  qctx *q;
  int nk;             /* key columns */
  uint8_t *kphys;
  int na;             /* aggregates */
  const aggcall *aggs;
  size_t n;           /* groups */
  size_t cap;
  int64_t **kv;       /* per key column: value (or str_ref via ks) */
  str_ref **ks;
  uint8_t **kn;       /* per key column: null flags */
  uint64_t *hash;
  gslot *slots;       /* open addressing; tg 0 = empty */
  size_t nslots;
  astate *st;         /* n * na */
  int64_t *cnt[2];    /* set operations: rows from each side */
  sbank *bank;
  size_t accounted;
  bool inline_key;    /* one key column of PHYS_I64 */
  bool slim;          /* a partition block whose states are stored without
                         their last union (SLIM bytes each: see slim_aggs) */
  uint32_t null_gid;  /* inline_key: the NULL key's group (never in slots), or
                         UINT32_MAX */
} gtable;

/* the size of one state in g's array */
static size_t st_size(const gtable *g)
{
  return g->slim ? SLIM : sizeof(astate);
}

/* zeroed memory for slot arrays. Not calloc: its fresh pages are the shared
 * zero page until written, and a table is read (probed) before it is
 * written, so each 4 KB page would take a copy-on-write fault whose TLB
 * flush interrupts every other thread of the query (an IPI per page: a
 * fifth of a high-cardinality aggregation's time). Writing the zeros first
 * makes them private pages at once. (Huge pages were tried: less user
 * time, as much more system time zeroing them, on this machine.) */
#define TABLE_MAP_MIN (256u << 10)
#define PF_DIST 16 /* rows between a slot's prefetch and its probe */

static void *table_zalloc(size_t bytes)
{
  /* a large one: fresh zero pages, faulted in by one madvise instead of a
     fault per 4 KB page (each a trap into the kernel, dear on a virtual
     machine) and not written twice */
  if (bytes >= TABLE_MAP_MIN) {
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      if (madvise(m, bytes, MADV_POPULATE_WRITE) != 0)
        memset(m, 0, bytes);
      return m;
    }
  }
  void *p = xmalloc(bytes);
  memset(p, 0, bytes);
  return p;
}

/* frees a slot array of `bytes` (from table_zalloc, or a small calloc) */
static void table_free(void *p, size_t bytes)
{
  if (p != NULL && bytes >= TABLE_MAP_MIN)
    munmap(p, bytes);
  else
    free(p);
}

/* frees an array of n elements of size es grown by grow_arr */
static void arr_free(void *p, size_t n, size_t es)
{
  if (p != NULL && n * es >= TABLE_MAP_MIN)
    munmap(p, n * es);
  else
    free(p);
}

static void gt_account(gtable *g, size_t bytes)
{
  g->accounted += bytes;
  sql__qctx_mem(g->q, (int64_t)bytes);
}

/* a copy of s in the table's bank, its growth charged to the query's
 * budget (keys and min/max strings may be as large as SQL_VALUE_MAX) */
static const char *bank_copy(gtable *g, str_ref s)
{
  size_t before = sql__sbank_bytes(g->bank);
  const char *p = sql__sbank_copy(g->bank, s.ptr, s.len);
  size_t after = sql__sbank_bytes(g->bank);
  if (after > before)
    gt_account(g, after - before);
  return p;
}

static gtable *gt_new(qctx *q, int nk, const uint8_t *kphys, int na, const aggcall *aggs,
                      bool counts)
{
  gtable *g = xcalloc(1, sizeof *g);
  g->q = q;
  g->nk = nk;
  g->kphys = xmalloc((size_t)nk + 1);
  memcpy(g->kphys, kphys, (size_t)nk);
  g->na = na;
  g->aggs = aggs;
  g->kv = xcalloc((size_t)nk + 1, sizeof(int64_t *));
  g->ks = xcalloc((size_t)nk + 1, sizeof(str_ref *));
  g->kn = xcalloc((size_t)nk + 1, sizeof(uint8_t *));
  g->nslots = 64;
  g->slots = xcalloc(g->nslots, sizeof(gslot));
  g->inline_key = nk == 1 && kphys[0] == PHYS_I64;
  g->null_gid = UINT32_MAX;
  g->bank = sql__sbank_new();
  if (counts) {
    g->cnt[0] = (int64_t *)1; /* marker: allocate with the groups */
    g->cnt[1] = (int64_t *)1;
  }
  return g;
}

static void gt_free(gtable *g)
{
  if (g == NULL)
    return;
  for (int k = 0; k < g->nk; k++) {
    arr_free(g->kv[k], g->cap, sizeof(int64_t));
    arr_free(g->ks[k], g->cap, sizeof(str_ref));
    arr_free(g->kn[k], g->cap, 1);
  }
  if (g->st != NULL && !g->slim) {
    for (int a = 0; a < g->na; a++)
      if (has_set(&g->aggs[a]))
        for (size_t i = 0; i < g->n; i++)
          sql__valset_free(g->st[i * (size_t)g->na + (size_t)a].set);
  }
  free(g->kv);
  free(g->ks);
  free(g->kn);
  free(g->kphys);
  arr_free(g->hash, g->cap, sizeof(uint64_t));
  table_free(g->slots, g->nslots * sizeof(gslot));
  arr_free(g->st, g->cap * (size_t)g->na, st_size(g));
  if (g->cnt[0] != NULL && g->cnt[0] != (int64_t *)1) {
    free(g->cnt[0]);
    free(g->cnt[1]);
  }
  sql__sbank_free(g->bank);
  if (g->accounted)
    sql__qctx_mem(g->q, -(int64_t)g->accounted);
  free(g);
}

/* an array of groups grown from old to n elements of size es. A large one
   lives in its own mapping and grows by mremap: its pages move, they are
   not copied (a realloc copies each doubling: a twentieth of a
   high-cardinality GROUP BY), and its new pages are faulted in at once
   (see table_zalloc). arr_free frees it by the same size rule. */
#define ARR_POPULATE_MIN (16u << 10)

static void *grow_arr(void *p, size_t old, size_t n, size_t es)
{
  size_t ob = old * es, nb = n * es;
  if (nb < TABLE_MAP_MIN) {
    char *q = xrealloc(p, nb);
    if (nb - ob >= ARR_POPULATE_MIN) {
      /* the new part's whole pages at once too (a partition block's
         arrays are tens of KB, thousands of them in a high-cardinality
         GROUP BY) */
      uintptr_t a = ((uintptr_t)q + ob + 4095) & ~(uintptr_t)4095;
      uintptr_t z = ((uintptr_t)q + nb) & ~(uintptr_t)4095;
      if (z > a)
        madvise((void *)a, z - a, MADV_POPULATE_WRITE);
    }
    return q;
  }
  char *q;
  if (ob >= TABLE_MAP_MIN) {
    q = mremap(p, ob, nb, MREMAP_MAYMOVE);
    if (q == MAP_FAILED)
      mem_out_of_memory();
  } else {
    q = mmap(NULL, nb, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
      mem_out_of_memory();
    if (ob > 0)
      memcpy(q, p, ob);
    free(p);
  }
  uintptr_t a = ((uintptr_t)q + ob + 4095) & ~(uintptr_t)4095;
  uintptr_t z = ((uintptr_t)q + nb) & ~(uintptr_t)4095;
  if (z > a)
    madvise((void *)a, z - a, MADV_POPULATE_WRITE);
  return q;
}

/* room for nc groups in the arrays (nc > cap) */
static void gt_grow_to(gtable *g, size_t nc)
{
  for (int k = 0; k < g->nk; k++) {
    if (g->kphys[k] == PHYS_STR) {
      g->ks[k] = grow_arr(g->ks[k], g->cap, nc, sizeof(str_ref));
    } else {
      g->kv[k] = grow_arr(g->kv[k], g->cap, nc, sizeof(int64_t));
    }
    g->kn[k] = grow_arr(g->kn[k], g->cap, nc, 1);
  }
  g->hash = grow_arr(g->hash, g->cap, nc, sizeof(uint64_t));
  if (g->na > 0) {
    g->st = grow_arr(g->st, g->cap * (size_t)g->na, nc * (size_t)g->na, st_size(g));
  }
  if (g->cnt[0] != NULL) {
    if (g->cnt[0] == (int64_t *)1) {
      g->cnt[0] = NULL;
      g->cnt[1] = NULL;
    }
    g->cnt[0] = xrealloc(g->cnt[0], sizeof(int64_t) * nc);
    g->cnt[1] = xrealloc(g->cnt[1], sizeof(int64_t) * nc);
  }
  size_t per = (size_t)g->nk * 9 + 8 + sizeof(astate) * (size_t)g->na + 16;
  gt_account(g, (nc - g->cap) * per);
  g->cap = nc;
}

static void gt_grow_groups(gtable *g)
{
  gt_grow_to(g, g->cap ? g->cap * 2 : 256);
}

/* the slot array rebuilt with ns slots (a power of two, > 2 n). In group
 * order: hash[] and the keys are read in sequence, the slots written at
 * random, each prefetched PF_DIST groups ahead (without, every group's
 * probe is a cache miss in a row: a fifth of a high-cardinality
 * aggregation) */
static void gt_resize(gtable *g, size_t ns)
{
  gslot *sl = table_zalloc(ns * sizeof(gslot));
  size_t mask = ns - 1;
  for (size_t i = 0; i < g->n; i++) {
    if (i + PF_DIST < g->n)
      __builtin_prefetch(&sl[g->hash[i + PF_DIST] & mask], 1);
    if (i == g->null_gid)
      continue;
    size_t j = g->hash[i] & mask;
    while (sl[j].tg != 0)
      j = (j + 1) & mask;
    sl[j].tg = (g->hash[i] >> 32 << 32) | ((uint64_t)i + 1);
    if (g->inline_key)
      sl[j].key = g->kv[0][i];
  }
  if (ns > g->nslots)
    gt_account(g, (ns - g->nslots) * sizeof(gslot));
  table_free(g->slots, g->nslots * sizeof(gslot));
  g->slots = sl;
  g->nslots = ns;
}

/* the table is half full: twice the slots */
static void gt_rehash(gtable *g)
{
  gt_resize(g, g->nslots * 2);
}

/* room for n groups in all, without a rehash on the way (merges) */
static void gt_reserve(gtable *g, size_t n)
{
  size_t ns = g->nslots;
  while (n * 2 > ns)
    ns *= 2;
  if (ns > g->nslots)
    gt_resize(g, ns);
}

static bool key_eq(const gtable *g, size_t gid, const vec *keys, int r)
{
  for (int k = 0; k < g->nk; k++) {
    const vec *v = &keys[k];
    int i = v->is_const ? 0 : r;
    bool vn = v->nulls != NULL && v->nulls[i];
    if (vn != (g->kn[k][gid] != 0))
      return false;
    if (vn)
      continue;
    if (g->kphys[k] == PHYS_STR) {
      str_ref a = g->ks[k][gid];
      str_ref b = v->s[i];
      if (a.len != b.len || (a.len && memcmp(a.ptr, b.ptr, a.len) != 0))
        return false;
    } else if (g->kphys[k] == PHYS_F64) {
      double a, b = v->f[i];
      memcpy(&a, &g->kv[k][gid], 8);
      if (!(a == b || (isnan(a) && isnan(b))))
        return false;
    } else if (g->kv[k][gid] != v->i[i]) {
      return false;
    }
  }
  return true;
}

static void states_init(gtable *g, size_t gid)
{
  if (g->na > 0)
    memset(&g->st[gid * (size_t)g->na], 0, sizeof(astate) * (size_t)g->na);
  if (g->cnt[0] != NULL) {
    g->cnt[0][gid] = 0;
    g->cnt[1][gid] = 0;
  }
}

/* row r of keys[] as the keys of group d of table t (strings copied into
 * the bank of table bank) */
static void keys_put(gtable *t, size_t d, gtable *bank, const vec *keys, int r)
{
  for (int k = 0; k < t->nk; k++) {
    const vec *v = &keys[k];
    int i = v->is_const ? 0 : r;
    bool vn = v->nulls != NULL && v->nulls[i];
    t->kn[k][d] = vn;
    if (t->kphys[k] == PHYS_STR) {
      str_ref s = vn ? (str_ref){"", 0} : v->s[i];
      if (s.len)
        s.ptr = bank_copy(bank, s);
      t->ks[k][d] = s;
    } else {
      t->kv[k][d] = vn ? 0 : v->i[i];
    }
  }
}

/* a new group for row r of keys, its slot j (none for the NULL key of an
 * inline_key table) */
static uint32_t gt_insert(gtable *g, const vec *keys, int r, uint64_t h, size_t j, bool slot)
{
  if (g->n == g->cap)
    gt_grow_groups(g);
  size_t gid = g->n++;
  keys_put(g, gid, g, keys, r);
  g->hash[gid] = h;
  states_init(g, gid);
  if (!slot) {
    g->null_gid = (uint32_t)gid;
    return (uint32_t)gid;
  }
  g->slots[j].tg = (h >> 32 << 32) | ((uint64_t)gid + 1);
  g->slots[j].key = g->inline_key ? g->kv[0][gid] : 0;
  if (g->n * 2 > g->nslots)
    gt_rehash(g);
  return (uint32_t)gid;
}

/* the group of a non-NULL key kv of an inline_key table with hash h:
 * one probe sequence over the slots, keys compared on tag match only */
static inline uint32_t gt_find_i64(gtable *g, const vec *keys, int r, int64_t kv, uint64_t h,
                                   bool insert)
{
  size_t mask = g->nslots - 1;
  size_t j = h & mask;
  uint64_t tag = h >> 32 << 32;
  const gslot *sl = g->slots;
  for (;;) {
    uint64_t s = sl[j].tg;
    if (s == 0)
      break;
    if ((s & 0xFFFFFFFF00000000ULL) == tag && sl[j].key == kv)
      return (uint32_t)s - 1;
    j = (j + 1) & mask;
  }
  if (!insert)
    return UINT32_MAX;
  return gt_insert(g, keys, r, h, j, true);
}

/* the group of row r (inserting it); keys[] are the key vectors */
static uint32_t gt_find(gtable *g, const vec *keys, int r, uint64_t h, bool insert)
{
  if (g->inline_key) {
    if (vec_is_null(&keys[0], r)) {
      if (g->null_gid != UINT32_MAX || !insert)
        return g->null_gid;
      return gt_insert(g, keys, r, h, 0, false);
    }
    return gt_find_i64(g, keys, r, keys[0].i[keys[0].is_const ? 0 : r], h, insert);
  }
  size_t j = h & (g->nslots - 1);
  uint64_t tag = h >> 32 << 32;
  for (;;) {
    uint64_t s = g->slots[j].tg;
    if (s == 0)
      break;
    if ((s & 0xFFFFFFFF00000000ULL) == tag && key_eq(g, (uint32_t)s - 1, keys, r))
      return (uint32_t)s - 1;
    j = (j + 1) & (g->nslots - 1);
  }
  if (!insert)
    return UINT32_MAX;
  return gt_insert(g, keys, r, h, j, true);
}

static uint64_t row_hash(const vec *keys, int nk, int r)
{
  uint64_t h = 0x2545F4914F6CDD1DULL;
  for (int k = 0; k < nk; k++)
    h = (h ^ sql__hash_value(keys[k].phys, &keys[k], r)) * 0x9E3779B97F4A7C15ULL;
  return h ^ (h >> 29);
}

/* ---- aggregate updates ---- */

static int agg_fail(qctx *q, const char *msg)
{
  err e;
  err_set(&e, ERR_INVALID, "%s", msg);
  return sql__qctx_fail(q, ERR_INVALID, &e);
}

static str_ref keep_str(gtable *g, str_ref s)
{
  if (s.len && g->bank != NULL)
    s.ptr = bank_copy(g, s);
  return s;
}

/* one value into a state */
static int agg_add(gtable *g, const aggcall *a, astate *s, value v, value k2)
{
  int phys = a->arg != NULL ? sql__phys(a->arg->type.t) : PHYS_I64;
  if (a->distinct) {
    if (v.null)
      return 0;
    if (s->set == NULL)
      s->set = sql__valset_new(phys);
    sql__valset_add(s->set, v);
    return 0;
  }
  switch (a->fn) {
  case AGG_COUNT_STAR:
    s->n++;
    return 0;
  case AGG_COUNT:
    s->n += !v.null;
    return 0;
  case AGG_COUNT_IF:
    s->n += !v.null && v.i != 0;
    return 0;
  case AGG_APPROX_DISTINCT:
    if (!v.null) {
      if (s->set == NULL)
        s->set = sql__valset_new(phys);
      sql__valset_add(s->set, v);
    }
    return 0;
  default:
    break;
  }
  if (v.null)
    return 0;
  switch (a->fn) {
  case AGG_SUM:
  case AGG_AVG:
    if (phys == PHYS_F64) {
      s->v.f += v.f;
    } else if (a->fn == AGG_AVG && a->type.t == SQL_DOUBLE) {
      s->v.f += (double)v.i;
    } else if (__builtin_add_overflow(s->v.i, v.i, &s->v.i)) {
      return agg_fail(g->q, "numeric overflow in sum");
    }
    s->n++;
    return 0;
  case AGG_MIN:
  case AGG_MAX: {
    if (s->n == 0) {
      s->v.i = v.i;
      if (phys == PHYS_STR)
        s->v.s = keep_str(g, v.s);
      s->n = 1;
      return 0;
    }
    value cur;
    cur.null = false;
    if (phys == PHYS_STR)
      cur.s = s->v.s;
    else
      cur.i = s->v.i;
    int c = sql__value_cmp(phys, v, cur);
    if ((a->fn == AGG_MIN && c < 0) || (a->fn == AGG_MAX && c > 0)) {
      if (phys == PHYS_STR)
        s->v.s = keep_str(g, v.s);
      else
        s->v.i = v.i;
    }
    return 0;
  }
  case AGG_MAX_BY:
  case AGG_MIN_BY: {
    if (k2.null)
      return 0;
    int kphys = sql__phys(a->arg2->type.t);
    value cur;
    cur.null = false;
    if (kphys == PHYS_STR)
      cur.s = s->k.s;
    else
      cur.i = s->k.i;
    int c = s->n == 0 ? 1 : sql__value_cmp(kphys, k2, cur);
    if (a->fn == AGG_MIN_BY)
      c = -c;
    if (s->n == 0 || c > 0) {
      if (kphys == PHYS_STR)
        s->k.s = keep_str(g, k2.s);
      else
        s->k.i = k2.i;
      if (phys == PHYS_STR)
        s->v.s = keep_str(g, v.s);
      else
        s->v.i = v.i;
      s->n = 1;
    }
    return 0;
  }
  case AGG_STDDEV_SAMP:
  case AGG_STDDEV_POP:
  case AGG_VAR_SAMP:
  case AGG_VAR_POP: {
    s->n++;
    double d = v.f - s->mean;
    s->mean += d / (double)s->n;
    s->m2 += d * (v.f - s->mean);
    return 0;
  }
  case AGG_BOOL_AND:
    s->v.i = s->n == 0 ? v.i : (s->v.i && v.i);
    s->n = 1;
    return 0;
  case AGG_BOOL_OR:
    s->v.i = s->n == 0 ? v.i : (s->v.i || v.i);
    s->n = 1;
    return 0;
  case AGG_ARBITRARY:
    if (s->n == 0) {
      if (phys == PHYS_STR)
        s->v.s = keep_str(g, v.s);
      else
        s->v.i = v.i;
      s->n = 1;
    }
    return 0;
  default:
    return 0;
  }
}

static void set_add_each(void *arg, value v)
{
  sql__valset_add(arg, v);
}

/* merges state b (of table gb) into a */
static int agg_merge(gtable *g, const aggcall *ac, astate *a, const astate *b)
{
  int phys = ac->arg != NULL ? sql__phys(ac->arg->type.t) : PHYS_I64;
  if (ac->distinct || ac->fn == AGG_APPROX_DISTINCT) {
    if (b->set == NULL)
      return 0;
    if (a->set == NULL)
      a->set = sql__valset_new(phys);
    sql__valset_each(b->set, set_add_each, a->set);
    return 0;
  }
  switch (ac->fn) {
  case AGG_COUNT_STAR:
  case AGG_COUNT:
  case AGG_COUNT_IF:
    a->n += b->n;
    return 0;
  case AGG_SUM:
  case AGG_AVG:
    if (phys == PHYS_F64 || (ac->fn == AGG_AVG && ac->type.t == SQL_DOUBLE))
      a->v.f += b->v.f;
    else if (__builtin_add_overflow(a->v.i, b->v.i, &a->v.i))
      return agg_fail(g->q, "numeric overflow in sum");
    a->n += b->n;
    return 0;
  case AGG_STDDEV_SAMP:
  case AGG_STDDEV_POP:
  case AGG_VAR_SAMP:
  case AGG_VAR_POP: {
    if (b->n == 0)
      return 0;
    if (a->n == 0) {
      a->n = b->n;
      a->mean = b->mean;
      a->m2 = b->m2;
      return 0;
    }
    double n = (double)(a->n + b->n);
    double d = b->mean - a->mean;
    a->m2 += b->m2 + d * d * (double)a->n * (double)b->n / n;
    a->mean += d * (double)b->n / n;
    a->n += b->n;
    return 0;
  }
  default:
    break;
  }
  if (b->n == 0)
    return 0;
  value bv = {.null = false};
  bv.i = b->v.i;
  if (phys == PHYS_STR)
    bv.s = b->v.s;
  value bk = {.null = false};
  bk.i = b->k.i;
  if (ac->arg2 != NULL && sql__phys(ac->arg2->type.t) == PHYS_STR)
    bk.s = b->k.s;
  if (ac->fn == AGG_BOOL_AND || ac->fn == AGG_BOOL_OR || ac->fn == AGG_ARBITRARY ||
      ac->fn == AGG_MIN || ac->fn == AGG_MAX || ac->fn == AGG_MAX_BY || ac->fn == AGG_MIN_BY)
    return agg_add(g, ac, a, bv, bk);
  return 0;
}

static double avg_of(const aggcall *a, const astate *s)
{
  (void)a;
  return s->v.f / (double)s->n;
}

typedef struct collect_ctx2 {
  value *v;
  size_t n;
} collect_ctx2;

static void collect_fn(void *arg, value v)
{
  collect_ctx2 *c = arg;
  c->v[c->n++] = v;
}

/* the final value of a state */
static int agg_final(gtable *g, const aggcall *a, const astate *s, value *out)
{
  out->null = false;
  out->i = 0;
  int phys = a->arg != NULL ? sql__phys(a->arg->type.t) : PHYS_I64;
  if (a->fn == AGG_APPROX_DISTINCT || (a->distinct && a->fn == AGG_COUNT)) {
    out->i = s->set != NULL ? (int64_t)sql__valset_size(s->set) : 0;
    return 0;
  }
  if (a->distinct) {
    if (s->set == NULL || sql__valset_size(s->set) == 0) {
      out->null = true;
      return 0;
    }
    /* fold the distinct values through a fresh state */
    astate t;
    memset(&t, 0, sizeof t);
    aggcall plain = *a;
    plain.distinct = false;
    size_t cap = sql__valset_size(s->set);
    value *vals = xmalloc(sizeof(value) * (cap + 1));
    collect_ctx2 cc = {vals, 0};
    sql__valset_each(s->set, collect_fn, &cc);
    int rc = 0;
    value none = {.null = true};
    for (size_t i = 0; i < cc.n && rc == 0; i++)
      rc = agg_add(g, &plain, &t, vals[i], none);
    free(vals);
    if (rc < 0)
      return rc;
    return agg_final(g, &plain, &t, out);
  }
  switch (a->fn) {
  case AGG_COUNT_STAR:
  case AGG_COUNT:
  case AGG_COUNT_IF:
    out->i = s->n;
    return 0;
  case AGG_SUM:
    if (s->n == 0) {
      out->null = true;
      return 0;
    }
    out->i = s->v.i;
    if (phys == PHYS_F64)
      out->f = s->v.f;
    return 0;
  case AGG_AVG:
    if (s->n == 0) {
      out->null = true;
      return 0;
    }
    if (a->type.t == SQL_DOUBLE) {
      out->f = avg_of(a, s);
    } else {
      /* decimal or interval: integer average, rounded */
      int64_t q = s->v.i / s->n;
      int64_t rem = s->v.i % s->n;
      if ((rem < 0 ? -rem : rem) * 2 >= s->n)
        q += s->v.i < 0 ? -1 : 1;
      out->i = q;
    }
    return 0;
  case AGG_STDDEV_SAMP:
  case AGG_VAR_SAMP:
    if (s->n < 2) {
      out->null = true;
      return 0;
    }
    out->f = s->m2 / (double)(s->n - 1);
    if (a->fn == AGG_STDDEV_SAMP)
      out->f = sqrt(out->f);
    return 0;
  case AGG_STDDEV_POP:
  case AGG_VAR_POP:
    if (s->n < 1) {
      out->null = true;
      return 0;
    }
    out->f = s->m2 / (double)s->n;
    if (a->fn == AGG_STDDEV_POP)
      out->f = sqrt(out->f);
    return 0;
  default:
    if (s->n == 0) {
      out->null = true;
      return 0;
    }
    if (sql__phys(a->type.t) == PHYS_STR)
      out->s = s->v.s;
    else
      out->i = s->v.i;
    return 0;
  }
}

/* exported for windows (sort.c) */
int sql__agg_state_size(void)
{
  return (int)sizeof(astate);
}

int sql__agg_state_add(qctx *q, const aggcall *a, void *state, value v)
{
  gtable g = {.q = q, .bank = NULL}; /* window input strings are stable */
  value none = {.null = true};
  return agg_add(&g, a, state, v, none);
}

int sql__agg_state_final(qctx *q, const aggcall *a, const void *state, value *out)
{
  gtable g = {.q = q};
  return agg_final(&g, a, state, out);
}

void sql__agg_state_clear(const aggcall *a, void *state)
{
  astate *s = state;
  if (has_set(a))
    sql__valset_free(s->set);
  memset(s, 0, sizeof *s);
}

/* ---- the sink ---- */

/* A grouped aggregation runs in two phases, as a partitioned aggregation:
 *   1. each thread aggregates its rows into one table of its own, bounded
 *      (P1_GROUPS groups: its slots stay in the cache, and its memory is
 *      reused, never grown past that); when the next batch might not fit,
 *      the table's groups are appended to NPART lists by the top bits of
 *      their hash (sequential writes) and the table is emptied;
 *   2. the partitions are then finished one by one, in parallel: each
 *      worker builds one table, sized once from the lists' lengths, from
 *      the lists of every thread, outputs it, and empties it for its next
 *      partition.
 * No table ever grows by rehashing its groups into fresh memory: on this
 * kind of machine the first touch of each fresh page costs more than the
 * probe that touches it. */
#define NPART 64         /* partitions of a grouped aggregation */
#define NPART_SHIFT 58   /* the partition: the hash's top 6 bits */
#define P1_GROUPS 16384  /* phase 1: groups per thread table at most */
/* Direct mode: when a thread's table fills with nearly as many groups as
 * it took rows (more than DIRECT_RATIO of them: pre-aggregation barely
 * reduces, as in a GROUP BY of nearly unique keys), the thread stops
 * aggregating locally: each row's states are computed in a batch-sized
 * scratch array and the row goes straight into its partition's list as a
 * group of its own (phase 2 merges them as it merges any flushed groups),
 * so no table is probed, filled, copied out and cleared. Not with a
 * DISTINCT or approx_distinct aggregate (its states own sets). */
#define DIRECT_RATIO 0.75

typedef struct aggthread aggthread;

/* a partition's flushed groups: blocks of LIST_BLOCK groups (tables
 * without slots), filled in turn; only the first block grows (from
 * LIST_FIRST, doubling), so a group is copied at most a few times, and
 * only while its partition holds fewer than LIST_BLOCK groups */
#define LIST_BLOCK 4096
#define LIST_FIRST 32    /* a partition's first block, at first */
typedef struct plist {
  gtable **blk;
  int n, cap;
  size_t groups;
} plist;

typedef struct aggrun {
  qctx *q;
  plan *p;
  aggthread **th;     /* per thread (NULL: did not run) */
  uint8_t *kphys;
} aggrun;

struct aggthread {
  aggrun *run;
  gtable *g;          /* phase 1 (or the one group of a global aggregation) */
  plist *lists;       /* grouped: NPART lists of flushed groups */
  ectx x;
  uint32_t gid[COL_BATCH];
  astate *base[COL_BATCH];   /* per row: its group's first state */
#define HMEMO 64
  const char *memo_ptr[HMEMO];   /* string key hashes by address (one batch) */
  uint32_t memo_len[HMEMO];
  uint64_t memo_h[HMEMO];
  /* grouping by dictionary codes (agg_by_codes) */
#define CMAP_KEYS 4
#define CMAP_MAX 16384
  int cnk;                       /* keys the map is for (0: empty) */
  uint64_t cgen[CMAP_KEYS];      /* their dictionaries */
  uint32_t cmap[CMAP_MAX];       /* group id + 1 by code tuple, 0 unknown */
  size_t rows;                   /* rows into g since its last flush */
  bool direct;                   /* direct mode (see DIRECT_RATIO) */
  astate *scr;                   /* direct mode: COL_BATCH rows' states */
  uint16_t ord[COL_BATCH];       /* direct mode: rows by partition */
};

static void *agg_init(void *arg, int thread)
{
  aggrun *r = arg;
  aggthread *t = xcalloc(1, sizeof *t);
  t->run = r;
  t->g = gt_new(r->q, r->p->ngroups, r->kphys, r->p->naggs, r->p->aggs, false);
  if (r->p->ngroups > 0) {
    t->lists = xcalloc(NPART, sizeof(plist));
  }
  sql__ectx_init(&t->x, r->q);
  r->th[thread] = t;
  return t;
}

/* empties table g for reuse (its slots zeroed in place, its arrays kept);
 * with free_sets its states' sets are freed and its strings dropped, else
 * they have moved to the lists and its strings stay for them */
static void gt_clear(gtable *g, bool free_sets)
{
  if (free_sets) {
    if (g->st != NULL)
      for (int a = 0; a < g->na; a++)
        if (has_set(&g->aggs[a]))
          for (size_t i = 0; i < g->n; i++)
            sql__valset_free(g->st[i * (size_t)g->na + (size_t)a].set);
    size_t sb = sql__sbank_bytes(g->bank);
    if (sb > 0) {
      sql__sbank_free(g->bank);
      g->bank = sql__sbank_new();
      g->accounted -= sb;
      sql__qctx_mem(g->q, -(int64_t)sb);
    }
  }
  g->n = 0;
  g->null_gid = UINT32_MAX;
  memset(g->slots, 0, g->nslots * sizeof(gslot));
}

/* the block of list pl that the next group of table g goes to (room for
 * one more in it) */
static gtable *list_room(plist *pl, const gtable *g)
{
  gtable *l = pl->n > 0 ? pl->blk[pl->n - 1] : NULL;
  if (l != NULL && l->n == l->cap && l->cap < LIST_BLOCK)
    gt_grow_to(l, l->cap * 2 < LIST_BLOCK ? l->cap * 2 : LIST_BLOCK);
  if (l == NULL || l->n == l->cap) {
    if (pl->n == pl->cap) {
      pl->cap = pl->cap ? pl->cap * 2 : 8;
      pl->blk = xrealloc(pl->blk, sizeof(gtable *) * (size_t)pl->cap);
    }
    l = gt_new(g->q, g->nk, g->kphys, g->na, g->aggs, false);
    l->slim = g->na > 0 && slim_aggs(g->na, g->aggs);
    /* a partition's first block starts small and doubles: a GROUP BY of
       a few groups does not fault in NPART blocks of LIST_BLOCK */
    gt_grow_to(l, pl->n == 0 ? LIST_FIRST : LIST_BLOCK);
    pl->blk[pl->n++] = l;
  }
  pl->groups++;
  return l;
}

/* copies the states of one group, st (na of them, whole), to group d of
 * block l (slim or not) */
static void block_states(gtable *l, size_t d, const astate *st)
{
  if (l->slim) {
    char *dst = (char *)l->st + d * (size_t)l->na * SLIM;
    for (int a = 0; a < l->na; a++)
      memcpy(dst + (size_t)a * SLIM, &st[a], SLIM);
  } else if (l->na > 0) {
    memcpy(&l->st[d * (size_t)l->na], st, sizeof(astate) * (size_t)l->na);
  }
}

/* appends group gid of table g to list pl: keys (strings stay in g's
 * bank), hash and states (their sets now the list's) */
static void list_append(plist *pl, const gtable *g, size_t gid)
{
  gtable *l = list_room(pl, g);
  size_t d = l->n++;
  for (int k = 0; k < g->nk; k++) {
    l->kn[k][d] = g->kn[k][gid];
    if (g->kphys[k] == PHYS_STR)
      l->ks[k][d] = g->ks[k][gid];
    else
      l->kv[k][d] = g->kv[k][gid];
  }
  l->hash[d] = g->hash[gid];
  if (g->na > 0)
    block_states(l, d, &g->st[gid * (size_t)g->na]);
}

/* Direct mode: the rows of batch b, each a group of its own, straight
 * into the partition lists (keys from keys[], hashes hs[], states from
 * t->scr, strings copied into t->g's bank, which outlives the lists) */
static void direct_append(aggthread *t, const batch *b, const vec *keys, const uint64_t *hs)
{
  gtable *g = t->g;
  int na = g->na;
  /* the rows in partition order (a counting sort): each partition's
     rows are written one after another, to the same few cache lines */
  uint16_t start[NPART + 1] = {0};
  for (int j = 0; j < b->nsel; j++)
    start[(hs[ROW(b, j)] >> NPART_SHIFT) + 1]++;
  for (int i = 0; i < NPART; i++)
    start[i + 1] = (uint16_t)(start[i + 1] + start[i]);
  uint16_t *ord = t->ord;
  for (int j = 0; j < b->nsel; j++) {
    int r = ROW(b, j);
    ord[start[hs[r] >> NPART_SHIFT]++] = (uint16_t)r;
  }
  for (int j = 0; j < b->nsel; j++) {
    int r = ord[j];
    gtable *l = list_room(&t->lists[hs[r] >> NPART_SHIFT], g);
    size_t d = l->n++;
    keys_put(l, d, g, keys, r);
    l->hash[d] = hs[r];
    if (na > 0)
      block_states(l, d, &t->scr[(size_t)r * (size_t)na]);
  }
}

/* phase 1's table into the partition lists, and emptied */
static void agg_flush(aggthread *t)
{
  gtable *g = t->g;
  t->rows = 0;
  for (size_t gid = 0; gid < g->n; gid++)
    list_append(&t->lists[g->hash[gid] >> NPART_SHIFT], g, gid);
  gt_clear(g, false);
}

/* Grouping by dictionary codes (a Parquet scan's, see bcodes in exec.h):
 * when every key is a column of b that still has its codes and the
 * dictionaries' sizes (each with NULL) multiply to at most CMAP_MAX, a
 * row's group is looked up by its tuple of codes in t->cmap, filled by the
 * first row of each tuple through the table as usual (same hash, same
 * group), so the other rows neither hash nor probe. The map is emptied
 * when a dictionary changes (a new row group) and when the table is
 * flushed (its group ids change). False: not applicable, nothing done. */
static bool agg_by_codes(aggthread *t, const plan *p, const batch *b, const vec *keys)
{
  int nk = p->ngroups;
  if (b->codes == NULL || nk > CMAP_KEYS)
    return false;
  const uint32_t *cs[CMAP_KEYS];
  size_t mul[CMAP_KEYS];
  uint64_t gen[CMAP_KEYS];
  size_t size = 1;
  bool same = t->cnk == nk;
  for (int k = 0; k < nk; k++) {
    const bexpr *x = p->groups[k];
    if (x->kind != BX_COL)
      return false;
    const bcodes *bc = batch_codes(b, x->colno);
    if (bc == NULL || keys[k].p != bc->vals || keys[k].nulls != bc->nulls || keys[k].is_const)
      return false;
    mul[k] = size;
    size *= (size_t)bc->ncodes + 1;
    if (size > CMAP_MAX)
      return false;
    cs[k] = bc->codes;
    gen[k] = bc->gen;
    same = same && t->cgen[k] == bc->gen;
  }
  if (!same) {
    memset(t->cmap, 0, size * sizeof(uint32_t));
    t->cnk = nk;
    memcpy(t->cgen, gen, sizeof(uint64_t) * (size_t)nk);
  }
  gtable *g = t->g;
  for (int j = 0; j < b->nsel; j++) {
    int r = ROW(b, j);
    size_t idx = 0;
    for (int k = 0; k < nk; k++)
      idx += cs[k][r] * mul[k];
    uint32_t gid = t->cmap[idx];
    if (gid == 0) {
      gid = gt_find(g, keys, r, row_hash(keys, nk, r), true) + 1;
      t->cmap[idx] = gid;
    }
    t->gid[r] = gid - 1;
  }
  return true;
}

static int agg_consume(void *state, batch *b)
{
  aggthread *t = state;
  plan *p = t->run->p;
  int na = p->naggs;
  sql__ectx_reset(&t->x);
  int rc;
  vec *keys = sql__ectx_alloc(&t->x, sizeof(vec) * (size_t)(p->ngroups > 0 ? p->ngroups : 1));
  for (int k = 0; k < p->ngroups; k++)
    if ((rc = sql__expr_eval(&t->x, p->groups[k], b, &keys[k])) < 0)
      return rc;
  gtable *g = t->g;
  const uint64_t *dhs = NULL;   /* direct mode: the batch's hashes */
  const vec *dkeys = NULL;
  if (p->ngroups == 0) {
    if (g->n == 0) {
      gt_grow_groups(g);
      g->n = 1;
      g->hash[0] = 0;
      states_init(g, 0);
    }
  } else {
    /* room for every row of the batch as a new group (the groups of rows
       already probed must stay where they are until the states are set) */
    if (!t->direct && g->n + (size_t)b->nsel > P1_GROUPS) {
      bool sets = false;
      for (int a = 0; a < na; a++)
        sets = sets || has_set(&p->aggs[a]);
      if ((double)g->n > DIRECT_RATIO * (double)t->rows && !sets) {
        t->direct = true;
        if (na > 0)
          t->scr = xmalloc(sizeof(astate) * COL_BATCH * (size_t)na);
      }
      agg_flush(t);
      t->cnk = 0;
    }
    t->rows += (size_t)b->nsel;
    if (!t->direct && agg_by_codes(t, p, b, keys))
      goto grouped;
    uint64_t *hs = sql__ectx_alloc(&t->x, sizeof(uint64_t) * (size_t)(b->n > 0 ? b->n : 1));
    /* row_hash, column by column; a string key's hash is remembered by
       its address (a dictionary-encoded column's rows share the entry's
       bytes, so most rows hash nothing) */
    for (int j = 0; j < b->nsel; j++)
      hs[ROW(b, j)] = 0x2545F4914F6CDD1DULL;
    for (int k = 0; k < p->ngroups; k++) {
      const vec *v = &keys[k];
      if (v->phys == PHYS_STR && !v->is_const) {
        for (int j = 0; j < b->nsel; j++) {
          int r = ROW(b, j);
          uint64_t hk;
          if (v->nulls != NULL && v->nulls[r]) {
            hk = sql__hash_value(PHYS_STR, v, r);
          } else {
            str_ref sv = v->s[r];
            unsigned slot = (unsigned)(((uintptr_t)sv.ptr >> 3) ^ sv.len) & (HMEMO - 1);
            if (t->memo_ptr[slot] == sv.ptr && t->memo_len[slot] == sv.len) {
              hk = t->memo_h[slot];
            } else {
              hk = sql__hash_bytes(sv.ptr, sv.len);
              t->memo_ptr[slot] = sv.ptr;
              t->memo_len[slot] = sv.len;
              t->memo_h[slot] = hk;
            }
          }
          hs[r] = (hs[r] ^ hk) * 0x9E3779B97F4A7C15ULL;
        }
      } else {
        for (int j = 0; j < b->nsel; j++) {
          int r = ROW(b, j);
          hs[r] = (hs[r] ^ sql__hash_value(v->phys, v, r)) * 0x9E3779B97F4A7C15ULL;
        }
      }
    }
    for (int j = 0; j < b->nsel; j++) {
      int r = ROW(b, j);
      hs[r] ^= hs[r] >> 29;
    }
    /* the memo holds addresses of this batch only */
    memset(t->memo_ptr, 0, sizeof t->memo_ptr);
    if (t->direct) {
      dhs = hs;
      dkeys = keys;
      if (na > 0)
        for (int j = 0; j < b->nsel; j++) {
          int r = ROW(b, j);
          t->base[r] = &t->scr[(size_t)r * (size_t)na];
          memset(t->base[r], 0, sizeof(astate) * (size_t)na);
        }
      goto grouped;
    }
    /* probe with the slots of rows PF_DIST ahead already on their way,
       and start loading each group's states as soon as it is known */
    const vec *k0 = &keys[0];
    bool inl = g->inline_key && !k0->is_const;
    for (int j = 0; j < b->nsel; j++) {
      if (j + PF_DIST < b->nsel) {
        int ra = ROW(b, j + PF_DIST);
        __builtin_prefetch(&g->slots[hs[ra] & (g->nslots - 1)]);
      }
      int r = ROW(b, j);
      uint32_t gid;
      if (inl && (k0->nulls == NULL || !k0->nulls[r]))
        gid = gt_find_i64(g, keys, r, k0->i[r], hs[r], true);
      else
        gid = gt_find(g, keys, r, hs[r], true);
      t->gid[r] = gid;
    }
  }
grouped:;
  /* without GROUP BY every row's states are group 0's: addressed directly
     (no per-row gid or base), a count(*) adds the batch's rows at once */
  bool one = p->ngroups == 0;
  astate *s0 = one ? g->st : NULL;
#define ST(r) (one ? &s0[a] : &t->base[(r)][a])
  /* the tables are final for this batch: states can be addressed now */
  if (na > 0 && !one && dhs == NULL)
    for (int j = 0; j < b->nsel; j++) {
      int r = ROW(b, j);
      t->base[r] = &g->st[(size_t)t->gid[r] * (size_t)na];
    }
  /* states of rows PF_DIST ahead on their way (tables too large for the
     cache miss on every state otherwise) */
#define PF_STATE(j)                                                   \
  do {                                                                \
    if (!one && (j) + PF_DIST < fb.nsel)                              \
      __builtin_prefetch(&t->base[ROW(&fb, (j) + PF_DIST)][a], 1);   \
  } while (0)
  for (int a = 0; a < na; a++) {
    const aggcall *ac = &p->aggs[a];
    batch fb = *b;
    if (ac->filter != NULL && (rc = sql__expr_filter(&t->x, ac->filter, &fb)) < 0)
      return rc;
    if (ac->fn == AGG_COUNT_STAR && !ac->distinct) {
      if (one) {
        s0[a].n += fb.nsel;
        continue;
      }
      for (int j = 0; j < fb.nsel; j++) {
        PF_STATE(j);
        t->base[ROW(&fb, j)][a].n++;
      }
      continue;
    }
    vec v, v2;
    if ((rc = sql__expr_eval(&t->x, ac->arg, &fb, &v)) < 0)
      return rc;
    if (ac->arg2 != NULL && (rc = sql__expr_eval(&t->x, ac->arg2, &fb, &v2)) < 0)
      return rc;
    /* fast paths for the common sums and counts */
    if (!ac->distinct && v.nulls == NULL && !v.is_const && ac->fn == AGG_SUM &&
        v.phys == PHYS_I64) {
      for (int j = 0; j < fb.nsel; j++) {
        PF_STATE(j);
        int r = ROW(&fb, j);
        astate *st = ST(r);
        if (__builtin_add_overflow(st->v.i, v.i[r], &st->v.i))
          return agg_fail(g->q, "numeric overflow in sum");
        st->n++;
      }
      continue;
    }
    if (!ac->distinct && v.nulls == NULL && !v.is_const &&
        (ac->fn == AGG_SUM || (ac->fn == AGG_AVG && ac->type.t == SQL_DOUBLE)) &&
        v.phys == PHYS_F64) {
      for (int j = 0; j < fb.nsel; j++) {
        PF_STATE(j);
        int r = ROW(&fb, j);
        astate *st = ST(r);
        st->v.f += v.f[r];
        st->n++;
      }
      continue;
    }
    if (!ac->distinct && ac->fn == AGG_COUNT) {
      for (int j = 0; j < fb.nsel; j++) {
        PF_STATE(j);
        int r = ROW(&fb, j);
        ST(r)->n += !vec_is_null(&v, r);
      }
      continue;
    }
    value none = {.null = true};
    for (int j = 0; j < fb.nsel; j++) {
      PF_STATE(j);
      int r = ROW(&fb, j);
      value k2 = ac->arg2 != NULL ? vec_get(&v2, r) : none;
      if ((rc = agg_add(g, ac, ST(r), vec_get(&v, r), k2)) < 0)
        return rc;
    }
  }
#undef PF_STATE
#undef ST
  if (dhs != NULL)
    direct_append(t, b, dkeys, dhs);
  return sql__qctx_check(t->run->q);
}

static int agg_finish(void *state)
{
  aggthread *t = state;
  sql__ectx_release(&t->x);
  return 0; /* its tables stay for the merge (freed by sql__exec_agg) */
}

/* merges table b into a */
static int gt_merge(gtable *a, gtable *b)
{
  vec *keys = xcalloc((size_t)(a->nk > 0 ? a->nk : 1), sizeof(vec));
  int rc = 0;
  /* sized once for both: no rehash while merging, and the probes of groups
     PF_DIST ahead can be sent before they are needed */
  if (a->nk > 0) {
    gt_reserve(a, a->n + b->n);
    while (a->cap < a->n + b->n)
      gt_grow_groups(a);
  }
  for (size_t gid = 0; gid < b->n && rc == 0; gid++) {
    if (a->nk > 0 && gid + PF_DIST < b->n)
      __builtin_prefetch(&a->slots[b->hash[gid + PF_DIST] & (a->nslots - 1)]);
    for (int k = 0; k < a->nk; k++) {
      keys[k].phys = a->kphys[k];
      keys[k].is_const = 1;
      keys[k].nulls = &b->kn[k][gid];
      if (a->kphys[k] == PHYS_STR)
        keys[k].s = &b->ks[k][gid];
      else
        keys[k].i = &b->kv[k][gid];
    }
    uint32_t ag;
    if (a->nk == 0) {
      if (a->n == 0) {
        gt_grow_groups(a);
        a->n = 1;
        a->hash[0] = 0;
        states_init(a, 0);
      }
      ag = 0;
    } else {
      ag = gt_find(a, keys, 0, b->hash[gid], true);
    }
    for (int x = 0; x < a->na && rc == 0; x++) {
      const astate *bs;
      astate full;
      if (b->slim) {
        memset(&full, 0, sizeof full);
        memcpy(&full, (const char *)b->st + (gid * (size_t)b->na + (size_t)x) * SLIM, SLIM);
        bs = &full;
      } else {
        bs = &b->st[gid * (size_t)b->na + (size_t)x];
      }
      rc = agg_merge(a, &a->aggs[x], &a->st[(size_t)ag * (size_t)a->na + (size_t)x], bs);
    }
    if (a->cnt[0] != NULL) {
      a->cnt[0][ag] += b->cnt[0][gid];
      a->cnt[1][ag] += b->cnt[1][gid];
    }
  }
  free(keys);
  if (rc == 0)
    rc = sql__qctx_check(a->q);
  return rc;
}

static int gt_output(gtable *g, plan *p, rowset *out, bool setmode, int setop, bool all)
{
  int ncols = g->nk + g->na;
  vec *cols = xcalloc((size_t)(ncols > 0 ? ncols : 1), sizeof(vec));
  int64_t *vals = xcalloc((size_t)(ncols > 0 ? ncols : 1) * COL_BATCH, sizeof(str_ref));
  uint8_t *nulls = xcalloc((size_t)(ncols > 0 ? ncols : 1), COL_BATCH);
  for (int c = 0; c < ncols; c++) {
    cols[c].phys = (uint8_t)sql__phys(p->cols[c].type.t);
    cols[c].p = (char *)vals + (size_t)c * COL_BATCH * sizeof(str_ref);
    cols[c].nulls = nulls + (size_t)c * COL_BATCH;
  }
  int rc = 0;
  int n = 0;
  for (size_t gid = 0; gid < g->n && rc == 0; gid++) {
    int64_t times = 1;
    if (setmode) {
      int64_t l = g->cnt[0][gid], r = g->cnt[1][gid];
      if (setop == Q_UNION)
        times = all ? l + r : 1;
      else if (setop == Q_INTERSECT)
        times = l > 0 && r > 0 ? (all ? (l < r ? l : r) : 1) : 0;
      else
        times = l > 0 && r == 0 ? (all ? l : 1) : (all && l > r ? l - r : 0);
    }
    for (int64_t t = 0; t < times && rc == 0; t++) {
      for (int k = 0; k < g->nk; k++) {
        cols[k].nulls[n] = g->kn[k][gid];
        if (g->kphys[k] == PHYS_STR)
          cols[k].s[n] = g->ks[k][gid];
        else
          cols[k].i[n] = g->kv[k][gid];
      }
      for (int a = 0; a < g->na && rc == 0; a++) {
        value v;
        rc = agg_final(g, &g->aggs[a], &g->st[gid * (size_t)g->na + (size_t)a], &v);
        vec *c = &cols[g->nk + a];
        c->nulls[n] = v.null;
        if (c->phys == PHYS_STR)
          c->s[n] = v.null ? (str_ref){"", 0} : v.s;
        else
          c->i[n] = v.null ? 0 : v.i;
      }
      n++;
      if (n == COL_BATCH) {
        batch b = {.n = n, .nsel = n, .ncols = ncols, .cols = cols};
        rc = rc < 0 ? rc : sql__rowset_append(out, &b);
        n = 0;
      }
    }
  }
  if (n > 0 && rc == 0) {
    batch b = {.n = n, .nsel = n, .ncols = ncols, .cols = cols};
    rc = sql__rowset_append(out, &b);
  }
  free(cols);
  free(vals);
  free(nulls);
  return rc;
}

typedef struct merge_job {
  aggrun *r;
  rowset *res;
  atomic_int next;
  int rc;
  pthread_mutex_t mu;
} merge_job;

/* phase 2: builds partitions' tables from the lists of every thread and
 * outputs them, one partition after another, in one reused table */
static void *merge_main(void *arg)
{
  merge_job *m = arg;
  aggrun *r = m->r;
  plan *p = r->p;
  gtable *w = NULL;
  int rc = 0;
  for (;;) {
    int i = atomic_fetch_add(&m->next, 1);
    if (i >= NPART || rc < 0 || atomic_load(&r->q->failed))
      break;
    size_t total = 0;
    for (int t = 0; t <= r->q->threads; t++)
      if (r->th[t] != NULL)
        total += r->th[t]->lists[i].groups;
    if (total == 0)
      continue;
    if (w == NULL)
      w = gt_new(r->q, p->ngroups, r->kphys, p->naggs, p->aggs, false);
    else
      gt_clear(w, true);
    gt_reserve(w, total);
    while (w->cap < total)
      gt_grow_groups(w);
    for (int t = 0; t <= r->q->threads && rc == 0; t++) {
      if (r->th[t] == NULL)
        continue;
      plist *pl = &r->th[t]->lists[i];
      for (int k = 0; k < pl->n; k++) {
        if (rc == 0)
          rc = gt_merge(w, pl->blk[k]);
        gt_free(pl->blk[k]);
      }
      free(pl->blk);
      *pl = (plist){0};
    }
    if (rc == 0) {
      pthread_mutex_lock(&m->mu);
      rc = gt_output(w, p, m->res, false, 0, false);
      pthread_mutex_unlock(&m->mu);
    }
  }
  gt_free(w);
  if (rc < 0) {
    pthread_mutex_lock(&m->mu);
    if (m->rc == 0)
      m->rc = rc;
    pthread_mutex_unlock(&m->mu);
  }
  return NULL;
}

int sql__exec_agg(qctx *q, plan *p, rowset **out)
{
  aggrun r = {.q = q, .p = p};
  r.th = xcalloc((size_t)q->threads + 1, sizeof(aggthread *));
  r.kphys = xcalloc((size_t)p->ngroups + 1, 1);
  for (int k = 0; k < p->ngroups; k++)
    r.kphys[k] = (uint8_t)sql__phys(p->groups[k]->type.t);
  pipe_sink s = {agg_init, agg_consume, agg_finish, &r};
  int rc = sql__exec_pipeline(q, p->child, &s, 0);
  rowset *res = sql__rowset_new(q, p->ncols, p->cols);
  if (p->ngroups == 0) {
    /* one group: every thread's state merged into the first's */
    gtable *g = NULL;
    for (int i = 0; i <= q->threads && rc == 0; i++) {
      if (r.th[i] == NULL)
        continue;
      if (g == NULL)
        g = r.th[i]->g;
      else
        rc = gt_merge(g, r.th[i]->g);
    }
    gtable *own = NULL;
    if (g == NULL)
      g = own = gt_new(q, 0, r.kphys, p->naggs, p->aggs, false); /* no input at all */
    if (rc == 0 && g->n == 0) {
      gt_grow_groups(g);
      g->n = 1;
      g->hash[0] = 0;
      states_init(g, 0);
    }
    if (rc == 0)
      rc = gt_output(g, p, res, false, 0, false);
    gt_free(own);
  } else if (rc == 0) {
    for (int i = 0; i <= q->threads; i++)
      if (r.th[i] != NULL)
        agg_flush(r.th[i]);
    merge_job m = {.r = &r, .res = res};
    pthread_mutex_init(&m.mu, NULL);
    int nw = q->threads < NPART ? q->threads : NPART;
    pthread_t tids[64];
    if (nw > 64)
      nw = 64;
    for (int i = 1; i < nw; i++)
      pthread_create(&tids[i], NULL, merge_main, &m);
    merge_main(&m);
    for (int i = 1; i < nw; i++)
      pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&m.mu);
    rc = m.rc;
    if (rc == 0)
      rc = sql__qctx_check(q);
  }
  for (int t = 0; t <= q->threads; t++) {
    aggthread *th = r.th[t];
    if (th == NULL)
      continue;
    if (th->lists != NULL)
      for (int i = 0; i < NPART; i++) {
        for (int k = 0; k < th->lists[i].n; k++)
          gt_free(th->lists[i].blk[k]);
        free(th->lists[i].blk);
      }
    free(th->lists);
    free(th->scr);
    gt_free(th->g);
    free(th);
  }
  free(r.th);
  free(r.kphys);
  if (rc < 0) {
    sql__rowset_free(res);
    return rc;
  }
  *out = res;
  return 0;
}

/* ---- set operations ---- */

static int setop_add(gtable *g, rowset *r, int side, bool insert)
{
  vec *keys;
  for (size_t c = 0; c < r->nchunks; c++) {
    rs_chunk *ch = r->chunks[c];
    keys = ch->cols;
    for (int i = 0; i < ch->n; i++) {
      uint32_t gid = gt_find(g, keys, i, row_hash(keys, g->nk, i), insert);
      if (gid != UINT32_MAX)
        g->cnt[side][gid]++;
    }
    int rc = sql__qctx_check(g->q);
    if (rc < 0)
      return rc;
  }
  return 0;
}

int sql__exec_setop(qctx *q, plan *p, rowset **out)
{
  rowset *l = NULL, *r = NULL;
  int rc = sql__exec_materialize(q, p->child, &l);
  if (rc == 0)
    rc = sql__exec_materialize(q, p->right, &r);
  if (rc < 0) {
    sql__rowset_free(l);
    sql__rowset_free(r);
    return rc;
  }
  if (p->setop == Q_UNION && p->all) {
    sql__rowset_move(l, r);
    sql__rowset_free(r);
    l->ordered = false;
    *out = l;
    return 0;
  }
  gtable *g = gt_new(q, p->ncols, l->phys, 0, NULL, true);
  rc = setop_add(g, l, 0, true);
  if (rc == 0)
    rc = setop_add(g, r, 1, p->setop == Q_UNION);
  rowset *res = sql__rowset_new(q, p->ncols, p->cols);
  if (rc == 0)
    rc = gt_output(g, p, res, true, p->setop, p->all);
  gt_free(g);
  sql__rowset_free(l);
  sql__rowset_free(r);
  if (rc < 0) {
    sql__rowset_free(res);
    return rc;
  }
  *out = res;
  return 0;
}
