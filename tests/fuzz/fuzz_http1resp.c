/* libFuzzer target for pt_http1_parse_response and
 * pt_http1_write_response_head (common/http1.c).
 *
 * The first byte says whether the request was HEAD; the rest is what a
 * backend sent. On any input the parser answers NEEDMORE (only below the
 * head limit, and with no NUL byte), a refusal with a reason, or the head's
 * length. An accepted head ends in CRLF CRLF, has no bare CR, a status of
 * 100 to 599, token field names and values without control bytes, and a
 * body framing that follows RFC 9112 6.3 as re-derived here from the
 * fields: no body for HEAD, 1xx, 204 and 304; never both Content-Length and
 * Transfer-Encoding; EOF framing never keeps the connection. The head alone
 * on an exact heap block gives the same answer and its proper prefixes ask
 * for more. The head written for the client parses again with the same
 * status and framing.
 *
 *   make build/fuzz/fuzz_http1resp
 *   build/fuzz/fuzz_http1resp -max_total_time=60 /tmp/respcorpus tests/fuzz/corpus/http1resp
 */
#include "common/http1.h"

#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_http1resp: %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

static size_t count(const struct pt_http_resp *r, const char *name)
{
    size_t c = 0, n = strlen(name);
    for (size_t i = 0; i < r->n_hdrs; i++)
        if (r->hdrs[i].name_len == n && strncasecmp(r->hdrs[i].name, name, n) == 0)
            c++;
    return c;
}

static void check_accepted(const uint8_t *buf, size_t size, bool head, int rc,
                           const struct pt_http_resp *r)
{
    size_t hl = (size_t)rc;
    CHECK(hl == r->head_len && hl >= 4 && hl <= size && hl <= PT_HTTP_RESP_HEAD_MAX);
    CHECK(memcmp(buf + hl - 4, "\r\n\r\n", 4) == 0);
    CHECK(memchr(buf, '\0', hl) == NULL);
    for (size_t i = 0; i < hl; i++)
        CHECK(buf[i] != '\r' || (i + 1 < hl && buf[i + 1] == '\n'));
    CHECK(r->why == NULL);
    CHECK(r->major == 1 && r->minor <= 1);
    CHECK(r->status >= 100 && r->status <= 599);
    CHECK(memcmp(buf, "HTTP/1.", 7) == 0);
    for (size_t i = 0; i < r->n_hdrs; i++) {
        const struct pt_http_hdr *h = &r->hdrs[i];
        CHECK(h->name_len > 0);
        CHECK(h->name >= (const char *)buf && h->value + h->value_len <= (const char *)buf + hl);
        for (size_t k = 0; k < h->name_len; k++)
            CHECK(pt_h1body_tchar((uint8_t)h->name[k]));
        for (size_t k = 0; k < h->value_len; k++)
            CHECK(pt_h1body_vchar((uint8_t)h->value[k]));
    }
    size_t n_cl = count(r, "content-length"), n_te = count(r, "transfer-encoding");
    bool nobody = head || r->status < 200 || r->status == 204 || r->status == 304;
    if (nobody)
        CHECK(r->body == PT_H1BODY_NONE);
    else
        CHECK(r->body != PT_H1BODY_NONE && !(n_cl && n_te));
    if (!nobody && n_te)
        CHECK(r->body == PT_H1BODY_CHUNKED || r->body == PT_H1BODY_EOF);
    if (!nobody && n_cl)
        CHECK(r->body == PT_H1BODY_LENGTH);
    if (!nobody && !n_cl && !n_te)
        CHECK(r->body == PT_H1BODY_EOF);
    if (r->body != PT_H1BODY_LENGTH)
        CHECK(r->content_length == 0);
    if (r->body == PT_H1BODY_EOF || r->upgrade)
        CHECK(!r->keep_alive);
    CHECK(r->upgrade == (r->status == 101));
    if (r->upgrade)
        CHECK(count(r, "upgrade") >= 1);
    CHECK(r->interim == (r->status < 200 && r->status != 101));
}

static void check_exact(const uint8_t *data, size_t hl, bool head, int rc)
{
    uint8_t *copy = malloc(hl);
    struct pt_http_resp *again = malloc(sizeof(*again));
    CHECK(copy != NULL && again != NULL);
    memcpy(copy, data, hl);
    CHECK(pt_http1_parse_response(copy, hl, head, again) == rc);
    size_t step = hl <= 256 ? 1 : hl / 61 + 1;
    for (size_t k = 0; k < hl; k += (k + 4 >= hl ? 1 : step)) {
        memcpy(copy + hl - k, data, k);
        CHECK(pt_http1_parse_response(copy + hl - k, k, head, again) == PT_ENEEDMORE);
    }
    free(again);
    free(copy);
}

static void check_forward(const struct pt_http_resp *r, bool head, bool close)
{
    struct pt_wbuf out = {0};
    struct pt_http_resp_fwd f = {close, r->body == PT_H1BODY_EOF && !close, NULL};
    pt_http1_write_response_head(r, &f, &out);
    uint8_t *copy = malloc(out.len);
    struct pt_http_resp *b = malloc(sizeof(*b));
    CHECK(copy != NULL && b != NULL);
    memcpy(copy, out.data, out.len);
    int rc = pt_http1_parse_response(copy, out.len, head, b);
    if (rc == PT_EMALFORMED && (out.len > PT_HTTP_RESP_HEAD_MAX || r->n_hdrs + 2 > PT_HTTP_HEADERS_MAX))
        goto out; /* our fields pushed a head near a limit over it */
    CHECK(rc == (int)out.len);
    CHECK(b->status == r->status && b->minor == 1);
    CHECK(b->upgrade == r->upgrade && b->interim == r->interim);
    if (f.chunk)
        CHECK(b->body == PT_H1BODY_CHUNKED || b->body == PT_H1BODY_NONE);
    else
        CHECK(b->body == r->body && b->content_length == r->content_length);
    if (!r->interim && !r->upgrade)
        CHECK(b->keep_alive == (!close && b->body != PT_H1BODY_EOF));
    CHECK(count(b, "keep-alive") == 0 && count(b, "proxy-connection") == 0);
    CHECK(count(b, "te") == 0 && count(b, "trailer") == 0);
    CHECK(count(b, "connection") == (r->interim ? 0u : 1u));
out:
    free(b);
    free(copy);
    pt_wbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool head = data[0] & 1;
    data++;
    size--;
    struct pt_http_resp *r = malloc(sizeof(*r));
    CHECK(r != NULL);
    int rc = pt_http1_parse_response(data, size, head, r);
    if (rc == PT_ENEEDMORE) {
        CHECK(size < PT_HTTP_RESP_HEAD_MAX);
        CHECK(memchr(data, '\0', size) == NULL);
    } else if (rc == PT_EMALFORMED) {
        CHECK(r->why != NULL && r->why[0] != '\0');
    } else {
        CHECK(rc > 0);
        check_accepted(data, size, head, rc, r);
        check_exact(data, (size_t)rc, head, rc);
        check_forward(r, head, false);
        check_forward(r, head, true);
    }
    free(r);
    return 0;
}
