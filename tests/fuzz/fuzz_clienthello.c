/* libFuzzer target for pt_clienthello_parse.
 *
 * Beyond "no crash": the result is one of the documented codes, the output
 * points only into scratch, a hello accepted from <data> is also accepted
 * from exactly its records and refused as need-more one byte short, and the
 * same handshake re-cut into records of another size parses to the same
 * answer. Seeds: tests/fuzz/corpus/clienthello/ (real captures). */
#include "common/clienthello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t scratch[PT_CLIENTHELLO_MAX];
static uint8_t scratch2[PT_CLIENTHELLO_MAX];
static uint8_t hs[PT_CLIENTHELLO_MAX];
static uint8_t rec[PT_CLIENTHELLO_MAX + 5];

static bool within(const uint8_t *base, const char *p, size_t n)
{
    const uint8_t *q = (const uint8_t *)p;
    return q >= base && n <= PT_CLIENTHELLO_MAX && (size_t)(q - base) <= PT_CLIENTHELLO_MAX - n;
}

static void check_out(const struct pt_clienthello *ch, const uint8_t *base, int rc)
{
    PT_ASSERT(ch->records_len == (size_t)rc);
    PT_ASSERT(ch->sni_len <= 255);
    PT_ASSERT((ch->sni_len == 0) == (ch->sni == NULL));
    if (ch->sni_len > 0) {
        PT_ASSERT(within(base, ch->sni, ch->sni_len));
        PT_ASSERT(memchr(ch->sni, 0, ch->sni_len) == NULL);
    }
    size_t kept = ch->alpn_count < PT_ALPN_MAX ? ch->alpn_count : PT_ALPN_MAX;
    for (size_t i = 0; i < kept; i++) {
        PT_ASSERT(ch->alpn_len[i] >= 1);
        PT_ASSERT(within(base, ch->alpn[i], ch->alpn_len[i]));
    }
}

static bool same(const struct pt_clienthello *a, const struct pt_clienthello *b)
{
    if (a->sni_len != b->sni_len ||
        (a->sni_len > 0 && memcmp(a->sni, b->sni, a->sni_len) != 0))
        return false;
    if (a->alpn_count != b->alpn_count || a->legacy_version != b->legacy_version ||
        a->has_supported_versions != b->has_supported_versions)
        return false;
    size_t kept = a->alpn_count < PT_ALPN_MAX ? a->alpn_count : PT_ALPN_MAX;
    for (size_t i = 0; i < kept; i++)
        if (a->alpn_len[i] != b->alpn_len[i] ||
            memcmp(a->alpn[i], b->alpn[i], a->alpn_len[i]) != 0)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_clienthello ch, ch2;
    int rc = pt_clienthello_parse(data, size, scratch, &ch);
    PT_ASSERT(rc > 0 || rc == PT_ENEEDMORE || rc == PT_EMALFORMED || rc == PT_ETOOBIG);
    if (rc <= 0)
        return 0;
    PT_ASSERT((size_t)rc <= size && rc <= PT_CLIENTHELLO_MAX);
    check_out(&ch, scratch, rc);

    /* Bytes past the hello are not looked at; one byte less is need-more. */
    PT_ASSERT(pt_clienthello_parse(data, (size_t)rc, scratch2, &ch2) == rc);
    PT_ASSERT(same(&ch, &ch2));
    PT_ASSERT(pt_clienthello_parse(data, (size_t)rc - 1, scratch2, &ch2) == PT_ENEEDMORE);
    PT_ASSERT(pt_clienthello_parse(data, (size_t)rc / 2, scratch2, &ch2) == PT_ENEEDMORE);

    /* Re-cut the reassembled handshake into records of another size. */
    size_t n = 4 + ((size_t)scratch[1] << 16 | (size_t)scratch[2] << 8 | scratch[3]);
    memcpy(hs, scratch, n);
    size_t frag = 1 + (size_t)rc % 300;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < sizeof(rec); i += frag) {
        size_t k = n - i < frag ? n - i : frag;
        if (o + 5 + k > sizeof(rec))
            break;
        rec[o++] = 22;
        rec[o++] = 3;
        rec[o++] = 3;
        rec[o++] = (uint8_t)(k >> 8);
        rec[o++] = (uint8_t)k;
        memcpy(rec + o, hs + i, k);
        o += k;
    }
    int rc2 = pt_clienthello_parse(rec, o, scratch2, &ch2);
    size_t whole = n + 5 * ((n + frag - 1) / frag);
    if (whole <= PT_CLIENTHELLO_MAX) {
        PT_ASSERT(o == whole && rc2 == (int)o);
        check_out(&ch2, scratch2, rc2);
        PT_ASSERT(same(&ch, &ch2));
    } else {
        PT_ASSERT(rc2 == PT_ETOOBIG);
    }
    return 0;
}
