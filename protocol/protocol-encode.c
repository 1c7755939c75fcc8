/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Encoder: validate first (a sender checks itself), then build a json-c tree
 * and append its text and '\n' to the caller's GString.
 */
#include "protocol-private.h"

#define FAIL(code, ...) (g_set_error(error, BL_PROTO_ERROR, (code), __VA_ARGS__), FALSE)

/* ---- encoding ------------------------------------------------------------ */

static void put(json_object *o, const char *key, json_object *v)
{
    json_object_object_add(o, key, v);
}

static void put_uint(json_object *o, const char *key, guint64 v)
{
    put(o, key, json_object_new_int64((gint64)v)); /* validated <= 2^53-1 */
}

static void put_string(json_object *o, const char *key, const char *s)
{
    put(o, key, json_object_new_string(s));
}

/*
 * The shortest fixed-point text that reads back as the same double ("12.34",
 * not json-c's "12.339999999999999"); %.17g as the last resort.
 */
static void put_double(json_object *o, const char *key, double d)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    char fmt[8];

    d += 0.0; /* -0.0 is written "0" */

    for (int prec = 0; prec <= 17; prec++) {
        g_snprintf(fmt, sizeof fmt, "%%.%df", prec);
        g_ascii_formatd(buf, sizeof buf, fmt, d);
        if (g_ascii_strtod(buf, NULL) == d)
            goto done;
    }
    g_ascii_formatd(buf, sizeof buf, "%.17g", d);
done:
    put(o, key, json_object_new_double_s(d, buf));
}

static json_object *string_list(const char *base, gsize stride, guint n)
{
    json_object *arr = json_object_new_array_ext((int)n);

    for (guint i = 0; i < n; i++)
        json_object_array_add(arr, json_object_new_string(base + i * stride));
    return arr;
}

static void encode_hello(json_object *o, const BlHello *h)
{
    const BlBalloonFacts *b = &h->balloon;
    json_object *bo = json_object_new_object();

    put_string(o, "agent", h->agent);
    put_string(o, "agent_version", h->agent_version);
    put_uint(o, "minor", h->minor);
    put_string(o, "boot_id", h->boot_id);
    put_string(o, "kernel", h->kernel);
    put_uint(o, "interval_ms", h->interval_ms);
    put(bo, "present", json_object_new_boolean(b->present));
    put(bo, "driver_bound", json_object_new_boolean(b->driver_bound));
    put(bo, "pci", string_list(b->pci[0], sizeof b->pci[0], b->n_pci));
    put_string(bo, "kconfig", bl_proto_kconfig_name(b->kconfig));
    put(o, "balloon", bo);
    put(o, "features", string_list(h->features[0], sizeof h->features[0], h->n_features));
}

static json_object *psi_line(const BlPsiLine *l)
{
    const double avg[] = {l->avg10, l->avg60, l->avg300};
    json_object *o = json_object_new_object();

    for (guint i = 0; i < G_N_ELEMENTS(avg); i++)
        put_double(o, bl_proto_psi_avg_names[i], avg[i]);
    put_uint(o, "total_us", l->total_us);
    return o;
}

static void encode_report(json_object *o, const BlReport *r)
{
    const BlMem *m = &r->mem;
    const guint64 mem[BL_PROTO_MEM_N_FIELDS] = {
        m->total_kib,      m->available_kib, m->free_kib,         m->cached_kib,
        m->swap_total_kib, m->swap_free_kib, m->committed_as_kib,
    };
    json_object *mo = json_object_new_object();
    json_object *vo = json_object_new_object();

    put_uint(o, "seq", r->seq);
    put_uint(o, "uptime_ms", r->uptime_ms);
    put_string(o, "reason", bl_proto_reason_name(r->reason));
    for (guint i = 0; i < G_N_ELEMENTS(mem); i++)
        put_uint(mo, bl_proto_mem_names[i], mem[i]);
    put(o, "mem", mo);
    if (r->has_psi) {
        json_object *po = json_object_new_object();

        put(po, "some", psi_line(&r->psi.some));
        put(po, "full", psi_line(&r->psi.full));
        put(o, "psi", po);
    }
    for (guint i = 0; i < BL_VMSTAT_N_COUNTERS; i++) {
        if (r->vmstat.present & (1u << i))
            put_uint(vo, bl_proto_vmstat_names[i], r->vmstat.value[i]);
    }
    put(o, "vmstat", vo);
}

static void encode_welcome(json_object *o, const BlWelcome *w)
{
    put_string(o, "broker", w->broker);
    put_string(o, "broker_version", w->broker_version);
    put_uint(o, "minor", w->minor);
    put_uint(o, "interval_ms", w->interval_ms);
    if (w->has_psi_trigger) {
        json_object *to = json_object_new_object();

        put_string(to, "kind", bl_proto_psi_kind_names[w->psi_trigger.kind]);
        put_uint(to, "stall_us", w->psi_trigger.stall_us);
        put_uint(to, "window_us", w->psi_trigger.window_us);
        put(o, "psi_trigger", to);
    }
}

gboolean bl_proto_encode(const BlMessage *msg, GString *out, GError **error)
{
    g_autoptr(json_object) root = NULL;
    const char *text;
    size_t len = 0;

    g_return_val_if_fail(msg != NULL && out != NULL, FALSE);

    if (!bl_proto_validate(msg, error))
        return FALSE;
    root = json_object_new_object();
    put_string(root, "type", bl_proto_type_name(msg->type));
    put_uint(root, "v", msg->v);
    switch (msg->type) {
    case BL_MSG_HELLO:
        encode_hello(root, &msg->u.hello);
        break;
    case BL_MSG_REPORT:
        encode_report(root, &msg->u.report);
        break;
    case BL_MSG_WELCOME:
        encode_welcome(root, &msg->u.welcome);
        break;
    case BL_MSG_PING:
    case BL_MSG_PONG:
        put_uint(root, "id", msg->u.ping.id);
        break;
    case BL_MSG_GOODBYE:
        put_uint(root, "supported_major", msg->u.goodbye.supported_major);
        put_string(root, "reason", msg->u.goodbye.reason);
        break;
    case BL_MSG_REQUEST:
        break;
    }
    text = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (!text)
        return FAIL(BL_PROTO_ERROR_JSON, "json-c could not serialise the message");
    /* Cannot happen with v1's bounds; checked so a future field cannot break framing. */
    if (len > BL_PROTO_MAX_LINE - 1)
        return FAIL(BL_PROTO_ERROR_TOO_LONG, "encoded %s is %zu bytes, at most %d",
                    bl_proto_type_name(msg->type), len, BL_PROTO_MAX_LINE - 1);
    g_string_append_len(out, text, (gssize)len);
    g_string_append_c(out, '\n');
    return TRUE;
}
