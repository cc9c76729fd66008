#!/usr/bin/env bash
# Writes a busybox image tarball (docker-archive, as `docker save` writes it) from Debian's busybox-static, for the
# airgap folder of a node that has no registry: scripts/busybox-image.sh OUT.tar [NAME:TAG]
# (default name docker.io/library/busybox:coracle). Then: cp OUT.tar DATA/agent/images/
set -euo pipefail
out="${1:?usage: $0 OUT.tar [NAME:TAG]}"
tag="${2:-docker.io/library/busybox:coracle}"
busybox=/bin/busybox
if [[ ! -x $busybox ]] || ! file -b "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  command -v file >/dev/null || { echo "coracle: 'file' is needed to check $busybox; apt-get install -y file" >&2; exit 2; }
  echo "coracle: $busybox is missing or not statically linked; apt-get install -y busybox-static" >&2
  exit 2
fi
case "$(uname -m)" in aarch64) arch=arm64 ;; armv7l|armv6l) arch=arm ;; *) arch=amd64 ;; esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp" "$work/rootfs/etc" "$work/image"
cp "$busybox" "$work/rootfs/bin/busybox"
for applet in sh echo sleep cat ls httpd ping wget nc hostname ip mkdir true nslookup env date; do
  ln -s busybox "$work/rootfs/bin/$applet"
done
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/rootfs" -cf "$work/image/layer.tar" .
diff_id="sha256:$(sha256sum "$work/image/layer.tar" | cut -d' ' -f1)"
cat > "$work/image/config.json" <<JSON
{"architecture":"$arch","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["$diff_id"]}}
JSON
cat > "$work/image/manifest.json" <<JSON
[{"Config":"config.json","RepoTags":["$tag"],"Layers":["layer.tar"]}]
JSON
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/image" -cf "$out" manifest.json config.json layer.tar
echo "$out: $tag ($(du -h "$out" | cut -f1))"
