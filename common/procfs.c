/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /proc parsers and the root-relative reader (see procfs.h).
 *
 * Every parser walks (text, len) with explicit bounds: the text need not be
 * NUL-terminated and may contain NUL bytes, which are treated as ordinary
 * garbage. Numbers are parsed by hand (not strtoull) so that an overflowing
 * value is an error instead of a silent clamp, and nothing reads past len.
 */
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK(procfs - error - quark, procfs_error)

/* Next line of [*pos, end): sets line/line_len (without '\n'), advances *pos. */
static gboolean procfs_next_line(const char **pos, const char *end, const char **line,
                                 gsize *line_len)
{
    const char *p = *pos;
    const char *nl;

    if (p >= end)
        return FALSE;
    nl = memchr(p, '\n', (gsize)(end - p));
    *line = p;
    if (nl == NULL) {
        *line_len = (gsize)(end - p);
        *pos = end;
    } else {
        *line_len = (gsize)(nl - p);
        *pos = nl + 1;
    }
    return TRUE;
}

static const char *procfs_skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/*
 * Decimal digits at p -> *out. Returns the first byte after the digits, or
 * NULL when there is no digit or the value does not fit in 64 bits.
 */
static const char *procfs_parse_u64(const char *p, const char *end, guint64 *out)
{
    guint64 v = 0;
    const char *start = p;

    while (p < end && g_ascii_isdigit(*p)) {
        guint d = (guint)(*p - '0');

        if (v > (G_MAXUINT64 - d) / 10)
            return NULL;
        v = v * 10 + d;
        p++;
    }
    if (p == start)
        return NULL;
    *out = v;
    return p;
}

static gboolean procfs_is_key(const char *line, gsize key_len, const char *key)
{
    return strlen(key) == key_len && memcmp(line, key, key_len) == 0;
}

/* ---- meminfo ---- */

typedef struct {
    const char *key;
    gsize offset;
    gboolean required;
} ProcfsMemKey;

static const ProcfsMemKey procfs_mem_keys[] = {
    {"MemTotal", G_STRUCT_OFFSET(BlMem, total_kib), TRUE},
    {"MemFree", G_STRUCT_OFFSET(BlMem, free_kib), TRUE},
    {"MemAvailable", G_STRUCT_OFFSET(BlMem, available_kib), TRUE},
    {"Cached", G_STRUCT_OFFSET(BlMem, cached_kib), FALSE},
    {"SwapTotal", G_STRUCT_OFFSET(BlMem, swap_total_kib), FALSE},
    {"SwapFree", G_STRUCT_OFFSET(BlMem, swap_free_kib), FALSE},
    {"Committed_AS", G_STRUCT_OFFSET(BlMem, committed_as_kib), FALSE},
};

gboolean procfs_parse_meminfo(const char *text, gsize len, BlMem *mem, GError **error)
{
    const char *pos = text, *end = text + len, *line;
    gsize line_len;
    guint32 seen = 0;

    g_return_val_if_fail(text != NULL || len == 0, FALSE);
    memset(mem, 0, sizeof(*mem));

    while (procfs_next_line(&pos, end, &line, &line_len)) {
        const char *lend = line + line_len;
        const char *colon = memchr(line, ':', line_len);
        const char *p;
        guint64 v;
        gsize k;

        if (colon == NULL)
            continue; /* not a "Key: value" line: tolerated garbage */
        for (k = 0; k < G_N_ELEMENTS(procfs_mem_keys); k++) {
            if (procfs_is_key(line, (gsize)(colon - line), procfs_mem_keys[k].key))
                break;
        }
        if (k == G_N_ELEMENTS(procfs_mem_keys) || (seen & (1u << k)))
            continue; /* a key we do not use, or a duplicate: the first one wins */

        p = procfs_skip_blanks(colon + 1, lend);
        p = procfs_parse_u64(p, lend, &v);
        if (p == NULL) {
            g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE,
                        "meminfo: %s: not a number or larger than 64 bits", procfs_mem_keys[k].key);
            return FALSE;
        }
        p = procfs_skip_blanks(p, lend);
        if (lend - p >= 2 && memcmp(p, "kB", 2) == 0)
            p = procfs_skip_blanks(p + 2, lend);
        if (p != lend) {
            g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE,
                        "meminfo: %s: unexpected text after the value", procfs_mem_keys[k].key);
            return FALSE;
        }
        G_STRUCT_MEMBER(guint64, mem, procfs_mem_keys[k].offset) = v;
        seen |= 1u << k;
    }

    for (gsize k = 0; k < G_N_ELEMENTS(procfs_mem_keys); k++) {
        if (procfs_mem_keys[k].required && !(seen & (1u << k))) {
            g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_MISSING, "meminfo: %s is missing",
                        procfs_mem_keys[k].key);
            return FALSE;
        }
    }
    return TRUE;
}

/* ---- pressure ---- */

/* "avg10=1.23" value -> percent; the kernel prints "%lu.%02lu", 0..100. */
static gboolean procfs_parse_avg(const char *p, const char *vend, double *out)
{
    char buf[32];
    char *endptr;
    gsize n = (gsize)(vend - p);
    double v;

    if (n == 0 || n >= sizeof(buf))
        return FALSE;
    for (gsize i = 0; i < n; i++) {
        if (!g_ascii_isdigit(p[i]) && p[i] != '.')
            return FALSE; /* no sign, exponent, "inf" or "nan" */
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    v = g_ascii_strtod(buf, &endptr);
    if (endptr != buf + n || !isfinite(v) || v < 0.0 || v > 100.0)
        return FALSE;
    *out = v;
    return TRUE;
}

/* The part of a pressure line after "some " / "full ". */
static gboolean procfs_parse_psi_fields(const char *p, const char *lend, BlPsiLine *out)
{
    guint seen = 0;

    while (p < lend) {
        const char *tok, *eq, *tend;

        p = procfs_skip_blanks(p, lend);
        if (p == lend)
            break;
        tok = p;
        while (p < lend && *p != ' ' && *p != '\t')
            p++;
        tend = p;
        eq = memchr(tok, '=', (gsize)(tend - tok));
        if (eq == NULL)
            return FALSE;
        if (procfs_is_key(tok, (gsize)(eq - tok), "avg10")) {
            if (!procfs_parse_avg(eq + 1, tend, &out->avg10))
                return FALSE;
            seen |= 1;
        } else if (procfs_is_key(tok, (gsize)(eq - tok), "avg60")) {
            if (!procfs_parse_avg(eq + 1, tend, &out->avg60))
                return FALSE;
            seen |= 2;
        } else if (procfs_is_key(tok, (gsize)(eq - tok), "avg300")) {
            if (!procfs_parse_avg(eq + 1, tend, &out->avg300))
                return FALSE;
            seen |= 4;
        } else if (procfs_is_key(tok, (gsize)(eq - tok), "total")) {
            if (procfs_parse_u64(eq + 1, tend, &out->total_us) != tend)
                return FALSE;
            seen |= 8;
        }
        /* other key=value fields (a future kernel's) are ignored */
    }
    return seen == 15;
}

gboolean procfs_parse_pressure(const char *text, gsize len, BlPsi *psi, GError **error)
{
    const char *pos = text, *end = text + len, *line;
    gsize line_len;
    gboolean have_some = FALSE, have_full = FALSE;

    g_return_val_if_fail(text != NULL || len == 0, FALSE);
    memset(psi, 0, sizeof(*psi));

    while (procfs_next_line(&pos, end, &line, &line_len)) {
        const char *lend = line + line_len;
        gboolean is_some = line_len > 5 && memcmp(line, "some ", 5) == 0;
        gboolean is_full = line_len > 5 && memcmp(line, "full ", 5) == 0;
        BlPsiLine parsed = {0};

        if ((!is_some && !is_full) || (is_some && have_some) || (is_full && have_full))
            continue;
        if (!procfs_parse_psi_fields(line + 5, lend, &parsed)) {
            g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE, "pressure: malformed \"%s\" line",
                        is_some ? "some" : "full");
            return FALSE;
        }
        if (is_some) {
            psi->some = parsed;
            have_some = TRUE;
        } else {
            psi->full = parsed;
            have_full = TRUE;
        }
    }
    if (!have_some) {
        g_set_error_literal(error, PROCFS_ERROR, PROCFS_ERROR_MISSING,
                            "pressure: no \"some\" line");
        return FALSE;
    }
    return TRUE;
}

/* ---- vmstat ---- */

/* The wire protocol names each counter after its /proc/vmstat key
 * (PROTOCOL.md), so bl_proto_vmstat_name() is also the key to look for. */
gboolean procfs_parse_vmstat(const char *text, gsize len, BlVmstat *vmstat, GError **error)
{
    const char *pos = text, *end = text + len, *line;
    gsize line_len;
    guint n_good = 0;
    gboolean have_legacy = FALSE;
    guint64 legacy_refault = 0;

    g_return_val_if_fail(text != NULL || len == 0, FALSE);
    memset(vmstat, 0, sizeof(*vmstat));

    while (procfs_next_line(&pos, end, &line, &line_len)) {
        const char *lend = line + line_len;
        const char *sp = memchr(line, ' ', line_len);
        const char *p;
        gsize name_len;
        guint64 v;
        int k;

        if (sp == NULL)
            sp = lend; /* a bare name: malformed if it is one we use */
        if (sp == line)
            continue;
        name_len = (gsize)(sp - line);
        for (k = 0; k < BL_VMSTAT_N_COUNTERS; k++) {
            if (procfs_is_key(line, name_len, bl_proto_vmstat_name(k)))
                break;
        }
        p = sp < lend ? procfs_parse_u64(sp + 1, lend, &v) : NULL;
        if (p != lend) {
            if (k < BL_VMSTAT_N_COUNTERS || procfs_is_key(line, name_len, "workingset_refault")) {
                g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE,
                            "vmstat: %.*s: not a number or larger than 64 bits", (int)name_len,
                            line);
                return FALSE;
            }
            continue; /* garbage or a counter we do not use */
        }
        n_good++;
        if (k < BL_VMSTAT_N_COUNTERS && !(vmstat->present & (1u << k))) {
            vmstat->value[k] = v;
            vmstat->present |= 1u << k;
        } else if (k == BL_VMSTAT_N_COUNTERS && !have_legacy &&
                   procfs_is_key(line, name_len, "workingset_refault")) {
            /* Before Linux 5.9 only file pages had shadow entries, and the
             * single counter was named workingset_refault. */
            legacy_refault = v;
            have_legacy = TRUE;
        }
    }
    if (n_good == 0) {
        g_set_error_literal(error, PROCFS_ERROR, PROCFS_ERROR_PARSE,
                            "vmstat: no \"name value\" line");
        return FALSE;
    }
    if (have_legacy && !(vmstat->present & (1u << BL_VMSTAT_WORKINGSET_REFAULT_FILE))) {
        vmstat->value[BL_VMSTAT_WORKINGSET_REFAULT_FILE] = legacy_refault;
        vmstat->present |= 1u << BL_VMSTAT_WORKINGSET_REFAULT_FILE;
    }
    return TRUE;
}

/* ---- uptime ---- */

gboolean procfs_parse_uptime(const char *text, gsize len, guint64 *uptime_ms, GError **error)
{
    const char *end = text + len;
    const char *p;
    guint64 secs, ms = 0;

    g_return_val_if_fail(text != NULL || len == 0, FALSE);
    p = procfs_skip_blanks(text, end);
    p = procfs_parse_u64(p, end, &secs);
    if (p == NULL || secs > G_MAXUINT64 / 1000 - 1) {
        g_set_error_literal(error, PROCFS_ERROR, PROCFS_ERROR_PARSE,
                            "uptime: not a number of seconds or too large");
        return FALSE;
    }
    if (p < end && *p == '.') {
        guint64 scale = 100;

        p++;
        if (p == end || !g_ascii_isdigit(*p)) {
            g_set_error_literal(error, PROCFS_ERROR, PROCFS_ERROR_PARSE,
                                "uptime: no digits after the decimal point");
            return FALSE;
        }
        /* milliseconds from the first three digits; the rest are dropped */
        for (; p < end && g_ascii_isdigit(*p); p++) {
            ms += (guint64)(*p - '0') * scale;
            scale /= 10;
        }
    }
    if (p < end && *p != ' ' && *p != '\t' && *p != '\n') {
        g_set_error_literal(error, PROCFS_ERROR, PROCFS_ERROR_PARSE,
                            "uptime: unexpected text after the first field");
        return FALSE;
    }
    *uptime_ms = secs * 1000 + ms;
    return TRUE;
}

/* ---- reader ---- */

/* root + "/" + relpath, rejecting ".." components so a path built from a
 * file's contents (e.g. a kernel release) cannot leave the root. */
static gboolean procfs_build_path(const char *root, const char *relpath, char *path,
                                  gsize path_size, GError **error)
{
    const char *r = (root == NULL || root[0] == '\0') ? "/" : root;
    gsize rlen = strlen(r);
    int n;

    while (*relpath == '/')
        relpath++;
    for (const char *c = relpath; (c = strstr(c, "..")) != NULL; c += 2) {
        gboolean starts = c == relpath || c[-1] == '/';
        gboolean ends = c[2] == '\0' || c[2] == '/';

        if (starts && ends) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: \"..\" is not allowed",
                        relpath);
            return FALSE;
        }
    }
    while (rlen > 1 && r[rlen - 1] == '/')
        rlen--;
    n = g_snprintf(path, path_size, "%.*s%s%s", (int)rlen, r, r[rlen - 1] == '/' ? "" : "/",
                   relpath);
    if (n < 0 || (gsize)n >= path_size) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG, "%s: path too long", relpath);
        return FALSE;
    }
    return TRUE;
}

static int procfs_open(const char *root, const char *relpath, char *path, gsize path_size,
                       GError **error)
{
    struct stat st;
    int fd, saved;

    if (!procfs_build_path(root, relpath, path, path_size, error))
        return -1;
    /* O_NONBLOCK: a FIFO planted in a fixture tree must not hang the reader */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        saved = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", path,
                    g_strerror(saved));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not a regular file", path);
        return -1;
    }
    return fd;
}

/* read() until EOF or until buf is full; -1 with errno on error. */
static gssize procfs_read_full(int fd, char *buf, gsize size)
{
    gsize got = 0;

    while (got < size) {
        gssize n = read(fd, buf + got, size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (gsize)n;
    }
    return (gssize)got;
}

gboolean procfs_read_into(const char *root, const char *relpath, char *buf, gsize size, gsize *len,
                          GError **error)
{
    char path[PATH_MAX];
    gssize n;
    int fd, saved;

    g_return_val_if_fail(buf != NULL && size > 0, FALSE);
    fd = procfs_open(root, relpath, path, sizeof(path), error);
    if (fd < 0)
        return FALSE;
    /* One byte more than fits tells "too big" from "exactly full". */
    n = procfs_read_full(fd, buf, size - 1);
    if (n == (gssize)(size - 1)) {
        char extra;

        if (procfs_read_full(fd, &extra, 1) == 1) {
            close(fd);
            g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_TOO_BIG,
                        "%s: larger than %" G_GSIZE_FORMAT " bytes", path, size - 1);
            return FALSE;
        }
    }
    saved = errno;
    close(fd);
    if (n < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", path,
                    g_strerror(saved));
        return FALSE;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = (gsize)n;
    return TRUE;
}

gboolean procfs_read_file(const char *root, const char *relpath, gsize max_bytes, char **contents,
                          gsize *len, GError **error)
{
    char path[PATH_MAX];
    g_autofree char *buf = NULL;
    gsize cap = 4096, got = 0;
    int fd, saved = 0;

    g_return_val_if_fail(contents != NULL, FALSE);
    fd = procfs_open(root, relpath, path, sizeof(path), error);
    if (fd < 0)
        return FALSE;
    max_bytes = MIN(max_bytes, G_MAXSIZE / 4); /* keeps max_bytes + 1 from wrapping */
    if (cap > max_bytes + 1)
        cap = max_bytes + 1;
    buf = g_malloc(cap + 1);
    for (;;) {
        gssize n;

        if (got == cap) {
            if (cap > max_bytes)
                break; /* read max_bytes + 1: too big */
            cap = MIN(cap * 2, max_bytes + 1);
            buf = g_realloc(buf, cap + 1);
        }
        n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            saved = errno;
            break;
        }
        if (n == 0)
            break;
        got += (gsize)n;
    }
    close(fd);
    if (saved != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", path,
                    g_strerror(saved));
        return FALSE;
    }
    if (got > max_bytes) {
        g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_TOO_BIG,
                    "%s: larger than %" G_GSIZE_FORMAT " bytes", path, max_bytes);
        return FALSE;
    }
    buf[got] = '\0';
    if (len != NULL)
        *len = got;
    *contents = g_steal_pointer(&buf);
    return TRUE;
}
