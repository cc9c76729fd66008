#!/usr/bin/env bash
# The whole test suite: installs prerequisites, builds everything once, runs the test projects in two lanes (the
# real-Kubernetes node tests beside the rest; each lane one project after another), writes TRX files to
# artifacts/test-results and ends with one summary line: "N passed, N failed, N skipped".
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

# Two lanes at once: the real-Kubernetes projects (long, mostly waiting on kubelets and controllers) beside everything
# else, one project after another in each lane, after the namespace-heavy short projects have run alone. CORACLE_TEST_LANES=1 runs every project in one lane.
# Each line is prefixed with its project's name; the status of each project lands in a file the summary reads.
lanes="${CORACLE_TEST_LANES:-2}"
statusdir="$results/.status"
mkdir -p "$statusdir"

run_project() {
  local project="$1" name
  name="$(basename "$project" .csproj)"
  echo "==> $name (started $(date -u +%H:%M:%S))"
  local start=$SECONDS
  timeout 2400 dotnet test "$project" -c Release --no-build -nologo \
      --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=minimal" \
      --results-directory "$results" 2>&1 | sed -u "s/^/[${name#Coracle.}] /"
  local rc=${PIPESTATUS[0]}
  echo "$rc" > "$statusdir/$name"
  echo "==> $name: exit $rc after $((SECONDS - start)) s"
}

run_lane() {
  local project
  for project in "$@"; do
    run_project "$project"
  done
}

projects=$(ls tests/*/*.Tests.csproj | sort)
if [[ "$lanes" == "1" ]]; then
  run_lane $projects
else
  # The short projects that build kernel state in network namespaces and time packets, datagrams and elections on a
  # 2-core machine run first, alone (about a minute), so the node tests' load does not make their waits fail.
  alone=() kube=() rest=()
  for project in $projects; do
    case "$project" in
      tests/Node.Tests/*) kube+=("$project") ;;
      tests/Plugins.Cni.Tests/*|tests/Plugins.LoadBalancer.Tests/*|tests/Plugins.Datastore.Etcd.Tests/*|tests/Plugins.Runtime.Tests/*) alone+=("$project") ;;
      *) rest+=("$project") ;;
    esac
  done
  run_lane "${alone[@]}"
  run_lane "${kube[@]}" &
  kube_lane=$!
  run_lane "${rest[@]}"
  wait "$kube_lane"
fi

status=0
for project in $projects; do
  name="$(basename "$project" .csproj)"
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
