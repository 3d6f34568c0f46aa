"""Issue 4, RTSP push: ffmpeg (`-f rtsp`, TCP interleaved and UDP) at the URL from the live event's
endpoints, to HLS and DASH playing in headless Chromium (hls.js, dash.js) and VOD after stop; bad input
(random bytes, a truncated SDP, a 1 MB request line, a wrong token) refused and logged while another
stream keeps running."""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from _ingest import FFMPEG_SRC, rtsp_exchange, setup_event, wait_event
from _live import assert_advancing, decode_segments, wait_manifest, wait_segments
from _media import parse_media
from _procs import advanced, assert_no_fatal, log_line

pytestmark = pytest.mark.timeout(240)


def push(url: str, transport: str, seconds: int, artifacts, name: str) -> subprocess.Popen:
    log = open(artifacts / f"ffmpeg-{name}.log", "wb")
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "warning", "-re", *FFMPEG_SRC, "-t", str(seconds),
                             "-f", "rtsp", "-rtsp_transport", transport, url], stdout=log, stderr=log)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ffmpeg_rtsp_push_plays_live_and_as_vod(appliance, player, artifacts, transport):
    app = appliance
    live, doc = setup_event(app, "RTSPPush")
    endpoints = doc["properties"]["input"]["endpoints"]
    url = endpoints[0]["url"]
    assert url == f"rtsp://127.0.0.1:{app.rtsp_port}/live/{live.token}", endpoints
    enc = push(url, transport, 16, artifacts, transport)
    try:
        wait_manifest(live, min_segments=2, timeout=30)
        begin = wait_event(live, "BeginIngest")
        assert begin["data"]["resultCode"] == "S_OK", begin
        st = live.status()
        tracks = {t["trackId"]: t for t in st.get("trackStatus", [])}
        assert {"video", "audio"} <= set(tracks), st
        assert all((t.get("incomingBitrate") or 0) > 0 for t in tracks.values()), st
        player.open("hls", "hls", live.hls_url)
        player.open("dash", "dash", live.dash_url)
        pl = wait_segments(live, 3, timeout=20)
        for r in ("video", "audio"):
            p = live.media_playlist(r)
            decode_segments(live, r, p, p.segments[:2])
        for pid in ("hls", "dash"):
            s = player.wait_for(pid, lambda s: advanced(s, 4.0), 45, f"live {pid} advancing")
            assert (s["videoWidth"], s["videoHeight"]) == (640, 360), s
            assert_no_fatal(player, pid)
            log_line(artifacts, f"RTSP {transport}: live {pid} played {s['currentTime'] - s['firstPlayingTime']:.1f}s")
            player.close_page(pid)
        assert enc.wait(timeout=60) == 0, (artifacts / f"ffmpeg-{transport}.log").read_text()[-800:]
        end = wait_event(live, "EndIngest")
        assert end["data"]["resultCode"] == "MPE_CLIENT_TERMINATED_SESSION", end
    finally:
        if enc.poll() is None:
            enc.kill()
    live.stop()
    deadline = time.time() + 15
    while not parse_media(live.get(live.media_url("video")).text).endlist:
        assert time.time() < deadline, "the VOD playlist never ended"
        time.sleep(0.3)
    vod = parse_media(live.get(live.media_url("video")).text)
    assert vod.total_duration >= 10, vod.total_duration
    player.open("hls-vod", "hls", live.hls_url)
    player.open("dash-vod", "dash", live.dash_url)
    for pid in ("hls-vod", "dash-vod"):
        s = player.wait_for(pid, lambda s: advanced(s, 2.0), 30, f"{pid} playing")
        assert abs(s["duration"] - vod.total_duration) < 1.0, s
        assert_no_fatal(player, pid)


def test_bad_rtsp_input_is_refused_and_logged_while_another_stream_runs(appliance, artifacts):
    app = appliance
    good, _ = setup_event(app, "RTSPPush")
    other, _ = setup_event(app, "RTSPPush")
    enc = push(f"rtsp://127.0.0.1:{app.rtsp_port}/live/{good.token}", "tcp", 40, artifacts, "good")
    try:
        wait_manifest(good, min_segments=1, timeout=30)
        base = f"rtsp://127.0.0.1:{app.rtsp_port}/live"

        # Random bytes: answered 400 (or closed), nothing else happens.
        out = rtsp_exchange(app.rtsp_port, os.urandom(4096))
        assert out == b"" or out.startswith(b"RTSP/1.0 400"), out[:100]

        # A 1 MB request line: refused with 414 after the first kilobytes, then closed.
        t0 = time.monotonic()
        out = rtsp_exchange(app.rtsp_port, b"OPTIONS " + base.encode() + b"/" + b"a" * (1 << 20) + b" RTSP/1.0\r\n\r\n")
        assert out.startswith(b"RTSP/1.0 414"), out[:100]
        assert time.monotonic() - t0 < 5

        # A wrong token: 404.
        good_sdp = open(os.path.join(os.path.dirname(__file__), "ffmpeg.sdp"), "rb").read()
        sdp = good_sdp
        ann = lambda uri, body: (f"ANNOUNCE {uri} RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\n"
                                 f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        out = rtsp_exchange(app.rtsp_port, ann(f"{base}/not-a-token", sdp))
        assert out.startswith(b"RTSP/1.0 404"), out[:100]

        # A truncated SDP at another event's URL: 400, and a stream event on that event.
        out = rtsp_exchange(app.rtsp_port, ann(f"{base}/{other.token}", good_sdp[:45]))
        assert out.startswith(b"RTSP/1.0 400"), out[:100]
        ev = wait_event(other, "InvalidConnection")
        assert "SDP" in ev["data"]["resultMessage"], ev

        # A second publisher on the busy event: refused (453), logged on it.
        out = rtsp_exchange(app.rtsp_port, ann(f"{base}/{good.token}", good_sdp))
        assert out.startswith(b"RTSP/1.0 453"), out[:100]
        ev = wait_event(good, "InvalidConnection")
        assert ev["data"]["resultCode"] == "MPE_INGEST_STREAM_ALREADY_PUBLISHED", ev

        # A stopped event: 455.
        other.stop()
        time.sleep(0.5)
        out = rtsp_exchange(app.rtsp_port, ann(f"{base}/{other.token}", good_sdp))
        assert out.startswith(b"RTSP/1.0 455"), out[:100]

        # The good stream was not disturbed.
        assert_advancing(good, what="after the bad input")
        assert enc.poll() is None, (artifacts / "ffmpeg-good.log").read_text()[-500:]
        log = app.stderr_text()
        assert "RTSP connection refused" in log, log[-2000:]
    finally:
        enc.kill()
