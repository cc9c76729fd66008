#!/bin/sh
# Write throughput, side by side in one run: a 3-member etcd 3.4 cluster (one member per network namespace, veth pairs
# on a bridge, the same member layout the embedded etcd plugin uses: client and peer URLs on the node IP, metrics on
# loopback) vs a single Coracle SQLite datastore. Root (network namespaces). Usage, from the repo root:
#   bench/etcd-ha.sh [bench options...]      e.g. --duration 10s --clients 16 --workloads put,txn-update
# Plain HTTP between members and to the client: the bench client has no TLS; the plugin's mutual TLS adds handshake
# cost per connection only (connections are reused).
set -eu
out=bench/Coracle.Bench.Etcd/bin/Release/net10.0
[ -x "$out/Coracle.Bench.Etcd" ] || dotnet build -c Release bench/Coracle.Bench.Etcd >/dev/null
work=$(mktemp -d)
net=10.251.29
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for i in 1 2 3; do ip netns del "etcdh-b$i" 2>/dev/null || true; done
  ip link del etcdh-bbr 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip link add etcdh-bbr type bridge && ip addr add $net.1/24 dev etcdh-bbr && ip link set etcdh-bbr up
cluster=""
for i in 1 2 3; do
  ip netns add "etcdh-b$i"
  ip link add "etcdh-bv$i" type veth peer name eth0 netns "etcdh-b$i"
  ip link set "etcdh-bv$i" master etcdh-bbr up
  ip -n "etcdh-b$i" addr add "$net.1$i/24" dev eth0
  ip -n "etcdh-b$i" link set eth0 up
  ip -n "etcdh-b$i" link set lo up
  cluster="${cluster:+$cluster,}m$i=http://$net.1$i:2380"
done
for i in 1 2 3; do
  ip netns exec "etcdh-b$i" etcd --name "m$i" --data-dir "$work/m$i" \
    --listen-client-urls "http://127.0.0.1:2379,http://$net.1$i:2379" --advertise-client-urls "http://$net.1$i:2379" \
    --listen-peer-urls "http://$net.1$i:2380" --initial-advertise-peer-urls "http://$net.1$i:2380" \
    --listen-metrics-urls http://127.0.0.1:2381 --initial-cluster "$cluster" --initial-cluster-state new >"$work/m$i.log" 2>&1 &
  pids="$pids $!"
done
leader_pid=$(echo $pids | cut -d' ' -f1)
"$out/Coracle.Bench.Etcd" --serve "$work/coracle" >"$work/coracle.log" 2>&1 &
coracle_pid=$!
pids="$pids $coracle_pid"
for i in $(seq 1 150); do
  [ -S "$work/coracle/etcd.sock" ] && grep -q READY "$work/coracle.log" \
    && ETCDCTL_API=3 etcdctl --endpoints "http://$net.11:2379,http://$net.12:2379,http://$net.13:2379" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
sleep 2
echo "etcd $(etcd --version | head -1); machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$out/Coracle.Bench.Etcd" --endpoint "http://$net.11:2379" --pid "$leader_pid" --label "etcd 3.4, 3 members (netns)" "$@"
"$out/Coracle.Bench.Etcd" --endpoint "unix://$work/coracle/etcd.sock" --pid "$coracle_pid" --label "Coracle SQLite, 1 server" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
