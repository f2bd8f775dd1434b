#include "common/h1body.h"

#include <stddef.h>
#include <strings.h>

const uint8_t pt_h1body_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 3, 2, 3, 3, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 2,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2,
    2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 3, 2, 3, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

void pt_h1body_init(struct pt_h1body *b, enum pt_h1body_mode mode, uint64_t content_length)
{
    memset(b, 0, sizeof(*b));
    b->mode = mode;
    switch (mode) {
    case PT_H1BODY_NONE:
        b->st = PT_H1B_DONE;
        break;
    case PT_H1BODY_LENGTH:
        b->left = content_length;
        b->st = content_length ? PT_H1B_LENGTH : PT_H1B_DONE;
        break;
    case PT_H1BODY_CHUNKED:
        b->st = PT_H1B_SIZE;
        break;
    case PT_H1BODY_EOF:
        b->st = PT_H1B_EOF;
        break;
    default:
        b->st = PT_H1B_INVALID;
        b->why = "unknown body mode";
        break;
    }
}

void pt_h1body_release(struct pt_h1body *b)
{
    PT_FREE(b->trl);
}

bool pt_h1body_ends_at_eof(const struct pt_h1body *b)
{
    return b->st == PT_H1B_EOF || b->st == PT_H1B_DONE;
}

/* RFC 9110 5.6.4 qdtext, and what may follow a backslash. */
static bool qdtext(uint8_t c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

static bool qpair(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Fields that may not come in a trailer section (see h1body.h). */
static bool forbidden_trailer(const uint8_t *name, size_t n)
{
    static const char *const no[] = {
        "content-length", "transfer-encoding", "host",    "connection",
        "keep-alive",     "proxy-connection",  "te",      "trailer",
        "upgrade",        "x-forwarded-for",   "x-real-ip", "x-forwarded-proto",
        "x-forwarded-host", "forwarded"};
    for (size_t i = 0; i < PT_ARRAY_LEN(no); i++)
        if (strlen(no[i]) == n && strncasecmp((const char *)name, no[i], n) == 0)
            return true;
    return false;
}

static bool trl_put(struct pt_h1body *b, uint8_t c)
{
    if (b->trl_len == PT_H1BODY_TRAILER_LINE_MAX)
        return false;
    b->trl[b->trl_len++] = c;
    return true;
}

/* Is <c> the end of an element of the chunk line: the next extension or the CR? */
static enum pt_h1body_state ext_next(uint8_t c)
{
    if (c == ';')
        return PT_H1B_EXT_SEMI;
    if (c == '\r')
        return PT_H1B_SIZE_LF;
    return PT_H1B_INVALID;
}

/* Advances the chunked grammar by one byte. Returns the new state; on
 * PT_H1B_INVALID, *why says why. */
static enum pt_h1body_state chunked_byte(struct pt_h1body *b, uint8_t c, const char **why)
{
    enum pt_h1body_state st = b->st;
    if (st >= PT_H1B_SIZE && st <= PT_H1B_SIZE_LF && ++b->line_len > PT_H1BODY_LINE_MAX) {
        *why = "chunk line too long";
        return PT_H1B_INVALID;
    }
    switch (st) {
    case PT_H1B_SIZE: {
        int h = pt_hexval(c);
        if (h >= 0) {
            /* left < 2^63 here; left >= 2^59 would pass 2^63 times 16. */
            if (b->digits == 16 || (b->left >> 59) != 0) {
                *why = b->digits == 16 ? "chunk size of more than 16 digits"
                                       : "chunk size past 2^63";
                return PT_H1B_INVALID;
            }
            b->left = b->left * 16 + (uint64_t)h;
            b->digits++;
            return st;
        }
        if (b->digits == 0) {
            *why = "chunk size expected";
            return PT_H1B_INVALID;
        }
        *why = "invalid byte after the chunk size";
        return ext_next(c);
    }
    case PT_H1B_EXT_SEMI:
        *why = "invalid chunk extension name";
        return pt_h1body_tchar(c) ? PT_H1B_EXT_NAME : PT_H1B_INVALID;
    case PT_H1B_EXT_NAME:
        if (pt_h1body_tchar(c))
            return st;
        *why = "invalid byte in a chunk extension";
        return c == '=' ? PT_H1B_EXT_EQ : ext_next(c);
    case PT_H1B_EXT_EQ:
        *why = "invalid chunk extension value";
        if (c == '"')
            return PT_H1B_EXT_QUOTED;
        return pt_h1body_tchar(c) ? PT_H1B_EXT_TOKEN : PT_H1B_INVALID;
    case PT_H1B_EXT_TOKEN:
        if (pt_h1body_tchar(c))
            return st;
        *why = "invalid byte in a chunk extension value";
        return ext_next(c);
    case PT_H1B_EXT_QUOTED:
        if (c == '"')
            return PT_H1B_EXT_AFTERQ;
        if (c == '\\')
            return PT_H1B_EXT_QPAIR;
        *why = "invalid byte in a quoted chunk extension";
        return qdtext(c) ? st : PT_H1B_INVALID;
    case PT_H1B_EXT_QPAIR:
        *why = "invalid quoted-pair in a chunk extension";
        return qpair(c) ? PT_H1B_EXT_QUOTED : PT_H1B_INVALID;
    case PT_H1B_EXT_AFTERQ:
        *why = "invalid byte after a quoted chunk extension";
        return ext_next(c);
    case PT_H1B_SIZE_LF:
        if (c != '\n') {
            *why = "bare CR in the chunk line";
            return PT_H1B_INVALID;
        }
        return b->left ? PT_H1B_DATA : PT_H1B_TRL_START;
    case PT_H1B_DATA_CR:
        *why = "chunk data not followed by CRLF";
        return c == '\r' ? PT_H1B_DATA_LF : PT_H1B_INVALID;
    case PT_H1B_DATA_LF:
        *why = "chunk data not followed by CRLF";
        if (c != '\n')
            return PT_H1B_INVALID;
        b->line_len = 0;
        b->digits = 0;
        b->left = 0;
        return PT_H1B_SIZE;
    case PT_H1B_TRL_START:
        if (c == '\r')
            return PT_H1B_END_LF;
        if (!pt_h1body_tchar(c)) {
            *why = c == ' ' || c == '\t' ? "obs-fold or whitespace in the trailer section"
                                         : "invalid trailer field";
            return PT_H1B_INVALID;
        }
        if (b->n_trailers == PT_H1BODY_TRAILERS_MAX) {
            *why = "too many trailer fields";
            return PT_H1B_INVALID;
        }
        if (!b->trl)
            b->trl = pt_xmalloc(PT_H1BODY_TRAILER_LINE_MAX);
        b->trl_len = 0;
        b->trl_over = false;
        trl_put(b, c);
        return PT_H1B_TRL_NAME;
    case PT_H1B_TRL_NAME:
        if (pt_h1body_tchar(c)) {
            *why = "trailer field too long";
            return trl_put(b, c) ? st : PT_H1B_INVALID;
        }
        if (c != ':') {
            *why = "invalid trailer field name";
            return PT_H1B_INVALID;
        }
        if (forbidden_trailer(b->trl, b->trl_len)) {
            *why = "framing, routing or forwarding field in the trailer section";
            return PT_H1B_INVALID;
        }
        *why = "trailer field too long";
        if (!trl_put(b, ':'))
            return PT_H1B_INVALID;
        b->trl_value = b->trl_sp = b->trl_len;
        return PT_H1B_TRL_OWS;
    case PT_H1B_TRL_OWS:
    case PT_H1B_TRL_VALUE:
        if (c == '\r') {
            b->trl_len = b->trl_sp; /* trailing OWS is not part of the value */
            return PT_H1B_TRL_LF;
        }
        if (!pt_h1body_vchar(c)) {
            *why = "control byte in a trailer field";
            return PT_H1B_INVALID;
        }
        *why = "trailer field too long";
        if (c == ' ' || c == '\t') {
            /* Whitespace that does not fit may still be trailing OWS: only
             * a value byte after it makes the line too long. */
            if (st == PT_H1B_TRL_OWS || !trl_put(b, c))
                b->trl_over |= st == PT_H1B_TRL_VALUE;
            return st;
        }
        if (b->trl_over || (st == PT_H1B_TRL_OWS && !trl_put(b, ' ')) || !trl_put(b, c))
            return PT_H1B_INVALID;
        b->trl_sp = b->trl_len;
        return PT_H1B_TRL_VALUE;
    case PT_H1B_TRL_LF:
        *why = "bare CR in the trailer section";
        return c == '\n' ? PT_H1B_TRL_START : PT_H1B_INVALID;
    case PT_H1B_END_LF:
        *why = "bare CR at the end of the chunked body";
        return c == '\n' ? PT_H1B_DONE : PT_H1B_INVALID;
    default:
        *why = "decoder state out of range";
        return PT_H1B_INVALID;
    }
}

enum pt_h1body_ev pt_h1body_step(struct pt_h1body *b, const uint8_t *buf, size_t len,
                                 size_t *used, const uint8_t **out, size_t *out_len)
{
    size_t i = 0;
    *out = NULL;
    *out_len = 0;
    for (;;) {
        switch (b->st) {
        case PT_H1B_DONE:
            *used = i;
            return PT_H1BODY_DONE;
        case PT_H1B_INVALID:
            *used = i;
            return PT_H1BODY_INVALID;
        case PT_H1B_LENGTH:
        case PT_H1B_DATA:
        case PT_H1B_EOF: {
            if (i == len) {
                *used = len;
                return PT_H1BODY_NEED_MORE;
            }
            size_t n = len - i;
            if (b->st != PT_H1B_EOF) {
                if (n > b->left)
                    n = (size_t)b->left;
                b->left -= n;
                if (b->left == 0)
                    b->st = b->st == PT_H1B_LENGTH ? PT_H1B_DONE : PT_H1B_DATA_CR;
            }
            b->total += n;
            *out = buf + i;
            *out_len = n;
            *used = i + n;
            return PT_H1BODY_DATA;
        }
        default:
            break;
        }
        if (i == len) {
            *used = len;
            return PT_H1BODY_NEED_MORE;
        }
        enum pt_h1body_state prev = b->st;
        const char *why = NULL;
        b->st = chunked_byte(b, buf[i++], &why);
        if (b->st == PT_H1B_INVALID || b->st == PT_H1B_DONE)
            PT_FREE(b->trl); /* a TRAILER's line was taken at the step before */
        if (b->st == PT_H1B_INVALID)
            b->why = why;
        else if (prev == PT_H1B_TRL_LF) {
            b->n_trailers++;
            *out = b->trl;
            *out_len = b->trl_len;
            *used = i;
            return PT_H1BODY_TRAILER;
        }
    }
}

size_t pt_h1body_chunk_head(char out[PT_H1BODY_CHUNK_HEAD_MAX], uint64_t n)
{
    int k = snprintf(out, PT_H1BODY_CHUNK_HEAD_MAX, "%llx\r\n", (unsigned long long)n);
    return (size_t)k; /* at most 16 digits + CRLF: always fits */
}

void pt_h1body_write_chunk(struct pt_wbuf *out, const uint8_t *data, size_t n)
{
    if (n == 0)
        return;
    char head[PT_H1BODY_CHUNK_HEAD_MAX];
    pt_wbuf_put(out, head, pt_h1body_chunk_head(head, n));
    pt_wbuf_put(out, data, n);
    pt_wbuf_put(out, "\r\n", 2);
}

void pt_h1body_write_trailer(struct pt_wbuf *out, const uint8_t *line, size_t n, bool first)
{
    if (first)
        pt_wbuf_put(out, "0\r\n", 3);
    pt_wbuf_put(out, line, n);
    pt_wbuf_put(out, "\r\n", 2);
}

void pt_h1body_write_last(struct pt_wbuf *out, bool had_trailers)
{
    if (had_trailers)
        pt_wbuf_put(out, "\r\n", 2);
    else
        pt_wbuf_put(out, "0\r\n\r\n", 5);
}
