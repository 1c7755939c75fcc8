/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The configuration engine: load a key file over the table's defaults,
 * validate it, say where it is wrong, print what is in force (config.h).
 */
#include "ballast-config.h"

#include "config.h"

#include <string.h>

#include "config-value.h"
#include "domxml.h"

GQuark config_error_quark(void)
{
    return g_quark_from_static_string("ballast-config-error-quark");
}

/* ballastd.conf is a few KiB; this only stops a wrong file. */
#define CONFIG_FILE_MAX (1024 * 1024)

void config_init_defaults(Config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (gsize i = 0; i < config_key_count; i++) {
        gboolean ok = config_value_parse(&config_key_table[i], config_key_table[i].def, cfg, NULL);
        g_assert(ok); /* the defaults are part of the program (and tested) */
    }
}

void config_clear(Config *cfg)
{
    for (gsize i = 0; i < config_key_count; i++) {
        const ConfigKey *k = &config_key_table[i];
        if (k->store == CONFIG_STORE_STRV)
            g_clear_pointer((char ***)G_STRUCT_MEMBER_P(cfg, k->offset), g_strfreev);
    }
}

/* The modules' own init functions take their defaults from the same rows. */
void policy_config_init_defaults(PolicyConfig *config)
{
    Config cfg;

    config_init_defaults(&cfg);
    *config = cfg.policy;
    config_clear(&cfg);
}

void ksm_config_init_defaults(KsmConfig *config)
{
    Config cfg;

    config_init_defaults(&cfg);
    *config = cfg.ksm; /* takes what it owns (latency_sensitive) */
}

const char *config_on_stop_name(ConfigOnStop on_stop)
{
    return on_stop == CONFIG_ON_STOP_RELEASE ? "release" : "keep";
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

/* The problems of one load: lines, and the code of the first. */
typedef struct {
    const char *name;
    const char *text;
    gsize len;
    ConfigLoadFlags flags;
    GPtrArray *errors;   /* char * */
    GPtrArray *warnings; /* char *, or NULL */
    gint first_code;
} Load;

/* A name some ballast could have: anything else is a broken file, not a
 * newer one, and an error even when unknown names are only warnings. */
static gboolean is_name(const char *name)
{
    return name[0] != '\0' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") ==
               strlen(name);
}

static void problem(Load *l, gint code, const char *group, const char *key, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);
static void problem(Load *l, gint code, const char *group, const char *key, const char *fmt, ...)
{
    va_list ap;
    guint line = config_locate(l->text, l->len, group, key);
    gboolean warn = (code == CONFIG_ERROR_GROUP || code == CONFIG_ERROR_KEY) &&
                    !(l->flags & CONFIG_LOAD_STRICT);

    if (line == 0)
        line = config_locate(l->text, l->len, group, NULL);
    va_start(ap, fmt);
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autofree char *g = config_value_printable(group);
    g_autofree char *k = key ? config_value_printable(key) : NULL;
    char *msg = key ? g_strdup_printf("%s:%u: [%s] %s: %s", l->name, line, g, k, what)
                    : g_strdup_printf("%s:%u: [%s]: %s", l->name, line, g, what);
    if (warn) {
        if (l->warnings)
            g_ptr_array_add(l->warnings, msg);
        else
            g_free(msg);
        return;
    }
    if (l->errors->len == 0)
        l->first_code = code;
    g_ptr_array_add(l->errors, msg);
}

static double number(const ConfigKey *k, const Config *cfg)
{
    const void *field = G_STRUCT_MEMBER_P(cfg, k->offset);

    switch (k->store) {
    case CONFIG_STORE_U32:
        return *(const guint32 *)field;
    case CONFIG_STORE_U64:
        return (double)*(const guint64 *)field;
    case CONFIG_STORE_DOUBLE:
        return *(const double *)field;
    case CONFIG_STORE_BOOL:
    case CONFIG_STORE_ENUM:
    case CONFIG_STORE_CHARS:
    case CONFIG_STORE_STRV:
        break;
    }
    g_assert_not_reached();
}

/* Keys that only make sense together. Blame the key written in the file (the
 * first of the pair when both or neither are). */
static void check_rules(Load *l, GKeyFile *kf, const Config *cfg)
{
    for (gsize i = 0; i < config_rule_count; i++) {
        const ConfigRule *r = &config_rule_table[i];
        const ConfigKey *a = config_key_find(r->group, r->a), *b = config_key_find(r->group, r->b);
        double va = number(a, cfg), vb = number(b, cfg) * r->factor;
        gboolean ok = r->op == CONFIG_RULE_BELOW     ? va < vb
                      : r->op == CONFIG_RULE_AT_MOST ? va <= vb
                                                     : va >= vb;
        if (ok)
            continue;
        const char *blame = r->a;
        if (!g_key_file_has_key(kf, r->group, r->a, NULL) &&
            g_key_file_has_key(kf, r->group, r->b, NULL))
            blame = r->b;
        g_autofree char *fa = config_value_format(a, cfg);
        g_autofree char *fb = config_value_format(b, cfg);
        problem(l, CONFIG_ERROR_VALUE, r->group, blame, "%s = %s %s %s (%s)", r->a, fa, r->why,
                r->b, fb);
    }
}

static void load_groups(Load *l, GKeyFile *kf, Config *next)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

    for (guint i = 0; groups[i]; i++) {
        const char *group = groups[i];
        if (!config_group_known(group)) {
            if (is_name(group))
                problem(l, CONFIG_ERROR_GROUP, group, NULL, "unknown group");
            else
                problem(l, CONFIG_ERROR_SYNTAX, group, NULL, "not a group name");
            continue;
        }
        g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
        for (guint j = 0; keys && keys[j]; j++) {
            const ConfigKey *k = config_key_find(group, keys[j]);
            g_autoptr(GError) e = NULL;
            if (k == NULL) {
                if (is_name(keys[j]))
                    problem(l, CONFIG_ERROR_KEY, group, keys[j], "unknown key");
                else
                    problem(l, CONFIG_ERROR_SYNTAX, group, keys[j], "not a key name");
                continue;
            }
            g_autofree char *raw = g_key_file_get_value(kf, group, keys[j], NULL);
            if (!config_value_parse(k, raw ? raw : "", next, &e))
                problem(l, CONFIG_ERROR_VALUE, group, keys[j], "%s", e->message);
        }
    }
}

static void add_all(GPtrArray *to, GPtrArray *from)
{
    for (guint i = 0; to && i < from->len; i++)
        g_ptr_array_add(to, g_strdup(from->pdata[i]));
}

gboolean config_load_data(Config *cfg, const char *name, const char *text, gsize len,
                          ConfigLoadFlags flags, GPtrArray *warnings, GPtrArray *errors,
                          GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) e = NULL;
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
    Config next;

    /* A byte-order mark (some editors write one) is not content. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        text += 3, len -= 3;
    char *syntax = NULL;
    if (len > CONFIG_FILE_MAX)
        syntax =
            g_strdup_printf("%s: larger than %d bytes: not a ballastd.conf", name, CONFIG_FILE_MAX);
    else if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &e))
        syntax = g_strdup_printf("%s:%u: %s", name, locate_syntax_error(text, len), e->message);
    if (syntax != NULL) {
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_SYNTAX, "%s", syntax);
        if (errors)
            g_ptr_array_add(errors, syntax);
        else
            g_free(syntax);
        return FALSE;
    }

    Load l = {.name = name,
              .text = text,
              .len = len,
              .flags = flags,
              .errors = found,
              .warnings = warnings};
    config_init_defaults(&next);
    load_groups(&l, kf, &next);
    if (found->len == 0)
        check_rules(&l, kf, &next);
    if (found->len > 0) {
        g_set_error(error, CONFIG_ERROR, l.first_code, "%s", (char *)found->pdata[0]);
        add_all(errors, found);
        config_clear(&next);
        return FALSE;
    }
    config_clear(cfg);
    *cfg = next;
    return TRUE;
}

gboolean config_load_file(Config *cfg, const char *path, ConfigLoadFlags flags, GPtrArray *warnings,
                          GPtrArray *errors, GError **error)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) e = NULL;

    if (!g_file_get_contents(path, &text, &len, &e)) {
        if (g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT) &&
            !(flags & CONFIG_LOAD_MUST_EXIST)) {
            config_clear(cfg);
            config_init_defaults(cfg);
            return TRUE;
        }
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_MISSING, "%s: %s", path, e->message);
        if (errors)
            g_ptr_array_add(errors, g_strdup_printf("%s: %s", path, e->message));
        return FALSE;
    }
    return config_load_data(cfg, path, text, len, flags, warnings, errors, error);
}

char *config_to_text(const Config *cfg)
{
    GString *s = g_string_new(NULL);

    for (gsize g = 0; g < config_group_count; g++) {
        const char *group = config_group_table[g].name;
        g_string_append_printf(s, "%s[%s]\n", g ? "\n" : "", group);
        for (gsize i = 0; i < config_key_count; i++) {
            const ConfigKey *k = &config_key_table[i];
            if (strcmp(k->group, group) != 0)
                continue;
            g_autofree char *v = config_value_format(k, cfg);
            g_string_append_printf(s, "%s =%s%s\n", k->name, v[0] ? " " : "", v);
        }
    }
    return g_string_free(s, FALSE);
}

GStrv config_groups(void)
{
    GStrv v = g_new0(char *, config_group_count + 1);

    for (gsize i = 0; i < config_group_count; i++)
        v[i] = g_strdup(config_group_table[i].name);
    return v;
}

GStrv config_keys(const char *group)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();

    for (gsize i = 0; i < config_key_count; i++) {
        if (strcmp(config_key_table[i].group, group) == 0)
            g_strv_builder_add(b, config_key_table[i].name);
    }
    return g_strv_builder_end(b);
}

gboolean config_meta_set(struct DomxmlPolicy *policy, const char *attr, const char *value,
                         GError **error)
{
    g_autoptr(GError) e = NULL;

    for (gsize i = 0; i < config_meta_count; i++) {
        const ConfigKey *k = &config_meta_table[i];
        if (strcmp(k->name, attr) != 0)
            continue;
        if (config_value_parse(k, value, policy, &e))
            return TRUE;
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE, "%s: %s", attr, e->message);
        return FALSE;
    }
    return TRUE;
}
