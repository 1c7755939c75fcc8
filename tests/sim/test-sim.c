/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ballast-sim: trace errors name their line, the guest model keeps its
 * promises, and every policy run over a small fleet (tests/data/sim-small.csv,
 * written by bench/traces/gen-traces.py --small) keeps the invariants:
 * nobody below the floor, static never stalls, the oracle reclaims at least
 * as much as any policy that causes no stall, the JSON has the documented
 * shape, and the binary refuses a bad trace with one line.
 */
#include "sim.h"

#include <json-c/json.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>

static const char *sim_binary;

typedef struct {
    const char *text;
    const char *want; /* in the message */
} BadTrace;

static const BadTrace bad_traces[] = {
    {"", "sim.csv:1: empty trace"},
    {"t_s,vm,max_mib,ws_mib,shares\n0,a,1024,100,1000\n", "sim.csv:1: header lacks column liar"},
    {"t_s,vm,max_mib,ws_mib,shares,liar\n", "sim.csv:2: no rows"},
    {"t_s,vm,max_mib,ws_mib,shares,liar\n5,a,1024,100,1000,0\n1,a,1024,200,1000,0\n",
     "sim.csv:3: t_s 1 before"},
    {"t_s,vm,max_mib,ws_mib,shares,liar\n0,a,1024,2000,1000,0\n", "sim.csv:2: ws_mib 2000 above"},
    {"t_s,vm,max_mib,ws_mib,shares,liar\n0,a,1024,100,1000,0\n1,a,1024,-5,1000,0\n",
     "sim.csv:3: ws_mib: negative"},
    {"t_s,vm,max_mib,ws_mib,shares,liar\n0,a,1024,100,1000\n", "sim.csv:2: 5 fields"},
    {"t_s,vm,max_mib,ws_mib,shares,liar\n0,a,1024,1e,1000,0\n", "sim.csv:2: ws_mib: not a number"},
    {"t_s,vm,max_mib,ws_mib,shares,liar\n0,a,1024,10,1000,2\n", "sim.csv:2: liar: want 0 or 1"},
    {"t_s,vm,max_mib,ws_mib,shares,liar\n0,a,1024,10,1000,0\n\n9,a,2048,10,1000,0\n",
     "sim.csv:4: max_mib of a changes"},
};

static void test_bad_traces(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(bad_traces); i++) {
        g_autoptr(GError) e = NULL;
        g_autoptr(SimTrace) t = sim_trace_parse(bad_traces[i].text, "sim.csv", &e);
        g_assert_null(t);
        g_assert_nonnull(e);
        g_assert_null(strchr(e->message, '\n'));
        if (strstr(e->message, bad_traces[i].want) == NULL)
            g_error("trace %zu: '%s' lacks '%s'", i, e->message, bad_traces[i].want);
    }
}

static void test_good_trace(void)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(SimTrace) t = sim_trace_parse(
        "# comment\nvm,t_s,ws_mib,max_mib,liar,shares\nb,0,100,1024,0,500\na,0,50,512,1,0\n"
        "b,10,300,1024,0,500\n",
        "ok.csv", &e);
    g_assert_no_error(e);
    g_assert_cmpuint(t->vms->len, ==, 2);
    const SimTraceVm *b = t->vms->pdata[0];
    g_assert_cmpstr(b->name, ==, "b");
    g_assert_cmpfloat(b->max_mib, ==, 1024);
    guint c = 0;
    g_assert_cmpfloat(sim_trace_ws_at(b, 9.5, &c), ==, 100);
    g_assert_cmpfloat(sim_trace_ws_at(b, 10, &c), ==, 300);
    g_assert_cmpfloat(sim_trace_ws_peak(b, 0, 5, 0), ==, 100);
    g_assert_cmpfloat(sim_trace_ws_peak(b, 0, 10, 0), ==, 300);
    g_assert_true(((SimTraceVm *)t->vms->pdata[1])->liar);
    g_assert_cmpfloat(t->duration_s, ==, 10);
}

/* A guest short of memory allocates no faster than it is given memory; when
 * its anonymous memory cannot fit, it is OOM-killed; fed, it stalls less. */
static void test_guest_model(void)
{
    g_autoptr(SimTrace) t = sim_trace_parse(
        "t_s,vm,max_mib,ws_mib,shares,liar\n0,a,1024,50,1000,0\n10,a,1024,600,1000,0\n"
        "200,a,1024,600,1000,0\n",
        "g.csv", NULL);
    g_assert_nonnull(t);
    SimGuest g;
    SimWorld w = {.host_mib = 4096, .n = 1, .g = &g, .rand = g_rand_new_with_seed(1)};
    sim_guest_init(&g, t->vms->pdata[0]);
    g.alive = TRUE;
    g.target_mib = 256;
    for (w.t = 0; w.t < 10; w.t++)
        sim_guest_step(&g, &w);
    g_assert_cmpfloat(g.actual_mib, ==, 256);
    g_assert_cmpfloat(g.stall, ==, 0);
    /* a burst at 256 MiB: never more resident than the room, then killed */
    guint kills = 0;
    for (; w.t < 20; w.t++) {
        sim_guest_step(&g, &w);
        g_assert_cmpfloat(g.ws_mib, <=, g.actual_mib - g.footprint_mib + 1e-9);
        kills = (guint)g.oom_kills;
    }
    g_assert_cmpuint(kills, >=, 1);
    /* fed, the same demand runs without stall once the kill's restart is over */
    g.target_mib = 1024;
    for (; w.t < 200; w.t++)
        sim_guest_step(&g, &w);
    g_assert_cmpfloat(g.stall, ==, 0);
    g_assert_cmpfloat(g.ws_mib, ==, 600);
    BlReport r;
    sim_guest_report(&g, &w, &r);
    g_assert_cmpuint(r.mem.available_kib, <=, r.mem.total_kib);
    g_assert_cmpuint(r.vmstat.value[BL_VMSTAT_OOM_KILL], ==, kills);
    /* squeezed into its hot page cache: it stalls and refaults, no kill */
    guint64 refaults = r.vmstat.value[BL_VMSTAT_WORKINGSET_REFAULT_FILE];
    g.target_mib = g.footprint_mib + 0.8 * 600;
    for (guint i = 0; i < 20; i++, w.t++)
        sim_guest_step(&g, &w);
    g_assert_cmpfloat(g.stall, >, 0.1);
    g_assert_cmpuint(g.oom_kills, ==, kills);
    sim_guest_report(&g, &w, &r);
    g_assert_cmpuint(r.vmstat.value[BL_VMSTAT_WORKINGSET_REFAULT_FILE], >, refaults);
    g_assert_cmpfloat(r.psi.some.avg10, >, 10);
    /* and the balloon cannot take its anonymous memory */
    g.target_mib = 256;
    for (guint i = 0; i < 5; i++, w.t++)
        sim_guest_step(&g, &w);
    g_assert_cmpfloat(g.actual_mib, >=, g.footprint_mib + 0.7 * g.ws_mib);
    g_rand_free(w.rand);
}

/* The ballast adapter skips the codec for repeats on the ground that it is
 * lossless: decode(encode(r)) == r for the model's reports, honest or lying. */
static void test_codec_lossless(void)
{
    g_autoptr(SimTrace) t = sim_trace_parse(
        "t_s,vm,max_mib,ws_mib,shares,liar\n0,a,1024,50,1000,0\n0,b,2048,700,300,1\n"
        "30,a,1024,800,1000,0\n30,b,2048,100,300,1\n300,a,1024,800,1000,0\n",
        "c.csv", NULL);
    SimGuest g[2];
    SimWorld w = {.host_mib = 4096, .n = 2, .g = g, .rand = g_rand_new_with_seed(3)};
    g_autoptr(GString) line = g_string_new(NULL);
    guint checked = 0;

    for (guint i = 0; i < 2; i++) {
        sim_guest_init(&g[i], t->vms->pdata[i]);
        g[i].alive = TRUE;
    }
    for (w.t = 0; w.t < 300; w.t++) {
        g[0].target_mib = w.t < 100 ? 400 : 1024; /* short, then fed */
        g[1].target_mib = 900;
        for (guint i = 0; i < 2; i++) {
            BlMessage out, in;
            g_autoptr(GError) e = NULL;
            sim_guest_step(&g[i], &w);
            bl_proto_init(&out, BL_MSG_REPORT);
            sim_guest_report(&g[i], &w, &out.u.report);
            g_string_truncate(line, 0);
            g_assert_true(bl_proto_encode(&out, line, &e));
            g_assert_true(bl_proto_decode(line->str, line->len - 1, &in, &e));
            g_assert_no_error(e);
            g_assert_true(sim_report_same(&out.u.report, &in.u.report));
            g_assert_cmpuint(out.u.report.seq, ==, in.u.report.seq);
            g_assert_cmpuint(out.u.report.uptime_ms, ==, in.u.report.uptime_ms);
            checked++;
        }
    }
    g_assert_cmpfloat(g[0].stall_s, >, 0); /* the stalled states were covered */
    g_assert_cmpuint(checked, ==, 600);
    /* and the comparison sees a change in any field */
    BlReport a, b;
    sim_guest_report(&g[0], &w, &a);
    b = a;
    b.psi.some.avg300 += 0.01;
    g_assert_false(sim_report_same(&a, &b));
    b = a;
    b.vmstat.value[BL_VMSTAT_OOM_KILL]++;
    g_assert_false(sim_report_same(&a, &b));
    b = a;
    b.seq++;
    b.uptime_ms += 1000;
    g_assert_true(sim_report_same(&a, &b));
    g_rand_free(w.rand);
}

typedef struct {
    SimTrace *trace;
    SimResult *res[5];
    double host_mib;
} Fleet;

static const SimPolicy *const policies[5] = {
    &sim_policy_ballast, &sim_policy_static, &sim_policy_mom,
    &sim_policy_proxmox, &sim_policy_oracle,
};

static void fleet_run(Fleet *f, gboolean no_freeze)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *path = g_build_filename(g_getenv("BALLAST_TEST_DATA"), "sim-small.csv", NULL);
    double sum_max = 0;

    f->trace = sim_trace_load(path, &e);
    g_assert_no_error(e);
    for (guint i = 0; i < f->trace->vms->len; i++)
        sum_max += ((SimTraceVm *)f->trace->vms->pdata[i])->max_mib;
    f->host_mib = sum_max / 1.6;
    for (guint k = 0; k < 5; k++) {
        SimConfig cfg = {.host_mib = f->host_mib, .seed = 7, .no_freeze = no_freeze};
        f->res[k] = sim_run(f->trace, policies[k], &cfg);
    }
}

static void fleet_free(Fleet *f)
{
    for (guint k = 0; k < 5; k++)
        sim_result_free(f->res[k]);
    sim_trace_free(f->trace);
}

static void test_invariants(void)
{
    Fleet f;
    fleet_run(&f, TRUE);
    const SimResult *stat = f.res[1], *oracle = f.res[4];

    for (guint k = 0; k < 5; k++) {
        const SimResult *r = f.res[k];
        g_test_message("%s: reclaimed %.2f GiB*h stall %.0f oom %u short %.0f moved %.1f",
                       r->policy, r->reclaimed_gib_h, r->stall_vm_s, r->oom_kills, r->host_short_s,
                       r->moved_gib);
        g_assert_cmpfloat(r->below_floor_s, ==, 0);
        g_assert_cmpfloat(r->reclaimed_gib_h, >=, 0);
        if (r->stall_vm_s == 0 && r->oom_kills == 0)
            g_assert_cmpfloat(oracle->reclaimed_gib_h, >=, r->reclaimed_gib_h);
    }
    /* static: nothing moves, nothing stalls, and at 1.6x the host is short */
    g_assert_cmpfloat(stat->reclaimed_gib_h, ==, 0);
    g_assert_cmpfloat(stat->moved_gib, ==, 0);
    g_assert_cmpfloat(stat->stall_vm_s, ==, 0);
    g_assert_cmpfloat(stat->host_short_s, >, 0);
    /* the oracle is never late, and reclaims more than anyone who stalls not */
    g_assert_cmpfloat(oracle->stall_vm_s, ==, 0);
    g_assert_cmpuint(oracle->oom_kills, ==, 0);
    g_assert_cmpfloat(oracle->reclaimed_gib_h, >, 0);
    /* ballast reclaims something and is not beaten by static on host shortage */
    g_assert_cmpfloat(f.res[0]->reclaimed_gib_h, >, 0);
    g_assert_cmpfloat(f.res[0]->host_short_s, <, stat->host_short_s);
    fleet_free(&f);
}

static void test_deterministic(void)
{
    Fleet a, b;
    fleet_run(&a, FALSE);
    fleet_run(&b, FALSE);
    for (guint k = 0; k < 5; k++) {
        g_assert_cmpfloat(a.res[k]->reclaimed_gib_h, ==, b.res[k]->reclaimed_gib_h);
        g_assert_cmpfloat(a.res[k]->stall_vm_s, ==, b.res[k]->stall_vm_s);
        g_assert_cmpfloat(a.res[k]->moved_gib, ==, b.res[k]->moved_gib);
    }
    fleet_free(&a);
    fleet_free(&b);
}

static void check_number(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        g_error("JSON lacks %s", key);
    g_assert_true(json_object_is_type(v, json_type_double) ||
                  json_object_is_type(v, json_type_int));
    g_assert_cmpfloat(json_object_get_double(v), >=, 0);
}

static void test_json_schema(void)
{
    Fleet f;
    fleet_run(&f, FALSE);
    g_autofree char *text = sim_out_json(f.trace, f.host_mib, f.res, 5);
    json_object *top = json_tokener_parse(text), *pols = NULL, *vms = NULL;

    g_assert_nonnull(top);
    g_assert_cmpint(json_object_object_length(top), ==, 4);
    check_number(top, "host_mib");
    check_number(top, "duration_s");
    check_number(top, "vms");
    g_assert_true(json_object_object_get_ex(top, "policies", &pols));
    g_assert_cmpint(json_object_object_length(pols), ==, 5);
    for (guint k = 0; k < 5; k++) {
        json_object *p = NULL;
        g_assert_true(json_object_object_get_ex(pols, policies[k]->name, &p));
        g_assert_cmpint(json_object_object_length(p), ==, 6);
        const char *keys[] = {"reclaimed_gib_h", "stall_vm_s", "oom_kills", "host_short_s",
                              "moved_gib"};
        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
            check_number(p, keys[i]);
        g_assert_true(json_object_is_type(json_object_object_get(p, "oom_kills"), json_type_int));
        g_assert_true(json_object_object_get_ex(p, "vms", &vms));
        g_assert_cmpint(json_object_object_length(vms), ==, (int)f.trace->vms->len);
        json_object_object_foreach(vms, name, v)
        {
            g_assert_nonnull(name);
            g_assert_cmpint(json_object_object_length(v), ==, 3);
            check_number(v, "stall_s");
            check_number(v, "oom_kills");
            check_number(v, "mean_mib");
        }
    }
    json_object_put(top);
    fleet_free(&f);
}

/* The binary: a bad trace is one line on stderr naming the line, exit 2;
 * a good one prints JSON. */
static void test_binary(void)
{
    g_autofree char *dir = g_dir_make_tmp("ballast-sim-XXXXXX", NULL);
    g_autofree char *bad = g_build_filename(dir, "bad.csv", NULL);
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GError) e = NULL;
    int status = 0;

    g_assert_true(
        g_file_set_contents(bad, "t_s,vm,max_mib,ws_mib,shares,liar\n0,a,512,600,1,0\n", -1, NULL));
    /* each: one line on stderr with the expected words, exit 2 */
    const struct {
        const char *flag, *value, *want;
    } refused[] = {
        {"--seed", "1", "bad.csv:2: ws_mib 600 above max_mib 512"},
        {"--policy", "ballast,nope", "unknown policy 'nope'"},
        {"--ballast-set", "probe_step=lots", "probe_step"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
        const char *argv_bad[] = {sim_binary,      "--trace",        bad, "--host-mib", "1024",
                                  refused[i].flag, refused[i].value, NULL};
        g_assert_true(g_spawn_sync(NULL, (char **)argv_bad, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                   &err, &status, &e));
        g_assert_false(g_spawn_check_wait_status(status, NULL));
        g_assert_cmpint(WEXITSTATUS(status), ==, 2);
        g_assert_nonnull(strstr(err, refused[i].want));
        g_assert_nonnull(strchr(err, '\n'));
        g_assert_null(strchr(strchr(err, '\n') + 1, '\n'));
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);
    }

    g_autofree char *good = g_build_filename(g_getenv("BALLAST_TEST_DATA"), "sim-small.csv", NULL);
    const char *argv_ok[] = {sim_binary, "--trace",       good,     "--host-mib", "20000",
                             "--policy", "static,oracle", "--json", "--plot",     dir,
                             NULL};
    g_assert_true(g_spawn_sync(NULL, (char **)argv_ok, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                               &err, &status, &e));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    json_object *top = json_tokener_parse(out);
    g_assert_nonnull(top);
    json_object *pols = json_object_object_get(top, "policies");
    g_assert_cmpint(json_object_object_length(pols), ==, 2);
    json_object_put(top);
    g_autofree char *svg_path = g_build_filename(dir, "oracle.svg", NULL);
    g_autofree char *svg = NULL;
    g_assert_true(g_file_get_contents(svg_path, &svg, NULL, NULL));
    g_assert_true(g_str_has_prefix(svg, "<svg"));
    g_assert_nonnull(strstr(svg, "<polyline"));

    g_autofree char *static_svg = g_build_filename(dir, "static.svg", NULL);
    g_unlink(static_svg);
    g_unlink(svg_path);
    g_unlink(bad);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (argc < 2)
        g_error("usage: test-sim PATH-TO-ballast-sim");
    sim_binary = argv[1];
    g_test_add_func("/sim/trace/bad", test_bad_traces);
    g_test_add_func("/sim/trace/good", test_good_trace);
    g_test_add_func("/sim/guest", test_guest_model);
    g_test_add_func("/sim/codec-lossless", test_codec_lossless);
    g_test_add_func("/sim/fleet/invariants", test_invariants);
    g_test_add_func("/sim/fleet/deterministic", test_deterministic);
    g_test_add_func("/sim/fleet/json", test_json_schema);
    g_test_add_func("/sim/binary", test_binary);
    return g_test_run();
}
