/* The one buffered writer of worker/: the relay (worker/passthrough.c), the
 * HTTP engine (worker/httpproxy.c) and the backend transport
 * (worker/upconn.c) write to their sockets through it.
 *
 * A write is tried at once with send(2) (MSG_DONTWAIT | MSG_NOSIGNAL: the
 * socket call skips the VFS write path that uv_try_write's write(2) takes;
 * perf at 256 keep-alive connections had vfs_write and fdget_pos at ~6% of
 * the worker). What the kernel takes then costs nothing more; only the rest
 * is copied and queued on libuv (uv_write keeps the order, and the socket is
 * not written directly again until the queue is empty). The writer does not
 * bound the queue itself: the producer does, by not reading its source
 * while pt_writer_queued() is above its mark, and resumes from the
 * <written> callback, which is called once per queued write as the kernel
 * takes it (status 0) or the socket fails (status < 0).
 *
 * A tag travels with each write (a count the producer gives back when the
 * bytes are out: h2 flow-control credit, a request body's bytes): tags of
 * bytes taken at once are returned by pt_writer_send, those of queued bytes
 * come back through <written>.
 *
 * Lifetime: each queued write holds the writer's memory (it is embedded in
 * the caller's connection) until its callback ran: the caller counts
 * pt_writer_send's return 1 as one more reference and drops it at the end of
 * <written>. */
#ifndef PT_WRITER_H
#define PT_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct pt_writer;

/* One queued write ended: <tag> is the one it was sent with; <status> 0 or a
 * libuv error (UV_ECANCELED when the handle closed first). */
typedef void (*pt_writer_cb)(struct pt_writer *wr, int status, size_t tag);

struct pt_writer {
    uv_stream_t *stream; /* borrowed: the connected socket written to; NULL
                            in raw mode (pt_writer_init_fd) */
    int fd;              /* its descriptor */
    size_t queued;       /* bytes copied and queued, not yet written */
    uint8_t *pend;       /* owned, raw mode: the queued bytes (queued of them) */
    size_t tags;         /* sum of the tags of queued writes */
    pt_writer_cb written;
    void *data;          /* the caller's */
};

/* Binds <wr> to <stream> (connected: it has a descriptor). Returns 0 or a
 * libuv error. */
int pt_writer_init(struct pt_writer *wr, uv_stream_t *stream, pt_writer_cb written, void *data);

/* Raw mode, for a socket that is not a libuv stream (the relay's, driven by
 * worker/evq.h): the same direct send, but what the kernel does not take is
 * held here until the owner, told the socket is writable, calls
 * pt_writer_flush; there is no callback (<written> and tags unused). */
void pt_writer_init_fd(struct pt_writer *wr, int fd, void *data);

/* Raw mode: sends what is queued. Returns the bytes still queued (0: all
 * out; > 0: the socket is full, flush again when it is writable), or a
 * negative libuv error. */
ssize_t pt_writer_flush(struct pt_writer *wr);

/* Raw mode: drops what is queued (the socket is closing) and frees it. */
void pt_writer_drop(struct pt_writer *wr);

/* Writes <n> bytes: 0 when the kernel took them all now (and *<tag> stays
 * the caller's to give back), 1 when some were queued (<written> reports
 * them with <tag>), or a negative libuv error (nothing queued). */
int pt_writer_send(struct pt_writer *wr, const void *p, size_t n, size_t tag);

/* Half-closes the socket (shutdown(2), SHUT_WR) when nothing is queued:
 * at once, without uv_shutdown's request and its write watcher started and
 * stopped again (an epoll_ctl each). Returns 0, UV_EBUSY when bytes are
 * still queued (the caller waits for <written>), or a libuv error. */
int pt_writer_shutdown(struct pt_writer *wr);

/* Bytes queued and not yet written. */
static inline size_t pt_writer_queued(const struct pt_writer *wr)
{
    return wr->queued;
}

#endif
