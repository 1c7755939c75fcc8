/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * KSM facts from /proc under a root directory: a QEMU's /proc/<pid>/ksm_stat,
 * which process is a domain's QEMU, and ksmd's CPU time. The parsers are pure
 * (text in, struct out); the readers take a root so tests use fixture trees.
 */
#pragma once

#include <glib.h>

/* /proc/<pid>/ksm_stat. Kernel 6.1 has only ksm_rmap_items (merging pages are
 * in /proc/<pid>/ksm_merging_pages); 6.4 adds ksm_process_profit, later
 * kernels ksm_merging_pages, ksm_zero_pages, ksm_merge_any, ksm_mergeable. */
typedef struct {
    guint64 rmap_items; /* required */
    gboolean has_merging_pages;
    guint64 merging_pages;
    gboolean has_zero_pages;
    guint64 zero_pages;
    gboolean has_profit;
    gint64 profit; /* bytes, may be negative */
    gboolean has_merge_any;
    gboolean merge_any;
    gboolean has_mergeable;
    gboolean mergeable;
} KsmProcStat;

/*
 * Parse ksm_stat text ("ksm_rmap_items 123", "ksm_merge_any: no"). Unknown
 * lines are skipped; a known key with a bad value, or no ksm_rmap_items, is
 * an error. Never reads past len.
 */
gboolean ksm_proc_parse_stat(const char *text, gsize len, KsmProcStat *stat, GError **error);

/*
 * The process's KSM profit in bytes: the kernel's ksm_process_profit, else
 * Documentation/admin-guide/mm/ksm.rst's approximation
 * (merging_pages + zero_pages) * page_size - rmap_items * 64. FALSE when
 * neither is known (no merging pages count).
 */
gboolean ksm_proc_profit(const KsmProcStat *stat, guint64 page_size, gint64 *profit);

/* Read root/proc/<pid>/ksm_stat, completing merging pages from
 * root/proc/<pid>/ksm_merging_pages on kernels that keep them there. */
gboolean ksm_proc_read_stat(const char *root, gint pid, KsmProcStat *stat, GError **error);

/* TRUE when a NUL-separated command line (as in /proc/<pid>/cmdline) holds
 * QEMU's "-name guest=<name>[,...]" for this domain. */
gboolean ksm_proc_cmdline_is_guest(const char *cmdline, gsize len, const char *name);

/*
 * Find the QEMU process of domain `name` as libvirt knows it: pid_dir/<name>.pid
 * (libvirt's pid file, in a directory only libvirtd writes; pid_dir NULL means
 * run/libvirt/qemu under root), accepted only when that process's cmdline
 * names the guest (pid files go stale). A command line alone proves nothing
 * (any process may put "-name guest=vm1" in its argv), so the fallback scan
 * of root/proc accepts only a process whose real uid is qemu_uid (the QEMU
 * user; -1 disables the fallback).
 */
gboolean ksm_proc_find_qemu_pid(const char *root, const char *pid_dir, const char *name,
                                gint64 qemu_uid, gint *pid, GError **error);

/* The real uid from /proc/<pid>/status text ("Uid:\t<real>\t<eff>..."). */
gboolean ksm_proc_parse_uid(const char *text, gsize len, guint32 *uid, GError **error);

/* Guest RAM as the kernel maps it in QEMU, from /proc/<pid>/smaps. */
typedef struct {
    guint64 largest_kib;        /* the largest mapping: the guest RAM */
    gboolean largest_mergeable; /* ... has VmFlags "mg" (MADV_MERGEABLE) */
    guint64 mergeable_kib;      /* every mapping with "mg", summed */
    guint n_mappings;
} KsmProcSmaps;

/*
 * Parse smaps text: each mapping's "Size:" and "VmFlags:" lines. An
 * exclusion took effect when the largest mapping lost "mg" (QEMU's
 * qom-set merge=false is madvise(MADV_UNMERGEABLE) on the RAM backend).
 * FALSE when no mapping with a size is found. Never reads past len.
 */
gboolean ksm_proc_parse_smaps(const char *text, gsize len, KsmProcSmaps *smaps, GError **error);

gboolean ksm_proc_read_smaps(const char *root, gint pid, KsmProcSmaps *smaps, GError **error);

/* The first root/proc/<pid> whose comm is `comm` ("ksmd", "ksmtuned"). */
gboolean ksm_proc_find_comm(const char *root, const char *comm, gint *pid, GError **error);

/* The ksmd kernel thread. */
gboolean ksm_proc_find_ksmd(const char *root, gint *pid, GError **error);

/* utime + stime (clock ticks) from /proc/<pid>/stat text. */
gboolean ksm_proc_parse_cpu_ticks(const char *text, gsize len, guint64 *ticks, GError **error);

gboolean ksm_proc_read_cpu_ticks(const char *root, gint pid, guint64 *ticks, GError **error);
