#include "worker/conn.h"

#include "worker/health.h"
#include "worker/upstream.h"

void pt_conn_open(struct pt_worker *w, struct pt_conntrack *ct,
                  const struct sockaddr_storage *addr, void (*kill)(struct pt_conntrack *ct),
                  struct pt_deadline *dl, void *data, void (*expired)(struct pt_deadline *dl))
{
    pt_worker_conn_opened(w);
    pt_conntrack_add(&w->tracked, ct, addr, kill);
    pt_deadline_init(dl, w->loop, data, expired);
}

void pt_conn_closing(struct pt_conntrack *ct, struct pt_deadline *dl, uv_close_cb closed)
{
    ct->addr = NULL; /* going away: a ban has nothing left to cut */
    pt_deadline_stop(dl);
    uv_close((uv_handle_t *)&dl->timer, closed);
}

void pt_conn_close_tcp(uv_tcp_t *tcp, bool reset, uv_close_cb closed)
{
    if (uv_is_closing((uv_handle_t *)tcp))
        return;
    if (reset && uv_tcp_close_reset(tcp, closed) == 0)
        return;
    uv_close((uv_handle_t *)tcp, closed);
}

void pt_conn_free(struct pt_worker *w, struct pt_conntrack *ct, struct pt_snapshot *snap,
                  void *mem)
{
    pt_conntrack_remove(&w->tracked, ct);
    pt_snap_unref(snap);
    free(mem);
    pt_worker_conn_closed(w);
}

static void on_deadline(uv_timer_t *t);

static void deadline_start(struct pt_deadline *dl, uint64_t at)
{
    uint64_t now = uv_now(dl->timer.loop);
    dl->wake = at;
    uv_timer_start(&dl->timer, on_deadline, at > now ? at - now : 0, 0);
}

static void on_deadline(uv_timer_t *t)
{
    struct pt_deadline *dl = PT_CONTAINER_OF(t, struct pt_deadline, timer);
    dl->wake = UINT64_MAX;
    if (uv_now(t->loop) < dl->at) {
        deadline_start(dl, dl->at); /* activity moved it: sleep for what is left */
        return;
    }
    dl->expired(dl);
}

void pt_deadline_init(struct pt_deadline *dl, uv_loop_t *loop, void *data,
                      void (*expired)(struct pt_deadline *dl))
{
    uv_timer_init(loop, &dl->timer);
    dl->timer.data = data;
    dl->at = dl->wake = UINT64_MAX;
    dl->expired = expired;
}

void pt_deadline_set(struct pt_deadline *dl, uint64_t at)
{
    dl->at = at;
    if (at < dl->wake)
        deadline_start(dl, at);
}

void pt_deadline_arm(struct pt_deadline *dl, uint32_t ms)
{
    pt_deadline_set(dl, uv_now(dl->timer.loop) + ms);
}

void pt_deadline_stop(struct pt_deadline *dl)
{
    uv_timer_stop(&dl->timer);
    dl->at = dl->wake = UINT64_MAX;
}

static void dial_try(struct pt_dial *d);

static void on_connect(uv_connect_t *req, int status)
{
    struct pt_dial *d = req->data;
    if (status == UV_ECANCELED || d->cancelled)
        return;
    if (status != 0)
        pt_dial_abandon(d);
    else
        pt_dial_connected(d);
}

void pt_dial_connected(struct pt_dial *d)
{
    d->raw_open = false;
    if (d->health)
        pt_health_report(d->health, &d->servers[d->ix], true);
    d->ops->connected(d);
}

static void connect_to(struct pt_dial *d, const struct sockaddr *sa)
{
    if (d->ops->connect_raw) {
        d->raw_open = true;
        if (d->ops->connect_raw(d, sa) != 0)
            pt_dial_abandon(d);
        return;
    }
    d->tcp = d->ops->attempt(d);
    d->creq.data = d;
    if (uv_tcp_connect(&d->creq, d->tcp, sa, on_connect) != 0)
        pt_dial_abandon(d);
    else if (d->ops->connecting)
        d->ops->connecting(d);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct pt_dial *d = req->data;
    struct sockaddr_storage sa;
    d->gai_pending = false;
    bool ok = pt_upstream_take(status, res, d->servers[d->ix].port, &sa);
    if (!d->cancelled) {
        if (ok) {
            connect_to(d, (struct sockaddr *)&sa);
        } else {
            if (d->health)
                pt_health_report(d->health, &d->servers[d->ix], false);
            d->ix++;
            dial_try(d);
        }
    }
    d->ops->hold(d, false);
}

static void dial_try(struct pt_dial *d)
{
    while (d->health && d->ix < d->n_servers && !pt_health_usable(d->health, &d->servers[d->ix]))
        d->ix++;
    if (d->ix >= d->n_servers) {
        d->ops->exhausted(d);
        return;
    }
    const struct pt_hostport *hp = &d->servers[d->ix];
    if (hp->kind != PT_HOST_DNS) {
        connect_to(d, (const struct sockaddr *)&hp->sa);
        return;
    }
    d->gai.data = d;
    d->gai_pending = true;
    d->ops->hold(d, true);
    if (pt_upstream_lookup(d->loop, &d->gai, on_resolved, hp) != 0) {
        /* The callback will not run: the reference goes back now (the
         * caller holds others while it dials, this one cannot free it). */
        d->gai_pending = false;
        d->ops->hold(d, false);
        d->ix++;
        dial_try(d);
    }
}

void pt_dial_start(struct pt_dial *d, const struct pt_dial_ops *ops, uv_loop_t *loop,
                   struct pt_health *health, const struct pt_hostport *servers, size_t n)
{
    d->ops = ops;
    d->loop = loop;
    d->health = health;
    d->servers = servers;
    d->n_servers = n;
    d->ix = 0;
    d->tcp = NULL;
    d->raw_open = false;
    d->cancelled = false;
    dial_try(d);
}

void pt_dial_next(struct pt_dial *d)
{
    if (d->cancelled)
        return;
    d->ix++;
    dial_try(d);
}

void pt_dial_abandon(struct pt_dial *d)
{
    if (d->ops->connect_raw ? !d->raw_open : uv_is_closing((uv_handle_t *)d->tcp))
        return;
    if (d->health)
        pt_health_report(d->health, &d->servers[d->ix], false);
    if (d->ops->connect_raw) {
        d->raw_open = false;
        d->ops->raw_failed(d);
        return;
    }
    uv_close((uv_handle_t *)d->tcp, d->ops->attempt_closed);
}

void pt_dial_cancel(struct pt_dial *d)
{
    d->cancelled = true;
    if (d->gai_pending)
        uv_cancel((uv_req_t *)&d->gai);
}

void pt_dial_server_failed(struct pt_dial *d)
{
    if (d->health && d->servers && d->ix < d->n_servers)
        pt_health_report(d->health, &d->servers[d->ix], false);
}
