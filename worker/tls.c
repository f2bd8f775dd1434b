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

/* A certificate as every connection presenting it shares it: one server
 * SSL_CTX serves them all (pt_tls.server), and each SSL gets its
 * certificate, chain and key by reference at SSL_new time. An SSL_CTX per
 * certificate cost ~13 KiB more per certificate (OpenSSL's method tables,
 * stores and caches), 130 MiB per worker at 10,000 certificates. */
struct cert_ctx {
    char *id;        /* owned */
    uint8_t digest[32]; /* SHA-256 of the cert and key PEMs: a change is seen */
    X509 *leaf;      /* owned; NULL: it does not load (its names then serve nothing) */
    STACK_OF(X509) *chain; /* owned, may be empty */
    EVP_PKEY *key;   /* owned */
    int64_t not_after; /* unix seconds, 0: unknown */
    char **names;    /* owned copies of the certificate's names */
    size_t n_names;
};

/* A name some certificates cover, and which of them serves it: one name may
 * appear on several certificates, the one expiring last wins, so a renewed
 * certificate takes over from the old one. */
struct name_slot {
    char *key;         /* owned: the name, without "*." for a wildcard */
    bool wild;         /* in the wildcard table */
    uint32_t *certs;   /* owned: indexes into certs (one per occurrence) */
    uint32_t n, cap;
    uint32_t best;     /* the one of <certs> expiring last */
};

struct pt_tls {
    struct cert_ctx *certs;
    size_t n_certs, cap_certs;
    struct pt_route_table *ids; /* id -> index into certs */
    /* Certificate names follow RFC 6125, not routes: "*.example.org"
     * covers exactly one label. Exact SANs and the suffixes of wildcard SANs
     * go to two tables, each looked up by exact name only, to a name slot.
     * Every table and array here changes in place, one certificate at a
     * time (pt_tls_update): a delta costs that certificate's names. */
    struct pt_route_table *exact, *wild;
    struct name_slot *slots;
    size_t n_slots, cap_slots;
    SSL_CTX *server; /* owned (a reference): every certificate's connections */
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

static void keylog(const SSL *ssl, const char *line);

static SSL_CTX *server_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
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
    SSL_CTX_set_keylog_callback(ctx, keylog); /* the handover's secrets */
    /* Resumption by tickets only: the key is the same in every worker, so a
     * client resumes whichever worker the kernel hands it to. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    return ctx;
}

static void pem_digest(const struct pt_cert *c, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned n = 0;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, c->cert_pem, strlen(c->cert_pem) + 1) != 1 ||
        EVP_DigestUpdate(md, c->key_pem, strlen(c->key_pem)) != 1 ||
        EVP_DigestFinal_ex(md, out, &n) != 1 || n != 32)
        pt_panic(__FILE__, __LINE__, "SHA-256 failed");
    EVP_MD_CTX_free(md);
}

/* Parses <c>'s chain and key into <cc> (leaf NULL when they do not load). */
static void cert_load(struct cert_ctx *cc, const struct pt_cert *c)
{
    BIO *bio = BIO_new_mem_buf(c->cert_pem, -1);
    cc->leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    cc->chain = sk_X509_new_null();
    if (cc->leaf == NULL || cc->chain == NULL)
        goto fail;
    X509 *extra;
    while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (sk_X509_push(cc->chain, extra) <= 0) {
            X509_free(extra);
            goto fail;
        }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(bio);
    bio = BIO_new_mem_buf(c->key_pem, -1);
    cc->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (cc->key == NULL || X509_check_private_key(cc->leaf, cc->key) != 1)
        goto fail;
    BIO_free(bio);
    return;
fail:
    pt_log(PT_LOG_ERROR, "certificate %s does not load: %s", c->id,
           ERR_reason_error_string(ERR_peek_last_error()) ? ERR_reason_error_string(ERR_peek_last_error()) : "?");
    ERR_clear_error();
    BIO_free(bio);
    X509_free(cc->leaf);
    sk_X509_pop_free(cc->chain, X509_free);
    EVP_PKEY_free(cc->key);
    cc->leaf = NULL;
    cc->chain = NULL;
    cc->key = NULL;
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

static void *room(void *v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return v;
    *cap = *cap ? *cap * 2 : 16;
    return pt_xrealloc(v, *cap * size);
}

static struct pt_route_table *table_of(struct pt_tls *t, bool wild)
{
    return wild ? t->wild : t->exact;
}

static void slot_best(struct pt_tls *t, struct name_slot *sl)
{
    sl->best = sl->certs[0];
    for (uint32_t k = 1; k < sl->n; k++)
        if (t->certs[sl->certs[k]].not_after > t->certs[sl->best].not_after)
            sl->best = sl->certs[k];
}

/* The key certificate name <n> is filed under, or NULL (a lone "*" covers
 * nothing). */
static const char *name_key(const char *n, bool *wild)
{
    *wild = n[0] == '*';
    if (*wild && (n[1] != '.' || n[2] == '\0'))
        return NULL;
    return *wild ? n + 2 : n;
}

/* Files the names of certificate <i> (with a context). */
static void names_add(struct pt_tls *t, uint32_t i)
{
    const struct cert_ctx *c = &t->certs[i];
    for (size_t j = 0; j < c->n_names; j++) {
        bool wild;
        const char *key = name_key(c->names[j], &wild);
        if (key == NULL)
            continue;
        int q = pt_route_find(table_of(t, wild), key);
        if (q < 0) {
            t->slots = room(t->slots, t->n_slots, &t->cap_slots, sizeof(*t->slots));
            PT_ASSERT(t->n_slots < INT32_MAX);
            q = (int)t->n_slots++;
            struct name_slot *sl = &t->slots[q];
            memset(sl, 0, sizeof(*sl));
            sl->key = pt_xstrdup(key);
            sl->wild = wild;
            pt_route_set(table_of(t, wild), sl->key, q);
        }
        struct name_slot *sl = &t->slots[q];
        if (sl->n == sl->cap) {
            sl->cap = sl->cap ? sl->cap * 2 : 2;
            sl->certs = pt_xrealloc(sl->certs, sl->cap * sizeof(*sl->certs));
        }
        sl->certs[sl->n++] = i;
        if (sl->n == 1 || c->not_after > t->certs[sl->best].not_after)
            sl->best = i;
    }
}

/* The slot certificate name <n> is filed under (its index in *q), or NULL. */
static struct name_slot *slot_of(struct pt_tls *t, const char *n, int *q)
{
    bool wild;
    const char *key = name_key(n, &wild);
    *q = key ? pt_route_find(table_of(t, wild), key) : -1;
    return *q >= 0 ? &t->slots[*q] : NULL;
}

#define NO_CERT UINT32_MAX

/* In the slots of <c>'s names, certificate index <from> becomes <to>, or
 * goes (<to> NO_CERT: then a name no certificate covers any more goes, the
 * last slot filling its place). */
static void names_rewrite(struct pt_tls *t, const struct cert_ctx *c, uint32_t from,
                          uint32_t to)
{
    for (size_t j = 0; j < c->n_names; j++) {
        int q;
        struct name_slot *sl = slot_of(t, c->names[j], &q);
        if (sl == NULL)
            continue;
        for (uint32_t k = 0; k < sl->n; k++) {
            if (sl->certs[k] != from)
                continue;
            if (to != NO_CERT) {
                sl->certs[k] = to;
                continue;
            }
            sl->certs[k] = sl->certs[--sl->n]; /* one occurrence per name */
            break;
        }
        if (to != NO_CERT || sl->n) {
            slot_best(t, sl);
            continue;
        }
        pt_route_del(table_of(t, sl->wild), sl->key);
        free(sl->key);
        free(sl->certs);
        size_t last = t->n_slots - 1;
        if ((size_t)q != last) {
            t->slots[q] = t->slots[last];
            pt_route_set(table_of(t, t->slots[q].wild), t->slots[q].key, q);
        }
        t->n_slots--;
    }
}

/* Adds certificate <c>, taking over <from>'s parsed chain and key (an
 * unchanged certificate of the previous build) or parsing them (NULL). */
static void cert_add(struct pt_tls *t, const struct pt_cert *c, struct cert_ctx *from)
{
    t->certs = room(t->certs, t->n_certs, &t->cap_certs, sizeof(*t->certs));
    PT_ASSERT(t->n_certs < INT32_MAX);
    uint32_t i = (uint32_t)t->n_certs++;
    struct cert_ctx *cc = &t->certs[i];
    memset(cc, 0, sizeof(*cc));
    cc->id = pt_xstrdup(c->id);
    if (from) {
        memcpy(cc->digest, from->digest, sizeof(cc->digest));
        cc->leaf = from->leaf;
        cc->chain = from->chain;
        cc->key = from->key;
        from->leaf = NULL;
        from->chain = NULL;
        from->key = NULL;
    } else {
        pem_digest(c, cc->digest);
        cert_load(cc, c);
    }
    cc->not_after = c->not_after;
    cc->names = pt_xcalloc(c->n_names ? c->n_names : 1, sizeof(*cc->names));
    for (size_t j = 0; j < c->n_names; j++)
        cc->names[j] = pt_xstrdup(c->names[j]);
    cc->n_names = c->n_names;
    pt_route_set(t->ids, cc->id, (int)i);
    if (cc->leaf)
        names_add(t, i);
}

static void cert_ctx_clear(struct cert_ctx *c)
{
    free(c->id);
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    EVP_PKEY_free(c->key);
    for (size_t j = 0; j < c->n_names; j++)
        free(c->names[j]);
    free(c->names);
}

/* Removes certificate <i>: the last one fills its place. */
static void cert_remove(struct pt_tls *t, uint32_t i)
{
    if (t->certs[i].leaf)
        names_rewrite(t, &t->certs[i], i, NO_CERT);
    pt_route_del(t->ids, t->certs[i].id);
    cert_ctx_clear(&t->certs[i]);
    uint32_t last = (uint32_t)t->n_certs - 1;
    if (i != last) {
        t->certs[i] = t->certs[last];
        pt_route_set(t->ids, t->certs[i].id, (int)i);
        if (t->certs[i].leaf)
            names_rewrite(t, &t->certs[i], last, i);
    }
    t->n_certs--;
}

struct pt_tls *pt_tls_build(const struct pt_snapshot *s, struct pt_tls *prev)
{
    struct pt_tls *t = pt_xcalloc(1, sizeof(*t));
    pt_tls_set_ticket_key(s->settings.ticket_key);
    t->ids = pt_route_build(NULL, 0);
    t->exact = pt_route_build(NULL, 0);
    t->wild = pt_route_build(NULL, 0);
    for (size_t i = 0; i < s->n_certs; i++) {
        const struct pt_cert *c = &s->certs[i];
        int q = prev ? pt_route_find(prev->ids, c->id) : -1;
        struct cert_ctx *p = q >= 0 ? &prev->certs[q] : NULL;
        uint8_t digest[32];
        if (p && p->leaf)
            pem_digest(c, digest);
        /* Taken over, not copied: <prev> is freed next. */
        cert_add(t, c, p && p->leaf && memcmp(p->digest, digest, 32) == 0 ? p : NULL);
    }
    t->server = prev && prev->server ? prev->server : server_ctx();
    if (prev && prev->server)
        SSL_CTX_up_ref(t->server);
    t->client_verify = prev && prev->client_verify ? prev->client_verify : client_ctx(true);
    t->client_noverify =
        prev && prev->client_noverify ? prev->client_noverify : client_ctx(false);
    if (prev) {
        SSL_CTX_up_ref(t->client_verify);
        SSL_CTX_up_ref(t->client_noverify);
    }
    return t;
}

void pt_tls_update(struct pt_tls *t, const struct pt_snapshot *s, const char *const *ids,
                   size_t n_ids)
{
    for (size_t k = 0; k < n_ids; k++) {
        int q = pt_route_find(t->ids, ids[k]);
        if (q >= 0)
            cert_remove(t, (uint32_t)q);
        int ix = s->cert_ids ? pt_route_find(s->cert_ids, ids[k]) : -1;
        if (ix >= 0)
            cert_add(t, &s->certs[ix], NULL);
    }
}

void pt_tls_free(struct pt_tls *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_certs; i++)
        cert_ctx_clear(&t->certs[i]);
    free(t->certs);
    for (size_t i = 0; i < t->n_slots; i++) {
        free(t->slots[i].key);
        free(t->slots[i].certs);
    }
    free(t->slots);
    pt_route_free(t->ids);
    pt_route_free(t->exact);
    pt_route_free(t->wild);
    SSL_CTX_free(t->server);
    SSL_CTX_free(t->client_verify);
    SSL_CTX_free(t->client_noverify);
    free(t);
}

/* The certificate that serves name slot <q>, or NULL once it expired: the
 * daemon leaves expired certificates out of the next snapshot, but nothing
 * else may come until then, so the worker checks at each handshake. */
static const struct cert_ctx *unexpired(const struct pt_tls *t, int q)
{
    const struct cert_ctx *c = &t->certs[t->slots[q].best];
    if (c->not_after != 0 && c->not_after <= (int64_t)time(NULL))
        return NULL;
    return c;
}

static const struct cert_ctx *cert_for(const struct pt_tls *t, const char *sni, size_t len)
{
    if (t == NULL || len == 0)
        return NULL;
    int ix = pt_route_lookup(t->exact, sni, len);
    if (ix >= 0)
        return unexpired(t, ix);
    const char *dot = memchr(sni, '.', len);
    if (dot == NULL || dot == sni)
        return NULL;
    ix = pt_route_lookup(t->wild, dot + 1, len - (size_t)(dot + 1 - sni));
    return ix >= 0 ? unexpired(t, ix) : NULL;
}

X509 *pt_tls_server_cert(const struct pt_tls *t, const char *sni, size_t len)
{
    const struct cert_ctx *c = cert_for(t, sni, len);
    return c ? c->leaf : NULL;
}

int pt_tls_server_new(const struct pt_tls *t, const char *sni, size_t len, SSL **out)
{
    *out = NULL;
    const struct cert_ctx *c = cert_for(t, sni, len);
    if (c == NULL)
        return PT_ENOTFOUND;
    SSL *ssl = t->server ? SSL_new(t->server) : NULL;
    /* References, not copies: the SSL keeps them after a change frees <c>. */
    if (ssl == NULL || SSL_use_cert_and_key(ssl, c->leaf, c->key, c->chain, 1) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        return PT_ENOMEM;
    }
    *out = ssl;
    return 0;
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

static int io_type; /* io_method's BIO type */

static BIO_METHOD *io_method(void)
{
    static BIO_METHOD *m; /* one per process, never freed */
    if (m == NULL) {
        io_type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK;
        m = BIO_meth_new(io_type, "portier connection");
        if (m == NULL)
            return NULL;
        BIO_meth_set_write(m, io_write);
        BIO_meth_set_read(m, io_read);
        BIO_meth_set_ctrl(m, io_ctrl);
        BIO_meth_set_create(m, io_create);
    }
    return m;
}

bool pt_tls_io_attach(struct pt_tls_io *io, SSL *ssl)
{
    BIO_METHOD *m = io_method();
    BIO *b = m ? BIO_new(m) : NULL;
    if (b == NULL) {
        SSL_free(ssl);
        return false;
    }
    BIO_set_data(b, io);
    SSL_set_bio(ssl, b, b); /* one reference for both directions */
    io->ssl = ssl;
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
    SSL_free(io->ssl);
    io->ssl = NULL;
    if (io->rec) {
        OPENSSL_cleanse(io->rec, sizeof(*io->rec));
        PT_FREE(io->rec);
    }
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

/* ---- the handover to worker/tlsrec.c ---------------------------------------- */

/* OpenSSL's key log ("LABEL <client random> <secret>", hex) is the one way
 * OpenSSL 3.0 gives the TLS 1.3 application traffic secrets. Until the
 * handover io->rec only stores them: a direction's seq is 1 once its
 * secret is in, hash_len its length. */
static void keylog(const SSL *ssl, const char *line)
{
    static const char cl[] = "CLIENT_TRAFFIC_SECRET_0 ", sl[] = "SERVER_TRAFFIC_SECRET_0 ";
    BIO *b = SSL_get_rbio(ssl);
    if (b == NULL || io_type == 0 || BIO_method_type(b) != io_type)
        return;
    struct pt_tls_io *io = BIO_get_data(b);
    bool client = strncmp(line, cl, sizeof(cl) - 1) == 0;
    if (!client && strncmp(line, sl, sizeof(sl) - 1) != 0)
        return;
    const char *sp = strchr(line + sizeof(cl) - 1, ' ');
    if (sp == NULL)
        return;
    const char *hex = sp + 1;
    size_t n = strlen(hex) / 2;
    if (n != 32 && n != 48)
        return;
    if (io->rec == NULL)
        io->rec = pt_xcalloc(1, sizeof(*io->rec));
    struct pt_tlsrec_dir *d = client ? &io->rec->rx : &io->rec->tx;
    for (size_t i = 0; i < n; i++) {
        int hi = pt_hexval(hex[2 * i]), lo = pt_hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return;
        d->secret[i] = (uint8_t)(hi << 4 | lo);
    }
    d->seq = 1;
    io->rec->hash_len = (uint8_t)n;
}

/* The handshake of io->ssl just completed; <mark>: io->out's length
 * before the step that completed it, so the records after it are the
 * ones OpenSSL sealed with its application key (its NewSessionTickets:
 * the server's flight left in an earlier step, since the client's
 * Finished answers it). The client's next record is its first under its
 * application key: OpenSSL reads one record at a time from our BIO and
 * none ahead, so what follows the Finished is still in io->in. */
static void handover(struct pt_tls_io *io, size_t mark)
{
    SSL *ssl = io->ssl;
    struct pt_tlsrec *r = io->rec;
    io->rec = NULL;
    if (r == NULL || r->rx.seq != 1 || r->tx.seq != 1 || SSL_version(ssl) != TLS1_3_VERSION ||
        SSL_has_pending(ssl) || SSL_get_early_data_status(ssl) == SSL_EARLY_DATA_ACCEPTED)
        goto keep;
    uint8_t rx[48], tx[48];
    size_t len = r->hash_len;
    memcpy(rx, r->rx.secret, len);
    memcpy(tx, r->tx.secret, len);
    uint16_t suite = (uint16_t)SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(ssl));
    bool ok = pt_tlsrec_init(r, suite, rx, tx, len) &&
              pt_tlsrec_adopt(r, io->out.data + mark, io->out.len - mark);
    OPENSSL_cleanse(rx, sizeof(rx));
    OPENSSL_cleanse(tx, sizeof(tx));
    if (!ok)
        goto keep;
    io->h2 = pt_tls_is_h2(ssl);
    SSL_free(ssl);
    io->ssl = NULL;
    io->rec = r;
    return;
keep:
    if (r) {
        OPENSSL_cleanse(r, sizeof(*r));
        free(r);
    }
}

/* One record of a handed-over connection. */
static enum pt_tls_ev rec_step(struct pt_tls_io *io, uint8_t *buf, size_t *got)
{
    for (;;) {
        size_t n = 0, used = 0;
        uint8_t alert = 0;
        enum pt_tlsrec_res res =
            pt_tlsrec_open(io->rec, io->in, io->in_len, buf, &n, &used, &io->out, &alert);
        io->in += used;
        io->in_len -= used;
        switch (res) {
        case PT_TLSREC_NEED:
            return PT_TLS_WANT;
        case PT_TLSREC_DATA:
            if (n == 0)
                continue; /* an empty record is allowed and means nothing */
            *got = n;
            return PT_TLS_DATA;
        case PT_TLSREC_KEYUPDATE:
            continue;
        case PT_TLSREC_EOF:
            return PT_TLS_EOF;
        case PT_TLSREC_INVALID:
            if (alert)
                pt_tlsrec_alert(io->rec, alert, &io->out);
            return PT_TLS_ERROR;
        }
    }
}

enum pt_tls_ev pt_tls_io_step(struct pt_tls_io *io, bool *hs_done, uint8_t *buf, size_t cap,
                              size_t *got)
{
    *got = 0;
    if (io->ssl) {
        size_t mark = io->out.len;
        enum pt_tls_ev ev = pt_tls_step(io->ssl, hs_done, buf, cap, got);
        if (ev == PT_TLS_HANDSHAKEN)
            handover(io, mark);
        return ev;
    }
    if (io->rec == NULL)
        return PT_TLS_ERROR;
    PT_ASSERT(cap >= PT_TLS_PLAIN_MAX);
    return rec_step(io, buf, got);
}

bool pt_tls_io_write(struct pt_tls_io *io, const void *p, size_t n)
{
    if (io->ssl) {
        size_t off = 0;
        while (off < n) {
            int w = SSL_write(io->ssl, (const uint8_t *)p + off, (int)(n - off));
            if (w <= 0)
                return false;
            off += (size_t)w;
        }
        return true;
    }
    if (io->rec == NULL)
        return false;
    if (io->out.cap == 0) /* as io_write: a small response fits the first allocation */
        pt_wbuf_reserve(&io->out, n < 2048 ? 2048 : n + n / 64 + 64);
    return pt_tlsrec_seal(io->rec, p, n, &io->out);
}

void pt_tls_io_close(struct pt_tls_io *io)
{
    if (io->ssl)
        SSL_shutdown(io->ssl);
    else if (io->rec)
        pt_tlsrec_alert(io->rec, 0, &io->out);
}

bool pt_tls_io_is_h2(const struct pt_tls_io *io)
{
    return io->ssl ? pt_tls_is_h2(io->ssl) : io->h2;
}
