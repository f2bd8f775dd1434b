#include "api/pem.h"

#include "common/dname.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <time.h>

/* Where a refusal is reported. */
struct rep {
    char *why;
    size_t whylen;
    struct pt_pem_info *out;
};

/* Writes the reason and the field at fault; returns <rc> (negative). */
__attribute__((format(printf, 4, 5))) static int refuse(struct rep *rp, int rc,
                                                        const char *field,
                                                        const char *fmt, ...)
{
    va_list ap;
    rp->out->field = field;
    if (rp->whylen) {
        va_start(ap, fmt);
        vsnprintf(rp->why, rp->whylen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* A PEM block name fit for a message: printable ASCII, at most 40 bytes
 * (the name comes from the upload, the message goes out as JSON). */
static const char *printable(const char *in, char *buf, size_t size)
{
    size_t i = 0;
    for (; in[i] && i + 1 < size && i < 40; i++)
        buf[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
    buf[i] = '\0';
    return buf;
}

/* True when the PEM_read_bio that just failed only met the end of input. */
static bool pem_at_end(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* One PEM block as PEM_read_bio returns it; the data may be key material. */
struct block {
    char *name;
    char *header;
    unsigned char *data;
    long len;
};

static void block_clear(struct block *b)
{
    OPENSSL_free(b->name);
    OPENSSL_free(b->header);
    if (b->data)
        OPENSSL_clear_free(b->data, (size_t)b->len);
    memset(b, 0, sizeof(*b));
}

/* Reads every block of <pem>[0..len): each must be a CERTIFICATE. */
static int read_certs(struct rep *rp, const char *pem, size_t len, STACK_OF(X509) *sk)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    char name[48];
    int rc = 0;
    PT_ASSERT(bio != NULL);
    for (;;) {
        struct block b = {0};
        int n = sk_X509_num(sk);
        if (PEM_read_bio(bio, &b.name, &b.header, &b.data, &b.len) != 1) {
            if (!pem_at_end())
                rc = refuse(rp, PT_EMALFORMED, "cert_pem",
                            "block %d: bad PEM encoding (truncated, or corrupted base64)",
                            n + 1);
            else if (n == 0)
                rc = refuse(rp, PT_EMALFORMED, "cert_pem",
                            "no PEM CERTIFICATE block found");
            break;
        }
        X509 *x = NULL;
        if (strcmp(b.name, PEM_STRING_X509) != 0 && strcmp(b.name, PEM_STRING_X509_OLD) != 0) {
            rc = refuse(rp, PT_EMALFORMED, "cert_pem",
                        "block %d is '%s': only CERTIFICATE blocks belong here%s", n + 1,
                        printable(b.name, name, sizeof(name)),
                        ends_with(b.name, "PRIVATE KEY") ? " (the key goes in key_pem)" : "");
        } else if (n == PT_PEM_CERTS_MAX) {
            rc = refuse(rp, PT_ETOOBIG, "cert_pem",
                        "more than %d certificates (the leaf and its chain)",
                        PT_PEM_CERTS_MAX);
        } else {
            const unsigned char *p = b.data;
            x = d2i_X509(NULL, &p, b.len);
            if (x == NULL || p != b.data + b.len)
                rc = refuse(rp, PT_EMALFORMED, "cert_pem",
                            "certificate %d does not parse as X.509", n + 1);
            else if (sk_X509_push(sk, x) > 0)
                x = NULL; /* the stack owns it */
            else
                PT_ASSERT(!"sk_X509_push: out of memory");
        }
        X509_free(x);
        block_clear(&b);
        if (rc != 0)
            break;
    }
    BIO_free(bio);
    return rc;
}

/* Never prompts: an encrypted key is refused, not asked for on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

/* <pem>[0..len) must hold exactly one private key block (EC PARAMETERS
 * blocks, as `openssl ecparam -genkey` writes them, are allowed). */
static int read_key(struct rep *rp, const char *pem, size_t len, EVP_PKEY **out)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    char name[48];
    int rc = 0, keys = 0, blocks = 0;
    PT_ASSERT(bio != NULL);
    for (;;) {
        struct block b = {0};
        if (PEM_read_bio(bio, &b.name, &b.header, &b.data, &b.len) != 1) {
            if (!pem_at_end())
                rc = refuse(rp, PT_EMALFORMED, "key_pem",
                            "block %d: bad PEM encoding (truncated, or corrupted base64)",
                            blocks + 1);
            break;
        }
        blocks++;
        if (strcmp(b.name, PEM_STRING_PKCS8) == 0 || strstr(b.header, "ENCRYPTED") != NULL)
            rc = refuse(rp, PT_EINVAL, "key_pem",
                        "the private key is encrypted: give it unencrypted "
                        "(openssl pkey -in KEY -out PLAIN.key)");
        else if (ends_with(b.name, "PRIVATE KEY"))
            keys++;
        else if (strcmp(b.name, PEM_STRING_ECPARAMETERS) != 0)
            rc = refuse(rp, PT_EMALFORMED, "key_pem",
                        "block %d is '%s': only the PRIVATE KEY block belongs here%s",
                        blocks, printable(b.name, name, sizeof(name)),
                        strcmp(b.name, PEM_STRING_X509) == 0 ? " (certificates go in cert_pem)"
                                                              : "");
        block_clear(&b);
        if (rc != 0)
            break;
    }
    BIO_free(bio);
    if (rc == 0 && keys == 0)
        rc = refuse(rp, PT_EMALFORMED, "key_pem", "no PEM PRIVATE KEY block found");
    if (rc == 0 && keys > 1)
        rc = refuse(rp, PT_EINVAL, "key_pem", "more than one private key");
    if (rc != 0)
        return rc;
    bio = BIO_new_mem_buf(pem, (int)len);
    PT_ASSERT(bio != NULL);
    *out = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (*out == NULL)
        return refuse(rp, PT_EMALFORMED, "key_pem", "the private key does not parse");
    return 0;
}

/* RSA 2048..8192 bits, EC P-256 or P-384, Ed25519: what TLS clients take
 * and what does not make every handshake slow. */
static int check_key_type(struct rep *rp, EVP_PKEY *k, const char *field, const char *what)
{
    if (k == NULL)
        return refuse(rp, PT_EINVAL, field, "%s has a public key OpenSSL cannot use", what);
    if (EVP_PKEY_is_a(k, "RSA")) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits < PT_PEM_RSA_MIN_BITS || bits > PT_PEM_RSA_MAX_BITS)
            return refuse(rp, PT_EINVAL, field,
                          "%s is RSA with %d bits: %d to %d bits are accepted", what, bits,
                          PT_PEM_RSA_MIN_BITS, PT_PEM_RSA_MAX_BITS);
        return 0;
    }
    if (EVP_PKEY_is_a(k, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        int nid = NID_undef;
        if (EVP_PKEY_get_group_name(k, group, sizeof(group), &glen) == 1) {
            nid = OBJ_sn2nid(group);
            if (nid == NID_undef)
                nid = EC_curve_nist2nid(group);
        }
        if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1)
            return 0;
        return refuse(rp, PT_EINVAL, field,
                      "%s is EC on curve '%s': only P-256 and P-384 are accepted", what,
                      printable(group[0] ? group : "explicit parameters", group,
                                sizeof(group)));
    }
    if (EVP_PKEY_is_a(k, "ED25519"))
        return 0;
    const char *type = EVP_PKEY_get0_type_name(k);
    char tbuf[48];
    return refuse(rp, PT_EINVAL, field,
                  "%s is of an unsupported type (%s): use RSA (2048 to %d bits), "
                  "EC P-256 or P-384, or Ed25519",
                  what, printable(type ? type : "unknown", tbuf, sizeof(tbuf)),
                  PT_PEM_RSA_MAX_BITS);
}

/* The leaf's DNS subjectAltNames, normalised and deduplicated. */
static int leaf_names(struct rep *rp, X509 *leaf, struct pt_pem_info *out)
{
    int crit = -1;
    const char *skipped = NULL;
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL && crit == -2)
        return refuse(rp, PT_EINVAL, "cert_pem",
                      "the leaf certificate has more than one subjectAltName extension");
    int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
    out->names = pt_xcalloc(n > 0 ? (size_t)n : 1, sizeof(*out->names));
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char norm[PT_DNAME_MAX + 1];
        const char *w = NULL;
        if (g->type != GEN_DNS)
            continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
        int dl = ASN1_STRING_length(g->d.dNSName);
        if (dl <= 0 || pt_dname_normalize((const char *)d, (size_t)dl, norm,
                                          PT_DNAME_ALLOW_WILDCARD, &w) < 0) {
            if (skipped == NULL)
                skipped = w ? w : "empty name";
            continue;
        }
        if (strcmp(norm, "*") == 0) { /* a SAN of "*" covers nothing */
            if (skipped == NULL)
                skipped = "'*' alone matches no name";
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < out->n_names && !dup; j++)
            dup = strcmp(out->names[j], norm) == 0;
        if (!dup)
            out->names[out->n_names++] = pt_xstrdup(norm);
    }
    GENERAL_NAMES_free(gens);
    if (out->n_names > 0)
        return 0;
    if (skipped)
        return refuse(rp, PT_EINVAL, "cert_pem",
                      "the leaf certificate has no usable DNS name in subjectAltName (%s)",
                      skipped);
    return refuse(rp, PT_EINVAL, "cert_pem",
                  "the leaf certificate has no DNS name in subjectAltName "
                  "(IP addresses and the subject CN are not used)");
}

/* Certificate i must be issued by i + 1, by name and by signature. */
static int check_chain(struct rep *rp, STACK_OF(X509) *sk)
{
    int n = sk_X509_num(sk);
    for (int i = 0; i + 1 < n; i++) {
        X509 *c = sk_X509_value(sk, i), *issuer = sk_X509_value(sk, i + 1);
        EVP_PKEY *ipub = X509_get0_pubkey(issuer);
        if (X509_check_issued(issuer, c) == X509_V_OK && ipub != NULL &&
            X509_verify(c, ipub) == 1)
            continue;
        if (X509_check_issued(c, issuer) == X509_V_OK)
            return refuse(rp, PT_EINVAL, "cert_pem",
                          "the certificates are in the wrong order (certificate %d issued "
                          "certificate %d): give the leaf first, then its issuer, and so on",
                          i + 1, i + 2);
        return refuse(rp, PT_EINVAL, "cert_pem",
                      "certificate %d was not issued by certificate %d: give the leaf "
                      "first, then each issuer in order",
                      i + 1, i + 2);
    }
    return 0;
}

static int time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Copies a memory BIO's contents into a malloc'ed string. */
static char *bio_string(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    PT_ASSERT(n >= 0);
    char *s = pt_xmalloc((size_t)n + 1);
    if (n > 0)
        memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static int encode(struct rep *rp, STACK_OF(X509) *sk, EVP_PKEY *key,
                  struct pt_pem_info *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    PT_ASSERT(b != NULL);
    for (int i = 0; i < sk_X509_num(sk); i++) {
        if (PEM_write_bio_X509(b, sk_X509_value(sk, i)) != 1) {
            BIO_free(b);
            return refuse(rp, PT_EMALFORMED, "cert_pem", "certificate %d cannot be re-encoded",
                          i + 1);
        }
    }
    out->cert_pem = bio_string(b);
    BIO_free(b);
    if (key == NULL)
        return 0;
    /* Secure-heap BIO: its buffer is wiped when freed. */
    b = BIO_new(BIO_s_secmem());
    PT_ASSERT(b != NULL);
    if (PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(b);
        return refuse(rp, PT_EMALFORMED, "key_pem", "the private key cannot be re-encoded");
    }
    out->key_pem = bio_string(b);
    BIO_free(b);
    return 0;
}

int pt_pem_check(const char *cert_pem, size_t clen, const char *key_pem, size_t klen,
                 struct pt_pem_info *out, char *why, size_t whylen)
{
    struct rep rp = {why, whylen, out};
    STACK_OF(X509) *sk = NULL;
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (whylen)
        why[0] = '\0';
    /* The caller's own OpenSSL errors stay; ours are dropped on the way out. */
    ERR_set_mark();

    if (clen == 0) {
        rc = refuse(&rp, PT_EMALFORMED, "cert_pem", "empty");
        goto out;
    }
    if (clen > PT_PEM_CERT_MAX) {
        rc = refuse(&rp, PT_ETOOBIG, "cert_pem", "larger than %u bytes", PT_PEM_CERT_MAX);
        goto out;
    }
    if (memchr(cert_pem, '\0', clen) != NULL) {
        rc = refuse(&rp, PT_EMALFORMED, "cert_pem", "contains a NUL byte");
        goto out;
    }
    if (key_pem != NULL) {
        if (klen == 0) {
            rc = refuse(&rp, PT_EMALFORMED, "key_pem", "empty");
            goto out;
        }
        if (klen > PT_PEM_KEY_MAX) {
            rc = refuse(&rp, PT_ETOOBIG, "key_pem", "larger than %u bytes", PT_PEM_KEY_MAX);
            goto out;
        }
        if (memchr(key_pem, '\0', klen) != NULL) {
            rc = refuse(&rp, PT_EMALFORMED, "key_pem", "contains a NUL byte");
            goto out;
        }
    }

    sk = sk_X509_new_null();
    PT_ASSERT(sk != NULL);
    if ((rc = read_certs(&rp, cert_pem, clen, sk)) != 0)
        goto out;
    leaf = sk_X509_value(sk, 0);
    if (key_pem != NULL) {
        if ((rc = read_key(&rp, key_pem, klen, &key)) != 0)
            goto out;
        if ((rc = check_key_type(&rp, key, "key_pem", "the private key")) != 0)
            goto out;
        if (X509_check_private_key(leaf, key) != 1) {
            for (int i = 1; i < sk_X509_num(sk); i++) {
                if (X509_check_private_key(sk_X509_value(sk, i), key) == 1) {
                    rc = refuse(&rp, PT_EINVAL, "cert_pem",
                                "the private key belongs to certificate %d: the leaf "
                                "(the certificate of this key) must come first",
                                i + 1);
                    goto out;
                }
            }
            rc = refuse(&rp, PT_EINVAL, "key_pem",
                        "the private key does not match the leaf certificate");
            goto out;
        }
    }
    if ((rc = check_chain(&rp, sk)) != 0)
        goto out;
    if ((rc = check_key_type(&rp, X509_get0_pubkey(leaf), "cert_pem",
                             "the leaf certificate's key")) != 0)
        goto out;
    if ((rc = leaf_names(&rp, leaf, out)) != 0)
        goto out;
    if (time_unix(X509_get0_notBefore(leaf), &out->not_before) != 0 ||
        time_unix(X509_get0_notAfter(leaf), &out->not_after) != 0) {
        rc = refuse(&rp, PT_EMALFORMED, "cert_pem", "the leaf's validity dates do not parse");
        goto out;
    }
    out->n_certs = (size_t)sk_X509_num(sk);
    rc = encode(&rp, sk, key, out);

out:
    if (rc != 0) {
        const char *field = out->field;
        pt_pem_info_free(out);
        out->field = field;
    }
    sk_X509_pop_free(sk, X509_free);
    EVP_PKEY_free(key);
    ERR_pop_to_mark();
    return rc;
}

void pt_pem_info_free(struct pt_pem_info *info)
{
    if (info == NULL)
        return;
    for (size_t i = 0; i < info->n_names; i++)
        free(info->names[i]);
    free(info->names);
    free(info->cert_pem);
    if (info->key_pem) {
        OPENSSL_cleanse(info->key_pem, strlen(info->key_pem));
        free(info->key_pem);
    }
    memset(info, 0, sizeof(*info));
}
