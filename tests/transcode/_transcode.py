"""Helpers of the transcoding suite: an encoding live event, the expected ladders, rendition checks
(multivariant, decoding, keyframe alignment) on top of tests/live/_live.py and _media.py."""
from __future__ import annotations

import copy
import json
import subprocess
import tempfile
import time
from pathlib import Path

from _api import QUICKSTART_LIVE_EVENT, Api
from _live import Live, paths_from_list_paths, unique
from _media import ffprobe_decode, iso_duration, join, parse_media, parse_multivariant

AUDIO_BPS = 128_000

# (width, height, bit/s), top first: the ladder each (preset, input height) must produce.
LADDERS = {
    ("Standard", 1080): [(1280, 720, 3_500_000), (960, 540, 2_200_000), (704, 396, 1_350_000), (512, 288, 850_000)],
    ("Standard", 720): [(1280, 720, 3_500_000), (960, 540, 2_200_000), (704, 396, 1_350_000), (512, 288, 850_000)],
    ("Premium1080p", 1080): [(1920, 1080, 5_500_000), (1280, 720, 3_500_000), (960, 540, 1_600_000),
                             (640, 360, 800_000), (480, 270, 400_000)],
    # No upscaling: a 720p input gets no 1080p rendition.
    ("Premium1080p", 720): [(1280, 720, 3_500_000), (960, 540, 1_600_000), (640, 360, 800_000), (480, 270, 400_000)],
}


def setup_encoding_event(app, encoding_type: str, *, prefix: str = "tc", window: str = "PT5M",
                         key_frame: str | None = None) -> Live:
    """A Running live event with `encoding.encodingType`, an asset, a live output and a locator."""
    api = Api(app)
    event, asset, output, loc = unique(f"{prefix}-"), unique(f"{prefix}-asset-"), unique("out"), unique("loc-")
    body = copy.deepcopy(QUICKSTART_LIVE_EVENT)
    body["properties"]["encoding"] = {"encodingType": encoding_type}
    if key_frame:
        body["properties"]["encoding"]["keyFrameInterval"] = key_frame
    doc = api.create_live_event(event, body)
    assert doc["properties"]["encoding"]["encodingType"] == encoding_type, doc["properties"]["encoding"]
    token = doc["properties"]["input"]["accessToken"]
    api.create_asset(asset)
    api.create_live_output(event, output, asset, archive=window)
    api.start_live_event(event)
    locator_id = api.create_locator(loc, asset)["properties"]["streamingLocatorId"]
    r = api.meta("POST", f"streamingLocators/{loc}/listPaths")
    assert r.status == 200, r
    hls, dash = paths_from_list_paths(r.doc)
    return Live(app, api, event, asset, output, loc, token, locator_id, hls, dash, iso_duration(window))


def multivariant(live: Live):
    g = live.get(live.hls_url)
    assert g.status == 200, f"multivariant -> {g.status}"
    return parse_multivariant(g.text)


def video_variants(live: Live) -> list:
    return [v for v in multivariant(live).variants if "RESOLUTION" in v.attrs]


def wait_renditions(live: Live, n_video: int, min_segments: int, timeout: float, encoder=None) -> list:
    """Waits until the multivariant lists `n_video` video variants, each with >= min_segments segments
    (and the audio playlist too). Returns the video variants."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if encoder is not None:
            encoder.assert_alive()
        try:
            vs = video_variants(live)
            last = [v.attrs.get("RESOLUTION") for v in vs]
            if len(vs) >= n_video and all(
                    len(parse_media(live.get(join(live.hls_url, u)).text).segments) >= min_segments
                    for u in [v.uri for v in vs] + ["audio/index.m3u8"]):
                return vs
        except AssertionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no {n_video} video renditions with {min_segments} segments in {timeout}s "
                         f"(last {last}); getStatus {json.dumps(live.status())[:2000]}")


def check_ladder(live: Live, expected: list[tuple[int, int, int]]) -> list:
    """The multivariant lists exactly the expected renditions, top first, with BANDWIDTH and
    AVERAGE-BANDWIDTH within ±20 % of the rendition's target plus the 128 kb/s audio."""
    vs = video_variants(live)
    got = [tuple(int(x) for x in v.attrs["RESOLUTION"].split("x")) for v in vs]
    assert got == [(w, h) for w, h, _ in expected], f"renditions {got}, expected {expected}"
    for v, (w, h, bps) in zip(vs, expected):
        want = bps + AUDIO_BPS
        for attr in ("BANDWIDTH", "AVERAGE-BANDWIDTH"):
            b = int(v.attrs[attr])
            assert 0.8 * want <= b <= 1.2 * want, f"{w}x{h}: {attr}={b}, expected {want} ±20 %"
        codecs = v.attrs["CODECS"].split(",")
        assert codecs[0].startswith("avc1.64"), f"{w}x{h}: {codecs[0]} is not H.264 High profile"
        assert "mp4a.40.2" in codecs, codecs
    return vs


def frames(init: bytes, seg: bytes, workdir: Path) -> list[tuple[float, bool]]:
    """(pts_time, key_frame) of every decoded video frame of init + segment."""
    with tempfile.NamedTemporaryFile(suffix=".mp4", dir=workdir) as f:
        f.write(init + seg)
        f.flush()
        cp = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                             "frame=pts_time,key_frame", "-of", "json", f.name],
                            capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr[-1000:]
    return [(float(fr["pts_time"]), fr["key_frame"] == 1) for fr in json.loads(cp.stdout)["frames"]]


def check_renditions_decode_and_align(live: Live, vs: list, expected, workdir: Path, n: int = 2,
                                      skip_last: int = 0) -> dict:
    """Every rendition decodes (ffprobe: H.264 High at its size, ~30 fps) and the newest `n` segments
    common to all renditions have the same duration, start with a keyframe at the same instant and
    have their keyframes at the same instants. Returns {uri: [(start, keyframe times)]}."""
    pls = {v.uri: parse_media(live.get(join(live.hls_url, v.uri)).text) for v in vs}
    common = set.intersection(*({s.msn for s in pl.segments} for pl in pls.values()))
    assert len(common) >= n, f"only {len(common)} segments common to all renditions"
    msns = sorted(common)[:len(common) - skip_last][-n:]
    assert len(msns) == n, f"not enough segments common to all renditions: {sorted(common)}"
    seen: dict[str, list] = {}
    for v, (w, h, _) in zip(vs, expected):
        pl = pls[v.uri]
        base = join(live.hls_url, v.uri)
        for msn in msns:
            seg = next(s for s in pl.segments if s.msn == msn)
            init = live.get(join(base, seg.map_uri)).body
            body = live.get(join(base, seg.uri)).body
            st = ffprobe_decode(init, [body], workdir=workdir, label=f"{w}x{h}-{msn}")
            assert st["codec_name"] == "h264" and st["profile"] == "High", st
            assert (int(st["width"]), int(st["height"])) == (w, h), st
            got = int(st["nb_read_frames"])
            assert abs(got - round(seg.duration * 30)) <= 2, f"{w}x{h} #{msn}: {got} frames for {seg.duration}s"
            fr = frames(init, body, workdir)
            assert fr and fr[0][1], f"{w}x{h} #{msn} does not start with a keyframe"
            seen.setdefault(msn, []).append((w, h, seg.duration, [round(t, 3) for t, k in fr if k]))
    for msn, rows in seen.items():
        durs = {round(r[2], 3) for r in rows}
        keys = {tuple(r[3]) for r in rows}
        assert len(durs) == 1, f"segment #{msn}: durations differ across renditions {rows}"
        assert len(keys) == 1, f"segment #{msn}: keyframes differ across renditions {rows}"
    return seen


def transcoding_status(live: Live) -> dict:
    st = live.status()
    t = st.get("transcoding")
    assert t, f"getStatus without transcoding: {st}"
    return t
