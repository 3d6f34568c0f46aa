"""Low-latency helpers (shared by the tests and bench/ll_bench.py): an event with
`streamOptions: ["LowLatency"]`, LL-HLS playlist parsing, and the LL player page."""
from __future__ import annotations

import re
import time
import urllib.parse

from _api import Api
from _live import Live, live_event_body, paths_from_list_paths, unique
from _media import iso_duration
from _procs import Encoder, Player

ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def attrs(line: str) -> dict:
    return {k: v.strip('"') for k, v in ATTR.findall(line.split(":", 1)[1])}


def setup_ll(app, *, options=("LowLatency",), window: str = "PT5M", prefix: str = "ll") -> Live:
    """setup_live (tests/live/_live.py) with stream options: event, asset, output, started, locator."""
    api = Api(app)
    event, asset, output, loc = unique(f"{prefix}-"), unique(f"{prefix}-asset-"), unique("out"), unique("loc-")
    body = live_event_body()
    body["properties"]["streamOptions"] = list(options)
    doc = api.create_live_event(event, body)
    assert doc["properties"]["streamOptions"] == list(options), doc["properties"]
    token = doc["properties"]["input"]["accessToken"]
    api.create_asset(asset)
    api.create_live_output(event, output, asset, archive=window)
    api.start_live_event(event)
    locator_id = api.create_locator(loc, asset)["properties"]["streamingLocatorId"]
    r = api.meta("POST", f"streamingLocators/{loc}/listPaths")
    assert r.status == 200, r
    hls, dash = paths_from_list_paths(r.doc)
    return Live(app, api, event, asset, output, loc, token, locator_id, hls, dash, iso_duration(window))


def encoder_args(gop_frames: int = 30) -> list[str]:
    """1 s GOPs at 30 fps (the later -g wins over the Encoder's default), no encoder lookahead delay."""
    return ["-g", str(gop_frames), "-keyint_min", str(gop_frames), "-tune", "zerolatency"]


def start_encoder(encoders, live: Live, **kw) -> Encoder:
    return encoders(live.rtmp_url(), extra=encoder_args(), **kw)


class LLPlaylist:
    """The LL-HLS view of a media playlist: complete segments, parts, hint, reports."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines()
        self.msn0 = int(next(ln.split(":")[1] for ln in self.lines if ln.startswith("#EXT-X-MEDIA-SEQUENCE:")))
        skip = next((attrs(ln) for ln in self.lines if ln.startswith("#EXT-X-SKIP:")), None)
        self.skipped = int(skip["SKIPPED-SEGMENTS"]) if skip else 0
        self.segments: list[tuple[int, str]] = []  # (msn, uri)
        self.parts: list[dict] = []  # {msn, uri, duration, independent}
        msn = self.msn0 + self.skipped
        for ln in self.lines:
            if ln.startswith("#EXT-X-PART:"):
                a = attrs(ln)
                self.parts.append({"msn": msn, "uri": a["URI"], "duration": float(a["DURATION"]),
                                   "independent": a.get("INDEPENDENT") == "YES"})
            elif ln and not ln.startswith("#"):
                self.segments.append((msn, ln))
                msn += 1
        self.open_msn = msn
        hint = next((attrs(ln) for ln in self.lines if ln.startswith("#EXT-X-PRELOAD-HINT:")), None)
        self.hint = hint["URI"] if hint else None
        self.reports = [attrs(ln) for ln in self.lines if ln.startswith("#EXT-X-RENDITION-REPORT:")]
        sc = next((attrs(ln) for ln in self.lines if ln.startswith("#EXT-X-SERVER-CONTROL:")), {})
        self.server_control = sc
        pi = next((attrs(ln) for ln in self.lines if ln.startswith("#EXT-X-PART-INF:")), {})
        self.part_target = float(pi["PART-TARGET"]) if pi else None

    @property
    def last_msn(self) -> int:
        return self.segments[-1][0] if self.segments else self.msn0 - 1

    def parts_of(self, msn: int) -> list[dict]:
        return [p for p in self.parts if p["msn"] == msn]

    def last_part(self) -> tuple[int, int]:
        """(msn, index) of the newest part listed."""
        p = self.parts[-1]
        return p["msn"], len(self.parts_of(p["msn"])) - 1


def part_name(uri: str) -> tuple[int, int]:
    seq, idx, _ = uri.split(".")
    return int(seq), int(idx)


def get_ll(live: Live, rendition: str = "video", query: str = "", timeout: float = 15.0):
    url = live.media_url(rendition) + (("?" + query) if query else "")
    return live.get(url, timeout=timeout)


def wait_ll(live: Live, *, rendition: str = "video", min_segments: int = 1, timeout: float = 40.0,
            encoder=None) -> LLPlaylist:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if encoder is not None:
            encoder.assert_alive()
        g = get_ll(live, rendition)
        if g.status == 200:
            last = LLPlaylist(g.text)
            if len(last.segments) >= min_segments and last.parts:
                return last
        time.sleep(0.2)
    raise AssertionError(f"no LL playlist with {min_segments} segment(s) and parts in {timeout}s: "
                         f"{last.text if last else None}")


class LLPlayer(Player):
    """tests/live's Player opening tests/lowlatency/player.html (players in low-latency mode,
    or in their normal mode with ll=False, and a latency probe)."""

    def open(self, pid: str, kind: str, src: str, *, ll: bool = True) -> None:  # type: ignore[override]
        self.wait_ready()
        with self.cond:
            self.states.pop(pid, None)
            self.latest.pop(pid, None)
        q = urllib.parse.urlencode({"kind": kind, "src": src, "ll": "1" if ll else "0"})
        self._send({"cmd": "open", "id": pid, "url": f"{self.static_base}/lowlatency/player.html?{q}"})


def latencies(player: Player, pid: str, since_t: float | None = None) -> list[float]:
    return [s["latency"] for s in player.history(pid)
            if s.get("latency") is not None and (since_t is None or s["t"] >= since_t)]


def percentile(xs: list[float], p: float) -> float:
    ys = sorted(xs)
    if not ys:
        return float("nan")
    k = min(len(ys) - 1, max(0, round(p / 100 * (len(ys) - 1))))
    return ys[k]
