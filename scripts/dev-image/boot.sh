#!/usr/bin/env bash
# Boot the development image built by scripts/dev-image/build.sh in qemu (TCG: /dev/kvm is not
# usable on the CI machine), in the background, with the appliance's ports forwarded to free
# host ports on 127.0.0.1.
#
#   scripts/dev-image/boot.sh [OUTDIR]            start (OUTDIR default: $ROOT/target/dev-image)
#   scripts/dev-image/boot.sh [OUTDIR] --stop     power off (kill qemu)
#   scripts/dev-image/boot.sh [OUTDIR] --wait     start and wait until /healthz answers 200
#
# Writes OUTDIR/target.json (ports, ssh key, QMP socket: what `pytest hw-tests --target
# qemu:OUTDIR` reads), OUTDIR/console.log (serial console), OUTDIR/qemu.pid.
# Devices: virtio disks (root.img read-only root, data.img = /data), virtio-net (user mode),
# i6300esb hardware watchdog, QMP socket for hard reset / power cut.
# Environment: DEV_IMAGE_MEM (MiB, default 1024), DEV_IMAGE_SMP (default 2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/target/dev-image"
action=start
for a in "$@"; do
  case "$a" in
    --stop) action="stop" ;;
    --wait) action="wait" ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) OUT="$(cd "$a" && pwd)" ;;
  esac
done

stop() {
  if [ -f "$OUT/qemu.pid" ]; then
    pid="$(cat "$OUT/qemu.pid")"
    if kill -0 "$pid" 2>/dev/null; then kill "$pid"; fi
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$OUT/qemu.pid"
  fi
}
if [ "$action" = stop ]; then stop; exit 0; fi

for f in vmlinuz initrd.img root.img data.img; do
  [ -f "$OUT/$f" ] || { echo "boot.sh: $OUT/$f missing: run scripts/dev-image/build.sh first" >&2; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "boot.sh: qemu-system-x86_64 not installed (see docs/image.md)" >&2; exit 2; }
stop

free_port() {
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"
}
SSH=$(free_port tcp); HTTP=$(free_port tcp); HTTPS=$(free_port tcp); RTMP=$(free_port tcp)
RTMPS=$(free_port tcp); RTSP=$(free_port tcp); SRT=$(free_port udp)

rm -f "$OUT/console.log" "$OUT/qmp.sock" "$OUT/console.sock"
qemu-system-x86_64 \
  -accel tcg -M q35 -cpu max -m "${DEV_IMAGE_MEM:-1024}" -smp "${DEV_IMAGE_SMP:-2}" \
  -display none -daemonize -pidfile "$OUT/qemu.pid" \
  -kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img" \
  -append "root=LABEL=rootfs ro rootwait console=ttyS0,115200 panic=10 net.ifnames=0 quiet systemd.show_status=1" \
  -drive file="$OUT/root.img",if=virtio,format=raw,cache=unsafe \
  -drive file="$OUT/data.img",if=virtio,format=raw,cache=writeback \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$SSH-:22,hostfwd=tcp:127.0.0.1:$HTTP-:80,hostfwd=tcp:127.0.0.1:$HTTPS-:443,hostfwd=tcp:127.0.0.1:$RTMP-:1935,hostfwd=tcp:127.0.0.1:$RTMPS-:2935,hostfwd=tcp:127.0.0.1:$RTSP-:554,hostfwd=udp:127.0.0.1:$SRT-:8890" \
  -device virtio-net-pci,netdev=n0 \
  -device i6300esb -action watchdog=reset \
  -chardev "socket,id=ser0,path=$OUT/console.sock,server=on,wait=off,logfile=$OUT/console.log" \
  -serial chardev:ser0 \
  -qmp "unix:$OUT/qmp.sock,server=on,wait=off"

cat > "$OUT/target.json" <<JSON
{
  "kind": "qemu",
  "host": "127.0.0.1",
  "ports": {"ssh": $SSH, "http": $HTTP, "https": $HTTPS, "rtmp": $RTMP, "rtmps": $RTMPS, "rtsp": $RTSP, "srt": $SRT},
  "guest_ports": {"http": 80, "https": 443, "rtmp": 1935, "rtmps": 2935, "rtsp": 554, "srt": 8890},
  "ssh_user": "root",
  "ssh_key": "$OUT/id_ed25519",
  "qmp": "$OUT/qmp.sock",
  "console_log": "$OUT/console.log",
  "console_sock": "$OUT/console.sock",
  "started": $(date +%s)
}
JSON
echo "boot.sh: qemu pid $(cat "$OUT/qemu.pid"); http://127.0.0.1:$HTTP  ssh -p $SSH -i $OUT/id_ed25519 root@127.0.0.1"

if [ "$action" = wait ]; then
  t0=$(date +%s)
  until curl -fs --max-time 5 -o /dev/null "http://127.0.0.1:$HTTP/healthz"; do
    if [ $(( $(date +%s) - t0 )) -gt "${DEV_IMAGE_BOOT_TIMEOUT:-900}" ]; then
      echo "boot.sh: no healthy /healthz after ${DEV_IMAGE_BOOT_TIMEOUT:-900}s; tail of console:" >&2
      tail -40 "$OUT/console.log" >&2; exit 1
    fi
    sleep 3
  done
  echo "boot.sh: healthy after $(( $(date +%s) - t0 ))s"
fi
