/*
 * testdir.h - the temporary directory of one unit-test runner.
 *
 * Made and removed by the runner's parent (an unchecked fixture), so that a
 * failing test, whose checked teardown does not run when Check forks, still
 * leaves nothing behind.
 */
#ifndef ORDERS_TEST_TESTDIR_H
#define ORDERS_TEST_TESTDIR_H

/* Creates $TMPDIR/orders-<label>-XXXXXX; exits the runner on failure. */
void testdir_create(const char *label);
/* Removes it and everything below it. */
void testdir_remove(void);
/* Removes path and everything below it. */
void testdir_remove_tree(const char *path);
/* Its path. */
const char *testdir_path(void);

#endif
