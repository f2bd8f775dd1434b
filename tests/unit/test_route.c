#include <criterion/criterion.h>

#include "common/dname.h"
#include "common/route.h"
#include "tests/unit/guard.h"

#include <signal.h>

/* Looks up a copy of <name> that ends at a guard page: the lookup must not
 * read past <len> (SNI comes straight out of a packet buffer). */
static int lookup(const struct pt_route_table *t, const char *name, size_t len)
{
    struct pt_guard g;
    const char *copy = (const char *)pt_guard_copy(&g, name, len);
    int v = pt_route_lookup(t, copy, len);
    pt_guard_release(&g);
    return v;
}

static int lookup_s(const struct pt_route_table *t, const char *name)
{
    return lookup(t, name, strlen(name));
}

struct want {
    const char *key;
    int value;
};

static void check(const struct pt_route_table *t, const struct want *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int v = lookup_s(t, w[i].key);
        cr_expect_eq(v, w[i].value, "\"%s\": got %d, want %d", w[i].key, v, w[i].value);
    }
}

static const char *const basic_names[] = {
    "example.org",       /* 0 */
    "*.example.org",     /* 1 */
    "a.example.org",     /* 2 */
    "*.b.example.org",   /* 3 */
    "*",                 /* 4 */
    "foo.b.example.org", /* 5 */
    "localhost",         /* 6 */
    "xn--bcher-kva.example", /* 7 */
};

Test(route, basic)
{
    struct pt_route_table *t = pt_route_build(basic_names, PT_ARRAY_LEN(basic_names));
    static const struct want w[] = {
        {"example.org", 0},
        {"a.example.org", 2},         /* exact beats wildcard */
        {"x.example.org", 1},
        {"x.y.example.org", 1},       /* a wildcard covers several labels */
        {"a.b.example.org", 3},       /* longer wildcard beats shorter */
        {"d.c.b.example.org", 3},
        {"b.example.org", 1},         /* "*.b.example.org" needs a label before */
        {"foo.b.example.org", 5},
        {"bar.foo.b.example.org", 3},
        {"localhost", 6},
        {"xn--bcher-kva.example", 7},
        {"XN--BCHER-KVA.EXAMPLE", 7},
        {"EXAMPLE.ORG", 0},           /* case */
        {"Example.Org.", 0},          /* trailing dot */
        {"A.EXAMPLE.ORG.", 2},
        {"X.Example.Org", 1},
        {"example.com", 4},           /* catch-all */
        {"org", 4},
        {"", 4},
        {".", 4},
        {"example.org..", 4},         /* only one dot is ignored */
        {".example.org", 4},          /* empty label: not a name */
        {"x..example.org", 4},
        {"x y.example.org", 4},
        {"x_y.example.org", 4},
        {"-x.example.org", 4},
        {"x-.example.org", 4},
        {"ab--x.example.org", 4},
        {"xn--x.example.org", 1},
        {"*.example.org", 4},         /* a literal star is not a name */
        {"*", 4},
        {"caf\xc3\xa9.example.org", 4},
        {"example.org:443", 4},
        {"xample.org", 4},
        {"eexample.org", 4},
        {"example.orgx", 4},
        {"xexample.org", 4},
    };
    check(t, w, PT_ARRAY_LEN(w));

    /* embedded NUL and a NULL pointer with zero length */
    cr_expect_eq(lookup(t, "exa\0mple.org", 12), 4);
    cr_expect_eq(lookup(t, "example.org\0", 12), 4);
    cr_expect_eq(pt_route_lookup(t, NULL, 0), 4);
    /* a length shorter than the buffer is honoured */
    cr_expect_eq(pt_route_lookup(t, "example.org.evil", 11), 0);
    cr_expect_eq(pt_route_lookup(t, "a.example.org", 1), 4);
    pt_route_free(t);
}

Test(route, no_catchall)
{
    static const char *const names[] = {"example.org", "*.example.org", "*.a.b.c.d"};
    struct pt_route_table *t = pt_route_build(names, PT_ARRAY_LEN(names));
    static const struct want w[] = {
        {"example.org", 0},   {"x.example.org", 1}, {"example.com", -1},
        {"", -1},             {".", -1},            {"org", -1},
        {"a.b.c.d", -1},      {"x.a.b.c.d", 2},     {"x.b.c.d", -1},
        {"x.example.org.", 1}, {"com", -1},         {"x..example.org", -1},
        {"b.c.d", -1},
    };
    check(t, w, PT_ARRAY_LEN(w));
    pt_route_free(t);
}

Test(route, empty_and_catchall_only)
{
    struct pt_route_table *t = pt_route_build(NULL, 0);
    cr_expect_eq(lookup_s(t, "example.org"), -1);
    cr_expect_eq(lookup_s(t, ""), -1);
    pt_route_free(t);

    static const char *const star[] = {"*"};
    t = pt_route_build(star, 1);
    cr_expect_eq(lookup_s(t, "example.org"), 0);
    cr_expect_eq(lookup_s(t, ""), 0);
    cr_expect_eq(lookup_s(t, "not a name"), 0);
    pt_route_free(t);

    pt_route_free(NULL);
}

Test(route, long_keys)
{
    static const char *const names[] = {"*.example.org", "*"};
    struct pt_route_table *t = pt_route_build(names, PT_ARRAY_LEN(names));
    char key[400];

    /* 253 bytes ending in .example.org: matches the wildcard */
    size_t n = 253 - strlen(".example.org");
    for (size_t i = 0; i < n; i++)
        key[i] = (i % 62 == 61) ? '.' : 'a';
    memcpy(key + n, ".example.org", 13);
    cr_assert_eq(strlen(key), 253);
    cr_expect_eq(lookup(t, key, 253), 0);
    key[253] = '.';
    cr_expect_eq(lookup(t, key, 254), 0); /* plus the root dot */

    /* 254 bytes: too long for a name, catch-all only */
    memmove(key + 1, key, 253);
    key[0] = 'a';
    cr_expect_eq(lookup(t, key, 254), 1);

    /* a 64-byte label */
    memset(key, 'a', 64);
    memcpy(key + 64, ".example.org", 13);
    cr_expect_eq(lookup_s(t, key), 1);
    cr_expect_eq(lookup_s(t, key + 1), 0);

    /* the most labels a key can have */
    for (size_t i = 0; i < 241; i++)
        key[i] = (i % 2) ? '.' : 'a';
    memcpy(key + 241, ".example.org", 13);
    cr_assert_eq(strlen(key), 253);
    cr_expect_eq(lookup(t, key, 253), 0);

    /* a huge key is refused without being walked past its length check */
    static char huge[1 << 16];
    memset(huge, 'a', sizeof(huge));
    cr_expect_eq(pt_route_lookup(t, huge, sizeof(huge)), 1);
    pt_route_free(t);
}

/* The order of the names passed to build does not matter. */
Test(route, order_independent)
{
    static const char *const fwd[] = {"*.b.example.org", "*.example.org", "a.b.example.org"};
    static const char *const rev[] = {"a.b.example.org", "*.example.org", "*.b.example.org"};
    struct pt_route_table *t1 = pt_route_build(fwd, 3);
    struct pt_route_table *t2 = pt_route_build(rev, 3);
    cr_expect_eq(lookup_s(t1, "x.b.example.org"), 0);
    cr_expect_eq(lookup_s(t2, "x.b.example.org"), 2);
    cr_expect_eq(lookup_s(t1, "a.b.example.org"), 2);
    cr_expect_eq(lookup_s(t2, "a.b.example.org"), 0);
    cr_expect_eq(lookup_s(t1, "b.example.org"), 1);
    cr_expect_eq(lookup_s(t2, "b.example.org"), 1);
    pt_route_free(t1);
    pt_route_free(t2);
}

Test(route, duplicate_is_a_bug, .signal = SIGABRT)
{
    static const char *const names[] = {"example.org", "a.org", "example.org"};
    pt_route_build(names, 3);
}

Test(route, duplicate_wildcard_is_a_bug, .signal = SIGABRT)
{
    static const char *const names[] = {"*.example.org", "*.example.org"};
    pt_route_build(names, 2);
}

Test(route, duplicate_catchall_is_a_bug, .signal = SIGABRT)
{
    static const char *const names[] = {"*", "*"};
    pt_route_build(names, 2);
}

Test(route, unnormalised_name_is_a_bug, .signal = SIGABRT)
{
    static const char *const names[] = {"Example.org"};
    pt_route_build(names, 1);
}

/* A name and the wildcard over it are different keys. */
Test(route, name_and_wildcard_coexist)
{
    static const char *const names[] = {"example.org", "*.example.org", "x.example.org",
                                        "*.x.example.org"};
    struct pt_route_table *t = pt_route_build(names, 4);
    static const struct want w[] = {
        {"example.org", 0}, {"y.example.org", 1}, {"x.example.org", 2},
        {"y.x.example.org", 3}, {"org", -1},
    };
    check(t, w, PT_ARRAY_LEN(w));
    pt_route_free(t);
}

#define MANY 10000

/* Route i is an exact name when i is even, a wildcard when odd; wildcards
 * nest every tenth so that longest-suffix matters at scale too. */
static void many_name(char *buf, size_t size, int i)
{
    if (i % 2 == 0)
        snprintf(buf, size, "host%d.zone%d.example.com", i, i % 97);
    else if (i % 10 == 1)
        snprintf(buf, size, "*.w%d.zone%d.example.net", i, i % 97);
    else
        snprintf(buf, size, "*.sub.w%d.zone%d.example.net", i - 2, (i - 2) % 97);
}

Test(route, ten_thousand)
{
    char (*store)[64] = calloc(MANY, 64);
    const char **names = calloc(MANY, sizeof(*names));
    cr_assert(store && names);
    for (int i = 0; i < MANY; i++) {
        many_name(store[i], 64, i);
        names[i] = store[i];
    }
    /* The nested names above must be unique for this test to mean anything. */
    struct pt_route_table *t = pt_route_build(names, MANY);

    char key[128];
    int bad = 0;
    for (int i = 0; i < MANY; i++) {
        int want_exact = -1, want_wild = -1;
        if (i % 2 == 0) {
            snprintf(key, sizeof(key), "host%d.zone%d.example.com", i, i % 97);
            want_exact = i;
        } else if (i % 10 == 1) {
            snprintf(key, sizeof(key), "a.b.w%d.zone%d.example.net", i, i % 97);
            want_wild = i;
        } else {
            snprintf(key, sizeof(key), "a.sub.w%d.zone%d.example.net", i - 2, (i - 2) % 97);
            want_wild = i;
        }
        int v = lookup_s(t, key);
        int want = want_exact >= 0 ? want_exact : want_wild;
        if (v != want && bad++ < 20)
            cr_expect_eq(v, want, "%s", key);

        /* same key shouted, with a root dot */
        for (char *p = key; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 32);
        size_t n = strlen(key);
        key[n] = '.';
        if (pt_route_lookup(t, key, n + 1) != want && bad++ < 20)
            cr_expect_fail("%.*s: upper case", (int)n + 1, key);

        /* misses next to every route */
        snprintf(key, sizeof(key), "host%d.zone%d.example.co", i, i % 97);
        if (pt_route_lookup(t, key, strlen(key)) != -1 && bad++ < 20)
            cr_expect_fail("%s: should miss", key);
        snprintf(key, sizeof(key), "w%d.zone%d.example.net", i, i % 97);
        if (pt_route_lookup(t, key, strlen(key)) != -1 && bad++ < 20)
            cr_expect_fail("%s: should miss", key);
    }
    cr_expect_eq(bad, 0, "%d wrong lookups", bad);
    pt_route_free(t);
    free(names);
    free(store);
}

/* ---- differential test against an obviously correct matcher ------------- */

/* The reference: normalise the key as a name, then scan. */
static int ref_lookup(const char *const *names, size_t n, const char *key, size_t len)
{
    int star = -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], "*") == 0)
            star = (int)i;
    char norm[PT_DNAME_MAX + 1];
    int nl = pt_dname_normalize(key, len, norm, 0, NULL);
    if (nl < 0)
        return star;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], norm) == 0)
            return (int)i;
    for (const char *dot = strchr(norm, '.'); dot; dot = strchr(dot + 1, '.')) {
        for (size_t i = 0; i < n; i++)
            if (names[i][0] == '*' && names[i][1] == '.' && strcmp(names[i] + 2, dot + 1) == 0)
                return (int)i;
    }
    return star;
}

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Keys from a tiny alphabet so that they often hit the table, and often are
 * almost-valid names. */
static size_t random_key(char *buf, size_t max)
{
    static const char alpha[] = "abAB..-x-n*_\0.";
    size_t len = rng() % max;
    for (size_t i = 0; i < len; i++)
        buf[i] = alpha[rng() % (sizeof(alpha) - 1)];
    return len;
}

Test(route, differential)
{
    for (int round = 0; round < 50; round++) {
        /* a random set of distinct valid names, wildcards included */
        char store[40][16];
        const char *names[40];
        size_t n = 0;
        for (int tries = 0; tries < 400 && n < 40; tries++) {
            char key[16], norm[PT_DNAME_MAX + 1];
            size_t len = random_key(key, 10);
            int nl = pt_dname_normalize(key, len, norm, PT_DNAME_ALLOW_WILDCARD, NULL);
            if (nl < 0)
                continue;
            bool dup = false;
            for (size_t i = 0; i < n; i++)
                dup = dup || strcmp(store[i], norm) == 0;
            if (dup)
                continue;
            memcpy(store[n], norm, (size_t)nl + 1);
            names[n] = store[n];
            n++;
        }
        struct pt_route_table *t = pt_route_build(names, n);
        for (int k = 0; k < 5000; k++) {
            char key[16];
            size_t len = random_key(key, 14);
            int want = ref_lookup(names, n, key, len);
            int got = lookup(t, key, len);
            if (got != want) {
                cr_assert_eq(got, want, "key \"%.*s\" (%zu bytes): got %d, want %d",
                             (int)len, key, len, got, want);
            }
        }
        pt_route_free(t);
    }
}
