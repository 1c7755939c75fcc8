/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pure builders of the agent's messages: facts and samples in, BlMessage out,
 * always within PROTOCOL.md's ranges so the encoder never refuses them.
 */
#pragma once

#include <glib.h>

#include "protocol.h"

/* Integers on the wire are at most 2^53-1 (PROTOCOL.md section 3). */
#define REPORT_INT_MAX ((guint64)BL_PROTO_MAX_INT)

/* Feature bits advertised in hello. */
typedef enum {
    REPORT_FEATURE_PSI = 1 << 0,         /* reports carry psi */
    REPORT_FEATURE_PSI_TRIGGER = 1 << 1, /* welcome.psi_trigger is honoured */
    REPORT_FEATURE_INTERVAL = 1 << 2,    /* welcome.interval_ms is honoured */
} ReportFeatures;

typedef struct {
    char boot_id[BL_PROTO_BOOT_ID_MAX];
    char kernel[BL_PROTO_KERNEL_MAX];
    guint32 interval_ms;
    BlBalloonFacts balloon;
    ReportFeatures features;
} ReportFacts;

/*
 * Copy file text into a protocol token: surrounding whitespace trimmed, any
 * byte outside printable ASCII (0x21..0x7E) replaced by '_', truncated to
 * fit; "unknown" when nothing is left.
 */
void report_copy_token(char *dst, gsize dst_size, const char *text, gsize len);

void report_build_hello(BlMessage *msg, const ReportFacts *facts);

/*
 * Turn a sample (mem, psi, vmstat, uptime filled by the sampler) into a
 * report: set seq and reason and clamp every value into its wire range
 * (available/free <= total, swap_free <= swap_total, integers <= 2^53-1).
 */
void report_build(BlMessage *msg, const BlReport *sample, guint64 seq, BlReportReason reason);

void report_build_pong(BlMessage *msg, guint64 id);
void report_build_goodbye(BlMessage *msg, const char *reason);
