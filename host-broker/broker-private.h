/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The broker's own state, shared by the files of the broker loop (broker.c
 * and the parts split from it) and nothing else: other modules talk to the
 * broker through broker.h.
 */
#pragma once

#include <glib.h>

#include "config.h"
#include "control.h"
#include "domxml.h"
#include "evlog.h"
#include "evlog-once.h"
#include "ksm-run.h"
#include "metrics.h"
#include "policy.h"
#include "session.h"
#include "virt.h"
#include "broker.h"

/* One entry of a VM's decision history (ballastctl explain): what was
 * decided or noted, why, and the figures the decision saw. */
typedef enum {
    BROKER_HISTORY_DECISION, /* a balloon decision (applied or not) */
    BROKER_HISTORY_NOTE,     /* a plan note about this VM, or a stuck balloon */
    BROKER_HISTORY_OPERATOR, /* ballastctl set / release */
} BrokerHistoryKind;

typedef struct {
    BrokerHistoryKind what;
    PolicyActionKind kind; /* decisions */
    gboolean has_code;
    PolicyReason code;
    gboolean applied;
    char why_not[16]; /* "observe", "dry-run", "failed" or "" */
    guint64 from_kib, target_kib;
    char text[256];
    gint64 mono_us;
    /* the inputs: 0 / FALSE when unknown */
    gboolean has_actual, has_report, has_psi, has_host;
    guint64 actual_kib, max_kib, floor_kib;
    guint64 available_kib; /* the agent's MemAvailable */
    double psi_some_avg10;
    guint64 host_available_kib;
} BrokerHistoryEntry;

/* Bound of the in-memory history per VM (about 400 bytes an entry: 12.5 KiB
 * for a VM with a full history, nothing for one never decided). */
#define BROKER_HISTORY_MAX 32

/* ballastctl set: runtime overrides, winning over metadata and configuration
 * until cleared ("default") or ballastd restarts. */
typedef struct {
    gboolean has_mode, has_floor, has_shares;
    PolicyMode mode;
    guint64 floor_kib;
    guint32 shares;
} BrokerOverrides;

typedef struct {
    gboolean has;
    PolicyActionKind kind;
    gboolean has_code;
    PolicyReason code;
    guint64 from_kib, target_kib;
    char reason[256];
    gint64 mono_us;
    gboolean applied;
} BrokerDecision;

typedef struct {
    struct Broker *b;
    char uuid[VIRT_UUID_LEN];
    char name[VIRT_NAME_MAX];
    gboolean active, persistent, listed;
    VirtState state;

    /* from the domain XML */
    gboolean has_xml, need_xml;
    DomxmlDomain xml;
    char *problems;  /* the metadata problems last logged, to log each once */
    char *xml_error; /* likewise for a domain XML we could not read */
    PolicyMode mode;
    PolicyKsm ksm;
    guint64 floor_kib;
    guint32 shares;
    gboolean latency_sensitive;

    /* libvirt's balloon figures */
    gboolean has_stats;
    VirtStats stats;
    gint64 stats_at_us;
    gboolean stats_period_set;

    /* the agent */
    Session *session;
    /* The session has reported (session_report() is not NULL): kept here
     * because every cycle asks it of every guest, and looking into each
     * session was half of a pressure cycle at 1000 guests (cache misses). */
    gboolean session_reported;
    Backoff reopen;          /* reopening the channel after a failed or short session */
    gboolean other_major;    /* the agent speaks another protocol major */
    guint64 rejected_before; /* rejected by earlier sessions */
    char *open_error;        /* the channel open error last logged */
    gint64 last_kick_us;     /* last pressure-driven cycle this agent asked for */
    gboolean kicked;         /* to be decided by the next pressure-driven cycle */
    guint request_id;        /* pending request for a report after a balloon change */

    /* what the policy remembers, and what we did */
    PolicyVmMemory memory;
    guint64 target_kib;      /* the last target a set-memory call set; 0: none */
    gint64 target_at_us;     /* ... when */
    gint64 setmem_failed_us; /* when the last set-memory call failed; 0: it worked */
    BrokerDecision last;

    /* ballastctl: overrides, release, history (broker-ctl.c) */
    BrokerOverrides ovr;
    PolicyMode configured_mode;  /* the mode without the override (metadata or configuration) */
    gboolean released;           /* ballastctl release: KSM left alone until mode is set again */
    BrokerHistoryEntry *history; /* BROKER_HISTORY_MAX of them, from the first entry on */
    guint history_next, history_len;

    /* metrics: decisions by kind and PolicyReason, and what earlier
     * sessions rejected, by why */
    guint64 decisions[METRICS_KIND_N][POLICY_REASON_N];
    guint64 rejected_before_by[SESSION_REJECT_N];
} BrokerVm;

struct Broker {
    BrokerOptions opt;
    char *uri, *config_path, *control_path, *host_root;
    GPatternSpec *only;  /* --only: the domains we follow */
    char *connect_error; /* the last reconnect failure logged */
    Config cfg;
    Evlog *log;
    Virt *virt;
    KsmRun *ksm;
    Control *control;
    GMainLoop *loop;
    GHashTable *vms; /* uuid -> BrokerVm */
    guint tick_id, poll_id, kick_id;
    gint64 kick_end_us, kick_cost_us; /* the last pressure cycle: when it ended, what it cost */
    guint sig_ids[3];
    gboolean has_host;
    PolicyHost host;
    PolicyHost fleet;    /* host facts as this cycle gives them to the policy */
    gboolean host_tight; /* the last full cycle found the host short */
    gboolean host_error_logged;
    EvlogOnce *notes; /* plan notes by broker_note_key(), said once a minute */
    guint64 cycles;
    /* A cycle's working arrays, kept from one cycle to the next: at 1000
     * guests the facts alone are 1 MiB, and allocating them afresh every
     * second cost the tick its page faults (bench-scale). NULL while a
     * cycle holds them. */
    GPtrArray *cycle_vms;
    PolicyVm *cycle_pvms;
    gsize cycle_pvms_cap;
    gboolean stopping; /* broker_quit ran (on_stop acts once) */

    /* metrics (metrics/) and systemd (broker-systemd.c) */
    char *metrics_listen_opt; /* --metrics-listen, over [metrics] listen */
    MetricsServer *metrics;
    MetricsHistogram cycle_hist;
    gboolean sd_ready; /* READY=1 sent */
    char *sd_status;   /* the last STATUS= sent */
    guint watchdog_id;
};

/* broker-status.c: the control socket's command handler. */
json_object *broker_on_control(const char *cmd, json_object *req, gpointer user_data);

/* broker-ctl.c: the control commands that act (explain, set, release), the
 * overrides and the per-VM history. */
json_object *broker_ctl_command(Broker *b, const char *cmd, json_object *req, gboolean *handled);
BrokerVm *broker_ctl_find_vm(Broker *b, const char *name);
/* After the metadata and configuration settings: the overrides win. */
void broker_ctl_apply_overrides(BrokerVm *vm);
/* Remember a decision (called where broker_apply records vm->last). */
void broker_history_decision(Broker *b, BrokerVm *vm, PolicyReason code, const char *why_not);
/* A plan note: kept in the history of the VM it starts with ("vm: ..."). */
void broker_history_note(Broker *b, const char *text);
/* A note about one VM (stuck balloon and the like). */
void broker_history_vm_note(Broker *b, BrokerVm *vm, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* ballastctl release for every VM: on_stop = release. */
json_object *broker_ctl_release_all(Broker *b);

/* broker.c: helpers the other broker files share. */
gint64 broker_now_us(void);
guint64 broker_vm_floor(Broker *b, const BrokerVm *vm);
/* Mode, floor, shares from metadata and configuration, then the overrides. */
void broker_vm_apply_settings(Broker *b, BrokerVm *vm);
gint64 broker_grace_us(const Broker *b);
const char *broker_kind_name(PolicyActionKind kind);

/* broker-systemd.c: sd_notify(3) (a no-op outside a Type=notify unit) and
 * the metrics listener's life. */
void broker_sd_start(Broker *b);      /* arm the watchdog */
void broker_sd_cycle_done(Broker *b); /* READY=1 once connected and decided, STATUS= */
void broker_sd_reloading(Broker *b);  /* RELOADING=1 */
void broker_sd_reloaded(Broker *b);   /* READY=1 again */
void broker_sd_stopping(Broker *b);   /* STOPPING=1 */
char *broker_status_line(Broker *b);  /* the one-line STATUS= summary */
/* Start, move or stop the metrics listener for cfg (the next configuration):
 * FALSE (nothing changed) when the new address cannot be served. */
gboolean broker_metrics_apply(Broker *b, const Config *cfg, GError **error);
