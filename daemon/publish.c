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

/* A writer queued for a group commit (allocated by its writer, freed when
 * it is done). */
struct pt_publish_member {
    const struct pt_commit *c;
    struct pt_publish_member *next;
    bool done;
    int rc;
    uint64_t version;
    bool applied;
};

void pt_publish_init(struct pt_publisher *p)
{
    p->trace = pt_log_commit_trace();
    pthread_cond_init(&p->done_cv, NULL);
    p->group = NULL;
    p->group_tail = &p->group;
}

void pt_publish_fini(struct pt_publisher *p)
{
    pthread_cond_destroy(&p->done_cv);
}

/* The changes of group <g> as one: the config deltas' changes moved, in
 * order, into <merged> (so the members' own deltas are left empty), the ban
 * changes copied into *bans (borrowing their reasons). Returns whether a
 * member asked for a whole snapshot; *seen says whether any change is one
 * the workers see (not PT_COMMIT_STORE). */
static bool merge(struct pt_publish_member *g, struct pt_delta *merged,
                  struct pt_ban_change **bans, size_t *n_bans, bool *seen)
{
    bool whole = false;
    size_t cap = 0;
    *seen = false;
    for (struct pt_publish_member *m = g; m; m = m->next) {
        const struct pt_commit *c = m->c;
        whole |= c->kind == PT_COMMIT_WHOLE;
        *seen |= c->kind != PT_COMMIT_STORE;
        if (c->kind == PT_COMMIT_BANS && c->n_bans) {
            if (*n_bans + c->n_bans > cap) {
                cap = (*n_bans + c->n_bans) * 2;
                *bans = pt_xrealloc(*bans, cap * sizeof(**bans));
            }
            memcpy(*bans + *n_bans, c->bans, c->n_bans * sizeof(**bans));
            *n_bans += c->n_bans;
        }
        if (c->delta && c->delta->n) {
            if (merged->n + c->delta->n > merged->cap) {
                merged->cap = (merged->n + c->delta->n) * 2;
                merged->v = pt_xrealloc(merged->v, merged->cap * sizeof(*merged->v));
            }
            memcpy(merged->v + merged->n, c->delta->v, c->delta->n * sizeof(*merged->v));
            merged->n += c->delta->n;
            c->delta->n = 0; /* moved: the member's pt_delta_clear frees nothing */
        }
    }
    return whole;
}

/* Encodes group <g> into frames[] (at most two: the bans' delta, then the
 * configuration's delta; or one whole snapshot; none when the workers see
 * none of its changes), each at its own new version. *delta says whether
 * they are deltas, *streams whether the streams changed. */
static int encode(struct pt_publisher *p, struct pt_publish_member *g, struct pt_wbuf *frames,
                  uint64_t *versions, size_t *n_frames, bool *delta, bool *streams)
{
    struct pt_delta merged = {0};
    struct pt_ban_change *bans = NULL;
    size_t n_bans = 0;
    bool seen;
    bool whole = merge(g, &merged, &bans, &n_bans, &seen);
    *n_frames = 0;
    *streams = false;
    if (!seen) /* only writes the workers do not see: nothing to send */
        return 0;
    *delta = !whole && !pt_supervisor_deltas_due(p->sup);
    if (!whole && !*delta)
        pt_log(PT_LOG_INFO, "the deltas since the last snapshot outweigh it: publishing a "
                            "whole snapshot");
    int rc = 0;
    size_t n = 0;
    if (*delta && n_bans && (rc = pt_store_bump_version(p->store, &versions[n])) == 0) {
        size_t off = pt_ipc_begin(&frames[n], PT_IPC_BANS);
        pt_snap_bans_encode(versions[n], bans, n_bans, &frames[n]);
        pt_ipc_end(&frames[n], off);
        n++;
    }
    *streams = pt_delta_has(&merged, PT_DELTA_STREAMS);
    if (rc == 0 && *delta && (merged.n || n == 0) && (rc = fill_streams(p, &merged)) == 0 &&
        (rc = pt_store_bump_version(p->store, &versions[n])) == 0) {
        merged.version = versions[n];
        size_t off = pt_ipc_begin(&frames[n], PT_IPC_CONFIG);
        pt_delta_encode(&merged, &frames[n]);
        pt_ipc_end(&frames[n], off);
        n++;
    }
    /* The model follows the store's transaction (dropped if that fails). */
    bool changed;
    if (rc == 0 && merged.n && p->model && pt_delta_apply(&p->model, &merged, &changed) != 0) {
        pt_log(PT_LOG_WARN, "the daemon's copy of the configuration disagrees with a change: "
                            "reading the store again");
        pt_snap_unref(p->model);
        p->model = NULL;
    }
    if (rc == 0 && !*delta && (rc = pt_store_bump_version(p->store, &versions[n])) == 0 &&
        (rc = pt_publish_compile(p->store, versions[n], p->settings, p->listeners, &p->model,
                                 &frames[n])) == 0)
        n++;
    *n_frames = n;
    pt_delta_clear(&merged);
    free(bans);
    return rc;
}

/* When each phase of a group commit ended (pt_mono_us()). */
struct trace {
    uint64_t lead, encoded, committed, published, acked, relocked;
};

/* Microseconds from <a> to <b>, -1 when <b> is not after <a> (a phase
 * that did not happen, or the loop's timestamps of an earlier publish). */
static long long span(uint64_t a, uint64_t b)
{
    return a && b >= a ? (long long)(b - a) : -1;
}

/* The commit trace's line for group <g> published at <version>. */
static void trace_log(struct pt_publisher *p, const struct pt_publish_member *g,
                      uint64_t version, const struct trace *t)
{
    unsigned writers = 0;
    for (const struct pt_publish_member *m = g; m; m = m->next)
        writers++;
    uint64_t sent = 0, applied = 0;
    pt_supervisor_timing(p->sup, &sent, &applied);
    bool waited = t->acked != 0;
    pt_log(PT_LOG_INFO,
           "commit trace: version %llu writers %u lock_us %lld sql_us %lld encode_us %lld "
           "commit_us %lld handoff_us %lld workers_us %lld wakeup_us %lld relock_us %lld "
           "total_us %lld lead_at_us %llu",
           (unsigned long long)version, writers, span(g->c->arrived_us, g->c->locked_us),
           span(g->c->locked_us, t->lead), span(t->lead, t->encoded),
           span(t->encoded, t->committed), waited ? span(t->published, sent) : -1,
           waited ? span(sent, applied) : -1, waited ? span(applied, t->acked) : -1,
           waited ? span(t->acked, t->relocked) : -1,
           span(g->c->arrived_us ? g->c->arrived_us : t->lead, t->relocked),
           (unsigned long long)t->lead);
}

/* Commits and publishes the queued group (p->lock held, released while
 * the workers ack), then wakes its members with their answers. */
static void lead(struct pt_publisher *p)
{
    struct pt_publish_member *g = p->group;
    p->group = NULL;
    p->group_tail = &p->group;
    p->inflight = true;
    struct pt_wbuf frames[2] = {{0}, {0}};
    uint64_t versions[2] = {0, 0};
    size_t n = 0;
    bool delta = false, applied = false, streams = false;
    struct trace t = {0};
    if (p->trace)
        t.lead = pt_mono_us();
    int rc = encode(p, g, frames, versions, &n, &delta, &streams);
    if (p->trace)
        t.encoded = pt_mono_us();
    if (rc == 0)
        rc = pt_store_commit(p->store);
    if (p->trace)
        t.committed = pt_mono_us();
    if (rc != 0) {
        pt_store_rollback(p->store);
        pt_snap_unref(p->model); /* it may hold the change rolled back */
        p->model = NULL;
        rc = PT_EDB;
    } else if (n > 0) {
        /* Before the hand-off: the loop thread may write the frames at once. */
        if (p->trace)
            t.published = pt_mono_us();
        for (size_t i = 0; i < n; i++) {
            if (delta)
                pt_supervisor_publish_delta(p->sup, &frames[i], versions[i]);
            else
                pt_supervisor_publish(p->sup, &frames[i], versions[i]);
        }
        /* The workers keep their copies of the sockets until the delta. */
        if (delta && streams && p->listeners)
            pt_listeners_sweep(p->listeners);
        p->publishes++;
        pthread_mutex_unlock(p->lock);
        applied = pt_supervisor_wait(p->sup, versions[n - 1], p->ack_timeout_ms);
        if (p->trace)
            t.acked = pt_mono_us();
        pthread_mutex_lock(p->lock);
    }
    if (p->trace) {
        t.relocked = pt_mono_us();
        trace_log(p, g, n ? versions[n - 1] : 0, &t);
    }
    for (size_t i = 0; i < 2; i++)
        pt_wbuf_free(&frames[i]);
    for (struct pt_publish_member *m = g, *next; m; m = next) {
        next = m->next; /* <m> is freed as soon as it is done */
        m->rc = rc;
        m->version = n ? versions[n - 1] : 0;
        m->applied = applied;
        if (rc == 0 && m->c->kind != PT_COMMIT_STORE)
            p->writes++;
        m->done = true;
    }
    p->inflight = false;
    pthread_cond_broadcast(&p->done_cv);
}

int pt_publish_store(struct pt_publisher *p)
{
    static const struct pt_commit store = {.kind = PT_COMMIT_STORE};
    uint64_t version;
    bool applied;
    return pt_publish_commit(p, &store, &version, &applied);
}

int pt_publish_commit(struct pt_publisher *p, const struct pt_commit *c, uint64_t *version,
                      bool *applied)
{
    static const struct pt_commit whole = {.kind = PT_COMMIT_WHOLE};
    /* Owned by this call; queued until a leader takes the group. */
    struct pt_publish_member *m = pt_xcalloc(1, sizeof(*m));
    m->c = c ? c : &whole;
    pt_store_keep(p->store);
    *p->group_tail = m;
    p->group_tail = &m->next;
    while (!m->done) {
        if (!p->inflight)
            lead(p); /* the group holds <m>: done after it */
        else
            pthread_cond_wait(&p->done_cv, p->lock);
    }
    *version = m->version;
    *applied = m->applied;
    int rc = m->rc;
    free(m);
    return rc;
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
