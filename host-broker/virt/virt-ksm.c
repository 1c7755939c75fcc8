/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libvirt calls for per-VM KSM exclusion: QMP qom-set through the monitor
 * (live) and <nosharepages/> in the persistent definition.
 */
#include "virt-ksm.h"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#include <string.h>

#include "ksm-qom.h"
#include "ksm-xml.h"

GQuark virt_ksm_error_quark(void)
{
    return g_quark_from_static_string("virt-ksm-error-quark");
}

static void virt_ksm_set_libvirt_error(GError **error, const char *what)
{
    const char *msg = virGetLastErrorMessage();

    g_set_error(error, VIRT_KSM_ERROR, 0, "%s: %s", what, msg ? msg : "unknown libvirt error");
}

static gboolean virt_ksm_monitor(virDomainPtr dom, const char *cmd, char **reply, GError **error)
{
    *reply = NULL;
    if (virDomainQemuMonitorCommand(dom, cmd, reply, VIR_DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT) < 0) {
        virt_ksm_set_libvirt_error(error, "QEMU monitor command");
        return FALSE;
    }
    return TRUE;
}

gboolean virt_ksm_set_live(virDomainPtr dom, gboolean merge, guint *n_backends, GError **error)
{
    g_autofree char *list_cmd = ksm_qom_list_command();
    g_autoptr(GPtrArray) paths = NULL;
    char *reply = NULL;
    gboolean ok;

    *n_backends = 0;
    if (!virt_ksm_monitor(dom, list_cmd, &reply, error))
        return FALSE;
    ok = ksm_qom_parse_backends(reply, &paths, error);
    free(reply);
    if (!ok)
        return FALSE;
    for (guint i = 0; i < paths->len; i++) {
        g_autofree char *cmd = ksm_qom_set_merge_command(paths->pdata[i], merge);

        if (!virt_ksm_monitor(dom, cmd, &reply, error)) {
            g_prefix_error(error, "qom-set %s merge=%s: ", (char *)paths->pdata[i],
                           merge ? "true" : "false");
            return FALSE;
        }
        ok = ksm_qom_check_reply(reply, error);
        free(reply);
        if (!ok) {
            g_prefix_error(error, "qom-set %s merge=%s: ", (char *)paths->pdata[i],
                           merge ? "true" : "false");
            return FALSE;
        }
        (*n_backends)++;
    }
    return TRUE;
}

static char *virt_ksm_xml(virDomainPtr dom, unsigned int flags, GError **error)
{
    char *xml = virDomainGetXMLDesc(dom, flags);
    char *copy;

    if (!xml) {
        virt_ksm_set_libvirt_error(error, "virDomainGetXMLDesc");
        return NULL;
    }
    copy = g_strdup(xml);
    free(xml);
    return copy;
}

gboolean virt_ksm_set_persistent(virDomainPtr dom, gboolean nosharepages, gboolean *changed,
                                 GError **error)
{
    g_autofree char *xml = NULL;
    g_autofree char *edited = NULL;
    virDomainPtr defined;

    *changed = FALSE;
    /* SECURE keeps passwords (VNC, SPICE) that redefining would otherwise drop. */
    xml = virt_ksm_xml(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE, error);
    if (!xml)
        return FALSE;
    if (!ksm_xml_set_nosharepages(xml, nosharepages, &edited, changed, error))
        return FALSE;
    if (!*changed)
        return TRUE;
    defined = virDomainDefineXML(virDomainGetConnect(dom), edited);
    if (!defined) {
        *changed = FALSE;
        virt_ksm_set_libvirt_error(error, "virDomainDefineXML");
        return FALSE;
    }
    virDomainFree(defined);
    /* Recorded as done only when the defined XML now says so. */
    {
        g_autofree char *now = virt_ksm_xml(dom, VIR_DOMAIN_XML_INACTIVE, error);
        gboolean has = FALSE;

        if (now == NULL || !ksm_xml_has_nosharepages(now, &has, error))
            return FALSE;
        if (has != nosharepages) {
            g_set_error(error, VIRT_KSM_ERROR, 0,
                        "virDomainDefineXML succeeded but the definition %s <nosharepages/>",
                        has ? "still has" : "still lacks");
            return FALSE;
        }
    }
    return TRUE;
}

gboolean virt_ksm_apply(virDomainPtr dom, gboolean exclude, gboolean live_allowed, VirtKsmResult *r,
                        GError **error)
{
    g_autoptr(GError) live_err = NULL;
    g_autoptr(GError) pers_err = NULL;
    int active = virDomainIsActive(dom);
    int persistent = virDomainIsPersistent(dom);

    memset(r, 0, sizeof(*r));
    if (active < 0 || persistent < 0) {
        virt_ksm_set_libvirt_error(error, "domain state");
        return FALSE;
    }
    r->active = active == 1;
    r->persistent = persistent == 1;

    if (r->active) {
        g_autofree char *live_xml = NULL;
        gboolean started_without_sharing = FALSE;

        /* Started with <nosharepages/>: QEMU already has mem-merge=off, so
         * excluding needs no monitor command (and no taint). */
        live_xml = virt_ksm_xml(dom, 0, &live_err);
        if (live_xml)
            ksm_xml_has_nosharepages(live_xml, &started_without_sharing, NULL);
        g_clear_error(&live_err);
        if (exclude && started_without_sharing) {
            r->live = TRUE;
        } else if (!live_allowed) {
            g_snprintf(r->note, sizeof(r->note),
                       "live part waits for the next start (QEMU monitor use not allowed)");
        } else {
            r->live_attempted = TRUE;
            r->live = virt_ksm_set_live(dom, !exclude, &r->n_backends, &live_err);
        }
    }

    if (r->persistent) {
        r->persistent_done =
            virt_ksm_set_persistent(dom, exclude, &r->persistent_changed, &pers_err);
    } else if (!r->note[0]) {
        g_snprintf(r->note, sizeof(r->note), "transient domain: no persistent definition");
    }

    if (live_err || pers_err) {
        g_set_error(error, VIRT_KSM_ERROR, 0, "%s%s%s", live_err ? live_err->message : "",
                    live_err && pers_err ? "; " : "", pers_err ? pers_err->message : "");
        return FALSE;
    }
    return TRUE;
}
