#!/usr/bin/env bash
# Install the image content of the rms-edge tree into a root directory, with the same paths and
# modes the Yocto recipes (rms-edge, rms-edge-rootfs) use:
#   systemd/*.service, *.mount, rms-edge.service.d/*.conf  -> /usr/lib/systemd/system/
#   rootfs/**                                               -> / (verbatim)
#   docs/image.md                                           -> /usr/share/doc/rms-edge/image.md
# systemd/dev/ (test-only drop-ins) is NOT installed here.
#   install-content.sh SRC_TREE DEST_ROOT
set -euo pipefail
SRC="$1"; DEST="$2"
unitdir="$DEST/usr/lib/systemd/system"
install -d "$unitdir/rms-edge.service.d"
for u in "$SRC"/systemd/*.service "$SRC"/systemd/*.mount; do
  install -m 0644 "$u" "$unitdir/"
done
for d in "$SRC"/systemd/rms-edge.service.d/*.conf; do
  [ -e "$d" ] && install -m 0644 "$d" "$unitdir/rms-edge.service.d/"
done
# rootfs/: verbatim, keeping the executable bit of scripts; owned by root.
(cd "$SRC/rootfs" && find . -type d) | while read -r d; do install -d -m 0755 "$DEST/$d"; done
(cd "$SRC/rootfs" && find . -type f) | while read -r f; do
  if [ -x "$SRC/rootfs/$f" ]; then mode=0755; else mode=0644; fi
  install -m "$mode" "$SRC/rootfs/$f" "$DEST/$f"
done
# The configuration may hold api-key: readable by root and the service group only (the group
# is set by the caller once the rms-edge group exists).
[ -f "$DEST/etc/rms-edge/config.toml" ] && chmod 0640 "$DEST/etc/rms-edge/config.toml"
if [ -f "$SRC/docs/image.md" ]; then
  install -D -m 0644 "$SRC/docs/image.md" "$DEST/usr/share/doc/rms-edge/image.md"
fi
