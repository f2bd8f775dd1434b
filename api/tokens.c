/* /api/v1/tokens: scoped tokens for scripts on other machines. Secrets are
 * shown once and stored as SHA-256 only. */
#include "api/internal.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

void pt_api__sha256_hex(const char *s, size_t len, char out[65])
{
    uint8_t h[32];
    SHA256((const unsigned char *)s, len, h);
    for (size_t i = 0; i < sizeof(h); i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static json_t *limits_json(const struct pt_store_token_limits *lim)
{
    return json_pack("{s:{s:i, s:i}, s:I}", "max_prefix", "ipv4", (int)lim->max_prefix4,
                     "ipv6", (int)lim->max_prefix6, "quota", (json_int_t)lim->quota);
}

/* A "bans" token's optional "max_prefix" {"ipv4": 1..32, "ipv6": 1..128}
 * (the widest prefix it may ban) and "quota" (live bans it may hold). */
static int parse_limits(const json_t *body, struct pt_store_token_limits *lim,
                        struct pt_apierr *e)
{
    *lim = PT_TOKEN_LIMITS_DEFAULT;
    const json_t *mp = json_object_get(body, "max_prefix");
    const json_t *q = json_object_get(body, "quota");
    if (mp) {
        const char *k;
        const json_t *v;
        if (!json_is_object(mp))
            return pt_apierr_set(e, 400, "invalid_argument", "max_prefix",
                                 "max_prefix: expected {\"ipv4\": 1..32, \"ipv6\": 1..128}");
        json_object_foreach((json_t *)mp, k, v) {
            bool v4 = strcmp(k, "ipv4") == 0;
            json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
            if ((!v4 && strcmp(k, "ipv6") != 0) || n < 1 || n > (v4 ? 32 : 128))
                return pt_apierr_set(e, 400, "invalid_argument", "max_prefix",
                                     "max_prefix: expected {\"ipv4\": 1..32, \"ipv6\": "
                                     "1..128} (a /0 is refused anyway)");
            if (v4)
                lim->max_prefix4 = (uint8_t)n;
            else
                lim->max_prefix6 = (uint8_t)n;
        }
    }
    if (q) {
        json_int_t n = json_is_integer(q) ? json_integer_value(q) : 0;
        if (n < 1 || n > 10000000)
            return pt_apierr_set(e, 400, "invalid_argument", "quota",
                                 "quota: expected 1..10000000 live bans");
        lim->quota = (uint32_t)n;
    }
    return 0;
}

static int list_cb(void *arg, const struct pt_store_token *t)
{
    json_t *j = json_pack("{s:s, s:s, s:o, s:o}", "name", t->name, "scope", t->scope,
                          "created", pt_api__time_json(t->created), "last_used",
                          pt_api__time_json(t->last_used));
    if (strcmp(t->scope, "bans") == 0)
        json_object_update_new(j, limits_json(&t->lim));
    json_array_append_new(arg, j);
    return 0;
}

/* Ends the transaction of a token write whose result is <rc>: undone, or
 * committed with its group (durable when the answer leaves). */
static int store_write(struct pt_req *r, int rc)
{
    struct pt_apierr e;
    if (rc != 0) {
        pt_store_rollback(r->api->cfg.store);
        return rc;
    }
    return pt_api__finish_store(r, &e) == 0 ? 0 : PT_EDB;
}

static enum MHD_Result do_post(struct pt_req *r)
{
    struct pt_apierr e;
    json_t *body = pt_model_parse_body(r->body, r->len, &e);
    if (body == NULL)
        return pt_api__error(r, &e);
    const char *key;
    json_t *v;
    enum MHD_Result res;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "name") && strcmp(key, "scope") && strcmp(key, "max_prefix") &&
            strcmp(key, "quota")) {
            res = pt_api__errorf(r, 400, "invalid_argument", key, "%.100s: unknown field",
                                 key);
            json_decref(body);
            return res;
        }
    }
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *scope = json_string_value(json_object_get(body, "scope"));
    if (name == NULL || !pt_model_backend_name_ok(name)) {
        json_decref(body);
        return pt_api__errorf(r, 400, "invalid_argument", "name",
                              "name: required, [a-z0-9][a-z0-9_-]{0,62}");
    }
    if (scope == NULL ||
        (strcmp(scope, "admin") != 0 && strcmp(scope, "bans") != 0 &&
         !(strncmp(scope, "backend:", 8) == 0 && pt_model_backend_name_ok(scope + 8)))) {
        json_decref(body);
        return pt_api__errorf(r, 400, "invalid_argument", "scope",
                              "scope: expected \"admin\", \"bans\" or \"backend:NAME\" "
                              "(NAME a backend name)");
    }
    /* "admin" is what bans made with the admin token record as created_by. */
    if (strcmp(name, "admin") == 0) {
        json_decref(body);
        return pt_api__errorf(r, 400, "invalid_argument", "name",
                              "name: \"admin\" is reserved for the admin token");
    }
    struct pt_store_token_limits lim;
    if ((json_object_get(body, "max_prefix") || json_object_get(body, "quota")) &&
        strcmp(scope, "bans") != 0) {
        json_decref(body);
        return pt_api__errorf(r, 400, "invalid_argument", "scope",
                              "max_prefix and quota apply to \"bans\" tokens only");
    }
    if (parse_limits(body, &lim, &e) != 0) {
        json_decref(body);
        return pt_api__error(r, &e);
    }
    uint8_t raw[32];
    char secret[65], hash[65];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        json_decref(body);
        return pt_api__errorf(r, 500, "internal", NULL, "no randomness");
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(secret + 2 * i, 3, "%02x", raw[i]);
    pt_api__sha256_hex(secret, 64, hash);
    int rc = pt_store_begin(r->api->cfg.store);
    if (rc == 0)
        rc = store_write(r, pt_store_token_add(r->api->cfg.store, name, scope, hash,
                                               (int64_t)time(NULL), &lim));
    if (rc == PT_ECONFLICT)
        res = pt_api__errorf(r, 409, "conflict", "name", "a token named '%s' exists", name);
    else if (rc != 0)
        res = pt_api__errorf(r, 500, "internal", NULL, "cannot write the store");
    else {
        json_t *out = json_pack("{s:s, s:s, s:s}", "name", name, "scope", scope, "token",
                                secret);
        if (strcmp(scope, "bans") == 0)
            json_object_update_new(out, limits_json(&lim));
        res = pt_api__json(r, 201, out);
    }
    json_decref(body);
    return res;
}

enum MHD_Result pt_api__tokens(struct pt_req *r, const char *rest)
{
    const char *m = r->method;
    if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
        if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
            json_t *arr = json_array();
            pt_store_token_each(r->api->cfg.store, list_cb, arr);
            return pt_api__json(r, 200, json_pack("{s:o}", "tokens", arr));
        }
        if (strcmp(m, "POST") == 0)
            return do_post(r);
        return pt_api__method_not_allowed(r, "GET, POST");
    }
    char name[128];
    if (pt_api__unescape(rest + 1, strlen(rest + 1), name, sizeof(name)) < 0)
        return pt_api__errorf(r, 400, "invalid_argument", "name", "name: invalid");
    if (strcmp(m, "DELETE") != 0)
        return pt_api__method_not_allowed(r, "DELETE");
    int rc = pt_store_begin(r->api->cfg.store);
    if (rc == 0)
        rc = store_write(r, pt_store_token_delete(r->api->cfg.store, name));
    if (rc == PT_ENOTFOUND)
        return pt_api__errorf(r, 404, "not_found", NULL, "no token named '%s'", name);
    if (rc != 0)
        return pt_api__errorf(r, 500, "internal", NULL, "cannot write the store");
    return pt_api__text(r, 204, NULL, "", 0, false);
}
