/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /proc text -> structs, shared by the agent (guest facts) and the broker
 * (host facts).
 *
 * The parsers are pure: text in, struct out, no I/O. They accept any bytes
 * (truncated, garbage, huge) without reading past len, and fail with a GError
 * rather than return half-filled data for a required field. The one reader,
 * procfs_read_file(), resolves every path under a root directory so tests run
 * on fixture trees.
 */
#pragma once

#include <glib.h>

#include "protocol.h"

#define PROCFS_ERROR (procfs_error_quark())
GQuark procfs_error_quark(void);

typedef enum {
    PROCFS_ERROR_PARSE,   /* text does not have the expected shape */
    PROCFS_ERROR_MISSING, /* a required key is absent */
    PROCFS_ERROR_TOO_BIG, /* file larger than the caller's bound */
} ProcfsError;

/* /proc/meminfo: MemTotal, MemFree and MemAvailable are required, the rest
 * default to 0 when absent. */
gboolean procfs_parse_meminfo(const char *text, gsize len, BlMem *mem, GError **error);

/* /proc/pressure/memory (also a cgroup's memory.pressure): "some" is
 * required, "full" defaults to zeros when absent. */
gboolean procfs_parse_pressure(const char *text, gsize len, BlPsi *psi, GError **error);

/* /proc/vmstat: fills the counters it finds, sets their bits in present. */
gboolean procfs_parse_vmstat(const char *text, gsize len, BlVmstat *vmstat, GError **error);

/* /proc/uptime: first field, seconds with fraction -> milliseconds. */
gboolean procfs_parse_uptime(const char *text, gsize len, guint64 *uptime_ms, GError **error);

/*
 * Read root/relpath (relpath like "proc/meminfo"; root NULL or "/" for the
 * real system) into a NUL-terminated buffer of at most max_bytes. Works on
 * /proc and /sys files whose stat size is 0.
 */
gboolean procfs_read_file(const char *root, const char *relpath, gsize max_bytes, char **contents,
                          gsize *len, GError **error);

/*
 * Like procfs_read_file(), into the caller's buffer of size bytes (contents
 * at most size - 1 bytes, NUL-terminated): for periodic samplers that must
 * not allocate per sample. PROCFS_ERROR_TOO_BIG when the file does not fit.
 */
gboolean procfs_read_into(const char *root, const char *relpath, char *buf, gsize size, gsize *len,
                          GError **error);
