/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Plain types and units every part of the broker shares (policy, KSM, virt,
 * sessions, configuration), so that no part has to include another's header
 * to name a mode or a size. Nothing here but constants and enums.
 */
#pragma once

#include <glib.h>

/* Units. Memory in the broker is KiB unless a name says bytes: write the one
 * meant, never a bare 1024. */
#define KIB_PER_MIB   ((guint64)1024)
#define KIB_PER_GIB   (1024 * KIB_PER_MIB)
#define BYTES_PER_KIB ((guint64)1024)
#define BYTES_PER_MIB (1024 * BYTES_PER_KIB)

/* What ballast may do with a VM's balloon (metadata mode=, [broker] default_mode). */
typedef enum {
    POLICY_MODE_AUTO,    /* decide and act */
    POLICY_MODE_OBSERVE, /* decide, log, do not act (per-VM dry run) */
    POLICY_MODE_OFF,     /* leave the VM alone */
} PolicyMode;

/* Whether a VM's pages may be merged by KSM (metadata ksm=, [broker] default_ksm). */
typedef enum {
    POLICY_KSM_AUTO,   /* merge while it pays */
    POLICY_KSM_NEVER,  /* never share this VM's pages (tenant isolation) */
    POLICY_KSM_ALWAYS, /* always allow sharing */
} PolicyKsm;
