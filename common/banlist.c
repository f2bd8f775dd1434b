#include "common/banlist.h"

#include <sys/random.h>

struct entry {
    uint64_t hash;
    bool used;
    uint8_t family; /* 4 or 6 */
    uint8_t bits;
    uint8_t addr[16];
    int64_t expires;
    char *reason;   /* owned, never NULL in a used slot */
};

struct pt_banlist {
    uint64_t seed;
    size_t mask;
    size_t n;
    struct entry *slots;
    /* How many bans use each prefix length, and the lengths present,
     * longest first, per family (rebuilt when a count goes to or from 0). */
    uint32_t count4[33], count6[129];
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

/* The slot holding the key, or the empty slot where it would go. */
static struct entry *find(const struct pt_banlist *b, int fam, unsigned bits,
                          const uint8_t *a, uint64_t h)
{
    size_t n = fam == 4 ? 4 : 16;
    for (size_t i = h & b->mask;; i = (i + 1) & b->mask) {
        struct entry *e = &b->slots[i];
        if (!e->used)
            return e;
        if (e->hash == h && e->family == fam && e->bits == bits &&
            memcmp(e->addr, a, n) == 0)
            return e;
    }
}

static void relens(struct pt_banlist *b)
{
    b->n4 = b->n6 = 0;
    for (int l = 32; l >= 0; l--)
        if (b->count4[l])
            b->lens4[b->n4++] = (uint8_t)l;
    for (int l = 128; l >= 0; l--)
        if (b->count6[l])
            b->lens6[b->n6++] = (uint8_t)l;
}

static void alloc_slots(struct pt_banlist *b, size_t cap)
{
    b->mask = cap - 1;
    b->slots = pt_xcalloc(cap, sizeof(*b->slots));
}

/* Keeps the load under one half so probes stay short. */
static void grow(struct pt_banlist *b)
{
    if ((b->n + 1) * 2 <= b->mask + 1)
        return;
    struct entry *old = b->slots;
    size_t cap = b->mask + 1;
    alloc_slots(b, cap * 2);
    for (size_t i = 0; i < cap; i++)
        if (old[i].used)
            *find(b, old[i].family, old[i].bits, old[i].addr, old[i].hash) = old[i];
    free(old);
}

struct pt_banlist *pt_banlist_build(const struct pt_ban *bans, size_t n)
{
    struct pt_banlist *b = pt_xcalloc(1, sizeof(*b));
    size_t cap = 16;
    while (cap < n * 2 + 2)
        cap *= 2;
    alloc_slots(b, cap);
    if (getrandom(&b->seed, sizeof(b->seed), GRND_NONBLOCK) != sizeof(b->seed))
        b->seed = (uint64_t)(uintptr_t)b ^ 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++)
        pt_banlist_add(b, &bans[i]);
    return b;
}

void pt_banlist_free(struct pt_banlist *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i <= b->mask; i++)
        free(b->slots[i].reason);
    free(b->slots);
    free(b);
}

size_t pt_banlist_count(const struct pt_banlist *b)
{
    return b ? b->n : 0;
}

static int key_of(const struct pt_cidr *c, uint8_t a[16])
{
    int fam = c->family == AF_INET ? 4 : 6;
    memset(a, 0, 16);
    mask_addr(a, c->addr, fam == 4 ? 4 : 16, c->bits);
    return fam;
}

void pt_banlist_add(struct pt_banlist *b, const struct pt_ban *ban)
{
    uint8_t a[16];
    int fam = key_of(&ban->net, a);
    grow(b);
    uint64_t h = hash_key(b->seed, fam, ban->net.bits, a);
    struct entry *e = find(b, fam, ban->net.bits, a, h);
    if (!e->used) {
        e->used = true;
        e->hash = h;
        e->family = (uint8_t)fam;
        e->bits = ban->net.bits;
        memcpy(e->addr, a, 16);
        b->n++;
        uint32_t *cnt = fam == 4 ? &b->count4[e->bits] : &b->count6[e->bits];
        if ((*cnt)++ == 0)
            relens(b);
    }
    free(e->reason);
    e->reason = pt_xstrdup(ban->reason ? ban->reason : "");
    e->expires = ban->expires;
}

bool pt_banlist_remove(struct pt_banlist *b, const struct pt_cidr *net)
{
    uint8_t a[16];
    int fam = key_of(net, a);
    struct entry *e = find(b, fam, net->bits, a, hash_key(b->seed, fam, net->bits, a));
    if (!e->used)
        return false;
    uint32_t *cnt = fam == 4 ? &b->count4[e->bits] : &b->count6[e->bits];
    if (--*cnt == 0)
        relens(b);
    free(e->reason);
    memset(e, 0, sizeof(*e));
    b->n--;
    /* Linear probing without tombstones: move back every later entry of the
     * run that could sit in the freed slot, so lookups never stop early. */
    size_t hole = (size_t)(e - b->slots);
    for (size_t i = (hole + 1) & b->mask; b->slots[i].used; i = (i + 1) & b->mask) {
        size_t home = b->slots[i].hash & b->mask;
        bool movable = hole <= i ? (home <= hole || home > i) : (home <= hole && home > i);
        if (movable) {
            b->slots[hole] = b->slots[i];
            memset(&b->slots[i], 0, sizeof(b->slots[i]));
            hole = i;
        }
    }
    return true;
}

const char *pt_banlist_match(const struct pt_banlist *b, const struct sockaddr *sa,
                             int64_t now)
{
    const uint8_t *ip;
    int fam;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (b == NULL || b->n == 0)
        return NULL;
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
        return NULL;
    }
    size_t nl = fam == 4 ? b->n4 : b->n6;
    const uint8_t *lens = fam == 4 ? b->lens4 : b->lens6;
    for (size_t i = 0; i < nl; i++) {
        uint8_t a[16] = {0};
        mask_addr(a, ip, fam == 4 ? 4 : 16, lens[i]);
        struct entry *e = find(b, fam, lens[i], a, hash_key(b->seed, fam, lens[i], a));
        if (e->used && (e->expires == 0 || e->expires > now))
            return e->reason;
    }
    return NULL;
}
