#include "common/delta.h"

#include "common/cursor.h"
#include "common/dname.h"

/* Wire format: "PTD1" u64 version, u32 n, n x (u8 kind, u8 op, then for op 1
 * (put) the object as in a snapshot (a ticket key: its 80 bytes), for op 0
 * (remove) str name). Stream tables and ticket keys are only put. */
#define DELTA_MAGIC "PTD1"
#define DELTA_MAX (1u << 24)

static struct pt_delta_change *grow(struct pt_delta *d)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->v = pt_xrealloc(d->v, d->cap * sizeof(*d->v));
    }
    struct pt_delta_change *c = &d->v[d->n++];
    memset(c, 0, sizeof(*c));
    return c;
}

void pt_delta_put_backend(struct pt_delta *d, struct pt_backend *b)
{
    struct pt_delta_change *c = grow(d);
    c->kind = PT_DELTA_BACKEND;
    c->name = pt_xstrdup(b->name);
    c->backend = *b;
    memset(b, 0, sizeof(*b));
}

void pt_delta_put_domain(struct pt_delta *d, struct pt_domain *dm)
{
    struct pt_delta_change *c = grow(d);
    c->kind = PT_DELTA_DOMAIN;
    c->name = pt_xstrdup(dm->name);
    c->domain = *dm;
    memset(dm, 0, sizeof(*dm));
}

void pt_delta_put_token(struct pt_delta *d, const char *token, const char *key_authorization)
{
    struct pt_delta_change *c = grow(d);
    c->kind = PT_DELTA_TOKEN;
    c->name = pt_xstrdup(token);
    c->token.token = pt_xstrdup(token);
    c->token.key_authorization = pt_xstrdup(key_authorization);
}

void pt_delta_put_cert(struct pt_delta *d, struct pt_cert *ct)
{
    struct pt_delta_change *c = grow(d);
    c->kind = PT_DELTA_CERT;
    c->name = pt_xstrdup(ct->id);
    c->cert = *ct;
    memset(ct, 0, sizeof(*ct));
}

void pt_delta_put_streams(struct pt_delta *d, struct pt_streams *ss)
{
    struct pt_delta_change *c = grow(d);
    c->kind = PT_DELTA_STREAMS;
    c->name = pt_xstrdup("streams");
    c->streams = *ss;
    memset(ss, 0, sizeof(*ss));
}

void pt_delta_put_ticket(struct pt_delta *d, const uint8_t key[80])
{
    struct pt_delta_change *c = grow(d);
    c->kind = PT_DELTA_TICKET;
    c->name = pt_xstrdup("ticket");
    memcpy(c->ticket_key, key, sizeof(c->ticket_key));
}

void pt_delta_remove(struct pt_delta *d, enum pt_delta_kind kind, const char *name)
{
    PT_ASSERT(kind != PT_DELTA_STREAMS && kind != PT_DELTA_TICKET);
    struct pt_delta_change *c = grow(d);
    c->kind = kind;
    c->remove = true;
    c->name = pt_xstrdup(name);
}

void pt_delta_encode(const struct pt_delta *d, struct pt_wbuf *out)
{
    pt_wbuf_put(out, DELTA_MAGIC, 4);
    pt_wbuf_u64(out, d->version);
    pt_wbuf_u32(out, (uint32_t)d->n);
    for (size_t i = 0; i < d->n; i++) {
        const struct pt_delta_change *c = &d->v[i];
        pt_wbuf_u8(out, (uint8_t)c->kind);
        pt_wbuf_u8(out, c->remove ? 0 : 1);
        if (c->remove)
            pt_wbuf_str(out, c->name);
        else if (c->kind == PT_DELTA_BACKEND)
            pt_snap_backend_encode(&c->backend, out);
        else if (c->kind == PT_DELTA_DOMAIN)
            pt_snap_domain_encode(&c->domain, out);
        else if (c->kind == PT_DELTA_CERT)
            pt_snap_cert_encode(&c->cert, out);
        else if (c->kind == PT_DELTA_STREAMS)
            pt_snap_streams_encode(&c->streams, out);
        else if (c->kind == PT_DELTA_TICKET)
            pt_wbuf_put(out, c->ticket_key, sizeof(c->ticket_key));
        else
            pt_snap_token_encode(&c->token, out);
    }
}

/* What a worker's TLS contexts trust of a certificate: normalised names and
 * PEM text (the worker parses it, and skips one that does not load). */
static bool cert_ok(const struct pt_cert *ct)
{
    char norm[PT_DNAME_MAX + 1];
    if (strstr(ct->cert_pem, "-----BEGIN CERTIFICATE-----") == NULL ||
        strstr(ct->key_pem, "-----BEGIN ") == NULL)
        return false;
    for (size_t i = 0; i < ct->n_names; i++)
        if (pt_dname_normalize(ct->names[i], strlen(ct->names[i]), norm,
                               PT_DNAME_ALLOW_WILDCARD, NULL) <= 0 ||
            strcmp(norm, ct->names[i]) != 0)
            return false;
    return true;
}

static bool name_ok(enum pt_delta_kind kind, const char *name)
{
    char norm[PT_DNAME_MAX + 1];
    if (kind != PT_DELTA_DOMAIN)
        return name[0] != '\0' && name[0] != '*';
    return pt_dname_normalize(name, strlen(name), norm, PT_DNAME_ALLOW_WILDCARD, NULL) >= 0 &&
           strcmp(norm, name) == 0;
}

int pt_delta_decode(const uint8_t *buf, size_t len, struct pt_delta *out)
{
    struct pt_cursor c = pt_cursor_make(buf, len);
    memset(out, 0, sizeof(*out));
    const uint8_t *magic = pt_rd_bytes(&c, 4);
    out->version = pt_rd_u64(&c);
    uint32_t n = pt_rd_u32(&c);
    /* Each change takes at least 6 bytes: a lying count allocates nothing. */
    if (magic == NULL || memcmp(magic, DELTA_MAGIC, 4) != 0 || n > DELTA_MAX ||
        (size_t)n * 6 > pt_cursor_left(&c))
        c.ok = false;
    for (uint32_t i = 0; i < n && c.ok; i++) {
        uint8_t kind = pt_rd_u8(&c), op = pt_rd_u8(&c);
        bool put_only = kind == PT_DELTA_STREAMS || kind == PT_DELTA_TICKET;
        if (kind < PT_DELTA_BACKEND || kind > PT_DELTA_TICKET || op > 1 ||
            (put_only && op == 0)) {
            c.ok = false;
            break;
        }
        struct pt_delta_change *ch = grow(out);
        ch->kind = (enum pt_delta_kind)kind;
        ch->remove = op == 0;
        char name[PT_DNAME_MAX + 1];
        if (ch->remove) {
            if (!pt_rd_cstr(&c, name, sizeof(name)))
                c.ok = false;
            else
                ch->name = pt_xstrdup(name);
        } else if (kind == PT_DELTA_BACKEND) {
            if (pt_snap_backend_read(&c, &ch->backend) == 0)
                ch->name = pt_xstrdup(ch->backend.name);
        } else if (kind == PT_DELTA_DOMAIN) {
            if (pt_snap_domain_read(&c, &ch->domain) == 0)
                ch->name = pt_xstrdup(ch->domain.name);
        } else if (kind == PT_DELTA_CERT) {
            if (pt_snap_cert_read(&c, &ch->cert) == 0 && cert_ok(&ch->cert))
                ch->name = pt_xstrdup(ch->cert.id);
        } else if (kind == PT_DELTA_STREAMS) {
            if (pt_snap_streams_read(&c, &ch->streams) == 0)
                ch->name = pt_xstrdup("streams");
        } else if (kind == PT_DELTA_TICKET) {
            const uint8_t *k = pt_rd_bytes(&c, sizeof(ch->ticket_key));
            if (k) {
                memcpy(ch->ticket_key, k, sizeof(ch->ticket_key));
                ch->name = pt_xstrdup("ticket");
            }
        } else if (pt_snap_token_read(&c, &ch->token) == 0) {
            ch->name = pt_xstrdup(ch->token.token);
        }
        if (ch->name == NULL || !name_ok(ch->kind, ch->name))
            c.ok = false;
    }
    if (!c.ok || pt_cursor_left(&c) != 0) {
        pt_delta_clear(out);
        return PT_EMALFORMED;
    }
    return 0;
}

void pt_delta_clear(struct pt_delta *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].name);
        pt_backend_clear(&d->v[i].backend);
        pt_domain_clear(&d->v[i].domain);
        pt_snap_token_clear(&d->v[i].token);
        pt_cert_clear(&d->v[i].cert);
        pt_streams_clear(&d->v[i].streams);
    }
    free(d->v);
    memset(d, 0, sizeof(*d));
}

bool pt_delta_has(const struct pt_delta *d, enum pt_delta_kind kind)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].kind == kind)
            return true;
    return false;
}

static int find_backend(const struct pt_snapshot *s, const char *name)
{
    for (size_t j = 0; j < s->n_backends; j++)
        if (strcmp(s->backends[j].name, name) == 0)
            return (int)j;
    return -1;
}

/* The state of the names a delta touches, change by change: for backends 1
 * (exists) or 0 (removed); for domains 2i+1 (put by change i) or 2i
 * (removed by change i). Names are borrowed from the delta. */
struct seen {
    struct pt_route_table *backends, *domains;
};

static bool backend_exists(const struct seen *sn, const struct pt_snapshot *s, const char *name)
{
    int v = pt_route_find(sn->backends, name);
    return v >= 0 ? v == 1 : find_backend(s, name) >= 0;
}

/* Whether the state after <d> leaves a domain on backend <name>. */
static bool backend_used(const struct seen *sn, const struct pt_snapshot *s,
                         const struct pt_delta *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct pt_delta_change *c = &d->v[i];
        if (c->kind == PT_DELTA_DOMAIN && !c->remove &&
            pt_route_find(sn->domains, c->name) == (int)(2 * i + 1) &&
            strcmp(c->domain.backend, name) == 0)
            return true;
    }
    int b = find_backend(s, name);
    for (size_t i = 0; b >= 0 && i < s->n_domains; i++)
        if (s->domains[i].backend_ix == (uint32_t)b &&
            pt_route_find(sn->domains, s->domains[i].name) < 0)
            return true;
    return false;
}

static int find_token(const struct pt_snapshot *s, const char *token)
{
    for (size_t i = 0; i < s->n_tokens; i++)
        if (strcmp(s->tokens[i].token, token) == 0)
            return (int)i;
    return -1;
}

/* Tokens are few: checked against the snapshot and the delta's earlier
 * changes by scanning both. */
static bool token_exists(const struct pt_snapshot *s, const struct pt_delta *d, size_t upto,
                         const char *token)
{
    for (size_t i = upto; i > 0; i--)
        if (d->v[i - 1].kind == PT_DELTA_TOKEN && strcmp(d->v[i - 1].name, token) == 0)
            return !d->v[i - 1].remove;
    return find_token(s, token) >= 0;
}

/* The stream table in force after <d>: its last one, else <s>'s. */
static const struct pt_streams *final_streams(const struct pt_snapshot *s,
                                              const struct pt_delta *d)
{
    for (size_t i = d->n; i > 0; i--)
        if (d->v[i - 1].kind == PT_DELTA_STREAMS)
            return &d->v[i - 1].streams;
    return &s->streams;
}

struct seen_at {
    const struct seen *sn;
    const struct pt_snapshot *s;
};

/* A backend that exists at this point of the delta (its index is set again
 * once the delta is applied). */
static int exists_at(void *arg, const char *name)
{
    const struct seen_at *a = arg;
    return backend_exists(a->sn, a->s, name) ? 0 : -1;
}

static int check(const struct pt_snapshot *s, struct pt_delta *d)
{
    struct seen sn = {pt_route_build(NULL, 0), pt_route_build(NULL, 0)};
    int rc = 0;
    bool removes_backend = false;
    PT_ASSERT(d->n < (1u << 30));
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        const struct pt_delta_change *c = &d->v[i];
        if (c->kind == PT_DELTA_TOKEN) {
            if (c->remove && !s->objects_only && !token_exists(s, d, i, c->name))
                rc = PT_ENOTFOUND;
            continue;
        }
        if (c->kind == PT_DELTA_CERT || c->kind == PT_DELTA_TICKET)
            continue; /* any put goes; a remove of an absent one is no change */
        if (c->kind == PT_DELTA_STREAMS) {
            struct seen_at at = {&sn, s};
            if (!s->objects_only)
                rc = pt_snap_streams_link(&d->v[i].streams, exists_at, &at);
            continue;
        }
        if (c->kind == PT_DELTA_BACKEND) {
            if (c->remove && !backend_exists(&sn, s, c->name))
                rc = PT_ENOTFOUND;
            removes_backend |= c->remove;
            pt_route_set(sn.backends, c->name, c->remove ? 0 : 1);
            continue;
        }
        if (c->remove) {
            int v = pt_route_find(sn.domains, c->name);
            if (v >= 0 ? (v & 1) == 0 : pt_route_find(s->routes, c->name) < 0)
                rc = PT_ENOTFOUND;
        } else if (!backend_exists(&sn, s, c->domain.backend)) {
            rc = PT_ENOTFOUND;
        }
        pt_route_set(sn.domains, c->name, (int)(2 * i + (c->remove ? 0 : 1)));
    }
    for (size_t i = 0; i < d->n && rc == 0 && removes_backend; i++) {
        const struct pt_delta_change *c = &d->v[i];
        if (c->kind == PT_DELTA_BACKEND && c->remove &&
            pt_route_find(sn.backends, c->name) == 0 && backend_used(&sn, s, d, c->name))
            rc = PT_EINUSE;
    }
    const struct pt_streams *ss = final_streams(s, d);
    for (size_t i = 0; i < ss->n && rc == 0 && removes_backend; i++)
        if (pt_route_find(sn.backends, ss->v[i].backend) == 0)
            rc = PT_EINUSE;
    pt_route_free(sn.backends);
    pt_route_free(sn.domains);
    return rc;
}

/* A successor of <old> sharing its objects: <old> keeps a reference on it,
 * so it outlives <old> and frees what they share (pt_snap_unref). */
static struct pt_snapshot *derive(struct pt_snapshot *old)
{
    struct pt_snapshot *s = pt_xmalloc(sizeof(*s));
    *s = *old;
    s->refs = 2; /* the caller's, and <old>'s */
    s->next = NULL;
    s->retired_backends = NULL;
    s->retired_domains = NULL;
    s->n_retired_backends = s->cap_retired_backends = 0;
    s->n_retired_domains = s->cap_retired_domains = 0;
    s->banlist = NULL; /* the worker keeps bans apart (worker.c) */
    s->cap_backends = old->n_backends + 1;
    s->backends = pt_xmalloc(s->cap_backends * sizeof(*s->backends));
    if (old->n_backends)
        memcpy(s->backends, old->backends, old->n_backends * sizeof(*s->backends));
    s->cap_domains = old->n_domains + old->n_domains / 8 + 16;
    s->domains = pt_xmalloc(s->cap_domains * sizeof(*s->domains));
    if (old->n_domains)
        memcpy(s->domains, old->domains, old->n_domains * sizeof(*s->domains));
    s->routes = pt_route_clone(old->routes);
    s->tokens = pt_xcalloc(old->n_tokens + 1, sizeof(*s->tokens));
    for (size_t i = 0; i < old->n_tokens; i++) {
        s->tokens[i].token = pt_xstrdup(old->tokens[i].token);
        s->tokens[i].key_authorization = pt_xstrdup(old->tokens[i].key_authorization);
    }
    s->cap_tokens = old->n_tokens + 1;
    /* Certificates: taken over (nothing reads them through <old>). */
    old->certs = NULL;
    old->n_certs = old->cap_certs = 0;
    old->cert_ids = NULL;
    s->streams_replaced = false;
    old->next = s;
    return s;
}

/* Room for one more item in array <v> of <n> items of <size> bytes. */
static void *reserve(void *v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return v;
    *cap = n * 2 + 16;
    return pt_xrealloc(v, *cap * size);
}

/* An object leaving snapshot <s>: freed now when nothing older can see it
 * (<owner> NULL), else by <owner>, the last snapshot that holds it. */
static void retire_domain(struct pt_snapshot *owner, struct pt_domain *d)
{
    if (owner == NULL) {
        pt_domain_clear(d);
        return;
    }
    owner->retired_domains = reserve(owner->retired_domains, owner->n_retired_domains,
                                     &owner->cap_retired_domains, sizeof(*d));
    owner->retired_domains[owner->n_retired_domains++] = *d;
}

static void retire_backend(struct pt_snapshot *owner, struct pt_backend *b)
{
    if (owner == NULL) {
        pt_backend_clear(b);
        return;
    }
    owner->retired_backends = reserve(owner->retired_backends, owner->n_retired_backends,
                                      &owner->cap_retired_backends, sizeof(*b));
    owner->retired_backends[owner->n_retired_backends++] = *b;
}

static void put_backend(struct pt_snapshot *s, struct pt_snapshot *owner, struct pt_backend *b)
{
    int ix = find_backend(s, b->name);
    if (ix >= 0) {
        retire_backend(owner, &s->backends[ix]);
        s->backends[ix] = *b;
    } else {
        s->backends = reserve(s->backends, s->n_backends, &s->cap_backends, sizeof(*b));
        s->backends[s->n_backends++] = *b;
    }
    memset(b, 0, sizeof(*b));
}

/* Backends are few and rarely removed: closing the gap renumbers the
 * domains' backend indexes, one pass over the domains. */
static void remove_backend(struct pt_snapshot *s, struct pt_snapshot *owner, const char *name)
{
    int ix = find_backend(s, name);
    PT_ASSERT(ix >= 0);
    retire_backend(owner, &s->backends[ix]);
    memmove(&s->backends[ix], &s->backends[ix + 1],
            (s->n_backends - (size_t)ix - 1) * sizeof(*s->backends));
    s->n_backends--;
    for (size_t i = 0; i < s->n_domains; i++)
        if (s->domains[i].backend_ix > (uint32_t)ix)
            s->domains[i].backend_ix--;
    /* Shared with <owner> maybe, but its connections resolved their
     * stream's backend when they were routed. */
    for (size_t i = 0; i < s->streams.n; i++)
        if (s->streams.v[i].backend_ix > (uint32_t)ix)
            s->streams.v[i].backend_ix--;
}

static void put_domain(struct pt_snapshot *s, struct pt_snapshot *owner, struct pt_domain *d)
{
    int b = find_backend(s, d->backend);
    PT_ASSERT(b >= 0);
    d->backend_ix = (uint32_t)b;
    int ix = pt_route_find(s->routes, d->name);
    if (ix >= 0) {
        /* The table's key moves to the new name before the old one goes. */
        pt_route_set(s->routes, d->name, ix);
        retire_domain(owner, &s->domains[ix]);
        s->domains[ix] = *d;
    } else {
        s->domains = reserve(s->domains, s->n_domains, &s->cap_domains, sizeof(*d));
        PT_ASSERT(s->n_domains < INT32_MAX);
        s->domains[s->n_domains] = *d;
        pt_route_set(s->routes, s->domains[s->n_domains].name, (int)s->n_domains);
        s->n_domains++;
    }
    memset(d, 0, sizeof(*d));
}

static void put_token(struct pt_snapshot *s, struct pt_acme_token *t)
{
    int ix = find_token(s, t->token);
    if (ix >= 0) {
        pt_snap_token_clear(&s->tokens[ix]);
    } else {
        s->tokens = reserve(s->tokens, s->n_tokens, &s->cap_tokens, sizeof(*t));
        ix = (int)s->n_tokens++;
    }
    s->tokens[ix] = *t;
    memset(t, 0, sizeof(*t));
}

static void remove_token(struct pt_snapshot *s, const char *token)
{
    int ix = find_token(s, token);
    PT_ASSERT(ix >= 0);
    pt_snap_token_clear(&s->tokens[ix]);
    s->tokens[ix] = s->tokens[--s->n_tokens];
}

/* Certificates by id through a hash, built the first time a delta needs it
 * (one pass) and kept up to date from then on. */
static int find_cert(struct pt_snapshot *s, const char *id)
{
    if (s->cert_ids == NULL) {
        s->cert_ids = pt_route_build(NULL, 0);
        PT_ASSERT(s->n_certs < INT32_MAX);
        for (size_t i = 0; i < s->n_certs; i++)
            pt_route_set(s->cert_ids, s->certs[i].id, (int)i);
    }
    return pt_route_find(s->cert_ids, id);
}

static void put_cert(struct pt_snapshot *s, struct pt_cert *ct)
{
    int ix = find_cert(s, ct->id);
    if (ix >= 0) {
        /* The table's key moves to the new id before the old one goes. */
        pt_route_set(s->cert_ids, ct->id, ix);
        pt_cert_clear(&s->certs[ix]);
    } else {
        s->certs = reserve(s->certs, s->n_certs, &s->cap_certs, sizeof(*ct));
        PT_ASSERT(s->n_certs < INT32_MAX);
        ix = (int)s->n_certs++;
        pt_route_set(s->cert_ids, ct->id, ix);
    }
    s->certs[ix] = *ct;
    memset(ct, 0, sizeof(*ct));
}

static void remove_cert(struct pt_snapshot *s, const char *id)
{
    int ix = find_cert(s, id);
    if (ix < 0)
        return;
    pt_route_del(s->cert_ids, id);
    pt_cert_clear(&s->certs[ix]);
    size_t last = s->n_certs - 1;
    if ((size_t)ix != last) {
        s->certs[ix] = s->certs[last];
        pt_route_set(s->cert_ids, s->certs[ix].id, ix);
    }
    s->n_certs--;
}

/* The stream table of <d> replaces <s>'s; <owner> (the predecessor sharing
 * the old table) then frees the old one. */
static void put_streams(struct pt_snapshot *s, struct pt_snapshot *owner, struct pt_streams *ss)
{
    if (owner && !owner->streams_replaced)
        owner->streams_replaced = true; /* the first table of this delta */
    else
        pt_streams_clear(&s->streams);
    s->streams = *ss;
    memset(ss, 0, sizeof(*ss));
}

static int find_backend_cb(void *arg, const char *name)
{
    return find_backend(arg, name);
}

/* The last domain fills the hole: one route entry changes, nothing moves. */
static void remove_domain(struct pt_snapshot *s, struct pt_snapshot *owner, const char *name)
{
    int ix = pt_route_find(s->routes, name);
    PT_ASSERT(ix >= 0);
    pt_route_del(s->routes, name);
    retire_domain(owner, &s->domains[ix]);
    size_t last = s->n_domains - 1;
    if ((size_t)ix != last) {
        s->domains[ix] = s->domains[last];
        pt_route_set(s->routes, s->domains[ix].name, ix);
    }
    s->n_domains--;
}

int pt_delta_apply(struct pt_snapshot **snap, struct pt_delta *d, bool *backends_changed)
{
    struct pt_snapshot *s = *snap;
    *backends_changed = false;
    int rc = check(s, d);
    if (rc != 0)
        return rc;
    /* Connections routed with <s> keep it as it is: change a successor. */
    struct pt_snapshot *owner = NULL;
    if (s->refs > 1) {
        owner = s;
        s = derive(s);
        pt_snap_unref(owner); /* the caller's reference moved to <s> */
    }
    bool streams = false;
    for (size_t i = 0; i < d->n; i++) {
        struct pt_delta_change *c = &d->v[i];
        if (s->objects_only && c->kind != PT_DELTA_BACKEND && c->kind != PT_DELTA_DOMAIN)
            continue;
        if (c->kind == PT_DELTA_STREAMS) {
            put_streams(s, owner, &c->streams);
            streams = true;
        } else if (c->kind == PT_DELTA_TICKET) {
            memcpy(s->settings.ticket_key, c->ticket_key, sizeof(c->ticket_key));
        } else if (c->kind == PT_DELTA_CERT) {
            if (c->remove)
                remove_cert(s, c->name);
            else
                put_cert(s, &c->cert);
        } else if (c->kind == PT_DELTA_TOKEN) {
            if (c->remove)
                remove_token(s, c->name);
            else
                put_token(s, &c->token);
        } else if (c->kind == PT_DELTA_BACKEND) {
            *backends_changed = true;
            if (c->remove)
                remove_backend(s, owner, c->name);
            else
                put_backend(s, owner, &c->backend);
        } else if (c->remove) {
            remove_domain(s, owner, c->name);
        } else {
            put_domain(s, owner, &c->domain);
        }
    }
    /* Linked by check() already: this sets the backend indexes as they are
     * now, it cannot fail. */
    if (streams && pt_snap_streams_link(&s->streams, find_backend_cb, s) != 0)
        PT_ASSERT(!"a checked stream table does not link");
    s->version = d->version;
    *snap = s;
    return 0;
}
