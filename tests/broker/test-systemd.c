/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ballastd under systemd, without systemd: the whole broker loop in-process
 * against the libvirt test driver, with NOTIFY_SOCKET pointing at a unix
 * datagram socket this test reads (READY=1 after connect and a first cycle,
 * STATUS=, RELOADING=1 + MONOTONIC_USEC then READY=1 on reload, WATCHDOG=1
 * with WATCHDOG_USEC, STOPPING=1), and a reload whose metrics address is
 * taken, which must keep the running configuration. Then the journal path of
 * the event log: structured fields when JOURNAL_STREAM names stderr.
 */
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "broker.h"
#include "evlog.h"
#include "metrics.h"

typedef struct {
    char *dir, *conf, *ctl, *notify;
    GSocket *sock;
    Broker *b;
    GPtrArray *msgs; /* every datagram, in order */
    guint ready, reloading, watchdog, stopping;
    gboolean ready_connected; /* the broker was connected and had cycled at READY=1 */
    gboolean reload_ok, reload_bad_ok;
    char *reload_error;
    guint phase;
    GSocket *squatter; /* holds the port the bad reload asks for */
    guint port;
} Fixture;

static guint bind_free_port(GSocket **out)
{
    GSocket *s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
    g_assert_true(g_socket_bind(s, any, FALSE, NULL));
    g_assert_true(g_socket_listen(s, NULL));
    g_autoptr(GSocketAddress) got = g_socket_get_local_address(s, NULL);
    *out = s;
    return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(got));
}

static gboolean hang_guard(gpointer data)
{
    g_error("the broker never sent the expected notifications");
    return G_SOURCE_REMOVE;
}

static json_object *jget(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static void on_message(Fixture *f, const char *m)
{
    g_ptr_array_add(f->msgs, g_strdup(m));
    if (strstr(m, "READY=1") != NULL) {
        f->ready++;
        if (f->ready == 1) {
            json_object *st = broker_status(f->b);
            f->ready_connected = json_object_get_boolean(jget(st, "connected")) &&
                                 json_object_get_uint64(jget(st, "cycles")) >= 1;
            json_object_put(st);
        }
    }
    if (strstr(m, "RELOADING=1") != NULL)
        f->reloading++;
    if (strcmp(m, "WATCHDOG=1") == 0)
        f->watchdog++;
    if (strstr(m, "STOPPING=1") != NULL)
        f->stopping++;
}

static gboolean poll_notify(gpointer data)
{
    Fixture *f = data;
    char buf[4096];
    gssize n;

    while ((n = g_socket_receive(f->sock, buf, sizeof(buf) - 1, NULL, NULL)) > 0) {
        buf[n] = '\0';
        on_message(f, buf);
    }
    switch (f->phase) {
    case 0: /* started: wait for READY and two watchdog pings */
        if (f->ready < 1 || f->watchdog < 2)
            return G_SOURCE_CONTINUE;
        f->reload_ok = broker_reload(f->b, NULL);
        f->phase = 1;
        return G_SOURCE_CONTINUE;
    case 1: { /* a reload that asks for a port that is taken */
        g_autofree char *text = g_strdup_printf("[broker]\ntick_ms = 100\n"
                                                "[metrics]\nlisten = 127.0.0.1:%u\n",
                                                f->port);
        g_assert_true(g_file_set_contents(f->conf, text, -1, NULL));
        g_autoptr(GError) e = NULL;
        f->reload_bad_ok = broker_reload(f->b, &e);
        f->reload_error = e ? g_strdup(e->message) : NULL;
        f->phase = 2;
        return G_SOURCE_CONTINUE;
    }
    case 2:
        if (f->ready < 3)
            return G_SOURCE_CONTINUE;
        broker_quit(f->b, "test done");
        f->phase = 3;
        return G_SOURCE_CONTINUE;
    default:
        return G_SOURCE_REMOVE;
    }
}

static void test_notify(void)
{
    const char *td = g_getenv("BALLAST_TEST_DATA");
    g_autoptr(GError) e = NULL;
    Fixture fx = {0}, *f = &fx;

    g_assert_nonnull(td);
    f->dir = g_dir_make_tmp("ballast-systemd-XXXXXX", &e);
    g_assert_no_error(e);
    f->conf = g_build_filename(f->dir, "ballastd.conf", NULL);
    f->ctl = g_build_filename(f->dir, "ctl.sock", NULL);
    f->notify = g_build_filename(f->dir, "notify.sock", NULL);
    f->msgs = g_ptr_array_new_with_free_func(g_free);
    f->port = bind_free_port(&f->squatter);
    g_assert_true(g_file_set_contents(f->conf, "[broker]\ntick_ms = 100\n", -1, NULL));

    f->sock =
        g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_DEFAULT, &e);
    g_assert_no_error(e);
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(f->notify);
    g_assert_true(g_socket_bind(f->sock, addr, FALSE, &e));
    g_socket_set_blocking(f->sock, FALSE);
    g_setenv("NOTIFY_SOCKET", f->notify, TRUE);
    g_setenv("WATCHDOG_USEC", "100000", TRUE);
    g_autofree char *pid = g_strdup_printf("%d", getpid());
    g_setenv("WATCHDOG_PID", pid, TRUE);

    g_autofree char *abs = g_canonicalize_filename(td, NULL);
    g_autofree char *uri = g_strdup_printf("test://%s/broker/test-node.xml", abs);
    g_autofree char *host_root = g_build_filename(abs, "broker", "host-ok", NULL);
    BrokerOptions opt = {
        .uri = uri,
        .config_path = f->conf,
        .config_explicit = TRUE,
        .control_path = f->ctl,
        .host_root = host_root,
    };
    f->b = broker_new(&opt, &e);
    g_assert_no_error(e);
    guint guard = g_timeout_add_seconds(60, hang_guard, NULL);
    g_timeout_add(10, poll_notify, f);
    g_assert_true(broker_run(f->b, &e));
    g_assert_no_error(e);
    g_source_remove(guard);
    poll_notify(f); /* what was sent while stopping */

    for (guint i = 0; i < f->msgs->len; i++)
        g_test_message("notify: %s", (const char *)f->msgs->pdata[i]);
    /* READY=1 came once libvirt was connected and a cycle had run, with a
     * one-line STATUS= */
    g_assert_true(f->ready_connected);
    const char *first_ready = NULL;
    for (guint i = 0; i < f->msgs->len && first_ready == NULL; i++)
        if (strstr(f->msgs->pdata[i], "READY=1"))
            first_ready = f->msgs->pdata[i];
    g_assert_nonnull(strstr(first_ready, "\nSTATUS=3 running VMs, 0 agents; host "));
    /* Each reload: RELOADING=1 with MONOTONIC_USEC, then READY=1 again, the
     * failed one too (the old configuration runs on). */
    g_assert_true(f->reload_ok);
    g_assert_false(f->reload_bad_ok);
    g_assert_nonnull(f->reload_error);
    g_assert_nonnull(strstr(f->reload_error, "in use"));
    g_assert_cmpuint(f->reloading, ==, 2);
    g_assert_cmpuint(f->ready, ==, 3);
    guint seen_reloading = 0;
    for (guint i = 0; i < f->msgs->len; i++) {
        const char *m = f->msgs->pdata[i];
        if (strstr(m, "RELOADING=1")) {
            g_assert_true(g_str_has_prefix(strstr(m, "\nMONOTONIC_USEC="), "\nMONOTONIC_USEC="));
            seen_reloading++;
        } else if (strstr(m, "READY=1") && seen_reloading > 0) {
            g_assert_true(seen_reloading <= 2);
        }
    }
    g_assert_cmpuint(f->watchdog, >=, 2);
    g_assert_cmpuint(f->stopping, ==, 1);

    /* The broker's metrics after the run: bk-floor was raised to its floor. */
    g_autoptr(MetricsSnapshot) snap = metrics_snapshot(f->b);
    g_autofree char *text = metrics_render(snap);
    g_assert_nonnull(strstr(text, "ballast_vm_decisions_total{domain=\"bk-floor\",kind=\"deflate\","
                                  "reason=\"floor\"} 1\n"));
    g_assert_nonnull(strstr(text, "ballast_vm_floor_bytes{domain=\"bk-floor\"} 3221225472\n"));
    g_assert_nonnull(
        strstr(text, "ballast_vm_balloon_target_bytes{domain=\"bk-floor\"} 3221225472\n"));
    g_assert_null(strstr(text, "domain=\"bk-off\",kind="));
    g_assert_nonnull(strstr(text, "ballast_cycle_duration_seconds_count "));
    g_assert_null(strstr(text, "ballast_cycle_duration_seconds_count 0\n"));

    broker_free(f->b);
    g_unsetenv("NOTIFY_SOCKET");
    g_unsetenv("WATCHDOG_USEC");
    g_unsetenv("WATCHDOG_PID");
    g_object_unref(f->sock);
    g_object_unref(f->squatter);
    g_unlink(f->notify);
    g_unlink(f->conf);
    g_unlink(f->ctl);
    g_rmdir(f->dir);
    g_free(f->dir);
    g_free(f->conf);
    g_free(f->ctl);
    g_free(f->notify);
    g_free(f->reload_error);
    g_ptr_array_unref(f->msgs);
}

/* ---- the journal ---- */

static GPtrArray *captured; /* of GHashTable key -> value, one per line */

static GLogWriterOutput capture(GLogLevelFlags level, const GLogField *fields, gsize n,
                                gpointer data)
{
    gboolean ours = FALSE;
    for (gsize i = 0; i < n; i++)
        ours |= strcmp(fields[i].key, "SYSLOG_IDENTIFIER") == 0 && fields[i].length < 0 &&
                strcmp(fields[i].value, "ballastd") == 0;
    /* GLib's own messages (G_MESSAGES_DEBUG) go their usual way. */
    if (captured == NULL || !ours)
        return g_log_writer_default(level, fields, n, data);
    GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (gsize i = 0; i < n; i++)
        g_hash_table_insert(h, g_strdup(fields[i].key),
                            fields[i].length < 0
                                ? g_strdup(fields[i].value)
                                : g_strndup(fields[i].value, (gsize)fields[i].length));
    g_ptr_array_add(captured, h);
    return G_LOG_WRITER_HANDLED;
}

static void test_journal(void)
{
    struct stat st;

    g_assert_cmpint(fstat(STDERR_FILENO, &st), ==, 0);
    g_autofree char *stream =
        g_strdup_printf("%lu:%lu", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
    captured = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);

    /* stderr is "the journal": structured lines with priority and fields. */
    g_setenv("JOURNAL_STREAM", stream, TRUE);
    Evlog *log = evlog_new(NULL, NULL);
    g_assert_true(evlog_to_journal(log));
    EvlogTags tags = {LOG_NOTICE, "vm-1", "deflate", "pressure"};
    evlog_say_tagged(log, TRUE, &tags, "vm-1: +256 MiB (psi some avg10 4.2%% > 1.0%%)");
    evlog_say(log, FALSE, "plain chatter");
    evlog_say(log, TRUE, "a note");
    EvlogTags err = {LOG_ERR, "vm-2", "set-memory", NULL};
    evlog_say_tagged(log, TRUE, &err, "vm-2: setting the balloon failed");
    evlog_free(log);

    g_assert_cmpuint(captured->len, ==, 4);
    GHashTable *h = captured->pdata[0];
    g_assert_cmpstr(g_hash_table_lookup(h, "MESSAGE"), ==,
                    "vm-1: +256 MiB (psi some avg10 4.2% > 1.0%)");
    g_assert_cmpstr(g_hash_table_lookup(h, "PRIORITY"), ==, "5");
    g_assert_cmpstr(g_hash_table_lookup(h, "SYSLOG_IDENTIFIER"), ==, "ballastd");
    g_assert_cmpstr(g_hash_table_lookup(h, "BALLAST_DOMAIN"), ==, "vm-1");
    g_assert_cmpstr(g_hash_table_lookup(h, "BALLAST_ACTION"), ==, "deflate");
    g_assert_cmpstr(g_hash_table_lookup(h, "BALLAST_REASON"), ==, "pressure");
    h = captured->pdata[1];
    g_assert_cmpstr(g_hash_table_lookup(h, "PRIORITY"), ==, "6"); /* info */
    g_assert_false(g_hash_table_contains(h, "BALLAST_DOMAIN"));
    h = captured->pdata[2];
    g_assert_cmpstr(g_hash_table_lookup(h, "PRIORITY"), ==, "5"); /* notice */
    h = captured->pdata[3];
    g_assert_cmpstr(g_hash_table_lookup(h, "PRIORITY"), ==, "3"); /* err */
    g_assert_cmpstr(g_hash_table_lookup(h, "BALLAST_DOMAIN"), ==, "vm-2");
    g_assert_false(g_hash_table_contains(h, "BALLAST_REASON"));

    /* Not the journal (another stream, or none): plain lines on stderr. */
    g_setenv("JOURNAL_STREAM", "1:1", TRUE);
    log = evlog_new(NULL, NULL);
    g_assert_false(evlog_to_journal(log));
    evlog_say_tagged(log, TRUE, &tags, "plain");
    evlog_free(log);
    g_unsetenv("JOURNAL_STREAM");
    log = evlog_new(NULL, NULL);
    g_assert_false(evlog_to_journal(log));
    evlog_free(log);
    g_assert_cmpuint(captured->len, ==, 4);
    g_clear_pointer(&captured, g_ptr_array_unref);
}

int main(int argc, char **argv)
{
    g_log_set_writer_func(capture, NULL, NULL);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/systemd/notify", test_notify);
    g_test_add_func("/systemd/journal", test_journal);
    return g_test_run();
}
