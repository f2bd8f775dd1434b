/* Route lookup cost against table size.
 *
 * Builds tables of 1 and 10,000 domains (each domain as an exact name plus a
 * wildcard under it) and times exact hits, wildcard hits and misses with keys
 * of the same shape in both, so the ratio shows only what the table size
 * costs. Expect a ratio near 1: a lookup is one hash pass over the key and a
 * probe per label, whatever the number of routes; what remains is caches.
 *
 *   gcc -O2 -I. bench/route_bench.c common/route.c common/dname.c common/pt.c
 */
#include "common/route.h"

#include <time.h>

#define BIG 10000
#define NKEYS 4096 /* distinct keys per run, cycled */
#define ROUNDS 2000000

struct keys {
    char text[NKEYS][64];
    size_t len[NKEYS];
};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Domain i is "site<i>.example.com" and "*.site<i>.example.com"; fixed-width
 * numbers keep every key the same length in both tables. */
static struct pt_route_table *build(size_t ndomains, char (*store)[64], const char **names)
{
    for (size_t i = 0; i < ndomains; i++) {
        snprintf(store[2 * i], 64, "site%05zu.example.com", i);
        snprintf(store[2 * i + 1], 64, "*.site%05zu.example.com", i);
        names[2 * i] = store[2 * i];
        names[2 * i + 1] = store[2 * i + 1];
    }
    return pt_route_build(names, 2 * ndomains);
}

enum kind { HIT = 0, WILD, MISS };

static void make_keys(struct keys *k, size_t ndomains, enum kind kind)
{
    /* "site..." is the name, "www.site..." falls under its wildcard, and
     * "www.site....net" has the same shape but is in neither table. */
    const char *prefix = kind == HIT ? "" : "www.";
    const char *tld = kind == MISS ? "net" : "com";
    for (size_t i = 0; i < NKEYS; i++) {
        /* spread the keys over the whole table */
        size_t d = (i * 7919) % ndomains;
        k->len[i] = (size_t)snprintf(k->text[i], sizeof(k->text[i]), "%ssite%05zu.example.%s",
                                     prefix, d, tld);
    }
}

static volatile int sink;

static double time_lookups(const struct pt_route_table *t, const struct keys *k,
                           int expect_hit)
{
    int acc = 0;
    /* warm up, and check the table answers what the bench claims to measure */
    for (size_t i = 0; i < NKEYS; i++) {
        int v = pt_route_lookup(t, k->text[i], k->len[i]);
        if ((v >= 0) != expect_hit) {
            fprintf(stderr, "route_bench: unexpected result %d for %s\n", v, k->text[i]);
            exit(1);
        }
    }
    double t0 = now_ns();
    for (size_t r = 0; r < ROUNDS; r++) {
        size_t i = r % NKEYS;
        acc += pt_route_lookup(t, k->text[i], k->len[i]);
    }
    double t1 = now_ns();
    sink = acc;
    return (t1 - t0) / ROUNDS;
}

int main(void)
{
    static char store[2 * BIG][64];
    static const char *names[2 * BIG];
    static struct keys keys;
    static const char *const label[] = {"exact hit", "wildcard hit", "miss"};
    double ns[2][3];
    const size_t sizes[2] = {1, BIG};

    for (int s = 0; s < 2; s++) {
        struct pt_route_table *t = build(sizes[s], store, names);
        for (int kind = HIT; kind <= MISS; kind++) {
            make_keys(&keys, sizes[s], (enum kind)kind);
            double best = 1e30;
            /* best of five: the minimum is the least disturbed run */
            for (int rep = 0; rep < 5; rep++) {
                double v = time_lookups(t, &keys, kind != MISS);
                if (v < best)
                    best = v;
            }
            ns[s][kind] = best;
        }
        pt_route_free(t);
    }

    printf("%-14s %12s %12s %8s\n", "lookup", "1 domain", "10000 dom.", "ratio");
    for (int kind = HIT; kind <= MISS; kind++)
        printf("%-14s %9.1f ns %9.1f ns %8.2f\n", label[kind], ns[0][kind], ns[1][kind],
               ns[1][kind] / ns[0][kind]);
    return 0;
}
