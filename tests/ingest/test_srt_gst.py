"""Issue 4, SRT from GStreamer: `gst-launch-1.0 … ! mpegtsmux alignment=7 ! srtsink` (SRT caller) at the
live event's SRT URL, with a passphrase (AES-128, the event's latency) and without one (the stream id in
its `#!::r=<token>,m=publish` form, escaped in the GStreamer URI); the HLS and DASH URLs from listPaths
play in headless Chromium (hls.js, dash.js) live and as VOD after stop. With a passphrase, a caller with
a wrong one is refused with a stream event first."""
from __future__ import annotations

import shutil
import time

import pytest

from _ingest import setup_event, wait_event
from _live import decode_segments, wait_manifest, wait_segments
from _media import parse_media
from _procs import advanced, appliance_log, assert_no_fatal, log_line
from _srt import Caller, gst_srt_cmd, gst_srt_uri

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="gst-launch-1.0 missing: scripts/install-test-deps.sh"),
]

PASSPHRASE = "venue-secret-123"
SECONDS = 16


@pytest.mark.parametrize("encrypted", [True, False], ids=["passphrase", "plain"])
def test_gstreamer_srtsink_plays_live_and_as_vod(appliance, player, artifacts, encrypted):
    app = appliance
    extra = {"srtPassphrase": PASSPHRASE, "srtLatency": 200} if encrypted else {}
    live, doc = setup_event(app, "SRT", extra)
    url = doc["properties"]["input"]["endpoints"][0]["url"]
    assert url.startswith(f"srt://127.0.0.1:{app.srt_port}?streamid="), url
    if encrypted:
        assert f"passphrase={PASSPHRASE}" in url and "latency=200000" in url, url
        uri = gst_srt_uri(url)
        assert "latency=200" in uri and "latency=200000" not in uri, uri
        # A wrong passphrase: srtsink fails at once, the event logs why, nothing is published.
        bad = Caller(gst_srt_cmd(gst_srt_uri(url, passphrase="wrong-secret-999"), 3), artifacts, "gst-wrong").start()
        try:
            assert bad.wait(30) != 0, f"a wrong passphrase must be refused:\n{bad.output()}"
        finally:
            bad.close()
        ev = wait_event(live, "InvalidConnection")
        assert ev["data"]["resultCode"] == "MPE_INGEST_SRT_PASSPHRASE", ev
        assert not [e for e in live.stream_events() if e["eventType"].endswith("BeginIngest")]
    else:
        assert "passphrase" not in url, url
        uri = gst_srt_uri(url, streamid=f"#!::r={live.token},m=publish")
        assert "streamid=%23%21%3A%3Ar%3D" in uri, uri

    enc = Caller(gst_srt_cmd(uri, SECONDS), artifacts, "gst").start()
    try:
        t_ready = wait_manifest(live, min_segments=2, timeout=30, encoder=enc)
        log_line(artifacts, f"GStreamer SRT ({'AES-128' if encrypted else 'plain'}): playable manifest "
                            f"{t_ready - enc.t_start:.2f}s after the caller started", summary=True)
        begin = wait_event(live, "BeginIngest")
        assert begin["data"]["resultCode"] == "S_OK", begin
        st = live.status()
        tracks = {t["trackId"]: t for t in st.get("trackStatus", [])}
        assert {"video", "audio"} <= set(tracks), st
        assert 1_000_000 < tracks["video"]["incomingBitrate"] < 3_000_000, st
        assert tracks["audio"]["incomingBitrate"] > 0, st
        player.open("hls", "hls", live.hls_url)
        player.open("dash", "dash", live.dash_url)
        wait_segments(live, 3, timeout=20, encoder=enc)
        for r in ("video", "audio"):
            p = live.media_playlist(r)
            decode_segments(live, r, p, p.segments[:2], workdir=artifacts)
        for pid in ("hls", "dash"):
            s = player.wait_for(pid, lambda s: advanced(s, 4.0), 45, f"live {pid} advancing")
            assert (s["videoWidth"], s["videoHeight"]) == (640, 360), s
            assert_no_fatal(player, pid)
            log_line(artifacts, f"live {pid} played {s['currentTime'] - s['firstPlayingTime']:.1f}s")
            player.close_page(pid)
        # num-buffers ends both sources: EOS, srtsink closes the connection, gst-launch exits 0.
        assert enc.wait(SECONDS + 30) == 0, enc.output()
        end = wait_event(live, "EndIngest", timeout=20)
        assert end["data"]["resultCode"] == "MPE_CLIENT_DISCONNECTED", end
        assert f"encrypted={str(encrypted).lower()}" in appliance_log(app), "the SRT session's encryption is not logged"
    finally:
        enc.close()

    live.stop()
    deadline = time.time() + 15
    while not parse_media(live.get(live.media_url("video")).text).endlist:
        assert time.time() < deadline, "the VOD playlist never ended"
        time.sleep(0.3)
    vod = parse_media(live.get(live.media_url("video")).text)
    assert vod.total_duration >= SECONDS - 4, vod.text
    assert not any(s.discontinuity for s in vod.segments), vod.text
    player.open("hls-vod", "hls", live.hls_url)
    player.open("dash-vod", "dash", live.dash_url)
    for pid in ("hls-vod", "dash-vod"):
        s = player.wait_for(pid, lambda s: advanced(s, 2.0), 30, f"{pid} playing")
        assert abs(s["duration"] - vod.total_duration) < 1.0, (s["duration"], vod.total_duration)
        assert_no_fatal(player, pid)
