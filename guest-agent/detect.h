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

/* Any tristate symbol ("CONFIG_VIRTIO_CONSOLE") from the text of a .config. */
BlKconfig detect_parse_kconfig_symbol(const char *text, gsize len, const char *symbol);

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

/* Whether this root's /proc and /sys describe a booted guest --check can judge. */
typedef enum {
    DETECT_ENV_GUEST,     /* yes */
    DETECT_ENV_NO_PROC,   /* /proc not mounted: no running kernel to ask */
    DETECT_ENV_NO_SYSFS,  /* /sys not mounted (an image build, a bare chroot) */
    DETECT_ENV_CHROOT,    /* /proc/1/root is another directory: its /sys is the host's */
    DETECT_ENV_CONTAINER, /* a container: /sys and the kernel are the host's */
} DetectEnv;

/* Does PID 1's environment (NUL-separated, /proc/1/environ) name a container? */
gboolean detect_environ_container(const char *environ, gsize len);

/* Reads root/proc, root/sys and the usual container markers. */
DetectEnv detect_environment(const char *root);

/* One line: why --check cannot tell, and what to run instead (pure). */
const char *detect_env_describe(DetectEnv env);
