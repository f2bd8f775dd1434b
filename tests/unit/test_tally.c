#include <criterion/criterion.h>

#include "common/tally.h"

#include <string.h>

static void add(struct pt_tally *t, const char *route, const char *mode, const char *server,
                const char *result, uint64_t us)
{
    struct pt_tally_rec r = {route, mode, "web", server, result, 10, 100, us};
    pt_tally_add(t, &r);
}

static char *text(struct pt_wbuf *b)
{
    pt_wbuf_u8(b, 0);
    return (char *)b->data;
}

Test(tally, counts_per_flow_and_result)
{
    struct pt_tally t = {0};
    add(&t, "a.test", "offload", "127.0.0.1:80", "200", 2000);
    add(&t, "a.test", "offload", "127.0.0.1:80", "200", 2000);
    add(&t, "a.test", "offload", NULL, "502", 0);
    add(&t, NULL, "passthrough", NULL, "banned", 0);
    cr_assert_eq(t.n_flows, 3);
    cr_assert_eq(t.flows[0].n, 2);
    cr_assert_eq(t.flows[0].bytes_out, 200);
    cr_assert_eq(t.flows[0].latency.count, 2);
    cr_assert_eq(t.flows[2].latency.count, 0, "passthrough has no request latency");
    cr_assert_eq(t.n_results, 3);
    cr_assert_eq(t.results[0].n, 2);
    pt_tally_free(&t);
}

Test(tally, roundtrip_merge_and_truncations)
{
    struct pt_tally t = {0}, back = {0}, sum = {0};
    add(&t, "a.test", "offload", "127.0.0.1:80", "200", 2000);
    add(&t, "b.test", "passthrough", "[::1]:443", "ok", 0);
    t.tls_ok = 5;
    t.tls_handovers = 4;
    struct pt_wbuf b = {0};
    pt_tally_encode(&t, &b);
    struct pt_cursor c = pt_cursor_make(b.data, b.len);
    cr_assert_eq(pt_tally_read(&c, &back), 0);
    cr_assert_eq(pt_cursor_left(&c), 0);
    cr_assert_eq(back.n_flows, 2);
    cr_assert_eq(memcmp(back.flows, t.flows, 2 * sizeof(*t.flows)), 0);
    cr_assert_eq(back.tls_ok, 5);
    cr_assert_eq(back.tls_handovers, 4);
    for (size_t len = 0; len < b.len; len++) {
        struct pt_cursor p = pt_cursor_make(b.data, len);
        struct pt_tally x = {0};
        cr_assert_eq(pt_tally_read(&p, &x), PT_EMALFORMED, "prefix %zu", len);
        cr_assert_null(x.flows);
    }
    pt_tally_merge(&sum, &t);
    pt_tally_merge(&sum, &back);
    /* A tally read from STATS has no index yet: adding to it finds its rows. */
    add(&back, "a.test", "offload", "127.0.0.1:80", "200", 2000);
    cr_assert_eq(back.n_flows, 2);
    cr_assert_eq(back.flows[0].n, 2);
    cr_assert_eq(sum.n_flows, 2);
    cr_assert_eq(sum.flows[0].n, 2);
    cr_assert_eq(sum.flows[0].latency.count, 2);
    cr_assert_eq(sum.tls_ok, 10);
    cr_assert_eq(sum.tls_handovers, 8);
    pt_tally_free(&t);
    pt_tally_free(&back);
    pt_tally_free(&sum);
    pt_wbuf_free(&b);
}

Test(tally, bounded_with_an_other_row)
{
    struct pt_tally t = {0};
    char route[32];
    for (int i = 0; i < PT_TALLY_ROWS_MAX + 100; i++) {
        snprintf(route, sizeof(route), "r%d.test", i);
        add(&t, route, "passthrough", NULL, "ok", 0);
    }
    cr_assert_eq(t.n_flows, PT_TALLY_ROWS_MAX);
    cr_assert_str_eq(t.flows[PT_TALLY_ROWS_MAX - 1].route, "(other)");
    cr_assert_eq(t.flows[PT_TALLY_ROWS_MAX - 1].n, 101);
    pt_tally_free(&t);
}

Test(tally, metrics_leave_empty_labels_out)
{
    struct pt_tally t = {0};
    add(&t, NULL, "passthrough", NULL, "unknown_sni", 0);
    struct pt_wbuf b = {0};
    pt_tally_metrics(&t, &b);
    const char *s = text(&b);
    cr_assert(strstr(s, "portier_route_total{mode=\"passthrough\",backend=\"web\"} 1\n"), "%s", s);
    cr_assert(strstr(s, "portier_results_total{mode=\"passthrough\",result=\"unknown_sni\"} 1\n"));
    cr_assert(strstr(s, "# TYPE portier_http_request_duration_seconds histogram\n"));
    pt_tally_free(&t);
    pt_wbuf_free(&b);
}
