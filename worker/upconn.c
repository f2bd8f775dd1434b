/* A backend connection and the worker's pool of idle ones; see upconn.h. */
#include "worker/upconn.h"

#include "common/dname.h"
#include "common/wbuf.h"
#include "worker/conn.h"
#include "worker/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* ---- the pool --------------------------------------------------------------- */

#define POOL_MAX 64
#define POOL_IDLE_MS 30000 /* below common backend keep-alive timeouts (75 s) */

struct pooled {
    int fd;
    SSL *ssl; /* owned; NULL for plain HTTP */
    char key[PT_UPCONN_KEY_MAX];
    uint64_t since_ms;
};
static struct pooled pool[POOL_MAX];
static size_t pool_n;

void pt_upconn_key(const struct pt_hostport *hp, bool tls, bool verify, const char *name,
                   char key[PT_UPCONN_KEY_MAX])
{
    size_t n = pt_hostport_format(hp, key, PT_UPCONN_KEY_MAX);
    if (tls)
        snprintf(key + n, PT_UPCONN_KEY_MAX - n, " tls%s %s", verify ? "+verify" : "", name);
}

static void pool_drop(size_t i)
{
    close(pool[i].fd);
    SSL_free(pool[i].ssl);
    memmove(&pool[i], &pool[i + 1], (pool_n - i - 1) * sizeof(pool[0]));
    pool_n--;
}

bool pt_upconn_pool_park(int fd, SSL *ssl, const char *key, uint64_t now)
{
    while (pool_n && now - pool[0].since_ms > POOL_IDLE_MS)
        pool_drop(0);
    if (pool_n == POOL_MAX)
        pool_drop(0);
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        return false;
    pool[pool_n].fd = d;
    pool[pool_n].ssl = ssl;
    snprintf(pool[pool_n].key, PT_UPCONN_KEY_MAX, "%s", key);
    pool[pool_n].since_ms = now;
    pool_n++;
    return true;
}

int pt_upconn_pool_take(const char *key, uint64_t now, SSL **ssl)
{
    for (size_t i = pool_n; i-- > 0;) {
        if (strcmp(pool[i].key, key) != 0)
            continue;
        int fd = pool[i].fd;
        *ssl = pool[i].ssl;
        bool fresh = now - pool[i].since_ms <= POOL_IDLE_MS;
        memmove(&pool[i], &pool[i + 1], (pool_n - i - 1) * sizeof(pool[0]));
        pool_n--;
        char b;
        if (fresh && recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK))
            return fd;
        close(fd); /* closed by the backend, unexpected bytes, or too old */
        SSL_free(*ssl);
        *ssl = NULL;
    }
    return -1;
}

/* ---- one connection ------------------------------------------------------------ */

enum up_state {
    UP_DIALING = 0, /* u->dial is trying the servers */
    UP_HANDSHAKE,   /* connected, TLS handshake under way */
    UP_OPEN,        /* bytes flow both ways */
    UP_ENDED,       /* ops->ended was called: nothing more happens */
    UP_CLOSED,      /* the owner let go: freed with the last reference */
};

struct pt_upconn {
    enum up_state state;
    const struct pt_upconn_ops *ops;
    void *ctx;
    struct pt_tls *const *tls; /* the worker's current contexts, read at each dial */
    bool use_tls, verify;
    char host[PT_DNAME_MAX + 1];
    uv_tcp_t tcp;
    bool tcp_init, reading, reused, read_on;
    struct pt_dial dial;
    uint64_t attempt_ms;  /* when the current connect attempt started */
    SSL *ssl;             /* NULL for plain */
    bool hs_done;
    struct pt_wbuf pend;  /* bytes sent before the connection was open */
    size_t pend_tag;
    struct pt_writer out; /* bound once the TCP connection is up */
    unsigned refs;        /* the owner, the handle, queued writes, a name lookup */
    struct sockaddr_storage peer;
};

/* One read per callback, as large as the HTTP engine's client reads (a 64 KiB
 * response body moves in one read). */
static uint8_t read_buf[64 * 1024];

static void unref(struct pt_upconn *u)
{
    if (--u->refs > 0)
        return;
    SSL_free(u->ssl);
    pt_wbuf_free(&u->pend);
    free(u);
}

static bool live(const struct pt_upconn *u)
{
    return u->state != UP_ENDED && u->state != UP_CLOSED;
}

static void end(struct pt_upconn *u, enum pt_upconn_end why)
{
    if (!live(u))
        return;
    u->state = UP_ENDED;
    if (u->reading) {
        uv_read_stop((uv_stream_t *)&u->tcp);
        u->reading = false;
    }
    u->ops->ended(u->ctx, why);
}

static void on_closed(uv_handle_t *h)
{
    unref(h->data);
}

static void on_written(struct pt_writer *wr, int status, size_t tag)
{
    struct pt_upconn *u = wr->data;
    if (status != 0)
        end(u, PT_UPCONN_BROKEN);
    else if (live(u))
        u->ops->written(u->ctx, tag);
    unref(u);
}

/* Writes raw bytes to the socket (worker/writer.h). Returns the part of
 * <tag> the socket took at once, or -1. */
static ssize_t raw_write(struct pt_upconn *u, const uint8_t *p, size_t n, size_t tag)
{
    int rc = pt_writer_send(&u->out, p, n, tag);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return (ssize_t)tag;
    u->refs++;
    return 0;
}

/* Moves whatever OpenSSL produced to the socket, carrying <tag>. */
static ssize_t flush_tls(struct pt_upconn *u, size_t tag)
{
    char *p = NULL;
    BIO *wbio = SSL_get_wbio(u->ssl);
    long n = BIO_get_mem_data(wbio, &p);
    if (n <= 0)
        return (ssize_t)tag;
    ssize_t rc = raw_write(u, (const uint8_t *)p, (size_t)n, tag);
    BIO_reset(wbio);
    return rc;
}

/* Returns the part of <tag> taken at once, or -1. */
static ssize_t write_now(struct pt_upconn *u, const uint8_t *p, size_t n, size_t tag)
{
    if (u->ssl == NULL)
        return raw_write(u, p, n, tag);
    for (size_t off = 0; off < n;) {
        int w = SSL_write(u->ssl, p + off, (int)(n - off));
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return flush_tls(u, tag);
}

static void set_reading(struct pt_upconn *u);

/* The connection is usable: what waited goes. */
static void opened(struct pt_upconn *u)
{
    u->state = UP_OPEN;
    struct pt_wbuf q = u->pend;
    size_t tag = u->pend_tag;
    memset(&u->pend, 0, sizeof(u->pend));
    u->pend_tag = 0;
    ssize_t took = write_now(u, q.data, q.len, tag);
    pt_wbuf_free(&q);
    if (took < 0)
        end(u, PT_UPCONN_BROKEN);
    else if (took > 0)
        u->ops->written(u->ctx, (size_t)took); /* (never within an upconn call:
                                                   pend is empty when open
                                                   returns) */
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

/* Network bytes through TLS: the handshake, then plaintext to the owner. */
static void tls_in(struct pt_upconn *u, const uint8_t *p, size_t n)
{
    static uint8_t plain[16384];
    if (BIO_write(SSL_get_rbio(u->ssl), p, (int)n) != (int)n) {
        end(u, PT_UPCONN_BROKEN);
        return;
    }
    while (live(u)) {
        size_t got;
        switch (pt_tls_step(u->ssl, &u->hs_done, plain, sizeof(plain), &got)) {
        case PT_TLS_HANDSHAKEN:
            if (flush_tls(u, 0) < 0) {
                end(u, PT_UPCONN_BROKEN);
                return;
            }
            opened(u);
            set_reading(u); /* from here on, only while the owner wants */
            if (live(u))
                u->ops->connected(u->ctx);
            continue;
        case PT_TLS_DATA:
            u->ops->data(u->ctx, plain, got);
            continue;
        case PT_TLS_WANT:
            if (flush_tls(u, 0) < 0)
                end(u, PT_UPCONN_BROKEN);
            return;
        case PT_TLS_EOF:
            end(u, PT_UPCONN_EOF);
            return;
        case PT_TLS_ERROR:
            flush_tls(u, 0); /* the alert, if any */
            end(u, u->hs_done ? PT_UPCONN_BROKEN : PT_UPCONN_TLS_FAILED);
            return;
        }
    }
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct pt_upconn *u = st->data;
    if (n == 0 || !live(u))
        return;
    if (n < 0) {
        end(u, u->state == UP_HANDSHAKE ? PT_UPCONN_TLS_FAILED : PT_UPCONN_EOF);
        return;
    }
    u->refs++; /* the owner may close it from a callback */
    if (u->ssl)
        tls_in(u, (const uint8_t *)buf->base, (size_t)n);
    else
        u->ops->data(u->ctx, (const uint8_t *)buf->base, (size_t)n);
    unref(u);
}

/* Reads while the owner wants them; always during the handshake. */
static void set_reading(struct pt_upconn *u)
{
    bool want = live(u) && u->state != UP_DIALING && (u->read_on || u->state == UP_HANDSHAKE);
    if (want && !u->reading) {
        if (uv_read_start((uv_stream_t *)&u->tcp, alloc_cb, on_read) == 0)
            u->reading = true;
    } else if (!want && u->reading) {
        uv_read_stop((uv_stream_t *)&u->tcp);
        u->reading = false;
    }
}

/* The TCP connection is up (dialed, or from the pool with <ssl>). */
static void tcp_up(struct pt_upconn *u, SSL *ssl)
{
    uv_tcp_nodelay(&u->tcp, 1);
    int len = sizeof(u->peer);
    uv_tcp_getpeername(&u->tcp, (struct sockaddr *)&u->peer, &len);
    pt_writer_init(&u->out, (uv_stream_t *)&u->tcp, on_written, u);
    if (ssl) {
        u->ssl = ssl;
        u->hs_done = true;
    } else if (u->use_tls) {
        const struct pt_hostport *hp = &u->dial.servers[u->dial.ix];
        u->ssl = pt_tls_client_new(*u->tls, u->verify, hp->kind == PT_HOST_DNS ? hp->host : u->host);
        if (u->ssl == NULL || flush_tls(u, 0) < 0) {
            end(u, PT_UPCONN_TLS_FAILED);
            return;
        }
        u->state = UP_HANDSHAKE;
        set_reading(u);
        return;
    }
    opened(u);
    set_reading(u);
}

static struct pt_upconn *dial_up(struct pt_dial *d)
{
    return PT_CONTAINER_OF(d, struct pt_upconn, dial);
}

static uv_tcp_t *dial_attempt(struct pt_dial *d)
{
    struct pt_upconn *u = dial_up(d);
    uv_tcp_init(d->loop, &u->tcp);
    u->tcp.data = u;
    u->tcp_init = true;
    u->refs++;
    u->attempt_ms = uv_now(d->loop);
    return &u->tcp;
}

static void dial_connected(struct pt_dial *d)
{
    struct pt_upconn *u = dial_up(d);
    u->refs++;
    tcp_up(u, NULL);
    if (u->state == UP_OPEN)
        u->ops->connected(u->ctx);
    unref(u);
}

static void on_attempt_closed(uv_handle_t *h)
{
    struct pt_upconn *u = h->data;
    u->tcp_init = false;
    if (live(u))
        pt_dial_next(&u->dial);
    unref(u);
}

static void dial_exhausted(struct pt_dial *d)
{
    end(dial_up(d), PT_UPCONN_UNREACHABLE);
}

static void dial_hold(struct pt_dial *d, bool take)
{
    struct pt_upconn *u = dial_up(d);
    if (take) {
        u->refs++;
        u->attempt_ms = uv_now(d->loop);
    } else {
        unref(u);
    }
}

static const struct pt_dial_ops dial_ops = {dial_attempt, dial_connected, on_attempt_closed,
                                            dial_exhausted, dial_hold, NULL};

static void nop_ended(void *ctx, enum pt_upconn_end why)
{
    (void)ctx;
    (void)why;
}

static const struct pt_upconn_ops opening_ops = {NULL, NULL, NULL, nop_ended};

/* A parked connection to one of the servers, in their order. */
static bool take_pooled(struct pt_upconn *u, const struct pt_upconn_target *t)
{
    uint64_t now = uv_now(t->loop);
    for (size_t i = 0; i < t->n_servers; i++) {
        const struct pt_hostport *hp = &t->servers[i];
        char key[PT_UPCONN_KEY_MAX];
        SSL *ssl = NULL;
        pt_upconn_key(hp, u->use_tls, u->verify, hp->kind == PT_HOST_DNS ? hp->host : u->host,
                      key);
        int fd = pt_upconn_pool_take(key, now, &ssl);
        if (fd < 0)
            continue;
        u->dial.ix = i;
        u->reused = true;
        uv_tcp_init(t->loop, &u->tcp);
        u->tcp.data = u;
        u->tcp_init = true;
        u->refs++;
        if (uv_tcp_open(&u->tcp, fd) != 0) {
            close(fd);
            SSL_free(ssl);
            uv_close((uv_handle_t *)&u->tcp, on_closed);
            end(u, PT_UPCONN_BROKEN);
            return true;
        }
        tcp_up(u, ssl);
        return true;
    }
    return false;
}

struct pt_upconn *pt_upconn_open(const struct pt_upconn_target *t,
                                 const struct pt_upconn_ops *ops, void *ctx)
{
    struct pt_upconn *u = pt_xcalloc(1, sizeof(*u));
    u->refs = 1;
    u->ops = &opening_ops; /* nothing reaches the owner before this returns */
    u->tls = t->tls;
    u->use_tls = t->be->tls && !t->plain;
    u->verify = t->be->tls_verify;
    u->read_on = true;
    snprintf(u->host, sizeof(u->host), "%s", t->host ? t->host : "");
    u->dial.servers = t->servers;
    u->dial.n_servers = t->n_servers;
    u->dial.loop = t->loop;
    u->dial.health = t->health;
    if (t->fresh || !take_pooled(u, t))
        pt_dial_start(&u->dial, &dial_ops, t->loop, t->health, t->servers, t->n_servers);
    if (!live(u)) {
        pt_upconn_close(u);
        return NULL;
    }
    u->ops = ops;
    u->ctx = ctx;
    return u;
}

ssize_t pt_upconn_send(struct pt_upconn *u, const void *p, size_t n, size_t tag)
{
    if (!live(u))
        return -1;
    if (u->state != UP_OPEN) {
        pt_wbuf_put(&u->pend, p, n);
        u->pend_tag += tag;
        return 0;
    }
    ssize_t took = write_now(u, p, n, tag);
    if (took < 0)
        u->state = UP_ENDED;
    return took;
}

void pt_upconn_read(struct pt_upconn *u, bool on)
{
    u->read_on = on;
    set_reading(u);
}

size_t pt_upconn_queued(const struct pt_upconn *u)
{
    return pt_writer_queued(&u->out) + u->pend.len;
}

bool pt_upconn_reused(const struct pt_upconn *u)
{
    return u->reused;
}

bool pt_upconn_is_open(const struct pt_upconn *u)
{
    return u->state == UP_OPEN;
}

const struct sockaddr_storage *pt_upconn_peer(const struct pt_upconn *u)
{
    return &u->peer;
}

size_t pt_upconn_server(const struct pt_upconn *u)
{
    return u->dial.ix;
}

void pt_upconn_server_failed(struct pt_upconn *u)
{
    if (u)
        pt_dial_server_failed(&u->dial);
}

uint64_t pt_upconn_tick(struct pt_upconn *u, uint64_t now, uint32_t connect_ms)
{
    if (u->state != UP_DIALING || !u->tcp_init || uv_is_closing((uv_handle_t *)&u->tcp))
        return u->state == UP_DIALING && u->tcp_init ? now + connect_ms : UINT64_MAX;
    if (now - u->attempt_ms < connect_ms)
        return u->attempt_ms + connect_ms;
    pt_dial_abandon(&u->dial); /* this server did not answer: the next */
    return now + connect_ms;
}

size_t pt_upconn_finish(struct pt_upconn *u, uint64_t now)
{
    uv_os_fd_t fd;
    if (u->state == UP_OPEN && pt_writer_queued(&u->out) == 0 && u->pend.len == 0 &&
        !uv_is_closing((uv_handle_t *)&u->tcp) && uv_fileno((uv_handle_t *)&u->tcp, &fd) == 0 &&
        !(u->ssl && (SSL_pending(u->ssl) || BIO_ctrl_pending(SSL_get_rbio(u->ssl)) ||
                     BIO_ctrl_pending(SSL_get_wbio(u->ssl))))) {
        const struct pt_hostport *hp = &u->dial.servers[u->dial.ix];
        char key[PT_UPCONN_KEY_MAX];
        pt_upconn_key(hp, u->use_tls, u->verify, hp->kind == PT_HOST_DNS ? hp->host : u->host,
                      key);
        if (pt_upconn_pool_park(fd, u->ssl, key, now))
            u->ssl = NULL; /* the pool's now */
    }
    return pt_upconn_close(u);
}

size_t pt_upconn_close(struct pt_upconn *u)
{
    if (u == NULL)
        return 0;
    size_t left = u->out.tags + u->pend_tag;
    u->state = UP_CLOSED;
    pt_dial_cancel(&u->dial);
    /* The handle's reference goes in its close callback (an abandoned
     * attempt's in on_attempt_closed), each write's in on_written. */
    if (u->tcp_init && !uv_is_closing((uv_handle_t *)&u->tcp))
        uv_close((uv_handle_t *)&u->tcp, on_closed);
    unref(u);
    return left;
}
