/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The whole broker loop in-process against a libvirt test-driver node
 * (tests/data/broker/test-node.xml: bk-floor below its metadata floor,
 * bk-observe below its <min_guarantee> in observe mode with a bad shares
 * value, bk-off below its floor in mode off) and a fixture host /proc. The
 * control socket is exercised from a thread, as ballastctl would.
 */
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/socket.h>
#include <grp.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker-private.h" /* the configuration in force, for the reload test */
#include "broker.h"
#include "control.h"
#include "evlog.h"
#include "host.h"

typedef struct {
    char *dir, *conf, *ctl, *evlog, *uri, *host_root;
    Broker *b;
    gboolean dry_run;
    const char *only;
    /* control thread results */
    char *status_reply, *reload_reply, *bad_reply;
    GThreadFunc script; /* the control thread; NULL: ctl_thread */
    gboolean ctl_done;
} Fixture;

static void fixture_set_up(Fixture *f, gconstpointer data)
{
    const char *td = g_getenv("BALLAST_TEST_DATA");
    g_autoptr(GError) e = NULL;

    g_assert_nonnull(td);
    f->dir = g_dir_make_tmp("ballast-broker-XXXXXX", &e);
    g_assert_no_error(e);
    f->conf = g_build_filename(f->dir, "ballastd.conf", NULL);
    f->ctl = g_build_filename(f->dir, "ctl.sock", NULL);
    f->evlog = g_build_filename(f->dir, "events.json", NULL);
    g_autofree char *abs = g_canonicalize_filename(td, NULL);
    f->uri = g_strdup_printf("test://%s/broker/test-node.xml", abs);
    f->host_root = g_build_filename(abs, "broker", "host-ok", NULL);
    g_assert_true(g_file_set_contents(f->conf,
                                      "[broker]\ntick_ms = 100\nchannel_poll_ms = 100\n"
                                      "session_retry_ms = 100\n",
                                      -1, NULL));
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
    broker_free(f->b);
    g_unlink(f->conf);
    g_unlink(f->evlog);
    g_unlink(f->ctl);
    g_rmdir(f->dir);
    g_free(f->dir);
    g_free(f->conf);
    g_free(f->ctl);
    g_free(f->evlog);
    g_free(f->uri);
    g_free(f->host_root);
    g_free(f->status_reply);
    g_free(f->reload_reply);
    g_free(f->bad_reply);
}

static Broker *start(Fixture *f)
{
    g_autoptr(GError) e = NULL;
    BrokerOptions opt = {
        .uri = f->uri,
        .config_path = f->conf,
        .config_explicit = TRUE,
        .dry_run = f->dry_run,
        .control_path = f->ctl,
        .event_log = f->evlog,
        .host_root = f->host_root,
        .only = f->only,
    };
    f->b = broker_new(&opt, &e);
    g_assert_no_error(e);
    g_assert_nonnull(f->b);
    return f->b;
}

static void put(gpointer o)
{
    json_object_put(o);
}

/* The event log as an array of objects. */
static GPtrArray *events(Fixture *f)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(put);
    g_autofree char *text = NULL;

    if (!g_file_get_contents(f->evlog, &text, NULL, NULL))
        return a;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        if (lines[i][0] == '\0')
            continue;
        json_object *o = json_tokener_parse(lines[i]);
        g_assert_nonnull(o); /* every line is one JSON object */
        g_ptr_array_add(a, o);
    }
    return a;
}

static const char *sget(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static json_object *find(GPtrArray *ev, const char *event, const char *vm, guint *count)
{
    json_object *first = NULL;
    guint n = 0;

    for (guint i = 0; i < ev->len; i++) {
        json_object *o = ev->pdata[i];
        if (g_strcmp0(sget(o, "event"), event) == 0 &&
            (vm == NULL || g_strcmp0(sget(o, "vm"), vm) == 0)) {
            if (first == NULL)
                first = o;
            n++;
        }
    }
    if (count)
        *count = n;
    return first;
}

static char *ctl_request(const char *path, const char *line)
{
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    g_autoptr(GError) e = NULL;
    g_autoptr(GSocketConnection) conn = NULL;

    /* The socket file appears at bind(), a moment before listen(): a
     * connection refused then is the broker not yet listening (for 5 s at
     * most), not a failure. */
    for (int i = 0; i < 500; i++) {
        g_clear_error(&e);
        conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr), NULL, &e);
        if (conn != NULL || !g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
            break;
        g_usleep(10000);
    }
    g_assert_no_error(e);
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
    g_assert_true(g_output_stream_write_all(out, line, strlen(line), NULL, NULL, &e));
    GString *reply = g_string_new(NULL);
    char buf[4096];
    gssize n;
    while ((n = g_input_stream_read(g_io_stream_get_input_stream(G_IO_STREAM(conn)), buf,
                                    sizeof(buf), NULL, &e)) > 0)
        g_string_append_len(reply, buf, n);
    g_assert_no_error(e);
    return g_string_free(reply, FALSE);
}

static gpointer ctl_thread(gpointer data)
{
    Fixture *f = data;

    f->status_reply = ctl_request(f->ctl, "{\"cmd\":\"status\"}\n");
    g_assert_true(g_file_set_contents(f->conf,
                                      "[broker]\ntick_ms = 100\n[policy]\n"
                                      "host_reserve = 12XB\n",
                                      -1, NULL));
    f->reload_reply = ctl_request(f->ctl, "{\"cmd\":\"reload\"}\n");
    f->bad_reply = ctl_request(f->ctl, "not json at all\n");
    g_atomic_int_set(&f->ctl_done, TRUE);
    return NULL;
}

/* Poll the log (not a timing: the loop runs until the events are there). */
static gboolean check(gpointer data)
{
    Fixture *f = data;
    g_autoptr(GPtrArray) ev = events(f);

    if (find(ev, "decision", "bk-floor", NULL) == NULL ||
        find(ev, "decision", "bk-observe", NULL) == NULL)
        return G_SOURCE_CONTINUE;
    if (f->dry_run) {
        broker_quit(f->b, "test done");
        return G_SOURCE_REMOVE;
    }
    static GThread *t;
    if (t == NULL)
        t = g_thread_new("ctl", f->script ? f->script : ctl_thread, f);
    if (!g_atomic_int_get(&f->ctl_done))
        return G_SOURCE_CONTINUE;
    g_thread_join(t);
    t = NULL;
    broker_quit(f->b, "test done");
    return G_SOURCE_REMOVE;
}

static gboolean hang_guard(gpointer data)
{
    g_error("the broker never made the expected decisions");
    return G_SOURCE_REMOVE;
}

static gboolean check_observe_only(gpointer data)
{
    Fixture *f = data;
    g_autoptr(GPtrArray) ev = events(f);

    if (find(ev, "decision", "bk-observe", NULL) == NULL)
        return G_SOURCE_CONTINUE;
    broker_quit(f->b, "test done");
    return G_SOURCE_REMOVE;
}

/* Run the loop until bk-observe has a decision. */
static void run_observe(Fixture *f)
{
    g_timeout_add(20, check_observe_only, f);
    guint guard = g_timeout_add_seconds(60, hang_guard, NULL);
    g_assert_true(broker_run(f->b, NULL));
    g_source_remove(guard);
}

static void run(Fixture *f)
{
    g_autoptr(GError) e = NULL;
    guint guard = g_timeout_add_seconds(60, hang_guard, NULL);

    g_timeout_add(20, check, f);
    g_assert_true(broker_run(f->b, &e));
    g_assert_no_error(e);
    g_source_remove(guard);
}

static void test_floor_and_modes(Fixture *f, gconstpointer data)
{
    start(f);
    run(f);

    g_autoptr(GPtrArray) ev = events(f);
    guint n;
    g_assert_nonnull(find(ev, "connect", NULL, NULL));

    /* Below its floor at startup: raised, applied, and the call logged. */
    json_object *d = find(ev, "decision", "bk-floor", &n);
    g_assert_cmpuint(n, ==, 1);
    g_assert_cmpstr(sget(d, "kind"), ==, "deflate");
    g_assert_cmpstr(sget(d, "target_kib"), ==, "3145728");
    g_assert_cmpstr(sget(d, "from_kib"), ==, "2097152");
    g_assert_cmpstr(sget(d, "applied"), ==, "true");
    json_object *s = find(ev, "set-memory", "bk-floor", &n);
    g_assert_cmpuint(n, ==, 1);
    g_assert_cmpstr(sget(s, "ok"), ==, "true");
    g_assert_cmpstr(sget(s, "target_kib"), ==, "3145728");

    /* Observe: decided and said, never applied, said once. */
    d = find(ev, "decision", "bk-observe", &n);
    g_assert_cmpuint(n, ==, 1);
    g_assert_cmpstr(sget(d, "applied"), ==, "false");
    g_assert_cmpstr(sget(d, "why_not_applied"), ==, "observe");
    g_assert_cmpstr(sget(d, "target_kib"), ==, "1572864"); /* <min_guarantee> 1536 MiB */
    g_assert_null(find(ev, "set-memory", "bk-observe", NULL));
    /* Its bad shares value was reported once. */
    g_assert_nonnull(find(ev, "metadata-invalid", "bk-observe", &n));
    g_assert_cmpuint(n, ==, 1);

    /* Off: left alone, below its floor or not. */
    g_assert_null(find(ev, "decision", "bk-off", NULL));
    g_assert_null(find(ev, "set-memory", "bk-off", NULL));

    /* The control socket answered status... */
    json_object *st = json_tokener_parse(f->status_reply);
    g_assert_nonnull(st);
    json_object *status, *vms;
    g_assert_cmpstr(sget(st, "ok"), ==, "true");
    g_assert_true(json_object_object_get_ex(st, "status", &status));
    g_assert_cmpstr(sget(status, "uri"), ==, f->uri);
    g_assert_cmpstr(sget(status, "dry_run"), ==, "false");
    g_assert_true(json_object_object_get_ex(status, "vms", &vms));
    g_assert_cmpuint(json_object_array_length(vms), ==, 3);
    json_object *vm0 = json_object_array_get_idx(vms, 0); /* sorted by name */
    g_assert_cmpstr(sget(vm0, "name"), ==, "bk-floor");
    g_assert_cmpstr(sget(vm0, "mode"), ==, "auto");
    g_assert_cmpstr(sget(vm0, "floor_kib"), ==, "3145728");
    g_assert_cmpstr(sget(vm0, "shares"), ==, "500");
    g_assert_cmpstr(sget(vm0, "target_kib"), ==, "3145728");
    json_object *vm2 = json_object_array_get_idx(vms, 2);
    g_assert_cmpstr(sget(vm2, "name"), ==, "bk-off");
    g_assert_cmpstr(sget(vm2, "mode"), ==, "off");
    json_object_put(st);

    /* ... refused a broken reload with the file's line, kept running ... */
    json_object *rl = json_tokener_parse(f->reload_reply);
    g_assert_cmpstr(sget(rl, "ok"), ==, "false");
    g_assert_nonnull(strstr(sget(rl, "error"), "ballastd.conf:4: [policy] host_reserve"));
    json_object_put(rl);
    g_assert_nonnull(find(ev, "reload", NULL, NULL));

    /* ... and answered garbage with an error, not a crash. */
    json_object *bad = json_tokener_parse(f->bad_reply);
    g_assert_cmpstr(sget(bad, "ok"), ==, "false");
    json_object_put(bad);

    /* The status object is whole after the loop has stopped too. */
    json_object *now = broker_status(f->b);
    json_object_object_get_ex(now, "vms", &vms);
    g_assert_cmpuint(json_object_array_length(vms), ==, 3);
    json_object_put(now);
}

static void test_dry_run(Fixture *f, gconstpointer data)
{
    f->dry_run = TRUE;
    start(f);
    run(f);

    g_autoptr(GPtrArray) ev = events(f);
    json_object *d = find(ev, "decision", "bk-floor", NULL);
    g_assert_cmpstr(sget(d, "applied"), ==, "false");
    g_assert_cmpstr(sget(d, "why_not_applied"), ==, "dry-run");
    g_assert_null(find(ev, "set-memory", NULL, NULL));
    d = find(ev, "decision", "bk-observe", NULL);
    g_assert_cmpstr(sget(d, "why_not_applied"), ==, "dry-run");
}

static void test_only(Fixture *f, gconstpointer data)
{
    f->dry_run = TRUE;
    f->only = "bk-o*";
    start(f);
    /* bk-floor is not followed: bk-observe's decision is the sign the cycle ran. */
    run_observe(f);

    g_autoptr(GPtrArray) ev = events(f);
    g_assert_null(find(ev, "decision", "bk-floor", NULL));
    g_assert_nonnull(find(ev, "decision", "bk-observe", NULL));
    json_object *st = broker_status(f->b), *vms;
    json_object_object_get_ex(st, "vms", &vms);
    g_assert_cmpuint(json_object_array_length(vms), ==, 2);
    g_assert_cmpstr(sget(json_object_array_get_idx(vms, 0), "name"), ==, "bk-observe");
    g_assert_cmpstr(sget(json_object_array_get_idx(vms, 1), "name"), ==, "bk-off");
    json_object_put(st);
}

typedef struct {
    Fixture *f;
    int stage;
    int agent_fd;
} PressureCtx;

static gboolean check_pressure(gpointer data)
{
    PressureCtx *c = data;
    Fixture *f = c->f;
    g_autoptr(GPtrArray) ev = events(f);
    guint n = 0;

    find(ev, "decision", "bk-floor", &n);
    if (c->stage == 0 && n >= 1) {
        /* The floor raise at startup is done; now the agent speaks. */
        int sv[2];
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        c->agent_fd = sv[1];
        g_assert_true(broker_attach_transport(f->b, "bk-floor", session_transport_new_fd(sv[0])));
        const char *hello =
            "{\"type\":\"hello\",\"v\":1,\"agent\":\"ballast-agent\",\"agent_version\":"
            "\"0.1.0\",\"minor\":0,\"boot_id\":\"b\",\"kernel\":\"6.1\",\"interval_ms\":1000,"
            "\"balloon\":{\"present\":true,\"driver_bound\":true,\"pci\":[],\"kconfig\":\"m\"},"
            "\"features\":[\"psi\"]}\n";
        const char *report =
            "{\"type\":\"report\",\"v\":1,\"seq\":1,\"uptime_ms\":60000,\"reason\":"
            "\"pressure\",\"mem\":{\"total_kib\":3000000,\"available_kib\":50000,\"free_kib\":"
            "20000,\"cached_kib\":10000,\"swap_total_kib\":0,\"swap_free_kib\":0,"
            "\"committed_as_kib\":2900000},\"psi\":{\"some\":{\"avg10\":40.0,\"avg60\":10.0,"
            "\"avg300\":2.0,\"total_us\":9000000},\"full\":{\"avg10\":20.0,\"avg60\":5.0,"
            "\"avg300\":1.0,\"total_us\":4000000}},\"vmstat\":{}}\n";
        g_assert_cmpint(write(c->agent_fd, hello, strlen(hello)), ==, (gssize)strlen(hello));
        g_assert_cmpint(write(c->agent_fd, report, strlen(report)), ==, (gssize)strlen(report));
        c->stage = 1;
        return G_SOURCE_CONTINUE;
    }
    if (c->stage == 1 && n >= 2) {
        /* After the raise, the broker asks for a fresh report. */
        char buf[4096];
        gssize got = recv(c->agent_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        if (got > 0) {
            buf[got] = '\0';
            if (strstr(buf, "\"type\":\"request\"") != NULL)
                c->stage = 2;
        }
    }
    if (c->stage == 2) {
        broker_quit(f->b, "test done");
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gint64 iget(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

static void test_pressure(Fixture *f, gconstpointer data)
{
    /* A tick far away: a decision after the startup cycle can only come
     * from the pressure report itself. */
    g_assert_true(g_file_set_contents(f->conf, "[broker]\ntick_ms = 60000\n", -1, NULL));
    f->only = "bk-floor";
    start(f);
    PressureCtx c = {.f = f};
    g_timeout_add(20, check_pressure, &c);
    guint guard = g_timeout_add_seconds(50, hang_guard, NULL);
    g_assert_true(broker_run(f->b, NULL));
    g_source_remove(guard);
    close(c.agent_fd);

    g_autoptr(GPtrArray) ev = events(f);
    json_object *hello = find(ev, "hello", "bk-floor", NULL);
    g_assert_nonnull(hello);
    g_assert_cmpstr(sget(hello, "agent_version"), ==, "0.1.0");
    json_object *report = find(ev, "report", "bk-floor", NULL);
    g_assert_nonnull(report);
    g_assert_cmpstr(sget(report, "reason"), ==, "pressure");

    /* The second decision: a raise, applied, after the report. */
    json_object *d = NULL, *set = NULL;
    guint nd = 0, ns = 0;
    for (guint i = 0; i < ev->len; i++) {
        json_object *o = ev->pdata[i];
        if (g_strcmp0(sget(o, "event"), "decision") == 0 && ++nd == 2)
            d = o;
        if (g_strcmp0(sget(o, "event"), "set-memory") == 0 && ++ns == 2)
            set = o;
    }
    g_assert_nonnull(d);
    g_assert_nonnull(set);
    g_assert_cmpstr(sget(d, "kind"), ==, "deflate");
    g_assert_cmpstr(sget(d, "applied"), ==, "true");
    g_assert_cmpint(iget(d, "target_kib"), >, 2097152);
    g_assert_cmpint(iget(d, "target_kib"), <=, 4194304);
    g_assert_cmpint(iget(d, "mono_us"), >=, iget(report, "mono_us"));
    g_assert_cmpstr(sget(set, "ok"), ==, "true");
    g_assert_cmpint(c.stage, ==, 2); /* the request for a fresh report came */
    g_test_message("pressure report -> virDomainSetMemoryFlags returned: %" G_GINT64_FORMAT
                   " us (test driver; the call itself %" G_GINT64_FORMAT " us); reason: %s",
                   iget(set, "mono_us") - iget(report, "mono_us"), iget(set, "call_us"),
                   sget(d, "reason"));
}

typedef struct {
    Fixture *f;
    int stage, agent_fd;
    gboolean saw_grace, saw_end;
} GraceCtx;

static json_object *vm_agent(json_object *status, const char *name)
{
    json_object *vms, *agent = NULL;
    json_object_object_get_ex(status, "vms", &vms);
    for (size_t i = 0; i < json_object_array_length(vms); i++) {
        json_object *vm = json_object_array_get_idx(vms, i);
        if (g_strcmp0(sget(vm, "name"), name) == 0)
            json_object_object_get_ex(vm, "agent", &agent);
    }
    return agent;
}

static gboolean check_grace(gpointer data)
{
    GraceCtx *c = data;
    g_autoptr(GPtrArray) ev = events(c->f);

    if (c->stage == 0) {
        if (find(ev, "decision", "bk-floor", NULL) == NULL)
            return G_SOURCE_CONTINUE;
        int sv[2];
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        c->agent_fd = sv[1];
        g_assert_true(
            broker_attach_transport(c->f->b, "bk-floor", session_transport_new_fd(sv[0])));
        c->stage = 1;
    }
    json_object *st = broker_status(c->f->b);
    json_object *agent = vm_agent(st, "bk-floor");
    g_assert_nonnull(agent);
    g_assert_cmpstr(sget(agent, "connected"), ==, "true");
    if (g_strcmp0(sget(agent, "grace"), "true") == 0)
        c->saw_grace = TRUE;
    else if (c->saw_grace)
        c->saw_end = TRUE; /* a silent agent is not waited for forever */
    json_object_put(st);
    if (c->saw_end) {
        broker_quit(c->f->b, "test done");
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void test_grace(Fixture *f, gconstpointer data)
{
    g_assert_true(
        g_file_set_contents(f->conf, "[broker]\ninterval_ms = 100\ntick_ms = 100\n", -1, NULL));
    f->only = "bk-floor";
    start(f);
    GraceCtx c = {.f = f};
    g_timeout_add(20, check_grace, &c);
    guint guard = g_timeout_add_seconds(50, hang_guard, NULL);
    g_assert_true(broker_run(f->b, NULL));
    g_source_remove(guard);
    close(c.agent_fd);
    g_assert_true(c.saw_grace);
    g_assert_true(c.saw_end);
}

static void test_bad_config(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;
    BrokerOptions opt = {.uri = f->uri, .config_path = f->conf, .config_explicit = TRUE};

    g_assert_true(g_file_set_contents(f->conf, "[broker]\n\ntick_ms = fast\n", -1, NULL));
    g_assert_null(broker_new(&opt, &e));
    g_autofree char *want = g_strdup_printf("%s:3: [broker] tick_ms", f->conf);
    g_assert_true(g_str_has_prefix(e->message, want));

    g_clear_error(&e);
    g_autofree char *missing = g_build_filename(f->dir, "nope.conf", NULL);
    opt.config_path = missing;
    g_assert_null(broker_new(&opt, &e));
    g_assert_nonnull(e);
}

/* Reload on the default path (no --config): a file that has gone, or gone
 * bad, keeps the running configuration and says why in one line; it never
 * falls back to the defaults (a 6 GiB floor once became the 256 MiB default).
 * At start the same missing file is fine: the defaults. */
static void test_reload_keeps_running(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;
    BrokerOptions opt = {.uri = f->uri,
                         .config_path = f->conf,
                         .config_explicit = FALSE,
                         .event_log = f->evlog,
                         .host_root = f->host_root};

    g_assert_true(g_file_set_contents(f->conf, "[policy]\nmin_floor = 6GiB\n", -1, NULL));
    f->b = broker_new(&opt, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(f->b->cfg.policy.min_floor_kib, ==, 6 * 1024 * 1024);

    /* A good reload applies. */
    g_assert_true(g_file_set_contents(f->conf, "[policy]\nmin_floor = 7GiB\n", -1, NULL));
    g_assert_true(broker_reload(f->b, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(f->b->cfg.policy.min_floor_kib, ==, 7 * 1024 * 1024);

    /* The file is gone: an error naming it, the 7 GiB floor stays. */
    g_assert_cmpint(g_unlink(f->conf), ==, 0);
    g_assert_false(broker_reload(f->b, &e));
    g_assert_error(e, CONFIG_ERROR, CONFIG_ERROR_MISSING);
    g_assert_true(g_str_has_prefix(e->message, f->conf));
    g_assert_null(strchr(e->message, '\n'));
    g_assert_cmpuint(f->b->cfg.policy.min_floor_kib, ==, 7 * 1024 * 1024);
    g_clear_error(&e);

    /* Broken: likewise, with the line. */
    g_assert_true(
        g_file_set_contents(f->conf, "[policy]\nmin_floor = 1GiB\nreclaim_step = x\n", -1, NULL));
    g_assert_false(broker_reload(f->b, &e));
    g_autofree char *want = g_strdup_printf("%s:3: [policy] reclaim_step: ", f->conf);
    g_assert_true(g_str_has_prefix(e->message, want));
    g_assert_cmpuint(f->b->cfg.policy.min_floor_kib, ==, 7 * 1024 * 1024);
    g_clear_error(&e);

    /* Each failure is one "reload" event with ok false and the reason. */
    g_autoptr(GPtrArray) ev = events(f);
    guint fails = 0;
    for (guint i = 0; i < ev->len; i++) {
        json_object *o = ev->pdata[i];
        if (g_strcmp0(sget(o, "event"), "reload") == 0 && g_strcmp0(sget(o, "ok"), "false") == 0) {
            g_assert_nonnull(strstr(sget(o, "error"), f->conf));
            fails++;
        }
    }
    g_assert_cmpuint(fails, ==, 2);

    /* At start, the default path may be absent: the defaults. */
    broker_free(f->b);
    g_unlink(f->conf);
    f->b = broker_new(&opt, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(f->b->cfg.policy.min_floor_kib, ==, 256 * 1024);
}

/* A --connect URI that can never work stops the start, with the URI named;
 * it is not retried forever. */
static void test_bad_uri(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;

    g_free(f->uri);
    f->uri = g_strdup("bogus+nothing:///nowhere");
    start(f);
    guint guard = g_timeout_add_seconds(30, hang_guard, NULL);
    g_assert_false(broker_run(f->b, &e));
    g_source_remove(guard);
    g_assert_nonnull(e);
    g_assert_true(g_str_has_prefix(e->message, "bogus+nothing:///nowhere: "));
}

static json_object *echo_handler(const char *cmd, json_object *req, gpointer user_data)
{
    return control_error(cmd);
}

typedef struct {
    char *path;
    gssize got;
    gboolean done;
} IdleClient;

/* Connects, says nothing, and waits for the broker to hang up. */
static gpointer idle_client_thread(gpointer data)
{
    IdleClient *c = data;
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(c->path);
    g_autoptr(GSocketConnection) conn =
        g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr), NULL, NULL);
    char buf[64];

    g_assert_nonnull(conn);
    c->got = g_input_stream_read(g_io_stream_get_input_stream(G_IO_STREAM(conn)), buf, sizeof(buf),
                                 NULL, NULL);
    g_atomic_int_set(&c->done, TRUE);
    g_main_context_wakeup(NULL);
    return NULL;
}

static gboolean idle_guard(gpointer data)
{
    g_error("the silent control client was never dropped");
    return G_SOURCE_REMOVE;
}

/* A control client that never sends its request is dropped, not kept forever. */
static void test_control_idle_client(void)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *dir = g_dir_make_tmp("ballast-ctl-XXXXXX", &e);
    IdleClient c = {.path = g_build_filename(dir, "ctl.sock", NULL), .got = -2};
    Control *ctl = control_new(c.path, echo_handler, NULL, &e);

    g_assert_no_error(e);
    control_set_client_timeout(ctl, 1);
    guint guard = g_timeout_add_seconds(30, idle_guard, NULL);
    GThread *t = g_thread_new("idle", idle_client_thread, &c);
    while (!g_atomic_int_get(&c.done))
        g_main_context_iteration(NULL, TRUE);
    g_thread_join(t);
    g_source_remove(guard);
    g_assert_cmpint(c.got, ==, 0); /* the broker closed it: end of file, no reply */
    control_free(ctl);
    g_rmdir(dir);
    g_free(c.path);
}

static void test_note_key(void)
{
    static const struct {
        const char *a, *b;
        gboolean same;
    } cases[] = {
        {"host reserve unmet: 921 MiB short (available 22358 MiB)",
         "host reserve unmet: 1308 MiB short (available 22359 MiB)", TRUE},
        {"vm-1: agent silent for 5 s", "vm-1: agent silent for 17 s", TRUE},
        {"vm-1: agent silent for 5 s", "vm-2: agent silent for 5 s", FALSE},
        {"vm1: psi 1.5% > 1.0%", "vm1: psi 22.25% > 1.0%", TRUE},
        {"vm1: psi 1.5%", "vm2: psi 1.5%", FALSE},
        {"host reserve unmet", "host reserve met", FALSE},
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *ka = broker_note_key(cases[i].a);
        g_autofree char *kb = broker_note_key(cases[i].b);
        g_assert_cmpint(g_strcmp0(ka, kb) == 0, ==, cases[i].same);
    }
}

static void test_evlog(void)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *dir = g_dir_make_tmp("ballast-evlog-XXXXXX", &e);
    g_autofree char *path = g_build_filename(dir, "events.json", NULL);
    g_autofree char *moved = g_build_filename(dir, "events.json.1", NULL);
    Evlog *log = evlog_new(path, &e);

    g_assert_no_error(e);
    json_object *f = json_object_new_object();
    json_object_object_add(f, "text", json_object_new_string("a \"quoted\"\nline"));
    evlog_emit(log, "note", "vm\"1", f);
    g_assert_cmpint(g_rename(path, moved), ==, 0);
    g_assert_true(evlog_reopen(log, &e));
    evlog_emit(log, "note", NULL, NULL);
    evlog_say(log, TRUE, "one %d", 1);
    evlog_say(log, FALSE, "not in the ring");
    json_object *ring = evlog_recent(log);
    g_assert_cmpuint(json_object_array_length(ring), ==, 1);
    json_object_put(ring);
    evlog_free(log);

    g_autofree char *a = NULL, *b = NULL;
    g_assert_true(g_file_get_contents(moved, &a, NULL, NULL));
    g_assert_true(g_file_get_contents(path, &b, NULL, NULL));
    /* One object per line, escapes intact. */
    g_assert_cmpuint(strlen(a), >, 0);
    g_assert_true(g_str_has_suffix(a, "}\n"));
    g_assert_true(strchr(a, '\n') == a + strlen(a) - 1); /* exactly one line */
    json_object *o = json_tokener_parse(a);
    g_assert_cmpstr(sget(o, "vm"), ==, "vm\"1");
    g_assert_cmpstr(sget(o, "text"), ==, "a \"quoted\"\nline");
    g_assert_nonnull(sget(o, "ts"));
    g_assert_nonnull(sget(o, "mono_us"));
    json_object_put(o);
    o = json_tokener_parse(b);
    g_assert_cmpstr(sget(o, "event"), ==, "note");
    g_assert_null(sget(o, "vm"));
    json_object_put(o);
    g_unlink(path);
    g_unlink(moved);
    g_rmdir(dir);
}

static void test_host(void)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *abs = g_canonicalize_filename(g_getenv("BALLAST_TEST_DATA"), NULL);
    g_autofree char *ok = g_build_filename(abs, "broker", "host-ok", NULL);
    g_autofree char *dir = g_dir_make_tmp("ballast-host-XXXXXX", &e);
    g_autofree char *proc = g_build_filename(dir, "proc", NULL);
    g_autofree char *meminfo = g_build_filename(proc, "meminfo", NULL);
    PolicyHost h;

    g_assert_true(host_read(ok, &h, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(h.mem_total_kib, ==, 24684084);
    g_assert_cmpuint(h.mem_available_kib, ==, 21000000);
    g_assert_true(h.has_psi);

    /* No /proc at all: an error, not a crash. */
    g_assert_false(host_read(dir, &h, &e));
    g_assert_nonnull(e);
    g_clear_error(&e);

    /* meminfo without PSI (CONFIG_PSI=n or psi=0): facts without PSI. */
    g_assert_cmpint(g_mkdir(proc, 0755), ==, 0);
    g_assert_true(g_file_set_contents(
        meminfo, "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 500 kB\n", -1, NULL));
    g_assert_true(host_read(dir, &h, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(h.mem_available_kib, ==, 500);
    g_assert_false(h.has_psi);

    /* Garbage meminfo: an error. */
    g_assert_true(g_file_set_contents(meminfo, "\xff\xfe garbage\n", -1, NULL));
    g_assert_false(host_read(dir, &h, &e));
    g_assert_nonnull(e);
    g_unlink(meminfo);
    g_rmdir(proc);
    g_rmdir(dir);
}

/* ---- stopping while requests arrive ---- */

typedef struct {
    char *path;
    gint stop;
    guint answered;
} Hammer;

/* ballastctl status in a tight loop: connect, ask, read what comes back.
 * Refused or cut connections are expected while the broker stops. */
static gpointer hammer_thread(gpointer data)
{
    Hammer *h = data;

    while (!g_atomic_int_get(&h->stop)) {
        g_autoptr(GSocketClient) client = g_socket_client_new();
        g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(h->path);
        g_autoptr(GSocketConnection) conn =
            g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr), NULL, NULL);
        const char *line = "{\"cmd\":\"status\"}\n";
        char buf[4096];

        if (conn == NULL) {
            g_usleep(200);
            continue;
        }
        if (!g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(conn)), line,
                                       strlen(line), NULL, NULL, NULL))
            continue;
        if (g_input_stream_read(g_io_stream_get_input_stream(G_IO_STREAM(conn)), buf, sizeof(buf),
                                NULL, NULL) > 0)
            g_atomic_int_inc(&h->answered);
    }
    return NULL;
}

static gboolean quit_soon(gpointer data)
{
    broker_quit(data, "test stop");
    return G_SOURCE_REMOVE;
}

/* Requests keep arriving while ballastd stops (the final drain of the main
 * context, broker_free): none may reach a freed VM table or a freed control
 * socket. Under AddressSanitizer the old order (VM table freed before the
 * control socket) reports heap-use-after-free here. */
static void test_stop_under_requests(Fixture *f, gconstpointer data)
{
    Hammer h = {.path = f->ctl};
    GThread *threads[2];
    guint answered_before = 0;

    for (guint round = 0; round < 6; round++) {
        g_autoptr(GError) e = NULL;

        start(f);
        g_atomic_int_set(&h.stop, FALSE);
        for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
            threads[i] = g_thread_new("hammer", hammer_thread, &h);
        g_timeout_add(150, quit_soon, f->b);
        guint guard = g_timeout_add_seconds(30, hang_guard, NULL);
        g_assert_true(broker_run(f->b, &e));
        g_source_remove(guard);
        /* The threads still knock while the broker is freed. */
        broker_free(f->b);
        f->b = NULL;
        g_atomic_int_set(&h.stop, TRUE);
        for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
            g_thread_join(threads[i]);
        /* Each round answered requests: the loop did run under load. */
        g_assert_cmpuint(g_atomic_int_get(&h.answered), >, answered_before);
        answered_before = g_atomic_int_get(&h.answered);
    }
}

/* A guest cannot fill the disk through the event log: per VM and event kind
 * a rate limit (counted, "suppressed" on the next line), and a size cap that
 * a reopen (SIGHUP after logrotate) lifts. */
static void test_evlog_bounds(void)
{
    g_autofree char *dir = g_dir_make_tmp("ballast-evlog-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "events.json", NULL);
    g_autofree char *rotated = g_build_filename(dir, "events.json.1", NULL);
    g_autoptr(GError) e = NULL;
    Evlog *log = evlog_new(path, &e);
    g_autofree char *text = NULL;

    g_assert_no_error(e);
    for (int i = 0; i < 1000; i++) {
        evlog_emit(log, "report", "flooder", NULL);
        evlog_emit(log, "report", "honest", NULL); /* its own bucket */
    }
    evlog_emit(log, "connect", NULL, NULL); /* host events are not limited */
    /* the burst of each, and nothing more at a standing clock */
    g_assert_cmpuint(evlog_suppressed(log), >=, 2 * (1000 - (guint)EVLOG_VM_BURST) - 4);
    g_assert_cmpuint(evlog_suppressed(log), <=, 2 * (1000 - (guint)EVLOG_VM_BURST));
    g_usleep(G_USEC_PER_SEC / 2); /* a couple of tokens come back */
    evlog_emit(log, "report", "flooder", NULL);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_nonnull(strstr(text, "\"suppressed\":"));
    g_assert_nonnull(strstr(text, "\"event\":\"connect\""));
    g_clear_pointer(&text, g_free);

    /* the size cap: one "event-log-full" line, then nothing */
    evlog_set_max_bytes(log, 4096 + evlog_bytes_written(log));
    for (int i = 0; i < 200; i++)
        evlog_emit(log, "connect", NULL, NULL);
    GStatBuf st;
    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, <=, (goffset)(4096 + evlog_bytes_written(log)));
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_nonnull(strstr(text, "event-log-full"));
    gsize full_size = strlen(text);
    g_clear_pointer(&text, g_free);
    evlog_emit(log, "connect", NULL, NULL);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_cmpuint(strlen(text), ==, full_size);
    g_clear_pointer(&text, g_free);

    /* logrotate moves it, SIGHUP reopens: written again */
    g_assert_cmpint(g_rename(path, rotated), ==, 0);
    g_assert_true(evlog_reopen(log, &e));
    evlog_emit(log, "connect", NULL, NULL);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_nonnull(strstr(text, "\"event\":\"connect\""));
    evlog_free(log);
    g_unlink(path);
    g_unlink(rotated);
    g_rmdir(dir);
}

/* ---- a libvirtd that never answers ---- */

typedef struct {
    Fixture *f;
    char *reply;
    gint64 took_us;
    gint done;
} HungCtx;

static gpointer hung_status_thread(gpointer data)
{
    HungCtx *c = data;
    gint64 t0 = g_get_monotonic_time();

    /* the control socket exists once broker_run is in its loop */
    while (!g_file_test(c->f->ctl, G_FILE_TEST_EXISTS))
        g_usleep(10000);
    c->reply = ctl_request(c->f->ctl, "{\"cmd\":\"status\"}\n");
    c->took_us = g_get_monotonic_time() - t0;
    g_atomic_int_set(&c->done, TRUE);
    return NULL;
}

static gboolean hung_check(gpointer data)
{
    HungCtx *c = data;

    if (!g_atomic_int_get(&c->done))
        return G_SOURCE_CONTINUE;
    broker_quit(c->f->b, "test done");
    return G_SOURCE_REMOVE;
}

/* A libvirtd that accepts the connection and never says a word (hung, or
 * SIGSTOPped): the broker's loop still runs, ballastctl status answers and
 * says libvirt is not connected. With virConnectOpen on the main loop the
 * start blocked forever here. */
static void test_hung_libvirtd(Fixture *f, gconstpointer data)
{
    g_autofree char *sock = g_build_filename(f->dir, "libvirt-sock", NULL);
    g_autoptr(GSocket) listener =
        g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, NULL);
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(sock);
    g_autoptr(GError) e = NULL;
    HungCtx c = {.f = f};

    g_assert_true(g_socket_bind(listener, addr, TRUE, &e));
    g_assert_true(g_socket_listen(listener, &e)); /* and never accept */
    g_free(f->uri);
    f->uri = g_strdup_printf("qemu+unix:///system?socket=%s&no_verify=1", sock);
    start(f);
    GThread *t = g_thread_new("status", hung_status_thread, &c);
    g_timeout_add(20, hung_check, &c);
    guint guard = g_timeout_add_seconds(40, hang_guard, NULL);
    g_assert_true(broker_run(f->b, &e));
    g_assert_no_error(e);
    g_source_remove(guard);
    g_thread_join(t);

    json_object *o = json_tokener_parse(c.reply);
    g_assert_nonnull(o);
    json_object *st = json_object_object_get(o, "status");
    g_assert_nonnull(st);
    g_assert_cmpstr(sget(st, "connected"), ==, "false");
    json_object_put(o);
    g_free(c.reply);
    /* the daemon goes away: the open in flight fails and is cleaned up */
    g_socket_close(listener, NULL);
    g_unlink(sock);
}

/* ---- ballastctl against the running loop ---- */

/* Debian's nogroup, the group of user nobody (65534). */
#define NOGROUP_GID 65534

typedef struct {
    int rc;
    char *out, *err;
} CtlRun;

static void ctl_run_clear(CtlRun *r)
{
    g_clear_pointer(&r->out, g_free);
    g_clear_pointer(&r->err, g_free);
}

/* The NULL-terminated arguments after `last` (a va_list). */
static GPtrArray *args_of(va_list ap)
{
    GPtrArray *a = g_ptr_array_new();
    for (char *arg; (arg = va_arg(ap, char *)) != NULL;)
        g_ptr_array_add(a, arg);
    return a;
}

/* Run ballastctl --control SOCK ARGS... and wait for it; as user nobody in
 * group as_gid only, unless as_gid is -1. */
static CtlRun ctl_args_as(const char *sock, gint as_gid, GPtrArray *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) e = NULL;
    CtlRun r = {0};
    int status = 0;
    char control[] = "--control";

    g_autofree char *regid = g_strdup_printf("--regid=%d", as_gid);
    char setpriv[] = "setpriv", reuid[] = "--reuid=65534", clear[] = "--clear-groups";

    if (as_gid >= 0) {
        g_ptr_array_add(argv, setpriv);
        g_ptr_array_add(argv, reuid);
        g_ptr_array_add(argv, regid);
        g_ptr_array_add(argv, clear);
    }
    g_assert_nonnull(g_getenv("BALLASTCTL"));
    g_ptr_array_add(argv, (char *)g_getenv("BALLASTCTL"));
    g_ptr_array_add(argv, control);
    g_ptr_array_add(argv, (char *)sock);
    for (guint i = 0; i < args->len; i++)
        g_ptr_array_add(argv, args->pdata[i]);
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               &r.out, &r.err, &status, &e));
    g_assert_no_error(e);
    g_assert_true(WIFEXITED(status));
    r.rc = WEXITSTATUS(status);
    return r;
}

static CtlRun ctl_args(const char *sock, GPtrArray *args)
{
    return ctl_args_as(sock, -1, args);
}

/* ballastctl status as nobody, in group gid only. */
static CtlRun ctl_status_as(const char *sock, gint gid)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    char status[] = "status";

    g_ptr_array_add(args, status);
    return ctl_args_as(sock, gid, args);
}

/* ballastctl ARGS... exits with rc, and says want (if not NULL): on stdout
 * when it succeeds, else on stderr, as one line "ballastctl: ...", with
 * nothing on stdout. */
static void ctl_expect(const char *sock, int rc, const char *want, ...)
{
    va_list ap;

    va_start(ap, want);
    g_autoptr(GPtrArray) args = args_of(ap);
    va_end(ap);
    CtlRun r = ctl_args(sock, args);
    const char *said = rc == 0 ? r.out : r.err;
    g_test_message("ballastctl %s ...: rc %d: %s", args->len ? (char *)args->pdata[0] : "", r.rc,
                   said);
    g_assert_cmpint(r.rc, ==, rc);
    if (want != NULL && strstr(said, want) == NULL)
        g_error("ballastctl %s: \"%s\" not in: %s", (char *)args->pdata[0], want, said);
    if (rc != 0) {
        g_assert_true(g_str_has_prefix(r.err, "ballastctl: "));
        g_assert_true(strchr(r.err, '\n') == r.err + strlen(r.err) - 1); /* one line */
        g_assert_cmpstr(r.out, ==, "");
    }
    ctl_run_clear(&r);
}

#define ctl_ok(sock, want, ...)      ctl_expect(sock, 0, want, __VA_ARGS__)
#define ctl_refused(sock, want, ...) ctl_expect(sock, 1, want, __VA_ARGS__)

static json_object *ctl_json(const char *sock, const char *cmd, const char *vm)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    char json[] = "--json";

    g_ptr_array_add(args, (char *)cmd);
    g_ptr_array_add(args, json);
    if (vm != NULL)
        g_ptr_array_add(args, (char *)vm);
    CtlRun r = ctl_args(sock, args);
    g_assert_cmpint(r.rc, ==, 0);
    json_object *o = json_tokener_parse(r.out);
    g_assert_nonnull(o);
    ctl_run_clear(&r);
    return o;
}

static json_object *jget(json_object *o, const char *k)
{
    json_object *v = NULL;
    g_assert_true(json_object_object_get_ex(o, k, &v));
    return v;
}

/* One VM's status object, asked by name. */
static json_object *ctl_vm(const char *sock, const char *name)
{
    json_object *st = ctl_json(sock, "status", name);
    json_object *vms = jget(st, "vms");
    g_assert_cmpuint(json_object_array_length(vms), ==, 1);
    json_object *vm = json_object_get(json_object_array_get_idx(vms, 0));
    json_object_put(st);
    g_assert_cmpstr(sget(vm, "name"), ==, name);
    return vm;
}

static void assert_vm_mode(const char *sock, const char *name, const char *mode,
                           const char *released)
{
    json_object *vm = ctl_vm(sock, name);
    g_assert_cmpstr(sget(vm, "mode"), ==, mode);
    g_assert_cmpstr(sget(vm, "released"), ==, released);
    json_object_put(vm);
}

/* Wait (bounded by the test's guard) until the event log has n events like these. */
static json_object *wait_event(Fixture *f, const char *event, const char *vm, const char *key,
                               const char *value, guint n)
{
    for (;;) {
        g_autoptr(GPtrArray) ev = events(f);
        guint seen = 0;
        for (guint i = 0; i < ev->len; i++) {
            json_object *o = ev->pdata[i];
            if (g_strcmp0(sget(o, "event"), event) == 0 && g_strcmp0(sget(o, "vm"), vm) == 0 &&
                (key == NULL || g_strcmp0(sget(o, key), value) == 0) && ++seen == n)
                return json_object_get(o);
        }
        g_usleep(20000);
    }
}

static gpointer ctl_script(gpointer data)
{
    Fixture *f = data;
    const char *s = f->ctl;

    /* status: every VM, or those named; the new fields are there. */
    json_object *st = ctl_json(s, "status", NULL);
    json_object *host = jget(st, "host");
    g_assert_cmpint(json_object_get_int64(jget(host, "reserve_kib")), >, 0);
    g_assert_cmpint(json_object_get_int64(jget(host, "short_kib")), ==, 0);
    g_assert_cmpstr(sget(st, "on_stop"), ==, "keep");
    g_assert_cmpuint(json_object_array_length(jget(st, "vms")), ==, 3);
    json_object_put(st);
    json_object *vm = ctl_vm(s, "bk-floor");
    g_assert_cmpstr(sget(jget(vm, "trust"), "trusted"), ==, "true");
    g_assert_true(json_object_is_type(jget(vm, "entitlement_kib"), json_type_null));
    g_assert_cmpuint(json_object_object_length(jget(vm, "overrides")), ==, 0);
    g_assert_cmpstr(sget(vm, "released"), ==, "false");
    g_assert_cmpstr(sget(jget(vm, "last_decision"), "reason_code"), ==, "floor");
    g_assert_true(json_object_is_type(jget(jget(vm, "agent"), "protocol"), json_type_null));
    json_object_put(vm);
    ctl_ok(s, "    last: deflate to 3072 MiB [floor]", "status", NULL); /* the table */
    ctl_refused(s, "unknown VM \"nope\"", "status", "bk-floor", "nope", NULL);

    /* explain: newest first, with its inputs. */
    json_object *ex = ctl_json(s, "explain", "bk-floor");
    json_object *entries = jget(ex, "entries");
    g_assert_cmpuint(json_object_array_length(entries), >=, 1);
    g_assert_cmpint(json_object_get_int(jget(ex, "bound")), ==, BROKER_HISTORY_MAX);
    json_object *h = json_object_array_get_idx(entries, 0);
    g_assert_cmpstr(sget(h, "what"), ==, "decision");
    g_assert_cmpstr(sget(h, "reason_code"), ==, "floor");
    g_assert_cmpstr(sget(h, "target_kib"), ==, "3145728");
    g_assert_cmpstr(sget(jget(h, "inputs"), "actual_kib"), ==, "2097152");
    g_assert_cmpstr(sget(jget(h, "inputs"), "host_available_kib"), ==, "21000000");
    g_assert_nonnull(strstr(sget(h, "text"), "below its floor"));
    json_object_put(ex);
    ctl_ok(s, "saw: balloon 2048 of 4096 MiB", "explain", "bk-floor", "--last", "1", NULL);
    ctl_refused(s, "unknown VM \"nope\"", "explain", "nope", NULL);
    ctl_refused(s, "bad --last 0", "explain", "bk-floor", "--last", "0", NULL);
    ctl_refused(s, "exactly one VM", "explain", NULL);

    /* set: bad input changes nothing. */
    ctl_refused(s, "bad size \"12XB\"", "set", "bk-floor", "floor", "12XB", NULL);
    ctl_refused(s, "above bk-floor's maximum", "set", "bk-floor", "floor", "5GiB", NULL);
    ctl_refused(s, "bad mode \"obs\"", "set", "bk-floor", "mode", "obs", NULL);
    ctl_refused(s, "bad shares \"0\"", "set", "bk-floor", "shares", "0", NULL);
    ctl_refused(s, "unknown setting \"colour\"", "set", "bk-floor", "colour", "red", NULL);
    ctl_refused(s, "unknown VM \"nope\"", "set", "nope", "mode", "auto", NULL);
    ctl_refused(s, "wants VM mode|floor|shares VALUE", "set", "bk-floor", "mode", NULL);
    vm = ctl_vm(s, "bk-floor");
    g_assert_cmpstr(sget(vm, "mode"), ==, "auto");
    g_assert_cmpstr(sget(vm, "floor_kib"), ==, "3145728");
    g_assert_cmpuint(json_object_object_length(jget(vm, "overrides")), ==, 0);
    json_object_put(vm);

    /* shares and floor override the metadata until cleared. */
    ctl_ok(s, "shares 300", "set", "bk-floor", "shares", "300", NULL);
    vm = ctl_vm(s, "bk-floor");
    g_assert_cmpstr(sget(vm, "shares"), ==, "300");
    g_assert_cmpstr(sget(jget(vm, "overrides"), "shares"), ==, "300");
    json_object_put(vm);
    ctl_ok(s, NULL, "set", "bk-floor", "shares", "default", NULL);
    vm = ctl_vm(s, "bk-floor");
    g_assert_cmpstr(sget(vm, "shares"), ==, "500"); /* the metadata's again */
    json_object_put(vm);
    ctl_ok(s, NULL, "set", "bk-floor", "floor", "3500MiB", NULL);
    json_object_put(wait_event(f, "decision", "bk-floor", "target_kib", "3584000", 1));

    /* mode: the observed VM, set to auto, is acted on; default puts it back. */
    ctl_ok(s, NULL, "set", "bk-observe", "mode", "auto", NULL);
    json_object *set = wait_event(f, "set-memory", "bk-observe", NULL, NULL, 1);
    g_assert_cmpstr(sget(set, "target_kib"), ==, "1572864");
    json_object_put(set);
    vm = ctl_vm(s, "bk-observe");
    g_assert_cmpstr(sget(vm, "mode"), ==, "auto");
    g_assert_cmpstr(sget(jget(vm, "overrides"), "mode"), ==, "auto");
    json_object_put(vm);
    ctl_ok(s, "auto*", "status", NULL);
    ctl_ok(s, NULL, "set", "bk-observe", "mode", "default", NULL);
    vm = ctl_vm(s, "bk-observe");
    g_assert_cmpstr(sget(vm, "mode"), ==, "observe");
    g_assert_cmpuint(json_object_object_length(jget(vm, "overrides")), ==, 0);
    json_object_put(vm);

    /* release: a typo releases nothing; a good name deflates to the maximum. */
    ctl_refused(s, "unknown VM \"nope\"", "release", "bk-floor", "nope", NULL);
    ctl_refused(s, "VM names or --all", "release", NULL);
    ctl_refused(s, "VM names or --all", "release", "--all", "bk-floor", NULL);
    assert_vm_mode(s, "bk-floor", "auto", "false");
    ctl_ok(s, "bk-floor: released\n    mode off (override)\n    balloon 3500 -> 4096 MiB",
           "release", "bk-floor", NULL);
    set = wait_event(f, "set-memory", "bk-floor", "target_kib", "4194304", 1);
    json_object_put(set);
    json_object *d = wait_event(f, "decision", "bk-floor", "reason_code", "release", 1);
    g_assert_cmpstr(sget(d, "applied"), ==, "true");
    json_object_put(d);
    assert_vm_mode(s, "bk-floor", "off", "true");
    ex = ctl_json(s, "explain", "bk-floor");
    h = json_object_array_get_idx(jget(ex, "entries"), 0);
    g_assert_cmpstr(sget(h, "what"), ==, "operator");
    g_assert_nonnull(strstr(sget(h, "text"), "released"));
    h = json_object_array_get_idx(jget(ex, "entries"), 1);
    g_assert_cmpstr(sget(h, "reason_code"), ==, "release");
    g_assert_cmpstr(sget(h, "target_kib"), ==, "4194304");
    json_object_put(ex);
    /* ... and resumed. */
    ctl_ok(s, NULL, "set", "bk-floor", "mode", "default", NULL);
    assert_vm_mode(s, "bk-floor", "auto", "false");

    /* release --all: every VM but the one off by its own metadata. */
    ctl_ok(s, "bk-off: left alone", "release", "--all", NULL);
    json_object_put(wait_event(f, "set-memory", "bk-observe", "target_kib", "4194304", 1));

    /* reload; commands that do not exist; no broker there (exit 2). */
    ctl_ok(s, NULL, "reload", NULL);
    ctl_refused(s, "unknown command \"frobnicate\"", "frobnicate", NULL);
    ctl_refused(s, "--last is for explain", "status", "--last", "3", NULL);
    g_autofree char *none = g_build_filename(f->dir, "none.sock", NULL);
    g_autofree char *want = g_strdup_printf("ballastctl: cannot reach ballastd at %s: ", none);
    ctl_expect(none, 2, want, "status", NULL);
    ctl_expect(none, 2, "(is ballastd running?)", "reload", NULL);

    g_atomic_int_set(&f->ctl_done, TRUE);
    return NULL;
}

/* Every ballastctl command, as a person runs it, against the running loop. */
static void test_ctl(Fixture *f, gconstpointer data)
{
    f->script = ctl_script;
    start(f);
    run(f);
    g_assert_true(g_atomic_int_get(&f->ctl_done)); /* stopped by the script, not a signal */
}

/* [broker] on_stop = release: stopping deflates every managed VM to its maximum. */
static void test_on_stop_release(Fixture *f, gconstpointer data)
{
    g_assert_true(
        g_file_set_contents(f->conf, "[broker]\ntick_ms = 100\non_stop = release\n", -1, NULL));
    f->dry_run = TRUE; /* check() stops at the first decisions */
    start(f);
    run(f);
    g_autoptr(GPtrArray) ev = events(f);
    /* dry-run: said, not done */
    g_assert_null(find(ev, "set-memory", NULL, NULL));
    json_object *d = find(ev, "decision", "bk-observe", NULL);
    guint n = 0;
    for (guint i = 0; i < ev->len; i++)
        if (g_strcmp0(sget(ev->pdata[i], "reason_code"), "release") == 0)
            d = ev->pdata[i], n++;
    g_assert_cmpuint(n, ==, 2); /* bk-floor and bk-observe; bk-off is off by metadata */
    g_assert_cmpstr(sget(d, "target_kib"), ==, "4194304");
    g_assert_cmpstr(sget(d, "why_not_applied"), ==, "dry-run");
    g_assert_null(find(ev, "operator", "bk-off", NULL));
    g_assert_nonnull(find(ev, "operator", "bk-floor", NULL));
}

/* The same, applied: after the stop, libvirt has every managed VM at its maximum. */
static void test_on_stop_release_applied(Fixture *f, gconstpointer data)
{
    g_assert_true(
        g_file_set_contents(f->conf, "[broker]\ntick_ms = 100\non_stop = release\n", -1, NULL));
    f->only = "bk-o*";
    start(f);
    run_observe(f);
    g_autoptr(GPtrArray) ev = events(f);
    guint n;
    json_object *s = find(ev, "set-memory", "bk-observe", &n);
    g_assert_cmpuint(n, ==, 1);
    g_assert_cmpstr(sget(s, "target_kib"), ==, "4194304");
    g_assert_cmpstr(sget(s, "ok"), ==, "true");
    g_assert_null(find(ev, "set-memory", "bk-off", NULL));
}

/* A member of control_group (nobody in nogroup) may use the socket. */
static gpointer nogroup_script(gpointer data)
{
    Fixture *f = data;
    CtlRun r = ctl_status_as(f->ctl, NOGROUP_GID);

    g_assert_cmpint(r.rc, ==, 0);
    g_assert_nonnull(strstr(r.out, "bk-observe"));
    ctl_run_clear(&r);
    g_atomic_int_set(&f->ctl_done, TRUE);
    return NULL;
}

/* The control socket is root-only, or root and control_group; an unknown
 * group stops the start with the group named. */
static void test_control_group(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;
    GStatBuf st;
    struct group *gr = getgrgid(NOGROUP_GID);

    g_assert_nonnull(gr);
    g_assert_cmpint(g_chmod(f->dir, 0755), ==, 0); /* others may reach the socket */
    f->dry_run = TRUE;
    start(f);
    run_observe(f);
    g_assert_cmpint(g_stat(f->ctl, &st), ==, 0); /* there until broker_free */
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    /* Anyone else: refused by the kernel, exit 2, the way in named. */
    CtlRun r = ctl_status_as(f->ctl, NOGROUP_GID);
    g_assert_cmpint(r.rc, ==, 2);
    g_assert_nonnull(strstr(r.err, "Permission denied"));
    g_assert_nonnull(strstr(r.err, "control_group"));
    ctl_run_clear(&r);
    broker_free(f->b);
    f->b = NULL;

    g_assert_true(
        g_file_set_contents(f->conf, "[broker]\ncontrol_group = nosuchgroupxyz\n", -1, NULL));
    start(f);
    g_assert_false(broker_run(f->b, &e));
    g_assert_nonnull(strstr(e->message, "control_group \"nosuchgroupxyz\": no such group"));
    g_assert_cmpint(g_stat(f->ctl, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    broker_free(f->b);
    f->b = NULL;

    g_autofree char *conf = g_strdup_printf("[broker]\ncontrol_group = %s\n", gr->gr_name);
    g_assert_true(g_file_set_contents(f->conf, conf, -1, NULL));
    f->script = nogroup_script;
    f->dry_run = FALSE; /* check() runs the script only then */
    start(f);
    run(f);
    g_assert_true(g_atomic_int_get(&f->ctl_done));
    g_assert_cmpint(g_stat(f->ctl, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0660);
    g_assert_cmpint(st.st_gid, ==, NOGROUP_GID);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define T(name, fn)                                                                                \
    g_test_add("/broker/" name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
    T("floor-and-modes", test_floor_and_modes);
    T("dry-run", test_dry_run);
    T("only", test_only);
    T("pressure", test_pressure);
    T("grace", test_grace);
    T("bad-config", test_bad_config);
    T("reload-keeps-running", test_reload_keeps_running);
    T("bad-uri", test_bad_uri);
    T("stop-under-requests", test_stop_under_requests);
    T("hung-libvirtd", test_hung_libvirtd);
    T("ctl", test_ctl);
    T("on-stop-release", test_on_stop_release);
    T("on-stop-release-applied", test_on_stop_release_applied);
    T("control-group", test_control_group);
    g_test_add_func("/broker/control-idle-client", test_control_idle_client);
    g_test_add_func("/broker/note-key", test_note_key);
    g_test_add_func("/broker/evlog", test_evlog);
    g_test_add_func("/broker/evlog-bounds", test_evlog_bounds);
    g_test_add_func("/broker/host", test_host);
    return g_test_run();
}
