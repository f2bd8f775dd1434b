#include <criterion/criterion.h>

#include "daemon/jws.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- base64url ------------------------------------------------------------ */

static void enc_is(const char *in, size_t len, const char *want)
{
    char *got = pt_jws_b64url(in, len);
    cr_assert_str_eq(got, want, "b64url(%zu bytes)", len);
    uint8_t back[256];
    size_t n = 0;
    cr_assert_eq(pt_jws_b64url_decode(got, strlen(got), back, sizeof(back), &n), 0, "%s", got);
    cr_assert_eq(n, len);
    cr_assert(len == 0 || memcmp(back, in, len) == 0);
    free(got);
}

Test(jws, b64url_rfc4648_vectors)
{
    /* RFC 4648 §10, without the padding (RFC 7515 §2). */
    enc_is("", 0, "");
    enc_is("f", 1, "Zg");
    enc_is("fo", 2, "Zm8");
    enc_is("foo", 3, "Zm9v");
    enc_is("foob", 4, "Zm9vYg");
    enc_is("fooba", 5, "Zm9vYmE");
    enc_is("foobar", 6, "Zm9vYmFy");
}

Test(jws, b64url_url_alphabet)
{
    /* bytes that standard base64 writes with '+' and '/' */
    enc_is("\xfb\xff", 2, "-_8");
    enc_is("\xfb\xef\xbe", 3, "----");
    enc_is("\xff\xff\xff", 3, "____");
    /* RFC 7515 §3.3: the JWS protected header of the example */
    const char *hdr = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
    enc_is(hdr, strlen(hdr), "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9");
    /* RFC 7515 Appendix C: bytes 3, 236, 255, 224, 193 */
    enc_is("\x03\xec\xff\xe0\xc1", 5, "A-z_4ME");
}

Test(jws, b64url_decode_refuses)
{
    uint8_t out[16];
    size_t n;
    cr_assert_eq(pt_jws_b64url_decode("Zg==", 4, out, sizeof(out), &n), PT_EMALFORMED);
    cr_assert_eq(pt_jws_b64url_decode("Z", 1, out, sizeof(out), &n), PT_EMALFORMED);
    cr_assert_eq(pt_jws_b64url_decode("Zh", 2, out, sizeof(out), &n), PT_EMALFORMED,
                 "non-zero trailing bits");
    cr_assert_eq(pt_jws_b64url_decode("Z+8/", 4, out, sizeof(out), &n), PT_EMALFORMED);
    cr_assert_eq(pt_jws_b64url_decode("Zm9v YmFy", 9, out, sizeof(out), &n), PT_EMALFORMED);
    cr_assert_eq(pt_jws_b64url_decode("Zm9vYmFy", 8, out, 5, &n), PT_ETOOBIG);
    cr_assert_eq(pt_jws_b64url_decode("Zm9vYmFy", 8, out, 6, &n), 0);
    cr_assert_eq(n, 6);
}

Test(jws, b64url_roundtrip_all_lengths)
{
    uint8_t in[200], back[200];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(in); len++) {
        char *e = pt_jws_b64url(in, len);
        size_t n = 0;
        cr_assert_eq(strlen(e), len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0));
        cr_assert_eq(pt_jws_b64url_decode(e, strlen(e), back, sizeof(back), &n), 0);
        cr_assert_eq(n, len);
        cr_assert(len == 0 || memcmp(in, back, len) == 0);
        free(e);
    }
}

/* ---- thumbprints (RFC 7638) ----------------------------------------------- */

Test(jws, thumbprint_rfc7638_example)
{
    /* RFC 7638 §3.1: an RSA key with optional members that must not count */
    json_t *jwk = json_pack(
        "{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "n",
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGj"
        "QR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
        "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e", "AQAB", "alg", "RS256", "kid", "2011-04-29");
    char tp[44];
    cr_assert_eq(pt_jws_thumbprint(jwk, tp), 0);
    cr_assert_str_eq(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    /* without the optional members: the same */
    json_object_del(jwk, "alg");
    json_object_del(jwk, "kid");
    char tp2[44];
    cr_assert_eq(pt_jws_thumbprint(jwk, tp2), 0);
    cr_assert_str_eq(tp2, tp);
    /* a missing required member is refused */
    json_object_del(jwk, "e");
    cr_assert_eq(pt_jws_thumbprint(jwk, tp2), PT_EINVAL);
    json_decref(jwk);
    json_t *odd = json_pack("{s:s}", "kty", "OKP-unknown");
    cr_assert_eq(pt_jws_thumbprint(odd, tp2), PT_EINVAL);
    json_decref(odd);
}

/* An EC thumbprint is SHA-256 over exactly {"crv":..,"kty":..,"x":..,"y":..}. */
Test(jws, thumbprint_ec_matches_manual_canonical_form)
{
    EVP_PKEY *k = pt_jws_p256_new();
    cr_assert_not_null(k);
    json_t *jwk = pt_jws_jwk(k);
    cr_assert_not_null(jwk);
    const char *x = json_string_value(json_object_get(jwk, "x"));
    const char *y = json_string_value(json_object_get(jwk, "y"));
    cr_assert_str_eq(json_string_value(json_object_get(jwk, "kty")), "EC");
    cr_assert_str_eq(json_string_value(json_object_get(jwk, "crv")), "P-256");
    cr_assert_eq(strlen(x), 43);
    cr_assert_eq(strlen(y), 43);
    char canon[256];
    snprintf(canon, sizeof(canon), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x,
             y);
    uint8_t md[32];
    SHA256((const unsigned char *)canon, strlen(canon), md);
    char *want = pt_jws_b64url(md, sizeof(md));
    char tp[44];
    /* member order in the input must not matter */
    json_t *shuffled = json_pack("{s:s, s:s, s:s, s:s, s:s}", "y", y, "x", x, "use", "sig",
                                 "kty", "EC", "crv", "P-256");
    cr_assert_eq(pt_jws_thumbprint(shuffled, tp), 0);
    cr_assert_str_eq(tp, want);
    cr_assert_eq(pt_jws_thumbprint(jwk, tp), 0);
    cr_assert_str_eq(tp, want);
    free(want);
    json_decref(shuffled);
    json_decref(jwk);
    EVP_PKEY_free(k);
}

Test(jws, key_authorization)
{
    char *ka = pt_jws_key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
                                        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    cr_assert_str_eq(ka, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
                         "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    free(ka);
}

/* ---- JWS ------------------------------------------------------------------ */

/* Rebuilds a public key from a JWK, as a verifier (the CA) would. */
static EVP_PKEY *key_from_jwk(const json_t *jwk)
{
    uint8_t pub[65], tmp[40];
    size_t n = 0;
    const char *x = json_string_value(json_object_get(jwk, "x"));
    const char *y = json_string_value(json_object_get(jwk, "y"));
    pub[0] = 0x04;
    cr_assert_eq(pt_jws_b64url_decode(x, strlen(x), tmp, sizeof(tmp), &n), 0);
    cr_assert_eq(n, 32);
    memcpy(pub + 1, tmp, 32);
    cr_assert_eq(pt_jws_b64url_decode(y, strlen(y), tmp, sizeof(tmp), &n), 0);
    cr_assert_eq(n, 32);
    memcpy(pub + 33, tmp, 32);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    cr_assert_eq(EVP_PKEY_fromdata_init(ctx), 1);
    cr_assert_eq(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    return k;
}

/* Verifies flattened JWS <text> with <key>; returns its decoded protected
 * header (new reference) or NULL when the signature is bad. */
static json_t *verify_jws(const char *text, EVP_PKEY *key, char **payload_out)
{
    json_t *j = json_loads(text, 0, NULL);
    cr_assert(json_is_object(j), "JWS is a JSON object: %s", text);
    cr_assert_eq(json_object_size(j), 3, "flattened: protected, payload, signature only");
    const char *prot = json_string_value(json_object_get(j, "protected"));
    const char *pay = json_string_value(json_object_get(j, "payload"));
    const char *sig = json_string_value(json_object_get(j, "signature"));
    cr_assert(prot && pay && sig);
    uint8_t raw[64], buf[4096];
    size_t n = 0;
    cr_assert_eq(pt_jws_b64url_decode(sig, strlen(sig), raw, sizeof(raw), &n), 0);
    cr_assert_eq(n, 64, "ES256 signature is r||s, 64 bytes");
    /* r||s -> DER for OpenSSL */
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
    unsigned char *der = NULL;
    int derlen = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    char input[4096];
    snprintf(input, sizeof(input), "%s.%s", prot, pay);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cr_assert_eq(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    int ok = EVP_DigestVerify(ctx, der, (size_t)derlen, (const unsigned char *)input,
                              strlen(input));
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    json_t *hdr = NULL;
    if (ok == 1) {
        cr_assert_eq(pt_jws_b64url_decode(prot, strlen(prot), buf, sizeof(buf) - 1, &n), 0);
        buf[n] = '\0';
        hdr = json_loads((const char *)buf, 0, NULL);
        cr_assert(json_is_object(hdr));
        cr_assert_eq(pt_jws_b64url_decode(pay, strlen(pay), buf, sizeof(buf) - 1, &n), 0);
        buf[n] = '\0';
        if (payload_out)
            *payload_out = strdup((const char *)buf);
    }
    json_decref(j);
    return hdr;
}

Test(jws, sign_with_jwk_verifies_with_openssl)
{
    EVP_PKEY *k = pt_jws_p256_new();
    char *jws = pt_jws_sign(k, NULL, "nonce-1", "https://ca.test/new-acct",
                            "{\"termsOfServiceAgreed\":true}");
    cr_assert_not_null(jws);
    /* the CA rebuilds the key from the jwk in the header, then verifies */
    json_t *j = json_loads(jws, 0, NULL);
    const char *prot = json_string_value(json_object_get(j, "protected"));
    uint8_t buf[1024];
    size_t n = 0;
    cr_assert_eq(pt_jws_b64url_decode(prot, strlen(prot), buf, sizeof(buf) - 1, &n), 0);
    buf[n] = '\0';
    json_t *h0 = json_loads((const char *)buf, 0, NULL);
    EVP_PKEY *pub = key_from_jwk(json_object_get(h0, "jwk"));
    cr_assert_eq(EVP_PKEY_eq(pub, k), 1, "jwk describes our key");

    char *payload = NULL;
    json_t *hdr = verify_jws(jws, pub, &payload);
    cr_assert_not_null(hdr, "signature verifies");
    cr_assert_str_eq(json_string_value(json_object_get(hdr, "alg")), "ES256");
    cr_assert_str_eq(json_string_value(json_object_get(hdr, "nonce")), "nonce-1");
    cr_assert_str_eq(json_string_value(json_object_get(hdr, "url")), "https://ca.test/new-acct");
    cr_assert_null(json_object_get(hdr, "kid"), "jwk and kid are exclusive");
    cr_assert_str_eq(payload, "{\"termsOfServiceAgreed\":true}");
    free(payload);
    json_decref(hdr);
    json_decref(h0);
    json_decref(j);
    EVP_PKEY_free(pub);
    free(jws);
    EVP_PKEY_free(k);
}

Test(jws, sign_with_kid_post_as_get_and_tamper)
{
    EVP_PKEY *k = pt_jws_p256_new();
    for (int round = 0; round < 20; round++) { /* r or s with leading zeros, now and then */
        char *jws = pt_jws_sign(k, "https://ca.test/acct/1", "n2", "https://ca.test/order/7",
                                NULL);
        cr_assert_not_null(jws);
        char *payload = NULL;
        json_t *hdr = verify_jws(jws, k, &payload);
        cr_assert_not_null(hdr);
        cr_assert_str_eq(json_string_value(json_object_get(hdr, "kid")), "https://ca.test/acct/1");
        cr_assert_null(json_object_get(hdr, "jwk"));
        cr_assert_str_eq(payload, "", "POST-as-GET: empty payload");
        json_t *j = json_loads(jws, 0, NULL);
        cr_assert_str_eq(json_string_value(json_object_get(j, "payload")), "");
        free(payload);
        json_decref(hdr);

        /* another payload under the same signature does not verify */
        json_object_set_new(j, "payload", json_string("e30"));
        char *forged = json_dumps(j, JSON_COMPACT);
        cr_assert_null(verify_jws(forged, k, NULL));
        free(forged);
        json_decref(j);
        free(jws);
    }
    /* another key does not verify it either */
    EVP_PKEY *other = pt_jws_p256_new();
    char *jws = pt_jws_sign(k, "kid", "n", "u", "{}");
    cr_assert_null(verify_jws(jws, other, NULL));
    free(jws);
    EVP_PKEY_free(other);
    EVP_PKEY_free(k);
}

Test(jws, refuses_non_p256_keys)
{
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    cr_assert_not_null(rsa);
    cr_assert(!pt_jws_is_p256(rsa));
    cr_assert_null(pt_jws_jwk(rsa));
    cr_assert_null(pt_jws_sign(rsa, "kid", "n", "u", "{}"));
    EVP_PKEY_free(rsa);
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    cr_assert(!pt_jws_is_p256(p384));
    EVP_PKEY_free(p384);
}

/* ---- CSR ------------------------------------------------------------------ */

Test(jws, csr_contains_the_names)
{
    EVP_PKEY *k = pt_jws_p256_new();
    const char *names[] = {"app1.example.test", "www.app1.example.test"};
    uint8_t *der = NULL;
    size_t len = 0;
    cr_assert_eq(pt_jws_csr(k, names, 2, &der, &len), 0);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    cr_assert_not_null(req);
    cr_assert_eq(p, der + len, "whole DER consumed");
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    cr_assert_eq(EVP_PKEY_eq(pub, k), 1, "CSR carries our key");
    cr_assert_eq(X509_REQ_verify(req, k), 1, "self-signature verifies");
    char cn[256] = "";
    X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof(cn));
    cr_assert_str_eq(cn, "app1.example.test");
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    cr_assert_not_null(exts);
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    cr_assert_not_null(gens);
    cr_assert_eq(sk_GENERAL_NAME_num(gens), 2);
    for (int i = 0; i < 2; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        int type;
        ASN1_STRING *s = GENERAL_NAME_get0_value(g, &type);
        cr_assert_eq(type, GEN_DNS);
        cr_assert_eq((size_t)ASN1_STRING_length(s), strlen(names[i]));
        cr_assert(memcmp(ASN1_STRING_get0_data(s), names[i], strlen(names[i])) == 0);
    }
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    free(der);
    EVP_PKEY_free(k);
}

Test(jws, csr_long_name_goes_without_cn)
{
    EVP_PKEY *k = pt_jws_p256_new();
    char longname[100];
    memset(longname, 'a', 70);
    snprintf(longname + 70, sizeof(longname) - 70, ".example.test");
    const char *names[] = {longname};
    uint8_t *der = NULL;
    size_t len = 0;
    cr_assert_eq(pt_jws_csr(k, names, 1, &der, &len), 0);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    cr_assert_not_null(req);
    cr_assert_eq(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    cr_assert_eq(sk_GENERAL_NAME_num(gens), 1);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    free(der);
    EVP_PKEY_free(k);
    cr_assert_eq(pt_jws_csr(k = pt_jws_p256_new(), names, 0, &der, &len), PT_EIO);
    EVP_PKEY_free(k);
}

/* ---- certificates: ARI id, validity --------------------------------------- */

/* A self-signed certificate with the AKI, serial and validity of RFC 9773's
 * example. */
static char *example_cert(void)
{
    static const uint8_t aki[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                                  0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
    EVP_PKEY *k = pt_jws_p256_new();
    X509 *x = X509_new();
    X509_set_version(x, 2);
    BIGNUM *bn = NULL;
    BN_hex2bn(&bn, "87654321");
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    ASN1_TIME_set(X509_getm_notBefore(x), 1700000000);
    ASN1_TIME_set(X509_getm_notAfter(x), 1700000000 + 90 * 86400);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"ari.test", -1, -1,
                               0);
    X509_set_issuer_name(x, nm);
    X509_set_pubkey(x, k);
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    akid->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(akid->keyid, aki, sizeof(aki));
    cr_assert_eq(X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0), 1);
    AUTHORITY_KEYID_free(akid);
    cr_assert(X509_sign(x, k, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *pem = strndup(data, (size_t)n);
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(k);
    return pem;
}

Test(jws, ari_cert_id_rfc9773_example)
{
    char *pem = example_cert();
    char *id = pt_jws_ari_cert_id(pem);
    cr_assert_not_null(id);
    cr_assert_str_eq(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    free(id);
    int64_t nb = 0, na = 0;
    cr_assert_eq(pt_jws_cert_times(pem, &nb, &na), 0);
    cr_assert_eq(nb, 1700000000);
    cr_assert_eq(na, 1700000000 + 90 * 86400);
    free(pem);
    cr_assert_null(pt_jws_ari_cert_id("not a certificate"));
    cr_assert_eq(pt_jws_cert_times("junk", &nb, &na), PT_EMALFORMED);
}

Test(jws, parse_rfc3339)
{
    int64_t t = 0;
    cr_assert_eq(pt_jws_parse_time("2023-11-14T22:13:20Z", &t), 0);
    cr_assert_eq(t, 1700000000);
    cr_assert_eq(pt_jws_parse_time("2023-11-14T22:13:20.123456Z", &t), 0);
    cr_assert_eq(t, 1700000000);
    cr_assert_eq(pt_jws_parse_time("2023-11-15T00:13:20+02:00", &t), 0);
    cr_assert_eq(t, 1700000000);
    cr_assert_eq(pt_jws_parse_time("2023-11-14T20:13:20-02:00", &t), 0);
    cr_assert_eq(t, 1700000000);
    cr_assert_eq(pt_jws_parse_time("2023-11-14t22:13:20z", &t), 0);
    const char *bad[] = {"", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z",
                         "2023-11-14T22:13:20Zjunk", "2023-11-14T22:13:20.Z",
                         "2023-11-14T22:13:20+2:00", "x023-11-14T22:13:20Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(pt_jws_parse_time(bad[i], &t), PT_EMALFORMED, "'%s'", bad[i]);
    cr_assert_eq(pt_jws_parse_time(NULL, &t), PT_EMALFORMED);
}
