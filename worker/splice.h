/* Moving bytes from one socket to another through a pipe with splice(2), so
 * that a bulk transfer's bytes stay in the kernel: the relay
 * (worker/passthrough.c) switches a connection to it once a transfer shows
 * it is bulk.
 *
 * A pipe holds the bytes read from one socket and not yet written to the
 * other (at most its size: the relay's
 * backpressure bound). Pipes cost two descriptors each, so empty ones go
 * back to a small per-worker pool for the next spliced connection instead of
 * being closed; a pipe that still holds bytes is closed (they are dropped
 * with the connection that owned them). Single-threaded, like the loop. */
#ifndef PT_SPLICE_H
#define PT_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A pipe starts at Linux's default size, 64 KiB. Once a direction shows it
 * is bulk (bytes still in its pipe when its side is read again), its pipe
 * grows to PT_SPLICE_PIPE_WANT with F_SETPIPE_SZ: each splice then moves up
 * to 1 MiB, and the backend's socket is read (and ACKed) a sixteenth as
 * often. perf showed why that matters on loopback: the ACK a read sends is
 * processed at once in the reader's context, including the sender's
 * transmissions it releases and the sender's wakeup; a 64 MiB transfer took
 * ~35% less of the relay's CPU with 1 MiB pipes (bench/PROFILE.md). It is
 * kernel memory held while the bytes are in flight, and the relay's bound
 * per direction, like its read buffer. Workers dropped to --user are held
 * to fs.pipe-user-pages-soft (64 MiB per user by default, empty pipes
 * counted at their size): past it the pipe keeps 64 KiB, and a new pipe
 * that the kernel would make smaller is not used (the connection copies). */
#define PT_SPLICE_PIPE_MIN (64 * 1024)
#define PT_SPLICE_PIPE_WANT (1024 * 1024)

struct pt_splice_pipe {
    int rd, wr;      /* the pipe's ends; -1 when none is held */
    size_t len;      /* bytes in the pipe */
    size_t cap;      /* the pipe's size: it takes no more than this */
    bool grow_tried; /* F_SETPIPE_SZ was asked (once per connection) */
};

/* An empty pipe from the pool, or a new one. Returns 0, or a negative errno
 * (EMFILE, ENOBUFS for a pipe the quota shrank...: the caller keeps
 * copying through user space). */
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
