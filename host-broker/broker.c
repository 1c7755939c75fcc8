/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ballast-config.h"

#include "broker.h"

#include <glib-unix.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "control.h"
#include "domxml.h"
#include "evlog.h"
#include "evlog-once.h"
#include "host.h"
#include "ksm-run.h"
#include "policy.h"
#include "session.h"
#include "virt.h"

/* Longest wait before reopening a channel that keeps failing. */
#define BROKER_SESSION_RETRY_MAX_US (5 * 60 * G_USEC_PER_SEC)
/* Least wait before reopening after an agent that speaks another major. */
#define BROKER_OTHER_MAJOR_RETRY_US (60 * G_USEC_PER_SEC)
/* An agent session that lasted this long was a working one: its close
 * starts the reopen backoff afresh. */
#define BROKER_SESSION_HEALTHY_US (60 * G_USEC_PER_SEC)
/* Pressure cycles in a storm: the next waits this many times the last one's
 * cost, and never more than BROKER_KICK_PACE_MAX_US. */
#define BROKER_KICK_PACE        4
#define BROKER_KICK_PACE_MAX_US (20 * 1000)
/* Least time between two pressure-driven cycles asked for by one VM. */
#define BROKER_KICK_GAP_US (100 * 1000)
/* After a balloon change, ask the agent for a report this much later: the
 * balloon needs 0.2-0.5 s to move, and the next decision wants to see it. */
#define BROKER_REQUEST_AFTER_MS 600
/* A note repeated unchanged is logged again after this long. */
#define BROKER_NOTE_REPEAT_US (60 * G_USEC_PER_SEC)

#include "broker-private.h"

static void vm_free(gpointer data)
{
    BrokerVm *vm = data;

    g_clear_handle_id(&vm->request_id, g_source_remove);
    if (vm->session)
        session_free(vm->session);
    g_free(vm->problems);
    g_free(vm->xml_error);
    g_free(vm->history);
    g_free(vm->open_error);
    g_free(vm);
}

gint64 broker_now_us(void)
{
    return g_get_monotonic_time();
}

/* ---- per-VM settings ---- */

static void vm_apply_settings(Broker *b, BrokerVm *vm)
{
    const DomxmlPolicy *p = &vm->xml.policy;

    vm->mode = vm->xml.has_policy && p->has_mode ? p->mode : b->cfg.default_mode;
    vm->ksm = vm->xml.has_policy && p->has_ksm ? p->ksm : b->cfg.default_ksm;
    vm->shares = vm->xml.has_policy && p->has_shares ? p->shares : 0;
    vm->latency_sensitive = vm->xml.has_policy && p->has_latency_sensitive && p->latency_sensitive;
    /* The floor travels with the VM: metadata first, then <min_guarantee>. */
    vm->floor_kib = vm->xml.has_policy && p->has_min ? p->min_kib : vm->xml.min_guarantee_kib;
    broker_ctl_apply_overrides(vm); /* ballastctl set wins while set */
}

void broker_vm_apply_settings(Broker *b, BrokerVm *vm)
{
    vm_apply_settings(b, vm);
}

static gboolean vm_refresh_xml(Broker *b, BrokerVm *vm)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *xml = virt_domain_xml(b->virt, vm->uuid, &e);
    g_autoptr(GString) problems = g_string_new(NULL);
    DomxmlDomain d;

    if (xml == NULL || !domxml_parse_domain(xml, -1, &d, problems, &e)) {
        /* Polled every second: say it once per distinct error. */
        if (evlog_once_changed(&vm->xml_error, e->message))
            evlog_say(b->log, FALSE, "%s: cannot %s domain XML: %s", vm->name,
                      xml ? "parse" : "read", e->message);
        return FALSE;
    }
    g_clear_pointer(&vm->xml_error, g_free);
    vm->xml = d;
    vm->has_xml = TRUE;
    vm->need_xml = FALSE;
    /* Bad metadata values: say so once per VM and per distinct problem. */
    if (evlog_once_changed(&vm->problems, problems->str) && problems->len > 0) {
        evlog_say(b->log, TRUE, "%s: ignoring bad ballast metadata: %s (defaults used)", vm->name,
                  problems->str);
        json_object *f = json_object_new_object();
        json_object_object_add(f, "text", json_object_new_string(problems->str));
        evlog_emit(b->log, "metadata-invalid", vm->name, f);
    }
    vm_apply_settings(b, vm);
    return TRUE;
}

/* ---- VMs ---- */

static gboolean broker_follows(Broker *b, const char *name)
{
    return b->only == NULL || g_pattern_spec_match_string(b->only, name);
}

static BrokerVm *vm_get(Broker *b, const char *uuid, const char *name)
{
    BrokerVm *vm = g_hash_table_lookup(b->vms, uuid);

    if (vm == NULL) {
        vm = g_new0(BrokerVm, 1);
        vm->b = b;
        g_strlcpy(vm->uuid, uuid, sizeof(vm->uuid));
        vm->need_xml = TRUE;
        vm->mode = b->cfg.default_mode;
        vm->ksm = b->cfg.default_ksm;
        g_hash_table_insert(b->vms, vm->uuid, vm);
    }
    if (name != NULL)
        g_strlcpy(vm->name, name, sizeof(vm->name));
    return vm;
}

static gboolean session_free_idle(gpointer data)
{
    session_free(data);
    return G_SOURCE_REMOVE;
}

static void vm_close_session(BrokerVm *vm, const char *goodbye, const char *why)
{
    Session *s = vm->session;

    if (s == NULL)
        return;
    session_close(s, goodbye, why); /* calls on_session_closed, which detaches it */
}

/* The guest started (or we found it running): a new boot as far as the
 * policy knows. */
static void vm_started(Broker *b, BrokerVm *vm)
{
    vm->active = TRUE;
    vm->state = VIRT_STATE_RUNNING;
    vm->stats_period_set = FALSE;
    vm->need_xml = TRUE;
    backoff_reset(&vm->reopen);
    vm->other_major = FALSE;
    vm->has_stats = FALSE;
    memset(&vm->memory, 0, sizeof(vm->memory));
    vm->target_kib = 0;
    vm->target_at_us = 0;
    vm->setmem_failed_us = 0;
}

static void vm_stopped(Broker *b, BrokerVm *vm, const char *why)
{
    vm->active = FALSE;
    vm->state = VIRT_STATE_SHUTOFF;
    vm->has_stats = FALSE;
    vm_close_session(vm, NULL, why);
}

/* ---- sessions ---- */

static void broker_kick(Broker *b, const char *why);

/* Reopening a channel: session_retry_ms, doubling up to 5 minutes. */
static BackoffSpec broker_reopen_spec(const Broker *b)
{
    BackoffSpec spec = {(gint64)b->cfg.session_retry_ms * 1000, BROKER_SESSION_RETRY_MAX_US, 2};
    return spec;
}

static void on_session_hello(Session *s, gpointer user_data)
{
    BrokerVm *vm = user_data;
    vm->other_major = FALSE;
}

static void on_session_report(Session *s, const BlReport *r, gpointer user_data)
{
    BrokerVm *vm = user_data;

    if (vm->session == s)
        vm->session_reported = TRUE;

    /* Event-driven: a guest under pressure does not wait for the tick. A
     * guest that cries pressure 50 times a second gets one cycle per
     * BROKER_KICK_GAP_US; the others' kicks are not affected. */
    if (r->reason == BL_REPORT_PRESSURE) {
        gint64 now = broker_now_us();
        if (vm->last_kick_us == 0 || now - vm->last_kick_us >= BROKER_KICK_GAP_US) {
            vm->last_kick_us = now;
            vm->kicked = TRUE;
            broker_kick(vm->b, vm->name);
        }
    }
}

static void on_session_closed(Session *s, const char *why, gpointer user_data)
{
    BrokerVm *vm = user_data;
    Broker *b = vm->b;

    if (vm->session != s)
        return;
    vm->rejected_before += session_rejected_total(s);
    for (guint w = 0; w < SESSION_REJECT_N; w++)
        vm->rejected_before_by[w] += session_rejected(s, w);
    vm->session = NULL;
    vm->session_reported = FALSE;
    g_idle_add(session_free_idle, s);

    json_object *f = json_object_new_object();
    json_object_object_add(f, "why", json_object_new_string(why));
    evlog_emit(b->log, "session-close", vm->name, f);
    evlog_say(b->log, FALSE, "%s: agent session closed: %s", vm->name, why);

    /* Retry with backoff: the guest may reboot, or its agent be upgraded.
     * Only a session that lasted counts as a success: a hello or a report
     * is cheap, and a guest that sends one and then floods or stops reading
     * must not be reopened every session_retry_ms forever. */
    gint64 now = broker_now_us();
    if (now - session_opened_at(s) >= BROKER_SESSION_HEALTHY_US)
        backoff_reset(&vm->reopen);
    vm->other_major = g_str_has_prefix(why, "unsupported-version");
    BackoffSpec spec = broker_reopen_spec(b);
    backoff_fail(&vm->reopen, &spec, now);
    if (vm->other_major) /* an agent that must be upgraded first: not soon */
        vm->reopen.next_us = MAX(vm->reopen.next_us, now + BROKER_OTHER_MAJOR_RETRY_US);
}

static const SessionCallbacks session_callbacks = {
    .hello = on_session_hello,
    .report = on_session_report,
    .closed = on_session_closed,
};

static void vm_open_session(Broker *b, BrokerVm *vm)
{
    g_autoptr(GError) e = NULL;
    SessionTransport *t = virt_open_channel(b->virt, vm->uuid, &e);

    if (t == NULL) {
        /* Log each distinct failure once, retry with backoff. */
        if (evlog_once_changed(&vm->open_error, e->message))
            evlog_say(b->log, FALSE, "%s: cannot open the agent channel: %s", vm->name, e->message);
        BackoffSpec spec = broker_reopen_spec(b);
        backoff_fail(&vm->reopen, &spec, broker_now_us());
        return;
    }
    g_clear_pointer(&vm->open_error, g_free);
    SessionConfig sc;
    config_session(&b->cfg, &sc);
    vm->session = session_new(vm->name, t, &sc, &session_callbacks, vm, b->log, broker_now_us);
    vm->session_reported = FALSE;
    json_object *f = json_object_new_object();
    json_object_object_add(f, "why", json_object_new_string("channel connected"));
    evlog_emit(b->log, "session-open", vm->name, f);
    evlog_say(b->log, FALSE, "%s: agent channel open", vm->name);
}

gboolean broker_attach_transport(Broker *b, const char *vm_name, SessionTransport *transport)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        BrokerVm *vm = v;
        if (!vm->active || strcmp(vm->name, vm_name) != 0)
            continue;
        vm_close_session(vm, NULL, "replaced");
        SessionConfig sc;
        config_session(&b->cfg, &sc);
        vm->session =
            session_new(vm->name, transport, &sc, &session_callbacks, vm, b->log, broker_now_us);
        vm->session_reported = FALSE;
        json_object *f = json_object_new_object();
        json_object_object_add(f, "why", json_object_new_string("transport attached"));
        evlog_emit(b->log, "session-open", vm->name, f);
        return TRUE;
    }
    transport->ops->close(transport);
    return FALSE;
}

/* Per running VM, on the poll timer: stats period, XML, channel. */
static void vm_poll(Broker *b, BrokerVm *vm, gint64 now)
{
    if (!vm->active)
        return;
    if (!vm->stats_period_set && b->cfg.stats_period_s > 0) {
        g_autoptr(GError) e = NULL;
        /* Once per start; a failure is logged and not retried every second. */
        if (!virt_set_stats_period(b->virt, vm->uuid, (int)b->cfg.stats_period_s, &e))
            evlog_say(b->log, FALSE, "%s: cannot set the memory stats period: %s", vm->name,
                      e->message);
        vm->stats_period_set = TRUE;
    }
    gboolean want_channel =
        vm->session == NULL && vm->state == VIRT_STATE_RUNNING && backoff_ready(&vm->reopen, now);
    /* libvirt 9.0 sends no event when a guest opens a non-qemu-ga port: the
     * live XML's state attribute is all there is, so it is polled. A domain
     * without the channel is not polled until its next lifecycle event. */
    if (vm->need_xml || (want_channel && vm->xml.channel != DOMXML_CHANNEL_ABSENT)) {
        if (!vm_refresh_xml(b, vm))
            return;
    }
    if (want_channel &&
        (vm->xml.channel == DOMXML_CHANNEL_CONNECTED || vm->xml.channel == DOMXML_CHANNEL_UNKNOWN))
        vm_open_session(b, vm);
}

static gboolean on_poll(gpointer user_data)
{
    Broker *b = user_data;
    GHashTableIter it;
    gpointer v;
    gint64 now = broker_now_us();

    if (!virt_is_connected(b->virt))
        return G_SOURCE_CONTINUE;
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v))
        vm_poll(b, v, now);
    return G_SOURCE_CONTINUE;
}

/* ---- applying the plan ---- */

const char *broker_kind_name(PolicyActionKind kind)
{
    return kind == POLICY_ACTION_DEFLATE ? "deflate" : "inflate";
}

guint64 broker_vm_floor(Broker *b, const BrokerVm *vm)
{
    return policy_vm_floor(&b->cfg.policy, vm->floor_kib,
                           vm->has_stats ? vm->stats.maximum_kib : 0);
}

static gboolean on_request_report(gpointer data)
{
    BrokerVm *vm = data;

    vm->request_id = 0;
    if (vm->session != NULL)
        session_request(vm->session);
    return G_SOURCE_REMOVE;
}

/* One set-memory call: the event, and its outcome recorded for the next
 * cycle's facts (rule 9 of the policy takes a failed one back). */
static void broker_set_memory(Broker *b, BrokerVm *vm, guint64 target)
{
    g_autoptr(GError) e = NULL;
    gint64 t0 = broker_now_us();
    gboolean ok = virt_set_memory(b->virt, vm->uuid, target, &e);
    gint64 call_us = broker_now_us() - t0;
    json_object *f = json_object_new_object();

    json_object_object_add(f, "target_kib", json_object_new_uint64(target));
    json_object_object_add(f, "ok", json_object_new_boolean(ok));
    if (!ok)
        json_object_object_add(f, "error", json_object_new_string(e->message));
    json_object_object_add(f, "call_us", json_object_new_int64(call_us));
    evlog_emit(b->log, "set-memory", vm->name, f);
    if (!ok) {
        vm->setmem_failed_us = MAX(t0, 1);
        EvlogTags err = {LOG_ERR, vm->name, "set-memory", NULL};
        evlog_say_tagged(b->log, TRUE, &err,
                         "%s: setting the balloon to %" G_GUINT64_FORMAT
                         " MiB failed: %s (retried with back-off)",
                         vm->name, target / KIB_PER_MIB, e->message);
        return;
    }
    vm->setmem_failed_us = 0;
    vm->target_kib = target;
    vm->target_at_us = t0;
    if (vm->session != NULL) {
        g_clear_handle_id(&vm->request_id, g_source_remove);
        vm->request_id = g_timeout_add(BROKER_REQUEST_AFTER_MS, on_request_report, vm);
    }
}

/* Apply one action of the plan and record what happened: the decision (said
 * "would" when not applied), the set-memory call and its outcome, which the
 * next cycle passes back to the policy (rule 9). */
static void broker_apply(Broker *b, BrokerVm *vm, const PolicyAction *a, PolicyMode mode)
{
    guint64 from = vm->has_stats ? vm->stats.current_kib : 0;
    guint64 target = a->target_kib;
    gboolean applied = mode == POLICY_MODE_AUTO; /* --dry-run made it OBSERVE */
    const char *why_not = b->opt.dry_run ? "dry-run" : applied ? NULL : "observe";

    /* An observed VM never reaches its target, so the same decision comes
     * back every cycle: say it again only once in a while. */
    if (!applied && vm->last.has && !vm->last.applied && vm->last.kind == a->kind &&
        vm->last.target_kib == target && broker_now_us() - vm->last.mono_us < BROKER_NOTE_REPEAT_US)
        return;
    /* The floor net asking again: the balloon did not get there last time. */
    if (a->code == POLICY_REASON_FLOOR && a->attempt > 1 && vm->last.applied) {
        json_object *f = json_object_new_object();
        json_object_object_add(f, "target_kib", json_object_new_uint64(target));
        json_object_object_add(f, "actual_kib", json_object_new_uint64(from));
        evlog_emit(b->log, "balloon-stuck", vm->name, f);
        evlog_say(b->log, TRUE,
                  "%s: balloon still at %" G_GUINT64_FORMAT
                  " MiB, below its floor %" G_GUINT64_FORMAT " MiB: asking again every %u s",
                  vm->name, from / KIB_PER_MIB, target / KIB_PER_MIB,
                  (guint)(policy_floor_retry_us(&b->cfg.policy) / G_USEC_PER_SEC));
        broker_history_vm_note(b, vm, "balloon still below its floor %" G_GUINT64_FORMAT " MiB",
                               target / KIB_PER_MIB);
    }

    json_object *f = json_object_new_object();
    json_object_object_add(f, "kind", json_object_new_string(broker_kind_name(a->kind)));
    json_object_object_add(f, "from_kib", json_object_new_uint64(from));
    json_object_object_add(f, "target_kib", json_object_new_uint64(target));
    json_object_object_add(f, "reason", json_object_new_string(a->reason));
    json_object_object_add(f, "reason_code", json_object_new_string(policy_reason_name(a->code)));
    json_object_object_add(f, "applied", json_object_new_boolean(applied));
    json_object_object_add(f, "why_not_applied", evlog_str_or_null(why_not));
    evlog_emit(b->log, "decision", vm->name, f);
    EvlogTags tags = {LOG_NOTICE, vm->name, broker_kind_name(a->kind), policy_reason_name(a->code)};
    evlog_say_tagged(b->log, TRUE, &tags, "%s%s", applied ? "" : "would: ", a->reason);
    if ((guint)a->kind < METRICS_KIND_N && (guint)a->code < POLICY_REASON_N)
        vm->decisions[a->kind][a->code]++;

    vm->last.has = TRUE;
    vm->last.kind = a->kind;
    vm->last.from_kib = from;
    vm->last.target_kib = target;
    g_strlcpy(vm->last.reason, a->reason, sizeof(vm->last.reason));
    vm->last.mono_us = broker_now_us();
    vm->last.applied = applied;
    vm->last.has_code = TRUE;
    vm->last.code = a->code;
    broker_history_decision(b, vm, a->code, why_not);
    if (!applied)
        return;

    broker_set_memory(b, vm, target);
}

/* A note's shape: its text with every number replaced, so that "300 MiB
 * short" and "310 MiB short" are the same note. Digits inside a word (VM
 * names like vm-2) are kept. */
char *broker_note_key(const char *text)
{
    GString *k = g_string_new(NULL);

    for (const char *p = text; *p; p++) {
        gboolean in_word =
            p > text && (g_ascii_isalnum(p[-1]) || p[-1] == '-' || p[-1] == '_' || p[-1] == '.');
        if (g_ascii_isdigit(*p) && !in_word) {
            g_string_append_c(k, '#');
            while (g_ascii_isdigit(p[1]) || (p[1] == '.' && g_ascii_isdigit(p[2])))
                p++;
        } else {
            g_string_append_c(k, *p);
        }
    }
    return g_string_free(k, FALSE);
}

/* Plan notes come every cycle with fresh numbers: log a note when its shape
 * first appears, then once per BROKER_NOTE_REPEAT_US while it lasts. */
static void broker_notes(Broker *b, GPtrArray *notes, gint64 now)
{
    for (guint i = 0; notes && i < notes->len; i++) {
        const char *text = notes->pdata[i];
        g_autofree char *key = broker_note_key(text);
        if (!evlog_once_due(b->notes, key, now))
            continue;
        json_object *f = json_object_new_object();
        json_object_object_add(f, "text", json_object_new_string(text));
        evlog_emit(b->log, "note", NULL, f);
        evlog_say(b->log, TRUE, "note: %s", text);
        broker_history_note(b, text);
    }
    /* Forget notes gone for a while, so that they are logged when they return. */
    evlog_once_expire(b->notes, now);
}

static void broker_refresh_stats(Broker *b, gint64 now)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(GArray) stats = virt_balloon_stats(b->virt, &e);

    if (stats == NULL) {
        evlog_say(b->log, FALSE, "cannot read balloon stats: %s", e->message);
        /* libvirt's figures of a hung or failing connection are dropped once
         * they are three ticks old: no guest is decided on them (agent-less
         * guests are left alone, the others go by their agents). */
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, b->vms);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            BrokerVm *vm = v;
            if (vm->has_stats && now - vm->stats_at_us > 3 * (gint64)b->cfg.tick_ms * 1000)
                vm->has_stats = FALSE;
        }
        return;
    }
    for (guint i = 0; i < stats->len; i++) {
        const VirtStats *s = &g_array_index(stats, VirtStats, i);
        BrokerVm *vm = g_hash_table_lookup(b->vms, s->uuid);
        if (vm == NULL || !vm->active)
            continue; /* not yet seen: the lifecycle event or resync brings it */
        vm->stats = *s;
        vm->has_stats = s->has_current;
        vm->stats_at_us = now;
        vm->state = s->state;
    }
}

/* When libvirt's guest figures were taken, on our monotonic clock. */
static gint64 guest_stats_at(const BrokerVm *vm, gint64 now)
{
    if (vm->stats.last_update_s <= 0)
        return vm->stats_at_us;
    gint64 age_us = g_get_real_time() - vm->stats.last_update_s * G_USEC_PER_SEC;
    return now - MAX(age_us, 0);
}

/* KSM: host controller and per-VM exclusion (ksm-run.c), every domain known. */
static void broker_ksm_tick(Broker *b, gint64 now)
{
    g_autofree KsmRunVm *list = g_new0(KsmRunVm, g_hash_table_size(b->vms) + 1);
    GHashTableIter it;
    gpointer v;
    gsize n = 0;

    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        BrokerVm *vm = v;
        list[n].uuid = vm->uuid;
        list[n].name = vm->name;
        list[n].active = vm->active && vm->has_xml; /* decide on its metadata, not defaults */
        list[n].ksm = vm->ksm;
        list[n].latency_sensitive = vm->latency_sensitive;
        list[n].hold = vm->released;
        n++;
    }
    ksm_run_tick(b->ksm, &b->cfg.ksm, b->cfg.allow_qemu_monitor, b->has_host ? &b->host : NULL,
                 list, n, now);
}

/* How long a new session may stay quiet before its VM is decided anyway. */
gint64 broker_grace_us(const Broker *b)
{
    return (2 * (gint64)b->cfg.interval_ms + 500) * 1000;
}

/* ---- the cycle: collect, decide, apply, remember ---- */

/* Is this VM decided in this cycle? */
static gboolean broker_decides(Broker *b, BrokerVm *vm, gint64 now)
{
    /* A paused guest can neither use memory nor give it back: its balloon
     * would only look stuck. It is decided again once resumed. */
    if (!vm->active || vm->state != VIRT_STATE_RUNNING || !vm->has_stats || !vm->has_xml)
        return FALSE;
    /* A channel just opened (broker start, libvirtd back): its agent is about
     * to speak. Deciding now would judge the VM from libvirt's figures or call
     * its agent silent for an outage that was ours. */
    if (vm->session != NULL && !vm->session_reported &&
        now - session_opened_at(vm->session) < broker_grace_us(b))
        return FALSE;
    return TRUE;
}

/* One VM's facts for the policy: libvirt's figures, the agent's reports,
 * what the policy remembered and what our calls did. */
static void broker_vm_facts(Broker *b, BrokerVm *vm, gint64 now, PolicyVm *p)
{
    p->name = vm->name;
    /* --dry-run is observe for everyone: the policy then neither expects its
     * targets to be reached nor blames the balloon. */
    p->mode = b->opt.dry_run && vm->mode == POLICY_MODE_AUTO ? POLICY_MODE_OBSERVE : vm->mode;
    p->ksm = vm->ksm;
    p->floor_kib = vm->floor_kib;
    p->shares = vm->shares;
    p->max_kib = vm->stats.maximum_kib ? vm->stats.maximum_kib : vm->xml.memory_kib;
    p->actual_kib = vm->stats.current_kib;
    p->has_balloon_stats = vm->stats.has_guest;
    p->balloon_stats_at_us = guest_stats_at(vm, now);
    p->lv_available_kib = vm->stats.available_kib;
    p->lv_usable_kib = vm->stats.usable_kib;
    p->lv_unused_kib = vm->stats.unused_kib;
    p->lv_disk_caches_kib = vm->stats.disk_caches_kib;
    p->lv_swap_in_kib = vm->stats.swap_in_kib;
    p->lv_major_faults = vm->stats.major_fault;
    p->agent_rejected = vm->rejected_before;
    if (vm->session != NULL) {
        const BlReport *r;
        p->agent_connected = TRUE;
        if ((r = session_report(vm->session, &p->report_at_us)) != NULL) {
            p->has_report = TRUE;
            p->report = *r;
        }
        if ((r = session_prev_report(vm->session, &p->prev_report_at_us)) != NULL) {
            p->has_prev_report = TRUE;
            p->prev_report = *r;
        }
        p->agent_rejected += session_rejected_total(vm->session);
    }
    p->applied_target_kib = vm->target_kib;
    p->applied_at_us = vm->target_at_us;
    p->setmem_failed_us = vm->setmem_failed_us;
    p->memory = vm->memory;
}

/* Collect: host facts, libvirt's figures (regular ticks), the VMs to decide.
 * FALSE when there is nothing to decide on (no libvirt, no host facts). */
static gboolean broker_collect(Broker *b, gboolean fast, gint64 now, GPtrArray *vms)
{
    g_autoptr(GError) e = NULL;
    PolicyHost host;
    GHashTableIter it;
    gpointer v;

    if (host_read(b->host_root, &host, &e)) {
        b->host = host;
        b->has_host = TRUE;
        b->host_error_logged = FALSE;
    } else if (!b->host_error_logged) {
        evlog_say(b->log, TRUE, "cannot read host memory facts: %s", e->message);
        b->host_error_logged = TRUE;
    }
    if (!virt_is_connected(b->virt) || !b->has_host)
        return FALSE;
    /* The pressure path decides only the guests that reported while the host
     * is comfortable. When it is tight (near its reserve, or short at the last
     * cycle) a report may have to be paid for by another guest at once (rules
     * 2 and 10): then every guest is decided, as on the tick. */
    guint64 reserve = policy_host_reserve_kib(&b->host, &b->cfg.policy);
    gboolean tight = b->host_tight ||
                     b->host.mem_available_kib < reserve + 2 * b->cfg.policy.host_hysteresis_kib;
    fast = fast && !tight;
    b->fleet = b->host;
    b->fleet.pressure_only = fast;
    b->fleet.fleet_committed_kib = b->fleet.fleet_unmanaged_kib = 0;
    /* A pressure-driven cycle reuses the tick's libvirt figures (balloon
     * events keep `actual` current): no RPC between report and action. */
    if (!fast)
        broker_refresh_stats(b, now);
    /* On the pressure path, the guests that asked for it, not all of them:
     * its cost does not grow with the number of VMs. The others count by
     * their targets in force (the policy's fleet figures). */
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        BrokerVm *vm = v;
        guint64 held =
            vm->memory.last_target_kib ? vm->memory.last_target_kib : vm->stats.current_kib;
        gboolean mine = !fast || vm->kicked;
        vm->kicked = FALSE;
        if (!broker_decides(b, vm, now))
            continue;
        if (mine)
            g_ptr_array_add(vms, vm);
        else if (vm->mode == POLICY_MODE_OFF)
            b->fleet.fleet_unmanaged_kib += vm->stats.current_kib;
        else
            b->fleet.fleet_committed_kib += held;
    }
    return TRUE;
}

/* Apply: every action in plan order (the policy has clamped and ordered them). */
static void broker_apply_plan(Broker *b, GPtrArray *vms, const PolicyVm *pvms,
                              const PolicyPlan *plan)
{
    for (guint i = 0; i < plan->actions->len; i++) {
        const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, i);
        if (a->vm < vms->len)
            broker_apply(b, vms->pdata[a->vm], a, pvms[a->vm].mode);
    }
}

/* Remember: each VM's policy memory for the next cycle, and a balloon the
 * policy found stuck (rule 4) said as an event. */
static void broker_remember(Broker *b, GPtrArray *vms, const PolicyVm *pvms, const PolicyPlan *plan)
{
    for (guint i = 0; i < vms->len && i < plan->n_vms; i++) {
        BrokerVm *vm = vms->pdata[i];
        PolicyVmMemory old = vm->memory;
        vm->memory = plan->memory[i];
        if (vm->memory.untrusted != old.untrusted) { /* policy rule 6 */
            json_object *f = json_object_new_object();
            json_object_object_add(f, "why",
                                   json_object_new_string(vm->memory.untrusted
                                                              ? vm->memory.untrusted_why
                                                              : old.untrusted_why));
            evlog_emit(b->log, vm->memory.untrusted ? "untrusted" : "trusted", vm->name, f);
        }
        if (vm->memory.stuck_count <= old.stuck_count)
            continue;
        json_object *f = json_object_new_object();
        guint64 target = old.last_target_kib ? old.last_target_kib : vm->target_kib;
        json_object_object_add(f, "target_kib", json_object_new_uint64(target));
        json_object_object_add(f, "actual_kib", json_object_new_uint64(pvms[i].actual_kib));
        evlog_emit(b->log, "balloon-stuck", vm->name, f);
        EvlogTags tags = {LOG_WARNING, vm->name, "balloon-stuck", "stuck"};
        evlog_say_tagged(b->log, TRUE, &tags,
                         "%s: balloon stuck at %" G_GUINT64_FORMAT " MiB (target %" G_GUINT64_FORMAT
                         " MiB): not pushing it further for now",
                         vm->name, pvms[i].actual_kib / KIB_PER_MIB, target / KIB_PER_MIB);
        broker_history_vm_note(
            b, vm, "balloon stuck at %" G_GUINT64_FORMAT " MiB (target %" G_GUINT64_FORMAT " MiB)",
            pvms[i].actual_kib / KIB_PER_MIB, target / KIB_PER_MIB);
    }
}

/* The policy's facts for n VMs, zeroed (the facts leave what they do not
 * know at 0): the broker's kept array, taken out of it for the cycle (*cap:
 * its size) and given back by broker_pvms_give(). */
static PolicyVm *broker_pvms_take(Broker *b, gsize n, gsize *cap)
{
    PolicyVm *pvms = g_steal_pointer(&b->cycle_pvms);

    *cap = pvms != NULL ? b->cycle_pvms_cap : 0;
    if (*cap < n) {
        g_free(pvms);
        *cap = MAX(n, 2 * *cap);
        pvms = g_new(PolicyVm, *cap);
    }
    memset(pvms, 0, n * sizeof(PolicyVm));
    return pvms;
}

static void broker_pvms_give(Broker *b, PolicyVm *pvms, gsize cap)
{
    if (b->cycle_pvms != NULL) { /* another cycle gave its own back meanwhile */
        g_free(pvms);
        return;
    }
    b->cycle_pvms = pvms;
    b->cycle_pvms_cap = cap;
}

static void broker_cycle(Broker *b, gboolean fast)
{
    gint64 now = broker_now_us();
    /* Taken from the broker for this cycle and given back at its end: a
     * cycle started from inside another (none is today) gets fresh ones. */
    g_autoptr(GPtrArray) vms = g_steal_pointer(&b->cycle_vms);

    if (vms == NULL)
        vms = g_ptr_array_new();
    g_ptr_array_set_size(vms, 0);
    b->cycles++;
    gboolean collected = broker_collect(b, fast, now, vms);
    if (collected && vms->len > 0) {
        gsize cap;
        PolicyVm *pvms = broker_pvms_take(b, vms->len, &cap);
        for (guint i = 0; i < vms->len; i++)
            broker_vm_facts(b, vms->pdata[i], now, &pvms[i]);
        g_autoptr(PolicyPlan) plan = policy_decide(&b->fleet, pvms, vms->len, &b->cfg.policy, now);
        /* Short at this cycle (entitlements shown): the next pressure cycles
         * decide everyone until it is over. A pressure cycle over a few VMs
         * says nothing about the host: it leaves the mark as it was. */
        if (!b->fleet.pressure_only) {
            b->host_tight = FALSE;
            for (gsize i = 0; i < plan->n_vms; i++)
                b->host_tight |= plan->entitlement_kib[i] != 0;
        }
        broker_apply_plan(b, vms, pvms, plan);
        broker_remember(b, vms, pvms, plan);
        broker_notes(b, plan->notes, now);
        broker_pvms_give(b, pvms, cap);
    }
    /* KSM decisions are slow ones (minutes): the tick is soon enough, and the
     * pressure path stays short. */
    if (collected && !fast)
        broker_ksm_tick(b, now);
    if (b->cycle_vms == NULL)
        b->cycle_vms = g_steal_pointer(&vms);
}

/* A cycle, timed for ballast_cycle_duration_seconds. */
static void broker_cycle_timed(Broker *b, gboolean fast)
{
    gint64 t0 = broker_now_us();

    broker_cycle(b, fast);
    metrics_histogram_observe(&b->cycle_hist, (double)(broker_now_us() - t0) / G_USEC_PER_SEC);
}

static gboolean on_tick(gpointer user_data)
{
    broker_cycle_timed(user_data, FALSE);
    broker_sd_cycle_done(user_data);
    return G_SOURCE_CONTINUE;
}

static gboolean on_kick(gpointer user_data)
{
    Broker *b = user_data;
    gint64 t0 = broker_now_us();

    b->kick_id = 0;
    broker_cycle_timed(b, TRUE);
    b->kick_end_us = broker_now_us();
    b->kick_cost_us = b->kick_end_us - t0;
    return G_SOURCE_REMOVE;
}

static void broker_kick(Broker *b, const char *why)
{
    /* Coalesce: pressure reports that arrive together get one cycle. A cycle
     * decides every VM, so in a storm (every guest under pressure at once,
     * bench-scale) back-to-back cycles would take the whole core: the next
     * one waits BROKER_KICK_PACE times what the last one cost (at most
     * BROKER_KICK_PACE_MAX_US), which keeps pressure cycles under about a
     * fifth of a core whatever the number of VMs, and costs a lone report
     * nothing (the wait is long over when it comes). */
    if (b->kick_id == 0) {
        gint64 gap = MIN(BROKER_KICK_PACE * b->kick_cost_us, BROKER_KICK_PACE_MAX_US);
        gint64 wait = b->kick_end_us + gap - broker_now_us();
        if (b->kick_end_us == 0 || wait <= 0) {
            b->kick_id = g_idle_add_full(G_PRIORITY_HIGH, on_kick, b, NULL);
        } else {
            GSource *t = g_timeout_source_new((guint)((wait + 999) / 1000));
            g_source_set_priority(t, G_PRIORITY_HIGH);
            g_source_set_callback(t, on_kick, b, NULL);
            b->kick_id = g_source_attach(t, NULL);
            g_source_unref(t);
        }
    }
    if (evlog_verbose(b->log))
        evlog_say(b->log, FALSE, "%s: pressure report: deciding now", why);
}

/* ---- libvirt events ---- */

static void broker_resync(Broker *b)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(GArray) doms = virt_list_domains(b->virt, &e);
    GHashTableIter it;
    gpointer v;

    if (doms == NULL) {
        evlog_say(b->log, TRUE, "cannot list domains: %s", e->message);
        return;
    }
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v))
        ((BrokerVm *)v)->listed = FALSE;
    for (guint i = 0; i < doms->len; i++) {
        const VirtDomainInfo *d = &g_array_index(doms, VirtDomainInfo, i);
        if (!broker_follows(b, d->name))
            continue;
        BrokerVm *vm = vm_get(b, d->uuid, d->name);
        gboolean was_active = vm->active;
        vm->listed = TRUE;
        vm->persistent = d->persistent;
        vm->need_xml = TRUE;
        if (d->active && !was_active)
            vm_started(b, vm);
        else if (!d->active && was_active)
            vm_stopped(b, vm, "domain not running");
        if (d->active) {
            vm->state = d->state;
            /* The stats period may have been lost with the old libvirtd. */
            vm->stats_period_set = FALSE;
            backoff_retry_now(&vm->reopen);
        }
    }
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        BrokerVm *vm = v;
        if (!vm->listed) {
            vm_close_session(vm, NULL, "domain gone");
            g_hash_table_iter_remove(&it);
        }
    }
    evlog_say(b->log, FALSE, "following %u of %u domain(s)", g_hash_table_size(b->vms), doms->len);
    on_poll(b);
    broker_cycle_timed(b, FALSE);
    broker_sd_cycle_done(b);
}

static void on_connected(Virt *v, gpointer user_data)
{
    Broker *b = user_data;
    json_object *f = json_object_new_object();

    json_object_object_add(f, "uri", json_object_new_string(virt_uri(v)));
    json_object_object_add(f, "why", json_object_new_string("connected"));
    evlog_emit(b->log, "connect", NULL, f);
    evlog_say(b->log, TRUE, "connected to %s", virt_uri(v));
    g_clear_pointer(&b->connect_error, g_free);
    broker_resync(b);
}

static void on_disconnected(Virt *v, const char *why, gpointer user_data)
{
    Broker *b = user_data;
    GHashTableIter it;
    gpointer vp;
    json_object *f = json_object_new_object();

    json_object_object_add(f, "uri", json_object_new_string(virt_uri(v)));
    json_object_object_add(f, "why", json_object_new_string(why));
    evlog_emit(b->log, "disconnect", NULL, f);
    EvlogTags tags = {LOG_WARNING, NULL, "disconnect", NULL};
    evlog_say_tagged(b->log, TRUE, &tags, "lost %s (%s): reconnecting", virt_uri(v), why);
    /* The streams died with the connection; per-VM state (policy memory,
     * targets, counters) stays, keyed by UUID, for when we are back. */
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &vp)) {
        BrokerVm *vm = vp;
        vm_close_session(vm, NULL, "libvirt connection lost");
        backoff_reset(&vm->reopen);
        vm->has_stats = FALSE;
    }
}

static void on_connect_failed(Virt *v, const char *why, guint delay_ms, gpointer user_data)
{
    Broker *b = user_data;

    /* Say it when the reason changes, and once the backoff is at its cap
     * (every reconnect_max_ms), not at every attempt. */
    if (evlog_once_changed(&b->connect_error, why) || delay_ms >= b->cfg.reconnect_max_ms) {
        EvlogTags tags = {LOG_WARNING, NULL, "connect", NULL};
        evlog_say_tagged(b->log, TRUE, &tags, "still cannot connect: %s (next try in %.1f s)", why,
                         delay_ms / 1000.0);
    }
}

static void on_lifecycle(Virt *v, const char *uuid, const char *name, VirtEvent event,
                         const char *detail, gpointer user_data)
{
    Broker *b = user_data;

    if (!broker_follows(b, name))
        return;
    BrokerVm *vm = vm_get(b, uuid, name);
    json_object *f = json_object_new_object();

    json_object_object_add(f, "what", json_object_new_string(virt_event_name(event)));
    json_object_object_add(f, "detail", json_object_new_string(detail));
    evlog_emit(b->log, "domain", name, f);
    if (evlog_verbose(b->log))
        evlog_say(b->log, FALSE, "%s: %s %s", name, virt_event_name(event), detail);

    switch (event) {
    case VIRT_EVENT_DEFINED:
        vm->persistent = TRUE;
        vm->need_xml = TRUE;
        break;
    case VIRT_EVENT_UNDEFINED:
        vm->persistent = FALSE;
        if (!vm->active)
            g_hash_table_remove(b->vms, uuid);
        return;
    case VIRT_EVENT_STARTED:
        vm_started(b, vm);
        vm_poll(b, vm, broker_now_us());
        break;
    case VIRT_EVENT_SUSPENDED:
    case VIRT_EVENT_PMSUSPENDED:
        vm->state = VIRT_STATE_PAUSED;
        break;
    case VIRT_EVENT_RESUMED:
        vm->state = VIRT_STATE_RUNNING;
        break;
    case VIRT_EVENT_STOPPED:
    case VIRT_EVENT_CRASHED: {
        g_autofree char *why = g_strdup_printf("domain %s (%s)", virt_event_name(event), detail);
        vm_stopped(b, vm, why);
        if (!vm->persistent)
            g_hash_table_remove(b->vms, uuid);
        break;
    }
    case VIRT_EVENT_REBOOTED:
        /* The agent reconnects the port and says hello again. */
        vm->need_xml = TRUE;
        break;
    case VIRT_EVENT_SHUTDOWN:
    case VIRT_EVENT_OTHER:
        break;
    }
}

static void on_balloon_change(Virt *v, const char *uuid, const char *name, guint64 actual,
                              gpointer user_data)
{
    Broker *b = user_data;
    BrokerVm *vm = g_hash_table_lookup(b->vms, uuid);
    json_object *f = json_object_new_object();

    json_object_object_add(f, "actual_kib", json_object_new_uint64(actual));
    evlog_emit(b->log, "balloon-change", name, f);
    if (vm != NULL && vm->has_stats)
        vm->stats.current_kib = actual;
}

static void on_metadata_change(Virt *v, const char *uuid, const char *name, gpointer user_data)
{
    Broker *b = user_data;
    BrokerVm *vm = g_hash_table_lookup(b->vms, uuid);

    if (vm != NULL && vm_refresh_xml(b, vm))
        evlog_say(b->log, TRUE,
                  "%s: ballast metadata changed: mode %s, floor %" G_GUINT64_FORMAT " MiB",
                  vm->name, config_mode_name(vm->mode), vm->floor_kib / KIB_PER_MIB);
}

static void on_device_added(Virt *v, const char *uuid, const char *name, gpointer user_data)
{
    Broker *b = user_data;
    BrokerVm *vm = g_hash_table_lookup(b->vms, uuid);

    /* Perhaps the agent channel: look again at the next poll. */
    if (vm != NULL) {
        vm->need_xml = TRUE;
        backoff_retry_now(&vm->reopen);
    }
}

static const VirtCallbacks virt_callbacks = {
    .connected = on_connected,
    .disconnected = on_disconnected,
    .connect_failed = on_connect_failed,
    .lifecycle = on_lifecycle,
    .balloon_change = on_balloon_change,
    .metadata_change = on_metadata_change,
    .device_added = on_device_added,
};

/* ---- configuration ---- */

static void broker_apply_overrides(Broker *b, Config *cfg)
{
    if (b->opt.interval_ms > 0) {
        cfg->interval_ms = b->opt.interval_ms;
        cfg->tick_ms = b->opt.interval_ms;
    }
}

static void broker_arm_timers(Broker *b)
{
    g_clear_handle_id(&b->tick_id, g_source_remove);
    g_clear_handle_id(&b->poll_id, g_source_remove);
    b->tick_id = g_timeout_add(b->cfg.tick_ms, on_tick, b);
    b->poll_id = g_timeout_add(b->cfg.channel_poll_ms, on_poll, b);
}

/* Load the file into *cfg, saying each warning (unknown group or key) in one
 * line; before the event log is open (at start) on stderr. */
static gboolean broker_load_config(Broker *b, Config *cfg, ConfigLoadFlags flags, GError **error)
{
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);

    if (b->opt.strict)
        flags |= CONFIG_LOAD_STRICT;
    if (!config_load_file(cfg, b->config_path, flags, warnings, NULL, error))
        return FALSE;
    for (guint i = 0; i < warnings->len; i++) {
        if (b->log)
            evlog_say(b->log, TRUE, "warning: %s (ignored)", (char *)warnings->pdata[i]);
        else
            g_printerr("ballastd: warning: %s (ignored)\n", (char *)warnings->pdata[i]);
    }
    return TRUE;
}

gboolean broker_reload(Broker *b, GError **error)
{
    Config next;
    g_autoptr(GError) e = NULL;

    broker_sd_reloading(b);
    /* SIGHUP is also logrotate's way to say "reopen your log". */
    if (!evlog_reopen(b->log, &e)) {
        evlog_say(b->log, TRUE, "cannot reopen the event log, keeping the old one: %s", e->message);
        g_clear_error(&e);
    }
    /* A file that has gone is an error here, never the defaults: a reload
     * must not quietly drop the floors and reserves in force. */
    config_init_defaults(&next);
    if (!broker_load_config(b, &next, CONFIG_LOAD_MUST_EXIST, &e) ||
        !broker_metrics_apply(b, &next, &e)) {
        config_clear(&next);
        json_object *f = json_object_new_object();
        json_object_object_add(f, "ok", json_object_new_boolean(FALSE));
        json_object_object_add(f, "error", json_object_new_string(e->message));
        evlog_emit(b->log, "reload", NULL, f);
        evlog_say(b->log, TRUE, "reload failed, the running configuration stays: %s", e->message);
        broker_sd_reloaded(b);
        g_propagate_error(error, g_steal_pointer(&e));
        return FALSE;
    }
    broker_apply_overrides(b, &next);
    gboolean timers =
        next.tick_ms != b->cfg.tick_ms || next.channel_poll_ms != b->cfg.channel_poll_ms;
    if (g_strcmp0(next.control_socket, b->cfg.control_socket) != 0 && b->opt.control_path == NULL)
        evlog_say(b->log, TRUE, "control_socket changed: takes effect at the next start");
    config_clear(&b->cfg);
    b->cfg = next;
    virt_set_backoff(b->virt, b->cfg.reconnect_min_ms, b->cfg.reconnect_max_ms);
    virt_set_call_timeout(b->virt, b->cfg.libvirt_timeout_ms);

    GHashTableIter it;
    gpointer v;
    SessionConfig sc;
    config_session(&b->cfg, &sc);
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        BrokerVm *vm = v;
        if (vm->session)
            session_set_config(vm->session, &sc);
        vm_apply_settings(b, vm); /* defaults may have changed */
        vm->need_xml = TRUE;
    }
    if (timers && b->loop)
        broker_arm_timers(b);
    if (b->control && !control_set_group(b->control, b->cfg.control_group, &e))
        evlog_say(b->log, TRUE, "control socket left root-only: %s", e->message);
    json_object *f = json_object_new_object();
    json_object_object_add(f, "ok", json_object_new_boolean(TRUE));
    evlog_emit(b->log, "reload", NULL, f);
    evlog_say(b->log, TRUE, "configuration reloaded from %s", b->config_path);
    broker_sd_reloaded(b);
    return TRUE;
}

/* ---- status ---- */

/* ---- life ---- */

Broker *broker_new(const BrokerOptions *options, GError **error)
{
    g_autoptr(Broker) b = g_new0(Broker, 1);

    b->opt = *options;
    b->uri = g_strdup(options->uri ? options->uri : "qemu:///system");
    b->config_path = g_strdup(options->config_path ? options->config_path : CONFIG_DEFAULT_PATH);
    b->host_root = g_strdup(options->host_root);
    b->metrics_listen_opt = g_strdup(options->metrics_listen);
    if (options->only != NULL)
        b->only = g_pattern_spec_new(options->only);
    b->opt.uri = b->opt.config_path = b->opt.control_path = b->opt.event_log = NULL;
    b->opt.host_root = b->opt.only = b->opt.metrics_listen = NULL;
    b->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, vm_free);
    b->notes = evlog_once_new(BROKER_NOTE_REPEAT_US);
    config_init_defaults(&b->cfg);
    if (!broker_load_config(b, &b->cfg, options->config_explicit ? CONFIG_LOAD_MUST_EXIST : 0,
                            error))
        return NULL;
    broker_apply_overrides(b, &b->cfg);
    b->control_path =
        g_strdup(options->control_path ? options->control_path : b->cfg.control_socket);
    b->opt.control_path = options->control_path ? b->control_path : NULL;
    b->log = evlog_new(options->event_log, error);
    if (b->log == NULL)
        return NULL;
    evlog_set_verbose(b->log, options->verbose);
    b->virt = options->backend != NULL
                  ? virt_new_backend(options->backend, options->backend_data, &virt_callbacks, b)
                  : virt_new(b->uri, &virt_callbacks, b);
    b->ksm = ksm_run_new(b->host_root, b->log, b->virt, b->opt.dry_run);
    /* A fixture host root has no QEMU user of its own: pid files only. */
    ksm_run_set_qemu_uid(b->ksm, b->host_root == NULL ? virt_qemu_uid() : -1);
    virt_set_backoff(b->virt, b->cfg.reconnect_min_ms, b->cfg.reconnect_max_ms);
    virt_set_call_timeout(b->virt, b->cfg.libvirt_timeout_ms);
    return g_steal_pointer(&b);
}

void broker_quit(Broker *b, const char *why)
{
    GHashTableIter it;
    gpointer v;

    evlog_say(b->log, FALSE, "stopping: %s", why);
    /* [broker] on_stop = release: hand every guest its memory back first. */
    if (b->cfg.on_stop == CONFIG_ON_STOP_RELEASE && !b->stopping)
        json_object_put(broker_ctl_release_all(b));
    b->stopping = TRUE;
    broker_sd_stopping(b);
    /* Tell every agent we are going, so that it does not wait for a welcome. */
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v))
        vm_close_session(v, "shutdown", "broker stopping");
    if (b->loop)
        g_main_loop_quit(b->loop);
}

static gboolean on_sighup(gpointer user_data)
{
    broker_reload(user_data, NULL);
    return G_SOURCE_CONTINUE;
}

static gboolean on_sigterm(gpointer user_data)
{
    broker_quit(user_data, "signal");
    return G_SOURCE_CONTINUE;
}

gboolean broker_run(Broker *b, GError **error)
{
    g_autoptr(GError) e = NULL;

    b->control = control_new(b->control_path, broker_on_control, b, error);
    if (b->control == NULL || !control_set_group(b->control, b->cfg.control_group, error))
        return FALSE;
    if (!broker_metrics_apply(b, &b->cfg, error))
        return FALSE;
    broker_sd_start(b);
    b->loop = g_main_loop_new(NULL, FALSE);
    b->sig_ids[0] = g_unix_signal_add(SIGHUP, on_sighup, b);
    b->sig_ids[1] = g_unix_signal_add(SIGTERM, on_sigterm, b);
    b->sig_ids[2] = g_unix_signal_add(SIGINT, on_sigterm, b);
    evlog_say(b->log, TRUE, "ballastd %s starting%s: %s, control %s", BALLAST_VERSION,
              b->opt.dry_run ? " in dry-run mode" : "", b->uri, b->control_path);
    if (!virt_connect(b->virt, &e)) {
        /* libvirtd may come up later, but a wrong URI stays wrong: a typo in
         * --connect is the user's error, not a reason to wait forever. */
        if (virt_error_is_bad_uri(e)) {
            g_propagate_error(error, g_steal_pointer(&e));
            return FALSE;
        }
        json_object *f = json_object_new_object();
        json_object_object_add(f, "uri", json_object_new_string(b->uri));
        json_object_object_add(f, "why", json_object_new_string(e->message));
        evlog_emit(b->log, "disconnect", NULL, f);
        evlog_say(b->log, TRUE, "cannot connect yet: %s (retrying)", e->message);
        b->connect_error = g_strdup(e->message);
    }
    broker_arm_timers(b);
    g_main_loop_run(b->loop);
    /* Let the goodbyes and stream aborts queued as idles run. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    return TRUE;
}

void broker_free(Broker *b)
{
    GHashTableIter it;
    gpointer v;

    if (b == NULL)
        return;
    /* First silence everything that can call into the broker (control
     * requests, signals, timers, agent streams, libvirt events), then drain
     * the main context, and only then free the state those callbacks read: a
     * request or an event that arrives while ballastd stops finds either the
     * whole broker or nothing to call. */
    control_free(b->control);
    b->control = NULL;
    for (guint i = 0; i < G_N_ELEMENTS(b->sig_ids); i++)
        g_clear_handle_id(&b->sig_ids[i], g_source_remove);
    g_clear_handle_id(&b->tick_id, g_source_remove);
    g_clear_handle_id(&b->poll_id, g_source_remove);
    g_clear_handle_id(&b->kick_id, g_source_remove);
    if (b->vms) {
        g_hash_table_iter_init(&it, b->vms);
        while (g_hash_table_iter_next(&it, NULL, &v))
            vm_close_session(v, NULL, "broker stopping");
    }
    g_clear_handle_id(&b->watchdog_id, g_source_remove);
    metrics_server_free(b->metrics);
    b->metrics = NULL;
    virt_free(b->virt);
    b->virt = NULL;
    /* libvirtd sees a clean close, unless a call is stuck on it. */
    virt_wait_closed(2 * G_USEC_PER_SEC);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    if (b->vms)
        g_hash_table_destroy(b->vms);
    if (b->cycle_vms)
        g_ptr_array_unref(b->cycle_vms);
    g_free(b->cycle_pvms);
    evlog_once_free(b->notes);
    ksm_run_free(b->ksm); /* puts back the KSM settings found at start */
    evlog_free(b->log);
    if (b->loop)
        g_main_loop_unref(b->loop);
    config_clear(&b->cfg);
    g_free(b->uri);
    g_free(b->config_path);
    g_free(b->control_path);
    g_free(b->host_root);
    g_free(b->connect_error);
    g_free(b->metrics_listen_opt);
    g_free(b->sd_status);
    if (b->only)
        g_pattern_spec_free(b->only);
    g_free(b);
}
