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
 * Memory: while routing, a connection holds the bytes received so far (at
 * most PT_CLIENTHELLO_MAX + one read). Once relaying, reads land in one
 * per-worker buffer and are written straight on with send(2); only what
 * the peer's socket does not take at once is copied and held, and the side
 * it came from stops reading until it is written (backpressure). An idle
 * established connection therefore owns no I/O buffer at all.
 *
 * Bulk: once one read brings SPLICE_AFTER bytes or more, the connection
 * switches to splice(2) (worker/splice.h): a pipe per direction, the raw
 * sockets watched with uv_poll instead of libuv's reads, and the bytes stay
 * in the kernel. The rules are the same in both modes: a direction stops
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
#include "worker/httpproxy.h"
#include "worker/splice.h"
#include "worker/writer.h"

#include <errno.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#define READ_BUF (64 * 1024)
#define SPLICE_AFTER (32 * 1024) /* one read this large: a bulk transfer */
#define HELLO_BUF_MIN 2048

enum pass_state {
    PASS_PROXY_HDR = 0, /* reading a PROXY header from a trusted front */
    PASS_HELLO,         /* buffering until the ClientHello is complete */
    PASS_RESOLVE,       /* backend name lookup (uv_getaddrinfo) */
    PASS_CONNECT,       /* connecting to a server (c->dial) */
    PASS_RELAY,         /* bytes both ways */
    PASS_CLOSING,       /* handles closing; freed on the last close_cb */
};

struct side {
    /* The handle. The backend's is <own>; the client's is allocated on its
     * own, because it moves to the HTTP engine when the route says offload
     * (or on port 80): whoever holds it closes it and frees it in the close
     * callback. */
    uv_tcp_t *tcp;
    uv_tcp_t own;
    struct pass *c;
    bool init;        /* handle initialised (must be closed) */
    bool eof;         /* no more bytes will come from this side */
    bool shut;        /* we shut down our writing towards this side */
    bool reading;
    bool gone;        /* a read, write or shutdown failed: the peer reset it,
                         so its close sends nothing and needs no RST of ours */
    struct pt_writer out; /* bytes to this side (bound once its socket is
                             connected): what the socket did not take at once */
    uint64_t bytes;   /* bytes received from this side */
    int outq;         /* kernel send queue seen at the last idle check */
    struct spside *sp; /* owned: set once spliced (allocated then, so that
                          connections that never splice do not carry it) */
};

/* A side of a spliced connection. */
struct spside {
    uv_poll_t poll;             /* readiness of the side's socket; data: the side */
    int pmask;                  /* the events poll is started with; 0: stopped */
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
    unsigned handles; /* open handles and requests; freed at zero */
    uint64_t start_ms;
    const char *result; /* for the access log; set where the outcome is known */
    bool connected;     /* c->target holds the server we relay to */
    bool handed_off;    /* offload took the socket: log nothing here */
    bool spliced;       /* relaying with splice: cli.sp and srv.sp (their polls) are open */
    bool copy_only;     /* splicing could not start: no second try */
    struct pt_conntrack ct; /* in the worker's registry: bans cut it */
};

/* Per-worker read buffer: libuv calls alloc_cb then read_cb for one stream
 * at a time on this single thread, and read_cb consumes or copies it. */
static uint8_t read_buf[READ_BUF];
static uint8_t hello_scratch[PT_CLIENTHELLO_MAX];

static void relay_start(struct pass *c);
static const struct pt_dial_ops dial_ops;
static void start_reading(struct side *s);
static void stop_reading(struct side *s);
static void pass_close(struct pass *c, bool reset);

static struct pass *side_conn(uv_handle_t *h)
{
    return ((struct side *)h->data)->c;
}

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

static void on_side_closed(uv_handle_t *h)
{
    struct side *s = h->data;
    struct pass *c = s->c;
    /* The client's socket handle is freed here; a splice poll (also a
     * side's) lives in its spside. */
    if (s == &c->cli && h == (uv_handle_t *)s->tcp) {
        free(h);
        s->tcp = NULL;
        s->init = false;
    }
    release(c);
}

/* Bytes read from the peer and not yet written to <s>. */
static bool queued_to(const struct side *s)
{
    return pt_writer_queued(&s->out) > 0 || (s->sp && s->sp->pipe.len > 0);
}

static void close_side(struct side *s, bool reset)
{
    if (s->init)
        pt_conn_close_tcp(s->tcp, reset && !s->gone, on_side_closed);
}

static void pass_close(struct pass *c, bool reset)
{
    if (c->state == PASS_CLOSING)
        return;
    c->state = PASS_CLOSING;
    pt_dial_cancel(&c->dial);
    pt_conn_closing(&c->ct, &c->dl, on_timer_closed);
    if (c->spliced) {
        /* Before the sockets: a poll watches their descriptors. */
        uv_close((uv_handle_t *)&c->cli.sp->poll, on_side_closed);
        uv_close((uv_handle_t *)&c->srv.sp->poll, on_side_closed);
    }
    close_side(&c->cli, reset);
    close_side(&c->srv, reset);
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

/* Answers the client (a TLS alert) and closes once the bytes are written
 * (on_side_written). */
static void answer_and_close(struct pass *c, const void *data, size_t len)
{
    stop_reading(&c->cli);
    pt_deadline_stop(&c->dl);
    if (pt_writer_send(&c->cli.out, data, len, 0) == 1)
        c->handles++;
    else
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
    uv_os_fd_t fd;
    int q = 0;
    if (!queued_to(s) || uv_fileno((uv_handle_t *)s->tcp, &fd) != 0 ||
        ioctl(fd, SIOCOUTQ, &q) != 0)
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

static void alloc_hello(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct pass *c = side_conn(h);
    (void)hint;
    if (c->hcap - c->hlen < 512) {
        size_t cap = c->hcap ? c->hcap * 2 : HELLO_BUF_MIN;
        size_t max = PT_CLIENTHELLO_MAX + 512;
        if (cap > max)
            cap = max;
        c->hbuf = pt_xrealloc(c->hbuf, cap);
        c->hcap = cap;
    }
    *buf = uv_buf_init((char *)c->hbuf + c->hlen, (unsigned)(c->hcap - c->hlen));
}

/* Gives the connection to the HTTP engine (offload, or any port-80
 * connection) with the bytes read so far: the engine takes the client's
 * handle itself (no second descriptor, no second epoll registration), and
 * this connection lets go of it and ends without a log line (the engine
 * logs). The bans registry tracks the engine's connection from here on;
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
    stop_reading(&c->cli);
    uv_tcp_t *tcp = c->cli.tcp;
    c->cli.tcp = NULL;
    c->cli.init = false;
    c->handed_off = true;
    pt_httpproxy_start(c->l, tcp, &info);
    pass_close(c, false);
    release(c); /* the client handle's reference: the engine's now */
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
    /* A client that is being read (its hello came in parts) keeps being read
     * while the backend connects (what comes is buffered and replayed):
     * stopping and restarting costs epoll_ctl calls on every connection. */
    pt_dial_start(&c->dial, &dial_ops, c->w->loop, &c->w->health, c->be->servers, c->be->n_servers);
}

/* The buffered bytes so far (on_client_read added the last read). */
static void handle_hello(struct pass *c)
{
    struct pt_clienthello ch;
    int rc = pt_clienthello_parse(c->hbuf, c->hlen, hello_scratch, &ch);
    if (rc == PT_ENEEDMORE) {
        if (c->hlen >= PT_CLIENTHELLO_MAX)
            pass_close(c, false);
        else
            start_reading(&c->cli); /* (after first_read: not yet) */
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
    start_reading(&c->cli);
}

static void on_proxy_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct pass *c = side_conn((uv_handle_t *)st);
    (void)buf;
    if (n == 0)
        return;
    if (n < 0) {
        pass_close(c, n != UV_EOF);
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

/* ---- backend connection -------------------------------------------------- */

static struct pass *dial_conn(struct pt_dial *d)
{
    return PT_CONTAINER_OF(d, struct pass, dial);
}

static uv_tcp_t *dial_attempt(struct pt_dial *d)
{
    struct pass *c = dial_conn(d);
    struct side *s = &c->srv;
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->tcp = &s->own;
    uv_tcp_init(c->w->loop, s->tcp);
    s->tcp->data = s;
    s->init = true;
    c->handles++;
    c->state = PASS_CONNECT;
    pt_deadline_arm(&c->dl, c->snap->settings.connect_timeout_ms);
    return s->tcp;
}

/* The backend's reads start with its connect: see pt_dial_ops.connecting. */
static void dial_connecting(struct pt_dial *d)
{
    start_reading(&dial_conn(d)->srv);
}

static void dial_connected(struct pt_dial *d)
{
    relay_start(dial_conn(d));
}

/* A failed attempt closes the server handle; its close callback moves on. */
static void on_srv_failed_closed(uv_handle_t *h)
{
    struct pass *c = side_conn(h);
    c->srv.init = false;
    if (c->state == PASS_CONNECT)
        pt_dial_next(&c->dial);
    release(c);
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
    .attempt = dial_attempt,
    .connected = dial_connected,
    .attempt_closed = on_srv_failed_closed,
    .exhausted = dial_exhausted,
    .hold = dial_hold,
    .connecting = dial_connecting,
};

/* ---- relay ---------------------------------------------------------------- */

static void alloc_relay(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

static void on_relay_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
static void splice_begin(struct pass *c);

static bool socket_error(uv_tcp_t *t)
{
    uv_os_fd_t fd;
    int err = 0;
    socklen_t len = sizeof(err);
    if (uv_fileno((uv_handle_t *)t, &fd) != 0)
        return false;
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0;
}

static int side_fd(struct side *s)
{
    uv_os_fd_t fd = -1;
    uv_fileno((uv_handle_t *)s->tcp, &fd);
    return fd;
}

static struct side *peer_of(struct pass *c, struct side *s)
{
    return s == &c->cli ? &c->srv : &c->cli;
}

/* The client is read through one pair of callbacks whatever the state, so
 * it is started once and stopped only for backpressure or an answer. */
static void alloc_client(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    if (side_conn(h)->state == PASS_RELAY)
        alloc_relay(h, hint, buf);
    else
        alloc_hello(h, hint, buf);
}

/* Bytes that come while the backend connects: kept for the replay. */
static void on_early_read(struct pass *c, ssize_t n)
{
    if (n == UV_EOF) {
        c->cli.eof = true; /* passed on once the buffered bytes are out */
        stop_reading(&c->cli);
        return;
    }
    if (n < 0) {
        pass_close(c, true);
        return;
    }
    c->hlen += (size_t)n;
    c->cli.bytes += (uint64_t)n;
    if (c->hcap - c->hlen < 512)
        stop_reading(&c->cli); /* full: the kernel holds the rest for now */
}

static void on_client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct pass *c = side_conn((uv_handle_t *)st);
    if (n == 0)
        return;
    switch (c->state) {
    case PASS_PROXY_HDR:
        on_proxy_read(st, n, buf);
        break;
    case PASS_HELLO:
        if (n < 0) {
            pass_close(c, n != UV_EOF);
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
        on_relay_read(st, n, buf);
        break;
    case PASS_CLOSING:
        break;
    }
}

static void start_reading(struct side *s)
{
    if (s->reading || s->eof || !s->init || uv_is_closing((uv_handle_t *)s->tcp))
        return;
    bool cli = s == &s->c->cli;
    if (uv_read_start((uv_stream_t *)s->tcp, cli ? alloc_client : alloc_relay,
                      cli ? on_client_read : on_relay_read) == 0)
        s->reading = true;
}

static void stop_reading(struct side *s)
{
    if (!s->reading)
        return;
    uv_read_stop((uv_stream_t *)s->tcp);
    s->reading = false;
}

static void maybe_done(struct pass *c)
{
    /* Both directions finished: each side sent EOF and got our FIN. */
    if (c->cli.eof && c->srv.eof && c->cli.shut && c->srv.shut && !pt_writer_queued(&c->cli.out) &&
        !pt_writer_queued(&c->srv.out))
        pass_close(c, false);
}

/* Passes the EOF of <from> on to its peer once everything before it is
 * written: a half-close, so the peer may still answer. */
static void forward_eof(struct pass *c, struct side *to)
{
    if (to->shut || pt_writer_queued(&to->out))
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

/* A queued write to <to> is out: relaying, the side it came from reads
 * again (or its EOF follows); an answer before relaying is out, so the
 * connection closes. */
static void on_side_written(struct pt_writer *wr, int status, size_t tag)
{
    struct side *to = wr->data;
    struct pass *c = to->c;
    (void)tag;
    if (c->state == PASS_RELAY) {
        struct side *from = peer_of(c, to);
        /* Bytes drained to a slow reader are activity too. */
        pt_deadline_arm(&c->dl, idle_ms(c));
        if (status != 0) {
            to->gone = true;
            pass_close(c, true);
        } else if (from->eof)
            forward_eof(c, to);
        else
            start_reading(from);
    } else {
        pass_close(c, false);
    }
    release(c);
}

/* Writes <data> to <to>; while some of it waits, <from> stops reading. */
static int relay_write(struct pass *c, struct side *from, struct side *to,
                       const uint8_t *data, size_t n)
{
    int rc = pt_writer_send(&to->out, data, n, 0);
    if (rc == 1) {
        c->handles++;
        stop_reading(from);
        rc = 0;
    }
    return rc;
}

static void on_relay_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct side *from = st->data;
    struct pass *c = from->c;
    struct side *to = peer_of(c, from);
    if (n == 0)
        return;
    if (n == UV_EOF && buf->base == NULL && socket_error(from->tcp)) {
        /* libuv 1.44 reports EOF on a hang-up after a partial read without
         * reading again, so a pending reset would pass on as a clean FIN.
         * That EOF comes with no buffer; one that read(2) returned (0: the
         * peer's FIN) comes with the read buffer and needs no second look. */
        n = UV_ECONNRESET;
    }
    if (n == UV_EOF) {
        from->eof = true;
        stop_reading(from);
        forward_eof(c, to);
        maybe_done(c);
        return;
    }
    if (n < 0) {
        c->result = from == &c->cli ? "client_reset" : "server_reset";
        from->gone = true;
        pass_close(c, true);
        return;
    }
    from->bytes += (uint64_t)n;
    pt_deadline_arm(&c->dl, idle_ms(c));
    if (relay_write(c, from, to, (const uint8_t *)buf->base, (size_t)n) != 0) {
        to->gone = true;
        pass_close(c, true);
    }
    else if ((size_t)n >= SPLICE_AFTER)
        splice_begin(c);
}

/* ---- splice (bulk) ---------------------------------------------------------- */

/* Moves bytes from <from> through to's pipe into <to> until neither moves
 * (bounded, so one busy connection does not hold the loop). Returns 0 or a
 * negative errno: the connection is cut (c->result set for a reading side). */
static int pump(struct pass *c, struct side *from, struct side *to, bool *moved)
{
    struct spside *t = to->sp;
    for (int round = 0; round < 8; round++) {
        bool progress = false;
        if (t->pipe.len) {
            ssize_t n = pt_splice_out(&t->pipe, side_fd(to));
            if (n < 0 && n != -EAGAIN)
                return (int)n;
            if (n > 0)
                progress = true, t->pipe_full = false;
        }
        if (t->pipe.len >= t->pipe.cap)
            t->pipe_full = true; /* (splice would read 0 bytes: no EOF) */
        if (!from->eof && !t->pipe_full) {
            ssize_t n = pt_splice_in(side_fd(from), &t->pipe);
            if (n > 0) {
                progress = true;
                from->bytes += (uint64_t)n;
            } else if (n == 0 || n == -EAGAIN) {
                /* EAGAIN with bytes in the pipe: it may be out of room
                 * (pages, not bytes); it is read again once they leave. */
                if (n == -EAGAIN)
                    t->pipe_full = t->pipe.len > 0;
                else if (socket_error(from->tcp)) /* see on_relay_read */
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
            break;
    }
    return 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void set_poll(struct side *s, int mask)
{
    if (mask == s->sp->pmask)
        return;
    s->sp->pmask = mask;
    if (mask == 0)
        uv_poll_stop(&s->sp->poll);
    else
        uv_poll_start(&s->sp->poll, mask, on_poll);
}

/* Moves what can move in the directions that <ready> sides allow (a side
 * that can be read feeds its peer, one that can be written drains its
 * pipe), passes EOFs on, and watches what the connection waits for next. */
static void splice_step(struct pass *c, bool cli_to_srv, bool srv_to_cli)
{
    bool moved = false;
    if ((cli_to_srv && pump(c, &c->cli, &c->srv, &moved) != 0) ||
        (srv_to_cli && pump(c, &c->srv, &c->cli, &moved) != 0)) {
        pass_close(c, true);
        return;
    }
    if (moved)
        pt_deadline_arm(&c->dl, c->snap->settings.idle_timeout_ms);
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
    for (struct side *s = &c->cli; s; s = s == &c->cli ? &c->srv : NULL) {
        struct side *peer = peer_of(c, s);
        int mask = (!s->eof && !peer->sp->pipe_full ? UV_READABLE : 0) |
                   (s->sp->pipe.len ? UV_WRITABLE : 0);
        set_poll(s, mask);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct side *s = h->data;
    struct pass *c = s->c;
    if (c->state == PASS_CLOSING)
        return;
    if (status < 0) {
        /* An error on the socket (an RST came): passed on as an RST. */
        c->result = s == &c->cli ? "client_reset" : "server_reset";
        pass_close(c, true);
        return;
    }
    /* Readable: this side feeds its peer; writable: its pipe drains (and
     * the peer, stopped while the pipe was full, is read again). */
    bool from_s = events & UV_READABLE, to_s = events & UV_WRITABLE;
    if (s == &c->cli)
        splice_step(c, from_s, to_s);
    else
        splice_step(c, to_s, from_s);
}

/* Takes the connection off libuv's reads and writes onto splice. Only
 * between two transfers: nothing queued, nothing half-closed, so no libuv
 * request is left on the sockets that the polls now watch. */
static void splice_begin(struct pass *c)
{
    if (c->copy_only || c->spliced || c->state != PASS_RELAY || queued_to(&c->cli) ||
        queued_to(&c->srv) || c->cli.eof || c->srv.eof || c->cli.shut || c->srv.shut)
        return;
    struct spside *sp[2] = {pt_xcalloc(1, sizeof(struct spside)),
                            pt_xcalloc(1, sizeof(struct spside))};
    sp[0]->pipe.rd = sp[0]->pipe.wr = sp[1]->pipe.rd = sp[1]->pipe.wr = -1;
    if (pt_splice_take(&sp[0]->pipe) != 0 || pt_splice_take(&sp[1]->pipe) != 0) {
        /* Out of descriptors: this connection keeps copying. */
        pt_splice_give(&sp[0]->pipe);
        free(sp[0]);
        free(sp[1]);
        c->copy_only = true;
        return;
    }
    stop_reading(&c->cli);
    stop_reading(&c->srv);
    struct side *sides[2] = {&c->cli, &c->srv};
    for (int i = 0; i < 2; i++) {
        sides[i]->sp = sp[i];
        /* Cannot fail: libuv watches the descriptor no more once reading
         * stopped with no write queued. */
        int rc = uv_poll_init_socket(c->w->loop, &sp[i]->poll, side_fd(sides[i]));
        PT_ASSERT(rc == 0);
        sp[i]->poll.data = sides[i];
        c->handles++;
    }
    c->spliced = true;
    splice_step(c, true, true);
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
        int tlen = sizeof(c->target);
        c->connected =
            uv_tcp_getpeername(c->srv.tcp, (struct sockaddr *)&c->target, &tlen) == 0;
    }
    uv_tcp_nodelay(c->srv.tcp, 1);
    pt_writer_init(&c->srv.out, (uv_stream_t *)c->srv.tcp, on_side_written, &c->srv);
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
    int rc = relay_write(c, &c->cli, &c->srv, first, total);
    free(first);
    if (rc != 0) {
        pass_close(c, true);
        return;
    }
    if (c->cli.eof)
        forward_eof(c, &c->srv); /* the client finished while we connected */
    start_reading(&c->srv);
    if (!pt_writer_queued(&c->srv.out))
        start_reading(&c->cli);
}

/* ---- accept ---------------------------------------------------------------- */

/* A TLS listener's connection comes with its hello (deferred accept,
 * PT_WORKER_DEFER_ACCEPT_S): read it now, without an epoll round first.
 * Routed to a passthrough backend, the client is then not read (nor
 * registered with epoll) before the relay starts. */
static void first_read(struct pass *c)
{
    uv_buf_t b;
    ssize_t n;
    alloc_hello((uv_handle_t *)c->cli.tcp, 0, &b);
    do
        n = recv(side_fd(&c->cli), b.base, b.len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        /* Handed over without a byte: the client has been silent for the
         * whole deferral, which counts against its hello timeout (a SYN
         * cookie's connection comes at once: its deadline is that short). */
        uint32_t t = c->snap->settings.hello_timeout_ms;
        uint32_t waited = PT_WORKER_DEFER_ACCEPT_S * 1000u;
        pt_deadline_arm(&c->dl, t > waited ? t - waited : 0);
        start_reading(&c->cli);
        return;
    }
    on_client_read((uv_stream_t *)c->cli.tcp,
                   n > 0 ? n : n == 0 ? UV_EOF : uv_translate_sys_error(errno), &b);
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

    c->cli.c = c;
    c->srv.c = c;
    c->cli.tcp = pt_xmalloc(sizeof(*c->cli.tcp));
    c->srv.tcp = &c->srv.own;
    uv_tcp_init(w->loop, c->cli.tcp);
    c->cli.tcp->data = &c->cli;
    c->handles = 2;
    if (uv_tcp_open(c->cli.tcp, fd) != 0) {
        close(fd);
        c->cli.init = true;
        pass_close(c, false);
        return;
    }
    c->cli.init = true;
    uv_tcp_nodelay(c->cli.tcp, 1);
    pt_writer_init(&c->cli.out, (uv_stream_t *)c->cli.tcp, on_side_written, &c->cli);
    pt_deadline_arm(&c->dl, c->snap->settings.hello_timeout_ms);
    if (from_trusted) {
        c->state = PASS_PROXY_HDR;
        start_reading(&c->cli);
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
