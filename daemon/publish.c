#include "daemon/publish.h"

#include "api/model.h"
#include "common/ipc.h"
#include "common/dname.h"
#include "common/log.h"
#include "daemon/listeners.h"
#include "db/certs.h"

#include <time.h>

struct collect {
    struct pt_snapshot *s;
    size_t cap_b, cap_d, cap_bans, cap_certs, cap_tokens, cap_st;
    int64_t now;
    struct pt_listeners *listeners;
};

static int on_cert(void *arg, const struct pt_store_cert *sc)
{
    struct collect *c = arg;
    struct pt_cert ct;
    if (!pt_model_cert_served(sc, c->now, &ct))
        return 0;
    if (c->s->n_certs == c->cap_certs) {
        c->cap_certs = c->cap_certs ? c->cap_certs * 2 : 16;
        c->s->certs = pt_xrealloc(c->s->certs, c->cap_certs * sizeof(*c->s->certs));
    }
    c->s->certs[c->s->n_certs++] = ct;
    return 0;
}

static int on_token(void *arg, const char *token, const char *keyauth)
{
    struct collect *c = arg;
    if (c->s->n_tokens == c->cap_tokens) {
        c->cap_tokens = c->cap_tokens ? c->cap_tokens * 2 : 8;
        c->s->tokens = pt_xrealloc(c->s->tokens, c->cap_tokens * sizeof(*c->s->tokens));
    }
    struct pt_acme_token *t = &c->s->tokens[c->s->n_tokens++];
    t->token = pt_xstrdup(token);
    t->key_authorization = pt_xstrdup(keyauth);
    return 0;
}

static int on_ban(void *arg, const struct pt_store_ban *sb)
{
    struct collect *c = arg;
    struct pt_cidr net;
    if (pt_cidr_parse(sb->ip, strlen(sb->ip), &net, NULL) != 0) {
        pt_log(PT_LOG_ERROR, "stored ban '%s' does not parse", sb->ip);
        return PT_EDB;
    }
    if (c->s->n_bans == c->cap_bans) {
        c->cap_bans = c->cap_bans ? c->cap_bans * 2 : 64;
        c->s->bans = pt_xrealloc(c->s->bans, c->cap_bans * sizeof(*c->s->bans));
    }
    struct pt_ban *b = &c->s->bans[c->s->n_bans++];
    b->net = net;
    b->expires = sb->expires;
    b->reason = pt_xstrdup(sb->reason ? sb->reason : "");
    return 0;
}

static int on_backend(void *arg, const char *name, const char *doc)
{
    struct collect *c = arg;
    struct pt_apierr e;
    json_t *j = json_loads(doc, 0, NULL);
    if (c->s->n_backends == c->cap_b) {
        c->cap_b = c->cap_b ? c->cap_b * 2 : 16;
        c->s->backends = pt_xrealloc(c->s->backends, c->cap_b * sizeof(*c->s->backends));
    }
    struct pt_backend *b = &c->s->backends[c->s->n_backends];
    int rc = j ? pt_model_backend_from_json(j, name, b, &e) : -1;
    json_decref(j);
    c->s->n_backends++;
    if (rc != 0) {
        pt_log(PT_LOG_ERROR, "stored backend '%s' does not decode", name);
        return PT_EDB;
    }
    return 0;
}

static int on_domain(void *arg, const char *name, const char *doc)
{
    struct collect *c = arg;
    struct pt_apierr e;
    json_t *j = json_loads(doc, 0, NULL);
    if (c->s->n_domains == c->cap_d) {
        c->cap_d = c->cap_d ? c->cap_d * 2 : 16;
        c->s->domains = pt_xrealloc(c->s->domains, c->cap_d * sizeof(*c->s->domains));
    }
    struct pt_domain *d = &c->s->domains[c->s->n_domains];
    int rc = j ? pt_model_domain_from_json(j, name, d, &e) : -1;
    json_decref(j);
    c->s->n_domains++;
    if (rc != 0) {
        pt_log(PT_LOG_ERROR, "stored domain '%s' does not decode", name);
        return PT_EDB;
    }
    return 0;
}

/* A stream's addresses become listener ids; one that cannot be bound now
 * (the API checked it when the stream was written, so the port was taken
 * since, or at start) is logged and left out until the next change. */
static void stream_listen(struct collect *c, struct pt_stream *st)
{
    st->lids = pt_xcalloc(st->n_listen ? st->n_listen : 1, sizeof(*st->lids));
    for (size_t i = 0; i < st->n_listen; i++) {
        char why[256];
        if (c->listeners == NULL ||
            pt_listeners_get(c->listeners, (const struct sockaddr *)&st->listen[i].sa,
                             st->listen[i].salen, true, &st->lids[i], why,
                             sizeof(why)) != 0) {
            if (c->listeners)
                pt_log(PT_LOG_ERROR, "stream '%s': %s", st->name, why);
            st->lids[i] = 0; /* no listener: workers ignore it */
        }
    }
}

static int on_stream(void *arg, const char *name, const char *doc)
{
    struct collect *c = arg;
    struct pt_apierr e;
    struct pt_streams *ss = &c->s->streams;
    json_t *j = json_loads(doc, 0, NULL);
    if (ss->n == c->cap_st) {
        c->cap_st = c->cap_st ? c->cap_st * 2 : 8;
        ss->v = pt_xrealloc(ss->v, c->cap_st * sizeof(*ss->v));
    }
    struct pt_stream *st = &ss->v[ss->n];
    int rc = j ? pt_model_stream_from_json(j, name, st, &e) : -1;
    json_decref(j);
    ss->n++;
    if (rc != 0) {
        pt_log(PT_LOG_ERROR, "stored stream '%s' does not decode", name);
        return PT_EDB;
    }
    stream_listen(c, st);
    return 0;
}

#include "daemon/supervisor.h"

/* The stream table as committed, with the listener ids of its addresses
 * (few rows: a stream write costs nothing per domain). */
static int compile_streams(struct pt_publisher *p, struct pt_streams *out)
{
    struct pt_snapshot tmp = {0};
    struct collect c = {&tmp, 0, 0, 0, 0, 0, 0, 0, p->listeners};
    if (p->listeners)
        pt_listeners_begin(p->listeners);
    int rc = pt_store_each(p->store, PT_STORE_STREAM, on_stream, &c);
    tmp.streams.lid_max = p->listeners ? pt_listeners_lid_max(p->listeners) : 0;
    *out = tmp.streams;
    return rc;
}

/* Fills the stream changes the API marked (empty tables) in <d>. */
static int fill_streams(struct pt_publisher *p, struct pt_delta *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->v[i].kind != PT_DELTA_STREAMS)
            continue;
        pt_streams_clear(&d->v[i].streams);
        int rc = compile_streams(p, &d->v[i].streams);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The frame for change <c> at <version>: its delta, unless the deltas kept
 * for starting workers since the last snapshot outweigh that snapshot; then
 * (and for a whole change) a new snapshot. *delta says which. */
static int encode(struct pt_publisher *p, const struct pt_commit *c, uint64_t version,
                  struct pt_wbuf *frame, bool *delta)
{
    *delta = c->kind != PT_COMMIT_WHOLE && !pt_supervisor_deltas_due(p->sup);
    if (c->kind != PT_COMMIT_WHOLE && !*delta)
        pt_log(PT_LOG_INFO, "the deltas since the last snapshot outweigh it: publishing a "
                            "whole snapshot (version %llu)",
               (unsigned long long)version);
    size_t off;
    if (*delta && c->kind == PT_COMMIT_BANS) {
        off = pt_ipc_begin(frame, PT_IPC_BANS);
        pt_snap_bans_encode(version, c->bans, c->n_bans, frame);
        pt_ipc_end(frame, off);
    } else if (*delta) {
        int rc = fill_streams(p, c->delta);
        if (rc != 0)
            return rc;
        c->delta->version = version;
        off = pt_ipc_begin(frame, PT_IPC_CONFIG);
        pt_delta_encode(c->delta, frame);
        pt_ipc_end(frame, off);
    }
    /* The model follows the store's transaction (dropped if that fails). */
    bool changed;
    if (c->delta && p->model && pt_delta_apply(&p->model, c->delta, &changed) != 0) {
        pt_log(PT_LOG_WARN, "the daemon's copy of the configuration disagrees with a change: "
                            "reading the store again");
        pt_snap_unref(p->model);
        p->model = NULL;
    }
    if (*delta)
        return 0;
    return pt_publish_compile(p->store, version, p->settings, p->listeners, &p->model, frame);
}

int pt_publish_commit(struct pt_publisher *p, const struct pt_commit *c, uint64_t *version,
                      bool *applied)
{
    static const struct pt_commit whole = {.kind = PT_COMMIT_WHOLE};
    struct pt_wbuf frame = {0};
    bool delta = false;
    *applied = false;
    if (c == NULL)
        c = &whole;
    if (pt_store_bump_version(p->store, version) != 0 ||
        encode(p, c, *version, &frame, &delta) != 0 || pt_store_commit(p->store) != 0) {
        pt_wbuf_free(&frame);
        pt_store_rollback(p->store);
        pt_snap_unref(p->model); /* it may hold the change rolled back */
        p->model = NULL;
        return PT_EDB;
    }
    if (delta) {
        pt_supervisor_publish_delta(p->sup, &frame, *version);
        /* The workers keep their copies of the sockets until the delta. */
        if (p->listeners && c->delta && pt_delta_has(c->delta, PT_DELTA_STREAMS))
            pt_listeners_sweep(p->listeners);
    } else
        pt_supervisor_publish(p->sup, &frame, *version);
    *applied = pt_supervisor_wait(p->sup, *version, p->ack_timeout_ms);
    return 0;
}

/* Keeps <s>'s backends and domains as the new model (moved, not copied). */
static struct pt_snapshot *keep_model(struct pt_snapshot *s)
{
    struct pt_snapshot *m = pt_xcalloc(1, sizeof(*m));
    m->refs = 1;
    m->objects_only = true; /* whole snapshots read certificates and
                             ACME answers from the store */
    m->backends = s->backends;
    m->n_backends = s->n_backends;
    m->domains = s->domains;
    m->n_domains = s->n_domains;
    s->backends = NULL;
    s->domains = NULL;
    s->n_backends = s->n_domains = 0;
    if (pt_snap_link(m) != 0) { /* cannot fail: <s> linked with them */
        pt_snap_unref(m);
        return NULL;
    }
    return m;
}

int pt_publish_compile(struct pt_store *store, uint64_t version,
                       const struct pt_settings *settings, struct pt_listeners *listeners,
                       struct pt_snapshot **model, struct pt_wbuf *out)
{
    bool borrowed = model && *model;
    struct pt_snapshot *s = pt_xcalloc(1, sizeof(*s));
    struct collect c = {s, 0, 0, 0, 0, 0, 0, (int64_t)time(NULL), listeners};
    if (listeners)
        pt_listeners_begin(listeners);
    s->refs = 1;
    s->version = version;
    s->settings = *settings;
    s->settings.trusted = pt_xcalloc(settings->n_trusted, sizeof(*settings->trusted));
    if (settings->n_trusted)
        memcpy(s->settings.trusted, settings->trusted,
               settings->n_trusted * sizeof(*settings->trusted));
    int rc = 0;
    if (borrowed) { /* given back before <s> goes */
        s->backends = (*model)->backends;
        s->n_backends = (*model)->n_backends;
        s->domains = (*model)->domains;
        s->n_domains = (*model)->n_domains;
    } else {
        rc = pt_store_each(store, PT_STORE_BACKEND, on_backend, &c);
        if (rc == 0)
            rc = pt_store_each(store, PT_STORE_DOMAIN, on_domain, &c);
    }
    if (rc == 0)
        rc = pt_store_ban_each(store, c.now, NULL, on_ban, &c);
    if (rc == 0)
        rc = pt_store_cert_each(store, on_cert, &c);
    if (rc == 0)
        rc = pt_store_acme_token_each(store, on_token, &c);
    if (rc == 0)
        rc = pt_store_each(store, PT_STORE_STREAM, on_stream, &c);
    s->streams.lid_max = listeners ? pt_listeners_lid_max(listeners) : 0;
    if (rc == 0 && pt_snap_link(s) != 0)
        rc = PT_EDB;
    if (rc == 0) {
        size_t off = pt_ipc_begin(out, PT_IPC_SNAPSHOT);
        pt_snap_encode(s, out);
        pt_ipc_end(out, off);
    }
    if (borrowed) {
        s->backends = NULL;
        s->domains = NULL;
        s->n_backends = s->n_domains = 0;
    } else if (rc == 0 && model) {
        *model = keep_model(s);
    }
    pt_snap_unref(s);
    return rc;
}
