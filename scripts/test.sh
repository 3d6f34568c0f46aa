#!/usr/bin/env bash
# Runs every test of rms-edge: static checks, Rust unit tests, black-box tests of the real
# binary with real clients (the official Azure SDKs), and the image checks.
# Installs what it needs (idempotently) first, so it works on a fresh Debian 12 clone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
step() { printf '\n=== %s ===\n' "$*"; }

step "dependencies"
scripts/install-test-deps.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings

step "build"
cargo build --locked --workspace

step "Rust unit tests"
cargo test --locked --workspace

step "black-box tests of the real binary (API contract, bad input, restart, official SDKs, live path with ffmpeg and Chromium)"
mkdir -p tests/artifacts
# Every directory under tests/ with test_*.py files (api, sdk, live, ingest, sync, console, ...).
mapfile -t suites < <(for d in tests/*/; do compgen -G "$d/test_*.py" >/dev/null && echo "${d%/}"; done)
CI="${CI:-1}" RMS_EDGE_BIN="$ROOT/target/debug/rms-edge" .venv/bin/python -m pytest "${suites[@]}" \
    -q -p no:cacheprovider --timeout=300 --junitxml=tests/artifacts/pytest.xml

step "image checks (systemd units, rootfs, Yocto layer)"
scripts/check-image.sh

step "all tests passed"
