/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `ballast`: the real policy_decide(), fed as host-broker/broker.c's
 * broker_cycle() feeds it: each agent report goes through the wire codec
 * (bl_proto_encode, then bl_proto_decode, as the session would read it), the
 * previous report is kept for rates, libvirt's balloon figures sit beside
 * them, and plan->memory is stored back for the next cycle. One cycle per
 * report, at the agent's default interval (1 s).
 *
 * The codec costs ~90 % of a run. A report that differs from the one last
 * encoded for that VM only in seq and uptime is not encoded again: the codec
 * writes each field on its own and reads back what it wrote (test-sim checks
 * decode(encode(r)) == r on the model's reports), so its decode is the last
 * decode with those two fields replaced.
 */
#include "sim.h"

#include "config.h"
#include "policy.h"

#include <string.h>

typedef struct {
    PolicyConfig config;
    PolicyVm *vms;
    PolicyVmMemory *memory;
    BlReport *report, *prev;
    gboolean *has_report, *has_prev;
    gint64 *report_at, *prev_at;
    guint *index;   /* PolicyVm slot -> guest */
    BlReport *sent; /* the last report encoded, per VM */
    GString *line;
} Ballast;

guint64 sim_ballast_encoded, sim_ballast_repeated;

/* [policy] of kf through ballastd's own configuration engine: the same keys,
 * units, ranges and error wording as ballastd.conf. */
static gboolean ballast_config(GKeyFile *kf, PolicyConfig *out, GError **error)
{
    g_autoptr(GKeyFile) only = g_key_file_new();
    g_auto(GStrv) keys = g_key_file_get_keys(kf, "policy", NULL, NULL);
    Config cfg;

    for (guint i = 0; keys && keys[i]; i++) {
        g_autofree char *v = g_key_file_get_value(kf, "policy", keys[i], NULL);
        g_key_file_set_value(only, "policy", keys[i], v);
    }
    gsize len = 0;
    g_autofree char *text = g_key_file_to_data(only, &len, NULL);
    config_init_defaults(&cfg);
    gboolean ok =
        config_load_data(&cfg, "--ballast-set", text, len, CONFIG_LOAD_STRICT, NULL, NULL, error);
    if (ok && out != NULL)
        *out = cfg.policy;
    config_clear(&cfg);
    return ok;
}

gboolean sim_ballast_set(GKeyFile *kf, const char *setting, GError **error)
{
    const char *eq = strchr(setting, '=');

    if (eq == NULL || eq == setting) {
        g_set_error(error, SIM_ERROR, 0, "--ballast-set %s: want KEY=VALUE", setting);
        return FALSE;
    }
    g_autofree char *key = g_strstrip(g_strndup(setting, (gsize)(eq - setting)));
    g_key_file_set_value(kf, "policy", key, eq + 1);
    return ballast_config(kf, NULL, error);
}

static gpointer ballast_create(SimWorld *w)
{
    Ballast *b = g_new0(Ballast, 1);

    policy_config_init_defaults(&b->config);
    if (w->ballast_conf != NULL && !ballast_config(w->ballast_conf, &b->config, NULL))
        g_error("ballast configuration rejected after it was checked");
    b->vms = g_new0(PolicyVm, w->n);
    b->memory = g_new0(PolicyVmMemory, w->n);
    b->report = g_new0(BlReport, w->n);
    b->prev = g_new0(BlReport, w->n);
    b->has_report = g_new0(gboolean, w->n);
    b->has_prev = g_new0(gboolean, w->n);
    b->report_at = g_new0(gint64, w->n);
    b->prev_at = g_new0(gint64, w->n);
    b->index = g_new0(guint, w->n);
    b->sent = g_new0(BlReport, w->n);
    b->line = g_string_sized_new(1024);
    return b;
}

static gboolean psi_same(const BlPsiLine *a, const BlPsiLine *b)
{
    return a->avg10 == b->avg10 && a->avg60 == b->avg60 && a->avg300 == b->avg300 &&
           a->total_us == b->total_us;
}

/* Field by field (padding is not part of a report); seq and uptime aside. */
gboolean sim_report_same(const BlReport *a, const BlReport *b)
{
    if (a->reason != b->reason || a->has_psi != b->has_psi ||
        memcmp(&a->mem, &b->mem, sizeof(a->mem)) != 0 || a->vmstat.present != b->vmstat.present)
        return FALSE;
    for (int k = 0; k < BL_VMSTAT_N_COUNTERS; k++) {
        if ((a->vmstat.present & (1u << k)) && a->vmstat.value[k] != b->vmstat.value[k])
            return FALSE;
    }
    return !a->has_psi ||
           (psi_same(&a->psi.some, &b->psi.some) && psi_same(&a->psi.full, &b->psi.full));
}

/* The agent encodes, the broker's session decodes: what reaches the policy
 * is exactly what would cross the channel. */
static void ballast_receive(Ballast *b, guint i, const SimGuest *g, SimWorld *w, gint64 now)
{
    BlMessage out, in;
    g_autoptr(GError) e = NULL;

    bl_proto_init(&out, BL_MSG_REPORT);
    sim_guest_report(g, w, &out.u.report);
    const BlReport *r = &out.u.report;
    if (b->has_report[i] && sim_report_same(r, &b->sent[i])) {
        in.u.report = b->report[i];
        in.u.report.seq = r->seq;
        in.u.report.uptime_ms = r->uptime_ms;
        sim_ballast_repeated++;
    } else {
        g_string_truncate(b->line, 0);
        if (!bl_proto_encode(&out, b->line, &e) ||
            !bl_proto_decode(b->line->str, b->line->len - 1, &in, &e)) {
            g_error("%s: report does not cross the codec: %s", g->trace->name, e->message);
        }
        b->sent[i] = *r;
        sim_ballast_encoded++;
    }
    b->prev[i] = b->report[i];
    b->prev_at[i] = b->report_at[i];
    b->has_prev[i] = b->has_report[i];
    b->report[i] = in.u.report;
    b->report_at[i] = now;
    b->has_report[i] = TRUE;
}

static void ballast_step(gpointer state, SimWorld *w)
{
    Ballast *b = state;
    gint64 now = (gint64)(w->t * G_USEC_PER_SEC) + G_USEC_PER_SEC;
    PolicyHost host = {0};
    guint n = 0;

    double free_mib = sim_host_free_mib(w);
    host.mem_total_kib = (guint64)(w->host_mib * 1024);
    host.mem_available_kib = free_mib > 0 ? (guint64)(free_mib * 1024) : 0;
    host.has_psi = TRUE;
    if (free_mib < 0) { /* the host swaps */
        host.psi.some.avg10 = host.psi.some.avg60 = 20;
        host.psi.full.avg10 = host.psi.full.avg60 = 5;
    }

    for (guint i = 0; i < w->n; i++) {
        const SimGuest *g = &w->g[i];
        if (!g->alive)
            continue;
        ballast_receive(b, i, g, w, now);
        PolicyVm *p = &b->vms[n];
        memset(p, 0, sizeof(*p));
        p->name = g->trace->name;
        p->mode = POLICY_MODE_AUTO;
        p->ksm = POLICY_KSM_AUTO;
        p->floor_kib = (guint64)(SIM_FLOOR_MIB * 1024);
        p->shares = g->trace->shares;
        p->max_kib = (guint64)(g->max_mib * 1024);
        p->actual_kib = (guint64)(g->actual_mib * 1024);
        p->has_balloon_stats = TRUE;
        p->balloon_stats_at_us = now;
        p->lv_available_kib = b->report[i].mem.total_kib;
        p->lv_usable_kib = b->report[i].mem.available_kib;
        p->lv_unused_kib = b->report[i].mem.free_kib;
        p->lv_disk_caches_kib = b->report[i].mem.cached_kib;
        p->lv_major_faults = b->report[i].vmstat.value[BL_VMSTAT_PGMAJFAULT];
        p->agent_connected = TRUE;
        p->has_report = TRUE;
        p->report = b->report[i];
        p->report_at_us = b->report_at[i];
        p->has_prev_report = b->has_prev[i];
        p->prev_report = b->prev[i];
        p->prev_report_at_us = b->prev_at[i];
        p->memory = b->memory[i];
        b->index[n++] = i;
    }
    if (n == 0)
        return;

    g_autoptr(PolicyPlan) plan = policy_decide(&host, b->vms, n, &b->config, now);
    for (guint k = 0; k < n && k < plan->n_vms; k++)
        b->memory[b->index[k]] = plan->memory[k];
    for (guint a = 0; a < plan->actions->len; a++) {
        const PolicyAction *act = &g_array_index(plan->actions, PolicyAction, a);
        if (act->vm < n)
            w->g[b->index[act->vm]].target_mib = act->target_kib / 1024.0;
    }
}

static void ballast_destroy(gpointer state)
{
    Ballast *b = state;

    g_free(b->vms);
    g_free(b->memory);
    g_free(b->report);
    g_free(b->prev);
    g_free(b->has_report);
    g_free(b->has_prev);
    g_free(b->report_at);
    g_free(b->prev_at);
    g_free(b->index);
    g_free(b->sent);
    g_string_free(b->line, TRUE);
    g_free(b);
}

const SimPolicy sim_policy_ballast = {
    .name = "ballast",
    .about = "policy_decide() from host-broker/policy, every agent report (1 s)",
    .create = ballast_create,
    .step = ballast_step,
    .destroy = ballast_destroy,
};
