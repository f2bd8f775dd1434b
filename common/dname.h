/* Domain names as routes use them: validation and normalisation.
 *
 * Route names come from the API ("cloud.example.org", "*.example.org", "*"),
 * lookup keys from the network (SNI, Host header). Both are reduced to one
 * form: lowercase ASCII, no trailing dot, LDH labels. IDNs must be given in
 * punycode (xn--...). Pure functions over (buf, len). */
#ifndef PT_DNAME_H
#define PT_DNAME_H

#include "common/pt.h"

#define PT_DNAME_MAX 253

enum pt_dname_flags {
    PT_DNAME_ALLOW_WILDCARD = 1 << 0, /* accept "*.suffix" and the lone "*" */
    PT_DNAME_STRIP_PORT = 1 << 1,     /* Host header: drop ":port" (and "[v6]"
                                         literals are refused: no route has one) */
};

/* Validates <in>[0..len) and writes its normal form (lowercase, one trailing
 * dot removed) NUL-terminated into <out> (>= PT_DNAME_MAX + 1 bytes).
 * Rules: labels of 1..63 bytes of [a-z0-9-], not starting or ending with '-';
 * total <= 253; at least one label; with PT_DNAME_ALLOW_WILDCARD a leading
 * "*." label followed by at least two labels, or "*" alone ("*.org" is refused
 * as too broad); a label with "--" at positions 3-4 must start "xn--". A
 * single-label name ("localhost") is accepted. Any byte >= 0x80 is refused
 * with a hint to use punycode. Returns the output length, or PT_EMALFORMED
 * with *why set to a static message. <why> may be NULL. */
int pt_dname_normalize(const char *in, size_t len, char *out, unsigned flags,
                       const char **why);

#endif
