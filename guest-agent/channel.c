/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The port: see channel.h. */
#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "framer.h"
#include "procfs.h"
#include "protocol.h"

#define CHANNEL_UDEV_DIR "/dev/virtio-ports/"
/* Input read per wakeup before yielding to the loop: a chatty host cannot
 * starve the sampler. */
#define CHANNEL_READ_CHUNK  4096
#define CHANNEL_READ_BUDGET 16
/* While waiting for the host, check every this many rechecks (10 s) that
 * the fd still is the device the path names. */
#define CHANNEL_IDENTITY_EVERY 20

typedef enum {
    CHANNEL_CLOSED,    /* no fd: (re)open on a timer */
    CHANNEL_WAITING,   /* device open, no host side: recheck on a timer */
    CHANNEL_CONNECTED, /* reading and writing */
} ChannelState;

struct Channel {
    char *root;
    char *given; /* --port, or NULL to find by name */
    char *path;  /* what was opened last */
    ChannelKind kind;
    ChannelCallbacks cb;
    gpointer user_data;

    ChannelState state;
    guint64 generation; /* bumped on every state change: stale callers stop */
    int in_fd, out_fd;
    gboolean in_blocking; /* a tty stdin we did not make non-blocking */
    guint in_watch, out_watch, timer;
    guint backoff_ms;
    gboolean warned; /* one log line per failure streak */
    gboolean flushing;
    guint rechecks;

    BlFramer *framer;
    GString *wbuf; /* the message being written, reused */
    gsize wpos;
};

static void channel_open(Channel *ch);
static void channel_flush(Channel *ch);

static void channel_clear_timer(Channel *ch)
{
    if (ch->timer != 0)
        g_source_remove(ch->timer);
    ch->timer = 0;
}

static void channel_unwatch(Channel *ch)
{
    if (ch->in_watch != 0)
        g_source_remove(ch->in_watch);
    if (ch->out_watch != 0)
        g_source_remove(ch->out_watch);
    ch->in_watch = ch->out_watch = 0;
}

static void channel_close_fds(Channel *ch)
{
    channel_unwatch(ch);
    if (ch->kind != CHANNEL_KIND_STDIO) {
        if (ch->in_fd >= 0)
            close(ch->in_fd);
    }
    ch->in_fd = ch->out_fd = -1;
}

static gboolean channel_on_timer_open(gpointer data)
{
    Channel *ch = data;

    ch->timer = 0;
    channel_open(ch);
    return G_SOURCE_REMOVE;
}

static void channel_schedule_open(Channel *ch, guint delay_ms)
{
    channel_clear_timer(ch);
    ch->timer = g_timeout_add(delay_ms, channel_on_timer_open, ch);
}

/* Drop the partial message: the next one (hello) starts with 0xFF, which
 * makes the receiver drop whatever partial line it holds. */
static void channel_drop_output(Channel *ch)
{
    g_string_truncate(ch->wbuf, 0);
    ch->wpos = 0;
}

static void channel_check_host(Channel *ch);

/* Is the open fd still the device at path? A port unplugged and plugged
 * again is a new device node: the old fd would report HUP forever. */
static gboolean channel_same_device(Channel *ch)
{
    struct stat a, b;

    return ch->path != NULL && stat(ch->path, &a) == 0 && fstat(ch->in_fd, &b) == 0 &&
           a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_rdev == b.st_rdev;
}

static void channel_lost(Channel *ch, gboolean io_error);

static gboolean channel_on_recheck(gpointer data)
{
    Channel *ch = data;

    if (++ch->rechecks % CHANNEL_IDENTITY_EVERY == 0 && !channel_same_device(ch)) {
        g_debug("port %s: device node changed; reopening", ch->path);
        channel_lost(ch, TRUE); /* removes this timer, schedules a reopen */
        return G_SOURCE_REMOVE;
    }
    channel_check_host(ch);
    /* on a state change this timer was already removed (and maybe replaced) */
    return ch->state == CHANNEL_WAITING ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* The host side went away (read 0, HUP, write error). */
static void channel_lost(Channel *ch, gboolean io_error)
{
    gboolean was_connected = ch->state == CHANNEL_CONNECTED;

    ch->generation++;
    channel_unwatch(ch);
    channel_drop_output(ch);
    if (ch->kind == CHANNEL_KIND_STDIO) {
        ch->state = CHANNEL_CLOSED;
        ch->cb.disconnected(TRUE, ch->user_data);
        return;
    }
    if (ch->kind == CHANNEL_KIND_DEVICE && !io_error) {
        /* Keep the fd: a virtio port stays open across host reconnects. */
        ch->state = CHANNEL_WAITING;
        channel_clear_timer(ch);
        ch->timer = g_timeout_add(CHANNEL_RECHECK_MS, channel_on_recheck, ch);
    } else {
        channel_close_fds(ch);
        ch->state = CHANNEL_CLOSED;
        channel_schedule_open(ch,
                              ch->kind == CHANNEL_KIND_SOCKET ? ch->backoff_ms : CHANNEL_REOPEN_MS);
    }
    if (was_connected)
        ch->cb.disconnected(FALSE, ch->user_data);
}

static gboolean channel_on_line(const char *line, gsize len, gpointer data)
{
    Channel *ch = data;
    guint64 gen = ch->generation;

    ch->cb.line(line, len, ch->user_data);
    return ch->generation == gen; /* stop feeding a connection that is gone */
}

static gboolean channel_on_input(int fd, GIOCondition cond, gpointer data)
{
    Channel *ch = data;
    guint64 gen = ch->generation;
    char buf[CHANNEL_READ_CHUNK];
    gboolean eof = FALSE, error = FALSE, again = FALSE;

    for (int i = 0; i < CHANNEL_READ_BUDGET; i++) {
        gssize n = read(fd, buf, sizeof(buf));

        if (n > 0) {
            bl_framer_feed(ch->framer, buf, (gsize)n, channel_on_line, ch);
            if (ch->generation != gen)
                return G_SOURCE_REMOVE; /* a line callback restarted the channel */
            if (ch->in_blocking)
                break; /* one read per wakeup on a blocking tty */
            continue;
        }
        if (n == 0) {
            eof = TRUE;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            again = TRUE;
        } else {
            error = TRUE;
        }
        break;
    }
    /* Answer what this read asked for in one go: a burst of requests costs
     * one sample and one report, not one each. */
    channel_flush(ch);
    if (ch->generation != gen)
        return G_SOURCE_REMOVE; /* the write failed: channel_lost() ran */
    if (ch->kind == CHANNEL_KIND_STDIO && (eof || error)) {
        ch->in_watch = 0; /* stdin ended: keep writing reports */
        return G_SOURCE_REMOVE;
    }
    if (eof || error || (again && (cond & (G_IO_HUP | G_IO_ERR)))) {
        ch->in_watch = 0;
        channel_lost(ch, error);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean channel_on_output(int fd, GIOCondition cond, gpointer data)
{
    Channel *ch = data;

    if (cond & (G_IO_HUP | G_IO_ERR | G_IO_NVAL)) {
        ch->out_watch = 0;
        channel_lost(ch, (cond & G_IO_NVAL) != 0);
        return G_SOURCE_REMOVE;
    }
    ch->out_watch = 0;
    channel_flush(ch); /* re-adds the watch if still blocked */
    return G_SOURCE_REMOVE;
}

static void channel_set_connected(Channel *ch)
{
    channel_clear_timer(ch);
    ch->state = CHANNEL_CONNECTED;
    ch->generation++;
    ch->backoff_ms = CHANNEL_BACKOFF_MIN_MS;
    ch->warned = FALSE;
    bl_framer_reset(ch->framer);
    channel_drop_output(ch);
    if (ch->in_fd >= 0)
        ch->in_watch =
            g_unix_fd_add(ch->in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, channel_on_input, ch);
    g_debug("port %s: host side connected", ch->path ? ch->path : "-");
    ch->cb.connected(ch->user_data);
    channel_flush(ch);
}

/* Device: is the host side there? POLLHUP says no (measured in guests). */
static void channel_check_host(Channel *ch)
{
    struct pollfd p = {.fd = ch->in_fd, .events = POLLIN | POLLOUT};

    if (ch->state != CHANNEL_WAITING)
        return;
    if (poll(&p, 1, 0) < 0)
        return;
    if (p.revents & POLLNVAL) {
        channel_lost(ch, TRUE);
        return;
    }
    if (!(p.revents & (POLLHUP | POLLERR)))
        channel_set_connected(ch);
}

static gboolean channel_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

static char *channel_resolve(Channel *ch)
{
    if (ch->given == NULL)
        return channel_find_port(ch->root, BL_PROTO_CHANNEL_NAME);
    if (g_file_test(ch->given, G_FILE_TEST_EXISTS))
        return g_strdup(ch->given);
    /* Without udev there is no /dev/virtio-ports/: find the same name in sysfs. */
    if (g_str_has_prefix(ch->given, CHANNEL_UDEV_DIR)) {
        g_autofree char *name = g_path_get_basename(ch->given);

        return channel_find_port(ch->root, name);
    }
    return NULL;
}

static gboolean channel_connect_socket(Channel *ch, const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return FALSE;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return FALSE;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return FALSE;
    }
    ch->in_fd = ch->out_fd = fd;
    return TRUE;
}

static void channel_open(Channel *ch)
{
    g_autofree char *path = NULL;
    struct stat st;
    int fd;

    if (ch->state != CHANNEL_CLOSED)
        return;
    if (ch->kind == CHANNEL_KIND_STDIO) {
        ch->in_fd = STDIN_FILENO;
        ch->out_fd = STDOUT_FILENO;
        /* never block on output; leave a terminal alone (shared with a shell) */
        if (!isatty(STDOUT_FILENO))
            channel_set_nonblock(STDOUT_FILENO);
        ch->in_blocking = isatty(STDIN_FILENO) || !channel_set_nonblock(STDIN_FILENO);
        if (fcntl(STDIN_FILENO, F_GETFD) < 0)
            ch->in_fd = -1;
        channel_set_connected(ch);
        return;
    }

    path = channel_resolve(ch);
    if (path == NULL || stat(path, &st) < 0) {
        if (!ch->warned)
            g_message("port %s not found; waiting for it",
                      ch->given ? ch->given : BL_PROTO_CHANNEL_NAME);
        ch->warned = TRUE;
        channel_schedule_open(ch, CHANNEL_REOPEN_MS);
        return;
    }
    g_free(ch->path);
    ch->path = g_strdup(path);
    if (S_ISSOCK(st.st_mode)) {
        ch->kind = CHANNEL_KIND_SOCKET;
        if (!channel_connect_socket(ch, path)) {
            if (!ch->warned)
                g_message("%s: %s; retrying", path, g_strerror(errno));
            ch->warned = TRUE;
            channel_schedule_open(ch, ch->backoff_ms);
            ch->backoff_ms = MIN(ch->backoff_ms * 2, CHANNEL_BACKOFF_MAX_MS);
            return;
        }
        channel_set_connected(ch);
        return;
    }
    ch->kind = CHANNEL_KIND_DEVICE;
    fd = S_ISCHR(st.st_mode) ? open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY) : -1;
    if (fd < 0) {
        if (!ch->warned)
            g_message("%s: %s; retrying", path,
                      S_ISCHR(st.st_mode) ? g_strerror(errno)
                                          : "neither a character device nor a socket");
        ch->warned = TRUE;
        channel_schedule_open(ch, CHANNEL_REOPEN_MS);
        return;
    }
    ch->in_fd = ch->out_fd = fd;
    ch->state = CHANNEL_WAITING;
    ch->generation++;
    channel_check_host(ch);
    if (ch->state == CHANNEL_WAITING) {
        g_debug("port %s: no host side yet", path);
        channel_clear_timer(ch);
        ch->timer = g_timeout_add(CHANNEL_RECHECK_MS, channel_on_recheck, ch);
    }
}

static gssize channel_write(Channel *ch, const char *data, gsize len)
{
    if (ch->kind == CHANNEL_KIND_SOCKET)
        return send(ch->out_fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    return write(ch->out_fd, data, len);
}

static void channel_flush(Channel *ch)
{
    guint64 gen = ch->generation;
    gboolean blocked = FALSE;

    if (ch->state != CHANNEL_CONNECTED || ch->flushing)
        return;
    ch->flushing = TRUE;
    for (;;) {
        gssize n;

        if (ch->wpos >= ch->wbuf->len) {
            channel_drop_output(ch);
            if (!ch->cb.fill(ch->wbuf, ch->user_data) || ch->wbuf->len == 0 ||
                ch->generation != gen) {
                channel_drop_output(ch);
                break;
            }
        }
        n = channel_write(ch, ch->wbuf->str + ch->wpos, ch->wbuf->len - ch->wpos);
        if (n > 0) {
            ch->wpos += (gsize)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            blocked = TRUE;
            break;
        }
        /* a failed write on a device (unplugged, EIO) reopens it */
        ch->flushing = FALSE;
        g_debug("port %s: write: %s", ch->path ? ch->path : "-",
                n < 0 ? g_strerror(errno) : "no progress");
        channel_lost(ch, TRUE);
        return;
    }
    ch->flushing = FALSE;
    if (blocked && ch->out_watch == 0)
        ch->out_watch = g_unix_fd_add(ch->out_fd, G_IO_OUT | G_IO_ERR, channel_on_output, ch);
}

char *channel_find_port(const char *root, const char *name)
{
    const char *r = root ? root : "/";
    /* Both under root, like every other path the agent reads (--root). */
    g_autofree char *udev = g_build_filename(r, CHANNEL_UDEV_DIR, name, NULL);
    g_autofree char *dir = g_build_filename(r, "sys/class/virtio-ports", NULL);
    g_autoptr(GDir) d = NULL;
    const char *entry;

    if (g_file_test(udev, G_FILE_TEST_EXISTS))
        return g_steal_pointer(&udev);
    d = g_dir_open(dir, 0, NULL);
    while (d != NULL && (entry = g_dir_read_name(d)) != NULL) {
        g_autofree char *rel = g_strdup_printf("sys/class/virtio-ports/%s/name", entry);
        char buf[256];
        gsize len;

        if (strchr(entry, '/') != NULL || entry[0] == '.' ||
            !procfs_read_into(root, rel, buf, sizeof(buf), &len, NULL))
            continue;
        while (len > 0 && g_ascii_isspace(buf[len - 1]))
            buf[--len] = '\0';
        if (strcmp(buf, name) == 0)
            return g_build_filename(r, "dev", entry, NULL);
    }
    return NULL;
}

Channel *channel_new(const char *root, const char *port, const ChannelCallbacks *cb,
                     gpointer user_data, GError **error)
{
    g_autoptr(Channel) ch = g_new0(Channel, 1);
    struct stat st;

    ch->root = g_strdup(root ? root : "/");
    ch->cb = *cb;
    ch->user_data = user_data;
    ch->in_fd = ch->out_fd = -1;
    ch->backoff_ms = CHANNEL_BACKOFF_MIN_MS;
    ch->framer = bl_framer_new(BL_PROTO_MAX_LINE);
    ch->wbuf = g_string_sized_new(2048);
    ch->kind = CHANNEL_KIND_DEVICE;
    if (port != NULL && strcmp(port, "-") == 0) {
        ch->kind = CHANNEL_KIND_STDIO;
    } else if (port != NULL) {
        ch->given = g_strdup(port);
        if (stat(port, &st) == 0 && !S_ISCHR(st.st_mode) && !S_ISSOCK(st.st_mode)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "--port %s: neither a character device nor a unix socket", port);
            return NULL;
        }
    }
    return g_steal_pointer(&ch);
}

void channel_free(Channel *ch)
{
    if (ch == NULL)
        return;
    channel_clear_timer(ch);
    channel_close_fds(ch);
    g_clear_pointer(&ch->framer, bl_framer_free);
    if (ch->wbuf != NULL)
        g_string_free(ch->wbuf, TRUE);
    g_free(ch->root);
    g_free(ch->given);
    g_free(ch->path);
    g_free(ch);
}

void channel_start(Channel *ch)
{
    channel_open(ch);
}

void channel_kick(Channel *ch)
{
    channel_flush(ch);
}

void channel_restart(Channel *ch, guint delay_ms)
{
    gboolean was_connected = ch->state == CHANNEL_CONNECTED;

    if (ch->kind == CHANNEL_KIND_STDIO)
        return; /* nothing to reopen */
    ch->generation++;
    channel_clear_timer(ch);
    channel_close_fds(ch);
    channel_drop_output(ch);
    ch->state = CHANNEL_CLOSED;
    channel_schedule_open(ch, delay_ms);
    if (was_connected)
        ch->cb.disconnected(FALSE, ch->user_data);
}

gboolean channel_connected(const Channel *ch)
{
    return ch->state == CHANNEL_CONNECTED;
}

ChannelKind channel_kind(const Channel *ch)
{
    return ch->kind;
}
