/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The agent's main loop: see agent.h. */
#include "agent.h"

#include <glib-unix.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <string.h>

#include "channel.h"
#include "detect.h"
#include "pressure.h"
#include "protocol.h"
#include "report.h"
#include "sampler.h"
#include "trigger.h"

struct Agent {
    AgentOptions opts;
    char *root;
    GMainLoop *loop;
    int exit_code;

    Sampler *sampler;
    Channel *channel;
    Trigger *trigger;
    PressureState pressure;
    ReportFacts facts;
    gint64 last_detect_ms;

    guint32 interval_ms;   /* current: the default until a welcome says otherwise */
    GSource *sample_timer; /* one for the agent's life, re-armed: no allocation per sample */
    gboolean trigger_event;
    gboolean sample_warned;
    BlPsiTrigger armed; /* what the trigger was armed with */

    /* Outbox: at most one of each; a newer report replaces a pending one. */
    gboolean need_hello;
    const char *goodbye_reason;
    gboolean pong_pending;
    guint64 pong_id;
    gboolean request_pending; /* sampled when the port takes it: requests coalesce */
    gboolean report_pending;
    BlReportReason report_reason;
    BlReport report_sample;
    guint64 seq;

    gboolean once_hello, once_report;
    BlMessage scratch;
    AgentStats stats;
};

static gint64 agent_now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

static void agent_detect(Agent *a)
{
    BlBalloonFacts b;
    BlKconfig kconfig = a->facts.balloon.kconfig;
    g_autoptr(GError) error = NULL;

    if (!detect_balloon(a->root, &b, &error)) {
        g_debug("balloon detection: %s", error->message);
        memset(&b, 0, sizeof(b));
    }
    b.kconfig = kconfig;
    if (memcmp(&b, &a->facts.balloon, sizeof(b)) != 0) {
        a->facts.balloon = b;
        a->need_hello = TRUE;
    }
    a->last_detect_ms = agent_now_ms();
}

static void agent_queue_report(Agent *a, const BlReport *sample, BlReportReason reason)
{
    /* Replace, never queue: the newest data wins, the most urgent reason too. */
    if (a->report_pending &&
        (a->report_reason == BL_REPORT_PRESSURE ||
         (a->report_reason == BL_REPORT_REQUEST && reason == BL_REPORT_PERIODIC)))
        reason = a->report_reason;
    a->report_sample = *sample;
    a->report_reason = reason;
    a->report_pending = TRUE;
}

static gboolean agent_on_tick(gpointer data);

/*
 * The sample timer: a source without prepare/check that fires at its ready time. It disarms
 * itself (ready time -1) before running the tick, which may re-arm it, so it fires once per
 * agent_schedule() exactly like the g_timeout_add() per sample it replaces (the tick's
 * G_SOURCE_REMOVE, kept from then, is ignored: re-arming is agent_schedule()'s job).
 */
static gboolean agent_timer_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
    g_source_set_ready_time(source, -1);
    callback(data);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs agent_timer_funcs = {.dispatch = agent_timer_dispatch};

/* Due in ms from the loop's current time, the base g_timeout_add() uses; replaces any earlier
 * schedule. */
static void agent_schedule(Agent *a, guint ms)
{
    g_source_set_ready_time(a->sample_timer,
                            g_source_get_time(a->sample_timer) + (gint64)ms * 1000);
}

static void agent_stop_sampling(Agent *a)
{
    g_source_set_ready_time(a->sample_timer, -1);
}

static gboolean agent_sample(Agent *a, BlReport *sample)
{
    g_autoptr(GError) error = NULL;

    if (sampler_sample(a->sampler, sample, &error)) {
        a->sample_warned = FALSE;
        return TRUE;
    }
    if (!a->sample_warned)
        g_warning("cannot sample memory: %s", error->message);
    a->sample_warned = TRUE;
    if (a->opts.once) {
        a->exit_code = 1;
        g_main_loop_quit(a->loop);
    }
    return FALSE;
}

static gboolean agent_on_tick(gpointer data)
{
    Agent *a = data;
    gint64 now = agent_now_ms();
    PressureVerdict v;
    BlReport sample;
    gboolean event = a->trigger_event;

    a->trigger_event = FALSE;
    if (!channel_connected(a->channel))
        return G_SOURCE_REMOVE; /* nobody listens; resumes on connect */
    if (now - a->last_detect_ms >= AGENT_REDETECT_MS)
        agent_detect(a);
    if (!agent_sample(a, &sample)) {
        agent_schedule(a, a->interval_ms);
        return G_SOURCE_REMOVE;
    }
    pressure_step(&a->pressure, (guint64)now, &sample, a->interval_ms, event, &v);
    if (v.send) {
        if (v.why != NULL)
            g_debug("pressure: %s (MemAvailable %" G_GUINT64_FORMAT " KiB)", v.why,
                    sample.mem.available_kib);
        agent_queue_report(a, &sample, v.reason);
    }
    if (!a->opts.once || !a->once_report)
        agent_schedule(a, v.next_ms);
    channel_kick(a->channel);
    return G_SOURCE_REMOVE;
}

static void agent_on_trigger(gpointer data)
{
    Agent *a = data;

    a->trigger_event = TRUE;
    if (channel_connected(a->channel))
        agent_schedule(a, 0);
}

static void agent_disarm(Agent *a)
{
    trigger_disarm(a->trigger);
    memset(&a->armed, 0, sizeof(a->armed));
}

static void agent_apply_welcome(Agent *a, const BlWelcome *w)
{
    guint32 interval = CLAMP(w->interval_ms, BL_PROTO_INTERVAL_MIN_MS, BL_PROTO_INTERVAL_MAX_MS);

    if (interval != a->interval_ms)
        g_debug("welcome from %s %s: interval %u ms", w->broker, w->broker_version, interval);
    a->interval_ms = interval;
    a->facts.interval_ms = interval;
    if (w->has_psi_trigger && (a->facts.features & REPORT_FEATURE_PSI_TRIGGER)) {
        if (!trigger_armed(a->trigger) || memcmp(&a->armed, &w->psi_trigger, sizeof(a->armed))) {
            g_autoptr(GError) error = NULL;

            agent_disarm(a);
            if (trigger_arm_psi(a->trigger, a->root, &w->psi_trigger, &error))
                a->armed = w->psi_trigger;
            else
                g_warning("PSI trigger: %s; relying on sampling", error->message);
        }
    } else {
        agent_disarm(a);
    }
    agent_schedule(a, 0); /* the next report is due at the new interval */
}

static void agent_on_line(const char *line, gsize len, gpointer data)
{
    Agent *a = data;
    BlMessage *msg = &a->scratch;
    g_autoptr(GError) error = NULL;

    if (!bl_proto_decode(line, len, msg, &error)) {
        if (g_error_matches(error, BL_PROTO_ERROR, BL_PROTO_ERROR_VERSION)) {
            g_message("host speaks protocol major %u; retrying in %d s", msg->v,
                      AGENT_VERSION_RETRY_MS / 1000);
            /* answer once with goodbye, unless it was one */
            if (!bl_proto_line_is_goodbye(line, len)) {
                a->goodbye_reason = "unsupported-version";
                channel_kick(a->channel);
            }
            a->goodbye_reason = NULL;
            channel_restart(a->channel, AGENT_VERSION_RETRY_MS);
            return;
        }
        if (g_error_matches(error, BL_PROTO_ERROR, BL_PROTO_ERROR_UNKNOWN_TYPE))
            a->stats.unknown_types++;
        else
            a->stats.bad_lines++;
        g_debug("ignored input: %s", error->message);
        return;
    }
    switch (msg->type) {
    case BL_MSG_WELCOME:
        agent_apply_welcome(a, &msg->u.welcome);
        break;
    case BL_MSG_REQUEST:
        a->request_pending = TRUE;
        break;
    case BL_MSG_PING:
        a->pong_pending = TRUE; /* only the latest ping is answered */
        a->pong_id = msg->u.ping.id;
        break;
    case BL_MSG_GOODBYE:
        g_message("host said goodbye: %s", msg->u.goodbye.reason);
        a->interval_ms = a->opts.interval_ms;
        a->facts.interval_ms = a->opts.interval_ms;
        agent_disarm(a);
        break;
    case BL_MSG_HELLO:
    case BL_MSG_REPORT:
    case BL_MSG_PONG:
        a->stats.unknown_types++; /* valid, but not for an agent */
        break;
    }
    /* no kick: the channel writes the answers once the input read is handled */
}

static gboolean agent_encode(Agent *a, GString *out)
{
    g_autoptr(GError) error = NULL;

    if (bl_proto_encode(&a->scratch, out, &error))
        return TRUE;
    g_warning("cannot encode %s: %s", bl_proto_type_name(a->scratch.type), error->message);
    return FALSE;
}

static gboolean agent_quit_idle(gpointer data)
{
    Agent *a = data;

    g_main_loop_quit(a->loop);
    return G_SOURCE_REMOVE;
}

static gboolean agent_fill(GString *out, gpointer data)
{
    Agent *a = data;

    if (a->goodbye_reason != NULL) {
        report_build_goodbye(&a->scratch, a->goodbye_reason);
        a->goodbye_reason = NULL;
        if (agent_encode(a, out))
            return TRUE;
    }
    if (a->need_hello) {
        a->need_hello = FALSE;
        report_build_hello(&a->scratch, &a->facts);
        /* 0xFF first: the host drops any partial line of an earlier connection */
        if (channel_kind(a->channel) != CHANNEL_KIND_STDIO)
            g_string_append_c(out, (char)0xff);
        if (agent_encode(a, out)) {
            a->stats.hellos++;
            a->once_hello = TRUE;
            return TRUE;
        }
        g_string_truncate(out, 0);
    }
    if (a->pong_pending) {
        a->pong_pending = FALSE;
        report_build_pong(&a->scratch, a->pong_id);
        if (agent_encode(a, out)) {
            a->stats.pongs++;
            return TRUE;
        }
    }
    if (a->request_pending) {
        BlReport sample;

        a->request_pending = FALSE;
        if (agent_sample(a, &sample))
            agent_queue_report(a, &sample, BL_REPORT_REQUEST);
    }
    if (a->report_pending) {
        a->report_pending = FALSE;
        /* seq must rise through a whole boot, also across agent restarts, and
         * the agent keeps nothing on disk: the first report of this agent
         * continues from the guest's uptime in ms. Reports come at most 10/s,
         * so a restarted agent always starts above where its predecessor was. */
        if (a->seq == 0)
            a->seq = MIN(a->report_sample.uptime_ms, REPORT_INT_MAX - 1);
        report_build(&a->scratch, &a->report_sample, a->seq + 1, a->report_reason);
        if (agent_encode(a, out)) {
            a->seq++;
            a->stats.reports++;
            a->once_report = TRUE;
            return TRUE;
        }
    }
    if (a->opts.once && a->once_hello && a->once_report)
        g_idle_add(agent_quit_idle, a); /* everything written */
    return FALSE;
}

static void agent_on_connected(gpointer data)
{
    Agent *a = data;

    agent_detect(a);
    a->need_hello = TRUE;
    a->pong_pending = FALSE;
    a->request_pending = FALSE;
    a->report_pending = FALSE;
    pressure_reset(&a->pressure);
    agent_schedule(a, 0); /* a fresh report right after hello */
}

static void agent_on_disconnected(gboolean final, gpointer data)
{
    Agent *a = data;

    agent_stop_sampling(a);
    a->report_pending = FALSE;
    a->pong_pending = FALSE;
    a->request_pending = FALSE;
    /* A new host side starts from the defaults until its own welcome. */
    a->interval_ms = a->opts.interval_ms;
    a->facts.interval_ms = a->opts.interval_ms;
    agent_disarm(a);
    if (final) {
        g_message("output closed; exiting");
        a->exit_code = a->opts.once ? 1 : 0;
        g_main_loop_quit(a->loop);
    }
}

static gboolean agent_on_signal(int fd, GIOCondition cond, gpointer data)
{
    Agent *a = data;
    struct signalfd_siginfo si = {0}; /* logged even when an ERR/HUP read fails */

    if (read(fd, &si, sizeof(si)) != (gssize)sizeof(si) && !(cond & (G_IO_ERR | G_IO_HUP)))
        return G_SOURCE_CONTINUE; /* spurious wakeup */
    g_debug("signal %u: shutting down", si.ssi_signo);
    if (channel_connected(a->channel)) {
        /* best effort: written now if the port takes it, else dropped */
        a->need_hello = FALSE;
        a->report_pending = FALSE;
        a->pong_pending = FALSE;
        a->request_pending = FALSE;
        a->goodbye_reason = "shutdown";
        channel_kick(a->channel);
    }
    a->exit_code = 0;
    g_main_loop_quit(a->loop);
    return G_SOURCE_CONTINUE;
}

Agent *agent_new(const AgentOptions *opts, GError **error)
{
    static const ChannelCallbacks cb = {
        .connected = agent_on_connected,
        .disconnected = agent_on_disconnected,
        .line = agent_on_line,
        .fill = agent_fill,
    };
    g_autoptr(Agent) a = g_new0(Agent, 1);

    a->opts = *opts;
    a->root = g_strdup(opts->root ? opts->root : "/");
    a->opts.root = a->root;
    a->opts.port = NULL; /* not kept */
    a->opts.interval_ms =
        CLAMP(opts->interval_ms, BL_PROTO_INTERVAL_MIN_MS, BL_PROTO_INTERVAL_MAX_MS);
    a->interval_ms = a->opts.interval_ms;
    a->loop = g_main_loop_new(NULL, FALSE);
    a->sample_timer = g_source_new(&agent_timer_funcs, sizeof(GSource));
    g_source_set_callback(a->sample_timer, agent_on_tick, a, NULL);
    g_source_set_name(a->sample_timer, "ballast-agent sample timer");
    g_source_attach(a->sample_timer, NULL); /* the default context, as g_timeout_add() */
    a->sampler = sampler_new(a->root);
    a->trigger = trigger_new(agent_on_trigger, a);
    a->channel = channel_new(a->root, opts->port, &cb, a, error);
    if (a->channel == NULL)
        return NULL;

    sampler_read_token(a->sampler, "proc/sys/kernel/random/boot_id", a->facts.boot_id,
                       sizeof(a->facts.boot_id));
    sampler_read_token(a->sampler, "proc/sys/kernel/osrelease", a->facts.kernel,
                       sizeof(a->facts.kernel));
    a->facts.interval_ms = a->interval_ms;
    a->facts.features = REPORT_FEATURE_INTERVAL;
    if (sampler_has_psi(a->sampler)) {
        a->facts.features |= REPORT_FEATURE_PSI;
        if (trigger_supported(a->root))
            a->facts.features |= REPORT_FEATURE_PSI_TRIGGER;
    }
    /* once: the kernel config does not change while it runs */
    a->facts.balloon.kconfig = detect_kconfig(a->root, a->facts.kernel);
    agent_detect(a);
#ifdef __GLIBC__
    /* the kernel config (up to a few hundred KB) was read and freed: give the
     * heap back, it would otherwise count in the idle RSS for good */
    malloc_trim(0);
#endif
    return g_steal_pointer(&a);
}

void agent_free(Agent *a)
{
    if (a == NULL)
        return;
    if (a->sample_timer != NULL) {
        g_source_destroy(a->sample_timer);
        g_clear_pointer(&a->sample_timer, g_source_unref);
    }
    g_clear_pointer(&a->channel, channel_free);
    g_clear_pointer(&a->trigger, trigger_free);
    g_clear_pointer(&a->sampler, sampler_free);
    g_clear_pointer(&a->loop, g_main_loop_unref);
    g_free(a->root);
    g_free(a);
}

void agent_start(Agent *a)
{
    g_message("starting (kernel %s, balloon %s)", a->facts.kernel,
              detect_usable(&a->facts.balloon) ? "usable" : "not usable");
    channel_start(a->channel);
}

void agent_attach_trigger_fd(Agent *a, int fd, GIOCondition cond)
{
    trigger_attach_fd(a->trigger, fd, cond);
}

int agent_run(Agent *a)
{
    sigset_t set, old;
    guint watch = 0;
    int sfd;

    /* A signalfd in the loop, not g_unix_signal_add(): GLib delivers unix
     * signals through its "gmain" worker thread, a second thread (and its
     * stack) that this agent does not otherwise need. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &old);
    sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd >= 0)
        watch = g_unix_fd_add(sfd, G_IO_IN, agent_on_signal, a);
    else
        sigprocmask(SIG_SETMASK, &old, NULL); /* default action: exit */

    agent_start(a);
    g_main_loop_run(a->loop);
    if (watch != 0)
        g_source_remove(watch);
    if (sfd >= 0)
        close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return a->exit_code;
}

const AgentStats *agent_stats(const Agent *a)
{
    return &a->stats;
}
