/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for common/procfs: parsers over hostile text, the reader on temp trees. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procfs.h"

#define MEMINFO_61                                                                                 \
    "MemTotal:         209800 kB\n"                                                                \
    "MemFree:           81232 kB\n"                                                                \
    "MemAvailable:     123456 kB\n"                                                                \
    "Buffers:               0 kB\n"                                                                \
    "Cached:            40000 kB\n"                                                                \
    "SwapCached:            0 kB\n"                                                                \
    "SwapTotal:       1048572 kB\n"                                                                \
    "SwapFree:        1000000 kB\n"                                                                \
    "Committed_AS:     300000 kB\n"                                                                \
    "HugePages_Total:       0\n"

static void test_meminfo_good(void)
{
    g_autoptr(GError) error = NULL;
    BlMem m;

    g_assert_true(procfs_parse_meminfo(MEMINFO_61, strlen(MEMINFO_61), &m, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(m.total_kib, ==, 209800);
    g_assert_cmpuint(m.free_kib, ==, 81232);
    g_assert_cmpuint(m.available_kib, ==, 123456);
    g_assert_cmpuint(m.cached_kib, ==, 40000);
    g_assert_cmpuint(m.swap_total_kib, ==, 1048572);
    g_assert_cmpuint(m.swap_free_kib, ==, 1000000);
    g_assert_cmpuint(m.committed_as_kib, ==, 300000);
}

static void test_meminfo_optional_absent(void)
{
    const char *t = "MemFree: 5 kB\nMemTotal: 10 kB\nMemAvailable: 7 kB"; /* no final \n */
    g_autoptr(GError) error = NULL;
    BlMem m;

    g_assert_true(procfs_parse_meminfo(t, strlen(t), &m, &error));
    g_assert_cmpuint(m.total_kib, ==, 10);
    g_assert_cmpuint(m.free_kib, ==, 5);
    g_assert_cmpuint(m.available_kib, ==, 7);
    g_assert_cmpuint(m.cached_kib, ==, 0);
    g_assert_cmpuint(m.swap_total_kib, ==, 0);
}

static void test_meminfo_missing(void)
{
    const char *t = "MemTotal: 10 kB\nMemFree: 5 kB\n";
    g_autoptr(GError) error = NULL;
    BlMem m;

    g_assert_false(procfs_parse_meminfo(t, strlen(t), &m, &error));
    g_assert_error(error, PROCFS_ERROR, PROCFS_ERROR_MISSING);
    g_assert_nonnull(strstr(error->message, "MemAvailable"));
}

static void test_meminfo_truncated(void)
{
    /* Every prefix either fails cleanly or, once the three required keys
     * are complete, succeeds; no prefix may read past its length (ASan). */
    gsize full = strlen(MEMINFO_61);
    const char *avail_end = strstr(MEMINFO_61, "Buffers");

    for (gsize n = 0; n <= full; n++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *copy = g_memdup2(MEMINFO_61, n ? n : 1);
        BlMem m;
        gboolean ok = procfs_parse_meminfo(copy, n, &m, &error);

        if (n == full) {
            g_assert_true(ok);
        } else if (n >= (gsize)(avail_end - MEMINFO_61)) {
            /* a later known line cut before its number is malformed */
            if (ok)
                g_assert_cmpuint(m.available_kib, ==, 123456);
            else
                g_assert_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE);
        } else if (!ok) {
            g_assert_nonnull(error);
        } else {
            /* a prefix cut inside MemAvailable's digits is a smaller number */
            g_assert_cmpuint(m.available_kib, <=, 123456);
        }
    }
}

static void test_meminfo_overflow(void)
{
    const char *t = "MemTotal: 18446744073709551616 kB\nMemFree: 1 kB\nMemAvailable: 1 kB\n";
    const char *max = "MemTotal: 18446744073709551615 kB\nMemFree: 1 kB\nMemAvailable: 1 kB\n";
    g_autoptr(GError) error = NULL;
    BlMem m;

    g_assert_false(procfs_parse_meminfo(t, strlen(t), &m, &error));
    g_assert_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE);
    g_clear_error(&error);
    g_assert_true(procfs_parse_meminfo(max, strlen(max), &m, &error));
    g_assert_cmpuint(m.total_kib, ==, G_MAXUINT64);
}

static void test_meminfo_garbage(void)
{
    const char *bad[] = {
        "MemTotal: -5 kB\nMemFree: 1 kB\nMemAvailable: 1 kB\n",
        "MemTotal: 5 MB\nMemFree: 1 kB\nMemAvailable: 1 kB\n",
        "MemTotal: kB\nMemFree: 1 kB\nMemAvailable: 1 kB\n",
        "MemTotal: 5 kB 7\nMemFree: 1 kB\nMemAvailable: 1 kB\n",
        "MemTotal: 0x10 kB\nMemFree: 1 kB\nMemAvailable: 1 kB\n",
        "",
        "\n\n\n",
        ":::::\n",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        BlMem m;

        g_assert_false(procfs_parse_meminfo(bad[i], strlen(bad[i]), &m, &error));
        g_assert_nonnull(error);
    }
}

static void test_meminfo_embedded_nul_and_dup(void)
{
    static const char t[] = "junk\0junk\nMemTotal: 10 kB\nMemTotal: 99 kB\n\0\n"
                            "MemFree: 5 kB\nMemAvailable: 7 kB\n";
    g_autoptr(GError) error = NULL;
    BlMem m;

    g_assert_true(procfs_parse_meminfo(t, sizeof(t) - 1, &m, &error));
    g_assert_cmpuint(m.total_kib, ==, 10); /* the first one wins */
}

/* 10 MB of junk, then valid lines: parsed, bounded, not slow to fail */
static void test_huge(void)
{
    gsize n = 10 * 1024 * 1024;
    g_autoptr(GString) s = g_string_sized_new(n + 256);
    g_autoptr(GError) error = NULL;
    guint32 x = 12345;
    BlMem m;
    BlVmstat vs;
    BlPsi psi;
    guint64 up;

    for (gsize i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        g_string_append_c(s, (char)(x >> 24));
    }
    g_assert_false(procfs_parse_meminfo(s->str, s->len, &m, &error));
    g_clear_error(&error);
    g_assert_false(procfs_parse_pressure(s->str, s->len, &psi, &error));
    g_clear_error(&error);
    (void)procfs_parse_vmstat(s->str, s->len, &vs, NULL);
    (void)procfs_parse_uptime(s->str, s->len, &up, NULL); /* any answer, within bounds (ASan) */

    g_string_append(s, "\nMemTotal: 10 kB\nMemFree: 5 kB\nMemAvailable: 7 kB\n");
    g_assert_true(procfs_parse_meminfo(s->str, s->len, &m, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(m.available_kib, ==, 7);

    g_string_truncate(s, n);
    g_string_append(s, "\noom_kill 3\n");
    g_assert_true(procfs_parse_vmstat(s->str, s->len, &vs, &error));
    g_assert_true(vs.present & (1u << BL_VMSTAT_OOM_KILL));
    g_assert_cmpuint(vs.value[BL_VMSTAT_OOM_KILL], ==, 3);
}

#define PSI_61                                                                                     \
    "some avg10=1.50 avg60=0.25 avg300=100.00 total=123456789\n"                                   \
    "full avg10=0.00 avg60=0.01 avg300=0.00 total=42\n"

static void test_pressure_good(void)
{
    g_autoptr(GError) error = NULL;
    BlPsi p;

    g_assert_true(procfs_parse_pressure(PSI_61, strlen(PSI_61), &p, &error));
    g_assert_cmpfloat(p.some.avg10, ==, 1.5);
    g_assert_cmpfloat(p.some.avg60, ==, 0.25);
    g_assert_cmpfloat(p.some.avg300, ==, 100.0);
    g_assert_cmpuint(p.some.total_us, ==, 123456789);
    g_assert_cmpfloat(p.full.avg60, ==, 0.01);
    g_assert_cmpuint(p.full.total_us, ==, 42);
}

static void test_pressure_some_only(void)
{
    const char *t = "some avg10=2.00 avg60=1.00 avg300=0.50 total=7";
    g_autoptr(GError) error = NULL;
    BlPsi p;

    g_assert_true(procfs_parse_pressure(t, strlen(t), &p, &error));
    g_assert_cmpuint(p.some.total_us, ==, 7);
    g_assert_cmpuint(p.full.total_us, ==, 0);
    g_assert_cmpfloat(p.full.avg10, ==, 0.0);
}

static void test_pressure_bad(void)
{
    const char *bad[] = {
        "",
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        "some avg10=0.00 avg60=0.00 avg300=0.00\n",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551616\n",
        "some avg10=100.01 avg60=0.00 avg300=0.00 total=0\n",
        "some avg10=-1 avg60=0.00 avg300=0.00 total=0\n",
        "some avg10=nan avg60=0.00 avg300=0.00 total=0\n",
        "some avg10=1e2 avg60=0.00 avg300=0.00 total=0\n",
        "some avg10=1.2.3 avg60=0.00 avg300=0.00 total=0\n",
        "some avg10= avg60=0.00 avg300=0.00 total=0\n",
        "some garbage\n",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=0x1\n",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        BlPsi p;

        g_assert_false(procfs_parse_pressure(bad[i], strlen(bad[i]), &p, &error));
        g_assert_nonnull(error);
    }
}

static void test_pressure_truncated(void)
{
    gsize full = strlen(PSI_61);
    gsize some_end = (gsize)(strchr(PSI_61, '\n') - PSI_61);
    gsize first_total_digit = (gsize)(strstr(PSI_61, "total=") + 6 - PSI_61);

    for (gsize n = 0; n <= full; n++) {
        g_autofree char *copy = g_memdup2(PSI_61, n ? n : 1);
        BlPsi p;
        gboolean ok = procfs_parse_pressure(copy, n, &p, NULL);

        if (n <= first_total_digit)
            g_assert_false(ok); /* past it, "total=1234" is a valid shorter total */
        if (n >= some_end)
            g_assert_cmpuint(p.some.total_us, ==, 123456789);
    }
}

#define VMSTAT_61                                                                                  \
    "nr_free_pages 20000\n"                                                                        \
    "pgmajfault 1234\n"                                                                            \
    "pswpin 10\n"                                                                                  \
    "pswpout 20\n"                                                                                 \
    "workingset_refault_anon 30\n"                                                                 \
    "workingset_refault_file 40\n"                                                                 \
    "oom_kill 2\n"

static void test_vmstat_good(void)
{
    g_autoptr(GError) error = NULL;
    BlVmstat v;

    g_assert_true(procfs_parse_vmstat(VMSTAT_61, strlen(VMSTAT_61), &v, &error));
    g_assert_cmpuint(v.present, ==, (1u << BL_VMSTAT_N_COUNTERS) - 1);
    g_assert_cmpuint(v.value[BL_VMSTAT_PGMAJFAULT], ==, 1234);
    g_assert_cmpuint(v.value[BL_VMSTAT_PSWPIN], ==, 10);
    g_assert_cmpuint(v.value[BL_VMSTAT_PSWPOUT], ==, 20);
    g_assert_cmpuint(v.value[BL_VMSTAT_WORKINGSET_REFAULT_ANON], ==, 30);
    g_assert_cmpuint(v.value[BL_VMSTAT_WORKINGSET_REFAULT_FILE], ==, 40);
    g_assert_cmpuint(v.value[BL_VMSTAT_OOM_KILL], ==, 2);
}

static void test_vmstat_partial_and_legacy(void)
{
    const char *t = "nr_free_pages 1\nworkingset_refault 77\npswpin 5\n";
    g_autoptr(GError) error = NULL;
    BlVmstat v;

    g_assert_true(procfs_parse_vmstat(t, strlen(t), &v, &error));
    g_assert_cmpuint(v.present, ==,
                     (1u << BL_VMSTAT_PSWPIN) | (1u << BL_VMSTAT_WORKINGSET_REFAULT_FILE));
    g_assert_cmpuint(v.value[BL_VMSTAT_WORKINGSET_REFAULT_FILE], ==, 77);
    g_assert_cmpuint(v.value[BL_VMSTAT_PSWPIN], ==, 5);
    g_assert_false(v.present & (1u << BL_VMSTAT_OOM_KILL));
}

static void test_vmstat_bad(void)
{
    const char *bad[] = {
        "",
        "garbage\n\n",
        "oom_kill 18446744073709551616\n",
        "oom_kill -1\n",
        "pswpin 12 kB\n",
        "nr_free_pages 1\noom_kill\n",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        BlVmstat v;

        g_assert_false(procfs_parse_vmstat(bad[i], strlen(bad[i]), &v, &error));
        g_assert_nonnull(error);
    }
}

static void test_uptime(void)
{
    struct {
        const char *text;
        gboolean ok;
        guint64 ms;
    } cases[] = {
        {"350735.47 234388.90\n", TRUE, 350735470},
        {"0.00 0.00\n", TRUE, 0},
        {"12", TRUE, 12000},
        {"12.3456 1", TRUE, 12345},
        {"18446744073709551.615 0\n", FALSE, 0},
        {"18446744073709550.000 0\n", TRUE, 18446744073709550000ull},
        {"99999999999999999999999.0\n", FALSE, 0},
        {"", FALSE, 0},
        {"abc", FALSE, 0},
        {"12. 3", FALSE, 0},
        {"12x", FALSE, 0},
        {"-1.00 0\n", FALSE, 0},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        guint64 ms = 0;
        gboolean ok = procfs_parse_uptime(cases[i].text, strlen(cases[i].text), &ms, &error);

        g_assert_cmpint(ok, ==, cases[i].ok);
        if (ok)
            g_assert_cmpuint(ms, ==, cases[i].ms);
        else
            g_assert_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE);
    }
}

static char *make_tree(void)
{
    g_autoptr(GError) error = NULL;
    char *dir = g_dir_make_tmp("ballast-procfs-XXXXXX", &error);
    g_autofree char *proc = NULL;
    g_autofree char *f = NULL;

    g_assert_no_error(error);
    proc = g_build_filename(dir, "proc", NULL);
    g_assert_cmpint(g_mkdir(proc, 0755), ==, 0);
    f = g_build_filename(proc, "meminfo", NULL);
    g_assert_true(g_file_set_contents(f, MEMINFO_61, -1, &error));
    return dir;
}

static void rm_tree(const char *dir)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    g_assert_cmpint(system(cmd), ==, 0);
}

static void test_read_file(void)
{
    g_autofree char *dir = make_tree();
    g_autofree char *slashed = g_strconcat(dir, "///", NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    char small[16];
    char exact[sizeof(MEMINFO_61)];
    gsize len = 0;

    g_assert_true(procfs_read_file(dir, "proc/meminfo", 1 << 20, &text, &len, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(text, ==, MEMINFO_61);
    g_assert_cmpuint(len, ==, strlen(MEMINFO_61));
    g_clear_pointer(&text, g_free);

    /* trailing slashes on root, leading slash on relpath */
    g_assert_true(procfs_read_file(slashed, "/proc/meminfo", 1 << 20, &text, &len, &error));
    g_assert_cmpstr(text, ==, MEMINFO_61);
    g_clear_pointer(&text, g_free);

    /* exactly max_bytes fits; one less is too big */
    g_assert_true(procfs_read_file(dir, "proc/meminfo", strlen(MEMINFO_61), &text, &len, &error));
    g_clear_pointer(&text, g_free);
    g_assert_false(
        procfs_read_file(dir, "proc/meminfo", strlen(MEMINFO_61) - 1, &text, &len, &error));
    g_assert_error(error, PROCFS_ERROR, PROCFS_ERROR_TOO_BIG);
    g_assert_null(text);
    g_clear_error(&error);

    g_assert_true(procfs_read_into(dir, "proc/meminfo", exact, sizeof(exact), &len, &error));
    g_assert_cmpstr(exact, ==, MEMINFO_61);
    g_assert_false(procfs_read_into(dir, "proc/meminfo", small, sizeof(small), &len, &error));
    g_assert_error(error, PROCFS_ERROR, PROCFS_ERROR_TOO_BIG);
    g_clear_error(&error);

    g_assert_false(procfs_read_file(dir, "proc/nope", 100, &text, &len, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);
    g_assert_false(procfs_read_file(dir, "proc", 100, &text, &len, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL); /* a directory */
    g_clear_error(&error);
    g_assert_false(procfs_read_file(dir, "proc/../proc/meminfo", 1 << 20, &text, &len, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    g_clear_error(&error);
    rm_tree(dir);
}

static void test_read_fifo_does_not_hang(void)
{
    g_autofree char *dir = make_tree();
    g_autofree char *fifo = g_build_filename(dir, "proc", "fifo", NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;

    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_assert_false(procfs_read_file(dir, "proc/fifo", 100, &text, NULL, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    rm_tree(dir);
}

/* The real /proc of this machine parses (size-0 files read fully). */
static void test_real_proc(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    gsize len;
    BlMem m;
    BlVmstat v;
    guint64 up;

    g_assert_true(procfs_read_file("/", "proc/meminfo", 1 << 20, &text, &len, &error));
    g_assert_true(procfs_parse_meminfo(text, len, &m, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(m.total_kib, >, 0);
    g_assert_cmpuint(m.available_kib, <=, m.total_kib);
    g_clear_pointer(&text, g_free);
    g_assert_true(procfs_read_file(NULL, "proc/vmstat", 1 << 20, &text, &len, &error));
    g_assert_true(procfs_parse_vmstat(text, len, &v, &error));
    g_assert_true(v.present & (1u << BL_VMSTAT_PGMAJFAULT));
    g_clear_pointer(&text, g_free);
    g_assert_true(procfs_read_file(NULL, "proc/uptime", 4096, &text, &len, &error));
    g_assert_true(procfs_parse_uptime(text, len, &up, &error));
    g_assert_cmpuint(up, >, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/procfs/meminfo/good", test_meminfo_good);
    g_test_add_func("/procfs/meminfo/optional-absent", test_meminfo_optional_absent);
    g_test_add_func("/procfs/meminfo/missing", test_meminfo_missing);
    g_test_add_func("/procfs/meminfo/truncated", test_meminfo_truncated);
    g_test_add_func("/procfs/meminfo/overflow", test_meminfo_overflow);
    g_test_add_func("/procfs/meminfo/garbage", test_meminfo_garbage);
    g_test_add_func("/procfs/meminfo/nul-and-duplicate", test_meminfo_embedded_nul_and_dup);
    g_test_add_func("/procfs/huge", test_huge);
    g_test_add_func("/procfs/pressure/good", test_pressure_good);
    g_test_add_func("/procfs/pressure/some-only", test_pressure_some_only);
    g_test_add_func("/procfs/pressure/bad", test_pressure_bad);
    g_test_add_func("/procfs/pressure/truncated", test_pressure_truncated);
    g_test_add_func("/procfs/vmstat/good", test_vmstat_good);
    g_test_add_func("/procfs/vmstat/partial-and-legacy", test_vmstat_partial_and_legacy);
    g_test_add_func("/procfs/vmstat/bad", test_vmstat_bad);
    g_test_add_func("/procfs/uptime", test_uptime);
    g_test_add_func("/procfs/read/file", test_read_file);
    g_test_add_func("/procfs/read/fifo", test_read_fifo_does_not_hang);
    g_test_add_func("/procfs/read/real-proc", test_real_proc);
    return g_test_run();
}
