/* SPDX-License-Identifier: GPL-2.0-or-later */
/* --check-image: module names, modules.builtin, verdicts, fixture images in tests/data/image-*. */
#include <glib.h>
#include <string.h>

#include "detect.h"
#include "image.h"

static char *data_dir(const char *tree)
{
    const char *base = g_getenv("BALLAST_TEST_DATA");

    g_assert_nonnull(base);
    return g_build_filename(base, tree, NULL);
}

static void test_module_file(void)
{
    g_assert_true(image_is_module_file("virtio_balloon.ko", "virtio_balloon"));
    g_assert_true(image_is_module_file("virtio_balloon.ko.xz", "virtio_balloon"));
    g_assert_true(image_is_module_file("virtio_balloon.ko.zst", "virtio_balloon"));
    g_assert_true(image_is_module_file("virtio_balloon.ko.gz", "virtio_balloon"));
    g_assert_false(image_is_module_file("virtio_balloon.ko.bz2", "virtio_balloon"));
    g_assert_false(image_is_module_file("virtio_balloon_extra.ko", "virtio_balloon"));
    g_assert_false(image_is_module_file("virtio_balloon", "virtio_balloon"));
    g_assert_false(image_is_module_file("xvirtio_balloon.ko", "virtio_balloon"));
    g_assert_false(image_is_module_file("virtio_console.ko", "virtio_balloon"));
}

static void test_builtin_list(void)
{
    const char *text = "kernel/drivers/virtio/virtio.ko\n"
                       "kernel/drivers/virtio/virtio_balloon.ko\n"
                       "kernel/drivers/char/xvirtio_console.ko";

    g_assert_true(image_builtin_lists(text, strlen(text), "virtio_balloon"));
    g_assert_true(image_builtin_lists(text, strlen(text), "virtio"));
    g_assert_false(image_builtin_lists(text, strlen(text), "virtio_console"));
    g_assert_true(image_builtin_lists("virtio_console.ko", 17, "virtio_console"));
    /* cut inside the name: not listed */
    g_assert_false(image_builtin_lists(text, 50, "virtio_balloon"));
    g_assert_false(image_builtin_lists("", 0, "virtio_balloon"));
}

static void test_kconfig_symbol(void)
{
    const char *cfg = "CONFIG_VIRTIO_BALLOON=y\n# CONFIG_VIRTIO_CONSOLE is not set\n";

    g_assert_cmpint(detect_parse_kconfig_symbol(cfg, strlen(cfg), "CONFIG_VIRTIO_BALLOON"), ==,
                    BL_KCONFIG_Y);
    g_assert_cmpint(detect_parse_kconfig_symbol(cfg, strlen(cfg), "CONFIG_VIRTIO_CONSOLE"), ==,
                    BL_KCONFIG_N);
    g_assert_cmpint(detect_parse_kconfig_symbol(cfg, strlen(cfg), "CONFIG_VIRTIO"), ==,
                    BL_KCONFIG_N); /* absent from a config */
    g_assert_cmpint(
        detect_parse_kconfig_symbol("CONFIG_VIRTIO_CONSOLE=m", 23, "CONFIG_VIRTIO_CONSOLE"), ==,
        BL_KCONFIG_M);
}

static void test_driver_state(void)
{
    ImageKernel k = {.release = (char *)"r", .has_modules = TRUE};
    ImageDriver d = {.module = "virtio_balloon", .symbol = "CONFIG_VIRTIO_BALLOON"};

    d.kconfig = BL_KCONFIG_Y;
    g_assert_cmpint(image_driver_state(&k, &d), ==, IMAGE_DRV_READY_BUILTIN);
    d.kconfig = BL_KCONFIG_M;
    g_assert_cmpint(image_driver_state(&k, &d), ==, IMAGE_DRV_MISSING);
    d.ko = (char *)"lib/modules/r/virtio_balloon.ko";
    g_assert_cmpint(image_driver_state(&k, &d), ==, IMAGE_DRV_READY_MODULE);
    d.ko = NULL;
    d.kconfig = BL_KCONFIG_N;
    g_assert_cmpint(image_driver_state(&k, &d), ==, IMAGE_DRV_MISSING);
    d.kconfig = BL_KCONFIG_UNKNOWN;
    g_assert_cmpint(image_driver_state(&k, &d), ==, IMAGE_DRV_MISSING);
    d.builtin = TRUE;
    g_assert_cmpint(image_driver_state(&k, &d), ==, IMAGE_DRV_READY_BUILTIN);
    d.builtin = FALSE;
    k.has_modules = FALSE;
    g_assert_cmpint(image_driver_state(&k, &d), ==, IMAGE_DRV_UNKNOWN);
}

static ImageFacts *scan(const char *tree)
{
    g_autofree char *root = data_dir(tree);
    g_autoptr(GError) error = NULL;
    ImageFacts *f = image_scan(root, &error);

    g_assert_no_error(error);
    g_assert_nonnull(f);
    return f;
}

static void test_scan_debian(void)
{
    g_autoptr(ImageFacts) f = scan("image-debian");
    g_autofree char *text = NULL;
    const ImageKernel *k;

    g_assert_cmpuint(f->kernels->len, ==, 1);
    k = f->kernels->pdata[0];
    g_assert_cmpstr(k->release, ==, "6.1.0-99-cloud-amd64");
    g_assert_true(k->has_config);
    g_assert_cmpstr(k->drv[0].ko, ==,
                    "lib/modules/6.1.0-99-cloud-amd64/kernel/drivers/virtio/virtio_balloon.ko");
    g_assert_cmpstr(k->drv[1].ko, ==,
                    "lib/modules/6.1.0-99-cloud-amd64/kernel/drivers/char/virtio_console.ko.xz");
    g_assert_true(f->has_systemd);
    g_assert_cmpstr(f->unit, ==, "lib/systemd/system/ballast-agent.service");
    g_assert_cmpstr(f->rule, ==, "lib/udev/rules.d/90-ballast-agent.rules");
    g_assert_null(f->enabled);
    g_assert_true(image_ready(f));
    text = image_describe(f, "/img");
    g_assert_null(strstr(text, "FAIL"));
    g_assert_null(strstr(text, "warning"));
    g_assert_nonnull(strstr(text, "verdict: ready"));
}

static void test_scan_noballoon(void)
{
    g_autoptr(ImageFacts) f = scan("image-noballoon");
    g_autofree char *text = NULL;

    g_assert_cmpuint(f->kernels->len, ==, 2);
    /* sorted: the built-in kernel first, and it is ready */
    g_assert_cmpstr(((ImageKernel *)f->kernels->pdata[0])->release, ==, "5.10.0-builtin");
    g_assert_false(image_ready(f));
    text = image_describe(f, "/img");
    g_assert_nonnull(strstr(text, "ok: kernel 5.10.0-builtin: virtio_balloon is built in\n"));
    g_assert_nonnull(strstr(text, "FAIL: kernel 6.1.0-99-cloud-amd64: CONFIG_VIRTIO_BALLOON=m but "
                                  "no virtio_balloon.ko*"));
    g_assert_nonnull(strstr(text, "ok: kernel 6.1.0-99-cloud-amd64: virtio_console is a module"));
    g_assert_nonnull(strstr(text, "FAIL: udev rule 90-ballast-agent.rules is not installed"));
    g_assert_nonnull(strstr(text, "warning: ballast-agent.service is enabled"));
    g_assert_nonnull(strstr(text, "verdict: NOT ready"));
}

static void test_scan_nosystemd(void)
{
    g_autoptr(ImageFacts) f = scan("image-nosystemd");
    g_autofree char *text = NULL;

    g_assert_cmpuint(f->kernels->len, ==, 1);
    g_assert_false(f->has_systemd);
    /* no systemd: a missing unit and rule are warnings, the kernel decides */
    g_assert_true(image_ready(f));
    text = image_describe(f, "/img");
    g_assert_nonnull(strstr(text, "ok: kernel 6.6.0-alpine: virtio_console is built in"));
    g_assert_nonnull(strstr(text, "warning: unit ballast-agent.service is not installed"));
    g_assert_null(strstr(text, "FAIL"));
}

static void test_scan_no_kernel(void)
{
    g_autoptr(ImageFacts) f = scan("guest-none");
    g_autofree char *text = image_describe(f, "/img");
    g_autoptr(GError) error = NULL;

    g_assert_cmpuint(f->kernels->len, ==, 0);
    g_assert_false(image_ready(f));
    g_assert_nonnull(strstr(text, "FAIL: no kernel in /img"));
    g_assert_null(image_scan("/nonexistent/ballast", &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR);
}

static void test_environ_container(void)
{
    static const char podman[] = "PATH=/bin\0container=podman\0HOME=/";
    static const char plain[] = "PATH=/bin\0HOME=/\0xcontainer=no";

    g_assert_true(detect_environ_container(podman, sizeof(podman) - 1));
    g_assert_false(detect_environ_container(plain, sizeof(plain) - 1));
    g_assert_false(detect_environ_container("container=", 10)); /* empty value */
    g_assert_false(detect_environ_container("", 0));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/image/module-file", test_module_file);
    g_test_add_func("/image/builtin-list", test_builtin_list);
    g_test_add_func("/image/kconfig-symbol", test_kconfig_symbol);
    g_test_add_func("/image/driver-state", test_driver_state);
    g_test_add_func("/image/scan-debian", test_scan_debian);
    g_test_add_func("/image/scan-noballoon", test_scan_noballoon);
    g_test_add_func("/image/scan-nosystemd", test_scan_nosystemd);
    g_test_add_func("/image/scan-no-kernel", test_scan_no_kernel);
    g_test_add_func("/image/environ-container", test_environ_container);
    return g_test_run();
}
