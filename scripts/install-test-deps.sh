#!/usr/bin/env bash
# Install what the integration tests need. Idempotent; runs as root on a fresh Debian 12 (CI clone)
# and is fast (no network) when everything is already present.
#   - apt: ffmpeg, wrk, python3-venv (only when the chosen python cannot make a venv), nodejs/npm if absent,
#     chromium (Debian's, /usr/bin/chromium: the headless browser of the live playback tests in tests/live)
#   - $ROOT/.venv from tests/requirements.txt (pinned); reused while the stored hash matches
#   - tests/js/node_modules via `npm ci` (package-lock.json committed); skipped while the lock hash matches.
#     Besides the JS SDK it holds hls.js, dashjs and playwright-core (no browser download: it drives
#     /usr/bin/chromium) for tests/live.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQ="$ROOT/tests/requirements.txt"
JS="$ROOT/tests/js"
log() { printf '[install-test-deps] %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# ---------------------------------------------------------------- python interpreter
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    PY="$(command -v python3 || true)"
    [ -n "$PY" ] || PY=/usr/bin/python3
fi

# ---------------------------------------------------------------- apt packages
APT_PKGS=(ffmpeg wrk ca-certificates chromium)
# RTSP pull tests (tests/ingest): a gst-rtsp-server camera run by Debian's /usr/bin/python3.
APT_PKGS+=(python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-base-1.0 gstreamer1.0-plugins-base
          gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav)
# SRT ingest tests (tests/ingest/test_srt_*): gst-launch-1.0 with srtsink/mpegtsmux/voaacenc (bad) and
# x264enc (ugly); the packet-loss test's network namespace (ip netns, iproute2) and drop rule (nftables).
APT_PKGS+=(gstreamer1.0-tools gstreamer1.0-plugins-bad iproute2 nftables)
# Transcoding (crates/edge-gst links GStreamer 1.22; tests/transcode): headers, the bad set and gst-launch/inspect.
APT_PKGS+=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-bad gstreamer1.0-tools)
if ! { [ -x "$PY" ] || command -v "$PY" >/dev/null 2>&1; } || ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    # Debian's own python3 needs python3-venv (ensurepip) to create a venv with pip.
    APT_PKGS+=(python3 python3-venv)
    PY=/usr/bin/python3
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    APT_PKGS+=(nodejs npm)
fi

missing=()
for p in "${APT_PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
else
    log "apt: all present (${APT_PKGS[*]})"
fi

# ---------------------------------------------------------------- python venv
req_hash="$( (sha256sum "$REQ"; "$PY" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
stamp="$VENV/.requirements.sha256"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_hash" ] \
   && "$VENV/bin/python" -c 'import azure.mgmt.media, pytest' >/dev/null 2>&1; then
    log "venv: $VENV up to date"
else
    log "venv: (re)creating $VENV with $PY"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$REQ"
    echo "$req_hash" > "$stamp"
fi

# ---------------------------------------------------------------- node packages
lock_hash="$( (sha256sum "$JS/package-lock.json"; node --version) | sha256sum | cut -d' ' -f1)"
jstamp="$JS/node_modules/.lock.sha256"
if [ -d "$JS/node_modules" ] && [ -f "$jstamp" ] && [ "$(cat "$jstamp")" = "$lock_hash" ] \
   && [ -f "$JS/node_modules/hls.js/package.json" ] && [ -f "$JS/node_modules/dashjs/package.json" ] \
   && [ -f "$JS/node_modules/playwright-core/package.json" ]; then
    log "npm: $JS/node_modules up to date"
else
    log "npm: npm ci in $JS"
    # playwright-core never downloads a browser on install; the variable keeps any future version from trying.
    (cd "$JS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" > "$jstamp"
fi
log "done"
