#include "api/model.h"

#include "common/dname.h"
#include "common/delta.h"
#include "db/certs.h"

#include <stdarg.h>
#include <strings.h>

#define DEPTH_MAX 16

int pt_apierr_set(struct pt_apierr *e, int status, const char *code, const char *field,
                  const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->code = code;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(e, field, ...) pt_apierr_set((e), 400, "invalid_argument", (field), __VA_ARGS__)

static size_t depth(const json_t *j)
{
    size_t d = 0;
    if (json_is_object(j)) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            size_t x = depth(v);
            d = x > d ? x : d;
            if (d > DEPTH_MAX)
                break;
        }
        return d + 1;
    }
    if (json_is_array(j)) {
        size_t i;
        const json_t *v;
        json_array_foreach(j, i, v) {
            size_t x = depth(v);
            d = x > d ? x : d;
            if (d > DEPTH_MAX)
                break;
        }
        return d + 1;
    }
    return 0;
}

json_t *pt_model_parse_body(const char *body, size_t len, struct pt_apierr *e)
{
    json_error_t jerr;
    if (len == 0) {
        BAD(e, NULL, "request body: expected a JSON object");
        return NULL;
    }
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        BAD(e, NULL, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
            jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        BAD(e, NULL, "request body: expected a JSON object");
        return NULL;
    }
    if (depth(j) > DEPTH_MAX) {
        json_decref(j);
        BAD(e, NULL, "request body: nested too deeply");
        return NULL;
    }
    return j;
}

/* Refuses members not in <allowed>: a typo ("proxy_protcol") silently
 * ignored would leave the user with a config they did not ask for. */
static int check_members(const json_t *j, const char *const *allowed, size_t n,
                         struct pt_apierr *e)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        size_t i;
        for (i = 0; i < n; i++)
            if (strcmp(k, allowed[i]) == 0)
                break;
        if (i == n)
            return BAD(e, k, "%s: unknown field", k);
    }
    return 0;
}

static int get_bool(const json_t *j, const char *key, bool dflt, bool *out,
                    struct pt_apierr *e)
{
    const json_t *v = json_object_get(j, key);
    if (v == NULL || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return BAD(e, key, "%s: expected true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* Returns the string member <key>, NULL when absent or null; -1 via *bad. */
static const char *get_str(const json_t *j, const char *key, struct pt_apierr *e,
                           bool *bad)
{
    const json_t *v = json_object_get(j, key);
    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        BAD(e, key, "%s: expected a string", key);
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

bool pt_model_backend_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_')))
            return false;
    }
    return true;
}

static int get_servers(const json_t *j, const char *key, bool required,
                       struct pt_hostport **out, size_t *n, struct pt_apierr *e)
{
    const json_t *v = json_object_get(j, key);
    *out = NULL;
    *n = 0;
    if (v == NULL || json_is_null(v)) {
        if (required)
            return BAD(e, key, "%s: required (a list of host:port)", key);
        return 0;
    }
    if (!json_is_array(v))
        return BAD(e, key, "%s: expected a list of host:port strings", key);
    size_t len = json_array_size(v);
    if (required && len == 0)
        return BAD(e, key, "%s: at least one server is required", key);
    if (len > PT_SERVERS_MAX)
        return BAD(e, key, "%s: at most %d servers", key, PT_SERVERS_MAX);
    *out = pt_xcalloc(len, sizeof(**out));
    for (size_t i = 0; i < len; i++) {
        char field[48];
        const json_t *s = json_array_get(v, i);
        const char *why = NULL;
        snprintf(field, sizeof(field), "%s[%zu]", key, i);
        if (!json_is_string(s))
            return BAD(e, field, "%s: expected a host:port string", field);
        if (pt_hostport_parse(json_string_value(s), json_string_length(s), &(*out)[i],
                              &why) != 0)
            return BAD(e, field, "%s: %s", field, why ? why : "invalid host:port");
        for (size_t k = 0; k < i; k++)
            if (strcmp((*out)[k].host, (*out)[i].host) == 0 &&
                (*out)[k].port == (*out)[i].port)
                return BAD(e, field, "%s: duplicate of %s[%zu]", field, key, k);
        (*n)++;
    }
    return 0;
}

/* The required member <key>, one of two words: *out = 0 for <a>, 1 for <b>. */
static int get_choice(const json_t *j, const char *key, const char *a, const char *b,
                      int *out, struct pt_apierr *e)
{
    bool bad = false;
    const char *v = get_str(j, key, e, &bad);
    if (bad)
        return -1;
    if (v == NULL)
        return BAD(e, key, "%s: required (\"%s\" or \"%s\")", key, a, b);
    if (strcmp(v, a) != 0 && strcmp(v, b) != 0)
        return BAD(e, key, "%s: expected \"%s\" or \"%s\"", key, a, b);
    *out = strcmp(v, a) == 0 ? 0 : 1;
    return 0;
}

/* The required "backend" member of a route: a backend name, copied into *out. */
static int get_backend_ref(const json_t *j, char **out, struct pt_apierr *e)
{
    bool bad = false;
    const char *be = get_str(j, "backend", e, &bad);
    if (bad)
        return -1;
    if (be == NULL)
        return BAD(e, "backend", "backend: required (the name of a backend)");
    if (!pt_model_backend_name_ok(be))
        return BAD(e, "backend", "backend: '%.80s' is not a valid backend name", be);
    *out = pt_xstrdup(be);
    return 0;
}

/* For objects named like backends: <name> (from the URL) follows the rule,
 * <j> has only <allowed> members, and a "name" member equals <name>. */
static int check_named(const json_t *j, const char *name, const char *what,
                       const char *const *allowed, size_t n, struct pt_apierr *e)
{
    bool bad = false;
    if (!pt_model_backend_name_ok(name))
        return BAD(e, "name",
                   "name: '%.80s' is not a valid %s name ([a-z0-9][a-z0-9_-]{0,62})", name,
                   what);
    if (check_members(j, allowed, n, e) != 0)
        return -1;
    const char *jn = get_str(j, "name", e, &bad);
    if (bad)
        return -1;
    if (jn && strcmp(jn, name) != 0)
        return BAD(e, "name", "name: '%.80s' does not match the URL's '%s'", jn, name);
    return 0;
}

/* "health" is what GET adds (read-only): accepted and ignored, so a GET can
 * be PUT back as it is, like a domain's certificate_id. */
static const char *const backend_members[] = {"name",       "servers", "proxy_protocol",
                                              "http_servers", "tls",    "tls_verify",
                                              "health_check", "health"};

static const char *const check_members_allowed[] = {"type", "interval_s", "timeout_s",
                                                    "rise", "fall",       "path"};
static const char *const check_kinds[] = {"none", "tcp", "tls", "http"};

/* An integer member <key> of <j> in [lo, hi], <dflt> when absent. */
static int get_range(const json_t *j, const char *key, long long lo, long long hi,
                     long long dflt, long long *out, struct pt_apierr *e)
{
    const json_t *v = json_object_get(j, key);
    *out = dflt;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return BAD(e, key, "health_check.%s: expected an integer from %lld to %lld", key, lo,
                   hi);
    *out = json_integer_value(v);
    return 0;
}

/* "health_check": null or absent (passive only), or {"type", "interval_s",
 * "timeout_s", "rise", "fall", "path"}. */
static int get_check(const json_t *j, struct pt_check *out, struct pt_apierr *e)
{
    memset(out, 0, sizeof(*out));
    const json_t *c = json_object_get(j, "health_check");
    if (c == NULL || json_is_null(c))
        return 0;
    if (!json_is_object(c))
        return BAD(e, "health_check", "health_check: expected an object or null");
    if (check_members(c, check_members_allowed, PT_ARRAY_LEN(check_members_allowed), e) != 0)
        return -1;
    const char *type = json_string_value(json_object_get(c, "type"));
    size_t k;
    for (k = 0; type && k < PT_ARRAY_LEN(check_kinds); k++)
        if (strcmp(type, check_kinds[k]) == 0)
            break;
    if (type == NULL || k == PT_ARRAY_LEN(check_kinds))
        return BAD(e, "type", "health_check.type: expected \"none\", \"tcp\", \"tls\" or \"http\"");
    out->kind = (enum pt_check_kind)k;
    long long interval, timeout, rise, fall;
    if (get_range(c, "interval_s", 1, 3600, 10, &interval, e) != 0 ||
        get_range(c, "timeout_s", 1, 60, 2, &timeout, e) != 0 ||
        get_range(c, "rise", 1, 10, 2, &rise, e) != 0 ||
        get_range(c, "fall", 1, 10, 3, &fall, e) != 0)
        return -1;
    out->interval_ms = (uint32_t)interval * 1000;
    out->timeout_ms = (uint32_t)timeout * 1000;
    out->rise = (uint8_t)rise;
    out->fall = (uint8_t)fall;
    const json_t *p = json_object_get(c, "path");
    const char *path = p ? json_string_value(p) : "/";
    if (path == NULL)
        return BAD(e, "path", "health_check.path: expected a string");
    if (p && out->kind != PT_CHECK_HTTP)
        return BAD(e, "path", "health_check.path: only for \"type\": \"http\"");
    size_t n = strlen(path);
    bool ok = n >= 1 && n <= PT_CHECK_PATH_MAX && path[0] == '/';
    for (size_t i = 0; ok && i < n; i++)
        ok = path[i] > 0x20 && path[i] < 0x7f;
    if (!ok)
        return BAD(e, "path",
                   "health_check.path: expected '/' then visible ASCII characters, at most "
                   "%d bytes",
                   PT_CHECK_PATH_MAX);
    if (out->kind == PT_CHECK_HTTP)
        memcpy(out->path, path, n + 1);
    if (out->kind == PT_CHECK_NONE)
        memset(out, 0, sizeof(*out));
    return 0;
}

int pt_model_backend_from_json(const json_t *j, const char *name, struct pt_backend *out,
                               struct pt_apierr *e)
{
    bool bad = false;
    memset(out, 0, sizeof(*out));
    if (check_named(j, name, "backend", backend_members, PT_ARRAY_LEN(backend_members), e) != 0)
        return -1;
    out->name = pt_xstrdup(name);
    if (get_servers(j, "servers", true, &out->servers, &out->n_servers, e) != 0 ||
        get_servers(j, "http_servers", false, &out->http_servers, &out->n_http_servers,
                    e) != 0)
        return -1;
    const char *pp = get_str(j, "proxy_protocol", e, &bad);
    if (bad)
        return -1;
    if (pp == NULL || strcmp(pp, "none") == 0)
        out->proxy_protocol = PT_PP_NONE;
    else if (strcmp(pp, "v1") == 0)
        out->proxy_protocol = PT_PP_V1;
    else if (strcmp(pp, "v2") == 0)
        out->proxy_protocol = PT_PP_V2;
    else
        return BAD(e, "proxy_protocol", "proxy_protocol: expected \"none\", \"v1\" or \"v2\"");
    if (get_bool(j, "tls", false, &out->tls, e) != 0 ||
        get_bool(j, "tls_verify", true, &out->tls_verify, e) != 0 ||
        get_check(j, &out->check, e) != 0)
        return -1;
    return 0;
}

static json_t *servers_json(const struct pt_hostport *s, size_t n)
{
    json_t *a = json_array();
    char buf[PT_HOST_MAX + 16];
    for (size_t i = 0; i < n; i++) {
        pt_hostport_format(&s[i], buf, sizeof(buf));
        json_array_append_new(a, json_string(buf));
    }
    return a;
}

static json_t *check_json(const struct pt_check *c)
{
    if (c->kind == PT_CHECK_NONE)
        return json_null();
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i}", "type", check_kinds[c->kind],
                          "interval_s", (int)(c->interval_ms / 1000), "timeout_s",
                          (int)(c->timeout_ms / 1000), "rise", (int)c->rise, "fall",
                          (int)c->fall);
    if (c->kind == PT_CHECK_HTTP)
        json_object_set_new(j, "path", json_string(c->path));
    return j;
}

json_t *pt_model_backend_to_json(const struct pt_backend *b)
{
    return json_pack("{s:s, s:o, s:s, s:o, s:b, s:b, s:o}", "name", b->name, "servers",
                     servers_json(b->servers, b->n_servers), "proxy_protocol",
                     pt_pp_name(b->proxy_protocol), "http_servers",
                     servers_json(b->http_servers, b->n_http_servers), "tls", b->tls,
                     "tls_verify", b->tls_verify, "health_check", check_json(&b->check));
}

static bool header_name_ok(const char *s)
{
    /* RFC 9110 token characters. */
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (*s == '\0' || strlen(s) > 128)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr(extra, c))))
            return false;
    }
    return true;
}

static bool header_value_ok(const char *s, size_t len)
{
    if (len > 4096)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Headers portier itself owns on the way back: letting a route set them would
 * break framing or hide what the proxy does. */
static bool header_reserved(const char *s)
{
    static const char *const reserved[] = {"content-length", "transfer-encoding",
                                           "connection", "keep-alive", "upgrade",
                                           "trailer", "te"};
    for (size_t i = 0; i < PT_ARRAY_LEN(reserved); i++)
        if (strcasecmp(s, reserved[i]) == 0)
            return true;
    return false;
}

static const char *const domain_members[] = {"name", "mode", "backend", "certificate",
                                             "redirect_http", "response_headers", "hsts", "http2",
                                             "certificate_id", "certificate_status"};

int pt_model_domain_from_json(const json_t *j, const char *name, struct pt_domain *out,
                              struct pt_apierr *e)
{
    bool bad = false;
    char norm[PT_DNAME_MAX + 1];
    const char *why = NULL;
    memset(out, 0, sizeof(*out));
    if (check_members(j, domain_members, PT_ARRAY_LEN(domain_members), e) != 0)
        return -1;
    const char *dn = get_str(j, "name", e, &bad);
    if (bad)
        return -1;
    if (dn) {
        if (pt_dname_normalize(dn, strlen(dn), norm, PT_DNAME_ALLOW_WILDCARD, &why) < 0)
            return BAD(e, "name", "name: %s", why ? why : "invalid domain name");
        if (strcmp(norm, name) != 0)
            return BAD(e, "name", "name: '%.253s' does not match the URL's '%s'", dn, name);
    }
    out->name = pt_xstrdup(name);

    int mode;
    if (get_choice(j, "mode", "passthrough", "offload", &mode, e) != 0)
        return -1;
    out->mode = mode ? PT_MODE_OFFLOAD : PT_MODE_PASSTHROUGH;
    if (get_backend_ref(j, &out->backend, e) != 0)
        return -1;

    const char *cert = get_str(j, "certificate", e, &bad);
    if (bad)
        return -1;
    if (cert == NULL || strcmp(cert, "acme") == 0)
        out->cert_manual = false;
    else if (strcmp(cert, "manual") == 0)
        out->cert_manual = true;
    else
        return BAD(e, "certificate", "certificate: expected \"acme\" or \"manual\"");

    if (get_bool(j, "redirect_http", true, &out->redirect_http, e) != 0 ||
        get_bool(j, "hsts", false, &out->hsts, e) != 0 ||
        get_bool(j, "http2", true, &out->http2, e) != 0)
        return -1;

    const json_t *rh = json_object_get(j, "response_headers");
    if (rh && !json_is_null(rh)) {
        if (!json_is_object(rh))
            return BAD(e, "response_headers",
                       "response_headers: expected an object of header: value");
        if (json_object_size(rh) > PT_HEADERS_MAX)
            return BAD(e, "response_headers", "response_headers: at most %d headers",
                       PT_HEADERS_MAX);
        out->headers = pt_xcalloc(json_object_size(rh), sizeof(*out->headers));
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)rh, k, v) {
            char field[200];
            snprintf(field, sizeof(field), "response_headers.%.128s", k);
            if (!header_name_ok(k))
                return BAD(e, field, "%s: not a valid header name", field);
            if (header_reserved(k))
                return BAD(e, field, "%s: set by portier itself", field);
            if (!json_is_string(v) ||
                !header_value_ok(json_string_value(v), json_string_length(v)))
                return BAD(e, field,
                           "%s: expected a string without control characters (<= 4096 bytes)",
                           field);
            for (size_t i = 0; i < out->n_headers; i++)
                if (strcasecmp(out->headers[i].name, k) == 0)
                    return BAD(e, field, "%s: given twice", field);
            out->headers[out->n_headers].name = pt_xstrdup(k);
            out->headers[out->n_headers].value = pt_xstrdup(json_string_value(v));
            out->n_headers++;
        }
    }
    return 0;
}

json_t *pt_model_domain_to_json(const struct pt_domain *d)
{
    json_t *h = json_object();
    for (size_t i = 0; i < d->n_headers; i++)
        json_object_set_new(h, d->headers[i].name, json_string(d->headers[i].value));
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:o, s:b, s:b}", "name", d->name, "mode",
                     pt_mode_name(d->mode), "backend", d->backend, "certificate",
                     d->cert_manual ? "manual" : "acme", "redirect_http", d->redirect_http,
                     "response_headers", h, "hsts", d->hsts, "http2", d->http2);
}

int pt_model_ban_allowed(const struct pt_cidr *net, unsigned max4, unsigned max6,
                         struct pt_apierr *e)
{
    bool v4 = net->family == AF_INET;
    if (net->bits == 0)
        return BAD(e, "ip",
                   "ip: %s bans every %s client and would take the whole proxy down; "
                   "refused for every token",
                   v4 ? "0.0.0.0/0" : "::/0", v4 ? "IPv4" : "IPv6");
    unsigned max = v4 ? max4 : max6;
    if (max && net->bits < max)
        return pt_apierr_set(e, 403, "forbidden", "ip",
                             "ip: this token may ban %s prefixes of /%u or narrower, not /%u "
                             "(create it with a wider \"max_prefix\")",
                             v4 ? "IPv4" : "IPv6", max, (unsigned)net->bits);
    return 0;
}

static const char *const stream_members[] = {"name",    "listen",       "mode",
                                             "names",   "alpn",         "backend",
                                             "idle_timeout", "max_connections"};

/* An unsigned integer member in [0, max]; absent or null gives 0. */
static int get_uint(const json_t *j, const char *key, uint32_t max, uint32_t *out,
                    struct pt_apierr *e)
{
    const json_t *v = json_object_get(j, key);
    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)max)
        return BAD(e, key, "%s: expected an integer from 0 to %u", key, max);
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

/* A list of at most <max> strings, each checked by <ok> (which may rewrite
 * it into <norm>, PT_DNAME_MAX + 1 bytes) and unique. */
static int get_strs(const json_t *j, const char *key, size_t max,
                    bool (*ok)(const char *in, char *norm, const char **why),
                    char ***out, size_t *n, struct pt_apierr *e)
{
    const json_t *v = json_object_get(j, key);
    *out = NULL;
    *n = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return BAD(e, key, "%s: expected a list of strings", key);
    size_t len = json_array_size(v);
    if (len > max)
        return BAD(e, key, "%s: at most %zu entries", key, max);
    *out = pt_xcalloc(len ? len : 1, sizeof(**out));
    for (size_t i = 0; i < len; i++) {
        char field[48], norm[PT_DNAME_MAX + 1];
        const char *why = NULL;
        const json_t *s = json_array_get(v, i);
        snprintf(field, sizeof(field), "%s[%zu]", key, i);
        if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
            return BAD(e, field, "%s: expected a string", field);
        if (!ok(json_string_value(s), norm, &why))
            return BAD(e, field, "%s: %s", field, why ? why : "invalid");
        for (size_t k = 0; k < i; k++)
            if (strcmp((*out)[k], norm) == 0)
                return BAD(e, field, "%s: duplicate of %s[%zu]", field, key, k);
        (*out)[(*n)++] = pt_xstrdup(norm);
    }
    return 0;
}

static bool stream_name_ok(const char *in, char *norm, const char **why)
{
    return pt_dname_normalize(in, strlen(in), norm, PT_DNAME_ALLOW_WILDCARD, why) >= 0;
}

/* ALPN protocol ids as registered (IANA): printable ASCII, 1 to 64 bytes. */
static bool alpn_ok(const char *in, char *norm, const char **why)
{
    size_t n = strlen(in);
    *why = "expected 1 to 64 printable ASCII characters (e.g. \"xmpp-client\")";
    if (n == 0 || n > PT_STREAM_ALPN_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (in[i] <= 0x20 || in[i] >= 0x7f)
            return false;
    memcpy(norm, in, n + 1);
    return true;
}

static int get_listen(const json_t *j, struct pt_stream *out, struct pt_apierr *e)
{
    if (get_servers(j, "listen", false, &out->listen, &out->n_listen, e) != 0)
        return -1;
    for (size_t i = 0; i < out->n_listen; i++)
        if (out->listen[i].salen == 0) {
            char field[48];
            snprintf(field, sizeof(field), "listen[%zu]", i);
            return BAD(e, field, "%s: expected an IP address and port (0.0.0.0:993, "
                                 "[::]:993), not a host name",
                       field);
        }
    return 0;
}

int pt_model_stream_from_json(const json_t *j, const char *name, struct pt_stream *out,
                              struct pt_apierr *e)
{
    memset(out, 0, sizeof(*out));
    if (check_named(j, name, "stream", stream_members, PT_ARRAY_LEN(stream_members), e) != 0)
        return -1;
    out->name = pt_xstrdup(name);
    int mode;
    if (get_choice(j, "mode", "tcp", "tls", &mode, e) != 0)
        return -1;
    out->mode = mode ? PT_STREAM_TLS : PT_STREAM_TCP;
    if (get_listen(j, out, e) != 0 ||
        get_strs(j, "names", PT_STREAM_NAMES_MAX, stream_name_ok, &out->names,
                 &out->n_names, e) != 0 ||
        get_strs(j, "alpn", PT_STREAM_ALPN_MAX, alpn_ok, &out->alpn, &out->n_alpn, e) != 0)
        return -1;
    if (get_backend_ref(j, &out->backend, e) != 0)
        return -1;
    if (get_uint(j, "idle_timeout", 7 * 86400, &out->idle_timeout_s, e) != 0 ||
        get_uint(j, "max_connections", 1000000, &out->max_connections, e) != 0)
        return -1;
    if (out->mode == PT_STREAM_TCP) {
        if (out->n_names || out->n_alpn)
            return BAD(e, out->n_names ? "names" : "alpn",
                       "%s: only for \"tls\" streams (a tcp stream reads no server name)",
                       out->n_names ? "names" : "alpn");
        if (out->n_listen == 0)
            return BAD(e, "listen", "listen: required for a tcp stream");
        return 0;
    }
    if (out->n_listen && out->n_alpn)
        return BAD(e, "alpn",
                   "alpn: only for a stream without \"listen\" (it then applies on the "
                   "--https listeners)");
    if (out->n_listen == 0 && out->n_alpn == 0)
        return BAD(e, "listen",
                   "listen: required, unless \"alpn\" is given (the stream then shares "
                   "the --https listeners)");
    if (out->n_names == 0) {
        out->names = pt_xcalloc(1, sizeof(*out->names));
        out->names[out->n_names++] = pt_xstrdup("*");
    }
    return 0;
}

static json_t *strs_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *pt_model_stream_to_json(const struct pt_stream *st)
{
    json_t *j = json_pack("{s:s, s:o, s:s, s:s, s:I, s:I}", "name", st->name, "listen",
                          servers_json(st->listen, st->n_listen), "mode",
                          pt_stream_mode_name(st->mode), "backend", st->backend,
                          "idle_timeout", (json_int_t)st->idle_timeout_s, "max_connections",
                          (json_int_t)st->max_connections);
    if (st->mode == PT_STREAM_TLS) {
        json_object_set_new(j, "names", strs_json(st->names, st->n_names));
        json_object_set_new(j, "alpn", strs_json(st->alpn, st->n_alpn));
    }
    return j;
}

bool pt_model_cert_served(const struct pt_store_cert *sc, int64_t now, struct pt_cert *out)
{
    memset(out, 0, sizeof(*out));
    if (sc->cert_pem == NULL || sc->key_pem == NULL || sc->status == NULL ||
        (strcmp(sc->status, "valid") != 0 && strcmp(sc->status, "renewing") != 0) ||
        (sc->not_after && sc->not_after <= now))
        return false;
    json_t *names = json_loads(sc->domains_json ? sc->domains_json : "", 0, NULL);
    if (!json_is_array(names)) {
        json_decref(names);
        return false;
    }
    out->id = pt_xstrdup(sc->id);
    out->cert_pem = pt_xstrdup(sc->cert_pem);
    out->key_pem = pt_xstrdup(sc->key_pem);
    out->not_after = sc->not_after;
    out->names = pt_xcalloc(json_array_size(names) + 1, sizeof(*out->names));
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        char norm[PT_DNAME_MAX + 1];
        const char *n = json_string_value(v);
        if (n && pt_dname_normalize(n, strlen(n), norm, PT_DNAME_ALLOW_WILDCARD, NULL) > 0)
            out->names[out->n_names++] = pt_xstrdup(norm);
    }
    json_decref(names);
    return true;
}

void pt_model_cert_delta(struct pt_delta *d, const char *id, const struct pt_store_cert *sc,
                         int64_t now)
{
    struct pt_cert ct;
    if (sc && pt_model_cert_served(sc, now, &ct))
        pt_delta_put_cert(d, &ct);
    else
        pt_delta_remove(d, PT_DELTA_CERT, id);
}
