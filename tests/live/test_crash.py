"""Issue 3 §5: kill -9 the appliance mid-stream and start it again on the same data dir: the event is
Running again, and once stopped, every segment the live playlist listed before the kill is in the VOD
manifest (same URI, media sequence number and duration) and decodes. An encoder that reconnects after the
restart continues the same recording after a discontinuity."""
from __future__ import annotations

import time

import pytest

from _live import NO_MANIFEST, RENDITIONS, decode_segments, setup_live, wait_manifest, wait_segments
from _media import check_media_playlist, check_mpd, parse_media
from _procs import log_line

pytestmark = pytest.mark.timeout(180)


def test_kill9_mid_stream_keeps_the_recording(make_appliance, encoders, artifacts):
    app = make_appliance()
    live = setup_live(app, prefix="crash")
    enc = encoders(live.rtmp_url(), name="enc-before")
    wait_manifest(live, encoder=enc)
    wait_segments(live, 4, encoder=enc)
    # Sample until just before the kill: the last listing wins.
    pre = {r: live.media_playlist(r) for r in RENDITIONS}
    app.kill9()
    log_line(artifacts, f"kill -9 with video segments {[s.uri for s in pre['video'].segments]} listed")
    for r in RENDITIONS:
        (artifacts / f"pre-kill-{r}.m3u8").write_text(pre[r].text)
    rc = enc.wait(15)
    assert rc is not None and rc != 0, "ffmpeg kept running against a dead appliance"

    t0 = time.monotonic()
    app2 = make_appliance(data_dir=app.data_dir)
    log_line(artifacts, f"restarted in {time.monotonic() - t0:.2f}s")
    live2 = live.rebind(app2)
    assert live2.resource_state() == "Running", "the live event is not Running after the restart"
    st = live2.status()
    assert st["state"] == "Running", st

    # A player joining after the restart finds the recorded window at the same URL.
    for r in RENDITIONS:
        g = live2.get(live2.media_url(r))
        assert g.status == 200, f"{r} live playlist after the restart -> {g.status} {g.body[:200]!r}"
        after = parse_media(g.text)
        assert not after.endlist, f"{r}: the event is Running but its playlist has EXT-X-ENDLIST"
        have = {s.uri for s in after.segments}
        lost = [s.uri for s in pre[r].segments if s.uri not in have]
        assert not lost, f"{r}: segments listed before the kill are gone from the live playlist: {lost}"

    # The encoder comes back (as a real one retries): the recording goes on after a discontinuity.
    repush_error = None
    try:
        enc2 = encoders(live2.rtmp_url(), name="enc-after")
        pl = None
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            enc2.assert_alive()
            pl = live2.media_playlist("video")
            if pl.last_msn >= pre["video"].last_msn + 2:
                break
            time.sleep(0.25)
        assert pl and pl.last_msn >= pre["video"].last_msn + 2, \
            f"no new segments after the encoder reconnected to the restarted appliance:\n{pl.text if pl else None}"
        assert any(s.discontinuity for s in pl.segments if s.msn > pre["video"].last_msn), \
            f"no EXT-X-DISCONTINUITY between the pre-crash and post-restart segments:\n{pl.text}"
        assert NO_MANIFEST not in live2.status().get("healthDescriptions", [])
        enc2.stop()
    except AssertionError as e:
        repush_error = e
        log_line(artifacts, f"re-push after restart failed: {e}")

    live2.stop()
    for r in RENDITIONS:
        g = live2.get(live2.media_url(r))
        assert g.status == 200, f"VOD {r} -> {g.status}"
        (artifacts / f"vod-{r}.m3u8").write_text(g.text)
        vod = parse_media(g.text)
        check_media_playlist(vod, live=False, where=f"VOD {r}")
        by_uri = {s.uri: s for s in vod.segments}
        lost = [s.uri for s in pre[r].segments if s.uri not in by_uri]
        assert not lost, f"{r}: segments listed live before kill -9 are missing from the VOD: {lost}\n{vod.text}"
        for s in pre[r].segments:
            v = by_uri[s.uri]
            assert v.msn == s.msn, f"{r} {s.uri}: media sequence {s.msn} live, {v.msn} in the VOD"
            assert abs(v.duration - s.duration) < 0.002, f"{r} {s.uri}: EXTINF {s.duration} live, {v.duration} VOD"
        # Every pre-kill segment decodes (with its init segment); so does everything after it.
        decode_segments(live2, r, vod, [by_uri[s.uri] for s in pre[r].segments])
        extra = [s for s in vod.segments if s.msn > pre[r].last_msn]
        if extra:
            decode_segments(live2, r, vod, extra)
        log_line(artifacts, f"VOD {r}: {len(vod.segments)} segments ({len(pre[r].segments)} listed before the kill, "
                            f"{vod.discontinuities} discontinuities), all decoded")
    mpd = live2.mpd()
    (artifacts / "vod.mpd").write_text(mpd.text)
    check_mpd(mpd, live=False, where="VOD MPD after the crash")
    n_video = sum(len([x for x in p.reps if x.content_type == "video"][0].segments) for p in mpd.periods)
    assert n_video == len(parse_media(live2.get(live2.media_url("video")).text).segments), \
        "the VOD MPD and HLS playlist list different numbers of video segments"
    assert repush_error is None, f"after the restart: {repush_error}"
