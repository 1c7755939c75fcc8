/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bounded gunzip of a buffer (for /proc/config.gz) with GIO's
 * GZlibDecompressor, loaded only when needed: linking GIO would map libgio,
 * libgobject, libmount, libselinux, libblkid, libz and libffi into the agent
 * for its whole life (~1.7 MiB of RSS, more than a third of the budget), for
 * a file that is read once at startup and only in guests without
 * /boot/config-<release>.
 */
#pragma once

#include <glib.h>

/* NULL with error on a corrupt or truncated stream, output over max_out, or
 * when GIO cannot be loaded. */
GBytes *gunzip_bytes(const void *data, gsize len, gsize max_out, GError **error);
