/* The HTTP/1.1 proxy engine, for TLS offload (the --https listeners, after
 * worker/passthrough.c peeked an offload domain's SNI) and for port 80 (the
 * --http listeners, from the first byte).
 *
 * The client transport is TLS over the connection's own buffers (worker/tls.c
 * pt_tls_io) or the plain socket; both stay non-blocking libuv streams, and
 * everything above the transport is the same: request heads checked by
 * common/http1.c (framing, smuggling shapes) and matched against the route
 * (TLS: the SNI's route, 421 otherwise; port 80: ACME HTTP-01 answers, 301 to
 * https for offload domains, proxy to a passthrough backend's http_servers),
 * rewritten with X-Forwarded-* (a client that is not a --trusted-proxy cannot
 * choose them); response heads get the domain's response_headers and HSTS
 * (TLS only). Bodies are never buffered whole: they are framed as they come
 * and forwarded. Keep-alive on both sides: the backend connection is reused
 * by the next request of the same client connection when it goes to the same
 * servers, and parked in a per-worker pool for other client connections when
 * this one ends, but only after a complete, well-framed exchange. Upgrade
 * (WebSocket) turns the connection into a tunnel only after the backend's 101
 * to a request that asked for it.
 *
 * Memory per connection is bounded whatever the peers do: the client is
 * not read while a request waits for its response once one head's worth of
 * pipelined bytes is held (IN_MAX), and one side is not read while more than
 * QUEUE_HIGH bytes wait to be written to the other. */
#include "worker/httpproxy.h"

#include "common/addr.h"
#include "common/clienthello.h"
#include "common/dname.h"
#include "common/h1body.h"
#include "common/http1.h"
#include "worker/conn.h"
#include "worker/h2.h"
#include "worker/upconn.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <strings.h>
#include <unistd.h>

#define QUEUE_HIGH (256 * 1024) /* stop reading the other side above this */
/* Client bytes held unforwarded (while the backend connects, or pipelined
 * behind a request that waits for its response): one full head, and the
 * read that crossed the mark (a TLS read yields up to 64 KiB plaintext). */
#define IN_MAX PT_HTTP_HEAD_MAX

enum hc_state {
    HC_HANDSHAKE = 0, /* TLS handshake with the client */
    HC_HEAD,          /* waiting for a request head (first, or keep-alive) */
    HC_REQUEST,       /* a request is in flight: body and/or response */
    HC_TUNNEL,        /* after 101 Switching Protocols: bytes both ways */
    HC_H2,            /* ALPN chose h2: worker/h2.c speaks over this connection */
    HC_CLOSING,       /* handles closing; freed on the last callback */
};

/* Where the request in flight is (HC_REQUEST). */
enum req_phase {
    REQ_BODY = 0, /* its body is being read and forwarded */
    REQ_DONE,     /* complete (head and body) as framed */
};

/* Where its response is. */
enum resp_phase {
    RESP_HEAD = 0, /* waiting for the response head (interim ones pass) */
    RESP_BODY,     /* the body is being framed and forwarded */
    RESP_DONE,     /* complete as framed */
};

/* The backend connection (c->up). */
enum up_state {
    UP_NONE = 0, /* none: c->up holds no handle */
    UP_DIALING,  /* c->dial is trying the servers (lookup or connect) */
    UP_BUSY,     /* connected, carrying the request in flight */
    UP_IDLE,     /* its last exchange was complete and well framed: it may
                    carry the next request, or go to the pool */
    UP_CLOSING,  /* its handle is closing; c->up is free in the close callback */
};

struct stream {
    /* The handle: the backend's is <own>; the client's came from the front
     * stage (worker/passthrough.c), allocated on its own, and is freed in
     * its close callback here. */
    uv_tcp_t *tcp;
    uv_tcp_t own;
    struct hconn *c;
    bool init;       /* handle initialised: must be closed */
    bool eof;        /* peer finished sending */
    bool reading;
    SSL *ssl;        /* NULL for a plain backend */
    BIO *rbio, *wbio;
    bool hs_done;
    size_t queued;   /* bytes handed to uv_write and not yet written */
    struct pt_wbuf pend; /* plaintext waiting for the backend's TLS handshake */
};

struct hconn {
    struct pt_worker *w;
    struct pt_listener *l;
    struct pt_snapshot *snap; /* reference */
    enum hc_state state;
    bool tls;          /* offload (TLS with the client); false: port 80 */
    bool trusted;      /* the socket's peer is a --trusted-proxy */
    struct stream cli, up;
    struct pt_tls_io cio; /* the client's TLS transport (offload) */
    struct sockaddr_storage peer, target;
    char *sni; /* owned, sni_len bytes and a NUL ("" without SNI) */
    size_t sni_len;
    int sni_route;

    uint8_t *in; /* client plaintext not yet consumed */
    size_t in_len, in_cap;

    /* The request in flight. */
    const struct pt_domain *dom;
    const struct pt_backend *be; /* backend up is connected to, if any */
    const struct pt_hostport *servers; /* be's list for this kind (borrowed) */
    size_t n_servers;
    bool up_tls;       /* speak TLS to the backend */
    enum req_phase req;
    bool req_keep_alive, req_is_head, req_upgrade;
    struct pt_h1body reqb; /* the request body's framing */
    bool req_trailers;     /* trailer fields were sent on */
    char host[PT_DNAME_MAX + 1];

    /* Its response. */
    enum resp_phase resp;
    bool resp_close;      /* the backend connection ends with this response */
    struct pt_h1body respb; /* the response body's framing */
    bool resp_trailers;   /* trailer fields were sent on */
    int status;
    struct pt_wbuf rin; /* backend plaintext until the response head is whole */
    bool rhead_pending;   /* rhead not sent yet: it leaves in one TLS record
                             with the first body bytes */
    struct pt_wbuf qhead; /* the rewritten request head, until the backend
                             connection it waits for is up */

    bool close_after_flush;
    enum up_state ups;
    char up_key[PT_UPCONN_KEY_MAX]; /* c->up's pool key, set when it connects */
    bool up_reused;     /* the backend connection served an earlier request */
    bool req_retryable; /* idempotent and bodiless: may be sent again */
    struct pt_wbuf retry_head; /* the head sent on a reused connection, kept
                                  until the response starts */
    struct pt_deadline dl;     /* wakes at the earlier of the two below */
    uint64_t deadline_ms;      /* the state's timeout, moved by activity */
    uint64_t send_deadline_ms; /* while a response waits for the client to take
                                  it: --send-timeout after the last write
                                  progress; 0 when nothing is queued */
    struct pt_dial dial; /* reaching one of servers; dial.ix: the server in use */
    unsigned handles;
    uint64_t start_ms, req_start_ms, bytes_in, bytes_out;
    unsigned requests;
    const char *result;
    struct pt_conntrack ct; /* in the worker's registry: bans cut it */
    struct pt_h2 *h2;       /* HC_H2: the session (owned) */
};

struct wreq {
    uv_write_t req;
    struct stream *s;
    size_t len;
    uint8_t data[];
};

static uint8_t read_buf[64 * 1024];

static void hc_close(struct hconn *c);
static void process_client(struct hconn *c);
static void feed_response(struct hconn *c, const uint8_t *p, size_t n);
static void start_reading(struct stream *s);
static void send_plain(struct stream *s, const void *p, size_t n);
static void send_head_now(struct hconn *c);
static void response_done(struct hconn *c);

/* ---- lifetime ------------------------------------------------------------ */

/* The backend connection is up (and c->target says where). */
static bool up_open(const struct hconn *c)
{
    return c->ups == UP_BUSY || c->ups == UP_IDLE;
}

/* The three digits of an HTTP status (100..999 as the framers check it),
 * NUL-terminated: formatted for every request, so not with snprintf. */
static void status_digits(int status, char out[4])
{
    unsigned v = status >= 100 && status <= 999 ? (unsigned)status : 999;
    out[0] = (char)('0' + v / 100);
    out[1] = (char)('0' + v / 10 % 10);
    out[2] = (char)('0' + v % 10);
    out[3] = '\0';
}

static void log_request(struct hconn *c, const char *result)
{
    char st[4];
    if (result == NULL) {
        status_digits(c->status, st);
        result = st;
    }
    struct pt_access a = {
        .client = (struct sockaddr *)&c->peer,
        .listener = (struct sockaddr *)&c->l->addr,
        .sni = c->sni,
        .sni_len = c->sni_len,
        .route = c->dom ? c->dom->name : NULL,
        .mode = c->tls ? "offload" : "http",
        .proto = c->h2 ? "h2" : c->requests ? "h1" : NULL,
        .backend = c->be ? c->be->name : NULL,
        .server = up_open(c) ? (struct sockaddr *)&c->target : NULL,
        .bytes_in = c->bytes_in,
        .bytes_out = c->bytes_out,
        .duration_ms = pt_worker_now_ms(c->w) - c->req_start_ms,
        .result = result,
    };
    pt_worker_access(c->w, &a);
}

static void release(struct hconn *c)
{
    if (--c->handles > 0)
        return;
    if (c->result)
        log_request(c, c->result);
    pt_h2_free(c->h2); /* here: its callbacks may be what closed the connection */
    SSL_free(c->cli.ssl);
    SSL_free(c->up.ssl);
    pt_wbuf_free(&c->cli.pend);
    pt_wbuf_free(&c->up.pend);
    pt_wbuf_free(&c->rin);
    pt_wbuf_free(&c->qhead);
    pt_wbuf_free(&c->retry_head);
    pt_h1body_release(&c->reqb);
    pt_h1body_release(&c->respb);
    free(c->in);
    free(c->sni);
    pt_tls_io_free(&c->cio);
    pt_conntrack_remove(&c->w->tracked, &c->ct);
    pt_snap_unref(c->snap);
    struct pt_worker *w = c->w;
    free(c);
    pt_worker_conn_closed(w);
}

static void on_closed(uv_handle_t *h)
{
    release(h->data);
}

static void start_upstream(struct hconn *c);

static void on_stream_closed(uv_handle_t *h)
{
    struct stream *s = h->data;
    struct hconn *c = s->c;
    if (s == &c->up) {
        /* Only now may the stream's memory hold a new connection: a head
         * that waits for one (a request that could not reuse this one, or
         * a retry) dials now. */
        s->init = false;
        c->ups = UP_NONE;
        if (c->state == HC_REQUEST && c->qhead.len)
            start_upstream(c);
    } else {
        free(h);
        s->tcp = NULL;
        s->init = false;
    }
    release(c);
}

static void close_stream(struct stream *s)
{
    if (!s->init || uv_is_closing((uv_handle_t *)s->tcp))
        return;
    if (s == &s->c->up)
        s->c->ups = UP_CLOSING;
    uv_close((uv_handle_t *)s->tcp, on_stream_closed);
}

/* Sends a request head to the backend. On a reused connection an
 * idempotent, bodiless request keeps a copy: the backend may have closed
 * that connection just as we sent (the keep-alive race), and the request
 * then goes once more on another connection instead of failing with 502. */
static void send_head(struct hconn *c, struct pt_wbuf *head)
{
    send_plain(&c->up, head->data, head->len);
    pt_wbuf_free(&c->retry_head);
    if (c->up_reused && c->req_retryable) {
        c->retry_head = *head;
        memset(head, 0, sizeof(*head));
    } else {
        pt_wbuf_free(head);
    }
}

/* ---- backend connection pool ---------------------------------------------
 * worker/upconn.c keeps the worker's idle backend connections (shared with
 * the h2 streams); a connection parks between two exchanges only. */

/* The name a TLS connection to server <ix> sends as SNI and verifies: the
 * server's DNS name, or for an IP server the request's host. */
static const char *tls_name(const struct hconn *c, size_t ix)
{
    const struct pt_hostport *hp = &c->servers[ix];
    return hp->kind == PT_HOST_DNS ? hp->host : c->host;
}

static void pool_key(const struct hconn *c, size_t ix, char key[PT_UPCONN_KEY_MAX])
{
    pt_upconn_key(&c->servers[ix], c->up_tls, c->be->tls_verify, tls_name(c, ix), key);
}

static void pool_put(struct hconn *c)
{
    struct stream *s = &c->up;
    uv_os_fd_t fd;
    uint64_t now = pt_worker_now_ms(c->w);
    if (c->ups != UP_IDLE || s->eof || s->queued || uv_is_closing((uv_handle_t *)s->tcp) ||
        uv_fileno((uv_handle_t *)s->tcp, &fd) != 0)
        return;
    /* A TLS connection parks between two records only. */
    if (s->ssl && (!s->hs_done || s->pend.len || SSL_pending(s->ssl) ||
                   BIO_ctrl_pending(s->rbio) || BIO_ctrl_pending(s->wbio)))
        return;
    if (pt_upconn_pool_park(fd, s->ssl, c->up_key, now))
        s->ssl = NULL; /* the pool's now */
}

static void hc_close(struct hconn *c)
{
    if (c->state == HC_CLOSING)
        return;
    pool_put(c);
    c->state = HC_CLOSING;
    c->ct.addr = NULL; /* going away: a ban has nothing left to cut */
    pt_dial_cancel(&c->dial);
    pt_deadline_stop(&c->dl);
    uv_close((uv_handle_t *)&c->dl.timer, on_closed);
    close_stream(&c->cli);
    close_stream(&c->up);
}

/* A ban came for the client: an RST, not a TLS close_notify, as a firewall
 * would do it. */
static void hc_kill(struct pt_conntrack *ct)
{
    struct hconn *c = PT_CONNTRACK_OWNER(ct, struct hconn, ct);
    if (c->state == HC_CLOSING)
        return;
    c->result = "banned";
    if (c->cli.init && !uv_is_closing((uv_handle_t *)c->cli.tcp))
        uv_tcp_close_reset(c->cli.tcp, on_stream_closed);
    hc_close(c);
}

static void schedule(struct hconn *c)
{
    uint64_t at = c->deadline_ms;
    if (c->send_deadline_ms && c->send_deadline_ms < at)
        at = c->send_deadline_ms;
    pt_deadline_set(&c->dl, at);
}

static void arm(struct hconn *c, uint32_t ms)
{
    c->deadline_ms = pt_worker_now_ms(c->w) + ms;
    schedule(c);
}

static uint32_t body_timeout(const struct hconn *c)
{
    const struct pt_settings *st = &c->snap->settings;
    return st->body_timeout_ms < st->idle_timeout_ms ? st->body_timeout_ms : st->idle_timeout_ms;
}

/* Write progress towards <s> (or its start): a client that has a response
 * queued must take some of it within --send-timeout. */
static void send_progress(struct hconn *c, struct stream *s)
{
    if (s != &c->cli)
        return;
    c->send_deadline_ms =
        s->queued ? pt_worker_now_ms(c->w) + c->snap->settings.send_timeout_ms : 0;
    schedule(c);
}

/* ---- writing ---------------------------------------------------------------- */

static void on_drained(struct hconn *c, struct stream *s);

static void on_written(uv_write_t *req, int status)
{
    struct wreq *wr = (struct wreq *)req;
    struct stream *s = wr->s;
    struct hconn *c = s->c;
    s->queued -= wr->len;
    free(wr);
    if (c->state != HC_CLOSING) {
        send_progress(c, s);
        if (status != 0)
            hc_close(c);
        else
            on_drained(c, s);
    }
    release(c);
}

/* Writes <n> raw bytes to the socket of <s>: what the kernel takes at once
 * costs nothing more, the rest is copied and queued. */
static void raw_write(struct stream *s, const uint8_t *p, size_t n)
{
    struct hconn *c = s->c;
    if (n == 0 || c->state == HC_CLOSING)
        return;
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
    int done = s->queued ? 0 : uv_try_write((uv_stream_t *)s->tcp, &b, 1);
    if (done == UV_EAGAIN || done == UV_ENOSYS)
        done = 0;
    if (done < 0) {
        hc_close(c);
        return;
    }
    if ((size_t)done == n)
        return;
    size_t rest = n - (size_t)done;
    struct wreq *wr = pt_xmalloc(sizeof(*wr) + rest);
    wr->s = s;
    wr->len = rest;
    memcpy(wr->data, p + done, rest);
    b = uv_buf_init((char *)wr->data, (unsigned)rest);
    c->handles++;
    if (uv_write(&wr->req, (uv_stream_t *)s->tcp, &b, 1, on_written) != 0) {
        c->handles--;
        free(wr);
        hc_close(c);
        return;
    }
    s->queued += rest;
    if (s->queued == rest)
        send_progress(c, s);
}

/* A client connection waiting for its next request keeps no TLS I/O
 * buffer (OpenSSL's own record buffers go with SSL_MODE_RELEASE_BUFFERS):
 * most open connections are idle ones. */
static void shed_idle_tls(struct hconn *c)
{
    if (c->cli.ssl && c->state == HC_HEAD && c->in_len == 0)
        pt_wbuf_free(&c->cio.out);
}

/* Moves whatever OpenSSL produced (records, alerts) to the socket: all
 * pending records in one write, straight from where they gathered;
 * raw_write copies whatever the socket does not take at once. */
static void flush_tls(struct stream *s)
{
    struct hconn *c = s->c;
    if (s == &c->cli) {
        struct pt_wbuf *out = &c->cio.out;
        size_t n = out->len;
        out->len = 0; /* before the write: a failing one may close (and flush) */
        raw_write(s, out->data, n);
        shed_idle_tls(c);
        return;
    }
    char *p = NULL;
    long n = s->wbio ? BIO_get_mem_data(s->wbio, &p) : 0;
    if (n > 0) {
        raw_write(s, (const uint8_t *)p, (size_t)n);
        BIO_reset(s->wbio);
    }
}

/* Queues plaintext for <s>, through TLS when it has it; TLS records stay in
 * the BIO until flush_tls, so a response head and its first body bytes
 * leave in one write. */
static void send_plain_nf(struct stream *s, const void *p, size_t n)
{
    if (n == 0 || s->c->state == HC_CLOSING)
        return;
    if (s == &s->c->cli)
        s->c->bytes_out += n;
    if (s->ssl == NULL) {
        raw_write(s, p, n);
        return;
    }
    if (!s->hs_done) {
        pt_wbuf_put(&s->pend, p, n);
        return;
    }
    size_t off = 0;
    while (off < n) {
        int w = SSL_write(s->ssl, (const uint8_t *)p + off, (int)(n - off));
        if (w <= 0) {
            hc_close(s->c);
            return;
        }
        off += (size_t)w;
    }
}

/* Sends plaintext to <s> now, with anything queued before it. */
static void send_plain(struct stream *s, const void *p, size_t n)
{
    send_plain_nf(s, p, n);
    if (s->ssl && s->hs_done && s->c->state != HC_CLOSING)
        flush_tls(s);
}

static void stop_reading(struct stream *s)
{
    if (s->reading) {
        uv_read_stop((uv_stream_t *)s->tcp);
        s->reading = false;
    }
}

static void graceful_close(struct hconn *c)
{
    if (c->cli.ssl && c->cli.hs_done && !c->cli.eof) {
        SSL_shutdown(c->cli.ssl); /* close_notify, so the client sees a clean end */
        flush_tls(&c->cli);
    }
    if (c->cli.queued == 0)
        hc_close(c);
    else
        c->close_after_flush = true;
}

/* A small response given here, then close. <why>: the access log's result
 * (NULL: the status); <extra>: header lines ending in CRLF, or NULL;
 * <body>: NULL for a page naming the status. */
static void answer_page(struct hconn *c, int status, const char *why, const char *extra,
                        const char *type, const char *body)
{
    char page[200];
    struct pt_wbuf b = {0};
    if (body == NULL) {
        snprintf(page, sizeof(page), "<html><body><h1>%d %s</h1></body></html>\n", status,
                 pt_http1_reason(status));
        body = page;
    }
    pt_http1_write_response(&b, status, extra, type, body, strlen(body));
    c->status = status;
    send_plain(&c->cli, b.data, b.len);
    pt_wbuf_free(&b);
    log_request(c, why);
    c->result = NULL;
    stop_reading(&c->cli);
    graceful_close(c);
}

static void answer(struct hconn *c, int status)
{
    answer_page(c, status, NULL, NULL, "text/html", NULL);
}

/* Reads the client only while what it sent can go somewhere: not once
 * IN_MAX of its bytes wait unforwarded (a pipelined request behind one that
 * waits for its response, or a body while the backend connects), nor while
 * more than QUEUE_HIGH bytes wait for the backend (resumed below half). */
static void pace_client(struct hconn *c)
{
    if (c->state == HC_CLOSING)
        return;
    size_t backlog = c->up.queued + c->up.pend.len;
    if (c->in_len >= IN_MAX || backlog > QUEUE_HIGH || c->close_after_flush)
        stop_reading(&c->cli);
    else if (backlog < QUEUE_HIGH / 2)
        start_reading(&c->cli);
}

static void on_drained(struct hconn *c, struct stream *s)
{
    if (s == &c->cli) {
        if (c->close_after_flush && s->queued == 0) {
            hc_close(c);
            return;
        }
        if (c->state == HC_H2) {
            if (pt_h2_output(c->h2) < 0)
                graceful_close(c);
            return;
        }
        if (s->queued < QUEUE_HIGH / 2 && up_open(c))
            start_reading(&c->up);
    } else {
        /* A backend that takes the body slowly is no slow client. */
        if (c->state == HC_REQUEST && c->req != REQ_DONE)
            arm(c, body_timeout(c));
        pace_client(c);
    }
}

/* ---- reading -------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

static void h2_send(void *ctx, const uint8_t *p, size_t n)
{
    struct hconn *c = ctx;
    send_plain(&c->cli, p, n);
}

static size_t h2_queued(void *ctx)
{
    struct hconn *c = ctx;
    return c->cli.queued;
}

/* The client's handshake is done: HTTP/1.1 requests, or an HTTP/2 session
 * when ALPN chose h2 (its frames are the next plaintext). */
static void handshake_done(struct hconn *c)
{
    if (!pt_tls_is_h2(c->cli.ssl)) {
        c->state = HC_HEAD;
        arm(c, c->snap->settings.hello_timeout_ms);
        return;
    }
    struct pt_h2_host host = {
        .w = c->w, .l = c->l, .snap = c->snap, .route = c->sni_route, .peer = &c->peer,
        .trusted = c->trusted, .sni = c->sni, .sni_len = c->sni_len, .ctx = c,
        .send = h2_send, .queued = h2_queued,
    };
    c->state = HC_H2;
    c->h2 = pt_h2_new(&host);
    arm(c, 1000); /* pt_h2_tick: the session keeps its own timeouts */
}

/* Runs <s>'s TLS over the network bytes it was given until it wants more. */
static int tls_pass(struct stream *s, void (*emit)(struct hconn *c, const uint8_t *p, size_t n))
{
    struct hconn *c = s->c;
    uint8_t plain[16384];
    while (c->state != HC_CLOSING) {
        size_t got;
        switch (pt_tls_step(s->ssl, &s->hs_done, plain, sizeof(plain), &got)) {
        case PT_TLS_HANDSHAKEN:
            flush_tls(s);
            if (s->pend.len) {
                struct pt_wbuf pend = s->pend;
                memset(&s->pend, 0, sizeof(s->pend));
                send_plain(s, pend.data, pend.len);
                pt_wbuf_free(&pend);
            }
            if (s == &c->cli) {
                c->w->tally.tls_ok++;
                handshake_done(c);
            }
            continue;
        case PT_TLS_DATA:
            emit(c, plain, got);
            continue;
        case PT_TLS_WANT:
            flush_tls(s);
            return 0;
        case PT_TLS_EOF:
            s->eof = true;
            return 0;
        case PT_TLS_ERROR:
            flush_tls(s); /* the alert, if any */
            return -1;
        }
    }
    return 0;
}

/* Feeds network bytes to <s>'s TLS and returns plaintext through <emit>;
 * plain streams pass the bytes straight on. Returns -1 on a TLS failure.
 * The client's TLS reads them in place (pt_tls_io), a backend's through
 * its memory BIO. */
static int tls_input(struct stream *s, const uint8_t *p, size_t n,
                     void (*emit)(struct hconn *c, const uint8_t *p, size_t n))
{
    struct hconn *c = s->c;
    if (s->ssl == NULL) {
        emit(c, p, n);
        return 0;
    }
    if (s != &c->cli)
        return n && BIO_write(s->rbio, p, (int)n) != (int)n ? -1 : tls_pass(s, emit);
    pt_tls_io_feed(&c->cio, p, n);
    int rc = tls_pass(s, emit);
    pt_tls_io_done(&c->cio);
    if (s->eof) /* nothing after a close_notify is read: keep none of it */
        pt_wbuf_free(&c->cio.held);
    return rc;
}

static void client_plain(struct hconn *c, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (c->state == HC_H2) {
        c->bytes_in += n;
        if (c->close_after_flush)
            return; /* the session is over: what still comes is dropped */
        if (pt_h2_input(c->h2, p, n) < 0)
            graceful_close(c);
        return;
    }
    if (c->state == HC_HEAD && c->in_len == 0 && n > 0)
        arm(c, c->snap->settings.hello_timeout_ms); /* a new head starts */
    if (c->in_cap - c->in_len < n) {
        size_t cap = c->in_cap ? c->in_cap : 4096;
        while (cap - c->in_len < n)
            cap *= 2;
        c->in = pt_xrealloc(c->in, cap);
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    c->bytes_in += n;
}

static void client_eof(struct hconn *c)
{
    c->cli.eof = true;
    /* A tunnel (WebSocket) ends with its own close frames before the TCP
     * close, so the first side to finish ends it. A client that goes away
     * mid-request or between requests is done too; one that half-closes
     * after a complete request still gets its response. */
    if (c->state == HC_TUNNEL || c->state == HC_H2)
        graceful_close(c);
    else if (c->state != HC_REQUEST || c->req != REQ_DONE)
        hc_close(c);
}

static void on_cli_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct stream *s = st->data;
    struct hconn *c = s->c;
    if (n == 0)
        return;
    if (n < 0) {
        client_eof(c);
        return;
    }
    /* The handshake and each request head must complete within the hello
     * timeout (client_plain arms it at a head's first byte); a request body
     * must keep coming (--body-timeout between two reads, once the backend
     * is connected: until then the connect timeout runs); a request
     * waiting for its response or a tunnel only needs to keep moving. */
    if (c->state == HC_REQUEST && c->req != REQ_DONE && up_open(c))
        arm(c, body_timeout(c));
    else if ((c->state == HC_REQUEST && up_open(c)) || c->state == HC_TUNNEL)
        arm(c, c->snap->settings.idle_timeout_ms);
    if (tls_input(s, (const uint8_t *)buf->base, (size_t)n, client_plain) != 0) {
        c->result = c->cli.hs_done ? "tls_error" : "handshake_failed";
        hc_close(c);
        return;
    }
    if (c->state != HC_CLOSING && c->cli.hs_done)
        process_client(c);
    if (c->state != HC_CLOSING && s->eof)
        client_eof(c);
}

static void up_plain(struct hconn *c, const uint8_t *p, size_t n)
{
    feed_response(c, p, n);
}

static void on_up_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct stream *s = st->data;
    struct hconn *c = s->c;
    if (n == 0)
        return;
    if (n < 0 || (n > 0 && tls_input(s, (const uint8_t *)buf->base, (size_t)n, up_plain) != 0)) {
        if (n >= 0 && !s->hs_done) {
            pt_log(PT_LOG_WARN, "backend '%s': TLS handshake failed", c->be->name);
            answer(c, 502);
            return;
        }
        s->eof = true;
    }
    if (c->state == HC_CLOSING)
        return;
    arm(c, c->snap->settings.idle_timeout_ms);
    if (s->eof) {
        stop_reading(s);
        if (c->state == HC_TUNNEL) {
            graceful_close(c);
        } else if (c->state == HC_REQUEST && c->resp == RESP_HEAD) {
            if (c->retry_head.len && c->rin.len == 0) {
                /* Closed under us before answering: once more, elsewhere. */
                pt_wbuf_free(&c->qhead);
                c->qhead = c->retry_head;
                memset(&c->retry_head, 0, sizeof(c->retry_head));
                close_stream(s); /* its close callback dials for qhead */
            } else {
                answer(c, 502);
            }
        } else if (c->state == HC_REQUEST && c->resp == RESP_BODY) {
            c->resp_close = true;
            if (pt_h1body_ends_at_eof(&c->respb)) {
                /* Read-until-close body: the end of the stream ends it. */
                send_head_now(c);
                response_done(c);
            } else {
                /* Cut short: the client must not take it for complete. */
                pt_log(PT_LOG_WARN, "backend '%s': response body cut short", c->be->name);
                c->result = "backend_truncated";
                hc_close(c);
            }
        } else {
            close_stream(s);
        }
    }
}

static void start_reading(struct stream *s)
{
    if (s->reading || s->eof || !s->init || uv_is_closing((uv_handle_t *)s->tcp))
        return;
    if (s == &s->c->cli && s->c->in_len >= IN_MAX)
        return;
    uv_read_cb cb = s == &s->c->cli ? on_cli_read : on_up_read;
    if (uv_read_start((uv_stream_t *)s->tcp, alloc_cb, cb) == 0)
        s->reading = true;
}

/* ---- responses ------------------------------------------------------------ */

static bool hname_is(const struct pt_http_hdr *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

static void put(struct pt_wbuf *b, const char *s)
{
    pt_wbuf_put(b, s, strlen(s));
}

static void response_done(struct hconn *c);

/* The rewritten response head, per worker and reused: it is built and sent
 * (alone, or in front of the first body bytes) within one callback, so no
 * connection keeps one. */
static struct pt_wbuf rhead;

static void send_head_now(struct hconn *c)
{
    if (!c->rhead_pending)
        return;
    c->rhead_pending = false;
    send_plain(&c->cli, rhead.data, rhead.len);
}

/* Re-framed body bytes of one read, sent with one send_plain (one TLS
 * record); per worker, reused: the loop runs one callback at a time. */
static struct pt_wbuf body_out;

/* Frames the body bytes at <p>[0..n) with <b> and appends them to <out> as
 * they leave: the same bytes for a length, canonical chunked encoding for a
 * chunked body (sizes in lowercase hex without extensions, CRLF everywhere,
 * validated trailers), so the peer reads the framing we read. Returns the
 * last event (NEED_MORE, DONE or INVALID); *used: bytes of <p> consumed. */
static enum pt_h1body_ev reframe(struct pt_h1body *b, bool *trailers, const uint8_t *p,
                                 size_t n, size_t *used, struct pt_wbuf *out)
{
    bool chunked = b->mode == PT_H1BODY_CHUNKED;
    enum pt_h1body_ev ev;
    *used = 0;
    do {
        size_t u;
        const uint8_t *o;
        size_t olen;
        ev = pt_h1body_step(b, p + *used, n - *used, &u, &o, &olen);
        *used += u;
        switch (ev) {
        case PT_H1BODY_DATA:
            if (chunked)
                pt_h1body_write_chunk(out, o, olen);
            else
                pt_wbuf_put(out, o, olen);
            break;
        case PT_H1BODY_TRAILER:
            pt_h1body_write_trailer(out, o, olen, !*trailers);
            *trailers = true;
            break;
        case PT_H1BODY_DONE:
            if (chunked)
                pt_h1body_write_last(out, *trailers);
            break;
        case PT_H1BODY_NEED_MORE:
        case PT_H1BODY_INVALID:
            break;
        }
    } while (ev == PT_H1BODY_DATA || ev == PT_H1BODY_TRAILER);
    return ev;
}

/* Forwards response body bytes, stopping exactly at the message's end. */
static void forward_body(struct hconn *c, const uint8_t *p, size_t n)
{
    struct pt_wbuf *out = &body_out;
    out->len = 0;
    if (c->rhead_pending) {
        /* One record for head and first body bytes: a client reads a small
         * response with one read, not two. */
        c->rhead_pending = false;
        pt_wbuf_put(out, rhead.data, rhead.len);
    }
    size_t used;
    enum pt_h1body_ev ev = reframe(&c->respb, &c->resp_trailers, p, n, &used, out);
    if (ev == PT_H1BODY_INVALID) {
        pt_log(PT_LOG_WARN, "backend '%s': malformed response body (%s)", c->be->name,
               c->respb.why);
        c->result = "backend_bad_body";
        hc_close(c); /* the client sees a cut, never a wrong end */
        return;
    }
    send_plain(&c->cli, out->data, out->len);
    if (out->cap > QUEUE_HIGH)
        pt_wbuf_free(out);
    if (ev == PT_H1BODY_DONE && c->state == HC_REQUEST) {
        /* Bytes past the response's end: the backend does not frame as we
         * read it, its connection must not serve anyone else. */
        if (used < n)
            c->resp_close = true;
        response_done(c);
    }
}

bool pt_httpproxy_resp_field_kept(const struct pt_http_hdr *h, const struct pt_domain *d,
                                  bool tunnel)
{
    if (hname_is(h, "connection") || hname_is(h, "keep-alive") ||
        hname_is(h, "proxy-connection") || hname_is(h, "te") || hname_is(h, "trailer") ||
        (!tunnel && hname_is(h, "upgrade")))
        return false;
    if (d == NULL)
        return true;
    if (d->hsts && hname_is(h, "strict-transport-security"))
        return false;
    for (size_t k = 0; k < d->n_headers; k++)
        if (hname_is(h, d->headers[k].name))
            return false;
    return true;
}

/* The head to send to the client. <interim>: a 1xx other than 101, passed
 * on without a Connection field. The domain's response headers replace the
 * backend's of the same name (offload only). */
static void build_response_head(struct hconn *c, const struct pt_http_resp *r, bool interim)
{
    struct pt_wbuf *b = &rhead;
    char st[4];
    const struct pt_domain *d = c->dom;
    /* The domain's response headers and HSTS are for its https answers;
     * port 80 passes the backend's own. */
    size_t n_extra = c->tls ? d->n_headers : 0;
    bool hsts = c->tls && d->hsts;
    b->len = 0;
    status_digits(r->status, st);
    put(b, "HTTP/1.1 ");
    put(b, st);
    put(b, " ");
    put(b, pt_http1_reason(r->status));
    put(b, "\r\n");
    bool tunnel = r->status == 101;
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct pt_http_hdr *h = &r->hdrs[i];
        if (!pt_httpproxy_resp_field_kept(h, c->tls ? d : NULL, tunnel))
            continue;
        pt_wbuf_put(b, h->name, h->name_len);
        put(b, ": ");
        pt_wbuf_put(b, h->value, h->value_len);
        put(b, "\r\n");
    }
    for (size_t k = 0; k < n_extra; k++) {
        put(b, d->headers[k].name);
        put(b, ": ");
        put(b, d->headers[k].value);
        put(b, "\r\n");
    }
    if (hsts)
        put(b, "Strict-Transport-Security: max-age=31536000\r\n");
    if (interim)
        put(b, "\r\n");
    else if (tunnel)
        put(b, "Connection: upgrade\r\n\r\n");
    else if (c->resp_close || !c->req_keep_alive)
        put(b, "Connection: close\r\n\r\n");
    else
        put(b, "Connection: keep-alive\r\n\r\n");
}

static void pace_client(struct hconn *c);

/* The backend answered 101 to a request that asked for an upgrade: from
 * now on bytes pass both ways as they are. <rest>: what followed the head. */
static void start_tunnel(struct hconn *c, const uint8_t *rest, size_t rest_len)
{
    c->state = HC_TUNNEL;
    log_request(c, NULL);
    send_head_now(c);
    send_plain(&c->cli, rest, rest_len);
    /* Bytes the client sent after its request belong to the tunnel. */
    if (c->in_len) {
        send_plain(&c->up, c->in, c->in_len);
        c->in_len = 0;
    }
    pace_client(c);
}

static struct pt_http_resp resp_head; /* large; used synchronously */

/* Bytes from the backend while a request is in flight (or a tunnel). */
static void feed_response(struct hconn *c, const uint8_t *p, size_t n)
{
    if (c->state == HC_TUNNEL) {
        send_plain(&c->cli, p, n);
        goto backpressure;
    }
    if (c->state != HC_REQUEST || c->resp == RESP_DONE) {
        /* Bytes nobody asked for (an idle connection, or past a response's
         * end): the connection is not usable any more. */
        close_stream(&c->up);
        return;
    }
    if (c->resp == RESP_BODY) {
        forward_body(c, p, n);
        goto backpressure;
    }
    /* The head is parsed where it arrived: only a head split across reads
     * is gathered in rin (most come whole, with the body's first bytes). */
    bool held = c->rin.len > 0;
    if (held) {
        pt_wbuf_put(&c->rin, p, n);
        p = c->rin.data;
        n = c->rin.len;
    }
    for (;;) {
        struct pt_http_resp *r = &resp_head;
        int rc = pt_http1_parse_response(p, n, c->req_is_head, r);
        if (rc == PT_ENEEDMORE) {
            if (!held)
                pt_wbuf_put(&c->rin, p, n);
            return;
        }
        if (rc < 0) {
            pt_log(PT_LOG_WARN, "backend '%s': malformed response head (%s)", c->be->name,
                   r->why ? r->why : "?");
            pt_dial_server_failed(&c->dial);
            answer_page(c, 502, "backend_bad_head", NULL, "text/html", NULL);
            return;
        }
        size_t head_len = r->head_len;
        if (r->interim) {
            /* 100 Continue and friends: pass on, then wait for the real one. */
            build_response_head(c, r, true);
            send_plain(&c->cli, rhead.data, rhead.len);
            if (held) {
                memmove(c->rin.data, c->rin.data + head_len, c->rin.len - head_len);
                c->rin.len -= head_len;
                n = c->rin.len;
            } else {
                p += head_len;
                n -= head_len;
            }
            continue;
        }
        if (r->status == 101 && !(c->req_upgrade && r->upgrade)) {
            /* A switch nobody asked for: what follows would not be HTTP. */
            pt_log(PT_LOG_WARN, "backend '%s': 101 to a request without Upgrade", c->be->name);
            pt_dial_server_failed(&c->dial);
            answer_page(c, 502, "backend_bad_head", NULL, "text/html", NULL);
            return;
        }
        c->status = r->status;
        c->resp_close = !r->keep_alive || r->body == PT_H1BODY_EOF;
        build_response_head(c, r, false);
        c->rhead_pending = true; /* sent with the body (forward_body) */
        pt_wbuf_free(&c->retry_head);
        /* The bytes after the head stay where they are: rin is only written
         * by the next read from the backend, after this returns. */
        const uint8_t *rest = p + head_len;
        size_t rest_len = n - head_len;
        c->rin.len = 0;
        if (r->status == 101) {
            start_tunnel(c, rest, rest_len);
            return;
        }
        c->resp = RESP_BODY;
        c->resp_trailers = false;
        pt_h1body_release(&c->respb);
        pt_h1body_init(&c->respb, r->body, r->content_length);
        forward_body(c, rest, rest_len);
        goto backpressure;
    }
backpressure:
    if (c->state != HC_CLOSING && c->cli.queued > QUEUE_HIGH)
        stop_reading(&c->up);
}

static void response_done(struct hconn *c)
{
    if (c->state == HC_CLOSING)
        return;
    c->resp = RESP_DONE;
    /* Only a complete, well-framed exchange leaves the backend connection
     * fit for another request. */
    if (!c->resp_close && c->req == REQ_DONE && c->up.queued == 0)
        c->ups = UP_IDLE;
    log_request(c, NULL);
    if (c->resp_close || !c->req_keep_alive || c->req != REQ_DONE) {
        graceful_close(c);
        return;
    }
    /* Ready for the next request on this connection. An idle connection
     * keeps no buffer: they come back with the next request. */
    if (c->in_len == 0) {
        PT_FREE(c->in);
        c->in_cap = 0;
    }
    pt_wbuf_free(&c->rin);
    c->state = HC_HEAD;
    c->dom = NULL;
    shed_idle_tls(c);
    arm(c, c->snap->settings.idle_timeout_ms);
    process_client(c);
}

/* ---- backend connection ------------------------------------------------------ */

static void up_connected(struct hconn *c)
{
    struct stream *s = &c->up;
    c->ups = UP_BUSY;
    /* Connected: from now on the backend has the idle timeout to answer,
     * and the client the body timeout to send what it still owes. */
    arm(c, c->req == REQ_DONE ? c->snap->settings.idle_timeout_ms : body_timeout(c));
    uv_tcp_nodelay(s->tcp, 1);
    int tlen = sizeof(c->target);
    uv_tcp_getpeername(s->tcp, (struct sockaddr *)&c->target, &tlen);
    pool_key(c, c->dial.ix, c->up_key);
    if (c->up_tls && s->ssl == NULL) { /* a pooled one comes with its own */
        s->ssl = pt_tls_client_new(c->w->tls, c->be->tls_verify, tls_name(c, c->dial.ix));
        if (s->ssl == NULL) {
            answer(c, 502);
            return;
        }
        s->rbio = SSL_get_rbio(s->ssl);
        s->wbio = SSL_get_wbio(s->ssl);
        flush_tls(s);
    }
    start_reading(s);
    /* Whatever waited (head, body bytes) goes now. */
    process_client(c);
}

/* A fresh backend stream in c->up (the previous one is closed: its close
 * callback ran), its handle initialised and counted. */
static struct stream *new_up_stream(struct hconn *c)
{
    struct stream *s = &c->up;
    SSL_free(s->ssl);
    pt_wbuf_free(&s->pend);
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->tcp = &s->own;
    uv_tcp_init(c->w->loop, s->tcp);
    s->tcp->data = s;
    s->init = true;
    c->handles++;
    c->ups = UP_DIALING;
    return s;
}

/* Starts the request on a parked connection to one of the backend's servers
 * (in their order), if there is one. */
static bool take_pooled(struct hconn *c)
{
    uint64_t now = pt_worker_now_ms(c->w);
    for (size_t i = 0; i < c->n_servers; i++) {
        char key[PT_UPCONN_KEY_MAX];
        SSL *ssl;
        pool_key(c, i, key);
        int fd = pt_upconn_pool_take(key, now, &ssl);
        if (fd < 0)
            continue;
        struct stream *s = new_up_stream(c);
        c->dial.ix = i;
        c->up_reused = true;
        if (uv_tcp_open(s->tcp, fd) != 0) {
            close(fd);
            SSL_free(ssl);
            close_stream(s);
            answer(c, 502);
            return true;
        }
        if (ssl) {
            s->ssl = ssl;
            s->rbio = SSL_get_rbio(ssl);
            s->wbio = SSL_get_wbio(ssl);
            s->hs_done = true;
        }
        up_connected(c);
        return true;
    }
    return false;
}

static struct hconn *dial_conn(struct pt_dial *d)
{
    return PT_CONTAINER_OF(d, struct hconn, dial);
}

static uv_tcp_t *dial_attempt(struct pt_dial *d)
{
    struct hconn *c = dial_conn(d);
    c->up_reused = false;
    struct stream *s = new_up_stream(c);
    arm(c, c->snap->settings.connect_timeout_ms);
    return s->tcp;
}

static void dial_connected(struct pt_dial *d)
{
    up_connected(dial_conn(d));
}

/* A failed attempt closes the backend handle; its close callback moves on. */
static void on_up_failed_closed(uv_handle_t *h)
{
    struct stream *s = h->data;
    struct hconn *c = s->c;
    s->init = false;
    c->ups = UP_NONE;
    if (c->state == HC_REQUEST)
        pt_dial_next(&c->dial);
    release(c);
}

static void dial_exhausted(struct pt_dial *d)
{
    struct hconn *c = dial_conn(d);
    pt_log(PT_LOG_WARN, "backend '%s': no server reachable for '%s'", c->be->name, c->host);
    answer(c, 502);
}

static void dial_hold(struct pt_dial *d, bool take)
{
    struct hconn *c = dial_conn(d);
    if (!take) {
        release(c);
        return;
    }
    c->handles++;
    arm(c, c->snap->settings.connect_timeout_ms);
}

static const struct pt_dial_ops dial_ops = {dial_attempt, dial_connected, on_up_failed_closed,
                                            dial_exhausted, dial_hold};

/* ---- requests ---------------------------------------------------------------- */

/* Frames what c->in holds of the request body and sends it to the backend
 * (re-encoded canonically when chunked). A body we cannot frame is refused
 * with 400 and the connection closed; the backend connection, left with an
 * unfinished request, is not reused. */
static void forward_request_body(struct hconn *c)
{
    if (c->req == REQ_DONE || !up_open(c))
        return;
    struct pt_wbuf *out = &body_out;
    size_t used;
    out->len = 0;
    enum pt_h1body_ev ev = reframe(&c->reqb, &c->req_trailers, c->in, c->in_len, &used, out);
    if (ev == PT_H1BODY_INVALID) {
        pt_log(PT_LOG_DEBUG, "request body refused: %s", c->reqb.why);
        answer_page(c, 400, "bad_body", NULL, "text/html", NULL);
        return;
    }
    send_plain(&c->up, out->data, out->len);
    if (out->cap > QUEUE_HIGH)
        pt_wbuf_free(out);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (ev == PT_H1BODY_DONE)
        c->req = REQ_DONE;
    else
        arm(c, body_timeout(c)); /* the rest must keep coming */
}

/* ---- routing a request ------------------------------------------------------- */

/* Where a request goes: a backend's servers of the right kind. */
struct target {
    const struct pt_domain *dom;
    const struct pt_backend *be;
    const struct pt_hostport *servers; /* borrowed from the snapshot */
    size_t n_servers;
    bool tls;
};

/* Port 80: a 301 to the same host and path on https. */
static void redirect(struct hconn *c, const struct pt_http_req *r)
{
    char loc[PT_DNAME_MAX + 64];
    uint16_t port = c->snap->settings.https_port;
    if (port == 443 || port == 0)
        snprintf(loc, sizeof(loc), "Location: https://%s", c->host);
    else
        snprintf(loc, sizeof(loc), "Location: https://%s:%u", c->host, port);
    struct pt_wbuf extra = {0};
    pt_wbuf_put(&extra, loc, strlen(loc));
    pt_wbuf_put(&extra, r->path, r->path_len); /* origin-form, also of an absolute target */
    pt_wbuf_put(&extra, "\r\n", 3); /* with the NUL: used as a C string */
    answer_page(c, 301, "redirect", (const char *)extra.data, "text/html", NULL);
    pt_wbuf_free(&extra);
}

/* Port 80: answers an ACME HTTP-01 path (reserved whatever the host) and
 * returns true, or returns false to route it like any request: a
 * passthrough domain that forwards port 80 (a YunoHost server) gets its own
 * challenges. <ix>: the Host's route or -1. */
static bool acme_answered(struct hconn *c, const struct pt_http_req *r, int ix)
{
    static const char acme[] = "/.well-known/acme-challenge/";
    const struct pt_snapshot *s = c->snap;
    if (r->path_len < sizeof(acme) - 1 || memcmp(r->path, acme, sizeof(acme) - 1) != 0)
        return false;
    const char *tok = r->path + sizeof(acme) - 1;
    size_t tlen = r->path_len - (sizeof(acme) - 1);
    const char *q = memchr(tok, '?', tlen);
    if (q)
        tlen = (size_t)(q - tok);
    for (size_t i = 0; i < s->n_tokens; i++)
        if (strlen(s->tokens[i].token) == tlen && memcmp(s->tokens[i].token, tok, tlen) == 0) {
            answer_page(c, 200, "acme_challenge", NULL, "text/plain",
                        s->tokens[i].key_authorization);
            return true;
        }
    if (ix >= 0 && s->domains[ix].mode == PT_MODE_PASSTHROUGH &&
        s->backends[s->domains[ix].backend_ix].n_http_servers > 0)
        return false;
    answer_page(c, 404, "acme_unknown_token", NULL, "text/html", NULL);
    return true;
}

/* Checks <r> against the routes and fills <t>; or answers (421, 404, 301,
 * an ACME token) and returns false. */
static bool route_request(struct hconn *c, const struct pt_http_req *r, struct target *t)
{
    const struct pt_snapshot *s = c->snap;
    int hl = pt_dname_normalize(r->host ? r->host : "", r->host ? r->host_len : 0, c->host,
                                PT_DNAME_STRIP_PORT, NULL);
    int ix = hl > 0 ? pt_route_lookup(s->routes, c->host, (size_t)hl) : -1;
    if (hl <= 0)
        c->host[0] = '\0';
    if (r->authority_mismatch) {
        /* An absolute-form target names the host as much as Host does: two
         * different names could route one way here and another behind. */
        answer_page(c, 421, NULL, NULL, "text/html", NULL);
        return false;
    }
    if (c->tls) {
        /* The Host must belong to the route the SNI chose (RFC 9110 421). */
        if (ix < 0 || ix != c->sni_route) {
            answer(c, 421);
            return false;
        }
        t->dom = &s->domains[ix];
        t->be = &s->backends[t->dom->backend_ix];
        t->servers = t->be->servers;
        t->n_servers = t->be->n_servers;
        t->tls = t->be->tls;
        return true;
    }
    if (acme_answered(c, r, ix))
        return false;
    if (ix < 0) {
        answer_page(c, 404, "unknown_host", NULL, "text/html", NULL);
        return false;
    }
    t->dom = &s->domains[ix];
    t->be = &s->backends[t->dom->backend_ix];
    c->dom = t->dom;
    if (t->dom->mode == PT_MODE_OFFLOAD && t->dom->redirect_http) {
        redirect(c, r);
        return false;
    }
    t->tls = false;
    if (t->dom->mode == PT_MODE_PASSTHROUGH) {
        t->servers = t->be->http_servers;
        t->n_servers = t->be->n_http_servers;
    } else {
        t->servers = t->be->tls ? NULL : t->be->servers;
        t->n_servers = t->be->tls ? 0 : t->be->n_servers;
    }
    if (t->n_servers == 0) {
        answer_page(c, 404, "no_http_servers", NULL, "text/html", NULL);
        return false;
    }
    return true;
}

/* ---- requests (continued) ----------------------------------------------------- */

static void start_request(struct hconn *c)
{
    static struct pt_http_req req; /* large; used synchronously */
    const struct pt_snapshot *s = c->snap;
    int rc = pt_http1_parse_request(c->in, c->in_len, &req);
    if (rc == PT_ENEEDMORE)
        return;
    c->req_start_ms = pt_worker_now_ms(c->w);
    c->bytes_in = c->bytes_out = 0;
    c->requests++;
    pt_worker_request(c->w, 1);
    if (rc < 0) {
        c->result = NULL;
        answer(c, req.status);
        return;
    }
    if (pt_worker_banned(c->w, (struct sockaddr *)&c->peer)) {
        hc_kill(&c->ct);
        return;
    }
    struct target t;
    if (!route_request(c, &req, &t))
        return;
    c->dom = t.dom;
    c->req_keep_alive = req.keep_alive;
    c->req_is_head = req.is_head;
    c->req_upgrade = req.upgrade;
    pt_h1body_release(&c->reqb);
    pt_h1body_init(&c->reqb, req.body, req.content_length);
    c->req_trailers = false;
    bool bodiless = req.body == PT_H1BODY_NONE ||
                    (req.body == PT_H1BODY_LENGTH && req.content_length == 0);
    c->req = bodiless ? REQ_DONE : REQ_BODY;
    c->req_retryable = bodiless && (strcmp(req.method, "GET") == 0 ||
                                       strcmp(req.method, "HEAD") == 0 ||
                                       strcmp(req.method, "OPTIONS") == 0);
    c->resp = RESP_HEAD;
    c->resp_close = false;
    c->rin.len = 0;
    c->state = HC_REQUEST;
    arm(c, s->settings.idle_timeout_ms);

    struct pt_wbuf head = {0};
    char ip[PT_ADDRSTR_MAX];
    pt_sockaddr_ip((struct sockaddr *)&c->peer, ip, sizeof(ip));
    struct pt_http_fwd fwd = {ip, c->tls ? "https" : "http", false, c->trusted};
    pt_http1_write_request(&req, &fwd, &head);
    memmove(c->in, c->in + req.head_len, c->in_len - req.head_len);
    c->in_len -= req.head_len;

    /* Reuse the backend connection of the previous request when it is to the
     * same servers and still open. */
    bool reuse = c->ups == UP_IDLE && !c->up.eof && c->servers == t.servers;
    c->be = t.be;
    c->servers = t.servers;
    c->n_servers = t.n_servers;
    c->up_tls = t.tls;
    if (reuse) {
        c->ups = UP_BUSY;
        c->up_reused = true;
        send_head(c, &head);
        forward_request_body(c);
        return;
    }
    /* Held until connected; up.pend carries it through the TLS handshake. */
    pt_wbuf_free(&c->up.pend);
    pt_wbuf_free(&c->qhead);
    c->qhead = head; /* sent by process_client once connected */
    if (c->ups != UP_NONE) {
        /* The previous backend connection closes first: its close callback
         * dials for qhead. */
        close_stream(&c->up);
        return;
    }
    start_upstream(c);
}

static void start_upstream(struct hconn *c)
{
    if (take_pooled(c))
        return;
    pt_dial_start(&c->dial, &dial_ops, c->w->loop, &c->w->health, c->servers, c->n_servers);
}

static void process_client(struct hconn *c)
{
    switch (c->state) {
    case HC_HEAD:
        if (c->in_len)
            start_request(c);
        break;
    case HC_REQUEST:
        if (up_open(c) && c->qhead.len) {
            /* First use of a fresh backend connection: the head waited here. */
            struct pt_wbuf head = c->qhead;
            memset(&c->qhead, 0, sizeof(c->qhead));
            send_head(c, &head);
        }
        forward_request_body(c);
        break;
    case HC_TUNNEL:
        if (c->in_len) {
            send_plain(&c->up, c->in, c->in_len);
            c->in_len = 0;
        }
        break;
    default:
        break;
    }
    pace_client(c);
}

/* ---- timer ---------------------------------------------------------------------- */

static void on_expired(struct pt_deadline *dl)
{
    struct hconn *c = PT_CONTAINER_OF(dl, struct hconn, dl);
    uint64_t now = pt_worker_now_ms(c->w);
    if (c->send_deadline_ms && now >= c->send_deadline_ms && c->cli.queued) {
        /* A client that does not take its response (a slow reader) goes,
         * whatever the state: its queue is what it costs us. */
        c->result = "send_timeout";
        hc_close(c);
        return;
    }
    if (now < c->deadline_ms) {
        schedule(c);
        return;
    }
    switch (c->state) {
    case HC_H2:
        if (pt_h2_tick(c->h2, now) < 0)
            graceful_close(c);
        else if (c->cio.out.len == 0)
            pt_wbuf_free(&c->cio.out); /* the session's 1 s tick: idle, no record buffer */
        break;
    case HC_HANDSHAKE:
        c->result = "handshake_timeout";
        hc_close(c);
        break;
    case HC_HEAD:
        if (c->in_len > 0)
            answer(c, 408); /* a head started and did not finish in time */
        else
            graceful_close(c); /* idle keep-alive connection */
        break;
    case HC_REQUEST:
        if (c->ups == UP_DIALING && c->up.init) {
            /* This server did not answer in time: the next one. */
            pt_dial_abandon(&c->dial);
            arm(c, 1000);
            return;
        }
        if (c->req != REQ_DONE) {
            /* The request body stopped coming (slow body). */
            if (c->resp == RESP_HEAD) {
                answer_page(c, 408, "body_timeout", NULL, "text/html", NULL);
            } else {
                c->result = "body_timeout";
                hc_close(c);
            }
        } else if (c->resp == RESP_HEAD) {
            pt_dial_server_failed(&c->dial); /* connected, never answered */
            answer(c, 504);
        }
        else
            hc_close(c);
        break;
    default:
        hc_close(c);
    }
    if (c->state != HC_CLOSING)
        arm(c, 1000); /* answered, closing once flushed: look again */
}

/* ---- entry -------------------------------------------------------------------- */

void pt_httpproxy_start(struct pt_listener *l, uv_tcp_t *tcp,
                        const struct pt_httpproxy_info *info)
{
    struct pt_worker *w = l->w;
    struct hconn *c = pt_xcalloc(1, sizeof(*c));
    c->w = w;
    c->l = l;
    c->snap = pt_snap_ref(info->snap);
    c->peer = info->peer;
    c->tls = info->tls;
    c->trusted = info->trusted;
    /* Sized to the name: most connections are idle ones (a DNS name has at
     * most 253 bytes; longer never matches a route or a certificate). */
    c->sni_len = info->sni_len < PT_DNAME_MAX ? info->sni_len : PT_DNAME_MAX;
    c->sni = pt_xmalloc(c->sni_len + 1);
    memcpy(c->sni, info->sni, c->sni_len);
    c->sni[c->sni_len] = '\0';
    c->sni_route = info->route;
    c->start_ms = c->req_start_ms = pt_worker_now_ms(w);
    c->cli.c = c;
    c->up.c = c;
    pt_worker_conn_opened(w);
    pt_conntrack_add(&w->tracked, &c->ct, &c->peer, hc_kill);
    pt_deadline_init(&c->dl, w->loop, c, on_expired);
    c->cli.tcp = tcp;
    c->cli.tcp->data = &c->cli;
    c->cli.init = true;
    c->up.tcp = &c->up.own;
    c->handles = 2;
    arm(c, c->snap->settings.hello_timeout_ms);

    if (!c->tls) {
        c->cli.hs_done = true; /* no handshake: HTTP from the first byte */
        c->state = HC_HEAD;
        client_plain(c, info->pre, info->pre_len);
        process_client(c);
        start_reading(&c->cli);
        return;
    }
    SSL_CTX *ctx = pt_tls_server_ctx(w->tls, c->sni, c->sni_len);
    if (ctx == NULL) {
        /* An offload domain without a usable certificate: a clean failure. */
        uint8_t alert[7];
        pt_tls_alert(alert, 0x0303, PT_TLS_ALERT_UNRECOGNIZED_NAME);
        c->result = "no_certificate";
        raw_write(&c->cli, alert, 7); /* copied if the socket does not take it */
        graceful_close(c);
        return;
    }
    c->cli.ssl = SSL_new(ctx);
    if (c->cli.ssl == NULL || !pt_tls_io_attach(c->cli.ssl, &c->cio)) {
        c->result = "internal_error";
        hc_close(c);
        return;
    }
    SSL_set_accept_state(c->cli.ssl);
    if (pt_h2_offered(c->snap, c->sni_route))
        pt_tls_offer_h2(c->cli.ssl);
    c->state = HC_HANDSHAKE;
    if (tls_input(&c->cli, info->pre, info->pre_len, client_plain) != 0) {
        c->result = "handshake_failed";
        hc_close(c);
        return;
    }
    start_reading(&c->cli);
}
