"""Issue 3, end to end: the RMS live quickstart through the official Python SDK with ffmpeg as the
encoder, over RTMP (full URL with the key) and over RTMPS (AMS form: server `.../live/<key>` plus a
stream name). The URLs from listPaths are checked as text (HLS multivariant and media playlists, MPD),
decoded with ffprobe, and played by hls.js and dash.js in headless Chromium, live and, after stop, as VOD.
"""
from __future__ import annotations

import datetime as dt
import time
import urllib.parse

import pytest
from azure.core.rest import HttpRequest
from azure.mgmt.media.models import (Asset, IPAccessControl, IPRange, LiveEvent, LiveEventActionInput,
                                     LiveEventEncoding, LiveEventInput, LiveEventInputAccessControl, LiveOutput,
                                     StreamingLocator)

from _api import Api
from _live import (NO_MANIFEST, RENDITIONS, Live, check_dash_hls_agree, check_multivariant, decode_segments,
                   manifest_ready, wait_segments)
from _media import (avc_codec_string, check_media_playlist, check_mpd, fetch, iso_duration, join, parse_media,
                    parse_mpd, parse_pdt, utc_now)
from _procs import advanced, assert_no_fatal, log_line
from sdk_helpers import make_client, unique

pytestmark = pytest.mark.timeout(240)

PLAY_ADVANCE_S = 6.5  # "currentTime advances past several segments" (2 s segments)


def quickstart_event() -> LiveEvent:
    return LiveEvent(
        location="West Europe", description="",
        input=LiveEventInput(
            streaming_protocol="RTMP", key_frame_interval_duration="PT2S",
            access_control=LiveEventInputAccessControl(
                ip=IPAccessControl(allow=[IPRange(name="AllowAll", address="0.0.0.0", subnet_prefix_length=0)]))),
        encoding=LiveEventEncoding(encoding_type="PassthroughStandard"), stream_options=["Default"])


def sdk_post(client, path: str) -> dict:
    """An action without a Python SDK method (getStatus, getStreamEvents), through the SDK pipeline."""
    r = client._send_request(HttpRequest("POST", f"{path}?api-version=2022-11-01"))
    assert r.status_code == 200, f"POST {path}: {r.status_code} {r.text()[:300]}"
    return r.json()


def wait_stream_event(client, le_path: str, kind: str, timeout: float = 8.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        evs = sdk_post(client, f"{le_path}/getStreamEvents")["value"]
        hits = [e for e in evs if e.get("eventType", "").endswith(kind)]
        if hits:
            return hits
        assert time.monotonic() < deadline, f"no {kind} stream event in {timeout}s: {evs}"
        time.sleep(0.25)


def check_delivery_headers(live: Live, pl) -> None:
    """Issue 3 §4: short Cache-Control on live playlists, immutable segments, CORS, byte ranges, HEAD."""
    for url in (live.hls_url, live.media_url("video"), live.dash_url):
        g = live.get(url, headers={"Origin": "http://example.test"})
        assert g.status == 200, g
        cc = (g.header("Cache-Control") or "").lower()
        assert "no-cache" in cc or "no-store" in cc or _max_age(cc) is not None and _max_age(cc) <= 2, \
            f"{url}: live manifest Cache-Control {cc!r} is not short"
        assert g.header("Access-Control-Allow-Origin") in ("*", "http://example.test"), \
            f"{url}: no CORS Access-Control-Allow-Origin ({g.headers})"
    seg_url = join(live.media_url("video"), pl.segments[0].uri)
    full = live.get(seg_url)
    assert full.status == 200
    cc = (full.header("Cache-Control") or "").lower()
    assert "immutable" in cc or (_max_age(cc) or 0) >= 3600, f"segment Cache-Control {cc!r} is not immutable/long"
    ctype = (full.header("Content-Type") or "").lower()
    assert ctype.startswith(("video/", "audio/", "application/mp4", "video/iso.segment")), f"segment Content-Type {ctype!r}"
    rng = live.get(seg_url, headers={"Range": "bytes=100-199"})
    assert rng.status == 206, f"Range request -> {rng.status}"
    assert rng.body == full.body[100:200], "Range body differs from the bytes of the full segment"
    assert (rng.header("Content-Range") or "").startswith(f"bytes 100-199/{len(full.body)}"), rng.headers
    head = live.get(seg_url, method="HEAD")
    assert head.status == 200 and head.body == b"", f"HEAD -> {head.status} with {len(head.body)} body bytes"
    assert int(head.header("Content-Length") or -1) == len(full.body), f"HEAD Content-Length {head.headers}"
    # Formats not supported and unknown locators: a clear 4xx, quickly.
    for bad in (live.hls_url.replace("m3u8-cmaf", "m3u8-aapl"),
                live.hls_url.replace(live.locator_id, "00000000-0000-0000-0000-00000000abcd")):
        g = live.get(bad, timeout=5)
        assert 400 <= g.status < 500, f"{bad} -> {g.status}"


def _max_age(cc: str):
    for part in cc.split(","):
        k, _, v = part.strip().partition("=")
        if k == "max-age" and v.strip().isdigit():
            return int(v)
    return None


def check_live_texts(live: Live, *, width: int, height: int, artifacts) -> dict:
    """The HLS and DASH documents of a live stream with >= 3 segments: parsed and cross-checked."""
    mv = check_multivariant(live, width=width, height=height)
    (artifacts / "live-multivariant.m3u8").write_text(mv["text"])
    pls = {}
    for r in RENDITIONS:
        g = live.get(live.media_url(r))
        assert g.status == 200
        (artifacts / f"live-{r}.m3u8").write_text(g.text)
        pls[r] = parse_media(g.text)
        check_media_playlist(pls[r], live=True, where=f"live {r}")
        # PDT is wall clock: the newest segment began a few seconds ago, not minutes or in the future.
        age = (utc_now() - pls[r].segments[-1].pdt).total_seconds()
        assert -1.0 < age < 12.0, f"{r}: newest EXT-X-PROGRAM-DATE-TIME is {age:.1f}s old"
    g = live.get(live.dash_url)
    assert g.status == 200
    assert "dash+xml" in (g.header("Content-Type") or ""), g.headers
    (artifacts / "live.mpd").write_text(g.text)
    mpd = parse_mpd(g.text)
    check_mpd(mpd, live=True, window_s=live.window_s, where="live MPD")
    assert len(mpd.periods) == 1, f"one encoder session, {len(mpd.periods)} Periods"
    reps = {r.content_type: r for r in mpd.periods[0].reps}
    assert (int(reps["video"].attrs["width"]), int(reps["video"].attrs["height"])) == (width, height)
    assert reps["video"].attrs["codecs"].lower() == mv["avc"].lower(), \
        f"MPD video codecs {reps['video'].attrs['codecs']} != {mv['avc']} (avcC)"
    assert reps["audio"].attrs["codecs"] == "mp4a.40.2", reps["audio"].attrs
    # Same segments in both formats (fetched a moment apart: at most one newer).
    n_hls, n_dash = len(pls["video"].segments), len(reps["video"].segments)
    assert abs(n_hls - n_dash) <= 1, f"HLS lists {n_hls} video segments, the MPD {n_dash}"
    # The same segments, durations and wall-clock times in both formats.
    check_dash_hls_agree(live, mpd, pls, where="live")
    # DASH segment URLs resolve to the same bytes as the HLS ones.
    rep = reps["video"]
    seg = rep.segments[0]
    d_init = live.get(join(live.dash_url, rep.url(rep.init)))
    d_seg = live.get(join(live.dash_url, rep.url(rep.media, seg)))
    assert d_init.status == 200 and d_seg.status == 200, (d_init.url, d_init.status, d_seg.url, d_seg.status)
    assert avc_codec_string(d_init.body) == mv["avc"]
    # UTCTiming resolves (relative to the MPD) to the server's clock.
    utc = mpd.utc_timing[0]
    t = live.get(join(live.dash_url, utc["value"]))
    assert t.status == 200, f"UTCTiming {utc['value']} -> {t.status}"
    if "iso" in utc.get("schemeIdUri", ""):
        server = parse_pdt(t.text.strip())
        assert abs((server - utc_now()).total_seconds()) < 2, f"UTCTiming says {t.text!r}"
    return {"pls": pls, "mpd": mpd, "mv": mv}


@pytest.mark.parametrize("transport", ["rtmp", "rtmps"])
def test_quickstart_live_e2e(appliance, encoders, player, artifacts, transport):
    app = appliance
    client = make_client(app, "https")
    rg, acct = app.RESOURCE_GROUP, app.ACCOUNT
    event, asset, output, locator = unique(f"e2e-{transport}-"), unique("e2e-asset-"), unique("out"), unique("loc-")
    le_path = f"{app.arm_prefix()}/liveEvents/{event}"
    try:
        # 1-4: live event (PT2S), asset, live output (PT5M), start.
        created = client.live_events.begin_create(rg, acct, event, quickstart_event()).result()
        assert created.resource_state == "Stopped"
        client.assets.create_or_update(rg, acct, asset, Asset())
        client.live_outputs.begin_create(rg, acct, event, output,
                                         LiveOutput(asset_name=asset, archive_window_length="PT5M")).result()
        client.live_events.begin_start(rg, acct, event).result()
        ev = client.live_events.get(rg, acct, event)
        assert ev.resource_state == "Running"

        # 5: getStatus before any media: Running, "Live manifest is not available."
        st = sdk_post(client, f"{le_path}/getStatus")["value"][0]
        assert st["state"] == "Running", st
        assert NO_MANIFEST in st.get("healthDescriptions", []), f"before ingest: {st}"

        # 7-9: locator, listPaths, streaming endpoint.
        loc = client.streaming_locators.create(rg, acct, locator, StreamingLocator(
            asset_name=asset, streaming_policy_name="Predefined_ClearStreamingOnly"))
        locator_id = str(loc.streaming_locator_id)
        paths = {p.streaming_protocol: p.paths for p in client.streaming_locators.list_paths(rg, acct, locator).streaming_paths}
        hls_path = next(p for p in paths["Hls"] if p.endswith("manifest(format=m3u8-cmaf)"))
        dash_path = next(p for p in paths["Dash"] if p.endswith("manifest(format=mpd-time-cmaf)"))
        host = client.streaming_endpoints.get(rg, acct, "default").host_name
        assert host == f"127.0.0.1:{app.https_port}"
        # Python-side checks use the quickstart's https://{hostName}{path} on the RTMPS run and the HTTP
        # listener on the RTMP run; the browser always uses HTTP (no certificate to trust).
        base = f"https://{host}" if transport == "rtmps" else app.http_base
        live = Live(app, Api(app), event, asset, output, locator, ev.input.access_token, locator_id, hls_path,
                    dash_path, 300.0, base=base)
        assert not manifest_ready(live), "a playable manifest before any media"

        # 6 + 10: the encoder, with the ingest settings from the event.
        eps = {e.protocol.upper(): e.url for e in ev.input.endpoints}
        token = ev.input.access_token
        if transport == "rtmp":
            enc = encoders(f"{eps['RTMP'].rstrip('/')}/{token}", name="ffmpeg-rtmp")
            stream_name = None
        else:
            # AMS form: server rtmps://host:port/live/<key>, stream name "cam1".
            u = urllib.parse.urlparse(eps["RTMPS"])
            stream_name = "cam1"
            enc = encoders(f"{eps['RTMPS'].rstrip('/')}/{token}/{stream_name}", name="ffmpeg-rtmps",
                           rtmp_app=f"{u.path.strip('/')}/{token}", rtmp_playpath=stream_name)
        ready_at = wait_each_document(live, enc, timeout=30)
        t_ready = time.monotonic()
        wall_ready = max(ready_at.values())
        begin = wait_stream_event(client, le_path, "BeginIngest")[0]
        t_begin = parse_pdt(begin["eventTime"])
        per_doc = ", ".join(f"{k} {(v - t_begin).total_seconds():.2f}s" for k, v in ready_at.items())
        log_line(artifacts, f"{transport}: time to first playable HLS+DASH manifest: "
                            f"{(wall_ready - t_begin).total_seconds():.2f}s after BeginIngest "
                            f"({t_ready - enc.t_start:.2f}s after starting ffmpeg; {per_doc})", summary=True)
        assert manifest_ready(live)
        first = live.media_playlist("video").segments[0]
        seg_end = first.pdt.timestamp() + first.duration
        log_line(artifacts, f"{transport}: first video segment (PDT {first.pdt.time()}, {first.duration}s) listed "
                            f"{ready_at['video.m3u8'].timestamp() - seg_end:+.2f}s after its PDT + EXTINF; BeginIngest "
                            f"{(first.pdt - t_begin).total_seconds():.2f}s before its PDT", summary=True)

        # The players start as soon as the manifest is playable; the checks below run meanwhile.
        player.open("hls", "hls", app.http_base + hls_path)
        player.open("dash", "dash", app.http_base + dash_path)

        st = sdk_post(client, f"{le_path}/getStatus")["value"][0]
        assert NO_MANIFEST not in st.get("healthDescriptions", []), f"manifest is served but getStatus says {st}"
        tracks = {t["trackId"]: t for t in st.get("trackStatus", [])}
        assert {"video", "audio"} <= set(tracks), st
        assert all((t.get("incomingBitrate") or 0) > 0 for t in tracks.values()), st
        if stream_name:
            assert st["ingestion"]["streamName"] == stream_name, f"AMS-form stream name: {st['ingestion']}"
        assert begin.get("data", {}).get("resultCode") == "S_OK", begin

        pl = wait_segments(live, 3, encoder=enc, timeout=20)
        texts = check_live_texts(live, width=640, height=360, artifacts=artifacts)
        check_delivery_headers(live, pl)
        for r in RENDITIONS:
            p = texts["pls"][r]
            decode_segments(live, r, p, p.segments, workdir=None)

        # hls.js and dash.js play the live URLs: currentTime moves past several segments, no fatal error.
        for pid in ("hls", "dash"):
            s = player.wait_for(pid, lambda s: advanced(s, PLAY_ADVANCE_S), 45, f"live {pid} advancing {PLAY_ADVANCE_S}s")
            assert (s["videoWidth"], s["videoHeight"]) == (640, 360), s
            assert s["decodedFrames"] > 100, s
            player.screenshot(pid, f"live-{pid}")
            assert_no_fatal(player, pid)
            log_line(artifacts, f"{transport}: live {pid} played {s['currentTime'] - s['firstPlayingTime']:.1f}s "
                                f"(decoded {s['decodedFrames']} frames, {s['nErrors']} non-fatal errors)")
        enc.assert_alive()

        # The encoder stops; EndIngest is reported; the live playlist ends with what was sent.
        rc = enc.stop()
        assert rc in (0, 255), f"ffmpeg ended with {rc}: {enc.stderr_text()}"  # 255: ended by SIGINT
        wait_stream_event(client, le_path, "EndIngest")
        last_live = {r: live.media_playlist(r) for r in RENDITIONS}
        for pid in ("hls", "dash"):
            player.dump(pid)
            player.close_page(pid)

        # 11: stop -> outputs deleted, asset kept; the same URLs serve VOD.
        client.live_events.begin_stop(rg, acct, event, LiveEventActionInput()).result()
        assert client.live_events.get(rg, acct, event).resource_state == "Stopped"
        assert list(client.live_outputs.list(rg, acct, event)) == []
        assert client.assets.get(rg, acct, asset).name == asset
        check_vod(live, last_live, artifacts)

        player.open("hls-vod", "hls", app.http_base + hls_path)
        player.open("dash-vod", "dash", app.http_base + dash_path)
        vod_duration = parse_media(live.get(live.media_url("video")).text).total_duration
        for pid in ("hls-vod", "dash-vod"):
            play_vod_to_end(player, pid, vod_duration, artifacts)

        # 12: delete the live event: the asset and locator stay, and so does the VOD.
        client.live_events.begin_delete(rg, acct, event).result()
        assert live.get(live.hls_url).status == 200 and live.get(live.dash_url).status == 200
        assert parse_media(live.get(live.media_url("video")).text).endlist
    finally:
        for op in (lambda: client.live_events.begin_stop(rg, acct, event, LiveEventActionInput(remove_outputs_on_stop=True)),
                   lambda: client.live_events.begin_delete(rg, acct, event)):
            try:
                op().result()
            except Exception:  # noqa: BLE001 - cleanup after a failure
                pass
        client.close()


def wait_each_document(live: Live, enc, timeout: float) -> dict:
    """Polls the four live documents until each is playable (media playlists and MPD with a segment);
    returns the wall-clock time each first was."""
    checks = {
        "multivariant": lambda: live.get(live.hls_url, timeout=5).status == 200,
        "video.m3u8": lambda: _has_segments(live.get(live.media_url("video"), timeout=5)),
        "audio.m3u8": lambda: _has_segments(live.get(live.media_url("audio"), timeout=5)),
        "mpd": lambda: _mpd_has_segments(live.get(live.dash_url, timeout=5)),
    }
    ready: dict = {}
    deadline = time.monotonic() + timeout
    while len(ready) < len(checks):
        enc.assert_alive()
        assert time.monotonic() < deadline, f"not playable {timeout}s after the encoder started: " \
                                            f"{sorted(set(checks) - set(ready))}; getStatus {live.status()}"
        for name, ok in checks.items():
            if name not in ready and ok():
                ready[name] = utc_now()
        time.sleep(0.02)
    return ready


def _has_segments(g) -> bool:
    return g.status == 200 and bool(parse_media(g.text).segments)


def _mpd_has_segments(g) -> bool:
    if g.status != 200:
        return False
    mpd = parse_mpd(g.text)
    return bool(mpd.periods) and all(r.segments for r in mpd.periods[-1].reps)


def check_vod(live: Live, last_live: dict, artifacts) -> None:
    """After stop: ENDLIST, static MPD, every segment of the live playlist still there and decodable."""
    for r in RENDITIONS:
        g = live.get(live.media_url(r))
        assert g.status == 200, f"VOD {r} playlist -> {g.status}"
        (artifacts / f"vod-{r}.m3u8").write_text(g.text)
        vod = parse_media(g.text)
        check_media_playlist(vod, live=False, where=f"VOD {r}")
        live_uris = [s.uri for s in last_live[r].segments]
        vod_uris = [s.uri for s in vod.segments]
        missing = [u for u in live_uris if u not in vod_uris]
        assert not missing, f"VOD {r} lacks segments the live playlist listed: {missing}"
        assert vod_uris[:len(live_uris)] == live_uris or set(live_uris) <= set(vod_uris)
        for a, b in zip(last_live[r].segments, vod.segments):
            assert (a.uri, a.msn) == (b.uri, b.msn), f"{r}: {a.uri}/{a.msn} became {b.uri}/{b.msn} in the VOD"
        decode_segments(live, r, vod, [vod.segments[0], vod.segments[-1]])
    g = live.get(live.dash_url)
    assert g.status == 200
    (artifacts / "vod.mpd").write_text(g.text)
    mpd = parse_mpd(g.text)
    check_mpd(mpd, live=False, where="VOD MPD")
    total = iso_duration(mpd.attrs["mediaPresentationDuration"])
    hls_total = parse_media(live.get(live.media_url("video")).text).total_duration
    assert abs(total - hls_total) < 0.6, f"MPD duration {total}s vs HLS video {hls_total}s"
    n_dash = sum(len([r for r in p.reps if r.content_type == "video"][0].segments) for p in mpd.periods)
    assert n_dash == len(parse_media(live.get(live.media_url("video")).text).segments)


def play_vod_to_end(player, pid: str, duration: float, artifacts) -> None:
    s = player.wait_for(pid, lambda s: advanced(s, 1.0), 30, f"{pid} playing")
    d = s["duration"]
    assert isinstance(d, (int, float)) and abs(d - duration) < 1.0, f"{pid}: duration {d} vs playlist {duration}"
    player.eval(pid, f"seekTo({max(d - 4.0, 0)})")
    s = player.wait_for(pid, lambda s: s["ended"], 25, f"{pid} playing to the end ({d:.1f}s, 'ended')")
    assert s["currentTime"] >= d - 0.5, f"{pid}: ended at {s['currentTime']} of {d}"
    player.screenshot(pid, pid)
    assert_no_fatal(player, pid)
    log_line(artifacts, f"{pid}: played to {s['currentTime']:.2f}/{d:.2f}s (ended={s['ended']})")
