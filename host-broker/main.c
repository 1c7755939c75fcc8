/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ballastd: the host broker. */
#include "ballast-config.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker.h"

int main(int argc, char **argv)
{
    g_autofree char *uri = NULL, *config = NULL, *control = NULL, *event_log = NULL;
    g_autofree char *host_root = NULL, *only = NULL, *metrics_listen = NULL;
    gboolean dry_run = FALSE, verbose = FALSE, version = FALSE;
    gint interval = 0;
    const GOptionEntry entries[] = {
        {"connect", 'c', 0, G_OPTION_ARG_STRING, &uri, "libvirt URI (default qemu:///system)",
         "URI"},
        {"config", 0, 0, G_OPTION_ARG_FILENAME, &config,
         "configuration file (default " BALLAST_SYSCONFDIR "/ballast/ballastd.conf)", "FILE"},
        {"dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "decide and log, never act", NULL},
        {"control", 0, 0, G_OPTION_ARG_FILENAME, &control,
         "control socket (default " BALLAST_RUNSTATEDIR "/ballast/ballastd.sock)", "PATH"},
        {"event-log", 0, 0, G_OPTION_ARG_FILENAME, &event_log,
         "append one JSON object per event to FILE", "FILE"},
        {"interval", 0, 0, G_OPTION_ARG_INT, &interval,
         "report interval asked of agents and decision tick (overrides the configuration)", "MS"},
        {"host-root", 0, 0, G_OPTION_ARG_FILENAME, &host_root,
         "read host /proc facts under DIR (tests)", "DIR"},
        {"only", 0, 0, G_OPTION_ARG_STRING, &only,
         "follow only the domains whose name matches GLOB (canaries, shared test hosts)", "GLOB"},
        {"metrics-listen", 0, 0, G_OPTION_ARG_STRING, &metrics_listen,
         "serve Prometheus metrics on ADDR:PORT (overrides [metrics] listen)", "ADDR:PORT"},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "log every event on stderr too", NULL},
        {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "print the version and exit", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- ballast host broker");
    g_autoptr(GError) error = NULL;

    setlocale(LC_ALL, "");
    /* JSON numbers are written and read with a '.', whatever the locale. */
    setlocale(LC_NUMERIC, "C");
    /* A closed stderr pipe or peer must cost a write error, not the daemon. */
    signal(SIGPIPE, SIG_IGN);
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, "Follows every libvirt domain, reads its ballast agent and "
                                      "balloons its memory.");
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("ballastd: %s (see --help)\n", error->message);
        return 2;
    }
    if (argc > 1) {
        g_printerr("ballastd: unexpected argument \"%s\" (see --help)\n", argv[1]);
        return 2;
    }
    if (version) {
        printf("ballastd %s\n", BALLAST_VERSION);
        return 0;
    }
    if (interval != 0 && (interval < 100 || interval > 60000)) {
        g_printerr("ballastd: --interval %d: want 100 to 60000 ms\n", interval);
        return 2;
    }
    if (control != NULL && control[0] != '/') {
        g_printerr("ballastd: --control %s: want an absolute path\n", control);
        return 2;
    }

    BrokerOptions opt = {
        .uri = uri,
        .config_path = config,
        .config_explicit = config != NULL,
        .dry_run = dry_run,
        .control_path = control,
        .event_log = event_log,
        .interval_ms = (guint)interval,
        .verbose = verbose,
        .host_root = host_root,
        .only = only,
        .metrics_listen = metrics_listen,
    };
    g_autoptr(Broker) b = broker_new(&opt, &error);
    if (b == NULL) {
        g_printerr("ballastd: %s\n", error->message);
        return 1;
    }
    if (!broker_run(b, &error)) {
        g_printerr("ballastd: %s\n", error->message);
        return 1;
    }
    return 0;
}
