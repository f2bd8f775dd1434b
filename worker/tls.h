/* TLS contexts of a worker: one server SSL_CTX per certificate of the
 * current snapshot (Mozilla "intermediate": TLS 1.2 and 1.3, ECDHE AEAD
 * suites, client preference, ALPN h2 and http/1.1), chosen by SNI (exact name, then
 * wildcard SAN), plus one client SSL_CTX for backends with "tls": true.
 *
 * Contexts are rebuilt when a snapshot arrives, reusing the previous ones for
 * certificates whose PEM did not change; SSL objects keep their SSL_CTX alive
 * (OpenSSL refcounts), so a swap never disturbs a handshake in flight. */
#ifndef PT_TLS_H
#define PT_TLS_H

#include "common/snapshot.h"

#include <openssl/ssl.h>

struct pt_tls;

/* Builds the contexts for <s>, reusing what <prev> (may be NULL) has for
 * unchanged certificates. A certificate that does not load is logged and
 * skipped (its names then fail the handshake cleanly). */
struct pt_tls *pt_tls_build(const struct pt_snapshot *s, const struct pt_tls *prev);
void pt_tls_free(struct pt_tls *t); /* NULL is fine */

/* The server context for <sni>[0..len) (case-insensitive, trailing dot
 * ignored), or NULL when no certificate covers it or the one that does has
 * passed its not_after (checked now, not at the next snapshot). Borrowed. */
SSL_CTX *pt_tls_server_ctx(const struct pt_tls *t, const char *sni, size_t len);

/* ALPN offers h2 (before http/1.1) on <ssl>, a server connection whose
 * domain has it; call before the handshake. */
void pt_tls_offer_h2(SSL *ssl);

/* The handshake of <ssl> chose h2. */
bool pt_tls_is_h2(SSL *ssl);

/* The client context for backends: <verify> selects the one that checks the
 * server certificate against the system CAs. Borrowed. */
SSL_CTX *pt_tls_client_ctx(const struct pt_tls *t, bool verify);

#endif
