/* The connection core shared by the relay (worker/passthrough.c) and the HTTP
 * engine (worker/httpproxy.c): a client connection's lifetime, its deadline
 * timer, and dialing a backend. Writing is worker/writer.h, the backend
 * transport of the HTTP engine and of h2 streams worker/upconn.h.
 *
 * Lifetime: a connection counts its open handles and requests in flight
 * (the timer, the sockets, queued writes, a name lookup) and is freed when
 * the last one ended, never before: libuv calls close and write callbacks
 * after the connection decided to close. pt_conn_open registers it with
 * its worker, pt_conn_closing starts the end (bans pass it by, the timer
 * closes), pt_conn_close_tcp closes its sockets, and pt_conn_free is the
 * owner's last step once its count is zero.
 *
 * A deadline is the timeout of the connection's current state, moved by
 * activity: moving it later costs nothing (the timer wakes at the old time
 * and sleeps again for what is left), moving it earlier restarts the timer.
 *
 * A dial tries a backend's servers in their order: an IP server is
 * connected to at once, a DNS name is resolved first on libuv's thread pool
 * (worker/upstream.c), never on the loop thread. The caller owns the TCP
 * handle of each attempt and its lifetime (libuv frees nothing before the
 * close callback), and bounds each attempt with its own timer: on expiry it
 * calls pt_dial_abandon like a refused connect. With health memory
 * (worker/health.h), servers known to be down are skipped and every
 * attempt's outcome is reported to it. */
#ifndef PT_CONN_H
#define PT_CONN_H

#include "common/addr.h"
#include "worker/worker.h"

#include <stddef.h>
#include <uv.h>

/* The struct of type <type> whose member <member> is at <p>. */
#define PT_CONTAINER_OF(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* The timer is the first member: its data pointer stays the caller's (for
 * its close callback). */
struct pt_deadline {
    uv_timer_t timer;
    uint64_t at;   /* the deadline, in loop milliseconds */
    uint64_t wake; /* when the timer fires next; UINT64_MAX: stopped */
    void (*expired)(struct pt_deadline *dl); /* at or after <at>; the timer
                                                is stopped until set again */
};

/* Initialises the timer on <loop> with <data> as its handle data; the caller
 * closes dl->timer like any handle. Nothing fires before a set or arm. */
void pt_deadline_init(struct pt_deadline *dl, uv_loop_t *loop, void *data,
                      void (*expired)(struct pt_deadline *dl));

/* The deadline is <at> (loop milliseconds), or <ms> from now. */
void pt_deadline_set(struct pt_deadline *dl, uint64_t at);
void pt_deadline_arm(struct pt_deadline *dl, uint32_t ms);

/* No deadline until the next set or arm. */
void pt_deadline_stop(struct pt_deadline *dl);

/* A new client connection of <w>: counted (the worker's connection limit),
 * in the bans registry with <kill> (<addr>: its real client, borrowed;
 * NULL while unknown), and its deadline timer initialised (<data>: the
 * timer's handle data, for pt_conn_closing's callback). */
void pt_conn_open(struct pt_worker *w, struct pt_conntrack *ct,
                  const struct sockaddr_storage *addr, void (*kill)(struct pt_conntrack *ct),
                  struct pt_deadline *dl, void *data, void (*expired)(struct pt_deadline *dl));

/* The connection starts closing: bans pass it by, its deadline stops and
 * its timer closes with <closed> (which drops the timer's reference). */
void pt_conn_closing(struct pt_conntrack *ct, struct pt_deadline *dl, uv_close_cb closed);

/* Closes a socket handle unless it is closing already; with an RST when
 * <reset> (an RST from one side passed on: the other end must not mistake
 * a cut transfer for a complete one). */
void pt_conn_close_tcp(uv_tcp_t *tcp, bool reset, uv_close_cb closed);

/* The connection's last reference went (its owner has logged it): out of
 * the registry, its snapshot reference let go, <mem> (the owner's struct,
 * holding <ct>) freed, and the worker counts one connection less. */
void pt_conn_free(struct pt_worker *w, struct pt_conntrack *ct, struct pt_snapshot *snap,
                  void *mem);

struct pt_dial;
struct pt_health;

/* What the caller does at each step; <d> is embedded in its connection. */
struct pt_dial_ops {
    /* A new attempt: returns the caller's handle, uv_tcp_init'ed and counted
     * in the caller's lifetime, with the connect timeout armed. */
    uv_tcp_t *(*attempt)(struct pt_dial *d);
    /* d->tcp is connected to d->servers[d->ix]. */
    void (*connected)(struct pt_dial *d);
    /* Close callback of a failed attempt's handle (refused, unreachable,
     * timed out): the caller forgets the handle, calls pt_dial_next unless
     * it is closing, and drops the handle's reference. */
    uv_close_cb attempt_closed;
    /* No server left to try. */
    void (*exhausted)(struct pt_dial *d);
    /* A name lookup starts (<take>: the caller counts one more reference
     * and arms the connect timeout) or ends (the reference goes; this may
     * free the caller, so it is the dial's last step). */
    void (*hold)(struct pt_dial *d, bool take);
    /* Optional (NULL: nothing): d->tcp's connect is under way. Reading may
     * start here (libuv delivers nothing before the connect ends): one
     * registration with epoll then serves the connect and the reads. */
    void (*connecting)(struct pt_dial *d);
    /* Raw mode (optional; then <attempt>, <attempt_closed> and <connecting>
     * are not used): a socket of the caller's own, not a libuv handle (the
     * relay's, worker/evq.h). Starts a non-blocking connect to <sa> with the
     * connect timeout armed; returns 0 (the caller then reports the outcome
     * with pt_dial_connected or pt_dial_abandon) or a negative errno (this
     * attempt failed: <raw_failed> follows at once). */
    int (*connect_raw)(struct pt_dial *d, const struct sockaddr *sa);
    /* Raw mode: the attempt failed (refused, timed out, or connect_raw
     * returned an error): the caller closes its socket and calls
     * pt_dial_next unless it is closing. */
    void (*raw_failed)(struct pt_dial *d);
};

struct pt_dial {
    const struct pt_dial_ops *ops;
    uv_loop_t *loop;
    struct pt_health *health;          /* borrowed, may be NULL */
    const struct pt_hostport *servers; /* borrowed from the caller's snapshot */
    size_t n_servers;
    size_t ix;                         /* the server being tried */
    uv_tcp_t *tcp;                     /* the current attempt's handle (the caller's) */
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    bool gai_pending;
    bool raw_open;                     /* raw mode: an attempt under way */
    bool cancelled;                    /* the caller is closing: callbacks do nothing */
};

/* Starts trying <servers>[0..n) in order (n may be 0: exhausted at once),
 * those that <health> (may be NULL) says are down left out. */
void pt_dial_start(struct pt_dial *d, const struct pt_dial_ops *ops, uv_loop_t *loop,
                   struct pt_health *health, const struct pt_hostport *servers, size_t n);

/* After a failed attempt's handle is closed: the next server. */
void pt_dial_next(struct pt_dial *d);

/* Raw mode: the attempt's socket is connected (SO_ERROR 0 once writable). */
void pt_dial_connected(struct pt_dial *d);

/* The current attempt failed (the caller's connect timeout expired, or in
 * raw mode its socket reported an error): its handle closes with
 * ops->attempt_closed (raw mode: ops->raw_failed). */
void pt_dial_abandon(struct pt_dial *d);

/* The server in use (d->ix, connected) did not answer in time or answered
 * with a malformed head: health memory counts it as failed like a refused
 * connect (skipped, probed in the background), as nginx's passive checks
 * count "timeout" and "invalid_header". */
void pt_dial_server_failed(struct pt_dial *d);

/* The caller is closing: a pending lookup is cancelled (its callback still
 * runs, and only gives the reference back), a pending connect is left to
 * end with the handle's close. */
void pt_dial_cancel(struct pt_dial *d);

#endif
