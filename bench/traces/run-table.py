#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Run ballast-sim over every trace and host size of bench/traces/runs.txt
and print the Markdown table bench/README.md publishes.

    bench/traces/run-table.py BUILD/tools/sim/ballast-sim [--policy LIST] [--seed S]

Each cell: reclaimed GiB·h / stall VM·s / OOM kills / host-short s / moved GiB.
"""
import json
import os
import platform
import subprocess
import sys
import time

POLICIES = ["ballast", "static", "mom", "proxmox", "oracle"]


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: run-table.py PATH-TO-ballast-sim [--policy LIST] [--seed S]")
    sim = sys.argv[1]
    extra = sys.argv[2:]
    policies = POLICIES
    if "--policy" in extra:
        policies = extra[extra.index("--policy") + 1].split(",")
    here = os.path.dirname(os.path.abspath(__file__))
    runs = []
    with open(os.path.join(here, "runs.txt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, host, ratio = line.split()
                runs.append((name, int(host), ratio))
    print("| trace | Σmax/host | " + " | ".join(policies) + " |")
    print("|---|---|" + "---|" * len(policies))
    t0 = time.monotonic()
    for name, host, ratio in runs:
        out = subprocess.run([sim, "--trace", os.path.join(here, name + ".csv"), "--host-mib",
                              str(host), "--json", "--policy", ",".join(policies)] + extra,
                             check=True, capture_output=True, text=True).stdout
        res = json.loads(out)["policies"]
        cells = []
        for p in policies:
            r = res[p]
            cells.append("%.0f / %.0f / %d / %.0f / %.0f" % (
                r["reclaimed_gib_h"], r["stall_vm_s"], r["oom_kills"], r["host_short_s"],
                r["moved_gib"]))
        print("| %s | %s | %s |" % (name, ratio, " | ".join(cells)), flush=True)
    print("\n%d runs in %.0f s on %s, %d CPUs (%s)" % (len(runs), time.monotonic() - t0,
                                                     platform.machine(), os.cpu_count(),
                                                     platform.platform()))


if __name__ == "__main__":
    main()
