/* Supervisor: forks the workers, feeds them snapshots, collects their acks
 * and counters, respawns the ones that die.
 *
 * Runs on the daemon's libuv loop (main thread). pt_supervisor_publish,
 * _wait, _workers_json, _healthy and _metrics may be called from the API
 * thread: they take the supervisor's lock. Each worker slot owns one set of
 * listening sockets (SO_REUSEPORT) that the daemon keeps, so a respawned
 * worker takes over the very same sockets and nothing queued is lost. */
#ifndef PT_SUPERVISOR_H
#define PT_SUPERVISOR_H

#include "common/pt.h"
#include "common/wbuf.h"

#include <jansson.h>
#include <uv.h>

struct pt_listeners;

struct pt_supervisor;

struct pt_supervisor_config {
    unsigned workers;
    size_t n_listeners;     /* sockets per worker */
    const int *fds;         /* workers x n_listeners, slot-major; borrowed */
    const char *kinds;      /* n_listeners chars: 's' TLS, 'h' plain HTTP */
    unsigned grace_ms;      /* how long workers may drain on stop */
    int access_fd;          /* becomes the workers' stdout (access log), or -1 */
    const char *state_dir;  /* canonical; names the workers' listener hand-over
                               should this daemon die (common/handover.h) */
    size_t delta_limit;     /* see pt_supervisor_deltas_due; 0: the default */
    struct pt_listeners *listeners; /* stream listeners handed to every worker
                                       before the snapshot; borrowed, or NULL */
    /* Called on the loop once every worker has exited after pt_supervisor_stop. */
    void (*on_stopped)(void *arg);
    void *arg;
};

/* Starts every worker with <frame> (an IPC snapshot frame for <version>, owned
 * by the supervisor from now on). Returns 0 or a negative pt_err. */
int pt_supervisor_start(uv_loop_t *loop, const struct pt_supervisor_config *cfg,
                        struct pt_wbuf *frame, uint64_t version,
                        struct pt_supervisor **out);

/* Thread-safe. Makes <frame> (ownership passes) the current snapshot and sends
 * it to every worker, after the stream listeners they have not got yet; then
 * closes the daemon's copy of the stream listeners <frame> does not use. */
void pt_supervisor_publish(struct pt_supervisor *s, struct pt_wbuf *frame,
                           uint64_t version);

/* Thread-safe. Sends the delta <frame> (a PT_IPC_BANS or PT_IPC_CONFIG frame
 * for <version>, ownership passes) to every worker, and keeps it for workers
 * that start later: they get the last snapshot, then each delta since. */
void pt_supervisor_publish_delta(struct pt_supervisor *s, struct pt_wbuf *frame,
                                 uint64_t version);

/* Thread-safe. True when the deltas kept since the last snapshot outweigh it
 * by more than PT_SUPERVISOR_DELTA_SLACK bytes (or, when set, pass
 * cfg.delta_limit bytes): the next ban write should publish a full snapshot
 * instead, so a (re)starting worker never replays more than about one
 * snapshot's worth of deltas. */
#define PT_SUPERVISOR_DELTA_SLACK (1u << 20)
bool pt_supervisor_deltas_due(struct pt_supervisor *s);

/* Thread-safe. Waits until every live worker acked >= <version>, at most
 * <timeout_ms>. Returns true when they all did. */
bool pt_supervisor_wait(struct pt_supervisor *s, uint64_t version, unsigned timeout_ms);

/* Thread-safe. CLOCK_MONOTONIC microseconds of when the loop thread last
 * wrote what was published to the workers, and when every live worker last
 * acked all of it (the commit trace, daemon/publish.c). */
void pt_supervisor_timing(struct pt_supervisor *s, uint64_t *sent_us, uint64_t *applied_us);

/* Thread-safe views for the API. */
json_t *pt_supervisor_workers_json(struct pt_supervisor *s);
bool pt_supervisor_healthy(struct pt_supervisor *s);
/* A new array of the backend servers' health merged over the workers
 * (common/srvhealth.h), of <backend> only unless NULL: {"backend",
 * "server", "state": "up"|"down", "consecutive_failures", "failures",
 * "changed_ms" (wall clock ms of the last change, null: never failed)}. */
json_t *pt_supervisor_servers_json(struct pt_supervisor *s, const char *backend);
/* Appends the supervisor's metric families (Prometheus text) to <out>. */
void pt_supervisor_metrics(struct pt_supervisor *s, struct pt_wbuf *out);

/* Loop thread. Asks every worker to stop accepting and drain; on_stopped runs
 * once all have exited (those still running after grace + 5 s are killed). */
void pt_supervisor_stop(struct pt_supervisor *s);

/* Loop thread, after on_stopped: frees everything. NULL is fine. */
void pt_supervisor_free(struct pt_supervisor *s);

#endif
