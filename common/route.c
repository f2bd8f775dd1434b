#include "common/route.h"

#include "common/dname.h"

#include <limits.h>
#include <sys/random.h>
#include <time.h>

/* Both logical maps (exact names, wildcard suffixes) share one open-addressing
 * table; the kind is part of the key, so "example.org" the name and
 * "*.example.org" (stored as "example.org") never collide. */
enum slot_kind {
    SLOT_EMPTY = 0, /* never used: probing stops here */
    SLOT_EXACT,     /* key is a full name */
    SLOT_WILD,      /* key is the suffix after "*." */
};

struct slot {
    uint64_t hash;   /* full hash, compared before the key bytes */
    const char *key; /* lowercase, in t->keys, not NUL-terminated */
    int32_t value;   /* route index */
    uint16_t len;
    uint8_t kind;    /* enum slot_kind */
};

/* The keys of a built table, shared by its clones (a clone is a table of
 * the next snapshot, which may outlive this one). */
struct keybuf {
    unsigned refs;
    char data[];
};

struct pt_route_table {
    uint64_t seed;
    size_t mask;        /* capacity - 1; capacity is a power of two */
    size_t n;           /* slots in use */
    struct slot *slots;
    struct keybuf *keys; /* keys of build, back to back; those added by set
                            are borrowed from the caller */
    int catchall;       /* value of "*", or -1 */
};

/* Wildcard keys have at least two labels (dname refuses "*.org"), so a
 * lookup never needs to probe the last label alone. */
#define MAX_LABELS ((PT_DNAME_MAX + 1) / 2)

#define FNV_PRIME 0x100000001b3ULL

static inline uint8_t fold(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* FNV-1a runs from the last byte to the first: then the state reached at
 * each dot is the hash of the suffix after it, and one pass over a key gives
 * the hashes of the name and of every wildcard candidate. */
static inline uint64_t fnv_step(uint64_t h, uint8_t c)
{
    return (h ^ fold(c)) * FNV_PRIME;
}

/* FNV's low bits mix poorly and the table index is the low bits: finish
 * with the murmur3 avalanche, salted by kind so the two maps spread apart. */
static inline uint64_t finish(uint64_t h, enum slot_kind kind)
{
    h ^= (uint64_t)kind * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_key(uint64_t seed, const char *s, size_t len, enum slot_kind kind)
{
    uint64_t h = seed;
    for (size_t i = len; i > 0; i--)
        h = fnv_step(h, (uint8_t)s[i - 1]);
    return finish(h, kind);
}

/* A random seed keeps the probe sequences of a given table unknowable to
 * clients, who pick the lookup keys. */
static uint64_t make_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        return seed;
    /* Entropy pool not ready (early boot): a weak seed still works. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 0xcbf29ce484222325ULL ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
           (uint64_t)(uintptr_t)&ts;
}

/* <key> is lowercase; <s> is as received, so it is folded here. */
static inline bool key_eq(const char *key, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((uint8_t)key[i] != fold((uint8_t)s[i]))
            return false;
    }
    return true;
}

static int probe(const struct pt_route_table *t, uint64_t hash, enum slot_kind kind,
                 const char *s, size_t len)
{
    for (size_t i = (size_t)hash & t->mask;; i = (i + 1) & t->mask) {
        const struct slot *sl = &t->slots[i];
        if (sl->kind == SLOT_EMPTY)
            return -1;
        if (sl->hash == hash && sl->kind == kind && sl->len == len &&
            key_eq(sl->key, s, len))
            return sl->value;
    }
}

static void insert(struct pt_route_table *t, enum slot_kind kind, const char *key,
                   size_t len, int value)
{
    uint64_t hash = hash_key(t->seed, key, len, kind);
    PT_ASSERT(probe(t, hash, kind, key, len) < 0); /* duplicate name */
    size_t i = (size_t)hash & t->mask;
    while (t->slots[i].kind != SLOT_EMPTY)
        i = (i + 1) & t->mask;
    t->slots[i] = (struct slot){
        .hash = hash, .key = key, .value = value, .len = (uint16_t)len, .kind = kind,
    };
}

struct pt_route_table *pt_route_build(const char *const *names, size_t n)
{
    PT_ASSERT(n <= INT_MAX);
    struct pt_route_table *t = pt_xcalloc(1, sizeof(*t));
    t->seed = make_seed();
    t->catchall = -1;

    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(names[i]);
    /* Load <= 0.5 keeps linear probing short even with clustering. */
    size_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    t->mask = cap - 1;
    t->slots = pt_xcalloc(cap, sizeof(*t->slots));
    t->keys = pt_xmalloc(sizeof(*t->keys) + total);
    t->keys->refs = 1;

    char *p = t->keys->data;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        /* Callers promise normalised names; a bad one would silently never
         * match, so check the promise (build is rare, this is cheap). */
        char norm[PT_DNAME_MAX + 1];
        int nl = pt_dname_normalize(names[i], len, norm, PT_DNAME_ALLOW_WILDCARD, NULL);
        PT_ASSERT(nl >= 0 && (size_t)nl == len && memcmp(norm, names[i], len) == 0);

        if (len == 1 && names[i][0] == '*') {
            PT_ASSERT(t->catchall < 0); /* duplicate "*" */
            t->catchall = (int)i;
            continue;
        }
        bool wild = names[i][0] == '*';
        const char *key = wild ? names[i] + 2 : names[i];
        size_t klen = wild ? len - 2 : len;
        memcpy(p, key, klen);
        insert(t, wild ? SLOT_WILD : SLOT_EXACT, p, klen, (int)i);
        t->n++;
        p += klen;
    }
    return t;
}

void pt_route_free(struct pt_route_table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    if (t->keys && --t->keys->refs == 0)
        free(t->keys);
    free(t);
}

struct pt_route_table *pt_route_clone(const struct pt_route_table *t)
{
    struct pt_route_table *c = pt_xmalloc(sizeof(*c));
    *c = *t;
    c->slots = pt_xmalloc((t->mask + 1) * sizeof(*c->slots));
    memcpy(c->slots, t->slots, (t->mask + 1) * sizeof(*c->slots));
    if (c->keys)
        c->keys->refs++;
    return c;
}

/* A configured name as a slot key: "*.x.y" is the wildcard key "x.y". */
static enum slot_kind split(const char *name, const char **key, size_t *len)
{
    bool wild = name[0] == '*';
    *key = wild ? name + 2 : name;
    *len = strlen(*key);
    return wild ? SLOT_WILD : SLOT_EXACT;
}

static size_t find_slot(const struct pt_route_table *t, enum slot_kind kind, const char *key,
                        size_t len, bool *found)
{
    uint64_t hash = hash_key(t->seed, key, len, kind);
    size_t i = (size_t)hash & t->mask;
    for (;; i = (i + 1) & t->mask) {
        const struct slot *sl = &t->slots[i];
        if (sl->kind == SLOT_EMPTY) {
            *found = false;
            return i;
        }
        if (sl->hash == hash && sl->kind == kind && sl->len == len &&
            memcmp(sl->key, key, len) == 0) {
            *found = true;
            return i;
        }
    }
}

int pt_route_find(const struct pt_route_table *t, const char *name)
{
    if (strcmp(name, "*") == 0)
        return t->catchall;
    const char *key;
    size_t len;
    bool found;
    enum slot_kind kind = split(name, &key, &len);
    size_t i = find_slot(t, kind, key, len, &found);
    return found ? t->slots[i].value : -1;
}

/* Doubles the capacity: slots move, keys stay where they are. */
static void grow(struct pt_route_table *t)
{
    struct slot *old = t->slots;
    size_t cap = t->mask + 1;
    t->mask = 2 * cap - 1;
    t->slots = pt_xcalloc(2 * cap, sizeof(*t->slots));
    for (size_t i = 0; i < cap; i++) {
        if (old[i].kind == SLOT_EMPTY)
            continue;
        size_t j = (size_t)old[i].hash & t->mask;
        while (t->slots[j].kind != SLOT_EMPTY)
            j = (j + 1) & t->mask;
        t->slots[j] = old[i];
    }
    free(old);
}

void pt_route_set(struct pt_route_table *t, const char *name, int value)
{
    PT_ASSERT(value >= 0);
    if (strcmp(name, "*") == 0) {
        t->catchall = value;
        return;
    }
    const char *key;
    size_t len;
    bool found;
    enum slot_kind kind = split(name, &key, &len);
    size_t i = find_slot(t, kind, key, len, &found);
    if (found) {
        t->slots[i].key = key; /* the caller may free the old copy now */
        t->slots[i].value = value;
        return;
    }
    if (2 * (t->n + 1) > t->mask + 1) {
        grow(t);
        i = find_slot(t, kind, key, len, &found);
    }
    t->slots[i] = (struct slot){
        .hash = hash_key(t->seed, key, len, kind), .key = key, .value = value,
        .len = (uint16_t)len, .kind = kind,
    };
    t->n++;
}

/* Linear probing deletes by shifting back the entries after the hole whose
 * home slot is not between the hole and them: no tombstones, so lookups of
 * absent keys stay short however many deletes came before. */
bool pt_route_del(struct pt_route_table *t, const char *name)
{
    if (strcmp(name, "*") == 0) {
        bool had = t->catchall >= 0;
        t->catchall = -1;
        return had;
    }
    const char *key;
    size_t len;
    bool found;
    enum slot_kind kind = split(name, &key, &len);
    size_t i = find_slot(t, kind, key, len, &found);
    if (!found)
        return false;
    for (size_t j = (i + 1) & t->mask; t->slots[j].kind != SLOT_EMPTY; j = (j + 1) & t->mask) {
        size_t home = (size_t)t->slots[j].hash & t->mask;
        /* Stays when home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].kind = SLOT_EMPTY;
    t->n--;
    return true;
}

static inline bool is_ldh(uint8_t c)
{
    c = fold(c);
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Same label rules as pt_dname_normalize, so that a key matches a route only
 * if it is a valid name: without this, "x y.example.org" or ".example.org"
 * would match "*.example.org". */
static inline bool label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    if (n >= 4 && s[2] == '-' && s[3] == '-' &&
        !(fold((uint8_t)s[0]) == 'x' && fold((uint8_t)s[1]) == 'n'))
        return false;
    return true;
}

int pt_route_lookup(const struct pt_route_table *t, const char *name, size_t len)
{
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > PT_DNAME_MAX)
        return t->catchall;

    /* One pass from the end: validate, and note the hash of the suffix after
     * each dot. dots[k] is the k-th dot from the right. */
    struct {
        uint64_t h;
        size_t pos;
    } dots[MAX_LABELS];
    size_t ndots = 0;
    uint64_t h = t->seed;
    size_t label_end = len;
    for (size_t i = len; i > 0; i--) {
        uint8_t c = (uint8_t)name[i - 1];
        if (c == '.') {
            if (!label_ok(name + i, label_end - i))
                return t->catchall;
            dots[ndots].h = h;
            dots[ndots].pos = i - 1;
            ndots++;
            label_end = i - 1;
        } else if (!is_ldh(c)) {
            return t->catchall;
        }
        h = fnv_step(h, c);
    }
    if (!label_ok(name, label_end))
        return t->catchall;

    int v = probe(t, finish(h, SLOT_EXACT), SLOT_EXACT, name, len);
    if (v >= 0)
        return v;
    /* Leftmost dot first: the longest suffix is the most specific wildcard.
     * The rightmost dot (k == 0) leaves a single label, which no wildcard
     * key can be. */
    for (size_t k = ndots; k > 1; k--) {
        size_t start = dots[k - 1].pos + 1;
        v = probe(t, finish(dots[k - 1].h, SLOT_WILD), SLOT_WILD, name + start,
                  len - start);
        if (v >= 0)
            return v;
    }
    return t->catchall;
}
