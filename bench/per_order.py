#!/usr/bin/env python3
"""CPU time, context switches and disk writes per order, per process of a
running shop.

Usage: python3 bench/per_order.py DATA_DIR [ORDERS] [BAZAAR] [RATE]

DATA_DIR is a running `bazaar up --data-dir DATA_DIR` (seed it with enough
stock first: `bazaar seed --data-dir DATA_DIR --stock 100000`). Sums
utime + stime and voluntary + nonvoluntary context switches over every
thread (/proc/<pid>/task/*) of each service in up.json and of the shop's
nats-server, before and after `bazaar load --orders ORDERS --concurrency
32` (or, given RATE, `--rate RATE --concurrency 128`: orders started on a
fixed schedule), and divides by the orders. Disk writes are `write_bytes` of
/proc/<pid>/io: what the process caused to be sent to the disk (WAL
frames, checkpoints, the broker's store), not what it wrote to the page
cache. Linux only; standard library only.
"""

import glob
import json
import os
import subprocess
import sys
import time


def threads_of(pid):
    cpu = switches = 0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu += int(fields[11]) + int(fields[12])
            with open(f"{task}/status") as f:
                for line in f:
                    if "ctxt_switches" in line:
                        switches += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread ended between the listing and the read
    return cpu, switches, written(pid)


def written(pid):
    """Bytes the process caused to be sent to the storage layer."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    data_dir = sys.argv[1]
    orders = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    bazaar = sys.argv[3] if len(sys.argv) > 3 else "target/release/bazaar"
    pace = (["--rate", sys.argv[4], "--concurrency", "128"] if len(sys.argv) > 4
            else ["--concurrency", "32"])
    with open(f"{data_dir}/up.json") as f:
        up = json.load(f)
    pids = {s["instance"]: s["pid"] for s in up["services"]}
    nats = subprocess.run(
        ["pgrep", "-f", f"{data_dir}/nats"], capture_output=True, text=True
    ).stdout.split()
    if nats:
        pids["nats-server"] = int(nats[0])
    tick = os.sysconf("SC_CLK_TCK")
    before = {name: threads_of(pid) for name, pid in pids.items()}
    started = time.time()
    load = subprocess.run(
        [bazaar, "load", "--data-dir", data_dir, "--orders", str(orders)] + pace,
        capture_output=True, text=True, timeout=600,
    )
    took = time.time() - started
    after = {name: threads_of(pid) for name, pid in pids.items()}
    if load.returncode != 0:
        sys.exit(f"bazaar load failed ({load.returncode}): {load.stderr.strip()}")
    total_cpu = total_switches = total_kib = 0.0
    for name in pids:
        cpu = (after[name][0] - before[name][0]) * 1000 / tick / orders
        switches = (after[name][1] - before[name][1]) / orders
        kib = (after[name][2] - before[name][2]) / 1024 / orders
        total_cpu += cpu
        total_switches += switches
        total_kib += kib
        print(f"{name:18} {cpu:5.2f} ms CPU/order  {switches:6.1f} switches/order"
              f"  {kib:6.1f} KiB written/order")
    print(f"{'all':18} {total_cpu:5.2f} ms CPU/order  {total_switches:6.1f} switches/order"
          f"  {total_kib:6.1f} KiB written/order  ({orders / took:.1f} orders/s)")


if __name__ == "__main__":
    main()
