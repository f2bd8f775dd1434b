/* Unit tests for common/h2h1.c: HTTP/2 header blocks to HTTP/1.1 heads.
 *
 * An accepted block must give a head that common/http1.c accepts whole, with
 * the method, path, Host and framing the block said; each refused shape is
 * one of RFC 9113 8.2/8.3's (the ones a lenient translator turns into
 * HTTP/1.1 request smuggling). */
#include "common/h2h1.h"

#include <criterion/criterion.h>

#define F(n, v) {(n), sizeof(n) - 1, (v), sizeof(v) - 1}
#define BASE F(":method", "GET"), F(":scheme", "https"), F(":authority", "a.test"), F(":path", "/x?y")

static struct pt_http_req req;

static int run(const struct pt_http_hdr *f, size_t n, bool body, struct pt_wbuf *out)
{
    const char *why = NULL;
    int rc = pt_h2h1_request(f, n, body, out, &why);
    if (rc != 0)
        cr_assert(why != NULL && why[0]);
    return rc;
}

static void parses(const struct pt_wbuf *out)
{
    cr_assert_eq(pt_http1_parse_request(out->data, out->len, &req), (int)out->len, "%.*s",
                 (int)out->len, out->data);
}

Test(h2h1, simple_get)
{
    struct pt_http_hdr f[] = {BASE, F("accept", "*/*")};
    struct pt_wbuf out = {0};
    cr_assert_eq(run(f, 5, false, &out), 0);
    parses(&out);
    cr_assert_str_eq(req.method, "GET");
    cr_assert(req.path_len == 4 && memcmp(req.path, "/x?y", 4) == 0);
    cr_assert(req.host_len == 6 && memcmp(req.host, "a.test", 6) == 0);
    cr_assert_eq(req.body, PT_H1BODY_NONE);
    cr_assert(pt_http1_header(&req, "accept") != NULL);
    pt_wbuf_free(&out);
}

Test(h2h1, body_without_length_is_chunked)
{
    struct pt_http_hdr f[] = {F(":method", "POST"), F(":scheme", "https"),
                              F(":authority", "a.test"), F(":path", "/up")};
    struct pt_wbuf out = {0};
    cr_assert_eq(run(f, 4, true, &out), 0);
    parses(&out);
    cr_assert_eq(req.body, PT_H1BODY_CHUNKED);
    pt_wbuf_free(&out);
}

Test(h2h1, body_with_length_keeps_it)
{
    struct pt_http_hdr f[] = {F(":method", "POST"), F(":scheme", "https"),
                              F(":authority", "a.test"), F(":path", "/up"),
                              F("content-length", "5")};
    struct pt_wbuf out = {0};
    cr_assert_eq(run(f, 5, true, &out), 0);
    parses(&out);
    cr_assert_eq(req.body, PT_H1BODY_LENGTH);
    cr_assert_eq(req.content_length, 5);
    pt_wbuf_free(&out);
}

Test(h2h1, cookies_joined)
{
    struct pt_http_hdr f[] = {BASE, F("cookie", "a=1"), F("x", "y"), F("cookie", "b=2")};
    struct pt_wbuf out = {0};
    cr_assert_eq(run(f, 7, false, &out), 0);
    parses(&out);
    const struct pt_http_hdr *c = pt_http1_header(&req, "cookie");
    cr_assert(c && c->value_len == 8 && memcmp(c->value, "a=1; b=2", 8) == 0);
    pt_wbuf_free(&out);
}

Test(h2h1, host_without_authority)
{
    struct pt_http_hdr f[] = {F(":method", "GET"), F(":scheme", "https"), F(":path", "/"),
                              F("host", "b.test")};
    struct pt_wbuf out = {0};
    cr_assert_eq(run(f, 4, false, &out), 0);
    parses(&out);
    cr_assert(req.host_len == 6 && memcmp(req.host, "b.test", 6) == 0);
    pt_wbuf_free(&out);
}

Test(h2h1, te_trailers_allowed_and_dropped)
{
    struct pt_http_hdr f[] = {BASE, F("te", "trailers")};
    struct pt_wbuf out = {0};
    cr_assert_eq(run(f, 5, false, &out), 0);
    parses(&out);
    cr_assert_null(pt_http1_header(&req, "te"));
    pt_wbuf_free(&out);
}

/* Each shape alone on top of a valid GET must be refused. */
Test(h2h1, refused_shapes)
{
    static const struct {
        struct pt_http_hdr f;
        bool prepend; /* before the pseudo-headers */
    } bad[] = {
        {F("connection", "close"), false},
        {F("keep-alive", "5"), false},
        {F("proxy-connection", "x"), false},
        {F("transfer-encoding", "chunked"), false},
        {F("upgrade", "websocket"), false},
        {F("te", "gzip"), false},
        {F("X-Upper", "1"), false},
        {F("x a", "1"), false},
        {F("", "1"), false},
        {F("x-a", "b\r\nGET /evil HTTP/1.1"), false},
        {F("x-a", "b\nc"), false},
        {{"x-a", 3, "b\0c", 3}, false},
        {F("x-a", " lead"), false},
        {F("x-a", "trail\t"), false},
        {F(":foo", "1"), false},      /* unknown pseudo-header */
        {F(":path", "/again"), false}, /* repeated */
        {F("host", "other.test"), false},
        {F("x-a", "1"), true}, /* regular field before the pseudo-headers */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pt_http_hdr base[] = {BASE};
        struct pt_http_hdr f[5];
        size_t k = 0;
        if (bad[i].prepend)
            f[k++] = bad[i].f;
        for (size_t j = 0; j < 4; j++)
            f[k++] = base[j];
        if (!bad[i].prepend)
            f[k++] = bad[i].f;
        struct pt_wbuf out = {0};
        cr_assert_eq(run(f, k, false, &out), PT_EMALFORMED, "shape %zu accepted", i);
        pt_wbuf_free(&out);
    }
}

Test(h2h1, refused_pseudo_use)
{
    struct pt_http_hdr no_path[] = {F(":method", "GET"), F(":scheme", "https"),
                                    F(":authority", "a.test")};
    struct pt_http_hdr connect[] = {F(":method", "CONNECT"), F(":scheme", "https"),
                                    F(":authority", "a.test"), F(":path", "/")};
    struct pt_http_hdr abs_path[] = {F(":method", "GET"), F(":scheme", "https"),
                                     F(":authority", "a.test"), F(":path", "http://b/")};
    struct pt_http_hdr space_path[] = {F(":method", "GET"), F(":scheme", "https"),
                                       F(":authority", "a.test"), F(":path", "/a HTTP/1.1")};
    struct pt_http_hdr lower_method[] = {F(":method", "get"), F(":scheme", "https"),
                                         F(":authority", "a.test"), F(":path", "/")};
    struct pt_wbuf out = {0};
    cr_assert_eq(run(no_path, 3, false, &out), PT_EMALFORMED);
    cr_assert_eq(run(connect, 4, false, &out), PT_EMALFORMED);
    cr_assert_eq(run(abs_path, 4, false, &out), PT_EMALFORMED);
    cr_assert_eq(run(space_path, 4, false, &out), PT_EMALFORMED);
    cr_assert_eq(run(lower_method, 4, false, &out), PT_EMALFORMED);
    pt_wbuf_free(&out);
}

Test(h2h1, trailers)
{
    struct pt_wbuf out = {0};
    struct pt_http_hdr ok = F("x-sum", "42");
    cr_assert_eq(pt_h2h1_trailer(&ok, &out), 0);
    cr_assert(out.len == 11 && memcmp(out.data, "x-sum: 42\r\n", 11) == 0);
    struct pt_http_hdr bad[] = {F("content-length", "1"), F("host", "x"),
                                F("transfer-encoding", "chunked"), F("x-forwarded-for", "1.2.3.4"),
                                F(":path", "/"), F("x-a", "b\r\nc")};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(pt_h2h1_trailer(&bad[i], &out), PT_EMALFORMED, "trailer %zu", i);
    pt_wbuf_free(&out);
}
