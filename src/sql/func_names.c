/* sql/func_names.c -- the names of the aggregate and window functions.
 *
 * Why a file of its own: the scalar functions register themselves in
 * func.c; aggregates and window functions are not scalar functions (agg.c
 * and sort.c compute them) but the binder must tell their names apart
 * from scalar ones, so their tables live here, next to nothing else.
 *
 * Invariants:
 *   (1) A name maps to one AGG_* or WIN_* code (plan.h); lookups are
 *       case-sensitive on the lower-case names the parser produces.
 *   (2) A name may be both an aggregate and, with OVER, a window
 *       aggregate; it is never also a scalar function in func.c.
 *
 * Start reading at agg_names[].
 */
#include "bind_internal.h"

#include <string.h>

static const struct {
  const char *name;
  int fn;
} agg_names[] = {
  {"count", AGG_COUNT}, {"sum", AGG_SUM}, {"avg", AGG_AVG}, {"min", AGG_MIN}, {"max", AGG_MAX},
  {"stddev", AGG_STDDEV_SAMP}, {"stddev_samp", AGG_STDDEV_SAMP}, {"stddev_pop", AGG_STDDEV_POP},
  {"variance", AGG_VAR_SAMP}, {"var_samp", AGG_VAR_SAMP}, {"var_pop", AGG_VAR_POP},
  {"bool_and", AGG_BOOL_AND}, {"bool_or", AGG_BOOL_OR}, {"every", AGG_BOOL_AND},
  {"arbitrary", AGG_ARBITRARY}, {"any_value", AGG_ARBITRARY},
  {"approx_distinct", AGG_APPROX_DISTINCT}, {"count_if", AGG_COUNT_IF},
  {"max_by", AGG_MAX_BY}, {"min_by", AGG_MIN_BY}, {NULL, 0},
};

int sql__agg_lookup(const char *name)
{
  for (int i = 0; agg_names[i].name; i++)
    if (!strcmp(agg_names[i].name, name))
      return agg_names[i].fn;
  return -1;
}

bool sql__func_is_aggregate(const char *name)
{
  return sql__agg_lookup(name) >= 0;
}

static const struct {
  const char *name;
  int fn;
} win_names[] = {
  {"row_number", WIN_ROW_NUMBER}, {"rank", WIN_RANK}, {"dense_rank", WIN_DENSE_RANK},
  {"percent_rank", WIN_PERCENT_RANK}, {"cume_dist", WIN_CUME_DIST}, {"ntile", WIN_NTILE},
  {"lag", WIN_LAG}, {"lead", WIN_LEAD}, {"first_value", WIN_FIRST_VALUE},
  {"last_value", WIN_LAST_VALUE}, {"nth_value", WIN_NTH_VALUE}, {NULL, 0},
};

int sql__win_lookup(const char *name)
{
  for (int i = 0; win_names[i].name; i++)
    if (!strcmp(win_names[i].name, name))
      return win_names[i].fn;
  return -1;
}

bool sql__func_is_window(const char *name)
{
  return sql__win_lookup(name) >= 0;
}
