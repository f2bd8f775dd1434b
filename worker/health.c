#include "worker/health.h"

#include "worker/conn.h"

#include "common/srvhealth.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PROBE_RESP_MAX 512 /* the status line must come within this */

/* A background probe: one dial to one server, then for active TLS and HTTP
 * checks a handshake and a request over memory BIOs; bounded by its own
 * timer, freed when its last handle is closed. */
struct pt_health_probe {
    struct pt_health *h;
    struct pt_health_probe *next, **pprev; /* in h->running while not done */
    size_t ix;               /* into h->s */
    struct pt_hostport hp;   /* a copy: the snapshot may go meanwhile */
    enum pt_check_kind kind; /* PT_CHECK_NONE: a passive re-probe (TCP) */
    bool tls;                /* HTTP over TLS */
    char path[PT_CHECK_PATH_MAX + 1];
    struct pt_dial dial;
    uv_tcp_t tcp;
    uv_timer_t timer;
    unsigned handles;
    bool done;
    SSL *ssl;                /* owned, TLS and HTTPS checks */
    BIO *rbio, *wbio;        /* owned by ssl */
    bool hs_done;
    char resp[PROBE_RESP_MAX];
    size_t resp_len;
    char rbuf[4096];
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct pt_health_server *find(struct pt_health *h, const struct pt_hostport *hp,
                                     bool add)
{
    if (h->n == 0 && !add)
        return NULL; /* nothing failed or is checked: every dial asks this */
    char key[sizeof(h->s[0].key)];
    pt_hostport_format(hp, key, sizeof(key));
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->s[i].key, key) == 0)
            return &h->s[i];
    if (!add || h->n == PT_HEALTH_SERVERS_MAX)
        return NULL;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->s = pt_xrealloc(h->s, h->cap * sizeof(*h->s));
    }
    struct pt_health_server *e = &h->s[h->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, sizeof(key));
    return e;
}

static void schedule(struct pt_health *h);

static void set_state(struct pt_health_server *e, enum pt_health_state st)
{
    if (e->state != st)
        e->changed_ms = wall_ms();
    e->state = st;
}

static void count_failure(struct pt_health_server *e)
{
    e->failures++;
    e->oks = 0;
    if (e->fails < 32)
        e->fails++;
}

/* A real connection's outcome, or a passive re-probe's: one failure is
 * enough to skip the server (it just cost a client), one success to use it
 * again. */
static void outcome(struct pt_health *h, struct pt_health_server *e, bool ok)
{
    if (ok) {
        e->fails = 0;
        set_state(e, PT_HEALTH_UP);
        return;
    }
    count_failure(e);
    uint64_t backoff = (uint64_t)PT_HEALTH_BACKOFF_MIN_MS << (e->fails - 1);
    if (backoff > PT_HEALTH_BACKOFF_MAX_MS)
        backoff = PT_HEALTH_BACKOFF_MAX_MS;
    e->retry_at = uv_now(h->loop) + backoff;
    set_state(e, PT_HEALTH_DOWN);
    schedule(h);
}

/* An active check's outcome: the thresholds decide. */
static void check_outcome(struct pt_health_server *e, bool ok)
{
    if (!ok) {
        count_failure(e);
        if (e->state == PT_HEALTH_UP && e->fails >= e->check.fall)
            set_state(e, PT_HEALTH_DOWN);
        return;
    }
    e->fails = 0;
    if (e->oks < 255)
        e->oks++;
    if (e->state == PT_HEALTH_DOWN && e->oks >= e->check.rise)
        set_state(e, PT_HEALTH_UP);
}

void pt_health_report(struct pt_health *h, const struct pt_hostport *hp, bool ok)
{
    if (h->closing)
        return;
    struct pt_health_server *e = find(h, hp, !ok);
    if (e != NULL)
        outcome(h, e, ok);
}

bool pt_health_usable(struct pt_health *h, const struct pt_hostport *hp)
{
    struct pt_health_server *e = find(h, hp, false);
    return e == NULL || e->state == PT_HEALTH_UP;
}

/* ---- probes --------------------------------------------------------------- */

static void probe_release(struct pt_health_probe *p)
{
    if (--p->handles > 0)
        return;
    p->h->probes--;
    SSL_free(p->ssl);
    free(p);
}

static void probe_closed(uv_handle_t *hd)
{
    probe_release(hd->data);
}

/* Records the result once and closes what is open. */
static void probe_end(struct pt_health_probe *p, bool ok)
{
    if (p->done)
        return;
    p->done = true;
    if (p->next)
        p->next->pprev = p->pprev;
    *p->pprev = p->next;
    struct pt_health *h = p->h;
    if (!h->closing) {
        struct pt_health_server *e = &h->s[p->ix];
        e->probing = false;
        if (p->kind == PT_CHECK_NONE)
            outcome(h, e, ok);
        else
            check_outcome(e, ok);
        schedule(h);
    }
    pt_dial_cancel(&p->dial);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, probe_closed);
    if (p->dial.tcp != NULL && !uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, probe_closed);
}

/* Writes <n> bytes at once: a probe's flights are small and its socket's
 * buffer is empty, so anything short of all of it is a failure. */
static bool send_all(struct pt_health_probe *p, const void *data, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
    return n == 0 || uv_try_write((uv_stream_t *)&p->tcp, &b, 1) == (int)n;
}

static bool flush_tls(struct pt_health_probe *p)
{
    char out[4096];
    int n;
    while ((n = BIO_read(p->wbio, out, sizeof(out))) > 0)
        if (!send_all(p, out, (size_t)n))
            return false;
    return true;
}

static bool send_request(struct pt_health_probe *p)
{
    char host[PT_HOST_MAX + 16], req[PT_CHECK_PATH_MAX + sizeof(host) + 96];
    pt_hostport_format(&p->hp, host, sizeof(host));
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portier-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     p->path, host);
    if (p->ssl == NULL)
        return send_all(p, req, (size_t)n);
    return SSL_write(p->ssl, req, n) == n && flush_tls(p);
}

/* The status line decides: 2xx and 3xx are healthy. */
static void check_status(struct pt_health_probe *p)
{
    const char *eol = memchr(p->resp, '\n', p->resp_len);
    if (eol == NULL) {
        if (p->resp_len == sizeof(p->resp))
            probe_end(p, false);
        return;
    }
    int status = 0;
    bool ok = p->resp_len >= 12 && memcmp(p->resp, "HTTP/1.", 7) == 0 && p->resp[8] == ' ' &&
              sscanf(p->resp + 9, "%3d", &status) == 1;
    probe_end(p, ok && status >= 200 && status < 400);
}

static void take(struct pt_health_probe *p, const char *data, size_t n)
{
    if (n > sizeof(p->resp) - p->resp_len)
        n = sizeof(p->resp) - p->resp_len;
    memcpy(p->resp + p->resp_len, data, n);
    p->resp_len += n;
}

/* Moves the TLS session on with what came in. */
static void tls_step(struct pt_health_probe *p)
{
    if (!p->hs_done) {
        int r = SSL_do_handshake(p->ssl);
        if (!flush_tls(p))
            goto fail;
        if (r != 1) {
            int e = SSL_get_error(p->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                goto fail;
            return;
        }
        p->hs_done = true;
        if (p->kind == PT_CHECK_TLS) {
            probe_end(p, true);
            return;
        }
        if (!send_request(p))
            goto fail;
    }
    char buf[1024];
    int r;
    while (!p->done && (r = SSL_read(p->ssl, buf, sizeof(buf))) > 0) {
        take(p, buf, (size_t)r);
        check_status(p);
    }
    return;
fail:
    probe_end(p, false);
}

static void probe_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *buf)
{
    struct pt_health_probe *p = hd->data;
    (void)hint;
    *buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void probe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pt_health_probe *p = s->data;
    if (p->done || nread == 0)
        return;
    if (nread < 0) {
        probe_end(p, false); /* closed before it answered */
        return;
    }
    if (p->ssl == NULL) {
        take(p, buf->base, (size_t)nread);
        check_status(p);
        return;
    }
    if (BIO_write(p->rbio, buf->base, (int)nread) != (int)nread)
        probe_end(p, false);
    else
        tls_step(p);
}

static struct pt_health_probe *probe_of(struct pt_dial *d)
{
    return PT_CONTAINER_OF(d, struct pt_health_probe, dial);
}

static uv_tcp_t *probe_attempt(struct pt_dial *d)
{
    struct pt_health_probe *p = probe_of(d);
    uv_tcp_init(p->h->loop, &p->tcp);
    p->tcp.data = p;
    p->handles++;
    return &p->tcp;
}

static void probe_connected(struct pt_dial *d)
{
    struct pt_health_probe *p = probe_of(d);
    if (p->kind == PT_CHECK_NONE || p->kind == PT_CHECK_TCP) {
        probe_end(p, true);
        return;
    }
    uv_read_start((uv_stream_t *)&p->tcp, probe_alloc, probe_read);
    if (p->kind == PT_CHECK_HTTP && !p->tls) {
        if (!send_request(p))
            probe_end(p, false);
        return;
    }
    p->ssl = SSL_new(p->h->tls_ctx);
    p->rbio = BIO_new(BIO_s_mem());
    p->wbio = BIO_new(BIO_s_mem());
    if (p->ssl == NULL || p->rbio == NULL || p->wbio == NULL) {
        BIO_free(p->rbio);
        BIO_free(p->wbio);
        probe_end(p, false);
        return;
    }
    SSL_set_bio(p->ssl, p->rbio, p->wbio);
    SSL_set_connect_state(p->ssl);
    if (p->hp.kind == PT_HOST_DNS)
        SSL_set_tlsext_host_name(p->ssl, p->hp.host);
    tls_step(p);
}

static void probe_attempt_closed(uv_handle_t *hd)
{
    struct pt_health_probe *p = hd->data;
    if (!p->done)
        pt_dial_next(&p->dial); /* one server: exhausted */
    probe_release(p);
}

static void probe_exhausted(struct pt_dial *d)
{
    probe_end(probe_of(d), false);
}

static void probe_hold(struct pt_dial *d, bool take_ref)
{
    struct pt_health_probe *p = probe_of(d);
    if (take_ref)
        p->handles++;
    else
        probe_release(p);
}

static const struct pt_dial_ops probe_ops = {probe_attempt, probe_connected,
                                             probe_attempt_closed, probe_exhausted,
                                             probe_hold, NULL};

static void on_probe_timeout(uv_timer_t *t)
{
    /* Whatever step it is at (lookup, connect, handshake, answer): closing
     * the handle ends it, a pending connect or lookup included. */
    probe_end(t->data, false);
}

static void probe_start(struct pt_health *h, size_t ix)
{
    struct pt_health_server *e = &h->s[ix];
    struct pt_hostport hp;
    if (pt_hostport_parse(e->key, strlen(e->key), &hp, NULL) != 0)
        return; /* cannot happen: the key was formatted from one */
    struct pt_health_probe *p = pt_xcalloc(1, sizeof(*p));
    p->h = h;
    p->ix = ix;
    p->hp = hp;
    p->kind = e->check.kind;
    p->tls = e->tls;
    memcpy(p->path, e->check.path, sizeof(p->path));
    e->probing = true;
    h->probes++;
    p->next = h->running;
    if (p->next)
        p->next->pprev = &p->next;
    p->pprev = &h->running;
    h->running = p;
    uv_timer_init(h->loop, &p->timer);
    p->timer.data = p;
    p->handles = 2; /* the timer, and this start until the dial has begun */
    uv_timer_start(&p->timer, on_probe_timeout,
                   p->kind == PT_CHECK_NONE ? h->connect_timeout_ms : e->check.timeout_ms, 0);
    /* No health memory for the probe's own dial: it must try a down server. */
    pt_dial_start(&p->dial, &probe_ops, h->loop, NULL, &p->hp, 1);
    probe_release(p);
}

/* ---- background timer ------------------------------------------------------ */

/* When entry <e> wants its next probe (loop ms), UINT64_MAX for never. */
static uint64_t due(const struct pt_health_server *e)
{
    if (e->probing)
        return UINT64_MAX;
    if (e->check.kind != PT_CHECK_NONE)
        return e->next_check;
    return e->state == PT_HEALTH_DOWN ? e->retry_at : UINT64_MAX;
}

static void on_timer(uv_timer_t *t)
{
    struct pt_health *h = t->data;
    uint64_t now = uv_now(h->loop);
    for (size_t i = 0; i < h->n; i++) {
        struct pt_health_server *e = &h->s[i];
        if (due(e) > now)
            continue;
        if (e->check.kind != PT_CHECK_NONE)
            e->next_check = now + e->check.interval_ms;
        probe_start(h, i);
    }
    schedule(h);
}

static void schedule(struct pt_health *h)
{
    uint64_t next = UINT64_MAX, now = uv_now(h->loop);
    for (size_t i = 0; i < h->n; i++)
        if (due(&h->s[i]) < next)
            next = due(&h->s[i]);
    if (next == UINT64_MAX || h->closing)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timer, next > now ? next - now : 0, 0);
}

void pt_health_configure(struct pt_health *h, const struct pt_snapshot *snap)
{
    if (h->closing)
        return;
    h->connect_timeout_ms = snap->settings.connect_timeout_ms;
    for (size_t i = 0; i < h->n; i++) {
        h->s[i].check.kind = PT_CHECK_NONE;
        h->s[i].seen = false;
    }
    uint64_t now = uv_now(h->loop);
    for (size_t b = 0; b < snap->n_backends; b++) {
        const struct pt_backend *be = &snap->backends[b];
        if (be->check.kind == PT_CHECK_NONE)
            continue;
        for (size_t i = 0; i < be->n_servers; i++) {
            struct pt_health_server *e = find(h, &be->servers[i], true);
            if (e == NULL || e->seen)
                continue; /* listed by an earlier backend: its check applies */
            e->seen = true;
            bool same = memcmp(&e->check, &be->check, sizeof(be->check)) == 0;
            e->check = be->check;
            e->tls = be->tls;
            if (!same)
                e->next_check = now; /* a new or changed check runs at once */
        }
    }
    schedule(h);
}

void pt_health_init(struct pt_health *h, uv_loop_t *loop)
{
    memset(h, 0, sizeof(*h));
    h->loop = loop;
    h->connect_timeout_ms = 5000;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    /* Checks say whether a server answers, not whether it is who it claims:
     * its certificate is not verified (a backend may use a private CA). */
    h->tls_ctx = SSL_CTX_new(TLS_client_method());
    if (h->tls_ctx != NULL) {
        SSL_CTX_set_min_proto_version(h->tls_ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(h->tls_ctx, SSL_VERIFY_NONE, NULL);
    }
}

void pt_health_close(struct pt_health *h)
{
    h->closing = true;
    while (h->running)
        probe_end(h->running, false); /* unlinks it; its handles close */
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, NULL);
    free(h->s);
    h->s = NULL;
    h->n = h->cap = 0;
    SSL_CTX_free(h->tls_ctx); /* probes' SSL objects hold their own reference */
    h->tls_ctx = NULL;
}

void pt_health_encode(struct pt_health *h, const struct pt_snapshot *snap, struct pt_wbuf *b)
{
    size_t off = b->len;
    uint32_t n = 0;
    pt_wbuf_u32(b, 0);
    for (size_t bi = 0; snap && bi < snap->n_backends; bi++) {
        const struct pt_backend *be = &snap->backends[bi];
        for (size_t i = 0; i < be->n_servers + be->n_http_servers; i++) {
            const struct pt_hostport *hp =
                i < be->n_servers ? &be->servers[i] : &be->http_servers[i - be->n_servers];
            struct pt_srvhealth r = {.up = true};
            snprintf(r.backend, sizeof(r.backend), "%s", be->name);
            pt_hostport_format(hp, r.server, sizeof(r.server));
            const struct pt_health_server *e = find(h, hp, false);
            if (e != NULL) {
                r.up = e->state == PT_HEALTH_UP;
                r.fails = e->fails;
                r.failures = e->failures;
                r.changed_ms = e->changed_ms;
            }
            pt_srvhealth_put(b, &r);
            n++;
        }
    }
    pt_wbuf_patch_u32(b, off, n);
}
