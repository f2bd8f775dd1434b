/* PEM certificates and keys as an admin uploads them or an ACME CA issues
 * them: parse, check (leaf first, chain in order, key matches the leaf,
 * supported key type, DNS names) and re-encode in one canonical form.
 *
 * No trust check: a private CA or a self-signed certificate is fine. No I/O
 * and no logging; the OpenSSL error queue is left empty. */
#ifndef PT_API_PEM_H
#define PT_API_PEM_H

#include "common/pt.h"

#define PT_PEM_CERT_MAX (64u * 1024) /* bytes of cert_pem: leaf + chain */
#define PT_PEM_CERTS_MAX 10          /* certificates in cert_pem */
#define PT_PEM_KEY_MAX (16u * 1024)  /* bytes of key_pem */
#define PT_PEM_RSA_MIN_BITS 2048
#define PT_PEM_RSA_MAX_BITS 8192     /* bigger keys only slow down handshakes */

struct pt_pem_info {
    char **names;          /* owned: the leaf's DNS subjectAltNames, normalised
                              (lowercase, "*.x.y" kept), duplicates dropped */
    size_t n_names;
    size_t n_certs;        /* leaf + chain */
    int64_t not_before;    /* unix seconds (UTC) of the leaf */
    int64_t not_after;
    char *cert_pem;        /* owned: leaf then chain, re-encoded */
    char *key_pem;         /* owned: unencrypted PKCS#8, re-encoded; NULL when
                              no key was given */
    const char *field;     /* static: after a failure, "cert_pem" or "key_pem",
                              the input at fault */
};

/* Checks <cert_pem>[0..clen) (CERTIFICATE blocks: the leaf, then each issuer
 * in order) and, unless <key_pem> is NULL, <key_pem>[0..klen) (one private
 * key, PKCS#8 or traditional, not encrypted). Refuses: sizes over the limits
 * above, NUL bytes, PEM that does not parse or holds other block types, a
 * chain whose certificate i is not issued (name and signature) by i + 1, a
 * key that does not match the leaf, keys other than RSA 2048..8192 bits, EC
 * P-256/P-384 or Ed25519, and a leaf without a usable DNS subjectAltName
 * (the subject CN is not used; "*" alone and names that are not LDH are
 * skipped). Expired or not yet valid certificates are accepted: the caller
 * compares the times.
 *
 * Returns 0 with <out> filled (release with pt_pem_info_free), or
 * PT_ETOOBIG / PT_EMALFORMED (does not parse) / PT_EINVAL (parses but is
 * refused) with a message in <why> (<whylen> bytes, without the field name)
 * and out->field set; <out> then owns nothing. */
int pt_pem_check(const char *cert_pem, size_t clen, const char *key_pem, size_t klen,
                 struct pt_pem_info *out, char *why, size_t whylen);

/* Frees what <info> owns (the key PEM is wiped first) and zeroes it. NULL is
 * fine. */
void pt_pem_info_free(struct pt_pem_info *info);

#endif
