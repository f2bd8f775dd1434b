/* TLS ClientHello peek: server name and ALPN list, without consuming anything.
 *
 * The passthrough relay buffers the first bytes of a connection and calls
 * pt_clienthello_parse on everything received so far; the same bytes are later
 * replayed to the backend untouched. The handshake message may span several
 * TLS records and many TCP segments; it is reassembled into caller memory.
 * Pure: no I/O, no allocation, no globals. */
#ifndef PT_CLIENTHELLO_H
#define PT_CLIENTHELLO_H

#include "common/pt.h"

#define PT_CLIENTHELLO_MAX 16384 /* bytes of records the caller may buffer */
#define PT_ALPN_MAX 16           /* protocols kept; more are counted only */

struct pt_clienthello {
    /* Server name (host_name type) as sent, not normalised, not NUL-terminated;
     * points into <scratch> passed to the parser. sni_len == 0: no SNI. */
    const char *sni;
    size_t sni_len;
    /* ALPN protocol names in client order, pointing into <scratch>. */
    size_t alpn_count;        /* how many were in the list (may exceed MAX) */
    const char *alpn[PT_ALPN_MAX];
    uint8_t alpn_len[PT_ALPN_MAX];
    uint16_t legacy_version;  /* client_version field, e.g. 0x0303 */
    bool has_supported_versions;
    size_t records_len;       /* bytes of the TLS records that carry the hello */
};

/* Parses the TLS records at <buf>[0..len) (record header included) as a
 * ClientHello. The handshake body is reassembled into <scratch> (at least
 * PT_CLIENTHELLO_MAX bytes), which <out>'s pointers then reference.
 * Returns:
 *   > 0            done: the number of bytes of records consumed (the whole
 *                  records that carry the ClientHello); *out filled
 *   PT_ENEEDMORE   not enough bytes yet (every proper prefix of a valid hello)
 *   PT_EMALFORMED  not a TLS handshake, not a ClientHello, or any length
 *                  inconsistent anywhere (record, handshake, vectors,
 *                  extensions, server_name list, ALPN list), an SNI of type
 *                  host_name that is empty, longer than 255 or contains a NUL
 *   PT_ETOOBIG     the hello needs more than PT_CLIENTHELLO_MAX bytes
 * Only the first server_name entry of type host_name is used.
 * Also PT_EMALFORMED: handshake bytes after the hello in its last record (the
 * client must wait for the server), and a repeated server_name, ALPN or
 * supported_versions extension (the backend might read the other copy).
 * PT_ETOOBIG comes as soon as the record lengths seen so far prove the hello
 * cannot fit, before PT_CLIENTHELLO_MAX bytes have arrived. Bytes after the
 * hello's records are never read. *out is written only when done. */
int pt_clienthello_parse(const uint8_t *buf, size_t len, uint8_t *scratch,
                         struct pt_clienthello *out);

/* Writes a fatal TLS alert record (level 2, <desc>) into <out> (7 bytes) with
 * record version <version> (0x0301 when 0). Returns 7. */
size_t pt_tls_alert(uint8_t out[7], uint16_t version, uint8_t desc);

#define PT_TLS_ALERT_HANDSHAKE_FAILURE 40
#define PT_TLS_ALERT_INTERNAL_ERROR 80
#define PT_TLS_ALERT_UNRECOGNIZED_NAME 112

#endif
