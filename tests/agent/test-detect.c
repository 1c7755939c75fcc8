/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Balloon detection: kconfig text, sysfs fixture trees in tests/data/guest-*. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "channel.h"
#include "detect.h"
#include "gunzip.h"
#include <zlib.h>

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

/* No device and no driver in the kernel: the verdict names both fixes. */
static void test_describe_both_missing(void)
{
    BlBalloonFacts f = {.kconfig = BL_KCONFIG_N};
    g_autofree char *text = detect_describe(&f, "6.1.0");

    g_assert_false(detect_usable(&f));
    g_assert_nonnull(strstr(text, "NOT usable"));
    g_assert_nonnull(strstr(text, "memballoon"));
    g_assert_nonnull(strstr(text, "built without it"));
    f.kconfig = BL_KCONFIG_M;
    g_free(text);
    text = detect_describe(&f, "6.1.0");
    g_assert_null(strstr(text, "built without"));
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

    g_autofree char *want_port = g_build_filename(root, "dev", "vport1p1", NULL);
    g_autofree char *want_qga = g_build_filename(root, "dev", "vport1p2", NULL);

    /* under the root, not the test machine's /dev */
    g_assert_cmpstr(port, ==, want_port);
    g_assert_cmpstr(qga, ==, want_qga);
    g_assert_null(missing);
    g_assert_null(noroot);
}

/* The udev link is looked up under the root too; a name file too big to be a
 * port name is skipped, not truncated into a match. */
static void test_find_port_root(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("ballast-port-XXXXXX", &error);
    g_autofree char *big_dir = NULL, *big = NULL, *udev_dir = NULL, *udev = NULL;
    g_autofree char *found = NULL, *cmd = NULL;
    GString *huge = g_string_new("org.ballast.agent.0");

    g_assert_no_error(error);
    big_dir = g_build_filename(dir, "sys/class/virtio-ports/vport0p1", NULL);
    big = g_build_filename(big_dir, "name", NULL);
    g_assert_cmpint(g_mkdir_with_parents(big_dir, 0700), ==, 0);
    while (huge->len < 1024 * 1024)
        g_string_append_c(huge, ' ');
    g_string_append(huge, "x\n");
    g_assert_true(g_file_set_contents(big, huge->str, (gssize)huge->len, &error));
    g_string_free(huge, TRUE);
    g_assert_null(channel_find_port(dir, "org.ballast.agent.0"));

    udev_dir = g_build_filename(dir, "dev/virtio-ports", NULL);
    udev = g_build_filename(udev_dir, "org.ballast.agent.0", NULL);
    g_assert_cmpint(g_mkdir_with_parents(udev_dir, 0700), ==, 0);
    g_assert_true(g_file_set_contents(udev, "", 0, &error));
    found = channel_find_port(dir, "org.ballast.agent.0");
    g_assert_cmpstr(found, ==, udev);

    cmd = g_strdup_printf("rm -rf '%s'", dir);
    g_assert_cmpint(system(cmd), ==, 0);
}

static GBytes *gzip_bytes(const void *data, gsize len)
{
    z_stream z = {0};
    gsize cap = compressBound((uLong)len) + 64;
    guint8 *out = g_malloc(cap);

    /* 16 + MAX_WBITS: gzip framing, as /proc/config.gz has */
    g_assert_cmpint(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), ==,
                    Z_OK);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    g_assert_cmpint(deflate(&z, Z_FINISH), ==, Z_STREAM_END);
    g_assert_cmpint(deflateEnd(&z), ==, Z_OK);
    return g_bytes_new_take(out, z.total_out);
}

static void test_gunzip(void)
{
    gsize n = 1024 * 1024;
    g_autofree char *zeros = g_malloc0(n);
    g_autoptr(GBytes) gz = gzip_bytes(zeros, n);
    g_autoptr(GBytes) plain = NULL;
    g_autoptr(GError) error = NULL;
    gsize gz_len;
    const char *gz_data = g_bytes_get_data(gz, &gz_len);

    plain = gunzip_bytes(gz_data, gz_len, n, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_bytes_get_size(plain), ==, n);
    g_assert_cmpmem(g_bytes_get_data(plain, NULL), n, zeros, n);
    g_clear_pointer(&plain, g_bytes_unref);
    /* a zip bomb stops at the bound */
    plain = gunzip_bytes(gz_data, gz_len, n - 1, &error);
    g_assert_null(plain);
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED);
    g_clear_error(&error);
    /* every truncation fails cleanly */
    for (gsize cut = 0; cut < gz_len; cut += 1 + cut / 8) {
        plain = gunzip_bytes(gz_data, cut, n, &error);
        g_assert_null(plain);
        g_assert_nonnull(error);
        g_clear_error(&error);
    }
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
    g_test_add_func("/detect/describe-both-missing", test_describe_both_missing);
    g_test_add_func("/detect/find-port", test_find_port);
    g_test_add_func("/detect/find-port-root", test_find_port_root);
    g_test_add_func("/detect/gunzip", test_gunzip);
    return g_test_run();
}
