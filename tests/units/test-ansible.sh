#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The example playbook of contrib/ansible passes `ansible-playbook --syntax-check`,
# and its rollback task runs only when asked for (tag "never").
#   test-ansible.sh SOURCE_DIR
set -uo pipefail
src=$(realpath "$1")
command -v ansible-playbook >/dev/null ||
    { echo "1..0 # SKIP ansible-playbook is not installed (ansible-core, tools/deps.sh)"; exit 77; }
work=$(mktemp -d /tmp/ballast-ansible-XXXXXX)
trap 'rm -rf "$work"' EXIT
export ANSIBLE_HOME=$work ANSIBLE_LOCAL_TEMP=$work/tmp ANSIBLE_NOCOLOR=1
cd "$src/contrib/ansible" || exit 1
n=0 failed=0
ok() {
    n=$((n + 1))
    if [ "$2" = 1 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=$((failed + 1)); fi
}
out=$(ansible-playbook --syntax-check -i inventory.example ballast-host.yml 2>&1)
rc=$?
[ $rc = 0 ] || echo "$out" | sed 's/^/# /'
ok "ansible-playbook --syntax-check ballast-host.yml" "$([ $rc = 0 ] && echo 1)"
all=$(ansible-playbook --list-tasks -i inventory.example ballast-host.yml 2>&1)
rb=$(ansible-playbook --list-tasks --tags rollback -i inventory.example ballast-host.yml 2>&1)
ok "the rollback (ballastctl release --all) is not in a plain run" \
    "$(! echo "$all" | grep -q 'Rollback' && echo 1)"
ok "--tags rollback runs it, alone" \
    "$(echo "$rb" | grep -q 'Rollback' && [ "$(echo "$rb" | grep -c 'TAGS: \[[a-z]')" = 1 ] && echo 1)"
echo "1..$n"
[ $failed = 0 ]
