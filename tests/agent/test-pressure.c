/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sampling/reporting decisions over simulated sample sequences (virtual clock). */
#include <glib.h>
#include <string.h>

#include "pressure.h"

#define MIB 1024ull

static BlReport sample_avail(guint64 total_kib, guint64 avail_kib)
{
    BlReport r;

    memset(&r, 0, sizeof(r));
    r.mem.total_kib = total_kib;
    r.mem.available_kib = avail_kib;
    r.mem.free_kib = avail_kib;
    return r;
}

/* Stable memory with ample headroom: one wake and one periodic report per
 * interval, never pressure. */
static void test_stable_big(void)
{
    PressureState st;
    PressureVerdict v;
    guint64 now = 1000;
    BlReport s = sample_avail(4096 * MIB, 3000 * MIB);

    pressure_reset(&st);
    pressure_step(&st, now, &s, 1000, FALSE, &v);
    g_assert_true(v.send); /* the first sample is reported at once */
    g_assert_cmpint(v.reason, ==, BL_REPORT_PERIODIC);
    for (int i = 0; i < 50; i++) {
        g_assert_cmpuint(v.next_ms, ==, 1000);
        now += v.next_ms;
        /* page cache noise: +-512 KiB */
        s.mem.available_kib = 3000 * MIB + (i % 2 ? 512 : 0);
        pressure_step(&st, now, &s, 1000, FALSE, &v);
        g_assert_true(v.send);
        g_assert_cmpint(v.reason, ==, BL_REPORT_PERIODIC);
        g_assert_null(v.why);
    }
    /* a longer interval from welcome is honoured too */
    now += 1000;
    pressure_step(&st, now, &s, 5000, FALSE, &v);
    g_assert_false(v.send);
    g_assert_cmpuint(v.next_ms, ==, 4000);
}

/* Little headroom: samples more often than the interval, reports once per interval. */
static void test_stable_small(void)
{
    PressureState st;
    PressureVerdict v;
    guint64 now = 0, last_report = 0;
    guint reports = 0, samples = 0;
    BlReport s = sample_avail(205 * MIB, 120 * MIB);

    pressure_reset(&st);
    while (now < 10000) {
        pressure_step(&st, now, &s, 1000, FALSE, &v);
        samples++;
        if (v.send) {
            g_assert_cmpint(v.reason, ==, BL_REPORT_PERIODIC);
            if (reports > 0)
                g_assert_cmpuint(now - last_report, >=, 1000 - PRESSURE_SLACK_MS);
            last_report = now;
            reports++;
        }
        g_assert_cmpuint(v.next_ms, <=, 200);
        now += v.next_ms;
    }
    g_assert_cmpuint(reports, >=, 10);
    g_assert_cmpuint(reports, <=, 11);
    g_assert_cmpuint(samples, >=, 45);
    g_assert_cmpuint(samples, <=, 60);
}

static void test_headroom_period(void)
{
    g_assert_cmpuint(pressure_headroom_period(0, 1000), ==, PRESSURE_FAST_MS);
    g_assert_cmpuint(pressure_headroom_period(120 * MIB, 1000), ==, 200);
    g_assert_cmpuint(pressure_headroom_period(600 * MIB, 1000), ==, 1000);
    g_assert_cmpuint(pressure_headroom_period(64 * 1024 * MIB, 1000), ==, 1000);
    g_assert_cmpuint(pressure_headroom_period(64 * 1024 * MIB, 100), ==, 100);
    g_assert_cmpuint(pressure_headroom_period(G_MAXUINT64, 60000), ==, 60000);
    /* 6 * ceil(2^64 / 1000): "/ 6 * 1000" wrapped to 384 KiB, i.e. fast sampling */
    g_assert_cmpuint(pressure_headroom_period(G_GUINT64_CONSTANT(110680464442257312), 1000), ==,
                     1000);
}

/*
 * The scenario: 205 MiB guest, 120 MiB available, a workload eating
 * 100 MiB/s from a start time anywhere in the sampling cycle. The first
 * pressure report must come within 250 ms of the start (sampling cost and
 * write are well under a millisecond), and reports keep coming while it falls.
 */
static void run_fall(guint64 headroom_kib, guint64 rate_kib_s, guint64 start_ms,
                     guint64 *first_pressure_ms, guint *n_pressure)
{
    PressureState st;
    PressureVerdict v;
    guint64 now = 0;
    guint64 last_pressure = 0;

    pressure_reset(&st);
    *first_pressure_ms = 0;
    *n_pressure = 0;
    while (now < start_ms + 5000) {
        guint64 eaten = now > start_ms ? (now - start_ms) * rate_kib_s / 1000 : 0;
        BlReport s = sample_avail(205 * MIB, eaten >= headroom_kib ? 0 : headroom_kib - eaten);

        if (eaten >= headroom_kib)
            break; /* OOM */
        pressure_step(&st, now, &s, 1000, FALSE, &v);
        if (v.send && v.reason == BL_REPORT_PRESSURE) {
            g_assert_nonnull(v.why);
            if (*n_pressure == 0)
                *first_pressure_ms = now;
            else
                g_assert_cmpuint(now - last_pressure, >=, PRESSURE_MIN_GAP_MS);
            last_pressure = now;
            (*n_pressure)++;
        }
        now += v.next_ms;
    }
}

static void test_fast_fall_latency(void)
{
    guint64 worst = 0;

    for (guint64 start = 0; start < 2000; start += 7) {
        guint64 first;
        guint n;

        run_fall(120 * MIB, 100 * MIB, start, &first, &n);
        g_assert_cmpuint(n, >=, 5); /* the broker sees the fall as it happens */
        g_assert_cmpuint(first, >, start);
        worst = MAX(worst, first - start);
    }
    g_test_message("worst first-pressure latency: %" G_GUINT64_FORMAT " ms", worst);
    g_assert_cmpuint(worst, <=, 250);
}

/* A big guest falling at 100 MiB/s has minutes: sample fast, no pressure flood. */
static void test_big_guest_fall(void)
{
    PressureState st;
    PressureVerdict v;
    guint64 now = 0, avail = 16 * 1024 * MIB;
    guint pressure = 0, fast = 0;

    pressure_reset(&st);
    for (int i = 0; i < 100; i++) {
        BlReport s = sample_avail(32 * 1024 * MIB, avail);

        pressure_step(&st, now, &s, 1000, FALSE, &v);
        if (v.send && v.reason == BL_REPORT_PRESSURE)
            pressure++;
        if (v.next_ms == PRESSURE_FAST_MS)
            fast++;
        now += v.next_ms;
        avail -= v.next_ms * 100 * MIB / 1000;
    }
    g_assert_cmpuint(pressure, ==, 0);
    g_assert_cmpuint(fast, >=, 90);
}

/* The balloon inflating takes MemTotal and MemAvailable down together: not
 * pressure. A workload on top of it still is. */
static void test_balloon_inflation(void)
{
    PressureState st;
    PressureVerdict v;
    BlReport s = sample_avail(1024 * MIB, 700 * MIB);

    pressure_reset(&st);
    pressure_step(&st, 0, &s, 1000, FALSE, &v);
    for (int i = 1; i <= 3; i++) {
        /* -256 MiB in 0.3 s, as QMP balloon does */
        s.mem.total_kib -= 85 * MIB;
        s.mem.available_kib -= 85 * MIB;
        pressure_step(&st, (guint64)i * 100, &s, 1000, FALSE, &v);
        g_assert_false(v.send && v.reason == BL_REPORT_PRESSURE);
    }
    /* the workload takes 60 MiB in 100 ms while the balloon takes 40 */
    s.mem.total_kib -= 40 * MIB;
    s.mem.available_kib -= 100 * MIB;
    pressure_step(&st, 400, &s, 1000, FALSE, &v);
    g_assert_true(v.send);
    g_assert_cmpint(v.reason, ==, BL_REPORT_PRESSURE);
    /* deflating raises both: nothing */
    s.mem.total_kib += 300 * MIB;
    s.mem.available_kib += 300 * MIB;
    pressure_step(&st, 1500, &s, 1000, FALSE, &v);
    g_assert_cmpint(v.reason, ==, BL_REPORT_PERIODIC);
}

/* After the fall stops, sampling decays back to the headroom period. */
static void test_decay(void)
{
    PressureState st;
    PressureVerdict v;
    guint64 now = 0;
    BlReport s = sample_avail(4096 * MIB, 3000 * MIB);

    pressure_reset(&st);
    pressure_step(&st, now, &s, 1000, FALSE, &v);
    now += 1000;
    s.mem.available_kib -= 200 * MIB; /* 200 MiB in 1 s */
    pressure_step(&st, now, &s, 1000, FALSE, &v);
    g_assert_cmpuint(v.next_ms, ==, PRESSURE_FAST_MS);
    for (guint64 t = 0; t < PRESSURE_HOLD_MS; t += v.next_ms) {
        now += v.next_ms;
        pressure_step(&st, now, &s, 1000, FALSE, &v);
    }
    now += v.next_ms;
    pressure_step(&st, now, &s, 1000, FALSE, &v);
    g_assert_cmpuint(v.next_ms, >, PRESSURE_FAST_MS);
}

static void test_counters(void)
{
    struct {
        int counter;
        guint64 delta; /* over 1 s */
        gboolean pressure;
    } cases[] = {
        {BL_VMSTAT_OOM_KILL, 1, TRUE},
        {BL_VMSTAT_PSWPIN, PRESSURE_SWAPIN_PAGES_S, TRUE},
        {BL_VMSTAT_PSWPIN, PRESSURE_SWAPIN_PAGES_S - 1, FALSE},
        {BL_VMSTAT_WORKINGSET_REFAULT_FILE, PRESSURE_REFAULT_PAGES_S, TRUE},
        {BL_VMSTAT_WORKINGSET_REFAULT_ANON, PRESSURE_REFAULT_PAGES_S, TRUE},
        {BL_VMSTAT_WORKINGSET_REFAULT_FILE, 100, FALSE},
        {BL_VMSTAT_PGMAJFAULT, 100000, FALSE},
        /* ceil(2^64 / 1000): "delta * 1000" wrapped to 384, a rate of 0 */
        {BL_VMSTAT_PSWPIN, G_GUINT64_CONSTANT(18446744073709552), TRUE},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        PressureState st;
        PressureVerdict v;
        BlReport s = sample_avail(4096 * MIB, 3000 * MIB);
        int k = cases[i].counter;

        pressure_reset(&st);
        s.vmstat.present = (1u << BL_VMSTAT_N_COUNTERS) - 1;
        s.vmstat.value[k] = 1000;
        pressure_step(&st, 0, &s, 1000, FALSE, &v);
        s.vmstat.value[k] += cases[i].delta;
        pressure_step(&st, 1000, &s, 1000, FALSE, &v);
        g_assert_true(v.send);
        g_assert_cmpint(v.reason == BL_REPORT_PRESSURE, ==, cases[i].pressure);

        /* a decrease (reset) or a counter that appears is not pressure */
        s.vmstat.value[k] = 0;
        pressure_step(&st, 2000, &s, 1000, FALSE, &v);
        g_assert_cmpint(v.reason, ==, BL_REPORT_PERIODIC);
        s.vmstat.present = 0;
        pressure_step(&st, 3000, &s, 1000, FALSE, &v);
        s.vmstat.present = 1u << k;
        s.vmstat.value[k] = 1000000;
        pressure_step(&st, 4000, &s, 1000, FALSE, &v);
        g_assert_cmpint(v.reason, ==, BL_REPORT_PERIODIC);
    }
}

static void test_psi_stall(void)
{
    PressureState st;
    PressureVerdict v;
    BlReport s = sample_avail(4096 * MIB, 3000 * MIB);

    pressure_reset(&st);
    s.has_psi = TRUE;
    s.psi.some.total_us = 5000000;
    pressure_step(&st, 0, &s, 1000, FALSE, &v);
    s.psi.some.total_us += 50000; /* 5 % of 1 s */
    pressure_step(&st, 1000, &s, 1000, FALSE, &v);
    g_assert_cmpint(v.reason, ==, BL_REPORT_PERIODIC);
    s.psi.some.total_us += 100000; /* 10 % */
    pressure_step(&st, 2000, &s, 1000, FALSE, &v);
    g_assert_cmpint(v.reason, ==, BL_REPORT_PRESSURE);
    g_assert_cmpuint(v.next_ms, ==, PRESSURE_FAST_MS);
    /* PSI disappearing is not pressure */
    s.has_psi = FALSE;
    s.psi.some.total_us = 0;
    pressure_step(&st, 3000, &s, 1000, FALSE, &v);
    g_assert_cmpint(v.reason, ==, BL_REPORT_PERIODIC);
}

/* A trigger event is pressure at once; events are rate-limited. */
static void test_event_and_rate_limit(void)
{
    PressureState st;
    PressureVerdict v;
    BlReport s = sample_avail(4096 * MIB, 3000 * MIB);

    pressure_reset(&st);
    pressure_step(&st, 0, &s, 1000, FALSE, &v);
    pressure_step(&st, 300, &s, 1000, TRUE, &v);
    g_assert_true(v.send);
    g_assert_cmpint(v.reason, ==, BL_REPORT_PRESSURE);
    g_assert_cmpstr(v.why, ==, "PSI trigger");
    pressure_step(&st, 340, &s, 1000, TRUE, &v);
    g_assert_false(v.send); /* 40 ms later: rate-limited, and no periodic due */
    g_assert_cmpuint(v.next_ms, ==, PRESSURE_FAST_MS);
    pressure_step(&st, 400, &s, 1000, TRUE, &v);
    g_assert_true(v.send);
    g_assert_cmpint(v.reason, ==, BL_REPORT_PRESSURE);
    /* the next periodic one is due an interval after the last report */
    pressure_step(&st, 1300, &s, 1000, FALSE, &v);
    g_assert_false(v.send);
    g_assert_cmpuint(v.next_ms, ==, PRESSURE_FAST_MS);
}

/* The clock not moving (or a duplicate sample) divides by nothing. */
static void test_same_time(void)
{
    PressureState st;
    PressureVerdict v;
    BlReport s = sample_avail(4096 * MIB, 100 * MIB);

    pressure_reset(&st);
    pressure_step(&st, 500, &s, 1000, FALSE, &v);
    s.mem.available_kib = 0;
    pressure_step(&st, 500, &s, 1000, FALSE, &v);
    g_assert_false(v.send);
    g_assert_cmpuint(v.next_ms, >=, 10);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/pressure/stable-big", test_stable_big);
    g_test_add_func("/pressure/stable-small", test_stable_small);
    g_test_add_func("/pressure/headroom-period", test_headroom_period);
    g_test_add_func("/pressure/fast-fall-latency", test_fast_fall_latency);
    g_test_add_func("/pressure/big-guest-fall", test_big_guest_fall);
    g_test_add_func("/pressure/decay", test_decay);
    g_test_add_func("/pressure/balloon-inflation", test_balloon_inflation);
    g_test_add_func("/pressure/counters", test_counters);
    g_test_add_func("/pressure/psi-stall", test_psi_stall);
    g_test_add_func("/pressure/event-and-rate-limit", test_event_and_rate_limit);
    g_test_add_func("/pressure/same-time", test_same_time);
    return g_test_run();
}
