/* worker/tls.c's pt_tls_io: a server TLS connection over the connection's
 * own buffers, against a real OpenSSL client over memory BIOs. Bytes reach
 * the server in pieces of every size (records split anywhere), so what a
 * pass leaves unread must be kept and read first by the next one. */
#include "worker/tls.h"

#include <criterion/criterion.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

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

static SSL_CTX *ctx_for(const struct pt_tls *t, const char *name)
{
    return pt_tls_server_ctx(t, name, strlen(name));
}

Test(tls_build, a_changed_certificate_gets_a_new_context_the_others_keep_theirs)
{
    enum { N = 40 };
    struct pt_snapshot s = {0};
    s.certs = pt_xcalloc(N, sizeof(*s.certs));
    char id[16], name[32];
    for (size_t i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "c%zu", i);
        snprintf(name, sizeof(name), "n%zu.example.org", i);
        s.certs[s.n_certs++] = make_pem(id, name);
    }
    struct pt_tls *t1 = pt_tls_build(&s, NULL, NULL, 0);
    SSL_CTX *before[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%zu.example.org", i);
        before[i] = ctx_for(t1, name);
        cr_assert_not_null(before[i], "%s", name);
    }
    /* Certificate 7 renewed (same id, new PEM), 9 removed (the last one
     * fills its slot, as a delta does), 40 added. */
    pt_cert_clear(&s.certs[7]);
    s.certs[7] = make_pem("c7", "n7.example.org");
    pt_cert_clear(&s.certs[9]);
    s.certs[9] = s.certs[--s.n_certs];
    s.certs = pt_xrealloc(s.certs, (N + 1) * sizeof(*s.certs));
    s.certs[s.n_certs++] = make_pem("c40", "n40.example.org");
    /* As after a delta: the changed ids are given. */
    static const char *const changed[] = {"c7", "c40"};
    struct pt_tls *t2 = pt_tls_build(&s, t1, changed, 2);
    pt_tls_free(t1);
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%zu.example.org", i);
        if (i == 7)
            cr_expect(ctx_for(t2, name) != NULL && ctx_for(t2, name) != before[i]);
        else if (i == 9)
            cr_expect_null(ctx_for(t2, name));
        else
            cr_expect_eq(ctx_for(t2, name), before[i], "%s was rebuilt", name);
    }
    cr_expect_not_null(ctx_for(t2, "n40.example.org"));
    /* As after a whole snapshot: compared by PEM, all kept. */
    SSL_CTX *c7 = ctx_for(t2, "n7.example.org");
    struct pt_tls *t3 = pt_tls_build(&s, t2, NULL, 0);
    pt_tls_free(t2);
    cr_expect_eq(ctx_for(t3, "n7.example.org"), c7);
    cr_expect_eq(ctx_for(t3, "n3.example.org"), before[3]);
    /* A renewal that a whole snapshot brings is seen by its PEM. */
    pt_cert_clear(&s.certs[3]);
    s.certs[3] = make_pem("c3", "n3.example.org");
    struct pt_tls *t4 = pt_tls_build(&s, t3, NULL, 0);
    pt_tls_free(t3);
    cr_expect_neq(ctx_for(t4, "n3.example.org"), before[3]);
    cr_expect_eq(ctx_for(t4, "n7.example.org"), c7);
    pt_tls_free(t4);
    for (size_t i = 0; i < s.n_certs; i++)
        pt_cert_clear(&s.certs[i]);
    free(s.certs);
}
