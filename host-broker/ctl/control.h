/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: a unix stream socket; a client sends one JSON request
 * line, gets one JSON response line, and the broker closes the connection.
 * ballastctl is the client. Requests are bounded (CONTROL_REQUEST_MAX).
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#define CONTROL_REQUEST_MAX 4096
/* A client that sends no request, or does not read its response, this long
 * (seconds of inactivity) is dropped: it must not hold a descriptor forever. */
#define CONTROL_CLIENT_TIMEOUT_S 10

typedef struct Control Control;

/* Handle one request ({"cmd": ...}); return the response object (owned by
 * the caller). Called from the main loop. */
typedef json_object *(*ControlHandler)(const char *cmd, json_object *request, gpointer user_data);

/* Creates the parent directory (0755) if needed and the socket owner-only
 * (0600; see control_set_group); refuses to take over the
 * socket of a broker that still answers. */
Control *control_new(const char *path, ControlHandler handler, gpointer user_data, GError **error);
void control_free(Control *c);
/* Who may use the socket: its owner only (group NULL or ""), or also the
 * members of group (chown to it, mode 0660). FALSE, the socket left at
 * owner-only, when the group does not exist or the change fails. */
gboolean control_set_group(Control *c, const char *group, GError **error);
/* Change CONTROL_CLIENT_TIMEOUT_S for the clients that connect from now on (tests). */
void control_set_client_timeout(Control *c, guint seconds);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Control, control_free)

/* {"ok":false,"error":msg} */
json_object *control_error(const char *msg);
