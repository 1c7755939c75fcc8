/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-VM KSM: /proc/<pid>/ksm_stat parsing (6.18 and 6.1 shapes, missing
 * fields, garbage), finding a domain's QEMU in fixture trees, and the
 * exclusion decisions (never / always / auto with profit over several full
 * scans, latency-sensitive, hysteresis, retry).
 */
#include <glib.h>
#include <string.h>

#include "ksm-fixture.h"
#include "ksm-proc.h"
#include "ksm-vm.h"
#include "procfs.h"

#define S   (G_USEC_PER_SEC * 1ll)
#define MIB (1024ll * 1024)

static void test_stat_parse(void)
{
    static const char v618[] = "ksm_rmap_items 131072\nksm_zero_pages 12\nksm_merging_pages "
                               "17084\nksm_process_profit 61587456\nksm_merge_any: no\n"
                               "ksm_mergeable: yes\n";
    static const char v61[] = "ksm_rmap_items 1000\n";
    static const char extra[] = "ksm_future_thing 7 8 9\nksm_rmap_items\t5\r\n"
                                "ksm_process_profit -320\nksm_merging_pages 0"; /* no final \n */
    g_autoptr(GError) error = NULL;
    KsmProcStat st;
    gint64 profit = 0;

    g_assert_true(ksm_proc_parse_stat(v618, strlen(v618), &st, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(st.rmap_items, ==, 131072);
    g_assert_true(st.has_merging_pages);
    g_assert_cmpuint(st.merging_pages, ==, 17084);
    g_assert_true(st.has_zero_pages);
    g_assert_cmpuint(st.zero_pages, ==, 12);
    g_assert_true(st.has_profit);
    g_assert_cmpint(st.profit, ==, 61587456);
    g_assert_true(st.has_merge_any);
    g_assert_false(st.merge_any);
    g_assert_true(st.has_mergeable);
    g_assert_true(st.mergeable);
    g_assert_true(ksm_proc_profit(&st, 4096, &profit));
    g_assert_cmpint(profit, ==, 61587456); /* the kernel's own figure wins */

    g_assert_true(ksm_proc_parse_stat(v61, strlen(v61), &st, &error));
    g_assert_cmpuint(st.rmap_items, ==, 1000);
    g_assert_false(st.has_merging_pages);
    g_assert_false(st.has_profit);
    g_assert_false(ksm_proc_profit(&st, 4096, &profit)); /* unknown, not 0 */
    st.has_merging_pages = TRUE;
    st.merging_pages = 300;
    g_assert_true(ksm_proc_profit(&st, 4096, &profit));
    g_assert_cmpint(profit, ==, 300 * 4096 - 1000 * 64);

    g_assert_true(ksm_proc_parse_stat(extra, strlen(extra), &st, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(st.rmap_items, ==, 5);
    g_assert_cmpint(st.profit, ==, -320);
    g_assert_true(st.has_merging_pages);
    g_assert_cmpuint(st.merging_pages, ==, 0);

    /* len bounds the parse: the text after it is not seen */
    g_assert_true(ksm_proc_parse_stat(v618, strlen("ksm_rmap_items 13"), &st, &error));
    g_assert_cmpuint(st.rmap_items, ==, 13);
    g_assert_false(st.has_merging_pages);
}

static void test_stat_parse_bad(void)
{
    static const struct {
        const char *text;
        gsize len; /* 0: strlen */
        int code;
    } cases[] = {
        {"", 0, PROCFS_ERROR_MISSING},
        {"ksm_merging_pages 5\n", 0, PROCFS_ERROR_MISSING},
        {"\x01\x02garbage\xff\n\n", 0, PROCFS_ERROR_MISSING},
        {"ksm_rmap_items\n", 0, PROCFS_ERROR_PARSE},
        {"ksm_rmap_items -1\n", 0, PROCFS_ERROR_PARSE},
        {"ksm_rmap_items 12abc\n", 0, PROCFS_ERROR_PARSE},
        {"ksm_rmap_items 99999999999999999999999\n", 0, PROCFS_ERROR_PARSE},
        {"ksm_rmap_items 1\nksm_rmap_items 2\n", 0, PROCFS_ERROR_PARSE},
        {"ksm_rmap_items 1\nksm_process_profit 1.5\n", 0, PROCFS_ERROR_PARSE},
        {"ksm_rmap_items 1\nksm_merge_any: maybe\n", 0, PROCFS_ERROR_PARSE},
        {"ksm_rmap_items 1\nksm_merging_pages 1 2\n", 0, PROCFS_ERROR_PARSE},
        {"ksm_rmap_items 1\0 2\n", 19, PROCFS_ERROR_PARSE},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        KsmProcStat st = {.rmap_items = 4242};
        gsize len = cases[i].len ? cases[i].len : strlen(cases[i].text);

        g_test_message("bad case %zu", i);
        g_assert_false(ksm_proc_parse_stat(cases[i].text, len, &st, &error));
        g_assert_error(error, PROCFS_ERROR, cases[i].code);
        g_assert_cmpuint(st.rmap_items, ==, 4242);
    }

    /* a long line of garbage: skipped, not overflowing anything */
    {
        g_autoptr(GString) s = g_string_new("ksm_rmap_items 3\n");
        g_autoptr(GError) error = NULL;
        KsmProcStat st;

        for (int i = 0; i < 10000; i++)
            g_string_append_c(s, 'x');
        g_string_append(s, "\nksm_merging_pages ");
        for (int i = 0; i < 500; i++)
            g_string_append_c(s, '1');
        g_assert_false(ksm_proc_parse_stat(s->str, s->len, &st, &error));
        g_assert_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE);
    }
}

static void test_stat_read(void)
{
    char *root = ksm_fixture_new("ksm-6.1");
    g_autoptr(GError) error = NULL;
    KsmProcStat st;
    gint64 profit;

    /* 6.1: merging pages come from /proc/<pid>/ksm_merging_pages */
    g_assert_true(ksm_proc_read_stat(root, 777, &st, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(st.rmap_items, ==, 1000);
    g_assert_true(st.has_merging_pages);
    g_assert_cmpuint(st.merging_pages, ==, 300);
    g_assert_true(ksm_proc_profit(&st, 4096, &profit));
    g_assert_cmpint(profit, ==, 300 * 4096 - 1000 * 64);

    ksm_fixture_write(root, "proc/777/ksm_merging_pages", "lots\n");
    g_assert_true(ksm_proc_read_stat(root, 777, &st, &error));
    g_assert_false(st.has_merging_pages);

    g_assert_false(ksm_proc_read_stat(root, 778, &st, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);
    g_assert_false(ksm_proc_read_stat(root, -1, &st, &error));
    g_clear_error(&error);
    ksm_fixture_write(root, "proc/777/ksm_stat", "garbage\n");
    g_assert_false(ksm_proc_read_stat(root, 777, &st, &error));
    g_assert_error(error, PROCFS_ERROR, PROCFS_ERROR_MISSING);
    ksm_fixture_free(root);
}

#define QEMU_UID 64055 /* the fixtures' libvirt-qemu */

static void test_smaps(void)
{
    char *root = ksm_fixture_new("ksm-6.18");
    g_autoptr(GError) error = NULL;
    KsmProcSmaps m;
    guint32 uid = 0;

    g_assert_true(ksm_proc_read_smaps(root, 4242, &m, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(m.n_mappings, ==, 4);
    g_assert_cmpuint(m.largest_kib, ==, 1048576);
    g_assert_true(m.largest_mergeable);
    g_assert_cmpuint(m.mergeable_kib, ==, 1048576 + 16384);
    /* after qom-set merge=false: the RAM lost "mg", the VGA RAM kept it */
    g_autofree char *text = ksm_fixture_read(root, "proc/4242/smaps");
    g_autofree char *after = NULL;
    {
        g_autoptr(GString) t = g_string_new(text);
        g_string_replace(t, "ac sd nh mg", "ac sd nh", 1);
        after = g_string_free(g_steal_pointer(&t), FALSE);
    }
    g_assert_true(ksm_proc_parse_smaps(after, strlen(after), &m, &error));
    g_assert_false(m.largest_mergeable);
    g_assert_cmpuint(m.mergeable_kib, ==, 16384);
    /* cut off in the middle: the mappings seen whole count, nothing past len */
    g_assert_true(ksm_proc_parse_smaps(text, 300, &m, &error));
    g_assert_cmpuint(m.largest_kib, ==, 5548);
    g_assert_false(ksm_proc_parse_smaps("garbage", 7, &m, &error));
    g_assert_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE);
    g_clear_error(&error);
    g_assert_false(ksm_proc_read_smaps(root, 4300, &m, &error)); /* no smaps file */
    g_clear_error(&error);

    const char *st = "Name:\tq\nUid:\t64055\t0\t0\t0\n";
    g_assert_true(ksm_proc_parse_uid(st, strlen(st), &uid, &error));
    g_assert_cmpuint(uid, ==, 64055);
    g_assert_false(ksm_proc_parse_uid("Uid:\tx\n", 7, &uid, &error));
    g_clear_error(&error);
    ksm_fixture_free(root);
}

static void test_find_pid(void)
{
    char *root = ksm_fixture_new("ksm-6.18");
    g_autoptr(GError) error = NULL;
    gint pid = 0;

    /* pid file, confirmed by cmdline */
    g_assert_true(ksm_proc_find_qemu_pid(root, NULL, "vm1", QEMU_UID, &pid, &error));
    g_assert_no_error(error);
    g_assert_cmpint(pid, ==, 4242);
    /* no pid file; QEMU's ",," escaping of a comma in the name */
    g_assert_true(ksm_proc_find_qemu_pid(root, NULL, "vm,2", QEMU_UID, &pid, &error));
    g_assert_cmpint(pid, ==, 4300);
    /* stale pid file pointing at another guest: the scan finds the right one */
    g_assert_true(ksm_proc_find_qemu_pid(root, NULL, "vm3", QEMU_UID, &pid, &error));
    g_assert_cmpint(pid, ==, 4400);
    /* a prefix of a name, or "vm" matching "vm,,2" up to the comma: no */
    g_assert_false(ksm_proc_find_qemu_pid(root, NULL, "vm", QEMU_UID, &pid, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);
    g_assert_false(
        ksm_proc_find_qemu_pid(root, NULL, "vm1,debug-threads=on", QEMU_UID, &pid, &error));
    g_clear_error(&error);
    /* names that would escape the pid directory */
    g_assert_false(ksm_proc_find_qemu_pid(root, NULL, "../../etc/passwd", QEMU_UID, &pid, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    g_clear_error(&error);
    g_assert_false(ksm_proc_find_qemu_pid(root, NULL, "", QEMU_UID, &pid, &error));
    g_clear_error(&error);
    /* a process of another user that names a guest in its argv is not its
     * QEMU: only libvirt's pid file, or a process of the QEMU user, is */
    g_assert_false(ksm_proc_find_qemu_pid(root, NULL, "vm6", QEMU_UID, &pid, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);
    g_assert_true(ksm_proc_find_qemu_pid(root, NULL, "vm6", 1000, &pid, &error));
    g_assert_cmpint(pid, ==, 4600);
    /* no QEMU user known: the pid file or nothing */
    g_assert_false(ksm_proc_find_qemu_pid(root, NULL, "vm,2", -1, &pid, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);
    g_assert_true(ksm_proc_find_qemu_pid(root, NULL, "vm1", -1, &pid, &error));
    g_assert_cmpint(pid, ==, 4242);
    /* another pid directory (qemu:///session keeps them elsewhere) */
    ksm_fixture_write(root, "home/run/vm,2.pid", "4300\n");
    g_assert_true(ksm_proc_find_qemu_pid(root, "home/run", "vm,2", QEMU_UID, &pid, &error));
    g_assert_cmpint(pid, ==, 4300);
    ksm_fixture_free(root);

    /* cmdline matching on its own */
    static const char c1[] = "qemu\0-name\0guest=a,debug-threads=on\0-m\0512";
    static const char c2[] = "qemu\0-name\0guest=a";  /* cut off */
    static const char c3[] = "qemu\0-foo\0guest=a\0"; /* not after -name */
    static const char c4[] = "qemu\0-name\0guest=a,,b,x=y\0";
    static const char c5[] = "qemu\0-name"; /* nothing after */
    g_assert_true(ksm_proc_cmdline_is_guest(c1, sizeof(c1) - 1, "a"));
    g_assert_false(ksm_proc_cmdline_is_guest(c1, sizeof(c1) - 1, "b"));
    g_assert_true(ksm_proc_cmdline_is_guest(c2, sizeof(c2) - 1, "a"));
    g_assert_false(ksm_proc_cmdline_is_guest(c3, sizeof(c3) - 1, "a"));
    g_assert_true(ksm_proc_cmdline_is_guest(c4, sizeof(c4) - 1, "a,b"));
    g_assert_false(ksm_proc_cmdline_is_guest(c4, sizeof(c4) - 1, "a"));
    g_assert_false(ksm_proc_cmdline_is_guest(c5, sizeof(c5) - 1, "a"));
    g_assert_false(ksm_proc_cmdline_is_guest("", 0, "a"));
}

static KsmConfig config_default(void)
{
    KsmConfig c;

    ksm_config_init_defaults(&c);
    return c;
}

static KsmVmFacts facts(PolicyKsm ksm, gint64 profit_mib, guint64 full_scans)
{
    KsmVmFacts f = {0};

    f.name = "vm1";
    f.ksm = ksm;
    f.has_stat = TRUE;
    f.stat.rmap_items = 131072;
    f.stat.has_merging_pages = TRUE;
    f.stat.merging_pages = profit_mib > 0 ? (guint64)profit_mib * 256 : 0;
    f.stat.has_profit = TRUE;
    f.stat.profit = profit_mib * MIB;
    f.full_scans = full_scans;
    f.page_size = 4096;
    return f;
}

static void test_decide_never_always(void)
{
    KsmConfig c = config_default();
    KsmVmState st = {0};
    KsmVmDecision d;
    KsmVmFacts f = facts(POLICY_KSM_NEVER, 500, 10);

    /* never: excluded whatever the profit, enforced at first sight */
    ksm_vm_decide(&f, &st, &c, S, &d);
    g_assert_true(d.exclude);
    g_assert_true(d.changed);
    g_assert_cmpint(d.why, ==, KSM_VM_WHY_NEVER);
    g_assert_nonnull(strstr(d.reason, "CVE-2015-2877"));
    g_assert_nonnull(strstr(d.reason, "tenant isolation"));
    st = d.state;
    ksm_vm_decide(&f, &st, &c, 2 * S, &d);
    g_assert_true(d.exclude);
    g_assert_false(d.changed); /* nothing new: no repeated work */

    /* metadata changes to always: re-included */
    f.ksm = POLICY_KSM_ALWAYS;
    f.latency_sensitive = TRUE; /* always wins */
    st = d.state;
    ksm_vm_decide(&f, &st, &c, 3 * S, &d);
    g_assert_false(d.exclude);
    g_assert_true(d.changed);
    g_assert_cmpint(d.why, ==, KSM_VM_WHY_ALWAYS);

    /* always at first sight: nothing to do (ballast undoes only its own exclusions) */
    memset(&st, 0, sizeof(st));
    f.stat.profit = -100 * MIB;
    ksm_vm_decide(&f, &st, &c, 4 * S, &d);
    g_assert_false(d.exclude);
    g_assert_false(d.changed);
    ksm_config_clear(&c);
}

static void test_decide_latency(void)
{
    KsmConfig c = config_default();
    KsmVmState st = {0};
    KsmVmDecision d;
    KsmVmFacts f = facts(POLICY_KSM_AUTO, 500, 10);

    f.latency_sensitive = TRUE;
    ksm_vm_decide(&f, &st, &c, S, &d);
    g_assert_true(d.exclude);
    g_assert_true(d.changed);
    g_assert_cmpint(d.why, ==, KSM_VM_WHY_LATENCY);
    g_assert_nonnull(strstr(d.reason, "metadata"));

    /* from the configuration list */
    f.latency_sensitive = FALSE;
    f.name = "rt1";
    c.latency_sensitive = g_strsplit("db;rt1", ";", -1);
    memset(&st, 0, sizeof(st));
    ksm_vm_decide(&f, &st, &c, S, &d);
    g_assert_true(d.exclude);
    g_assert_nonnull(strstr(d.reason, "configuration"));

    /* taken off the list: included again, measuring from scratch */
    g_clear_pointer(&c.latency_sensitive, g_strfreev);
    st = d.state;
    ksm_vm_decide(&f, &st, &c, 2 * S, &d);
    g_assert_false(d.exclude);
    g_assert_true(d.changed);
    g_assert_cmpuint(d.state.low_scans, ==, 0);
    ksm_config_clear(&c);
}

/* Feed a series of (profit MiB, full_scans) samples; return the first sample
 * index at which the VM got excluded, or -1. */
static int run_series(const gint64 *profit, const guint64 *scans, gsize n, KsmVmState *st)
{
    KsmConfig c = config_default();
    int excluded_at = -1;

    for (gsize i = 0; i < n; i++) {
        KsmVmFacts f = facts(POLICY_KSM_AUTO, profit[i], scans[i]);
        KsmVmDecision d;

        ksm_vm_decide(&f, st, &c, (gint64)(i + 1) * 10 * S, &d);
        if (d.changed && d.exclude && excluded_at < 0) {
            excluded_at = (int)i;
            g_assert_cmpint(d.why, ==, KSM_VM_WHY_LOW_PROFIT);
            g_assert_nonnull(strstr(d.reason, "does not pay"));
        }
        if (excluded_at < 0)
            g_assert_false(d.exclude);
        *st = d.state;
    }
    ksm_config_clear(&c);
    return excluded_at;
}

static void test_decide_auto_profit(void)
{
    KsmVmState st;

    /* low profit over 3 full scans (after the baseline sample): excluded at the 4th sample */
    {
        const gint64 p[] = {0, 0, 0, 0, 0};
        const guint64 s[] = {1, 2, 3, 4, 5};
        memset(&st, 0, sizeof(st));
        g_assert_cmpint(run_series(p, s, G_N_ELEMENTS(p), &st), ==, 3);
        g_assert_true(st.excluded);
    }
    /* well above the threshold: never excluded */
    {
        const gint64 p[] = {60, 60, 60, 60, 60, 60};
        const guint64 s[] = {1, 2, 3, 4, 5, 6};
        memset(&st, 0, sizeof(st));
        g_assert_cmpint(run_series(p, s, G_N_ELEMENTS(p), &st), ==, -1);
        g_assert_false(st.excluded);
    }
    /* negative profit but full_scans not moving (KSM stopped): no verdict */
    {
        const gint64 p[] = {-8, -8, -8, -8, -8, -8};
        const guint64 s[] = {4, 4, 4, 4, 4, 4};
        memset(&st, 0, sizeof(st));
        g_assert_cmpint(run_series(p, s, G_N_ELEMENTS(p), &st), ==, -1);
    }
    /* several samples within one scan count once */
    {
        const gint64 p[] = {-8, -8, -8, -8, -8, -8, -8};
        const guint64 s[] = {1, 2, 2, 2, 3, 3, 4};
        memset(&st, 0, sizeof(st));
        g_assert_cmpint(run_series(p, s, G_N_ELEMENTS(p), &st), ==, 6);
    }
    /* hysteresis: a good scan in between resets the count, no flapping */
    {
        const gint64 p[] = {0, 0, 0, 5, 0, 0, 5, 0, 0, 5};
        const guint64 s[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        memset(&st, 0, sizeof(st));
        g_assert_cmpint(run_series(p, s, G_N_ELEMENTS(p), &st), ==, -1);
    }
}

static void test_decide_auto_no_data_and_retry(void)
{
    KsmConfig c = config_default();
    KsmVmState st = {0};
    KsmVmDecision d;
    KsmVmFacts f = facts(POLICY_KSM_AUTO, 0, 1);

    /* no ksm_stat: allowed, no verdict */
    f.has_stat = FALSE;
    for (guint64 i = 1; i < 10; i++) {
        f.full_scans = i;
        ksm_vm_decide(&f, &st, &c, (gint64)i * S, &d);
        g_assert_false(d.exclude);
        g_assert_cmpint(d.why, ==, KSM_VM_WHY_NO_DATA);
        st = d.state;
    }
    /* rmap_items 0: not scanned (or started with nosharepages): no verdict */
    f.has_stat = TRUE;
    f.stat.rmap_items = 0;
    for (guint64 i = 10; i < 20; i++) {
        f.full_scans = i;
        ksm_vm_decide(&f, &st, &c, (gint64)i * S, &d);
        g_assert_false(d.exclude);
        g_assert_cmpint(d.why, ==, KSM_VM_WHY_NO_DATA);
        st = d.state;
    }
    /* scanned now and not paying: excluded after 3 scans */
    f.stat.rmap_items = 1000;
    for (guint64 i = 20; i < 24; i++) {
        f.full_scans = i;
        ksm_vm_decide(&f, &st, &c, 100 * S, &d);
        st = d.state;
    }
    g_assert_true(d.exclude);
    g_assert_true(d.changed);
    g_assert_nonnull(strstr(d.reason, "over 3 full scans"));

    /* the VM restarts (ksm-run clears decided): enforced again, retry clock kept */
    {
        KsmVmState restarted = st;

        restarted.decided = FALSE;
        ksm_vm_decide(&f, &restarted, &c, 200 * S, &d);
        g_assert_true(d.exclude);
        g_assert_true(d.changed);
        g_assert_cmpint(d.state.excluded_at_us, ==, 100 * S);
    }

    /* held out for vm_retry_after_s even though profit now looks fine (it cannot be measured) */
    f.stat.profit = 100 * MIB;
    ksm_vm_decide(&f, &st, &c, (100 + 3599) * S, &d);
    g_assert_true(d.exclude);
    g_assert_false(d.changed);
    g_assert_nonnull(strstr(d.reason, "measured again in 1 s"));
    st = d.state;
    ksm_vm_decide(&f, &st, &c, (100 + 3600) * S, &d);
    g_assert_false(d.exclude);
    g_assert_true(d.changed);
    g_assert_cmpint(d.why, ==, KSM_VM_WHY_RETRY);
    g_assert_false(d.state.measuring);

    /* vm_retry_after_s = 0: never re-included by time */
    c.vm_retry_after_s = 0;
    st.excluded = TRUE;
    st.decided = TRUE;
    st.why = KSM_VM_WHY_LOW_PROFIT;
    st.excluded_at_us = S;
    ksm_vm_decide(&f, &st, &c, 1000000 * S, &d);
    g_assert_true(d.exclude);
    g_assert_false(d.changed);
    ksm_config_clear(&c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ksm/vm/stat-parse", test_stat_parse);
    g_test_add_func("/ksm/vm/stat-parse-bad", test_stat_parse_bad);
    g_test_add_func("/ksm/vm/stat-read", test_stat_read);
    g_test_add_func("/ksm/vm/smaps", test_smaps);
    g_test_add_func("/ksm/vm/find-pid", test_find_pid);
    g_test_add_func("/ksm/vm/never-always", test_decide_never_always);
    g_test_add_func("/ksm/vm/latency", test_decide_latency);
    g_test_add_func("/ksm/vm/auto-profit", test_decide_auto_profit);
    g_test_add_func("/ksm/vm/auto-no-data-retry", test_decide_auto_no_data_and_retry);
    return g_test_run();
}
