/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PSI trigger: see trigger.h. */
#include "trigger.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#define TRIGGER_PROC_SUPER_MAGIC 0x9fa0 /* linux/magic.h PROC_SUPER_MAGIC */
/* Window granularity the kernel imposes on unprivileged triggers (6.5+). */
#define TRIGGER_UNPRIV_WINDOW_US 2000000

struct Trigger {
    int fd;
    guint watch;
    GIOCondition cond;
    guint64 fired;
    TriggerFunc func;
    gpointer user_data;
};

Trigger *trigger_new(TriggerFunc fired, gpointer user_data)
{
    Trigger *t = g_new0(Trigger, 1);

    t->fd = -1;
    t->func = fired;
    t->user_data = user_data;
    return t;
}

void trigger_disarm(Trigger *t)
{
    if (t->watch != 0)
        g_source_remove(t->watch);
    t->watch = 0;
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

void trigger_free(Trigger *t)
{
    if (t == NULL)
        return;
    trigger_disarm(t);
    g_free(t);
}

gboolean trigger_params_valid(const BlPsiTrigger *p)
{
    return (p->kind == BL_PSI_SOME || p->kind == BL_PSI_FULL) &&
           p->window_us >= BL_PROTO_PSI_WINDOW_MIN_US &&
           p->window_us <= BL_PROTO_PSI_WINDOW_MAX_US && p->stall_us > 0 &&
           p->stall_us <= p->window_us;
}

gboolean trigger_format(const BlPsiTrigger *p, char *buf, gsize size)
{
    int n = g_snprintf(buf, size, "%s %u %u", p->kind == BL_PSI_FULL ? "full" : "some", p->stall_us,
                       p->window_us);

    return n > 0 && (gsize)n < size;
}

gboolean trigger_supported(const char *root)
{
    g_autofree char *path = g_build_filename(root ? root : "/", "proc/pressure/memory", NULL);
    struct statfs sfs;

    return statfs(path, &sfs) == 0 && sfs.f_type == TRIGGER_PROC_SUPER_MAGIC;
}

static gboolean trigger_on_fd(int fd, GIOCondition cond, gpointer data)
{
    Trigger *t = data;

    if (cond & (G_IO_ERR | G_IO_HUP | G_IO_NVAL)) {
        /* The kernel reports POLLERR when the trigger is gone; a level-
         * triggered error would spin, so stop and let sampling carry on. */
        g_warning("PSI trigger failed; relying on sampling");
        t->watch = 0;
        trigger_disarm(t);
        return G_SOURCE_REMOVE;
    }
    if (cond & G_IO_IN) {
        char drain[64];

        /* a fake trigger (eventfd, pipe) is level-triggered: consume it */
        while (read(fd, drain, sizeof(drain)) > 0) {
        }
    }
    t->fired++;
    if (t->func != NULL)
        t->func(t->user_data);
    return G_SOURCE_CONTINUE;
}

void trigger_attach_fd(Trigger *t, int fd, GIOCondition cond)
{
    trigger_disarm(t);
    t->fd = fd;
    t->cond = cond;
    t->watch = g_unix_fd_add(fd, cond, trigger_on_fd, t);
}

gboolean trigger_arm_psi(Trigger *t, const char *root, const BlPsiTrigger *p, GError **error)
{
    g_autofree char *path = g_build_filename(root ? root : "/", "proc/pressure/memory", NULL);
    char spec[64];
    gssize written;
    int fd, saved;

    if (!trigger_params_valid(p) || !trigger_format(p, spec, sizeof(spec))) {
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                            "PSI trigger parameters out of the kernel's range");
        return FALSE;
    }
    if (!trigger_supported(root)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSYS, "%s: not the kernel's pressure file",
                    path);
        return FALSE;
    }
    fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        saved = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", path,
                    g_strerror(saved));
        return FALSE;
    }
    /* the kernel expects the terminating NUL (psi.rst example) */
    written = write(fd, spec, strlen(spec) + 1);
    if (written < 0 && errno == EINVAL && p->window_us % TRIGGER_UNPRIV_WINDOW_US != 0) {
        /* Without CAP_SYS_RESOURCE (containers; kernels 6.5+) the window must
         * be a multiple of 2 s: keep the stall share on the next such window. */
        BlPsiTrigger wide = *p;

        wide.window_us = (p->window_us / TRIGGER_UNPRIV_WINDOW_US + 1) * TRIGGER_UNPRIV_WINDOW_US;
        wide.stall_us = (guint32)((guint64)p->stall_us * wide.window_us / p->window_us);
        if (wide.window_us <= BL_PROTO_PSI_WINDOW_MAX_US &&
            trigger_format(&wide, spec, sizeof(spec))) {
            g_debug("PSI trigger: unprivileged, widened to \"%s\"", spec);
            written = write(fd, spec, strlen(spec) + 1);
        } else {
            errno = EINVAL;
        }
    }
    if (written < 0) {
        saved = errno;
        close(fd);
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: \"%s\": %s", path,
                    spec, g_strerror(saved));
        return FALSE;
    }
    trigger_attach_fd(t, fd, G_IO_PRI);
    return TRUE;
}

gboolean trigger_armed(const Trigger *t)
{
    return t->fd >= 0;
}

guint64 trigger_fired_count(const Trigger *t)
{
    return t->fired;
}
