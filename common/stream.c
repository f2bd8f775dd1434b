#include "common/stream.h"

void pt_stream_clear(struct pt_stream *st)
{
    free(st->name);
    free(st->listen);
    free(st->lids);
    for (size_t i = 0; i < st->n_names; i++)
        free(st->names[i]);
    free(st->names);
    for (size_t i = 0; i < st->n_alpn; i++)
        free(st->alpn[i]);
    free(st->alpn);
    free(st->backend);
    memset(st, 0, sizeof(*st));
}

static void ports_free(struct pt_streams *ss)
{
    for (size_t i = 0; i < ss->n_ports; i++) {
        pt_route_free(ss->ports[i].routes);
        free(ss->ports[i].stream_of);
    }
    PT_FREE(ss->ports);
    ss->n_ports = 0;
    pt_route_free(ss->alpn_routes);
    ss->alpn_routes = NULL;
    PT_FREE(ss->alpn_of);
}

void pt_streams_clear(struct pt_streams *ss)
{
    for (size_t i = 0; i < ss->n; i++)
        pt_stream_clear(&ss->v[i]);
    free(ss->v);
    ports_free(ss);
    memset(ss, 0, sizeof(*ss));
}

const struct pt_stream_port *pt_streams_port(const struct pt_streams *ss, uint32_t lid)
{
    for (size_t i = 0; i < ss->n_ports; i++)
        if (ss->ports[i].lid == lid)
            return &ss->ports[i];
    return NULL;
}

/* Builds a route table over the names of the streams <pick> selects; *of
 * gets route index -> stream index. PT_EMALFORMED when a name repeats. */
static int build_table(const struct pt_streams *ss, bool (*pick)(const struct pt_stream *,
                                                                  uint32_t),
                       uint32_t lid, struct pt_route_table **out, uint32_t **of)
{
    size_t n = 0;
    for (size_t i = 0; i < ss->n; i++)
        if (pick(&ss->v[i], lid))
            n += ss->v[i].n_names;
    const char **names = pt_xcalloc(n ? n : 1, sizeof(*names));
    *of = pt_xcalloc(n ? n : 1, sizeof(**of));
    size_t k = 0;
    for (size_t i = 0; i < ss->n; i++) {
        if (!pick(&ss->v[i], lid))
            continue;
        for (size_t j = 0; j < ss->v[i].n_names; j++) {
            for (size_t m = 0; m < k; m++)
                if (strcmp(names[m], ss->v[i].names[j]) == 0) {
                    free(names);
                    return PT_EMALFORMED;
                }
            names[k] = ss->v[i].names[j];
            (*of)[k++] = (uint32_t)i;
        }
    }
    *out = pt_route_build(names, k);
    free(names);
    return 0;
}

static bool on_port(const struct pt_stream *st, uint32_t lid)
{
    for (size_t i = 0; i < st->n_listen; i++)
        if (st->lids[i] == lid)
            return st->mode == PT_STREAM_TLS;
    return false;
}

static bool on_https(const struct pt_stream *st, uint32_t lid)
{
    (void)lid;
    return st->mode == PT_STREAM_TLS && st->n_listen == 0 && st->n_alpn > 0;
}

int pt_streams_link(struct pt_streams *ss, int (*find)(void *arg, const char *backend),
                    void *arg)
{
    ports_free(ss);
    size_t cap = 0;
    for (size_t i = 0; i < ss->n; i++) {
        struct pt_stream *st = &ss->v[i];
        if (st->name == NULL || st->backend == NULL || (st->n_listen && st->lids == NULL))
            return PT_EMALFORMED;
        int b = find(arg, st->backend);
        if (b < 0)
            return PT_ENOTFOUND;
        st->backend_ix = (uint32_t)b;
        cap += st->n_listen;
    }
    ss->ports = pt_xcalloc(cap ? cap : 1, sizeof(*ss->ports));
    for (size_t i = 0; i < ss->n; i++) {
        const struct pt_stream *st = &ss->v[i];
        for (size_t j = 0; j < st->n_listen; j++) {
            struct pt_stream_port *p = (struct pt_stream_port *)pt_streams_port(ss, st->lids[j]);
            if (p == NULL) {
                p = &ss->ports[ss->n_ports++];
                p->lid = st->lids[j];
                p->tcp = -1;
                if (build_table(ss, on_port, p->lid, &p->routes, &p->stream_of) != 0)
                    return PT_EMALFORMED;
            }
            if (st->mode == PT_STREAM_TCP) {
                /* A tcp stream takes every connection: it shares with nobody. */
                if (p->tcp >= 0)
                    return PT_EMALFORMED;
                p->tcp = (int)i;
            }
        }
    }
    for (size_t i = 0; i < ss->n_ports; i++) {
        /* The tls streams' table was built before a tcp stream was seen. */
        const struct pt_stream_port *p = &ss->ports[i];
        for (size_t k = 0; p->tcp >= 0 && k < ss->n; k++)
            if (on_port(&ss->v[k], p->lid))
                return PT_EMALFORMED;
    }
    /* Every hello on the TLS listeners asks this table: none without streams. */
    for (size_t i = 0; i < ss->n; i++)
        if (on_https(&ss->v[i], 0))
            return build_table(ss, on_https, 0, &ss->alpn_routes, &ss->alpn_of);
    return 0;
}

int pt_streams_route(const struct pt_streams *ss, const struct pt_stream_port *p,
                     const char *sni, size_t sni_len)
{
    (void)ss;
    if (p->tcp >= 0)
        return p->tcp;
    int r = pt_route_lookup(p->routes, sni, sni_len);
    return r < 0 ? -1 : (int)p->stream_of[r];
}

int pt_streams_alpn(const struct pt_streams *ss, const struct pt_clienthello *ch)
{
    if (ss->alpn_routes == NULL || ch->alpn_count == 0)
        return -1;
    int r = pt_route_lookup(ss->alpn_routes, ch->sni, ch->sni_len);
    if (r < 0)
        return -1;
    const struct pt_stream *st = &ss->v[ss->alpn_of[r]];
    size_t n = ch->alpn_count < PT_ALPN_MAX ? ch->alpn_count : PT_ALPN_MAX;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < st->n_alpn; j++)
            if (strlen(st->alpn[j]) == ch->alpn_len[i] &&
                memcmp(st->alpn[j], ch->alpn[i], ch->alpn_len[i]) == 0)
                return (int)ss->alpn_of[r];
    return -1;
}

bool pt_stream_conflict(const struct pt_stream *a, const struct pt_stream *b, char *why,
                        size_t size)
{
    if (a->mode == PT_STREAM_TCP || b->mode == PT_STREAM_TCP) {
        snprintf(why, size, "a tcp stream takes every connection of its address");
        return true;
    }
    for (size_t i = 0; i < a->n_names; i++)
        for (size_t j = 0; j < b->n_names; j++)
            if (strcmp(a->names[i], b->names[j]) == 0) {
                snprintf(why, size, "name '%s' is in both", a->names[i]);
                return true;
            }
    return false;
}

const char *pt_stream_mode_name(enum pt_stream_mode m)
{
    return m == PT_STREAM_TLS ? "tls" : "tcp";
}
