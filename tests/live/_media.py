"""HLS/DASH/fMP4 helpers for the live suites: fetch, parse and check what the appliance serves,
and decode segments with ffprobe. Standard library only (plus the ffprobe binary)."""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
NS = {"d": MPD_NS}


# ------------------------------------------------------------------------------------------ HTTP
@dataclass
class Got:
    status: int
    headers: dict
    body: bytes
    url: str
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str, default=None):
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return default


def fetch(url: str, *, cafile: str | None = None, timeout: float = 10.0, method: str = "GET",
          headers: dict | None = None) -> Got:
    """GET (or HEAD) without raising on HTTP errors; network errors raise."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    ctx = None
    if url.startswith("https"):
        ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return Got(r.status, dict(r.headers), r.read(), url, time.monotonic() - t0)
    except urllib.error.HTTPError as e:
        return Got(e.code, dict(e.headers), e.read(), url, time.monotonic() - t0)


def fetch_ok(url: str, **kw) -> Got:
    g = fetch(url, **kw)
    assert g.status == 200, f"GET {url} -> {g.status} {g.body[:300]!r}"
    return g


def join(base: str, rel: str) -> str:
    return urllib.parse.urljoin(base, rel)


# ------------------------------------------------------------------------------------------ HLS
ATTR_RE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def attrs(s: str) -> dict:
    return {k: v[1:-1] if v.startswith('"') else v for k, v in ATTR_RE.findall(s)}


@dataclass
class Variant:
    uri: str
    attrs: dict


@dataclass
class Multivariant:
    text: str
    variants: list[Variant]
    media: list[dict]  # EXT-X-MEDIA attribute dicts
    tags: list[str]


def parse_multivariant(text: str) -> Multivariant:
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    assert lines and lines[0] == "#EXTM3U", f"not an M3U8: {text[:200]!r}"
    variants, media, tags = [], [], []
    pending = None
    for l in lines[1:]:
        if l.startswith("#EXT-X-STREAM-INF:"):
            pending = attrs(l.split(":", 1)[1])
        elif l.startswith("#EXT-X-MEDIA:"):
            media.append(attrs(l.split(":", 1)[1]))
        elif l.startswith("#"):
            tags.append(l)
        else:
            assert pending is not None, f"URI line {l!r} without EXT-X-STREAM-INF"
            variants.append(Variant(l, pending))
            pending = None
    assert pending is None, "EXT-X-STREAM-INF without a URI line"
    return Multivariant(text, variants, media, tags)


@dataclass
class Segment:
    uri: str
    duration: float
    msn: int               # media sequence number (EXT-X-MEDIA-SEQUENCE + index)
    dseq: int              # discontinuity sequence number of this segment
    discontinuity: bool    # EXT-X-DISCONTINUITY before it
    pdt: dt.datetime | None
    map_uri: str | None


@dataclass
class MediaPlaylist:
    text: str
    version: int | None
    target_duration: int
    media_sequence: int
    discontinuity_sequence: int
    has_dseq_tag: bool
    segments: list[Segment]
    endlist: bool
    playlist_type: str | None
    independent: bool

    @property
    def last_msn(self) -> int:
        return self.segments[-1].msn if self.segments else self.media_sequence - 1

    @property
    def total_duration(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def discontinuities(self) -> int:
        return sum(1 for s in self.segments if s.discontinuity)


def parse_pdt(s: str) -> dt.datetime:
    """ISO 8601 date-time (PDT, eventTime, UTCTiming); fractions beyond microseconds are cut."""
    s = s.strip().replace("Z", "+00:00")
    s = re.sub(r"(\.\d{6})\d+", r"\1", s)
    d = dt.datetime.fromisoformat(s)
    return d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)


def parse_media(text: str) -> MediaPlaylist:
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    assert lines and lines[0] == "#EXTM3U", f"not an M3U8: {text[:200]!r}"
    version = target = None
    mseq, dseq, has_dseq = 0, 0, False
    endlist, ptype, indep = False, None, False
    segs: list[Segment] = []
    dur = None
    disc = False
    pdt = None
    map_uri = None
    seen_segment = False
    for l in lines[1:]:
        if l.startswith("#EXT-X-VERSION:"):
            version = int(l.split(":", 1)[1])
        elif l.startswith("#EXT-X-TARGETDURATION:"):
            target = int(l.split(":", 1)[1])
        elif l.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            assert not seen_segment, "EXT-X-MEDIA-SEQUENCE after the first segment"
            mseq = int(l.split(":", 1)[1])
        elif l.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            assert not seen_segment, "EXT-X-DISCONTINUITY-SEQUENCE after the first segment"
            dseq, has_dseq = int(l.split(":", 1)[1]), True
        elif l == "#EXT-X-DISCONTINUITY":
            disc = True
        elif l.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = parse_pdt(l.split(":", 1)[1])
        elif l.startswith("#EXT-X-MAP:"):
            map_uri = attrs(l.split(":", 1)[1])["URI"]
        elif l.startswith("#EXTINF:"):
            dur = float(l.split(":", 1)[1].split(",", 1)[0])
        elif l == "#EXT-X-ENDLIST":
            endlist = True
        elif l.startswith("#EXT-X-PLAYLIST-TYPE:"):
            ptype = l.split(":", 1)[1]
        elif l == "#EXT-X-INDEPENDENT-SEGMENTS":
            indep = True
        elif l.startswith("#"):
            continue
        else:
            assert dur is not None, f"segment {l!r} without EXTINF"
            # RFC 8216 6.2.2 (and hls.js's `cc`): EXT-X-DISCONTINUITY-SEQUENCE plus the number of
            # EXT-X-DISCONTINUITY tags before the segment's URI line, a leading tag included.
            cur_d = (segs[-1].dseq if segs else dseq) + (1 if disc else 0)
            if pdt is None and segs and not disc and segs[-1].pdt is not None:
                pdt_here = segs[-1].pdt + dt.timedelta(seconds=segs[-1].duration)
                explicit = False
            else:
                pdt_here, explicit = pdt, pdt is not None
            segs.append(Segment(l, dur, mseq + len(segs), cur_d, disc, pdt_here, map_uri))
            segs[-1].explicit_pdt = explicit  # type: ignore[attr-defined]
            seen_segment = True
            dur, disc, pdt = None, False, None
    assert target is not None, "no EXT-X-TARGETDURATION"
    return MediaPlaylist(text, version, target, mseq, dseq, has_dseq, segs, endlist, ptype, indep)


def check_media_playlist(pl: MediaPlaylist, *, live: bool, segment_target: float = 2.0, where: str = "") -> None:
    """RFC 8216 rules the appliance must keep, plus the contract's choices (CMAF: EXT-X-MAP, PDT)."""
    w = f"{where}: " if where else ""
    assert pl.segments, f"{w}no segments:\n{pl.text}"
    assert pl.version is not None and pl.version >= 6, f"{w}EXT-X-VERSION {pl.version} (fMP4 needs >= 6)"
    for s in pl.segments:
        # RFC 8216 4.3.3.1: EXTINF rounded to the nearest integer <= TARGETDURATION.
        assert round(s.duration) <= pl.target_duration, \
            f"{w}EXTINF {s.duration} of {s.uri} exceeds TARGETDURATION {pl.target_duration}"
        assert s.duration > 0, f"{w}EXTINF {s.duration} of {s.uri}"
        assert s.map_uri, f"{w}segment {s.uri} has no EXT-X-MAP (fMP4 needs an init segment)"
        assert s.pdt is not None, f"{w}segment {s.uri} has no EXT-X-PROGRAM-DATE-TIME (neither its own nor carried)"
        if s.discontinuity:
            assert getattr(s, "explicit_pdt"), f"{w}no EXT-X-PROGRAM-DATE-TIME after the EXT-X-DISCONTINUITY before {s.uri}"
    assert getattr(pl.segments[0], "explicit_pdt"), f"{w}first segment without EXT-X-PROGRAM-DATE-TIME"
    # Segments are cut at 2 s keyframes: durations close to the target except the last of a period.
    assert pl.target_duration <= math.ceil(segment_target * 1.5) + 1, \
        f"{w}TARGETDURATION {pl.target_duration} for keyFrameIntervalDuration PT{segment_target:g}S"
    if live:
        assert not pl.endlist, f"{w}live playlist has EXT-X-ENDLIST"
        assert pl.playlist_type != "VOD", f"{w}live playlist says PLAYLIST-TYPE:VOD"
    else:
        assert pl.endlist, f"{w}VOD playlist without EXT-X-ENDLIST:\n{pl.text[-500:]}"
    # PDT consistency inside a discontinuity-free run: consecutive explicit PDTs follow the durations.
    for a, b in zip(pl.segments, pl.segments[1:]):
        if b.discontinuity or not getattr(b, "explicit_pdt"):
            continue
        gap = (b.pdt - a.pdt).total_seconds() - a.duration
        assert abs(gap) < 0.25, f"{w}PDT of {b.uri} is {gap:+.3f}s off {a.uri}'s PDT + EXTINF"


def segment_number(uri: str) -> int | None:
    m = re.search(r"(\d+)\.m4s$", uri)
    return int(m.group(1)) if m else None


# ------------------------------------------------------------------------------------------ DASH
def iso_duration(s: str) -> float:
    m = re.fullmatch(r"P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?", s)
    assert m, f"bad xs:duration {s!r}"
    d, h, mi, se = (float(x) if x else 0.0 for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + se


@dataclass
class DashSeg:
    number: int
    t: int
    d: int


@dataclass
class DashRep:
    id: str
    content_type: str
    attrs: dict
    timescale: int
    pto: int
    init: str
    media: str
    start_number: int
    segments: list[DashSeg]

    def url(self, template: str, seg: DashSeg | None = None) -> str:
        out = template.replace("$RepresentationID$", self.id).replace("$Bandwidth$", self.attrs.get("bandwidth", ""))
        if seg is not None:
            out = re.sub(r"\$Number(%0(\d+)d)?\$", lambda m: str(seg.number).zfill(int(m.group(2) or 0)), out)
            out = re.sub(r"\$Time(%0(\d+)d)?\$", lambda m: str(seg.t).zfill(int(m.group(2) or 0)), out)
        assert "$" not in out.replace("$$", ""), f"unresolved template {template!r}"
        return out


@dataclass
class DashPeriod:
    id: str | None
    start: float | None
    reps: list[DashRep]


@dataclass
class Mpd:
    text: str
    attrs: dict
    periods: list[DashPeriod]
    utc_timing: list[dict]

    @property
    def type(self) -> str:
        return self.attrs.get("type", "static")


def parse_mpd(text: str) -> Mpd:
    root = ET.fromstring(text)
    assert root.tag == f"{{{MPD_NS}}}MPD", f"root element {root.tag}"
    periods = []
    for p in root.findall("d:Period", NS):
        reps = []
        for aset in p.findall("d:AdaptationSet", NS):
            ctype = aset.get("contentType") or (aset.get("mimeType") or "").split("/")[0]
            aset_tpl = aset.find("d:SegmentTemplate", NS)
            for r in aset.findall("d:Representation", NS):
                tpl = r.find("d:SegmentTemplate", NS)
                if tpl is None:
                    tpl = aset_tpl
                assert tpl is not None, f"Representation {r.get('id')} without SegmentTemplate"
                tl = tpl.find("d:SegmentTimeline", NS)
                assert tl is not None, f"Representation {r.get('id')}: SegmentTemplate without SegmentTimeline"
                ts = int(tpl.get("timescale", "1"))
                num = int(tpl.get("startNumber", "1"))
                segs, t = [], None
                for s in tl.findall("d:S", NS):
                    if s.get("t") is not None:
                        t = int(s.get("t"))
                    assert t is not None, "first S without t"
                    d, rep = int(s.get("d")), int(s.get("r", "0"))
                    assert rep >= 0, "negative S@r is not expected here"
                    for _ in range(rep + 1):
                        segs.append(DashSeg(num, t, d))
                        num += 1
                        t += d
                a = dict(aset.attrib)
                a.update(r.attrib)
                reps.append(DashRep(r.get("id"), ctype, a, ts, int(tpl.get("presentationTimeOffset", "0")),
                                    tpl.get("initialization"), tpl.get("media"), int(tpl.get("startNumber", "1")),
                                    segs))
        periods.append(DashPeriod(p.get("id"), iso_duration(p.get("start")) if p.get("start") else None, reps))
    utc = [dict(u.attrib) for u in root.findall("d:UTCTiming", NS)]
    return Mpd(text, dict(root.attrib), periods, utc)


def check_mpd(mpd: Mpd, *, live: bool, window_s: float | None = None, where: str = "") -> None:
    w = f"{where}: " if where else ""
    assert mpd.periods, f"{w}MPD without Period"
    if live:
        assert mpd.type == "dynamic", f"{w}live MPD type={mpd.type!r}"
        for a in ("availabilityStartTime", "publishTime", "minimumUpdatePeriod"):
            assert a in mpd.attrs, f"{w}dynamic MPD without @{a}"
        if window_s is not None:
            assert "timeShiftBufferDepth" in mpd.attrs, f"{w}dynamic MPD without @timeShiftBufferDepth"
            assert abs(iso_duration(mpd.attrs["timeShiftBufferDepth"]) - window_s) < 1, \
                f"{w}timeShiftBufferDepth {mpd.attrs['timeShiftBufferDepth']} != archiveWindowLength {window_s}s"
        assert mpd.utc_timing, f"{w}dynamic MPD without UTCTiming"
    else:
        assert mpd.type == "static", f"{w}VOD MPD type={mpd.type!r}"
        assert "mediaPresentationDuration" in mpd.attrs, f"{w}static MPD without @mediaPresentationDuration"
    ids = [p.id for p in mpd.periods]
    assert len(set(ids)) == len(ids), f"{w}duplicate Period ids {ids}"
    prev_start = -1.0
    for p in mpd.periods:
        assert p.start is not None or len(mpd.periods) == 1, f"{w}Period {p.id} without @start"
        if p.start is not None:
            assert p.start >= prev_start, f"{w}Period starts not increasing: {ids}"
            prev_start = p.start
        kinds = sorted(r.content_type for r in p.reps)
        assert "video" in kinds and "audio" in kinds, f"{w}Period {p.id}: representations {kinds}"
        for r in p.reps:
            assert r.attrs.get("codecs"), f"{w}Representation {r.id} without @codecs"
            assert int(r.attrs.get("bandwidth", "0")) > 0, f"{w}Representation {r.id} without @bandwidth"
            if r.content_type == "video":
                assert int(r.attrs.get("width", 0)) > 0 and int(r.attrs.get("height", 0)) > 0, \
                    f"{w}video Representation {r.id} without width/height"
            assert r.init and r.media, f"{w}Representation {r.id}: SegmentTemplate without initialization/media"
            assert r.segments, f"{w}Representation {r.id} in Period {p.id} has an empty SegmentTimeline"
            # The timeline has no holes: each S starts where the previous one ended.
            for a, b in zip(r.segments, r.segments[1:]):
                assert b.t == a.t + a.d, f"{w}{r.id} Period {p.id}: segment {b.number} t={b.t} != {a.t}+{a.d}"
            longest = max(s.d for s in r.segments) / r.timescale
            assert longest <= 3.5, f"{w}{r.id}: a {longest:.2f}s segment for 2 s keyframes"


# ------------------------------------------------------------------------------------------ fMP4
def boxes(data: bytes, start: int = 0, end: int | None = None):
    end = len(data) if end is None else end
    i = start
    while i + 8 <= end:
        size = int.from_bytes(data[i:i + 4], "big")
        typ = data[i + 4:i + 8].decode("latin-1")
        hdr = 8
        if size == 1:
            size = int.from_bytes(data[i + 8:i + 16], "big")
            hdr = 16
        elif size == 0:
            size = end - i
        assert size >= hdr, f"bad box size {size} at {i}"
        yield typ, i, i + hdr, i + size
        i += size


def find_box(data: bytes, path: list[str]) -> bytes | None:
    """First box at `path` (e.g. ['moov','trak','mdia','minf','stbl','stsd']); returns its payload."""
    start, end = 0, len(data)
    for depth, name in enumerate(path):
        for typ, _b, payload, e in boxes(data, start, end):
            if typ == name:
                start, end = payload, e
                break
        else:
            return None
    return data[start:end]


def avc_codec_string(init: bytes) -> str | None:
    """avc1.PPCCLL from the avcC box of an init segment."""
    i = init.find(b"avcC")
    if i < 0:
        return None
    p = init[i + 4:i + 8]
    return "avc1.%02x%02x%02x" % (p[1], p[2], p[3])


def top_level_types(data: bytes) -> list[str]:
    return [t for t, *_ in boxes(data)]


def ffprobe_decode(init: bytes, segs: list[bytes], *, workdir: Path | None = None, label: str = "seg") -> dict:
    """Decodes init + segments with ffprobe (-count_frames). Returns the stream dict; asserts no decode
    errors and at least one frame."""
    with tempfile.NamedTemporaryFile(suffix=".mp4", dir=workdir, prefix=f"{label}-", delete=workdir is None) as f:
        f.write(init)
        for s in segs:
            f.write(s)
        f.flush()
        cp = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format",
                             "-of", "json", f.name], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, f"ffprobe failed on {label} ({cp.returncode}): {cp.stderr[-1500:]}"
    errs = [l for l in cp.stderr.splitlines() if l.strip()]
    assert not errs, f"ffprobe reported errors decoding {label}: {errs[:10]}"
    doc = json.loads(cp.stdout)
    streams = doc.get("streams") or []
    assert len(streams) == 1, f"{label}: expected one track per CMAF segment, got {len(streams)}"
    st = streams[0]
    assert int(st.get("nb_read_frames") or 0) > 0, f"{label}: ffprobe decoded no frames: {st}"
    return st


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
