/* fn/metrics.c -- the functions' numbers in Prometheus text: invocations,
 * errors, throttles, time-outs, cold starts, duration and init-duration
 * histograms, concurrency and instances; and per function (label
 * function="NAME") its invocations, errors, cold starts and duration histogram.
 *
 * Why: GET /_tarn/metrics shows what Lambda's CloudWatch metrics would.
 *
 * Invariants:
 *   (1) The counters live in fn_system (fn_counters c, fn/internal.h) and
 *       change and are read only under fn_system.lock.
 *   (2) Histogram buckets are cumulative only when written out: each
 *       observation counts in one bucket (or over the last bound).
 */
#include "fn/internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const double bounds_ms[12] = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

static void observe(uint64_t *buckets, uint64_t *over, double *sum, double ms)
{
  *sum += ms;
  for (size_t i = 0; i < 12; i++)
    if (ms <= bounds_ms[i]) {
      buckets[i]++;
      return;
    }
  (*over)++;
}

void fn__metrics_duration(fn_system *s, double ms)
{
  observe(s->c.duration_buckets, &s->c.duration_over, &s->c.duration_sum, ms);
}

void fn__metrics_function(fn_entry *f, double ms, bool error)
{
  f->stats.invocations++;
  if (error)
    f->stats.errors++;
  observe(f->stats.duration_buckets, &f->stats.duration_over, &f->stats.duration_sum, ms);
}

void fn__metrics_init_duration(fn_system *s, double ms)
{
  observe(s->c.init_buckets, &s->c.init_over, &s->c.init_sum, ms);
}

/* One histogram's series; label is "" or 'function="NAME"'. */
static void histogram_series(buf *out, const char *name, const char *label,
                             const uint64_t *buckets, uint64_t over, double sum_ms)
{
  const char *sep = label[0] != '\0' ? "," : "";
  uint64_t cum = 0;
  for (size_t i = 0; i < 12; i++) {
    cum += buckets[i];
    buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep, bounds_ms[i] / 1000.0,
               (unsigned long long)cum);
  }
  cum += over;
  const char *open = label[0] != '\0' ? "{" : "";
  const char *close = label[0] != '\0' ? "}" : "";
  buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name,
             label, sep, (unsigned long long)cum, name, open, label, close, sum_ms / 1000.0, name,
             open, label, close, (unsigned long long)cum);
}

static void histogram(buf *out, const char *name, const char *help, const uint64_t *buckets,
                      uint64_t over, double sum_ms)
{
  buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  histogram_series(out, name, "", buckets, over, sum_ms);
}

/* One per-function counter family: the fn_entry_stats field at offset. */
static void per_function_counter(fn_system *s, buf *out, const char *name, const char *help,
                                 size_t offset)
{
  buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
  for (size_t b = 0; b < FN_HASH_BUCKETS; b++)
    for (fn_entry *f = s->table[b]; f != NULL; f = f->hnext) {
      uint64_t v;
      memcpy(&v, (const char *)&f->stats + offset, sizeof v);
      buf_printf(out, "%s{function=\"%s\"} %llu\n", name, f->name, (unsigned long long)v);
    }
}

/* Per function, under s->lock (names are [A-Za-z0-9_-]: no label escaping). */
static void per_function(fn_system *s, buf *out)
{
  per_function_counter(s, out, "tarn_fn_function_invocations_total",
                       "Invocations of one function run to an end.",
                       offsetof(fn_entry_stats, invocations));
  per_function_counter(s, out, "tarn_fn_function_errors_total",
                       "Invocations of one function that ended in an error.",
                       offsetof(fn_entry_stats, errors));
  per_function_counter(s, out, "tarn_fn_function_cold_starts_total",
                       "Instances started for an invocation of one function.",
                       offsetof(fn_entry_stats, cold_starts));
  const char *hist = "tarn_fn_function_duration_seconds";
  buf_printf(out, "# HELP %s Invocation duration of one function.\n# TYPE %s histogram\n",
             hist, hist);
  for (size_t b = 0; b < FN_HASH_BUCKETS; b++) {
    for (fn_entry *f = s->table[b]; f != NULL; f = f->hnext) {
      char label[96];
      snprintf(label, sizeof label, "function=\"%s\"", f->name);
      histogram_series(out, hist, label, f->stats.duration_buckets, f->stats.duration_over,
                       f->stats.duration_sum);
    }
  }
}

void fn_metrics(fn_system *s, buf *out)
{
  pthread_mutex_lock(&s->lock);
  fn_counters c = s->c;
  uint32_t active = s->active;
  uint32_t instances = s->instances;
  size_t functions = s->nfunctions;
  uint64_t idle = 0;
  for (size_t b = 0; b < FN_HASH_BUCKETS; b++)
    for (fn_entry *f = s->table[b]; f != NULL; f = f->hnext)
      for (pool *p = f->pools; p != NULL; p = p->next)
        idle += p->nidle;
  pthread_mutex_unlock(&s->lock);
  buf_printf(out,
             "# HELP tarn_fn_functions Functions defined.\n# TYPE tarn_fn_functions gauge\n"
             "tarn_fn_functions %zu\n"
             "# HELP tarn_fn_invocations_total Invocations run to an end.\n"
             "# TYPE tarn_fn_invocations_total counter\ntarn_fn_invocations_total %llu\n"
             "# HELP tarn_fn_errors_total Invocations that ended in a function error.\n"
             "# TYPE tarn_fn_errors_total counter\ntarn_fn_errors_total %llu\n"
             "# HELP tarn_fn_throttles_total Invocations refused for concurrency.\n"
             "# TYPE tarn_fn_throttles_total counter\ntarn_fn_throttles_total %llu\n"
             "# HELP tarn_fn_timeouts_total Invocations that timed out.\n"
             "# TYPE tarn_fn_timeouts_total counter\ntarn_fn_timeouts_total %llu\n"
             "# HELP tarn_fn_cold_starts_total Instances started for an invocation.\n"
             "# TYPE tarn_fn_cold_starts_total counter\ntarn_fn_cold_starts_total %llu\n"
             "# HELP tarn_fn_async_queued_total Event invocations queued.\n"
             "# TYPE tarn_fn_async_queued_total counter\ntarn_fn_async_queued_total %llu\n"
             "# HELP tarn_fn_async_done_total Event invocations finished (or given up).\n"
             "# TYPE tarn_fn_async_done_total counter\ntarn_fn_async_done_total %llu\n"
             "# HELP tarn_fn_concurrent_executions Invocations running now.\n"
             "# TYPE tarn_fn_concurrent_executions gauge\ntarn_fn_concurrent_executions %u\n"
             "# HELP tarn_fn_instances Instances alive.\n# TYPE tarn_fn_instances gauge\n"
             "tarn_fn_instances %u\n"
             "# HELP tarn_fn_instances_idle Instances idle in warm pools.\n"
             "# TYPE tarn_fn_instances_idle gauge\ntarn_fn_instances_idle %llu\n",
             functions, (unsigned long long)c.invocations, (unsigned long long)c.errors,
             (unsigned long long)c.throttles, (unsigned long long)c.timeouts,
             (unsigned long long)c.cold_starts, (unsigned long long)c.async_queued,
             (unsigned long long)c.async_done, active, instances, (unsigned long long)idle);
  histogram(out, "tarn_fn_duration_seconds", "Invocation duration.", c.duration_buckets,
            c.duration_over, c.duration_sum);
  histogram(out, "tarn_fn_init_duration_seconds", "Init duration of cold starts.", c.init_buckets,
            c.init_over, c.init_sum);
  pthread_mutex_lock(&s->lock);
  per_function(s, out);
  pthread_mutex_unlock(&s->lock);
}
