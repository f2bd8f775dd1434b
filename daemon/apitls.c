#include "daemon/apitls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

/* The whole file as a NUL-terminated string (bounded: a certificate chain
 * or a key is a few KiB). NULL with errno set. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    size_t cap = 64 * 1024, len = 0;
    char *buf = pt_xmalloc(cap + 1);
    len = fread(buf, 1, cap, f);
    bool big = len == cap && fgetc(f) != EOF;
    fclose(f);
    if (big) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static char *to_pem(int (*write)(BIO *, const void *), const void *obj)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    if (b && write(b, obj) == 1) {
        long n = BIO_get_mem_data(b, &data);
        out = pt_xmalloc((size_t)n + 1);
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}

static int write_cert(BIO *b, const void *x)
{
    return PEM_write_bio_X509(b, (X509 *)(uintptr_t)x);
}

static int write_key(BIO *b, const void *k)
{
    return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)(uintptr_t)k, NULL, NULL, 0, NULL,
                                    NULL);
}

/* Writes <text> to a new file <path> (O_EXCL: never over an existing one). */
static int write_new(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    return fsync(fd) == 0 && close(fd) == 0 ? 0 : -1;
}

static int make(const char *host, char **cert_pem, char **key_pem)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    char san[300];
    unsigned char serial[16];
    int rc = -1;
    if (key == NULL || x == NULL)
        goto out;
    if (host && host[0])
        snprintf(san, sizeof(san), "IP:%s,DNS:localhost", host);
    else
        snprintf(san, sizeof(san), "DNS:localhost");
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto out;
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
        BN_free(bn);
        goto out;
    }
    BN_free(bn);
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_set_version(x, 2) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"portier API", -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, name) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 10L * 366 * 24 * 3600) == NULL ||
        X509_set_pubkey(x, key) != 1)
        goto out;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"subjectAltName", san},
                             {"basicConstraints", "critical,CA:FALSE"},
                             {"keyUsage", "critical,digitalSignature"},
                             {"extendedKeyUsage", "serverAuth"}};
    for (size_t i = 0; i < PT_ARRAY_LEN(exts); i++) {
        ext = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        if (ext == NULL || X509_add_ext(x, ext, -1) != 1) {
            X509_EXTENSION_free(ext);
            goto out;
        }
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(x, key, EVP_sha256()) == 0)
        goto out;
    *cert_pem = to_pem(write_cert, x);
    *key_pem = to_pem(write_key, key);
    rc = *cert_pem && *key_pem ? 0 : -1;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}

/* Fingerprint and pin of <cert_pem>, after checking that <key_pem> is its
 * key. */
static int describe(struct pt_apitls *t, char *err, size_t errlen)
{
    BIO *cb = BIO_new_mem_buf(t->cert_pem, -1), *kb = BIO_new_mem_buf(t->key_pem, -1);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    unsigned char md[EVP_MAX_MD_SIZE], *spki = NULL;
    unsigned mdlen = 0;
    int rc = PT_EINVAL;
    if (x == NULL) {
        snprintf(err, errlen, "--api-tls-cert: no PEM certificate");
        goto out;
    }
    if (k == NULL) {
        snprintf(err, errlen, "--api-tls-key: no PEM private key (unencrypted)");
        goto out;
    }
    if (X509_check_private_key(x, k) != 1) {
        snprintf(err, errlen, "--api-tls-key does not match --api-tls-cert");
        goto out;
    }
    X509_digest(x, EVP_sha256(), md, &mdlen);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(t->fingerprint + 3 * i, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    int n = i2d_PUBKEY(X509_get0_pubkey(x), &spki);
    if (n <= 0)
        goto out;
    unsigned char h[32];
    EVP_Digest(spki, (size_t)n, h, NULL, EVP_sha256(), NULL);
    memcpy(t->pin, "sha256//", 8);
    EVP_EncodeBlock((unsigned char *)t->pin + 8, h, sizeof(h));
    rc = 0;
out:
    OPENSSL_free(spki);
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    ERR_clear_error();
    return rc;
}

int pt_apitls_load(const char *cert_path, const char *key_path, const char *host,
                   struct pt_apitls *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    bool have_cert = access(cert_path, F_OK) == 0, have_key = access(key_path, F_OK) == 0;
    if (!have_cert && !have_key) {
        if (make(host, &out->cert_pem, &out->key_pem) != 0) {
            snprintf(err, errlen, "cannot make the API's TLS certificate");
            pt_apitls_free(out);
            return PT_EIO;
        }
        if (write_new(key_path, out->key_pem, 0600) != 0 ||
            write_new(cert_path, out->cert_pem, 0644) != 0) {
            snprintf(err, errlen, "cannot write %s / %s: %s", key_path, cert_path,
                     strerror(errno));
            pt_apitls_free(out);
            return PT_EIO;
        }
        out->made = true;
    } else if (!have_cert || !have_key) {
        snprintf(err, errlen, "%s exists but %s does not: give both, or neither to have "
                 "portier make them", have_cert ? cert_path : key_path,
                 have_cert ? key_path : cert_path);
        return PT_EINVAL;
    } else {
        out->cert_pem = slurp(cert_path);
        out->key_pem = out->cert_pem ? slurp(key_path) : NULL;
        if (out->key_pem == NULL) {
            snprintf(err, errlen, "cannot read %s: %s",
                     out->cert_pem ? key_path : cert_path, strerror(errno));
            pt_apitls_free(out);
            return PT_EIO;
        }
    }
    int rc = describe(out, err, errlen);
    if (rc != 0)
        pt_apitls_free(out);
    return rc;
}

void pt_apitls_free(struct pt_apitls *t)
{
    if (t == NULL)
        return;
    if (t->key_pem)
        OPENSSL_cleanse(t->key_pem, strlen(t->key_pem));
    PT_FREE(t->key_pem);
    PT_FREE(t->cert_pem);
}
