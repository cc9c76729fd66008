#!/usr/bin/env bash
# Publishes bench/Coracle.Bench.AotDatastore (the SQL datastore alone) with NativeAOT for linux-x64, and prints the
# trim/AOT warnings (by code and assembly), the time and the size; then measure it beside etcd and the JIT host with
#   bench/datastore-memory.sh base aot:SERVER=OUT/Coracle.Bench.AotDatastore
#   bench/aot-datastore.sh [OUT]        (default OUT: /tmp/coracle-aot-datastore; hold the build lock on a shared machine)
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"; out="${1:-/tmp/coracle-aot-datastore}"
log="$out.publish.log"; rm -rf "$out"
start=$(date +%s)
dotnet publish "$repo/bench/Coracle.Bench.AotDatastore" -c Release -r linux-x64 -p:PublishAot=true -p:TreatWarningsAsErrors=false \
  -p:WarningsAsErrors= -o "$out" -nologo -clp:NoSummary >"$log" 2>&1
rc=$?
echo "publish exit code $rc after $(( $(date +%s) - start )) s; log: $log"
echo "trim/AOT warnings (distinct), by code:"
grep -oE 'warning (IL|CS)[0-9]+' "$log" | sort | uniq -c | sort -rn
echo "by assembly:"
grep -E 'warning IL[0-9]+' "$log" | sed -E 's/^([^:(]+).*/\1/' | xargs -rn1 basename 2>/dev/null | sort | uniq -c | sort -rn | head -20
[[ $rc -eq 0 ]] && ls -la "$out" && du -sh "$out"
exit $rc
