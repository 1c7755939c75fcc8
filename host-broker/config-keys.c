/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every key of ballastd.conf and every attribute of the per-VM metadata: the
 * one place a key, its type, unit, default, range and meaning are written.
 * The loader, the effective-configuration printer, the docs' key tables,
 * ballastd.conf(5) and packaging/ballastd.conf all come from these rows.
 * Defaults are written as in the file and parsed by the file's parsers.
 */
#include "ballast-config.h"

#include <stddef.h>
#include <string.h>

#include "config-value.h"
#include "config.h"
#include "domxml.h"
#include "protocol.h"

static const char *const mode_names[] = {
    [POLICY_MODE_AUTO] = "auto",
    [POLICY_MODE_OBSERVE] = "observe",
    [POLICY_MODE_OFF] = "off",
    NULL,
};
static const char *const ksm_names[] = {
    [POLICY_KSM_AUTO] = "auto",
    [POLICY_KSM_NEVER] = "never",
    [POLICY_KSM_ALWAYS] = "always",
    NULL,
};
static const char *const psi_trigger_names[] = {
    [CONFIG_PSI_TRIGGER_NONE] = "none",
    [CONFIG_PSI_TRIGGER_SOME] = "some",
    [CONFIG_PSI_TRIGGER_FULL] = "full",
    NULL,
};
static const char *const on_stop_names[] = {
    [CONFIG_ON_STOP_KEEP] = "keep",
    [CONFIG_ON_STOP_RELEASE] = "release",
    NULL,
};
static const char *const agentless_names[] = {
    [POLICY_AGENTLESS_LIBVIRT] = "libvirt",
    [POLICY_AGENTLESS_LEAVE] = "leave",
    NULL,
};

const ConfigGroup config_group_table[] = {
    {"broker", "The daemon: agent sessions, the decision cycle, libvirt, the control socket."},
    {"metrics", "Prometheus metrics served by ballastd itself (off unless listen is set)."},
    {"policy", "The balloon policy's knobs (docs/policy.md explains the rules)."},
    {"ksm", "ballastd's KSM controller, which replaces ksmtuned (docs/ksm.md)."},
};
const gsize config_group_count = G_N_ELEMENTS(config_group_table);

#define TIB_KIB (1024.0 * 1024 * 1024)
#define GIB_KIB (1024.0 * 1024)
#define MIB_KIB 1024.0

/* One row: group, key, kind, store, unit, field, min, max, enum names, default, doc. */
#define ROW(g, n, kind, store, unit, field, lo, hi, names, def, doc)                               \
    {                                                                                              \
        g, n, CONFIG_KIND_##kind, CONFIG_STORE_##store, CONFIG_UNIT_##unit,                        \
            offsetof(Config, field), G_SIZEOF_MEMBER(Config, field), -1, lo, hi, names, def, doc   \
    }
#define B_MS(n, lo, hi, def, doc)   ROW("broker", #n, DURATION, U32, MS, n, lo, hi, NULL, def, doc)
#define B_UINT(n, lo, hi, def, doc) ROW("broker", #n, UINT, U32, NONE, n, lo, hi, NULL, def, doc)
#define P(n, kind, store, unit, field, lo, hi, def, doc)                                           \
    ROW("policy", n, kind, store, unit, policy.field, lo, hi, NULL, def, doc)
#define P_SIZE(n, field, lo, hi, def, doc) P(n, SIZE, U64, KIB, field, lo, hi, def, doc)
#define P_MS(n, field, lo, hi, def, doc)   P(n, DURATION, U32, MS, field, lo, hi, def, doc)
#define P_PCT(n, field, lo, hi, def, doc)  P(n, PERCENT, DOUBLE, NONE, field, lo, hi, def, doc)
#define P_RATE(n, field, lo, hi, def, doc) P(n, RATE, DOUBLE, NONE, field, lo, hi, def, doc)
#define K(n, kind, store, unit, lo, hi, def, doc)                                                  \
    ROW("ksm", #n, kind, store, unit, ksm.n, lo, hi, NULL, def, doc)
#define K_UINT(n, lo, hi, def, doc) K(n, UINT, U32, NONE, lo, hi, def, doc)
#define K_BOOL(n, def, doc)         K(n, BOOL, BOOL, NONE, 0, 1, def, doc)

const ConfigKey config_key_table[] = {
    /* [broker] */
    B_MS(interval_ms, BL_PROTO_INTERVAL_MIN_MS, BL_PROTO_INTERVAL_MAX_MS,
         G_STRINGIFY(BL_PROTO_INTERVAL_DEFAULT_MS),
         "periodic report interval asked of every agent (`welcome`); agents also report at once "
         "on pressure"),
    B_MS(tick_ms, 100, 60000, "1000",
         "period of the decision cycle; a `pressure` report from any agent starts a cycle at once "
         "as well"),
    ROW("broker", "stats_period_s", DURATION, U32, S, stats_period_s, 0, 3600, NULL, "1",
        "`virDomainSetMemoryStatsPeriod` set once per domain start, so that libvirt's balloon "
        "stats are fresh; 0 leaves it alone"),
    ROW("broker", "default_mode", ENUM, ENUM, NONE, default_mode, 0, 0, mode_names, "auto",
        "mode of a VM whose metadata sets none"),
    ROW("broker", "default_ksm", ENUM, ENUM, NONE, default_ksm, 0, 0, ksm_names, "auto",
        "KSM setting of a VM whose metadata sets none"),
    ROW("broker", "allow_qemu_monitor", BOOL, BOOL, NONE, allow_qemu_monitor, 0, 1, NULL, "false",
        "allow KSM exclusion of a running VM through the QEMU monitor (`qom-set merge=false`); "
        "libvirt then marks the domain tainted. Without it exclusion waits for the next start"),
    ROW("broker", "control_socket", PATH, CHARS, NONE, control_socket, 0, 0, NULL,
        BALLAST_RUNSTATEDIR "/ballast/ballastd.sock",
        "the control socket for `ballastctl` (`--control` overrides; a change takes effect at "
        "the next start)"),
    ROW("broker", "control_group", GROUP, CHARS, NONE, control_group, 0, 0, NULL, "",
        "a group whose members may use the control socket besides root; empty: root only"),
    ROW("broker", "on_stop", ENUM, ENUM, NONE, on_stop, 0, 0, on_stop_names, "keep",
        "what happens to the guests when ballastd stops: `keep` leaves every balloon where it "
        "is, `release` deflates every managed guest to its maximum first"),
    ROW("broker", "psi_trigger", ENUM, ENUM, NONE, psi_trigger, 0, 0, psi_trigger_names, "some",
        "kernel PSI trigger the agents arm on `/proc/pressure/memory`, so that pressure is "
        "reported within the window rather than at the next interval"),
    ROW("broker", "psi_trigger_stall_us", DURATION, U32, US, psi_trigger_stall_us, 1000,
        BL_PROTO_PSI_WINDOW_MAX_US, NULL, "100000",
        "stall time within the window that fires the trigger"),
    ROW("broker", "psi_trigger_window_us", DURATION, U32, US, psi_trigger_window_us,
        BL_PROTO_PSI_WINDOW_MIN_US, BL_PROTO_PSI_WINDOW_MAX_US, NULL, "1000000",
        "the trigger window (the kernel's limits)"),
    B_UINT(rate_limit_per_s, 1, 100000, "50",
           "messages per second accepted from one guest; more are dropped and counted as "
           "`rate-limited`"),
    B_UINT(rate_limit_burst, 1, 1000000, "100", "burst of that token bucket"),
    ROW("broker", "read_budget_bytes", SIZE, U32, BYTES, read_budget_bytes, 4096, 16777216, NULL,
        "64KiB", "bytes read from one guest per wakeup: a flooding guest cannot starve the others"),
    B_MS(channel_poll_ms, 100, 600000, "1000",
         "how often a running domain without an agent session is re-checked (libvirt sends no "
         "event when a guest opens a non-qemu-ga channel)"),
    B_MS(session_retry_ms, 100, 600000, "2000",
         "first delay before reopening a channel that failed or closed; doubles per failure up "
         "to 5 min"),
    B_MS(reconnect_min_ms, 100, 600000, "500",
         "first delay before reconnecting to libvirt; doubles per failure ..."),
    B_MS(reconnect_max_ms, 100, 3600000, "30000", "... up to this"),
    B_MS(libvirt_timeout_ms, 100, 600000, "3000",
         "how long the daemon waits for one libvirt call (they run on a thread of their own); "
         "a call that takes longer fails, and until it returns the other calls fail at once, so "
         "a hung libvirtd never stops the daemon for longer than this. The connection's "
         "keepalive (2 s x 3) then notices a libvirtd that hangs and reconnects"),

    /* [metrics] */
    ROW("metrics", "listen", ADDRESS, CHARS, NONE, metrics_listen, 0, 0, NULL, "",
        "address and port of the Prometheus metrics listener, e.g. `127.0.0.1:9178`; empty: "
        "no listener"),

    /* [policy] */
    P("default_shares", UINT, U32, NONE, default_shares, 1, 1000000, "1000",
      "shares of a VM whose metadata sets none"),
    P_SIZE("min_floor", min_floor_kib, 0, TIB_KIB, "256MiB",
           "no VM is ever ballooned below this (a VM's own floor may be higher)"),
    P_SIZE("min_step", min_step_kib, MIB_KIB, 64 * GIB_KIB, "16MiB",
           "smaller target changes are not made"),
    P_MS("stale_after_ms", stale_after_ms, 100, 600000, "3000",
         "an agent report older than this is unknown; the agent is silent"),
    P("grow_to_headroom", BOOL, BOOL, NONE, grow_to_headroom, 0, 1, "true",
      "MemAvailable below headroom alone is pressure"),
    P_PCT("psi_some_avg10", psi_some_pct, 0.01, 100, "1.0",
          "guest PSI some avg10 above this is pressure"),
    P_PCT("psi_full_avg10", psi_full_pct, 0.01, 100, "0.5",
          "guest PSI full avg10 above this is pressure"),
    P_RATE("major_faults_per_s", major_faults_per_s, 1, 1e9, "200",
           "guest major faults per second above this is pressure"),
    P_RATE("refaults_per_s", refaults_per_s, 1, 1e9, "2000",
           "guest workingset refaults (pages) per second above this is pressure"),
    P_RATE("swapins_per_s", swapins_per_s, 1, 1e9, "100",
           "guest swap-ins (pages) per second above this is pressure"),
    P_MS("lead_time_ms", lead_time_ms, 0, 60000, "2000",
         "how far a fall of MemAvailable is projected"),
    P_MS("rate_min_interval_ms", rate_min_interval_ms, 1, 10000, "50",
         "two reports closer than this give no rate"),
    P_SIZE("deflate_margin", deflate_margin_kib, 0, 64 * GIB_KIB, "32MiB",
           "added to every raise; left above headroom by every reclaim"),
    P_SIZE("pressure_step", pressure_step_kib, MIB_KIB, TIB_KIB, "128MiB",
           "least raise on PSI or fault evidence"),
    P_SIZE("oom_step", oom_step_kib, MIB_KIB, TIB_KIB, "256MiB",
           "least raise after a new OOM kill"),
    P_MS("pressure_cooldown_ms", pressure_cooldown_ms, 0, 86400000, "60000",
         "no reclaim from a VM this long after its last pressure"),
    P_SIZE("host_reserve", host_reserve_kib, 0, TIB_KIB, "1GiB",
           "host MemAvailable wanted at least ..."),
    P_PCT("host_reserve_pct", host_reserve_pct, 0, 50, "5",
          "... or this share of host MemTotal, whichever is larger"),
    P_SIZE("host_hysteresis", host_hysteresis_kib, 0, TIB_KIB, "256MiB",
           "reclaim fills to reserve + this; give-back starts above reserve + 2 × this"),
    P_PCT("host_psi_some_avg10", host_psi_some_pct, 0.01, 100, "5",
          "host PSI some avg10 above this: the host needs memory"),
    P_SIZE("host_psi_step", host_psi_step_kib, 0, TIB_KIB, "256MiB",
           "taken per call on host PSI alone"),
    P_SIZE("reclaim_step", reclaim_step_kib, MIB_KIB, TIB_KIB, "256MiB",
           "most taken from one VM per call"),
    P_MS("reclaim_interval_ms", reclaim_interval_ms, 0, 86400000, "5000",
         "least time between two reclaims (or two give-backs) of one VM"),
    P_PCT("idle_tax", idle_tax_pct, 0, 99, "75",
          "Waldspurger's idle memory tax rate τ; an idle page costs 1/(1−τ)"),
    P_SIZE("giveback_step", giveback_step_kib, MIB_KIB, TIB_KIB, "256MiB",
           "most given back to one VM per interval"),
    P_SIZE("probe_step", probe_step_kib, 0, TIB_KIB, "64MiB",
           "rule 3b: first step taken from a quiet guest per probe (doubles while it stays quiet, "
           "to 4x); 0: never probe"),
    P_MS("probe_interval_ms", probe_interval_ms, 1000, 86400000, "30000",
         "least time between two probes (or a reclaim and a probe) of one VM"),
    P_MS("probe_memory_ms", probe_memory_ms, 0, 86400000, "600000",
         "pressure after a probe: no probe below the size that was fine for this long"),
    P_PCT("silent_safe_pct", silent_safe_pct, 0, 100, "50",
          "a VM whose agent fell silent is raised to this share of its max"),
    ROW("policy", "agentless", ENUM, ENUM, NONE, policy.agentless, 0, 0, agentless_names, "libvirt",
        "VMs that never had an agent: use libvirt's stats, or leave them alone"),
    P_MS("libvirt_stale_after_ms", libvirt_stale_after_ms, 100, 600000, "10000",
         "libvirt stats older than this are unknown"),
    P_PCT("libvirt_headroom_pct", libvirt_headroom_pct, 100, 1000, "150",
          "headroom scale for VMs judged from libvirt's stats"),
    P_MS("balloon_settle_ms", balloon_settle_ms, 100, 600000, "5000",
         "a balloon this long off its target and not moving is stuck"),
    P_SIZE("balloon_tolerance", balloon_tolerance_kib, MIB_KIB, GIB_KIB, "16MiB",
           "a balloon this close to its target has reached it"),
    P_MS("balloon_backoff_ms", balloon_backoff_ms, 0, 86400000, "60000",
         "a stuck VM is not pushed lower for this long"),
    P("distrust_after", UINT, U32, NONE, distrust_after, 1, 1000000, "5",
      "this many reports contradicting the host within 60 s make a guest untrusted (rule 6)"),
    P_MS("distrust_ms", distrust_ms, 0, 86400000, "600000",
         "an untrusted guest's agent is ignored this long after its last contradiction; 0: never"),

    /* [ksm] */
    K_BOOL(manage, "true", "ballastd owns `/sys/kernel/mm/ksm` (ksmtuned must not run)"),
    K(interval_s, DURATION, U32, S, 1, 3600, "10", "time between two KSM controller cycles"),
    K(start_below_percent, PERCENT, U32, NONE, 1, 95, "20",
      "short of memory: MemAvailable below this share of RAM"),
    K(stop_above_percent, PERCENT, U32, NONE, 1, 99, "25",
      "no longer short: MemAvailable at or above this share"),
    K_UINT(pages_boost, 0, 100000, G_STRINGIFY(KSM_PAGES_BOOST_DEFAULT),
           "`pages_to_scan` += this while short"),
    K_UINT(pages_decay, 0, 100000, G_STRINGIFY(KSM_PAGES_DECAY_DEFAULT),
           "`pages_to_scan` -= this while running but not short"),
    K_UINT(pages_min, 1, 100000, G_STRINGIFY(KSM_PAGES_MIN_DEFAULT),
           "lower clamp of `pages_to_scan`"),
    K_UINT(pages_max, 1, 100000, G_STRINGIFY(KSM_PAGES_MAX_DEFAULT),
           "upper clamp of `pages_to_scan`"),
    K(sleep_base_ms, DURATION, U32, MS, 1, 10000, G_STRINGIFY(KSM_SLEEP_BASE_DEFAULT),
      "`sleep_millisecs` = max(10, base × 16 GiB / RAM)"),
    K_BOOL(use_advisor, "true",
           "`advisor_mode=scan-time` and `smart_scan=1` where the kernel has them"),
    K_UINT(warmup_full_scans, 1, 1000, "2", "full scans before profit is judged"),
    K(min_profit_mib, SIZE, U32, MIB, 0, 1048576, "0",
      "KSM pays when `general_profit` exceeds this"),
    K_UINT(max_unshared_ratio, 0, 1000000, "32", "... and unshared + volatile ≤ ratio × sharing"),
    K(retry_after_s, DURATION, U32, S, 0, 86400 * 7, "600",
      "after \"does not pay\", try again this much later"),
    K(vm_min_profit_mib, SIZE, U32, MIB, 0, 1048576, "1",
      "`ksm=\"auto\"`: a VM pays when its profit reaches this"),
    K_UINT(vm_full_scans, 1, 1000, "3", "... judged over this many full scans"),
    K(vm_retry_after_s, DURATION, U32, S, 0, 86400 * 30, "3600",
      "re-include a VM excluded for low profit after this (0 = never)"),
    K_BOOL(live_exclusion, "true",
           "exclude running VMs live (also needs `[broker] allow_qemu_monitor`)"),
    ROW("ksm", "latency_sensitive", DOMAINS, STRV, NONE, ksm.latency_sensitive, 0, 0, NULL, "",
        "VM names treated as latency-sensitive, `;`-separated"),
};
const gsize config_key_count = G_N_ELEMENTS(config_key_table);

const ConfigRule config_rule_table[] = {
    {"broker", "psi_trigger_stall_us", CONFIG_RULE_BELOW, "psi_trigger_window_us", 1,
     "must be below"},
    {"broker", "reconnect_min_ms", CONFIG_RULE_AT_MOST, "reconnect_max_ms", 1, "must not exceed"},
    {"broker", "rate_limit_burst", CONFIG_RULE_AT_LEAST, "rate_limit_per_s", 0.1,
     "must be at least a tenth of"},
    {"ksm", "start_below_percent", CONFIG_RULE_AT_MOST, "stop_above_percent", 1, "must not exceed"},
    {"ksm", "pages_min", CONFIG_RULE_AT_MOST, "pages_max", 1, "must not exceed"},
};
const gsize config_rule_count = G_N_ELEMENTS(config_rule_table);

/* <ballast:policy .../>: def is what applies when the attribute is absent. */
#define META(n, kind, store, unit, field, has, lo, hi, names, def, doc)                            \
    {                                                                                              \
        NULL, n, CONFIG_KIND_##kind, CONFIG_STORE_##store, CONFIG_UNIT_##unit,                     \
            offsetof(DomxmlPolicy, field), 0, offsetof(DomxmlPolicy, has), lo, hi, names, def, doc \
    }
const ConfigKey config_meta_table[] = {
    /* The limit is where a floor stops being a size anyone means (1 PiB). */
    META("min", SIZE, U64, KIB, min_kib, has_min, 0, 1024 * TIB_KIB, NULL,
         "`<memtune><min_guarantee>`, else none",
         "the floor: never ballooned below it (nor below `[policy] min_floor`)"),
    META("shares", UINT, U32, NONE, shares, has_shares, 1, DOMXML_SHARES_MAX, NULL,
         "`[policy] default_shares`", "weight when memory is reclaimed from VMs"),
    META("ksm", ENUM, ENUM, NONE, ksm, has_ksm, 0, 0, ksm_names, "`[broker] default_ksm`",
         "`never`: the VM's pages are never merged (tenant isolation)"),
    META("mode", ENUM, ENUM, NONE, mode, has_mode, 0, 0, mode_names, "`[broker] default_mode`",
         "`observe`: decide and log, never act (canary rollout); `off`: leave the VM alone (its "
         "agent is still read, for visibility)"),
    META("latency-sensitive", BOOL, BOOL, NONE, latency_sensitive, has_latency_sensitive, 0, 1,
         NULL, "`no`", "a VM that must not pay KSM's copy-on-write faults"),
};
const gsize config_meta_count = G_N_ELEMENTS(config_meta_table);

gboolean config_group_known(const char *group)
{
    for (gsize i = 0; i < config_group_count; i++) {
        if (strcmp(config_group_table[i].name, group) == 0)
            return TRUE;
    }
    return FALSE;
}

const ConfigKey *config_key_find(const char *group, const char *name)
{
    for (gsize i = 0; i < config_key_count; i++) {
        const ConfigKey *k = &config_key_table[i];
        if (strcmp(k->group, group) == 0 && strcmp(k->name, name) == 0)
            return k;
    }
    return NULL;
}

static const char *enum_name(const char *const *names, guint n, int v)
{
    return v >= 0 && (guint)v < n && names[v] ? names[v] : "?";
}

static gboolean enum_parse(const char *const *names, const char *text, int *v)
{
    for (guint i = 0; names[i]; i++) {
        if (g_strcmp0(text, names[i]) == 0) {
            *v = (int)i;
            return TRUE;
        }
    }
    return FALSE;
}

const char *config_mode_name(PolicyMode mode)
{
    return enum_name(mode_names, G_N_ELEMENTS(mode_names) - 1, (int)mode);
}

gboolean config_parse_mode(const char *text, PolicyMode *mode)
{
    int v;
    if (!enum_parse(mode_names, text, &v))
        return FALSE;
    *mode = (PolicyMode)v;
    return TRUE;
}

const char *config_ksm_name(PolicyKsm ksm)
{
    return enum_name(ksm_names, G_N_ELEMENTS(ksm_names) - 1, (int)ksm);
}

gboolean config_parse_ksm(const char *text, PolicyKsm *ksm)
{
    int v;
    if (!enum_parse(ksm_names, text, &v))
        return FALSE;
    *ksm = (PolicyKsm)v;
    return TRUE;
}
