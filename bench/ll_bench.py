"""Low-latency benchmark of issue 8 (measures, does not assert).

In one appliance run: a LowLatency event and a normal event, each fed by its own ffmpeg (RTMP,
640x360 30 fps, 1 s GOPs, -tune zerolatency, -re), both played at once in headless Chromium by
hls.js and dash.js (low-latency modes for the LL event, default modes for the normal one).

- Glass to glass: every 250 ms each page reports wall clock minus the wall-clock time of the frame
  on screen (hls.js: EXT-X-PROGRAM-DATE-TIME mapping of currentTime; dash.js: its live latency from
  availabilityStartTime, clock synced by UTCTiming). The appliance anchors both to the wall clock
  when the encoder's media arrived, and ffmpeg -re sends in real time, so this is "frame sent ->
  frame presented". Median and p95 after a 10 s warm-up.
- Part availability: a client chains blocking reloads (_HLS_msn/_HLS_part of the next part); each
  answer's arrival minus the wall-clock end of the part it announces (segment PDT + the durations
  of its parts up to and including it) = frame sent -> part listed.

Usage: .venv/bin/python bench/ll_bench.py [--seconds 300] [--bin target/release/rms-edge]
Prints a Markdown table for docs/benchmarks.md.
"""
import argparse
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in ("tests/lowlatency", "tests/live", "tests/harness", "tests/api"):
    sys.path.insert(0, str(ROOT / p))
os.environ.setdefault("RUST_LOG", "warn")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "rms-edge"))
    args = ap.parse_args()
    os.environ["RMS_EDGE_BIN"] = args.bin

    import functools
    import http.server

    from appliance import Appliance
    from _ll import LLPlayer, LLPlaylist, attrs, encoder_args, get_ll, latencies, percentile, setup_ll
    from _media import parse_pdt
    from _procs import Encoder

    arts = Path(tempfile.mkdtemp(prefix="ll-bench-"))
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    handler = functools.partial(Quiet, directory=str(ROOT / "tests"))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    static = f"http://127.0.0.1:{srv.server_address[1]}"

    with Appliance() as app:
        ll = setup_ll(app, prefix="llb")
        normal = setup_ll(app, options=("Default",), prefix="nb")
        encs = [Encoder(x.rtmp_url(), arts, name=n, duration=args.seconds + 90, extra=encoder_args()).start()
                for x, n in ((ll, "enc-ll"), (normal, "enc-normal"))]
        time.sleep(6)
        player = LLPlayer(static, arts).start()
        pages = {"hls.js LL": ("hls", ll.hls_url, True), "dash.js LL": ("dash", ll.dash_url, True),
                 "hls.js normal": ("hls", normal.hls_url, False), "dash.js normal": ("dash", normal.dash_url, False)}
        for pid, (kind, url, is_ll) in pages.items():
            player.open(pid, kind, url, ll=is_ll)

        # Part availability: chained blocking reloads on the LL event's video playlist.
        part_lat: list[float] = []
        stop = threading.Event()

        def chase() -> None:
            pl = LLPlaylist(get_ll(ll).text)
            while not stop.is_set():
                seq, idx = (int(x) for x in pl.hint.split(".")[:2])
                g = get_ll(ll, query=f"_HLS_msn={seq}&_HLS_part={idx}")
                t = time.time()
                if g.status != 200:
                    time.sleep(0.1)
                    pl = LLPlaylist(get_ll(ll).text)
                    continue
                pl = LLPlaylist(g.text)
                # Wall-clock end of part (seq, idx): the PDT of the first listed segment + durations.
                lines = pl.lines
                pdt = None
                cur = pl.msn0 + pl.skipped
                acc = 0.0
                for ln in lines:
                    if ln.startswith("#EXT-X-PROGRAM-DATE-TIME:") and pdt is None:
                        pdt = parse_pdt(ln.split(":", 1)[1]).timestamp()
                    elif ln.startswith("#EXTINF:"):
                        if cur == seq:
                            break
                        acc += float(ln[8:].split(",")[0])
                        cur += 1
                parts = pl.parts_of(seq)
                if pdt is None or len(parts) <= idx:
                    continue
                end = pdt + acc + sum(p["duration"] for p in parts[: idx + 1])
                part_lat.append(t - end)

        threading.Thread(target=chase, daemon=True).start()
        t_start = time.time() + 10
        t_end = time.time() + args.seconds
        while time.time() < t_end:
            time.sleep(1)
        stop.set()
        rows = []
        for pid in pages:
            st = player.state(pid) or {}
            lat = latencies(player, pid, since_t=t_start)
            rows.append((pid, percentile(lat, 50), percentile(lat, 95), len(lat), st.get("waiting"), len(st.get("fatal") or [])))
        player.quit()
        for e in encs:
            e.close()
    srv.shutdown()
    secs = int(args.seconds)
    print(f"\nGlass to glass, {secs} s (first 10 s dropped), {os.path.basename(args.bin)} {Path(args.bin).parent.name} build:\n")
    print("| player | median | p95 | samples | stalls (waiting) | fatal errors |")
    print("|---|---|---|---|---|---|")
    for pid, med, p95, n, w, f in rows:
        print(f"| {pid} | {med:.2f} s | {p95:.2f} s | {n} | {w} | {f} |")
    pl = [x for x in part_lat[5:]]
    print(f"\nPart availability (frame sent -> part listed by a held reload), {len(pl)} parts: "
          f"median {percentile(pl, 50) * 1000:.0f} ms, p95 {percentile(pl, 95) * 1000:.0f} ms, "
          f"max {max(pl) * 1000 if pl else float('nan'):.0f} ms")
    print(f"(artifacts: {arts})")


if __name__ == "__main__":
    main()
