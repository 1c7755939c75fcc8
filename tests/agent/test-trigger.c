/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PSI trigger handling, driven by a fake trigger fd (eventfd, pipe). */
#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "trigger.h"

static char *data_dir(const char *tree)
{
    return g_build_filename(g_getenv("BALLAST_TEST_DATA"), tree, NULL);
}

static void count_fired(gpointer data)
{
    (*(guint *)data)++;
}

static void test_params(void)
{
    BlPsiTrigger p = {BL_PSI_SOME, 100000, 1000000};
    char buf[64];

    g_assert_true(trigger_params_valid(&p));
    g_assert_true(trigger_format(&p, buf, sizeof(buf)));
    g_assert_cmpstr(buf, ==, "some 100000 1000000");
    p.kind = BL_PSI_FULL;
    g_assert_true(trigger_format(&p, buf, sizeof(buf)));
    g_assert_cmpstr(buf, ==, "full 100000 1000000");
    g_assert_false(trigger_format(&p, buf, 8));
    p.window_us = BL_PROTO_PSI_WINDOW_MIN_US - 1;
    g_assert_false(trigger_params_valid(&p));
    p.window_us = BL_PROTO_PSI_WINDOW_MAX_US + 1;
    g_assert_false(trigger_params_valid(&p));
    p.window_us = 1000000;
    p.stall_us = 0;
    g_assert_false(trigger_params_valid(&p));
    p.stall_us = 1000001;
    g_assert_false(trigger_params_valid(&p));
    p.stall_us = 1000000;
    p.kind = (BlPsiKind)7;
    g_assert_false(trigger_params_valid(&p));
}

/* Each write to the fake fd fires the callback once; nothing fires in between. */
static void test_fake_fd(void)
{
    guint fired = 0;
    g_autoptr(Trigger) t = trigger_new(count_fired, &fired);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    guint64 one = 1;

    g_assert_cmpint(efd, >=, 0);
    trigger_attach_fd(t, efd, G_IO_IN);
    g_assert_true(trigger_armed(t));
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    g_assert_cmpuint(fired, ==, 0);
    for (guint i = 1; i <= 3; i++) {
        g_assert_cmpint(write(efd, &one, sizeof(one)), ==, sizeof(one));
        g_main_context_iteration(NULL, TRUE);
        while (g_main_context_iteration(NULL, FALSE)) {
        }
        g_assert_cmpuint(fired, ==, i); /* drained: level-triggered fd does not refire */
        g_assert_cmpuint(trigger_fired_count(t), ==, i);
    }
    trigger_disarm(t);
    g_assert_false(trigger_armed(t));
    /* after disarm, nothing is watched (the eventfd was closed) */
    g_assert_false(g_main_context_iteration(NULL, FALSE));
}

/* An fd in error (like a PSI fd whose trigger is gone) disarms instead of spinning. */
static void test_error_disarms(void)
{
    guint fired = 0;
    g_autoptr(Trigger) t = trigger_new(count_fired, &fired);
    int p[2];

    g_assert_cmpint(pipe(p), ==, 0);
    trigger_attach_fd(t, p[0], G_IO_PRI);
    close(p[1]); /* reader gets POLLHUP */
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "PSI trigger failed*");
    g_main_context_iteration(NULL, TRUE);
    g_test_assert_expected_messages();
    g_assert_false(trigger_armed(t));
    g_assert_cmpuint(fired, ==, 0);
    g_assert_false(g_main_context_iteration(NULL, FALSE));
}

/* A fixture tree's pressure file is not procfs: never written to. */
static void test_fixture_not_supported(void)
{
    g_autofree char *root = data_dir("guest-1002-bound");
    g_autofree char *file = g_build_filename(root, "proc", "pressure", "memory", NULL);
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;
    g_autoptr(Trigger) t = trigger_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    BlPsiTrigger p = {BL_PSI_SOME, 100000, 1000000};

    g_assert_true(g_file_get_contents(file, &before, NULL, NULL));
    g_assert_false(trigger_supported(root));
    g_assert_false(trigger_arm_psi(t, root, &p, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSYS);
    g_assert_false(trigger_armed(t));
    g_assert_true(g_file_get_contents(file, &after, NULL, NULL));
    g_assert_cmpstr(before, ==, after);
    g_clear_error(&error);
    p.window_us = 1;
    g_assert_false(trigger_arm_psi(t, root, &p, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
}

/* The real kernel accepts what trigger_arm_psi writes (where PSI exists and we may). */
static void test_real_psi(void)
{
    g_autoptr(Trigger) t = trigger_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    BlPsiTrigger p = {BL_PSI_SOME, 150000, 1000000};

    if (!trigger_supported("/")) {
        g_test_skip("no /proc/pressure/memory on procfs here");
        return;
    }
    if (!trigger_arm_psi(t, "/", &p, &error)) {
        if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_PERM)) {
            g_test_skip("not allowed to create PSI triggers");
            return;
        }
        g_assert_no_error(error);
    }
    g_assert_true(trigger_armed(t));
    /* no memory stall here: nothing fires, nothing spins */
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    g_assert_true(trigger_armed(t));
    trigger_disarm(t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/trigger/params", test_params);
    g_test_add_func("/trigger/fake-fd", test_fake_fd);
    g_test_add_func("/trigger/error-disarms", test_error_disarms);
    g_test_add_func("/trigger/fixture-not-supported", test_fixture_not_supported);
    g_test_add_func("/trigger/real-psi", test_real_psi);
    return g_test_run();
}
