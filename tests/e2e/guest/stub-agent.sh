#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Stand-in for ballast-agent, only to validate the test guest before the agent
# exists (BALLAST_E2E_STUB_AGENT=1). The e2e suite never runs with it.
exec 3<>/dev/virtio-ports/org.ballast.agent.0
seq=0
echo '{"type":"hello","v":1,"agent":"stub"}' >&3
while true; do
    seq=$((seq + 1))
    echo "{\"type\":\"report\",\"v\":1,\"seq\":$seq}" >&3
    sleep 1
done
