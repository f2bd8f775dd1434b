#include "daemon/publish.h"

#include "api/model.h"
#include "common/ipc.h"
#include "common/log.h"

#include <time.h>

struct collect {
    struct pt_snapshot *s;
    size_t cap_b, cap_d, cap_bans;
};

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

int pt_publish_compile(struct pt_store *store, uint64_t version,
                       const struct pt_settings *settings, struct pt_wbuf *out)
{
    struct pt_snapshot *s = pt_xcalloc(1, sizeof(*s));
    struct collect c = {s, 0, 0, 0};
    s->refs = 1;
    s->version = version;
    s->settings = *settings;
    s->settings.trusted = pt_xcalloc(settings->n_trusted, sizeof(*settings->trusted));
    if (settings->n_trusted)
        memcpy(s->settings.trusted, settings->trusted,
               settings->n_trusted * sizeof(*settings->trusted));
    int rc = pt_store_each(store, PT_STORE_BACKEND, on_backend, &c);
    if (rc == 0)
        rc = pt_store_each(store, PT_STORE_DOMAIN, on_domain, &c);
    if (rc == 0)
        rc = pt_store_ban_each(store, (int64_t)time(NULL), on_ban, &c);
    if (rc == 0 && pt_snap_link(s) != 0)
        rc = PT_EDB;
    if (rc == 0) {
        size_t off = pt_ipc_begin(out, PT_IPC_SNAPSHOT);
        pt_snap_encode(s, out);
        pt_ipc_end(out, off);
    }
    pt_snap_unref(s);
    return rc;
}
