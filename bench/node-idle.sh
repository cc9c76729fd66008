#!/usr/bin/env bash
# Measures a running node at idle: RSS of coracle and of coracle + every descendant (components, shims,
# containers), and bytes written to disk per minute from /proc/PID/io (write_bytes).
#   bench/node-idle.sh DATA_DIR [SECONDS]      (default 120 s window)
set -euo pipefail
data="${1:?usage: node-idle.sh DATA_DIR [SECONDS]}"; window="${2:-120}"
coracle="$(cd "$(dirname "$0")/.." && pwd)/Core/bin/Release/net10.0/coracle"
[[ -x $coracle ]] || coracle="$(dirname "$coracle")/../../Debug/net10.0/coracle"
pid="$("$coracle" status --data-dir "$data" | head -1 | sed -E 's/.* pid ([0-9]+) .*/\1/')"
descendants() { local p; for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do echo "$p"; descendants "$p"; done; }
# containerd shims re-parent to init: count them by their -namespace k8s.io / address under the data dir.
shims() { pgrep -f "containerd-shim.*$data" || true; }
all() { { echo "$pid"; descendants "$pid"; for s in $(shims); do echo "$s"; descendants "$s"; done; } | sort -u; }
rss() { awk '/VmRSS/ {s+=$2} END {print s}' $(for p in $(all); do echo /proc/"$p"/status; done) 2>/dev/null; }
written() { local p s=0 w; for p in $(all); do w="$(awk '/^write_bytes/ {print $2; exit}' /proc/"$p"/io 2>/dev/null)"; s=$((s + ${w:-0})); done; echo "$s"; }
echo "coracle pid $pid; $(all | wc -l) processes"
echo "coracle RSS: $(awk '/VmRSS/ {print $2}' /proc/"$pid"/status) kB; node RSS: $(rss) kB"
# Per process (pid, name, write_bytes), to break the total down; a process that exits in the window counts 0.
each() { local p; for p in $(all); do echo "$p $(cat /proc/"$p"/comm 2>/dev/null) $(awk '/^write_bytes/ {print $2; exit}' /proc/"$p"/io 2>/dev/null)"; done; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
each0="$(each)"
before_c="$(awk '/^write_bytes/ {print $2}' /proc/"$pid"/io)"; before="$(written)"
sleep "$window"
after_c="$(awk '/^write_bytes/ {print $2}' /proc/"$pid"/io)"; after="$(written)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "written per minute: node $(( (after - before) * 60 / window )) B ($(awk -v b=$((after - before)) -v w="$window" 'BEGIN {printf "%.1f", b / w / 1024}') KiB/s), coracle $(( (after_c - before_c) * 60 / window )) B"
echo "by process (B/min, non-zero):"
join <(echo "$each0" | awk 'NF == 3 {print $1, $2, $3}' | sort) <(each | awk 'NF == 3 {print $1, $2, $3}' | sort) \
  | awk -v w="$window" '{d = ($5 - $3) * 60 / w; if (d > 0) printf "  %-8s %-18s %9d\n", $1, $2, d}' | sort -k3 -nr
