#include "common/banlist.h"

#include <sys/random.h>

struct entry {
    uint64_t hash;
    int32_t ix;     /* ban index, -1 = empty slot */
    uint8_t family; /* 4 or 6 */
    uint8_t bits;
    uint8_t addr[16];
    int64_t expires;
};

struct pt_banlist {
    uint64_t seed;
    size_t mask;
    struct entry *slots;
    /* Prefix lengths present, longest first, per family. */
    uint8_t lens4[33], lens6[129];
    size_t n4, n6;
};

static uint64_t hash_key(uint64_t seed, int fam, unsigned bits, const uint8_t *a)
{
    uint64_t h = seed ^ ((uint64_t)fam << 8) ^ bits;
    size_t n = fam == 4 ? 4 : 16;
    for (size_t i = 0; i < n; i++) {
        h ^= a[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

static void mask_addr(uint8_t *out, const uint8_t *in, size_t n, unsigned bits)
{
    for (size_t i = 0; i < n; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (unsigned)i : 0;
        out[i] = keep ? (uint8_t)(in[i] & (0xff << (8 - keep))) : 0;
    }
}

static struct entry *find(const struct pt_banlist *b, int fam, unsigned bits,
                          const uint8_t *a, uint64_t h)
{
    size_t n = fam == 4 ? 4 : 16;
    for (size_t i = h & b->mask;; i = (i + 1) & b->mask) {
        struct entry *e = &b->slots[i];
        if (e->ix < 0)
            return e;
        if (e->hash == h && e->family == fam && e->bits == bits &&
            memcmp(e->addr, a, n) == 0)
            return e;
    }
}

struct pt_banlist *pt_banlist_build(const struct pt_ban *bans, size_t n)
{
    struct pt_banlist *b = pt_xcalloc(1, sizeof(*b));
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    b->mask = cap - 1;
    b->slots = pt_xcalloc(cap, sizeof(*b->slots));
    for (size_t i = 0; i < cap; i++)
        b->slots[i].ix = -1;
    if (getrandom(&b->seed, sizeof(b->seed), GRND_NONBLOCK) != sizeof(b->seed))
        b->seed = (uint64_t)(uintptr_t)b ^ 0x9e3779b97f4a7c15ULL;
    bool seen4[33] = {0}, seen6[129] = {0};
    for (size_t i = 0; i < n; i++) {
        const struct pt_cidr *c = &bans[i].net;
        int fam = c->family == AF_INET ? 4 : 6;
        uint8_t a[16] = {0};
        mask_addr(a, c->addr, fam == 4 ? 4 : 16, c->bits);
        uint64_t h = hash_key(b->seed, fam, c->bits, a);
        struct entry *e = find(b, fam, c->bits, a, h);
        if (e->ix >= 0)
            continue;
        e->hash = h;
        e->ix = (int32_t)i;
        e->family = (uint8_t)fam;
        e->bits = c->bits;
        memcpy(e->addr, a, 16);
        e->expires = bans[i].expires;
        if (fam == 4)
            seen4[c->bits] = true;
        else
            seen6[c->bits] = true;
    }
    for (int l = 32; l >= 0; l--)
        if (seen4[l])
            b->lens4[b->n4++] = (uint8_t)l;
    for (int l = 128; l >= 0; l--)
        if (seen6[l])
            b->lens6[b->n6++] = (uint8_t)l;
    return b;
}

void pt_banlist_free(struct pt_banlist *b)
{
    if (b == NULL)
        return;
    free(b->slots);
    free(b);
}

int pt_banlist_match(const struct pt_banlist *b, const struct sockaddr *sa, int64_t now)
{
    const uint8_t *ip;
    int fam;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (b == NULL)
        return -1;
    if (sa->sa_family == AF_INET) {
        ip = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        fam = 4;
    } else if (sa->sa_family == AF_INET6) {
        ip = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        fam = 6;
        if (memcmp(ip, mapped, 12) == 0) {
            ip += 12;
            fam = 4;
        }
    } else {
        return -1;
    }
    size_t nl = fam == 4 ? b->n4 : b->n6;
    const uint8_t *lens = fam == 4 ? b->lens4 : b->lens6;
    for (size_t i = 0; i < nl; i++) {
        uint8_t a[16] = {0};
        mask_addr(a, ip, fam == 4 ? 4 : 16, lens[i]);
        struct entry *e = find(b, fam, lens[i], a, hash_key(b->seed, fam, lens[i], a));
        if (e->ix >= 0 && (e->expires == 0 || e->expires > now))
            return e->ix;
    }
    return -1;
}
