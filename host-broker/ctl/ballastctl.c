/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ballastctl: ask a running ballastd for its status, watch it, reload it. */
#include "ballast-config.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <json-c/json.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CTL_RESPONSE_MAX (16 * 1024 * 1024)
#define CTL_WIDTH        100

static json_object *ctl_request(const char *path, const char *cmd, GError **error)
{
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    g_autoptr(GSocketConnection) conn = NULL;
    g_autofree char *req = g_strdup_printf("{\"cmd\":\"%s\"}\n", cmd);
    g_autoptr(GString) buf = g_string_new(NULL);
    char chunk[65536];

    g_socket_client_set_timeout(client, 10);
    conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr), NULL, error);
    if (conn == NULL) {
        g_prefix_error(error, "%s: ", path);
        return NULL;
    }
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
    GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
    if (!g_output_stream_write_all(out, req, strlen(req), NULL, NULL, error))
        return NULL;
    for (;;) {
        gssize n = g_input_stream_read(in, chunk, sizeof(chunk), NULL, error);
        if (n < 0)
            return NULL;
        if (n == 0)
            break;
        g_string_append_len(buf, chunk, n);
        if (buf->len > CTL_RESPONSE_MAX) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE, "response too large");
            return NULL;
        }
    }
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, buf->str, (int)buf->len);
    json_tokener_free(tok);
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "bad response from ballastd");
        return NULL;
    }
    return o;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str(json_object *o, const char *key, const char *dflt)
{
    json_object *v = get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : dflt;
}

/* KSM column: excl (in effect), pend(ing), fail(ed), next(-boot), ~exc (dry
 * run), - (shared). */
static const char *ksm_column(json_object *ksm)
{
    const char *state = str(ksm, "exclusion", "");

    if (json_object_get_boolean(get(ksm, "excluded")))
        return "excl";
    if (json_object_get_boolean(get(ksm, "would_exclude")))
        return "~exc";
    if (g_str_equal(state, "pending"))
        return "pend";
    if (g_str_equal(state, "failed"))
        return "fail";
    if (g_str_equal(state, "next-boot"))
        return "next";
    return "-";
}

/* "512" (MiB) or "-" */
static char *mib(json_object *v)
{
    if (v == NULL)
        return g_strdup("-");
    return g_strdup_printf("%" G_GINT64_FORMAT, json_object_get_int64(v) / 1024);
}

static void print_status(json_object *st)
{
    json_object *host = get(st, "host");
    json_object *vms = get(st, "vms");
    json_object *recent = get(st, "recent");
    gint64 now = json_object_get_int64(get(st, "mono_us"));
    g_autofree char *htotal = mib(get(host, "mem_total_kib"));
    g_autofree char *havail = mib(get(host, "mem_available_kib"));
    json_object *hpsi = get(host, "psi_some_avg10");

    printf("ballastd %s, %s%s: %.60s\n", str(st, "version", "?"),
           json_object_get_boolean(get(st, "connected")) ? "connected" : "DISCONNECTED",
           json_object_get_boolean(get(st, "dry_run")) ? ", DRY-RUN" : "", str(st, "uri", "?"));
    printf("host: %s of %s MiB available, PSI some avg10 %s%%\n", havail, htotal,
           hpsi ? json_object_get_string(hpsi) : "-");
    /* 100 columns: the reason of each VM's last decision gets its own line. */
    printf("%-14s %-7s %-7s %-15s %-7s %6s %5s %5s %-4s %s\n", "VM", "MODE", "STATE",
           "MiB act/tgt/max", "AGENT", "AVAIL", "PSI%", "AGE", "KSM", "LAST (~ not applied)");
    for (size_t i = 0; vms && i < json_object_array_length(vms); i++) {
        json_object *vm = json_object_array_get_idx(vms, i);
        json_object *ag = get(vm, "agent");
        json_object *ld = get(vm, "last_decision");
        json_object *ksm = get(vm, "ksm");
        g_autofree char *act = mib(get(vm, "actual_kib"));
        g_autofree char *tgt = mib(get(vm, "target_kib"));
        g_autofree char *max = mib(get(vm, "max_kib"));
        g_autofree char *balloon = g_strdup_printf("%s/%s/%s", act, tgt, max);
        g_autofree char *avail = mib(get(ag, "available_kib"));
        json_object *psi = get(ag, "psi_some_avg10");
        json_object *age = get(ag, "report_age_ms");
        const char *agent =
            !json_object_get_boolean(get(ag, "connected"))
                ? (json_object_get_boolean(get(ag, "other_major")) ? "other-v" : "-")
            : json_object_get_boolean(get(ag, "stale")) ? "stale"
                                                        : str(ag, "version", "?");
        g_autofree char *psis =
            psi ? g_strdup_printf("%.1f", json_object_get_double(psi)) : g_strdup("-");
        g_autofree char *ages =
            age ? g_strdup_printf("%.1fs", json_object_get_int64(age) / 1e3) : g_strdup("-");
        g_autofree char *last = NULL;
        if (ld) {
            gint64 ago = (now - json_object_get_int64(get(ld, "mono_us"))) / G_USEC_PER_SEC;
            g_autofree char *t = mib(get(ld, "target_kib"));
            last = g_strdup_printf("%s%s %s %" G_GINT64_FORMAT "s",
                                   json_object_get_boolean(get(ld, "applied")) ? "" : "~",
                                   str(ld, "kind", "?"), t, ago);
        }
        printf("%-14.14s %-7s %-7.7s %-15s %-7.7s %6s %5s %5s %-4s %s\n", str(vm, "name", "?"),
               str(vm, "mode", "?"), str(vm, "state", "?"), balloon, agent, avail, psis, ages,
               ksm_column(ksm), last ? last : "-");
        if (ld)
            printf("    %.*s\n", CTL_WIDTH - 4, str(ld, "reason", ""));
        if (get(vm, "entitlement_kib")) {
            g_autofree char *ent = mib(get(vm, "entitlement_kib"));
            printf("    host short: entitled to %s MiB\n", ent);
        }
        if (get(vm, "untrusted"))
            printf("    untrusted: %.*s\n", CTL_WIDTH - 15, str(vm, "untrusted", ""));
    }
    size_t n = recent ? json_object_array_length(recent) : 0;
    if (n > 0)
        printf("\nrecent:\n");
    for (size_t i = n > 8 ? n - 8 : 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(recent, i);
        gint64 ago = (now - json_object_get_int64(get(e, "mono_us"))) / G_USEC_PER_SEC;
        printf("  %5" G_GINT64_FORMAT "s ago  %.*s\n", ago, CTL_WIDTH - 14, str(e, "text", ""));
    }
}

static int cmd_status(const char *path, gboolean as_json)
{
    g_autoptr(GError) e = NULL;
    json_object *resp = ctl_request(path, "status", &e);

    if (resp == NULL) {
        g_printerr("ballastctl: %s\n", e->message);
        return 1;
    }
    json_object *st = get(resp, "status");
    if (!json_object_get_boolean(get(resp, "ok")) || st == NULL) {
        g_printerr("ballastctl: %s\n", str(resp, "error", "status failed"));
        json_object_put(resp);
        return 1;
    }
    if (as_json)
        printf("%s\n", json_object_to_json_string_ext(st, JSON_C_TO_STRING_PRETTY |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
    else
        print_status(st);
    json_object_put(resp);
    return 0;
}

static int cmd_watch(const char *path)
{
    for (;;) {
        g_autoptr(GError) e = NULL;
        json_object *resp = ctl_request(path, "status", &e);
        printf("\033[H\033[2J");
        if (resp == NULL) {
            printf("ballastd not reachable: %s\n", e->message);
        } else {
            json_object *st = get(resp, "status");
            if (st)
                print_status(st);
            json_object_put(resp);
        }
        fflush(stdout);
        g_usleep(G_USEC_PER_SEC);
    }
    return 0;
}

static int cmd_reload(const char *path)
{
    g_autoptr(GError) e = NULL;
    json_object *resp = ctl_request(path, "reload", &e);

    if (resp == NULL) {
        g_printerr("ballastctl: %s\n", e->message);
        return 1;
    }
    int rc = 0;
    if (json_object_get_boolean(get(resp, "ok"))) {
        printf("configuration reloaded\n");
    } else {
        g_printerr("ballastctl: reload failed: %s\n", str(resp, "error", "?"));
        rc = 1;
    }
    json_object_put(resp);
    return rc;
}

int main(int argc, char **argv)
{
    g_autofree char *control = NULL;
    gboolean as_json = FALSE, version = FALSE;
    const GOptionEntry entries[] = {
        {"control", 0, 0, G_OPTION_ARG_FILENAME, &control,
         "ballastd's control socket (default " BALLAST_RUNSTATEDIR "/ballast/ballastd.sock)",
         "PATH"},
        {"json", 'j', 0, G_OPTION_ARG_NONE, &as_json, "status: print the raw JSON object", NULL},
        {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "print the version and exit", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("status [--json] | watch | reload");
    g_autoptr(GError) error = NULL;

    setlocale(LC_ALL, "");
    /* JSON numbers are written and read with a '.', whatever the locale. */
    setlocale(LC_NUMERIC, "C");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("ballastctl: %s (see --help)\n", error->message);
        return 2;
    }
    if (version) {
        printf("ballastctl %s\n", BALLAST_VERSION);
        return 0;
    }
    const char *path = control ? control : BALLAST_RUNSTATEDIR "/ballast/ballastd.sock";
    const char *cmd = argc > 1 ? argv[1] : "status";
    if (argc > 2) {
        g_printerr("ballastctl: unexpected argument \"%s\" (see --help)\n", argv[2]);
        return 2;
    }
    if (strcmp(cmd, "status") == 0)
        return cmd_status(path, as_json);
    if (strcmp(cmd, "watch") == 0)
        return cmd_watch(path);
    if (strcmp(cmd, "reload") == 0)
        return cmd_reload(path);
    g_printerr("ballastctl: unknown command \"%s\" (status, watch, reload)\n", cmd);
    return 2;
}
