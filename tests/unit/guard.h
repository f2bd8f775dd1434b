/* Test helper (picohttpparser's trick): copy an input to the end of a page
 * that is followed by a PROT_NONE page, so a parser reading one byte past the
 * end crashes the test instead of passing by luck. */
#ifndef PT_TEST_GUARD_H
#define PT_TEST_GUARD_H

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct pt_guard {
    uint8_t *map;
    size_t maplen;
};

/* Returns a pointer to a copy of buf[0..len) that ends exactly at a guard
 * page. Release with pt_guard_release. */
static inline uint8_t *pt_guard_copy(struct pt_guard *g, const void *buf, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    g->maplen = (pages + 1) * page;
    g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED)
        abort();
    uint8_t *guard = g->map + pages * page;
    if (mprotect(guard, page, PROT_NONE) != 0)
        abort();
    uint8_t *p = guard - len;
    if (len)
        memcpy(p, buf, len);
    return p;
}

static inline void pt_guard_release(struct pt_guard *g)
{
    munmap(g->map, g->maplen);
}

#endif
