/* The relay's event queue: one edge-triggered epoll instance per worker, for
 * the sockets the relay (worker/passthrough.c) drives itself on raw
 * descriptors instead of through libuv's streams.
 *
 * Why: libuv's streams cost per connection what nginx stream does not (the
 * FIONBIO of uv_tcp_open, an epoll_ctl MOD each time a watcher changes, a
 * DEL at close, a level-triggered re-poll of every socket still readable,
 * read(2) through the VFS; bench/PROFILE.md). Here a socket is added ONCE
 * with EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET and not modified (but by a
 * spliced transfer, pt_evq_modify): close(2) removes it from the instance
 * (as long as no other descriptor shares the socket: one handed to libuv
 * must be removed first, pt_evq_remove).
 *
 * Edge-triggered: an event says a side became readable or writable; the
 * owner remembers it and reads (writes) until EAGAIN, or asks to run again
 * (pt_evq_again) when it stops early for fairness: no further event comes
 * for bytes it left in the socket.
 *
 * The instance's own descriptor is watched by libuv with one uv_poll: when
 * it is readable, the dispatch drains it with epoll_wait(timeout 0) in
 * batches, calling each item's <ready> with the events. Single-threaded,
 * like the loop. */
#ifndef PT_EVQ_H
#define PT_EVQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <uv.h>

struct pt_evq_item;

/* <events>: EPOLL* bits of the edge, or 0 for a run asked by pt_evq_again. */
typedef void (*pt_evq_cb)(struct pt_evq_item *it, uint32_t events);

/* Embedded in its owner, which must not free it while it is added (close
 * the descriptor or pt_evq_remove first) nor during a dispatch (an item's
 * events of the current batch may still be delivered after its owner closed
 * the descriptor: the owner ignores them; it frees itself from a libuv
 * close callback, which never runs inside the dispatch). */
struct pt_evq_item {
    pt_evq_cb ready;          /* the rest starts zeroed */
    struct pt_evq_item *next; /* in the again list */
    bool again;               /* in the again list */
    uint64_t turn;            /* the queue's turn when it was asked */
};

struct pt_evq {
    int fd;                       /* the epoll instance; -1: none */
    uv_poll_t poll;               /* its readiness, on the loop */
    uv_idle_t idle;               /* active while the again list is not empty:
                                     the loop polls without waiting and runs it */
    struct pt_evq_item *again;    /* items to run once more, in order */
    struct pt_evq_item **again_end;
    uint64_t turn;                /* again runs so far: which are due */
    uint64_t dispatched;          /* events delivered (for tests and metrics) */
};

/* Creates the instance and starts watching it on <loop>. Returns 0 or a
 * negative errno. */
int pt_evq_init(struct pt_evq *q, uv_loop_t *loop);

/* Closes the handles (their close callbacks run on the next loop turn) and
 * the instance. Items still added are forgotten. */
void pt_evq_close(struct pt_evq *q);

/* Adds socket <fd>, once, for edges of input, output, peer half-close,
 * errors. <it>->ready must be set. Returns 0 or a negative errno. */
int pt_evq_add(struct pt_evq *q, int fd, struct pt_evq_item *it);

/* What pt_evq_add asks for. */
#define PT_EVQ_ALL (EPOLLIN | EPOLLOUT | EPOLLRDHUP)

/* Changes what <fd> (added) is watched for to <events> (EPOLLIN, EPOLLOUT,
 * EPOLLRDHUP; 0: only errors), edge-triggered still; an edge already due
 * for what is asked again is reported at once. For the one case where the
 * fixed mask costs more than the calls: a spliced transfer, whose sender's
 * every arriving segment would wake the worker while the pipe is full
 * (bench/PROFILE.md). Returns 0 or a negative errno. */
int pt_evq_modify(struct pt_evq *q, int fd, struct pt_evq_item *it, uint32_t events);

/* Takes <fd> out (before handing it to libuv, which adds it to its own
 * epoll: closing it would then not remove it from this one) and forgets
 * <it>'s again run. Returns 0 or a negative errno. */
int pt_evq_remove(struct pt_evq *q, int fd, struct pt_evq_item *it);

/* Runs <it>->ready(it, 0) once more soon (on the next loop turn), for
 * bytes it left in a socket when it stopped before EAGAIN. Asking twice
 * before the run is once. */
void pt_evq_again(struct pt_evq *q, struct pt_evq_item *it);

/* Drops <it>'s pending again run (its owner is closing). */
void pt_evq_forget(struct pt_evq *q, struct pt_evq_item *it);

/* Delivers the events ready now (libuv calls it when the instance is
 * readable; exposed for tests). Again runs are the idle handle's. */
void pt_evq_dispatch(struct pt_evq *q);

#endif
