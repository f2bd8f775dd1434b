#include "common/tally.h"

#include "common/pt.h"

#include <stdio.h>
#include <string.h>

#define OTHER "(other)"

/* <s> truncated to size - 1 bytes as snprintf would, without its cost:
 * every request's record goes through here five times. */
static void set(char *dst, size_t size, const char *s)
{
    size_t n = s ? strnlen(s, size - 1) : 0;
    memcpy(dst, s ? s : "", n);
    dst[n] = '\0';
}

static bool is_http(const char *mode)
{
    return strcmp(mode, "offload") == 0 || strcmp(mode, "http") == 0;
}

static uint32_t fnv(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return (h ^ 0xff) * 16777619u; /* a separator: ("ab","c") != ("a","bc") */
}

static size_t first_slot(const char *route, const char *mode, const char *backend,
                         const char *server)
{
    return fnv(fnv(fnv(fnv(2166136261u, route), mode), backend), server) &
           (PT_TALLY_SLOTS - 1);
}

/* Indexes the flows a tally has without an index (one read from STATS). */
static void build_slots(struct pt_tally *t)
{
    t->slot = pt_xcalloc(PT_TALLY_SLOTS, sizeof(*t->slot));
    for (size_t k = 0; k < t->n_flows; k++) {
        const struct pt_tally_flow *f = &t->flows[k];
        size_t i = first_slot(f->route, f->mode, f->backend, f->server);
        while (t->slot[i] != 0)
            i = (i + 1) & (PT_TALLY_SLOTS - 1);
        t->slot[i] = (uint16_t)(k + 1);
    }
}

static struct pt_tally_flow *flow_at(struct pt_tally *t, const char *route, const char *mode,
                                     const char *backend, const char *server)
{
    if (t->slot == NULL)
        build_slots(t);
    size_t i = first_slot(route, mode, backend, server);
    for (; t->slot[i] != 0; i = (i + 1) & (PT_TALLY_SLOTS - 1)) {
        struct pt_tally_flow *f = &t->flows[t->slot[i] - 1];
        if (strcmp(f->route, route) == 0 && strcmp(f->mode, mode) == 0 &&
            strcmp(f->backend, backend) == 0 && strcmp(f->server, server) == 0)
            return f;
    }
    /* The last row is kept for "(other)". */
    if (t->n_flows >= PT_TALLY_ROWS_MAX - 1 && strcmp(route, OTHER) != 0)
        return flow_at(t, OTHER, "", "", "");
    t->flows = pt_xrealloc(t->flows, (t->n_flows + 1) * sizeof(*t->flows));
    struct pt_tally_flow *f = &t->flows[t->n_flows++];
    t->slot[i] = (uint16_t)t->n_flows;
    memset(f, 0, sizeof(*f));
    set(f->route, sizeof(f->route), route);
    set(f->mode, sizeof(f->mode), mode);
    set(f->backend, sizeof(f->backend), backend);
    set(f->server, sizeof(f->server), server);
    return f;
}

static struct pt_tally_result *result_at(struct pt_tally *t, const char *mode,
                                         const char *result)
{
    for (size_t i = 0; i < t->n_results; i++)
        if (strcmp(t->results[i].mode, mode) == 0 && strcmp(t->results[i].result, result) == 0)
            return &t->results[i];
    if (t->n_results >= PT_TALLY_ROWS_MAX - 1 && strcmp(result, OTHER) != 0)
        return result_at(t, "", OTHER);
    t->results = pt_xrealloc(t->results, (t->n_results + 1) * sizeof(*t->results));
    struct pt_tally_result *r = &t->results[t->n_results++];
    memset(r, 0, sizeof(*r));
    set(r->mode, sizeof(r->mode), mode);
    set(r->result, sizeof(r->result), result);
    return r;
}

void pt_tally_add(struct pt_tally *t, const struct pt_tally_rec *r)
{
    char route[256], mode[16], backend[64], server[64];
    /* Keys as they will be stored (truncated alike), so lookups match. */
    set(route, sizeof(route), r->route);
    set(mode, sizeof(mode), r->mode);
    set(backend, sizeof(backend), r->backend);
    set(server, sizeof(server), r->server);
    struct pt_tally_flow *f = flow_at(t, route, mode, backend, server);
    f->n++;
    f->bytes_in += r->bytes_in;
    f->bytes_out += r->bytes_out;
    if (is_http(mode))
        pt_histo_add(&f->latency, r->latency_us);
    char result[32];
    set(result, sizeof(result), r->result);
    result_at(t, mode, result)->n++;
}

void pt_tally_encode(const struct pt_tally *t, struct pt_wbuf *b)
{
    pt_wbuf_u32(b, (uint32_t)t->n_flows);
    for (size_t i = 0; i < t->n_flows; i++) {
        const struct pt_tally_flow *f = &t->flows[i];
        pt_wbuf_str(b, f->route);
        pt_wbuf_str(b, f->mode);
        pt_wbuf_str(b, f->backend);
        pt_wbuf_str(b, f->server);
        pt_wbuf_u64(b, f->n);
        pt_wbuf_u64(b, f->bytes_in);
        pt_wbuf_u64(b, f->bytes_out);
        for (size_t k = 0; k < PT_HISTO_BUCKETS + 1; k++)
            pt_wbuf_u64(b, f->latency.n[k]);
        pt_wbuf_u64(b, f->latency.count);
        pt_wbuf_u64(b, f->latency.sum_us);
    }
    pt_wbuf_u32(b, (uint32_t)t->n_results);
    for (size_t i = 0; i < t->n_results; i++) {
        pt_wbuf_str(b, t->results[i].mode);
        pt_wbuf_str(b, t->results[i].result);
        pt_wbuf_u64(b, t->results[i].n);
    }
    pt_wbuf_u64(b, t->tls_ok);
    pt_wbuf_u64(b, t->tls_failed);
    pt_wbuf_u64(b, t->tls_handovers);
}

int pt_tally_read(struct pt_cursor *c, struct pt_tally *out)
{
    pt_tally_free(out);
    uint32_t n = pt_rd_u32(c);
    if (!c->ok || n > PT_TALLY_ROWS_MAX)
        goto bad;
    out->flows = n ? pt_xcalloc(n, sizeof(*out->flows)) : NULL;
    out->n_flows = n;
    for (uint32_t i = 0; i < n; i++) {
        struct pt_tally_flow *f = &out->flows[i];
        if (!pt_rd_cstr(c, f->route, sizeof(f->route)) || !pt_rd_cstr(c, f->mode, sizeof(f->mode)) ||
            !pt_rd_cstr(c, f->backend, sizeof(f->backend)) ||
            !pt_rd_cstr(c, f->server, sizeof(f->server)))
            goto bad;
        f->n = pt_rd_u64(c);
        f->bytes_in = pt_rd_u64(c);
        f->bytes_out = pt_rd_u64(c);
        for (size_t k = 0; k < PT_HISTO_BUCKETS + 1; k++)
            f->latency.n[k] = pt_rd_u64(c);
        f->latency.count = pt_rd_u64(c);
        f->latency.sum_us = pt_rd_u64(c);
    }
    n = pt_rd_u32(c);
    if (!c->ok || n > PT_TALLY_ROWS_MAX)
        goto bad;
    out->results = n ? pt_xcalloc(n, sizeof(*out->results)) : NULL;
    out->n_results = n;
    for (uint32_t i = 0; i < n; i++) {
        struct pt_tally_result *r = &out->results[i];
        if (!pt_rd_cstr(c, r->mode, sizeof(r->mode)) ||
            !pt_rd_cstr(c, r->result, sizeof(r->result)))
            goto bad;
        r->n = pt_rd_u64(c);
    }
    out->tls_ok = pt_rd_u64(c);
    out->tls_failed = pt_rd_u64(c);
    out->tls_handovers = pt_rd_u64(c);
    if (!c->ok)
        goto bad;
    return 0;
bad:
    pt_tally_free(out);
    return PT_EMALFORMED;
}

void pt_tally_merge(struct pt_tally *into, const struct pt_tally *from)
{
    for (size_t i = 0; i < from->n_flows; i++) {
        const struct pt_tally_flow *s = &from->flows[i];
        struct pt_tally_flow *f = flow_at(into, s->route, s->mode, s->backend, s->server);
        f->n += s->n;
        f->bytes_in += s->bytes_in;
        f->bytes_out += s->bytes_out;
        pt_histo_merge(&f->latency, &s->latency);
    }
    for (size_t i = 0; i < from->n_results; i++)
        result_at(into, from->results[i].mode, from->results[i].result)->n +=
            from->results[i].n;
    into->tls_ok += from->tls_ok;
    into->tls_failed += from->tls_failed;
    into->tls_handovers += from->tls_handovers;
}

/* NULL for an empty key: the label is left out. */
static const char *opt(const char *s)
{
    return s[0] ? s : NULL;
}

void pt_tally_metrics(const struct pt_tally *t, struct pt_wbuf *out)
{
    static const struct {
        const char *name, *help;
    } flows[] = {
        {"portier_route_total",
         "Connections (passthrough) or requests (offload, http) by route, backend and server "
         "connected to."},
        {"portier_route_received_bytes_total", "Bytes received from clients, by route."},
        {"portier_route_sent_bytes_total", "Bytes sent to clients, by route."},
    };
    for (size_t m = 0; m < PT_ARRAY_LEN(flows); m++) {
        pt_metrics_family(out, flows[m].name, PT_METRIC_COUNTER, flows[m].help);
        for (size_t i = 0; i < t->n_flows; i++) {
            const struct pt_tally_flow *f = &t->flows[i];
            const char *labels[] = {"route", opt(f->route), "mode",   opt(f->mode),
                                    "backend", opt(f->backend), "server", opt(f->server)};
            pt_metrics_u64(out, flows[m].name, labels, 4,
                           m == 0 ? f->n : m == 1 ? f->bytes_in : f->bytes_out);
        }
    }
    /* Latency per route and mode: the servers' histograms summed. */
    pt_metrics_family(out, "portier_http_request_duration_seconds", PT_METRIC_HISTOGRAM,
                      "Time from a request's start to the end of its response (offload and "
                      "port 80), by route.");
    for (size_t i = 0; i < t->n_flows; i++) {
        const struct pt_tally_flow *f = &t->flows[i];
        if (!is_http(f->mode))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(t->flows[j].route, f->route) == 0 &&
                   strcmp(t->flows[j].mode, f->mode) == 0;
        if (seen)
            continue;
        struct pt_histo h = {0};
        for (size_t j = i; j < t->n_flows; j++)
            if (strcmp(t->flows[j].route, f->route) == 0 &&
                strcmp(t->flows[j].mode, f->mode) == 0)
                pt_histo_merge(&h, &t->flows[j].latency);
        const char *labels[] = {"route", opt(f->route), "mode", f->mode};
        pt_metrics_histo(out, "portier_http_request_duration_seconds", labels, 2, &h);
    }
    pt_metrics_family(out, "portier_results_total", PT_METRIC_COUNTER,
                      "Outcomes by mode and result, as in the access log: ok, banned, "
                      "bad_hello, unknown_sni, no_server, bad_proxy_header, no_certificate, "
                      "handshake_failed, or the HTTP status (400: a refused request shape, "
                      "502: no backend answered, ...).");
    for (size_t i = 0; i < t->n_results; i++) {
        const char *labels[] = {"mode", opt(t->results[i].mode), "result",
                                t->results[i].result};
        pt_metrics_u64(out, "portier_results_total", labels, 2, t->results[i].n);
    }
    pt_metrics_family(out, "portier_tls_handshakes_total", PT_METRIC_COUNTER,
                      "TLS handshakes with clients on offload domains, by result.");
    const char *ok[] = {"result", "ok"}, *failed[] = {"result", "failed"};
    pt_metrics_u64(out, "portier_tls_handshakes_total", ok, 1, t->tls_ok);
    pt_metrics_u64(out, "portier_tls_handshakes_total", failed, 1, t->tls_failed);
    pt_metrics_family(out, "portier_tls_handovers_total", PT_METRIC_COUNTER,
                      "Client TLS 1.3 connections on offload domains handed over to "
                      "portier's own record layer after the handshake (OpenSSL's state "
                      "freed); the others stay on OpenSSL.");
    pt_metrics_u64(out, "portier_tls_handovers_total", NULL, 0, t->tls_handovers);
}

void pt_tally_free(struct pt_tally *t)
{
    free(t->slot);
    free(t->flows);
    free(t->results);
    memset(t, 0, sizeof(*t));
}
