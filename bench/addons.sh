#!/usr/bin/env bash
# Measures the packaged add-ons on a fresh single server: `coracle server` start -> node Ready -> every add-on's
# Deployment available (coredns, local-path-provisioner, metrics-server), then, after a settle time, the RSS each add-on
# adds (its container processes and its containerd shim) and coracle's own RSS. The add-on images are written into the
# node's airgap folder first (bench/Coracle.Bench.Addons), as an operator would import them. Run as root on a machine
# where no other node runs; the node is stopped and cleaned up at the end.
#   bench/addons.sh DATA_DIR [SETTLE_SECONDS]     (CORACLE_K8S_BIN must hold Kubernetes 1.32; default settle 60 s)
set -euo pipefail
data="${1:?usage: addons.sh DATA_DIR [SETTLE_SECONDS]}"; settle="${2:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
coracle="$root/Core/bin/Release/net10.0/coracle"
[[ -x $coracle ]] || { echo "build first: dotnet build Coracle.slnx -c Release" >&2; exit 1; }
[[ ! -e $data ]] || { echo "$data exists: give a fresh data dir" >&2; exit 1; }
dotnet "$root/bench/Coracle.Bench.Addons/bin/Release/net10.0/Coracle.Bench.Addons.dll" "$data/agent/images"
export CORACLE_DATA_DIR="$data"
cleanup() { pkill -TERM -f "coracle server --data-dir $data" || true; sleep 15; "$coracle" killall --data-dir "$data" >/dev/null 2>&1 || true; }
trap cleanup EXIT
start=$(date +%s.%N)
setsid "$coracle" server --data-dir "$data" --disable traefik,servicelb >"$data.log" 2>&1 < /dev/null &
since() { awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }
wait_for() { # DESCRIPTION COMMAND...: polls every 0.2 s, 300 s at most
  local what="$1"; shift
  until "$@" >/dev/null 2>&1; do
    sleep 0.2
    if (( $(date +%s) - ${start%.*} > 300 )); then echo "$what: not after 300 s; see $data.log" >&2; exit 1; fi
  done
  echo "start -> $what: $(since) s"
}
node_ready() { "$coracle" kubectl get node -o 'jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}' | grep -q True; }
available() { [[ "$("$coracle" kubectl -n kube-system get deployment "$1" -o 'jsonpath={.status.availableReplicas}')" == 1 ]]; }
wait_for "node Ready" node_ready
for d in coredns local-path-provisioner metrics-server; do wait_for "$d available" available "$d"; done
echo "start -> all add-ons available: $(since) s ($("$coracle" kubectl version 2>/dev/null | grep Server))"
sleep "$settle"
kb() { awk '/VmRSS/ {s+=$2} END {print s+0}' "$@" 2>/dev/null; }
pid="$("$coracle" status --data-dir "$data" | head -1 | sed -E 's/.* pid ([0-9]+) .*/\1/')"
echo "coracle RSS after ${settle} s: $(kb /proc/"$pid"/status) kB"
for binary in coredns local-path-provisioner metrics-server; do
  procs="$(pgrep -f "(^|/)$binary( |$)" || true)"
  [[ -n $procs ]] || { echo "$binary: no process"; continue; }
  shims="$(for p in $procs; do awk '{print $4}' /proc/"$p"/stat; done | sort -u)"
  echo "$binary: container $(kb $(for p in $procs; do echo /proc/"$p"/status; done)) kB + shim $(kb $(for s in $shims; do echo /proc/"$s"/status; done)) kB"
done
