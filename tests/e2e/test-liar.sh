#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A liar beside an honest guest on a short host (docs/policy.md, rule 8).
# The liar's channel carries a lying reporter (e2e-talker --liar: MemAvailable
# 8 MiB and PSI stalls every second; it touches nothing) and starts with its
# balloon at its 1 GiB maximum. The honest guest starts at 256 MiB and grows a
# workload (memhog). The host is made short through configuration: the reserve
# is the host's MemTotal minus POOL_MIB, so the guests together are entitled
# to POOL_MIB, and the host's MemAvailable falls below the reserve once the
# host uses more than POOL_MIB (two TCG guests and the workload). Asserted: the
# honest workload completes without an OOM kill, and the liar never holds
# more than its entitlement (as ballastctl status shows it) for longer than
# one reclaim interval. Printed: the liar's balloon and entitlement over time.
#
#   test-liar.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"
e2e_init liar "$@"

liar=e2e-liar-1
honest=e2e-liar-2
pool_mib=${POOL_MIB:-1024}
hog_mib=200
interval_s=5 # reclaim_interval_ms below
guest_define "$liar" 1024 1024 agent=liar min=256MiB shares=1000
guest_define "$honest" 1024 256 min=256MiB shares=3000
guest_start "$liar"
guest_start "$honest"
guest_wait_ready "$liar" 90 || bail "$liar did not boot"
guest_wait_ready "$honest" 90 || bail "$honest did not boot"

host_total_kib=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)
host_avail_kib=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo)
reserve_mib=$((host_total_kib / 1024 - pool_mib))
log "host MemTotal $((host_total_kib / 1024)) MiB, MemAvailable $((host_avail_kib / 1024)) MiB -> host_reserve $reserve_mib MiB (guests' pool $pool_mib MiB)"
# The host is short (MemAvailable below the reserve) once it uses more than
# the pool: QEMU and the guests' touched memory, growing with the workload.
log "host uses $(((host_total_kib - host_avail_kib) / 1024)) MiB now; short from $pool_mib MiB on"
broker_config <<EOF
[broker]
interval_ms=1000

[policy]
host_reserve=${reserve_mib}MiB
reclaim_interval_ms=$((interval_s * 1000))
EOF
# Only this scenario's guests: the pool is theirs alone.
broker_start --only "e2e-liar-*"
# The liar says hello once, maybe before the broker listens: its reports count.
ev_wait 30 ".event==\"report\" and .vm==\"$liar\"" >/dev/null || bail "no report from $liar"
ev_wait 30 ".event==\"hello\" and .vm==\"$honest\"" >/dev/null || bail "no hello from $honest"
ev_wait 15 ".event==\"report\" and .vm==\"$honest\"" >/dev/null || bail "no report from $honest"
oom0=$(guest_vmstat "$honest" oom_kill)

# The honest workload grows 40 MiB/s to 200 MiB and is held for 10 s.
t0=$SECONDS
guest_run "$honest" "rm -f /tmp/mh.rc; (memhog --size $hog_mib --rate 40 --hold 10 >/tmp/mh.log 2>&1; echo \$? >/tmp/mh.rc) &" 10
# Samples: seconds, liar actual, liar entitlement, honest actual, honest entitlement (KiB; 0: none).
: >"$E2E_WORK/samples"
rc=
deadline=$((SECONDS + 90))
while [ $SECONDS -lt $deadline ]; do
    st=$(ctl_status)
    jq -r --arg l "$liar" --arg h "$honest" --arg t $((SECONDS - t0)) \
        '.vms as $v | [$t] + ([$l, $h] | map(. as $n | $v[] | select(.name == $n) |
         [.actual_kib // 0, .entitlement_kib // 0]) | add) | join(" ")' <<<"$st" >>"$E2E_WORK/samples"
    if [ -z "$rc" ]; then
        rc=$(guest_run "$honest" "cat /tmp/mh.rc 2>/dev/null" 10)
        [ -n "$rc" ] && t_done=$((SECONDS - t0))
    fi
    [ -n "$rc" ] && [ $((SECONDS - t0)) -ge $((t_done + interval_s)) ] && break
    sleep 1
done
oom1=$(guest_vmstat "$honest" oom_kill)
log "memhog: $(guest_run "$honest" "tail -n 2 /tmp/mh.log" | tr '\n' ' ')"
ev ".event==\"decision\"" | jq -r '"#   \(.vm) \(.kind) \(.from_kib / 1024 | floor) -> \(.target_kib / 1024 | floor) MiB applied=\(.applied): \(.reason)"' | head -n 30
ev ".event==\"note\"" | jq -r '"#   note: \(.text)"' | sort -u | head -n 8

# The figures: the liar's balloon and entitlement over time, and the honest outcome.
log "t(s) liar(MiB) liar-entitled honest(MiB) honest-entitled"
awk '{printf "#   %3d %6d %6d %6d %6d\n", $1, $2 / 1024, $3 / 1024, $4 / 1024, $5 / 1024}' "$E2E_WORK/samples"
series=$(awk '$1 % 5 == 0 {printf "%s%ds %d/%d", sep, $1, $2 / 1024, $3 / 1024; sep = ", "}' "$E2E_WORK/samples")
figure "liar held/entitled MiB over time" "$series"
honest_peak=$(awk '{print $4}' "$E2E_WORK/samples" | sort -n | tail -n1)
figure "honest outcome" "memhog $hog_mib MiB exit ${rc:-none} after ${t_done:-?} s, oom_kill $oom0 -> $oom1, balloon peak $((${honest_peak:-0} / 1024)) MiB"

check "the honest workload completed (exit ${rc:-none})" "$([ "$rc" = 0 ] && echo 1)"
check "no OOM kill in the honest guest (oom_kill $oom0 -> $oom1)" "$([ "$oom0" = "$oom1" ] && echo 1)"
n_ent=$(awk '$3 > 0 && $5 > 0' "$E2E_WORK/samples" | wc -l)
check "entitlements shown while the host is short ($n_ent of $(wc -l <"$E2E_WORK/samples") samples)" \
    "$([ "$n_ent" -gt 0 ] && echo 1)"
taken=$(ev_count ".event==\"decision\" and .vm==\"$liar\" and .kind==\"inflate\" and .applied==true and (.reason | test(\"entitlement\"))")
check "the liar was reclaimed for being above its entitlement ($taken applied decisions)" \
    "$([ "$taken" -gt 0 ] && echo 1)"
# Entitlement binds while the host is short (policy rule 10): from one
# reclaim interval (+1 s for the status to follow) after the host turned
# short, in each stretch of samples that show an entitlement, above the
# largest entitlement shown in the last interval by more than the balloon
# tolerance: a violation. A stretch ends when the host is no longer short
# (no entitlement shown): meanwhile the liar may hold spare memory, and its
# balloon starts down again from there when the next stretch begins.
# (Counted from the first entitlement ever shown, a host that turned short,
# then comfortable for 4 s, then short again failed it: 654 MiB at 8 s, on its
# way down at the balloon's TCG speed, entitlement first shown at 2 s.)
viol=$(awk -v w=$((interval_s + 1)) -v tol=$((16 * 1024)) '
    {
        t[NR] = $1; a[NR] = $2; e[NR] = $3
        if ($3 > 0 && (NR == 1 || e[NR - 1] == 0)) start = $1
        s[NR] = $3 > 0 ? start : -1
    }
    END {
        for (i = 1; i <= NR; i++) {
            if (s[i] < 0 || t[i] < s[i] + w) continue
            m = 0
            for (j = 1; j <= i; j++) if (t[j] >= t[i] - w && s[j] == s[i] && e[j] > m) m = e[j]
            if (m > 0 && a[i] > m + tol) printf "%ds: %d MiB > %d MiB; ", t[i], a[i] / 1024, m / 1024
        }
    }' "$E2E_WORK/samples")
check "the liar never held more than its entitlement after one reclaim interval${viol:+ ($viol)}" \
    "$([ -z "$viol" ] && echo 1)"

e2e_finish
