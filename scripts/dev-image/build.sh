#!/usr/bin/env bash
# Build the rms-edge *development* image: a Debian bookworm rootfs (debootstrap) carrying the same
# systemd/ and rootfs/ content as the Yocto image plus the given rms-edge binary, packed as two
# qemu disks (read-only root + a /data disk labelled "data") and a kernel/initrd to boot with.
#
#   scripts/dev-image/build.sh BINARY [OUTDIR]
#
#   BINARY  path to the rms-edge executable to install as /usr/bin/rms-edge
#           (target/release/rms-edge or target/debug/rms-edge; `--standin` installs the Python
#           stand-in from scripts/dev-image/standin/ instead, to exercise the image without the binary)
#   OUTDIR  default: $ROOT/target/dev-image
#
# Stages (each cached in OUTDIR; delete the file to redo a stage):
#   1. base rootfs  (debootstrap + packages)   $DEV_IMAGE_CACHE/base-<hash>.tar  ~3-10 min, needs the Debian mirror
#                   (default cache: $ROOT/target/dev-image-cache, shared by all OUTDIRs)
#   2. appliance    (units, rootfs/, binary, users)   OUTDIR/root.img      ~30 s
#   3. disks        (root.img ext4 label rootfs, data.img ext4 label data, vmlinuz, initrd.img)
#
# Requires root (debootstrap, chroot, mkfs). Installs debootstrap/e2fsprogs with apt if missing.
# Environment: DEV_IMAGE_MIRROR (default http://deb.debian.org/debian), DEV_IMAGE_DATA_MB (default 512),
#              DEV_IMAGE_ROOT_MB (default 2048), DEV_IMAGE_REBUILD_DATA=1 to wipe the data disk,
#              DEV_IMAGE_STAGE1_ONLY=1 to stop after the (cached) base rootfs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/scripts/dev-image"

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
[ $# -ge 1 ] || usage 2
case "$1" in -h|--help) usage 0 ;; esac

BIN="$1"
OUT="${2:-$ROOT/target/dev-image}"
CACHE="${DEV_IMAGE_CACHE:-$ROOT/target/dev-image-cache}"
MIRROR="${DEV_IMAGE_MIRROR:-http://deb.debian.org/debian}"
DATA_MB="${DEV_IMAGE_DATA_MB:-512}"
ROOT_MB="${DEV_IMAGE_ROOT_MB:-2048}"
SUITE=bookworm

if [ "$BIN" = "--standin" ]; then
  BIN="$HERE/standin/rms-edge-standin.py"
  STANDIN=1
else
  STANDIN=0
fi
[ -x "$BIN" ] || { echo "build.sh: binary '$BIN' is missing or not executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "build.sh: must run as root (debootstrap, chroot, mkfs)" >&2; exit 2; }

need() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}"
  fi
}
need debootstrap e2fsprogs

mkdir -p "$OUT" "$CACHE"
OUT="$(cd "$OUT" && pwd)"; CACHE="$(cd "$CACHE" && pwd)"
log() { printf '[dev-image %(%H:%M:%S)T] %s\n' -1 "$*"; }

# ---------------------------------------------------------------------------------------------
# Stage 1: base rootfs. Packages: systemd as PID 1, networkd, sshd (test access), curl (health
# check), nftables, the Debian kernel (vivid for V4L2 tests, i6300esb watchdog), python3 (the
# stand-in and the nftables generator). Libraries the binary links are added in stage 2.
BASE_PKGS=(systemd systemd-sysv udev dbus kmod iproute2 iputils-ping curl ca-certificates nftables
  openssh-server linux-image-amd64 initramfs-tools python3 procps less e2fsprogs)
BASE_KEY="$(printf '%s\n' "$SUITE" "${BASE_PKGS[@]}" | sha256sum | cut -c1-12)"
BASE_TAR="$CACHE/base-$BASE_KEY.tar"
if [ ! -s "$BASE_TAR" ]; then
  log "stage 1: debootstrap $SUITE (this takes minutes)"
  WORK="$CACHE/base.work"
  rm -rf "$WORK"; mkdir -p "$WORK"
  inc="$(IFS=,; echo "${BASE_PKGS[*]}")"
  debootstrap --variant=minbase --include="$inc" "$SUITE" "$WORK" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
    || { tail -30 "$CACHE/debootstrap.log"; exit 1; }
  # initramfs with the virtio + ext4 modules needed to find LABEL=rootfs
  printf 'virtio_pci\nvirtio_blk\nvirtio_net\next4\n' >> "$WORK/etc/initramfs-tools/modules"
  chroot "$WORK" update-initramfs -u -k all >> "$CACHE/debootstrap.log" 2>&1
  rm -rf "$WORK"/var/cache/apt/archives/*.deb "$WORK"/var/lib/apt/lists/*_dists_*
  tar -C "$WORK" -cpf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$WORK"
else
  log "stage 1: reusing $BASE_TAR"
fi
[ "${DEV_IMAGE_STAGE1_ONLY:-0}" = 1 ] && exit 0

# ---------------------------------------------------------------------------------------------
# Stage 2: the appliance content, installed exactly as the Yocto recipes install it.
log "stage 2: appliance content"
R="$OUT/rootfs"
rm -rf "$R"; mkdir -p "$R"
tar -C "$R" -xpf "$BASE_TAR"

# Shared libraries the binary needs: map them to Debian packages on this (same-release) host.
if [ "$STANDIN" = 0 ] && ldd "$BIN" >/dev/null 2>&1; then
  mapfile -t libpkgs < <(ldd "$BIN" | awk '/=> \//{print $3}' | xargs -r -n1 readlink -f \
    | xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u)
  extra=()
  for p in "${libpkgs[@]}"; do
    chroot "$R" dpkg -s "$p" >/dev/null 2>&1 || extra+=("$p")
  done
  # GStreamer plugins are dlopen()ed, not linked: add the software media set if GStreamer is linked.
  if ldd "$BIN" | grep -q libgstreamer; then
    # v4l-utils: hw-tests unplug vivid's virtual camera with its `disconnect` control.
    extra+=(gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
            gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp v4l-utils)
  fi
  if [ ${#extra[@]} -gt 0 ]; then
    log "stage 2: installing libraries for the binary: ${extra[*]}"
    cp /etc/resolv.conf "$R/etc/resolv.conf"
    mount --bind /proc "$R/proc"
    trap 'umount "$R/proc" 2>/dev/null || true' EXIT
    chroot "$R" apt-get update -q > "$OUT/stage2-apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive chroot "$R" apt-get install -y -q --no-install-recommends "${extra[@]}" \
      >> "$OUT/stage2-apt.log" 2>&1 || { tail -20 "$OUT/stage2-apt.log"; exit 1; }
    chroot "$R" apt-get clean
    umount "$R/proc"; trap - EXIT
  fi
fi

# The binary.
install -D -m 0755 "$BIN" "$R/usr/bin/rms-edge"

# systemd/ and rootfs/ content, verbatim (the same paths the Yocto recipes use).
"$HERE/install-content.sh" "$ROOT" "$R"

# Dev-only additions: test hook drop-in, ssh access with a generated key, serial autologin.
install -D -m 0644 "$ROOT/systemd/dev/rms-edge.service.d/90-test-hooks.conf" \
  "$R/etc/systemd/system/rms-edge.service.d/90-test-hooks.conf"
if [ "$STANDIN" = 1 ]; then
  # The stand-in is a Python script: MemoryDenyWriteExecute and the syscall filter still apply.
  install -D -m 0644 "$HERE/overlay/standin.conf" "$R/etc/systemd/system/rms-edge.service.d/95-standin.conf"
fi
cp -a "$HERE/overlay/etc/." "$R/etc/"
[ -f "$OUT/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C rms-edge-dev -f "$OUT/id_ed25519"
install -D -m 0600 "$OUT/id_ed25519.pub" "$R/root/.ssh/authorized_keys"
chmod 0700 "$R/root/.ssh"
# Host keys are generated now: the root filesystem is read-only at run time.
rm -f "$R"/etc/ssh/ssh_host_*; chroot "$R" ssh-keygen -A >/dev/null
echo rms-edge-dev > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 rms-edge-dev\n' > "$R/etc/hosts"
# A fixed machine-id (read-only root: systemd cannot write one at first boot).
printf '%s\n' "$(echo rms-edge-dev | md5sum | cut -c1-32)" > "$R/etc/machine-id"
passwd -R "$R" -d root >/dev/null   # serial console login for debugging; dev image only
# Users and groups are created at build time (read-only /etc at run time), as Yocto does.
systemd-sysusers --root="$R" >/dev/null
if [ -f "$R/etc/rms-edge/config.toml" ]; then chroot "$R" chgrp rms-edge /etc/rms-edge/config.toml; fi
# Enable units like the recipes' SYSTEMD_SERVICE do.
systemctl --root="$R" enable systemd-networkd.service ssh.service rms-edge-firewall.service \
  rms-edge.service rms-edge-healthcheck.service rms-edge-mark-good.service data.mount >/dev/null 2>&1
systemctl --root="$R" disable nftables.service >/dev/null 2>&1 || true
systemctl --root="$R" disable apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer >/dev/null 2>&1 || true
systemctl --root="$R" mask systemd-timesyncd.service >/dev/null 2>&1 || true
mkdir -p "$R/data"

# ---------------------------------------------------------------------------------------------
# Stage 3: disks. Root: ext4 label "rootfs" (mounted read-only). Data: ext4 label "data", kept
# across builds unless DEV_IMAGE_REBUILD_DATA=1 (persistence is part of what the tests check).
log "stage 3: disk images"
cp "$R"/boot/vmlinuz-* "$OUT/vmlinuz"
cp "$R"/boot/initrd.img-* "$OUT/initrd.img"
rm -f "$OUT/root.img"
truncate -s "${ROOT_MB}M" "$OUT/root.img"
mkfs.ext4 -q -L rootfs -d "$R" "$OUT/root.img"
if [ ! -f "$OUT/data.img" ] || [ "${DEV_IMAGE_REBUILD_DATA:-0}" = 1 ]; then
  rm -f "$OUT/data.img"
  truncate -s "${DATA_MB}M" "$OUT/data.img"
  mkfs.ext4 -q -L data "$OUT/data.img"
fi
rm -rf "$R"
printf '%s\n' "$BIN" > "$OUT/binary.txt"
log "done: $OUT/{vmlinuz,initrd.img,root.img,data.img}; boot with scripts/dev-image/boot.sh"
