/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Semantic checks of a BlMessage against PROTOCOL.md: ranges, character sets,
 * cross-field rules. Shared by the decoder (after reading the JSON) and the
 * encoder (before writing it), so both sides enforce one definition.
 */
#include "protocol-private.h"

#include <math.h>
#include <string.h>

#define FAIL(...) (g_set_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_RANGE, __VA_ARGS__), FALSE)

/* The bound on every JSON integer: exact in an IEEE double (PROTOCOL.md section 3). */
#define MAX_INT ((guint64)BL_PROTO_MAX_INT)

static gboolean check_uint(const char *path, const char *key, guint64 v, guint64 min, guint64 max,
                           GError **error)
{
    if (v < min || v > max)
        return FAIL("%s.%s (%" G_GUINT64_FORMAT ") is outside %" G_GUINT64_FORMAT
                    "..%" G_GUINT64_FORMAT,
                    path, key, v, min, max);
    return TRUE;
}

/* A fixed buffer must hold a NUL-terminated, non-empty string. */
static gboolean check_terminated(const char *path, const char *key, const char *s, gsize size,
                                 GError **error)
{
    gsize n = strnlen(s, size);

    if (n == size)
        return FAIL("%s.%s is not NUL-terminated within %" G_GSIZE_FORMAT " bytes", path, key,
                    size);
    if (n == 0)
        return FAIL("%s.%s is empty", path, key);
    return TRUE;
}

/*
 * A code point that must not reach a person's screen or a log line: controls (Cc: C0, DEL, C1),
 * format characters (Cf: bidi overrides and isolates U+202A..U+202E, U+2066..U+2069, zero-width
 * U+200B..U+200F, U+FEFF, ...), line and paragraph separators (Zl, Zp: a line break to many
 * log viewers), private use (Co) and surrogates (Cs), and noncharacters (U+FDD0..U+FDEF and
 * U+xxFFFE/U+xxFFFF, which GLib types as unassigned). With them a guest could forge or hide
 * text in the broker's logs, status and event log ("Trojan Source").
 */
static gboolean unichar_is_unsafe(gunichar c)
{
    const guint unsafe = 1u << G_UNICODE_CONTROL | 1u << G_UNICODE_FORMAT |
                         1u << G_UNICODE_LINE_SEPARATOR | 1u << G_UNICODE_PARAGRAPH_SEPARATOR |
                         1u << G_UNICODE_PRIVATE_USE | 1u << G_UNICODE_SURROGATE;

    return (unsafe >> g_unichar_type(c)) & 1 || (c >= 0xFDD0 && c <= 0xFDEF) ||
           (c & 0xFFFE) == 0xFFFE;
}

/* Free text: valid UTF-8 that is safe to show to a person (see unichar_is_unsafe()). */
static gboolean check_text(const char *path, const char *key, const char *s, gsize size,
                           GError **error)
{
    if (!check_terminated(path, key, s, size, error))
        return FALSE;
    if (!g_utf8_validate(s, -1, NULL))
        return FAIL("%s.%s is not valid UTF-8", path, key);
    for (const char *p = s; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);

        if (unichar_is_unsafe(c))
            return FAIL("%s.%s contains U+%04X (a control, format, separator, private-use or "
                        "noncharacter code point) at offset %d",
                        path, key, (guint)c, (int)(p - s));
    }
    return TRUE;
}

/* Token: printable ASCII without spaces, optionally restricted to a character set. */
static gboolean check_token(const char *path, const char *key, const char *s, gsize size,
                            const char *charset, GError **error)
{
    if (!check_terminated(path, key, s, size, error))
        return FALSE;
    for (const char *p = s; *p; p++) {
        guchar c = (guchar)*p;
        gunichar u;

        if (c >= 0x21 && c <= 0x7e && (!charset || strchr(charset, c)))
            continue;
        /* Name a non-ASCII character by its code point, as check_text() does. */
        u = c < 0x80 ? c : g_utf8_get_char_validated(p, (gssize)(size - (gsize)(p - s)));
        if (u < 0x110000)
            return FAIL("%s.%s contains U+%04X at offset %d, not allowed in this token", path, key,
                        (guint)u, (int)(p - s));
        return FAIL("%s.%s: byte 0x%02x at offset %d is not allowed here", path, key, c,
                    (int)(p - s));
    }
    return TRUE;
}

static gboolean check_token_list(const char *path, const char *key, const char *base, gsize stride,
                                 guint n, guint max, const char *charset, GError **error)
{
    if (n > max)
        return FAIL("%s.%s has %u entries, at most %u allowed", path, key, n, max);
    for (guint i = 0; i < n; i++) {
        char item[48];

        g_snprintf(item, sizeof item, "%s[%u]", key, i);
        if (!check_token(path, item, base + i * stride, stride, charset, error))
            return FALSE;
    }
    return TRUE;
}

static gboolean check_hello(const BlHello *h, GError **error)
{
    const BlBalloonFacts *b = &h->balloon;

    if (!check_text("hello", "agent", h->agent, sizeof h->agent, error) ||
        !check_text("hello", "agent_version", h->agent_version, sizeof h->agent_version, error) ||
        !check_token("hello", "boot_id", h->boot_id, sizeof h->boot_id, NULL, error) ||
        !check_token("hello", "kernel", h->kernel, sizeof h->kernel, NULL, error) ||
        !check_uint("hello", "interval_ms", h->interval_ms, BL_PROTO_INTERVAL_MIN_MS,
                    BL_PROTO_INTERVAL_MAX_MS, error) ||
        !check_token_list("hello.balloon", "pci", b->pci[0], sizeof b->pci[0], b->n_pci,
                          BL_PROTO_PCI_MAX, "0123456789abcdefABCDEF:.", error) ||
        !check_token_list("hello", "features", h->features[0], sizeof h->features[0], h->n_features,
                          BL_PROTO_FEATURES_MAX, NULL, error))
        return FALSE;
    if ((guint)b->kconfig > BL_KCONFIG_N)
        return FAIL("hello.balloon.kconfig (%d) is not a BlKconfig", (int)b->kconfig);
    if (b->driver_bound && !b->present)
        return FAIL("hello.balloon.driver_bound is true but present is false");
    if (b->n_pci > 0 && !b->present)
        return FAIL("hello.balloon.pci lists %u address(es) but present is false", b->n_pci);
    return TRUE;
}

static gboolean check_psi_line(const char *path, const BlPsiLine *l, GError **error)
{
    const double avg[] = {l->avg10, l->avg60, l->avg300};
    const char *const key[] = {"avg10", "avg60", "avg300"};

    for (guint i = 0; i < G_N_ELEMENTS(avg); i++) {
        if (!isfinite(avg[i]))
            return FAIL("%s.%s (%g) is not finite", path, key[i], avg[i]);
        if (avg[i] < 0.0 || avg[i] > 100.0)
            return FAIL("%s.%s (%g) is outside 0..100 percent", path, key[i], avg[i]);
    }
    return check_uint(path, "total_us", l->total_us, 0, MAX_INT, error);
}

static gboolean check_report(const BlReport *r, GError **error)
{
    const BlMem *m = &r->mem;
    const guint64 mem[] = {m->total_kib,      m->available_kib, m->free_kib,        m->cached_kib,
                           m->swap_total_kib, m->swap_free_kib, m->committed_as_kib};

    if (!check_uint("report", "seq", r->seq, 1, MAX_INT, error) ||
        !check_uint("report", "uptime_ms", r->uptime_ms, 0, MAX_INT, error))
        return FALSE;
    if ((guint)r->reason > BL_REPORT_REQUEST)
        return FAIL("report.reason (%d) is not a BlReportReason", (int)r->reason);
    for (guint i = 0; i < G_N_ELEMENTS(mem); i++) {
        if (!check_uint("report.mem", bl_proto_mem_names[i], mem[i], 0, MAX_INT, error))
            return FALSE;
    }
    if (m->total_kib == 0)
        return FAIL("report.mem.total_kib is 0");
    if (m->available_kib > m->total_kib)
        return FAIL("report.mem.available_kib (%" G_GUINT64_FORMAT
                    ") > total_kib (%" G_GUINT64_FORMAT ")",
                    m->available_kib, m->total_kib);
    if (m->free_kib > m->total_kib)
        return FAIL("report.mem.free_kib (%" G_GUINT64_FORMAT ") > total_kib (%" G_GUINT64_FORMAT
                    ")",
                    m->free_kib, m->total_kib);
    if (m->swap_free_kib > m->swap_total_kib)
        return FAIL("report.mem.swap_free_kib (%" G_GUINT64_FORMAT
                    ") > swap_total_kib (%" G_GUINT64_FORMAT ")",
                    m->swap_free_kib, m->swap_total_kib);
    if (r->has_psi && (!check_psi_line("report.psi.some", &r->psi.some, error) ||
                       !check_psi_line("report.psi.full", &r->psi.full, error)))
        return FALSE;
    if (r->vmstat.present >> BL_VMSTAT_N_COUNTERS)
        return FAIL("report.vmstat.present (0x%x) has bits beyond the %d known counters",
                    r->vmstat.present, BL_VMSTAT_N_COUNTERS);
    for (guint i = 0; i < BL_VMSTAT_N_COUNTERS; i++) {
        if ((r->vmstat.present & (1u << i)) && !check_uint("report.vmstat", bl_proto_vmstat_name(i),
                                                           r->vmstat.value[i], 0, MAX_INT, error))
            return FALSE;
    }
    return TRUE;
}

static gboolean check_welcome(const BlWelcome *w, GError **error)
{
    const BlPsiTrigger *t = &w->psi_trigger;

    if (!check_text("welcome", "broker", w->broker, sizeof w->broker, error) ||
        !check_text("welcome", "broker_version", w->broker_version, sizeof w->broker_version,
                    error) ||
        !check_uint("welcome", "interval_ms", w->interval_ms, BL_PROTO_INTERVAL_MIN_MS,
                    BL_PROTO_INTERVAL_MAX_MS, error))
        return FALSE;
    if (!w->has_psi_trigger)
        return TRUE;
    if ((guint)t->kind > BL_PSI_FULL)
        return FAIL("welcome.psi_trigger.kind (%d) is not a BlPsiKind", (int)t->kind);
    if (!check_uint("welcome.psi_trigger", "window_us", t->window_us, BL_PROTO_PSI_WINDOW_MIN_US,
                    BL_PROTO_PSI_WINDOW_MAX_US, error))
        return FALSE;
    if (t->stall_us == 0 || t->stall_us > t->window_us)
        return FAIL("welcome.psi_trigger.stall_us (%u) is outside 1..window_us (%u)", t->stall_us,
                    t->window_us);
    return TRUE;
}

gboolean bl_proto_validate(const BlMessage *msg, GError **error)
{
    g_return_val_if_fail(msg != NULL, FALSE);

    if (msg->v != BL_PROTO_MAJOR)
        return FAIL("v (%u) is not %d: this library encodes only major %d", msg->v, BL_PROTO_MAJOR,
                    BL_PROTO_MAJOR);
    switch (msg->type) {
    case BL_MSG_HELLO:
        return check_hello(&msg->u.hello, error);
    case BL_MSG_REPORT:
        return check_report(&msg->u.report, error);
    case BL_MSG_WELCOME:
        return check_welcome(&msg->u.welcome, error);
    case BL_MSG_PING:
    case BL_MSG_PONG:
        return check_uint(bl_proto_type_name(msg->type), "id", msg->u.ping.id, 0, MAX_INT, error);
    case BL_MSG_GOODBYE:
        return check_text("goodbye", "reason", msg->u.goodbye.reason, sizeof msg->u.goodbye.reason,
                          error);
    case BL_MSG_REQUEST:
        return TRUE;
    }
    return FAIL("type (%d) is not a BlMsgType", (int)msg->type);
}
