"""Transcoding benchmark of issue 5 (not a test: it measures, it does not assert).

Frames per second of the Standard ladder (1280x720 3500k, 960x540 2200k, 704x396 1350k, 512x288 850k, 30 fps,
2 s GOP, no B-frames, CBR) from a 1080p30 H.264 input on the software path, side by side in one run:

  * rms-edge: `rms-edge transcode-worker` (the process the appliance supervises per event: GStreamer appsrc ->
    avdec_h264 -> videorate -> tee -> 4 x (videoscale -> x264enc) -> appsink), reading the input's access units in
    its framed stdin protocol from a file written before the clock starts (as ffmpeg reads its input file), its
    output parsed in place; the clock stops when its End arrives (every frame out).
  * ffmpeg: one process decoding the same file once, `split=4` -> 4 x (scale -> libx264) -> null muxer, the same
    x264 preset, bitrates, GOP (-g/-keyint_min, no scene cut), no B-frames and CBR with filler (nal-hrd=cbr).

Video only on both sides (the worker's AAC branch is idle without an audio track). fps = input frames / wall
seconds; CPU = user+system seconds of the child processes. Runs alternate (rms-edge, ffmpeg, rms-edge, ...) and
the medians are reported, so background load hits both alike. The two cores of the development machine are
shared with other work: compare the ratio, not the absolute numbers.

Usage: python3 bench/transcode_bench.py [--preset veryfast] [--seconds 20] [--runs 3] [--binary PATH]
Prints a Markdown table for docs/benchmarks.md. The input is made once under bench/.cache/.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
LADDER = [(1280, 720, 3500), (960, 540, 2200), (704, 396, 1350), (512, 288, 850)]

T_CONFIG, T_TRACKS, T_UNIT, T_DISC, T_END, T_STATS, T_EVENT = range(1, 8)


def make_input(seconds: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"in-1080p30-{seconds}s.h264"
    if not out.exists():
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=1920x1080:rate=30", "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast",
                        "-profile:v", "high", "-pix_fmt", "yuv420p", "-g", "60", "-bf", "0", "-b:v", "8M",
                        "-f", "h264", str(out)], check=True)
    return out


def access_units(annexb: bytes):
    """(avcC, [(keyframe, AVCC sample)]) from an Annex B stream with one slice per frame."""
    nals, i, n = [], 0, len(annexb)
    starts = []
    while True:
        j = annexb.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else n
        nal = annexb[s:e].rstrip(b"\x00")
        if nal:
            nals.append(nal)
    sps = next(x for x in nals if x[0] & 0x1F == 7)
    pps = next(x for x in nals if x[0] & 0x1F == 8)
    avcc = bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]) + struct.pack(">H", len(sps)) + sps + b"\x01" + \
        struct.pack(">H", len(pps)) + pps
    units, pending = [], []
    for x in nals:
        t = x[0] & 0x1F
        if t == 9:  # AUD
            continue
        pending.append(x)
        if t in (1, 5):
            units.append((any(p[0] & 0x1F == 5 for p in pending),
                          b"".join(struct.pack(">I", len(p)) + p for p in pending)))
            pending = []
    return avcc, units


def frame(t: int, payload: bytes) -> bytes:
    return struct.pack(">IB", len(payload) + 1, t) + payload


def tracks_payload(avcc: bytes) -> bytes:
    cs = b"avc1.%02x%02x%02x" % (avcc[1], avcc[2], avcc[3])
    return struct.pack(">H", 1) + struct.pack(">IBIHHIHI", 1, 1, 90000, 1920, 1080, 0, 0, 8_000_000) + \
        struct.pack(">H", len(cs)) + cs + struct.pack(">I", len(avcc)) + avcc


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def worker_input(avcc: bytes, units, preset: str) -> Path:
    """The worker's whole stdin (config, track, every unit, end) in a file, made before the clock starts, as
    ffmpeg's input is: the harness then costs the machine nothing while both sides run."""
    cfg = {"event": "bench", "preset": "Default720p", "key_frame_interval_ms": 2000, "x264_speed_preset": preset}
    out = CACHE / f"worker-in-{preset}-{len(units)}.bin"
    with open(out, "wb") as w:
        w.write(frame(T_CONFIG, json.dumps(cfg).encode()))
        w.write(frame(T_TRACKS, tracks_payload(avcc)))
        for i, (key, data) in enumerate(units):
            ts = i * 3000
            w.write(frame(T_UNIT, struct.pack(">IqqB", 1, ts, ts, 1 if key else 0) + data))
        w.write(frame(T_END, b""))
    return out


def run_worker(binary: str, stdin_file: Path, frames: int) -> dict:
    env = dict(os.environ, RMS_EDGE_WORKER_LOG="warn")
    c0 = cpu_children()
    t0 = time.monotonic()
    with open(stdin_file, "rb") as stdin:
        p = subprocess.Popen([binary, "transcode-worker"], stdin=stdin, stdout=subprocess.PIPE, env=env)
    counts: dict[int, int] = {}
    done = False
    buf = bytearray()
    pos = 0
    # Frames are parsed in place (an offset into one buffer, compacted per read), so reading the worker's
    # output stays linear in its size.
    while not done:
        chunk = p.stdout.read1(1 << 20)
        if not chunk:
            break
        del buf[:pos]
        pos = 0
        buf += chunk
        while len(buf) - pos >= 4:
            n = int.from_bytes(buf[pos:pos + 4], "big")
            if len(buf) - pos < 4 + n:
                break
            typ = buf[pos + 4]
            if typ == T_UNIT:
                tr = int.from_bytes(buf[pos + 5:pos + 9], "big")
                counts[tr] = counts.get(tr, 0) + 1
            elif typ == T_END:
                done = True
                break
            elif typ == T_EVENT and b'"Error"' in buf[pos + 5:pos + 4 + n]:
                print("worker error:", bytes(buf[pos + 5:pos + 4 + n]).decode(errors="replace"), file=sys.stderr)
            pos += 4 + n
    wall = time.monotonic() - t0
    p.stdout.close()
    p.wait(30)
    assert done, "the worker did not finish"
    return {"wall": wall, "fps": frames / wall, "cpu": cpu_children() - c0, "frames": counts}


def run_ffmpeg(path: Path, frames: int, preset: str) -> dict:
    split = "".join(f"[v{i}]" for i in range(len(LADDER)))
    graph = f"[0:v]split={len(LADDER)}{split};" + ";".join(
        f"[v{i}]scale={w}:{h}[o{i}]" for i, (w, h, _) in enumerate(LADDER))
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "h264", "-framerate", "30",
           "-i", str(path), "-filter_complex", graph]
    for i, (_, _, kbps) in enumerate(LADDER):
        cmd += ["-map", f"[o{i}]", "-c:v", "libx264", "-preset", preset, "-profile:v", "high", "-pix_fmt", "yuv420p",
                "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k", "-g", "60", "-keyint_min", "60",
                "-sc_threshold", "0", "-bf", "0", "-x264-params", "nal-hrd=cbr", "-r", "30", "-f", "null", "-"]
    c0 = cpu_children()
    t0 = time.monotonic()
    subprocess.run(cmd, check=True)
    wall = time.monotonic() - t0
    return {"wall": wall, "fps": frames / wall, "cpu": cpu_children() - c0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--binary", default=None)
    a = ap.parse_args()
    binary = a.binary or next(str(p) for p in (ROOT / "target/release/rms-edge", ROOT / "target/debug/rms-edge")
                              if p.exists())
    path = make_input(a.seconds)
    avcc, units = access_units(path.read_bytes())
    print(f"input: {path.name}, {len(units)} frames 1920x1080, {sum(k for k, _ in units)} keyframes; "
          f"x264 preset {a.preset}; binary {binary}", file=sys.stderr)
    stdin_file = worker_input(avcc, units, a.preset)
    ours, theirs = [], []
    for r in range(a.runs):
        o = run_worker(binary, stdin_file, len(units))
        assert len(o["frames"]) == len(LADDER) and all(v >= len(units) - 2 for v in o["frames"].values()), o
        ours.append(o)
        f = run_ffmpeg(path, len(units), a.preset)
        theirs.append(f)
        print(f"run {r + 1}: rms-edge {o['fps']:.1f} fps ({o['cpu']:.1f} s CPU), ffmpeg {f['fps']:.1f} fps "
              f"({f['cpu']:.1f} s CPU)", file=sys.stderr)
    med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
    load = os.getloadavg()[0]
    print(f"| x264 preset | frames | rms-edge fps | ffmpeg fps | ratio | rms-edge CPU s | ffmpeg CPU s | load avg |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {a.preset} | {len(units)} | {med(ours, 'fps'):.1f} | {med(theirs, 'fps'):.1f} | "
          f"{med(ours, 'fps') / med(theirs, 'fps'):.2f} | {med(ours, 'cpu'):.1f} | {med(theirs, 'cpu'):.1f} | {load:.1f} |")


if __name__ == "__main__":
    main()
