#include "common/http1.h"

#include <strings.h>

/* ---- small helpers -------------------------------------------------------- */

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

static bool same_ci(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && strncasecmp(a, b, an) == 0;
}

/* Calls <fn> on each element of the comma-separated list in <h>, without the
 * OWS around it (empty elements included); stops when fn returns true. */
static bool list_any(const struct pt_http_hdr *h, bool (*fn)(const char *, size_t, void *),
                     void *arg)
{
    size_t i = 0;
    for (;;) {
        while (i < h->value_len && (h->value[i] == ' ' || h->value[i] == '\t'))
            i++;
        size_t s = i;
        while (i < h->value_len && h->value[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
            e--;
        if (fn(h->value + s, e - s, arg))
            return true;
        if (i >= h->value_len)
            return false;
        i++; /* the comma */
    }
}

struct tok {
    const char *t;
    size_t n;
};

static bool is_tok(const char *p, size_t n, void *arg)
{
    const struct tok *t = arg;
    return same_ci(p, n, t->t, t->n);
}

/* Does comma-separated header value <h> list token <tok>[0..tl)? */
static bool lists_token_n(const struct pt_http_hdr *h, const char *tok, size_t tl)
{
    struct tok t = {tok, tl};
    return list_any(h, is_tok, &t);
}

static bool lists_token(const struct pt_http_hdr *h, const char *tok)
{
    return lists_token_n(h, tok, strlen(tok));
}

static const struct pt_http_hdr *find(const struct pt_http_hdr *hdrs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (name_is(&hdrs[i], name))
            return &hdrs[i];
    return NULL;
}

const struct pt_http_hdr *pt_http1_header(const struct pt_http_req *r, const char *name)
{
    return find(r->hdrs, r->n_hdrs, name);
}

const struct pt_http_hdr *pt_http1_resp_header(const struct pt_http_resp *r, const char *name)
{
    return find(r->hdrs, r->n_hdrs, name);
}

/* 1 to 18 decimal digits, nothing else; false otherwise. */
static bool parse_length(const char *p, size_t n, uint64_t *v)
{
    if (n == 0 || n > 18)
        return false;
    *v = 0;
    for (size_t k = 0; k < n; k++) {
        if (p[k] < '0' || p[k] > '9')
            return false;
        *v = *v * 10 + (uint64_t)(p[k] - '0');
    }
    return true;
}

/* ---- the head: lines and fields, shared by requests and responses ---------- */

struct head {
    struct pt_http_hdr *hdrs; /* the caller's array of PT_HTTP_HEADERS_MAX */
    size_t n_hdrs;
    int status;               /* on refusal */
    const char *why;
};

/* Checks the start line <p>[0..n) (CRLF excluded); returns 0 or the status
 * to refuse with, *why set. */
typedef int start_line_fn(void *ctx, const char *p, size_t n, const char **why);

static int head_refuse(struct head *h, int status, const char *why)
{
    h->status = status;
    h->why = why;
    return PT_EMALFORMED;
}

/* One field line <p>[0..n), CRLF excluded: token ":" OWS value OWS. */
static int field_line(struct head *h, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && pt_h1body_tchar((uint8_t)p[i]))
        i++;
    if (i == n)
        return head_refuse(h, 400, "field without colon");
    if (p[i] != ':')
        return head_refuse(h, 400, p[i] == ' ' || p[i] == '\t'
                                       ? "whitespace before the colon of a field"
                                       : "invalid character in a header name");
    if (i == 0)
        return head_refuse(h, 400, "empty header name");
    size_t v = i + 1, e = n;
    while (v < e && (p[v] == ' ' || p[v] == '\t'))
        v++;
    while (e > v && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;
    for (size_t k = v; k < e; k++)
        if (!pt_h1body_vchar((uint8_t)p[k]))
            return head_refuse(h, 400, "control byte in a header value");
    if (h->n_hdrs == PT_HTTP_HEADERS_MAX)
        return head_refuse(h, 431, "too many header fields");
    struct pt_http_hdr *f = &h->hdrs[h->n_hdrs++];
    f->name = p;
    f->name_len = i;
    f->value = p + v;
    f->value_len = e - v;
    return 0;
}

/* A byte of <v> is zero (the classic SWAR test: exact, no false hits). */
static inline bool word_has_zero(uint64_t v)
{
    return ((v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull) != 0;
}

/* The first index from <i> (at most <lim>) of a byte the head scan must
 * look at: NUL, CR or LF. Every other byte is checked per line by the start
 * line's and the fields' own rules; skipping them eight at a time makes the
 * scan of a typical head several times cheaper (it runs twice per proxied
 * request). */
static size_t skip_plain(const uint8_t *buf, size_t i, size_t lim)
{
    while (i + 8 <= lim) {
        uint64_t v;
        memcpy(&v, buf + i, 8);
        if (word_has_zero(v) || word_has_zero(v ^ 0x0d0d0d0d0d0d0d0dull) ||
            word_has_zero(v ^ 0x0a0a0a0a0a0a0a0aull))
            break;
        i += 8;
    }
    while (i < lim && buf[i] != '\0' && buf[i] != '\r' && buf[i] != '\n')
        i++;
    return i;
}

/* Finds and checks the head at <buf>[0..len): every line ends in CRLF, a
 * line opening with SP or HT is obs-fold; both are refused, not repaired: a
 * backend that reads them differently is how requests get smuggled. Refusals
 * that the bytes so far already decide come before the head is whole.
 * Returns the head's length, PT_ENEEDMORE or PT_EMALFORMED. */
static int head_scan(const uint8_t *buf, size_t len, size_t max, struct head *h,
                     start_line_fn *start, void *ctx)
{
    const char *s = (const char *)buf;
    size_t lim = len < max ? len : max;
    size_t line_start = 0;
    bool first = true;
    h->n_hdrs = 0;
    for (size_t i = 0; i < lim; i++) {
        i = skip_plain(buf, i, lim);
        if (i == lim)
            break;
        if (buf[i] == '\0')
            return head_refuse(h, 400, "NUL byte in head");
        if (buf[i] == '\r') {
            if (i + 1 < len && buf[i + 1] != '\n')
                return head_refuse(h, 400, "bare CR");
            continue;
        }
        if (buf[i] != '\n')
            continue;
        if (i == 0 || buf[i - 1] != '\r')
            return head_refuse(h, 400, "bare LF");
        size_t n = i - 1 - line_start;
        if (first) {
            if (i + 1 > PT_HTTP_LINE_MAX)
                return head_refuse(h, 414, "request line too long");
            if (n == 0)
                return head_refuse(h, 400, "empty request line");
            const char *why = NULL;
            int st = start(ctx, s, n, &why);
            if (st)
                return head_refuse(h, st, why);
            first = false;
        } else if (n == 0) {
            return (int)(i + 1);
        } else if (field_line(h, s + line_start, n) < 0) {
            return PT_EMALFORMED;
        }
        if (i + 1 < len && (buf[i + 1] == ' ' || buf[i + 1] == '\t'))
            return head_refuse(h, 400, "obs-fold");
        line_start = i + 1;
    }
    if (first && lim >= PT_HTTP_LINE_MAX)
        return head_refuse(h, 414, "request line too long");
    if (len >= max)
        return head_refuse(h, 431, "request head too large");
    return PT_ENEEDMORE;
}

/* ---- requests ---------------------------------------------------------------- */

/* The methods http-parser knew (so the ones portier proxied before), as
 * static strings: r->method stays a C string for the callers. */
static const char *const methods[] = {
    "GET",       "HEAD",       "POST",     "PUT",      "DELETE",    "OPTIONS",
    "PATCH",     "TRACE",      "CONNECT",  "COPY",     "LOCK",      "MKCOL",
    "MOVE",      "PROPFIND",   "PROPPATCH", "SEARCH",  "UNLOCK",    "BIND",
    "REBIND",    "UNBIND",     "ACL",      "REPORT",   "MKACTIVITY", "CHECKOUT",
    "MERGE",     "M-SEARCH",   "NOTIFY",   "SUBSCRIBE", "UNSUBSCRIBE", "PURGE",
    "MKCALENDAR", "LINK",      "UNLINK",   "SOURCE",
};

static bool is_scheme(const char *p, size_t n, const char *scheme)
{
    size_t k = strlen(scheme);
    return n >= k && strncasecmp(p, scheme, k) == 0;
}

/* Sorts the target of <r> into its form (RFC 9112 3.2). Returns 0 or 400. */
static int target_form(struct pt_http_req *r, const char **why)
{
    const char *u = r->url;
    size_t n = r->url_len;
    /* A fragment is not part of a request target (RFC 9112 3.2); servers
     * that cut the path there and servers that do not disagree on it. */
    *why = "fragment in the request target";
    if (memchr(u, '#', n) != NULL)
        return 400;
    if (u[0] == '/') {
        r->target = PT_HTTP_TARGET_ORIGIN;
        r->path = u;
        r->path_len = n;
        return 0;
    }
    if (n == 1 && u[0] == '*') {
        *why = "asterisk-form target on a method other than OPTIONS";
        if (strcmp(r->method, "OPTIONS") != 0)
            return 400;
        r->target = PT_HTTP_TARGET_ASTERISK;
        r->path = u;
        r->path_len = 1;
        return 0;
    }
    size_t skip;
    if (is_scheme(u, n, "http://")) {
        skip = 7;
    } else if (is_scheme(u, n, "https://")) {
        skip = 8;
        r->abs_https = true;
    } else {
        *why = "request target in neither origin- nor absolute-form";
        return 400;
    }
    size_t a = skip;
    while (a < n && u[a] != '/' && u[a] != '?')
        a++;
    *why = "absolute-form target without a host";
    if (a == skip)
        return 400;
    *why = "userinfo in an absolute-form target";
    if (memchr(u + skip, '@', a - skip) != NULL)
        return 400;
    /* "http://a?x" is "/?x" in origin-form, which is no slice of the target:
     * refused rather than rebuilt (no client sends it). */
    *why = "absolute-form target with a query but no path";
    if (a < n && u[a] != '/')
        return 400;
    r->target = PT_HTTP_TARGET_ABSOLUTE;
    r->abs_authority = u + skip;
    r->abs_authority_len = a - skip;
    if (a == n) {
        r->path = "/";
        r->path_len = 1;
    } else {
        r->path = u + a;
        r->path_len = n - a;
    }
    return 0;
}

/* method SP request-target SP HTTP-version */
static int request_line(void *ctx, const char *p, size_t n, const char **why)
{
    struct pt_http_req *r = ctx;
    size_t m = 0;
    while (m < n && pt_h1body_tchar((uint8_t)p[m]))
        m++;
    *why = m == 0 ? "no method" : "method not followed by one SP";
    if (m == 0 || m == n || p[m] != ' ')
        return 400;
    for (size_t i = 0; i < PT_ARRAY_LEN(methods) && !r->method; i++)
        if (strlen(methods[i]) == m && memcmp(p, methods[i], m) == 0)
            r->method = methods[i];
    *why = "unknown method";
    if (!r->method)
        return 400;
    size_t t = m + 1, te = t;
    while (te < n && p[te] != ' ') {
        uint8_t c = (uint8_t)p[te];
        *why = "control byte or whitespace in the request target";
        if (c < 0x21 || c == 0x7f)
            return 400;
        te++;
    }
    *why = te == t ? "no request target" : "no HTTP version";
    if (te == t || te == n)
        return 400;
    r->url = p + t;
    r->url_len = te - t;
    const char *v = p + te + 1;
    size_t vn = n - te - 1;
    *why = "invalid HTTP version";
    if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return 400;
    r->major = (unsigned short)(v[5] - '0');
    r->minor = (unsigned short)(v[7] - '0');
    *why = "unsupported HTTP version";
    if (r->major != 1 || r->minor > 1)
        return 505;
    *why = "CONNECT is not proxied";
    if (strcmp(r->method, "CONNECT") == 0)
        return 400;
    r->is_head = strcmp(r->method, "HEAD") == 0;
    return target_form(r, why);
}

static int refuse(struct pt_http_req *r, int status, const char *why)
{
    r->status = status;
    r->why = why;
    return PT_EMALFORMED;
}

int pt_http1_parse_request(const uint8_t *buf, size_t len, struct pt_http_req *out)
{
    memset(out, 0, offsetof(struct pt_http_req, hdrs));
    memset(&out->n_hdrs, 0, sizeof(*out) - offsetof(struct pt_http_req, n_hdrs));
    struct head h = {out->hdrs, 0, 0, NULL};
    int end = head_scan(buf, len, PT_HTTP_HEAD_MAX, &h, request_line, out);
    out->n_hdrs = h.n_hdrs;
    if (end == PT_ENEEDMORE)
        return end;
    if (end < 0)
        return refuse(out, h.status, h.why);
    out->head_len = (size_t)end;

    size_t n_cl = 0, n_te = 0, n_host = 0;
    bool conn_upgrade = false, conn_close = false, conn_keep = false;
    const struct pt_http_hdr *upgrade = NULL;
    for (size_t i = 0; i < out->n_hdrs; i++) {
        const struct pt_http_hdr *f = &out->hdrs[i];
        if (name_is(f, "content-length")) {
            if (!parse_length(f->value, f->value_len, &out->content_length))
                return refuse(out, 400, "invalid Content-Length");
            n_cl++;
        } else if (name_is(f, "transfer-encoding")) {
            n_te++;
            /* A request's only coding is chunked: any other is 501 in
             * RFC 9112 6.1, refused here as 400 with the smuggling shapes. */
            if (!value_is(f, "chunked"))
                return refuse(out, 400, "unsupported Transfer-Encoding");
        } else if (name_is(f, "host")) {
            n_host++;
            out->host = f->value;
            out->host_len = f->value_len;
        } else if (name_is(f, "connection")) {
            conn_upgrade |= lists_token(f, "upgrade");
            conn_close |= lists_token(f, "close");
            conn_keep |= lists_token(f, "keep-alive");
        } else if (name_is(f, "upgrade")) {
            upgrade = f;
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
    if (n_cl == 0)
        out->content_length = 0;
    out->has_content_length = n_cl == 1;
    out->chunked = n_te == 1;
    out->body = out->chunked              ? PT_H1BODY_CHUNKED
                : out->has_content_length ? PT_H1BODY_LENGTH
                                          : PT_H1BODY_NONE;
    out->keep_alive = out->minor >= 1 ? !conn_close : conn_keep;
    out->upgrade = conn_upgrade && upgrade != NULL;
    out->authority_mismatch = out->abs_authority && out->host &&
                              !same_ci(out->abs_authority, out->abs_authority_len, out->host,
                                       out->host_len);
    return end;
}

/* ---- responses --------------------------------------------------------------- */

/* HTTP/1.x SP 3DIGIT [SP reason-phrase] */
static int status_line(void *ctx, const char *p, size_t n, const char **why)
{
    struct pt_http_resp *r = ctx;
    *why = "invalid status line";
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return 502;
    r->major = 1;
    r->minor = (unsigned short)(p[7] - '0');
    for (size_t k = 9; k < 12; k++)
        if (p[k] < '0' || p[k] > '9')
            return 502;
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    *why = "status code out of range";
    if (r->status < 100 || r->status > 599)
        return 502;
    *why = "invalid reason phrase";
    if (n > 12 && p[12] != ' ')
        return 502;
    r->reason = p + (n > 12 ? 13 : 12);
    r->reason_len = n > 12 ? n - 13 : 0;
    for (size_t k = 0; k < r->reason_len; k++)
        if (!pt_h1body_vchar((uint8_t)r->reason[k]))
            return 502;
    return 0;
}

struct cl_list {
    uint64_t v;
    bool seen, bad;
};

/* One element of a Content-Length list: valid and equal to the others. */
static bool cl_elem(const char *p, size_t n, void *arg)
{
    struct cl_list *c = arg;
    uint64_t v;
    if (!parse_length(p, n, &v) || (c->seen && v != c->v)) {
        c->bad = true;
        return true;
    }
    c->v = v;
    c->seen = true;
    return false;
}

struct te_list {
    size_t n;          /* codings seen */
    bool chunked_last; /* the last one seen is chunked */
    bool bad;          /* empty or non-token coding, or chunked before the last */
};

static bool te_elem(const char *p, size_t n, void *arg)
{
    struct te_list *t = arg;
    if (t->chunked_last || n == 0) { /* chunked only once, and last */
        t->bad = true;
        return true;
    }
    /* A coding is a token, possibly with parameters: the name decides. */
    size_t k = 0;
    while (k < n && pt_h1body_tchar((uint8_t)p[k]))
        k++;
    if (k == 0 || (k < n && p[k] != ';' && p[k] != ' ' && p[k] != '\t')) {
        t->bad = true;
        return true;
    }
    t->n++;
    t->chunked_last = same_ci(p, k, "chunked", 7) && k == n;
    if (same_ci(p, k, "chunked", 7) && k != n) {
        t->bad = true;
        return true;
    }
    return false;
}

int pt_http1_parse_response(const uint8_t *buf, size_t len, bool req_was_head,
                            struct pt_http_resp *out)
{
    memset(out, 0, offsetof(struct pt_http_resp, hdrs));
    memset(&out->n_hdrs, 0, sizeof(*out) - offsetof(struct pt_http_resp, n_hdrs));
    struct head h = {out->hdrs, 0, 0, NULL};
    int end = head_scan(buf, len, PT_HTTP_RESP_HEAD_MAX, &h, status_line, out);
    out->n_hdrs = h.n_hdrs;
    if (end == PT_ENEEDMORE)
        return end;
    if (end < 0) {
        out->why = h.status == 414   ? "status line too long"
                   : h.status == 431 ? "response head too large or too many fields"
                                     : h.why;
        return PT_EMALFORMED;
    }
    out->head_len = (size_t)end;

    struct cl_list cl = {0, false, false};
    struct te_list te = {0, false, false};
    size_t n_te = 0;
    bool conn_close = false, conn_keep = false, has_upgrade = false;
    for (size_t i = 0; i < out->n_hdrs; i++) {
        const struct pt_http_hdr *f = &out->hdrs[i];
        if (name_is(f, "content-length")) {
            list_any(f, cl_elem, &cl);
        } else if (name_is(f, "transfer-encoding")) {
            n_te++;
            list_any(f, te_elem, &te);
        } else if (name_is(f, "connection")) {
            conn_close |= lists_token(f, "close");
            conn_keep |= lists_token(f, "keep-alive");
        } else if (name_is(f, "upgrade")) {
            has_upgrade = true;
        }
    }
    out->keep_alive = out->minor >= 1 ? !conn_close : conn_keep;
    int st = out->status;
    if (st == 101) {
        if (!has_upgrade) {
            out->why = "101 without Upgrade";
            return PT_EMALFORMED;
        }
        out->upgrade = true;
        out->keep_alive = false;
    }
    out->interim = st >= 100 && st < 200 && st != 101;
    /* RFC 9112 6.3 items 1 and 2: these never have a body, whatever the
     * fields say, so the fields cannot frame anything either. */
    if (req_was_head || (st >= 100 && st < 200) || st == 204 || st == 304) {
        out->body = PT_H1BODY_NONE;
        return end;
    }
    if (cl.bad) {
        out->why = "invalid or conflicting Content-Length";
        return PT_EMALFORMED;
    }
    if (n_te) {
        if (cl.seen) {
            out->why = "both Content-Length and Transfer-Encoding";
            return PT_EMALFORMED;
        }
        if (out->minor == 0) {
            out->why = "Transfer-Encoding on HTTP/1.0";
            return PT_EMALFORMED;
        }
        if (te.bad || te.n == 0) {
            out->why = "invalid Transfer-Encoding";
            return PT_EMALFORMED;
        }
        if (te.chunked_last) {
            out->body = PT_H1BODY_CHUNKED;
        } else {
            out->body = PT_H1BODY_EOF;
            out->keep_alive = false;
        }
        return end;
    }
    if (cl.seen) {
        out->body = PT_H1BODY_LENGTH;
        out->content_length = cl.v;
        return end;
    }
    out->body = PT_H1BODY_EOF;
    out->keep_alive = false;
    return end;
}

/* ---- writers ----------------------------------------------------------------- */

static void put(struct pt_wbuf *b, const char *s)
{
    pt_wbuf_put(b, s, strlen(s));
}

/* "name: value" CRLF, or "name:" CRLF for an empty value. */
static void put_field(struct pt_wbuf *b, const char *name, size_t name_len, const char *v,
                      size_t n)
{
    pt_wbuf_put(b, name, name_len);
    if (n) {
        put(b, ": ");
        pt_wbuf_put(b, v, n);
    } else {
        put(b, ":");
    }
    put(b, "\r\n");
}

static bool is_forwarding(const struct pt_http_hdr *h)
{
    return name_is(h, "x-forwarded-for") || name_is(h, "x-forwarded-proto") ||
           name_is(h, "x-forwarded-host") || name_is(h, "x-real-ip") || name_is(h, "forwarded");
}

/* Is <h> for this hop only? <upgrading>: Upgrade goes on. */
static bool hop_by_hop(const struct pt_http_hdr *hdrs, size_t n, const struct pt_http_hdr *h,
                       bool upgrading)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection", "te",
                                      "trailer"};
    for (size_t i = 0; i < PT_ARRAY_LEN(hop); i++)
        if (name_is(h, hop[i]))
            return true;
    if (name_is(h, "upgrade"))
        return !upgrading;
    /* Fields the peer listed in Connection (any Connection field) are for
     * this hop only; the ones that frame the message or route it stay,
     * whatever Connection says, or the next hop would read another message. */
    if (name_is(h, "host") || name_is(h, "content-length") ||
        name_is(h, "transfer-encoding"))
        return false;
    for (size_t i = 0; i < n; i++)
        if (name_is(&hdrs[i], "connection") && lists_token_n(&hdrs[i], h->name, h->name_len))
            return true;
    return false;
}

/* Appends <v>[0..n) as a Forwarded value (RFC 7239 4): a token as is, else a
 * quoted-string. */
static void put_fwd_value(struct pt_wbuf *b, const char *v, size_t n)
{
    bool token = n > 0;
    for (size_t i = 0; i < n && token; i++)
        token = pt_h1body_tchar((uint8_t)v[i]);
    if (token) {
        pt_wbuf_put(b, v, n);
        return;
    }
    pt_wbuf_u8(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\')
            pt_wbuf_u8(b, '\\');
        pt_wbuf_u8(b, (uint8_t)v[i]);
    }
    pt_wbuf_u8(b, '"');
}

/* Appends the trusted peer's values of every <name> field, each followed
 * by ", " (several fields are one list: RFC 9110 5.3). */
static void put_existing(struct pt_wbuf *b, const struct pt_http_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct pt_http_hdr *h = &r->hdrs[i];
        if (name_is(h, name) && h->value_len) {
            pt_wbuf_put(b, h->value, h->value_len);
            put(b, ", ");
        }
    }
}

void pt_http1_write_request(const struct pt_http_req *r, const struct pt_http_fwd *f,
                            struct pt_wbuf *out)
{
    put(out, r->method);
    pt_wbuf_u8(out, ' ');
    pt_wbuf_put(out, r->path, r->path_len);
    put(out, r->minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
    /* An absolute-form target's authority is the Host when the client sent
     * none (HTTP/1.0). When it sent one, that Host stays: it is what the
     * caller checked against the route, and authority_mismatch tells the
     * caller to refuse the request when the two differ. */
    const char *host = r->host;
    size_t host_len = r->host_len;
    if (!host && r->abs_authority) {
        host = r->abs_authority;
        host_len = r->abs_authority_len;
        put_field(out, "Host", 4, host, host_len);
    }
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct pt_http_hdr *h = &r->hdrs[i];
        if (hop_by_hop(r->hdrs, r->n_hdrs, h, r->upgrade) || is_forwarding(h))
            continue;
        put_field(out, h->name, h->name_len, h->value, h->value_len);
    }
    put(out, "X-Forwarded-For: ");
    if (f->trusted)
        put_existing(out, r, "x-forwarded-for");
    put(out, f->client_ip);
    put(out, "\r\nForwarded: ");
    if (f->trusted)
        put_existing(out, r, "forwarded");
    /* RFC 7239 6: an IPv6 address is bracketed, and so quoted. */
    put(out, "for=");
    if (strchr(f->client_ip, ':')) {
        put(out, "\"[");
        put(out, f->client_ip);
        put(out, "]\"");
    } else {
        put_fwd_value(out, f->client_ip, strlen(f->client_ip));
    }
    if (host && host_len) {
        put(out, ";host=");
        put_fwd_value(out, host, host_len);
    }
    put(out, ";proto=");
    put(out, f->proto);
    put(out, "\r\nX-Real-IP: ");
    put(out, f->client_ip);
    put(out, "\r\nX-Forwarded-Proto: ");
    put(out, f->proto);
    if (host) {
        put(out, "\r\nX-Forwarded-Host: ");
        pt_wbuf_put(out, host, host_len);
    }
    if (r->upgrade)
        put(out, "\r\nConnection: upgrade\r\n\r\n");
    else if (f->close)
        put(out, "\r\nConnection: close\r\n\r\n");
    else
        put(out, "\r\nConnection: keep-alive\r\n\r\n");
}

void pt_http1_write_response_head(const struct pt_http_resp *r, const struct pt_http_resp_fwd *f,
                                  struct pt_wbuf *out)
{
    char line[32];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %03d ", r->status);
    pt_wbuf_put(out, line, (size_t)n);
    if (r->reason_len)
        pt_wbuf_put(out, r->reason, r->reason_len);
    else
        put(out, pt_http1_reason(r->status));
    put(out, "\r\n");
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct pt_http_hdr *h = &r->hdrs[i];
        if (hop_by_hop(r->hdrs, r->n_hdrs, h, r->upgrade))
            continue;
        put_field(out, h->name, h->name_len, h->value, h->value_len);
    }
    if (f->chunk)
        put(out, "Transfer-Encoding: chunked\r\n");
    if (r->upgrade)
        put(out, "Connection: upgrade\r\n");
    else if (!r->interim) /* a 1xx says nothing about the connection */
        put(out, f->close ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
    if (f->extra)
        put(out, f->extra);
    put(out, "\r\n");
}

const char *pt_http1_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
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
    case 505: return "HTTP Version Not Supported";
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
