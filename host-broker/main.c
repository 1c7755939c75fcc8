/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ballastd: the host broker. */
#include "ballast-config.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker.h"
#include "config.h"
#include "lock.h"

/* --check-config: validate, print the effective configuration on stdout,
 * warnings and errors on stderr (one line each); 0 when good, else 1. */
static int check_config(const char *path, gboolean explicit, gboolean strict)
{
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
    ConfigLoadFlags flags =
        (explicit ? CONFIG_LOAD_MUST_EXIST : 0) | (strict ? CONFIG_LOAD_STRICT : 0);
    Config cfg;

    if (!explicit && !g_file_test(path, G_FILE_TEST_EXISTS))
        g_printerr("ballastd: %s does not exist: every key at its default\n", path);
    config_init_defaults(&cfg);
    gboolean ok = config_load_file(&cfg, path, flags, warnings, errors, NULL);
    for (guint i = 0; i < warnings->len; i++)
        g_printerr("warning: %s\n", (char *)warnings->pdata[i]);
    for (guint i = 0; i < errors->len; i++)
        g_printerr("%s\n", (char *)errors->pdata[i]);
    if (ok) {
        g_autofree char *text = config_to_text(&cfg);
        fputs(text, stdout);
    }
    config_clear(&cfg);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    g_autofree char *uri = NULL, *config = NULL, *control = NULL, *event_log = NULL;
    g_autofree char *host_root = NULL, *only = NULL, *lock_file = NULL, *metrics_listen = NULL;
    g_autofree char *config_doc_format = NULL;
    gboolean dry_run = FALSE, verbose = FALSE, version = FALSE;
    gboolean check = FALSE, strict = FALSE;
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
        {"lock-file", 0, 0, G_OPTION_ARG_FILENAME, &lock_file,
         "one ballastd per host: flock this file (default " BALLAST_RUNSTATEDIR
         "/ballast/ballastd.lock)",
         "FILE"},
        {"only", 0, 0, G_OPTION_ARG_STRING, &only,
         "follow only the domains whose name matches GLOB (canaries, shared test hosts)", "GLOB"},
        {"metrics-listen", 0, 0, G_OPTION_ARG_STRING, &metrics_listen,
         "serve Prometheus metrics on ADDR:PORT (overrides [metrics] listen)", "ADDR:PORT"},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "log every event on stderr too", NULL},
        {"check-config", 0, 0, G_OPTION_ARG_NONE, &check,
         "validate the configuration file (--config, or FILE after the options), print the "
         "configuration in force and exit: 0 if good, 1 with one line per error",
         NULL},
        {"strict", 0, 0, G_OPTION_ARG_NONE, &strict,
         "unknown groups and keys in the configuration are errors, not warnings", NULL},
        {"print-config-doc", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &config_doc_format,
         "print documentation generated from the key table (markdown:GROUP, summary:GROUP, "
         "metadata, man, example)",
         "FORMAT"},
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
    if (config_doc_format != NULL) {
        g_autofree char *doc = config_doc(config_doc_format);
        if (doc == NULL) {
            g_printerr("ballastd: --print-config-doc %s: want markdown:GROUP, summary:GROUP, "
                       "metadata, man or example\n",
                       config_doc_format);
            return 2;
        }
        fputs(doc, stdout);
        return 0;
    }
    if (check && argc == 2) {
        g_free(config);
        config = g_strdup(argv[1]);
        argc--;
    }
    if (argc > 1) {
        g_printerr("ballastd: unexpected argument \"%s\" (see --help)\n", argv[1]);
        return 2;
    }
    if (version) {
        printf("ballastd %s\n", BALLAST_VERSION);
        return 0;
    }
    if (check)
        return check_config(config ? config : CONFIG_DEFAULT_PATH, config != NULL, strict);
    if (interval != 0 && (interval < 100 || interval > 60000)) {
        g_printerr("ballastd: --interval %d: want 100 to 60000 ms\n", interval);
        return 2;
    }
    if (control != NULL && control[0] != '/') {
        g_printerr("ballastd: --control %s: want an absolute path\n", control);
        return 2;
    }

    /* Before anything is touched: a second broker must not take over the
     * first one's control socket, balloons or KSM settings. */
    int lock_fd = lock_acquire(lock_file ? lock_file : lock_default_path(), &error);
    if (lock_fd < 0) {
        g_printerr("ballastd: %s\n", error->message);
        return 1;
    }

    BrokerOptions opt = {
        .uri = uri,
        .config_path = config,
        .config_explicit = config != NULL,
        .strict = strict,
        .dry_run = dry_run,
        .control_path = control,
        .event_log = event_log,
        .interval_ms = (guint)interval,
        .verbose = verbose,
        .host_root = host_root,
        .only = only,
        .metrics_listen = metrics_listen,
    };
    Broker *b = broker_new(&opt, &error);
    int rc = 0;
    if (b == NULL || !broker_run(b, &error)) {
        g_printerr("ballastd: %s\n", error->message);
        rc = 1;
    }
    /* The lock outlives the broker: a successor may start only once this
     * one has put the KSM settings back and closed its socket. */
    broker_free(b);
    lock_release(lock_fd);
    return rc;
}
