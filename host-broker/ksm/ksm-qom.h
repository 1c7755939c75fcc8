/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP for live KSM exclusion: which QOM objects hold the guest RAM, and the
 * qom-set that turns their merging off or on. Pure: JSON text in and out;
 * virt-ksm.c sends it with virDomainQemuMonitorCommand.
 *
 * libvirt 9.0 with QEMU 7.2 starts a guest with -machine memory-backend=pc.ram
 * and one memory-backend-ram object "pc.ram"; a NUMA guest has one backend
 * per node ("ram-node0", ...), and memfd or file backends when the XML asks
 * for them. qom-list /objects finds them all without guessing names.
 */
#pragma once

#include <glib.h>

#define KSM_QOM_ERROR (ksm_qom_error_quark())
GQuark ksm_qom_error_quark(void);

#define KSM_QOM_MAX_BACKENDS 256
#define KSM_QOM_NAME_MAX     128

/* {"execute":"qom-list","arguments":{"path":"/objects"}} */
char *ksm_qom_list_command(void);

/* {"execute":"qom-set","arguments":{"path":path,"property":"merge","value":merge}} */
char *ksm_qom_set_merge_command(const char *path, gboolean merge);

/*
 * From a qom-list /objects reply, the QOM paths ("/objects/pc.ram") of every
 * child<memory-backend-ram|file|memfd>. An "error" reply, a reply that is not
 * the expected shape, or no backend at all is an error.
 */
gboolean ksm_qom_parse_backends(const char *reply, GPtrArray **paths, GError **error);

/* TRUE for {"return":{}}-like success; an "error" reply becomes a GError
 * carrying QEMU's class and desc. */
gboolean ksm_qom_check_reply(const char *reply, GError **error);
