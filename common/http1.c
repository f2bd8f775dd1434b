#include "common/http1.h"

#include <http_parser.h>
#include <strings.h>

struct collect {
    struct pt_http_req *r;
    bool in_value;
    bool too_many;
};

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct collect *c = p->data;
    c->r->url = at;
    c->r->url_len = n;
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    struct collect *c = p->data;
    struct pt_http_req *r = c->r;
    if (r->n_hdrs == PT_HTTP_HEADERS_MAX) {
        c->too_many = true;
        return 1;
    }
    r->hdrs[r->n_hdrs].name = at;
    r->hdrs[r->n_hdrs].name_len = n;
    r->hdrs[r->n_hdrs].value = at + n; /* empty until on_value */
    r->hdrs[r->n_hdrs].value_len = 0;
    r->n_hdrs++;
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    struct collect *c = p->data;
    struct pt_http_req *r = c->r;
    if (r->n_hdrs == 0)
        return 1;
    /* Optional whitespace around a value is not part of it (RFC 9112 5). */
    while (n && (at[n - 1] == ' ' || at[n - 1] == '\t'))
        n--;
    r->hdrs[r->n_hdrs - 1].value = at;
    r->hdrs[r->n_hdrs - 1].value_len = n;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

static bool name_is(const struct pt_http_hdr *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

static bool value_is(const struct pt_http_hdr *h, const char *v)
{
    size_t n = strlen(v);
    return h->value_len == n && strncasecmp(h->value, v, n) == 0;
}

static bool lists_token_n(const struct pt_http_hdr *h, const char *tok, size_t tl);

/* Does comma-separated header value <h> list token <tok>? */
static bool lists_token(const struct pt_http_hdr *h, const char *tok)
{
    return lists_token_n(h, tok, strlen(tok));
}

static bool lists_token_n(const struct pt_http_hdr *h, const char *tok, size_t tl)
{
    size_t i = 0;
    while (i < h->value_len) {
        while (i < h->value_len && (h->value[i] == ' ' || h->value[i] == '\t' ||
                                    h->value[i] == ','))
            i++;
        size_t s = i;
        while (i < h->value_len && h->value[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(h->value + s, tok, tl) == 0)
            return true;
    }
    return false;
}

const struct pt_http_hdr *pt_http1_header(const struct pt_http_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_hdrs; i++)
        if (name_is(&r->hdrs[i], name))
            return &r->hdrs[i];
    return NULL;
}

static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int refuse(struct pt_http_req *r, int status, const char *why)
{
    r->status = status;
    r->why = why;
    return PT_EMALFORMED;
}

int pt_http1_parse_request(const uint8_t *buf, size_t len, struct pt_http_req *out)
{
    memset(out, 0, sizeof(*out));
    /* Find the blank line; every line must end in CRLF, and a line starting
     * with SP or HT is obs-fold. Both are refused, not repaired: a backend
     * that reads them differently is how requests get smuggled. */
    size_t end = 0, line_start = 0;
    size_t lim = len < PT_HTTP_HEAD_MAX ? len : PT_HTTP_HEAD_MAX;
    for (size_t i = 0; i < lim; i++) {
        if (buf[i] == '\0')
            return refuse(out, 400, "NUL byte in head");
        if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n')
            return refuse(out, 400, "bare CR");
        if (buf[i] != '\n')
            continue;
        if (i == 0 || buf[i - 1] != '\r')
            return refuse(out, 400, "bare LF");
        if (line_start == 0 && i + 1 > PT_HTTP_LINE_MAX)
            return refuse(out, 414, "request line too long");
        if (i + 1 - line_start == 2) { /* "\r\n" alone: end of head */
            if (line_start == 0)
                return refuse(out, 400, "empty request line");
            end = i + 1;
            break;
        }
        if (i + 1 < len && (buf[i + 1] == ' ' || buf[i + 1] == '\t'))
            return refuse(out, 400, "obs-fold");
        line_start = i + 1;
    }
    if (end == 0) {
        if (line_start == 0 && lim >= PT_HTTP_LINE_MAX)
            return refuse(out, 414, "request line too long");
        if (len >= PT_HTTP_HEAD_MAX)
            return refuse(out, 431, "request head too large");
        return PT_ENEEDMORE;
    }

    http_parser p;
    http_parser_settings cb;
    struct collect c = {out, false, false};
    memset(&cb, 0, sizeof(cb));
    cb.on_url = on_url;
    cb.on_header_field = on_field;
    cb.on_header_value = on_value;
    cb.on_headers_complete = on_headers_complete;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &c;
    http_parser_execute(&p, &cb, (const char *)buf, end);
    if (c.too_many)
        return refuse(out, 431, "too many header fields");
    if (HTTP_PARSER_ERRNO(&p) != HPE_PAUSED) {
        if (HTTP_PARSER_ERRNO(&p) == HPE_INVALID_CONTENT_LENGTH ||
            HTTP_PARSER_ERRNO(&p) == HPE_UNEXPECTED_CONTENT_LENGTH)
            return refuse(out, 400, "invalid Content-Length");
        return refuse(out, 400, http_errno_name(HTTP_PARSER_ERRNO(&p)));
    }
    out->method = http_method_str((enum http_method)p.method);
    if (p.method == HTTP_CONNECT)
        return refuse(out, 400, "CONNECT is not proxied");
    out->is_head = p.method == HTTP_HEAD;
    out->major = p.http_major;
    out->minor = p.http_minor;
    out->head_len = end;
    if (out->major != 1)
        return refuse(out, 400, "unsupported HTTP version");

    /* What http-parser lets through but a backend may read differently:
     * control bytes or whitespace in the target, anything but token
     * characters in a field name (a space before the colon), control bytes
     * in a value. */
    for (size_t i = 0; i < out->url_len; i++)
        if ((unsigned char)out->url[i] <= 0x20 || out->url[i] == 0x7f)
            return refuse(out, 400, "control byte or space in the request target");
    for (size_t i = 0; i < out->n_hdrs; i++) {
        const struct pt_http_hdr *h = &out->hdrs[i];
        for (size_t k = 0; k < h->name_len; k++)
            if (!token_char((unsigned char)h->name[k]))
                return refuse(out, 400, "invalid character in a header name");
        for (size_t k = 0; k < h->value_len; k++) {
            unsigned char ch = (unsigned char)h->value[k];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return refuse(out, 400, "control byte in a header value");
        }
    }

    size_t n_cl = 0, n_te = 0, n_host = 0;
    bool conn_upgrade = false, conn_close = false, conn_keep = false;
    const struct pt_http_hdr *upgrade = NULL;
    for (size_t i = 0; i < out->n_hdrs; i++) {
        const struct pt_http_hdr *h = &out->hdrs[i];
        if (h->name_len == 0)
            return refuse(out, 400, "empty header name");
        if (name_is(h, "content-length")) {
            uint64_t v = 0;
            if (h->value_len == 0 || h->value_len > 18)
                return refuse(out, 400, "invalid Content-Length");
            for (size_t k = 0; k < h->value_len; k++) {
                if (h->value[k] < '0' || h->value[k] > '9')
                    return refuse(out, 400, "invalid Content-Length");
                v = v * 10 + (uint64_t)(h->value[k] - '0');
            }
            out->content_length = v;
            n_cl++;
        } else if (name_is(h, "transfer-encoding")) {
            n_te++;
            if (!value_is(h, "chunked"))
                return refuse(out, 400, "unsupported Transfer-Encoding");
        } else if (name_is(h, "host")) {
            n_host++;
            out->host = h->value;
            out->host_len = h->value_len;
        } else if (name_is(h, "connection")) {
            conn_upgrade |= lists_token(h, "upgrade");
            conn_close |= lists_token(h, "close");
            conn_keep |= lists_token(h, "keep-alive");
        } else if (name_is(h, "upgrade")) {
            upgrade = h;
        }
    }
    if (n_cl > 1)
        return refuse(out, 400, "duplicate Content-Length");
    if (n_te > 1)
        return refuse(out, 400, "duplicate Transfer-Encoding");
    if (n_cl && n_te)
        return refuse(out, 400, "both Content-Length and Transfer-Encoding");
    if (n_te && out->minor == 0)
        return refuse(out, 400, "Transfer-Encoding on HTTP/1.0");
    if (n_host > 1)
        return refuse(out, 400, "duplicate Host");
    if (n_host == 0 && out->minor >= 1)
        return refuse(out, 400, "missing Host");
    out->has_content_length = n_cl == 1;
    out->chunked = n_te == 1;
    out->keep_alive = out->minor >= 1 ? !conn_close : conn_keep;
    out->upgrade = conn_upgrade && upgrade != NULL;
    return (int)end;
}

static bool hop_by_hop(const struct pt_http_req *r, const struct pt_http_hdr *h)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "te", "trailer", "x-real-ip", "x-forwarded-proto",
                                      "x-forwarded-host", "x-forwarded-for"};
    for (size_t i = 0; i < PT_ARRAY_LEN(hop); i++)
        if (name_is(h, hop[i]))
            return true;
    if (name_is(h, "upgrade"))
        return !r->upgrade;
    /* Fields the client listed in Connection (any Connection field) are for
     * this hop only; the ones that frame the message or route it stay,
     * whatever Connection says, or the backend would read another request. */
    if (name_is(h, "host") || name_is(h, "content-length") ||
        name_is(h, "transfer-encoding"))
        return false;
    for (size_t i = 0; i < r->n_hdrs; i++)
        if (name_is(&r->hdrs[i], "connection") &&
            lists_token_n(&r->hdrs[i], h->name, h->name_len))
            return true;
    return false;
}

static void put(struct pt_wbuf *b, const char *s)
{
    pt_wbuf_put(b, s, strlen(s));
}

void pt_http1_write_request(const struct pt_http_req *r, const struct pt_http_fwd *f,
                            struct pt_wbuf *out)
{
    char line[64];
    put(out, r->method);
    pt_wbuf_u8(out, ' ');
    pt_wbuf_put(out, r->url, r->url_len);
    snprintf(line, sizeof(line), " HTTP/1.%u\r\n", r->minor ? 1u : 0u);
    put(out, line);
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct pt_http_hdr *h = &r->hdrs[i];
        if (hop_by_hop(r, h))
            continue;
        pt_wbuf_put(out, h->name, h->name_len);
        put(out, ": ");
        pt_wbuf_put(out, h->value, h->value_len);
        put(out, "\r\n");
    }
    /* Several X-Forwarded-For fields are one list (RFC 9110 5.3). */
    put(out, "X-Forwarded-For: ");
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct pt_http_hdr *h = &r->hdrs[i];
        if (name_is(h, "x-forwarded-for") && h->value_len) {
            pt_wbuf_put(out, h->value, h->value_len);
            put(out, ", ");
        }
    }
    put(out, f->client_ip);
    put(out, "\r\nX-Real-IP: ");
    put(out, f->client_ip);
    put(out, "\r\nX-Forwarded-Proto: ");
    put(out, f->proto);
    if (r->host) {
        put(out, "\r\nX-Forwarded-Host: ");
        pt_wbuf_put(out, r->host, r->host_len);
    }
    if (r->upgrade)
        put(out, "\r\nConnection: upgrade\r\n\r\n");
    else if (f->close)
        put(out, "\r\nConnection: close\r\n\r\n");
    else
        put(out, "\r\nConnection: keep-alive\r\n\r\n");
}

const char *pt_http1_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

void pt_http1_write_response(struct pt_wbuf *out, int status, const char *extra,
                             const char *type, const char *body, size_t body_len)
{
    char line[256];
    int n = snprintf(line, sizeof(line),
                     "HTTP/1.1 %d %s\r\nServer: portier\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n",
                     status, pt_http1_reason(status), type, body_len);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1; /* only ever reached with a bogus type */
    pt_wbuf_put(out, line, (size_t)n);
    if (extra)
        put(out, extra);
    put(out, "\r\n");
    pt_wbuf_put(out, body, body_len);
}
