/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "virt.h"

#include <libvirt-glib/libvirt-glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pwd.h>
#include <string.h>

#include "backoff.h"
#include "domxml.h"
#include "protocol.h"
#include "virt-ksm.h"
#include "virt-link.h"

/*
 * Threads. libvirt's event loop (and with it every domain event, stream
 * callback and the keepalive timer) runs on the GLib main loop, beside the
 * agents and the control socket. The calls themselves run elsewhere:
 *
 * - virConnectOpen in a thread of its own per attempt (VirtOpenJob): a
 *   libvirtd that accepts and never answers cannot stop the start;
 * - every RPC on an open connection in the connection's worker thread
 *   (VirtLink): the main loop waits for the answer at most the call timeout.
 *   A call that misses it fails, and while it is still outstanding every
 *   other call fails at once ("libvirtd is not answering") rather than
 *   queueing behind it, so the loop never waits twice. With the loop free,
 *   the keepalive (2 s x 3) notices a libvirtd that is hung or gone and
 *   closes the connection, which also ends the blocked call; a libvirtd
 *   that keeps its keepalive alive but never answers a call is left after
 *   VIRT_STUCK_RECONNECT_US. This is libvirt's own qemu_agent.c pattern:
 *   a synchronous call, a deadline, and a connection that is dropped when
 *   the other side stops answering.
 *
 * Main-thread state is only in Virt; the worker touches only its VirtLink
 * (the connection, its domain handles) and the VirtCall it runs. Every
 * libvirt object of a connection is released on its worker, last of all
 * the connection, whose close is itself an RPC.
 */

/* How long a call that missed its deadline may stay outstanding before the
 * connection is given up even though its keepalive still answers. */
#define VIRT_STUCK_RECONNECT_US (30 * G_USEC_PER_SEC)

/* The first connect waits this long for the open, so that a wrong URI still
 * stops the start with its error; a slower libvirtd is waited for in the
 * background. */
#define VIRT_OPEN_WAIT_US (5 * G_USEC_PER_SEC)

struct Virt {
    char *uri;
    VirtCallbacks cb;
    gpointer user_data;
    VirtLink *link; /* the connection, NULL while down */
    gboolean connected;
    guint reconnect_id;
    BackoffSpec backoff_spec; /* reconnect: reconnect_min_ms doubling to reconnect_max_ms */
    Backoff backoff;
    guint backoff_ms;       /* the wait before the pending reconnect */
    gint64 call_timeout_us; /* how long the main loop waits for one call */
    VirtCall *stuck;        /* a call that missed its deadline and is still out */
    gint64 stuck_since;
    guint stuck_id;               /* polls it */
    struct VirtOpenJob *open_job; /* a virConnectOpen in flight, off the main loop */
    const VirtBackend *backend;   /* not libvirt: tests and benchmarks */
    gpointer backend_data;
};

/* virConnectOpen runs in a thread of its own: a libvirtd that accepts the
 * connection and then never answers (hung, SIGSTOPped, starting) would
 * otherwise block the main loop, and with it ballastctl status and every
 * agent, for as long as it hangs (keepalive only starts after the open).
 * The thread also registers for events, which are RPCs too. The result comes
 * back to the main loop in a timeout source that polls the job. */
typedef struct VirtOpenJob {
    GMutex lock;
    GCond cond;
    gint refs;
    Virt *v; /* NULL once the Virt gave up on it (freed) */
    char *uri;
    gboolean done, consumed;
    VirtLink *link;
    char *error;
    gboolean bad_uri;
} VirtOpenJob;

GQuark virt_error_quark(void)
{
    return g_quark_from_static_string("ballast-virt-error-quark");
}

void virt_set_error(GError **error, const char *what)
{
    const char *msg = virGetLastErrorMessage();
    g_set_error(error, VIRT_ERROR, 0, "%s: %s", what, msg ? msg : "unknown libvirt error");
}

static const char *const event_names[] = {
    [VIRT_EVENT_DEFINED] = "defined",   [VIRT_EVENT_UNDEFINED] = "undefined",
    [VIRT_EVENT_STARTED] = "started",   [VIRT_EVENT_SUSPENDED] = "suspended",
    [VIRT_EVENT_RESUMED] = "resumed",   [VIRT_EVENT_STOPPED] = "stopped",
    [VIRT_EVENT_SHUTDOWN] = "shutdown", [VIRT_EVENT_PMSUSPENDED] = "pmsuspended",
    [VIRT_EVENT_CRASHED] = "crashed",   [VIRT_EVENT_REBOOTED] = "rebooted",
    [VIRT_EVENT_OTHER] = "other",
};

const char *virt_event_name(VirtEvent event)
{
    return (guint)event < G_N_ELEMENTS(event_names) ? event_names[event] : "?";
}

const char *virt_state_name(VirtState state)
{
    switch (state) {
    case VIRT_STATE_RUNNING:
        return "running";
    case VIRT_STATE_PAUSED:
        return "paused";
    case VIRT_STATE_SHUTOFF:
        return "shutoff";
    case VIRT_STATE_OTHER:
        break;
    }
    return "other";
}

static VirtState map_state(int state)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
        return VIRT_STATE_RUNNING;
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED:
        return VIRT_STATE_PAUSED;
    case VIR_DOMAIN_SHUTOFF:
    case VIR_DOMAIN_CRASHED:
        return VIRT_STATE_SHUTOFF;
    default:
        return VIRT_STATE_OTHER;
    }
}

/* libvirt prints every error on stderr by default; we report our own. */
static void virt_quiet_error(void *user_data, virErrorPtr err)
{
}

void virt_event_init(void)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        gvir_event_register();
        virSetErrorFunc(NULL, virt_quiet_error);
        g_once_init_leave(&done, 1);
    }
}

/* ---- the connection's worker (virt-link.c) ---- */

static void on_close(virConnectPtr conn, int reason, void *opaque);

/* On the worker, after the Virt let go: no more callbacks from this
 * connection (deregistering is an RPC), handles released. */
static gboolean link_detach(VirtLink *link, virDomainPtr dom, gpointer data, GError **error)
{
    for (guint i = 0; i < link->n_event_ids; i++)
        if (virConnectDomainEventDeregisterAny(link->conn, link->event_ids[i]) < 0)
            virResetLastError(); /* the connection may be dead already: expected */
    link->n_event_ids = 0;
    if (link->close_cb) {
        virConnectUnregisterCloseCallback(link->conn, on_close);
        link->close_cb = FALSE;
    }
    g_mutex_lock(&link->lock);
    g_hash_table_remove_all(link->domains);
    g_mutex_unlock(&link->lock);
    return TRUE;
}

/* The owner's last use of a link: detach it on its worker, drop the reference. */
static void link_drop(VirtLink *link)
{
    link->v = NULL;
    virt_link_post(link, link_detach, NULL);
    virt_link_unref(link);
}

Virt *virt_new(const char *uri, const VirtCallbacks *callbacks, gpointer user_data)
{
    Virt *v = g_new0(Virt, 1);

    v->uri = g_strdup(uri);
    if (callbacks)
        v->cb = *callbacks;
    v->user_data = user_data;
    virt_set_backoff(v, 500, 30000);
    virt_set_call_timeout(v, VIRT_CALL_TIMEOUT_MS_DEFAULT);
    return v;
}

Virt *virt_new_backend(const VirtBackend *backend, gpointer backend_data,
                       const VirtCallbacks *callbacks, gpointer user_data)
{
    Virt *v = virt_new("backend:///", callbacks, user_data);

    v->backend = backend;
    v->backend_data = backend_data;
    if (backend->attached != NULL)
        backend->attached(backend_data, v);
    return v;
}

void virt_backend_emit_balloon_change(Virt *v, const char *uuid, const char *name,
                                      guint64 actual_kib)
{
    if (v->connected && v->cb.balloon_change)
        v->cb.balloon_change(v, uuid, name, actual_kib, v->user_data);
}

static gboolean backend_unsupported(GError **error)
{
    g_set_error(error, VIRT_ERROR, 0, "not supported by this backend");
    return FALSE;
}

/* With a backend, call its op (or fail); the libvirt code below never runs. */
#define VIRT_BACKEND_CALL(v, op, fail, ...)                                                        \
    do {                                                                                           \
        if ((v)->backend != NULL) {                                                                \
            if ((v)->backend->op == NULL) {                                                        \
                backend_unsupported(error);                                                        \
                return fail;                                                                       \
            }                                                                                      \
            if (!(v)->connected) {                                                                 \
                g_set_error(error, VIRT_ERROR, 0, "not connected to %s", (v)->uri);                \
                return fail;                                                                       \
            }                                                                                      \
            return (v)->backend->op((v)->backend_data, __VA_ARGS__);                               \
        }                                                                                          \
    } while (0)

void virt_set_backoff(Virt *v, guint min_ms, guint max_ms)
{
    v->backoff_spec.first_us = (gint64)MAX(min_ms, 1) * 1000;
    v->backoff_spec.max_us = (gint64)MAX(max_ms, 1) * 1000;
    v->backoff_spec.factor = 2;
}

void virt_set_call_timeout(Virt *v, guint timeout_ms)
{
    v->call_timeout_us = (gint64)MAX(timeout_ms, 1) * 1000;
}

gint64 virt_qemu_uid(void)
{
    static const char *const users[] = {"libvirt-qemu", "qemu"};

    for (guint i = 0; i < G_N_ELEMENTS(users); i++) {
        struct passwd *pw = getpwnam(users[i]);
        if (pw != NULL)
            return (gint64)pw->pw_uid;
    }
    return -1;
}

const char *virt_uri(const Virt *v)
{
    return v->uri;
}

gboolean virt_is_connected(const Virt *v)
{
    return v->connected;
}

gboolean virt_is_answering(const Virt *v)
{
    return v->connected && v->stuck == NULL;
}

/* ---- calls: on the worker, with a deadline ---- */

static void virt_clear_stuck(Virt *v)
{
    g_clear_handle_id(&v->stuck_id, g_source_remove);
    if (v->stuck != NULL)
        virt_call_unref(g_steal_pointer(&v->stuck));
}

/* Has the late call come back? Then calls may go out again; if it stays out
 * too long, the connection is given up (the keepalive usually did first). */
static gboolean virt_stuck_poll(gpointer data)
{
    Virt *v = data;
    gboolean done;

    g_mutex_lock(&v->stuck->lock);
    done = v->stuck->done;
    g_mutex_unlock(&v->stuck->lock);
    if (done) {
        v->stuck_id = 0;
        virt_call_unref(g_steal_pointer(&v->stuck));
        return G_SOURCE_REMOVE;
    }
    if (g_get_monotonic_time() - v->stuck_since >= VIRT_STUCK_RECONNECT_US) {
        g_autofree char *why =
            g_strdup_printf("libvirtd did not answer %s for %d s", v->stuck->what,
                            (int)(VIRT_STUCK_RECONNECT_US / G_USEC_PER_SEC));
        v->stuck_id = 0; /* removed by returning */
        virt_force_reconnect(v, why);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/*
 * Run c on the connection's worker and wait for it, at most the call
 * timeout. TRUE when it ran and succeeded. Takes the caller's reference to
 * c in every case; out (c->size bytes) receives the results whenever the
 * call came back in time, and nothing when it did not.
 */
static gboolean virt_call(Virt *v, VirtCall *c, gpointer out, GError **error)
{
    gint64 deadline;
    gboolean done, ok = FALSE;

    if (!v->connected || v->link == NULL) {
        g_set_error(error, VIRT_ERROR, 0, "not connected to %s", v->uri);
        virt_call_unref(c);
        return FALSE;
    }
    if (v->stuck != NULL) {
        g_set_error(error, VIRT_ERROR, 0,
                    "%s: libvirtd has not answered %s for %" G_GINT64_FORMAT " ms", c->what,
                    v->stuck->what, (g_get_monotonic_time() - v->stuck_since) / 1000);
        virt_call_unref(c);
        return FALSE;
    }
    virt_link_push(v->link, c);

    deadline = g_get_monotonic_time() + v->call_timeout_us;
    g_mutex_lock(&c->lock);
    while (!c->done)
        if (!g_cond_wait_until(&c->cond, &c->lock, deadline))
            break;
    done = c->done;
    if (done) {
        /* Results come back failed or not (what a KSM exclusion did before
         * a part of it failed); run functions leave outputs empty on failure. */
        if (out != NULL && c->size > 0)
            memcpy(out, c->data, c->size);
        c->taken = TRUE;
        ok = c->ok;
        if (!ok && c->error != NULL)
            g_propagate_error(error, g_steal_pointer(&c->error));
        else if (!ok)
            g_set_error(error, VIRT_ERROR, 0, "%s failed", c->what);
    }
    g_mutex_unlock(&c->lock);
    if (done) {
        virt_call_unref(c);
        return ok;
    }
    /* Late: its results are released by the worker when it returns. */
    g_set_error(error, VIRT_ERROR, 0, "%s: libvirtd did not answer within %" G_GINT64_FORMAT " ms",
                c->what, v->call_timeout_us / 1000);
    v->stuck = c;
    v->stuck_since = g_get_monotonic_time();
    v->stuck_id = g_timeout_add(100, virt_stuck_poll, v);
    return FALSE;
}

/* A call about one domain (uuid) or the connection (NULL): data is copied
 * in, run on the worker, and copied back to data when it came back in time.
 * discard frees what run() allocated into a copy that nobody took back. */
static gboolean virt_run(Virt *v, const char *what, const char *uuid, VirtRunFunc run,
                         gpointer data, gsize size, GDestroyNotify discard, GError **error)
{
    return virt_call(v, virt_call_new(what, uuid, run, data, size, discard), data, error);
}

/* ---- events (on the main loop; opaque: the VirtLink) ---- */

/* The owner of an event's connection, NULL when it is no longer current:
 * events that were on their way when the connection was dropped are ignored. */
static Virt *link_owner(VirtLink *link)
{
    Virt *v = link->v;

    return v != NULL && v->link == link ? v : NULL;
}

static void dom_ids(virDomainPtr dom, char uuid[VIRT_UUID_LEN], const char **name)
{
    if (virDomainGetUUIDString(dom, uuid) < 0)
        uuid[0] = '\0';
    *name = virDomainGetName(dom);
    if (*name == NULL)
        *name = "?";
}

static const char *lifecycle_detail(int event, int detail)
{
    switch (event) {
    case VIR_DOMAIN_EVENT_DEFINED:
        return detail == VIR_DOMAIN_EVENT_DEFINED_ADDED     ? "added"
               : detail == VIR_DOMAIN_EVENT_DEFINED_RENAMED ? "renamed"
                                                            : "updated";
    case VIR_DOMAIN_EVENT_STARTED:
        return detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED   ? "migrated"
               : detail == VIR_DOMAIN_EVENT_STARTED_RESTORED ? "restored"
               : detail == VIR_DOMAIN_EVENT_STARTED_WAKEUP   ? "wakeup"
                                                             : "booted";
    case VIR_DOMAIN_EVENT_SUSPENDED:
        return detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED ? "migrated" : "paused";
    case VIR_DOMAIN_EVENT_STOPPED:
        return detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED    ? "migrated"
               : detail == VIR_DOMAIN_EVENT_STOPPED_DESTROYED ? "destroyed"
               : detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED   ? "crashed"
               : detail == VIR_DOMAIN_EVENT_STOPPED_SAVED     ? "saved"
               : detail == VIR_DOMAIN_EVENT_STOPPED_FAILED    ? "failed"
                                                              : "shutdown";
    default:
        return "";
    }
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    Virt *v = link_owner(opaque);
    char uuid[VIRT_UUID_LEN];
    const char *name;
    VirtEvent ev;

    if (v == NULL)
        return 0;
    dom_ids(dom, uuid, &name);
    switch (event) {
    case VIR_DOMAIN_EVENT_DEFINED:
        ev = VIRT_EVENT_DEFINED;
        break;
    case VIR_DOMAIN_EVENT_UNDEFINED:
        ev = VIRT_EVENT_UNDEFINED;
        break;
    case VIR_DOMAIN_EVENT_STARTED:
        ev = VIRT_EVENT_STARTED;
        break;
    case VIR_DOMAIN_EVENT_SUSPENDED:
        ev = VIRT_EVENT_SUSPENDED;
        break;
    case VIR_DOMAIN_EVENT_RESUMED:
        ev = VIRT_EVENT_RESUMED;
        break;
    case VIR_DOMAIN_EVENT_STOPPED:
        ev = VIRT_EVENT_STOPPED;
        break;
    case VIR_DOMAIN_EVENT_SHUTDOWN:
        ev = VIRT_EVENT_SHUTDOWN;
        break;
    case VIR_DOMAIN_EVENT_PMSUSPENDED:
        ev = VIRT_EVENT_PMSUSPENDED;
        break;
    case VIR_DOMAIN_EVENT_CRASHED:
        ev = VIRT_EVENT_CRASHED;
        break;
    default:
        ev = VIRT_EVENT_OTHER;
        break;
    }
    /* A stopped transient domain, or an undefined one, is gone: drop its handle. */
    if (ev == VIRT_EVENT_UNDEFINED || ev == VIRT_EVENT_STOPPED)
        virt_link_forget(opaque, uuid);
    if (v->cb.lifecycle)
        v->cb.lifecycle(v, uuid, name, ev, lifecycle_detail(event, detail), v->user_data);
    return 0;
}

static void on_reboot(virConnectPtr conn, virDomainPtr dom, void *opaque)
{
    Virt *v = link_owner(opaque);
    char uuid[VIRT_UUID_LEN];
    const char *name;

    dom_ids(dom, uuid, &name);
    if (v != NULL && v->cb.lifecycle)
        v->cb.lifecycle(v, uuid, name, VIRT_EVENT_REBOOTED, "reset", v->user_data);
}

static void on_balloon(virConnectPtr conn, virDomainPtr dom, unsigned long long actual,
                       void *opaque)
{
    Virt *v = link_owner(opaque);
    char uuid[VIRT_UUID_LEN];
    const char *name;

    dom_ids(dom, uuid, &name);
    if (v != NULL && v->cb.balloon_change)
        v->cb.balloon_change(v, uuid, name, actual, v->user_data);
}

static void on_metadata(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri,
                        void *opaque)
{
    Virt *v = link_owner(opaque);
    char uuid[VIRT_UUID_LEN];
    const char *name;

    if (v == NULL || type != VIR_DOMAIN_METADATA_ELEMENT || g_strcmp0(nsuri, DOMXML_POLICY_NS) != 0)
        return;
    dom_ids(dom, uuid, &name);
    if (v->cb.metadata_change)
        v->cb.metadata_change(v, uuid, name, v->user_data);
}

static void on_device_added(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
    Virt *v = link_owner(opaque);
    char uuid[VIRT_UUID_LEN];
    const char *name;

    dom_ids(dom, uuid, &name);
    if (v != NULL && v->cb.device_added)
        v->cb.device_added(v, uuid, name, v->user_data);
}

static const char *close_reason(int reason)
{
    switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_ERROR:
        return "connection error";
    case VIR_CONNECT_CLOSE_REASON_EOF:
        return "libvirtd closed the connection";
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
        return "keepalive timeout";
    case VIR_CONNECT_CLOSE_REASON_CLIENT:
        return "closed by client";
    default:
        return "closed";
    }
}

/* ---- connection ---- */

static void virt_schedule_reconnect(Virt *v);

/* Let go of the connection: its worker detaches and closes it; a call still
 * out on it ends there, whenever it ends. */
static void virt_teardown(Virt *v)
{
    virt_clear_stuck(v);
    if (v->link != NULL)
        link_drop(g_steal_pointer(&v->link));
    v->connected = FALSE;
}

typedef struct {
    VirtLink *link;
    int reason;
} CloseLater;

static gboolean close_later(gpointer data)
{
    CloseLater *c = data;
    Virt *v = link_owner(c->link);

    /* Only if the connection is still the one in use: a second notice, or
     * one about a connection already dropped, changes nothing. */
    if (v != NULL && v->connected)
        virt_force_reconnect(v, close_reason(c->reason));
    return G_SOURCE_REMOVE;
}

static void close_later_free(gpointer data)
{
    CloseLater *c = data;

    virt_link_unref(c->link);
    g_free(c);
}

/* Drop the connection from the main loop, not from inside libvirt (which
 * may call from any thread that notices: the worker when a call fails on a
 * closed socket, the main loop when the keepalive gives up). */
static void link_close_later(VirtLink *link, int reason)
{
    CloseLater *c = g_new0(CloseLater, 1);

    c->link = virt_link_ref(link);
    c->reason = reason;
    g_idle_add_full(G_PRIORITY_DEFAULT, close_later, c, close_later_free);
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    link_close_later(opaque, reason);
}

gboolean virt_error_is_bad_uri(const GError *error)
{
    return g_error_matches(error, VIRT_ERROR, VIRT_ERROR_BAD_URI);
}

static void virt_job_unref(VirtOpenJob *job)
{
    if (!g_atomic_int_dec_and_test(&job->refs))
        return;
    if (job->link)
        link_drop(job->link);
    g_free(job->uri);
    g_free(job->error);
    g_mutex_clear(&job->lock);
    g_cond_clear(&job->cond);
    g_free(job);
}

/* In the open thread: the events we follow, on a fresh connection (each
 * registration is an RPC). FALSE with error when lifecycle events, which
 * are essential, cannot be had. */
static gboolean link_register(VirtLink *link, char **error)
{
    /* 2 s interval, 3 missed: a libvirtd that hangs is noticed within ~8 s,
     * and a call blocked on it ends then too (the main loop, where the
     * keepalive timer runs, is never blocked for longer than a call
     * timeout). Local drivers (test://) have no keepalive: not an error. */
    if (virConnectSetKeepAlive(link->conn, 2, 3) < 0)
        virResetLastError();
    /* No reference for it: drivers without close callbacks (test://)
     * accept the registration and never release its data. link_detach()
     * unregisters it before the link can go. */
    if (virConnectRegisterCloseCallback(link->conn, on_close, link, NULL) < 0)
        virResetLastError();
    else
        link->close_cb = TRUE;

    struct {
        int id;
        virConnectDomainEventGenericCallback cb;
    } events[] = {
        {VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle)},
        {VIR_DOMAIN_EVENT_ID_REBOOT, VIR_DOMAIN_EVENT_CALLBACK(on_reboot)},
        {VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE, VIR_DOMAIN_EVENT_CALLBACK(on_balloon)},
        {VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, VIR_DOMAIN_EVENT_CALLBACK(on_metadata)},
        {VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, VIR_DOMAIN_EVENT_CALLBACK(on_device_added)},
    };
    G_STATIC_ASSERT(G_N_ELEMENTS(events) <= G_N_ELEMENTS(link->event_ids));
    for (guint i = 0; i < G_N_ELEMENTS(events); i++) {
        int id = virConnectDomainEventRegisterAny(link->conn, NULL, events[i].id, events[i].cb,
                                                  virt_link_ref(link), virt_link_unref_cb);
        if (id < 0) {
            virt_link_unref(link);
            /* Lifecycle events are essential; the others are nice to have. */
            if (events[i].id == VIR_DOMAIN_EVENT_ID_LIFECYCLE) {
                const char *msg = virGetLastErrorMessage();
                *error = g_strdup_printf("registering for domain events: %s",
                                         msg ? msg : "unknown libvirt error");
                return FALSE;
            }
            virResetLastError();
            continue;
        }
        link->event_ids[link->n_event_ids++] = id;
    }
    return TRUE;
}

static gpointer virt_open_thread(gpointer data)
{
    VirtOpenJob *job = data;
    virConnectPtr conn = virConnectOpen(job->uri);
    VirtLink *link = NULL;
    char *error = NULL;
    gboolean bad = FALSE;

    if (conn == NULL) {
        /* An unparseable URI, an unknown transport, or a scheme no driver
         * takes (the daemon answered and said so): unlike a daemon that is
         * not up yet, waiting cannot fix it. libvirt's errors are per
         * thread: taken here. */
        virErrorPtr err = virGetLastError();
        const char *msg = virGetLastErrorMessage();

        bad = err && (err->code == VIR_ERR_NO_CONNECT || err->code == VIR_ERR_INVALID_ARG ||
                      err->domain == VIR_FROM_URI);
        error = g_strdup_printf("%s: %s", job->uri, msg ? msg : "unknown libvirt error");
    } else {
        link = virt_link_new(conn);
        if (!link_register(link, &error))
            g_clear_pointer(&link, link_drop);
    }
    g_mutex_lock(&job->lock);
    job->link = link;
    job->error = error;
    job->bad_uri = bad;
    job->done = TRUE;
    g_cond_signal(&job->cond);
    g_mutex_unlock(&job->lock);
    return NULL;
}

static gpointer virt_open_thread_main(gpointer data)
{
    virt_open_thread(data);
    virt_job_unref(data); /* the thread's reference */
    return NULL;
}

/* The open finished (in the job): take the connection. FALSE with error. */
static gboolean virt_finish_open(Virt *v, VirtOpenJob *job, GError **error)
{
    VirtLink *link = g_steal_pointer(&job->link);

    job->consumed = TRUE;
    if (v->open_job == job) {
        v->open_job = NULL;
        virt_job_unref(job); /* the Virt's reference */
    }
    if (link == NULL) {
        g_set_error_literal(error, VIRT_ERROR, job->bad_uri ? VIRT_ERROR_BAD_URI : 0,
                            job->error ? job->error : "cannot connect");
        return FALSE;
    }
    link->v = v;
    v->link = link;
    v->connected = TRUE;
    backoff_reset(&v->backoff);
    return TRUE;
}

/* The thread's poll on the main loop. */
static gboolean virt_open_done(gpointer data)
{
    VirtOpenJob *job = data;
    g_autoptr(GError) e = NULL;
    Virt *v;

    g_mutex_lock(&job->lock);
    if (!job->done) {
        g_mutex_unlock(&job->lock);
        return G_SOURCE_CONTINUE;
    }
    v = job->v;
    g_mutex_unlock(&job->lock);
    if (v == NULL || job->consumed) {
        virt_job_unref(job); /* closes a connection nobody wants any more */
        return G_SOURCE_REMOVE;
    }
    if (virt_finish_open(v, job, &e)) {
        if (v->cb.connected)
            v->cb.connected(v, v->user_data);
    } else {
        virt_schedule_reconnect(v);
        if (v->cb.connect_failed)
            v->cb.connect_failed(v, e->message, v->backoff_ms, v->user_data);
    }
    virt_job_unref(job);
    return G_SOURCE_REMOVE;
}

static VirtOpenJob *virt_start_open(Virt *v)
{
    VirtOpenJob *job = g_new0(VirtOpenJob, 1);

    g_mutex_init(&job->lock);
    g_cond_init(&job->cond);
    job->refs = 3; /* the Virt, the thread's poll, the thread */
    job->v = v;
    job->uri = g_strdup(v->uri);
    v->open_job = job;
    /* Polled from the main loop: the thread touches no GSource. */
    g_timeout_add(50, virt_open_done, job);
    g_thread_unref(g_thread_new("virt-open", virt_open_thread_main, job));
    return job;
}

static gboolean virt_reconnect_cb(gpointer user_data)
{
    Virt *v = user_data;

    v->reconnect_id = 0;
    if (v->backend != NULL) {
        g_autoptr(GError) e = NULL;
        if (!virt_connect(v, &e)) {
            virt_schedule_reconnect(v);
            if (v->cb.connect_failed)
                v->cb.connect_failed(v, e->message, v->backoff_ms, v->user_data);
        }
        return G_SOURCE_REMOVE;
    }
    if (v->open_job == NULL)
        virt_start_open(v);
    return G_SOURCE_REMOVE;
}

static void virt_schedule_reconnect(Virt *v)
{
    if (v->reconnect_id != 0 || v->open_job != NULL)
        return;
    v->backoff_ms =
        (guint)(backoff_fail(&v->backoff, &v->backoff_spec, g_get_monotonic_time()) / 1000);
    v->reconnect_id = g_timeout_add(v->backoff_ms, virt_reconnect_cb, v);
}

gboolean virt_connect(Virt *v, GError **error)
{
    VirtOpenJob *job;
    gint64 deadline = g_get_monotonic_time() + VIRT_OPEN_WAIT_US;
    gboolean done;

    if (v->connected)
        return TRUE;
    if (v->backend != NULL) {
        if (v->backend->connect != NULL && !v->backend->connect(v->backend_data, error))
            return FALSE;
        v->connected = TRUE;
        if (v->cb.connected)
            v->cb.connected(v, v->user_data);
        return TRUE;
    }
    virt_event_init();
    if (v->open_job != NULL) {
        g_set_error(error, VIRT_ERROR, 0, "%s: still connecting", v->uri);
        return FALSE;
    }
    job = virt_start_open(v);
    g_mutex_lock(&job->lock);
    while (!job->done)
        if (!g_cond_wait_until(&job->cond, &job->lock, deadline))
            break;
    done = job->done;
    g_mutex_unlock(&job->lock);
    if (!done) {
        /* Left to finish in the background (virt_open_done). */
        g_set_error(error, VIRT_ERROR, 0, "%s: libvirtd does not answer (still waiting)", v->uri);
        return FALSE;
    }
    if (virt_finish_open(v, job, error)) {
        if (v->cb.connected)
            v->cb.connected(v, v->user_data);
        return TRUE;
    }
    virt_schedule_reconnect(v);
    return FALSE;
}

void virt_force_reconnect(Virt *v, const char *why)
{
    gboolean was = v->connected;

    /* Tell the owner first, so that it closes its streams while their
     * connection still exists. */
    v->connected = FALSE;
    if (was && v->cb.disconnected)
        v->cb.disconnected(v, why, v->user_data);
    virt_teardown(v);
    virt_schedule_reconnect(v);
}

void virt_free(Virt *v)
{
    if (v == NULL)
        return;
    g_clear_handle_id(&v->reconnect_id, g_source_remove);
    if (v->open_job != NULL) {
        /* The thread may still be blocked in virConnectOpen: it keeps the
         * job alive and its poll closes what it opens. */
        g_mutex_lock(&v->open_job->lock);
        v->open_job->v = NULL;
        g_mutex_unlock(&v->open_job->lock);
        virt_job_unref(g_steal_pointer(&v->open_job));
    }
    virt_teardown(v);
    g_free(v->uri);
    g_free(v);
}

/* ---- domains: each call a run function on the worker and its arguments ---- */

static void fill_info(virDomainPtr dom, VirtDomainInfo *info)
{
    const char *name;
    int state = VIR_DOMAIN_NOSTATE, reason;

    memset(info, 0, sizeof(*info));
    dom_ids(dom, info->uuid, &name);
    g_strlcpy(info->name, name, sizeof(info->name));
    info->active = virDomainIsActive(dom) == 1;
    info->persistent = virDomainIsPersistent(dom) == 1;
    if (virDomainGetState(dom, &state, &reason, 0) < 0)
        virResetLastError();
    info->state = map_state(state);
}

typedef struct {
    GArray *out;   /* of VirtDomainInfo, or of VirtStats */
    gboolean dead; /* the connection was found dead */
} ArrayCall;

static void array_discard(gpointer data)
{
    ArrayCall *a = data;

    g_clear_pointer(&a->out, g_array_unref);
}

static gboolean run_list_domains(VirtLink *link, virDomainPtr none, gpointer data, GError **error)
{
    ArrayCall *a = data;
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(link->conn, &doms, 0);

    if (n < 0) {
        virt_set_error(error, "listing domains");
        return FALSE;
    }
    a->out = g_array_sized_new(FALSE, TRUE, sizeof(VirtDomainInfo), (guint)n);
    for (int i = 0; i < n; i++) {
        VirtDomainInfo info;
        fill_info(doms[i], &info);
        g_array_append_val(a->out, info);
        virt_link_remember(link, info.uuid, doms[i]);
    }
    free(doms);
    return TRUE;
}

GArray *virt_list_domains(Virt *v, GError **error)
{
    VIRT_BACKEND_CALL(v, list_domains, NULL, error);
    ArrayCall a = {0};

    if (!virt_run(v, "listing domains", NULL, run_list_domains, &a, sizeof(a), array_discard,
                  error))
        return NULL;
    return a.out;
}

static gboolean run_domain_info(VirtLink *link, virDomainPtr dom, gpointer data, GError **error)
{
    fill_info(dom, data);
    return TRUE;
}

gboolean virt_domain_info(Virt *v, const char *uuid, VirtDomainInfo *info, GError **error)
{
    VIRT_BACKEND_CALL(v, domain_info, FALSE, uuid, info, error);
    return virt_run(v, "reading domain state", uuid, run_domain_info, info, sizeof(*info), NULL,
                    error);
}

typedef struct {
    char *xml; /* GLib memory */
} StringCall;

static void string_discard(gpointer data)
{
    g_clear_pointer(&((StringCall *)data)->xml, g_free);
}

static gboolean run_domain_xml(VirtLink *link, virDomainPtr dom, gpointer data, GError **error)
{
    StringCall *s = data;
    char *xml = virDomainGetXMLDesc(dom, 0);

    if (xml == NULL) {
        virt_set_error(error, "reading domain XML");
        return FALSE;
    }
    /* libvirt allocates with malloc; hand out GLib memory. */
    s->xml = g_strdup(xml);
    free(xml);
    return TRUE;
}

char *virt_domain_xml(Virt *v, const char *uuid, GError **error)
{
    VIRT_BACKEND_CALL(v, domain_xml, NULL, uuid, error);
    StringCall s = {0};

    if (!virt_run(v, "reading domain XML", uuid, run_domain_xml, &s, sizeof(s), string_discard,
                  error))
        return NULL;
    return s.xml;
}

static gboolean run_domain_metadata(VirtLink *link, virDomainPtr dom, gpointer data, GError **error)
{
    StringCall *s = data;
    unsigned int flags =
        virDomainIsActive(dom) == 1 ? VIR_DOMAIN_AFFECT_LIVE : VIR_DOMAIN_AFFECT_CONFIG;
    char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, DOMXML_POLICY_NS, flags);

    if (xml == NULL) {
        virErrorPtr err = virGetLastError();
        if (err && err->code == VIR_ERR_NO_DOMAIN_METADATA) {
            virResetLastError();
            return TRUE; /* none: NULL, no error */
        }
        virt_set_error(error, "reading ballast metadata");
        return FALSE;
    }
    s->xml = g_strdup(xml);
    free(xml);
    return TRUE;
}

char *virt_domain_metadata(Virt *v, const char *uuid, GError **error)
{
    VIRT_BACKEND_CALL(v, domain_metadata, NULL, uuid, error);
    StringCall s = {0};

    if (!virt_run(v, "reading ballast metadata", uuid, run_domain_metadata, &s, sizeof(s),
                  string_discard, error))
        return NULL;
    return s.xml;
}

/* The element to set follows the struct (a call's data is one block). */
typedef struct {
    gboolean remove;
    char xml[];
} MetadataCall;

static gboolean run_set_domain_metadata(VirtLink *link, virDomainPtr dom, gpointer data,
                                        GError **error)
{
    MetadataCall *m = data;
    unsigned int flags = 0;

    if (virDomainIsActive(dom) == 1)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (virDomainIsPersistent(dom) == 1)
        flags |= VIR_DOMAIN_AFFECT_CONFIG;
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, m->remove ? NULL : m->xml,
                             DOMXML_POLICY_PREFIX, DOMXML_POLICY_NS, flags) < 0) {
        virt_set_error(error, "setting ballast metadata");
        return FALSE;
    }
    return TRUE;
}

gboolean virt_set_domain_metadata(Virt *v, const char *uuid, const char *xml, GError **error)
{
    gsize size = sizeof(MetadataCall) + (xml ? strlen(xml) : 0) + 1;
    g_autofree MetadataCall *m = g_malloc0(size);

    if (v->backend != NULL)
        return backend_unsupported(error);
    m->remove = xml == NULL;
    if (xml != NULL)
        memcpy(m->xml, xml, strlen(xml) + 1);
    return virt_run(v, "setting ballast metadata", uuid, run_set_domain_metadata, m, size, NULL,
                    error);
}

static void stats_field(const virTypedParameterPtr p, int n, const char *name, guint64 *out,
                        gboolean *has)
{
    unsigned long long ull;

    if (virTypedParamsGetULLong(p, n, name, &ull) == 1) {
        *out = ull;
        if (has)
            *has = TRUE;
    }
}

static gboolean run_balloon_stats(VirtLink *link, virDomainPtr none, gpointer data, GError **error)
{
    ArrayCall *a = data;
    virDomainStatsRecordPtr *recs = NULL;
    int n;

    /* NOWAIT: a domain whose monitor is busy reports what it has at once
     * rather than holding up every other domain's figures. */
    n = virConnectGetAllDomainStats(
        link->conn, VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_STATE, &recs,
        VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE | VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
    if (n < 0) {
        virt_set_error(error, "reading balloon stats");
        a->dead = virConnectIsAlive(link->conn) == 0;
        return FALSE;
    }
    a->out = g_array_sized_new(FALSE, TRUE, sizeof(VirtStats), (guint)n);
    for (int i = 0; i < n; i++) {
        virDomainStatsRecordPtr r = recs[i];
        VirtStats s = {0};
        const char *name;
        int state = VIR_DOMAIN_NOSTATE;
        unsigned long long last = 0;

        dom_ids(r->dom, s.uuid, &name);
        g_strlcpy(s.name, name, sizeof(s.name));
        virTypedParamsGetInt(r->params, r->nparams, "state.state", &state);
        s.state = map_state(state);
        stats_field(r->params, r->nparams, "balloon.current", &s.current_kib, &s.has_current);
        stats_field(r->params, r->nparams, "balloon.maximum", &s.maximum_kib, NULL);
        stats_field(r->params, r->nparams, "balloon.available", &s.available_kib, &s.has_guest);
        stats_field(r->params, r->nparams, "balloon.usable", &s.usable_kib, NULL);
        stats_field(r->params, r->nparams, "balloon.unused", &s.unused_kib, NULL);
        stats_field(r->params, r->nparams, "balloon.disk_caches", &s.disk_caches_kib, NULL);
        stats_field(r->params, r->nparams, "balloon.swap_in", &s.swap_in_kib, NULL);
        stats_field(r->params, r->nparams, "balloon.major_fault", &s.major_fault, NULL);
        if (!s.has_current) {
            /* Drivers without balloon stats (test://) still know the sizes. */
            virDomainInfo info;
            if (virDomainGetInfo(r->dom, &info) == 0) {
                s.current_kib = info.memory;
                s.maximum_kib = info.maxMem;
                s.has_current = TRUE;
            } else {
                virResetLastError();
            }
        }
        if (virTypedParamsGetULLong(r->params, r->nparams, "balloon.last-update", &last) == 1)
            s.last_update_s = (gint64)MIN(last, (unsigned long long)G_MAXINT64);
        g_array_append_val(a->out, s);
    }
    virDomainStatsRecordListFree(recs);
    return TRUE;
}

GArray *virt_balloon_stats(Virt *v, GError **error)
{
    VIRT_BACKEND_CALL(v, balloon_stats, NULL, error);
    ArrayCall a = {0};

    if (virt_run(v, "reading balloon stats", NULL, run_balloon_stats, &a, sizeof(a), array_discard,
                 error))
        return a.out;
    /* Called every tick: the place to notice a connection that died without
     * its close callback (it should not, but then we recover). */
    if (a.dead && v->connected)
        link_close_later(v->link, VIR_CONNECT_CLOSE_REASON_ERROR);
    return NULL;
}

typedef struct {
    int period_s;
    guint64 kib;
} NumberCall;

static gboolean run_set_stats_period(VirtLink *link, virDomainPtr dom, gpointer data,
                                     GError **error)
{
    if (virDomainSetMemoryStatsPeriod(dom, ((NumberCall *)data)->period_s, VIR_DOMAIN_AFFECT_LIVE) <
        0) {
        virt_set_error(error, "setting the memory stats period");
        return FALSE;
    }
    return TRUE;
}

gboolean virt_set_stats_period(Virt *v, const char *uuid, int period_s, GError **error)
{
    VIRT_BACKEND_CALL(v, set_stats_period, FALSE, uuid, period_s, error);
    NumberCall n = {.period_s = period_s};

    return virt_run(v, "setting the memory stats period", uuid, run_set_stats_period, &n, sizeof(n),
                    NULL, error);
}

static gboolean run_set_memory(VirtLink *link, virDomainPtr dom, gpointer data, GError **error)
{
    if (virDomainSetMemoryFlags(dom, (unsigned long)((NumberCall *)data)->kib,
                                VIR_DOMAIN_AFFECT_LIVE) < 0) {
        virt_set_error(error, "setting the balloon target");
        return FALSE;
    }
    return TRUE;
}

gboolean virt_set_memory(Virt *v, const char *uuid, guint64 kib, GError **error)
{
    VIRT_BACKEND_CALL(v, set_memory, FALSE, uuid, kib, error);
    NumberCall n = {.kib = kib};

    if (kib > G_MAXULONG) {
        g_set_error(error, VIRT_ERROR, 0, "target %" G_GUINT64_FORMAT " KiB too large", kib);
        return FALSE;
    }
    return virt_run(v, "setting the balloon target", uuid, run_set_memory, &n, sizeof(n), NULL,
                    error);
}

typedef struct {
    gboolean exclude, live_allowed;
    VirtKsmResult result;
} KsmCall;

static gboolean run_ksm_apply(VirtLink *link, virDomainPtr dom, gpointer data, GError **error)
{
    KsmCall *k = data;

    return virt_ksm_apply(dom, k->exclude, k->live_allowed, &k->result, error);
}

gboolean virt_ksm_apply_uuid(Virt *v, const char *uuid, gboolean exclude, gboolean live_allowed,
                             VirtKsmResult *result, GError **error)
{
    KsmCall k = {.exclude = exclude, .live_allowed = live_allowed};
    gboolean ok;

    memset(result, 0, sizeof(*result));
    if (v->backend != NULL)
        return backend_unsupported(error);
    ok = virt_run(v, "excluding from KSM", uuid, run_ksm_apply, &k, sizeof(k), NULL, error);
    *result = k.result; /* what was done, also when a part failed */
    return ok;
}

/* ---- the channel as a session transport ---- */

/* Reads and writes are non-blocking and served from what the connection
 * already received, so they stay on the main loop; opening and closing the
 * stream are RPCs, done on the worker. */
typedef struct {
    SessionTransport parent;
    virStreamPtr st;
    VirtLink *link; /* the stream's connection, until the stream is released */
    gboolean has_cb;
    SessionTransportFunc func;
    gpointer user_data;
} StreamTransport;

static gssize stream_recv(SessionTransport *t, char *buf, gsize len, GError **error)
{
    StreamTransport *s = (StreamTransport *)t;
    int n = virStreamRecv(s->st, buf, MIN(len, (gsize)G_MAXINT));

    if (n == -2)
        return SESSION_IO_AGAIN;
    if (n < 0) {
        virt_set_error(error, "channel read");
        return -1;
    }
    return n;
}

static gssize stream_send(SessionTransport *t, const char *buf, gsize len, GError **error)
{
    StreamTransport *s = (StreamTransport *)t;
    int n = virStreamSend(s->st, buf, MIN(len, (gsize)G_MAXINT));

    if (n == -2)
        return SESSION_IO_AGAIN;
    if (n < 0) {
        virt_set_error(error, "channel write");
        return -1;
    }
    return n;
}

static void stream_event(virStreamPtr st, int events, void *opaque)
{
    StreamTransport *s = opaque;

    if (s->func)
        s->func(s->user_data);
}

static void stream_watch(SessionTransport *t, SessionTransportFunc func, gpointer user_data)
{
    StreamTransport *s = (StreamTransport *)t;

    s->func = func;
    s->user_data = user_data;
    if (func != NULL && !s->has_cb) {
        if (virStreamEventAddCallback(
                s->st, VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP,
                stream_event, s, NULL) == 0)
            s->has_cb = TRUE;
        else
            virResetLastError();
    } else if (func == NULL && s->has_cb) {
        virStreamEventRemoveCallback(s->st);
        s->has_cb = FALSE;
    }
}

/* On the worker. Abort, not finish: we do not wait for the guest to drain
 * anything. */
static gboolean run_stream_release(VirtLink *link, virDomainPtr none, gpointer data, GError **error)
{
    virStreamPtr st = data;

    if (virStreamAbort(st) < 0)
        virResetLastError();
    virStreamFree(st);
    return TRUE;
}

static void stream_close(SessionTransport *t)
{
    StreamTransport *s = (StreamTransport *)t;

    /* Local: no more callbacks, even from events already on their way. */
    if (s->has_cb) {
        virStreamEventRemoveCallback(s->st);
        s->has_cb = FALSE;
    }
    virt_link_post(s->link, run_stream_release, s->st);
    virt_link_unref(s->link);
    g_free(s);
}

static const SessionTransportOps stream_ops = {
    .recv = stream_recv,
    .send = stream_send,
    .watch = stream_watch,
    .close = stream_close,
};

typedef struct {
    virStreamPtr st;
} ChannelCall;

static void channel_discard(gpointer data)
{
    ChannelCall *c = data;

    if (c->st != NULL)
        run_stream_release(NULL, NULL, c->st, NULL);
}

static gboolean run_open_channel(VirtLink *link, virDomainPtr dom, gpointer data, GError **error)
{
    ChannelCall *c = data;
    virStreamPtr st = virStreamNew(link->conn, VIR_STREAM_NONBLOCK);

    if (st == NULL) {
        virt_set_error(error, "creating a stream");
        return FALSE;
    }
    if (virDomainOpenChannel(dom, BL_PROTO_CHANNEL_NAME, st, VIR_DOMAIN_CHANNEL_FORCE) < 0) {
        virt_set_error(error, "opening channel " BL_PROTO_CHANNEL_NAME);
        virStreamFree(st);
        return FALSE;
    }
    c->st = st;
    return TRUE;
}

SessionTransport *virt_open_channel(Virt *v, const char *uuid, GError **error)
{
    VIRT_BACKEND_CALL(v, open_channel, NULL, uuid, error);
    ChannelCall c = {0};

    if (!virt_run(v, "opening channel " BL_PROTO_CHANNEL_NAME, uuid, run_open_channel, &c,
                  sizeof(c), channel_discard, error))
        return NULL;
    StreamTransport *s = g_new0(StreamTransport, 1);
    s->parent.ops = &stream_ops;
    s->st = c.st;
    s->link = virt_link_ref(v->link);
    return &s->parent;
}
