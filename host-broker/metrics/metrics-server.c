/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The metrics listener: libsoup's HTTP server on the GLib main loop, one
 * handler. A scrape renders the text afresh: no cache to go stale, and a
 * render is a few microseconds per VM.
 */
#include "metrics.h"

#include <libsoup/soup.h>
#include <string.h>

struct MetricsServer {
    SoupServer *soup;
    char *listen;
    MetricsRenderFunc render;
    gpointer user_data;
};

gboolean metrics_parse_listen(const char *text, GSocketAddress **address, GError **error)
{
    g_autoptr(GSocketConnectable) na = NULL;
    g_autoptr(GError) e = NULL;

    /* g_network_address_parse accepts "host", "host:port" and "[v6]:port";
     * a port is required here and the host must be a literal address (a
     * listener that depends on name resolution at start is a trap). */
    na = g_network_address_parse(text, 0, &e);
    if (na == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "metrics listen address \"%s\": %s (want ADDR:PORT, e.g. 127.0.0.1:9178)", text,
                    e->message);
        return FALSE;
    }
    const char *host = g_network_address_get_hostname(G_NETWORK_ADDRESS(na));
    guint16 port = g_network_address_get_port(G_NETWORK_ADDRESS(na));
    g_autoptr(GInetAddress) ip = g_inet_address_new_from_string(host);
    if (ip == NULL || port == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "metrics listen address \"%s\": want an IP address and a port from 1 to "
                    "65535 (e.g. 127.0.0.1:9178 or [::1]:9178)",
                    text);
        return FALSE;
    }
    *address = g_inet_socket_address_new(ip, port);
    return TRUE;
}

static void on_request(SoupServer *soup, SoupServerMessage *msg, const char *path,
                       GHashTable *query, gpointer user_data)
{
    MetricsServer *server = user_data;
    const char *method = soup_server_message_get_method(msg);

    if (strcmp(path, "/metrics") != 0) {
        soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, NULL);
        return;
    }
    if (strcmp(method, SOUP_METHOD_GET) != 0 && strcmp(method, SOUP_METHOD_HEAD) != 0) {
        soup_message_headers_append(soup_server_message_get_response_headers(msg), "Allow",
                                    "GET, HEAD");
        soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    char *text = server->render(server->user_data);
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response(msg, "text/plain; version=0.0.4; charset=utf-8",
                                     SOUP_MEMORY_TAKE, text, strlen(text));
}

MetricsServer *metrics_server_new(const char *listen, MetricsRenderFunc render, gpointer user_data,
                                  GError **error)
{
    g_autoptr(GSocketAddress) addr = NULL;
    g_autoptr(GError) e = NULL;

    if (!metrics_parse_listen(listen, &addr, error))
        return NULL;
    g_autoptr(MetricsServer) server = g_new0(MetricsServer, 1);
    server->listen = g_strdup(listen);
    server->render = render;
    server->user_data = user_data;
    server->soup = soup_server_new("server-header", NULL, NULL);
    soup_server_add_handler(server->soup, NULL, on_request, server, NULL);
    if (!soup_server_listen(server->soup, addr, 0, &e)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "metrics listener %s: %s", listen,
                    e->message);
        return NULL;
    }
    return g_steal_pointer(&server);
}

void metrics_server_free(MetricsServer *server)
{
    if (server == NULL)
        return;
    if (server->soup) {
        soup_server_disconnect(server->soup);
        g_object_unref(server->soup);
    }
    g_free(server->listen);
    g_free(server);
}

const char *metrics_server_listen(const MetricsServer *server)
{
    return server->listen;
}
