/* PROXY protocol v1 and v2 (HAProxy's doc/proxy-protocol.txt).
 *
 * Outbound: the header portier writes to a backend before the client's bytes,
 * so the backend sees the real client. Inbound: the header a trusted front
 * proxy puts before its client's bytes. The parser is pure: (buf, len) in,
 * consumed / need more / invalid out. */
#ifndef PT_PROXYPROTO_H
#define PT_PROXYPROTO_H

#include "common/pt.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define PT_PP_V1_MAX 107  /* longest v1 line, CRLF included */
#define PT_PP_V2_MAX 1024 /* largest v2 header we accept (16 + len) */
#define PT_PP_OUT_MAX (16 + 36 + 3 + 255) /* v2 INET6 + AUTHORITY of 255 */

enum pt_pp_version {
    PT_PP_NONE = 0,
    PT_PP_V1 = 1,
    PT_PP_V2 = 2,
};

/* Encodes a header for a connection from <src> to <dst>, each AF_INET or
 * AF_INET6 (any other family: PT_EINVAL).
 *
 * Families. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack
 * socket reports for an IPv4 peer) is sent as IPv4, TCP4 / AF_INET: Apache
 * mod_remoteip refuses a dotted client address under TCP6, and other backends
 * would match ACLs and log against "::ffff:...". The header then takes the
 * family of <src>, because the client address is what backends consume, and
 * <dst> is converted to it, its port always kept:
 *   - src IPv6, dst IPv4: dst is sent as ::ffff:a.b.c.d (no loss);
 *   - src IPv4, dst a real IPv6: IPv4 has no form for it, so dst is sent as
 *     0.0.0.0, e.g. "PROXY TCP4 192.0.2.1 0.0.0.0 123 443".
 * The second case cannot come from one socket (both ends of a TCP connection
 * share a family); it arises when <src> comes from elsewhere, such as an
 * inbound PROXY header. HAProxy sends such a pair as TCP6 with src mapped,
 * which is what Apache refuses; "PROXY UNKNOWN" / v2 LOCAL would drop the
 * client address (and mod_remoteip refuses v2 LOCAL). So this function never
 * emits UNKNOWN or LOCAL.
 *
 * v2 uses command PROXY, TCP over INET/INET6 and, when <authority> is not
 * NULL and <alen> > 0, a PP2_TYPE_AUTHORITY TLV holding those bytes (the
 * client's SNI, borrowed for the call); <alen> over 255 or a NUL in it is
 * PT_EINVAL, never truncated or dropped, since a backend routing on it must
 * see what the client sent. v1 has no TLVs and ignores <authority> and
 * <alen> entirely. Writes into <out>, <size> bytes
 * (PT_PP_OUT_MAX always suffices). Returns the header length, or PT_EINVAL
 * (bad version, family or authority, or <size> too small; nothing written). */
int pt_proxyproto_encode(enum pt_pp_version v, const struct sockaddr *src,
                         const struct sockaddr *dst, const char *authority,
                         size_t alen, uint8_t *out, size_t size);

struct pt_proxyproto_info {
    enum pt_pp_version version;
    bool local;                  /* v1 UNKNOWN, v2 LOCAL, v2 PROXY over UNSPEC
                                    or UNIX: use the real endpoints */
    struct sockaddr_storage src; /* valid when !local */
    struct sockaddr_storage dst; /* valid when !local */
    const char *authority;       /* v2 AUTHORITY TLV, points into buf, or NULL */
    size_t authority_len;
};

/* Parses an inbound header at <buf>[0..len), auto-detecting v1 and v2 from
 * the first byte. <out> is written only when a header is returned; then
 * <out>->authority, if set, points into <buf> (borrowed, not NUL-terminated).
 * Returns:
 *   > 0            the exact header length; bytes after it are payload
 *   PT_ENEEDMORE   <buf> is a proper prefix of a header that can still be
 *                  valid: every byte present has been checked (v1: no CRLF
 *                  yet, the line so far fits the grammar and leaves room for
 *                  CRLF within 107 bytes; v2: fewer than 16 + len bytes)
 *   PT_EMALFORMED  anything else, as soon as the bytes present prove it:
 *                  no signature, bad version/command/family, v1 syntax
 *                  (single spaces, no leading zeros, ports 0..65535, address
 *                  family matching TCP4/TCP6, CRLF within 107 bytes, bare CR
 *                  or LF), v2 len > PT_PP_V2_MAX - 16 or shorter than the
 *                  PROXY family's address block (both known from the first 16
 *                  bytes), TLVs not tiling the block exactly, AUTHORITY empty,
 *                  over 255 bytes, holding a NUL or given twice, UNIQUE_ID
 *                  over 128 bytes, SSL sub-TLVs overrunning, CRC32C present
 *                  but wrong, datagram families under PROXY.
 * Sets <out>->local for v1 UNKNOWN (rest of the line ignored), v2 LOCAL (the
 * whole block skipped unread), and v2 PROXY over UNSPEC or UNIX (TLVs still
 * checked); src/dst are then zeroed (AF_UNSPEC). v1 TCP6 and v2 INET6 keep
 * IPv4-mapped addresses as AF_INET6. Never reads past <len>. */
int pt_proxyproto_parse(const uint8_t *buf, size_t len,
                        struct pt_proxyproto_info *out);

/* Whether the bytes a trusted front sent start a PROXY header at all: only
 * "PROXY " (v1) or the 12-byte v2 signature does. A front may also send no
 * header; then the bytes are the client's own (a TLS record, or an HTTP
 * request, including one starting "POST", "PUT" or "PATCH"). Returns 1 (a
 * header: parse it), 0 (no header), or PT_ENEEDMORE (<buf>[0..len) is a
 * proper prefix of a signature). */
int pt_proxyproto_detect(const uint8_t *buf, size_t len);

#endif
