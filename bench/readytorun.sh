#!/usr/bin/env bash
# Compiles a copy of a build output's host (coracle.dll and the NuGet assemblies beside it) and the SQL datastore plugin
# (its assemblies) to ReadyToRun with the SDK's own crossgen2 package, so start-up can be compared with and without
# precompiled code (issue 15, item 4). Measurement only: the build itself is unchanged.
#   bench/readytorun.sh FROM TO [PLUGIN...]     e.g. bench/readytorun.sh Core/bin/Release/net10.0 /tmp/r2r
# PLUGIN names folders under plugins/ to compile as well (default: Coracle.Plugins.Datastore.Sql). Prints the time taken
# and the size of what was compiled, before and after.
set -euo pipefail
(($# >= 2)) || { echo "usage: bench/readytorun.sh FROM TO [PLUGIN...]" >&2; exit 2; }
from="$1"; to="$2"; shift 2
plugins=("${@:-Coracle.Plugins.Datastore.Sql}")
crossgen=$(ls -d "$HOME"/.nuget/packages/microsoft.netcore.app.crossgen2.linux-x64/*/tools/crossgen2 | sort -V | tail -1)
[[ -x "$crossgen" ]] || { echo "readytorun.sh: no crossgen2 package restored (Microsoft.NETCore.App.Crossgen2.linux-x64)" >&2; exit 1; }
runtime=$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ {v=$2; d=$3} END {gsub(/[\[\]]/, "", d); print d "/" v}')
aspnet=$(dotnet --list-runtimes | awk '/Microsoft.AspNetCore.App/ {v=$2; d=$3} END {gsub(/[\[\]]/, "", d); print d "/" v}')
rm -rf "$to"; cp -a "$from" "$to"
start=$(date +%s.%N); before=0; after=0
compile() { # DIR: every IL-only assembly in DIR, against the framework, DIR and the host's folder
  local dir="$1" dll out refs=() f
  for f in "$dir"/*.dll; do refs+=(-r "$f"); done
  # The host's assemblies a plugin shares (the contracts); a plugin's own copy of a name wins.
  for f in "$to"/*.dll; do [[ -e "$dir/$(basename "$f")" ]] || refs+=(-r "$f"); done
  for dll in "$dir"/*.dll; do
    out="$dir/.r2r.$(basename "$dll")"
    if "$crossgen" "$dll" -o "$out" --targetos linux --targetarch x64 -O -r "$runtime/*.dll" -r "$aspnet/*.dll" \
        "${refs[@]}" >"$out.log" 2>&1; then
      before=$((before + $(stat -c %s "$dll"))); after=$((after + $(stat -c %s "$out")))
      mv "$out" "$dll"
    else
      # Already ReadyToRun, or not IL (crossgen2 says why): left as it is.
      rm -f "$out"
    fi
    rm -f "$out.log"
  done
}
compile "$to"
for p in "${plugins[@]}"; do compile "$to/plugins/$p"; done
printf 'crossgen2 %s: %.1f s; compiled assemblies %.1f MiB -> %.1f MiB\n' "$(basename "$(dirname "$(dirname "$crossgen")")")" \
  "$(echo "$(date +%s.%N) - $start" | bc)" "$(echo "$before/1048576" | bc -l)" "$(echo "$after/1048576" | bc -l)"
