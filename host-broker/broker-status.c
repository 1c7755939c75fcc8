/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the broker tells people: the status object and the commands of the
 * control socket (ballastctl).
 */
#include "ballast-config.h"

#include <string.h>

#include "broker-private.h"

static json_object *json_u64_or_null(gboolean has, guint64 v)
{
    return has ? json_object_new_uint64(v) : NULL;
}

static json_object *vm_status(Broker *b, BrokerVm *vm, gint64 now)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(vm->name));
    json_object_object_add(o, "uuid", json_object_new_string(vm->uuid));
    json_object_object_add(o, "mode", json_object_new_string(config_mode_name(vm->mode)));
    /* ballastctl set: what is overridden at run time (lost at restart). */
    json_object *ov = json_object_new_object();
    if (vm->ovr.has_mode)
        json_object_object_add(ov, "mode", json_object_new_string(config_mode_name(vm->ovr.mode)));
    if (vm->ovr.has_floor)
        json_object_object_add(ov, "floor_kib", json_object_new_uint64(vm->ovr.floor_kib));
    if (vm->ovr.has_shares)
        json_object_object_add(ov, "shares", json_object_new_uint64(vm->ovr.shares));
    json_object_object_add(o, "overrides", ov);
    json_object_object_add(o, "released", json_object_new_boolean(vm->released));
    json_object *tr = json_object_new_object();
    json_object_object_add(tr, "trusted", json_object_new_boolean(!vm->memory.untrusted));
    json_object_object_add(
        tr, "why", vm->memory.untrusted ? json_object_new_string(vm->memory.untrusted_why) : NULL);
    json_object_object_add(o, "trust", tr);
    json_object_object_add(
        o, "state", json_object_new_string(vm->active ? virt_state_name(vm->state) : "shutoff"));
    json_object_object_add(o, "floor_kib", json_object_new_uint64(broker_vm_floor(b, vm)));
    json_object_object_add(
        o, "shares",
        json_object_new_uint64(vm->shares ? vm->shares : b->cfg.policy.default_shares));
    json_object_object_add(
        o, "max_kib",
        json_object_new_uint64(vm->has_stats ? vm->stats.maximum_kib : vm->xml.memory_kib));
    json_object_object_add(o, "actual_kib", json_u64_or_null(vm->has_stats, vm->stats.current_kib));
    json_object_object_add(o, "target_kib", json_u64_or_null(vm->target_kib > 0, vm->target_kib));
    /* policy rules 10 and 6: null while the host is not short / the guest is trusted */
    json_object_object_add(
        o, "entitlement_kib",
        json_u64_or_null(vm->memory.entitlement_kib > 0, vm->memory.entitlement_kib));
    json_object_object_add(o, "untrusted",
                           vm->memory.untrusted ? json_object_new_string(vm->memory.untrusted_why)
                                                : NULL);

    json_object *a = json_object_new_object();
    Session *s = vm->session;
    const BlHello *h = s ? session_hello(s) : NULL;
    gint64 at = 0;
    const BlReport *r = s ? session_report(s, &at) : NULL;
    json_object_object_add(a, "connected", json_object_new_boolean(s != NULL));
    json_object_object_add(
        a, "channel",
        json_object_new_string(vm->xml.channel == DOMXML_CHANNEL_ABSENT         ? "absent"
                               : vm->xml.channel == DOMXML_CHANNEL_CONNECTED    ? "connected"
                               : vm->xml.channel == DOMXML_CHANNEL_DISCONNECTED ? "disconnected"
                                                                                : "unknown"));
    json_object_object_add(a, "version", h ? json_object_new_string(h->agent_version) : NULL);
    g_autofree char *proto = h ? g_strdup_printf("%d.%u", BL_PROTO_MAJOR, h->minor) : NULL;
    json_object_object_add(a, "protocol", proto ? json_object_new_string(proto) : NULL);
    json_object_object_add(a, "other_major", json_object_new_boolean(vm->other_major));
    json_object_object_add(a, "stale", json_object_new_boolean(s && session_is_stale(s, now)));
    json_object_object_add(
        a, "grace",
        json_object_new_boolean(s && r == NULL && now - session_opened_at(s) < broker_grace_us(b)));
    json_object_object_add(a, "session_age_ms",
                           s ? json_object_new_int64((now - session_opened_at(s)) / 1000) : NULL);
    json_object_object_add(a, "report_age_ms", r ? json_object_new_int64((now - at) / 1000) : NULL);
    json_object_object_add(a, "available_kib",
                           json_u64_or_null(r != NULL, r ? r->mem.available_kib : 0));
    json_object_object_add(a, "total_kib", json_u64_or_null(r != NULL, r ? r->mem.total_kib : 0));
    json_object_object_add(a, "psi_some_avg10",
                           r && r->has_psi ? json_object_new_double(r->psi.some.avg10) : NULL);
    json_object_object_add(
        a, "rejected",
        json_object_new_uint64(vm->rejected_before + (s ? session_rejected_total(s) : 0)));
    if (s) {
        json_object *rj = json_object_new_object();
        for (guint k = 0; k < SESSION_REJECT_N; k++)
            if (session_rejected(s, k) > 0)
                json_object_object_add(rj, session_reject_name(k),
                                       json_object_new_uint64(session_rejected(s, k)));
        json_object_object_add(a, "rejected_by_kind", rj);
    }
    json_object_object_add(o, "agent", a);

    if (vm->last.has) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "kind", json_object_new_string(broker_kind_name(vm->last.kind)));
        json_object_object_add(d, "target_kib", json_object_new_uint64(vm->last.target_kib));
        json_object_object_add(d, "reason", json_object_new_string(vm->last.reason));
        json_object_object_add(
            d, "reason_code",
            vm->last.has_code ? json_object_new_string(policy_reason_name(vm->last.code)) : NULL);
        json_object_object_add(d, "mono_us", json_object_new_int64(vm->last.mono_us));
        json_object_object_add(d, "applied", json_object_new_boolean(vm->last.applied));
        json_object_object_add(o, "last_decision", d);
    } else {
        json_object_object_add(o, "last_decision", NULL);
    }

    /* KSM: the KSM controller's own state for a VM it decided on (the
     * exclusion only when seen to take effect); these defaults otherwise. */
    json_object *k = json_object_new_object();
    json_object_object_add(k, "policy", json_object_new_string(config_ksm_name(vm->ksm)));
    json_object_object_add(k, "excluded", json_object_new_boolean(FALSE));
    json_object_object_add(k, "exclusion", NULL);
    json_object_object_add(k, "reason", NULL);
    json_object_object_add(k, "merging_pages", NULL);
    json_object_object_add(k, "profit_bytes", NULL);
    ksm_run_vm_status(b->ksm, vm->uuid, k);
    json_object_object_add(o, "ksm", k);
    return o;
}

static gint vm_by_name(gconstpointer a, gconstpointer b)
{
    return g_strcmp0((*(BrokerVm *const *)a)->name, (*(BrokerVm *const *)b)->name);
}

/* The status object; only the VMs in `only` (all when NULL). */
static json_object *status_of(Broker *b, GPtrArray *only)
{
    json_object *o = json_object_new_object();
    gint64 now = broker_now_us();

    json_object_object_add(o, "version", json_object_new_string(BALLAST_VERSION));
    json_object_object_add(o, "uri", json_object_new_string(b->uri));
    json_object_object_add(o, "connected", json_object_new_boolean(virt_is_connected(b->virt)));
    /* Connected but a libvirt call is outstanding past its timeout: libvirt's
     * figures are getting old and nothing can be applied. */
    json_object_object_add(o, "answering", json_object_new_boolean(virt_is_answering(b->virt)));
    json_object_object_add(o, "dry_run", json_object_new_boolean(b->opt.dry_run));
    json_object_object_add(o, "mono_us", json_object_new_int64(now));
    json_object_object_add(o, "cycles", json_object_new_uint64(b->cycles));
    json_object_object_add(o, "on_stop",
                           json_object_new_string(config_on_stop_name(b->cfg.on_stop)));

    json_object *h = json_object_new_object();
    json_object_object_add(h, "mem_total_kib",
                           json_u64_or_null(b->has_host, b->host.mem_total_kib));
    json_object_object_add(h, "mem_available_kib",
                           json_u64_or_null(b->has_host, b->host.mem_available_kib));
    json_object_object_add(
        h, "psi_some_avg10",
        b->has_host && b->host.has_psi ? json_object_new_double(b->host.psi.some.avg10) : NULL);
    guint64 reserve = b->has_host ? policy_host_reserve_kib(&b->host, &b->cfg.policy) : 0;
    json_object_object_add(h, "reserve_kib", json_u64_or_null(b->has_host, reserve));
    json_object_object_add(h, "short_kib",
                           json_u64_or_null(b->has_host, reserve > b->host.mem_available_kib
                                                             ? reserve - b->host.mem_available_kib
                                                             : 0));
    json_object_object_add(o, "host", h);
    /* KSM: the KSM module reports the host's KSM state here. */
    json_object_object_add(o, "ksm", ksm_run_status(b->ksm));

    g_autoptr(GPtrArray) list = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v))
        if (only == NULL || g_ptr_array_find(only, v, NULL))
            g_ptr_array_add(list, v);
    g_ptr_array_sort(list, vm_by_name);
    json_object *vms = json_object_new_array();
    for (guint i = 0; i < list->len; i++)
        json_object_array_add(vms, vm_status(b, list->pdata[i], now));
    json_object_object_add(o, "vms", vms);
    json_object_object_add(o, "recent", evlog_recent(b->log));
    return o;
}

json_object *broker_status(Broker *b)
{
    return status_of(b, NULL);
}

/* {"cmd":"status","vms":[names]}: an unknown name is refused. */
static json_object *cmd_status(Broker *b, json_object *req)
{
    json_object *names = NULL;
    g_autoptr(GPtrArray) only = NULL;

    if (json_object_object_get_ex(req, "vms", &names) &&
        json_object_is_type(names, json_type_array) && json_object_array_length(names) > 0) {
        only = g_ptr_array_new();
        for (size_t i = 0; i < json_object_array_length(names); i++) {
            const char *n = json_object_get_string(json_object_array_get_idx(names, i));
            BrokerVm *vm = broker_ctl_find_vm(b, n);
            if (vm == NULL) {
                g_autofree char *msg =
                    g_strdup_printf("unknown VM \"%.*s\" (not a domain ballastd follows)",
                                    VIRT_NAME_MAX, n ? n : "");
                return control_error(msg);
            }
            g_ptr_array_add(only, vm);
        }
    }
    json_object *resp = json_object_new_object();
    json_object_object_add(resp, "ok", json_object_new_boolean(TRUE));
    json_object_object_add(resp, "status", status_of(b, only));
    return resp;
}

json_object *broker_on_control(const char *cmd, json_object *req, gpointer user_data)
{
    Broker *b = user_data;
    gboolean handled = FALSE;
    json_object *resp;

    if (strcmp(cmd, "status") == 0)
        return cmd_status(b, req);
    resp = broker_ctl_command(b, cmd, req, &handled);
    if (handled)
        return resp;
    resp = json_object_new_object();
    if (strcmp(cmd, "reload") == 0) {
        g_autoptr(GError) e = NULL;
        gboolean ok = broker_reload(b, &e);
        json_object_object_add(resp, "ok", json_object_new_boolean(ok));
        if (!ok)
            json_object_object_add(resp, "error", json_object_new_string(e->message));
        return resp;
    }
    json_object_put(resp);
    g_autofree char *msg =
        g_strdup_printf("unknown command \"%.64s\" (status, explain, set, release, reload)", cmd);
    return control_error(msg);
}
