#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Faults, in sequence, with two guests running the real agent:
#   1. kill -9 the agent in a guest: init restarts it, the broker gets a new hello;
#   2. kill -9 ballastd (and push a balloon below its floor behind its back),
#      restart it: it rebuilds its view, every guest ends at or above its floor;
#   3. restart libvirtd under the running broker: it reconnects, reports flow again;
#   4. destroy a guest in the middle of a balloon change: the broker survives,
#      the other guest is unaffected;
#   5. a hostile guest (garbage, overlong lines, 10 000 messages/s) next to a good
#      one: the good guest's reports keep their rate and are acted on, the
#      broker's CPU stays bounded.
# Also records boot-to-hello (virsh start to the broker's hello event).
#
#   test-faults.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"
e2e_init faults "$@"

vm1=e2e-faults-1
vm2=e2e-faults-2
vm3=e2e-faults-3
floor_mib=256

broker_config <<EOF
[broker]
interval_ms=1000
EOF
broker_start
guest_define "$vm1" 1024 512 min=${floor_mib}MiB
guest_define "$vm2" 1024 320 min=${floor_mib}MiB
t1=$(date +%s.%N)
guest_start "$vm1"
t2=$(date +%s.%N)
guest_start "$vm2"
h1=$(ev_wait 90 ".event==\"hello\" and .vm==\"$vm1\"") || bail "no hello from $vm1"
h2=$(ev_wait 90 ".event==\"hello\" and .vm==\"$vm2\"") || bail "no hello from $vm2"
b1=$(echo "$h1" | jq -r .ts | awk -v t="$t1" '{printf "%.2f", $1 - t}')
b2=$(echo "$h2" | jq -r .ts | awk -v t="$t2" '{printf "%.2f", $1 - t}')
figure "boot to hello (virsh start -> hello event, 2 guests booting together)" "$b1 s, $b2 s"
for g in "$vm1" "$vm2"; do
    st=$(ev ".event==\"domain\" and .what==\"started\" and .vm==\"$g\"" | head -n1 | jq '.mono_us // 0')
    so=$(ev ".event==\"session-open\" and .vm==\"$g\"" | head -n1 | jq '.mono_us // 0')
    he=$(ev ".event==\"hello\" and .vm==\"$g\"" | head -n1 | jq '.mono_us // 0')
    [ "${st:-0}" -gt 0 ] && [ "${so:-0}" -gt 0 ] &&
        log "$g: started -> session-open $(((so - st) / 1000)) ms -> hello $(((he - so) / 1000)) ms"
done
log "hello: $h1"
kconfig=$(sed -n 's/^CONFIG_VIRTIO_BALLOON=\([ym]\)$/\1/p' "$E2E_GUEST_DIR/kernel-config")
check "hello carries the balloon facts (present, driver bound, kconfig ${kconfig:-?} as in /boot/config-*)" \
    "$(jtrue "$h1" ".balloon.present == true and .balloon.driver_bound == true and .balloon.kconfig == \"$kconfig\"" && echo 1)"
guest_wait_ready "$vm1" 60 || bail "$vm1 command channel"
guest_wait_ready "$vm2" 60 || bail "$vm2 command channel"

# reports_since MARK VM: number of report events for VM after MARK
reports_since() { ev_since "$1" ".event==\"report\" and .vm==\"$2\"" | wc -l; }

# ---- 1. kill -9 the agent ----
log "1. kill -9 the agent in $vm1"
mark=$(ev_mark)
old_pid=$(guest_run "$vm1" "cat /run/agent.pid" 10)
guest_run "$vm1" 'kill -9 $(cat /run/agent.pid)' 10
h=$(ev_wait_since "$mark" 30 ".event==\"hello\" and .vm==\"$vm1\"")
check "new hello from $vm1 after the agent was killed" "$([ -n "$h" ] && echo 1)"
new_pid=$(guest_run "$vm1" "cat /run/agent.pid" 10)
check "init restarted the agent (pid $old_pid -> $new_pid)" \
    "$([ -n "$new_pid" ] && [ "$new_pid" != "$old_pid" ] && echo 1)"
ev_wait_since "$(ev_mark)" 10 ".event==\"report\" and .vm==\"$vm1\"" >/dev/null
check "reports from $vm1 flow again" "$([ $? = 0 ] && echo 1)"

# ---- 2. kill -9 the broker, restart it ----
log "2. kill -9 ballastd; meanwhile $vm2's balloon is pushed below its floor; restart"
broker_kill9
virsh setmem "$vm2" $(((floor_mib - 64) * 1024)) --live >/dev/null
sleep 2
log "$vm2 balloon with no broker: $(($(guest_balloon_actual "$vm2") / 1024)) MiB (floor $floor_mib MiB)"
mark=$(ev_mark)
broker_start
ev_wait_since "$mark" 30 ".event==\"hello\" and .vm==\"$vm1\"" >/dev/null
ok1=$?
ev_wait_since "$mark" 30 ".event==\"hello\" and .vm==\"$vm2\"" >/dev/null
ok2=$?
check "after the restart both agents said hello again" "$([ $ok1 = 0 ] && [ $ok2 = 0 ] && echo 1)"
for i in $(seq 30); do
    a2=$(guest_balloon_actual "$vm2")
    [ "${a2:-0}" -ge $((floor_mib * 1024)) ] && break
    sleep 1
done
a1=$(guest_balloon_actual "$vm1")
check "no guest below its floor after the restart ($vm1 $((a1 / 1024)) MiB, $vm2 $((a2 / 1024)) MiB, floor $floor_mib MiB)" \
    "$([ "$a1" -ge $((floor_mib * 1024)) ] && [ "$a2" -ge $((floor_mib * 1024)) ] && echo 1)"
ev_since "$mark" ".event==\"decision\" and .vm==\"$vm2\"" | head -n 2 | jq -r '"#   \(.vm) \(.kind) -> \(.target_kib / 1024 | floor) MiB: \(.reason)"'
status=$(ctl_status)
n_conn=$(echo "$status" | jq '[.vms[] | select(.name | startswith("e2e-faults-")) | select(.agent.connected == true)] | length')
check "status shows both agents connected ($n_conn)" "$([ "$n_conn" = 2 ] && echo 1)"

# ---- 3. restart libvirtd under the running broker ----
log "3. restart libvirtd"
mark=$(ev_mark)
if command -v systemctl >/dev/null && systemctl is-active --quiet libvirtd 2>/dev/null; then
    systemctl restart libvirtd # a systemd host: let systemd do it
else
    # started by tools/libvirtd-up.sh: stop that daemon, start it again
    lpid=$(pgrep -x libvirtd)
    [ -n "$lpid" ] || bail "no libvirtd process"
    kill -TERM $lpid
    for i in $(seq 50); do kill -0 $lpid 2>/dev/null || break; sleep 0.2; done
    sleep 1
fi
"$E2E_TOP/tools/libvirtd-up.sh" || bail "libvirtd did not come back"
d=$(ev_wait_since "$mark" 30 ".event==\"disconnect\"")
c=$(ev_wait_since "$mark" 60 ".event==\"connect\"")
check "broker saw the disconnect and reconnected" "$([ -n "$d" ] && [ -n "$c" ] && echo 1)"
if [ -n "$c" ]; then
    cus=$(echo "$c" | jq .mono_us)
    r1=$(ev_wait_since "$mark" 60 ".event==\"report\" and .vm==\"$vm1\" and .mono_us > $cus")
    r2=$(ev_wait_since "$mark" 60 ".event==\"report\" and .vm==\"$vm2\" and .mono_us > $cus")
    check "reports from both guests flow again after the reconnect" "$([ -n "$r1" ] && [ -n "$r2" ] && echo 1)"
    [ -n "$r1" ] && figure "libvirtd restart: reconnect -> first report" "$((($(echo "$r1" | jq .mono_us) - cus) / 1000)) ms"
fi
check "broker still running" "$(kill -0 "$E2E_BROKER_PID" 2>/dev/null && echo 1)"

# ---- 4. destroy a guest in the middle of a balloon change ----
log "4. pressure in $vm2, destroyed right after the broker's first set-memory"
mark=$(ev_mark)
guest_run "$vm2" "(memhog --size 600 --rate 100 --hold 30 >/tmp/mh.log 2>&1; echo \$? >/tmp/mh.rc) &" 10
s=$(ev_wait_since "$mark" 30 ".event==\"set-memory\" and .vm==\"$vm2\"")
guest_destroy "$vm2"
check "the broker changed $vm2's balloon (set-memory) and $vm2 was destroyed during it" "$([ -n "$s" ] && echo 1)"
mark=$(ev_mark)
sleep 6
check "broker survived the destroy" "$(kill -0 "$E2E_BROKER_PID" 2>/dev/null && ctl_status >/dev/null && echo 1)"
n=$(reports_since "$mark" "$vm1")
check "$vm1 unaffected: $n reports in the 6 s after" "$([ "$n" -ge 4 ] && echo 1)"
st2=$(ctl_status | jq -r ".vms[] | select(.name==\"$vm2\") | .state")
check "status no longer shows $vm2 running (state: ${st2:-absent})" "$([ "$st2" != running ] && echo 1)"
ev_since 0 ".vm==\"$vm2\" and (.event==\"session-close\" or .event==\"set-memory\" or .event==\"balloon-stuck\")" |
    tail -n 3 | sed 's/^/#   /'

# ---- 5. hostile guest next to a good one ----
log "5. hostile guest $vm3 (garbage, overlong lines, 10 000 msg/s) next to $vm1"
mark=$(ev_mark)
sleep 10
base=$(reports_since "$mark" "$vm1")
log "$vm1 baseline: $base reports in 10 s"
guest_define "$vm3" 512 512 min=${floor_mib}MiB agent=hostile
guest_start "$vm3"
rj=$(ev_wait 90 ".event==\"rejected\" and .vm==\"$vm3\"") || bail "no rejected events from the hostile $vm3"
sleep 3 # the flood is on
mark=$(ev_mark)
cpu0=$(broker_cpu_s)
t0=$SECONDS
guest_run "$vm1" "(memhog --size 500 --rate 100 --hold 3 >/tmp/mh.log 2>&1; echo \$? >/tmp/mh.rc) &" 10
sleep 20
cpu1=$(broker_cpu_s)
dt=$((SECONDS - t0))
n=$(reports_since "$mark" "$vm1")
cpu_pct=$(awk -v a="$cpu0" -v b="$cpu1" -v t="$dt" 'BEGIN{printf "%.0f", (b - a) * 100 / t}')
figure "hostile flood: broker CPU" "${cpu_pct}% of one core over ${dt} s"
figure "hostile flood: good guest reports" "$n in ${dt} s (baseline $base in 10 s)"
check "good guest's reports keep arriving ($n in $dt s, baseline $base per 10 s)" \
    "$([ "$n" -ge $((base * dt * 7 / 100)) ] && [ "$n" -gt 0 ] && echo 1)"
check "broker CPU bounded during the flood (${cpu_pct}% <= 50%)" "$([ "$cpu_pct" -le 50 ] && echo 1)"
rc=$(guest_run "$vm1" "cat /tmp/mh.rc 2>/dev/null" 10)
d=$(ev_since "$mark" ".event==\"decision\" and .vm==\"$vm1\" and .kind==\"deflate\" and .applied==true" | head -n1)
check "good guest's pressure acted on during the flood (deflate applied, memhog exit ${rc:-still running})" \
    "$([ -n "$d" ] && [ "$rc" = 0 ] && echo 1)"
log "rejected from $vm3 by kind: $(ev ".event==\"rejected\" and .vm==\"$vm3\"" | jq -r .what | sort | uniq -c | tr '\n' ' ')"
n_rej_lines=$(ev_count ".event==\"rejected\" and .vm==\"$vm3\"")
total_rej=$(ev ".event==\"rejected\" and .vm==\"$vm3\"" | jq -s 'map(.count) | max // 0')
kinds=$(ev ".event==\"rejected\" and .vm==\"$vm3\"" | jq -r .what | sort -u | tr '\n' ' ')
check "hostile input rejected and counted ($n_rej_lines events, count up to $total_rej; kinds: $kinds)" \
    "$([ "$n_rej_lines" -gt 0 ] && [[ " $kinds" == *" json "* ]] && [[ " $kinds" == *" overlong "* ]] &&
        [[ " $kinds" == *" rate-limited "* ]] && echo 1)"
ev_size=$(du -k "$E2E_EVENTS" | cut -f1)
check "event log stays small under the flood (${ev_size} KiB)" "$([ "$ev_size" -lt 20480 ] && echo 1)"
check "broker still running" "$(kill -0 "$E2E_BROKER_PID" 2>/dev/null && echo 1)"

e2e_finish
