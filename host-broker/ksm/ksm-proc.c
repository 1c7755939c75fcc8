/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * KSM facts from /proc: per-process ksm_stat, a domain's QEMU pid, ksmd's
 * CPU time.
 */
#include "ksm-proc.h"

#include <string.h>

#include "ksm.h"
#include "procfs.h"

#define KSM_PROC_STAT_MAX    4096      /* ksm_stat is six short lines */
#define KSM_PROC_CMDLINE_MAX (1 << 18) /* a QEMU command line is ~10 KiB */
#define KSM_PROC_LINE_MAX    128
#define KSM_PROC_PIDFILE_MAX 64
#define KSM_PROC_STATUS_MAX  8192
/* A QEMU has a few hundred mappings of ~1 KiB of smaps text each. */
#define KSM_PROC_SMAPS_MAX (16 << 20)

typedef enum {
    KSM_STAT_RMAP_ITEMS,
    KSM_STAT_MERGING_PAGES,
    KSM_STAT_ZERO_PAGES,
    KSM_STAT_PROFIT,
    KSM_STAT_MERGE_ANY,
    KSM_STAT_MERGEABLE,
    KSM_STAT_N_KEYS,
} KsmStatKey;

static const char *const ksm_stat_keys[KSM_STAT_N_KEYS] = {
    "ksm_rmap_items",     "ksm_merging_pages", "ksm_zero_pages",
    "ksm_process_profit", "ksm_merge_any",     "ksm_mergeable",
};

static gboolean ksm_proc_set_value(KsmProcStat *st, KsmStatKey key, const char *value,
                                   GError **error)
{
    guint64 u = 0;
    gint64 s = 0;
    gboolean ok = TRUE;

    switch (key) {
    case KSM_STAT_MERGE_ANY:
    case KSM_STAT_MERGEABLE: {
        gboolean yes = g_str_equal(value, "yes");

        if (!yes && !g_str_equal(value, "no")) {
            ok = FALSE;
            break;
        }
        if (key == KSM_STAT_MERGE_ANY) {
            st->has_merge_any = TRUE;
            st->merge_any = yes;
        } else {
            st->has_mergeable = TRUE;
            st->mergeable = yes;
        }
        break;
    }
    case KSM_STAT_PROFIT:
        ok = g_ascii_string_to_signed(value, 10, G_MININT64, G_MAXINT64, &s, NULL);
        st->has_profit = ok;
        st->profit = s;
        break;
    case KSM_STAT_RMAP_ITEMS:
    case KSM_STAT_MERGING_PAGES:
    case KSM_STAT_ZERO_PAGES:
        ok = g_ascii_string_to_unsigned(value, 10, 0, G_MAXUINT64, &u, NULL);
        if (key == KSM_STAT_RMAP_ITEMS) {
            st->rmap_items = u;
        } else if (key == KSM_STAT_MERGING_PAGES) {
            st->has_merging_pages = ok;
            st->merging_pages = u;
        } else {
            st->has_zero_pages = ok;
            st->zero_pages = u;
        }
        break;
    case KSM_STAT_N_KEYS:
        ok = FALSE;
        break;
    }
    if (!ok)
        g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE, "ksm_stat: %s: bad value \"%.32s\"",
                    ksm_stat_keys[key], value);
    return ok;
}

/* The next line of text at *pos (without its '\n'); FALSE at the end. */
static gboolean ksm_proc_next_line(const char *text, gsize len, gsize *pos, const char **line,
                                   gsize *n)
{
    const char *nl;

    if (*pos >= len)
        return FALSE;
    *line = text + *pos;
    nl = memchr(*line, '\n', len - *pos);
    *n = nl ? (gsize)(nl - *line) : len - *pos;
    *pos += *n + (nl ? 1 : 0);
    return TRUE;
}

/* "Key:<blanks>123<blank>...": the first number after key, if line has it. */
static gboolean ksm_proc_field_u64(const char *line, gsize n, const char *key, guint64 max,
                                   guint64 *value)
{
    gsize klen = strlen(key);

    if (n <= klen || memcmp(line, key, klen) != 0)
        return FALSE;
    g_autofree char *rest = g_strndup(line + klen, n - klen);
    char *p = g_strstrip(rest);
    p[strcspn(p, " \t")] = '\0';
    return g_ascii_string_to_unsigned(p, 10, 0, max, value, NULL);
}

gboolean ksm_proc_parse_stat(const char *text, gsize len, KsmProcStat *stat, GError **error)
{
    KsmProcStat st = {0};
    gboolean seen[KSM_STAT_N_KEYS] = {FALSE};
    gsize pos = 0, n;
    const char *line;

    while (ksm_proc_next_line(text, len, &pos, &line, &n)) {
        gsize klen = 0;
        int key = -1;
        char value[KSM_PROC_LINE_MAX];
        gsize v, vlen;

        while (klen < n && line[klen] != ':' && line[klen] != ' ' && line[klen] != '\t')
            klen++;
        for (int k = 0; k < KSM_STAT_N_KEYS; k++)
            if (klen == strlen(ksm_stat_keys[k]) && memcmp(line, ksm_stat_keys[k], klen) == 0)
                key = k;
        if (key < 0)
            continue; /* a line this ballast does not know */
        v = klen;
        if (v < n && line[v] == ':')
            v++;
        while (v < n && (line[v] == ' ' || line[v] == '\t'))
            v++;
        vlen = n - v;
        while (vlen > 0 && (line[v + vlen - 1] == ' ' || line[v + vlen - 1] == '\t' ||
                            line[v + vlen - 1] == '\r'))
            vlen--;
        if (seen[key] || vlen == 0 || vlen >= sizeof(value) || memchr(line + v, '\0', vlen)) {
            g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE, "ksm_stat: %s: %s",
                        ksm_stat_keys[key], seen[key] ? "repeated" : "bad value");
            return FALSE;
        }
        memcpy(value, line + v, vlen);
        value[vlen] = '\0';
        if (!ksm_proc_set_value(&st, key, value, error))
            return FALSE;
        seen[key] = TRUE;
    }
    if (!seen[KSM_STAT_RMAP_ITEMS]) {
        g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_MISSING, "ksm_stat: no ksm_rmap_items");
        return FALSE;
    }
    *stat = st;
    return TRUE;
}

gboolean ksm_proc_profit(const KsmProcStat *stat, guint64 page_size, gint64 *profit)
{
    guint64 saved;

    if (stat->has_profit) {
        *profit = stat->profit;
        return TRUE;
    }
    if (!stat->has_merging_pages)
        return FALSE;
    if (page_size == 0)
        page_size = 4096;
    saved = MIN(stat->merging_pages, G_MAXUINT32) +
            (stat->has_zero_pages ? MIN(stat->zero_pages, G_MAXUINT32) : 0);
    *profit = (gint64)(saved * MIN(page_size, 1u << 30)) -
              (gint64)(MIN(stat->rmap_items, G_MAXUINT32) * KSM_RMAP_ITEM_BYTES);
    return TRUE;
}

gboolean ksm_proc_read_stat(const char *root, gint pid, KsmProcStat *stat, GError **error)
{
    g_autofree char *rel = g_strdup_printf("proc/%d/ksm_stat", pid);
    g_autofree char *text = NULL;
    gsize len = 0;
    KsmProcStat st;

    if (pid <= 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "bad pid %d", pid);
        return FALSE;
    }
    if (!procfs_read_file(root, rel, KSM_PROC_STAT_MAX, &text, &len, error) ||
        !ksm_proc_parse_stat(text, len, &st, error)) {
        g_prefix_error(error, "pid %d: ", pid);
        return FALSE;
    }
    if (!st.has_merging_pages) {
        g_autofree char *mrel = g_strdup_printf("proc/%d/ksm_merging_pages", pid);
        g_autofree char *mtext = NULL;
        guint64 u;

        /* Optional: without it the profit is unknown, not an error. */
        if (procfs_read_file(root, mrel, 64, &mtext, &len, NULL) &&
            g_ascii_string_to_unsigned(g_strstrip(mtext), 10, 0, G_MAXUINT64, &u, NULL)) {
            st.has_merging_pages = TRUE;
            st.merging_pages = u;
        }
    }
    *stat = st;
    return TRUE;
}

/* QEMU option syntax: "," ends a value, ",," is a literal comma. */
static gboolean ksm_proc_opt_equals(const char *opt, const char *opt_end, const char *name)
{
    const char *p = opt;

    while (p < opt_end && *p) {
        if (*p == ',') {
            if (p + 1 < opt_end && p[1] == ',') {
                if (*name != ',')
                    return FALSE;
                name++;
                p += 2;
                continue;
            }
            break;
        }
        if (*p != *name)
            return FALSE;
        p++;
        name++;
    }
    return *name == '\0';
}

gboolean ksm_proc_cmdline_is_guest(const char *cmdline, gsize len, const char *name)
{
    const char *end = cmdline + len;
    const char *prev = NULL;
    const char *arg = cmdline;

    if (!name || !*name)
        return FALSE;
    while (arg < end) {
        const char *nul = memchr(arg, '\0', (gsize)(end - arg));
        const char *arg_end = nul ? nul : end;
        gsize n = (gsize)(arg_end - arg);

        if (prev && strcmp(prev, "-name") == 0 && n > 6 && strncmp(arg, "guest=", 6) == 0 &&
            ksm_proc_opt_equals(arg + 6, arg_end, name))
            return TRUE;
        /* an argument not NUL-terminated (cut off) cannot be "-name" */
        prev = nul ? arg : NULL;
        arg = arg_end + 1;
    }
    return FALSE;
}

static gboolean ksm_proc_name_ok(const char *name)
{
    return name && *name && strlen(name) <= 255 && !strchr(name, '/') && !g_str_equal(name, ".") &&
           !g_str_equal(name, "..");
}

static gboolean ksm_proc_pid_is_guest(const char *root, gint pid, const char *name)
{
    g_autofree char *rel = g_strdup_printf("proc/%d/cmdline", pid);
    g_autofree char *text = NULL;
    gsize len = 0;

    if (!procfs_read_file(root, rel, KSM_PROC_CMDLINE_MAX, &text, &len, NULL))
        return FALSE;
    return ksm_proc_cmdline_is_guest(text, len, name);
}

static gboolean ksm_proc_parse_pid(const char *text, gint *pid)
{
    guint64 v;

    if (!g_ascii_string_to_unsigned(text, 10, 1, G_MAXINT, &v, NULL))
        return FALSE;
    *pid = (gint)v;
    return TRUE;
}

/* Calls found(pid) for each numeric entry of root/proc until it returns TRUE. */
static gboolean ksm_proc_scan(const char *root,
                              gboolean (*found)(const char *root, gint pid, gconstpointer data),
                              gconstpointer data, gint *pid, GError **error)
{
    g_autofree char *dir = g_build_filename(root ? root : "/", "proc", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, error);
    const char *ent;

    if (!d)
        return FALSE;
    while ((ent = g_dir_read_name(d))) {
        gint p;

        if (!ksm_proc_parse_pid(ent, &p))
            continue;
        if (found(root, p, data)) {
            *pid = p;
            return TRUE;
        }
    }
    return FALSE;
}

gboolean ksm_proc_parse_uid(const char *text, gsize len, guint32 *uid, GError **error)
{
    gsize pos = 0, n;
    const char *line;
    guint64 v;

    while (ksm_proc_next_line(text, len, &pos, &line, &n)) {
        if (ksm_proc_field_u64(line, n, "Uid:", G_MAXUINT32, &v)) {
            *uid = (guint32)v;
            return TRUE;
        }
    }
    g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE, "status: no valid Uid line");
    return FALSE;
}

typedef struct {
    const char *name;
    gint64 uid;
} KsmProcGuest;

static gboolean ksm_proc_guest_matches(const char *root, gint pid, gconstpointer data)
{
    const KsmProcGuest *g = data;
    g_autofree char *rel = g_strdup_printf("proc/%d/status", pid);
    g_autofree char *text = NULL;
    gsize len = 0;
    guint32 uid;

    if (!procfs_read_file(root, rel, KSM_PROC_STATUS_MAX, &text, &len, NULL) ||
        !ksm_proc_parse_uid(text, len, &uid, NULL) || (gint64)uid != g->uid)
        return FALSE;
    return ksm_proc_pid_is_guest(root, pid, g->name);
}

gboolean ksm_proc_find_qemu_pid(const char *root, const char *pid_dir, const char *name,
                                gint64 qemu_uid, gint *pid, GError **error)
{
    g_autofree char *file = NULL;
    g_autofree char *rel = NULL;
    g_autofree char *text = NULL;
    GError *e = NULL;
    gsize len = 0;
    gint p;
    KsmProcGuest g = {.name = name, .uid = qemu_uid};

    if (!ksm_proc_name_ok(name)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "\"%s\" is not a domain name",
                    name ? name : "");
        return FALSE;
    }
    file = g_strdup_printf("%s.pid", name);
    rel = g_build_filename(pid_dir ? pid_dir : "run/libvirt/qemu", file, NULL);
    if (procfs_read_file(root, rel, KSM_PROC_PIDFILE_MAX, &text, &len, NULL) &&
        ksm_proc_parse_pid(g_strstrip(text), &p) && ksm_proc_pid_is_guest(root, p, name)) {
        *pid = p;
        return TRUE;
    }
    if (qemu_uid < 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                    "no QEMU process for %s (no valid %s, and no QEMU user to check a "
                    "process's owner against)",
                    name, rel);
        return FALSE;
    }
    if (ksm_proc_scan(root, ksm_proc_guest_matches, &g, pid, &e))
        return TRUE;
    if (e)
        g_propagate_prefixed_error(error, e, "no QEMU process for %s: ", name);
    else
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                    "no QEMU process for %s (no valid %s, no process of uid %" G_GINT64_FORMAT
                    " with -name guest=%s)",
                    name, rel, qemu_uid, name);
    return FALSE;
}

/* A "VmFlags:" line holds two-letter flags separated by spaces. */
static gboolean ksm_proc_flags_have(const char *flags, gsize n, const char *flag)
{
    gsize i = 0;

    while (i < n) {
        while (i < n && flags[i] == ' ')
            i++;
        gsize start = i;
        while (i < n && flags[i] != ' ')
            i++;
        if (i - start == 2 && memcmp(flags + start, flag, 2) == 0)
            return TRUE;
    }
    return FALSE;
}

gboolean ksm_proc_parse_smaps(const char *text, gsize len, KsmProcSmaps *smaps, GError **error)
{
    KsmProcSmaps out = {0};
    gboolean has_size = FALSE;
    guint64 size = 0;
    gsize pos = 0, n;
    const char *line;

    while (ksm_proc_next_line(text, len, &pos, &line, &n)) {
        if (n > 5 && memcmp(line, "Size:", 5) == 0) {
            has_size = ksm_proc_field_u64(line, n, "Size:", G_MAXUINT64 / 2, &size);
            if (!has_size)
                size = 0;
        } else if (n >= 8 && memcmp(line, "VmFlags:", 8) == 0 && has_size) {
            /* VmFlags closes a mapping's block */
            gboolean mg = ksm_proc_flags_have(line + 8, n - 8, "mg");

            out.n_mappings++;
            if (mg)
                out.mergeable_kib += size;
            if (size > out.largest_kib) {
                out.largest_kib = size;
                out.largest_mergeable = mg;
            }
            has_size = FALSE;
        }
    }
    if (out.n_mappings == 0) {
        g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE, "smaps: no mapping with VmFlags");
        return FALSE;
    }
    *smaps = out;
    return TRUE;
}

gboolean ksm_proc_read_smaps(const char *root, gint pid, KsmProcSmaps *smaps, GError **error)
{
    g_autofree char *rel = g_strdup_printf("proc/%d/smaps", pid);
    g_autofree char *text = NULL;
    gsize len = 0;

    if (pid <= 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "bad pid %d", pid);
        return FALSE;
    }
    if (!procfs_read_file(root, rel, KSM_PROC_SMAPS_MAX, &text, &len, error) ||
        !ksm_proc_parse_smaps(text, len, smaps, error)) {
        g_prefix_error(error, "pid %d: ", pid);
        return FALSE;
    }
    return TRUE;
}

static gboolean ksm_proc_comm_is(const char *root, gint pid, gconstpointer comm)
{
    g_autofree char *rel = g_strdup_printf("proc/%d/comm", pid);
    g_autofree char *text = NULL;
    gsize len = 0;

    if (!procfs_read_file(root, rel, 64, &text, &len, NULL))
        return FALSE;
    return g_str_equal(g_strchomp(text), comm);
}

gboolean ksm_proc_find_comm(const char *root, const char *comm, gint *pid, GError **error)
{
    GError *e = NULL;

    if (ksm_proc_scan(root, ksm_proc_comm_is, comm, pid, &e))
        return TRUE;
    if (e)
        g_propagate_error(error, e);
    else
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no %s process in proc/*/comm", comm);
    return FALSE;
}

gboolean ksm_proc_find_ksmd(const char *root, gint *pid, GError **error)
{
    return ksm_proc_find_comm(root, "ksmd", pid, error);
}

gboolean ksm_proc_parse_cpu_ticks(const char *text, gsize len, guint64 *ticks, GError **error)
{
    const char *rparen = NULL;
    g_autofree char *rest = NULL;
    g_auto(GStrv) fields = NULL;
    guint64 utime, stime;

    /* comm may hold spaces and parentheses: fields start after the last ')' */
    for (gsize i = 0; i < len; i++)
        if (text[i] == ')')
            rparen = text + i;
    if (!rparen) {
        g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE, "stat: no \")\" after comm");
        return FALSE;
    }
    rest = g_strndup(rparen + 1, (gsize)(text + len - rparen - 1));
    fields = g_strsplit_set(g_strstrip(rest), " ", 16);
    /* fields[0] is field 3 (state): utime is field 14, stime field 15 */
    if (g_strv_length(fields) < 14 ||
        !g_ascii_string_to_unsigned(fields[11], 10, 0, G_MAXUINT64 / 2, &utime, NULL) ||
        !g_ascii_string_to_unsigned(fields[12], 10, 0, G_MAXUINT64 / 2, &stime, NULL)) {
        g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE, "stat: bad utime/stime");
        return FALSE;
    }
    *ticks = utime + stime;
    return TRUE;
}

gboolean ksm_proc_read_cpu_ticks(const char *root, gint pid, guint64 *ticks, GError **error)
{
    g_autofree char *rel = g_strdup_printf("proc/%d/stat", pid);
    g_autofree char *text = NULL;
    gsize len = 0;

    if (!procfs_read_file(root, rel, 4096, &text, &len, error))
        return FALSE;
    return ksm_proc_parse_cpu_ticks(text, len, ticks, error);
}
