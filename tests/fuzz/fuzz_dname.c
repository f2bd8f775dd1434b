/* libFuzzer target for the text parsers users and peers reach: names
 * (pt_dname_normalize under every flag combination), host:port
 * (pt_hostport_parse, pt_listen_parse) and CIDR (pt_cidr_parse).
 *
 * Beyond "does not crash or over-read" it checks that each accepted input
 * has a normal form that is valid, bounded and a fixed point of the parser,
 * so that what the API stores and shows parses back to the same thing. */
#include "common/addr.h"
#include "common/dname.h"

#include <arpa/inet.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                           \
        }                                                                      \
    } while (0)

static bool is_name_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* The shape every normalised name has, checked independently of dname.c. */
static void check_name(const char *s, size_t len, unsigned flags)
{
    CHECK(len >= 1 && len <= PT_DNAME_MAX);
    CHECK(strlen(s) == len);
    CHECK(s[len - 1] != '.');
    size_t i = 0;
    if (s[0] == '*') {
        CHECK(flags & PT_DNAME_ALLOW_WILDCARD);
        if (len == 1)
            return;
        CHECK(s[1] == '.');
        i = 2;
        /* at least two labels after "*." */
        CHECK(memchr(s + 2, '.', len - 2) != NULL);
    }
    size_t label = 0;
    for (; i < len; i++) {
        CHECK(is_name_byte(s[i]));
        if (s[i] == '.') {
            CHECK(label >= 1 && label <= 63);
            CHECK(s[i - 1] != '-');
            label = 0;
        } else {
            if (label == 0)
                CHECK(s[i] != '-');
            label++;
        }
    }
    CHECK(label >= 1 && label <= 63);
}

static void fuzz_dname(const char *in, size_t len)
{
    static const unsigned all_flags[] = {
        0, PT_DNAME_ALLOW_WILDCARD, PT_DNAME_STRIP_PORT,
        PT_DNAME_ALLOW_WILDCARD | PT_DNAME_STRIP_PORT,
    };
    int rcs[PT_ARRAY_LEN(all_flags)];
    for (size_t f = 0; f < PT_ARRAY_LEN(all_flags); f++) {
        unsigned flags = all_flags[f];
        char out[PT_DNAME_MAX + 1], again[PT_DNAME_MAX + 1];
        const char *why = NULL;
        int rc = pt_dname_normalize(in, len, out, flags, &why);
        rcs[f] = rc;
        if (rc < 0) {
            CHECK(rc == PT_EMALFORMED);
            CHECK(why != NULL && why[0] != '\0');
            continue;
        }
        check_name(out, (size_t)rc, flags);
        /* a fixed point: the output normalises to itself */
        int rc2 = pt_dname_normalize(out, (size_t)rc, again, flags, NULL);
        CHECK(rc2 == rc);
        CHECK(memcmp(again, out, (size_t)rc + 1) == 0);
        /* and it is the lowercase of the input, up to a dot and a port */
        for (int i = 0; i < rc; i++) {
            char c = in[i];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            CHECK(out[i] == c);
        }
    }
    /* A flag only widens what is accepted: a plain name has no ':' or '[' for
     * STRIP_PORT to act on, nor a '*' for ALLOW_WILDCARD. */
    if (rcs[0] >= 0)
        CHECK(rcs[1] == rcs[0] && rcs[2] == rcs[0] && rcs[3] == rcs[0]);
    if (rcs[1] >= 0)
        CHECK(rcs[3] == rcs[1]);
    if (rcs[2] >= 0)
        CHECK(rcs[3] == rcs[2]);
}

static void fuzz_hostport(const char *in, size_t len)
{
    struct pt_hostport hp;
    const char *why = NULL;
    int rc = pt_hostport_parse(in, len, &hp, &why);
    if (rc < 0) {
        CHECK(rc == PT_EMALFORMED && why != NULL);
    } else {
        CHECK(rc == 0);
        CHECK(hp.port >= 1);
        size_t hl = strnlen(hp.host, sizeof(hp.host));
        CHECK(hl >= 1 && hl <= PT_HOST_MAX);
        switch (hp.kind) {
        case PT_HOST_DNS:
            check_name(hp.host, hl, 0);
            CHECK(hp.salen == 0);
            break;
        case PT_HOST_IPV4:
            CHECK(hp.sa.ss_family == AF_INET && hp.salen == sizeof(struct sockaddr_in));
            break;
        case PT_HOST_IPV6:
            CHECK(hp.sa.ss_family == AF_INET6 && hp.salen == sizeof(struct sockaddr_in6));
            break;
        default:
            CHECK(!"bad kind");
        }
        if (hp.kind != PT_HOST_DNS)
            CHECK(pt_sockaddr_port((const struct sockaddr *)&hp.sa) == hp.port);

        char buf[PT_HOST_MAX + 9];
        size_t n = pt_hostport_format(&hp, buf, sizeof(buf));
        CHECK(n < sizeof(buf) && strlen(buf) == n);
        struct pt_hostport again;
        CHECK(pt_hostport_parse(buf, n, &again, NULL) == 0);
        CHECK(memcmp(&again, &hp, sizeof(hp)) == 0);
    }

    struct sockaddr_storage ss;
    socklen_t sl;
    int lrc = pt_listen_parse(in, len, &ss, &sl, &why);
    /* listen addresses are exactly the IP-literal host:ports */
    CHECK((lrc == 0) == (rc == 0 && hp.kind != PT_HOST_DNS));
    if (lrc == 0) {
        CHECK(sl == hp.salen && memcmp(&ss, &hp.sa, sl) == 0);
        char buf[PT_ADDRSTR_MAX];
        size_t n = pt_sockaddr_format((const struct sockaddr *)&ss, buf, sizeof(buf));
        CHECK(n > 0 && n < sizeof(buf));
        n = pt_sockaddr_ip((const struct sockaddr *)&ss, buf, sizeof(buf));
        CHECK(n > 0 && n < sizeof(buf));
    }
}

static void fuzz_cidr(const char *in, size_t len)
{
    struct pt_cidr c;
    const char *why = NULL;
    int rc = pt_cidr_parse(in, len, &c, &why);
    if (rc < 0) {
        CHECK(rc == PT_EMALFORMED && why != NULL);
        return;
    }
    CHECK(c.family == AF_INET || c.family == AF_INET6);
    unsigned max = c.family == AF_INET ? 32 : 128;
    CHECK(c.bits <= max);
    /* no bit set past the prefix (nor past 4 bytes for IPv4) */
    for (unsigned bit = c.bits; bit < 128; bit++)
        CHECK(!(c.addr[bit / 8] & (0x80 >> (bit % 8))));
    if (c.family == AF_INET6)
        CHECK(!(c.bits >= 96 && memcmp(c.addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0));

    char buf[PT_ADDRSTR_MAX];
    size_t n = pt_cidr_format(&c, buf, sizeof(buf));
    CHECK(n > 0 && n < sizeof(buf) && strlen(buf) == n);
    struct pt_cidr again;
    CHECK(pt_cidr_parse(buf, n, &again, NULL) == 0);
    CHECK(memcmp(&again, &c, sizeof(c)) == 0);

    /* the network address itself is inside, also seen through a v6 socket */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (c.family == AF_INET) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, c.addr, 4);
        memcpy(&ss, &sin, sizeof(sin));
        CHECK(pt_cidr_contains(&c, (const struct sockaddr *)&ss));

        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_addr.s6_addr[10] = 0xff;
        sin6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(sin6.sin6_addr.s6_addr + 12, c.addr, 4);
        memcpy(&ss, &sin6, sizeof(sin6));
        CHECK(pt_cidr_contains(&c, (const struct sockaddr *)&ss));
    } else {
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        memcpy(&sin6.sin6_addr, c.addr, 16);
        memcpy(&ss, &sin6, sizeof(sin6));
        /* unless the network is so wide it covers the v4-mapped range, which
         * counts as IPv4 */
        bool mapped = memcmp(c.addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;
        CHECK(pt_cidr_contains(&c, (const struct sockaddr *)&ss) == !mapped);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy: ASan then flags any read past <size>. */
    char *in = pt_xmalloc(size ? size : 1);
    if (size)
        memcpy(in, data, size);
    fuzz_dname(in, size);
    fuzz_hostport(in, size);
    fuzz_cidr(in, size);
    free(in);
    return 0;
}
