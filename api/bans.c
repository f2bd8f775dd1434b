/* /api/v1/bans: addresses and prefixes every worker refuses at accept and
 * cuts when already connected.
 *
 * A "bans" token (r->limited) works in its own space: it bans nothing wider
 * than its max_prefix, sees and deletes only the bans it made, holds at most
 * its quota of live bans, and cannot replace a ban somebody else made. A ban
 * write publishes a delta (pt_api__finish_bans), not a whole snapshot. */
#include "api/internal.h"

#include "common/addr.h"

#define REASON_MAX 256
#define DURATION_MAX (10LL * 365 * 86400)

void pt_api__rfc3339(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *pt_api__time_json(int64_t t)
{
    char buf[32];
    if (t == 0)
        return json_null();
    pt_api__rfc3339(t, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *ban_json(const struct pt_store_ban *b)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:s}", "ip", b->ip, "reason",
                     b->reason ? b->reason : "", "created", pt_api__time_json(b->created),
                     "expires", pt_api__time_json(b->expires), "created_by",
                     b->created_by ? b->created_by : "admin");
}

static int list_cb(void *arg, const struct pt_store_ban *b)
{
    json_array_append_new(arg, ban_json(b));
    return 0;
}

static bool reason_ok(const char *s, size_t len)
{
    if (len > REASON_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static enum MHD_Result do_post(struct pt_req *r)
{
    struct pt_apierr e;
    struct pt_store *store = r->api->cfg.store;
    json_t *body = pt_model_parse_body(r->body, r->len, &e);
    if (body == NULL)
        return pt_api__error(r, &e);
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "ip") && strcmp(key, "duration") && strcmp(key, "reason")) {
            enum MHD_Result bad = pt_api__errorf(r, 400, "invalid_argument", key,
                                                 "%.100s: unknown field", key);
            json_decref(body); /* <key> lives in <body> */
            return bad;
        }
    }
    json_t *jip = json_object_get(body, "ip");
    json_t *jdur = json_object_get(body, "duration");
    json_t *jreason = json_object_get(body, "reason");
    struct pt_cidr net;
    const char *why = NULL;
    enum MHD_Result res;
    if (!json_is_string(jip) ||
        pt_cidr_parse(json_string_value(jip), json_string_length(jip), &net, &why) != 0) {
        res = pt_api__errorf(r, 400, "invalid_argument", "ip",
                             "ip: %s (an IPv4/IPv6 address or CIDR prefix)",
                             json_is_string(jip) ? (why ? why : "invalid") : "required");
        json_decref(body);
        return res;
    }
    json_int_t dur = 0;
    if (jdur && !json_is_null(jdur)) {
        if (!json_is_integer(jdur) || json_integer_value(jdur) < 0 ||
            json_integer_value(jdur) > DURATION_MAX) {
            json_decref(body);
            return pt_api__errorf(r, 400, "invalid_argument", "duration",
                                  "duration: expected whole seconds 0..%lld (0 = until removed)",
                                  DURATION_MAX);
        }
        dur = json_integer_value(jdur);
    }
    const char *reason = "";
    if (jreason && !json_is_null(jreason)) {
        if (!json_is_string(jreason) ||
            !reason_ok(json_string_value(jreason), json_string_length(jreason))) {
            json_decref(body);
            return pt_api__errorf(r, 400, "invalid_argument", "reason",
                                  "reason: expected a string of at most %d characters "
                                  "without control characters",
                                  REASON_MAX);
        }
        reason = json_string_value(jreason);
    }
    if (pt_model_ban_allowed(&net, r->limited ? r->lim.max_prefix4 : 0,
                             r->limited ? r->lim.max_prefix6 : 0, &e) != 0) {
        json_decref(body);
        return pt_api__error(r, &e);
    }
    char ip[PT_ADDRSTR_MAX];
    pt_cidr_format(&net, ip, sizeof(ip));
    int64_t now = (int64_t)time(NULL);
    struct pt_store_ban b = {ip, reason, now, dur ? now + dur : 0, r->caller};
    bool created = false, applied = false;
    uint64_t version = 0;
    int rc = pt_store_begin(store);
    if (rc != 0)
        goto fail;
    char owner[64];
    int orc = pt_store_ban_owner(store, ip, owner, sizeof(owner));
    if (orc != 0 && orc != PT_ENOTFOUND) {
        rc = orc;
        goto fail;
    }
    bool mine = orc == 0 && strcmp(owner, r->caller) == 0;
    if (r->limited && orc == 0 && !mine) {
        pt_store_rollback(store);
        json_decref(body);
        return pt_api__errorf(r, 409, "conflict", "ip",
                              "%s is already banned by another token or the admin; "
                              "this token can neither replace nor lift that ban",
                              ip);
    }
    uint64_t live = 0;
    if (r->limited && !mine) {
        rc = pt_store_ban_count(store, r->caller, &live);
        /* Expired bans count until purged: purge before refusing. */
        unsigned purged = 0;
        if (rc == 0 && live >= r->lim.quota &&
            (rc = pt_store_ban_purge(store, now, &purged)) == 0 && purged)
            rc = pt_store_ban_count(store, r->caller, &live);
        if (rc != 0)
            goto fail;
        if (live >= r->lim.quota) {
            pt_store_rollback(store);
            json_decref(body);
            return pt_api__errorf(r, 429, "quota_exceeded", NULL,
                                  "this token holds %llu live bans, its quota is %u: "
                                  "lift some or ask for a token with a larger quota",
                                  (unsigned long long)live, r->lim.quota);
        }
    }
    rc = pt_store_ban_put(store, &b, &created);
    if (rc != 0)
        goto fail;
    struct pt_ban_change ch = {false, {net, b.expires, (char *)reason}};
    if (pt_api__finish_bans(r, &ch, 1, &version, &applied, &e) != 0) {
        json_decref(body);
        return pt_api__error(r, &e);
    }
    json_t *out = ban_json(&b);
    json_decref(body);
    json_object_set_new(out, "config_version", json_integer((json_int_t)version));
    json_object_set_new(out, "applied", json_boolean(applied));
    return pt_api__json(r, created ? 201 : 200, out);
fail:
    pt_store_rollback(store);
    json_decref(body);
    return pt_api__errorf(r, 500, "internal", NULL, "cannot write the store");
}

static enum MHD_Result do_delete(struct pt_req *r, const char *seg)
{
    struct pt_apierr e;
    struct pt_store *store = r->api->cfg.store;
    char raw[128], ip[PT_ADDRSTR_MAX];
    struct pt_cidr net;
    const char *why = NULL;
    int n = pt_api__unescape(seg, strlen(seg), raw, sizeof(raw));
    if (n < 0 || pt_cidr_parse(raw, (size_t)n, &net, &why) != 0)
        return pt_api__errorf(r, 400, "invalid_argument", "ip", "ip: %s",
                              why ? why : "invalid address or CIDR");
    pt_cidr_format(&net, ip, sizeof(ip));
    uint64_t version = 0;
    bool applied = false;
    char owner[64];
    int rc = pt_store_begin(store);
    if (rc == 0)
        rc = pt_store_ban_owner(store, ip, owner, sizeof(owner));
    /* A "bans" token is told the same for a ban it did not make as for no
     * ban at all: it has no business knowing about the others. */
    if (rc == 0 && r->limited && strcmp(owner, r->caller) != 0)
        rc = PT_ENOTFOUND;
    if (rc == 0)
        rc = pt_store_ban_delete(store, ip);
    if (rc != 0) {
        pt_store_rollback(store);
        if (rc == PT_ENOTFOUND)
            return pt_api__errorf(r, 404, "not_found", NULL, "%s is not banned%s", ip,
                                  r->limited ? " by this token" : "");
        return pt_api__errorf(r, 500, "internal", NULL, "cannot write the store");
    }
    struct pt_ban_change ch = {true, {net, 0, NULL}};
    if (pt_api__finish_bans(r, &ch, 1, &version, &applied, &e) != 0)
        return pt_api__error(r, &e);
    return pt_api__no_content(r, version, applied);
}

enum MHD_Result pt_api__bans(struct pt_req *r, const char *rest)
{
    const char *m = r->method;
    /* Expired bans are already ignored by the workers; the rows are only
     * housekeeping, dropped here now and then. */
    int64_t now = (int64_t)time(NULL);
    if (now - r->api->last_ban_purge >= 60) {
        unsigned n = 0;
        pt_store_ban_purge(r->api->cfg.store, now, &n);
        r->api->last_ban_purge = now;
    }
    if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
        if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
            json_t *arr = json_array();
            if (pt_store_ban_each(r->api->cfg.store, now, r->limited ? r->caller : NULL,
                                  list_cb, arr) != 0) {
                json_decref(arr);
                return pt_api__errorf(r, 500, "internal", NULL, "cannot read the store");
            }
            return pt_api__json(r, 200, json_pack("{s:o}", "bans", arr));
        }
        if (strcmp(m, "POST") == 0)
            return do_post(r);
        return pt_api__method_not_allowed(r, "GET, POST");
    }
    if (strcmp(m, "DELETE") == 0)
        return do_delete(r, rest + 1);
    return pt_api__method_not_allowed(r, "DELETE");
}
