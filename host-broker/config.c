/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ballast-config.h"

#include "config.h"

#include <errno.h>
#include <string.h>

#include "metrics.h"
#include "protocol.h"

GQuark config_error_quark(void)
{
    return g_quark_from_static_string("ballast-config-error-quark");
}

/* ballastd.conf is a few KiB; this only stops a wrong file. */
#define CONFIG_FILE_MAX (1024 * 1024)

void config_init_defaults(Config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->interval_ms = BL_PROTO_INTERVAL_DEFAULT_MS;
    cfg->tick_ms = 1000;
    cfg->stats_period_s = 1;
    cfg->default_mode = POLICY_MODE_AUTO;
    cfg->default_ksm = POLICY_KSM_AUTO;
    cfg->allow_qemu_monitor = FALSE;
    g_strlcpy(cfg->control_socket, BALLAST_RUNSTATEDIR "/ballast/ballastd.sock",
              sizeof(cfg->control_socket));
    cfg->psi_trigger = CONFIG_PSI_TRIGGER_SOME;
    cfg->psi_trigger_stall_us = 100000;
    cfg->psi_trigger_window_us = 1000000;
    cfg->rate_limit_per_s = 50;
    cfg->rate_limit_burst = 100;
    cfg->read_budget_bytes = 65536;
    cfg->channel_poll_ms = 1000;
    cfg->session_retry_ms = 2000;
    cfg->reconnect_min_ms = 500;
    cfg->reconnect_max_ms = 30000;
    policy_config_init_defaults(&cfg->policy);
    ksm_config_init_defaults(&cfg->ksm);
}

void config_clear(Config *cfg)
{
    ksm_config_clear(&cfg->ksm);
}

static const char *const mode_names[] = {
    [POLICY_MODE_AUTO] = "auto",
    [POLICY_MODE_OBSERVE] = "observe",
    [POLICY_MODE_OFF] = "off",
};

static const char *const ksm_names[] = {
    [POLICY_KSM_AUTO] = "auto",
    [POLICY_KSM_NEVER] = "never",
    [POLICY_KSM_ALWAYS] = "always",
};

const char *config_mode_name(PolicyMode mode)
{
    return (guint)mode < G_N_ELEMENTS(mode_names) ? mode_names[mode] : "?";
}

gboolean config_parse_mode(const char *text, PolicyMode *mode)
{
    for (guint i = 0; i < G_N_ELEMENTS(mode_names); i++) {
        if (g_strcmp0(text, mode_names[i]) == 0) {
            *mode = (PolicyMode)i;
            return TRUE;
        }
    }
    return FALSE;
}

const char *config_ksm_name(PolicyKsm ksm)
{
    return (guint)ksm < G_N_ELEMENTS(ksm_names) ? ksm_names[ksm] : "?";
}

gboolean config_parse_ksm(const char *text, PolicyKsm *ksm)
{
    for (guint i = 0; i < G_N_ELEMENTS(ksm_names); i++) {
        if (g_strcmp0(text, ksm_names[i]) == 0) {
            *ksm = (PolicyKsm)i;
            return TRUE;
        }
    }
    return FALSE;
}

/* ---- locating a key's line (GKeyFile does not report line numbers) ---- */

static gboolean line_is_group(const char *s, gsize n, const char *group)
{
    while (n > 0 && g_ascii_isspace(s[n - 1]))
        n--;
    while (n > 0 && g_ascii_isspace(*s))
        s++, n--;
    if (n < 2 || s[0] != '[' || s[n - 1] != ']')
        return FALSE;
    return group == NULL || (strlen(group) == n - 2 && strncmp(s + 1, group, n - 2) == 0);
}

static gboolean line_is_key(const char *s, gsize n, const char *key)
{
    while (n > 0 && g_ascii_isspace(*s))
        s++, n--;
    gsize k = strlen(key);
    if (n < k || strncmp(s, key, k) != 0)
        return FALSE;
    s += k, n -= k;
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    return n > 0 && (*s == '=' || *s == '[');
}

guint config_locate(const char *text, gsize len, const char *group, const char *key)
{
    guint line = 0, found = 0;
    gboolean in_group = FALSE;
    const char *p = text, *end = text + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (gsize)(end - p));
        gsize n = nl ? (gsize)(nl - p) : (gsize)(end - p);
        line++;
        if (line_is_group(p, n, NULL)) {
            in_group = line_is_group(p, n, group);
            if (in_group && key == NULL && found == 0)
                found = line;
        } else if (in_group && key != NULL && line_is_key(p, n, key)) {
            found = line; /* the last one wins, as in GKeyFile */
        }
        p = nl ? nl + 1 : end;
    }
    return found;
}

/* The first line GKeyFile would choke on: not blank, comment, group or key=value. */
static guint locate_syntax_error(const char *text, gsize len)
{
    guint line = 0;
    gboolean seen_group = FALSE;
    const char *p = text, *end = text + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (gsize)(end - p));
        gsize n = nl ? (gsize)(nl - p) : (gsize)(end - p);
        const char *s = p;
        gsize m = n;
        line++;
        while (m > 0 && g_ascii_isspace(*s))
            s++, m--;
        if (m == 0 || *s == '#') {
            /* blank or comment */
        } else if (line_is_group(p, n, NULL)) {
            seen_group = TRUE;
        } else if (!seen_group || memchr(s, '=', m) == NULL || *s == '=') {
            return line;
        }
        p = nl ? nl + 1 : end;
    }
    return line ? line : 1;
}

/* ---- [broker] ---- */

typedef enum {
    KEY_UINT,
    KEY_BOOL,
    KEY_MODE,
    KEY_KSM,
    KEY_PATH,
    KEY_PSI_TRIGGER,
} KeyType;

typedef struct {
    const char *name;
    KeyType type;
    gsize offset;
    guint64 min, max;
} KeyDesc;

#define K_UINT(n, lo, hi)                                                                          \
    {                                                                                              \
#n, KEY_UINT, G_STRUCT_OFFSET(Config, n), lo, hi                                           \
    }
static const KeyDesc broker_keys[] = {
    K_UINT(interval_ms, BL_PROTO_INTERVAL_MIN_MS, BL_PROTO_INTERVAL_MAX_MS),
    K_UINT(tick_ms, 100, 60000),
    K_UINT(stats_period_s, 0, 3600),
    {"default_mode", KEY_MODE, G_STRUCT_OFFSET(Config, default_mode), 0, 0},
    {"default_ksm", KEY_KSM, G_STRUCT_OFFSET(Config, default_ksm), 0, 0},
    {"allow_qemu_monitor", KEY_BOOL, G_STRUCT_OFFSET(Config, allow_qemu_monitor), 0, 0},
    {"control_socket", KEY_PATH, G_STRUCT_OFFSET(Config, control_socket), 0, 0},
    {"psi_trigger", KEY_PSI_TRIGGER, G_STRUCT_OFFSET(Config, psi_trigger), 0, 0},
    K_UINT(psi_trigger_stall_us, 1000, BL_PROTO_PSI_WINDOW_MAX_US),
    K_UINT(psi_trigger_window_us, BL_PROTO_PSI_WINDOW_MIN_US, BL_PROTO_PSI_WINDOW_MAX_US),
    K_UINT(rate_limit_per_s, 1, 100000),
    K_UINT(rate_limit_burst, 1, 1000000),
    K_UINT(read_budget_bytes, 4096, 16777216),
    K_UINT(channel_poll_ms, 100, 600000),
    K_UINT(session_retry_ms, 100, 600000),
    K_UINT(reconnect_min_ms, 100, 600000),
    K_UINT(reconnect_max_ms, 100, 3600000),
};

GStrv config_broker_keys(void)
{
    GStrv keys = g_new0(char *, G_N_ELEMENTS(broker_keys) + 1);

    for (guint i = 0; i < G_N_ELEMENTS(broker_keys); i++)
        keys[i] = g_strdup(broker_keys[i].name);
    return keys;
}

static gboolean load_broker_key(Config *cfg, GKeyFile *kf, const KeyDesc *d, GError **error)
{
    g_autofree char *raw = g_key_file_get_value(kf, "broker", d->name, error);
    if (raw == NULL)
        return FALSE;
    g_autofree char *v = g_strstrip(g_strdup(raw));
    void *field = G_STRUCT_MEMBER_P(cfg, d->offset);

    switch (d->type) {
    case KEY_UINT: {
        guint64 n;
        g_autoptr(GError) e = NULL;
        if (!g_ascii_string_to_unsigned(v, 10, d->min, d->max, &n, &e)) {
            g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
                        "invalid value \"%s\" (want a whole number from %" G_GUINT64_FORMAT
                        " to %" G_GUINT64_FORMAT ")",
                        v, d->min, d->max);
            return FALSE;
        }
        *(guint32 *)field = (guint32)n;
        return TRUE;
    }
    case KEY_BOOL:
        if (!policy_parse_bool(v, (gboolean *)field)) {
            g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
                        "invalid value \"%s\" (want true or false)", v);
            return FALSE;
        }
        return TRUE;
    case KEY_MODE:
        if (!config_parse_mode(v, (PolicyMode *)field)) {
            g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
                        "invalid value \"%s\" (want auto, observe or off)", v);
            return FALSE;
        }
        return TRUE;
    case KEY_KSM:
        if (!config_parse_ksm(v, (PolicyKsm *)field)) {
            g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
                        "invalid value \"%s\" (want auto, never or always)", v);
            return FALSE;
        }
        return TRUE;
    case KEY_PATH:
        if (v[0] != '/' || strlen(v) >= CONFIG_PATH_MAX) {
            g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
                        "invalid value \"%s\" (want an absolute path shorter than %d bytes)", v,
                        CONFIG_PATH_MAX);
            return FALSE;
        }
        g_strlcpy(field, v, CONFIG_PATH_MAX);
        return TRUE;
    case KEY_PSI_TRIGGER: {
        static const char *const names[] = {"none", "some", "full"};
        for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
            if (g_strcmp0(v, names[i]) == 0) {
                *(ConfigPsiTrigger *)field = (ConfigPsiTrigger)i;
                return TRUE;
            }
        }
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
                    "invalid value \"%s\" (want none, some or full)", v);
        return FALSE;
    }
    }
    g_assert_not_reached();
}

static gboolean load_broker(Config *cfg, GKeyFile *kf, const char *group, char **bad_key,
                            GError **error)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);

    for (guint i = 0; keys && keys[i]; i++) {
        const KeyDesc *d = NULL;
        for (guint j = 0; j < G_N_ELEMENTS(broker_keys); j++) {
            if (strcmp(keys[i], broker_keys[j].name) == 0)
                d = &broker_keys[j];
        }
        if (d == NULL) {
            *bad_key = g_strdup(keys[i]);
            g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_KEY, "unknown key");
            return FALSE;
        }
        if (!load_broker_key(cfg, kf, d, error)) {
            *bad_key = g_strdup(keys[i]);
            return FALSE;
        }
    }

    /* Keys that only make sense together. */
    const char *key = NULL;
    const char *why = NULL;
    if (cfg->psi_trigger_stall_us >= cfg->psi_trigger_window_us) {
        key = "psi_trigger_stall_us", why = "must be below psi_trigger_window_us";
    } else if (cfg->reconnect_min_ms > cfg->reconnect_max_ms) {
        key = "reconnect_min_ms", why = "must not exceed reconnect_max_ms";
    } else if (cfg->rate_limit_burst < cfg->rate_limit_per_s / 10) {
        key = "rate_limit_burst", why = "must be at least a tenth of rate_limit_per_s";
    }
    if (key != NULL) {
        /* Blame the key actually written, if only one of the pair is. */
        *bad_key = g_strdup(key);
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE, "%s", why);
        return FALSE;
    }
    return TRUE;
}

static gboolean load_policy(Config *cfg, GKeyFile *kf, const char *group, char **bad_key,
                            GError **error)
{
    return policy_config_load(&cfg->policy, kf, group, bad_key, error);
}

static gboolean load_ksm(Config *cfg, GKeyFile *kf, const char *group, char **bad_key,
                         GError **error)
{
    return ksm_config_load(&cfg->ksm, kf, group, bad_key, error);
}

/* [metrics] listen = ADDR:PORT (empty: no listener). */
static gboolean load_metrics(Config *cfg, GKeyFile *kf, const char *group, char **bad_key,
                             GError **error)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);

    for (guint i = 0; keys && keys[i]; i++) {
        *bad_key = g_strdup(keys[i]);
        if (strcmp(keys[i], "listen") != 0) {
            g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_KEY, "unknown key");
            return FALSE;
        }
        g_autofree char *raw = g_key_file_get_value(kf, group, keys[i], error);
        if (raw == NULL)
            return FALSE;
        g_autofree char *v = g_strstrip(g_strdup(raw));
        g_autoptr(GSocketAddress) addr = NULL;
        g_autoptr(GError) e = NULL;
        if (v[0] != '\0' &&
            (strlen(v) >= sizeof(cfg->metrics_listen) || !metrics_parse_listen(v, &addr, &e))) {
            g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE, "%s", e ? e->message : "too long");
            return FALSE;
        }
        g_strlcpy(cfg->metrics_listen, v, sizeof(cfg->metrics_listen));
        g_clear_pointer(bad_key, g_free);
    }
    return TRUE;
}

/* One loader per group. */
typedef gboolean (*ConfigGroupLoader)(Config *cfg, GKeyFile *kf, const char *group, char **bad_key,
                                      GError **error);
static const struct {
    const char *group;
    ConfigGroupLoader load;
} config_groups[] = {
    {"broker", load_broker},
    {"policy", load_policy},
    {"ksm", load_ksm},
    {"metrics", load_metrics},
};

gboolean config_load_data(Config *cfg, const char *name, const char *text, gsize len,
                          GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) e = NULL;
    Config next;

    /* A byte-order mark (some editors write one) is not content. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        text += 3, len -= 3;
    if (len > CONFIG_FILE_MAX) {
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_SYNTAX,
                    "%s: larger than %d bytes: not a ballastd.conf", name, CONFIG_FILE_MAX);
        return FALSE;
    }
    if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &e)) {
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_SYNTAX, "%s:%u: %s", name,
                    locate_syntax_error(text, len), e->message);
        return FALSE;
    }

    config_init_defaults(&next);
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    for (guint i = 0; groups[i]; i++) {
        ConfigGroupLoader load = NULL;
        for (guint j = 0; j < G_N_ELEMENTS(config_groups); j++) {
            if (strcmp(groups[i], config_groups[j].group) == 0)
                load = config_groups[j].load;
        }
        if (load == NULL) {
            g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_GROUP, "%s:%u: [%s]: unknown group", name,
                        config_locate(text, len, groups[i], NULL), groups[i]);
            config_clear(&next);
            return FALSE;
        }
        g_autofree char *bad_key = NULL;
        if (!load(&next, kf, groups[i], &bad_key, &e)) {
            const char *msg = e ? e->message : "invalid";
            guint line = bad_key ? config_locate(text, len, groups[i], bad_key) : 0;
            if (line == 0)
                line = config_locate(text, len, groups[i], NULL);
            gint code = CONFIG_ERROR_VALUE;
            if (e && e->domain == CONFIG_ERROR)
                code = e->code;
            else if (g_error_matches(e, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND))
                code = CONFIG_ERROR_KEY;
            /* The policy's messages already name "[group] key". */
            if (msg[0] == '[' || bad_key == NULL)
                g_set_error(error, CONFIG_ERROR, code, "%s:%u: %s", name, line, msg);
            else
                g_set_error(error, CONFIG_ERROR, code, "%s:%u: [%s] %s: %s", name, line, groups[i],
                            bad_key, msg);
            config_clear(&next);
            return FALSE;
        }
    }
    config_clear(cfg);
    *cfg = next;
    return TRUE;
}

gboolean config_load_file(Config *cfg, const char *path, gboolean must_exist, GError **error)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) e = NULL;

    if (!g_file_get_contents(path, &text, &len, &e)) {
        if (g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT) && !must_exist) {
            config_clear(cfg);
            config_init_defaults(cfg);
            return TRUE;
        }
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_MISSING, "%s: %s", path, e->message);
        return FALSE;
    }
    return config_load_data(cfg, path, text, len, error);
}
