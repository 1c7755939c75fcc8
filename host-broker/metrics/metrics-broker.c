/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A metrics snapshot from the broker's state (broker-private.h). Everything
 * is read from what the broker already keeps: a scrape makes no libvirt call
 * and reads no file.
 */
#include "ballast-config.h"

#include "metrics.h"

#include "broker-private.h"

#define KIB 1024

static json_object *jget(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static void snap_ksm_host(Broker *b, MetricsSnapshot *s)
{
    json_object *k = ksm_run_status(b->ksm);
    json_object *sharing = jget(k, "pages_sharing"), *profit = jget(k, "general_profit");

    s->has_ksm = sharing != NULL && profit != NULL;
    if (s->has_ksm) {
        s->ksm_pages_sharing = json_object_get_uint64(sharing);
        s->ksm_general_profit_bytes = json_object_get_int64(profit);
    }
    json_object_put(k);
}

/* Through the KSM module's status object: its own state stays its own. */
/* KSM: the controller's true state of this VM's exclusion (pending, failed,
 * live, persistent, next-boot, would, shared), and its merging pages. */
static void snap_ksm_vm(Broker *b, const BrokerVm *vm, MetricsVm *m)
{
    KsmRunVmInfo info;

    if (!ksm_run_vm_info(b->ksm, vm->uuid, &info))
        return;
    m->ksm_decided = TRUE;
    m->ksm_excluded = info.state == KSM_RUN_LIVE || info.state == KSM_RUN_PERSISTENT;
    g_strlcpy(m->ksm_state, ksm_run_state_name(info.state), sizeof(m->ksm_state));
    if (info.has_merging_pages) {
        m->has_ksm_merging = TRUE;
        m->ksm_merging_pages = info.merging_pages;
    }
}

static void snap_vm(Broker *b, const BrokerVm *vm, gint64 now, MetricsVm *m)
{
    Session *s = vm->session;
    gint64 at = 0;
    const BlReport *r = s ? session_report(s, &at) : NULL;

    m->domain = g_strdup(vm->name);
    m->agent_connected = s != NULL;
    if (r != NULL) {
        m->has_report = TRUE;
        m->report_age_s = (double)MAX(now - at, 0) / G_USEC_PER_SEC;
        m->has_available = TRUE;
        m->available_bytes = r->mem.available_kib * KIB;
        m->has_psi = r->has_psi;
        m->psi_some_avg10_ratio = r->psi.some.avg10 / 100.0;
    }
    m->has_balloon = vm->has_stats;
    m->actual_bytes = vm->stats.current_kib * KIB;
    m->max_bytes = (vm->has_stats ? vm->stats.maximum_kib : vm->xml.memory_kib) * KIB;
    m->target_bytes = vm->target_kib * KIB;
    m->floor_bytes = broker_vm_floor(b, vm) * KIB;
    m->entitlement_bytes = vm->memory.entitlement_kib * KIB;
    memcpy(m->decisions, vm->decisions, sizeof(m->decisions));
    for (guint w = 0; w < SESSION_REJECT_N; w++)
        m->rejected[w] = vm->rejected_before_by[w] + (s ? session_rejected(s, w) : 0);
    snap_ksm_vm(b, vm, m);
}

static gint vm_by_name(gconstpointer a, gconstpointer b)
{
    return g_strcmp0((*(BrokerVm *const *)a)->name, (*(BrokerVm *const *)b)->name);
}

MetricsSnapshot *metrics_snapshot(Broker *b)
{
    MetricsSnapshot *s = g_new0(MetricsSnapshot, 1);
    gint64 now = broker_now_us();
    g_autoptr(GPtrArray) list = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;

    s->version = BALLAST_VERSION;
    s->libvirt_connected = virt_is_connected(b->virt);
    s->libvirt_answering = virt_is_answering(b->virt);
    s->has_host = b->has_host;
    if (b->has_host) {
        guint64 reserve = policy_host_reserve_kib(&b->host, &b->cfg.policy);
        s->host_available_bytes = b->host.mem_available_kib * KIB;
        s->host_reserve_bytes = reserve * KIB;
        s->host_short_bytes =
            reserve > b->host.mem_available_kib ? (reserve - b->host.mem_available_kib) * KIB : 0;
    }
    snap_ksm_host(b, s);
    s->cycle = b->cycle_hist;

    /* Running VMs: a stopped one has no balloon, and its series ending is
     * what a dashboard should show. */
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v))
        if (((BrokerVm *)v)->active)
            g_ptr_array_add(list, v);
    g_ptr_array_sort(list, vm_by_name);
    s->vms = g_new0(MetricsVm, list->len);
    s->n_vms = list->len;
    for (guint i = 0; i < list->len; i++)
        snap_vm(b, list->pdata[i], now, &s->vms[i]);
    return s;
}
