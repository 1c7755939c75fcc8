/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The balloon policy (docs/policy.md): deflate a guest under pressure at once,
 * in one step sized to its need; reclaim only while the host needs memory,
 * from the guests whose memory is worth least (shares per page with an idle
 * tax); give back when the host is comfortable; stop pushing a balloon that
 * does not move; trust no guest further than its own memory.
 *
 * Pure: every fact comes in through the arguments, every decision goes out in
 * the plan, including what to remember for the next call.
 */
#include "policy.h"

#include "entitlement.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "policy-balloon.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* Sizes beyond this (1 EiB) are nonsense: clamping them keeps every sum below
 * 2^64 without a saturating add at each step. */
#define KIB_LIMIT (1ULL << 50)
#define US_MS     ((gint64)1000)
#define US_SEC    ((gint64)1000000)

/* Rule 3b: a probe step doubles at most this many times (4x probe_step). */
#define PROBE_RAMP_MAX 2

guint64 policy_headroom_kib(guint64 total_kib)
{
    /* Hyper-V's balloon floor (Linux drivers/hv/hv_balloon.c, compute_balloon_floor()),
     * continuous at each band edge. */
    if (total_kib < 128 * KIB_PER_MIB)
        return 8 * KIB_PER_MIB + total_kib / 2;
    if (total_kib < 512 * KIB_PER_MIB)
        return 40 * KIB_PER_MIB + total_kib / 4;
    if (total_kib < 2048 * KIB_PER_MIB)
        return 104 * KIB_PER_MIB + total_kib / 8;
    if (total_kib < 8192 * KIB_PER_MIB)
        return 232 * KIB_PER_MIB + total_kib / 16;
    return 488 * KIB_PER_MIB + total_kib / 32;
}

static guint64 round_up_mib(guint64 kib)
{
    if (kib > G_MAXUINT64 - KIB_PER_MIB)
        return kib;
    return (kib + KIB_PER_MIB - 1) / KIB_PER_MIB * KIB_PER_MIB;
}

static guint64 sub0(guint64 a, guint64 b)
{
    return a > b ? a - b : 0;
}

static guint64 absdiff(guint64 a, guint64 b)
{
    return a > b ? a - b : b - a;
}

/* KiB shown as whole MiB, rounded to nearest. */
static guint64 mib(guint64 kib)
{
    return (kib + KIB_PER_MIB / 2) / KIB_PER_MIB;
}

/* Why memory may not be taken from a VM now (rule 2); counted for the
 * "host reserve unmet" note. */
typedef enum {
    PROTECT_NONE, /* a candidate */
    PROTECT_NO_DATA,
    PROTECT_SILENT,
    PROTECT_PRESSURE,
    PROTECT_COOLDOWN,
    PROTECT_STUCK,
    PROTECT_MOVING,
    PROTECT_SETMEM_FAILING,
    PROTECT_RECENT,
    PROTECT_AT_FLOOR,
} PolicyProtect;

typedef enum {
    SRC_NONE,    /* nothing known: leave alone */
    SRC_AGENT,   /* a fresh agent report */
    SRC_LIBVIRT, /* libvirt's balloon stats, no agent ever */
    SRC_SILENT,  /* the agent reported once and fell silent */
} PolicySource;

/* One VM while deciding. */
typedef struct {
    gsize idx;
    const PolicyVm *vm;
    PolicyVmMemory *mem;
    const char *name;
    gboolean applied; /* AUTO: the broker applies our targets */
    gboolean hold;    /* a set-memory call failed: no new one before its back-off (rule 9) */
    guint32 shares;
    guint64 max, floor;
    guint64 actual;
    guint64 cur; /* the target in force: last target set, or the balloon's size */
    PolicySource src;

    /* the guest's memory as far as known (SRC_AGENT / SRC_LIBVIRT) */
    guint64 total, avail, used, headroom;
    double used_rate; /* KiB/s, >= 0 */
    gboolean pressured;
    char why[200];

    guint64 host_spare;   /* host available above reserve + 2 x hysteresis */
    guint64 burst_before; /* memory's burst step before this plan (rule 9 may take it back) */

    /* reclaim */
    guint64 give_max;
    double rho;
    PolicyProtect protect; /* why nothing may be taken */

    guint64 ent; /* rule 10: what it may hold while the host is short */

    /* the decision */
    gboolean act;
    PolicyActionKind kind;
    PolicyReason code;
    guint64 target;
    char reason[256];
} PolicyWork;

static void why_add(PolicyWork *w, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void why_add(PolicyWork *w, const char *fmt, ...)
{
    char part[160];
    va_list ap;

    va_start(ap, fmt);
    g_vsnprintf(part, sizeof(part), fmt, ap);
    va_end(ap);
    if (w->why[0] != '\0')
        g_strlcat(w->why, "; ", sizeof(w->why));
    g_strlcat(w->why, part, sizeof(w->why));
}

static void note(PolicyPlan *plan, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void note(PolicyPlan *plan, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_ptr_array_add(plan->notes, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

static guint64 clamp_target(const PolicyWork *w, guint64 kib)
{
    kib = round_up_mib(kib);
    if (kib > w->max)
        kib = w->max;
    if (kib < w->floor)
        kib = w->floor;
    return kib;
}

/* Propose a new target; FALSE (and nothing changes) when it is not worth making. */
static gboolean propose(PolicyWork *w, const PolicyConfig *cfg, PolicyActionKind kind,
                        PolicyReason code, guint64 target, gboolean force, const char *why)
{
    guint64 from = w->cur;

    target = clamp_target(w, target);
    if (kind == POLICY_ACTION_DEFLATE && target <= from)
        return FALSE;
    if (kind == POLICY_ACTION_INFLATE && target >= from)
        return FALSE;
    if (!force && absdiff(target, from) < cfg->min_step_kib)
        return FALSE; /* not worth the churn */
    if (w->act && (w->kind != kind || target <= w->target))
        return FALSE; /* one action per VM: the larger raise wins */
    w->act = TRUE;
    w->kind = kind;
    w->code = code;
    w->target = target;
    g_snprintf(w->reason, sizeof(w->reason),
               "%s: %c%" G_GUINT64_FORMAT " MiB to %" G_GUINT64_FORMAT " MiB (%s)", w->name,
               kind == POLICY_ACTION_DEFLATE ? '+' : '-', mib(absdiff(target, from)), mib(target),
               why);
    return TRUE;
}

static double sane_pct(double v, gboolean *bad)
{
    if (!isfinite(v) || v < 0 || v > 100) {
        *bad = TRUE;
        return isfinite(v) && v > 100 ? 100 : 0;
    }
    return v;
}

/* ---- per VM: what is known, and pressure ----------------------------------------------------- */

/* Balloon tracking: when the balloon last moved (every VM), and a target it
 * does not reach (AUTO only: OBSERVE targets are never applied). */
static void track_balloon(PolicyWork *w, const PolicyConfig *cfg, PolicyPlan *plan, gint64 now)
{
    PolicyVmMemory *m = w->mem;
    gint64 settle = (gint64)cfg->balloon_settle_ms * US_MS;
    guint64 tol = cfg->balloon_tolerance_kib;

    if (m->actual_moved_us == 0 || absdiff(w->actual, m->seen_actual_kib) > tol) {
        /* Moved away from the target we set (virsh setmem, another tool): that
         * target is no longer in force. Left in force, it would hide the real
         * size for balloon_settle_ms, and a guest squeezed meanwhile would get
         * no raise (bench-burst: OOM-killed twice). */
        if (m->actual_moved_us != 0 && m->last_target_kib != 0 &&
            absdiff(w->actual, m->last_target_kib) >
                absdiff(m->seen_actual_kib, m->last_target_kib) + tol) {
            note(plan,
                 "%s: balloon moved from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
                 " MiB, away from its target %" G_GUINT64_FORMAT " MiB: set by someone else",
                 w->name, mib(m->seen_actual_kib), mib(w->actual), mib(m->last_target_kib));
            m->last_target_kib = 0;
        }
        m->seen_actual_kib = w->actual;
        m->actual_moved_us = now;
    }
    if (m->stuck_until_us != 0 && now >= m->stuck_until_us) {
        m->stuck_until_us = 0;
        note(plan, "%s: balloon back-off over (was stuck at %" G_GUINT64_FORMAT " MiB)", w->name,
             mib(m->stuck_at_kib));
    }
    if (!w->applied || m->last_target_kib == 0)
        return;
    if (absdiff(w->actual, m->last_target_kib) <= tol)
        return; /* reached */
    if (now - m->target_set_us < settle || now - m->actual_moved_us < settle)
        return; /* still on its way */

    m->stuck_count++;
    if (w->actual > m->last_target_kib) {
        /* The guest has nothing more to give: pushing harder only hurts it. */
        guint64 target = m->last_target_kib;
        char why[160];

        m->stuck_until_us = now + (gint64)cfg->balloon_backoff_ms * US_MS;
        m->stuck_at_kib = w->actual;
        g_snprintf(why, sizeof(why),
                   "balloon stuck at %" G_GUINT64_FORMAT " MiB, target %" G_GUINT64_FORMAT
                   " MiB; not pushed lower for %u s",
                   mib(w->actual), mib(target), cfg->balloon_backoff_ms / 1000);
        note(plan, "%s: %s", w->name, why);
        w->cur = target;
        if (!propose(w, cfg, POLICY_ACTION_DEFLATE, POLICY_REASON_STUCK, w->actual, TRUE, why))
            m->last_target_kib = 0;
    } else {
        /* Short of a raise (a dead driver, or someone else set the size): forget
         * our target so that a later raise is computed from the real size. */
        note(plan,
             "%s: balloon stuck at %" G_GUINT64_FORMAT " MiB below target %" G_GUINT64_FORMAT
             " MiB",
             w->name, mib(w->actual), mib(m->last_target_kib));
        m->last_target_kib = 0;
        w->cur = w->actual;
    }
}

typedef struct {
    gboolean is_new; /* a report not seen by an earlier call */
    gboolean ok;     /* rates below are valid */
    double dt_s;
    double used_rate, majfault_rate, refault_rate, swapin_rate;
    guint64 oom_kills;
    gboolean has_stall;
    double some_stall, full_stall; /* percent of time over the last interval */
} PolicyRates;

static guint64 counter_delta(const BlReport *r, const BlReport *p, BlVmstatCounter c,
                             gboolean *reset)
{
    guint32 bit = 1u << c;

    if (!(r->vmstat.present & bit) || !(p->vmstat.present & bit))
        return 0;
    if (r->vmstat.value[c] < p->vmstat.value[c]) {
        *reset = TRUE; /* a reset, never a huge number */
        return 0;
    }
    return r->vmstat.value[c] - p->vmstat.value[c];
}

#define LIES_WINDOW_US (60 * US_SEC)

/* One more implausible report: past distrust_after within LIES_WINDOW_US the
 * agent is not believed for distrust_ms (each further lie extends it). */
static void distrust(PolicyWork *w, const PolicyConfig *cfg, PolicyPlan *plan, const char *lies,
                     gint64 at)
{
    PolicyVmMemory *m = w->mem;

    if (cfg->distrust_ms == 0)
        return;
    if (m->lies_window_us == 0 || at < m->lies_window_us ||
        at - m->lies_window_us >= LIES_WINDOW_US) {
        m->lies_window_us = at;
        m->lies_recent = 0;
    }
    m->lies_recent++;
    if (m->untrusted) {
        m->untrusted_until_us = MAX(m->untrusted_until_us, at + (gint64)cfg->distrust_ms * US_MS);
        return;
    }
    if (m->lies_recent < cfg->distrust_after)
        return;
    m->untrusted = TRUE;
    m->untrusted_until_us = at + (gint64)cfg->distrust_ms * US_MS;
    g_snprintf(m->untrusted_why, sizeof(m->untrusted_why),
               "%u reports contradicting the host in %u s, last: %s", m->lies_recent,
               (guint)(LIES_WINDOW_US / US_SEC), lies);
    note(plan, "%s: untrusted for %u s (%s): managed from libvirt's balloon statistics", w->name,
         cfg->distrust_ms / 1000, m->untrusted_why);
}

/*
 * The balloon as witness (rule 6). A guest's own figures (its agent's report,
 * and libvirt's balloon statistics, which its kernel's balloon driver fills)
 * say how much it could give; the balloon is the one thing it cannot fake. An
 * inflate recorded by reclaim_over() is judged once the balloon settles:
 *
 * - it took more than the figures said the guest had (plus a slack for what
 *   MemAvailable leaves out): the figures were false, a contradiction;
 * - a test that stopped short (the balloon stuck within the claim): the
 *   figures held, and what the test took is given back at once.
 */
static void check_claim(PolicyWork *w, const PolicyConfig *cfg, PolicyPlan *plan, gint64 now)
{
    PolicyVmMemory *m = w->mem;
    guint64 tol = cfg->balloon_tolerance_kib;

    if (m->claim_from_kib == 0)
        return;
    if (!w->applied || m->last_target_kib == 0 || m->last_target_kib >= m->claim_from_kib) {
        m->claim_from_kib = 0; /* no inflate in force (a failed call, a raise since) */
        return;
    }
    gboolean reached = absdiff(w->actual, m->last_target_kib) <= tol;
    gboolean stopped = now - m->target_set_us >= (gint64)cfg->balloon_settle_ms * US_MS &&
                       now - m->actual_moved_us >= (gint64)cfg->balloon_settle_ms * US_MS;
    if (!reached && !stopped)
        return; /* still on its way */

    guint64 taken = sub0(m->claim_from_kib, w->actual);
    const BlReport *r = &w->vm->report;
    /* An OOM kill since frees memory the figures could not have shown. */
    gboolean killed = w->vm->has_report && (r->vmstat.present & (1u << BL_VMSTAT_OOM_KILL)) &&
                      r->vmstat.value[BL_VMSTAT_OOM_KILL] != m->claim_oom_kills;
    if (taken > m->claim_kib && !killed) {
        char lie[128];

        g_snprintf(lie, sizeof(lie),
                   "balloon took %" G_GUINT64_FORMAT " MiB, figures allowed %" G_GUINT64_FORMAT
                   " MiB",
                   mib(taken), mib(m->claim_kib));
        m->anomalies++;
        if ((m->anomalies & (m->anomalies - 1)) == 0)
            note(plan, "%s: implausible figures (%s): %u so far", w->name, lie, m->anomalies);
        distrust(w, cfg, plan, lie, now);
    } else if (m->claim_test && !reached) {
        char why[160];

        /* Its figures held: the guest really has no more to give. Handing
         * back what the test took spares it the back-off at a squeezed size
         * (rule 4) a real user of its memory would otherwise sit through. */
        g_snprintf(why, sizeof(why),
                   "claim held: balloon stopped at %" G_GUINT64_FORMAT
                   " MiB, within what its figures allowed",
                   mib(w->actual));
        m->claim_held_until_us = now + (gint64)cfg->balloon_backoff_ms * US_MS;
        m->last_target_kib = 0; /* answered here, not by rule 4 */
        w->cur = w->actual;
        propose(w, cfg, POLICY_ACTION_DEFLATE, POLICY_REASON_STUCK, m->claim_from_kib, TRUE, why);
    }
    m->claim_from_kib = 0;
}

/* Read the agent's report: clamp lies, count them, compute rates from the previous one. */
static void read_agent(PolicyWork *w, const PolicyConfig *cfg, PolicyPlan *plan, PolicyRates *rates)
{
    const PolicyVm *vm = w->vm;
    PolicyVmMemory *m = w->mem;
    const BlReport *r = &vm->report;
    const BlReport *p = &vm->prev_report;
    gboolean is_new = r->seq != m->last_seq || r->uptime_ms != m->last_uptime_ms;
    GString *lies = g_string_new(NULL);
    gboolean bad_psi = FALSE, reset = FALSE;
    gint64 dt_us;

    memset(rates, 0, sizeof(*rates));
    rates->is_new = is_new;
    w->total = r->mem.total_kib;
    w->avail = r->mem.available_kib;
    if (w->total > w->max) {
        g_string_append_printf(
            lies, "MemTotal %" G_GUINT64_FORMAT " MiB > max %" G_GUINT64_FORMAT " MiB; ",
            mib(w->total), mib(w->max));
        w->total = w->max;
    }
    if (w->avail > w->total) {
        g_string_append_printf(lies, "MemAvailable %" G_GUINT64_FORMAT " MiB > MemTotal; ",
                               mib(w->avail));
        w->avail = w->total;
    }
    /* A guest sees no memory its balloon has not given it (the target in
     * force covers a raise libvirt has not reported yet; a balloon that moved
     * or was asked to within balloon_settle_ms may be ahead of the report).
     * Freed memory can make MemAvailable rise at any rate, so the balloon is
     * its only hard bound, and MemAvailable <= MemTotal already holds. */
    if (w->total > MAX(w->actual, w->cur) + cfg->balloon_tolerance_kib &&
        vm->report_at_us - m->actual_moved_us >= (gint64)cfg->balloon_settle_ms * US_MS &&
        vm->report_at_us - m->target_set_us >= (gint64)cfg->balloon_settle_ms * US_MS)
        g_string_append_printf(
            lies, "MemTotal %" G_GUINT64_FORMAT " MiB > balloon %" G_GUINT64_FORMAT " MiB; ",
            mib(w->total), mib(MAX(w->actual, w->cur)));
    if (r->has_psi) {
        sane_pct(r->psi.some.avg10, &bad_psi);
        sane_pct(r->psi.full.avg10, &bad_psi);
        if (bad_psi)
            g_string_append(lies, "PSI out of range; ");
    }
    w->used = w->total - w->avail;

    /* The interval between the two samples: the guest's own clock when it went
     * forward (reports can arrive bunched up), else the arrival times. The
     * previous report must not be stale by arrival either. */
    dt_us = vm->report_at_us - vm->prev_report_at_us;
    rates->ok = vm->has_prev_report && dt_us >= 0 && dt_us <= (gint64)cfg->stale_after_ms * US_MS;
    if (r->uptime_ms > p->uptime_ms && r->uptime_ms - p->uptime_ms <= cfg->stale_after_ms)
        dt_us = (gint64)(r->uptime_ms - p->uptime_ms) * US_MS;
    rates->ok = rates->ok && dt_us >= (gint64)cfg->rate_min_interval_ms * US_MS;
    if (vm->has_prev_report && p->uptime_ms > r->uptime_ms) {
        rates->ok = FALSE; /* the guest rebooted: counters started again */
        m->has_offset = FALSE;
    } else if (vm->has_prev_report && p->seq > r->seq) {
        g_string_append(lies, "seq went backwards; ");
        rates->ok = FALSE;
    }
    if (rates->ok) {
        guint64 ptotal = MIN(p->mem.total_kib, w->max);
        guint64 pused = ptotal - MIN(p->mem.available_kib, ptotal);
        guint64 oom;

        rates->dt_s = (double)dt_us / US_SEC;
        rates->used_rate = w->used > pused ? (double)(w->used - pused) / rates->dt_s : 0;
        rates->majfault_rate =
            (double)counter_delta(r, p, BL_VMSTAT_PGMAJFAULT, &reset) / rates->dt_s;
        rates->refault_rate =
            (double)(counter_delta(r, p, BL_VMSTAT_WORKINGSET_REFAULT_ANON, &reset) +
                     counter_delta(r, p, BL_VMSTAT_WORKINGSET_REFAULT_FILE, &reset)) /
            rates->dt_s;
        rates->swapin_rate = (double)counter_delta(r, p, BL_VMSTAT_PSWPIN, &reset) / rates->dt_s;
        oom = counter_delta(r, p, BL_VMSTAT_OOM_KILL, &reset);
        rates->oom_kills = oom;
        if (reset)
            g_string_append(lies, "a counter went backwards; ");
        if (r->has_psi && p->has_psi && r->uptime_ms > p->uptime_ms &&
            r->psi.some.total_us >= p->psi.some.total_us &&
            r->psi.full.total_us >= p->psi.full.total_us) {
            double span_us = (double)(r->uptime_ms - p->uptime_ms) * 1000.0;

            rates->has_stall = TRUE;
            rates->some_stall =
                MIN(100.0, (double)(r->psi.some.total_us - p->psi.some.total_us) / span_us * 100);
            rates->full_stall =
                MIN(100.0, (double)(r->psi.full.total_us - p->psi.full.total_us) / span_us * 100);
        } else if (r->has_psi && p->has_psi &&
                   (r->psi.some.total_us < p->psi.some.total_us ||
                    r->psi.full.total_us < p->psi.full.total_us)) {
            g_string_append(lies, "PSI totals went backwards; ");
        }
    }
    if (lies->len > 0 && is_new) {
        g_string_truncate(lies, lies->len - 2);
        m->anomalies++;
        /* 1st, 2nd, 4th, 8th...: a guest that lies all the time must not flood the log */
        if ((m->anomalies & (m->anomalies - 1)) == 0)
            note(plan, "%s: implausible report seq %" G_GUINT64_FORMAT " (%s): clamped, %u so far",
                 w->name, r->seq, lies->str, m->anomalies);
        distrust(w, cfg, plan, lies->str, vm->report_at_us);
    }
    m->last_seq = r->seq;
    m->last_uptime_ms = r->uptime_ms;
    g_string_free(lies, TRUE);
}

/* A fresh agent report: is the guest under pressure, and how much does it need? */
static void decide_agent(PolicyWork *w, const PolicyConfig *cfg, PolicyPlan *plan, gint64 now)
{
    const BlReport *r = &w->vm->report;
    PolicyVmMemory *m = w->mem;
    PolicyRates rt;
    double lead_s = cfg->lead_time_ms / 1000.0;
    guint64 projected, need, base;
    gboolean by_evidence = FALSE, bad = FALSE;

    read_agent(w, cfg, plan, &rt);
    w->headroom = policy_headroom_kib(w->total);
    w->used_rate = rt.used_rate;
    projected = (guint64)MIN((double)w->max, rt.used_rate * lead_s);

    /* The balloon's size behind this report: MemTotal + a per-boot constant
     * (balloon pages leave MemTotal one for one), which is fresher than
     * libvirt's size, updated at most once a second. */
    if (now - m->actual_moved_us >= (gint64)cfg->balloon_settle_ms * US_MS &&
        w->actual >= w->total &&
        (!w->applied || m->last_target_kib == 0 ||
         absdiff(w->actual, m->last_target_kib) <= cfg->balloon_tolerance_kib)) {
        m->offset_kib = w->actual - w->total;
        m->has_offset = TRUE;
    }
    base = w->actual;
    if (m->has_offset)
        base = MAX(base, MIN(w->max, w->total + m->offset_kib));

    if (r->has_psi) {
        double some = sane_pct(r->psi.some.avg10, &bad), full = sane_pct(r->psi.full.avg10, &bad);

        /* avg10 decays over ~10 s: once the stall has stopped (stall time over the
         * last interval below threshold) a high avg10 is history, not need. */
        if (some > cfg->psi_some_pct && (!rt.has_stall || rt.some_stall > cfg->psi_some_pct)) {
            why_add(w, "psi some avg10 %.1f%% > %.1f%%", some, cfg->psi_some_pct);
            by_evidence = TRUE;
        }
        if (full > cfg->psi_full_pct && (!rt.has_stall || rt.full_stall > cfg->psi_full_pct)) {
            why_add(w, "psi full avg10 %.1f%% > %.1f%%", full, cfg->psi_full_pct);
            by_evidence = TRUE;
        }
    }
    if (w->avail < w->headroom && (cfg->grow_to_headroom || rt.used_rate > 0)) {
        why_add(w, "MemAvailable %" G_GUINT64_FORMAT " MiB < headroom %" G_GUINT64_FORMAT " MiB",
                mib(w->avail), mib(w->headroom));
        w->pressured = TRUE;
    } else if (projected > 0 && w->avail < w->headroom + projected) {
        why_add(w,
                "MemAvailable %" G_GUINT64_FORMAT
                " MiB falling %.0f MiB/s, under headroom %" G_GUINT64_FORMAT " MiB within %.1f s",
                mib(w->avail), rt.used_rate / KIB_PER_MIB, mib(w->headroom), lead_s);
        w->pressured = TRUE;
    }
    if (rt.ok && rt.majfault_rate > cfg->major_faults_per_s) {
        why_add(w, "major faults %.0f/s > %.0f/s", rt.majfault_rate, cfg->major_faults_per_s);
        by_evidence = TRUE;
    }
    if (rt.ok && rt.refault_rate > cfg->refaults_per_s) {
        why_add(w, "refaults %.0f/s > %.0f/s", rt.refault_rate, cfg->refaults_per_s);
        by_evidence = TRUE;
    }
    if (rt.ok && rt.swapin_rate > cfg->swapins_per_s) {
        why_add(w, "swap-in %.0f pages/s > %.0f/s", rt.swapin_rate, cfg->swapins_per_s);
        by_evidence = TRUE;
    }
    if (rt.oom_kills > 0)
        why_add(w, "%" G_GUINT64_FORMAT " new OOM kill(s)", rt.oom_kills);

    /* The step: the shortfall under headroom, what the projected fall will eat
     * during the lead time, and a margin; at least a fixed step when the evidence
     * (PSI, faults) says "more" without saying how much. */
    need = sub0(w->headroom + projected, w->avail) + cfg->deflate_margin_kib;
    if (by_evidence)
        need = MAX(need, cfg->pressure_step_kib);
    if (rt.oom_kills > 0)
        need = MAX(need, cfg->oom_step_kib);
    w->pressured = w->pressured || by_evidence || rt.oom_kills > 0;

    if (w->pressured) {
        /* Burst: a guest short of memory allocates no faster than it is fed, so
         * its measured fall understates the need and the steps stay small. While
         * pressure persists, double the last step, the extra only from what the
         * host can spare (half of it: others may burst too). */
        gboolean persists = m->last_pressure_us != 0 &&
                            now - m->last_pressure_us <= (gint64)cfg->stale_after_ms * US_MS;
        /* Only a new report escalates: a call that sees the same report again
         * (another guest's pressure started it) has nothing new to answer. */
        if (persists && rt.is_new && 2 * m->burst_step_kib > need) {
            guint64 extra = MIN(2 * m->burst_step_kib - need, w->host_spare / 2);
            if (extra > 0)
                why_add(w, "burst: step doubled, +%" G_GUINT64_FORMAT " MiB of host spare",
                        mib(extra));
            need += extra;
        }
        if (rt.is_new)
            m->burst_step_kib = need;
        m->last_pressure_us = now;
        m->probe_streak = 0;
        /* Pressure soon after a probe: the probe went too far. Remember where
         * the guest was fine, so the next probes stop above it. */
        if (m->last_probe_us != 0 &&
            now - m->last_probe_us < (gint64)cfg->probe_memory_ms * US_MS) {
            m->probe_floor_kib = MAX(m->probe_floor_kib, MIN(w->max, base + need));
            m->probe_floor_until_us = now + (gint64)cfg->probe_memory_ms * US_MS;
        }
        /* A report is answered once: a call that sees it again (another
         * guest's pressure started it) would raise again on the same evidence
         * from a balloon that already grew. */
        gboolean answered = m->answered_seq == r->seq && m->answered_uptime_ms == r->uptime_ms;
        /* Never lower a raise already asked for: cur is the target in force. */
        if (!answered)
            propose(w, cfg, POLICY_ACTION_DEFLATE,
                    rt.oom_kills > 0 ? POLICY_REASON_OOM : POLICY_REASON_PRESSURE,
                    MIN(w->max, base + need), FALSE, w->why);
    }

    if (!w->pressured)
        m->burst_step_kib = 0;

    /* What could be taken without making it need it back at once. */
    w->give_max = sub0(w->avail, w->headroom + projected + cfg->deflate_margin_kib);
}

/* No agent ever: libvirt's balloon stats, with wider margins. */
static void decide_libvirt(PolicyWork *w, const PolicyConfig *cfg, gint64 now)
{
    const PolicyVm *vm = w->vm;
    PolicyVmMemory *m = w->mem;
    gboolean evidence = FALSE;
    guint64 need;

    w->total = MIN(vm->lv_available_kib, w->max);
    w->avail = MIN(vm->lv_usable_kib, w->total);
    w->used = w->total - w->avail;
    w->headroom =
        (guint64)((double)policy_headroom_kib(w->total) * cfg->libvirt_headroom_pct / 100);

    if (m->lv_prev_at_us != 0 && vm->balloon_stats_at_us > m->lv_prev_at_us) {
        double dt = (double)(vm->balloon_stats_at_us - m->lv_prev_at_us) / US_SEC;
        double maj = vm->lv_major_faults >= m->lv_prev_major_faults
                         ? (double)(vm->lv_major_faults - m->lv_prev_major_faults) / dt
                         : 0;
        double swp = vm->lv_swap_in_kib >= m->lv_prev_swap_in_kib
                         ? (double)(vm->lv_swap_in_kib - m->lv_prev_swap_in_kib) / 4 / dt
                         : 0;

        if (maj > cfg->major_faults_per_s) {
            why_add(w, "libvirt major faults %.0f/s > %.0f/s", maj, cfg->major_faults_per_s);
            evidence = TRUE;
        }
        if (swp > cfg->swapins_per_s) {
            why_add(w, "libvirt swap-in %.0f pages/s > %.0f/s", swp, cfg->swapins_per_s);
            evidence = TRUE;
        }
    }
    if (vm->balloon_stats_at_us != m->lv_prev_at_us) {
        m->lv_prev_at_us = vm->balloon_stats_at_us;
        m->lv_prev_major_faults = vm->lv_major_faults;
        m->lv_prev_swap_in_kib = vm->lv_swap_in_kib;
    }
    if (w->avail < w->headroom && cfg->grow_to_headroom) {
        why_add(w,
                "libvirt usable %" G_GUINT64_FORMAT " MiB < headroom %" G_GUINT64_FORMAT
                " MiB (no agent: x%.2f)",
                mib(w->avail), mib(w->headroom), cfg->libvirt_headroom_pct / 100);
        w->pressured = TRUE;
    }
    need = sub0(w->headroom, w->avail) + cfg->deflate_margin_kib;
    if (evidence)
        need = MAX(need, cfg->pressure_step_kib);
    w->pressured = w->pressured || evidence;
    if (w->pressured) {
        m->last_pressure_us = now;
        propose(w, cfg, POLICY_ACTION_DEFLATE, POLICY_REASON_AGENTLESS,
                MIN(w->max, w->actual + need), FALSE, w->why);
    }
    w->give_max = sub0(w->avail, w->headroom + cfg->deflate_margin_kib);
}

/* The agent fell silent: not squeezed, and given memory that is safe without evidence. */
static void decide_silent(PolicyWork *w, const PolicyConfig *cfg, PolicyPlan *plan, gint64 now)
{
    PolicyVmMemory *m = w->mem;
    guint64 safe = MAX(w->floor, (guint64)((double)w->max * cfg->silent_safe_pct / 100));
    gint64 since = m->last_report_us != 0 ? m->last_report_us : w->vm->report_at_us;
    char why[160];

    g_snprintf(why, sizeof(why), "agent silent for %" G_GINT64_FORMAT " s; safe size %.0f%% of max",
               (gint64)((now - since) / US_SEC), cfg->silent_safe_pct);
    if (!m->silent) {
        m->silent = TRUE;
        note(plan, "%s: %s: not reclaimed until it reports again", w->name, why);
    }
    propose(w, cfg, POLICY_ACTION_DEFLATE, POLICY_REASON_SILENT, MIN(safe, w->max), FALSE, why);
}

/* Waldspurger's shares-per-page with an idle-memory tax: the lowest pays first. */
static double policy_rho(const PolicyWork *w, const PolicyConfig *cfg)
{
    double k = 1.0 / (1.0 - cfg->idle_tax_pct / 100.0);
    double f = w->total > 0 ? (double)w->used / (double)w->total : 1.0;
    double pages = (double)MAX(w->cur, 1) / KIB_PER_MIB;

    return (double)w->shares / (pages * (f + k * (1.0 - f)));
}

static void classify(PolicyWork *w, const PolicyConfig *cfg, PolicyPlan *plan, gint64 now)
{
    const PolicyVm *vm = w->vm;
    PolicyVmMemory *m = w->mem;
    gboolean fresh = vm->has_report && now - vm->report_at_us < (gint64)cfg->stale_after_ms * US_MS;
    gboolean lv_fresh =
        vm->has_balloon_stats &&
        now - vm->balloon_stats_at_us < (gint64)cfg->libvirt_stale_after_ms * US_MS &&
        vm->lv_available_kib > 0;

    if (m->untrusted && now >= m->untrusted_until_us) {
        note(plan, "%s: trusted again: no contradiction for %u s (was: %s)", w->name,
             cfg->distrust_ms / 1000, m->untrusted_why);
        m->untrusted = FALSE;
        m->untrusted_why[0] = '\0';
        m->lies_recent = 0;
    }
    if (m->untrusted) {
        PolicyRates ignored;

        /* Its reports are still read, for lies only: it is managed as if it had
         * no agent, whatever the agentless setting says. */
        if (fresh)
            read_agent(w, cfg, plan, &ignored);
        w->src = lv_fresh ? SRC_LIBVIRT : SRC_NONE;
    } else if (fresh) {
        w->src = SRC_AGENT;
        m->last_report_us = MAX(m->last_report_us, vm->report_at_us);
        if (m->silent) {
            m->silent = FALSE;
            note(plan, "%s: agent reporting again", w->name);
        }
    } else if (m->last_report_us != 0 || vm->has_report) {
        w->src = SRC_SILENT;
    } else if (cfg->agentless == POLICY_AGENTLESS_LIBVIRT && lv_fresh) {
        w->src = SRC_LIBVIRT;
    } else {
        w->src = SRC_NONE;
    }
}

/* Why memory may not be taken from this VM now. */
static PolicyProtect protection(const PolicyWork *w, const PolicyConfig *cfg, gint64 now)
{
    const PolicyVmMemory *m = w->mem;

    if (w->src == SRC_NONE)
        return PROTECT_NO_DATA;
    if (w->src == SRC_SILENT)
        return PROTECT_SILENT;
    if (w->act || w->pressured)
        return PROTECT_PRESSURE;
    if (m->last_pressure_us != 0 &&
        now - m->last_pressure_us < (gint64)cfg->pressure_cooldown_ms * US_MS)
        return PROTECT_COOLDOWN;
    if (m->stuck_until_us != 0)
        return PROTECT_STUCK;
    if (w->applied && m->last_target_kib != 0 &&
        absdiff(w->actual, m->last_target_kib) > cfg->balloon_tolerance_kib)
        return PROTECT_MOVING;
    if (w->hold)
        return PROTECT_SETMEM_FAILING;
    if (m->last_inflate_us != 0 &&
        now - m->last_inflate_us < (gint64)cfg->reclaim_interval_ms * US_MS)
        return PROTECT_RECENT;
    if (w->cur <= w->floor || MIN(w->give_max, w->cur - w->floor) < cfg->min_step_kib)
        return PROTECT_AT_FLOOR;
    return PROTECT_NONE;
}

/* ---- host: reclaim and give back ----------------------------------------------------------- */

static gint cmp_rho(gconstpointer a, gconstpointer b)
{
    const PolicyWork *x = *(PolicyWork *const *)a, *y = *(PolicyWork *const *)b;

    if (x->rho != y->rho)
        return x->rho < y->rho ? -1 : 1;
    if (x->give_max != y->give_max)
        return x->give_max > y->give_max ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static gint cmp_shares_desc(gconstpointer a, gconstpointer b)
{
    const PolicyWork *x = *(PolicyWork *const *)a, *y = *(PolicyWork *const *)b;

    if (x->shares != y->shares)
        return x->shares > y->shares ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/*
 * Take up to `need` KiB from the candidates (sorted by rho) whose shares are at
 * most max_shares. Returns what AUTO VMs gave: an OBSERVE VM's target is only
 * logged, so its memory never reaches the host.
 */
static guint64 reclaim(GPtrArray *cands, guint64 need, guint32 max_shares, const char *why,
                       const PolicyConfig *cfg)
{
    guint64 got = 0;

    for (guint i = 0; i < cands->len && got < need; i++) {
        PolicyWork *w = g_ptr_array_index(cands, i);
        guint64 take, target;
        char reason[200];

        if (w->act || w->shares > max_shares)
            continue;
        take = MIN(MIN(w->give_max, w->cur - w->floor), MIN(cfg->reclaim_step_kib, need - got));
        /* Round the target up: take a little less rather than more. */
        target = clamp_target(w, w->cur - take);
        if (target >= w->cur || w->cur - target < cfg->min_step_kib)
            continue; /* not worth it (checked before formatting: this loop is hot) */
        g_snprintf(reason, sizeof(reason), "%s; idle %" G_GUINT64_FORMAT " MiB, shares %u", why,
                   mib(w->avail), w->shares);
        if (!propose(w, cfg, POLICY_ACTION_INFLATE, POLICY_REASON_HOST_SHORT, target, FALSE,
                     reason))
            continue;
        if (w->applied)
            got += w->cur - w->target;
    }
    return got;
}

/* ---- rule 10: entitlement while the host is short ------------------------------------------- */

static guint64 host_reserve(const PolicyHost *host, const PolicyConfig *cfg)
{
    return policy_host_reserve_kib(host, cfg);
}

static gboolean host_psi_high(const PolicyHost *host, const PolicyConfig *cfg)
{
    return host->has_psi && isfinite(host->psi.some.avg10) &&
           host->psi.some.avg10 > cfg->host_psi_some_pct;
}

/*
 * What a VM needs, for water-filling: what this very plan gives it when it
 * is raised; what it holds while under pressure or in its cool-down (what it
 * was given under pressure is what it uses); what it holds when nothing is
 * known about it (silent, no data, a stuck balloon); otherwise what it holds
 * minus what it could give without pressure (used memory + headroom + the
 * projected fall + margin, the same bound reclaim uses).
 */
static guint64 entitle_need(const PolicyWork *w, const PolicyConfig *cfg, gint64 now)
{
    const PolicyVmMemory *m = w->mem;

    if ((w->src != SRC_AGENT && w->src != SRC_LIBVIRT) || m->stuck_until_us != 0)
        return MAX(w->cur, w->actual);
    /* Caught contradicting the host: its claims count for nothing, only its
     * balloon does (stuck above); it is entitled to its floor and what the
     * honest guests leave (round two). */
    if (m->untrusted)
        return w->floor;
    if (w->act && w->kind == POLICY_ACTION_DEFLATE)
        return MAX(w->target, w->cur);
    if (w->pressured || (m->last_pressure_us != 0 &&
                         now - m->last_pressure_us < (gint64)cfg->pressure_cooldown_ms * US_MS))
        return w->cur;
    return w->cur - MIN(w->give_max, w->cur);
}

/* Lower a raise to `target` (dropped when that is no raise worth making). */
static void cap_raise(PolicyWork *w, const PolicyConfig *cfg, PolicyPlan *plan, guint64 target)
{
    const char *open = strchr(w->reason, '(');
    char why[256];

    g_snprintf(why, sizeof(why), "%.*s; capped at entitlement %" G_GUINT64_FORMAT " MiB, no spare",
               open != NULL ? (int)strlen(open + 1) - 1 : 0, open != NULL ? open + 1 : "",
               mib(w->ent));
    w->act = FALSE;
    /* Down to a whole MiB, not up (propose() rounds up): a raise capped at
     * the entitlement must not end above it, or the next plan, whose
     * entitlement may be a few MiB lower, reclaims it and its next claim
     * raises it again (rule 10, point 3). */
    target = MAX(w->cur, target / KIB_PER_MIB * KIB_PER_MIB);
    if (!propose(w, cfg, POLICY_ACTION_DEFLATE, w->code, target, FALSE, why))
        note(plan,
             "%s: asks for memory beyond its entitlement %" G_GUINT64_FORMAT
             " MiB; no spare memory: not raised",
             w->name, mib(w->ent));
}

/*
 * Each VM's entitlement, and raises above it served only from spare memory.
 * The pool shared out is the host's MemTotal minus its reserve minus what VMs
 * in mode off hold: the reserve is what the host keeps for itself. The spare
 * counts promises: the pool minus every guest's target in force (a raise the
 * guest has not touched yet is still owed), and no more than MemAvailable
 * minus the reserve minus raises still on their way.
 */
static void entitle(PolicyWork *works, gsize n, const PolicyVm *vms, const PolicyHost *host,
                    const PolicyConfig *cfg, PolicyPlan *plan, gint64 now)
{
    guint64 reserve = host_reserve(host, cfg);
    guint64 unmanaged = 0, committed = 0, gain = 0, cost = 0, within = 0, pool;
    gint64 spare, left;
    g_autofree EntitlementVm *ev = g_new0(EntitlementVm, MAX(n, 1));
    g_autofree guint64 *ent = g_new0(guint64, MAX(n, 1));
    g_autoptr(GPtrArray) over = g_ptr_array_new();
    gboolean short_;

    for (gsize i = 0; i < n; i++) {
        PolicyWork *w = &works[i];

        if (w->vm == NULL) {
            unmanaged += MIN(vms[i].actual_kib, KIB_LIMIT); /* off: the host's own */
            continue;
        }
        ev[i] =
            (EntitlementVm){w->floor, w->max, MIN(entitle_need(w, cfg, now), w->max), w->shares};
        committed += w->cur;
        if (w->applied) {
            gain += sub0(w->actual, w->cur);
            cost += sub0(w->cur, w->actual);
        }
    }
    /* The pressure path decides a few VMs: the others count by what the last
     * full decision knew, and the entitlements are the ones it water-filled. */
    committed += host->fleet_committed_kib;
    unmanaged += host->fleet_unmanaged_kib;
    pool = entitlement_pool(MIN(host->mem_total_kib, KIB_LIMIT), reserve, unmanaged);
    if (host->pressure_only) {
        for (gsize i = 0; i < n; i++)
            if (works[i].vm != NULL)
                ent[i] = works[i].mem->fleet_entitlement_kib ? works[i].mem->fleet_entitlement_kib
                                                             : works[i].max;
    } else {
        entitlement_fill(ev, n, pool, ent);
        for (gsize i = 0; i < n; i++)
            if (works[i].vm != NULL)
                works[i].mem->fleet_entitlement_kib = ent[i];
    }
    spare = MIN((gint64)MIN(host->mem_available_kib, KIB_LIMIT) + (gint64)gain - (gint64)cost -
                    (gint64)reserve,
                (gint64)pool - (gint64)committed);
    /* Shown, and reclaimed toward, while the host needs memory (rule 2's
     * test); raises are held to it whenever there is no spare. */
    short_ = (gint64)MIN(host->mem_available_kib, KIB_LIMIT) + (gint64)gain < (gint64)reserve ||
             host_psi_high(host, cfg);
    for (gsize i = 0; i < n; i++) {
        PolicyWork *w = &works[i];

        plan->entitlement_kib[i] = short_ && w->vm != NULL ? ent[i] : 0;
        plan->memory[i].entitlement_kib = plan->entitlement_kib[i];
        w->ent = ent[i];
        if (w->vm == NULL || !w->act || w->kind != POLICY_ACTION_DEFLATE ||
            (w->code != POLICY_REASON_PRESSURE && w->code != POLICY_REASON_OOM &&
             w->code != POLICY_REASON_AGENTLESS && w->code != POLICY_REASON_SILENT))
            continue;
        if (w->applied)
            within += sub0(MIN(w->target, MAX(w->ent, w->cur)), w->cur);
        if (w->target > MAX(w->ent, w->cur))
            g_ptr_array_add(over, w);
    }
    /* Raises within entitlements spend the spare first; what is beyond goes
     * to the VMs with the most shares first, while the host stays a
     * hysteresis above its reserve. */
    left = spare - (gint64)within - (gint64)cfg->host_hysteresis_kib;
    g_ptr_array_sort(over, cmp_shares_desc);
    for (guint i = 0; i < over->len; i++) {
        PolicyWork *w = g_ptr_array_index(over, i);
        guint64 base = MAX(w->ent, w->cur), extra = w->target - base;
        guint64 grant = left > 0 ? MIN(extra, (guint64)left) : 0;

        if (grant < extra)
            cap_raise(w, cfg, plan, base + grant);
        if (w->applied)
            left -= (gint64)grant;
    }
}

/* What the host itself sees a VM could give: libvirt's balloon statistics
 * (from the guest kernel's balloon driver, not its agent) minus headroom and
 * margin; no bound without fresh statistics. */
static guint64 host_seen_give(const PolicyWork *w, const PolicyConfig *cfg, gint64 now)
{
    const PolicyVm *vm = w->vm;
    guint64 total = MIN(vm->lv_available_kib, w->max);

    if (!vm->has_balloon_stats || total == 0 ||
        now - vm->balloon_stats_at_us >= (gint64)cfg->libvirt_stale_after_ms * US_MS)
        return G_MAXUINT64;
    return sub0(MIN(vm->lv_usable_kib, total),
                policy_headroom_kib(total) + cfg->deflate_margin_kib);
}

/* The most a guest could give by its own figures: the larger of what its
 * agent and its balloon driver (libvirt's statistics) say is available, plus
 * what MemAvailable leaves out (watermarks, half of the reclaimable caches):
 * two balloon tolerances and 1/32 of its memory. */
static guint64 claim_kib(const PolicyWork *w, const PolicyConfig *cfg, gint64 now)
{
    const PolicyVm *vm = w->vm;
    guint64 avail = w->avail, total = w->total;

    if (vm->has_balloon_stats && vm->lv_available_kib > 0 &&
        now - vm->balloon_stats_at_us < (gint64)cfg->libvirt_stale_after_ms * US_MS) {
        total = MAX(total, MIN(vm->lv_available_kib, w->max));
        avail = MAX(avail, MIN(vm->lv_usable_kib, total));
    }
    return avail + 2 * cfg->balloon_tolerance_kib + total / 32;
}

/* Untrusted (rule 6): the guest's figures bound nothing. A single
 * contradiction is not enough: an honest guest whose workload ended while
 * its balloon moved gave more than it had shown. */
static gboolean figures_disproved(const PolicyWork *w)
{
    return w->mem->untrusted;
}

/* A contradiction within the last LIES_WINDOW_US. */
static gboolean contradicted(const PolicyWork *w, gint64 now)
{
    const PolicyVmMemory *m = w->mem;

    return m->lies_recent > 0 && now >= m->lies_window_us &&
           now - m->lies_window_us < LIES_WINDOW_US;
}

static gboolean claims_pressure(const PolicyWork *w, const PolicyConfig *cfg, gint64 now)
{
    const PolicyVmMemory *m = w->mem;

    return w->pressured || (m->last_pressure_us != 0 &&
                            now - m->last_pressure_us < (gint64)cfg->pressure_cooldown_ms * US_MS);
}

/* While the host needs memory, VMs above their entitlement give first,
 * whatever they claim (pressure and cool-down protect only up to the
 * entitlement), down to it and never below the floor: at most reclaim_step
 * per call, on every call (reclaim_interval_ms does not apply), and no more
 * than libvirt's figures say is free (a guest really using its memory is not
 * squeezed by this rule; rule 2 and the stuck-balloon back-off apply to it).
 * A guest whose kernel lies too is tested by its balloon (rule 6): at its
 * maximum and claiming pressure, above its entitlement or within it.
 * Returns what AUTO VMs gave. */
static guint64 reclaim_over(PolicyWork *works, gsize n, guint64 need, const char *why,
                            const PolicyConfig *cfg, gint64 now)
{
    g_autoptr(GPtrArray) over = g_ptr_array_new();
    guint64 got = 0;

    for (gsize i = 0; i < n; i++) {
        PolicyWork *w = &works[i];

        /* unknown and stuck VMs cannot be judged or moved */
        if (w->vm != NULL && !w->act && w->mem->entitlement_kib != 0 &&
            (w->src == SRC_AGENT || w->src == SRC_LIBVIRT) && w->mem->stuck_until_us == 0 &&
            (w->cur > MAX(w->ent, w->floor) + cfg->min_step_kib ||
             (w->cur + cfg->min_step_kib >= w->max && claims_pressure(w, cfg, now))))
            g_ptr_array_add(over, w);
    }
    g_ptr_array_sort(over, cmp_shares_desc);
    for (guint i = over->len; i-- > 0 && got < need;) { /* fewest shares first */
        PolicyWork *w = g_ptr_array_index(over, i);
        PolicyVmMemory *m = w->mem;
        guint64 above = sub0(w->cur, MAX(w->ent, w->floor));
        /* at its maximum within its entitlement: only a test, and its claims
         * are what made that entitlement */
        gboolean within = above <= cfg->min_step_kib;
        guint64 room = within ? w->cur - MIN(w->cur, w->floor) : above;
        guint64 take =
            MIN(MIN(above, cfg->reclaim_step_kib), MIN(need - got, host_seen_give(w, cfg, now)));
        guint64 claim = claim_kib(w, cfg, now);
        gboolean settled = absdiff(w->actual, w->cur) <= cfg->balloon_tolerance_kib;
        gboolean record = FALSE, test = FALSE;
        char reason[200];

        if (figures_disproved(w)) {
            /* Its figures were shown false: only the balloon bounds it. */
            take = MIN(MIN(above, cfg->reclaim_step_kib), need - got);
            record = TRUE;
        } else if (claims_pressure(w, cfg, now) &&
                   (w->cur + cfg->min_step_kib >= w->max || contradicted(w, now)) && settled &&
                   now >= m->claim_held_until_us &&
                   (m->last_inflate_us == 0 ||
                    now - m->last_inflate_us >= (gint64)cfg->reclaim_interval_ms * US_MS) &&
                   take < cfg->min_step_kib && room >= claim + cfg->min_step_kib &&
                   need - got >= claim + cfg->min_step_kib) {
            /* Its claimed pressure keeps it at its maximum (and made its
             * entitlement), and its figures (both from the guest) say it has
             * nothing to give: test them, once, with a step just beyond what
             * they allow. A guest that really has no more stops the balloon
             * short and gets it back (check_claim); one that lied is caught. */
            take = claim + cfg->min_step_kib;
            record = test = TRUE;
        } else if (within) {
            continue;
        }
        g_snprintf(reason, sizeof(reason),
                   "%s its entitlement %" G_GUINT64_FORMAT
                   " MiB while the host is short: %s; idle %" G_GUINT64_FORMAT " MiB, shares %u%s",
                   within ? "at its maximum, claiming pressure, within" : "above", mib(w->ent), why,
                   mib(w->avail), w->shares, test ? "; testing its figures" : "");
        if (propose(w, cfg, POLICY_ACTION_INFLATE, POLICY_REASON_ENTITLEMENT, w->cur - take, FALSE,
                    reason) &&
            w->applied) {
            got += w->cur - w->target;
            if (record && settled && m->claim_from_kib == 0) {
                m->claim_from_kib = w->actual;
                m->claim_kib = claim;
                m->claim_test = test;
                m->claim_oom_kills = w->vm->report.vmstat.value[BL_VMSTAT_OOM_KILL];
            }
        }
    }
    return got;
}

/* Returns TRUE when the host is short (it reclaimed, or could not).
 * *comfortable: probes may run (rule 3b): the host at least half a
 * hysteresis above its reserve, host PSI calm. */
static gboolean decide_host(PolicyWork *works, gsize n, const PolicyHost *host,
                            const PolicyConfig *cfg, PolicyPlan *plan, gint64 now,
                            gboolean *comfortable)
{
    guint64 reserve = host_reserve(host, cfg);
    guint64 h = cfg->host_hysteresis_kib;
    guint64 avail = MIN(host->mem_available_kib, KIB_LIMIT);
    guint64 deflating = 0, base_need = 0, total_need = 0, got = 0, after;
    guint64 pending_gain = 0, pending_cost = 0;
    gboolean psi_high = host_psi_high(host, cfg);
    g_autoptr(GPtrArray) cands = g_ptr_array_new();
    g_autoptr(GPtrArray) raised = g_ptr_array_new();
    char why[160] = "";
    guint n_floor = 0, n_protected = 0;

    for (gsize i = 0; i < n; i++) {
        PolicyWork *w = &works[i];

        if (w->vm == NULL)
            continue; /* OFF */
        /* Balloons still on their way to a target set earlier: what they will
         * free is not in the host's MemAvailable yet, nor what they will give.
         * Without this, every call before they land would take (or give) again. */
        if (w->applied && !w->act && w->cur + cfg->balloon_tolerance_kib < w->actual)
            pending_gain += w->actual - w->cur;
        if (w->applied && w->cur > w->actual + cfg->balloon_tolerance_kib)
            pending_cost += w->cur - w->actual;
        if (w->act && w->kind == POLICY_ACTION_DEFLATE && w->applied &&
            w->target > MAX(w->cur, w->actual)) {
            /* what the guest may now take beyond what it has or was promised */
            deflating += w->target - MAX(w->cur, w->actual);
            g_ptr_array_add(raised, w);
        }
    }
    avail += pending_gain;
    after = sub0(avail, deflating);

    if (avail < reserve) {
        base_need = reserve + h - avail;
        g_snprintf(why, sizeof(why),
                   "host available %" G_GUINT64_FORMAT " MiB%s < reserve %" G_GUINT64_FORMAT " MiB",
                   mib(avail), pending_gain > 0 ? " (with balloons on their way)" : "",
                   mib(reserve));
    }
    if (psi_high) {
        base_need = MAX(base_need, cfg->host_psi_step_kib);
        g_snprintf(why + strlen(why), sizeof(why) - strlen(why),
                   "%shost psi some avg10 %.1f%% > %.1f%%", why[0] ? ", " : "",
                   host->psi.some.avg10, cfg->host_psi_some_pct);
    }
    if (base_need > 0)
        total_need = base_need + deflating;
    else if (after < reserve)
        total_need = reserve + h - after;

    *comfortable = FALSE;
    if (total_need > 0) {
        got =
            reclaim_over(works, n, total_need, why[0] ? why : "host short after raises", cfg, now);
        for (gsize i = 0; i < n; i++) {
            PolicyWork *w = &works[i];

            if (w->vm == NULL || w->act)
                continue;
            w->protect = protection(w, cfg, now);
            if (w->protect == PROTECT_NONE) {
                w->rho = policy_rho(w, cfg);
                g_ptr_array_add(cands, w);
            } else if (w->protect == PROTECT_AT_FLOOR) {
                n_floor++;
            } else {
                n_protected++;
            }
        }
        g_ptr_array_sort(cands, cmp_rho);
        if (base_need > got)
            got += reclaim(cands, base_need - got, G_MAXUINT32, why, cfg);
        /* What deflates cost the host comes only from VMs with no more shares
         * than the VM given memory: a guest claiming pressure cannot take from a
         * more important one. Most important first, so it is covered first. */
        g_ptr_array_sort(raised, cmp_shares_desc);
        for (guint i = 0; i < raised->len && got < total_need; i++) {
            PolicyWork *d = g_ptr_array_index(raised, i);
            guint64 raise = d->target - MAX(d->cur, d->actual);
            guint64 part = MIN(raise, total_need - got);
            char dwhy[160];

            g_snprintf(dwhy, sizeof(dwhy),
                       "host short after giving %s +%" G_GUINT64_FORMAT " MiB (shares %u)", d->name,
                       mib(d->target - d->cur), d->shares);
            got += reclaim(cands, part, d->shares, dwhy, cfg);
        }
        if (got < total_need) {
            note(plan,
                 "host reserve unmet: %" G_GUINT64_FORMAT " MiB short (available %" G_GUINT64_FORMAT
                 " MiB, reserve %" G_GUINT64_FORMAT " MiB, guests raised by %" G_GUINT64_FORMAT
                 " MiB): %u VM(s) at their floor, %u protected (pressure, cool-down, stuck, no "
                 "data)",
                 mib(total_need - got), mib(avail), mib(reserve), mib(deflating), n_floor,
                 n_protected);
        }
        return TRUE;
    }

    /* No probe while the host is within half a hysteresis of its reserve
     * (raises and balloons on their way counted): it is about to be short,
     * and what a probe frees there is spare that a guest claiming pressure
     * beyond its entitlement takes first (rule 10). Reclaim leaves the host
     * at reserve + hysteresis, a little less after rounding: probed there. */
    *comfortable = !psi_high && after >= reserve + h / 2 + pending_cost;
    /* Comfortable: give back what was reclaimed, spending only the surplus above
     * reserve + 2 x hysteresis so that giving back never causes a reclaim. */
    if (psi_high || after <= reserve + 2 * h + pending_cost)
        return psi_high;
    guint64 budget = after - (reserve + 2 * h) - pending_cost;
    g_autoptr(GPtrArray) back = g_ptr_array_new();

    for (gsize i = 0; i < n; i++) {
        PolicyWork *w = &works[i];

        /* one step per reclaim interval, after the last one landed */
        if (w->vm != NULL && !w->act && !w->hold && w->mem->reclaimed_from_kib > w->cur &&
            absdiff(w->cur, w->actual) <= cfg->balloon_tolerance_kib &&
            now - w->mem->target_set_us >= (gint64)cfg->reclaim_interval_ms * US_MS)
            g_ptr_array_add(back, w);
    }
    g_ptr_array_sort(back, cmp_shares_desc);
    for (guint i = 0; i < back->len && budget >= cfg->min_step_kib; i++) {
        PolicyWork *w = g_ptr_array_index(back, i);
        guint64 give =
            MIN(MIN(cfg->giveback_step_kib, w->mem->reclaimed_from_kib - w->cur), budget);
        char reason[200];

        g_snprintf(reason, sizeof(reason),
                   "host available %" G_GUINT64_FORMAT " MiB > %" G_GUINT64_FORMAT
                   " MiB; giving back toward %" G_GUINT64_FORMAT " MiB",
                   mib(after), mib(reserve + 2 * h), mib(w->mem->reclaimed_from_kib));
        if (propose(w, cfg, POLICY_ACTION_DEFLATE, POLICY_REASON_GIVEBACK, w->cur + give, FALSE,
                    reason)) {
            if (w->applied)
                budget = sub0(budget, w->target - w->cur);
        } else if (w->mem->reclaimed_from_kib - w->cur < cfg->min_step_kib) {
            w->mem->reclaimed_from_kib = 0; /* close enough: done */
        }
    }
    return FALSE;
}

/*
 * Probe (after Meta's senpai and ESX's sampling): while the host is not
 * short and at least half a hysteresis above its reserve, take a small step of idle memory from a guest that is quiet (no pressure,
 * no cool-down, balloon settled), never more than it could give without
 * needing it back (give_max), at most once per probe_interval_ms. When
 * pressure follows, the pressure rule gives memory back at once and
 * decide_agent() remembers the size that was fine: probes stop above it for
 * probe_memory_ms. Probed memory is not given back by rule 3: the guest did
 * not need it.
 */
static void decide_probe(PolicyWork *works, gsize n, const PolicyConfig *cfg, gint64 now)
{
    if (cfg->probe_step_kib == 0)
        return;
    for (gsize i = 0; i < n; i++) {
        PolicyWork *w = &works[i];
        PolicyVmMemory *m = w->mem;

        if (w->vm == NULL || w->act || w->hold || w->src != SRC_AGENT ||
            protection(w, cfg, now) != PROTECT_NONE)
            continue;
        if (m->last_inflate_us != 0 &&
            now - m->last_inflate_us < (gint64)cfg->probe_interval_ms * US_MS)
            continue;
        /* Settled: not moved for balloon_settle_ms, whoever moved it (a size
         * set at boot still on its way, someone else's setmem), and seen
         * before this plan: a balloon first seen now may be on its way. */
        if (now - m->actual_moved_us < (gint64)cfg->balloon_settle_ms * US_MS)
            continue;
        guint64 lowest = w->floor;
        if (m->probe_floor_until_us > now)
            lowest = MAX(lowest, m->probe_floor_kib);
        if (w->cur <= lowest)
            continue;
        /* A guest that stayed quiet after each of its last probes is clearly
         * idle: the step doubles with each (at most 4x probe_step, and never
         * beyond reclaim_step), so gigabytes left idle after a burst go in
         * minutes, not the ~20 a fixed step takes. Pressure resets it. */
        guint64 step = MIN(cfg->probe_step_kib << MIN(m->probe_streak, PROBE_RAMP_MAX),
                           MAX(cfg->probe_step_kib, cfg->reclaim_step_kib));
        guint64 take = MIN(MIN(w->give_max, step), w->cur - lowest);
        char reason[160];
        g_snprintf(reason, sizeof(reason),
                   "probe: quiet, idle %" G_GUINT64_FORMAT " MiB above headroom %" G_GUINT64_FORMAT
                   " MiB",
                   mib(w->give_max), mib(w->headroom));
        if (propose(w, cfg, POLICY_ACTION_INFLATE, POLICY_REASON_PROBE, MAX(w->cur - take, lowest),
                    FALSE, reason) &&
            w->applied) {
            m->last_probe_us = now;
            m->probe_streak++;
        }
    }
}

/* The plan's actions, deflates first (they are the urgent ones), and what
 * AUTO VMs remember of them. */
static void plan_actions(PolicyWork *works, gsize n_vms, PolicyPlan *plan, gint64 now_us)
{
    for (int pass = 0; pass < 2; pass++) {
        PolicyActionKind kind = pass == 0 ? POLICY_ACTION_DEFLATE : POLICY_ACTION_INFLATE;

        for (gsize i = 0; i < n_vms; i++) {
            PolicyWork *w = &works[i];
            PolicyAction a = {0};

            if (w->vm == NULL || !w->act || w->kind != kind)
                continue;
            a.vm = i;
            a.kind = kind;
            a.code = w->code;
            /* propose() clamped it already; said again where the plan leaves */
            a.target_kib = CLAMP(w->target, w->floor, w->max);
            g_strlcpy(a.reason, w->reason, sizeof(a.reason));
            g_array_append_val(plan->actions, a);
            if (!w->applied)
                continue;                       /* OBSERVE: nothing happens, nothing to remember */
            policy_setmem_save(w->mem, now_us); /* taken back if the call fails */
            w->mem->undo.burst_step_kib = w->burst_before;
            if (kind == POLICY_ACTION_INFLATE && w->code == POLICY_REASON_PROBE) {
                /* found idle: what was taken before is not owed back either,
                 * or give-back and probe would take turns */
                w->mem->reclaimed_from_kib = 0;
                w->mem->last_inflate_us = now_us;
            } else if (kind == POLICY_ACTION_INFLATE) {
                if (w->mem->reclaimed_from_kib == 0)
                    w->mem->reclaimed_from_kib = w->cur;
                w->mem->last_inflate_us = now_us;
            } else if (w->target >= w->mem->reclaimed_from_kib) {
                w->mem->reclaimed_from_kib = 0;
            }
            if (kind == POLICY_ACTION_DEFLATE &&
                (w->code == POLICY_REASON_PRESSURE || w->code == POLICY_REASON_OOM)) {
                w->mem->answered_seq = w->vm->report.seq;
                w->mem->answered_uptime_ms = w->vm->report.uptime_ms;
            }
            w->mem->last_target_kib = w->target;
            w->mem->target_set_us = now_us;
        }
    }
}

/* Rule 8, last: whatever was (not) decided, no balloon stays below its floor. */
static void plan_floor_net(PolicyWork *works, gsize n_vms, const PolicyConfig *config,
                           PolicyPlan *plan, gint64 now_us)
{
    for (gsize i = 0; i < n_vms; i++) {
        PolicyWork *w = &works[i];
        PolicyAction a = {0};

        if (w->vm == NULL || w->act || w->hold)
            continue;
        if (!policy_floor_net(w->mem, w->vm, w->name, w->floor, w->actual, config, now_us, &a))
            continue;
        a.vm = i;
        g_array_append_val(plan->actions, a);
    }
}

guint64 policy_vm_floor(const PolicyConfig *config, guint64 floor_kib, guint64 max_kib)
{
    guint64 floor = MAX(floor_kib, config->min_floor_kib);
    return max_kib > 0 ? MIN(floor, max_kib) : floor;
}

/* ---- policy_decide ------------------------------------------------------------------------- */

PolicyPlan *policy_decide(const PolicyHost *host, const PolicyVm *vms, gsize n_vms,
                          const PolicyConfig *config, gint64 now_us)
{
    PolicyPlan *plan = g_new0(PolicyPlan, 1);
    g_autofree PolicyWork *works = g_new0(PolicyWork, MAX(n_vms, 1));

    plan->actions = g_array_new(FALSE, FALSE, sizeof(PolicyAction));
    plan->notes = g_ptr_array_new_with_free_func(g_free);
    plan->n_vms = n_vms;
    plan->memory = g_new0(PolicyVmMemory, MAX(n_vms, 1));
    plan->entitlement_kib = g_new0(guint64, MAX(n_vms, 1));

    for (gsize i = 0; i < n_vms; i++) {
        const PolicyVm *vm = &vms[i];
        PolicyWork *w = &works[i];

        plan->memory[i] = vm->memory;
        if (vm->mode == POLICY_MODE_OFF || vm->max_kib == 0)
            continue; /* w->vm stays NULL: never touched */
        w->idx = i;
        w->vm = vm;
        w->mem = &plan->memory[i];
        w->name = vm->name != NULL ? vm->name : "?";
        w->applied = vm->mode == POLICY_MODE_AUTO;
        w->shares = vm->shares != 0 ? vm->shares : config->default_shares;
        w->max = MIN(vm->max_kib, KIB_LIMIT);
        w->floor = policy_vm_floor(config, vm->floor_kib, w->max);
        w->actual = MIN(vm->actual_kib, w->max);
        w->cur = w->actual;
        w->host_spare = sub0(MIN(host->mem_available_kib, KIB_LIMIT),
                             host_reserve(host, config) + 2 * config->host_hysteresis_kib);
        w->hold = policy_setmem_track(w->mem, vm, config, plan->notes, w->name, now_us);
        w->burst_before = w->mem->burst_step_kib; /* after a failed call is taken back */
        track_balloon(w, config, plan, now_us);   /* movement for all, targets for AUTO */
        check_claim(w, config, plan, now_us);     /* may overrule rule 4 for a test */
        if (w->applied && !w->act && w->mem->last_target_kib != 0)
            w->cur = MIN(w->mem->last_target_kib, w->max);
        classify(w, config, plan, now_us);
        switch (w->src) {
        case SRC_AGENT:
            decide_agent(w, config, plan, now_us);
            break;
        case SRC_LIBVIRT:
            decide_libvirt(w, config, now_us);
            break;
        case SRC_SILENT:
            decide_silent(w, config, plan, now_us);
            break;
        case SRC_NONE:
            break;
        }
        if (w->hold) {
            w->act = FALSE; /* decided, not asked for: the last call failed (rule 9) */
            w->mem->burst_step_kib = w->burst_before; /* nor escalated */
        }
    }

    entitle(works, n_vms, vms, host, config, plan, now_us);
    /* On the pressure path decide_host() sees only the guests that reported:
     * one above its entitlement gives back at once (rule 10), none is
     * reclaimed to pay for another (that waits for the tick), none probed. */
    gboolean comfortable = FALSE;
    if (!decide_host(works, n_vms, host, config, plan, now_us, &comfortable) &&
        !host->pressure_only && comfortable)
        decide_probe(works, n_vms, config, now_us);

    plan_actions(works, n_vms, plan, now_us);
    plan_floor_net(works, n_vms, config, plan, now_us);
    return plan;
}

void policy_plan_free(PolicyPlan *plan)
{
    if (plan == NULL)
        return;
    g_array_unref(plan->actions);
    g_ptr_array_unref(plan->notes);
    g_free(plan->memory);
    g_free(plan->entitlement_kib);
    g_free(plan);
}

guint64 policy_host_reserve_kib(const PolicyHost *host, const PolicyConfig *cfg)
{
    guint64 total = MIN(host->mem_total_kib, KIB_LIMIT);
    return MAX(cfg->host_reserve_kib, (guint64)((double)total * cfg->host_reserve_pct / 100));
}

const char *policy_reason_name(PolicyReason code)
{
    /* A small fixed set: metrics label values and event-log fields. */
    static const char *const names[POLICY_REASON_N] = {
        [POLICY_REASON_PRESSURE] = "pressure",
        [POLICY_REASON_OOM] = "oom",
        [POLICY_REASON_SILENT] = "silent-agent",
        [POLICY_REASON_AGENTLESS] = "agentless",
        [POLICY_REASON_FLOOR] = "floor",
        [POLICY_REASON_STUCK] = "stuck",
        [POLICY_REASON_HOST_SHORT] = "host-short",
        [POLICY_REASON_GIVEBACK] = "give-back",
        [POLICY_REASON_ENTITLEMENT] = "over-entitlement",
        [POLICY_REASON_RELEASE] = "release",
        [POLICY_REASON_PROBE] = "probe",
    };
    return (unsigned)code < POLICY_REASON_N && names[code] ? names[code] : "unknown";
}
