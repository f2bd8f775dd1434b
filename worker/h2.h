/* HTTP/2 to clients on TLS offload (ALPN "h2"): one nghttp2 server session
 * per client connection, driven through the connection's TLS (the engine in
 * worker/httpproxy.c keeps the transport, timers, bans and pacing of the
 * client side), and one HTTP/1.1 exchange with the backend per stream.
 *
 * Each stream's header block becomes an HTTP/1.1 head (common/h2h1.c) and
 * passes the same checks as an HTTP/1.1 client's request (common/http1.c:
 * framing, 421 for a host of another route, forwarded fields); the
 * response head gets the domain's response headers and HSTS; bodies are
 * framed by common/h1body.c and streamed both ways: a request body is
 * acknowledged to the client (WINDOW_UPDATE) only once the backend took it,
 * and a response is read from the backend only while the client takes it.
 *
 * Bounded whatever the client does: at most H2_STREAMS_MAX streams, header
 * lists of PT_HTTP_HEAD_MAX bytes (decoded, so an HPACK bomb stops there),
 * a budget of frames that carry no request (SETTINGS, PING, PRIORITY, empty
 * DATA, RST_STREAM: the floods and rapid reset), output that does not move
 * (a zero window) for --send-timeout; each ends the connection with GOAWAY.
 * The connection's other streams and the worker's other connections go on. */
#ifndef PT_H2_H
#define PT_H2_H

#include "worker/worker.h"

/* What the session needs from the connection that carries it. */
struct pt_h2_host {
    struct pt_worker *w;
    struct pt_listener *l;
    struct pt_snapshot *snap;        /* borrowed: outlives the session */
    int route;                       /* the SNI's route in snap */
    const struct sockaddr_storage *peer; /* the real client (borrowed) */
    bool trusted;                    /* peer is a --trusted-proxy */
    const char *sni;                 /* borrowed */
    size_t sni_len;
    void *ctx;
    /* Plaintext for the client (through TLS); copied. */
    void (*send)(void *ctx, const uint8_t *p, size_t n);
    /* Bytes sent and not yet taken by the client's socket. */
    size_t (*queued)(void *ctx);
};

struct pt_h2;

/* A session for a connection whose TLS handshake chose h2; sends the
 * server preface at once. Caller frees with pt_h2_free. */
struct pt_h2 *pt_h2_new(const struct pt_h2_host *host);

/* Client plaintext in. Returns 0, or -1 when the connection is over (after a
 * GOAWAY when one could be sent): the caller closes once its output is
 * flushed. */
int pt_h2_input(struct pt_h2 *h, const uint8_t *p, size_t n);

/* The client's socket took what was queued: more output may go. Returns as
 * pt_h2_input. */
int pt_h2_output(struct pt_h2 *h);

/* Called about once a second: stream timeouts, a stalled window, an idle
 * connection. Returns as pt_h2_input. */
int pt_h2_tick(struct pt_h2 *h, uint64_t now);

/* Ends the session; streams still talking to backends close their backend
 * connection and go away on their own. NULL is fine. */
void pt_h2_free(struct pt_h2 *h);

/* The ALPN protocols a domain offers: h2 when its "http2" flag is set and its
 * backend is plain HTTP (the backend side has no TLS here yet). */
bool pt_h2_offered(const struct pt_snapshot *s, int route);

#endif
