#include <criterion/criterion.h>

#include "common/dname.h"
#include "tests/unit/guard.h"

#define W PT_DNAME_ALLOW_WILDCARD
#define P PT_DNAME_STRIP_PORT

/* Runs the normaliser on a copy of <in> that ends at a guard page, so an
 * over-read crashes instead of passing. Returns the result; <out> holds the
 * output. */
static int normalize(const char *in, size_t len, char *out, unsigned flags,
                     const char **why)
{
    struct pt_guard g;
    const char *copy = (const char *)pt_guard_copy(&g, in, len);
    int rc = pt_dname_normalize(copy, len, out, flags, why);
    pt_guard_release(&g);
    return rc;
}

struct ok_case {
    const char *in;
    unsigned flags;
    const char *out;
};

static const struct ok_case accepted[] = {
    {"example.org", 0, "example.org"},
    {"Cloud.Example.ORG", 0, "cloud.example.org"},
    {"example.org.", 0, "example.org"},
    {"EXAMPLE.ORG.", 0, "example.org"},
    {"localhost", 0, "localhost"},
    {"a", 0, "a"},
    {"a-b.example", 0, "a-b.example"},
    {"a--b.example", 0, "a--b.example"}, /* "--" elsewhere than 3-4 is fine */
    {"123.example", 0, "123.example"},
    {"1.2.3.4", 0, "1.2.3.4"}, /* dname does not judge; addr refuses these */
    {"xn--bcher-kva.example", 0, "xn--bcher-kva.example"},
    {"XN--Bcher-KVA.example", 0, "xn--bcher-kva.example"},
    {"a.xn--p1ai", 0, "a.xn--p1ai"},
    {"*.example.org", W, "*.example.org"},
    {"*.Example.ORG.", W, "*.example.org"},
    {"*.a.b.c", W, "*.a.b.c"},
    {"*", W, "*"},
    {"*.", W, "*"},
    {"example.org", W, "example.org"},
    {"Example.org:8080", P, "example.org"},
    {"example.org:", P, "example.org"},
    {"example.org.:443", P, "example.org"},
    {"example.org", P, "example.org"},
    {"localhost:80", P, "localhost"},
    {"*.example.org:80", W | P, "*.example.org"},
};

Test(dname, accepted)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(accepted); i++) {
        const struct ok_case *c = &accepted[i];
        char out[PT_DNAME_MAX + 1];
        const char *why = NULL;
        int rc = normalize(c->in, strlen(c->in), out, c->flags, &why);
        cr_expect_eq(rc, (int)strlen(c->out), "%s: rc %d (%s)", c->in, rc,
                     why ? why : "-");
        if (rc >= 0) {
            cr_expect_str_eq(out, c->out, "%s", c->in);
            cr_expect_eq(strlen(out), (size_t)rc, "%s: NUL at length", c->in);
        }
    }
}

struct bad_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    unsigned flags;
    const char *why; /* substring of the message */
};

static const struct bad_case refused[] = {
    {"", 0, 0, "empty"},
    {".", 0, 0, "empty"},
    {"..", 0, 0, "empty label"},
    {"example.org..", 0, 0, "empty label"},
    {".example.org", 0, 0, "empty label"},
    {"a..b", 0, 0, "empty label"},
    {"a b.org", 0, 0, "invalid character"},
    {"a_b.org", 0, 0, "invalid character"},
    {"a/b.org", 0, 0, "invalid character"},
    {"a\0b.org", 7, 0, "invalid character"},
    {"caf\xc3\xa9.example", 0, 0, "punycode"},
    {"\x80", 0, 0, "punycode"},
    {"-a.org", 0, 0, "'-'"},
    {"a-.org", 0, 0, "'-'"},
    {"a.org-", 0, 0, "'-'"},
    {"a.-", 0, 0, "'-'"},
    {"ab--cd.org", 0, 0, "xn--"},
    {"XY--cd.org", 0, 0, "xn--"},
    {"xn--", 0, 0, "'-'"},
    {"*", 0, 0, "wildcard"},
    {"*.example.org", 0, 0, "wildcard"},
    {"*.org", 0, W, "two labels"},
    {"*.org.", 0, W, "two labels"},
    {"*.", 0, 0, "wildcard"},
    {"a.*.org", 0, W, "whole first label"},
    {"a.*", 0, W, "whole first label"},
    {"**.example.org", 0, W, "whole first label"},
    {"*a.example.org", 0, W, "whole first label"},
    {"a*.example.org", 0, W, "whole first label"},
    {"*..example.org", 0, W, "empty label"},
    {"example.org:80", 0, 0, "invalid character"},
    {"[::1]:80", 0, P, "IPv6"},
    {"[::1]", 0, P, "IPv6"},
    {"example.org:80x", 0, P, "port"},
    {"example.org:80:90", 0, P, "port"},
    {"example.org:-1", 0, P, "port"},
    {":80", 0, P, "empty"},
};

Test(dname, refused)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(refused); i++) {
        const struct bad_case *c = &refused[i];
        size_t len = c->len ? c->len : strlen(c->in);
        char out[PT_DNAME_MAX + 1];
        const char *why = NULL;
        int rc = normalize(c->in, len, out, c->flags, &why);
        cr_expect_eq(rc, PT_EMALFORMED, "%s: accepted as \"%s\"", c->in, out);
        cr_expect(why != NULL && strstr(why, c->why) != NULL,
                  "%s: message \"%s\", want \"%s\"", c->in, why ? why : "(null)", c->why);
        cr_expect_eq(out[0], '\0', "%s: output not cleared", c->in);
        /* why may be NULL */
        cr_expect_eq(normalize(c->in, len, out, c->flags, NULL), PT_EMALFORMED);
    }
}

/* <n> bytes of 'a' split into labels of at most <label> bytes. */
static size_t make_name(char *buf, size_t n, size_t label)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (run == label && i + 1 < n) {
            buf[i] = '.';
            run = 0;
        } else {
            buf[i] = 'a';
            run++;
        }
    }
    buf[n] = '\0';
    return n;
}

Test(dname, label_length)
{
    char in[128], out[PT_DNAME_MAX + 1];
    const char *why = NULL;

    memset(in, 'a', 63);
    memcpy(in + 63, ".org", 5);
    cr_expect_eq(normalize(in, strlen(in), out, 0, &why), 67);
    cr_expect_str_eq(out, in);

    memset(in, 'a', 64);
    memcpy(in + 64, ".org", 5);
    cr_expect_eq(normalize(in, strlen(in), out, 0, &why), PT_EMALFORMED);
    cr_expect_str_eq(why, "label longer than 63 bytes");

    /* a 64-byte last label, and a 64-byte wildcard suffix label */
    memcpy(in, "org.", 4);
    memset(in + 4, 'a', 64);
    in[68] = '\0';
    cr_expect_eq(normalize(in, strlen(in), out, 0, &why), PT_EMALFORMED);
    in[67] = '\0';
    cr_expect_eq(normalize(in, strlen(in), out, 0, &why), 67);
}

Test(dname, total_length)
{
    char in[300], out[PT_DNAME_MAX + 1];
    const char *why = NULL;

    size_t n = make_name(in, 253, 63);
    cr_expect_eq(normalize(in, n, out, 0, &why), 253);
    cr_expect_str_eq(out, in);

    /* 253 plus the root dot is still 253 */
    in[253] = '.';
    cr_expect_eq(normalize(in, 254, out, 0, &why), 253);

    n = make_name(in, 254, 63);
    cr_expect_eq(normalize(in, n, out, 0, &why), PT_EMALFORMED);
    cr_expect_str_eq(why, "host name longer than 253 bytes");

    /* a wildcard counts its "*." */
    in[0] = '*';
    in[1] = '.';
    make_name(in + 2, 251, 63);
    cr_expect_eq(normalize(in, 253, out, W, &why), 253);
    make_name(in + 2, 252, 63);
    cr_expect_eq(normalize(in, 254, out, W, &why), PT_EMALFORMED);

    /* single-byte labels: the most labels a name can have */
    n = make_name(in, 253, 1);
    cr_expect_eq(normalize(in, n, out, 0, &why), 253);

    /* the port does not count against the name */
    n = make_name(in, 253, 63);
    memcpy(in + n, ":65535", 7);
    cr_expect_eq(normalize(in, n + 6, out, P, &why), 253);
}

/* Every byte value alone in a label: only LDH (and case) pass. */
Test(dname, every_byte)
{
    for (int b = 0; b < 256; b++) {
        char in[] = {'a', (char)b, 'a', '.', 'o', 'r', 'g'};
        char out[PT_DNAME_MAX + 1];
        int rc = normalize(in, sizeof(in), out, W | P, NULL);
        bool ok = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                  (b >= '0' && b <= '9') || b == '-';
        /* '.' makes two labels, ':' starts an (invalid) port */
        if (b == '.')
            ok = true;
        cr_expect_eq(rc >= 0, ok, "byte 0x%02x: rc %d", b, rc);
        if (rc >= 0 && b >= 'A' && b <= 'Z')
            cr_expect_eq(out[1], b + 32);
    }
}

/* Output is a fixed point: normalising it again changes nothing. */
Test(dname, idempotent)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(accepted); i++) {
        char out[PT_DNAME_MAX + 1], again[PT_DNAME_MAX + 1];
        int rc = normalize(accepted[i].in, strlen(accepted[i].in), out,
                           accepted[i].flags, NULL);
        cr_assert_geq(rc, 0);
        int rc2 = normalize(out, (size_t)rc, again, accepted[i].flags, NULL);
        cr_expect_eq(rc2, rc, "%s", accepted[i].in);
        cr_expect_str_eq(again, out);
    }
}

/* Every prefix of valid inputs must be handled within its bounds (the guard
 * page catches a read past len). */
Test(dname, prefixes)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(accepted); i++) {
        const char *in = accepted[i].in;
        for (size_t len = 0; len <= strlen(in); len++) {
            char out[PT_DNAME_MAX + 1];
            int rc = normalize(in, len, out, accepted[i].flags, NULL);
            cr_expect(rc == PT_EMALFORMED || (rc >= 0 && (size_t)rc <= len));
        }
    }
}
