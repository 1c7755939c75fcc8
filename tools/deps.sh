#!/bin/bash
# Install what ballast needs to build, test and run its demo on Debian 12.
# Idempotent: apt-get runs only when a package is missing, `apt-get update` at most once.
set -euo pipefail

PACKAGES=(
    # build
    gcc libc6-dev clang libclang-rt-14-dev meson ninja-build pkg-config
    libglib2.0-dev libjson-c-dev libvirt-dev libvirt-glib-1.0-dev
    libsoup-3.0-dev libsystemd-dev
    # host side of the end-to-end suite and the demo
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-system libvirt-clients
    qemu-system-x86 qemu-utils
    # test guest: busybox initramfs; a Debian kernel is fetched with apt-get download
    busybox-static
    # test scripts
    jq procps curl
    # metrics (promtool, and the prometheus server of the e2e scrape), the
    # units' checks (systemd-analyze, strace for the system-call filter), the
    # Ansible example's syntax check (ansible-core: 8 MB, where the full
    # `ansible` package with every collection is 250 MB and not needed)
    prometheus systemd strace ansible-core
    # Debian packages, the static agent and the Debian 12 test image (tests/e2e/test-image.sh)
    zlib1g-dev git debhelper dpkg-dev lintian mmdebstrap cloud-init
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}; run as root (or with sudo) to install them" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
