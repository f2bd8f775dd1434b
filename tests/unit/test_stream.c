#include <criterion/criterion.h>

#include "api/model.h"
#include "common/clienthello.h"
#include "common/snapshot.h"

/* Stream routes: the JSON model's rules, the snapshot round trip, the
 * per-listener SNI tables, the ALPN table and the overlap rule. */

static int stream(const char *text, const char *name, struct pt_stream *st,
                  struct pt_apierr *e)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert_not_null(j, "%s: %s", text, jerr.text);
    memset(e, 0, sizeof(*e));
    int rc = pt_model_stream_from_json(j, name, st, e);
    json_decref(j);
    return rc;
}

static void bad(const char *text, const char *field)
{
    struct pt_stream st;
    struct pt_apierr e;
    cr_expect_eq(stream(text, "s", &st, &e), -1, "accepted: %s", text);
    cr_expect_eq(e.status, 400, "%s", text);
    cr_expect_str_eq(e.field, field, "%s: field %s (%s)", text, e.field, e.message);
    pt_stream_clear(&st);
}

Test(stream, model_refusals)
{
    bad("{\"mode\":\"udp\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:25\"]}", "mode");
    bad("{\"backend\":\"b\",\"listen\":[\"127.0.0.1:25\"]}", "mode");
    bad("{\"mode\":\"tcp\",\"listen\":[\"127.0.0.1:25\"]}", "backend");
    bad("{\"mode\":\"tcp\",\"backend\":\"b\"}", "listen");
    bad("{\"mode\":\"tcp\",\"backend\":\"b\",\"listen\":[\"mx.example.org:25\"]}", "listen[0]");
    bad("{\"mode\":\"tcp\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:25\",\"127.0.0.1:25\"]}",
        "listen[1]");
    bad("{\"mode\":\"tcp\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:25\"],\"names\":[\"a.b\"]}",
        "names");
    bad("{\"mode\":\"tls\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:993\"],\"names\":[\"a..b\"]}",
        "names[0]");
    bad("{\"mode\":\"tls\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:993\"],\"alpn\":[\"imap\"]}",
        "alpn");
    bad("{\"mode\":\"tls\",\"backend\":\"b\",\"names\":[\"x.org\"]}", "listen");
    bad("{\"mode\":\"tls\",\"backend\":\"b\",\"alpn\":[\"a b\"]}", "alpn[0]");
    bad("{\"mode\":\"tcp\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:25\"],\"idle_timeout\":-1}",
        "idle_timeout");
    bad("{\"mode\":\"tcp\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:25\"],\"max_connections\":"
        "1.5}",
        "max_connections");
    bad("{\"mode\":\"tcp\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:25\"],\"nmes\":[]}", "nmes");
    bad("{\"name\":\"t\",\"mode\":\"tcp\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:25\"]}",
        "name");
}

Test(stream, model_defaults_and_document)
{
    struct pt_stream st;
    struct pt_apierr e;
    cr_assert_eq(stream("{\"mode\":\"tls\",\"backend\":\"b\",\"listen\":[\"[::]:993\"]}", "s",
                        &st, &e),
                 0, "%s", e.message);
    cr_expect_eq(st.n_names, 1);
    cr_expect_str_eq(st.names[0], "*");
    json_t *j = pt_model_stream_to_json(&st);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    cr_expect_str_eq(text, "{\"alpn\":[],\"backend\":\"b\",\"idle_timeout\":0,\"listen\":"
                           "[\"[::]:993\"],\"max_connections\":0,\"mode\":\"tls\",\"name\":"
                           "\"s\",\"names\":[\"*\"]}");
    /* What GET shows is accepted back as is. */
    struct pt_stream again;
    cr_expect_eq(pt_model_stream_from_json(j, "s", &again, &e), 0, "%s", e.message);
    pt_stream_clear(&again);
    free(text);
    json_decref(j);
    pt_stream_clear(&st);
}

/* A snapshot with one backend and the given streams (JSON documents), the
 * listener ids given in order of listen addresses. */
static struct pt_snapshot *snap(const char *const *docs, size_t n)
{
    struct pt_snapshot *s = pt_xcalloc(1, sizeof(*s));
    struct pt_apierr e;
    s->refs = 1;
    s->backends = pt_xcalloc(1, sizeof(*s->backends));
    s->backends[0].name = pt_xstrdup("b");
    s->backends[0].servers = pt_xcalloc(1, sizeof(struct pt_hostport));
    cr_assert_eq(pt_hostport_parse("127.0.0.1:1", 11, &s->backends[0].servers[0], NULL), 0);
    s->backends[0].n_servers = 1;
    s->n_backends = 1;
    s->streams.v = pt_xcalloc(n, sizeof(*s->streams.v));
    for (size_t i = 0; i < n; i++) {
        char name[24];
        snprintf(name, sizeof(name), "s%zu", i);
        cr_assert_eq(stream(docs[i], name, &s->streams.v[i], &e), 0, "%s: %s", docs[i],
                     e.message);
        struct pt_stream *st = &s->streams.v[i];
        st->lids = pt_xcalloc(st->n_listen + 1, sizeof(*st->lids));
        for (size_t k = 0; k < st->n_listen; k++)
            st->lids[k] = pt_sockaddr_port((struct sockaddr *)&st->listen[k].sa);
        s->streams.n++;
    }
    s->streams.lid_max = 70000;
    return s;
}

static struct pt_snapshot *roundtrip(struct pt_snapshot *s)
{
    struct pt_wbuf w = {0};
    struct pt_snapshot *d = NULL;
    pt_snap_encode(s, &w);
    int rc = pt_snap_decode(w.data, w.len, &d);
    pt_wbuf_free(&w);
    pt_snap_unref(s);
    cr_assert_eq(rc, 0);
    return d;
}

static int route(const struct pt_snapshot *s, uint32_t lid, const char *sni)
{
    const struct pt_stream_port *p = pt_streams_port(&s->streams, lid);
    cr_assert_not_null(p, "no port %u", lid);
    return pt_streams_route(&s->streams, p, sni, strlen(sni));
}

Test(stream, routes_by_port_and_name)
{
    static const char *const docs[] = {
        "{\"mode\":\"tcp\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:25\",\"[::1]:587\"]}",
        "{\"mode\":\"tls\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:993\"],"
        "\"names\":[\"imap.a.org\"],\"idle_timeout\":600,\"max_connections\":9}",
        "{\"mode\":\"tls\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:993\"],"
        "\"names\":[\"*.b.org\",\"*\"]}",
        "{\"mode\":\"tls\",\"backend\":\"b\",\"names\":[\"x.org\"],"
        "\"alpn\":[\"xmpp-client\",\"xmpp-server\"]}",
    };
    struct pt_snapshot *s = roundtrip(snap(docs, 4));
    cr_expect_eq(s->streams.n, 4);
    cr_expect_eq(s->streams.lid_max, 70000);
    cr_expect_eq(s->streams.v[1].idle_timeout_s, 600);
    cr_expect_eq(s->streams.v[1].max_connections, 9);
    cr_expect_eq(route(s, 25, ""), 0, "tcp takes everything");
    cr_expect_eq(route(s, 587, "whatever.org"), 0);
    cr_expect_eq(route(s, 993, "IMAP.a.org."), 1, "exact, case and dot ignored");
    cr_expect_eq(route(s, 993, "imap.b.org"), 2, "wildcard");
    cr_expect_eq(route(s, 993, "other.org"), 2, "catch-all");
    cr_expect_eq(route(s, 993, ""), 2, "no SNI: catch-all");
    cr_expect_null(pt_streams_port(&s->streams, 443), "an ALPN stream has no port");

    struct pt_clienthello ch = {.sni = "x.org", .sni_len = 5, .alpn_count = 2,
                                .alpn = {"h2", "xmpp-server"}, .alpn_len = {2, 11}};
    cr_expect_eq(pt_streams_alpn(&s->streams, &ch), 3);
    ch.alpn[1] = "http/1.1";
    ch.alpn_len[1] = 8;
    cr_expect_eq(pt_streams_alpn(&s->streams, &ch), -1, "browsers stay on HTTP");
    ch.alpn[0] = "xmpp-client";
    ch.alpn_len[0] = 11;
    ch.sni = "y.org";
    cr_expect_eq(pt_streams_alpn(&s->streams, &ch), -1, "other names stay on HTTP");
    pt_snap_unref(s);
}

Test(stream, conflicts)
{
    static const char *const twice[] = {
        "{\"mode\":\"tls\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:993\"],\"names\":[\"a.org\"]}",
        "{\"mode\":\"tls\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:993\"],"
        "\"names\":[\"c.org\",\"a.org\"]}",
    };
    static const char *const tcp_shared[] = {
        "{\"mode\":\"tls\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:993\"]}",
        "{\"mode\":\"tcp\",\"backend\":\"b\",\"listen\":[\"127.0.0.1:993\"]}",
    };
    char why[128];
    struct pt_snapshot *s = snap(twice, 2);
    cr_expect(pt_stream_conflict(&s->streams.v[0], &s->streams.v[1], why, sizeof(why)));
    cr_expect_not_null(strstr(why, "a.org"), "%s", why);
    cr_expect_eq(pt_snap_link(s), PT_EMALFORMED, "the workers refuse it too");
    pt_snap_unref(s);
    s = snap(tcp_shared, 2);
    cr_expect(pt_stream_conflict(&s->streams.v[0], &s->streams.v[1], why, sizeof(why)));
    cr_expect_eq(pt_snap_link(s), PT_EMALFORMED);
    pt_snap_unref(s);
}

Test(stream, unknown_backend_refused)
{
    static const char *const docs[] = {
        "{\"mode\":\"tcp\",\"backend\":\"nope\",\"listen\":[\"127.0.0.1:25\"]}",
    };
    struct pt_snapshot *s = snap(docs, 1);
    cr_expect_eq(pt_snap_link(s), PT_ENOTFOUND);
    pt_snap_unref(s);
}
