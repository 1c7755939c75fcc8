#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Mixed versions. The guest runs e2e-talker --newer-minor instead of the agent:
# the real agent's hello and reports, edited to announce protocol minor 7 and
# to carry fields this broker does not know, plus now and then a message type
# it does not know. The broker must treat it as a normal agent: hello logged
# with minor 7, a welcome sent back, every report accepted, the unknown type
# skipped and counted (never fatal), nothing else rejected.
#
#   test-mixed-versions.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"
e2e_init mixed-versions "$@"

vm=e2e-mixed-versions-1
broker_config <<EOF
[broker]
interval_ms=1000
EOF
broker_start
guest_define "$vm" 512 512 min=256MiB agent=newer
guest_start "$vm"
guest_wait_ready "$vm" 90 || bail "$vm did not boot"

hello=$(ev_wait 30 ".event==\"hello\" and .vm==\"$vm\"") || bail "no hello event for $vm"
log "hello: $hello"
check "hello accepted with minor 7" "$(jtrue "$hello" '.minor == 7' && echo 1)"
mark=$(ev_mark)
sleep 10
n_reports=$(ev_since "$mark" ".event==\"report\" and .vm==\"$vm\"" | wc -l)
n_rejected=$(ev_count ".event==\"rejected\" and .vm==\"$vm\" and .what != \"unknown-type\"")
n_unknown=$(ev_count ".event==\"rejected\" and .vm==\"$vm\" and .what == \"unknown-type\"")
n_closed=$(ev_count ".event==\"session-close\" and .vm==\"$vm\"")
check "reports accepted ($n_reports in 10 s, >= 6)" "$([ "$n_reports" -ge 6 ] && echo 1)"
check "nothing rejected but the unknown message type ($n_rejected other rejected events)" \
    "$([ "$n_rejected" = 0 ] && echo 1)"
check "the unknown message type was skipped and counted ($n_unknown events), the session kept ($n_closed closes)" \
    "$([ "$n_unknown" -ge 1 ] && [ "$n_closed" = 0 ] && echo 1)"
ev ".event==\"rejected\" and .vm==\"$vm\"" | head -n 3 | sed 's/^/#   /'

guest_run "$vm" "grep -c 'received: .*\"welcome\"' /run/agent.log" 10 >"$E2E_WORK/welcome.count"
check "the guest received a welcome ($(cat "$E2E_WORK/welcome.count") lines)" \
    "$([ "$(cat "$E2E_WORK/welcome.count")" -ge 1 ] 2>/dev/null && echo 1)"
guest_run "$vm" "grep 'received: .*welcome' /run/agent.log | head -n1" 10 | sed 's/^/#   /'

status=$(ctl_status) || bail "ballastctl status --json failed"
agent=$(echo "$status" | jq -c ".vms[] | select(.name==\"$vm\") | .agent")
log "status agent: $agent"
check "status shows the agent connected with fresh reports, protocol 1.7" \
    "$(jtrue "$agent" '.connected == true and .report_age_ms < 5000 and .protocol == "1.7"' && echo 1)"
check "broker still running" "$(kill -0 "$E2E_BROKER_PID" 2>/dev/null && echo 1)"

e2e_finish
