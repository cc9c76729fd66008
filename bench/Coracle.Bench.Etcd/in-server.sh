#!/usr/bin/env bash
# The datastore as `coracle server` runs it, beside Debian's etcd 3.4: starts etcd and one `coracle server` per build
# given (fresh data dirs, no Kubernetes binaries, so the datastore, join API and supervisor run; one server at a time
# would clash on the join API's port, so each later build runs after the earlier one stopped, each beside the same etcd),
# and runs the etcd bench against etcd and the server's datastore socket, with server CPU per request from the pids.
# Usage: [SETTLE=SECONDS] bench/Coracle.Bench.Etcd/in-server.sh [--build NAME=DIR ...] [bench options...]
#        DIR holds coracle and plugins/ (default: this=Core/bin/Release/net10.0); the bench is this tree's build.
#        SETTLE: seconds between "datastore ready" and the bench (default 2).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bench="$root/bench/Coracle.Bench.Etcd/bin/Release/net10.0/Coracle.Bench.Etcd"
builds=()
while [[ $# -gt 0 && $1 == --build ]]; do builds+=("$2"); shift 2; done
[[ ${#builds[@]} -gt 0 ]] || builds=("this=$root/Core/bin/Release/net10.0")
[[ -x $bench ]] || { echo "in-server.sh: build the bench first: dotnet build -c Release bench/Coracle.Bench.Etcd" >&2; exit 2; }
work="$(mktemp -d /tmp/coracle-inserver.XXXXXX)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# Both of etcd's ports from one process that holds both sockets while it asks, so the kernel cannot hand out one twice.
read -r client peer < <(python3 -c 'import socket; s=[socket.socket() for _ in range(2)]; [x.bind(("127.0.0.1", 0)) for x in s]; print(*(x.getsockname()[1] for x in s))')
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
pids+=("$etcd_pid")
echo "etcd $(etcd --version | head -1); $(nproc) cores"
for build in "${builds[@]}"; do
  name=${build%%=*}; dir=${build#*=}
  data="$work/$name"
  env -u CORACLE_K8S_BIN "$dir/coracle" server --data-dir "$data" --flannel-backend=none --write-kubeconfig "$data.yaml" \
    --disable traefik,servicelb,coredns,local-storage,metrics-server >"$data.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 150); do grep -q "datastore.*ready after" "$data.log" && break; sleep 0.2; done
  grep -q "datastore.*ready after" "$data.log" || { echo "in-server.sh: $name: the datastore did not become ready; its log:" >&2; tail -5 "$data.log" >&2; exit 1; }
  sleep "${SETTLE:-2}"
  echo "== $name ($dir), coracle pid $pid, load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$bench" --target "etcd=http://127.0.0.1:$client@$etcd_pid" --target "$name=unix://$data/server/db/etcd.sock@$pid" "$@"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  "$dir/coracle" killall --data-dir "$data" >/dev/null 2>&1 || true
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
