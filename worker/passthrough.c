/* The front stage and the L4 relay.
 *
 * Every accepted connection starts here: ban check, inbound PROXY header
 * from a trusted front. On the TLS listeners: peek the ClientHello, route by
 * SNI; passthrough domains are relayed here (connect to the backend, write
 * the PROXY header and replay the buffered bytes, then relay both ways until
 * both sides are done); offload domains go to the HTTP engine
 * (worker/httpproxy.c). Port 80 connections go to the HTTP engine at once.
 * Stream routes (common/stream.h) are relays too: a tcp stream dials its
 * backend at once (the server may speak first), a tls stream is routed by
 * SNI among the streams of its listener, and on the TLS listeners a hello
 * that offers a stream's ALPN for one of its names goes to that stream.
 *
 * Sockets: the relay's are raw descriptors, not libuv streams: each is
 * added once to the worker's edge-triggered epoll instance (worker/evq.h)
 * when it must be waited for, not modified (but while spliced), and removed
 * by its close(2).
 * An edge sets the side's readiness (rd_ready, wr_ready); a side is read
 * with recv(2) until EAGAIN or a short read, written with send(2), and the
 * readiness is cleared only by the call that found the socket empty (full).
 * One step function per state does what the readiness allows. A client
 * handed to the HTTP engine becomes a libuv handle then (taken out of the
 * instance first if it was in it).
 *
 * Memory: while routing, a connection holds the bytes received so far (at
 * most PT_CLIENTHELLO_MAX + one read). Once relaying, reads land in one
 * per-worker buffer and are written straight on with send(2); only what
 * the peer's socket does not take at once is copied and held, and the side
 * it came from is not read until it is written (backpressure). An idle
 * established connection therefore owns no I/O buffer at all.
 *
 * Bulk: once one read brings SPLICE_AFTER bytes or more, the connection
 * switches to splice(2) (worker/splice.h): a pipe per direction, driven by
 * the same instance, and the bytes stay in the kernel. A spliced side is
 * watched only for what the transfer waits for: a sender whose pipe is full
 * would otherwise wake the worker with every segment. The rules are the same in both modes: a direction stops
 * reading while what it read is not written on (the pipe is its buffer),
 * an EOF is passed on as a half-close once everything before it is out, an
 * error or RST as an RST, and moving bytes either way is activity for the
 * idle timeout. Small exchanges keep the read/write path: a pipe's splice
 * in and out are two calls like a read and a write, plus its descriptors. */
#include "worker/worker.h"

#include "common/addr.h"
#include "common/clienthello.h"
#include "common/proxyproto.h"
#include "worker/conn.h"
#include "worker/evq.h"
#include "worker/httpproxy.h"
#include "worker/splice.h"
#include "worker/writer.h"

#include <errno.h>
#include <sys/epoll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#define READ_BUF (64 * 1024)
#define SPLICE_AFTER (32 * 1024) /* one read this large: a bulk transfer */
#define HELLO_BUF_MIN 2048
/* Reads (or splice rounds) per direction in one step: past it, the rest
 * waits one loop turn (pt_evq_again), so one busy connection does not hold
 * the loop. */
#define STEP_ROUNDS 8

enum pass_state {
    PASS_PROXY_HDR = 0, /* reading a PROXY header from a trusted front */
    PASS_HELLO,         /* buffering until the ClientHello is complete */
    PASS_RESOLVE,       /* backend name lookup (uv_getaddrinfo) */
    PASS_CONNECT,       /* connecting to a server (c->dial) */
    PASS_RELAY,         /* bytes both ways */
    PASS_CLOSING,       /* handles closing; freed on the last close_cb */
};

struct side {
    struct pt_evq_item ev; /* its socket's edges (once watched) */
    int fd;           /* owned: the socket, or -1 (closed; the client's also
                         once handed to the HTTP engine) */
    struct pass *c;
    bool watched;     /* added to the worker's evq */
    bool rd_ready;    /* an edge said readable, no read found it empty since */
    bool wr_ready;    /* an edge said writable, no write found it full since */
    bool hup;         /* the peer's FIN or an error was signalled: read to
                         the end (a short read does not mean drained) */
    bool eof;         /* no more bytes will come from this side */
    bool shut;        /* we shut down our writing towards this side */
    bool gone;        /* a read, write or shutdown failed: the peer reset it,
                         so its close sends nothing and needs no RST of ours */
    struct pt_writer out; /* bytes to this side (raw mode): what the socket
                             did not take at once */
    uint64_t bytes;   /* bytes received from this side */
    int outq;         /* kernel send queue seen at the last idle check */
    struct spside *sp; /* owned: set once spliced (allocated then, so that
                          connections that never splice do not carry it) */
};

/* A side of a spliced connection. */
struct spside {
    uint32_t mask; /* what the side's socket is watched for (pt_evq_modify) */
    struct pt_splice_pipe pipe; /* owned: bytes from the peer, to write to this side */
    bool pipe_full;             /* the pipe took no more: the peer is not read
                                   until bytes leave it */
};

struct pass {
    struct pt_listener *l;
    struct pt_worker *w;
    enum pass_state state;
    struct side cli, srv;
    struct pt_snapshot *snap; /* reference: routes and settings in force */
    const struct pt_domain *dom;
    const struct pt_stream *st;        /* the stream route, or NULL */
    const struct pt_stream_port *port; /* stream listener's routes, or NULL */
    int alpn_stream;    /* on the TLS listeners: the stream the hello's ALPN
                           and SNI pick, or -1 */
    uint32_t *st_count; /* st's open connections in this worker, counted */
    const struct pt_backend *be;
    struct pt_dial dial; /* reaching one of the backend's servers */
    bool http;          /* a port-80 connection (handed to the HTTP engine) */
    bool from_trusted;  /* the socket's peer is a --trusted-proxy */
    struct pt_deadline dl; /* state timeout, or idle deadline when relaying */
    struct sockaddr_storage peer;  /* real client (after a trusted PROXY header) */
    struct sockaddr_storage local; /* address the client connected to */
    struct sockaddr_storage target;
    uint8_t *hbuf; /* owned: first bytes from the client, replayed */
    size_t hlen, hcap;
    char sni[256];
    size_t sni_len;
    unsigned handles; /* the timer and a name lookup; freed at zero */
    uint64_t start_ms;
    const char *result; /* for the access log; set where the outcome is known */
    bool connected;     /* c->target holds the server we relay to */
    bool handed_off;    /* offload took the socket: log nothing here */
    bool spliced;       /* relaying with splice: cli.sp and srv.sp are set */
    bool copy_only;     /* splicing could not start: no second try */
    struct pt_conntrack ct; /* in the worker's registry: bans cut it */
};

/* Per-worker read buffer: one read at a time on this single thread, and
 * the bytes are sent on or copied before the next. */
static uint8_t read_buf[READ_BUF];
static uint8_t hello_scratch[PT_CLIENTHELLO_MAX];

static void relay_start(struct pass *c);
static const struct pt_dial_ops dial_ops;
static int start_reading(struct side *s);
static void pass_close(struct pass *c, bool reset);

/* Idle time allowed while relaying: the stream's own, else the daemon's. */
static uint32_t idle_ms(const struct pass *c)
{
    if (c->st && c->st->idle_timeout_s)
        return c->st->idle_timeout_s * 1000u;
    return c->snap->settings.idle_timeout_ms;
}

static void log_access(struct pass *c)
{
    struct pt_access a = {
        .client = (struct sockaddr *)&c->peer,
        .listener = (struct sockaddr *)&c->l->addr,
        .sni = c->sni,
        .sni_len = c->sni_len,
        .route = c->st ? c->st->name : c->dom ? c->dom->name : NULL,
        .mode = c->http ? "http" : c->st || c->port ? "stream" : "passthrough",
        .backend = c->be ? c->be->name : NULL,
        .server = c->connected ? (struct sockaddr *)&c->target : NULL,
        .bytes_in = c->cli.bytes,
        .bytes_out = c->srv.bytes,
        .duration_ms = pt_worker_now_ms(c->w) - c->start_ms,
        .result = c->result ? c->result : "client_closed",
    };
    pt_worker_access(c->w, &a);
}

static void release(struct pass *c)
{
    if (--c->handles > 0)
        return;
    if (!c->handed_off)
        log_access(c);
    pt_worker_listener_release(c->l);
    if (c->st_count)
        (*c->st_count)--;
    free(c->hbuf);
    for (struct side *s = &c->cli; s; s = s == &c->cli ? &c->srv : NULL) {
        if (s->sp) {
            pt_splice_give(&s->sp->pipe);
            free(s->sp);
        }
    }
    pt_conn_free(c->w, &c->ct, c->snap, c);
}

static void on_timer_closed(uv_handle_t *h)
{
    release(h->data);
}


/* Bytes read from the peer and not yet written to <s>. */
static bool queued_to(const struct side *s)
{
    return pt_writer_queued(&s->out) > 0 || (s->sp && s->sp->pipe.len > 0);
}

/* Closes the side's socket at once (close(2) takes it out of the evq);
 * with an RST when <reset> (an RST from one side passed on: the other end
 * must not mistake a cut transfer for a complete one). Bytes still queued
 * to it are dropped. */
static void close_side(struct pass *c, struct side *s, bool reset)
{
    if (s->fd < 0)
        return;
    pt_evq_forget(&c->w->evq, &s->ev);
    if (reset && !s->gone) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(s->fd);
    s->fd = -1;
    s->watched = false;
    pt_writer_drop(&s->out);
}

static void pass_close(struct pass *c, bool reset)
{
    if (c->state == PASS_CLOSING)
        return;
    c->state = PASS_CLOSING;
    pt_dial_cancel(&c->dial);
    pt_conn_closing(&c->ct, &c->dl, on_timer_closed);
    close_side(c, &c->cli, reset);
    close_side(c, &c->srv, reset);
}

/* A ban came for the client: cut both sides at once. */
static void pass_kill(struct pt_conntrack *ct)
{
    struct pass *c = PT_CONNTRACK_OWNER(ct, struct pass, ct);
    if (c->state == PASS_CLOSING)
        return;
    c->result = "banned";
    pass_close(c, true);
}

/* Answers the client (a TLS alert, a few bytes that a fresh socket's
 * buffer always takes) and closes. */
static void answer_and_close(struct pass *c, const void *data, size_t len)
{
    pt_writer_send(&c->cli.out, data, len, 0);
    pass_close(c, false);
}

static void send_alert(struct pass *c, uint8_t desc)
{
    static uint8_t alerts[256][7];
    uint8_t *a = alerts[desc];
    pt_tls_alert(a, 0x0303, desc);
    answer_and_close(c, a, 7);
}

/* True when <s> has bytes queued towards it and its kernel send queue
 * shrank since the last look. The kernel wakes a writer only once a third
 * of a (possibly multi-megabyte) buffer is free, so a reader draining it
 * slowly can go longer than the idle timeout without a write callback. */
static bool draining(struct side *s)
{
    int q = 0;
    if (!queued_to(s) || ioctl(s->fd, SIOCOUTQ, &q) != 0)
        return false;
    bool moved = q != s->outq;
    s->outq = q;
    return moved;
}

static void on_expired(struct pt_deadline *dl)
{
    struct pass *c = PT_CONTAINER_OF(dl, struct pass, dl);
    switch (c->state) {
    case PASS_CONNECT:
        /* This server did not answer in time: try the next. */
        pt_dial_abandon(&c->dial);
        return;
    case PASS_RELAY:
        if (draining(&c->cli) | draining(&c->srv)) {
            /* A slow reader is still taking bytes out of the kernel's
             * queue: that is progress even though no wakeup told us. */
            pt_deadline_arm(&c->dl, idle_ms(c));
            return;
        }
        c->result = "idle_timeout";
        /* Cutting with data still queued must not look like a clean end. */
        pass_close(c, queued_to(&c->cli) || queued_to(&c->srv));
        return;
    default:
        c->result = "timeout";
        pass_close(c, false);
    }
}

/* ---- routing ------------------------------------------------------------ */

/* Room for the next read of the client's first bytes. */
static uint8_t *hello_room(struct pass *c, size_t *room)
{
    if (c->hcap - c->hlen < 512) {
        size_t cap = c->hcap ? c->hcap * 2 : HELLO_BUF_MIN;
        size_t max = PT_CLIENTHELLO_MAX + 512;
        if (cap > max)
            cap = max;
        c->hbuf = pt_xrealloc(c->hbuf, cap);
        c->hcap = cap;
    }
    *room = c->hcap - c->hlen;
    return c->hbuf + c->hlen;
}

static void on_handle_closed(uv_handle_t *h)
{
    free(h);
}

/* Gives the connection to the HTTP engine (offload, or any port-80
 * connection) with the bytes read so far: the client's socket becomes a
 * libuv handle (out of the evq first, if it was waited for there) that the
 * engine takes, and this connection lets go of it and ends without a log
 * line (the engine logs). The bans registry tracks the engine's connection from here on;
 * this one leaves it as it closes. */
static void hand_off(struct pass *c)
{
    struct pt_httpproxy_info info = {
        .peer = c->peer,
        .local = c->local,
        .tls = !c->http,
        .trusted = c->from_trusted,
        .snap = c->snap,
        .route = c->dom ? (int)(c->dom - c->snap->domains) : -1,
        .sni = c->sni,
        .sni_len = c->sni_len,
        .pre = c->hbuf,
        .pre_len = c->hlen,
    };
    int fd = c->cli.fd;
    if (c->cli.watched)
        pt_evq_remove(&c->w->evq, fd, &c->cli.ev);
    c->cli.watched = false;
    uv_tcp_t *tcp = pt_xmalloc(sizeof(*tcp));
    uv_tcp_init(c->w->loop, tcp);
    if (uv_tcp_open(tcp, fd) != 0) {
        uv_close((uv_handle_t *)tcp, on_handle_closed);
        pass_close(c, false);
        return;
    }
    c->cli.fd = -1;
    c->handed_off = true;
    pt_httpproxy_start(c->l, tcp, &info);
    pass_close(c, false);
}

static void set_sni(struct pass *c, const struct pt_clienthello *ch)
{
    c->sni_len = ch->sni_len;
    if (ch->sni_len) /* ch->sni is NULL when there is none */
        memcpy(c->sni, ch->sni, ch->sni_len);
    c->alpn_stream = c->port ? -1 : pt_streams_alpn(&c->snap->streams, ch);
}

/* Relays the connection to stream <ix>'s backend, within its limit. */
static void route_stream(struct pass *c, int ix)
{
    const struct pt_snapshot *s = c->snap;
    c->st = &s->streams.v[ix];
    c->be = &s->backends[c->st->backend_ix];
    uint32_t *n = pt_worker_stream_count(c->w, c->st->name);
    if (c->st->max_connections && *n >= c->st->max_connections) {
        c->w->refused++;
        c->result = "max_connections";
        pass_close(c, true);
        return;
    }
    (*n)++;
    c->st_count = n;
    pt_dial_start(&c->dial, &dial_ops, c->w->loop, &c->w->health, c->be->servers, c->be->n_servers);
}

static void route(struct pass *c)
{
    const struct pt_snapshot *s = c->snap;
    if (c->port || c->alpn_stream >= 0) {
        int st = c->port ? pt_streams_route(&s->streams, c->port, c->sni, c->sni_len)
                         : c->alpn_stream;
        if (st >= 0) {
            route_stream(c, st);
            return;
        }
        c->result = "unknown_sni";
        send_alert(c, PT_TLS_ALERT_UNRECOGNIZED_NAME);
        return;
    }
    int ix = pt_route_lookup(s->routes, c->sni, c->sni_len);
    if (ix < 0) {
        c->result = "unknown_sni";
        send_alert(c, PT_TLS_ALERT_UNRECOGNIZED_NAME);
        return;
    }
    c->dom = &s->domains[ix];
    c->be = &s->backends[c->dom->backend_ix];
    if (c->dom->mode == PT_MODE_OFFLOAD) {
        hand_off(c);
        return;
    }
    /* A client already waited for (its hello came in parts) keeps being
     * read while the backend connects (what comes is buffered and
     * replayed); one whose hello came whole is added with the relay. */
    pt_dial_start(&c->dial, &dial_ops, c->w->loop, &c->w->health, c->be->servers, c->be->n_servers);
}

/* The buffered bytes so far (on_client_read added the last read). */
static void handle_hello(struct pass *c)
{
    struct pt_clienthello ch;
    int rc = pt_clienthello_parse(c->hbuf, c->hlen, hello_scratch, &ch);
    if (rc == PT_ENEEDMORE) {
        if (c->hlen >= PT_CLIENTHELLO_MAX || start_reading(&c->cli) != 0)
            pass_close(c, false);
        return;
    }
    if (rc < 0) {
        /* Not TLS, or a broken hello: nothing sane to answer in TLS terms
         * for garbage, but a TLS client deserves to know. */
        c->result = "bad_hello";
        if (c->hlen >= 1 && c->hbuf[0] == 22)
            send_alert(c, PT_TLS_ALERT_HANDSHAKE_FAILURE);
        else
            pass_close(c, false);
        return;
    }
    set_sni(c, &ch);
    route(c);
}

/* ---- inbound PROXY header ------------------------------------------------ */

static bool trusted(const struct pass *c)
{
    const struct pt_settings *st = &c->snap->settings;
    for (size_t i = 0; i < st->n_trusted; i++)
        if (pt_cidr_contains(&st->trusted[i], (const struct sockaddr *)&c->peer))
            return true;
    return false;
}

static void begin_hello(struct pass *c)
{
    if (c->http) {
        /* Port 80 speaks HTTP from the first byte: all of it is the engine's. */
        hand_off(c);
        return;
    }
    if (c->port && c->port->tcp >= 0) {
        /* SMTP, SSH, XMPP with STARTTLS: the server may speak first. */
        route_stream(c, c->port->tcp);
        return;
    }
    c->state = PASS_HELLO;
    if (c->hlen > 0) {
        /* Bytes that followed the PROXY header are the start of the hello. */
        struct pt_clienthello ch;
        int rc = pt_clienthello_parse(c->hbuf, c->hlen, hello_scratch, &ch);
        if (rc > 0) {
            set_sni(c, &ch);
            route(c);
            return;
        }
        if (rc != PT_ENEEDMORE) {
            pass_close(c, false);
            return;
        }
    }
    if (start_reading(&c->cli) != 0)
        pass_close(c, false);
}

static void on_proxy_read(struct pass *c, ssize_t n)
{
    if (n <= 0) {
        pass_close(c, n != 0);
        return;
    }
    c->hlen += (size_t)n;
    /* A trusted front may also send no header at all: then the bytes are the
     * client's own (a TLS record, a "POST ..." request). */
    int has = pt_proxyproto_detect(c->hbuf, c->hlen);
    if (has == PT_ENEEDMORE)
        return;
    if (has == 0) {
        c->ct.addr = &c->peer;
        if (pt_worker_banned(c->w, (struct sockaddr *)&c->peer)) {
            c->result = "banned";
            pass_close(c, true);
            return;
        }
        begin_hello(c);
        return;
    }
    struct pt_proxyproto_info pi;
    int rc = pt_proxyproto_parse(c->hbuf, c->hlen, &pi);
    if (rc == PT_ENEEDMORE)
        return;
    if (rc < 0) {
        c->w->refused++;
        c->result = "bad_proxy_header";
        pass_close(c, false);
        return;
    }
    if (!pi.local) {
        c->peer = pi.src;
        c->local = pi.dst;
        pt_sockaddr_unmap(&c->peer);
        pt_sockaddr_unmap(&c->local);
    }
    c->ct.addr = &c->peer; /* now the real client: bans judge this one */
    if (pt_worker_banned(c->w, (struct sockaddr *)&c->peer)) {
        c->result = "banned";
        pass_close(c, true);
        return;
    }
    memmove(c->hbuf, c->hbuf + rc, c->hlen - (size_t)rc);
    c->hlen -= (size_t)rc;
    begin_hello(c);
}

/* ---- sockets ---------------------------------------------------------------- */

static void on_side_event(struct pt_evq_item *it, uint32_t events);

static void side_init(struct pass *c, struct side *s, int fd)
{
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->fd = fd;
    s->ev.ready = on_side_event;
    pt_writer_init_fd(&s->out, fd, s);
}

/* Waits for the side's edges from now on (a no-op once it does). An edge
 * already due (bytes that came before) is reported at once by the add. */
static int start_reading(struct side *s)
{
    if (s->watched)
        return 0;
    int rc = pt_evq_add(&s->c->w->evq, s->fd, &s->ev);
    s->watched = rc == 0;
    return rc;
}

static bool socket_error(const struct side *s)
{
    int err = 0;
    socklen_t len = sizeof(err);
    return getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0;
}

static struct side *peer_of(struct pass *c, struct side *s)
{
    return s == &c->cli ? &c->srv : &c->cli;
}

/* One recv of at most <cap> bytes from <s>: the bytes (> 0), 0 at its end
 * of stream, or a negative errno (-EAGAIN: nothing now, rd_ready cleared).
 * A short read drained the socket: rd_ready is cleared too, unless the
 * peer's FIN or an error is pending (the next read reports it, and no edge
 * would come for it). */
static ssize_t side_recv(struct side *s, uint8_t *buf, size_t cap)
{
    ssize_t n;
    do
        n = recv(s->fd, buf, cap, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        n = -errno;
        if (n == -EWOULDBLOCK)
            n = -EAGAIN;
    }
    if (n == -EAGAIN || (n > 0 && (size_t)n < cap && !s->hup))
        s->rd_ready = false;
    return n;
}

/* ---- backend connection -------------------------------------------------- */

static struct pass *dial_conn(struct pt_dial *d)
{
    return PT_CONTAINER_OF(d, struct pass, dial);
}

/* A raw non-blocking connect, its completion an edge of the same evq. */
static int dial_connect_raw(struct pt_dial *d, const struct sockaddr *sa)
{
    struct pass *c = dial_conn(d);
    struct side *s = &c->srv;
    c->state = PASS_CONNECT;
    pt_deadline_arm(&c->dl, c->snap->settings.connect_timeout_ms);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    side_init(c, s, fd);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    if (connect(fd, sa, len) != 0 && errno != EINPROGRESS)
        return -errno;
    return start_reading(s);
}

/* The connecting socket had an edge: writable is connected, unless
 * SO_ERROR says it failed. */
static void connect_step(struct pass *c, uint32_t events)
{
    if (events & (EPOLLERR | EPOLLHUP) || ((events & EPOLLOUT) && socket_error(&c->srv)))
        pt_dial_abandon(&c->dial);
    else if (events & EPOLLOUT)
        pt_dial_connected(&c->dial);
}

static void dial_connected(struct pt_dial *d)
{
    relay_start(dial_conn(d));
}

/* A failed attempt: its socket closes, the next server is tried. */
static void dial_raw_failed(struct pt_dial *d)
{
    struct pass *c = dial_conn(d);
    close_side(c, &c->srv, false);
    if (c->state == PASS_CONNECT)
        pt_dial_next(d);
}

static void dial_exhausted(struct pt_dial *d)
{
    struct pass *c = dial_conn(d);
    pt_log(PT_LOG_WARN, "backend '%s': no server reachable for '%.*s'", c->be->name,
           (int)c->sni_len, c->sni);
    c->result = "no_server";
    if (c->st && c->st->mode == PT_STREAM_TCP)
        pass_close(c, false); /* no TLS to speak an alert in */
    else
        send_alert(c, PT_TLS_ALERT_INTERNAL_ERROR);
}

static void dial_hold(struct pt_dial *d, bool take)
{
    struct pass *c = dial_conn(d);
    if (!take) {
        release(c);
        return;
    }
    c->handles++;
    c->state = PASS_RESOLVE;
    pt_deadline_arm(&c->dl, c->snap->settings.connect_timeout_ms);
}

static const struct pt_dial_ops dial_ops = {
    .connected = dial_connected,
    .exhausted = dial_exhausted,
    .hold = dial_hold,
    .connect_raw = dial_connect_raw,
    .raw_failed = dial_raw_failed,
};

/* ---- the client before relaying ---------------------------------------------- */

/* Bytes that come while the backend connects: kept for the replay. */
static void on_early_read(struct pass *c, ssize_t n)
{
    if (n == 0) {
        c->cli.eof = true; /* passed on once the buffered bytes are out */
        return;
    }
    if (n < 0) {
        pass_close(c, true);
        return;
    }
    c->hlen += (size_t)n;
    c->cli.bytes += (uint64_t)n;
}

/* <n>: bytes read into c->hbuf + c->hlen, 0 at the end of stream, or a
 * negative errno (side_recv's, never -EAGAIN). */
static void on_client_read(struct pass *c, ssize_t n)
{
    switch (c->state) {
    case PASS_PROXY_HDR:
        on_proxy_read(c, n);
        break;
    case PASS_HELLO:
        if (n <= 0) {
            pass_close(c, n != 0);
            break;
        }
        c->hlen += (size_t)n;
        c->cli.bytes += (uint64_t)n;
        handle_hello(c);
        break;
    case PASS_RESOLVE:
    case PASS_CONNECT:
        on_early_read(c, n);
        break;
    case PASS_RELAY:
    case PASS_CLOSING:
        break;
    }
}

/* Whether the client's bytes are wanted now, before relaying: while the
 * backend connects, only into the room left in the hello buffer (the
 * kernel holds the rest until the relay starts). */
static bool client_wanted(const struct pass *c)
{
    switch (c->state) {
    case PASS_PROXY_HDR:
    case PASS_HELLO:
        return true;
    case PASS_RESOLVE:
    case PASS_CONNECT:
        return !c->cli.eof && c->hcap - c->hlen >= 512;
    default:
        return false;
    }
}

/* Reads the client while it has bytes and the state wants them. */
static void client_step(struct pass *c)
{
    struct side *s = &c->cli;
    while (s->fd >= 0 && s->rd_ready && client_wanted(c)) {
        size_t room;
        uint8_t *b = hello_room(c, &room);
        ssize_t n = side_recv(s, b, room);
        if (n == -EAGAIN)
            break;
        on_client_read(c, n);
    }
}

/* ---- relay ---------------------------------------------------------------- */

static bool splice_begin(struct pass *c);

static void maybe_done(struct pass *c)
{
    /* Both directions finished: each side sent EOF and got our FIN. */
    if (c->cli.eof && c->srv.eof && c->cli.shut && c->srv.shut && !queued_to(&c->cli) &&
        !queued_to(&c->srv))
        pass_close(c, false);
}

/* Passes the EOF of <to>'s peer on to <to> once everything before it is
 * written: a half-close, so <to> may still answer. */
static void forward_eof(struct pass *c, struct side *to)
{
    if (to->shut || queued_to(to))
        return;
    to->shut = true;
    /* When <to> has finished too and its own EOF was passed on, this ends
     * the connection: the close sends the FIN, no shutdown needed. */
    if (!(to->eof && peer_of(c, to)->shut) && pt_writer_shutdown(&to->out) != 0) {
        to->gone = true;
        pass_close(c, true);
        return;
    }
    maybe_done(c);
}

/* Moves what can move from <from> to <to> now: the bytes held for <to>
 * first (its socket took no more before), then one read of <from> sent on,
 * unless some is still held (backpressure: <from> waits). Returns 1 when
 * something moved, 0 when nothing could, -1 when the relay must not go on
 * here (the connection closed, or it switched to splice). */
static int relay_move(struct pass *c, struct side *from, struct side *to)
{
    int moved = 0;
    if (pt_writer_queued(&to->out)) {
        if (!to->wr_ready)
            return 0;
        size_t before = pt_writer_queued(&to->out);
        ssize_t left = pt_writer_flush(&to->out);
        if (left < 0) {
            to->gone = true;
            pass_close(c, true);
            return -1;
        }
        if ((size_t)left < before) {
            /* Bytes drained to a slow reader are activity too. */
            pt_deadline_arm(&c->dl, idle_ms(c));
            moved = 1;
        }
        if (left > 0) {
            to->wr_ready = false;
            return moved;
        }
        if (from->eof) {
            forward_eof(c, to);
            return c->state == PASS_RELAY ? 1 : -1;
        }
    }
    if (from->eof || !from->rd_ready)
        return moved;
    ssize_t n = side_recv(from, read_buf, sizeof(read_buf));
    if (n == -EAGAIN)
        return moved;
    if (n == 0) {
        from->eof = true;
        forward_eof(c, to);
        return c->state == PASS_RELAY ? 1 : -1;
    }
    if (n < 0) {
        c->result = from == &c->cli ? "client_reset" : "server_reset";
        from->gone = true;
        pass_close(c, true);
        return -1;
    }
    from->bytes += (uint64_t)n;
    pt_deadline_arm(&c->dl, idle_ms(c));
    int rc = pt_writer_send(&to->out, read_buf, (size_t)n, 0);
    if (rc < 0) {
        to->gone = true;
        pass_close(c, true);
        return -1;
    }
    if (rc == 1)
        to->wr_ready = false; /* it took part: full until its next edge */
    else if ((size_t)n >= SPLICE_AFTER && splice_begin(c))
        return -1;
    return 1;
}

/* The relay's step: both directions, until nothing moves (or the round
 * bound: then again on the next loop turn). */
static void relay_step(struct pass *c)
{
    for (int round = 0; round < STEP_ROUNDS; round++) {
        int a = relay_move(c, &c->cli, &c->srv);
        if (a < 0)
            return;
        int b = relay_move(c, &c->srv, &c->cli);
        if (b < 0)
            return;
        if (a == 0 && b == 0)
            return;
    }
    pt_evq_again(&c->w->evq, &c->cli.ev);
}

/* ---- splice (bulk) ---------------------------------------------------------- */

/* Moves bytes from <from> through to's pipe into <to> while the sides'
 * readiness allows (bounded: *<more> is set when it stopped with bytes
 * still moving). Returns 0 or a negative errno: the connection is cut
 * (c->result set for a reading side). */
static int pump(struct pass *c, struct side *from, struct side *to, bool *moved, bool *more)
{
    struct spside *t = to->sp;
    for (int round = 0; round < STEP_ROUNDS; round++) {
        bool progress = false;
        if (t->pipe.len && to->wr_ready) {
            ssize_t n = pt_splice_out(&t->pipe, to->fd);
            if (n == -EAGAIN)
                to->wr_ready = false;
            else if (n < 0)
                return (int)n;
            if (n > 0)
                progress = true, t->pipe_full = false;
        }
        if (t->pipe.len >= t->pipe.cap)
            t->pipe_full = true; /* (splice would read 0 bytes: no EOF) */
        if (!from->eof && !t->pipe_full && from->rd_ready) {
            ssize_t n = pt_splice_in(from->fd, &t->pipe);
            if (n > 0) {
                progress = true;
                from->bytes += (uint64_t)n;
            } else if (n == -EAGAIN) {
                /* With bytes in the pipe it may be out of room (pages, not
                 * bytes): read again once they leave; else drained. */
                if (t->pipe.len > 0)
                    t->pipe_full = true;
                else
                    from->rd_ready = false;
            } else if (n == 0) {
                /* A pending reset reads as an end of stream here. */
                if (socket_error(from))
                    n = -ECONNRESET;
                else
                    from->eof = true;
            }
            if (n < 0 && n != -EAGAIN) {
                c->result = from == &c->cli ? "client_reset" : "server_reset";
                return (int)n;
            }
        }
        *moved |= progress;
        if (!progress)
            return 0;
    }
    *more = true;
    return 0;
}

/* Moves what the sides' readiness allows both ways and passes EOFs on. */
static void splice_step(struct pass *c)
{
    bool moved = false, more = false;
    if (pump(c, &c->cli, &c->srv, &moved, &more) != 0 ||
        pump(c, &c->srv, &c->cli, &moved, &more) != 0) {
        pass_close(c, true);
        return;
    }
    if (moved)
        pt_deadline_arm(&c->dl, idle_ms(c));
    for (struct side *to = &c->cli; to; to = to == &c->cli ? &c->srv : NULL) {
        struct side *from = peer_of(c, to);
        if (from->eof && !to->shut && to->sp->pipe.len == 0) {
            to->shut = true; /* a half-close: the other way stays open */
            if (pt_writer_shutdown(&to->out) != 0) {
                pass_close(c, true);
                return;
            }
        }
    }
    if (c->cli.eof && c->srv.eof && c->cli.shut && c->srv.shut) {
        pass_close(c, false);
        return;
    }
    if (more) {
        pt_evq_again(&c->w->evq, &c->cli.ev);
        return;
    }
    /* Watched only for what the transfer waits for: a side whose bytes
     * have no room in the pipe is not (its segments would each wake the
     * worker for nothing), nor one with nothing to write for writability. */
    for (struct side *s = &c->cli; s; s = s == &c->cli ? &c->srv : NULL) {
        struct side *peer = peer_of(c, s);
        uint32_t want = (!s->eof && !peer->sp->pipe_full ? EPOLLIN | EPOLLRDHUP : 0) |
                        (s->sp->pipe.len ? EPOLLOUT : 0);
        if (want != s->sp->mask && pt_evq_modify(&c->w->evq, s->fd, &s->ev, want) == 0)
            s->sp->mask = want;
    }
}

/* Switches the relay to splice. Only between two transfers: nothing
 * queued, nothing half-closed. Returns whether it did. */
static bool splice_begin(struct pass *c)
{
    if (c->copy_only || c->spliced || c->state != PASS_RELAY || queued_to(&c->cli) ||
        queued_to(&c->srv) || c->cli.eof || c->srv.eof || c->cli.shut || c->srv.shut)
        return false;
    struct spside *sp[2] = {pt_xcalloc(1, sizeof(struct spside)),
                            pt_xcalloc(1, sizeof(struct spside))};
    sp[0]->pipe.rd = sp[0]->pipe.wr = sp[1]->pipe.rd = sp[1]->pipe.wr = -1;
    if (pt_splice_take(&sp[0]->pipe) != 0 || pt_splice_take(&sp[1]->pipe) != 0) {
        /* Out of descriptors: this connection keeps copying. */
        pt_splice_give(&sp[0]->pipe);
        free(sp[0]);
        free(sp[1]);
        c->copy_only = true;
        return false;
    }
    c->cli.sp = sp[0];
    c->srv.sp = sp[1];
    sp[0]->mask = sp[1]->mask = PT_EVQ_ALL;
    c->spliced = true;
    splice_step(c);
    return true;
}

/* ---- events ------------------------------------------------------------------ */

/* An edge of one of the connection's sockets (<events> 0: a run asked with
 * pt_evq_again): its readiness is noted, and the state's step does what it
 * allows. Edges of a socket closed earlier in the same batch find fd -1. */
static void on_side_event(struct pt_evq_item *it, uint32_t events)
{
    struct side *s = PT_CONTAINER_OF(it, struct side, ev);
    struct pass *c = s->c;
    if (s->fd < 0 || c->state == PASS_CLOSING)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->rd_ready = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->hup = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        s->wr_ready = true;
    switch (c->state) {
    case PASS_PROXY_HDR:
    case PASS_HELLO:
    case PASS_RESOLVE:
    case PASS_CONNECT:
        if (s == &c->cli)
            client_step(c); /* (while connecting: bytes for the replay) */
        else
            connect_step(c, events);
        break;
    case PASS_RELAY:
        if (c->spliced)
            splice_step(c);
        else
            relay_step(c);
        break;
    case PASS_CLOSING:
        break;
    }
}

static void relay_start(struct pass *c)
{
    uint8_t hdr[PT_PP_OUT_MAX];
    int hn = 0;
    c->state = PASS_RELAY;
    c->result = "ok";
    /* The server's address is the one dialed; only a name lookup's result
     * is not at hand (then the socket is asked). */
    const struct pt_hostport *hp = &c->dial.servers[c->dial.ix];
    if (hp->kind != PT_HOST_DNS) {
        c->target = hp->sa;
        c->connected = true;
    } else {
        socklen_t tlen = sizeof(c->target);
        c->connected = getpeername(c->srv.fd, (struct sockaddr *)&c->target, &tlen) == 0;
    }
    if (c->be->proxy_protocol != PT_PP_NONE) {
        hn = pt_proxyproto_encode(c->be->proxy_protocol, (struct sockaddr *)&c->peer,
                                  (struct sockaddr *)&c->local, c->sni_len ? c->sni : NULL,
                                  c->sni_len, hdr, sizeof(hdr));
        if (hn < 0)
            hn = 0;
    }
    /* Header and replayed hello leave in one write (one segment). */
    const uint8_t *pre = hdr;
    size_t pre_len = (size_t)hn;
    size_t total = pre_len + c->hlen;
    uint8_t *first = pt_xmalloc(total ? total : 1);
    if (pre_len)
        memcpy(first, pre, pre_len);
    if (c->hlen)
        memcpy(first + pre_len, c->hbuf, c->hlen);
    PT_FREE(c->hbuf);
    c->hlen = c->hcap = 0;
    pt_deadline_arm(&c->dl, idle_ms(c));
    int rc = pt_writer_send(&c->srv.out, first, total, 0);
    free(first);
    if (rc < 0 || start_reading(&c->cli) != 0) {
        pass_close(c, true);
        return;
    }
    if (rc == 1)
        c->srv.wr_ready = false;
    if (c->cli.eof)
        forward_eof(c, &c->srv); /* the client finished while we connected */
    if (c->state == PASS_RELAY)
        relay_step(c);
}

/* ---- accept ---------------------------------------------------------------- */

/* A TLS listener's connection comes with its hello (deferred accept,
 * PT_WORKER_DEFER_ACCEPT_S): read it now, without an epoll round first.
 * Routed to a passthrough backend, the client is then not added to the
 * evq before the relay starts, and routed to offload never. */
static void first_read(struct pass *c)
{
    size_t room;
    uint8_t *b = hello_room(c, &room);
    ssize_t n = side_recv(&c->cli, b, room);
    if (n == -EAGAIN) {
        /* Handed over without a byte: the client has been silent for the
         * whole deferral, which counts against its hello timeout (a SYN
         * cookie's connection comes at once: its deadline is that short). */
        uint32_t t = c->snap->settings.hello_timeout_ms;
        uint32_t waited = PT_WORKER_DEFER_ACCEPT_S * 1000u;
        pt_deadline_arm(&c->dl, t > waited ? t - waited : 0);
        if (start_reading(&c->cli) != 0)
            pass_close(c, false);
        return;
    }
    on_client_read(c, n);
    /* A hello in parts: the rest is read as its edges come (if the first
     * read filled the buffer, the add reported it ready). */
}

static void accept_conn(struct pt_listener *l, int fd, const struct sockaddr_storage *peer,
                        bool http)
{
    struct pt_worker *w = l->w;
    struct pass *c = pt_xcalloc(1, sizeof(*c));
    c->l = l;
    c->w = w;
    c->http = http;
    c->snap = pt_snap_ref(w->snap);
    c->alpn_stream = -1;
    if (l->kind == 't') {
        /* Always found: a listener no snapshot names is closed at apply. */
        c->port = pt_streams_port(&c->snap->streams, l->lid);
        PT_ASSERT(c->port != NULL);
    }
    c->peer = *peer;
    c->start_ms = pt_worker_now_ms(w);
    /* Only a wildcard listener needs to ask which address was reached. */
    socklen_t alen = sizeof(c->local);
    c->local = l->addr;
    if (l->wildcard && getsockname(fd, (struct sockaddr *)&c->local, &alen) != 0)
        c->local = l->addr;
    /* A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d. */
    pt_sockaddr_unmap(&c->peer);
    pt_sockaddr_unmap(&c->local);
    bool from_trusted = c->from_trusted = trusted(c);
    /* Refused before a single byte is read or answered. Connections from a
     * trusted front are judged on the address its PROXY header carries. */
    if (!from_trusted && pt_worker_banned(w, (struct sockaddr *)&c->peer)) {
        struct pt_access a = {.client = (struct sockaddr *)&c->peer,
                              .listener = (struct sockaddr *)&l->addr,
                              .mode = http ? "http" : c->port ? "stream" : "passthrough",
                              .result = "banned"};
        pt_worker_access(w, &a);
        pt_snap_unref(c->snap);
        free(c);
        pt_worker_reject_fd(fd);
        return;
    }
    pt_worker_listener_hold(l);
    pt_conn_open(w, &c->ct, from_trusted ? NULL : &c->peer, pass_kill, &c->dl, c, on_expired);
    c->handles = 1; /* the timer */
    side_init(c, &c->cli, fd);
    side_init(c, &c->srv, -1);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    pt_deadline_arm(&c->dl, c->snap->settings.hello_timeout_ms);
    if (from_trusted) {
        c->state = PASS_PROXY_HDR;
        if (start_reading(&c->cli) != 0)
            pass_close(c, false);
    } else if (l->kind == 's') {
        c->state = PASS_HELLO;
        first_read(c);
    } else {
        begin_hello(c);
    }
}

void pt_pass_accept(struct pt_listener *l, int fd, const struct sockaddr_storage *peer)
{
    accept_conn(l, fd, peer, false);
}

void pt_http80_accept(struct pt_listener *l, int fd, const struct sockaddr_storage *peer)
{
    accept_conn(l, fd, peer, true);
}

void pt_stream_accept(struct pt_listener *l, int fd, const struct sockaddr_storage *peer)
{
    accept_conn(l, fd, peer, false);
}
