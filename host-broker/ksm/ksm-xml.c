/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Add or remove <nosharepages/> in a domain XML by splicing the text.
 *
 * Where elements are: the text is fed to GMarkup one byte at a time, so each
 * callback knows the byte it fired on (the '>' of a start or end tag, the '/'
 * of a self-closing one, the '>' ending a comment or PI). A tag begins at the
 * first '<' after the previous event: text between events cannot hold a raw
 * '<' (GMarkup would reject it), and comments, CDATA and PIs are events of
 * their own. Attribute values may hold '<' and '>', which is why the search
 * goes forward from the last event and never backward from the tag's end.
 */
#include "ksm-xml.h"

#include <string.h>

#define KSM_XML_MAX    (8u << 20) /* a domain XML is a few KiB */
#define KSM_XML_INDENT "  "

typedef struct {
    gsize open;  /* '<' */
    gsize close; /* one past '>' */
} KsmXmlRange;

typedef struct {
    const char *xml;
    gsize pos;      /* the byte being fed */
    gsize boundary; /* one past the last event */
    guint depth;
    gboolean root_seen;
    gsize last_start_open; /* of the most recent start tag */
    gboolean last_start_self;
    gsize last_start_pos;

    gsize child_open; /* the current child of <domain> */
    guint n_mb;
    gboolean in_mb;
    KsmXmlRange mb_start; /* <memoryBacking ...> or <memoryBacking/> */
    gboolean mb_self;
    KsmXmlRange mb_end; /* </memoryBacking>, or mb_start when self-closing */
    gsize nsp_open;
    GArray *nsp; /* of KsmXmlRange: each whole <nosharepages> element */
    gboolean has_anchor;
    KsmXmlRange anchor; /* the last <memory> or <currentMemory> element */
    gsize domain_end_open;
} KsmXmlScan;

static gboolean ksm_xml_tag_open(KsmXmlScan *s, gsize *open, GError **error)
{
    const char *lt = memchr(s->xml + s->boundary, '<', s->pos - s->boundary + 1);

    if (!lt) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_PARSE, "cannot locate a tag");
        return FALSE;
    }
    *open = (gsize)(lt - s->xml);
    return TRUE;
}

static gboolean ksm_xml_attrs_unique(const char *name, const char **attr_names, GError **error)
{
    g_autoptr(GHashTable) seen = NULL;

    if (!attr_names[0] || !attr_names[1])
        return TRUE;
    seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (gsize i = 0; attr_names[i]; i++) {
        if (!g_hash_table_add(seen, (gpointer)attr_names[i])) {
            g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                        "<%s>: attribute %s repeated", name, attr_names[i]);
            return FALSE;
        }
    }
    return TRUE;
}

static void ksm_xml_start(GMarkupParseContext *ctx, const char *name, const char **attr_names,
                          const char **attr_values, gpointer data, GError **error)
{
    KsmXmlScan *s = data;
    gsize open;

    if (!ksm_xml_tag_open(s, &open, error))
        return;
    /* GMarkup lets a repeated attribute through; XML (and libvirt) does not */
    if (!ksm_xml_attrs_unique(name, attr_names, error))
        return;
    s->last_start_open = open;
    s->last_start_self = s->xml[s->pos] == '/';
    s->last_start_pos = s->pos;
    s->boundary = s->pos + 1;
    if (s->depth == 0) {
        if (s->root_seen) {
            g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_PARSE, "more than one root element");
            return;
        }
        if (!g_str_equal(name, "domain")) {
            g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                        "root element is <%s>, not <domain>", name);
            return;
        }
        s->root_seen = TRUE;
    } else if (s->depth == 1) {
        s->child_open = open;
        if (g_str_equal(name, "memoryBacking")) {
            if (++s->n_mb > 1) {
                g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                            "more than one <memoryBacking>");
                return;
            }
            s->in_mb = TRUE;
            s->mb_self = s->last_start_self;
            s->mb_start.open = open;
            s->mb_start.close = s->pos + (s->mb_self ? 2 : 1);
        }
    } else if (s->depth == 2 && s->in_mb && g_str_equal(name, "nosharepages")) {
        s->nsp_open = open;
    }
    s->depth++;
}

static void ksm_xml_end(GMarkupParseContext *ctx, const char *name, gpointer data, GError **error)
{
    KsmXmlScan *s = data;
    gboolean self = s->last_start_self && s->last_start_pos + 1 == s->pos;
    KsmXmlRange r;

    if (self)
        r.open = s->last_start_open;
    else if (!ksm_xml_tag_open(s, &r.open, error))
        return;
    r.close = s->pos + 1;
    s->boundary = s->pos + 1;
    s->depth--;
    if (s->depth == 0) {
        s->domain_end_open = r.open;
    } else if (s->depth == 1) {
        KsmXmlRange whole = {s->child_open, r.close};

        if (g_str_equal(name, "memoryBacking")) {
            s->mb_end = r;
            s->in_mb = FALSE;
        } else if (g_str_equal(name, "memory") || g_str_equal(name, "currentMemory")) {
            s->has_anchor = TRUE;
            s->anchor = whole;
        }
    } else if (s->depth == 2 && s->in_mb && g_str_equal(name, "nosharepages")) {
        KsmXmlRange whole = {s->nsp_open, r.close};

        g_array_append_val(s->nsp, whole);
    }
}

static void ksm_xml_passthrough(GMarkupParseContext *ctx, const char *text, gsize len,
                                gpointer data, GError **error)
{
    KsmXmlScan *s = data;

    s->boundary = s->pos + 1;
}

static void ksm_xml_scan_clear(KsmXmlScan *s)
{
    g_clear_pointer(&s->nsp, g_array_unref);
}

static gboolean ksm_xml_scan(const char *xml, KsmXmlScan *s, GError **error)
{
    static const GMarkupParser parser = {
        .start_element = ksm_xml_start,
        .end_element = ksm_xml_end,
        .passthrough = ksm_xml_passthrough,
    };
    g_autoptr(GMarkupParseContext) ctx = NULL;
    gsize len = strlen(xml);

    memset(s, 0, sizeof(*s));
    s->xml = xml;
    s->nsp = g_array_new(FALSE, FALSE, sizeof(KsmXmlRange));
    if (len > KSM_XML_MAX) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_PARSE, "domain XML over %u bytes",
                    KSM_XML_MAX);
        return FALSE;
    }
    ctx = g_markup_parse_context_new(&parser, 0, s, NULL);
    for (s->pos = 0; s->pos < len; s->pos++)
        if (!g_markup_parse_context_parse(ctx, xml + s->pos, 1, error))
            return FALSE;
    if (!g_markup_parse_context_end_parse(ctx, error))
        return FALSE;
    if (!s->root_seen) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_EMPTY, "no <domain> element");
        return FALSE;
    }
    return TRUE;
}

gboolean ksm_xml_has_nosharepages(const char *xml, gboolean *has, GError **error)
{
    KsmXmlScan s;
    gboolean ok = ksm_xml_scan(xml, &s, error);

    if (ok)
        *has = s.nsp->len > 0;
    ksm_xml_scan_clear(&s);
    return ok;
}

/* The spaces and tabs before xml[open] when nothing else precedes it on its
 * line; NULL when the element shares its line with something else. */
static char *ksm_xml_line_indent(const char *xml, gsize open)
{
    gsize i = open;

    while (i > 0 && (xml[i - 1] == ' ' || xml[i - 1] == '\t'))
        i--;
    if (i > 0 && xml[i - 1] != '\n')
        return NULL;
    return g_strndup(xml + i, open - i);
}

static gboolean ksm_xml_blank(const char *p, gsize n)
{
    for (gsize i = 0; i < n; i++)
        if (!g_ascii_isspace(p[i]))
            return FALSE;
    return TRUE;
}

/* Widen r to its whole line ("\n" + indent + element) when the element is
 * alone on it, so removing it leaves no blank line. */
static KsmXmlRange ksm_xml_line_range(const char *xml, KsmXmlRange r)
{
    gsize open = r.open;
    gsize after = r.close;

    while (open > 0 && (xml[open - 1] == ' ' || xml[open - 1] == '\t'))
        open--;
    while (xml[after] == ' ' || xml[after] == '\t')
        after++;
    if (open > 0 && xml[open - 1] == '\n' && (xml[after] == '\n' || xml[after] == '\r')) {
        r.open = open - 1;
        r.close = after;
    }
    return r;
}

static char *ksm_xml_splice(const char *xml, const KsmXmlRange *cut, guint n_cut,
                            const char *insert)
{
    GString *out = g_string_sized_new(strlen(xml) + (insert ? strlen(insert) : 0));
    gsize at = 0;

    /* cut ranges are sorted and disjoint; insert replaces the first */
    for (guint i = 0; i < n_cut; i++) {
        g_string_append_len(out, xml + at, (gssize)(cut[i].open - at));
        if (i == 0 && insert)
            g_string_append(out, insert);
        at = cut[i].close;
    }
    g_string_append(out, xml + at);
    return g_string_free(out, FALSE);
}

static char *ksm_xml_add(const KsmXmlScan *s)
{
    const char *xml = s->xml;
    g_autofree char *ind = NULL;
    g_autofree char *text = NULL;
    KsmXmlRange r;

    if (s->n_mb == 1) {
        ind = ksm_xml_line_indent(xml, s->mb_start.open);
        if (s->mb_self) {
            r = s->mb_start;
            text = ind ? g_strdup_printf("<memoryBacking>\n%s" KSM_XML_INDENT
                                         "<nosharepages/>\n%s</memoryBacking>",
                                         ind, ind)
                       : g_strdup("<memoryBacking><nosharepages/></memoryBacking>");
        } else if (ksm_xml_blank(xml + s->mb_start.close, s->mb_end.open - s->mb_start.close)) {
            r.open = s->mb_start.close;
            r.close = s->mb_end.open;
            text = ind ? g_strdup_printf("\n%s" KSM_XML_INDENT "<nosharepages/>\n%s", ind, ind)
                       : g_strdup("<nosharepages/>");
        } else {
            r.open = r.close = s->mb_start.close;
            text = ind ? g_strdup_printf("\n%s" KSM_XML_INDENT "<nosharepages/>", ind)
                       : g_strdup("<nosharepages/>");
        }
    } else if (s->has_anchor) {
        ind = ksm_xml_line_indent(xml, s->anchor.open);
        r.open = r.close = s->anchor.close;
        text = ind ? g_strdup_printf("\n%s<memoryBacking>\n%s" KSM_XML_INDENT
                                     "<nosharepages/>\n%s</memoryBacking>",
                                     ind, ind, ind)
                   : g_strdup("<memoryBacking><nosharepages/></memoryBacking>");
    } else {
        ind = ksm_xml_line_indent(xml, s->domain_end_open);
        r.open = r.close = s->domain_end_open;
        text = ind ? g_strdup_printf("%s" KSM_XML_INDENT
                                     "<memoryBacking>\n%s" KSM_XML_INDENT KSM_XML_INDENT
                                     "<nosharepages/>\n%s" KSM_XML_INDENT "</memoryBacking>\n%s",
                                     ind, ind, ind, ind)
                   : g_strdup("<memoryBacking><nosharepages/></memoryBacking>");
        if (ind) /* the new block starts the line </domain> was on */
            r.open = r.open - strlen(ind);
    }
    return ksm_xml_splice(xml, &r, 1, text);
}

static char *ksm_xml_remove(const KsmXmlScan *s)
{
    const char *xml = s->xml;
    g_autoptr(GArray) cut = g_array_new(FALSE, FALSE, sizeof(KsmXmlRange));
    gboolean only_nsp = TRUE;
    gsize at = s->mb_start.close;

    /* is there anything but blanks and <nosharepages> inside memoryBacking? */
    for (guint i = 0; i < s->nsp->len && only_nsp; i++) {
        KsmXmlRange r = g_array_index(s->nsp, KsmXmlRange, i);

        only_nsp = ksm_xml_blank(xml + at, r.open - at);
        at = r.close;
    }
    only_nsp = only_nsp && ksm_xml_blank(xml + at, s->mb_end.open - at);

    if (only_nsp) {
        KsmXmlRange whole = {s->mb_start.open, s->mb_end.close};

        whole = ksm_xml_line_range(xml, whole);
        g_array_append_val(cut, whole);
    } else {
        for (guint i = 0; i < s->nsp->len; i++) {
            KsmXmlRange r = ksm_xml_line_range(xml, g_array_index(s->nsp, KsmXmlRange, i));

            g_array_append_val(cut, r);
        }
    }
    return ksm_xml_splice(xml, (KsmXmlRange *)(void *)cut->data, cut->len, NULL);
}

gboolean ksm_xml_set_nosharepages(const char *xml, gboolean on, char **out, gboolean *changed,
                                  GError **error)
{
    KsmXmlScan s;
    g_autofree char *result = NULL;
    gboolean has = FALSE;

    if (!ksm_xml_scan(xml, &s, error)) {
        ksm_xml_scan_clear(&s);
        g_prefix_error(error, "domain XML: ");
        return FALSE;
    }
    if ((s.nsp->len > 0) == on) {
        ksm_xml_scan_clear(&s);
        *changed = FALSE;
        *out = g_strdup(xml);
        return TRUE;
    }
    result = on ? ksm_xml_add(&s) : ksm_xml_remove(&s);
    ksm_xml_scan_clear(&s);

    /* the splice must leave a document that says what was asked */
    if (!ksm_xml_has_nosharepages(result, &has, error)) {
        g_prefix_error(error, "edited domain XML: ");
        return FALSE;
    }
    if (has != on) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                    "edited domain XML still %s <nosharepages/>", on ? "lacks" : "has");
        return FALSE;
    }
    *changed = TRUE;
    *out = g_steal_pointer(&result);
    return TRUE;
}
