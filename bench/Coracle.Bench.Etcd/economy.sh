#!/bin/sh
# Edge storage economy: sustained churn and node heartbeats against Coracle on SQLite, heartbeats against etcd 3.4.
# Usage: bench/Coracle.Bench.Etcd/economy.sh [churn-updates] [heartbeat-rounds] [heartbeat-interval] [compact-interval]   (from the repo root)
set -eu
churn=${1:-200000}
rounds=${2:-30}
interval=${3:-2s}
compact=${4:-5m}
out=bench/Coracle.Bench.Etcd/bin/Release/net10.0
dotnet build -c Release bench/Coracle.Bench.Etcd >/dev/null
work=$(mktemp -d)
"$out/Coracle.Bench.Etcd" --serve "$work/coracle" --compact-interval "$compact" >"$work/coracle.log" 2>&1 &
coracle_pid=$!
etcd --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
     --listen-peer-urls http://127.0.0.1:23800 >"$work/etcd.log" 2>&1 &
etcd_pid=$!
trap 'kill $etcd_pid $coracle_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for i in $(seq 1 100); do grep -q READY "$work/coracle.log" 2>/dev/null && break; sleep 0.2; done
sleep 2
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
sock="unix://$work/coracle/etcd.sock"
"$out/Coracle.Bench.Etcd" --endpoint "$sock" --pid $coracle_pid --label "Coracle SQLite" --churn "$churn" --keys 1000 --db "$work/coracle/state.db"
"$out/Coracle.Bench.Etcd" --endpoint "$sock" --pid $coracle_pid --label "Coracle SQLite" --heartbeat "$rounds" --keys 100 --value-size 600 --interval "$interval" --db "$work/coracle/state.db"
"$out/Coracle.Bench.Etcd" --endpoint http://127.0.0.1:23790 --pid $etcd_pid --label "etcd 3.4" --heartbeat "$rounds" --keys 100 --value-size 600 --interval "$interval" --db "$work/etcd/member/snap/db"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
