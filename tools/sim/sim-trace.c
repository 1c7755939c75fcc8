/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Trace CSV: header `t_s,vm,max_mib,ws_mib,shares,liar` (columns in any
 * order), one row per VM per change of its working set, sorted by time. A bad
 * trace is refused whole, with one line naming the file line at fault.
 */
#include "sim.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK(ballast - sim - error - quark, sim_error)

enum { COL_T, COL_VM, COL_MAX, COL_WS, COL_SHARES, COL_LIAR, N_COLS };
static const char *const col_names[N_COLS] = {"t_s", "vm", "max_mib", "ws_mib", "shares", "liar"};

static void trace_vm_free(gpointer p)
{
    SimTraceVm *vm = p;

    g_free(vm->name);
    g_array_unref(vm->rows);
    g_free(vm);
}

void sim_trace_free(SimTrace *trace)
{
    if (trace == NULL)
        return;
    g_ptr_array_unref(trace->vms);
    g_free(trace);
}

static gboolean parse_num(const char *s, double *out)
{
    char *end = NULL;

    if (*s == '\0')
        return FALSE;
    *out = g_ascii_strtod(s, &end);
    return end != NULL && *end == '\0' && isfinite(*out);
}

static gboolean fail(GError **error, const char *file, guint line, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

static gboolean fail(GError **error, const char *file, guint line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, SIM_ERROR, 0, "%s:%u: %s", file, line, msg);
    return FALSE;
}

static gboolean parse_header(char *line, int *col, guint *n_fields, const char *file,
                             GError **error)
{
    g_auto(GStrv) f = g_strsplit(line, ",", -1);

    for (int c = 0; c < N_COLS; c++)
        col[c] = -1;
    *n_fields = g_strv_length(f);
    for (guint i = 0; i < *n_fields; i++) {
        char *name = g_strstrip(f[i]);
        for (int c = 0; c < N_COLS; c++) {
            if (strcmp(name, col_names[c]) == 0)
                col[c] = (int)i;
        }
    }
    for (int c = 0; c < N_COLS; c++) {
        if (col[c] < 0)
            return fail(error, file, 1,
                        "header lacks column %s (want t_s,vm,max_mib,ws_mib,shares,liar)",
                        col_names[c]);
    }
    return TRUE;
}

static gboolean parse_row(SimTrace *trace, GHashTable *by_name, char *line, const int *col,
                          guint n_fields, double *last_t, const char *file, guint ln,
                          GError **error)
{
    g_auto(GStrv) f = g_strsplit(line, ",", -1);
    double v[N_COLS] = {0};

    if (g_strv_length(f) != n_fields)
        return fail(error, file, ln, "%u fields, the header has %u", g_strv_length(f), n_fields);
    for (int c = 0; c < N_COLS; c++) {
        g_strstrip(f[col[c]]);
        if (c == COL_VM)
            continue;
        if (!parse_num(f[col[c]], &v[c]))
            return fail(error, file, ln, "%s: not a number: '%s'", col_names[c], f[col[c]]);
        if (v[c] < 0)
            return fail(error, file, ln, "%s: negative: %s", col_names[c], f[col[c]]);
    }
    const char *name = f[col[COL_VM]];
    if (*name == '\0')
        return fail(error, file, ln, "vm: empty name");
    if (v[COL_T] < *last_t)
        return fail(error, file, ln, "t_s %g before the previous row's %g: rows must be sorted",
                    v[COL_T], *last_t);
    if (v[COL_MAX] < 1)
        return fail(error, file, ln, "max_mib %g: must be at least 1", v[COL_MAX]);
    if (v[COL_WS] > v[COL_MAX])
        return fail(error, file, ln, "ws_mib %g above max_mib %g", v[COL_WS], v[COL_MAX]);
    if (v[COL_LIAR] != 0 && v[COL_LIAR] != 1)
        return fail(error, file, ln, "liar: want 0 or 1, not %g", v[COL_LIAR]);
    if (v[COL_SHARES] > G_MAXUINT32 || v[COL_SHARES] != floor(v[COL_SHARES]))
        return fail(error, file, ln, "shares: want a whole number, not %g", v[COL_SHARES]);
    *last_t = v[COL_T];

    SimTraceVm *vm = g_hash_table_lookup(by_name, name);
    if (vm == NULL) {
        vm = g_new0(SimTraceVm, 1);
        vm->name = g_strdup(name);
        vm->max_mib = v[COL_MAX];
        vm->start_s = v[COL_T];
        vm->rows = g_array_new(FALSE, FALSE, sizeof(SimRow));
        g_ptr_array_add(trace->vms, vm);
        g_hash_table_insert(by_name, vm->name, vm);
    } else if (vm->max_mib != v[COL_MAX]) {
        return fail(error, file, ln, "max_mib of %s changes from %g to %g", name, vm->max_mib,
                    v[COL_MAX]);
    }
    vm->shares = (guint32)v[COL_SHARES];
    vm->liar = v[COL_LIAR] != 0;
    SimRow row = {.t_s = v[COL_T], .ws_mib = v[COL_WS]};
    g_array_append_val(vm->rows, row);
    trace->duration_s = MAX(trace->duration_s, v[COL_T]);
    return TRUE;
}

SimTrace *sim_trace_parse(const char *text, const char *file, GError **error)
{
    g_autoptr(SimTrace) trace = g_new0(SimTrace, 1);
    g_autoptr(GHashTable) by_name = g_hash_table_new(g_str_hash, g_str_equal);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    int col[N_COLS];
    guint n_fields = 0;
    gboolean have_header = FALSE;
    double last_t = 0;

    trace->vms = g_ptr_array_new_with_free_func(trace_vm_free);
    for (guint i = 0; lines[i] != NULL; i++) {
        char *line = g_strstrip(lines[i]);
        if (*line == '\0' || *line == '#')
            continue;
        if (!have_header) {
            if (!parse_header(line, col, &n_fields, file, error))
                return NULL;
            have_header = TRUE;
            continue;
        }
        if (!parse_row(trace, by_name, line, col, n_fields, &last_t, file, i + 1, error))
            return NULL;
    }
    if (!have_header) {
        fail(error, file, 1, "empty trace: want a header t_s,vm,max_mib,ws_mib,shares,liar");
        return NULL;
    }
    if (trace->vms->len == 0) {
        fail(error, file, 2, "no rows after the header");
        return NULL;
    }
    return g_steal_pointer(&trace);
}

SimTrace *sim_trace_load(const char *path, GError **error)
{
    g_autofree char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, error))
        return NULL;
    return sim_trace_parse(text, path, error);
}

double sim_trace_ws_at(const SimTraceVm *vm, double t, guint *cursor)
{
    const SimRow *rows = (const SimRow *)(void *)vm->rows->data;

    while (*cursor + 1 < vm->rows->len && rows[*cursor + 1].t_s <= t)
        (*cursor)++;
    return rows[*cursor].ws_mib;
}

double sim_trace_ws_peak(const SimTraceVm *vm, double t, double ahead, guint cursor)
{
    const SimRow *rows = (const SimRow *)(void *)vm->rows->data;
    double peak = sim_trace_ws_at(vm, t, &cursor);

    for (guint i = cursor + 1; i < vm->rows->len && rows[i].t_s <= t + ahead; i++)
        peak = MAX(peak, rows[i].ws_mib);
    return peak;
}
