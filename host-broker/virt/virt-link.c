/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The worker of one libvirt connection (virt-link.h): a thread, a queue of
 * calls, the connection's domain handles.
 */
#include "virt-link.h"

#include <string.h>

/* Connections whose worker has not finished yet, so that virt_free() can let
 * them close before the process exits. */
static GMutex links_lock;
static GCond links_cond;
static guint links_live;

/* Sentinel on a worker's queue: the last reference is gone, close and end. */
static VirtCall link_end;

VirtLink *virt_link_ref(VirtLink *link)
{
    g_atomic_int_inc(&link->refs);
    return link;
}

void virt_link_unref(VirtLink *link)
{
    /* The worker does the freeing: libvirt objects are released where the
     * calls were made, and the connection's close may block. */
    if (g_atomic_int_dec_and_test(&link->refs))
        g_async_queue_push(link->queue, &link_end);
}

void virt_link_unref_cb(void *opaque)
{
    virt_link_unref(opaque);
}

void virt_call_unref(VirtCall *c)
{
    if (!g_atomic_int_dec_and_test(&c->refs))
        return;
    if (!c->taken && c->discard != NULL && c->data != NULL)
        c->discard(c->data);
    if (c->size > 0)
        g_free(c->data); /* the copy made by virt_call_new() */
    g_clear_error(&c->error);
    g_mutex_clear(&c->lock);
    g_cond_clear(&c->cond);
    if (c->link != NULL)
        virt_link_unref(c->link);
    g_free(c);
}

static void dom_free(gpointer dom)
{
    virDomainFree(dom);
}

/* The domain's handle, with a reference for the caller. On the worker. */
static virDomainPtr link_lookup(VirtLink *link, const char *uuid, GError **error)
{
    virDomainPtr dom;

    g_mutex_lock(&link->lock);
    dom = g_hash_table_lookup(link->domains, uuid);
    if (dom != NULL)
        virDomainRef(dom);
    g_mutex_unlock(&link->lock);
    if (dom != NULL)
        return dom;
    dom = virDomainLookupByUUIDString(link->conn, uuid);
    if (dom == NULL) {
        virt_set_error(error, uuid);
        return NULL;
    }
    virDomainRef(dom);
    g_mutex_lock(&link->lock);
    g_hash_table_replace(link->domains, g_strdup(uuid), dom);
    g_mutex_unlock(&link->lock);
    return dom;
}

/* Keep a handle found another way (listing), so that the next call needs no lookup. */
void virt_link_remember(VirtLink *link, const char *uuid, virDomainPtr dom)
{
    g_mutex_lock(&link->lock);
    g_hash_table_replace(link->domains, g_strdup(uuid), dom);
    g_mutex_unlock(&link->lock);
}

void virt_link_forget(VirtLink *link, const char *uuid)
{
    g_mutex_lock(&link->lock);
    g_hash_table_remove(link->domains, uuid);
    g_mutex_unlock(&link->lock);
}

static void call_run(VirtLink *link, VirtCall *c)
{
    GError *error = NULL;
    virDomainPtr dom = NULL;
    gboolean ok = FALSE;

    if (c->uuid[0] == '\0' || (dom = link_lookup(link, c->uuid, &error)) != NULL)
        ok = c->run(link, dom, c->data, &error);
    if (dom != NULL)
        virDomainFree(dom);
    g_mutex_lock(&c->lock);
    c->ok = ok;
    c->error = error;
    c->done = TRUE;
    g_cond_signal(&c->cond);
    g_mutex_unlock(&c->lock);
    virt_call_unref(c);
}

static void link_finalize(VirtLink *link)
{
    g_hash_table_destroy(link->domains);
    if (link->conn != NULL)
        virConnectClose(link->conn);
    g_async_queue_unref(link->queue);
    g_mutex_clear(&link->lock);
    g_free(link);
}

static gpointer link_thread(gpointer data)
{
    VirtLink *link = data;

    for (;;) {
        VirtCall *c = g_async_queue_pop(link->queue);
        if (c == &link_end)
            break;
        call_run(link, c);
    }
    link_finalize(link);
    g_mutex_lock(&links_lock);
    links_live--;
    g_cond_broadcast(&links_cond);
    g_mutex_unlock(&links_lock);
    return NULL;
}

/* A link over an open connection, with its worker; one reference, the caller's. */
VirtLink *virt_link_new(virConnectPtr conn)
{
    VirtLink *link = g_new0(VirtLink, 1);

    link->refs = 1;
    link->conn = conn;
    link->queue = g_async_queue_new();
    g_mutex_init(&link->lock);
    link->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, dom_free);
    g_mutex_lock(&links_lock);
    links_live++;
    g_mutex_unlock(&links_lock);
    g_thread_unref(g_thread_new("virt-call", link_thread, link));
    return link;
}

VirtCall *virt_call_new(const char *what, const char *uuid, VirtRunFunc run, gconstpointer data,
                        gsize size, GDestroyNotify discard)
{
    VirtCall *c = g_new0(VirtCall, 1);

    c->refs = 1;
    g_mutex_init(&c->lock);
    g_cond_init(&c->cond);
    c->what = what;
    if (uuid != NULL)
        g_strlcpy(c->uuid, uuid, sizeof(c->uuid));
    c->run = run;
    c->data = size > 0 ? g_memdup2(data, size) : NULL;
    c->size = size;
    c->discard = discard;
    return c;
}

/* Queue work the caller does not wait for (releases): run() owns data. */
void virt_link_post(VirtLink *link, VirtRunFunc run, gpointer data)
{
    VirtCall *c = virt_call_new("release", NULL, run, NULL, 0, NULL);

    c->data = data;
    c->link = virt_link_ref(link);
    g_async_queue_push(link->queue, c);
}

void virt_link_push(VirtLink *link, VirtCall *c)
{
    c->link = virt_link_ref(link);
    g_atomic_int_inc(&c->refs); /* the worker's */
    g_async_queue_push(link->queue, c);
}

gboolean virt_wait_closed(gint64 timeout_us)
{
    gint64 deadline = g_get_monotonic_time() + timeout_us;
    gboolean closed;

    for (;;) {
        /* libvirt releases an event callback's data from its event loop
         * (ours: the default main context), and that is what lets the last
         * reference to a connection go. */
        while (g_main_context_iteration(NULL, FALSE))
            ;
        g_mutex_lock(&links_lock);
        if (links_live > 0)
            g_cond_wait_until(&links_cond, &links_lock,
                              MIN(deadline, g_get_monotonic_time() + 10 * G_TIME_SPAN_MILLISECOND));
        closed = links_live == 0;
        g_mutex_unlock(&links_lock);
        if (closed || g_get_monotonic_time() >= deadline)
            return closed;
    }
}
