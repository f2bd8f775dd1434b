#include "common/wbuf.h"

void pt_wbuf_reserve(struct pt_wbuf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    b->data = pt_xrealloc(b->data, cap);
    b->cap = cap;
}

void pt_wbuf_put(struct pt_wbuf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    pt_wbuf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void pt_wbuf_u8(struct pt_wbuf *b, uint8_t v)
{
    pt_wbuf_put(b, &v, 1);
}

void pt_wbuf_u16(struct pt_wbuf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    pt_wbuf_put(b, x, 2);
}

void pt_wbuf_u32(struct pt_wbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    pt_wbuf_put(b, x, 4);
}

void pt_wbuf_u64(struct pt_wbuf *b, uint64_t v)
{
    pt_wbuf_u32(b, (uint32_t)(v >> 32));
    pt_wbuf_u32(b, (uint32_t)v);
}

void pt_wbuf_blob(struct pt_wbuf *b, const void *p, size_t n)
{
    PT_ASSERT(n <= UINT32_MAX);
    pt_wbuf_u32(b, (uint32_t)n);
    pt_wbuf_put(b, p, n);
}

void pt_wbuf_str(struct pt_wbuf *b, const char *s)
{
    pt_wbuf_blob(b, s, s ? strlen(s) : 0);
}

void pt_wbuf_patch_u32(struct pt_wbuf *b, size_t off, uint32_t v)
{
    PT_ASSERT(off + 4 <= b->len);
    b->data[off] = (uint8_t)(v >> 24);
    b->data[off + 1] = (uint8_t)(v >> 16);
    b->data[off + 2] = (uint8_t)(v >> 8);
    b->data[off + 3] = (uint8_t)v;
}

void pt_wbuf_free(struct pt_wbuf *b)
{
    PT_FREE(b->data);
    b->len = b->cap = 0;
}
