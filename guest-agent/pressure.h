/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * When to sample and when to report: a pure decision over a sequence of
 * samples (no clock, no I/O; the caller passes the monotonic time).
 *
 * The speed target: a guest with ~120 MiB of headroom whose workload grows
 * at 100 MiB/s is OOM-killed ~1.2 s after it starts, and the first
 * "pressure" report must be on the wire within 250 ms. A PSI trigger fires
 * too late for that (stalls start only once reclaim is failing), so the
 * lever is sampling MemAvailable at a rate that matches the risk:
 *  - with little headroom, sample often enough that a fall at the reference
 *    rate is seen while most of the headroom is left;
 *  - once MemAvailable falls, sample fast and report "pressure" at once
 *    (rate-limited) while the time to exhaustion is short;
 *  - with ample headroom and stable memory, wake once per interval.
 * A fall of MemAvailable that MemTotal fell with (the balloon inflating) is
 * not the guest's doing and is not pressure.
 */
#pragma once

#include <glib.h>

#include "protocol.h"

/* Sampling period while MemAvailable is falling: 10 looks per second catch
 * a 100 MiB/s fall within 10 MiB, a small share of any useful headroom. */
#define PRESSURE_FAST_MS 100
/* Pressure reports are rate-limited to one per this: at most 10/s, enough
 * for the broker to track a fall, not enough to flood it. */
#define PRESSURE_MIN_GAP_MS 100
/* Stay at the fast rate this long after the last fall, so a workload that
 * pauses between allocations is not lost between slow samples. */
#define PRESSURE_HOLD_MS 2000
/* Falls smaller than this between two samples are noise (page cache and
 * slab move by a few hundred KiB on an idle guest). */
#define PRESSURE_NOISE_KIB 1024
/* A fall at least this fast (and above the noise) switches to fast
 * sampling: 4 MiB/s is far above idle drift yet far below the workloads
 * that matter, so speeding up costs little and misses nothing. */
#define PRESSURE_WATCH_KIB_S (4 * 1024)
/* Report "pressure" when, at the measured rate, MemAvailable runs out within
 * this horizon: the broker needs a few seconds to deflate a balloon (QMP
 * balloon moves 256 MiB in ~0.3 s, plus its own decision and libvirt). */
#define PRESSURE_HORIZON_MS 10000
/* The reference growth rate the sampling period is sized for (the issue's
 * workload: 100 MiB/s). */
#define PRESSURE_REF_KIB_S (100 * 1024)
/* With little headroom, sample every (time to exhaustion at the reference
 * rate) / this: 120 MiB -> 1.2 s / 6 = 200 ms, within the 250 ms budget; a
 * guest with >= 600 MiB available samples once per interval (1 s). */
#define PRESSURE_HEADROOM_DIVISOR 6
/* Swap-in above 1 MiB/s (256 pages) means the guest is paging its working
 * set back: pressure even if MemAvailable looks fine. */
#define PRESSURE_SWAPIN_PAGES_S 256
/* Refaults above 10 MiB/s (2560 pages) mean the page cache is thrashing. */
#define PRESSURE_REFAULT_PAGES_S 2560
/* PSI "some" stalls above 10 % of the time since the last sample: the same
 * level as the common kernel trigger "some 100000 1000000", for guests
 * where a trigger cannot be armed. */
#define PRESSURE_PSI_STALL_PERCENT 10
/* Periodic reports may go this much early, so timer jitter never pushes a
 * report to the next sample. */
#define PRESSURE_SLACK_MS 20

typedef struct {
    gboolean have_prev;
    guint64 prev_ms;
    guint64 prev_available_kib;
    guint64 prev_total_kib;
    BlVmstat prev_vmstat;
    gboolean prev_has_psi;
    guint64 prev_some_total_us;

    gboolean have_report;
    guint64 last_report_ms;
    gboolean have_pressure;
    guint64 last_pressure_ms;
    guint64 fast_until_ms;
} PressureState;

typedef struct {
    gboolean send;         /* send a report built from this sample now */
    BlReportReason reason; /* BL_REPORT_PERIODIC or BL_REPORT_PRESSURE */
    guint32 next_ms;       /* delay until the next sample */
    const char *why;       /* what made it pressure (static), else NULL */
} PressureVerdict;

/* Forget everything: the next step sends a periodic report at once. */
void pressure_reset(PressureState *st);

/*
 * One sample (mem, psi, vmstat of a BlReport) taken at now_ms. event: an
 * external pressure signal (a PSI trigger fired) came with this sample.
 */
void pressure_step(PressureState *st, guint64 now_ms, const BlReport *sample, guint32 interval_ms,
                   gboolean event, PressureVerdict *verdict);

/* The sampling period for this much headroom when memory is stable. */
guint32 pressure_headroom_period(guint64 available_kib, guint32 interval_ms);
