#include <criterion/criterion.h>

#include "api/pem.h"
#include "tests/unit/guard.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

/* Keys and certificates are made here with OpenSSL, so each case says
 * exactly what it feeds in: no fixture files to drift. */

static EVP_PKEY *gen_ec(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    cr_assert_not_null(k);
    return k;
}

static EVP_PKEY *gen_rsa(size_t bits)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    cr_assert_not_null(k);
    return k;
}

static EVP_PKEY *gen_ed25519(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(k);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    cr_assert_not_null(ext, "extension %d=%s", nid, value);
    cr_assert_eq(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for <key>, valid from now+<from> to now+<to> seconds, signed
 * by <issuer>/<ikey> (self-signed when NULL). <san> NULL: no SAN at all. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, bool ca,
                       X509 *issuer, EVP_PKEY *ikey, long from, long to)
{
    static long serial = 1;
    X509 *x = X509_new();
    cr_assert_not_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    add_ext(x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (issuer)
        add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    if (san)
        add_ext(x, issuer, NID_subject_alt_name, san);
    EVP_PKEY *signer = ikey ? ikey : key;
    const EVP_MD *md = EVP_PKEY_is_a(signer, "ED25519") ? NULL : EVP_sha256();
    cr_assert_gt(X509_sign(x, signer, md), 0);
    return x;
}

static char *bio_take(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

/* PEM of up to three certificates, in the order given (NULLs ignored). */
static char *certs_pem(X509 *a, X509 *b, X509 *c)
{
    BIO *bio = BIO_new(BIO_s_mem());
    X509 *all[] = {a, b, c};
    for (size_t i = 0; i < 3; i++)
        if (all[i])
            PEM_write_bio_X509(bio, all[i]);
    return bio_take(bio);
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
    return bio_take(bio);
}

/* "-----BEGIN EC PRIVATE KEY-----" / "RSA PRIVATE KEY" (traditional). */
static char *key_pem_traditional(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey_traditional(bio, k, NULL, NULL, 0, NULL, NULL);
    return bio_take(bio);
}

static char *key_pem_encrypted(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PKCS8PrivateKey(bio, k, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"secret");
    return bio_take(bio);
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

/* Runs pt_pem_check on copies of the inputs that end at guard pages, and
 * checks what every call must leave behind. */
static int check(const char *cert, const char *key, struct pt_pem_info *info, char *why,
                 size_t whylen)
{
    struct pt_guard gc, gk;
    size_t clen = strlen(cert), klen = key ? strlen(key) : 0;
    const char *c = (const char *)pt_guard_copy(&gc, cert, clen);
    const char *k = key ? (const char *)pt_guard_copy(&gk, key, klen) : NULL;
    ERR_clear_error();
    int rc = pt_pem_check(c, clen, k, klen, info, why, whylen);
    cr_expect_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
    if (rc != 0) {
        cr_expect_null(info->names);
        cr_expect_null(info->cert_pem);
        cr_expect_null(info->key_pem);
        cr_expect(info->field && (strcmp(info->field, "cert_pem") == 0 ||
                                  strcmp(info->field, "key_pem") == 0));
        cr_expect_neq(why[0], '\0', "a refusal says why");
    }
    pt_guard_release(&gc);
    if (key)
        pt_guard_release(&gk);
    return rc;
}

/* Expects a refusal of <field> with <rc> and <fragment> in the reason. */
static void refused(const char *cert, const char *key, int rc, const char *field,
                    const char *fragment)
{
    struct pt_pem_info info;
    char why[256];
    int got = check(cert, key, &info, why, sizeof(why));
    cr_assert_eq(got, rc, "rc %d (%s), expected %d; why: %s", got, pt_strerror(got), rc, why);
    cr_assert_str_eq(info.field, field, "field %s, expected %s; why: %s", info.field, field,
                     why);
    if (fragment)
        cr_assert(strstr(why, fragment) != NULL, "'%s' not in '%s'", fragment, why);
    pt_pem_info_free(&info);
}

static bool has_name(const struct pt_pem_info *info, const char *name)
{
    for (size_t i = 0; i < info->n_names; i++)
        if (strcmp(info->names[i], name) == 0)
            return true;
    return false;
}

Test(pem, ec_p256_selfsigned_accepted_and_normalised)
{
    EVP_PKEY *k = gen_ec("P-256");
    X509 *x = make_cert(k, "a.test", "DNS:A.Test,DNS:*.W.test,DNS:a.test.,IP:127.0.0.1",
                        false, NULL, NULL, -60, 86400);
    char *cert = certs_pem(x, NULL, NULL), *key = key_pem_traditional(k);
    cr_assert(strstr(key, "BEGIN EC PRIVATE KEY") != NULL);
    struct pt_pem_info info;
    char why[256];
    int64_t now = (int64_t)time(NULL);
    cr_assert_eq(check(cert, key, &info, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(info.n_names, 2, "lowercase, trailing dot and duplicates folded");
    cr_assert_str_eq(info.names[0], "a.test");
    cr_assert_str_eq(info.names[1], "*.w.test");
    cr_assert_eq(info.n_certs, 1);
    cr_assert(info.not_before >= now - 62 && info.not_before <= now - 58);
    cr_assert(info.not_after >= now + 86398 && info.not_after <= now + 86402);
    cr_assert_str_eq(info.cert_pem, cert, "re-encoding a canonical PEM changes nothing");
    cr_assert(strncmp(info.key_pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0,
              "key stored as unencrypted PKCS#8: %.40s", info.key_pem);
    pt_pem_info_free(&info);
    cr_assert_null(info.key_pem);
    pt_pem_info_free(&info); /* twice is fine */
    free(cert);
    free(key);
    X509_free(x);
    EVP_PKEY_free(k);
}

Test(pem, rsa_2048_ec_p384_ed25519_accepted)
{
    EVP_PKEY *keys[] = {gen_rsa(2048), gen_ec("P-384"), gen_ed25519()};
    for (size_t i = 0; i < PT_ARRAY_LEN(keys); i++) {
        X509 *x = make_cert(keys[i], "b.test", "DNS:b.test", false, NULL, NULL, 0, 3600);
        char *cert = certs_pem(x, NULL, NULL), *key = key_pem(keys[i]);
        struct pt_pem_info info;
        char why[256];
        cr_assert_eq(check(cert, key, &info, why, sizeof(why)), 0, "key %zu: %s", i, why);
        cr_assert_eq(info.n_names, 1);
        cr_assert(has_name(&info, "b.test"));
        pt_pem_info_free(&info);
        free(cert);
        free(key);
        X509_free(x);
        EVP_PKEY_free(keys[i]);
    }
}

Test(pem, weak_or_unsupported_keys_refused)
{
    EVP_PKEY *rsa = gen_rsa(1024), *p521 = gen_ec("P-521"), *k1 = gen_ec("secp256k1");
    struct {
        EVP_PKEY *k;
        const char *fragment;
    } cases[] = {{rsa, "1024 bits"}, {p521, "secp521r1"}, {k1, "secp256k1"}};
    for (size_t i = 0; i < PT_ARRAY_LEN(cases); i++) {
        X509 *x = make_cert(cases[i].k, "c.test", "DNS:c.test", false, NULL, NULL, 0, 3600);
        char *cert = certs_pem(x, NULL, NULL), *key = key_pem(cases[i].k);
        refused(cert, key, PT_EINVAL, "key_pem", cases[i].fragment);
        /* without the key (the ACME client's use) the leaf's key is judged */
        refused(cert, NULL, PT_EINVAL, "cert_pem", cases[i].fragment);
        free(cert);
        free(key);
        X509_free(x);
        EVP_PKEY_free(cases[i].k);
    }
}

Test(pem, key_may_be_omitted)
{
    EVP_PKEY *k = gen_ec("P-256");
    X509 *x = make_cert(k, "d.test", "DNS:d.test", false, NULL, NULL, 0, 3600);
    char *cert = certs_pem(x, NULL, NULL);
    struct pt_pem_info info;
    char why[256];
    cr_assert_eq(check(cert, NULL, &info, why, sizeof(why)), 0, "%s", why);
    cr_assert_null(info.key_pem);
    cr_assert_not_null(info.cert_pem);
    pt_pem_info_free(&info);
    free(cert);
    X509_free(x);
    EVP_PKEY_free(k);
}

Test(pem, mismatched_key_refused)
{
    EVP_PKEY *k = gen_ec("P-256"), *other = gen_ec("P-256"), *rsa = gen_rsa(2048);
    X509 *x = make_cert(k, "e.test", "DNS:e.test", false, NULL, NULL, 0, 3600);
    char *cert = certs_pem(x, NULL, NULL), *key = key_pem(other), *rkey = key_pem(rsa);
    refused(cert, key, PT_EINVAL, "key_pem", "does not match");
    refused(cert, rkey, PT_EINVAL, "key_pem", "does not match");
    free(cert);
    free(key);
    free(rkey);
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
    EVP_PKEY_free(rsa);
}

Test(pem, garbage_refused)
{
    EVP_PKEY *k = gen_ec("P-256");
    X509 *x = make_cert(k, "f.test", "DNS:f.test", false, NULL, NULL, 0, 3600);
    char *cert = certs_pem(x, NULL, NULL), *key = key_pem(k);

    refused("hello", key, PT_EMALFORMED, "cert_pem", "no PEM CERTIFICATE");
    refused("", key, PT_EMALFORMED, "cert_pem", "empty");
    refused("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
            key, PT_EMALFORMED, "cert_pem", "bad PEM");
    refused("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n", key,
            PT_EMALFORMED, "cert_pem", "does not parse as X.509");
    /* a cut-off certificate */
    char *cut = strdup(cert);
    cut[strlen(cut) / 2] = '\0';
    refused(cut, key, PT_EMALFORMED, "cert_pem", "bad PEM");
    free(cut);
    /* the key pasted into cert_pem, and the other way round */
    char *both = concat(cert, key);
    refused(both, key, PT_EMALFORMED, "cert_pem", "the key goes in key_pem");
    refused(cert, cert, PT_EMALFORMED, "key_pem", "certificates go in cert_pem");
    refused(cert, "garbage", PT_EMALFORMED, "key_pem", "no PEM PRIVATE KEY");
    refused(cert, "", PT_EMALFORMED, "key_pem", "empty");
    refused(cert, "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n",
            PT_EMALFORMED, "key_pem", "does not parse");
    char *two = concat(key, key);
    refused(cert, two, PT_EINVAL, "key_pem", "more than one");
    free(two);
    free(both);

    /* a NUL byte inside the PEM (JSON can carry \u0000) */
    struct pt_pem_info info;
    char why[256];
    char buf[64] = "-----BEGIN CERTIFICATE-----\n";
    size_t n = strlen(buf) + 4;
    cr_assert_eq(pt_pem_check(buf, n, NULL, 0, &info, why, sizeof(why)), PT_EMALFORMED);
    cr_assert_str_eq(info.field, "cert_pem");
    cr_assert(strstr(why, "NUL") != NULL);
    free(cert);
    free(key);
    X509_free(x);
    EVP_PKEY_free(k);
}

Test(pem, encrypted_key_refused_without_prompting)
{
    EVP_PKEY *k = gen_ec("P-256");
    X509 *x = make_cert(k, "g.test", "DNS:g.test", false, NULL, NULL, 0, 3600);
    char *cert = certs_pem(x, NULL, NULL), *key = key_pem_encrypted(k);
    cr_assert(strstr(key, "ENCRYPTED PRIVATE KEY") != NULL);
    refused(cert, key, PT_EINVAL, "key_pem", "encrypted");
    free(cert);
    free(key);
    X509_free(x);
    EVP_PKEY_free(k);
}

Test(pem, no_dns_san_refused)
{
    EVP_PKEY *k = gen_ec("P-256");
    X509 *nosan = make_cert(k, "h.test", NULL, false, NULL, NULL, 0, 3600);
    X509 *ipsan = make_cert(k, "h.test", "IP:192.0.2.1,email:a@h.test", false, NULL, NULL,
                            0, 3600);
    X509 *badsan = make_cert(k, "h.test", "DNS:under_score.h.test,DNS:*", false, NULL, NULL,
                             0, 3600);
    char *key = key_pem(k);
    char *c1 = certs_pem(nosan, NULL, NULL), *c2 = certs_pem(ipsan, NULL, NULL),
         *c3 = certs_pem(badsan, NULL, NULL);
    refused(c1, key, PT_EINVAL, "cert_pem", "no DNS name");
    refused(c2, key, PT_EINVAL, "cert_pem", "no DNS name");
    refused(c3, key, PT_EINVAL, "cert_pem", "no usable DNS name");
    free(c1);
    free(c2);
    free(c3);
    free(key);
    X509_free(nosan);
    X509_free(ipsan);
    X509_free(badsan);
    EVP_PKEY_free(k);
}

Test(pem, expired_certificate_parses_with_its_dates)
{
    EVP_PKEY *k = gen_ec("P-256");
    X509 *x = make_cert(k, "i.test", "DNS:i.test", false, NULL, NULL, -20 * 86400, -86400);
    char *cert = certs_pem(x, NULL, NULL), *key = key_pem(k);
    struct pt_pem_info info;
    char why[256];
    int64_t now = (int64_t)time(NULL);
    cr_assert_eq(check(cert, key, &info, why, sizeof(why)), 0, "%s", why);
    cr_assert_lt(info.not_after, now, "the caller sees it is expired");
    cr_assert_lt(info.not_before, info.not_after);
    pt_pem_info_free(&info);
    free(cert);
    free(key);
    X509_free(x);
    EVP_PKEY_free(k);
}

struct chain {
    EVP_PKEY *rk, *ik, *lk;
    X509 *root, *inter, *leaf;
};

static void make_chain(struct chain *c)
{
    c->rk = gen_ec("P-256");
    c->ik = gen_ec("P-384");
    c->lk = gen_ec("P-256");
    c->root = make_cert(c->rk, "Test Root", NULL, true, NULL, NULL, -60, 86400);
    c->inter = make_cert(c->ik, "Test Intermediate", NULL, true, c->root, c->rk, -60, 86400);
    c->leaf = make_cert(c->lk, "j.test", "DNS:j.test", false, c->inter, c->ik, -60, 86400);
}

static void free_chain(struct chain *c)
{
    X509_free(c->root);
    X509_free(c->inter);
    X509_free(c->leaf);
    EVP_PKEY_free(c->rk);
    EVP_PKEY_free(c->ik);
    EVP_PKEY_free(c->lk);
}

Test(pem, chain_in_order_accepted)
{
    struct chain c;
    make_chain(&c);
    char *key = key_pem(c.lk);
    char *two = certs_pem(c.leaf, c.inter, NULL), *three = certs_pem(c.leaf, c.inter, c.root);
    struct pt_pem_info info;
    char why[256];
    cr_assert_eq(check(two, key, &info, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(info.n_certs, 2);
    cr_assert_str_eq(info.cert_pem, two, "leaf then chain, as given");
    pt_pem_info_free(&info);
    cr_assert_eq(check(three, key, &info, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(info.n_certs, 3);
    cr_assert_str_eq(info.names[0], "j.test");
    pt_pem_info_free(&info);
    free(key);
    free(two);
    free(three);
    free_chain(&c);
}

Test(pem, chain_out_of_order_refused)
{
    struct chain c;
    make_chain(&c);
    char *key = key_pem(c.lk);
    char *reversed = certs_pem(c.inter, c.leaf, NULL);
    char *gap = certs_pem(c.leaf, c.root, NULL);
    char *tail_reversed = certs_pem(c.leaf, c.root, c.inter);
    /* with the key, the hint says which certificate is the leaf */
    refused(reversed, key, PT_EINVAL, "cert_pem", "must come first");
    /* without it, the order itself is refused */
    refused(reversed, NULL, PT_EINVAL, "cert_pem", "wrong order");
    refused(gap, key, PT_EINVAL, "cert_pem", "not issued by certificate 2");
    refused(tail_reversed, key, PT_EINVAL, "cert_pem", "not issued by certificate 2");
    /* a chain certificate whose name matches but whose key does not: a
     * forged or stale intermediate with the same subject */
    EVP_PKEY *fake_k = gen_ec("P-384");
    X509 *fake = make_cert(fake_k, "Test Intermediate", NULL, true, c.root, c.rk, -60, 86400);
    char *forged = certs_pem(c.leaf, fake, NULL);
    refused(forged, key, PT_EINVAL, "cert_pem", "not issued by certificate 2");
    free(forged);
    X509_free(fake);
    EVP_PKEY_free(fake_k);
    free(key);
    free(reversed);
    free(gap);
    free(tail_reversed);
    free_chain(&c);
}

Test(pem, sizes_limited)
{
    EVP_PKEY *k = gen_ec("P-256");
    X509 *x = make_cert(k, "k.test", "DNS:k.test", false, NULL, NULL, 0, 3600);
    char *cert = certs_pem(x, NULL, NULL), *key = key_pem(k);

    /* over 64 KiB: text around PEM blocks is allowed, but not that much */
    size_t big = PT_PEM_CERT_MAX + 1;
    char *huge = malloc(big + 1);
    memset(huge, '\n', big);
    memcpy(huge, cert, strlen(cert));
    huge[big] = '\0';
    refused(huge, key, PT_ETOOBIG, "cert_pem", "larger than");
    /* just under the limit it is fine */
    huge[PT_PEM_CERT_MAX] = '\0';
    struct pt_pem_info info;
    char why[256];
    cr_assert_eq(check(huge, key, &info, why, sizeof(why)), 0, "%s", why);
    pt_pem_info_free(&info);
    free(huge);

    /* eleven certificates */
    char *many = strdup("");
    for (int i = 0; i < PT_PEM_CERTS_MAX + 1; i++) {
        char *m = concat(many, cert);
        free(many);
        many = m;
    }
    refused(many, key, PT_ETOOBIG, "cert_pem", "more than 10");
    free(many);

    char *bigkey = malloc(PT_PEM_KEY_MAX + 2);
    memset(bigkey, '\n', PT_PEM_KEY_MAX + 1);
    memcpy(bigkey, key, strlen(key));
    bigkey[PT_PEM_KEY_MAX + 1] = '\0';
    refused(cert, bigkey, PT_ETOOBIG, "key_pem", "larger than");
    free(bigkey);
    free(cert);
    free(key);
    X509_free(x);
    EVP_PKEY_free(k);
}

Test(pem, why_is_optional_and_truncated_safely)
{
    struct pt_pem_info info;
    cr_assert_eq(pt_pem_check("junk", 4, NULL, 0, &info, NULL, 0), PT_EMALFORMED);
    cr_assert_str_eq(info.field, "cert_pem");
    char tiny[8];
    cr_assert_eq(pt_pem_check("junk", 4, NULL, 0, &info, tiny, sizeof(tiny)), PT_EMALFORMED);
    cr_assert_eq(strlen(tiny), sizeof(tiny) - 1);
}

Test(pem, callers_openssl_errors_kept)
{
    struct pt_pem_info info;
    char why[128];
    ERR_clear_error();
    ERR_raise(ERR_LIB_USER, 42);
    cr_assert_eq(pt_pem_check("junk", 4, NULL, 0, &info, why, sizeof(why)), PT_EMALFORMED);
    unsigned long e = ERR_get_error();
    cr_assert_eq(ERR_GET_REASON(e), 42, "the caller's error is still first");
    cr_assert_eq(ERR_get_error(), 0, "and ours are gone");
}
