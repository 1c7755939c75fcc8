/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The libvirt side of per-VM KSM exclusion (part of the virt module, the only
 * libvirt callers).
 *
 * Live: qom-list /objects finds the guest RAM backends, qom-set merge=false
 * (or true) on each makes QEMU madvise them MADV_UNMERGEABLE (MADV_MERGEABLE).
 * This goes through virDomainQemuMonitorCommand, after which libvirt marks
 * the domain tainted (custom-monitor): only when the caller allows it.
 * Persistent: <memoryBacking><nosharepages/> added to (removed from) the
 * inactive definition, so the next start keeps the choice.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

#include "virt.h"

#define VIRT_KSM_ERROR (virt_ksm_error_quark())
GQuark virt_ksm_error_quark(void);

typedef struct {
    gboolean active;             /* the domain was running */
    gboolean persistent;         /* it has a persistent definition */
    gboolean live;               /* the running QEMU is as asked */
    gboolean live_attempted;     /* monitor commands were sent (domain now tainted) */
    guint n_backends;            /* memory backends set */
    gboolean persistent_done;    /* the persistent definition is as asked */
    gboolean persistent_changed; /* ... and was redefined for it */
    char note[256];              /* what did not happen and why, for the log */
} VirtKsmResult;

/*
 * Exclude (exclude TRUE) or re-include the domain. live_allowed: may the
 * monitor be used ([ksm] live_exclusion). Returns FALSE with error when a part
 * that was attempted failed; *result tells what was done either way.
 */
gboolean virt_ksm_apply(virDomainPtr dom, gboolean exclude, gboolean live_allowed,
                        VirtKsmResult *result, GError **error);

/* The live part alone; FALSE with error if the monitor refuses or no memory
 * backend is found. */
gboolean virt_ksm_set_live(virDomainPtr dom, gboolean merge, guint *n_backends, GError **error);

/* The persistent part alone; *changed FALSE when already as asked. */
gboolean virt_ksm_set_persistent(virDomainPtr dom, gboolean nosharepages, gboolean *changed,
                                 GError **error);

/* virt_ksm_apply() on a domain of the broker's connection, by UUID, on the
 * connection's worker (virt.c). */
gboolean virt_ksm_apply_uuid(Virt *v, const char *uuid, gboolean exclude, gboolean live_allowed,
                             VirtKsmResult *result, GError **error);
