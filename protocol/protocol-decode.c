/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Decoder. One bounded line is checked lexically (what json-c's STRICT mode
 * lets through), parsed by json-c into a tree whose size the line bounds,
 * copied into fixed-size struct fields through a small typed getter layer, and
 * finally checked by bl_proto_validate() like everything the encoder writes.
 */
#include "protocol-private.h"

#include <inttypes.h>
#include <string.h>

#define FAIL(code, ...) (g_set_error(error, BL_PROTO_ERROR, (code), __VA_ARGS__), FALSE)

/* ---- lexical check ------------------------------------------------------- */

/* Is the '0' at s[i] (outside a string) the first digit of an integer part? */
static gboolean leading_zero(const char *s, gsize i)
{
    char prev = i > 0 ? s[i - 1] : ' ';

    if (g_ascii_isdigit(prev) || prev == '.' || prev == 'e' || prev == 'E' || prev == '+')
        return FALSE;
    /* "-0": a sign, unless it is the exponent's ("1e-05" is fine). */
    return prev != '-' || i < 2 || (s[i - 2] != 'e' && s[i - 2] != 'E');
}

/*
 * json-c's STRICT mode still accepts single-quoted strings, NaN and Infinity,
 * "1.", "-.5" and raw control characters inside strings. RFC 8259 does not, and a
 * peer that sends them is broken, so one pass that only tracks whether it is
 * inside a string rejects them before json-c sees the line. It also rejects
 * \u0000: json-c cuts object keys at a NUL, so "id\u0000x" would read as "id".
 *
 * It also counts containers and commas: json-c allocates a few hundred bytes
 * per object, so a 64 KiB line of "{}," would cost some 17 MiB of heap and
 * 17 ms; with these bounds a line costs well under a megabyte.
 */
static gboolean lexical_check(const char *s, gsize len, GError **error)
{
    static const char outside[] = " \t\r\n{}[]:,-+.0123456789eEtruefalsn";
    gboolean in_string = FALSE;
    guint containers = 0, commas = 0;

    /* Also rejects NUL bytes, overlong forms, surrogates and > U+10FFFF (with a
     * positive max_len a NUL fails it, as g_utf8_validate_len(), 2.60, does). */
    if (len > G_MAXSSIZE || !g_utf8_validate(s, (gssize)len, NULL))
        return FAIL(BL_PROTO_ERROR_JSON, "line is not valid UTF-8 (or contains NUL)");
    for (gsize i = 0; i < len; i++) {
        guchar c = (guchar)s[i];

        if (in_string) {
            if (c == '"')
                in_string = FALSE;
            else if (c == '\\' && len - i >= 6 && memcmp(s + i + 1, "u0000", 5) == 0)
                return FAIL(BL_PROTO_ERROR_JSON, "escaped NUL (\\u0000) at byte %" G_GSIZE_FORMAT,
                            i);
            else if (c == '\\')
                i++; /* the escaped byte cannot end the string */
            else if (c < 0x20)
                return FAIL(BL_PROTO_ERROR_JSON,
                            "raw control character 0x%02x in a string at byte %" G_GSIZE_FORMAT, c,
                            i);
        } else if (c == '"') {
            in_string = TRUE;
        } else if (!strchr(outside, c)) {
            return FAIL(BL_PROTO_ERROR_JSON,
                        "byte 0x%02x at %" G_GSIZE_FORMAT " is not allowed outside a string", c, i);
        } else if ((c == '{' || c == '[') && ++containers > BL_PROTO_MAX_CONTAINERS) {
            return FAIL(BL_PROTO_ERROR_JSON, "more than %d objects and arrays in one line",
                        BL_PROTO_MAX_CONTAINERS);
        } else if (c == ',' && ++commas >= BL_PROTO_MAX_MEMBERS) {
            return FAIL(BL_PROTO_ERROR_JSON, "more than %d members and elements in one line",
                        BL_PROTO_MAX_MEMBERS);
        } else if (c == '0' && i + 1 < len && g_ascii_isdigit(s[i + 1]) && leading_zero(s, i)) {
            /* json-c rejects "01" but takes "00" */
            return FAIL(BL_PROTO_ERROR_JSON, "number with a leading zero at byte %" G_GSIZE_FORMAT,
                        i);
        } else if (c == '.' && (i + 1 >= len || !g_ascii_isdigit(s[i + 1]))) {
            return FAIL(BL_PROTO_ERROR_JSON,
                        "'.' at %" G_GSIZE_FORMAT " is not followed by a digit", i);
        } else if (c == '-' && (i + 1 >= len || !g_ascii_isdigit(s[i + 1]))) {
            /* json-c reads "-.5" as -0.5 and "-.0" as 0 */
            return FAIL(BL_PROTO_ERROR_JSON,
                        "'-' at %" G_GSIZE_FORMAT " is not followed by a digit", i);
        }
    }
    return TRUE;
}

static void line_tokener_free(gpointer tok)
{
    json_tokener_free(tok);
}

/* One tokener per thread, reset for each line: a broker decodes a report per
 * guest a second, and a new tokener (its parse stack and buffer) for each was
 * about 5 % of the cost of a decode. */
static GPrivate line_tokener = G_PRIVATE_INIT(line_tokener_free);

static json_tokener *line_tokener_get(void)
{
    json_tokener *tok = g_private_get(&line_tokener);

    if (tok != NULL) {
        json_tokener_reset(tok);
        return tok;
    }
    tok = json_tokener_new_ex(BL_PROTO_MAX_DEPTH);
    if (tok == NULL)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    g_private_set(&line_tokener, tok);
    return tok;
}

static json_object *parse_object(const char *line, gsize len, GError **error)
{
    json_tokener *tok = line_tokener_get();
    g_autoptr(json_object) root = NULL;
    enum json_tokener_error err;

    if (!tok) {
        g_set_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_JSON, "out of memory");
        return NULL;
    }
    root = json_tokener_parse_ex(tok, line, (int)len);
    err = json_tokener_get_error(tok);
    if (err == json_tokener_continue || (!root && err == json_tokener_success)) {
        g_set_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_JSON, "incomplete JSON");
        return NULL;
    }
    if (err != json_tokener_success) {
        g_set_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_JSON,
                    "invalid JSON at byte %" G_GSIZE_FORMAT ": %s", json_tokener_get_parse_end(tok),
                    json_tokener_error_desc(err));
        return NULL;
    }
    /* json-c stops after the first value; anything but whitespace after it is garbage. */
    for (gsize i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (!g_ascii_isspace(line[i])) {
            g_set_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_JSON,
                        "trailing data at byte %" G_GSIZE_FORMAT, i);
            return NULL;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        g_set_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_JSON, "top level is %s, not an object",
                    json_type_to_name(json_object_get_type(root)));
        return NULL;
    }
    return g_steal_pointer(&root);
}

/* ---- typed getters ------------------------------------------------------- */

/* path is the message-relative location ("report.mem"), "" for the envelope. */
static const char *dot(const char *path)
{
    return *path ? "." : "";
}

static const char *json_type_label(json_type t)
{
    switch (t) {
    case json_type_int:
        return "integer";
    case json_type_double:
        return "number";
    case json_type_null:
    case json_type_boolean:
    case json_type_object:
    case json_type_array:
    case json_type_string:
        break;
    }
    return json_type_to_name(t);
}

/* Look key up in obj. TRUE with *out == NULL when optional and absent. */
static gboolean get_field(json_object *obj, const char *path, const char *key, json_type want,
                          gboolean optional, json_object **out, GError **error)
{
    json_object *v = NULL;
    json_type got;

    *out = NULL;
    if (!json_object_object_get_ex(obj, key, &v)) {
        if (optional)
            return TRUE;
        return FAIL(BL_PROTO_ERROR_SCHEMA, "%s%s%s: missing", path, dot(path), key);
    }
    got = json_object_get_type(v);
    /* Any JSON number is fine where a float is wanted; integers must be integers. */
    if (got != want && !(want == json_type_double && got == json_type_int)) {
        return FAIL(BL_PROTO_ERROR_SCHEMA, "%s%s%s: expected %s, got %s", path, dot(path), key,
                    json_type_label(want),
                    got == json_type_double && want == json_type_int ? "a fraction or exponent"
                                                                     : json_type_label(got));
    }
    *out = v;
    return TRUE;
}

/* An integer in 0..max. *found (if given) tells whether an optional one was there. */
static gboolean get_uint(json_object *obj, const char *path, const char *key, guint64 max,
                         gboolean optional, guint64 *out, gboolean *found, GError **error)
{
    json_object *v;
    guint64 u;

    if (!get_field(obj, path, key, json_type_int, optional, &v, error))
        return FALSE;
    if (found)
        *found = v != NULL;
    if (!v)
        return TRUE;
    if (json_object_get_int64(v) < 0)
        return FAIL(BL_PROTO_ERROR_RANGE, "%s%s%s (%" PRId64 ") is negative", path, dot(path), key,
                    json_object_get_int64(v));
    /* json-c saturates what does not fit 64 bits; that is > max too. */
    u = json_object_get_uint64(v);
    if (u > max)
        return FAIL(BL_PROTO_ERROR_RANGE,
                    "%s%s%s (%" G_GUINT64_FORMAT ") is larger than %" G_GUINT64_FORMAT, path,
                    dot(path), key, u, max);
    *out = u;
    return TRUE;
}

static gboolean get_u64(json_object *obj, const char *path, const char *key, guint64 *out,
                        GError **error)
{
    return get_uint(obj, path, key, BL_PROTO_MAX_INT, FALSE, out, NULL, error);
}

static gboolean get_u32(json_object *obj, const char *path, const char *key, guint32 *out,
                        GError **error)
{
    guint64 v = 0;

    if (!get_uint(obj, path, key, G_MAXUINT32, FALSE, &v, NULL, error))
        return FALSE;
    *out = (guint32)v;
    return TRUE;
}

static gboolean get_double(json_object *obj, const char *path, const char *key, double *out,
                           GError **error)
{
    json_object *v;

    if (!get_field(obj, path, key, json_type_double, FALSE, &v, error))
        return FALSE;
    /* + 0.0 turns -0.0 into 0.0, so decode(encode(decode(x))) is bit-identical. */
    *out = json_object_get_double(v) + 0.0;
    return TRUE;
}

static gboolean get_bool(json_object *obj, const char *path, const char *key, gboolean *out,
                         GError **error)
{
    json_object *v;

    if (!get_field(obj, path, key, json_type_boolean, FALSE, &v, error))
        return FALSE;
    *out = json_object_get_boolean(v) ? TRUE : FALSE;
    return TRUE;
}

/* Copy a JSON string into a fixed buffer; too long or with NUL is a range error. */
static gboolean copy_string(json_object *v, const char *path, const char *key, char *buf,
                            gsize size, GError **error)
{
    const char *s = json_object_get_string(v);
    gsize len = (gsize)json_object_get_string_len(v);

    if (len >= size)
        return FAIL(BL_PROTO_ERROR_RANGE,
                    "%s%s%s is %" G_GSIZE_FORMAT " bytes, at most %" G_GSIZE_FORMAT, path,
                    dot(path), key, len, size - 1);
    if (memchr(s, '\0', len))
        return FAIL(BL_PROTO_ERROR_RANGE, "%s%s%s contains a NUL character", path, dot(path), key);
    memcpy(buf, s, len);
    buf[len] = '\0';
    return TRUE;
}

static gboolean get_string(json_object *obj, const char *path, const char *key, char *buf,
                           gsize size, GError **error)
{
    json_object *v;

    return get_field(obj, path, key, json_type_string, FALSE, &v, error) &&
           copy_string(v, path, key, buf, size, error);
}

/* A string that must be one of names[]; *out is its index. */
static gboolean get_enum(json_object *obj, const char *path, const char *key,
                         const char *const *names, guint n, int *out, GError **error)
{
    char buf[32];
    g_autofree char *shown = NULL;

    if (!get_string(obj, path, key, buf, sizeof buf, error))
        return FALSE;
    *out = bl_proto_name_index(names, n, buf);
    if (*out >= 0)
        return TRUE;
    shown = g_strescape(buf, NULL);
    return FAIL(BL_PROTO_ERROR_RANGE, "%s%s%s: \"%s\" is not a known value", path, dot(path), key,
                shown);
}

/* An array of strings into char base[max][stride]. */
static gboolean get_string_list(json_object *obj, const char *path, const char *key, char *base,
                                gsize stride, guint max, guint *n, GError **error)
{
    json_object *arr;
    gsize len;

    if (!get_field(obj, path, key, json_type_array, FALSE, &arr, error))
        return FALSE;
    len = json_object_array_length(arr);
    if (len > max)
        return FAIL(BL_PROTO_ERROR_RANGE, "%s%s%s has %" G_GSIZE_FORMAT " entries, at most %u",
                    path, dot(path), key, len, max);
    for (gsize i = 0; i < len; i++) {
        json_object *item = json_object_array_get_idx(arr, i);
        char name[48];

        g_snprintf(name, sizeof name, "%s[%" G_GSIZE_FORMAT "]", key, i);
        if (!json_object_is_type(item, json_type_string))
            return FAIL(BL_PROTO_ERROR_SCHEMA, "%s%s%s: expected string, got %s", path, dot(path),
                        name, json_type_label(json_object_get_type(item)));
        if (!copy_string(item, path, name, base + i * stride, stride, error))
            return FALSE;
    }
    *n = (guint)len;
    return TRUE;
}

/* ---- decoding ------------------------------------------------------------ */

static gboolean decode_hello(json_object *o, BlHello *h, GError **error)
{
    BlBalloonFacts *b = &h->balloon;
    json_object *bo;
    int kconfig = 0;

    if (!get_string(o, "hello", "agent", h->agent, sizeof h->agent, error) ||
        !get_string(o, "hello", "agent_version", h->agent_version, sizeof h->agent_version,
                    error) ||
        !get_u32(o, "hello", "minor", &h->minor, error) ||
        !get_string(o, "hello", "boot_id", h->boot_id, sizeof h->boot_id, error) ||
        !get_string(o, "hello", "kernel", h->kernel, sizeof h->kernel, error) ||
        !get_u32(o, "hello", "interval_ms", &h->interval_ms, error) ||
        !get_field(o, "hello", "balloon", json_type_object, FALSE, &bo, error) ||
        !get_bool(bo, "hello.balloon", "present", &b->present, error) ||
        !get_bool(bo, "hello.balloon", "driver_bound", &b->driver_bound, error) ||
        !get_string_list(bo, "hello.balloon", "pci", b->pci[0], sizeof b->pci[0], BL_PROTO_PCI_MAX,
                         &b->n_pci, error) ||
        !get_enum(bo, "hello.balloon", "kconfig", bl_proto_kconfig_names,
                  G_N_ELEMENTS(bl_proto_kconfig_names), &kconfig, error) ||
        !get_string_list(o, "hello", "features", h->features[0], sizeof h->features[0],
                         BL_PROTO_FEATURES_MAX, &h->n_features, error))
        return FALSE;
    b->kconfig = (BlKconfig)kconfig;
    return TRUE;
}

/* path: "report.psi." key, for the errors; spelt out by the caller, since
 * formatting it for every report was 3 % of the cost of a decode. */
static gboolean decode_psi_line(json_object *psi, const char *key, const char *path, BlPsiLine *l,
                                GError **error)
{
    double *avg[] = {&l->avg10, &l->avg60, &l->avg300};
    json_object *o;

    if (!get_field(psi, "report.psi", key, json_type_object, FALSE, &o, error))
        return FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(avg); i++) {
        if (!get_double(o, path, bl_proto_psi_avg_names[i], avg[i], error))
            return FALSE;
    }
    return get_u64(o, path, "total_us", &l->total_us, error);
}

static gboolean decode_report(json_object *o, BlReport *r, GError **error)
{
    BlMem *m = &r->mem;
    guint64 *mem[BL_PROTO_MEM_N_FIELDS] = {
        &m->total_kib,      &m->available_kib, &m->free_kib,         &m->cached_kib,
        &m->swap_total_kib, &m->swap_free_kib, &m->committed_as_kib,
    };
    json_object *mo, *po, *vo;
    int reason = 0;

    /* seq and uptime_ms are range-checked by bl_proto_validate (seq >= 1). */
    if (!get_u64(o, "report", "seq", &r->seq, error) ||
        !get_u64(o, "report", "uptime_ms", &r->uptime_ms, error) ||
        !get_enum(o, "report", "reason", bl_proto_reason_names, G_N_ELEMENTS(bl_proto_reason_names),
                  &reason, error) ||
        !get_field(o, "report", "mem", json_type_object, FALSE, &mo, error))
        return FALSE;
    r->reason = (BlReportReason)reason;
    for (guint i = 0; i < G_N_ELEMENTS(mem); i++) {
        if (!get_u64(mo, "report.mem", bl_proto_mem_names[i], mem[i], error))
            return FALSE;
    }
    if (!get_field(o, "report", "psi", json_type_object, TRUE, &po, error))
        return FALSE;
    r->has_psi = po != NULL;
    if (po && (!decode_psi_line(po, "some", "report.psi.some", &r->psi.some, error) ||
               !decode_psi_line(po, "full", "report.psi.full", &r->psi.full, error)))
        return FALSE;
    if (!get_field(o, "report", "vmstat", json_type_object, FALSE, &vo, error))
        return FALSE;
    for (guint i = 0; i < BL_VMSTAT_N_COUNTERS; i++) {
        gboolean found = FALSE;

        if (!get_uint(vo, "report.vmstat", bl_proto_vmstat_names[i], BL_PROTO_MAX_INT, TRUE,
                      &r->vmstat.value[i], &found, error))
            return FALSE;
        if (found)
            r->vmstat.present |= 1u << i;
    }
    return TRUE;
}

static gboolean decode_welcome(json_object *o, BlWelcome *w, GError **error)
{
    BlPsiTrigger *t = &w->psi_trigger;
    json_object *to;
    int kind = 0;

    if (!get_string(o, "welcome", "broker", w->broker, sizeof w->broker, error) ||
        !get_string(o, "welcome", "broker_version", w->broker_version, sizeof w->broker_version,
                    error) ||
        !get_u32(o, "welcome", "minor", &w->minor, error) ||
        !get_u32(o, "welcome", "interval_ms", &w->interval_ms, error) ||
        !get_field(o, "welcome", "psi_trigger", json_type_object, TRUE, &to, error))
        return FALSE;
    w->has_psi_trigger = to != NULL;
    if (!to)
        return TRUE;
    if (!get_enum(to, "welcome.psi_trigger", "kind", bl_proto_psi_kind_names,
                  G_N_ELEMENTS(bl_proto_psi_kind_names), &kind, error) ||
        !get_u32(to, "welcome.psi_trigger", "stall_us", &t->stall_us, error) ||
        !get_u32(to, "welcome.psi_trigger", "window_us", &t->window_us, error))
        return FALSE;
    t->kind = (BlPsiKind)kind;
    return TRUE;
}

static gboolean decode_body(json_object *o, BlMessage *msg, GError **error)
{
    switch (msg->type) {
    case BL_MSG_HELLO:
        return decode_hello(o, &msg->u.hello, error);
    case BL_MSG_REPORT:
        return decode_report(o, &msg->u.report, error);
    case BL_MSG_WELCOME:
        return decode_welcome(o, &msg->u.welcome, error);
    case BL_MSG_PING:
    case BL_MSG_PONG:
        return get_u64(o, bl_proto_type_name(msg->type), "id", &msg->u.ping.id, error);
    case BL_MSG_GOODBYE:
        return get_u32(o, "goodbye", "supported_major", &msg->u.goodbye.supported_major, error) &&
               get_string(o, "goodbye", "reason", msg->u.goodbye.reason,
                          sizeof msg->u.goodbye.reason, error);
    case BL_MSG_REQUEST:
        return TRUE;
    }
    g_assert_not_reached();
}

gboolean bl_proto_decode(const char *line, gsize len, BlMessage *msg, GError **error)
{
    g_autoptr(json_object) root = NULL;
    json_object *tv;
    g_autofree char *shown = NULL;
    guint64 v = 0;
    const char *type;
    int t;

    g_return_val_if_fail(line != NULL || len == 0, FALSE);
    g_return_val_if_fail(msg != NULL, FALSE);

    /* Zeroed, so decoded messages compare equal with memcmp. */
    memset(msg, 0, sizeof *msg);
    if (len > BL_PROTO_MAX_LINE - 1)
        return FAIL(BL_PROTO_ERROR_TOO_LONG,
                    "line is %" G_GSIZE_FORMAT " bytes, at most %d plus the newline", len,
                    BL_PROTO_MAX_LINE - 1);
    if (len == 0)
        return FAIL(BL_PROTO_ERROR_JSON, "empty line");
    if (!lexical_check(line, len, error))
        return FALSE;
    root = parse_object(line, len, error);
    if (!root)
        return FALSE;

    /* The major first: a peer of another major is recognised whatever its shape. */
    if (!get_uint(root, "", "v", G_MAXUINT32, FALSE, &v, NULL, error))
        return FALSE;
    msg->v = (guint32)v;
    if (msg->v != BL_PROTO_MAJOR)
        return FAIL(BL_PROTO_ERROR_VERSION, "protocol major %u, this side speaks %d", msg->v,
                    BL_PROTO_MAJOR);

    if (!get_field(root, "", "type", json_type_string, FALSE, &tv, error))
        return FALSE;
    type = json_object_get_string(tv);
    t = bl_proto_name_index(bl_proto_type_names, G_N_ELEMENTS(bl_proto_type_names), type);
    if (t < 0) {
        /* Shown escaped and cut short: it is hostile input headed for a log. */
        shown = g_strescape(type, NULL);
        if (strlen(shown) > 40)
            strcpy(shown + 37, "...");
        return FAIL(BL_PROTO_ERROR_UNKNOWN_TYPE, "unknown message type \"%s\"", shown);
    }
    msg->type = (BlMsgType)t;

    return decode_body(root, msg, error) && bl_proto_validate(msg, error);
}

gboolean bl_proto_line_is_goodbye(const char *line, gsize len)
{
    g_autoptr(json_object) root = NULL;
    json_object *tv;

    /* the same bounds and strictness as bl_proto_decode, before any parsing */
    if (line == NULL || len == 0 || len > BL_PROTO_MAX_LINE - 1 || !lexical_check(line, len, NULL))
        return FALSE;
    root = parse_object(line, len, NULL);
    return root != NULL && json_object_object_get_ex(root, "type", &tv) &&
           json_object_is_type(tv, json_type_string) &&
           strcmp(json_object_get_string(tv), "goodbye") == 0;
}
