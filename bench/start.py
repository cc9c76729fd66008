#!/usr/bin/env python3
"""Where `coracle server`'s start-up time goes, up to its Node Ready (issue 15, item 4).

Each run starts a real single server (Kubernetes from CORACLE_K8S_BIN, add-ons, traefik and servicelb disabled, flannel
vxlan) in its own network namespace, twice: on a fresh data dir (certificates generated, empty datastore) and again on
that same data dir after a clean stop (the second start of an existing node). The clock starts when the process is
spawned (the .NET runtime's own start included). Milestones come from coracle's log lines, whose timestamps are
milliseconds of the same clock: each start-up step, each component's start and readiness (the supervisor logs both);
Node Ready comes from polling `kubectl get node` every 0.1 s once the kubelet runs. Prints one line per milestone
per run, then the median of every milestone over the runs.

Run as root from the repository, after `dotnet build Coracle.slnx -c Release` (the build output is copied first, so
a later build cannot change it under the benchmark). On a shared machine hold the test lock:

    flock /tmp/coracle-test.lock bench/start.py --runs 3

With --baseline DIR (another build output, e.g. a copy of main's) every run starts that build and then this one, the
same way, so both see the same machine load (the medians are printed per build): the way to compare builds on a
shared machine whose load changes from minute to minute.

With --until MILESTONE each start stops at that milestone: `bench/start.py --runs 10 --baseline DIR --until "datastore ready"`
measures start -> datastore ready alone, without Kubernetes binaries, in a few seconds per start.

usage: bench/start.py [--runs N] [--coracle DIR] [--baseline DIR] [--netns NAME] [--until MILESTONE] [--keep] [-- extra server flags]
"""
import argparse
import datetime
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

repo = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=3)
parser.add_argument("--coracle", default=os.path.join(repo, "Core", "bin", "Release", "net10.0"), help="build output holding coracle and plugins/")
parser.add_argument("--baseline", help="a second build output to interleave with --coracle, run by run")
parser.add_argument("--netns", default="start-bench", help="network namespace the node runs in (created with a veth to the host)")
parser.add_argument("--subnet", default="10.217.0", help="/24 of the veth pair: .1 on the host, .2 the node")
parser.add_argument("--keep", action="store_true", help="keep the work folder (logs) at the end")
parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for Node Ready")
parser.add_argument("--until", help="stop each start at this milestone (e.g. 'datastore ready') instead of Node Ready; then "
                    "CORACLE_K8S_BIN is not needed (without it no Kubernetes component starts)")
parser.add_argument("extra", nargs="*")
args = parser.parse_args()

k8s = os.environ.get("CORACLE_K8S_BIN")
if args.until and not k8s:
    k8s = "/nonexistent"
elif not k8s or not os.path.exists(os.path.join(k8s, "kube-apiserver")):
    sys.exit("start.py: CORACLE_K8S_BIN must name a folder with the Kubernetes 1.32 binaries")
if not os.path.exists(os.path.join(args.coracle, "coracle")):
    sys.exit(f"start.py: no coracle in {args.coracle}; run 'dotnet build Coracle.slnx -c Release' first")

work = tempfile.mkdtemp(prefix="coracle-start-")
builds = {"this build": args.coracle} if not args.baseline else {"baseline": args.baseline, "this build": args.coracle}
images = {}
for build, folder in builds.items():
    if not os.path.exists(os.path.join(folder, "coracle")):
        sys.exit(f"start.py: no coracle in {folder}")
    images[build] = os.path.join(work, "image-" + build.replace(" ", "-"))
    shutil.copytree(folder, images[build], symlinks=True)
node_name = "startbench"
node_ip = args.subnet + ".2"


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def netns_up():
    if os.path.exists(f"/run/netns/{args.netns}"):
        return False
    host, inside = "h-" + args.netns, "n-" + args.netns
    sh("ip", "netns", "add", args.netns)
    sh("ip", "link", "add", host, "type", "veth", "peer", "name", inside)
    sh("ip", "link", "set", inside, "netns", args.netns)
    sh("ip", "addr", "add", args.subnet + ".1/24", "dev", host)
    sh("ip", "link", "set", host, "up")
    sh("ip", "-n", args.netns, "addr", "add", node_ip + "/24", "dev", inside)
    sh("ip", "-n", args.netns, "link", "set", "lo", "up")
    sh("ip", "-n", args.netns, "link", "set", inside, "up")
    sh("ip", "-n", args.netns, "route", "add", "default", "via", args.subnet + ".1")
    return True


def netns_down():
    sh("ip", "link", "del", "h-" + args.netns, check=False)
    sh("ip", "netns", "del", args.netns, check=False)


def env_for(data):
    config = data + ".toml"
    with open(config, "w") as f:
        f.write(f'[plugins.flannel]\nsubnet-file = "{data}/run/flannel/subnet.env"\nipam-data-dir = "{data}/agent/cni-ipam"\n')
    return dict(os.environ, CORACLE_CONFIG_FILE=config, CORACLE_DATA_DIR=data, CORACLE_K8S_BIN=k8s)


def in_netns(*cmd):
    return ["nsenter", f"--net=/run/netns/{args.netns}", *cmd]


LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z \S+\s+\[([^\]]+)\] (.*)$")


def milestones_of(line, t0, found):
    m = LINE.match(line)
    if not m:
        return
    at = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp() - t0
    source, text = m.group(2), m.group(3)

    def mark(name):
        found.setdefault(name, at)

    if text.startswith("plugins composed:"):
        mark("plugins composed")
    elif source == "coracle" and text.startswith("step: "):
        mark("step " + text[len("step: "):])
    elif text.startswith("supervisor running"):
        mark("supervisor running")
    elif text.startswith("opening the "):
        mark(f"{source} opening")
    elif text.startswith("datastore serving"):
        mark("datastore serving")
    elif text.startswith("started (pid") or text.startswith("starting: in-process"):
        mark(f"{source} started")
    elif text.startswith("ready after"):
        mark(f"{source} ready")
    elif text.startswith("flannel: lease acquired"):
        mark("flannel lease acquired")
    elif "initialized: addresses" in text:
        mark("cloud-node initialized")


def node_ready(env, t0):
    """Ready, posted by this run's kubelet: on a second start the Node keeps the last run's Ready until the kubelet's
    first status update, so the condition's heartbeat must be from this run (it has whole seconds)."""
    out = subprocess.run(in_netns(os.path.join(k8s, "kubectl"), "--kubeconfig", env["CORACLE_DATA_DIR"] + "/admin.yaml", "get", "node", node_name,
                                  "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}'),
                         capture_output=True, text=True)
    fields = out.stdout.split()
    if out.returncode != 0 or len(fields) != 2 or fields[0] != "True":
        return False
    heartbeat = datetime.datetime.strptime(fields[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    if heartbeat >= int(t0):
        return True
    # A kubelet that finds its Node as it left it (second start: Ready, CNI configured) may not patch the status at all;
    # then its renewed node Lease says this run's kubelet is up and keeps it Ready.
    out = subprocess.run(in_netns(os.path.join(k8s, "kubectl"), "--kubeconfig", env["CORACLE_DATA_DIR"] + "/admin.yaml", "-n", "kube-node-lease",
                                  "get", "lease", node_name, "-o", "jsonpath={.spec.renewTime}"), capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        return False
    renewed = datetime.datetime.strptime(out.stdout.strip()[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
    return renewed >= int(t0) + 1


def one_start(coracle, data, label):
    env = env_for(data)
    cmd = in_netns(coracle, "server", "--node-name", node_name, "--node-ip", node_ip, "--write-kubeconfig", data + "/admin.yaml",
                   "--disable", "traefik,servicelb,coredns,local-storage,metrics-server", "--kubelet-arg", f"root-dir={data}/agent/kubelet",
                   "--pod-logs-dir", f"{data}/pod-logs", *args.extra)
    log = open(f"{data}.{label}.log", "w")
    found = {}
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)

    def reader():
        for line in proc.stderr:
            log.write(line)
            milestones_of(line, t0, found)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        while args.until and args.until not in found:
            if proc.poll() is not None or time.time() - t0 > args.timeout:
                raise RuntimeError(f"no '{args.until}' after {args.timeout:.0f} s; see {data}.{label}.log")
            time.sleep(0.02)
        while not args.until and "kubelet started" not in found:
            if proc.poll() is not None or time.time() - t0 > args.timeout:
                raise RuntimeError(f"the kubelet did not start; see {data}.{label}.log")
            time.sleep(0.05)
        while not args.until and not node_ready(env, t0):
            if proc.poll() is not None or time.time() - t0 > args.timeout:
                raise RuntimeError(f"node not Ready after {args.timeout:.0f} s; see {data}.{label}.log")
            time.sleep(0.1)
        if not args.until:
            found["node Ready"] = time.time() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        thread.join(timeout=10)
        log.close()
    return found


def killall(coracle, data):
    subprocess.run(in_netns(coracle, "killall", "--data-dir", data), capture_output=True, env=env_for(data))


created = netns_up()
results = {(build, label): [] for build in builds for label in ("fresh", "second")}
try:
    for run in range(args.runs):
        for build, image in images.items():
            coracle = os.path.join(image, "coracle")
            data = os.path.join(work, f"run{run + 1}-{build.replace(' ', '-')}")
            os.makedirs(data)
            try:
                for label in ("fresh", "second"):
                    found = one_start(coracle, data, label)
                    results[(build, label)].append(found)
                    print(f"run {run + 1} {build} {label}: " + ", ".join(f"{k} {v * 1000:.0f}" for k, v in sorted(found.items(), key=lambda kv: kv[1])), flush=True)
            finally:
                killall(coracle, data)
finally:
    if created:
        netns_down()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work}")

for (build, label), runs in results.items():
    if not runs:
        continue
    names = sorted({k for r in runs for k in r}, key=lambda k: statistics.median([r[k] for r in runs if k in r]))
    print(f"\n{build}, {label} data dir, ms after spawn, median of {len(runs)} (min-max); then ms after 'plugins composed' "
          "(the runtime's start and the plugins' load, the noisiest part on a busy machine, taken out):")
    for name in names:
        values = [r[name] * 1000 for r in runs if name in r]
        after = [(r[name] - r["plugins composed"]) * 1000 for r in runs if name in r and "plugins composed" in r]
        since = f"  {statistics.median(after):7.0f}  ({min(after):.0f}-{max(after):.0f})" if after else ""
        print(f"  {name:42} {statistics.median(values):7.0f}  ({min(values):.0f}-{max(values):.0f}){since}")
