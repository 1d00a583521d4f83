#include "testdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char testdir[2048];

static int testdir_remove_entry(const char *path, const struct stat *sb, int flag,
                                struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void testdir_create(const char *label)
{
    const char *base = getenv("TMPDIR");
    snprintf(testdir, sizeof testdir, "%s/orders-%s-XXXXXX",
             base && base[0] ? base : "/tmp", label);
    if (mkdtemp(testdir) == NULL) {
        perror("mkdtemp");
        exit(EXIT_FAILURE);
    }
}

void testdir_remove_tree(const char *path)
{
    nftw(path, testdir_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

void testdir_remove(void)
{
    testdir_remove_tree(testdir);
}

const char *testdir_path(void)
{
    return testdir;
}
