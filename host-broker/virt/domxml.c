/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "domxml.h"

#include <string.h>

#include "config.h"

#define DOMXML_MAX_DEPTH 64

gboolean domxml_scale_kib(const char *value, const char *unit, guint64 *kib)
{
    static const struct {
        const char *unit;
        guint64 mul, div; /* bytes per unit = mul, then / div for KiB */
    } units[] = {
        {"b", 1, 1024},
        {"bytes", 1, 1024},
        {"KB", 1000, 1024},
        {"k", 1024, 1024},
        {"KiB", 1024, 1024},
        {"MB", 1000000, 1024},
        {"M", 1048576, 1024},
        {"MiB", 1048576, 1024},
        {"GB", 1000000000, 1024},
        {"G", 1073741824, 1024},
        {"GiB", 1073741824, 1024},
        {"TB", G_GUINT64_CONSTANT(1000000000000), 1024},
        {"T", G_GUINT64_CONSTANT(1099511627776), 1024},
        {"TiB", G_GUINT64_CONSTANT(1099511627776), 1024},
    };
    guint64 n;

    if (value == NULL)
        return FALSE;
    g_autofree char *v = g_strstrip(g_strdup(value));
    if (!g_ascii_string_to_unsigned(v, 10, 0, G_MAXUINT64, &n, NULL))
        return FALSE;
    if (unit == NULL || *unit == '\0')
        unit = "KiB";
    for (guint i = 0; i < G_N_ELEMENTS(units); i++) {
        if (strcmp(unit, units[i].unit) != 0)
            continue;
        /* Refuse anything above 1 PiB rather than overflow. */
        if (n > (G_GUINT64_CONSTANT(1) << 50) / units[i].mul)
            return FALSE;
        *kib = n * units[i].mul / units[i].div;
        return TRUE;
    }
    return FALSE;
}

static const char *attr(const char **names, const char **values, const char *name)
{
    for (guint i = 0; names[i]; i++) {
        if (strcmp(names[i], name) == 0)
            return values[i];
    }
    return NULL;
}

static void problem(GString *problems, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void problem(GString *problems, const char *fmt, ...)
{
    va_list ap;

    if (problems == NULL)
        return;
    if (problems->len > 0)
        g_string_append(problems, "; ");
    va_start(ap, fmt);
    g_string_append_vprintf(problems, fmt, ap);
    va_end(ap);
}

/* Every attribute through the configuration engine: the parsers and the
 * wording of ballastd.conf. A bad one is left unset and described. */
static void policy_attrs(const char **names, const char **values, DomxmlPolicy *p,
                         GString *problems)
{
    for (guint i = 0; names[i]; i++) {
        g_autoptr(GError) e = NULL;
        if (!config_meta_set(p, names[i], values[i], &e))
            problem(problems, "%s", e->message);
    }
}

/* The element's local name when it is in the ballast namespace. */
static gboolean is_policy_element(const char *element, const char **names, const char **values)
{
    const char *colon = strchr(element, ':');
    const char *local = colon ? colon + 1 : element;

    if (strcmp(local, "policy") != 0)
        return FALSE;
    g_autofree char *xmlns =
        colon ? g_strdup_printf("xmlns:%.*s", (int)(colon - element), element) : g_strdup("xmlns");
    return g_strcmp0(attr(names, values, xmlns), DOMXML_POLICY_NS) == 0;
}

/* ---- the policy element alone ---- */

typedef struct {
    DomxmlPolicy *policy;
    GString *problems;
    gboolean seen;
} PolicyCtx;

static void policy_start(GMarkupParseContext *ctx, const char *element, const char **names,
                         const char **values, gpointer user_data, GError **error)
{
    PolicyCtx *pc = user_data;

    /* The root is the policy element: virDomainGetMetadata already matched
     * the namespace, so accept any prefix; ignore children. */
    if (g_markup_parse_context_get_element_stack(ctx)->next != NULL)
        return;
    const char *colon = strchr(element, ':');
    if (strcmp(colon ? colon + 1 : element, "policy") != 0) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_UNKNOWN_ELEMENT,
                    "ballast metadata element is <%s>, not <policy>", element);
        return;
    }
    pc->seen = TRUE;
    policy_attrs(names, values, pc->policy, pc->problems);
}

static gboolean depth_ok(GMarkupParseContext *ctx, GError **error)
{
    guint depth = 0;
    for (const GSList *l = g_markup_parse_context_get_element_stack(ctx); l; l = l->next)
        depth++;
    if (depth > DOMXML_MAX_DEPTH) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                    "XML nested deeper than %d", DOMXML_MAX_DEPTH);
        return FALSE;
    }
    return TRUE;
}

static void policy_start_checked(GMarkupParseContext *ctx, const char *element, const char **names,
                                 const char **values, gpointer user_data, GError **error)
{
    if (depth_ok(ctx, error))
        policy_start(ctx, element, names, values, user_data, error);
}

gboolean domxml_parse_policy(const char *xml, gssize len, DomxmlPolicy *policy, GString *problems,
                             GError **error)
{
    static const GMarkupParser parser = {.start_element = policy_start_checked};
    PolicyCtx pc = {.policy = policy, .problems = problems};

    memset(policy, 0, sizeof(*policy));
    if (len < 0)
        len = (gssize)strlen(xml);
    if ((gsize)len > DOMXML_MAX_BYTES) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                    "metadata larger than %d bytes", DOMXML_MAX_BYTES);
        return FALSE;
    }
    g_autoptr(GMarkupParseContext) ctx =
        g_markup_parse_context_new(&parser, G_MARKUP_PREFIX_ERROR_POSITION, &pc, NULL);
    if (!g_markup_parse_context_parse(ctx, xml, len, error) ||
        !g_markup_parse_context_end_parse(ctx, error)) {
        memset(policy, 0, sizeof(*policy));
        return FALSE;
    }
    if (!pc.seen) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_EMPTY, "no policy element");
        return FALSE;
    }
    return TRUE;
}

/* ---- the whole domain ---- */

typedef struct {
    DomxmlDomain *dom;
    GString *problems;
    GString *text;
    const char *want_text; /* element whose text we collect */
    char *unit;
    gboolean in_channel;
    gboolean channel_ours;
    gboolean got_name, got_uuid;
    guint roots;
} DomainCtx;

/* Path of the element being opened, from the root, like "domain/devices/channel". */
static gboolean path_is(GMarkupParseContext *ctx, const char *path)
{
    const GSList *stack = g_markup_parse_context_get_element_stack(ctx);
    g_auto(GStrv) parts = g_strsplit(path, "/", -1);
    guint n = g_strv_length(parts);

    for (guint i = n; i > 0; i--, stack = stack->next) {
        if (stack == NULL || strcmp(stack->data, parts[i - 1]) != 0)
            return FALSE;
    }
    return stack == NULL;
}

static void domain_start(GMarkupParseContext *ctx, const char *element, const char **names,
                         const char **values, gpointer user_data, GError **error)
{
    DomainCtx *dc = user_data;
    DomxmlDomain *d = dc->dom;

    if (!depth_ok(ctx, error))
        return;
    const GSList *stack = g_markup_parse_context_get_element_stack(ctx);
    if (stack->next == NULL && (strcmp(element, "domain") != 0 || ++dc->roots > 1)) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_UNKNOWN_ELEMENT,
                    "root element is <%s>, not one <domain>", element);
        return;
    }
    if (path_is(ctx, "domain/name") || path_is(ctx, "domain/uuid")) {
        dc->want_text = element;
        g_string_truncate(dc->text, 0);
    } else if (path_is(ctx, "domain/memory") || path_is(ctx, "domain/currentMemory") ||
               path_is(ctx, "domain/memtune/min_guarantee")) {
        dc->want_text = element;
        g_string_truncate(dc->text, 0);
        g_free(dc->unit);
        dc->unit = g_strdup(attr(names, values, "unit"));
    } else if (path_is(ctx, "domain/memoryBacking/nosharepages")) {
        d->nosharepages = TRUE;
    } else if (path_is(ctx, "domain/devices/channel")) {
        dc->in_channel = TRUE;
    } else if (dc->in_channel && path_is(ctx, "domain/devices/channel/target")) {
        if (g_strcmp0(attr(names, values, "type"), "virtio") == 0 &&
            g_strcmp0(attr(names, values, "name"), "org.ballast.agent.0") == 0) {
            const char *state = attr(names, values, "state");
            d->channel = g_strcmp0(state, "connected") == 0      ? DOMXML_CHANNEL_CONNECTED
                         : g_strcmp0(state, "disconnected") == 0 ? DOMXML_CHANNEL_DISCONNECTED
                                                                 : DOMXML_CHANNEL_UNKNOWN;
        }
    } else if (stack->next && stack->next->next && !stack->next->next->next &&
               strcmp(stack->next->data, "metadata") == 0 &&
               is_policy_element(element, names, values)) {
        if (d->has_policy) {
            problem(dc->problems, "more than one ballast policy element; using the first");
            return;
        }
        d->has_policy = TRUE;
        policy_attrs(names, values, &d->policy, dc->problems);
    }
}

static void domain_text(GMarkupParseContext *ctx, const char *text, gsize len, gpointer user_data,
                        GError **error)
{
    DomainCtx *dc = user_data;

    if (dc->want_text && dc->text->len + len <= 4096)
        g_string_append_len(dc->text, text, (gssize)len);
}

static void domain_end(GMarkupParseContext *ctx, const char *element, gpointer user_data,
                       GError **error)
{
    DomainCtx *dc = user_data;
    DomxmlDomain *d = dc->dom;

    if (strcmp(element, "channel") == 0)
        dc->in_channel = FALSE;
    if (dc->want_text == NULL || strcmp(element, dc->want_text) != 0)
        return;
    g_autofree char *v = g_strstrip(g_strdup(dc->text->str));
    dc->want_text = NULL;
    if (strcmp(element, "name") == 0) {
        if (strlen(v) >= sizeof(d->name)) {
            g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                        "domain name too long");
            return;
        }
        g_strlcpy(d->name, v, sizeof(d->name));
        dc->got_name = TRUE;
    } else if (strcmp(element, "uuid") == 0) {
        if (strlen(v) >= sizeof(d->uuid)) {
            g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                        "domain uuid too long");
            return;
        }
        g_strlcpy(d->uuid, v, sizeof(d->uuid));
        dc->got_uuid = TRUE;
    } else {
        guint64 kib;
        if (!domxml_scale_kib(v, dc->unit, &kib)) {
            g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                        "<%s> value \"%.32s\" unit \"%.16s\" is not a memory size", element, v,
                        dc->unit ? dc->unit : "");
            return;
        }
        if (strcmp(element, "memory") == 0)
            d->memory_kib = kib;
        else if (strcmp(element, "currentMemory") == 0)
            d->current_kib = kib;
        else
            d->min_guarantee_kib = kib;
    }
}

gboolean domxml_parse_domain(const char *xml, gssize len, DomxmlDomain *dom, GString *problems,
                             GError **error)
{
    static const GMarkupParser parser = {
        .start_element = domain_start,
        .end_element = domain_end,
        .text = domain_text,
    };
    g_autoptr(GString) text = g_string_new(NULL);
    DomainCtx dc = {.dom = dom, .problems = problems, .text = text};
    gboolean ok;

    memset(dom, 0, sizeof(*dom));
    if (len < 0)
        len = (gssize)strlen(xml);
    if ((gsize)len > DOMXML_MAX_BYTES) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                    "domain XML larger than %d bytes", DOMXML_MAX_BYTES);
        return FALSE;
    }
    g_autoptr(GMarkupParseContext) ctx =
        g_markup_parse_context_new(&parser, G_MARKUP_PREFIX_ERROR_POSITION, &dc, NULL);
    ok = g_markup_parse_context_parse(ctx, xml, len, error) &&
         g_markup_parse_context_end_parse(ctx, error);
    g_free(dc.unit);
    if (ok && (!dc.got_name || !dc.got_uuid)) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_MISSING_ATTRIBUTE,
                    "domain XML without name or uuid");
        ok = FALSE;
    }
    if (!ok)
        memset(dom, 0, sizeof(*dom));
    return ok;
}

char *domxml_format_policy(const DomxmlPolicy *p)
{
    /* Bare: virDomainSetMetadata puts it in our namespace itself. */
    GString *s = g_string_new("<policy");

    if (p->has_min)
        g_string_append_printf(s, " min=\"%" G_GUINT64_FORMAT "KiB\"", p->min_kib);
    if (p->has_shares)
        g_string_append_printf(s, " shares=\"%u\"", p->shares);
    if (p->has_ksm)
        g_string_append_printf(s, " ksm=\"%s\"", config_ksm_name(p->ksm));
    if (p->has_mode)
        g_string_append_printf(s, " mode=\"%s\"", config_mode_name(p->mode));
    if (p->has_latency_sensitive)
        g_string_append_printf(s, " latency-sensitive=\"%s\"", p->latency_sensitive ? "yes" : "no");
    g_string_append(s, "/>");
    return g_string_free(s, FALSE);
}
