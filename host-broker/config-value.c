/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The configuration engine's value types: parse, format, describe (config-value.h). */
#include "config-value.h"

#include <errno.h>
#include <gio/gio.h>
#include <math.h>
#include <string.h>

#include "config.h"

typedef struct {
    const char *unit; /* lower case; "" for a bare number */
    guint64 mult;     /* in the smallest unit of the family (bytes, us) */
} ScaleUnit;

#define KIB_B G_GUINT64_CONSTANT(1024)
#define MIB_B (KIB_B * 1024)
#define GIB_B (MIB_B * 1024)
#define TIB_B (GIB_B * 1024)

static const ScaleUnit size_units[] = {
    {"k", KIB_B}, {"kib", KIB_B}, {"m", MIB_B}, {"mib", MIB_B},
    {"g", GIB_B}, {"gib", GIB_B}, {"t", TIB_B}, {"tib", TIB_B},
};

static const ScaleUnit time_units[] = {
    {"us", 1},
    {"ms", 1000},
    {"s", 1000000},
    {"min", 60000000},
    {"h", G_GUINT64_CONSTANT(3600000000)},
};

/* The smallest unit's count in one base unit. */
static guint64 unit_mult(ConfigUnit unit)
{
    switch (unit) {
    case CONFIG_UNIT_KIB:
        return KIB_B;
    case CONFIG_UNIT_MIB:
        return MIB_B;
    case CONFIG_UNIT_MS:
        return 1000;
    case CONFIG_UNIT_S:
        return 1000000;
    case CONFIG_UNIT_NONE:
    case CONFIG_UNIT_BYTES:
    case CONFIG_UNIT_US:
        return 1;
    }
    return 1;
}

/* "<digits>[ ]<unit>" with a unit from the table or none (then base_mult),
 * case-insensitive: no sign, no fraction, no overflow; the result in base
 * units, which it must be a whole number of. Shared by sizes and durations. */
static gboolean parse_scaled(const char *text, const ScaleUnit *units, gsize n_units,
                             guint64 base_mult, guint64 *out)
{
    const char *p = text;
    char *end = NULL;
    guint64 n, mult = 0;

    while (g_ascii_isspace(*p))
        p++;
    if (!g_ascii_isdigit(*p))
        return FALSE; /* no sign, no empty */
    errno = 0;
    n = g_ascii_strtoull(p, &end, 10);
    if (errno != 0)
        return FALSE;
    while (g_ascii_isspace(*end))
        end++;
    g_autofree char *unit = g_ascii_strdown(end, -1);
    g_strchomp(unit);
    if (unit[0] == '\0')
        mult = base_mult;
    for (gsize i = 0; i < n_units && mult == 0; i++) {
        if (strcmp(unit, units[i].unit) == 0)
            mult = units[i].mult;
    }
    if (mult == 0 || n > G_MAXUINT64 / mult || (n * mult) % base_mult != 0)
        return FALSE;
    *out = n * mult / base_mult;
    return TRUE;
}

gboolean config_parse_size(const char *text, ConfigUnit unit, guint64 *out)
{
    return parse_scaled(text, size_units, G_N_ELEMENTS(size_units), unit_mult(unit), out);
}

gboolean config_parse_duration(const char *text, ConfigUnit unit, guint64 *out)
{
    return parse_scaled(text, time_units, G_N_ELEMENTS(time_units), unit_mult(unit), out);
}

gboolean config_parse_bool(const char *text, gboolean *value)
{
    if (g_ascii_strcasecmp(text, "true") == 0 || g_ascii_strcasecmp(text, "yes") == 0 ||
        strcmp(text, "1") == 0) {
        *value = TRUE;
        return TRUE;
    }
    if (g_ascii_strcasecmp(text, "false") == 0 || g_ascii_strcasecmp(text, "no") == 0 ||
        strcmp(text, "0") == 0) {
        *value = FALSE;
        return TRUE;
    }
    return FALSE;
}

/* A decimal number, optionally followed by '%' when pct. */
static gboolean parse_double(const char *text, gboolean pct, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = g_ascii_strtod(text, &end);
    if (end == text || errno != 0 || !isfinite(v))
        return FALSE;
    while (g_ascii_isspace(*end))
        end++;
    if (pct && *end == '%')
        end++;
    while (g_ascii_isspace(*end))
        end++;
    if (*end != '\0')
        return FALSE;
    *out = v;
    return TRUE;
}

static gboolean parse_uint(const char *text, guint64 *out)
{
    return text[0] != '\0' && strspn(text, "0123456789") == strlen(text) &&
           g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, out, NULL);
}

/* An IP literal and a port: what a listener can bind without a resolver. */
static gboolean parse_address(const char *text)
{
    g_autoptr(GSocketConnectable) a = NULL;

    if (text[0] == '\0')
        return TRUE;
    a = g_network_address_parse(text, 0, NULL);
    if (a == NULL)
        return FALSE;
    GNetworkAddress *na = G_NETWORK_ADDRESS(a);
    const char *host = g_network_address_get_hostname(na);
    return g_network_address_get_port(na) != 0 && host != NULL && g_hostname_is_ip_address(host);
}

/* A POSIX portable group name (useradd's rule): [a-z_][a-z0-9_-]*[$]?, at most 32. */
static gboolean parse_group(const char *text, gsize size)
{
    gsize n = strlen(text);

    if (n == 0)
        return TRUE;
    if (n > 32 || n >= size || !(g_ascii_islower(text[0]) || text[0] == '_'))
        return FALSE;
    for (gsize i = 1; i < n; i++) {
        char c = text[i];
        if (!(g_ascii_islower(c) || g_ascii_isdigit(c) || c == '_' || c == '-' ||
              (c == '$' && i == n - 1)))
            return FALSE;
    }
    return TRUE;
}

char *config_value_printable(const char *v)
{
    g_autofree char *shortv = g_utf8_make_valid(v, MIN(strlen(v), 64));
    return g_strescape(shortv, NULL);
}

/* Whole numbers in full ("10000000", not "1e+07"), others as short as exact. */
static char *fmt_double(double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    if (v == floor(v) && fabs(v) < 1e15)
        return g_strdup_printf("%.0f", v);
    return g_strdup(g_ascii_formatd(buf, sizeof(buf), "%g", v));
}

/* A size in base units as the largest exact binary unit: "256MiB", "0". */
static char *fmt_size(guint64 v, ConfigUnit unit, const char *sep)
{
    static const struct {
        const char *name;
        guint64 mult;
    } u[] = {{"TiB", TIB_B}, {"GiB", GIB_B}, {"MiB", MIB_B}, {"KiB", KIB_B}};
    guint64 mult = unit_mult(unit);

    if (v == 0)
        return g_strdup("0");
    if (v <= G_MAXUINT64 / mult) {
        guint64 bytes = v * mult;
        for (gsize i = 0; i < G_N_ELEMENTS(u); i++) {
            if (bytes % u[i].mult == 0)
                return g_strdup_printf("%" G_GUINT64_FORMAT "%s%s", bytes / u[i].mult, sep,
                                       u[i].name);
        }
    }
    return g_strdup_printf("%" G_GUINT64_FORMAT, v);
}

static char *fmt_number(const ConfigKey *k, double v, const char *sep)
{
    if (k->kind == CONFIG_KIND_SIZE)
        return fmt_size((guint64)v, k->unit, sep);
    return fmt_double(v);
}

static const char *unit_suffix(ConfigUnit unit)
{
    switch (unit) {
    case CONFIG_UNIT_US:
        return " us";
    case CONFIG_UNIT_MS:
        return " ms";
    case CONFIG_UNIT_S:
        return " s";
    case CONFIG_UNIT_NONE:
    case CONFIG_UNIT_BYTES:
    case CONFIG_UNIT_KIB:
    case CONFIG_UNIT_MIB:
        return "";
    }
    return "";
}

/* "or" list of an enum's names: "auto, observe or off". */
static char *names_or(const char *const *names)
{
    GString *s = g_string_new(NULL);
    guint n = g_strv_length((char **)names);

    for (guint i = 0; i < n; i++) {
        if (i > 0)
            g_string_append(s, i == n - 1 ? " or " : ", ");
        g_string_append(s, names[i]);
    }
    return g_string_free(s, FALSE);
}

/* What a key wants, for the error message: "a size from 0 to 1 TiB". */
static char *want(const ConfigKey *k)
{
    g_autofree char *lo = fmt_number(k, k->min, " ");
    g_autofree char *hi = fmt_number(k, k->max, " ");

    switch (k->kind) {
    case CONFIG_KIND_UINT:
        return g_strdup_printf("a whole number from %s to %s", lo, hi);
    case CONFIG_KIND_SIZE:
        return g_strdup_printf("a size from %s to %s", lo, hi);
    case CONFIG_KIND_DURATION:
        return g_strdup_printf("a duration from %s to %s%s", lo, hi, unit_suffix(k->unit));
    case CONFIG_KIND_PERCENT:
        return g_strdup_printf("a %spercentage from %s to %s",
                               k->store == CONFIG_STORE_U32 ? "whole " : "", lo, hi);
    case CONFIG_KIND_RATE:
        return g_strdup_printf("a number per second from %s to %s", lo, hi);
    case CONFIG_KIND_BOOL:
        return g_strdup("true or false");
    case CONFIG_KIND_ENUM:
        return names_or(k->names);
    case CONFIG_KIND_PATH:
        return g_strdup_printf("an absolute path shorter than %" G_GSIZE_FORMAT " bytes", k->size);
    case CONFIG_KIND_ADDRESS:
        return g_strdup("ADDR:PORT with a numeric address, e.g. 127.0.0.1:9178 or [::1]:9178, "
                        "or nothing");
    case CONFIG_KIND_GROUP:
        return g_strdup("a group name ([a-z_][a-z0-9_-]*, at most 32), or nothing");
    case CONFIG_KIND_DOMAINS:
        return g_strdup("domain names separated by ';'");
    }
    return g_strdup("?");
}

static gboolean fail(const ConfigKey *k, const char *text, const char *detail, GError **error)
{
    g_autofree char *q = config_value_printable(text);
    g_autofree char *w = want(k);

    g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE, "invalid value \"%s\" (want %s%s%s)", q, w,
                detail ? ": " : "", detail ? detail : "");
    return FALSE;
}

/* The ';'-separated names, stripped, empty ones dropped. */
static gboolean parse_domains(const ConfigKey *k, const char *text, char ***out, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(text, ";", -1);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; parts[i]; i++) {
        char *name = g_strstrip(parts[i]);
        if (*name == '\0')
            continue;
        if (strlen(name) > 255 || strchr(name, '/')) {
            g_autofree char *q = config_value_printable(name);
            g_autofree char *d = g_strdup_printf("\"%s\" is not a domain name", q);
            return fail(k, text, d, error);
        }
        g_ptr_array_add(names, g_strdup(name));
    }
    if (names->len == 0) {
        *out = NULL; /* as in a Config never loaded */
        return TRUE;
    }
    g_ptr_array_add(names, NULL);
    *out = (char **)g_ptr_array_free(g_steal_pointer(&names), FALSE);
    return TRUE;
}

gboolean config_value_parse(const ConfigKey *k, const char *text, void *base, GError **error)
{
    g_autofree char *s = g_strstrip(g_strdup(text));
    void *field = G_STRUCT_MEMBER_P(base, k->offset);
    guint64 u = 0;
    double d = 0;
    gboolean ok = FALSE, b = FALSE;

    switch (k->kind) {
    case CONFIG_KIND_UINT:
        ok = parse_uint(s, &u);
        d = (double)u;
        break;
    case CONFIG_KIND_SIZE:
        ok = config_parse_size(s, k->unit, &u);
        d = (double)u;
        break;
    case CONFIG_KIND_DURATION:
        ok = config_parse_duration(s, k->unit, &u);
        d = (double)u;
        break;
    case CONFIG_KIND_PERCENT:
    case CONFIG_KIND_RATE:
        ok = parse_double(s, k->kind == CONFIG_KIND_PERCENT, &d);
        if (ok && k->store == CONFIG_STORE_U32)
            ok = d == floor(d), u = (guint64)MAX(d, 0);
        break;
    case CONFIG_KIND_BOOL:
        if (!config_parse_bool(s, &b))
            return fail(k, s, NULL, error);
        break;
    case CONFIG_KIND_ENUM:
        for (guint i = 0; k->names[i]; i++) {
            if (strcmp(s, k->names[i]) == 0) {
                u = i;
                ok = TRUE;
            }
        }
        if (!ok)
            return fail(k, s, NULL, error);
        break;
    case CONFIG_KIND_PATH:
        if (s[0] != '/' || strlen(s) >= k->size)
            return fail(k, s, NULL, error);
        break;
    case CONFIG_KIND_ADDRESS:
        if (strlen(s) >= k->size || !parse_address(s))
            return fail(k, s, NULL, error);
        break;
    case CONFIG_KIND_GROUP:
        if (!parse_group(s, k->size))
            return fail(k, s, NULL, error);
        break;
    case CONFIG_KIND_DOMAINS: {
        char **names = NULL;
        if (!parse_domains(k, s, &names, error))
            return FALSE;
        g_strfreev(*(char ***)field);
        *(char ***)field = names;
        break;
    }
    }
    switch (k->kind) {
    case CONFIG_KIND_UINT:
    case CONFIG_KIND_SIZE:
    case CONFIG_KIND_DURATION:
    case CONFIG_KIND_PERCENT:
    case CONFIG_KIND_RATE:
        if (!ok || d < k->min || d > k->max)
            return fail(k, s, NULL, error);
        break;
    case CONFIG_KIND_BOOL:
    case CONFIG_KIND_ENUM:
    case CONFIG_KIND_PATH:
    case CONFIG_KIND_ADDRESS:
    case CONFIG_KIND_GROUP:
    case CONFIG_KIND_DOMAINS:
        break;
    }

    switch (k->store) {
    case CONFIG_STORE_U32:
        *(guint32 *)field = (guint32)u;
        break;
    case CONFIG_STORE_U64:
        *(guint64 *)field = u;
        break;
    case CONFIG_STORE_DOUBLE:
        *(double *)field = d;
        break;
    case CONFIG_STORE_BOOL:
        *(gboolean *)field = b;
        break;
    case CONFIG_STORE_ENUM:
        *(int *)field = (int)u;
        break;
    case CONFIG_STORE_CHARS:
        g_strlcpy(field, s, k->size);
        break;
    case CONFIG_STORE_STRV:
        break; /* written above */
    }
    if (k->has_offset >= 0)
        G_STRUCT_MEMBER(gboolean, base, k->has_offset) = TRUE;
    return TRUE;
}

char *config_value_format(const ConfigKey *k, const void *base)
{
    const void *field = G_STRUCT_MEMBER_P(base, k->offset);
    guint64 u = 0;

    switch (k->store) {
    case CONFIG_STORE_U32:
        u = *(const guint32 *)field;
        break;
    case CONFIG_STORE_U64:
        u = *(const guint64 *)field;
        break;
    case CONFIG_STORE_DOUBLE:
        return fmt_double(*(const double *)field);
    case CONFIG_STORE_BOOL:
        return g_strdup(*(const gboolean *)field ? "true" : "false");
    case CONFIG_STORE_ENUM: {
        int e = *(const int *)field;
        return g_strdup(e >= 0 && (guint)e < g_strv_length((char **)k->names) ? k->names[e] : "?");
    }
    case CONFIG_STORE_CHARS:
        return g_strdup(field);
    case CONFIG_STORE_STRV: {
        char *const *v = *(char *const *const *)field;
        return v ? g_strjoinv(";", (char **)v) : g_strdup("");
    }
    }
    if (k->kind == CONFIG_KIND_SIZE)
        return fmt_size(u, k->unit, "");
    return g_strdup_printf("%" G_GUINT64_FORMAT, u);
}

char *config_value_range(const ConfigKey *k)
{
    switch (k->kind) {
    case CONFIG_KIND_UINT:
    case CONFIG_KIND_SIZE:
    case CONFIG_KIND_DURATION:
    case CONFIG_KIND_PERCENT:
    case CONFIG_KIND_RATE: {
        g_autofree char *lo = fmt_number(k, k->min, " ");
        g_autofree char *hi = fmt_number(k, k->max, " ");
        return g_strdup_printf("%s – %s", lo, hi);
    }
    case CONFIG_KIND_BOOL:
        return g_strdup("true/false");
    case CONFIG_KIND_ENUM:
        return g_strjoinv(", ", (char **)k->names);
    case CONFIG_KIND_PATH:
        return g_strdup("absolute path");
    case CONFIG_KIND_ADDRESS:
        return g_strdup("ADDR:PORT or empty");
    case CONFIG_KIND_GROUP:
        return g_strdup("group name or empty");
    case CONFIG_KIND_DOMAINS:
        return g_strdup("names, `;`-separated");
    }
    return g_strdup("?");
}

const char *config_value_unit(const ConfigKey *k)
{
    switch (k->kind) {
    case CONFIG_KIND_UINT:
        return "—";
    case CONFIG_KIND_SIZE:
        return "size";
    case CONFIG_KIND_DURATION:
        return k->unit == CONFIG_UNIT_US ? "µs" : k->unit == CONFIG_UNIT_S ? "s" : "ms";
    case CONFIG_KIND_PERCENT:
        return "%";
    case CONFIG_KIND_RATE:
        return "/s";
    case CONFIG_KIND_BOOL:
        return "bool";
    case CONFIG_KIND_ENUM:
        return "word";
    case CONFIG_KIND_PATH:
        return "path";
    case CONFIG_KIND_ADDRESS:
        return "address";
    case CONFIG_KIND_GROUP:
        return "group";
    case CONFIG_KIND_DOMAINS:
        return "list";
    }
    return "?";
}
