/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The virt module against libvirt's test driver (test:///default): connect,
 * list, lifecycle events, balloon target and stats, stats period, metadata,
 * reconnect. The test itself uses a second connection to play the admin who
 * starts and stops domains; the broker's code goes through virt.h only.
 */
#include <libvirt/libvirt.h>
#include <string.h>

#include "domxml.h"
#include "virt.h"

typedef struct {
    guint connected, disconnected;
    guint started, stopped, defined, undefined, suspended, resumed;
    guint balloon, metadata;
    char last_uuid[VIRT_UUID_LEN];
    char last_detail[64];
} Record;

static void on_connected(Virt *v, gpointer ud)
{
    ((Record *)ud)->connected++;
}

static void on_disconnected(Virt *v, const char *why, gpointer ud)
{
    ((Record *)ud)->disconnected++;
}

static void on_lifecycle(Virt *v, const char *uuid, const char *name, VirtEvent ev,
                         const char *detail, gpointer ud)
{
    Record *r = ud;

    g_strlcpy(r->last_uuid, uuid, sizeof(r->last_uuid));
    g_strlcpy(r->last_detail, detail, sizeof(r->last_detail));
    switch (ev) {
    case VIRT_EVENT_STARTED:
        r->started++;
        break;
    case VIRT_EVENT_STOPPED:
        r->stopped++;
        break;
    case VIRT_EVENT_DEFINED:
        r->defined++;
        break;
    case VIRT_EVENT_UNDEFINED:
        r->undefined++;
        break;
    case VIRT_EVENT_SUSPENDED:
        r->suspended++;
        break;
    case VIRT_EVENT_RESUMED:
        r->resumed++;
        break;
    case VIRT_EVENT_SHUTDOWN:
    case VIRT_EVENT_PMSUSPENDED:
    case VIRT_EVENT_CRASHED:
    case VIRT_EVENT_REBOOTED:
    case VIRT_EVENT_OTHER:
        break;
    }
}

static void on_balloon(Virt *v, const char *uuid, const char *name, guint64 kib, gpointer ud)
{
    ((Record *)ud)->balloon++;
}

static void on_metadata(Virt *v, const char *uuid, const char *name, gpointer ud)
{
    ((Record *)ud)->metadata++;
}

static const VirtCallbacks callbacks = {
    .connected = on_connected,
    .disconnected = on_disconnected,
    .lifecycle = on_lifecycle,
    .balloon_change = on_balloon,
    .metadata_change = on_metadata,
};

static gboolean hang_guard(gpointer data)
{
    g_error("an expected libvirt event never came");
    return G_SOURCE_REMOVE;
}

/* Run the loop until *counter reaches want (a hang fails the test, it is not a timing). */
static void wait_for(guint *counter, guint want)
{
    guint guard = g_timeout_add_seconds(20, hang_guard, NULL);
    while (*counter < want)
        g_main_context_iteration(NULL, TRUE);
    g_source_remove(guard);
}

typedef struct {
    Record rec;
    Virt *v;
    virConnectPtr admin;
    virDomainPtr dom;
    char uuid[VIRT_UUID_LEN];
} Fixture;

static void fixture_set_up(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;

    virt_event_init();
    f->v = virt_new("test:///default", &callbacks, &f->rec);
    virt_set_backoff(f->v, 10, 40);
    g_assert_true(virt_connect(f->v, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(f->rec.connected, ==, 1);
    g_assert_true(virt_is_connected(f->v));
    f->admin = virConnectOpen("test:///default");
    g_assert_nonnull(f->admin);
    f->dom = virDomainLookupByName(f->admin, "test");
    g_assert_nonnull(f->dom);
    g_assert_cmpint(virDomainGetUUIDString(f->dom, f->uuid), ==, 0);
    if (virDomainIsActive(f->dom) != 1)
        g_assert_cmpint(virDomainCreate(f->dom), ==, 0);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
    virDomainFree(f->dom);
    virConnectClose(f->admin);
    virt_free(f->v);
}

static void test_list(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(GArray) doms = virt_list_domains(f->v, &e);
    gboolean found = FALSE;

    g_assert_no_error(e);
    g_assert_nonnull(doms);
    for (guint i = 0; i < doms->len; i++) {
        const VirtDomainInfo *d = &g_array_index(doms, VirtDomainInfo, i);
        if (strcmp(d->uuid, f->uuid) == 0) {
            found = TRUE;
            g_assert_cmpstr(d->name, ==, "test");
            g_assert_true(d->active);
            g_assert_true(d->persistent);
            g_assert_cmpint(d->state, ==, VIRT_STATE_RUNNING);
        }
    }
    g_assert_true(found);

    VirtDomainInfo info;
    g_assert_true(virt_domain_info(f->v, f->uuid, &info, &e));
    g_assert_cmpstr(info.name, ==, "test");
    g_assert_false(virt_domain_info(f->v, "00000000-0000-0000-0000-000000000000", &info, &e));
    g_assert_nonnull(e);
}

static void test_lifecycle(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(virDomainDestroy(f->dom), ==, 0);
    wait_for(&f->rec.stopped, 1);
    g_assert_cmpstr(f->rec.last_uuid, ==, f->uuid);
    g_assert_cmpstr(f->rec.last_detail, ==, "destroyed");

    g_assert_cmpint(virDomainCreate(f->dom), ==, 0);
    wait_for(&f->rec.started, 1);
    g_assert_cmpstr(f->rec.last_detail, ==, "booted");

    g_assert_cmpint(virDomainSuspend(f->dom), ==, 0);
    wait_for(&f->rec.suspended, 1);
    g_assert_cmpint(virDomainResume(f->dom), ==, 0);
    wait_for(&f->rec.resumed, 1);

    /* A domain defined and undefined while we watch. */
    g_autofree char *xml = virDomainGetXMLDesc(f->dom, VIR_DOMAIN_XML_INACTIVE);
    g_autoptr(GString) x = g_string_new(xml);
    g_string_replace(x, "<name>test</name>", "<name>bk-test2</name>", 1);
    g_string_replace(x, f->uuid, "11111111-2222-3333-4444-555555555555", 1);
    virDomainPtr d2 = virDomainDefineXML(f->admin, x->str);
    g_assert_nonnull(d2);
    wait_for(&f->rec.defined, 1);
    g_assert_cmpstr(f->rec.last_uuid, ==, "11111111-2222-3333-4444-555555555555");
    g_assert_cmpint(virDomainUndefine(d2), ==, 0);
    wait_for(&f->rec.undefined, 1);
    virDomainFree(d2);
}

static void test_memory(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;

    g_assert_true(virt_set_stats_period(f->v, f->uuid, 1, &e));
    g_assert_no_error(e);

    g_assert_true(virt_set_memory(f->v, f->uuid, 1024 * 1024, &e));
    g_assert_no_error(e);
    g_autoptr(GArray) stats = virt_balloon_stats(f->v, &e);
    g_assert_no_error(e);
    gboolean found = FALSE;
    for (guint i = 0; i < stats->len; i++) {
        const VirtStats *s = &g_array_index(stats, VirtStats, i);
        if (strcmp(s->uuid, f->uuid) != 0)
            continue;
        found = TRUE;
        g_assert_true(s->has_current);
        g_assert_cmpuint(s->current_kib, ==, 1024 * 1024);
        g_assert_cmpuint(s->maximum_kib, >=, s->current_kib);
        g_assert_cmpint(s->state, ==, VIRT_STATE_RUNNING);
    }
    g_assert_true(found);

    /* Cross-check through the admin connection. */
    virDomainInfo info;
    g_assert_cmpint(virDomainGetInfo(f->dom, &info), ==, 0);
    g_assert_cmpuint(info.memory, ==, 1024 * 1024);

    /* Above the maximum: libvirt refuses, we report. */
    g_assert_false(virt_set_memory(f->v, f->uuid, info.maxMem + 1024, &e));
    g_assert_nonnull(e);
    g_clear_error(&e);
    g_assert_true(virt_set_memory(f->v, f->uuid, 2 * 1024 * 1024, &e));
}

static void test_metadata(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;

    /* None set: NULL and no error. */
    g_autofree char *none = virt_domain_metadata(f->v, f->uuid, &e);
    g_assert_no_error(e);
    g_assert_null(none);

    DomxmlPolicy in = {.has_min = TRUE,
                       .min_kib = 512 * 1024,
                       .has_mode = TRUE,
                       .mode = POLICY_MODE_OBSERVE,
                       .has_shares = TRUE,
                       .shares = 300};
    g_autofree char *xml = domxml_format_policy(&in);
    g_assert_true(virt_set_domain_metadata(f->v, f->uuid, xml, &e));
    g_assert_no_error(e);

    g_autofree char *back = virt_domain_metadata(f->v, f->uuid, &e);
    g_assert_no_error(e);
    g_assert_nonnull(back);
    DomxmlPolicy out;
    g_assert_true(domxml_parse_policy(back, -1, &out, NULL, &e));
    g_assert_cmpmem(&in, sizeof(in), &out, sizeof(out));

    /* It is in the live XML too, where the broker reads it with the channel. */
    g_autofree char *dxml = virt_domain_xml(f->v, f->uuid, &e);
    g_assert_nonnull(dxml);
    DomxmlDomain d;
    g_assert_true(domxml_parse_domain(dxml, -1, &d, NULL, &e));
    g_assert_no_error(e);
    g_assert_cmpstr(d.uuid, ==, f->uuid);
    g_assert_true(d.has_policy);
    g_assert_cmpuint(d.policy.min_kib, ==, 512 * 1024);
    g_assert_cmpint(d.policy.mode, ==, POLICY_MODE_OBSERVE);
    g_assert_cmpint(d.channel, ==, DOMXML_CHANNEL_ABSENT);
    g_assert_cmpuint(d.memory_kib, >, 0);

    g_assert_true(virt_set_domain_metadata(f->v, f->uuid, NULL, &e));
    g_autofree char *gone = virt_domain_metadata(f->v, f->uuid, &e);
    g_assert_no_error(e);
    g_assert_null(gone);
}

static void test_channel_unsupported(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;

    /* The test driver cannot open channels: an error, not a crash. */
    SessionTransport *t = virt_open_channel(f->v, f->uuid, &e);
    g_assert_null(t);
    g_assert_nonnull(e);
}

static void test_reconnect(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e = NULL;

    virt_force_reconnect(f->v, "test");
    g_assert_cmpuint(f->rec.disconnected, ==, 1);
    g_assert_false(virt_is_connected(f->v));
    g_autoptr(GArray) none = virt_list_domains(f->v, &e);
    g_assert_null(none);
    g_assert_nonnull(e);
    g_clear_error(&e);

    wait_for(&f->rec.connected, 2);
    g_assert_true(virt_is_connected(f->v));
    g_autoptr(GArray) doms = virt_list_domains(f->v, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(doms->len, >=, 1);

    /* Events were registered again on the new connection. */
    g_assert_cmpint(virDomainDestroy(f->dom), ==, 0);
    wait_for(&f->rec.stopped, 1);
    g_assert_cmpint(virDomainCreate(f->dom), ==, 0);
    wait_for(&f->rec.started, 1);
    /* Handles were dropped with the old connection: calls work again. */
    g_assert_true(virt_set_memory(f->v, f->uuid, 1536 * 1024, &e));
    g_assert_no_error(e);
}

static void test_bad_uri(void)
{
    g_autoptr(GError) e = NULL;
    Record rec = {0};
    Virt *v = virt_new("bogus+nothing:///nowhere", &callbacks, &rec);

    virt_event_init();
    virt_set_backoff(v, 10, 20);
    g_assert_false(virt_connect(v, &e));
    g_assert_nonnull(e);
    g_assert_true(virt_error_is_bad_uri(e)); /* an unknown transport: client-side */
    g_assert_false(virt_is_connected(v));
    /* It keeps retrying in the background, quietly; freeing stops it. */
    for (int i = 0; i < 3; i++)
        g_main_context_iteration(NULL, FALSE);
    g_assert_cmpuint(rec.connected, ==, 0);
    virt_free(v);

    /* Unparseable: also never going to work. */
    g_clear_error(&e);
    v = virt_new("::::", &callbacks, &rec);
    g_assert_false(virt_connect(v, &e));
    g_assert_true(virt_error_is_bad_uri(e));
    virt_free(v);

    /* A daemon that is not listening (yet) is worth waiting for. */
    g_clear_error(&e);
    v = virt_new("qemu:///system?socket=/nonexistent/ballast-test.sock", &callbacks, &rec);
    g_assert_false(virt_connect(v, &e));
    g_assert_nonnull(e);
    g_assert_false(virt_error_is_bad_uri(e));
    virt_free(v);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define T(name, fn) g_test_add("/virt/" name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
    T("list", test_list);
    T("lifecycle", test_lifecycle);
    T("memory", test_memory);
    T("metadata", test_metadata);
    T("channel-unsupported", test_channel_unsupported);
    T("reconnect", test_reconnect);
    g_test_add_func("/virt/bad-uri", test_bad_uri);
    return g_test_run();
}
