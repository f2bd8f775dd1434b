#include "common/metrics.h"

#include <math.h>

const double pt_histo_bounds[PT_HISTO_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,   0.5,   1,    2.5,   10};

void pt_histo_add(struct pt_histo *h, uint64_t us)
{
    size_t i = 0;
    while (i < PT_HISTO_BUCKETS && (double)us > pt_histo_bounds[i] * 1e6)
        i++;
    h->n[i]++;
    h->count++;
    h->sum_us += us;
}

void pt_histo_merge(struct pt_histo *into, const struct pt_histo *from)
{
    for (size_t i = 0; i <= PT_HISTO_BUCKETS; i++)
        into->n[i] += from->n[i];
    into->count += from->count;
    into->sum_us += from->sum_us;
}

static void put_str(struct pt_wbuf *out, const char *s)
{
    pt_wbuf_put(out, s, strlen(s));
}

void pt_metrics_family(struct pt_wbuf *out, const char *name, enum pt_metric_type type,
                       const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    put_str(out, "# HELP ");
    put_str(out, name);
    pt_wbuf_u8(out, ' ');
    /* HELP text escapes only backslash and newline. */
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            put_str(out, "\\\\");
        else if (*p == '\n')
            put_str(out, "\\n");
        else
            pt_wbuf_u8(out, (uint8_t)*p);
    }
    put_str(out, "\n# TYPE ");
    put_str(out, name);
    pt_wbuf_u8(out, ' ');
    put_str(out, types[type]);
    pt_wbuf_u8(out, '\n');
}

static void put_labels(struct pt_wbuf *out, const char *const *labels, size_t n,
                       const char *extra_name, const char *extra_value)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (labels[2 * i + 1] == NULL)
            continue;
        pt_wbuf_u8(out, any ? ',' : '{');
        any = true;
        put_str(out, labels[2 * i]);
        put_str(out, "=\"");
        for (const char *p = labels[2 * i + 1]; *p; p++) {
            if (*p == '\\' || *p == '"')
                pt_wbuf_u8(out, '\\');
            if (*p == '\n')
                put_str(out, "\\n");
            else
                pt_wbuf_u8(out, (uint8_t)*p);
        }
        pt_wbuf_u8(out, '"');
    }
    if (extra_name) {
        pt_wbuf_u8(out, any ? ',' : '{');
        any = true;
        put_str(out, extra_name);
        put_str(out, "=\"");
        put_str(out, extra_value);
        pt_wbuf_u8(out, '"');
    }
    if (any)
        pt_wbuf_u8(out, '}');
}

void pt_metrics_u64(struct pt_wbuf *out, const char *name, const char *const *labels,
                    size_t n_labels, uint64_t value)
{
    char num[32];
    put_str(out, name);
    put_labels(out, labels, n_labels, NULL, NULL);
    int n = snprintf(num, sizeof(num), " %llu\n", (unsigned long long)value);
    pt_wbuf_put(out, num, (size_t)n);
}

void pt_metrics_f64(struct pt_wbuf *out, const char *name, const char *const *labels,
                    size_t n_labels, double value)
{
    char num[48];
    put_str(out, name);
    put_labels(out, labels, n_labels, NULL, NULL);
    int n = isfinite(value) ? snprintf(num, sizeof(num), " %.10g\n", value)
                            : snprintf(num, sizeof(num), " %s\n", value > 0 ? "+Inf" : "NaN");
    pt_wbuf_put(out, num, (size_t)n);
}

void pt_metrics_histo(struct pt_wbuf *out, const char *name, const char *const *labels,
                      size_t n_labels, const struct pt_histo *h)
{
    char metric[128], le[32], num[48];
    snprintf(metric, sizeof(metric), "%s_bucket", name);
    uint64_t cum = 0;
    for (size_t i = 0; i <= PT_HISTO_BUCKETS; i++) {
        cum += h->n[i];
        if (i < PT_HISTO_BUCKETS)
            snprintf(le, sizeof(le), "%g", pt_histo_bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        put_str(out, metric);
        put_labels(out, labels, n_labels, "le", le);
        int n = snprintf(num, sizeof(num), " %llu\n", (unsigned long long)cum);
        pt_wbuf_put(out, num, (size_t)n);
    }
    snprintf(metric, sizeof(metric), "%s_sum", name);
    pt_metrics_f64(out, metric, labels, n_labels, (double)h->sum_us / 1e6);
    snprintf(metric, sizeof(metric), "%s_count", name);
    pt_metrics_u64(out, metric, labels, n_labels, h->count);
}
