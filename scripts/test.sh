#!/usr/bin/env bash
# The whole test suite: installs prerequisites, builds everything once, runs every test project one after
# another (they share 2 cores and real system services), writes TRX files to artifacts/test-results and
# ends with one summary line: "N passed, N failed, N skipped".
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

status=0
for project in $(ls tests/*/*.Tests.csproj | sort); do
  name="$(basename "$project" .csproj)"
  echo "==> $name"
  if ! timeout 1200 dotnet test "$project" -c Release --no-build -nologo \
      --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=minimal" \
      --results-directory "$results"; then
    status=1
  fi
done

summary="$(python3 "$root/scripts/trx-summary.py" "$results")" || { echo "no test results found"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
echo "$summary"
failed="$(echo "$summary" | sed -E 's/.* ([0-9]+) failed.*/\1/')"
if [[ "$failed" != "0" || $status -ne 0 ]]; then
  exit 1
fi
