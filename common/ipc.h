/* Daemon <-> worker messages over one Unix stream socketpair per worker.
 *
 * Frame: u32 type, u32 payload length (big-endian), payload. The daemon is
 * trusted: a malformed frame from it is a bug and the worker aborts; frames
 * from a worker are checked the same way and a bad one gets it restarted.
 * The receive buffer reassembles frames from however the stream splits. */
#ifndef PT_IPC_H
#define PT_IPC_H

#include "common/pt.h"
#include "common/wbuf.h"

#define PT_IPC_HDR 8
#define PT_IPC_FRAME_MAX (256u << 20) /* snapshots with many certificates */

enum pt_ipc_type {
    PT_IPC_SNAPSHOT = 1, /* daemon -> worker: pt_snap_encode bytes */
    PT_IPC_ACK = 2,      /* worker -> daemon: u64 applied version */
    PT_IPC_STATS = 3,    /* worker -> daemon: u64 version, u64 connections,
                            u64 accepted, u64 refused (overload/bans),
                            u32 n, n x (str ban reason, u64 refused at
                            accept, u64 open connections cut), u64 HTTP/1.x
                            requests, u64 HTTP/2 requests, the servers'
                            health (common/srvhealth.h), u64 access log
                            lines dropped, the traffic tally
                            (common/tally.h) */
    PT_IPC_STOP = 4,     /* daemon -> worker: stop accepting and drain */
    PT_IPC_BANS = 5,     /* daemon -> worker: pt_snap_bans_encode bytes, a ban
                            delta on top of the last snapshot; acked like one */
    PT_IPC_LISTENER = 6, /* daemon -> worker: u32 listener id, with the
                            listening socket of a stream route attached
                            (SCM_RIGHTS); sent before the snapshot naming it */
    PT_IPC_CONFIG = 7,   /* daemon -> worker: pt_delta_encode bytes, backend and
                            domain changes on top of the last snapshot
                            (common/delta.h); acked like one */
    PT_IPC_READY = 8,    /* daemon -> worker, empty: the frames before it (the
                            snapshot and every delta since) are the current
                            configuration: start accepting. Without it a
                            starting worker would serve the snapshot before
                            the deltas that follow it had arrived */
    PT_IPC_RESYNC = 9,   /* worker -> daemon, empty: a delta did not apply
                            (not newer than the worker's version, or naming
                            what its snapshot lacks); the worker kept its
                            configuration and ignores deltas until the
                            daemon sends the current snapshot and the deltas
                            since again */
    PT_IPC_TYPE_LAST = PT_IPC_RESYNC, /* the highest type: pt_ipc_rx_next
                                         refuses any other; a new type goes
                                         above it and moves it */
};

/* Starts a frame of <type> in <b>; returns the offset to pass to end. */
size_t pt_ipc_begin(struct pt_wbuf *b, enum pt_ipc_type type);
/* Patches the length of the frame started at <off>. */
void pt_ipc_end(struct pt_wbuf *b, size_t off);

struct pt_ipc_rx {
    uint8_t *buf; /* owned */
    size_t len;   /* bytes held */
    size_t cap;
    size_t used;  /* bytes of the frame returned last, dropped on next call */
};

/* Appends received bytes. */
void pt_ipc_rx_push(struct pt_ipc_rx *rx, const void *data, size_t n);

/* Returns 1 and the next complete frame (payload borrowed until the next call),
 * 0 when none is complete yet, PT_EMALFORMED for a frame over the limit or an
 * unknown type. */
int pt_ipc_rx_next(struct pt_ipc_rx *rx, uint32_t *type, const uint8_t **payload,
                   size_t *plen);

void pt_ipc_rx_free(struct pt_ipc_rx *rx);

#endif
