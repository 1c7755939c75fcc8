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
    Backoff reopen;          /* reopening the channel after a failed or short session */
    gboolean other_major;    /* the agent speaks another protocol major */
    guint64 rejected_before; /* rejected by earlier sessions */
    char *open_error;        /* the channel open error last logged */
    gint64 last_kick_us;     /* last pressure-driven cycle this agent asked for */
    guint request_id;        /* pending request for a report after a balloon change */

    /* what the policy remembers, and what we did */
    PolicyVmMemory memory;
    guint64 target_kib;      /* the last target a set-memory call set; 0: none */
    gint64 target_at_us;     /* ... when */
    gint64 setmem_failed_us; /* when the last set-memory call failed; 0: it worked */
    BrokerDecision last;
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
    EvlogOnce *notes; /* plan notes by broker_note_key(), said once a minute */
    guint64 cycles;
};

/* broker-status.c: the control socket's command handler. */
json_object *broker_on_control(const char *cmd, json_object *req, gpointer user_data);

/* broker.c: helpers the other broker files share. */
gint64 broker_now_us(void);
guint64 broker_vm_floor(Broker *b, const BrokerVm *vm);
gint64 broker_grace_us(const Broker *b);
const char *broker_kind_name(PolicyActionKind kind);
