/* libFuzzer target for common/h2h1.c (HTTP/2 header blocks in, HTTP/1.1
 * heads out).
 *
 * The input is a header block as nghttp2 hands it over, encoded for the
 * fuzzer as fields "name NUL value NUL" (a first byte of 1 says the request
 * has a body). Whatever the block, an accepted one must give a head that
 * common/http1.c accepts whole: the same length, one Host at most, framing
 * that matches (chunked exactly when a body came without Content-Length), no
 * connection-specific field; and no CR, LF or NUL of a value can reach it
 * except as the head's own line ends.
 *
 *   make build/fuzz/fuzz_h2h1
 *   build/fuzz/fuzz_h2h1 -max_total_time=60 /tmp/h2h1corpus tests/fuzz/corpus/h2h1 */
#include "common/h2h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_h2h1: %s:%d: %s\n", __FILE__, __LINE__,      \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

static struct pt_http_hdr f[PT_H2H1_FIELDS_MAX + 1];
static struct pt_http_req req;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool body = data[0] == 1;
    size_t n = 0, off = 1;
    bool has_length = false;
    while (off < size && n <= PT_H2H1_FIELDS_MAX) {
        const uint8_t *nz = memchr(data + off, 0, size - off);
        if (nz == NULL)
            break;
        const uint8_t *v = nz + 1;
        const uint8_t *vz = memchr(v, 0, size - (size_t)(v - data));
        size_t vl = vz ? (size_t)(vz - v) : size - (size_t)(v - data);
        f[n] = (struct pt_http_hdr){(const char *)data + off, (size_t)(nz - data) - off,
                                    (const char *)v, vl};
        has_length |= f[n].name_len == 14 && memcmp(f[n].name, "content-length", 14) == 0;
        n++;
        off = (size_t)(v - data) + vl + 1;
    }
    struct pt_wbuf out = {0};
    const char *why = NULL;
    int rc = pt_h2h1_request(f, n, body, &out, &why);
    if (rc != 0) {
        CHECK(rc == PT_EMALFORMED && why != NULL);
        pt_wbuf_free(&out);
        return 0;
    }
    CHECK(memchr(out.data, 0, out.len) == NULL);
    int prc = pt_http1_parse_request(out.data, out.len, &req);
    if (prc > 0) {
        CHECK((size_t)prc == out.len); /* nothing after the head: no second request */
        CHECK(pt_http1_header(&req, "connection") == NULL);
        CHECK(pt_http1_header(&req, "upgrade") == NULL);
        if (body && !has_length)
            CHECK(req.body == PT_H1BODY_CHUNKED);
        if (!body)
            CHECK(req.body != PT_H1BODY_CHUNKED);
    } else {
        /* Refused by the HTTP/1.1 checks (bad Content-Length, method not in
         * the table, too long...): the engine answers with that status. */
        CHECK(prc == PT_EMALFORMED || (prc == PT_ENEEDMORE && out.len >= PT_HTTP_HEAD_MAX));
    }
    pt_wbuf_free(&out);
    return 0;
}
