#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# KSM live exclusion. Two identical guests merge pages (run=1,
# pages_to_scan=5000; restored afterwards). One of them carries ksm="never" in
# its metadata; once ballastd runs (with QEMU monitor use allowed), that
# guest's QEMU must lose its merged pages (< 5 % of before), its persistent XML
# must gain <nosharepages/>, while the other guest stays merged and its figures
# in `ballastctl status --json` match its /proc/<pid>/ksm_stat.
#
#   test-ksm.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"
e2e_init ksm "$@"

[ -f /sys/kernel/mm/ksm/run ] || e2e_skip "host kernel without KSM"
keep=e2e-ksm-1
excl=e2e-ksm-2
ksm_save
# the kernel's advisor (6.7+) would refuse a pages_to_scan of our own
[ -f /sys/kernel/mm/ksm/advisor_mode ] && echo none >/sys/kernel/mm/ksm/advisor_mode
echo 5000 >/sys/kernel/mm/ksm/pages_to_scan || bail "cannot write /sys/kernel/mm/ksm/pages_to_scan"
echo 1 >/sys/kernel/mm/ksm/run || bail "cannot write /sys/kernel/mm/ksm/run"

guest_define "$keep" 512 512 min=256MiB ksm=always
guest_define "$excl" 512 512 min=256MiB ksm=never
guest_start "$keep"
guest_start "$excl"
guest_wait_ready "$keep" 90 || bail "$keep did not boot"
guest_wait_ready "$excl" 90 || bail "$excl did not boot"

# Wait until both QEMUs have merged a good number of pages.
for i in $(seq 90); do
    m1=$(ksm_merging "$keep")
    m2=$(ksm_merging "$excl")
    [ "${m1:-0}" -ge 5000 ] && [ "${m2:-0}" -ge 5000 ] && break
    sleep 1
done
sleep 5 # let ksmd finish its first full scans
m1=$(ksm_merging "$keep")
m2=$(ksm_merging "$excl")
log "merging pages before: $keep $m1, $excl $m2 (after $((i + 5)) s)"
check "both guests merge pages before exclusion ($keep $m1, $excl $m2, >= 5000 each)" \
    "$([ "${m1:-0}" -ge 5000 ] && [ "${m2:-0}" -ge 5000 ] && echo 1)"
figure "KSM merging pages before" "$keep $m1, $excl $m2"
excl_before=${m2:-0}

broker_config <<EOF
[broker]
interval_ms=1000
allow_qemu_monitor=true

[ksm]
manage=false
EOF
broker_start
ex=$(ev_wait 60 ".event==\"ksm-exclude\" and .vm==\"$excl\"") || bail "no ksm-exclude event for $excl"
log "ksm-exclude: $ex"
check "exclusion applied live and persistently" \
    "$(jtrue "$ex" '.applied == true and .live == true and .persistent == true' && echo 1)"
check "the exclusion is pending until seen" "$(jtrue "$ex" '.state == "pending"' && echo 1)"
eff=$(ev_wait 30 ".event==\"ksm-exclusion\" and .vm==\"$excl\"") || bail "no ksm-exclusion event for $excl"
log "ksm-exclusion: $eff"
check "the exclusion was seen to take effect (smaps mg / merging pages): persistent" \
    "$(jtrue "$eff" '.state == "persistent"' && echo 1)"
t_ex=$SECONDS
for i in $(seq 60); do
    m2=$(ksm_merging "$excl")
    [ "${m2:-0}" -lt $((excl_before / 20)) ] && break
    sleep 1
done
m1=$(ksm_merging "$keep")
log "merging pages after: $keep $m1, $excl $m2 ($((SECONDS - t_ex)) s after the exclusion)"
figure "KSM merging pages after" "$keep $m1, $excl $m2"
check "excluded guest's merging pages fell below 5 % ($excl_before -> $m2)" \
    "$([ "${m2:-999999}" -lt $((excl_before / 20)) ] && echo 1)"
check "the other guest is still merged ($m1 pages)" "$([ "${m1:-0}" -ge 1000 ] && echo 1)"
ev_count ".event==\"ksm-exclude\" and .vm==\"$keep\"" | grep -qx 0
check "the other guest was not excluded" "$([ $? = 0 ] && echo 1)"

# ballastctl status --json: the kept guest's own figures, the excluded flag.
sleep 3 # a fresh status cycle
status=$(ctl_status) || bail "ballastctl status --json failed"
proc_m1=$(ksm_merging "$keep")
st_m1=$(echo "$status" | jq ".vms[] | select(.name==\"$keep\") | .ksm.merging_pages")
st_ex1=$(echo "$status" | jq ".vms[] | select(.name==\"$keep\") | .ksm.excluded")
st_ex2=$(echo "$status" | jq ".vms[] | select(.name==\"$excl\") | .ksm.excluded")
st_m2=$(echo "$status" | jq ".vms[] | select(.name==\"$excl\") | .ksm.merging_pages")
log "status: $keep merging_pages=$st_m1 excluded=$st_ex1 (/proc says $proc_m1); $excl merging_pages=$st_m2 excluded=$st_ex2"
check "status reports $keep's merging pages ($st_m1 vs /proc $proc_m1, within 10 %)" \
    "$([ -n "$st_m1" ] && [ "$st_m1" != null ] &&
        awk -v a="$st_m1" -v b="$proc_m1" 'BEGIN{d=a-b; if (d<0) d=-d; exit !(b > 0 && d <= b * 0.10)}' && echo 1)"
proc_m2=$(ksm_merging "$excl")
check "status reports $excl's merging pages after the exclusion ($st_m2 vs /proc $proc_m2, < 5 % of $excl_before)" \
    "$([ -n "$st_m2" ] && [ "$st_m2" != null ] && [ "$st_m2" -lt $((excl_before / 20)) ] && echo 1)"
check "status: $keep not excluded, $excl excluded" \
    "$([ "$st_ex1" = false ] && [ "$st_ex2" = true ] && echo 1)"
st_state=$(echo "$status" | jq -r ".vms[] | select(.name==\"$excl\") | .ksm.exclusion")
check "status: $excl's exclusion is persistent ($st_state)" "$([ "$st_state" = persistent ] && echo 1)"

virsh dumpxml --inactive "$excl" | grep -q '<nosharepages/>'
check "$excl's persistent XML has <nosharepages/>" "$([ $? = 0 ] && echo 1)"
virsh dumpxml --inactive "$keep" | grep -q '<nosharepages/>'
check "$keep's persistent XML does not" "$([ $? != 0 ] && echo 1)"

# Re-inclusion, by a live metadata change: the reverse of both.
log "re-including $excl: metadata ksm=\"always\" (live and persistent)"
mark=$(ev_mark)
virsh metadata "$excl" https://ballast.dev/xmlns/policy/1 --key ballast \
    --set '<policy min="256MiB" ksm="always"/>' --live --config >/dev/null ||
    bail "virsh metadata failed"
inc=$(ev_wait_since "$mark" 60 ".event==\"ksm-include\" and .vm==\"$excl\"")
log "ksm-include: $inc"
check "re-inclusion applied live and persistently" \
    "$(jtrue "$inc" '.applied == true and .live == true and .persistent == true' && echo 1)"
for i in $(seq 60); do
    m2=$(ksm_merging "$excl")
    [ "${m2:-0}" -ge 5000 ] && break
    sleep 1
done
figure "KSM merging pages after re-inclusion" "$excl ${m2:-0} (after $i s)"
check "re-included guest merges again (${m2:-0} pages >= 5000)" "$([ "${m2:-0}" -ge 5000 ] && echo 1)"
virsh dumpxml --inactive "$excl" | grep -q '<nosharepages/>'
check "$excl's persistent XML lost <nosharepages/>" "$([ $? != 0 ] && echo 1)"

e2e_finish
