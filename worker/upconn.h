/* The backend side of an HTTP exchange: one connection to one of a
 * backend's servers, plain TCP or TLS (a client through memory BIOs, with
 * SNI and, when the backend asks for it, certificate verification), taken
 * from the worker's pool of idle connections or dialed (worker/conn.c:
 * servers in order), with buffered writes whose progress is reported back
 * (so the caller paces its producer), reads that can be paused, and the
 * pool itself.
 *
 * The pool holds duplicated descriptors (and, for TLS, the SSL object with
 * its memory BIOs), not libuv handles: a handle's memory belongs to whoever
 * opened it. A parked connection is found by its key (pt_upconn_key);
 * before reuse a peek tells whether the backend closed it meanwhile.
 *
 * worker/h2.c's streams and worker/httpproxy.c's connections hold one
 * struct pt_upconn each: connect, TLS client and pool exist only here. */
#ifndef PT_UPCONN_H
#define PT_UPCONN_H

#include "common/snapshot.h"
#include "worker/tls.h"

#include <uv.h>

/* Room for a key: "host:port tls+verify name". */
#define PT_UPCONN_KEY_MAX (2 * PT_HOST_MAX + 32)

/* The key a connection to <hp> is parked under: the server as configured
 * (a DNS name is not resolved again for a parked connection), and for TLS
 * the verification and the name it was made for (a connection made for one
 * name must not serve another). */
void pt_upconn_key(const struct pt_hostport *hp, bool tls, bool verify, const char *name,
                   char key[PT_UPCONN_KEY_MAX]);

/* Parks a duplicate of <fd> with <ssl> (NULL for plain; taken by the pool
 * when this returns true) under <key>. */
bool pt_upconn_pool_park(int fd, SSL *ssl, const char *key, uint64_t now);

/* A parked connection for <key> that is still open, its SSL (or NULL) in
 * *ssl, both the caller's; or -1. */
int pt_upconn_pool_take(const char *key, uint64_t now, SSL **ssl);

/* Why the connection ended (it stays the caller's to close). */
enum pt_upconn_end {
    PT_UPCONN_EOF = 0,     /* the backend closed (or sent close_notify) */
    PT_UPCONN_UNREACHABLE, /* no server could be connected to */
    PT_UPCONN_TLS_FAILED,  /* the TLS handshake failed (certificate, protocol) */
    PT_UPCONN_BROKEN,      /* a read or write error, a bad TLS record */
};

/* The caller's side; none is called from within a pt_upconn_* call, and
 * none after pt_upconn_close. */
struct pt_upconn_ops {
    /* Connected (and the TLS handshake done): what was sent so far goes. */
    void (*connected)(void *ctx);
    /* Response bytes (plaintext). */
    void (*data)(void *ctx, const uint8_t *p, size_t n);
    /* The backend took bytes that were sent with <tag>. */
    void (*written)(void *ctx, size_t tag);
    void (*ended)(void *ctx, enum pt_upconn_end why);
};

struct pt_upconn_target {
    uv_loop_t *loop;
    struct pt_tls *const *tls;          /* where the worker keeps its current contexts
                                           (borrowed): read at each dial, since a
                                           certificate change replaces them while a
                                           name lookup or a failover is under way */
    struct pt_health *health;           /* the worker's memory of servers seen down
                                           (borrowed, may be NULL): dials skip them */
    const struct pt_backend *be;        /* borrowed: be->tls, be->tls_verify */
    const struct pt_hostport *servers;  /* borrowed from the caller's snapshot */
    size_t n_servers;
    const char *host;                   /* the request's host: the TLS name for an
                                           IP server (copied) */
    bool plain;                         /* plain HTTP whatever be->tls says (port 80
                                           to a passthrough backend's http_servers) */
    bool fresh;                         /* do not take one from the pool */
};

struct pt_upconn;

/* A connection to one of <t>'s servers: a parked one when there is one
 * (pt_upconn_reused says so; it is open at once and ops->connected is not
 * called), else a dial. Bytes may be sent at once: they wait for the
 * connection. Freed by pt_upconn_close. */
struct pt_upconn *pt_upconn_open(const struct pt_upconn_target *t,
                                 const struct pt_upconn_ops *ops, void *ctx);

/* Sends <n> bytes to the backend (worker/writer.h: at once when the socket
 * takes them, else queued). Returns the part of <tag> the backend took at
 * once, which the caller gives back itself; the rest comes back through
 * ops->written as it goes. Or -1: the connection is broken (close it). */
ssize_t pt_upconn_send(struct pt_upconn *u, const void *p, size_t n, size_t tag);

/* Reads stop (backpressure) or go on. */
void pt_upconn_read(struct pt_upconn *u, bool on);

/* Bytes sent and not yet taken by the backend. */
size_t pt_upconn_queued(const struct pt_upconn *u);

bool pt_upconn_reused(const struct pt_upconn *u);
bool pt_upconn_is_open(const struct pt_upconn *u);

/* The server's address once connected; the server's index in the list. */
const struct sockaddr_storage *pt_upconn_peer(const struct pt_upconn *u);
size_t pt_upconn_server(const struct pt_upconn *u);

/* The server in use did not answer in time or answered with a malformed
 * head: the health memory counts it as failed (pt_dial_server_failed).
 * NULL is fine. */
void pt_upconn_server_failed(struct pt_upconn *u);

/* A connect attempt older than <connect_ms> gives way to the next server.
 * Returns when to look again (loop milliseconds): the current attempt's
 * end, or UINT64_MAX when no connect is under way (a name lookup, the TLS
 * handshake, or open). */
uint64_t pt_upconn_tick(struct pt_upconn *u, uint64_t now, uint32_t connect_ms);

/* The exchange is over and was whole: the connection goes to the pool when
 * it is idle (nothing queued either way, TLS between two records), then is
 * closed as by pt_upconn_close. Returns the sum of the tags never reported
 * as written. */
size_t pt_upconn_finish(struct pt_upconn *u, uint64_t now);

/* No more callbacks; the connection closes and frees itself. Returns the
 * sum of the tags never reported as written. NULL is fine. */
size_t pt_upconn_close(struct pt_upconn *u);

#endif
