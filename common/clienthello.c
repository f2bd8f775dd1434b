/* TLS ClientHello peek (see clienthello.h for the contract).
 *
 * Two stages. The record walk copies handshake fragments from successive
 * records into <scratch> and decides need-more / malformed / too-big from
 * the bytes seen so far, so that a prefix of a valid hello is never refused
 * and a contradiction is reported as soon as it is visible. Only once the
 * whole message is in <scratch> is the hello body parsed, with a cursor. */
#include "common/clienthello.h"

#include "common/cursor.h"

#define TLS_RECORD_HEADER 5
#define TLS_RECORD_MAX 16384 /* 2^14: largest plaintext fragment (RFC 8446 5.1) */
#define TLS_CT_ALERT 21
#define TLS_CT_HANDSHAKE 22
#define TLS_HS_HEADER 4
#define TLS_HS_CLIENT_HELLO 1

#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define EXT_SUPPORTED_VERSIONS 43
#define SNI_HOST_NAME 0

/* Checks the record header at <p>, of which only <avail> bytes may have
 * arrived: each byte is judged as soon as it is there, so garbage is refused
 * after one byte rather than after five. Sets *rlen once complete. */
static int record_header(const uint8_t *p, size_t avail, size_t *rlen)
{
    if (avail >= 1 && p[0] != TLS_CT_HANDSHAKE)
        return PT_EMALFORMED;
    if (avail >= 2 && p[1] != 3) /* record versions 0x0300..0x0304 */
        return PT_EMALFORMED;
    if (avail >= 3 && p[2] > 4)
        return PT_EMALFORMED;
    if (avail >= 4 && p[3] > (TLS_RECORD_MAX >> 8))
        return PT_EMALFORMED;
    if (avail < TLS_RECORD_HEADER)
        return PT_ENEEDMORE;
    *rlen = (size_t)p[3] << 8 | p[4];
    /* Empty handshake fragments are forbidden (RFC 8446 5.1). */
    if (*rlen == 0 || *rlen > TLS_RECORD_MAX)
        return PT_EMALFORMED;
    return 0;
}

/* server_name (RFC 6066 3): ServerNameList<1..2^16-1> filling the extension.
 * The first host_name entry wins; entries of other types are skipped but
 * must still be well-formed. */
static int parse_sni(const uint8_t *p, size_t n, struct pt_clienthello *ch)
{
    struct pt_cursor c = pt_cursor_make(p, n);
    size_t list = pt_rd_u16(&c);
    if (!c.ok || list == 0 || list != pt_cursor_left(&c))
        return PT_EMALFORMED;
    while (pt_cursor_left(&c) > 0) {
        uint8_t type = pt_rd_u8(&c);
        size_t len = pt_rd_u16(&c);
        const uint8_t *name = pt_rd_bytes(&c, len);
        if (!c.ok)
            return PT_EMALFORMED;
        if (type != SNI_HOST_NAME || ch->sni != NULL)
            continue;
        /* A NUL would truncate the name for any C-string consumer while the
         * backend sees the whole thing: refuse rather than route on it. */
        if (len == 0 || len > 255 || memchr(name, 0, len) != NULL)
            return PT_EMALFORMED;
        ch->sni = (const char *)name;
        ch->sni_len = len;
    }
    return 0;
}

/* ALPN (RFC 7301 3.1): ProtocolNameList<2..2^16-1> filling the extension,
 * each ProtocolName<1..2^8-1>. */
static int parse_alpn(const uint8_t *p, size_t n, struct pt_clienthello *ch)
{
    struct pt_cursor c = pt_cursor_make(p, n);
    size_t list = pt_rd_u16(&c);
    if (!c.ok || list == 0 || list != pt_cursor_left(&c))
        return PT_EMALFORMED;
    while (pt_cursor_left(&c) > 0) {
        uint8_t len = pt_rd_u8(&c);
        const uint8_t *name = pt_rd_bytes(&c, len);
        if (!c.ok || len == 0)
            return PT_EMALFORMED;
        if (ch->alpn_count < PT_ALPN_MAX) {
            ch->alpn[ch->alpn_count] = (const char *)name;
            ch->alpn_len[ch->alpn_count] = len;
        }
        ch->alpn_count++;
    }
    return 0;
}

/* supported_versions in a ClientHello (RFC 8446 4.2.1): versions<2..254>. */
static int parse_versions(const uint8_t *p, size_t n)
{
    struct pt_cursor c = pt_cursor_make(p, n);
    size_t list = pt_rd_u8(&c);
    if (!c.ok || list < 2 || list % 2 != 0 || list != pt_cursor_left(&c))
        return PT_EMALFORMED;
    return 0;
}

/* Parses the ClientHello body (after the 4-byte handshake header) at
 * <p>[0..n), which must be exactly the hello. */
static int parse_hello(const uint8_t *p, size_t n, struct pt_clienthello *ch)
{
    struct pt_cursor c = pt_cursor_make(p, n);

    ch->legacy_version = pt_rd_u16(&c);
    pt_rd_bytes(&c, 32); /* random */
    size_t sid = pt_rd_u8(&c);
    if (sid > 32)
        return PT_EMALFORMED;
    pt_rd_bytes(&c, sid);
    size_t suites = pt_rd_u16(&c);
    if (suites < 2 || suites % 2 != 0)
        return PT_EMALFORMED;
    pt_rd_bytes(&c, suites);
    size_t comp = pt_rd_u8(&c);
    if (comp < 1)
        return PT_EMALFORMED;
    pt_rd_bytes(&c, comp);
    if (!c.ok)
        return PT_EMALFORMED;

    /* Pre-TLS 1.3 hellos may end here (RFC 5246 7.4.1.2). */
    if (pt_cursor_left(&c) == 0)
        return 0;
    size_t exts = pt_rd_u16(&c);
    if (!c.ok || exts != pt_cursor_left(&c))
        return PT_EMALFORMED;

    /* A second copy of an extension we route on could be read differently by
     * the backend (RFC 8446 4.2 forbids duplicates): refuse it. */
    bool seen_sni = false, seen_alpn = false;
    while (pt_cursor_left(&c) > 0) {
        uint16_t type = pt_rd_u16(&c);
        size_t len = pt_rd_u16(&c);
        const uint8_t *data = pt_rd_bytes(&c, len);
        if (!c.ok)
            return PT_EMALFORMED;
        int rc = 0;
        switch (type) {
        case EXT_SERVER_NAME:
            if (seen_sni)
                return PT_EMALFORMED;
            seen_sni = true;
            rc = parse_sni(data, len, ch);
            break;
        case EXT_ALPN:
            if (seen_alpn)
                return PT_EMALFORMED;
            seen_alpn = true;
            rc = parse_alpn(data, len, ch);
            break;
        case EXT_SUPPORTED_VERSIONS:
            if (ch->has_supported_versions)
                return PT_EMALFORMED;
            ch->has_supported_versions = true;
            rc = parse_versions(data, len);
            break;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int pt_clienthello_parse(const uint8_t *buf, size_t len, uint8_t *scratch,
                         struct pt_clienthello *out)
{
    size_t pos = 0;  /* start of the current record in <buf> */
    size_t have = 0; /* handshake bytes reassembled into <scratch> */
    size_t need = 0; /* handshake header + body; 0 until the header is in */

    PT_ASSERT(scratch != NULL && out != NULL);
    for (;;) {
        if (pos == len) /* before any arithmetic on a NULL, empty <buf> */
            return PT_ENEEDMORE;
        size_t rlen = 0;
        int rc = record_header(buf + pos, len - pos, &rlen);
        if (rc < 0)
            return rc;
        /* Every record walked is needed by the hello (the loop stops at the
         * one that completes it), so it has to fit in what the caller can
         * buffer. This also bounds what lands in <scratch>. */
        size_t rend = pos + TLS_RECORD_HEADER + rlen;
        if (rend > PT_CLIENTHELLO_MAX)
            return PT_ETOOBIG;

        size_t before = have;
        size_t avail = len - pos - TLS_RECORD_HEADER;
        if (avail > rlen)
            avail = rlen;
        PT_ASSERT(have + avail <= PT_CLIENTHELLO_MAX);
        memcpy(scratch + have, buf + pos + TLS_RECORD_HEADER, avail);
        have += avail;

        if (need == 0 && have >= 1 && scratch[0] != TLS_HS_CLIENT_HELLO)
            return PT_EMALFORMED;
        if (need == 0 && have >= TLS_HS_HEADER) {
            size_t hlen = (size_t)scratch[1] << 16 | (size_t)scratch[2] << 8 |
                          scratch[3];
            /* The contract's limit; the record check below implies it. */
            if (hlen > PT_CLIENTHELLO_MAX - TLS_HS_HEADER)
                return PT_ETOOBIG;
            need = TLS_HS_HEADER + hlen;
        }
        if (need != 0) {
            /* The client waits for the server after its hello, so nothing
             * may follow it in the record that completes it. */
            if (before + rlen > need)
                return PT_EMALFORMED;
            /* Known now: the rest needs at least one more record header. */
            size_t rest = need - (before + rlen);
            if (rest > 0 && rend + TLS_RECORD_HEADER + rest > PT_CLIENTHELLO_MAX)
                return PT_ETOOBIG;
        }
        if (avail < rlen)
            return PT_ENEEDMORE;
        pos = rend;
        if (need != 0 && have == need)
            break;
    }

    struct pt_clienthello ch = {0};
    int rc = parse_hello(scratch + TLS_HS_HEADER, need - TLS_HS_HEADER, &ch);
    if (rc < 0)
        return rc;
    ch.records_len = pos;
    *out = ch;
    return (int)pos;
}

size_t pt_tls_alert(uint8_t out[7], uint16_t version, uint8_t desc)
{
    if (version == 0)
        version = 0x0301;
    out[0] = TLS_CT_ALERT;
    out[1] = (uint8_t)(version >> 8);
    out[2] = (uint8_t)version;
    out[3] = 0; /* length: 2 */
    out[4] = 2;
    out[5] = 2; /* level: fatal */
    out[6] = desc;
    return 7;
}
