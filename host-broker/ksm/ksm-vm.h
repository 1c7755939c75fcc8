/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-VM KSM exclusion: pure decisions with a reason.
 *
 * decision = ksm_vm_decide(facts, state, config, now). The broker collects the
 * facts (metadata, the VM's QEMU ksm_stat, the host's full_scans), applies a
 * changed decision through virt-ksm.h and stores decision.state for the next
 * cycle. docs/ksm.md explains the rules.
 */
#pragma once

#include <glib.h>

#include "ksm-proc.h"
#include "ksm.h"
#include "policy.h"

typedef enum {
    KSM_VM_WHY_NONE,       /* nothing known yet */
    KSM_VM_WHY_NEVER,      /* metadata ksm="never" */
    KSM_VM_WHY_ALWAYS,     /* metadata ksm="always" */
    KSM_VM_WHY_LATENCY,    /* latency-sensitive (metadata or configuration) */
    KSM_VM_WHY_LOW_PROFIT, /* ksm="auto" and its merging does not pay */
    KSM_VM_WHY_PAYS,       /* ksm="auto" and its merging pays (or is being measured) */
    KSM_VM_WHY_NO_DATA,    /* ksm="auto", no ksm_stat or nothing scanned yet */
    KSM_VM_WHY_RETRY,      /* re-included after a low-profit exclusion, to measure again */
} KsmVmWhy;

typedef struct {
    const char *name;
    PolicyKsm ksm;
    gboolean latency_sensitive; /* metadata latency-sensitive="yes" */
    gboolean has_stat;          /* its QEMU's ksm_stat could be read */
    KsmProcStat stat;
    guint64 full_scans; /* the host's /sys/kernel/mm/ksm/full_scans now */
    guint64 page_size;  /* bytes; 0 means 4096 */
} KsmVmFacts;

/* Remembered between cycles; zero-initialise for a VM seen the first time. */
typedef struct {
    gboolean decided;  /* a decision was made before */
    gboolean excluded; /* the state ballast last applied (or wanted) */
    KsmVmWhy why;
    gboolean measuring; /* scans_seen holds a baseline */
    guint64 scans_seen; /* host full_scans at the last profit sample */
    guint low_scans;    /* consecutive samples below the threshold */
    gint64 excluded_at_us;
    /* A low-profit exclusion to measure again now: the facts it was made on
     * changed (host memory, thresholds) or ballastd restarted since. */
    gboolean reconsider;
} KsmVmState;

typedef struct {
    gboolean exclude; /* wanted: TRUE = no sharing for this VM */
    gboolean changed; /* apply it (new wanted state, or enforcing at first sight) */
    KsmVmWhy why;
    gboolean has_profit;
    gint64 profit_bytes;
    char reason[256]; /* "vm1: ksm=never in metadata: tenant isolation (...)" */
    KsmVmState state; /* to keep for the next cycle */
} KsmVmDecision;

/* TRUE when name is in config->latency_sensitive. */
gboolean ksm_vm_in_list(const KsmConfig *config, const char *name);

void ksm_vm_decide(const KsmVmFacts *facts, const KsmVmState *state, const KsmConfig *config,
                   gint64 now_us, KsmVmDecision *decision);

const char *ksm_vm_why_to_string(KsmVmWhy why);
