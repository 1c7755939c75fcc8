/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ballastd's loop: follow the domains (virt), talk to their agents (session),
 * collect host and VM facts, call the policy, apply its plan and log every
 * action with its reason (evlog).
 *
 * A cycle runs every tick_ms and at once on every pressure report from any
 * agent, so that a guest under pressure gets memory within milliseconds.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "session.h"
#include "virt.h"

typedef struct {
    const char *uri;          /* libvirt URI */
    const char *config_path;  /* ballastd.conf */
    gboolean config_explicit; /* --config given: a missing file is an error at start */
    gboolean strict;          /* unknown groups and keys are errors, not warnings */
    gboolean dry_run;         /* decide and log, never act */
    const char *control_path; /* NULL: from the configuration */
    const char *event_log;    /* NULL: none */
    guint interval_ms;        /* 0: from the configuration */
    gboolean verbose;
    const char *host_root;      /* NULL: "/" */
    const char *only;           /* NULL: every domain; else only names matching this glob */
    const char *metrics_listen; /* NULL: from the configuration ([metrics] listen) */
    /* Tests and benchmarks only: a hypervisor other than libvirt (virt.h). */
    const VirtBackend *backend;
    gpointer backend_data;
} BrokerOptions;

typedef struct Broker Broker;

/* Load the configuration and open the event log; errors are the user's (exit 1). */
Broker *broker_new(const BrokerOptions *options, GError **error);
void broker_free(Broker *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Broker, broker_free)

/* Open the control socket, connect to libvirt and run until broker_quit().
 * FALSE only when it could not start (control socket, a --connect URI that
 * can never work); a libvirtd that is not up yet is waited for. */
gboolean broker_run(Broker *b, GError **error);
void broker_quit(Broker *b, const char *why);

/* Re-read the configuration (SIGHUP, ballastctl reload). On error, a missing
 * file included (even on the default path, which may be absent at start), the
 * running configuration stays in force and error says why in one line. */
gboolean broker_reload(Broker *b, GError **error);

/*
 * Give the VM named vm_name an agent session over transport (taken over)
 * instead of its libvirt channel: for tests, which have no channels on
 * libvirt's test driver. FALSE when no running VM has that name.
 */
gboolean broker_attach_transport(Broker *b, const char *vm_name, SessionTransport *transport);

/* The shape of a plan note (numbers replaced, digits inside names kept): one
 * shape is logged once a minute however its numbers move. Pure. */
char *broker_note_key(const char *text);

/* The status object of the control protocol. */
json_object *broker_status(Broker *b);
