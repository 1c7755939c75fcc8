/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inside the virt module only: one open libvirt connection and the worker
 * thread that makes its calls (virt.c says why calls run there).
 *
 * A VirtLink is reference counted: the Virt while it uses it, every queued
 * call, every open stream, every registered event callback. When the last
 * reference goes, the worker releases every libvirt object of the
 * connection, closes it (itself an RPC) and ends.
 *
 * A VirtCall is one unit of work for a worker: a call the main loop waits
 * for (two references: the caller's and the worker's), or a release it does
 * not (one). Its data is a copy of the caller's argument struct; run()
 * writes its results there; the caller copies them back if the call came
 * back in time, and discard() frees what nobody took.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

#include "virt.h"

#define VIRT_ERROR (virt_error_quark())
GQuark virt_error_quark(void);
/* error: "what: <libvirt's last error in this thread>" */
void virt_set_error(GError **error, const char *what);

typedef struct VirtLink VirtLink;
typedef struct VirtCall VirtCall;

/* One open connection and the thread that makes its calls. Reference
 * counted: the Virt while it uses it, every queued call, every open stream,
 * every registered libvirt callback. At zero the worker closes the
 * connection and ends. */
struct VirtLink {
    gint refs;
    virConnectPtr conn;
    GAsyncQueue *queue;  /* of VirtCall, for the worker */
    GMutex lock;         /* guards domains: the main loop drops handles on stop events */
    GHashTable *domains; /* uuid -> virDomainPtr, a cache of lookups */
    int event_ids[8];    /* set before the link is handed to the main loop */
    guint n_event_ids;
    gboolean close_cb;
    Virt *v; /* main thread only: the owner, NULL once it let go */
};

typedef gboolean (*VirtRunFunc)(VirtLink *link, virDomainPtr dom, gpointer data, GError **error);

/* One unit of work for a worker: a call the main loop waits for (refs 2),
 * or a release it does not (refs 1). */
struct VirtCall {
    gint refs;
    GMutex lock;
    GCond cond;
    gboolean done;
    gboolean ok;
    GError *error;
    VirtLink *link;
    const char *what;         /* for messages: "reading balloon stats" */
    char uuid[VIRT_UUID_LEN]; /* look this domain up first; "" for none */
    VirtRunFunc run;
    gpointer data; /* the caller's arguments and results, a copy */
    gsize size;
    gboolean taken;         /* the caller copied the results back */
    GDestroyNotify discard; /* frees results nobody took */
};

/* A link over an open connection, with its worker; one reference, the caller's. */
VirtLink *virt_link_new(virConnectPtr conn);
VirtLink *virt_link_ref(VirtLink *link);
void virt_link_unref(VirtLink *link);
void virt_link_unref_cb(void *opaque); /* for libvirt's free callbacks */

/* Keep a domain handle found another way (a listing; takes its reference),
 * or drop one (its domain stopped or went away). */
void virt_link_remember(VirtLink *link, const char *uuid, virDomainPtr dom);
void virt_link_forget(VirtLink *link, const char *uuid);

/* A call: what (static) names it in messages; uuid (or NULL) is looked up
 * on the worker and handed to run(); size bytes of data are copied. */
VirtCall *virt_call_new(const char *what, const char *uuid, VirtRunFunc run, gconstpointer data,
                        gsize size, GDestroyNotify discard);
void virt_call_unref(VirtCall *c);
/* Queue work nobody waits for (releases): run() owns data. */
void virt_link_post(VirtLink *link, VirtRunFunc run, gpointer data);
/* Queue c (its link set) for the worker: takes a reference for it. */
void virt_link_push(VirtLink *link, VirtCall *c);
