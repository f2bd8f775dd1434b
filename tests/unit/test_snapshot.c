#include <criterion/criterion.h>

#include "common/dname.h"
#include "common/snapshot.h"
#include "tests/unit/guard.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <sys/resource.h>

/* Under ASan, refuse any single allocation over 256 MiB: a decoder that
 * trusted a lying count would ask for far more than that. Without ASan the
 * huge-count tests cap the address space instead (see cap_memory). */
#ifdef __SANITIZE_ADDRESS__
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_allocation_size_mb=256";
}
#endif

/* ---- builders ------------------------------------------------------------ */

static void hp(struct pt_hostport *out, const char *s)
{
    const char *why = NULL;
    int rc = pt_hostport_parse(s, strlen(s), out, &why);
    cr_assert_eq(rc, 0, "pt_hostport_parse(%s): %s", s, why ? why : "?");
}

/* Fills backend <b>: servers, then NULL, then http_servers, then NULL. */
static void mk_backend(struct pt_backend *b, const char *name, enum pt_pp_version pp,
                       bool tls, bool tls_verify, ...)
{
    va_list ap;
    const char *s;
    memset(b, 0, sizeof(*b));
    b->name = pt_xstrdup(name);
    b->proxy_protocol = pp;
    b->tls = tls;
    b->tls_verify = tls_verify;
    b->servers = pt_xcalloc(PT_SERVERS_MAX, sizeof(*b->servers));
    b->http_servers = pt_xcalloc(PT_SERVERS_MAX, sizeof(*b->http_servers));
    va_start(ap, tls_verify);
    while ((s = va_arg(ap, const char *)) != NULL)
        hp(&b->servers[b->n_servers++], s);
    while ((s = va_arg(ap, const char *)) != NULL)
        hp(&b->http_servers[b->n_http_servers++], s);
    va_end(ap);
}

/* Fills domain <d>; the variadic part is header name/value pairs, then NULL. */
static void mk_domain(struct pt_domain *d, const char *name, enum pt_mode mode,
                      const char *backend, bool manual, bool redirect, bool hsts, ...)
{
    va_list ap;
    const char *k;
    memset(d, 0, sizeof(*d));
    d->name = pt_xstrdup(name);
    d->mode = mode;
    d->backend = pt_xstrdup(backend);
    d->cert_manual = manual;
    d->redirect_http = redirect;
    d->hsts = hsts;
    d->http2 = !manual; /* varies independently of the other flags in the fixtures */
    d->headers = pt_xcalloc(PT_HEADERS_MAX, sizeof(*d->headers));
    va_start(ap, hsts);
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        d->headers[d->n_headers].name = pt_xstrdup(k);
        d->headers[d->n_headers].value = pt_xstrdup(v);
        d->n_headers++;
    }
    va_end(ap);
}

static struct pt_snapshot *snap_new(size_t nb, size_t nd)
{
    struct pt_snapshot *s = pt_xcalloc(1, sizeof(*s));
    s->refs = 1;
    s->backends = pt_xcalloc(nb, sizeof(*s->backends));
    s->domains = pt_xcalloc(nd, sizeof(*s->domains));
    return s;
}

static void add_trusted(struct pt_snapshot *s, const char *cidr)
{
    const char *why = NULL;
    struct pt_settings *st = &s->settings;
    st->trusted = pt_xrealloc(st->trusted, (st->n_trusted + 1) * sizeof(*st->trusted));
    memset(&st->trusted[st->n_trusted], 0, sizeof(st->trusted[0]));
    cr_assert_eq(pt_cidr_parse(cidr, strlen(cidr), &st->trusted[st->n_trusted], &why), 0,
                 "%s: %s", cidr, why ? why : "?");
    st->n_trusted++;
}

/* A snapshot exercising every field of the format. */
static struct pt_snapshot *rich_snapshot(void)
{
    struct pt_snapshot *s = snap_new(3, 5);
    s->version = 0x0102030405060708ULL;
    s->settings.hello_timeout_ms = 10000;
    s->settings.connect_timeout_ms = 5000;
    s->settings.idle_timeout_ms = 600000;
    s->settings.body_timeout_ms = 60000;
    s->settings.send_timeout_ms = 61000;
    s->settings.grace_ms = 30000;
    s->settings.https_port = 8443;
    add_trusted(s, "10.0.0.0/8");
    add_trusted(s, "2001:db8::/32");
    add_trusted(s, "192.0.2.7");

    mk_backend(&s->backends[0], "yunohost1", PT_PP_V2, false, true, "192.168.99.11:443",
               "[2001:db8::1]:8443", "app.lan:443", NULL, "192.168.99.11:80", NULL);
    mk_backend(&s->backends[1], "web_2", PT_PP_V1, true, false, "10.1.2.3:8443", NULL,
               NULL);
    mk_backend(&s->backends[2], "plain", PT_PP_NONE, true, true, "backend.example.net:80",
               NULL, "[::1]:80", "127.0.0.1:8080", NULL);
    s->n_backends = 3;

    mk_domain(&s->domains[0], "cloud.example.org", PT_MODE_PASSTHROUGH, "yunohost1", false,
              true, false, NULL);
    mk_domain(&s->domains[1], "*.example.org", PT_MODE_OFFLOAD, "web_2", true, false, true,
              "Content-Security-Policy", "object-src 'self'", "X-Frame-Options", "DENY",
              NULL);
    mk_domain(&s->domains[2], "*", PT_MODE_PASSTHROUGH, "plain", false, false, false, NULL);
    mk_domain(&s->domains[3], "xn--bcher-kva.example", PT_MODE_OFFLOAD, "plain", false,
              true, true, "X-Empty", "", NULL);
    mk_domain(&s->domains[4], "localhost", PT_MODE_OFFLOAD, "yunohost1", true, true, false,
              NULL);
    s->n_domains = 5;
    return s;
}

static void encode(const struct pt_snapshot *s, struct pt_wbuf *out)
{
    memset(out, 0, sizeof(*out));
    pt_snap_encode(s, out);
}

/* Decodes a copy of buf that ends at a guard page. */
static int decode_guarded(const uint8_t *buf, size_t len, struct pt_snapshot **out)
{
    struct pt_guard g;
    const uint8_t *copy = pt_guard_copy(&g, buf, len);
    int rc = pt_snap_decode(copy, len, out);
    pt_guard_release(&g);
    return rc;
}

/* ---- comparison ---------------------------------------------------------- */

static void expect_hostports_eq(const struct pt_hostport *a, size_t na,
                                const struct pt_hostport *b, size_t nb, const char *what)
{
    cr_assert_eq(na, nb, "%s: count %zu vs %zu", what, na, nb);
    for (size_t i = 0; i < na; i++) {
        char x[PT_HOST_MAX + 16], y[PT_HOST_MAX + 16];
        pt_hostport_format(&a[i], x, sizeof(x));
        pt_hostport_format(&b[i], y, sizeof(y));
        cr_expect_str_eq(x, y, "%s[%zu]", what, i);
        cr_expect_eq(a[i].kind, b[i].kind, "%s[%zu] kind", what, i);
        cr_expect_eq(a[i].port, b[i].port, "%s[%zu] port", what, i);
        cr_expect_eq(a[i].salen, b[i].salen, "%s[%zu] salen", what, i);
        if (a[i].salen == b[i].salen && a[i].salen > 0)
            cr_expect(memcmp(&a[i].sa, &b[i].sa, a[i].salen) == 0, "%s[%zu] sa", what, i);
    }
}

static void expect_snapshots_eq(const struct pt_snapshot *a, const struct pt_snapshot *b)
{
    cr_expect_eq(a->version, b->version);
    const struct pt_settings *x = &a->settings, *y = &b->settings;
    cr_expect_eq(x->hello_timeout_ms, y->hello_timeout_ms);
    cr_expect_eq(x->connect_timeout_ms, y->connect_timeout_ms);
    cr_expect_eq(x->idle_timeout_ms, y->idle_timeout_ms);
    cr_expect_eq(x->body_timeout_ms, y->body_timeout_ms);
    cr_expect_eq(x->send_timeout_ms, y->send_timeout_ms);
    cr_expect_eq(x->grace_ms, y->grace_ms);
    cr_expect_eq(x->https_port, y->https_port);
    cr_assert_eq(x->n_trusted, y->n_trusted);
    for (size_t i = 0; i < x->n_trusted; i++) {
        cr_expect_eq(x->trusted[i].family, y->trusted[i].family, "trusted[%zu]", i);
        cr_expect_eq(x->trusted[i].bits, y->trusted[i].bits, "trusted[%zu]", i);
        cr_expect(memcmp(x->trusted[i].addr, y->trusted[i].addr, 16) == 0, "trusted[%zu]",
                  i);
    }
    cr_assert_eq(a->n_backends, b->n_backends);
    for (size_t i = 0; i < a->n_backends; i++) {
        const struct pt_backend *p = &a->backends[i], *q = &b->backends[i];
        cr_expect_str_eq(p->name, q->name);
        cr_expect_eq(p->proxy_protocol, q->proxy_protocol, "%s", p->name);
        cr_expect_eq(p->tls, q->tls, "%s", p->name);
        cr_expect_eq(p->tls_verify, q->tls_verify, "%s", p->name);
        expect_hostports_eq(p->servers, p->n_servers, q->servers, q->n_servers, "servers");
        expect_hostports_eq(p->http_servers, p->n_http_servers, q->http_servers,
                            q->n_http_servers, "http_servers");
    }
    cr_assert_eq(a->n_domains, b->n_domains);
    for (size_t i = 0; i < a->n_domains; i++) {
        const struct pt_domain *p = &a->domains[i], *q = &b->domains[i];
        cr_expect_str_eq(p->name, q->name);
        cr_expect_eq(p->mode, q->mode, "%s", p->name);
        cr_expect_str_eq(p->backend, q->backend, "%s", p->name);
        cr_expect_eq(p->cert_manual, q->cert_manual, "%s", p->name);
        cr_expect_eq(p->redirect_http, q->redirect_http, "%s", p->name);
        cr_expect_eq(p->hsts, q->hsts, "%s", p->name);
        cr_expect_eq(p->http2, q->http2, "%s", p->name);
        cr_assert_eq(p->n_headers, q->n_headers, "%s", p->name);
        for (size_t j = 0; j < p->n_headers; j++) {
            cr_expect_str_eq(p->headers[j].name, q->headers[j].name);
            cr_expect_str_eq(p->headers[j].value, q->headers[j].value);
        }
    }
}

static int lookup(const struct pt_snapshot *s, const char *name)
{
    return pt_route_lookup(s->routes, name, strlen(name));
}

/* ---- round trip ---------------------------------------------------------- */

Test(snapshot, roundtrip_rich)
{
    struct pt_snapshot *s = rich_snapshot();
    struct pt_wbuf w;
    encode(s, &w);
    cr_assert_gt(w.len, 4);
    cr_expect(memcmp(w.data, "PTS1", 4) == 0);

    struct pt_snapshot *d = (struct pt_snapshot *)0x1;
    int rc = decode_guarded(w.data, w.len, &d);
    cr_assert_eq(rc, 0, "decode: %s", pt_strerror(rc));
    cr_assert_not_null(d);
    cr_expect_eq(d->refs, 1);
    expect_snapshots_eq(s, d);

    /* Links resolved and routes built by decode. */
    cr_assert_not_null(d->routes);
    cr_expect_eq(d->domains[0].backend_ix, 0);
    cr_expect_eq(d->domains[1].backend_ix, 1);
    cr_expect_eq(d->domains[2].backend_ix, 2);
    cr_expect_eq(d->domains[3].backend_ix, 2);
    cr_expect_eq(d->domains[4].backend_ix, 0);
    cr_expect_eq(lookup(d, "cloud.example.org"), 0);
    cr_expect_eq(lookup(d, "CLOUD.Example.org."), 0);
    cr_expect_eq(lookup(d, "x.example.org"), 1);
    cr_expect_eq(lookup(d, "a.b.example.org"), 1);
    cr_expect_eq(lookup(d, "example.com"), 2);
    cr_expect_eq(pt_route_lookup(d->routes, "", 0), 2);
    cr_expect_eq(lookup(d, "xn--bcher-kva.example"), 3);
    cr_expect_eq(lookup(d, "localhost"), 4);

    /* Re-encoding the decoded snapshot gives the same bytes. */
    struct pt_wbuf w2;
    encode(d, &w2);
    cr_expect_eq(w2.len, w.len);
    cr_expect(w2.len == w.len && memcmp(w.data, w2.data, w.len) == 0);

    pt_wbuf_free(&w2);
    pt_wbuf_free(&w);
    pt_snap_unref(d);
    pt_snap_unref(s);
}

Test(snapshot, roundtrip_empty)
{
    struct pt_snapshot *s = snap_new(0, 0);
    s->version = 1;
    struct pt_wbuf w;
    encode(s, &w);
    struct pt_snapshot *d = NULL;
    cr_assert_eq(decode_guarded(w.data, w.len, &d), 0);
    expect_snapshots_eq(s, d);
    cr_assert_not_null(d->routes);
    cr_expect_eq(lookup(d, "example.org"), -1);
    cr_expect_eq(pt_route_lookup(d->routes, "", 0), -1);
    pt_wbuf_free(&w);
    pt_snap_unref(d);
    pt_snap_unref(s);
}

Test(snapshot, roundtrip_extremes)
{
    struct pt_snapshot *s = snap_new(1, 1);
    s->version = UINT64_MAX;
    s->settings.hello_timeout_ms = UINT32_MAX;
    s->settings.https_port = 65535;
    add_trusted(s, "0.0.0.0/0");
    add_trusted(s, "::/0");
    add_trusted(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
    /* A 63-byte backend name, 16 servers, 16 http servers. */
    char bname[64];
    memset(bname, 'b', 63);
    bname[63] = '\0';
    mk_backend(&s->backends[0], bname, PT_PP_V2, true, true, NULL, NULL);
    for (int i = 0; i < PT_SERVERS_MAX; i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "10.0.0.%d:%d", i + 1, 65535 - i);
        hp(&s->backends[0].servers[s->backends[0].n_servers++], buf);
        snprintf(buf, sizeof(buf), "[2001:db8::%x]:%d", i + 1, i + 1);
        hp(&s->backends[0].http_servers[s->backends[0].n_http_servers++], buf);
    }
    s->n_backends = 1;
    /* A 253-byte domain name and 64 headers. */
    char dname[254];
    for (int i = 0; i < 253; i++)
        dname[i] = (i % 64 == 63) ? '.' : 'a';
    dname[253] = '\0';
    mk_domain(&s->domains[0], dname, PT_MODE_OFFLOAD, bname, true, true, true, NULL);
    for (int i = 0; i < PT_HEADERS_MAX; i++) {
        char k[32];
        snprintf(k, sizeof(k), "X-H%d", i);
        s->domains[0].headers[i].name = pt_xstrdup(k);
        s->domains[0].headers[i].value = pt_xcalloc(4097, 1);
        memset(s->domains[0].headers[i].value, 'v', 4096);
    }
    s->domains[0].n_headers = PT_HEADERS_MAX;
    s->n_domains = 1;

    struct pt_wbuf w;
    encode(s, &w);
    struct pt_snapshot *d = NULL;
    int rc = decode_guarded(w.data, w.len, &d);
    cr_assert_eq(rc, 0, "decode: %s", pt_strerror(rc));
    expect_snapshots_eq(s, d);
    cr_expect_eq(lookup(d, dname), 0);
    pt_wbuf_free(&w);
    pt_snap_unref(d);
    pt_snap_unref(s);
}

/* The shortest legal domain record: the catch-all "*" on a backend with a
 * one-letter name ([a-z0-9] is a valid backend name) takes 16 bytes. */
Test(snapshot, roundtrip_catchall_on_one_letter_backend)
{
    struct pt_snapshot *s = snap_new(1, 1);
    s->version = 7;
    mk_backend(&s->backends[0], "a", PT_PP_NONE, false, true, "192.0.2.1:443", NULL, NULL);
    s->n_backends = 1;
    mk_domain(&s->domains[0], "*", PT_MODE_PASSTHROUGH, "a", false, true, false, NULL);
    s->n_domains = 1;

    struct pt_wbuf w;
    encode(s, &w);
    struct pt_snapshot *d = NULL;
    int rc = decode_guarded(w.data, w.len, &d);
    cr_expect_eq(rc, 0, "a valid snapshot (domain \"*\" -> backend \"a\") was refused: %s",
                 pt_strerror(rc));
    if (rc == 0) {
        expect_snapshots_eq(s, d);
        cr_expect_eq(lookup(d, "anything.example"), 0);
    }
    pt_wbuf_free(&w);
    pt_snap_unref(d);
    pt_snap_unref(s);
}

/* Same with several such domains packed together (the last one is the one
 * checked against the bytes left). */
Test(snapshot, roundtrip_short_names)
{
    struct pt_snapshot *s = snap_new(2, 3);
    mk_backend(&s->backends[0], "a", PT_PP_NONE, false, true, "a:1", NULL, NULL);
    mk_backend(&s->backends[1], "b", PT_PP_NONE, false, true, "b:2", NULL, NULL);
    s->n_backends = 2;
    mk_domain(&s->domains[0], "x", PT_MODE_PASSTHROUGH, "a", false, true, false, NULL);
    mk_domain(&s->domains[1], "y", PT_MODE_PASSTHROUGH, "b", false, true, false, NULL);
    mk_domain(&s->domains[2], "*", PT_MODE_PASSTHROUGH, "a", false, true, false, NULL);
    s->n_domains = 3;

    struct pt_wbuf w;
    encode(s, &w);
    struct pt_snapshot *d = NULL;
    int rc = decode_guarded(w.data, w.len, &d);
    cr_expect_eq(rc, 0, "valid snapshot with 1-letter names refused: %s", pt_strerror(rc));
    if (rc == 0) {
        expect_snapshots_eq(s, d);
        cr_expect_eq(lookup(d, "x"), 0);
        cr_expect_eq(lookup(d, "y"), 1);
        cr_expect_eq(lookup(d, "z"), 2);
    }
    pt_wbuf_free(&w);
    pt_snap_unref(d);
    pt_snap_unref(s);
}

Test(snapshot, roundtrip_large)
{
    enum { NB = 100, ND = 1000 };
    struct pt_snapshot *s = snap_new(NB, ND);
    s->version = 42;
    for (int i = 0; i < NB; i++) {
        char name[32], srv[64], hs[64];
        snprintf(name, sizeof(name), "be-%03d", i);
        snprintf(srv, sizeof(srv), "10.%d.%d.1:443", i / 256, i % 256);
        snprintf(hs, sizeof(hs), "host%d.lan:80", i);
        mk_backend(&s->backends[i], name, (enum pt_pp_version)(i % 3), i % 2, i % 5 != 0,
                   srv, NULL, hs, NULL);
        s->n_backends++;
    }
    /* 998 exact or wildcard names, then "*" and a single-label name. */
    for (int i = 0; i < ND - 2; i++) {
        char name[64], be[32];
        if (i % 10 == 9)
            snprintf(name, sizeof(name), "*.w%d.example.org", i);
        else
            snprintf(name, sizeof(name), "d%d.example.org", i);
        snprintf(be, sizeof(be), "be-%03d", i % NB);
        mk_domain(&s->domains[i], name, (enum pt_mode)(i % 2), be, i % 3 == 0, i % 4 != 0,
                  i % 7 == 0, NULL);
        if (i % 50 == 0) {
            s->domains[i].headers[0].name = pt_xstrdup("X-Route");
            s->domains[i].headers[0].value = pt_xstrdup(name);
            s->domains[i].n_headers = 1;
        }
        s->n_domains++;
    }
    mk_domain(&s->domains[ND - 2], "*", PT_MODE_PASSTHROUGH, "be-000", false, true, false,
              NULL);
    mk_domain(&s->domains[ND - 1], "intranet", PT_MODE_OFFLOAD, "be-099", false, true,
              false, NULL);
    s->n_domains = ND;

    struct pt_wbuf w;
    encode(s, &w);
    struct pt_snapshot *d = NULL;
    int rc = decode_guarded(w.data, w.len, &d);
    cr_assert_eq(rc, 0, "decode: %s", pt_strerror(rc));
    expect_snapshots_eq(s, d);

    for (int i = 0; i < ND - 2; i++) {
        char key[64];
        int want = i;
        if (i % 10 == 9)
            snprintf(key, sizeof(key), "host.W%d.example.org", i);
        else
            snprintf(key, sizeof(key), "D%d.example.org.", i);
        int got = lookup(d, key);
        cr_expect_eq(got, want, "%s: got %d, want %d", key, got, want);
        if (got >= 0) {
            const struct pt_domain *dom = &d->domains[got];
            cr_expect_eq(dom->backend_ix, (uint32_t)(i % NB));
            cr_expect_str_eq(d->backends[dom->backend_ix].name, dom->backend);
        }
    }
    cr_expect_eq(lookup(d, "w9.example.org"), ND - 2); /* wildcard needs a label */
    cr_expect_eq(lookup(d, "nope.example.net"), ND - 2);
    cr_expect_eq(lookup(d, "intranet"), ND - 1);
    cr_expect_eq(d->domains[ND - 1].backend_ix, 99);
    cr_expect_not_null(pt_snap_domain(d, "d500.example.org"));
    cr_expect_null(pt_snap_domain(d, "d500.example.net"));

    pt_wbuf_free(&w);
    pt_snap_unref(d);
    pt_snap_unref(s);
}

/* ---- decode refuses ------------------------------------------------------ */

Test(snapshot, decode_wrong_magic)
{
    struct pt_snapshot *s = rich_snapshot();
    struct pt_wbuf w;
    encode(s, &w);
    static const char *const bad[] = {"PTS2", "pts1", "PTS0", "\0\0\0\0", "XTS1"};
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
        memcpy(w.data, bad[i], 4);
        struct pt_snapshot *d = (struct pt_snapshot *)0x1;
        cr_expect_eq(decode_guarded(w.data, w.len, &d), PT_EMALFORMED, "magic #%zu", i);
        cr_expect_null(d);
    }
    pt_wbuf_free(&w);
    pt_snap_unref(s);
}

Test(snapshot, decode_every_truncation)
{
    struct pt_snapshot *s = rich_snapshot();
    struct pt_wbuf w;
    encode(s, &w);
    for (size_t n = 0; n < w.len; n++) {
        struct pt_snapshot *d = (struct pt_snapshot *)0x1;
        int rc = decode_guarded(w.data, n, &d);
        cr_expect_eq(rc, PT_EMALFORMED, "prefix of %zu/%zu bytes: got %d", n, w.len, rc);
        cr_expect_null(d, "prefix of %zu bytes", n);
        if (rc == 0)
            pt_snap_unref(d);
    }
    /* The full buffer (the control) decodes. */
    struct pt_snapshot *d = NULL;
    cr_expect_eq(decode_guarded(w.data, w.len, &d), 0);
    pt_snap_unref(d);
    pt_wbuf_free(&w);
    pt_snap_unref(s);
}

Test(snapshot, decode_trailing_bytes)
{
    struct pt_snapshot *s = rich_snapshot();
    struct pt_wbuf w;
    encode(s, &w);
    for (size_t extra = 1; extra <= 8; extra++) {
        pt_wbuf_u8(&w, 0);
        struct pt_snapshot *d = (struct pt_snapshot *)0x1;
        cr_expect_eq(decode_guarded(w.data, w.len, &d), PT_EMALFORMED, "%zu extra", extra);
        cr_expect_null(d);
    }
    pt_wbuf_free(&w);
    pt_snap_unref(s);
}

Test(snapshot, decode_domain_with_missing_backend)
{
    struct pt_snapshot *s = snap_new(1, 2);
    mk_backend(&s->backends[0], "real", PT_PP_NONE, false, true, "192.0.2.1:443", NULL,
               NULL);
    s->n_backends = 1;
    mk_domain(&s->domains[0], "a.example.org", PT_MODE_PASSTHROUGH, "real", false, true,
              false, NULL);
    mk_domain(&s->domains[1], "b.example.org", PT_MODE_PASSTHROUGH, "ghost", false, true,
              false, NULL);
    s->n_domains = 2;
    struct pt_wbuf w;
    encode(s, &w);
    struct pt_snapshot *d = (struct pt_snapshot *)0x1;
    cr_expect_eq(decode_guarded(w.data, w.len, &d), PT_EMALFORMED);
    cr_expect_null(d);
    pt_wbuf_free(&w);
    pt_snap_unref(s);
}

/* Hand-built buffers: header + settings with no trusted proxies. */
static void hdr(struct pt_wbuf *w)
{
    memset(w, 0, sizeof(*w));
    pt_wbuf_put(w, "PTS1", 4);
    pt_wbuf_u64(w, 9);
    for (int i = 0; i < 6; i++) /* the u32 settings */
        pt_wbuf_u32(w, 1000);
    pt_wbuf_u16(w, 443);
    pt_wbuf_u8(w, 1); /* access_log */
    for (int i = 0; i < 80; i++)
        pt_wbuf_u8(w, 0); /* ticket key */
}

/* Empty trailing sections (bans, certificates, ACME tokens), then the
 * streams' lid_max and an empty stream list. */
static void tail(struct pt_wbuf *w)
{
    for (int i = 0; i < 5; i++)
        pt_wbuf_u32(w, 0);
}

/* Caps the address space of this (forked) test process at its current size
 * plus 256 MiB, so an allocation driven by a lying count aborts the test. */
static void cap_memory(void)
{
#ifndef __SANITIZE_ADDRESS__
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    cr_assert_not_null(f);
    cr_assert_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = pages * (unsigned long)sysconf(_SC_PAGESIZE) + (256ul << 20);
    cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
}

static int decode_wbuf(struct pt_wbuf *w)
{
    struct pt_snapshot *d = (struct pt_snapshot *)0x1;
    int rc = decode_guarded(w->data, w->len, &d);
    cr_expect_null(d);
    if (rc == 0)
        pt_snap_unref(d);
    pt_wbuf_free(w);
    return rc;
}

Test(snapshot, decode_huge_counts_do_not_allocate)
{
    cap_memory();
    static const uint32_t counts[] = {1u << 24, (1u << 24) - 1, 1u << 20, 0x7fffffffu,
                                      0xffffffffu, 4096, 100000};
    struct pt_wbuf w;
    for (size_t i = 0; i < PT_ARRAY_LEN(counts); i++) {
        uint32_t n = counts[i];
        /* n_trusted */
        hdr(&w);
        pt_wbuf_u32(&w, n);
        pt_wbuf_put(&w, "\x04", 1);
        cr_expect_eq(decode_wbuf(&w), PT_EMALFORMED, "n_trusted=%u", n);
        /* n_backends */
        hdr(&w);
        pt_wbuf_u32(&w, 0);
        pt_wbuf_u32(&w, n);
        pt_wbuf_u32(&w, 0);
        cr_expect_eq(decode_wbuf(&w), PT_EMALFORMED, "n_backends=%u", n);
        /* n_domains */
        hdr(&w);
        pt_wbuf_u32(&w, 0);
        pt_wbuf_u32(&w, 0);
        pt_wbuf_u32(&w, n);
        for (int k = 0; k < 4; k++)
            pt_wbuf_u32(&w, 0);
        cr_expect_eq(decode_wbuf(&w), PT_EMALFORMED, "n_domains=%u", n);
        /* a backend's server count */
        hdr(&w);
        pt_wbuf_u32(&w, 0);
        pt_wbuf_u32(&w, 1);
        pt_wbuf_str(&w, "b");
        pt_wbuf_u8(&w, 0);
        pt_wbuf_u8(&w, 0);
        pt_wbuf_u8(&w, 1);
        pt_wbuf_u32(&w, n);
        pt_wbuf_str(&w, "a:1");
        pt_wbuf_u32(&w, 0);
        pt_wbuf_u32(&w, 0);
        cr_expect_eq(decode_wbuf(&w), PT_EMALFORMED, "n_servers=%u", n);
        /* a domain's header count */
        hdr(&w);
        pt_wbuf_u32(&w, 0);
        pt_wbuf_u32(&w, 1);
        pt_wbuf_str(&w, "b");
        pt_wbuf_u8(&w, 0);
        pt_wbuf_u8(&w, 0);
        pt_wbuf_u8(&w, 1);
        pt_wbuf_u32(&w, 1);
        pt_wbuf_str(&w, "a:1");
        pt_wbuf_u32(&w, 0);
        pt_wbuf_u32(&w, 1);
        pt_wbuf_str(&w, "example.org");
        pt_wbuf_u8(&w, 0);
        pt_wbuf_str(&w, "b");
        pt_wbuf_u8(&w, 0);
        pt_wbuf_u32(&w, n);
        pt_wbuf_str(&w, "X-A");
        pt_wbuf_str(&w, "b");
        cr_expect_eq(decode_wbuf(&w), PT_EMALFORMED, "n_headers=%u", n);
        /* a string length */
        hdr(&w);
        pt_wbuf_u32(&w, 0);
        pt_wbuf_u32(&w, 1);
        pt_wbuf_u32(&w, n);
        pt_wbuf_put(&w, "abcdefgh", 8);
        cr_expect_eq(decode_wbuf(&w), PT_EMALFORMED, "string length=%u", n);
    }
}

/* The hand-built buffers above are right apart from the count: the same
 * layout with honest counts decodes. */
Test(snapshot, decode_handbuilt_control)
{
    struct pt_wbuf w;
    hdr(&w);
    pt_wbuf_u32(&w, 0);
    pt_wbuf_u32(&w, 1);
    pt_wbuf_str(&w, "b");
    pt_wbuf_u8(&w, 0);
    pt_wbuf_u8(&w, 0);
    pt_wbuf_u8(&w, 1);
    pt_wbuf_u32(&w, 1);
    pt_wbuf_str(&w, "a:1");
    pt_wbuf_u32(&w, 0);
    pt_wbuf_u8(&w, 0);  /* no health check */
    pt_wbuf_u32(&w, 0);
    pt_wbuf_u32(&w, 0);
    pt_wbuf_u8(&w, 0);
    pt_wbuf_u8(&w, 0);
    pt_wbuf_str(&w, "");
    pt_wbuf_u32(&w, 1);
    pt_wbuf_str(&w, "example.org");
    pt_wbuf_u8(&w, 0);
    pt_wbuf_str(&w, "b");
    pt_wbuf_u8(&w, 0);
    pt_wbuf_u32(&w, 1);
    pt_wbuf_str(&w, "X-A");
    pt_wbuf_str(&w, "b");
    tail(&w);
    struct pt_snapshot *d = NULL;
    cr_assert_eq(decode_guarded(w.data, w.len, &d), 0);
    cr_expect_eq(d->version, 9);
    cr_expect_eq(d->n_backends, 1);
    cr_expect_eq(d->n_domains, 1);
    cr_expect_str_eq(d->domains[0].headers[0].name, "X-A");
    cr_expect_eq(lookup(d, "example.org"), 0);
    pt_snap_unref(d);
    pt_wbuf_free(&w);
}

/* Field values outside their enum or containing a NUL byte. */
Test(snapshot, decode_bad_field_values)
{
    struct pt_snapshot *s = snap_new(1, 1);
    mk_backend(&s->backends[0], "b", PT_PP_NONE, false, true, "192.0.2.1:443", NULL, NULL);
    s->n_backends = 1;
    mk_domain(&s->domains[0], "example.org", PT_MODE_PASSTHROUGH, "b", false, true, false,
              NULL);
    s->n_domains = 1;
    add_trusted(s, "10.0.0.0/8");
    struct pt_wbuf w;
    encode(s, &w);

    /* Offsets in this layout. */
    size_t off_fam = 4 + 8 + 24 + 2 + 1 + 80 + 4; /* first trusted family */
    size_t off_bits = off_fam + 1 + 16;    /* its prefix length */
    size_t off_b = off_bits + 1 + 4;       /* first backend */
    size_t off_pp = off_b + 4 + 1;         /* its proxy_protocol */
    size_t off_srv = off_pp + 3 + 4 + 4;   /* first server text */
    size_t off_check = off_srv + strlen("192.0.2.1:443") + 4; /* health check kind */
    size_t off_d = off_check + 1 + 4 + 4 + 1 + 1 + 4 + 4; /* first domain */
    size_t off_mode = off_d + 4 + strlen("example.org");

    struct {
        size_t off;
        uint8_t val;
        const char *what;
    } cases[] = {
        {off_fam, 5, "family 5"},
        {off_fam, 0, "family 0"},
        {off_bits, 33, "IPv4 prefix 33"},
        {off_pp, 3, "proxy_protocol 3"},
        {off_pp, 0xff, "proxy_protocol 255"},
        {off_srv, ' ', "server with a space"},
        {off_srv + 1, 0, "server with a NUL"},
        {off_srv + strlen("192.0.2.1:44"), 'x', "server with a bad port"},
        {off_check, 4, "health check kind 4"},
        {off_mode, 2, "mode 2"},
        {off_d + 4 + 3, 0, "domain name with a NUL"},
    };
    /* Sanity of the offsets: the unmodified buffer has what we expect. */
    cr_assert_eq(w.data[off_fam], 4);
    cr_assert_eq(w.data[off_bits], 8);
    cr_assert(memcmp(w.data + off_srv, "192.0.2.1:443", 13) == 0);
    cr_assert(memcmp(w.data + off_d + 4, "example.org", 11) == 0);
    cr_assert_eq(w.data[off_mode], 0);
    cr_assert_eq(w.data[off_check], PT_CHECK_NONE);

    for (size_t i = 0; i < PT_ARRAY_LEN(cases); i++) {
        uint8_t save = w.data[cases[i].off];
        w.data[cases[i].off] = cases[i].val;
        struct pt_snapshot *d = (struct pt_snapshot *)0x1;
        cr_expect_eq(decode_guarded(w.data, w.len, &d), PT_EMALFORMED, "%s", cases[i].what);
        cr_expect_null(d, "%s", cases[i].what);
        w.data[cases[i].off] = save;
    }
    struct pt_snapshot *d = NULL;
    cr_expect_eq(decode_guarded(w.data, w.len, &d), 0);
    pt_snap_unref(d);
    pt_wbuf_free(&w);
    pt_snap_unref(s);
}

/* The header promises PT_EMALFORMED "for any inconsistency": two domains
 * with the same name must be refused, not trip an assertion in the route
 * table builder (a crash here fails the test). */
Test(snapshot, decode_duplicate_domain_names)
{
    struct pt_snapshot *s = snap_new(1, 2);
    mk_backend(&s->backends[0], "b", PT_PP_NONE, false, true, "192.0.2.1:443", NULL, NULL);
    s->n_backends = 1;
    mk_domain(&s->domains[0], "example.org", PT_MODE_PASSTHROUGH, "b", false, true, false,
              NULL);
    mk_domain(&s->domains[1], "example.org", PT_MODE_OFFLOAD, "b", false, true, false,
              NULL);
    s->n_domains = 2;
    struct pt_wbuf w;
    encode(s, &w);
    struct pt_snapshot *d = (struct pt_snapshot *)0x1;
    cr_expect_eq(decode_guarded(w.data, w.len, &d), PT_EMALFORMED);
    cr_expect_null(d);
    pt_wbuf_free(&w);
    pt_snap_unref(s);
}

/* Likewise a domain name that is not in normal form (upper case) or not a
 * name at all. */
Test(snapshot, decode_unnormalised_domain_name)
{
    static const char *const names[] = {"Example.ORG", "a..b", "bad name", ""};
    for (size_t i = 0; i < PT_ARRAY_LEN(names); i++) {
        struct pt_snapshot *s = snap_new(1, 1);
        mk_backend(&s->backends[0], "b", PT_PP_NONE, false, true, "192.0.2.1:443", NULL,
                   NULL);
        s->n_backends = 1;
        mk_domain(&s->domains[0], names[i], PT_MODE_PASSTHROUGH, "b", false, true, false,
                  NULL);
        s->n_domains = 1;
        struct pt_wbuf w;
        encode(s, &w);
        struct pt_snapshot *d = (struct pt_snapshot *)0x1;
        cr_expect_eq(decode_guarded(w.data, w.len, &d), PT_EMALFORMED, "'%s'", names[i]);
        cr_expect_null(d);
        pt_wbuf_free(&w);
        pt_snap_unref(s);
    }
}

/* ---- link ---------------------------------------------------------------- */

Test(snapshot, link_resolves_and_rebuilds)
{
    struct pt_snapshot *s = snap_new(2, 2);
    mk_backend(&s->backends[0], "one", PT_PP_NONE, false, true, "192.0.2.1:443", NULL,
               NULL);
    mk_backend(&s->backends[1], "two", PT_PP_NONE, false, true, "192.0.2.2:443", NULL,
               NULL);
    s->n_backends = 2;
    mk_domain(&s->domains[0], "a.example.org", PT_MODE_PASSTHROUGH, "two", false, true,
              false, NULL);
    mk_domain(&s->domains[1], "*.example.org", PT_MODE_PASSTHROUGH, "one", false, true,
              false, NULL);
    s->n_domains = 2;
    cr_assert_eq(pt_snap_link(s), 0);
    cr_expect_eq(s->domains[0].backend_ix, 1);
    cr_expect_eq(s->domains[1].backend_ix, 0);
    cr_expect_eq(lookup(s, "a.example.org"), 0);
    cr_expect_eq(lookup(s, "b.example.org"), 1);

    /* Linking again (after a change) replaces the table without leaking. */
    free(s->domains[0].backend);
    s->domains[0].backend = pt_xstrdup("one");
    cr_assert_eq(pt_snap_link(s), 0);
    cr_expect_eq(s->domains[0].backend_ix, 0);
    cr_expect_eq(lookup(s, "a.example.org"), 0);
    pt_snap_unref(s);
}

Test(snapshot, link_missing_backend)
{
    struct pt_snapshot *s = snap_new(1, 1);
    mk_backend(&s->backends[0], "one", PT_PP_NONE, false, true, "192.0.2.1:443", NULL,
               NULL);
    s->n_backends = 1;
    mk_domain(&s->domains[0], "a.example.org", PT_MODE_PASSTHROUGH, "One", false, true,
              false, NULL);
    s->n_domains = 1;
    cr_expect_eq(pt_snap_link(s), PT_ENOTFOUND);
    pt_snap_unref(s);

    /* No backends at all. */
    s = snap_new(0, 1);
    mk_domain(&s->domains[0], "a.example.org", PT_MODE_PASSTHROUGH, "one", false, true,
              false, NULL);
    s->n_domains = 1;
    cr_expect_eq(pt_snap_link(s), PT_ENOTFOUND);
    pt_snap_unref(s);
}

/* ---- refcounting --------------------------------------------------------- */

Test(snapshot, refcount)
{
    struct pt_snapshot *s = rich_snapshot();
    cr_assert_eq(pt_snap_link(s), 0);
    cr_expect_eq(s->refs, 1);
    cr_expect_eq(pt_snap_ref(s), s);
    cr_expect_eq(pt_snap_ref(s), s);
    cr_expect_eq(s->refs, 3);
    pt_snap_unref(s);
    pt_snap_unref(s);
    cr_expect_eq(s->refs, 1);
    /* Still usable while a reference remains. */
    cr_expect_eq(lookup(s, "cloud.example.org"), 0);
    pt_snap_unref(s); /* last one frees: ASan reports a leak otherwise */
    pt_snap_unref(NULL);
}

/* ---- copy / clear / names ------------------------------------------------ */

Test(snapshot, copy_is_deep)
{
    struct pt_snapshot *s = rich_snapshot();
    struct pt_backend b;
    struct pt_domain d;
    pt_backend_copy(&b, &s->backends[0]);
    pt_domain_copy(&d, &s->domains[1]);
    cr_expect_neq(b.name, s->backends[0].name);
    cr_expect_neq(b.servers, s->backends[0].servers);
    cr_expect_neq(d.headers, s->domains[1].headers);
    cr_expect_neq(d.headers[0].name, s->domains[1].headers[0].name);
    pt_snap_unref(s); /* the copies must not depend on the original */
    cr_expect_str_eq(b.name, "yunohost1");
    cr_expect_eq(b.n_servers, 3);
    cr_expect_str_eq(b.servers[2].host, "app.lan");
    cr_expect_eq(b.n_http_servers, 1);
    cr_expect_str_eq(d.name, "*.example.org");
    cr_expect_str_eq(d.backend, "web_2");
    cr_expect_eq(d.n_headers, 2);
    cr_expect_str_eq(d.headers[1].value, "DENY");
    pt_backend_clear(&b);
    pt_domain_clear(&d);
    cr_expect_null(b.name);
    cr_expect_eq(b.n_servers, 0);
    cr_expect_null(d.headers);
    cr_expect_eq(d.n_headers, 0);
    pt_backend_clear(&b); /* twice is harmless */
    pt_domain_clear(&d);
}

Test(snapshot, names)
{
    cr_expect_str_eq(pt_mode_name(PT_MODE_PASSTHROUGH), "passthrough");
    cr_expect_str_eq(pt_mode_name(PT_MODE_OFFLOAD), "offload");
    cr_expect_str_eq(pt_pp_name(PT_PP_NONE), "none");
    cr_expect_str_eq(pt_pp_name(PT_PP_V1), "v1");
    cr_expect_str_eq(pt_pp_name(PT_PP_V2), "v2");
}

/* Ban deltas: add and remove records round-trip; every truncation, a bad
 * magic, a bad op and trailing bytes are refused. */
Test(snapshot, ban_delta_roundtrip_and_refusals)
{
    struct pt_ban_change ch[2] = {{false, {{0}, 1234, (char *)"fail2ban sshd"}},
                                  {true, {{0}, 0, NULL}}};
    cr_assert_eq(pt_cidr_parse("192.0.2.0/24", 12, &ch[0].ban.net, NULL), 0);
    cr_assert_eq(pt_cidr_parse("2001:db8::7", 11, &ch[1].ban.net, NULL), 0);
    struct pt_wbuf w = {0};
    pt_snap_bans_encode(42, ch, 2, &w);
    uint64_t v = 0;
    struct pt_ban_change *out = NULL;
    size_t n = 0;
    cr_assert_eq(pt_snap_bans_decode(w.data, w.len, &v, &out, &n), 0);
    cr_expect_eq(v, 42);
    cr_assert_eq(n, 2);
    cr_expect(!out[0].remove);
    cr_expect(out[1].remove);
    cr_expect_eq(out[0].ban.expires, 1234);
    cr_expect_str_eq(out[0].ban.reason, "fail2ban sshd");
    cr_expect_eq(memcmp(&out[0].ban.net, &ch[0].ban.net, sizeof(ch[0].ban.net)), 0);
    cr_expect_eq(out[1].ban.net.family, AF_INET6);
    cr_expect_eq(out[1].ban.net.bits, 128);
    pt_snap_bans_free(out, n);
    for (size_t cut = 0; cut < w.len; cut++) {
        cr_expect_eq(pt_snap_bans_decode(w.data, cut, &v, &out, &n), PT_EMALFORMED,
                     "truncated at %zu", cut);
        cr_expect_null(out);
    }
    uint8_t *bad = malloc(w.len + 1);
    memcpy(bad, w.data, w.len);
    bad[w.len] = 0;
    cr_expect_eq(pt_snap_bans_decode(bad, w.len + 1, &v, &out, &n), PT_EMALFORMED,
                 "trailing byte");
    bad[4 + 8 + 4] = 2; /* op of the first record */
    cr_expect_eq(pt_snap_bans_decode(bad, w.len, &v, &out, &n), PT_EMALFORMED, "bad op");
    memcpy(bad, "PTS1", 4);
    cr_expect_eq(pt_snap_bans_decode(bad, w.len, &v, &out, &n), PT_EMALFORMED, "magic");
    free(bad);
    pt_wbuf_free(&w);
}

Test(snapshot, health_check_roundtrip)
{
    struct pt_snapshot *s = snap_new(1, 0);
    mk_backend(&s->backends[0], "b", PT_PP_NONE, true, false, "192.0.2.1:443", NULL, NULL);
    s->backends[0].check = (struct pt_check){PT_CHECK_HTTP, 5000, 2000, 2, 3, "/healthz?x=1"};
    s->n_backends = 1;
    struct pt_wbuf w;
    encode(s, &w);
    struct pt_snapshot *d = NULL;
    cr_assert_eq(decode_guarded(w.data, w.len, &d), 0);
    const struct pt_check *c = &d->backends[0].check;
    cr_expect_eq(c->kind, PT_CHECK_HTTP);
    cr_expect_eq(c->interval_ms, 5000);
    cr_expect_eq(c->timeout_ms, 2000);
    cr_expect_eq(c->rise, 2);
    cr_expect_eq(c->fall, 3);
    cr_expect_str_eq(c->path, "/healthz?x=1");
    pt_snap_unref(d);
    pt_snap_unref(s);
    pt_wbuf_free(&w);
}
