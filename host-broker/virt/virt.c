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

struct Virt {
    char *uri;
    VirtCallbacks cb;
    gpointer user_data;
    virConnectPtr conn;
    gboolean connected;
    int event_ids[8];
    guint n_event_ids;
    guint reconnect_id;
    guint close_idle;
    BackoffSpec backoff_spec; /* reconnect: reconnect_min_ms doubling to reconnect_max_ms */
    Backoff backoff;
    guint backoff_ms;             /* the wait before the pending reconnect */
    GHashTable *domains;          /* uuid -> virDomainPtr, a cache of lookups */
    struct VirtOpenJob *open_job; /* a virConnectOpen in flight, off the main loop */
    const VirtBackend *backend;   /* not libvirt: tests and benchmarks */
    gpointer backend_data;
};

/* virConnectOpen runs in a thread of its own: a libvirtd that accepts the
 * connection and then never answers (hung, SIGSTOPped, starting) would
 * otherwise block the main loop, and with it ballastctl status and every
 * agent, for as long as it hangs (keepalive only starts after the open).
 * The result comes back to the main loop in an idle. */
typedef struct VirtOpenJob {
    GMutex lock;
    GCond cond;
    gint refs;
    Virt *v; /* NULL once the Virt gave up on it (freed) */
    char *uri;
    gboolean done, consumed;
    virConnectPtr conn;
    char *error;
    gboolean bad_uri;
} VirtOpenJob;

/* The first connect waits this long for the open, so that a wrong URI still
 * stops the start with its error; a slower libvirtd is waited for in the
 * background. */
#define VIRT_OPEN_WAIT_US (5 * G_USEC_PER_SEC)

#define VIRT_ERROR (virt_error_quark())
static GQuark virt_error_quark(void)
{
    return g_quark_from_static_string("ballast-virt-error-quark");
}

static void set_error(GError **error, const char *what)
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

static void dom_free(gpointer dom)
{
    virDomainFree(dom);
}

Virt *virt_new(const char *uri, const VirtCallbacks *callbacks, gpointer user_data)
{
    Virt *v = g_new0(Virt, 1);

    v->uri = g_strdup(uri);
    if (callbacks)
        v->cb = *callbacks;
    v->user_data = user_data;
    virt_set_backoff(v, 500, 30000);
    v->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, dom_free);
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

/* ---- events ---- */

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
    Virt *v = opaque;
    char uuid[VIRT_UUID_LEN];
    const char *name;
    VirtEvent ev;

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
        g_hash_table_remove(v->domains, uuid);
    if (v->cb.lifecycle)
        v->cb.lifecycle(v, uuid, name, ev, lifecycle_detail(event, detail), v->user_data);
    return 0;
}

static void on_reboot(virConnectPtr conn, virDomainPtr dom, void *opaque)
{
    Virt *v = opaque;
    char uuid[VIRT_UUID_LEN];
    const char *name;

    dom_ids(dom, uuid, &name);
    if (v->cb.lifecycle)
        v->cb.lifecycle(v, uuid, name, VIRT_EVENT_REBOOTED, "reset", v->user_data);
}

static void on_balloon(virConnectPtr conn, virDomainPtr dom, unsigned long long actual,
                       void *opaque)
{
    Virt *v = opaque;
    char uuid[VIRT_UUID_LEN];
    const char *name;

    dom_ids(dom, uuid, &name);
    if (v->cb.balloon_change)
        v->cb.balloon_change(v, uuid, name, actual, v->user_data);
}

static void on_metadata(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri,
                        void *opaque)
{
    Virt *v = opaque;
    char uuid[VIRT_UUID_LEN];
    const char *name;

    if (type != VIR_DOMAIN_METADATA_ELEMENT || g_strcmp0(nsuri, DOMXML_POLICY_NS) != 0)
        return;
    dom_ids(dom, uuid, &name);
    if (v->cb.metadata_change)
        v->cb.metadata_change(v, uuid, name, v->user_data);
}

static void on_device_added(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
    Virt *v = opaque;
    char uuid[VIRT_UUID_LEN];
    const char *name;

    dom_ids(dom, uuid, &name);
    if (v->cb.device_added)
        v->cb.device_added(v, uuid, name, v->user_data);
}

/* ---- connection ---- */

static void virt_schedule_reconnect(Virt *v);
static void on_close(virConnectPtr conn, int reason, void *opaque);

static void virt_teardown(Virt *v)
{
    g_hash_table_remove_all(v->domains);
    if (v->conn == NULL)
        return;
    /* The connection may be dead already: errors here are expected. */
    for (guint i = 0; i < v->n_event_ids; i++)
        virConnectDomainEventDeregisterAny(v->conn, v->event_ids[i]);
    v->n_event_ids = 0;
    virConnectUnregisterCloseCallback(v->conn, on_close);
    virConnectClose(v->conn);
    v->conn = NULL;
    v->connected = FALSE;
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

typedef struct {
    Virt *v;
    virConnectPtr conn;
    int reason;
} CloseLater;

static gboolean close_later(gpointer data)
{
    CloseLater *c = data;

    c->v->close_idle = 0;
    if (c->v->connected && c->v->conn == c->conn)
        virt_force_reconnect(c->v, close_reason(c->reason));
    return G_SOURCE_REMOVE;
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    Virt *v = opaque;
    CloseLater *c;

    if (!v->connected || conn != v->conn || v->close_idle != 0)
        return;
    /* Tear down from the main loop, not from inside libvirt's callback. */
    c = g_new0(CloseLater, 1);
    c->v = v;
    c->conn = conn;
    c->reason = reason;
    v->close_idle = g_idle_add_full(G_PRIORITY_DEFAULT, close_later, c, g_free);
}

gboolean virt_error_is_bad_uri(const GError *error)
{
    return g_error_matches(error, VIRT_ERROR, VIRT_ERROR_BAD_URI);
}

static void virt_job_unref(VirtOpenJob *job)
{
    if (!g_atomic_int_dec_and_test(&job->refs))
        return;
    if (job->conn)
        virConnectClose(job->conn);
    g_free(job->uri);
    g_free(job->error);
    g_mutex_clear(&job->lock);
    g_cond_clear(&job->cond);
    g_free(job);
}

/* On the main loop: register for events on a fresh connection. */
static gboolean virt_attach(Virt *v, virConnectPtr conn, GError **error)
{
    v->conn = conn;
    /* 2 s interval, 3 missed: an idle connection to a libvirtd that hangs is
     * closed within ~8 s. (A call already blocked on it was measured not to
     * return early: tests/e2e/test-libvirtd-hang.sh.) Local drivers
     * (test://) have no keepalive: not an error. */
    virConnectSetKeepAlive(conn, 2, 3);
    if (virConnectRegisterCloseCallback(conn, on_close, v, NULL) < 0)
        virResetLastError();

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
    for (guint i = 0; i < G_N_ELEMENTS(events); i++) {
        int id = virConnectDomainEventRegisterAny(conn, NULL, events[i].id, events[i].cb, v, NULL);
        if (id < 0) {
            /* Lifecycle events are essential; the others are nice to have. */
            if (events[i].id == VIR_DOMAIN_EVENT_ID_LIFECYCLE) {
                set_error(error, "registering for domain events");
                virt_teardown(v);
                return FALSE;
            }
            virResetLastError();
            continue;
        }
        v->event_ids[v->n_event_ids++] = id;
    }
    v->connected = TRUE;
    backoff_reset(&v->backoff);
    return TRUE;
}

static gpointer virt_open_thread(gpointer data)
{
    VirtOpenJob *job = data;
    virConnectPtr conn = virConnectOpen(job->uri);
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
    }
    g_mutex_lock(&job->lock);
    job->conn = conn;
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

/* The open finished (in the job): attach on success. FALSE with error. */
static gboolean virt_finish_open(Virt *v, VirtOpenJob *job, GError **error)
{
    virConnectPtr conn = g_steal_pointer(&job->conn);

    job->consumed = TRUE;
    if (v->open_job == job) {
        v->open_job = NULL;
        virt_job_unref(job); /* the Virt's reference */
    }
    if (conn == NULL) {
        g_set_error_literal(error, VIRT_ERROR, job->bad_uri ? VIRT_ERROR_BAD_URI : 0,
                            job->error ? job->error : "cannot connect");
        return FALSE;
    }
    return virt_attach(v, conn, error);
}

/* The thread's idle on the main loop. */
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
    job->refs = 3; /* the Virt, the thread's idle, the thread */
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
    g_clear_handle_id(&v->close_idle, g_source_remove);
    if (v->open_job != NULL) {
        /* The thread may still be blocked in virConnectOpen: it keeps the
         * job alive and its idle closes what it opens. */
        g_mutex_lock(&v->open_job->lock);
        v->open_job->v = NULL;
        g_mutex_unlock(&v->open_job->lock);
        virt_job_unref(g_steal_pointer(&v->open_job));
    }
    virt_teardown(v);
    g_hash_table_destroy(v->domains);
    g_free(v->uri);
    g_free(v);
}

/* ---- domains ---- */

static gboolean need_conn(Virt *v, GError **error)
{
    if (v->connected)
        return TRUE;
    g_set_error(error, VIRT_ERROR, 0, "not connected to %s", v->uri);
    return FALSE;
}

static virDomainPtr lookup(Virt *v, const char *uuid, GError **error)
{
    virDomainPtr dom;

    if (v->backend != NULL) {
        backend_unsupported(error);
        return NULL;
    }
    if (!need_conn(v, error))
        return NULL;
    dom = g_hash_table_lookup(v->domains, uuid);
    if (dom != NULL)
        return dom;
    dom = virDomainLookupByUUIDString(v->conn, uuid);
    if (dom == NULL) {
        set_error(error, uuid);
        return NULL;
    }
    g_hash_table_insert(v->domains, g_strdup(uuid), dom);
    return dom;
}

virDomainPtr virt_domain_handle(Virt *v, const char *uuid, GError **error)
{
    return lookup(v, uuid, error);
}

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

GArray *virt_list_domains(Virt *v, GError **error)
{
    VIRT_BACKEND_CALL(v, list_domains, NULL, error);
    virDomainPtr *doms = NULL;
    int n;

    if (!need_conn(v, error))
        return NULL;
    n = virConnectListAllDomains(v->conn, &doms, 0);
    if (n < 0) {
        set_error(error, "listing domains");
        return NULL;
    }
    GArray *out = g_array_sized_new(FALSE, TRUE, sizeof(VirtDomainInfo), (guint)n);
    for (int i = 0; i < n; i++) {
        VirtDomainInfo info;
        fill_info(doms[i], &info);
        g_array_append_val(out, info);
        /* Keep the handle: the next calls about this domain need no lookup. */
        g_hash_table_replace(v->domains, g_strdup(info.uuid), doms[i]);
    }
    free(doms);
    return out;
}

gboolean virt_domain_info(Virt *v, const char *uuid, VirtDomainInfo *info, GError **error)
{
    VIRT_BACKEND_CALL(v, domain_info, FALSE, uuid, info, error);
    virDomainPtr dom = lookup(v, uuid, error);

    if (dom == NULL)
        return FALSE;
    fill_info(dom, info);
    return TRUE;
}

char *virt_domain_xml(Virt *v, const char *uuid, GError **error)
{
    VIRT_BACKEND_CALL(v, domain_xml, NULL, uuid, error);
    virDomainPtr dom = lookup(v, uuid, error);
    char *xml;

    if (dom == NULL)
        return NULL;
    xml = virDomainGetXMLDesc(dom, 0);
    if (xml == NULL) {
        set_error(error, "reading domain XML");
        return NULL;
    }
    /* libvirt allocates with malloc; hand out GLib memory. */
    char *copy = g_strdup(xml);
    free(xml);
    return copy;
}

char *virt_domain_metadata(Virt *v, const char *uuid, GError **error)
{
    VIRT_BACKEND_CALL(v, domain_metadata, NULL, uuid, error);
    virDomainPtr dom = lookup(v, uuid, error);
    unsigned int flags;
    char *xml;

    if (dom == NULL)
        return NULL;
    flags = virDomainIsActive(dom) == 1 ? VIR_DOMAIN_AFFECT_LIVE : VIR_DOMAIN_AFFECT_CONFIG;
    xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, DOMXML_POLICY_NS, flags);
    if (xml == NULL) {
        virErrorPtr err = virGetLastError();
        if (err && err->code == VIR_ERR_NO_DOMAIN_METADATA) {
            virResetLastError();
            return NULL;
        }
        set_error(error, "reading ballast metadata");
        return NULL;
    }
    char *copy = g_strdup(xml);
    free(xml);
    return copy;
}

gboolean virt_set_domain_metadata(Virt *v, const char *uuid, const char *xml, GError **error)
{
    virDomainPtr dom = lookup(v, uuid, error);
    unsigned int flags = 0;

    if (dom == NULL)
        return FALSE;
    if (virDomainIsActive(dom) == 1)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (virDomainIsPersistent(dom) == 1)
        flags |= VIR_DOMAIN_AFFECT_CONFIG;
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, xml, DOMXML_POLICY_PREFIX,
                             DOMXML_POLICY_NS, flags) < 0) {
        set_error(error, "setting ballast metadata");
        return FALSE;
    }
    return TRUE;
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

GArray *virt_balloon_stats(Virt *v, GError **error)
{
    VIRT_BACKEND_CALL(v, balloon_stats, NULL, error);
    virDomainStatsRecordPtr *recs = NULL;
    int n;

    if (!need_conn(v, error))
        return NULL;
    /* NOWAIT: a domain whose monitor is busy reports what it has at once
     * rather than holding up every other domain's figures. */
    n = virConnectGetAllDomainStats(
        v->conn, VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_STATE, &recs,
        VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE | VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
    if (n < 0) {
        set_error(error, "reading balloon stats");
        /* Called every tick: the place to notice a connection that died
         * without its close callback (it should not, but then we recover). */
        if (virConnectIsAlive(v->conn) == 0 && v->close_idle == 0) {
            CloseLater *c = g_new0(CloseLater, 1);
            c->v = v;
            c->conn = v->conn;
            c->reason = VIR_CONNECT_CLOSE_REASON_ERROR;
            v->close_idle = g_idle_add_full(G_PRIORITY_DEFAULT, close_later, c, g_free);
        }
        return NULL;
    }
    GArray *out = g_array_sized_new(FALSE, TRUE, sizeof(VirtStats), (guint)n);
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
        g_array_append_val(out, s);
    }
    virDomainStatsRecordListFree(recs);
    return out;
}

gboolean virt_set_stats_period(Virt *v, const char *uuid, int period_s, GError **error)
{
    VIRT_BACKEND_CALL(v, set_stats_period, FALSE, uuid, period_s, error);
    virDomainPtr dom = lookup(v, uuid, error);

    if (dom == NULL)
        return FALSE;
    if (virDomainSetMemoryStatsPeriod(dom, period_s, VIR_DOMAIN_AFFECT_LIVE) < 0) {
        set_error(error, "setting the memory stats period");
        return FALSE;
    }
    return TRUE;
}

gboolean virt_set_memory(Virt *v, const char *uuid, guint64 kib, GError **error)
{
    VIRT_BACKEND_CALL(v, set_memory, FALSE, uuid, kib, error);
    virDomainPtr dom = lookup(v, uuid, error);

    if (dom == NULL)
        return FALSE;
    if (kib > G_MAXULONG) {
        g_set_error(error, VIRT_ERROR, 0, "target %" G_GUINT64_FORMAT " KiB too large", kib);
        return FALSE;
    }
    if (virDomainSetMemoryFlags(dom, (unsigned long)kib, VIR_DOMAIN_AFFECT_LIVE) < 0) {
        set_error(error, "setting the balloon target");
        return FALSE;
    }
    return TRUE;
}

/* ---- the channel as a session transport ---- */

typedef struct {
    SessionTransport parent;
    virStreamPtr st;
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
        set_error(error, "channel read");
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
        set_error(error, "channel write");
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

static gboolean stream_free_idle(gpointer data)
{
    virStreamPtr st = data;

    /* Abort, not finish: we do not wait for the guest to drain anything. */
    if (virStreamAbort(st) < 0)
        virResetLastError();
    virStreamFree(st);
    return G_SOURCE_REMOVE;
}

static void stream_close(SessionTransport *t)
{
    StreamTransport *s = (StreamTransport *)t;

    if (s->has_cb) {
        virStreamEventRemoveCallback(s->st);
        s->has_cb = FALSE;
    }
    /* We may be inside this stream's own callback: release it from the loop. */
    g_idle_add(stream_free_idle, s->st);
    g_free(s);
}

static const SessionTransportOps stream_ops = {
    .recv = stream_recv,
    .send = stream_send,
    .watch = stream_watch,
    .close = stream_close,
};

SessionTransport *virt_open_channel(Virt *v, const char *uuid, GError **error)
{
    VIRT_BACKEND_CALL(v, open_channel, NULL, uuid, error);
    virDomainPtr dom = lookup(v, uuid, error);
    virStreamPtr st;

    if (dom == NULL)
        return NULL;
    st = virStreamNew(v->conn, VIR_STREAM_NONBLOCK);
    if (st == NULL) {
        set_error(error, "creating a stream");
        return NULL;
    }
    if (virDomainOpenChannel(dom, BL_PROTO_CHANNEL_NAME, st, VIR_DOMAIN_CHANNEL_FORCE) < 0) {
        set_error(error, "opening channel " BL_PROTO_CHANNEL_NAME);
        virStreamFree(st);
        return NULL;
    }
    StreamTransport *s = g_new0(StreamTransport, 1);
    s->parent.ops = &stream_ops;
    s->st = st;
    return &s->parent;
}
