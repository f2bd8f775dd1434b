#include <criterion/criterion.h>

#include "common/metrics.h"

static char *text(struct pt_wbuf *b)
{
    pt_wbuf_u8(b, 0);
    return (char *)b->data;
}

Test(metrics, family_has_help_and_type)
{
    struct pt_wbuf b = {0};
    pt_metrics_family(&b, "portier_x_total", PT_METRIC_COUNTER, "Things.\nWith a \\ too.");
    cr_assert_str_eq(text(&b), "# HELP portier_x_total Things.\\nWith a \\\\ too.\n"
                               "# TYPE portier_x_total counter\n");
    pt_wbuf_free(&b);
}

Test(metrics, label_values_are_escaped)
{
    struct pt_wbuf b = {0};
    /* A ban reason or a domain comes from API users: it must not break the
     * exposition or forge another sample. */
    const char *labels[] = {"reason", "a\"b\\c\nportier_fake 1", "skipped", NULL, "w", "0"};
    pt_metrics_u64(&b, "portier_x_total", labels, 3, 7);
    cr_assert_str_eq(text(&b),
                     "portier_x_total{reason=\"a\\\"b\\\\c\\nportier_fake 1\",w=\"0\"} 7\n");
    pt_wbuf_free(&b);
}

Test(metrics, no_labels)
{
    struct pt_wbuf b = {0};
    pt_metrics_f64(&b, "portier_g", NULL, 0, 0.5);
    cr_assert_str_eq(text(&b), "portier_g 0.5\n");
    pt_wbuf_free(&b);
}

Test(metrics, histogram_is_cumulative)
{
    struct pt_histo h = {0}, h2 = {0};
    pt_histo_add(&h, 500);       /* 0.5 ms -> le 0.001 */
    pt_histo_add(&h, 1000);      /* exactly 1 ms -> le 0.001 */
    pt_histo_add(&h, 30000);     /* 30 ms -> le 0.05 */
    pt_histo_add(&h2, 60000000); /* 60 s -> +Inf only */
    pt_histo_merge(&h, &h2);
    cr_assert_eq(h.count, 4);
    struct pt_wbuf b = {0};
    const char *labels[] = {"route", "a.test"};
    pt_metrics_histo(&b, "portier_lat_seconds", labels, 1, &h);
    char *t = text(&b);
    cr_assert(strstr(t, "portier_lat_seconds_bucket{route=\"a.test\",le=\"0.001\"} 2\n"));
    cr_assert(strstr(t, "portier_lat_seconds_bucket{route=\"a.test\",le=\"0.025\"} 2\n"));
    cr_assert(strstr(t, "portier_lat_seconds_bucket{route=\"a.test\",le=\"0.05\"} 3\n"));
    cr_assert(strstr(t, "portier_lat_seconds_bucket{route=\"a.test\",le=\"10\"} 3\n"));
    cr_assert(strstr(t, "portier_lat_seconds_bucket{route=\"a.test\",le=\"+Inf\"} 4\n"));
    cr_assert(strstr(t, "portier_lat_seconds_sum{route=\"a.test\"} 60.0315\n"));
    cr_assert(strstr(t, "portier_lat_seconds_count{route=\"a.test\"} 4\n"));
    pt_wbuf_free(&b);
}
