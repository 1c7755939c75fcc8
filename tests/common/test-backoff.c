/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for common/backoff: the waits, their cap, reset, and time passed in. */
#include <glib.h>

#include "backoff.h"

#define MS ((gint64)1000)
#define S  ((gint64)1000000)

/* Doubling from 0.5 s to 30 s: libvirt's reconnect. */
static void test_doubling(void)
{
    const BackoffSpec spec = {500 * MS, 30 * S, 2};
    const gint64 want[] = {0, 500 * MS, 1 * S, 2 * S, 4 * S, 8 * S, 16 * S, 30 * S, 30 * S};

    for (guint n = 0; n < G_N_ELEMENTS(want); n++)
        g_assert_cmpint(backoff_delay(&spec, n), ==, want[n]);
    /* a very long series saturates at the cap, never wraps around */
    g_assert_cmpint(backoff_delay(&spec, 1000), ==, 30 * S);
    g_assert_cmpint(backoff_delay(&spec, G_MAXUINT), ==, 30 * S);
}

/* factor 0: once more after the first wait, then only at the cap (the floor net). */
static void test_jump(void)
{
    const BackoffSpec spec = {5 * S, 60 * S, 0};

    g_assert_cmpint(backoff_delay(&spec, 1), ==, 5 * S);
    g_assert_cmpint(backoff_delay(&spec, 2), ==, 60 * S);
    g_assert_cmpint(backoff_delay(&spec, 7), ==, 60 * S);
    /* a cap below the first wait is the first wait */
    const BackoffSpec low = {5 * S, 0, 0};
    g_assert_cmpint(backoff_delay(&low, 3), ==, 5 * S);
}

/* factor 1: a fixed wait, however many failures (and no loop over them). */
static void test_fixed(void)
{
    const BackoffSpec spec = {60 * S, 60 * S, 1};

    g_assert_cmpint(backoff_delay(&spec, 1), ==, 60 * S);
    g_assert_cmpint(backoff_delay(&spec, G_MAXUINT), ==, 60 * S);
}

static void test_fail_ready_reset(void)
{
    const BackoffSpec spec = {1 * S, 8 * S, 2};
    Backoff b = {0};
    gint64 now = 1000 * S;

    g_assert_true(backoff_ready(&b, now)); /* nothing failed yet */
    g_assert_cmpint(backoff_fail(&b, &spec, now), ==, 1 * S);
    g_assert_cmpuint(b.failures, ==, 1);
    g_assert_false(backoff_ready(&b, now + 999 * MS));
    g_assert_true(backoff_ready(&b, now + 1 * S));
    now += 1 * S;
    g_assert_cmpint(backoff_fail(&b, &spec, now), ==, 2 * S);
    g_assert_cmpint(b.next_us, ==, now + 2 * S);
    g_assert_cmpint(backoff_fail(&b, &spec, now), ==, 4 * S);
    g_assert_cmpint(backoff_fail(&b, &spec, now), ==, 8 * S);
    g_assert_cmpint(backoff_fail(&b, &spec, now), ==, 8 * S);
    backoff_reset(&b);
    g_assert_true(backoff_ready(&b, now));
    g_assert_cmpint(backoff_fail(&b, &spec, now), ==, 1 * S);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/backoff/doubling", test_doubling);
    g_test_add_func("/backoff/jump", test_jump);
    g_test_add_func("/backoff/fixed", test_fixed);
    g_test_add_func("/backoff/fail-ready-reset", test_fail_ready_reset);
    return g_test_run();
}
