#!/usr/bin/env bash
# Benchmarks (not tests). Builds the release binary and runs every benchmark; results go in
# docs/benchmarks.md with this command.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v wrk >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends wrk
cargo build --locked --release -p rms-edge
python3 bench/api_bench.py "$@"
