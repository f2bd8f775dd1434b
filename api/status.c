#include "api/internal.h"

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
    return pt_api__json(r, 200,
                        json_pack("{s:s, s:I, s:I, s:I, s:o}", "version", PT_VERSION,
                                  "uptime_s", (json_int_t)(time(NULL) - api->started),
                                  "config_version", (json_int_t)v, "serving_workers",
                                  (json_int_t)serving, "workers", workers));
}

enum MHD_Result pt_api__metrics(struct pt_req *r)
{
    char *text = r->api->cfg.hooks.metrics(r->api->cfg.hooks.arg);
    enum MHD_Result rc = pt_api__text(r, 200, "text/plain; version=0.0.4", text,
                                      strlen(text), true);
    free(text);
    return rc;
}
