/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ballast-config.h"

#include "session.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "framer.h"

/* A rejected kind is logged at most this often per session. */
#define SESSION_LOG_EVERY_US (10 * G_USEC_PER_SEC)
/* Unsent output beyond this means the guest does not read: give up on it. */
#define SESSION_OUT_MAX (64 * 1024)
/* A hello logged at once (a restarted agent) is logged at most this often. */
#define SESSION_HELLO_GAP_US (1 * G_USEC_PER_SEC)
/* The per-VM byte budget: an honest agent sends about 1 KiB a second. A guest
 * that keeps sending more than SESSION_BYTES_PER_S (after a burst of
 * SESSION_BYTES_BURST) loses its session, and with it the libvirt stream
 * whose queue would otherwise grow in this process while the loop is busy;
 * it is reopened with the usual back-off. */
#define SESSION_BYTES_PER_S (1024.0 * 1024.0)
#define SESSION_BYTES_BURST (8.0 * 1024.0 * 1024.0)

struct Session {
    char *vm;
    SessionTransport *transport;
    BlFramer *framer;
    SessionConfig cfg;
    SessionCallbacks cb;
    gpointer user_data;
    Evlog *log;
    SessionClock clock;

    gboolean open;
    char *close_reason;
    gint64 opened_at;
    GString *out; /* unsent bytes */

    gboolean has_hello;
    BlHello hello;
    gint64 hello_logged_at;
    guint64 hellos_quiet; /* answered, not logged, since the last logged one */
    guint64 hellos, reports_since_hello;
    gboolean has_report, has_prev;
    BlReport report, prev;
    gint64 report_at, prev_at;

    double tokens;
    gint64 tokens_at;
    double byte_tokens; /* the byte budget (SESSION_BYTES_*) */
    gint64 byte_tokens_at;

    guint64 rejected[SESSION_REJECT_N];
    gint64 logged_at[SESSION_REJECT_N];
    guint64 accepted, bytes;
    guint64 framer_overlong; /* already counted from the framer */
};

static const char *const reject_names[SESSION_REJECT_N] = {
    [SESSION_REJECT_JSON] = "json",
    [SESSION_REJECT_SCHEMA] = "schema",
    [SESSION_REJECT_RANGE] = "range",
    [SESSION_REJECT_OVERLONG] = "overlong",
    [SESSION_REJECT_RATE_LIMITED] = "rate-limited",
    [SESSION_REJECT_UNKNOWN_TYPE] = "unknown-type",
    [SESSION_REJECT_VERSION] = "version",
};

const char *session_reject_name(SessionReject kind)
{
    return (guint)kind < SESSION_REJECT_N ? reject_names[kind] : "?";
}

/* ---- fd transport (tests, and anything that is a plain socket) ---- */

/*
 * Every fd transport is watched through one epoll set behind one GSource.
 * GLib's own loop polls every source's fd on every wakeup: with a source per
 * guest, a broker of 1000 guests reporting once a second made 1000 wakeups a
 * second each costing poll() over 1000 descriptors (bench-scale: 45 % of a
 * core at rest). Here a wakeup costs what is ready. Level-triggered, like
 * poll(): a transport that leaves bytes unread is called again.
 */
typedef struct {
    GSource source;
    int epfd;
    GHashTable *watchers; /* registration id -> FdTransport, for dispatch after closes */
    guint64 next_id;
} FdHub;

typedef struct {
    SessionTransport parent;
    int fd;
    guint64 watch_id; /* 0: not watched */
    SessionTransportFunc func;
    gpointer user_data;
} FdTransport;

static FdHub *fd_hub;

static gboolean fd_hub_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
    FdHub *hub = (FdHub *)source;
    struct epoll_event evs[256];
    int n;

    do {
        n = epoll_wait(hub->epfd, evs, G_N_ELEMENTS(evs), 0);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        /* A callback may close other transports of this batch: look each up. */
        FdTransport *ft = g_hash_table_lookup(hub->watchers, &evs[i].data.u64);
        if (ft != NULL && ft->func != NULL)
            ft->func(ft->user_data);
        if (fd_hub == NULL)
            break; /* the last watcher went away and took the hub with it */
    }
    return G_SOURCE_CONTINUE;
}

static void fd_hub_finalize(GSource *source)
{
    FdHub *hub = (FdHub *)source;

    close(hub->epfd);
    g_hash_table_destroy(hub->watchers);
}

static GSourceFuncs fd_hub_funcs = {
    .dispatch = fd_hub_dispatch,
    .finalize = fd_hub_finalize,
};

static FdHub *fd_hub_get(void)
{
    if (fd_hub != NULL)
        return fd_hub;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return NULL;
    fd_hub = (FdHub *)g_source_new(&fd_hub_funcs, sizeof(FdHub));
    fd_hub->epfd = epfd;
    fd_hub->watchers = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    g_source_set_name(&fd_hub->source, "ballast fd transports");
    g_source_add_unix_fd(&fd_hub->source, epfd, G_IO_IN);
    g_source_attach(&fd_hub->source, NULL);
    return fd_hub;
}

static void fd_hub_remove(FdTransport *ft)
{
    if (ft->watch_id == 0 || fd_hub == NULL)
        return;
    epoll_ctl(fd_hub->epfd, EPOLL_CTL_DEL, ft->fd, NULL);
    g_hash_table_remove(fd_hub->watchers, &ft->watch_id);
    ft->watch_id = 0;
    if (g_hash_table_size(fd_hub->watchers) == 0) {
        g_source_destroy(&fd_hub->source);
        g_source_unref(&fd_hub->source);
        fd_hub = NULL;
    }
}

static gboolean fd_hub_add(FdTransport *ft)
{
    FdHub *hub = fd_hub_get();

    if (hub == NULL)
        return FALSE;
    ft->watch_id = ++hub->next_id;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = ft->watch_id};
    if (epoll_ctl(hub->epfd, EPOLL_CTL_ADD, ft->fd, &ev) < 0) {
        ft->watch_id = 0;
        return FALSE;
    }
    g_hash_table_insert(hub->watchers, g_memdup2(&ft->watch_id, sizeof(ft->watch_id)), ft);
    return TRUE;
}

static gssize fd_recv(SessionTransport *t, char *buf, gsize len, GError **error)
{
    FdTransport *ft = (FdTransport *)t;
    gssize n;

    do {
        n = read(ft->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return SESSION_IO_AGAIN;
    if (n < 0) {
        int saved = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "read: %s", g_strerror(saved));
        return -1;
    }
    return n;
}

static gssize fd_send(SessionTransport *t, const char *buf, gsize len, GError **error)
{
    FdTransport *ft = (FdTransport *)t;
    gssize n;

    do {
        n = send(ft->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(ft->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return SESSION_IO_AGAIN;
    if (n < 0) {
        int saved = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "write: %s",
                    g_strerror(saved));
        return -1;
    }
    return n;
}

static void fd_watch(SessionTransport *t, SessionTransportFunc func, gpointer user_data)
{
    FdTransport *ft = (FdTransport *)t;

    fd_hub_remove(ft);
    ft->func = func;
    ft->user_data = user_data;
    if (func != NULL && !fd_hub_add(ft))
        g_warning("cannot watch transport fd %d: %s", ft->fd, g_strerror(errno));
}

static void fd_close(SessionTransport *t)
{
    FdTransport *ft = (FdTransport *)t;

    fd_hub_remove(ft);
    close(ft->fd);
    g_free(ft);
}

static const SessionTransportOps fd_ops = {
    .recv = fd_recv,
    .send = fd_send,
    .watch = fd_watch,
    .close = fd_close,
    .short_recv_drains = TRUE, /* read() on a stream socket, epoll level-triggered */
};

SessionTransport *session_transport_new_fd(int fd)
{
    FdTransport *ft = g_new0(FdTransport, 1);

    ft->parent.ops = &fd_ops;
    ft->fd = fd;
    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    return &ft->parent;
}

/* ---- session ---- */

static gboolean session_flush(Session *s)
{
    while (s->open && s->out->len > 0) {
        g_autoptr(GError) e = NULL;
        gssize n = s->transport->ops->send(s->transport, s->out->str, s->out->len, &e);
        if (n == SESSION_IO_AGAIN)
            break;
        if (n <= 0) {
            g_autofree char *why = g_strdup_printf("write failed: %s", e ? e->message : "0");
            session_close(s, NULL, why);
            return FALSE;
        }
        g_string_erase(s->out, 0, n);
    }
    if (s->open && s->out->len > SESSION_OUT_MAX) {
        session_close(s, NULL, "guest does not read");
        return FALSE;
    }
    return s->open;
}

static gboolean session_send(Session *s, const BlMessage *msg)
{
    g_autoptr(GError) e = NULL;

    if (!s->open)
        return FALSE;
    if (!bl_proto_encode(msg, s->out, &e)) {
        /* Our own message is wrong: a bug, but the guest is not to blame. */
        evlog_say(s->log, FALSE, "%s: cannot encode %s: %s", s->vm, bl_proto_type_name(msg->type),
                  e->message);
        return FALSE;
    }
    return session_flush(s);
}

static void session_send_welcome(Session *s)
{
    BlMessage m;

    bl_proto_init(&m, BL_MSG_WELCOME);
    g_strlcpy(m.u.welcome.broker, "ballastd", sizeof(m.u.welcome.broker));
    g_strlcpy(m.u.welcome.broker_version, BALLAST_VERSION, sizeof(m.u.welcome.broker_version));
    m.u.welcome.minor = BL_PROTO_MINOR;
    m.u.welcome.interval_ms = s->cfg.interval_ms;
    m.u.welcome.has_psi_trigger = s->cfg.has_psi_trigger;
    m.u.welcome.psi_trigger = s->cfg.psi_trigger;
    session_send(s, &m);
}

static void session_reject(Session *s, SessionReject kind, guint64 n, const char *detail)
{
    gint64 now = s->clock();

    s->rejected[kind] += n;
    /* One guest's garbage must not flood the broker's log either. */
    if (s->logged_at[kind] != 0 && now - s->logged_at[kind] < SESSION_LOG_EVERY_US)
        return;
    s->logged_at[kind] = now;
    json_object *f = json_object_new_object();
    json_object_object_add(f, "what", json_object_new_string(reject_names[kind]));
    json_object_object_add(f, "count", json_object_new_int64((gint64)s->rejected[kind]));
    evlog_emit(s->log, "rejected", s->vm, f);
    evlog_say(s->log, FALSE, "%s: rejected %s from the agent (%" G_GUINT64_FORMAT " so far)%s%s",
              s->vm, reject_names[kind], s->rejected[kind], detail ? ": " : "",
              detail ? detail : "");
}

static gboolean session_take_token(Session *s)
{
    gint64 now = s->clock();
    double rate = s->cfg.rate_limit_per_s, burst = s->cfg.rate_limit_burst;

    if (now > s->tokens_at) {
        s->tokens += (double)(now - s->tokens_at) * rate / G_USEC_PER_SEC;
        if (s->tokens > burst)
            s->tokens = burst;
    }
    s->tokens_at = MAX(s->tokens_at, now);
    if (s->tokens < 1.0)
        return FALSE;
    s->tokens -= 1.0;
    return TRUE;
}

static void session_on_hello(Session *s, const BlHello *h)
{
    gint64 now = s->clock();
    /* An agent says hello once per connection, then reports. A guest that
     * repeats the same hello with no report in between is answered but
     * logged once per SESSION_LOG_EVERY_US; a restarted agent (it had
     * reported since its last hello, or says something new) is logged at
     * once, but at most once per SESSION_HELLO_GAP_US: a guest alternating
     * hellos and reports costs one line a second, not one per message. */
    gboolean repeat =
        s->has_hello && memcmp(&s->hello, h, sizeof(*h)) == 0 && s->reports_since_hello == 0;
    gint64 gap = repeat ? SESSION_LOG_EVERY_US : SESSION_HELLO_GAP_US;
    gboolean same = s->has_hello && now - s->hello_logged_at < gap;

    s->reports_since_hello = 0;
    s->hello = *h;
    s->has_hello = TRUE;
    s->hellos++;
    if (same) {
        s->hellos_quiet++;
        session_send_welcome(s);
        if (s->open && s->cb.hello)
            s->cb.hello(s, s->user_data);
        return;
    }
    s->hello_logged_at = now;

    json_object *f = json_object_new_object();
    if (s->hellos_quiet > 0)
        json_object_object_add(f, "hellos_not_logged", json_object_new_uint64(s->hellos_quiet));
    s->hellos_quiet = 0;
    json_object_object_add(f, "agent", json_object_new_string(h->agent));
    json_object_object_add(f, "agent_version", json_object_new_string(h->agent_version));
    json_object_object_add(f, "minor", json_object_new_int64(h->minor));
    json_object *feat = json_object_new_array();
    for (guint i = 0; i < h->n_features && i < BL_PROTO_FEATURES_MAX; i++)
        json_object_array_add(feat, json_object_new_string(h->features[i]));
    json_object_object_add(f, "features", feat);
    json_object *b = json_object_new_object();
    json_object_object_add(b, "present", json_object_new_boolean(h->balloon.present));
    json_object_object_add(b, "driver_bound", json_object_new_boolean(h->balloon.driver_bound));
    json_object_object_add(b, "kconfig",
                           json_object_new_string(bl_proto_kconfig_name(h->balloon.kconfig)));
    json_object_object_add(f, "balloon", b);
    evlog_emit(s->log, "hello", s->vm, f);
    evlog_say(s->log, FALSE, "%s: agent %s %s (protocol 1.%u), balloon %s%s", s->vm, h->agent,
              h->agent_version, h->minor, h->balloon.present ? "present" : "absent",
              h->balloon.present && !h->balloon.driver_bound ? " but no driver bound" : "");

    session_send_welcome(s);
    if (s->open && s->cb.hello)
        s->cb.hello(s, s->user_data);
}

static void session_on_report(Session *s, const BlReport *r)
{
    if (s->has_report) {
        s->prev = s->report;
        s->prev_at = s->report_at;
        s->has_prev = TRUE;
    }
    s->report = *r;
    s->report_at = s->clock();
    s->has_report = TRUE;
    s->reports_since_hello++;

    /* One per guest a second: its fields are built only for a log that
     * writes them. */
    if (evlog_emits(s->log)) {
        json_object *f = json_object_new_object();
        json_object_object_add(f, "seq", json_object_new_uint64(r->seq));
        json_object_object_add(f, "reason",
                               json_object_new_string(bl_proto_reason_name(r->reason)));
        json_object_object_add(f, "total_kib", json_object_new_uint64(r->mem.total_kib));
        json_object_object_add(f, "available_kib", json_object_new_uint64(r->mem.available_kib));
        json_object_object_add(f, "psi_some_avg10",
                               r->has_psi ? json_object_new_double(r->psi.some.avg10) : NULL);
        evlog_emit(s->log, "report", s->vm, f);
    }

    if (s->cb.report)
        s->cb.report(s, &s->report, s->user_data);
}

static SessionReject reject_kind(const GError *e)
{
    if (e == NULL || e->domain != BL_PROTO_ERROR)
        return SESSION_REJECT_SCHEMA;
    switch ((BlProtoError)e->code) {
    case BL_PROTO_ERROR_JSON:
        return SESSION_REJECT_JSON;
    case BL_PROTO_ERROR_SCHEMA:
        return SESSION_REJECT_SCHEMA;
    case BL_PROTO_ERROR_RANGE:
        return SESSION_REJECT_RANGE;
    case BL_PROTO_ERROR_VERSION:
        return SESSION_REJECT_VERSION;
    case BL_PROTO_ERROR_UNKNOWN_TYPE:
        return SESSION_REJECT_UNKNOWN_TYPE;
    case BL_PROTO_ERROR_TOO_LONG:
        return SESSION_REJECT_OVERLONG;
    }
    return SESSION_REJECT_SCHEMA;
}

static gboolean session_on_line(const char *line, gsize len, gpointer user_data)
{
    Session *s = user_data;
    g_autoptr(GError) e = NULL;
    BlMessage msg;

    if (!s->open)
        return FALSE;
    if (!session_take_token(s)) {
        session_reject(s, SESSION_REJECT_RATE_LIMITED, 1, NULL);
        return TRUE;
    }
    if (!bl_proto_decode(line, len, &msg, &e)) {
        SessionReject kind = reject_kind(e);
        session_reject(s, kind, 1, e ? e->message : NULL);
        if (kind == SESSION_REJECT_VERSION) {
            g_autofree char *why =
                g_strdup_printf("unsupported-version: agent speaks major %u", msg.v);
            /* A goodbye of another major is never answered with a goodbye. */
            session_close(s, bl_proto_line_is_goodbye(line, len) ? NULL : "unsupported-version",
                          why);
            return FALSE;
        }
        return TRUE;
    }

    switch (msg.type) {
    case BL_MSG_HELLO:
        s->accepted++;
        session_on_hello(s, &msg.u.hello);
        break;
    case BL_MSG_REPORT:
        s->accepted++;
        session_on_report(s, &msg.u.report);
        break;
    case BL_MSG_PING: {
        BlMessage pong;
        s->accepted++;
        bl_proto_init(&pong, BL_MSG_PONG);
        pong.u.ping.id = msg.u.ping.id;
        session_send(s, &pong);
        break;
    }
    case BL_MSG_PONG:
        s->accepted++;
        break;
    case BL_MSG_GOODBYE: {
        s->accepted++;
        g_autofree char *why = g_strdup_printf("agent said goodbye: %s", msg.u.goodbye.reason);
        session_close(s, NULL, why);
        return FALSE;
    }
    case BL_MSG_WELCOME:
    case BL_MSG_REQUEST:
        /* Host-to-guest messages coming from the guest. */
        session_reject(s, SESSION_REJECT_SCHEMA, 1, "host-only message from the guest");
        break;
    }
    return s->open;
}

/* FALSE once the guest has sent more than its byte budget allows. */
static gboolean session_take_bytes(Session *s, gsize n)
{
    gint64 now = s->clock();

    if (now > s->byte_tokens_at)
        s->byte_tokens =
            MIN(SESSION_BYTES_BURST, s->byte_tokens + (double)(now - s->byte_tokens_at) *
                                                          SESSION_BYTES_PER_S / G_USEC_PER_SEC);
    s->byte_tokens_at = MAX(s->byte_tokens_at, now);
    s->byte_tokens -= (double)n;
    return s->byte_tokens >= 0;
}

/* One read buffer for every session: a read is fed to the session's framer
 * at once (which keeps only an unfinished line, at most BL_PROTO_MAX_LINE),
 * so a buffer per session would only cost read_budget_bytes per guest (64 MiB
 * of RSS for 1000 flooding guests, bench-scale). Single-threaded: the line
 * callbacks never read another session. */
static char session_read_chunk[16384];

gboolean session_on_readable(Session *s)
{
    gsize budget = s->cfg.read_budget_bytes;

    if (!s->open)
        return FALSE;
    /* A bounded amount per wakeup: a flooding guest waits for the next
     * wakeup while the main loop serves everyone else. */
    while (budget > 0 && s->open) {
        g_autoptr(GError) e = NULL;
        gsize want = MIN(budget, sizeof(session_read_chunk));
        gssize n = s->transport->ops->recv(s->transport, session_read_chunk, want, &e);
        if (n == SESSION_IO_AGAIN)
            break;
        if (n == 0) {
            session_close(s, NULL, "hangup");
            break;
        }
        if (n < 0) {
            g_autofree char *why = g_strdup_printf("read failed: %s", e ? e->message : "?");
            session_close(s, NULL, why);
            break;
        }
        budget -= (gsize)n;
        s->bytes += (guint64)n;
        if (!session_take_bytes(s, (gsize)n)) {
            g_autofree char *why = g_strdup_printf(
                "flooding: more than %.0f KiB/s sustained from the guest (%" G_GUINT64_FORMAT
                " bytes this session)",
                SESSION_BYTES_PER_S / 1024, s->bytes);
            session_close(s, NULL, why);
            break;
        }
        bl_framer_feed(s->framer, session_read_chunk, (gsize)n, session_on_line, s);

        const BlFramerStats *st = bl_framer_stats(s->framer);
        if (st->overlong > s->framer_overlong) {
            session_reject(s, SESSION_REJECT_OVERLONG, st->overlong - s->framer_overlong,
                           "line longer than the protocol allows");
            s->framer_overlong = st->overlong;
        }
        /* An agent's report is one short read: the second read, which would
         * only say EAGAIN, was a quarter of the system calls per report. */
        if (s->open && (gsize)n < want && s->transport->ops->short_recv_drains)
            break;
    }
    if (s->open)
        session_flush(s);
    return s->open;
}

static void session_watch_cb(gpointer user_data)
{
    session_on_readable(user_data);
}

Session *session_new(const char *vm, SessionTransport *transport, const SessionConfig *cfg,
                     const SessionCallbacks *callbacks, gpointer user_data, Evlog *log,
                     SessionClock clock)
{
    Session *s = g_new0(Session, 1);

    s->vm = g_strdup(vm);
    s->transport = transport;
    s->framer = bl_framer_new(BL_PROTO_MAX_LINE);
    s->cfg = *cfg;
    if (callbacks)
        s->cb = *callbacks;
    s->user_data = user_data;
    s->log = log;
    s->clock = clock ? clock : g_get_monotonic_time;
    s->open = TRUE;
    s->opened_at = s->clock();
    s->out = g_string_new(NULL);
    s->tokens = cfg->rate_limit_burst;
    s->tokens_at = s->opened_at;
    s->byte_tokens = SESSION_BYTES_BURST;
    s->byte_tokens_at = s->opened_at;
    /* We may be a new host connection after a half-written line of the
     * previous one: resync the agent's framer (PROTOCOL.md 2). It leaves
     * with our first message. */
    g_string_append_c(s->out, (char)0xFF);
    transport->ops->watch(transport, session_watch_cb, s);
    return s;
}

gboolean session_request(Session *s)
{
    BlMessage m;

    bl_proto_init(&m, BL_MSG_REQUEST);
    return session_send(s, &m);
}

void session_close(Session *s, const char *goodbye_reason, const char *why)
{
    if (!s->open)
        return;
    if (goodbye_reason != NULL) {
        BlMessage m;
        bl_proto_init(&m, BL_MSG_GOODBYE);
        m.u.goodbye.supported_major = BL_PROTO_MAJOR;
        g_strlcpy(m.u.goodbye.reason, goodbye_reason, sizeof(m.u.goodbye.reason));
        session_send(s, &m);
        if (!s->open)
            return; /* sending it failed and closed the session already */
    }
    s->open = FALSE;
    s->close_reason = g_strdup(why);
    s->transport->ops->watch(s->transport, NULL, NULL);
    s->transport->ops->close(s->transport);
    s->transport = NULL;
    if (s->cb.closed)
        s->cb.closed(s, why, s->user_data);
}

void session_free(Session *s)
{
    if (s == NULL)
        return;
    if (s->transport) {
        s->transport->ops->watch(s->transport, NULL, NULL);
        s->transport->ops->close(s->transport);
    }
    bl_framer_free(s->framer);
    g_string_free(s->out, TRUE);
    g_free(s->close_reason);
    g_free(s->vm);
    g_free(s);
}

void session_set_config(Session *s, const SessionConfig *cfg)
{
    gboolean resend = s->has_hello && (cfg->interval_ms != s->cfg.interval_ms ||
                                       cfg->has_psi_trigger != s->cfg.has_psi_trigger ||
                                       cfg->psi_trigger.kind != s->cfg.psi_trigger.kind ||
                                       cfg->psi_trigger.stall_us != s->cfg.psi_trigger.stall_us ||
                                       cfg->psi_trigger.window_us != s->cfg.psi_trigger.window_us);

    s->cfg = *cfg;
    if (s->tokens > cfg->rate_limit_burst)
        s->tokens = cfg->rate_limit_burst;
    if (resend && s->open)
        session_send_welcome(s);
}

gboolean session_is_open(const Session *s)
{
    return s->open;
}

const char *session_close_reason(const Session *s)
{
    return s->close_reason;
}

const BlHello *session_hello(const Session *s)
{
    return s->has_hello ? &s->hello : NULL;
}

const BlReport *session_report(const Session *s, gint64 *at_us)
{
    if (!s->has_report)
        return NULL;
    if (at_us)
        *at_us = s->report_at;
    return &s->report;
}

const BlReport *session_prev_report(const Session *s, gint64 *at_us)
{
    if (!s->has_prev)
        return NULL;
    if (at_us)
        *at_us = s->prev_at;
    return &s->prev;
}

gboolean session_is_stale(const Session *s, gint64 now_us)
{
    gint64 since = s->has_report ? s->report_at : s->opened_at;
    return now_us - since > (gint64)s->cfg.stale_ms * 1000;
}

gint64 session_opened_at(const Session *s)
{
    return s->opened_at;
}

guint64 session_rejected(const Session *s, SessionReject kind)
{
    return (guint)kind < SESSION_REJECT_N ? s->rejected[kind] : 0;
}

guint64 session_rejected_total(const Session *s)
{
    guint64 n = 0;
    for (guint i = 0; i < SESSION_REJECT_N; i++)
        n += s->rejected[i];
    return n;
}

guint64 session_accepted(const Session *s)
{
    return s->accepted;
}

guint64 session_hellos(const Session *s)
{
    return s->hellos;
}

guint64 session_bytes(const Session *s)
{
    return s->bytes;
}
