"""Issue 5: transcoding on the software path (x264enc; this machine has no /dev/dri and no V4L2 M2M).

ffmpeg pushes 1080p30 and 720p30 over RTMP into Standard and Premium1080p events. The multivariant lists the
expected renditions (sizes, never above the input; bandwidth within ±20 %), every rendition decodes with
ffprobe as H.264 High at its size, segment boundaries and keyframes are the same instants in every rendition,
the DASH MPD lists the same renditions, getStatus reports per-rendition output bitrate and encoder speed,
hls.js switches renditions in headless Chromium, and killing the transcode worker mid-event recovers the event
with a discontinuity while another event goes on untouched.

Sizes are the real ones (1080p30 and 720p30 inputs); x264 runs at `ultrafast` (conftest) so two shared cores
keep up in real time.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from _live import assert_advancing
from _media import join, parse_media
from _transcode import (LADDERS, check_ladder, check_renditions_decode_and_align, setup_encoding_event,
                        transcoding_status, video_variants, wait_renditions)
from _procs import log_line

pytestmark = pytest.mark.timeout(300)


def push(encoders, live, size: str, duration: float = 90):
    h = int(size.split("x")[1])
    # ffmpeg's own x264 at ultrafast too: the input encoder shares the two cores with the ladder.
    return encoders(live.rtmp_url(), size=size, bitrate="6000k" if h >= 1080 else "4000k", duration=duration,
                    extra=["-preset", "ultrafast"])


@pytest.mark.parametrize("etype,size", [("Standard", "1920x1080"), ("Premium1080p", "1920x1080"),
                                        ("Premium1080p", "1280x720")])
def test_ladder_over_rtmp(make_appliance, encoders, artifacts, etype, size):
    app = make_appliance()
    live = setup_encoding_event(app, etype)
    enc = push(encoders, live, size)
    expected = LADDERS[(etype, int(size.split("x")[1]))]
    t0 = time.monotonic()
    vs = wait_renditions(live, len(expected), 3, timeout=90, encoder=enc)
    log_line(artifacts, f"{etype} from {size}: {len(vs)} renditions with 3 segments after "
                        f"{time.monotonic() - t0:.1f}s", summary=True)
    vs = check_ladder(live, expected)
    check_renditions_decode_and_align(live, vs, expected, artifacts, n=2)

    # The DASH MPD lists the same renditions.
    mpd = live.mpd()
    reps = [r for r in mpd.periods[-1].reps if r.content_type == "video"]
    sizes = sorted(((int(r.attrs["width"]), int(r.attrs["height"])) for r in reps), reverse=True)
    assert sizes == [(w, h) for w, h, _ in expected], f"MPD video representations {sizes}"
    assert any(r.content_type == "audio" for r in mpd.periods[-1].reps), "MPD without audio"

    # getStatus: the encoder and why, per-rendition output bitrate, speed against real time, drops.
    t = transcoding_status(live)
    log_line(artifacts, f"{etype} from {size}: encoder fps {t['encoderFps']} ({t['realTimeFactor']}x real time), "
                        f"dropped {t['droppedFrames']}, input queue drops {t['inputQueueDropped']}", summary=True)
    assert t["encoder"] == "x264enc", t
    assert "no /dev/dri render node" in t["reason"], t["reason"]
    assert t["workerRestarts"] == 0, t
    # Speed is reported, not guaranteed: the two cores are shared with ffmpeg and other work (a Premium1080p
    # ladder from 1080p ran at 0.3-0.6x real time here; input units dropped then are counted). It must be
    # measured (consistent with the fps) and the ladder must be encoding.
    assert abs(t["realTimeFactor"] - t["encoderFps"] / 30) < 0.02, t
    assert t["encoderFps"] > 0, f"the ladder is not encoding: {t}"
    rend = [r for r in t["renditions"] if r["width"] > 0]
    assert [(r["width"], r["height"]) for r in rend] == [(w, h) for w, h, _ in expected], rend
    for r, (w, h, bps) in zip(rend, expected):
        # Bits per second of media over the last seconds (CBR with filler: near the target whatever the speed;
        # a health figure, so a wider band than the manifest's ±20 %).
        assert 0.7 * bps <= r["outputBitrate"] <= 1.35 * bps, f"{w}x{h}: output {r['outputBitrate']} for {bps}"
    tracks = {x["trackId"]: x for x in live.status()["trackStatus"]}
    for w, h, bps in expected:
        row = tracks.get(f"video_{w}x{h}")
        assert row and row["expectedBitrate"] == bps and row["incomingBitrate"] > 0, tracks
    enc.stop()

    # Recording and VOD as for pass-through: after stop, the asset plays as VOD with every rendition, and the
    # recorded segments decode and stay aligned.
    live.stop()
    vod = video_variants(live)
    assert [tuple(int(x) for x in v.attrs["RESOLUTION"].split("x")) for v in vod] == [(w, h) for w, h, _ in expected]
    for v in vod:
        pl = parse_media(live.get(join(live.hls_url, v.uri)).text)
        assert pl.endlist and len(pl.segments) >= 3, f"{v.uri}: not a finished VOD playlist:\n{pl.text}"
    # The newest frames in flight in the worker are not drained at stop: each rendition's last segment may end
    # a few frames apart, so alignment is checked on the segments before it (which all decode).
    check_renditions_decode_and_align(live, vod, expected, artifacts, n=2, skip_last=1)


def test_hls_js_switches_renditions(make_appliance, encoders, player, artifacts):
    app = make_appliance()
    live = setup_encoding_event(app, "Standard")
    enc = push(encoders, live, "1280x720")
    expected = LADDERS[("Standard", 720)]
    wait_renditions(live, len(expected), 3, timeout=60, encoder=enc)
    player.open("hls", "hls", live.hls_url)
    st = player.wait_for("hls", lambda s: (s.get("currentTime") or 0) > 2, 40, "playback past 2 s")
    levels = [tuple(x) for x in player.eval("hls", "hls.levels.map(l => [l.width, l.height])")]
    # hls.js orders its levels by bandwidth, lowest first.
    assert levels == [(w, h) for w, h, _ in reversed(expected)], levels
    # Force the lowest rendition, then the highest: the decoded picture follows.
    for idx in (0, len(levels) - 1):
        w, h = levels[idx]
        player.eval("hls", f"(hls.currentLevel = {idx}, hls.currentLevel)")
        st = player.wait_for("hls", lambda s, w=w: s.get("videoWidth") == w, 30, f"videoWidth {w} after switching")
        log_line(artifacts, f"hls.js switched to {w}x{h} at currentTime {st.get('currentTime')}")
    frags = player.eval("hls", "playerState().frags.map(f => f.level)")
    assert {0, len(levels) - 1} <= set(frags), f"fragments played from levels {set(frags)}"
    assert not player.state("hls").get("fatal"), player.state("hls")
    enc.stop()


def test_worker_killed_mid_event_recovers_and_other_event_is_untouched(make_appliance, encoders, artifacts):
    app = make_appliance()
    tc = setup_encoding_event(app, "Standard", prefix="tck")
    # The other event: pass-through (its own pipeline, no worker).
    from _live import setup_live
    other = setup_live(app, prefix="other")
    enc = push(encoders, tc, "1280x720", duration=120)
    enc2 = encoders(other.rtmp_url(), name="other", size="640x360", duration=120)
    expected = LADDERS[("Standard", 720)]
    wait_renditions(tc, len(expected), 3, timeout=60, encoder=enc)
    from _live import wait_segments
    wait_segments(other, 3, timeout=30, encoder=enc2)
    before = transcoding_status(tc)
    pid = before["workerPid"]
    assert pid and before["workerRestarts"] == 0, before
    other_before = other.media_playlist("video")
    top = video_variants(tc)[0].uri
    disc_before = parse_media(tc.get(join(tc.hls_url, top)).text).discontinuities

    os.kill(pid, signal.SIGKILL)
    t_kill = time.monotonic()

    # The transcoding event recovers: a new worker, the playlists advance again, after a discontinuity.
    deadline = time.monotonic() + 30
    while True:
        t = transcoding_status(tc)
        pl = parse_media(tc.get(join(tc.hls_url, top)).text)
        if t["workerRestarts"] >= 1 and t.get("workerPid") not in (None, pid) and pl.discontinuities > disc_before:
            break
        assert time.monotonic() < deadline, f"no recovery 30 s after the kill: {t}\n{pl.text}"
        time.sleep(0.5)
    assert_advancing(tc, timeout=15, what="after the worker was killed")
    recovered = time.monotonic() - t_kill
    log_line(artifacts, f"worker killed: new segments after a discontinuity within {recovered:.1f}s", summary=True)
    assert recovered < 25, recovered
    # Whichever side of the pipe noticed first.
    assert any(w in (t.get("lastError") or "") for w in ("exited", "Broken pipe", "SIGKILL")), t
    # Every rendition got the discontinuity and continues.
    for v in video_variants(tc):
        pl = parse_media(tc.get(join(tc.hls_url, v.uri)).text)
        assert pl.discontinuities >= 1 and pl.segments[-1].dseq > pl.segments[0].dseq or pl.discontinuities, v.uri
    # The API never stopped answering, the appliance lives, and the other event went on without a break.
    assert app.proc.poll() is None
    other_after = assert_advancing(other, timeout=8, what="other event")
    assert other_after.last_msn > other_before.last_msn
    new = [s for s in other_after.segments if s.msn > other_before.last_msn]
    assert new and not any(s.discontinuity for s in new), f"the other event saw a discontinuity:\n{other_after.text}"
    enc.stop()
    enc2.stop()


def test_hung_worker_is_replaced(make_appliance, encoders, artifacts):
    """A worker that stops making progress (SIGSTOP: as a wedged GPU driver looks from outside) is killed and
    replaced once input has waited 15 s without output; the event goes on after a discontinuity."""
    app = make_appliance()
    tc = setup_encoding_event(app, "Standard", prefix="tch")
    enc = push(encoders, tc, "1280x720", duration=120)
    expected = LADDERS[("Standard", 720)]
    wait_renditions(tc, len(expected), 2, timeout=60, encoder=enc)
    pid = transcoding_status(tc)["workerPid"]
    os.kill(pid, signal.SIGSTOP)
    t_stop = time.monotonic()
    try:
        deadline = time.monotonic() + 40
        while True:
            t = transcoding_status(tc)
            if t["workerRestarts"] >= 1:
                break
            assert time.monotonic() < deadline, f"the stopped worker was not replaced in 40 s: {t}"
            time.sleep(0.5)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    replaced = time.monotonic() - t_stop
    log_line(artifacts, f"hung worker replaced after {replaced:.1f}s ({t['lastError']})", summary=True)
    assert "hung" in (t.get("lastError") or ""), t
    assert replaced >= 14, f"replaced after {replaced:.1f}s: before the 15 s hang limit"
    assert_advancing(tc, timeout=20, what="after the hung worker was replaced")
    top = video_variants(tc)[0].uri
    assert parse_media(tc.get(join(tc.hls_url, top)).text).discontinuities >= 1
    enc.stop()
