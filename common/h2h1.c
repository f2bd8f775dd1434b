/* HTTP/2 header blocks to HTTP/1.1 heads; see h2h1.h. */
#include "common/h2h1.h"

#include <strings.h>

static bool is_tchar_lower(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool name_ok(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar_lower((uint8_t)p[i]))
            return false;
    return true;
}

/* RFC 9113 8.2.1: no NUL, CR or LF anywhere, no SP or HTAB at either end;
 * other control bytes are refused as in HTTP/1.1 (common/http1.c). */
static bool value_ok(const char *p, size_t n)
{
    if (n && (p[0] == ' ' || p[0] == '\t' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static bool is(const struct pt_http_hdr *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && memcmp(h->name, name, n) == 0;
}

static bool connection_specific(const struct pt_http_hdr *h)
{
    return is(h, "connection") || is(h, "keep-alive") || is(h, "proxy-connection") ||
           is(h, "transfer-encoding") || is(h, "upgrade");
}

#define REFUSE(text)                                                                     \
    do {                                                                                 \
        *why = (text);                                                                   \
        return PT_EMALFORMED;                                                            \
    } while (0)

int pt_h2h1_request(const struct pt_http_hdr *f, size_t n, bool body, struct pt_wbuf *out,
                    const char **why)
{
    const struct pt_http_hdr *method = NULL, *scheme = NULL, *authority = NULL, *path = NULL;
    const struct pt_http_hdr *host = NULL;
    bool regular = false, has_length = false, cookies = false;
    if (n > PT_H2H1_FIELDS_MAX)
        REFUSE("too many fields");
    for (size_t i = 0; i < n; i++) {
        const struct pt_http_hdr *h = &f[i];
        if (h->name_len && h->name[0] == ':') {
            const struct pt_http_hdr **slot = is(h, ":method")      ? &method
                                              : is(h, ":scheme")    ? &scheme
                                              : is(h, ":authority") ? &authority
                                              : is(h, ":path")      ? &path
                                                                    : NULL;
            if (slot == NULL)
                REFUSE("unknown pseudo-header");
            if (*slot)
                REFUSE("repeated pseudo-header");
            if (regular)
                REFUSE("pseudo-header after a regular field");
            if (!value_ok(h->value, h->value_len))
                REFUSE("bad pseudo-header value");
            *slot = h;
            continue;
        }
        regular = true;
        if (!name_ok(h->name, h->name_len))
            REFUSE("bad field name");
        if (!value_ok(h->value, h->value_len))
            REFUSE("bad field value");
        if (connection_specific(h))
            REFUSE("connection-specific field");
        if (is(h, "te") && !(h->value_len == 8 && memcmp(h->value, "trailers", 8) == 0))
            REFUSE("TE other than trailers");
        if (is(h, "host")) {
            if (host)
                REFUSE("repeated host");
            host = h;
        }
        has_length |= is(h, "content-length");
        cookies |= is(h, "cookie");
    }
    if (method == NULL || scheme == NULL || path == NULL)
        REFUSE("missing pseudo-header");
    if (method->value_len == 7 && memcmp(method->value, "CONNECT", 7) == 0)
        REFUSE("CONNECT");
    if (path->value_len == 0)
        REFUSE("empty :path");
    for (size_t i = 0; i < method->value_len; i++)
        if (!(method->value[i] >= 'A' && method->value[i] <= 'Z'))
            REFUSE("bad :method");
    for (size_t i = 0; i < path->value_len; i++)
        if (path->value[i] == ' ' || path->value[i] == '\t')
            REFUSE("whitespace in :path");
    if (!(path->value[0] == '/' || (path->value_len == 1 && path->value[0] == '*')))
        REFUSE(":path not in origin-form");
    if (authority && host &&
        (authority->value_len != host->value_len ||
         strncasecmp(authority->value, host->value, host->value_len) != 0))
        REFUSE("host differs from :authority");
    const struct pt_http_hdr *h_host = authority ? authority : host;

    pt_wbuf_put(out, method->value, method->value_len);
    pt_wbuf_put(out, " ", 1);
    pt_wbuf_put(out, path->value, path->value_len);
    pt_wbuf_put(out, " HTTP/1.1\r\n", 11);
    if (h_host) {
        pt_wbuf_put(out, "host: ", 6);
        pt_wbuf_put(out, h_host->value, h_host->value_len);
        pt_wbuf_put(out, "\r\n", 2);
    }
    for (size_t i = 0; i < n; i++) {
        const struct pt_http_hdr *h = &f[i];
        if (h->name[0] == ':' || is(h, "host") || is(h, "te") || is(h, "cookie"))
            continue;
        pt_wbuf_put(out, h->name, h->name_len);
        pt_wbuf_put(out, ": ", 2);
        pt_wbuf_put(out, h->value, h->value_len);
        pt_wbuf_put(out, "\r\n", 2);
    }
    if (cookies) {
        /* RFC 9113 8.2.3: HTTP/2 may split Cookie into one field per pair;
         * HTTP/1.1 wants one field. */
        bool first = true;
        pt_wbuf_put(out, "cookie: ", 8);
        for (size_t i = 0; i < n; i++) {
            if (!is(&f[i], "cookie"))
                continue;
            if (!first)
                pt_wbuf_put(out, "; ", 2);
            pt_wbuf_put(out, f[i].value, f[i].value_len);
            first = false;
        }
        pt_wbuf_put(out, "\r\n", 2);
    }
    if (body && !has_length)
        pt_wbuf_put(out, "transfer-encoding: chunked\r\n", 28);
    pt_wbuf_put(out, "\r\n", 2);
    return 0;
}

int pt_h2h1_trailer(const struct pt_http_hdr *f, struct pt_wbuf *out)
{
    static const char *const refused[] = {"content-length", "host", "te", "trailer",
                                          "forwarded", "x-real-ip"};
    if (!name_ok(f->name, f->name_len) || !value_ok(f->value, f->value_len) ||
        connection_specific(f) || (f->name_len > 12 && memcmp(f->name, "x-forwarded-", 12) == 0))
        return PT_EMALFORMED;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (is(f, refused[i]))
            return PT_EMALFORMED;
    pt_wbuf_put(out, f->name, f->name_len);
    pt_wbuf_put(out, ": ", 2);
    pt_wbuf_put(out, f->value, f->value_len);
    pt_wbuf_put(out, "\r\n", 2);
    return 0;
}
