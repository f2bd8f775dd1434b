/* portier: the few things every module shares.
 *
 * One error enum (built from PT_ERR_MAP, libuv style): functions return 0 or a
 * negative enum pt_err; parsers of untrusted bytes return the number of bytes
 * they consumed, PT_ENEEDMORE or PT_EMALFORMED. PT_FREE frees and clears. The
 * string functions that cannot be bounded are poisoned so they do not build. */
#ifndef PT_PT_H
#define PT_PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PT_VERSION "0.1.0"

#define PT_ERR_MAP(XX)                                                         \
    XX(ENEEDMORE, -1, "need more input")                                       \
    XX(EMALFORMED, -2, "malformed input")                                      \
    XX(ETOOBIG, -3, "too large")                                               \
    XX(ENOMEM, -4, "out of memory")                                            \
    XX(EINVAL, -5, "invalid argument")                                         \
    XX(ENOTFOUND, -6, "not found")                                             \
    XX(ECONFLICT, -7, "conflict")                                              \
    XX(EIO, -8, "I/O error")                                                   \
    XX(EDB, -9, "database error")                                              \
    XX(ETIMEOUT, -10, "timed out")                                             \
    XX(ECLOSED, -11, "connection closed")                                      \
    XX(EVERSION, -12, "unsupported version")                                   \
    XX(EINUSE, -13, "in use")

enum pt_err {
    PT_OK = 0,
#define PT_ERR_GEN(name, val, msg) PT_##name = (val),
    PT_ERR_MAP(PT_ERR_GEN)
#undef PT_ERR_GEN
};

/* Returns a static string for <err> (0 or a negative enum pt_err). */
const char *pt_strerror(int err);

#define PT_FREE(p)                                                             \
    do {                                                                       \
        free(p);                                                               \
        (p) = NULL;                                                            \
    } while (0)

#define PT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Invariant checks that stay in release builds: a broken invariant is a bug
 * and the process must not go on with corrupt state. */
#define PT_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            pt_panic(__FILE__, __LINE__, #cond);                               \
    } while (0)

_Noreturn void pt_panic(const char *file, int line, const char *what);

/* Allocation that dies on failure: out of memory is a policy (as in h2o),
 * not an error path threaded through every caller. */
void *pt_xmalloc(size_t n);
void *pt_xcalloc(size_t n, size_t size);
void *pt_xrealloc(void *p, size_t n);
char *pt_xstrdup(const char *s);
char *pt_xstrndup(const char *s, size_t n);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t pt_mono_us(void);

/* The value of hex digit <c> (either case), or -1. */
static inline int pt_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

#pragma GCC poison strcpy strcat sprintf vsprintf gets

#endif
