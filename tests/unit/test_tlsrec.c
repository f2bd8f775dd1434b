/* worker/tlsrec.c, through worker/tls.c's handover: a real OpenSSL client
 * over memory BIOs talks to a server context built by pt_tls_build (as a
 * worker's); once the TLS 1.3 handshake is done the SSL object is gone and
 * our record layer carries the connection. Records the client could not
 * make on its own (no content type, a fragmented KeyUpdate, a protected
 * change_cipher_spec) are sealed here with the client's keys through
 * libcrypto directly, not through the module under test. */
#include "worker/tls.h"

#include "testcert.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>

struct pair {
    struct pt_snapshot snap;
    struct pt_tls *tls;
    SSL_CTX *cctx;
    SSL *cli;
    struct pt_tls_io io;
    bool done;
    enum pt_tls_ev last; /* the last step's event */
    uint8_t *got;        /* plaintext the server read */
    size_t got_len;
};

static uint8_t plain[PT_TLS_PLAIN_MAX];

/* Runs the server over <p>[0..n) until it wants more (or fails). */
static void server_pass(struct pair *x, const uint8_t *p, size_t n)
{
    pt_tls_io_feed(&x->io, p, n);
    for (;;) {
        size_t got = 0;
        x->last = pt_tls_io_step(&x->io, &x->done, plain, sizeof(plain), &got);
        if (got) {
            x->got = pt_xrealloc(x->got, x->got_len + got);
            memcpy(x->got + x->got_len, plain, got);
            x->got_len += got;
        }
        if (x->last == PT_TLS_WANT || x->last == PT_TLS_EOF || x->last == PT_TLS_ERROR)
            break;
    }
    pt_tls_io_done(&x->io);
}

/* Server records to the client. */
static void to_client(struct pair *x)
{
    if (x->io.out.len) {
        cr_assert_eq(BIO_write(SSL_get_rbio(x->cli), x->io.out.data, (int)x->io.out.len),
                     (int)x->io.out.len);
        x->io.out.len = 0;
    }
}

/* What the client wrote, to the server in pieces of <piece> bytes. */
static void pump(struct pair *x, size_t piece)
{
    static uint8_t net[1 << 17];
    int n;
    while ((n = BIO_read(SSL_get_wbio(x->cli), net, sizeof(net))) > 0)
        for (size_t off = 0; off < (size_t)n; off += piece)
            server_pass(x, net + off, (size_t)n - off < piece ? (size_t)n - off : piece);
    to_client(x);
}

/* <suites>: the client's TLS 1.3 suites; <max>: its highest version;
 * <h2>: both offer h2 by ALPN. */
static void connect_alpn(struct pair *x, const char *suites, int max, bool h2)
{
    memset(x, 0, sizeof(*x));
    x->snap.certs = pt_xcalloc(1, sizeof(*x->snap.certs));
    x->snap.certs[x->snap.n_certs++] = make_pem("c", "t.example");
    x->tls = pt_tls_build(&x->snap, NULL);
    SSL *srv;
    cr_assert_eq(pt_tls_server_new(x->tls, "t.example", 9, &srv), 0);
    cr_assert(pt_tls_io_attach(&x->io, srv));
    SSL_set_accept_state(srv);
    if (h2)
        pt_tls_offer_h2(srv);
    x->cctx = SSL_CTX_new(TLS_client_method());
    if (suites)
        cr_assert_eq(SSL_CTX_set_ciphersuites(x->cctx, suites), 1);
    SSL_CTX_set_max_proto_version(x->cctx, max);
    x->cli = SSL_new(x->cctx);
    SSL_set_bio(x->cli, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(x->cli);
    SSL_set_tlsext_host_name(x->cli, "t.example");
    if (h2)
        SSL_set_alpn_protos(x->cli, (const uint8_t *)"\x02h2\x08http/1.1", 12);
    for (int i = 0; i < 20 && !(x->done && SSL_is_init_finished(x->cli)); i++) {
        SSL_do_handshake(x->cli);
        pump(x, 1 << 20);
    }
    cr_assert(x->done, "server handshake");
    cr_assert(SSL_is_init_finished(x->cli), "client handshake");
}

static void connect_pair(struct pair *x, const char *suites, int max)
{
    connect_alpn(x, suites, max, false);
}

static void free_pair(struct pair *x)
{
    SSL_free(x->cli);
    SSL_CTX_free(x->cctx);
    pt_tls_io_free(&x->io);
    pt_tls_free(x->tls);
    pt_cert_clear(&x->snap.certs[0]);
    free(x->snap.certs);
    free(x->got);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed);
}

/* The client reads exactly <n> bytes, equal to <want>. */
static void client_reads(struct pair *x, const uint8_t *want, size_t n)
{
    static uint8_t buf[1 << 17];
    size_t have = 0;
    int r;
    while (have < n && (r = SSL_read(x->cli, buf + have, (int)(sizeof(buf) - have))) > 0)
        have += (size_t)r;
    cr_assert_eq(have, n);
    cr_assert_eq(memcmp(buf, want, n), 0);
}

static void both_ways(struct pair *x, size_t piece)
{
    static uint8_t msg[40000];
    fill(msg, sizeof(msg), 3);
    size_t before = x->got_len;
    cr_assert_eq(SSL_write(x->cli, msg, sizeof(msg)), (int)sizeof(msg));
    pump(x, piece);
    cr_assert_eq(x->last, PT_TLS_WANT);
    cr_assert_eq(x->got_len - before, sizeof(msg));
    cr_assert_eq(memcmp(x->got + before, msg, sizeof(msg)), 0);
    fill(msg, sizeof(msg), 11);
    cr_assert(pt_tls_io_write(&x->io, msg, sizeof(msg)));
    to_client(x);
    client_reads(x, msg, sizeof(msg));
}

static void handed_over(const char *suite, uint16_t id)
{
    struct pair x;
    connect_pair(&x, suite, 0);
    cr_assert_null(x.io.ssl, "the SSL object is freed");
    cr_assert_not_null(x.io.rec);
    cr_assert_eq(x.io.rec->suite, id);
    cr_assert_gt(x.io.rec->tx.seq, 0, "the tickets OpenSSL sent count");
    both_ways(&x, 1 << 20);
    both_ways(&x, 1);
    both_ways(&x, 4097);
    free_pair(&x);
}

Test(tlsrec, aes128_gcm)
{
    handed_over("TLS_AES_128_GCM_SHA256", PT_TLSREC_AES_128_GCM_SHA256);
}

Test(tlsrec, aes256_gcm)
{
    handed_over("TLS_AES_256_GCM_SHA384", PT_TLSREC_AES_256_GCM_SHA384);
}

Test(tlsrec, chacha20_poly1305)
{
    handed_over("TLS_CHACHA20_POLY1305_SHA256", PT_TLSREC_CHACHA20_POLY1305_SHA256);
}

/* Records of at most 2^14 bytes of plaintext, each with its own header. */
Test(tlsrec, large_writes_are_split)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    static uint8_t msg[3 * 16384 + 5];
    fill(msg, sizeof(msg), 1);
    cr_assert(pt_tls_io_write(&x.io, msg, sizeof(msg)));
    size_t records = 0;
    for (size_t off = 0; off < x.io.out.len; records++) {
        const uint8_t *h = x.io.out.data + off;
        size_t len = (size_t)h[3] << 8 | h[4];
        cr_assert_eq(h[0], 23);
        cr_assert_leq(len, 16384 + 1 + 16);
        off += 5 + len;
        cr_assert_leq(off, x.io.out.len);
    }
    cr_assert_eq(records, 4);
    to_client(&x);
    client_reads(&x, msg, sizeof(msg));
    free_pair(&x);
}

static void key_update(int type)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    both_ways(&x, 1 << 20);
    uint8_t old_rx[48], old_tx[48];
    memcpy(old_rx, x.io.rec->rx.secret, sizeof(old_rx));
    memcpy(old_tx, x.io.rec->tx.secret, sizeof(old_tx));
    cr_assert_eq(SSL_key_update(x.cli, type), 1);
    cr_assert_eq(SSL_write(x.cli, "after", 5), 5); /* sends the KeyUpdate first */
    pump(&x, 1 << 20);
    cr_assert_eq(x.last, PT_TLS_WANT);
    cr_assert_neq(memcmp(old_rx, x.io.rec->rx.secret, sizeof(old_rx)), 0);
    cr_assert_eq(x.io.rec->rx.seq, 1, "one record under the new key");
    bool answered = memcmp(old_tx, x.io.rec->tx.secret, sizeof(old_tx)) != 0;
    cr_assert_eq(answered, type == SSL_KEY_UPDATE_REQUESTED);
    cr_assert_eq(memcmp(x.got + x.got_len - 5, "after", 5), 0);
    both_ways(&x, 7); /* the client took our KeyUpdate, if any */
    /* Twice more: each update derives from the last one. */
    cr_assert_eq(SSL_key_update(x.cli, type), 1);
    cr_assert_eq(SSL_write(x.cli, "x", 1), 1);
    pump(&x, 1 << 20);
    cr_assert_eq(SSL_key_update(x.cli, type), 1);
    both_ways(&x, 1 << 20);
    free_pair(&x);
}

Test(tlsrec, client_key_update_not_requested)
{
    key_update(SSL_KEY_UPDATE_NOT_REQUESTED);
}

Test(tlsrec, client_key_update_requested)
{
    key_update(SSL_KEY_UPDATE_REQUESTED);
}

Test(tlsrec, close_notify_both_ways)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    cr_assert_eq(SSL_write(x.cli, "bye", 3), 3);
    SSL_shutdown(x.cli);
    pump(&x, 1 << 20);
    cr_assert_eq(x.last, PT_TLS_EOF);
    cr_assert_eq(x.got_len, 3);
    pt_tls_io_close(&x.io);
    to_client(&x);
    char b[4];
    cr_assert_eq(SSL_read(x.cli, b, sizeof(b)), 0);
    cr_assert_eq(SSL_get_error(x.cli, 0), SSL_ERROR_ZERO_RETURN);
    free_pair(&x);
}

/* A record the server refuses: the step fails and a fatal alert the
 * client understands is what the server sends. */
static void refused(struct pair *x, const uint8_t *rec, size_t n, bool alert)
{
    server_pass(x, rec, n);
    cr_assert_eq(x->last, PT_TLS_ERROR);
    if (!alert) {
        cr_assert_eq(x->io.out.len, 0);
        return;
    }
    cr_assert_gt(x->io.out.len, 0);
    to_client(x);
    char b[4];
    cr_assert_leq(SSL_read(x->cli, b, sizeof(b)), 0);
    cr_assert_eq(SSL_get_error(x->cli, -1), SSL_ERROR_SSL, "the alert is read as fatal");
}

Test(tlsrec, flipped_ciphertext_byte)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    cr_assert_eq(SSL_write(x.cli, "hello", 5), 5);
    uint8_t rec[64];
    int n = BIO_read(SSL_get_wbio(x.cli), rec, sizeof(rec));
    cr_assert_gt(n, 10);
    rec[7] ^= 0x40;
    refused(&x, rec, (size_t)n, true);
    cr_assert_eq(x.got_len, 0);
    free_pair(&x);
}

Test(tlsrec, oversized_length)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    size_t len = 16384 + 257;
    uint8_t hdr[5] = {23, 3, 3, (uint8_t)(len >> 8), (uint8_t)len};
    refused(&x, hdr, sizeof(hdr), true); /* refused from its header alone */
    free_pair(&x);
}

Test(tlsrec, plain_change_cipher_spec_after_the_handshake)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    static const uint8_t ccs[6] = {20, 3, 3, 0, 1, 1};
    refused(&x, ccs, sizeof(ccs), true);
    free_pair(&x);
}

/* Seals <inner> (content, type byte and any padding) as the client would:
 * with its key at its next sequence number, libcrypto directly. */
static size_t client_seal(struct pair *x, const uint8_t *inner, size_t n, uint8_t *out)
{
    const struct pt_tlsrec *r = x->io.rec;
    const EVP_CIPHER *c = r->suite == PT_TLSREC_AES_128_GCM_SHA256 ? EVP_aes_128_gcm()
                          : r->suite == PT_TLSREC_AES_256_GCM_SHA384
                              ? EVP_aes_256_gcm()
                              : EVP_chacha20_poly1305();
    uint8_t iv[12];
    memcpy(iv, r->rx.iv, 12);
    for (int i = 0; i < 8; i++)
        iv[11 - i] ^= (uint8_t)(r->rx.seq >> (8 * i));
    size_t len = n + 16;
    out[0] = 23;
    out[1] = out[2] = 3;
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new();
    int k;
    cr_assert(EVP_EncryptInit_ex(e, c, NULL, r->rx.key, iv) == 1);
    cr_assert(EVP_EncryptUpdate(e, NULL, &k, out, 5) == 1);
    cr_assert(EVP_EncryptUpdate(e, out + 5, &k, inner, (int)n) == 1);
    cr_assert(EVP_EncryptFinal_ex(e, out + 5 + n, &k) == 1);
    cr_assert(EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_GET_TAG, 16, out + 5 + n) == 1);
    EVP_CIPHER_CTX_free(e);
    return 5 + len;
}

/* The crafting itself is right: a well-formed record passes. */
Test(tlsrec, crafted_application_data_with_padding_is_read)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    static const uint8_t inner[] = {'o', 'k', 23, 0, 0, 0};
    uint8_t rec[64];
    server_pass(&x, rec, client_seal(&x, inner, sizeof(inner), rec));
    cr_assert_eq(x.last, PT_TLS_WANT);
    cr_assert_eq(x.got_len, 2);
    cr_assert_eq(memcmp(x.got, "ok", 2), 0);
    free_pair(&x);
}

static void crafted_refused(const uint8_t *inner, size_t n)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    uint8_t rec[64];
    refused(&x, rec, client_seal(&x, inner, n, rec), true);
    free_pair(&x);
}

Test(tlsrec, no_content_type)
{
    static const uint8_t inner[] = {0, 0, 0, 0};
    crafted_refused(inner, sizeof(inner));
}

Test(tlsrec, fragmented_key_update)
{
    static const uint8_t inner[] = {24, 0, 0, 22}; /* 3 of its 5 bytes */
    crafted_refused(inner, sizeof(inner));
}

Test(tlsrec, key_update_with_a_bad_value)
{
    static const uint8_t inner[] = {24, 0, 0, 1, 2, 22};
    crafted_refused(inner, sizeof(inner));
}

Test(tlsrec, protected_change_cipher_spec)
{
    static const uint8_t inner[] = {1, 20};
    crafted_refused(inner, sizeof(inner));
}

Test(tlsrec, other_alert_ends_without_an_answer)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    static const uint8_t inner[] = {2, 40, 21}; /* fatal handshake_failure */
    uint8_t rec[64];
    refused(&x, rec, client_seal(&x, inner, sizeof(inner), rec), false);
    free_pair(&x);
}

Test(tlsrec, sequence_number_does_not_wrap)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    x.io.rec->tx.seq = UINT64_MAX - 2;
    cr_assert(pt_tls_io_write(&x.io, "a", 1));
    cr_assert_not(pt_tls_io_write(&x.io, "b", 1), "the last number is never used");
    free_pair(&x);
}

/* The self-check: the sending key must open what OpenSSL sealed. */
Test(tlsrec, adopt_refuses_records_of_another_key)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    struct pt_tlsrec r = *x.io.rec;
    r.tx.seq = 0;
    struct pt_wbuf b = {0};
    cr_assert(pt_tlsrec_seal(&r, "ticket-ish", 10, &b)); /* application data, not handshake */
    r.tx.seq = 0;
    cr_assert_not(pt_tlsrec_adopt(&r, b.data, b.len));
    pt_wbuf_free(&b);
    r = *x.io.rec;
    r.tx.seq = 0;
    cr_assert(pt_tlsrec_adopt(&r, NULL, 0));
    cr_assert_eq(r.tx.seq, 0);
    free_pair(&x);
}

Test(tlsrec, tls12_client_stays_on_openssl)
{
    struct pair x;
    connect_pair(&x, NULL, TLS1_2_VERSION);
    cr_assert_not_null(x.io.ssl);
    cr_assert_null(x.io.rec);
    both_ways(&x, 1 << 20);
    both_ways(&x, 3);
    pt_tls_io_close(&x.io);
    to_client(&x);
    char b[4];
    cr_assert_eq(SSL_read(x.cli, b, sizeof(b)), 0);
    free_pair(&x);
}

Test(tlsrec, h2_choice_survives_the_handover)
{
    struct pair x;
    connect_alpn(&x, NULL, 0, true);
    cr_assert_null(x.io.ssl);
    cr_assert(pt_tls_io_is_h2(&x.io));
    free_pair(&x);
    connect_pair(&x, NULL, 0);
    cr_assert_null(x.io.ssl);
    cr_assert_not(pt_tls_io_is_h2(&x.io));
    free_pair(&x);
}

/* A client that asks for KeyUpdates without end, and never reads, would
 * make the server queue an answer per record: the run is capped (empty
 * records count alike), and data in between resets the count. */
Test(tlsrec, key_update_flood_is_capped)
{
    struct pair x;
    connect_pair(&x, NULL, 0);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < PT_TLSREC_NONDATA_MAX; i++) {
            cr_assert_eq(SSL_key_update(x.cli, SSL_KEY_UPDATE_REQUESTED), 1);
            cr_assert_eq(SSL_do_handshake(x.cli), 1);
            pump(&x, 1 << 20);
            cr_assert_eq(x.last, PT_TLS_WANT, "KeyUpdate %d of a run", i + 1);
        }
        both_ways(&x, 1 << 20); /* data resets the count */
    }
    size_t queued = x.io.out.len;
    for (int i = 0; i <= PT_TLSREC_NONDATA_MAX; i++) {
        cr_assert_eq(SSL_key_update(x.cli, SSL_KEY_UPDATE_REQUESTED), 1);
        cr_assert_eq(SSL_do_handshake(x.cli), 1);
        /* the server's answers are not read by the client */
        int n;
        static uint8_t net[1 << 12];
        while ((n = BIO_read(SSL_get_wbio(x.cli), net, sizeof(net))) > 0)
            server_pass(&x, net, (size_t)n);
        if (x.last == PT_TLS_ERROR)
            break;
    }
    cr_assert_eq(x.last, PT_TLS_ERROR, "the %dth KeyUpdate in a row ends it",
                 PT_TLSREC_NONDATA_MAX + 1);
    cr_assert_lt(x.io.out.len - queued, (size_t)(PT_TLSREC_NONDATA_MAX + 2) * 64,
                 "answers queued for a client that does not read stay bounded");
    free_pair(&x);
}
