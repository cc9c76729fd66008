#!/bin/sh
# Flash writes per heartbeat-like update (a Lease update), in one run: etcd 3.4, Coracle SQLite with write economy on
# (the default) and off. Bytes are write_bytes of /proc/PID/io, read after a settle wait longer than the flush interval.
# Usage: bench/Coracle.Bench.Etcd/flash.sh [rounds] [interval] [keys] [settle]   (from the repo root)
set -eu
rounds=${1:-30}
interval=${2:-2s}
keys=${3:-100}
settle=${4:-31s}
out=bench/Coracle.Bench.Etcd/bin/Release/net10.0
[ -x "$out/Coracle.Bench.Etcd" ] || dotnet build -c Release bench/Coracle.Bench.Etcd >/dev/null
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
peer=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
     --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
     --initial-cluster "default=http://127.0.0.1:$peer" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
"$out/Coracle.Bench.Etcd" --serve "$work/on" --write-economy on >"$work/on.log" 2>&1 &
on_pid=$!
"$out/Coracle.Bench.Etcd" --serve "$work/off" --write-economy off >"$work/off.log" 2>&1 &
off_pid=$!
trap 'kill $etcd_pid $on_pid $off_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for i in $(seq 1 300); do grep -q READY "$work/on.log" 2>/dev/null && grep -q READY "$work/off.log" 2>/dev/null && break; sleep 0.2; done
sleep 2
echo "etcd $(etcd --version | head -1); machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
hb="--heartbeat $rounds --keys $keys --value-size 600 --interval $interval --settle $settle"
"$out/Coracle.Bench.Etcd" --endpoint "http://127.0.0.1:$port" --pid $etcd_pid --label "etcd 3.4" $hb --db "$work/etcd/member/snap/db"
"$out/Coracle.Bench.Etcd" --endpoint "unix://$work/on/etcd.sock" --pid $on_pid --label "Coracle SQLite, write economy on" $hb --db "$work/on/state.db"
"$out/Coracle.Bench.Etcd" --endpoint "unix://$work/off/etcd.sock" --pid $off_pid --label "Coracle SQLite, write economy off" $hb --db "$work/off/state.db"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
