/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The figures as JSON (the schema of issue 15, docs/simulator.md) or as a table. */
#include "sim.h"

#include <json-c/json.h>

static json_object *num(double v)
{
    /* three decimals: enough for people, stable for diffs */
    return json_object_new_double(((gint64)(v * 1000 + (v < 0 ? -0.5 : 0.5))) / 1000.0);
}

char *sim_out_json(const SimTrace *trace, double host_mib, SimResult **res, guint n)
{
    json_object *top = json_object_new_object();
    json_object *pols = json_object_new_object();

    json_object_object_add(top, "host_mib", num(host_mib));
    json_object_object_add(top, "duration_s", num(trace->duration_s));
    json_object_object_add(top, "vms", json_object_new_int((int)trace->vms->len));
    for (guint k = 0; k < n; k++) {
        const SimResult *r = res[k];
        json_object *p = json_object_new_object();
        json_object *vms = json_object_new_object();
        json_object_object_add(p, "reclaimed_gib_h", num(r->reclaimed_gib_h));
        json_object_object_add(p, "stall_vm_s", num(r->stall_vm_s));
        json_object_object_add(p, "oom_kills", json_object_new_int((int)r->oom_kills));
        json_object_object_add(p, "host_short_s", num(r->host_short_s));
        json_object_object_add(p, "moved_gib", num(r->moved_gib));
        for (guint i = 0; i < r->n_vms; i++) {
            json_object *v = json_object_new_object();
            json_object_object_add(v, "stall_s", num(r->vms[i].stall_s));
            json_object_object_add(v, "oom_kills", json_object_new_int((int)r->vms[i].oom_kills));
            json_object_object_add(v, "mean_mib", num(r->vms[i].mean_mib));
            json_object_object_add(vms, r->vms[i].name, v);
        }
        json_object_object_add(p, "vms", vms);
        json_object_object_add(pols, r->policy, p);
    }
    json_object_object_add(top, "policies", pols);
    char *out = g_strdup(json_object_to_json_string_ext(top, JSON_C_TO_STRING_PLAIN));
    json_object_put(top);
    return out;
}

char *sim_out_table(const SimTrace *trace, double host_mib, SimResult **res, guint n)
{
    GString *s = g_string_new(NULL);
    double sum_max = 0;

    for (guint i = 0; i < trace->vms->len; i++)
        sum_max += ((SimTraceVm *)trace->vms->pdata[i])->max_mib;
    g_string_append_printf(s, "%u VMs, %.0f s, host %.0f MiB, overcommit %.2f\n\n", trace->vms->len,
                           trace->duration_s, host_mib, sum_max / host_mib);
    g_string_append_printf(s, "%-9s %14s %11s %9s %13s %10s %8s\n", "policy", "reclaimed GiB*h",
                           "stall VM*s", "OOM kills", "host short s", "moved GiB", "wall s");
    for (guint k = 0; k < n; k++) {
        const SimResult *r = res[k];
        g_string_append_printf(s, "%-9s %15.1f %11.0f %9u %13.0f %10.1f %8.2f\n", r->policy,
                               r->reclaimed_gib_h, r->stall_vm_s, r->oom_kills, r->host_short_s,
                               r->moved_gib, r->wall_s);
    }
    return g_string_free(s, FALSE);
}
