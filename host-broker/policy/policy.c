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

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- configuration ------------------------------------------------------------------------- */

typedef enum {
    KEY_SIZE,      /* guint64 KiB; "256MiB", "1G", plain KiB */
    KEY_MS,        /* guint32 ms; plain ms, or "ms"/"s" suffix */
    KEY_PCT,       /* double percent */
    KEY_RATE,      /* double per second */
    KEY_UINT,      /* guint32 */
    KEY_BOOL,      /* gboolean */
    KEY_AGENTLESS, /* PolicyAgentless: libvirt | leave */
} PolicyKeyType;

typedef struct {
    const char *name;
    PolicyKeyType type;
    gsize offset;
    const char *def; /* parsed by the same code as the file: the docs table shows it */
    double min, max; /* inclusive, in the key's unit (KiB, ms, %, /s) */
} PolicyKey;

#define K(name, type, field, def, min, max)                                                        \
    {                                                                                              \
        name, type, G_STRUCT_OFFSET(PolicyConfig, field), def, min, max                            \
    }
#define TIB (1024.0 * 1024 * 1024)

static const PolicyKey policy_keys[] = {
    K("default_shares", KEY_UINT, default_shares, "1000", 1, 1000000),
    K("min_floor", KEY_SIZE, min_floor_kib, "256MiB", 0, TIB),
    K("min_step", KEY_SIZE, min_step_kib, "16MiB", 1024, 64 * 1024 * 1024),
    K("stale_after_ms", KEY_MS, stale_after_ms, "3000", 100, 600000),
    K("grow_to_headroom", KEY_BOOL, grow_to_headroom, "true", 0, 1),
    K("psi_some_avg10", KEY_PCT, psi_some_pct, "1.0", 0.01, 100),
    K("psi_full_avg10", KEY_PCT, psi_full_pct, "0.5", 0.01, 100),
    K("major_faults_per_s", KEY_RATE, major_faults_per_s, "200", 1, 1e9),
    K("refaults_per_s", KEY_RATE, refaults_per_s, "2000", 1, 1e9),
    K("swapins_per_s", KEY_RATE, swapins_per_s, "100", 1, 1e9),
    K("lead_time_ms", KEY_MS, lead_time_ms, "2000", 0, 60000),
    K("rate_min_interval_ms", KEY_MS, rate_min_interval_ms, "50", 1, 10000),
    K("deflate_margin", KEY_SIZE, deflate_margin_kib, "32MiB", 0, 64 * 1024 * 1024),
    K("pressure_step", KEY_SIZE, pressure_step_kib, "128MiB", 1024, TIB),
    K("oom_step", KEY_SIZE, oom_step_kib, "256MiB", 1024, TIB),
    K("pressure_cooldown_ms", KEY_MS, pressure_cooldown_ms, "60000", 0, 86400000),
    K("host_reserve", KEY_SIZE, host_reserve_kib, "1GiB", 0, TIB),
    K("host_reserve_pct", KEY_PCT, host_reserve_pct, "5", 0, 50),
    K("host_hysteresis", KEY_SIZE, host_hysteresis_kib, "256MiB", 0, TIB),
    K("host_psi_some_avg10", KEY_PCT, host_psi_some_pct, "5", 0.01, 100),
    K("host_psi_step", KEY_SIZE, host_psi_step_kib, "256MiB", 0, TIB),
    K("reclaim_step", KEY_SIZE, reclaim_step_kib, "256MiB", 1024, TIB),
    K("reclaim_interval_ms", KEY_MS, reclaim_interval_ms, "5000", 0, 86400000),
    K("idle_tax", KEY_PCT, idle_tax_pct, "75", 0, 99),
    K("giveback_step", KEY_SIZE, giveback_step_kib, "256MiB", 1024, TIB),
    K("silent_safe_pct", KEY_PCT, silent_safe_pct, "50", 0, 100),
    K("agentless", KEY_AGENTLESS, agentless, "libvirt", 0, 1),
    K("libvirt_stale_after_ms", KEY_MS, libvirt_stale_after_ms, "10000", 100, 600000),
    K("libvirt_headroom_pct", KEY_PCT, libvirt_headroom_pct, "150", 100, 1000),
    K("balloon_settle_ms", KEY_MS, balloon_settle_ms, "5000", 100, 600000),
    K("balloon_tolerance", KEY_SIZE, balloon_tolerance_kib, "16MiB", 1024, 1024 * 1024),
    K("balloon_backoff_ms", KEY_MS, balloon_backoff_ms, "60000", 0, 86400000),
};
#undef K

typedef struct {
    const char *unit; /* lower case; "" for a bare number */
    guint64 mult;
} ScaleUnit;

/* "<digits>[ ]<unit>" with a unit from the table (case-insensitive): no sign,
 * no fraction, no overflow. Shared by sizes and durations. */
static gboolean parse_scaled(const char *text, const ScaleUnit *units, gsize n_units, guint64 *out)
{
    const char *p = text;
    char *end = NULL;
    guint64 n;

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
    for (gsize i = 0; i < n_units; i++) {
        if (strcmp(unit, units[i].unit) != 0)
            continue;
        if (n > G_MAXUINT64 / units[i].mult)
            return FALSE;
        *out = n * units[i].mult;
        return TRUE;
    }
    return FALSE;
}

gboolean policy_parse_size(const char *text, guint64 *kib)
{
    static const ScaleUnit units[] = {
        {"", 1},          {"k", 1},          {"kib", 1},
        {"m", 1024},      {"mib", 1024},     {"g", 1024 * 1024},
        {"gib", 1048576}, {"t", 1073741824}, {"tib", 1073741824},
    };

    return parse_scaled(text, units, G_N_ELEMENTS(units), kib);
}

gboolean policy_parse_bool(const char *text, gboolean *value)
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

static gboolean parse_ms(const char *text, guint64 *ms)
{
    static const ScaleUnit units[] = {{"", 1}, {"ms", 1}, {"s", 1000}};

    return parse_scaled(text, units, G_N_ELEMENTS(units), ms);
}

static gboolean parse_double(const char *text, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = g_ascii_strtod(text, &end);
    if (end == text || errno != 0 || !isfinite(v))
        return FALSE;
    while (g_ascii_isspace(*end))
        end++;
    if (*end == '%')
        end++;
    while (g_ascii_isspace(*end))
        end++;
    if (*end != '\0')
        return FALSE;
    *out = v;
    return TRUE;
}

static const char *key_unit(PolicyKeyType type)
{
    switch (type) {
    case KEY_SIZE:
        return " KiB";
    case KEY_MS:
        return " ms";
    case KEY_PCT:
        return "%";
    case KEY_RATE:
        return "/s";
    case KEY_UINT:
    case KEY_BOOL:
    case KEY_AGENTLESS:
        return "";
    }
    return "";
}

static gboolean key_set(const PolicyKey *key, const char *group, const char *text,
                        PolicyConfig *config, GError **error)
{
    void *field = G_STRUCT_MEMBER_P(config, key->offset);
    g_autofree char *s = g_strstrip(g_strdup(text));
    guint64 u = 0;
    double d = 0;
    gboolean ok;

    switch (key->type) {
    case KEY_BOOL:
        if (!policy_parse_bool(s, (gboolean *)field)) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "[%s] %s = \"%s\": expected true or false", group, key->name, s);
            return FALSE;
        }
        return TRUE;
    case KEY_AGENTLESS:
        if (strcmp(s, "libvirt") == 0) {
            *(PolicyAgentless *)field = POLICY_AGENTLESS_LIBVIRT;
        } else if (strcmp(s, "leave") == 0) {
            *(PolicyAgentless *)field = POLICY_AGENTLESS_LEAVE;
        } else {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "[%s] %s = \"%s\": expected libvirt or leave", group, key->name, s);
            return FALSE;
        }
        return TRUE;
    case KEY_SIZE:
        ok = policy_parse_size(s, &u);
        d = (double)u;
        break;
    case KEY_MS:
        ok = parse_ms(s, &u);
        d = (double)u;
        break;
    case KEY_UINT:
        ok = s[0] != '\0' && strspn(s, "0123456789") == strlen(s) && strlen(s) < 12;
        u = ok ? g_ascii_strtoull(s, NULL, 10) : 0;
        d = (double)u;
        break;
    case KEY_PCT:
    case KEY_RATE:
        ok = parse_double(s, &d) && (key->type == KEY_PCT || strchr(s, '%') == NULL);
        break;
    default:
        ok = FALSE;
        break;
    }
    if (!ok || d < key->min || d > key->max) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[%s] %s = \"%s\": expected %s from %.10g to %.10g%s", group, key->name, s,
                    key->type == KEY_SIZE ? "a size" : "a number", key->min, key->max,
                    key_unit(key->type));
        return FALSE;
    }
    switch (key->type) {
    case KEY_SIZE:
        *(guint64 *)field = u;
        break;
    case KEY_MS:
    case KEY_UINT:
        *(guint32 *)field = (guint32)u;
        break;
    case KEY_PCT:
    case KEY_RATE:
        *(double *)field = d;
        break;
    case KEY_BOOL:
    case KEY_AGENTLESS:
        break;
    }
    return TRUE;
}

const char *const *policy_config_keys(void)
{
    static const char *names[G_N_ELEMENTS(policy_keys) + 1];
    static gsize done = 0;

    if (g_once_init_enter(&done)) {
        for (gsize i = 0; i < G_N_ELEMENTS(policy_keys); i++)
            names[i] = policy_keys[i].name;
        g_once_init_leave(&done, 1);
    }
    return names;
}

void policy_config_init_defaults(PolicyConfig *config)
{
    memset(config, 0, sizeof(*config));
    for (gsize i = 0; i < G_N_ELEMENTS(policy_keys); i++) {
        gboolean ok = key_set(&policy_keys[i], "policy", policy_keys[i].def, config, NULL);
        g_assert(ok); /* the defaults are part of the program */
    }
}

gboolean policy_config_load(PolicyConfig *config, GKeyFile *kf, const char *group, char **bad_key,
                            GError **error)
{
    PolicyConfig next = *config;
    g_auto(GStrv) keys = NULL;

    if (!g_key_file_has_group(kf, group))
        return TRUE;
    keys = g_key_file_get_keys(kf, group, NULL, error);
    if (keys == NULL)
        return FALSE;
    for (gsize i = 0; keys[i] != NULL; i++) {
        const PolicyKey *key = NULL;
        g_autofree char *value = NULL;

        for (gsize k = 0; k < G_N_ELEMENTS(policy_keys); k++) {
            if (strcmp(keys[i], policy_keys[k].name) == 0)
                key = &policy_keys[k];
        }
        if (key == NULL) {
            if (bad_key != NULL)
                *bad_key = g_strdup(keys[i]);
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                        "[%s] %s: unknown key (see docs/policy.md)", group, keys[i]);
            return FALSE;
        }
        value = g_key_file_get_value(kf, group, keys[i], error);
        if (value == NULL || !key_set(key, group, value, &next, error)) {
            if (bad_key != NULL)
                *bad_key = g_strdup(keys[i]);
            return FALSE;
        }
    }
    *config = next;
    return TRUE;
}

/* ---- helpers ------------------------------------------------------------------------------- */

#define MIB 1024ULL
/* Sizes beyond this (1 EiB) are nonsense: clamping them keeps every sum below
 * 2^64 without a saturating add at each step. */
#define KIB_LIMIT (1ULL << 50)
#define US_MS     ((gint64)1000)
#define US_SEC    ((gint64)1000000)

guint64 policy_headroom_kib(guint64 total_kib)
{
    /* Hyper-V's balloon floor (Linux drivers/hv/hv_balloon.c, compute_balloon_floor()),
     * continuous at each band edge. */
    if (total_kib < 128 * MIB)
        return 8 * MIB + total_kib / 2;
    if (total_kib < 512 * MIB)
        return 40 * MIB + total_kib / 4;
    if (total_kib < 2048 * MIB)
        return 104 * MIB + total_kib / 8;
    if (total_kib < 8192 * MIB)
        return 232 * MIB + total_kib / 16;
    return 488 * MIB + total_kib / 32;
}

static guint64 round_up_mib(guint64 kib)
{
    if (kib > G_MAXUINT64 - MIB)
        return kib;
    return (kib + MIB - 1) / MIB * MIB;
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
    return (kib + MIB / 2) / MIB;
}

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

    /* reclaim */
    guint64 give_max;
    double rho;
    const char *protect; /* why nothing may be taken; NULL: a candidate */

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
    gboolean ok; /* rates below are valid */
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
        }
    }
    if (lies->len > 0 && is_new) {
        g_string_truncate(lies, lies->len - 2);
        m->anomalies++;
        /* 1st, 2nd, 4th, 8th...: a guest that lies all the time must not flood the log */
        if ((m->anomalies & (m->anomalies - 1)) == 0)
            note(plan, "%s: implausible report seq %" G_GUINT64_FORMAT " (%s): clamped, %u so far",
                 w->name, r->seq, lies->str, m->anomalies);
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
                mib(w->avail), rt.used_rate / MIB, mib(w->headroom), lead_s);
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
        m->last_pressure_us = now;
        /* Never lower a raise already asked for: cur is the target in force. */
        propose(w, cfg, POLICY_ACTION_DEFLATE,
                rt.oom_kills > 0 ? POLICY_REASON_OOM : POLICY_REASON_PRESSURE,
                MIN(w->max, base + need), FALSE, w->why);
    }

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
    double pages = (double)MAX(w->cur, 1) / MIB;

    return (double)w->shares / (pages * (f + k * (1.0 - f)));
}

static void classify(PolicyWork *w, const PolicyConfig *cfg, PolicyPlan *plan, gint64 now)
{
    const PolicyVm *vm = w->vm;
    PolicyVmMemory *m = w->mem;
    gboolean fresh = vm->has_report && now - vm->report_at_us < (gint64)cfg->stale_after_ms * US_MS;

    if (fresh) {
        w->src = SRC_AGENT;
        m->last_report_us = MAX(m->last_report_us, vm->report_at_us);
        if (m->silent) {
            m->silent = FALSE;
            note(plan, "%s: agent reporting again", w->name);
        }
    } else if (m->last_report_us != 0 || vm->has_report) {
        w->src = SRC_SILENT;
    } else if (cfg->agentless == POLICY_AGENTLESS_LIBVIRT && vm->has_balloon_stats &&
               now - vm->balloon_stats_at_us < (gint64)cfg->libvirt_stale_after_ms * US_MS &&
               vm->lv_available_kib > 0) {
        w->src = SRC_LIBVIRT;
    } else {
        w->src = SRC_NONE;
    }
}

/* Why memory may not be taken from this VM now (NULL: it may). */
static const char *protection(const PolicyWork *w, const PolicyConfig *cfg, gint64 now)
{
    const PolicyVmMemory *m = w->mem;

    if (w->src == SRC_NONE)
        return "no data";
    if (w->src == SRC_SILENT)
        return "agent silent";
    if (w->act || w->pressured)
        return "under pressure";
    if (m->last_pressure_us != 0 &&
        now - m->last_pressure_us < (gint64)cfg->pressure_cooldown_ms * US_MS)
        return "cool-down after pressure";
    if (m->stuck_until_us != 0)
        return "balloon stuck";
    if (w->applied && m->last_target_kib != 0 &&
        absdiff(w->actual, m->last_target_kib) > cfg->balloon_tolerance_kib)
        return "balloon moving";
    if (m->last_inflate_us != 0 &&
        now - m->last_inflate_us < (gint64)cfg->reclaim_interval_ms * US_MS)
        return "reclaimed recently";
    if (w->cur <= w->floor || MIN(w->give_max, w->cur - w->floor) < cfg->min_step_kib)
        return "at its floor";
    return NULL;
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
        if (!propose(w, cfg, POLICY_ACTION_INFLATE, POLICY_REASON_HOST_SHORT, target, FALSE, reason))
            continue;
        if (w->applied)
            got += w->cur - w->target;
    }
    return got;
}

guint64 policy_host_reserve_kib(const PolicyHost *host, const PolicyConfig *cfg)
{
    return MAX(cfg->host_reserve_kib, (guint64)((double)MIN(host->mem_total_kib, KIB_LIMIT) *
                                                cfg->host_reserve_pct / 100));
}

static void decide_host(PolicyWork *works, gsize n, const PolicyHost *host, const PolicyConfig *cfg,
                        PolicyPlan *plan, gint64 now)
{
    guint64 reserve = policy_host_reserve_kib(host, cfg);
    guint64 h = cfg->host_hysteresis_kib;
    guint64 avail = MIN(host->mem_available_kib, KIB_LIMIT);
    guint64 deflating = 0, base_need = 0, total_need = 0, got = 0, after;
    guint64 pending_gain = 0, pending_cost = 0;
    gboolean psi_high = host->has_psi && isfinite(host->psi.some.avg10) &&
                        host->psi.some.avg10 > cfg->host_psi_some_pct;
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

    if (total_need > 0) {
        for (gsize i = 0; i < n; i++) {
            PolicyWork *w = &works[i];

            if (w->vm == NULL || w->act)
                continue;
            w->protect = protection(w, cfg, now);
            if (w->protect == NULL) {
                w->rho = policy_rho(w, cfg);
                g_ptr_array_add(cands, w);
            } else if (strcmp(w->protect, "at its floor") == 0) {
                n_floor++;
            } else {
                n_protected++;
            }
        }
        g_ptr_array_sort(cands, cmp_rho);
        if (base_need > 0)
            got = reclaim(cands, base_need, G_MAXUINT32, why, cfg);
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
        return;
    }

    /* Comfortable: give back what was reclaimed, spending only the surplus above
     * reserve + 2 x hysteresis so that giving back never causes a reclaim. */
    if (psi_high || after <= reserve + 2 * h + pending_cost)
        return;
    guint64 budget = after - (reserve + 2 * h) - pending_cost;
    g_autoptr(GPtrArray) back = g_ptr_array_new();

    for (gsize i = 0; i < n; i++) {
        PolicyWork *w = &works[i];

        /* one step per reclaim interval, after the last one landed */
        if (w->vm != NULL && !w->act && w->mem->reclaimed_from_kib > w->cur &&
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
        w->floor = MIN(MAX(vm->floor_kib, config->min_floor_kib), w->max);
        w->actual = MIN(vm->actual_kib, w->max);
        w->cur = w->actual;
        track_balloon(w, config, plan, now_us); /* movement for all, targets for AUTO */
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
    }

    decide_host(works, n_vms, host, config, plan, now_us);

    /* Deflates first: they are the urgent ones. */
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
            a.target_kib = w->target;
            g_strlcpy(a.reason, w->reason, sizeof(a.reason));
            g_array_append_val(plan->actions, a);
            if (!w->applied)
                continue; /* OBSERVE: nothing happens, nothing to remember */
            if (kind == POLICY_ACTION_INFLATE) {
                if (w->mem->reclaimed_from_kib == 0)
                    w->mem->reclaimed_from_kib = w->cur;
                w->mem->last_inflate_us = now_us;
            } else if (w->target >= w->mem->reclaimed_from_kib) {
                w->mem->reclaimed_from_kib = 0;
            }
            w->mem->last_target_kib = w->target;
            w->mem->target_set_us = now_us;
        }
    }
    return plan;
}

void policy_plan_free(PolicyPlan *plan)
{
    if (plan == NULL)
        return;
    g_array_unref(plan->actions);
    g_ptr_array_unref(plan->notes);
    g_free(plan->memory);
    g_free(plan);
}

const char *policy_reason_name(PolicyReason code)
{
    /* A small fixed set: metrics label values and event-log fields. */
    static const char *const names[POLICY_REASON_N] = {
        [POLICY_REASON_PRESSURE] = "pressure",     [POLICY_REASON_OOM] = "oom",
        [POLICY_REASON_SILENT] = "silent-agent",   [POLICY_REASON_AGENTLESS] = "agentless",
        [POLICY_REASON_FLOOR] = "floor",           [POLICY_REASON_STUCK] = "stuck",
        [POLICY_REASON_HOST_SHORT] = "host-short", [POLICY_REASON_GIVEBACK] = "give-back",
        [POLICY_REASON_ENTITLEMENT] = "over-entitlement", [POLICY_REASON_RELEASE] = "release",
    };
    return (unsigned)code < POLICY_REASON_N && names[code] ? names[code] : "unknown";
}
