#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One version: meson.build's (passed in), debian/changelog's upstream part and
# what each built binary prints for --version must all agree.
#   test-version.sh VERSION CHANGELOG BINARY...
set -u
want=$1 changelog=$2
shift 2
fail=0
# "ballast (0.1.0) unstable; ..." or "ballast (0.1.0-1) ..."
deb=$(sed -n '1s/^[a-z0-9.+-]* (\([^)]*\)).*/\1/p' "$changelog")
deb_upstream=${deb%-*}
if [ "$deb_upstream" = "$want" ]; then
    echo "ok - debian/changelog $deb matches meson.build $want"
else
    echo "not ok - debian/changelog says $deb, meson.build $want: add a changelog entry (dch -v $want)"
    fail=1
fi
for bin in "$@"; do
    out=$("$bin" --version 2>&1 | head -n1)
    case " $out " in
    *" $want "*) echo "ok - ${bin##*/} --version: $out" ;;
    *) echo "not ok - ${bin##*/} --version says '$out', not $want"; fail=1 ;;
    esac
done
exit $fail
