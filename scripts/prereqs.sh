#!/usr/bin/env bash
# Installs the Debian packages a role needs, only when something is missing. Usage: prereqs.sh run|test
set -euo pipefail

run_pkgs=(containerd runc util-linux iproute2 iptables nftables zstd containernetworking-plugins busybox-static)
test_pkgs=("${run_pkgs[@]}" etcd-server etcd-client postgresql mariadb-server openssl python3 kubernetes-client golang-go
  # Appliance images (tests/Packaging.Tests): the arm64 image runs under qemu-user with Debian's arm64 loader and libc.
  qemu-user-static binfmt-support libc6:arm64 libstdc++6:arm64 libssl3:arm64 zlib1g:arm64)

case "${1:-run}" in
  run) wanted=("${run_pkgs[@]}") ;;
  test) wanted=("${test_pkgs[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
  # Any kubectl will do (the image may carry one from another package).
  [[ $p == kubernetes-client ]] && command -v kubectl >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "coracle: missing Debian packages: ${missing[*]}; run this as root or install them with apt-get" >&2
    exit 2
  fi
  echo "==> installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [[ " ${missing[*]} " == *":arm64 "* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
  fi
  apt-get update -qq
  # kubernetes-client is optional (not in every Debian release); install the rest even if it is absent.
  available=()
  for p in "${missing[@]}"; do
    if apt-cache show "$p" >/dev/null 2>&1; then available+=("$p"); else echo "==> $p is not packaged here; skipping it"; fi
  done
  if ((${#available[@]})); then apt-get install -y -qq --no-install-recommends "${available[@]}" >/dev/null; fi
  # The packaged services are not wanted: tests start their own instances on loopback.
  for svc in etcd postgresql mariadb containerd; do
    (command -v systemctl >/dev/null && systemctl disable --now "$svc" >/dev/null 2>&1) || true
    (command -v service >/dev/null && service "$svc" stop >/dev/null 2>&1) || true
  done
fi

if ! command -v dotnet >/dev/null; then
  echo "coracle: the .NET 10 SDK is required (dotnet not on PATH); install it from Microsoft's Debian packages" >&2
  exit 2
fi
