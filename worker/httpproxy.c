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
 * and forwarded. Keep-alive on both sides: the backend connection
 * (worker/upconn.c: dial, TLS client, pool) is reused by the next request of
 * the same client connection when it goes to the same servers, and parked in
 * the worker's pool for other client connections when this one ends, but only
 * after a complete, well-framed exchange. Client writes go through
 * worker/writer.c. Upgrade (WebSocket) turns the connection into a tunnel
 * only after the backend's 101 to a request that asked for it.
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
#include "worker/writer.h"

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

/* The backend connection (c->up, worker/upconn.c). */
enum up_state {
    UP_NONE = 0, /* none: c->up is NULL */
    UP_DIALING,  /* opened, not connected yet (lookup, connect, TLS handshake) */
    UP_BUSY,     /* connected, carrying the request in flight */
    UP_IDLE,     /* its last exchange was complete and well framed: it may
                    carry the next request, or go to the pool */
};

/* The client's side. */
struct stream {
    /* The handle came from the front stage (worker/passthrough.c),
     * allocated on its own, and is freed in its close callback here. */
    uv_tcp_t *tcp;
    struct hconn *c;
    bool init;       /* handle initialised: must be closed */
    bool eof;        /* peer finished sending */
    bool reading;
    bool hs_done;    /* its TLS (c->cio on offload) is past the handshake */
    struct pt_writer out; /* what the socket did not take at once */
    struct pt_wbuf pend; /* plaintext written before the TLS handshake ended */
};

struct hconn {
    struct pt_worker *w;
    struct pt_listener *l;
    struct pt_snapshot *snap; /* reference */
    enum hc_state state;
    bool tls;          /* offload (TLS with the client); false: port 80 */
    bool trusted;      /* the socket's peer is a --trusted-proxy */
    struct stream cli;
    struct pt_upconn *up; /* the backend connection (owned), or NULL */
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

    bool close_after_flush;
    enum up_state ups;
    bool up_reused;     /* the backend connection served an earlier request */
    bool req_retryable; /* idempotent and bodiless: may be sent again */
    struct pt_wbuf retry_head; /* the head sent on a reused connection, kept
                                  until the response starts */
    struct pt_deadline dl;     /* wakes at the earlier of the two below */
    uint64_t deadline_ms;      /* the state's timeout, moved by activity */
    uint64_t send_deadline_ms; /* while a response waits for the client to take
                                  it: --send-timeout after the last write
                                  progress; 0 when nothing is queued */
    unsigned handles;
    uint64_t start_ms, req_start_ms, bytes_in, bytes_out;
    unsigned requests;
    const char *result;
    struct pt_conntrack ct; /* in the worker's registry: bans cut it */
    struct pt_h2 *h2;       /* HC_H2: the session (owned) */
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
    pt_wbuf_free(&c->cli.pend);
    pt_wbuf_free(&c->rin);
    pt_wbuf_free(&c->retry_head);
    pt_h1body_release(&c->reqb);
    pt_h1body_release(&c->respb);
    free(c->in);
    free(c->sni);
    pt_tls_io_free(&c->cio);
    pt_conn_free(c->w, &c->ct, c->snap, c);
}

static void on_closed(uv_handle_t *h)
{
    release(h->data);
}

static void on_stream_closed(uv_handle_t *h)
{
    struct stream *s = h->data;
    struct hconn *c = s->c;
    free(h);
    s->tcp = NULL;
    s->init = false;
    release(c);
}

static void close_stream(struct stream *s, bool reset)
{
    if (s->init)
        pt_conn_close_tcp(s->tcp, reset, on_stream_closed);
}

/* Lets go of the backend connection. */
static void up_close(struct hconn *c)
{
    pt_upconn_close(c->up);
    c->up = NULL;
    c->ups = UP_NONE;
}

/* Sends bytes to the backend; a connection that broke ends the client's. */
static void up_send(struct hconn *c, const void *p, size_t n)
{
    if (n && pt_upconn_send(c->up, p, n, 0) < 0)
        hc_close(c);
}

/* Sends a request head to the backend. On a reused connection an
 * idempotent, bodiless request keeps a copy: the backend may have closed
 * that connection just as we sent (the keep-alive race), and the request
 * then goes once more on another connection instead of failing with 502. */
static void send_head(struct hconn *c, struct pt_wbuf *head)
{
    pt_wbuf_free(&c->retry_head);
    if (c->up_reused && c->req_retryable) {
        c->retry_head = *head;
        memset(head, 0, sizeof(*head));
        up_send(c, c->retry_head.data, c->retry_head.len);
    } else {
        up_send(c, head->data, head->len);
        pt_wbuf_free(head);
    }
}

static void hc_close(struct hconn *c)
{
    if (c->state == HC_CLOSING)
        return;
    /* An idle backend connection goes to the worker's pool (upconn.c). */
    if (c->ups == UP_IDLE)
        pt_upconn_finish(c->up, pt_worker_now_ms(c->w));
    else
        pt_upconn_close(c->up);
    c->up = NULL;
    c->ups = UP_NONE;
    c->state = HC_CLOSING;
    pt_conn_closing(&c->ct, &c->dl, on_closed);
    close_stream(&c->cli, false);
}

/* A ban came for the client: an RST, not a TLS close_notify, as a firewall
 * would do it. */
static void hc_kill(struct pt_conntrack *ct)
{
    struct hconn *c = PT_CONNTRACK_OWNER(ct, struct hconn, ct);
    if (c->state == HC_CLOSING)
        return;
    c->result = "banned";
    close_stream(&c->cli, true);
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
    c->send_deadline_ms = pt_writer_queued(&s->out)
                              ? pt_worker_now_ms(c->w) + c->snap->settings.send_timeout_ms
                              : 0;
    schedule(c);
}

/* ---- writing ---------------------------------------------------------------- */

static void on_drained(struct hconn *c, struct stream *s);

static void on_written(struct pt_writer *wr, int status, size_t tag)
{
    struct stream *s = wr->data;
    struct hconn *c = s->c;
    (void)tag;
    if (c->state != HC_CLOSING) {
        send_progress(c, s);
        if (status != 0)
            hc_close(c);
        else
            on_drained(c, s);
    }
    release(c);
}

/* Writes <n> raw bytes to the client's socket (worker/writer.h). */
static void raw_write(struct stream *s, const uint8_t *p, size_t n)
{
    struct hconn *c = s->c;
    if (n == 0 || c->state == HC_CLOSING)
        return;
    bool idle = pt_writer_queued(&s->out) == 0;
    int rc = pt_writer_send(&s->out, p, n, 0);
    if (rc < 0) {
        hc_close(c);
        return;
    }
    if (rc == 1) {
        c->handles++;
        if (idle)
            send_progress(c, s); /* the send timeout starts */
    }
}

/* A client connection waiting for its next request keeps no TLS I/O
 * buffer (OpenSSL's own record buffers go with SSL_MODE_RELEASE_BUFFERS):
 * most open connections are idle ones. */
static void shed_idle_tls(struct hconn *c)
{
    if (c->tls && c->state == HC_HEAD && c->in_len == 0)
        pt_wbuf_free(&c->cio.out);
}

/* Moves whatever OpenSSL produced (records, alerts) to the socket: all
 * pending records in one write, straight from where they gathered;
 * raw_write copies whatever the socket does not take at once. */
static void flush_tls(struct stream *s)
{
    struct hconn *c = s->c;
    struct pt_wbuf *out = &c->cio.out;
    size_t n = out->len;
    out->len = 0; /* before the write: a failing one may close (and flush) */
    raw_write(s, out->data, n);
    shed_idle_tls(c);
}

/* Queues plaintext for <s>, through TLS when it has it; TLS records stay in
 * the BIO until flush_tls, so a response head and its first body bytes
 * leave in one write. */
static void send_plain_nf(struct stream *s, const void *p, size_t n)
{
    if (n == 0 || s->c->state == HC_CLOSING)
        return;
    s->c->bytes_out += n;
    if (!s->c->tls) {
        raw_write(s, p, n);
        return;
    }
    if (!s->hs_done) {
        pt_wbuf_put(&s->pend, p, n);
        return;
    }
    if (!pt_tls_io_write(&s->c->cio, p, n))
        hc_close(s->c);
}

/* Sends plaintext to <s> now, with anything queued before it. */
static void send_plain(struct stream *s, const void *p, size_t n)
{
    send_plain_nf(s, p, n);
    if (s->c->tls && s->hs_done && s->c->state != HC_CLOSING)
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
    if (c->tls && c->cli.hs_done && !c->cli.eof) {
        pt_tls_io_close(&c->cio); /* close_notify, so the client sees a clean end */
        flush_tls(&c->cli);
    }
    if (pt_writer_queued(&c->cli.out) == 0)
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
    size_t backlog = c->up ? pt_upconn_queued(c->up) : 0;
    if (c->in_len >= IN_MAX || backlog > QUEUE_HIGH || c->close_after_flush)
        stop_reading(&c->cli);
    else if (backlog < QUEUE_HIGH / 2)
        start_reading(&c->cli);
}

/* A queued write to the client is out. */
static void on_drained(struct hconn *c, struct stream *s)
{
    if (c->close_after_flush && pt_writer_queued(&s->out) == 0) {
        hc_close(c);
        return;
    }
    if (c->state == HC_H2) {
        if (pt_h2_output(c->h2) < 0)
            graceful_close(c);
        return;
    }
    if (pt_writer_queued(&s->out) < QUEUE_HIGH / 2 && up_open(c))
        pt_upconn_read(c->up, true);
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
    return pt_writer_queued(&c->cli.out);
}

/* The client's handshake is done: HTTP/1.1 requests, or an HTTP/2 session
 * when ALPN chose h2 (its frames are the next plaintext). */
static void handshake_done(struct hconn *c)
{
    if (!pt_tls_io_is_h2(&c->cio)) {
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
    uint8_t plain[PT_TLS_PLAIN_MAX];
    while (c->state != HC_CLOSING) {
        size_t got;
        switch (pt_tls_io_step(&c->cio, &s->hs_done, plain, sizeof(plain), &got)) {
        case PT_TLS_HANDSHAKEN:
            flush_tls(s);
            if (s->pend.len) {
                struct pt_wbuf pend = s->pend;
                memset(&s->pend, 0, sizeof(s->pend));
                send_plain(s, pend.data, pend.len);
                pt_wbuf_free(&pend);
            }
            c->w->tally.tls_ok++;
            if (c->cio.ssl == NULL)
                c->w->tally.tls_handovers++;
            handshake_done(c);
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
 * The client's TLS reads them in place (pt_tls_io). */
static int tls_input(struct stream *s, const uint8_t *p, size_t n,
                     void (*emit)(struct hconn *c, const uint8_t *p, size_t n))
{
    struct hconn *c = s->c;
    if (!c->tls) {
        emit(c, p, n);
        return 0;
    }
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

/* ---- backend connection ------------------------------------------------------ */

static void start_upstream(struct hconn *c, bool fresh, struct pt_wbuf *head);

/* The backend connection is up (dialed, or taken from the pool). */
static void up_ready(struct hconn *c)
{
    c->ups = UP_BUSY;
    c->target = *pt_upconn_peer(c->up);
    /* Connected: from now on the backend has the idle timeout to answer,
     * and the client the body timeout to send what it still owes. */
    arm(c, c->req == REQ_DONE ? c->snap->settings.idle_timeout_ms : body_timeout(c));
}

static void up_connected(void *ctx)
{
    struct hconn *c = ctx;
    up_ready(c);
    process_client(c); /* whatever waited (body bytes) goes now */
}

static void up_data(void *ctx, const uint8_t *p, size_t n)
{
    struct hconn *c = ctx;
    feed_response(c, p, n);
    if (c->state != HC_CLOSING)
        arm(c, c->snap->settings.idle_timeout_ms);
}

/* The backend took bytes that had to wait. */
static void up_written(void *ctx, size_t tag)
{
    struct hconn *c = ctx;
    (void)tag;
    /* A backend that takes the body slowly is no slow client. */
    if (c->state == HC_REQUEST && c->req != REQ_DONE)
        arm(c, body_timeout(c));
    pace_client(c);
}

/* The backend connection ended (it is let go here): the request in flight
 * is answered, retried or cut, as far as it got. */
static void up_ended(void *ctx, enum pt_upconn_end why)
{
    struct hconn *c = ctx;
    if (why == PT_UPCONN_UNREACHABLE || why == PT_UPCONN_TLS_FAILED) {
        up_close(c);
        if (why == PT_UPCONN_UNREACHABLE)
            pt_log(PT_LOG_WARN, "backend '%s': no server reachable for '%s'", c->be->name,
                   c->host);
        else
            pt_log(PT_LOG_WARN, "backend '%s': TLS handshake failed", c->be->name);
        answer(c, 502);
        return;
    }
    arm(c, c->snap->settings.idle_timeout_ms);
    if (c->state == HC_TUNNEL) {
        graceful_close(c);
    } else if (c->state == HC_REQUEST && c->resp == RESP_HEAD) {
        if (c->retry_head.len && c->rin.len == 0) {
            /* Closed under us before answering: once more, on a new one. */
            struct pt_wbuf head = c->retry_head;
            memset(&c->retry_head, 0, sizeof(c->retry_head));
            up_close(c);
            start_upstream(c, true, &head);
            return;
        }
        answer(c, 502);
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
    }
    up_close(c); /* nothing more comes from it */
}

static const struct pt_upconn_ops up_ops = {up_connected, up_data, up_written, up_ended};

/* A connection to the request's servers (a parked one unless <fresh>) that
 * carries <head> (taken) first. */
static void start_upstream(struct hconn *c, bool fresh, struct pt_wbuf *head)
{
    struct pt_upconn_target t = {
        .loop = c->w->loop, .tls = &c->w->tls, .health = &c->w->health, .be = c->be,
        .servers = c->servers, .n_servers = c->n_servers, .host = c->host,
        .plain = !c->up_tls, .fresh = fresh,
    };
    c->up = pt_upconn_open(&t, &up_ops, c);
    if (c->up == NULL) {
        pt_wbuf_free(head);
        pt_log(PT_LOG_WARN, "backend '%s': no server reachable for '%s'", c->be->name, c->host);
        answer(c, 502);
        return;
    }
    c->up_reused = pt_upconn_reused(c->up);
    if (c->up_reused) {
        up_ready(c);
        send_head(c, head);
        process_client(c);
        return;
    }
    c->ups = UP_DIALING;
    arm(c, c->snap->settings.connect_timeout_ms);
    send_head(c, head); /* it waits in the connection */
}

static void start_reading(struct stream *s)
{
    if (s->reading || s->eof || !s->init || uv_is_closing((uv_handle_t *)s->tcp))
        return;
    if (s->c->in_len >= IN_MAX)
        return;
    if (uv_read_start((uv_stream_t *)s->tcp, alloc_cb, on_cli_read) == 0)
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
        up_send(c, c->in, c->in_len);
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
        up_close(c);
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
            pt_upconn_server_failed(c->up);
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
            pt_upconn_server_failed(c->up);
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
    if (c->state != HC_CLOSING && c->up && pt_writer_queued(&c->cli.out) > QUEUE_HIGH)
        pt_upconn_read(c->up, false);
}

static void response_done(struct hconn *c)
{
    if (c->state == HC_CLOSING)
        return;
    c->resp = RESP_DONE;
    /* Only a complete, well-framed exchange leaves the backend connection
     * fit for another request. */
    if (!c->resp_close && c->req == REQ_DONE && c->up && pt_upconn_queued(c->up) == 0)
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
    up_send(c, out->data, out->len);
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
    bool reuse = c->ups == UP_IDLE && c->servers == t.servers;
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
    up_close(c); /* the previous one, to other servers */
    start_upstream(c, false, &head);
}

static void process_client(struct hconn *c)
{
    switch (c->state) {
    case HC_HEAD:
        if (c->in_len)
            start_request(c);
        break;
    case HC_REQUEST:
        forward_request_body(c);
        break;
    case HC_TUNNEL:
        if (c->in_len) {
            up_send(c, c->in, c->in_len);
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
    if (c->send_deadline_ms && now >= c->send_deadline_ms && pt_writer_queued(&c->cli.out)) {
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
        if (c->ups == UP_DIALING) {
            /* A server that did not answer in time gives way to the next. */
            uint64_t next = pt_upconn_tick(c->up, now, c->snap->settings.connect_timeout_ms);
            if (next != UINT64_MAX) {
                c->deadline_ms = next;
                schedule(c);
                return;
            }
            /* A name lookup or a TLS handshake that stalled: the backend's
             * fault, whatever the client still owes. */
            pt_upconn_server_failed(c->up);
            answer(c, 504);
            if (c->state != HC_CLOSING)
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
            pt_upconn_server_failed(c->up); /* connected, never answered */
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
    pt_conn_open(w, &c->ct, &c->peer, hc_kill, &c->dl, c, on_expired);
    c->cli.tcp = tcp;
    c->cli.tcp->data = &c->cli;
    c->cli.init = true;
    pt_writer_init(&c->cli.out, (uv_stream_t *)tcp, on_written, &c->cli);
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
    SSL *ssl;
    int rc = pt_tls_server_new(w->tls, c->sni, c->sni_len, &ssl);
    if (rc == PT_ENOTFOUND) {
        /* An offload domain without a usable certificate: a clean failure. */
        uint8_t alert[7];
        pt_tls_alert(alert, 0x0303, PT_TLS_ALERT_UNRECOGNIZED_NAME);
        c->result = "no_certificate";
        raw_write(&c->cli, alert, 7); /* copied if the socket does not take it */
        graceful_close(c);
        return;
    }
    if (rc != 0 || !pt_tls_io_attach(&c->cio, ssl)) {
        c->result = "internal_error";
        hc_close(c);
        return;
    }
    SSL_set_accept_state(ssl);
    if (pt_h2_offered(c->snap, c->sni_route))
        pt_tls_offer_h2(ssl);
    c->state = HC_HANDSHAKE;
    if (tls_input(&c->cli, info->pre, info->pre_len, client_plain) != 0) {
        c->result = "handshake_failed";
        hc_close(c);
        return;
    }
    start_reading(&c->cli);
}
