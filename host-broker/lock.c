/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ballast-config.h"

#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

const char *lock_default_path(void)
{
    return BALLAST_RUNSTATEDIR "/ballast/ballastd.lock";
}

/* The holder's pid, written by it, for the error message only: the lock
 * itself is the flock, never the file's content. */
static gint64 lock_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    guint64 pid = 0;

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if (!g_ascii_string_to_unsigned(g_strstrip(buf), 10, 1, G_MAXINT, &pid, NULL))
        return 0;
    return (gint64)pid;
}

int lock_acquire(const char *path, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    char pid[32];
    int fd, saved;

    if (g_mkdir_with_parents(dir, 0755) < 0) {
        saved = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
                    "cannot create %s for the lock: %s", dir, g_strerror(saved));
        return -1;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        saved = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "cannot open lock %s: %s",
                    path, g_strerror(saved));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        saved = errno;
        if (saved == EWOULDBLOCK) {
            gint64 holder = lock_holder(fd);
            if (holder > 0)
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                            "another ballastd (pid %" G_GINT64_FORMAT ") is running: %s is locked",
                            holder, path);
            else
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                            "another ballastd is running: %s is locked", path);
        } else {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "cannot lock %s: %s",
                        path, g_strerror(saved));
        }
        close(fd);
        return -1;
    }
    g_snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0) {
        /* Only the message of a second ballastd loses the pid. */
    }
    return fd;
}

void lock_release(int fd)
{
    if (fd >= 0)
        close(fd);
}
