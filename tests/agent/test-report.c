/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Message builders: tokens, clamping, and that the encoder accepts the result. */
#include <glib.h>
#include <string.h>

#include "report.h"

static void roundtrip(const BlMessage *msg, BlMessage *back)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(GError) error = NULL;

    g_assert_true(bl_proto_encode(msg, out, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(out->len, >, 1);
    g_assert_cmpint(out->str[out->len - 1], ==, '\n');
    g_assert_true(bl_proto_decode(out->str, out->len - 1, back, &error));
    g_assert_no_error(error);
}

static void test_token(void)
{
    char buf[8];
    char big[BL_PROTO_BOOT_ID_MAX];

    report_copy_token(buf, sizeof(buf), "  abc \n", 7);
    g_assert_cmpstr(buf, ==, "abc");
    report_copy_token(buf, sizeof(buf), "a b\x01\xff", 5);
    g_assert_cmpstr(buf, ==, "a_b__");
    report_copy_token(buf, sizeof(buf), "0123456789", 10);
    g_assert_cmpstr(buf, ==, "0123456");
    report_copy_token(buf, sizeof(buf), " \n\t ", 4);
    g_assert_cmpstr(buf, ==, "unknown");
    report_copy_token(buf, sizeof(buf), "", 0);
    g_assert_cmpstr(buf, ==, "unknown");
    report_copy_token(big, sizeof(big), "a\0b", 3);
    g_assert_cmpstr(big, ==, "a_b");
}

static void test_hello(void)
{
    ReportFacts f;
    BlMessage msg, back;

    memset(&f, 0, sizeof(f));
    g_strlcpy(f.boot_id, "5c3b2a9e-7f1d-4e0a-9b8c-2d4e6f8a0b1c", sizeof(f.boot_id));
    g_strlcpy(f.kernel, "6.1.0 weird\tkernel", sizeof(f.kernel));
    f.interval_ms = 5; /* out of range: clamped */
    f.balloon.present = TRUE;
    f.balloon.driver_bound = TRUE;
    f.balloon.n_pci = 1;
    g_strlcpy(f.balloon.pci[0], "0000:00:03.0", sizeof(f.balloon.pci[0]));
    f.balloon.kconfig = BL_KCONFIG_M;
    f.features = REPORT_FEATURE_PSI | REPORT_FEATURE_INTERVAL;
    report_build_hello(&msg, &f);
    roundtrip(&msg, &back);
    g_assert_cmpint(back.type, ==, BL_MSG_HELLO);
    g_assert_cmpstr(back.u.hello.agent, ==, "ballast-agent");
    g_assert_cmpstr(back.u.hello.boot_id, ==, f.boot_id);
    g_assert_cmpstr(back.u.hello.kernel, ==, "6.1.0_weird_kernel");
    g_assert_cmpuint(back.u.hello.interval_ms, ==, BL_PROTO_INTERVAL_MIN_MS);
    g_assert_true(back.u.hello.balloon.present);
    g_assert_true(back.u.hello.balloon.driver_bound);
    g_assert_cmpuint(back.u.hello.balloon.n_pci, ==, 1);
    g_assert_cmpstr(back.u.hello.balloon.pci[0], ==, "0000:00:03.0");
    g_assert_cmpint(back.u.hello.balloon.kconfig, ==, BL_KCONFIG_M);
    g_assert_cmpuint(back.u.hello.n_features, ==, 2);
    g_assert_cmpstr(back.u.hello.features[0], ==, "psi");
    g_assert_cmpstr(back.u.hello.features[1], ==, "interval");

    /* inconsistent facts are made consistent: bound requires present */
    memset(&f, 0, sizeof(f));
    f.balloon.driver_bound = TRUE;
    f.interval_ms = 10000000;
    report_build_hello(&msg, &f);
    roundtrip(&msg, &back);
    g_assert_false(back.u.hello.balloon.driver_bound);
    g_assert_cmpstr(back.u.hello.boot_id, ==, "unknown");
    g_assert_cmpuint(back.u.hello.interval_ms, ==, BL_PROTO_INTERVAL_MAX_MS);
}

static void test_report_exact(void)
{
    BlReport s;
    BlMessage msg, back;

    memset(&s, 0, sizeof(s));
    s.uptime_ms = 1234560;
    s.mem.total_kib = 209800;
    s.mem.available_kib = 123456;
    s.mem.free_kib = 81232;
    s.mem.cached_kib = 40000;
    s.mem.swap_total_kib = 524284;
    s.mem.swap_free_kib = 500000;
    s.mem.committed_as_kib = 300000;
    s.has_psi = TRUE;
    s.psi.some.avg10 = 1.5;
    s.psi.some.total_us = 1234567;
    s.psi.full.avg60 = 0.1;
    s.vmstat.present = 1u << BL_VMSTAT_OOM_KILL;
    s.vmstat.value[BL_VMSTAT_OOM_KILL] = 2;
    report_build(&msg, &s, 7, BL_REPORT_PRESSURE);
    roundtrip(&msg, &back);
    g_assert_cmpint(back.type, ==, BL_MSG_REPORT);
    g_assert_cmpuint(back.u.report.seq, ==, 7);
    g_assert_cmpint(back.u.report.reason, ==, BL_REPORT_PRESSURE);
    g_assert_cmpuint(back.u.report.uptime_ms, ==, 1234560);
    g_assert_cmpmem(&back.u.report.mem, sizeof(BlMem), &s.mem, sizeof(BlMem));
    g_assert_true(back.u.report.has_psi);
    g_assert_cmpfloat(back.u.report.psi.some.avg10, ==, 1.5);
    g_assert_cmpuint(back.u.report.psi.some.total_us, ==, 1234567);
    g_assert_cmpfloat(back.u.report.psi.full.avg60, ==, 0.1);
    g_assert_cmpuint(back.u.report.vmstat.present, ==, 1u << BL_VMSTAT_OOM_KILL);
    g_assert_cmpuint(back.u.report.vmstat.value[BL_VMSTAT_OOM_KILL], ==, 2);
}

static void test_report_clamped(void)
{
    BlReport s;
    BlMessage msg, back;

    memset(&s, 0xff, sizeof(s)); /* every integer 2^64-1, floats NaN */
    s.has_psi = TRUE;
    s.mem.available_kib = G_MAXUINT64;
    s.mem.total_kib = 100;
    s.mem.swap_total_kib = 0;
    report_build(&msg, &s, 0, BL_REPORT_PERIODIC);
    roundtrip(&msg, &back);
    g_assert_cmpuint(back.u.report.seq, ==, 1);
    g_assert_cmpuint(back.u.report.uptime_ms, ==, REPORT_INT_MAX);
    g_assert_cmpuint(back.u.report.mem.total_kib, ==, 100);
    g_assert_cmpuint(back.u.report.mem.available_kib, ==, 100);
    g_assert_cmpuint(back.u.report.mem.free_kib, ==, 100);
    g_assert_cmpuint(back.u.report.mem.swap_free_kib, ==, 0);
    g_assert_cmpuint(back.u.report.mem.cached_kib, ==, REPORT_INT_MAX);
    g_assert_cmpfloat(back.u.report.psi.some.avg10, ==, 0.0);
    g_assert_cmpuint(back.u.report.psi.full.total_us, ==, REPORT_INT_MAX);
    g_assert_cmpuint(back.u.report.vmstat.present, ==, (1u << BL_VMSTAT_N_COUNTERS) - 1);
    g_assert_cmpuint(back.u.report.vmstat.value[BL_VMSTAT_PSWPIN], ==, REPORT_INT_MAX);

    memset(&s, 0, sizeof(s)); /* MemTotal 0 */
    report_build(&msg, &s, G_MAXUINT64, BL_REPORT_REQUEST);
    roundtrip(&msg, &back);
    g_assert_cmpuint(back.u.report.mem.total_kib, ==, 1);
    g_assert_cmpuint(back.u.report.seq, ==, REPORT_INT_MAX);
    g_assert_false(back.u.report.has_psi);
    g_assert_cmpint(back.u.report.reason, ==, BL_REPORT_REQUEST);
}

static void test_pong_goodbye(void)
{
    BlMessage msg, back;

    report_build_pong(&msg, 42);
    roundtrip(&msg, &back);
    g_assert_cmpint(back.type, ==, BL_MSG_PONG);
    g_assert_cmpuint(back.u.ping.id, ==, 42);
    report_build_pong(&msg, G_MAXUINT64);
    roundtrip(&msg, &back);
    g_assert_cmpuint(back.u.ping.id, ==, REPORT_INT_MAX);
    report_build_goodbye(&msg, "shutdown");
    roundtrip(&msg, &back);
    g_assert_cmpint(back.type, ==, BL_MSG_GOODBYE);
    g_assert_cmpstr(back.u.goodbye.reason, ==, "shutdown");
    g_assert_cmpuint(back.u.goodbye.supported_major, ==, BL_PROTO_MAJOR);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/report/token", test_token);
    g_test_add_func("/report/hello", test_hello);
    g_test_add_func("/report/exact", test_report_exact);
    g_test_add_func("/report/clamped", test_report_clamped);
    g_test_add_func("/report/pong-goodbye", test_pong_goodbye);
    return g_test_run();
}
