#!/usr/bin/env bash
# Sourced by server.sh and test.sh: finds the Kubernetes binaries (and the add-on binaries) a node runs.
#
#   1. CORACLE_K8S_BIN, when set, is used as it is;
#   2. else a components folder the caller names (server.sh: --components-dir or /usr/lib/coracle/bin) that holds
#      a kubelet is left to coracle itself;
#   3. else the prebuilt, checksummed tarballs in ../shared/components (beside this repository) are verified and
#      unpacked once into ~/.cache/coracle-components, and CORACLE_K8S_BIN (and CORACLE_ADDONS_BIN) point there.
#
# Prints one line saying which binaries are used. Usage: coracle_components ROOT [COMPONENTS_DIR]

coracle_components() {
  local root="$1" configured="${2:-}"
  if [[ -n "${CORACLE_K8S_BIN:-}" ]]; then
    echo "==> Kubernetes binaries: CORACLE_K8S_BIN=$CORACLE_K8S_BIN"
    return 0
  fi
  if [[ -n "$configured" && -x "$configured/kubelet" ]]; then
    echo "==> Kubernetes binaries: components-dir $configured"
    return 0
  fi

  local shared
  shared="$(cd "$root/.." && pwd)/shared/components"
  local cache="${CORACLE_COMPONENTS_CACHE:-$HOME/.cache/coracle-components}"
  local k8s addons
  k8s="$(ls "$shared"/kubernetes-v*-linux-amd64.tar.xz 2>/dev/null | sort -V | tail -n 1)"
  if [[ "$(uname -m)" != "x86_64" || -z "$k8s" ]]; then
    echo "==> Kubernetes binaries: none found (no CORACLE_K8S_BIN, no kubelet in ${configured:-components-dir}, no $shared); the node runs without Kubernetes and tests that need it skip"
    return 0
  fi
  addons="$shared/addons-linux-amd64.tar.xz"

  local version
  version="$(basename "$k8s" -linux-amd64.tar.xz)"
  if [[ ! -f "$cache/$version/.verified" || ( -f "$addons" && ! -f "$cache/addons/.verified" ) ]]; then
    echo "==> verifying and unpacking $shared into $cache"
    (cd "$shared" && sha256sum --quiet -c SHA256SUMS) || { echo "coracle: $shared/SHA256SUMS does not match its tarballs; rebuild them with ../shared/tools" >&2; return 2; }
    mkdir -p "$cache"
    rm -rf "${cache:?}/$version" "$cache/addons"
    tar -xJf "$k8s" -C "$cache" || return 2
    (cd "$cache/$version" && sha256sum --quiet -c SHA256SUMS) || { echo "coracle: $cache/$version does not match its SHA256SUMS" >&2; return 2; }
    touch "$cache/$version/.verified"
    if [[ -f "$addons" ]]; then
      tar -xJf "$addons" -C "$cache" || return 2
      (cd "$cache/addons" && sha256sum --quiet -c SHA256SUMS) || { echo "coracle: $cache/addons does not match its SHA256SUMS" >&2; return 2; }
      touch "$cache/addons/.verified"
    fi
  fi
  export CORACLE_K8S_BIN="$cache/$version"
  [[ -d "$cache/addons" ]] && export CORACLE_ADDONS_BIN="$cache/addons"
  echo "==> Kubernetes binaries: $version from $shared (checksums verified), unpacked in $CORACLE_K8S_BIN"
}
