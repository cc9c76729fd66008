#!/bin/sh
# Side by side: Debian's etcd 3.4 and Coracle on SQLite (and, with BASELINE=DIR, a second Coracle from an earlier
# build's output folder), same machine, same load: each workload runs on every server in turn before the next
# one, and one table puts them side by side with throughput and server CPU per request against etcd's.
# Usage: [BASELINE=/path/to/old/bin/Release/net10.0] [OUT=/path/to/this/bin/Release/net10.0] [BUILD=0] bench/Coracle.Bench.Etcd/compare.sh [bench options...]
#        (run from the repo root; BUILD=0 skips `dotnet build`)
set -eu
out=${OUT:-bench/Coracle.Bench.Etcd/bin/Release/net10.0}
[ "${BUILD:-1}" = 0 ] || dotnet build -c Release bench/Coracle.Bench.Etcd >/dev/null
work=$(mktemp -d)
pids=""
trap 'kill $pids 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
client_port=$(free_port)
peer_port=$(free_port)
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
     --listen-peer-urls "http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
pids="$etcd_pid"
"$out/Coracle.Bench.Etcd" --serve "$work/coracle" >"$work/coracle.log" 2>&1 &
coracle_pid=$!
pids="$pids $coracle_pid"
targets="--target etcd=http://127.0.0.1:$client_port@$etcd_pid"
if [ -n "${BASELINE:-}" ]; then
  "$BASELINE/Coracle.Bench.Etcd" --serve "$work/baseline" >"$work/baseline.log" 2>&1 &
  baseline_pid=$!
  pids="$pids $baseline_pid"
  targets="$targets --target baseline=unix://$work/baseline/etcd.sock@$baseline_pid"
  for i in $(seq 1 100); do grep -q READY "$work/baseline.log" && break; sleep 0.2; done
fi
targets="$targets --target Coracle=unix://$work/coracle/etcd.sock@$coracle_pid"
for i in $(seq 1 100); do grep -q READY "$work/coracle.log" && break; sleep 0.2; done
sleep 2
echo "etcd $(etcd --version | head -1); machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
"$out/Coracle.Bench.Etcd" $targets "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); state.db $(du -h "$work/coracle/state.db" | cut -f1), etcd db $(du -h "$work/etcd/member/snap/db" | cut -f1)"
