/* Test helper: bytes made printable for assertion messages (\r, \n, \t and
 * \xNN for the other controls and non-ASCII), so a failing HTTP case shows
 * exactly which byte it was about. */
#ifndef PT_TEST_ESC_H
#define PT_TEST_ESC_H

#include <stdint.h>
#include <stdio.h>

/* Printable form of <s>[0..n) for messages (\r, \n, \0, \xNN), truncated. */
static inline const char *esc(const void *s, size_t n)
{
    static char out[4][600];
    static unsigned turn;
    char *o = out[turn++ % 4];
    size_t k = 0;
    const uint8_t *p = s;
    for (size_t i = 0; i < n && k < sizeof(out[0]) - 8; i++) {
        uint8_t c = p[i];
        if (c == '\r')
            k += (size_t)snprintf(o + k, 8, "\\r");
        else if (c == '\n')
            k += (size_t)snprintf(o + k, 8, "\\n");
        else if (c == '\t')
            k += (size_t)snprintf(o + k, 8, "\\t");
        else if (c < 0x20 || c >= 0x7f)
            k += (size_t)snprintf(o + k, 8, "\\x%02x", c);
        else
            o[k++] = (char)c;
    }
    if (k >= sizeof(out[0]) - 8)
        k += (size_t)snprintf(o + k, 8, "...");
    o[k] = '\0';
    return o;
}

#endif
