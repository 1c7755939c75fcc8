/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * KSM in ballastd: the I/O edge around the pure KSM decisions.
 *
 * Every [ksm] interval_s it reads /sys/kernel/mm/ksm and ksmd's CPU time
 * under the host root, asks ksm_host_decide() and writes the plan (unless
 * [ksm] manage=false or --dry-run); then, for every running VM, reads its
 * QEMU's ksm_stat, asks ksm_vm_decide() and applies a changed decision
 * through virt-ksm (live only with [broker] allow_qemu_monitor=true).
 * Decisions go to the event log as ksm-host / ksm-exclude / ksm-include and
 * to the status object. ksm_run_free() puts back the KSM settings found at
 * start.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "evlog.h"
#include "ksm.h"
#include "policy.h"
#include "virt-ksm.h"
#include "virt.h"

typedef struct KsmRun KsmRun;

/* Where a VM's KSM exclusion stands: only what was seen to take effect is
 * called live or persistent. */
typedef enum {
    KSM_RUN_SHARED,     /* no exclusion wanted (or it was undone): sharing allowed */
    KSM_RUN_PENDING,    /* switched; waiting for its QEMU's RAM to lose "mg" */
    KSM_RUN_FAILED,     /* did not take effect (error says why); retried with back-off */
    KSM_RUN_LIVE,       /* its QEMU's RAM no longer merges (no persistent definition to change) */
    KSM_RUN_PERSISTENT, /* live, and <nosharepages/> is in the defined XML */
    KSM_RUN_NEXT_BOOT,  /* <nosharepages/> is defined; the running QEMU still merges */
    KSM_RUN_WOULD,      /* dry run: decided, nothing applied */
} KsmRunState;

/* What the KSM controller knows of one VM (status, metrics). */
typedef struct {
    gboolean want_exclude; /* the decision */
    KsmRunState state;     /* what is in effect */
    char reason[256];      /* the decision's reason */
    char error[256];       /* why it failed or what is missing; "" when nothing */
    guint failures;        /* consecutive failed attempts */
    gint64 retry_at_us;    /* next attempt (monotonic) when failed */
    gint pid;              /* its QEMU, 0 when not found */
    gboolean has_merging_pages;
    guint64 merging_pages;
} KsmRunVmInfo;

const char *ksm_run_state_name(KsmRunState state);

/* One domain as the broker knows it. */
typedef struct {
    const char *uuid;
    const char *name;
    gboolean active;
    PolicyKsm ksm;              /* metadata ksm=, or [broker] default_ksm */
    gboolean latency_sensitive; /* metadata latency-sensitive="yes" */
    gboolean hold;              /* released by the operator: measure, decide nothing */
} KsmRunVm;

/* root: host root (NULL = "/"); virt may be NULL (no per-VM actions). */
KsmRun *ksm_run_new(const char *root, Evlog *log, Virt *virt, gboolean dry_run);

/* The QEMU user's uid (from virt_qemu_uid()): a process found by its command
 * line is taken for a domain's QEMU only when it runs as this user; -1 (the
 * default) trusts libvirt's pid files only. */
void ksm_run_set_qemu_uid(KsmRun *run, gint64 uid);

/* Tests: apply exclusions through this instead of virt-ksm (the libvirt
 * test driver has no QEMU monitor). */
typedef gboolean (*KsmRunApplier)(gpointer data, const char *uuid, gboolean exclude,
                                  gboolean live_allowed, VirtKsmResult *result, GError **error);
void ksm_run_set_applier(KsmRun *run, KsmRunApplier applier, gpointer data);

/* FALSE when the VM was never decided on (not running, or not seen yet). */
gboolean ksm_run_vm_info(const KsmRun *run, const char *uuid, KsmRunVmInfo *info);

/* Restores the settings found at start when ballastd owned KSM. */
void ksm_run_free(KsmRun *run);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KsmRun, ksm_run_free)

/*
 * Call on every broker tick with every domain the broker knows. The host
 * part runs every config->interval_s and the VMs' ksm_stat is read at most
 * once a second; the per-VM decisions run every tick on the latest figures
 * (so a new VM, or a metadata change, is acted on at once). Domains missing
 * from vms are forgotten. host may be NULL when unknown.
 */
void ksm_run_tick(KsmRun *run, const KsmConfig *config, gboolean allow_qemu_monitor,
                  const PolicyHost *host, const KsmRunVm *vms, gsize n_vms, gint64 now_us);

/*
 * ballastctl release: undo ballast's own exclusion of the VM (one it made
 * because merging did not pay), not the operator's (ksm=never,
 * latency-sensitive). Appends what was done to `done` ("" when nothing) and
 * returns FALSE with error if re-including failed. live_allowed: as for
 * ksm_run_tick ([broker] allow_qemu_monitor and [ksm] live_exclusion). Pass hold in the VM's
 * KsmRunVm from then on, or the next tick decides again.
 */
gboolean ksm_run_release(KsmRun *run, const char *uuid, gboolean live_allowed, GString *done,
                         GError **error);

/* The host part of the status object ("ksm": {...}). */
json_object *ksm_run_status(const KsmRun *run);

/* Fill a VM's "ksm" status object: excluded (in effect), exclusion (the
 * KsmRunState name), error, reason, merging_pages, profit_bytes. */
void ksm_run_vm_status(const KsmRun *run, const char *uuid, json_object *obj);
