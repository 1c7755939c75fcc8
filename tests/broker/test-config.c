/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ballastd.conf: good files, broken files with exact line numbers, reload. */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char *write_tmp(const char *text)
{
    g_autoptr(GError) e = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("ballastd-XXXXXX.conf", &path, &e);

    g_assert_no_error(e);
    close(fd);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

/* Load text, expect failure with code and a message starting with prefix. */
static void expect_error(const char *text, gint code, const char *prefix, const char *also)
{
    Config cfg;
    g_autoptr(GError) e = NULL;

    config_init_defaults(&cfg);
    Config before = cfg;
    g_assert_false(config_load_data(&cfg, "t.conf", text, strlen(text), &e));
    g_assert_error(e, CONFIG_ERROR, code);
    if (!g_str_has_prefix(e->message, prefix))
        g_error("\"%s\" does not start with \"%s\"", e->message, prefix);
    if (also != NULL && strstr(e->message, also) == NULL)
        g_error("\"%s\" does not mention \"%s\"", e->message, also);
    g_assert_null(strchr(e->message, '\n')); /* one line */
    g_assert_cmpmem(&cfg, sizeof(cfg), &before, sizeof(before));
    config_clear(&cfg);
}

static void test_defaults(void)
{
    Config cfg;
    g_autoptr(GError) e = NULL;

    config_init_defaults(&cfg);
    g_assert_cmpuint(cfg.interval_ms, ==, 1000);
    g_assert_cmpuint(cfg.tick_ms, ==, 1000);
    g_assert_cmpint(cfg.default_mode, ==, POLICY_MODE_AUTO);
    g_assert_false(cfg.allow_qemu_monitor);
    g_assert_cmpstr(cfg.control_socket, ==, "/run/ballast/ballastd.sock");
    g_assert_cmpstr(cfg.control_group, ==, ""); /* root only */
    g_assert_cmpint(cfg.on_stop, ==, CONFIG_ON_STOP_KEEP);
    g_assert_cmpuint(cfg.rate_limit_per_s, ==, 50);
    g_assert_cmpuint(cfg.rate_limit_burst, ==, 100);
    g_assert_cmpuint(cfg.read_budget_bytes, ==, 65536);

    /* An empty file is the defaults. */
    Config loaded;
    config_init_defaults(&loaded);
    loaded.interval_ms = 4242;
    g_assert_true(config_load_data(&loaded, "empty", "", 0, &e));
    g_assert_no_error(e);
    g_assert_cmpmem(&loaded, sizeof(loaded), &cfg, sizeof(cfg));
}

static void test_missing(void)
{
    Config cfg;
    g_autoptr(GError) e = NULL;

    config_init_defaults(&cfg);
    /* The default path may be absent... */
    g_assert_true(config_load_file(&cfg, "/nonexistent/ballastd.conf", FALSE, &e));
    g_assert_no_error(e);
    /* ... an explicit one may not. */
    g_assert_false(config_load_file(&cfg, "/nonexistent/ballastd.conf", TRUE, &e));
    g_assert_error(e, CONFIG_ERROR, CONFIG_ERROR_MISSING);
    g_assert_true(g_str_has_prefix(e->message, "/nonexistent/ballastd.conf: "));
}

static void test_good(void)
{
    const char *text = "# ballastd.conf\n"
                       "\n"
                       "[broker]\n"
                       "interval_ms = 500\n"
                       "tick_ms=250\n"
                       "default_mode = observe\n"
                       "default_ksm = never\n"
                       "allow_qemu_monitor = true\n"
                       "control_socket = /tmp/ballast-test.sock\n"
                       "psi_trigger = full\n"
                       "psi_trigger_stall_us = 50000\n"
                       "psi_trigger_window_us = 2000000\n"
                       "rate_limit_per_s = 20\n"
                       "rate_limit_burst = 40\n"
                       "stats_period_s = 0\n"
                       "control_group = ballast-ops\n"
                       "on_stop = release\n"
                       "\n"
                       "[policy]\n"
                       "# a comment in between\n"
                       "host_reserve = 2GiB\n"
                       "min_floor = 300 MiB\n";
    g_autofree char *path = write_tmp(text);
    g_autoptr(GError) e = NULL;
    Config cfg;

    config_init_defaults(&cfg);
    g_assert_true(config_load_file(&cfg, path, TRUE, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(cfg.interval_ms, ==, 500);
    g_assert_cmpuint(cfg.tick_ms, ==, 250);
    g_assert_cmpstr(cfg.control_group, ==, "ballast-ops");
    g_assert_cmpint(cfg.on_stop, ==, CONFIG_ON_STOP_RELEASE);
    g_assert_cmpint(cfg.default_mode, ==, POLICY_MODE_OBSERVE);
    g_assert_cmpint(cfg.default_ksm, ==, POLICY_KSM_NEVER);
    g_assert_true(cfg.allow_qemu_monitor);
    g_assert_cmpstr(cfg.control_socket, ==, "/tmp/ballast-test.sock");
    g_assert_cmpint(cfg.psi_trigger, ==, CONFIG_PSI_TRIGGER_FULL);
    g_assert_cmpuint(cfg.psi_trigger_stall_us, ==, 50000);
    g_assert_cmpuint(cfg.psi_trigger_window_us, ==, 2000000);
    g_assert_cmpuint(cfg.rate_limit_per_s, ==, 20);
    g_assert_cmpuint(cfg.rate_limit_burst, ==, 40);
    g_assert_cmpuint(cfg.stats_period_s, ==, 0);
    g_assert_cmpuint(cfg.policy.host_reserve_kib, ==, 2 * 1024 * 1024);
    g_assert_cmpuint(cfg.policy.min_floor_kib, ==, 300 * 1024);
    g_unlink(path);
}

static void test_bad_size(void)
{
    expect_error("[broker]\n"
                 "interval_ms = 500\n"
                 "\n"
                 "[policy]\n"
                 "host_reserve = 12XB\n",
                 CONFIG_ERROR_VALUE, "t.conf:5: [policy] host_reserve", "12XB");
    expect_error("[policy]\nmin_floor = -1GiB\n", CONFIG_ERROR_VALUE,
                 "t.conf:2: [policy] min_floor", NULL);
    expect_error("[policy]\nmin_floor = 99999999999999999999999GiB\n", CONFIG_ERROR_VALUE,
                 "t.conf:2: [policy] min_floor", NULL);
}

static void test_bad_broker_values(void)
{
    expect_error("[broker]\n# x\ninterval_ms = 50\n", CONFIG_ERROR_VALUE,
                 "t.conf:3: [broker] interval_ms: ", "100 to 60000");
    expect_error("[broker]\ninterval_ms = 1e3\n", CONFIG_ERROR_VALUE,
                 "t.conf:2: [broker] interval_ms: ", "1e3");
    expect_error("[broker]\ntick_ms = \n", CONFIG_ERROR_VALUE,
                 "t.conf:2: [broker] tick_ms: ", NULL);
    expect_error("[broker]\ndefault_mode = sometimes\n", CONFIG_ERROR_VALUE,
                 "t.conf:2: [broker] default_mode: ", "auto, observe or off");
    expect_error("[broker]\nallow_qemu_monitor = maybe\n", CONFIG_ERROR_VALUE,
                 "t.conf:2: [broker] allow_qemu_monitor: ", NULL);
    expect_error("[broker]\ncontrol_socket = relative.sock\n", CONFIG_ERROR_VALUE,
                 "t.conf:2: [broker] control_socket: ", NULL);
    expect_error("[broker]\npsi_trigger = half\n", CONFIG_ERROR_VALUE,
                 "t.conf:2: [broker] psi_trigger: ", NULL);
    expect_error("[broker]\non_stop = deflate\n", CONFIG_ERROR_VALUE,
                 "t.conf:2: [broker] on_stop: ", "keep or release");
    expect_error("[broker]\ncontrol_group = wheel;rm\n", CONFIG_ERROR_VALUE,
                 "t.conf:2: [broker] control_group: ", "group name");
    expect_error("[broker]\ncontrol_group = "
                 "a-group-name-much-longer-than-any-group-name-that-one-might-really-use\n",
                 CONFIG_ERROR_VALUE, "t.conf:2: [broker] control_group: ", NULL);
    /* Cross-key rules blame a key that is in the file. */
    expect_error("[broker]\npsi_trigger_window_us = 600000\npsi_trigger_stall_us = 700000\n",
                 CONFIG_ERROR_VALUE, "t.conf:3: [broker] psi_trigger_stall_us: ", NULL);
}

static void test_unknown_key(void)
{
    expect_error("[broker]\ninterval_ms = 500\n\n  frobnicate = 1\n", CONFIG_ERROR_KEY,
                 "t.conf:4: [broker] frobnicate: unknown key", NULL);
    expect_error("[broker]\n[policy]\nnot_a_policy_key = 3\n", CONFIG_ERROR_KEY,
                 "t.conf:3: [policy] not_a_policy_key", NULL);
}

static void test_bad_group(void)
{
    expect_error("[broker]\ninterval_ms = 500\n# typo below\n[brokr]\ntick_ms = 3\n",
                 CONFIG_ERROR_GROUP, "t.conf:4: [brokr]: unknown group", NULL);
}

static void test_syntax(void)
{
    expect_error("[broker]\ninterval_ms = 500\nthis line is not a key\n", CONFIG_ERROR_SYNTAX,
                 "t.conf:3: ", NULL);
    expect_error("interval_ms = 500\n[broker]\n", CONFIG_ERROR_SYNTAX, "t.conf:1: ", NULL);
    expect_error("# only a comment\n[broker\n", CONFIG_ERROR_SYNTAX, "t.conf:2: ", NULL);
    /* Binary junk is a syntax error, not a crash. */
    static const char junk[] = "[broker]\n\xff\xfe\x01\x02 = \x80\n";
    Config cfg;
    g_autoptr(GError) e = NULL;
    config_init_defaults(&cfg);
    g_assert_false(config_load_data(&cfg, "junk", junk, sizeof(junk) - 1, &e));
    g_assert_nonnull(e);
}

static void test_bom_crlf_huge(void)
{
    Config cfg;
    g_autoptr(GError) e = NULL;
    const char *bom = "\xef\xbb\xbf[broker]\r\ninterval_ms = 500\r\n";

    config_init_defaults(&cfg);
    g_assert_true(config_load_data(&cfg, "bom", bom, strlen(bom), &e));
    g_assert_no_error(e);
    g_assert_cmpuint(cfg.interval_ms, ==, 500);
    /* CRLF line ends do not shift line numbers. */
    expect_error("[broker]\r\n\r\ntick_ms = 5\r\n", CONFIG_ERROR_VALUE,
                 "t.conf:3: [broker] tick_ms", NULL);

    gsize n = 2 * 1024 * 1024;
    g_autofree char *huge = g_malloc(n + 1);
    memset(huge, '#', n);
    huge[n] = '\0';
    g_assert_false(config_load_data(&cfg, "huge", huge, n, &e));
    g_assert_error(e, CONFIG_ERROR, CONFIG_ERROR_SYNTAX);
}

static void test_duplicate_key_line(void)
{
    /* GKeyFile keeps the last of two equal keys; so does the locator. */
    expect_error("[broker]\ntick_ms = 500\ntick_ms = 5\n", CONFIG_ERROR_VALUE,
                 "t.conf:3: [broker] tick_ms", NULL);
}

static void test_locate(void)
{
    const char *t = "# c\n"
                    "[a]\n"
                    "x = 1\n"
                    "[b]\n"
                    "  x=2\n"
                    "xy = 3\n"
                    "x[de] = 4\n";
    gsize n = strlen(t);

    g_assert_cmpuint(config_locate(t, n, "a", NULL), ==, 2);
    g_assert_cmpuint(config_locate(t, n, "a", "x"), ==, 3);
    g_assert_cmpuint(config_locate(t, n, "b", "x"), ==, 7); /* the last, localised */
    g_assert_cmpuint(config_locate(t, n, "b", "xy"), ==, 6);
    g_assert_cmpuint(config_locate(t, n, "b", "y"), ==, 0);
    g_assert_cmpuint(config_locate(t, n, "c", NULL), ==, 0);
}

static void test_reload_keeps_config(void)
{
    g_autofree char *path = write_tmp("[broker]\ninterval_ms = 700\n");
    g_autoptr(GError) e = NULL;
    Config cfg;

    config_init_defaults(&cfg);
    g_assert_true(config_load_file(&cfg, path, TRUE, &e));
    g_assert_cmpuint(cfg.interval_ms, ==, 700);
    Config running = cfg;

    /* The file goes bad (as an admin edits it): the running one stays. */
    g_assert_true(g_file_set_contents(path, "[broker]\ninterval_ms = 300\nbogus = 1\n", -1, NULL));
    g_assert_false(config_load_file(&cfg, path, TRUE, &e));
    g_assert_error(e, CONFIG_ERROR, CONFIG_ERROR_KEY);
    g_autofree char *want = g_strdup_printf("%s:3: [broker] bogus", path);
    g_assert_true(g_str_has_prefix(e->message, want));
    g_assert_cmpmem(&cfg, sizeof(cfg), &running, sizeof(running));
    g_clear_error(&e);

    /* Fixed: the new values apply. */
    g_assert_true(g_file_set_contents(path, "[broker]\ninterval_ms = 300\n", -1, NULL));
    g_assert_true(config_load_file(&cfg, path, TRUE, &e));
    g_assert_cmpuint(cfg.interval_ms, ==, 300);
    g_unlink(path);
}

static void test_names(void)
{
    PolicyMode m;
    PolicyKsm k;

    g_assert_true(config_parse_mode("observe", &m));
    g_assert_cmpint(m, ==, POLICY_MODE_OBSERVE);
    g_assert_false(config_parse_mode("Observe", &m));
    g_assert_false(config_parse_mode(NULL, &m));
    g_assert_cmpstr(config_mode_name(POLICY_MODE_OFF), ==, "off");
    g_assert_true(config_parse_ksm("always", &k));
    g_assert_cmpint(k, ==, POLICY_KSM_ALWAYS);
    g_assert_false(config_parse_ksm("", &k));
    g_assert_cmpstr(config_ksm_name(POLICY_KSM_NEVER), ==, "never");
}

/* packaging/ballastd.conf shows every key at its default: uncommented, it
 * must load and change nothing. */
static void test_example_file(void)
{
    g_autofree char *path = g_build_filename(g_getenv("BALLAST_TEST_DATA"), "..", "..", "packaging",
                                             "ballastd.conf", NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) e = NULL;
    g_autoptr(GRegex) re = g_regex_new("^#([a-z_]+ =.*)$", G_REGEX_MULTILINE, 0, &e);

    g_assert_true(g_file_get_contents(path, &text, NULL, &e));
    g_assert_no_error(e);
    g_autofree char *live = g_regex_replace(re, text, -1, 0, "\\1", 0, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(strlen(live), <, strlen(text)); /* something was uncommented */

    Config want, got;
    config_init_defaults(&want);
    config_init_defaults(&got);
    g_assert_true(config_load_data(&got, path, live, strlen(live), &e));
    g_assert_no_error(e);
    g_assert_cmpmem(&got, G_STRUCT_OFFSET(Config, ksm), &want, G_STRUCT_OFFSET(Config, ksm));
    g_assert_cmpmem(&got.ksm, G_STRUCT_OFFSET(KsmConfig, latency_sensitive), &want.ksm,
                    G_STRUCT_OFFSET(KsmConfig, latency_sensitive));
    config_clear(&got);
    config_clear(&want);
}

/* Booleans are spelled alike in every group (they once were not: [ksm] took
 * no yes/no, [broker] no "True"). */
static void test_booleans(void)
{
    static const char text[] = "[broker]\nallow_qemu_monitor = Yes\n"
                               "[policy]\ngrow_to_headroom = no\n"
                               "[ksm]\nmanage = no\nuse_advisor = FALSE\nlive_exclusion = 0\n";
    static const char *const bad[] = {
        "[broker]\nallow_qemu_monitor = maybe\n",
        "[policy]\ngrow_to_headroom = on\n",
        "[ksm]\nmanage = 2\n",
    };
    g_autoptr(GError) e = NULL;
    Config c;

    config_init_defaults(&c);
    g_assert_true(config_load_data(&c, "t.conf", text, strlen(text), &e));
    g_assert_no_error(e);
    g_assert_true(c.allow_qemu_monitor);
    g_assert_false(c.policy.grow_to_headroom);
    g_assert_false(c.ksm.manage);
    g_assert_false(c.ksm.use_advisor);
    g_assert_false(c.ksm.live_exclusion);
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_clear_error(&e);
        g_assert_false(config_load_data(&c, "t.conf", bad[i], strlen(bad[i]), &e));
        g_assert_true(g_str_has_prefix(e->message, "t.conf:2: "));
    }
    config_clear(&c);
}

/* The default of `key` as the example file states it ("#key = VALUE"). */
static char *example_value(const char *conf, const char *key)
{
    g_autofree char *needle = g_strdup_printf("\n#%s = ", key);
    const char *p = strstr(conf, needle);

    if (p == NULL) {
        /* an empty default is written "#key =" */
        g_autofree char *bare = g_strdup_printf("\n#%s =\n", key);
        return strstr(conf, bare) ? g_strdup("") : NULL;
    }
    p += strlen(needle);
    return g_strndup(p, strcspn(p, "\n"));
}

/* "key = VALUE" in the docs' [policy] block, with nothing glued to either end. */
static gboolean doc_has_assignment(const char *doc, const char *key, const char *value)
{
    g_autofree char *needle = g_strdup_printf("%s = %s", key, value);

    for (const char *p = strstr(doc, needle); p; p = strstr(p + 1, needle)) {
        char after = p[strlen(needle)];
        if ((p == doc || g_ascii_isspace(p[-1])) && (after == '\0' || g_ascii_isspace(after)))
            return TRUE;
    }
    return FALSE;
}

/* Every [broker], [policy] and [ksm] key is in the example file and in
 * docs/configuration.md, with the same default in both (and the example
 * file's defaults are the code's: test_example_file). */
static void test_keys_documented(void)
{
    const char *td = g_getenv("BALLAST_TEST_DATA");
    g_autofree char *conf_path =
        g_build_filename(td, "..", "..", "packaging", "ballastd.conf", NULL);
    g_autofree char *doc_path = g_build_filename(td, "..", "..", "docs", "configuration.md", NULL);
    g_autofree char *conf = NULL, *doc = NULL;
    g_auto(GStrv) keys = config_broker_keys();

    g_assert_true(g_file_get_contents(conf_path, &conf, NULL, NULL));
    g_assert_true(g_file_get_contents(doc_path, &doc, NULL, NULL));
    g_assert_cmpuint(g_strv_length(keys), >=, 15);
    for (guint i = 0; keys[i]; i++) {
        g_autofree char *value = example_value(conf, keys[i]);
        if (value == NULL)
            g_error("[broker] %s is not in packaging/ballastd.conf", keys[i]);
        g_autofree char *in_doc = value[0] ? g_strdup_printf("| `%s` | `%s` |", keys[i], value)
                                           : g_strdup_printf("| `%s` | empty |", keys[i]);
        if (strstr(doc, in_doc) == NULL)
            g_error("[broker] %s is not in docs/configuration.md with default %s", keys[i], value);
        g_assert_cmpuint(config_locate(conf, strlen(conf), "broker", keys[i]), ==, 0);
    }
    const char *const *pk = policy_config_keys();
    g_assert_cmpuint(g_strv_length((char **)pk), >=, 30);
    for (guint i = 0; pk[i]; i++) {
        g_autofree char *value = example_value(conf, pk[i]);
        if (value == NULL)
            g_error("[policy] %s is not in packaging/ballastd.conf", pk[i]);
        if (!doc_has_assignment(doc, pk[i], value))
            g_error("[policy] %s is not in docs/configuration.md as \"%s = %s\"", pk[i], pk[i],
                    value);
    }
    const char *const *kk = ksm_config_keys();
    g_assert_cmpuint(g_strv_length((char **)kk), >=, 19);
    for (guint i = 0; kk[i]; i++) {
        g_autofree char *value = example_value(conf, kk[i]);
        if (value == NULL)
            g_error("[ksm] %s is not in packaging/ballastd.conf", kk[i]);
        g_autofree char *in_doc = value[0] ? g_strdup_printf("| `%s` | `%s` |", kk[i], value)
                                           : g_strdup_printf("| `%s` | empty |", kk[i]);
        if (strstr(doc, in_doc) == NULL)
            g_error("[ksm] %s is not in docs/configuration.md with default %s", kk[i],
                    value[0] ? value : "empty");
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/config/defaults", test_defaults);
    g_test_add_func("/config/missing", test_missing);
    g_test_add_func("/config/good", test_good);
    g_test_add_func("/config/bad-size", test_bad_size);
    g_test_add_func("/config/bad-broker-values", test_bad_broker_values);
    g_test_add_func("/config/unknown-key", test_unknown_key);
    g_test_add_func("/config/bad-group", test_bad_group);
    g_test_add_func("/config/syntax", test_syntax);
    g_test_add_func("/config/duplicate-key-line", test_duplicate_key_line);
    g_test_add_func("/config/bom-crlf-huge", test_bom_crlf_huge);
    g_test_add_func("/config/locate", test_locate);
    g_test_add_func("/config/reload-keeps-config", test_reload_keeps_config);
    g_test_add_func("/config/names", test_names);
    g_test_add_func("/config/example-file", test_example_file);
    g_test_add_func("/config/keys-documented", test_keys_documented);
    g_test_add_func("/config/booleans", test_booleans);
    return g_test_run();
}
