/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * --plot DIR: one SVG per policy, written as plain text (no plotting
 * library): a panel per plotted VM with its balloon (memory given) against
 * what it needs (footprint + working set), and a panel of host free memory.
 */
#include "sim.h"

#include <errno.h>
#include <glib/gstdio.h>

#define W       900.0
#define PANEL_H 130.0
#define LEFT    70.0
#define TOP     30.0
#define GAP     28.0

static void polyline(GString *s, GArray *v, double y0, double lo, double hi, const char *colour)
{
    double span = hi > lo ? hi - lo : 1;

    g_string_append_printf(s, "<polyline fill='none' stroke='%s' stroke-width='1.3' points='",
                           colour);
    for (guint i = 0; i < v->len; i++) {
        double x = LEFT + (W - LEFT - 20) * i / MAX(1, v->len - 1);
        double y = y0 + PANEL_H * (1 - (g_array_index(v, double, i) - lo) / span);
        g_string_append_printf(s, "%.1f,%.1f ", x, y);
    }
    g_string_append(s, "'/>\n");
}

static void panel(GString *s, double y0, const char *title, double lo, double hi)
{
    g_string_append_printf(s,
                           "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='#fafafa' "
                           "stroke='#ccc'/>\n<text x='%.0f' y='%.0f'>%s</text>\n"
                           "<text x='4' y='%.0f'>%.0f</text><text x='4' y='%.0f'>%.0f</text>\n",
                           LEFT, y0, W - LEFT - 20, PANEL_H, LEFT, y0 - 6, title, y0 + 10, hi,
                           y0 + PANEL_H, lo);
}

static char *render(const SimTrace *trace, double host_mib, const SimResult *r)
{
    GString *s = g_string_new(NULL);
    guint panels = r->n_plot_vms + 1;
    double h = TOP + panels * (PANEL_H + GAP) + 10;

    g_string_append_printf(s,
                           "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' "
                           "font-family='sans-serif' font-size='12'>\n"
                           "<text x='%.0f' y='18' font-size='14'>%s: balloon (blue) vs "
                           "footprint + working set (red), MiB; host free (green), %.0f s</text>\n",
                           W, h, LEFT, r->policy, trace->duration_s);
    for (guint k = 0; k < r->n_plot_vms; k++) {
        const SimTraceVm *vm = trace->vms->pdata[r->plot_vm[k]];
        double y0 = TOP + k * (PANEL_H + GAP) + 12;
        g_autofree char *title = g_markup_printf_escaped("%s (max %.0f MiB%s)", vm->name,
                                                         vm->max_mib, vm->liar ? ", liar" : "");
        panel(s, y0, title, 0, vm->max_mib);
        polyline(s, r->vm_ws[k], y0, 0, vm->max_mib, "#d62728");
        polyline(s, r->vm_actual[k], y0, 0, vm->max_mib, "#1f77b4");
    }
    double lo = 0, hi = 0;
    for (guint i = 0; i < r->host_free->len; i++) {
        lo = MIN(lo, g_array_index(r->host_free, double, i));
        hi = MAX(hi, g_array_index(r->host_free, double, i));
    }
    double y0 = TOP + r->n_plot_vms * (PANEL_H + GAP) + 12;
    panel(s, y0, "host free MiB (below 0: host short)", lo, MAX(hi, host_mib * 0.05));
    polyline(s, r->host_free, y0, lo, MAX(hi, host_mib * 0.05), "#2ca02c");
    g_string_append(s, "</svg>\n");
    return g_string_free(s, FALSE);
}

gboolean sim_out_plot(const char *dir, const SimTrace *trace, double host_mib, SimResult *r,
                      GError **error)
{
    if (g_mkdir_with_parents(dir, 0755) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", dir,
                    g_strerror(errno));
        return FALSE;
    }
    g_autofree char *svg = render(trace, host_mib, r);
    g_autofree char *base = g_strdup_printf("%s.svg", r->policy);
    g_autofree char *path = g_build_filename(dir, base, NULL);
    return g_file_set_contents(path, svg, -1, error);
}
