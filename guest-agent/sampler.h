/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reads the guest's /proc files under a root directory into a BlReport's
 * data fields. One reused buffer: no allocation per sample.
 */
#pragma once

#include <glib.h>

#include "protocol.h"

typedef struct Sampler Sampler;

Sampler *sampler_new(const char *root);
void sampler_free(Sampler *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Sampler, sampler_free)

/*
 * Fill out->mem, psi/has_psi, vmstat and uptime_ms. meminfo is required
 * (error otherwise); PSI, vmstat and uptime are optional and left empty
 * (has_psi FALSE, no counters, 0) when unreadable or malformed.
 */
gboolean sampler_sample(Sampler *s, BlReport *out, GError **error);

/* A token file (boot_id, osrelease) into dst; "unknown" when unreadable. */
void sampler_read_token(Sampler *s, const char *relpath, char *dst, gsize dst_size);

/* Whether root/proc/pressure/memory exists and parses. */
gboolean sampler_has_psi(Sampler *s);
