#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the Debian packages from a clean clone of the committed tree and check
# them, as CI does:
#   tools/build-deb.sh [OUTDIR]      (default build-deb/)
#
#   1. git clone HEAD into OUTDIR/src, dpkg-buildpackage -us -uc -b there
#      (DEB_BUILD_OPTIONS=nocheck unless BALLAST_DEB_CHECK=1: test-all.sh has
#      run the unit tests already)
#   2. lintian: no error (E:) tags; warnings and infos are printed
#   3. one version: debian/changelog = meson.build = the binaries' --version
#   4. ballast-broker unpacked into a scratch root: the shipped conffile
#      passes `ballastd --check-config` (when ballastd has it) and the units
#      pass `systemd-analyze verify`
# Exits non-zero on the first failure. The .debs stay in OUTDIR.
set -euo pipefail

die() { echo "build-deb: FAIL: $*" >&2; exit 1; }
say() { echo "build-deb: $*"; }

top=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$top/build-deb}")
for t in dpkg-buildpackage dh lintian git; do
    command -v "$t" >/dev/null || die "$t is not installed (tools/deps.sh)"
done

rm -rf "$out"
mkdir -p "$out"
git clone -q "$top" "$out/src"
opts="parallel=$(nproc)"
[ "${BALLAST_DEB_CHECK:-0}" = 1 ] || opts="nocheck $opts"
say "dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS=$opts)"
if ! (cd "$out/src" && DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1); then
    tail -n 30 "$out/build.log"
    die "dpkg-buildpackage failed (log: $out/build.log)"
fi
changes=$(ls "$out"/ballast_*_amd64.changes 2>/dev/null | head -n1)
[ -n "$changes" ] || changes=$(ls "$out"/ballast_*.changes | head -n1)
ls -l "$out"/*.deb

# ---- lintian ----
lintian --allow-root --pedantic -I "$changes" >"$out/lintian.txt" 2>&1 || true
sed 's/^/build-deb: lintian: /' "$out/lintian.txt"
if grep -q '^E: ' "$out/lintian.txt"; then
    die "lintian reports errors"
fi

# ---- one version ----
meson_v=$(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" "$top/meson.build" | head -n1)
deb_v=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
[ -n "$meson_v" ] || die "no version in meson.build"
[ "${deb_v%%-*}" = "$meson_v" ] || die "debian/changelog says $deb_v, meson.build $meson_v"
root=$out/root
for p in ballast-agent ballast-broker; do
    deb=$(ls "$out/${p}_${deb_v}_"*.deb) || die "no $p .deb for version $deb_v"
    dpkg-deb -x "$deb" "$root"
    [ "$(dpkg-deb -f "$deb" Version)" = "$deb_v" ] || die "$p: Version field differs"
done
for bin in usr/sbin/ballast-agent usr/sbin/ballastd usr/bin/ballastctl; do
    v=$("$root/$bin" --version | head -n1)
    case " $v " in
    *" $meson_v "*) say "$bin --version: $v" ;;
    *) die "$bin --version says '$v', not $meson_v" ;;
    esac
done
if dpkg-deb -f "$out"/ballast-agent_*.deb Depends | grep -q libvirt; then
    die "ballast-agent depends on libvirt"
fi

# ---- broker: conffile and units from the scratch root ----
[ -f "$root/etc/ballast/ballastd.conf" ] || die "no /etc/ballast/ballastd.conf in ballast-broker"
dpkg-deb -e "$out"/ballast-broker_*.deb "$out/broker-control"
grep -qx /etc/ballast/ballastd.conf "$out/broker-control/conffiles" || die "ballastd.conf is not a conffile"
if "$root/usr/sbin/ballastd" --help 2>&1 | grep -q -- --check-config; then
    "$root/usr/sbin/ballastd" --config "$root/etc/ballast/ballastd.conf" --check-config \
        >"$out/check-config.txt" 2>&1 || { cat "$out/check-config.txt"; die "ballastd --check-config rejects the shipped ballastd.conf"; }
    say "ballastd --check-config: the shipped configuration passes"
else
    say "ballastd has no --check-config in this tree: conffile check skipped"
fi
if command -v systemd-analyze >/dev/null; then
    # verify resolves ExecStart= against the running system: point it at the scratch root's binaries
    mkdir -p "$out/units"
    for u in ballast-agent.service ballastd.service; do
        sed "s|=/usr/|=$root/usr/|g" "$root/lib/systemd/system/$u" >"$out/units/$u"
    done
    if ! systemd-analyze verify --man=no "$out/units/ballast-agent.service" "$out/units/ballastd.service" \
        >"$out/verify.txt" 2>&1 || grep -q . "$out/verify.txt"; then
        cat "$out/verify.txt"
        die "systemd-analyze verify complains about the installed units"
    fi
    say "systemd-analyze verify: both units clean"
fi
grep -q '^\[Install\]' "$root/lib/systemd/system/ballast-agent.service" &&
    die "ballast-agent.service has an [Install] section"
say "OK: $(cd "$out" && ls ./*.deb | tr '\n' ' ')"
