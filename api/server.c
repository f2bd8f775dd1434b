#include "api/internal.h"

#include "common/embed.h"
#include "common/log.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <strings.h>
#include <unistd.h>

enum MHD_Result pt_api__text(struct pt_req *r, unsigned status, const char *type,
                             const void *data, size_t len, bool copy)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, (void *)(uintptr_t)data, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    if (type)
        MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result pt_api__json(struct pt_req *r, unsigned status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (s == NULL) {
        static const char fail[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode the answer\"}}\n";
        return pt_api__text(r, 500, "application/json", fail, sizeof(fail) - 1, false);
    }
    size_t n = strlen(s);
    s = pt_xrealloc(s, n + 2);
    s[n++] = '\n';
    s[n] = '\0';
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(n, s, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Error texts echo what the client sent; JSON needs valid UTF-8, so anything
 * but printable ASCII becomes '?' (a dropped response would be worse). */
static void ascii_only(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

enum MHD_Result pt_api__error(struct pt_req *r, const struct pt_apierr *e)
{
    struct pt_apierr c = *e;
    ascii_only(c.message);
    ascii_only(c.field);
    json_t *err = json_pack("{s:s, s:s}", "code", c.code, "message", c.message);
    if (c.field[0])
        json_object_set_new(err, "field", json_string(c.field));
    return pt_api__json(r, (unsigned)e->status, json_pack("{s:o}", "error", err));
}

enum MHD_Result pt_api__errorf(struct pt_req *r, int status, const char *code,
                               const char *field, const char *fmt, ...)
{
    struct pt_apierr e = {status, code, "", ""};
    va_list ap;
    snprintf(e.field, sizeof(e.field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    return pt_api__error(r, &e);
}

enum MHD_Result pt_api__method_not_allowed(struct pt_req *r, const char *allow)
{
    json_t *err = json_pack("{s:{s:s, s:s}}", "error", "code", "method_not_allowed",
                            "message", "method not allowed here");
    char *s = json_dumps(err, JSON_COMPACT);
    json_decref(err);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Allow", allow);
    enum MHD_Result rc = MHD_queue_response(r->conn, 405, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result pt_api__no_content(struct pt_req *r, uint64_t version, bool applied)
{
    char v[24];
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)version);
    MHD_add_response_header(resp, "X-Config-Version", v);
    MHD_add_response_header(resp, "X-Config-Applied", applied ? "true" : "false");
    enum MHD_Result rc = MHD_queue_response(r->conn, 204, resp);
    MHD_destroy_response(resp);
    return rc;
}

static int finish(struct pt_req *r, const struct pt_commit *c, uint64_t *version,
                  bool *applied, struct pt_apierr *e)
{
    struct pt_api *api = r->api;
    struct pt_commit timed = *c;
    timed.arrived_us = r->arrived_us;
    timed.locked_us = r->locked_us;
    if (api->cfg.hooks.commit(api->cfg.hooks.arg, &timed, version, applied) == 0)
        return 0;
    return pt_apierr_set(e, 500, "internal", NULL,
                         "could not commit the change (see the daemon's log)");
}

int pt_api__finish_delta(struct pt_req *r, struct pt_delta *d, bool whole, uint64_t *version,
                         bool *applied, struct pt_apierr *e)
{
    struct pt_commit c = {.kind = whole ? PT_COMMIT_WHOLE : PT_COMMIT_CONFIG, .delta = d};
    return finish(r, &c, version, applied, e);
}

int pt_api__finish_store(struct pt_req *r, struct pt_apierr *e)
{
    struct pt_commit c = {.kind = PT_COMMIT_STORE};
    uint64_t version;
    bool applied;
    return finish(r, &c, &version, &applied, e);
}

int pt_api__finish_bans(struct pt_req *r, const struct pt_ban_change *ch, size_t n,
                        uint64_t *version, bool *applied, struct pt_apierr *e)
{
    struct pt_commit c = {.kind = PT_COMMIT_BANS, .bans = ch, .n_bans = n};
    return finish(r, &c, version, applied, e);
}

int pt_api__unescape(const char *in, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (len - i < 3)
                return -1;
            int hi = pt_hexval(in[i + 1]), lo = pt_hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= size)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

/* libmicrohttpd would decode the path before we split it; keep it raw. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

/* Returns the scope of the request's bearer token ("admin", "bans",
 * "backend:NAME"; borrowed until the next store call) or NULL.
 * The admin token is compared in constant time on hashes, so neither its
 * content nor its length leaks; stored tokens are looked up by hash. */
static const char *token_scope(struct pt_api *api, struct pt_req *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    size_t len = strlen(h);
    while (len && h[len - 1] == ' ')
        len--;
    if (len == 0 || len > 256)
        return NULL;
    uint8_t got[32];
    SHA256((const unsigned char *)h, len, got);
    if (CRYPTO_memcmp(got, api->token_hash, sizeof(got)) == 0) {
        snprintf(r->caller, sizeof(r->caller), "admin");
        return "admin";
    }
    char hex[65];
    const char *scope = NULL;
    for (size_t i = 0; i < sizeof(got); i++)
        snprintf(hex + 2 * i, 3, "%02x", got[i]);
    if (pt_store_token_check(api->cfg.store, hex, (int64_t)time(NULL), &scope) == 0 &&
        pt_store_token_limits(api->cfg.store, hex, r->caller, sizeof(r->caller), &r->lim) == 0)
        return scope;
    return NULL;
}

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot == NULL)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    if (strcmp(dot, ".png") == 0)
        return "image/png";
    return "application/octet-stream";
}

static enum MHD_Result serve_web(struct pt_req *r, const char *url)
{
    char path[256];
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    if (strstr(url, "..") != NULL || strlen(url) > 200)
        return pt_api__errorf(r, 404, "not_found", NULL, "no such page");
    snprintf(path, sizeof(path), "web%s", url);
    const struct pt_embed_file *f = pt_embed_find(path);
    if (f == NULL)
        return pt_api__errorf(r, 404, "not_found", NULL, "no such page");
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        f->len, (void *)(uintptr_t)f->data, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", content_type(path));
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; script-src 'self'; style-src 'self'; "
                            "img-src 'self' data:; connect-src 'self'; "
                            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    enum MHD_Result rc = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* True when <url> is <prefix> or below it ("/api/v1/bans", "/api/v1/bans/x"). */
static bool under(const char *url, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(url, prefix, n) == 0 && (url[n] == '\0' || url[n] == '/');
}

/* The coarse part of authorization, by path. A "backend:NAME" token (a
 * YunoHost server onboarding its own domains) reaches the domains (whose
 * handlers then keep it to passthrough domains of NAME), reads backend NAME,
 * its snippet and the status; it never changes a backend, since a backend's
 * servers decide where portier connects, which would let one server point
 * its domains' traffic at any host portier can reach. */
static bool scope_allows(const char *scope, bool get, const char *url)
{
    if (strcmp(scope, "admin") == 0)
        return true;
    if (strcmp(scope, "bans") == 0)
        return under(url, "/api/v1/bans");
    if (strncmp(scope, "backend:", 8) != 0)
        return false;
    if (under(url, "/api/v1/domains") || strcmp(url, "/api/v1/batch") == 0)
        return true; /* the handlers keep it to its own domains */
    if (!get)
        return false;
    static const char be[] = "/api/v1/backends/";
    const char *name = scope + 8;
    size_t n = strlen(name);
    if (strncmp(url, be, sizeof(be) - 1) == 0 && strncmp(url + sizeof(be) - 1, name, n) == 0) {
        const char *tail = url + sizeof(be) - 1 + n;
        if (tail[0] == '\0' || strcmp(tail, "/snippet") == 0)
            return true;
    }
    return strcmp(url, "/api/v1/status") == 0;
}

static enum MHD_Result dispatch(struct pt_req *r, const char *url)
{
    struct pt_api *api = r->api;
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;

    if (strcmp(url, "/healthz") == 0) {
        if (!get)
            return pt_api__method_not_allowed(r, "GET");
        bool ok = api->cfg.hooks.healthy(api->cfg.hooks.arg);
        size_t serving = 0, total = 0;
        pt_api__count_serving(api, &serving, &total);
        return pt_api__json(r, ok ? 200 : 503,
                            json_pack("{s:b, s:I, s:I}", "ok", ok, "workers", (json_int_t)total,
                                      "serving", (json_int_t)serving));
    }
    bool is_api = strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0;
    bool is_metrics = strcmp(url, "/metrics") == 0;
    if (!is_api && !is_metrics) {
        if (!get)
            return pt_api__method_not_allowed(r, "GET");
        return serve_web(r, url);
    }
    const char *scope = token_scope(api, r);
    if (scope == NULL) {
        struct MHD_Response *resp;
        const char *msg = "{\"error\":{\"code\":\"unauthorized\",\"message\":"
                          "\"missing or wrong bearer token\"}}\n";
        resp = MHD_create_response_from_buffer(strlen(msg), (void *)(uintptr_t)msg,
                                               MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Content-Type", "application/json");
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"portier\"");
        enum MHD_Result rc = MHD_queue_response(r->conn, 401, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    if (!scope_allows(scope, get, url))
        return pt_api__errorf(r, 403, "forbidden", NULL,
                              "this token's scope (%s) does not allow %s %.100s", scope,
                              r->method, url);
    if (strncmp(scope, "backend:", 8) == 0)
        r->only_backend = scope + 8;
    r->limited = strcmp(scope, "bans") == 0;
    if (r->too_large)
        return pt_api__errorf(r, 413, "payload_too_large", NULL,
                              "request body over %zu bytes", r->max);
    if (is_metrics) {
        if (!get)
            return pt_api__method_not_allowed(r, "GET");
        return pt_api__metrics(r);
    }
    static const char v1[] = "/api/v1/";
    if (strncmp(url, v1, sizeof(v1) - 1) == 0) {
        const char *res = url + sizeof(v1) - 1;
        if (strncmp(res, "backends", 8) == 0 && (res[8] == '\0' || res[8] == '/'))
            return pt_api__backends(r, res + 8);
        if (strncmp(res, "domains", 7) == 0 && (res[7] == '\0' || res[7] == '/'))
            return pt_api__domains(r, res + 7);
        if (strcmp(res, "batch") == 0)
            return pt_api__batch(r);
        if (strncmp(res, "streams", 7) == 0 && (res[7] == '\0' || res[7] == '/'))
            return pt_api__streams(r, res + 7);
        if (strncmp(res, "bans", 4) == 0 && (res[4] == '\0' || res[4] == '/'))
            return pt_api__bans(r, res + 4);
        if (strncmp(res, "tokens", 6) == 0 && (res[6] == '\0' || res[6] == '/'))
            return pt_api__tokens(r, res + 6);
        if (strncmp(res, "certificates", 12) == 0 && (res[12] == '\0' || res[12] == '/'))
            return pt_api__certificates(r, res + 12);
        if (strcmp(res, "status") == 0) {
            if (!get)
                return pt_api__method_not_allowed(r, "GET");
            return pt_api__status(r);
        }
    }
    return pt_api__errorf(r, 404, "not_found", NULL, "no such endpoint: %.200s", url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct pt_req *r = *con_cls;
    if (r == NULL) {
        r = pt_xcalloc(1, sizeof(*r));
        r->api = cls;
        r->conn = conn;
        r->method = method;
        r->began_us = pt_mono_us();
        *con_cls = r;
        r->max = strcmp(url, "/api/v1/batch") == 0 ? PT_API_BATCH_BODY_MAX : PT_API_BODY_MAX;
        /* A declared length over the limit is refused before reading it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > r->max)
            r->too_large = true;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && r->len + *upload_size <= r->max) {
            if (r->cap < r->len + *upload_size + 1) {
                r->cap = (r->len + *upload_size + 1) * 2;
                if (r->cap > r->max + 1)
                    r->cap = r->max + 1;
                r->body = pt_xrealloc(r->body, r->cap);
            }
            memcpy(r->body + r->len, upload_data, *upload_size);
            r->len += *upload_size;
            r->body[r->len] = '\0';
        } else {
            r->too_large = true;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    /* One request at a time on the store; a write waiting for its group
     * commit (pt_publish_commit) releases the lock, so the next requests
     * (each connection has its thread) queue their writes behind it. */
    r->arrived_us = pt_mono_us();
    pthread_mutex_lock(r->api->cfg.lock);
    r->locked_us = pt_mono_us();
    enum MHD_Result res = dispatch(r, url);
    pthread_mutex_unlock(r->api->cfg.lock);
    /* After the commit trace's line of a lone write: the request's whole
     * time in the API (the body read, the answer made and queued). */
    if (r->api->trace && strcmp(method, "GET") != 0)
        pt_log(PT_LOG_INFO, "request trace: %s body_us %llu total_us %llu", method,
               (unsigned long long)(r->arrived_us - r->began_us),
               (unsigned long long)(pt_mono_us() - r->began_us));
    return res;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct pt_req *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

int pt_api_start(const struct pt_api_config *cfg, struct pt_api **out, char *err,
                 size_t errlen)
{
    struct pt_api *api = pt_xcalloc(1, sizeof(*api));
    api->cfg = *cfg;
    api->started = time(NULL);
    api->trace = pt_log_commit_trace();
    SHA256((const unsigned char *)cfg->admin_token, strlen(cfg->admin_token),
           api->token_hash);
    bool tls = cfg->tls_cert_pem != NULL && cfg->tls_key_pem != NULL;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errlen, "--api-tls-cert: this libmicrohttpd is built without TLS");
        free(api);
        return PT_EINVAL;
    }
    /* TLS 1.2 or later only: the priority string is GnuTLS's (Debian builds
     * libmicrohttpd on GnuTLS). Without TLS the two options are skipped by
     * ending the list early. */
    /* A thread per connection: a write blocks its thread until the workers
     * acked it, and concurrent writers must be able to queue meanwhile. */
    api->mhd = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ERROR_LOG |
            (tls ? MHD_USE_TLS : 0),
        0, NULL, NULL, on_request, api, MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, api, MHD_OPTION_UNESCAPE_CALLBACK,
        keep_escaped, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cfg->tls_cert_pem,
        MHD_OPTION_HTTPS_MEM_KEY, cfg->tls_key_pem, MHD_OPTION_HTTPS_PRIORITIES,
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_END);
    if (api->mhd == NULL) {
        snprintf(err, errlen, "cannot start the API server");
        free(api);
        return PT_EIO;
    }
    *out = api;
    return 0;
}

void pt_api_stop(struct pt_api *api)
{
    if (api == NULL)
        return;
    MHD_stop_daemon(api->mhd);
    free(api);
}
