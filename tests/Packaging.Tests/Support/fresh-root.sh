#!/usr/bin/env bash
# A fresh root for an installed image, as a device would have it:
#   fresh-root.sh prepare ROOT            the mount points the chroot needs (the only things in ROOT before install)
#   fresh-root.sh enter ROOT PIDFILE CMD  (run under `unshare -m -n`) bind the host's /usr, a few /etc files, /proc,
#                                         /sys, /dev and /tmp into ROOT, give the namespace a loopback and a dummy
#                                         default route (nothing leaves it), write this shell's pid, exec CMD chrooted.
# The mounts and the network namespace end with the process: nothing to clean up on the host.
set -euo pipefail
mode=$1 root=$2
dirs=(usr/bin usr/sbin usr/lib/x86_64-linux-gnu usr/lib64 usr/libexec usr/share usr/lib/cni proc sys dev tmp etc/ssl etc/alternatives)
files=(etc/hosts etc/resolv.conf etc/passwd etc/group etc/nsswitch.conf etc/ld.so.cache)
case "$mode" in
  prepare)
    for d in "${dirs[@]}" var/lib var/log run; do mkdir -p "$root/$d"; done
    for f in "${files[@]}"; do mkdir -p "$root/$(dirname "$f")"; : >"$root/$f"; done
    # iptables' lock, which any iptables user creates in /run (a tmpfs on a device): not Coracle's to remove.
    : >"$root/run/xtables.lock"
    ln -sfn usr/bin "$root/bin"; ln -sfn usr/sbin "$root/sbin"; ln -sfn usr/lib "$root/lib"; ln -sfn usr/lib64 "$root/lib64"
    ;;
  enter)
    pidfile=$3; shift 3
    ip link set lo up
    ip link add pkgv0 type veth peer name pkgv1 && ip addr add 10.251.0.2/24 dev pkgv0 && ip link set pkgv1 up && ip link set pkgv0 up
    ip route add default via 10.251.0.1
    for d in "${dirs[@]}"; do
      [[ -e /$d ]] || continue
      case "$d" in proc|sys|dev) mount --rbind "/$d" "$root/$d" ;; *) mount --bind "/$d" "$root/$d" ;; esac
    done
    for f in "${files[@]}"; do [[ -e /$f ]] && mount --bind "/$f" "$root/$f"; done
    echo $$ >"$pidfile"
    exec chroot "$root" "$@"
    ;;
  *) echo "usage: fresh-root.sh prepare ROOT | enter ROOT PIDFILE CMD..." >&2; exit 2 ;;
esac
