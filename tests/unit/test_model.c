#include <criterion/criterion.h>

#include "api/model.h"
#include "tests/unit/guard.h"

/* ---- helpers ------------------------------------------------------------- */

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert_not_null(j, "test JSON does not parse: %s: %s", text, jerr.text);
    return j;
}

static int backend(const char *text, const char *name, struct pt_backend *b,
                   struct pt_apierr *e)
{
    json_t *j = load(text);
    memset(e, 0, sizeof(*e));
    int rc = pt_model_backend_from_json(j, name, b, e);
    json_decref(j);
    return rc;
}

static int domain(const char *text, const char *name, struct pt_domain *d,
                  struct pt_apierr *e)
{
    json_t *j = load(text);
    memset(e, 0, sizeof(*e));
    int rc = pt_model_domain_from_json(j, name, d, e);
    json_decref(j);
    return rc;
}

/* The error shape of API.md: 400 invalid_argument, "field" as given, and a
 * message that starts with "<field>: ". */
static void expect_error(int rc, const struct pt_apierr *e, const char *field,
                         const char *msg_part, const char *input)
{
    cr_expect_eq(rc, -1, "accepted: %s", input);
    if (rc != -1)
        return;
    cr_expect_eq(e->status, 400, "%s: status %d", input, e->status);
    cr_expect_str_eq(e->code ? e->code : "(null)", "invalid_argument", "%s", input);
    cr_expect_str_eq(e->field, field, "%s: field '%s' (message '%s')", input, e->field,
                     e->message);
    size_t fl = strlen(field);
    cr_expect(strncmp(e->message, field, fl) == 0 && strncmp(e->message + fl, ": ", 2) == 0,
              "%s: message '%s' does not start with '%s: '", input, e->message, field);
    if (msg_part)
        cr_expect_not_null(strstr(e->message, msg_part), "%s: message '%s' lacks '%s'",
                           input, e->message, msg_part);
}

static void backend_bad(const char *text, const char *name, const char *field,
                        const char *msg_part)
{
    struct pt_backend b;
    struct pt_apierr e;
    int rc = backend(text, name, &b, &e);
    expect_error(rc, &e, field, msg_part, text);
    pt_backend_clear(&b);
}

static void domain_bad(const char *text, const char *name, const char *field,
                       const char *msg_part)
{
    struct pt_domain d;
    struct pt_apierr e;
    int rc = domain(text, name, &d, &e);
    expect_error(rc, &e, field, msg_part, text);
    pt_domain_clear(&d);
}

static void backend_ok(const char *text, const char *name)
{
    struct pt_backend b;
    struct pt_apierr e;
    int rc = backend(text, name, &b, &e);
    cr_expect_eq(rc, 0, "%s refused: field '%s': %s", text, e.field, e.message);
    pt_backend_clear(&b);
}

static void domain_ok(const char *text, const char *name)
{
    struct pt_domain d;
    struct pt_apierr e;
    int rc = domain(text, name, &d, &e);
    cr_expect_eq(rc, 0, "%s refused: field '%s': %s", text, e.field, e.message);
    pt_domain_clear(&d);
}

static void server_str(const struct pt_hostport *hp, char *buf, size_t n)
{
    pt_hostport_format(hp, buf, n);
}

/* ---- backends ------------------------------------------------------------ */

Test(model, backend_full_example)
{
    struct pt_backend b;
    struct pt_apierr e;
    int rc = backend("{\"name\": \"yunohost1\", \"servers\": [\"192.168.99.11:443\"],"
                     " \"proxy_protocol\": \"v2\", \"http_servers\": [\"192.168.99.11:80\"],"
                     " \"tls\": false, \"tls_verify\": true}",
                     "yunohost1", &b, &e);
    cr_assert_eq(rc, 0, "%s", e.message);
    cr_expect_str_eq(b.name, "yunohost1");
    cr_assert_eq(b.n_servers, 1);
    cr_expect_eq(b.servers[0].kind, PT_HOST_IPV4);
    cr_expect_str_eq(b.servers[0].host, "192.168.99.11");
    cr_expect_eq(b.servers[0].port, 443);
    cr_assert_eq(b.n_http_servers, 1);
    cr_expect_eq(b.http_servers[0].port, 80);
    cr_expect_eq(b.proxy_protocol, PT_PP_V2);
    cr_expect_not(b.tls);
    cr_expect(b.tls_verify);
    pt_backend_clear(&b);
}

Test(model, backend_defaults)
{
    struct pt_backend b;
    struct pt_apierr e;
    int rc = backend("{\"servers\": [\"app.LAN:8080\", \"[2001:DB8::1]:443\"]}", "b", &b, &e);
    cr_assert_eq(rc, 0, "%s", e.message);
    cr_expect_str_eq(b.name, "b"); /* from the URL */
    cr_assert_eq(b.n_servers, 2);
    cr_expect_eq(b.servers[0].kind, PT_HOST_DNS);
    cr_expect_str_eq(b.servers[0].host, "app.lan");
    cr_expect_eq(b.servers[1].kind, PT_HOST_IPV6);
    cr_expect_str_eq(b.servers[1].host, "2001:db8::1");
    cr_expect_eq(b.n_http_servers, 0);
    cr_expect_eq(b.proxy_protocol, PT_PP_NONE);
    cr_expect_not(b.tls);
    cr_expect(b.tls_verify, "tls_verify defaults to true");
    pt_backend_clear(&b);

    /* null means "default" like an absent member. */
    rc = backend("{\"servers\": [\"a:1\"], \"proxy_protocol\": null, \"tls\": null,"
                 " \"tls_verify\": null, \"http_servers\": null, \"name\": null}",
                 "b", &b, &e);
    cr_assert_eq(rc, 0, "%s", e.message);
    cr_expect_eq(b.proxy_protocol, PT_PP_NONE);
    cr_expect(b.tls_verify);
    pt_backend_clear(&b);
}

Test(model, backend_proxy_protocol_values)
{
    static const struct {
        const char *v;
        enum pt_pp_version want;
    } ok[] = {{"none", PT_PP_NONE}, {"v1", PT_PP_V1}, {"v2", PT_PP_V2}};
    for (size_t i = 0; i < PT_ARRAY_LEN(ok); i++) {
        char text[128];
        struct pt_backend b;
        struct pt_apierr e;
        snprintf(text, sizeof(text), "{\"servers\":[\"a:1\"],\"proxy_protocol\":\"%s\"}",
                 ok[i].v);
        cr_assert_eq(backend(text, "b", &b, &e), 0, "%s", ok[i].v);
        cr_expect_eq(b.proxy_protocol, ok[i].want);
        pt_backend_clear(&b);
    }
    static const char *const bad[] = {"\"V2\"", "\"v3\"", "\"\"", "\"2\"", "2", "true",
                                      "[\"v2\"]", "\"v2 \"", "\"none\\u0020\""};
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
        char text[128];
        snprintf(text, sizeof(text), "{\"servers\":[\"a:1\"],\"proxy_protocol\":%s}", bad[i]);
        backend_bad(text, "b", "proxy_protocol", NULL);
    }
}

Test(model, backend_names)
{
    static const char *const ok[] = {
        "a", "0", "yunohost1", "web_2", "a-b", "a_", "a-",
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz01234567890", /* 63 */
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(ok); i++) {
        cr_expect(pt_model_backend_name_ok(ok[i]), "'%s'", ok[i]);
        backend_ok("{\"servers\":[\"a:1\"]}", ok[i]);
    }
    static const char *const bad[] = {
        "", "-a", "_a", "A", "aB", "a.b", "a b", "a/b", "a:b", "\xc3\xa9", "a\t",
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz012345678901", /* 64 */
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
        cr_expect_not(pt_model_backend_name_ok(bad[i]), "'%s'", bad[i]);
        backend_bad("{\"servers\":[\"a:1\"]}", bad[i], "name", NULL);
    }
}

Test(model, backend_name_member_must_match)
{
    backend_ok("{\"name\":\"b1\",\"servers\":[\"a:1\"]}", "b1");
    backend_bad("{\"name\":\"b2\",\"servers\":[\"a:1\"]}", "b1", "name", "b2");
    backend_bad("{\"name\":\"B1\",\"servers\":[\"a:1\"]}", "b1", "name", NULL);
    backend_bad("{\"name\":\"\",\"servers\":[\"a:1\"]}", "b1", "name", NULL);
    backend_bad("{\"name\":1,\"servers\":[\"a:1\"]}", "b1", "name", NULL);
    backend_bad("{\"name\":[\"b1\"],\"servers\":[\"a:1\"]}", "b1", "name", NULL);
}

Test(model, backend_servers_count)
{
    backend_bad("{}", "b", "servers", NULL);
    backend_bad("{\"servers\":null}", "b", "servers", NULL);
    backend_bad("{\"servers\":[]}", "b", "servers", NULL);
    backend_bad("{\"servers\":\"a:1\"}", "b", "servers", NULL);
    backend_bad("{\"servers\":{\"a\":1}}", "b", "servers", NULL);

    char text[1024];
    size_t n = (size_t)snprintf(text, sizeof(text), "{\"servers\":[");
    for (int i = 1; i <= 16; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"10.0.0.%d:443\"",
                              i > 1 ? "," : "", i);
    snprintf(text + n, sizeof(text) - n, "]}");
    backend_ok(text, "b"); /* 16 is the maximum */
    snprintf(text + n, sizeof(text) - n, ",\"10.0.0.17:443\"]}");
    backend_bad(text, "b", "servers", "16");
}

struct srv_case {
    const char *server;
    const char *why; /* NULL: valid */
};

static const struct srv_case srv_cases[] = {
    {"192.168.99.11:443", NULL},
    {"[2001:db8::1]:443", NULL},
    {"[::1]:1", NULL},
    {"app.lan:8080", NULL},
    {"localhost:65535", NULL},
    {"xn--bcher-kva.example:443", NULL},
    {"a:99999", "port out of range"},
    {"a:0", "port out of range"},
    {"a:65536", "port out of range"},
    {"a:", "missing port"},
    {"a", "missing port"},
    {":443", "missing host"},
    {"a:+1", "invalid port"},
    {"a:0443", "invalid port"},
    {"a:44x", "invalid port"},
    {"2001:db8::1:443", "bracket"},
    {"[2001:db8::1]", "missing port"},
    {"[2001:db8::zz]:443", "invalid IPv6"},
    {"[192.0.2.1]:443", "invalid IPv6"},
    {"256.1.1.1:443", "invalid IPv4"},
    {"010.0.0.1:443", "invalid IPv4"},
    {"1.2.3:443", "invalid IPv4"},
    {"a_b.lan:443", "invalid host name"},
    {"a b:443", "invalid host name"},
    {"-a.lan:443", "invalid host name"},
    {"", "missing"},
};

Test(model, backend_server_syntax)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(srv_cases); i++) {
        char text[256];
        const struct srv_case *c = &srv_cases[i];
        /* Second position, so the index in the path is checked too. */
        snprintf(text, sizeof(text), "{\"servers\":[\"10.0.0.1:443\",\"%s\"]}", c->server);
        if (c->why == NULL)
            backend_ok(text, "b");
        else
            backend_bad(text, "b", "servers[1]", c->why);
        snprintf(text, sizeof(text), "{\"servers\":[\"10.0.0.1:443\"],\"http_servers\":[\"%s\"]}",
                 c->server);
        if (c->why == NULL)
            backend_ok(text, "b");
        else
            backend_bad(text, "b", "http_servers[0]", c->why);
    }
}

Test(model, backend_exact_message)
{
    struct pt_backend b;
    struct pt_apierr e;
    int rc = backend("{\"servers\":[\"192.0.2.1:443\",\"192.0.2.2:99999\"]}", "b", &b, &e);
    cr_assert_eq(rc, -1);
    cr_expect_str_eq(e.field, "servers[1]");
    cr_expect_str_eq(e.message, "servers[1]: port out of range");
    pt_backend_clear(&b);
}

Test(model, backend_server_types_and_duplicates)
{
    backend_bad("{\"servers\":[443]}", "b", "servers[0]", NULL);
    backend_bad("{\"servers\":[\"a:1\", null]}", "b", "servers[1]", NULL);
    backend_bad("{\"servers\":[[\"a:1\"]]}", "b", "servers[0]", NULL);
    backend_bad("{\"servers\":[\"a:1\",\"b:1\",\"A:1\"]}", "b", "servers[2]", "servers[0]");
    backend_bad("{\"servers\":[\"[2001:db8::1]:443\",\"[2001:DB8:0::1]:443\"]}", "b",
                "servers[1]", NULL);
    backend_ok("{\"servers\":[\"a:1\",\"a:2\"]}", "b");
    backend_bad("{\"servers\":[\"a:1\"],\"http_servers\":\"a:80\"}", "b", "http_servers",
                NULL);
    backend_bad("{\"servers\":[\"a:1\"],\"http_servers\":[\"a:80\",\"a:80\"]}", "b",
                "http_servers[1]", NULL);
    backend_ok("{\"servers\":[\"a:1\"],\"http_servers\":[]}", "b");

    char text[1024];
    size_t n = (size_t)snprintf(text, sizeof(text), "{\"servers\":[\"a:1\"],\"http_servers\":[");
    for (int i = 1; i <= 17; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"10.0.0.%d:80\"",
                              i > 1 ? "," : "", i);
    snprintf(text + n, sizeof(text) - n, "]}");
    backend_bad(text, "b", "http_servers", NULL);
}

Test(model, backend_booleans)
{
    static const char *const bad[] = {"\"true\"", "1", "0", "\"yes\"", "[]", "{}"};
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
        char text[128];
        snprintf(text, sizeof(text), "{\"servers\":[\"a:1\"],\"tls\":%s}", bad[i]);
        backend_bad(text, "b", "tls", NULL);
        snprintf(text, sizeof(text), "{\"servers\":[\"a:1\"],\"tls_verify\":%s}", bad[i]);
        backend_bad(text, "b", "tls_verify", NULL);
    }
    struct pt_backend b;
    struct pt_apierr e;
    cr_assert_eq(backend("{\"servers\":[\"a:1\"],\"tls\":true,\"tls_verify\":false}", "b", &b,
                         &e),
                 0);
    cr_expect(b.tls);
    cr_expect_not(b.tls_verify);
    pt_backend_clear(&b);
}

Test(model, backend_unknown_members)
{
    backend_bad("{\"servers\":[\"a:1\"],\"proxy_protcol\":\"v2\"}", "b", "proxy_protcol",
                "unknown");
    backend_bad("{\"servers\":[\"a:1\"],\"Servers\":[\"a:1\"]}", "b", "Servers", NULL);
    backend_bad("{\"servers\":[\"a:1\"],\"mode\":\"offload\"}", "b", "mode", NULL);
    backend_bad("{\"servers\":[\"a:1\"],\"\":1}", "b", "", NULL);
}

/* ---- domains ------------------------------------------------------------- */

Test(model, domain_full_example)
{
    struct pt_domain d;
    struct pt_apierr e;
    int rc = domain("{\"name\": \"cloud.example.org\", \"mode\": \"offload\","
                    " \"backend\": \"yunohost1\", \"certificate\": \"manual\","
                    " \"redirect_http\": false,"
                    " \"response_headers\": {\"Content-Security-Policy\": \"object-src 'self'\","
                    " \"X-Frame-Options\": \"DENY\"}, \"hsts\": true, \"http2\": false}",
                    "cloud.example.org", &d, &e);
    cr_assert_eq(rc, 0, "%s", e.message);
    cr_expect_not(d.http2);
    cr_expect_str_eq(d.name, "cloud.example.org");
    cr_expect_eq(d.mode, PT_MODE_OFFLOAD);
    cr_expect_str_eq(d.backend, "yunohost1");
    cr_expect(d.cert_manual);
    cr_expect_not(d.redirect_http);
    cr_expect(d.hsts);
    cr_assert_eq(d.n_headers, 2);
    cr_expect_str_eq(d.headers[0].name, "Content-Security-Policy"); /* API order */
    cr_expect_str_eq(d.headers[0].value, "object-src 'self'");
    cr_expect_str_eq(d.headers[1].name, "X-Frame-Options");
    pt_domain_clear(&d);
}

Test(model, domain_defaults)
{
    struct pt_domain d;
    struct pt_apierr e;
    int rc = domain("{\"mode\":\"passthrough\",\"backend\":\"b\"}", "*.example.org", &d, &e);
    cr_assert_eq(rc, 0, "%s", e.message);
    cr_expect_str_eq(d.name, "*.example.org");
    cr_expect_eq(d.mode, PT_MODE_PASSTHROUGH);
    cr_expect_not(d.cert_manual, "certificate defaults to acme");
    cr_expect(d.redirect_http, "redirect_http defaults to true");
    cr_expect_not(d.hsts, "hsts defaults to false");
    cr_expect(d.http2, "http2 defaults to true");
    cr_expect_eq(d.n_headers, 0);
    pt_domain_clear(&d);

    rc = domain("{\"mode\":\"offload\",\"backend\":\"b\",\"certificate\":null,"
                "\"redirect_http\":null,\"hsts\":null,\"response_headers\":null}",
                "x.example.org", &d, &e);
    cr_assert_eq(rc, 0, "%s", e.message);
    cr_expect_not(d.cert_manual);
    cr_expect(d.redirect_http);
    cr_expect_not(d.hsts);
    pt_domain_clear(&d);

    cr_assert_eq(domain("{\"mode\":\"offload\",\"backend\":\"b\",\"certificate\":\"acme\"}",
                        "x.example.org", &d, &e),
                 0);
    cr_expect_not(d.cert_manual);
    pt_domain_clear(&d);
}

Test(model, domain_mode)
{
    domain_bad("{\"backend\":\"b\"}", "a.example.org", "mode", NULL);
    domain_bad("{\"mode\":null,\"backend\":\"b\"}", "a.example.org", "mode", NULL);
    domain_bad("{\"mode\":\"Offload\",\"backend\":\"b\"}", "a.example.org", "mode", NULL);
    domain_bad("{\"mode\":\"tcp\",\"backend\":\"b\"}", "a.example.org", "mode", NULL);
    domain_bad("{\"mode\":\"\",\"backend\":\"b\"}", "a.example.org", "mode", NULL);
    domain_bad("{\"mode\":1,\"backend\":\"b\"}", "a.example.org", "mode", NULL);
    domain_bad("{\"mode\":true,\"backend\":\"b\"}", "a.example.org", "mode", NULL);
}

Test(model, domain_backend)
{
    domain_bad("{\"mode\":\"offload\"}", "a.example.org", "backend", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":null}", "a.example.org", "backend", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"\"}", "a.example.org", "backend", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"Bad\"}", "a.example.org", "backend",
               NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"a b\"}", "a.example.org", "backend",
               NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"-b\"}", "a.example.org", "backend",
               NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":7}", "a.example.org", "backend", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":[\"b\"]}", "a.example.org", "backend",
               NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":"
               "\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz012345678901\"}",
               "a.example.org", "backend", NULL);
}

Test(model, domain_certificate_and_booleans)
{
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"certificate\":\"letsencrypt\"}",
               "a.example.org", "certificate", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"certificate\":\"ACME\"}",
               "a.example.org", "certificate", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"certificate\":true}",
               "a.example.org", "certificate", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"redirect_http\":\"false\"}",
               "a.example.org", "redirect_http", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"redirect_http\":0}",
               "a.example.org", "redirect_http", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"http2\":\"yes\"}", "a.example.org",
               "http2", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"hsts\":1}", "a.example.org", "hsts",
               NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"hsts\":\"true\"}", "a.example.org",
               "hsts", NULL);
}

Test(model, domain_name_member)
{
    domain_ok("{\"name\":\"cloud.example.org\",\"mode\":\"offload\",\"backend\":\"b\"}",
              "cloud.example.org");
    /* Compared after normalisation: case and one trailing dot. */
    domain_ok("{\"name\":\"Cloud.Example.ORG.\",\"mode\":\"offload\",\"backend\":\"b\"}",
              "cloud.example.org");
    domain_ok("{\"name\":\"*.Example.org\",\"mode\":\"offload\",\"backend\":\"b\"}",
              "*.example.org");
    domain_ok("{\"name\":\"*\",\"mode\":\"passthrough\",\"backend\":\"b\"}", "*");
    domain_bad("{\"name\":\"other.example.org\",\"mode\":\"offload\",\"backend\":\"b\"}",
               "cloud.example.org", "name", "other.example.org");
    domain_bad("{\"name\":\"a..b\",\"mode\":\"offload\",\"backend\":\"b\"}",
               "cloud.example.org", "name", NULL);
    domain_bad("{\"name\":\"b\\u00fccher.example\",\"mode\":\"offload\",\"backend\":\"b\"}",
               "xn--bcher-kva.example", "name", NULL);
    domain_bad("{\"name\":5,\"mode\":\"offload\",\"backend\":\"b\"}", "cloud.example.org",
               "name", NULL);
}

Test(model, domain_unknown_members)
{
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"redirect\":true}", "a.example.org",
               "redirect", "unknown");
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"servers\":[\"a:1\"]}",
               "a.example.org", "servers", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"response_header\":{}}",
               "a.example.org", "response_header", NULL);
    /* What GET adds may be sent back unchanged (GET, edit, PUT). */
    domain_ok("{\"mode\":\"offload\",\"backend\":\"b\",\"certificate_id\":\"abc\","
              "\"certificate_status\":\"valid\"}",
              "a.example.org");
}

Test(model, domain_response_headers)
{
    struct pt_domain d;
    struct pt_apierr e;
    cr_assert_eq(domain("{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":"
                        "{\"X-A\":\"1\",\"x-b\":\"\",\"X-Tab\":\"a\\tb\","
                        "\"X-UTF8\":\"\\u00e9t\\u00e9\",\"!#$%&'*+-.^_`|~09az\":\"t\"}}",
                        "a.example.org", &d, &e),
                 0, "%s", e.message);
    cr_assert_eq(d.n_headers, 5);
    cr_expect_str_eq(d.headers[1].name, "x-b");
    cr_expect_str_eq(d.headers[1].value, "");
    cr_expect_str_eq(d.headers[2].value, "a\tb");
    pt_domain_clear(&d);

    static const char *const reserved[] = {"Content-Length", "content-length",
                                           "Transfer-Encoding", "Connection",
                                           "Keep-Alive", "Upgrade", "Trailer", "TE"};
    for (size_t i = 0; i < PT_ARRAY_LEN(reserved); i++) {
        char text[256], field[128];
        snprintf(text, sizeof(text),
                 "{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":"
                 "{\"X-Ok\":\"1\",\"%s\":\"5\"}}",
                 reserved[i]);
        snprintf(field, sizeof(field), "response_headers.%s", reserved[i]);
        domain_bad(text, "a.example.org", field, NULL);
    }

    /* Names must be RFC 9110 tokens. */
    static const char *const badnames[] = {"Bad Header", "X:Y", "", "X(", "X\\\"",
                                           "\\u00e9", "X/Y", "X@Y"};
    static const char *const badfields[] = {"Bad Header", "X:Y", "", "X(", "X\"",
                                            "\xc3\xa9", "X/Y", "X@Y"};
    for (size_t i = 0; i < PT_ARRAY_LEN(badnames); i++) {
        char text[256], field[128];
        snprintf(text, sizeof(text),
                 "{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":{\"%s\":\"v\"}}",
                 badnames[i]);
        snprintf(field, sizeof(field), "response_headers.%s", badfields[i]);
        domain_bad(text, "a.example.org", field, NULL);
    }

    /* Values: strings without CR, LF, NUL or other controls. */
    static const char *const badvalues[] = {"\"a\\r\\nSet-Cookie: x=1\"", "\"a\\nb\"",
                                            "\"a\\rb\"", "\"\\u0001\"", "\"\\u007f\"", "1",
                                            "true", "null", "[\"v\"]", "{}"};
    for (size_t i = 0; i < PT_ARRAY_LEN(badvalues); i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":{\"X-A\":%s}}",
                 badvalues[i]);
        domain_bad(text, "a.example.org", "response_headers.X-A", NULL);
    }

    /* Duplicates, case-insensitively. */
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":"
               "{\"X-Frame-Options\":\"DENY\",\"x-frame-options\":\"SAMEORIGIN\"}}",
               "a.example.org", "response_headers.x-frame-options", NULL);

    /* Not an object. */
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":[]}",
               "a.example.org", "response_headers", NULL);
    domain_bad("{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":\"X-A: 1\"}",
               "a.example.org", "response_headers", NULL);
}

Test(model, domain_response_headers_limits)
{
    /* 64 headers is the maximum, 65 is refused. */
    size_t cap = 4096;
    char *text = pt_xmalloc(cap);
    size_t n = (size_t)snprintf(text, cap,
                                "{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":{");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s\"X-H%d\":\"v\"", i ? "," : "", i);
    snprintf(text + n, cap - n, "}}");
    domain_ok(text, "a.example.org");
    snprintf(text + n, cap - n, ",\"X-H64\":\"v\"}}");
    domain_bad(text, "a.example.org", "response_headers", "64");
    free(text);

    /* A 4096-byte value is fine, 4097 is not. */
    cap = 8192;
    text = pt_xmalloc(cap);
    n = (size_t)snprintf(text, cap,
                         "{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":{\"X-A\":\"");
    memset(text + n, 'v', 4096);
    snprintf(text + n + 4096, cap - n - 4096, "\"}}");
    domain_ok(text, "a.example.org");
    memset(text + n, 'v', 4097);
    snprintf(text + n + 4097, cap - n - 4097, "\"}}");
    domain_bad(text, "a.example.org", "response_headers.X-A", NULL);
    free(text);
}

/* Header names up to 128 bytes are accepted, so an error about one must
 * report the whole path "response_headers.<name>" in "field", as the message
 * does; a truncated field names a member that does not exist. */
Test(model, domain_long_header_name_in_field)
{
    char name[129], text[512], field[160];
    memset(name, 'X', 100);
    name[100] = '\0';
    snprintf(text, sizeof(text),
             "{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":{\"%s\":\"a\\r\"}}",
             name);
    snprintf(field, sizeof(field), "response_headers.%s", name);
    domain_bad(text, "a.example.org", field, NULL);

    /* Such a name with a good value is accepted. */
    snprintf(text, sizeof(text),
             "{\"mode\":\"offload\",\"backend\":\"b\",\"response_headers\":{\"%s\":\"a\"}}",
             name);
    domain_ok(text, "a.example.org");
}

/* ---- to_json round trip -------------------------------------------------- */

static void backend_roundtrip(const char *text, const char *name)
{
    struct pt_backend a, b;
    struct pt_apierr e;
    cr_assert_eq(backend(text, name, &a, &e), 0, "%s: %s", text, e.message);
    json_t *j = pt_model_backend_to_json(&a);
    cr_assert_not_null(j);
    /* Canonical form: every member present. */
    static const char *const members[] = {"name",       "servers", "proxy_protocol",
                                          "http_servers", "tls",    "tls_verify",
                                          "health_check"};
    for (size_t i = 0; i < PT_ARRAY_LEN(members); i++)
        cr_expect_not_null(json_object_get(j, members[i]), "%s missing", members[i]);
    cr_expect_eq(json_object_size(j), PT_ARRAY_LEN(members));

    memset(&e, 0, sizeof(e));
    cr_assert_eq(pt_model_backend_from_json(j, name, &b, &e), 0, "re-read: %s: %s", e.field,
                 e.message);
    cr_expect_str_eq(a.name, b.name);
    cr_expect_eq(a.proxy_protocol, b.proxy_protocol);
    cr_expect_eq(a.tls, b.tls);
    cr_expect_eq(a.tls_verify, b.tls_verify);
    cr_assert_eq(a.n_servers, b.n_servers);
    cr_assert_eq(a.n_http_servers, b.n_http_servers);
    for (size_t i = 0; i < a.n_servers; i++) {
        char x[300], y[300];
        server_str(&a.servers[i], x, sizeof(x));
        server_str(&b.servers[i], y, sizeof(y));
        cr_expect_str_eq(x, y);
        cr_expect_eq(a.servers[i].kind, b.servers[i].kind);
    }
    for (size_t i = 0; i < a.n_http_servers; i++) {
        char x[300], y[300];
        server_str(&a.http_servers[i], x, sizeof(x));
        server_str(&b.http_servers[i], y, sizeof(y));
        cr_expect_str_eq(x, y);
    }
    /* And the canonical document is a fixed point. */
    json_t *j2 = pt_model_backend_to_json(&b);
    cr_expect(json_equal(j, j2));
    json_decref(j2);
    json_decref(j);
    pt_backend_clear(&a);
    pt_backend_clear(&b);
}

static void domain_roundtrip(const char *text, const char *name)
{
    struct pt_domain a, b;
    struct pt_apierr e;
    cr_assert_eq(domain(text, name, &a, &e), 0, "%s: %s", text, e.message);
    json_t *j = pt_model_domain_to_json(&a);
    cr_assert_not_null(j);
    static const char *const members[] = {"name",          "mode",
                                          "backend",       "certificate",
                                          "redirect_http", "response_headers",
                                          "hsts",          "http2"};
    for (size_t i = 0; i < PT_ARRAY_LEN(members); i++)
        cr_expect_not_null(json_object_get(j, members[i]), "%s missing", members[i]);
    cr_expect_eq(json_object_size(j), PT_ARRAY_LEN(members));

    memset(&e, 0, sizeof(e));
    cr_assert_eq(pt_model_domain_from_json(j, name, &b, &e), 0, "re-read: %s: %s", e.field,
                 e.message);
    cr_expect_str_eq(a.name, b.name);
    cr_expect_eq(a.mode, b.mode);
    cr_expect_str_eq(a.backend, b.backend);
    cr_expect_eq(a.cert_manual, b.cert_manual);
    cr_expect_eq(a.redirect_http, b.redirect_http);
    cr_expect_eq(a.hsts, b.hsts);
    cr_expect_eq(a.http2, b.http2);
    cr_assert_eq(a.n_headers, b.n_headers);
    for (size_t i = 0; i < a.n_headers; i++) {
        cr_expect_str_eq(a.headers[i].name, b.headers[i].name);
        cr_expect_str_eq(a.headers[i].value, b.headers[i].value);
    }
    json_t *j2 = pt_model_domain_to_json(&b);
    cr_expect(json_equal(j, j2));
    json_decref(j2);
    json_decref(j);
    pt_domain_clear(&a);
    pt_domain_clear(&b);
}

Test(model, backend_to_json_roundtrip)
{
    backend_roundtrip("{\"servers\":[\"a:1\"]}", "b");
    backend_roundtrip("{\"name\":\"yunohost1\",\"servers\":[\"192.168.99.11:443\","
                      "\"[2001:DB8:0::1]:8443\",\"App.Lan:80\"],\"proxy_protocol\":\"v1\","
                      "\"http_servers\":[\"192.168.99.11:80\",\"[::1]:80\"],\"tls\":true,"
                      "\"tls_verify\":false}",
                      "yunohost1");
    backend_roundtrip("{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"http\","
                      "\"interval_s\":5,\"timeout_s\":1,\"rise\":1,\"fall\":2,"
                      "\"path\":\"/ping?x=1\"}}",
                      "b");
    backend_roundtrip("{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"tcp\"}}", "b");

    /* Defaults are written out. */
    struct pt_backend b;
    struct pt_apierr e;
    cr_assert_eq(backend("{\"servers\":[\"[2001:DB8::1]:443\"]}", "b", &b, &e), 0);
    json_t *j = pt_model_backend_to_json(&b);
    json_t *want = load("{\"name\":\"b\",\"servers\":[\"[2001:db8::1]:443\"],"
                        "\"proxy_protocol\":\"none\",\"http_servers\":[],\"tls\":false,"
                        "\"tls_verify\":true,\"health_check\":null}");
    char *got = json_dumps(j, JSON_SORT_KEYS);
    cr_expect(json_equal(j, want), "got %s", got);
    free(got);
    json_decref(want);
    json_decref(j);
    pt_backend_clear(&b);
}

Test(model, domain_to_json_roundtrip)
{
    domain_roundtrip("{\"mode\":\"passthrough\",\"backend\":\"b\"}", "a.example.org");
    domain_roundtrip("{\"mode\":\"offload\",\"backend\":\"yunohost1\",\"certificate\":"
                     "\"manual\",\"redirect_http\":false,\"hsts\":true,\"http2\":false,\"response_headers\":"
                     "{\"Z-Last\":\"1\",\"A-First\":\"2\",\"X-Empty\":\"\"}}",
                     "*.example.org");
    domain_roundtrip("{\"name\":\"*\",\"mode\":\"passthrough\",\"backend\":\"b\"}", "*");

    struct pt_domain d;
    struct pt_apierr e;
    cr_assert_eq(domain("{\"mode\":\"offload\",\"backend\":\"b\"}", "a.example.org", &d, &e),
                 0);
    json_t *j = pt_model_domain_to_json(&d);
    json_t *want = load("{\"name\":\"a.example.org\",\"mode\":\"offload\",\"backend\":\"b\","
                        "\"certificate\":\"acme\",\"redirect_http\":true,"
                        "\"response_headers\":{},\"hsts\":false,\"http2\":true}");
    char *got = json_dumps(j, JSON_SORT_KEYS);
    cr_expect(json_equal(j, want), "got %s", got);
    free(got);
    json_decref(want);
    json_decref(j);
    pt_domain_clear(&d);
}

/* ---- request bodies ------------------------------------------------------ */

static json_t *body(const char *text, size_t len, struct pt_apierr *e)
{
    struct pt_guard g;
    const char *copy = (const char *)pt_guard_copy(&g, text, len);
    memset(e, 0, sizeof(*e));
    json_t *j = pt_model_parse_body(copy, len, e);
    pt_guard_release(&g);
    return j;
}

static void body_bad(const char *text, size_t len, const char *why)
{
    struct pt_apierr e;
    json_t *j = body(text, len, &e);
    cr_expect_null(j, "accepted (%s): %.60s", why, text);
    json_decref(j);
    if (j == NULL) {
        cr_expect_eq(e.status, 400, "%s", why);
        cr_expect_str_eq(e.code ? e.code : "(null)", "invalid_argument", "%s", why);
        cr_expect_neq(e.message[0], '\0', "%s: empty message", why);
    }
}

static void body_ok(const char *text)
{
    struct pt_apierr e;
    json_t *j = body(text, strlen(text), &e);
    cr_expect_not_null(j, "refused: %s: %s", text, e.message);
    json_decref(j);
}

Test(model, parse_body)
{
    body_ok("{}");
    body_ok(" {\"servers\": [\"a:1\"]} \n");
    body_ok("{\"a\":{\"a\":1},\"b\":{\"a\":2}}"); /* same key in different objects */

    body_bad("", 0, "empty");
    body_bad("{}", 0, "empty with a non-empty buffer");
    body_bad(" ", 1, "blank");
    body_bad("{", 1, "truncated");
    body_bad("{\"a\":1,}", 8, "trailing comma");
    body_bad("{} {}", 5, "two documents");
    body_bad("{}x", 3, "trailing garbage");
    body_bad("{}\0", 3, "trailing NUL");
    body_bad("[]", 2, "array");
    body_bad("[{}]", 4, "array of object");
    body_bad("1", 1, "number");
    body_bad("\"s\"", 3, "string");
    body_bad("null", 4, "null");
    body_bad("true", 4, "true");
    body_bad("{\"a\":1,\"a\":2}", 13, "duplicate key");
    body_bad("{\"x\":{\"a\":1,\"a\":1}}", 19, "nested duplicate key");
    body_bad("{\"a\":\"\\u0000\"}", 14, "NUL in a string");
    body_bad("{\"a\":\"\xff\"}", 9, "invalid UTF-8");
    body_bad("{'a':1}", 7, "single quotes");

    struct pt_apierr e;
    json_t *j = body("[]", 2, &e);
    cr_expect_null(j);
    cr_expect_str_eq(e.field, "");
    json_decref(j);
}

/* Builds {"a":{"a":...{}}} with <objects> objects, or with arrays inside the
 * outermost object when <arrays>. */
static char *nested(int levels, bool arrays)
{
    char *s = pt_xmalloc((size_t)levels * 8 + 16);
    size_t n = 0;
    s[n++] = '{';
    if (levels > 1) {
        memcpy(s + n, "\"a\":", 4);
        n += 4;
    }
    for (int i = 1; i < levels; i++) {
        if (arrays) {
            s[n++] = '[';
        } else {
            s[n++] = '{';
            if (i < levels - 1) {
                memcpy(s + n, "\"a\":", 4);
                n += 4;
            }
        }
    }
    for (int i = 1; i < levels; i++)
        s[n++] = arrays ? ']' : '}';
    s[n++] = '}';
    s[n] = '\0';
    return s;
}

Test(model, parse_body_depth)
{
    for (int lv = 1; lv <= 16; lv++) {
        char *s = nested(lv, false);
        body_ok(s);
        free(s);
        s = nested(lv, true);
        body_ok(s);
        free(s);
    }
    static const int too_deep[] = {17, 18, 100, 1000, 5000};
    for (size_t i = 0; i < PT_ARRAY_LEN(too_deep); i++) {
        char *s = nested(too_deep[i], false);
        body_bad(s, strlen(s), "objects too deep");
        free(s);
        s = nested(too_deep[i], true);
        body_bad(s, strlen(s), "arrays too deep");
        free(s);
    }
    /* Depth counts the deepest branch, not the first one. */
    const char *deep = "{\"shallow\":1,\"deep\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}";
    body_bad(deep, strlen(deep), "second member");
}

/* apierr_set formats and truncates safely. */
Test(model, apierr_set)
{
    struct pt_apierr e;
    char longfield[300];
    memset(longfield, 'f', sizeof(longfield) - 1);
    longfield[sizeof(longfield) - 1] = '\0';
    cr_expect_eq(pt_apierr_set(&e, 409, "conflict", longfield, "%s: %s", longfield, longfield),
                 -1);
    cr_expect_eq(e.status, 409);
    cr_expect_str_eq(e.code, "conflict");
    cr_expect_eq(strlen(e.field), sizeof(e.field) - 1);
    cr_expect_eq(strlen(e.message), sizeof(e.message) - 1);
    pt_apierr_set(&e, 400, "invalid_argument", NULL, "plain");
    cr_expect_str_eq(e.field, "");
    cr_expect_str_eq(e.message, "plain");
}

static int ban_rule(const char *cidr, unsigned max4, unsigned max6, struct pt_apierr *e)
{
    struct pt_cidr net;
    cr_assert_eq(pt_cidr_parse(cidr, strlen(cidr), &net, NULL), 0, "%s", cidr);
    memset(e, 0, sizeof(*e));
    return pt_model_ban_allowed(&net, max4, max6, e);
}

/* /0 never, for anyone; a limited caller nothing wider than its max prefix,
 * per family; an unlimited one (admin) anything else. */
Test(model, ban_prefix_rules)
{
    struct pt_apierr e;
    cr_expect_eq(ban_rule("0.0.0.0/0", 0, 0, &e), -1);
    cr_expect_eq(e.status, 400);
    cr_expect(strstr(e.message, "0.0.0.0/0") && strstr(e.message, "every"), "%s", e.message);
    cr_expect_eq(ban_rule("::/0", 0, 0, &e), -1);
    cr_expect(strstr(e.message, "::/0") != NULL, "%s", e.message);
    cr_expect_eq(ban_rule("::/0", 1, 1, &e), -1);
    cr_expect_eq(ban_rule("0.0.0.0/1", 0, 0, &e), 0, "admin may ban /1");
    cr_expect_eq(ban_rule("10.0.0.0/8", 0, 0, &e), 0);
    /* the default bans token: /24 and /64 */
    cr_expect_eq(ban_rule("192.0.2.7", 24, 64, &e), 0);
    cr_expect_eq(ban_rule("192.0.2.0/24", 24, 64, &e), 0);
    cr_expect_eq(ban_rule("192.0.2.0/23", 24, 64, &e), -1);
    cr_expect_eq(e.status, 403);
    cr_expect(strstr(e.message, "/24") && strstr(e.message, "/23"), "%s", e.message);
    cr_expect_str_eq(e.field, "ip");
    cr_expect_eq(ban_rule("2001:db8::/64", 24, 64, &e), 0);
    cr_expect_eq(ban_rule("2001:db8::1", 24, 64, &e), 0);
    cr_expect_eq(ban_rule("2001:db8::/63", 24, 64, &e), -1);
    cr_expect_eq(e.status, 403);
    /* families are judged apart: a wide IPv6 limit does not widen IPv4 */
    cr_expect_eq(ban_rule("2001:db8::/32", 24, 32, &e), 0);
    cr_expect_eq(ban_rule("10.0.0.0/16", 24, 32, &e), -1);
    cr_expect_eq(ban_rule("10.0.0.0/16", 16, 64, &e), 0);
}

Test(model, backend_health_check)
{
    struct pt_backend b;
    struct pt_apierr e;
    cr_assert_eq(backend("{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"tls\"}}", "b",
                         &b, &e),
                 0);
    cr_expect_eq(b.check.kind, PT_CHECK_TLS);
    cr_expect_eq(b.check.interval_ms, 10000);
    cr_expect_eq(b.check.timeout_ms, 2000);
    cr_expect_eq(b.check.rise, 2);
    cr_expect_eq(b.check.fall, 3);
    pt_backend_clear(&b);
    cr_assert_eq(backend("{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"http\"}}", "b",
                         &b, &e),
                 0);
    cr_expect_str_eq(b.check.path, "/");
    pt_backend_clear(&b);
    cr_assert_eq(backend("{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"none\"}}", "b",
                         &b, &e),
                 0);
    cr_expect_eq(b.check.kind, PT_CHECK_NONE);
    pt_backend_clear(&b);

    static const char *const bad[] = {
        "{\"servers\":[\"a:1\"],\"health_check\":{}}",
        "{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"icmp\"}}",
        "{\"servers\":[\"a:1\"],\"health_check\":\"tcp\"}",
        "{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"tcp\",\"interval_s\":0}}",
        "{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"tcp\",\"timeout_s\":61}}",
        "{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"tcp\",\"rise\":1.5}}",
        "{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"tcp\",\"path\":\"/\"}}",
        "{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"http\",\"path\":\"x\"}}",
        "{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"http\",\"path\":\"/a b\"}}",
        "{\"servers\":[\"a:1\"],\"health_check\":{\"type\":\"http\",\"paths\":\"/\"}}",
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
        cr_expect_neq(backend(bad[i], "b", &b, &e), 0, "%s accepted", bad[i]);
        pt_backend_clear(&b);
    }
}
