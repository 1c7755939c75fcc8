/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ballast-sim --trace FILE.csv --host-mib N [--policy NAME[,NAME...]|all]
 *             [--json] [--seed S] [--plot DIR]
 *
 * Runs a fleet of model guests (docs/simulator.md) through balloon policies
 * and prints what each costs and gains. Bad input: one line on stderr, exit 2.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const SimPolicy *const all_policies[] = {
    &sim_policy_ballast, &sim_policy_static, &sim_policy_mom,
    &sim_policy_proxmox, &sim_policy_oracle,
};

static gboolean pick_policies(const char *spec, GPtrArray *out, GError **error)
{
    if (spec == NULL || strcmp(spec, "all") == 0) {
        for (gsize i = 0; i < G_N_ELEMENTS(all_policies); i++)
            g_ptr_array_add(out, (gpointer)all_policies[i]);
        return TRUE;
    }
    g_auto(GStrv) names = g_strsplit(spec, ",", -1);
    for (guint k = 0; names[k] != NULL; k++) {
        const SimPolicy *found = NULL;
        for (gsize i = 0; i < G_N_ELEMENTS(all_policies); i++) {
            if (strcmp(names[k], all_policies[i]->name) == 0)
                found = all_policies[i];
        }
        if (found == NULL) {
            g_set_error(
                error, SIM_ERROR, 0,
                "--policy: unknown policy '%s' (ballast, static, mom, proxmox, oracle, all)",
                names[k]);
            return FALSE;
        }
        if (!g_ptr_array_find(out, found, NULL))
            g_ptr_array_add(out, (gpointer)found);
    }
    return TRUE;
}

static int die(const char *msg)
{
    fprintf(stderr, "ballast-sim: %s\n", msg);
    return 2;
}

int main(int argc, char **argv)
{
    g_autofree char *trace_path = NULL, *policy_spec = NULL, *plot_dir = NULL;
    g_auto(GStrv) sets = NULL;
    double host_mib = 0;
    gint seed = 1;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        {"trace", 0, 0, G_OPTION_ARG_FILENAME, &trace_path, "trace CSV", "FILE"},
        {"host-mib", 0, 0, G_OPTION_ARG_DOUBLE, &host_mib, "host RAM in MiB", "N"},
        {"policy", 0, 0, G_OPTION_ARG_STRING, &policy_spec, "policies (default all)",
         "NAME[,NAME...]|all"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "one JSON object on stdout", NULL},
        {"seed", 0, 0, G_OPTION_ARG_INT, &seed, "seed of the balloon episodes (default 1)", "S"},
        {"plot", 0, 0, G_OPTION_ARG_FILENAME, &plot_dir, "write POLICY.svg pictures here", "DIR"},
        {"ballast-set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets,
         "a [policy] key of ballastd.conf for `ballast` (repeatable)", "KEY=VALUE"},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- balloon policies on a model fleet");
    g_autoptr(GError) e = NULL;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &e))
        return die(e->message);
    if (argc > 1)
        return die("unexpected argument (see --help)");
    if (trace_path == NULL)
        return die("--trace FILE.csv is required");
    if (!(host_mib >= 256 && host_mib <= 1e9))
        return die("--host-mib N is required, 256 .. 1e9");
    if (seed < 0)
        return die("--seed: want 0 or more");

    g_autoptr(GKeyFile) conf = g_key_file_new();
    for (guint i = 0; sets != NULL && sets[i] != NULL; i++) {
        if (!sim_ballast_set(conf, sets[i], &e))
            return die(e->message);
    }

    g_autoptr(GPtrArray) policies = g_ptr_array_new();
    if (!pick_policies(policy_spec, policies, &e))
        return die(e->message);
    g_autoptr(SimTrace) trace = sim_trace_load(trace_path, &e);
    if (trace == NULL)
        return die(e->message);

    gint64 t0 = g_get_monotonic_time();
    g_autofree SimResult **res = g_new0(SimResult *, policies->len);
    for (guint k = 0; k < policies->len; k++) {
        SimConfig cfg = {.host_mib = host_mib, .seed = (guint32)seed, .ballast_conf = conf};
        res[k] = sim_run(trace, policies->pdata[k], &cfg);
        if (plot_dir != NULL && !sim_out_plot(plot_dir, trace, host_mib, res[k], &e))
            return die(e->message);
    }
    double wall = (g_get_monotonic_time() - t0) / 1e6;

    g_autofree char *out = json ? sim_out_json(trace, host_mib, res, policies->len)
                                : sim_out_table(trace, host_mib, res, policies->len);
    fputs(out, stdout);
    if (json)
        fputc('\n', stdout);
    else
        printf(
            "\n%u policies x %u VMs x %.0f s simulated in %.2f s; agent reports: %" G_GUINT64_FORMAT
            " through the codec, %" G_GUINT64_FORMAT " repeats\n",
            policies->len, trace->vms->len, trace->duration_s, wall, sim_ballast_encoded,
            sim_ballast_repeated);
    for (guint k = 0; k < policies->len; k++)
        sim_result_free(res[k]);
    return fflush(stdout) == 0 ? 0 : 1;
}
