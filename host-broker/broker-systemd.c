/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ballastd as a systemd service (Type=notify): READY=1 once libvirt is
 * connected and a first cycle ran, a one-line STATUS=, RELOADING=1 around a
 * reload, STOPPING=1, and WATCHDOG=1 from the main loop while WatchdogSec=
 * is set. Outside systemd (no NOTIFY_SOCKET) sd_notify() does nothing. Also
 * the life of the metrics listener, which follows the configuration.
 */
#include "ballast-config.h"

#include <systemd/sd-daemon.h>

#include "broker-private.h"

#define MIB 1024

static void sd_send(const char *text)
{
    /* A failure to notify is systemd's to notice (start timeout, watchdog):
     * nothing here can do better than carry on. */
    (void)sd_notify(0, text);
}

static gboolean on_watchdog(gpointer user_data)
{
    sd_send("WATCHDOG=1");
    return G_SOURCE_CONTINUE;
}

void broker_sd_start(Broker *b)
{
    guint64 usec = 0;

    /* Ping at half the period: the loop that pings is the loop that decides,
     * so a wedged loop (a hung libvirt call) is what the watchdog catches. */
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0 && b->watchdog_id == 0)
        b->watchdog_id = g_timeout_add(MAX(usec / 2000, 1), on_watchdog, b);
}

char *broker_status_line(Broker *b)
{
    GHashTableIter it;
    gpointer v;
    guint running = 0, agents = 0;
    guint64 decisions = 0;

    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        BrokerVm *vm = v;
        running += vm->active;
        agents += vm->session != NULL;
        for (guint k = 0; k < METRICS_KIND_N; k++)
            for (guint r = 0; r < POLICY_REASON_N; r++)
                decisions += vm->decisions[k][r];
    }
    GString *s = g_string_new(NULL);
    if (!virt_is_connected(b->virt))
        g_string_append(s, "waiting for libvirt; ");
    g_string_append_printf(s, "%u running VMs, %u agents", running, agents);
    if (b->has_host) {
        guint64 reserve = policy_host_reserve_kib(&b->host, &b->cfg.policy);
        g_string_append_printf(s, "; host %" G_GUINT64_FORMAT " MiB available",
                               b->host.mem_available_kib / MIB);
        if (reserve > b->host.mem_available_kib)
            g_string_append_printf(s, ", %" G_GUINT64_FORMAT " MiB short",
                                   (reserve - b->host.mem_available_kib) / MIB);
    }
    g_string_append_printf(s, "; %" G_GUINT64_FORMAT " decisions%s", decisions,
                           b->opt.dry_run ? " (dry run)" : "");
    return g_string_free(s, FALSE);
}

void broker_sd_cycle_done(Broker *b)
{
    g_autofree char *line = broker_status_line(b);

    if (!b->sd_ready && virt_is_connected(b->virt)) {
        g_autofree char *msg = g_strdup_printf("READY=1\nSTATUS=%s", line);
        b->sd_ready = TRUE;
        sd_send(msg);
    } else if (g_strcmp0(line, b->sd_status) != 0) {
        g_autofree char *msg = g_strdup_printf("STATUS=%s", line);
        sd_send(msg);
    } else {
        return;
    }
    g_free(b->sd_status);
    b->sd_status = g_steal_pointer(&line);
}

void broker_sd_reloading(Broker *b)
{
    /* MONOTONIC_USEC: systemd >= 253 matches it against the reload it asked
     * for; older ones ignore it. */
    g_autofree char *msg = g_strdup_printf("RELOADING=1\nMONOTONIC_USEC=%" G_GINT64_FORMAT
                                           "\nSTATUS=reloading the configuration",
                                           g_get_monotonic_time());
    sd_send(msg);
}

void broker_sd_reloaded(Broker *b)
{
    g_autofree char *line = broker_status_line(b);
    g_autofree char *msg = g_strdup_printf("READY=1\nSTATUS=%s", line);

    sd_send(msg);
    g_free(b->sd_status);
    b->sd_status = g_steal_pointer(&line);
}

void broker_sd_stopping(Broker *b)
{
    sd_send("STOPPING=1\nSTATUS=stopping");
}

/* ---- the metrics listener ---- */

static char *render_metrics(gpointer user_data)
{
    g_autoptr(MetricsSnapshot) s = metrics_snapshot(user_data);
    return metrics_render(s);
}

gboolean broker_metrics_apply(Broker *b, const Config *cfg, GError **error)
{
    const char *want = b->metrics_listen_opt ? b->metrics_listen_opt : cfg->metrics_listen;
    const char *have = b->metrics ? metrics_server_listen(b->metrics) : "";

    if (g_strcmp0(want, have) == 0)
        return TRUE;
    if (want[0] == '\0') {
        g_clear_pointer(&b->metrics, metrics_server_free);
        evlog_say(b->log, TRUE, "metrics listener stopped");
        return TRUE;
    }
    MetricsServer *next = metrics_server_new(want, render_metrics, b, error);
    if (next == NULL)
        return FALSE;
    metrics_server_free(b->metrics);
    b->metrics = next;
    evlog_say(b->log, TRUE, "metrics on http://%s/metrics", want);
    return TRUE;
}
