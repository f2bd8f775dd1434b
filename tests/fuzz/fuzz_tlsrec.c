/* libFuzzer target for worker/tlsrec.c (the TLS 1.3 record layer a handed-
 * over offload connection runs on: every byte of it comes from the client).
 *
 * The first byte picks the mode:
 *  - even: the rest is raw network bytes, opened record by record as the
 *    worker does; whatever they are, a call consumes nothing or exactly one
 *    record inside the buffer, gives at most 2^14 bytes of plaintext, and an
 *    invalid record ends the stream (the worker closes).
 *  - odd: the rest is plaintext the "client" side (the same secrets, swapped)
 *    seals; byte 1 of the input, if any, names one sealed byte to flip. The
 *    unflipped records must open to exactly that plaintext, in order; a
 *    flipped one must never open to other bytes (INVALID or, in a length
 *    field, NEED).
 * The module is compiled in here: it lives in worker/, which the fuzz
 * build does not link.
 *
 *   make build/fuzz/fuzz_tlsrec
 *   build/fuzz/fuzz_tlsrec -max_total_time=60 /tmp/tlsreccorpus tests/fuzz/corpus/tlsrec
 */
#include "worker/tlsrec.c"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_tlsrec: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                             \
        }                                                                        \
    } while (0)

static const uint8_t sec_a[48] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t sec_b[48] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
static uint8_t plain[PT_TLSREC_PLAIN_MAX];

static uint16_t suite_of(uint8_t b)
{
    static const uint16_t s[3] = {PT_TLSREC_AES_128_GCM_SHA256, PT_TLSREC_AES_256_GCM_SHA384,
                                  PT_TLSREC_CHACHA20_POLY1305_SHA256};
    return s[(b >> 1) % 3];
}

/* Opens <in> record by record; appends application bytes to <got>. */
static enum pt_tlsrec_res open_all(struct pt_tlsrec *srv, const uint8_t *in, size_t len,
                                   struct pt_wbuf *got)
{
    struct pt_wbuf out = {0};
    enum pt_tlsrec_res res = PT_TLSREC_NEED;
    while (len > 0) {
        size_t n = 0, used = 0;
        uint8_t alert = 0;
        res = pt_tlsrec_open(srv, in, len, plain, &n, &used, &out, &alert);
        CHECK(used <= len);
        CHECK(n <= 16384);
        if (res == PT_TLSREC_NEED) {
            CHECK(used == 0);
            break;
        }
        if (res == PT_TLSREC_INVALID) /* a bad header is refused before its body */
            break;
        CHECK(used >= 5 + 17 && used <= PT_TLSREC_WIRE_MAX);
        if (res == PT_TLSREC_EOF)
            break;
        if (res == PT_TLSREC_DATA)
            pt_wbuf_put(got, plain, n);
        in += used;
        len -= used;
    }
    pt_wbuf_free(&out);
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint16_t suite = suite_of(data[0]);
    size_t hl = suite == PT_TLSREC_AES_256_GCM_SHA384 ? 48 : 32;
    struct pt_tlsrec srv, cli;
    CHECK(pt_tlsrec_init(&srv, suite, sec_a, sec_b, hl));
    struct pt_wbuf got = {0};
    if ((data[0] & 1) == 0) {
        open_all(&srv, data + 1, size - 1, &got);
        pt_wbuf_free(&got);
        return 0;
    }
    CHECK(pt_tlsrec_init(&cli, suite, sec_b, sec_a, hl));
    size_t flip = size > 1 ? data[1] : 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct pt_wbuf wire = {0};
    CHECK(pt_tlsrec_seal(&cli, p, n, &wire));
    bool flipped = flip < wire.len && size > 1 && (data[1] & 0x80) == 0;
    if (flipped)
        wire.data[flip] ^= 0x5a;
    enum pt_tlsrec_res res = open_all(&srv, wire.data, wire.len, &got);
    if (!flipped) {
        CHECK(got.len == n && (n == 0 || memcmp(got.data, p, n) == 0));
        CHECK(n == 0 || res == PT_TLSREC_DATA);
    } else {
        /* what opened before the broken record is a prefix of the input */
        CHECK(got.len <= n && (got.len == 0 || memcmp(got.data, p, got.len) == 0));
        CHECK(res == PT_TLSREC_INVALID || res == PT_TLSREC_NEED);
    }
    pt_wbuf_free(&wire);
    pt_wbuf_free(&got);
    return 0;
}
