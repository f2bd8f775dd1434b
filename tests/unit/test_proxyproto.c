/* Unit tests for common/proxyproto.c.
 *
 * Every parse runs on a copy that ends at a PROT_NONE page (guard.h), so a
 * read one byte past <len> crashes the test. Rows "#n" refer to the table in
 * notes/proxy-protocol.md; rows 18-19 are about timeouts, which are not the
 * parser's business: here they check that the parser decides on the bytes it
 * has (a 64 KiB len is refused at once, a 15-byte prefix asks for more). */
#include "common/proxyproto.h"

#include "tests/unit/guard.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>

#define SIG 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
#define ROW8_ADDR 0xC0, 0x00, 0x02, 0x01, 0xC0, 0x00, 0x02, 0x02, 0x00, 0x7B, 0x16, 0x2E
#define ROW11_ADDR 0x7F, 0x00, 0x00, 0x01, 0x7F, 0x00, 0x00, 0x01, 0x00, 0x2A, 0x05, 0x39

#define ROW1 "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n"
#define ROW2 "PROXY TCP6 2001:db8::1 2001:db8::2 123 5678\r\n"

/* #8 */
static const uint8_t row8[] = {SIG, 0x21, 0x11, 0x00, 0x0C, ROW8_ADDR};
/* #11 */
static const uint8_t row11[] = {SIG, 0x21, 0x11, 0x00, 0x14, ROW11_ADDR,
                                0x02, 0x00, 0x05, '1', '2', '3', '4', '5'};

/* ---- helpers ------------------------------------------------------------- */

/* Parses a guarded copy of <buf>. On success, <info>->authority is moved
 * back into <buf> so it stays valid after the copy is unmapped. */
static int parse(const void *buf, size_t len, struct pt_proxyproto_info *info)
{
    struct pt_guard g;
    uint8_t *p = pt_guard_copy(&g, buf, len);
    int rc = pt_proxyproto_parse(p, len, info);
    if (rc > 0 && info->authority != NULL) {
        cr_assert(info->authority >= (const char *)p &&
                  info->authority + info->authority_len <= (const char *)p + rc);
        info->authority = (const char *)buf + (info->authority - (const char *)p);
    }
    pt_guard_release(&g);
    return rc;
}

static int parse_rc(const void *buf, size_t len)
{
    struct pt_proxyproto_info info;
    return parse(buf, len, &info);
}

static int parse_str(const char *s)
{
    return parse_rc(s, strlen(s));
}

/* Every proper prefix of a valid header, the empty one included, must ask
 * for more input, never be refused or accepted. */
static void expect_prefixes_needmore(const void *buf, size_t len)
{
    for (size_t k = 0; k < len; k++)
        cr_assert_eq(parse_rc(buf, k), PT_ENEEDMORE, "prefix %zu of %zu", k, len);
}

/* A whole valid header: all prefixes need more, the whole is consumed. */
static void expect_valid(const void *buf, size_t len, struct pt_proxyproto_info *info)
{
    expect_prefixes_needmore(buf, len);
    int rc = parse(buf, len, info);
    cr_assert_eq(rc, (int)len, "rc %d (%s) for a %zu-byte header", rc,
                 pt_strerror(rc < 0 ? rc : 0), len);
}

static void assert_addr(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    if (strchr(ip, ':') == NULL) {
        struct sockaddr_in sin;
        struct in_addr want;
        cr_assert_eq(ss->ss_family, AF_INET, "family %d, want AF_INET for %s",
                     ss->ss_family, ip);
        memcpy(&sin, ss, sizeof(sin));
        cr_assert_eq(inet_pton(AF_INET, ip, &want), 1);
        cr_assert_eq(memcmp(&sin.sin_addr, &want, 4), 0, "address is not %s", ip);
        cr_assert_eq(ntohs(sin.sin_port), port);
    } else {
        struct sockaddr_in6 sin6;
        struct in6_addr want;
        cr_assert_eq(ss->ss_family, AF_INET6, "family %d, want AF_INET6 for %s",
                     ss->ss_family, ip);
        memcpy(&sin6, ss, sizeof(sin6));
        cr_assert_eq(inet_pton(AF_INET6, ip, &want), 1);
        cr_assert_eq(memcmp(&sin6.sin6_addr, &want, 16), 0, "address is not %s", ip);
        cr_assert_eq(ntohs(sin6.sin6_port), port);
    }
}

static struct sockaddr_storage mkaddr(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') == NULL) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        cr_assert_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
        memcpy(&ss, &sin, sizeof(sin));
    } else {
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        cr_assert_eq(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
        memcpy(&ss, &sin6, sizeof(sin6));
    }
    return ss;
}

static int encode(enum pt_pp_version v, const char *sip, uint16_t sport,
                  const char *dip, uint16_t dport, const char *auth,
                  uint8_t *out, size_t size)
{
    struct sockaddr_storage s = mkaddr(sip, sport);
    struct sockaddr_storage d = mkaddr(dip, dport);
    return pt_proxyproto_encode(v, (const struct sockaddr *)&s,
                                (const struct sockaddr *)&d, auth,
                                auth ? strlen(auth) : 0, out, size);
}

static void expect_v1_line(const uint8_t *out, int n, const char *want)
{
    cr_assert_eq(n, (int)strlen(want), "length %d, want %zu", n, strlen(want));
    cr_assert_eq(memcmp(out, want, (size_t)n), 0, "got '%.*s', want '%s'", n,
                 (const char *)out, want);
}

/* ---- v1 ------------------------------------------------------------------ */

Test(proxyproto, v1_tcp4)
{
    struct pt_proxyproto_info info;
    expect_valid(ROW1, strlen(ROW1), &info); /* #1 */
    cr_assert_eq(info.version, PT_PP_V1);
    cr_assert(!info.local);
    assert_addr(&info.src, "192.0.2.1", 123);
    assert_addr(&info.dst, "192.0.2.2", 5678);
    cr_assert_null(info.authority);
}

Test(proxyproto, v1_tcp6)
{
    struct pt_proxyproto_info info;
    expect_valid(ROW2, strlen(ROW2), &info); /* #2 */
    cr_assert_eq(info.version, PT_PP_V1);
    cr_assert(!info.local);
    assert_addr(&info.src, "2001:db8::1", 123);
    assert_addr(&info.dst, "2001:db8::2", 5678);
}

Test(proxyproto, v1_tcp6_forms)
{
    static const char *const ok[] = {
        "PROXY TCP6 ::1 :: 0 65535\r\n",
        "PROXY TCP6 2001:DB8::1 2001:db8:0:0:0:0:0:2 1 2\r\n",
        "PROXY TCP6 ::ffff:192.0.2.1 ::ffff:192.0.2.2 1 2\r\n", /* kept as v6 */
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(ok); i++) {
        struct pt_proxyproto_info info;
        expect_valid(ok[i], strlen(ok[i]), &info);
        cr_assert_eq(info.src.ss_family, AF_INET6, "%s", ok[i]);
    }
    static const char *const bad[] = {
        "PROXY TCP6 1::2::3 ::1 1 2\r\n",           /* two "::" */
        "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",      /* scope */
        "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", /* nine groups */
        "PROXY TCP6 12345::1 ::1 1 2\r\n",          /* five hex digits */
        "PROXY TCP6 g::1 ::1 1 2\r\n",
        "PROXY TCP6 ::ffff:192.0.2.01 ::1 1 2\r\n", /* embedded leading zero */
        "PROXY TCP6 [::1] ::1 1 2\r\n",
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++)
        cr_assert_eq(parse_str(bad[i]), PT_EMALFORMED, "%s", bad[i]);
}

Test(proxyproto, v1_unknown)
{
    static const char *const lines[] = {
        "PROXY UNKNOWN\r\n",             /* #3 */
        "PROXY UNKNOWN 1 2 3 4 5 6\r\n", /* #3 */
        "PROXY UNKNOWN \r\n",
        "PROXY UNKNOWN anything\tat all\r\n",
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(lines); i++) {
        struct pt_proxyproto_info info;
        expect_valid(lines[i], strlen(lines[i]), &info);
        cr_assert_eq(info.version, PT_PP_V1);
        cr_assert(info.local, "%s", lines[i]);
        cr_assert_eq(info.src.ss_family, AF_UNSPEC);
        cr_assert_null(info.authority);
    }
    cr_assert_eq(parse_str("PROXY UNKNOWNX\r\n"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY UNKNOWNX"), PT_EMALFORMED);
}

/* #4: the longest legal line, 107 bytes with CRLF. */
Test(proxyproto, v1_unknown_107_bytes)
{
    const char *line = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    struct pt_proxyproto_info info;
    cr_assert_eq(strlen(line), PT_PP_V1_MAX);
    expect_valid(line, strlen(line), &info);
    cr_assert(info.local);

    /* The longest TCP6 line (104 bytes) is real addresses, all accepted. */
    const char *tcp6 = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    cr_assert_eq(strlen(tcp6), 104);
    expect_valid(tcp6, strlen(tcp6), &info);
    assert_addr(&info.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
}

/* #5: no CRLF within 107 bytes. */
Test(proxyproto, v1_no_crlf_within_107)
{
    char buf[128];
    memset(buf, 'x', sizeof(buf));
    memcpy(buf, "PROXY UNKNOWN ", 14);

    cr_assert_eq(parse_rc(buf, 108), PT_EMALFORMED); /* #5 */
    cr_assert_eq(parse_rc(buf, 107), PT_EMALFORMED);
    /* 106 bytes and no CR: the CR could come at index 106 at the earliest,
     * making a 108-byte line, so this is already refused. */
    cr_assert_eq(parse_rc(buf, 106), PT_EMALFORMED);
    /* 105 bytes: CRLF may still follow. */
    cr_assert_eq(parse_rc(buf, 105), PT_ENEEDMORE);

    /* 108-byte line with its CRLF at the very end. */
    buf[106] = '\r';
    buf[107] = '\n';
    cr_assert_eq(parse_rc(buf, 108), PT_EMALFORMED);
    /* The same 107-byte line fits. */
    buf[105] = '\r';
    buf[106] = '\n';
    cr_assert_eq(parse_rc(buf, 107), 107);
    /* Cut after the CR: the line is complete, the LF may still come. */
    cr_assert_eq(parse_rc(buf, 106), PT_ENEEDMORE);
}

/* #6: line endings. A bare CR is only known once the byte after it is
 * there: "…\r" alone can still become "…\r\n" and asks for more. */
Test(proxyproto, v1_bad_line_endings)
{
    cr_assert_eq(parse_str("PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\n"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\rX"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r"), PT_ENEEDMORE);
    cr_assert_eq(parse_str("PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\r\n"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\n\r"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY TCP4 192.0.2.1\n192.0.2.2 123 5678\r\n"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY UNKNOWN\n"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY UNKNOWN\rX"), PT_EMALFORMED);
    /* A complete-but-wrong line before its CR is refused at the CR. */
    cr_assert_eq(parse_str("PROXY TCP4 192.0.2.1 192.0.2.2 123\r"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY\r\n"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY \r\n"), PT_EMALFORMED);
}

/* #6: case. The signature is checked byte by byte, so "p" fails at once. */
Test(proxyproto, v1_case)
{
    cr_assert_eq(parse_str("proxy TCP4 192.0.2.1 192.0.2.2 123 5678\r\n"), PT_EMALFORMED);
    cr_assert_eq(parse_str("p"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXy"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY tcp4 192.0.2.1 192.0.2.2 123 5678\r\n"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY unknown\r\n"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY tcp"), PT_EMALFORMED);
    cr_assert_eq(parse_str("PROXY TCP5 192.0.2.1 192.0.2.2 123 5678\r\n"), PT_EMALFORMED);
}

/* #6: single spaces only, anywhere. */
Test(proxyproto, v1_spaces)
{
    static const char *const bad[] = {
        "PROXY  TCP4 192.0.2.1 192.0.2.2 123 5678\r\n",
        "PROXY TCP4  192.0.2.1 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 192.0.2.1  192.0.2.2 123 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2  123 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123  5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678 \r\n",
        " PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n",
        "PROXY\tTCP4 192.0.2.1 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 192.0.2.1\t192.0.2.2 123 5678\r\n",
        /* and the prefixes: refused before the CRLF arrives */
        "PROXY  ",
        "PROXY TCP4 192.0.2.1  ",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678 ",
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++)
        cr_assert_eq(parse_str(bad[i]), PT_EMALFORMED, "'%s'", bad[i]);
}

/* #7 */
Test(proxyproto, v1_bad_numbers)
{
    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.01 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.02 123 5678\r\n",
        "PROXY TCP4 256.0.0.1 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.256 123 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 65536 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 65536\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 0123 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 05678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 00 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 99999 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123456 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 -1 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 +1 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 0x10 5678\r\n",
        "PROXY TCP4 2001:db8::1 2001:db8::2 123 5678\r\n", /* v6 under TCP4 */
        "PROXY TCP6 192.0.2.1 192.0.2.2 123 5678\r\n",     /* v4 under TCP6 */
        "PROXY TCP4 192.0.2 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 192.0.2.1.5 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 192.0..1 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 .192.0.2.1 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 192.0.2.1. 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 3221225985 192.0.2.2 123 5678\r\n", /* inet_aton form */
        "PROXY TCP4 0300.0.2.1 192.0.2.2 123 5678\r\n", /* octal */
        "PROXY TCP4 0x7f.0.0.1 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123\r\n",           /* field missing */
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678 9\r\n",    /* field extra */
        "PROXY TCP4\r\n",
        /* refused on the bytes present, before any CRLF */
        "PROXY TCP4 256",
        "PROXY TCP4 192.0.2.01",
        "PROXY TCP4 1.2.3.4.",
        "PROXY TCP4 192.0.2.1 192.0.2.2 65536",
        "PROXY TCP4 192.0.2.1 192.0.2.2 01",
        "PROXY TCP4 ::",
        "PROXY TCP6 ::1 x",
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++)
        cr_assert_eq(parse_str(bad[i]), PT_EMALFORMED, "'%s'", bad[i]);

    struct pt_proxyproto_info info;
    const char *edge = "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n";
    expect_valid(edge, strlen(edge), &info);
    assert_addr(&info.src, "0.0.0.0", 0);
    assert_addr(&info.dst, "255.255.255.255", 65535);
    const char *tens = "PROXY TCP4 10.100.200.9 1.20.0.250 10 100\r\n";
    expect_valid(tens, strlen(tens), &info);
    assert_addr(&info.src, "10.100.200.9", 10);
    assert_addr(&info.dst, "1.20.0.250", 100);
}

/* #21: the header is consumed exactly, the request after it is payload. */
Test(proxyproto, v1_header_then_payload)
{
    const char *in = ROW1 "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    struct pt_proxyproto_info info;
    int rc = parse(in, strlen(in), &info);
    cr_assert_eq(rc, (int)strlen(ROW1));
    cr_assert_str_eq(in + rc, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert_addr(&info.src, "192.0.2.1", 123);

    /* The payload's own bytes do not matter, even a second header. */
    const char *twice = ROW1 ROW1;
    cr_assert_eq(parse_str(twice), (int)strlen(ROW1));
}

Test(proxyproto, not_a_header)
{
    static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x00, 0x10};
    cr_assert_eq(parse_str("GET / HTTP/1.1\r\n\r\n"), PT_EMALFORMED);
    cr_assert_eq(parse_rc(tls, sizeof(tls)), PT_EMALFORMED);
    /* CRLFCRLF is how the v2 signature starts, so it is not refused yet. */
    cr_assert_eq(parse_str("\r\n\r\n"), PT_ENEEDMORE);
    cr_assert_eq(parse_str("\r\n\r\nGET"), PT_EMALFORMED);
    cr_assert_eq(parse_rc("", 0), PT_ENEEDMORE);

    /* <out> is left alone unless a header is returned. */
    struct pt_proxyproto_info info;
    memset(&info, 0xA5, sizeof(info));
    cr_assert_eq(pt_proxyproto_parse((const uint8_t *)"GET", 3, &info), PT_EMALFORMED);
    cr_assert_eq(pt_proxyproto_parse((const uint8_t *)"PROX", 4, &info), PT_ENEEDMORE);
    cr_assert_eq(pt_proxyproto_parse(row8, 20, &info), PT_ENEEDMORE);
    for (size_t i = 0; i < sizeof(info); i++)
        cr_assert_eq(((const uint8_t *)&info)[i], 0xA5);
}

/* ---- v2 ------------------------------------------------------------------ */

Test(proxyproto, v2_inet)
{
    struct pt_proxyproto_info info;
    expect_valid(row8, sizeof(row8), &info); /* #8 */
    cr_assert_eq(info.version, PT_PP_V2);
    cr_assert(!info.local);
    assert_addr(&info.src, "192.0.2.1", 123);
    assert_addr(&info.dst, "192.0.2.2", 5678);
    cr_assert_null(info.authority);
    cr_assert_eq(info.authority_len, 0);
}

Test(proxyproto, v2_inet6)
{
    static const uint8_t in[] = {
        SIG, 0x21, 0x21, 0x00, 0x24,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
        0x00, 0x7B, 0x16, 0x2E,
    };
    struct pt_proxyproto_info info;
    expect_valid(in, sizeof(in), &info);
    assert_addr(&info.src, "2001:db8::1", 123);
    assert_addr(&info.dst, "2001:db8::2", 5678);
}

/* #9 */
Test(proxyproto, v2_local)
{
    static const uint8_t in[] = {SIG, 0x20, 0x00, 0x00, 0x00};
    struct pt_proxyproto_info info;
    expect_valid(in, sizeof(in), &info);
    cr_assert_eq(info.version, PT_PP_V2);
    cr_assert(info.local);
    cr_assert_eq(info.src.ss_family, AF_UNSPEC);
}

/* #10: LOCAL skips its block unread, whatever it holds. */
Test(proxyproto, v2_local_skips_block)
{
    static const uint8_t in[] = {SIG, 0x20, 0x11, 0x00, 0x0C, 0xDE, 0xAD, 0xBE,
                                 0xEF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00};
    struct pt_proxyproto_info info;
    expect_valid(in, sizeof(in), &info);
    cr_assert_eq(parse(in, sizeof(in), &info), 28);
    cr_assert(info.local);
    cr_assert_null(info.authority);

    /* Even a block too short for its family, or junk that is no TLV. */
    static const uint8_t shortblk[] = {SIG, 0x20, 0x21, 0x00, 0x02, 0x02, 0xFF};
    expect_valid(shortblk, sizeof(shortblk), &info);
    cr_assert(info.local);
}

/* #11 */
Test(proxyproto, v2_authority)
{
    struct pt_proxyproto_info info;
    expect_valid(row11, sizeof(row11), &info);
    assert_addr(&info.src, "127.0.0.1", 42);
    assert_addr(&info.dst, "127.0.0.1", 1337);
    cr_assert_eq(info.authority_len, 5);
    cr_assert_eq(memcmp(info.authority, "12345", 5), 0);
    cr_assert_eq((const uint8_t *)info.authority, row11 + 31);
}

/* #12: TLV length past the block. */
Test(proxyproto, v2_tlv_overrun)
{
    uint8_t in[sizeof(row11)];
    memcpy(in, row11, sizeof(in));
    in[29] = 0x00;
    in[30] = 0x0A;
    cr_assert_eq(parse_rc(in, sizeof(in)), PT_EMALFORMED);
}

/* #13: one byte of the block left over after the last TLV. */
Test(proxyproto, v2_tlv_trailing_byte)
{
    static const uint8_t in[] = {SIG, 0x21, 0x11, 0x00, 0x14, ROW11_ADDR,
                                 0x02, 0x00, 0x04, '1', '2', '3', '4'};
    cr_assert_eq(sizeof(in), 16 + 0x14 - 1);
    /* As sent, the block is one byte short: still waiting. */
    cr_assert_eq(parse_rc(in, sizeof(in)), PT_ENEEDMORE);
    /* With the byte there it is a partial TLV, refused; likewise 2 bytes. */
    uint8_t more[sizeof(in) + 2];
    memcpy(more, in, sizeof(in));
    more[sizeof(in)] = 0x04;
    more[sizeof(in) + 1] = 0x00;
    cr_assert_eq(parse_rc(more, sizeof(in) + 1), PT_EMALFORMED);
    more[15] = 0x15;
    cr_assert_eq(parse_rc(more, sizeof(more)), PT_EMALFORMED);
}

/* #14: a TLV after the announced len is not the header's. */
Test(proxyproto, v2_tlv_outside_len_is_payload)
{
    uint8_t in[sizeof(row11) + 8];
    static const uint8_t extra[] = {0x02, 0x00, 0x05, 'e', 'v', 'i', 'l', '!'};
    memcpy(in, row11, sizeof(row11));
    memcpy(in + sizeof(row11), extra, sizeof(extra));
    struct pt_proxyproto_info info;
    cr_assert_eq(parse(in, sizeof(in), &info), (int)sizeof(row11));
    cr_assert_eq(info.authority_len, 5);
    cr_assert_eq(memcmp(info.authority, "12345", 5), 0);
    cr_assert_eq(memcmp(in + sizeof(row11), extra, sizeof(extra)), 0);
}

/* #21 for v2. */
Test(proxyproto, v2_header_then_payload)
{
    const char *req = "GET / HTTP/1.1\r\n\r\n";
    uint8_t in[sizeof(row8) + 32];
    memcpy(in, row8, sizeof(row8));
    memcpy(in + sizeof(row8), req, strlen(req));
    struct pt_proxyproto_info info;
    int rc = parse(in, sizeof(row8) + strlen(req), &info);
    cr_assert_eq(rc, (int)sizeof(row8));
    cr_assert_eq(memcmp(in + rc, req, strlen(req)), 0);
}

/* #15: version nibble and command; refused as soon as byte 13 is there. */
Test(proxyproto, v2_bad_version_command)
{
    static const uint8_t bytes[] = {0x11, 0x31, 0x01, 0x00, 0xF1, 0x22, 0x2F, 0x23};
    for (size_t i = 0; i < PT_ARRAY_LEN(bytes); i++) {
        uint8_t in[sizeof(row8)];
        memcpy(in, row8, sizeof(in));
        in[12] = bytes[i];
        cr_assert_eq(parse_rc(in, sizeof(in)), PT_EMALFORMED, "byte 0x%02x", bytes[i]);
        cr_assert_eq(parse_rc(in, 13), PT_EMALFORMED, "byte 0x%02x, 13 bytes", bytes[i]);
    }
}

/* #16 and the rest of the family byte: only the seven listed values exist. */
Test(proxyproto, v2_bad_family)
{
    static const uint8_t row16[] = {SIG, 0x21, 0x41, 0x00, 0x04, 1, 2, 3, 4};
    cr_assert_eq(parse_rc(row16, sizeof(row16)), PT_EMALFORMED);
    cr_assert_eq(parse_rc(row16, 14), PT_EMALFORMED);

    for (unsigned fam = 0; fam < 256; fam++) {
        bool valid = fam == 0x00 || fam == 0x11 || fam == 0x12 || fam == 0x21 ||
                     fam == 0x22 || fam == 0x31 || fam == 0x32;
        uint8_t in[] = {SIG, 0x20, (uint8_t)fam, 0x00, 0x00};
        /* LOCAL discards the block, so any listed family is fine there. */
        cr_assert_eq(parse_rc(in, sizeof(in)), valid ? 16 : PT_EMALFORMED,
                     "LOCAL family 0x%02x", fam);
    }
}

/* Under PROXY: datagram families make no sense on a stream; UNSPEC and UNIX
 * are accepted with the real endpoints, their TLVs still read. */
Test(proxyproto, v2_proxy_other_families)
{
    static const uint8_t dgram[] = {SIG, 0x21, 0x12, 0x00, 0x0C, ROW8_ADDR};
    cr_assert_eq(parse_rc(dgram, sizeof(dgram)), PT_EMALFORMED);
    cr_assert_eq(parse_rc(dgram, 14), PT_EMALFORMED);

    static const uint8_t unspec[] = {SIG, 0x21, 0x00, 0x00, 0x06,
                                     0x02, 0x00, 0x03, 'a', '.', 'b'};
    struct pt_proxyproto_info info;
    expect_valid(unspec, sizeof(unspec), &info);
    cr_assert(info.local);
    cr_assert_eq(info.authority_len, 3);
    cr_assert_eq(memcmp(info.authority, "a.b", 3), 0);

    uint8_t unixs[16 + 216];
    memset(unixs, 0, sizeof(unixs));
    memcpy(unixs, row8, 12);
    unixs[12] = 0x21;
    unixs[13] = 0x31;
    unixs[14] = 0x00;
    unixs[15] = 216;
    memcpy(unixs + 16, "/run/front.sock", 15);
    expect_valid(unixs, sizeof(unixs), &info);
    cr_assert(info.local);
    unixs[15] = 215;
    cr_assert_eq(parse_rc(unixs, 16), PT_EMALFORMED);
}

/* #17: the address block is shorter than INET needs; known from 16 bytes. */
Test(proxyproto, v2_short_address_block)
{
    static const uint8_t in[] = {SIG, 0x21, 0x11, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8};
    cr_assert_eq(parse_rc(in, sizeof(in)), PT_EMALFORMED);
    cr_assert_eq(parse_rc(in, 16), PT_EMALFORMED);
    static const uint8_t in6[] = {SIG, 0x21, 0x21, 0x00, 0x0C, ROW8_ADDR};
    cr_assert_eq(parse_rc(in6, sizeof(in6)), PT_EMALFORMED);
}

/* #18: len = 0xFFFF is refused at once from the 16 bytes, never waited for
 * (so no caller ever buffers 64 KiB for it). The limit is 16 + len <= 1024. */
Test(proxyproto, v2_len_limit)
{
    static const uint8_t huge[] = {SIG, 0x21, 0x11, 0xFF, 0xFF};
    cr_assert_eq(parse_rc(huge, sizeof(huge)), PT_EMALFORMED);

    static uint8_t in[PT_PP_V2_MAX + 1];
    memset(in, 0, sizeof(in));
    memcpy(in, row8, 12);
    in[12] = 0x21;
    in[13] = 0x11;
    size_t hlen = PT_PP_V2_MAX - 16;
    in[14] = (uint8_t)(hlen >> 8);
    in[15] = (uint8_t)hlen;
    /* addresses, then one NOOP TLV padding the block to the limit */
    memcpy(in + 16, (const uint8_t[]){ROW8_ADDR}, 12);
    size_t padlen = hlen - 12 - 3;
    in[28] = 0x04;
    in[29] = (uint8_t)(padlen >> 8);
    in[30] = (uint8_t)padlen;
    struct pt_proxyproto_info info;
    expect_valid(in, PT_PP_V2_MAX, &info);
    assert_addr(&info.src, "192.0.2.1", 123);

    hlen++;
    in[14] = (uint8_t)(hlen >> 8);
    in[15] = (uint8_t)hlen;
    cr_assert_eq(parse_rc(in, 16), PT_EMALFORMED);
    cr_assert_eq(parse_rc(in, PT_PP_V2_MAX + 1), PT_EMALFORMED);
}

/* #19: a 15-byte prefix is not an error, it is unfinished (the timeout that
 * ends it belongs to the caller). */
Test(proxyproto, v2_partial)
{
    cr_assert_eq(parse_rc(row8, 15), PT_ENEEDMORE);
    expect_prefixes_needmore(row8, sizeof(row8));
    expect_prefixes_needmore(row11, sizeof(row11));
    /* A wrong signature byte is refused at that byte. */
    uint8_t in[sizeof(row8)];
    for (size_t i = 0; i < 12; i++) {
        memcpy(in, row8, sizeof(in));
        in[i] ^= 0x20;
        cr_assert_eq(parse_rc(in, i + 1), PT_EMALFORMED, "signature byte %zu", i);
    }
}

/* #20: CRC32C covers the whole header with its own value zeroed. The good
 * value was computed by an independent implementation (CRC32C("123456789")
 * = 0xE3069283 as a check). */
Test(proxyproto, v2_crc32c)
{
    static const uint8_t good[] = {SIG, 0x21, 0x11, 0x00, 0x13, ROW8_ADDR,
                                   0x03, 0x00, 0x04, 0x1C, 0x2B, 0x48, 0x6C};
    struct pt_proxyproto_info info;
    expect_valid(good, sizeof(good), &info);
    assert_addr(&info.src, "192.0.2.1", 123);

    /* Flip each bit of the addresses and of the value: the framing stays
     * valid, only the checksum can catch it. */
    uint8_t bad[sizeof(good)];
    for (size_t i = 16; i < sizeof(good); i++) {
        if (i >= 28 && i < 31)
            continue; /* the TLV's type and length: framing, tested elsewhere */
        memcpy(bad, good, sizeof(bad));
        for (int bit = 0; bit < 8; bit++) {
            bad[i] ^= (uint8_t)(1u << bit);
            cr_assert_eq(parse_rc(bad, sizeof(bad)), PT_EMALFORMED, "byte %zu bit %d", i, bit);
            bad[i] ^= (uint8_t)(1u << bit);
        }
    }

    /* The value must be exactly 4 bytes, and come once. */
    static const uint8_t shortcrc[] = {SIG, 0x21, 0x11, 0x00, 0x12, ROW8_ADDR,
                                       0x03, 0x00, 0x03, 0x1C, 0x2B, 0x48};
    cr_assert_eq(parse_rc(shortcrc, sizeof(shortcrc)), PT_EMALFORMED);
    static const uint8_t twice[] = {SIG, 0x21, 0x11, 0x00, 0x1A, ROW8_ADDR,
                                    0x03, 0x00, 0x04, 0x1C, 0x2B, 0x48, 0x6C,
                                    0x03, 0x00, 0x04, 0x1C, 0x2B, 0x48, 0x6C};
    cr_assert_eq(parse_rc(twice, sizeof(twice)), PT_EMALFORMED);
}

Test(proxyproto, v2_tlv_rules)
{
    struct pt_proxyproto_info info;

    /* Unknown, NOOP, ALPN, NETNS and custom TLVs are skipped; empty ones too. */
    static const uint8_t skipped[] = {SIG, 0x21, 0x11, 0x00, 0x23, ROW8_ADDR,
                                      0x04, 0x00, 0x00,
                                      0x01, 0x00, 0x02, 'h', '2',
                                      0x30, 0x00, 0x01, 'n',
                                      0xE0, 0x00, 0x00,
                                      0x7F, 0x00, 0x01, 0x00,
                                      0x02, 0x00, 0x01, 'x'};
    cr_assert_eq(sizeof(skipped), 16 + 0x23);
    expect_valid(skipped, sizeof(skipped), &info);
    cr_assert_eq(info.authority_len, 1);
    cr_assert_eq(info.authority[0], 'x');

    static const uint8_t twice[] = {SIG, 0x21, 0x11, 0x00, 0x14, ROW8_ADDR,
                                    0x02, 0x00, 0x01, 'a', 0x02, 0x00, 0x01, 'b'};
    cr_assert_eq(parse_rc(twice, sizeof(twice)), PT_EMALFORMED);
    static const uint8_t empty[] = {SIG, 0x21, 0x11, 0x00, 0x0F, ROW8_ADDR,
                                    0x02, 0x00, 0x00};
    cr_assert_eq(parse_rc(empty, sizeof(empty)), PT_EMALFORMED);
    static const uint8_t nul[] = {SIG, 0x21, 0x11, 0x00, 0x12, ROW8_ADDR,
                                  0x02, 0x00, 0x03, 'a', 0x00, 'b'};
    cr_assert_eq(parse_rc(nul, sizeof(nul)), PT_EMALFORMED);

    /* AUTHORITY of 255 bytes is the most; 256 is refused. */
    uint8_t big[16 + 12 + 3 + 256];
    memcpy(big, row8, 16 + 12);
    for (size_t alen = 255; alen <= 256; alen++) {
        size_t hlen = 12 + 3 + alen;
        big[14] = (uint8_t)(hlen >> 8);
        big[15] = (uint8_t)hlen;
        big[28] = 0x02;
        big[29] = (uint8_t)(alen >> 8);
        big[30] = (uint8_t)alen;
        memset(big + 31, 'a', alen);
        int rc = parse(big, 16 + hlen, &info);
        cr_assert_eq(rc, alen == 255 ? (int)(16 + hlen) : PT_EMALFORMED, "alen %zu", alen);
    }

    /* UNIQUE_ID: at most 128 bytes. */
    uint8_t uid[16 + 12 + 3 + 129];
    memcpy(uid, row8, 16 + 12);
    for (size_t ulen = 128; ulen <= 129; ulen++) {
        size_t hlen = 12 + 3 + ulen;
        uid[14] = (uint8_t)(hlen >> 8);
        uid[15] = (uint8_t)hlen;
        uid[28] = 0x05;
        uid[29] = 0;
        uid[30] = (uint8_t)ulen;
        memset(uid + 31, 'u', ulen);
        cr_assert_eq(parse_rc(uid, 16 + hlen), ulen == 128 ? (int)(16 + hlen) : PT_EMALFORMED);
    }

    /* SSL: client, verify, then sub-TLVs that must fit exactly. */
    static const uint8_t ssl[] = {SIG, 0x21, 0x11, 0x00, 0x1C, ROW8_ADDR,
                                  0x20, 0x00, 0x0D, 0x01, 0, 0, 0, 0,
                                  0x21, 0x00, 0x05, 'T', 'L', 'S', 'v', '1'};
    cr_assert_eq(sizeof(ssl), 16 + 0x1C);
    expect_valid(ssl, sizeof(ssl), &info);
    uint8_t sslbad[sizeof(ssl)];
    memcpy(sslbad, ssl, sizeof(ssl));
    sslbad[38] = 0x06; /* sub-TLV len past the SSL value */
    cr_assert_eq(parse_rc(sslbad, sizeof(sslbad)), PT_EMALFORMED);
    static const uint8_t sslshort[] = {SIG, 0x21, 0x11, 0x00, 0x13, ROW8_ADDR,
                                       0x20, 0x00, 0x04, 0x01, 0, 0, 0};
    cr_assert_eq(parse_rc(sslshort, sizeof(sslshort)), PT_EMALFORMED);
}

/* ---- encoder ------------------------------------------------------------- */

Test(proxyproto, encode_v1_tcp4)
{
    uint8_t out[PT_PP_OUT_MAX];
    int n = encode(PT_PP_V1, "192.0.2.1", 123, "192.0.2.2", 5678, "ignored", out, sizeof(out));
    expect_v1_line(out, n, ROW1);
}

Test(proxyproto, encode_v1_tcp6)
{
    uint8_t out[PT_PP_OUT_MAX];
    int n = encode(PT_PP_V1, "2001:db8::1", 123, "2001:db8::2", 5678, NULL, out, sizeof(out));
    expect_v1_line(out, n, ROW2);
}

Test(proxyproto, encode_v2_inet_exact)
{
    uint8_t out[PT_PP_OUT_MAX];
    int n = encode(PT_PP_V2, "192.0.2.1", 123, "192.0.2.2", 5678, NULL, out, sizeof(out));
    cr_assert_eq(n, (int)sizeof(row8));
    cr_assert_eq(memcmp(out, row8, sizeof(row8)), 0);
    /* an empty authority sends no TLV */
    n = encode(PT_PP_V2, "192.0.2.1", 123, "192.0.2.2", 5678, "", out, sizeof(out));
    cr_assert_eq(n, (int)sizeof(row8));
}

Test(proxyproto, encode_v2_inet_authority_exact)
{
    static const uint8_t want[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        0x21,                   /* v2, PROXY */
        0x11,                   /* INET, STREAM */
        0x00, 0x15,             /* 12 + 3 + 6 */
        0xC0, 0x00, 0x02, 0x01, /* 192.0.2.1 */
        0xC0, 0x00, 0x02, 0x02, /* 192.0.2.2 */
        0x00, 0x7B,             /* 123 */
        0x16, 0x2E,             /* 5678 */
        0x02, 0x00, 0x06,       /* AUTHORITY, 6 */
        0x61, 0x2E, 0x74, 0x65, 0x73, 0x74, /* "a.test" */
    };
    uint8_t out[PT_PP_OUT_MAX];
    int n = encode(PT_PP_V2, "192.0.2.1", 123, "192.0.2.2", 5678, "a.test", out, sizeof(out));
    cr_assert_eq(n, (int)sizeof(want));
    cr_assert_eq(memcmp(out, want, sizeof(want)), 0);

    struct pt_proxyproto_info info;
    cr_assert_eq(parse(out, (size_t)n, &info), n);
    cr_assert_eq(info.authority_len, 6);
    cr_assert_eq(memcmp(info.authority, "a.test", 6), 0);
    cr_assert_eq((const uint8_t *)info.authority, out + 31);
}

Test(proxyproto, encode_v2_inet6_authority)
{
    uint8_t out[PT_PP_OUT_MAX];
    int n = encode(PT_PP_V2, "2001:db8::1", 443, "2001:db8::2", 8443, "www.example.org",
                   out, sizeof(out));
    cr_assert_eq(n, 16 + 36 + 3 + 15);
    cr_assert_eq(out[12], 0x21);
    cr_assert_eq(out[13], 0x21);
    struct pt_proxyproto_info info;
    expect_valid(out, (size_t)n, &info);
    assert_addr(&info.src, "2001:db8::1", 443);
    assert_addr(&info.dst, "2001:db8::2", 8443);
    cr_assert_eq(info.authority_len, 15);
    cr_assert_eq(memcmp(info.authority, "www.example.org", 15), 0);

    /* The largest output fits PT_PP_OUT_MAX exactly. */
    char a255[256];
    memset(a255, 'a', 255);
    a255[255] = '\0';
    n = encode(PT_PP_V2, "2001:db8::1", 1, "2001:db8::2", 2, a255, out, sizeof(out));
    cr_assert_eq(n, PT_PP_OUT_MAX);
    expect_valid(out, (size_t)n, &info);
    cr_assert_eq(info.authority_len, 255);
}

/* A dual-stack listener reports an IPv4 client as ::ffff:a.b.c.d; it goes out
 * as TCP4 (Apache refuses the mapped form). */
Test(proxyproto, encode_mapped_v4)
{
    uint8_t out[PT_PP_OUT_MAX];
    int n = encode(PT_PP_V1, "::ffff:192.0.2.1", 123, "::ffff:192.0.2.2", 5678, NULL, out,
                   sizeof(out));
    expect_v1_line(out, n, ROW1);
    n = encode(PT_PP_V2, "::ffff:192.0.2.1", 123, "::ffff:192.0.2.2", 5678, NULL, out,
               sizeof(out));
    cr_assert_eq(n, (int)sizeof(row8));
    cr_assert_eq(memcmp(out, row8, sizeof(row8)), 0);

    /* Only one side mapped: the other is plain IPv4 already. */
    n = encode(PT_PP_V1, "::ffff:192.0.2.1", 123, "192.0.2.2", 5678, NULL, out, sizeof(out));
    expect_v1_line(out, n, ROW1);
    n = encode(PT_PP_V1, "192.0.2.1", 123, "::ffff:192.0.2.2", 5678, NULL, out, sizeof(out));
    expect_v1_line(out, n, ROW1);
    n = encode(PT_PP_V2, "192.0.2.1", 123, "::ffff:192.0.2.2", 5678, NULL, out, sizeof(out));
    cr_assert_eq(memcmp(out, row8, sizeof(row8)), 0);
}

/* The mixed-family decision (see proxyproto.h): the header takes the family
 * of the client address; the destination adapts, its port kept. */
Test(proxyproto, encode_mixed_families)
{
    uint8_t out[PT_PP_OUT_MAX];
    struct pt_proxyproto_info info;
    int n;

    /* IPv4 client, real IPv6 destination: dst becomes 0.0.0.0. */
    n = encode(PT_PP_V1, "192.0.2.1", 123, "2001:db8::2", 443, NULL, out, sizeof(out));
    expect_v1_line(out, n, "PROXY TCP4 192.0.2.1 0.0.0.0 123 443\r\n");
    n = encode(PT_PP_V1, "::ffff:192.0.2.1", 123, "2001:db8::2", 443, NULL, out, sizeof(out));
    expect_v1_line(out, n, "PROXY TCP4 192.0.2.1 0.0.0.0 123 443\r\n");
    n = encode(PT_PP_V2, "::ffff:192.0.2.1", 123, "2001:db8::2", 443, "a.test", out,
               sizeof(out));
    cr_assert_eq(out[13], 0x11);
    cr_assert_eq(parse(out, (size_t)n, &info), n);
    cr_assert(!info.local);
    assert_addr(&info.src, "192.0.2.1", 123);
    assert_addr(&info.dst, "0.0.0.0", 443);
    cr_assert_eq(memcmp(info.authority, "a.test", 6), 0);

    /* IPv6 client, IPv4 destination: dst is mapped, no loss. */
    n = encode(PT_PP_V1, "2001:db8::1", 123, "192.0.2.2", 443, NULL, out, sizeof(out));
    expect_v1_line(out, n, "PROXY TCP6 2001:db8::1 ::ffff:192.0.2.2 123 443\r\n");
    cr_assert_eq(parse(out, (size_t)n, &info), n);
    assert_addr(&info.dst, "::ffff:192.0.2.2", 443);
    n = encode(PT_PP_V2, "2001:db8::1", 123, "192.0.2.2", 443, NULL, out, sizeof(out));
    cr_assert_eq(out[13], 0x21);
    cr_assert_eq(parse(out, (size_t)n, &info), n);
    assert_addr(&info.src, "2001:db8::1", 123);
    assert_addr(&info.dst, "::ffff:192.0.2.2", 443);

    /* IPv6 client, mapped destination: already IPv6, sent as it is. */
    n = encode(PT_PP_V1, "2001:db8::1", 123, "::ffff:192.0.2.2", 443, NULL, out, sizeof(out));
    expect_v1_line(out, n, "PROXY TCP6 2001:db8::1 ::ffff:192.0.2.2 123 443\r\n");

    /* Never UNKNOWN or LOCAL. */
    static const char *const ips[] = {"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "::"};
    for (size_t i = 0; i < PT_ARRAY_LEN(ips); i++)
        for (size_t j = 0; j < PT_ARRAY_LEN(ips); j++)
            for (int v = PT_PP_V1; v <= PT_PP_V2; v++) {
                n = encode((enum pt_pp_version)v, ips[i], 1, ips[j], 2, NULL, out,
                           sizeof(out));
                cr_assert_eq(parse(out, (size_t)n, &info), n);
                cr_assert(!info.local, "%s -> %s v%d", ips[i], ips[j], v);
                cr_assert_eq(info.src.ss_family, info.dst.ss_family);
            }
}

Test(proxyproto, encode_einval)
{
    uint8_t out[PT_PP_OUT_MAX];
    struct sockaddr_storage s = mkaddr("192.0.2.1", 123);
    struct sockaddr_storage d = mkaddr("192.0.2.2", 5678);
    const struct sockaddr *sp = (const struct sockaddr *)&s;
    const struct sockaddr *dp = (const struct sockaddr *)&d;

    /* <size>: exactly enough works, one less is refused and writes nothing. */
    size_t v1len = strlen(ROW1);
    memset(out, 0xEE, sizeof(out));
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V1, sp, dp, NULL, 0, out, v1len - 1), PT_EINVAL);
    cr_assert_eq(out[0], 0xEE);
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V1, sp, dp, NULL, 0, out, v1len), (int)v1len);
    memset(out, 0xEE, sizeof(out));
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V2, sp, dp, "a.test", 6, out, 36), PT_EINVAL);
    cr_assert_eq(out[0], 0xEE);
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V2, sp, dp, "a.test", 6, out, 37), 37);
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V2, sp, dp, NULL, 0, out, 0), PT_EINVAL);

    /* Versions. */
    cr_assert_eq(pt_proxyproto_encode(PT_PP_NONE, sp, dp, NULL, 0, out, sizeof(out)), PT_EINVAL);
    cr_assert_eq(pt_proxyproto_encode((enum pt_pp_version)3, sp, dp, NULL, 0, out, sizeof(out)),
                 PT_EINVAL);

    /* Families. */
    struct sockaddr_storage un;
    memset(&un, 0, sizeof(un));
    un.ss_family = AF_UNIX;
    const struct sockaddr *up = (const struct sockaddr *)&un;
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V1, up, dp, NULL, 0, out, sizeof(out)), PT_EINVAL);
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V2, sp, up, NULL, 0, out, sizeof(out)), PT_EINVAL);
    un.ss_family = AF_UNSPEC;
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V2, up, dp, NULL, 0, out, sizeof(out)), PT_EINVAL);

    /* Authority: over 255 or with a NUL. */
    char a256[256];
    memset(a256, 'a', sizeof(a256));
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V2, sp, dp, a256, 256, out, sizeof(out)), PT_EINVAL);
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V2, sp, dp, "a\0b", 3, out, sizeof(out)), PT_EINVAL);
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V2, sp, dp, a256, 255, out, sizeof(out)),
                 16 + 12 + 3 + 255);
    /* v1 carries no authority, so it is not looked at. */
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V1, sp, dp, a256, 256, out, sizeof(out)),
                 (int)v1len);
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V1, sp, dp, "a\0b", 3, out, sizeof(out)),
                 (int)v1len);

    /* NULL arguments. */
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V1, NULL, dp, NULL, 0, out, sizeof(out)), PT_EINVAL);
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V1, sp, NULL, NULL, 0, out, sizeof(out)), PT_EINVAL);
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V1, sp, dp, NULL, 0, NULL, sizeof(out)), PT_EINVAL);
    /* A NULL authority with a length is no authority. */
    cr_assert_eq(pt_proxyproto_encode(PT_PP_V2, sp, dp, NULL, 6, out, sizeof(out)), 28);
}

/* Encode then parse gives the same endpoints, for both versions and the
 * address shapes that matter (edges of the port range, ::, mapped). */
Test(proxyproto, encode_roundtrip)
{
    static const struct {
        const char *sip, *dip, *want_sip, *want_dip;
    } cases[] = {
        {"192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.2"},
        {"0.0.0.0", "255.255.255.255", "0.0.0.0", "255.255.255.255"},
        {"2001:db8::1", "2001:db8::2", "2001:db8::1", "2001:db8::2"},
        {"::", "::1", "::", "::1"},
        {"fe80::1:2:3:4", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::1:2:3:4",
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
        {"::ffff:10.0.0.1", "::ffff:10.0.0.2", "10.0.0.1", "10.0.0.2"},
        {"::ffff:10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2"},
        {"::ffff:10.0.0.1", "2001:db8::2", "10.0.0.1", "0.0.0.0"},
        {"2001:db8::1", "10.0.0.2", "2001:db8::1", "::ffff:10.0.0.2"},
    };
    static const uint16_t ports[][2] = {{0, 65535}, {65535, 0}, {1, 80}, {40000, 443}};
    static const char *const auths[] = {NULL, "a.test", "x"};
    uint8_t out[PT_PP_OUT_MAX];
    struct pt_proxyproto_info info;

    for (size_t c = 0; c < PT_ARRAY_LEN(cases); c++)
        for (size_t p = 0; p < PT_ARRAY_LEN(ports); p++)
            for (size_t a = 0; a < PT_ARRAY_LEN(auths); a++)
                for (int v = PT_PP_V1; v <= PT_PP_V2; v++) {
                    int n = encode((enum pt_pp_version)v, cases[c].sip, ports[p][0],
                                   cases[c].dip, ports[p][1], auths[a], out, sizeof(out));
                    cr_assert_gt(n, 0);
                    cr_assert_eq(parse(out, (size_t)n, &info), n, "case %zu v%d", c, v);
                    cr_assert_eq(info.version, (enum pt_pp_version)v);
                    cr_assert(!info.local);
                    assert_addr(&info.src, cases[c].want_sip, ports[p][0]);
                    assert_addr(&info.dst, cases[c].want_dip, ports[p][1]);
                    if (v == PT_PP_V2 && auths[a] != NULL) {
                        cr_assert_eq(info.authority_len, strlen(auths[a]));
                        cr_assert_eq(memcmp(info.authority, auths[a], info.authority_len), 0);
                    } else {
                        cr_assert_null(info.authority);
                    }
                }
}

/* Only "PROXY " or the v2 signature starts a header from a trusted front;
 * requests that begin with P (POST, PUT, PATCH) and TLS records do not. */
Test(proxyproto, detect_only_real_signatures)
{
    static const struct {
        const char *in;
        size_t len;
        int want;
    } cases[] = {
        {"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n", 36, 1},
        {"PROXY ", 6, 1},
        {"PROXY", 5, PT_ENEEDMORE},
        {"P", 1, PT_ENEEDMORE},
        {"", 0, PT_ENEEDMORE},
        {"POST / HTTP/1.1\r\n", 17, 0},
        {"PUT /x HTTP/1.1\r\n", 17, 0},
        {"PATCH /x HTTP/1.1\r\n", 19, 0},
        {"PRI * HTTP/2.0\r\n", 16, 0},
        {"PROXYX", 6, 0},
        {"GET / HTTP/1.1\r\n", 16, 0},
        {"\x16\x03\x01\x02\x00", 5, 0},
        {"\r\n\r\n\0\r\nQUIT\n", 12, 1},
        {"\r\n\r\n\0\r\nQUIT\n\x21\x11", 14, 1},
        {"\r\n\r\n\0\r\nQU", 9, PT_ENEEDMORE},
        {"\r\n\r\nX", 5, 0},
        {"\r", 1, PT_ENEEDMORE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(pt_proxyproto_detect((const uint8_t *)cases[i].in, cases[i].len),
                     cases[i].want, "case %zu", i);
}
