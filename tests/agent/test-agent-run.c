/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Integration: the real ballast-agent binary on fixture trees, talking to
 * this test over a unix socket (--port) or stdout (--port -). Timeouts here
 * only keep a broken agent from hanging the suite; nothing measures speed.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <termios.h>
#include <fcntl.h>
#include <unistd.h>

#include "framer.h"
#include "protocol.h"

#define WAIT_MS 15000 /* generous: ASan, two shared cores */

static const char *agent_bin(void)
{
    const char *bin = g_getenv("BALLAST_AGENT");

    g_assert_nonnull(bin);
    return bin;
}

static char *data_dir(const char *tree)
{
    return g_build_filename(g_getenv("BALLAST_TEST_DATA"), tree, NULL);
}

/* In the agent's child: die with the test, so a failed assertion never
 * leaves an agent behind holding the test's output pipe. */
static void die_with_parent(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* ---- the fake host side ---- */

typedef struct {
    int listen_fd;
    int fd;
    char *dir;
    char *path;
    BlFramer *framer;
    GQueue lines; /* of GString */
    GPid pid;
} Host;

static gboolean host_collect(const char *line, gsize len, gpointer data)
{
    Host *h = data;

    g_queue_push_tail(&h->lines, g_string_new_len(line, (gssize)len));
    return TRUE;
}

static void host_listen(Host *h)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    g_autoptr(GError) error = NULL;

    h->dir = g_dir_make_tmp("ballast-agent-run-XXXXXX", &error);
    g_assert_no_error(error);
    h->path = g_build_filename(h->dir, "ch.sock", NULL);
    g_assert_cmpuint(strlen(h->path), <, sizeof(addr.sun_path));
    strcpy(addr.sun_path, h->path);
    h->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(h->listen_fd, >=, 0);
    g_assert_cmpint(bind(h->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(h->listen_fd, 4), ==, 0);
    h->fd = -1;
    h->framer = bl_framer_new(BL_PROTO_MAX_LINE);
    g_queue_init(&h->lines);
}

static void host_spawn(Host *h, const char *tree, const char *extra)
{
    g_autofree char *root = data_dir(tree);
    const char *argv[] = {agent_bin(), "--root", root, "--port", h->path, extra, NULL};
    g_autoptr(GError) error = NULL;

    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                die_with_parent, NULL, &h->pid, &error));
    g_assert_no_error(error);
}

static void host_drop_lines(Host *h)
{
    GString *s;

    while ((s = g_queue_pop_head(&h->lines)) != NULL)
        g_string_free(s, TRUE);
    bl_framer_reset(h->framer);
}

static void host_accept(Host *h)
{
    struct pollfd p = {.fd = h->listen_fd, .events = POLLIN};

    g_assert_cmpint(poll(&p, 1, WAIT_MS), ==, 1);
    h->fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(h->fd, >=, 0);
    host_drop_lines(h);
}

static void host_disconnect(Host *h)
{
    close(h->fd);
    h->fd = -1;
}

/* Next decoded message; FALSE on EOF. Every line the agent sends must decode. */
static gboolean host_next(Host *h, BlMessage *msg, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    while (g_queue_is_empty(&h->lines)) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        char buf[4096];
        gssize n;

        if (left <= 0)
            return FALSE;
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        n = read(h->fd, buf, sizeof(buf));
        if (n <= 0)
            return FALSE;
        bl_framer_feed(h->framer, buf, (gsize)n, host_collect, h);
    }
    {
        g_autoptr(GError) error = NULL;
        GString *s = g_queue_pop_head(&h->lines);
        gboolean ok = bl_proto_decode(s->str, s->len, msg, &error);

        if (!ok)
            g_test_message("bad line from agent: %s", s->str);
        g_assert_no_error(error);
        g_assert_true(ok);
        g_string_free(s, TRUE);
    }
    return TRUE;
}

/* Read until a message of type (and, for reports, reason; for pongs, id). */
static void host_expect(Host *h, BlMsgType type, int reason_or_id, BlMessage *msg)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

    while (g_get_monotonic_time() < deadline) {
        g_assert_true(host_next(h, msg, WAIT_MS));
        if (msg->type != type)
            continue;
        if (type == BL_MSG_REPORT && reason_or_id >= 0 && (int)msg->u.report.reason != reason_or_id)
            continue;
        if (type == BL_MSG_PONG && (guint64)reason_or_id != msg->u.ping.id)
            continue;
        return;
    }
    g_assert_not_reached();
}

static void host_send(Host *h, const char *data, gsize len)
{
    while (len > 0) {
        gssize n = write(h->fd, data, len); /* a socket or a pty master */

        g_assert_cmpint(n, >, 0);
        data += n;
        len -= (gsize)n;
    }
}

static void host_send_str(Host *h, const char *s)
{
    host_send(h, s, strlen(s));
}

static int host_wait_exit(Host *h)
{
    int status = 0;

    for (int i = 0; i < WAIT_MS / 10; i++) {
        pid_t r = waitpid(h->pid, &status, WNOHANG);

        if (r == h->pid)
            break;
        g_usleep(10000);
    }
    g_assert_true(WIFEXITED(status));
    h->pid = 0;
    return WEXITSTATUS(status);
}

static void host_cleanup(Host *h)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", h->dir);

    if (h->pid > 0) {
        kill(h->pid, SIGKILL);
        waitpid(h->pid, NULL, 0);
    }
    if (h->fd >= 0)
        close(h->fd);
    close(h->listen_fd);
    host_drop_lines(h);
    bl_framer_free(h->framer);
    g_assert_cmpint(system(cmd), ==, 0);
    g_free(h->path);
    g_free(h->dir);
}

/* user + system CPU time of pid, in clock ticks */
static guint64 cpu_ticks(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) f = NULL;
    const char *p;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    p = strrchr(text, ')');
    g_assert_nonnull(p);
    f = g_strsplit(p + 2, " ", 0);
    /* after "pid (comm) ": state is field 3, utime 14, stime 15 */
    return g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10);
}

/* ---- what the fixture tree says ---- */

static void check_hello_1002(const BlHello *h, guint32 interval)
{
    g_assert_cmpstr(h->agent, ==, "ballast-agent");
    g_assert_cmpstr(h->boot_id, ==, "5c3b2a9e-7f1d-4e0a-9b8c-2d4e6f8a0b1c");
    g_assert_cmpstr(h->kernel, ==, "6.1.0-13-cloud-amd64");
    g_assert_cmpuint(h->interval_ms, ==, interval);
    g_assert_true(h->balloon.present);
    g_assert_true(h->balloon.driver_bound);
    g_assert_cmpuint(h->balloon.n_pci, ==, 1);
    g_assert_cmpstr(h->balloon.pci[0], ==, "0000:00:03.0");
    g_assert_cmpint(h->balloon.kconfig, ==, BL_KCONFIG_M);
    g_assert_cmpuint(h->n_features, ==, 2); /* no psi-trigger: the tree is not procfs */
    g_assert_cmpstr(h->features[0], ==, "psi");
    g_assert_cmpstr(h->features[1], ==, "interval");
}

static void check_report_tree(const BlReport *r)
{
    g_assert_cmpuint(r->uptime_ms, ==, 1234560);
    g_assert_cmpuint(r->mem.total_kib, ==, 209800);
    g_assert_cmpuint(r->mem.free_kib, ==, 81232);
    g_assert_cmpuint(r->mem.available_kib, ==, 123456);
    g_assert_cmpuint(r->mem.cached_kib, ==, 40000);
    g_assert_cmpuint(r->mem.swap_total_kib, ==, 524284);
    g_assert_cmpuint(r->mem.swap_free_kib, ==, 500000);
    g_assert_cmpuint(r->mem.committed_as_kib, ==, 300000);
    g_assert_true(r->has_psi);
    g_assert_cmpfloat(r->psi.some.avg10, ==, 1.5);
    g_assert_cmpfloat(r->psi.some.avg60, ==, 0.25);
    g_assert_cmpfloat(r->psi.some.avg300, ==, 0.05);
    g_assert_cmpuint(r->psi.some.total_us, ==, 1234567);
    g_assert_cmpfloat(r->psi.full.avg10, ==, 0.5);
    g_assert_cmpfloat(r->psi.full.avg60, ==, 0.1);
    g_assert_cmpfloat(r->psi.full.avg300, ==, 0.01);
    g_assert_cmpuint(r->psi.full.total_us, ==, 234567);
    g_assert_cmpuint(r->vmstat.present, ==, (1u << BL_VMSTAT_N_COUNTERS) - 1);
    g_assert_cmpuint(r->vmstat.value[BL_VMSTAT_PGMAJFAULT], ==, 1203);
    g_assert_cmpuint(r->vmstat.value[BL_VMSTAT_PSWPIN], ==, 17);
    g_assert_cmpuint(r->vmstat.value[BL_VMSTAT_PSWPOUT], ==, 99);
    g_assert_cmpuint(r->vmstat.value[BL_VMSTAT_WORKINGSET_REFAULT_ANON], ==, 5);
    g_assert_cmpuint(r->vmstat.value[BL_VMSTAT_WORKINGSET_REFAULT_FILE], ==, 321);
    g_assert_cmpuint(r->vmstat.value[BL_VMSTAT_OOM_KILL], ==, 2);
}

/* The whole conversation on one agent process. */
static void test_session(void)
{
    Host h = {0};
    BlMessage m;
    guint64 last_seq;
    guint64 cpu0;
    gint64 t0;
    guint n;

    host_listen(&h);
    host_spawn(&h, "guest-1002-bound", NULL);
    host_accept(&h);

    /* hello first, then a report carrying exactly the tree's values */
    g_assert_true(host_next(&h, &m, WAIT_MS));
    g_assert_cmpint(m.type, ==, BL_MSG_HELLO);
    check_hello_1002(&m.u.hello, 1000);
    g_assert_true(host_next(&h, &m, WAIT_MS));
    g_assert_cmpint(m.type, ==, BL_MSG_REPORT);
    /* seq continues from the tree's uptime (1234.56 s), so that an agent
     * restarted within a boot never goes back */
    g_assert_cmpuint(m.u.report.seq, ==, 1234560 + 1);
    g_assert_cmpint(m.u.report.reason, ==, BL_REPORT_PERIODIC);
    check_report_tree(&m.u.report);

    /* one thread: the GLib loop, no worker threads */
    {
        g_autofree char *path = g_strdup_printf("/proc/%d/status", h.pid);
        g_autofree char *status = NULL;

        g_assert_true(g_file_get_contents(path, &status, NULL, NULL));
        g_assert_nonnull(strstr(status, "\nThreads:\t1\n"));
    }

    /* request -> report "request"; ping -> pong */
    host_send_str(&h, "{\"type\":\"request\",\"v\":1}\n");
    host_expect(&h, BL_MSG_REPORT, BL_REPORT_REQUEST, &m);
    check_report_tree(&m.u.report);
    host_send_str(&h, "{\"type\":\"ping\",\"v\":1,\"id\":42}\n");
    host_expect(&h, BL_MSG_PONG, 42, &m);

    /* garbage and overlong input is ignored; the loop carries on */
    {
        g_autofree char *big = g_malloc(200000);

        memset(big, 'x', 200000);
        host_send_str(&h, "this is not json\n");
        host_send_str(&h, "{\"type\":\"ping\",\"v\":1,\"id\":-1}\n");
        host_send_str(&h, "{\"type\":\"frobnicate\",\"v\":1}\n");
        host_send_str(&h, "{\"type\":\"hello\",\"v\":1}\n");
        host_send(&h, big, 200000);
        host_send_str(&h, "\n\xfe\xc0\xaf garbage\r\n\n\n");
        host_send(&h, "\0\0\0\n", 4);
        host_send_str(&h, "{\"type\":\"ping\",\"v\":1,\"id\":7"); /* cut... */
        host_send_str(&h, "\xff");                                /* ...and resynced */
        host_send_str(&h, "{\"type\":\"ping\",\"v\":1,\"id\":43}\n");
        host_expect(&h, BL_MSG_PONG, 43, &m);
    }

    /* welcome 60 s: no periodic report for a while (the default would send ~2) */
    host_send_str(&h, "{\"type\":\"welcome\",\"v\":1,\"broker\":\"test\",\"broker_version\":\"0\","
                      "\"minor\":0,\"interval_ms\":60000}\n");
    host_send_str(&h, "{\"type\":\"ping\",\"v\":1,\"id\":44}\n");
    host_expect(&h, BL_MSG_PONG, 44, &m);
    n = 0;
    t0 = g_get_monotonic_time();
    while (g_get_monotonic_time() - t0 < 2500 * 1000) {
        if (host_next(&h, &m, 100) && m.type == BL_MSG_REPORT)
            n++;
    }
    g_assert_cmpuint(n, ==, 0);
    /* welcome 100 ms: five reports come quickly (at 60 s they never would) */
    host_send_str(&h, "{\"type\":\"welcome\",\"v\":1,\"broker\":\"test\",\"broker_version\":\"0\","
                      "\"minor\":0,\"interval_ms\":100}\n");
    for (n = 0; n < 5; n++) {
        host_expect(&h, BL_MSG_REPORT, BL_REPORT_PERIODIC, &m);
        check_report_tree(&m.u.report);
    }
    last_seq = m.u.report.seq;

    /* 100 disconnects: hello every time, defaults restored, seq keeps counting */
    cpu0 = cpu_ticks(h.pid);
    t0 = g_get_monotonic_time();
    for (int i = 0; i < 100; i++) {
        host_disconnect(&h);
        host_accept(&h);
        g_assert_true(host_next(&h, &m, WAIT_MS));
        g_assert_cmpint(m.type, ==, BL_MSG_HELLO);
        check_hello_1002(&m.u.hello, 1000);
        if (i % 10 == 0) {
            host_expect(&h, BL_MSG_REPORT, -1, &m);
            g_assert_cmpuint(m.u.report.seq, >, last_seq);
            last_seq = m.u.report.seq;
        }
    }
    {
        double wall_s = (double)(g_get_monotonic_time() - t0) / 1e6;
        double cpu_s = (double)(cpu_ticks(h.pid) - cpu0) / (double)sysconf(_SC_CLK_TCK);

        g_test_message("100 reconnects: %.2f s wall, %.2f s agent CPU", wall_s, cpu_s);
        /* a spinning agent would burn the whole wall time */
        g_assert_cmpfloat(cpu_s, <, 0.25 * wall_s + 0.5);
    }
    /* still answering */
    host_send_str(&h, "{\"type\":\"ping\",\"v\":1,\"id\":45}\n");
    host_expect(&h, BL_MSG_PONG, 45, &m);

    /* another major: one goodbye "unsupported-version", then it closes */
    host_send_str(&h, "{\"type\":\"welcome\",\"v\":2,\"whatever\":true}\n");
    host_expect(&h, BL_MSG_GOODBYE, 0, &m);
    g_assert_cmpstr(m.u.goodbye.reason, ==, "unsupported-version");
    g_assert_cmpuint(m.u.goodbye.supported_major, ==, 1);
    g_assert_false(host_next(&h, &m, WAIT_MS)); /* EOF */

    kill(h.pid, SIGTERM);
    g_assert_cmpint(host_wait_exit(&h), ==, 0);
    host_cleanup(&h);
}

/* A goodbye of another major is not answered with a goodbye: the agent just closes. */
static void test_goodbye_other_major(void)
{
    Host h = {0};
    BlMessage m;

    host_listen(&h);
    host_spawn(&h, "guest-1002-bound", NULL);
    host_accept(&h);
    g_assert_true(host_next(&h, &m, WAIT_MS));
    g_assert_cmpint(m.type, ==, BL_MSG_HELLO);
    host_send_str(&h, "{\"type\":\"goodbye\",\"v\":2,\"supported_major\":2,"
                      "\"reason\":\"unsupported-version\"}\n");
    while (host_next(&h, &m, WAIT_MS)) /* until EOF: reports may precede it */
        g_assert_cmpint(m.type, !=, BL_MSG_GOODBYE);
    kill(h.pid, SIGTERM);
    g_assert_cmpint(host_wait_exit(&h), ==, 0);
    host_cleanup(&h);
}

/* SIGTERM while connected: goodbye "shutdown", exit 0. */
static void test_shutdown(void)
{
    Host h = {0};
    BlMessage m;

    host_listen(&h);
    host_spawn(&h, "guest-1045-bound", NULL);
    host_accept(&h);
    g_assert_true(host_next(&h, &m, WAIT_MS));
    g_assert_cmpint(m.type, ==, BL_MSG_HELLO);
    g_assert_cmpuint(m.u.hello.balloon.n_pci, ==, 2);
    g_assert_cmpint(m.u.hello.balloon.kconfig, ==, BL_KCONFIG_Y);
    kill(h.pid, SIGTERM);
    host_expect(&h, BL_MSG_GOODBYE, 0, &m);
    g_assert_cmpstr(m.u.goodbye.reason, ==, "shutdown");
    g_assert_cmpint(host_wait_exit(&h), ==, 0);
    host_cleanup(&h);
}

/* The agent starts before the host listens: it waits and connects later. */
static void test_late_host(void)
{
    Host h = {0};
    BlMessage m;
    g_autofree char *later = NULL;

    host_listen(&h);
    later = g_build_filename(h.dir, "late.sock", NULL);
    {
        g_autofree char *root = data_dir("guest-none");
        const char *argv[] = {agent_bin(), "--root", root, "--port", later, NULL};

        g_assert_true(g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                    die_with_parent, NULL, &h.pid, NULL));
    }
    g_usleep(300000);
    g_assert_cmpint(rename(h.path, later), ==, 0);
    host_accept(&h);
    g_assert_true(host_next(&h, &m, WAIT_MS));
    g_assert_cmpint(m.type, ==, BL_MSG_HELLO);
    g_assert_false(m.u.hello.balloon.present);
    g_assert_cmpint(m.u.hello.balloon.kconfig, ==, BL_KCONFIG_UNKNOWN);
    kill(h.pid, SIGTERM);
    g_assert_cmpint(host_wait_exit(&h), ==, 0);
    host_cleanup(&h);
}

/*
 * A character device as the port: a pty in raw mode stands in for the
 * virtio-serial port (open, poll, read and write go the same way). Its host
 * side then goes away for good (EIO): the agent keeps running and exits
 * cleanly on SIGTERM.
 */
static void test_char_device(void)
{
    Host h = {0};
    BlMessage m;
    struct termios tio;
    const char *slave;
    int master, keep;

    host_listen(&h); /* for the temp dir and framer; the socket stays unused */
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    g_assert_cmpint(master, >=, 0);
    g_assert_cmpint(grantpt(master), ==, 0);
    g_assert_cmpint(unlockpt(master), ==, 0);
    slave = ptsname(master);
    g_assert_nonnull(slave);
    keep = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
    g_assert_cmpint(keep, >=, 0);
    g_assert_cmpint(tcgetattr(keep, &tio), ==, 0);
    cfmakeraw(&tio);
    g_assert_cmpint(tcsetattr(keep, TCSANOW, &tio), ==, 0);
    {
        g_autofree char *root = data_dir("guest-1002-bound");
        g_autofree char *port = g_strdup(slave);
        const char *argv[] = {agent_bin(), "--root", root, "--port", port, NULL};

        g_assert_true(g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                    die_with_parent, NULL, &h.pid, NULL));
    }
    h.fd = master;
    g_assert_true(host_next(&h, &m, WAIT_MS));
    g_assert_cmpint(m.type, ==, BL_MSG_HELLO);
    check_hello_1002(&m.u.hello, 1000);
    host_expect(&h, BL_MSG_REPORT, BL_REPORT_PERIODIC, &m);
    check_report_tree(&m.u.report);
    host_send_str(&h, "{\"type\":\"request\",\"v\":1}\n");
    host_expect(&h, BL_MSG_REPORT, BL_REPORT_REQUEST, &m);
    host_send_str(&h, "{\"type\":\"ping\",\"v\":1,\"id\":9}\n");
    host_expect(&h, BL_MSG_PONG, 9, &m);
    host_disconnect(&h);
    close(keep);
    g_usleep(300000);
    kill(h.pid, SIGTERM);
    g_assert_cmpint(host_wait_exit(&h), ==, 0);
    host_cleanup(&h);
}

/* ---- one-shot modes ---- */

static int run_sync(const char *const *argv, char **out, char **err)
{
    g_autoptr(GError) error = NULL;
    int status = 0;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, die_with_parent, NULL,
                               out, err, &status, &error));
    g_assert_no_error(error);
    g_assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_once_stdout(void)
{
    g_autofree char *root = data_dir("guest-1002-bound");
    const char *argv[] = {agent_bin(), "--root", root, "--port", "-", "--once", NULL};
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_auto(GStrv) lines = NULL;
    BlMessage m;

    g_assert_cmpint(run_sync(argv, &out, &err), ==, 0);
    lines = g_strsplit(out, "\n", 0);
    g_assert_cmpuint(g_strv_length(lines), ==, 3); /* two lines and "" */
    g_assert_true(bl_proto_decode(lines[0], strlen(lines[0]), &m, NULL));
    g_assert_cmpint(m.type, ==, BL_MSG_HELLO);
    check_hello_1002(&m.u.hello, 1000);
    g_assert_true(bl_proto_decode(lines[1], strlen(lines[1]), &m, NULL));
    g_assert_cmpint(m.type, ==, BL_MSG_REPORT);
    check_report_tree(&m.u.report);
}

/* A tree with absurd values: everything still encodes, clamped. */
static void test_hostile_tree(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("ballast-hostile-XXXXXX", &error);
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    const char *argv[] = {agent_bin(), "--root", dir, "--port", "-", "--once", NULL};
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *longid = g_strnfill(300, 'b');
    g_auto(GStrv) lines = NULL;
    BlMessage m;
    struct {
        const char *rel;
        const char *text;
    } files[] = {
        {"proc/meminfo", "MemTotal: 18446744073709551615 kB\nMemFree: 18446744073709551615 kB\n"
                         "MemAvailable: 18446744073709551615 kB\nSwapFree: 5 kB\n"},
        {"proc/pressure/memory", "some avg10=900.00 avg60=0 avg300=0 total=1\n"},
        {"proc/vmstat", "oom_kill 99999999999999999999\n"},
        {"proc/uptime", "nan\n"},
        {"proc/sys/kernel/osrelease", "6.1\x01\x02 evil\n\n"},
        {"proc/sys/kernel/random/boot_id", longid},
    };

    g_assert_no_error(error);
    for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = g_build_filename(dir, files[i].rel, NULL);
        g_autofree char *parent = g_path_get_dirname(path);

        g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
        g_assert_true(g_file_set_contents(path, files[i].text, -1, NULL));
    }
    g_assert_cmpint(run_sync(argv, &out, &err), ==, 0);
    lines = g_strsplit(out, "\n", 0);
    g_assert_cmpuint(g_strv_length(lines), ==, 3);
    g_assert_true(bl_proto_decode(lines[0], strlen(lines[0]), &m, NULL));
    g_assert_cmpstr(m.u.hello.kernel, ==, "6.1___evil");
    g_assert_cmpuint(strlen(m.u.hello.boot_id), ==, BL_PROTO_BOOT_ID_MAX - 1);
    g_assert_false(m.u.hello.balloon.present);
    g_assert_cmpuint(m.u.hello.n_features, ==, 1); /* the pressure file does not parse */
    g_assert_true(bl_proto_decode(lines[1], strlen(lines[1]), &m, NULL));
    g_assert_cmpuint(m.u.report.mem.total_kib, ==, G_GUINT64_CONSTANT(9007199254740991));
    g_assert_cmpuint(m.u.report.mem.available_kib, ==, m.u.report.mem.total_kib);
    g_assert_cmpuint(m.u.report.mem.swap_free_kib, ==, 0);
    g_assert_false(m.u.report.has_psi);
    g_assert_cmpuint(m.u.report.vmstat.present, ==, 0);
    g_assert_cmpuint(m.u.report.uptime_ms, ==, 0);

    /* without meminfo there is nothing to report: exit 1 */
    {
        g_autofree char *mi = g_build_filename(dir, "proc/meminfo", NULL);
        g_autofree char *out2 = NULL;
        g_autofree char *err2 = NULL;

        g_assert_cmpint(g_unlink(mi), ==, 0);
        g_assert_cmpint(run_sync(argv, &out2, &err2), ==, 1);
        g_assert_nonnull(strstr(err2, "meminfo"));
    }
    g_assert_cmpint(system(cmd), ==, 0);
}

/* Where --check cannot tell, it says so and exits 2: a copy of a usable tree
 * made into an unmounted /sys, a chroot, a container. */
static void test_check_cannot_tell(void)
{
    struct {
        const char *setup, *needle;
    } cases[] = {
        {"rm -rf sys/bus sys/class", "/sys is not mounted"},
        {"mkdir -p proc/1 && ln -s / proc/1/root", "this is a chroot"},
        {"printf 'HOME=/\\0container=podman\\0' >proc/1/environ", "this is a container"},
        {"mkdir -p run/systemd && echo docker >run/systemd/container", "this is a container"},
    };
    g_autofree char *src = data_dir("guest-1002-bound");

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *dir = g_dir_make_tmp("ballast-check-XXXXXX", NULL);
        g_autofree char *root = g_build_filename(dir, "root", NULL);
        g_autofree char *qs = g_shell_quote(src);
        g_autofree char *qr = g_shell_quote(root);
        g_autofree char *cmd = g_strdup_printf("cp -a %s %s && cd %s && mkdir -p proc/1 && %s", qs,
                                               qr, qr, cases[i].setup);
        g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);
        const char *argv[] = {agent_bin(), "--root", root, "--check", NULL};
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;

        g_assert_cmpint(system(cmd), ==, 0);
        g_assert_cmpint(run_sync(argv, &out, &err), ==, 2);
        g_assert_nonnull(strstr(out, "verdict: cannot tell"));
        g_assert_nonnull(strstr(out, cases[i].needle));
        g_assert_null(strstr(out, "usable"));
        g_assert_cmpint(system(rm), ==, 0);
    }
}

/* --check-image on fixture images: exit codes and both spellings of ROOT. */
static void test_check_image(void)
{
    struct {
        const char *tree;
        int status;
        const char *needle;
    } cases[] = {
        {"image-debian", 0, "verdict: ready"},
        {"image-noballoon", 1, "CONFIG_VIRTIO_BALLOON=m but no virtio_balloon.ko*"},
        {"image-nosystemd", 0, "warning: udev rule"},
        {"guest-none", 1, "FAIL: no kernel"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *root = data_dir(cases[i].tree);
        g_autofree char *eq = g_strconcat("--check-image=", root, NULL);
        const char *argv1[] = {agent_bin(), "--check-image", root, NULL};
        const char *argv2[] = {agent_bin(), eq, NULL};
        g_autofree char *out1 = NULL, *err1 = NULL, *out2 = NULL, *err2 = NULL;

        g_assert_cmpint(run_sync(argv1, &out1, &err1), ==, cases[i].status);
        g_assert_nonnull(strstr(out1, cases[i].needle));
        g_assert_cmpint(run_sync(argv2, &out2, &err2), ==, cases[i].status);
        g_assert_cmpstr(out1, ==, out2);
    }
    {
        const char *argv[] = {agent_bin(), "--check-image", "/nonexistent/ballast", NULL};
        g_autofree char *out = NULL, *err = NULL;

        g_assert_cmpint(run_sync(argv, &out, &err), ==, 2);
        g_assert_nonnull(strstr(err, "not a directory"));
    }
    {
        const char *argv[] = {agent_bin(), "--check-image", "/a", "/b", NULL};
        g_autofree char *out = NULL, *err = NULL;

        g_assert_cmpint(run_sync(argv, &out, &err), ==, 2);
        g_assert_nonnull(strstr(err, "unexpected argument"));
    }
}

static void test_check(void)
{
    struct {
        const char *tree;
        int status;
        const char *needle;
    } cases[] = {
        {"guest-1002-bound", 0, "verdict: usable"},
        {"guest-1045-bound", 0, "0000:01:00.0, 0000:05:00.0"},
        {"guest-configgz", 0, "CONFIG_VIRTIO_BALLOON: m"},
        {"guest-unbound", 1, "without CONFIG_VIRTIO_BALLOON"},
        {"guest-unbound-m", 1, "modprobe virtio_balloon"},
        {"guest-none", 1, "memballoon"},
        {".", 2, "verdict: cannot tell: /proc is not mounted"}, /* tests/data itself */
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *root = data_dir(cases[i].tree);
        const char *argv[] = {agent_bin(), "--root", root, "--check", NULL};
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;

        g_assert_cmpint(run_sync(argv, &out, &err), ==, cases[i].status);
        g_assert_nonnull(strstr(out, cases[i].needle));
    }
    /* a verdict that cannot be written is an error, not "usable" */
    {
        g_autofree char *root = data_dir("guest-1002-bound");
        g_autofree char *q = g_shell_quote(root);
        g_autofree char *bin = g_shell_quote(agent_bin());
        g_autofree char *cmd =
            g_strdup_printf("%s --root %s --check >/dev/full 2>/dev/null", bin, q);
        int status = system(cmd);

        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 2);
    }
}

static void test_bad_flags(void)
{
    const char *bad[][4] = {
        {"--interval", "5", NULL},
        {"--interval", "abc", NULL},
        {"--port", "/etc/hostname", "--once"},
        {"--root", "/does/not/exist", NULL},
        {"--bogus", NULL, NULL},
        {"extra-argument", NULL, NULL},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        const char *argv[] = {agent_bin(), bad[i][0], bad[i][1], bad[i][2], NULL};
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;

        g_assert_cmpint(run_sync(argv, &out, &err), ==, 2);
        g_assert_true(g_str_has_prefix(err, "ballast-agent: "));
        g_assert_cmpuint(strlen(strchr(err, '\n') ? strchr(err, '\n') : ""), ==, 1); /* one line */
    }
    {
        const char *argv[] = {agent_bin(), "--version", NULL};
        g_autofree char *out = NULL;

        g_assert_cmpint(run_sync(argv, &out, NULL), ==, 0);
        g_assert_true(g_str_has_prefix(out, "ballast-agent "));
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
    g_test_add_func("/agent-run/session", test_session);
    g_test_add_func("/agent-run/shutdown", test_shutdown);
    g_test_add_func("/agent-run/goodbye-other-major", test_goodbye_other_major);
    g_test_add_func("/agent-run/late-host", test_late_host);
    g_test_add_func("/agent-run/char-device", test_char_device);
    g_test_add_func("/agent-run/once-stdout", test_once_stdout);
    g_test_add_func("/agent-run/hostile-tree", test_hostile_tree);
    g_test_add_func("/agent-run/check", test_check);
    g_test_add_func("/agent-run/check-cannot-tell", test_check_cannot_tell);
    g_test_add_func("/agent-run/check-image", test_check_image);
    g_test_add_func("/agent-run/bad-flags", test_bad_flags);
    return g_test_run();
}
