/* Test helper: a scratch directory per test, removed with what the test
 * left in it (the test's .fini), so a failed assertion leaves no litter. */
#ifndef PT_TEST_TMPDIR_H
#define PT_TEST_TMPDIR_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>

static inline int pt_tmpdir_rm_one(const char *path, const struct stat *st, int flag,
                            struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Makes /tmp/pt-<tag>-XXXXXX in dir[0..size). */
static inline void pt_tmpdir_make(char *dir, size_t size, const char *tag)
{
    snprintf(dir, size, "/tmp/pt-%s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(dir));
}

/* Removes <dir> and everything below it; "" is fine. */
static inline void pt_tmpdir_remove(const char *dir)
{
    if (dir[0])
        nftw(dir, pt_tmpdir_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
