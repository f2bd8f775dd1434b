/* Backend server health, remembered per worker: passive checks (real
 * connections) and the backends' optional active checks.
 *
 * A server that refused, timed out or did not resolve is down: dials skip
 * it, so a black-holed first server costs one connect timeout, not one per
 * connection, and a backend whose servers are all down fails at once. A
 * down server is probed in the background (a TCP connect, through the same
 * dial as real traffic) after a backoff that doubles while it keeps failing
 * (1 s up to 30 s); the first probe or real connection that succeeds brings
 * it back. Servers are known by their text as configured ("host:port"), so
 * the memory survives snapshots and is shared by every backend naming the
 * same server.
 *
 * A backend with a health_check (common/snapshot.h) has its servers probed
 * every interval instead (TCP connect, TLS handshake, or GET path for a
 * 2xx/3xx): <fall> failed checks in a row take a server down, <rise>
 * successes bring it back; a real connection that fails still takes it down
 * at once. When several backends list one server, the first one's check
 * applies. The daemon learns the states from the workers' STATS frames
 * (pt_health_encode), and takes per server the most recent change seen by
 * any worker. */
#ifndef PT_HEALTH_H
#define PT_HEALTH_H

#include "common/addr.h"
#include "common/snapshot.h"
#include "common/wbuf.h"

#include <openssl/ssl.h>
#include <uv.h>

#define PT_HEALTH_BACKOFF_MIN_MS 1000
#define PT_HEALTH_BACKOFF_MAX_MS 30000
#define PT_HEALTH_SERVERS_MAX 4096 /* remembered servers; past it, new ones stay unknown (up) */

enum pt_health_state {
    PT_HEALTH_UP = 0, /* connected last time, or never tried */
    PT_HEALTH_DOWN,   /* failed last time: skipped until a probe connects */
};

struct pt_health_server {
    char key[PT_HOST_MAX + 9]; /* "host:port" as configured */
    enum pt_health_state state;
    uint32_t fails;            /* consecutive failures */
    uint64_t failures;         /* all failures (connects and probes) */
    uint64_t retry_at;         /* loop ms: the next background probe */
    uint64_t changed_ms;       /* wall clock ms of the last state change */
    bool probing;
    struct pt_check check;     /* active check, PT_CHECK_NONE: passive only */
    bool tls;                  /* HTTP checks over TLS (the backend's "tls") */
    uint8_t oks;               /* active checks passed in a row */
    uint64_t next_check;       /* loop ms */
    bool seen;                 /* configure: claimed by a backend already */
};

struct pt_health_probe;

struct pt_health {
    uv_loop_t *loop;
    uv_timer_t timer;            /* wakes for the earliest probe */
    struct pt_health_server *s;  /* owned; never shrinks (probes hold indexes) */
    size_t n, cap;
    uint32_t connect_timeout_ms; /* for probes: the current snapshot's */
    unsigned probes;             /* in flight (until their handles closed) */
    struct pt_health_probe *running;       /* probes not done yet (private to health.c) */
    SSL_CTX *tls_ctx;            /* owned: TLS and HTTPS checks, no verification */
    bool closing;
};

void pt_health_init(struct pt_health *h, uv_loop_t *loop);

/* Stops the timer, cancels probes (their handles close with the loop and
 * then change nothing) and frees the table. */
void pt_health_close(struct pt_health *h);

/* A new snapshot: the connect timeout and the backends' active checks. */
void pt_health_configure(struct pt_health *h, const struct pt_snapshot *snap);

/* Whether a dial should try <hp> now. */
bool pt_health_usable(struct pt_health *h, const struct pt_hostport *hp);

/* The outcome of a connection attempt to <hp>. */
void pt_health_report(struct pt_health *h, const struct pt_hostport *hp, bool ok);

/* Appends to a STATS payload the report of common/srvhealth.h: one entry
 * per server of each backend of <snap> (none without a snapshot). */
void pt_health_encode(struct pt_health *h, const struct pt_snapshot *snap, struct pt_wbuf *b);

#endif
