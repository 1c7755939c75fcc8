/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * --check-image: the build-time check of a guest image (a directory tree, not
 * a running system). For every kernel the image holds (ROOT/boot/config-*,
 * ROOT/lib/modules/<release>/): are virtio_balloon and virtio_console built in
 * or present as modules; and are the agent's unit and udev rule installed.
 * The text -> fact and fact -> verdict parts are pure; image_scan() is the
 * only reader and takes the root.
 */
#pragma once

#include <glib.h>

#include "protocol.h"

typedef enum {
    IMAGE_DRV_READY_BUILTIN, /* =y, or listed in modules.builtin */
    IMAGE_DRV_READY_MODULE,  /* a .ko (plain or compressed) is installed */
    IMAGE_DRV_MISSING,       /* =n, or =m without the module file */
    IMAGE_DRV_UNKNOWN,       /* neither a config nor a modules tree to tell */
} ImageDrvState;

typedef struct {
    const char *module; /* "virtio_balloon" */
    const char *symbol; /* "CONFIG_VIRTIO_BALLOON" */
    BlKconfig kconfig;  /* from boot/config-<release>; UNKNOWN when absent */
    gboolean builtin;   /* named in lib/modules/<release>/modules.builtin */
    char *ko;           /* the module file, relative to the root, or NULL */
} ImageDriver;

#define IMAGE_N_DRIVERS 2

typedef struct {
    char *release;
    gboolean has_config;  /* boot/config-<release> read */
    gboolean has_modules; /* lib/modules/<release>/ is a directory */
    ImageDriver drv[IMAGE_N_DRIVERS];
} ImageKernel;

typedef struct {
    GPtrArray *kernels;   /* ImageKernel*, sorted by release */
    gboolean has_systemd; /* lib/systemd/systemd or usr/lib/systemd/systemd */
    char *unit;           /* ballast-agent.service found (relative path) or NULL */
    char *rule;           /* 90-ballast-agent.rules found (relative path) or NULL */
    char *enabled;        /* a *.wants/ballast-agent.service link, or NULL */
} ImageFacts;

void image_facts_free(ImageFacts *facts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImageFacts, image_facts_free)

/* "virtio_balloon.ko", ".ko.xz", ".ko.zst", ".ko.gz": is name that module's file? */
gboolean image_is_module_file(const char *name, const char *module);

/* Does the text of modules.builtin list the module ("kernel/.../virtio_balloon.ko")? */
gboolean image_builtin_lists(const char *text, gsize len, const char *module);

/* One driver's state from its facts (pure). */
ImageDrvState image_driver_state(const ImageKernel *k, const ImageDriver *d);

/* TRUE when every kernel has both drivers and the unit and rule are there
 * (the latter only when the image has systemd); FALSE also with no kernel. */
gboolean image_ready(const ImageFacts *facts);

/* The report, one line per finding, ending with the verdict (pure). */
char *image_describe(const ImageFacts *facts, const char *root);

/* Reads the image under root. Fails only when root cannot be read. */
ImageFacts *image_scan(const char *root, GError **error);
