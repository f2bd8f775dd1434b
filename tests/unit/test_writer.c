/* The buffered writer of worker/writer.c over a real socketpair and a real
 * libuv loop: what the socket takes at once, what is queued and reported,
 * the order of the bytes, the tags, and a broken socket. */
#include "worker/writer.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct rig {
    uv_loop_t loop;
    uv_pipe_t pipe;
    struct pt_writer wr;
    int peer;
    size_t calls, tags;
    int last_status;
};

static void written(struct pt_writer *wr, int status, size_t tag)
{
    struct rig *r = wr->data;
    r->calls++;
    r->tags += tag;
    r->last_status = status;
}

static void rig_open(struct rig *r)
{
    int sv[2];
    memset(r, 0, sizeof(*r));
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 4096; /* a send buffer that fills fast */
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    cr_assert_eq(uv_loop_init(&r->loop), 0);
    cr_assert_eq(uv_pipe_init(&r->loop, &r->pipe, 0), 0);
    cr_assert_eq(uv_pipe_open(&r->pipe, sv[0]), 0);
    cr_assert_eq(pt_writer_init(&r->wr, (uv_stream_t *)&r->pipe, written, r), 0);
    r->peer = sv[1];
}

static void rig_close(struct rig *r)
{
    uv_close((uv_handle_t *)&r->pipe, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&r->loop), 0);
    if (r->peer >= 0)
        close(r->peer);
}

Test(writer, small_write_goes_at_once_with_nothing_queued)
{
    struct rig r;
    rig_open(&r);
    cr_assert_eq(pt_writer_send(&r.wr, "hello", 5, 7), 0);
    cr_assert_eq(pt_writer_queued(&r.wr), 0);
    char b[8];
    cr_assert_eq(read(r.peer, b, sizeof(b)), 5);
    cr_assert_eq(memcmp(b, "hello", 5), 0);
    cr_assert_eq(pt_writer_send(&r.wr, "", 0, 3), 0, "nothing to write is done at once");
    uv_run(&r.loop, UV_RUN_NOWAIT);
    cr_assert_eq(r.calls, 0, "no callback for bytes the socket took at once");
    rig_close(&r);
}

struct drain {
    int fd;
    size_t want, got;
    bool in_order;
};

/* Reads <want> bytes and checks they are the sequence i % 251. */
static void *drain_peer(void *arg)
{
    struct drain *d = arg;
    uint8_t b[65536];
    d->in_order = true;
    while (d->got < d->want) {
        ssize_t n = read(d->fd, b, sizeof(b));
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (b[i] != (uint8_t)((d->got + (size_t)i) % 251))
                d->in_order = false;
        d->got += (size_t)n;
    }
    return NULL;
}

Test(writer, the_rest_is_queued_in_order_and_reported_with_its_tag)
{
    struct rig r;
    rig_open(&r);
    size_t total = 3u << 20;
    uint8_t *data = malloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = (uint8_t)(i % 251);
    /* Three writes: the first fills the socket, the others queue behind it
     * (never written straight to the socket while something waits). */
    size_t part = total / 3;
    cr_assert_eq(pt_writer_send(&r.wr, data, part, 10), 1);
    size_t q1 = pt_writer_queued(&r.wr);
    cr_assert_gt(q1, 0);
    cr_assert_eq(pt_writer_send(&r.wr, data + part, part, 20), 1);
    cr_assert_eq(pt_writer_queued(&r.wr), q1 + part, "queued whole behind the first");
    cr_assert_eq(pt_writer_send(&r.wr, data + 2 * part, total - 2 * part, 0), 1);
    cr_assert_eq(r.wr.tags, 30);
    free(data); /* the writer copied what it queued */
    struct drain d = {.fd = r.peer, .want = total};
    pthread_t t;
    pthread_create(&t, NULL, drain_peer, &d);
    while (r.calls < 3)
        uv_run(&r.loop, UV_RUN_ONCE);
    pthread_join(t, NULL);
    cr_assert_eq(d.got, total);
    cr_assert(d.in_order, "bytes arrive in the order they were sent");
    cr_assert_eq(r.calls, 3);
    cr_assert_eq(r.tags, 30);
    cr_assert_eq(r.last_status, 0);
    cr_assert_eq(pt_writer_queued(&r.wr), 0);
    cr_assert_eq(r.wr.tags, 0);
    /* Drained: the next write goes straight to the socket again. */
    cr_assert_eq(pt_writer_send(&r.wr, "x", 1, 0), 0);
    rig_close(&r);
}

Test(writer, a_closed_peer_is_an_error_not_a_signal)
{
    struct rig r;
    rig_open(&r);
    close(r.peer);
    r.peer = -1;
    int rc = pt_writer_send(&r.wr, "x", 1, 0);
    cr_assert_eq(rc, UV_EPIPE, "got %d", rc);
    cr_assert_eq(pt_writer_queued(&r.wr), 0);
    rig_close(&r);
}

Test(writer, shutdown_half_closes_at_once_only_when_nothing_is_queued)
{
    struct rig r;
    rig_open(&r);
    uint8_t big[64 * 1024];
    memset(big, 'x', sizeof(big));
    cr_assert_eq(pt_writer_send(&r.wr, big, sizeof(big), 0), 1, "the socket is full");
    cr_assert_eq(pt_writer_shutdown(&r.wr), UV_EBUSY, "bytes still queued: no half-close");
    uint8_t b[65536];
    size_t got = 0;
    int fl = fcntl(r.peer, F_GETFL);
    fcntl(r.peer, F_SETFL, fl | O_NONBLOCK); /* the rest is still on libuv's queue */
    while (r.calls < 1) {
        ssize_t n = read(r.peer, b, sizeof(b));
        if (n > 0)
            got += (size_t)n;
        uv_run(&r.loop, UV_RUN_NOWAIT);
    }
    cr_assert_eq(pt_writer_shutdown(&r.wr), 0);
    fcntl(r.peer, F_SETFL, fl);
    for (ssize_t n; (n = read(r.peer, b, sizeof(b))) > 0;)
        got += (size_t)n;
    cr_assert_eq(got, sizeof(big), "every byte before the FIN, then EOF");
    /* Half-closed only: the other direction still works. */
    cr_assert_eq(write(r.peer, "back", 4), 4);
    char in[8];
    int fd = r.wr.fd;
    cr_assert_eq(read(fd, in, sizeof(in)), 4);
    rig_close(&r);
}

Test(writer, raw_mode_holds_what_the_socket_refuses_until_flushed)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    struct pt_writer wr;
    pt_writer_init_fd(&wr, sv[0], NULL);
    static uint8_t big[256 * 1024], got[256 * 1024];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i % 251);
    cr_assert_eq(pt_writer_send(&wr, big, sizeof(big), 0), 1, "the rest is held");
    size_t held = pt_writer_queued(&wr);
    cr_assert(held > 0 && held < sizeof(big));
    cr_assert_eq(pt_writer_send(&wr, "", 0, 0), 0);
    size_t n = 0;
    while (n < sizeof(big)) {
        ssize_t r = read(sv[1], got + n, sizeof(got) - n);
        if (r > 0)
            n += (size_t)r;
        ssize_t left = pt_writer_flush(&wr);
        cr_assert_geq(left, 0);
        cr_assert_eq((size_t)left, pt_writer_queued(&wr));
    }
    cr_assert_eq(pt_writer_queued(&wr), 0);
    cr_assert_null(wr.pend, "freed once out");
    cr_assert_eq(memcmp(big, got, sizeof(big)), 0, "in order");
    cr_assert_eq(pt_writer_send(&wr, big, sizeof(big), 0), 1);
    pt_writer_drop(&wr);
    cr_assert_eq(pt_writer_queued(&wr), 0);
    close(sv[1]);
    cr_assert_lt(pt_writer_flush(&wr), 1, "nothing left to flush after drop");
    cr_assert_lt(pt_writer_send(&wr, "x", 1, 0), 0, "a broken socket is an error");
    close(sv[0]);
}
