/* Unit tests for common/h1body.c.
 *
 * Each row is decoded whole, byte by byte and cut in two at every point; each
 * piece sits at the end of a page followed by a PROT_NONE page (guard.h), so a
 * read past a piece crashes. The payload, the trailer lines, the final event,
 * where the body ended and the reason of a refusal must be the same for every
 * split, and equal to the row's. The invalid rows are the chunked shapes of
 * issue 10 (item 1) and the smuggling literature; each says what a lenient
 * parser does with it. */
#include "common/h1body.h"

#include "tests/unit/esc.h"
#include "tests/unit/guard.h"

#include <criterion/criterion.h>

#define LIT(s) (s), (sizeof(s) - 1)

enum { NEED = PT_H1BODY_NEED_MORE, DONE = PT_H1BODY_DONE, BAD = PT_H1BODY_INVALID };

struct result {
    uint8_t data[16384];
    size_t data_len;
    char trl[8192]; /* trailer lines, each followed by '|' */
    size_t trl_len;
    int end;         /* NEED, DONE or BAD */
    size_t consumed; /* DONE and BAD: offset in the input after the last byte taken */
    const char *why;
};

/* Decodes <in>[0..len) given in pieces that end at <cuts> (increasing, the
 * last one == len). */
static void run(const uint8_t *in, size_t len, enum pt_h1body_mode mode, uint64_t cl,
                const size_t *cuts, size_t n_cuts, struct result *r)
{
    struct pt_h1body b;
    cr_assert(n_cuts > 0 && cuts[n_cuts - 1] == len);
    memset(r, 0, sizeof(*r));
    memset(&b, 0x5a, sizeof(b)); /* init must not rely on a cleared struct */
    pt_h1body_init(&b, mode, cl);
    r->end = NEED;
    size_t pos = 0;
    for (size_t k = 0; k < n_cuts; k++) {
        size_t plen = cuts[k] - pos;
        struct pt_guard g;
        const uint8_t *p = pt_guard_copy(&g, in + pos, plen);
        size_t off = 0;
        for (;;) {
            size_t used = 12345;
            const uint8_t *o = (const uint8_t *)"junk";
            size_t olen = 999;
            enum pt_h1body_ev ev = pt_h1body_step(&b, p + off, plen - off, &used, &o, &olen);
            cr_assert_leq(used, plen - off);
            if (ev == PT_H1BODY_DATA) {
                cr_assert(olen > 0 && o >= p + off && o + olen <= p + off + used,
                          "DATA outside what was consumed");
                cr_assert_leq(r->data_len + olen, sizeof(r->data));
                memcpy(r->data + r->data_len, o, olen);
                r->data_len += olen;
            } else if (ev == PT_H1BODY_TRAILER) {
                cr_assert(olen > 0 && olen <= PT_H1BODY_TRAILER_LINE_MAX);
                cr_assert(b.trl != NULL && o >= b.trl &&
                          o + olen <= b.trl + PT_H1BODY_TRAILER_LINE_MAX);
                cr_assert_leq(r->trl_len + olen + 1, sizeof(r->trl));
                memcpy(r->trl + r->trl_len, o, olen);
                r->trl_len += olen;
                r->trl[r->trl_len++] = '|';
            } else {
                cr_assert(o == NULL && olen == 0, "out set with event %d", ev);
            }
            off += used;
            if (ev == PT_H1BODY_NEED_MORE) {
                cr_assert_eq(off, plen, "NEED_MORE left bytes");
                break;
            }
            if (ev == PT_H1BODY_DONE || ev == PT_H1BODY_INVALID) {
                r->end = ev == PT_H1BODY_DONE ? DONE : BAD;
                r->consumed = pos + off;
                r->why = b.why;
                if (ev == PT_H1BODY_INVALID)
                    cr_assert(b.why != NULL && b.why[0] != '\0');
                /* The answer stays, and consumes nothing more. */
                size_t u = 7;
                cr_assert_eq(pt_h1body_step(&b, p + off, plen - off, &u, &o, &olen), ev);
                cr_assert_eq(u, 0);
                cr_assert(b.trl == NULL, "the trailer line buffer outlives the body");
                pt_guard_release(&g);
                return;
            }
        }
        pt_guard_release(&g);
        pos = cuts[k];
    }
    pt_h1body_release(&b); /* cut short, maybe in a trailer line */
    cr_assert(b.trl == NULL);
}

static void result_eq(const struct result *a, const struct result *w, const char *what,
                      const uint8_t *in, size_t len)
{
    cr_assert_eq(a->end, w->end, "%s: end %d vs %d (%s) for %s", what, a->end, w->end,
                 a->why ? a->why : "", esc(in, len));
    cr_assert_eq(a->data_len, w->data_len, "%s: %zu payload bytes vs %zu", what, a->data_len,
                 w->data_len);
    cr_assert(memcmp(a->data, w->data, a->data_len) == 0, "%s: payload differs", what);
    cr_assert(a->trl_len == w->trl_len && memcmp(a->trl, w->trl, a->trl_len) == 0,
              "%s: trailers differ", what);
    if (a->end != NEED)
        cr_assert_eq(a->consumed, w->consumed, "%s: consumed %zu vs %zu", what, a->consumed,
                     w->consumed);
    if (a->end == BAD)
        cr_assert_str_eq(a->why, w->why, "%s", what);
}

/* Decodes <in> whole, byte by byte and at every split point; all must agree.
 * Returns the whole decode in <r>. */
static void decode_all_splits(const void *vin, size_t len, enum pt_h1body_mode mode,
                              uint64_t cl, struct result *r)
{
    const uint8_t *in = vin;
    size_t whole = len;
    run(in, len, mode, cl, &whole, 1, r);
    struct result *x = malloc(sizeof(*x));
    cr_assert_not_null(x);
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    cr_assert_not_null(cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    if (len) {
        run(in, len, mode, cl, cuts, len, x);
        result_eq(x, r, "byte by byte", in, len);
    }
    for (size_t k = 1; k < len; k++) {
        size_t two[2] = {k, len};
        run(in, len, mode, cl, two, 2, x);
        char what[64];
        snprintf(what, sizeof(what), "split at %zu", k);
        result_eq(x, r, what, in, len);
    }
    free(cuts);
    free(x);
}

struct row {
    const char *what;
    const char *in;
    size_t len;
    int end;
    const char *data;     /* payload; NULL: "" */
    const char *trailers; /* "a: b|c: d|"; NULL: "" */
    size_t rest;          /* DONE: bytes left after the body */
};
#define OK(what, lit, data, trl, rest) {what, lit, sizeof(lit) - 1, DONE, data, trl, rest}
#define MORE(what, lit, data) {what, lit, sizeof(lit) - 1, NEED, data, NULL, 0}
#define NO(what, lit) {what, lit, sizeof(lit) - 1, BAD, NULL, NULL, 0}

static void check_rows(const struct row *rows, size_t n, enum pt_h1body_mode mode, uint64_t cl)
{
    for (size_t i = 0; i < n; i++) {
        const struct row *w = &rows[i];
        struct result *r = malloc(sizeof(*r));
        cr_assert_not_null(r);
        decode_all_splits(w->in, w->len, mode, cl, r);
        const char *data = w->data ? w->data : "";
        const char *trl = w->trailers ? w->trailers : "";
        cr_expect_eq(r->end, w->end, "%s: end %d (%s), want %d: %s", w->what, r->end,
                     r->why ? r->why : "", w->end, esc(w->in, w->len));
        if (w->end != BAD) {
            cr_expect(r->data_len == strlen(data) && memcmp(r->data, data, r->data_len) == 0,
                      "%s: payload '%s', want '%s'", w->what, esc(r->data, r->data_len),
                      esc(data, strlen(data)));
            cr_expect(r->trl_len == strlen(trl) && memcmp(r->trl, trl, r->trl_len) == 0,
                      "%s: trailers '%s', want '%s'", w->what, esc(r->trl, r->trl_len), trl);
        }
        if (w->end == DONE)
            cr_expect_eq(w->len - r->consumed, w->rest, "%s: %zu bytes left, want %zu",
                         w->what, w->len - r->consumed, w->rest);
        free(r);
    }
}

/* ---- chunked: valid --------------------------------------------------------- */

Test(h1body, chunked_valid)
{
    static const struct row rows[] = {
        OK("one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", NULL, 0),
        OK("two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", NULL, 0),
        OK("empty body", "0\r\n\r\n", "", NULL, 0),
        OK("next message follows", "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "abc", NULL, 16),
        OK("hex lower and upper", "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n",
           "0123456789abcdefghijk", NULL, 0),
        OK("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", NULL, 0),
        OK("16 digits", "0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n", "hello", NULL,
           0),
        OK("extension name", "5;a\r\nhello\r\n0\r\n\r\n", "hello", NULL, 0),
        OK("extension token", "5;a=b\r\nhello\r\n0;z=1\r\n\r\n", "hello", NULL, 0),
        OK("several extensions", "5;a=b;c;d=e\r\nhello\r\n0\r\n\r\n", "hello", NULL, 0),
        OK("quoted extension", "5;a=\"x y;\\\"z\\\\\"\r\nhello\r\n0\r\n\r\n", "hello", NULL, 0),
        OK("quoted then more", "5;a=\"\";b=c\r\nhello\r\n0\r\n\r\n", "hello", NULL, 0),
        OK("data with CR LF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n", NULL, 0),
        OK("data looking like a chunk", "5\r\n0\r\n\r\n\r\n0\r\n\r\n", "0\r\n\r\n", NULL, 0),
        OK("trailer", "0\r\nX-Sum: 1\r\n\r\n", "", "X-Sum: 1|", 0),
        OK("trailers canonical", "1\r\na\r\n0\r\nX-A:b\r\nX-B: \t v  w \t\r\nX-E:\r\n"
                                 "X-F:   \r\n\r\nrest",
           "a", "X-A: b|X-B: v  w|X-E:|X-F:|", 4),
        OK("trailer obs-text", "0\r\nX: caf\xc3\xa9\r\n\r\n", "", "X: caf\xc3\xa9|", 0),
    };
    check_rows(rows, PT_ARRAY_LEN(rows), PT_H1BODY_CHUNKED, 0);
}

Test(h1body, chunked_incomplete)
{
    static const struct row rows[] = {
        MORE("nothing", "", ""),
        MORE("size only", "5", ""),
        MORE("size CR", "5\r", ""),
        MORE("part of the data", "5\r\nhel", "hel"),
        MORE("data, no CRLF", "5\r\nhello", "hello"),
        MORE("data, CR", "5\r\nhello\r", "hello"),
        MORE("no last chunk", "5\r\nhello\r\n", "hello"),
        MORE("last chunk, no end", "0\r\n", ""),
        MORE("last chunk, CR", "0\r\n\r", ""),
        {"trailer, no end", LIT("0\r\nX: y\r\n"), NEED, "", "X: y|", 0},
        MORE("in a quoted extension", "5;a=\"x", ""),
        MORE("largest size", "7fffffffffffffff\r\nab", "ab"),
    };
    check_rows(rows, PT_ARRAY_LEN(rows), PT_H1BODY_CHUNKED, 0);
}

/* ---- chunked: refused --------------------------------------------------------- */

Test(h1body, chunked_refused_sizes)
{
    static const struct row rows[] = {
        /* Issue 10: http-parser took "\nF" for the CRLF and "0" for the last chunk;
         * nginx read a chunk of 0xF0 bytes. */
        NO("bare LF after chunk data (issue 10)", "1\r\nA\nF0\r\n\r\n"),
        NO("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
        NO("0X prefix", "0X5\r\nhello\r\n0\r\n\r\n"),
        NO("bare LF after size", "5\nhello\r\n0\r\n\r\n"),
        NO("bare CR after size", "5\rhello\r\n0\r\n\r\n"),
        NO("CR CR LF after size", "5\r\r\nhello\r\n0\r\n\r\n"),
        NO("17 digits", "00000000000000005\r\nhello\r\n0\r\n\r\n"),
        NO("2^63", "8000000000000000\r\n"),
        NO("past 64 bits", "10000000000000000\r\n"),
        NO("2^64 - 1", "ffffffffffffffff\r\n"),
        NO("far past 64 bits", "fffffffffffffffffffffffff0\r\n"),
        NO("negative", "-5\r\nhello\r\n0\r\n\r\n"),
        NO("plus sign", "+5\r\nhello\r\n0\r\n\r\n"),
        NO("leading space", " 5\r\nhello\r\n0\r\n\r\n"),
        NO("leading tab", "\t5\r\nhello\r\n0\r\n\r\n"),
        NO("trailing space", "5 \r\nhello\r\n0\r\n\r\n"),
        NO("trailing tab", "5\t\r\nhello\r\n0\r\n\r\n"),
        NO("space before ;", "5 ;a=b\r\nhello\r\n0\r\n\r\n"),
        NO("empty size", "\r\nhello\r\n0\r\n\r\n"),
        NO("no size before ;", ";a\r\nhello\r\n0\r\n\r\n"),
        NO("non-hex", "g\r\n"),
        NO("hex then junk", "5g\r\nhello\r\n0\r\n\r\n"),
        NO("decimal point", "5.0\r\nhello\r\n0\r\n\r\n"),
        NO("NUL in size", "5\0\r\nhello\r\n0\r\n\r\n"),
        NO("NUL before size", "\0" "5\r\nhello\r\n0\r\n\r\n"),
        NO("size is a word", "chunked\r\n"),
        NO("last chunk with sign", "-0\r\n\r\n"),
        NO("bare LF after last chunk", "0\n\r\n"),
        NO("bare LF ends the body", "0\r\n\n"),
        NO("CR CR LF ends the body", "0\r\n\r\r\n"),
        NO("CR then junk ends the body", "0\r\n\rX"),
    };
    check_rows(rows, PT_ARRAY_LEN(rows), PT_H1BODY_CHUNKED, 0);
}

Test(h1body, chunked_refused_data_crlf)
{
    static const struct row rows[] = {
        NO("data longer than size", "5\r\nhelloX\r\n0\r\n\r\n"),
        NO("data shorter than size", "5\r\nhell\r\n0\r\n\r\n"),
        NO("CR only after data", "5\r\nhello\r0\r\n\r\n"),
        NO("LF only after data", "5\r\nhello\n0\r\n\r\n"),
        NO("LF CR after data", "5\r\nhello\n\r0\r\n\r\n"),
        NO("any two bytes after data", "5\r\nhelloXY0\r\n\r\n"),
        NO("CR junk after data", "5\r\nhello\rX0\r\n\r\n"),
        NO("nothing after data then size", "2\r\nab2\r\ncd\r\n0\r\n\r\n"),
    };
    check_rows(rows, PT_ARRAY_LEN(rows), PT_H1BODY_CHUNKED, 0);
}

Test(h1body, chunked_refused_extensions)
{
    static const struct row rows[] = {
        NO("empty extension name", "5;\r\nhello\r\n0\r\n\r\n"),
        NO("space after ;", "5; a=b\r\nhello\r\n0\r\n\r\n"),
        NO("space before =", "5;a =b\r\nhello\r\n0\r\n\r\n"),
        NO("space after =", "5;a= b\r\nhello\r\n0\r\n\r\n"),
        NO("empty value", "5;a=\r\nhello\r\n0\r\n\r\n"),
        NO("two =", "5;a==b\r\nhello\r\n0\r\n\r\n"),
        NO("bare LF in extension", "5;a=b\nhello\r\n0\r\n\r\n"),
        NO("bare CR in extension", "5;a\rb\r\nhello\r\n0\r\n\r\n"),
        NO("CR in quoted value", "5;a=\"x\r\nhello\"\r\nhello\r\n0\r\n\r\n"),
        NO("LF in quoted value", "5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n"),
        NO("NUL in quoted value", "5;a=\"x\0y\"\r\nhello\r\n0\r\n\r\n"),
        NO("DEL in quoted value", "5;a=\"x\x7fy\"\r\nhello\r\n0\r\n\r\n"),
        NO("escaped CR in quoted value", "5;a=\"x\\\ry\"\r\nhello\r\n0\r\n\r\n"),
        NO("junk after quoted value", "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n"),
        NO("non-token name", "5;a@b=c\r\nhello\r\n0\r\n\r\n"),
        NO("non-token value", "5;a=b@c\r\nhello\r\n0\r\n\r\n"),
        NO("comma", "5,a\r\nhello\r\n0\r\n\r\n"),
        NO("NUL in extension", "5;a\0\r\nhello\r\n0\r\n\r\n"),
    };
    check_rows(rows, PT_ARRAY_LEN(rows), PT_H1BODY_CHUNKED, 0);
}

Test(h1body, chunked_refused_trailers)
{
    static const struct row rows[] = {
        NO("bare LF ends a trailer", "0\r\nX: a\nY: b\r\n\r\n"),
        NO("bare CR in a trailer", "0\r\nX: a\rY: b\r\n\r\n"),
        NO("space before colon", "0\r\nX : a\r\n\r\n"),
        NO("tab before colon", "0\r\nX\t: a\r\n\r\n"),
        NO("whitespace opens the section", "0\r\n X: a\r\n\r\n"),
        NO("obs-fold", "0\r\nX: a\r\n b\r\n\r\n"),
        NO("obs-fold tab", "0\r\nX: a\r\n\tb\r\n\r\n"),
        NO("no colon", "0\r\nX\r\n\r\n"),
        NO("empty name", "0\r\n: a\r\n\r\n"),
        NO("non-token name", "0\r\nX@Y: a\r\n\r\n"),
        NO("NUL in value", "0\r\nX: a\0b\r\n\r\n"),
        NO("CTL in value", "0\r\nX: \x01\r\n\r\n"),
        NO("DEL in value", "0\r\nX: a\x7f\r\n\r\n"),
        NO("Content-Length", "0\r\nContent-Length: 5\r\n\r\n"),
        NO("Transfer-Encoding", "0\r\ntransfer-encoding: chunked\r\n\r\n"),
        NO("Host", "0\r\nHost: other.test\r\n\r\n"),
        NO("Connection", "0\r\nConnection: close\r\n\r\n"),
        NO("Trailer", "0\r\nTrailer: X\r\n\r\n"),
        NO("X-Forwarded-For", "0\r\nX-Forwarded-For: 127.0.0.9\r\n\r\n"),
        NO("X-Real-IP", "0\r\nX-Real-IP: 127.0.0.9\r\n\r\n"),
        NO("Forwarded", "0\r\nFORWARDED: for=127.0.0.9\r\n\r\n"),
        NO("a request in the trailer section", "0\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    };
    check_rows(rows, PT_ARRAY_LEN(rows), PT_H1BODY_CHUNKED, 0);
}

Test(h1body, chunk_line_bound)
{
    /* A chunk line of exactly PT_H1BODY_LINE_MAX bytes passes; one more is refused. */
    size_t n = PT_H1BODY_LINE_MAX + 64;
    char *s = malloc(n);
    cr_assert_not_null(s);
    for (int extra = 0; extra < 2; extra++) {
        size_t line = PT_H1BODY_LINE_MAX + (size_t)extra;
        memcpy(s, "1;a=", 4);
        memset(s + 4, 'v', line - 6);
        memcpy(s + line - 2, "\r\nx\r\n0\r\n\r\n", 10);
        struct result *r = malloc(sizeof(*r));
        cr_assert_not_null(r);
        size_t whole = line + 8;
        run((const uint8_t *)s, whole, PT_H1BODY_CHUNKED, 0, &whole, 1, r);
        if (extra == 0) {
            cr_expect_eq(r->end, DONE, "%s", r->why ? r->why : "");
            cr_expect(r->data_len == 1 && r->data[0] == 'x');
        } else {
            cr_expect_eq(r->end, BAD);
            cr_expect_str_eq(r->why, "chunk line too long");
            /* Refused as soon as the bound is passed, before the line ends. */
            cr_expect_eq(r->consumed, PT_H1BODY_LINE_MAX + 1);
        }
        free(r);
    }
    /* A huge extension, at every split: refused the same way. */
    char *big = malloc(3 * PT_H1BODY_LINE_MAX);
    cr_assert_not_null(big);
    memset(big, 'e', 3 * PT_H1BODY_LINE_MAX);
    memcpy(big, "5;x=", 4);
    struct result *r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    decode_all_splits(big, PT_H1BODY_LINE_MAX + 100, PT_H1BODY_CHUNKED, 0, r);
    cr_expect_eq(r->end, BAD);
    free(r);
    free(big);
    free(s);
}

Test(h1body, trailer_bounds)
{
    /* PT_H1BODY_TRAILERS_MAX fields pass, one more is refused. */
    for (int extra = 0; extra < 2; extra++) {
        char s[2048];
        size_t n = (size_t)snprintf(s, sizeof(s), "0\r\n");
        for (int i = 0; i < PT_H1BODY_TRAILERS_MAX + extra; i++)
            n += (size_t)snprintf(s + n, sizeof(s) - n, "X-%d: %d\r\n", i, i);
        n += (size_t)snprintf(s + n, sizeof(s) - n, "\r\n");
        struct result *r = malloc(sizeof(*r));
        cr_assert_not_null(r);
        decode_all_splits(s, n, PT_H1BODY_CHUNKED, 0, r);
        cr_expect_eq(r->end, extra ? BAD : DONE, "%d extra: %s", extra, r->why ? r->why : "");
        free(r);
    }
    /* A trailer line of PT_H1BODY_TRAILER_LINE_MAX canonical bytes passes. */
    for (int extra = 0; extra < 2; extra++) {
        size_t vlen = PT_H1BODY_TRAILER_LINE_MAX - strlen("X: ") + (size_t)extra;
        char *s = malloc(vlen + 32);
        cr_assert_not_null(s);
        size_t n = (size_t)snprintf(s, 32, "0\r\nX:   ");
        memset(s + n, 'v', vlen);
        n += vlen;
        memcpy(s + n, "  \r\n\r\n", 6);
        n += 6;
        struct result *r = malloc(sizeof(*r));
        cr_assert_not_null(r);
        size_t whole = n;
        run((const uint8_t *)s, n, PT_H1BODY_CHUNKED, 0, &whole, 1, r);
        cr_expect_eq(r->end, extra ? BAD : DONE, "%d extra: %s", extra, r->why ? r->why : "");
        if (!extra)
            cr_expect_eq(r->trl_len, PT_H1BODY_TRAILER_LINE_MAX + 1);
        free(r);
        free(s);
    }
}

/* ---- other modes ----------------------------------------------------------------- */

Test(h1body, length_mode)
{
    static const struct row five[] = {
        OK("exact", "hello", "hello", NULL, 0),
        OK("next message follows", "helloGET / HTTP/1.1\r\n", "hello", NULL, 16),
        OK("body that looks like chunks", "0\r\n\r\nX", "0\r\n\r\n", NULL, 1),
        MORE("short", "hel", "hel"),
        MORE("nothing", "", ""),
    };
    check_rows(five, PT_ARRAY_LEN(five), PT_H1BODY_LENGTH, 5);
    static const struct row zero[] = {
        OK("empty", "", "", NULL, 0),
        OK("next message", "GET /", "", NULL, 5),
    };
    check_rows(zero, PT_ARRAY_LEN(zero), PT_H1BODY_LENGTH, 0);
    check_rows(zero, PT_ARRAY_LEN(zero), PT_H1BODY_NONE, 0);
    check_rows(zero, PT_ARRAY_LEN(zero), PT_H1BODY_NONE, 99); /* length ignored */

    /* A length past what size_t holds on any input counts down exactly. */
    struct pt_h1body b;
    pt_h1body_init(&b, PT_H1BODY_LENGTH, UINT64_MAX);
    size_t used;
    const uint8_t *o;
    size_t ol;
    cr_assert_eq(pt_h1body_step(&b, (const uint8_t *)"abc", 3, &used, &o, &ol),
                 PT_H1BODY_DATA);
    cr_assert_eq(used, 3);
    cr_assert_eq(b.left, UINT64_MAX - 3);
    cr_assert(!pt_h1body_ends_at_eof(&b));
}

Test(h1body, eof_mode)
{
    static const struct row rows[] = {
        MORE("anything", "0\r\n\r\nGET / HTTP/1.1\r\n\r\n\x01\n", "0\r\n\r\nGET / HTTP/1.1\r\n\r\n\x01\n"),
        MORE("nothing", "", ""),
    };
    check_rows(rows, PT_ARRAY_LEN(rows), PT_H1BODY_EOF, 0);
    struct pt_h1body b;
    pt_h1body_init(&b, PT_H1BODY_EOF, 0);
    cr_assert(pt_h1body_ends_at_eof(&b));
    pt_h1body_init(&b, PT_H1BODY_CHUNKED, 0);
    cr_assert(!pt_h1body_ends_at_eof(&b));
    pt_h1body_init(&b, PT_H1BODY_LENGTH, 0);
    cr_assert(pt_h1body_ends_at_eof(&b));
    pt_h1body_init(&b, PT_H1BODY_LENGTH, 1);
    cr_assert(!pt_h1body_ends_at_eof(&b));
}

/* One step over a whole C string; *out, *out_len as pt_h1body_step. */
static enum pt_h1body_ev step_str(struct pt_h1body *b, const char *in, const uint8_t **out,
                                  size_t *out_len)
{
    size_t used;
    return pt_h1body_step(b, (const uint8_t *)in, strlen(in), &used, out, out_len);
}

/* Idle keep-alive connections hold two decoders each: the trailer line
 * buffer exists only while a trailer section is being read. */
Test(h1body, trailer_buffer_only_while_trailers)
{
    struct pt_h1body b;
    const uint8_t *o;
    size_t ol;
    pt_h1body_init(&b, PT_H1BODY_CHUNKED, 0);
    cr_assert_eq(step_str(&b, "3\r\nabc", &o, &ol), PT_H1BODY_DATA);
    cr_assert_eq(step_str(&b, "\r\n0\r\n", &o, &ol), PT_H1BODY_NEED_MORE);
    cr_assert(b.trl == NULL, "no trailer yet, no buffer");
    cr_assert_eq(step_str(&b, "X-A: 1\r\n", &o, &ol), PT_H1BODY_TRAILER);
    cr_assert(b.trl != NULL);
    cr_assert(ol == 6 && memcmp(o, "X-A: 1", 6) == 0);
    cr_assert_eq(step_str(&b, "X-B", &o, &ol), PT_H1BODY_NEED_MORE);
    /* Abandoned in the middle of a line: release frees it (ASan's leak
     * check fails this test otherwise). */
    pt_h1body_release(&b);
    cr_assert(b.trl == NULL);

    const char *ends[] = {"\r\n", "bad line\r\n"}; /* DONE, INVALID */
    for (size_t i = 0; i < PT_ARRAY_LEN(ends); i++) {
        pt_h1body_init(&b, PT_H1BODY_CHUNKED, 0);
        cr_assert_eq(step_str(&b, "0\r\nX-A: 1\r\n", &o, &ol), PT_H1BODY_TRAILER);
        cr_assert_eq(step_str(&b, ends[i], &o, &ol),
                     i == 0 ? PT_H1BODY_DONE : PT_H1BODY_INVALID);
        cr_assert(b.trl == NULL, "freed at the end (%zu)", i);
    }
}

Test(h1body, invalid_is_sticky_and_done_stays)
{
    struct pt_h1body b;
    size_t used;
    const uint8_t *o;
    size_t ol;
    pt_h1body_init(&b, PT_H1BODY_CHUNKED, 0);
    cr_assert_eq(pt_h1body_step(&b, (const uint8_t *)LIT("x"), &used, &o, &ol),
                 PT_H1BODY_INVALID);
    cr_assert_eq(used, 1);
    cr_assert_eq(pt_h1body_step(&b, (const uint8_t *)LIT("5\r\nhello\r\n0\r\n\r\n"), &used, &o,
                                &ol),
                 PT_H1BODY_INVALID);
    cr_assert_eq(used, 0);
    pt_h1body_init(&b, PT_H1BODY_CHUNKED, 0);
    cr_assert_eq(pt_h1body_step(&b, (const uint8_t *)LIT("0\r\n\r\nxyz"), &used, &o, &ol),
                 PT_H1BODY_DONE);
    cr_assert_eq(used, 5);
    cr_assert_eq(pt_h1body_step(&b, (const uint8_t *)LIT("xyz"), &used, &o, &ol),
                 PT_H1BODY_DONE);
    cr_assert_eq(used, 0);
    cr_assert(pt_h1body_ends_at_eof(&b));
    pt_h1body_init(&b, (enum pt_h1body_mode)42, 0);
    cr_assert_eq(pt_h1body_step(&b, (const uint8_t *)LIT("x"), &used, &o, &ol),
                 PT_H1BODY_INVALID);
}

/* ---- writers ------------------------------------------------------------------------ */

Test(h1body, chunk_head)
{
    char h[PT_H1BODY_CHUNK_HEAD_MAX];
    cr_assert_eq(pt_h1body_chunk_head(h, 0), 3);
    cr_assert_str_eq(h, "0\r\n");
    cr_assert_eq(pt_h1body_chunk_head(h, 0x1f), 4);
    cr_assert_str_eq(h, "1f\r\n");
    cr_assert_eq(pt_h1body_chunk_head(h, UINT64_MAX), 18);
    cr_assert_str_eq(h, "ffffffffffffffff\r\n");
}

Test(h1body, writers_round_trip)
{
    /* Re-encode a decoded body with trailers; decoding it again gives the same. */
    static const char in[] = "3;x=\"y\"\r\nabc\r\n0001\r\nd\r\n0\r\nX-A:1\r\nX-B:  two  \r\n\r\n";
    struct result *r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    decode_all_splits(LIT(in), PT_H1BODY_CHUNKED, 0, r);
    cr_assert_eq(r->end, DONE);
    struct pt_wbuf w = {0};
    pt_h1body_write_chunk(&w, r->data, 3);
    pt_h1body_write_chunk(&w, r->data + 3, 0); /* nothing: not a last chunk */
    pt_h1body_write_chunk(&w, r->data + 3, r->data_len - 3);
    pt_h1body_write_trailer(&w, (const uint8_t *)"X-A: 1", 6, true);
    pt_h1body_write_trailer(&w, (const uint8_t *)"X-B: two", 8, false);
    pt_h1body_write_last(&w, true);
    static const char want[] = "3\r\nabc\r\n1\r\nd\r\n0\r\nX-A: 1\r\nX-B: two\r\n\r\n";
    cr_assert(w.len == sizeof(want) - 1 && memcmp(w.data, want, w.len) == 0, "%s",
              esc(w.data, w.len));
    struct result *again = malloc(sizeof(*again));
    cr_assert_not_null(again);
    decode_all_splits(w.data, w.len, PT_H1BODY_CHUNKED, 0, again);
    cr_assert_eq(again->end, DONE);
    cr_assert(again->data_len == r->data_len && memcmp(again->data, r->data, r->data_len) == 0);
    cr_assert(again->trl_len == r->trl_len && memcmp(again->trl, r->trl, r->trl_len) == 0);
    pt_wbuf_free(&w);
    pt_h1body_write_last(&w, false);
    cr_assert(w.len == 5 && memcmp(w.data, "0\r\n\r\n", 5) == 0);
    pt_wbuf_free(&w);
    free(again);
    free(r);
}

/* The byte-class table says what RFC 9110 says, for every byte. */
Test(h1body, byte_classes)
{
    const char *tspecial = "!#$%&'*+-.^_`|~";
    for (int c = 0; c < 256; c++) {
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool tchar = alnum || (c != 0 && strchr(tspecial, c) != NULL);
        bool vchar = c == '\t' || (c >= 0x20 && c != 0x7f);
        cr_expect_eq(pt_h1body_tchar((uint8_t)c), tchar, "tchar %d", c);
        cr_expect_eq(pt_h1body_vchar((uint8_t)c), vchar, "vchar %d", c);
    }
}
