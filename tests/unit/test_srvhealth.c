#include <criterion/criterion.h>

#include "common/srvhealth.h"

#include <string.h>

static struct pt_srvhealth entry(const char *be, const char *srv, bool up, uint32_t fails,
                                 uint64_t failures, uint64_t changed)
{
    struct pt_srvhealth e = {.up = up, .fails = fails, .failures = failures,
                             .changed_ms = changed};
    snprintf(e.backend, sizeof(e.backend), "%s", be);
    snprintf(e.server, sizeof(e.server), "%s", srv);
    return e;
}

static void report(struct pt_wbuf *b, const struct pt_srvhealth *v, uint32_t n)
{
    pt_wbuf_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        pt_srvhealth_put(b, &v[i]);
}

Test(srvhealth, roundtrip)
{
    struct pt_srvhealth in[2] = {entry("web", "127.0.0.1:80", true, 0, 0, 0),
                                 entry("web", "[::1]:8080", false, 3, 7, 1700000000000)};
    struct pt_wbuf b = {0};
    report(&b, in, 2);
    pt_wbuf_u64(&b, 42); /* what follows in STATS stays for the caller */
    struct pt_cursor c = pt_cursor_make(b.data, b.len);
    struct pt_srvhealth_list out = {0};
    cr_assert_eq(pt_srvhealth_read(&c, &out), 0);
    cr_assert_eq(out.n, 2);
    cr_assert_eq(memcmp(&out.v[0], &in[0], sizeof(in[0])), 0);
    cr_assert_eq(memcmp(&out.v[1], &in[1], sizeof(in[1])), 0);
    cr_assert_eq(pt_rd_u64(&c), 42);
    pt_srvhealth_free(&out);
    pt_wbuf_free(&b);
}

Test(srvhealth, every_truncation_is_refused)
{
    struct pt_srvhealth in[1] = {entry("web", "a.example:443", false, 1, 1, 5)};
    struct pt_wbuf b = {0};
    report(&b, in, 1);
    for (size_t len = 0; len < b.len; len++) {
        struct pt_cursor c = pt_cursor_make(b.data, len);
        struct pt_srvhealth_list out = {0};
        cr_assert_eq(pt_srvhealth_read(&c, &out), PT_EMALFORMED, "prefix %zu", len);
        cr_assert_eq(out.n, 0);
        cr_assert_null(out.v);
    }
    pt_wbuf_free(&b);
}

Test(srvhealth, bad_state_long_name_and_huge_count_are_refused)
{
    struct pt_srvhealth in[1] = {entry("web", "a:1", true, 0, 0, 0)};
    struct pt_wbuf b = {0};
    report(&b, in, 1);
    struct pt_srvhealth_list out = {0};
    /* state byte: after u32 n, str "web" (4+3), str "a:1" (4+3) */
    b.data[4 + 7 + 7] = 2;
    struct pt_cursor c = pt_cursor_make(b.data, b.len);
    cr_assert_eq(pt_srvhealth_read(&c, &out), PT_EMALFORMED);
    pt_wbuf_free(&b);

    pt_wbuf_u32(&b, 1);
    char longname[100];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    pt_wbuf_str(&b, longname); /* over the 63 bytes of a backend name */
    c = pt_cursor_make(b.data, b.len);
    cr_assert_eq(pt_srvhealth_read(&c, &out), PT_EMALFORMED);
    pt_wbuf_free(&b);

    pt_wbuf_u32(&b, 0xffffffffu);
    c = pt_cursor_make(b.data, b.len);
    cr_assert_eq(pt_srvhealth_read(&c, &out), PT_EMALFORMED);
    pt_wbuf_free(&b);
}

Test(srvhealth, merge_takes_the_latest_change_and_sums_failures)
{
    struct pt_srvhealth w0[2] = {entry("web", "s1:80", false, 2, 5, 2000),
                                 entry("web", "s2:80", true, 0, 0, 0)};
    struct pt_srvhealth w1[2] = {entry("web", "s1:80", true, 0, 3, 3000),
                                 entry("api", "s2:80", false, 1, 1, 1000)};
    struct pt_srvhealth_list a = {w0, 2}, b = {w1, 2}, all = {0};
    pt_srvhealth_merge(&all, &a);
    pt_srvhealth_merge(&all, &b);
    cr_assert_eq(all.n, 3);
    cr_assert_str_eq(all.v[0].server, "s1:80");
    cr_assert(all.v[0].up, "worker 1 saw s1 come back after worker 0 saw it fail");
    cr_assert_eq(all.v[0].fails, 0);
    cr_assert_eq(all.v[0].failures, 8);
    cr_assert(all.v[1].up);
    cr_assert_str_eq(all.v[2].backend, "api");
    cr_assert(!all.v[2].up, "same server, another backend: its own entry");
    pt_srvhealth_free(&all);
}
