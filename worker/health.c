#include "worker/health.h"

#include "worker/conn.h"

#include "common/srvhealth.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* A background probe: one dial to one server, the dial's own connect
 * timeout, freed when its last handle is closed. */
struct probe {
    struct pt_health *h;
    size_t ix;               /* into h->s */
    struct pt_hostport hp;   /* a copy: the snapshot may go meanwhile */
    struct pt_dial dial;
    uv_tcp_t tcp;
    uv_timer_t timer;
    unsigned handles;
    bool done;
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

static void outcome(struct pt_health *h, struct pt_health_server *e, bool ok)
{
    if (ok) {
        e->fails = 0;
        set_state(e, PT_HEALTH_UP);
        return;
    }
    e->failures++;
    if (e->fails < 32)
        e->fails++;
    uint64_t backoff = (uint64_t)PT_HEALTH_BACKOFF_MIN_MS << (e->fails - 1);
    if (backoff > PT_HEALTH_BACKOFF_MAX_MS)
        backoff = PT_HEALTH_BACKOFF_MAX_MS;
    e->retry_at = uv_now(h->loop) + backoff;
    set_state(e, PT_HEALTH_DOWN);
    schedule(h);
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

static void probe_release(struct probe *p)
{
    if (--p->handles > 0)
        return;
    p->h->probes--;
    free(p);
}

static void probe_closed(uv_handle_t *hd)
{
    probe_release(hd->data);
}

/* Records the result once and closes what is open. */
static void probe_end(struct probe *p, bool ok)
{
    if (p->done)
        return;
    p->done = true;
    struct pt_health *h = p->h;
    if (!h->closing) {
        h->s[p->ix].probing = false;
        outcome(h, &h->s[p->ix], ok);
    }
    pt_dial_cancel(&p->dial);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, probe_closed);
    if (p->dial.tcp != NULL && !uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, probe_closed);
}

static struct probe *probe_of(struct pt_dial *d)
{
    return PT_CONTAINER_OF(d, struct probe, dial);
}

static uv_tcp_t *probe_attempt(struct pt_dial *d)
{
    struct probe *p = probe_of(d);
    uv_tcp_init(p->h->loop, &p->tcp);
    p->tcp.data = p;
    p->handles++;
    return &p->tcp;
}

static void probe_connected(struct pt_dial *d)
{
    probe_end(probe_of(d), true);
}

static void probe_attempt_closed(uv_handle_t *hd)
{
    struct probe *p = hd->data;
    if (!p->done)
        pt_dial_next(&p->dial); /* one server: exhausted */
    probe_release(p);
}

static void probe_exhausted(struct pt_dial *d)
{
    probe_end(probe_of(d), false);
}

static void probe_hold(struct pt_dial *d, bool take)
{
    struct probe *p = probe_of(d);
    if (take)
        p->handles++;
    else
        probe_release(p);
}

static const struct pt_dial_ops probe_ops = {probe_attempt, probe_connected,
                                             probe_attempt_closed, probe_exhausted,
                                             probe_hold};

static void on_probe_timeout(uv_timer_t *t)
{
    struct probe *p = t->data;
    if (p->dial.tcp != NULL && !p->dial.gai_pending)
        pt_dial_abandon(&p->dial); /* exhausted follows */
    else
        probe_end(p, false);
}

static void probe_start(struct pt_health *h, size_t ix, const struct pt_hostport *hp)
{
    struct probe *p = pt_xcalloc(1, sizeof(*p));
    p->h = h;
    p->ix = ix;
    p->hp = *hp;
    h->s[ix].probing = true;
    h->probes++;
    uv_timer_init(h->loop, &p->timer);
    p->timer.data = p;
    p->handles = 2; /* the timer, and this start until the dial has begun */
    uv_timer_start(&p->timer, on_probe_timeout, h->connect_timeout_ms, 0);
    /* No health memory for the probe's own dial: it must try a down server. */
    pt_dial_start(&p->dial, &probe_ops, h->loop, NULL, &p->hp, 1);
    probe_release(p);
}

/* ---- background timer ------------------------------------------------------ */

static void on_timer(uv_timer_t *t)
{
    struct pt_health *h = t->data;
    uint64_t now = uv_now(h->loop);
    for (size_t i = 0; i < h->n; i++) {
        struct pt_health_server *e = &h->s[i];
        if (e->state != PT_HEALTH_DOWN || e->probing || e->retry_at > now)
            continue;
        struct pt_hostport hp;
        if (pt_hostport_parse(e->key, strlen(e->key), &hp, NULL) != 0)
            continue; /* cannot happen: the key was formatted from one */
        probe_start(h, i, &hp);
    }
    schedule(h);
}

static void schedule(struct pt_health *h)
{
    uint64_t next = UINT64_MAX, now = uv_now(h->loop);
    for (size_t i = 0; i < h->n; i++)
        if (h->s[i].state == PT_HEALTH_DOWN && !h->s[i].probing && h->s[i].retry_at < next)
            next = h->s[i].retry_at;
    if (next == UINT64_MAX || h->closing)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timer, next > now ? next - now : 0, 0);
}

void pt_health_init(struct pt_health *h, uv_loop_t *loop)
{
    memset(h, 0, sizeof(*h));
    h->loop = loop;
    h->connect_timeout_ms = 5000;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
}

void pt_health_close(struct pt_health *h)
{
    h->closing = true;
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, NULL);
    free(h->s);
    h->s = NULL;
    h->n = h->cap = 0;
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
