/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The only code that touches the port: the virtio-serial port (found by name
 * or given), a unix socket (tests, plain QEMU), or stdin/stdout ("-").
 *
 * Never blocks, never spins. Output is pulled: whenever the port can take
 * bytes and the previous message is fully written, the channel asks the
 * owner for the next one (fill), so nothing queues behind a slow or absent
 * host. A virtio port without a host side reads 0, polls POLLHUP forever and
 * refuses writes with EAGAIN: the channel then stops watching the fd and
 * looks again on a timer, and reports "connected" when the host is back.
 */
#pragma once

#include <glib.h>

/* How often to look for a returning host side of a virtio port. */
#define CHANNEL_RECHECK_MS 500
/* How often to look for a port that does not exist (yet) or cannot open. */
#define CHANNEL_REOPEN_MS 2000
/* Unix socket reconnect backoff: from ..MIN, doubling up to ..MAX. */
#define CHANNEL_BACKOFF_MIN_MS 100
#define CHANNEL_BACKOFF_MAX_MS 5000

typedef enum {
    CHANNEL_KIND_DEVICE, /* character device: virtio-serial port */
    CHANNEL_KIND_SOCKET, /* unix stream socket path, connected to */
    CHANNEL_KIND_STDIO,  /* "-": stdout out, stdin in */
} ChannelKind;

typedef struct {
    /* The host side is there (again): the owner queues hello. */
    void (*connected)(gpointer user_data);
    /* It went away. final: it cannot come back (stdout closed). */
    void (*disconnected)(gboolean final, gpointer user_data);
    /* One input line (NUL-terminated, without '\n'). Answers are written
     * (fill is called) once the read that carried it is handled. */
    void (*line)(const char *line, gsize len, gpointer user_data);
    /* Append the next message to out; FALSE when nothing is pending. */
    gboolean (*fill)(GString *out, gpointer user_data);
} ChannelCallbacks;

typedef struct Channel Channel;

/*
 * port: a path (device or socket), "-", or NULL to find the virtio port by
 * name under root (sysfs) and /dev. Fails only on a bad --port (neither a
 * character device nor a socket); a missing port is waited for.
 */
Channel *channel_new(const char *root, const char *port, const ChannelCallbacks *cb,
                     gpointer user_data, GError **error);
void channel_free(Channel *ch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Channel, channel_free)

/* Start: open/connect (possibly later). Callbacks may run from here on. */
void channel_start(Channel *ch);

/* Something became pending: write what the port takes now. */
void channel_kick(Channel *ch);

/* Close and reopen after delay_ms (e.g. the peer speaks another major). */
void channel_restart(Channel *ch, guint delay_ms);

gboolean channel_connected(const Channel *ch);
ChannelKind channel_kind(const Channel *ch);

/*
 * Find the port: root/dev/virtio-ports/<name> if udev made it, else the
 * vportNpM whose root/sys/class/virtio-ports/vportNpM/name is <name>, as
 * "root/dev/vportNpM". NULL when there is none.
 */
char *channel_find_port(const char *root, const char *name);
