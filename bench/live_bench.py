"""Live-path benchmarks of issue 3 (not tests: they measure, they do not assert).

rms-edge (target/release) and nginx with Debian's RTMP module (libnginx-mod-rtmp, one worker,
its own config and ports in a temp dir; the system nginx service is never touched) run side by
side in one run, fed the same pre-encoded 720p30 2.5 Mb/s H.264 (2 s GOP) + AAC file with
`ffmpeg -re -stream_loop -1 -i file.flv -c copy -f flv rtmp://...`. Both cut 2 s fragments
(rms-edge: keyFrameIntervalDuration PT2S; nginx-rtmp: hls_fragment 2s, hls_playlist_length 60s;
rms-edge's live outputs get archiveWindowLength PT1M, the same 60 s window).

Measures, for both servers:
 1. encoder start (ffmpeg launched) -> playable HLS: the multivariant (rms-edge; nginx-rtmp has
    only a media playlist) and the media playlist with >= 1 segment, and that segment fetched
    with 200. For rms-edge also -> playable DASH (MPD with a SegmentTimeline entry). Median of
    --connect-runs fresh streams.
 2. newest segment downloadable after its last frame was sent: the media playlist is polled every
    10 ms over a keep-alive connection; when segment k appears, it is compared with the instant
    its closing keyframe was sent = encoder connect instant + the media end time of segment k
    (cumulative EXTINF; -re sends in real time). The segment is then fetched (must be 200).
    Median and p95 over --latency-segments segments.
 3. server CPU (utime+stime of all its processes from /proc over a steady --cpu-window, as % of
    one core) at each of --streams concurrent streams; RSS idle and per stream; RSS sampled over
    a --soak-minutes run with --soak-streams streams (flatness).
 4. requests/s with wrk (-t2 -c100 -d10s, loopback) for a full segment (~690 KB) and for the
    live media playlist, with one stream live.

    Side by side (`together`): the same streams on both servers at once, CPU read over the same
    windows (--together-windows of --cpu-window s), median per server: the fair way to compare a
    few clock ticks at one stream.

Usage: python3 bench/live_bench.py [--streams 1,4,16,64] [--soak-minutes 3] [--cpu-window 30] ...
Prints Markdown tables for docs/benchmarks.md. The media file is made once under bench/.cache/.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
sys.path.insert(0, str(ROOT / "tests" / "api"))
os.environ.setdefault("RMS_EDGE_BIN", str(ROOT / "target" / "release" / "rms-edge"))
os.environ.setdefault("RUST_LOG", "warn")
from appliance import Appliance, free_port  # noqa: E402
from _api import Api  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
MEDIA = CACHE / "720p30-h264-2500k-gop2s-aac-60s.flv"
NGINX_RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
SEGMENT_S = 2.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Issue 3's nginx-rtmp numbers (measured by the issue's author) and targets.
ISSUE_NGINX = {"connect": 2.16, "latency": 0.05, "cpu": {1: 0.9, 4: 2.8, 16: 8.8, 64: 37.0},
               "rss_idle": 20.0, "rss_per_stream": 0.12, "rps_segment": 6100, "rps_playlist": 56000}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ media
def ensure_media() -> Path:
    """720p30 H.264 High 2.5 Mb/s, GOP 2 s fixed, + AAC 128k 48 kHz, 60 s (30 GOPs), FLV."""
    if MEDIA.exists() and MEDIA.stat().st_size > 1_000_000:
        return MEDIA
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = MEDIA.with_suffix(".tmp.flv")
    log(f"encoding {MEDIA.name} once (about a minute)")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "60", "-map", "0:v", "-map", "1:a",
         "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
         "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k",
         "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
         "-c:a", "aac", "-ar", "48000", "-ac", "2", "-b:a", "128k", "-f", "flv", str(tmp)], check=True)
    tmp.rename(MEDIA)
    return MEDIA


class Encoder:
    """`ffmpeg -re -stream_loop -1 -i file.flv -c copy -f flv URL`. With `timed`, stderr is read
    line by line and the arrival of "Output #0" (printed right after the RTMP connection is up
    and the FLV header is written, when ffmpeg's -re clock starts) is the connect instant."""

    def __init__(self, url: str, *, timed: bool = False):
        self.url, self.timed = url, timed
        self.t_launch = time.monotonic()
        level = "info" if timed else "error"
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", level,
             "-re", "-stream_loop", "-1", "-i", str(MEDIA), "-c", "copy", "-f", "flv", url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE if timed else subprocess.DEVNULL)
        self.t_connect: float | None = None
        self.stderr: list[str] = []
        if timed:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stderr:
            now = time.monotonic()
            line = raw.decode(errors="replace").rstrip()
            self.stderr.append(line)
            if self.t_connect is None and line.startswith("Output #0"):
                self.t_connect = now

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def stop_all(encoders: list[Encoder]) -> None:
    for e in encoders:
        if e.proc.poll() is None:
            e.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    for e in encoders:
        try:
            e.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            e.proc.kill()
            e.proc.wait(5)


# ------------------------------------------------------------------------------ RTMP relay
class RtmpTap:
    """A transparent loopback relay in front of a server's RTMP port that parses the encoder's
    RTMP chunk stream and records, for every video message, the instant its last byte was
    forwarded to the server: the arrival of that frame, observed on the wire, independent of how
    ffmpeg paces -re (which sends a frame up to one frame interval earlier than its timestamp)."""

    def __init__(self, upstream_port: int):
        import socket
        self.upstream = upstream_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.video: list[tuple[float, int, bool]] = []  # (arrival, timestamp ms, keyframe), config excluded
        self.t_first_byte: float | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        s = socket.create_connection(("127.0.0.1", self.upstream))
        for x in (c, s):
            x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._pump, args=(s, c, False), daemon=True).start()
        self._pump(c, s, True)

    def _pump(self, src, dst, parse: bool) -> None:
        buf = bytearray()
        state = {"skip": 1 + 1536 + 1536, "chunk": 128, "streams": {}}
        try:
            while True:
                data = src.recv(65536)
                now = time.monotonic()
                if not data:
                    break
                dst.sendall(data)
                if parse:
                    if self.t_first_byte is None:
                        self.t_first_byte = now
                    buf += data
                    self._parse(buf, state, now)
        except OSError:
            pass
        finally:
            for x in (src, dst):
                try:
                    x.shutdown(2)
                except OSError:
                    pass

    def _parse(self, buf: bytearray, st: dict, now: float) -> None:
        pos = 0
        if st["skip"]:
            n = min(st["skip"], len(buf))
            st["skip"] -= n
            pos = n
        while True:
            start = pos
            if pos >= len(buf):
                break
            b0 = buf[pos]
            fmt, csid = b0 >> 6, b0 & 0x3F
            pos += 1
            if csid == 0:
                if pos + 1 > len(buf):
                    break
                csid, pos = 64 + buf[pos], pos + 1
            elif csid == 1:
                if pos + 2 > len(buf):
                    break
                csid, pos = 64 + buf[pos] + 256 * buf[pos + 1], pos + 2
            cs = st["streams"].setdefault(csid, {"ts": 0, "delta": 0, "len": 0, "type": 0, "left": 0,
                                                 "ext": False, "head": b""})
            hl = (11, 7, 3, 0)[fmt]
            if pos + hl > len(buf):
                pos = start
                break
            h = buf[pos:pos + hl]
            pos += hl
            new = dict(cs)
            if fmt <= 2:
                t = int.from_bytes(h[0:3], "big")
                new["ext"] = t == 0xFFFFFF
            if new["ext"]:
                if pos + 4 > len(buf):
                    pos = start
                    break
                if fmt <= 2:
                    t = int.from_bytes(buf[pos:pos + 4], "big")
                pos += 4
            if fmt <= 1:
                new["len"] = int.from_bytes(h[3:6], "big")
                new["type"] = h[6]
            if fmt == 0:
                new["ts"], new["delta"] = t, 0
            elif fmt in (1, 2):
                new["delta"] = t
            starting = cs["left"] == 0
            if starting:
                if fmt in (1, 2):
                    new["ts"] = cs["ts"] + new["delta"]
                elif fmt == 3:
                    new["ts"] = cs["ts"] + cs["delta"]
                new["left"] = new["len"]
                new["head"] = b""
            n = min(st["chunk"], new["left"])
            if pos + n > len(buf):
                pos = start
                break
            payload = bytes(buf[pos:pos + n])
            pos += n
            if len(new["head"]) < 4:
                new["head"] = (new["head"] + payload)[:4]
            new["left"] -= n
            cs.update(new)
            if new["left"] == 0:
                if new["type"] == 1 and len(new["head"]) >= 4:  # SetChunkSize
                    st["chunk"] = int.from_bytes(new["head"][:4], "big") & 0x7FFFFFFF
                elif new["type"] == 9 and len(new["head"]) >= 2:
                    config = (new["head"][0] & 0x0F) == 7 and new["head"][1] == 0
                    if not config:
                        self.video.append((now, new["ts"], (new["head"][0] >> 4) == 1))
        del buf[:pos]

    def close(self) -> None:
        self.sock.close()


# ------------------------------------------------------------------------------------- HTTP
class Http:
    """One keep-alive HTTP/1.1 connection (reconnects on error)."""

    def __init__(self, base: str):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn:
            self.conn.close()


@dataclass
class Seg:
    msn: int
    duration: float
    uri: str


def parse_media_playlist(text: str) -> list[Seg]:
    first, segs, dur = 0, [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            first = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            dur = float(line.split(":", 1)[1].split(",")[0])
        elif line and not line.startswith("#") and dur is not None:
            segs.append(Seg(first + len(segs), dur, line))
            dur = None
    return segs


def join(url_path: str, rel: str) -> str:
    return urllib.parse.urljoin(url_path, rel)


# ----------------------------------------------------------------------------------- /proc
def children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(st.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d))
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12])  # utime, stime (fields 14 and 15)
    return total


def rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except OSError:
            pass
    return total / (1 << 20)


# --------------------------------------------------------------------------------- servers
@dataclass
class Stream:
    rtmp_url: str
    media_path: str           # server-relative URL path of the (video) media playlist
    multivariant_path: str | None = None
    dash_path: str | None = None
    event: str | None = None  # rms-edge live event


class NginxRtmp:
    name = "nginx-rtmp"

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        self.rtmp_port, self.http_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        self.n = 0

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def conf(self) -> str:
        d = self.dir
        return f"""# nginx + Debian's RTMP module for the live benchmark (one worker, own ports and paths)
daemon off;
master_process on;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
load_module {NGINX_RTMP_MODULE};
events {{ worker_connections 4096; }}
rtmp {{
    server {{
        listen 127.0.0.1:{self.rtmp_port};
        application live {{
            live on;
            hls on;
            hls_path {d}/hls;
            hls_fragment 2s;
            hls_playlist_length 60s;
        }}
    }}
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
    server {{
        listen 127.0.0.1:{self.http_port};
        root {d}/hls;
        location / {{ add_header Cache-Control no-cache; add_header Access-Control-Allow-Origin *; }}
    }}
}}
"""

    def start(self) -> "NginxRtmp":
        (self.dir / "hls").mkdir()
        (self.dir / "tmp").mkdir()
        conf = self.dir / "nginx.conf"
        conf.write_text(self.conf())
        self.proc = subprocess.Popen(["nginx", "-p", str(self.dir), "-e", str(self.dir / "error.log"),
                                      "-c", str(conf)], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if Http(self.http_base).get("/")[0] in (200, 403, 404):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"nginx did not start: {(self.dir / 'error.log').read_text()}")
        time.sleep(0.2)
        return self

    def pids(self) -> list[int]:
        return [self.proc.pid, *children(self.proc.pid)]

    def new_stream(self, window: str = "PT1M") -> Stream:
        self.n += 1
        name = f"s{self.n}"
        return Stream(f"rtmp://127.0.0.1:{self.rtmp_port}/live/{name}", f"/{name}.m3u8")

    def release(self, streams: list[Stream]) -> None:
        pass

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class RmsEdge:
    name = "rms-edge"

    def __init__(self):
        self.app = Appliance()
        self.api: Api | None = None
        self.n = 0

    @property
    def http_base(self) -> str:
        return self.app.http_base

    @property
    def rtmp_port(self) -> int:
        return self.app.rtmp_port

    def start(self) -> "RmsEdge":
        self.app.start()
        self.api = Api(self.app)
        return self

    def pids(self) -> list[int]:
        return [self.app.proc.pid]

    def new_stream(self, window: str = "PT1M") -> Stream:
        """The quickstart's steps: event (PT2S), asset, live output, start, locator, listPaths."""
        self.n += 1
        api, i = self.api, self.n
        ev, asset, loc = f"bench{i}", f"bench-asset-{i}", f"bench-loc-{i}"
        doc = api.create_live_event(ev, {"location": "x", "properties": {
            "input": {"streamingProtocol": "RTMP", "keyFrameIntervalDuration": "PT2S"},
            "encoding": {"encodingType": "PassthroughStandard"}, "streamOptions": ["Default"]}})
        token = doc["properties"]["input"]["accessToken"]
        api.create_asset(asset)
        api.create_live_output(ev, "out", asset, archive=window)
        api.start_live_event(ev)
        api.create_locator(loc, asset)
        r = api.meta("POST", f"streamingLocators/{loc}/listPaths")
        assert r.status == 200, r
        by = {p["streamingProtocol"]: p["paths"] for p in r.doc["streamingPaths"]}
        hls = next(p for p in by["Hls"] if "m3u8-cmaf" in p)
        dash = next(p for p in by["Dash"] if "mpd-time-cmaf" in p)
        media = hls.rsplit("/", 1)[0] + "/video/index.m3u8"
        return Stream(f"rtmp://127.0.0.1:{self.app.rtmp_port}/live/{token}", media, hls, dash, ev)

    def release(self, streams: list[Stream]) -> None:
        """Stops the events (their outputs are removed; recordings stay on disk)."""
        for s in streams:
            if s.event:
                r = self.api.call("POST", f"liveEvents/{s.event}/stop", {})
                self.api.wait(r, timeout=60)

    def stop(self) -> None:
        self.app.cleanup()


# ----------------------------------------------------------------------------- measures
def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, round(q * (len(v) - 1)))]


def time_to_playable(server, timeout: float = 30.0) -> dict:
    """One fresh stream: seconds from ffmpeg launch to playable HLS (and DASH for rms-edge)."""
    s = server.new_stream()
    h = Http(server.http_base)
    enc = Encoder(s.rtmp_url, timed=True)
    out: dict = {}
    try:
        hls_ok, dash_ok = False, s.dash_path is None
        while time.monotonic() - enc.t_launch < timeout and not (hls_ok and dash_ok):
            t_req = time.monotonic()
            if not hls_ok:
                mv = s.multivariant_path is None or h.get(s.multivariant_path)[0] == 200
                if mv:
                    st, body = h.get(s.media_path)
                    segs = parse_media_playlist(body.decode(errors="replace")) if st == 200 else []
                    if segs and h.get(join(s.media_path, segs[0].uri))[0] == 200:
                        out["hls"] = time.monotonic() - enc.t_launch
                        hls_ok = True
            if not dash_ok:
                st, body = h.get(s.dash_path)
                if st == 200 and b"<S " in body:
                    out["dash"] = time.monotonic() - enc.t_launch
                    dash_ok = True
            time.sleep(max(0.0, 0.01 - (time.monotonic() - t_req)))
        if not hls_ok:
            raise RuntimeError(f"{server.name}: no playable HLS within {timeout}s; ffmpeg: {enc.stderr[-5:]}")
        if enc.t_connect:
            out["launch_to_connect"] = enc.t_connect - enc.t_launch
        return out
    finally:
        enc.stop()
        h.close()
        server.release([s])


def segment_latency(server, n: int, timeout: float | None = None) -> dict:
    """Newest segment visible in the media playlist (then fetched) after its frames arrived.

    The encoder pushes through an RtmpTap, which records when each video frame's last byte
    reached the server. Segment k, seen at t_seen, is matched to its closing keyframe (the
    first keyframe at or after first keyframe + cumulative EXTINF of segments 0..k); its last
    frame is the video frame just before that keyframe. Reported: t_seen - arrival of the last
    frame (headline), t_seen - arrival of the closing keyframe (the earliest instant any server
    can know the segment is complete), and the brief's estimate t_seen - (connect + cumulative
    EXTINF) for comparison."""
    s = server.new_stream()
    h = Http(server.http_base)
    tap = RtmpTap(server.rtmp_port)
    enc = Encoder(s.rtmp_url.replace(f":{server.rtmp_port}/", f":{tap.port}/"), timed=True)
    timeout = timeout or (n + 4) * SEGMENT_S + 15
    seen: dict[int, Seg] = {}
    first_msn = None
    records, failures, sizes = [], 0, []
    try:
        while len(records) < n and time.monotonic() - enc.t_launch < timeout:
            t_req = time.monotonic()
            st, body = h.get(s.media_path)
            t_resp = time.monotonic()
            if st == 200:
                for seg in parse_media_playlist(body.decode(errors="replace")):
                    if seg.msn in seen:
                        continue
                    if first_msn is None:
                        first_msn = seg.msn
                    seen[seg.msn] = seg
                    if any(m not in seen for m in range(first_msn, seg.msn)):
                        raise RuntimeError(f"{server.name}: playlist skipped a segment before {seg.msn}")
                    end = sum(seen[m].duration for m in range(first_msn, seg.msn + 1))
                    gst, data = h.get(join(s.media_path, seg.uri))
                    t_got = time.monotonic()
                    if gst != 200:
                        failures += 1
                        continue
                    records.append((seg.msn, end, t_resp, t_got))
                    sizes.append(len(data))
            time.sleep(max(0.0, 0.01 - (time.monotonic() - t_req)))
        if len(records) < n:
            raise RuntimeError(f"{server.name}: only {len(records)} segments in {timeout:.0f}s; ffmpeg: {enc.stderr[-5:]}")
    finally:
        enc.stop()
        h.close()
        tap.close()
        server.release([s])
    video = list(tap.video)
    kfs = [i for i, v in enumerate(video) if v[2]]
    if not kfs:
        raise RuntimeError(f"{server.name}: the tap saw no keyframe")
    ts0 = video[kfs[0]][1]
    last, kf, est, fetched, unmatched = [], [], [], [], 0
    for msn, end, t_seen, t_got in records:
        want = ts0 + end * 1000
        i = min(kfs, key=lambda j: abs(video[j][1] - want))
        if abs(video[i][1] - want) > 100 or i == 0:
            unmatched += 1
            continue
        last.append(t_seen - video[i - 1][0])
        kf.append(t_seen - video[i][0])
        fetched.append(t_got - video[i - 1][0])
        if enc.t_connect is not None:
            est.append(t_seen - (enc.t_connect + end))
    if not last:
        raise RuntimeError(f"{server.name}: no segment matched a keyframe")
    return {"median": statistics.median(last), "p95": pct(last, 0.95), "max": max(last),
            "kf_median": statistics.median(kf), "kf_p95": pct(kf, 0.95),
            "fetched_median": statistics.median(fetched), "fetched_p95": pct(fetched, 0.95),
            "estimate_median": statistics.median(est) if est else None,
            "n": len(last), "unmatched": unmatched, "failures": failures,
            "segment_kib": statistics.median(sizes) / 1024,
            "launch_to_connect": (enc.t_connect or 0) - enc.t_launch, "all": last}


def start_streams(server, n: int, window: str = "PT1M", spread: float = SEGMENT_S) -> tuple[list[Stream], list[Encoder]]:
    """n streams; encoders started evenly over one GOP (real encoders are not in phase)."""
    streams = [server.new_stream(window) for _ in range(n)]
    encoders = []
    t0 = time.monotonic()
    for i, s in enumerate(streams):
        time.sleep(max(0.0, t0 + spread * i / n - time.monotonic()))
        encoders.append(Encoder(s.rtmp_url))
    return streams, encoders


def playlist_msns(server, streams: list[Stream]) -> list[int]:
    h = Http(server.http_base)
    out = []
    try:
        for s in streams:
            try:
                st, body = h.get(s.media_path)
                segs = parse_media_playlist(body.decode(errors="replace")) if st == 200 else []
                out.append(segs[-1].msn if segs else -1)
            except OSError:
                out.append(-1)
    finally:
        h.close()
    return out


def cpu_at(server, n: int, window_s: float) -> dict:
    rss_before = rss_mib(server.pids())
    streams, encoders = start_streams(server, n)
    try:
        deadline = time.monotonic() + 30
        while min(playlist_msns(server, streams)) < 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2 * SEGMENT_S)  # every stream past its first cut
        msn0 = playlist_msns(server, streams)
        pids = server.pids()
        enc_pids = [e.proc.pid for e in encoders]
        t0, c0, e0 = time.monotonic(), cpu_ticks(pids), cpu_ticks(enc_pids)
        time.sleep(window_s)
        t1, c1, e1 = time.monotonic(), cpu_ticks(pids), cpu_ticks(enc_pids)
        rss = rss_mib(pids)
        msn1 = playlist_msns(server, streams)
        advancing = sum(1 for a, b in zip(msn0, msn1) if b > a >= 0 or (b >= 0 > a))
        alive = sum(e.alive() for e in encoders)
        cpu = 100.0 * (c1 - c0) / CLK_TCK / (t1 - t0)
        return {"n": n, "cpu": cpu, "per_stream": cpu / n, "rss": rss, "rss_before": rss_before,
                "rss_per_stream": (rss - rss_before) / n, "advancing": advancing, "alive": alive,
                "ffmpeg_cpu": 100.0 * (e1 - e0) / CLK_TCK / (t1 - t0), "load": os.getloadavg()[0]}
    finally:
        stop_all(encoders)
        server.release(streams)


@contextlib.contextmanager
def streams_on_all(servers: list, n: int, **extra):
    """n streams on every server at once: {name: {"srv", "streams", "encoders", key: factory()
    for each extra key}}; the
    encoders are stopped and the streams released on the way out. On exit each entry also gets
    "alive" (encoders still running) and "advancing" (playlists with a segment)."""
    per: dict = {}
    try:
        for srv in servers:
            streams, encoders = start_streams(srv, n)
            per[srv.name] = {"srv": srv, "streams": streams, "encoders": encoders, **{k: f() for k, f in extra.items()}}
        yield per
        for d in per.values():
            d["alive"] = sum(e.alive() for e in d["encoders"])
            d["advancing"] = sum(1 for m in playlist_msns(d["srv"], d["streams"]) if m >= 0)
    finally:
        for d in per.values():
            stop_all(d["encoders"])
            d["srv"].release(d["streams"])


def cpu_together(servers: list, n: int, window_s: float, windows: int) -> dict:
    """n streams on every server at once; then `windows` consecutive windows in which every
    server's CPU (and its encoders') is read over the same interval. Run side by side, both
    servers see the same machine (frequency, other load, cache), which back-to-back runs do not:
    at one stream the difference looked for is a few clock ticks."""
    with streams_on_all(servers, n, cpu=list, ffmpeg=list) as per:
        deadline = time.monotonic() + 30
        for d in per.values():
            while min(playlist_msns(d["srv"], d["streams"])) < 0 and time.monotonic() < deadline:
                time.sleep(0.5)
        time.sleep(2 * SEGMENT_S)
        for _ in range(windows):
            pids = {k: (d["srv"].pids(), [e.proc.pid for e in d["encoders"]]) for k, d in per.items()}
            t0 = time.monotonic()
            c0 = {k: (cpu_ticks(p), cpu_ticks(q)) for k, (p, q) in pids.items()}
            time.sleep(window_s)
            t1 = time.monotonic()
            for k, (p, q) in pids.items():
                per[k]["cpu"].append(100.0 * (cpu_ticks(p) - c0[k][0]) / CLK_TCK / (t1 - t0))
                per[k]["ffmpeg"].append(100.0 * (cpu_ticks(q) - c0[k][1]) / CLK_TCK / (t1 - t0))
    return {k: {"n": n, "cpu": d["cpu"], "ffmpeg": d["ffmpeg"], "median": statistics.median(d["cpu"]),
                "alive": d["alive"], "advancing": d["advancing"], "load": os.getloadavg()[0]}
            for k, d in per.items()}


def soak(servers: list, n: int, minutes: float, every: float = 10.0) -> dict:
    """n streams on every server at once for `minutes`; RSS sampled every `every` s."""
    idle = {srv.name: rss_mib(srv.pids()) for srv in servers}
    with streams_on_all(servers, n, samples=list) as per:
        t_start = time.monotonic()
        end = t_start + minutes * 60
        while time.monotonic() < end:
            for d in per.values():
                d["samples"].append((time.monotonic() - t_start, rss_mib(d["srv"].pids())))
            time.sleep(min(every, max(0.0, end - time.monotonic())))
        for d in per.values():
            d["samples"].append((time.monotonic() - t_start, rss_mib(d["srv"].pids())))
    out = {}
    for name, d in per.items():
        samples = d["samples"]
        # Steady part: after the 60 s live window has filled (and at least the first third).
        skip = max(65.0, samples[-1][0] / 3) if samples[-1][0] > 100 else samples[-1][0] / 3
        steady = [(t, r) for t, r in samples if t >= skip] or samples
        slope = 0.0
        if len(steady) >= 2:
            mt = statistics.mean(t for t, _ in steady)
            mr = statistics.mean(r for _, r in steady)
            den = sum((t - mt) ** 2 for t, _ in steady)
            slope = sum((t - mt) * (r - mr) for t, r in steady) / den if den else 0.0  # MiB/s
        out[name] = {"idle": idle[name], "first": samples[0][1], "peak": max(r for _, r in samples),
                     "steady_min": min(r for _, r in steady), "steady_max": max(r for _, r in steady),
                     "last": samples[-1][1], "per_stream": (samples[-1][1] - idle[name]) / n,
                     "steady_from": steady[0][0], "steady_growth": steady[-1][1] - steady[0][1],
                     "slope_mib_per_hour": slope * 3600, "alive": d["alive"], "advancing": d["advancing"],
                     "samples": samples}
    return out


def wrk(url: str, seconds: int, conns: int = 100, threads: int = 2) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", url],
                         check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors:(.*)", out)
    return {"rps": rps, "p99": p99, "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errs.group(1).strip() if errs else "", "raw": out}


def throughput(server, seconds: int) -> dict:
    """wrk against a full segment and the live media playlist of one live stream."""
    streams, encoders = start_streams(server, 1)
    s = streams[0]
    h = Http(server.http_base)
    try:
        deadline = time.monotonic() + 30
        segs: list[Seg] = []
        while time.monotonic() < deadline:
            st, body = h.get(s.media_path)
            segs = parse_media_playlist(body.decode(errors="replace")) if st == 200 else []
            if len(segs) >= 3:
                break
            time.sleep(0.2)
        assert len(segs) >= 3, f"{server.name}: fewer than 3 segments"
        seg_path = join(s.media_path, segs[-2].uri)
        st, data = h.get(seg_path)
        assert st == 200, (seg_path, st)
        seg = wrk(server.http_base + seg_path, seconds)
        pl = wrk(server.http_base + s.media_path, seconds)
        return {"segment_bytes": len(data), "segment": seg, "playlist": pl,
                "playlist_bytes": len(h.get(s.media_path)[1])}
    finally:
        h.close()
        stop_all(encoders)
        server.release(streams)


# ------------------------------------------------------------------------------------ report
def fmt_s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f} s"


def fmt_ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 1000:.0f} ms"


def ratio(a, b) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def yes(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**yes**" if ok else "**no**")


def run_guarded(what: str, fn, *a, **kw):
    log(f"{what} ...")
    try:
        r = fn(*a, **kw)
        log(f"{what}: {summary(r)}")
        return r
    except Exception as e:  # a failed measure is reported, not fatal
        log(f"{what} FAILED: {e}\n{traceback.format_exc()}")
        return {"error": str(e)}


def summary(r) -> str:
    if isinstance(r, dict):
        return ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
                         if not isinstance(v, (list, dict)) and k != "raw")
    return str(r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", default="1,4,16,64", help="concurrent stream counts for the CPU measure")
    ap.add_argument("--cpu-window", type=float, default=30.0, help="steady CPU window, seconds")
    ap.add_argument("--connect-runs", type=int, default=3)
    ap.add_argument("--latency-segments", type=int, default=20)
    ap.add_argument("--soak-minutes", type=float, default=3.0, help="RSS flatness run (60 for the hour)")
    ap.add_argument("--soak-streams", type=int, default=16)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--only", default="connect,latency,wrk,cpu,together,soak", help="comma-separated subset")
    ap.add_argument("--together-streams", default="1", help="stream counts for the side-by-side CPU measure")
    ap.add_argument("--together-windows", type=int, default=6, help="side-by-side CPU windows (each --cpu-window s)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    counts = [int(x) for x in args.streams.split(",") if x]
    for tool in ("ffmpeg", "nginx", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (scripts/bench.sh installs it)")
    if not Path(NGINX_RTMP_MODULE).exists():
        raise SystemExit("libnginx-mod-rtmp is not installed (scripts/bench.sh installs it)")
    ensure_media()
    load_start = Path("/proc/loadavg").read_text().strip()
    t_run = time.monotonic()
    nginx, edge = NginxRtmp(), RmsEdge()
    servers = [nginx, edge]
    R: dict = {s.name: {} for s in servers}
    try:
        for s in servers:
            s.start()
            time.sleep(1)
            R[s.name]["rss_idle"] = rss_mib(s.pids())
            R[s.name]["cpu_idle"] = None
        # Idle CPU over 10 s (rms-edge: a few timers; nginx: none).
        for s in servers:
            p = s.pids()
            c0, t0 = cpu_ticks(p), time.monotonic()
            time.sleep(5)
            R[s.name]["cpu_idle"] = 100.0 * (cpu_ticks(p) - c0) / CLK_TCK / (time.monotonic() - t0)
        if "connect" in only:
            for s in servers:
                R[s.name]["connect"] = []
            for i in range(args.connect_runs):
                for s in servers:  # interleaved, so drifting machine load hits both alike
                    R[s.name]["connect"].append(run_guarded(f"{s.name} connect->playable #{i + 1}",
                                                            time_to_playable, s))
        if "latency" in only:
            for s in servers:
                R[s.name]["latency"] = run_guarded(f"{s.name} segment latency", segment_latency, s,
                                                   args.latency_segments)
        if "wrk" in only:
            for s in servers:
                R[s.name]["wrk"] = run_guarded(f"{s.name} wrk", throughput, s, args.wrk_seconds)
        if "cpu" in only:
            for n in counts:
                for s in servers:
                    R[s.name].setdefault("cpu", {})[n] = run_guarded(f"{s.name} CPU at {n} streams", cpu_at, s, n,
                                                                     args.cpu_window)
        if "together" in only:
            for n in [int(x) for x in args.together_streams.split(",") if x]:
                log(f"CPU side by side: {n} stream(s) on both servers, {args.together_windows} x {args.cpu_window:g} s")
                t = run_guarded(f"side-by-side CPU at {n}", cpu_together, servers, n, args.cpu_window,
                                args.together_windows)
                for s in servers:
                    R[s.name].setdefault("together", {})[n] = t.get(s.name, t)
        if "soak" in only:
            # Fresh processes: the earlier phases leave allocator arenas and threads behind, which
            # would hide what the streams themselves add.
            for s in servers:
                s.stop()
            servers[:] = [NginxRtmp().start(), RmsEdge().start()]
            time.sleep(1)
            log(f"RSS soak: {args.soak_streams} streams on both (fresh) servers for {args.soak_minutes} min")
            sk = run_guarded("soak", soak, servers, args.soak_streams, args.soak_minutes)
            for s in servers:
                R[s.name]["soak"] = sk.get(s.name, sk)
    finally:
        for s in servers:
            s.stop()
    load_end = Path("/proc/loadavg").read_text().strip()
    report(R, args, counts, load_start, load_end, time.monotonic() - t_run)


def report(R, args, counts, load_start, load_end, elapsed) -> None:
    e, g = R["rms-edge"], R["nginx-rtmp"]
    rows = []

    def connect_median(d, key):
        v = [r[key] for r in d.get("connect", []) if key in r]
        return statistics.median(v) if v else None

    bar = SEGMENT_S + 0.3
    tol = 0.01  # the playlists are polled every 10 ms: closer than that is a tie
    eh, gh, ed = connect_median(e, "hls"), connect_median(g, "hls"), connect_median(e, "dash")
    n_runs = len(e.get("connect", []))
    rows.append((f"encoder start → playable HLS (median of {n_runs})", fmt_s(eh), fmt_s(gh), ratio(eh, gh),
                 f"≤ nginx-rtmp and ≤ {bar:.1f} s",
                 "n/a" if eh is None or gh is None else
                 f"{yes(eh <= gh + tol)} vs nginx (±10 ms), {yes(eh <= bar)} vs {bar:.1f} s"))
    rows.append((f"encoder start → playable DASH MPD (median of {n_runs})", fmt_s(ed), "(no DASH)",
                 ratio(ed, gh) + " (vs nginx HLS)", f"≤ nginx-rtmp HLS and ≤ {bar:.1f} s",
                 "n/a" if ed is None or gh is None else
                 f"{yes(ed <= gh + tol)} vs nginx (±10 ms), {yes(ed <= bar)} vs {bar:.1f} s"))
    el, gl = e.get("latency", {}), g.get("latency", {})
    rows.append((f"newest segment in playlist after its last frame was sent, median (p95), "
                 f"{el.get('n', gl.get('n', '?'))} segments",
                 f"{fmt_ms(el.get('median'))} ({fmt_ms(el.get('p95'))})",
                 f"{fmt_ms(gl.get('median'))} ({fmt_ms(gl.get('p95'))})",
                 ratio(el.get("median"), gl.get("median")), "≤ 100 ms",
                 "n/a" if "median" not in el else f"{yes(el['median'] <= 0.1)} median, {yes(el['p95'] <= 0.1)} p95"))
    for n in counts:
        ec, gc = e.get("cpu", {}).get(n, {}), g.get("cpu", {}).get(n, {})
        target = "≤ nginx-rtmp per stream" if n in (1, 16, 64) else "(no target)"
        met = "n/a" if "per_stream" not in ec or "per_stream" not in gc else (
            yes(ec["per_stream"] <= gc["per_stream"]) if n in (1, 16, 64) else "")
        def c(d):
            if "cpu" not in d:
                return "n/a" + (f" ({d['error'][:60]})" if "error" in d else "")
            return f"{d['cpu']:.1f} % ({d['per_stream']:.2f} %/stream)"
        rows.append((f"server CPU at {n} stream{'s' if n > 1 else ''}, % of one core ({args.cpu_window:.0f} s window)",
                     c(ec), c(gc), ratio(ec.get("per_stream"), gc.get("per_stream")), target, met))
    for n in sorted(set(e.get("together", {})) | set(g.get("together", {}))):
        et, gt = e.get("together", {}).get(n, {}), g.get("together", {}).get(n, {})
        if "median" not in et or "median" not in gt:
            rows.append((f"server CPU at {n} stream(s), side by side", "n/a", "n/a", "", "", "n/a"))
            continue
        k = len(et["cpu"])
        rows.append((f"server CPU at {n} stream{'s' if n > 1 else ''}, both servers streaming at once, median of "
                     f"{k} × {args.cpu_window:.0f} s windows (range)",
                     f"{et['median']:.3f} % ({min(et['cpu']):.3f}–{max(et['cpu']):.3f})",
                     f"{gt['median']:.3f} % ({min(gt['cpu']):.3f}–{max(gt['cpu']):.3f})",
                     ratio(et["median"], gt["median"]),
                     "≤ nginx-rtmp per stream" if n in (1, 16, 64) else "(no target)",
                     yes(et["median"] <= gt["median"]) if n in (1, 16, 64) else ""))
    rows.append(("RSS idle", f"{e.get('rss_idle', 0):.1f} MiB", f"{g.get('rss_idle', 0):.1f} MiB",
                 ratio(e.get("rss_idle"), g.get("rss_idle")), "—", ""))
    big = max((n for n in counts if "rss_per_stream" in e.get("cpu", {}).get(n, {})), default=None)
    if big:
        ep, gp = e["cpu"][big]["rss_per_stream"], g.get("cpu", {}).get(big, {}).get("rss_per_stream")
        rows.append((f"RSS added per stream at {big} streams", f"{ep:.2f} MiB",
                     "n/a" if gp is None else f"{gp:.2f} MiB", ratio(ep, gp), "≤ 1 MiB", yes(ep <= 1.0)))
    es, gs = e.get("soak", {}), g.get("soak", {})
    if "last" in es:
        def sk(d):
            return (f"{d['idle']:.1f} → {d['last']:.1f} MiB ({d['per_stream']:.2f} MiB/stream); after the window "
                    f"filled: {d['steady_min']:.1f}–{d['steady_max']:.1f} MiB, net {d['steady_growth']:+.1f} MiB")
        n = args.soak_streams
        growth_per_stream_h = es["slope_mib_per_hour"] / n
        if growth_per_stream_h <= 1.0:
            flat = "**yes**"
        elif args.soak_minutes < 30 and es["steady_max"] - es["steady_min"] <= 0.1 * n:
            flat = f"inconclusive in {args.soak_minutes:g} min (no trend above allocator steps; run --soak-minutes 60)"
        else:
            flat = f"**no** ({growth_per_stream_h:+.2f} MiB/stream/h)"
        rows.append((f"RSS over {args.soak_minutes:g} min with {n} streams, fresh processes (idle → end)", sk(es),
                     sk(gs) if "last" in gs else "n/a", ratio(es["per_stream"], gs.get("per_stream")),
                     "≤ 1 MiB/stream, flat over 1 h", f"{yes(es['per_stream'] <= 1.0)} ≤ 1 MiB; flat: {flat}"))
    ew, gw = e.get("wrk", {}), g.get("wrk", {})
    for key, label in (("segment", "segment"), ("playlist", "live media playlist")):
        if key in ew and key in gw:
            eb = ew["segment_bytes"] if key == "segment" else ew["playlist_bytes"]
            gb = gw["segment_bytes"] if key == "segment" else gw["playlist_bytes"]
            size = (lambda b: f"{b / 1024:.0f} KiB") if key == "segment" else (lambda b: f"{b} B")
            rows.append((f"wrk -t2 -c100 {args.wrk_seconds}s, {label} (rms-edge {size(eb)}, nginx {size(gb)})",
                         f"{ew[key]['rps']:,.0f} req/s, p99 {ew[key]['p99']}",
                         f"{gw[key]['rps']:,.0f} req/s, p99 {gw[key]['p99']}",
                         ratio(ew[key]["rps"], gw[key]["rps"]), "≥ 0.90 × nginx-rtmp",
                         yes(ew[key]["rps"] >= 0.9 * gw[key]["rps"])))
        else:
            rows.append((f"wrk, {label}", str(ew.get("error", "n/a"))[:80], str(gw.get("error", "n/a"))[:80],
                         "n/a", "≥ 0.90 × nginx-rtmp", "n/a"))
    print(f"Live benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}; load average at start {load_start}, at end "
          f"{load_end}; {elapsed / 60:.1f} min.\n")
    print("| measure | rms-edge | nginx-rtmp | ratio (rms-edge / nginx) | target (issue 3) | met |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    # Details for the notes.
    print("Details:")
    for name, d in (("rms-edge", e), ("nginx-rtmp", g)):
        print(f"- {name}: idle CPU {d.get('cpu_idle', 0):.2f} % of a core")
        for n, t in sorted(d.get("together", {}).items()):
            if "cpu" in t:
                print(f"  - side by side, {n} stream(s): windows % " + " ".join(f"{x:.3f}" for x in t["cpu"])
                      + "; its ffmpeg % " + " ".join(f"{x:.3f}" for x in t["ffmpeg"])
                      + f"; alive {t['alive']}, advancing {t['advancing']}, load {t['load']:.2f}")
        for i, c in enumerate(d.get("connect", [])):
            print(f"  - connect run {i + 1}: {summary(c)}")
        if d.get("latency"):
            lat = d["latency"]
            print(f"  - latency: {summary(lat)}")
            if "all" in lat:
                print(f"    per segment (ms): {' '.join(f'{x * 1000:.0f}' for x in lat['all'])}")
        for n, c in sorted(d.get("cpu", {}).items()):
            print(f"  - {n} streams: {summary(c)}")
        if d.get("wrk") and "segment" in d["wrk"]:
            for key in ("segment", "playlist"):
                w = d["wrk"][key]
                print(f"  - wrk {key}: {w['rps']:,.0f} req/s, p99 {w['p99']}, non-2xx {w['non2xx']}, "
                      f"socket errors {w['socket_errors'] or 'none'}")
        if d.get("soak") and "samples" in d["soak"]:
            print(f"  - soak: {summary(d['soak'])}")
            print(f"    RSS samples (s: MiB): " + " ".join(f"{t:.0f}:{r:.1f}" for t, r in d["soak"]["samples"]))


if __name__ == "__main__":
    main()
