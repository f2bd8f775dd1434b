#include "common/pt.h"

#include <time.h>

const char *pt_strerror(int err)
{
    switch (err) {
    case PT_OK:
        return "ok";
#define PT_ERR_STR(name, val, msg)                                             \
    case PT_##name:                                                            \
        return msg;
        PT_ERR_MAP(PT_ERR_STR)
#undef PT_ERR_STR
    }
    return "unknown error";
}

_Noreturn void pt_panic(const char *file, int line, const char *what)
{
    fprintf(stderr, "portier: BUG at %s:%d: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

void *pt_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        pt_panic(__FILE__, __LINE__, "out of memory");
    return p;
}

void *pt_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        pt_panic(__FILE__, __LINE__, "out of memory");
    return p;
}

void *pt_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        pt_panic(__FILE__, __LINE__, "out of memory");
    return q;
}

char *pt_xstrdup(const char *s)
{
    return pt_xstrndup(s, strlen(s));
}

char *pt_xstrndup(const char *s, size_t n)
{
    char *p = pt_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

uint64_t pt_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
