/* libFuzzer target for common/h1body.c.
 *
 * The first byte picks the mode (chunked mostly, else LENGTH with a length
 * from the next bytes, or EOF) and a split stride; the rest is the body.
 * The input is decoded whole, then in pieces of the stride and cut at a
 * second point: payload, trailer lines, final event, where the body ended
 * and the refusal reason must be identical. DATA slices lie inside what was
 * consumed, NEED_MORE consumes everything, trailer lines are canonical
 * ("token: value", no CTL, no framing field); a LENGTH body gives exactly
 * its length before DONE. A complete chunked body re-encoded with the
 * writers decodes again to the same payload and trailers, ending exactly at
 * its end: what the proxy sends on frames as what it read.
 *
 *   make build/fuzz/fuzz_h1body
 *   build/fuzz/fuzz_h1body -max_total_time=60 /tmp/h1bodycorpus tests/fuzz/corpus/h1body
 */
#include "common/h1body.h"

#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_h1body: %s:%d: %s\n", __FILE__, __LINE__,    \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

struct res {
    struct pt_wbuf data;
    struct pt_wbuf trl; /* lines, each followed by '\n' */
    enum pt_h1body_ev end;
    size_t consumed;
    const char *why;
    size_t n_trl;
};

static void check_trailer(const uint8_t *p, size_t n)
{
    size_t i = 0;
    CHECK(n > 0);
    while (i < n && pt_h1body_tchar(p[i]))
        i++;
    CHECK(i > 0 && i < n && p[i] == ':');
    static const char *const no[] = {"content-length", "transfer-encoding", "host",
                                     "connection", "trailer", "x-forwarded-for"};
    for (size_t k = 0; k < PT_ARRAY_LEN(no); k++)
        CHECK(!(strlen(no[k]) == i && strncasecmp((const char *)p, no[k], i) == 0));
    if (i + 1 < n) {
        CHECK(p[i + 1] == ' ' && i + 2 < n);
        CHECK(p[i + 2] != ' ' && p[i + 2] != '\t' && p[n - 1] != ' ' && p[n - 1] != '\t');
    }
    for (size_t k = i + 1; k < n; k++)
        CHECK(pt_h1body_vchar(p[k]));
}

/* Decodes <in>[0..len) in pieces of <stride> (0: whole), the first piece
 * ending at <cut> when cut is not 0. Each piece is an exact heap copy. */
static void decode(const uint8_t *in, size_t len, enum pt_h1body_mode mode, uint64_t cl,
                   size_t stride, size_t cut, struct res *r)
{
    struct pt_h1body *b = malloc(sizeof(*b));
    CHECK(b != NULL);
    memset(r, 0, sizeof(*r));
    pt_h1body_init(b, mode, cl);
    r->end = PT_H1BODY_NEED_MORE;
    size_t pos = 0;
    bool first = true;
    do {
        size_t plen = len - pos;
        if (first && cut && cut < plen)
            plen = cut;
        else if (stride && stride < plen)
            plen = stride;
        first = false;
        uint8_t *p = malloc(plen ? plen : 1);
        CHECK(p != NULL);
        memcpy(p, in + pos, plen);
        size_t off = 0;
        for (;;) {
            size_t used;
            const uint8_t *o;
            size_t ol;
            enum pt_h1body_ev ev = pt_h1body_step(b, p + off, plen - off, &used, &o, &ol);
            CHECK(used <= plen - off);
            if (ev == PT_H1BODY_DATA) {
                CHECK(ol > 0 && o >= p + off && o + ol <= p + off + used);
                pt_wbuf_put(&r->data, o, ol);
            } else if (ev == PT_H1BODY_TRAILER) {
                CHECK(mode == PT_H1BODY_CHUNKED);
                CHECK(ol <= PT_H1BODY_TRAILER_LINE_MAX);
                check_trailer(o, ol);
                pt_wbuf_put(&r->trl, o, ol);
                pt_wbuf_u8(&r->trl, '\n');
                r->n_trl++;
                CHECK(r->n_trl <= PT_H1BODY_TRAILERS_MAX);
            } else {
                CHECK(o == NULL && ol == 0);
            }
            off += used;
            if (ev == PT_H1BODY_NEED_MORE) {
                CHECK(off == plen);
                break;
            }
            if (ev == PT_H1BODY_DONE || ev == PT_H1BODY_INVALID) {
                CHECK(mode != PT_H1BODY_EOF);
                r->end = ev;
                r->consumed = pos + off;
                r->why = b->why;
                CHECK(ev == PT_H1BODY_DONE || (b->why && b->why[0]));
                CHECK(ev == PT_H1BODY_INVALID || pt_h1body_ends_at_eof(b));
                free(p);
                free(b);
                return;
            }
        }
        free(p);
        pos += plen;
    } while (pos < len);
    pt_h1body_release(b);
    free(b);
}

static void same(const struct res *a, const struct res *b)
{
    CHECK(a->end == b->end);
    CHECK(a->data.len == b->data.len);
    CHECK(a->data.len == 0 || memcmp(a->data.data, b->data.data, a->data.len) == 0);
    CHECK(a->trl.len == b->trl.len);
    CHECK(a->trl.len == 0 || memcmp(a->trl.data, b->trl.data, a->trl.len) == 0);
    if (a->end != PT_H1BODY_NEED_MORE)
        CHECK(a->consumed == b->consumed);
    if (a->end == PT_H1BODY_INVALID)
        CHECK(strcmp(a->why, b->why) == 0);
}

static void res_free(struct res *r)
{
    pt_wbuf_free(&r->data);
    pt_wbuf_free(&r->trl);
}

/* Re-encodes a complete chunked body and decodes it again. */
static void check_reencode(const struct res *r)
{
    struct pt_wbuf w = {0};
    /* Chunks of uneven sizes, as the proxy would write what it received. */
    size_t off = 0, k = 1;
    while (off < r->data.len) {
        size_t n = r->data.len - off < k ? r->data.len - off : k;
        pt_h1body_write_chunk(&w, r->data.data + off, n);
        off += n;
        k = k * 3 + 1;
    }
    size_t s = 0;
    for (size_t i = 0; i < r->trl.len; i++) {
        if (r->trl.data[i] != '\n')
            continue;
        pt_h1body_write_trailer(&w, r->trl.data + s, i - s, s == 0);
        s = i + 1;
    }
    pt_h1body_write_last(&w, r->trl.len > 0);
    struct res again;
    decode(w.data, w.len, PT_H1BODY_CHUNKED, 0, 0, 0, &again);
    CHECK(again.end == PT_H1BODY_DONE && again.consumed == w.len);
    CHECK(again.data.len == r->data.len);
    CHECK(r->data.len == 0 || memcmp(again.data.data, r->data.data, r->data.len) == 0);
    CHECK(again.trl.len == r->trl.len);
    CHECK(r->trl.len == 0 || memcmp(again.trl.data, r->trl.data, r->trl.len) == 0);
    res_free(&again);
    pt_wbuf_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    enum pt_h1body_mode mode = PT_H1BODY_CHUNKED;
    uint64_t cl = 0;
    if ((sel & 0xc0) == 0x40) {
        mode = PT_H1BODY_LENGTH;
        cl = size ? data[0] : 0;
    } else if ((sel & 0xc0) == 0x80 && (sel & 1)) {
        mode = PT_H1BODY_EOF;
    }
    size_t stride = (size_t)(sel & 0x0f) + 1;
    size_t cut = size ? (size_t)(sel * 131u) % size : 0;

    struct res whole, pieces, two;
    decode(data, size, mode, cl, 0, 0, &whole);
    decode(data, size, mode, cl, stride, 0, &pieces);
    decode(data, size, mode, cl, 0, cut, &two);
    same(&whole, &pieces);
    same(&whole, &two);

    if (mode == PT_H1BODY_LENGTH) {
        CHECK(whole.data.len <= cl);
        CHECK((whole.end == PT_H1BODY_DONE) == (whole.data.len == cl));
        CHECK(whole.end != PT_H1BODY_INVALID);
    } else if (mode == PT_H1BODY_EOF) {
        CHECK(whole.end == PT_H1BODY_NEED_MORE && whole.data.len == size);
    } else if (whole.end == PT_H1BODY_DONE) {
        CHECK(whole.consumed >= 5);
        CHECK(memcmp(data + whole.consumed - 2, "\r\n", 2) == 0);
        check_reencode(&whole);
    }
    res_free(&whole);
    res_free(&pieces);
    res_free(&two);
    return 0;
}
