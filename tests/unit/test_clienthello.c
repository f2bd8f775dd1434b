/* Unit tests for common/clienthello.c.
 *
 * Every parse runs with its input ending at a guard page and its scratch
 * buffer ending at another, so a read past the input or a write past
 * PT_CLIENTHELLO_MAX crashes the test. Inputs: the real captures in
 * tests/data/clienthello/ (expectations from manifest.json, hardcoded below),
 * the same hellos re-fragmented into records of every size, and hand-built
 * hellos for the refusals. */
#include <criterion/criterion.h>

#include "common/clienthello.h"
#include "tests/unit/guard.h"

#define DATA_DIR "tests/data/clienthello/"
#define BIG 65536 /* room for any framed test input, 1-byte records included */

/* ---- parse harness ------------------------------------------------------ */

struct run {
    struct pt_guard gscratch;
    uint8_t *scratch; /* PT_CLIENTHELLO_MAX bytes ending at a guard page */
    struct pt_clienthello ch;
};

static void run_init(struct run *r)
{
    static const uint8_t zero[PT_CLIENTHELLO_MAX];
    r->scratch = pt_guard_copy(&r->gscratch, zero, sizeof(zero));
    memset(&r->ch, 0, sizeof(r->ch));
}

static void run_fini(struct run *r)
{
    pt_guard_release(&r->gscratch);
}

/* Parses a guard-page copy of buf[0..len). The copy is unmapped before
 * returning, which also proves *out points only into scratch. */
static int run_parse(struct run *r, const uint8_t *buf, size_t len)
{
    struct pt_guard g;
    uint8_t *in = pt_guard_copy(&g, buf, len);
    int rc = pt_clienthello_parse(in, len, r->scratch, &r->ch);
    pt_guard_release(&g);
    return rc;
}

static bool in_scratch(const struct run *r, const char *p, size_t n)
{
    const char *s = (const char *)r->scratch;
    return p >= s && n <= PT_CLIENTHELLO_MAX && p - s <= (ptrdiff_t)(PT_CLIENTHELLO_MAX - n);
}

static void expect_all_prefixes_need_more(struct run *r, const uint8_t *buf, size_t len,
                                          const char *what)
{
    for (size_t i = 0; i < len; i++) {
        int rc = run_parse(r, buf, i);
        cr_assert_eq(rc, PT_ENEEDMORE, "%s: prefix %zu/%zu: got %d", what, i, len, rc);
    }
}

/* ---- byte building ------------------------------------------------------ */

/* Decodes hex (spaces ignored) into <out>. */
static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *s != '\0'; s++) {
        if (*s == ' ')
            continue;
        int v = pt_hexval(*s);
        cr_assert(v >= 0, "bad hex digit '%c'", *s);
        if (hi < 0) {
            hi = v;
            continue;
        }
        cr_assert(n < cap);
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    cr_assert(hi < 0, "odd number of hex digits");
    return n;
}

/* Cuts the handshake bytes <hs>[0..n) into handshake records of at most
 * <frag> payload bytes, record version 0x03<minor>. */
static size_t wrap_v(const uint8_t *hs, size_t n, size_t frag, uint8_t minor, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += frag) {
        size_t k = n - i < frag ? n - i : frag;
        cr_assert(o + 5 + k <= BIG);
        out[o++] = 22;
        out[o++] = 3;
        out[o++] = minor;
        out[o++] = (uint8_t)(k >> 8);
        out[o++] = (uint8_t)k;
        memcpy(out + o, hs + i, k);
        o += k;
    }
    return o;
}

static size_t wrap(const uint8_t *hs, size_t n, size_t frag, uint8_t *out)
{
    return wrap_v(hs, n, frag, 1, out);
}

static void put16(uint8_t **p, size_t v)
{
    cr_assert(v <= 0xffff);
    *(*p)++ = (uint8_t)(v >> 8);
    *(*p)++ = (uint8_t)v;
}

/* Prefixes a ClientHello body with its handshake header into <hs>. */
static size_t handshake(const uint8_t *body, size_t n, uint8_t *hs)
{
    hs[0] = 1;
    hs[1] = (uint8_t)(n >> 16);
    hs[2] = (uint8_t)(n >> 8);
    hs[3] = (uint8_t)n;
    memcpy(hs + 4, body, n);
    return n + 4;
}

/* A hello body (hex) framed as one handshake record. */
static size_t frame_hex(const char *body_hex, uint8_t *out)
{
    static uint8_t body[BIG], hs[BIG];
    size_t n = unhex(body_hex, body, sizeof(body));
    n = handshake(body, n, hs);
    return wrap(hs, n, 16384, out);
}

/* Concatenates the payloads of the (well-formed) records in <rec>. */
static size_t handshake_of(const uint8_t *rec, size_t n, uint8_t *hs)
{
    size_t o = 0;
    for (size_t i = 0; i + 5 <= n;) {
        size_t k = (size_t)rec[i + 3] << 8 | rec[i + 4];
        memcpy(hs + o, rec + i + 5, k);
        o += k;
        i += 5 + k;
    }
    return o;
}

/* legacy_version 0x0303, random, empty session_id, one suite, null compression. */
#define R32 "1111111111111111111111111111111111111111111111111111111111111111"
#define HEAD "0303" R32 "00" "0002 1301" "01 00"
/* server_name "a.test" (15 bytes) and ALPN "h2" (9 bytes). */
#define SNI_ATEST "0000 000b 0009 00 0006 612e74657374"
#define ALPN_H2 "0010 0005 0003 02 6832"

/* ---- captures ----------------------------------------------------------- */

#define STRADDLE_SNI                                                           \
    "sni-spans-two-tls-records-rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"            \
    ".label-two-ssssssssssssssssssssssssssssssssssssssssssssssssss.a.test"

struct capture {
    const char *file;
    const char *sni;     /* NULL: no server_name extension */
    const char *alpn[3]; /* leading ALPN names, NULL-terminated */
    int long_alpn;       /* then "x-long-proto-<i>-" + 180 'a', i = 1..long_alpn */
    bool versions;       /* supported_versions present */
    int records;
};

/* From tests/data/clienthello/manifest.json and README.md. */
static const struct capture captures[] = {
    {"chromium-headless.bin", "a.test", {"h2", "http/1.1"}, 0, true, 1},
    {"curl-http1.1.bin", "a.test", {"http/1.1"}, 0, true, 1},
    {"curl-http2.bin", "a.test", {"h2", "http/1.1"}, 0, true, 1},
    {"curl-tls12.bin", "a.test", {"h2", "http/1.1"}, 0, false, 1},
    {"gnutls-cli-h2.bin", "a.test", {"h2", "http/1.1"}, 0, true, 1},
    {"gnutls-cli-tls12.bin", "a.test", {"http/1.1"}, 0, false, 1},
    {"openssl-s_client-h2.bin", "a.test", {"h2", "http/1.1"}, 0, true, 1},
    {"openssl-s_client-multirecord.bin", "a.test", {"h2", "http/1.1"}, 6, true, 3},
    {"openssl-s_client-noservername.bin", NULL, {"h2", "http/1.1"}, 0, true, 1},
    {"openssl-s_client-sni-straddle.bin", STRADDLE_SNI, {"h2", "http/1.1"}, 0, true, 2},
    {"openssl-s_client-tls12.bin", "a.test", {"h2", "http/1.1"}, 0, false, 1},
    {"python3-http.client.bin", "a.test", {"http/1.1"}, 0, true, 1},
    {"python3-ssl-h2.bin", "a.test", {"h2", "http/1.1"}, 0, true, 1},
};

static size_t load(const char *file, uint8_t *buf, size_t cap)
{
    char path[256];
    snprintf(path, sizeof(path), DATA_DIR "%s", file);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (tests run from the repo root)", path);
    size_t n = fread(buf, 1, cap, f);
    cr_assert(feof(f) && !ferror(f), "%s: read error or larger than %zu", path, cap);
    fclose(f);
    return n;
}

static size_t count_records(const uint8_t *rec, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i + 5 <= n; i += 5 + ((size_t)rec[i + 3] << 8 | rec[i + 4]))
        count++;
    return count;
}

static void check_capture(const struct capture *cap, const struct run *r, const char *how)
{
    const struct pt_clienthello *ch = &r->ch;

    if (cap->sni == NULL) {
        cr_assert_eq(ch->sni_len, 0, "%s %s: unexpected SNI", cap->file, how);
        cr_assert_null(ch->sni);
    } else {
        cr_assert_eq(ch->sni_len, strlen(cap->sni), "%s %s: SNI length", cap->file, how);
        cr_assert(memcmp(ch->sni, cap->sni, ch->sni_len) == 0, "%s %s: SNI %.*s", cap->file,
                  how, (int)ch->sni_len, ch->sni);
        cr_assert(in_scratch(r, ch->sni, ch->sni_len));
    }

    size_t nshort = 0;
    while (nshort < PT_ARRAY_LEN(cap->alpn) && cap->alpn[nshort] != NULL)
        nshort++;
    cr_assert_eq(ch->alpn_count, nshort + (size_t)cap->long_alpn, "%s %s: ALPN count %zu",
                 cap->file, how, ch->alpn_count);
    for (size_t i = 0; i < ch->alpn_count && i < PT_ALPN_MAX; i++) {
        char want[256];
        if (i < nshort) {
            snprintf(want, sizeof(want), "%s", cap->alpn[i]);
        } else {
            int k = snprintf(want, sizeof(want), "x-long-proto-%zu-", i - nshort + 1);
            memset(want + k, 'a', 180);
            want[k + 180] = '\0';
        }
        cr_assert_eq(ch->alpn_len[i], strlen(want), "%s %s: ALPN[%zu] length", cap->file, how,
                     i);
        cr_assert(memcmp(ch->alpn[i], want, ch->alpn_len[i]) == 0, "%s %s: ALPN[%zu]",
                  cap->file, how, i);
        cr_assert(in_scratch(r, ch->alpn[i], ch->alpn_len[i]));
    }
    cr_assert_eq(ch->legacy_version, 0x0303);
    cr_assert_eq(ch->has_supported_versions, cap->versions, "%s %s: supported_versions",
                 cap->file, how);
}

Test(clienthello, captures)
{
    static uint8_t buf[BIG];
    struct run r;
    run_init(&r);
    for (size_t i = 0; i < PT_ARRAY_LEN(captures); i++) {
        const struct capture *cap = &captures[i];
        size_t n = load(cap->file, buf, sizeof(buf));
        cr_assert_eq(count_records(buf, n), (size_t)cap->records, "%s: records", cap->file);
        int rc = run_parse(&r, buf, n);
        cr_assert_eq(rc, (int)n, "%s: got %d, want %zu", cap->file, rc, n);
        cr_assert_eq(r.ch.records_len, n);
        check_capture(cap, &r, "as captured");
    }
    run_fini(&r);
}

Test(clienthello, captures_every_prefix_needs_more)
{
    static uint8_t buf[BIG];
    struct run r;
    run_init(&r);
    for (size_t i = 0; i < PT_ARRAY_LEN(captures); i++) {
        size_t n = load(captures[i].file, buf, sizeof(buf));
        expect_all_prefixes_need_more(&r, buf, n, captures[i].file);
    }
    run_fini(&r);
}

/* The records that follow the hello (ChangeCipherSpec, the next handshake
 * record, or anything) belong to the backend: not consumed, not judged. */
Test(clienthello, bytes_after_hello_not_consumed)
{
    static const char *const tails[] = {
        "14 0303 0001 01",          /* middlebox-compat ChangeCipherSpec */
        "16 0303 0004 0b000000",    /* another handshake record */
        "17 0303 0000",             /* malformed on its own */
        "ff",                       /* garbage */
    };
    static uint8_t buf[BIG];
    struct run r;
    run_init(&r);
    for (size_t i = 0; i < PT_ARRAY_LEN(captures); i++) {
        size_t n = load(captures[i].file, buf, sizeof(buf));
        for (size_t t = 0; t < PT_ARRAY_LEN(tails); t++) {
            size_t extra = unhex(tails[t], buf + n, sizeof(buf) - n);
            int rc = run_parse(&r, buf, n + extra);
            cr_assert_eq(rc, (int)n, "%s + %s: got %d", captures[i].file, tails[t], rc);
            cr_assert_eq(r.ch.records_len, n);
            check_capture(&captures[i], &r, "with a tail");
        }
    }
    run_fini(&r);
}

Test(clienthello, multirecord)
{
    static uint8_t buf[BIG];
    const struct capture *cap = &captures[7];
    cr_assert_str_eq(cap->file, "openssl-s_client-multirecord.bin");
    struct run r;
    run_init(&r);
    size_t n = load(cap->file, buf, sizeof(buf));
    cr_assert_eq(n, 1516);
    cr_assert_eq(run_parse(&r, buf, n), 1516);
    cr_assert_eq(r.ch.alpn_count, 8);
    check_capture(cap, &r, "");
    /* The first two records alone: the hello is not complete. */
    cr_assert_eq(run_parse(&r, buf, 5 + 512 + 5 + 512), PT_ENEEDMORE);
    run_fini(&r);
}

Test(clienthello, sni_straddles_records)
{
    static uint8_t buf[BIG];
    const struct capture *cap = &captures[9];
    cr_assert_str_eq(cap->file, "openssl-s_client-sni-straddle.bin");
    cr_assert_eq(strlen(STRADDLE_SNI), 130);
    struct run r;
    run_init(&r);
    size_t n = load(cap->file, buf, sizeof(buf));
    cr_assert_eq(run_parse(&r, buf, n), (int)n);
    check_capture(cap, &r, "");
    /* Only the first record: the name is cut, never reported half. */
    cr_assert_eq(run_parse(&r, buf, 5 + 512), PT_ENEEDMORE);
    run_fini(&r);
}

Test(clienthello, no_sni)
{
    static uint8_t buf[BIG];
    struct run r;
    run_init(&r);
    size_t n = load("openssl-s_client-noservername.bin", buf, sizeof(buf));
    cr_assert_eq(run_parse(&r, buf, n), (int)n);
    cr_assert_eq(r.ch.sni_len, 0);
    cr_assert_null(r.ch.sni);
    cr_assert_eq(r.ch.alpn_count, 2);

    n = frame_hex(HEAD, buf); /* no extensions at all (TLS 1.2 allows it) */
    cr_assert_eq(run_parse(&r, buf, n), (int)n);
    cr_assert_eq(r.ch.sni_len, 0);
    cr_assert_eq(r.ch.alpn_count, 0);
    cr_assert_not(r.ch.has_supported_versions);

    n = frame_hex(HEAD "0000", buf); /* empty extension block */
    cr_assert_eq(run_parse(&r, buf, n), (int)n);
    cr_assert_eq(r.ch.sni_len, 0);
    run_fini(&r);
}

/* TLS lets a handshake message be cut into records of any size >= 1. */
Test(clienthello, refragmented)
{
    static const size_t frags[] = {1, 2, 3, 4, 5, 7, 64, 255, 256, 511, 1000, 16384};
    static uint8_t buf[BIG], hs[BIG], rec[BIG];
    struct run r;
    run_init(&r);
    for (size_t i = 0; i < PT_ARRAY_LEN(captures); i++) {
        size_t n = handshake_of(buf, load(captures[i].file, buf, sizeof(buf)), hs);
        for (size_t f = 0; f < PT_ARRAY_LEN(frags); f++) {
            size_t m = wrap(hs, n, frags[f], rec);
            cr_assert(m <= PT_CLIENTHELLO_MAX);
            char how[64];
            snprintf(how, sizeof(how), "in %zu-byte records", frags[f]);
            int rc = run_parse(&r, rec, m);
            cr_assert_eq(rc, (int)m, "%s %s: got %d", captures[i].file, how, rc);
            cr_assert_eq(r.ch.records_len, m);
            check_capture(&captures[i], &r, how);
        }
    }
    run_fini(&r);
}

Test(clienthello, one_byte_records_every_prefix_needs_more)
{
    static const char *const files[] = {"curl-tls12.bin", "openssl-s_client-sni-straddle.bin"};
    static uint8_t buf[BIG], hs[BIG], rec[BIG];
    struct run r;
    run_init(&r);
    for (size_t i = 0; i < PT_ARRAY_LEN(files); i++) {
        size_t n = handshake_of(buf, load(files[i], buf, sizeof(buf)), hs);
        size_t m = wrap(hs, n, 1, rec);
        cr_assert_eq(m, 6 * n);
        expect_all_prefixes_need_more(&r, rec, m, files[i]);
        cr_assert_eq(run_parse(&r, rec, m), (int)m);
    }
    run_fini(&r);
}

Test(clienthello, record_versions)
{
    static uint8_t body[BIG], hs[BIG], rec[BIG];
    struct run r;
    run_init(&r);
    size_t n = handshake(body, unhex(HEAD "000f" SNI_ATEST, body, sizeof(body)), hs);
    for (uint8_t minor = 0; minor <= 4; minor++) {
        size_t m = wrap_v(hs, n, 16384, minor, rec);
        cr_assert_eq(run_parse(&r, rec, m), (int)m, "record version 0x03%02x", minor);
    }
    run_fini(&r);
}

/* ---- hand-built hellos that parse -------------------------------------- */

Test(clienthello, sni_first_host_name_wins)
{
    static uint8_t buf[BIG];
    struct run r;
    run_init(&r);
    /* An entry of another name_type first, then two host_names. */
    size_t n = frame_hex(HEAD "001e"
                              "0000 001a 0018 01 0003 787878 00 0006 612e74657374"
                              " 00 0006 622e74657374",
                         buf);
    cr_assert_eq(run_parse(&r, buf, n), (int)n);
    cr_assert_eq(r.ch.sni_len, 6);
    cr_assert(memcmp(r.ch.sni, "a.test", 6) == 0);
    run_fini(&r);
}

Test(clienthello, sni_255_ok_256_malformed)
{
    static uint8_t body[BIG], hs[BIG], rec[BIG];
    struct run r;
    run_init(&r);
    for (size_t len = 254; len <= 256; len++) {
        size_t n = unhex(HEAD, body, sizeof(body));
        size_t ext = 2 + 2 + 2 + 1 + 2 + len;
        uint8_t *p = body + n;
        put16(&p, ext);
        put16(&p, 0);       /* server_name */
        put16(&p, len + 5); /* extension length */
        put16(&p, len + 3); /* list length */
        *p++ = 0;           /* host_name */
        put16(&p, len);
        memset(p, 'x', len);
        n = (size_t)(p + len - body);
        size_t m = wrap(hs, handshake(body, n, hs), 16384, rec);
        int rc = run_parse(&r, rec, m);
        if (len <= 255) {
            cr_assert_eq(rc, (int)m, "SNI of %zu bytes: got %d", len, rc);
            cr_assert_eq(r.ch.sni_len, len);
        } else {
            cr_assert_eq(rc, PT_EMALFORMED, "SNI of %zu bytes: got %d", len, rc);
        }
    }
    run_fini(&r);
}

Test(clienthello, alpn_more_than_max_counted)
{
    static uint8_t body[BIG], hs[BIG], rec[BIG];
    struct run r;
    run_init(&r);
    size_t n = unhex(HEAD, body, sizeof(body));
    const size_t count = PT_ALPN_MAX + 4; /* "p00".."p19" */
    size_t list = count * 4;
    uint8_t *p = body + n;
    put16(&p, list + 6); /* extensions */
    put16(&p, 16);       /* ALPN */
    put16(&p, list + 2);
    put16(&p, list);
    for (size_t i = 0; i < count; i++) {
        *p++ = 3;
        *p++ = 'p';
        *p++ = (uint8_t)('0' + i / 10);
        *p++ = (uint8_t)('0' + i % 10);
    }
    size_t m = wrap(hs, handshake(body, (size_t)(p - body), hs), 16384, rec);
    cr_assert_eq(run_parse(&r, rec, m), (int)m);
    cr_assert_eq(r.ch.alpn_count, count);
    for (size_t i = 0; i < PT_ALPN_MAX; i++) {
        char want[4] = {'p', (char)('0' + i / 10), (char)('0' + i % 10), '\0'};
        cr_assert_eq(r.ch.alpn_len[i], 3);
        cr_assert(memcmp(r.ch.alpn[i], want, 3) == 0, "ALPN[%zu]", i);
    }
    run_fini(&r);
}

Test(clienthello, supported_versions_flag)
{
    static uint8_t buf[BIG];
    struct run r;
    run_init(&r);
    size_t n = frame_hex(HEAD "0007 002b 0003 02 0304", buf);
    cr_assert_eq(run_parse(&r, buf, n), (int)n);
    cr_assert(r.ch.has_supported_versions);
    n = frame_hex(HEAD "0007 002a 0003 02 0304", buf); /* same bytes, other type */
    cr_assert_eq(run_parse(&r, buf, n), (int)n);
    cr_assert_not(r.ch.has_supported_versions);
    run_fini(&r);
}

/* ---- refusals ----------------------------------------------------------- */

struct bad {
    const char *name;
    bool raw;        /* hex is the whole input, else a hello body to frame */
    const char *hex;
};

static const struct bad bad_hellos[] = {
    /* record layer */
    {"bad content type", true, "17"},
    {"alert record first", true, "15 0301 0002 0228"},
    {"SSLv2-style hello", true, "80 2e 01 0301"},
    {"record version major", true, "16 02"},
    {"record version minor 5", true, "16 0305"},
    {"record len 0", true, "16 0301 0000"},
    {"record len 0 then a record", true, "16 0301 0000 16 0301 0001 01"},
    {"record len 16385", true, "16 0301 4001"},
    {"record len high byte > 0x40", true, "16 0301 41"},
    {"record len 0xffff", true, "16 0301 ffff"},
    /* handshake layer */
    {"handshake type 2", true, "16 0301 0004 02 000000"},
    {"handshake type 0", true, "16 0301 0001 00"},
    {"handshake header split, body empty", true, "16 0301 0001 01 16 0301 0003 000000"},
    {"interleaved alert", true, "16 0301 0002 0100 15 0301 0002 0228"},
    {"interleaved change_cipher_spec", true, "16 0301 0002 0100 14 0301 0001 01"},
    {"interleaved application data", true, "16 0301 0004 01000030 17 0303 0005 0000000000"},
    {"bytes after the hello in its record", true,
     "16 0301 002e 01 000029 0303" R32 "00 0002 1301 0100 00"},
    {"hello body empty", true, "16 0301 0004 01 000000"},
    /* hello body */
    {"truncated in random", false, "0303 1111"},
    {"session id 33", false, "0303" R32 "21" R32 "00" "0002 1301 0100"},
    {"session id overruns", false, "0303" R32 "20 1111"},
    {"odd cipher suite length", false, "0303" R32 "00" "0003 130113" "0100"},
    {"no cipher suites", false, "0303" R32 "00" "0000" "0100"},
    {"cipher suites overrun", false, "0303" R32 "00" "0004 1301" "0100"},
    {"no compression methods", false, "0303" R32 "00" "0002 1301" "00"},
    {"compression methods overrun", false, "0303" R32 "00" "0002 1301" "02 00"},
    {"extensions length 1 byte", false, HEAD "00"},
    {"extensions length too long", false, HEAD "0010" SNI_ATEST},
    {"extensions length too short", false, HEAD "000e" SNI_ATEST},
    {"extension length overruns", false, HEAD "0008 0017 0010 00000000"},
    {"extension header cut", false, HEAD "0002 0017"},
    {"trailing garbage in extension block (1)", false, HEAD "0010" SNI_ATEST "00"},
    {"trailing garbage in extension block (3)", false, HEAD "0012" SNI_ATEST "000000"},
    /* server_name */
    {"SNI extension empty", false, HEAD "0004 0000 0000"},
    {"SNI list empty", false, HEAD "0006 0000 0002 0000"},
    {"SNI list length too long", false, HEAD "000f 0000 000b 000a 00 0006 612e74657374"},
    {"SNI list length too short", false, HEAD "000f 0000 000b 0008 00 0006 612e74657374"},
    {"SNI name overruns list", false, HEAD "000f 0000 000b 0009 00 0007 612e74657374"},
    {"SNI entry cut", false, HEAD "0009 0000 0005 0003 00 0006"},
    {"SNI empty", false, HEAD "0009 0000 0005 0003 00 0000"},
    {"SNI with NUL", false, HEAD "000f 0000 000b 0009 00 0006 6100 74657374"},
    {"SNI ending in NUL", false, HEAD "000f 0000 000b 0009 00 0006 612e746573 00"},
    {"SNI extension twice", false, HEAD "001e" SNI_ATEST SNI_ATEST},
    /* ALPN */
    {"ALPN zero-length protocol", false, HEAD "000a 0010 0006 0004 02 6832 00"},
    {"ALPN list length mismatch", false, HEAD "0009 0010 0005 0004 02 6832"},
    {"ALPN list length short", false, HEAD "0009 0010 0005 0002 02 6832"},
    {"ALPN protocol overruns", false, HEAD "0009 0010 0005 0003 03 6832"},
    {"ALPN list empty", false, HEAD "0006 0010 0002 0000"},
    {"ALPN extension empty", false, HEAD "0004 0010 0000"},
    {"ALPN extension twice", false, HEAD "0012" ALPN_H2 ALPN_H2},
    /* supported_versions */
    {"supported_versions odd", false, HEAD "0006 002b 0002 01 03"},
    {"supported_versions mismatch", false, HEAD "0007 002b 0003 04 0304"},
    {"supported_versions empty", false, HEAD "0004 002b 0000"},
    {"supported_versions list empty", false, HEAD "0005 002b 0001 00"},
    {"supported_versions twice", false, HEAD "000e 002b 0003 02 0304 002b 0003 02 0304"},
};

Test(clienthello, malformed)
{
    static uint8_t buf[BIG];
    struct run r;
    run_init(&r);
    for (size_t i = 0; i < PT_ARRAY_LEN(bad_hellos); i++) {
        const struct bad *b = &bad_hellos[i];
        size_t n = b->raw ? unhex(b->hex, buf, sizeof(buf)) : frame_hex(b->hex, buf);
        int rc = run_parse(&r, buf, n);
        cr_assert_eq(rc, PT_EMALFORMED, "%s: got %d", b->name, rc);
        /* Never accepted on the way there either. */
        for (size_t k = 0; k < n; k++) {
            rc = run_parse(&r, buf, k);
            cr_assert(rc == PT_ENEEDMORE || rc == PT_EMALFORMED, "%s: prefix %zu: got %d",
                      b->name, k, rc);
        }
    }
    run_fini(&r);
}

/* The refusal comes as soon as the bytes contradict, not after 5 bytes. */
Test(clienthello, malformed_early)
{
    struct run r;
    run_init(&r);
    static const uint8_t not22[] = {0x47}; /* "GET ..." */
    cr_assert_eq(run_parse(&r, not22, 1), PT_EMALFORMED);
    static const uint8_t len0[] = {0x16, 0x03, 0x01, 0x00, 0x00};
    cr_assert_eq(run_parse(&r, len0, 5), PT_EMALFORMED);
    static const uint8_t hs2[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x02};
    cr_assert_eq(run_parse(&r, hs2, 6), PT_EMALFORMED);
    static const uint8_t empty[] = {0};
    cr_assert_eq(run_parse(&r, empty, 0), PT_ENEEDMORE);
    cr_assert_eq(pt_clienthello_parse(NULL, 0, r.scratch, &r.ch), PT_ENEEDMORE);
    run_fini(&r);
}

/* A hello interrupted by an alert record, taken from a real capture. */
Test(clienthello, interleaved_alert_in_capture)
{
    static uint8_t buf[BIG], hs[BIG], rec[BIG];
    struct run r;
    run_init(&r);
    size_t n = handshake_of(buf, load("openssl-s_client-h2.bin", buf, sizeof(buf)), hs);
    size_t m = wrap(hs, 100, 100, rec); /* first 100 bytes in one record */
    m += unhex("15 0301 0002 0228", rec + m, sizeof(rec) - m);
    m += wrap(hs + 100, n - 100, 16384, rec + m);
    cr_assert_eq(run_parse(&r, rec, m), PT_EMALFORMED);
    run_fini(&r);
}

Test(clienthello, too_big)
{
    static uint8_t body[BIG], hs[BIG], rec[BIG];
    struct run r;
    run_init(&r);

    /* A hello claiming 20000 bytes: refused from its handshake header on. */
    size_t n = unhex("16 0301 0200 01 004e20", rec, sizeof(rec));
    cr_assert_eq(run_parse(&r, rec, n), PT_ETOOBIG);
    cr_assert_eq(run_parse(&r, rec, n - 1), PT_ENEEDMORE);
    n = unhex("16 0301 0004 01 004e20", rec, sizeof(rec));
    cr_assert_eq(run_parse(&r, rec, n), PT_ETOOBIG);
    n = unhex("16 0301 0004 01 003ffd", rec, sizeof(rec)); /* MAX - 4 + 1 */
    cr_assert_eq(run_parse(&r, rec, n), PT_ETOOBIG);

    /* The largest hello that fits in one record of PT_CLIENTHELLO_MAX bytes,
     * and one byte more. Padding extension (21) sets the size. */
    for (size_t extra = 0; extra <= 1; extra++) {
        size_t hlen = PT_CLIENTHELLO_MAX - 5 - 4 + extra;
        size_t head = unhex(HEAD, body, sizeof(body));
        size_t pad = hlen - head - 2 - 4;
        uint8_t *p = body + head;
        put16(&p, pad + 4); /* extensions */
        put16(&p, 21);      /* padding */
        put16(&p, pad);
        memset(p, 0, pad);
        cr_assert_eq((size_t)(p + pad - body), hlen);
        size_t m = wrap(hs, handshake(body, hlen, hs), 16384, rec);
        int rc = run_parse(&r, rec, m);
        if (extra == 0) {
            cr_assert_eq(m, PT_CLIENTHELLO_MAX);
            cr_assert_eq(rc, PT_CLIENTHELLO_MAX);
        } else {
            cr_assert_eq(rc, PT_ETOOBIG);
            /* Known from the record header already. */
            cr_assert_eq(run_parse(&r, rec, 5), PT_ETOOBIG);
        }

        /* The same hello in 1000-byte records needs 16 more headers. */
        m = wrap(hs, hlen + 4, 1000, rec);
        cr_assert_eq(run_parse(&r, rec, m), PT_ETOOBIG);
        /* As soon as the handshake header says so (the second record can't fit). */
        cr_assert_eq(run_parse(&r, rec, 9), PT_ETOOBIG);
    }

    /* A hello that fits alone but not in 1-byte records (6 bytes each). */
    {
        size_t hlen = 3000;
        size_t head = unhex(HEAD, body, sizeof(body));
        size_t pad = hlen - head - 2 - 4;
        uint8_t *p = body + head;
        put16(&p, pad + 4); /* extensions */
        put16(&p, 21);      /* padding */
        put16(&p, pad);
        memset(p, 0, pad);
        size_t hn = handshake(body, hlen, hs);
        size_t m = wrap(hs, hn, 16384, rec);
        cr_assert_eq(run_parse(&r, rec, m), (int)m);
        m = wrap(hs, hn, 1, rec);
        cr_assert_eq(run_parse(&r, rec, m), PT_ETOOBIG);
        /* Undecided early on; refused by the time the buffered records
         * reach the limit (sooner: each record left needs a header). */
        cr_assert_eq(run_parse(&r, rec, 6 * 100), PT_ENEEDMORE);
        cr_assert_eq(run_parse(&r, rec, PT_CLIENTHELLO_MAX), PT_ETOOBIG);
    }
    run_fini(&r);
}

/* *out is written only on success. */
Test(clienthello, out_untouched_on_failure)
{
    static uint8_t buf[BIG];
    struct run r;
    run_init(&r);
    size_t n = frame_hex(HEAD "0012" SNI_ATEST "000000", buf);
    memset(&r.ch, 0xa5, sizeof(r.ch));
    struct pt_clienthello before = r.ch;
    cr_assert_eq(run_parse(&r, buf, n), PT_EMALFORMED);
    cr_assert(memcmp(&before, &r.ch, sizeof(before)) == 0);
    cr_assert_eq(run_parse(&r, buf, n - 1), PT_ENEEDMORE);
    cr_assert(memcmp(&before, &r.ch, sizeof(before)) == 0);
    run_fini(&r);
}

/* ---- alerts ------------------------------------------------------------- */

Test(clienthello, tls_alert)
{
    uint8_t out[7];
    static const uint8_t unrecognized_name[7] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x70};
    cr_assert_eq(pt_tls_alert(out, 0x0301, PT_TLS_ALERT_UNRECOGNIZED_NAME), 7);
    cr_assert(memcmp(out, unrecognized_name, 7) == 0);
    cr_assert_eq(pt_tls_alert(out, 0, PT_TLS_ALERT_UNRECOGNIZED_NAME), 7);
    cr_assert(memcmp(out, unrecognized_name, 7) == 0);
    static const uint8_t handshake_failure[7] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
    cr_assert_eq(pt_tls_alert(out, 0x0303, PT_TLS_ALERT_HANDSHAKE_FAILURE), 7);
    cr_assert(memcmp(out, handshake_failure, 7) == 0);
    cr_assert_eq(PT_TLS_ALERT_INTERNAL_ERROR, 80);
}
