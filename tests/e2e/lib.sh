# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Helpers for the end-to-end scenarios (sourced, bash). A scenario does:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_init pressure "$@"          # root, libvirtd, test guest, cleanup trap
#   guest_define e2e-pressure-1 1024 256 min=256MiB
#   guest_start e2e-pressure-1; guest_wait_ready e2e-pressure-1
#   broker_config <<<'[broker]...'; broker_start  # temp config, socket, event log
#   ok "description" test ...       # TAP lines; e2e_finish prints the plan
#   e2e_finish
#
# Guests are named e2e-<scenario>-<n> and always destroyed and undefined on
# exit; /sys/kernel/mm/ksm/{run,pages_to_scan} are restored; ballastd is
# stopped. Exit 77 (skip) only when QEMU/libvirtd cannot run here at all.

set -uo pipefail

E2E_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_TOP=$(cd "$E2E_SRC/../.." && pwd)
E2E_URI=${E2E_URI:-qemu:///system}
E2E_GUESTS=()
E2E_N=0
E2E_FAILED=0
E2E_BROKER_PID=
E2E_KSM_SAVED=
E2E_T0=$SECONDS

virsh() { command virsh -q -c "$E2E_URI" "$@"; }

log() { echo "# $*"; }

# TAP line for an assertion: ok DESCRIPTION COMMAND...
ok() {
    local desc=$1
    shift
    E2E_N=$((E2E_N + 1))
    if "$@"; then
        echo "ok $E2E_N - $desc"
    else
        echo "not ok $E2E_N - $desc"
        E2E_FAILED=$((E2E_FAILED + 1))
    fi
}

# An assertion on a precomputed truth value with the figures in the text.
check() {
    local desc=$1 cond=$2
    E2E_N=$((E2E_N + 1))
    if [ "$cond" = 1 ] || [ "$cond" = true ]; then
        echo "ok $E2E_N - $desc"
    else
        echo "not ok $E2E_N - $desc"
        E2E_FAILED=$((E2E_FAILED + 1))
    fi
}

# Give up on the scenario: one failed line, then cleanup via the trap.
bail() {
    E2E_N=$((E2E_N + 1))
    echo "not ok $E2E_N - $*"
    E2E_FAILED=$((E2E_FAILED + 1))
    e2e_finish
}

e2e_skip() {
    echo "1..0 # SKIP $*"
    exit 77
}

# Figures recorded by a scenario, printed in a block at the end and appended to
# $E2E_FIGURES (if set) for the suite summary.
E2E_FIGS=()
figure() {
    E2E_FIGS+=("$1: $2")
    log "FIGURE $1: $2"
    [ -n "${E2E_FIGURES:-}" ] && echo "$E2E_NAME $1: $2" >>"$E2E_FIGURES"
    return 0
}

e2e_finish() {
    local f
    for f in "${E2E_FIGS[@]}"; do log "figure: $f"; done
    echo "1..$E2E_N"
    log "$E2E_NAME: $((E2E_N - E2E_FAILED))/$E2E_N passed in $((SECONDS - E2E_T0)) s"
    if [ "$E2E_FAILED" -gt 0 ]; then
        echo "FAIL: $E2E_NAME ($E2E_FAILED failed)"
        exit 1
    fi
    echo "PASS: $E2E_NAME"
    exit 0
}

# ---- setup and cleanup ----

e2e_cleanup() {
    local g
    trap - EXIT INT TERM
    broker_stop >/dev/null 2>&1
    for g in "${E2E_GUESTS[@]}"; do
        virsh destroy "$g" >/dev/null 2>&1
        virsh undefine "$g" >/dev/null 2>&1
    done
    ksm_restore
    if [ -n "${E2E_WORK:-}" ] && [ -d "$E2E_WORK" ]; then
        if [ "$E2E_FAILED" -gt 0 ] || [ -n "${E2E_KEEP:-}" ]; then
            echo "# logs kept in $E2E_WORK"
        else
            rm -rf "$E2E_WORK"
        fi
    fi
}

# e2e_init NAME [BUILD_DIR]
e2e_init() {
    E2E_NAME=$1
    E2E_BUILD=$(realpath "${2:-${BALLAST_BUILD:-$E2E_TOP/build}}")
    echo "# e2e $E2E_NAME: $(date -u +%FT%TZ), build $E2E_BUILD"
    [ "$(id -u)" = 0 ] || e2e_skip "needs root (libvirt qemu:///system, /sys/kernel/mm/ksm)"
    command -v qemu-system-x86_64 >/dev/null || e2e_skip "qemu-system-x86_64 is not installed"
    command -v jq >/dev/null || bail "jq is not installed (apt-get install jq)"
    if ! "$E2E_TOP/tools/libvirtd-up.sh"; then
        e2e_skip "libvirtd cannot run here"
    fi
    E2E_WORK=$(mktemp -d "/tmp/ballast-e2e-$E2E_NAME.XXXXXX")
    chmod 0755 "$E2E_WORK"
    trap e2e_cleanup EXIT
    trap 'echo "# interrupted" >&2; exit 130' INT TERM HUP PIPE

    E2E_CHAN=$E2E_BUILD/tests/e2e/e2e-chan
    BALLASTD=$E2E_BUILD/host-broker/ballastd
    BALLASTCTL=$E2E_BUILD/host-broker/ballastctl
    [ -x "$E2E_CHAN" ] || bail "$E2E_CHAN not built"
    E2E_GUEST_DIR=$E2E_BUILD/tests/e2e/guest
    if ! "$E2E_SRC/build-guest.sh" "$E2E_GUEST_DIR" "$E2E_BUILD" >"$E2E_WORK/build-guest.log" 2>&1; then
        cat "$E2E_WORK/build-guest.log"
        bail "building the test guest failed"
    fi
    grep -q 'stand-in' "$E2E_WORK/build-guest.log" && bail "test guest built with the stub agent"
    # Leftovers of an interrupted earlier run of this scenario.
    local g
    for g in $(command virsh -q -c "$E2E_URI" list --all --name 2>/dev/null | grep "^e2e-$E2E_NAME-"); do
        virsh destroy "$g" >/dev/null 2>&1
        virsh undefine "$g" >/dev/null 2>&1
    done
    return 0
}

# ---- guests ----

# guest_define NAME MAX_MIB CUR_MIB [agent=MODE] [POLICY_ATTR=VALUE ...]
#   POLICY_ATTR are the ballast metadata attributes (min=, shares=, ksm=, mode=).
#   agent= selects what the guest runs on org.ballast.agent.0 (agent, none,
#   hostile, newer, liar).
guest_define() {
    local name=$1 max_mib=$2 cur_mib=$3
    shift 3
    local attrs="" agent=agent kv
    for kv in "$@"; do
        case $kv in
        agent=*) agent=${kv#agent=} ;;
        *=*) attrs+=" ${kv%%=*}=\"${kv#*=}\"" ;;
        esac
    done
    local xml=$E2E_WORK/$name.xml
    : >"$E2E_WORK/$name.console"
    cat >"$xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <metadata>
    <ballast:policy xmlns:ballast="https://ballast.dev/xmlns/policy/1"$attrs/>
  </metadata>
  <memory unit='KiB'>$((max_mib * 1024))</memory>
  <currentMemory unit='KiB'>$((cur_mib * 1024))</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <loader type='rom'>/usr/share/qemu/qboot.rom</loader>
    <kernel>$E2E_GUEST_DIR/vmlinuz</kernel>
    <initrd>$E2E_GUEST_DIR/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet ballast.agent=$agent</cmdline>
  </os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='$E2E_WORK/$name.console'/>
      <target port='0'/>
    </serial>
    <channel type='unix'>
      <target type='virtio' name='org.ballast.agent.0'/>
    </channel>
    <channel type='unix'>
      <target type='virtio' name='org.ballast.test.0'/>
    </channel>
    <memballoon model='virtio'>
      <stats period='1'/>
    </memballoon>
  </devices>
</domain>
EOF
    # qboot (qemu-system-data) boots faster than SeaBIOS; without it, SeaBIOS.
    if [ -n "${E2E_NO_QBOOT:-}" ] || [ ! -f /usr/share/qemu/qboot.rom ]; then
        sed -i '/qboot.rom/d' "$xml"
    fi
    virsh destroy "$name" >/dev/null 2>&1
    virsh undefine "$name" >/dev/null 2>&1
    E2E_GUESTS+=("$name")
    virsh define "$xml" >/dev/null || bail "virsh define $name failed"
}

guest_start() {
    virsh start "$1" >/dev/null || bail "virsh start $1 failed"
}

guest_destroy() { virsh destroy "$1" >/dev/null 2>&1; }

# The host end of the guest's org.ballast.test.0 port (libvirt picks the path).
guest_chan() {
    virsh dumpxml "$1" 2>/dev/null | tr -d '\n' |
        grep -o "<channel type='unix'>[^>]*<source [^>]*path='[^']*'/> *<target type='virtio' name='org.ballast.test.0'" |
        sed -n "s/.*path='\([^']*\)'.*/\1/p"
}

# guest_run NAME COMMAND [TIMEOUT_S]: run a shell command in the guest.
guest_run() {
    local sock
    sock=$(guest_chan "$1")
    [ -n "$sock" ] || { echo "guest_run: no test channel for $1" >&2; return 125; }
    "$E2E_CHAN" -t "${3:-30}" "$sock" "$2"
}

# guest_wait_ready NAME [TIMEOUT_S]: until the guest's command shell answers.
guest_wait_ready() {
    local deadline=$((SECONDS + ${2:-90}))
    while [ $SECONDS -lt $deadline ]; do
        guest_run "$1" true 3 >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "# $1 did not come up; console:" >&2
    tail -n 20 "$E2E_WORK/$1.console" >&2
    return 1
}

# guest_meminfo NAME FIELD -> kB value
guest_meminfo() {
    guest_run "$1" "grep '^$2:' /proc/meminfo" 10 | awk '{print $2}'
}

guest_vmstat() {
    guest_run "$1" "grep '^$2 ' /proc/vmstat" 10 | awk '{print $2}'
}

guest_qemu_pid() { cat "/run/libvirt/qemu/$1.pid" 2>/dev/null; }

# Balloon size libvirt reports (KiB).
guest_balloon_actual() {
    virsh domstats --balloon "$1" 2>/dev/null | sed -n 's/^ *balloon.current=//p'
}

# ---- broker ----

# broker_config: the broker's configuration file, from stdin (a heredoc).
broker_config() {
    cat >"$E2E_WORK/ballastd.conf"
}

# broker_start [EXTRA_ARGS...]: ballastd with the file broker_config wrote (or
# an empty one), its control socket and event log in the work directory. A
# restart appends to the same event log. E2E_BROKER_ARGS adds arguments (for
# example --dry-run, to see that the scenarios fail without a working broker).
broker_start() {
    [ -x "$BALLASTD" ] || bail "$BALLASTD not built"
    ksm_save # ballastd may own KSM; a kill -9 leaves no chance to restore it
    E2E_CONF=$E2E_WORK/ballastd.conf
    E2E_SOCK=$E2E_WORK/ballastd.sock
    E2E_EVENTS=$E2E_WORK/events.jsonl
    [ -f "$E2E_CONF" ] || : >"$E2E_CONF"
    touch "$E2E_EVENTS"
    "$BALLASTD" --connect "$E2E_URI" --config "$E2E_CONF" --control "$E2E_SOCK" \
        --event-log "$E2E_EVENTS" --verbose ${E2E_BROKER_ARGS:-} "$@" >>"$E2E_WORK/ballastd.log" 2>&1 &
    E2E_BROKER_PID=$!
    local deadline=$((SECONDS + 15))
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$E2E_BROKER_PID" 2>/dev/null; then
            tail -n 20 "$E2E_WORK/ballastd.log"
            bail "ballastd exited at start"
        fi
        [ -S "$E2E_SOCK" ] && return 0
        sleep 0.2
    done
    bail "ballastd's control socket $E2E_SOCK did not appear"
}

broker_stop() {
    [ -n "$E2E_BROKER_PID" ] || return 0
    kill -TERM "$E2E_BROKER_PID" 2>/dev/null
    local i
    for i in $(seq 50); do
        kill -0 "$E2E_BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$E2E_BROKER_PID" 2>/dev/null
    wait "$E2E_BROKER_PID" 2>/dev/null
    E2E_BROKER_PID=
}

broker_kill9() {
    kill -KILL "$E2E_BROKER_PID" 2>/dev/null
    wait "$E2E_BROKER_PID" 2>/dev/null
    E2E_BROKER_PID=
}

# CPU seconds (user + system) ballastd has used so far.
broker_cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz}' \
        "/proc/$E2E_BROKER_PID/stat"
}

# The status object (ballastctl prints it bare; the socket wraps it in {"ok","status"}).
ctl_status() { "$BALLASTCTL" --control "$E2E_SOCK" status --json | jq -c 'if .status then .status else . end'; }

# ---- event log ----

mono_now_us() { awk '{printf "%d\n", $1 * 1000000}' /proc/uptime; }

# ev FILTER: events (compact JSON) matching the jq condition FILTER.
ev() { jq -c "select($1)" "$E2E_EVENTS" 2>/dev/null; }

ev_count() { ev "$1" | wc -l; }

# ev_wait TIMEOUT_S FILTER: wait until an event matches; prints the first.
ev_wait() {
    local deadline=$((SECONDS + $1)) line
    while [ $SECONDS -lt $deadline ]; do
        line=$(ev "$2" | head -n1)
        if [ -n "$line" ]; then
            echo "$line"
            return 0
        fi
        sleep 0.25
    done
    return 1
}

# Mark the event log's current length; ev_since uses only later events.
ev_mark() { wc -l <"$E2E_EVENTS"; }
ev_since() { tail -n +"$(($1 + 1))" "$E2E_EVENTS" | jq -c "select($2)" 2>/dev/null; }
ev_wait_since() {
    local mark=$1 deadline=$((SECONDS + $2)) line
    while [ $SECONDS -lt $deadline ]; do
        line=$(ev_since "$mark" "$3" | head -n1)
        if [ -n "$line" ]; then
            echo "$line"
            return 0
        fi
        sleep 0.25
    done
    return 1
}

# ---- KSM ----

# Saved: run, pages_to_scan and what decides whether pages_to_scan can be
# written at all (with advisor_mode=scan-time the kernel refuses it: EINVAL),
# plus sleep_millisecs and smart_scan. ballastd owns KSM by default and a
# kill -9 leaves it no chance to put them back.
E2E_KSM_KEYS="advisor_mode smart_scan sleep_millisecs pages_to_scan run"
ksm_save() {
    [ -n "$E2E_KSM_SAVED" ] && return 0
    local k v
    E2E_KSM_SAVED=" "
    for k in $E2E_KSM_KEYS; do
        [ -f "/sys/kernel/mm/ksm/$k" ] || continue
        v=$(cat "/sys/kernel/mm/ksm/$k")
        # advisor_mode reads "[none] scan-time": keep the selected word
        [ "$k" = advisor_mode ] && v=$(echo "$v" | sed -n 's/.*\[\([a-z-]*\)\].*/\1/p')
        E2E_KSM_SAVED+="$k=$v "
    done
}

ksm_restore() {
    [ -n "$E2E_KSM_SAVED" ] || return 0
    local kv
    # run=0 first (no scanning while changing), then the advisor, then the rest.
    echo 0 >/sys/kernel/mm/ksm/run 2>/dev/null
    for kv in $E2E_KSM_SAVED; do
        [ -n "${kv#*=}" ] || continue
        echo "${kv#*=}" >"/sys/kernel/mm/ksm/${kv%%=*}" 2>/dev/null ||
            echo "# could not restore /sys/kernel/mm/ksm/${kv%%=*}=${kv#*=}" >&2
    done
    E2E_KSM_SAVED=
}

# ksm_merging NAME: ksm_merging_pages of the guest's QEMU process.
ksm_merging() {
    local pid
    pid=$(guest_qemu_pid "$1")
    [ -n "$pid" ] && awk '/^ksm_merging_pages/{print $2}' "/proc/$pid/ksm_stat" 2>/dev/null
}

# jtrue JSON FILTER: true only when JSON is a non-empty document and FILTER
# yields true for it (plain `jq -e` passes on empty input).
jtrue() {
    [ -n "$1" ] && [ "$(jq -c "$2" <<<"$1" 2>/dev/null | tail -n1)" = true ]
}
