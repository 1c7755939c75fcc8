/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Entitlements and trust (docs/policy.md, rules 6 and 8): the water-filling
 * arithmetic, and the policy over many cycles with lying and honest guests on
 * a simulated host. The simulation calls policy_decide() as the broker does
 * (once a second, the plan's memory stored back), lands every balloon target
 * at once (but never below what the guest has touched) and keeps the host's
 * MemAvailable equal to what is left after what the guests have touched.
 */
#include "entitlement.h"
#include "policy.h"

#include <string.h>

#pragma GCC diagnostic ignored "-Wnull-dereference" /* fatal assertions */

#define MIB  ((guint64)1024)
#define GIB  (1024 * MIB)
#define MS   ((gint64)1000)
#define SEC  ((gint64)1000000)
#define FOOT (100 * MIB) /* a guest's own footprint */
#define OFF  (50 * MIB)  /* balloon - MemTotal */
#define MAXG 6

/* ---- water-filling ------------------------------------------------------------------------- */

static guint64 fill(const EntitlementVm *v, gsize n, guint64 pool, guint64 *out)
{
    guint64 left = entitlement_fill(v, n, pool, out), sum = 0;

    for (gsize i = 0; i < n; i++) {
        g_assert_cmpuint(out[i], >=, MIN(v[i].floor_kib, v[i].max_kib));
        g_assert_cmpuint(out[i], <=, v[i].max_kib);
        sum += out[i];
    }
    g_assert_cmpuint(sum + left, <=, MAX(pool, sum));
    return left;
}

static void test_fill_equal_and_need(void)
{
    EntitlementVm v[3] = {
        {.floor_kib = 256 * MIB, .max_kib = 4 * GIB, .need_kib = 4 * GIB, .shares = 1000},
        {.floor_kib = 256 * MIB, .max_kib = 4 * GIB, .need_kib = 4 * GIB, .shares = 1000},
        {.floor_kib = 256 * MIB, .max_kib = 4 * GIB, .need_kib = 4 * GIB, .shares = 1000},
    };
    guint64 out[3];

    /* everyone wants everything: floors + equal parts of the rest */
    g_assert_cmpuint(fill(v, 3, 3 * GIB, out), ==, 0);
    for (int i = 0; i < 3; i++)
        g_assert_cmpuint(out[i], ==, GIB);

    /* one needs less than its part: the rest goes to the others */
    v[0].need_kib = 512 * MIB;
    fill(v, 3, 3 * GIB, out);
    g_assert_cmpuint(out[0], ==, 512 * MIB);
    g_assert_cmpuint(out[1], ==, out[2]);
    g_assert_cmpuint(out[1] + out[2], >=, 3 * GIB - 512 * MIB - 1);

    /* all need less than the pool: needs met, the rest shared up to max */
    for (int i = 0; i < 3; i++)
        v[i].need_kib = 512 * MIB;
    fill(v, 3, 6 * GIB, out);
    for (int i = 0; i < 3; i++)
        g_assert_cmpuint(out[i], ==, 2 * GIB);
    /* ... and a pool beyond every maximum is left over */
    g_assert_cmpuint(fill(v, 3, 20 * GIB, out), ==, 8 * GIB);
    for (int i = 0; i < 3; i++)
        g_assert_cmpuint(out[i], ==, 4 * GIB);

    /* shares 0 counts as 1; a need above max is max */
    v[0].shares = 0;
    v[0].need_kib = 100 * GIB;
    fill(v, 3, 20 * GIB, out);
    g_assert_cmpuint(out[0], ==, 4 * GIB);
}

static void test_fill_huge_share(void)
{
    EntitlementVm v[3] = {
        {.floor_kib = 0, .max_kib = 16 * GIB, .need_kib = 16 * GIB, .shares = 1000000},
        {.floor_kib = 256 * MIB, .max_kib = 4 * GIB, .need_kib = 4 * GIB, .shares = 1},
        {.floor_kib = 256 * MIB, .max_kib = 4 * GIB, .need_kib = GIB, .shares = 1},
    };
    guint64 out[3];

    /* the huge share takes nearly all of what is above the floors ... */
    fill(v, 3, 8 * GIB, out);
    g_assert_cmpuint(out[0], >=, 8 * GIB - 512 * MIB - 1 * MIB);
    g_assert_cmpuint(out[1], <, 257 * MIB);
    /* ... up to its need: then the others get what it leaves, and what nobody
     * needs goes by shares again (round two: nearly all to the huge share) */
    v[0].need_kib = 2 * GIB;
    fill(v, 3, 8 * GIB, out);
    g_assert_cmpuint(out[1], ==, 4 * GIB);
    g_assert_cmpuint(out[2], >=, GIB);
    g_assert_cmpuint(out[2], <, GIB + MIB);
    g_assert_cmpuint(out[0], >=, 3 * GIB - MIB);
    g_assert_cmpuint(out[0] + out[1] + out[2], ==, 8 * GIB);
}

static void test_fill_floors_above_budget(void)
{
    EntitlementVm v[2] = {
        {.floor_kib = 3 * GIB, .max_kib = 4 * GIB, .need_kib = 4 * GIB, .shares = 1000},
        {.floor_kib = 2 * GIB, .max_kib = 4 * GIB, .need_kib = 4 * GIB, .shares = 1000},
    };
    guint64 out[2];

    /* floors are never broken, even beyond the pool (0 or too small) */
    g_assert_cmpuint(fill(v, 2, 4 * GIB, out), ==, 0);
    g_assert_cmpuint(out[0], ==, 3 * GIB);
    g_assert_cmpuint(out[1], ==, 2 * GIB);
    fill(v, 2, 0, out);
    g_assert_cmpuint(out[0], ==, 3 * GIB);
    /* a floor above the maximum is the maximum */
    v[0].floor_kib = 8 * GIB;
    fill(v, 2, 0, out);
    g_assert_cmpuint(out[0], ==, 4 * GIB);
    g_assert_cmpuint(entitlement_pool(8 * GIB, 6 * GIB, 4 * GIB), ==, 0);
    g_assert_cmpuint(entitlement_pool(8 * GIB, GIB, GIB), ==, 6 * GIB);
    fill(v, 0, GIB, NULL);
}

/* Random input: bounds, and max-min fairness: a VM short of its need never
 * has less above its floor per share than one that got more than its floor. */
static void test_fill_random(void)
{
    for (int iter = 0; iter < 2000; iter++) {
        EntitlementVm v[8];
        guint64 out[8], pool = (guint64)g_test_rand_int_range(0, 64 * 1024) * MIB;
        gsize n = (gsize)g_test_rand_int_range(0, 9);

        for (gsize i = 0; i < n; i++) {
            v[i].max_kib = (guint64)g_test_rand_int_range(0, 16 * 1024) * MIB;
            v[i].floor_kib = (guint64)g_test_rand_int_range(0, 2048) * MIB;
            v[i].need_kib = (guint64)g_test_rand_int_range(0, 16 * 1024) * MIB;
            v[i].shares = (guint32)g_test_rand_int_range(0, 5000);
        }
        fill(v, n, pool, out);
        for (gsize i = 0; i < n; i++) {
            guint64 fi = MIN(v[i].floor_kib, v[i].max_kib);
            guint64 want = MIN(MAX(v[i].need_kib, fi), v[i].max_kib);
            double si = v[i].shares ? v[i].shares : 1;

            if (out[i] + 2 >= want)
                continue;
            for (gsize j = 0; j < n; j++) {
                guint64 fj = MIN(v[j].floor_kib, v[j].max_kib);
                double sj = v[j].shares ? v[j].shares : 1;

                /* parts are rounded down to a KiB, the last takes the crumbs */
                if (out[j] > fj + 2 * n)
                    g_assert_cmpfloat((double)(out[i] - fi + 2 * n) / si, >=,
                                      (double)(out[j] - fj - 2 * n) / sj);
            }
        }
    }
}

/* ---- the policy over time ------------------------------------------------------------------ */

typedef struct {
    gboolean liar;        /* claims pressure in every report, touches nothing */
    gboolean kernel_lie;  /* its balloon driver lies too: libvirt sees what it claims */
    guint64 used, goal;   /* honest: workload now, and where it grows to ... */
    guint64 rate;         /* ... per second */
    guint64 total_lie;    /* added to MemTotal: a contradiction the host sees */
    gint64 psi_add;       /* added to the PSI totals per report */
    guint64 oom_kills;    /* the guest's oom_kill counter */
    guint64 max_ent_seen; /* largest entitlement shown so far */
} Guest;

typedef struct {
    PolicyConfig c;
    PolicyHost h;
    guint64 host_own; /* memory the host uses itself */
    gsize n;
    PolicyVm vms[MAXG];
    Guest g[MAXG];
    char names[MAXG][16];
    gint64 now;
    guint64 ent[MAXG]; /* the last plan's entitlements */
} Sim;

static void sim_init(Sim *s, guint64 host_total, guint64 pool)
{
    memset(s, 0, sizeof(*s));
    policy_config_init_defaults(&s->c);
    s->c.host_reserve_kib = host_total - pool; /* MemTotal - reserve = pool */
    s->h.mem_total_kib = host_total;
    s->now = 1000 * SEC;
}

static gsize sim_add(Sim *s, gboolean liar, guint64 max, guint64 start, guint32 shares)
{
    gsize i = s->n++;
    PolicyVm *vm = &s->vms[i];

    g_assert_cmpuint(i, <, MAXG);
    g_snprintf(s->names[i], sizeof(s->names[i]), "%s%zu", liar ? "liar" : "honest", i);
    vm->name = s->names[i];
    vm->mode = POLICY_MODE_AUTO;
    vm->max_kib = max;
    vm->actual_kib = start;
    vm->shares = shares;
    vm->agent_connected = TRUE;
    s->g[i].liar = liar;
    s->g[i].used = 200 * MIB;
    s->g[i].goal = 200 * MIB;
    s->g[i].psi_add = liar ? 990000 : 0; /* a consistent lie: stalls as claimed */
    return i;
}

static guint64 touched(const Sim *s, gsize i)
{
    return s->g[i].liar ? FOOT : s->g[i].used + FOOT;
}

/* The guest's next report, and libvirt's (truthful) balloon statistics. */
static void sim_report(Sim *s, gsize i)
{
    PolicyVm *vm = &s->vms[i];
    Guest *g = &s->g[i];
    BlReport *r = &vm->report;
    guint64 total = vm->actual_kib - OFF;
    guint64 truth = total - MIN(total, touched(s, i));

    if (vm->has_report) {
        vm->has_prev_report = TRUE;
        vm->prev_report = *r;
        vm->prev_report_at_us = vm->report_at_us;
    }
    vm->has_report = TRUE;
    vm->report_at_us = s->now - 100 * MS;
    r->seq++;
    r->uptime_ms += 1000;
    r->mem.total_kib = total + g->total_lie;
    r->mem.available_kib = g->liar ? 8 * MIB : truth;
    r->mem.free_kib = r->mem.available_kib / 2;
    r->has_psi = TRUE;
    r->psi.some.avg10 = g->liar ? 99 : 0;
    r->psi.full.avg10 = g->liar ? 60 : 0;
    r->psi.some.total_us = (guint64)MAX(0, (gint64)r->psi.some.total_us + g->psi_add);
    r->psi.full.total_us = (guint64)MAX(0, (gint64)r->psi.full.total_us + g->psi_add / 2);
    r->vmstat.present = 1u << BL_VMSTAT_OOM_KILL;
    r->vmstat.value[BL_VMSTAT_OOM_KILL] = g->oom_kills;
    vm->has_balloon_stats = TRUE;
    vm->balloon_stats_at_us = s->now - 500 * MS;
    vm->lv_available_kib = total;
    vm->lv_usable_kib = g->kernel_lie ? r->mem.available_kib : truth;
}

/* One second: workloads grow, guests report, the policy decides, balloons land. */
static PolicyPlan *sim_cycle(Sim *s)
{
    guint64 used = s->host_own;

    s->now += SEC;
    for (gsize i = 0; i < s->n; i++) {
        Guest *g = &s->g[i];

        if (!g->liar)
            g->used = MIN(g->goal, g->used + g->rate);
        /* what a guest cannot hold is not held: the model's OOM check is the caller's */
        used += MIN(touched(s, i), s->vms[i].actual_kib - OFF);
        sim_report(s, i);
    }
    s->h.mem_available_kib = s->h.mem_total_kib - MIN(used, s->h.mem_total_kib);
    PolicyPlan *plan = policy_decide(&s->h, s->vms, s->n, &s->c, s->now);
    for (gsize i = 0; i < s->n; i++) {
        s->vms[i].memory = plan->memory[i];
        s->ent[i] = plan->entitlement_kib[i];
        g_assert_cmpuint(plan->memory[i].entitlement_kib, ==, s->ent[i]);
        s->g[i].max_ent_seen = MAX(s->g[i].max_ent_seen, s->ent[i]);
    }
    for (guint k = 0; k < plan->actions->len; k++) {
        const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, k);
        PolicyVm *vm = &s->vms[a->vm];

        if (g_test_verbose())
            g_printerr("t=%" G_GINT64_FORMAT " %s [%s]\n", s->now / SEC, a->reason,
                       policy_reason_name(a->code));
        /* a raise capped at the entitlement stays within it (rounded down to a
         * MiB, not up: 1 MiB above it, the next plan's entitlement a little
         * lower, the VM was reclaimed again and raised again by its next claim) */
        if (strstr(a->reason, "capped at entitlement") != NULL)
            g_assert_cmpuint(a->target_kib, <=, plan->memory[a->vm].fleet_entitlement_kib);
        /* the balloon cannot take what the guest has touched */
        vm->actual_kib = MAX(a->target_kib, MIN(touched(s, a->vm) + OFF, vm->actual_kib));
    }
    return plan;
}

static gboolean plan_has(const PolicyPlan *plan, gsize vm, PolicyActionKind kind, PolicyReason code)
{
    for (guint k = 0; k < plan->actions->len; k++) {
        const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, k);

        if (a->vm == vm && a->kind == kind && a->code == code)
            return TRUE;
    }
    return FALSE;
}

static gboolean plan_note(const PolicyPlan *plan, const char *needle)
{
    for (guint k = 0; k < plan->notes->len; k++) {
        if (g_test_verbose())
            g_printerr("note: %s\n", (char *)g_ptr_array_index(plan->notes, k));
        if (strstr(g_ptr_array_index(plan->notes, k), needle) != NULL)
            return TRUE;
    }
    return FALSE;
}

/* Honest: its workload always fits in what the balloon leaves it. */
static void assert_fits(const Sim *s, gsize i)
{
    g_assert_cmpuint(s->vms[i].actual_kib - OFF, >=, touched(s, i));
}

/*
 * One liar and one honest guest on a host short of memory (MemAvailable below
 * the reserve): the liar may hold no more than its entitlement, which shrinks
 * as the honest guest's need grows; the honest workload completes.
 */
static void test_liar_and_honest(void)
{
    Sim s;
    gsize liar, honest;
    guint64 liar_held_max_late = 0;

    sim_init(&s, 16 * GIB, 5 * GIB);
    s.host_own = 11 * GIB + 512 * MIB; /* MemAvailable < reserve from the start */
    liar = sim_add(&s, TRUE, 4 * GIB, 4 * GIB, 1000);
    honest = sim_add(&s, FALSE, 4 * GIB, GIB, 1000);
    s.g[honest].goal = 1800 * MIB;
    s.g[honest].rate = 100 * MIB;

    for (int t = 0; t < 40; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        g_assert_cmpuint(s.ent[liar], >, 0); /* the host is short all along */
        assert_fits(&s, honest);
        g_assert_false(plan_has(plan, honest, POLICY_ACTION_INFLATE, POLICY_REASON_ENTITLEMENT));
        if (t >= 25)
            liar_held_max_late = MAX(liar_held_max_late, s.vms[liar].actual_kib);
        /* never more than the entitlement plus one reclaim step a second behind it */
        if (t >= 5)
            g_assert_cmpuint(s.vms[liar].actual_kib, <=, s.ent[liar] + 5 * s.c.reclaim_step_kib);
    }
    g_assert_cmpuint(s.g[honest].used, ==, 1800 * MIB);
    /* at the end the liar holds exactly its entitlement, and the two add up to the pool */
    g_assert_cmpuint(liar_held_max_late, <=, s.ent[liar] + s.c.min_step_kib);
    g_assert_cmpuint(s.ent[liar], <, 4 * GIB - 512 * MIB);
    g_assert_cmpuint(s.ent[liar] + s.ent[honest], <=, 5 * GIB);
    g_assert_cmpuint(s.vms[liar].memory.anomalies, ==, 0); /* a consistent liar */
    g_assert_false(s.vms[liar].memory.untrusted);
}

/* Several liars with different shares beside an honest guest: each liar ends
 * at its entitlement, and entitlements follow shares. */
static void test_several_liars(void)
{
    Sim s;
    gsize l[3], honest;
    static const guint32 shares[3] = {500, 1000, 2000};

    sim_init(&s, 32 * GIB, 8 * GIB);
    s.host_own = 24 * GIB + 512 * MIB;
    for (int k = 0; k < 3; k++)
        l[k] = sim_add(&s, TRUE, 4 * GIB, 3 * GIB, shares[k]);
    honest = sim_add(&s, FALSE, 4 * GIB, GIB, 1000);
    s.g[honest].goal = 1500 * MIB;
    s.g[honest].rate = 100 * MIB;
    for (int t = 0; t < 60; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        assert_fits(&s, honest);
    }
    g_assert_cmpuint(s.g[honest].used, ==, 1500 * MIB);
    for (int k = 0; k < 3; k++)
        g_assert_cmpuint(s.vms[l[k]].actual_kib, <=, s.ent[l[k]] + s.c.min_step_kib);
    g_assert_cmpuint(s.ent[l[0]], <, s.ent[l[1]]);
    g_assert_cmpuint(s.ent[l[1]], <, s.ent[l[2]]);
    /* the honest guest keeps what it needs: entitled to at least its size */
    g_assert_cmpuint(s.ent[honest] + MIB, >=, s.vms[honest].actual_kib);
}

/* Liars on a host with plenty take spare memory, beyond any entitlement, and
 * give it back first when the host needs it; the honest guest in its
 * cool-down is not touched. */
static void test_liars_when_plenty(void)
{
    Sim s;
    gsize liar, honest;

    sim_init(&s, 16 * GIB, 8 * GIB);
    s.host_own = GIB;
    liar = sim_add(&s, TRUE, 6 * GIB, GIB, 1000);
    honest = sim_add(&s, FALSE, 6 * GIB, GIB, 1000);
    s.g[honest].goal = GIB;
    s.g[honest].rate = 200 * MIB;
    for (int t = 0; t < 20; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        assert_fits(&s, honest);
    }
    /* spare memory: the liar got (nearly) its maximum; the spare it did not
     * get is what the honest guest's growth was fed ahead (burst escalation) */
    g_assert_cmpuint(s.vms[liar].actual_kib + 256 * MIB, >=, 6 * GIB);
    g_assert_cmpuint(s.vms[liar].actual_kib, >, 5 * GIB);

    /* the host needs memory (its own use grows) and so does the honest guest:
     * the liar gives first, down to its entitlement */
    s.host_own = 7 * GIB;
    s.g[honest].goal = 3 * GIB;
    gboolean liar_gave = FALSE;
    for (int t = 0; t < 30; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        g_assert_cmpuint(s.ent[liar], >, 0);
        assert_fits(&s, honest);
        liar_gave |= plan_has(plan, liar, POLICY_ACTION_INFLATE, POLICY_REASON_ENTITLEMENT);
        g_assert_false(plan_has(plan, honest, POLICY_ACTION_INFLATE, POLICY_REASON_ENTITLEMENT));
        g_assert_false(plan_has(plan, honest, POLICY_ACTION_INFLATE, POLICY_REASON_HOST_SHORT));
    }
    g_assert_true(liar_gave);
    g_assert_cmpuint(s.g[honest].used, ==, 3 * GIB);
    g_assert_cmpuint(s.vms[liar].actual_kib, <, 5 * GIB);
    g_assert_cmpuint(s.vms[liar].actual_kib, <=, s.ent[liar] + s.c.min_step_kib);
    g_assert_cmpuint(s.vms[liar].actual_kib + MIB, >=, s.ent[liar]);
}

/* Claims do not protect memory above the entitlement, but the host's own view
 * does: a guest whose libvirt statistics show its memory in use is not
 * squeezed by the entitlement rule; the liar, whose memory libvirt sees
 * free, is taken down to its floor when the floors exceed the pool. */
static void test_busy_not_squeezed(void)
{
    Sim s;
    gsize liar, busy;

    sim_init(&s, 16 * GIB, 256 * MIB); /* floors (512 MiB) above the pool */
    s.host_own = 15 * GIB;
    liar = sim_add(&s, TRUE, 4 * GIB, 3 * GIB, 1000);
    busy = sim_add(&s, FALSE, 4 * GIB, 3 * GIB, 1000);
    s.g[busy].used = s.g[busy].goal = 2600 * MIB;
    for (int t = 0; t < 20; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        g_assert_cmpuint(s.ent[busy], ==, 256 * MIB);
        g_assert_false(plan_has(plan, busy, POLICY_ACTION_INFLATE, POLICY_REASON_ENTITLEMENT));
        assert_fits(&s, busy);
    }
    /* down to its floor, or to what libvirt sees it use + headroom */
    g_assert_cmpuint(s.vms[liar].actual_kib, <=, 320 * MIB);
    g_assert_cmpuint(s.vms[busy].actual_kib, ==, 3 * GIB);
}

/* A raise is a promise: two liars cannot both be served from the same spare
 * memory because the host's MemAvailable has not fallen yet. */
static void test_promises_count(void)
{
    Sim s;
    gsize a, b;

    sim_init(&s, 16 * GIB, 4 * GIB);
    s.host_own = GIB; /* MemAvailable far above the reserve: only promises are short */
    a = sim_add(&s, TRUE, 4 * GIB, 1900 * MIB, 1000);
    b = sim_add(&s, TRUE, 4 * GIB, 1900 * MIB, 1000);
    for (int t = 0; t < 10; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);
    }
    g_assert_cmpuint(s.vms[a].actual_kib + s.vms[b].actual_kib, <=, 4 * GIB);
    g_assert_cmpuint(s.vms[a].actual_kib, ==, 2 * GIB);

    /* with the promises within the pool, the same host gives them more */
    s.c.host_reserve_kib = 4 * GIB;
    for (int t = 0; t < 10; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);
    }
    g_assert_cmpuint(s.vms[a].actual_kib, ==, 4 * GIB);
}

/* A guest whose reports contradict the host is untrusted after distrust_after
 * of them, managed from libvirt's statistics, and trusted again distrust_ms
 * after its last contradiction. */
static void test_untrusted_and_back(void)
{
    Sim s;
    gsize liar;
    int when = -1;

    sim_init(&s, 32 * GIB, 24 * GIB);
    s.host_own = GIB; /* plenty: only trust limits the liar */
    s.c.distrust_ms = 20000;
    /* no probes (rule 3b): a probe's target pauses the MemTotal-above-balloon
     * test for balloon_settle_ms, and this counts the time to untrust */
    s.c.probe_step_kib = 0;
    /* no pressure claimed yet, so its balloon is still: MemTotal above it is
     * a lie once the balloon has not moved for balloon_settle_ms */
    liar = sim_add(&s, FALSE, 4 * GIB, 2 * GIB, 1000);
    s.g[liar].total_lie = 512 * MIB;
    for (int t = 0; t < 15 && when < 0; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        if (plan_note(plan, "untrusted for 20 s"))
            when = t;
        g_assert_cmpint(s.vms[liar].memory.untrusted, ==, when >= 0);
    }
    g_assert_cmpint(when, >=, 5 + 4); /* settle time, then 5 lies */
    g_assert_cmpint(when, <=, 5 + 6);
    g_assert_nonnull(strstr(s.vms[liar].memory.untrusted_why, "MemTotal"));
    g_assert_nonnull(strstr(s.vms[liar].memory.untrusted_why, "> balloon"));
    g_assert_cmpuint(s.vms[liar].memory.anomalies, ==, 5);
    s.g[liar].liar = TRUE; /* now it claims pressure too */
    s.g[liar].psi_add = 990000;

    /* untrusted: its PSI is ignored; libvirt says it has memory to spare */
    guint64 held = s.vms[liar].actual_kib;
    for (int t = 0; t < 10; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        g_assert_false(plan_has(plan, liar, POLICY_ACTION_DEFLATE, POLICY_REASON_PRESSURE));
        g_assert_true(s.vms[liar].memory.untrusted);
    }
    g_assert_cmpuint(s.vms[liar].actual_kib, <=, held);
    /* each further lie extends the while */
    g_assert_cmpint(s.vms[liar].memory.untrusted_until_us, >=, s.now + 19 * SEC);

    /* it stops contradicting the host: trusted again 20 s after its last lie */
    s.g[liar].total_lie = 0;
    gboolean back = FALSE;
    when = -1;
    for (int t = 0; t < 30 && when < 0; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        back = plan_note(plan, "trusted again");
        if (back) {
            when = t;
            g_assert_false(s.vms[liar].memory.untrusted);
            g_assert_cmpstr(s.vms[liar].memory.untrusted_why, ==, "");
            /* and its claims count again (the host has plenty) */
            g_assert_true(plan_has(plan, liar, POLICY_ACTION_DEFLATE, POLICY_REASON_PRESSURE));
        }
    }
    g_assert_cmpint(when, >=, 18);
    g_assert_cmpint(when, <=, 21);
}

/* PSI totals that fall and OOM kills that go backwards are contradictions
 * too; distrust_ms = 0 turns the rule off. */
static void test_contradictions(void)
{
    Sim s;
    gsize g;

    sim_init(&s, 16 * GIB, 12 * GIB);
    /* No probes (rule 3b): each new target pauses the MemTotal-above-balloon
     * test for balloon_settle_ms, and this counts every lie */
    s.c.probe_step_kib = 0;
    s.host_own = GIB;
    g = sim_add(&s, FALSE, 4 * GIB, 2 * GIB, 1000);
    for (int t = 0; t < 3; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);
    }
    g_assert_cmpuint(s.vms[g].memory.anomalies, ==, 0);

    /* PSI totals fall */
    s.g[g].psi_add = 3000000;
    g_autoptr(PolicyPlan) p1 = sim_cycle(&s);
    s.g[g].psi_add = -1000000;
    g_autoptr(PolicyPlan) p2 = sim_cycle(&s);
    s.g[g].psi_add = 0;
    g_assert_cmpuint(p1->memory[g].anomalies, ==, 0);
    g_assert_cmpuint(s.vms[g].memory.anomalies, ==, 1);
    g_assert_true(plan_note(p2, "PSI totals went backwards"));

    /* OOM kills go backwards */
    s.g[g].oom_kills = 7;
    g_autoptr(PolicyPlan) p3 = sim_cycle(&s);
    s.g[g].oom_kills = 2;
    g_autoptr(PolicyPlan) p4 = sim_cycle(&s);
    g_assert_true(plan_note(p4, "a counter went backwards"));
    g_assert_cmpuint(s.vms[g].memory.anomalies, ==, 2);
    g_assert_cmpuint(s.vms[g].memory.lies_recent, ==, 2);
    g_assert_false(s.vms[g].memory.untrusted);

    /* the rule off: lies are counted, the agent is still believed */
    s.c.distrust_ms = 0;
    s.g[g].total_lie = GIB;
    for (int t = 0; t < 15; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);
    }
    g_assert_cmpuint(s.vms[g].memory.anomalies, >=, 12);
    g_assert_false(s.vms[g].memory.untrusted);
}

static gboolean plan_reason(const PolicyPlan *plan, gsize vm, const char *needle)
{
    for (guint k = 0; k < plan->actions->len; k++) {
        const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, k);

        if (a->vm == vm && strstr(a->reason, needle) != NULL)
            return TRUE;
    }
    return FALSE;
}

/*
 * A liar whose kernel lies too (libvirt's balloon statistics, filled by its
 * balloon driver, say what its agent says): the host's view gives no bound,
 * so only the balloon can tell. At its maximum, above its entitlement, it is
 * tested with a step just beyond what its figures allow; the balloon lands,
 * each landing is a contradiction, and once untrusted it is taken down to
 * its entitlement (its claims no longer count in the water-filling). Before
 * the test step it kept its maximum forever.
 */
static void test_kernel_liar(void)
{
    Sim s;
    gsize liar, honest;
    gboolean tested = FALSE;

    sim_init(&s, 16 * GIB, 5 * GIB);
    s.host_own = 11 * GIB + 512 * MIB;
    liar = sim_add(&s, TRUE, 4 * GIB, 4 * GIB, 1000);
    s.g[liar].kernel_lie = TRUE;
    honest = sim_add(&s, FALSE, 4 * GIB, GIB, 1000);
    s.g[honest].goal = 1800 * MIB;
    s.g[honest].rate = 100 * MIB;
    for (int t = 0; t < 90; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        assert_fits(&s, honest);
        tested |= plan_reason(plan, liar, "testing its figures");
        g_assert_false(plan_reason(plan, honest, "testing its figures"));
    }
    g_assert_true(tested);
    g_assert_true(s.vms[liar].memory.untrusted);
    g_assert_nonnull(strstr(s.vms[liar].memory.untrusted_why, "balloon took"));
    g_assert_false(s.vms[honest].memory.untrusted);
    g_assert_cmpuint(s.g[honest].used, ==, 1800 * MIB);
    g_assert_cmpuint(s.vms[liar].actual_kib, <=, s.ent[liar] + s.c.min_step_kib);
    g_assert_cmpuint(s.vms[liar].actual_kib, <, 2 * GIB);
    /* the honest guest is entitled to what it holds */
    g_assert_cmpuint(s.ent[honest] + MIB, >=, s.vms[honest].actual_kib);
}

/*
 * The same liar with so many shares that its claims entitle it to its whole
 * maximum: never above its entitlement, so the rule 10 reclaim never reaches
 * it. At its maximum, claiming pressure while the host is short, it is tested
 * all the same (its claims are what made that entitlement), caught, and then
 * held to what the honest guest leaves.
 */
static void test_kernel_liar_within(void)
{
    Sim s;
    gsize liar, honest;
    gboolean tested = FALSE;

    sim_init(&s, 16 * GIB, 5 * GIB);
    s.host_own = 11 * GIB + 512 * MIB;
    liar = sim_add(&s, TRUE, 4 * GIB, 4 * GIB, 9000);
    s.g[liar].kernel_lie = TRUE;
    honest = sim_add(&s, FALSE, 4 * GIB, GIB, 1000);
    s.g[honest].goal = 1500 * MIB;
    for (int t = 0; t < 90; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        assert_fits(&s, honest);
        if (t == 0)
            g_assert_cmpuint(s.ent[liar], ==, 4 * GIB); /* claimed into its maximum */
        tested |= plan_reason(plan, liar, "testing its figures");
        /* the honest workload grows once the liar is caught: before, the
         * liar's claims leave it too small an entitlement to grow into */
        if (t == 45) {
            g_assert_true(s.vms[liar].memory.untrusted);
            s.g[honest].rate = 100 * MIB;
        }
    }
    g_assert_true(tested);
    g_assert_true(s.vms[liar].memory.untrusted);
    g_assert_false(s.vms[honest].memory.untrusted);
    g_assert_cmpuint(s.g[honest].used, ==, 1500 * MIB);
    g_assert_cmpuint(s.vms[liar].actual_kib, <=, s.ent[liar] + s.c.min_step_kib);
    g_assert_cmpuint(s.vms[liar].actual_kib, <, 4 * GIB - 512 * MIB);
}

/*
 * An honest guest at its maximum that really uses its memory, claims
 * pressure and sits above its entitlement while the host is short: the test
 * step stops where its used memory begins (within its figures), and what the
 * test took is given back as soon as the balloon has settled; no test again
 * for balloon_backoff_ms, and nothing counted against it.
 */
static void test_busy_claim_held(void)
{
    Sim s;
    gsize busy, other;
    gboolean tested = FALSE, held = FALSE;
    int tests = 0;

    sim_init(&s, 16 * GIB, 5 * GIB);
    s.host_own = 11 * GIB + 512 * MIB;
    busy = sim_add(&s, FALSE, 4 * GIB, 4 * GIB, 1000);
    s.g[busy].used = s.g[busy].goal = 3800 * MIB; /* MemAvailable below its headroom */
    other = sim_add(&s, FALSE, 4 * GIB, 2 * GIB, 1000);
    s.g[other].used = s.g[other].goal = 1800 * MIB;
    for (int t = 0; t < 40; t++) {
        g_autoptr(PolicyPlan) plan = sim_cycle(&s);

        assert_fits(&s, busy);
        if (plan_reason(plan, busy, "testing its figures")) {
            tested = TRUE;
            tests++;
        }
        if (plan_reason(plan, busy, "claim held")) {
            held = TRUE;
            g_assert_true(plan_has(plan, busy, POLICY_ACTION_DEFLATE, POLICY_REASON_STUCK));
        }
    }
    g_assert_true(tested);
    g_assert_true(held);
    g_assert_cmpint(tests, ==, 1); /* not again within balloon_backoff_ms */
    g_assert_cmpuint(s.vms[busy].actual_kib, ==, 4 * GIB);
    g_assert_cmpuint(s.vms[busy].memory.anomalies, ==, 0);
    g_assert_false(s.vms[busy].memory.untrusted);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/entitlement/fill/equal-and-need", test_fill_equal_and_need);
    g_test_add_func("/entitlement/fill/huge-share", test_fill_huge_share);
    g_test_add_func("/entitlement/fill/floors-above-budget", test_fill_floors_above_budget);
    g_test_add_func("/entitlement/fill/random", test_fill_random);
    g_test_add_func("/entitlement/liar-and-honest", test_liar_and_honest);
    g_test_add_func("/entitlement/several-liars", test_several_liars);
    g_test_add_func("/entitlement/liars-when-plenty", test_liars_when_plenty);
    g_test_add_func("/entitlement/promises-count", test_promises_count);
    g_test_add_func("/entitlement/busy-not-squeezed", test_busy_not_squeezed);
    g_test_add_func("/trust/untrusted-and-back", test_untrusted_and_back);
    g_test_add_func("/trust/kernel-liar", test_kernel_liar);
    g_test_add_func("/trust/kernel-liar-within", test_kernel_liar_within);
    g_test_add_func("/trust/busy-claim-held", test_busy_claim_held);
    g_test_add_func("/trust/contradictions", test_contradictions);
    return g_test_run();
}
