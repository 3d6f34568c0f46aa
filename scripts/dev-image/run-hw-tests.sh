#!/usr/bin/env bash
# One command for CI or a developer: build the dev image with BINARY, boot it in qemu, run hw-tests
# against it, power it off. Exit status is pytest's.
#   scripts/dev-image/run-hw-tests.sh BINARY [PYTEST ARGS...]
# Cold: ~2.5 min debootstrap (cached afterwards) + ~15 s image + ~40 s boot + ~2 min tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 BINARY [PYTEST ARGS...]" >&2; exit 2; }
BIN="$1"; shift
OUT="${DEV_IMAGE_OUT:-$ROOT/target/dev-image}"
if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="$ROOT/.venv-image/bin/python"; fi
[ -x "$PY" ] || { python3 -m venv "$ROOT/.venv-image"; PY="$ROOT/.venv-image/bin/python"; }
"$PY" -c 'import pytest' 2>/dev/null || "$PY" -m pip install -q pytest

# qemu from bookworm-backports (bookworm's 7.2 would replace the machine's newer qemu-utils;
# platform-notes §10). Idempotent: nothing happens when it is installed.
if ! command -v qemu-system-x86_64 >/dev/null; then
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list
    fi
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -t bookworm-backports \
        --no-install-recommends install -y qemu-system-x86
fi
"$ROOT/scripts/dev-image/build.sh" "$BIN" "$OUT"
trap '"$ROOT/scripts/dev-image/boot.sh" "$OUT" --stop' EXIT
"$ROOT/scripts/dev-image/boot.sh" "$OUT" --wait
"$PY" -m pytest "$ROOT/hw-tests" --target "qemu:$OUT" -v -s "$@"
