/* Backends, domains and streams: the named, PUT-replaceable resources. One
 * generic create/replace/get/list/delete, with what differs in a table. */
#include "api/internal.h"

#include "common/dname.h"

struct kind {
    const char *plural;     /* "backends": URL segment and list key */
    const char *singular;   /* for messages */
    enum pt_store_kind store;
    /* Normalises the URL name into <out>; -1 with <e> set when invalid. */
    int (*norm)(const char *in, char *out, size_t size, struct pt_apierr *e);
    /* Validates a body into a canonical document (new reference) and, for
     * domains, the backend and mode columns. */
    json_t *(*validate)(const json_t *body, const char *name, const char **backend,
                        const char **mode, struct pt_apierr *e);
    /* Adds read-only members to a stored document before it is shown;
     * <certs> is the certificates table as loaded for this request. */
    void (*decorate)(json_t *doc, struct pt_certidx *certs);
    /* Refuses a valid document that clashes with the other stored objects
     * or cannot be served (409): -1 with <e> set. NULL: nothing to check. */
    int (*check)(struct pt_req *r, const json_t *doc, const char *name, struct pt_apierr *e);
};

static int norm_backend(const char *in, char *out, size_t size, struct pt_apierr *e)
{
    if (!pt_model_backend_name_ok(in))
        return pt_apierr_set(e, 400, "invalid_argument", "name",
                             "name: '%.80s' is not a valid backend name "
                             "([a-z0-9][a-z0-9_-]{0,62})",
                             in);
    snprintf(out, size, "%s", in);
    return 0;
}

static int norm_domain(const char *in, char *out, size_t size, struct pt_apierr *e)
{
    const char *why = NULL;
    (void)size;
    if (pt_dname_normalize(in, strlen(in), out, PT_DNAME_ALLOW_WILDCARD, &why) < 0)
        return pt_apierr_set(e, 400, "invalid_argument", "name", "name: %s",
                             why ? why : "invalid domain name");
    return 0;
}

static json_t *validate_backend(const json_t *body, const char *name,
                                const char **backend, const char **mode,
                                struct pt_apierr *e)
{
    struct pt_backend b;
    json_t *doc = NULL;
    *backend = *mode = NULL;
    if (pt_model_backend_from_json(body, name, &b, e) == 0)
        doc = pt_model_backend_to_json(&b);
    pt_backend_clear(&b);
    return doc;
}

/* The columns outlive this call: they point into the returned document. */
static json_t *validate_domain(const json_t *body, const char *name,
                               const char **backend, const char **mode,
                               struct pt_apierr *e)
{
    struct pt_domain d;
    json_t *doc = NULL;
    if (pt_model_domain_from_json(body, name, &d, e) == 0) {
        doc = pt_model_domain_to_json(&d);
        *backend = json_string_value(json_object_get(doc, "backend"));
        *mode = json_string_value(json_object_get(doc, "mode"));
    }
    pt_domain_clear(&d);
    return doc;
}

/* Offload domains show the best certificate covering their name
 * (pt_api__certidx_match says which). */
static void decorate_domain(json_t *doc, struct pt_certidx *certs)
{
    const char *mode = json_string_value(json_object_get(doc, "mode"));
    const char *name = json_string_value(json_object_get(doc, "name"));
    const char *id = NULL, *status = NULL;
    if (mode && strcmp(mode, "offload") == 0) {
        if (name && pt_api__certidx_match(certs, name, &id, &status)) {
            json_object_set_new(doc, "certificate_id", json_string(id));
            json_object_set_new(doc, "certificate_status", json_string(status));
        } else {
            json_object_set_new(doc, "certificate_id", json_null());
            json_object_set_new(doc, "certificate_status", json_string("none"));
        }
    }
}

static json_t *validate_stream(const json_t *body, const char *name,
                               const char **backend, const char **mode,
                               struct pt_apierr *e)
{
    struct pt_stream st;
    json_t *doc = NULL;
    if (pt_model_stream_from_json(body, name, &st, e) == 0) {
        doc = pt_model_stream_to_json(&st);
        *backend = json_string_value(json_object_get(doc, "backend"));
        *mode = json_string_value(json_object_get(doc, "mode"));
    }
    pt_stream_clear(&st);
    return doc;
}

/* Streams share an address only when every connection can be told apart:
 * tls streams with disjoint names. The same holds among the alpn streams,
 * which all share the --https listeners. */
struct clash {
    const struct pt_stream *mine;
    struct pt_apierr *e;
};

static int clash_cb(void *arg, const char *name, const char *text)
{
    struct clash *c = arg;
    const struct pt_stream *a = c->mine;
    struct pt_stream b;
    struct pt_apierr ignored;
    char why[200], addr[PT_ADDRSTR_MAX];
    if (strcmp(name, a->name) == 0)
        return 0; /* the stream being replaced */
    json_t *j = json_loads(text, 0, NULL);
    int rc = j ? pt_model_stream_from_json(j, name, &b, &ignored) : -1;
    json_decref(j);
    if (rc != 0) {
        pt_stream_clear(&b);
        pt_apierr_set(c->e, 500, "internal", NULL, "cannot read the store");
        return PT_EDB;
    }
    rc = 0;
    if (a->n_listen == 0 && b.n_listen == 0 && pt_stream_conflict(a, &b, why, sizeof(why)))
        rc = pt_apierr_set(c->e, 409, "conflict", "names",
                           "names: stream '%s' on the --https listeners overlaps: %s", name,
                           why);
    for (size_t i = 0; i < a->n_listen && rc == 0; i++)
        for (size_t k = 0; k < b.n_listen && rc == 0; k++) {
            if (!pt_sockaddr_same((const struct sockaddr *)&a->listen[i].sa,
                                  (const struct sockaddr *)&b.listen[k].sa) ||
                !pt_stream_conflict(a, &b, why, sizeof(why)))
                continue;
            char field[32];
            snprintf(field, sizeof(field), "listen[%zu]", i);
            pt_sockaddr_format((const struct sockaddr *)&a->listen[i].sa, addr, sizeof(addr));
            rc = pt_apierr_set(c->e, 409, "conflict", field,
                               "%s: stream '%s' also listens on %s: %s", field, name, addr,
                               why);
        }
    pt_stream_clear(&b);
    return rc ? PT_ECONFLICT : 0;
}

static int check_stream(struct pt_req *r, const json_t *doc, const char *name,
                        struct pt_apierr *e)
{
    struct pt_stream st;
    const struct pt_api_hooks *h = &r->api->cfg.hooks;
    if (pt_model_stream_from_json(doc, name, &st, e) != 0) {
        pt_stream_clear(&st);
        return -1;
    }
    struct clash c = {&st, e};
    int rc = pt_store_each(r->api->cfg.store, PT_STORE_STREAM, clash_cb, &c);
    for (size_t i = 0; i < st.n_listen && rc == 0 && h->listen; i++) {
        char why[256], field[32];
        if (h->listen(h->arg, (const struct sockaddr *)&st.listen[i].sa, st.listen[i].salen,
                      why, sizeof(why)) == 0)
            continue;
        snprintf(field, sizeof(field), "listen[%zu]", i);
        pt_apierr_set(e, 409, "conflict", field, "%s: %s", field, why);
        rc = PT_EIO;
    }
    pt_stream_clear(&st);
    return rc == 0 ? 0 : -1;
}

static const struct kind backends = {"backends", "backend", PT_STORE_BACKEND,
                                     norm_backend, validate_backend, NULL, NULL};
static const struct kind domains = {"domains", "domain", PT_STORE_DOMAIN, norm_domain,
                                    validate_domain, decorate_domain, NULL};
static const struct kind streams = {"streams", "stream", PT_STORE_STREAM, norm_backend,
                                    validate_stream, NULL, check_stream};

/* Loads what k->decorate needs (nothing for backends). */
static int load_certs(struct pt_req *r, const struct kind *k, struct pt_certidx *certs)
{
    memset(certs, 0, sizeof(*certs));
    return k->decorate ? pt_api__certidx_load(r->api->cfg.store, certs) : 0;
}

static json_t *load_doc(const struct kind *k, const char *text, struct pt_certidx *certs)
{
    json_t *doc = json_loads(text, 0, NULL);
    if (doc && k->decorate)
        k->decorate(doc, certs);
    return doc;
}

/* Whether a backend-scoped token sees stored object <doc>: a domain routed
 * to its backend (server.c lets it reach its own backend only). Every other
 * token sees everything. */
static bool visible(const struct pt_req *r, const struct kind *k, const json_t *doc)
{
    if (r->only_backend == NULL || k->store != PT_STORE_DOMAIN)
        return true;
    const char *b = json_string_value(json_object_get(doc, "backend"));
    return b && strcmp(b, r->only_backend) == 0;
}

static int list_cb(void *arg, const char *name, const char *doc)
{
    void **a = arg;
    (void)name;
    json_t *j = load_doc(a[1], doc, a[2]);
    if (j == NULL)
        return PT_EDB;
    if (visible(a[3], a[1], j))
        json_array_append_new(a[0], j);
    else
        json_decref(j);
    return 0;
}

/* For a backend-scoped token: may it replace or delete stored domain <name>
 * (absent is fine)? 0, or -1 with <e> set (403, or 500 on a store error). */
static int may_change(struct pt_req *r, const struct kind *k, const char *name,
                      struct pt_apierr *e)
{
    if (r->only_backend == NULL || k->store != PT_STORE_DOMAIN)
        return 0;
    char *text = NULL;
    int rc = pt_store_get(r->api->cfg.store, PT_STORE_DOMAIN, name, &text);
    if (rc == PT_ENOTFOUND)
        return 0;
    json_t *doc = rc == 0 ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (doc == NULL)
        return pt_apierr_set(e, 500, "internal", NULL, "cannot read the store");
    bool mine = visible(r, k, doc);
    json_decref(doc);
    if (mine)
        return 0;
    return pt_apierr_set(e, 403, "forbidden", "backend",
                         "domain '%s' is routed to another backend: only an admin token "
                         "can change it",
                         name);
}

/* For a backend-scoped token: the new domain <doc> must be a passthrough
 * domain of its backend, named exactly. Offload would have portier order
 * certificates, a wildcard would catch names other servers may add later. */
static int may_create(struct pt_req *r, const struct kind *k, const json_t *doc,
                      struct pt_apierr *e)
{
    if (r->only_backend == NULL || k->store != PT_STORE_DOMAIN)
        return 0;
    const char *mode = json_string_value(json_object_get(doc, "mode"));
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (!visible(r, k, doc))
        return pt_apierr_set(e, 403, "forbidden", "backend",
                             "backend: this token may only route domains to backend '%s'",
                             r->only_backend);
    if (mode == NULL || strcmp(mode, "passthrough") != 0)
        return pt_apierr_set(e, 403, "forbidden", "mode",
                             "mode: this token may only create passthrough domains");
    if (name && name[0] == '*')
        return pt_apierr_set(e, 403, "forbidden", "name",
                             "name: this token may not create wildcard domains");
    return 0;
}

static enum MHD_Result do_list(struct pt_req *r, const struct kind *k)
{
    struct pt_certidx certs;
    if (load_certs(r, k, &certs) != 0)
        return pt_api__errorf(r, 500, "internal", NULL, "cannot read the store");
    json_t *arr = json_array();
    void *a[4] = {arr, (void *)(uintptr_t)k, &certs, r};
    int rc = pt_store_each(r->api->cfg.store, k->store, list_cb, a);
    pt_api__certidx_free(&certs);
    if (rc != 0) {
        json_decref(arr);
        return pt_api__errorf(r, 500, "internal", NULL, "cannot read the store");
    }
    return pt_api__json(r, 200, json_pack("{s:o}", k->plural, arr));
}

static enum MHD_Result do_get(struct pt_req *r, const struct kind *k, const char *name)
{
    char *text = NULL;
    struct pt_certidx certs;
    int rc = pt_store_get(r->api->cfg.store, k->store, name, &text);
    if (rc == PT_ENOTFOUND)
        return pt_api__errorf(r, 404, "not_found", NULL, "no %s named '%s'",
                              k->singular, name);
    json_t *doc = NULL;
    if (rc == 0 && load_certs(r, k, &certs) == 0) {
        doc = load_doc(k, text, &certs);
        pt_api__certidx_free(&certs);
    }
    free(text);
    if (doc == NULL)
        return pt_api__errorf(r, 500, "internal", NULL, "cannot read the store");
    if (!visible(r, k, doc)) {
        json_decref(doc);
        return pt_api__errorf(r, 403, "forbidden", NULL,
                              "%s '%s' is routed to another backend", k->singular, name);
    }
    const struct pt_api_hooks *h = &r->api->cfg.hooks;
    if (k->store == PT_STORE_BACKEND && h->servers)
        json_object_set_new(doc, "health", h->servers(h->arg, name));
    return pt_api__json(r, 200, doc);
}

/* A domain change may need a certificate ordered (or no longer renewed):
 * wake the ACME client now rather than at its next pass. */
static void kick_acme(struct pt_req *r, const struct kind *k)
{
    const struct pt_api_hooks *h = &r->api->cfg.hooks;
    if (k->store == PT_STORE_DOMAIN && h->acme_kick)
        h->acme_kick(h->arg, NULL);
}

/* Inside an open transaction: validates <body> as <k> <name>, checks the
 * caller's scope, writes it and appends the change to <delta> (when the kind
 * travels in deltas). Returns 0 with *doc (canonical, new reference) and
 * *created, or -1 with <e> set; the caller rolls back. */
static int put_one(struct pt_req *r, const struct kind *k, const char *name,
                   const json_t *body, json_t **doc, bool *created, struct pt_delta *delta,
                   struct pt_apierr *e)
{
    const char *backend, *mode;
    *doc = k->validate(body, name, &backend, &mode, e);
    if (*doc == NULL)
        return -1;
    if (may_create(r, k, *doc, e) != 0 || may_change(r, k, name, e) != 0 ||
        (k->check && k->check(r, *doc, name, e) != 0))
        goto fail;
    char *text = json_dumps(*doc, JSON_COMPACT);
    int rc = pt_store_put(r->api->cfg.store, k->store, name, text, backend, mode, created);
    free(text);
    if (rc == PT_ENOTFOUND) {
        pt_apierr_set(e, 400, "invalid_argument", "backend", "backend: no backend named '%s'",
                      backend);
        goto fail;
    }
    if (rc != 0) {
        pt_apierr_set(e, 500, "internal", NULL, "cannot write the store");
        goto fail;
    }
    if (k->store == PT_STORE_BACKEND) {
        struct pt_backend b;
        if (pt_model_backend_from_json(*doc, name, &b, e) == 0)
            pt_delta_put_backend(delta, &b);
        pt_backend_clear(&b);
    } else if (k->store == PT_STORE_DOMAIN) {
        struct pt_domain d;
        if (pt_model_domain_from_json(*doc, name, &d, e) == 0)
            pt_delta_put_domain(delta, &d);
        pt_domain_clear(&d);
    }
    return 0;
fail:
    json_decref(*doc);
    *doc = NULL;
    return -1;
}

/* The same for a delete. */
static int delete_one(struct pt_req *r, const struct kind *k, const char *name,
                      struct pt_delta *delta, struct pt_apierr *e)
{
    char *user = NULL;
    if (may_change(r, k, name, e) != 0)
        return -1;
    int rc = pt_store_delete(r->api->cfg.store, k->store, name, &user);
    if (rc == PT_ENOTFOUND)
        pt_apierr_set(e, 404, "not_found", NULL, "no %s named '%s'", k->singular, name);
    else if (rc == PT_EINUSE)
        pt_apierr_set(e, 409, "conflict", NULL, "%s '%s' is used by %s", k->singular, name,
                      user ? user : "?");
    else if (rc != 0)
        pt_apierr_set(e, 500, "internal", NULL, "cannot write the store");
    free(user);
    if (rc != 0)
        return -1;
    if (k->store != PT_STORE_STREAM)
        pt_delta_remove(delta, k->store == PT_STORE_BACKEND ? PT_DELTA_BACKEND
                                                            : PT_DELTA_DOMAIN,
                        name);
    return 0;
}

/* Commits the open transaction: its changes go to the workers as the delta;
 * a stream write (<stream_write>) adds the stream table, which the daemon fills
 * in as committed (it alone knows the listener ids). */
static int commit(struct pt_req *r, bool stream_write, struct pt_delta *delta, uint64_t *version,
                  bool *applied, struct pt_apierr *e)
{
    if (stream_write) {
        struct pt_streams none = {0};
        pt_delta_put_streams(delta, &none);
    }
    int rc = pt_api__finish_delta(r, delta, false, version, applied, e);
    pt_delta_clear(delta);
    return rc;
}

static enum MHD_Result do_put(struct pt_req *r, const struct kind *k, const char *name)
{
    struct pt_apierr e;
    struct pt_store *store = r->api->cfg.store;
    json_t *body = pt_model_parse_body(r->body, r->len, &e);
    if (body == NULL)
        return pt_api__error(r, &e);
    json_t *doc = NULL;
    bool created = false, applied = false;
    uint64_t version = 0;
    struct pt_delta delta = {0};
    if (pt_store_begin(store) != 0) {
        json_decref(body);
        return pt_api__errorf(r, 500, "internal", NULL, "cannot write the store");
    }
    int rc = put_one(r, k, name, body, &doc, &created, &delta, &e);
    json_decref(body);
    if (rc != 0) {
        pt_store_rollback(store);
        pt_delta_clear(&delta);
        return pt_api__error(r, &e);
    }
    if (commit(r, k->store == PT_STORE_STREAM, &delta, &version, &applied, &e) != 0) {
        json_decref(doc);
        return pt_api__error(r, &e);
    }
    kick_acme(r, k);
    if (k->decorate) {
        struct pt_certidx certs;
        if (load_certs(r, k, &certs) == 0) /* without it the answer lacks two members */
            k->decorate(doc, &certs);
        pt_api__certidx_free(&certs);
    }
    json_object_set_new(doc, "config_version", json_integer((json_int_t)version));
    json_object_set_new(doc, "applied", json_boolean(applied));
    return pt_api__json(r, created ? 201 : 200, doc);
}

static enum MHD_Result do_delete(struct pt_req *r, const struct kind *k,
                                 const char *name)
{
    struct pt_apierr e;
    struct pt_store *store = r->api->cfg.store;
    uint64_t version = 0;
    bool applied = false;
    struct pt_delta delta = {0};
    if (pt_store_begin(store) != 0)
        return pt_api__errorf(r, 500, "internal", NULL, "cannot write the store");
    if (delete_one(r, k, name, &delta, &e) != 0) {
        pt_store_rollback(store);
        pt_delta_clear(&delta);
        return pt_api__error(r, &e);
    }
    if (commit(r, k->store == PT_STORE_STREAM, &delta, &version, &applied, &e) != 0)
        return pt_api__error(r, &e);
    kick_acme(r, k);
    return pt_api__no_content(r, version, applied);
}

static enum MHD_Result handle(struct pt_req *r, const struct kind *k, const char *rest)
{
    struct pt_apierr e;
    const char *m = r->method;
    if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
        if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
            return do_list(r, k);
        return pt_api__method_not_allowed(r, "GET");
    }
    const char *seg = rest + 1;
    const char *slash = strchr(seg, '/');
    if (slash && k == &backends && strcmp(slash, "/snippet") == 0) {
        char bname[128];
        int n = pt_api__unescape(seg, (size_t)(slash - seg), bname, sizeof(bname));
        if (n < 0 || !pt_model_backend_name_ok(bname))
            return pt_api__errorf(r, 400, "invalid_argument", "name", "name: invalid");
        if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0)
            return pt_api__method_not_allowed(r, "GET");
        return pt_api__snippet(r, bname);
    }
    if (slash != NULL)
        return pt_api__errorf(r, 404, "not_found", NULL, "no such endpoint");
    char raw[PT_DNAME_MAX + 2], name[PT_DNAME_MAX + 1];
    if (pt_api__unescape(seg, strlen(seg), raw, sizeof(raw)) < 0)
        return pt_api__errorf(r, 400, "invalid_argument", "name",
                              "name: bad percent-encoding, NUL byte or too long");
    if (k->norm(raw, name, sizeof(name), &e) != 0)
        return pt_api__error(r, &e);
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return do_get(r, k, name);
    if (strcmp(m, "PUT") == 0)
        return do_put(r, k, name);
    if (strcmp(m, "DELETE") == 0)
        return do_delete(r, k, name);
    return pt_api__method_not_allowed(r, "GET, PUT, DELETE");
}

enum MHD_Result pt_api__backends(struct pt_req *r, const char *rest)
{
    return handle(r, &backends, rest);
}

enum MHD_Result pt_api__domains(struct pt_req *r, const char *rest)
{
    return handle(r, &domains, rest);
}

enum MHD_Result pt_api__streams(struct pt_req *r, const char *rest)
{
    return handle(r, &streams, rest);
}

/* ---- POST /api/v1/batch ------------------------------------------------- */

static const struct kind *kind_named(const char *s)
{
    if (s == NULL)
        return NULL;
    if (strcmp(s, "backend") == 0)
        return &backends;
    if (strcmp(s, "domain") == 0)
        return &domains;
    if (strcmp(s, "stream") == 0)
        return &streams;
    return NULL;
}

/* Says which change <e> is about: "changes[3].servers[0]". */
static void at_change(struct pt_apierr *e, size_t i)
{
    char f[sizeof(e->field)], m[sizeof(e->message)];
    /* Bounded: a field or message cut short is still an answer. */
    if (e->field[0])
        snprintf(f, sizeof(f), "changes[%zu].%.120s", i, e->field);
    else
        snprintf(f, sizeof(f), "changes[%zu]", i);
    snprintf(m, sizeof(m), "changes[%zu]: %.280s", i, e->message);
    memcpy(e->field, f, sizeof(f));
    memcpy(e->message, m, sizeof(m));
}

struct change {
    const struct kind *k;
    bool remove;
    const json_t *body; /* borrowed from the request's document */
    char key[PT_DNAME_MAX + 2]; /* kind letter, then the normalised name */
};

/* The shape of change <j>: {"op": "put"|"delete", "kind", "name", "body"
 * (put only)}. 0 or -1 with <e> set (about the change, not yet prefixed). */
static int read_change(const json_t *j, struct change *c, struct pt_apierr *e)
{
    if (!json_is_object(j))
        return pt_apierr_set(e, 400, "invalid_argument", NULL, "expected an object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        if (strcmp(k, "op") != 0 && strcmp(k, "kind") != 0 && strcmp(k, "name") != 0 &&
            strcmp(k, "body") != 0)
            return pt_apierr_set(e, 400, "invalid_argument", k, "%s: unknown field", k);
    }
    const char *op = json_string_value(json_object_get(j, "op"));
    if (op == NULL || (strcmp(op, "put") != 0 && strcmp(op, "delete") != 0))
        return pt_apierr_set(e, 400, "invalid_argument", "op",
                             "op: expected \"put\" or \"delete\"");
    c->remove = op[0] == 'd';
    c->k = kind_named(json_string_value(json_object_get(j, "kind")));
    if (c->k == NULL)
        return pt_apierr_set(e, 400, "invalid_argument", "kind",
                             "kind: expected \"backend\", \"domain\" or \"stream\"");
    const char *name = json_string_value(json_object_get(j, "name"));
    if (name == NULL || strlen(name) > PT_DNAME_MAX)
        return pt_apierr_set(e, 400, "invalid_argument", "name",
                             "name: expected a %s name", c->k->singular);
    c->key[0] = c->k->singular[0];
    if (c->k->norm(name, c->key + 1, sizeof(c->key) - 1, e) != 0)
        return -1;
    c->body = json_object_get(j, "body");
    if (c->remove ? c->body != NULL : !json_is_object(c->body))
        return pt_apierr_set(e, 400, "invalid_argument", "body",
                             c->remove ? "body: a delete takes none"
                                       : "body: expected the object a PUT takes");
    return 0;
}

static int cmp_change(const void *a, const void *b)
{
    return strcmp((*(const struct change *const *)a)->key,
                  (*(const struct change *const *)b)->key);
}

/* Every change of <v> is well formed and names a distinct object: one
 * object changed twice in a batch is most likely a mistake, refused. */
static int read_changes(const json_t *v, struct change *cs, size_t n, struct pt_apierr *e)
{
    for (size_t i = 0; i < n; i++)
        if (read_change(json_array_get(v, i), &cs[i], e) != 0) {
            at_change(e, i);
            return -1;
        }
    struct change **sorted = pt_xcalloc(n, sizeof(*sorted));
    for (size_t i = 0; i < n; i++)
        sorted[i] = &cs[i];
    qsort(sorted, n, sizeof(*sorted), cmp_change);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
            size_t a = (size_t)(sorted[i - 1] - cs), b = (size_t)(sorted[i] - cs);
            rc = pt_apierr_set(e, 400, "invalid_argument", "name",
                               "name: %s '%s' is also changed by changes[%zu]",
                               cs[b].k->singular, cs[b].key + 1, a < b ? a : b);
            at_change(e, a > b ? a : b);
        }
    free(sorted);
    return rc;
}

enum MHD_Result pt_api__batch(struct pt_req *r)
{
    struct pt_apierr e;
    struct pt_store *store = r->api->cfg.store;
    if (strcmp(r->method, "POST") != 0)
        return pt_api__method_not_allowed(r, "POST");
    json_t *body = pt_model_parse_body(r->body, r->len, &e);
    if (body == NULL)
        return pt_api__error(r, &e);
    const json_t *v = json_object_get(body, "changes");
    size_t n = json_array_size(v);
    if (!json_is_array(v) || json_object_size(body) != 1 || n == 0 || n > PT_API_BATCH_MAX) {
        json_decref(body);
        return pt_api__errorf(r, 400, "invalid_argument", "changes",
                              "changes: expected {\"changes\": [...]} with 1 to %d changes",
                              PT_API_BATCH_MAX);
    }
    struct change *cs = pt_xcalloc(n, sizeof(*cs));
    struct pt_delta delta = {0};
    bool stream_write = false, domain = false, applied = false;
    uint64_t version = 0;
    int rc = read_changes(v, cs, n, &e);
    if (rc == 0 && pt_store_begin(store) != 0)
        rc = pt_apierr_set(&e, 500, "internal", NULL, "cannot write the store");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct change *c = &cs[i];
        json_t *doc = NULL;
        bool created;
        stream_write |= c->k->store == PT_STORE_STREAM;
        domain |= c->k->store == PT_STORE_DOMAIN;
        /* A backend-scoped token changes its own domains only. */
        if (r->only_backend && c->k->store != PT_STORE_DOMAIN)
            rc = pt_apierr_set(&e, 403, "forbidden", "kind",
                               "kind: this token may only change domains");
        else if (c->remove)
            rc = delete_one(r, c->k, c->key + 1, &delta, &e);
        else
            rc = put_one(r, c->k, c->key + 1, c->body, &doc, &created, &delta, &e);
        json_decref(doc);
        if (rc != 0) {
            pt_store_rollback(store);
            at_change(&e, i);
        }
    }
    free(cs);
    json_decref(body);
    if (rc != 0) {
        pt_delta_clear(&delta);
        return pt_api__error(r, &e);
    }
    if (commit(r, stream_write, &delta, &version, &applied, &e) != 0)
        return pt_api__error(r, &e);
    if (domain)
        kick_acme(r, &domains);
    return pt_api__json(r, 200,
                        json_pack("{s:I, s:b, s:I}", "config_version", (json_int_t)version,
                                  "applied", applied, "changes", (json_int_t)n));
}
