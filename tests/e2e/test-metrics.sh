#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Metrics, end to end. A guest starts with its balloon below its floor;
# ballastd deflates it (gives it memory) while a real Prometheus server,
# started here on loopback with a temporary configuration and data directory,
# scrapes ballastd's metrics listener every second. Prometheus's HTTP API must
# then return the balloon series (actual at the floor, the target, the
# decision counted with its reason code) and the agent's; a scrape taken with
# a real agent attached passes `promtool check metrics`.
#
#   test-metrics.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"
e2e_init metrics "$@"
command -v prometheus >/dev/null || bail "prometheus is not installed (tools/deps.sh)"
command -v promtool >/dev/null || bail "promtool is not installed (tools/deps.sh)"
command -v curl >/dev/null || bail "curl is not installed (tools/deps.sh)"

PROM_PID=
prom_stop() {
    [ -n "$PROM_PID" ] || return 0
    kill -TERM "$PROM_PID" 2>/dev/null
    local i
    for i in $(seq 50); do kill -0 "$PROM_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PROM_PID" 2>/dev/null
    wait "$PROM_PID" 2>/dev/null
    PROM_PID=
}
trap 'prom_stop; e2e_cleanup' EXIT

free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo $p; return 0; }
    done
    return 1
}

vm=e2e-metrics-1
floor_mib=640
start_mib=384
guest_define "$vm" 1024 $start_mib min=${floor_mib}MiB
guest_start "$vm"
guest_wait_ready "$vm" 90 || bail "$vm did not boot"

mport=$(free_port) || bail "no free port"
printf '[broker]\ninterval_ms=1000\n\n[metrics]\nlisten = 127.0.0.1:%s\n' "$mport" | broker_config
broker_start --only "$vm"
ev_wait 30 ".event==\"hello\" and .vm==\"$vm\"" >/dev/null || bail "no hello from $vm"

pport=$(free_port) || bail "no free port"
[ -n "$pport" ] && [ -d "$E2E_WORK" ] || bail "no work directory"
mkdir -p "$E2E_WORK/prom-data"
printf 'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ballast\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n' \
    "$mport" >"$E2E_WORK/prometheus.yml"
# Bounded: killed on exit, and by timeout whatever happens.
timeout 300 prometheus --config.file="$E2E_WORK/prometheus.yml" \
    --storage.tsdb.path="$E2E_WORK/prom-data" --web.listen-address="127.0.0.1:$pport" \
    --log.level=warn >"$E2E_WORK/prometheus.log" 2>&1 &
PROM_PID=$!

# q PROMQL -> the first sample's value, or nothing
q() {
    curl -sf -m 5 "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
        jq -r '.data.result[0].value[1] // empty' 2>/dev/null
}

# The floor decision, applied.
d=$(ev_wait 60 ".event==\"decision\" and .vm==\"$vm\" and .applied==true") || bail "no applied decision for $vm"
log "decision: $(echo "$d" | jq -r .reason)"

# Until Prometheus has scraped the balloon at its floor (or 90 s).
floor_b=$((floor_mib * 1024 * 1024))
near_b=$((floor_b - 16 * 1024 * 1024))
actual=
deadline=$((SECONDS + 90))
while [ $SECONDS -lt $deadline ]; do
    actual=$(q "ballast_vm_balloon_actual_bytes{domain=\"$vm\"}")
    [ -n "$actual" ] && [ "${actual%.*}" -ge $near_b ] && break
    sleep 1
done
up=$(q 'up{job="ballast"}')
check "prometheus scrapes ballastd (up=$up)" "$([ "$up" = 1 ] && echo 1)"
check "ballast_vm_balloon_actual_bytes from Prometheus's API: $((${actual:-0} / 1048576)) MiB (floor $floor_mib MiB, started at $start_mib)" \
    "$([ -n "$actual" ] && [ "${actual%.*}" -ge $near_b ] && echo 1)"
target=$(q "ballast_vm_balloon_target_bytes{domain=\"$vm\"}")
check "ballast_vm_balloon_target_bytes = the floor (${target:-none})" "$([ "${target%.*}" = "$floor_b" ] && echo 1)"
fl=$(q "ballast_vm_floor_bytes{domain=\"$vm\"}")
check "ballast_vm_floor_bytes = $floor_mib MiB (${fl:-none})" "$([ "${fl%.*}" = "$floor_b" ] && echo 1)"
n=$(q "ballast_vm_decisions_total{domain=\"$vm\",kind=\"deflate\",reason=\"floor\"}")
check "ballast_vm_decisions_total{kind=deflate,reason=floor} counted (${n:-none})" "$([ "${n:-0}" -ge 1 ] && echo 1)"
conn=$(q "ballast_vm_agent_connected{domain=\"$vm\"}")
avail=$(q "ballast_vm_available_bytes{domain=\"$vm\"}")
age=$(q "ballast_vm_report_age_seconds{domain=\"$vm\"}")
check "the agent's series: connected=${conn:-none}, MemAvailable $((${avail:-0} / 1048576)) MiB, report age ${age:-none} s" \
    "$([ "$conn" = 1 ] && [ "${avail:-0}" -gt 0 ] && [ -n "$age" ] && echo 1)"
cyc=$(q 'ballast_cycle_duration_seconds_count')
check "cycles are timed (${cyc:-none})" "$([ "${cyc:-0}" -ge 1 ] && echo 1)"
p99=$(q 'histogram_quantile(0.99, sum by (le) (rate(ballast_cycle_duration_seconds_bucket[30s])))')

# The scrape itself, with a real agent attached, passes promtool.
curl -sf -m 5 "http://127.0.0.1:$mport/metrics" >"$E2E_WORK/scrape.txt"
lint=$(promtool check metrics <"$E2E_WORK/scrape.txt" 2>&1)
rc=$?
[ -n "$lint" ] && echo "$lint" | sed 's/^/# /'
check "promtool check metrics accepts a live scrape ($(wc -l <"$E2E_WORK/scrape.txt") lines)" \
    "$([ $rc = 0 ] && [ -z "$lint" ] && [ -s "$E2E_WORK/scrape.txt" ] && echo 1)"
figure "cycle duration p99 (Prometheus, 30 s)" "${p99:-?} s"
prom_stop
e2e_finish
