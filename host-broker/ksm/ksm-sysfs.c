/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /sys/kernel/mm/ksm reader and writer, rooted so tests run on fake trees.
 */
#include "ksm-sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procfs.h"

#define KSM_KNOB_MAX 256 /* a knob is one short line */

gboolean ksm_sysfs_parse_advisor(const char *text, KsmAdvisor *mode)
{
    const char *open = strchr(text, '[');
    const char *close = open ? strchr(open, ']') : NULL;
    gsize n;

    if (!open) {
        /* A bare word is what was written into a fixture tree (the kernel
         * brackets the selected mode); more than one word says nothing. */
        if (g_str_equal(text, "none") || g_str_equal(text, "scan-time")) {
            open = text - 1;
            close = text + strlen(text);
        }
    }
    if (!open || !close)
        return FALSE;
    n = (gsize)(close - open - 1);
    if (n == strlen("none") && strncmp(open + 1, "none", n) == 0)
        *mode = KSM_ADVISOR_NONE;
    else if (n == strlen("scan-time") && strncmp(open + 1, "scan-time", n) == 0)
        *mode = KSM_ADVISOR_SCAN_TIME;
    else
        *mode = KSM_ADVISOR_OTHER;
    return TRUE;
}

gboolean ksm_sysfs_present(const char *root)
{
    g_autofree char *dir = g_build_filename(root ? root : "/", KSM_SYSFS_DIR, NULL);

    return g_file_test(dir, G_FILE_TEST_IS_DIR);
}

/* Read one knob; *present FALSE (and TRUE returned) when optional and absent. */
static gboolean ksm_sysfs_read_text(const char *root, const char *knob, gboolean optional,
                                    gboolean *present, char **text, GError **error)
{
    g_autofree char *rel = g_build_filename(KSM_SYSFS_DIR, knob, NULL);
    g_autoptr(GError) e = NULL;
    gsize len = 0;

    *present = FALSE;
    if (!procfs_read_file(root, rel, KSM_KNOB_MAX, text, &len, &e)) {
        if (optional && g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return TRUE;
        g_propagate_prefixed_error(error, g_steal_pointer(&e), "%s: ", rel);
        return FALSE;
    }
    *present = TRUE;
    g_strstrip(*text);
    return TRUE;
}

static gboolean ksm_sysfs_read_num(const char *root, const char *knob, gboolean optional,
                                   gboolean is_signed, gboolean *present, guint64 *uval,
                                   gint64 *sval, GError **error)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) e = NULL;
    gboolean ok;

    if (!ksm_sysfs_read_text(root, knob, optional, present, &text, error))
        return FALSE;
    if (!*present)
        return TRUE;
    if (is_signed)
        ok = g_ascii_string_to_signed(text, 10, G_MININT64, G_MAXINT64, sval, &e);
    else
        ok = g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, uval, &e);
    if (!ok) {
        g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE, "%s/%s: not a number: \"%.32s\"",
                    KSM_SYSFS_DIR, knob, text);
        return FALSE;
    }
    return TRUE;
}

gboolean ksm_sysfs_read(const char *root, KsmSysfs *ksm, GError **error)
{
    static const struct {
        const char *knob;
        gsize offset;
    } required[] = {
        {"pages_to_scan", G_STRUCT_OFFSET(KsmSysfs, pages_to_scan)},
        {"sleep_millisecs", G_STRUCT_OFFSET(KsmSysfs, sleep_millisecs)},
        {"pages_shared", G_STRUCT_OFFSET(KsmSysfs, pages_shared)},
        {"pages_sharing", G_STRUCT_OFFSET(KsmSysfs, pages_sharing)},
        {"pages_unshared", G_STRUCT_OFFSET(KsmSysfs, pages_unshared)},
        {"pages_volatile", G_STRUCT_OFFSET(KsmSysfs, pages_volatile)},
        {"full_scans", G_STRUCT_OFFSET(KsmSysfs, full_scans)},
    };
    KsmSysfs k = {0};
    gboolean present;
    guint64 u = 0;
    gint64 s = 0;
    g_autofree char *advisor = NULL;

    if (!ksm_sysfs_read_num(root, "run", FALSE, FALSE, &present, &u, &s, error))
        return FALSE;
    if (u > 2) {
        g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE,
                    "%s/run: %" G_GUINT64_FORMAT " is not 0, 1 or 2", KSM_SYSFS_DIR, u);
        return FALSE;
    }
    k.run = (guint)u;
    for (gsize i = 0; i < G_N_ELEMENTS(required); i++) {
        if (!ksm_sysfs_read_num(root, required[i].knob, FALSE, FALSE, &present,
                                &G_STRUCT_MEMBER(guint64, &k, required[i].offset), &s, error))
            return FALSE;
    }
    if (!ksm_sysfs_read_num(root, "general_profit", TRUE, TRUE, &k.has_general_profit, &u,
                            &k.general_profit, error))
        return FALSE;
    if (!ksm_sysfs_read_num(root, "ksm_zero_pages", TRUE, FALSE, &k.has_zero_pages,
                            &k.ksm_zero_pages, &s, error))
        return FALSE;
    u = 0;
    if (!ksm_sysfs_read_num(root, "smart_scan", TRUE, FALSE, &k.has_smart_scan, &u, &s, error))
        return FALSE;
    k.smart_scan = u != 0;
    if (!ksm_sysfs_read_text(root, "advisor_mode", TRUE, &present, &advisor, error))
        return FALSE;
    k.advisor_mode = KSM_ADVISOR_ABSENT;
    if (present && !ksm_sysfs_parse_advisor(advisor, &k.advisor_mode)) {
        g_set_error(error, PROCFS_ERROR, PROCFS_ERROR_PARSE,
                    "%s/advisor_mode: no [selected] mode in \"%.32s\"", KSM_SYSFS_DIR, advisor);
        return FALSE;
    }
    *ksm = k;
    return TRUE;
}

gboolean ksm_sysfs_write_knob(const char *root, const char *knob, const char *value, GError **error)
{
    g_autofree char *path = NULL;
    gsize len = strlen(value);
    struct stat st;
    ssize_t n;
    int fd, err;

    g_return_val_if_fail(strchr(knob, '/') == NULL, FALSE);
    path = g_build_filename(root ? root : "/", KSM_SYSFS_DIR, knob, NULL);
    /* No O_CREAT: a knob the kernel lacks must fail, not appear. O_TRUNC is
     * for fixture trees; sysfs ignores it. O_NONBLOCK: a FIFO in a fixture
     * tree must not hang the writer. */
    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        err = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), "open %s: %s", path,
                    g_strerror(err));
        return FALSE;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not a regular file", path);
        return FALSE;
    }
    do {
        n = write(fd, value, len);
    } while (n < 0 && errno == EINTR);
    err = errno;
    close(fd);
    if (n < 0 || (gsize)n != len) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(n < 0 ? err : EIO),
                    "writing %s to %s: %s", value, path, n < 0 ? g_strerror(err) : "short write");
        return FALSE;
    }
    return TRUE;
}

static gboolean ksm_sysfs_write_u64(const char *root, const char *knob, guint64 v, GError **error)
{
    char buf[32];

    g_snprintf(buf, sizeof(buf), "%" G_GUINT64_FORMAT, v);
    return ksm_sysfs_write_knob(root, knob, buf, error);
}

gboolean ksm_sysfs_apply(const char *root, const KsmHostPlan *plan, GError **error)
{
    /* advisor_mode first: changing it resets pages_to_scan in the kernel. */
    if (plan->set_advisor &&
        !ksm_sysfs_write_knob(root, "advisor_mode", ksm_advisor_to_string(plan->advisor_mode),
                              error))
        return FALSE;
    if (plan->set_smart_scan &&
        !ksm_sysfs_write_knob(root, "smart_scan", plan->smart_scan ? "1" : "0", error))
        return FALSE;
    if (plan->set_pages && !ksm_sysfs_write_u64(root, "pages_to_scan", plan->pages_to_scan, error))
        return FALSE;
    if (plan->set_sleep &&
        !ksm_sysfs_write_u64(root, "sleep_millisecs", plan->sleep_millisecs, error))
        return FALSE;
    if (plan->set_run && !ksm_sysfs_write_u64(root, "run", plan->run, error))
        return FALSE;
    return TRUE;
}
