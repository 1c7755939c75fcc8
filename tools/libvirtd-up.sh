#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Start libvirtd (and virtlogd) without systemd, idempotently, and wait until
# qemu:///system answers. Used by the end-to-end suite, the demo and CI, where
# there is no init system to do it.
#
# Exit status: 0 when libvirtd answers, 1 when it could not be started.
set -u

uri=qemu:///system
timeout_s=${LIBVIRTD_UP_TIMEOUT:-20}

if virsh -c "$uri" version >/dev/null 2>&1; then
    exit 0
fi

# A root-only /dev/kvm makes libvirt re-probe QEMU at every start (~4 s each);
# group kvm with 0660 avoids it. Harmless when it fails (no kvm group, no node).
if [ -e /dev/kvm ]; then
    chgrp kvm /dev/kvm 2>/dev/null && chmod 0660 /dev/kvm 2>/dev/null
fi

# The daemons must not inherit our descriptors: under `flock LOCK command`
# (the e2e lock) fd 3 is the lock, and a libvirtd started or restarted
# (test-faults) under it would keep the lock for as long as it runs, leaving
# every later scenario waiting.
start_daemon() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && eval "exec $fd>&-"
        done
        exec "$@"
    )
}

mkdir -p /run/libvirt
pgrep -x virtlogd >/dev/null || start_daemon /usr/sbin/virtlogd -d
pgrep -x libvirtd >/dev/null || start_daemon /usr/sbin/libvirtd -d

deadline=$((SECONDS + timeout_s))
while [ $SECONDS -lt $deadline ]; do
    if virsh -c "$uri" version >/dev/null 2>&1; then
        exit 0
    fi
    sleep 0.2
done
echo "libvirtd-up: $uri does not answer after ${timeout_s}s" >&2
exit 1
