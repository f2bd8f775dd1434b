/* JOSE helpers for the ACME client (RFC 7515, 7517, 7638, 8555): base64url,
 * the public JWK of a P-256 key and its thumbprint, flattened JWS signing
 * with ES256, HTTP-01 key authorizations, the CSR and the ARI certificate id.
 *
 * Pure functions: no I/O, no globals, no logging. Strings they return are
 * malloc'ed (caller frees); on OpenSSL failure they return NULL / a negative
 * pt_err. */
#ifndef PT_JWS_H
#define PT_JWS_H

#include "common/pt.h"

#include <jansson.h>
#include <openssl/evp.h>

/* base64url without padding (RFC 7515 §2). Returns the encoding (caller
 * frees). */
char *pt_jws_b64url(const void *in, size_t len);

/* Decodes <len> bytes of unpadded base64url from <in> into <out> (room for
 * <cap> bytes); *outlen gets the size. Refuses padding, characters outside
 * the alphabet, a length of 1 mod 4 and non-zero trailing bits:
 * PT_EMALFORMED; PT_ETOOBIG when <cap> is short. */
int pt_jws_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap,
                         size_t *outlen);

/* A new ECDSA P-256 key, or NULL. */
EVP_PKEY *pt_jws_p256_new(void);

/* True when <key> is an EC key on P-256 (the only kind we sign with). */
bool pt_jws_is_p256(EVP_PKEY *key);

/* The public JWK of P-256 <key>: {"crv":"P-256","kty":"EC","x":..,"y":..}
 * (new reference), or NULL for another kind of key. */
json_t *pt_jws_jwk(EVP_PKEY *key);

/* RFC 7638 thumbprint of <jwk> (EC, RSA or oct): SHA-256 over the required
 * members in lexicographic order, without whitespace, base64url. Writes 43
 * characters and a NUL to <out>. PT_EINVAL when a required member is missing
 * or not a string, or the kty is unknown. */
int pt_jws_thumbprint(const json_t *jwk, char out[44]);

/* RFC 8555 §8.1: "<token>.<thumbprint>" (caller frees). */
char *pt_jws_key_authorization(const char *token, const char *thumbprint);

/* Flattened JWS JSON (RFC 7515 §7.2.2) signed with ES256 by P-256 <key>.
 * Protected header: alg, then "kid": <kid>, or "jwk" (from <key>) when <kid>
 * is NULL, "nonce", "url". <payload> NULL means the empty payload of a
 * POST-as-GET. Returns the serialised JSON (caller frees), or NULL. */
char *pt_jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                  const char *payload);

/* ES256 signature over <data> as JWS wants it: r || s, 32 bytes each.
 * Returns 0 or PT_EIO. */
int pt_jws_es256(EVP_PKEY *key, const void *data, size_t len, uint8_t sig[64]);

/* A DER certificate signing request for <names> (first one also the CN,
 * all of them as DNS subjectAltNames) signed by <key> with SHA-256.
 * Returns 0 with *der / *derlen (caller frees *der), or PT_EIO. */
int pt_jws_csr(EVP_PKEY *key, const char *const *names, size_t n_names, uint8_t **der,
               size_t *derlen);

/* RFC 9773 §4.1 certificate identifier of the leaf (first certificate) in
 * <pem>: base64url(authority key identifier) "." base64url(serial DER
 * content octets). Returns it (caller frees), or NULL when the certificate
 * does not parse or has no AKI keyIdentifier. */
char *pt_jws_ari_cert_id(const char *pem);

/* Validity of the leaf in <pem> as unix seconds. Returns 0 or PT_EMALFORMED. */
int pt_jws_cert_times(const char *pem, int64_t *not_before, int64_t *not_after);

/* RFC 3339 UTC ("2025-01-02T03:04:05Z", fractional seconds and offsets
 * accepted) to unix seconds. Returns 0 or PT_EMALFORMED. */
int pt_jws_parse_time(const char *s, int64_t *out);

#endif
