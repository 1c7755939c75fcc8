#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Rewrite what the configuration engine generates from its key table
# (host-broker/config-keys.c): the marked blocks of docs/configuration.md,
# docs/policy.md and docs/ksm.md, packaging/ballastd.conf.5 and
# packaging/ballastd.conf. tests/broker/test-config.c (/config/docs-in-sync)
# fails until they are equal.
#
#   tools/update-config-docs.sh BUILDDIR
set -eu
build=${1:?usage: $0 BUILDDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
ballastd=$build/host-broker/ballastd
[ -x "$ballastd" ] || { echo "$0: $ballastd: not built" >&2; exit 1; }

"$ballastd" --print-config-doc=man >"$top/packaging/ballastd.conf.5"
"$ballastd" --print-config-doc=example >"$top/packaging/ballastd.conf"

# A block: "<!-- ballastd --print-config-doc=FORMAT ... -->" up to
# "<!-- end of generated text -->"; its lines in between are replaced.
for doc in docs/configuration.md docs/policy.md docs/ksm.md; do
    tmp=$(mktemp)
    awk -v ballastd="$ballastd" '
        /^<!-- ballastd --print-config-doc=/ {
            print
            fmt = $3; sub(/^--print-config-doc=/, "", fmt)
            cmd = ballastd " --print-config-doc=" fmt
            while ((cmd | getline line) > 0) print line
            close(cmd)
            skip = 1
            next
        }
        /^<!-- end of generated text -->/ { skip = 0 }
        !skip { print }
    ' "$top/$doc" >"$tmp"
    mv "$tmp" "$top/$doc"
done
