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

# The daemons outlive the caller: they must not inherit its descriptors. A
# caller run by `flock /tmp/ballast-e2e.lock ...` has the lock open on fd 3 or
# so, and a libvirtd holding it keeps every later end-to-end run waiting.
daemon() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && eval "exec $fd>&-"
        done
        exec "$@"
    )
}
mkdir -p /run/libvirt
pgrep -x virtlogd >/dev/null || daemon /usr/sbin/virtlogd -d
pgrep -x libvirtd >/dev/null || daemon /usr/sbin/libvirtd -d

deadline=$((SECONDS + timeout_s))
while [ $SECONDS -lt $deadline ]; do
    if virsh -c "$uri" version >/dev/null 2>&1; then
        exit 0
    fi
    sleep 0.2
done
echo "libvirtd-up: $uri does not answer after ${timeout_s}s" >&2
exit 1
