/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ballastd.conf: good files, broken files with exact line numbers, reload. */
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config-value.h"
#include "config.h"
#include "domxml.h"

#define MIB ((guint64)1024)
#define GIB (1024 * MIB)

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

/* The key an error names: "t.conf:2: [group] KEY: ..." */
static char *key_of(const char *message)
{
    const char *p = strstr(message, "] ");
    if (p == NULL)
        return g_strdup("");
    p += 2;
    return g_strndup(p, strcspn(p, ":"));
}

static PolicyConfig pcfg(void)
{
    PolicyConfig c;
    policy_config_init_defaults(&c);
    return c;
}

/* Load text, expect failure with code and a message starting with prefix. */
static void expect_error(const char *text, gint code, const char *prefix, const char *also)
{
    Config cfg;
    g_autoptr(GError) e = NULL;

    config_init_defaults(&cfg);
    Config before = cfg;
    g_assert_false(
        config_load_data(&cfg, "t.conf", text, strlen(text), CONFIG_LOAD_STRICT, NULL, NULL, &e));
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
    g_assert_true(config_load_data(&loaded, "empty", "", 0, 0, NULL, NULL, &e));
    g_assert_no_error(e);
    g_assert_cmpmem(&loaded, sizeof(loaded), &cfg, sizeof(cfg));
}

static void test_missing(void)
{
    Config cfg;
    g_autoptr(GError) e = NULL;

    config_init_defaults(&cfg);
    /* The default path may be absent... */
    g_assert_true(config_load_file(&cfg, "/nonexistent/ballastd.conf", 0, NULL, NULL, &e));
    g_assert_no_error(e);
    /* ... an explicit one may not. */
    g_assert_false(config_load_file(&cfg, "/nonexistent/ballastd.conf", CONFIG_LOAD_MUST_EXIST,
                                    NULL, NULL, &e));
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
    g_assert_true(config_load_file(&cfg, path, CONFIG_LOAD_MUST_EXIST, NULL, NULL, &e));
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
    g_assert_false(config_load_data(&cfg, "junk", junk, sizeof(junk) - 1, 0, NULL, NULL, &e));
    g_assert_nonnull(e);
    /* Refused without anyone asking why, too. */
    g_assert_false(config_load_data(&cfg, "x", "[broker\n", 8, 0, NULL, NULL, NULL));
}

static void test_bom_crlf_huge(void)
{
    Config cfg;
    g_autoptr(GError) e = NULL;
    const char *bom = "\xef\xbb\xbf[broker]\r\ninterval_ms = 500\r\n";

    config_init_defaults(&cfg);
    g_assert_true(config_load_data(&cfg, "bom", bom, strlen(bom), 0, NULL, NULL, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(cfg.interval_ms, ==, 500);
    /* CRLF line ends do not shift line numbers. */
    expect_error("[broker]\r\n\r\ntick_ms = 5\r\n", CONFIG_ERROR_VALUE,
                 "t.conf:3: [broker] tick_ms", NULL);

    gsize n = 2 * 1024 * 1024;
    g_autofree char *huge = g_malloc(n + 1);
    memset(huge, '#', n);
    huge[n] = '\0';
    g_assert_false(config_load_data(&cfg, "huge", huge, n, 0, NULL, NULL, &e));
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
    g_assert_true(config_load_file(&cfg, path, CONFIG_LOAD_MUST_EXIST, NULL, NULL, &e));
    g_assert_cmpuint(cfg.interval_ms, ==, 700);
    Config running = cfg;

    /* The file goes bad (as an admin edits it): the running one stays. */
    g_assert_true(g_file_set_contents(path, "[broker]\ninterval_ms = 300\nbogus = 1\n", -1, NULL));
    g_assert_false(
        config_load_file(&cfg, path, CONFIG_LOAD_MUST_EXIST | CONFIG_LOAD_STRICT, NULL, NULL, &e));
    g_assert_error(e, CONFIG_ERROR, CONFIG_ERROR_KEY);
    g_autofree char *want = g_strdup_printf("%s:3: [broker] bogus", path);
    g_assert_true(g_str_has_prefix(e->message, want));
    g_assert_cmpmem(&cfg, sizeof(cfg), &running, sizeof(running));
    g_clear_error(&e);

    /* Fixed: the new values apply. */
    g_assert_true(g_file_set_contents(path, "[broker]\ninterval_ms = 300\n", -1, NULL));
    g_assert_true(config_load_file(&cfg, path, CONFIG_LOAD_MUST_EXIST, NULL, NULL, &e));
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
    g_assert_true(
        config_load_data(&got, path, live, strlen(live), CONFIG_LOAD_STRICT, NULL, NULL, &e));
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
    g_assert_true(config_load_data(&c, "t.conf", text, strlen(text), 0, NULL, NULL, &e));
    g_assert_no_error(e);
    g_assert_true(c.allow_qemu_monitor);
    g_assert_false(c.policy.grow_to_headroom);
    g_assert_false(c.ksm.manage);
    g_assert_false(c.ksm.use_advisor);
    g_assert_false(c.ksm.live_exclusion);
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_clear_error(&e);
        g_assert_false(config_load_data(&c, "t.conf", bad[i], strlen(bad[i]), 0, NULL, NULL, &e));
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
    g_auto(GStrv) keys = config_keys("broker");

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
    g_auto(GStrv) pk = config_keys("policy");
    g_assert_cmpuint(g_strv_length(pk), >=, 30);
    for (guint i = 0; pk[i]; i++) {
        g_autofree char *value = example_value(conf, pk[i]);
        if (value == NULL)
            g_error("[policy] %s is not in packaging/ballastd.conf", pk[i]);
        if (!doc_has_assignment(doc, pk[i], value))
            g_error("[policy] %s is not in docs/configuration.md as \"%s = %s\"", pk[i], pk[i],
                    value);
    }
    g_auto(GStrv) kk = config_keys("ksm");
    g_assert_cmpuint(g_strv_length(kk), >=, 19);
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

static void test_parse_size(void)
{
    static const struct {
        const char *text;
        gboolean ok;
        guint64 kib;
    } t[] = {
        {"0", TRUE, 0},
        {"64", TRUE, 64},
        {"64K", TRUE, 64},
        {"64KiB", TRUE, 64},
        {"512M", TRUE, 512 * MIB},
        {"256MiB", TRUE, 256 * MIB},
        {"256 mib", TRUE, 256 * MIB},
        {"1G", TRUE, GIB},
        {"1GiB", TRUE, GIB},
        {" 2 GiB ", TRUE, 2 * GIB},
        {"1TiB", TRUE, 1024 * GIB},
        {"", FALSE, 0},
        {"MiB", FALSE, 0},
        {"-1", FALSE, 0},
        {"+1", FALSE, 0},
        {"1.5G", FALSE, 0},
        {"12X", FALSE, 0},
        {"12 MiB extra", FALSE, 0},
        {"1GB", FALSE, 0},
        {"99999999999999999999", FALSE, 0},
        {"18014398509481984G", FALSE, 0},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        guint64 kib = 12345;

        g_assert_cmpint(config_parse_size(t[i].text, CONFIG_UNIT_KIB, &kib), ==, t[i].ok);
        if (t[i].ok)
            g_assert_cmpuint(kib, ==, t[i].kib);
    }
}

/* The old policy_config_load(), through the engine: [policy] over *c. Strict
 * only when asked, as unknown keys are otherwise warnings. */
static gboolean load_policy(PolicyConfig *c, const char *text, gboolean strict, char **bad_key,
                            GError **error)
{
    Config full;

    config_init_defaults(&full);
    full.policy = *c;
    gboolean ok = config_load_data(&full, "t.conf", text, strlen(text),
                                   strict ? CONFIG_LOAD_STRICT : 0, NULL, NULL, error);
    if (!ok && bad_key)
        *bad_key = key_of(error && *error ? (*error)->message : "");
    *c = full.policy;
    config_clear(&full);
    return ok;
}

static void test_policy_good(void)
{
    PolicyConfig c = pcfg();
    g_autoptr(GError) error = NULL;
    char *bad = NULL;

    g_assert_true(load_policy(&c,
                              "[policy]\n"
                              "default_shares=500\n"
                              "min_floor=512M\n"
                              "host_reserve=2GiB\n"
                              "deflate_margin=65536\n"
                              "psi_some_avg10=0.5\n"
                              "host_reserve_pct=10%\n"
                              "stale_after_ms=5s\n"
                              "lead_time_ms=1500ms\n"
                              "grow_to_headroom=false\n"
                              "agentless=leave\n"
                              "refaults_per_s=1e4\n"
                              "[other]\nwhatever=1\n",
                              FALSE, &bad, &error));
    g_assert_no_error(error);
    g_assert_null(bad);
    g_assert_cmpuint(c.default_shares, ==, 500);
    g_assert_cmpuint(c.min_floor_kib, ==, 512 * MIB);
    g_assert_cmpuint(c.host_reserve_kib, ==, 2 * GIB);
    g_assert_cmpuint(c.deflate_margin_kib, ==, 64 * MIB);
    g_assert_cmpfloat(c.psi_some_pct, ==, 0.5);
    g_assert_cmpfloat(c.host_reserve_pct, ==, 10);
    g_assert_cmpuint(c.stale_after_ms, ==, 5000);
    g_assert_cmpuint(c.lead_time_ms, ==, 1500);
    g_assert_false(c.grow_to_headroom);
    g_assert_cmpint(c.agentless, ==, POLICY_AGENTLESS_LEAVE);
    g_assert_cmpfloat(c.refaults_per_s, ==, 1e4);
    /* untouched keys keep their value */
    g_assert_cmpuint(c.reclaim_step_kib, ==, 256 * MIB);

    /* no group: nothing changes, no error */
    PolicyConfig d = pcfg(), e = pcfg();
    g_assert_true(load_policy(&d, "[daemon]\nx=1\n", FALSE, &bad, &error));
    g_assert_cmpmem(&d, sizeof(d), &e, sizeof(e));
}

static void test_policy_bad(void)
{
    static const struct {
        const char *key, *value;
    } t[] = {
        {"default_shares", "0"},
        {"default_shares", "1000001"},
        {"default_shares", "-5"},
        {"default_shares", "ten"},
        {"default_shares", "5s"},
        {"min_floor", "2TiB"},
        {"min_floor", "-1"},
        {"min_floor", "lots"},
        {"min_step", "0"},
        {"min_step", "512"},
        {"stale_after_ms", "99"},
        {"stale_after_ms", "601s"},
        {"stale_after_ms", "3 minutes"},
        {"grow_to_headroom", "maybe"},
        {"psi_some_avg10", "0"},
        {"psi_some_avg10", "100.5"},
        {"psi_some_avg10", "nan"},
        {"psi_some_avg10", "inf"},
        {"psi_full_avg10", "-1"},
        {"psi_full_avg10", "1,5"},
        {"major_faults_per_s", "0"},
        {"major_faults_per_s", "5%"},
        {"refaults_per_s", ""},
        {"swapins_per_s", "x"},
        {"lead_time_ms", "61s"},
        {"rate_min_interval_ms", "0"},
        {"deflate_margin", "65GiB"},
        {"pressure_step", "0"},
        {"oom_step", "1.5G"},
        {"pressure_cooldown_ms", "-1"},
        {"host_reserve", "5GB"},
        {"host_reserve_pct", "51"},
        {"host_hysteresis", "1 lot"},
        {"host_psi_some_avg10", "0"},
        {"host_psi_step", "2TiB"},
        {"reclaim_step", "0"},
        {"reclaim_interval_ms", "1e3"},
        {"idle_tax", "100"},
        {"idle_tax", "-0.1"},
        {"giveback_step", "1"},
        {"silent_safe_pct", "101"},
        {"agentless", "ignore"},
        {"libvirt_stale_after_ms", "50"},
        {"libvirt_headroom_pct", "99"},
        {"balloon_settle_ms", "0"},
        {"balloon_tolerance", "2GiB"},
        {"balloon_backoff_ms", "x"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        PolicyConfig c = pcfg(), before = pcfg();
        g_autoptr(GError) error = NULL;
        g_autofree char *text =
            g_strdup_printf("[policy]\nmin_floor=1G\n%s=%s\n", t[i].key, t[i].value);
        g_autofree char *bad = NULL;

        if (g_test_verbose())
            g_printerr("%s=%s\n", t[i].key, t[i].value);
        g_assert_false(load_policy(&c, text, TRUE, &bad, &error));
        g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE);
        g_assert_cmpstr(bad, ==, t[i].key);
        g_assert_nonnull(strstr(error->message, t[i].key));
        g_assert_null(strchr(error->message, '\n'));
        /* all or nothing: min_floor=1G before it did not stick */
        g_assert_cmpmem(&c, sizeof(c), &before, sizeof(before));
    }
}

static void test_policy_unknown_key(void)
{
    PolicyConfig c = pcfg();
    g_autoptr(GError) error = NULL;
    g_autofree char *bad = NULL;

    g_assert_false(
        load_policy(&c, "[policy]\nhost_reserve=2G\nhost_reserv=2G\n", TRUE, &bad, &error));
    g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_KEY);
    g_assert_cmpstr(bad, ==, "host_reserv");
    g_assert_cmpuint(c.host_reserve_kib, ==, GIB);
}

/* docs/policy.md documents every key with the default the code has. */
static void test_policy_documented(void)
{
    const char *data = g_getenv("BALLAST_TEST_DATA");
    g_autofree char *path = NULL, *text = NULL;
    g_autoptr(GString) ini = g_string_new("[policy]\n");
    g_auto(GStrv) lines = NULL;
    g_auto(GStrv) keys = config_keys("policy");
    guint rows = 0, n_keys = 0;

    if (data == NULL) {
        g_test_skip("BALLAST_TEST_DATA not set");
        return;
    }
    path = g_build_filename(data, "..", "..", "docs", "policy.md", NULL);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        g_auto(GStrv) cells = NULL;
        g_autofree char *key = NULL, *def = NULL;

        if (!g_str_has_prefix(lines[i], "| `"))
            continue;
        cells = g_strsplit(lines[i], "|", -1);
        g_assert_cmpuint(g_strv_length(cells), >=, 4);
        key = g_strdup(g_strstrip(cells[1]));
        def = g_strdup(g_strstrip(cells[2]));
        g_assert_true(key[0] == '`' && key[strlen(key) - 1] == '`');
        g_assert_true(def[0] == '`' && def[strlen(def) - 1] == '`');
        key[strlen(key) - 1] = '\0';
        def[strlen(def) - 1] = '\0';
        g_assert_true(g_strv_contains((const char *const *)keys, key + 1));
        g_string_append_printf(ini, "%s=%s\n", key + 1, def + 1);
        rows++;
    }
    for (; keys[n_keys] != NULL; n_keys++)
        ;
    g_assert_cmpuint(rows, ==, n_keys);

    /* the documented defaults, every key of them, give the defaults */
    PolicyConfig loaded, defaults = pcfg();

    memset(&loaded, 0, sizeof(loaded));
    g_autoptr(GError) error = NULL;
    g_assert_true(load_policy(&loaded, ini->str, TRUE, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpmem(&loaded, sizeof(loaded), &defaults, sizeof(defaults));
}

/* The old ksm_config_load(), through the engine: [ksm] over *c. */
static gboolean load_ksm(KsmConfig *c, const char *text, gboolean strict, char **bad_key,
                         GError **error)
{
    Config full;

    config_init_defaults(&full);
    full.ksm = *c; /* lent: given back below, whatever happens */
    gboolean ok = config_load_data(&full, "t.conf", text, strlen(text),
                                   strict ? CONFIG_LOAD_STRICT : 0, NULL, NULL, error);
    if (!ok && bad_key)
        *bad_key = key_of(error && *error ? (*error)->message : "");
    *c = full.ksm;
    full.ksm.latency_sensitive = NULL;
    config_clear(&full);
    return ok;
}

/* [ksm] keys (once in test-ksm-host.c): values, cross-key rules, all or nothing. */
static void test_ksm_load(void)
{
    KsmConfig c;
    g_autoptr(GError) error = NULL;
    char *bad = NULL;

    ksm_config_init_defaults(&c);
    g_assert_true(load_ksm(&c, "[other]\nx=1\n", FALSE, &bad, &error));
    g_assert_true(
        load_ksm(&c,
                 "[ksm]\nmanage=false\nuse_advisor=false\nlive_exclusion=false\npages_boost=500\n"
                 "latency_sensitive=db1; rt-2 ;\nvm_full_scans=5\n",
                 TRUE, &bad, &error));
    g_assert_no_error(error);
    g_assert_false(c.manage);
    g_assert_false(c.use_advisor);
    g_assert_false(c.live_exclusion);
    g_assert_cmpuint(c.pages_boost, ==, 500);
    g_assert_cmpuint(c.vm_full_scans, ==, 5);
    g_assert_cmpuint(g_strv_length(c.latency_sensitive), ==, 2);
    g_assert_cmpstr(c.latency_sensitive[1], ==, "rt-2");

    static const struct {
        const char *text, *key, *msg;
    } bad_cases[] = {
        {"[ksm]\npages_min=0\n", "pages_min", "from 1 to 100000"},
        {"[ksm]\npages_boost=lots\n", "pages_boost", "pages_boost: invalid value \"lots\""},
        {"[ksm]\npages_boost=-1\n", "pages_boost", "from 0 to 100000"},
        {"[ksm]\nmanage=maybe\n", "manage", "true or false"},
        {"[ksm]\nbogus=1\n", "bogus", "unknown key"},
        {"[ksm]\nlive_exclusion=sometimes\n", "live_exclusion", "true or false"},
        {"[ksm]\nallow_qemu_monitor=true\n", "allow_qemu_monitor", "unknown key"},
        {"[ksm]\nstart_below_percent=40\n", "start_below_percent", "stop_above_percent"},
        {"[ksm]\npages_min=2000\n", "pages_min", "pages_max"},
        {"[ksm]\nlatency_sensitive=a/b\n", "latency_sensitive", "not a domain name"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_clear_error(&error);
        g_clear_pointer(&bad, g_free);
        g_assert_false(load_ksm(&c, bad_cases[i].text, TRUE, &bad, &error));
        g_assert_nonnull(error);
        g_assert_cmpstr(bad, ==, bad_cases[i].key);
        if (!strstr(error->message, bad_cases[i].msg))
            g_error("\"%s\" lacks \"%s\"", error->message, bad_cases[i].msg);
        g_assert_null(strchr(error->message, '\n'));
        g_assert_true(error->domain == CONFIG_ERROR);
        g_assert_cmpint(error->code, ==,
                        strstr(error->message, "unknown key") ? CONFIG_ERROR_KEY
                                                              : CONFIG_ERROR_VALUE);
        /* left unchanged */
        g_assert_false(c.manage);
        g_assert_cmpuint(c.pages_boost, ==, 500);
        g_assert_cmpuint(c.pages_min, ==, 64);
        g_assert_cmpuint(g_strv_length(c.latency_sensitive), ==, 2);
    }
    g_free(bad);
    ksm_config_clear(&c);
}

/* ---- the engine: types, units, ranges, wording, warnings, docs ---------------------------- */

/* Load text (one key per case) and return the error message, or NULL. */
static char *load_error(const char *text, ConfigLoadFlags flags)
{
    Config c;
    g_autoptr(GError) e = NULL;

    config_init_defaults(&c);
    gboolean ok = config_load_data(&c, "t.conf", text, strlen(text), flags, NULL, NULL, &e);
    config_clear(&c);
    g_assert_true(ok == (e == NULL));
    return e ? g_strdup(e->message) : NULL;
}

/* Every value type, with and without its units, in the groups that use it. */
static void test_types(void)
{
    static const struct {
        const char *group, *key, *value;
        gboolean ok;
    } t[] = {
        /* durations: the same units in every group ([broker] *_ms took none before) */
        {"broker", "tick_ms", "5s", TRUE},
        {"broker", "tick_ms", "250ms", TRUE},
        {"broker", "tick_ms", "1min", TRUE},
        {"broker", "tick_ms", "2min", FALSE}, /* above 60000 ms */
        {"broker", "tick_ms", "1.5s", FALSE},
        {"broker", "tick_ms", "5 sec", FALSE},
        {"broker", "psi_trigger_window_us", "2s", TRUE},
        {"broker", "psi_trigger_stall_us", "50ms", TRUE},
        {"broker", "stats_period_s", "1500ms", FALSE}, /* not a whole second */
        {"broker", "stats_period_s", "61min", FALSE},
        {"broker", "stats_period_s", "1h", TRUE},
        {"broker", "stats_period_s", "2000ms", TRUE},
        {"ksm", "interval_s", "1min", TRUE},
        {"ksm", "retry_after_s", "1h", TRUE},
        {"policy", "stale_after_ms", "5s", TRUE},
        /* sizes */
        {"broker", "read_budget_bytes", "64KiB", TRUE},
        {"broker", "read_budget_bytes", "65536", TRUE},
        {"broker", "read_budget_bytes", "1K", FALSE}, /* below 4096 */
        {"ksm", "min_profit_mib", "2GiB", TRUE},
        {"ksm", "min_profit_mib", "512KiB", FALSE}, /* not a whole MiB */
        {"policy", "min_floor", "1T", TRUE},
        {"policy", "min_floor", "1GB", FALSE},
        /* whole numbers */
        {"broker", "rate_limit_per_s", "20", TRUE},
        {"broker", "rate_limit_per_s", "20/s", FALSE},
        {"ksm", "pages_boost", "0", TRUE},
        {"ksm", "pages_boost", "1e3", FALSE},
        /* percentages, whole where the field is */
        {"policy", "host_reserve_pct", "10%", TRUE},
        {"policy", "host_reserve_pct", "2.5", TRUE},
        {"ksm", "start_below_percent", "15%", TRUE},
        {"ksm", "start_below_percent", "15.5", FALSE},
        /* rates */
        {"policy", "refaults_per_s", "1e4", TRUE},
        {"policy", "refaults_per_s", "5%", FALSE},
        /* booleans, enums, paths */
        {"ksm", "use_advisor", "YES", TRUE},
        {"policy", "agentless", "leave", TRUE},
        {"policy", "agentless", "Leave", FALSE},
        {"broker", "on_stop", "release", TRUE},
        {"broker", "on_stop", "drop", FALSE},
        {"broker", "control_socket", "/run/x.sock", TRUE},
        /* [metrics] listen: a numeric address and a port, or nothing */
        {"metrics", "listen", "127.0.0.1:9178", TRUE},
        {"metrics", "listen", "[::1]:9178", TRUE},
        {"metrics", "listen", "0.0.0.0:80", TRUE},
        {"metrics", "listen", "", TRUE},
        {"metrics", "listen", "127.0.0.1", FALSE},
        {"metrics", "listen", "127.0.0.1:0", FALSE},
        {"metrics", "listen", "127.0.0.1:65536", FALSE},
        {"metrics", "listen", "localhost:9178", FALSE},
        {"metrics", "listen", "::1:9178", FALSE},
        {"metrics", "listen", "999.1.1.1:9178", FALSE},
        /* [broker] control_group: a group name, or nothing */
        {"broker", "control_group", "ballast", TRUE},
        {"broker", "control_group", "_ops-1", TRUE},
        {"broker", "control_group", "", TRUE},
        {"broker", "control_group", "Ops", FALSE},
        {"broker", "control_group", "1ops", FALSE},
        {"broker", "control_group", "ops group", FALSE},
        {"broker", "control_group", "abcdefghijabcdefghijabcdefghijabc", FALSE},
        /* domain lists */
        {"ksm", "latency_sensitive", "a;b", TRUE},
        {"ksm", "latency_sensitive", "a;b/c", FALSE},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        g_autofree char *text =
            g_strdup_printf("[%s]\n%s = %s\n", t[i].group, t[i].key, t[i].value);
        g_autofree char *err = load_error(text, CONFIG_LOAD_STRICT);
        if (t[i].ok && err != NULL)
            g_error("[%s] %s = %s refused: %s", t[i].group, t[i].key, t[i].value, err);
        if (!t[i].ok) {
            if (err == NULL)
                g_error("[%s] %s = %s accepted", t[i].group, t[i].key, t[i].value);
            g_autofree char *want =
                g_strdup_printf("t.conf:2: [%s] %s: invalid value \"", t[i].group, t[i].key);
            if (!g_str_has_prefix(err, want))
                g_error("\"%s\" does not start with \"%s\"", err, want);
        }
    }

    /* What the units mean. */
    Config c;
    g_autoptr(GError) e = NULL;
    const char *text =
        "[broker]\ntick_ms = 5s\npsi_trigger_stall_us = 50ms\n"
        "read_budget_bytes = 64KiB\ncontrol_group = ballast\non_stop = release\n"
        "[metrics]\nlisten = [::1]:9178\n"
        "[ksm]\ninterval_s = 1min\nmin_profit_mib = 2GiB\nstart_below_percent = 15%\n";
    config_init_defaults(&c);
    g_assert_true(
        config_load_data(&c, "t.conf", text, strlen(text), CONFIG_LOAD_STRICT, NULL, NULL, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(c.tick_ms, ==, 5000);
    g_assert_cmpuint(c.psi_trigger_stall_us, ==, 50000);
    g_assert_cmpuint(c.read_budget_bytes, ==, 65536);
    g_assert_cmpstr(c.control_group, ==, "ballast");
    g_assert_cmpint(c.on_stop, ==, CONFIG_ON_STOP_RELEASE);
    g_assert_cmpstr(c.metrics_listen, ==, "[::1]:9178");
    g_assert_cmpuint(c.ksm.interval_s, ==, 60);
    g_assert_cmpuint(c.ksm.min_profit_mib, ==, 2048);
    g_assert_cmpuint(c.ksm.start_below_percent, ==, 15);
    config_clear(&c);

    /* The new keys' defaults: off, keep, root only. */
    config_init_defaults(&c);
    g_assert_cmpstr(c.metrics_listen, ==, "");
    g_assert_cmpint(c.on_stop, ==, CONFIG_ON_STOP_KEEP);
    g_assert_cmpstr(c.control_group, ==, "");
    config_clear(&c);
}

/* A number written in a key's own unit. */
static char *bare(double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    return g_strdup(g_ascii_formatd(buf, sizeof(buf), "%.17g", v));
}

/* Every numeric key of the table at both ends of its range is a good value,
 * and just outside either end an error naming file, line and key. */
static void test_range_edges(void)
{
    guint checked = 0;

    for (gsize i = 0; i < config_key_count; i++) {
        const ConfigKey *k = &config_key_table[i];
        if (k->kind > CONFIG_KIND_RATE)
            continue;
        gboolean whole = k->store != CONFIG_STORE_DOUBLE;
        double step = whole ? 1 : MAX(k->min / 10, 0.001);
        const double inside[] = {k->min, k->max};
        const double outside[] = {k->min - step, k->max + (whole ? 1 : MAX(k->max / 10, 1))};

        for (guint j = 0; j < 2; j++) {
            g_autofree char *v = bare(inside[j]);
            g_autofree char *text = g_strdup_printf("[%s]\n\n%s = %s\n", k->group, k->name, v);
            g_autofree char *err = load_error(text, CONFIG_LOAD_STRICT);
            /* An edge may break a rule between two keys (a stall as long as the
             * longest window), never the key's own range. */
            if (err != NULL && strstr(err, "invalid value") != NULL)
                g_error("[%s] %s = %s refused: %s", k->group, k->name, v, err);
            if (outside[j] < 0)
                continue; /* "-1" is not even a number here: refused, tested below */
            g_autofree char *o = bare(outside[j]);
            g_autofree char *bad = g_strdup_printf("[%s]\n\n%s = %s\n", k->group, k->name, o);
            g_autofree char *berr = load_error(bad, CONFIG_LOAD_STRICT);
            g_autofree char *want = g_strdup_printf(
                "t.conf:3: [%s] %s: invalid value \"%s\" (want ", k->group, k->name, o);
            if (berr == NULL || !g_str_has_prefix(berr, want))
                g_error("[%s] %s = %s: \"%s\", not \"%s...\"", k->group, k->name, o,
                        berr ? berr : "accepted", want);
            checked++;
        }
        g_autofree char *neg = g_strdup_printf("[%s]\n\n%s = -1\n", k->group, k->name);
        g_autofree char *nerr = load_error(neg, CONFIG_LOAD_STRICT);
        g_assert_nonnull(nerr);
    }
    g_assert_cmpuint(checked, >=, 90); /* both ends of nearly every numeric key */
}

/* The exact wording, the same for the file and the metadata. */
static void test_wording(void)
{
    static const struct {
        const char *text, *message;
    } t[] = {
        {"[broker]\n# x\ninterval_ms = 50\n",
         "t.conf:3: [broker] interval_ms: invalid value \"50\" (want a duration from 100 to "
         "60000 ms)"},
        {"[policy]\nhost_reserve = 12XB\n",
         "t.conf:2: [policy] host_reserve: invalid value \"12XB\" (want a size from 0 to 1 TiB)"},
        {"[policy]\nmin_step = 512\n",
         "t.conf:2: [policy] min_step: invalid value \"512\" (want a size from 1 MiB to 64 GiB)"},
        {"[broker]\ndefault_mode = sometimes\n",
         "t.conf:2: [broker] default_mode: invalid value \"sometimes\" (want auto, observe or "
         "off)"},
        {"[ksm]\nstart_below_percent = 9.5\n",
         "t.conf:2: [ksm] start_below_percent: invalid value \"9.5\" (want a whole percentage "
         "from 1 to 95)"},
        {"[broker]\npsi_trigger_window_us = 600000\npsi_trigger_stall_us = 700000\n",
         "t.conf:3: [broker] psi_trigger_stall_us: psi_trigger_stall_us = 700000 must be below "
         "psi_trigger_window_us (600000)"},
        /* only the second of the pair written: it is the one blamed */
        {"[ksm]\n\npages_max = 10\n",
         "t.conf:3: [ksm] pages_max: pages_min = 64 must not exceed pages_max (10)"},
        {"[broker]\nrate_limit_per_s = 5000\n",
         "t.conf:2: [broker] rate_limit_per_s: rate_limit_burst = 100 must be at least a tenth "
         "of rate_limit_per_s (5000)"},
        {"[metrics]\nlisten = localhost\n",
         "t.conf:2: [metrics] listen: invalid value \"localhost\" (want ADDR:PORT with a numeric "
         "address, e.g. 127.0.0.1:9178 or [::1]:9178, or nothing)"},
        /* hostile bytes are escaped, long values cut */
        {"[broker]\ndefault_ksm = a\tb\n",
         "t.conf:2: [broker] default_ksm: invalid value \"a\\tb\" (want auto, never or always)"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        g_autofree char *err = load_error(t[i].text, CONFIG_LOAD_STRICT);
        g_assert_cmpstr(err, ==, t[i].message);
    }

    /* The metadata: the same parsers and words, named by attribute. */
    static const struct {
        const char *attr, *value, *message;
    } m[] = {
        {"min", "12XB", "min: invalid value \"12XB\" (want a size from 0 to 1024 TiB)"},
        {"shares", "0", "shares: invalid value \"0\" (want a whole number from 1 to 100000)"},
        {"mode", "Observe", "mode: invalid value \"Observe\" (want auto, observe or off)"},
        {"ksm", "", "ksm: invalid value \"\" (want auto, never or always)"},
        {"latency-sensitive", "maybe",
         "latency-sensitive: invalid value \"maybe\" (want true or false)"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(m); i++) {
        DomxmlPolicy p = {0};
        g_autoptr(GError) e = NULL;
        g_assert_false(config_meta_set(&p, m[i].attr, m[i].value, &e));
        g_assert_error(e, CONFIG_ERROR, CONFIG_ERROR_VALUE);
        g_assert_cmpstr(e->message, ==, m[i].message);
        DomxmlPolicy zero = {0};
        g_assert_cmpmem(&p, sizeof(p), &zero, sizeof(zero));
    }
    DomxmlPolicy p = {0};
    g_assert_true(config_meta_set(&p, "min", "6GiB", NULL));
    g_assert_true(p.has_min);
    g_assert_cmpuint(p.min_kib, ==, 6 * 1024 * 1024);
    g_assert_true(config_meta_set(&p, "latency-sensitive", "Yes", NULL));
    g_assert_true(p.has_latency_sensitive && p.latency_sensitive);
    g_assert_true(config_meta_set(&p, "color", "blue", NULL)); /* unknown: ignored */
}

/* Every error of a file, one line each, in file order; the GError is the first. */
static void test_all_errors(void)
{
    const char *text = "[broker]\n"
                       "tick_ms = fast\n"
                       "bogus = 1\n"
                       "[policy]\n"
                       "min_floor = lots\n"
                       "[nope]\n";
    g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) e = NULL;
    Config c;

    config_init_defaults(&c);
    g_assert_false(config_load_data(&c, "t.conf", text, strlen(text), 0, warnings, errors, &e));
    g_assert_cmpuint(errors->len, ==, 2);
    g_assert_true(g_str_has_prefix(errors->pdata[0], "t.conf:2: [broker] tick_ms: "));
    g_assert_true(g_str_has_prefix(errors->pdata[1], "t.conf:5: [policy] min_floor: "));
    g_assert_cmpstr(e->message, ==, errors->pdata[0]);
    g_assert_cmpuint(warnings->len, ==, 2);
    g_assert_cmpstr(warnings->pdata[0], ==, "t.conf:3: [broker] bogus: unknown key");
    g_assert_cmpstr(warnings->pdata[1], ==, "t.conf:6: [nope]: unknown group");

    /* Strict: the same unknowns are errors, with the values' errors. */
    g_ptr_array_set_size(errors, 0);
    g_ptr_array_set_size(warnings, 0);
    g_clear_error(&e);
    g_assert_false(config_load_data(&c, "t.conf", text, strlen(text), CONFIG_LOAD_STRICT, warnings,
                                    errors, &e));
    g_assert_cmpuint(errors->len, ==, 4);
    g_assert_cmpuint(warnings->len, ==, 0);
    g_assert_cmpstr(errors->pdata[1], ==, "t.conf:3: [broker] bogus: unknown key");
    config_clear(&c);
}

/* Unknown groups and keys: warnings (a newer file on an older broker), and
 * what is known still applies; --strict refuses them. */
static void test_unknown_warns(void)
{
    const char *text = "[broker]\ntick_ms = 500\nfuture_key = 1\n[future]\nx = 1\n";
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) e = NULL;
    Config c;

    config_init_defaults(&c);
    g_assert_true(config_load_data(&c, "t.conf", text, strlen(text), 0, warnings, NULL, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(c.tick_ms, ==, 500);
    g_assert_cmpuint(warnings->len, ==, 2);
    g_assert_cmpstr(warnings->pdata[0], ==, "t.conf:3: [broker] future_key: unknown key");
    g_assert_cmpstr(warnings->pdata[1], ==, "t.conf:4: [future]: unknown group");

    Config before = c;
    g_assert_false(
        config_load_data(&c, "t.conf", text, strlen(text), CONFIG_LOAD_STRICT, NULL, NULL, &e));
    g_assert_error(e, CONFIG_ERROR, CONFIG_ERROR_KEY);
    g_assert_cmpstr(e->message, ==, "t.conf:3: [broker] future_key: unknown key");
    g_assert_cmpmem(&c, sizeof(c), &before, sizeof(before));
    config_clear(&c);
}

/* The effective configuration names every key and loads back to itself. */
static void test_effective(void)
{
    const char *text = "[broker]\ntick_ms = 2s\non_stop = release\ncontrol_group = ops\n"
                       "[metrics]\nlisten = 127.0.0.1:9178\n"
                       "[policy]\nmin_floor = 6GiB\npsi_some_avg10 = 0.25\nagentless = leave\n"
                       "[ksm]\nlatency_sensitive = db1; db2\nmin_profit_mib = 3\n";
    g_autoptr(GError) e = NULL;
    Config a, b, d;

    config_init_defaults(&a);
    g_assert_true(
        config_load_data(&a, "t.conf", text, strlen(text), CONFIG_LOAD_STRICT, NULL, NULL, &e));
    g_autofree char *out = config_to_text(&a);
    for (gsize i = 0; i < config_key_count; i++) {
        const ConfigKey *k = &config_key_table[i];
        g_assert_cmpuint(config_locate(out, strlen(out), k->group, k->name), >, 0);
    }
    g_assert_nonnull(strstr(out, "\nmin_floor = 6GiB\n"));
    g_assert_nonnull(strstr(out, "\nlatency_sensitive = db1;db2\n"));
    g_assert_nonnull(strstr(out, "\nlisten = 127.0.0.1:9178\n"));
    config_init_defaults(&b);
    g_assert_true(
        config_load_data(&b, "out", out, strlen(out), CONFIG_LOAD_STRICT, NULL, NULL, &e));
    g_assert_no_error(e);
    g_assert_cmpmem(&a, G_STRUCT_OFFSET(Config, ksm), &b, G_STRUCT_OFFSET(Config, ksm));
    g_assert_cmpmem(&a.ksm, G_STRUCT_OFFSET(KsmConfig, latency_sensitive), &b.ksm,
                    G_STRUCT_OFFSET(KsmConfig, latency_sensitive));
    g_assert_true(g_strv_equal((const char *const *)a.ksm.latency_sensitive,
                               (const char *const *)b.ksm.latency_sensitive));

    /* The defaults too. */
    config_init_defaults(&d);
    g_autofree char *dtext = config_to_text(&d);
    config_clear(&b);
    config_init_defaults(&b);
    b.tick_ms = 1;
    g_assert_true(
        config_load_data(&b, "out", dtext, strlen(dtext), CONFIG_LOAD_STRICT, NULL, NULL, &e));
    g_assert_cmpmem(&b, sizeof(b), &d, sizeof(d));
    config_clear(&a);
    config_clear(&b);
    config_clear(&d);
}

static char *source_file(const char *rel)
{
    g_autofree char *path = g_build_filename(g_getenv("BALLAST_TEST_DATA"), "..", "..", rel, NULL);
    char *text = NULL;
    g_autoptr(GError) e = NULL;

    g_assert_true(g_file_get_contents(path, &text, NULL, &e));
    g_assert_no_error(e);
    return text;
}

/* The docs' key tables, ballastd.conf(5) and the example file are the
 * engine's output, byte for byte (tools/update-config-docs.sh rewrites them). */
static void test_docs_in_sync(void)
{
    static const struct {
        const char *file, *formats;
    } docs[] = {
        {"docs/configuration.md", "markdown:broker markdown:metrics summary:policy markdown:ksm "
                                  "metadata"},
        {"docs/policy.md", "markdown:policy"},
        {"docs/ksm.md", "markdown:ksm"},
    };
    g_autoptr(GRegex) re = g_regex_new("<!-- ballastd --print-config-doc=(\\S+) [^>]*-->\\n"
                                       "(.*?)<!-- end of generated text -->",
                                       G_REGEX_DOTALL, 0, NULL);

    for (gsize i = 0; i < G_N_ELEMENTS(docs); i++) {
        g_autofree char *text = source_file(docs[i].file);
        g_autoptr(GMatchInfo) mi = NULL;
        g_autoptr(GString) seen = g_string_new(NULL);

        g_regex_match(re, text, 0, &mi);
        for (; g_match_info_matches(mi); g_match_info_next(mi, NULL)) {
            g_autofree char *fmt = g_match_info_fetch(mi, 1);
            g_autofree char *body = g_match_info_fetch(mi, 2);
            g_autofree char *want = config_doc(fmt);
            g_assert_nonnull(want);
            if (strcmp(body, want) != 0)
                g_error("%s: the %s block is not the engine's (run tools/update-config-docs.sh "
                        "build); want:\n%s",
                        docs[i].file, fmt, want);
            g_string_append_printf(seen, "%s%s", seen->len ? " " : "", fmt);
        }
        g_assert_cmpstr(seen->str, ==, docs[i].formats);
    }

    static const struct {
        const char *file, *format;
    } whole[] = {
        {"packaging/ballastd.conf.5", "man"},
        {"packaging/ballastd.conf", "example"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(whole); i++) {
        g_autofree char *text = source_file(whole[i].file);
        g_autofree char *want = config_doc(whole[i].format);
        if (strcmp(text, want) != 0)
            g_error("%s is not ballastd --print-config-doc=%s (run tools/update-config-docs.sh "
                    "build)",
                    whole[i].file, whole[i].format);
    }
    g_assert_null(config_doc("markdown:nope"));
    g_assert_null(config_doc("html"));
}

/* Run ballastd with args; its exit status, stdout and stderr. */
static int run_ballastd(const char *const *args, char **out, char **err)
{
    const char *bin = g_getenv("BALLASTD");
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) e = NULL;
    int status = -1;

    g_ptr_array_add(argv, (gpointer)bin);
    for (guint i = 0; args[i]; i++)
        g_ptr_array_add(argv, (gpointer)args[i]);
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out,
                               err, &status, &e));
    g_assert_no_error(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ballastd --check-config [FILE] [--strict]: 0 and the effective
 * configuration, or 1 and one line per error naming the key. */
static void test_check_config_cli(void)
{
    if (g_getenv("BALLASTD") == NULL) {
        g_test_skip("BALLASTD not set");
        return;
    }
    g_autofree char *good = write_tmp("[policy]\nmin_floor = 6GiB\n[future]\nx = 1\n");
    g_autofree char *bad = write_tmp("[broker]\ntick_ms = fast\n[policy]\nmin_floor = lots\n");
    g_autofree char *out = NULL, *err = NULL;

    const char *const a1[] = {"--check-config", good, NULL};
    g_assert_cmpint(run_ballastd(a1, &out, &err), ==, 0);
    g_assert_nonnull(strstr(out, "[policy]\n"));
    g_assert_nonnull(strstr(out, "\nmin_floor = 6GiB\n"));
    g_assert_nonnull(strstr(out, "\ninterval_ms = 1000\n"));
    g_autofree char *w = g_strdup_printf("warning: %s:3: [future]: unknown group\n", good);
    g_assert_cmpstr(err, ==, w);
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    const char *const a2[] = {"--check-config", "--strict", good, NULL};
    g_assert_cmpint(run_ballastd(a2, &out, &err), ==, 1);
    g_assert_cmpstr(out, ==, "");
    g_autofree char *s = g_strdup_printf("%s:3: [future]: unknown group\n", good);
    g_assert_cmpstr(err, ==, s);
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    const char *const a3[] = {"--config", bad, "--check-config", NULL};
    g_assert_cmpint(run_ballastd(a3, &out, &err), ==, 1);
    g_auto(GStrv) lines = g_strsplit(err, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 3); /* two errors and the final "" */
    g_autofree char *l1 = g_strdup_printf("%s:2: [broker] tick_ms: invalid value \"fast\"", bad);
    g_autofree char *l2 = g_strdup_printf("%s:4: [policy] min_floor: invalid value \"lots\"", bad);
    g_assert_true(g_str_has_prefix(lines[0], l1));
    g_assert_true(g_str_has_prefix(lines[1], l2));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);

    /* An explicit file that is not there is an error. */
    const char *const a4[] = {"--check-config", "/nonexistent/ballastd.conf", NULL};
    g_assert_cmpint(run_ballastd(a4, &out, &err), ==, 1);
    g_assert_true(g_str_has_prefix(err, "/nonexistent/ballastd.conf: "));
    g_unlink(good);
    g_unlink(bad);
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
    g_test_add_func("/config/parse-size", test_parse_size);
    g_test_add_func("/config/policy/good", test_policy_good);
    g_test_add_func("/config/policy/bad", test_policy_bad);
    g_test_add_func("/config/policy/unknown-key", test_policy_unknown_key);
    g_test_add_func("/config/policy/documented", test_policy_documented);
    g_test_add_func("/config/ksm", test_ksm_load);
    g_test_add_func("/config/types", test_types);
    g_test_add_func("/config/range-edges", test_range_edges);
    g_test_add_func("/config/wording", test_wording);
    g_test_add_func("/config/all-errors", test_all_errors);
    g_test_add_func("/config/unknown-warns", test_unknown_warns);
    g_test_add_func("/config/effective", test_effective);
    g_test_add_func("/config/docs-in-sync", test_docs_in_sync);
    g_test_add_func("/config/check-config-cli", test_check_config_cli);
    return g_test_run();
}
