/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /sys/kernel/mm/ksm under a root directory: read the knobs and counters into
 * a KsmSysfs, write a KsmHostPlan. root NULL or "/" is the real system; tests
 * pass a copy of a fixture tree in tests/data/ksm-*.
 */
#pragma once

#include <glib.h>

#include "ksm.h"

#define KSM_SYSFS_DIR "sys/kernel/mm/ksm"

/* "[none] scan-time" -> KSM_ADVISOR_NONE; a bare "none" or "scan-time" (as
 * written) is taken too; FALSE when no mode is selected. */
gboolean ksm_sysfs_parse_advisor(const char *text, KsmAdvisor *mode);

/* TRUE when root has a KSM directory (CONFIG_KSM=y). */
gboolean ksm_sysfs_present(const char *root);

/*
 * Read every knob. run, pages_to_scan, sleep_millisecs, pages_shared,
 * pages_sharing, pages_unshared, pages_volatile and full_scans are required;
 * general_profit, ksm_zero_pages, advisor_mode and smart_scan are read where
 * the kernel has them. A value that is not a number is an error.
 */
gboolean ksm_sysfs_read(const char *root, KsmSysfs *ksm, GError **error);

/* Write value (e.g. "300") to root/sys/kernel/mm/ksm/knob; the file must exist. */
gboolean ksm_sysfs_write_knob(const char *root, const char *knob, const char *value,
                              GError **error);

/* Apply the set_* fields of plan in the order ksm.h documents; stops at the
 * first failure. */
gboolean ksm_sysfs_apply(const char *root, const KsmHostPlan *plan, GError **error);
