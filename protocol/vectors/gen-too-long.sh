#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Write the too-long vectors into DIR (default: .): they are 64 KiB and more,
# so they are generated rather than committed. See README.md.
set -eu
dir=${1:-.}
mkdir -p "$dir"
# A valid report whose unknown "padding" field makes the line $1 content bytes long.
padded() {
    head='{"type":"report","v":1,"seq":1,"uptime_ms":5,"reason":"periodic","mem":{"total_kib":4,"available_kib":3,"free_kib":2,"cached_kib":1,"swap_total_kib":0,"swap_free_kib":0,"committed_as_kib":5},"vmstat":{},"padding":"'
    n=$(( $1 - ${#head} - 2 ))
    printf '%s' "$head"
    head -c "$n" /dev/zero | tr '\0' x
    printf '"}\n'
}
# 65536 bytes of content plus '\n': one byte over the limit.
padded 65536 >"$dir/too-long-report-padding.json"
# Far over the limit, in a single line.
padded 200000 >"$dir/too-long-report-200k.json"
