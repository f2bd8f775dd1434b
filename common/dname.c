#include "common/dname.h"

/* One label of an LDH name. <p>[0..n) is already lowercase. */
static const char *check_label(const char *p, size_t n)
{
    if (n == 0)
        return "empty label in host name";
    if (n > 63)
        return "label longer than 63 bytes";
    if (p[0] == '-' || p[n - 1] == '-')
        return "label starts or ends with '-'";
    /* RFC 5891 4.2.3.1: "--" in positions 3-4 is reserved for A-labels, so
     * anything but xn-- there is a future IDNA prefix nobody can route yet. */
    if (n >= 4 && p[2] == '-' && p[3] == '-' && !(p[0] == 'x' && p[1] == 'n'))
        return "'--' in positions 3-4 is reserved for xn-- labels";
    return NULL;
}

/* Drops ":port" from a Host header value. Host = uri-host [":" port] and
 * port = *DIGIT (RFC 9110), so an empty port is legal; anything else after
 * the colon is not a port and the whole value is refused. */
static int strip_port(const char *in, size_t *len, const char **why)
{
    if (*len > 0 && in[0] == '[') {
        *why = "IPv6 literal has no route";
        return PT_EMALFORMED;
    }
    const char *colon = memchr(in, ':', *len);
    if (colon == NULL)
        return 0;
    for (const char *p = colon + 1; p < in + *len; p++) {
        if (*p < '0' || *p > '9') {
            *why = "invalid port in host name";
            return PT_EMALFORMED;
        }
    }
    *len = (size_t)(colon - in);
    return 0;
}

int pt_dname_normalize(const char *in, size_t len, char *out, unsigned flags,
                       const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    out[0] = '\0';

    if (flags & PT_DNAME_STRIP_PORT) {
        if (strip_port(in, &len, why) != 0)
            return PT_EMALFORMED;
    }
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0) {
        *why = "empty host name";
        return PT_EMALFORMED;
    }
    if (len > PT_DNAME_MAX) {
        *why = "host name longer than 253 bytes";
        return PT_EMALFORMED;
    }

    size_t start = 0; /* where the current label starts in <in> and <out> */
    if (in[0] == '*' && (flags & PT_DNAME_ALLOW_WILDCARD)) {
        if (len == 1) {
            out[0] = '*';
            out[1] = '\0';
            return 1;
        }
        if (in[1] != '.') {
            *why = "wildcard must be the whole first label";
            return PT_EMALFORMED;
        }
        out[0] = '*';
        out[1] = '.';
        start = 2;
    }

    size_t labels = 0;
    for (size_t i = start; i <= len; i++) {
        if (i == len || in[i] == '.') {
            const char *msg = check_label(out + start, i - start);
            if (msg != NULL) {
                *why = msg;
                out[0] = '\0';
                return PT_EMALFORMED;
            }
            labels++;
            if (i < len)
                out[i] = '.';
            start = i + 1;
            continue;
        }
        unsigned char c = (unsigned char)in[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            if (c >= 0x80)
                *why = "non-ASCII host name: write IDNs as punycode (xn--...)";
            else if (c == '*')
                *why = (flags & PT_DNAME_ALLOW_WILDCARD)
                           ? "wildcard must be the whole first label"
                           : "wildcard not allowed here";
            else
                *why = "invalid character in host name";
            out[0] = '\0';
            return PT_EMALFORMED;
        }
        out[i] = (char)c;
    }
    /* "*.org" would capture a whole TLD: almost certainly a typo for a
     * domain, and never something one certificate could serve. */
    if (out[0] == '*' && labels < 2) {
        *why = "wildcard needs at least two labels after \"*.\"";
        out[0] = '\0';
        return PT_EMALFORMED;
    }
    out[len] = '\0';
    return (int)len;
}
