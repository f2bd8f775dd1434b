/* Growable output buffer for encoders (snapshot, IPC frames, JSON-free logs).
 * Big-endian integers, length-prefixed strings. Allocation failure aborts
 * (pt_xrealloc), so writers need no error paths. */
#ifndef PT_WBUF_H
#define PT_WBUF_H

#include "common/pt.h"

struct pt_wbuf {
    uint8_t *data; /* owned; release with pt_wbuf_free or take it */
    size_t len;
    size_t cap;
};

void pt_wbuf_reserve(struct pt_wbuf *b, size_t extra);
void pt_wbuf_put(struct pt_wbuf *b, const void *p, size_t n);
void pt_wbuf_u8(struct pt_wbuf *b, uint8_t v);
void pt_wbuf_u16(struct pt_wbuf *b, uint16_t v);
void pt_wbuf_u32(struct pt_wbuf *b, uint32_t v);
void pt_wbuf_u64(struct pt_wbuf *b, uint64_t v);
/* u32 length then bytes; NULL is written as length 0. */
void pt_wbuf_str(struct pt_wbuf *b, const char *s);
void pt_wbuf_blob(struct pt_wbuf *b, const void *p, size_t n);
/* Overwrites 4 bytes at <off> (for lengths known only at the end). */
void pt_wbuf_patch_u32(struct pt_wbuf *b, size_t off, uint32_t v);
void pt_wbuf_free(struct pt_wbuf *b);

#endif
