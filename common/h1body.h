/* HTTP/1.1 message bodies: where a body ends, decided byte by byte.
 *
 * A proxy that reads a body's end differently from the peer behind it lets
 * requests be smuggled (issue 10: Debian's lenient http-parser took any two
 * bytes for the CRLF after chunk data). This decoder follows RFC 9112 7.1
 * exactly and refuses the rest; it keeps its whole state in a plain struct,
 * so the caller never keeps bytes: DATA slices point into the caller's
 * buffer, TRAILER lines into the struct. Pure: no I/O, no allocation.
 *
 * Strictness, beyond the grammar where parsers are known to disagree:
 * - chunk-size is 1 to 16 HEXDIG, below 2^63; no "0x", sign or whitespace;
 * - chunk-ext is parsed (";" token ["=" token / quoted-string]) but without
 *   the BWS the grammar tolerates, and dropped; a chunk line (size and
 *   extensions) is at most PT_H1BODY_LINE_MAX bytes;
 * - CR and LF only as CRLF, after the chunk line, after chunk data, after
 *   each trailer field and at the end;
 * - trailer fields: token ":" OWS value OWS, no obs-fold, no CTL or NUL, at
 *   most PT_H1BODY_TRAILERS_MAX fields of PT_H1BODY_TRAILER_LINE_MAX bytes;
 *   fields that frame, route or describe the forwarding of a message
 *   (Content-Length, Transfer-Encoding, Host, Connection and the other
 *   hop-by-hop fields, X-Forwarded-*, X-Real-IP, Forwarded) are REFUSED
 *   (INVALID), not dropped: RFC 9110 6.5.1 forbids sending them there, and a
 *   peer that does is either broken or probing whether something behind us
 *   merges trailers into the header section. */
#ifndef PT_H1BODY_H
#define PT_H1BODY_H

#include "common/pt.h"
#include "common/wbuf.h"

#define PT_H1BODY_LINE_MAX 4096         /* chunk-size line with its extensions, CRLF included */
#define PT_H1BODY_TRAILER_LINE_MAX 1024 /* one trailer field, canonical "name: value" */
#define PT_H1BODY_TRAILERS_MAX 32       /* trailer fields per message */
#define PT_H1BODY_CHUNK_HEAD_MAX 20     /* "%x\r\n" for a 64-bit size, and a NUL */

enum pt_h1body_mode {
    PT_H1BODY_NONE = 0, /* no body: DONE at once */
    PT_H1BODY_LENGTH,   /* Content-Length bytes */
    PT_H1BODY_CHUNKED,  /* chunked transfer coding */
    PT_H1BODY_EOF,      /* a response without length: everything until the peer closes */
};

enum pt_h1body_ev {
    PT_H1BODY_NEED_MORE = 0, /* everything given was consumed; call again with more */
    PT_H1BODY_DATA,          /* payload bytes in *out, *out_len (de-chunked) */
    PT_H1BODY_TRAILER,       /* one trailer field line in *out, *out_len */
    PT_H1BODY_DONE,          /* the body is complete */
    PT_H1BODY_INVALID,       /* framing error: b->why; the connection cannot go on */
};

/* Where the decoder is; one value per grammar position (RFC 9112 7.1). */
enum pt_h1body_state {
    PT_H1B_START = 0,  /* before the first byte (LENGTH, NONE: nothing read yet) */
    PT_H1B_LENGTH,     /* LENGTH: b->left bytes still to come */
    PT_H1B_EOF,        /* EOF: everything is data */
    PT_H1B_SIZE,       /* chunk-size digits */
    PT_H1B_EXT_SEMI,   /* after ";": an extension name starts */
    PT_H1B_EXT_NAME,   /* in an extension name */
    PT_H1B_EXT_EQ,     /* after "=": a value starts */
    PT_H1B_EXT_TOKEN,  /* in a token value */
    PT_H1B_EXT_QUOTED, /* in a quoted-string value */
    PT_H1B_EXT_QPAIR,  /* after a backslash in a quoted-string */
    PT_H1B_EXT_AFTERQ, /* after the closing quote: ";" or CR */
    PT_H1B_SIZE_LF,    /* CR seen at the end of the chunk line */
    PT_H1B_DATA,       /* b->left bytes of chunk data still to come */
    PT_H1B_DATA_CR,    /* chunk data done: CR expected */
    PT_H1B_DATA_LF,    /* LF expected */
    PT_H1B_TRL_START,  /* a trailer line or the final CRLF starts */
    PT_H1B_TRL_NAME,   /* in a trailer field name */
    PT_H1B_TRL_OWS,    /* after ":", before the value */
    PT_H1B_TRL_VALUE,  /* in the value */
    PT_H1B_TRL_LF,     /* CR seen at the end of a trailer line */
    PT_H1B_END_LF,     /* CR of the final CRLF seen */
    PT_H1B_DONE,       /* complete: later steps answer DONE */
    PT_H1B_INVALID,    /* refused: later steps answer INVALID */
};

struct pt_h1body {
    enum pt_h1body_mode mode;
    enum pt_h1body_state st;
    uint64_t left;      /* LENGTH: bytes to come; CHUNKED: of the current chunk (or its size) */
    size_t line_len;    /* bytes of the current chunk line, for its bound */
    unsigned digits;    /* hex digits of the current chunk-size */
    size_t n_trailers;  /* trailer fields emitted so far */
    size_t trl_len;     /* bytes in trl[] */
    size_t trl_value;   /* where the value starts in trl[] (after "name: ") */
    size_t trl_sp;      /* trl_len before the value's trailing whitespace */
    bool trl_over;      /* value whitespace did not fit in trl[] */
    uint64_t total;     /* payload bytes emitted so far */
    const char *why;    /* on INVALID: static reason for logs */
    /* Owned, PT_H1BODY_TRAILER_LINE_MAX bytes: the trailer line being
     * assembled. Allocated when a trailer section starts and freed at DONE
     * or INVALID, so that the many bodies without trailers (every idle
     * keep-alive connection holds two decoders) carry no line buffer. */
    uint8_t *trl;
};

/* Byte classes for the checks below, one lookup per byte (head fields are
 * checked byte by byte on every request and response): bit 0 tchar, bit 1
 * field-value byte. */
extern const uint8_t pt_h1body_class[256];

/* RFC 9110 5.6.2 tchar: the bytes of a token (field names, methods, codings):
 * ALPHA, DIGIT and !#$%&'*+-.^_`|~. */
static inline bool pt_h1body_tchar(uint8_t c)
{
    return pt_h1body_class[c] & 1;
}

/* RFC 9110 5.5: a byte of a field value (VCHAR, SP, HTAB, obs-text); CR, LF,
 * NUL and the other controls are not. */
static inline bool pt_h1body_vchar(uint8_t c)
{
    return pt_h1body_class[c] & 2;
}

/* Starts decoding a body of <mode>; <content_length> counts for LENGTH only.
 * <b> may be uninitialised: a decoder that was not driven to DONE or INVALID
 * must be given to pt_h1body_release first. */
void pt_h1body_init(struct pt_h1body *b, enum pt_h1body_mode mode, uint64_t content_length);

/* Frees what an abandoned decoder holds (a partial trailer line); <b> is
 * then as after pt_h1body_init and may be dropped or initialised again. */
void pt_h1body_release(struct pt_h1body *b);

/* Consumes a prefix of <buf>[0..len); *used is always set to the bytes
 * consumed. Call again after DATA and TRAILER (with what is left, even
 * nothing) until NEED_MORE, DONE or INVALID.
 *   DATA: *out, *out_len = payload bytes, pointing into <buf> (borrowed).
 *   TRAILER: *out, *out_len = one validated trailer field, canonical
 *     "Name: value" without CRLF, pointing into <b> (valid until the next step).
 *   DONE: *used ends right after the body's last byte; what follows is the
 *     next message. Later calls answer DONE with *used = 0.
 *   NEED_MORE: everything given was consumed (the state is kept in <b>).
 *   INVALID: framing error, b->why says which; later calls answer INVALID.
 * The events and payload do not depend on how the input is split. */
enum pt_h1body_ev pt_h1body_step(struct pt_h1body *b, const uint8_t *buf, size_t len,
                                 size_t *used, const uint8_t **out, size_t *out_len);

/* Is the peer closing now a clean end of the body? True in EOF mode and
 * once DONE; a LENGTH or CHUNKED body cut short is a truncated message. */
bool pt_h1body_ends_at_eof(const struct pt_h1body *b);

/* Canonical chunked encoding, for the proxy re-framing a body it decoded. */

/* Writes the chunk head "%x\r\n" for <n> bytes into <out>; returns its length. */
size_t pt_h1body_chunk_head(char out[PT_H1BODY_CHUNK_HEAD_MAX], uint64_t n);

/* Appends one chunk (head, <data>, CRLF); nothing when <n> is 0, since a
 * zero-size chunk is the last one. */
void pt_h1body_write_chunk(struct pt_wbuf *out, const uint8_t *data, size_t n);

/* Appends a trailer field line (as TRAILER gave it) and CRLF, preceded by
 * the last chunk "0\r\n" when <first>. */
void pt_h1body_write_trailer(struct pt_wbuf *out, const uint8_t *line, size_t n, bool first);

/* Appends the end of a chunked body: the last chunk and the final CRLF, or
 * only the final CRLF when trailers were written (<had_trailers>). */
void pt_h1body_write_last(struct pt_wbuf *out, bool had_trailers);

#endif
