"""Issue 4, RTSP pull: the appliance pulls from a real RTSP server (gst-rtsp-server, x264 + AAC, with
credentials) when the event starts; hls.js and dash.js play it; the camera server is stopped and
restarted mid-event and the event recovers by itself with a discontinuity; stopping the event stops the
pull and the recording becomes VOD. Modes tcp, udp and rtsp_http (RTSP tunnelled over HTTP on the camera's
RTSP port): the camera logs whether each DESCRIBE/PLAY came through a tunnel, and each mode must have come in
the way it says."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from _ingest import setup_event, wait_event
from _live import assert_advancing, wait_manifest
from _media import parse_media
from _procs import advanced, assert_no_fatal, log_line
from appliance import free_port

pytestmark = pytest.mark.timeout(240)

CAMERA = Path(__file__).resolve().parent / "rtsp_camera.py"


def _has_rtsp_server() -> bool:
    r = subprocess.run(["/usr/bin/python3", "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
                       capture_output=True)
    return r.returncode == 0


pytestmark = [pytestmark, pytest.mark.skipif(not _has_rtsp_server(), reason="needs python3-gi and "
                                             "gir1.2-gst-rtsp-server-1.0 (scripts/install-test-deps.sh)")]


class Camera:
    def __init__(self, port: int, artifacts, user="viewer", password="s3cret-pw"):
        self.port, self.artifacts, self.user, self.password = port, artifacts, user, password
        self.proc = None
        self.runs = 0

    def start(self):
        self.runs += 1
        log = open(self.artifacts / f"camera-{self.runs}.log", "wb")
        self.proc = subprocess.Popen(["/usr/bin/python3", str(CAMERA), str(self.port), self.user, self.password],
                                     stdout=subprocess.PIPE, stderr=log)
        assert self.proc.stdout.readline().startswith(b"camera ready"), "the camera server did not start"
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def requests(self, run: int) -> list[tuple[str, bool]]:
        """(method, tunnelled) of the DESCRIBE and PLAY requests the camera's `run`-th start handled."""
        out = []
        for line in (self.artifacts / f"camera-{run}.log").read_text(errors="replace").splitlines():
            if line.startswith("request "):
                method, tunnelled = line.split()[1:3]
                out.append((method, tunnelled == "tunnelled=yes"))
        return out

    def assert_came_in(self, run: int, mode: str):
        """Every DESCRIBE and PLAY of that run came through an RTSP-over-HTTP tunnel for rtsp_http, and
        never did for the other modes; at least one PLAY was handled."""
        reqs = self.requests(run)
        assert ("PLAY", mode == "rtsp_http") in reqs, (mode, reqs)
        assert all(t == (mode == "rtsp_http") for _, t in reqs), (mode, reqs)

    @property
    def url(self):
        return f"rtsp://{self.user}:{self.password}@127.0.0.1:{self.port}/cam"


@pytest.mark.parametrize("mode", ["tcp", "udp", "rtsp_http"])
def test_pull_from_camera_recovers_after_the_camera_restarts(appliance, player, artifacts, mode):
    app = appliance
    cam = Camera(free_port(), artifacts).start()
    try:
        live, doc = setup_event(app, "RTSPPull", {"rtspPullUrl": cam.url, "rtspPullMode": mode})
        url = doc["properties"]["input"]["endpoints"][0]["url"]
        assert cam.password not in url and url.endswith(f":{cam.port}/cam"), url  # credentials redacted
        wait_manifest(live, min_segments=2, timeout=40)
        assert wait_event(live, "BeginIngest")["data"]["resultCode"] == "S_OK"
        st = live.status()
        assert {"video", "audio"} <= {t["trackId"] for t in st.get("trackStatus", [])}, st
        player.open("hls", "hls", live.hls_url)
        player.open("dash", "dash", live.dash_url)
        for pid in ("hls", "dash"):
            s = player.wait_for(pid, lambda s: advanced(s, 4.0), 45, f"live {pid} advancing")
            assert (s["videoWidth"], s["videoHeight"]) == (640, 360), s
            assert_no_fatal(player, pid)
            player.close_page(pid)
        cam.assert_came_in(1, mode)
        # The old fallback (rtsp_http pulled over plain TCP with a warning) is gone.
        assert not [e for e in live.stream_events() if e["data"].get("resultCode") == "MPE_INGEST_RTSP_HTTP_AS_TCP"]

        # The camera goes away mid-event, then comes back on the same address.
        cam.stop()
        end = wait_event(live, "EndIngest", timeout=30)
        log_line(artifacts, f"pull {mode}: camera loss reported as {end['data']['resultCode']}")
        time.sleep(2)
        t_back = time.monotonic()
        cam.start()
        wait_event(live, "Discontinuity", timeout=40)
        log_line(artifacts, f"pull {mode}: recovered {time.monotonic() - t_back:.1f}s after the camera came back",
                 summary=True)
        begins = [e for e in live.stream_events() if e["eventType"].endswith("BeginIngest")]
        assert len(begins) >= 2, begins
        assert_advancing(live, timeout=12, what="after the camera restart")
        player.open("hls2", "hls", live.hls_url)
        s = player.wait_for("hls2", lambda s: advanced(s, 3.0), 45, "hls after the restart")
        assert_no_fatal(player, "hls2")
        cam.assert_came_in(2, mode)
    finally:
        cam.stop()
    live.stop()
    deadline = time.time() + 15
    while not parse_media(live.get(live.media_url("video")).text).endlist:
        assert time.time() < deadline, "the VOD playlist never ended"
        time.sleep(0.3)
    # Stopped means stopped: the puller let go of the camera (no new ingest after the stop).
    n = len(live.stream_events())
    cam.start()
    try:
        time.sleep(3)
        assert not [e for e in live.stream_events()[n:] if e["eventType"].endswith("BeginIngest")]
    finally:
        cam.stop()
