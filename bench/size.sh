#!/usr/bin/env bash
# Publishes Core + every plugin for linux-x64 and linux-arm64, framework-dependent and self-contained, and
# prints the size of each layout (host alone, plugins, total). usage: bench/size.sh [OUTDIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/artifacts/publish}"
rm -rf "$out"
for rid in linux-x64 linux-arm64; do
  for mode in framework-dependent self-contained; do
    sc=false; [[ $mode == self-contained ]] && sc=true
    dir="$out/$rid-$mode"
    dotnet publish "$root/Core/Coracle.Core.csproj" -c Release -r "$rid" --self-contained "$sc" -o "$dir" -nologo -v:q -clp:ErrorsOnly >/dev/null
    total=$(du -sb "$dir" | cut -f1)
    plugins=$(du -sb "$dir/plugins" | cut -f1)
    awk -v r="$rid" -v m="$mode" -v t="$total" -v p="$plugins" -v n="$(ls "$dir/plugins" | wc -l)" 'BEGIN {
      printf "%-13s %-20s host %6.1f MiB  plugins %6.1f MiB  total %6.1f MiB  (%d plugin folders)\n", r, m, (t-p)/1048576, p/1048576, t/1048576, n }'
  done
done
