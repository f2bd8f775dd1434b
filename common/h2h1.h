/* HTTP/2 request header blocks to HTTP/1.1 request heads (RFC 9113 8.2,
 * 8.3): what the HTTP/2 front (worker/h2.c) sends to the backends, which
 * speak HTTP/1.1. The result is then parsed by common/http1.c like a head
 * from an HTTP/1.1 client, so both protocols pass the same checks.
 *
 * Refused here, whatever the HTTP/2 library already checked: pseudo-header
 * misuse (unknown, repeated, after a regular field, missing :method, :scheme
 * or :path, CONNECT), connection-specific fields (Connection, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade), TE other than "trailers",
 * field names with uppercase or non-token bytes, values with CR, LF or NUL
 * or surrounding whitespace, and a Host field that disagrees with
 * :authority. Pure: no I/O, no allocation beyond the output buffer. */
#ifndef PT_H2H1_H
#define PT_H2H1_H

#include "common/http1.h"

/* The fields of one header block as received, in order (pseudo-headers
 * first); at most PT_HTTP_HEADERS_MAX + 4. */
#define PT_H2H1_FIELDS_MAX (PT_HTTP_HEADERS_MAX + 4)

/* Appends to <out> the HTTP/1.1 head ("METHOD path HTTP/1.1", Host from
 * :authority, the fields, Cookie fields joined with "; ", and
 * "Transfer-Encoding: chunked" when <body> is true and no Content-Length
 * came, then the blank line). Returns 0, or PT_EMALFORMED with *why (static
 * text) set and <out> in an unspecified state. */
int pt_h2h1_request(const struct pt_http_hdr *f, size_t n, bool body, struct pt_wbuf *out,
                    const char **why);

/* One trailer field of an HTTP/2 request as an HTTP/1.1 trailer line
 * ("name: value\r\n") appended to <out>; returns 0, or PT_EMALFORMED for a
 * name or value refused as above, or a field that must not be a trailer
 * (pseudo-headers, framing and routing fields). */
int pt_h2h1_trailer(const struct pt_http_hdr *f, struct pt_wbuf *out);

#endif
