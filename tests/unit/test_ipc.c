#include <criterion/criterion.h>

#include "common/ipc.h"
#include "common/wbuf.h"

/* ---- helpers ------------------------------------------------------------- */

/* Appends a frame of <type> with <n> payload bytes from <p>. */
static void frame(struct pt_wbuf *w, enum pt_ipc_type type, const void *p, size_t n)
{
    size_t off = pt_ipc_begin(w, type);
    pt_wbuf_put(w, p, n);
    pt_ipc_end(w, off);
}

static void raw_header(struct pt_wbuf *w, uint32_t type, uint32_t len)
{
    pt_wbuf_u32(w, type);
    pt_wbuf_u32(w, len);
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

struct want {
    uint32_t type;
    const char *payload;
    size_t len;
};

static void expect_frame(struct pt_ipc_rx *rx, const struct want *w)
{
    uint32_t type = 0;
    const uint8_t *p = NULL;
    size_t n = 99;
    int rc = pt_ipc_rx_next(rx, &type, &p, &n);
    cr_assert_eq(rc, 1, "expected a frame, got %d", rc);
    cr_expect_eq(type, w->type);
    cr_assert_eq(n, w->len);
    if (n)
        cr_expect(memcmp(p, w->payload, n) == 0);
}

static void expect_none(struct pt_ipc_rx *rx)
{
    uint32_t type = 77;
    const uint8_t *p = NULL;
    size_t n = 77;
    cr_expect_eq(pt_ipc_rx_next(rx, &type, &p, &n), 0);
    cr_expect_eq(type, 77, "outputs written without a frame");
}

/* ---- framing ------------------------------------------------------------- */

Test(ipc, begin_end_layout)
{
    struct pt_wbuf w = {0};
    pt_wbuf_put(&w, "junk", 4); /* frames may follow other bytes */
    size_t off = pt_ipc_begin(&w, PT_IPC_ACK);
    cr_expect_eq(off, 4);
    pt_wbuf_u64(&w, 42);
    pt_ipc_end(&w, off);
    cr_assert_eq(w.len, 4 + PT_IPC_HDR + 8);
    cr_expect_eq(be32(w.data + 4), PT_IPC_ACK);
    cr_expect_eq(be32(w.data + 8), 8);
    cr_expect_eq(be32(w.data + 12), 0);
    cr_expect_eq(be32(w.data + 16), 42);

    /* An empty payload. */
    off = pt_ipc_begin(&w, PT_IPC_STOP);
    pt_ipc_end(&w, off);
    cr_assert_eq(w.len, 4 + PT_IPC_HDR + 8 + PT_IPC_HDR);
    cr_expect_eq(be32(w.data + off), PT_IPC_STOP);
    cr_expect_eq(be32(w.data + off + 4), 0);
    pt_wbuf_free(&w);
}

Test(ipc, roundtrip_whole)
{
    struct pt_wbuf w = {0};
    frame(&w, PT_IPC_SNAPSHOT, "PTS1....", 8);
    struct pt_ipc_rx rx = {0};
    expect_none(&rx); /* nothing yet */
    pt_ipc_rx_push(&rx, w.data, w.len);
    expect_frame(&rx, &(struct want){PT_IPC_SNAPSHOT, "PTS1....", 8});
    expect_none(&rx);
    expect_none(&rx);
    pt_ipc_rx_free(&rx);
    pt_wbuf_free(&w);
}

Test(ipc, one_byte_at_a_time)
{
    static const struct want frames[] = {
        {PT_IPC_SNAPSHOT, "snapshot bytes", 14},
        {PT_IPC_STOP, "", 0},
        {PT_IPC_ACK, "\0\0\0\0\0\0\0\x07", 8},
        {PT_IPC_STATS, "0123456789abcdef0123456789abcdef", 32},
    };
    struct pt_wbuf w = {0};
    size_t ends[PT_ARRAY_LEN(frames)];
    for (size_t i = 0; i < PT_ARRAY_LEN(frames); i++) {
        frame(&w, (enum pt_ipc_type)frames[i].type, frames[i].payload, frames[i].len);
        ends[i] = w.len;
    }
    struct pt_ipc_rx rx = {0};
    size_t next = 0;
    for (size_t i = 0; i < w.len; i++) {
        pt_ipc_rx_push(&rx, w.data + i, 1);
        if (next < PT_ARRAY_LEN(frames) && i + 1 == ends[next]) {
            expect_frame(&rx, &frames[next]);
            next++;
        }
        expect_none(&rx);
    }
    cr_expect_eq(next, PT_ARRAY_LEN(frames));
    pt_ipc_rx_free(&rx);
    pt_wbuf_free(&w);
}

Test(ipc, several_frames_in_one_push)
{
    struct pt_wbuf w = {0};
    char big[10000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    frame(&w, PT_IPC_ACK, "12345678", 8);
    frame(&w, PT_IPC_SNAPSHOT, big, sizeof(big));
    frame(&w, PT_IPC_STOP, NULL, 0);
    frame(&w, PT_IPC_ACK, "abcdefgh", 8);
    size_t third = w.len;
    frame(&w, PT_IPC_STATS, "half-frame-data!", 16);

    /* Everything but the last 5 bytes in one push. */
    struct pt_ipc_rx rx = {0};
    pt_ipc_rx_push(&rx, w.data, w.len - 5);
    expect_frame(&rx, &(struct want){PT_IPC_ACK, "12345678", 8});
    expect_frame(&rx, &(struct want){PT_IPC_SNAPSHOT, big, sizeof(big)});
    expect_frame(&rx, &(struct want){PT_IPC_STOP, "", 0});
    expect_frame(&rx, &(struct want){PT_IPC_ACK, "abcdefgh", 8});
    expect_none(&rx);
    cr_expect_lt(third, w.len - 5);
    /* The rest arrives: consumed frames are dropped, the partial one kept. */
    pt_ipc_rx_push(&rx, w.data + w.len - 5, 5);
    expect_frame(&rx, &(struct want){PT_IPC_STATS, "half-frame-data!", 16});
    expect_none(&rx);
    cr_expect_leq(rx.len, w.len, "consumed bytes are reclaimed");
    pt_ipc_rx_free(&rx);
    pt_wbuf_free(&w);
}

/* Irregular split points, a large frame, and pushes between reads: the
 * buffer is compacted and grown while frames are pending. */
Test(ipc, irregular_chunks)
{
    struct pt_wbuf w = {0};
    enum { BIG = 300000, N = 40 };
    uint8_t *big = pt_xmalloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (uint8_t)(i ^ (i >> 8));
    for (int i = 0; i < N; i++) {
        if (i == 17)
            frame(&w, PT_IPC_SNAPSHOT, big, BIG);
        else {
            uint8_t v[8] = {0, 0, 0, 0, 0, 0, 0, (uint8_t)i};
            frame(&w, PT_IPC_ACK, v, 8);
        }
    }
    struct pt_ipc_rx rx = {0};
    size_t pos = 0, chunk = 1;
    int got = 0;
    while (pos < w.len || got < N) {
        size_t n = chunk < w.len - pos ? chunk : w.len - pos;
        pt_ipc_rx_push(&rx, w.data + pos, n);
        pos += n;
        chunk = chunk * 3 + 1;
        if (chunk > 70000)
            chunk = 2;
        uint32_t type;
        const uint8_t *p;
        size_t plen;
        int rc;
        while ((rc = pt_ipc_rx_next(&rx, &type, &p, &plen)) == 1) {
            if (got == 17) {
                cr_assert_eq(type, PT_IPC_SNAPSHOT);
                cr_assert_eq(plen, BIG);
                cr_assert(memcmp(p, big, BIG) == 0);
            } else {
                cr_assert_eq(type, PT_IPC_ACK);
                cr_assert_eq(plen, 8);
                cr_assert_eq(p[7], got);
            }
            got++;
        }
        cr_assert_eq(rc, 0);
        if (pos == w.len)
            break;
    }
    cr_expect_eq(got, N);
    free(big);
    pt_ipc_rx_free(&rx);
    pt_wbuf_free(&w);
}

/* ---- refusals ------------------------------------------------------------ */

static int next_after(const struct pt_wbuf *w)
{
    struct pt_ipc_rx rx = {0};
    uint32_t type;
    const uint8_t *p;
    size_t n;
    pt_ipc_rx_push(&rx, w->data, w->len);
    int rc = pt_ipc_rx_next(&rx, &type, &p, &n);
    /* Refusal is sticky: the stream cannot be resynchronised. */
    if (rc < 0)
        cr_expect_eq(pt_ipc_rx_next(&rx, &type, &p, &n), rc);
    pt_ipc_rx_free(&rx);
    return rc;
}

Test(ipc, oversized_length_refused)
{
    struct pt_wbuf w = {0};
    static const uint32_t lens[] = {PT_IPC_FRAME_MAX + 1, PT_IPC_FRAME_MAX + 1000,
                                    0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < PT_ARRAY_LEN(lens); i++) {
        raw_header(&w, PT_IPC_SNAPSHOT, lens[i]);
        cr_expect_eq(next_after(&w), PT_EMALFORMED, "length %u", lens[i]);
        /* Refused from the header alone, before the payload arrives. */
        pt_wbuf_free(&w);
    }
    /* The limit itself is a frame still being received. */
    raw_header(&w, PT_IPC_SNAPSHOT, PT_IPC_FRAME_MAX);
    pt_wbuf_put(&w, "abc", 3);
    cr_expect_eq(next_after(&w), 0);
    pt_wbuf_free(&w);
}

Test(ipc, unknown_type_refused)
{
    struct pt_wbuf w = {0};
    static const uint32_t types[] = {0, PT_IPC_TYPE_LAST + 1, PT_IPC_TYPE_LAST + 2, 0x100,
                                     0x01000000u, 0xffffffffu};
    for (size_t i = 0; i < PT_ARRAY_LEN(types); i++) {
        raw_header(&w, types[i], 0);
        cr_expect_eq(next_after(&w), PT_EMALFORMED, "type %u", types[i]);
        pt_wbuf_free(&w);
        raw_header(&w, types[i], 4);
        pt_wbuf_put(&w, "abcd", 4);
        cr_expect_eq(next_after(&w), PT_EMALFORMED, "type %u with payload", types[i]);
        pt_wbuf_free(&w);
    }
    /* Every type either side sends, the worker's RESYNC included. */
    for (uint32_t t = PT_IPC_SNAPSHOT; t <= PT_IPC_RESYNC; t++) {
        raw_header(&w, t, 0);
        cr_expect_eq(next_after(&w), 1, "type %u", t);
        pt_wbuf_free(&w);
    }
}

/* A bad header after good frames is found once those are consumed. */
Test(ipc, bad_frame_after_good_ones)
{
    struct pt_wbuf w = {0};
    frame(&w, PT_IPC_ACK, "12345678", 8);
    raw_header(&w, PT_IPC_TYPE_LAST + 1, 0);
    struct pt_ipc_rx rx = {0};
    pt_ipc_rx_push(&rx, w.data, w.len);
    expect_frame(&rx, &(struct want){PT_IPC_ACK, "12345678", 8});
    uint32_t type;
    const uint8_t *p;
    size_t n;
    cr_expect_eq(pt_ipc_rx_next(&rx, &type, &p, &n), PT_EMALFORMED);
    pt_ipc_rx_free(&rx);
    pt_wbuf_free(&w);
}

/* Partial headers are waited for, whatever their bytes so far. */
Test(ipc, partial_header_waits)
{
    struct pt_ipc_rx rx = {0};
    static const uint8_t hdr[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    for (size_t i = 0; i < 7; i++) {
        pt_ipc_rx_push(&rx, hdr + i, 1);
        expect_none(&rx);
    }
    pt_ipc_rx_push(&rx, hdr + 7, 1);
    uint32_t type;
    const uint8_t *p;
    size_t n;
    cr_expect_eq(pt_ipc_rx_next(&rx, &type, &p, &n), PT_EMALFORMED);
    pt_ipc_rx_free(&rx);
}

/* ---- receive buffer lifecycle -------------------------------------------- */

/* libuv calls a read callback with nread == 0 (EAGAIN) and both the daemon
 * and the worker pass that straight to pt_ipc_rx_push: on a fresh buffer that
 * must not memcpy to a NULL pointer (UB; fatal under -fsanitize=undefined). */
Test(ipc, zero_byte_push_into_fresh_buffer)
{
    struct pt_ipc_rx rx = {0};
    char space[16] = {0};
    pt_ipc_rx_push(&rx, space, 0);
    expect_none(&rx);
    pt_ipc_rx_free(&rx);
}

Test(ipc, empty_push_and_free)
{
    struct pt_ipc_rx rx = {0};
    pt_ipc_rx_push(&rx, "x", 1);
    expect_none(&rx);
    pt_ipc_rx_free(&rx);
    cr_expect_null(rx.buf);
    cr_expect_eq(rx.len, 0);
    cr_expect_eq(rx.used, 0);
    pt_ipc_rx_free(&rx); /* twice is fine */

    /* Usable again after free. */
    struct pt_wbuf w = {0};
    frame(&w, PT_IPC_STOP, NULL, 0);
    pt_ipc_rx_push(&rx, w.data, w.len);
    expect_frame(&rx, &(struct want){PT_IPC_STOP, "", 0});
    pt_ipc_rx_push(&rx, "", 0); /* compacts even without new bytes */
    expect_none(&rx);
    cr_expect_eq(rx.len, 0);
    pt_ipc_rx_free(&rx);
    pt_wbuf_free(&w);
}

/* Steady state: a long run of frames does not grow the buffer without end. */
Test(ipc, buffer_stays_bounded)
{
    struct pt_wbuf w = {0};
    frame(&w, PT_IPC_ACK, "12345678", 8);
    struct pt_ipc_rx rx = {0};
    for (int i = 0; i < 100000; i++) {
        pt_ipc_rx_push(&rx, w.data, w.len);
        expect_frame(&rx, &(struct want){PT_IPC_ACK, "12345678", 8});
    }
    cr_expect_leq(rx.cap, 4096, "cap %zu", rx.cap);
    pt_ipc_rx_free(&rx);
    pt_wbuf_free(&w);
}

/* ---- wbuf ---------------------------------------------------------------- */

Test(wbuf, integers_big_endian)
{
    struct pt_wbuf w = {0};
    pt_wbuf_u8(&w, 0xab);
    pt_wbuf_u16(&w, 0x0102);
    pt_wbuf_u32(&w, 0x03040506);
    pt_wbuf_u64(&w, 0x0708090a0b0c0d0eULL);
    static const uint8_t want[] = {0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    cr_assert_eq(w.len, sizeof(want));
    cr_expect(memcmp(w.data, want, sizeof(want)) == 0);
    pt_wbuf_free(&w);
    cr_expect_null(w.data);
    cr_expect_eq(w.len, 0);
    cr_expect_eq(w.cap, 0);
}

Test(wbuf, strings_blobs_patch)
{
    struct pt_wbuf w = {0};
    pt_wbuf_str(&w, "abc");
    pt_wbuf_str(&w, NULL);
    pt_wbuf_str(&w, "");
    pt_wbuf_blob(&w, "\0x", 2);
    static const uint8_t want[] = {0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0,
                                   0, 0, 0, 0, 0,   0,   0,   2, 0, 'x'};
    cr_assert_eq(w.len, sizeof(want));
    cr_expect(memcmp(w.data, want, sizeof(want)) == 0);
    pt_wbuf_patch_u32(&w, 7, 0xdeadbeef);
    cr_expect_eq(be32(w.data + 7), 0xdeadbeef);
    pt_wbuf_patch_u32(&w, w.len - 4, 1); /* the last 4 bytes */
    cr_expect_eq(be32(w.data + w.len - 4), 1);
    pt_wbuf_free(&w);
}

Test(wbuf, growth)
{
    struct pt_wbuf w = {0};
    pt_wbuf_put(&w, "", 0);
    cr_expect_null(w.data, "an empty put allocates nothing");
    uint8_t chunk[1000];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)i;
    for (int i = 0; i < 1000; i++)
        pt_wbuf_put(&w, chunk, sizeof(chunk));
    cr_assert_eq(w.len, 1000000);
    cr_expect_geq(w.cap, w.len);
    for (int i = 0; i < 1000; i++)
        cr_assert(memcmp(w.data + (size_t)i * 1000, chunk, 1000) == 0);
    pt_wbuf_reserve(&w, 5000000);
    cr_expect_geq(w.cap - w.len, 5000000);
    cr_expect_eq(w.len, 1000000);
    pt_wbuf_free(&w);
}
