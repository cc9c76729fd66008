#!/usr/bin/env bash
# Installs a Coracle image tarball from disk, like get.k3s.io does from the network:
#
#   sh install.sh [coracle-PROFILE.tar.zst]          # the .sha256 file must be beside it
#   INSTALL_CORACLE_EXEC="agent --server https://10.0.0.1:9345 --token K10..." sh install.sh coracle-pi-armv7-agent.tar.zst
#
# Environment:
#   INSTALL_CORACLE_EXEC        server|agent and its flags (default: the image's role); the unit runs
#                               /usr/local/bin/coracle EXEC. A --token value goes to the unit's 0600 env file instead.
#   INSTALL_CORACLE_SKIP_START  true: write everything but do not enable or start the unit
#   INSTALL_CORACLE_ROOT        install below this folder instead of / (images for SD cards, tests); never starts
#
# Layout: the image's usr/lib/coracle/ goes to /usr/lib/coracle/slots/a/ (staged, then renamed into place);
# /usr/lib/coracle/current -> slots/a, /usr/lib/coracle/bin -> current/bin, /usr/local/bin/coracle ->
# /usr/lib/coracle/current/coracle; /etc/coracle/appliance.toml (0600) from the image when there is none;
# /etc/systemd/system/coracle.service or coracle-agent.service; /usr/local/bin/coracle-uninstall.sh.
# Everything installed is listed in /usr/lib/coracle/install.manifest, which the uninstall script removes.
# Nothing on disk changes before the tarball's SHA-256 and contents are checked. Errors: one line, exit 2.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi # `sh install.sh` works too
set -euo pipefail

fail() { echo "coracle: error: install.sh: $1" >&2; exit "${2:-2}"; }

root="${INSTALL_CORACLE_ROOT:-/}"
root="${root%/}"
here="$(cd "$(dirname "$0")" && pwd)"
tarball="${1:-}"
if [[ -z $tarball ]]; then
  shopt -s nullglob
  found=("$here"/coracle-*.tar.zst "$here"/coracle-*.tar.gz)
  shopt -u nullglob
  ((${#found[@]} == 1)) || fail "no tarball named and ${#found[@]} coracle-*.tar.zst/.tar.gz beside install.sh; run install.sh coracle-PROFILE.tar.zst"
  tarball="${found[0]}"
fi
[[ -f $tarball ]] || fail "$tarball: no such file; name the image tarball (coracle-PROFILE.tar.zst)"
[[ $(id -u) -eq 0 ]] || fail "must run as root; run it with sudo"
[[ -f $tarball.sha256 ]] || fail "$tarball.sha256: missing; put the image's .sha256 file beside the tarball"

# 1. Checksum, before anything else.
expected="$(awk 'NR == 1 { print $1 }' "$tarball.sha256")"
actual="$(sha256sum "$tarball" | awk '{ print $1 }')"
[[ $expected =~ ^[0-9a-f]{64}$ ]] || fail "$tarball.sha256: no SHA-256 in it; use the .sha256 file the build wrote"
[[ $actual == "$expected" ]] || fail "$tarball: sha256 $actual does not match $tarball.sha256 ($expected); the tarball is damaged or tampered with, copy it again"

case "$tarball" in
  *.tar.zst) decompress=(zstd -d -q -c) ;;
  *.tar.gz) decompress=(gzip -d -c) ;;
  *) fail "$tarball: not a .tar.zst or .tar.gz image; use the tarball packaging/build.sh wrote" ;;
esac
command -v "${decompress[0]}" >/dev/null || fail "${decompress[0]} not found; install it (apt-get install ${decompress[0]})"

# 2. Is it a Coracle image, and what to run (read from the tarball; nothing written yet).
listing="$("${decompress[@]}" "$tarball" | tar -t -f - 2>/dev/null)" || fail "$tarball: cannot be unpacked; copy it again"
grep -qx 'usr/lib/coracle/coracle' <<<"$listing" && grep -qx 'usr/lib/coracle/image.json' <<<"$listing" \
  || fail "$tarball: no usr/lib/coracle/coracle and image.json in it; not a Coracle image"
role="$("${decompress[@]}" "$tarball" | tar -x -O -f - usr/lib/coracle/image.json | sed -n 's/^ *"role": *"\([a-z]*\)".*/\1/p' | head -n 1 || true)"
exec_args="${INSTALL_CORACLE_EXEC:-${role:-server}}"
read -r -a words <<<"$exec_args"
verb="${words[0]:-}"
case "$verb" in
  server|agent) ;;
  *) fail "INSTALL_CORACLE_EXEC: '$verb' is not server or agent; set INSTALL_CORACLE_EXEC=\"server ...\" or \"agent --server URL --token T\"" ;;
esac
if [[ $verb == agent && " $exec_args " != *" --server"* ]]; then
  fail "INSTALL_CORACLE_EXEC: agent needs --server URL and --token T; set INSTALL_CORACLE_EXEC=\"agent --server https://SERVER:9345 --token TOKEN\""
fi

# 3. Unpack to a staging folder on the same file system (so the slot is renamed into place).
lib="$root/usr/lib/coracle"
mkdir -p "$root/usr/lib" 2>/dev/null || fail "$root/usr/lib: cannot create it; check INSTALL_CORACLE_ROOT"
stage="$(mktemp -d "$root/usr/lib/.coracle-stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
"${decompress[@]}" "$tarball" | tar -x -C "$stage" -f - 2>/dev/null || fail "$tarball: cannot be unpacked; copy it again"
payload="$stage/usr/lib/coracle"
# The token goes to the unit's environment file (0600), not into the world-readable unit.
token=""; args=()
for ((i = 1; i < ${#words[@]}; i++)); do
  case "${words[i]}" in
    --token) token="${words[i + 1]:-}"; i=$((i + 1)) ;;
    --token=*) token="${words[i]#--token=}" ;;
    *) args+=("${words[i]}") ;;
  esac
done
unit_name=coracle; [[ $verb == agent ]] && unit_name=coracle-agent

# 4. Record what we create (device paths), so the uninstall script removes exactly that.
manifest_new="$stage/install.manifest"
[[ -f $lib/install.manifest ]] && cp "$lib/install.manifest" "$manifest_new" || : >"$manifest_new"
record() { echo "$1 $2" >>"$manifest_new"; }
makedir() { # makedir DEVICE_PATH: create it (and parents) under root, recording the ones that did not exist
  local d="$1" missing=()
  while [[ -n $d && $d != / && ! -d $root$d ]]; do missing=("$d" "${missing[@]}"); d="$(dirname "$d")"; done
  for d in "${missing[@]}"; do mkdir -m 0755 "$root$d"; record dir "$d"; done
}

# 5. Slot a, atomically: the staged payload is renamed into place; the old slot goes after.
makedir /usr/lib/coracle
mkdir -p -m 0755 "$lib/slots"
chmod -R go-w "$payload"
mv -T "$payload" "$lib/slots/.a.new"
if [[ -e $lib/slots/a ]]; then mv -T "$lib/slots/a" "$lib/slots/.a.old"; fi
mv -T "$lib/slots/.a.new" "$lib/slots/a"
rm -rf "$lib/slots/.a.old"
link() { ln -sfn "$1" "$2.tmp.$$" && mv -T "$2.tmp.$$" "$2"; } # atomic symlink replace
link slots/a "$lib/current"
link current/bin "$lib/bin"
makedir /usr/local/bin
link /usr/lib/coracle/current/coracle "$root/usr/local/bin/coracle"
record file /usr/local/bin/coracle

# 6. Configuration: the image's defaults, only when there is none.
makedir /etc/coracle
chmod 0700 "$root/etc/coracle"
if [[ ! -e $root/etc/coracle/appliance.toml ]]; then
  install -m 0600 "$lib/current/appliance.toml" "$root/etc/coracle/appliance.toml"
fi
record file /etc/coracle/appliance.toml

# 7. The systemd unit for the role (the other role's unit, if an earlier run wrote it, goes).
makedir /etc/systemd/system
for other in coracle coracle-agent; do
  if [[ $other != "$unit_name" && -e $root/etc/systemd/system/$other.service ]] && grep -q "^file /etc/systemd/system/$other.service$" "$manifest_new"; then
    [[ $root == "" ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]] && systemctl disable --now "$other" >/dev/null 2>&1 || true
    rm -f "$root/etc/systemd/system/$other.service" "$root/etc/systemd/system/$other.service.env" "$root/etc/systemd/system/$other.service.d/update.conf"
    rmdir "$root/etc/systemd/system/$other.service.d" 2>/dev/null || true
  fi
done
unit="$root/etc/systemd/system/$unit_name.service"
{
  echo "[Unit]"
  echo "Description=Coracle $verb - lightweight Kubernetes for edge appliances"
  echo "Documentation=file:///usr/lib/coracle/current/README.md"
  echo "Wants=network-online.target"
  echo "After=network-online.target"
  echo
  echo "[Service]"
  echo "Type=simple"
  # A 4 MiB gen0 budget: 3-5 MB less idle and 11-16 MB less under load, no measurable throughput cost
  # (docs/benchmarks.md, "Where coracle server's memory goes"); the .NET 10 GC reads it only from the environment.
  # /etc/default/$unit_name may override it.
  echo "Environment=DOTNET_GCgen0size=0x400000"
  echo "EnvironmentFile=-/etc/default/$unit_name"
  echo "EnvironmentFile=-/etc/systemd/system/$unit_name.service.env"
  echo "ExecStart=/usr/local/bin/coracle $verb${args[*]:+ ${args[*]}}"
  echo "KillMode=process"
  echo "Delegate=yes"
  echo "LimitNOFILE=1048576"
  echo "LimitNPROC=infinity"
  echo "LimitCORE=infinity"
  echo "TasksMax=infinity"
  echo "TimeoutStartSec=0"
  echo "TimeoutStopSec=60"
  echo "Restart=always"
  echo "RestartSec=5s"
  echo
  echo "[Install]"
  echo "WantedBy=multi-user.target"
} >"$unit.tmp"
chmod 0644 "$unit.tmp"
mv -T "$unit.tmp" "$unit"
record file "/etc/systemd/system/$unit_name.service"
( umask 077; if [[ -n $token ]]; then echo "CORACLE_TOKEN=$token"; fi >"$unit.env.tmp" )
mv -T "$unit.env.tmp" "$unit.env"
record file "/etc/systemd/system/$unit_name.service.env"
# The OTA boot guard runs before every start, from outside the slots (docs/updates.md): the guard itself at
# /usr/lib/coracle/update/boot-guard, its ExecStartPre in the unit's drop-in. An image without them (older builds)
# installs without over-the-air rollback.
if [[ -f $lib/current/update/boot-guard ]]; then
  makedir /usr/lib/coracle/update
  install -m 0755 "$lib/current/update/boot-guard" "$lib/update/boot-guard.tmp" && mv -T "$lib/update/boot-guard.tmp" "$lib/update/boot-guard"
  record file /usr/lib/coracle/update/boot-guard
  makedir "/etc/systemd/system/$unit_name.service.d"
  install -m 0644 "$lib/current/update/coracle-update.conf" "$unit.d/update.conf"
  record file "/etc/systemd/system/$unit_name.service.d/update.conf"
fi

# 8. The uninstall script: stop the node (killall), then remove every recorded file, the image and the node's state.
uninstall="$root/usr/local/bin/coracle-uninstall.sh"
cat >"$uninstall.tmp" <<'EOF'
#!/bin/sh
# Removes Coracle as install.sh installed it: stops the unit and the node (coracle killall), then every file in
# /usr/lib/coracle/install.manifest, the image (/usr/lib/coracle), the configuration (/etc/coracle) and the node's
# state (/var/lib/coracle, /run/coracle, and what its kubelet and flannel keep as on K3s: /var/lib/kubelet,
# /var/log/pods, /run/flannel, /var/lib/cni).
set -e
[ "$(id -u)" -eq 0 ] || { echo "coracle: error: coracle-uninstall.sh: must run as root; run it with sudo" >&2; exit 2; }
manifest=/usr/lib/coracle/install.manifest
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for unit in coracle coracle-agent; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
if [ -x /usr/local/bin/coracle ]; then
  /usr/local/bin/coracle killall || echo "coracle-uninstall.sh: coracle killall failed; removing the files anyway" >&2
fi
if [ -f "$manifest" ]; then
  { grep '^file ' "$manifest" || true; } | cut -d' ' -f2- | while IFS= read -r path; do rm -f "$path"; done
  dirs="$({ grep '^dir ' "$manifest" || true; } | cut -d' ' -f2- | sort -r)"
else
  dirs=""
fi
rm -rf /usr/lib/coracle /etc/coracle /var/lib/coracle /run/coracle /var/lib/kubelet /var/log/pods /run/flannel /var/lib/cni
for d in $dirs; do rmdir "$d" 2>/dev/null || true; done
rm -f /usr/local/bin/coracle-uninstall.sh
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
echo "coracle uninstalled"
EOF
chmod 0755 "$uninstall.tmp"
mv -T "$uninstall.tmp" "$uninstall"
record file /usr/local/bin/coracle-uninstall.sh
sort -u "$manifest_new" >"$lib/install.manifest.tmp"
mv -T "$lib/install.manifest.tmp" "$lib/install.manifest"

# 9. Start.
version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$lib/current/image.json" | head -n 1)"
profile="$(sed -n 's/^ *"profile": *"\([^"]*\)".*/\1/p' "$lib/current/image.json" | head -n 1)"
echo "installed coracle $version ($profile) into ${root:-/}/usr/lib/coracle/slots/a; unit $unit_name.service runs: coracle $verb${args[*]:+ ${args[*]}}"
if [[ -n $root || ${INSTALL_CORACLE_SKIP_START:-false} == true ]]; then
  echo "not started (INSTALL_CORACLE_SKIP_START or INSTALL_CORACLE_ROOT); start with: systemctl enable --now $unit_name"
elif command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable --now "$unit_name"
  echo "started: systemctl status $unit_name"
else
  echo "no systemd here; start with: coracle $verb"
fi
