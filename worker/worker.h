/* A data-plane worker: one process, one libuv loop.
 *
 * It inherits its listening sockets from the daemon (fd 4...) and talks to
 * the daemon over fd 3: snapshots in, acks and counters out. It starts
 * accepting once it has caught up (the snapshot and the deltas since, then
 * PT_IPC_READY), swaps snapshots between two
 * loop events, and when the daemon goes away (EOF on fd 3, even after a
 * SIGKILL of the daemon) or asks it to stop, it closes its listeners at once,
 * lets established connections finish within the grace period, and exits. */
#ifndef PT_WORKER_H
#define PT_WORKER_H

#include "common/ipc.h"
#include "common/log.h"
#include "common/snapshot.h"
#include "common/tally.h"
#include "worker/conntrack.h"
#include "worker/health.h"

#include <uv.h>

#define PT_WORKER_FD_IPC 3
#define PT_WORKER_FD_LISTEN0 4

struct pt_worker;
struct pt_tls;

/* The TLS listeners ('s') defer accept (daemon/listeners.h
 * pt_listeners_client_first) by this many seconds: a connection arrives
 * with its first bytes, or without any once it was silent that long. */
#define PT_WORKER_DEFER_ACCEPT_S 1

struct pt_listener {
    uv_poll_t poll;             /* readable = connections queued; we accept4()
                                   ourselves to control pausing and EMFILE */
    int fd;
    struct pt_worker *w;
    char kind;                  /* 's' TLS (passthrough/offload), 'h' plain HTTP,
                                   't' a stream route's (common/stream.h) */
    uint32_t lid;               /* 't': the daemon's listener id */
    unsigned refs;              /* 't': one while open, one per connection
                                   accepted from it (they log its address):
                                   freed on the last */
    bool open;
    struct sockaddr_storage addr; /* local address, for logs and PROXY headers */
    bool wildcard;              /* bound to 0.0.0.0 or [::]: ask per connection */
};

struct pt_worker {
    uv_loop_t *loop;
    unsigned id;
    uv_pipe_t ipc;
    bool ipc_open;
    struct pt_ipc_rx rx;
    struct pt_snapshot *snap;   /* current; one reference held here */
    struct pt_banlist *bans;    /* owned: the bans of snap with the deltas
                                   received since applied in place */
    uint64_t version;           /* config version applied (snapshot or delta) */
    struct pt_conntrack_list tracked; /* open client connections, for bans */
    struct pt_tls *tls;         /* TLS contexts built from snap */
    struct pt_listener *listeners;
    size_t n_listeners;
    struct pt_listener **stream_ls; /* owned: stream listeners, as the daemon
                                       hands them over (PT_IPC_LISTENER) */
    size_t n_stream_ls;
    struct pt_stream_count *stream_counts; /* owned list: open connections
                                              per stream name */
    bool accepting;             /* listeners started (after the first snapshot) */
    bool caught_up;             /* PT_IPC_READY came: the configuration is current */
    bool resyncing;             /* asked for the whole configuration again
                                   (PT_IPC_RESYNC): deltas until it are stale */
    uint64_t refuse_every;      /* PORTIER_REFUSE_DELTAS (tests of the resync
                                   path): a delta whose version is a multiple
                                   is refused the first time; 0: none */
    uint64_t refused_delta;     /* the last version so refused */
    bool paused;                /* at the connection limit: not accepting */
    bool draining;              /* stop requested: listeners closed */
    const char *state_dir;      /* argv: names the hand-over, NULL for none */
    int handover_fd;            /* while orphaned: offers the listeners, or -1 */
    uv_poll_t handover;
    uv_timer_t stats_timer;
    uv_timer_t drain_timer;
    uv_timer_t resume_timer;    /* retry accepting after EMFILE/ENFILE */
    uv_signal_t sigterm, sigint;
    uint64_t conns;             /* open client connections */
    uint64_t max_conns;         /* below RLIMIT_NOFILE, leaves room for backends */
    uint64_t accepted;
    uint64_t refused;
    uint64_t requests[2];       /* HTTP requests received over HTTP/1.x, HTTP/2 */
    struct pt_ratelimit overload_log;
    struct {
        char reason[64];
        uint64_t n;             /* refused at accept (or before a request) */
        uint64_t cut;           /* open connections cut when the ban came */
    } bans_hit[32];             /* per ban reason, for /metrics */
    size_t n_bans_hit;
    struct pt_wbuf alog;        /* access log lines not yet written to fd 1,
                                   at most about PT_ACCESS_LOG_MAX bytes */
    uint64_t alog_lines;        /* lines in alog */
    uint64_t alog_dropped;      /* lines lost: buffer full, or stdout failed */
    bool alog_sock;             /* stdout is a socket: send(MSG_DONTWAIT) */
    struct pt_health health;    /* backend servers seen down by this worker */
    struct pt_tally tally;      /* traffic counters, from the access records */
};

/* Entry point: argv = portierd --worker ID KINDS [STATE_DIR]. Returns the
 * exit status. With STATE_DIR, a worker whose daemon dies keeps accepting and
 * offers its listening sockets to the next daemon (common/handover.h) for up
 * to the grace period, then drains. */
int pt_worker_main(int argc, char **argv);

/* Connection bookkeeping for the protocol modules: a connection counts from
 * accept to its last close callback. */
void pt_worker_conn_opened(struct pt_worker *w);
void pt_worker_conn_closed(struct pt_worker *w);

/* Protocol entry points, called with a freshly accepted client (ownership of
 * <fd> passes: the module closes it; it calls pt_worker_conn_opened first).
 * The current snapshot is l->w->snap: take a reference to keep it. <fd> is a non-blocking accepted socket. */
void pt_pass_accept(struct pt_listener *l, int fd, const struct sockaddr_storage *peer);
void pt_http80_accept(struct pt_listener *l, int fd, const struct sockaddr_storage *peer);
void pt_stream_accept(struct pt_listener *l, int fd, const struct sockaddr_storage *peer);

/* Open connections of stream <name> in this worker (for max_connections):
 * a counter that lives as long as the worker. */
struct pt_stream_count {
    struct pt_stream_count *next;
    uint32_t n;
    char name[];
};
uint32_t *pt_worker_stream_count(struct pt_worker *w, const char *name);
/* A connection accepted from stream listener <l> (kind 't') takes a hold on
 * it, so a removed route's listener outlives its connections; release drops
 * it. */
void pt_worker_listener_hold(struct pt_listener *l);
void pt_worker_listener_release(struct pt_listener *l);

uint64_t pt_worker_now_ms(struct pt_worker *w);

/* True when the IP of <sa> is banned now; counts the refusal under the ban's
 * reason. */
bool pt_worker_banned(struct pt_worker *w, const struct sockaddr *sa);

/* Closes <fd> with an RST: a refused client gets no byte and no FIN, and we
 * keep no TIME_WAIT for it. */
void pt_worker_reject_fd(int fd);

/* Access log: one JSON object per connection, buffered and written to fd 1
 * at most once a second or per 32 KiB, so logging costs no syscall per
 * connection. Writes never block: when the reader stalls, lines wait in a
 * buffer bounded by PT_ACCESS_LOG_MAX, and past it they are dropped and
 * counted (portier_access_log_dropped_total). */
#define PT_ACCESS_LOG_MAX (1u << 20)
struct pt_access {
    const struct sockaddr *client;   /* real client */
    const struct sockaddr *listener;
    const char *sni;                 /* as received; escaped here */
    size_t sni_len;
    const char *route;               /* matched domain, or NULL */
    const char *mode;
    const char *proto;               /* "h1" or "h2" for HTTP requests, else NULL */
    const char *backend;             /* backend name, or NULL */
    const struct sockaddr *server;   /* server connected to, or NULL */
    uint64_t bytes_in, bytes_out;    /* from the client, to the client */
    uint64_t duration_ms;
    const char *result;              /* "ok", "banned", "unknown_sni", ... */
};
void pt_worker_access(struct pt_worker *w, const struct pt_access *a);

/* One HTTP request received over HTTP/<version> (1 or 2): /metrics counts them. */
void pt_worker_request(struct pt_worker *w, int version);
void pt_worker_access_flush(struct pt_worker *w);

#endif
