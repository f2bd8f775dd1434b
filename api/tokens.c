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

static int list_cb(void *arg, const struct pt_store_token *t)
{
    json_array_append_new(arg, json_pack("{s:s, s:s, s:o, s:o}", "name", t->name, "scope",
                                         t->scope, "created", pt_api__time_json(t->created),
                                         "last_used", pt_api__time_json(t->last_used)));
    return 0;
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
        if (strcmp(key, "name") && strcmp(key, "scope")) {
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
    uint8_t raw[32];
    char secret[65], hash[65];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        json_decref(body);
        return pt_api__errorf(r, 500, "internal", NULL, "no randomness");
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(secret + 2 * i, 3, "%02x", raw[i]);
    pt_api__sha256_hex(secret, 64, hash);
    int rc = pt_store_token_add(r->api->cfg.store, name, scope, hash, (int64_t)time(NULL));
    if (rc == PT_ECONFLICT)
        res = pt_api__errorf(r, 409, "conflict", "name", "a token named '%s' exists", name);
    else if (rc != 0)
        res = pt_api__errorf(r, 500, "internal", NULL, "cannot write the store");
    else
        res = pt_api__json(r, 201, json_pack("{s:s, s:s, s:s}", "name", name, "scope",
                                             scope, "token", secret));
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
    int rc = pt_store_token_delete(r->api->cfg.store, name);
    if (rc == PT_ENOTFOUND)
        return pt_api__errorf(r, 404, "not_found", NULL, "no token named '%s'", name);
    if (rc != 0)
        return pt_api__errorf(r, 500, "internal", NULL, "cannot write the store");
    return pt_api__text(r, 204, NULL, "", 0, false);
}
