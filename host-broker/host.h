/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Host memory facts: <root>/proc/meminfo and <root>/proc/pressure/memory. */
#pragma once

#include <glib.h>

#include "policy.h"

/* root NULL or "/" for the real host (--host-root for tests). meminfo is
 * required; a host without PSI gets has_psi FALSE, not an error. */
gboolean host_read(const char *root, PolicyHost *host, GError **error);
