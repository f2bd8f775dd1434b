/* Full-handshake load generator for the offload benchmark (bench/bench.py).
 *
 *   hs_client HOST PORT SNI CONNS SECONDS PATH
 *
 * Keeps CONNS TLS connections in flight for SECONDS: each one connects, does
 * a full handshake (no session is ever offered: no resumption, unlike wrk),
 * sends "GET PATH HTTP/1.1" with Connection: close, reads the response to
 * the server's close and starts over. Prints one line:
 *
 *   done=N errors=N resumed=N not200=N seconds=S proto=TLSv1.3 cipher=... group=...
 *
 * Certificates are not verified (the server's CertificateVerify signature is
 * still checked by OpenSSL, as in any TLS 1.3 handshake). Non-blocking, one
 * thread, epoll; build: gcc -O2 hs_client.c -lssl -lcrypto. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_CONNECT, ST_HANDSHAKE, ST_WRITE, ST_READ };

struct conn {
    int fd;
    int st;
    SSL *ssl;
    size_t woff, got;
    char head[16];
};

static SSL_CTX *ctx;
static struct sockaddr_in addr;
static const char *sni;
static char req[512];
static size_t req_len;
static int ep;
static long done, errors, resumed, not200;
static char proto[32] = "?", cipher[64] = "?", group[32] = "?";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void finish(struct conn *c, int ok)
{
    if (c->ssl) {
        if (ok && c->st == ST_READ && SSL_session_reused(c->ssl))
            resumed++;
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd); /* drops it from the epoll set too */
    c->fd = -1;
    if (ok) {
        done++;
        if (c->got < 12 || memcmp(c->head, "HTTP/1.1 200", 12) != 0)
            not200++;
    } else {
        errors++;
    }
}

static int start(struct conn *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->st = ST_CONNECT;
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        errors++;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void want(struct conn *c, int err)
{
    struct epoll_event ev = {.events = err == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN,
                             .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Advances <c> as far as it goes; 1 when it is finished (done or failed). */
static int step(struct conn *c)
{
    int r, e;
    switch (c->st) {
    case ST_CONNECT: {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            finish(c, 0);
            return 1;
        }
        c->ssl = SSL_new(ctx);
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_tlsext_host_name(c->ssl, sni);
        SSL_set_connect_state(c->ssl);
        c->st = ST_HANDSHAKE;
    }
    /* fall through */
    case ST_HANDSHAKE:
        r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                want(c, e);
                return 0;
            }
            finish(c, 0);
            return 1;
        }
        if (proto[0] == '?') {
            int nid = SSL_get_negotiated_group(c->ssl);
            snprintf(proto, sizeof(proto), "%s", SSL_get_version(c->ssl));
            snprintf(cipher, sizeof(cipher), "%s", SSL_get_cipher_name(c->ssl));
            snprintf(group, sizeof(group), "%s", nid ? OBJ_nid2sn(nid & 0xffff) : "?");
        }
        c->st = ST_WRITE;
    /* fall through */
    case ST_WRITE:
        while (c->woff < req_len) {
            r = SSL_write(c->ssl, req + c->woff, (int)(req_len - c->woff));
            if (r <= 0) {
                e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    want(c, e);
                    return 0;
                }
                finish(c, 0);
                return 1;
            }
            c->woff += (size_t)r;
        }
        c->st = ST_READ;
        want(c, SSL_ERROR_WANT_READ);
    /* fall through */
    case ST_READ:
        for (;;) {
            char buf[16384];
            r = SSL_read(c->ssl, buf, sizeof(buf));
            if (r > 0) {
                if (c->got < sizeof(c->head)) {
                    size_t k = sizeof(c->head) - c->got;
                    memcpy(c->head + c->got, buf, (size_t)r < k ? (size_t)r : k);
                }
                c->got += (size_t)r;
                continue;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                want(c, e);
                return 0;
            }
            /* close_notify or a plain FIN after a response: a finished request. */
            finish(c, c->got > 0);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: hs_client HOST PORT SNI CONNS SECONDS PATH\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        fprintf(stderr, "hs_client: HOST must be an IPv4 address\n");
        return 2;
    }
    sni = argv[3];
    int n = atoi(argv[4]);
    double secs = atof(argv[5]);
    req_len = (size_t)snprintf(req, sizeof(req),
                               "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hs_client\r\n"
                               "Connection: close\r\n\r\n",
                               argv[6], sni);
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* No client-side session cache and no session is ever set on a new SSL:
     * every handshake is a full one. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *cs = calloc((size_t)n, sizeof(*cs));
    double t0 = now(), end = t0 + secs;
    for (int i = 0; i < n; i++)
        if (start(&cs[i]) != 0)
            cs[i].fd = -1;
    struct epoll_event evs[256];
    while (now() < end) {
        int k = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd >= 0 && step(c) && now() < end)
                start(c);
        }
        for (int i = 0; i < n; i++) /* a failed start is retried */
            if (cs[i].fd < 0 && now() < end)
                start(&cs[i]);
    }
    double el = now() - t0;
    for (int i = 0; i < n; i++) /* unfinished at the end: not counted */
        if (cs[i].fd >= 0) {
            SSL_free(cs[i].ssl);
            close(cs[i].fd);
        }
    printf("done=%ld errors=%ld resumed=%ld not200=%ld seconds=%.3f proto=%s cipher=%s "
           "group=%s\n",
           done, errors, resumed, not200, el, proto, cipher, group);
    return 0;
}
