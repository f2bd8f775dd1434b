/* Bounds-checked reading of untrusted bytes.
 *
 * Every read compares against what is left (n > end - p) and fails closed:
 * once a read fails the cursor is marked bad and every later read fails too,
 * so a parser can read a whole structure and check cur.ok once. */
#ifndef PT_CURSOR_H
#define PT_CURSOR_H

#include "common/pt.h"

#include <string.h>

struct pt_cursor {
    const uint8_t *p;   /* next byte; borrowed from the caller's buffer */
    const uint8_t *end; /* one past the last readable byte */
    bool ok;            /* false after any out-of-bounds read */
};

static inline struct pt_cursor pt_cursor_make(const void *buf, size_t len)
{
    struct pt_cursor c = {(const uint8_t *)buf, (const uint8_t *)buf + len, true};
    return c;
}

static inline size_t pt_cursor_left(const struct pt_cursor *c)
{
    return c->ok ? (size_t)(c->end - c->p) : 0;
}

static inline bool pt_cursor_need(struct pt_cursor *c, size_t n)
{
    if (!c->ok || n > (size_t)(c->end - c->p)) {
        c->ok = false;
        return false;
    }
    return true;
}

static inline uint8_t pt_rd_u8(struct pt_cursor *c)
{
    if (!pt_cursor_need(c, 1))
        return 0;
    return *c->p++;
}

static inline uint16_t pt_rd_u16(struct pt_cursor *c)
{
    if (!pt_cursor_need(c, 2))
        return 0;
    uint16_t v = (uint16_t)((c->p[0] << 8) | c->p[1]);
    c->p += 2;
    return v;
}

static inline uint32_t pt_rd_u24(struct pt_cursor *c)
{
    if (!pt_cursor_need(c, 3))
        return 0;
    uint32_t v = ((uint32_t)c->p[0] << 16) | ((uint32_t)c->p[1] << 8) | c->p[2];
    c->p += 3;
    return v;
}

static inline uint32_t pt_rd_u32(struct pt_cursor *c)
{
    if (!pt_cursor_need(c, 4))
        return 0;
    uint32_t v = ((uint32_t)c->p[0] << 24) | ((uint32_t)c->p[1] << 16) |
                 ((uint32_t)c->p[2] << 8) | c->p[3];
    c->p += 4;
    return v;
}

static inline uint64_t pt_rd_u64(struct pt_cursor *c)
{
    uint64_t hi = pt_rd_u32(c);
    uint64_t lo = pt_rd_u32(c);
    return (hi << 32) | lo;
}

/* Returns a pointer to <n> bytes inside the buffer (borrowed), or NULL. */
static inline const uint8_t *pt_rd_bytes(struct pt_cursor *c, size_t n)
{
    if (!pt_cursor_need(c, n))
        return NULL;
    const uint8_t *p = c->p;
    c->p += n;
    return p;
}

/* Reads a u32-length-prefixed string (pt_wbuf_str) into <out> with its NUL.
 * False (and the cursor failed or left where it was) when it does not fit
 * <size> or holds a NUL byte. */
static inline bool pt_rd_cstr(struct pt_cursor *c, char *out, size_t size)
{
    uint32_t len = pt_rd_u32(c);
    const uint8_t *p = c->ok && len < size ? pt_rd_bytes(c, len) : NULL;
    if (p == NULL || memchr(p, 0, len) != NULL)
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

#endif
