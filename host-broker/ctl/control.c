/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "control.h"

#include <errno.h>
#include <grp.h>
#include <unistd.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

struct Control {
    char *path;
    GSocketService *service;
    ControlHandler handler;
    gpointer user_data;
    guint client_timeout_s;
    GCancellable *cancel; /* cancelled by control_free: every client's I/O */
    GHashTable *clients;  /* ControlClient * still in flight */
};

typedef struct {
    Control *control;
    GSocketConnection *conn;
    char buf[CONTROL_REQUEST_MAX];
    gsize len;
    GString *reply;
} ControlClient;

static void client_free(ControlClient *cl)
{
    /* cl->control is NULL once control_free() has let go of this client. */
    if (cl->control != NULL)
        g_hash_table_remove(cl->control->clients, cl);
    g_object_unref(cl->conn);
    if (cl->reply)
        g_string_free(cl->reply, TRUE);
    g_free(cl);
}

json_object *control_error(const char *msg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(FALSE));
    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

static void on_written(GObject *src, GAsyncResult *res, gpointer user_data)
{
    ControlClient *cl = user_data;

    g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, NULL, NULL);
    g_io_stream_close(G_IO_STREAM(cl->conn), NULL, NULL);
    client_free(cl);
}

static void client_answer(ControlClient *cl, json_object *response)
{
    cl->reply = g_string_new(json_object_to_json_string_ext(
        response, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    g_string_append_c(cl->reply, '\n');
    json_object_put(response);
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(cl->conn));
    g_output_stream_write_all_async(out, cl->reply->str, cl->reply->len, G_PRIORITY_DEFAULT,
                                    cl->control ? cl->control->cancel : NULL, on_written, cl);
}

static void client_handle(ControlClient *cl, gsize line_len)
{
    json_tokener *tok = json_tokener_new_ex(16);
    json_object *req = json_tokener_parse_ex(tok, cl->buf, (int)line_len);
    json_object *cmd = NULL;

    if (req == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(req, json_type_object) ||
        !json_object_object_get_ex(req, "cmd", &cmd) ||
        !json_object_is_type(cmd, json_type_string)) {
        client_answer(cl, control_error("want one JSON object with a \"cmd\" string"));
    } else {
        client_answer(
            cl, cl->control->handler(json_object_get_string(cmd), req, cl->control->user_data));
    }
    json_object_put(req);
    json_tokener_free(tok);
}

static void on_read(GObject *src, GAsyncResult *res, gpointer user_data)
{
    ControlClient *cl = user_data;
    gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, NULL);

    /* A read that completed after control_free(): the broker behind the
     * handler may be gone, so the request is not served. */
    if (cl->control == NULL) {
        client_free(cl);
        return;
    }
    if (n < 0) {
        client_free(cl); /* a read error, or the client timed out */
        return;
    }
    if (n == 0) {
        if (cl->len > 0) {
            client_handle(cl, cl->len); /* a last line without '\n' */
            return;
        }
        client_free(cl);
        return;
    }
    const char *nl = memchr(cl->buf + cl->len, '\n', (gsize)n);
    cl->len += (gsize)n;
    if (nl != NULL) {
        client_handle(cl, (gsize)(nl - cl->buf));
        return;
    }
    if (cl->len >= sizeof(cl->buf)) {
        client_answer(cl, control_error("request too long"));
        return;
    }
    g_input_stream_read_async(G_INPUT_STREAM(src), cl->buf + cl->len, sizeof(cl->buf) - cl->len,
                              G_PRIORITY_DEFAULT, cl->control->cancel, on_read, cl);
}

static gboolean on_incoming(GSocketService *svc, GSocketConnection *conn, GObject *src,
                            gpointer user_data)
{
    ControlClient *cl = g_new0(ControlClient, 1);

    cl->control = user_data;
    cl->conn = g_object_ref(conn);
    g_hash_table_add(cl->control->clients, cl);
    /* Also bounds the async read and write below: they fail with
     * G_IO_ERROR_TIMED_OUT, and the client is freed. */
    g_socket_set_timeout(g_socket_connection_get_socket(conn), cl->control->client_timeout_s);
    GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
    g_input_stream_read_async(in, cl->buf, sizeof(cl->buf), G_PRIORITY_DEFAULT, cl->control->cancel,
                              on_read, cl);
    return TRUE;
}

/* Is a broker still answering on path? Then it is not ours to remove. */
static gboolean socket_alive(const char *path)
{
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    g_autoptr(GSocketConnection) conn =
        g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr), NULL, NULL);
    return conn != NULL;
}

Control *control_new(const char *path, ControlHandler handler, gpointer user_data, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    GStatBuf st;

    if (g_mkdir_with_parents(dir, 0755) < 0) {
        int saved = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", dir,
                    g_strerror(saved));
        return NULL;
    }
    if (g_lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST, "%s exists and is not a socket",
                        path);
            return NULL;
        }
        if (socket_alive(path)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                        "%s: another ballastd is listening there", path);
            return NULL;
        }
        g_unlink(path);
    }

    Control *c = g_new0(Control, 1);
    c->path = g_strdup(path);
    c->handler = handler;
    c->user_data = user_data;
    c->client_timeout_s = CONTROL_CLIENT_TIMEOUT_S;
    c->cancel = g_cancellable_new();
    c->clients = g_hash_table_new(g_direct_hash, g_direct_equal);
    c->service = g_socket_service_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(c->service), addr, G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, error)) {
        g_object_unref(c->service);
        g_object_unref(c->cancel);
        g_hash_table_destroy(c->clients);
        g_free(c->path);
        g_free(c);
        return NULL;
    }
    /* Status is harmless, but set, release and reload are not: the owner
     * (root) only, unless a group is let in. */
    g_chmod(path, 0600);
    g_signal_connect(c->service, "incoming", G_CALLBACK(on_incoming), c);
    g_socket_service_start(c->service);
    return c;
}

gboolean control_set_group(Control *c, const char *group, GError **error)
{
    if (group == NULL || group[0] == '\0') {
        if (g_chmod(c->path, 0600) < 0)
            goto fail;
        return TRUE;
    }
    struct group *gr = getgrnam(group);
    if (gr == NULL) {
        g_chmod(c->path, 0600);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "control_group \"%s\": no such group",
                    group);
        return FALSE;
    }
    if (chown(c->path, (uid_t)-1, gr->gr_gid) < 0 || g_chmod(c->path, 0660) < 0)
        goto fail;
    return TRUE;
fail : {
    int saved = errno;
    g_chmod(c->path, 0600);
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", c->path,
                g_strerror(saved));
    return FALSE;
}
}

void control_set_client_timeout(Control *c, guint seconds)
{
    c->client_timeout_s = seconds;
}

void control_free(Control *c)
{
    GHashTableIter it;
    gpointer cl;

    if (c == NULL)
        return;
    /* No new client, and none in flight reaches the handler again: their
     * callbacks still run (cancelled) and free them, without c. */
    g_signal_handlers_disconnect_by_data(c->service, c);
    g_socket_service_stop(c->service);
    g_socket_listener_close(G_SOCKET_LISTENER(c->service));
    g_object_unref(c->service);
    g_hash_table_iter_init(&it, c->clients);
    while (g_hash_table_iter_next(&it, &cl, NULL))
        ((ControlClient *)cl)->control = NULL;
    g_hash_table_destroy(c->clients);
    g_cancellable_cancel(c->cancel);
    g_object_unref(c->cancel);
    g_unlink(c->path);
    g_free(c->path);
    g_free(c);
}
