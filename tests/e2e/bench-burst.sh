#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Burst cost, a benchmark (figures, no timing pass/fail). A guest with a 1 GiB
# maximum runs memhog touching 600 MiB as fast as it can, with ballastd
# running: from a small balloon (set to 256 MiB; ballastd raises it to its
# headroom) and with the balloon already at the maximum, alternating, ROUNDS
# times each. Figures: the median burst time of each and their ratio (issue
# 15's goal: <= 1.25). Checks only that every burst completes without an OOM
# kill and that the balloon really was small / at the maximum before each.
#
#   bench-burst.sh BUILD_DIR [ROUNDS]
. "$(dirname "$0")/lib.sh"
rounds=${2:-3}
e2e_init burst "$1"

vm=e2e-burst-1
guest_define "$vm" 1024 256 min=256MiB
guest_start "$vm"
guest_wait_ready "$vm" 90 || bail "$vm did not boot"
broker_config <<EOF
[broker]
interval_ms=1000
EOF
broker_start
ev_wait 30 ".event==\"hello\" and .vm==\"$vm\"" >/dev/null || bail "no hello from $vm's agent"

# balloon_to MIB LOW HIGH: set the balloon, wait until libvirt's size is
# within [LOW, HIGH] MiB (ballastd may move it: a small balloon is raised to
# the guest's headroom), then 8 s: ballastd takes a balloon moved by someone
# else for one short of its own last target until balloon_settle_ms (5 s)
# has passed, and would not raise it before (a first run OOM-killed rounds 2
# and 3 that way).
balloon_to() {
    local a i
    virsh setmem "$vm" $(($1 * 1024)) --live >/dev/null || return 1
    for i in $(seq 60); do
        a=$(guest_balloon_actual "$vm")
        [ -n "$a" ] && [ "$a" -ge $(($2 * 1024)) ] && [ "$a" -le $(($3 * 1024)) ] && break
        sleep 0.5
    done
    sleep 8
    a=$(guest_balloon_actual "$vm")
    echo "$((${a:-0} / 1024))"
    [ -n "$a" ] && [ "$a" -ge $(($2 * 1024)) ] && [ "$a" -le $(($3 * 1024)) ]
}

# burst: memhog 600 MiB at full speed; prints its time (s) or "fail".
burst() {
    local rc i
    guest_run "$vm" "rm -f /tmp/mh.rc; (memhog --size 600 --quiet >/tmp/mh.log 2>&1; echo \$? >/tmp/mh.rc) &" 10
    for i in $(seq 120); do
        rc=$(guest_run "$vm" "cat /tmp/mh.rc 2>/dev/null" 10)
        [ -n "$rc" ] && break
        sleep 0.5
    done
    if [ "$rc" = 0 ]; then
        guest_run "$vm" "cat /tmp/mh.log" 10 | sed -n 's/^memhog: reached 600 MiB in \([0-9.]*\) s.*/\1/p'
    else
        echo fail
    fi
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# one_burst MIB LOW HIGH WHAT: balloon there, then a burst; BURST_T is its
# time (s), empty when it failed. Runs in this shell: check() counts.
one_burst() {
    local size ok t
    size=$(balloon_to "$1" "$2" "$3")
    ok=$?
    check "round $r: balloon $4 before the burst ($size MiB)" "$([ $ok = 0 ] && echo 1)"
    t=$(burst)
    check "round $r: burst $4 completed ($t s)" "$([ "$t" != fail ] && [ -n "$t" ] && echo 1)"
    BURST_T=$t
    [ "$t" = fail ] && BURST_T=
    return 0
}

small=() big=()
oom0=$(guest_vmstat "$vm" oom_kill)
for r in $(seq "$rounds"); do
    one_burst 256 200 400 "small"
    [ -n "$BURST_T" ] && small+=("$BURST_T")
    one_burst 1024 1000 1024 "at the maximum"
    [ -n "$BURST_T" ] && big+=("$BURST_T")
done
oom1=$(guest_vmstat "$vm" oom_kill)
check "no OOM kill in the guest (oom_kill $oom0 -> $oom1)" "$([ "$oom0" = "$oom1" ] && echo 1)"

if [ ${#small[@]} -gt 0 ] && [ ${#big[@]} -gt 0 ]; then
    ms=$(printf '%s\n' "${small[@]}" | median)
    mb=$(printf '%s\n' "${big[@]}" | median)
    figure "600 MiB burst from a small balloon, median of ${#small[@]}" "$ms s (${small[*]})"
    figure "600 MiB burst at the maximum, median of ${#big[@]}" "$mb s (${big[*]})"
    figure "burst ratio small / maximum (goal <= 1.25)" "$(awk -v a="$ms" -v b="$mb" 'BEGIN {printf "%.2f", a / b}')"
fi
deflates=$(ev ".event==\"decision\" and .vm==\"$vm\" and .kind==\"deflate\" and .applied==true" | grep -c burst)
figure "deflates escalated as a burst" "$deflates"

e2e_finish
