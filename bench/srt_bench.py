"""SRT ingest benchmark of issue 4 (not a test: it measures, it asserts nothing).

One rms-edge (target/release) takes the same pre-encoded 720p30 2.5 Mb/s H.264 (2 s GOP) + AAC file
(bench/live_bench.py's cached file) over SRT and over RTMP in the same run, stream for stream:
  SRT:  ffmpeg -re -stream_loop -1 -i file.flv -c copy -f mpegts 'srt://127.0.0.1:PORT?streamid=<token>&latency=<µs>'
        (the URL from the live event's endpoints; libsrt caller, 1316-byte payloads; passthrough: no transcode)
  RTMP: ffmpeg -re -stream_loop -1 -i file.flv -c copy -f flv rtmp://127.0.0.1:PORT/live/<token>
Every stream gets the quickstart's steps through the API (live event with keyFrameIntervalDuration PT2S and,
for SRT, srtLatency; asset; live output with a 60 s window; start; locator; listPaths).

Measures:
 1. connect → first playable manifest, per protocol, interleaved, median of --connect-runs fresh streams:
    from the instant ffmpeg prints "Output #0" (after the SRT handshake / RTMP publish, when its -re clock
    starts; the same event for both protocols) until the multivariant is 200, the video media playlist lists a
    segment that is fetched with 200, and the MPD has a SegmentTimeline entry (polled every 10 ms).
    Target (issue 4, SRT): ≤ one segment (2 s) + the SRT latency + 0.5 s.
 2. server CPU (utime+stime from /proc over a steady --cpu-window, % of one core) and RSS at each of --streams
    concurrent streams, RTMP then SRT at each count; the encoders' own CPU beside it; how many playlists
    advanced during the window.

Usage: python3 bench/srt_bench.py [--streams 1,10,30] [--cpu-window 20] [--connect-runs 5] [--srt-latency 200]
Prints a Markdown table for docs/benchmarks.md; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_bench import (CLK_TCK, MEDIA, SEGMENT_S, Encoder as RtmpEncoder, Http, RmsEdge, Stream,  # noqa: E402
                        cpu_ticks, ensure_media, join, log, parse_media_playlist, playlist_msns, ratio, rss_mib,
                        run_guarded, stop_all)


class SrtEncoder(RtmpEncoder):
    """live_bench's Encoder with MPEG-TS over an SRT caller instead of FLV over RTMP. "Output #0" is
    printed once the SRT connection is up (avio_open returns after the handshake) and the TS header
    is written: the connect instant, as for RTMP."""

    def __init__(self, url: str, *, timed: bool = False):
        self.url, self.timed = url, timed
        self.t_launch = time.monotonic()
        level = "info" if timed else "error"
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", level,
             "-re", "-stream_loop", "-1", "-i", str(MEDIA), "-c", "copy", "-f", "mpegts", url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE if timed else subprocess.DEVNULL)
        self.t_connect: float | None = None
        self.stderr: list[str] = []
        if timed:
            threading.Thread(target=self._read, daemon=True).start()


ENCODER = {"RTMP": RtmpEncoder, "SRT": SrtEncoder}


class Edge(RmsEdge):
    """live_bench's RmsEdge with SRT events too; a Stream's `rtmp_url` is its ingest URL."""

    srt_latency_ms = 200

    def new_stream(self, window: str = "PT1M", protocol: str = "RTMP") -> Stream:
        if protocol == "RTMP":
            return super().new_stream(window)
        self.n += 1
        api, i = self.api, self.n
        ev, asset, loc = f"srtbench{i}", f"srtbench-asset-{i}", f"srtbench-loc-{i}"
        doc = api.create_live_event(ev, {"location": "x", "properties": {
            "input": {"streamingProtocol": "SRT", "keyFrameIntervalDuration": "PT2S",
                      "srtLatency": self.srt_latency_ms},
            "encoding": {"encodingType": "PassthroughStandard"}, "streamOptions": ["Default"]}})
        url = doc["properties"]["input"]["endpoints"][0]["url"]
        api.create_asset(asset)
        api.create_live_output(ev, "out", asset, archive=window)
        api.start_live_event(ev)
        api.create_locator(loc, asset)
        r = api.meta("POST", f"streamingLocators/{loc}/listPaths")
        assert r.status == 200, r
        by = {p["streamingProtocol"]: p["paths"] for p in r.doc["streamingPaths"]}
        hls = next(p for p in by["Hls"] if "m3u8-cmaf" in p)
        dash = next(p for p in by["Dash"] if "mpd-time-cmaf" in p)
        return Stream(url, hls.rsplit("/", 1)[0] + "/video/index.m3u8", hls, dash, ev)


# ----------------------------------------------------------------------------- measures
def connect_to_playable(edge: Edge, protocol: str, timeout: float = 30.0) -> dict:
    """One fresh stream: seconds from the encoder's connect (and launch) to playable HLS and DASH."""
    s = edge.new_stream(protocol=protocol)
    h = Http(edge.http_base)
    enc = ENCODER[protocol](s.rtmp_url, timed=True)
    got: dict = {}
    try:
        while time.monotonic() - enc.t_launch < timeout and not ("hls" in got and "dash" in got):
            t_req = time.monotonic()
            if "hls" not in got and h.get(s.multivariant_path)[0] == 200:
                st, body = h.get(s.media_path)
                segs = parse_media_playlist(body.decode(errors="replace")) if st == 200 else []
                if segs and h.get(join(s.media_path, segs[0].uri))[0] == 200:
                    got["hls"] = time.monotonic()
            if "dash" not in got:
                st, body = h.get(s.dash_path)
                if st == 200 and b"<S " in body:
                    got["dash"] = time.monotonic()
            time.sleep(max(0.0, 0.01 - (time.monotonic() - t_req)))
        if "hls" not in got or "dash" not in got or enc.t_connect is None:
            raise RuntimeError(f"{protocol}: not playable within {timeout}s ({sorted(got)}); ffmpeg: {enc.stderr[-5:]}")
        return {"hls": got["hls"] - enc.t_connect, "dash": got["dash"] - enc.t_connect,
                "manifest": max(got.values()) - enc.t_connect,
                "launch_to_connect": enc.t_connect - enc.t_launch,
                "launch_to_manifest": max(got.values()) - enc.t_launch}
    finally:
        enc.stop()
        h.close()
        edge.release([s])


def cpu_at(edge: Edge, protocol: str, n: int, window_s: float) -> dict:
    """n concurrent streams of `protocol`, started over one GOP; CPU and RSS over a steady window."""
    rss_before = rss_mib(edge.pids())
    streams = [edge.new_stream(protocol=protocol) for _ in range(n)]
    encoders = []
    try:
        t0 = time.monotonic()
        for i, s in enumerate(streams):
            time.sleep(max(0.0, t0 + SEGMENT_S * i / n - time.monotonic()))
            encoders.append(ENCODER[protocol](s.rtmp_url))
        deadline = time.monotonic() + 30
        while min(playlist_msns(edge, streams)) < 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2 * SEGMENT_S)  # every stream past its first cut
        msn0 = playlist_msns(edge, streams)
        pids, enc_pids = edge.pids(), [e.proc.pid for e in encoders]
        t0, c0, e0 = time.monotonic(), cpu_ticks(pids), cpu_ticks(enc_pids)
        time.sleep(window_s)
        t1, c1, e1 = time.monotonic(), cpu_ticks(pids), cpu_ticks(enc_pids)
        rss = rss_mib(pids)
        msn1 = playlist_msns(edge, streams)
        cpu = 100.0 * (c1 - c0) / CLK_TCK / (t1 - t0)
        return {"n": n, "cpu": cpu, "per_stream": cpu / n, "rss": rss, "rss_per_stream": (rss - rss_before) / n,
                "advancing": sum(1 for a, b in zip(msn0, msn1) if b > a >= 0),
                "alive": sum(e.alive() for e in encoders),
                "ffmpeg_per_stream": 100.0 * (e1 - e0) / CLK_TCK / (t1 - t0) / n, "load": os.getloadavg()[0]}
    finally:
        stop_all(encoders)
        edge.release(streams)


# ------------------------------------------------------------------------------------ report
def median_of(runs: list[dict], key: str) -> float | None:
    v = [r[key] for r in runs if key in r]
    return statistics.median(v) if v else None


def report(R: dict, args, counts: list[int], load_start: str, load_end: str, elapsed: float) -> None:
    s, r = R["SRT"], R["RTMP"]
    bar = SEGMENT_S + args.srt_latency / 1000 + 0.5
    rows = []

    def row(measure, a, b, fmt, target="—", met=None):
        ra = ratio(a, b)
        m = "" if met is None else ("**yes**" if met else "**no**")
        rows.append(f"| {measure} | {fmt(a)} | {fmt(b)} | {ra} | {target} | {m} |")

    secs = lambda x: "n/a" if x is None else f"{x:.2f} s"  # noqa: E731
    n_runs = len(s.get("connect", []))
    for key, what in (("manifest", "HLS and DASH"), ("hls", "HLS"), ("dash", "DASH MPD")):
        a, b = median_of(s.get("connect", []), key), median_of(r.get("connect", []), key)
        tgt = f"≤ {SEGMENT_S:.0f} s + {args.srt_latency} ms + 0.5 s = {bar:.1f} s" if key == "manifest" else "—"
        row(f"connect → first playable {what} (median of {n_runs})", a, b, secs, tgt,
            None if key != "manifest" or a is None else a <= bar)
    a, b = median_of(s.get("connect", []), "launch_to_connect"), median_of(r.get("connect", []), "launch_to_connect")
    row("ffmpeg launch → connected (median)", a, b, secs)
    for n in counts:
        cs, cr = s.get("cpu", {}).get(n, {}), r.get("cpu", {}).get(n, {})
        cpu = lambda d: "n/a" if "cpu" not in d else f"{d['cpu']:.1f} % ({d['per_stream']:.2f} %/stream)"  # noqa: E731
        rows.append(f"| server CPU at {n} stream{'s' if n > 1 else ''}, % of one core ({args.cpu_window:.0f} s) | "
                    f"{cpu(cs)} | {cpu(cr)} | {ratio(cs.get('per_stream'), cr.get('per_stream'))} | — |  |")
        rows.append(f"| RSS at {n} stream{'s' if n > 1 else ''} (added per stream) | "
                    + " | ".join("n/a" if "rss" not in d else f"{d['rss']:.1f} MiB ({d['rss_per_stream']:.2f})"
                                 for d in (cs, cr))
                    + f" | {ratio(cs.get('rss'), cr.get('rss'))} | — |  |")
        rows.append(f"| ffmpeg (encoder) CPU per stream at {n}, % of one core | "
                    + " | ".join("n/a" if "ffmpeg_per_stream" not in d else f"{d['ffmpeg_per_stream']:.2f} %"
                                 for d in (cs, cr))
                    + f" | {ratio(cs.get('ffmpeg_per_stream'), cr.get('ffmpeg_per_stream'))} | — |  |")
    print(f"Run: {time.strftime('%d %b %Y %H:%M', time.gmtime())} UTC, {elapsed / 60:.1f} min; load average "
          f"{load_start.split()[0]} → {load_end.split()[0]}; SRT latency {args.srt_latency} ms; "
          f"binary {os.environ.get('RMS_EDGE_BIN')}")
    print()
    print("| measure | SRT | RTMP | ratio (SRT / RTMP) | target (issue 4) | met |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("Details (load average at the end of each CPU window; playlists advancing / encoders alive):")
    for n in counts:
        for p in ("SRT", "RTMP"):
            d = R[p].get("cpu", {}).get(n, {})
            if "error" in d:
                print(f"- {p} at {n}: FAILED {d['error']}")
            elif d:
                print(f"- {p} at {n}: load {d['load']:.2f}, advancing {d['advancing']}/{n}, alive {d['alive']}/{n}")
    for p in ("SRT", "RTMP"):
        runs = R[p].get("connect", [])
        print(f"- {p} connect runs (connect → HLS+DASH, s): "
              + ", ".join("FAILED" if "error" in x else f"{x['manifest']:.2f}" for x in runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", default="1,10,30", help="concurrent stream counts for the CPU measure")
    ap.add_argument("--cpu-window", type=float, default=20.0, help="steady CPU window, seconds")
    ap.add_argument("--connect-runs", type=int, default=5)
    ap.add_argument("--srt-latency", type=int, default=200, help="the SRT events' srtLatency, ms")
    ap.add_argument("--only", default="connect,cpu", help="comma-separated subset")
    args = ap.parse_args()
    only = set(args.only.split(","))
    counts = [int(x) for x in args.streams.split(",") if x]
    if not shutil.which("ffmpeg"):
        raise SystemExit("ffmpeg is not installed (scripts/bench.sh installs it)")
    ensure_media()
    Edge.srt_latency_ms = args.srt_latency
    load_start = Path("/proc/loadavg").read_text().strip()
    t_run = time.monotonic()
    edge = Edge().start()
    R: dict = {"SRT": {}, "RTMP": {}}
    try:
        if "connect" in only:
            for i in range(args.connect_runs):
                for p in ("SRT", "RTMP"):  # interleaved, so drifting machine load hits both alike
                    R[p].setdefault("connect", []).append(
                        run_guarded(f"{p} connect->playable #{i + 1}", connect_to_playable, edge, p))
        if "cpu" in only:
            for n in counts:
                for p in ("RTMP", "SRT"):
                    R[p].setdefault("cpu", {})[n] = run_guarded(f"{p} CPU at {n} streams", cpu_at, edge, p, n,
                                                                args.cpu_window)
    finally:
        edge.stop()
    load_end = Path("/proc/loadavg").read_text().strip()
    report(R, args, counts, load_start, load_end, time.monotonic() - t_run)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
