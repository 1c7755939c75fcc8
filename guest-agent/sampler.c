/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /proc sampling: see sampler.h. */
#include "sampler.h"

#include <string.h>

#include "procfs.h"
#include "report.h"

/* /proc/vmstat is the largest file read (~6 KB on 6.x kernels); 64 KiB
 * leaves room for kernels with many more counters. */
#define SAMPLER_BUF_SIZE (64 * 1024)

struct Sampler {
    char *root;
    char buf[SAMPLER_BUF_SIZE];
};

Sampler *sampler_new(const char *root)
{
    Sampler *s = g_new0(Sampler, 1);

    s->root = g_strdup(root ? root : "/");
    return s;
}

void sampler_free(Sampler *s)
{
    if (s == NULL)
        return;
    g_free(s->root);
    g_free(s);
}

gboolean sampler_sample(Sampler *s, BlReport *out, GError **error)
{
    gsize len;

    memset(out, 0, sizeof(*out));
    if (!procfs_read_into(s->root, "proc/meminfo", s->buf, sizeof(s->buf), &len, error) ||
        !procfs_parse_meminfo(s->buf, len, &out->mem, error))
        return FALSE;
    if (procfs_read_into(s->root, "proc/pressure/memory", s->buf, sizeof(s->buf), &len, NULL) &&
        procfs_parse_pressure(s->buf, len, &out->psi, NULL))
        out->has_psi = TRUE;
    else
        memset(&out->psi, 0, sizeof(out->psi));
    if (!procfs_read_into(s->root, "proc/vmstat", s->buf, sizeof(s->buf), &len, NULL) ||
        !procfs_parse_vmstat(s->buf, len, &out->vmstat, NULL))
        memset(&out->vmstat, 0, sizeof(out->vmstat));
    if (!procfs_read_into(s->root, "proc/uptime", s->buf, sizeof(s->buf), &len, NULL) ||
        !procfs_parse_uptime(s->buf, len, &out->uptime_ms, NULL))
        out->uptime_ms = 0;
    return TRUE;
}

void sampler_read_token(Sampler *s, const char *relpath, char *dst, gsize dst_size)
{
    gsize len = 0;

    if (!procfs_read_into(s->root, relpath, s->buf, sizeof(s->buf), &len, NULL))
        len = 0;
    report_copy_token(dst, dst_size, s->buf, len);
}

gboolean sampler_has_psi(Sampler *s)
{
    BlPsi psi;
    gsize len;

    return procfs_read_into(s->root, "proc/pressure/memory", s->buf, sizeof(s->buf), &len, NULL) &&
           procfs_parse_pressure(s->buf, len, &psi, NULL);
}
