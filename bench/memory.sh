#!/usr/bin/env bash
# Resident memory of `coracle server` at idle, split into anonymous, file-backed and shared (JIT'd code) pages,
# and the largest mappings. Starts a server on a fresh data dir without Kubernetes binaries, waits, reads /proc.
#   bench/memory.sh [--coracle PATH] [--settle SECONDS] [--smaps] [ENV=VALUE ...] [-- extra server args]
#   bench/memory.sh DOTNET_TieredPGO=0
#   bench/memory.sh -- --disable nvidia,traefik,servicelb,coredns,local-storage,metrics-server --cni none
set -uo pipefail
coracle="$(cd "$(dirname "$0")/.." && pwd)/Core/bin/Release/net10.0/coracle"; settle=30; smaps=false; envs=()
while (($#)); do
  case "$1" in
    --coracle) coracle="$2"; shift 2 ;;
    --settle) settle="$2"; shift 2 ;;
    --smaps) smaps=true; shift ;;
    --) shift; break ;;
    *=*) envs+=("$1"); shift ;;
    *) echo "memory.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
data="$(mktemp -d /tmp/coracle-memory.XXXXXX)"
env -u CORACLE_K8S_BIN "${envs[@]}" "$coracle" server --data-dir "$data" --flannel-backend=none \
  --write-kubeconfig "$data/kubeconfig.yaml" "$@" > "$data.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; "$coracle" killall --data-dir "$data" >/dev/null 2>&1; rm -rf "$data" "$data.log"' EXIT
sleep "$settle"
[[ -r /proc/$pid/status ]] || { echo "memory.sh: coracle exited; its log:" >&2; tail -5 "$data.log" >&2; exit 1; }
echo "${envs[*]:-defaults} $*"
awk '/VmRSS|RssAnon|RssFile|RssShmem/ {printf "  %-10s %6.1f MB\n", $1, $2/1024}' /proc/$pid/status
if $smaps; then
  awk '/^[0-9a-f]+-[0-9a-f]+ / {name = (NF >= 6 ? $6 : "[anon]")} /^Rss:/ {rss[name] += $2}
       END {for (n in rss) printf "%8.1f MB %s\n", rss[n]/1024, n}' /proc/$pid/smaps | sort -rn | head -25
fi
