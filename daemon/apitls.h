/* The API's TLS certificate (--api-tls-cert / --api-tls-key): loaded from
 * the two files, or made once (self-signed, EC P-256, 10 years) when both are
 * missing, so that a YunoHost server on the LAN can pin it. The API serves it
 * with libmicrohttpd's own TLS (GnuTLS in Debian's build), which wants the
 * PEM text in memory. */
#ifndef PT_APITLS_H
#define PT_APITLS_H

#include "common/pt.h"

struct pt_apitls {
    char *cert_pem;        /* owned, NUL-terminated */
    char *key_pem;         /* owned, NUL-terminated; wiped on free */
    char fingerprint[96];  /* SHA-256 of the certificate, "AB:CD:..." */
    char pin[64];          /* curl --pinnedpubkey: "sha256//BASE64" of the public key */
    bool made;             /* true when this call created the two files */
};

/* Loads <cert_path> and <key_path>, or, when neither exists, makes a
 * self-signed certificate whose subjectAltNames are <host> (an IP literal, as
 * --api addresses are; NULL or "" for none) and "localhost", and writes both files
 * (the key with mode 0600, created exclusively). Refuses one file without
 * the other, unreadable or non-PEM contents, a key that does not match the
 * certificate. Returns 0, or PT_EIO / PT_EINVAL with <err> set. */
int pt_apitls_load(const char *cert_path, const char *key_path, const char *host,
                   struct pt_apitls *out, char *err, size_t errlen);

/* Frees what <t> owns; NULL is fine. */
void pt_apitls_free(struct pt_apitls *t);

#endif
