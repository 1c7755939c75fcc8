/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Message builders: see report.h. */
#include "report.h"

#include <math.h>
#include <string.h>

#include "ballast-config.h"

void report_copy_token(char *dst, gsize dst_size, const char *text, gsize len)
{
    gsize start = 0, n = 0;

    g_return_if_fail(dst_size > 1);
    while (start < len && g_ascii_isspace(text[start]))
        start++;
    while (len > start && g_ascii_isspace(text[len - 1]))
        len--;
    for (gsize i = start; i < len && n < dst_size - 1; i++) {
        unsigned char c = (unsigned char)text[i];

        dst[n++] = (c >= 0x21 && c <= 0x7e) ? (char)c : '_';
    }
    dst[n] = '\0';
    if (n == 0)
        g_strlcpy(dst, "unknown", dst_size);
}

void report_build_hello(BlMessage *msg, const ReportFacts *facts)
{
    BlHello *h = &msg->u.hello;
    static const struct {
        ReportFeatures bit;
        const char *name;
    } names[] = {
        {REPORT_FEATURE_PSI, "psi"},
        {REPORT_FEATURE_PSI_TRIGGER, "psi-trigger"},
        {REPORT_FEATURE_INTERVAL, "interval"},
    };

    memset(msg, 0, sizeof(*msg));
    bl_proto_init(msg, BL_MSG_HELLO);
    g_strlcpy(h->agent, "ballast-agent", sizeof(h->agent));
    g_strlcpy(h->agent_version, BALLAST_VERSION, sizeof(h->agent_version));
    h->minor = BL_PROTO_MINOR;
    report_copy_token(h->boot_id, sizeof(h->boot_id), facts->boot_id, strlen(facts->boot_id));
    report_copy_token(h->kernel, sizeof(h->kernel), facts->kernel, strlen(facts->kernel));
    h->interval_ms = CLAMP(facts->interval_ms, BL_PROTO_INTERVAL_MIN_MS, BL_PROTO_INTERVAL_MAX_MS);
    h->balloon = facts->balloon;
    h->balloon.n_pci = MIN(h->balloon.n_pci, BL_PROTO_PCI_MAX);
    if (h->balloon.n_pci > 0)
        h->balloon.present = TRUE; /* a listed function is a present one */
    if (!h->balloon.present)
        h->balloon.driver_bound = FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        if (facts->features & names[i].bit)
            g_strlcpy(h->features[h->n_features++], names[i].name, BL_PROTO_FEATURE_MAX);
    }
}

static guint64 report_cap(guint64 v)
{
    return MIN(v, REPORT_INT_MAX);
}

static void report_clamp_psi(BlPsiLine *l)
{
    double *avg[] = {&l->avg10, &l->avg60, &l->avg300};

    for (gsize i = 0; i < G_N_ELEMENTS(avg); i++) {
        if (!isfinite(*avg[i]) || *avg[i] < 0.0)
            *avg[i] = 0.0;
        else if (*avg[i] > 100.0)
            *avg[i] = 100.0;
    }
    l->total_us = report_cap(l->total_us);
}

void report_build(BlMessage *msg, const BlReport *sample, guint64 seq, BlReportReason reason)
{
    BlReport *r = &msg->u.report;
    BlMem *m = &r->mem;

    memset(msg, 0, sizeof(*msg));
    bl_proto_init(msg, BL_MSG_REPORT);
    *r = *sample;
    r->seq = CLAMP(seq, 1, REPORT_INT_MAX);
    r->reason = reason;
    r->uptime_ms = report_cap(r->uptime_ms);
    m->total_kib = CLAMP(m->total_kib, 1, REPORT_INT_MAX);
    m->available_kib = MIN(m->available_kib, m->total_kib);
    m->free_kib = MIN(m->free_kib, m->total_kib);
    m->cached_kib = report_cap(m->cached_kib);
    m->swap_total_kib = report_cap(m->swap_total_kib);
    m->swap_free_kib = MIN(m->swap_free_kib, m->swap_total_kib);
    m->committed_as_kib = report_cap(m->committed_as_kib);
    if (r->has_psi) {
        report_clamp_psi(&r->psi.some);
        report_clamp_psi(&r->psi.full);
    } else {
        memset(&r->psi, 0, sizeof(r->psi));
    }
    r->vmstat.present &= (1u << BL_VMSTAT_N_COUNTERS) - 1;
    for (int k = 0; k < BL_VMSTAT_N_COUNTERS; k++)
        r->vmstat.value[k] = report_cap(r->vmstat.value[k]);
}

void report_build_pong(BlMessage *msg, guint64 id)
{
    memset(msg, 0, sizeof(*msg));
    bl_proto_init(msg, BL_MSG_PONG);
    msg->u.ping.id = report_cap(id);
}

void report_build_goodbye(BlMessage *msg, const char *reason)
{
    memset(msg, 0, sizeof(*msg));
    bl_proto_init(msg, BL_MSG_GOODBYE);
    msg->u.goodbye.supported_major = BL_PROTO_MAJOR;
    g_strlcpy(msg->u.goodbye.reason, reason, sizeof(msg->u.goodbye.reason));
}
