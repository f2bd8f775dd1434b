/* The backend connection pool of worker/upconn.c: keys, and what a parked
 * connection must still be to be taken again. Real sockets (socketpairs),
 * the pool's own peek. */
#include "worker/upconn.h"

#include <criterion/criterion.h>
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
