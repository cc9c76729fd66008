#!/usr/bin/env bash
# Builds an appliance image: the host plus a chosen plugin set for one architecture, as a tarball.
#   packaging/build-image.sh linux-arm64 [--exclude Plugins.Ingress.Traefik,Plugins.Cni.Calico] [--self-contained]
# The tarball unpacks to usr/lib/coracle/ (host + plugins/) and usr/local/bin/coracle; install.sh installs it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rid="${1:?usage: build-image.sh linux-x64|linux-arm64 [--exclude LIST] [--self-contained]}"; shift
exclude=""; sc=false
while (($#)); do
  case "$1" in
    --exclude) exclude="$2"; shift 2 ;;
    --self-contained) sc=true; shift ;;
    *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
dotnet publish "$root/Core/Coracle.Core.csproj" -c Release -r "$rid" --self-contained "$sc" \
  "-p:CoracleExcludePlugins=\"$exclude\"" -o "$stage/usr/lib/coracle" -nologo -v:q -clp:ErrorsOnly
cp "$root/appliance.toml" "$root/README.md" "$stage/usr/lib/coracle/"
cp "$root/packaging/coracle.service" "$root/packaging/install.sh" "$stage/usr/lib/coracle/"
chmod -R go-w "$stage"
mkdir -p "$root/artifacts"
out="$root/artifacts/coracle-$rid.tar.gz"
tar -C "$stage" -czf "$out" usr
echo "$out ($(du -h "$out" | cut -f1)): plugins $(ls "$stage/usr/lib/coracle/plugins" | tr '\n' ' ')"
