/* HTTP/2 to clients, HTTP/1.1 to backends; see h2.h. */
#include "worker/h2.h"

#include "common/addr.h"
#include "common/dname.h"
#include "common/h1body.h"
#include "common/h2h1.h"
#include "common/http1.h"
#include "worker/conn.h"
#include "worker/httpproxy.h"
#include "worker/upconn.h"

#include <nghttp2/nghttp2.h>
#include <strings.h>

#define H2_STREAMS_MAX 100           /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define H2_CONN_WINDOW (1024 * 1024) /* connection receive window */
#define STREAM_OUT_HIGH (32 * 1024)  /* response bytes held per stream: stop reading
                                        the backend above this */
#define SEND_BATCH (64 * 1024)       /* output gathered into one TLS write */
#define CLIENT_QUEUE_HIGH (256 * 1024) /* stop producing above this */
/* Frames that carry no request are allowed this many, plus a few per
 * request: a browser sends a handful, a flood thousands. */
#define JUNK_BASE 1000
#define JUNK_PER_REQUEST 4
#define RESETS_BASE 100 /* client RST_STREAMs beyond the streams it finished */

/* Where the stream's request is, as the client sends it. */
enum req_phase {
    REQ_HEADERS = 0, /* its header block is arriving */
    REQ_BODY,        /* DATA may come */
    REQ_TRAILERS,    /* its trailer block is arriving */
    REQ_DONE,        /* END_STREAM: complete */
};

/* Where the stream's response is. */
enum resp_phase {
    RESP_NONE = 0, /* the request is still arriving or going to the backend */
    RESP_HEAD,     /* waiting for the backend's head */
    RESP_BODY,     /* HEADERS sent, body bytes flowing */
    RESP_DONE,     /* everything is in s->out (or answered by us) */
};

struct h2s {
    struct pt_h2 *h;       /* NULL once the session is gone */
    struct h2s *prev, *next;
    int32_t id;
    unsigned refs;         /* 1 while nghttp2 knows the stream */
    bool h2_open;          /* nghttp2 has not closed it yet */
    struct pt_wbuf fields; /* the header block: u16 len, name, u16 len, value */
    size_t n_fields, field_bytes;
    enum req_phase req;
    struct pt_wbuf rtrl;   /* request trailer lines for the backend */
    bool body_chunked;     /* request body sent chunked (no Content-Length) */

    const struct pt_domain *dom;
    const struct pt_backend *be;
    char host[PT_DNAME_MAX + 1];
    bool is_head;
    uv_loop_t *loop;
    struct pt_health *health; /* the worker's: dials skip servers seen down */
    const struct pt_hostport *servers; /* the backend's (borrowed from the snapshot) */
    size_t n_servers;
    bool resp_keep;        /* the backend keeps its connection after this response */
    struct pt_wbuf retry;  /* a bodiless GET/HEAD sent on a pooled connection: sent
                              again on a new one if the backend closed it unanswered */
    bool retry_ok;         /* idempotent and bodiless */
    struct pt_upconn *up;  /* the backend connection (owned); NULL: none (not yet,
                              or done) */
    struct sockaddr_storage target;

    enum resp_phase resp;
    struct pt_wbuf rin;    /* backend bytes until the response head is whole */
    struct pt_h1body respb;
    struct pt_wbuf out;    /* response body bytes for the client */
    size_t out_off;
    bool out_eof;
    bool deferred;         /* the data source said DEFERRED: resume when bytes come */
    struct pt_wbuf trl;    /* response trailers: "name: value" lines, NUL-separated */
    int status;
    const char *result;
    uint64_t start_ms, last_ms, bytes_in, bytes_out;
};

struct pt_h2 {
    struct pt_h2_host host;
    nghttp2_session *sess;
    struct h2s *streams; /* every stream not yet freed (also detached ones) */
    unsigned n_open;
    uint64_t requests, finished, junk, resets;
    uint64_t last_active_ms, progress_ms;
    bool over; /* terminate_session was called: the connection ends */
    bool in_recv; /* inside nghttp2_session_mem_recv: no mem_send from callbacks */
    struct pt_wbuf sendbuf;
};

static struct pt_http_req h2_req;   /* large; used synchronously */
static struct pt_http_resp h2_resp; /* likewise */

static void up_close(struct h2s *s);
static int flush(struct pt_h2 *h);

static uint64_t now_ms(const struct h2s *s)
{
    return uv_now(s->loop);
}

/* ---- stream lifetime ------------------------------------------------------ */

static void log_stream(struct h2s *s, struct pt_h2 *h)
{
    char st[8];
    const char *result = s->result;
    if (result == NULL) {
        snprintf(st, sizeof(st), "%d", s->status);
        result = st;
    }
    struct pt_access a = {
        .client = (const struct sockaddr *)h->host.peer,
        .listener = (struct sockaddr *)&h->host.l->addr,
        .sni = h->host.sni,
        .sni_len = h->host.sni_len,
        .route = s->dom ? s->dom->name : NULL,
        .mode = "offload",
        .proto = "h2",
        .backend = s->be ? s->be->name : NULL,
        .server = s->target.ss_family ? (struct sockaddr *)&s->target : NULL,
        .bytes_in = s->bytes_in,
        .bytes_out = s->bytes_out,
        .duration_ms = pt_worker_now_ms(h->host.w) - s->start_ms,
        .result = result,
    };
    pt_worker_access(h->host.w, &a);
}

/* The request went to a backend and the response is not complete. */
static bool forwarded(const struct h2s *s)
{
    return s->resp == RESP_HEAD || s->resp == RESP_BODY;
}

static void release(struct h2s *s)
{
    if (--s->refs > 0)
        return;
    up_close(s);
    if (s->h) {
        if (s->prev)
            s->prev->next = s->next;
        else
            s->h->streams = s->next;
        if (s->next)
            s->next->prev = s->prev;
    }
    pt_wbuf_free(&s->fields);
    pt_wbuf_free(&s->rtrl);
    pt_wbuf_free(&s->rin);
    pt_wbuf_free(&s->out);
    pt_wbuf_free(&s->trl);
    pt_wbuf_free(&s->retry);
    pt_h1body_release(&s->respb);
    free(s);
}

static struct h2s *stream_new(struct pt_h2 *h, int32_t id)
{
    struct h2s *s = pt_xcalloc(1, sizeof(*s));
    s->h = h;
    s->loop = h->host.w->loop;
    s->health = &h->host.w->health;
    s->id = id;
    s->refs = 1;
    s->h2_open = true;
    s->start_ms = s->last_ms = pt_worker_now_ms(h->host.w);
    s->next = h->streams;
    if (h->streams)
        h->streams->prev = s;
    h->streams = s;
    h->n_open++;
    h->requests++;
    pt_worker_request(h->host.w, 2);
    return s;
}

/* The session ends the connection: GOAWAY <code> goes out with what is
 * queued, then nothing more is read. */
static void terminate(struct pt_h2 *h, uint32_t code, const char *why)
{
    if (h->over)
        return;
    h->over = true;
    char ip[PT_ADDRSTR_MAX];
    pt_sockaddr_ip((const struct sockaddr *)h->host.peer, ip, sizeof(ip));
    pt_log(PT_LOG_INFO, "h2 client %s: %s, GOAWAY %s", ip, why, nghttp2_http2_strerror(code));
    nghttp2_session_terminate_session(h->sess, code);
}

/* ---- responses ------------------------------------------------------------ */

static ssize_t read_body(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)sess;
    (void)id;
    struct pt_h2 *h = ud;
    struct h2s *s = src->ptr;
    size_t have = s->out.len - s->out_off;
    if (have == 0 && !s->out_eof) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = have < len ? have : len;
    memcpy(buf, s->out.data + s->out_off, n);
    s->out_off += n;
    s->bytes_out += n;
    if (s->out_off == s->out.len)
        s->out.len = s->out_off = 0;
    if (n) /* the client takes the response: neither stalled nor idle */
        h->progress_ms = s->last_ms = pt_worker_now_ms(h->host.w);
    if (s->out_eof && s->out.len == 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->trl.len) {
            /* The trailers follow as a HEADERS frame with END_STREAM. */
            nghttp2_nv nv[PT_H1BODY_TRAILERS_MAX];
            size_t k = 0;
            for (size_t off = 0; off < s->trl.len && k < PT_H1BODY_TRAILERS_MAX; k++) {
                char *line = (char *)s->trl.data + off;
                size_t ll = strlen(line);
                char *colon = strchr(line, ':');
                char *v = colon + 1;
                while (*v == ' ' || *v == '\t')
                    v++;
                for (char *c = line; c < colon; c++)
                    *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
                nv[k] = (nghttp2_nv){(uint8_t *)line, (uint8_t *)v, (size_t)(colon - line),
                                     strlen(v), NGHTTP2_NV_FLAG_NONE};
                off += ll + 1;
            }
            if (nghttp2_submit_trailer(sess, id, nv, k) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    } else if (s->up && s->out.len < STREAM_OUT_HIGH / 2) {
        pt_upconn_read(s->up, true); /* the client took enough: read the backend again */
    }
    return (ssize_t)n;
}

static bool hname_is(const struct pt_http_hdr *f, const char *name)
{
    return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

/* Adds one response field to <buf> as "name\0value\0", the name in lowercase
 * as HTTP/2 wants it. */
static void add_field(struct pt_wbuf *buf, const char *name, size_t nl, const char *value,
                      size_t vl)
{
    for (size_t i = 0; i < nl; i++) {
        char c = name[i];
        pt_wbuf_u8(buf, (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c));
    }
    pt_wbuf_u8(buf, 0);
    pt_wbuf_put(buf, value, vl);
    pt_wbuf_u8(buf, 0);
}

/* Submits a response head: <status>, the backend's fields (<r>, or NULL for
 * our own page) minus the connection-specific ones, the domain's response
 * headers (replacing the backend's of the same name) and HSTS. <body>:
 * whether DATA follows (from s->out). */
static void submit_head(struct h2s *s, int status, const struct pt_http_resp *r,
                        const char *type, bool body)
{
    struct pt_h2 *h = s->h;
    const struct pt_domain *d = s->dom;
    size_t n_extra = d ? d->n_headers : 0;
    bool hsts = d && d->hsts;
    struct pt_wbuf b = {0};
    char st[4];
    snprintf(st, sizeof(st), "%03d", status);
    add_field(&b, ":status", 7, st, 3);
    if (type)
        add_field(&b, "content-type", 12, type, strlen(type));
    for (size_t i = 0; r && i < r->n_hdrs; i++) {
        const struct pt_http_hdr *f = &r->hdrs[i];
        /* HTTP/2 frames the body itself: no Transfer-Encoding (RFC 9113 8.2.2). */
        if (!hname_is(f, "transfer-encoding") && pt_httpproxy_resp_field_kept(f, d, false))
            add_field(&b, f->name, f->name_len, f->value, f->value_len);
    }
    for (size_t k = 0; k < n_extra; k++)
        add_field(&b, d->headers[k].name, strlen(d->headers[k].name), d->headers[k].value,
                  strlen(d->headers[k].value));
    if (hsts)
        add_field(&b, "strict-transport-security", 25, "max-age=31536000", 16);
    size_t n = 0;
    for (size_t off = 0; off < b.len; off++)
        n += b.data[off] == 0;
    n /= 2;
    nghttp2_nv *nv = pt_xcalloc(n ? n : 1, sizeof(*nv));
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *name = b.data + off;
        size_t nl = strlen((char *)name);
        uint8_t *value = name + nl + 1;
        size_t vl = strlen((char *)value);
        nv[i] = (nghttp2_nv){name, value, nl, vl, NGHTTP2_NV_FLAG_NONE};
        off += nl + vl + 2;
    }
    s->status = status;
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = read_body};
    nghttp2_submit_response(h->sess, s->id, nv, n, body ? &dp : NULL);
    free(nv);
    pt_wbuf_free(&b);
}

/* Our own small answer (421, 400, 502, 504...); the backend goes. */
static void answer(struct h2s *s, int status, const char *why)
{
    if (s->h == NULL || !s->h2_open || s->resp == RESP_BODY || s->resp == RESP_DONE) {
        up_close(s);
        return;
    }
    char page[200];
    int n = snprintf(page, sizeof(page), "<html><body><h1>%d %s</h1></body></html>\n", status,
                     pt_http1_reason(status));
    s->out.len = s->out_off = 0;
    pt_wbuf_put(&s->out, page, (size_t)n);
    s->out_eof = true;
    s->resp = RESP_DONE;
    s->result = why;
    submit_head(s, status, NULL, "text/html", true);
    up_close(s);
}

static void reset(struct h2s *s, uint32_t code, const char *why)
{
    if (s->result == NULL)
        s->result = why;
    if (s->h && s->h2_open)
        nghttp2_submit_rst_stream(s->h->sess, NGHTTP2_FLAG_NONE, s->id, code);
    up_close(s);
}

/* Client DATA bytes the backend took (or that will never reach it): the
 * client may send as many more (WINDOW_UPDATE), so a request body moves at
 * the backend's pace. */
static void give_back(struct h2s *s, size_t n)
{
    if (s->h && n)
        nghttp2_session_consume(s->h->sess, s->id, n);
}

static void up_close(struct h2s *s)
{
    give_back(s, pt_upconn_close(s->up));
    s->up = NULL;
}

static void data_ready(struct h2s *s)
{
    if (s->deferred && s->h && s->h2_open) {
        s->deferred = false;
        nghttp2_session_resume_data(s->h->sess, s->id);
    }
}

/* The response is complete: the backend connection goes to the worker's
 * pool when the exchange was whole and well framed (<clean>: nothing came
 * after the response), else it closes. */
static void up_done(struct h2s *s, bool clean)
{
    pt_wbuf_free(&s->retry);
    if (clean && s->resp_keep && s->req == REQ_DONE && s->up && pt_upconn_is_open(s->up)) {
        give_back(s, pt_upconn_finish(s->up, now_ms(s)));
        s->up = NULL;
    }
    up_close(s);
}

/* Body bytes from the backend, de-framed into s->out. */
static void feed_body(struct h2s *s, const uint8_t *p, size_t n)
{
    size_t used = 0;
    for (;;) {
        size_t u, olen;
        const uint8_t *o;
        enum pt_h1body_ev ev = pt_h1body_step(&s->respb, p + used, n - used, &u, &o, &olen);
        used += u;
        switch (ev) {
        case PT_H1BODY_DATA:
            pt_wbuf_put(&s->out, o, olen);
            continue;
        case PT_H1BODY_TRAILER:
            pt_wbuf_put(&s->trl, o, olen);
            pt_wbuf_u8(&s->trl, 0);
            continue;
        case PT_H1BODY_DONE:
            s->out_eof = true;
            s->resp = RESP_DONE;
            up_done(s, used == n);
            break;
        case PT_H1BODY_INVALID:
            pt_log(PT_LOG_WARN, "backend '%s': malformed response body (%s)", s->be->name,
                   s->respb.why);
            reset(s, NGHTTP2_INTERNAL_ERROR, "backend_bad_body");
            return;
        case PT_H1BODY_NEED_MORE:
            break;
        }
        break;
    }
    data_ready(s);
}

static void feed_response(struct h2s *s, const uint8_t *p, size_t n)
{
    if (s->resp == RESP_BODY) {
        feed_body(s, p, n);
        return;
    }
    if (s->resp != RESP_HEAD) {
        up_close(s);
        return;
    }
    pt_wbuf_put(&s->rin, p, n);
    for (;;) {
        struct pt_http_resp *r = &h2_resp;
        int rc = pt_http1_parse_response(s->rin.data, s->rin.len, s->is_head, r);
        if (rc == PT_ENEEDMORE)
            return;
        if (rc < 0 || r->status == 101) {
            pt_log(PT_LOG_WARN, "backend '%s': malformed response head (%s)", s->be->name,
                   r->why ? r->why : "101 on HTTP/2");
            pt_upconn_server_failed(s->up);
            answer(s, 502, "backend_bad_head");
            return;
        }
        size_t hl = r->head_len;
        if (r->interim) {
            /* 100 Continue (a client that sent Expect waits for it) and
             * friends go on as a HEADERS frame of their own (RFC 9113 8.1). */
            char st[4];
            snprintf(st, sizeof(st), "%03d", r->status);
            nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)st, 7, 3, NGHTTP2_NV_FLAG_NONE};
            if (s->h && s->h2_open)
                nghttp2_submit_headers(s->h->sess, NGHTTP2_FLAG_NONE, s->id, NULL, &nv, 1, NULL);
            memmove(s->rin.data, s->rin.data + hl, s->rin.len - hl);
            s->rin.len -= hl;
            continue;
        }
        bool body = r->body != PT_H1BODY_NONE &&
                    !(r->body == PT_H1BODY_LENGTH && r->content_length == 0);
        pt_h1body_release(&s->respb);
        pt_h1body_init(&s->respb, r->body, r->content_length);
        s->resp = body ? RESP_BODY : RESP_DONE;
        s->out_eof = !body;
        submit_head(s, r->status, r, NULL, body);
        struct pt_wbuf rest = s->rin;
        memset(&s->rin, 0, sizeof(s->rin));
        s->resp_keep = r->keep_alive && r->body != PT_H1BODY_EOF;
        if (body)
            feed_body(s, rest.data + hl, rest.len - hl);
        else
            up_done(s, rest.len == hl);
        pt_wbuf_free(&rest);
        return;
    }
}

/* ---- backend connection --------------------------------------------------- */

static void up_connected(void *ctx)
{
    struct h2s *s = ctx;
    s->target = *pt_upconn_peer(s->up);
    s->last_ms = now_ms(s);
    if (s->h)
        flush(s->h);
}

/* The session of a stream its backend connection speaks to, with the
 * stream's activity noted; NULL (and the backend let go) once the session
 * is gone. */
static struct pt_h2 *up_session(struct h2s *s)
{
    if (s->h == NULL) {
        up_close(s);
        return NULL;
    }
    s->last_ms = pt_worker_now_ms(s->h->host.w);
    return s->h;
}

static void up_data(void *ctx, const uint8_t *p, size_t n)
{
    struct h2s *s = ctx;
    struct pt_h2 *h = up_session(s);
    if (h == NULL)
        return;
    feed_response(s, p, n);
    if (s->up && s->out.len - s->out_off > STREAM_OUT_HIGH)
        pt_upconn_read(s->up, false);
    flush(h);
}

static void up_written(void *ctx, size_t tag)
{
    struct h2s *s = ctx;
    give_back(s, tag);
    if (s->h)
        flush(s->h);
}

static void start_upstream(struct h2s *s, bool fresh, struct pt_wbuf *head);

static void up_ended(void *ctx, enum pt_upconn_end why)
{
    struct h2s *s = ctx;
    struct pt_h2 *h = up_session(s);
    if (h == NULL)
        return;
    if (why == PT_UPCONN_UNREACHABLE) {
        pt_log(PT_LOG_WARN, "backend '%s': no server reachable for '%s'", s->be->name, s->host);
        answer(s, 502, NULL);
    } else if (why == PT_UPCONN_TLS_FAILED) {
        pt_log(PT_LOG_WARN, "backend '%s': TLS handshake failed", s->be->name);
        answer(s, 502, "backend_tls_failed");
    } else if (s->resp == RESP_HEAD && s->retry.len && s->rin.len == 0) {
        /* The pooled connection was closed under us: the request once more,
         * on a new connection. */
        up_close(s);
        struct pt_wbuf retry = s->retry;
        memset(&s->retry, 0, sizeof(s->retry));
        start_upstream(s, true, &retry);
    } else if (s->resp == RESP_HEAD) {
        answer(s, 502, "backend_closed");
    } else if (s->resp == RESP_BODY) {
        if (pt_h1body_ends_at_eof(&s->respb)) {
            s->out_eof = true;
            s->resp = RESP_DONE;
            data_ready(s);
            up_close(s);
        } else {
            pt_log(PT_LOG_WARN, "backend '%s': response body cut short", s->be->name);
            reset(s, NGHTTP2_INTERNAL_ERROR, "backend_truncated");
        }
    } else {
        up_close(s);
    }
    flush(h);
}

static const struct pt_upconn_ops up_ops = {up_connected, up_data, up_written, up_ended};

/* Bytes for the backend; <consume>: client DATA bytes among them,
 * acknowledged to the client once the backend took them. */
static void up_send(struct h2s *s, const void *p, size_t n, size_t consume)
{
    if (n == 0)
        return;
    ssize_t took = s->up ? pt_upconn_send(s->up, p, n, consume) : -1;
    if (took < 0) {
        give_back(s, consume);
        answer(s, 502, "backend_write_failed");
    } else {
        give_back(s, (size_t)took); /* the backend took them at once */
    }
}

/* A connection to the backend (a parked one unless <fresh>) that carries
 * <head> (taken) first. */
static void start_upstream(struct h2s *s, bool fresh, struct pt_wbuf *head)
{
    struct pt_upconn_target t = {
        .loop = s->loop, .tls = &s->h->host.w->tls, .health = s->health, .be = s->be,
        .servers = s->servers,
        .n_servers = s->n_servers, .host = s->host, .fresh = fresh,
    };
    s->up = pt_upconn_open(&t, &up_ops, s);
    if (s->up == NULL) {
        pt_log(PT_LOG_WARN, "backend '%s': no server reachable for '%s'", s->be->name, s->host);
        pt_wbuf_free(head);
        answer(s, 502, NULL);
        return;
    }
    if (pt_upconn_reused(s->up)) {
        s->target = *pt_upconn_peer(s->up);
        if (s->retry_ok) /* idempotent and bodiless: may be sent twice */
            pt_wbuf_put(&s->retry, head->data, head->len);
    }
    up_send(s, head->data, head->len, 0);
    pt_wbuf_free(head);
}

/* ---- requests --------------------------------------------------------------- */

/* The header block is complete: check it, route it, send it on. */
static void start_request(struct h2s *s, bool body)
{
    struct pt_h2 *h = s->h;
    s->req = body ? REQ_BODY : REQ_DONE;
    const struct pt_snapshot *snap = h->host.snap;
    static struct pt_http_hdr f[PT_H2H1_FIELDS_MAX];
    size_t n = 0;
    for (size_t off = 0; off + 2 <= s->fields.len && n < PT_H2H1_FIELDS_MAX; n++) {
        const uint8_t *p = s->fields.data + off;
        size_t nl = (size_t)p[0] << 8 | p[1];
        size_t vl = (size_t)p[2 + nl] << 8 | p[3 + nl];
        f[n] = (struct pt_http_hdr){(const char *)p + 2, nl, (const char *)p + 4 + nl, vl};
        off += 4 + nl + vl;
    }
    struct pt_wbuf head1 = {0};
    const char *why = NULL;
    if (pt_h2h1_request(f, n, body, &head1, &why) != 0) {
        /* RFC 9113 8.1.1: a malformed request is a stream error. */
        pt_log(PT_LOG_DEBUG, "h2 request refused: %s", why);
        pt_wbuf_free(&head1);
        reset(s, NGHTTP2_PROTOCOL_ERROR, "h2_malformed");
        return;
    }
    pt_wbuf_free(&s->fields);
    struct pt_http_req *req = &h2_req;
    int rc = pt_http1_parse_request(head1.data, head1.len, req);
    if (rc < 0) {
        answer(s, rc == PT_ENEEDMORE ? 431 : req->status, NULL);
        pt_wbuf_free(&head1);
        return;
    }
    if (pt_worker_banned(h->host.w, (const struct sockaddr *)h->host.peer)) {
        pt_wbuf_free(&head1);
        terminate(h, NGHTTP2_ENHANCE_YOUR_CALM, "banned");
        return;
    }
    int hl = pt_dname_normalize(req->host ? req->host : "", req->host ? req->host_len : 0,
                                s->host, PT_DNAME_STRIP_PORT, NULL);
    int ix = hl > 0 ? pt_route_lookup(snap->routes, s->host, (size_t)hl) : -1;
    if (ix < 0 || ix != h->host.route) {
        /* RFC 9113 9.1.1: a connection reused for a name it does not serve
         * (coalescing); the browser retries on a connection of its own. */
        pt_wbuf_free(&head1);
        answer(s, 421, NULL);
        return;
    }
    s->dom = &snap->domains[ix];
    s->be = &snap->backends[s->dom->backend_ix];
    s->is_head = req->is_head;
    s->body_chunked = req->body == PT_H1BODY_CHUNKED;
    char ip[PT_ADDRSTR_MAX];
    pt_sockaddr_ip((const struct sockaddr *)h->host.peer, ip, sizeof(ip));
    struct pt_http_fwd fwd = {ip, "https", false, h->host.trusted};
    struct pt_wbuf head = {0};
    pt_http1_write_request(req, &fwd, &head);
    pt_wbuf_free(&head1);
    s->resp = RESP_HEAD;
    s->servers = s->be->servers;
    s->n_servers = s->be->n_servers;
    s->retry_ok = !body && (strcmp(req->method, "GET") == 0 || req->is_head ||
                            strcmp(req->method, "OPTIONS") == 0);
    start_upstream(s, false, &head);
}

/* The client's END_STREAM: the request body (if chunked) ends. */
static void end_request(struct h2s *s)
{
    s->req = REQ_DONE;
    if (!forwarded(s) || !s->body_chunked)
        return;
    up_send(s, "0\r\n", 3, 0);
    up_send(s, s->rtrl.data, s->rtrl.len, 0);
    up_send(s, "\r\n", 2, 0);
}

/* ---- nghttp2 callbacks --------------------------------------------------- */

static void junk(struct pt_h2 *h, const char *what)
{
    if (++h->junk > JUNK_BASE + JUNK_PER_REQUEST * h->requests)
        terminate(h, NGHTTP2_ENHANCE_YOUR_CALM, what);
}

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *fr, void *ud)
{
    struct pt_h2 *h = ud;
    if (fr->hd.type != NGHTTP2_HEADERS || h->over)
        return 0;
    struct h2s *s = nghttp2_session_get_stream_user_data(sess, fr->hd.stream_id);
    if (s) {
        s->req = REQ_TRAILERS;
        s->field_bytes = 0;
        return 0;
    }
    if (fr->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    s = stream_new(h, fr->hd.stream_id);
    nghttp2_session_set_stream_user_data(sess, fr->hd.stream_id, s);
    return 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *fr, const uint8_t *name,
                     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)flags;
    struct pt_h2 *h = ud;
    struct h2s *s = nghttp2_session_get_stream_user_data(sess, fr->hd.stream_id);
    if (s == NULL || h->over)
        return 0;
    /* Counted as decoded (RFC 7541 4.1 sizes): a small block that inflates
     * (an HPACK bomb) stops at the same bound as a big one. */
    s->field_bytes += nl + vl + 32;
    if (s->field_bytes > PT_HTTP_HEAD_MAX || ++s->n_fields > PT_H2H1_FIELDS_MAX) {
        terminate(h, NGHTTP2_ENHANCE_YOUR_CALM, "header list too large");
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (s->req == REQ_TRAILERS) {
        struct pt_http_hdr f = {(const char *)name, nl, (const char *)value, vl};
        if (pt_h2h1_trailer(&f, &s->rtrl) != 0) {
            reset(s, NGHTTP2_PROTOCOL_ERROR, "h2_bad_trailer");
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return 0;
    }
    pt_wbuf_u16(&s->fields, (uint16_t)nl);
    pt_wbuf_put(&s->fields, name, nl);
    pt_wbuf_u16(&s->fields, (uint16_t)vl);
    pt_wbuf_put(&s->fields, value, vl);
    return 0;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *fr, void *ud)
{
    struct pt_h2 *h = ud;
    struct h2s *s = nghttp2_session_get_stream_user_data(sess, fr->hd.stream_id);
    bool end = fr->hd.flags & NGHTTP2_FLAG_END_STREAM;
    h->last_active_ms = pt_worker_now_ms(h->host.w);
    switch (fr->hd.type) {
    case NGHTTP2_HEADERS:
        if (s == NULL || h->over)
            break;
        if (s->req == REQ_HEADERS)
            start_request(s, !end);
        if (end)
            end_request(s);
        break;
    case NGHTTP2_DATA:
        if (fr->hd.length == 0 && !end)
            junk(h, "empty DATA flood");
        if (s && end)
            end_request(s);
        break;
    case NGHTTP2_SETTINGS:
        if (!(fr->hd.flags & NGHTTP2_FLAG_ACK))
            junk(h, "SETTINGS flood");
        break;
    case NGHTTP2_PING:
        if (!(fr->hd.flags & NGHTTP2_FLAG_ACK))
            junk(h, "PING flood");
        break;
    case NGHTTP2_PRIORITY:
        junk(h, "PRIORITY flood");
        break;
    case NGHTTP2_RST_STREAM:
        /* Rapid reset (CVE-2023-44487): streams opened and cancelled cost
         * us a backend exchange each and the client nothing. */
        if (++h->resets > RESETS_BASE + h->finished)
            terminate(h, NGHTTP2_ENHANCE_YOUR_CALM, "rapid reset");
        break;
    default:
        break;
    }
    return 0;
}

static int on_data(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *ud)
{
    (void)flags;
    struct pt_h2 *h = ud;
    struct h2s *s = nghttp2_session_get_stream_user_data(sess, id);
    if (s == NULL || !forwarded(s) || s->up == NULL || h->over) {
        nghttp2_session_consume(sess, id, len); /* nobody wants them */
        return 0;
    }
    s->bytes_in += len;
    s->last_ms = pt_worker_now_ms(h->host.w);
    if (s->body_chunked) {
        char sz[PT_H1BODY_CHUNK_HEAD_MAX];
        int n = snprintf(sz, sizeof(sz), "%zx\r\n", len);
        up_send(s, sz, (size_t)n, 0);
        up_send(s, data, len, len);
        up_send(s, "\r\n", 2, 0);
    } else {
        up_send(s, data, len, len);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t code, void *ud)
{
    struct pt_h2 *h = ud;
    struct h2s *s = nghttp2_session_get_stream_user_data(sess, id);
    if (s == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(sess, id, NULL);
    s->h2_open = false;
    h->n_open--;
    if (code == NGHTTP2_NO_ERROR && s->resp == RESP_DONE)
        h->finished++;
    else if (s->result == NULL)
        s->result = code == NGHTTP2_CANCEL ? "client_cancel" : "stream_reset";
    if (s->resp != RESP_DONE || s->out.len > s->out_off)
        up_close(s);
    log_stream(s, h);
    release(s);
    return 0;
}

/* ---- session ------------------------------------------------------------------ */

/* Moves nghttp2's output to the client while it takes it. Returns -1 once
 * the session is over (nothing more to read or write). */
static int flush(struct pt_h2 *h)
{
    if (h->in_recv)
        return 0;
    while (h->host.queued(h->host.ctx) <= CLIENT_QUEUE_HIGH) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(h->sess, &p);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        pt_wbuf_put(&h->sendbuf, p, (size_t)n);
        if (h->sendbuf.len >= SEND_BATCH) {
            h->host.send(h->host.ctx, h->sendbuf.data, h->sendbuf.len);
            h->sendbuf.len = 0;
        }
    }
    /* What one turn produced leaves in one TLS write; an idle connection
     * keeps no buffer. */
    if (h->sendbuf.len)
        h->host.send(h->host.ctx, h->sendbuf.data, h->sendbuf.len);
    pt_wbuf_free(&h->sendbuf);
    if (!nghttp2_session_want_read(h->sess) && !nghttp2_session_want_write(h->sess))
        return -1;
    return 0;
}

struct pt_h2 *pt_h2_new(const struct pt_h2_host *host)
{
    struct pt_h2 *h = pt_xcalloc(1, sizeof(*h));
    h->host = *host;
    h->last_active_ms = h->progress_ms = pt_worker_now_ms(host->w);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    /* Request bodies are acknowledged when the backend took them. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 100);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_session_server_new2(&h->sess, cb, h, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_STREAMS_MAX},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, PT_HTTP_HEAD_MAX},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(h->sess, NGHTTP2_FLAG_NONE, iv, PT_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(h->sess, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
    flush(h);
    return h;
}

int pt_h2_input(struct pt_h2 *h, const uint8_t *p, size_t n)
{
    h->in_recv = true;
    ssize_t r = nghttp2_session_mem_recv(h->sess, p, n);
    h->in_recv = false;
    if (r < 0) {
        /* Fatal for the session (bad preface, a flood nghttp2 caught):
         * GOAWAY if it still can, then the end. */
        terminate(h, r == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM
                                              : NGHTTP2_PROTOCOL_ERROR,
                  nghttp2_strerror((int)r));
        flush(h);
        return -1;
    }
    return flush(h);
}

int pt_h2_output(struct pt_h2 *h)
{
    return flush(h);
}

int pt_h2_tick(struct pt_h2 *h, uint64_t now)
{
    const struct pt_settings *st = &h->host.snap->settings;
    bool waiting = false;
    for (struct h2s *s = h->streams, *next; s; s = next) {
        next = s->next;
        bool stalled = false;
        if (s->up && pt_upconn_tick(s->up, now, st->connect_timeout_ms) == UINT64_MAX &&
            !pt_upconn_is_open(s->up))
            /* A name lookup or TLS handshake: as for HTTP/1.1, the
             * connection must be up within the connect timeout. */
            stalled = now - s->last_ms >= st->connect_timeout_ms;
        if (stalled && s->resp == RESP_HEAD) {
            pt_upconn_server_failed(s->up);
            answer(s, 504, NULL);
        } else if (forwarded(s) && now - s->last_ms > st->idle_timeout_ms) {
            if (s->resp == RESP_HEAD) {
                pt_upconn_server_failed(s->up); /* connected, never answered */
                answer(s, 504, NULL);
            }
            else
                reset(s, NGHTTP2_CANCEL, "idle_timeout");
        }
        waiting |= s->h2_open && s->out.len > s->out_off; /* held back by the window */
    }
    if (waiting && now - h->progress_ms > st->send_timeout_ms)
        terminate(h, NGHTTP2_ENHANCE_YOUR_CALM, "window stalled");
    else if (!waiting)
        h->progress_ms = now;
    if (h->n_open == 0 && now - h->last_active_ms > st->idle_timeout_ms)
        terminate(h, NGHTTP2_NO_ERROR, "idle");
    return flush(h);
}

void pt_h2_free(struct pt_h2 *h)
{
    if (h == NULL)
        return;
    /* nghttp2_session_del does not call on_stream_close: the open streams
     * are logged and given up here. */
    for (struct h2s *s = h->streams, *next; s; s = next) {
        next = s->next;
        s->h = NULL;
        s->prev = s->next = NULL;
        up_close(s);
        if (s->h2_open) {
            s->h2_open = false;
            if (s->result == NULL)
                s->result = "connection_closed";
            s->h = h; /* for the log line only */
            log_stream(s, h);
            s->h = NULL;
            release(s);
        }
    }
    nghttp2_session_del(h->sess);
    pt_wbuf_free(&h->sendbuf);
    free(h);
}

bool pt_h2_offered(const struct pt_snapshot *s, int route)
{
    if (s == NULL || route < 0 || (size_t)route >= s->n_domains)
        return false;
    const struct pt_domain *d = &s->domains[route];
    return d->mode == PT_MODE_OFFLOAD && d->http2;
}
