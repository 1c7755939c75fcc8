#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Reclaim. The host reserve is set above what the host has (MemAvailable +
# 1 GiB, computed now), so the host "needs" memory. An idle guest must be
# inflated toward its floor and never below it; a busy guest (memhog holding
# most of its memory) must be left alone and keep its workload. Then the
# rollback: `ballastctl release --all` must give the idle guest its maximum
# back and stop managing it (no inflate while the host still "needs" memory),
# and `ballastctl set VM mode default` must resume it.
#
#   test-reclaim.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"
e2e_init reclaim "$@"

idle=e2e-reclaim-1
busy=e2e-reclaim-2
idle_floor_mib=384
busy_floor_mib=256
start_mib=768
guest_define "$idle" 1024 $start_mib min=${idle_floor_mib}MiB
guest_define "$busy" 1024 $start_mib min=${busy_floor_mib}MiB
guest_start "$idle"
guest_start "$busy"
guest_wait_ready "$idle" 90 || bail "$idle did not boot"
guest_wait_ready "$busy" 90 || bail "$busy did not boot"

# The busy guest's workload: 480 MiB held for the whole test.
guest_run "$busy" "(memhog --size 480 --rate 200 --hold 900 >/tmp/mh.log 2>&1; echo \$? >/tmp/mh.rc) &" 10
for i in $(seq 60); do
    guest_run "$busy" "grep -q reached /tmp/mh.log" 5 && break
    sleep 1
done
guest_run "$busy" "grep -q reached /tmp/mh.log" 5 || bail "memhog in $busy did not reach 480 MiB"
busy_oom0=$(guest_vmstat "$busy" oom_kill)
idle_oom0=$(guest_vmstat "$idle" oom_kill)
log "$busy: memhog holds 480 MiB, MemAvailable $(($(guest_meminfo "$busy" MemAvailable) / 1024)) MiB"
log "$idle: idle, MemAvailable $(($(guest_meminfo "$idle" MemAvailable) / 1024)) MiB"

host_avail_kib=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo)
reserve_mib=$((host_avail_kib / 1024 + 1024))
log "host MemAvailable $((host_avail_kib / 1024)) MiB -> host_reserve ${reserve_mib} MiB"
broker_config <<EOF
[broker]
interval_ms=1000

[policy]
host_reserve=${reserve_mib}MiB
reclaim_interval_ms=2000
EOF
broker_start
ev_wait 30 ".event==\"hello\" and .vm==\"$idle\"" >/dev/null || bail "no hello from $idle"
ev_wait 30 ".event==\"hello\" and .vm==\"$busy\"" >/dev/null || bail "no hello from $busy"

# Sample both balloons until the idle one is near its floor (or 90 s).
: >"$E2E_WORK/samples"
deadline=$((SECONDS + 90))
near=0
while [ $SECONDS -lt $deadline ]; do
    a1=$(guest_balloon_actual "$idle")
    a2=$(guest_balloon_actual "$busy")
    echo "$SECONDS ${a1:-0} ${a2:-0}" >>"$E2E_WORK/samples"
    if [ -n "$a1" ] && [ "$a1" -le $(((idle_floor_mib + 32) * 1024)) ]; then
        near=$((near + 1))
        [ $near -ge 10 ] && break # stayed there for ~5 s: it is not going lower
    fi
    sleep 0.5
done
idle_min=$(awk '{print $2}' "$E2E_WORK/samples" | sort -n | head -n1)
idle_end=$(tail -n1 "$E2E_WORK/samples" | awk '{print $2}')
busy_min=$(awk '{print $3}' "$E2E_WORK/samples" | sort -n | head -n1)
log "idle balloon: $start_mib -> $((idle_end / 1024)) MiB (min $((idle_min / 1024)) MiB, floor $idle_floor_mib MiB)"
log "busy balloon: min $((busy_min / 1024)) MiB (start $start_mib MiB)"
ev ".event==\"decision\"" | jq -r '"#   \(.vm) \(.kind) \(.from_kib / 1024 | floor) -> \(.target_kib / 1024 | floor) MiB applied=\(.applied): \(.reason)"' | head -n 20
ev ".event==\"note\"" | jq -r '"#   note: \(.text)"' | sort -u | head -n 5

idle_inflates=$(ev_count ".event==\"decision\" and .vm==\"$idle\" and .kind==\"inflate\" and .applied==true")
check "idle guest inflated ($idle_inflates applied inflate decisions)" "$([ "$idle_inflates" -gt 0 ] && echo 1)"
gap=$(((start_mib - idle_floor_mib) * 1024))
check "idle guest moved toward its floor: $start_mib -> $((idle_end / 1024)) MiB (at least half the way to $idle_floor_mib MiB)" \
    "$([ "${idle_end:-999999999}" -le $((start_mib * 1024 - gap / 2)) ] && echo 1)"
idle_min_target=$(ev ".event==\"set-memory\" and .vm==\"$idle\"" | jq -s 'map(.target_kib) | min // 0')
check "idle guest never below its floor (min actual $((idle_min / 1024)) MiB, min target $((idle_min_target / 1024)) MiB >= $idle_floor_mib MiB)" \
    "$([ "$idle_min" -ge $((idle_floor_mib * 1024)) ] && { [ "$idle_min_target" = 0 ] || [ "$idle_min_target" -ge $((idle_floor_mib * 1024)) ]; } && echo 1)"
busy_inflates=$(ev_count ".event==\"decision\" and .vm==\"$busy\" and .kind==\"inflate\" and .applied==true")
check "busy guest left alone: no applied inflate ($busy_inflates), balloon min $((busy_min / 1024)) MiB" \
    "$([ "$busy_inflates" = 0 ] && [ "$busy_min" -ge $(((start_mib - 16) * 1024)) ] && echo 1)"
busy_rc=$(guest_run "$busy" "cat /tmp/mh.rc 2>/dev/null; pidof memhog >/dev/null && echo alive" 10)
busy_oom1=$(guest_vmstat "$busy" oom_kill)
check "busy guest's workload alive, no OOM kill (oom_kill $busy_oom0 -> $busy_oom1)" \
    "$([ "$busy_rc" = alive ] && [ "$busy_oom0" = "$busy_oom1" ] && echo 1)"
idle_oom1=$(guest_vmstat "$idle" oom_kill)
idle_avail=$(guest_meminfo "$idle" MemAvailable)
check "idle guest healthy at its new size (MemAvailable $((${idle_avail:-0} / 1024)) MiB, oom_kill $idle_oom0 -> $idle_oom1)" \
    "$([ "${idle_avail:-0}" -gt $((32 * 1024)) ] && [ "$idle_oom0" = "$idle_oom1" ] && echo 1)"
figure "idle guest inflated" "$start_mib -> $((idle_end / 1024)) MiB (floor $idle_floor_mib MiB)"

# ---- rollback: ballastctl release --all, then resume ----
mark=$(ev_mark)
t0=$SECONDS
"$BALLASTCTL" --control "$E2E_SOCK" release --all >"$E2E_WORK/release.out" 2>&1
release_rc=$?
sed 's/^/#   /' "$E2E_WORK/release.out"
check "ballastctl release --all exits 0 ($release_rc) and reports the idle guest" \
    "$([ "$release_rc" = 0 ] && grep -q "^$idle: released" "$E2E_WORK/release.out" && echo 1)"
back=""
for _ in $(seq 40); do
    back=$(guest_balloon_actual "$idle")
    [ "${back:-0}" -ge $((1024 * 1024 - 1024)) ] && break
    sleep 0.5
done
release_s=$((SECONDS - t0))
check "released guest back at its maximum 1024 MiB ($((${back:-0} / 1024)) MiB after ${release_s} s)" \
    "$([ "${back:-0}" -ge $((1024 * 1024 - 1024)) ] && echo 1)"
rel=$(ev_since "$mark" ".event==\"decision\" and .vm==\"$idle\" and .reason_code==\"release\"" | head -n1)
check "a release decision, applied, target 1024 MiB" \
    "$(jtrue "$rel" '.applied == true and .target_kib == 1048576' && echo 1)"
idle_total=$(guest_meminfo "$idle" MemTotal)
log "$idle: MemTotal $((${idle_total:-0} / 1024)) MiB after the release"
status=$(ctl_status) || bail "ballastctl status --json failed"
st=$(echo "$status" | jq -c ".vms[] | select(.name==\"$idle\") | {mode, overrides, released}")
log "status after release: $st"
check "status: mode off as an override, released" \
    "$(jtrue "$st" '.mode == "off" and .overrides.mode == "off" and .released == true' && echo 1)"
sleep 6 # six cycles: the host still short, a managed idle guest would be inflated again
n_after=$(ev_since "$mark" ".event==\"decision\" and .vm==\"$idle\" and .kind==\"inflate\"" | wc -l)
check "released guest left alone while the host is short ($n_after inflate decisions in 6 s)" \
    "$([ "$n_after" = 0 ] && echo 1)"
"$BALLASTCTL" --control "$E2E_SOCK" explain "$idle" --last 3 | sed 's/^/#   /'

mark=$(ev_mark)
"$BALLASTCTL" --control "$E2E_SOCK" set "$idle" mode default >/dev/null ||
    bail "ballastctl set $idle mode default failed"
resumed=$(ev_wait_since "$mark" 30 ".event==\"decision\" and .vm==\"$idle\" and .kind==\"inflate\" and .applied==true") ||
    resumed=""
check "set mode default resumes it: inflated again (${resumed:+yes})" "$([ -n "$resumed" ] && echo 1)"
figure "release --all: idle guest back at its maximum" "${release_s} s"

e2e_finish
