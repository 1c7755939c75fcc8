/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internals shared by the protocol library's files; not part of the contract. */
#pragma once

#include "protocol.h"

#include "json-compat.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

#define BL_PROTO_N_TYPES      (BL_MSG_GOODBYE + 1)
#define BL_PROTO_N_KCONFIG    (BL_KCONFIG_N + 1)
#define BL_PROTO_N_REASONS    (BL_REPORT_REQUEST + 1)
#define BL_PROTO_N_PSI_KINDS  (BL_PSI_FULL + 1)
#define BL_PROTO_N_PSI_AVGS   3 /* avg10, avg60, avg300 */
#define BL_PROTO_MEM_N_FIELDS 7 /* BlMem, in declaration order */

/* Wire names, indexed by the enum (or field position for mem and PSI averages). */
extern const char *const bl_proto_type_names[BL_PROTO_N_TYPES];
extern const char *const bl_proto_kconfig_names[BL_PROTO_N_KCONFIG];
extern const char *const bl_proto_reason_names[BL_PROTO_N_REASONS];
extern const char *const bl_proto_psi_kind_names[BL_PROTO_N_PSI_KINDS];
extern const char *const bl_proto_vmstat_names[BL_VMSTAT_N_COUNTERS];
extern const char *const bl_proto_mem_names[BL_PROTO_MEM_N_FIELDS];
extern const char *const bl_proto_psi_avg_names[BL_PROTO_N_PSI_AVGS];

/* Index of s in names[0..n), or -1. */
int bl_proto_name_index(const char *const *names, guint n, const char *s);
