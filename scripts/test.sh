#!/usr/bin/env bash
# The whole test suite: installs prerequisites, builds everything once, runs the test projects in two lanes (units
# of work — a project, or one class of the real-Kubernetes node tests — taken longest first from one queue), writes TRX
# files to artifacts/test-results and ends with one summary line: "N passed, N failed, N skipped".
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source "$root/scripts/components.sh"
coracle_components "$root" || { echo "0 passed, 1 failed, 0 skipped"; exit 2; }
"$root/scripts/prereqs.sh" test || exit 2

results="$root/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"

echo "==> building"
if ! dotnet build Coracle.slnx -c Release -nologo -v:q -clp:ErrorsOnly; then
  echo "build failed"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi

# The suite runs as units — a test project, or one class of Node.Tests — in CORACLE_TEST_LANES lanes at once (default
# 2): each lane takes the next unit from one queue, longest first, until none is left. The node test classes each stand
# up their own real cluster in their own namespaces and networks (NodeHarness.FreeSubnet), so they may run beside each
# other and beside the other projects; inside one unit the tests still run one at a time. The short projects that build
# kernel state in network namespaces and time packets, datagrams and elections on a 2-core machine run first, alone
# (about a minute), so the clusters' load does not make their waits fail. CORACLE_TEST_LANES=1 runs every unit in turn.
# Three lanes were tried on 2 cores (load average 17-32): a SQLite churn test and an agent's restart timed out, so two.
# Each output line is prefixed with its unit's name; each unit's exit status lands in a file the summary reads.
lanes="${CORACLE_TEST_LANES:-2}"
statusdir="$results/.status"
mkdir -p "$statusdir"

# LABEL PROJECT [FILTER]: one `dotnet test` writing LABEL.trx. A unit whose TRX holds no result fails (a filter naming
# a class that is gone).
run_unit() {
  local label="$1" project="$2" filter="${3:-}" args=()
  [[ -n "$filter" ]] && args=(--filter "$filter")
  echo "==> $label (started $(date -u +%H:%M:%S))"
  local start=$SECONDS
  timeout 2400 dotnet test "$project" -c Release --no-build -nologo "${args[@]}" \
      --logger "trx;LogFileName=$label.trx" --logger "console;verbosity=minimal" \
      --results-directory "$results" 2>&1 | sed -u "s/^/[${label#Coracle.}] /"
  local rc=${PIPESTATUS[0]}
  if [[ $rc -eq 0 ]] && ! grep -q "<UnitTestResult " "$results/$label.trx" 2>/dev/null; then
    echo "[${label#Coracle.}] ran no test: the unit list in scripts/test.sh names a class or project that is gone"
    rc=1
  fi
  echo "$rc" > "$statusdir/$label"
  echo "==> $label: exit $rc after $((SECONDS - start)) s"
}

# Each lane pops the next unit (a line of $queue: LABEL<tab>PROJECT[<tab>FILTER]) under a lock.
run_lane() {
  local line label project filter
  while true; do
    line="$(flock "$queue.lock" bash -c 'head -n 1 "$0"; sed -i 1d "$0"' "$queue")"
    [[ -z "$line" ]] && return
    IFS=$'\t' read -r label project filter <<< "$line"
    run_unit "$label" "$project" "$filter"
  done
}

# Longest first (seconds in a clean-clone run: docs/benchmarks.md, "Test suite time"). Node.X is one class of
# Node.Tests; every Node.Tests class not named here runs as one more unit after them (a new class lands there until it is
# listed), and a project not named here runs last.
order="Packaging Core Node.ServerJoinNodeTests Node.EtcdHaNodeTests Plugins.Datastore.Sql Node.EgressTests
  Node.FleetRolloutTests Node.AddonTests Node.ServerNodeTests Node.ServiceLbTests Node.EmbeddedEtcdNodeTests
  Node.AgentNodeTests Node.IngressTests Node.SnapshotRestoreTests Integration"
node=tests/Node.Tests/Coracle.Node.Tests.csproj
alone=() units=() others=""
for name in $order; do
  if [[ "$name" == Node.* ]]; then
    units+=("Coracle.Node.Tests.${name#Node.}"$'\t'"$node"$'\t'"FullyQualifiedName~Coracle.Node.Tests.$name.")
    others+="${others:+&}FullyQualifiedName!~Coracle.Node.Tests.$name."
  else
    units+=("Coracle.$name.Tests"$'\t'"tests/$name.Tests/Coracle.$name.Tests.csproj")
  fi
done
units+=("Coracle.Node.Tests.Others"$'\t'"$node"$'\t'"$others")
for project in $(ls tests/*/*.Tests.csproj | sort); do
  name="$(basename "$project" .csproj)"
  case "$project" in
    tests/Plugins.Cni.Tests/*|tests/Plugins.LoadBalancer.Tests/*|tests/Plugins.Datastore.Etcd.Tests/*|tests/Plugins.Runtime.Tests/*)
      alone+=("$name"$'\t'"$project") ;;
    "$node") ;;
    *) short="${name#Coracle.}"; [[ " $(echo $order) " == *" ${short%.Tests} "* ]] || units+=("$name"$'\t'"$project") ;;
  esac
done

queue="$statusdir/queue"
if [[ "$lanes" == "1" ]]; then
  printf '%s\n' "${alone[@]}" "${units[@]}" > "$queue"
else
  printf '%s\n' "${alone[@]}" > "$queue"
  run_lane
  printf '%s\n' "${units[@]}" > "$queue"
fi
pids=()
for ((lane = 0; lane < lanes; lane++)); do
  run_lane & pids+=($!)
done
wait "${pids[@]}"

status=0
for unit in "${alone[@]}" "${units[@]}"; do
  name="${unit%%$'\t'*}"
  if [[ "$(cat "$statusdir/$name" 2>/dev/null)" != "0" ]]; then
    echo "$name did not pass (exit $(cat "$statusdir/$name" 2>/dev/null || echo 'none'))"
    status=1
  fi
done
rm -rf "$statusdir"

summary="$(python3 "$root/scripts/trx-summary.py" "$results")" || { echo "no test results found"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
echo "$summary"
failed="$(echo "$summary" | sed -E 's/.* ([0-9]+) failed.*/\1/')"
if [[ "$failed" != "0" || $status -ne 0 ]]; then
  exit 1
fi
