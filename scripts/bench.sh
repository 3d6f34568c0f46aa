#!/usr/bin/env bash
# Benchmarks (not tests): they measure and print Markdown tables, they assert nothing.
# Installs what they need (idempotent), builds the release binary, runs every benchmark.
# Results go in docs/benchmarks.md with this command. Extra arguments go to bench/live_bench.py
# (e.g. `scripts/bench.sh --soak-minutes 60` for the one-hour RSS run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v nginx >/dev/null || need+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
command -v chromium >/dev/null || need+=(chromium)  # bench/console_bench.py (also needs tests/js/node_modules)
if [ ${#need[@]} -gt 0 ]; then
  # The benchmark runs its own nginx (own config, ports and temp dir); the packaged service is
  # neither configured nor used.
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${need[@]}"
fi
cargo build --locked --release -p rms-edge
echo "Machine: $(nproc) cores, $(uname -srm); $(uptime)"
echo
echo "## API (issue 2)"
python3 bench/api_bench.py
echo
echo "## Live path (issue 3)"
python3 bench/live_bench.py "$@"
echo
echo "## Ingest: SRT vs RTMP (issue 4)"
python3 bench/srt_bench.py
echo
echo "## Transcoding: Standard ladder vs ffmpeg (issue 5)"
python3 bench/transcode_bench.py --runs 7 --binary target/release/rms-edge
echo
echo "## Low latency (issue 8)"
# Players (Chromium via playwright-core) and the venv: scripts/install-test-deps.sh.
[ -x .venv/bin/python ] && [ -d tests/js/node_modules/playwright-core ] || scripts/install-test-deps.sh
.venv/bin/python bench/ll_bench.py --bin target/release/rms-edge
echo
echo "## Technician console (issue 9)"
python3 bench/console_bench.py
echo
echo "## Archive sync vs the Python SDKs (issue 6)"
# Azurite and moto from tests/js/node_modules and the venv (scripts/install-test-deps.sh).
[ -x .venv/bin/moto_server ] && [ -x tests/js/node_modules/.bin/azurite-blob ] || scripts/install-test-deps.sh
.venv/bin/python bench/sync_bench.py
echo
echo "Finished: $(uptime)"
