#!/usr/bin/env bash
# Runs the appliance on this machine with embedded defaults: SQLite and recordings under
# ./.data, a generated API key and self-signed certificate, unprivileged ports. Once it is up,
# it creates (or reuses) a live event "demo" with a fresh asset, live output and streaming
# locator, starts it, and prints where to point an encoder and a player. Ctrl-C stops it.
# Extra arguments go to `rms-edge serve` (e.g. --public-host 192.168.1.20:8443).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA="$ROOT/.data"
# Ports: override with HTTP_PORT=… etc. when one is taken.
HTTP_PORT="${HTTP_PORT:-8080}" HTTPS_PORT="${HTTPS_PORT:-8443}" RTMP_PORT="${RTMP_PORT:-1935}"
RTMPS_PORT="${RTMPS_PORT:-2935}" SRT_PORT="${SRT_PORT:-8890}" RTSP_PORT="${RTSP_PORT:-8554}"

if ! command -v cargo >/dev/null 2>&1; then
    echo "rms-edge: cargo (Rust) is needed: https://rustup.rs" >&2
    exit 1
fi
missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# GStreamer: edge-gst links it (transcoding, local capture); the plugins are loaded at run time.
for p in pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base \
         gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "rms-edge: installing ${missing[*]}" >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
fi
cargo build --locked --release -p rms-edge
BIN="$ROOT/target/release/rms-edge"
mkdir -p "$DATA"

"$BIN" serve --data-dir "$DATA" \
    --http-addr "0.0.0.0:$HTTP_PORT" --https-addr "0.0.0.0:$HTTPS_PORT" \
    --rtmp-addr "0.0.0.0:$RTMP_PORT" --rtmps-addr "0.0.0.0:$RTMPS_PORT" \
    --srt-addr "0.0.0.0:$SRT_PORT" --rtsp-addr "0.0.0.0:$RTSP_PORT" "$@" > >(tee "$DATA/serve.out") &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 200); do
    grep -q '^rms-edge ready' "$DATA/serve.out" 2>/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || { echo "rms-edge exited; see above" >&2; exit 1; }
    sleep 0.1
done

# A key of our own for the demo setup (the first start's key is shown once, above).
KEY=$("$BIN" keys --data-dir "$DATA" create --name run-local 2>/dev/null)
python3 - "$HTTP_PORT" "$KEY" "$DATA" <<'PY'
import json, sys, time, urllib.request, urllib.error, re
port, key, data = sys.argv[1], sys.argv[2], sys.argv[3]
banner = open(f"{data}/serve.out").read()
field = lambda k: re.search(rf"^\s*{k}:\s+(\S+)", banner, re.M).group(1)
sub, rg, acct = field("subscriptionId"), field("resourceGroupName"), field("accountName")
public = re.search(r"API endpoint:\s+https://([^/]+)/", banner).group(1)
host = public.rsplit(":", 1)[0] if not public.startswith("[") else public.split("]")[0] + "]"
base = f"http://127.0.0.1:{port}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Media/mediaservices/{acct}"

def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")

def wait_state(want):
    for _ in range(100):
        if call("GET", "/liveEvents/demo")[1]["properties"]["resourceState"] == want:
            return
        time.sleep(0.1)

status, ev = call("GET", "/liveEvents/demo")
if status == 404:
    status, ev = call("PUT", "/liveEvents/demo", {"location": "Local", "properties": {
        "description": "Created by scripts/run-local.sh",
        "input": {"streamingProtocol": "RTMP", "keyFrameIntervalDuration": "PT2S"},
        "encoding": {"encodingType": "PassthroughStandard"}, "streamOptions": ["Default"]}})
    time.sleep(0.3)
if ev["properties"]["resourceState"] == "Running":
    call("POST", "/liveEvents/demo/stop")
    wait_state("Stopped")
stamp = time.strftime("%Y%m%d-%H%M%S")
call("PUT", f"/assets/demo-{stamp}", {"properties": {"description": "run-local demo recording"}})
call("PUT", "/liveEvents/demo/liveOutputs/demo", {"properties": {"assetName": f"demo-{stamp}", "archiveWindowLength": "PT1H"}})
time.sleep(0.3)
call("POST", "/liveEvents/demo/start")
wait_state("Running")
call("PUT", f"/streamingLocators/demo-{stamp}", {"properties": {"assetName": f"demo-{stamp}", "streamingPolicyName": "Predefined_ClearStreamingOnly"}})
_, paths = call("POST", f"/streamingLocators/demo-{stamp}/listPaths")
ev = call("GET", "/liveEvents/demo")[1]
rtmp = ev["properties"]["input"]["endpoints"][0]["url"]
token = ev["properties"]["input"]["accessToken"]
hls = next(p["paths"][0] for p in paths["streamingPaths"] if p["streamingProtocol"] == "Hls")
dash = next(p["paths"][0] for p in paths["streamingPaths"] if p["streamingProtocol"] == "Dash")
print(f"""
Live event "demo" is running.
  Encoder (OBS: Settings > Stream > Custom):  Server {rtmp}   Stream key {token}
  ffmpeg:   ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine -c:v libx264 -g 60 -pix_fmt yuv420p -c:a aac -f flv {rtmp}/{token}
  Player (HLS):   http://{host}:{port}{hls}
  Player (DASH):  http://{host}:{port}{dash}
  (https://{public}… works too, with the certificate in {data}/tls/cert.pem)
Ctrl-C stops the appliance.""", flush=True)
PY
wait "$SERVER"
