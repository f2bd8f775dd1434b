/* libFuzzer target for common/proxyproto.c.
 *
 * Parser invariants on any input: the result is NEEDMORE, MALFORMED or a
 * length within <size> and the version's maximum; an accepted header parses
 * the same on its own; every proper prefix of it asks for more (never
 * refused, never accepted); the authority lies inside the header. Accepted
 * addresses are re-encoded in v1 and v2 and must come back as the encoder's
 * family rule says. The same bytes also drive the encoder directly.
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -o fuzz_pp tests/fuzz/fuzz_proxyproto.c common/proxyproto.c common/pt.c
 *   ./fuzz_pp tests/fuzz/corpus/proxyproto
 */
#include "common/proxyproto.h"

#include <arpa/inet.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_proxyproto: %s:%d: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* An endpoint as the encoder promises to send it. */
struct ep {
    int family;
    uint8_t ip[16];
    uint16_t port;
};

static struct ep ep_of(const struct sockaddr_storage *ss)
{
    struct ep e;
    memset(&e, 0, sizeof(e));
    e.family = ss->ss_family;
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, ss, sizeof(sin));
        memcpy(e.ip, &sin.sin_addr, 4);
        e.port = ntohs(sin.sin_port);
    } else if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, ss, sizeof(sin6));
        memcpy(e.ip, &sin6.sin6_addr, 16);
        e.port = ntohs(sin6.sin6_port);
    }
    return e;
}

static bool ep_mapped(const struct ep *e)
{
    static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return e->family == AF_INET6 && memcmp(e->ip, pfx, 12) == 0;
}

static void ep_unmap(struct ep *e)
{
    if (ep_mapped(e)) {
        memmove(e->ip, e->ip + 12, 4);
        memset(e->ip + 4, 0, 12);
        e->family = AF_INET;
    }
}

/* The documented rule, written again independently of the encoder: unmap
 * both, then dst takes src's family (mapped into v6, or 0.0.0.0). */
static void expected_pair(struct ep *s, struct ep *d)
{
    ep_unmap(s);
    ep_unmap(d);
    if (s->family == d->family)
        return;
    if (s->family == AF_INET6) {
        uint8_t v4[4];
        memcpy(v4, d->ip, 4);
        memset(d->ip, 0, 16);
        d->ip[10] = 0xff;
        d->ip[11] = 0xff;
        memcpy(d->ip + 12, v4, 4);
        d->family = AF_INET6;
    } else {
        memset(d->ip, 0, 16);
        d->family = AF_INET;
    }
}

static bool ep_eq(const struct ep *a, const struct ep *b)
{
    size_t n = a->family == AF_INET ? 4 : 16;
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, n) == 0;
}

static void check_info(const uint8_t *buf, int rc, const struct pt_proxyproto_info *info)
{
    if (info->authority != NULL) {
        const uint8_t *a = (const uint8_t *)info->authority;
        CHECK(info->version == PT_PP_V2);
        CHECK(a >= buf + 16 && a <= buf + rc);
        CHECK(info->authority_len >= 1 && info->authority_len <= 255);
        CHECK(info->authority_len <= (size_t)(buf + rc - a));
        CHECK(memchr(a, '\0', info->authority_len) == NULL);
    } else {
        CHECK(info->authority_len == 0);
    }
    if (info->local) {
        CHECK(info->src.ss_family == AF_UNSPEC && info->dst.ss_family == AF_UNSPEC);
    } else {
        CHECK(info->src.ss_family == AF_INET || info->src.ss_family == AF_INET6);
        CHECK(info->src.ss_family == info->dst.ss_family);
    }
}

/* Encodes <s> -> <d> and checks the result parses back as promised. */
static void roundtrip(enum pt_pp_version v, const struct sockaddr_storage *s,
                      const struct sockaddr_storage *d, const char *auth, size_t alen)
{
    uint8_t out[PT_PP_OUT_MAX];
    struct pt_proxyproto_info back;
    bool auth_ok = v == PT_PP_V1 || auth == NULL ||
                   (alen <= 255 && memchr(auth, '\0', alen) == NULL);

    int n = pt_proxyproto_encode(v, (const struct sockaddr *)s,
                                 (const struct sockaddr *)d, auth, alen, out, sizeof(out));
    if (!auth_ok) {
        CHECK(n == PT_EINVAL);
        return;
    }
    CHECK(n > 0 && n <= PT_PP_OUT_MAX);
    CHECK(v != PT_PP_V1 || n <= PT_PP_V1_MAX);
    /* On its own buffer of exactly <n> bytes, so ASan sees any overread. */
    uint8_t *copy = malloc((size_t)n);
    CHECK(copy != NULL);
    memcpy(copy, out, (size_t)n);
    CHECK(pt_proxyproto_parse(copy, (size_t)n, &back) == n);
    CHECK(back.version == v && !back.local);
    check_info(copy, n, &back);

    struct ep es = ep_of(s);
    struct ep ed = ep_of(d);
    expected_pair(&es, &ed);
    struct ep gs = ep_of(&back.src);
    struct ep gd = ep_of(&back.dst);
    CHECK(ep_eq(&es, &gs));
    CHECK(ep_eq(&ed, &gd));
    if (v == PT_PP_V2 && auth != NULL && alen > 0) {
        CHECK(back.authority_len == alen);
        CHECK(memcmp(back.authority, auth, alen) == 0);
    } else {
        CHECK(back.authority == NULL);
    }
    free(copy);
}

static void fuzz_parser(const uint8_t *data, size_t size)
{
    struct pt_proxyproto_info info;
    int rc = pt_proxyproto_parse(data, size, &info);

    /* What a trusted front's bytes are taken for: no signature means no
     * header (the parser agrees), and a header starts with a signature. */
    int det = pt_proxyproto_detect(data, size);
    CHECK(det == 0 || det == 1 || det == PT_ENEEDMORE);
    if (det == 0)
        CHECK(rc == PT_EMALFORMED);
    if (rc > 0)
        CHECK(det == 1);
    if (rc == PT_EMALFORMED)
        return;
    if (rc == PT_ENEEDMORE) {
        /* Nothing is worth waiting for past the largest header. */
        CHECK(size < PT_PP_V2_MAX);
        return;
    }
    CHECK(rc > 0 && (size_t)rc <= size);
    CHECK(info.version == PT_PP_V1 || info.version == PT_PP_V2);
    CHECK(rc <= (info.version == PT_PP_V1 ? PT_PP_V1_MAX : PT_PP_V2_MAX));
    CHECK(info.version == (data[0] == 'P' ? PT_PP_V1 : PT_PP_V2));
    if (info.version == PT_PP_V1)
        CHECK(data[rc - 2] == '\r' && data[rc - 1] == '\n');
    check_info(data, rc, &info);

    /* Exactness: the header alone gives the same answer, and each proper
     * prefix, placed at the end of an exact-size heap block so any read past
     * its end is caught, asks for more. */
    size_t hl = (size_t)rc;
    uint8_t *copy = malloc(hl);
    CHECK(copy != NULL);
    struct pt_proxyproto_info again;
    memcpy(copy, data, hl);
    CHECK(pt_proxyproto_parse(copy, hl, &again) == rc);
    CHECK(again.version == info.version && again.local == info.local);
    CHECK(again.authority_len == info.authority_len);
    for (size_t k = 0; k < hl; k++) {
        memcpy(copy + hl - k, data, k);
        CHECK(pt_proxyproto_parse(copy + hl - k, k, &again) == PT_ENEEDMORE);
    }
    free(copy);

    if (!info.local) {
        roundtrip(PT_PP_V1, &info.src, &info.dst, NULL, 0);
        roundtrip(PT_PP_V2, &info.src, &info.dst, info.authority, info.authority_len);
    }
}

/* Builds endpoints from the input: byte 0 picks version and families (v4,
 * v6, mapped v4), then 16+2 bytes per endpoint, the rest is the authority. */
static void fuzz_encoder(const uint8_t *data, size_t size)
{
    if (size < 1 + 2 * 18)
        return;
    uint8_t ctl = data[0];
    const uint8_t *p = data + 1;
    struct sockaddr_storage ss[2];

    for (int i = 0; i < 2; i++) {
        unsigned kind = (ctl >> (1 + 2 * i)) % 3;
        uint16_t port = (uint16_t)((p[16] << 8) | p[17]);
        memset(&ss[i], 0, sizeof(ss[i]));
        if (kind == 0) {
            struct sockaddr_in sin;
            memset(&sin, 0, sizeof(sin));
            sin.sin_family = AF_INET;
            memcpy(&sin.sin_addr, p, 4);
            sin.sin_port = htons(port);
            memcpy(&ss[i], &sin, sizeof(sin));
        } else {
            struct sockaddr_in6 sin6;
            memset(&sin6, 0, sizeof(sin6));
            sin6.sin6_family = AF_INET6;
            memcpy(&sin6.sin6_addr, p, 16);
            if (kind == 2) {
                memset(&sin6.sin6_addr, 0, 10);
                sin6.sin6_addr.s6_addr[10] = 0xff;
                sin6.sin6_addr.s6_addr[11] = 0xff;
            }
            sin6.sin6_port = htons(port);
            memcpy(&ss[i], &sin6, sizeof(sin6));
        }
        p += 18;
    }
    size_t alen = size - (size_t)(p - data);
    if (alen > 300)
        alen = 300;
    const char *auth = alen > 0 ? (const char *)p : NULL;
    roundtrip((ctl & 1) ? PT_PP_V2 : PT_PP_V1, &ss[0], &ss[1], auth, alen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parser(data, size);
    fuzz_encoder(data, size);
    return 0;
}
