#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A libvirtd that hangs under a running broker (SIGSTOP for 25 s, then
# SIGCONT): ballastctl status keeps answering (libvirt calls run on the
# connection's worker thread; the main loop waits at most libvirt_timeout_ms
# for one, then calls fail at once until it returns), status says libvirtd is
# not answering or not connected, the broker notices the loss (the keepalive,
# whose timer runs on the free main loop, closes the connection within ~8 s),
# and reconnects when the daemon wakes up; reports flow again.
# Runs only under the e2e lock (it freezes the shared libvirtd).
#
#   test-libvirtd-hang.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"
e2e_init libvirtd-hang "$@"

vm1=e2e-hang-1
broker_config <<EOF
[broker]
interval_ms=1000
EOF
broker_start
guest_define "$vm1" 768 512 min=256MiB
guest_start "$vm1"
ev_wait 90 ".event==\"hello\" and .vm==\"$vm1\"" >/dev/null || bail "no hello from $vm1"

lpid=$(pgrep -x libvirtd | head -n1)
[ -n "$lpid" ] || bail "no libvirtd process"
# Whatever happens, the shared libvirtd is woken up again.
trap 'kill -CONT '"$lpid"' 2>/dev/null; e2e_cleanup' EXIT

log "SIGSTOP libvirtd ($lpid) for 25 s"
mark=$(ev_mark)
kill -STOP "$lpid"
t0=$SECONDS
worst=0
answered=0
asked=0
saw_down=0
while [ $((SECONDS - t0)) -lt 25 ]; do
    s0=$(date +%s%N)
    st=$("$BALLASTCTL" --control "$E2E_SOCK" status --json 2>/dev/null)
    ms=$((($(date +%s%N) - s0) / 1000000))
    asked=$((asked + 1))
    if [ -n "$st" ]; then
        answered=$((answered + 1))
        [ "$(echo "$st" | jq -r '(.status // .) | (.connected and .answering)')" = false ] &&
            saw_down=1
    fi
    [ "$ms" -gt "$worst" ] && worst=$ms
    sleep 1
done
kill -CONT "$lpid"
figure "libvirtd stopped 25 s: ballastctl status" "$answered/$asked answered, slowest ${worst} ms"
check "ballastctl status answered throughout ($answered/$asked, slowest ${worst} ms)" \
    "$([ "$answered" = "$asked" ] && echo 1)"
check "status said libvirtd was not answering (or not connected) while it hung" "$([ "$saw_down" = 1 ] && echo 1)"
d=$(ev_since "$mark" ".event==\"disconnect\"" | head -n1)
check "the broker saw the hung connection as lost" "$([ -n "$d" ] && echo 1)"
[ -n "$d" ] && log "disconnect: $d"
c=$(ev_wait_since "$mark" 60 ".event==\"connect\"")
check "reconnected after SIGCONT" "$([ -n "$c" ] && echo 1)"
if [ -n "$c" ]; then
    cus=$(echo "$c" | jq .mono_us)
    r=$(ev_wait_since "$mark" 60 ".event==\"report\" and .vm==\"$vm1\" and .mono_us > $cus")
    check "reports flow again after the reconnect" "$([ -n "$r" ] && echo 1)"
fi
check "broker still running" "$(kill -0 "$E2E_BROKER_PID" 2>/dev/null && echo 1)"

e2e_finish
