#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The real ballastd binary against libvirt's test driver (tests/data/broker),
# its metrics listener scraped over HTTP: `promtool check metrics` accepts the
# scrape and the broker's decisions are in it; a bad address and a port in
# use stop it at start with one line and exit 1; a reload that asks for a
# taken port keeps the listener it has. Then the example alert rules:
# `promtool check rules` and `promtool test rules`.
#
#   test-metrics-scrape.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
ballastd=$build/host-broker/ballastd
n=0
failed=0
ok() {
    n=$((n + 1))
    if [ "$2" = 1 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=$((failed + 1)); fi
}
for tool in promtool curl; do
    command -v $tool >/dev/null || { echo "1..0 # SKIP $tool is not installed (tools/deps.sh)"; exit 77; }
done
work=$(mktemp -d /tmp/ballast-metrics-XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# A port nobody listens on (checked, not guessed blindly).
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo $p; return; }
    done
    return 1
}
port=$(free_port)
uri="test://$src/tests/data/broker/test-node.xml"
printf '[broker]\ntick_ms = 100\n[metrics]\nlisten = 127.0.0.1:%s\n' "$port" >"$work/ballastd.conf"
# (backgrounded: exec, so that $! is ballastd itself, for kill -HUP)
run() {
    exec "$ballastd" --connect "$uri" --host-root "$src/tests/data/broker/host-ok" \
        --config "$work/ballastd.conf" --control "$work/ctl-$1.sock" \
        --lock-file "$work/lock-$1" "${@:2}"
}

run 1 >"$work/log" 2>&1 &
pids+=($!)
scrape=$work/scrape.txt
for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/metrics" >"$scrape" 2>/dev/null &&
        grep -q 'ballast_vm_decisions_total{domain="bk-floor"' "$scrape" && break
    sleep 0.1
done
ok "scraped http://127.0.0.1:$port/metrics ($(wc -l <"$scrape") lines)" "$([ -s "$scrape" ] && echo 1)"
lint=$(promtool check metrics <"$scrape" 2>&1)
rc=$?
[ -n "$lint" ] && echo "$lint" | sed 's/^/# /'
ok "promtool check metrics accepts the scrape" "$([ $rc = 0 ] && [ -z "$lint" ] && echo 1)"
ok "bk-floor's floor decision is counted" \
    "$(grep -qx 'ballast_vm_decisions_total{domain="bk-floor",kind="deflate",reason="floor"} 1' "$scrape" && echo 1)"
ok "bk-floor's balloon target is its floor (3 GiB)" \
    "$(grep -qx 'ballast_vm_balloon_target_bytes{domain="bk-floor"} 3221225472' "$scrape" && echo 1)"
ok "build info carries the version" \
    "$(grep -qx "ballast_build_info{version=\"$("$ballastd" --version | cut -d' ' -f2)\"} 1" "$scrape" && echo 1)"
ok "cycles are timed" "$(grep -Eq '^ballast_cycle_duration_seconds_count [1-9]' "$scrape" && echo 1)"

# Port in use, bad address: one line, exit 1, nothing served.
out=$(timeout 10 "$ballastd" --connect "$uri" --config "$work/ballastd.conf" \
    --control "$work/ctl-2.sock" --lock-file "$work/lock-2" 2>&1)
rc=$?
echo "# $out"
ok "port in use: exit 1 with one line naming the address" \
    "$([ $rc = 1 ] && [ "$(echo "$out" | grep -c .)" = 1 ] && echo "$out" | grep -q "127.0.0.1:$port.*in use" && echo 1)"
for bad in localhost:9178 127.0.0.1 127.0.0.1:0 127.0.0.1:70000 '[::1'; do
    out=$(timeout 10 "$ballastd" --connect "$uri" --config "$work/ballastd.conf" \
        --control "$work/ctl-3.sock" --lock-file "$work/lock-3" --metrics-listen "$bad" 2>&1)
    rc=$?
    ok "--metrics-listen $bad: exit 1, one line ($out)" \
        "$([ $rc = 1 ] && [ "$(echo "$out" | grep -c .)" = 1 ] && echo "$out" | grep -qF "$bad" && echo 1)"
done
printf '[metrics]\nlisten = 127.0.0.1:x\n' >"$work/bad.conf"
out=$(timeout 10 "$ballastd" --connect "$uri" --config "$work/bad.conf" --control "$work/ctl-4.sock" --lock-file "$work/lock-4" 2>&1)
rc=$?
ok "[metrics] listen = 127.0.0.1:x: exit 1 naming file, line and key ($out)" \
    "$([ $rc = 1 ] && echo "$out" | grep -q 'bad.conf:2: \[metrics\] listen' && echo 1)"

# A reload that asks for a taken port (a second ballastd holds it): refused,
# the old listener serves on.
other=$(free_port)
run 5 --metrics-listen "127.0.0.1:$other" >"$work/log5" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$other/metrics" >/dev/null && break; sleep 0.1; done
printf '[broker]\ntick_ms = 100\n[metrics]\nlisten = 127.0.0.1:%s\n' "$other" >"$work/ballastd.conf"
kill -HUP "${pids[0]}"
for _ in $(seq 200); do grep -q "reload failed" "$work/log" && break; sleep 0.1; done
ok "reload to a taken port is refused and says so" \
    "$(grep -q "reload failed.*127.0.0.1:$other.*in use" "$work/log" && echo 1)"
# (a few tries: a loaded CI machine may be slow to answer, not deaf)
served=
for _ in 1 2 3; do
    curl -sf -m 10 -o "$work/after-reload.txt" "http://127.0.0.1:$port/metrics"
    rc=$?
    grep -q '^ballast_build_info' "$work/after-reload.txt" 2>/dev/null && { served=1; break; }
    echo "# curl :$port exit $rc"
    sleep 1
done
ok "the old listener still serves" "$served"
# ... and a good reload moves it.
third=$(free_port)
printf '[broker]\ntick_ms = 100\n[metrics]\nlisten = 127.0.0.1:%s\n' "$third" >"$work/ballastd.conf"
kill -HUP "${pids[0]}"
moved=
for _ in $(seq 200); do
    # (retried: on a loaded machine one scrape may time out)
    if curl -sf -m 10 "http://127.0.0.1:$third/metrics" | grep -q '^ballast_build_info' &&
        ! curl -sf -m 10 "http://127.0.0.1:$port/metrics" >/dev/null; then
        moved=1
        break
    fi
    sleep 0.1
done
ok "a good reload moves the listener to :$third" "$moved"

# The example alert rules.
out=$(promtool check rules "$src/contrib/prometheus/ballast-alerts.yml" 2>&1)
rc=$?
ok "promtool check rules contrib/prometheus/ballast-alerts.yml" "$([ $rc = 0 ] && echo 1)"
[ $rc = 0 ] || echo "$out" | sed 's/^/# /'
out=$(cd "$src/tests/broker" && promtool test rules ballast-alerts-test.yml 2>&1)
rc=$?
ok "promtool test rules: the alerts fire when they should" "$([ $rc = 0 ] && echo 1)"
[ $rc = 0 ] || echo "$out" | sed 's/^/# /'

echo "1..$n"
[ $failed = 0 ] || { tail -n 20 "$work/log" | sed 's/^/# /'; exit 1; }
exit 0
