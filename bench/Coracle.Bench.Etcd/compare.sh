#!/bin/sh
# Side-by-side: Debian's etcd 3.4 and Coracle on SQLite, same machine, same load, one run.
# Usage: bench/Coracle.Bench.Etcd/compare.sh [bench options...]   (run from the repo root)
set -eu
out=bench/Coracle.Bench.Etcd/bin/Release/net10.0
dotnet build -c Release bench/Coracle.Bench.Etcd >/dev/null
work=$(mktemp -d)
etcd --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
     --listen-peer-urls http://127.0.0.1:23800 >"$work/etcd.log" 2>&1 &
etcd_pid=$!
"$out/Coracle.Bench.Etcd" --serve "$work/coracle" >"$work/coracle.log" 2>&1 &
coracle_pid=$!
trap 'kill $etcd_pid $coracle_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for i in $(seq 1 100); do [ -S "$work/coracle/etcd.sock" ] && grep -q READY "$work/coracle.log" && break; sleep 0.2; done
sleep 2
echo "etcd $(etcd --version | head -1); machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$out/Coracle.Bench.Etcd" --endpoint http://127.0.0.1:23790 --pid $etcd_pid --label "etcd 3.4" "$@"
"$out/Coracle.Bench.Etcd" --endpoint "unix://$work/coracle/etcd.sock" --pid $coracle_pid --label "Coracle SQLite" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); state.db $(du -h "$work/coracle/state.db" | cut -f1), etcd db $(du -h "$work/etcd/member/snap/db" | cut -f1)"
