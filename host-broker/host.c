/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host.h"

#include <string.h>

#include "procfs.h"

/* /proc/meminfo is ~1.5 KiB; the bound only stops a runaway fixture. */
#define HOST_FILE_MAX (256 * 1024)

gboolean host_read(const char *root, PolicyHost *host, GError **error)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    BlMem mem;

    memset(host, 0, sizeof(*host));
    if (!procfs_read_file(root, "proc/meminfo", HOST_FILE_MAX, &text, &len, error) ||
        !procfs_parse_meminfo(text, len, &mem, error))
        return FALSE;
    host->mem_total_kib = mem.total_kib;
    host->mem_available_kib = mem.available_kib;

    g_clear_pointer(&text, g_free);
    g_autoptr(GError) e = NULL;
    if (procfs_read_file(root, "proc/pressure/memory", HOST_FILE_MAX, &text, &len, &e) &&
        procfs_parse_pressure(text, len, &host->psi, &e))
        host->has_psi = TRUE;
    return TRUE;
}
