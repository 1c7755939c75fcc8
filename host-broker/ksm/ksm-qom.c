/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP commands and replies for live KSM exclusion (json-c, no hand parsing).
 */
#include "ksm-qom.h"

#include <json-c/json.h>
#include <string.h>

#define KSM_QOM_REPLY_MAX (1u << 20)

GQuark ksm_qom_error_quark(void)
{
    return g_quark_from_static_string("ksm-qom-error-quark");
}

static char *ksm_qom_to_string(json_object *obj)
{
    char *s = g_strdup(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));

    json_object_put(obj);
    return s;
}

char *ksm_qom_list_command(void)
{
    json_object *cmd = json_object_new_object();
    json_object *args = json_object_new_object();

    json_object_object_add(args, "path", json_object_new_string("/objects"));
    json_object_object_add(cmd, "execute", json_object_new_string("qom-list"));
    json_object_object_add(cmd, "arguments", args);
    return ksm_qom_to_string(cmd);
}

char *ksm_qom_set_merge_command(const char *path, gboolean merge)
{
    json_object *cmd = json_object_new_object();
    json_object *args = json_object_new_object();

    json_object_object_add(args, "path", json_object_new_string(path));
    json_object_object_add(args, "property", json_object_new_string("merge"));
    json_object_object_add(args, "value", json_object_new_boolean(merge));
    json_object_object_add(cmd, "execute", json_object_new_string("qom-set"));
    json_object_object_add(cmd, "arguments", args);
    return ksm_qom_to_string(cmd);
}

static gboolean ksm_qom_blank(const char *p)
{
    while (g_ascii_isspace(*p))
        p++;
    return *p == '\0';
}

/* Parse reply; on an "error" member or bad JSON set error. *ret gets "return". */
static json_object *ksm_qom_parse(const char *reply, json_object **ret, GError **error)
{
    json_tokener *tok;
    json_object *root, *err, *desc, *cls;
    gsize len = reply ? strlen(reply) : 0;

    if (len == 0 || len > KSM_QOM_REPLY_MAX) {
        g_set_error(error, KSM_QOM_ERROR, 0, "QMP reply %s", len ? "too long" : "empty");
        return NULL;
    }
    tok = json_tokener_new_ex(32);
    root = json_tokener_parse_ex(tok, reply, (int)len);
    if (!root || json_tokener_get_error(tok) != json_tokener_success ||
        !ksm_qom_blank(reply + json_tokener_get_parse_end(tok)) ||
        !json_object_is_type(root, json_type_object)) {
        json_tokener_free(tok);
        json_object_put(root);
        g_set_error(error, KSM_QOM_ERROR, 0, "QMP reply is not a JSON object");
        return NULL;
    }
    json_tokener_free(tok);
    if (json_object_object_get_ex(root, "error", &err)) {
        const char *d = "no description";
        const char *c = "GenericError";

        if (json_object_object_get_ex(err, "desc", &desc) &&
            json_object_is_type(desc, json_type_string))
            d = json_object_get_string(desc);
        if (json_object_object_get_ex(err, "class", &cls) &&
            json_object_is_type(cls, json_type_string))
            c = json_object_get_string(cls);
        g_set_error(error, KSM_QOM_ERROR, 0, "QMP error %.64s: %.200s", c, d);
        json_object_put(root);
        return NULL;
    }
    if (!json_object_object_get_ex(root, "return", ret)) {
        g_set_error(error, KSM_QOM_ERROR, 0, "QMP reply has neither \"return\" nor \"error\"");
        json_object_put(root);
        return NULL;
    }
    return root;
}

gboolean ksm_qom_check_reply(const char *reply, GError **error)
{
    json_object *ret = NULL;
    json_object *root = ksm_qom_parse(reply, &ret, error);

    json_object_put(root);
    return root != NULL;
}

static gboolean ksm_qom_is_backend_type(const char *type)
{
    static const char *const types[] = {
        "child<memory-backend-ram>",
        "child<memory-backend-file>",
        "child<memory-backend-memfd>",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(types); i++)
        if (g_str_equal(type, types[i]))
            return TRUE;
    return FALSE;
}

static gboolean ksm_qom_name_ok(const char *name)
{
    gsize n = strlen(name);

    if (n == 0 || n > KSM_QOM_NAME_MAX)
        return FALSE;
    for (gsize i = 0; i < n; i++)
        if ((guchar)name[i] < 0x20 || name[i] == '/' || name[i] == 0x7f)
            return FALSE;
    return TRUE;
}

gboolean ksm_qom_parse_backends(const char *reply, GPtrArray **paths, GError **error)
{
    json_object *ret = NULL;
    json_object *root = ksm_qom_parse(reply, &ret, error);
    g_autoptr(GPtrArray) out = NULL;
    gsize n;

    if (!root)
        return FALSE;
    if (!json_object_is_type(ret, json_type_array)) {
        json_object_put(root);
        g_set_error(error, KSM_QOM_ERROR, 0, "qom-list: \"return\" is not an array");
        return FALSE;
    }
    out = g_ptr_array_new_with_free_func(g_free);
    n = json_object_array_length(ret);
    for (gsize i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(ret, i);
        json_object *name, *type;
        const char *nm;

        if (!json_object_is_type(item, json_type_object) ||
            !json_object_object_get_ex(item, "name", &name) ||
            !json_object_object_get_ex(item, "type", &type) ||
            !json_object_is_type(name, json_type_string) ||
            !json_object_is_type(type, json_type_string))
            continue; /* not a property entry this code can use */
        if (!ksm_qom_is_backend_type(json_object_get_string(type)))
            continue;
        nm = json_object_get_string(name);
        if (!ksm_qom_name_ok(nm) || out->len >= KSM_QOM_MAX_BACKENDS) {
            json_object_put(root);
            g_set_error(error, KSM_QOM_ERROR, 0, "qom-list: %s",
                        out->len >= KSM_QOM_MAX_BACKENDS ? "too many memory backends"
                                                         : "bad memory backend name");
            return FALSE;
        }
        g_ptr_array_add(out, g_strconcat("/objects/", nm, NULL));
    }
    json_object_put(root);
    if (out->len == 0) {
        g_set_error(error, KSM_QOM_ERROR, 0,
                    "qom-list /objects: no memory backend (machine without memory-backend: "
                    "the guest RAM cannot be unmerged live)");
        return FALSE;
    }
    *paths = g_steal_pointer(&out);
    return TRUE;
}
