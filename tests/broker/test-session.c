/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sessions against a scripted fake agent over a socketpair: no libvirt, no
 * main loop, no sleeps. The test drives session_on_readable() itself and
 * moves an injected clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "evlog.h"
#include "protocol.h"
#include "session.h"

static gint64 fake_now;

static gint64 fake_clock(void)
{
    return fake_now;
}

typedef struct {
    int agent_fd; /* the fake agent's end */
    Session *s;
    Config cfg;
    Evlog *log;
    char *log_path;
    guint hellos, reports, closes;
    guint64 last_seq;
    BlReportReason last_reason;
    char *close_why;
} Fixture;

static void on_hello(Session *s, gpointer user_data)
{
    ((Fixture *)user_data)->hellos++;
}

static void on_report(Session *s, const BlReport *r, gpointer user_data)
{
    Fixture *f = user_data;
    f->reports++;
    f->last_seq = r->seq;
    f->last_reason = r->reason;
}

static void on_closed(Session *s, const char *why, gpointer user_data)
{
    Fixture *f = user_data;
    f->closes++;
    g_free(f->close_why);
    f->close_why = g_strdup(why);
}

static const SessionCallbacks callbacks = {
    .hello = on_hello,
    .report = on_report,
    .closed = on_closed,
};

static void fixture_open(Fixture *f, const char *name)
{
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    f->agent_fd = sv[1];
    g_assert_cmpint(fcntl(f->agent_fd, F_SETFL, O_NONBLOCK), ==, 0);
    SessionConfig sc;
    config_session(&f->cfg, &sc);
    f->s =
        session_new(name, session_transport_new_fd(sv[0]), &sc, &callbacks, f, f->log, fake_clock);
}

static void fixture_set_up(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;
    int fd;

    fake_now = 1000 * G_USEC_PER_SEC;
    config_init_defaults(&f->cfg);
    f->cfg.interval_ms = 2500;
    f->cfg.policy.stale_after_ms = 3000;
    fd = g_file_open_tmp("ballast-session-XXXXXX.json", &f->log_path, &e);
    g_assert_no_error(e);
    close(fd);
    f->log = evlog_new(f->log_path, &e);
    g_assert_no_error(e);
    fixture_open(f, "vm1");
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
    session_free(f->s);
    close(f->agent_fd);
    evlog_free(f->log);
    g_unlink(f->log_path);
    g_free(f->log_path);
    g_free(f->close_why);
    config_clear(&f->cfg);
}

/* Write everything (the socket buffer is large enough for these tests). */
static void agent_send(Fixture *f, const char *data, gsize len)
{
    while (len > 0) {
        gssize n = write(f->agent_fd, data, len);
        if (n < 0 && errno == EAGAIN) {
            /* Let the session drain some, as the main loop would. */
            session_on_readable(f->s);
            continue;
        }
        g_assert_cmpint(n, >, 0);
        data += n;
        len -= (gsize)n;
    }
}

static void agent_sendz(Fixture *f, const char *line)
{
    agent_send(f, line, strlen(line));
}

/* Read what the broker sent, without blocking. */
static GString *agent_recv(Fixture *f)
{
    GString *s = g_string_new(NULL);
    char buf[4096];
    gssize n;

    while ((n = read(f->agent_fd, buf, sizeof(buf))) > 0)
        g_string_append_len(s, buf, n);
    return s;
}

/* Decode the broker's lines (skipping 0xFF resync bytes). */
static GArray *decode_lines(const GString *s)
{
    GArray *msgs = g_array_new(FALSE, TRUE, sizeof(BlMessage));
    g_auto(GStrv) lines = g_strsplit(s->str, "\n", -1);

    for (guint i = 0; lines[i]; i++) {
        const char *l = lines[i];
        while (*l == (char)0xFF)
            l++;
        if (*l == '\0')
            continue;
        BlMessage m;
        g_autoptr(GError) e = NULL;
        g_assert_true(bl_proto_decode(l, strlen(l), &m, &e));
        g_assert_no_error(e);
        g_array_append_val(msgs, m);
    }
    return msgs;
}

static const char *hello_line =
    "{\"type\":\"hello\",\"v\":1,\"agent\":\"ballast-agent\",\"agent_version\":\"0.1.0\","
    "\"minor\":0,\"boot_id\":\"5c3b2a9e-7f1d-4e0a-9b8c-2d4e6f8a0b1c\",\"kernel\":\"6.1.0\","
    "\"interval_ms\":1000,\"balloon\":{\"present\":true,\"driver_bound\":true,\"pci\":"
    "[\"0000:00:05.0\"],\"kconfig\":\"m\"},\"features\":[\"psi\",\"psi-trigger\"]}\n";

static char *report_line(guint64 seq, const char *reason, guint64 avail)
{
    return g_strdup_printf(
        "{\"type\":\"report\",\"v\":1,\"seq\":%" G_GUINT64_FORMAT ",\"uptime_ms\":4021,"
        "\"reason\":\"%s\",\"mem\":{\"total_kib\":496412,\"available_kib\":%" G_GUINT64_FORMAT
        ",\"free_kib\":1000,\"cached_kib\":30412,\"swap_total_kib\":0,\"swap_free_kib\":0,"
        "\"committed_as_kib\":61240},\"psi\":{\"some\":{\"avg10\":12.34,\"avg60\":5.5,"
        "\"avg300\":0.91,\"total_us\":1203456},\"full\":{\"avg10\":3.0,\"avg60\":1.25,"
        "\"avg300\":0,\"total_us\":802}},\"vmstat\":{}}\n",
        seq, reason, avail);
}

static void send_report(Fixture *f, guint64 seq, const char *reason)
{
    g_autofree char *line = report_line(seq, reason, 401220);
    agent_sendz(f, line);
}

static guint count_events(Fixture *f, const char *needle)
{
    g_autofree char *text = NULL;
    guint n = 0;

    g_assert_true(g_file_get_contents(f->log_path, &text, NULL, NULL));
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_hello_welcome(Fixture *f, gconstpointer data)
{
    agent_sendz(f, hello_line);
    g_assert_true(session_on_readable(f->s));
    g_assert_cmpuint(f->hellos, ==, 1);

    const BlHello *h = session_hello(f->s);
    g_assert_nonnull(h);
    g_assert_cmpstr(h->agent, ==, "ballast-agent");
    g_assert_cmpstr(h->agent_version, ==, "0.1.0");
    g_assert_true(h->balloon.present);
    g_assert_cmpuint(h->n_features, ==, 2);

    g_autoptr(GString) out = agent_recv(f);
    g_assert_cmpuint(out->len, >, 1);
    g_assert_cmpint((guchar)out->str[0], ==, 0xFF); /* resync before the first message */
    g_autoptr(GArray) msgs = decode_lines(out);
    g_assert_cmpuint(msgs->len, ==, 1);
    BlMessage *w = &g_array_index(msgs, BlMessage, 0);
    g_assert_cmpint(w->type, ==, BL_MSG_WELCOME);
    g_assert_cmpstr(w->u.welcome.broker, ==, "ballastd");
    g_assert_cmpuint(w->u.welcome.interval_ms, ==, 2500);
    g_assert_true(w->u.welcome.has_psi_trigger);
    g_assert_cmpint(w->u.welcome.psi_trigger.kind, ==, BL_PSI_SOME);
    g_assert_cmpuint(w->u.welcome.psi_trigger.window_us, ==, f->cfg.psi_trigger_window_us);
    g_assert_cmpuint(count_events(f, "\"event\":\"hello\""), ==, 1);

    /* A reboot says hello again on the same port: welcomed again. */
    agent_sendz(f, hello_line);
    session_on_readable(f->s);
    g_assert_cmpuint(f->hellos, ==, 2);
    g_autoptr(GString) out2 = agent_recv(f);
    g_autoptr(GArray) msgs2 = decode_lines(out2);
    g_assert_cmpuint(msgs2->len, ==, 1);

    /* The same hello again and again (a looping or hostile guest): each is
     * answered, the log says it once per 10 s. */
    for (int i = 0; i < 20; i++)
        agent_sendz(f, hello_line);
    session_on_readable(f->s);
    g_assert_cmpuint(session_hellos(f->s), ==, 22);
    g_assert_cmpuint(count_events(f, "\"event\":\"hello\""), ==, 1);
    g_autoptr(GString) outn = agent_recv(f);
    g_autoptr(GArray) msgsn = decode_lines(outn);
    g_assert_cmpuint(msgsn->len, ==, 20);
    fake_now += 11 * G_USEC_PER_SEC;
    agent_sendz(f, hello_line);
    session_on_readable(f->s);
    g_assert_cmpuint(count_events(f, "\"event\":\"hello\""), ==, 2);
    /* A restarted agent (it reported since its hello) is logged at once. */
    fake_now += 2 * G_USEC_PER_SEC;
    send_report(f, 1, "periodic");
    agent_sendz(f, hello_line);
    session_on_readable(f->s);
    g_assert_cmpuint(count_events(f, "\"event\":\"hello\""), ==, 3);
    /* ... but a guest alternating reports and hellos (each one "a restart")
     * is logged once a second, not once per message; each is answered. */
    for (int i = 0; i < 30; i++) {
        send_report(f, (guint64)i + 2, "periodic");
        agent_sendz(f, hello_line);
    }
    session_on_readable(f->s);
    g_assert_cmpuint(count_events(f, "\"event\":\"hello\""), ==, 3);
    fake_now += 2 * G_USEC_PER_SEC;
    send_report(f, 40, "periodic");
    agent_sendz(f, hello_line);
    session_on_readable(f->s);
    g_assert_cmpuint(count_events(f, "\"event\":\"hello\""), ==, 4);
    g_assert_cmpuint(count_events(f, "\"hellos_not_logged\":30"), ==, 1);
    g_autoptr(GString) outm = agent_recv(f);

    /* A new interval on reload reaches the agent in a fresh welcome. */
    Config next = f->cfg;
    next.interval_ms = 700;
    SessionConfig sc;
    config_session(&next, &sc);
    session_set_config(f->s, &sc);
    g_autoptr(GString) out3 = agent_recv(f);
    g_autoptr(GArray) msgs3 = decode_lines(out3);
    g_assert_cmpuint(msgs3->len, ==, 1);
    g_assert_cmpuint(g_array_index(msgs3, BlMessage, 0).u.welcome.interval_ms, ==, 700);
}

static void test_reports(Fixture *f, gconstpointer data)
{
    gint64 at = 0;

    /* Reports before a hello are data too (a restarted broker gets no new hello). */
    g_assert_null(session_report(f->s, NULL));
    send_report(f, 1, "periodic");
    session_on_readable(f->s);
    g_assert_cmpuint(f->reports, ==, 1);
    g_assert_null(session_prev_report(f->s, NULL));

    fake_now += 1000000;
    send_report(f, 2, "pressure");
    session_on_readable(f->s);
    g_assert_cmpuint(f->reports, ==, 2);
    g_assert_cmpint(f->last_reason, ==, BL_REPORT_PRESSURE);

    const BlReport *r = session_report(f->s, &at);
    g_assert_nonnull(r);
    g_assert_cmpuint(r->seq, ==, 2);
    g_assert_cmpint(at, ==, fake_now);
    g_assert_cmpuint(r->mem.available_kib, ==, 401220);
    g_assert_true(r->has_psi);
    g_assert_cmpfloat_with_epsilon(r->psi.some.avg10, 12.34, 1e-9);
    r = session_prev_report(f->s, &at);
    g_assert_nonnull(r);
    g_assert_cmpuint(r->seq, ==, 1);
    g_assert_cmpint(at, ==, fake_now - 1000000);
    g_assert_cmpuint(session_accepted(f->s), ==, 2);
    g_assert_cmpuint(session_rejected_total(f->s), ==, 0);
    g_assert_cmpuint(count_events(f, "\"event\":\"report\""), ==, 2);
}

static void test_ping(Fixture *f, gconstpointer data)
{
    agent_sendz(f, "{\"type\":\"ping\",\"v\":1,\"id\":77}\n");
    session_on_readable(f->s);
    g_autoptr(GString) out = agent_recv(f);
    g_autoptr(GArray) msgs = decode_lines(out);
    g_assert_cmpuint(msgs->len, ==, 1);
    g_assert_cmpint(g_array_index(msgs, BlMessage, 0).type, ==, BL_MSG_PONG);
    g_assert_cmpuint(g_array_index(msgs, BlMessage, 0).u.ping.id, ==, 77);
}

static void test_garbage(Fixture *f, gconstpointer data)
{
    agent_sendz(f, "garbage\n");
    agent_sendz(f, "{\"type\":\"report\",\"v\":1}\n");     /* schema */
    agent_sendz(f, "{\"type\":\"frobnicate\",\"v\":1}\n"); /* unknown type */
    agent_sendz(f, "{\"type\":\"welcome\",\"v\":1,\"broker\":\"x\",\"broker_version\":\"1\","
                   "\"minor\":0,\"interval_ms\":1000}\n");          /* host-only */
    g_autofree char *range = report_line(3, "periodic", 999999999); /* available > total */
    agent_sendz(f, range);
    session_on_readable(f->s);

    /* 70 000 bytes without a newline, then its end: one overlong line. */
    g_autofree char *big = g_malloc(70000);
    memset(big, 'x', 70000);
    agent_send(f, big, 70000);
    agent_sendz(f, "\n");
    /* A half line, the resync byte, and a good report. */
    agent_sendz(f, "{\"type\":\"rep");
    agent_send(f, "\xff", 1);
    send_report(f, 4, "periodic");
    while (session_on_readable(f->s) && f->reports == 0)
        ;

    g_assert_true(session_is_open(f->s));
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_JSON), ==, 1);
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_SCHEMA), ==, 2);
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_UNKNOWN_TYPE), ==, 1);
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_RANGE), ==, 1);
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_OVERLONG), ==, 1);
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_VERSION), ==, 0);
    g_assert_cmpuint(f->reports, ==, 1);
    g_assert_cmpuint(f->last_seq, ==, 4);
    g_assert_cmpuint(f->closes, ==, 0);
    g_assert_cmpuint(count_events(f, "\"what\":\"overlong\""), ==, 1);

    /* Invalid UTF-8 inside a line is a json error, nothing worse. */
    agent_sendz(f, "{\"type\":\"report\",\"v\":1,\"x\":\"\xc3\x28\"}\n");
    session_on_readable(f->s);
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_JSON), ==, 2);
    g_assert_true(session_is_open(f->s));
}

static void test_stale(Fixture *f, gconstpointer data)
{
    gint64 t0 = fake_now;

    /* Counted from the start of the session before the first report. */
    g_assert_false(session_is_stale(f->s, t0 + 2900000));
    g_assert_true(session_is_stale(f->s, t0 + 3100000));

    fake_now = t0 + 1000000;
    send_report(f, 1, "periodic");
    session_on_readable(f->s);
    g_assert_false(session_is_stale(f->s, t0 + 3900000));
    g_assert_true(session_is_stale(f->s, t0 + 4100000));

    /* Talking without reporting does not count as alive. */
    fake_now = t0 + 4000000;
    agent_sendz(f, "{\"type\":\"ping\",\"v\":1,\"id\":1}\n");
    session_on_readable(f->s);
    g_assert_true(session_is_stale(f->s, t0 + 4100000));

    fake_now = t0 + 5000000;
    send_report(f, 2, "periodic");
    session_on_readable(f->s);
    g_assert_false(session_is_stale(f->s, fake_now));
}

/* Feed n reports as fast as the socket takes them, one bounded read per turn. */
static void flood(Fixture *f, guint n, guint64 *max_per_call)
{
    g_autoptr(GString) all = g_string_new(NULL);
    for (guint i = 0; i < n; i++) {
        g_autofree char *l = report_line(i + 1, "periodic", 1000);
        g_string_append(all, l);
    }
    gsize off = 0;
    *max_per_call = 0;
    while (off < all->len) {
        gssize w = write(f->agent_fd, all->str + off, all->len - off);
        if (w > 0)
            off += (gsize)w;
        guint64 before = session_bytes(f->s);
        g_assert_true(session_on_readable(f->s));
        *max_per_call = MAX(*max_per_call, session_bytes(f->s) - before);
    }
    for (;;) {
        guint64 before = session_bytes(f->s);
        session_on_readable(f->s);
        if (session_bytes(f->s) == before)
            break;
        *max_per_call = MAX(*max_per_call, session_bytes(f->s) - before);
    }
}

static void test_flood(Fixture *f, gconstpointer data)
{
    guint64 max_per_call = 0;

    flood(f, 10000, &max_per_call);
    /* The clock stood still: the burst and nothing more got through. */
    g_assert_cmpuint(f->reports, ==, f->cfg.rate_limit_burst);
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_RATE_LIMITED), ==,
                     10000 - f->cfg.rate_limit_burst);
    g_assert_cmpuint(max_per_call, <=, f->cfg.read_budget_bytes);
    g_assert_cmpuint(max_per_call, >, 0);
    g_assert_true(session_is_open(f->s));
    /* ... and the log said so once, not 9900 times. */
    g_assert_cmpuint(count_events(f, "\"what\":\"rate-limited\""), ==, 1);

    /* A second later the bucket holds rate_limit_per_s tokens again. */
    fake_now += G_USEC_PER_SEC;
    flood(f, 200, &max_per_call);
    g_assert_cmpuint(f->reports, ==, f->cfg.rate_limit_burst + f->cfg.rate_limit_per_s);

    /* Ten seconds on, the counter is logged again. */
    fake_now += 11 * G_USEC_PER_SEC;
    flood(f, 300, &max_per_call);
    g_assert_cmpuint(count_events(f, "\"what\":\"rate-limited\""), ==, 2);
}

/* A guest that keeps flooding past its byte budget loses its session (and
 * with it the libvirt stream's queue); a burst alone does not. */
static void test_byte_budget(Fixture *f, gconstpointer data)
{
    g_autofree char *l = report_line(1, "periodic", 1000);
    gsize per = strlen(l);
    guint n = (guint)(3 * 1024 * 1024 / per); /* 3 MiB of reports */
    guint64 max_per_call = 0;

    flood(f, n, &max_per_call);
    fake_now += G_USEC_PER_SEC;
    flood(f, n, &max_per_call);
    g_assert_true(session_is_open(f->s)); /* 6 MiB in a second: a burst */
    fake_now += G_USEC_PER_SEC;
    g_autoptr(GString) all = g_string_new(NULL);
    for (guint i = 0; i < 2 * n; i++) /* 6 MiB more: past what is left */
        g_string_append(all, l);
    gsize off = 0;
    while (off < all->len && session_is_open(f->s)) {
        gssize w = write(f->agent_fd, all->str + off, all->len - off);
        if (w > 0)
            off += (gsize)w;
        session_on_readable(f->s);
    }
    g_assert_false(session_is_open(f->s));
    g_assert_cmpuint(f->closes, ==, 1);
    g_assert_true(g_str_has_prefix(f->close_why, "flooding: more than 1024 KiB/s"));
    /* read no further than the budget: 8 MiB + 2 s at 1 MiB/s, plus one read */
    g_assert_cmpuint(session_bytes(f->s), <=, 10 * 1024 * 1024 + f->cfg.read_budget_bytes);
}

static void test_wrong_major(Fixture *f, gconstpointer data)
{
    agent_sendz(f, "{\"type\":\"hello\",\"v\":2,\"whatever\":[1,2,3]}\n");
    g_assert_false(session_on_readable(f->s));
    g_assert_false(session_is_open(f->s));
    g_assert_cmpuint(f->closes, ==, 1);
    g_assert_true(g_str_has_prefix(f->close_why, "unsupported-version"));
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_VERSION), ==, 1);

    g_autoptr(GString) out = agent_recv(f);
    g_autoptr(GArray) msgs = decode_lines(out);
    g_assert_cmpuint(msgs->len, ==, 1);
    BlMessage *m = &g_array_index(msgs, BlMessage, 0);
    g_assert_cmpint(m->type, ==, BL_MSG_GOODBYE);
    g_assert_cmpuint(m->u.goodbye.supported_major, ==, 1);
    g_assert_cmpstr(m->u.goodbye.reason, ==, "unsupported-version");
    /* ... and the broker's end is closed. */
    char c;
    g_assert_cmpint(read(f->agent_fd, &c, 1), ==, 0);
    /* Reading a closed session is harmless. */
    g_assert_false(session_on_readable(f->s));
    g_assert_cmpuint(f->closes, ==, 1);
}

static void test_goodbye_other_major(Fixture *f, gconstpointer data)
{
    /* A goodbye of another major is never answered with a goodbye. */
    agent_sendz(f, "{\"type\":\"goodbye\",\"v\":3,\"supported_major\":3,\"reason\":\"x\"}\n");
    g_assert_false(session_on_readable(f->s));
    g_autoptr(GString) out = agent_recv(f);
    g_assert_cmpuint(out->len, <=, 1); /* at most the resync byte */
    g_assert_cmpuint(f->closes, ==, 1);
}

static void test_agent_goodbye_and_hangup(Fixture *f, gconstpointer data)
{
    agent_sendz(f,
                "{\"type\":\"goodbye\",\"v\":1,\"supported_major\":1,\"reason\":\"shutdown\"}\n");
    g_assert_false(session_on_readable(f->s));
    g_assert_nonnull(strstr(f->close_why, "shutdown"));

    /* A second session whose agent just goes away. */
    Fixture g = {.cfg = f->cfg, .log = f->log};
    fixture_open(&g, "vm2");
    close(g.agent_fd);
    g_assert_false(session_on_readable(g.s));
    g_assert_cmpstr(g.close_why, ==, "hangup");
    session_free(g.s);
    g_free(g.close_why);
}

static void test_broker_goodbye(Fixture *f, gconstpointer data)
{
    session_close(f->s, "shutdown", "broker stopping");
    g_autoptr(GString) out = agent_recv(f);
    g_autoptr(GArray) msgs = decode_lines(out);
    g_assert_cmpuint(msgs->len, ==, 1);
    g_assert_cmpint(g_array_index(msgs, BlMessage, 0).type, ==, BL_MSG_GOODBYE);
    g_assert_cmpstr(g_array_index(msgs, BlMessage, 0).u.goodbye.reason, ==, "shutdown");
    g_assert_cmpstr(session_close_reason(f->s), ==, "broker stopping");
}

static void test_does_not_read(Fixture *f, gconstpointer data)
{
    /* The guest asks (pings) but never reads the answers: once 64 KiB wait
     * unsent, the session gives up on it instead of buffering without end. */
    int small = 4096;
    g_assert_cmpint(setsockopt(f->agent_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), ==, 0);
    g_autoptr(GString) pings = g_string_new(NULL);
    for (guint i = 0; i < 100; i++)
        g_string_append_printf(pings, "{\"type\":\"ping\",\"v\":1,\"id\":%u}\n", i);
    guint rounds = 0;
    while (session_is_open(f->s) && rounds < 10000) {
        fake_now += 2 * G_USEC_PER_SEC; /* the bucket refills: not rate-limited */
        agent_send(f, pings->str, pings->len);
        session_on_readable(f->s);
        rounds++;
    }
    g_assert_false(session_is_open(f->s));
    g_assert_cmpstr(f->close_why, ==, "guest does not read");
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_RATE_LIMITED), ==, 0);
}

static void test_goodbye_to_dead_peer(Fixture *f, gconstpointer data)
{
    /* The broker stops while the guest's end is already gone: the goodbye
     * cannot be written, the session still closes once, cleanly. */
    close(f->agent_fd);
    f->agent_fd = open("/dev/null", O_RDONLY);
    session_close(f->s, "shutdown", "broker stopping");
    g_assert_false(session_is_open(f->s));
    g_assert_cmpuint(f->closes, ==, 1);
    g_assert_nonnull(session_close_reason(f->s));
}

static void test_random_bytes(Fixture *f, gconstpointer data)
{
    /* 1 MiB of random bytes (some newlines, some 0xFF), then a resync and a
     * good report: counted garbage, no crash, the report still gets in. */
    gsize n = 1024 * 1024;
    g_autofree guchar *junk = g_malloc(n);
    for (gsize i = 0; i < n; i++) {
        guint32 r = g_test_rand_int();
        junk[i] = (r % 64 == 0) ? '\n' : (guchar)(r >> 8);
    }
    gsize off = 0;
    while (off < n) {
        fake_now += 100000; /* keep the bucket from being the only line of defence */
        gssize w = write(f->agent_fd, junk + off, MIN(n - off, 8192));
        if (w > 0)
            off += (gsize)w;
        g_assert_true(session_on_readable(f->s));
    }
    while (session_on_readable(f->s) && session_bytes(f->s) < n)
        ;
    g_assert_true(session_is_open(f->s));
    g_assert_cmpuint(session_bytes(f->s), ==, n);
    g_assert_cmpuint(session_rejected_total(f->s), >, 1000);
    g_assert_cmpuint(f->reports, ==, 0);

    fake_now += 10 * G_USEC_PER_SEC;
    agent_send(f, "\xff", 1);
    send_report(f, 9, "periodic");
    session_on_readable(f->s);
    g_assert_cmpuint(f->reports, ==, 1);
    g_assert_cmpuint(f->last_seq, ==, 9);
}

static void test_neighbour(Fixture *f, gconstpointer data)
{
    Fixture g = {.cfg = f->cfg, .log = f->log};
    fixture_open(&g, "vm2");

    /* vm1 floods; vm2 reports between two of vm1's bounded reads. */
    g_autoptr(GString) all = g_string_new(NULL);
    for (guint i = 0; i < 3000; i++) {
        g_autofree char *l = report_line(i + 1, "periodic", 1000);
        g_string_append(all, l);
    }
    gsize off = 0;
    gboolean sent = FALSE;
    while (off < all->len) {
        gssize w = write(f->agent_fd, all->str + off, all->len - off);
        if (w > 0)
            off += (gsize)w;
        session_on_readable(f->s);
        if (!sent) {
            g_autofree char *l = report_line(7, "pressure", 1000);
            agent_sendz(&g, l);
            sent = TRUE;
        }
        /* One bounded read of vm2 gets its report in, flood or not. */
        session_on_readable(g.s);
        g_assert_cmpuint(g.reports, ==, 1);
    }
    g_assert_cmpuint(g.last_seq, ==, 7);
    g_assert_cmpuint(session_rejected_total(g.s), ==, 0);
    g_assert_cmpuint(session_rejected(f->s, SESSION_REJECT_RATE_LIMITED), >, 0);
    session_free(g.s);
    close(g.agent_fd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define T(name, fn)                                                                                \
    g_test_add("/session/" name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
    T("hello-welcome", test_hello_welcome);
    T("byte-budget", test_byte_budget);
    T("reports", test_reports);
    T("ping", test_ping);
    T("garbage", test_garbage);
    T("stale", test_stale);
    T("flood", test_flood);
    T("wrong-major", test_wrong_major);
    T("goodbye-other-major", test_goodbye_other_major);
    T("agent-goodbye-hangup", test_agent_goodbye_and_hangup);
    T("broker-goodbye", test_broker_goodbye);
    T("neighbour", test_neighbour);
    T("does-not-read", test_does_not_read);
    T("goodbye-to-dead-peer", test_goodbye_to_dead_peer);
    T("random-bytes", test_random_bytes);
    return g_test_run();
}
