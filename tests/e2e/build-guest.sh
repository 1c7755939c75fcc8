#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the end-to-end test guest: a Debian cloud kernel and a busybox
# initramfs holding the virtio modules, /init, ballast-agent, memhog and
# e2e-talker.
#
#   tests/e2e/build-guest.sh OUTDIR BUILD_DIR
#
# OUTDIR receives vmlinuz and initrd.img. BUILD_DIR is a configured and built
# meson build directory (ballast-agent, memhog and e2e-talker are taken from it).
# Nothing is fetched beyond Debian packages: the kernel comes from
# linux-image-cloud-amd64 via `apt-get download` + `dpkg -x` (no install) and is
# cached in ${BALLAST_CACHE:-/var/cache/ballast-test}, keyed by package version.
# The initramfs is rebuilt only when one of its inputs changed.
#
# BALLAST_E2E_STUB_AGENT=1 puts a shell stand-in for the agent into the image
# (only to validate the guest before the agent exists; the suite refuses it).
set -euo pipefail

die() { echo "build-guest: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 OUTDIR BUILD_DIR"
outdir=$1
builddir=$(realpath "$2")
srcdir=$(cd "$(dirname "$0")" && pwd)
cache=${BALLAST_CACHE:-/var/cache/ballast-test}
busybox=${BUSYBOX:-/bin/busybox}

# The modules /init loads, in dependency order.
modules="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_balloon virtio_console"

[ -x "$busybox" ] || die "$busybox missing (apt-get install busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked (install busybox-static)"

# The statically linked agent when the build has it: the guest then holds no
# shared library at all, as a foreign userland (Alpine, busybox) would not.
agent=$builddir/guest-agent/ballast-agent-static
[ -x "$agent" ] || agent=$builddir/guest-agent/ballast-agent
memhog=$builddir/tests/e2e/memhog
talker=$builddir/tests/e2e/e2e-talker
[ -x "$memhog" ] || die "$memhog not built (ninja -C $builddir tests/e2e/memhog)"
[ -x "$talker" ] || die "$talker not built (ninja -C $builddir tests/e2e/e2e-talker)"
stub_agent=0
if [ ! -x "$agent" ]; then
    [ "${BALLAST_E2E_STUB_AGENT:-0}" = 1 ] || die "$agent not built (ninja -C $builddir guest-agent/ballast-agent)"
    stub_agent=1
fi

# ---- kernel: resolve, download and unpack once per package version ----
resolve_kernel() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1
}
kpkg=$(resolve_kernel)
if [ -z "$kpkg" ] && [ "$(id -u)" = 0 ]; then
    # Fresh machines and containers often ship without package lists.
    echo "build-guest: apt-get update (no package lists for linux-image-cloud-amd64)"
    apt-get update -qq >/dev/null 2>&1
    kpkg=$(resolve_kernel)
fi
[ -n "$kpkg" ] || die "cannot resolve linux-image-cloud-amd64 (apt-get update?)"
kver=$(apt-cache policy "$kpkg" | sed -n 's/^ *Candidate: //p')
[ -n "$kver" ] && [ "$kver" != "(none)" ] || die "no candidate version for $kpkg"
kdir=$cache/$kpkg-$kver
if [ ! -f "$kdir/.complete" ]; then
    echo "build-guest: fetching $kpkg $kver into $kdir"
    rm -rf "$kdir"
    mkdir -p "$kdir/deb"
    (cd "$kdir/deb" && apt-get download -q "$kpkg=$kver" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    deb=$(ls "$kdir"/deb/*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || die "apt-get download $kpkg=$kver failed"
    dpkg -x "$deb" "$kdir/root"
    touch "$kdir/.complete"
fi
vmlinuz=$(ls "$kdir"/root/boot/vmlinuz-* | head -n1)
krel=${vmlinuz##*/vmlinuz-}
kmods=$kdir/root/lib/modules/$krel
[ -d "$kmods" ] || die "no modules for $krel in $kdir"

# ---- cache check: rebuild the initramfs only when an input changed ----
inputs_sum() {
    {
        echo "$kpkg $kver $stub_agent boot-config"
        sha256sum "$0" "$srcdir/guest/init" "$busybox" "$memhog" "$talker"
        [ $stub_agent = 1 ] || sha256sum "$agent"
        if [ $stub_agent = 0 ]; then
            { ldd "$agent" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\//{print $1}' |
                xargs -r sha256sum
        fi
    } | sha256sum | cut -d' ' -f1
}
want=$(inputs_sum)
mkdir -p "$outdir"
outdir=$(realpath "$outdir")
if [ -f "$outdir/.stamp" ] && [ "$(cat "$outdir/.stamp")" = "$want" ] &&
   [ -f "$outdir/initrd.img" ] && [ -f "$outdir/vmlinuz" ]; then
    echo "build-guest: $outdir up to date ($krel)"
    exit 0
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/ballast-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,run,tmp,etc,root}
cp "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$stage/bin/$applet"
done

# Each module is either a loadable file (copied, decompressed if needed) or
# built into this kernel (listed in modules.builtin: nothing to load).
for m in $modules; do
    f=$(find "$kmods/kernel" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" \) | head -n1)
    if [ -n "$f" ]; then
        case $f in
        *.ko) cp "$f" "$stage/lib/modules/$m.ko" ;;
        *.xz) xz -dc "$f" >"$stage/lib/modules/$m.ko" ;;
        *.zst) zstd -dc "$f" >"$stage/lib/modules/$m.ko" ;;
        *.gz) gzip -dc "$f" >"$stage/lib/modules/$m.ko" ;;
        esac
        echo "$m" >>"$stage/lib/modules/order"
    elif grep -q "/$m.ko\$" "$kmods/modules.builtin" 2>/dev/null; then
        echo "build-guest: $m is built into $krel"
    else
        die "$m is neither a module nor built into $krel"
    fi
done
touch "$stage/lib/modules/order"

# The kernel's config, where a Debian system has it: the agent reads
# CONFIG_VIRTIO_BALLOON from /boot/config-<release>.
mkdir -p "$stage/boot"
[ -f "$kdir/root/boot/config-$krel" ] && cp "$kdir/root/boot/config-$krel" "$stage/boot/"
install -m 0755 "$srcdir/guest/init" "$stage/init"
install -m 0755 "$memhog" "$stage/usr/bin/memhog"
install -m 0755 "$talker" "$stage/usr/bin/e2e-talker"

# Copy a dynamically linked binary's libraries to the same paths in the image.
copy_libs() {
    local libs lib
    libs=$(ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\//{print $1}') || true
    for lib in $libs; do
        mkdir -p "$stage$(dirname "$lib")"
        cp -L "$lib" "$stage$lib"
    done
}
if [ $stub_agent = 1 ]; then
    echo "build-guest: WARNING: $agent missing, using the shell stand-in agent"
    install -m 0755 "$srcdir/guest/stub-agent.sh" "$stage/usr/sbin/ballast-agent"
else
    install -m 0755 "$agent" "$stage/usr/sbin/ballast-agent"
    copy_libs "$agent"
fi
copy_libs "$memhog"
copy_libs "$talker"
echo "root:x:0:0:root:/root:/bin/sh" >"$stage/etc/passwd"
echo "build-guest: shared libraries in the image: $(find "$stage" -name '*.so*' | wc -l)"

(cd "$stage" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) |
    gzip -1 >"$outdir/initrd.img.tmp"
mv "$outdir/initrd.img.tmp" "$outdir/initrd.img"
cp "$vmlinuz" "$outdir/vmlinuz"
chmod 0644 "$outdir/vmlinuz" "$outdir/initrd.img"
echo "$krel" >"$outdir/kernel-release"
cp "$kdir/root/boot/config-$krel" "$outdir/kernel-config" 2>/dev/null || : >"$outdir/kernel-config"
echo "$want" >"$outdir/.stamp"
echo "build-guest: $outdir/initrd.img ($(du -k "$outdir/initrd.img" | cut -f1) KiB, kernel $krel)"
