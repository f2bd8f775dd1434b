/* libFuzzer target for common/http1.c.
 *
 * On any input pt_http1_parse_request answers NEEDMORE (only below the head
 * limit), a refusal with 400/414/431/505 and a reason, or the head's length.
 * An accepted head satisfies what the parser promises and what the proxy
 * relies on: it ends in CRLF CRLF within the input; every slice (target,
 * field names and values, Host) lies inside it; at most one Content-Length,
 * at most one Transfer-Encoding, never both, chunked only on HTTP/1.1, Host
 * present on HTTP/1.1 and unique; no bare CR; field names are tokens, values
 * and target carry no control bytes. The head alone, on an exact-size heap block, gives
 * the same answer and its proper prefixes ask for more (all of them for
 * short heads, a sample for long ones). Then pt_http1_write_request runs on
 * it (as from an untrusted and from a trusted peer) and the forwarded head
 * must parse again, whole, in origin-form, with the same method, path,
 * version class, Host (or the authority of an absolute-form target without
 * Host) and framing
 * (Content-Length / chunked), so the backend frames the body exactly as
 * portier does, and one X-Forwarded-For and Forwarded that end with our
 * client (and are only ours when the peer is untrusted).
 *
 *   make build/fuzz/fuzz_http1
 *   build/fuzz/fuzz_http1 -max_total_time=60 /tmp/http1corpus tests/fuzz/corpus/http1
 *   (-max_len=20000 reaches the 414/431 limits)
 *
 * The seeds smuggle-*, bare-cr-*, control-* and hop-by-hop-* are the shapes
 * that failed these checks before commit 6efbbaf (see test_http1.c).
 */
#include "common/http1.h"

#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_http1: %s:%d: %s\n", __FILE__, __LINE__,     \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

static bool inside(const uint8_t *buf, size_t lim, const char *p, size_t n)
{
    const char *b = (const char *)buf;
    return p != NULL && p >= b && p <= b + lim && n <= (size_t)(b + lim - p);
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static size_t count(const struct pt_http_req *r, const char *name)
{
    size_t c = 0, n = strlen(name);
    for (size_t i = 0; i < r->n_hdrs; i++)
        if (r->hdrs[i].name_len == n && strncasecmp(r->hdrs[i].name, name, n) == 0)
            c++;
    return c;
}

/* Does any Connection field of <r> list <tok>? (independent of http1.c) */
static bool conn_lists(const struct pt_http_req *r, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct pt_http_hdr *h = &r->hdrs[i];
        if (h->name_len != 10 || strncasecmp(h->name, "connection", 10) != 0)
            continue;
        size_t k = 0;
        while (k < h->value_len) {
            while (k < h->value_len && strchr(" \t,", h->value[k]))
                k++;
            size_t st = k;
            while (k < h->value_len && h->value[k] != ',')
                k++;
            size_t e = k;
            while (e > st && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
                e--;
            if (e - st == tl && strncasecmp(h->value + st, tok, tl) == 0)
                return true;
        }
    }
    return false;
}

static bool same(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static void check_accepted(const uint8_t *buf, size_t size, int rc, const struct pt_http_req *r)
{
    size_t hl = (size_t)rc;
    CHECK(hl == r->head_len);
    CHECK(hl >= 4 && hl <= size && hl <= PT_HTTP_HEAD_MAX);
    CHECK(memcmp(buf + hl - 4, "\r\n\r\n", 4) == 0);
    CHECK(memchr(buf, '\0', hl) == NULL);
    for (size_t i = 0; i < hl; i++)
        CHECK(buf[i] != '\r' || (i + 1 < hl && buf[i + 1] == '\n')); /* no bare CR */
    CHECK(r->status == 0 && r->why == NULL);
    CHECK(r->method != NULL && r->major == 1);
    CHECK(r->is_head == (strcmp(r->method, "HEAD") == 0));
    CHECK(strcmp(r->method, "CONNECT") != 0);
    CHECK(r->path != NULL && r->path_len > 0);
    CHECK(r->path[0] == '/' || (r->path_len == 1 && r->path[0] == '*'));
    CHECK(memchr(r->url, '#', r->url_len) == NULL);
    if (r->target == PT_HTTP_TARGET_ABSOLUTE) {
        CHECK(r->abs_authority && r->abs_authority_len > 0);
        CHECK(memchr(r->abs_authority, '@', r->abs_authority_len) == NULL);
        CHECK(inside(buf, hl, r->path, r->path_len) || (r->path_len == 1 && r->path[0] == '/'));
    } else {
        CHECK(r->abs_authority == NULL && !r->authority_mismatch);
        CHECK(r->path == r->url && r->path_len == r->url_len);
        CHECK(r->target == PT_HTTP_TARGET_ORIGIN || strcmp(r->method, "OPTIONS") == 0);
    }
    CHECK(r->body == (r->chunked ? PT_H1BODY_CHUNKED
                      : r->has_content_length ? PT_H1BODY_LENGTH : PT_H1BODY_NONE));

    /* The request line. */
    const uint8_t *eol = memchr(buf, '\n', hl);
    CHECK(eol != NULL && (size_t)(eol - buf) + 1 <= PT_HTTP_LINE_MAX);
    CHECK(inside(buf, (size_t)(eol - buf), r->url, r->url_len) && r->url_len > 0);
    for (size_t i = 0; i < r->url_len; i++) {
        uint8_t c = (uint8_t)r->url[i];
        CHECK(c > 0x20 && c != 0x7f);
    }

    CHECK(r->n_hdrs <= PT_HTTP_HEADERS_MAX);
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct pt_http_hdr *h = &r->hdrs[i];
        CHECK(inside(buf, hl, h->name, h->name_len) && h->name_len > 0);
        CHECK(inside(buf, hl, h->value, h->value_len));
        CHECK(h->value >= h->name + h->name_len);
        for (size_t k = 0; k < h->name_len; k++)
            CHECK(is_tchar((uint8_t)h->name[k]));
        for (size_t k = 0; k < h->value_len; k++) {
            uint8_t c = (uint8_t)h->value[k];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
    }

    /* Framing and Host: the smuggling shapes. */
    size_t n_cl = count(r, "content-length"), n_te = count(r, "transfer-encoding");
    size_t n_host = count(r, "host");
    CHECK(n_cl <= 1 && n_te <= 1 && !(n_cl && n_te));
    CHECK(r->has_content_length == (n_cl == 1));
    CHECK(r->chunked == (n_te == 1));
    CHECK(!(r->has_content_length && r->chunked));
    CHECK(!r->chunked || r->minor >= 1);
    if (!r->has_content_length)
        CHECK(r->content_length == 0);
    CHECK(n_host <= 1);
    if (r->minor >= 1)
        CHECK(n_host == 1);
    if (n_host == 1) {
        const struct pt_http_hdr *h = pt_http1_header(r, "host");
        CHECK(h != NULL && r->host == h->value && r->host_len == h->value_len);
        CHECK(inside(buf, hl, r->host, r->host_len));
    } else {
        CHECK(r->host == NULL && r->host_len == 0);
    }
    if (r->upgrade)
        CHECK(count(r, "upgrade") >= 1 && count(r, "connection") >= 1);
}

/* The head alone decides the same, and its proper prefixes ask for more.
 * Each copy ends its heap block exactly, so ASan sees any overread. */
static void check_exact(const uint8_t *data, size_t hl, int rc)
{
    uint8_t *copy = malloc(hl);
    CHECK(copy != NULL);
    struct pt_http_req *again = malloc(sizeof(*again));
    CHECK(again != NULL);
    memcpy(copy, data, hl);
    CHECK(pt_http1_parse_request(copy, hl, again) == rc);
    size_t step = hl <= 256 ? 1 : hl / 61 + 1;
    for (size_t k = 0; k < hl; k += (k + 4 >= hl ? 1 : step)) {
        memcpy(copy + hl - k, data, k);
        CHECK(pt_http1_parse_request(copy + hl - k, k, again) == PT_ENEEDMORE);
    }
    free(again);
    free(copy);
}

/* Forwards <r> and parses the result: what the backend will read. */
/* The value of the only <name> field of <b>. */
static const struct pt_http_hdr *only(const struct pt_http_req *b, const char *name)
{
    CHECK(count(b, name) == 1);
    return pt_http1_header(b, name);
}

static bool ends_with(const struct pt_http_hdr *h, const char *s)
{
    size_t n = strlen(s);
    return h->value_len >= n && memcmp(h->value + h->value_len - n, s, n) == 0;
}

static void check_forward(const struct pt_http_req *r, bool close, bool trusted)
{
    struct pt_wbuf out = {0};
    struct pt_http_fwd f = {"2001:db8::7", close ? "http" : "https", close, trusted};
    pt_http1_write_request(r, &f, &out);
    CHECK(out.len > 0);
    uint8_t *copy = malloc(out.len);
    CHECK(copy != NULL);
    memcpy(copy, out.data, out.len);
    struct pt_http_req *b = malloc(sizeof(*b));
    CHECK(b != NULL);
    int rc = pt_http1_parse_request(copy, out.len, b);
    if (rc == PT_EMALFORMED && b->status == 431 &&
        (out.len > PT_HTTP_HEAD_MAX || r->n_hdrs + 7 > PT_HTTP_HEADERS_MAX)) {
        /* Our own fields pushed a head near a limit over it: a backend may
         * refuse it too, but it cannot read it differently. */
        goto out;
    }
    CHECK(rc == (int)out.len);
    CHECK(strcmp(b->method, r->method) == 0);
    CHECK(same(b->url, b->url_len, r->path, r->path_len));
    CHECK(b->target != PT_HTTP_TARGET_ABSOLUTE);
    CHECK(b->minor == (r->minor ? 1 : 0));
    if (r->abs_authority && !r->host) {
        CHECK(b->host && same(b->host, b->host_len, r->abs_authority, r->abs_authority_len));
    } else {
        CHECK((b->host == NULL) == (r->host == NULL));
        if (r->host)
            CHECK(same(b->host, b->host_len, r->host, r->host_len));
    }
    CHECK(b->has_content_length == r->has_content_length);
    CHECK(b->content_length == r->content_length);
    CHECK(b->chunked == r->chunked);
    CHECK(b->upgrade == r->upgrade);
    CHECK(b->keep_alive == (r->upgrade ? b->minor >= 1 : !close));
    CHECK(count(b, "x-real-ip") == 1);
    CHECK(count(b, "x-forwarded-proto") == 1 && count(b, "connection") == 1);
    CHECK(count(b, "x-forwarded-host") == (b->host ? 1u : 0u));
    CHECK(count(b, "host") == (r->host || r->abs_authority ? 1u : 0u));
    const struct pt_http_hdr *xff = only(b, "x-forwarded-for");
    const struct pt_http_hdr *fwd = only(b, "forwarded");
    CHECK(ends_with(xff, "2001:db8::7"));
    if (!trusted) {
        CHECK(same(xff->value, xff->value_len, "2001:db8::7", 11));
        CHECK(fwd->value_len > 19 && memcmp(fwd->value, "for=\"[2001:db8::7]\"", 19) == 0);
        CHECK(memchr(fwd->value, ',', fwd->value_len) == NULL ||
              (b->host && memchr(b->host, ',', b->host_len) != NULL));
    }
    /* Fields any Connection field names are gone, but Host and framing. */
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct pt_http_hdr *h = &r->hdrs[i];
        char name[256];
        if (h->name_len >= sizeof(name))
            continue;
        memcpy(name, h->name, h->name_len);
        name[h->name_len] = '\0';
        if (conn_lists(r, name) && strcasecmp(name, "host") != 0 &&
            strcasecmp(name, "content-length") != 0 &&
            strcasecmp(name, "transfer-encoding") != 0 &&
            !(r->upgrade && strcasecmp(name, "upgrade") == 0) &&
            strcasecmp(name, "connection") != 0 && strcasecmp(name, "x-forwarded-for") != 0 &&
            strcasecmp(name, "x-real-ip") != 0 && strcasecmp(name, "x-forwarded-proto") != 0 &&
            strcasecmp(name, "x-forwarded-host") != 0 && strcasecmp(name, "forwarded") != 0)
            CHECK(count(b, name) == 0);
    }
    CHECK(count(b, "keep-alive") == 0 && count(b, "proxy-connection") == 0);
    CHECK(count(b, "te") == 0 && count(b, "trailer") == 0);
    if (!r->upgrade)
        CHECK(count(b, "upgrade") == 0);
out:
    free(b);
    free(copy);
    pt_wbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_http_req *r = malloc(sizeof(*r));
    CHECK(r != NULL);
    int rc = pt_http1_parse_request(data, size, r);
    if (rc == PT_ENEEDMORE) {
        CHECK(size < PT_HTTP_HEAD_MAX);
        const uint8_t *lf = memchr(data, '\n', size);
        CHECK(lf != NULL || size < PT_HTTP_LINE_MAX);
        CHECK(memchr(data, '\0', size) == NULL);
    } else if (rc == PT_EMALFORMED) {
        CHECK(r->status == 400 || r->status == 414 || r->status == 431 || r->status == 505);
        CHECK(r->why != NULL && r->why[0] != '\0');
    } else {
        CHECK(rc > 0);
        check_accepted(data, size, rc, r);
        check_exact(data, (size_t)rc, rc);
        check_forward(r, false, false);
        check_forward(r, true, false);
        check_forward(r, false, true);
    }
    free(r);
    return 0;
}
