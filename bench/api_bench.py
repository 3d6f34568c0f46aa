"""API benchmarks of issue 2 (not tests: they measure, they do not assert).

1. Live event start: POST start, then poll GET until resourceState is Running; the time from
   sending the POST to the first GET that reports Running. RMS documents 30-60 s (minutes cold).
2. GET of a live event under load: wrk on loopback, 2 threads, 64 connections, raw API key as
   bearer (the cheapest auth path is not used on purpose: the JWT path is what SDKs use).

Usage: python3 bench/api_bench.py [--starts N] [--seconds S]   (uses target/release/rms-edge)
Prints a Markdown table for docs/benchmarks.md.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
os.environ.setdefault("RMS_EDGE_BIN", str(ROOT / "target" / "release" / "rms-edge"))
os.environ.setdefault("RUST_LOG", "warn")
from appliance import Appliance  # noqa: E402

RMS_START_SECONDS = (30.0, 60.0)  # RMS quickstart: "Most events reach Running in 30-60 seconds"


def measure_starts(a: Appliance, n: int) -> list[float]:
    p = a.arm_prefix()
    out = []
    for i in range(n):
        name = f"bench{i}"
        s, _, _ = a.json("PUT", f"{p}/liveEvents/{name}", {
            "location": "x", "properties": {"input": {"streamingProtocol": "RTMP"}}})
        assert s == 201, s
        while a.json("GET", f"{p}/liveEvents/{name}")[2]["properties"]["provisioningState"] != "Succeeded":
            time.sleep(0.005)
        t0 = time.perf_counter()
        s, _, _ = a.json("POST", f"{p}/liveEvents/{name}/start")
        assert s == 202, s
        while a.json("GET", f"{p}/liveEvents/{name}")[2]["properties"]["resourceState"] != "Running":
            time.sleep(0.002)
        out.append(time.perf_counter() - t0)
    return out


def wrk(a: Appliance, seconds: int) -> tuple[float, str]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    token = a.token()
    url = f"{a.http_base}{a.arm_prefix()}/liveEvents/bench0?api-version=2022-11-01"
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} error responses:\n{out}")
    return rps, p99


def to_ms(s: str) -> float:
    """wrk's latency text (`950.00us`, `61.50ms`, `1.02s`, `1.00m`) in milliseconds."""
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    with Appliance() as a:
        starts = measure_starts(a, args.starts)
        rps, p99 = wrk(a, args.seconds)
    med = statistics.median(starts)
    p95 = sorted(starts)[int(0.95 * (len(starts) - 1))]
    p99_ms = to_ms(p99)
    yes = lambda ok: "**yes**" if ok else "**no**"
    print("| measure | rms-edge | peer (RMS, documented) | ratio | target (issue 2) | met |")
    print("|---|---|---|---|---|---|")
    print(f"| live event start to Running, median of {len(starts)} | {med*1000:.1f} ms (p95 {p95*1000:.1f} ms) "
          f"| 30-60 s | {RMS_START_SECONDS[0]/med:.0f}x-{RMS_START_SECONDS[1]/med:.0f}x faster | < 1 s | {yes(p95 < 1.0)} |")
    print(f"| GET live event, wrk -t2 -c64 {args.seconds}s, JWT bearer | {rps:,.0f} req/s, p99 {p99} | (no peer) "
          f"| {rps/5000:.2f}x the req/s target | ≥ 5,000 req/s, p99 < 10 ms "
          f"| {yes(rps >= 5000)} req/s, {yes(p99_ms < 10)} p99 |")


if __name__ == "__main__":
    main()
