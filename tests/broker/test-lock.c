/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One ballastd per host: the lock itself, and a second ballastd started while
 * the lock is held exits 1 with one line and touches nothing (its control
 * socket is never created).
 */
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lock.h"

static void test_lock_twice(void)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *dir = g_dir_make_tmp("ballast-lock-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "sub", "ballastd.lock", NULL);
    g_autofree char *sub = g_path_get_dirname(path);
    g_autofree char *want = NULL;
    int fd, fd2;

    fd = lock_acquire(path, &e);
    g_assert_no_error(e);
    g_assert_cmpint(fd, >=, 0);
    /* flock locks belong to the open file: a second open conflicts even in
     * the same process, as a second ballastd would. */
    fd2 = lock_acquire(path, &e);
    g_assert_cmpint(fd2, ==, -1);
    g_assert_error(e, G_FILE_ERROR, G_FILE_ERROR_EXIST);
    want =
        g_strdup_printf("another ballastd (pid %d) is running: %s is locked", (int)getpid(), path);
    g_assert_cmpstr(e->message, ==, want);
    g_clear_error(&e);

    lock_release(fd);
    fd2 = lock_acquire(path, &e);
    g_assert_no_error(e);
    g_assert_cmpint(fd2, >=, 0);
    lock_release(fd2);
    g_unlink(path);
    g_rmdir(sub);
    g_rmdir(dir);
}

static void test_second_ballastd(void)
{
    const char *ballastd = g_getenv("BALLASTD");
    g_autoptr(GError) e = NULL;
    g_autofree char *dir = g_dir_make_tmp("ballast-lock-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "ballastd.lock", NULL);
    g_autofree char *sock = g_build_filename(dir, "ctl.sock", NULL);
    g_autofree char *conf = g_build_filename(dir, "ballastd.conf", NULL);
    g_autofree char *out = NULL, *err = NULL;
    int status = 0;

    g_assert_nonnull(ballastd);
    g_assert_true(g_file_set_contents(conf, "", 0, NULL));
    int fd = lock_acquire(path, &e);
    g_assert_no_error(e);

    const char *argv[] = {ballastd,    "--connect", "test:///default", "--config", conf,
                          "--control", sock,        "--lock-file",     path,       NULL};
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &status, &e));
    g_assert_no_error(e);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    g_autofree char *want = g_strdup_printf(
        "ballastd: another ballastd (pid %d) is running: %s is locked\n", (int)getpid(), path);
    g_assert_cmpstr(err, ==, want);
    g_assert_false(g_file_test(sock, G_FILE_TEST_EXISTS));

    lock_release(fd);
    g_unlink(path);
    g_unlink(conf);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lock/twice", test_lock_twice);
    g_test_add_func("/lock/second-ballastd", test_second_ballastd);
    return g_test_run();
}
