/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The build-time image check: see image.h. */
#include "image.h"

#include <string.h>

#include "detect.h"
#include "procfs.h"

#define IMAGE_CONFIG_MAX  (8 * 1024 * 1024)
#define IMAGE_BUILTIN_MAX (4 * 1024 * 1024)
/* A distribution's modules tree is ~6000 files in ~600 directories deep 6. */
#define IMAGE_WALK_DEPTH 12
#define IMAGE_UNIT       "ballast-agent.service"
#define IMAGE_RULE       "90-ballast-agent.rules"

static const struct {
    const char *module, *symbol;
} image_drivers[IMAGE_N_DRIVERS] = {
    {"virtio_balloon", "CONFIG_VIRTIO_BALLOON"},
    {"virtio_console", "CONFIG_VIRTIO_CONSOLE"},
};

static void image_kernel_free(gpointer p)
{
    ImageKernel *k = p;

    for (guint i = 0; i < IMAGE_N_DRIVERS; i++)
        g_free(k->drv[i].ko);
    g_free(k->release);
    g_free(k);
}

void image_facts_free(ImageFacts *facts)
{
    if (facts == NULL)
        return;
    g_clear_pointer(&facts->kernels, g_ptr_array_unref);
    g_free(facts->unit);
    g_free(facts->rule);
    g_free(facts->enabled);
    g_free(facts);
}

gboolean image_is_module_file(const char *name, const char *module)
{
    static const char *const suffixes[] = {".ko", ".ko.xz", ".ko.zst", ".ko.gz"};
    gsize n = strlen(module);

    if (strncmp(name, module, n) != 0)
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        if (strcmp(name + n, suffixes[i]) == 0)
            return TRUE;
    }
    return FALSE;
}

gboolean image_builtin_lists(const char *text, gsize len, const char *module)
{
    g_autofree char *want = g_strconcat(module, ".ko", NULL);
    gsize wn = strlen(want);
    const char *pos = text, *end = text + len;

    while (pos < end) {
        const char *nl = memchr(pos, '\n', (gsize)(end - pos));
        const char *lend = nl ? nl : end;
        gsize n = (gsize)(lend - pos);

        /* a path whose last component is the module: "kernel/drivers/virtio/virtio_balloon.ko" */
        if (n >= wn && memcmp(lend - wn, want, wn) == 0 &&
            (n == wn || lend[-(gssize)wn - 1] == '/'))
            return TRUE;
        pos = lend + (nl ? 1 : 0);
    }
    return FALSE;
}

ImageDrvState image_driver_state(const ImageKernel *k, const ImageDriver *d)
{
    if (d->kconfig == BL_KCONFIG_Y || d->builtin)
        return IMAGE_DRV_READY_BUILTIN;
    if (d->ko != NULL)
        return IMAGE_DRV_READY_MODULE;
    if (d->kconfig == BL_KCONFIG_N || d->kconfig == BL_KCONFIG_M)
        return IMAGE_DRV_MISSING;
    /* No config: a modules tree without the file (and not built in) says missing. */
    return k->has_modules ? IMAGE_DRV_MISSING : IMAGE_DRV_UNKNOWN;
}

static gboolean image_kernel_ready(const ImageKernel *k)
{
    for (guint i = 0; i < IMAGE_N_DRIVERS; i++) {
        ImageDrvState st = image_driver_state(k, &k->drv[i]);

        if (st != IMAGE_DRV_READY_BUILTIN && st != IMAGE_DRV_READY_MODULE)
            return FALSE;
    }
    return TRUE;
}

gboolean image_ready(const ImageFacts *facts)
{
    if (facts->kernels->len == 0)
        return FALSE;
    for (guint i = 0; i < facts->kernels->len; i++) {
        if (!image_kernel_ready(facts->kernels->pdata[i]))
            return FALSE;
    }
    return !facts->has_systemd || (facts->unit != NULL && facts->rule != NULL);
}

static void image_describe_driver(GString *s, const ImageKernel *k, const ImageDriver *d)
{
    const char *rel = k->release;

    switch (image_driver_state(k, d)) {
    case IMAGE_DRV_READY_BUILTIN:
        g_string_append_printf(s, "ok: kernel %s: %s is built in\n", rel, d->module);
        return;
    case IMAGE_DRV_READY_MODULE:
        g_string_append_printf(s, "ok: kernel %s: %s is a module (%s)\n", rel, d->module, d->ko);
        return;
    case IMAGE_DRV_MISSING:
        if (d->kconfig == BL_KCONFIG_M)
            g_string_append_printf(s,
                                   "FAIL: kernel %s: %s=m but no %s.ko* under lib/modules/%s: "
                                   "install this kernel's modules (all of them, not a subset)\n",
                                   rel, d->symbol, d->module, rel);
        else if (d->kconfig == BL_KCONFIG_N)
            g_string_append_printf(s,
                                   "FAIL: kernel %s: built without %s: use a kernel with %s=m "
                                   "or =y (e.g. Debian's linux-image-cloud-amd64)\n",
                                   rel, d->module, d->symbol);
        else
            g_string_append_printf(s,
                                   "FAIL: kernel %s: no %s.ko* under lib/modules/%s and no "
                                   "boot/config-%s to say it is built in\n",
                                   rel, d->module, rel, rel);
        return;
    case IMAGE_DRV_UNKNOWN:
        g_string_append_printf(s,
                               "FAIL: kernel %s: cannot tell whether it has %s: neither "
                               "boot/config-%s nor lib/modules/%s is there\n",
                               rel, d->module, rel, rel);
        return;
    }
}

/* A file the image needs with systemd: FAIL without it there, else a warning. */
static void image_describe_installed(GString *s, const ImageFacts *facts, const char *what,
                                     const char *found, const char *why_missing)
{
    if (found)
        g_string_append_printf(s, "ok: %s installed (%s)\n", what, found);
    else if (facts->has_systemd)
        g_string_append_printf(s, "FAIL: %s is not installed%s\n", what, why_missing);
    else
        g_string_append_printf(s,
                               "warning: %s is not installed (no systemd here: start "
                               "ballast-agent by other means when the port appears)\n",
                               what);
}

char *image_describe(const ImageFacts *facts, const char *root)
{
    GString *s = g_string_new(NULL);

    if (facts->kernels->len == 0)
        g_string_append_printf(s,
                               "FAIL: no kernel in %s (no boot/config-* and no lib/modules/*): "
                               "install one, or check the kernel the VM boots with --check in "
                               "the guest\n",
                               root);
    for (guint i = 0; i < facts->kernels->len; i++) {
        const ImageKernel *k = facts->kernels->pdata[i];

        for (guint j = 0; j < IMAGE_N_DRIVERS; j++)
            image_describe_driver(s, k, &k->drv[j]);
    }
    image_describe_installed(s, facts, "unit " IMAGE_UNIT, facts->unit,
                             ": nothing starts the agent");
    image_describe_installed(s, facts, "udev rule " IMAGE_RULE, facts->rule,
                             ": nothing starts the agent when the port appears");
    if (facts->enabled)
        g_string_append_printf(s,
                               "warning: %s is enabled (%s): a VM without the port waits 90 s "
                               "at boot; udev starts it, remove the link\n",
                               IMAGE_UNIT, facts->enabled);
    if (image_ready(facts))
        g_string_append(s, "verdict: ready: every kernel has virtio_balloon and virtio_console\n");
    else
        g_string_append(s, "verdict: NOT ready: see the FAIL lines\n");
    return g_string_free(s, FALSE);
}

/* ---- reading the image ---- */

/* First of rels that exists under root, as given (relative), or NULL. */
static char *image_first_existing(const char *root, const char *const *rels)
{
    for (; *rels != NULL; rels++) {
        g_autofree char *path = g_build_filename(root, *rels, NULL);

        if (g_file_test(path, G_FILE_TEST_EXISTS))
            return g_strdup(*rels);
    }
    return NULL;
}

/* Depth-first search of dir for module files; fills drivers' ko (relative to root). */
static void image_walk(const char *root, const char *rel, int depth, ImageKernel *k)
{
    g_autofree char *path = g_build_filename(root, rel, NULL);
    g_autoptr(GDir) d = NULL;
    const char *name;

    if (depth > IMAGE_WALK_DEPTH || (d = g_dir_open(path, 0, NULL)) == NULL)
        return;
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree char *child = g_build_filename(rel, name, NULL);
        g_autofree char *full = g_build_filename(root, child, NULL);
        gboolean matched = FALSE;

        for (guint i = 0; i < IMAGE_N_DRIVERS; i++) {
            if (k->drv[i].ko == NULL && image_is_module_file(name, k->drv[i].module)) {
                k->drv[i].ko = g_strdup(child);
                matched = TRUE;
            }
        }
        /* not a symlink: "build" and "source" point outside the image */
        if (!matched && !g_file_test(full, G_FILE_TEST_IS_SYMLINK) &&
            g_file_test(full, G_FILE_TEST_IS_DIR))
            image_walk(root, child, depth + 1, k);
    }
}

static ImageKernel *image_kernel_read(const char *root, const char *modules_rel,
                                      const char *release)
{
    ImageKernel *k = g_new0(ImageKernel, 1);
    g_autofree char *cfg_rel = g_strconcat("boot/config-", release, NULL);
    g_autofree char *mod_rel = g_build_filename(modules_rel, release, NULL);
    g_autofree char *mod_dir = g_build_filename(root, mod_rel, NULL);
    g_autofree char *builtin_rel = g_build_filename(mod_rel, "modules.builtin", NULL);
    g_autofree char *config = NULL, *builtin = NULL;
    gsize config_len = 0, builtin_len = 0;

    k->release = g_strdup(release);
    k->has_config = procfs_read_file(root, cfg_rel, IMAGE_CONFIG_MAX, &config, &config_len, NULL);
    k->has_modules = g_file_test(mod_dir, G_FILE_TEST_IS_DIR);
    if (k->has_modules)
        procfs_read_file(root, builtin_rel, IMAGE_BUILTIN_MAX, &builtin, &builtin_len, NULL);
    for (guint i = 0; i < IMAGE_N_DRIVERS; i++) {
        ImageDriver *d = &k->drv[i];

        d->module = image_drivers[i].module;
        d->symbol = image_drivers[i].symbol;
        d->kconfig = k->has_config ? detect_parse_kconfig_symbol(config, config_len, d->symbol)
                                   : BL_KCONFIG_UNKNOWN;
        d->builtin = builtin != NULL && image_builtin_lists(builtin, builtin_len, d->module);
    }
    if (k->has_modules)
        image_walk(root, mod_rel, 0, k);
    return k;
}

static int image_cmp_kernel(gconstpointer a, gconstpointer b)
{
    const ImageKernel *ka = *(ImageKernel *const *)a, *kb = *(ImageKernel *const *)b;

    return strcmp(ka->release, kb->release);
}

/* Releases named by boot/config-* and by the modules directory's entries. */
static GHashTable *image_releases(const char *root, const char *modules_rel)
{
    GHashTable *rels = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *boot = g_build_filename(root, "boot", NULL);
    g_autofree char *mods = g_build_filename(root, modules_rel, NULL);
    g_autoptr(GDir) bd = g_dir_open(boot, 0, NULL);
    g_autoptr(GDir) md = g_dir_open(mods, 0, NULL);
    const char *name;

    while (bd != NULL && (name = g_dir_read_name(bd)) != NULL) {
        if (g_str_has_prefix(name, "config-") && name[7] != '\0')
            g_hash_table_add(rels, g_strdup(name + 7));
    }
    while (md != NULL && (name = g_dir_read_name(md)) != NULL) {
        g_autofree char *path = g_build_filename(mods, name, NULL);

        /* a release directory has modules.dep or a kernel/ tree; skip stray files */
        if (g_file_test(path, G_FILE_TEST_IS_DIR) && name[0] != '.')
            g_hash_table_add(rels, g_strdup(name));
    }
    return rels;
}

ImageFacts *image_scan(const char *root, GError **error)
{
    static const char *const systemd[] = {"lib/systemd/systemd", "usr/lib/systemd/systemd", NULL};
    static const char *const units[] = {
        "etc/systemd/system/" IMAGE_UNIT, "lib/systemd/system/" IMAGE_UNIT,
        "usr/lib/systemd/system/" IMAGE_UNIT, "usr/local/lib/systemd/system/" IMAGE_UNIT, NULL};
    static const char *const rules[] = {
        "etc/udev/rules.d/" IMAGE_RULE, "lib/udev/rules.d/" IMAGE_RULE,
        "usr/lib/udev/rules.d/" IMAGE_RULE, "usr/local/lib/udev/rules.d/" IMAGE_RULE, NULL};
    static const char *const wants[] = {"etc/systemd/system/multi-user.target.wants/" IMAGE_UNIT,
                                        "etc/systemd/system/default.target.wants/" IMAGE_UNIT,
                                        NULL};
    g_autoptr(ImageFacts) facts = NULL;
    g_autoptr(GHashTable) rels = NULL;
    g_autofree char *usr_mods = g_build_filename(root, "usr/lib/modules", NULL);
    g_autofree char *lib_mods = g_build_filename(root, "lib/modules", NULL);
    const char *modules_rel;
    GHashTableIter it;
    gpointer key;

    if (!g_file_test(root, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "%s: not a directory", root);
        return NULL;
    }
    /* Merged /usr images have lib -> usr/lib; a relative link resolves inside root. */
    modules_rel =
        g_file_test(lib_mods, G_FILE_TEST_IS_DIR) || !g_file_test(usr_mods, G_FILE_TEST_IS_DIR)
            ? "lib/modules"
            : "usr/lib/modules";
    facts = g_new0(ImageFacts, 1);
    facts->kernels = g_ptr_array_new_with_free_func(image_kernel_free);
    rels = image_releases(root, modules_rel);
    g_hash_table_iter_init(&it, rels);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_ptr_array_add(facts->kernels, image_kernel_read(root, modules_rel, key));
    g_ptr_array_sort(facts->kernels, image_cmp_kernel);
    facts->has_systemd = (key = image_first_existing(root, systemd)) != NULL;
    g_free(key);
    facts->unit = image_first_existing(root, units);
    facts->rule = image_first_existing(root, rules);
    facts->enabled = image_first_existing(root, wants);
    return g_steal_pointer(&facts);
}
