#include <criterion/criterion.h>

#include "common/delta.h"

#include <stdio.h>

/* ---- builders ------------------------------------------------------------ */

static struct pt_backend backend(const char *name, const char *server)
{
    struct pt_backend b = {0};
    b.name = pt_xstrdup(name);
    b.n_servers = 1;
    b.servers = pt_xcalloc(1, sizeof(*b.servers));
    cr_assert_eq(pt_hostport_parse(server, strlen(server), &b.servers[0], NULL), 0);
    b.http_servers = pt_xcalloc(1, sizeof(*b.http_servers));
    return b;
}

static struct pt_domain domain(const char *name, const char *be, enum pt_mode mode)
{
    struct pt_domain d = {0};
    d.name = pt_xstrdup(name);
    d.backend = pt_xstrdup(be);
    d.mode = mode;
    d.headers = pt_xcalloc(1, sizeof(*d.headers));
    return d;
}

/* A snapshot as a worker holds it: encoded and decoded, at version 1, with
 * backends "a" and "b" and the domains <names> on "a". */
static struct pt_snapshot *base(const char *const *names, size_t n)
{
    struct pt_snapshot *s = pt_xcalloc(1, sizeof(*s));
    s->refs = 1;
    s->version = 1;
    s->n_backends = 2;
    s->backends = pt_xcalloc(2, sizeof(*s->backends));
    s->backends[0] = backend("a", "127.0.0.1:1001");
    s->backends[1] = backend("b", "127.0.0.1:1002");
    s->n_domains = n;
    s->domains = pt_xcalloc(n ? n : 1, sizeof(*s->domains));
    for (size_t i = 0; i < n; i++)
        s->domains[i] = domain(names[i], "a", PT_MODE_PASSTHROUGH);
    cr_assert_eq(pt_snap_link(s), 0);
    struct pt_wbuf w = {0};
    pt_snap_encode(s, &w);
    pt_snap_unref(s);
    struct pt_snapshot *out = NULL;
    cr_assert_eq(pt_snap_decode(w.data, w.len, &out), 0);
    pt_wbuf_free(&w);
    return out;
}

/* The wire round trip every delta takes to a worker. */
static void ship(struct pt_delta *d, uint64_t version)
{
    struct pt_wbuf w = {0};
    d->version = version;
    pt_delta_encode(d, &w);
    pt_delta_clear(d);
    cr_assert_eq(pt_delta_decode(w.data, w.len, d), 0);
    cr_assert_eq(d->version, version);
    pt_wbuf_free(&w);
}

/* The backend name <host> routes to, or NULL. */
static const char *route(const struct pt_snapshot *s, const char *host)
{
    int ix = pt_route_lookup(s->routes, host, strlen(host));
    if (ix < 0)
        return NULL;
    cr_assert_lt((size_t)ix, s->n_domains);
    const struct pt_domain *d = &s->domains[ix];
    cr_assert_str_eq(s->backends[d->backend_ix].name, d->backend);
    return d->backend;
}

static void put_domain(struct pt_delta *d, const char *name, const char *be)
{
    struct pt_domain dm = domain(name, be, PT_MODE_PASSTHROUGH);
    pt_delta_put_domain(d, &dm);
}

static void put_backend(struct pt_delta *d, const char *name, const char *server)
{
    struct pt_backend b = backend(name, server);
    pt_delta_put_backend(d, &b);
}

/* ---- tests --------------------------------------------------------------- */

Test(delta, round_trip_keeps_every_field)
{
    struct pt_delta d = {0};
    struct pt_backend b = backend("web", "[::1]:8443");
    b.proxy_protocol = PT_PP_V2;
    b.tls = true;
    b.check.kind = PT_CHECK_HTTP;
    snprintf(b.check.path, sizeof(b.check.path), "/health");
    pt_delta_put_backend(&d, &b);
    struct pt_domain dm = domain("*.example.org", "web", PT_MODE_OFFLOAD);
    dm.hsts = true;
    dm.n_headers = 1;
    dm.headers[0].name = pt_xstrdup("X-A");
    dm.headers[0].value = pt_xstrdup("1");
    pt_delta_put_domain(&d, &dm);
    pt_delta_remove(&d, PT_DELTA_DOMAIN, "old.example.org");
    pt_delta_remove(&d, PT_DELTA_BACKEND, "gone");
    ship(&d, 42);
    cr_assert_eq(d.n, 4);
    cr_assert_eq(d.v[0].kind, PT_DELTA_BACKEND);
    cr_assert_str_eq(d.v[0].backend.name, "web");
    cr_assert_eq(d.v[0].backend.proxy_protocol, PT_PP_V2);
    cr_assert(d.v[0].backend.tls);
    cr_assert_eq(d.v[0].backend.check.kind, PT_CHECK_HTTP);
    cr_assert_str_eq(d.v[0].backend.check.path, "/health");
    cr_assert_eq(d.v[0].backend.servers[0].port, 8443);
    cr_assert_str_eq(d.v[1].domain.name, "*.example.org");
    cr_assert_eq(d.v[1].domain.mode, PT_MODE_OFFLOAD);
    cr_assert(d.v[1].domain.hsts);
    cr_assert_str_eq(d.v[1].domain.headers[0].value, "1");
    cr_assert(d.v[2].remove);
    cr_assert_str_eq(d.v[2].name, "old.example.org");
    cr_assert(d.v[3].remove);
    cr_assert_eq(d.v[3].kind, PT_DELTA_BACKEND);
    pt_delta_clear(&d);
}

Test(delta, truncated_or_bad_bytes_are_refused)
{
    struct pt_delta d = {0};
    put_backend(&d, "web", "127.0.0.1:1");
    put_domain(&d, "a.example.org", "web");
    pt_delta_remove(&d, PT_DELTA_DOMAIN, "b.example.org");
    struct pt_wbuf w = {0};
    pt_delta_encode(&d, &w);
    pt_delta_clear(&d);
    for (size_t n = 0; n < w.len; n++)
        cr_expect_eq(pt_delta_decode(w.data, n, &d), PT_EMALFORMED, "prefix of %zu bytes", n);
    w.data[w.len - 2] = 'X'; /* "b.example.oXg": not a normalised name */
    cr_expect_eq(pt_delta_decode(w.data, w.len, &d), PT_EMALFORMED);
    w.data[0] = 'Q';
    cr_expect_eq(pt_delta_decode(w.data, w.len, &d), PT_EMALFORMED);
    pt_wbuf_free(&w);
    /* A count that promises more changes than the bytes could hold. */
    uint8_t lie[] = {'P', 'T', 'D', '1', 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
    cr_expect_eq(pt_delta_decode(lie, sizeof(lie), &d), PT_EMALFORMED);
    cr_expect_eq(d.n, 0);
}

Test(delta, applies_in_place_when_nothing_else_holds_the_snapshot)
{
    const char *names[] = {"x.example.org", "*.y.example.org", "keep.example.org"};
    struct pt_snapshot *s = base(names, 3), *before = s;
    struct pt_delta d = {0};
    put_domain(&d, "z.example.org", "b");
    pt_delta_remove(&d, PT_DELTA_DOMAIN, "x.example.org");
    put_domain(&d, "*.y.example.org", "b");
    ship(&d, 2);
    bool bc;
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_expect_eq(s, before);
    cr_expect_not(bc);
    cr_expect_eq(s->version, 2);
    cr_expect_eq(s->n_domains, 3);
    cr_expect_str_eq(route(s, "z.example.org"), "b");
    cr_expect_null(route(s, "x.example.org"));
    cr_expect_str_eq(route(s, "q.y.example.org"), "b");
    cr_expect_str_eq(route(s, "KEEP.example.org"), "a");
    pt_snap_unref(s);
}

/* A connection holds the snapshot: it must keep seeing it unchanged, and the
 * two must free cleanly in either order (ASan checks both). */
static void derived(bool old_first)
{
    const char *names[] = {"x.example.org", "y.example.org", "z.example.org"};
    struct pt_snapshot *s = base(names, 3);
    struct pt_snapshot *conn = pt_snap_ref(s);
    const struct pt_domain *held = &conn->domains[pt_route_lookup(conn->routes, "y.example.org", 13)];
    struct pt_delta d = {0};
    pt_delta_remove(&d, PT_DELTA_DOMAIN, "x.example.org");
    put_domain(&d, "y.example.org", "b");
    put_domain(&d, "w.example.org", "a");
    put_backend(&d, "a", "127.0.0.1:2001");
    ship(&d, 7);
    bool bc;
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_assert_neq(s, conn);
    cr_expect(bc);
    cr_expect_eq(conn->version, 1);
    cr_expect_str_eq(route(conn, "x.example.org"), "a");
    cr_expect_str_eq(held->backend, "a");
    cr_expect_eq(conn->backends[0].servers[0].port, 1001);
    cr_expect_eq(s->version, 7);
    cr_expect_null(route(s, "x.example.org"));
    cr_expect_str_eq(route(s, "y.example.org"), "b");
    cr_expect_str_eq(route(s, "w.example.org"), "a");
    cr_expect_str_eq(route(s, "z.example.org"), "a");
    cr_expect_eq(s->backends[0].servers[0].port, 2001);
    /* A second delta while the connection still holds the first one. */
    struct pt_snapshot *conn2 = pt_snap_ref(s);
    pt_delta_remove(&d, PT_DELTA_DOMAIN, "z.example.org");
    ship(&d, 8);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_expect_null(route(s, "z.example.org"));
    cr_expect_str_eq(route(conn2, "z.example.org"), "a");
    if (old_first) {
        pt_snap_unref(conn);
        pt_snap_unref(conn2);
    } else {
        pt_snap_unref(conn2);
        pt_snap_unref(conn);
    }
    cr_expect_str_eq(route(s, "w.example.org"), "a");
    pt_snap_unref(s);
}

Test(delta, derives_a_successor_when_a_connection_holds_the_snapshot)
{
    derived(true);
}

Test(delta, successor_and_predecessors_free_in_any_order)
{
    derived(false);
}

Test(delta, missing_backend_or_unknown_name_changes_nothing)
{
    const char *names[] = {"x.example.org"};
    struct pt_snapshot *s = base(names, 1), *before = s;
    bool bc;
    struct pt_delta d = {0};
    put_domain(&d, "new.example.org", "a");
    put_domain(&d, "bad.example.org", "nope");
    ship(&d, 2);
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), PT_ENOTFOUND);
    pt_delta_clear(&d);
    pt_delta_remove(&d, PT_DELTA_DOMAIN, "never.example.org");
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), PT_ENOTFOUND);
    pt_delta_clear(&d);
    pt_delta_remove(&d, PT_DELTA_BACKEND, "nope");
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), PT_ENOTFOUND);
    pt_delta_clear(&d);
    /* A backend that an earlier change of the same delta removed. */
    pt_delta_remove(&d, PT_DELTA_BACKEND, "b");
    put_domain(&d, "new.example.org", "b");
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), PT_ENOTFOUND);
    pt_delta_clear(&d);
    cr_expect_eq(s, before);
    cr_expect_eq(s->version, 1);
    cr_expect_eq(s->n_domains, 1);
    cr_expect_eq(s->n_backends, 2);
    cr_expect_null(route(s, "new.example.org"));
    pt_snap_unref(s);
}

Test(delta, removing_a_backend_in_use_is_refused)
{
    const char *names[] = {"x.example.org"};
    struct pt_snapshot *s = base(names, 1);
    bool bc;
    struct pt_delta d = {0};
    pt_delta_remove(&d, PT_DELTA_BACKEND, "a");
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), PT_EINUSE);
    pt_delta_clear(&d);
    put_domain(&d, "y.example.org", "b");
    pt_delta_remove(&d, PT_DELTA_BACKEND, "b");
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), PT_EINUSE);
    pt_delta_clear(&d);
    /* Moved off first, in the same delta: fine, and indexes follow. */
    put_backend(&d, "c", "127.0.0.1:3000");
    put_domain(&d, "x.example.org", "c");
    pt_delta_remove(&d, PT_DELTA_BACKEND, "a");
    ship(&d, 3);
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_expect_eq(s->n_backends, 2);
    cr_expect_str_eq(route(s, "x.example.org"), "c");
    pt_snap_unref(s);
}

Test(delta, the_last_change_of_a_name_wins)
{
    const char *names[] = {"x.example.org"};
    struct pt_snapshot *s = base(names, 1);
    bool bc;
    struct pt_delta d = {0};
    put_domain(&d, "dup.example.org", "a");
    put_domain(&d, "dup.example.org", "b");
    put_domain(&d, "gone.example.org", "a");
    pt_delta_remove(&d, PT_DELTA_DOMAIN, "gone.example.org");
    pt_delta_remove(&d, PT_DELTA_DOMAIN, "x.example.org");
    put_domain(&d, "x.example.org", "b");
    ship(&d, 2);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_expect_eq(s->n_domains, 2);
    cr_expect_str_eq(route(s, "dup.example.org"), "b");
    cr_expect_str_eq(route(s, "x.example.org"), "b");
    cr_expect_null(route(s, "gone.example.org"));
    pt_snap_unref(s);
}

/* Many changes against a shadow list: lookups, indexes and the route table's
 * deletions (backward shift) stay consistent through growth. */
Test(delta, thousands_of_changes_match_a_shadow)
{
    struct pt_snapshot *s = base(NULL, 0);
    enum { N = 3000 };
    static bool present[N];
    unsigned seed = 1;
    for (int round = 0; round < 20; round++) {
        struct pt_delta d = {0};
        for (int k = 0; k < 400; k++) {
            seed = seed * 1103515245u + 12345u;
            int i = (int)((seed >> 8) % N);
            char name[64];
            snprintf(name, sizeof(name), "h%d.example.org", i);
            if (present[i] && (seed & 1)) {
                pt_delta_remove(&d, PT_DELTA_DOMAIN, name);
                present[i] = false;
            } else {
                put_domain(&d, name, (seed & 2) ? "a" : "b");
                present[i] = true;
            }
        }
        struct pt_snapshot *hold = (round & 1) ? pt_snap_ref(s) : NULL;
        bool bc;
        ship(&d, (uint64_t)round + 2);
        cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
        pt_delta_clear(&d);
        pt_snap_unref(hold);
        size_t want = 0;
        for (int i = 0; i < N; i++) {
            char name[64];
            snprintf(name, sizeof(name), "h%d.example.org", i);
            want += present[i];
            cr_assert_eq(route(s, name) != NULL, present[i], "%s", name);
        }
        cr_assert_eq(s->n_domains, want);
    }
    pt_snap_unref(s);
}

/* ACME HTTP-01 answers: each snapshot owns its copy, held ones included. */
Test(delta, tokens_come_and_go)
{
    const char *names[] = {"x.example.org"};
    struct pt_snapshot *s = base(names, 1);
    bool bc;
    struct pt_delta d = {0};
    pt_delta_put_token(&d, "tok1", "tok1.thumb");
    pt_delta_put_token(&d, "tok2", "tok2.thumb");
    ship(&d, 2);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_assert_eq(s->n_tokens, 2);
    struct pt_snapshot *conn = pt_snap_ref(s);
    pt_delta_remove(&d, PT_DELTA_TOKEN, "tok1");
    pt_delta_put_token(&d, "tok2", "tok2.other");
    ship(&d, 3);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_expect_eq(s->n_tokens, 1);
    cr_expect_str_eq(s->tokens[0].token, "tok2");
    cr_expect_str_eq(s->tokens[0].key_authorization, "tok2.other");
    cr_expect_eq(conn->n_tokens, 2);
    cr_expect_str_eq(conn->tokens[1].key_authorization, "tok2.thumb");
    pt_delta_remove(&d, PT_DELTA_TOKEN, "tok1");
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), PT_ENOTFOUND);
    pt_delta_clear(&d);
    pt_snap_unref(conn);
    pt_snap_unref(s);
}

/* ---- certificates ---------------------------------------------------------- */

static struct pt_cert cert(const char *id, const char *name, const char *pem)
{
    struct pt_cert c = {0};
    c.id = pt_xstrdup(id);
    c.cert_pem = pt_xstrdup(pem);
    c.key_pem = pt_xstrdup("-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n");
    c.not_after = 2000000000;
    c.names = pt_xcalloc(1, sizeof(*c.names));
    c.names[c.n_names++] = pt_xstrdup(name);
    return c;
}

#define PEM_A "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
#define PEM_B "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n"

static void put_cert(struct pt_delta *d, const char *id, const char *name, const char *pem)
{
    struct pt_cert c = cert(id, name, pem);
    pt_delta_put_cert(d, &c);
}

static const struct pt_cert *find_cert(const struct pt_snapshot *s, const char *id)
{
    for (size_t i = 0; i < s->n_certs; i++)
        if (strcmp(s->certs[i].id, id) == 0)
            return &s->certs[i];
    return NULL;
}

Test(delta, certificates_round_trip_in_place_and_on_a_successor)
{
    const char *names[] = {"x.example.org"};
    struct pt_snapshot *s = base(names, 1), *first = s;
    bool bc;
    struct pt_delta d = {0};
    put_cert(&d, "c1", "x.example.org", PEM_A);
    put_cert(&d, "c2", "*.example.org", PEM_A); /* names no domain: fine */
    ship(&d, 2);
    cr_assert(pt_delta_has(&d, PT_DELTA_CERT));
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_assert_eq(s, first, "nothing held it: changed in place");
    cr_assert_eq(s->n_certs, 2);
    const struct pt_cert *c1 = find_cert(s, "c1");
    cr_assert_not_null(c1);
    cr_expect_str_eq(c1->cert_pem, PEM_A);
    cr_expect_str_eq(c1->names[0], "x.example.org");
    cr_expect_eq(c1->not_after, 2000000000);
    cr_expect_str_eq(find_cert(s, "c2")->names[0], "*.example.org");

    /* A connection holds it: a successor takes the certificates over and
     * the routes it was given stay as they were. */
    struct pt_snapshot *conn = pt_snap_ref(s);
    put_cert(&d, "c1", "x.example.org", PEM_B);
    pt_delta_remove(&d, PT_DELTA_CERT, "c2");
    pt_delta_remove(&d, PT_DELTA_CERT, "never-there"); /* no change, no error */
    ship(&d, 3);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_assert_neq(s, conn);
    cr_expect_eq(s->version, 3);
    cr_assert_eq(s->n_certs, 1);
    cr_expect_str_eq(find_cert(s, "c1")->cert_pem, PEM_B);
    cr_expect_str_eq(route(conn, "x.example.org"), "a");
    cr_expect_str_eq(route(s, "x.example.org"), "a");
    pt_snap_unref(conn);
    pt_snap_unref(s);
}

Test(delta, a_certificate_with_a_bad_pem_or_name_is_refused_whole)
{
    static const char *const bad[][2] = {
        {"not a certificate", "x.example.org"},
        {PEM_A, "X.Example.org"}, /* not normalised */
        {PEM_A, "bad..name"},
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
        struct pt_delta d = {0};
        put_domain(&d, "y.example.org", "a"); /* refused with it */
        put_cert(&d, "c1", bad[i][1], bad[i][0]);
        struct pt_wbuf w = {0};
        pt_delta_encode(&d, &w);
        pt_delta_clear(&d);
        cr_expect_eq(pt_delta_decode(w.data, w.len, &d), PT_EMALFORMED, "case %zu", i);
        cr_expect_eq(d.n, 0);
        pt_wbuf_free(&w);
    }
    /* A key that is not PEM either. */
    struct pt_delta d = {0};
    struct pt_cert c = cert("c1", "x.example.org", PEM_A);
    free(c.key_pem);
    c.key_pem = pt_xstrdup("secret");
    pt_delta_put_cert(&d, &c);
    struct pt_wbuf w = {0};
    pt_delta_encode(&d, &w);
    pt_delta_clear(&d);
    cr_expect_eq(pt_delta_decode(w.data, w.len, &d), PT_EMALFORMED);
    pt_wbuf_free(&w);
}

Test(delta, the_daemons_model_takes_only_backends_and_domains)
{
    struct pt_snapshot *s = base(NULL, 0);
    s->objects_only = true;
    bool bc;
    struct pt_delta d = {0};
    put_cert(&d, "c1", "x.example.org", PEM_A);
    pt_delta_remove(&d, PT_DELTA_TOKEN, "unknown"); /* no answers kept */
    put_domain(&d, "x.example.org", "b");
    ship(&d, 2);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_expect_eq(s->n_certs, 0);
    cr_expect_str_eq(route(s, "x.example.org"), "b");
    pt_snap_unref(s);
}

Test(delta, thousands_of_certificates_by_id_match_a_shadow)
{
    struct pt_snapshot *s = base(NULL, 0);
    bool bc;
    enum { N = 3000 };
    static char alive[N]; /* 0 absent, 'A' or 'B': its PEM */
    struct pt_snapshot *conn = NULL;
    unsigned seed = 7;
    for (int round = 0; round < 12; round++) {
        struct pt_delta d = {0};
        for (int k = 0; k < 400; k++) {
            seed = seed * 1103515245u + 12345u;
            int i = (int)((seed >> 8) % N);
            char id[16];
            snprintf(id, sizeof(id), "c%d", i);
            if (alive[i] && (seed >> 4) % 3 == 0) {
                pt_delta_remove(&d, PT_DELTA_CERT, id);
                alive[i] = 0;
            } else {
                alive[i] = (seed >> 5) & 1 ? 'B' : 'A';
                put_cert(&d, id, "x.example.org", alive[i] == 'B' ? PEM_B : PEM_A);
            }
        }
        ship(&d, (uint64_t)round + 2);
        if (round % 3 == 1) /* now and then on a successor */
            conn = pt_snap_ref(s);
        cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
        pt_delta_clear(&d);
        pt_snap_unref(conn);
        conn = NULL;
        size_t n = 0;
        for (int i = 0; i < N; i++) {
            char id[16];
            snprintf(id, sizeof(id), "c%d", i);
            const struct pt_cert *c = find_cert(s, id);
            n += alive[i] != 0;
            if (!alive[i]) {
                cr_assert_null(c, "round %d: %s", round, id);
                continue;
            }
            cr_assert_not_null(c, "round %d: %s", round, id);
            cr_assert_str_eq(c->cert_pem, alive[i] == 'B' ? PEM_B : PEM_A);
        }
        cr_assert_eq(s->n_certs, n);
    }
    pt_snap_unref(s);
}

/* ---- stream tables and ticket keys ----------------------------------------- */

/* A stream on listener <lid> (address 127.0.0.1:<lid + 2000>) to <be>;
 * "tls" with <name>, else tcp. */
static struct pt_stream stream(const char *name, uint32_t lid, const char *be, const char *sni)
{
    struct pt_stream st = {0};
    char addr[32];
    st.name = pt_xstrdup(name);
    st.mode = sni ? PT_STREAM_TLS : PT_STREAM_TCP;
    st.backend = pt_xstrdup(be);
    st.n_listen = 1;
    st.listen = pt_xcalloc(1, sizeof(*st.listen));
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)lid + 2000);
    cr_assert_eq(pt_hostport_parse(addr, strlen(addr), &st.listen[0], NULL), 0);
    st.lids = pt_xcalloc(1, sizeof(*st.lids));
    st.lids[0] = lid;
    if (sni) {
        st.names = pt_xcalloc(1, sizeof(*st.names));
        st.names[st.n_names++] = pt_xstrdup(sni);
    }
    return st;
}

static void put_streams(struct pt_delta *d, const struct pt_stream *v, size_t n, uint32_t lid_max)
{
    struct pt_streams ss = {0};
    ss.v = pt_xcalloc(n ? n : 1, sizeof(*ss.v));
    memcpy(ss.v, v, n * sizeof(*v));
    ss.n = n;
    ss.lid_max = lid_max;
    pt_delta_put_streams(d, &ss);
}

/* The backend of the stream a connection on <lid> with <sni> takes, or NULL. */
static const char *stream_route(const struct pt_snapshot *s, uint32_t lid, const char *sni)
{
    const struct pt_stream_port *p = pt_streams_port(&s->streams, lid);
    if (p == NULL)
        return NULL;
    int ix = pt_streams_route(&s->streams, p, sni, sni ? strlen(sni) : 0);
    if (ix < 0)
        return NULL;
    const struct pt_stream *st = &s->streams.v[ix];
    cr_assert_str_eq(s->backends[st->backend_ix].name, st->backend);
    return st->backend;
}

Test(delta, stream_tables_round_trip_in_place_and_on_a_successor)
{
    struct pt_snapshot *s = base(NULL, 0), *first = s;
    bool bc;
    struct pt_delta d = {0};
    struct pt_stream v[] = {stream("smtp", 5, "b", NULL),
                            stream("xmpp", 6, "a", "chat.example.org")};
    put_streams(&d, v, 2, 6);
    ship(&d, 2);
    cr_assert(pt_delta_has(&d, PT_DELTA_STREAMS));
    cr_assert_eq(d.v[0].streams.lid_max, 6);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_assert_eq(s, first, "nothing held it: changed in place");
    cr_expect_str_eq(stream_route(s, 5, NULL), "b");
    cr_expect_str_eq(stream_route(s, 6, "chat.example.org"), "a");
    cr_expect_null(stream_route(s, 6, "other.example.org"));
    cr_expect_eq(s->streams.lid_max, 6);

    /* A connection holds it: the successor gets the new table, the
     * connection's stays whole; either may go first. */
    for (int order = 0; order < 2; order++) {
        struct pt_snapshot *conn = pt_snap_ref(s);
        struct pt_stream w[] = {stream("imap", 7 + (uint32_t)order, "a", NULL)};
        put_streams(&d, w, 1, 8);
        ship(&d, 3 + (uint64_t)order);
        cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
        pt_delta_clear(&d);
        cr_assert_neq(s, conn);
        cr_expect_eq(s->streams.n, 1);
        cr_expect_str_eq(stream_route(s, 7 + (uint32_t)order, NULL), "a");
        cr_expect_null(stream_route(s, 5, NULL));
        cr_expect_str_eq(stream_route(conn, order ? 7 : 5, NULL), order ? "a" : "b");
        if (order == 0) {
            pt_snap_unref(conn);
        } else { /* the successor first */
            struct pt_snapshot *next = s;
            s = base(NULL, 0);
            pt_snap_unref(next);
            cr_expect_str_eq(stream_route(conn, 7, NULL), "a");
            pt_snap_unref(conn);
        }
    }
    pt_snap_unref(s);
}

Test(delta, a_stream_table_that_does_not_fit_changes_nothing)
{
    struct pt_snapshot *s = base(NULL, 0), *first = s;
    bool bc;
    struct pt_delta d = {0};
    struct pt_stream ok[] = {stream("smtp", 5, "b", NULL)};
    put_streams(&d, ok, 1, 5);
    ship(&d, 2);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);

    /* An unknown backend; two tcp streams on one port; a name twice. */
    struct pt_stream unknown[] = {stream("smtp", 5, "nope", NULL)};
    struct pt_stream two_tcp[] = {stream("s1", 9, "a", NULL), stream("s2", 9, "b", NULL)};
    struct pt_stream twice[] = {stream("t1", 9, "a", "x.example.org"),
                                stream("t2", 9, "b", "x.example.org")};
    struct {
        struct pt_stream *v;
        size_t n;
        int rc;
    } cases[] = {
        {unknown, 1, PT_ENOTFOUND}, {two_tcp, 2, PT_EMALFORMED}, {twice, 2, PT_EMALFORMED}};
    for (size_t i = 0; i < PT_ARRAY_LEN(cases); i++) {
        put_domain(&d, "y.example.org", "a"); /* refused with it */
        put_streams(&d, cases[i].v, cases[i].n, 9);
        ship(&d, 3);
        cr_expect_eq(pt_delta_apply(&s, &d, &bc), cases[i].rc, "case %zu", i);
        pt_delta_clear(&d);
        cr_assert_eq(s, first);
        cr_expect_eq(s->version, 2);
        cr_expect_null(route(s, "y.example.org"));
        cr_expect_str_eq(stream_route(s, 5, NULL), "b");
    }
    /* The backend a stream uses cannot go, unless the same delta moves the
     * stream off it. */
    pt_delta_remove(&d, PT_DELTA_BACKEND, "b");
    ship(&d, 3);
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), PT_EINUSE);
    pt_delta_clear(&d);
    struct pt_stream moved[] = {stream("smtp", 5, "a", NULL)};
    pt_delta_remove(&d, PT_DELTA_BACKEND, "b");
    put_streams(&d, moved, 1, 5);
    ship(&d, 3);
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_expect_str_eq(stream_route(s, 5, NULL), "a");
    /* A stream on a port no listener of the worker has is no error: the
     * worker polls only the listeners it holds. */
    struct pt_stream far[] = {stream("smtp", 4000, "a", NULL)};
    put_streams(&d, far, 1, 4000);
    ship(&d, 4);
    cr_expect_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    pt_snap_unref(s);
}

Test(delta, removing_a_backend_renumbers_the_streams)
{
    struct pt_snapshot *s = base(NULL, 0);
    bool bc;
    struct pt_delta d = {0};
    struct pt_stream v[] = {stream("smtp", 5, "b", NULL)};
    put_streams(&d, v, 1, 5);
    ship(&d, 2);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    struct pt_snapshot *conn = pt_snap_ref(s);
    pt_delta_remove(&d, PT_DELTA_BACKEND, "a"); /* "b" moves to index 0 */
    ship(&d, 3);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_expect_eq(s->n_backends, 1);
    cr_expect_str_eq(stream_route(s, 5, NULL), "b"); /* checks the index */
    pt_snap_unref(conn);
    pt_snap_unref(s);
}

Test(delta, ticket_keys_round_trip_in_place_and_on_a_successor)
{
    struct pt_snapshot *s = base(NULL, 0), *first = s;
    bool bc;
    uint8_t k1[80], k2[80];
    memset(k1, 0x11, sizeof(k1));
    memset(k2, 0x22, sizeof(k2));
    struct pt_delta d = {0};
    pt_delta_put_ticket(&d, k1);
    ship(&d, 2);
    cr_assert(pt_delta_has(&d, PT_DELTA_TICKET));
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_assert_eq(s, first);
    cr_expect_eq(memcmp(s->settings.ticket_key, k1, 80), 0);
    struct pt_snapshot *conn = pt_snap_ref(s);
    pt_delta_put_ticket(&d, k2);
    ship(&d, 3);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_assert_neq(s, conn);
    cr_expect_eq(memcmp(s->settings.ticket_key, k2, 80), 0);
    cr_expect_eq(memcmp(conn->settings.ticket_key, k1, 80), 0);
    pt_snap_unref(conn);
    /* The daemon's model keeps no settings of its own. */
    s->objects_only = true;
    pt_delta_put_ticket(&d, k1);
    ship(&d, 4);
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    cr_expect_eq(memcmp(s->settings.ticket_key, k2, 80), 0);
    pt_snap_unref(s);
}

Test(delta, stream_and_ticket_changes_are_put_only_and_bounded)
{
    struct pt_delta d = {0};
    struct pt_wbuf w = {0};
    /* A remove of kind STREAMS or TICKET: a domain remove, relabelled. */
    for (uint8_t kind = PT_DELTA_STREAMS; kind <= PT_DELTA_TICKET + 1; kind++) {
        pt_delta_remove(&d, PT_DELTA_DOMAIN, "x.example.org");
        pt_delta_encode(&d, &w);
        pt_delta_clear(&d);
        w.data[16] = kind; /* "PTD1", version, count, then the kind */
        cr_expect_eq(pt_delta_decode(w.data, w.len, &d), PT_EMALFORMED, "kind %u", kind);
        pt_wbuf_free(&w);
    }
    /* A ticket key cut short, a stream table cut anywhere. */
    uint8_t k[80] = {0};
    pt_delta_put_ticket(&d, k);
    struct pt_stream v[] = {stream("xmpp", 6, "a", "chat.example.org")};
    put_streams(&d, v, 1, 6);
    pt_delta_encode(&d, &w);
    pt_delta_clear(&d);
    for (size_t cut = 0; cut < w.len; cut++)
        cr_expect_eq(pt_delta_decode(w.data, cut, &d), PT_EMALFORMED, "cut %zu", cut);
    cr_expect_eq(pt_delta_decode(w.data, w.len, &d), 0);
    pt_delta_clear(&d);
    pt_wbuf_free(&w);
}
