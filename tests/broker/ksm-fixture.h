/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test helpers for the ksm suite: copy a fixture tree from tests/data into a
 * fresh temporary directory (tests write into it), read and write its files.
 */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

static inline void ksm_fixture_copy_dir(const char *from, const char *to)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) dir = g_dir_open(from, 0, &error);
    const char *name;

    g_assert_no_error(error);
    g_assert_cmpint(g_mkdir_with_parents(to, 0755), ==, 0);
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *src = g_build_filename(from, name, NULL);
        g_autofree char *dst = g_build_filename(to, name, NULL);

        if (g_file_test(src, G_FILE_TEST_IS_DIR)) {
            ksm_fixture_copy_dir(src, dst);
        } else {
            g_autofree char *data = NULL;
            gsize len = 0;

            g_assert_true(g_file_get_contents(src, &data, &len, &error));
            g_assert_true(g_file_set_contents(dst, data, (gssize)len, &error));
        }
    }
}

static inline void ksm_fixture_rm_rf(const char *path)
{
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        while (dir && (name = g_dir_read_name(dir))) {
            g_autofree char *child = g_build_filename(path, name, NULL);

            ksm_fixture_rm_rf(child);
        }
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

/* A writable copy of tests/data/<name>; free with ksm_fixture_free(). */
static inline char *ksm_fixture_new(const char *name)
{
    const char *data = g_getenv("BALLAST_TEST_DATA");
    g_autoptr(GError) error = NULL;
    g_autofree char *src = NULL;
    g_autofree char *tmp = g_dir_make_tmp("ballast-ksm-XXXXXX", &error);

    g_assert_no_error(error);
    g_assert_nonnull(data);
    src = g_build_filename(data, name, NULL);
    g_assert_true(g_file_test(src, G_FILE_TEST_IS_DIR));
    ksm_fixture_copy_dir(src, tmp);
    return g_steal_pointer(&tmp);
}

static inline void ksm_fixture_free(char *root)
{
    ksm_fixture_rm_rf(root);
    g_free(root);
}

static inline char *ksm_fixture_read(const char *root, const char *rel)
{
    g_autofree char *path = g_build_filename(root, rel, NULL);
    char *data = NULL;

    if (!g_file_get_contents(path, &data, NULL, NULL))
        return NULL;
    return data;
}

static inline void ksm_fixture_write(const char *root, const char *rel, const char *text)
{
    g_autofree char *path = g_build_filename(root, rel, NULL);
    g_autofree char *dir = g_path_get_dirname(path);
    g_autoptr(GError) error = NULL;

    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    g_assert_true(g_file_set_contents(path, text, -1, &error));
}
