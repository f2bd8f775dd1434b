/* The backend connection pool of worker/upconn.c: keys, and what a parked
 * connection must still be to be taken again. Real sockets (socketpairs),
 * the pool's own peek. */
#include "worker/upconn.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct pt_hostport hp(const char *s)
{
    struct pt_hostport h;
    cr_assert_eq(pt_hostport_parse(s, strlen(s), &h, NULL), 0);
    return h;
}

Test(upconn, key_names_server_tls_verification_and_name)
{
    char k[PT_UPCONN_KEY_MAX];
    struct pt_hostport ip = hp("127.0.0.1:8443"), dns = hp("Back.Example:443");
    pt_upconn_key(&ip, false, false, "ignored.example", k);
    cr_assert_str_eq(k, "127.0.0.1:8443");
    pt_upconn_key(&ip, true, true, "app.example", k);
    cr_assert_str_eq(k, "127.0.0.1:8443 tls+verify app.example");
    pt_upconn_key(&ip, true, false, "app.example", k);
    cr_assert_str_eq(k, "127.0.0.1:8443 tls app.example");
    pt_upconn_key(&dns, true, true, "back.example", k);
    cr_assert_str_eq(k, "back.example:443 tls+verify back.example");
}

/* A parked connection: our end in the pool, the backend's end returned. */
static int park(const char *key, uint64_t now)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert(pt_upconn_pool_park(sv[0], NULL, key, now));
    close(sv[0]); /* the pool keeps its own duplicate */
    return sv[1];
}

Test(upconn, pool_gives_back_an_open_idle_connection_by_key_only)
{
    int peer = park("a:80", 1000);
    SSL *ssl = (SSL *)1;
    cr_assert_eq(pt_upconn_pool_take("b:80", 1000, &ssl), -1);
    int fd = pt_upconn_pool_take("a:80", 1001, &ssl);
    cr_assert_geq(fd, 0);
    cr_assert_null(ssl);
    /* It is the same connection: what we write, the backend reads. */
    cr_assert_eq(write(fd, "x", 1), 1);
    char c;
    cr_assert_eq(read(peer, &c, 1), 1);
    cr_assert_eq(c, 'x');
    cr_assert_eq(pt_upconn_pool_take("a:80", 1001, &ssl), -1, "taken once");
    close(fd);
    close(peer);
}

Test(upconn, pool_drops_closed_talkative_and_old_connections)
{
    SSL *ssl;
    int peer = park("closed:80", 0);
    close(peer); /* the backend closed it while parked */
    cr_assert_eq(pt_upconn_pool_take("closed:80", 10, &ssl), -1);

    peer = park("talk:80", 0);
    cr_assert_eq(write(peer, "HTTP/1.1 408\r\n", 14), 14); /* bytes nobody asked for */
    cr_assert_eq(pt_upconn_pool_take("talk:80", 10, &ssl), -1);
    close(peer);

    peer = park("old:80", 0);
    cr_assert_eq(pt_upconn_pool_take("old:80", 30001, &ssl), -1, "idle longer than 30 s");
    close(peer);
}

Test(upconn, pool_prefers_the_most_recently_parked)
{
    SSL *ssl;
    int p1 = park("s:80", 0), p2 = park("s:80", 5);
    int fd = pt_upconn_pool_take("s:80", 10, &ssl);
    cr_assert_eq(write(fd, "y", 1), 1);
    char c;
    cr_assert_eq(recv(p2, &c, 1, MSG_DONTWAIT), 1, "the last one parked");
    cr_assert_eq(recv(p1, &c, 1, MSG_DONTWAIT), -1);
    close(fd);
    fd = pt_upconn_pool_take("s:80", 10, &ssl);
    cr_assert_geq(fd, 0);
    close(fd);
    close(p1);
    close(p2);
}

/* ---- a dial outlives the worker's TLS contexts ----------------------------- */

static void no_connected(void *ctx) { (void)ctx; }
static void no_data(void *ctx, const uint8_t *p, size_t n) { (void)ctx; (void)p; (void)n; }
static void no_written(void *ctx, size_t tag) { (void)ctx; (void)tag; }
static void no_ended(void *ctx, enum pt_upconn_end why) { (void)ctx; (void)why; }

/* A certificate change rebuilds the worker's contexts (and frees the old
 * ones) while a backend's DNS name is being looked up: the TLS client made
 * once the lookup ends must come from the current contexts (under ASan, the
 * freed ones are a use-after-free). */
Test(upconn, a_dial_takes_the_tls_contexts_current_when_it_connects)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    cr_assert_eq(bind(ls, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(listen(ls, 4), 0);
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&sin, &sl), 0);
    char name[32];
    snprintf(name, sizeof(name), "localhost:%u", ntohs(sin.sin_port));
    struct pt_hostport server = hp(name);
    cr_assert_eq(server.kind, PT_HOST_DNS);
    struct pt_backend be = {.name = "b", .servers = &server, .n_servers = 1, .tls = true};

    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    struct pt_snapshot snap = {0};
    struct pt_tls *tls = pt_tls_build(&snap, NULL);
    struct pt_upconn_target t = {.loop = &loop, .tls = &tls, .be = &be, .servers = &server,
                                 .n_servers = 1, .host = "app.example", .fresh = true};
    static const struct pt_upconn_ops ops = {no_connected, no_data, no_written, no_ended};
    struct pt_upconn *u = pt_upconn_open(&t, &ops, NULL);
    cr_assert_not_null(u);
    /* The lookup is on libuv's thread pool: the contexts change meanwhile. */
    struct pt_tls *next = pt_tls_build(&snap, tls);
    pt_tls_free(tls);
    tls = next;

    /* The backend gets a ClientHello (a TLS handshake record). */
    int fd = -1;
    unsigned char rec[5];
    for (int i = 0; i < 500 && fd < 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0)
            usleep(2000);
    }
    cr_assert_geq(fd, 0, "the backend was never connected to");
    ssize_t got = -1;
    for (int i = 0; i < 500 && got <= 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        got = recv(fd, rec, sizeof(rec), 0);
        if (got <= 0)
            usleep(2000);
    }
    cr_assert_eq(got, (ssize_t)sizeof(rec));
    cr_assert_eq(rec[0], 0x16, "a TLS handshake record");

    pt_upconn_close(u);
    while (uv_run(&loop, UV_RUN_NOWAIT) != 0)
        ;
    cr_assert_eq(uv_loop_close(&loop), 0);
    pt_tls_free(tls);
    close(fd);
    close(ls);
}
