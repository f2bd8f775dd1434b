/* What a worker spends applying one domain write (common/delta.h), against
 * the number of domains configured.
 *
 * For N domains: a snapshot as a worker holds it (decoded), then one-domain
 * deltas applied (a) in place, when no connection holds the snapshot, and
 * (b) while a connection holds it, so the worker derives a successor (one
 * copy of the domain array and of the route table's slots). Prints one line
 * per N with the median and p99 CPU microseconds of each (the thread's CPU
 * time, page faults included, so other load on the machine does not count), and what a whole
 * snapshot decode costs for comparison (what every write did before).
 *
 *   make all && gcc -O2 -I. bench/delta_bench.c build/libportier.a \
 *       $(pkg-config --libs libuv openssl jansson) -o build/delta_bench && build/delta_bench
 */
#include "common/delta.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 200

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct pt_snapshot *make(size_t n, struct pt_wbuf *enc)
{
    struct pt_snapshot *s = pt_xcalloc(1, sizeof(*s));
    s->refs = 1;
    s->n_backends = 1;
    s->backends = pt_xcalloc(1, sizeof(*s->backends));
    s->backends[0].name = pt_xstrdup("be");
    s->backends[0].n_servers = 1;
    s->backends[0].servers = pt_xcalloc(1, sizeof(*s->backends[0].servers));
    pt_hostport_parse("127.0.0.1:9", 11, &s->backends[0].servers[0], NULL);
    s->backends[0].http_servers = pt_xcalloc(1, sizeof(*s->backends[0].http_servers));
    s->n_domains = n;
    s->domains = pt_xcalloc(n, sizeof(*s->domains));
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "d%zu.bench.test", i);
        s->domains[i].name = pt_xstrdup(name);
        s->domains[i].backend = pt_xstrdup("be");
        s->domains[i].headers = pt_xcalloc(1, sizeof(*s->domains[i].headers));
    }
    if (pt_snap_link(s) != 0)
        abort();
    pt_snap_encode(s, enc);
    pt_snap_unref(s);
    struct pt_snapshot *out;
    if (pt_snap_decode(enc->data, enc->len, &out) != 0)
        abort();
    return out;
}

/* One delta adding a new domain, as the wire brings it. */
static void one(struct pt_delta *d, size_t i, uint64_t v)
{
    char name[64];
    struct pt_wbuf w = {0};
    struct pt_domain dm = {0};
    snprintf(name, sizeof(name), "new%zu.bench.test", i);
    dm.name = pt_xstrdup(name);
    dm.backend = pt_xstrdup("be");
    dm.headers = pt_xcalloc(1, sizeof(*dm.headers));
    struct pt_delta tmp = {0};
    pt_delta_put_domain(&tmp, &dm);
    tmp.version = v;
    pt_delta_encode(&tmp, &w);
    pt_delta_clear(&tmp);
    if (pt_delta_decode(w.data, w.len, d) != 0)
        abort();
    pt_wbuf_free(&w);
}

static double run(struct pt_snapshot **s, bool held, size_t base, double *p99)
{
    double t[ROUNDS];
    bool bc;
    for (size_t i = 0; i < ROUNDS; i++) {
        struct pt_delta d;
        one(&d, base + i, (*s)->version + 1);
        struct pt_snapshot *conn = held ? pt_snap_ref(*s) : NULL;
        double t0 = now_us();
        if (pt_delta_apply(s, &d, &bc) != 0)
            abort();
        t[i] = now_us() - t0;
        pt_delta_clear(&d);
        pt_snap_unref(conn);
    }
    qsort(t, ROUNDS, sizeof(*t), cmp);
    *p99 = t[ROUNDS * 99 / 100];
    return t[ROUNDS / 2];
}

int main(void)
{
    /* As a worker with 10,000 domains or more (worker.c, tune_malloc);
     * PLAIN_MALLOC=1 shows glibc's defaults. */
    if (getenv("PLAIN_MALLOC") == NULL) {
        mallopt(M_MMAP_THRESHOLD, 64 << 20);
        mallopt(M_TRIM_THRESHOLD, 128 << 20);
    }
    static const size_t sizes[] = {1000, 10000, 100000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
        struct pt_wbuf enc = {0};
        struct pt_snapshot *s = make(sizes[k], &enc);
        double t0 = now_us();
        struct pt_snapshot *whole;
        if (pt_snap_decode(enc.data, enc.len, &whole) != 0)
            abort();
        double decode = now_us() - t0;
        pt_snap_unref(whole);
        double p99a, p99b;
        double a = run(&s, false, 0, &p99a);
        double b = run(&s, true, ROUNDS, &p99b);
        printf("%6zu domains: delta in place median %.1f us p99 %.1f us; delta with the "
               "snapshot held median %.1f us p99 %.1f us; whole snapshot decode %.0f us "
               "(%zu bytes)\n",
               sizes[k], a, p99a, b, p99b, decode, enc.len);
        pt_snap_unref(s);
        pt_wbuf_free(&enc);
    }
    return 0;
}
