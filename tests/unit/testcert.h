/* Test helper: a self-signed certificate as a snapshot's struct pt_cert. */
#ifndef PT_TEST_TESTCERT_H
#define PT_TEST_TESTCERT_H

#include "common/snapshot.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

/* A self-signed P-256 certificate for <name>: PEM certificate and key. */
static inline struct pt_cert make_pem(const char *id, const char *name)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    cr_assert(key && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)name, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
    BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bc, x);
    PEM_write_bio_PrivateKey(bk, key, NULL, NULL, 0, NULL, NULL);
    char *p;
    struct pt_cert c = {0};
    long n = BIO_get_mem_data(bc, &p);
    c.cert_pem = strndup(p, (size_t)n);
    n = BIO_get_mem_data(bk, &p);
    c.key_pem = strndup(p, (size_t)n);
    c.id = pt_xstrdup(id);
    c.names = pt_xcalloc(1, sizeof(*c.names));
    c.names[c.n_names++] = pt_xstrdup(name);
    BIO_free(bc);
    BIO_free(bk);
    X509_free(x);
    EVP_PKEY_free(key);
    return c;
}

#endif
