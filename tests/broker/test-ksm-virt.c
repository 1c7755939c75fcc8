/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-ksm against libvirt's test:///default driver: the persistent part
 * (<nosharepages/> in the inactive definition, and back), the live part
 * refused unless allowed (and failing cleanly where the driver has no QEMU
 * monitor), and transient domains. The live QMP path on real QEMU is covered
 * by the end-to-end suite.
 */
#include <glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

#include "ksm-xml.h"
#include "virt-ksm.h"

static void quiet(void *data, virErrorPtr err)
{
}

static virConnectPtr conn_open(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");

    g_assert_nonnull(conn);
    return conn;
}

static gboolean inactive_has_nsp(virDomainPtr dom)
{
    char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
    gboolean has = FALSE;

    g_assert_nonnull(xml);
    g_assert_true(ksm_xml_has_nosharepages(xml, &has, NULL));
    free(xml);
    return has;
}

static void test_persistent(void)
{
    virConnectPtr conn = conn_open();
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    g_autoptr(GError) error = NULL;
    gboolean changed = FALSE;

    g_assert_nonnull(dom);
    g_assert_false(inactive_has_nsp(dom));
    g_assert_true(virt_ksm_set_persistent(dom, TRUE, &changed, &error));
    g_assert_no_error(error);
    g_assert_true(changed);
    g_assert_true(inactive_has_nsp(dom));
    /* idempotent: no second define */
    g_assert_true(virt_ksm_set_persistent(dom, TRUE, &changed, &error));
    g_assert_false(changed);
    /* and back */
    g_assert_true(virt_ksm_set_persistent(dom, FALSE, &changed, &error));
    g_assert_true(changed);
    g_assert_false(inactive_has_nsp(dom));
    virDomainFree(dom);
    virConnectClose(conn);
}

static void test_apply_without_live(void)
{
    virConnectPtr conn = conn_open();
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    g_autoptr(GError) error = NULL;
    VirtKsmResult r;

    g_assert_true(virt_ksm_apply(dom, TRUE, FALSE, &r, &error));
    g_assert_no_error(error);
    g_assert_true(r.active);
    g_assert_true(r.persistent);
    g_assert_false(r.live_attempted); /* no monitor command: no taint */
    g_assert_false(r.live);
    g_assert_nonnull(strstr(r.note, "next start"));
    g_assert_nonnull(strstr(r.note, "not allowed"));
    g_assert_true(r.persistent_done);
    g_assert_true(r.persistent_changed);
    g_assert_true(inactive_has_nsp(dom));

    g_assert_true(virt_ksm_apply(dom, FALSE, FALSE, &r, &error));
    g_assert_true(r.persistent_done);
    g_assert_true(r.persistent_changed);
    g_assert_false(inactive_has_nsp(dom));
    virDomainFree(dom);
    virConnectClose(conn);
}

static void test_apply_live_unsupported(void)
{
    virConnectPtr conn = conn_open();
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    g_autoptr(GError) error = NULL;
    VirtKsmResult r;
    guint n = 7;

    /* the test driver has no QEMU monitor: the live part fails, the
     * persistent part is still done, and the error says what failed */
    g_assert_false(virt_ksm_apply(dom, TRUE, TRUE, &r, &error));
    g_assert_error(error, VIRT_KSM_ERROR, 0);
    g_assert_nonnull(strstr(error->message, "QEMU monitor command"));
    g_assert_true(r.live_attempted);
    g_assert_false(r.live);
    g_assert_cmpuint(r.n_backends, ==, 0);
    g_assert_true(r.persistent_done);
    g_assert_true(inactive_has_nsp(dom));
    g_clear_error(&error);

    g_assert_false(virt_ksm_set_live(dom, FALSE, &n, &error));
    g_assert_cmpuint(n, ==, 0);
    g_clear_error(&error);

    g_assert_false(virt_ksm_apply(dom, FALSE, TRUE, &r, &error));
    g_assert_false(inactive_has_nsp(dom));
    virDomainFree(dom);
    virConnectClose(conn);
}

static void test_transient(void)
{
    static const char xml[] = "<domain type='test'><name>ksm-transient</name>"
                              "<memory>65536</memory><os><type>hvm</type></os></domain>";
    virConnectPtr conn = conn_open();
    virDomainPtr dom = virDomainCreateXML(conn, xml, 0);
    g_autoptr(GError) error = NULL;
    VirtKsmResult r;

    g_assert_nonnull(dom);
    g_assert_true(virt_ksm_apply(dom, TRUE, FALSE, &r, &error));
    g_assert_no_error(error);
    g_assert_true(r.active);
    g_assert_false(r.persistent);
    g_assert_false(r.persistent_done);
    g_assert_false(r.persistent_changed);
    g_assert_cmpint(virDomainIsPersistent(dom), ==, 0); /* not made persistent by us */
    virDomainDestroy(dom);
    virDomainFree(dom);
    virConnectClose(conn);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    virSetErrorFunc(NULL, quiet);
    g_test_add_func("/ksm/virt/persistent", test_persistent);
    g_test_add_func("/ksm/virt/apply-without-live", test_apply_without_live);
    g_test_add_func("/ksm/virt/apply-live-unsupported", test_apply_live_unsupported);
    g_test_add_func("/ksm/virt/transient", test_transient);
    return g_test_run();
}
