/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The broker's only libvirt caller (with virt-ksm.c).
 *
 * One connection, kept alive (virConnectSetKeepAlive) and re-established with
 * exponential backoff when it closes; domain events are re-registered on every
 * connect, and the owner is told through `connected` so it can re-list domains
 * and reopen channels. Domains are addressed by UUID string, which survives
 * reconnects, renames and migration.
 *
 * The calls below look synchronous, but libvirt's RPCs run on a worker
 * thread of the connection: the caller (the main loop) waits at most the call
 * timeout (virt_set_call_timeout()); a call that misses it fails, and until
 * it returns every other call fails at once, so a hung libvirtd costs the
 * main loop one timeout, not one per call. Events and stream callbacks come
 * on the main loop.
 *
 * Needs a libvirt event loop implementation (virt_event_init()) before use.
 */
#pragma once

#include <glib.h>

#include "session.h"

#define VIRT_UUID_LEN 37 /* VIR_UUID_STRING_BUFLEN */
#define VIRT_NAME_MAX 256

typedef struct Virt Virt;

typedef enum {
    VIRT_ERROR_FAILED,  /* any libvirt failure */
    VIRT_ERROR_BAD_URI, /* the connect URI can never work */
} VirtError;

typedef enum {
    VIRT_EVENT_DEFINED,
    VIRT_EVENT_UNDEFINED,
    VIRT_EVENT_STARTED,
    VIRT_EVENT_SUSPENDED,
    VIRT_EVENT_RESUMED,
    VIRT_EVENT_STOPPED,
    VIRT_EVENT_SHUTDOWN,
    VIRT_EVENT_PMSUSPENDED,
    VIRT_EVENT_CRASHED,
    VIRT_EVENT_REBOOTED, /* guest reset: its agent reconnects */
    VIRT_EVENT_OTHER,
} VirtEvent;

const char *virt_event_name(VirtEvent event);

typedef enum {
    VIRT_STATE_OTHER,
    VIRT_STATE_RUNNING,
    VIRT_STATE_PAUSED,
    VIRT_STATE_SHUTOFF,
} VirtState;

const char *virt_state_name(VirtState state);

typedef struct {
    void (*connected)(Virt *v, gpointer user_data);
    void (*disconnected)(Virt *v, const char *why, gpointer user_data);
    /* A reconnect attempt failed; the next one comes after delay_ms. */
    void (*connect_failed)(Virt *v, const char *why, guint delay_ms, gpointer user_data);
    /* detail: "booted", "migrated", "destroyed", ... */
    void (*lifecycle)(Virt *v, const char *uuid, const char *name, VirtEvent event,
                      const char *detail, gpointer user_data);
    void (*balloon_change)(Virt *v, const char *uuid, const char *name, guint64 actual_kib,
                           gpointer user_data);
    void (*metadata_change)(Virt *v, const char *uuid, const char *name, gpointer user_data);
    /* A device was hot-plugged (perhaps the agent channel). */
    void (*device_added)(Virt *v, const char *uuid, const char *name, gpointer user_data);
} VirtCallbacks;

typedef struct {
    char uuid[VIRT_UUID_LEN];
    char name[VIRT_NAME_MAX];
    gboolean active;
    gboolean persistent;
    VirtState state;
} VirtDomainInfo;

typedef struct {
    char uuid[VIRT_UUID_LEN];
    char name[VIRT_NAME_MAX];
    VirtState state;
    gboolean has_current; /* balloon.current and .maximum */
    guint64 current_kib, maximum_kib;
    gboolean has_guest; /* the guest's own figures (needs a stats period) */
    guint64 available_kib, usable_kib, unused_kib, disk_caches_kib;
    guint64 swap_in_kib, major_fault;
    gint64 last_update_s; /* guest time of those figures, 0 if unknown */
} VirtStats;

/*
 * Another hypervisor behind this same interface, for tests and benchmarks
 * only (bench/fake-virt.c runs the real broker over thousands of simulated
 * agents without QEMU). With a backend, every function below calls it instead
 * of libvirt; balloon events come through virt_backend_emit_balloon_change().
 * A NULL op fails with "not supported by this backend".
 */
typedef struct {
    /* The Virt made over this backend, for virt_backend_emit_balloon_change(). */
    void (*attached)(gpointer backend, Virt *v);
    gboolean (*connect)(gpointer backend, GError **error);
    GArray *(*list_domains)(gpointer backend, GError **error); /* of VirtDomainInfo */
    gboolean (*domain_info)(gpointer backend, const char *uuid, VirtDomainInfo *info,
                            GError **error);
    char *(*domain_xml)(gpointer backend, const char *uuid, GError **error);
    char *(*domain_metadata)(gpointer backend, const char *uuid, GError **error);
    GArray *(*balloon_stats)(gpointer backend, GError **error); /* of VirtStats */
    gboolean (*set_stats_period)(gpointer backend, const char *uuid, int period_s, GError **error);
    gboolean (*set_memory)(gpointer backend, const char *uuid, guint64 kib, GError **error);
    SessionTransport *(*open_channel)(gpointer backend, const char *uuid, GError **error);
} VirtBackend;

/* Register libvirt's event loop with the GLib main loop (once per process). */
void virt_event_init(void);

Virt *virt_new(const char *uri, const VirtCallbacks *callbacks, gpointer user_data);
/* A Virt over a backend instead of libvirt (tests and benchmarks only). */
Virt *virt_new_backend(const VirtBackend *backend, gpointer backend_data,
                       const VirtCallbacks *callbacks, gpointer user_data);
/* A backend's balloon event, delivered to the owner's callback as libvirt's is. */
void virt_backend_emit_balloon_change(Virt *v, const char *uuid, const char *name,
                                      guint64 actual_kib);
void virt_free(Virt *v);
/* Let the connections of freed Virts close (their worker threads release
 * them), iterating the default main context meanwhile; at most timeout_us.
 * FALSE when one is still open (a call stuck on a hung libvirtd). */
gboolean virt_wait_closed(gint64 timeout_us);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Virt, virt_free)

/* Backoff between reconnect attempts: min, doubling, up to max. */
void virt_set_backoff(Virt *v, guint min_ms, guint max_ms);

#define VIRT_CALL_TIMEOUT_MS_DEFAULT 3000
/* How long the main loop waits for one libvirt call. */
void virt_set_call_timeout(Virt *v, guint timeout_ms);

/* Connect now; on failure keep retrying in the background (returns FALSE
 * with the first error, the retries report through callbacks). */
gboolean virt_connect(Virt *v, GError **error);
/* The error says the URI itself is wrong (unparseable, no driver for it):
 * retrying will not help. */
gboolean virt_error_is_bad_uri(const GError *error);
gboolean virt_is_connected(const Virt *v);
/* Connected, and no call is outstanding past its timeout. */
gboolean virt_is_answering(const Virt *v);
const char *virt_uri(const Virt *v);

/* The uid QEMU runs as under libvirt's system driver (Debian: libvirt-qemu,
 * elsewhere qemu), -1 when no such user exists. */
gint64 virt_qemu_uid(void);

/* Drop the connection as if libvirtd went away (tests, and reload of --connect). */
void virt_force_reconnect(Virt *v, const char *why);

/* All domains, active and inactive: GArray of VirtDomainInfo. */
GArray *virt_list_domains(Virt *v, GError **error);
gboolean virt_domain_info(Virt *v, const char *uuid, VirtDomainInfo *info, GError **error);

/* Live XML (inactive XML for a stopped domain). */
char *virt_domain_xml(Virt *v, const char *uuid, GError **error);

/* The ballast policy element, NULL without error when the domain has none. */
char *virt_domain_metadata(Virt *v, const char *uuid, GError **error);
/* Set (xml) or remove (NULL) it, live and, for a persistent domain, in its config. */
gboolean virt_set_domain_metadata(Virt *v, const char *uuid, const char *xml, GError **error);

/* Balloon and state stats of every active domain: GArray of VirtStats. */
GArray *virt_balloon_stats(Virt *v, GError **error);

gboolean virt_set_stats_period(Virt *v, const char *uuid, int period_s, GError **error);
gboolean virt_set_memory(Virt *v, const char *uuid, guint64 kib, GError **error);

/* Open org.ballast.agent.0 as a non-blocking stream (VIR_DOMAIN_CHANNEL_FORCE). */
SessionTransport *virt_open_channel(Virt *v, const char *uuid, GError **error);
