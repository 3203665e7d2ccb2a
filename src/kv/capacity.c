/* kv/capacity.c -- ReturnConsumedCapacity: the read and write units a
 * request used, in the ConsumedCapacity shape DynamoDB returns.
 *
 * Why: tools and SDK code read ConsumedCapacity to size tables and to test
 * cost; the units follow DynamoDB's documented rules even though tarn never
 * throttles:
 *   - a write costs ceil(size / 1 KB) units, at least 1, where size is the
 *     larger of the item before and after; each secondary index whose entry
 *     the write puts or deletes costs the same for its projected entry (2x
 *     when the entry moves to another index key);
 *   - a read costs ceil(bytes / 4 KB) units, at least 1, halved when it is
 *     eventually consistent; a Query or Scan rounds the sum of the items it
 *     read (before the filter) once;
 *   - transactions cost twice.
 *
 * Invariant: a kv_capacity names one table; batches keep one per table.
 */
#include "internal.h"

#include "base/mem.h"

#include <string.h>

int kv__capacity_mode(json_t *in, const char **mode, err *e)
{
  const char *m = kv__in_str(in, "ReturnConsumedCapacity");
  *mode = NULL;
  if (m == NULL || strcmp(m, "NONE") == 0)
    return 0;
  if (strcmp(m, "TOTAL") != 0 && strcmp(m, "INDEXES") != 0)
    return err_set(e, KV_ERR_VALIDATION, "1 validation error detected: Value '%.64s' at "
                   "'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy "
                   "enum value set: [INDEXES, TOTAL, NONE]", m);
  *mode = m;
  return 0;
}

void kv__capacity_init(kv_capacity *c, const char *table, bool read)
{
  memset(c, 0, sizeof *c);
  c->table = xstrdup(table);
  c->read = read;
  c->gsi = json_object();
  c->lsi = json_object();
}

void kv__capacity_release(kv_capacity *c)
{
  free(c->table);
  json_decref(c->gsi);
  json_decref(c->lsi);
  memset(c, 0, sizeof *c);
}

static double units(size_t bytes, size_t unit)
{
  size_t n = (bytes + unit - 1) / unit;
  return n < 1 ? 1 : (double)n;
}

static void add_index(kv_capacity *c, const kv_index *ix, double u)
{
  json_t *map = ix->global ? c->gsi : c->lsi;
  json_t *old = json_object_get(map, ix->name);
  json_object_set_new(map, ix->name, json_real(u + (old != NULL ? json_real_value(old) : 0)));
}

void kv__capacity_write(kv_capacity *c, const kv_table *t, const json_t *old, const json_t *nw)
{
  size_t so = old != NULL ? kv__item_size(old) : 0, sn = nw != NULL ? kv__item_size(nw) : 0;
  c->table_units += units(so > sn ? so : sn, 1024);
  for (size_t i = 0; i < t->nidx; i++) {
    const kv_index *ix = &t->idx[i];
    json_t *po = old != NULL ? kv__index_entry(t, ix, old) : NULL;
    json_t *pn = nw != NULL ? kv__index_entry(t, ix, nw) : NULL;
    double u = 0;
    if (po != NULL && pn != NULL && !json_equal(po, pn)) {
      bool moved = !kv__av_eq(json_object_get(po, ix->hash), json_object_get(pn, ix->hash)) ||
                   (ix->range != NULL && !kv__av_eq(json_object_get(po, ix->range),
                                                   json_object_get(pn, ix->range)));
      u = moved ? units(kv__item_size(po), 1024) + units(kv__item_size(pn), 1024)
                : units(kv__item_size(pn), 1024);
    } else if (po != NULL && pn == NULL) {
      u = units(kv__item_size(po), 1024);
    } else if (pn != NULL && po == NULL) {
      u = units(kv__item_size(pn), 1024);
    }
    if (u > 0)
      add_index(c, ix, u);
    json_decref(po);
    json_decref(pn);
  }
}

void kv__capacity_read(kv_capacity *c, const kv_index *ix, size_t bytes, bool consistent)
{
  double u = units(bytes, 4096) * (consistent ? 1 : 0.5);
  if (ix == NULL || ix->no == 0)
    c->table_units += u;
  else
    add_index(c, ix, u);
}

json_t *kv__capacity_json(const kv_capacity *c, const char *mode, double factor)
{
  double total = c->table_units * factor;
  const char *k;
  json_t *v;
  json_t *gsi = json_object(), *lsi = json_object();
  const char *kind = c->read ? "ReadCapacityUnits" : "WriteCapacityUnits";
  json_object_foreach(c->gsi, k, v) {
    double u = json_real_value(v) * factor;
    total += u;
    json_object_set_new(gsi, k, json_pack("{sfsf}", "CapacityUnits", u, kind, u));
  }
  json_object_foreach(c->lsi, k, v) {
    double u = json_real_value(v) * factor;
    total += u;
    json_object_set_new(lsi, k, json_pack("{sfsf}", "CapacityUnits", u, kind, u));
  }
  json_t *out = json_pack("{sssfsf}", "TableName", c->table, "CapacityUnits", total, kind, total);
  if (strcmp(mode, "INDEXES") == 0) {
    double tu = c->table_units * factor;
    json_object_set_new(out, "Table", json_pack("{sfsf}", "CapacityUnits", tu, kind, tu));
    if (json_object_size(gsi) > 0)
      json_object_set(out, "GlobalSecondaryIndexes", gsi);
    if (json_object_size(lsi) > 0)
      json_object_set(out, "LocalSecondaryIndexes", lsi);
  }
  json_decref(gsi);
  json_decref(lsi);
  return out;
}
