#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# debian/ballast-broker.postrm purge, run in a private mount namespace where
# /sys/kernel/mm/ksm and /run are scratch tmpfs: the KSM settings a crashed
# ballastd left in /run/ballast/ksm-saved.ini are written back before
# /run/ballast goes; settings saved during another boot are left alone; a
# setting that cannot be restored keeps the file. Needs root (skips otherwise).
#   test-broker-postrm.sh POSTRM
set -u
postrm=$(realpath "$1")
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 77; }
unshare --mount true 2>/dev/null || { echo "1..0 # SKIP no mount namespaces here"; exit 77; }
boot=$(cat /proc/sys/kernel/random/boot_id)

# scenario SAVED_BOOT_ID BREAK_KEY: prints "run pages_to_scan advisor_mode ballast-dir rc"
scenario() {
    unshare --mount bash -s "$postrm" "$1" "$2" <<'INNER'
postrm=$1 saved_boot=$2 break_key=$3
mount -t tmpfs none /sys/kernel/mm/ksm && mount -t tmpfs none /run || exit 99
ksm=/sys/kernel/mm/ksm
echo 1 >$ksm/run; echo 5000 >$ksm/pages_to_scan; echo 20 >$ksm/sleep_millisecs
echo scan-time >$ksm/advisor_mode
[ -n "$break_key" ] && rm $ksm/$break_key && mkdir $ksm/$break_key
mkdir -p /run/ballast
printf '[ksm]\nboot_id=%s\nrun=0\npages_to_scan=100\nsleep_millisecs=200\nadvisor_mode=none\nsmart_scan=absent\n' \
    "$saved_boot" >/run/ballast/ksm-saved.ini
sh "$postrm" purge 2>/dev/null
rc=$?
echo "$(cat $ksm/run 2>/dev/null || echo x) $(cat $ksm/pages_to_scan) $(cat $ksm/advisor_mode) $([ -d /run/ballast ] && echo kept || echo gone) $rc"
INNER
}
n=0 fail=0
check() {
    n=$((n + 1))
    if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1: got '$2', want '$3'"; fail=1; fi
}
check "restored, then /run/ballast removed" "$(scenario "$boot" "")" "0 100 none gone 0"
check "saved during another boot: left alone" "$(scenario 00000000-0000-0000-0000-000000000000 "")" \
    "1 5000 scan-time gone 0"
check "a setting that cannot be written keeps the file" "$(scenario "$boot" run)" "x 100 none kept 0"
echo "1..$n"
exit $fail
