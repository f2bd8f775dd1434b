#include "worker/tls.h"

#include "common/log.h"
#include "common/route.h"

#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <time.h>

/* Mozilla "intermediate" (v5.7) without the DHE suites: finite-field DH costs
 * far more CPU than ECDHE for no client that still needs it. */
#define CIPHERS_TLS12                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"              \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"              \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define GROUPS "X25519:P-256:P-384"

struct cert_ctx {
    char *id;
    char *pem;       /* cert_pem it was built from, to detect changes */
    SSL_CTX *ctx;
    int64_t not_after; /* unix seconds, 0: unknown */
};

struct pt_tls {
    struct cert_ctx *certs;
    size_t n_certs;
    /* Certificate names follow RFC 6125, not routes: "*.example.org"
     * covers exactly one label. Exact SANs and the suffixes of wildcard SANs
     * go to two tables, each looked up by exact name only. */
    struct pt_route_table *exact, *wild;
    size_t *exact_cert, *wild_cert;
    SSL_CTX *client_verify, *client_noverify;
};

/* Marks an SSL whose domain offers h2 (SSL app data; nothing else uses it). */
static int h2_marker;

void pt_tls_offer_h2(SSL *ssl)
{
    SSL_set_app_data(ssl, &h2_marker);
}

bool pt_tls_is_h2(SSL *ssl)
{
    const unsigned char *p;
    unsigned int n;
    SSL_get0_alpn_selected(ssl, &p, &n);
    return n == 2 && memcmp(p, "h2", 2) == 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)arg;
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    /* Our preference order: h2 first where the domain offers it. */
    const unsigned char *ours = SSL_get_app_data(ssl) == &h2_marker ? both : both + 3;
    unsigned int ours_len = (unsigned int)(sizeof(both) - 1 - (size_t)(ours - both));
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, ours_len, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    /* A client that offers only h2 to a domain without it still gets
     * HTTP/1.1 without ALPN rather than a failed handshake. */
    return SSL_TLSEXT_ERR_NOACK;
}

/* The session ticket key (name 16, HMAC 32, AES 32 bytes), one per worker
 * process: every context reads it through ticket_cb, so a rotation (a
 * configuration delta) rebuilds no context. Tickets sealed with the
 * previous key stop resuming: the client does one full handshake. */
static uint8_t ticket_key[80];

void pt_tls_set_ticket_key(const uint8_t key[80])
{
    memcpy(ticket_key, key, sizeof(ticket_key));
}

/* What SSL_CTX_set_tlsext_ticket_keys does with a fixed key: AES-256-CBC
 * and HMAC-SHA256 under the current key. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    (void)ssl;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, ticket_key + 16, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (enc) {
        memcpy(name, ticket_key, 16);
        if (RAND_bytes(iv, 16) != 1 ||
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, ticket_key + 48, iv) != 1)
            return -1;
    } else {
        if (memcmp(name, ticket_key, 16) != 0)
            return 0; /* an older key: a full handshake */
        if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, ticket_key + 48, iv) != 1)
            return -1;
    }
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 1 : -1;
}

static SSL_CTX *server_ctx(const struct pt_cert *c)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *bio = NULL;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, CIPHERS_TLS12);
    SSL_CTX_set1_groups_list(ctx, GROUPS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    /* Resumption by tickets only: the key is the same in every worker, so a
     * client resumes whichever worker the kernel hands it to. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);

    bio = BIO_new_mem_buf(c->cert_pem, -1);
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1)
        goto fail;
    X509 *extra;
    while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            goto fail;
        }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(bio);
    bio = BIO_new_mem_buf(c->key_pem, -1);
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (key == NULL || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    X509_free(x);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return ctx;
fail:
    pt_log(PT_LOG_ERROR, "certificate %s does not load: %s", c->id,
           ERR_reason_error_string(ERR_peek_last_error()) ? ERR_reason_error_string(ERR_peek_last_error()) : "?");
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(key);
    BIO_free(bio);
    SSL_CTX_free(ctx);
    return NULL;
}

static SSL_CTX *client_ctx(bool verify)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_ENABLE_PARTIAL_WRITE);
    if (verify) {
        SSL_CTX_set_default_verify_paths(ctx);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

static int by_id_cmp(const void *a, const void *b)
{
    const struct cert_ctx *x = *(const struct cert_ctx *const *)a;
    const struct cert_ctx *y = *(const struct cert_ctx *const *)b;
    return strcmp(x->id, y->id);
}

/* <prev>'s certificates, found by id. A delta keeps the snapshot's order
 * but for the slots it changed, and the contexts follow that order, so the
 * same index is tried first; the others are found by bisection over a
 * sorted index made the first time one is needed. */
struct prev_index {
    struct pt_tls *prev;
    struct cert_ctx **by_id; /* owned, sorted by id once needed */
};

static struct cert_ctx *prev_find(struct prev_index *x, size_t i, const char *id)
{
    struct pt_tls *prev = x->prev;
    if (prev == NULL || prev->n_certs == 0)
        return NULL;
    if (i < prev->n_certs && strcmp(prev->certs[i].id, id) == 0)
        return &prev->certs[i];
    if (x->by_id == NULL) {
        x->by_id = pt_xcalloc(prev->n_certs, sizeof(*x->by_id));
        for (size_t j = 0; j < prev->n_certs; j++)
            x->by_id[j] = &prev->certs[j];
        qsort(x->by_id, prev->n_certs, sizeof(*x->by_id), by_id_cmp);
    }
    struct cert_ctx key = {.id = (char *)id}, *kp = &key;
    struct cert_ctx **hit = bsearch(&kp, x->by_id, prev->n_certs, sizeof(*x->by_id), by_id_cmp);
    return hit ? *hit : NULL;
}

static bool listed(const char *const *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return true;
    return false;
}

struct pt_tls *pt_tls_build(const struct pt_snapshot *s, struct pt_tls *prev,
                            const char *const *changed, size_t n_changed)
{
    struct pt_tls *t = pt_xcalloc(1, sizeof(*t));
    pt_tls_set_ticket_key(s->settings.ticket_key);
    struct prev_index px = {prev, NULL};
    t->certs = pt_xcalloc(s->n_certs, sizeof(*t->certs));
    t->n_certs = s->n_certs;
    size_t n_names = 0;
    for (size_t i = 0; i < s->n_certs; i++) {
        const struct pt_cert *c = &s->certs[i];
        struct cert_ctx *p = prev_find(&px, i, c->id);
        /* Unchanged: not in <changed>, or (a whole snapshot) the same PEM. */
        bool same = p && p->ctx && p->pem &&
                    (changed ? !listed(changed, n_changed, c->id)
                             : strcmp(p->pem, c->cert_pem) == 0);
        t->certs[i].id = pt_xstrdup(c->id);
        if (same) {
            /* Taken over, not copied: <prev> is freed next. */
            t->certs[i].pem = p->pem;
            t->certs[i].ctx = p->ctx;
            p->pem = NULL;
            p->ctx = NULL;
        } else {
            t->certs[i].pem = pt_xstrdup(c->cert_pem);
            t->certs[i].ctx = server_ctx(c);
        }
        t->certs[i].not_after = c->not_after;
        n_names += c->n_names;
    }
    free(px.by_id);
    /* One name may appear on several certificates: the one expiring last
     * wins, so a renewed certificate takes over from the old one. */
    const char **ex = pt_xcalloc(n_names, sizeof(*ex)), **wi = pt_xcalloc(n_names, sizeof(*wi));
    t->exact_cert = pt_xcalloc(n_names, sizeof(*t->exact_cert));
    t->wild_cert = pt_xcalloc(n_names, sizeof(*t->wild_cert));
    size_t ne = 0, nw = 0;
    /* Names seen so far, each to its slot in ex/wi: one probe per name. */
    struct pt_route_table *seen_ex = pt_route_build(NULL, 0), *seen_wi = pt_route_build(NULL, 0);
    for (size_t i = 0; i < s->n_certs; i++) {
        if (t->certs[i].ctx == NULL)
            continue;
        for (size_t j = 0; j < s->certs[i].n_names; j++) {
            const char *n = s->certs[i].names[j];
            bool w = n[0] == '*';
            if (w && (n[1] != '.' || n[2] == '\0'))
                continue; /* a lone "*" covers nothing */
            const char *key = w ? n + 2 : n;
            const char **arr = w ? wi : ex;
            struct pt_route_table *seen = w ? seen_wi : seen_ex;
            size_t *cnt = w ? &nw : &ne, *map = w ? t->wild_cert : t->exact_cert;
            int q = pt_route_find(seen, key);
            if (q >= 0) {
                if (s->certs[i].not_after > s->certs[map[q]].not_after)
                    map[q] = i;
                continue;
            }
            pt_route_set(seen, key, (int)*cnt);
            arr[*cnt] = key;
            map[(*cnt)++] = i;
        }
    }
    pt_route_free(seen_ex);
    pt_route_free(seen_wi);
    t->exact = pt_route_build(ex, ne);
    t->wild = pt_route_build(wi, nw);
    free(ex);
    free(wi);
    t->client_verify = prev && prev->client_verify ? prev->client_verify : client_ctx(true);
    t->client_noverify =
        prev && prev->client_noverify ? prev->client_noverify : client_ctx(false);
    if (prev) {
        SSL_CTX_up_ref(t->client_verify);
        SSL_CTX_up_ref(t->client_noverify);
    }
    return t;
}

void pt_tls_free(struct pt_tls *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_certs; i++) {
        free(t->certs[i].id);
        free(t->certs[i].pem);
        SSL_CTX_free(t->certs[i].ctx);
    }
    free(t->certs);
    pt_route_free(t->exact);
    pt_route_free(t->wild);
    free(t->exact_cert);
    free(t->wild_cert);
    SSL_CTX_free(t->client_verify);
    SSL_CTX_free(t->client_noverify);
    free(t);
}

/* The context of certificate <i>, or NULL once it expired: the daemon
 * leaves expired certificates out of the next snapshot, but nothing else
 * may come until then, so the worker checks at each handshake. */
static SSL_CTX *unexpired(const struct pt_tls *t, size_t i)
{
    const struct cert_ctx *c = &t->certs[i];
    if (c->not_after != 0 && c->not_after <= (int64_t)time(NULL))
        return NULL;
    return c->ctx;
}

SSL_CTX *pt_tls_server_ctx(const struct pt_tls *t, const char *sni, size_t len)
{
    if (t == NULL || len == 0)
        return NULL;
    int ix = pt_route_lookup(t->exact, sni, len);
    if (ix >= 0)
        return unexpired(t, t->exact_cert[ix]);
    const char *dot = memchr(sni, '.', len);
    if (dot == NULL || dot == sni)
        return NULL;
    ix = pt_route_lookup(t->wild, dot + 1, len - (size_t)(dot + 1 - sni));
    return ix >= 0 ? unexpired(t, t->wild_cert[ix]) : NULL;
}

SSL_CTX *pt_tls_client_ctx(const struct pt_tls *t, bool verify)
{
    return verify ? t->client_verify : t->client_noverify;
}

SSL *pt_tls_client_new(const struct pt_tls *t, bool verify, const char *name)
{
    SSL *ssl = SSL_new(pt_tls_client_ctx(t, verify));
    if (ssl == NULL)
        return NULL;
    SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(ssl);
    if (name[0])
        SSL_set_tlsext_host_name(ssl, name);
    if (verify)
        SSL_set1_host(ssl, name);
    SSL_do_handshake(ssl);
    return ssl;
}

/* ---- pt_tls_io: the BIO over a connection's buffers --------------------- */

static int io_write(BIO *b, const char *p, int n)
{
    struct pt_tls_io *io = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0)
        return 0;
    /* A small response's records fit the first allocation; bulk grows it
     * once to what one SSL_write produces. */
    if (io->out.cap == 0)
        pt_wbuf_reserve(&io->out, (size_t)n < 2048 ? 2048 : (size_t)n);
    pt_wbuf_put(&io->out, p, (size_t)n);
    return n;
}

static int io_read(BIO *b, char *p, int n)
{
    struct pt_tls_io *io = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0)
        return 0;
    if (io->in_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t k = io->in_len < (size_t)n ? io->in_len : (size_t)n;
    memcpy(p, io->in, k);
    io->in += k;
    io->in_len -= k;
    return (int)k;
}

static long io_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    struct pt_tls_io *io = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* the caller writes io->out when OpenSSL is done */
        return 1;
    case BIO_CTRL_PENDING:
        return (long)io->in_len;
    case BIO_CTRL_WPENDING:
        return (long)io->out.len;
    default:
        return 0;
    }
}

static int io_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *io_method(void)
{
    static BIO_METHOD *m; /* one per process, never freed */
    if (m == NULL) {
        m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "portier connection");
        if (m == NULL)
            return NULL;
        BIO_meth_set_write(m, io_write);
        BIO_meth_set_read(m, io_read);
        BIO_meth_set_ctrl(m, io_ctrl);
        BIO_meth_set_create(m, io_create);
    }
    return m;
}

bool pt_tls_io_attach(SSL *ssl, struct pt_tls_io *io)
{
    BIO_METHOD *m = io_method();
    BIO *b = m ? BIO_new(m) : NULL;
    if (b == NULL)
        return false;
    BIO_set_data(b, io);
    SSL_set_bio(ssl, b, b); /* one reference for both directions */
    return true;
}

void pt_tls_io_feed(struct pt_tls_io *io, const uint8_t *p, size_t n)
{
    if (io->held.len) {
        pt_wbuf_put(&io->held, p, n);
        io->in = io->held.data;
        io->in_len = io->held.len;
    } else {
        io->in = p;
        io->in_len = n;
    }
}

void pt_tls_io_done(struct pt_tls_io *io)
{
    if (io->held.len) {
        /* The pass read from held: keep its unread tail. */
        memmove(io->held.data, io->in, io->in_len);
        io->held.len = io->in_len;
        if (io->held.len == 0)
            pt_wbuf_free(&io->held);
    } else if (io->in_len) {
        pt_wbuf_put(&io->held, io->in, io->in_len);
    }
    io->in = NULL;
    io->in_len = 0;
}

void pt_tls_io_free(struct pt_tls_io *io)
{
    pt_wbuf_free(&io->held);
    pt_wbuf_free(&io->out);
}

enum pt_tls_ev pt_tls_step(SSL *ssl, bool *hs_done, uint8_t *buf, size_t cap, size_t *got)
{
    int r, e;
    *got = 0;
    if (!*hs_done) {
        r = SSL_do_handshake(ssl);
        if (r == 1) {
            *hs_done = true;
            return PT_TLS_HANDSHAKEN;
        }
    } else {
        r = SSL_read(ssl, buf, (int)cap);
        if (r > 0) {
            *got = (size_t)r;
            return PT_TLS_DATA;
        }
    }
    e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return PT_TLS_WANT;
    if (e == SSL_ERROR_ZERO_RETURN && *hs_done)
        return PT_TLS_EOF;
    return PT_TLS_ERROR;
}
