#!/usr/bin/env bash
# Times `coracle server` from start to its Node Ready (0.2 s poll of `coracle kubectl get node`), then leaves the
# node running for bench/node-idle.sh. Run as root on a machine where no other node runs.
#   bench/node-ready.sh DATA_DIR [extra server flags...]     (CORACLE_K8S_BIN or components-dir must hold Kubernetes)
set -euo pipefail
data="${1:?usage: node-ready.sh DATA_DIR [flags...]}"; shift
coracle="$(cd "$(dirname "$0")/.." && pwd)/Core/bin/Release/net10.0/coracle"
start=$(date +%s.%N)
setsid "$coracle" server --data-dir "$data" "$@" >"$data.log" 2>&1 < /dev/null &
export CORACLE_DATA_DIR="$data"
until "$coracle" kubectl get node -o 'jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; do
  sleep 0.2
  if (( $(date +%s) - ${start%.*} > 300 )); then echo "not Ready after 300 s; see $data.log" >&2; exit 1; fi
done
end=$(date +%s.%N)
echo "start -> Ready: $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s ($("$coracle" kubectl version 2>/dev/null | grep Server))"
