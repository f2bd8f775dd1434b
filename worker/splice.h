/* Moving bytes from one socket to another through a pipe with splice(2), so
 * that a bulk transfer's bytes stay in the kernel: the relay
 * (worker/passthrough.c) switches a connection to it once a transfer shows
 * it is bulk.
 *
 * A pipe holds the bytes read from one socket and not yet written to the
 * other (at most PT_SPLICE_PIPE_CAP: the relay's backpressure bound, like
 * its 64 KiB read buffer). Pipes cost two descriptors each, so empty ones go
 * back to a small per-worker pool for the next spliced connection instead of
 * being closed; a pipe that still holds bytes is closed (they are dropped
 * with the connection that owned them). Single-threaded, like the loop. */
#ifndef PT_SPLICE_H
#define PT_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PT_SPLICE_PIPE_CAP (64 * 1024) /* Linux's default pipe size */

struct pt_splice_pipe {
    int rd, wr;  /* the pipe's ends; -1 when none is held */
    size_t len;  /* bytes in the pipe */
};

/* An empty pipe from the pool, or a new one. Returns 0, or a negative errno
 * (EMFILE...: the caller keeps copying through user space). */
int pt_splice_take(struct pt_splice_pipe *p);

/* Gives the pipe back (to the pool when it is empty) and sets it to none.
 * A pipe that holds none does nothing. */
void pt_splice_give(struct pt_splice_pipe *p);

/* Moves up to what the pipe has room for from socket <fd> into <p>.
 * Returns the bytes moved (> 0), 0 at the socket's end of stream, or a
 * negative errno (-EAGAIN: nothing to read now). */
ssize_t pt_splice_in(int fd, struct pt_splice_pipe *p);

/* Moves what <p> holds to socket <fd>. Returns the bytes moved (>= 0; fewer
 * than p->len when the socket's buffer is full), or a negative errno
 * (-EAGAIN: the socket takes nothing now). */
ssize_t pt_splice_out(struct pt_splice_pipe *p, int fd);

/* Pipes held by the pool now (for tests and metrics). */
size_t pt_splice_pooled(void);

#endif
