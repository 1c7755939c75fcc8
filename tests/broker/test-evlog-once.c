/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of evlog-once: repeated lines said once, then once per interval. */
#include <glib.h>

#include "evlog-once.h"

#define SEC ((gint64)1000000)
#define T0  (1000 * SEC)

static void test_due(void)
{
    g_autoptr(EvlogOnce) o = evlog_once_new(60 * SEC);

    g_assert_true(evlog_once_due(o, "host reserve unmet: # MiB short", T0));
    g_assert_false(evlog_once_due(o, "host reserve unmet: # MiB short", T0 + SEC));
    /* another key is its own */
    g_assert_true(evlog_once_due(o, "vm1: agent reporting again", T0 + SEC));
    g_assert_false(evlog_once_due(o, "host reserve unmet: # MiB short", T0 + 59 * SEC));
    /* once per interval while it keeps coming */
    g_assert_true(evlog_once_due(o, "host reserve unmet: # MiB short", T0 + 60 * SEC));
    g_assert_false(evlog_once_due(o, "host reserve unmet: # MiB short", T0 + 61 * SEC));
}

static void test_expire(void)
{
    g_autoptr(EvlogOnce) o = evlog_once_new(60 * SEC);

    g_assert_true(evlog_once_due(o, "a", T0));
    g_assert_true(evlog_once_due(o, "b", T0));
    g_assert_false(evlog_once_due(o, "b", T0 + 50 * SEC));
    /* "a" was gone for longer than the interval: forgotten, said again when back */
    evlog_once_expire(o, T0 + 70 * SEC);
    g_assert_true(evlog_once_due(o, "a", T0 + 71 * SEC));
    /* "b" was seen 20 s ago: kept; last said at T0, so due again now */
    g_assert_true(evlog_once_due(o, "b", T0 + 71 * SEC));
    g_assert_false(evlog_once_due(o, "b", T0 + 72 * SEC));
}

static void test_changed(void)
{
    g_autofree char *last = NULL;

    g_assert_false(evlog_once_changed(&last, NULL));
    g_assert_false(evlog_once_changed(&last, "")); /* "" is nothing too */
    g_assert_true(evlog_once_changed(&last, "no such channel"));
    g_assert_cmpstr(last, ==, "no such channel");
    g_assert_false(evlog_once_changed(&last, "no such channel"));
    g_assert_true(evlog_once_changed(&last, "permission denied"));
    g_assert_true(evlog_once_changed(&last, ""));
    g_assert_null(last);
    g_assert_true(evlog_once_changed(&last, "no such channel"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/evlog-once/due", test_due);
    g_test_add_func("/evlog-once/expire", test_expire);
    g_test_add_func("/evlog-once/changed", test_changed);
    return g_test_run();
}
