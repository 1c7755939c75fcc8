/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ballastctl: ask a running ballastd for its status, watch it, reload it. */
#include "ballast-config.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <json-c/json.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CTL_RESPONSE_MAX (16 * 1024 * 1024)
#define CTL_WIDTH        100

/* Exit codes (ballastctl(1)). */
enum {
    CTL_OK = 0,
    CTL_REFUSED = 1,   /* a bad request, or ballastd said no */
    CTL_NO_BROKER = 2, /* no broker there, cannot connect, no permission */
};

/* Send one request object (taken), return the response object; NULL with
 * error when ballastd cannot be reached or answers nonsense. */
static json_object *ctl_send(const char *path, json_object *request, GError **error)
{
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    g_autoptr(GSocketConnection) conn = NULL;
    g_autoptr(GError) e = NULL;
    g_autofree char *req = g_strdup_printf(
        "%s\n", json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    g_autoptr(GString) buf = g_string_new(NULL);
    char chunk[65536];

    json_object_put(request);
    g_socket_client_set_timeout(client, 10);
    conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr), NULL, &e);
    if (conn == NULL) {
        const char *hint = g_error_matches(e, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)
                               ? " (root, or a member of [broker] control_group, only)"
                           : g_error_matches(e, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
                                   g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)
                               ? " (is ballastd running?)"
                               : "";
        g_set_error(error, G_IO_ERROR, e->code, "cannot reach ballastd at %s: %s%s", path,
                    e->message, hint);
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

static json_object *request_new(const char *cmd)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "cmd", json_object_new_string(cmd));
    return o;
}

static json_object *names_array(char **names, int n)
{
    json_object *a = json_object_new_array();
    for (int i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(names[i]));
    return a;
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

static gboolean boolean(json_object *o, const char *key)
{
    return json_object_get_boolean(get(o, key));
}

/* "1.5s" or "-" */
static char *age_s(json_object *ms)
{
    return ms ? g_strdup_printf("%.1fs", json_object_get_int64(ms) / 1e3) : g_strdup("-");
}

static void print_host(json_object *st)
{
    json_object *host = get(st, "host");
    json_object *ksm = get(st, "ksm");
    g_autofree char *htotal = mib(get(host, "mem_total_kib"));
    g_autofree char *havail = mib(get(host, "mem_available_kib"));
    g_autofree char *reserve = mib(get(host, "reserve_kib"));
    g_autofree char *shortby = mib(get(host, "short_kib"));
    json_object *hpsi = get(host, "psi_some_avg10");
    json_object *profit = get(ksm, "general_profit");
    g_autofree char *profit_mib =
        profit ? g_strdup_printf("%" G_GINT64_FORMAT, json_object_get_int64(profit) / (1024 * 1024))
               : g_strdup("-");

    /* "answering" is absent from older daemons: they block instead. */
    gboolean answering = get(st, "answering") == NULL || boolean(st, "answering");
    printf("ballastd %s, %s%s: %.60s (on stop: %s)\n", str(st, "version", "?"),
           !boolean(st, "connected") ? "DISCONNECTED"
           : answering               ? "connected"
                                     : "connected, LIBVIRTD NOT ANSWERING",
           boolean(st, "dry_run") ? ", DRY-RUN" : "", str(st, "uri", "?"),
           str(st, "on_stop", "keep"));
    printf("host: %s of %s MiB available, reserve %s MiB, short by %s MiB, PSI some avg10 %s%%\n",
           havail, htotal, reserve, shortby, hpsi ? json_object_get_string(hpsi) : "-");
    if (ksm && boolean(ksm, "available"))
        printf("KSM: run %s, pages shared %s, sharing %s, general profit %s MiB%s\n",
               get(ksm, "run") ? json_object_get_string(get(ksm, "run")) : "-",
               get(ksm, "pages_shared") ? json_object_get_string(get(ksm, "pages_shared")) : "-",
               get(ksm, "pages_sharing") ? json_object_get_string(get(ksm, "pages_sharing")) : "-",
               profit_mib, boolean(ksm, "owned") ? ", managed by ballastd" : "");
}

/* The second line of a VM: agent, trust, overrides, last decision. */
static void print_vm_details(json_object *vm, gint64 now)
{
    json_object *ag = get(vm, "agent");
    json_object *ld = get(vm, "last_decision");
    json_object *ov = get(vm, "overrides");
    json_object *trust = get(vm, "trust");
    g_autoptr(GString) l = g_string_new("    ");

    if (boolean(ag, "connected"))
        g_string_append_printf(l, "agent %s protocol %s", str(ag, "version", "?"),
                               str(ag, "protocol", "?"));
    else
        g_string_append(l, boolean(ag, "other_major") ? "agent speaks another protocol major"
                                                      : "no agent");
    if (trust && !boolean(trust, "trusted"))
        g_string_append_printf(l, "; UNTRUSTED: %s", str(trust, "why", "?"));
    if (ov && json_object_object_length(ov) > 0) {
        g_string_append(l, "; override:");
        json_object_object_foreach(ov, k, v)
        {
            if (strcmp(k, "floor_kib") == 0) {
                g_autofree char *m = mib(v);
                g_string_append_printf(l, " floor %s MiB", m);
            } else {
                g_string_append_printf(l, " %s %s", k, json_object_get_string(v));
            }
        }
    }
    if (boolean(vm, "released"))
        g_string_append(l, "; RELEASED");
    printf("%.*s\n", CTL_WIDTH, l->str);
    if (ld) {
        gint64 ago = (now - json_object_get_int64(get(ld, "mono_us"))) / G_USEC_PER_SEC;
        g_autofree char *t = mib(get(ld, "target_kib"));
        printf("    last: %s%s to %s MiB [%s] %" G_GINT64_FORMAT "s ago\n",
               boolean(ld, "applied") ? "" : "~", str(ld, "kind", "?"), t,
               str(ld, "reason_code", "?"), ago);
        printf("      %.*s\n", CTL_WIDTH - 6, str(ld, "reason", ""));
    }
}

static void print_status(json_object *st)
{
    json_object *vms = get(st, "vms");
    json_object *recent = get(st, "recent");
    gint64 now = json_object_get_int64(get(st, "mono_us"));

    print_host(st);
    /* 100 columns; "*" marks a mode set at run time (ballastctl set). */
    printf("%-14s %-8s %-7s %-24s %-7s %-5s %6s %5s %5s %s\n", "VM", "MODE", "STATE",
           "MiB act/tgt/flr/ent/max", "AGENT", "TRUST", "AVAIL", "PSI%", "AGE", "KSM");
    for (size_t i = 0; vms && i < json_object_array_length(vms); i++) {
        json_object *vm = json_object_array_get_idx(vms, i);
        json_object *ag = get(vm, "agent");
        json_object *ksm = get(vm, "ksm");
        g_autofree char *act = mib(get(vm, "actual_kib"));
        g_autofree char *tgt = mib(get(vm, "target_kib"));
        g_autofree char *flr = mib(get(vm, "floor_kib"));
        g_autofree char *ent = mib(get(vm, "entitlement_kib"));
        g_autofree char *max = mib(get(vm, "max_kib"));
        g_autofree char *balloon = g_strdup_printf("%s/%s/%s/%s/%s", act, tgt, flr, ent, max);
        g_autofree char *avail = mib(get(ag, "available_kib"));
        json_object *psi = get(ag, "psi_some_avg10");
        g_autofree char *ages = age_s(get(ag, "report_age_ms"));
        g_autofree char *mode = g_strdup_printf("%s%s", str(vm, "mode", "?"),
                                                get(get(vm, "overrides"), "mode") ? "*" : "");
        const char *agent = !boolean(ag, "connected") ? "-"
                            : boolean(ag, "stale")    ? "stale"
                                                      : str(ag, "version", "?");
        g_autofree char *psis =
            psi ? g_strdup_printf("%.1f", json_object_get_double(psi)) : g_strdup("-");
        printf("%-14.14s %-8s %-7.7s %-24s %-7.7s %-5s %6s %5s %5s %s\n", str(vm, "name", "?"),
               mode, str(vm, "state", "?"), balloon, agent,
               boolean(get(vm, "trust"), "trusted") ? "ok" : "NO", avail, psis, ages,
               ksm_column(ksm));
        print_vm_details(vm, now);
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

static void print_json(json_object *o)
{
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Send request; NULL (and *rc set) when ballastd could not be asked or said no. */
static json_object *ask(const char *path, json_object *request, int *rc)
{
    g_autoptr(GError) e = NULL;
    json_object *resp = ctl_send(path, request, &e);

    if (resp == NULL) {
        g_printerr("ballastctl: %s\n", e->message);
        *rc = CTL_NO_BROKER;
        return NULL;
    }
    if (!boolean(resp, "ok") && get(resp, "vms") == NULL) {
        g_printerr("ballastctl: %s\n", str(resp, "error", "refused"));
        json_object_put(resp);
        *rc = CTL_REFUSED;
        return NULL;
    }
    *rc = CTL_OK;
    return resp;
}

static int cmd_status(const char *path, char **vms, int n, gboolean as_json)
{
    json_object *req = request_new("status");
    int rc;

    if (n > 0)
        json_object_object_add(req, "vms", names_array(vms, n));
    json_object *resp = ask(path, req, &rc);
    if (resp == NULL)
        return rc;
    json_object *st = get(resp, "status");
    if (as_json)
        print_json(st);
    else
        print_status(st);
    json_object_put(resp);
    return CTL_OK;
}

static int cmd_watch(const char *path)
{
    for (;;) {
        g_autoptr(GError) e = NULL;
        json_object *resp = ctl_send(path, request_new("status"), &e);
        printf("\033[H\033[2J");
        if (resp == NULL) {
            printf("%s\n", e->message);
        } else {
            json_object *st = get(resp, "status");
            if (st)
                print_status(st);
            json_object_put(resp);
        }
        fflush(stdout);
        g_usleep(G_USEC_PER_SEC);
    }
    return CTL_OK;
}

static void print_explain(json_object *resp)
{
    json_object *entries = get(resp, "entries");
    size_t n = entries ? json_object_array_length(entries) : 0;

    printf("%s: %zu entr%s, newest first (%s kept; at most %s, in memory since ballastd "
           "started)\n",
           str(resp, "vm", "?"), n, n == 1 ? "y" : "ies", json_object_get_string(get(resp, "kept")),
           json_object_get_string(get(resp, "bound")));
    for (size_t i = 0; i < n; i++) {
        json_object *h = json_object_array_get_idx(entries, i);
        json_object *in = get(h, "inputs");
        g_autofree char *age = age_s(get(h, "age_ms"));
        const char *what = str(h, "what", "?");

        if (strcmp(what, "decision") == 0) {
            g_autofree char *from = mib(get(h, "from_kib"));
            g_autofree char *to = mib(get(h, "target_kib"));
            printf("%8s ago  %s%s %s -> %s MiB [%s]%s%s\n", age, boolean(h, "applied") ? "" : "~",
                   str(h, "kind", "?"), from, to, str(h, "reason_code", "?"),
                   boolean(h, "applied") ? "" : " not applied: ",
                   boolean(h, "applied") ? "" : str(h, "why_not_applied", "?"));
        } else {
            printf("%8s ago  %s\n", age, what);
        }
        printf("             %.*s\n", CTL_WIDTH - 13, str(h, "text", ""));
        g_autofree char *act = mib(get(in, "actual_kib"));
        g_autofree char *max = mib(get(in, "max_kib"));
        g_autofree char *flr = mib(get(in, "floor_kib"));
        g_autofree char *avail = mib(get(in, "available_kib"));
        g_autofree char *host = mib(get(in, "host_available_kib"));
        json_object *psi = get(in, "psi_some_avg10");
        g_autofree char *psis =
            psi ? g_strdup_printf("%.1f%%", json_object_get_double(psi)) : g_strdup("-");
        printf("             saw: balloon %s of %s MiB, floor %s MiB, MemAvailable %s MiB, PSI "
               "some %s, host available %s MiB\n",
               act, max, flr, avail, psis, host);
    }
}

static int cmd_explain(const char *path, const char *vm, gint last, gboolean as_json)
{
    json_object *req = request_new("explain");
    int rc;

    json_object_object_add(req, "vm", json_object_new_string(vm));
    if (last != 0)
        json_object_object_add(req, "last", json_object_new_int(last));
    json_object *resp = ask(path, req, &rc);
    if (resp == NULL)
        return rc;
    if (as_json)
        print_json(resp);
    else
        print_explain(resp);
    json_object_put(resp);
    return CTL_OK;
}

static int cmd_set(const char *path, const char *vm, const char *key, const char *value)
{
    json_object *req = request_new("set");
    int rc;

    json_object_object_add(req, "vm", json_object_new_string(vm));
    json_object_object_add(req, "key", json_object_new_string(key));
    json_object_object_add(req, "value", json_object_new_string(value));
    json_object *resp = ask(path, req, &rc);
    if (resp == NULL)
        return rc;
    g_autofree char *floor = mib(get(resp, "floor_kib"));
    printf("%s: mode %s, floor %s MiB, shares %s%s\n", str(resp, "vm", vm), str(resp, "mode", "?"),
           floor, json_object_get_string(get(resp, "shares")),
           strcmp(value, "default") == 0 ? " (override cleared)" : " (until restart)");
    json_object_put(resp);
    return CTL_OK;
}

static int cmd_release(const char *path, char **vms, int n, gboolean all, gboolean as_json)
{
    json_object *req = request_new("release");
    int rc;

    if (all)
        json_object_object_add(req, "all", json_object_new_boolean(TRUE));
    else
        json_object_object_add(req, "vms", names_array(vms, n));
    json_object *resp = ask(path, req, &rc);
    if (resp == NULL)
        return rc;
    json_object *list = get(resp, "vms");
    if (as_json)
        print_json(resp);
    for (size_t i = 0; !as_json && list && i < json_object_array_length(list); i++) {
        json_object *r = json_object_array_get_idx(list, i);
        json_object *done = get(r, "done");
        printf("%s: %s\n", str(r, "vm", "?"), boolean(r, "ok") ? "released" : "NOT released");
        for (size_t k = 0; done && k < json_object_array_length(done); k++)
            printf("    %s\n", json_object_get_string(json_object_array_get_idx(done, k)));
        if (get(r, "error"))
            printf("    error: %s\n", str(r, "error", ""));
    }
    json_object *skipped = get(resp, "skipped_mode_off");
    for (size_t i = 0; !as_json && skipped && i < json_object_array_length(skipped); i++)
        printf("%s: left alone (mode off in its metadata or the configuration)\n",
               json_object_get_string(json_object_array_get_idx(skipped, i)));
    if (!as_json && list && json_object_array_length(list) > 0)
        printf("resume with: ballastctl set VM mode default\n");
    rc = boolean(resp, "ok") ? CTL_OK : CTL_REFUSED;
    if (rc != CTL_OK)
        g_printerr("ballastctl: %s\n", str(resp, "error", "release failed"));
    json_object_put(resp);
    return rc;
}

static int cmd_reload(const char *path)
{
    int rc;
    json_object *resp = ask(path, request_new("reload"), &rc);

    if (resp == NULL)
        return rc;
    printf("configuration reloaded\n");
    json_object_put(resp);
    return CTL_OK;
}

static int usage(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int usage(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_printerr("ballastctl: %s (see --help)\n", msg);
    return CTL_REFUSED;
}

/* A command and its positional arguments (after the options). */
static int run(const char *path, int argc, char **argv, gboolean as_json, gint last, gboolean all)
{
    const char *cmd = argc > 0 ? argv[0] : "status";
    char **args = argv + (argc > 0);
    int n = argc > 0 ? argc - 1 : 0;

    if (strcmp(cmd, "explain") != 0 && last != 0)
        return usage("--last is for explain, not %s", cmd);
    if (strcmp(cmd, "release") != 0 && all)
        return usage("--all is for release, not %s", cmd);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(path, args, n, as_json);
    if (strcmp(cmd, "explain") == 0) {
        if (n != 1)
            return usage("%s wants exactly one VM", cmd);
        return cmd_explain(path, args[0], last, as_json);
    }
    if (strcmp(cmd, "set") == 0) {
        if (n != 3)
            return usage("%s wants VM mode|floor|shares VALUE", cmd);
        return cmd_set(path, args[0], args[1], args[2]);
    }
    if (strcmp(cmd, "release") == 0) {
        if (all == (n > 0))
            return usage("%s wants VM names or --all (not both)", cmd);
        return cmd_release(path, args, n, all, as_json);
    }
    if (n > 0)
        return usage("unexpected argument \"%s\"", args[0]);
    if (strcmp(cmd, "watch") == 0)
        return cmd_watch(path);
    if (strcmp(cmd, "reload") == 0)
        return cmd_reload(path);
    return usage("unknown command \"%s\" (status, explain, set, release, watch, reload)", cmd);
}

int main(int argc, char **argv)
{
    g_autofree char *control = NULL;
    gboolean as_json = FALSE, version = FALSE, all = FALSE;
    gint last = G_MININT; /* not given */
    const GOptionEntry entries[] = {
        {"control", 0, 0, G_OPTION_ARG_FILENAME, &control,
         "ballastd's control socket (default " BALLAST_RUNSTATEDIR "/ballast/ballastd.sock)",
         "PATH"},
        {"json", 'j', 0, G_OPTION_ARG_NONE, &as_json,
         "status, explain, release: print the JSON object", NULL},
        {"last", 'n', 0, G_OPTION_ARG_INT, &last, "explain: the last N entries (default 10)", "N"},
        {"all", 'a', 0, G_OPTION_ARG_NONE, &all, "release: every VM", NULL},
        {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "print the version and exit", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[COMMAND [ARGS...]]");
    g_autoptr(GError) error = NULL;

    setlocale(LC_ALL, "");
    /* JSON numbers are written and read with a '.', whatever the locale. */
    setlocale(LC_NUMERIC, "C");
    g_option_context_set_summary(
        ctx, "Commands:\n"
             "  status [VM...]                  per-VM and host state (the default)\n"
             "  explain VM [--last N]           the VM's last decisions and notes, newest first\n"
             "  set VM mode observe|auto|off|default\n"
             "  set VM floor SIZE|default\n"
             "  set VM shares N|default         runtime overrides, lost at restart\n"
             "  release VM...|--all             deflate to maximum, mode off, undo ballast's "
             "KSM exclusions\n"
             "  watch                           status, redrawn every second\n"
             "  reload                          re-read ballastd.conf\n"
             "Exit status: 0 ok, 1 refused (bad request, unknown VM, bad value), 2 ballastd not "
             "reachable.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("ballastctl: %s (see --help)\n", error->message);
        return CTL_REFUSED;
    }
    if (version) {
        printf("ballastctl %s\n", BALLAST_VERSION);
        return CTL_OK;
    }
    if (last != G_MININT && last < 1)
        return usage("bad --last %d (want a whole number of at least 1)", last);
    if (last == G_MININT)
        last = 0;
    const char *path = control ? control : BALLAST_RUNSTATEDIR "/ballast/ballastd.sock";
    return run(path, argc - 1, argv + 1, as_json, last, all);
}
