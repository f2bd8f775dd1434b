/* worker/tls.c's pt_tls_io: a server TLS connection over the connection's
 * own buffers, against a real OpenSSL client over memory BIOs. Bytes reach
 * the server in pieces of every size (records split anywhere), so what a
 * pass leaves unread must be kept and read first by the next one. */
#include "worker/tls.h"
#include "common/delta.h"

#include <criterion/criterion.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>
#include <time.h>

static SSL_CTX *server_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    cr_assert(ctx && key && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"t.example", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
    cr_assert_eq(SSL_CTX_use_certificate(ctx, x), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

struct pair {
    SSL_CTX *sctx, *cctx;
    SSL *srv, *cli;
    struct pt_tls_io io;
    bool srv_done;
    uint8_t got[65536]; /* plaintext the server read */
    size_t got_len;
};

/* What the client wrote goes to the server in pieces of <piece> bytes, one
 * pass each; the server's records come back to the client. */
static void pump(struct pair *p, size_t piece)
{
    uint8_t net[32768];
    int n;
    while ((n = BIO_read(SSL_get_wbio(p->cli), net, sizeof(net))) > 0) {
        for (size_t off = 0; off < (size_t)n; off += piece) {
            size_t k = (size_t)n - off < piece ? (size_t)n - off : piece;
            pt_tls_io_feed(&p->io, net + off, k);
            for (;;) {
                size_t got;
                enum pt_tls_ev ev = pt_tls_step(p->srv, &p->srv_done, p->got + p->got_len,
                                                sizeof(p->got) - p->got_len, &got);
                cr_assert_neq(ev, PT_TLS_ERROR);
                p->got_len += got;
                if (ev == PT_TLS_WANT || ev == PT_TLS_EOF)
                    break;
            }
            pt_tls_io_done(&p->io);
            cr_assert_eq(p->io.in_len, 0);
        }
    }
    if (p->io.out.len) {
        cr_assert_eq(BIO_write(SSL_get_rbio(p->cli), p->io.out.data, (int)p->io.out.len),
                     (int)p->io.out.len);
        p->io.out.len = 0;
    }
}

static void connect_pair(struct pair *p, size_t piece)
{
    memset(p, 0, sizeof(*p));
    p->sctx = server_ctx();
    p->cctx = SSL_CTX_new(TLS_client_method());
    p->srv = SSL_new(p->sctx);
    p->cli = SSL_new(p->cctx);
    cr_assert(pt_tls_io_attach(&p->io, p->srv));
    SSL_set_accept_state(p->srv);
    SSL_set_bio(p->cli, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(p->cli);
    for (int i = 0; i < 20 && !(p->srv_done && SSL_is_init_finished(p->cli)); i++) {
        SSL_do_handshake(p->cli);
        pump(p, piece);
    }
    cr_assert(p->srv_done, "server handshake");
    cr_assert(SSL_is_init_finished(p->cli), "client handshake");
}

static void free_pair(struct pair *p)
{
    SSL_free(p->cli);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    pt_tls_io_free(&p->io); /* and p->srv */
}

static void exchange(size_t piece)
{
    struct pair p;
    connect_pair(&p, piece);
    /* Client to server: more than one record, split anywhere. */
    static uint8_t msg[40000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    cr_assert_eq(SSL_write(p.cli, msg, sizeof(msg)), (int)sizeof(msg));
    pump(&p, piece);
    cr_assert_eq(p.got_len, sizeof(msg));
    cr_assert_eq(memcmp(p.got, msg, sizeof(msg)), 0);
    cr_assert_eq(p.io.held.len, 0, "a whole record was read: nothing held");

    /* Server to client: records gather in io.out. */
    cr_assert_eq(SSL_write(p.srv, "pong", 4), 4);
    cr_assert_gt(p.io.out.len, 4);
    pump(&p, piece);
    char back[8];
    cr_assert_eq(SSL_read(p.cli, back, sizeof(back)), 4);
    cr_assert_eq(memcmp(back, "pong", 4), 0);
    free_pair(&p);
}

Test(tls_io, handshake_and_data_whole_reads)
{
    exchange(1 << 20);
}

Test(tls_io, handshake_and_data_split_anywhere)
{
    exchange(1);
    exchange(5);
    exchange(4097);
}

/* A pass that OpenSSL stops early (here: after the handshake, whose caller
 * stops at HANDSHAKEN) keeps the unread bytes for the next pass. */
Test(tls_io, unread_bytes_are_kept)
{
    struct pair p;
    connect_pair(&p, 1 << 20);
    cr_assert_eq(SSL_write(p.cli, "hello", 5), 5);
    uint8_t net[512];
    int n = BIO_read(SSL_get_wbio(p.cli), net, sizeof(net));
    cr_assert_gt(n, 5);
    pt_tls_io_feed(&p.io, net, (size_t)n);
    pt_tls_io_done(&p.io); /* nothing read */
    cr_assert_eq(p.io.held.len, (size_t)n);
    memset(net, 0, sizeof(net)); /* the lent bytes are gone */
    pt_tls_io_feed(&p.io, net, 0);
    uint8_t out[16];
    size_t got;
    cr_assert_eq(pt_tls_step(p.srv, &p.srv_done, out, sizeof(out), &got), PT_TLS_DATA);
    cr_assert_eq(got, 5);
    cr_assert_eq(memcmp(out, "hello", 5), 0);
    cr_assert_eq(pt_tls_step(p.srv, &p.srv_done, out, sizeof(out), &got), PT_TLS_WANT);
    pt_tls_io_done(&p.io);
    cr_assert_eq(p.io.held.len, 0);
    cr_assert_null(p.io.held.data, "an emptied hold is freed");
    free_pair(&p);
}

/* ---- pt_tls_build: a changed certificate among others ------------------------ */

#include "testcert.h"

/* Which parsed certificate serves <name>: the same pointer after a change
 * means it was kept, not parsed again. */
static X509 *ctx_for(const struct pt_tls *t, const char *name)
{
    return pt_tls_server_cert(t, name, strlen(name));
}

/* Applies the certificate changes <d> to *s as a worker does, then to <t>. */
static void apply(struct pt_snapshot **s, struct pt_delta *d, struct pt_tls *t)
{
    bool bc;
    const char *ids[64];
    size_t n = 0;
    cr_assert_lt(d->n, 64);
    for (size_t i = 0; i < d->n; i++)
        ids[n++] = d->v[i].name;
    cr_assert_eq(pt_delta_apply(s, d, &bc), 0);
    pt_tls_update(t, *s, ids, n);
    pt_delta_clear(d);
}

static void put(struct pt_delta *d, const char *id, const char *name, int64_t not_after)
{
    struct pt_cert c = make_pem(id, name);
    c.not_after = not_after;
    pt_delta_put_cert(d, &c);
}

Test(tls_build, a_delta_changes_its_certificates_the_others_keep_their_contexts)
{
    enum { N = 40 };
    int64_t later = (int64_t)time(NULL) + 3600;
    struct pt_snapshot *s = pt_xcalloc(1, sizeof(*s));
    s->refs = 1;
    s->routes = pt_route_build(NULL, 0);
    struct pt_delta d = {0};
    char id[16], name[32];
    for (size_t i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "c%zu", i);
        snprintf(name, sizeof(name), "n%zu.example.org", i);
        put(&d, id, name, later);
    }
    put(&d, "w", "*.w.example.org", later);
    bool bc;
    cr_assert_eq(pt_delta_apply(&s, &d, &bc), 0);
    pt_delta_clear(&d);
    struct pt_tls *t = pt_tls_build(s, NULL);
    X509 *before[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%zu.example.org", i);
        before[i] = ctx_for(t, name);
        cr_assert_not_null(before[i], "%s", name);
        /* Held, so that a new parse cannot reuse a freed one's address. */
        X509_up_ref(before[i]);
    }
    X509 *w = ctx_for(t, "a.w.example.org");
    cr_assert_not_null(w);
    cr_expect_null(ctx_for(t, "a.b.w.example.org"), "a wildcard covers one label");

    /* 7 renewed (same id, new PEM), 9 removed, 40 added, 41 a second
     * certificate for n5 expiring later: it serves n5 while it is there. */
    put(&d, "c7", "n7.example.org", later);
    pt_delta_remove(&d, PT_DELTA_CERT, "c9");
    put(&d, "c40", "n40.example.org", later);
    put(&d, "c41", "n5.example.org", later + 60);
    apply(&s, &d, t);
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%zu.example.org", i);
        X509 *now = ctx_for(t, name);
        if (i == 7 || i == 5)
            cr_expect(now != NULL && now != before[i], "%s", name);
        else if (i == 9)
            cr_expect_null(now);
        else
            cr_expect_eq(now, before[i], "%s was rebuilt", name);
    }
    cr_expect_not_null(ctx_for(t, "n40.example.org"));
    cr_expect_eq(ctx_for(t, "a.w.example.org"), w);
    /* 41 goes: n5 is served by its first certificate again; the wildcard
     * goes, and a name no certificate covers any more serves nothing. */
    pt_delta_remove(&d, PT_DELTA_CERT, "c41");
    pt_delta_remove(&d, PT_DELTA_CERT, "w");
    pt_delta_remove(&d, PT_DELTA_CERT, "c0"); /* the last one moves into its place */
    apply(&s, &d, t);
    cr_expect_eq(ctx_for(t, "n5.example.org"), before[5]);
    cr_expect_null(ctx_for(t, "a.w.example.org"));
    cr_expect_null(ctx_for(t, "n0.example.org"));
    cr_expect_not_null(ctx_for(t, "n40.example.org"));
    cr_expect_eq(ctx_for(t, "n39.example.org"), before[39]);

    /* A whole snapshot of the same: every context kept (same PEMs). */
    X509 *c7 = ctx_for(t, "n7.example.org");
    X509_up_ref(c7);
    struct pt_tls *t2 = pt_tls_build(s, t);
    pt_tls_free(t);
    cr_expect_eq(ctx_for(t2, "n7.example.org"), c7);
    cr_expect_eq(ctx_for(t2, "n3.example.org"), before[3]);
    cr_expect_eq(ctx_for(t2, "n5.example.org"), before[5]);
    cr_expect_null(ctx_for(t2, "n9.example.org"));
    /* A renewal that a whole snapshot brings is seen by its PEM. */
    int ix = pt_route_find(s->cert_ids, "c3");
    cr_assert_geq(ix, 0);
    struct pt_cert renewed = make_pem("c3", "n3.example.org");
    pt_route_set(s->cert_ids, renewed.id, ix); /* the key moves first */
    pt_cert_clear(&s->certs[ix]);
    s->certs[ix] = renewed;
    struct pt_tls *t3 = pt_tls_build(s, t2);
    pt_tls_free(t2);
    cr_expect_neq(ctx_for(t3, "n3.example.org"), before[3]);
    cr_expect_eq(ctx_for(t3, "n7.example.org"), c7);
    pt_tls_free(t3);
    pt_snap_unref(s);
    for (size_t i = 0; i < N; i++)
        X509_free(before[i]);
    X509_free(c7);
}
