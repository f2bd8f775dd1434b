#include "common/ipc.h"

#include "common/cursor.h"

size_t pt_ipc_begin(struct pt_wbuf *b, enum pt_ipc_type type)
{
    size_t off = b->len;
    pt_wbuf_u32(b, (uint32_t)type);
    pt_wbuf_u32(b, 0);
    return off;
}

void pt_ipc_end(struct pt_wbuf *b, size_t off)
{
    size_t n = b->len - off - PT_IPC_HDR;
    PT_ASSERT(n <= PT_IPC_FRAME_MAX);
    pt_wbuf_patch_u32(b, off + 4, (uint32_t)n);
}

void pt_ipc_rx_push(struct pt_ipc_rx *rx, const void *data, size_t n)
{
    if (rx->used) {
        memmove(rx->buf, rx->buf + rx->used, rx->len - rx->used);
        rx->len -= rx->used;
        rx->used = 0;
    }
    if (n == 0) /* libuv's nread == 0; also keeps memcpy away from NULL */
        return;
    if (rx->cap - rx->len < n) {
        size_t cap = rx->cap ? rx->cap : 4096;
        while (cap - rx->len < n)
            cap *= 2;
        rx->buf = pt_xrealloc(rx->buf, cap);
        rx->cap = cap;
    }
    memcpy(rx->buf + rx->len, data, n);
    rx->len += n;
}

int pt_ipc_rx_next(struct pt_ipc_rx *rx, uint32_t *type, const uint8_t **payload,
                   size_t *plen)
{
    struct pt_cursor c = pt_cursor_make(rx->buf + rx->used, rx->len - rx->used);
    if (pt_cursor_left(&c) < PT_IPC_HDR)
        return 0;
    uint32_t t = pt_rd_u32(&c);
    uint32_t n = pt_rd_u32(&c);
    if (t < PT_IPC_SNAPSHOT || t > PT_IPC_TYPE_LAST || n > PT_IPC_FRAME_MAX)
        return PT_EMALFORMED;
    const uint8_t *p = pt_rd_bytes(&c, n);
    if (p == NULL)
        return 0;
    *type = t;
    *payload = p;
    *plen = n;
    rx->used += PT_IPC_HDR + n;
    return 1;
}

void pt_ipc_rx_free(struct pt_ipc_rx *rx)
{
    PT_FREE(rx->buf);
    rx->len = rx->cap = rx->used = 0;
}
