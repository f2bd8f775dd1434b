#include "worker/splice.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Pipes of ending connections kept for the next ones; beyond it they are
 * closed. Small: pooled pipes hold descriptors that the connection limit
 * does not count (32 here, out of the worker's reserve of 64). */
#define POOL_MAX 16

static struct {
    int rd, wr;
} pool[POOL_MAX];
static size_t pooled;

int pt_splice_take(struct pt_splice_pipe *p)
{
    p->len = 0;
    p->cap = PT_SPLICE_PIPE_MIN;
    p->grow_tried = false;
    if (pooled > 0) {
        pooled--;
        p->rd = pool[pooled].rd;
        p->wr = pool[pooled].wr;
        return 0;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        p->rd = p->wr = -1;
        return -errno;
    }
    /* A user past fs.pipe-user-pages-soft gets 2-page pipes: a splice per
     * 8 KiB would cost more than copying. */
    int size = fcntl(fds[1], F_GETPIPE_SZ);
    if (size < PT_SPLICE_PIPE_MIN) {
        close(fds[0]);
        close(fds[1]);
        p->rd = p->wr = -1;
        return -ENOBUFS;
    }
    p->rd = fds[0];
    p->wr = fds[1];
    p->cap = (size_t)size;
    return 0;
}

void pt_splice_give(struct pt_splice_pipe *p)
{
    if (p->rd < 0)
        return;
    /* A grown pipe shrinks back before it is pooled: the user's pipe quota
     * counts its size even while it is empty. */
    if (p->len == 0 && pooled < POOL_MAX &&
        (p->cap <= PT_SPLICE_PIPE_MIN ||
         fcntl(p->wr, F_SETPIPE_SZ, PT_SPLICE_PIPE_MIN) == PT_SPLICE_PIPE_MIN)) {
        pool[pooled].rd = p->rd;
        pool[pooled].wr = p->wr;
        pooled++;
    } else {
        close(p->rd);
        close(p->wr);
    }
    p->rd = p->wr = -1;
    p->len = 0;
}

/* A bulk direction: the pipe still held bytes when its side was read
 * again (the peer takes less than comes), or one read filled it. Tried once
 * per connection; without the quota (EPERM) the pipe keeps its size. */
static void grow(struct pt_splice_pipe *p)
{
    p->grow_tried = true;
    int size = fcntl(p->wr, F_SETPIPE_SZ, PT_SPLICE_PIPE_WANT);
    if (size > 0 && (size_t)size > p->cap)
        p->cap = (size_t)size;
}

ssize_t pt_splice_in(int fd, struct pt_splice_pipe *p)
{
    if (p->len > 0 && !p->grow_tried)
        grow(p);
    size_t room = p->cap - p->len;
    ssize_t n;
    do
        n = splice(fd, NULL, p->wr, NULL, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    p->len += (size_t)n;
    if (p->len >= p->cap && !p->grow_tried)
        grow(p);
    return n;
}

ssize_t pt_splice_out(struct pt_splice_pipe *p, int fd)
{
    ssize_t n;
    do
        n = splice(p->rd, NULL, fd, NULL, p->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    p->len -= (size_t)n;
    return n;
}

size_t pt_splice_pooled(void)
{
    return pooled;
}
