/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bounded gunzip of a buffer (for /proc/config.gz) with zlib. Not GIO's
 * GZlibDecompressor: GIO drags libgobject, libmount, libselinux and libffi into
 * the agent (~1.7 MiB of RSS) and cannot be linked statically on Debian 12
 * (no libmount.a), while zlib is small, everywhere and links statically.
 */
#pragma once

#include <glib.h>

/* NULL with error on a corrupt or truncated stream, or output over max_out. */
GBytes *gunzip_bytes(const void *data, gsize len, gsize max_out, GError **error);
