#include <criterion/criterion.h>

#include "common/addr.h"
#include "tests/unit/guard.h"

#include <arpa/inet.h>
#include <sys/un.h>

/* The parsers run on copies that end at a guard page: reading past <len>
 * crashes the test. */
static int hostport(const char *s, size_t len, struct pt_hostport *hp, const char **why)
{
    struct pt_guard g;
    const char *copy = (const char *)pt_guard_copy(&g, s, len);
    int rc = pt_hostport_parse(copy, len, hp, why);
    pt_guard_release(&g);
    return rc;
}

static int cidr(const char *s, size_t len, struct pt_cidr *c, const char **why)
{
    struct pt_guard g;
    const char *copy = (const char *)pt_guard_copy(&g, s, len);
    int rc = pt_cidr_parse(copy, len, c, why);
    pt_guard_release(&g);
    return rc;
}

static struct sockaddr_storage sa4(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in sin;
    memset(&ss, 0, sizeof(ss));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1, "%s", ip);
    memcpy(&ss, &sin, sizeof(sin));
    return ss;
}

static struct sockaddr_storage sa6(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 sin6;
    memset(&ss, 0, sizeof(ss));
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1, "%s", ip);
    memcpy(&ss, &sin6, sizeof(sin6));
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

/* ---- host:port ---------------------------------------------------------- */

struct hp_ok {
    const char *in;
    enum pt_host_kind kind;
    const char *host;
    uint16_t port;
    const char *formatted;
};

static const struct hp_ok hp_accepted[] = {
    {"192.0.2.1:443", PT_HOST_IPV4, "192.0.2.1", 443, "192.0.2.1:443"},
    {"0.0.0.0:1", PT_HOST_IPV4, "0.0.0.0", 1, "0.0.0.0:1"},
    {"255.255.255.255:65535", PT_HOST_IPV4, "255.255.255.255", 65535,
     "255.255.255.255:65535"},
    {"10.0.100.9:8080", PT_HOST_IPV4, "10.0.100.9", 8080, "10.0.100.9:8080"},
    {"[2001:db8::1]:443", PT_HOST_IPV6, "2001:db8::1", 443, "[2001:db8::1]:443"},
    {"[2001:DB8:0:0:0:0:0:1]:443", PT_HOST_IPV6, "2001:db8::1", 443,
     "[2001:db8::1]:443"},
    {"[::1]:8080", PT_HOST_IPV6, "::1", 8080, "[::1]:8080"},
    {"[::]:80", PT_HOST_IPV6, "::", 80, "[::]:80"},
    {"[::ffff:1.2.3.4]:443", PT_HOST_IPV6, "::ffff:1.2.3.4", 443,
     "[::ffff:1.2.3.4]:443"},
    {"App.LAN:8080", PT_HOST_DNS, "app.lan", 8080, "app.lan:8080"},
    {"localhost:80", PT_HOST_DNS, "localhost", 80, "localhost:80"},
    {"app.lan.:80", PT_HOST_DNS, "app.lan", 80, "app.lan:80"},
    {"1.2.3.4.example:80", PT_HOST_DNS, "1.2.3.4.example", 80, "1.2.3.4.example:80"},
    {"xn--bcher-kva.example:443", PT_HOST_DNS, "xn--bcher-kva.example", 443,
     "xn--bcher-kva.example:443"},
    {"a-1.b:9", PT_HOST_DNS, "a-1.b", 9, "a-1.b:9"},
};

Test(addr, hostport_accepted)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(hp_accepted); i++) {
        const struct hp_ok *c = &hp_accepted[i];
        struct pt_hostport hp;
        const char *why = NULL;
        int rc = hostport(c->in, strlen(c->in), &hp, &why);
        cr_expect_eq(rc, 0, "%s: %s", c->in, why ? why : "-");
        if (rc != 0)
            continue;
        cr_expect_eq(hp.kind, c->kind, "%s", c->in);
        cr_expect_str_eq(hp.host, c->host, "%s", c->in);
        cr_expect_eq(hp.port, c->port, "%s", c->in);
        char buf[PT_HOST_MAX + 9];
        size_t n = pt_hostport_format(&hp, buf, sizeof(buf));
        cr_expect_str_eq(buf, c->formatted, "%s", c->in);
        cr_expect_eq(n, strlen(c->formatted));

        if (c->kind == PT_HOST_DNS) {
            cr_expect_eq(hp.salen, 0, "%s", c->in);
        } else {
            /* sa carries the address and port; it formats to the same text */
            char sbuf[PT_ADDRSTR_MAX];
            pt_sockaddr_format(SA(hp.sa), sbuf, sizeof(sbuf));
            if (strncmp(c->host, "::ffff:", 7) != 0)
                cr_expect_str_eq(sbuf, c->formatted, "%s", c->in);
            cr_expect_eq(hp.sa.ss_family, c->kind == PT_HOST_IPV4 ? AF_INET : AF_INET6);
            cr_expect_eq(hp.salen, c->kind == PT_HOST_IPV4 ? sizeof(struct sockaddr_in)
                                                           : sizeof(struct sockaddr_in6));
            cr_expect_eq(pt_sockaddr_port(SA(hp.sa)), c->port);
        }

        /* the formatted text parses back to the same thing */
        struct pt_hostport again;
        cr_expect_eq(hostport(buf, n, &again, NULL), 0);
        cr_expect_eq(memcmp(&again, &hp, sizeof(hp)), 0, "%s: round trip", c->in);
    }
}

struct hp_bad {
    const char *in;
    size_t len; /* 0: strlen */
    const char *why;
};

static const struct hp_bad hp_refused[] = {
    {"", 0, "missing port"},
    {"192.0.2.1", 0, "missing port"},
    {"192.0.2.1:", 0, "missing port"},
    {"example.org", 0, "missing port"},
    {"[::1]", 0, "missing port"},
    {"[::1]:", 0, "missing port"},
    {":443", 0, "missing host"},
    {"[]:443", 0, "missing host"},
    {"host:0", 0, "port out of range"},
    {"host:65536", 0, "port out of range"},
    {"host:99999", 0, "port out of range"},
    {"host:123456789012345678901234567890", 0, "port out of range"},
    {"host:+1", 0, "invalid port"},
    {"host:-1", 0, "invalid port"},
    {"host:0443", 0, "invalid port"},
    {"host:00", 0, "invalid port"},
    {"host:44 3", 0, "invalid port"},
    {"host:443 ", 0, "invalid port"},
    {"host:0x1bb", 0, "invalid port"},
    {"host:https", 0, "invalid port"},
    {"[fe80::1%eth0]:443", 0, "invalid IPv6 address"},
    {"[fe80::1%25eth0]:443", 0, "invalid IPv6 address"},
    {"[1.2.3.4]:80", 0, "invalid IPv6 address"},
    {"[::1]x:80", 0, "invalid IPv6 address"},
    {"[::1:80", 0, "invalid IPv6 address"},
    {"[2001:db8::g]:80", 0, "invalid IPv6 address"},
    {"[1:2:3:4:5:6:7:8:9]:80", 0, "invalid IPv6 address"},
    {"[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255.1]:80", 0, "invalid IPv6 address"},
    {"[example.org]:80", 0, "invalid IPv6 address"},
    {"::1:443", 0, "brackets"},
    {"2001:db8::1:443", 0, "brackets"},
    {"1.2.3:80", 0, "invalid IPv4 address"},
    {"999.1.1.1:80", 0, "invalid IPv4 address"},
    {"256.0.0.1:80", 0, "invalid IPv4 address"},
    {"01.2.3.4:80", 0, "invalid IPv4 address"},
    {"1.2.3.04:80", 0, "invalid IPv4 address"},
    {"1.2.3.4.5:80", 0, "invalid IPv4 address"},
    {"1..2.3:80", 0, "invalid IPv4 address"},
    {"1.2.3.4.:80", 0, "invalid IPv4 address"},
    {"1234:80", 0, "invalid IPv4 address"},
    {"0x7f000001:80", 0, "invalid IPv4 address"},
    {"0x7f.1:80", 0, "invalid IPv4 address"},
    {"*.example.org:443", 0, "invalid host name"},
    {"a_b:80", 0, "invalid host name"},
    {"caf\xc3\xa9.example:443", 0, "invalid host name"},
    {"-a.example:80", 0, "invalid host name"},
    {"ab--cd.example:80", 0, "invalid host name"},
    {"a..b:80", 0, "invalid host name"},
    {"a\0b:80", 6, "invalid host name"},
    {"a b:80", 0, "invalid host name"},
};

Test(addr, hostport_refused)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(hp_refused); i++) {
        const struct hp_bad *c = &hp_refused[i];
        size_t len = c->len ? c->len : strlen(c->in);
        struct pt_hostport hp;
        const char *why = NULL;
        int rc = hostport(c->in, len, &hp, &why);
        cr_expect_eq(rc, PT_EMALFORMED, "%s: accepted", c->in);
        cr_expect(why != NULL && strstr(why, c->why) != NULL, "%s: \"%s\", want \"%s\"",
                  c->in, why ? why : "(null)", c->why);
        cr_expect_eq(hostport(c->in, len, &hp, NULL), PT_EMALFORMED);
    }
}

Test(addr, hostport_long_names)
{
    char in[300];
    struct pt_hostport hp;
    const char *why = NULL;

    /* 253-byte name: the longest that fits host[] */
    for (size_t i = 0; i < 253; i++)
        in[i] = (i % 64 == 63) ? '.' : 'a';
    memcpy(in + 253, ":443", 4);
    cr_assert_eq(hostport(in, 257, &hp, &why), 0, "%s", why);
    cr_expect_eq(strlen(hp.host), 253);
    char buf[PT_HOST_MAX + 9];
    cr_expect_eq(pt_hostport_format(&hp, buf, sizeof(buf)), 257);

    in[253] = 'a';
    memcpy(in + 254, ":443", 4);
    cr_expect_eq(hostport(in, 258, &hp, &why), PT_EMALFORMED);
    cr_expect_str_eq(why, "invalid host name");
}

/* Every prefix of every accepted input stays in bounds. */
Test(addr, hostport_prefixes)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(hp_accepted); i++) {
        const char *in = hp_accepted[i].in;
        size_t n = strlen(in);
        for (size_t len = 0; len < n; len++) {
            struct pt_hostport hp;
            int rc = hostport(in, len, &hp, NULL);
            cr_expect(rc == 0 || rc == PT_EMALFORMED);
        }
    }
}

Test(addr, hostport_format_truncates)
{
    struct pt_hostport hp;
    cr_assert_eq(pt_hostport_parse("[2001:db8::1]:443", 17, &hp, NULL), 0);
    char buf[8];
    size_t n = pt_hostport_format(&hp, buf, sizeof(buf));
    cr_expect_eq(n, 7);
    cr_expect_str_eq(buf, "[2001:d");
}

/* ---- listen addresses --------------------------------------------------- */

Test(addr, listen)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const char *why = NULL;
    char buf[PT_ADDRSTR_MAX];

    cr_assert_eq(pt_listen_parse("0.0.0.0:443", 11, &ss, &len, &why), 0);
    cr_expect_eq(ss.ss_family, AF_INET);
    cr_expect_eq(len, sizeof(struct sockaddr_in));
    pt_sockaddr_format(SA(ss), buf, sizeof(buf));
    cr_expect_str_eq(buf, "0.0.0.0:443");

    cr_assert_eq(pt_listen_parse("[::]:443", 8, &ss, &len, &why), 0);
    cr_expect_eq(ss.ss_family, AF_INET6);
    cr_expect_eq(len, sizeof(struct sockaddr_in6));
    pt_sockaddr_format(SA(ss), buf, sizeof(buf));
    cr_expect_str_eq(buf, "[::]:443");

    cr_assert_eq(pt_listen_parse("127.0.0.1:8443", 14, &ss, &len, &why), 0);
    cr_expect_eq(pt_sockaddr_port(SA(ss)), 8443);

    static const struct hp_bad bad[] = {
        {"localhost:80", 0, "IP address"},
        {"example.org:443", 0, "IP address"},
        {"[::1]", 0, "missing port"},
        {"1.2.3:80", 0, "invalid IPv4 address"},
        {"[fe80::1%lo]:80", 0, "invalid IPv6 address"},
        {"0.0.0.0:0", 0, "port out of range"},
        {":80", 0, "missing host"},
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
        why = NULL;
        int rc = pt_listen_parse(bad[i].in, strlen(bad[i].in), &ss, &len, &why);
        cr_expect_eq(rc, PT_EMALFORMED, "%s", bad[i].in);
        cr_expect(why && strstr(why, bad[i].why), "%s: %s", bad[i].in, why ? why : "-");
    }
}

/* ---- CIDR --------------------------------------------------------------- */

struct cidr_ok {
    const char *in;
    const char *out;
    int family;
    uint8_t bits;
};

static const struct cidr_ok cidr_accepted[] = {
    {"203.0.113.7", "203.0.113.7", AF_INET, 32},
    {"203.0.113.0/24", "203.0.113.0/24", AF_INET, 24},
    {"10.0.0.1/8", "10.0.0.0/8", AF_INET, 8},
    {"10.1.2.3/31", "10.1.2.2/31", AF_INET, 31},
    {"10.255.255.255/9", "10.128.0.0/9", AF_INET, 9},
    {"1.2.3.4/32", "1.2.3.4", AF_INET, 32},
    {"0.0.0.0/0", "0.0.0.0/0", AF_INET, 0},
    {"255.255.255.255/0", "0.0.0.0/0", AF_INET, 0},
    {"2001:db8::1", "2001:db8::1", AF_INET6, 128},
    {"2001:DB8::/64", "2001:db8::/64", AF_INET6, 64},
    {"2001:db8::1/64", "2001:db8::/64", AF_INET6, 64},
    {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", AF_INET6, 128},
    {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", AF_INET6, 128},
    {"2001:db8:ffff::/33", "2001:db8:8000::/33", AF_INET6, 33},
    {"2001:db8::1/128", "2001:db8::1", AF_INET6, 128},
    {"::/0", "::/0", AF_INET6, 0},
    {"::1", "::1", AF_INET6, 128},
    {"::ffff:1.2.3.4", "1.2.3.4", AF_INET, 32},
    {"::FFFF:1.2.3.4", "1.2.3.4", AF_INET, 32},
    {"::ffff:102:304", "1.2.3.4", AF_INET, 32},
    {"::ffff:1.2.3.4/120", "1.2.3.0/24", AF_INET, 24},
    {"::ffff:0:0/96", "0.0.0.0/0", AF_INET, 0},
    {"::ffff:1.2.3.4/64", "::/64", AF_INET6, 64},
    {"::1.2.3.4", "::1.2.3.4", AF_INET6, 128}, /* v4-compatible is not mapped */
};

Test(addr, cidr_accepted)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(cidr_accepted); i++) {
        const struct cidr_ok *c = &cidr_accepted[i];
        struct pt_cidr net;
        const char *why = NULL;
        int rc = cidr(c->in, strlen(c->in), &net, &why);
        cr_expect_eq(rc, 0, "%s: %s", c->in, why ? why : "-");
        if (rc != 0)
            continue;
        cr_expect_eq(net.family, c->family, "%s", c->in);
        cr_expect_eq(net.bits, c->bits, "%s", c->in);
        if (net.family == AF_INET) {
            static const uint8_t zero[12];
            cr_expect_eq(memcmp(net.addr + 4, zero, 12), 0, "%s: tail not zero", c->in);
        }
        char buf[PT_ADDRSTR_MAX];
        size_t n = pt_cidr_format(&net, buf, sizeof(buf));
        cr_expect_str_eq(buf, c->out, "%s", c->in);
        cr_expect_eq(n, strlen(c->out));

        /* normal form is a fixed point */
        struct pt_cidr again;
        cr_expect_eq(cidr(buf, n, &again, NULL), 0);
        cr_expect_eq(memcmp(&again, &net, sizeof(net)), 0, "%s: round trip", c->in);
    }
}

static const struct hp_bad cidr_refused[] = {
    {"", 0, "missing address"},
    {"/8", 0, "missing address"},
    {"1.2.3.4/33", 0, "prefix length out of range"},
    {"::/129", 0, "prefix length out of range"},
    {"::ffff:1.2.3.4/129", 0, "prefix length out of range"},
    {"1.2.3.4/999", 0, "prefix length out of range"},
    {"1.2.3.4/", 0, "invalid prefix length"},
    {"1.2.3.4/-1", 0, "invalid prefix length"},
    {"1.2.3.4/+8", 0, "invalid prefix length"},
    {"10.0.0.0/08", 0, "invalid prefix length"},
    {"10.0.0.0/8/8", 0, "invalid prefix length"},
    {"10.0.0.0/1000", 0, "invalid prefix length"},
    {"10.0.0.0/8 ", 0, "invalid prefix length"},
    {"1.2.3", 0, "invalid IPv4 address"},
    {"1.2.3.256", 0, "invalid IPv4 address"},
    {"01.2.3.4", 0, "invalid IPv4 address"},
    {"1.2.3.4.", 0, "invalid IPv4 address"},
    {"1.2.3.4 ", 0, "invalid IP address"},
    {"example.org", 0, "invalid IP address"},
    {"0x7f000001", 0, "invalid IP address"},
    {"fe80::1%eth0", 0, "invalid IPv6 address"},
    {"[::1]", 0, "invalid IPv6 address"},
    {"2001:db8::g", 0, "invalid IPv6 address"},
    {":::", 0, "invalid IPv6 address"},
    {"1.2.3.4\0/8", 10, "invalid IP address"},
};

Test(addr, cidr_refused)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(cidr_refused); i++) {
        const struct hp_bad *c = &cidr_refused[i];
        size_t len = c->len ? c->len : strlen(c->in);
        struct pt_cidr net;
        const char *why = NULL;
        int rc = cidr(c->in, len, &net, &why);
        cr_expect_eq(rc, PT_EMALFORMED, "%s: accepted", c->in);
        cr_expect(why != NULL && strstr(why, c->why) != NULL, "%s: \"%s\", want \"%s\"",
                  c->in, why ? why : "(null)", c->why);
        cr_expect_eq(cidr(c->in, len, &net, NULL), PT_EMALFORMED);
    }
}

struct contains_case {
    const char *net;
    const char *ip;
    bool v6; /* build a sockaddr_in6 from <ip> */
    bool in;
};

static const struct contains_case contains[] = {
    {"10.0.0.0/8", "10.255.1.2", false, true},
    {"10.0.0.0/8", "10.0.0.0", false, true},
    {"10.0.0.0/8", "11.0.0.1", false, false},
    {"10.0.0.0/8", "9.255.255.255", false, false},
    {"10.0.0.0/8", "::ffff:10.1.2.3", true, true},
    {"10.0.0.0/8", "::ffff:11.1.2.3", true, false},
    {"10.0.0.0/8", "::a01:203", true, false}, /* v4-compatible is IPv6 */
    {"10.0.0.0/8", "2001:db8::1", true, false},
    {"10.1.2.2/31", "10.1.2.3", false, true},
    {"10.1.2.2/31", "10.1.2.4", false, false},
    {"203.0.113.7", "203.0.113.7", false, true},
    {"203.0.113.7", "203.0.113.8", false, false},
    {"203.0.113.7", "::ffff:203.0.113.7", true, true},
    {"0.0.0.0/0", "1.2.3.4", false, true},
    {"0.0.0.0/0", "::ffff:1.2.3.4", true, true},
    {"0.0.0.0/0", "::1", true, false},
    {"2001:db8::/32", "2001:db8:ffff::1", true, true},
    {"2001:db8::/32", "2001:db9::", true, false},
    {"2001:db8::/32", "1.2.3.4", false, false},
    {"2001:db8:8000::/33", "2001:db8:8000::1", true, true},
    {"2001:db8:8000::/33", "2001:db8:7fff::1", true, false},
    {"2001:db8::1", "2001:db8::1", true, true},
    {"2001:db8::1", "2001:db8::2", true, false},
    {"::/0", "2001:db8::1", true, true},
    {"::/0", "::ffff:1.2.3.4", true, false}, /* mapped counts as IPv4 */
    {"::/0", "1.2.3.4", false, false},
    {"::ffff:1.2.3.4", "1.2.3.4", false, true},
    {"::ffff:1.2.3.4", "::ffff:1.2.3.4", true, true},
    {"::ffff:1.2.3.0/120", "1.2.3.99", false, true},
    {"::ffff:1.2.3.0/120", "1.2.4.99", false, false},
};

Test(addr, cidr_contains)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(contains); i++) {
        const struct contains_case *c = &contains[i];
        struct pt_cidr net;
        cr_assert_eq(pt_cidr_parse(c->net, strlen(c->net), &net, NULL), 0, "%s", c->net);
        struct sockaddr_storage ss = c->v6 ? sa6(c->ip, 1234) : sa4(c->ip, 1234);
        cr_expect_eq(pt_cidr_contains(&net, SA(ss)), c->in, "%s in %s", c->ip, c->net);
    }

    struct pt_cidr all;
    cr_assert_eq(pt_cidr_parse("0.0.0.0/0", 9, &all, NULL), 0);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    cr_expect_not(pt_cidr_contains(&all, (const struct sockaddr *)&sun));
}

/* ---- socket addresses --------------------------------------------------- */

Test(addr, sockaddr_unmap)
{
    struct sockaddr_storage ss = sa6("::ffff:192.0.2.1", 1234);
    cr_assert(pt_sockaddr_unmap(&ss));
    cr_expect_eq(ss.ss_family, AF_INET);
    struct sockaddr_in sin;
    memcpy(&sin, &ss, sizeof(sin));
    cr_expect_eq(ntohs(sin.sin_port), 1234);
    cr_expect_eq(ntohl(sin.sin_addr.s_addr), 0xc0000201u);

    struct sockaddr_storage before = sa6("2001:db8::1", 443), v6 = before;
    cr_expect_not(pt_sockaddr_unmap(&v6));
    cr_expect_eq(memcmp(&v6, &before, sizeof(v6)), 0);

    before = sa4("192.0.2.1", 80);
    struct sockaddr_storage v4 = before;
    cr_expect_not(pt_sockaddr_unmap(&v4));
    cr_expect_eq(memcmp(&v4, &before, sizeof(v4)), 0);

    /* v4-compatible (deprecated) is not mapped */
    struct sockaddr_storage compat = sa6("::192.0.2.1", 80);
    cr_expect_not(pt_sockaddr_unmap(&compat));
}

struct fmt_case {
    const char *ip;
    bool v6;
    uint16_t port;
    const char *ipstr;
    const char *full;
};

static const struct fmt_case fmts[] = {
    {"192.0.2.1", false, 443, "192.0.2.1", "192.0.2.1:443"},
    {"0.0.0.0", false, 0, "0.0.0.0", "0.0.0.0:0"},
    {"255.255.255.255", false, 65535, "255.255.255.255", "255.255.255.255:65535"},
    {"2001:db8::1", true, 443, "2001:db8::1", "[2001:db8::1]:443"},
    {"2001:db8:0:0:1:0:0:1", true, 80, "2001:db8::1:0:0:1", "[2001:db8::1:0:0:1]:80"},
    {"::", true, 8080, "::", "[::]:8080"},
    {"::ffff:192.0.2.1", true, 1234, "192.0.2.1", "192.0.2.1:1234"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true, 65535,
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
};

Test(addr, sockaddr_format)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(fmts); i++) {
        const struct fmt_case *c = &fmts[i];
        struct sockaddr_storage ss = c->v6 ? sa6(c->ip, c->port) : sa4(c->ip, c->port);
        char buf[PT_ADDRSTR_MAX];
        cr_expect_eq(pt_sockaddr_ip(SA(ss), buf, sizeof(buf)), strlen(c->ipstr));
        cr_expect_str_eq(buf, c->ipstr);
        cr_expect_eq(pt_sockaddr_format(SA(ss), buf, sizeof(buf)), strlen(c->full));
        cr_expect_str_eq(buf, c->full);
        cr_expect_eq(pt_sockaddr_port(SA(ss)), c->port);
    }

    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    char buf[PT_ADDRSTR_MAX] = "x";
    cr_expect_eq(pt_sockaddr_ip((const struct sockaddr *)&sun, buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, "");
    cr_expect_eq(pt_sockaddr_format((const struct sockaddr *)&sun, buf, sizeof(buf)), 0);
    cr_expect_eq(pt_sockaddr_port((const struct sockaddr *)&sun), 0);
}

/* PT_ADDRSTR_MAX really is enough for the longest address. */
Test(addr, addrstr_max)
{
    struct sockaddr_storage ss = sa6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    char buf[PT_ADDRSTR_MAX];
    size_t n = pt_sockaddr_format(SA(ss), buf, sizeof(buf));
    cr_expect_lt(n, sizeof(buf));

    struct pt_cidr c;
    cr_assert_eq(pt_cidr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", 43, &c, NULL), 0);
    n = pt_cidr_format(&c, buf, sizeof(buf));
    cr_expect_str_eq(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
}
