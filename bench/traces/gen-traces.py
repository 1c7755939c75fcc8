#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Write the fleet traces of bench/traces/ for ballast-sim (docs/simulator.md).

    bench/traces/gen-traces.py [OUTDIR]
    bench/traces/gen-traces.py --small FILE   (the unit test's trace: 8 VMs, 1 h)

Every trace: 40 VMs over 6 simulated hours, in CSV t_s,vm,max_mib,ws_mib,
shares,liar. Seeds are fixed, so the files are the same on every run; run it
again after changing a generator and commit the result. Overcommit is a
property of the host, not of the trace: bench/traces/runs.txt lists each trace
with host sizes for Σmax/host = 1.2, 1.6 and 2.0.
"""
import math
import os
import random
import sys

N_VMS = 40
DURATION = 6 * 3600
SIZES = [1024, 2048, 2048, 4096, 4096, 8192]  # MiB
RATIOS = [1.2, 1.6, 2.0]


class Vm:
    def __init__(self, rng, name, liar=False):
        self.name = name
        self.max = rng.choice(SIZES)
        self.shares = rng.choice([500, 1000, 1000, 2000])
        self.liar = 1 if liar else 0
        self.rows = []  # (t, ws)

    def set(self, t, ws):
        ws = max(0, min(self.max * 0.85, ws))
        ws = int(round(ws))
        if self.rows and self.rows[-1][1] == ws:
            return
        if self.rows and self.rows[-1][0] == t:
            self.rows[-1] = (t, ws)
        else:
            self.rows.append((t, ws))

    def ramp(self, t, to, rate):
        """Move the working set to `to` at `rate` MiB/s, a row per second."""
        now = self.rows[-1][1] if self.rows else 0
        while abs(to - now) > 1e-9:
            step = min(rate, abs(to - now))
            now += step if to > now else -step
            t += 1
            self.set(t, now)
        return t


def idle(rng, vm):
    base = vm.max * rng.uniform(0.08, 0.2)
    t = 0
    while t < DURATION:
        vm.set(t, base * rng.uniform(0.9, 1.1))
        t += rng.randint(300, 900)


def diurnal(rng, vm):
    low, high = vm.max * rng.uniform(0.1, 0.2), vm.max * rng.uniform(0.45, 0.75)
    phase = rng.uniform(0, 1)
    period = 3 * 3600
    for t in range(0, DURATION, 60):
        x = 0.5 - 0.5 * math.cos(2 * math.pi * (t / period + phase))
        vm.set(t, low + (high - low) * x + rng.uniform(-10, 10))


def bursty(rng, vm):
    base = vm.max * rng.uniform(0.08, 0.2)
    vm.set(0, base)
    t = rng.randint(60, 1800)
    while t < DURATION - 900:
        peak = vm.max * rng.uniform(0.4, 0.8)
        t = vm.ramp(t, peak, rng.uniform(20, 300))
        t += rng.randint(60, 600)
        t = vm.ramp(t, base, rng.uniform(50, 300))
        t += rng.randint(600, 2400)


def batch(rng, vm):
    base = vm.max * rng.uniform(0.08, 0.15)
    vm.set(0, base)
    t = rng.randint(0, 3600)
    while t < DURATION - 600:
        t = vm.ramp(t, vm.max * rng.uniform(0.5, 0.8), rng.uniform(20, 100))
        t += rng.randint(600, 2400)
        vm.set(t, base)
        t += rng.randint(600, 3600)


def leak(rng, vm):
    start = vm.max * rng.uniform(0.1, 0.2)
    rate = rng.uniform(2, 20) / 60  # MiB/s
    ws, t = start, 0
    while t < DURATION:
        vm.set(t, ws)
        t += 60
        ws += rate * 60
        if ws > vm.max * 0.8:  # the service is restarted
            ws = start


KINDS = {"idle": idle, "diurnal": diurnal, "bursty": bursty, "batch": batch, "leak": leak}


def make(name, seed, kinds, liars=0.0, n_vms=N_VMS):
    rng = random.Random(seed)
    vms = []
    for i in range(n_vms):
        vm = Vm(rng, "vm%02d" % i, liar=rng.random() < liars)
        KINDS[kinds[i % len(kinds)]](rng, vm)
        vm.rows = [r for r in vm.rows if r[0] < DURATION]
        vm.rows.append((DURATION, vm.rows[-1][1]))  # every VM lives to the end
        vms.append(vm)
    return name, vms


def write(outdir, name, vms):  # returns the sum of the VMs' maxima
    rows = []
    for vm in vms:
        for t, ws in vm.rows:
            rows.append((t, vm.name, vm.max, ws, vm.shares, vm.liar))
    rows.sort(key=lambda r: (r[0], r[1]))
    with open(os.path.join(outdir, name + ".csv"), "w") as f:
        f.write("t_s,vm,max_mib,ws_mib,shares,liar\n")
        for r in rows:
            f.write("%d,%s,%d,%d,%d,%d\n" % r)
    return sum(vm.max for vm in vms)


def main():
    global DURATION
    if len(sys.argv) == 3 and sys.argv[1] == "--small":
        DURATION = 3600
        name, vms = make("small", 201, list(KINDS), liars=0.15, n_vms=8)
        path = sys.argv[2]
        write(os.path.dirname(os.path.abspath(path)), os.path.basename(path)[:-4], vms)
        return
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    all_kinds = list(KINDS)
    traces = [
        make("idle", 101, ["idle"]),
        make("diurnal", 102, ["diurnal"]),
        make("bursty", 103, ["bursty"]),
        make("batch", 104, ["batch"]),
        make("leak", 105, ["leak"]),
        make("mix", 106, all_kinds),
        make("mix-liars", 107, all_kinds, liars=0.1),
    ]
    with open(os.path.join(outdir, "runs.txt"), "w") as f:
        f.write("# trace host_mib overcommit (written by gen-traces.py)\n")
        for name, vms in traces:
            total = write(outdir, name, vms)
            for ratio in RATIOS:
                f.write("%s %d %.1f\n" % (name, int(total / ratio), ratio))


if __name__ == "__main__":
    main()
