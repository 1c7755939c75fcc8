/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Balloon detection: kconfig text, sysfs fixture trees in tests/data/guest-*. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "channel.h"
#include "detect.h"

static char *data_dir(const char *tree)
{
    const char *base = g_getenv("BALLAST_TEST_DATA");

    g_assert_nonnull(base);
    return g_build_filename(base, tree, NULL);
}

static void test_kconfig_parse(void)
{
    struct {
        const char *text;
        BlKconfig want;
    } cases[] = {
        {"CONFIG_VIRTIO=y\nCONFIG_VIRTIO_BALLOON=y\n", BL_KCONFIG_Y},
        {"CONFIG_VIRTIO_BALLOON=m", BL_KCONFIG_M},
        {"CONFIG_VIRTIO_BALLOON=n\n", BL_KCONFIG_N},
        {"# CONFIG_VIRTIO_BALLOON is not set\n", BL_KCONFIG_N},
        {"CONFIG_VIRTIO_BALLOON_FOO=y\nCONFIG_VIRTIO=m\n", BL_KCONFIG_N}, /* absent in a config */
        {"# CONFIG_VIRTIO_BALLOON_X is not set\nCONFIG_VIRTIO_BALLOON=m\n", BL_KCONFIG_M},
        {"CONFIG_VIRTIO_BALLOON=yes\n", BL_KCONFIG_UNKNOWN},
        {"CONFIG_VIRTIO_BALLOON=\n", BL_KCONFIG_UNKNOWN},
        {" CONFIG_VIRTIO_BALLOON=y\n", BL_KCONFIG_UNKNOWN}, /* not at line start */
        {"", BL_KCONFIG_UNKNOWN},
        {"garbage\n\x01\x02\n", BL_KCONFIG_UNKNOWN},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmpint(detect_parse_kconfig(cases[i].text, strlen(cases[i].text)), ==,
                        cases[i].want);
    /* cut inside the value: "CONFIG_VIRTIO_BALLOON=" alone */
    g_assert_cmpint(detect_parse_kconfig("CONFIG_VIRTIO_BALLOON=m", 22), ==, BL_KCONFIG_UNKNOWN);
}

static void test_hex_id(void)
{
    guint id = 0;

    g_assert_true(detect_parse_hex_id("0x1af4\n", 7, &id));
    g_assert_cmphex(id, ==, 0x1af4);
    g_assert_true(detect_parse_hex_id("1045", 4, &id));
    g_assert_cmphex(id, ==, 0x1045);
    g_assert_false(detect_parse_hex_id("", 0, &id));
    g_assert_false(detect_parse_hex_id("0x", 2, &id));
    g_assert_false(detect_parse_hex_id("0x1g", 4, &id));
    g_assert_false(detect_parse_hex_id("0x123456789", 11, &id));
    g_assert_false(detect_parse_hex_id("-0x1", 4, &id));
}

typedef struct {
    const char *tree;
    gboolean present, bound;
    guint n_pci;
    const char *pci0, *pci1;
    BlKconfig kconfig;
} TreeCase;

static void check_tree(gconstpointer data)
{
    const TreeCase *c = data;
    g_autofree char *root = data_dir(c->tree);
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    BlBalloonFacts f;

    g_assert_true(detect_balloon(root, &f, &error));
    g_assert_no_error(error);
    g_assert_cmpint(f.present, ==, c->present);
    g_assert_cmpint(f.driver_bound, ==, c->bound);
    g_assert_cmpuint(f.n_pci, ==, c->n_pci);
    if (c->pci0)
        g_assert_cmpstr(f.pci[0], ==, c->pci0);
    if (c->pci1)
        g_assert_cmpstr(f.pci[1], ==, c->pci1);
    f.kconfig = detect_kconfig(root, "6.1.0-13-cloud-amd64");
    g_assert_cmpint(f.kconfig, ==, c->kconfig);
    g_assert_cmpint(detect_usable(&f), ==, c->present && c->bound);

    text = detect_describe(&f, "6.1.0-13-cloud-amd64");
    g_assert_nonnull(strstr(text, c->present && c->bound ? "verdict: usable" : "NOT usable"));
    if (!c->present)
        g_assert_nonnull(strstr(text, "memballoon"));
    else if (!c->bound && c->kconfig == BL_KCONFIG_M)
        g_assert_nonnull(strstr(text, "modprobe virtio_balloon"));
    else if (!c->bound && c->kconfig == BL_KCONFIG_N)
        g_assert_nonnull(strstr(text, "without CONFIG_VIRTIO_BALLOON"));
}

static const TreeCase tree_cases[] = {
    {"guest-1002-bound", TRUE, TRUE, 1, "0000:00:03.0", NULL, BL_KCONFIG_M},
    {"guest-1045-bound", TRUE, TRUE, 2, "0000:01:00.0", "0000:05:00.0", BL_KCONFIG_Y},
    {"guest-unbound", TRUE, FALSE, 1, "0000:00:03.0", NULL, BL_KCONFIG_N},
    {"guest-unbound-m", TRUE, FALSE, 1, "0000:00:03.0", NULL, BL_KCONFIG_M},
    {"guest-none", FALSE, FALSE, 0, NULL, NULL, BL_KCONFIG_UNKNOWN},
    {"guest-configgz", TRUE, TRUE, 1, "0000:00:03.0", NULL, BL_KCONFIG_M},
};

static void test_no_sysfs(void)
{
    g_autofree char *root = data_dir("does-not-exist");
    g_autoptr(GError) error = NULL;
    BlBalloonFacts f;

    g_assert_false(detect_balloon(root, &f, &error));
    g_assert_nonnull(error);
    g_assert_cmpint(detect_kconfig(root, "6.1.0"), ==, BL_KCONFIG_UNKNOWN);
}

/* Hostile kernel releases never escape root; a corrupt config.gz is "unknown". */
static void test_kconfig_hostile(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("ballast-detect-XXXXXX", &error);
    g_autofree char *proc = g_build_filename(dir, "proc", NULL);
    g_autofree char *gz = g_build_filename(proc, "config.gz", NULL);
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    /* valid gzip header, then a truncated deflate stream */
    static const char corrupt[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x73\x76";

    g_assert_no_error(error);
    g_assert_cmpint(g_mkdir(proc, 0755), ==, 0);
    g_assert_cmpint(detect_kconfig(dir, "../../etc/x"), ==, BL_KCONFIG_UNKNOWN);
    g_assert_cmpint(detect_kconfig(dir, ".."), ==, BL_KCONFIG_UNKNOWN);
    g_assert_true(g_file_set_contents(gz, corrupt, sizeof(corrupt) - 1, &error));
    g_assert_cmpint(detect_kconfig(dir, "6.1.0"), ==, BL_KCONFIG_UNKNOWN);
    g_assert_true(g_file_set_contents(gz, "not gzip at all", -1, &error));
    g_assert_cmpint(detect_kconfig(dir, "6.1.0"), ==, BL_KCONFIG_UNKNOWN);
    g_assert_cmpint(system(cmd), ==, 0);
}

static void test_find_port(void)
{
    g_autofree char *root = data_dir("guest-1002-bound");
    g_autofree char *none = data_dir("does-not-exist");
    g_autofree char *port = channel_find_port(root, "org.ballast.agent.0");
    g_autofree char *qga = channel_find_port(root, "org.qemu.guest_agent.0");
    g_autofree char *missing = channel_find_port(root, "org.example.nope");
    g_autofree char *noroot = channel_find_port(none, "org.ballast.agent.0");

    g_assert_cmpstr(port, ==, "/dev/vport1p1");
    g_assert_cmpstr(qga, ==, "/dev/vport1p2");
    g_assert_null(missing);
    g_assert_null(noroot);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/detect/kconfig-parse", test_kconfig_parse);
    g_test_add_func("/detect/hex-id", test_hex_id);
    for (gsize i = 0; i < G_N_ELEMENTS(tree_cases); i++) {
        g_autofree char *name = g_strdup_printf("/detect/tree/%s", tree_cases[i].tree);

        g_test_add_data_func(name, &tree_cases[i], check_tree);
    }
    g_test_add_func("/detect/no-sysfs", test_no_sysfs);
    g_test_add_func("/detect/kconfig-hostile", test_kconfig_hostile);
    g_test_add_func("/detect/find-port", test_find_port);
    return g_test_run();
}
