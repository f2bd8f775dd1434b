#include "daemon/jws.h"

#include <ctype.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *pt_jws_b64url(const void *in, size_t len)
{
    const uint8_t *p = in;
    char *out = pt_xmalloc(len / 3 * 4 + 4 + 1);
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int pt_jws_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap,
                         size_t *outlen)
{
    *outlen = 0;
    if (len % 4 == 1)
        return PT_EMALFORMED;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap)
        return PT_ETOOBIG;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return PT_EMALFORMED;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* the unused low bits of the last character must be zero */
        return PT_EMALFORMED;
    *outlen = o;
    return 0;
}

EVP_PKEY *pt_jws_p256_new(void)
{
    return EVP_EC_gen("P-256");
}

bool pt_jws_is_p256(EVP_PKEY *key)
{
    char group[64];
    size_t glen = 0;
    if (key == NULL || !EVP_PKEY_is_a(key, "EC"))
        return false;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof(group), &glen) != 1)
        return false;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* Big-endian, left-padded to 32 bytes, base64url: a P-256 coordinate. */
static char *coord_b64(EVP_PKEY *key, const char *param)
{
    BIGNUM *bn = NULL;
    uint8_t raw[32];
    char *out = NULL;
    if (EVP_PKEY_get_bn_param(key, param, &bn) == 1 && BN_bn2binpad(bn, raw, 32) == 32)
        out = pt_jws_b64url(raw, 32);
    BN_free(bn);
    return out;
}

json_t *pt_jws_jwk(EVP_PKEY *key)
{
    if (!pt_jws_is_p256(key))
        return NULL;
    char *x = coord_b64(key, OSSL_PKEY_PARAM_EC_PUB_X);
    char *y = coord_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y);
    json_t *j = NULL;
    if (x && y)
        j = json_pack("{s:s, s:s, s:s, s:s}", "crv", "P-256", "kty", "EC", "x", x, "y", y);
    free(x);
    free(y);
    return j;
}

int pt_jws_thumbprint(const json_t *jwk, char out[44])
{
    static const char *const ec[] = {"crv", "kty", "x", "y"};
    static const char *const rsa[] = {"e", "kty", "n"};
    static const char *const oct[] = {"k", "kty"};
    const char *const *req;
    size_t n;
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    out[0] = '\0';
    if (kty == NULL)
        return PT_EINVAL;
    if (strcmp(kty, "EC") == 0) {
        req = ec;
        n = PT_ARRAY_LEN(ec);
    } else if (strcmp(kty, "RSA") == 0) {
        req = rsa;
        n = PT_ARRAY_LEN(rsa);
    } else if (strcmp(kty, "oct") == 0) {
        req = oct;
        n = PT_ARRAY_LEN(oct);
    } else {
        return PT_EINVAL;
    }
    /* Only the required members, sorted, no whitespace (RFC 7638 §3.2-3.3):
     * jansson's compact, key-sorted output is exactly that. */
    json_t *canon = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(jwk, req[i]);
        if (!json_is_string(v)) {
            json_decref(canon);
            return PT_EINVAL;
        }
        json_object_set(canon, req[i], v);
    }
    char *text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(canon);
    if (text == NULL)
        return PT_ENOMEM;
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), md);
    free(text);
    char *b = pt_jws_b64url(md, sizeof(md));
    memcpy(out, b, 44); /* 43 characters and the NUL */
    free(b);
    return 0;
}

char *pt_jws_key_authorization(const char *token, const char *thumbprint)
{
    size_t lt = strlen(token), lp = strlen(thumbprint);
    char *s = pt_xmalloc(lt + 1 + lp + 1);
    memcpy(s, token, lt);
    s[lt] = '.';
    memcpy(s + lt + 1, thumbprint, lp + 1);
    return s;
}

int pt_jws_es256(EVP_PKEY *key, const void *data, size_t len, uint8_t sig[64])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t der[128];
    size_t derlen = sizeof(der);
    ECDSA_SIG *es = NULL;
    int rc = PT_EIO;
    if (ctx == NULL || !pt_jws_is_p256(key) ||
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(ctx, der, &derlen, data, len) != 1)
        goto out;
    /* OpenSSL gives DER (SEQUENCE of two INTEGERs); JWS wants the raw
     * fixed-size concatenation (RFC 7518 §3.4). */
    const unsigned char *p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    if (es == NULL)
        goto out;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32)
        goto out;
    rc = 0;
out:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(ctx);
    return rc;
}

char *pt_jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                  const char *payload)
{
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "nonce", nonce, "url", url);
    char *hdr_text = NULL, *prot = NULL, *pay = NULL, *input = NULL, *sig64 = NULL;
    char *result = NULL;
    if (hdr == NULL)
        return NULL;
    if (kid) {
        json_object_set_new(hdr, "kid", json_string(kid));
    } else {
        json_t *jwk = pt_jws_jwk(key);
        if (jwk == NULL)
            goto out;
        json_object_set_new(hdr, "jwk", jwk);
    }
    hdr_text = json_dumps(hdr, JSON_COMPACT);
    if (hdr_text == NULL)
        goto out;
    prot = pt_jws_b64url(hdr_text, strlen(hdr_text));
    pay = pt_jws_b64url(payload ? payload : "", payload ? strlen(payload) : 0);
    size_t lp = strlen(prot), ly = strlen(pay);
    input = pt_xmalloc(lp + 1 + ly + 1);
    memcpy(input, prot, lp);
    input[lp] = '.';
    memcpy(input + lp + 1, pay, ly + 1);
    uint8_t sig[64];
    if (pt_jws_es256(key, input, lp + 1 + ly, sig) != 0)
        goto out;
    sig64 = pt_jws_b64url(sig, sizeof(sig));
    json_t *jws =
        json_pack("{s:s, s:s, s:s}", "protected", prot, "payload", pay, "signature", sig64);
    if (jws) {
        result = json_dumps(jws, JSON_COMPACT);
        json_decref(jws);
    }
out:
    json_decref(hdr);
    free(hdr_text);
    free(prot);
    free(pay);
    free(input);
    free(sig64);
    return result;
}

int pt_jws_csr(EVP_PKEY *key, const char *const *names, size_t n_names, uint8_t **der,
               size_t *derlen)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *subj = X509_NAME_new();
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = NULL;
    unsigned char *buf = NULL;
    int rc = PT_EIO;
    *der = NULL;
    *derlen = 0;
    if (req == NULL || subj == NULL || gens == NULL || exts == NULL || n_names == 0)
        goto out;
    if (X509_REQ_set_version(req, 0) != 1)
        goto out;
    /* The CN is limited to 64 characters (RFC 5280 ub-common-name); the SAN
     * is what counts, so a longer first name simply goes without a CN. */
    if (strlen(names[0]) <= 64 &&
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)names[0],
                                   -1, -1, 0) != 1)
        goto out;
    if (X509_REQ_set_subject_name(req, subj) != 1)
        goto out;
    for (size_t i = 0; i < n_names; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        if (g == NULL || ia5 == NULL || ASN1_STRING_set(ia5, names[i], -1) != 1) {
            GENERAL_NAME_free(g);
            ASN1_IA5STRING_free(ia5);
            goto out;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
        if (sk_GENERAL_NAME_push(gens, g) <= 0) {
            GENERAL_NAME_free(g);
            goto out;
        }
    }
    san = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
    if (san == NULL || sk_X509_EXTENSION_push(exts, san) <= 0)
        goto out;
    san = NULL; /* owned by exts now */
    if (X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto out;
    int n = i2d_X509_REQ(req, &buf);
    if (n <= 0)
        goto out;
    *der = pt_xmalloc((size_t)n);
    memcpy(*der, buf, (size_t)n);
    *derlen = (size_t)n;
    rc = 0;
out:
    OPENSSL_free(buf);
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    X509_NAME_free(subj);
    X509_REQ_free(req);
    return rc;
}

static X509 *first_cert(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return x;
}

char *pt_jws_ari_cert_id(const char *pem)
{
    X509 *x = first_cert(pem);
    unsigned char *ser_der = NULL;
    char *out = NULL;
    if (x == NULL)
        return NULL;
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    int n = serial ? i2d_ASN1_INTEGER(serial, &ser_der) : -1;
    if (aki && n > 0) {
        /* The id uses the INTEGER's content octets (leading zero included
         * when the high bit is set), not its tag and length. */
        const unsigned char *p = ser_der;
        long clen = 0;
        int tag = 0, cls = 0;
        int r = ASN1_get_object(&p, &clen, &tag, &cls, n);
        if (!(r & 0x80) && tag == V_ASN1_INTEGER && clen > 0) {
            char *a = pt_jws_b64url(ASN1_STRING_get0_data(aki), (size_t)ASN1_STRING_length(aki));
            char *s = pt_jws_b64url(p, (size_t)clen);
            size_t la = strlen(a), ls = strlen(s);
            out = pt_xmalloc(la + 1 + ls + 1);
            memcpy(out, a, la);
            out[la] = '.';
            memcpy(out + la + 1, s, ls + 1);
            free(a);
            free(s);
        }
    }
    OPENSSL_free(ser_der);
    X509_free(x);
    return out;
}

static int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return PT_EMALFORMED;
    *out = (int64_t)timegm(&tm);
    return 0;
}

int pt_jws_cert_times(const char *pem, int64_t *not_before, int64_t *not_after)
{
    X509 *x = first_cert(pem);
    int rc = PT_EMALFORMED;
    if (x && asn1_time_unix(X509_get0_notBefore(x), not_before) == 0 &&
        asn1_time_unix(X509_get0_notAfter(x), not_after) == 0)
        rc = 0;
    X509_free(x);
    return rc;
}

int pt_jws_parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    int n = 0;
    memset(&tm, 0, sizeof(tm));
    if (s == NULL ||
        sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19)
        return PT_EMALFORMED;
    const char *p = s + n;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return PT_EMALFORMED;
        while (isdigit((unsigned char)*p))
            p++;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &m) != 2 || m != 5 || hh > 23 || mm > 59)
            return PT_EMALFORMED;
        off = (hh * 60L + mm) * 60L * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return PT_EMALFORMED;
    }
    if (*p != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return PT_EMALFORMED;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm) - off;
    return 0;
}
