#!/usr/bin/env bash
# The main job: builds Coracle (host + every plugin) and runs `coracle server` with the embedded SQLite
# datastore. Extra arguments go to `coracle server` (e.g. --data-dir /tmp/coracle --disable traefik).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/prereqs.sh" run
dotnet build "$root/Core/Coracle.Core.csproj" -c Release -nologo -v:q -clp:ErrorsOnly
exec "$root/Core/bin/Release/net10.0/coracle" server "$@"
