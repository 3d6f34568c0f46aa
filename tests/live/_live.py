"""Live-path helpers: set up a live event with the stdlib API client, find the playback URLs,
watch playlists, and check what the appliance serves. Used by every tests/live suite."""
from __future__ import annotations

import copy
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from _api import QUICKSTART_LIVE_EVENT, Api
from _media import (Got, MediaPlaylist, Mpd, check_media_playlist, check_mpd, fetch, fetch_ok, ffprobe_decode,
                    join, parse_media, parse_mpd, parse_multivariant)

RENDITIONS = ("video", "audio")
NO_MANIFEST = "Live manifest is not available."


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def live_event_body(allow: list[dict] | None = None, key_frame: str = "PT2S") -> dict:
    body = copy.deepcopy(QUICKSTART_LIVE_EVENT)
    body["properties"]["input"]["keyFrameIntervalDuration"] = key_frame
    if allow is not None:
        body["properties"]["input"]["accessControl"] = {"ip": {"allow": allow}}
    return body


@dataclass
class Live:
    """One live event with an asset, a live output and a locator, on one appliance."""
    app: object
    api: Api
    event: str
    asset: str
    output: str
    locator: str
    token: str
    locator_id: str
    hls_path: str
    dash_path: str
    window_s: float
    base: str = ""  # playback base (http://127.0.0.1:port); defaults to the appliance's HTTP listener

    # -- URLs --------------------------------------------------------------------------------
    @property
    def playback_base(self) -> str:
        return self.base or self.app.http_base

    @property
    def hls_url(self) -> str:
        return self.playback_base + self.hls_path

    @property
    def dash_url(self) -> str:
        return self.playback_base + self.dash_path

    @property
    def ism_base(self) -> str:
        """`…/manifest.ism/`: media playlists, init and segments are relative to it."""
        return self.hls_url.rsplit("/", 1)[0] + "/"

    def media_url(self, rendition: str) -> str:
        return self.ism_base + f"{rendition}/index.m3u8"

    def rtmp_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.app.rtmp_port}/live/{self.token}"

    def rtmps_url(self) -> str:
        return f"rtmps://127.0.0.1:{self.app.rtmps_port}/live/{self.token}"

    def rebind(self, app) -> "Live":
        """The same resources on a restarted appliance (new ports)."""
        return Live(app, Api(app), self.event, self.asset, self.output, self.locator, self.token, self.locator_id,
                    self.hls_path, self.dash_path, self.window_s)

    # -- fetching ------------------------------------------------------------------------------
    def get(self, url: str, **kw) -> Got:
        return fetch(url, cafile=getattr(self.app, "cert_path", None), **kw)

    def media_playlist(self, rendition: str = "video") -> MediaPlaylist:
        g = self.get(self.media_url(rendition))
        assert g.status == 200, f"GET {rendition}/index.m3u8 -> {g.status} {g.body[:300]!r}"
        return parse_media(g.text)

    def mpd(self) -> Mpd:
        g = self.get(self.dash_url)
        assert g.status == 200, f"GET MPD -> {g.status} {g.body[:300]!r}"
        return parse_mpd(g.text)

    # -- API -------------------------------------------------------------------------------------
    def status(self) -> dict:
        r = self.api.call("POST", f"liveEvents/{self.event}/getStatus")
        assert r.status == 200, f"getStatus: {r!r}"
        return r.doc["value"][0]

    def stream_events(self) -> list[dict]:
        r = self.api.call("POST", f"liveEvents/{self.event}/getStreamEvents")
        assert r.status == 200, f"getStreamEvents: {r!r}"
        return r.doc["value"]

    def resource_state(self) -> str:
        r = self.api.get_live_event(self.event)
        assert r.status == 200, r
        return r.doc["properties"]["resourceState"]

    def stop(self) -> None:
        self.api.stop_live_event(self.event)


def paths_from_list_paths(doc: dict) -> tuple[str, str]:
    by = {p["streamingProtocol"]: p["paths"] for p in doc["streamingPaths"]}
    hls = [p for p in by.get("Hls", []) if "format=m3u8-cmaf" in p]
    dash = [p for p in by.get("Dash", []) if "format=mpd-time-cmaf" in p]
    assert hls and dash, f"listPaths without m3u8-cmaf/mpd-time-cmaf paths: {doc}"
    return hls[0], dash[0]


def setup_live(app, *, window: str = "PT5M", allow: list[dict] | None = None, prefix: str = "live",
               start: bool = True, locator: bool = True) -> Live:
    api = Api(app)
    event, asset, output, loc = unique(f"{prefix}-"), unique(f"{prefix}-asset-"), unique("out"), unique("loc-")
    doc = api.create_live_event(event, live_event_body(allow))
    token = doc["properties"]["input"]["accessToken"]
    assert token, doc
    api.create_asset(asset)
    api.create_live_output(event, output, asset, archive=window)
    if start:
        api.start_live_event(event)
    hls = dash = locator_id = ""
    if locator:
        locator_id = api.create_locator(loc, asset)["properties"]["streamingLocatorId"]
        r = api.meta("POST", f"streamingLocators/{loc}/listPaths")
        assert r.status == 200, r
        hls, dash = paths_from_list_paths(r.doc)
        assert hls.startswith(f"/{locator_id}/") and dash.startswith(f"/{locator_id}/"), (hls, dash)
    from _media import iso_duration
    return Live(app, api, event, asset, output, loc, token, locator_id, hls, dash, iso_duration(window))


# ----------------------------------------------------------------------------------- waiting
def manifest_ready(live: Live, min_segments: int = 1) -> bool:
    """True when the multivariant, both media playlists (with >= min_segments) and the MPD are served."""
    try:
        if live.get(live.hls_url, timeout=5).status != 200:
            return False
        for r in RENDITIONS:
            g = live.get(live.media_url(r), timeout=5)
            if g.status != 200 or len(parse_media(g.text).segments) < min_segments:
                return False
        g = live.get(live.dash_url, timeout=5)
        if g.status != 200:
            return False
        mpd = parse_mpd(g.text)
        return all(len(rep.segments) >= min_segments for p in mpd.periods[-1:] for rep in p.reps) and \
            bool(mpd.periods)
    except (OSError, AssertionError, ValueError):
        return False


def wait_manifest(live: Live, *, min_segments: int = 1, timeout: float = 30.0, encoder=None) -> float:
    """Waits until manifest_ready(); returns the monotonic time it became ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if encoder is not None:
            encoder.assert_alive()
        if manifest_ready(live, min_segments):
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"no playable manifest with {min_segments} segment(s) within {timeout}s "
                         f"(multivariant {live.get(live.hls_url).status}, video playlist "
                         f"{live.get(live.media_url('video')).status}, MPD {live.get(live.dash_url).status}); "
                         f"getStatus: {live.status()}")


def wait_segments(live: Live, n: int, *, rendition: str = "video", timeout: float = 30.0, encoder=None) -> MediaPlaylist:
    deadline = time.monotonic() + timeout
    pl = None
    while time.monotonic() < deadline:
        if encoder is not None:
            encoder.assert_alive()
        g = live.get(live.media_url(rendition), timeout=5)
        if g.status == 200:
            pl = parse_media(g.text)
            if len(pl.segments) >= n:
                return pl
        time.sleep(0.2)
    raise AssertionError(f"{rendition} playlist did not reach {n} segments in {timeout}s:\n{pl.text if pl else None}")


def assert_advancing(live: Live, *, timeout: float = 8.0, what: str = "") -> MediaPlaylist:
    """The live video playlist gains a new segment within `timeout` (2 s segments), and the API answers."""
    first = live.media_playlist("video")
    deadline = time.monotonic() + timeout
    while True:
        cur = live.media_playlist("video")
        if cur.last_msn > first.last_msn:
            break
        assert time.monotonic() < deadline, \
            f"{what}: the live playlist stopped advancing (last media sequence {first.last_msn} for {timeout}s)"
        time.sleep(0.25)
    assert not cur.endlist, f"{what}: the live playlist ended"
    t0 = time.monotonic()
    assert live.resource_state() == "Running", what
    st = live.status()
    took = time.monotonic() - t0
    assert took < 2.0, f"{what}: the API took {took:.2f}s to answer"
    assert st["state"] == "Running", f"{what}: getStatus {st}"
    return cur


# ----------------------------------------------------------------------------------- watcher
class PlaylistWatcher(threading.Thread):
    """Polls media playlists (every `period` s) and keeps every distinct snapshot, to check the
    rules that only show over time: media sequence never decreasing, and each segment URI keeping
    its media sequence number and discontinuity sequence number across reloads."""

    def __init__(self, live: Live, renditions=RENDITIONS, period: float = 0.5, mpd: bool = False):
        super().__init__(daemon=True)
        self.live, self.renditions, self.period, self.poll_mpd = live, renditions, period, mpd
        self.snapshots: dict[str, list[tuple[float, MediaPlaylist]]] = {r: [] for r in renditions}
        self.mpds: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            for r in self.renditions:
                try:
                    g = self.live.get(self.live.media_url(r), timeout=5)
                    if g.status == 200:
                        pl = parse_media(g.text)
                        snaps = self.snapshots[r]
                        if not snaps or snaps[-1][1].text != pl.text:
                            snaps.append((time.monotonic(), pl))
                    elif self.snapshots[r]:
                        self.errors.append(f"{r}: {g.status} after it had been served")
                except Exception as e:  # noqa: BLE001 - recorded, asserted by the test
                    self.errors.append(f"{r}: {type(e).__name__}: {e}")
            if self.poll_mpd:
                try:
                    g = self.live.get(self.live.dash_url, timeout=5)
                    if g.status == 200 and (not self.mpds or self.mpds[-1][1] != g.text):
                        self.mpds.append((time.time(), g.text))
                except OSError as e:
                    self.errors.append(f"mpd: {e}")
            self._halt.wait(self.period)

    def dump(self, directory: Path) -> None:
        """Every distinct playlist/MPD seen, with the wall-clock time it was first seen."""
        for r, snaps in self.snapshots.items():
            with open(directory / f"watched-{r}.m3u8.txt", "w") as f:
                for t, pl in snaps:
                    f.write(f"==== +{t - snaps[0][0]:.2f}s\n{pl.text}\n")
        if self.mpds:
            with open(directory / "watched-mpd.xml.txt", "w") as f:
                for t, text in self.mpds:
                    f.write(f"==== {time.strftime('%H:%M:%S', time.gmtime(t))}.{int(t % 1 * 1000):03d}Z\n{text}\n")

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def check(self) -> None:
        assert not self.errors, f"playlist polling errors: {self.errors[:5]}"
        for r, snaps in self.snapshots.items():
            assert snaps, f"{r}: never served"
            msn_of: dict[str, int] = {}
            dsn_of: dict[str, int] = {}
            prev = None
            for _t, pl in snaps:
                if prev is not None:
                    assert pl.media_sequence >= prev.media_sequence, \
                        f"{r}: EXT-X-MEDIA-SEQUENCE went back {prev.media_sequence} -> {pl.media_sequence}"
                    assert pl.discontinuity_sequence >= prev.discontinuity_sequence, \
                        f"{r}: EXT-X-DISCONTINUITY-SEQUENCE went back"
                    assert pl.last_msn >= prev.last_msn, f"{r}: the playlist lost its newest segment"
                for s in pl.segments:
                    if s.uri in msn_of:
                        assert msn_of[s.uri] == s.msn, \
                            f"{r}: {s.uri} had media sequence number {msn_of[s.uri]}, now {s.msn}"
                        assert dsn_of[s.uri] == s.dseq, \
                            f"{r}: {s.uri} had discontinuity sequence number {dsn_of[s.uri]}, now {s.dseq}:\n{pl.text}"
                    msn_of[s.uri], dsn_of[s.uri] = s.msn, s.dseq
                prev = pl

    def all_segments(self, rendition: str = "video") -> dict[str, object]:
        out = {}
        for _t, pl in self.snapshots[rendition]:
            for s in pl.segments:
                out[s.uri] = s
        return out


# ----------------------------------------------------------------------------------- checks
def check_multivariant(live: Live, *, width: int, height: int) -> dict:
    """Parses the HLS multivariant playlist; checks variants, codecs against the init segments'
    avcC, resolution, bandwidth, the audio group. Returns {'video': variant attrs, ...}."""
    from _media import avc_codec_string
    g = live.get(live.hls_url)
    assert g.status == 200, g
    ctype = (g.header("Content-Type") or "").lower()
    assert "mpegurl" in ctype, f"multivariant Content-Type {ctype!r}"
    mv = parse_multivariant(g.text)
    assert mv.variants, f"no EXT-X-STREAM-INF:\n{g.text}"
    video = [v for v in mv.variants if "RESOLUTION" in v.attrs]
    assert video, f"no variant with RESOLUTION:\n{g.text}"
    v = video[0]
    assert v.attrs["RESOLUTION"] == f"{width}x{height}", f"RESOLUTION {v.attrs['RESOLUTION']} != {width}x{height}"
    assert int(v.attrs.get("BANDWIDTH", "0")) > 0, v.attrs
    codecs = [c.strip() for c in v.attrs.get("CODECS", "").split(",")]
    init = live.get(join(join(live.hls_url, v.uri), parse_media(live.get(join(live.hls_url, v.uri)).text).segments[-1].map_uri))
    assert init.status == 200, init
    avc = avc_codec_string(init.body)
    assert avc, "video init segment has no avcC"
    assert any(c.lower() == avc.lower() for c in codecs), f"CODECS {codecs} lacks {avc} (from the init segment's avcC)"
    assert "mp4a.40.2" in codecs, f"CODECS {codecs} lacks mp4a.40.2 (AAC-LC)"
    bw = int(v.attrs["BANDWIDTH"])
    # BANDWIDTH is the peak of one segment (RFC 8216): a short segment holding an IDR (e.g. the last one
    # before a reconnect) of this unconstrained 1.5 Mb/s x264 stream has measured 4.07 Mb/s.
    assert 1_000_000 < bw < 6_000_000, f"BANDWIDTH {bw} for a 1.5 Mb/s + 128 kb/s stream"
    audio_media = [m for m in mv.media if m.get("TYPE") == "AUDIO"]
    if audio_media:
        assert v.attrs.get("AUDIO") in {m.get("GROUP-ID") for m in audio_media}, \
            f"variant AUDIO={v.attrs.get('AUDIO')!r} names no EXT-X-MEDIA group"
        for m in audio_media:
            assert m.get("URI"), f"EXT-X-MEDIA without URI: {m}"
            assert live.get(join(live.hls_url, m["URI"])).status == 200, m
    for var in mv.variants:
        assert live.get(join(live.hls_url, var.uri)).status == 200, var
    return {"video": v.attrs, "codecs": codecs, "avc": avc, "text": g.text}


def fetch_segment_bytes(live: Live, rendition: str, pl: MediaPlaylist, segs) -> tuple[bytes, list[bytes]]:
    base = live.media_url(rendition)
    maps = {s.map_uri for s in segs}
    assert len(maps) == 1, f"segments span several init segments {maps}"
    init = live.get(join(base, maps.pop()))
    assert init.status == 200, f"init {init.url}: {init.status}"
    bodies = []
    for s in segs:
        g = live.get(join(base, s.uri))
        assert g.status == 200, f"segment {g.url}: {g.status}"
        bodies.append(g.body)
    return init.body, bodies


def decode_segments(live: Live, rendition: str, pl: MediaPlaylist, segs, workdir: Path | None = None) -> list[dict]:
    """ffprobe-decodes init + each segment on its own; returns the stream dicts."""
    base = live.media_url(rendition)
    out = []
    inits: dict[str, bytes] = {}
    for s in segs:
        if s.map_uri not in inits:
            g = live.get(join(base, s.map_uri))
            assert g.status == 200, f"init {g.url}: {g.status}"
            inits[s.map_uri] = g.body
        g = live.get(join(base, s.uri))
        assert g.status == 200, f"segment {g.url}: {g.status}"
        st = ffprobe_decode(inits[s.map_uri], [g.body], workdir=workdir, label=f"{rendition}-{s.uri}")
        exp = "h264" if rendition == "video" else "aac"
        assert st["codec_name"] == exp, f"{rendition} {s.uri}: codec {st['codec_name']}"
        if rendition == "video":
            frames = int(st["nb_read_frames"])
            expect = round(s.duration * 30)
            assert abs(frames - expect) <= 2, f"video {s.uri}: {frames} frames decoded for EXTINF {s.duration}"
        out.append(st)
    return out


def dash_segment_wallclock(mpd: Mpd, period, rep, seg) -> float:
    """Unix time at which a DASH segment starts: availabilityStartTime + Period@start + (t - pto)/timescale."""
    from _media import parse_pdt
    ast = parse_pdt(mpd.attrs["availabilityStartTime"]).timestamp() if "availabilityStartTime" in mpd.attrs else 0.0
    return ast + (period.start or 0.0) + (seg.t - rep.pto) / rep.timescale


def check_periods_ordered(mpd: Mpd, where: str = "") -> None:
    """Each Period starts no earlier than the previous one's media ends (no overlap on the timeline)."""
    for a, b in zip(mpd.periods, mpd.periods[1:]):
        va = [r for r in a.reps if r.content_type == "video"][0]
        end_a = (a.start or 0.0) + (va.segments[-1].t + va.segments[-1].d - va.pto) / va.timescale
        assert b.start is not None and b.start >= end_a - 0.05, \
            f"{where}: Period {b.id} starts at {b.start}s, before Period {a.id}'s video ends at {end_a:.3f}s"


def check_dash_hls_agree(live: Live, mpd: Mpd, pls: dict, *, tol: float = 0.5, where: str = "") -> int:
    """Segments at the same URL in the MPD and in a live HLS media playlist have the same duration and,
    for a dynamic MPD, the same wall-clock start (MPD timing vs EXT-X-PROGRAM-DATE-TIME). Returns the
    number of segments compared."""
    n = 0
    for period in mpd.periods:
        for rep in period.reps:
            pl = pls.get(rep.content_type)
            if pl is None:
                continue
            by_url = {join(live.media_url(rep.content_type), s.uri): s for s in pl.segments}
            for seg in rep.segments:
                url = join(live.dash_url, rep.url(rep.media, seg))
                h = by_url.get(url)
                if h is None:
                    continue
                n += 1
                assert abs(seg.d / rep.timescale - h.duration) < 0.011, \
                    f"{where}: {url}: MPD duration {seg.d / rep.timescale:.3f}s, EXTINF {h.duration}"
                if mpd.type == "dynamic" and h.pdt is not None:
                    wc = dash_segment_wallclock(mpd, period, rep, seg)
                    off = wc - h.pdt.timestamp()
                    assert abs(off) < tol, (f"{where}: {url} starts at {off:+.3f}s from its PROGRAM-DATE-TIME by the "
                                            f"MPD's timing (Period {period.id} start {period.start})")
    assert n > 0, f"{where}: no segment URL is shared by the MPD and the HLS playlists"
    return n
