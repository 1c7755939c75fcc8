/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-balloon detection from sysfs and kernel config files under a root
 * directory (guest images often lack lspci). The text -> fact parts are pure.
 */
#pragma once

#include <glib.h>

#include "protocol.h"

#define DETECT_PCI_VENDOR_VIRTIO      0x1af4
#define DETECT_PCI_BALLOON_TRANSITION 0x1002 /* QEMU's default q35 placement */
#define DETECT_PCI_BALLOON_MODERN     0x1045 /* libvirt's pcie-root-port placement */

/* CONFIG_VIRTIO_BALLOON from the text of a kernel .config. */
BlKconfig detect_parse_kconfig(const char *text, gsize len);

/* "0x1af4\n" -> 0x1af4; FALSE for anything else. */
gboolean detect_parse_hex_id(const char *text, gsize len, guint *id);

/* TRUE when the host can use the balloon: device present and driver bound. */
gboolean detect_usable(const BlBalloonFacts *facts);

/* Human-readable verdict for --check (pure). */
char *detect_describe(const BlBalloonFacts *facts, const char *kernel);

/*
 * Walks root/sys: PCI functions 1af4:1002/1045 (sorted addresses) and whether
 * virtio_balloon is bound. Fails only when root/sys is not readable at all.
 * kconfig is left BL_KCONFIG_UNKNOWN: see detect_kconfig().
 */
gboolean detect_balloon(const char *root, BlBalloonFacts *facts, GError **error);

/* root/boot/config-<release>, else root/proc/config.gz; UNKNOWN when neither reads. */
BlKconfig detect_kconfig(const char *root, const char *release);
