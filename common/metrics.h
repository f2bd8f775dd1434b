/* Prometheus text exposition (format 0.0.4), written the way promtool checks
 * it: every family once, with HELP and TYPE before its samples; counters end
 * in _total; label values escaped (\\, \", \n); histograms as cumulative
 * _bucket{le=...} series with +Inf, then _sum and _count. Used by the daemon
 * for /metrics; values come from the workers' STATS frames and the store. */
#ifndef PT_METRICS_H
#define PT_METRICS_H

#include "common/wbuf.h"

enum pt_metric_type { PT_METRIC_COUNTER = 0, PT_METRIC_GAUGE, PT_METRIC_HISTOGRAM };

/* Upper bounds of the latency histograms, in seconds (+Inf is implicit). */
#define PT_HISTO_BUCKETS 12
extern const double pt_histo_bounds[PT_HISTO_BUCKETS];

/* A latency histogram: per-bucket (not cumulative) counts, the +Inf one last. */
struct pt_histo {
    uint64_t n[PT_HISTO_BUCKETS + 1];
    uint64_t count;
    uint64_t sum_us;
};

void pt_histo_add(struct pt_histo *h, uint64_t us);
void pt_histo_merge(struct pt_histo *into, const struct pt_histo *from);

/* Starts family <name> with its HELP and TYPE lines. */
void pt_metrics_family(struct pt_wbuf *out, const char *name, enum pt_metric_type type,
                       const char *help);

/* One sample of the current family: <name>{labels} <value>. <labels> holds
 * <n_labels> name/value pairs (values escaped here; NULL values skipped). */
void pt_metrics_u64(struct pt_wbuf *out, const char *name, const char *const *labels,
                    size_t n_labels, uint64_t value);
void pt_metrics_f64(struct pt_wbuf *out, const char *name, const char *const *labels,
                    size_t n_labels, double value);

/* The samples of histogram <name> (the family was started with
 * PT_METRIC_HISTOGRAM): <name>_bucket per bound and +Inf, _sum, _count. */
void pt_metrics_histo(struct pt_wbuf *out, const char *name, const char *const *labels,
                      size_t n_labels, const struct pt_histo *h);

#endif
