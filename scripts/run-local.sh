#!/usr/bin/env bash
# Runs the appliance on this machine with embedded defaults: SQLite and recordings under
# ./.data, a generated API key and self-signed certificate, unprivileged ports.
# Extra arguments are passed to `rms-edge serve` (e.g. --public-host 192.168.1.20:8443).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v cargo >/dev/null 2>&1; then
    echo "rms-edge: cargo (Rust) is needed: https://rustup.rs" >&2
    exit 1
fi
if ! command -v cc >/dev/null 2>&1; then
    echo "rms-edge: installing a C compiler (SQLite is built in)" >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends gcc libc6-dev
fi
cargo build --locked --release -p rms-edge
exec target/release/rms-edge serve \
    --data-dir "$ROOT/.data" \
    --http-addr 0.0.0.0:8080 \
    --https-addr 0.0.0.0:8443 \
    --rtmp-addr 0.0.0.0:1935 \
    --rtmps-addr 0.0.0.0:2935 \
    --srt-addr 0.0.0.0:8890 \
    --rtsp-addr 0.0.0.0:8554 \
    "$@"
