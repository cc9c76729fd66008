#!/usr/bin/env bash
# The SQL datastore's resident memory and throughput under the etcd bench load, for each .NET runtime setting, beside
# Debian's etcd 3.4 in the same run (issue 15, item 2). Each round runs etcd, then every variant in turn, each a fresh
# `Coracle.Bench.Etcd --serve` host (the datastore coracle runs in-process) started with the variant's environment
# (DOTNET_* knobs are the runtimeconfig settings), on a fresh data dir; the bench reports ops/s and the server's RSS
# (peak) per workload. Rounds repeat the whole sequence, so every variant sees the machine's load of the moment.
#   bench/datastore-memory.sh [--rounds 2] [--host PATH] [--] VARIANT...    (bench options: BENCH_ARGS="--duration 5s ...")
#   VARIANT is NAME or NAME:ENV=VALUE,ENV=VALUE, e.g.
#   bench/datastore-memory.sh base conserve:DOTNET_GCConserveMemory=5 gen0:DOTNET_GCgen0size=0x400000
#   SERVER=PATH in a variant runs PATH DIR as the server instead (the NativeAOT host: bench/aot-datastore.sh)
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
host="$repo/bench/Coracle.Bench.Etcd/bin/Release/net10.0/Coracle.Bench.Etcd"; rounds=2
bench_args=(${BENCH_ARGS:---duration 5s --workloads put,range-s,txn-create,txn-update,watch})
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --host) host="$2"; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
(($#)) || { echo "datastore-memory.sh: name at least one variant (e.g. base)" >&2; exit 2; }
work="$(mktemp -d /tmp/coracle-dsmem.XXXXXX)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
peer=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
     --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
     --initial-cluster "default=http://127.0.0.1:$peer" >"$work/etcd.log" 2>&1 &
etcd_pid=$!; pids+=("$etcd_pid")
sleep 2
echo "etcd $(etcd --version | head -1); $(nproc) cores; bench: ${bench_args[*]}"
for round in $(seq 1 "$rounds"); do
  echo "round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$host" --endpoint "http://127.0.0.1:$port" --pid "$etcd_pid" --label "etcd" "${bench_args[@]}" | grep '^| etcd'
  for variant in "$@"; do
    name="${variant%%:*}"; envs=()
    [[ "$variant" == *:* ]] && IFS=',' read -r -a envs <<<"${variant#*:}"
    dir="$work/$name-$round"; server=("$host" --serve "$dir"); rest=()
    for e in "${envs[@]}"; do
      if [[ "$e" == SERVER=* ]]; then server=("${e#SERVER=}" "$dir"); else rest+=("$e"); fi
    done
    env "${rest[@]}" "${server[@]}" >"$dir.log" 2>&1 &
    pid=$!; pids+=("$pid")
    for _ in $(seq 1 150); do grep -q READY "$dir.log" 2>/dev/null && break; sleep 0.2; done
    grep -q READY "$dir.log" || { echo "datastore-memory.sh: $name did not start; its log:" >&2; tail -5 "$dir.log" >&2; exit 1; }
    idle=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$pid/status")
    "$host" --endpoint "unix://$dir/etcd.sock" --pid "$pid" --label "$name" "${bench_args[@]}" | grep "^| $name"
    echo "  $name: RSS idle after start $idle MB, after the load $(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$pid/status") MB"
    kill "$pid"; wait "$pid" 2>/dev/null
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
