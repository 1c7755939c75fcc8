/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Wire protocol v1: error domain, wire names, message initialisation. The
 * codec is in protocol-decode.c and protocol-encode.c, the semantic checks
 * both share in protocol-validate.c.
 */
#include "protocol-private.h"

#include <string.h>

GQuark bl_proto_error_quark(void)
{
    return g_quark_from_static_string("bl-proto-error-quark");
}

/* ---- wire names ---------------------------------------------------------- */

const char *const bl_proto_type_names[BL_PROTO_N_TYPES] = {
    [BL_MSG_HELLO] = "hello",     [BL_MSG_REPORT] = "report",   [BL_MSG_PONG] = "pong",
    [BL_MSG_WELCOME] = "welcome", [BL_MSG_REQUEST] = "request", [BL_MSG_PING] = "ping",
    [BL_MSG_GOODBYE] = "goodbye",
};
const char *const bl_proto_kconfig_names[BL_PROTO_N_KCONFIG] = {
    [BL_KCONFIG_UNKNOWN] = "unknown",
    [BL_KCONFIG_Y] = "y",
    [BL_KCONFIG_M] = "m",
    [BL_KCONFIG_N] = "n",
};
const char *const bl_proto_reason_names[BL_PROTO_N_REASONS] = {
    [BL_REPORT_PERIODIC] = "periodic",
    [BL_REPORT_PRESSURE] = "pressure",
    [BL_REPORT_REQUEST] = "request",
};
const char *const bl_proto_psi_kind_names[BL_PROTO_N_PSI_KINDS] = {
    [BL_PSI_SOME] = "some", [BL_PSI_FULL] = "full"};
const char *const bl_proto_vmstat_names[BL_VMSTAT_N_COUNTERS] = {
    [BL_VMSTAT_PGMAJFAULT] = "pgmajfault",
    [BL_VMSTAT_PSWPIN] = "pswpin",
    [BL_VMSTAT_PSWPOUT] = "pswpout",
    [BL_VMSTAT_WORKINGSET_REFAULT_ANON] = "workingset_refault_anon",
    [BL_VMSTAT_WORKINGSET_REFAULT_FILE] = "workingset_refault_file",
    [BL_VMSTAT_OOM_KILL] = "oom_kill",
};
const char *const bl_proto_mem_names[BL_PROTO_MEM_N_FIELDS] = {
    "total_kib",      "available_kib", "free_kib",         "cached_kib",
    "swap_total_kib", "swap_free_kib", "committed_as_kib",
};
const char *const bl_proto_psi_avg_names[BL_PROTO_N_PSI_AVGS] = {"avg10", "avg60", "avg300"};

static const char *name_of(const char *const *names, guint n, guint i)
{
    return i < n ? names[i] : NULL;
}

int bl_proto_name_index(const char *const *names, guint n, const char *s)
{
    for (guint i = 0; i < n; i++) {
        if (strcmp(names[i], s) == 0)
            return (int)i;
    }
    return -1;
}

const char *bl_proto_type_name(BlMsgType type)
{
    return name_of(bl_proto_type_names, G_N_ELEMENTS(bl_proto_type_names), type);
}

const char *bl_proto_kconfig_name(BlKconfig kconfig)
{
    return name_of(bl_proto_kconfig_names, G_N_ELEMENTS(bl_proto_kconfig_names), kconfig);
}

const char *bl_proto_reason_name(BlReportReason reason)
{
    return name_of(bl_proto_reason_names, G_N_ELEMENTS(bl_proto_reason_names), reason);
}

const char *bl_proto_vmstat_name(BlVmstatCounter counter)
{
    return name_of(bl_proto_vmstat_names, G_N_ELEMENTS(bl_proto_vmstat_names), counter);
}

const char *bl_proto_error_name(BlProtoError code)
{
    static const char *const names[] = {
        [BL_PROTO_ERROR_JSON] = "json",
        [BL_PROTO_ERROR_SCHEMA] = "schema",
        [BL_PROTO_ERROR_RANGE] = "range",
        [BL_PROTO_ERROR_VERSION] = "version",
        [BL_PROTO_ERROR_UNKNOWN_TYPE] = "unknown-type",
        [BL_PROTO_ERROR_TOO_LONG] = "too-long",
    };

    return name_of(names, G_N_ELEMENTS(names), code);
}

void bl_proto_init(BlMessage *msg, BlMsgType type)
{
    memset(msg, 0, sizeof *msg);
    msg->type = type;
    msg->v = BL_PROTO_MAJOR;
    switch (type) {
    case BL_MSG_HELLO:
        msg->u.hello.minor = BL_PROTO_MINOR;
        msg->u.hello.interval_ms = BL_PROTO_INTERVAL_DEFAULT_MS;
        break;
    case BL_MSG_WELCOME:
        msg->u.welcome.minor = BL_PROTO_MINOR;
        msg->u.welcome.interval_ms = BL_PROTO_INTERVAL_DEFAULT_MS;
        break;
    case BL_MSG_GOODBYE:
        msg->u.goodbye.supported_major = BL_PROTO_MAJOR;
        break;
    case BL_MSG_REPORT:
    case BL_MSG_PING:
    case BL_MSG_PONG:
    case BL_MSG_REQUEST:
        break;
    }
}
