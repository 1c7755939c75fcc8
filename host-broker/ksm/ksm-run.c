/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * KSM in ballastd: reads, decides (ksm.c, ksm-vm.c), applies (ksm-sysfs.c,
 * virt-ksm.c), logs and reports. See ksm-run.h and docs/ksm.md.
 */
#include "ksm-run.h"

#include "backoff.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "ksm-proc.h"
#include "ksm-sysfs.h"
#include "procfs.h"
#include "ksm-vm.h"
#include "virt-ksm.h"

/* The settings found at start, while ballastd owns KSM (tmpfs: one boot). */
#define KSM_RUN_SAVED "run/ballast/ksm-saved.ini"
/* The domains (UUIDs) ballast excluded because sharing did not pay: their
 * <nosharepages/> outlives ballastd and reboots, and is reconsidered at the
 * next start. Operator exclusions (ksm="never") are not listed: never undone. */
#define KSM_RUN_LOW_PROFIT "var/lib/ballast/ksm-low-profit"
/* An exclusion must show in its QEMU's smaps (or merging pages) this soon. */
#define KSM_RUN_VERIFY_US (10 * G_USEC_PER_SEC)
/* Failed attempts are retried after 10 s, doubling up to 10 min. */
#define KSM_RUN_RETRY_MIN_US (10 * G_USEC_PER_SEC)
#define KSM_RUN_RETRY_MAX_US (600 * G_USEC_PER_SEC)

typedef struct {
    char *name;
    gboolean seen;
    gboolean was_active;
    gint pid;
    gboolean has_stat;
    KsmProcStat stat;
    gboolean has_profit;
    gint64 profit_bytes;
    KsmVmState state;
    char reason[256];
    char stat_error[256]; /* last logged, to log each once */

    /* what is in effect, as seen (see KsmRunState) */
    KsmRunState effect;
    char error[256];
    gboolean persistent;      /* the domain has a persistent definition */
    gboolean persistent_done; /* <nosharepages/> as wanted in it */
    gint64 verify_by_us;      /* PENDING: deadline */
    gboolean has_merging_at_switch;
    guint64 merging_at_switch;
    Backoff retry; /* a failed exclusion (or re-inclusion) is tried again */
} KsmRunVmState;

struct KsmRun {
    char *root;
    Evlog *log;
    Virt *virt;
    gboolean dry_run;

    gboolean started;
    gboolean available; /* /sys/kernel/mm/ksm exists */
    gboolean managed;   /* [ksm] manage */
    gboolean owned;     /* ballastd writes KSM settings (managed, not dry-run) */
    gboolean has_original;
    KsmSysfs original;

    gboolean has_now;
    KsmSysfs now;
    KsmHostState state;
    gboolean has_plan;
    gint64 profit_bytes;
    char reason[256];
    char last_event[128]; /* what the last ksm-host event announced */
    char read_error[256];
    gint64 last_cycle_us;
    gint64 last_sample_us; /* per-VM ksm_stat, at most once a second */

    gint ksmd_pid;
    gboolean has_ticks;
    guint64 ticks;
    gint64 ticks_at_us;
    gboolean has_cpu;
    double cpu_percent;

    guint64 page_size;
    guint64 clk_tck;
    gint64 qemu_uid;
    KsmRunApplier applier;
    gpointer applier_data;
    GHashTable *vms; /* uuid -> KsmRunVmState */

    GHashTable *low_profit; /* uuids of KSM_RUN_LOW_PROFIT, loaded at the first tick */
    gboolean low_profit_loaded;
    gboolean has_facts; /* the facts low-profit exclusions were made on */
    gboolean facts_short;
    guint facts_min_profit_mib, facts_full_scans;
};

const char *ksm_run_state_name(KsmRunState state)
{
    switch (state) {
    case KSM_RUN_SHARED:
        return "shared";
    case KSM_RUN_PENDING:
        return "pending";
    case KSM_RUN_FAILED:
        return "failed";
    case KSM_RUN_LIVE:
        return "live";
    case KSM_RUN_PERSISTENT:
        return "persistent";
    case KSM_RUN_NEXT_BOOT:
        return "next-boot";
    case KSM_RUN_WOULD:
        return "would";
    }
    return "shared";
}

void ksm_run_set_applier(KsmRun *run, KsmRunApplier applier, gpointer data)
{
    run->applier = applier;
    run->applier_data = data;
}

void ksm_run_set_qemu_uid(KsmRun *run, gint64 uid)
{
    run->qemu_uid = uid;
}

static void ksm_run_vm_free(gpointer data)
{
    KsmRunVmState *v = data;

    g_free(v->name);
    g_free(v);
}

KsmRun *ksm_run_new(const char *root, Evlog *log, Virt *virt, gboolean dry_run)
{
    KsmRun *run = g_new0(KsmRun, 1);
    long page = sysconf(_SC_PAGESIZE);
    long tck = sysconf(_SC_CLK_TCK);

    run->root = g_strdup(root);
    run->log = log;
    run->virt = virt;
    run->dry_run = dry_run;
    run->page_size = page > 0 ? (guint64)page : 4096;
    run->clk_tck = tck > 0 ? (guint64)tck : 100;
    run->vms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, ksm_run_vm_free);
    run->low_profit = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    run->qemu_uid = -1;
    return run;
}

static void ksm_run_emit_host(KsmRun *run, const KsmHostPlan *plan, const KsmSysfs *before,
                              gboolean applied, const char *error)
{
    json_object *f = json_object_new_object();
    guint run_v = plan->set_run ? plan->run : before->run;
    guint64 pages = plan->set_pages ? plan->pages_to_scan : before->pages_to_scan;
    guint64 sleep = plan->set_sleep ? plan->sleep_millisecs : before->sleep_millisecs;
    KsmAdvisor adv = plan->set_advisor ? plan->advisor_mode : before->advisor_mode;

    json_object_object_add(f, "run", json_object_new_int(run_v));
    json_object_object_add(f, "pages_to_scan", json_object_new_uint64(pages));
    json_object_object_add(f, "sleep_millisecs", json_object_new_uint64(sleep));
    json_object_object_add(f, "general_profit", json_object_new_int64(plan->profit_bytes));
    json_object_object_add(f, "advisor_mode", json_object_new_string(ksm_advisor_to_string(adv)));
    json_object_object_add(f, "reason", json_object_new_string(plan->reason));
    json_object_object_add(f, "applied", json_object_new_boolean(applied));
    if (error)
        json_object_object_add(f, "error", json_object_new_string(error));
    evlog_emit(run->log, "ksm-host", NULL, f);
    evlog_say(run->log, TRUE,
              "%sKSM: %s (run=%u pages_to_scan=%" G_GUINT64_FORMAT
              " sleep_millisecs=%" G_GUINT64_FORMAT "%s%s)%s%s",
              applied || error ? "" : "would: ", plan->reason, run_v, pages, sleep,
              adv == KSM_ADVISOR_ABSENT ? "" : " advisor_mode=",
              adv == KSM_ADVISOR_ABSENT ? "" : ksm_advisor_to_string(adv),
              error ? ": failed: " : "", error ? error : "");
}

/* Apply a host plan (or only announce it in dry-run); announce each distinct
 * change once so a dry run does not repeat itself every cycle. */
static void ksm_run_host_plan(KsmRun *run, const KsmHostPlan *plan, const KsmSysfs *before)
{
    g_autoptr(GError) e = NULL;
    char what[128];

    if (!ksm_host_plan_changes(plan))
        return;
    g_snprintf(what, sizeof(what), "%d%u %d%" G_GUINT64_FORMAT " %d%" G_GUINT64_FORMAT " %d%d %d%d",
               plan->set_run, plan->run, plan->set_pages, plan->pages_to_scan, plan->set_sleep,
               plan->sleep_millisecs, plan->set_advisor, plan->advisor_mode, plan->set_smart_scan,
               plan->smart_scan);
    if (!run->owned) {
        if (g_strcmp0(what, run->last_event) != 0)
            ksm_run_emit_host(run, plan, before, FALSE, NULL);
        g_strlcpy(run->last_event, what, sizeof(run->last_event));
        return;
    }
    if (!ksm_sysfs_apply(run->root, plan, &e)) {
        ksm_run_emit_host(run, plan, before, FALSE, e->message);
        return;
    }
    ksm_run_emit_host(run, plan, before, TRUE, NULL);
    g_strlcpy(run->last_event, what, sizeof(run->last_event));
}

static char *ksm_run_saved_path(const KsmRun *run)
{
    return g_build_filename(run->root ? run->root : "/", KSM_RUN_SAVED, NULL);
}

static char *ksm_run_boot_id(const KsmRun *run)
{
    char *text = NULL;
    gsize len = 0;

    if (!procfs_read_file(run->root, "proc/sys/kernel/random/boot_id", 64, &text, &len, NULL))
        return g_strdup("");
    return g_strstrip(text);
}

/* The originals: those a killed predecessor saved, else what is there now
 * (saved for a successor). */
static void ksm_run_load_original(KsmRun *run, const KsmSysfs *now)
{
    g_autofree char *path = ksm_run_saved_path(run);
    g_autofree char *boot = ksm_run_boot_id(run);
    g_autofree char *text = NULL;
    g_autoptr(GError) e = NULL;
    KsmSysfs saved;
    gsize len;

    run->original = *now;
    if (procfs_read_file(run->root, KSM_RUN_SAVED, 4096, &text, &len, &e)) {
        if (ksm_saved_from_text(text, boot, &saved, &e)) {
            run->original.run = saved.run;
            run->original.pages_to_scan = saved.pages_to_scan;
            run->original.sleep_millisecs = saved.sleep_millisecs;
            run->original.advisor_mode = saved.advisor_mode;
            run->original.has_smart_scan = saved.has_smart_scan;
            run->original.smart_scan = saved.smart_scan;
            evlog_say(run->log, TRUE,
                      "KSM: %s holds the settings found by a ballastd that did not exit "
                      "cleanly: those are restored at exit",
                      path);
            return;
        }
        evlog_say(run->log, FALSE, "KSM: ignoring %s: %s", path, e->message);
    }
    g_clear_error(&e);
    g_free(text);
    text = ksm_saved_to_text(now, boot);
    {
        g_autofree char *dir = g_path_get_dirname(path);

        if (g_mkdir_with_parents(dir, 0755) < 0 || !g_file_set_contents(path, text, -1, &e))
            evlog_say(run->log, FALSE,
                      "KSM: cannot save the original settings in %s (%s): a ballastd killed "
                      "before it exits will not restore them",
                      path, e ? e->message : g_strerror(errno));
    }
}

static void ksm_run_forget_original(KsmRun *run)
{
    g_autofree char *path = ksm_run_saved_path(run);

    g_unlink(path);
}

static void ksm_run_restore(KsmRun *run, const char *why)
{
    g_autoptr(GError) e = NULL;
    KsmSysfs now;
    KsmHostPlan plan;

    if (!run->owned || !run->has_original)
        return;
    run->owned = FALSE;
    if (!ksm_sysfs_read(run->root, &now, &e)) {
        evlog_say(run->log, TRUE, "KSM: cannot restore the settings found at start: %s",
                  e->message);
        return;
    }
    ksm_host_restore(&run->original, &now, &plan);
    g_snprintf(plan.reason, sizeof(plan.reason), "%s: KSM settings found at start restored", why);
    if (!ksm_host_plan_changes(&plan)) {
        evlog_say(run->log, FALSE, "KSM: %s: settings unchanged since start", why);
        ksm_run_forget_original(run);
        return;
    }
    if (!ksm_sysfs_apply(run->root, &plan, &e)) {
        ksm_run_emit_host(run, &plan, &now, FALSE, e->message);
        return; /* the saved file stays for the next ballastd */
    }
    ksm_run_emit_host(run, &plan, &now, TRUE, NULL);
    ksm_run_forget_original(run);
}

void ksm_run_free(KsmRun *run)
{
    if (run == NULL)
        return;
    ksm_run_restore(run, "ballastd exits");
    g_hash_table_destroy(run->vms);
    g_hash_table_destroy(run->low_profit);
    g_free(run->root);
    g_free(run);
}

/* Take or give up ownership of the host's KSM settings (start, reload). */
static void ksm_run_ownership(KsmRun *run, const KsmConfig *config)
{
    gboolean want;

    if (!run->started) {
        run->started = TRUE;
        run->available = ksm_sysfs_present(run->root);
        if (!run->available)
            evlog_say(run->log, TRUE,
                      "KSM: no /sys/kernel/mm/ksm (kernel without CONFIG_KSM): nothing to tune");
    }
    if (!run->available)
        return;
    run->managed = config->manage;
    want = config->manage && !run->dry_run;
    if (want && !run->owned) {
        g_autoptr(GError) e = NULL;
        KsmSysfs now;
        gint pid;

        if (!ksm_sysfs_read(run->root, &now, &e)) {
            evlog_say(run->log, TRUE, "KSM: cannot read /sys/kernel/mm/ksm: %s", e->message);
            return;
        }
        ksm_run_load_original(run, &now);
        run->has_original = TRUE;
        run->owned = TRUE;
        run->state = (KsmHostState){0};
        {
            json_object *f = json_object_new_object();
            json_object_object_add(
                f, "text", json_object_new_string("ballastd owns KSM: ksmtuned must not run"));
            evlog_emit(run->log, "note", NULL, f);
        }
        evlog_say(run->log, TRUE,
                  "ballastd owns KSM: ksmtuned must not run (found run=%u "
                  "pages_to_scan=%" G_GUINT64_FORMAT " sleep_millisecs=%" G_GUINT64_FORMAT
                  " advisor_mode=%s; restored at exit)",
                  run->original.run, run->original.pages_to_scan, run->original.sleep_millisecs,
                  ksm_advisor_to_string(run->original.advisor_mode));
        if (ksm_proc_find_comm(run->root, "ksmtuned", &pid, NULL))
            evlog_say(run->log, TRUE,
                      "KSM: ksmtuned is running (pid %d) and will fight ballastd over "
                      "/sys/kernel/mm/ksm: stop it (systemctl disable --now ksmtuned) or set "
                      "[ksm] manage=false",
                      pid);
    } else if (!want && run->owned) {
        ksm_run_restore(run, "[ksm] manage=false");
    } else if (!want && run->last_cycle_us == 0) {
        evlog_say(run->log, TRUE, "KSM: %s: host KSM settings are only reported",
                  run->dry_run ? "dry run" : "[ksm] manage=false");
    }
}

static void ksm_run_ksmd_cpu(KsmRun *run, gint64 now)
{
    guint64 ticks;

    if (run->ksmd_pid <= 0 && !ksm_proc_find_ksmd(run->root, &run->ksmd_pid, NULL))
        return;
    if (!ksm_proc_read_cpu_ticks(run->root, run->ksmd_pid, &ticks, NULL)) {
        run->ksmd_pid = 0; /* look again next time */
        run->has_ticks = FALSE;
        run->has_cpu = FALSE;
        return;
    }
    if (run->has_ticks) {
        run->cpu_percent = ksm_cpu_percent(run->ticks, ticks, run->clk_tck, now - run->ticks_at_us);
        run->has_cpu = TRUE;
    }
    run->ticks = ticks;
    run->ticks_at_us = now;
    run->has_ticks = TRUE;
}

static void ksm_run_host(KsmRun *run, const KsmConfig *config, const PolicyHost *host, gint64 now)
{
    g_autoptr(GError) e = NULL;
    KsmHostFacts facts = {0};
    KsmHostPlan plan;

    if (!ksm_sysfs_read(run->root, &run->now, &e)) {
        if (g_strcmp0(run->read_error, e->message) != 0)
            evlog_say(run->log, TRUE, "KSM: cannot read /sys/kernel/mm/ksm: %s", e->message);
        g_strlcpy(run->read_error, e->message, sizeof(run->read_error));
        run->has_now = FALSE;
        return;
    }
    run->read_error[0] = '\0';
    run->has_now = TRUE;
    run->profit_bytes = ksm_general_profit(&run->now, run->page_size);
    ksm_run_ksmd_cpu(run, now);
    if (!run->managed || host == NULL)
        return;

    facts.ksm = run->now;
    facts.mem_total_kib = host->mem_total_kib;
    facts.mem_available_kib = host->mem_available_kib;
    facts.page_size = run->page_size;
    ksm_host_decide(&facts, &run->state, config, now, &plan);
    run->state = plan.state;
    run->has_plan = TRUE;
    g_strlcpy(run->reason, plan.reason, sizeof(run->reason));
    ksm_run_host_plan(run, &plan, &run->now);
}

static void ksm_run_sample_vm(KsmRun *run, KsmRunVmState *v)
{
    g_autoptr(GError) e = NULL;
    gint pid;

    v->has_stat = FALSE;
    v->has_profit = FALSE;
    if (!ksm_proc_find_qemu_pid(run->root, NULL, v->name, run->qemu_uid, &pid, &e) ||
        !ksm_proc_read_stat(run->root, pid, &v->stat, &e)) {
        /* a kernel without ksm_stat (< 6.1) or a QEMU we cannot see */
        if (g_strcmp0(v->stat_error, e->message) != 0)
            evlog_say(run->log, FALSE, "%s: no KSM figures: %s", v->name, e->message);
        g_strlcpy(v->stat_error, e->message, sizeof(v->stat_error));
        v->pid = 0;
        return;
    }
    v->stat_error[0] = '\0';
    v->pid = pid;
    v->has_stat = TRUE;
    v->has_profit = ksm_proc_profit(&v->stat, run->page_size, &v->profit_bytes);
}

/* ---- low-profit exclusions across restarts ---- */

static void ksm_run_low_profit_load(KsmRun *run)
{
    g_autofree char *text = NULL;
    gsize len = 0;

    run->low_profit_loaded = TRUE;
    if (!procfs_read_file(run->root, KSM_RUN_LOW_PROFIT, 1 << 20, &text, &len, NULL))
        return;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        char *u = g_strstrip(lines[i]);
        if (*u && strlen(u) < 64)
            g_hash_table_add(run->low_profit, g_strdup(u));
    }
}

static void ksm_run_low_profit_save(KsmRun *run)
{
    g_autofree char *path = g_build_filename(run->root ? run->root : "/", KSM_RUN_LOW_PROFIT, NULL);
    g_autofree char *dir = g_path_get_dirname(path);
    g_autoptr(GString) text = g_string_new(NULL);
    g_autoptr(GError) e = NULL;
    GHashTableIter it;
    gpointer k;

    g_hash_table_iter_init(&it, run->low_profit);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_string_append_printf(text, "%s\n", (char *)k);
    if (g_mkdir_with_parents(dir, 0755) < 0 ||
        !g_file_set_contents(path, text->str, (gssize)text->len, &e))
        evlog_say(run->log, FALSE,
                  "KSM: cannot write %s (%s): a restarted ballastd will keep these low-profit "
                  "exclusions",
                  path, e ? e->message : g_strerror(errno));
}

static void ksm_run_low_profit_mark(KsmRun *run, const char *uuid, gboolean low_profit)
{
    gboolean changed = low_profit ? g_hash_table_add(run->low_profit, g_strdup(uuid))
                                  : g_hash_table_remove(run->low_profit, uuid);
    if (changed && !run->dry_run)
        ksm_run_low_profit_save(run);
}

/* Low-profit exclusions were made on the host's memory and the thresholds of
 * the time: when those change, every such VM is measured again. */
static void ksm_run_check_facts(KsmRun *run, const KsmConfig *config)
{
    gboolean changed = run->has_facts && (run->facts_short != run->state.short_of_memory ||
                                          run->facts_min_profit_mib != config->vm_min_profit_mib ||
                                          run->facts_full_scans != config->vm_full_scans);
    GHashTableIter it;
    gpointer value;

    run->has_facts = TRUE;
    run->facts_short = run->state.short_of_memory;
    run->facts_min_profit_mib = config->vm_min_profit_mib;
    run->facts_full_scans = config->vm_full_scans;
    if (!changed)
        return;
    g_hash_table_iter_init(&it, run->vms);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        KsmRunVmState *v = value;
        if (v->state.excluded && v->state.why == KSM_VM_WHY_LOW_PROFIT)
            v->state.reconsider = TRUE;
    }
}

/* ---- applying, and seeing it take effect ---- */

static void ksm_run_emit_effect(KsmRun *run, const char *name, KsmRunVmState *v,
                                const char *evidence)
{
    json_object *f = json_object_new_object();

    json_object_object_add(f, "state", json_object_new_string(ksm_run_state_name(v->effect)));
    json_object_object_add(f, "exclude", json_object_new_boolean(v->state.excluded));
    json_object_object_add(f, "reason", json_object_new_string(v->reason));
    json_object_object_add(f, "error", v->error[0] ? json_object_new_string(v->error) : NULL);
    json_object_object_add(f, "evidence", evlog_str_or_null(evidence));
    json_object_object_add(f, "failures", json_object_new_int((int)v->retry.failures));
    evlog_emit(run->log, "ksm-exclusion", name, f);
    evlog_say(run->log, TRUE, "%s: KSM exclusion %s: %s", name, ksm_run_state_name(v->effect),
              evidence ? evidence : v->error);
}

static void ksm_run_fail(KsmRun *run, KsmRunVmState *v, gint64 now, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

/* A switch that did not take effect is tried again: 10 s, doubling, at most
 * 10 min (the shared back-off type, common/backoff.h). */
static const BackoffSpec ksm_run_retry = {KSM_RUN_RETRY_MIN_US, KSM_RUN_RETRY_MAX_US, 2};

static void ksm_run_fail(KsmRun *run, KsmRunVmState *v, gint64 now, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_vsnprintf(v->error, sizeof(v->error), fmt, ap);
    va_end(ap);
    backoff_fail(&v->retry, &ksm_run_retry, now);
    v->effect = KSM_RUN_FAILED;
}

/* Apply v->state (exclude or include) and record only what is known to hold:
 * a live switch that answered is PENDING until its QEMU shows it. */
static void ksm_run_apply_vm(KsmRun *run, const KsmConfig *config, const KsmRunVm *vm,
                             KsmRunVmState *v, gboolean allow_monitor, gint64 now)
{
    g_autoptr(GError) e = NULL;
    VirtKsmResult r = {0};
    gboolean exclude = v->state.excluded;
    const char *event = exclude ? "ksm-exclude" : "ksm-include";
    const char *verb = exclude ? "exclude from KSM" : "include in KSM";
    g_autoptr(GString) how = g_string_new(NULL);

    v->error[0] = '\0';
    if (run->dry_run) {
        v->effect = exclude ? KSM_RUN_WOULD : KSM_RUN_SHARED;
    } else if (run->virt == NULL && run->applier == NULL) {
        ksm_run_fail(run, v, now, "no libvirt connection");
    } else {
        gboolean live = allow_monitor && config->live_exclusion;

        if (run->applier)
            run->applier(run->applier_data, vm->uuid, exclude, live, &r, &e);
        else
            virt_ksm_apply_uuid(run->virt, vm->uuid, exclude, live, &r, &e);
        if (r.live_attempted)
            g_string_append_printf(how,
                                   "; live: %s (%u memory backend%s, libvirt marks the "
                                   "domain tainted: custom-monitor)",
                                   r.live ? "switched" : "failed", r.n_backends,
                                   r.n_backends == 1 ? "" : "s");
        else if (r.live)
            g_string_append(how, "; live: already (started with <nosharepages/>)");
        if (r.persistent)
            g_string_append_printf(how, "; persistent: %s",
                                   !r.persistent_done     ? "failed"
                                   : r.persistent_changed ? (exclude ? "<nosharepages/> added"
                                                                     : "<nosharepages/> removed")
                                                          : "already so");
        if (r.note[0])
            g_string_append_printf(how, "; %s", r.note);
        if (r.active && !r.live_attempted && !r.live)
            g_string_append(how, !allow_monitor ? " ([broker] allow_qemu_monitor=false)"
                                                : " ([ksm] live_exclusion=false)");
        if (e)
            g_string_append_printf(how, "; error: %s", e->message);

        v->persistent = r.persistent;
        v->persistent_done = r.persistent_done;
        if (!exclude) {
            if (e) {
                ksm_run_fail(run, v, now, "%s", e->message);
            } else {
                v->effect = KSM_RUN_SHARED;
                backoff_reset(&v->retry);
            }
        } else if (r.active && r.live) {
            /* The monitor answered (or QEMU started without sharing): not
             * done until its RAM is seen to lose "mg". */
            v->effect = KSM_RUN_PENDING;
            v->verify_by_us = now + KSM_RUN_VERIFY_US;
            v->has_merging_at_switch = v->has_stat && v->stat.has_merging_pages;
            v->merging_at_switch = v->stat.merging_pages;
            if (e)
                g_strlcpy(v->error, e->message, sizeof(v->error));
        } else if (r.persistent_done) {
            if (r.live_attempted) {
                /* the monitor was allowed and refused: tried again later */
                ksm_run_fail(run, v, now, "%s", e ? e->message : "live switch failed");
            } else {
                backoff_reset(&v->retry);
                g_strlcpy(v->error,
                          e           ? e->message
                          : r.note[0] ? r.note
                                      : "the running QEMU keeps merging until its next start",
                          sizeof(v->error));
            }
            v->effect = KSM_RUN_NEXT_BOOT;
        } else {
            ksm_run_fail(run, v, now, "%s",
                         e           ? e->message
                         : r.note[0] ? r.note
                                     : "nothing could be applied");
        }
    }
    if (exclude)
        ksm_run_low_profit_mark(run, vm->uuid, v->state.why == KSM_VM_WHY_LOW_PROFIT);
    else
        ksm_run_low_profit_mark(run, vm->uuid, FALSE);

    json_object *f = json_object_new_object();
    json_object_object_add(f, "reason", json_object_new_string(v->reason));
    json_object_object_add(f, "why", json_object_new_string(ksm_vm_why_to_string(v->state.why)));
    /* live: the switch answered; state: what is known to be in effect */
    json_object_object_add(f, "live", json_object_new_boolean(r.live));
    json_object_object_add(f, "persistent", json_object_new_boolean(r.persistent_done));
    json_object_object_add(f, "applied", json_object_new_boolean(r.live || r.persistent_done));
    json_object_object_add(f, "state", json_object_new_string(ksm_run_state_name(v->effect)));
    json_object_object_add(f, "tainted", json_object_new_boolean(r.live_attempted));
    json_object_object_add(f, "why_not_applied",
                           run->dry_run ? json_object_new_string("dry-run")
                           : run->virt == NULL && run->applier == NULL
                               ? json_object_new_string("no libvirt")
                               : NULL);
    if (e)
        json_object_object_add(f, "error", json_object_new_string(e->message));
    if (v->retry.failures > 0)
        json_object_object_add(f, "attempt", json_object_new_int((int)v->retry.failures + 1));
    evlog_emit(run->log, event, vm->name, f);
    evlog_say(run->log, TRUE, "%s%s: %s (%s)%s: %s", run->dry_run ? "would: " : "", vm->name, verb,
              v->reason, how->str, ksm_run_state_name(v->effect));
}

/* A PENDING exclusion: did its QEMU's RAM lose "mg", or its merging pages
 * fall? Past the deadline it failed. */
static void ksm_run_verify(KsmRun *run, const KsmRunVm *vm, KsmRunVmState *v, gint64 now)
{
    g_autoptr(GError) e = NULL;
    KsmProcSmaps m;
    char evidence[160];

    if (v->pid > 0 && ksm_proc_read_smaps(run->root, v->pid, &m, &e) && !m.largest_mergeable) {
        g_snprintf(evidence, sizeof(evidence),
                   "its %" G_GUINT64_FORMAT " MiB RAM mapping is no longer mergeable",
                   m.largest_kib / 1024);
    } else if (v->has_merging_at_switch && v->merging_at_switch > 0 && v->has_stat &&
               v->stat.has_merging_pages && v->stat.merging_pages < v->merging_at_switch) {
        g_snprintf(evidence, sizeof(evidence),
                   "merging pages fell %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT,
                   v->merging_at_switch, v->stat.merging_pages);
    } else {
        if (now < v->verify_by_us)
            return;
        ksm_run_fail(run, v, now, "not in effect %" G_GINT64_FORMAT " s after the switch: %s",
                     (gint64)(KSM_RUN_VERIFY_US / G_USEC_PER_SEC),
                     e        ? e->message
                     : v->pid ? "its RAM mapping is still mergeable (VmFlags mg)"
                              : "its QEMU process was not found");
        ksm_run_emit_effect(run, vm->name, v, NULL);
        return;
    }
    v->effect = v->persistent && v->persistent_done ? KSM_RUN_PERSISTENT : KSM_RUN_LIVE;
    if (v->persistent && !v->persistent_done) {
        /* live holds; the definition is retried */
        ksm_run_fail(run, v, now, "the persistent definition could not be changed%s%s",
                     v->error[0] ? ": " : "", v->error[0] ? v->error : "");
        v->effect = KSM_RUN_LIVE;
    } else {
        backoff_reset(&v->retry);
    }
    ksm_run_emit_effect(run, vm->name, v, evidence);
}

void ksm_run_tick(KsmRun *run, const KsmConfig *config, gboolean allow_qemu_monitor,
                  const PolicyHost *host, const KsmRunVm *vms, gsize n_vms, gint64 now_us)
{
    gboolean cycle, sample;
    GHashTableIter it;
    gpointer value;

    if (!run->started || run->managed != config->manage)
        ksm_run_ownership(run, config);
    if (!run->low_profit_loaded)
        ksm_run_low_profit_load(run);
    cycle = run->last_cycle_us == 0 ||
            now_us - run->last_cycle_us >= (gint64)config->interval_s * G_USEC_PER_SEC;
    if (cycle && run->available) {
        run->last_cycle_us = now_us;
        ksm_run_host(run, config, host, now_us);
    }
    ksm_run_check_facts(run, config);
    /* VM figures are cheap (three small reads) and shown live in the status. */
    sample = run->available &&
             (run->last_sample_us == 0 || cycle || now_us - run->last_sample_us >= G_USEC_PER_SEC);
    if (sample)
        run->last_sample_us = now_us;

    g_hash_table_iter_init(&it, run->vms);
    while (g_hash_table_iter_next(&it, NULL, &value))
        ((KsmRunVmState *)value)->seen = FALSE;
    for (gsize i = 0; i < n_vms; i++) {
        const KsmRunVm *vm = &vms[i];
        KsmRunVmState *v = g_hash_table_lookup(run->vms, vm->uuid);
        KsmVmFacts facts = {0};
        KsmVmDecision d;

        if (v == NULL) {
            v = g_new0(KsmRunVmState, 1);
            g_hash_table_insert(run->vms, g_strdup(vm->uuid), v);
        }
        v->seen = TRUE;
        if (g_strcmp0(v->name, vm->name) != 0) {
            g_free(v->name);
            v->name = g_strdup(vm->name);
        }
        if (!vm->active) {
            v->has_stat = FALSE;
            v->pid = 0;
            v->was_active = FALSE;
            continue;
        }
        if (vm->hold) {
            /* Released: figures only, until the operator resumes it. */
            v->was_active = TRUE;
            if (sample)
                ksm_run_sample_vm(run, v);
            continue;
        }
        /* A new QEMU: enforce an exclusion again (a transient domain, or a
         * failed redefinition, starts merging again). */
        if (!v->was_active) {
            v->state.decided = FALSE;
            backoff_reset(&v->retry);
            /* excluded for low profit by an earlier ballastd: measured again */
            if (vm->ksm == POLICY_KSM_AUTO && g_hash_table_contains(run->low_profit, vm->uuid)) {
                v->state = (KsmVmState){.decided = TRUE,
                                        .excluded = TRUE,
                                        .why = KSM_VM_WHY_LOW_PROFIT,
                                        .excluded_at_us = now_us,
                                        .reconsider = TRUE};
            }
        }
        v->was_active = TRUE;
        if (sample)
            ksm_run_sample_vm(run, v);

        facts.name = vm->name;
        facts.ksm = vm->ksm;
        facts.latency_sensitive = vm->latency_sensitive;
        facts.has_stat = v->has_stat;
        facts.stat = v->stat;
        facts.full_scans = run->has_now ? run->now.full_scans : 0;
        facts.page_size = run->page_size;
        ksm_vm_decide(&facts, &v->state, config, now_us, &d);
        v->state = d.state;
        g_strlcpy(v->reason, d.reason, sizeof(v->reason));
        if (d.changed) {
            backoff_reset(&v->retry);
            ksm_run_apply_vm(run, config, vm, v, allow_qemu_monitor, now_us);
        } else if (v->retry.failures > 0 && v->effect != KSM_RUN_PENDING &&
                   now_us >= v->retry.next_us) {
            /* failed, or live with a definition that could not be changed */
            ksm_run_apply_vm(run, config, vm, v, allow_qemu_monitor, now_us);
        }
        if (v->effect == KSM_RUN_PENDING && sample)
            ksm_run_verify(run, vm, v, now_us);
    }
    g_hash_table_iter_init(&it, run->vms);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (!((KsmRunVmState *)value)->seen)
            g_hash_table_iter_remove(&it);
}

gboolean ksm_run_vm_info(const KsmRun *run, const char *uuid, KsmRunVmInfo *info)
{
    const KsmRunVmState *v = g_hash_table_lookup(run->vms, uuid);

    memset(info, 0, sizeof(*info));
    if (v == NULL || !v->state.decided)
        return FALSE;
    info->want_exclude = v->state.excluded;
    info->state = v->effect;
    g_strlcpy(info->reason, v->reason, sizeof(info->reason));
    g_strlcpy(info->error, v->error, sizeof(info->error));
    info->failures = v->retry.failures;
    info->retry_at_us = v->retry.failures > 0 ? v->retry.next_us : 0;
    info->pid = v->pid;
    info->has_merging_pages = v->has_stat && v->stat.has_merging_pages;
    info->merging_pages = v->stat.merging_pages;
    return TRUE;
}

gboolean ksm_run_release(KsmRun *run, const char *uuid, gboolean live_allowed, GString *done,
                         GError **error)
{
    KsmRunVmState *v = g_hash_table_lookup(run->vms, uuid);
    VirtKsmResult r = {0};

    /* Only an exclusion ballast chose itself: ksm=never and latency-sensitive
     * are the operator's, and stay. */
    if (v == NULL || !v->state.decided || !v->state.excluded ||
        v->state.why != KSM_VM_WHY_LOW_PROFIT)
        return TRUE;
    gboolean ok = run->dry_run ||
                  (run->applier != NULL
                       ? run->applier(run->applier_data, uuid, FALSE, live_allowed, &r, error)
                       : run->virt == NULL ||
                             virt_ksm_apply_uuid(run->virt, uuid, FALSE, live_allowed, &r, error));
    if (!ok)
        return FALSE;
    v->state.excluded = FALSE;
    v->state.why = KSM_VM_WHY_NONE;
    g_strlcpy(v->reason, "released by the operator", sizeof(v->reason));
    g_string_append_printf(done, "%sre-included in KSM%s", run->dry_run ? "would have " : "",
                           r.persistent_changed ? " (<nosharepages/> removed)" : "");
    json_object *f = json_object_new_object();
    json_object_object_add(f, "reason", json_object_new_string("released by the operator"));
    json_object_object_add(f, "why", json_object_new_string("release"));
    json_object_object_add(f, "live", json_object_new_boolean(r.live));
    json_object_object_add(f, "persistent", json_object_new_boolean(r.persistent_done));
    json_object_object_add(f, "applied", json_object_new_boolean(!run->dry_run && run->virt));
    evlog_emit(run->log, "ksm-include", v->name, f);
    return TRUE;
}

static json_object *ksm_run_u64(gboolean has, guint64 v)
{
    return has ? json_object_new_uint64(v) : NULL;
}

json_object *ksm_run_status(const KsmRun *run)
{
    json_object *o = json_object_new_object();
    const KsmSysfs *k = &run->now;
    gboolean has = run->has_now;

    json_object_object_add(o, "available", json_object_new_boolean(run->available));
    json_object_object_add(o, "managed", json_object_new_boolean(run->managed));
    json_object_object_add(o, "owned", json_object_new_boolean(run->owned));
    json_object_object_add(o, "run", has ? json_object_new_int((int)k->run) : NULL);
    json_object_object_add(o, "pages_to_scan", ksm_run_u64(has, k->pages_to_scan));
    json_object_object_add(o, "sleep_millisecs", ksm_run_u64(has, k->sleep_millisecs));
    json_object_object_add(o, "pages_shared", ksm_run_u64(has, k->pages_shared));
    json_object_object_add(o, "pages_sharing", ksm_run_u64(has, k->pages_sharing));
    json_object_object_add(o, "pages_unshared", ksm_run_u64(has, k->pages_unshared));
    json_object_object_add(o, "pages_volatile", ksm_run_u64(has, k->pages_volatile));
    json_object_object_add(o, "full_scans", ksm_run_u64(has, k->full_scans));
    json_object_object_add(o, "ksm_zero_pages",
                           ksm_run_u64(has && k->has_zero_pages, k->ksm_zero_pages));
    json_object_object_add(o, "general_profit",
                           has ? json_object_new_int64(run->profit_bytes) : NULL);
    json_object_object_add(o, "general_profit_estimated",
                           json_object_new_boolean(has && !k->has_general_profit));
    json_object_object_add(o, "advisor_mode",
                           has ? json_object_new_string(ksm_advisor_to_string(k->advisor_mode))
                               : NULL);
    json_object_object_add(
        o, "smart_scan", has && k->has_smart_scan ? json_object_new_boolean(k->smart_scan) : NULL);
    json_object_object_add(o, "ksmd_cpu_percent",
                           run->has_cpu ? json_object_new_double(run->cpu_percent) : NULL);
    json_object_object_add(o, "short_of_memory",
                           json_object_new_boolean(run->state.short_of_memory));
    json_object_object_add(o, "reason", run->has_plan ? json_object_new_string(run->reason) : NULL);
    return o;
}

void ksm_run_vm_status(const KsmRun *run, const char *uuid, json_object *obj)
{
    const KsmRunVmState *v = g_hash_table_lookup(run->vms, uuid);

    if (v == NULL || !v->state.decided)
        return;
    /* Excluded only when seen to take effect; in a dry run nothing was
     * applied, the decision is only what would be done. */
    json_object_object_add(
        obj, "excluded",
        json_object_new_boolean(v->effect == KSM_RUN_LIVE || v->effect == KSM_RUN_PERSISTENT));
    json_object_object_add(obj, "exclusion",
                           v->state.excluded || v->effect == KSM_RUN_FAILED
                               ? json_object_new_string(ksm_run_state_name(v->effect))
                               : NULL);
    json_object_object_add(obj, "error", v->error[0] ? json_object_new_string(v->error) : NULL);
    if (run->dry_run)
        json_object_object_add(obj, "would_exclude", json_object_new_boolean(v->state.excluded));
    json_object_object_add(obj, "why", json_object_new_string(ksm_vm_why_to_string(v->state.why)));
    json_object_object_add(obj, "reason", json_object_new_string(v->reason));
    json_object_object_add(obj, "pid", v->pid > 0 ? json_object_new_int(v->pid) : NULL);
    json_object_object_add(
        obj, "merging_pages",
        ksm_run_u64(v->has_stat && v->stat.has_merging_pages, v->stat.merging_pages));
    json_object_object_add(obj, "rmap_items", ksm_run_u64(v->has_stat, v->stat.rmap_items));
    json_object_object_add(obj, "profit_bytes",
                           v->has_profit ? json_object_new_int64(v->profit_bytes) : NULL);
}
