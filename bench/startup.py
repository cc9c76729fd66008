#!/usr/bin/env python3
"""Measures `coracle server` start-up: time to 'plugins composed' and to 'supervisor running' (from the
moment the process is spawned, so runtime start-up is included), and the coracle process's RSS a few seconds
after start. Runs N times on fresh data dirs and prints min/median/max.

usage: bench/startup.py [--coracle PATH] [--runs N] [--settle S] [-- extra coracle server args]
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

parser = argparse.ArgumentParser()
parser.add_argument("--coracle", default=os.path.join(os.path.dirname(__file__), "..", "Core", "bin", "Release", "net10.0", "coracle"))
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--settle", type=float, default=3.0, help="seconds after 'supervisor running' before reading RSS")
parser.add_argument("--reuse", action="store_true", help="one data dir for all runs (warm start: certificates exist)")
parser.add_argument("extra", nargs="*")
args = parser.parse_args()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children_rss_kib(pid):
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        total += rss_kib(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return total


composed, running, rss, child_rss = [], [], [], []
shared = tempfile.mkdtemp(prefix="coracle-bench-") if args.reuse else None
for run in range(args.runs):
    data = shared or tempfile.mkdtemp(prefix="coracle-bench-")
    env = dict(os.environ, CORACLE_CONFIG_FILE="")
    start = time.monotonic()
    proc = subprocess.Popen([args.coracle, "server", "--data-dir", data, "--write-kubeconfig", os.path.join(data, "admin.yaml"), *args.extra], stderr=subprocess.PIPE, text=True, env=env)
    t_composed = t_running = None
    for line in proc.stderr:
        now = time.monotonic()
        if t_composed is None and "plugins composed:" in line:
            t_composed = now - start
        if "supervisor running with" in line:
            t_running = now - start
            break
    time.sleep(args.settle)
    rss.append(rss_kib(proc.pid) / 1024)
    child_rss.append(children_rss_kib(proc.pid) / 1024)
    proc.send_signal(signal.SIGTERM)
    for _ in proc.stderr:
        pass
    proc.wait(timeout=60)
    if not args.reuse:
        shutil.rmtree(data, ignore_errors=True)
    composed.append(t_composed * 1000)
    running.append(t_running * 1000)
    print(f"run {run + 1}: composed {composed[-1]:.0f} ms, supervisor running {running[-1]:.0f} ms, "
          f"coracle RSS {rss[-1]:.1f} MiB, children RSS {child_rss[-1]:.1f} MiB", flush=True)


def fmt(values, unit):
    return f"min {min(values):.0f} / median {statistics.median(values):.0f} / max {max(values):.0f} {unit}"


print(f"start to 'plugins composed':   {fmt(composed, 'ms')}")
print(f"start to 'supervisor running': {fmt(running, 'ms')}")
print(f"coracle RSS after {args.settle:.0f} s:       min {min(rss):.1f} / median {statistics.median(rss):.1f} / max {max(rss):.1f} MiB")
print(f"children RSS (containerd, ...): median {statistics.median(child_rss):.1f} MiB")
