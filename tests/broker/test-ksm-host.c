/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host KSM controller: decisions on struct inputs (table-driven), the
 * sleep formula, restore on exit, [ksm] configuration, and sysfs/procfs
 * reading and writing on copies of the fixture trees tests/data/ksm-6.18
 * (general_profit, advisor_mode, smart_scan) and tests/data/ksm-6.1 (none).
 */
#include <glib.h>
#include <string.h>

#include "ksm-fixture.h"
#include "ksm-proc.h"
#include "ksm-sysfs.h"
#include "ksm.h"
#include "procfs.h"

#define GIB   (1024ull * 1024) /* in KiB */
#define MIB_B (1024ll * 1024)  /* in bytes */
#define S     (G_USEC_PER_SEC * 1ll)

/* A 16 GiB host with a 6.1-like KSM (no advisor), everything quiet. */
static KsmHostFacts facts_base(void)
{
    KsmHostFacts f = {0};

    f.mem_total_kib = 16 * GIB;
    f.mem_available_kib = 8 * GIB;
    f.page_size = 4096;
    f.ksm.run = 0;
    f.ksm.pages_to_scan = 100;
    f.ksm.sleep_millisecs = 10; /* what 16 GiB wants: no sleep write */
    f.ksm.advisor_mode = KSM_ADVISOR_ABSENT;
    return f;
}

typedef struct {
    const char *name;
    /* input */
    guint64 avail_pct; /* MemAvailable in % of 16 GiB */
    guint run;
    guint64 pages;
    guint64 full_scans;
    gboolean has_profit;
    gint64 profit_mib;
    guint64 sharing, unshared;
    KsmAdvisor advisor;
    gboolean has_smart, smart;
    gboolean use_advisor;
    KsmHostState state;
    gint64 now_s;
    /* expected */
    int want_run;     /* -1: no write */
    int want_pages;   /* -1: no write */
    int want_advisor; /* -1: no write, else KsmAdvisor */
    int want_smart;   /* -1: no write */
    gboolean want_short;
    gboolean want_unprofitable; /* state.unprofitable_at_us set */
    const char *reason_has;
} DecideCase;

static const DecideCase decide_cases[] = {
    {"plenty, stopped: nothing",
     50,
     0,
     100,
     0,
     TRUE,
     0,
     0,
     0,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {0},
     100,
     -1,
     -1,
     -1,
     -1,
     FALSE,
     FALSE,
     "stays stopped"},
    {"plenty, running: stop with 0 not 2",
     50,
     1,
     400,
     5,
     TRUE,
     50,
     1000,
     0,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE},
     100,
     0,
     -1,
     -1,
     -1,
     FALSE,
     FALSE,
     "merged pages kept"},
    {"short, stopped: start and boost",
     10,
     0,
     100,
     9,
     TRUE,
     0,
     0,
     0,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {0},
     100,
     1,
     400,
     -1,
     -1,
     TRUE,
     FALSE,
     "start KSM"},
    {"short, run=2 (unmerged): start",
     10,
     2,
     100,
     9,
     TRUE,
     0,
     0,
     0,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {0},
     100,
     1,
     400,
     -1,
     -1,
     TRUE,
     FALSE,
     "start KSM"},
    {"short, warming up: boost",
     10,
     1,
     400,
     10,
     TRUE,
     -5,
     0,
     1000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 9},
     100,
     -1,
     700,
     -1,
     -1,
     TRUE,
     FALSE,
     "warming up, 1/2"},
    {"short, boost clamps at 1250",
     10,
     1,
     1100,
     10,
     TRUE,
     100,
     30000,
     1000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 2},
     100,
     -1,
     1250,
     -1,
     -1,
     TRUE,
     FALSE,
     "profit 100.0 MiB"},
    {"short, at max: no write",
     10,
     1,
     1250,
     10,
     TRUE,
     100,
     30000,
     1000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 2},
     100,
     -1,
     -1,
     -1,
     -1,
     TRUE,
     FALSE,
     "KSM runs"},
    {"recovering (22%, was short): decay",
     22,
     1,
     700,
     10,
     TRUE,
     100,
     30000,
     1000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 2},
     100,
     -1,
     650,
     -1,
     -1,
     TRUE,
     FALSE,
     "recovering"},
    {"recovering: decay clamps at 64",
     22,
     1,
     100,
     10,
     TRUE,
     100,
     30000,
     1000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 2},
     100,
     -1,
     64,
     -1,
     -1,
     TRUE,
     FALSE,
     "recovering"},
    {"22% but was not short: stays stopped",
     22,
     0,
     100,
     10,
     TRUE,
     0,
     0,
     0,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {0},
     100,
     -1,
     -1,
     -1,
     -1,
     FALSE,
     FALSE,
     "stays stopped"},
    {"25% after short: stop",
     25,
     1,
     700,
     10,
     TRUE,
     100,
     30000,
     1000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 2},
     100,
     0,
     -1,
     -1,
     -1,
     FALSE,
     FALSE,
     "stop KSM"},
    {"short, warmed up, profit <= 0: stop, keep pages",
     10,
     1,
     700,
     12,
     TRUE,
     -3,
     1000,
     100000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 10},
     100,
     0,
     -1,
     -1,
     -1,
     TRUE,
     TRUE,
     "does not pay after 2 full scans"},
    {"short, profit > 0 but unshared > 32x sharing: stop",
     10,
     1,
     700,
     12,
     TRUE,
     10,
     1000,
     40000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 10},
     100,
     0,
     -1,
     -1,
     -1,
     TRUE,
     TRUE,
     "unshared+volatile"},
    {"short, did not pay 100 s ago: stay stopped",
     10,
     0,
     700,
     12,
     TRUE,
     -3,
     1000,
     100000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.short_of_memory = TRUE, .unprofitable_at_us = 1000 * S},
     1100,
     -1,
     -1,
     -1,
     -1,
     TRUE,
     TRUE,
     "retry in 500 s"},
    {"short, did not pay 700 s ago: try again",
     10,
     0,
     700,
     12,
     TRUE,
     -3,
     1000,
     100000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.short_of_memory = TRUE, .unprofitable_at_us = 1000 * S},
     1700,
     1,
     1000,
     -1,
     -1,
     TRUE,
     FALSE,
     "start KSM"},
    {"found running with history: warm-up counts from now",
     10,
     1,
     400,
     50,
     TRUE,
     -3,
     1000,
     100000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {0},
     100,
     -1,
     700,
     -1,
     -1,
     TRUE,
     FALSE,
     "warming up, 0/2"},
    {"advisor none: switch to scan-time, leave pages_to_scan",
     10,
     0,
     100,
     0,
     TRUE,
     0,
     0,
     0,
     KSM_ADVISOR_NONE,
     TRUE,
     TRUE,
     TRUE,
     {0},
     100,
     1,
     -1,
     KSM_ADVISOR_SCAN_TIME,
     -1,
     TRUE,
     FALSE,
     "start KSM"},
    {"advisor scan-time, smart_scan off: turn it on",
     10,
     1,
     500,
     10,
     TRUE,
     100,
     30000,
     1000,
     KSM_ADVISOR_SCAN_TIME,
     TRUE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 2},
     100,
     -1,
     -1,
     -1,
     1,
     TRUE,
     FALSE,
     "scan-time advisor"},
    {"advisor present but use_advisor=false: none, then boost",
     10,
     1,
     500,
     10,
     TRUE,
     100,
     30000,
     1000,
     KSM_ADVISOR_SCAN_TIME,
     TRUE,
     TRUE,
     FALSE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 2},
     100,
     -1,
     800,
     KSM_ADVISOR_NONE,
     -1,
     TRUE,
     FALSE,
     "KSM runs, profit"},
    {"6.1: no general_profit, estimate says it pays",
     10,
     1,
     400,
     10,
     FALSE,
     0,
     30000,
     60000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 2},
     100,
     -1,
     700,
     -1,
     -1,
     TRUE,
     FALSE,
     "KSM runs, profit"},
    {"6.1: estimate says it does not pay",
     10,
     1,
     400,
     10,
     FALSE,
     0,
     1000,
     100000,
     KSM_ADVISOR_ABSENT,
     FALSE,
     FALSE,
     TRUE,
     {.running = TRUE, .short_of_memory = TRUE, .scans_at_start = 2},
     100,
     0,
     -1,
     -1,
     -1,
     TRUE,
     TRUE,
     "profit"},
};

static void test_decide_table(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(decide_cases); i++) {
        const DecideCase *c = &decide_cases[i];
        KsmHostFacts f = facts_base();
        KsmConfig config;
        KsmHostPlan plan;

        g_test_message("case %zu: %s", i, c->name);
        ksm_config_init_defaults(&config);
        config.use_advisor = c->use_advisor;
        f.mem_available_kib = f.mem_total_kib * c->avail_pct / 100;
        f.ksm.run = c->run;
        f.ksm.pages_to_scan = c->pages;
        f.ksm.full_scans = c->full_scans;
        f.ksm.has_general_profit = c->has_profit;
        f.ksm.general_profit = c->profit_mib * MIB_B;
        f.ksm.pages_shared = c->sharing / 4;
        f.ksm.pages_sharing = c->sharing;
        f.ksm.pages_unshared = c->unshared;
        f.ksm.advisor_mode = c->advisor;
        f.ksm.has_smart_scan = c->has_smart;
        f.ksm.smart_scan = c->smart;

        ksm_host_decide(&f, &c->state, &config, c->now_s * S, &plan);

        g_assert_cmpint(plan.set_run, ==, c->want_run >= 0);
        if (c->want_run >= 0)
            g_assert_cmpuint(plan.run, ==, (guint)c->want_run);
        g_assert_cmpuint(plan.run, !=, 2);
        g_assert_cmpint(plan.set_pages, ==, c->want_pages >= 0);
        if (c->want_pages >= 0)
            g_assert_cmpuint(plan.pages_to_scan, ==, (guint64)c->want_pages);
        g_assert_cmpint(plan.set_advisor, ==, c->want_advisor >= 0);
        if (c->want_advisor >= 0)
            g_assert_cmpint(plan.advisor_mode, ==, c->want_advisor);
        g_assert_cmpint(plan.set_smart_scan, ==, c->want_smart >= 0);
        if (c->want_smart >= 0)
            g_assert_cmpint(plan.smart_scan, ==, c->want_smart);
        g_assert_false(plan.set_sleep);
        g_assert_cmpint(plan.state.short_of_memory, ==, c->want_short);
        g_assert_cmpint(plan.state.unprofitable_at_us != 0, ==, c->want_unprofitable);
        g_assert_cmpint(ksm_host_plan_changes(&plan), ==,
                        c->want_run >= 0 || c->want_pages >= 0 || c->want_advisor >= 0 ||
                            c->want_smart >= 0);
        if (!strstr(plan.reason, c->reason_has))
            g_error("case %s: reason \"%s\" lacks \"%s\"", c->name, plan.reason, c->reason_has);
        ksm_config_clear(&config);
    }
}

/* A full episode: memory gets short, KSM runs and pays, memory recovers. */
static void test_decide_episode(void)
{
    KsmHostFacts f = facts_base();
    KsmHostState st = {0};
    KsmHostPlan plan;
    KsmConfig config;
    guint64 pages[] = {400, 700, 1000, 1250, 1250};

    ksm_config_init_defaults(&config);
    f.ksm.has_general_profit = TRUE;
    f.mem_available_kib = f.mem_total_kib / 10;
    for (gsize i = 0; i < G_N_ELEMENTS(pages); i++) {
        ksm_host_decide(&f, &st, &config, (gint64)(i + 1) * 10 * S, &plan);
        g_assert_cmpuint(plan.set_run ? plan.run : f.ksm.run, ==, 1);
        if (plan.set_pages)
            f.ksm.pages_to_scan = plan.pages_to_scan;
        if (plan.set_run)
            f.ksm.run = plan.run;
        g_assert_cmpuint(f.ksm.pages_to_scan, ==, pages[i]);
        st = plan.state;
        /* ksmd makes progress and merging pays */
        f.ksm.full_scans++;
        f.ksm.pages_sharing += 10000;
        f.ksm.general_profit = (gint64)f.ksm.pages_sharing * 4000;
    }
    /* recovering: 30 % is above stop_above (25 %): stop at once */
    f.mem_available_kib = f.mem_total_kib * 30 / 100;
    ksm_host_decide(&f, &st, &config, 100 * S, &plan);
    g_assert_true(plan.set_run);
    g_assert_cmpuint(plan.run, ==, 0);
    g_assert_false(plan.state.running);
    ksm_config_clear(&config);
}

static void test_sleep_formula(void)
{
    static const struct {
        guint64 ram_kib;
        guint base;
        guint64 want;
    } cases[] = {
        {16 * GIB, 10, 10}, {24 * GIB, 10, 10}, {64 * GIB, 10, 10}, {8 * GIB, 10, 20},
        {4 * GIB, 10, 40},  {2 * GIB, 10, 80},  {1 * GIB, 10, 160}, {512 * 1024, 10, 320},
        {16 * GIB, 20, 20}, {0, 10, 10},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmpuint(ksm_sleep_for_ram(cases[i].ram_kib, cases[i].base), ==, cases[i].want);

    /* and the controller writes it when it differs */
    {
        KsmHostFacts f = facts_base();
        KsmHostState st = {0};
        KsmHostPlan plan;
        KsmConfig config;

        ksm_config_init_defaults(&config);
        f.mem_total_kib = 2 * GIB;
        f.mem_available_kib = GIB;
        f.ksm.sleep_millisecs = 20;
        ksm_host_decide(&f, &st, &config, S, &plan);
        g_assert_true(plan.set_sleep);
        g_assert_cmpuint(plan.sleep_millisecs, ==, 80);
        ksm_config_clear(&config);
    }
}

static void test_general_profit(void)
{
    KsmSysfs k = {0};

    k.pages_sharing = 1000;
    k.pages_shared = 100;
    k.pages_unshared = 800;
    k.pages_volatile = 100;
    /* 1000 * 4096 - 2000 * 64 */
    g_assert_cmpint(ksm_general_profit(&k, 4096), ==, 4096000 - 128000);
    g_assert_cmpint(ksm_general_profit(&k, 0), ==, 4096000 - 128000);
    k.has_zero_pages = TRUE;
    k.ksm_zero_pages = 10;
    g_assert_cmpint(ksm_general_profit(&k, 4096), ==, 4096000 + 40960 - 128000);
    k.pages_sharing = 0;
    k.ksm_zero_pages = 0;
    g_assert_cmpint(ksm_general_profit(&k, 4096), <, 0);
    k.has_general_profit = TRUE;
    k.general_profit = -42;
    g_assert_cmpint(ksm_general_profit(&k, 4096), ==, -42);
    /* absurd counters do not wrap into a profit */
    memset(&k, 0, sizeof(k));
    k.pages_unshared = G_MAXUINT64;
    g_assert_cmpint(ksm_general_profit(&k, 4096), <, 0);
}

static KsmSysfs sysfs_original(void)
{
    KsmSysfs o = {0};

    o.run = 0;
    o.pages_to_scan = 100;
    o.sleep_millisecs = 20;
    o.advisor_mode = KSM_ADVISOR_NONE;
    o.has_smart_scan = TRUE;
    o.smart_scan = TRUE;
    return o;
}

static void test_restore(void)
{
    KsmSysfs o = sysfs_original();
    KsmSysfs c = o;
    KsmHostPlan plan;

    /* nothing changed: nothing to write */
    ksm_host_restore(&o, &c, &plan);
    g_assert_false(ksm_host_plan_changes(&plan));

    /* ballast ran it with the advisor: advisor back first, then pages */
    c.run = 1;
    c.pages_to_scan = 500;
    c.sleep_millisecs = 10;
    c.advisor_mode = KSM_ADVISOR_SCAN_TIME;
    ksm_host_restore(&o, &c, &plan);
    g_assert_true(plan.set_advisor);
    g_assert_cmpint(plan.advisor_mode, ==, KSM_ADVISOR_NONE);
    g_assert_true(plan.set_pages);
    g_assert_cmpuint(plan.pages_to_scan, ==, 100);
    g_assert_true(plan.set_sleep);
    g_assert_cmpuint(plan.sleep_millisecs, ==, 20);
    g_assert_true(plan.set_run);
    g_assert_cmpuint(plan.run, ==, 0);
    g_assert_false(plan.set_smart_scan);

    /* advisor unchanged but pages moved (6.1 style) */
    c = o;
    c.advisor_mode = KSM_ADVISOR_ABSENT;
    o.advisor_mode = KSM_ADVISOR_ABSENT;
    c.pages_to_scan = 1250;
    c.smart_scan = FALSE;
    ksm_host_restore(&o, &c, &plan);
    g_assert_false(plan.set_advisor);
    g_assert_true(plan.set_pages);
    g_assert_cmpuint(plan.pages_to_scan, ==, 100);
    g_assert_true(plan.set_smart_scan);
    g_assert_true(plan.smart_scan);
    g_assert_false(plan.set_run);

    /* originally running: back to 1 */
    o = sysfs_original();
    o.run = 1;
    c = o;
    c.run = 0;
    ksm_host_restore(&o, &c, &plan);
    g_assert_true(plan.set_run);
    g_assert_cmpuint(plan.run, ==, 1);

    /* originally 2 (stopped, unmerged): 0, never 2 */
    o.run = 2;
    c.run = 1;
    ksm_host_restore(&o, &c, &plan);
    g_assert_true(plan.set_run);
    g_assert_cmpuint(plan.run, ==, 0);
    c.run = 0;
    ksm_host_restore(&o, &c, &plan);
    g_assert_false(plan.set_run);

    /* original advisor scan-time: the kernel refuses pages_to_scan, do not write it */
    o = sysfs_original();
    o.advisor_mode = KSM_ADVISOR_SCAN_TIME;
    o.pages_to_scan = 500;
    c = o;
    c.pages_to_scan = 2400;
    ksm_host_restore(&o, &c, &plan);
    g_assert_false(plan.set_pages);
    g_assert_false(plan.set_advisor);
}

static void test_saved_original(void)
{
    KsmSysfs o = sysfs_original();
    KsmSysfs back = {.pages_to_scan = 4242};
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;

    o.run = 2;
    o.pages_to_scan = 1234;
    o.advisor_mode = KSM_ADVISOR_SCAN_TIME;
    o.smart_scan = FALSE;
    text = ksm_saved_to_text(&o, "b00t");
    g_assert_true(ksm_saved_from_text(text, "b00t", &back, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(back.run, ==, 2);
    g_assert_cmpuint(back.pages_to_scan, ==, 1234);
    g_assert_cmpuint(back.sleep_millisecs, ==, 20);
    g_assert_cmpint(back.advisor_mode, ==, KSM_ADVISOR_SCAN_TIME);
    g_assert_true(back.has_smart_scan);
    g_assert_false(back.smart_scan);

    /* a 6.1 kernel: no advisor, no smart_scan */
    o.advisor_mode = KSM_ADVISOR_ABSENT;
    o.has_smart_scan = FALSE;
    g_free(text);
    text = ksm_saved_to_text(&o, "");
    g_assert_true(ksm_saved_from_text(text, "", &back, &error));
    g_assert_cmpint(back.advisor_mode, ==, KSM_ADVISOR_ABSENT);
    g_assert_false(back.has_smart_scan);

    /* another boot, garbage, out of range: refused, *original untouched */
    static const char *const bad[] = {
        "[ksm-original]\nboot_id=other\nrun=0\npages_to_scan=100\nsleep_millisecs=20\n"
        "advisor_mode=none\nsmart_scan=1\n",
        "not a key file",
        "[ksm-original]\nboot_id=\nrun=7\npages_to_scan=100\nsleep_millisecs=20\n"
        "advisor_mode=none\nsmart_scan=1\n",
        "[ksm-original]\nboot_id=\nrun=0\npages_to_scan=100\nsleep_millisecs=20\n"
        "advisor_mode=future\nsmart_scan=1\n",
        "[ksm-original]\nboot_id=\nrun=0\npages_to_scan=100\nadvisor_mode=none\n"
        "smart_scan=1\n",
        "[ksm-original]\nboot_id=\nrun=0\npages_to_scan=x\nsleep_millisecs=20\n"
        "advisor_mode=none\nsmart_scan=1\n",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        KsmSysfs untouched = {.pages_to_scan = 4242};

        g_clear_error(&error);
        g_assert_false(ksm_saved_from_text(bad[i], "", &untouched, &error));
        g_assert_nonnull(error);
        g_assert_cmpuint(untouched.pages_to_scan, ==, 4242);
    }
}

static void test_cpu_percent(void)
{
    /* 50 ticks at 100 Hz over 10 s: 0.5 s of CPU = 5 % */
    g_assert_cmpfloat_with_epsilon(ksm_cpu_percent(100, 150, 100, 10 * S), 5.0, 1e-9);
    g_assert_cmpfloat_with_epsilon(ksm_cpu_percent(0, 100, 100, S), 100.0, 1e-9);
    g_assert_cmpfloat(ksm_cpu_percent(150, 100, 100, S), ==, 0.0);
    g_assert_cmpfloat(ksm_cpu_percent(100, 150, 100, 0), ==, 0.0);
    g_assert_cmpfloat(ksm_cpu_percent(100, 150, 0, S), ==, 0.0);
}

static void test_config(void)
{
    KsmConfig c;

    ksm_config_init_defaults(&c);
    g_assert_true(c.manage);
    g_assert_true(c.live_exclusion);
    g_assert_cmpuint(c.pages_boost, ==, 300);
    g_assert_cmpuint(c.pages_decay, ==, 50);
    g_assert_cmpuint(c.pages_min, ==, 64);
    g_assert_cmpuint(c.pages_max, ==, 1250);
    g_assert_cmpuint(c.start_below_percent, ==, 20);

    /* Loading [ksm] is the configuration engine's: tests/broker/test-config.c. */
    ksm_config_clear(&c);
}

static void test_sysfs_read_618(void)
{
    char *root = ksm_fixture_new("ksm-6.18");
    g_autoptr(GError) error = NULL;
    KsmSysfs k;

    g_assert_true(ksm_sysfs_present(root));
    g_assert_true(ksm_sysfs_read(root, &k, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(k.run, ==, 1);
    g_assert_cmpuint(k.pages_to_scan, ==, 100);
    g_assert_cmpuint(k.sleep_millisecs, ==, 20);
    g_assert_cmpuint(k.pages_shared, ==, 4000);
    g_assert_cmpuint(k.pages_sharing, ==, 34000);
    g_assert_cmpuint(k.pages_unshared, ==, 90000);
    g_assert_cmpuint(k.pages_volatile, ==, 3000);
    g_assert_cmpuint(k.full_scans, ==, 7);
    g_assert_true(k.has_general_profit);
    g_assert_cmpint(k.general_profit, ==, 136314880);
    g_assert_true(k.has_zero_pages);
    g_assert_cmpuint(k.ksm_zero_pages, ==, 12);
    g_assert_cmpint(k.advisor_mode, ==, KSM_ADVISOR_NONE);
    g_assert_true(k.has_smart_scan);
    g_assert_true(k.smart_scan);
    ksm_fixture_free(root);
}

static void test_sysfs_read_61(void)
{
    char *root = ksm_fixture_new("ksm-6.1");
    g_autoptr(GError) error = NULL;
    KsmSysfs k;

    g_assert_true(ksm_sysfs_read(root, &k, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(k.run, ==, 0);
    g_assert_cmpuint(k.pages_sharing, ==, 5000);
    g_assert_cmpuint(k.full_scans, ==, 3);
    g_assert_false(k.has_general_profit);
    g_assert_false(k.has_zero_pages);
    g_assert_false(k.has_smart_scan);
    g_assert_cmpint(k.advisor_mode, ==, KSM_ADVISOR_ABSENT);
    /* estimate: 5000 * 4096 - 207000 * 64 */
    g_assert_cmpint(ksm_general_profit(&k, 4096), ==, 5000ll * 4096 - 207000ll * 64);
    ksm_fixture_free(root);
}

static void test_sysfs_read_bad(void)
{
    static const struct {
        const char *knob, *text;
    } cases[] = {
        {"run", "yes\n"},
        {"run", "3\n"},
        {"pages_sharing", "-1\n"},
        {"full_scans", "\n"},
        {"pages_to_scan", "1 2\n"},
        {"general_profit", "x\n"},
        {"advisor_mode", "none scan-time\n"},
        {"pages_volatile", "99999999999999999999999\n"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *root = ksm_fixture_new("ksm-6.18");
        g_autofree char *rel = g_build_filename(KSM_SYSFS_DIR, cases[i].knob, NULL);
        g_autoptr(GError) error = NULL;
        KsmSysfs k = {.pages_to_scan = 4242};

        ksm_fixture_write(root, rel, cases[i].text);
        g_assert_false(ksm_sysfs_read(root, &k, &error));
        g_assert_nonnull(error);
        g_assert_nonnull(strstr(error->message, cases[i].knob));
        g_assert_cmpuint(k.pages_to_scan, ==, 4242); /* untouched on error */
        ksm_fixture_free(root);
    }

    /* a required knob missing; no KSM at all */
    {
        char *root = ksm_fixture_new("ksm-6.1");
        g_autofree char *path = g_build_filename(root, KSM_SYSFS_DIR, "pages_volatile", NULL);
        g_autoptr(GError) error = NULL;
        KsmSysfs k;

        g_assert_cmpint(g_unlink(path), ==, 0);
        g_assert_false(ksm_sysfs_read(root, &k, &error));
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
        g_assert_false(ksm_sysfs_present("/nonexistent-ballast-root"));
        ksm_fixture_free(root);
    }

    /* the advisor parser on its own */
    {
        KsmAdvisor m;

        g_assert_true(ksm_sysfs_parse_advisor("none [scan-time]", &m));
        g_assert_cmpint(m, ==, KSM_ADVISOR_SCAN_TIME);
        g_assert_true(ksm_sysfs_parse_advisor("[none] scan-time", &m));
        g_assert_cmpint(m, ==, KSM_ADVISOR_NONE);
        g_assert_true(ksm_sysfs_parse_advisor("none scan-time [future]", &m));
        g_assert_cmpint(m, ==, KSM_ADVISOR_OTHER);
        g_assert_true(ksm_sysfs_parse_advisor("scan-time", &m));
        g_assert_cmpint(m, ==, KSM_ADVISOR_SCAN_TIME);
        g_assert_false(ksm_sysfs_parse_advisor("none scan-time", &m));
        g_assert_false(ksm_sysfs_parse_advisor("bogus", &m));
        g_assert_false(ksm_sysfs_parse_advisor("[none", &m));
        g_assert_false(ksm_sysfs_parse_advisor("", &m));
    }
}

static void assert_knob(const char *root, const char *knob, const char *want)
{
    g_autofree char *rel = g_build_filename(KSM_SYSFS_DIR, knob, NULL);
    g_autofree char *got = ksm_fixture_read(root, rel);

    g_assert_nonnull(got);
    g_strstrip(got);
    g_assert_cmpstr(got, ==, want);
}

/* Decide on the tree, write the plan into it, read back; then restore. */
static void run_cycle_and_restore(const char *fixture, gboolean has_advisor)
{
    char *root = ksm_fixture_new(fixture);
    g_autoptr(GError) error = NULL;
    KsmSysfs original, now;
    KsmHostFacts f = {0};
    KsmHostState st = {0};
    KsmHostPlan plan;
    KsmConfig config;

    ksm_config_init_defaults(&config);
    /* original state: stopped, as a host without ksmtuned */
    ksm_fixture_write(root, KSM_SYSFS_DIR "/run", "0\n");
    g_assert_true(ksm_sysfs_read(root, &original, &error));
    f.ksm = original;
    f.mem_total_kib = 4 * GIB;
    f.mem_available_kib = GIB / 2;
    ksm_host_decide(&f, &st, &config, S, &plan);
    g_assert_true(ksm_sysfs_apply(root, &plan, &error));
    g_assert_no_error(error);

    assert_knob(root, "run", "1");
    assert_knob(root, "sleep_millisecs", "40");
    if (has_advisor) {
        assert_knob(root, "advisor_mode", "scan-time");
        assert_knob(root, "pages_to_scan", "100"); /* left to the advisor */
    } else {
        assert_knob(root, "pages_to_scan", "400");
    }
    /* the fake kernel shows the selected mode in brackets */
    if (has_advisor) {
        ksm_fixture_write(root, KSM_SYSFS_DIR "/advisor_mode", "none [scan-time]\n");
        ksm_fixture_write(root, KSM_SYSFS_DIR "/pages_to_scan", "500\n");
    }
    g_assert_true(ksm_sysfs_read(root, &now, &error));
    ksm_host_restore(&original, &now, &plan);
    g_assert_true(ksm_sysfs_apply(root, &plan, &error));
    g_assert_no_error(error);
    assert_knob(root, "run", "0");
    assert_knob(root, "pages_to_scan", "100");
    assert_knob(root, "sleep_millisecs", "20");
    if (has_advisor)
        assert_knob(root, "advisor_mode", "none");
    ksm_config_clear(&config);
    ksm_fixture_free(root);
}

static void test_sysfs_write_618(void)
{
    run_cycle_and_restore("ksm-6.18", TRUE);
}

static void test_sysfs_write_61(void)
{
    run_cycle_and_restore("ksm-6.1", FALSE);
}

static void test_sysfs_write_missing(void)
{
    char *root = ksm_fixture_new("ksm-6.1");
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(root, KSM_SYSFS_DIR, "advisor_mode", NULL);
    KsmHostPlan plan = {0};

    /* a knob the kernel lacks is an error and is not created */
    g_assert_false(ksm_sysfs_write_knob(root, "advisor_mode", "scan-time", &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    g_clear_error(&error);

    /* apply stops at the first failure: run is not written after it */
    plan.set_smart_scan = TRUE;
    plan.smart_scan = TRUE;
    plan.set_run = TRUE;
    plan.run = 1;
    g_assert_false(ksm_sysfs_apply(root, &plan, &error));
    assert_knob(root, "run", "0");
    ksm_fixture_free(root);
}

static void test_ksmd(void)
{
    char *root = ksm_fixture_new("ksm-6.18");
    g_autoptr(GError) error = NULL;
    guint64 ticks = 0;
    gint pid = 0;

    g_assert_true(ksm_proc_find_ksmd(root, &pid, &error));
    g_assert_no_error(error);
    g_assert_cmpint(pid, ==, 37);
    g_assert_true(ksm_proc_read_cpu_ticks(root, pid, &ticks, &error));
    g_assert_cmpuint(ticks, ==, 1234 + 567);

    /* no ksmd (CONFIG_KSM=n or a bare tree) */
    ksm_fixture_write(root, "proc/37/comm", "kswapd0\n");
    g_assert_false(ksm_proc_find_ksmd(root, &pid, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    ksm_fixture_free(root);

    static const char odd[] = "99 (a) b (c) S 2 0 0 0 -1 0 0 0 0 0 11 22 0 0 25 5 1 0 27";
    g_clear_error(&error);
    g_assert_true(ksm_proc_parse_cpu_ticks(odd, strlen(odd), &ticks, &error));
    g_assert_cmpuint(ticks, ==, 33);
    static const char *const bad[] = {"", "37 ksmd S 2", "37 (ksmd) S 2 0 0 0 -1 0 0 0 0 0 x 1",
                                      "37 (ksmd) S 2 0 0"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_clear_error(&error);
        g_assert_false(ksm_proc_parse_cpu_ticks(bad[i], strlen(bad[i]), &ticks, &error));
        g_assert_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ksm/host/decide-table", test_decide_table);
    g_test_add_func("/ksm/host/decide-episode", test_decide_episode);
    g_test_add_func("/ksm/host/sleep-formula", test_sleep_formula);
    g_test_add_func("/ksm/host/general-profit", test_general_profit);
    g_test_add_func("/ksm/host/restore", test_restore);
    g_test_add_func("/ksm/host/cpu-percent", test_cpu_percent);
    g_test_add_func("/ksm/host/saved-original", test_saved_original);
    g_test_add_func("/ksm/host/config", test_config);
    g_test_add_func("/ksm/sysfs/read-6.18", test_sysfs_read_618);
    g_test_add_func("/ksm/sysfs/read-6.1", test_sysfs_read_61);
    g_test_add_func("/ksm/sysfs/read-bad", test_sysfs_read_bad);
    g_test_add_func("/ksm/sysfs/write-6.18", test_sysfs_write_618);
    g_test_add_func("/ksm/sysfs/write-6.1", test_sysfs_write_61);
    g_test_add_func("/ksm/sysfs/write-missing", test_sysfs_write_missing);
    g_test_add_func("/ksm/proc/ksmd", test_ksmd);
    return g_test_run();
}
