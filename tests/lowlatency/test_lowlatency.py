"""Issue 8, black box: a LowLatency live event on the real binary, ffmpeg (1 s GOPs) pushing RTMP.
LL-HLS tags, blocking playlist reload (held until the part exists, answered with it; too far ahead
-> 400; bad directives -> 400), preload-hinted parts, delta updates, parts == segment bytes,
LL-DASH chunked delivery of the segment being written, HTTP/2 on HTTPS, the recording after stop,
and hls.js (lowLatencyMode) and dash.js (low-latency settings) playing without stalls.
Latency numbers are logged (benchmark: bench/ll_bench.py), not asserted."""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.parse

import pytest

from _ll import (LLPlayer, LLPlaylist, get_ll, latencies, part_name, percentile, setup_ll, start_encoder,
                 wait_ll)
from _media import fetch_ok, join, parse_media
from _procs import advanced, assert_no_fatal, log_line

pytestmark = pytest.mark.timeout(200)

# "answered within 50 ms of the part": both the held playlist and the held part request are woken by
# the same notification; this bound is generous for 2 shared cores (the measured value is logged).
SAME_NOTIFICATION_S = 0.25


def _timed(fn, out: dict, key: str) -> threading.Thread:
    def run():
        g = fn()
        out[key] = (g, time.monotonic())
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_ll_hls_blocking_parts_delta_dash_and_recording(appliance, encoders, artifacts):
    live = setup_ll(appliance)
    enc = start_encoder(encoders, live)
    pl = wait_ll(live, min_segments=2, encoder=enc)

    # --- tags ----------------------------------------------------------------------------
    assert "#EXT-X-VERSION:9" in pl.lines, pl.text
    sc = pl.server_control
    assert sc.get("CAN-BLOCK-RELOAD") == "YES", pl.text
    assert pl.part_target and 0.33 <= pl.part_target <= 0.5, pl.text
    assert float(sc["PART-HOLD-BACK"]) >= 3 * pl.part_target - 1e-6, sc
    assert float(sc["CAN-SKIP-UNTIL"]) >= 6 * 2, sc
    assert pl.hint and pl.hint.endswith(".m4s"), pl.text
    assert any(p["independent"] for p in pl.parts), pl.text
    assert all(p["duration"] <= pl.part_target + 1e-6 for p in pl.parts), pl.text
    assert [r["URI"] for r in pl.reports] == ["../audio/index.m3u8"], pl.text
    apl = LLPlaylist(get_ll(live, "audio").text)
    assert [r["URI"] for r in apl.reports] == ["../video/index.m3u8"], apl.text
    # 1 s GOPs and 2 s segments: every segment's parts begin with an independent one, and one
    # starts each GOP.
    for msn, _ in pl.segments:
        parts = pl.parts_of(msn)
        if parts:
            assert parts[0]["independent"], pl.text
            assert sum(p["independent"] for p in parts) == 2, (msn, parts)

    # --- bad directives and too far ahead --------------------------------------------------
    for q in ("_HLS_msn=abc", "_HLS_part=1", "_HLS_msn=1&_HLS_part=-1", "_HLS_skip=maybe"):
        g = get_ll(live, query=q)
        assert g.status == 400, (q, g.status, g.text)
    g = get_ll(live, query=f"_HLS_msn={pl.open_msn + 3}")
    assert g.status == 400 and "too far" in g.text, (g.status, g.text)
    # The event keeps serving after the refusals.
    assert get_ll(live).status == 200

    # --- blocking reload: held until the part exists, answered with it ---------------------
    held = []
    for _ in range(3):
        now = LLPlaylist(get_ll(live).text)
        hint_seq, hint_idx = part_name(now.hint)
        # One part beyond the hint: certainly not there yet, so the request must be held.
        if hint_idx >= 1:
            want = (hint_seq, hint_idx + 1)
        else:
            want = (hint_seq, 1)
        out: dict = {}
        t0 = time.monotonic()
        tp = _timed(lambda: get_ll(live, query=f"_HLS_msn={want[0]}&_HLS_part={want[1]}"), out, "playlist")
        part_url = join(live.media_url("video"), f"{want[0]}.{want[1]}.m4s")
        tq = _timed(lambda: live.get(part_url, timeout=15), out, "part")
        tp.join(15)
        tq.join(15)
        g, t_pl = out["playlist"]
        gp, t_part = out["part"]
        assert g.status == 200, (g.status, g.text)
        assert gp.status == 200, (gp.status, gp.text)
        after = LLPlaylist(g.text)
        names = [p["uri"] for p in after.parts]
        assert f"{want[0]}.{want[1]}.m4s" in names, (want, g.text)
        held.append((t_pl - t0, abs(t_pl - t_part)))
        assert t_pl - t0 > 0.05, f"the reload for {want} was not held ({t_pl - t0:.3f}s): {now.text}"
        assert abs(t_pl - t_part) < SAME_NOTIFICATION_S, \
            f"the held playlist and the held part for {want} were answered {abs(t_pl - t_part) * 1000:.0f} ms apart"
    log_line(artifacts, "LL-HLS blocking reload: held/answer gap " +
             ", ".join(f"{h:.3f}s/{d * 1000:.1f}ms" for h, d in held), summary=True)

    # A request for a part well ahead of the hint that never gets that far in time is 400 (too far).
    now = LLPlaylist(get_ll(live).text)
    g = get_ll(live, query=f"_HLS_msn={now.open_msn + 2}&_HLS_part=9")
    assert g.status == 400, (g.status, g.text)

    # --- parts are the segment's bytes ---------------------------------------------------------
    pl = LLPlaylist(get_ll(live).text)
    complete = [msn for msn, _ in pl.segments if pl.parts_of(msn)]
    assert complete, pl.text
    checked = 0
    for rendition in ("video", "audio"):
        rpl = LLPlaylist(get_ll(live, rendition).text)
        for msn, uri in rpl.segments:
            parts = rpl.parts_of(msn)
            if not parts:
                continue
            seg = fetch_ok(join(live.media_url(rendition), uri)).body
            joined = b"".join(fetch_ok(join(live.media_url(rendition), p["uri"])).body for p in parts)
            assert joined == seg, f"{rendition} segment {msn}: parts ({len(joined)} B) != segment ({len(seg)} B)"
            assert seg[4:8] == b"styp"
            checked += 1
    assert checked >= 2

    # --- LL-DASH ------------------------------------------------------------------------------
    mpd = fetch_ok(live.dash_url).text
    assert 'availabilityTimeComplete="false"' in mpd and "availabilityTimeOffset=" in mpd, mpd
    assert "<ServiceDescription" in mpd and "<Latency" in mpd and "UTCTiming" in mpd, mpd
    # The segment being written is delivered chunk by chunk while it is produced.
    now = LLPlaylist(get_ll(live).text)
    seq = now.open_msn
    u = urllib.parse.urlsplit(join(live.media_url("video"), f"{seq}.m4s"))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    t0 = time.monotonic()
    conn.request("GET", u.path)
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    assert resp.getheader("Transfer-Encoding") == "chunked", resp.getheaders()
    first = resp.read1(65536)
    t_first = time.monotonic() - t0
    body = first + resp.read()
    t_all = time.monotonic() - t0
    conn.close()
    assert body[4:8] == b"styp"
    final = LLPlaylist(get_ll(live, query=f"_HLS_msn={seq}").text)
    assert seq in [m for m, _ in final.segments], final.text
    assert fetch_ok(join(live.media_url("video"), f"{seq}.m4s")).body == body, "streamed != recorded segment"
    log_line(artifacts, f"LL-DASH open segment {seq}: first bytes after {t_first:.3f}s, whole after {t_all:.3f}s",
             summary=True)
    assert t_all - t_first > 0.3, "the segment was not streamed while written"

    # --- delta update (needs more than CAN-SKIP-UNTIL of segments) ------------------------------
    deadline = time.monotonic() + 40
    while len(LLPlaylist(get_ll(live).text).segments) < 8:
        enc.assert_alive()
        assert time.monotonic() < deadline, "no 8 segments"
        time.sleep(0.5)
    g = get_ll(live, query="_HLS_skip=YES")
    delta = LLPlaylist(g.text)
    full = LLPlaylist(get_ll(live).text)
    assert delta.skipped > 0 and "#EXT-X-SKIP:SKIPPED-SEGMENTS=" in g.text, g.text
    assert len(g.text) < len(full.text)
    assert delta.segments[-1][0] >= full.segments[-1][0] - 1

    # --- HTTP/2 on HTTPS ------------------------------------------------------------------------
    ctx = ssl.create_default_context(cafile=appliance.cert_path)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", appliance.https_port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2"

    # --- stop: the recording is whole segments, VOD as in normal mode ----------------------------
    enc.stop()
    live.stop()
    deadline = time.monotonic() + 20
    while True:
        g = live.get(live.media_url("video"))
        if g.status == 200 and "#EXT-X-ENDLIST" in g.text:
            break
        assert time.monotonic() < deadline, f"no VOD playlist after stop: {g.status} {g.text[:300]}"
        time.sleep(0.5)
    vod = g.text
    for tag in ("EXT-X-PART", "SERVER-CONTROL", "PRELOAD-HINT", "RENDITION-REPORT"):
        assert tag not in vod, vod
    vpl = parse_media(vod)
    assert len(vpl.segments) >= 8
    for s in vpl.segments[-3:]:
        data = fetch_ok(join(live.media_url("video"), s.uri)).body
        assert data[4:8] == b"styp"


def test_players_play_low_latency(appliance, encoders, static_server, artifacts):
    live = setup_ll(appliance)
    enc = start_encoder(encoders, live)
    wait_ll(live, min_segments=2, encoder=enc)
    player = LLPlayer(static_server, artifacts).start()
    try:
        player.open("hls", "hls", live.hls_url)
        player.open("dash", "dash", live.dash_url)
        for pid in ("hls", "dash"):
            player.wait_for(pid, lambda s: advanced(s, 3.0), 40, "3 s of playback")
        t_play = time.time()
        # 20 s of play: no fatal errors, no stall (time keeps moving; `waiting` does not grow).
        waiting0 = {pid: player.state(pid)["waiting"] for pid in ("hls", "dash")}
        ct0 = {pid: player.state(pid)["currentTime"] for pid in ("hls", "dash")}
        for _ in range(20):
            time.sleep(1)
            enc.assert_alive()
        for pid in ("hls", "dash"):
            assert_no_fatal(player, pid)
            st = player.state(pid)
            moved = st["currentTime"] - ct0[pid]
            assert moved > 16, f"{pid}: played {moved:.1f}s of 20s"
            stalls = st["waiting"] - waiting0[pid]
            assert stalls <= 1, f"{pid}: {stalls} stalls in 20 s of play"
            lat = latencies(player, pid, since_t=t_play)
            assert len(lat) > 20, f"{pid}: the latency probe gave {len(lat)} samples"
            log_line(artifacts, f"{pid} (low latency) glass-to-glass over 20 s: median {percentile(lat, 50):.2f}s, "
                                f"p95 {percentile(lat, 95):.2f}s, {stalls} stalls", summary=True)
    finally:
        player.quit()
