/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ksm-run, the broker's KSM edge, on copies of the fixture trees: taking
 * ownership and restoring at exit, --dry-run and [ksm] manage=false writing
 * nothing, ksm-host / ksm-exclude events, the status objects, ksmd's CPU
 * share, and the interval. No libvirt here (virt NULL): the libvirt side is
 * test-ksm-virt and the end-to-end suite.
 */
#include <glib.h>
#include <json-c/json.h>
#include <string.h>
#include <unistd.h>

#include "evlog.h"
#include "ksm-fixture.h"
#include "ksm-run.h"
#include "ksm-sysfs.h"

#define S   (G_USEC_PER_SEC * 1ll)
#define GIB (1024ull * 1024)

typedef struct {
    char *root;
    char *events;
    Evlog *log;
    KsmConfig config;
    PolicyHost host;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    f->root = ksm_fixture_new(data ? data : "ksm-6.18");
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/run", "0\n");
    f->events = g_build_filename(f->root, "events.jsonl", NULL);
    f->log = evlog_new(f->events, &error);
    g_assert_no_error(error);
    ksm_config_init_defaults(&f->config);
    f->host.mem_total_kib = 16 * GIB;
    f->host.mem_available_kib = 16 * GIB / 10; /* short of memory */
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    evlog_free(f->log);
    ksm_config_clear(&f->config);
    g_free(f->events);
    ksm_fixture_free(f->root);
}

static char *knob(Fixture *f, const char *name)
{
    g_autofree char *rel = g_build_filename("sys/kernel/mm/ksm", name, NULL);
    char *text = ksm_fixture_read(f->root, rel);

    g_assert_nonnull(text);
    return g_strstrip(text);
}

static void assert_knob(Fixture *f, const char *name, const char *want)
{
    g_autofree char *got = knob(f, name);

    g_assert_cmpstr(got, ==, want);
}

/* Events of one kind from the event log, as a JSON array (caller puts). */
static json_object *events_of(Fixture *f, const char *kind)
{
    g_autofree char *text = ksm_fixture_read(f->root, "events.jsonl");
    g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
    json_object *out = json_object_new_array();

    for (guint i = 0; lines[i]; i++) {
        json_object *o, *ev;

        if (!*lines[i])
            continue;
        o = json_tokener_parse(lines[i]);
        g_assert_nonnull(o);
        if (json_object_object_get_ex(o, "event", &ev) &&
            g_str_equal(json_object_get_string(ev), kind))
            json_object_array_add(out, json_object_get(o));
        json_object_put(o);
    }
    return out;
}

static const char *field_str(json_object *o, const char *key)
{
    json_object *v;

    g_assert_true(json_object_object_get_ex(o, key, &v));
    return json_object_get_string(v);
}

static gboolean field_bool(json_object *o, const char *key)
{
    json_object *v;

    g_assert_true(json_object_object_get_ex(o, key, &v));
    g_assert_true(json_object_is_type(v, json_type_boolean));
    return json_object_get_boolean(v);
}

static gint64 field_int(json_object *o, const char *key)
{
    json_object *v;

    g_assert_true(json_object_object_get_ex(o, key, &v));
    g_assert_true(json_object_is_type(v, json_type_int));
    return json_object_get_int64(v);
}

static gboolean field_null(json_object *o, const char *key)
{
    json_object *v = NULL;

    g_assert_true(json_object_object_get_ex(o, key, &v));
    return v == NULL;
}

static gboolean saved_exists(Fixture *f)
{
    g_autofree char *path = g_build_filename(f->root, "run/ballast/ksm-saved.ini", NULL);

    return g_file_test(path, G_FILE_TEST_EXISTS);
}

static void test_owned_and_restored(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, FALSE);
    json_object *status, *ev;

    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 1 * S);
    /* the decision is in the tree */
    assert_knob(f, "run", "1");
    assert_knob(f, "advisor_mode", "scan-time");
    assert_knob(f, "sleep_millisecs", "10");
    assert_knob(f, "pages_to_scan", "100"); /* the advisor's */

    ev = events_of(f, "note");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1);
    g_assert_cmpstr(field_str(json_object_array_get_idx(ev, 0), "text"), ==,
                    "ballastd owns KSM: ksmtuned must not run");
    json_object_put(ev);
    ev = events_of(f, "ksm-host");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1);
    g_assert_cmpint(field_int(json_object_array_get_idx(ev, 0), "run"), ==, 1);
    g_assert_true(field_bool(json_object_array_get_idx(ev, 0), "applied"));
    g_assert_nonnull(strstr(field_str(json_object_array_get_idx(ev, 0), "reason"), "start KSM"));
    g_assert_cmpint(field_int(json_object_array_get_idx(ev, 0), "general_profit"), ==, 136314880);
    json_object_put(ev);

    g_assert_true(saved_exists(f)); /* for a successor, should this one be killed */
    status = ksm_run_status(run);
    g_assert_true(field_bool(status, "owned"));
    g_assert_true(field_bool(status, "managed"));
    g_assert_cmpint(field_int(status, "pages_sharing"), ==, 34000);
    g_assert_true(field_bool(status, "short_of_memory"));
    g_assert_true(field_null(status, "ksmd_cpu_percent")); /* one sample only */
    json_object_put(status);

    /* the fake kernel shows the selected mode and the advisor's pages */
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/advisor_mode", "none [scan-time]\n");
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/pages_to_scan", "500\n");
    ksm_run_free(run);
    assert_knob(f, "run", "0");
    assert_knob(f, "advisor_mode", "none");
    assert_knob(f, "pages_to_scan", "100");
    assert_knob(f, "sleep_millisecs", "20");
    g_assert_false(saved_exists(f)); /* restored: nothing left for a successor */
    ev = events_of(f, "ksm-host");
    g_assert_cmpuint(json_object_array_length(ev), ==, 2);
    g_assert_nonnull(strstr(field_str(json_object_array_get_idx(ev, 1), "reason"), "restored"));
    json_object_put(ev);
}

/* A ballastd killed while it owned KSM left its tuning and the saved
 * originals; the next one restores the originals, not the tuning. */
static void test_after_kill(Fixture *f, gconstpointer data)
{
    KsmSysfs orig = {.run = 0,
                     .pages_to_scan = 100,
                     .sleep_millisecs = 20,
                     .advisor_mode = KSM_ADVISOR_NONE,
                     .has_smart_scan = TRUE,
                     .smart_scan = TRUE};
    g_autofree char *saved = ksm_saved_to_text(&orig, "boot-1");
    KsmRun *run;

    ksm_fixture_write(f->root, "proc/sys/kernel/random/boot_id", "boot-1\n");
    ksm_fixture_write(f->root, "run/ballast/ksm-saved.ini", saved);
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/run", "1\n");
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/advisor_mode", "none [scan-time]\n");
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/pages_to_scan", "30000\n");
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/sleep_millisecs", "10\n");
    f->host.mem_available_kib = f->host.mem_total_kib; /* plenty: stop */

    run = ksm_run_new(f->root, f->log, NULL, FALSE);
    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 1 * S);
    assert_knob(f, "run", "0");
    ksm_run_free(run);
    assert_knob(f, "advisor_mode", "none");
    assert_knob(f, "pages_to_scan", "100");
    assert_knob(f, "sleep_millisecs", "20");
    g_assert_false(saved_exists(f));

    /* a file from another boot is ignored (and replaced) */
    ksm_fixture_write(f->root, "run/ballast/ksm-saved.ini", saved);
    ksm_fixture_write(f->root, "proc/sys/kernel/random/boot_id", "boot-2\n");
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/pages_to_scan", "777\n");
    run = ksm_run_new(f->root, f->log, NULL, FALSE);
    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 1 * S);
    g_assert_true(saved_exists(f));
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/pages_to_scan", "1000\n");
    ksm_run_free(run);
    assert_knob(f, "pages_to_scan", "777");
    g_assert_false(saved_exists(f));
}

static void test_dry_run_writes_nothing(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, TRUE);
    json_object *ev, *status;

    for (int i = 1; i <= 3; i++)
        ksm_run_tick(run, &f->config, TRUE, &f->host, NULL, 0, i * 20 * S);
    assert_knob(f, "run", "0");
    assert_knob(f, "advisor_mode", "[none] scan-time");
    assert_knob(f, "sleep_millisecs", "20");
    /* announced once, not every cycle */
    ev = events_of(f, "ksm-host");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1);
    g_assert_false(field_bool(json_object_array_get_idx(ev, 0), "applied"));
    json_object_put(ev);
    ev = events_of(f, "note");
    g_assert_cmpuint(json_object_array_length(ev), ==, 0); /* does not claim ownership */
    json_object_put(ev);
    status = ksm_run_status(run);
    g_assert_false(field_bool(status, "owned"));
    json_object_put(status);

    /* a VM decided for exclusion is not shown as excluded: nothing was applied */
    KsmRunVm vm = {.uuid = "u1", .name = "vm1", .active = TRUE, .ksm = POLICY_KSM_NEVER};
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 80 * S);
    status = json_object_new_object();
    ksm_run_vm_status(run, "u1", status);
    g_assert_false(field_bool(status, "excluded"));
    g_assert_true(field_bool(status, "would_exclude"));
    json_object_put(status);
    ev = events_of(f, "ksm-exclude");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1);
    g_assert_cmpstr(field_str(json_object_array_get_idx(ev, 0), "why_not_applied"), ==, "dry-run");
    json_object_put(ev);

    ksm_run_free(run);
    assert_knob(f, "run", "0");
    assert_knob(f, "sleep_millisecs", "20");
    g_assert_false(saved_exists(f));
}

static void test_not_managed(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, FALSE);
    json_object *ev, *status;

    f->config.manage = FALSE;
    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 1 * S);
    assert_knob(f, "run", "0");
    ev = events_of(f, "ksm-host");
    g_assert_cmpuint(json_object_array_length(ev), ==, 0);
    json_object_put(ev);
    status = ksm_run_status(run); /* figures still reported */
    g_assert_false(field_bool(status, "managed"));
    g_assert_cmpint(field_int(status, "full_scans"), ==, 7);
    g_assert_true(field_null(status, "reason"));
    json_object_put(status);

    /* manage switched on by a reload: owned from then on; off again: restored */
    f->config.manage = TRUE;
    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 2 * S);
    assert_knob(f, "run", "0"); /* within the interval: no cycle yet */
    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 20 * S);
    assert_knob(f, "run", "1");
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/advisor_mode", "none [scan-time]\n");
    f->config.manage = FALSE;
    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 21 * S);
    assert_knob(f, "run", "0");
    assert_knob(f, "advisor_mode", "none");
    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/run", "1\n"); /* someone else's now */
    ksm_run_free(run);
    assert_knob(f, "run", "1");
}

static void test_vms(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, FALSE);
    KsmRunVm vms[] = {
        {.uuid = "u1", .name = "vm1", .active = TRUE, .ksm = POLICY_KSM_NEVER},
        {.uuid = "u2", .name = "ghost", .active = TRUE, .ksm = POLICY_KSM_AUTO},
        {.uuid = "u3", .name = "vm,2", .active = FALSE, .ksm = POLICY_KSM_NEVER},
    };
    json_object *ev, *o;

    ksm_run_tick(run, &f->config, TRUE, &f->host, vms, G_N_ELEMENTS(vms), 1 * S);
    ev = events_of(f, "ksm-exclude");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1); /* vm1 only: vm,2 is not running */
    o = json_object_array_get_idx(ev, 0);
    g_assert_cmpstr(field_str(o, "vm"), ==, "vm1");
    g_assert_nonnull(strstr(field_str(o, "reason"), "ksm=never"));
    g_assert_false(field_bool(o, "applied"));
    g_assert_cmpstr(field_str(o, "why_not_applied"), ==, "no libvirt");
    json_object_put(ev);

    /* nothing could apply it: not excluded, and status says so */
    o = json_object_new_object();
    ksm_run_vm_status(run, "u1", o);
    g_assert_false(field_bool(o, "excluded"));
    g_assert_cmpstr(field_str(o, "exclusion"), ==, "failed");
    g_assert_cmpstr(field_str(o, "error"), ==, "no libvirt connection");
    g_assert_cmpint(field_int(o, "merging_pages"), ==, 17084);
    g_assert_cmpint(field_int(o, "profit_bytes"), ==, 61587456);
    g_assert_cmpint(field_int(o, "pid"), ==, 4242);
    json_object_put(o);
    o = json_object_new_object();
    ksm_run_vm_status(run, "u2", o);
    g_assert_false(field_bool(o, "excluded"));
    g_assert_true(field_null(o, "merging_pages"));
    g_assert_nonnull(strstr(field_str(o, "reason"), "no ksm_stat"));
    json_object_put(o);

    /* not repeated on the next tick; a VM gone is forgotten */
    ksm_run_tick(run, &f->config, TRUE, &f->host, vms, 1, 2 * S);
    ev = events_of(f, "ksm-exclude");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1);
    json_object_put(ev);
    o = json_object_new_object();
    ksm_run_vm_status(run, "u2", o);
    g_assert_null(json_object_object_get(o, "excluded"));
    json_object_put(o);

    /* vm1 stops and starts again: the exclusion is enforced on the new QEMU */
    vms[0].active = FALSE;
    ksm_run_tick(run, &f->config, TRUE, &f->host, vms, 1, 2 * S + 1);
    vms[0].active = TRUE;
    ksm_run_tick(run, &f->config, TRUE, &f->host, vms, 1, 2 * S + 2);
    ev = events_of(f, "ksm-exclude");
    g_assert_cmpuint(json_object_array_length(ev), ==, 2);
    json_object_put(ev);

    /* metadata changes to always: re-included */
    vms[0].ksm = POLICY_KSM_ALWAYS;
    ksm_run_tick(run, &f->config, TRUE, &f->host, vms, 1, 3 * S);
    ev = events_of(f, "ksm-include");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1);
    g_assert_nonnull(strstr(field_str(json_object_array_get_idx(ev, 0), "reason"), "always"));
    json_object_put(ev);
    ksm_run_free(run);
}

/* ksmd has finished full_scans scans when the tick at now_us comes. */
static void scan_and_tick(Fixture *f, KsmRun *run, const KsmRunVm *vms, gsize n, int full_scans,
                          gint64 now_us)
{
    g_autofree char *v = g_strdup_printf("%d\n", full_scans);

    ksm_fixture_write(f->root, "sys/kernel/mm/ksm/full_scans", v);
    ksm_run_tick(run, &f->config, TRUE, &f->host, vms, n, now_us);
}

static gboolean vm_excluded(KsmRun *run, const char *uuid)
{
    json_object *o = json_object_new_object();

    ksm_run_vm_status(run, uuid, o);
    gboolean excluded = field_bool(o, "excluded");
    json_object_put(o);
    return excluded;
}

static void test_ksmd_cpu(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, FALSE);
    long hz = sysconf(_SC_CLK_TCK);
    g_autofree char *stat = NULL;
    json_object *status, *v;

    g_assert_cmpint(hz, >, 0);
    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 1 * S);
    /* ksmd used hz ticks (1 s) of CPU in the next 10 s: 10 % */
    stat = g_strdup_printf("37 (ksmd) S 2 0 0 0 -1 2097216 0 0 0 0 %ld 567 0 0 25 5 1 0 27 0 0\n",
                           1234 + hz);
    ksm_fixture_write(f->root, "proc/37/stat", stat);
    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 11 * S);
    status = ksm_run_status(run);
    g_assert_true(json_object_object_get_ex(status, "ksmd_cpu_percent", &v));
    g_assert_nonnull(v);
    g_assert_cmpfloat_with_epsilon(json_object_get_double(v), 10.0, 1e-6);
    json_object_put(status);
    ksm_run_free(run);
}

static void test_old_kernel(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, FALSE);
    json_object *status;

    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 1 * S);
    assert_knob(f, "run", "1");
    assert_knob(f, "pages_to_scan", "400"); /* no advisor: ksmtuned's boost */
    status = ksm_run_status(run);
    g_assert_true(field_bool(status, "general_profit_estimated"));
    g_assert_cmpint(field_int(status, "general_profit"), ==, 5000ll * 4096 - 207000ll * 64);
    json_object_put(status);
    ksm_run_free(run);
    assert_knob(f, "run", "0");
    assert_knob(f, "pages_to_scan", "100");
}

static void test_no_ksm(Fixture *f, gconstpointer data)
{
    g_autofree char *dir = g_build_filename(f->root, "sys", NULL);
    KsmRun *run;
    json_object *status;

    ksm_fixture_rm_rf(dir);
    run = ksm_run_new(f->root, f->log, NULL, FALSE);
    ksm_run_tick(run, &f->config, FALSE, &f->host, NULL, 0, 1 * S);
    status = ksm_run_status(run);
    g_assert_false(field_bool(status, "available"));
    g_assert_true(field_null(status, "run"));
    json_object_put(status);
    ksm_run_free(run);
}

/* ---- exclusions recorded only when they take effect ---- */

typedef struct {
    guint calls;
    gboolean last_exclude, last_live_allowed;
    gboolean monitor_answers; /* the qom-set switch answers */
    gboolean define_ok;
} FakeVirt;

static gboolean fake_apply(gpointer data, const char *uuid, gboolean exclude, gboolean live_allowed,
                           VirtKsmResult *r, GError **error)
{
    FakeVirt *fv = data;

    memset(r, 0, sizeof(*r));
    fv->calls++;
    fv->last_exclude = exclude;
    fv->last_live_allowed = live_allowed;
    r->active = TRUE;
    r->persistent = TRUE;
    r->persistent_done = fv->define_ok;
    r->persistent_changed = fv->define_ok;
    if (live_allowed) {
        r->live_attempted = TRUE;
        r->live = fv->monitor_answers;
        r->n_backends = 1;
    }
    if (!fv->define_ok || (live_allowed && !fv->monitor_answers)) {
        g_set_error(error, VIRT_KSM_ERROR, 0, "fake: refused");
        return FALSE;
    }
    return TRUE;
}

static KsmRunVmInfo vm_info(KsmRun *run, const char *uuid)
{
    KsmRunVmInfo info;

    g_assert_true(ksm_run_vm_info(run, uuid, &info));
    return info;
}

/* Events of one kind about one VM (retries of another VM's exclusion,
 * which this test does not count, say their own events). */
static gsize n_events_vm(Fixture *f, const char *kind, const char *vm)
{
    json_object *ev = events_of(f, kind);
    gsize n = 0;

    for (gsize i = 0; i < json_object_array_length(ev); i++)
        if (g_strcmp0(field_str(json_object_array_get_idx(ev, i), "vm"), vm) == 0)
            n++;
    json_object_put(ev);
    return n;
}

/* ballastctl release: ballast's own exclusion (low profit) is undone and not
 * made again while held; the operator's (ksm=never) stays. */
static void test_release(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, FALSE);
    FakeVirt fv = {.monitor_answers = TRUE, .define_ok = TRUE};
    KsmRunVm vms[] = {
        {.uuid = "u1", .name = "vm1", .active = TRUE, .ksm = POLICY_KSM_NEVER},
        {.uuid = "u2", .name = "vm,2", .active = TRUE, .ksm = POLICY_KSM_AUTO},
    };
    g_autoptr(GString) done = g_string_new(NULL);
    g_autoptr(GError) e = NULL;
    gint64 step = (gint64)f->config.interval_s * S;
    json_object *ev, *o;

    ksm_run_set_applier(run, fake_apply, &fv);
    /* vm,2's QEMU, as libvirt's pid file names it */
    ksm_fixture_write(f->root, "run/libvirt/qemu/vm,2.pid", "4300\n");
    f->config.vm_full_scans = 1; /* vm,2 loses money: excluded after one full scan */
    ksm_run_tick(run, &f->config, TRUE, &f->host, vms, 2, 1 * S);
    scan_and_tick(f, run, vms, 2, 8, 1 * S + step);
    ev = events_of(f, "ksm-exclude");
    gboolean low_profit = FALSE;
    for (gsize i = 0; i < json_object_array_length(ev); i++) {
        json_object *x = json_object_array_get_idx(ev, i);
        if (g_strcmp0(field_str(x, "vm"), "vm,2") == 0)
            low_profit = g_strcmp0(field_str(x, "why"), "low-profit") == 0;
    }
    g_assert_true(low_profit);
    json_object_put(ev);
    g_assert_cmpuint(n_events_vm(f, "ksm-exclude", "vm,2"), ==, 1);

    /* the operator's exclusion: nothing done */
    g_assert_true(ksm_run_release(run, "u1", FALSE, done, &e));
    g_assert_no_error(e);
    g_assert_cmpstr(done->str, ==, "");
    g_assert_true(vm_info(run, "u1").want_exclude); /* still wanted (pending: QEMU keeps mg) */

    /* ballast's own: re-included, said so */
    g_assert_true(ksm_run_release(run, "u2", FALSE, done, &e));
    g_assert_no_error(e);
    g_assert_nonnull(strstr(done->str, "re-included in KSM"));
    ev = events_of(f, "ksm-include");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1);
    g_assert_cmpstr(field_str(json_object_array_get_idx(ev, 0), "why"), ==, "release");
    json_object_put(ev);
    g_assert_false(vm_info(run, "u2").want_exclude);
    g_assert_false(vm_excluded(run, "u2"));

    /* held: still losing money, not excluded again; figures still read */
    vms[1].hold = TRUE;
    for (int i = 2; i <= 3; i++)
        scan_and_tick(f, run, vms, 2, 7 + i, 1 * S + i * step);
    g_assert_cmpuint(n_events_vm(f, "ksm-exclude", "vm,2"), ==, 1);
    o = json_object_new_object();
    ksm_run_vm_status(run, "u2", o);
    g_assert_cmpint(field_int(o, "merging_pages"), ==, 10);
    json_object_put(o);

    /* resumed: ballast decides again */
    vms[1].hold = FALSE;
    for (int i = 4; i <= 5; i++)
        scan_and_tick(f, run, vms, 2, 7 + i, 1 * S + i * step);
    g_assert_cmpuint(n_events_vm(f, "ksm-exclude", "vm,2"), ==, 2);
    ksm_run_free(run);
}

static void unmerge_smaps(Fixture *f)
{
    g_autofree char *text = ksm_fixture_read(f->root, "proc/4242/smaps");
    g_autoptr(GString) t = g_string_new(text);

    g_string_replace(t, "ac sd nh mg", "ac sd nh", 1);
    ksm_fixture_write(f->root, "proc/4242/smaps", t->str);
}

static void test_exclusion_verified(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, FALSE);
    FakeVirt fv = {.monitor_answers = TRUE, .define_ok = TRUE};
    KsmRunVm vm = {.uuid = "u1", .name = "vm1", .active = TRUE, .ksm = POLICY_KSM_NEVER};
    json_object *ev;

    ksm_run_set_applier(run, fake_apply, &fv);
    /* the switch answered, but the QEMU's RAM still has "mg": pending */
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 1 * S);
    g_assert_cmpuint(fv.calls, ==, 1);
    g_assert_true(fv.last_live_allowed);
    g_assert_cmpint(vm_info(run, "u1").state, ==, KSM_RUN_PENDING);
    ev = events_of(f, "ksm-exclude");
    g_assert_cmpstr(field_str(json_object_array_get_idx(ev, 0), "state"), ==, "pending");
    json_object_put(ev);
    json_object *o = json_object_new_object();
    ksm_run_vm_status(run, "u1", o);
    g_assert_false(field_bool(o, "excluded"));
    g_assert_cmpstr(field_str(o, "exclusion"), ==, "pending");
    json_object_put(o);
    /* still mergeable past the deadline: failed, with the reason */
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 5 * S);
    g_assert_cmpint(vm_info(run, "u1").state, ==, KSM_RUN_PENDING);
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 12 * S);
    KsmRunVmInfo info = vm_info(run, "u1");
    g_assert_cmpint(info.state, ==, KSM_RUN_FAILED);
    g_assert_nonnull(strstr(info.error, "still mergeable"));
    g_assert_cmpuint(info.failures, ==, 1);
    ev = events_of(f, "ksm-exclusion");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1);
    g_assert_cmpstr(field_str(json_object_array_get_idx(ev, 0), "state"), ==, "failed");
    json_object_put(ev);
    /* retried with back-off: not before 10 s, then again */
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 15 * S);
    g_assert_cmpuint(fv.calls, ==, 1);
    unmerge_smaps(f);
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 23 * S);
    g_assert_cmpuint(fv.calls, ==, 2);
    /* the RAM mapping lost "mg" and the definition has <nosharepages/> */
    info = vm_info(run, "u1");
    g_assert_cmpint(info.state, ==, KSM_RUN_PERSISTENT);
    g_assert_cmpuint(info.failures, ==, 0);
    o = json_object_new_object();
    ksm_run_vm_status(run, "u1", o);
    g_assert_true(field_bool(o, "excluded"));
    g_assert_cmpstr(field_str(o, "exclusion"), ==, "persistent");
    json_object_put(o);
    ev = events_of(f, "ksm-exclusion");
    g_assert_cmpuint(json_object_array_length(ev), ==, 2);
    g_assert_cmpstr(field_str(json_object_array_get_idx(ev, 1), "state"), ==, "persistent");
    g_assert_nonnull(
        strstr(field_str(json_object_array_get_idx(ev, 1), "evidence"), "no longer mergeable"));
    json_object_put(ev);
    ksm_run_free(run);
}

/* Live holds but the definition cannot be changed: live, and the
 * persistent part is retried until it holds. */
static void test_exclusion_persistent_retry(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, FALSE);
    FakeVirt fv = {.monitor_answers = TRUE, .define_ok = FALSE};
    KsmRunVm vm = {.uuid = "u1", .name = "vm1", .active = TRUE, .ksm = POLICY_KSM_NEVER};

    ksm_run_set_applier(run, fake_apply, &fv);
    unmerge_smaps(f);
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 1 * S);
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 2 * S);
    KsmRunVmInfo info = vm_info(run, "u1");
    g_assert_cmpint(info.state, ==, KSM_RUN_LIVE);
    g_assert_cmpuint(info.failures, ==, 1);
    g_assert_nonnull(strstr(info.error, "persistent definition"));
    fv.define_ok = TRUE;
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 5 * S);
    g_assert_cmpuint(fv.calls, ==, 1); /* back-off */
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 13 * S);
    g_assert_cmpuint(fv.calls, ==, 2);
    info = vm_info(run, "u1");
    g_assert_cmpint(info.state, ==, KSM_RUN_PERSISTENT);
    g_assert_cmpuint(info.failures, ==, 0);
    ksm_run_tick(run, &f->config, TRUE, &f->host, &vm, 1, 60 * S);
    g_assert_cmpuint(fv.calls, ==, 2); /* done: not applied again */
    ksm_run_free(run);
}

/* allow_qemu_monitor=false: the definition changes, nothing claims live. */
static void test_exclusion_next_boot(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, FALSE);
    FakeVirt fv = {.monitor_answers = TRUE, .define_ok = TRUE};
    KsmRunVm vm = {.uuid = "u1", .name = "vm1", .active = TRUE, .ksm = POLICY_KSM_NEVER};

    ksm_run_set_applier(run, fake_apply, &fv);
    for (gint64 t = 1; t < 40; t += 3)
        ksm_run_tick(run, &f->config, FALSE, &f->host, &vm, 1, t * S);
    g_assert_cmpuint(fv.calls, ==, 1);
    g_assert_false(fv.last_live_allowed);
    KsmRunVmInfo info = vm_info(run, "u1");
    g_assert_cmpint(info.state, ==, KSM_RUN_NEXT_BOOT);
    json_object *o = json_object_new_object();
    ksm_run_vm_status(run, "u1", o);
    g_assert_false(field_bool(o, "excluded"));
    g_assert_cmpstr(field_str(o, "exclusion"), ==, "next-boot");
    json_object_put(o);

    /* the definition cannot be changed either: failed, retried */
    fv.define_ok = FALSE;
    vm.active = FALSE;
    ksm_run_tick(run, &f->config, FALSE, &f->host, &vm, 1, 41 * S);
    vm.active = TRUE;
    ksm_run_tick(run, &f->config, FALSE, &f->host, &vm, 1, 42 * S);
    info = vm_info(run, "u1");
    g_assert_cmpint(info.state, ==, KSM_RUN_FAILED);
    g_assert_cmpstr(info.error, ==, "fake: refused");
    ksm_run_tick(run, &f->config, FALSE, &f->host, &vm, 1, 53 * S);
    g_assert_cmpuint(fv.calls, ==, 3);
    g_assert_cmpuint(vm_info(run, "u1").failures, ==, 2);
    ksm_run_free(run);
}

/* A low-profit exclusion made by an earlier ballastd is measured again at
 * start; an operator's ksm="never" is kept. */
static void test_low_profit_restart(Fixture *f, gconstpointer data)
{
    KsmRun *run = ksm_run_new(f->root, f->log, NULL, FALSE);
    FakeVirt fv = {.monitor_answers = TRUE, .define_ok = TRUE};
    KsmRunVm vms[] = {
        {.uuid = "u1", .name = "vm1", .active = TRUE, .ksm = POLICY_KSM_AUTO},
        {.uuid = "u3", .name = "vm3", .active = TRUE, .ksm = POLICY_KSM_NEVER},
    };
    json_object *ev;

    ksm_fixture_write(f->root, "var/lib/ballast/ksm-low-profit", "u1\nu3\n");
    ksm_run_set_applier(run, fake_apply, &fv);
    ksm_run_tick(run, &f->config, TRUE, &f->host, vms, G_N_ELEMENTS(vms), 1 * S);
    ev = events_of(f, "ksm-include");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1);
    g_assert_cmpstr(field_str(json_object_array_get_idx(ev, 0), "vm"), ==, "vm1");
    g_assert_nonnull(strstr(field_str(json_object_array_get_idx(ev, 0), "reason"), "reconsidered"));
    json_object_put(ev);
    ev = events_of(f, "ksm-exclude");
    g_assert_cmpuint(json_object_array_length(ev), ==, 1);
    g_assert_cmpstr(field_str(json_object_array_get_idx(ev, 0), "vm"), ==, "vm3");
    json_object_put(ev);
    g_assert_cmpint(vm_info(run, "u1").state, ==, KSM_RUN_SHARED);
    /* neither is listed any more: vm1 shares, vm3 is the operator's */
    g_autofree char *list = ksm_fixture_read(f->root, "var/lib/ballast/ksm-low-profit");
    g_assert_cmpstr(list, ==, "");
    ksm_run_free(run);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/ksm/run/owned-and-restored", Fixture, NULL, fixture_setup, test_owned_and_restored,
               fixture_teardown);
    g_test_add("/ksm/run/dry-run", Fixture, NULL, fixture_setup, test_dry_run_writes_nothing,
               fixture_teardown);
    g_test_add("/ksm/run/after-kill", Fixture, NULL, fixture_setup, test_after_kill,
               fixture_teardown);
    g_test_add("/ksm/run/not-managed", Fixture, NULL, fixture_setup, test_not_managed,
               fixture_teardown);
    g_test_add("/ksm/run/vms", Fixture, NULL, fixture_setup, test_vms, fixture_teardown);
    g_test_add("/ksm/run/exclusion-verified", Fixture, NULL, fixture_setup, test_exclusion_verified,
               fixture_teardown);
    g_test_add("/ksm/run/exclusion-persistent-retry", Fixture, NULL, fixture_setup,
               test_exclusion_persistent_retry, fixture_teardown);
    g_test_add("/ksm/run/exclusion-next-boot", Fixture, NULL, fixture_setup,
               test_exclusion_next_boot, fixture_teardown);
    g_test_add("/ksm/run/low-profit-restart", Fixture, NULL, fixture_setup, test_low_profit_restart,
               fixture_teardown);
    g_test_add("/ksm/run/release", Fixture, NULL, fixture_setup, test_release, fixture_teardown);
    g_test_add("/ksm/run/ksmd-cpu", Fixture, NULL, fixture_setup, test_ksmd_cpu, fixture_teardown);
    g_test_add("/ksm/run/old-kernel", Fixture, "ksm-6.1", fixture_setup, test_old_kernel,
               fixture_teardown);
    g_test_add("/ksm/run/no-ksm", Fixture, NULL, fixture_setup, test_no_ksm, fixture_teardown);
    return g_test_run();
}
