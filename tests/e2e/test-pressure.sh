#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Pressure relief. A guest with a 1 GiB maximum starts at a 256 MiB balloon
# target; memhog grows to 600 MiB at 100 MiB/s (it needs the balloon at about
# 735 MiB). First without a broker: the workload must be OOM-killed (the test
# has teeth). Then with ballastd: it must deflate in time, memhog completes,
# no OOM kill. Records the latency from the agent's first pressure report to
# the set-memory call (broker side, event log mono_us) and to the guest's
# MemTotal rising (the agent's next reports), and the balloon's peak.
#
#   test-pressure.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"
e2e_init pressure "$@"

vm=e2e-pressure-1
floor_mib=256
guest_define "$vm" 1024 256 min=${floor_mib}MiB
guest_start "$vm"
guest_wait_ready "$vm" 90 || bail "$vm did not boot"

# Wait for the balloon to settle at the start target (the guest inflates it
# while its driver loads).
settle() {
    local i total
    for i in $(seq 40); do
        total=$(guest_meminfo "$vm" MemTotal)
        [ -n "$total" ] && [ "$total" -lt $((300 * 1024)) ] && { echo "$total"; return 0; }
        sleep 0.5
    done
    echo "${total:-0}"
    return 1
}

# memhog in the background; its exit status lands in /tmp/mh.rc.
memhog_start() {
    guest_run "$vm" "rm -f /tmp/mh.rc; (memhog --size 600 --rate 100 --hold 3 >/tmp/mh.log 2>&1; echo \$? >/tmp/mh.rc) &" 10
}
memhog_wait() {
    local deadline=$((SECONDS + $1)) rc
    while [ $SECONDS -lt $deadline ]; do
        rc=$(guest_run "$vm" "cat /tmp/mh.rc 2>/dev/null" 10)
        [ -n "$rc" ] && { echo "$rc"; return 0; }
        sleep 1
    done
    echo timeout
}

# ---- 1. no broker: the workload dies ----
log "phase 1: no broker, balloon at 256 MiB, memhog 600 MiB at 100 MiB/s"
total0=$(settle) || bail "balloon did not settle at 256 MiB (MemTotal ${total0} kB)"
log "guest MemTotal $((total0 / 1024)) MiB, MemAvailable $(($(guest_meminfo "$vm" MemAvailable) / 1024)) MiB"
oom0=$(guest_vmstat "$vm" oom_kill)
memhog_start
rc=$(memhog_wait 60)
oom1=$(guest_vmstat "$vm" oom_kill)
log "memhog: $(guest_run "$vm" "tail -n 2 /tmp/mh.log" | tr '\n' ' ')"
check "without a broker memhog is OOM-killed (exit $rc, oom_kill $oom0 -> $oom1)" \
    "$([ "$rc" = 137 ] && [ "$oom1" -gt "$oom0" ] && echo 1)"
# The kernel's OOM report on the serial console has the victim's anon-rss.
rss_kb=$(grep -o 'Killed process [0-9]* (memhog).*anon-rss:[0-9]*kB' "$E2E_WORK/$vm.console" | tail -n1 |
    sed 's/.*anon-rss:\([0-9]*\)kB/\1/')
figure "no-broker OOM kill at" "memhog anon-rss $((${rss_kb:-0} / 1024)) MiB"

# ---- 2. with ballastd: deflated in time ----
log "phase 2: ballastd running, same workload"
total0=$(settle) || bail "balloon not back at 256 MiB"
broker_config <<EOF
[broker]
interval_ms=1000
EOF
broker_start
hello=$(ev_wait 30 ".event==\"hello\" and .vm==\"$vm\"") || bail "no hello from $vm's agent"
log "hello: $hello"
ev_wait 15 ".event==\"report\" and .vm==\"$vm\"" >/dev/null || bail "no report from $vm"
sleep 3
actual0=$(guest_balloon_actual "$vm")
log "balloon before the workload: $((actual0 / 1024)) MiB"
check "balloon still near the start target before the workload ($((actual0 / 1024)) MiB <= 512 MiB)" \
    "$([ "${actual0:-0}" -le $((512 * 1024)) ] && echo 1)"
oom0=$(guest_vmstat "$vm" oom_kill)
avail0=$(ev ".event==\"report\" and .vm==\"$vm\"" | tail -n1 | jq .available_kib)
mark=$(ev_mark)

# Sample the balloon while memhog runs: it must never go below the floor.
(
    while :; do
        a=$(guest_balloon_actual "$vm")
        [ -n "$a" ] && echo "$a"
        sleep 0.5
    done
) >"$E2E_WORK/balloon.samples" 2>/dev/null &
sampler=$!
t_memhog=$(date +%s.%N)
memhog_start
rc=$(memhog_wait 90)
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
oom1=$(guest_vmstat "$vm" oom_kill)
log "memhog: $(guest_run "$vm" "tail -n 3 /tmp/mh.log" | tr '\n' ' ')"

check "with ballastd memhog completes (exit $rc)" "$([ "$rc" = 0 ] && echo 1)"
check "no OOM kill in the guest (oom_kill $oom0 -> $oom1)" "$([ "$oom0" = "$oom1" ] && echo 1)"

deflates=$(ev_since "$mark" ".event==\"decision\" and .vm==\"$vm\" and .kind==\"deflate\" and .applied==true")
setmems=$(ev_since "$mark" ".event==\"set-memory\" and .vm==\"$vm\"")
check "broker deflated ($(echo "$deflates" | grep -c .) applied deflate decisions)" \
    "$([ -n "$deflates" ] && echo 1)"
echo "$deflates" | jq -r '"#   deflate \(.from_kib / 1024 | floor) -> \(.target_kib / 1024 | floor) MiB: \(.reason)"' 2>/dev/null
check "every set-memory call succeeded" \
    "$([ -n "$setmems" ] && [ "$(echo "$setmems" | jq -s 'all(.ok == true)')" = true ] && echo 1)"
min_target=$(echo "$setmems" | jq -s 'map(.target_kib) | min // 0')
min_actual=$(sort -n "$E2E_WORK/balloon.samples" | head -n1)
max_actual=$(sort -n "$E2E_WORK/balloon.samples" | tail -n1)
check "no target and no balloon below the floor (min target $((min_target / 1024)) MiB, min actual $((${min_actual:-0} / 1024)) MiB, floor $floor_mib MiB)" \
    "$([ "$min_target" -ge $((floor_mib * 1024)) ] && [ "${min_actual:-0}" -ge $((floor_mib * 1024 - 4096)) ] && echo 1)"
figure "balloon peak" "$((${max_actual:-0} / 1024)) MiB"

# Latencies. The first pressure report: reason "pressure", or failing that the
# first report whose MemAvailable fell 32 MiB below the idle figure.
p=$(ev_since "$mark" ".event==\"report\" and .vm==\"$vm\" and .reason==\"pressure\"" | head -n1)
ptype="reason=pressure"
if [ -z "$p" ]; then
    p=$(ev_since "$mark" ".event==\"report\" and .vm==\"$vm\" and .available_kib < $avail0 - 32768" | head -n1)
    ptype="MemAvailable falling (no report with reason=pressure)"
fi
check "the agent reported the pressure ($ptype)" "$([ -n "$p" ] && echo 1)"
if [ -n "$p" ]; then
    p_us=$(echo "$p" | jq .mono_us)
    figure "workload start -> first pressure report (host clock, includes the command channel)" \
        "$(echo "$p" | jq -r .ts | awk -v t="$t_memhog" '{printf "%d", ($1 - t) * 1000}') ms"
    total_p=$(echo "$p" | jq .total_kib)
    s=$(ev_since "$mark" ".event==\"set-memory\" and .vm==\"$vm\" and .mono_us >= $p_us" | head -n1)
    first_set=$(echo "$setmems" | head -n1)
    s_us=$(echo "$s" | jq '.mono_us // 0')
    t=$(ev_since "$mark" ".event==\"report\" and .vm==\"$vm\" and .mono_us >= ${s_us:-0} and .total_kib > $total_p + 8192" | head -n1)
    if [ -n "$first_set" ] && [ "$(echo "$first_set" | jq .mono_us)" -lt "$p_us" ]; then
        log "a set-memory preceded the first pressure report by $((p_us - $(echo "$first_set" | jq .mono_us))) us"
    fi
    [ -n "$s" ] && figure "pressure report -> set-memory" "$((($(echo "$s" | jq .mono_us) - p_us) / 1000)) ms (call $(($(echo "$s" | jq .call_us) / 1000)) ms)"
    [ -n "$t" ] && figure "pressure report -> guest MemTotal rising (agent report)" "$((($(echo "$t" | jq .mono_us) - p_us) / 1000)) ms"
    check "a set-memory call followed the pressure report" "$([ -n "$s" ] && echo 1)"
    check "the guest's MemTotal rose after it" "$([ -n "$t" ] && echo 1)"
fi

e2e_finish
