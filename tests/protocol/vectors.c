/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vectors.h"

#include "protocol.h"

#include <string.h>

int vectors_expected_error(const char *name)
{
    for (int code = BL_PROTO_ERROR_JSON; code <= BL_PROTO_ERROR_TOO_LONG; code++) {
        g_autofree char *prefix = g_strconcat(bl_proto_error_name(code), "-", NULL);

        if (g_str_has_prefix(name, prefix))
            return code;
    }
    return -1;
}

static void vector_free(gpointer p)
{
    Vector *v = p;

    g_free(v->name);
    g_free(v->line);
    g_free(v);
}

static gint by_name(gconstpointer a, gconstpointer b)
{
    const Vector *va = *(Vector *const *)a;
    const Vector *vb = *(Vector *const *)b;

    return strcmp(va->name, vb->name);
}

GPtrArray *vectors_load(const char *kind)
{
    const char *root = g_getenv("BALLAST_VECTORS");
    g_autofree char *dir_path = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) dir = NULL;
    GPtrArray *all = g_ptr_array_new_with_free_func(vector_free);
    const char *name;

    g_assert_nonnull(root); /* set by test_env in tests/meson.build */
    dir_path = g_build_filename(root, kind, NULL);
    dir = g_dir_open(dir_path, 0, &error);
    g_assert_no_error(error);
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *path = g_build_filename(dir_path, name, NULL);
        Vector *v;

        if (!g_str_has_suffix(name, ".json"))
            continue;
        v = g_new0(Vector, 1);
        v->name = g_strdup(name);
        g_file_get_contents(path, &v->line, &v->len, &error);
        g_assert_no_error(error);
        if (v->len > 0 && v->line[v->len - 1] == '\n')
            v->line[--v->len] = '\0';
        v->expected = strcmp(kind, "valid") == 0 ? -1 : vectors_expected_error(name);
        g_ptr_array_add(all, v);
    }
    g_ptr_array_sort(all, by_name);
    g_assert_cmpuint(all->len, >, 0);
    return all;
}

char *vectors_padded_report(gsize content_len)
{
    static const char head[] =
        "{\"type\":\"report\",\"v\":1,\"seq\":1,\"uptime_ms\":5,\"reason\":\"periodic\","
        "\"mem\":{\"total_kib\":4,\"available_kib\":3,\"free_kib\":2,\"cached_kib\":1,"
        "\"swap_total_kib\":0,\"swap_free_kib\":0,\"committed_as_kib\":5},\"vmstat\":{},"
        "\"padding\":\"";
    static const char tail[] = "\"}";
    gsize fixed = strlen(head) + strlen(tail);
    GString *s = g_string_sized_new(content_len + 1);

    g_assert_cmpuint(content_len, >=, fixed);
    g_string_append(s, head);
    for (gsize i = 0; i < content_len - fixed; i++)
        g_string_append_c(s, 'x');
    g_string_append(s, tail);
    g_assert_cmpuint(s->len, ==, content_len);
    return g_string_free(s, FALSE);
}
