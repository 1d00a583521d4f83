/*
 * test_secret.c - secret_load (common/secret.c): its sources in order, the
 * first-run generation, the master's hand-over to its workers, and that the
 * key does not stay in the environment once read (issue 11).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"
#include "testdir.h"

static const char SECRET32[] = "0123456789abcdef0123456789abcdef";
static const char *const vars[] = {SECRET_ENV, SECRET_FILE_ENV, SECRET_FD_ENV,
                                   "CREDENTIALS_DIRECTORY"};
static char dir[4096];

static void base_setup(void) { testdir_create("secret"); }
static void base_teardown(void) { testdir_remove(); }

static void setup(void)
{
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    snprintf(dir, sizeof dir, "%s/t-XXXXXX", testdir_path());
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    testdir_remove_tree(dir);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

static void expect_key(enum secret_mode mode, const char *key)
{
    struct secret s;
    char err[512];
    ck_assert_msg(secret_load(dir, mode, &s, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(s.len, strlen(key));
    ck_assert(memcmp(s.bytes, key, s.len) == 0);
    secret_free(&s);
    ck_assert_ptr_null(s.bytes);
}

static void expect_refusal(enum secret_mode mode, const char *must_mention)
{
    struct secret s;
    char err[512] = "";
    ck_assert_int_eq(secret_load(dir, mode, &s, err, sizeof err), -1);
    ck_assert_msg(strstr(err, must_mention) != NULL, "'%s' does not mention '%s'", err,
                  must_mention);
    ck_assert_ptr_null(s.bytes);
}

START_TEST(test_environment_is_scrubbed_once_read)
{
    setenv(SECRET_ENV, SECRET32, 1);
    char *value = getenv(SECRET_ENV);
    expect_key(SECRET_READ, SECRET32);
    ck_assert_ptr_null(getenv(SECRET_ENV));
    /* The bytes themselves are gone, "JWT_SECRET_KEY=" included, not only
     * the pointer to them: that is what /proc/PID/environ shows. */
    const char *entry = value - strlen(SECRET_ENV "=");
    for (size_t i = 0; i < strlen(SECRET_ENV "=") + sizeof SECRET32 - 1; i++)
        ck_assert_int_eq(entry[i], 0);
    /* A refused (short) key is scrubbed too, and never quoted. */
    setenv(SECRET_ENV, "short-key", 1);
    expect_refusal(SECRET_READ, "JWT_SECRET_KEY is 9 bytes; at least 32 are required");
    ck_assert_ptr_null(getenv(SECRET_ENV));
    /* For the publisher, which never loads it. */
    setenv(SECRET_ENV, SECRET32, 1);
    secret_scrub_environment();
    ck_assert_ptr_null(getenv(SECRET_ENV));
}
END_TEST

START_TEST(test_sources_in_order)
{
    char runtime[4200], creds[4200], file[4200];
    snprintf(runtime, sizeof runtime, "%s/jwt-secret", dir);
    snprintf(creds, sizeof creds, "%s/creds", dir);
    ck_assert_int_eq(mkdir(creds, 0700), 0);
    snprintf(file, sizeof file, "%s/key.txt", dir);

    write_file(runtime, "runtime-runtime-runtime-runtime-runtime\n");
    expect_key(SECRET_READ, "runtime-runtime-runtime-runtime-runtime");

    /* systemd's LoadCredential=jwt-secret; a credentials directory without
     * one falls through to the runtime file. */
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    expect_key(SECRET_READ, "runtime-runtime-runtime-runtime-runtime");
    strcat(creds, "/jwt-secret");
    write_file(creds, "credential-credential-credential-credential\n");
    expect_key(SECRET_READ, "credential-credential-credential-credential");

    setenv(SECRET_FILE_ENV, file, 1);
    expect_refusal(SECRET_READ, file); /* named, but missing: no fall-through */
    write_file(file, "file-file-file-file-file-file-file-file\r\n");
    expect_key(SECRET_READ, "file-file-file-file-file-file-file-file");
    write_file(file, "short\n");
    expect_refusal(SECRET_READ, "at least 32");

    setenv(SECRET_ENV, SECRET32, 1);
    expect_key(SECRET_READ, SECRET32);
}
END_TEST

START_TEST(test_generated_on_first_run_only)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/jwt-secret", dir);
    expect_refusal(SECRET_READ, path); /* the token tool never generates */
    ck_assert_int_eq(access(path, F_OK), -1);

    struct secret a, b;
    char err[512];
    ck_assert_msg(secret_load(dir, SECRET_READ_OR_GENERATE, &a, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(a.len, 64);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* The next start, and the token tool, read the same key. */
    ck_assert_int_eq(secret_load(dir, SECRET_READ_OR_GENERATE, &b, err, sizeof err), 0);
    ck_assert_uint_eq(b.len, a.len);
    ck_assert(memcmp(a.bytes, b.bytes, a.len) == 0);
    secret_free(&b);
    expect_key(SECRET_READ, (const char *)a.bytes);
    secret_free(&a);
}
END_TEST

START_TEST(test_hand_over_to_a_worker)
{
    setenv(SECRET_ENV, SECRET32, 1);
    struct secret master;
    char err[512];
    ck_assert_int_eq(secret_load(dir, SECRET_READ, &master, err, sizeof err), 0);
    ck_assert_int_eq(secret_hand_over(&master, err, sizeof err), 0);
    const char *v = getenv(SECRET_FD_ENV);
    ck_assert_ptr_nonnull(v);
    int fd = atoi(v);
    /* The hand-over is sealed: nobody can change the key under the pool. */
    ck_assert_int_eq(write(fd, "x", 1), -1);
    int copy = dup(fd); /* what the master keeps for the next worker */
    ck_assert_int_ge(copy, 0);
    /* In the worker: read, then the descriptor and the variable are gone. */
    expect_key(SECRET_READ, SECRET32);
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
    ck_assert_ptr_null(getenv(SECRET_FD_ENV));
    close(copy);
    secret_free(&master);

    setenv(SECRET_FD_ENV, "nonsense", 1);
    expect_refusal(SECRET_READ, SECRET_FD_ENV);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("secret");
    TCase *tc = tcase_create("load");
    tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_environment_is_scrubbed_once_read);
    tcase_add_test(tc, test_sources_in_order);
    tcase_add_test(tc, test_generated_on_first_run_only);
    tcase_add_test(tc, test_hand_over_to_a_worker);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
