/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-agent: footprint and reaction time of the real ballast-agent binary.
 *
 * The agent runs on a fixture tree this program writes (so memory can be made
 * to "fall"), talking to this program over a unix socket. Figures:
 *  - idle RSS, against a plain `sleep` process started in the same run (and
 *    qemu-ga when installed), and against qemu-ga's 4.3 MiB measured on this
 *    kind of machine (FACTS.md);
 *  - wakeups and CPU per second when memory is stable, with ample and with
 *    little headroom;
 *  - time from the start of a 100 MiB/s fall (120 MiB headroom) to the first
 *    "pressure" report on the socket, against the 250 ms budget.
 *
 * Usage: bench-agent [PATH-TO-ballast-agent]   (default: $BALLAST_AGENT)
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "framer.h"
#include "protocol.h"

#define MIB             1024ull
#define QEMU_GA_RSS_KIB 4403 /* 4.3 MiB, FACTS.md */
#define FALL_KIB_S      (100 * MIB)
#define HEADROOM_KIB    (120 * MIB)
#define BUDGET_MS       250
#define TRIALS          12

typedef struct {
    char *dir;
    char *sock;
    int lfd, fd;
    GPid pid;
    BlFramer *framer;
    int pressure_seen;
    guint64 last_avail;
} Bench;

static void write_file(const char *dir, const char *rel, const char *text)
{
    g_autofree char *path = g_build_filename(dir, rel, NULL);
    g_autofree char *parent = g_path_get_dirname(path);
    g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);

    g_mkdir_with_parents(parent, 0755);
    /* rename: the agent never reads a half-written file */
    if (!g_file_set_contents(tmp, text, -1, NULL) || rename(tmp, path) != 0)
        g_error("cannot write %s", path);
}

static void set_meminfo(Bench *b, guint64 total, guint64 avail)
{
    g_autofree char *text = g_strdup_printf("MemTotal: %" G_GUINT64_FORMAT " kB\n"
                                            "MemFree: %" G_GUINT64_FORMAT " kB\n"
                                            "MemAvailable: %" G_GUINT64_FORMAT " kB\n"
                                            "Cached: 1000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n"
                                            "Committed_AS: 1000 kB\n",
                                            total, avail, avail);

    write_file(b->dir, "proc/meminfo", text);
}

static gboolean on_line(const char *line, gsize len, gpointer data)
{
    Bench *b = data;
    BlMessage m;

    if (bl_proto_decode(line, len, &m, NULL) && m.type == BL_MSG_REPORT) {
        b->last_avail = m.u.report.mem.available_kib;
        if (m.u.report.reason == BL_REPORT_PRESSURE)
            b->pressure_seen++;
    }
    return TRUE;
}

/* Read what the agent sent, waiting up to timeout_ms. */
static void pump(Bench *b, int timeout_ms)
{
    struct pollfd p = {.fd = b->fd, .events = POLLIN};
    char buf[8192];

    if (poll(&p, 1, timeout_ms) > 0) {
        gssize n = read(b->fd, buf, sizeof(buf));

        if (n > 0)
            bl_framer_feed(b->framer, buf, (gsize)n, on_line, b);
    }
}

static void pump_for(Bench *b, int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;

    while (g_get_monotonic_time() < end)
        pump(b, (int)MAX(1, (end - g_get_monotonic_time()) / 1000));
}

static guint64 status_kib(GPid pid, const char *key)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", pid);
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) || (p = strstr(text, key)) == NULL)
        return 0;
    return g_ascii_strtoull(p + strlen(key) + 1, NULL, 10);
}

static guint64 cpu_ticks(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) f = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) || (p = strrchr(text, ')')) == NULL)
        return 0;
    f = g_strsplit(p + 2, " ", 0);
    return g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10);
}

/* children die with the bench, even when it stops on an error */
static void die_with_parent(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static GPid spawn(const char *const *argv)
{
    GPid pid;
    g_autoptr(GError) error = NULL;

    if (!g_spawn_async(NULL, (char **)argv, NULL,
                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                           G_SPAWN_STDERR_TO_DEV_NULL,
                       die_with_parent, NULL, &pid, &error))
        g_error("spawn %s: %s", argv[0], error->message);
    return pid;
}

static void reap(GPid pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static void start_agent(Bench *b, const char *bin)
{
    const char *argv[] = {bin, "--root", b->dir, "--port", b->sock, NULL};
    struct pollfd p = {.fd = b->lfd, .events = POLLIN};

    b->pid = spawn(argv);
    if (poll(&p, 1, 10000) != 1)
        g_error("the agent did not connect");
    b->fd = accept(b->lfd, NULL, NULL);
    bl_framer_reset(b->framer);
}

/* Wakeups and CPU per second over ms of stable memory. */
static void measure_idle(Bench *b, const char *label)
{
    guint64 w0, w1, c0, c1;
    int ms = 5000;

    pump_for(b, 1500); /* settle */
    w0 = status_kib(b->pid, "voluntary_ctxt_switches:");
    c0 = cpu_ticks(b->pid);
    pump_for(b, ms);
    w1 = status_kib(b->pid, "voluntary_ctxt_switches:");
    c1 = cpu_ticks(b->pid);
    printf("  %-34s %6.1f wakeups/s  %6.2f ms CPU/s\n", label, (double)(w1 - w0) * 1000 / ms,
           (double)(c1 - c0) * 1000.0 / (double)sysconf(_SC_CLK_TCK) * 1000 / ms);
}

/* One fall: stable for a random time, then 100 MiB/s until a pressure report. */
static double one_fall(Bench *b, guint64 total)
{
    gint64 t0;

    set_meminfo(b, total, HEADROOM_KIB);
    pump_for(b, 2500 + g_random_int_range(0, 1000)); /* hold decays; random phase */
    b->pressure_seen = 0;
    t0 = g_get_monotonic_time();
    for (;;) {
        gint64 el = g_get_monotonic_time() - t0;
        guint64 eaten = (guint64)el * FALL_KIB_S / 1000000;

        if (b->pressure_seen)
            return (double)el / 1000.0;
        if (eaten >= HEADROOM_KIB)
            return -1; /* "OOM" before any pressure report */
        set_meminfo(b, total, HEADROOM_KIB - eaten);
        pump(b, 5);
    }
}

static int cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *bin = argc > 1 ? argv[1] : g_getenv("BALLAST_AGENT");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    g_autoptr(GError) error = NULL;
    Bench b = {0};
    guint64 rss, anon, threads, sleep_rss, sleep_anon;
    double lat[TRIALS];
    int n = 0, missed = 0;
    GPid sleeper;

    if (bin == NULL) {
        fprintf(stderr, "usage: bench-agent PATH-TO-ballast-agent\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    b.dir = g_dir_make_tmp("bench-agent-XXXXXX", &error);
    b.sock = g_build_filename(b.dir, "ch.sock", NULL);
    b.framer = bl_framer_new(BL_PROTO_MAX_LINE);
    g_strlcpy(addr.sun_path, b.sock, sizeof(addr.sun_path));
    b.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(b.lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(b.lfd, 2) != 0)
        g_error("cannot listen on %s", b.sock);
    write_file(b.dir, "proc/pressure/memory",
               "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
               "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    write_file(b.dir, "proc/vmstat", "pgmajfault 1\npswpin 0\noom_kill 0\n");
    write_file(b.dir, "proc/uptime", "100.00 100.00\n");
    write_file(b.dir, "proc/sys/kernel/osrelease", "6.1.0-bench\n");
    write_file(b.dir, "proc/sys/kernel/random/boot_id", "bench\n");
    write_file(b.dir, "sys/bus/pci/devices/0000:00:03.0/vendor", "0x1af4\n");
    write_file(b.dir, "sys/bus/pci/devices/0000:00:03.0/device", "0x1002\n");
    write_file(b.dir, "sys/bus/virtio/drivers/virtio_balloon/virtio0", "");

    printf("ballast-agent bench (%s)\n", bin);
    /* ample headroom: 3 GiB of 4 GiB available */
    set_meminfo(&b, 4096 * MIB, 3072 * MIB);
    start_agent(&b, bin);
    {
        const char *sargv[] = {"/bin/sleep", "1000", NULL};

        sleeper = spawn(sargv);
    }
    printf("stable memory:\n");
    measure_idle(&b, "3 GiB available (interval 1 s)");
    rss = status_kib(b.pid, "VmRSS:");
    anon = status_kib(b.pid, "RssAnon:");
    threads = status_kib(b.pid, "Threads:");
    sleep_rss = status_kib(sleeper, "VmRSS:");
    sleep_anon = status_kib(sleeper, "RssAnon:");
    reap(sleeper);
    set_meminfo(&b, 205 * MIB, HEADROOM_KIB);
    measure_idle(&b, "120 MiB available (interval 1 s)");

    printf("footprint (idle):\n");
    printf("  ballast-agent VmRSS %5" G_GUINT64_FORMAT " KiB  RssAnon %5" G_GUINT64_FORMAT
           " KiB  threads %" G_GUINT64_FORMAT "\n",
           rss, anon, threads);
    printf("  sleep (baseline) VmRSS %5" G_GUINT64_FORMAT " KiB  RssAnon %5" G_GUINT64_FORMAT
           " KiB  -> agent/sleep %.2fx\n",
           sleep_rss, sleep_anon, (double)rss / (double)MAX(sleep_rss, 1));
    if (g_file_test("/usr/sbin/qemu-ga", G_FILE_TEST_IS_EXECUTABLE)) {
        g_autofree char *qsock = g_build_filename(b.dir, "qga.sock", NULL);
        const char *qargv[] = {"/usr/sbin/qemu-ga", "-m", "unix-listen", "-p", qsock, NULL};
        GPid q = spawn(qargv);
        guint64 qrss;

        g_usleep(1500000);
        qrss = status_kib(q, "VmRSS:");
        reap(q);
        printf("  qemu-ga (same run) VmRSS %5" G_GUINT64_FORMAT " KiB -> agent/qemu-ga %.2fx\n",
               qrss, (double)rss / (double)MAX(qrss, 1));
    }
    printf("  qemu-ga 7.2 (FACTS.md) VmRSS %d KiB -> agent/qemu-ga %.2fx (limit 1.00x)\n",
           QEMU_GA_RSS_KIB, (double)rss / QEMU_GA_RSS_KIB);

    printf("reaction: 205 MiB guest, 120 MiB available, falling at 100 MiB/s (OOM at ~1.2 s):\n");
    for (int i = 0; i < TRIALS; i++) {
        double ms = one_fall(&b, 205 * MIB);

        if (ms < 0)
            missed++;
        else
            lat[n++] = ms;
    }
    qsort(lat, (gsize)n, sizeof(double), (GCompareFunc)cmp_double);
    if (n > 0)
        printf("  first pressure report after: median %.0f ms, max %.0f ms over %d falls"
               " (%d missed) -> max/budget %.2fx (budget %d ms)\n",
               lat[n / 2], lat[n - 1], n, missed, lat[n - 1] / BUDGET_MS, BUDGET_MS);
    else
        printf("  no pressure report before OOM in %d falls\n", missed);

    reap(b.pid);
    close(b.fd);
    close(b.lfd);
    bl_framer_free(b.framer);
    {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", b.dir);

        if (system(cmd) != 0)
            return 1;
    }
    return missed == 0 ? 0 : 1;
}
