/* TLS of a worker: one server SSL_CTX (Mozilla "intermediate": TLS 1.2
 * and 1.3, ECDHE AEAD suites, client preference, ALPN h2 and http/1.1) and
 * the parsed certificates of the current snapshot, one chosen by SNI (exact
 * name, then wildcard SAN) for each connection, plus one client SSL_CTX for
 * backends with "tls": true.
 *
 * Certificates are re-parsed when a whole snapshot arrives only if their
 * PEMs changed; a configuration delta changes those of its certificates in
 * place. An SSL holds references to its certificate, chain and key
 * (OpenSSL refcounts), so a change never disturbs a handshake in flight. */
#ifndef PT_TLS_H
#define PT_TLS_H

#include "common/snapshot.h"
#include "worker/tlsrec.h"

#include <openssl/ssl.h>

struct pt_tls;

/* Builds the contexts for whole snapshot <s>, taking over from <prev> (may
 * be NULL; only to be freed afterwards) the contexts of unchanged
 * certificates: the same id and PEM. A pass over every certificate and its
 * names. A certificate that does not load is logged and skipped (its names
 * then fail the handshake cleanly). Sets the ticket key (pt_tls_set_ticket_key). */
struct pt_tls *pt_tls_build(const struct pt_snapshot *s, struct pt_tls *prev);
/* After a configuration delta: the certificates <ids> (put or removed) of
 * <s> replace what <t> had of them, in place; the others and their contexts
 * stay. Costs those certificates' parses and names, nothing per other
 * certificate. <s>'s cert_ids must be built (the delta that changed them
 * did: common/delta.c). */
void pt_tls_update(struct pt_tls *t, const struct pt_snapshot *s, const char *const *ids,
                   size_t n_ids);
void pt_tls_free(struct pt_tls *t); /* NULL is fine */

/* Sets the session ticket key (80 bytes) of every context of this process,
 * built and to be built (pt_tls_build sets the snapshot's). */
void pt_tls_set_ticket_key(const uint8_t key[80]);

/* A server connection for <sni>[0..len) (case-insensitive, trailing dot
 * ignored) in *out (caller frees with SSL_free), presenting the certificate
 * that covers it: PT_ENOTFOUND when none does or the one that does has
 * passed its not_after (checked now, not at the next snapshot), PT_ENOMEM
 * when OpenSSL fails. */
int pt_tls_server_new(const struct pt_tls *t, const char *sni, size_t len, SSL **out);

/* The leaf certificate pt_tls_server_new would present for <sni>, or NULL.
 * Borrowed until the next change of that certificate. */
X509 *pt_tls_server_cert(const struct pt_tls *t, const char *sni, size_t len);

/* ALPN offers h2 (before http/1.1) on <ssl>, a server connection whose
 * domain has it; call before the handshake. */
void pt_tls_offer_h2(SSL *ssl);

/* The handshake of <ssl> chose h2. */
bool pt_tls_is_h2(SSL *ssl);

/* The client context for backends: <verify> selects the one that checks the
 * server certificate against the system CAs. Borrowed. */
SSL_CTX *pt_tls_client_ctx(const struct pt_tls *t, bool verify);

/* A client connection to a backend over memory BIOs (read and write them
 * with SSL_get_rbio / SSL_get_wbio): SNI <name> when not empty, and with
 * <verify> the certificate must be valid for <name>. The first flight is
 * in the write BIO. Caller frees with SSL_free. */
SSL *pt_tls_client_new(const struct pt_tls *t, bool verify, const char *name);

/* A client connection's TLS (offload) over the connection's own buffers,
 * in place of two memory BIOs: network bytes are lent to OpenSSL for one
 * pass instead of being copied into a BIO, and records to send gather in
 * <out>. Memory BIOs keep (and clear on every growth) a buffer each; an
 * idle connection here holds neither, and the BIO object is one, not two.
 *
 * Once a TLS 1.3 handshake is done, the connection is handed over to our
 * own record layer (worker/tlsrec.c) and the SSL object is freed: kernel
 * TLS in user space, ~200 bytes of keys instead of ~14 KB of OpenSSL
 * state per idle connection. Anything unexpected (TLS 1.2, early data, a
 * failed self-check of the keys) keeps the connection on OpenSSL. The
 * pt_tls_io functions below work the same either way. */
struct pt_tls_io {
    SSL *ssl; /* OpenSSL's connection until the handover, then NULL (owned) */
    /* Until the handover, the traffic secrets the keylog callback gave;
     * after it, the record layer; NULL on OpenSSL (owned). */
    struct pt_tlsrec *rec;
    bool h2;           /* ALPN chose h2 (kept when the SSL goes) */
    const uint8_t *in; /* lent network bytes not read yet */
    size_t in_len;
    struct pt_wbuf held; /* what a pass left unread, read first next time */
    struct pt_wbuf out;  /* records to write to the network (owned) */
};

/* The plaintext buffer pt_tls_io_step needs: a whole inner record. */
#define PT_TLS_PLAIN_MAX PT_TLSREC_PLAIN_MAX

/* Makes <io> the only BIO of <ssl> (read and write) and takes <ssl>
 * (freed here on failure); <io> must not move afterwards. */
bool pt_tls_io_attach(struct pt_tls_io *io, SSL *ssl);

/* Lends <p>[0..n) to the next steps; pt_tls_io_done ends the pass. */
void pt_tls_io_feed(struct pt_tls_io *io, const uint8_t *p, size_t n);

/* Ends a pass: lent bytes not read are copied into io->held. */
void pt_tls_io_done(struct pt_tls_io *io);

/* Frees the SSL or the record layer and the buffers. */
void pt_tls_io_free(struct pt_tls_io *io);

/* What one pt_tls_step found. */
enum pt_tls_ev {
    PT_TLS_WANT = 0,   /* needs more network bytes (flush the write BIO first) */
    PT_TLS_HANDSHAKEN, /* the handshake just completed (*hs_done is set) */
    PT_TLS_DATA,       /* *got plaintext bytes in buf */
    PT_TLS_EOF,        /* the peer's close_notify */
    PT_TLS_ERROR,      /* a failed handshake or a broken record */
};

/* One step of a memory-BIO connection whose read BIO holds what came from
 * the network: the handshake while *hs_done is false, then plaintext into
 * buf[0..cap). Call again after HANDSHAKEN and DATA. Shared by the client
 * and backend sides of worker/httpproxy.c and worker/upconn.c. */
enum pt_tls_ev pt_tls_step(SSL *ssl, bool *hs_done, uint8_t *buf, size_t cap, size_t *got);

/* pt_tls_step for <io> (buf holds PT_TLS_PLAIN_MAX bytes): on HANDSHAKEN
 * the connection may have been handed over to the record layer. */
enum pt_tls_ev pt_tls_io_step(struct pt_tls_io *io, bool *hs_done, uint8_t *buf, size_t cap,
                              size_t *got);

/* Encrypts <p>[0..n) into io->out (after the handshake). Returns false
 * when the connection cannot send any more (it must close). */
bool pt_tls_io_write(struct pt_tls_io *io, const void *p, size_t n);

/* Queues a close_notify in io->out. */
void pt_tls_io_close(struct pt_tls_io *io);

/* The handshake of <io> chose h2. */
bool pt_tls_io_is_h2(const struct pt_tls_io *io);

#endif
