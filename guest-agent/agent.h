/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The agent: ties sampler, pressure decisions, PSI trigger and the channel
 * together in one GLib main loop on one thread.
 */
#pragma once

#include <glib.h>

/* After a peer of another protocol major, wait this long before trying
 * again: it is not going to change soon, and retrying must not spin. */
#define AGENT_VERSION_RETRY_MS 30000
/* Re-read the balloon facts this often while connected: hello is sent again
 * when they change (e.g. the virtio_balloon module got loaded). */
#define AGENT_REDETECT_MS 30000

typedef struct {
    const char *root;    /* "/" by default */
    const char *port;    /* NULL: find by name */
    guint32 interval_ms; /* default report interval */
    gboolean once;       /* hello + one report, then exit */
} AgentOptions;

typedef struct {
    guint64 reports;       /* reports written */
    guint64 hellos;        /* hellos written */
    guint64 pongs;         /* pongs written */
    guint64 bad_lines;     /* input lines that did not decode */
    guint64 unknown_types; /* input messages of a type we do not know or expect */
} AgentStats;

typedef struct Agent Agent;

Agent *agent_new(const AgentOptions *opts, GError **error);
void agent_free(Agent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Agent, agent_free)

/* Run the main loop until SIGTERM/SIGINT (or --once is done). Exit status. */
int agent_run(Agent *agent);

/* For tests that drive the default main context themselves: open the port
 * (agent_run does this), and watch fd as if it were an armed PSI trigger. */
void agent_start(Agent *agent);
void agent_attach_trigger_fd(Agent *agent, int fd, GIOCondition cond);

const AgentStats *agent_stats(const Agent *agent);
