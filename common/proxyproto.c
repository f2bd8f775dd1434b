/* PROXY protocol v1/v2 encoder and parser; the contract is in proxyproto.h.
 *
 * The parser is written so that a partial header can be told apart from a
 * bad one as early as possible: every check runs on the bytes already there,
 * and only a header that could still become valid gets PT_ENEEDMORE. That
 * keeps a garbage-sending peer from holding a connection until the timeout. */
#include "common/proxyproto.h"

#include "common/cursor.h"

#include <arpa/inet.h>

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define V1_LINE_MAX (PT_PP_V1_MAX - 2) /* longest v1 line before its CRLF */
#define V2_FIXED 16                    /* signature, ver/cmd, family, len */
#define PP_AUTHORITY_MAX 255           /* a host name; also sizes PT_PP_OUT_MAX */
#define PP_UNIQUE_ID_MAX 128           /* the spec's own limit */

enum {
    PP2_CMD_LOCAL = 0x0,
    PP2_CMD_PROXY = 0x1,
};

enum {
    PP2_FAM_UNSPEC = 0x00,
    PP2_FAM_TCP4 = 0x11,
    PP2_FAM_UDP4 = 0x12,
    PP2_FAM_TCP6 = 0x21,
    PP2_FAM_UDP6 = 0x22,
    PP2_FAM_UNIX_STREAM = 0x31,
    PP2_FAM_UNIX_DGRAM = 0x32,
};

enum {
    PP2_TYPE_ALPN = 0x01,
    PP2_TYPE_AUTHORITY = 0x02,
    PP2_TYPE_CRC32C = 0x03,
    PP2_TYPE_NOOP = 0x04,
    PP2_TYPE_UNIQUE_ID = 0x05,
    PP2_TYPE_SSL = 0x20,
    PP2_TYPE_NETNS = 0x30,
};

/* ---- shared helpers ------------------------------------------------------ */

static void set_v4(struct sockaddr_storage *ss, const uint8_t ip[4], uint16_t port)
{
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    memcpy(&sin.sin_addr, ip, 4);
    sin.sin_port = htons(port);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &sin, sizeof(sin));
}

static void set_v6(struct sockaddr_storage *ss, const uint8_t ip[16], uint16_t port)
{
    struct sockaddr_in6 sin6;

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    memcpy(&sin6.sin6_addr, ip, 16);
    sin6.sin6_port = htons(port);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &sin6, sizeof(sin6));
}

/* ---- encoder ------------------------------------------------------------- */

/* An endpoint reduced to what the header can carry. */
struct pp_addr {
    int family;     /* AF_INET or AF_INET6 */
    uint8_t ip[16]; /* 4 or 16 bytes used, network order */
    uint16_t port;  /* host order */
};

/* Loads <sa>, unmapping ::ffff:a.b.c.d to AF_INET (see the header for why).
 * Copies through locals so <sa> need not be aligned for sockaddr_in6. */
static int pp_addr_load(const struct sockaddr *sa, struct pp_addr *a)
{
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        a->family = AF_INET;
        memcpy(a->ip, &sin.sin_addr, 4);
        a->port = ntohs(sin.sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        a->port = ntohs(sin6.sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
            a->family = AF_INET;
            memcpy(a->ip, &sin6.sin6_addr.s6_addr[12], 4);
        } else {
            a->family = AF_INET6;
            memcpy(a->ip, sin6.sin6_addr.s6_addr, 16);
        }
        return 0;
    }
    return PT_EINVAL;
}

/* Brings <dst> to the family of <src>: the client address is what backends
 * use, so it keeps its own form and the destination adapts. */
static void pp_addr_match(const struct pp_addr *src, struct pp_addr *dst)
{
    if (src->family == dst->family)
        return;
    if (src->family == AF_INET6) {
        /* IPv4 fits in IPv6 without loss as ::ffff:a.b.c.d. */
        uint8_t v4[4];
        memcpy(v4, dst->ip, 4);
        memset(dst->ip, 0, 10);
        dst->ip[10] = 0xff;
        dst->ip[11] = 0xff;
        memcpy(&dst->ip[12], v4, 4);
        dst->family = AF_INET6;
    } else {
        /* A real IPv6 address has no IPv4 form: send the unspecified
         * address, keep the port. */
        memset(dst->ip, 0, sizeof(dst->ip));
        dst->family = AF_INET;
    }
}

static int encode_v1(const struct pp_addr *src, const struct pp_addr *dst,
                     uint8_t *out, size_t size)
{
    char s[INET6_ADDRSTRLEN];
    char d[INET6_ADDRSTRLEN];
    char line[PT_PP_V1_MAX + 1];

    if (inet_ntop(src->family, src->ip, s, sizeof(s)) == NULL ||
        inet_ntop(dst->family, dst->ip, d, sizeof(d)) == NULL)
        return PT_EINVAL;
    int n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
                     src->family == AF_INET ? "TCP4" : "TCP6", s, d,
                     (unsigned)src->port, (unsigned)dst->port);
    /* The longest TCP6 line is 104 bytes, so truncation would be a bug in
     * this function, but it must not turn into a short header on the wire. */
    if (n < 0 || (size_t)n >= sizeof(line) || (size_t)n > size)
        return PT_EINVAL;
    memcpy(out, line, (size_t)n);
    return n;
}

static void put_u16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static int encode_v2(const struct pp_addr *src, const struct pp_addr *dst,
                     const char *authority, size_t alen, uint8_t *out,
                     size_t size)
{
    size_t iplen = src->family == AF_INET ? 4 : 16;
    size_t addrlen = 2 * iplen + 4;
    size_t tlvlen = alen > 0 ? 3 + alen : 0;
    size_t total = V2_FIXED + addrlen + tlvlen;

    if (total > size)
        return PT_EINVAL;
    memcpy(out, v2_sig, sizeof(v2_sig));
    out[12] = 0x20 | PP2_CMD_PROXY;
    out[13] = src->family == AF_INET ? PP2_FAM_TCP4 : PP2_FAM_TCP6;
    put_u16(&out[14], addrlen + tlvlen);
    uint8_t *p = out + V2_FIXED;
    memcpy(p, src->ip, iplen);
    p += iplen;
    memcpy(p, dst->ip, iplen);
    p += iplen;
    put_u16(p, src->port);
    p += 2;
    put_u16(p, dst->port);
    p += 2;
    if (alen > 0) {
        p[0] = PP2_TYPE_AUTHORITY;
        put_u16(&p[1], alen);
        memcpy(&p[3], authority, alen);
    }
    return (int)total;
}

int pt_proxyproto_encode(enum pt_pp_version v, const struct sockaddr *src,
                         const struct sockaddr *dst, const char *authority,
                         size_t alen, uint8_t *out, size_t size)
{
    struct pp_addr s;
    struct pp_addr d;

    if (src == NULL || dst == NULL || out == NULL)
        return PT_EINVAL;
    if (v != PT_PP_V1 && v != PT_PP_V2)
        return PT_EINVAL;
    if (pp_addr_load(src, &s) != 0 || pp_addr_load(dst, &d) != 0)
        return PT_EINVAL;
    pp_addr_match(&s, &d);
    if (v == PT_PP_V1)
        return encode_v1(&s, &d, out, size); /* no TLVs: authority unused */
    if (authority == NULL)
        alen = 0;
    /* Refused rather than truncated or dropped: a backend routing on the
     * authority must never see a different name than the client sent. A NUL
     * would be cut by any C consumer, and our own parser refuses it. */
    if (alen > PP_AUTHORITY_MAX || (alen > 0 && memchr(authority, '\0', alen)))
        return PT_EINVAL;
    return encode_v2(&s, &d, authority, alen, out, size);
}

/* ---- v1 parser ----------------------------------------------------------- */

/* A v1 line before its CRLF, consumed token by token. */
struct v1_lex {
    const uint8_t *p;
    const uint8_t *end;
};

/* Takes the next token, ended by one SP (consumed) or by the end of the line.
 * Sets <*last> when the end of the line ended it. Empty tokens (a double SP)
 * are returned as such and fail the caller's check. */
static size_t v1_token(struct v1_lex *lx, const uint8_t **tok, bool *last)
{
    const uint8_t *s = lx->p;

    while (lx->p < lx->end && *lx->p != ' ')
        lx->p++;
    *tok = s;
    size_t n = (size_t)(lx->p - s);
    *last = lx->p == lx->end;
    if (!*last)
        lx->p++;
    return n;
}

static bool tok_is(const uint8_t *t, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(t, word, n) == 0;
}

static bool tok_prefix_of(const uint8_t *t, size_t n, const char *word)
{
    return n <= strlen(word) && memcmp(t, word, n) == 0;
}

/* Strict dotted quad: four decimal octets 0..255, no leading zeros, nothing
 * else. Done by hand because inet_pton's IPv4 rules differ between libcs
 * (leading zeros, short forms) and this must be the same everywhere. */
static bool v1_ipv4(const uint8_t *s, size_t n, bool prefix, uint8_t ip[4])
{
    size_t octet = 0;
    size_t digits = 0;
    unsigned val = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (digits == 0 || octet == 3)
                return false;
            ip[octet++] = (uint8_t)val;
            val = 0;
            digits = 0;
        } else if (s[i] >= '0' && s[i] <= '9') {
            if (digits == 1 && val == 0)
                return false; /* leading zero */
            val = val * 10 + (unsigned)(s[i] - '0');
            digits++;
            if (val > 255)
                return false;
        } else {
            return false;
        }
    }
    if (prefix)
        return true;
    if (digits == 0 || octet != 3)
        return false;
    ip[3] = (uint8_t)val;
    return true;
}

/* IPv6 text. The token is copied to a NUL-terminated buffer because <s> is
 * not a C string. The character check comes first so a scope ("%eth0") or any
 * libc extension can never get through. */
static bool v1_ipv6(const uint8_t *s, size_t n, bool prefix, uint8_t ip[16])
{
    char tmp[INET6_ADDRSTRLEN];

    if (n >= sizeof(tmp))
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                  (c >= 'A' && c <= 'F') || c == ':' || c == '.';
        if (!ok)
            return false;
    }
    if (prefix)
        return true;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, ip) == 1;
}

/* Decimal 0..65535 without leading zeros. */
static bool v1_port(const uint8_t *s, size_t n, bool prefix, uint16_t *port)
{
    unsigned val = 0;

    if (n == 0)
        return prefix;
    if (n > 5 || (s[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        val = val * 10 + (unsigned)(s[i] - '0');
    }
    if (val > 65535)
        return false;
    *port = (uint16_t)val;
    return true;
}

/* Parses the line <line>[0..n) (CRLF excluded). <partial>: no CR seen yet,
 * so the line may continue past <n>, and the token that runs into the end is
 * checked only as a prefix of something valid (complete tokens before it are
 * checked in full, so "PROXY TCP4 256." fails at once). Returns 0 with <info>
 * filled, PT_ENEEDMORE (only when <partial>) or PT_EMALFORMED. */
static int v1_parse_line(const uint8_t *line, size_t n, bool partial,
                         struct pt_proxyproto_info *info)
{
    static const char magic[] = "PROXY ";
    const size_t mlen = sizeof(magic) - 1;
    struct v1_lex lx;
    const uint8_t *tok;
    size_t tlen;
    bool last;

    if (memcmp(line, magic, n < mlen ? n : mlen) != 0)
        return PT_EMALFORMED;
    if (n < mlen)
        return partial ? PT_ENEEDMORE : PT_EMALFORMED;
    lx.p = line + mlen;
    lx.end = line + n;

    tlen = v1_token(&lx, &tok, &last);
    if (last && partial) {
        if (tok_prefix_of(tok, tlen, "TCP4") || tok_prefix_of(tok, tlen, "TCP6") ||
            tok_prefix_of(tok, tlen, "UNKNOWN"))
            return PT_ENEEDMORE;
        return PT_EMALFORMED;
    }
    if (tok_is(tok, tlen, "UNKNOWN")) {
        /* The spec: ignore whatever follows up to the CRLF. */
        if (partial)
            return PT_ENEEDMORE;
        info->version = PT_PP_V1;
        info->local = true;
        return 0;
    }

    int family;
    if (tok_is(tok, tlen, "TCP4"))
        family = AF_INET;
    else if (tok_is(tok, tlen, "TCP6"))
        family = AF_INET6;
    else
        return PT_EMALFORMED;
    if (last)
        return PT_EMALFORMED; /* "PROXY TCP4" and nothing else */

    uint8_t ip[2][16];
    uint16_t port[2] = {0, 0};
    for (int field = 0; field < 4; field++) {
        tlen = v1_token(&lx, &tok, &last);
        bool prefix = last && partial;
        bool ok;
        if (field < 2)
            ok = family == AF_INET ? v1_ipv4(tok, tlen, prefix, ip[field])
                                   : v1_ipv6(tok, tlen, prefix, ip[field]);
        else
            ok = v1_port(tok, tlen, prefix, &port[field - 2]);
        if (!ok)
            return PT_EMALFORMED;
        if (prefix)
            return PT_ENEEDMORE;
        /* Exactly four fields: none missing, no trailing SP or extras. */
        if (last != (field == 3))
            return PT_EMALFORMED;
    }
    if (partial) /* complete fields but no CRLF yet */
        return PT_ENEEDMORE;

    info->version = PT_PP_V1;
    info->local = false;
    if (family == AF_INET) {
        set_v4(&info->src, ip[0], port[0]);
        set_v4(&info->dst, ip[1], port[1]);
    } else {
        set_v6(&info->src, ip[0], port[0]);
        set_v6(&info->dst, ip[1], port[1]);
    }
    return 0;
}

static int v1_parse(const uint8_t *buf, size_t len, struct pt_proxyproto_info *info)
{
    /* The CR may sit at index V1_LINE_MAX at the latest (107 bytes total). */
    size_t scan = len < V1_LINE_MAX + 1 ? len : V1_LINE_MAX + 1;
    size_t i;

    for (i = 0; i < scan; i++)
        if (buf[i] == '\r' || buf[i] == '\n')
            break;
    if (i == scan) {
        if (len > V1_LINE_MAX)
            return PT_EMALFORMED; /* no room left for the CRLF */
        return v1_parse_line(buf, len, true, info);
    }
    if (buf[i] == '\n')
        return PT_EMALFORMED; /* bare LF */
    if (i + 1 == len) {
        /* CR is the last byte: the line is complete, the LF may follow. */
        int rc = v1_parse_line(buf, i, false, info);
        return rc < 0 ? rc : PT_ENEEDMORE;
    }
    if (buf[i + 1] != '\n')
        return PT_EMALFORMED; /* bare CR */
    int rc = v1_parse_line(buf, i, false, info);
    if (rc < 0)
        return rc;
    return (int)(i + 2);
}

/* ---- v2 parser ----------------------------------------------------------- */

/* CRC32C (Castagnoli), bitwise: headers are at most 1 KiB and the TLV is
 * rare, so a table is not worth its cache lines. */
static uint32_t crc32c_byte(uint32_t crc, uint8_t b)
{
    crc ^= b;
    for (int k = 0; k < 8; k++)
        crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
    return crc;
}

/* The checksum covers the whole header with the TLV's value read as zero;
 * the value itself is big-endian (as HAProxy writes it). */
static bool v2_crc_ok(const uint8_t *hdr, size_t total, const uint8_t *field)
{
    size_t at = (size_t)(field - hdr);
    uint32_t crc = 0xFFFFFFFFu;

    for (size_t i = 0; i < total; i++)
        crc = crc32c_byte(crc, (i >= at && i < at + 4) ? 0 : hdr[i]);
    crc ^= 0xFFFFFFFFu;
    uint32_t want = ((uint32_t)field[0] << 24) | ((uint32_t)field[1] << 16) |
                    ((uint32_t)field[2] << 8) | field[3];
    return crc == want;
}

/* PP2_TYPE_SSL: client u8, verify u32, then sub-TLVs that must tile the rest. */
static bool v2_ssl_ok(const uint8_t *v, size_t n)
{
    struct pt_cursor c = pt_cursor_make(v, n);

    (void)pt_rd_u8(&c);
    (void)pt_rd_u32(&c);
    while (c.ok && pt_cursor_left(&c) > 0) {
        (void)pt_rd_u8(&c);
        uint16_t sublen = pt_rd_u16(&c);
        (void)pt_rd_bytes(&c, sublen);
    }
    return c.ok;
}

/* Walks the TLVs that fill the rest of the block: they must tile it exactly
 * (a trailing partial TLV is an error, not padding). Unknown types are
 * skipped as the spec asks. */
static int v2_tlvs(struct pt_cursor *c, const uint8_t *hdr, size_t total,
                   struct pt_proxyproto_info *info)
{
    const uint8_t *crc = NULL;

    while (pt_cursor_left(c) > 0) {
        uint8_t type = pt_rd_u8(c);
        uint16_t tlen = pt_rd_u16(c);
        const uint8_t *val = pt_rd_bytes(c, tlen);
        if (!c->ok)
            return PT_EMALFORMED;
        switch (type) {
        case PP2_TYPE_AUTHORITY:
            /* One host name, as the encoder sends it; a duplicate would let
             * two layers disagree on which one routes. */
            if (info->authority != NULL || tlen == 0 || tlen > PP_AUTHORITY_MAX ||
                memchr(val, '\0', tlen) != NULL)
                return PT_EMALFORMED;
            info->authority = (const char *)val;
            info->authority_len = tlen;
            break;
        case PP2_TYPE_CRC32C:
            if (crc != NULL || tlen != 4)
                return PT_EMALFORMED;
            crc = val;
            break;
        case PP2_TYPE_UNIQUE_ID:
            if (tlen > PP_UNIQUE_ID_MAX)
                return PT_EMALFORMED;
            break;
        case PP2_TYPE_SSL:
            if (!v2_ssl_ok(val, tlen))
                return PT_EMALFORMED;
            break;
        default: /* ALPN, NOOP, NETNS, custom 0xE0-0xEF, unknown */
            break;
        }
    }
    if (crc != NULL && !v2_crc_ok(hdr, total, crc))
        return PT_EMALFORMED;
    return 0;
}

/* Maps the family byte to its address block size. Only the seven values the
 * spec lists exist; datagram families make no sense in front of a stream and
 * are refused under PROXY (a LOCAL block is discarded whatever it says). */
static int v2_family(uint8_t fam, unsigned cmd, size_t *addrlen)
{
    bool dgram = false;

    switch (fam) {
    case PP2_FAM_UNSPEC:
        *addrlen = 0;
        break;
    case PP2_FAM_UDP4:
        dgram = true;
        /* fall through */
    case PP2_FAM_TCP4:
        *addrlen = 12;
        break;
    case PP2_FAM_UDP6:
        dgram = true;
        /* fall through */
    case PP2_FAM_TCP6:
        *addrlen = 36;
        break;
    case PP2_FAM_UNIX_DGRAM:
        dgram = true;
        /* fall through */
    case PP2_FAM_UNIX_STREAM:
        *addrlen = 216;
        break;
    default:
        return PT_EMALFORMED;
    }
    if (cmd == PP2_CMD_PROXY && dgram)
        return PT_EMALFORMED;
    return 0;
}

static int v2_parse(const uint8_t *buf, size_t len, struct pt_proxyproto_info *info)
{
    size_t addrlen = 0;

    if (memcmp(buf, v2_sig, len < sizeof(v2_sig) ? len : sizeof(v2_sig)) != 0)
        return PT_EMALFORMED;
    if (len < 13)
        return PT_ENEEDMORE;
    if ((buf[12] & 0xF0) != 0x20)
        return PT_EMALFORMED;
    unsigned cmd = buf[12] & 0x0F;
    if (cmd != PP2_CMD_LOCAL && cmd != PP2_CMD_PROXY)
        return PT_EMALFORMED;
    if (len < 14)
        return PT_ENEEDMORE;
    if (v2_family(buf[13], cmd, &addrlen) != 0)
        return PT_EMALFORMED;
    if (len < V2_FIXED)
        return PT_ENEEDMORE;

    /* Both limits are checked on the announced length, before waiting for
     * the block: a peer announcing 64 KiB or a too-short address block is
     * refused now instead of being buffered for. */
    size_t hlen = ((size_t)buf[14] << 8) | buf[15];
    if (hlen > PT_PP_V2_MAX - V2_FIXED)
        return PT_EMALFORMED;
    if (cmd == PP2_CMD_PROXY && hlen < addrlen)
        return PT_EMALFORMED;
    if (len - V2_FIXED < hlen)
        return PT_ENEEDMORE;
    size_t total = V2_FIXED + hlen;

    info->version = PT_PP_V2;
    if (cmd == PP2_CMD_LOCAL) {
        /* The spec: discard the whole block, family included. */
        info->local = true;
        return (int)total;
    }

    struct pt_cursor c = pt_cursor_make(buf + V2_FIXED, hlen);
    if (buf[13] == PP2_FAM_TCP4) {
        const uint8_t *s = pt_rd_bytes(&c, 4);
        const uint8_t *d = pt_rd_bytes(&c, 4);
        uint16_t sport = pt_rd_u16(&c);
        uint16_t dport = pt_rd_u16(&c);
        if (!c.ok)
            return PT_EMALFORMED;
        set_v4(&info->src, s, sport);
        set_v4(&info->dst, d, dport);
        info->local = false;
    } else if (buf[13] == PP2_FAM_TCP6) {
        const uint8_t *s = pt_rd_bytes(&c, 16);
        const uint8_t *d = pt_rd_bytes(&c, 16);
        uint16_t sport = pt_rd_u16(&c);
        uint16_t dport = pt_rd_u16(&c);
        if (!c.ok)
            return PT_EMALFORMED;
        set_v6(&info->src, s, sport);
        set_v6(&info->dst, d, dport);
        info->local = false;
    } else {
        /* UNSPEC or UNIX stream: the spec lets us accept with the real
         * endpoints, as HAProxy does; the TLVs still count. */
        (void)pt_rd_bytes(&c, addrlen);
        if (!c.ok)
            return PT_EMALFORMED;
        info->local = true;
    }
    if (v2_tlvs(&c, buf, total, info) != 0)
        return PT_EMALFORMED;
    return (int)total;
}

/* ---- entry point --------------------------------------------------------- */

int pt_proxyproto_parse(const uint8_t *buf, size_t len,
                        struct pt_proxyproto_info *out)
{
    struct pt_proxyproto_info info;
    int rc;

    if (len == 0)
        return PT_ENEEDMORE;
    memset(&info, 0, sizeof(info));
    info.authority = NULL;
    /* The first byte already tells the versions apart ('\r' vs 'P'), so a
     * non-PROXY stream is refused on its first byte. */
    if (buf[0] == v2_sig[0])
        rc = v2_parse(buf, len, &info);
    else if (buf[0] == 'P')
        rc = v1_parse(buf, len, &info);
    else
        rc = PT_EMALFORMED;
    if (rc > 0)
        *out = info; /* <out> is left alone unless a header was found */
    return rc;
}

int pt_proxyproto_detect(const uint8_t *buf, size_t len)
{
    static const char v1_sig[6] = {'P', 'R', 'O', 'X', 'Y', ' '};
    if (len == 0)
        return PT_ENEEDMORE;
    const uint8_t *sig = buf[0] == v2_sig[0] ? v2_sig : (const uint8_t *)v1_sig;
    size_t n = sig == v2_sig ? sizeof(v2_sig) : sizeof(v1_sig);
    size_t have = len < n ? len : n;
    if (memcmp(buf, sig, have) != 0)
        return 0;
    return have == n ? 1 : PT_ENEEDMORE;
}
