/* /api/v1/certificates: uploaded ("manual") and ACME certificates for TLS
 * offload. Private keys go into the store and the workers' snapshot, never
 * into an answer. */
#include "api/internal.h"

#include "api/pem.h"
#include "common/dname.h"
#include "db/certs.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define ID_MAX 64

/* ---- shared with objects.c: which certificate a domain gets ------------- */

static const char *const status_order[] = {"valid", "renewing", "pending", "failed",
                                           "expired"};

/* The status to show: a certificate past its not_after is "expired" whatever
 * the row says (the workers already stopped serving it). Returns a static
 * string. */
static const char *shown_status(const char *stored, int64_t not_after, int64_t now,
                                int *rank)
{
    size_t i = 0;
    for (; i < PT_ARRAY_LEN(status_order); i++)
        if (stored && strcmp(stored, status_order[i]) == 0)
            break;
    if (i == PT_ARRAY_LEN(status_order)) /* the schema's CHECK makes this a bug */
        i = PT_ARRAY_LEN(status_order) - 1;
    if (i < 2 && not_after != 0 && not_after <= now)
        i = PT_ARRAY_LEN(status_order) - 1;
    if (rank)
        *rank = (int)i;
    return status_order[i];
}

int pt_api__certidx_load(struct pt_store *store, struct pt_certidx *ix)
{
    memset(ix, 0, sizeof(*ix));
    ix->now = (int64_t)time(NULL);
    return pt_store_certq_open(store, &ix->q);
}

struct best {
    struct pt_certidx *ix;
    bool found;
    int rank;
    int64_t not_after;
};

static int best_cb(void *arg, const struct pt_store_cert *c)
{
    struct best *b = arg;
    int rank;
    const char *status = shown_status(c->status, c->not_after, b->ix->now, &rank);
    if (b->found && (rank > b->rank || (rank == b->rank && c->not_after <= b->not_after)))
        return 0;
    b->found = true;
    b->rank = rank;
    b->not_after = c->not_after;
    b->ix->status = status;
    snprintf(b->ix->id, sizeof(b->ix->id), "%s", c->id);
    return 0;
}

bool pt_api__certidx_match(struct pt_certidx *ix, const char *name, const char **id,
                           const char **status)
{
    struct best b = {ix, false, 0, 0};
    if (ix->q == NULL || pt_store_certq_each(ix->q, name, best_cb, &b) != 0 || !b.found)
        return false;
    *id = ix->id;
    *status = ix->status;
    return true;
}

void pt_api__certidx_free(struct pt_certidx *ix)
{
    if (ix == NULL)
        return;
    pt_store_certq_close(ix->q);
    memset(ix, 0, sizeof(*ix));
}

/* ---- the resource --------------------------------------------------------- */

/* The public view of a row: no PEM at all (the chain is public, but the
 * answer stays small and nobody has to check that no key slipped in). */
static json_t *cert_json(const struct pt_store_cert *c, int64_t now)
{
    json_t *names = json_loads(c->domains_json ? c->domains_json : "", 0, NULL);
    if (!json_is_array(names)) {
        json_decref(names);
        names = json_array();
    }
    bool manual = c->source && strcmp(c->source, "manual") == 0;
    return json_pack("{s:s, s:o, s:s?, s:s, s:o, s:o, s:o, s:o?}", "id", c->id, "domains",
                     names, "source", c->source, "status",
                     shown_status(c->status, c->not_after, now, NULL), "not_before",
                     pt_api__time_json(c->not_before), "not_after", pt_api__time_json(c->not_after),
                     "renew_after", manual ? json_null() : pt_api__time_json(c->renew_after),
                     "last_error", c->last_error ? json_string(c->last_error) : NULL);
}

static int list_cb(void *arg, const struct pt_store_cert *c)
{
    json_t *j = cert_json(c, (int64_t)time(NULL));
    if (j == NULL)
        return PT_EDB;
    json_array_append_new(arg, j);
    return 0;
}

static int get_cb(void *arg, const struct pt_store_cert *c)
{
    json_t **out = arg;
    *out = cert_json(c, (int64_t)time(NULL));
    return *out ? 0 : PT_EDB;
}

/* What renew needs to know of a row. */
struct brief {
    bool acme;
    char status[16];
};

static int brief_cb(void *arg, const struct pt_store_cert *c)
{
    struct brief *b = arg;
    b->acme = c->source && strcmp(c->source, "acme") == 0;
    snprintf(b->status, sizeof(b->status), "%s",
             shown_status(c->status, c->not_after, (int64_t)time(NULL), NULL));
    return 0;
}

static void kick_acme(struct pt_req *r, const char *id)
{
    const struct pt_api_hooks *h = &r->api->cfg.hooks;
    if (h->acme_kick)
        h->acme_kick(h->arg, id);
}

/* Wipes a key the request carried, in the body and in its JSON copy. */
static void wipe_key(struct pt_req *r, json_t *jkey)
{
    if (json_is_string(jkey))
        OPENSSL_cleanse((void *)(uintptr_t)json_string_value(jkey), json_string_length(jkey));
    if (r->body)
        OPENSSL_cleanse(r->body, r->len);
}

static enum MHD_Result do_post(struct pt_req *r)
{
    struct pt_apierr e;
    struct pt_store *store = r->api->cfg.store;
    struct pt_pem_info info = {0};
    char why[256], id[33];
    uint8_t rnd[16];
    enum MHD_Result res;
    json_t *body = pt_model_parse_body(r->body, r->len, &e);
    if (body == NULL) {
        wipe_key(r, NULL);
        return pt_api__error(r, &e);
    }
    json_t *jcert = json_object_get(body, "cert_pem");
    json_t *jkey = json_object_get(body, "key_pem");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "cert_pem") && strcmp(key, "key_pem")) {
            res = pt_api__errorf(r, 400, "invalid_argument", key, "%.100s: unknown field",
                                 key);
            goto out; /* <key> lives in <body> */
        }
    }
    if (!json_is_string(jcert)) {
        res = pt_api__errorf(r, 400, "invalid_argument", "cert_pem",
                             "cert_pem: required, a string: the PEM certificate, then "
                             "its chain");
        goto out;
    }
    if (!json_is_string(jkey)) {
        res = pt_api__errorf(r, 400, "invalid_argument", "key_pem",
                             "key_pem: required, a string: the PEM private key");
        goto out;
    }
    if (pt_pem_check(json_string_value(jcert), json_string_length(jcert),
                     json_string_value(jkey), json_string_length(jkey), &info, why,
                     sizeof(why)) != 0) {
        res = pt_api__errorf(r, 400, "invalid_argument", info.field, "%s: %s", info.field,
                             why);
        goto out;
    }
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        res = pt_api__errorf(r, 500, "internal", NULL, "no random bytes for an id");
        goto out;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);

    json_t *names = json_array();
    for (size_t i = 0; i < info.n_names; i++)
        json_array_append_new(names, json_string(info.names[i]));
    char *domains = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    int64_t now = (int64_t)time(NULL);
    struct pt_store_cert c = {
        .id = id,
        .source = "manual",
        .domains_json = domains,
        .cert_pem = info.cert_pem,
        .key_pem = info.key_pem,
        .status = info.not_after <= now ? "expired" : "valid",
        .not_before = info.not_before,
        .not_after = info.not_after,
        .created = now,
        .updated = now,
    };
    uint64_t version = 0;
    bool applied = false;
    int rc = pt_store_begin(store);
    if (rc == 0)
        rc = pt_store_cert_put(store, &c);
    if (rc != 0) {
        pt_store_rollback(store);
        free(domains);
        res = pt_api__errorf(r, 500, "internal", NULL, "cannot write the store");
        goto out;
    }
    /* The workers get this one certificate, not every other one again. */
    struct pt_delta delta = {0};
    pt_model_cert_delta(&delta, id, &c, now);
    rc = pt_api__finish_delta(r, &delta, false, &version, &applied, &e);
    pt_delta_clear(&delta);
    if (rc != 0) {
        free(domains);
        res = pt_api__error(r, &e);
        goto out;
    }
    kick_acme(r, NULL);
    json_t *obj = cert_json(&c, now);
    free(domains);
    json_object_set_new(obj, "config_version", json_integer((json_int_t)version));
    json_object_set_new(obj, "applied", json_boolean(applied));
    res = pt_api__json(r, 201, obj);
out:
    pt_pem_info_free(&info);
    wipe_key(r, jkey);
    json_decref(body);
    return res;
}

static enum MHD_Result do_get(struct pt_req *r, const char *id)
{
    json_t *obj = NULL;
    int rc = pt_store_cert_get(r->api->cfg.store, id, get_cb, &obj);
    if (rc == PT_ENOTFOUND)
        return pt_api__errorf(r, 404, "not_found", NULL, "no certificate with id '%s'", id);
    if (rc != 0 || obj == NULL) {
        json_decref(obj);
        return pt_api__errorf(r, 500, "internal", NULL, "cannot read the store");
    }
    return pt_api__json(r, 200, obj);
}

static enum MHD_Result do_delete(struct pt_req *r, const char *id)
{
    struct pt_apierr e;
    struct pt_store *store = r->api->cfg.store;
    uint64_t version = 0;
    bool applied = false;
    int rc = pt_store_begin(store);
    if (rc == 0)
        rc = pt_store_cert_delete(store, id);
    if (rc != 0) {
        pt_store_rollback(store);
        if (rc == PT_ENOTFOUND)
            return pt_api__errorf(r, 404, "not_found", NULL, "no certificate with id '%s'",
                                  id);
        return pt_api__errorf(r, 500, "internal", NULL, "cannot write the store");
    }
    struct pt_delta delta = {0};
    pt_delta_remove(&delta, PT_DELTA_CERT, id);
    rc = pt_api__finish_delta(r, &delta, false, &version, &applied, &e);
    pt_delta_clear(&delta);
    if (rc != 0)
        return pt_api__error(r, &e);
    kick_acme(r, NULL);
    return pt_api__no_content(r, version, applied);
}

/* Renewal is the ACME client's work: this only wakes it. Nothing is written,
 * so config_version does not move; the client records its progress in the
 * row ("renewing", then "valid" or "failed"). */
static enum MHD_Result do_renew(struct pt_req *r, const char *id)
{
    struct brief b = {0};
    int rc = pt_store_cert_get(r->api->cfg.store, id, brief_cb, &b);
    if (rc == PT_ENOTFOUND)
        return pt_api__errorf(r, 404, "not_found", NULL, "no certificate with id '%s'", id);
    if (rc != 0)
        return pt_api__errorf(r, 500, "internal", NULL, "cannot read the store");
    if (!b.acme)
        return pt_api__errorf(r, 409, "conflict", NULL,
                              "uploaded certificates are renewed by uploading a new one");
    if (r->api->cfg.hooks.acme_kick == NULL)
        return pt_api__errorf(r, 409, "conflict", NULL,
                              "ACME is not configured (--acme-directory)");
    kick_acme(r, id);
    return pt_api__json(r, 202, json_pack("{s:s, s:s}", "id", id, "status", b.status));
}

/* Ids are ours (hex), but any row id of sane characters can be addressed. */
static bool id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

enum MHD_Result pt_api__certificates(struct pt_req *r, const char *rest)
{
    const char *m = r->method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
        if (get) {
            json_t *arr = json_array();
            if (pt_store_cert_each(r->api->cfg.store, list_cb, arr) != 0) {
                json_decref(arr);
                return pt_api__errorf(r, 500, "internal", NULL, "cannot read the store");
            }
            return pt_api__json(r, 200, json_pack("{s:o}", "certificates", arr));
        }
        if (strcmp(m, "POST") == 0)
            return do_post(r);
        return pt_api__method_not_allowed(r, "GET, POST");
    }
    const char *seg = rest + 1;
    const char *slash = strchr(seg, '/');
    size_t seglen = slash ? (size_t)(slash - seg) : strlen(seg);
    char id[ID_MAX + 2];
    if (pt_api__unescape(seg, seglen, id, sizeof(id)) < 0 || !id_ok(id))
        return pt_api__errorf(r, 404, "not_found", NULL, "no such certificate");
    if (slash == NULL) {
        if (get)
            return do_get(r, id);
        if (strcmp(m, "DELETE") == 0)
            return do_delete(r, id);
        return pt_api__method_not_allowed(r, "GET, DELETE");
    }
    if (strcmp(slash, "/renew") == 0) {
        if (strcmp(m, "POST") == 0)
            return do_renew(r, id);
        return pt_api__method_not_allowed(r, "POST");
    }
    return pt_api__errorf(r, 404, "not_found", NULL, "no such endpoint");
}
