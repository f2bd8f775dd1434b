/* The buffered writer; see writer.h. */
#include "worker/writer.h"

#include "common/pt.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

struct wreq {
    uv_write_t req;
    struct pt_writer *wr;
    size_t len, tag;
    uint8_t data[];
};

int pt_writer_init(struct pt_writer *wr, uv_stream_t *stream, pt_writer_cb written, void *data)
{
    uv_os_fd_t fd = -1;
    int rc = uv_fileno((uv_handle_t *)stream, &fd);
    *wr = (struct pt_writer){.stream = stream, .fd = fd, .written = written, .data = data};
    return rc;
}

static void on_written(uv_write_t *req, int status)
{
    struct wreq *q = (struct wreq *)req;
    struct pt_writer *wr = q->wr;
    size_t tag = q->tag;
    wr->queued -= q->len;
    wr->tags -= tag;
    free(q);
    wr->written(wr, status, tag);
}

void pt_writer_init_fd(struct pt_writer *wr, int fd, void *data)
{
    *wr = (struct pt_writer){.fd = fd, .data = data};
}

/* What the socket takes now: bytes sent (>= 0, 0 when it is full) or a
 * negative libuv error. */
static ssize_t send_now(int fd, const void *p, size_t n)
{
    ssize_t done;
    do
        done = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (done < 0 && errno == EINTR);
    if (done < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return uv_translate_sys_error(errno);
    return done < 0 ? 0 : done;
}

ssize_t pt_writer_flush(struct pt_writer *wr)
{
    if (wr->queued == 0)
        return 0;
    ssize_t done = send_now(wr->fd, wr->pend, wr->queued);
    if (done < 0)
        return done;
    wr->queued -= (size_t)done;
    if (wr->queued == 0)
        PT_FREE(wr->pend);
    else if (done > 0)
        memmove(wr->pend, wr->pend + done, wr->queued);
    return (ssize_t)wr->queued;
}

void pt_writer_drop(struct pt_writer *wr)
{
    PT_FREE(wr->pend);
    wr->queued = 0;
}

int pt_writer_send(struct pt_writer *wr, const void *p, size_t n, size_t tag)
{
    ssize_t done = 0;
    if (n == 0)
        return 0;
    if (wr->queued == 0) {
        /* Nothing of ours is queued: writing the socket directly keeps the
         * order. */
        done = send_now(wr->fd, p, n);
        if (done < 0)
            return (int)done;
        if ((size_t)done == n)
            return 0;
    }
    size_t rest = n - (size_t)done;
    if (!wr->stream) {
        wr->pend = pt_xrealloc(wr->pend, wr->queued + rest);
        memcpy(wr->pend + wr->queued, (const uint8_t *)p + done, rest);
        wr->queued += rest;
        return 1;
    }
    struct wreq *q = pt_xmalloc(sizeof(*q) + rest);
    q->wr = wr;
    q->len = rest;
    q->tag = tag;
    memcpy(q->data, (const uint8_t *)p + done, rest);
    uv_buf_t b = uv_buf_init((char *)q->data, (unsigned)rest);
    int rc = uv_write(&q->req, wr->stream, &b, 1, on_written);
    if (rc != 0) {
        free(q);
        return rc;
    }
    wr->queued += rest;
    wr->tags += tag;
    return 1;
}

int pt_writer_shutdown(struct pt_writer *wr)
{
    if (wr->queued > 0)
        return UV_EBUSY;
    return shutdown(wr->fd, SHUT_WR) == 0 ? 0 : uv_translate_sys_error(errno);
}
