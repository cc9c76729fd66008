#!/usr/bin/env bash
# The main job: builds Coracle (host + every plugin) and runs `coracle server` with the embedded SQLite
# datastore. Extra arguments go to `coracle server` (e.g. --data-dir /tmp/coracle --disable traefik).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# The components folder the user asked for, if any (flag or environment), else the default.
components_dir="${CORACLE_COMPONENTS_DIR:-/usr/lib/coracle/bin}"
prev=""
for arg in "$@"; do
  case "$arg" in
    --components-dir=*) components_dir="${arg#--components-dir=}" ;;
  esac
  [[ "$prev" == "--components-dir" ]] && components_dir="$arg"
  prev="$arg"
done
source "$root/scripts/components.sh"
coracle_components "$root" "$components_dir" || exit 2

"$root/scripts/prereqs.sh" run
dotnet build "$root/Core/Coracle.Core.csproj" -c Release -nologo -v:q -clp:ErrorsOnly
exec "$root/Core/bin/Release/net10.0/coracle" server "$@"
