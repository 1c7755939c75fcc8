#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A minimal Debian 12 guest root with systemd and udev (mmdebstrap), as a
# tarball cached in ${BALLAST_CACHE:-/var/cache/ballast-test}, keyed by the
# package list and the options below: rebuilt only when they change.
#
#   tests/e2e/image/build-base.sh   -> prints the tarball's path
#
# The packages are the agent's run-time dependencies (those the .deb declares)
# beside systemd, udev and kmod, so that `dpkg -i ballast-agent_*.deb` inside
# the image needs no network, as in an offline image build.
set -euo pipefail

die() { echo "build-base: $*" >&2; exit 1; }

cache=${BALLAST_CACHE:-/var/cache/ballast-test}
suite=bookworm
mirror=${BALLAST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages="systemd,systemd-sysv,udev,kmod,procps,libglib2.0-0,libjson-c5,zlib1g"
# Docs, man pages and locales cost a third of the initramfs for nothing.
dpkgopts=(
    '--dpkgopt=path-exclude=/usr/share/doc/*'
    '--dpkgopt=path-exclude=/usr/share/man/*'
    '--dpkgopt=path-exclude=/usr/share/locale/*'
    '--dpkgopt=path-exclude=/usr/share/info/*'
)
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (tools/deps.sh)"
key=$(printf '%s\n' "$suite" "$mirror" "$packages" "${dpkgopts[@]}" minbase v1 |
    sha256sum | cut -c1-16)
out=$cache/debian12-base-$key.tar
if [ ! -s "$out" ]; then
    mkdir -p "$cache"
    echo "build-base: mmdebstrap $suite ($packages) -> $out" >&2
    mmdebstrap --quiet --format=tar --variant=minbase --include="$packages" "${dpkgopts[@]}" \
        "$suite" "$out.tmp" "$mirror" >&2 || { rm -f "$out.tmp"; die "mmdebstrap failed"; }
    mv "$out.tmp" "$out"
fi
echo "$out"
