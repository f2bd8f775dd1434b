#include "worker/splice.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connected loopback TCP pair: splice(2) reads from a real TCP socket. */
static void tcp_pair(int *writer, int *reader)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    *writer = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(*writer, (struct sockaddr *)&a, sizeof(a)), 0);
    *reader = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    cr_assert_geq(*reader, 0);
    close(l);
}

static void send_n(int fd, size_t n)
{
    static char chunk[16384];
    while (n > 0) {
        size_t k = n < sizeof(chunk) ? n : sizeof(chunk);
        ssize_t w = send(fd, chunk, k, 0);
        cr_assert_gt(w, 0);
        n -= (size_t)w;
    }
}

/* Empties the pipe by reading its end (what a splice out would do). */
static void drain(struct pt_splice_pipe *p)
{
    static char buf[65536];
    while (p->len > 0) {
        ssize_t r = read(p->rd, buf, sizeof(buf));
        cr_assert_gt(r, 0);
        p->len -= (size_t)r;
    }
}

/* Reads from <fd> into the pipe until <want> bytes went in. */
static void splice_all(int fd, struct pt_splice_pipe *p, size_t want)
{
    size_t got = 0;
    while (got < want) {
        ssize_t n = pt_splice_in(fd, p);
        if (n == -EAGAIN) {
            usleep(1000);
            continue;
        }
        cr_assert_gt(n, 0, "splice in: %zd", n);
        got += (size_t)n;
        if (p->len == p->cap)
            drain(p);
    }
}

Test(splice, a_new_pipe_has_the_default_size)
{
    struct pt_splice_pipe p;
    cr_assert_eq(pt_splice_take(&p), 0);
    cr_assert_eq(p.cap, PT_SPLICE_PIPE_MIN);
    cr_assert_eq(fcntl(p.wr, F_GETPIPE_SZ), PT_SPLICE_PIPE_MIN);
    cr_assert_eq(p.len, 0);
    pt_splice_give(&p);
    cr_assert_eq(p.rd, -1);
    cr_assert_eq(pt_splice_pooled(), 1);
}

/* Each test: a socket pair whose reader feeds one pipe taken from the pool. */
static int w = -1, r = -1;
static struct pt_splice_pipe p;

static void setup(void)
{
    tcp_pair(&w, &r);
    cr_assert_eq(pt_splice_take(&p), 0);
}

static void teardown(void)
{
    close(w);
    close(r);
}

TestSuite(pipe, .init = setup, .fini = teardown);

Test(pipe, a_bulk_direction_grows_its_pipe_and_shrinks_it_for_the_pool)
{
    send_n(w, 3 * PT_SPLICE_PIPE_MIN);
    /* The first read fills the 64 KiB pipe: the pipe grows. */
    size_t got = 0;
    while (got < PT_SPLICE_PIPE_MIN) {
        ssize_t n = pt_splice_in(r, &p);
        if (n == -EAGAIN) {
            usleep(1000);
            continue;
        }
        cr_assert_gt(n, 0);
        got += (size_t)n;
    }
    cr_assert(p.grow_tried);
    cr_assert_eq(p.cap, PT_SPLICE_PIPE_WANT);
    cr_assert_eq(fcntl(p.wr, F_GETPIPE_SZ), PT_SPLICE_PIPE_WANT);
    /* It now holds more than the default size at once. */
    splice_all(r, &p, 3 * PT_SPLICE_PIPE_MIN - got);
    cr_assert_eq(p.len, 3 * PT_SPLICE_PIPE_MIN);
    drain(&p);
    int rd = p.rd, wr = p.wr;
    pt_splice_give(&p);
    cr_assert_eq(pt_splice_pooled(), 1);
    cr_assert_eq(fcntl(wr, F_GETPIPE_SZ), PT_SPLICE_PIPE_MIN, "shrunk before pooling");
    /* The pooled pipe comes back small, and may grow again. */
    cr_assert_eq(pt_splice_take(&p), 0);
    cr_assert_eq(p.rd, rd);
    cr_assert_eq(p.cap, PT_SPLICE_PIPE_MIN);
    cr_assert_not(p.grow_tried);
    pt_splice_give(&p);
}

Test(pipe, small_exchanges_keep_the_default_size)
{
    for (int i = 0; i < 20; i++) {
        send_n(w, 1000);
        splice_all(r, &p, 1000);
        drain(&p); /* the peer took it before the next read */
    }
    cr_assert_not(p.grow_tried);
    cr_assert_eq(fcntl(p.wr, F_GETPIPE_SZ), PT_SPLICE_PIPE_MIN);
    pt_splice_give(&p);
    cr_assert_eq(pt_splice_pooled(), 1);
}

Test(pipe, bytes_left_in_the_pipe_are_dropped_with_it)
{
    send_n(w, 100);
    splice_all(r, &p, 100);
    pt_splice_give(&p);
    cr_assert_eq(pt_splice_pooled(), 0);
    cr_assert_eq(p.rd, -1);
}
