/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The text exposition format (Prometheus 0.0.4) of a snapshot: pure. Every
 * family is written whole (HELP, TYPE, then its series), as the format asks.
 */
#include "metrics.h"

#include <math.h>

const double metrics_cycle_buckets[METRICS_CYCLE_BUCKETS_N] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
};

static const char *const kind_names[METRICS_KIND_N] = {
    [POLICY_ACTION_DEFLATE] = "deflate",
    [POLICY_ACTION_INFLATE] = "inflate",
};

void metrics_histogram_observe(MetricsHistogram *h, double seconds)
{
    if (!(seconds >= 0)) /* NaN, or a clock that went back */
        seconds = 0;
    for (guint i = 0; i < METRICS_CYCLE_BUCKETS_N; i++)
        if (seconds <= metrics_cycle_buckets[i])
            h->le[i]++;
    h->count++;
    h->sum += seconds;
}

void metrics_snapshot_free(MetricsSnapshot *s)
{
    if (s == NULL)
        return;
    for (gsize i = 0; i < s->n_vms; i++)
        g_free(s->vms[i].domain);
    g_free(s->vms);
    g_free(s);
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(GString *out, const char *name, const char *value)
{
    g_string_append_printf(out, "%s=\"", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            g_string_append(out, "\\\\");
        else if (*p == '"')
            g_string_append(out, "\\\"");
        else if (*p == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_c(out, *p);
    }
    g_string_append_c(out, '"');
}

static void put_family(GString *out, const char *name, const char *type, const char *help)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A number as Prometheus reads it: 15 significant digits keep every byte
 * count below 2^49 exact and a ratio readable. */
static void put_value(GString *out, double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    if (isinf(v))
        g_string_append(out, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        g_string_append(out, "NaN");
    else
        g_string_append(out, g_ascii_formatd(buf, sizeof(buf), "%.15g", v));
    g_string_append_c(out, '\n');
}

static void put_u64(GString *out, guint64 v)
{
    g_string_append_printf(out, "%" G_GUINT64_FORMAT "\n", v);
}

static void put_host(GString *out, const char *name, const char *help, gboolean has, double v)
{
    put_family(out, name, "gauge", help);
    if (!has)
        return;
    g_string_append(out, name);
    g_string_append_c(out, ' ');
    put_value(out, v);
}

/* Per-VM gauges, one table row each: the family and how to read it. */
typedef enum {
    VM_AGENT_CONNECTED,
    VM_REPORT_AGE,
    VM_ACTUAL,
    VM_TARGET,
    VM_FLOOR,
    VM_ENTITLEMENT,
    VM_MAX,
    VM_AVAILABLE,
    VM_PSI,
    VM_KSM_MERGING,
} VmGauge;

static const struct {
    VmGauge which;
    const char *name, *help;
} vm_gauges[] = {
    {VM_AGENT_CONNECTED, "ballast_vm_agent_connected",
     "1 while an agent session is open on the VM's org.ballast.agent.0 port."},
    {VM_REPORT_AGE, "ballast_vm_report_age_seconds", "Age of the agent's latest accepted report."},
    {VM_ACTUAL, "ballast_vm_balloon_actual_bytes", "Balloon size (guest memory) libvirt reports."},
    {VM_TARGET, "ballast_vm_balloon_target_bytes",
     "Balloon target ballast last set since the guest started."},
    {VM_FLOOR, "ballast_vm_floor_bytes", "Effective floor: the VM is never ballooned below it."},
    {VM_ENTITLEMENT, "ballast_vm_entitlement_bytes",
     "Memory the VM is entitled to by its shares while the host is short."},
    {VM_MAX, "ballast_vm_max_bytes", "Maximum memory: the balloon gives no more."},
    {VM_AVAILABLE, "ballast_vm_available_bytes", "Guest MemAvailable from the agent's report."},
    {VM_PSI, "ballast_vm_psi_some_avg10_ratio",
     "Guest memory PSI some avg10 from the agent's report (0 to 1)."},
    {VM_KSM_MERGING, "ballast_vm_ksm_merging_pages",
     "Pages of the VM's QEMU that KSM merged (ksm_stat)."},
};

static gboolean vm_gauge(const MetricsVm *vm, VmGauge which, double *v)
{
    switch (which) {
    case VM_AGENT_CONNECTED:
        *v = vm->agent_connected ? 1 : 0;
        return TRUE;
    case VM_REPORT_AGE:
        *v = vm->report_age_s;
        return vm->has_report;
    case VM_ACTUAL:
        *v = (double)vm->actual_bytes;
        return vm->has_balloon;
    case VM_TARGET:
        *v = (double)vm->target_bytes;
        return vm->target_bytes > 0;
    case VM_FLOOR:
        *v = (double)vm->floor_bytes;
        return TRUE;
    case VM_ENTITLEMENT:
        *v = (double)vm->entitlement_bytes;
        return vm->entitlement_bytes > 0;
    case VM_MAX:
        *v = (double)vm->max_bytes;
        return vm->max_bytes > 0;
    case VM_AVAILABLE:
        *v = (double)vm->available_bytes;
        return vm->has_available;
    case VM_PSI:
        *v = vm->psi_some_avg10_ratio;
        return vm->has_psi;
    case VM_KSM_MERGING:
        *v = (double)vm->ksm_merging_pages;
        return vm->has_ksm_merging;
    }
    return FALSE;
}

static void put_vm_series(GString *out, const char *name, const MetricsVm *vm)
{
    g_string_append_printf(out, "%s{", name);
    put_label(out, "domain", vm->domain);
    g_string_append(out, "} ");
}

static void put_histogram(GString *out, const MetricsHistogram *h)
{
    const char *name = "ballast_cycle_duration_seconds";
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    put_family(out, name, "histogram",
               "Time one decision cycle took (host facts, policy, applying the plan).");
    for (guint i = 0; i < METRICS_CYCLE_BUCKETS_N; i++)
        g_string_append_printf(out, "%s_bucket{le=\"%s\"} %" G_GUINT64_FORMAT "\n", name,
                               g_ascii_formatd(buf, sizeof(buf), "%g", metrics_cycle_buckets[i]),
                               h->le[i]);
    g_string_append_printf(out, "%s_bucket{le=\"+Inf\"} %" G_GUINT64_FORMAT "\n", name, h->count);
    g_string_append_printf(out, "%s_sum ", name);
    put_value(out, h->sum);
    g_string_append_printf(out, "%s_count %" G_GUINT64_FORMAT "\n", name, h->count);
}

char *metrics_render(const MetricsSnapshot *s)
{
    GString *out = g_string_sized_new(4096 + s->n_vms * 2048);

    put_family(out, "ballast_build_info", "gauge", "Always 1; the version of ballastd.");
    g_string_append(out, "ballast_build_info{");
    put_label(out, "version", s->version ? s->version : "unknown");
    g_string_append(out, "} 1\n");
    put_host(out, "ballast_libvirt_connected", "1 while ballastd is connected to libvirt.", TRUE,
             s->libvirt_connected ? 1 : 0);
    put_host(out, "ballast_libvirt_answering",
             "1 while libvirt answers ballastd's calls in time (0 while one is late or it is "
             "disconnected).",
             TRUE, s->libvirt_answering ? 1 : 0);

    put_host(out, "ballast_host_available_bytes", "Host MemAvailable.", s->has_host,
             (double)s->host_available_bytes);
    put_host(out, "ballast_host_reserve_bytes",
             "Host MemAvailable ballast keeps free ([policy] host_reserve, host_reserve_pct).",
             s->has_host, (double)s->host_reserve_bytes);
    put_host(out, "ballast_host_short_bytes",
             "How far host MemAvailable is below the reserve (0 when it is not).", s->has_host,
             (double)s->host_short_bytes);
    put_host(out, "ballast_ksm_pages_sharing",
             "Pages KSM saves by sharing (/sys/kernel/mm/ksm/pages_sharing).", s->has_ksm,
             (double)s->ksm_pages_sharing);
    put_host(out, "ballast_ksm_general_profit_bytes",
             "Bytes KSM saves net of its own metadata (general_profit, or estimated).", s->has_ksm,
             (double)s->ksm_general_profit_bytes);
    put_histogram(out, &s->cycle);

    for (guint g = 0; g < G_N_ELEMENTS(vm_gauges); g++) {
        put_family(out, vm_gauges[g].name, "gauge", vm_gauges[g].help);
        for (gsize i = 0; i < s->n_vms; i++) {
            double v;
            if (!vm_gauge(&s->vms[i], vm_gauges[g].which, &v))
                continue;
            put_vm_series(out, vm_gauges[g].name, &s->vms[i]);
            put_value(out, v);
        }
    }

    put_family(out, "ballast_vm_ksm_excluded", "gauge",
               "1 while ballast keeps the VM out of KSM; state is why (never, latency-sensitive, "
               "low-profit, pays, no-data, retry, always).");
    for (gsize i = 0; i < s->n_vms; i++) {
        const MetricsVm *vm = &s->vms[i];
        if (!vm->ksm_decided)
            continue;
        g_string_append(out, "ballast_vm_ksm_excluded{");
        put_label(out, "domain", vm->domain);
        g_string_append_c(out, ',');
        put_label(out, "state", vm->ksm_state);
        g_string_append_printf(out, "} %d\n", vm->ksm_excluded ? 1 : 0);
    }

    put_family(out, "ballast_vm_decisions_total", "counter",
               "Balloon decisions made (applied or only logged), by kind and reason code.");
    for (gsize i = 0; i < s->n_vms; i++) {
        const MetricsVm *vm = &s->vms[i];
        for (guint k = 0; k < METRICS_KIND_N; k++) {
            for (guint r = 0; r < POLICY_REASON_N; r++) {
                if (vm->decisions[k][r] == 0)
                    continue;
                g_string_append(out, "ballast_vm_decisions_total{");
                put_label(out, "domain", vm->domain);
                g_string_append_c(out, ',');
                put_label(out, "kind", kind_names[k]);
                g_string_append_c(out, ',');
                put_label(out, "reason", policy_reason_name((PolicyReason)r));
                g_string_append(out, "} ");
                put_u64(out, vm->decisions[k][r]);
            }
        }
    }

    put_family(out, "ballast_guest_input_rejected_total", "counter",
               "Messages from the guest's agent that were rejected, by why.");
    for (gsize i = 0; i < s->n_vms; i++) {
        const MetricsVm *vm = &s->vms[i];
        for (guint w = 0; w < SESSION_REJECT_N; w++) {
            if (vm->rejected[w] == 0)
                continue;
            g_string_append(out, "ballast_guest_input_rejected_total{");
            put_label(out, "domain", vm->domain);
            g_string_append_c(out, ',');
            put_label(out, "why", session_reject_name((SessionReject)w));
            g_string_append(out, "} ");
            put_u64(out, vm->rejected[w]);
        }
    }
    return g_string_free(out, FALSE);
}
