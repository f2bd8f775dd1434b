#include "api/internal.h"

#include "common/metrics.h"
#include "db/certs.h"

static size_t serving_in(json_t *workers)
{
    size_t n = 0, i;
    json_t *w;
    json_array_foreach(workers, i, w) n += json_is_true(json_object_get(w, "serving"));
    return n;
}

void pt_api__count_serving(struct pt_api *api, size_t *serving, size_t *total)
{
    json_t *workers = api->cfg.hooks.workers(api->cfg.hooks.arg);
    *serving = serving_in(workers);
    *total = json_array_size(workers);
    json_decref(workers);
}

enum MHD_Result pt_api__status(struct pt_req *r)
{
    struct pt_api *api = r->api;
    json_t *workers = api->cfg.hooks.workers(api->cfg.hooks.arg);
    uint64_t v = pt_store_config_version(api->cfg.store);
    size_t serving = serving_in(workers);
    json_t *servers = api->cfg.hooks.servers ? api->cfg.hooks.servers(api->cfg.hooks.arg, NULL)
                                             : json_array();
    return pt_api__json(r, 200,
                        json_pack("{s:s, s:I, s:I, s:I, s:o, s:o}", "version", PT_VERSION,
                                  "uptime_s", (json_int_t)(time(NULL) - api->started),
                                  "config_version", (json_int_t)v, "serving_workers",
                                  (json_int_t)serving, "workers", workers, "servers",
                                  servers));
}

struct cert_metrics {
    struct pt_wbuf *out;
    int pass; /* which family this walk writes */
};

static int cert_metric_cb(void *arg, const struct pt_store_cert *c)
{
    struct cert_metrics *m = arg;
    /* The names the certificate covers, for a human reading an alert. */
    char names[512] = "";
    json_t *arr = json_loads(c->domains_json ? c->domains_json : "[]", 0, NULL);
    size_t i, off = 0;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        int n = snprintf(names + off, sizeof(names) - off, "%s%s", i ? "," : "",
                         json_string_value(v) ? json_string_value(v) : "");
        if (n < 0 || (size_t)n >= sizeof(names) - off)
            break;
        off += (size_t)n;
    }
    json_decref(arr);
    const char *labels[] = {"certificate", c->id, "domains", names, "source", c->source,
                            "status", c->status};
    if (m->pass == 0 && c->not_after > 0)
        pt_metrics_u64(m->out, "portier_certificate_expiry_timestamp_seconds", labels, 2,
                       (uint64_t)c->not_after);
    else if (m->pass == 1 && strcmp(c->source, "acme") == 0)
        pt_metrics_u64(m->out, "portier_acme_consecutive_failures", labels, 2,
                       (uint64_t)c->failures);
    else if (m->pass == 2)
        pt_metrics_u64(m->out, "portier_certificate_info", labels, 4, 1);
    return 0;
}

enum MHD_Result pt_api__metrics(struct pt_req *r)
{
    struct pt_wbuf out = {0};
    r->api->cfg.hooks.metrics(r->api->cfg.hooks.arg, &out);
    static const struct {
        const char *name;
        enum pt_metric_type type;
        const char *help;
    } fams[] = {
        {"portier_certificate_expiry_timestamp_seconds", PT_METRIC_GAUGE,
         "When the certificate expires (Unix time): alert on it minus time() < 7 days."},
        {"portier_acme_consecutive_failures", PT_METRIC_GAUGE,
         "ACME orders for the certificate that failed in a row (0 after a success)."},
        {"portier_certificate_info", PT_METRIC_GAUGE,
         "Always 1: the certificate's source and status as labels."},
    };
    for (int pass = 0; pass < 3; pass++) {
        struct cert_metrics m = {&out, pass};
        pt_metrics_family(&out, fams[pass].name, fams[pass].type, fams[pass].help);
        pt_store_cert_each(r->api->cfg.store, cert_metric_cb, &m);
    }
    enum MHD_Result rc = pt_api__text(r, 200, "text/plain; version=0.0.4", (const char *)out.data,
                                      out.len, true);
    pt_wbuf_free(&out);
    return rc;
}
