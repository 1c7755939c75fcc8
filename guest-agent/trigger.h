/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kernel PSI trigger on /proc/pressure/memory (Documentation/accounting/psi.rst):
 * write "some|full STALL_US WINDOW_US" to an O_RDWR fd, then POLLPRI means
 * the stall threshold was crossed within the window. The fd is watched in the
 * GLib main loop; tests attach any fd (an eventfd) instead.
 */
#pragma once

#include <glib.h>

#include "protocol.h"

typedef struct Trigger Trigger;
typedef void (*TriggerFunc)(gpointer user_data);

Trigger *trigger_new(TriggerFunc fired, gpointer user_data);
void trigger_free(Trigger *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Trigger, trigger_free)

/* Within the kernel's limits (window 0.5..10 s, 0 < stall <= window). */
gboolean trigger_params_valid(const BlPsiTrigger *p);

/* "some 150000 1000000" into buf; FALSE when it does not fit. */
gboolean trigger_format(const BlPsiTrigger *p, char *buf, gsize size);

/* Whether root/proc/pressure/memory is the kernel's (procfs), i.e. can take
 * a trigger; a fixture tree's regular file must never be written. */
gboolean trigger_supported(const char *root);

/* Arm a PSI trigger (replacing any armed one). G_FILE_ERROR_INVAL for
 * parameters out of range, G_FILE_ERROR_NOSYS where triggers cannot be armed
 * (not procfs), else the errno of open/write as a G_FILE_ERROR. */
gboolean trigger_arm_psi(Trigger *t, const char *root, const BlPsiTrigger *p, GError **error);

/* Watch fd (taking ownership) for cond instead of a PSI fd: for tests. */
void trigger_attach_fd(Trigger *t, int fd, GIOCondition cond);

void trigger_disarm(Trigger *t);
gboolean trigger_armed(const Trigger *t);
guint64 trigger_fired_count(const Trigger *t);
