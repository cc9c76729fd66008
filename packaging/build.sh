#!/usr/bin/env bash
# Builds an appliance image from a profile, offline: packaging/build.sh PROFILE [options] (packaging/build.py --help).
#   packaging/build.sh gateway-x64-full
#   packaging/build.sh pi-arm64-minimal --no-components     # no arm64 Kubernetes binaries here: said, and recorded
# Output in artifacts/: coracle-PROFILE.tar.zst, .sha256, .cdx.json (SBOM), .sizes.txt and install.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ " $* " != *" --no-components "* && " $* " != *" --help "* && -z "${CORACLE_COMPONENTS_CACHE:-}" ]]; then
  # The Kubernetes binaries of ../shared/components, verified and unpacked once into ~/.cache/coracle-components.
  # shellcheck source=../scripts/components.sh
  source "$root/scripts/components.sh"
  (unset CORACLE_K8S_BIN; coracle_components "$root" >/dev/null) || true
fi
exec python3 "$root/packaging/build.py" "$@"
