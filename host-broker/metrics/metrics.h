/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Prometheus metrics of ballastd (docs/metrics.md).
 *
 * Three parts: metrics_render() turns a MetricsSnapshot into the text
 * exposition format and is pure (tests feed it made-up snapshots);
 * metrics_snapshot() (metrics-broker.c) fills a snapshot from the broker's
 * state; metrics-server.c serves the text over HTTP with libsoup on the
 * opt-in listener ([metrics] listen, --metrics-listen).
 */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include "broker.h"
#include "policy.h"
#include "session.h"

/* Upper bounds (seconds) of ballast_cycle_duration_seconds; +Inf is implied.
 * A cycle is microseconds of arithmetic plus, when it acts, one libvirt call. */
#define METRICS_CYCLE_BUCKETS_N 12
extern const double metrics_cycle_buckets[METRICS_CYCLE_BUCKETS_N];

/* A cumulative histogram over metrics_cycle_buckets. */
typedef struct {
    guint64 le[METRICS_CYCLE_BUCKETS_N]; /* observations <= bucket bound (cumulative) */
    guint64 count;
    double sum;
} MetricsHistogram;

void metrics_histogram_observe(MetricsHistogram *h, double seconds);

#define METRICS_KIND_N 2 /* PolicyActionKind: deflate, inflate */

typedef struct {
    char *domain; /* libvirt name */
    gboolean agent_connected;
    gboolean has_report;
    double report_age_s;
    gboolean has_balloon; /* libvirt's balloon figures */
    guint64 actual_bytes, max_bytes;
    guint64 target_bytes;      /* 0: ballast set none since the guest started */
    guint64 floor_bytes;       /* effective floor */
    guint64 entitlement_bytes; /* 0: not computed */
    gboolean has_available;    /* from the agent's latest report */
    guint64 available_bytes;
    gboolean has_psi;
    double psi_some_avg10_ratio; /* 0..1 */
    guint64 decisions[METRICS_KIND_N][POLICY_REASON_N];
    gboolean has_ksm_merging;
    guint64 ksm_merging_pages;
    gboolean ksm_decided; /* the KSM module decided about this VM */
    gboolean ksm_excluded;
    char ksm_state[32]; /* why, as the KSM module names it ("never", "pays", ...) */
    guint64 rejected[SESSION_REJECT_N];
} MetricsVm;

typedef struct {
    const char *version;
    gboolean libvirt_connected;
    gboolean libvirt_answering; /* connected, no call late */
    gboolean has_host;
    guint64 host_available_bytes, host_reserve_bytes, host_short_bytes;
    gboolean has_ksm;
    guint64 ksm_pages_sharing;
    gint64 ksm_general_profit_bytes;
    MetricsHistogram cycle;
    MetricsVm *vms; /* sorted by domain */
    gsize n_vms;
} MetricsSnapshot;

void metrics_snapshot_free(MetricsSnapshot *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MetricsSnapshot, metrics_snapshot_free)

/* The text exposition format (version 0.0.4) of s. Pure. */
char *metrics_render(const MetricsSnapshot *s);

/* The broker's state now (metrics-broker.c). */
MetricsSnapshot *metrics_snapshot(Broker *b);

/* ---- the listener (metrics-server.c) ---- */

/* Parse "ADDR:PORT" ("127.0.0.1:9178", "[::1]:9178"): a literal IP address
 * and a port from 1 to 65535. FALSE with a one-line message otherwise. */
gboolean metrics_parse_listen(const char *text, GSocketAddress **address, GError **error);

typedef char *(*MetricsRenderFunc)(gpointer user_data);

typedef struct MetricsServer MetricsServer;

/* Listen on listen (metrics_parse_listen) and answer GET /metrics with
 * render(user_data) on the thread-default main context. NULL with a one-line
 * error when the address is bad or cannot be bound (in use, not local). */
MetricsServer *metrics_server_new(const char *listen, MetricsRenderFunc render, gpointer user_data,
                                  GError **error);
void metrics_server_free(MetricsServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MetricsServer, metrics_server_free)
const char *metrics_server_listen(const MetricsServer *server);
