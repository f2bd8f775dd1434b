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
    p->rd = fds[0];
    p->wr = fds[1];
    return 0;
}

void pt_splice_give(struct pt_splice_pipe *p)
{
    if (p->rd < 0)
        return;
    if (p->len == 0 && pooled < POOL_MAX) {
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

ssize_t pt_splice_in(int fd, struct pt_splice_pipe *p)
{
    size_t room = PT_SPLICE_PIPE_CAP - p->len;
    ssize_t n;
    do
        n = splice(fd, NULL, p->wr, NULL, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    p->len += (size_t)n;
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
