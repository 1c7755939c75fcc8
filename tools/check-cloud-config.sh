#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Validate every #cloud-config snippet in docs/images.md with cloud-init's own
# schema (Debian's cloud-init package), so the documented snippet stays valid.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
doc=${1:-$top/docs/images.md}
command -v cloud-init >/dev/null || { echo "check-cloud-config: cloud-init is not installed (tools/deps.sh)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Each ```yaml block whose first line is "#cloud-config" becomes one file.
awk -v dir="$work" '
    /^```yaml$/ { inblock = 1; n++; first = 1; next }
    /^```$/ && inblock { inblock = 0; next }
    inblock {
        if (first && $0 != "#cloud-config") { inblock = 0; next }
        first = 0
        print > (dir "/snippet-" n ".yaml")
    }' "$doc"
count=0
for f in "$work"/snippet-*.yaml; do
    [ -f "$f" ] || continue
    count=$((count + 1))
    if ! cloud-init schema --config-file "$f"; then
        echo "check-cloud-config: snippet $count in $doc is not valid cloud-config" >&2
        exit 1
    fi
done
[ "$count" -gt 0 ] || { echo "check-cloud-config: no #cloud-config snippet in $doc" >&2; exit 1; }
echo "check-cloud-config: $count snippet(s) valid"
