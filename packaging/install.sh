#!/usr/bin/env bash
# Installs an unpacked Coracle image (run from usr/lib/coracle of the tarball, or after unpacking to /):
# links /usr/local/bin/coracle, installs the systemd unit and a default /etc/coracle/appliance.toml.
set -euo pipefail
lib=/usr/lib/coracle
[[ $(id -u) -eq 0 ]] || { echo "install.sh: run as root" >&2; exit 2; }
[[ -x $lib/coracle ]] || { echo "install.sh: $lib/coracle not found; unpack the image tarball to / first" >&2; exit 2; }
chmod -R go-w "$lib"
ln -sf "$lib/coracle" /usr/local/bin/coracle
install -d -m 0755 /etc/coracle
[[ -e /etc/coracle/appliance.toml ]] || install -m 0600 "$lib/appliance.toml" /etc/coracle/appliance.toml
if [[ -d /etc/systemd/system ]]; then
  install -m 0644 "$lib/coracle.service" /etc/systemd/system/coracle.service
  command -v systemctl >/dev/null && systemctl daemon-reload || true
  echo "installed; start with: systemctl enable --now coracle"
else
  echo "installed; start with: coracle server"
fi
