/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control commands that act on VMs (ballastctl explain, set, release),
 * the runtime overrides they leave and the per-VM decision history that
 * explain reads. Overrides live in memory only: a restart forgets them, and
 * the metadata and configuration are in force again.
 */
#include "ballast-config.h"

#include <stdarg.h>
#include <string.h>

#include "broker-private.h"
#include "config-value.h"
#include "types.h"

/* ballastctl explain without --last. */
#define BROKER_CTL_EXPLAIN_DEFAULT 10

/* ---- lookup and overrides ---- */

static gint vm_by_name(gconstpointer a, gconstpointer b)
{
    return g_strcmp0((*(BrokerVm *const *)a)->name, (*(BrokerVm *const *)b)->name);
}

/* Every VM, sorted by name (a stable order for people and tests). */
static GPtrArray *vms_sorted(Broker *b)
{
    GPtrArray *list = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_ptr_array_add(list, v);
    g_ptr_array_sort(list, vm_by_name);
    return list;
}

/* By name, or by UUID. */
BrokerVm *broker_ctl_find_vm(Broker *b, const char *name)
{
    GHashTableIter it;
    gpointer v;

    if (name == NULL)
        return NULL;
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v))
        if (strcmp(((BrokerVm *)v)->name, name) == 0)
            return v;
    return g_hash_table_lookup(b->vms, name);
}

void broker_ctl_apply_overrides(BrokerVm *vm)
{
    vm->configured_mode = vm->mode;
    if (vm->ovr.has_mode)
        vm->mode = vm->ovr.mode;
    if (vm->ovr.has_floor)
        vm->floor_kib = vm->ovr.floor_kib;
    if (vm->ovr.has_shares)
        vm->shares = vm->ovr.shares;
}

/* ---- history ---- */

/* A new entry, its inputs filled in from what the broker knows now. */
static BrokerHistoryEntry *history_push(Broker *b, BrokerVm *vm, BrokerHistoryKind what)
{
    BrokerHistoryEntry *h;
    gint64 at = 0;
    const BlReport *r = vm->session ? session_report(vm->session, &at) : NULL;

    if (vm->history == NULL) /* most VMs of a big host are never decided */
        vm->history = g_new0(BrokerHistoryEntry, BROKER_HISTORY_MAX);
    h = &vm->history[vm->history_next];
    vm->history_next = (vm->history_next + 1) % BROKER_HISTORY_MAX;
    vm->history_len = MIN(vm->history_len + 1, BROKER_HISTORY_MAX);
    memset(h, 0, sizeof(*h));
    h->what = what;
    h->mono_us = broker_now_us();
    h->has_actual = vm->has_stats;
    h->actual_kib = vm->has_stats ? vm->stats.current_kib : 0;
    h->max_kib =
        vm->has_stats && vm->stats.maximum_kib ? vm->stats.maximum_kib : vm->xml.memory_kib;
    h->floor_kib = broker_vm_floor(b, vm);
    h->has_report = r != NULL;
    h->available_kib = r ? r->mem.available_kib : 0;
    h->has_psi = r != NULL && r->has_psi;
    h->psi_some_avg10 = h->has_psi ? r->psi.some.avg10 : 0;
    h->has_host = b->has_host;
    h->host_available_kib = b->has_host ? b->host.mem_available_kib : 0;
    return h;
}

void broker_history_decision(Broker *b, BrokerVm *vm, PolicyReason code, const char *why_not)
{
    BrokerHistoryEntry *h = history_push(b, vm, BROKER_HISTORY_DECISION);

    h->kind = vm->last.kind;
    h->has_code = TRUE;
    h->code = code;
    h->applied = vm->last.applied;
    g_strlcpy(h->why_not, why_not ? why_not : "", sizeof(h->why_not));
    h->from_kib = vm->last.from_kib;
    h->target_kib = vm->last.target_kib;
    g_strlcpy(h->text, vm->last.reason, sizeof(h->text));
}

void broker_history_vm_note(Broker *b, BrokerVm *vm, const char *fmt, ...)
{
    BrokerHistoryEntry *h = history_push(b, vm, BROKER_HISTORY_NOTE);
    va_list ap;

    va_start(ap, fmt);
    g_vsnprintf(h->text, sizeof(h->text), fmt, ap);
    va_end(ap);
}

void broker_history_note(Broker *b, const char *text)
{
    /* The policy's notes about one VM start with its name and ": ". */
    const char *colon = strstr(text, ": ");

    if (colon == NULL)
        return;
    g_autofree char *name = g_strndup(text, (gsize)(colon - text));
    BrokerVm *vm = broker_ctl_find_vm(b, name);
    if (vm != NULL && strcmp(vm->name, name) == 0)
        broker_history_vm_note(b, vm, "%s", colon + 2);
}

static json_object *u64_if(gboolean has, guint64 v)
{
    return has ? json_object_new_uint64(v) : NULL;
}

static json_object *history_json(const BrokerHistoryEntry *h, gint64 now)
{
    static const char *const what[] = {
        [BROKER_HISTORY_DECISION] = "decision",
        [BROKER_HISTORY_NOTE] = "note",
        [BROKER_HISTORY_OPERATOR] = "operator",
    };
    json_object *o = json_object_new_object();
    gboolean decision = h->what == BROKER_HISTORY_DECISION;

    json_object_object_add(o, "what", json_object_new_string(what[h->what]));
    json_object_object_add(o, "mono_us", json_object_new_int64(h->mono_us));
    json_object_object_add(o, "age_ms", json_object_new_int64((now - h->mono_us) / 1000));
    json_object_object_add(o, "text", json_object_new_string(h->text));
    if (decision) {
        json_object_object_add(o, "kind", json_object_new_string(broker_kind_name(h->kind)));
        json_object_object_add(o, "from_kib", json_object_new_uint64(h->from_kib));
        json_object_object_add(o, "target_kib", json_object_new_uint64(h->target_kib));
        json_object_object_add(o, "applied", json_object_new_boolean(h->applied));
        json_object_object_add(o, "why_not_applied",
                               h->why_not[0] ? json_object_new_string(h->why_not) : NULL);
    }
    json_object_object_add(
        o, "reason_code", h->has_code ? json_object_new_string(policy_reason_name(h->code)) : NULL);
    json_object *in = json_object_new_object();
    json_object_object_add(in, "actual_kib", u64_if(h->has_actual, h->actual_kib));
    json_object_object_add(in, "max_kib", u64_if(h->max_kib > 0, h->max_kib));
    json_object_object_add(in, "floor_kib", json_object_new_uint64(h->floor_kib));
    json_object_object_add(in, "available_kib", u64_if(h->has_report, h->available_kib));
    json_object_object_add(in, "psi_some_avg10",
                           h->has_psi ? json_object_new_double(h->psi_some_avg10) : NULL);
    json_object_object_add(in, "host_available_kib", u64_if(h->has_host, h->host_available_kib));
    json_object_object_add(o, "inputs", in);
    return o;
}

/* ---- requests ---- */

static const char *req_str(json_object *req, const char *key)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static json_object *refuse(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static json_object *refuse(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return control_error(msg);
}

static json_object *ok_object(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(TRUE));
    return o;
}

/* The VM a request names, or NULL with *resp set to the refusal. */
static BrokerVm *req_vm(Broker *b, json_object *req, json_object **resp)
{
    const char *name = req_str(req, "vm");
    BrokerVm *vm;

    if (name == NULL) {
        *resp = control_error("no VM named (want \"vm\")");
        return NULL;
    }
    if ((vm = broker_ctl_find_vm(b, name)) == NULL)
        *resp = refuse("unknown VM \"%.*s\" (not a domain ballastd follows)", VIRT_NAME_MAX, name);
    return vm;
}

static json_object *cmd_explain(Broker *b, json_object *req)
{
    json_object *resp = NULL, *lastv = NULL;
    BrokerVm *vm = req_vm(b, req, &resp);
    gint64 last = BROKER_CTL_EXPLAIN_DEFAULT;
    gint64 now = broker_now_us();

    if (vm == NULL)
        return resp;
    if (json_object_object_get_ex(req, "last", &lastv)) {
        if (!json_object_is_type(lastv, json_type_int) || json_object_get_int64(lastv) < 1)
            return control_error("bad --last (want a whole number of at least 1)");
        last = MIN(json_object_get_int64(lastv), BROKER_HISTORY_MAX);
    }
    resp = ok_object();
    json_object_object_add(resp, "vm", json_object_new_string(vm->name));
    json_object_object_add(resp, "kept", json_object_new_int((int)vm->history_len));
    json_object_object_add(resp, "bound", json_object_new_int(BROKER_HISTORY_MAX));
    json_object *a = json_object_new_array();
    for (guint i = 0; i < vm->history_len && i < (guint)last; i++) {
        guint k = (vm->history_next + BROKER_HISTORY_MAX - 1 - i) % BROKER_HISTORY_MAX;
        json_object_array_add(a, history_json(&vm->history[k], now));
    }
    json_object_object_add(resp, "entries", a);
    return resp;
}

/* Log an operator's act, and keep it in the VM's history. */
static void operator_said(Broker *b, BrokerVm *vm, json_object *fields, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
static void operator_said(Broker *b, BrokerVm *vm, json_object *fields, const char *fmt, ...)
{
    BrokerHistoryEntry *h = history_push(b, vm, BROKER_HISTORY_OPERATOR);
    va_list ap;

    va_start(ap, fmt);
    g_vsnprintf(h->text, sizeof(h->text), fmt, ap);
    va_end(ap);
    json_object_object_add(fields, "text", json_object_new_string(h->text));
    evlog_emit(b->log, "operator", vm->name, fields);
    evlog_say(b->log, TRUE, "%s: %s", vm->name, h->text);
}

static guint64 vm_max_kib(const BrokerVm *vm)
{
    return vm->has_stats && vm->stats.maximum_kib ? vm->stats.maximum_kib : vm->xml.memory_kib;
}

static json_object *cmd_set(Broker *b, json_object *req)
{
    json_object *resp = NULL;
    BrokerVm *vm = req_vm(b, req, &resp);
    const char *key = req_str(req, "key");
    const char *value = req_str(req, "value");

    if (vm == NULL)
        return resp;
    if (key == NULL || value == NULL)
        return control_error("set wants a key (mode, floor, shares) and a value");
    gboolean clear = strcmp(value, "default") == 0;
    BrokerOverrides o = vm->ovr;
    if (strcmp(key, "mode") == 0) {
        if (!clear && !config_parse_mode(value, &o.mode))
            return refuse("bad mode \"%.64s\" (want observe, auto, off or default)", value);
        o.has_mode = !clear;
    } else if (strcmp(key, "floor") == 0) {
        guint64 max = vm_max_kib(vm);
        if (!clear && !config_parse_size(value, CONFIG_UNIT_KIB, &o.floor_kib))
            return refuse("bad size \"%.64s\" (want a size like 2GiB or 512MiB, or default)",
                          value);
        if (!clear && max > 0 && o.floor_kib > max)
            return refuse("floor %.64s is above %s's maximum of %" G_GUINT64_FORMAT " MiB", value,
                          vm->name, max / KIB_PER_MIB);
        o.has_floor = !clear;
    } else if (strcmp(key, "shares") == 0) {
        guint64 n = 0;
        if (!clear && !g_ascii_string_to_unsigned(value, 10, 1, DOMXML_SHARES_MAX, &n, NULL))
            return refuse("bad shares \"%.64s\" (want a whole number from 1 to %d, or default)",
                          value, DOMXML_SHARES_MAX);
        o.has_shares = !clear;
        o.shares = (guint32)n;
    } else {
        return refuse("unknown setting \"%.64s\" (want mode, floor or shares)", key);
    }
    vm->ovr = o;
    /* Setting the mode again is the way back from a release. */
    if (strcmp(key, "mode") == 0)
        vm->released = FALSE;
    broker_vm_apply_settings(b, vm);

    json_object *f = json_object_new_object();
    json_object_object_add(f, "cmd", json_object_new_string("set"));
    json_object_object_add(f, "key", json_object_new_string(key));
    json_object_object_add(f, "value", json_object_new_string(value));
    operator_said(b, vm, f, "ballastctl set %s %s%s (mode now %s)", key, value,
                  clear ? " (override cleared)" : "", config_mode_name(vm->mode));
    resp = ok_object();
    json_object_object_add(resp, "vm", json_object_new_string(vm->name));
    json_object_object_add(resp, "mode", json_object_new_string(config_mode_name(vm->mode)));
    json_object_object_add(resp, "floor_kib", json_object_new_uint64(broker_vm_floor(b, vm)));
    json_object_object_add(
        resp, "shares",
        json_object_new_uint64(vm->shares ? vm->shares : b->cfg.policy.default_shares));
    return resp;
}

/* ---- release ---- */

/* Set the balloon to max for a release, said as a decision and its call,
 * like the policy's own. */
static gboolean release_balloon(Broker *b, BrokerVm *vm, guint64 max, json_object *done,
                                GError **error)
{
    gboolean act = !b->opt.dry_run;
    guint64 from = vm->has_stats ? vm->stats.current_kib : 0;

    vm->last.has = TRUE;
    vm->last.kind = POLICY_ACTION_DEFLATE;
    vm->last.has_code = TRUE;
    vm->last.code = POLICY_REASON_RELEASE;
    vm->last.from_kib = from;
    vm->last.target_kib = max;
    g_snprintf(vm->last.reason, sizeof(vm->last.reason),
               "%s: released by the operator: balloon to its maximum %" G_GUINT64_FORMAT " MiB",
               vm->name, max / KIB_PER_MIB);
    vm->last.mono_us = broker_now_us();
    vm->last.applied = act;
    broker_history_decision(b, vm, POLICY_REASON_RELEASE, act ? NULL : "dry-run");
    json_object *f = json_object_new_object();
    json_object_object_add(f, "kind", json_object_new_string("deflate"));
    json_object_object_add(f, "from_kib", json_object_new_uint64(from));
    json_object_object_add(f, "target_kib", json_object_new_uint64(max));
    json_object_object_add(f, "reason", json_object_new_string(vm->last.reason));
    json_object_object_add(f, "reason_code", json_object_new_string("release"));
    json_object_object_add(f, "applied", json_object_new_boolean(act));
    json_object_object_add(f, "why_not_applied", act ? NULL : json_object_new_string("dry-run"));
    evlog_emit(b->log, "decision", vm->name, f);
    g_autofree char *m = g_strdup_printf(
        "balloon %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT " MiB (its maximum)%s",
        from / KIB_PER_MIB, max / KIB_PER_MIB, act ? "" : " (dry-run: not done)");
    if (!act) {
        json_object_array_add(done, json_object_new_string(m));
        return TRUE;
    }

    gint64 t0 = broker_now_us();
    gboolean ok = virt_set_memory(b->virt, vm->uuid, max, error);
    f = json_object_new_object();
    json_object_object_add(f, "target_kib", json_object_new_uint64(max));
    json_object_object_add(f, "ok", json_object_new_boolean(ok));
    if (!ok)
        json_object_object_add(f, "error", json_object_new_string((*error)->message));
    json_object_object_add(f, "call_us", json_object_new_int64(broker_now_us() - t0));
    evlog_emit(b->log, "set-memory", vm->name, f);
    if (!ok)
        return FALSE;
    vm->target_kib = max;
    vm->target_at_us = t0;
    /* The policy starts afresh when the VM is resumed. */
    vm->memory.last_target_kib = 0;
    vm->memory.stuck_until_us = 0;
    json_object_array_add(done, json_object_new_string(m));
    return TRUE;
}

/* Deflate to the maximum, mode off, undo ballast's own KSM exclusion. */
static json_object *release_vm(Broker *b, BrokerVm *vm)
{
    json_object *r = json_object_new_object();
    json_object *done = json_object_new_array();
    g_autoptr(GError) e = NULL;
    gboolean ok = TRUE;
    guint64 max = vm_max_kib(vm);

    /* First stop managing it, so that no cycle undoes what follows. */
    vm->ovr.has_mode = TRUE;
    vm->ovr.mode = POLICY_MODE_OFF;
    vm->released = TRUE;
    broker_vm_apply_settings(b, vm);
    json_object_array_add(done, json_object_new_string("mode off (override)"));

    if (!vm->active) {
        json_object_array_add(done, json_object_new_string("not running: balloon left alone"));
    } else if (max == 0) {
        ok = FALSE;
        e = g_error_new_literal(G_FILE_ERROR, G_FILE_ERROR_FAILED,
                                "its maximum memory is not known yet");
    } else if (vm->has_stats && vm->stats.current_kib >= max) {
        json_object_array_add(done, json_object_new_string("balloon already at its maximum"));
    } else {
        ok = release_balloon(b, vm, max, done, &e);
    }

    g_autoptr(GString) ksm = g_string_new(NULL);
    g_autoptr(GError) ke = NULL;
    if (!ksm_run_release(b->ksm, vm->uuid, b->cfg.allow_qemu_monitor && b->cfg.ksm.live_exclusion,
                         ksm, &ke)) {
        ok = FALSE;
        g_autofree char *m = g_strdup_printf("KSM: %s", ke->message);
        json_object_array_add(done, json_object_new_string(m));
    } else if (ksm->len > 0) {
        json_object_array_add(done, json_object_new_string(ksm->str));
    }

    json_object_object_add(r, "vm", json_object_new_string(vm->name));
    json_object_object_add(r, "ok", json_object_new_boolean(ok));
    json_object_object_add(r, "done", done);
    if (e != NULL)
        json_object_object_add(r, "error", json_object_new_string(e->message));

    json_object *f = json_object_new_object();
    json_object_object_add(f, "cmd", json_object_new_string("release"));
    json_object_object_add(f, "ok", json_object_new_boolean(ok));
    g_autoptr(GString) text = g_string_new("released: ");
    for (size_t i = 0; i < json_object_array_length(done); i++)
        g_string_append_printf(text, "%s%s", i ? "; " : "",
                               json_object_get_string(json_object_array_get_idx(done, i)));
    if (e != NULL)
        g_string_append_printf(text, "; failed: %s", e->message);
    operator_said(b, vm, f, "%s", text->str);
    return r;
}

static json_object *release_list(Broker *b, GPtrArray *vms)
{
    json_object *resp = json_object_new_object();
    json_object *list = json_object_new_array();
    gboolean ok = TRUE;

    for (guint i = 0; i < vms->len; i++) {
        json_object *r = release_vm(b, vms->pdata[i]);
        json_object *v = NULL;
        if (json_object_object_get_ex(r, "ok", &v) && !json_object_get_boolean(v))
            ok = FALSE;
        json_object_array_add(list, r);
    }
    json_object_object_add(resp, "ok", json_object_new_boolean(ok));
    if (!ok)
        json_object_object_add(resp, "error",
                               json_object_new_string("not every VM could be released"));
    json_object_object_add(resp, "vms", list);
    return resp;
}

json_object *broker_ctl_release_all(Broker *b)
{
    g_autoptr(GPtrArray) vms = vms_sorted(b);
    g_autoptr(GPtrArray) managed = g_ptr_array_new();
    json_object *skipped = json_object_new_array();

    /* A VM whose metadata or configuration says off was never ballast's to
     * balloon (its operator may size it by hand): --all leaves it alone; it
     * can still be released by name. */
    for (guint i = 0; i < vms->len; i++) {
        BrokerVm *vm = vms->pdata[i];
        if (vm->configured_mode == POLICY_MODE_OFF && !vm->ovr.has_mode)
            json_object_array_add(skipped, json_object_new_string(vm->name));
        else
            g_ptr_array_add(managed, vm);
    }
    json_object *resp = release_list(b, managed);
    json_object_object_add(resp, "skipped_mode_off", skipped);
    return resp;
}

static json_object *cmd_release(Broker *b, json_object *req)
{
    json_object *all = NULL, *names = NULL;
    g_autoptr(GPtrArray) vms = g_ptr_array_new();

    if (json_object_object_get_ex(req, "all", &all) && json_object_get_boolean(all))
        return broker_ctl_release_all(b);
    if (!json_object_object_get_ex(req, "vms", &names) ||
        !json_object_is_type(names, json_type_array) || json_object_array_length(names) == 0)
        return control_error("release wants VM names or --all");
    /* Every name first: a typo releases nothing. */
    for (size_t i = 0; i < json_object_array_length(names); i++) {
        const char *n = json_object_get_string(json_object_array_get_idx(names, i));
        BrokerVm *vm = broker_ctl_find_vm(b, n);
        if (vm == NULL)
            return refuse("unknown VM \"%.*s\" (nothing released)", VIRT_NAME_MAX, n ? n : "");
        if (!g_ptr_array_find(vms, vm, NULL))
            g_ptr_array_add(vms, vm);
    }
    return release_list(b, vms);
}

json_object *broker_ctl_command(Broker *b, const char *cmd, json_object *req, gboolean *handled)
{
    *handled = TRUE;
    if (strcmp(cmd, "explain") == 0)
        return cmd_explain(b, req);
    if (strcmp(cmd, "set") == 0)
        return cmd_set(b, req);
    if (strcmp(cmd, "release") == 0)
        return cmd_release(b, req);
    *handled = FALSE;
    return NULL;
}
