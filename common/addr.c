#include "common/addr.h"

#include "common/dname.h"

#include <arpa/inet.h>

/* Longest IPv6 text inet_pton can accept ("ffff:...:255.255.255.255"). */
#define V6_TEXT_MAX (INET6_ADDRSTRLEN - 1)

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Strict decimal: 1..<maxdigits> digits, no sign, no leading zero unless the
 * number is 0 itself. Leading zeros are refused because other parsers read
 * them as octal ("010" is 8 to inet_aton), and one text must mean one value. */
static bool parse_dec(const char *s, size_t len, size_t maxdigits, unsigned long *out)
{
    if (len == 0 || len > maxdigits)
        return false;
    if (len > 1 && s[0] == '0')
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* Strict dotted quad: exactly four decimal parts 0..255 without leading
 * zeros. None of inet_aton's shorthand ("10.1", "0x7f.1", "010.0.0.1"). */
static bool parse_v4(const char *s, size_t len, uint8_t out[4])
{
    size_t part = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        unsigned long v;
        if (part == 4 || !parse_dec(s + start, i - start, 3, &v) || v > 255)
            return false;
        out[part++] = (uint8_t)v;
        start = i + 1;
    }
    return part == 4;
}

/* inet_pton wants a C string; <s> is not one, and a copy also bounds what
 * inet_pton may read. Zone ids ("fe80::1%eth0") are refused by inet_pton
 * itself, which is what we want: they mean nothing across hosts. */
static bool parse_v6(const char *s, size_t len, uint8_t out[16])
{
    char tmp[V6_TEXT_MAX + 1];
    if (len == 0 || len > V6_TEXT_MAX)
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return inet_pton(AF_INET6, tmp, out) == 1;
}

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
    }
    return true;
}

static bool only_digits_and_dots(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]) && s[i] != '.')
            return false;
    }
    return true;
}

/* True when the resolver would read <name> as an IPv4 address anyway
 * (getaddrinfo tries inet_aton first: "0x7f000001", "0x7f.1"). Such a name
 * is an address in disguise and is refused rather than resolved. */
static bool aton_accepts(const char *name)
{
    struct in_addr ia;
    return inet_aton(name, &ia) != 0;
}

static void set_sa4(struct sockaddr_storage *ss, socklen_t *salen, const uint8_t a[4],
                    uint16_t port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    memcpy(&sin.sin_addr, a, 4);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &sin, sizeof(sin));
    *salen = sizeof(sin);
}

static void set_sa6(struct sockaddr_storage *ss, socklen_t *salen, const uint8_t a[16],
                    uint16_t port)
{
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    memcpy(&sin6.sin6_addr, a, 16);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &sin6, sizeof(sin6));
    *salen = sizeof(sin6);
}

static int fail(const char **why, const char *msg)
{
    if (why != NULL)
        *why = msg;
    return PT_EMALFORMED;
}

/* Shared by pt_hostport_parse and pt_listen_parse; <allow_dns> is the only
 * difference. On failure <out> may be partly written: callers clear it. */
static int hostport_parse(const char *s, size_t len, struct pt_hostport *out,
                          bool allow_dns, const char **why)
{
    memset(out, 0, sizeof(*out));

    const char *host, *port;
    size_t hostlen, portlen;
    bool bracketed = len > 0 && s[0] == '[';
    if (bracketed) {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return fail(why, "invalid IPv6 address");
        host = s + 1;
        hostlen = (size_t)(close - host);
        const char *rest = close + 1;
        size_t restlen = (size_t)(s + len - rest);
        if (restlen == 0)
            return fail(why, "missing port");
        if (rest[0] != ':')
            return fail(why, "invalid IPv6 address");
        port = rest + 1;
        portlen = restlen - 1;
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon == NULL)
            return fail(why, "missing port");
        host = s;
        hostlen = (size_t)(colon - s);
        port = colon + 1;
        portlen = (size_t)(s + len - port);
        /* "2001:db8::1:443" cannot be split reliably: insist on brackets. */
        if (memchr(port, ':', portlen) != NULL)
            return fail(why, "IPv6 address must be in brackets");
    }

    if (hostlen == 0)
        return fail(why, "missing host");
    if (portlen == 0)
        return fail(why, "missing port");
    /* Checked in this order so the message names the actual mistake:
     * "+1" and "0443" are not port numbers, "0" and "70000" are. */
    if (!all_digits(port, portlen) || (portlen > 1 && port[0] == '0'))
        return fail(why, "invalid port");
    unsigned long pv;
    if (portlen > 5 || !parse_dec(port, portlen, 5, &pv) || pv < 1 || pv > 65535)
        return fail(why, "port out of range");
    out->port = (uint16_t)pv;

    if (bracketed) {
        uint8_t a6[16];
        if (!parse_v6(host, hostlen, a6))
            return fail(why, "invalid IPv6 address");
        out->kind = PT_HOST_IPV6;
        /* Store the RFC 5952 form so the API shows one spelling per address. */
        if (inet_ntop(AF_INET6, a6, out->host, sizeof(out->host)) == NULL)
            return fail(why, "invalid IPv6 address");
        set_sa6(&out->sa, &out->salen, a6, out->port);
        return 0;
    }

    if (only_digits_and_dots(host, hostlen)) {
        uint8_t a4[4];
        if (!parse_v4(host, hostlen, a4))
            return fail(why, "invalid IPv4 address");
        out->kind = PT_HOST_IPV4;
        memcpy(out->host, host, hostlen);
        out->host[hostlen] = '\0';
        set_sa4(&out->sa, &out->salen, a4, out->port);
        return 0;
    }

    if (!allow_dns)
        return fail(why, "listen address must be an IP address");
    if (pt_dname_normalize(host, hostlen, out->host, 0, NULL) < 0)
        return fail(why, "invalid host name");
    if (aton_accepts(out->host))
        return fail(why, "invalid IPv4 address");
    out->kind = PT_HOST_DNS;
    return 0;
}

int pt_hostport_parse(const char *s, size_t len, struct pt_hostport *out,
                      const char **why)
{
    int rc = hostport_parse(s, len, out, true, why);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

size_t pt_hostport_format(const struct pt_hostport *hp, char *buf, size_t size)
{
    int n;
    if (hp->kind == PT_HOST_IPV6)
        n = snprintf(buf, size, "[%s]:%u", hp->host, (unsigned)hp->port);
    else
        n = snprintf(buf, size, "%s:%u", hp->host, (unsigned)hp->port);
    if (n < 0)
        return 0;
    return (size_t)n < size ? (size_t)n : (size > 0 ? size - 1 : 0);
}

int pt_listen_parse(const char *s, size_t len, struct sockaddr_storage *sa,
                    socklen_t *salen, const char **why)
{
    struct pt_hostport hp;
    int rc = hostport_parse(s, len, &hp, false, why);
    if (rc != 0)
        return rc;
    memcpy(sa, &hp.sa, sizeof(*sa));
    *salen = hp.salen;
    return 0;
}

static int cidr_parse(const char *s, size_t len, struct pt_cidr *out, const char **why)
{

    const char *slash = memchr(s, '/', len);
    size_t addrlen = slash != NULL ? (size_t)(slash - s) : len;
    unsigned maxbits;

    if (addrlen == 0) {
        return fail(why, "missing address");
    } else if (memchr(s, ':', addrlen) != NULL) {
        if (!parse_v6(s, addrlen, out->addr))
            return fail(why, "invalid IPv6 address");
        out->family = AF_INET6;
        maxbits = 128;
    } else {
        if (!only_digits_and_dots(s, addrlen))
            return fail(why, "invalid IP address");
        if (!parse_v4(s, addrlen, out->addr))
            return fail(why, "invalid IPv4 address");
        out->family = AF_INET;
        maxbits = 32;
    }

    unsigned long bits = maxbits;
    if (slash != NULL) {
        const char *p = slash + 1;
        size_t plen = (size_t)(s + len - p);
        if (!parse_dec(p, plen, 3, &bits))
            return fail(why, "invalid prefix length");
        if (bits > maxbits)
            return fail(why, "prefix length out of range");
    }
    out->bits = (uint8_t)bits;

    /* A v4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; keeping
     * such a ban as IPv4 means it matches however the client arrives. */
    if (out->family == AF_INET6 && out->bits >= 96 &&
        memcmp(out->addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
        out->family = AF_INET;
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->bits = (uint8_t)(out->bits - 96);
    }

    /* Clear host bits, as iptables does, so equal networks compare equal. */
    for (unsigned i = 0; i < 16; i++) {
        unsigned lo = i * 8;
        if (lo >= out->bits)
            out->addr[i] = 0;
        else if (lo + 8 > out->bits)
            out->addr[i] &= (uint8_t)(0xff << (8 - (out->bits - lo)));
    }
    return 0;
}

int pt_cidr_parse(const char *s, size_t len, struct pt_cidr *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    int rc = cidr_parse(s, len, out, why);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

size_t pt_cidr_format(const struct pt_cidr *c, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned maxbits = c->family == AF_INET ? 32 : 128;
    if (inet_ntop(c->family, c->addr, ip, sizeof(ip)) == NULL) {
        if (size > 0)
            buf[0] = '\0';
        return 0;
    }
    int n;
    if (c->bits == maxbits)
        n = snprintf(buf, size, "%s", ip);
    else
        n = snprintf(buf, size, "%s/%u", ip, (unsigned)c->bits);
    if (n < 0)
        return 0;
    return (size_t)n < size ? (size_t)n : (size > 0 ? size - 1 : 0);
}

/* The address bytes of <sa> with a v4-mapped IPv6 address seen as IPv4.
 * Returns the family, or 0 when <sa> is neither AF_INET nor AF_INET6. */
static int sa_ip(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        memcpy(out, &sin.sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        if (memcmp(&sin6.sin6_addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
            memcpy(out, sin6.sin6_addr.s6_addr + 12, 4);
            return AF_INET;
        }
        memcpy(out, &sin6.sin6_addr, 16);
        return AF_INET6;
    }
    return 0;
}

bool pt_cidr_contains(const struct pt_cidr *c, const struct sockaddr *sa)
{
    uint8_t ip[16];
    if (sa_ip(sa, ip) != c->family)
        return false;
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(ip, c->addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (ip[full] & mask) == c->addr[full];
}

bool pt_sockaddr_unmap(struct sockaddr_storage *ss)
{
    if (ss->ss_family != AF_INET6)
        return false;
    struct sockaddr_in6 sin6;
    memcpy(&sin6, ss, sizeof(sin6));
    if (memcmp(&sin6.sin6_addr, v4mapped_prefix, sizeof(v4mapped_prefix)) != 0)
        return false;
    socklen_t len;
    set_sa4(ss, &len, sin6.sin6_addr.s6_addr + 12, ntohs(sin6.sin6_port));
    return true;
}

/* Decimal digits of <v> at <p>; returns their count. */
static size_t put_dec(char *p, unsigned v)
{
    char t[10];
    size_t n = 0, i;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        p[i] = t[n - 1 - i];
    return n;
}

/* The text of an address as sa_ip gave it, NUL-terminated; 0 on failure.
 * IPv4 by hand: glibc's inet_ntop formats it through sprintf, and the HTTP
 * engine formats the client's address for every request (X-Forwarded-For,
 * the per-server tally). */
static size_t ip_text(int family, const uint8_t *ip, char out[INET6_ADDRSTRLEN])
{
    if (family == AF_INET) {
        size_t n = 0;
        for (int i = 0; i < 4; i++) {
            if (i)
                out[n++] = '.';
            n += put_dec(out + n, ip[i]);
        }
        out[n] = '\0';
        return n;
    }
    if (family == 0 || inet_ntop(family, ip, out, INET6_ADDRSTRLEN) == NULL)
        return 0;
    return strlen(out);
}

/* Copies <n> bytes of <text> to <buf> as snprintf would: truncated to
 * size - 1, NUL-terminated. Returns what was kept. */
static size_t put_text(char *buf, size_t size, const char *text, size_t n)
{
    if (size == 0)
        return 0;
    if (n >= size)
        n = size - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    return n;
}

size_t pt_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t size)
{
    uint8_t ip[16] = {0};
    char text[INET6_ADDRSTRLEN];
    size_t n = ip_text(sa_ip(sa, ip), ip, text);
    if (n >= size) /* as inet_ntop: too small a buffer gets nothing */
        n = 0;
    return put_text(buf, size, text, n);
}

size_t pt_sockaddr_format(const struct sockaddr *sa, char *buf, size_t size)
{
    uint8_t ip[16] = {0};
    char text[PT_ADDRSTR_MAX];
    int family = sa_ip(sa, ip);
    size_t n = ip_text(family, ip, text + 1);
    if (n == 0)
        return put_text(buf, size, "", 0);
    char *p = text + 1;
    if (family == AF_INET6) {
        p = text;
        p[0] = '[';
        p[++n] = ']';
        n++;
    }
    p[n++] = ':';
    n += put_dec(p + n, pt_sockaddr_port(sa));
    return put_text(buf, size, p, n);
}

uint16_t pt_sockaddr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        return ntohs(sin.sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        return ntohs(sin6.sin6_port);
    }
    return 0;
}

bool pt_sockaddr_same(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family || pt_sockaddr_port(a) != pt_sockaddr_port(b))
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return false;
}
