#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Hostile volume, measured (figures, not timed assertions): one guest floods
# its channel with 10 000 messages/s of garbage, overlong lines, lies
# (reports claiming pressure) and hellos for E2E_FLOOD_S seconds (default 20;
# 60 for the full figure) next to an honest guest whose workload grows.
# Printed: broker RSS growth, broker CPU, event log bytes written, and the
# honest guest's report -> decision delay (p99, max) against the same
# workload without the flooder. Asserted: the broker lives, its memory and
# event log stay bounded, the honest guest's pressure is acted on.
#
#   [E2E_FLOOD_S=60] test-flood.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"
e2e_init flood "$@"

vm1=e2e-flood-1
vm3=e2e-flood-3
floor_mib=256
flood_s=${E2E_FLOOD_S:-20}

broker_config <<EOF
[broker]
interval_ms=1000
EOF
broker_start
guest_define "$vm1" 1024 400 min=${floor_mib}MiB
guest_start "$vm1"
ev_wait 90 ".event==\"hello\" and .vm==\"$vm1\"" >/dev/null || bail "no hello from $vm1"
guest_wait_ready "$vm1" 60 || bail "$vm1 command channel"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$E2E_BROKER_PID/status"; }
evlog_bytes() { stat -c %s "$E2E_EVENTS"; }

# delays MARK: for each applied decision about vm1 after MARK that answers
# the guest's pressure (reason_code pressure or oom: not the floor net or a
# tick's reclaim), the time since the last report of vm1 logged before it
# (ms), one per line, sorted
delays() {
    ev_since "$1" "(.event==\"report\" or (.event==\"decision\" and .applied==true and (.reason_code==\"pressure\" or .reason_code==\"oom\"))) and .vm==\"$vm1\"" |
        jq -r '[.event, .mono_us] | @tsv' |
        awk '$1=="report" {r=$2} $1=="decision" && r>0 {printf "%.1f\n", ($2 - r) / 1000}' | sort -n
}
p99() { awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} i=int(NR*0.99+0.999); if (i>NR) i=NR; print a[i]}'; }
p50() { awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} i=int(NR*0.5+0.999); print a[i]}'; }

# Each cycle starts from the same balloon: the honest guest shrunk back to
# 400 MiB (a cycle deflates it towards its maximum, where no further
# decision can come).
shrink() {
    virsh setmem "$vm1" 409600 --live >/dev/null || bail "setmem $vm1"
    sleep 3
}

# The honest workload, for the duration given: shrink, grow 450 MiB at
# 150 MiB/s, hold, release, again; every cycle asks for memory, so each
# phase gives several report -> decision samples, not one.
workload() {
    local until=$((SECONDS + $1))
    while [ $SECONDS -lt $until ]; do
        shrink
        guest_run "$vm1" "memhog --size 450 --rate 150 --hold 2 >/dev/null 2>&1; echo \$?" 30 \
            >/dev/null
    done
}

# ---- A. without the flooder ----
log "A. honest workload alone for $flood_s s"
mark=$(ev_mark)
workload "$flood_s"
da=$(delays "$mark")
na=$(echo "$da" | grep -c . || true)
p99a=$(echo "$da" | p99)
p50a=$(echo "$da" | p50)
maxa=$(echo "$da" | tail -n1)

# ---- B. with the flooder ----
log "B. the same next to $vm3 flooding 10 000 msg/s for $flood_s s"
guest_define "$vm3" 512 512 min=${floor_mib}MiB agent=hostile
guest_start "$vm3"
ev_wait 90 ".event==\"rejected\" and .vm==\"$vm3\"" >/dev/null || bail "no rejected events from $vm3"
mark=$(ev_mark)
rss0=$(rss_kib)
bytes0=$(evlog_bytes)
cpu0=$(broker_cpu_s)
t0=$SECONDS
workload "$flood_s"
dt=$((SECONDS - t0))
rss1=$(rss_kib)
bytes1=$(evlog_bytes)
cpu1=$(broker_cpu_s)
db=$(delays "$mark")
nb=$(echo "$db" | grep -c . || true)
p99b=$(echo "$db" | p99)
p50b=$(echo "$db" | p50)
maxb=$(echo "$db" | tail -n1)
cpu_pct=$(awk -v a="$cpu0" -v b="$cpu1" -v t="$dt" 'BEGIN{printf "%.1f", (b - a) * 100 / t}')
growth=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN{printf "%.2f", (b - a) / 1024}')
wrote=$((bytes1 - bytes0))
closes=$(ev_count ".event==\"session-close\" and .vm==\"$vm3\" and (.why | startswith(\"flooding\"))")
supp=$(ev_since "$mark" ".vm==\"$vm3\" and .suppressed" | jq -s 'map(.suppressed) | add // 0')

figure "flood ${dt} s: broker RSS" "$((rss0 / 1024)) -> $((rss1 / 1024)) MiB (growth $growth MiB)"
figure "flood ${dt} s: broker CPU" "$cpu_pct % of one core"
figure "flood ${dt} s: event log written" "$wrote bytes ($supp events of $vm3 held back)"
figure "flood ${dt} s: flooder sessions closed over the byte budget (whole run)" "$closes"
figure "honest report -> decision (ms), without flooder" "p50 $p50a, p99 $p99a, max ${maxa:-n/a} ($na decisions)"
figure "honest report -> decision (ms), with flooder" "p50 $p50b, p99 $p99b, max ${maxb:-n/a} ($nb decisions)"
ratio=$(awk -v a="$p99a" -v b="$p99b" 'BEGIN{if (a+0 > 0 && b != "n/a") printf "%.2f", b / a; else print "n/a"}')
figure "honest report -> decision p99 ratio (with / without flooder, goal <= 2)" "$ratio"

check "broker still running" "$(kill -0 "$E2E_BROKER_PID" 2>/dev/null && ctl_status >/dev/null && echo 1)"
check "broker RSS growth bounded under the flood ($growth MiB < 32)" \
    "$(awk -v g="$growth" 'BEGIN{exit !(g < 32)}' && echo 1)"
check "event log bounded under the flood ($wrote bytes < 8 MiB)" "$([ "$wrote" -lt 8388608 ] && echo 1)"
check "honest guest's pressure acted on during the flood ($nb decisions)" "$([ "$nb" -gt 0 ] && echo 1)"

e2e_finish
