/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-scale: the real broker (sessions, framer, policy, apply) over N
 * simulated agents on real sockets, with the fake hypervisor of
 * bench/fake-virt.c instead of QEMU and libvirt.
 *
 * For each N, one process runs ballastd's core (broker_new/broker_run) and a
 * child process plays the N agents: hello, then a report per agent per second
 * (staggered), 1 % of them under pressure each second ("steady"), then every
 * agent under pressure for --storm-s ("storm"), then every agent sending
 * garbage ("garbage": overlong lines, bad JSON, lies) for --garbage-s.
 * Printed per N and phase:
 *
 *   bench-scale: vms=1000 phase=steady cpu_pct=0.8 p50_ms=0.05 p99_ms=0.4 rss_mib=21
 *
 * cpu_pct is the broker process's CPU (user+system) as a share of one core,
 * p50/p99 the time from a pressure report leaving the agent to the fake
 * set-memory call it caused (both on CLOCK_MONOTONIC), rss_mib the broker's
 * VmRSS at the end of the phase (VmHWM too). The N=1 run comes first: it is
 * the baseline the others are compared with (x_p99, x_cpu).
 */

#include <errno.h>
#include <glib/gstdio.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "fake-virt.h"
#include "protocol.h"

#define GIB_KIB (1024 * 1024)
/* Every VM: 8 GiB at most, its balloon at 1 GiB to start, a floor of 768 MiB.
 * The host has 64 TiB: deflates are never held back by it, the storm measures
 * the broker, not the host's shortage. */
#define VM_MAX_KIB   (8ULL * GIB_KIB)
#define VM_START_KIB (1ULL * GIB_KIB)
#define VM_FLOOR_KIB (768ULL * 1024)

typedef struct {
    double warmup_s, steady_s, storm_s, garbage_s;
} Phases;

typedef enum { PHASE_WARMUP, PHASE_STEADY, PHASE_STORM, PHASE_GARBAGE, PHASE_END } Phase;
static const char *const phase_names[] = {"warmup", "steady", "storm", "garbage"};

typedef struct {
    guint32 vm;
    gint64 at_us;
} SentPressure;

static gint64 mono_us(void)
{
    return g_get_monotonic_time();
}

static Phase phase_at(const Phases *p, gint64 t0, gint64 now)
{
    double s = (double)(now - t0) / 1e6;
    if (s < p->warmup_s)
        return PHASE_WARMUP;
    s -= p->warmup_s;
    if (s < p->steady_s)
        return PHASE_STEADY;
    s -= p->steady_s;
    if (s < p->storm_s)
        return PHASE_STORM;
    s -= p->storm_s;
    if (s < p->garbage_s)
        return PHASE_GARBAGE;
    return PHASE_END;
}

/* ---- the agents (child process) ---- */

/* Hostile lines: broken JSON, a schema error, a lie (available > total), an
 * overlong line in pieces. */
static void encode_garbage(GString *out, guint64 k)
{
    g_string_truncate(out, 0);
    switch (k % 4) {
    case 0:
        g_string_append(out, "{\"type\":\"report\",\"v\":1,\"seq\":\n");
        break;
    case 1:
        g_string_append(out, "{\"type\":\"report\",\"v\":1,\"seq\":\"x\"}\n");
        break;
    case 2:
        g_string_append(out, "{\"type\":\"hello\",\"v\":1}\n");
        break;
    default:
        /* 16 KiB of an unterminated line: the framer holds at most 64 KiB. */
        for (int i = 0; i < 16384; i++)
            g_string_append_c(out, 'A' + (char)(i % 26));
        break;
    }
}

static gboolean send_all(int fd, const GString *s)
{
    gssize w = write(fd, s->str, s->len);
    return w == (gssize)s->len; /* a full socket drops the line, as a guest would lose it */
}

static int agents_main(const int *fds, volatile const guint64 *balloon, guint n, const Phases *p,
                       gint64 t0, const char *log_path)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    g_autoptr(GString) line = g_string_new(NULL);
    g_autoptr(GArray) sent = g_array_new(FALSE, FALSE, sizeof(SentPressure));
    guint64 *seq = g_new0(guint64, n);
    guint64 *stall = g_new0(guint64, n);
    guint64 dropped = 0;
    char buf[65536];

    for (guint i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        fake_agent_hello(line);
        if (!send_all(fds[i], line))
            dropped++;
    }
    /* Agent i reports at t0 + 1 s + k s + i/n s. */
    gint64 period = G_USEC_PER_SEC;
    gint64 first = t0 + G_USEC_PER_SEC;
    guint next = 0;
    guint64 round = 0;
    for (;;) {
        gint64 due = first + (gint64)round * period + (gint64)next * period / n;
        Phase ph = phase_at(p, t0, due);
        if (ph == PHASE_END)
            break;
        gint64 now = mono_us();
        while (now < due) {
            struct epoll_event evs[64];
            int timeout_ms = (int)((due - now + 999) / 1000);
            int k = epoll_wait(ep, evs, G_N_ELEMENTS(evs), timeout_ms);
            for (int e = 0; e < k; e++) /* welcome, requests: read and drop */
                while (read(fds[evs[e].data.u32], buf, sizeof(buf)) > 0)
                    ;
            now = mono_us();
        }
        guint i = next;
        gboolean pressure = ph == PHASE_STORM || (ph == PHASE_STEADY && (i + round) % 100 == 0);
        if (ph == PHASE_GARBAGE) {
            for (int g = 0; g < 4; g++) {
                encode_garbage(line, round * 4 + (guint64)g);
                if (!send_all(fds[i], line))
                    dropped++;
            }
        } else {
            seq[i]++;
            if (pressure)
                stall[i] += 300000;
            fake_agent_report(line, seq[i], balloon[i], pressure, stall[i]);
            gint64 at = mono_us();
            if (!send_all(fds[i], line)) {
                dropped++;
            } else if (pressure) {
                SentPressure sp = {.vm = i, .at_us = at};
                g_array_append_val(sent, sp);
            }
        }
        if (++next == n) {
            next = 0;
            round++;
        }
    }
    FILE *f = fopen(log_path, "wb");
    if (f == NULL || fwrite(&dropped, sizeof(dropped), 1, f) != 1 ||
        (sent->len > 0 && fwrite(sent->data, sizeof(SentPressure), sent->len, f) != sent->len))
        return 1;
    fclose(f);
    g_free(seq);
    g_free(stall);
    return 0;
}

/* ---- the broker (parent of the agents) ---- */

typedef struct {
    Broker *b;
    FakeVirt *fake;
    const Phases *p;
    gint64 t0;
    Phase marked;
    struct rusage ru[PHASE_END + 1];
    gint64 at[PHASE_END + 1];
    guint64 rss_kib[PHASE_END + 1], hwm_kib[PHASE_END + 1];
    guint setmem_at[PHASE_END + 1]; /* index into the set-memory log */
} Run;

static void read_rss(guint64 *rss, guint64 *hwm)
{
    g_autofree char *s = NULL;
    *rss = *hwm = 0;
    if (!g_file_get_contents("/proc/self/status", &s, NULL, NULL))
        return;
    const char *p = strstr(s, "VmRSS:");
    if (p)
        *rss = g_ascii_strtoull(p + 6, NULL, 10);
    p = strstr(s, "VmHWM:");
    if (p)
        *hwm = g_ascii_strtoull(p + 6, NULL, 10);
}

static void mark(Run *r, Phase ph)
{
    getrusage(RUSAGE_SELF, &r->ru[ph]);
    r->at[ph] = mono_us();
    read_rss(&r->rss_kib[ph], &r->hwm_kib[ph]);
    r->setmem_at[ph] = fake_virt_set_memory_log(r->fake)->len;
}

static gboolean on_mark(gpointer data)
{
    Run *r = data;
    Phase ph = phase_at(r->p, r->t0, mono_us());

    while (r->marked < ph) {
        r->marked++;
        mark(r, r->marked);
    }
    if (ph == PHASE_END) {
        broker_quit(r->b, "benchmark over");
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int cmp_i64(const void *a, const void *b)
{
    gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
    return (x > y) - (x < y);
}

static double pct(const gint64 *v, gsize n, double q)
{
    if (n == 0)
        return -1;
    gsize i = (gsize)(q * (double)(n - 1) + 0.5);
    return (double)v[MIN(i, n - 1)] / 1000.0;
}

typedef struct {
    double cpu_pct, p50_ms, p99_ms, max_ms;
    guint64 rss_kib, hwm_kib;
    guint pressured, answered;
} PhaseFigures;

/* For each pressure report sent in [from, to): the first set-memory of its VM
 * at or after it, before that VM's next pressure report. */
static void latencies(const GArray *sent, const GArray *setmem, gint64 from, gint64 to, guint n_vms,
                      PhaseFigures *pf)
{
    g_autoptr(GArray) lat = g_array_new(FALSE, FALSE, sizeof(gint64));
    /* setmem calls per VM, in time order */
    g_autofree GArray **per_vm = g_new0(GArray *, n_vms);
    for (guint i = 0; i < setmem->len; i++) {
        const FakeVirtSetMemory *s = &g_array_index(setmem, FakeVirtSetMemory, i);
        if (per_vm[s->vm] == NULL)
            per_vm[s->vm] = g_array_new(FALSE, FALSE, sizeof(gint64));
        g_array_append_val(per_vm[s->vm], s->at_us);
    }
    g_autofree guint *cursor = g_new0(guint, n_vms);
    g_autofree gint64 *next_sent = g_new0(gint64, sent->len);
    g_autofree gint64 *last_seen = g_new0(gint64, n_vms);
    for (guint i = sent->len; i-- > 0;) {
        const SentPressure *sp = &g_array_index(sent, SentPressure, i);
        next_sent[i] = last_seen[sp->vm] ? last_seen[sp->vm] : G_MAXINT64;
        last_seen[sp->vm] = sp->at_us;
    }
    pf->pressured = pf->answered = 0;
    for (guint i = 0; i < sent->len; i++) {
        const SentPressure *sp = &g_array_index(sent, SentPressure, i);
        GArray *calls = per_vm[sp->vm];
        if (sp->at_us < from || sp->at_us >= to)
            continue;
        pf->pressured++;
        if (calls == NULL)
            continue;
        guint c = cursor[sp->vm];
        while (c < calls->len && g_array_index(calls, gint64, c) < sp->at_us)
            c++;
        cursor[sp->vm] = c;
        if (c < calls->len && g_array_index(calls, gint64, c) < next_sent[i]) {
            gint64 d = g_array_index(calls, gint64, c) - sp->at_us;
            g_array_append_val(lat, d);
            pf->answered++;
        }
    }
    for (guint i = 0; i < n_vms; i++)
        if (per_vm[i])
            g_array_unref(per_vm[i]);
    g_array_sort(lat, cmp_i64);
    pf->p50_ms = pct((gint64 *)(void *)lat->data, lat->len, 0.50);
    pf->p99_ms = pct((gint64 *)(void *)lat->data, lat->len, 0.99);
    pf->max_ms = lat->len ? (double)g_array_index(lat, gint64, lat->len - 1) / 1000.0 : -1;
}

static gboolean write_file(const char *dir, const char *name, const char *text)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    return g_file_set_contents(path, text, -1, NULL);
}

/* One N, in this (forked) process: prints its lines, returns 0 on success. */
static gboolean verbose;

static int run_one(guint n, const Phases *p, PhaseFigures out[PHASE_END])
{
    g_autofree int *broker_fds = g_new(int, n);
    g_autofree int *agent_fds = g_new(int, n);
    g_autofree char *dir = g_dir_make_tmp("bench-scale.XXXXXX", NULL);
    g_autofree char *proc = g_build_filename(dir, "proc", NULL);
    g_autofree char *log_path = g_build_filename(dir, "sent.bin", NULL);
    g_autofree char *conf = g_build_filename(dir, "ballastd.conf", NULL);
    g_autofree char *ctl = g_build_filename(dir, "ctl.sock", NULL);

    for (guint i = 0; i < n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            g_printerr("bench-scale: socketpair: %s (raise the open-files limit)\n",
                       g_strerror(errno));
            return 1;
        }
        broker_fds[i] = sv[0];
        agent_fds[i] = sv[1];
        fcntl(sv[1], F_SETFL, O_NONBLOCK);
    }
    /* A host with plenty of memory: deflates are never held back by it. */
    g_mkdir_with_parents(proc, 0755);
    if (!write_file(proc, "meminfo",
                    "MemTotal: 68719476736 kB\nMemFree: 68000000000 kB\n"
                    "MemAvailable: 68000000000 kB\n") ||
        !write_file(dir, "ballastd.conf",
                    "[broker]\nstats_period_s = 0\nrate_limit_per_s = 50\n"
                    "[ksm]\nmanage = false\n"))
        return 1;

    /* The broker's own lines (one per session, decision, ...) are not the
     * figures: --verbose keeps them. */
    if (!verbose) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, STDERR_FILENO);
            close(null);
        }
    }
    /* The guests' MemTotal follows their balloon: the fake writes the sizes
     * into memory shared with the guests' process. */
    volatile guint64 *balloon =
        mmap(NULL, n * sizeof(guint64), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (balloon == MAP_FAILED)
        return 1;
    g_autoptr(FakeVirt) fake = fake_virt_new(n, VM_MAX_KIB, VM_START_KIB, VM_FLOOR_KIB, broker_fds);
    fake_virt_mirror_balloons(fake, balloon);

    gint64 t0 = mono_us();
    pid_t child = fork();
    if (child == 0) {
        for (guint i = 0; i < n; i++)
            close(broker_fds[i]);
        _exit(agents_main(agent_fds, balloon, n, p, t0, log_path));
    }
    for (guint i = 0; i < n; i++)
        close(agent_fds[i]);

    BrokerOptions opt = {
        .uri = "backend:///",
        .config_path = conf,
        .config_explicit = TRUE,
        .control_path = ctl,
        .host_root = dir,
        .backend = fake_virt_backend(),
        .backend_data = fake,
    };
    g_autoptr(GError) e = NULL;
    Broker *b = broker_new(&opt, &e);
    if (b == NULL) {
        g_printerr("bench-scale: %s\n", e->message);
        return 1;
    }
    Run r = {.b = b, .fake = fake, .p = p, .t0 = t0, .marked = PHASE_WARMUP};
    mark(&r, PHASE_WARMUP);
    g_timeout_add(50, on_mark, &r);
    if (!broker_run(b, &e)) {
        g_printerr("bench-scale: %s\n", e->message);
        return 1;
    }
    int status = 0;
    waitpid(child, &status, 0);
    g_autofree char *log = NULL;
    gsize len = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        !g_file_get_contents(log_path, &log, &len, NULL) || len < sizeof(guint64)) {
        g_printerr("bench-scale: the agents' process failed\n");
        return 1;
    }
    guint64 dropped;
    memcpy(&dropped, log, sizeof(dropped));
    g_autoptr(GArray) sent = g_array_new(FALSE, FALSE, sizeof(SentPressure));
    g_array_append_vals(sent, log + sizeof(guint64),
                        (guint)((len - sizeof(guint64)) / sizeof(SentPressure)));
    const GArray *setmem = fake_virt_set_memory_log(fake);
    for (Phase ph = PHASE_STEADY; ph < PHASE_END; ph++) {
        PhaseFigures *pf = &out[ph];
        double wall = (double)(r.at[ph + 1] - r.at[ph]) / 1e6;
        double cpu = tv_s(r.ru[ph + 1].ru_utime) + tv_s(r.ru[ph + 1].ru_stime) -
                     tv_s(r.ru[ph].ru_utime) - tv_s(r.ru[ph].ru_stime);
        if (wall <= 0)
            continue;
        pf->cpu_pct = 100.0 * cpu / wall;
        pf->rss_kib = r.rss_kib[ph + 1];
        pf->hwm_kib = r.hwm_kib[ph + 1];
        latencies(sent, setmem, r.at[ph], r.at[ph + 1], n, pf);
    }
    g_print("# vms=%u: channels opened %u, agent lines dropped (socket full) %" G_GUINT64_FORMAT
            ", set-memory calls %u\n",
            n, fake_virt_channel_opens(fake), dropped, setmem->len);
    broker_free(b);
    g_autofree char *meminfo = g_build_filename(proc, "meminfo", NULL);
    const char *files[] = {meminfo, log_path, conf, ctl};
    for (guint i = 0; i < G_N_ELEMENTS(files); i++)
        g_unlink(files[i]);
    g_rmdir(proc);
    g_rmdir(dir);
    return 0;
}

static void print_line(guint n, Phase ph, const PhaseFigures *pf, const PhaseFigures *base)
{
    g_print("bench-scale: vms=%u phase=%s cpu_pct=%.2f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
            "rss_mib=%.1f hwm_mib=%.1f answered=%u/%u",
            n, phase_names[ph], pf->cpu_pct, pf->p50_ms, pf->p99_ms, pf->max_ms,
            (double)pf->rss_kib / 1024, (double)pf->hwm_kib / 1024, pf->answered, pf->pressured);
    if (base != NULL && base->p99_ms > 0 && ph != PHASE_GARBAGE)
        g_print(" x_p99_vs_n1=%.1f x_cpu_vs_n1=%.1f", pf->p99_ms / base->p99_ms,
                base->cpu_pct > 0 ? pf->cpu_pct / base->cpu_pct : 0);
    g_print("\n");
}

int main(int argc, char **argv)
{
    g_autofree char *vms = NULL;
    Phases p = {.warmup_s = 3, .steady_s = 60, .storm_s = 10, .garbage_s = 10};
    gboolean quick = FALSE;
    GOptionEntry entries[] = {
        {"vms", 0, 0, G_OPTION_ARG_STRING, &vms, "Comma-separated N list (default 1,100,1000,5000)",
         "LIST"},
        {"steady-s", 0, 0, G_OPTION_ARG_DOUBLE, &p.steady_s, "Steady phase (default 60)", "S"},
        {"storm-s", 0, 0, G_OPTION_ARG_DOUBLE, &p.storm_s, "Storm phase (default 10)", "S"},
        {"garbage-s", 0, 0, G_OPTION_ARG_DOUBLE, &p.garbage_s, "Garbage phase (default 10)", "S"},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Keep the broker's log lines", NULL},
        {"quick", 0, 0, G_OPTION_ARG_NONE, &quick, "N=1,100; 5 s phases (a smoke run)", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("- the broker at scale, on a fake hypervisor");
    g_autoptr(GError) e = NULL;
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &e)) {
        g_printerr("bench-scale: %s\n", e->message);
        return 1;
    }
    if (quick) {
        p.steady_s = p.storm_s = p.garbage_s = 5;
        if (vms == NULL)
            vms = g_strdup("1,100");
    }
    g_auto(GStrv) list = g_strsplit(vms ? vms : "1,100,1000,5000", ",", -1);

    /* Two descriptors per VM, in one process before the fork. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    PhaseFigures base[PHASE_END] = {0};
    gboolean have_base = FALSE;
    g_autofree guint *ns = g_new0(guint, g_strv_length(list) + 1);
    guint count = 0;
    gboolean has_one = FALSE;
    for (guint i = 0; list[i]; i++) {
        guint64 n;
        if (!g_ascii_string_to_unsigned(list[i], 10, 1, 100000, &n, NULL)) {
            g_printerr("bench-scale: --vms: \"%s\" is not a number of VMs (1..100000)\n", list[i]);
            return 1;
        }
        has_one |= n == 1;
        ns[count++] = (guint)n;
    }
    if (!has_one) { /* the baseline always runs first */
        memmove(ns + 1, ns, count * sizeof(guint));
        ns[0] = 1;
        count++;
    }
    for (guint i = 0; i < count; i++) {
        /* Each N in a fresh process: RSS is that N's alone. */
        int pipefd[2];
        if (pipe(pipefd) < 0)
            return 1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            PhaseFigures pf[PHASE_END] = {0};
            close(pipefd[0]);
            int rc = run_one(ns[i], &p, pf);
            if (rc == 0 && write(pipefd[1], pf, sizeof(pf)) != sizeof(pf))
                rc = 1;
            _exit(rc);
        }
        close(pipefd[1]);
        PhaseFigures pf[PHASE_END] = {0};
        gssize got = read(pipefd[0], pf, sizeof(pf));
        close(pipefd[0]);
        int status;
        waitpid(pid, &status, 0);
        if (got != sizeof(pf) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            g_printerr("bench-scale: the run with %u VMs failed\n", ns[i]);
            return 1;
        }
        if (!have_base && ns[i] == 1) {
            memcpy(base, pf, sizeof(base));
            have_base = TRUE;
        }
        for (Phase ph = PHASE_STEADY; ph < PHASE_END; ph++)
            print_line(ns[i], ph, &pf[ph], have_base && ns[i] != 1 ? &base[ph] : NULL);
    }
    return 0;
}
