#!/usr/bin/env bash
# Regenerates Coracle.slnx from every project git knows about (run after adding a project and staging it).
set -euo pipefail
cd "$(dirname "$0")/.."
projects="$(git ls-files '*.csproj' | sort)"
{
  echo '<Solution>'
  for folder in src tests bench; do
    echo "  <Folder Name=\"/$folder/\">"
    for p in $projects; do
      case "$folder:$p" in
        src:Core/*|src:Plugins/*|src:Plugins.*) echo "    <Project Path=\"$p\" />" ;;
        tests:tests/*) echo "    <Project Path=\"$p\" />" ;;
        bench:bench/*) echo "    <Project Path=\"$p\" />" ;;
      esac
    done
    echo '  </Folder>'
  done
  echo '</Solution>'
} > Coracle.slnx
