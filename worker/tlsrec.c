#include "worker/tlsrec.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPDATA 23
#define HS_KEY_UPDATE 24
#define TAG_LEN 16
#define PLAIN_RECORD_MAX 16384

#define ALERT_CLOSE_NOTIFY 0
#define ALERT_UNEXPECTED_MESSAGE 10
#define ALERT_BAD_RECORD_MAC 20
#define ALERT_RECORD_OVERFLOW 22
#define ALERT_ILLEGAL_PARAMETER 47
#define ALERT_DECODE_ERROR 50
#define ALERT_INTERNAL_ERROR 80

static int suite_ix(uint16_t suite)
{
    switch (suite) {
    case PT_TLSREC_AES_128_GCM_SHA256:
        return 0;
    case PT_TLSREC_AES_256_GCM_SHA384:
        return 1;
    case PT_TLSREC_CHACHA20_POLY1305_SHA256:
        return 2;
    default:
        return -1;
    }
}

/* One cipher context per suite and direction for the whole process (a
 * worker is one thread), set to its cipher once and re-keyed per record:
 * a key schedule per record costs far less than a context per
 * connection costs memory. Never freed. */
static EVP_CIPHER_CTX *aead(uint16_t suite, bool enc)
{
    static EVP_CIPHER_CTX *ctx[3][2];
    int i = suite_ix(suite);
    PT_ASSERT(i >= 0);
    if (ctx[i][enc] == NULL) {
        const EVP_CIPHER *c = i == 0   ? EVP_aes_128_gcm()
                              : i == 1 ? EVP_aes_256_gcm()
                                       : EVP_chacha20_poly1305();
        EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
        PT_ASSERT(x != NULL && EVP_CipherInit_ex(x, c, NULL, NULL, NULL, enc) == 1);
        ctx[i][enc] = x;
    }
    return ctx[i][enc];
}

/* HKDF-Expand-Label(secret, label, "", len) (RFC 8446 7.1) for len up to
 * the hash length: HKDF-Expand is then a single HMAC block. */
static bool expand_label(const struct pt_tlsrec *r, const uint8_t *secret, const char *label,
                         uint8_t *out, size_t len)
{
    uint8_t info[2 + 1 + 6 + 32 + 1 + 1], md[EVP_MAX_MD_SIZE];
    size_t ll = strlen(label), n = 0;
    unsigned int mdlen = 0;
    info[n++] = (uint8_t)(len >> 8);
    info[n++] = (uint8_t)len;
    info[n++] = (uint8_t)(6 + ll);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, ll);
    n += ll;
    info[n++] = 0; /* empty context */
    info[n++] = 1; /* HKDF-Expand's block counter */
    const EVP_MD *h = r->hash_len == 48 ? EVP_sha384() : EVP_sha256();
    if (HMAC(h, secret, (int)r->hash_len, info, n, md, &mdlen) == NULL || mdlen < len)
        return false;
    memcpy(out, md, len);
    return true;
}

/* Key and IV of <d> from its secret (RFC 8446 7.3); the sequence restarts. */
static bool derive(const struct pt_tlsrec *r, struct pt_tlsrec_dir *d)
{
    d->seq = 0;
    return expand_label(r, d->secret, "key", d->key, r->key_len) &&
           expand_label(r, d->secret, "iv", d->iv, sizeof(d->iv));
}

/* The next traffic secret of <d> (RFC 8446 7.2) and its keys. */
static bool update(const struct pt_tlsrec *r, struct pt_tlsrec_dir *d)
{
    uint8_t next[48];
    if (!expand_label(r, d->secret, "traffic upd", next, r->hash_len))
        return false;
    memcpy(d->secret, next, r->hash_len);
    return derive(r, d);
}

bool pt_tlsrec_init(struct pt_tlsrec *r, uint16_t suite, const uint8_t *rx_secret,
                    const uint8_t *tx_secret, size_t secret_len)
{
    memset(r, 0, sizeof(*r));
    if (suite_ix(suite) < 0)
        return false;
    r->suite = suite;
    r->hash_len = suite == PT_TLSREC_AES_256_GCM_SHA384 ? 48 : 32;
    r->key_len = suite == PT_TLSREC_AES_128_GCM_SHA256 ? 16 : 32;
    if (secret_len != r->hash_len)
        return false;
    memcpy(r->rx.secret, rx_secret, secret_len);
    memcpy(r->tx.secret, tx_secret, secret_len);
    return derive(r, &r->rx) && derive(r, &r->tx);
}

/* The per-record nonce: the IV xor the left-padded sequence (5.3). */
static void nonce(const struct pt_tlsrec_dir *d, uint8_t out[12])
{
    memcpy(out, d->iv, 12);
    for (int i = 0; i < 8; i++)
        out[11 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

/* Appends one record of inner type <type> around <p>[0..n) (n <= 2^14). */
static bool seal_one(struct pt_tlsrec *r, uint8_t type, const uint8_t *p, size_t n,
                     struct pt_wbuf *out)
{
    if (r->tx.seq == UINT64_MAX)
        return false;
    size_t ct = n + 1 + TAG_LEN;
    pt_wbuf_reserve(out, 5 + ct);
    uint8_t *h = out->data + out->len, *o = h + 5, iv[12];
    h[0] = CT_APPDATA;
    h[1] = 3;
    h[2] = 3;
    h[3] = (uint8_t)(ct >> 8);
    h[4] = (uint8_t)ct;
    nonce(&r->tx, iv);
    EVP_CIPHER_CTX *x = aead(r->suite, true);
    int k;
    bool ok = EVP_CipherInit_ex(x, NULL, NULL, r->tx.key, iv, 1) == 1 &&
              EVP_CipherUpdate(x, NULL, &k, h, 5) == 1 &&
              (n == 0 || EVP_CipherUpdate(x, o, &k, p, (int)n) == 1) &&
              EVP_CipherUpdate(x, o + n, &k, &type, 1) == 1 &&
              EVP_CipherFinal_ex(x, o + n + 1, &k) == 1 &&
              EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, o + n + 1) == 1;
    PT_ASSERT(ok); /* a cipher set up once does not fail on its own input */
    out->len += 5 + ct;
    r->tx.seq++;
    return true;
}

bool pt_tlsrec_seal(struct pt_tlsrec *r, const void *p, size_t n, struct pt_wbuf *out)
{
    size_t records = (n + PLAIN_RECORD_MAX - 1) / PLAIN_RECORD_MAX;
    if (r->tx.seq > UINT64_MAX - 1 - records)
        return false;
    pt_wbuf_reserve(out, n + records * (5 + 1 + TAG_LEN));
    for (size_t off = 0; off < n; off += PLAIN_RECORD_MAX) {
        size_t k = n - off < PLAIN_RECORD_MAX ? n - off : PLAIN_RECORD_MAX;
        seal_one(r, CT_APPDATA, (const uint8_t *)p + off, k, out);
    }
    return true;
}

bool pt_tlsrec_alert(struct pt_tlsrec *r, uint8_t desc, struct pt_wbuf *out)
{
    uint8_t a[2] = {desc == ALERT_CLOSE_NOTIFY ? 1 : 2, desc};
    return seal_one(r, CT_ALERT, a, 2, out);
}

/* Decrypts the record at <in> with <d>: its inner type in *type and its
 * content (padding removed) in plain[0..*n). */
static enum pt_tlsrec_res decrypt(const struct pt_tlsrec *r, struct pt_tlsrec_dir *d,
                                  const uint8_t *in, size_t len, uint8_t *plain, size_t *n,
                                  uint8_t *type, size_t *used, uint8_t *alert)
{
    *used = 0;
    if (len < 5)
        return PT_TLSREC_NEED;
    size_t ct = (size_t)in[3] << 8 | in[4];
    /* After the handshake every record is protected application_data
     * (5.1: not even a plain change_cipher_spec any more). */
    if (in[0] != CT_APPDATA) {
        *alert = ALERT_UNEXPECTED_MESSAGE;
        return PT_TLSREC_INVALID;
    }
    if (ct < TAG_LEN + 1) { /* no room for the inner type */
        *alert = ALERT_DECODE_ERROR;
        return PT_TLSREC_INVALID;
    }
    if (ct > 16384 + 256 || ct - TAG_LEN > PLAIN_RECORD_MAX + 1) {
        *alert = ALERT_RECORD_OVERFLOW;
        return PT_TLSREC_INVALID;
    }
    if (len < 5 + ct)
        return PT_TLSREC_NEED;
    *used = 5 + ct;
    if (d->seq == UINT64_MAX) { /* 5.3: never wrap; a peer this long-lived ends */
        *alert = ALERT_INTERNAL_ERROR;
        return PT_TLSREC_INVALID;
    }
    size_t m = ct - TAG_LEN;
    uint8_t iv[12];
    nonce(d, iv);
    EVP_CIPHER_CTX *x = aead(r->suite, false);
    int k;
    if (EVP_CipherInit_ex(x, NULL, NULL, d->key, iv, 0) != 1 ||
        EVP_CipherUpdate(x, NULL, &k, in, 5) != 1 ||
        EVP_CipherUpdate(x, plain, &k, in + 5, (int)m) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)(in + 5 + m)) != 1 ||
        EVP_CipherFinal_ex(x, plain + m, &k) != 1) {
        *alert = ALERT_BAD_RECORD_MAC;
        return PT_TLSREC_INVALID;
    }
    d->seq++;
    /* The inner type is the last non-zero byte; zeros after it are padding. */
    while (m > 0 && plain[m - 1] == 0)
        m--;
    if (m == 0) {
        *alert = ALERT_UNEXPECTED_MESSAGE;
        return PT_TLSREC_INVALID;
    }
    *type = plain[m - 1];
    *n = m - 1;
    return PT_TLSREC_DATA;
}

/* A KeyUpdate record (4.6.3): exactly one whole message, nothing else. */
static enum pt_tlsrec_res key_update(struct pt_tlsrec *r, const uint8_t *m, size_t n,
                                     struct pt_wbuf *out, uint8_t *alert)
{
    static const uint8_t not_requested[5] = {HS_KEY_UPDATE, 0, 0, 1, 0};
    if (n != 5 || m[0] != HS_KEY_UPDATE || m[1] != 0 || m[2] != 0 || m[3] != 1) {
        /* Anything else, a fragment included, may not come after the
         * handshake here: we ask for no client certificate and send no
         * tickets to a client. */
        *alert = ALERT_UNEXPECTED_MESSAGE;
        return PT_TLSREC_INVALID;
    }
    if (m[4] > 1) {
        *alert = ALERT_ILLEGAL_PARAMETER;
        return PT_TLSREC_INVALID;
    }
    /* The answer leaves under the old key; what we send after it, under
     * the new one. */
    if (m[4] == 1 && (!seal_one(r, CT_HANDSHAKE, not_requested, 5, out) || !update(r, &r->tx))) {
        *alert = ALERT_INTERNAL_ERROR;
        return PT_TLSREC_INVALID;
    }
    if (!update(r, &r->rx)) {
        *alert = ALERT_INTERNAL_ERROR;
        return PT_TLSREC_INVALID;
    }
    return PT_TLSREC_KEYUPDATE;
}

enum pt_tlsrec_res pt_tlsrec_open(struct pt_tlsrec *r, const uint8_t *in, size_t len,
                                  uint8_t *plain, size_t *plain_len, size_t *used,
                                  struct pt_wbuf *out, uint8_t *alert)
{
    uint8_t type = 0;
    *plain_len = 0;
    *alert = 0;
    size_t n = 0;
    enum pt_tlsrec_res res = decrypt(r, &r->rx, in, len, plain, &n, &type, used, alert);
    if (res != PT_TLSREC_DATA)
        return res;
    if (type == CT_APPDATA && n > 0)
        r->nondata = 0;
    else if (type != CT_ALERT && ++r->nondata > PT_TLSREC_NONDATA_MAX) {
        *alert = ALERT_UNEXPECTED_MESSAGE;
        return PT_TLSREC_INVALID;
    }
    switch (type) {
    case CT_APPDATA:
        *plain_len = n;
        return PT_TLSREC_DATA;
    case CT_HANDSHAKE:
        return key_update(r, plain, n, out, alert);
    case CT_ALERT:
        if (n != 2) {
            *alert = ALERT_DECODE_ERROR;
            return PT_TLSREC_INVALID;
        }
        /* Any other alert ends the connection without an answer (6.2). */
        return plain[1] == ALERT_CLOSE_NOTIFY ? PT_TLSREC_EOF : PT_TLSREC_INVALID;
    default: /* change_cipher_spec (protected or not) or unknown */
        *alert = ALERT_UNEXPECTED_MESSAGE;
        return PT_TLSREC_INVALID;
    }
}

bool pt_tlsrec_adopt(struct pt_tlsrec *r, const uint8_t *p, size_t n)
{
    static uint8_t plain[PT_TLSREC_PLAIN_MAX]; /* a worker is one thread */
    struct pt_tlsrec_dir d = r->tx;
    while (n > 0) {
        size_t m, used;
        uint8_t type = 0, alert = 0;
        if (decrypt(r, &d, p, n, plain, &m, &type, &used, &alert) != PT_TLSREC_DATA ||
            type != CT_HANDSHAKE)
            return false;
        p += used;
        n -= used;
    }
    r->tx.seq = d.seq;
    return true;
}
