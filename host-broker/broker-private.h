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
#include "ksm-run.h"
#include "metrics.h"
#include "policy.h"
#include "session.h"
#include "virt.h"
#include "broker.h"

typedef struct {
    gboolean has;
    PolicyActionKind kind;
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
    gint64 next_open_us;
    guint session_failures;
    gboolean other_major;    /* the agent speaks another protocol major */
    guint64 rejected_before; /* rejected by earlier sessions */
    char last_open_error[256];
    gint64 last_kick_us; /* last pressure-driven cycle this agent asked for */
    guint request_id;    /* pending request for a report after a balloon change */

    /* what the policy remembers, and what we did */
    PolicyVmMemory memory;
    guint64 target_kib;
    gint64 target_at_us;
    BrokerDecision last;
    guint floor_asks;      /* floor safety net: asks since the balloon was last at its floor */
    gint64 floor_asked_us; /* ... and when the last one was made */

    /* the policy's entitlement for this VM (its shares of what the host can
     * give); 0 until computed */
    guint64 entitlement_kib;

    /* metrics: decisions by kind and PolicyReason, and what earlier
     * sessions rejected, by why */
    guint64 decisions[METRICS_KIND_N][POLICY_REASON_N];
    guint64 rejected_before_by[SESSION_REJECT_N];

    /* KSM (the KSM module fills these in) */
    gboolean ksm_excluded;
    char ksm_reason[128];
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
    guint sig_ids[3];
    gboolean has_host;
    PolicyHost host;
    gboolean host_error_logged;
    GHashTable *notes; /* broker_note_key() -> BrokerNote */
    guint64 cycles;

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

/* broker.c: helpers the other broker files share. */
gint64 broker_now_us(void);
guint64 broker_vm_floor(Broker *b, const BrokerVm *vm);
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
