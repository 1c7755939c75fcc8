/* SPDX-License-Identifier: GPL-2.0-or-later */
/* virtio-balloon detection: see detect.h. */
#include "detect.h"

#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "gunzip.h"
#include "procfs.h"

#define DETECT_KCONFIG_SYMBOL "CONFIG_VIRTIO_BALLOON"
/* A distribution .config is ~250 KB; these bounds leave ample room while
 * keeping a hostile or corrupt file from costing more than a few MB once. */
#define DETECT_CONFIG_MAX    (8 * 1024 * 1024)
#define DETECT_CONFIG_GZ_MAX (2 * 1024 * 1024)

BlKconfig detect_parse_kconfig_symbol(const char *text, gsize len, const char *symbol)
{
    gsize sn = strlen(symbol);
    const char *pos = text, *end = text + len;
    gboolean looks_like_config = FALSE;

    while (pos < end) {
        const char *nl = memchr(pos, '\n', (gsize)(end - pos));
        const char *lend = nl ? nl : end;
        gsize n = (gsize)(lend - pos);

        if (n >= 7 &&
            (memcmp(pos, "CONFIG_", 7) == 0 || (n >= 9 && memcmp(pos, "# CONFIG_", 9) == 0)))
            looks_like_config = TRUE;
        /* "SYMBOL=v" */
        if (n > sn && memcmp(pos, symbol, sn) == 0 && pos[sn] == '=') {
            const char *v = pos + sn + 1;
            gsize vn = (gsize)(lend - v);

            if (vn == 1 && v[0] == 'y')
                return BL_KCONFIG_Y;
            if (vn == 1 && v[0] == 'm')
                return BL_KCONFIG_M;
            if (vn == 1 && v[0] == 'n')
                return BL_KCONFIG_N;
            return BL_KCONFIG_UNKNOWN;
        }
        /* "# SYMBOL is not set" */
        if (n == sn + 13 && memcmp(pos, "# ", 2) == 0 && memcmp(pos + 2, symbol, sn) == 0 &&
            memcmp(pos + 2 + sn, " is not set", 11) == 0)
            return BL_KCONFIG_N;
        pos = lend + (nl ? 1 : 0);
    }
    /* Kconfig omits a symbol whose dependencies (VIRTIO, ...) are off: in a
     * real config, absent means the driver cannot be there. */
    return looks_like_config ? BL_KCONFIG_N : BL_KCONFIG_UNKNOWN;
}

BlKconfig detect_parse_kconfig(const char *text, gsize len)
{
    return detect_parse_kconfig_symbol(text, len, DETECT_KCONFIG_SYMBOL);
}

gboolean detect_parse_hex_id(const char *text, gsize len, guint *id)
{
    guint v = 0;
    gsize i = 0, digits = 0;

    while (len > 0 && g_ascii_isspace(text[len - 1]))
        len--;
    if (len >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
        i = 2;
    for (; i < len; i++, digits++) {
        int d = g_ascii_xdigit_value(text[i]);

        if (d < 0 || digits >= 8)
            return FALSE;
        v = v * 16 + (guint)d;
    }
    if (digits == 0)
        return FALSE;
    *id = v;
    return TRUE;
}

gboolean detect_usable(const BlBalloonFacts *facts)
{
    return facts->present && facts->driver_bound;
}

char *detect_describe(const BlBalloonFacts *facts, const char *kernel)
{
    GString *s = g_string_new(NULL);

    g_string_append_printf(s, "kernel:                %s\n", kernel);
    g_string_append(s, "virtio-balloon device: ");
    if (facts->present) {
        g_string_append(s, "present");
        for (guint i = 0; i < facts->n_pci; i++)
            g_string_append_printf(s, "%s%s", i ? ", " : " at ", facts->pci[i]);
        g_string_append_c(s, '\n');
    } else {
        g_string_append(s, "absent (no PCI function 1af4:1002 or 1af4:1045)\n");
    }
    g_string_append_printf(s, "virtio_balloon driver: %s\n",
                           facts->driver_bound ? "bound" : "not bound");
    g_string_append_printf(s, "CONFIG_VIRTIO_BALLOON: %s\n",
                           facts->kconfig == BL_KCONFIG_Y   ? "y (built in)"
                           : facts->kconfig == BL_KCONFIG_M ? "m (module)"
                           : facts->kconfig == BL_KCONFIG_N ? "n (not built)"
                                                            : "unknown (no kernel config found)");
    if (detect_usable(facts)) {
        g_string_append(s, "verdict: usable: the host can grow and shrink this guest's memory\n");
    } else if (!facts->present) {
        /* An image builder fixes both at once: name the kernel too when it lacks the driver. */
        g_string_append(s, "verdict: NOT usable: add a virtio-balloon device to the VM "
                           "(libvirt: <memballoon model='virtio'/>)");
        if (facts->kconfig == BL_KCONFIG_N)
            g_string_append(s, ", and use a kernel with CONFIG_VIRTIO_BALLOON (=m or =y): "
                               "this one is built without it");
        g_string_append_c(s, '\n');
    } else if (facts->kconfig == BL_KCONFIG_N) {
        g_string_append(s, "verdict: NOT usable: this kernel is built without "
                           "CONFIG_VIRTIO_BALLOON; use a kernel with it (=m or =y)\n");
    } else if (facts->kconfig == BL_KCONFIG_M) {
        g_string_append(s, "verdict: NOT usable: the virtio_balloon module is not loaded; "
                           "load it (modprobe virtio_balloon) and add it to the image's modules\n");
    } else {
        g_string_append(s, "verdict: NOT usable: the device is present but no virtio_balloon "
                           "driver is bound to it\n");
    }
    return g_string_free(s, FALSE);
}

/* A PCI address as sysfs names it, and as the protocol allows it. */
static gboolean detect_pci_name_ok(const char *name)
{
    gsize n = strlen(name);

    if (n == 0 || n >= BL_PROTO_PCI_ADDR_MAX)
        return FALSE;
    for (gsize i = 0; i < n; i++) {
        if (!g_ascii_isxdigit(name[i]) && name[i] != ':' && name[i] != '.')
            return FALSE;
    }
    return TRUE;
}

static gboolean detect_read_id(const char *root, const char *dev, const char *attr, guint *id)
{
    g_autofree char *rel = g_strdup_printf("sys/bus/pci/devices/%s/%s", dev, attr);
    char buf[64];
    gsize len;

    return procfs_read_into(root, rel, buf, sizeof(buf), &len, NULL) &&
           detect_parse_hex_id(buf, len, id);
}

static int detect_cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *detect_path(const char *root, const char *rel)
{
    return g_build_filename(root ? root : "/", rel, NULL);
}

static gboolean detect_dir_has_prefix(const char *dir, const char *prefix)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    if (d == NULL)
        return FALSE;
    while ((name = g_dir_read_name(d)) != NULL) {
        if (g_str_has_prefix(name, prefix))
            return TRUE;
    }
    return FALSE;
}

gboolean detect_balloon(const char *root, BlBalloonFacts *facts, GError **error)
{
    g_autofree char *sys = detect_path(root, "sys");
    g_autofree char *pci = detect_path(root, "sys/bus/pci/devices");
    g_autofree char *drv = detect_path(root, "sys/bus/virtio/drivers/virtio_balloon");
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) d = NULL;
    const char *name;

    memset(facts, 0, sizeof(*facts));
    facts->kconfig = BL_KCONFIG_UNKNOWN;
    if (!g_file_test(sys, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: no sysfs there", sys);
        return FALSE;
    }
    /* No PCI bus (virtio-mmio, s390) simply means no PCI balloon. */
    d = g_dir_open(pci, 0, NULL);
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        guint vendor, device;

        if (!detect_pci_name_ok(name) || !detect_read_id(root, name, "vendor", &vendor) ||
            !detect_read_id(root, name, "device", &device))
            continue;
        if (vendor == DETECT_PCI_VENDOR_VIRTIO &&
            (device == DETECT_PCI_BALLOON_TRANSITION || device == DETECT_PCI_BALLOON_MODERN))
            g_ptr_array_add(found, g_strdup(name));
    }
    g_ptr_array_sort(found, detect_cmp_str); /* readdir order is arbitrary */
    facts->present = found->len > 0;
    for (guint i = 0; i < found->len && i < BL_PROTO_PCI_MAX; i++)
        g_strlcpy(facts->pci[facts->n_pci++], found->pdata[i], BL_PROTO_PCI_ADDR_MAX);
    /* The driver directory holds one virtioN link per bound device. */
    facts->driver_bound = facts->present && detect_dir_has_prefix(drv, "virtio");
    return TRUE;
}

/* zlib is linked in (small, static-friendly), so no child process is needed. */
static BlKconfig detect_kconfig_gz(const char *text, gsize len)
{
    g_autoptr(GBytes) plain = gunzip_bytes(text, len, DETECT_CONFIG_MAX, NULL);

    if (plain == NULL)
        return BL_KCONFIG_UNKNOWN;
    return detect_parse_kconfig(g_bytes_get_data(plain, NULL), g_bytes_get_size(plain));
}

BlKconfig detect_kconfig(const char *root, const char *release)
{
    g_autofree char *text = NULL;
    gsize len;

    if (release != NULL && release[0] != '\0' && strchr(release, '/') == NULL) {
        g_autofree char *rel = g_strconcat("boot/config-", release, NULL);

        if (procfs_read_file(root, rel, DETECT_CONFIG_MAX, &text, &len, NULL))
            return detect_parse_kconfig(text, len);
    }
    if (!procfs_read_file(root, "proc/config.gz", DETECT_CONFIG_GZ_MAX, &text, &len, NULL))
        return BL_KCONFIG_UNKNOWN;
    return detect_kconfig_gz(text, len);
}

gboolean detect_environ_container(const char *environ, gsize len)
{
    const char *pos = environ, *end = environ + len;

    while (pos < end) {
        const char *nul = memchr(pos, '\0', (gsize)(end - pos));
        const char *vend = nul ? nul : end;

        /* systemd-nspawn, podman, lxc and others set container=NAME for PID 1 */
        if ((gsize)(vend - pos) > 10 && memcmp(pos, "container=", 10) == 0)
            return TRUE;
        pos = vend + 1;
    }
    return FALSE;
}

static gboolean detect_exists(const char *root, const char *rel)
{
    g_autofree char *path = detect_path(root, rel);

    return g_file_test(path, G_FILE_TEST_EXISTS);
}

DetectEnv detect_environment(const char *root)
{
    static const char *const markers[] = {"run/systemd/container", ".dockerenv",
                                          "run/.containerenv"};
    g_autofree char *sys_bus = detect_path(root, "sys/bus");
    g_autofree char *top = detect_path(root, NULL);
    g_autofree char *init_root = detect_path(root, "proc/1/root");
    g_autofree char *environ = NULL;
    struct stat a, b;
    gsize len;
    char buf[64];

    if (!procfs_read_into(root, "proc/sys/kernel/osrelease", buf, sizeof(buf), &len, NULL))
        return DETECT_ENV_NO_PROC;
    /* an unmounted /sys is an empty directory */
    if (!g_file_test(sys_bus, G_FILE_TEST_IS_DIR))
        return DETECT_ENV_NO_SYSFS;
    /* systemd's test for a chroot; fixture trees have no proc/1 and pass */
    if (stat(top, &a) == 0 && stat(init_root, &b) == 0 &&
        (a.st_dev != b.st_dev || a.st_ino != b.st_ino))
        return DETECT_ENV_CHROOT;
    for (gsize i = 0; i < G_N_ELEMENTS(markers); i++) {
        if (detect_exists(root, markers[i]))
            return DETECT_ENV_CONTAINER;
    }
    if (procfs_read_file(root, "proc/1/environ", 64 * 1024, &environ, &len, NULL) &&
        detect_environ_container(environ, len))
        return DETECT_ENV_CONTAINER;
    return DETECT_ENV_GUEST;
}

const char *detect_env_describe(DetectEnv env)
{
    switch (env) {
    case DETECT_ENV_GUEST:
        return "a booted guest";
    case DETECT_ENV_NO_PROC:
        return "cannot tell: /proc is not mounted here, so there is no running guest kernel to "
               "judge; in an image build run ballast-agent --check-image ROOT";
    case DETECT_ENV_NO_SYSFS:
        return "cannot tell: /sys is not mounted here (an image build or a chroot?); in an image "
               "build run ballast-agent --check-image ROOT, and --check in the booted guest";
    case DETECT_ENV_CHROOT:
        return "cannot tell: this is a chroot, its /proc and /sys are the build host's; run "
               "ballast-agent --check-image ROOT here, and --check in the booted guest";
    case DETECT_ENV_CONTAINER:
        return "cannot tell: this is a container, its /sys and kernel are the host's; run "
               "--check in the VM itself (or --check-image on the VM's image)";
    }
    return "cannot tell";
}
