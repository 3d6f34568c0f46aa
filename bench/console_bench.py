"""Technician console benchmarks of issue 9 (not tests: they measure, they do not assert).

1. First load: Debian's Chromium (headless, a new profile each run, so a cold cache) opens
   /console/ on loopback. Reported: the compressed bytes of every file of the first load (from the
   browser's resource timing), the time to interactive (navigation start until the first page is
   on screen and usable: the console's own `console-ready` performance mark), the bytes a reload
   transfers (hashed files come from the cache, index.html is revalidated), and the time from
   "Sign in" to a dashboard with data (`dashboard-ready`). The bundled hls.js is loaded only when
   a preview or recording first plays; its size is reported apart.
2. Dashboard refresh cost: ten live events Running (no encoders), the appliance's CPU time
   (utime + stime of its process) over a window with no browser, then over the same window with
   the dashboard open (it refreshes every 3 s: the event list, getStatus of each Running event,
   /edge/v1/system and /edge/v1/sync). Reported as % of one core, and the API requests per second.

Usage: python3 bench/console_bench.py [--runs N] [--seconds S]   (uses target/release/rms-edge)
Prints Markdown tables for docs/benchmarks.md.
"""
import argparse
import gzip
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
sys.path.insert(0, str(ROOT / "tests" / "console"))
os.environ.setdefault("RMS_EDGE_BIN", str(ROOT / "target" / "release" / "rms-edge"))
os.environ.setdefault("RUST_LOG", "warn")
from appliance import Appliance  # noqa: E402
from _browser import Browser  # noqa: E402

TARGET_BYTES = 300_000
TARGET_TTI_MS = 1000
TARGET_CPU_PCT = 1.0

FIRST_LOAD_JS = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const ready = performance.getEntriesByName('console-ready')[0];
  return { ready: ready ? ready.startTime : null, load: nav.loadEventEnd,
    bytes: nav.encodedBodySize + res.reduce((a, r) => a + r.encodedBodySize, 0),
    raw: nav.decodedBodySize + res.reduce((a, r) => a + r.decodedBodySize, 0),
    transfer: nav.transferSize + res.reduce((a, r) => a + r.transferSize, 0),
    files: 1 + res.length, names: [...new Set(res.map((r) => r.name.split('/').pop()))] };
})()"""


def proc_cpu_seconds(pid: int) -> float:
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def gz_size(url: str) -> tuple[int, int]:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        raw = gzip.decompress(body) if r.headers.get("Content-Encoding") == "gzip" else body
    return len(body), len(raw)


def first_load(a: Appliance, runs: int) -> dict:
    out = {"ready": [], "bytes": None, "raw": None, "files": None, "names": None, "reload": [], "dash": []}
    for i in range(runs):
        with tempfile.TemporaryDirectory() as d:
            b = Browser(Path(d))
            try:
                b.goto(a.http_base + "/console/")
                b.wait("[data-testid=apikey]")
                m = b.wait_until(f"(() => {{ const m = {FIRST_LOAD_JS}; return m.ready ? m : null; }})()", 10,
                                 "console-ready mark")
                out["ready"].append(m["ready"])
                out["bytes"], out["raw"], out["files"], out["names"] = m["bytes"], m["raw"], m["files"], m["names"]
                b.fill("[data-testid=apikey]", a.api_key)
                b.eval("(() => { window.__t0 = performance.now(); document.querySelector('[data-testid=signin]').click(); })()")
                dash = b.wait_until("(() => { const m = performance.getEntriesByName('dashboard-ready')[0]; "
                                    "return m ? m.startTime - window.__t0 : null; })()", 20, "dashboard-ready mark")
                out["dash"].append(dash)
                b.reload()
                b.wait("[data-testid=events-card] h2")
                time.sleep(0.3)
                m2 = b.eval("(() => { const nav = performance.getEntriesByType('navigation')[0]; "
                            "const res = performance.getEntriesByType('resource').filter((r) => r.name.includes('/console/')); "
                            "return nav.transferSize + res.reduce((a, r) => a + r.transferSize, 0); })()")
                out["reload"].append(m2)
            finally:
                b.close()
    return out


def dashboard_cpu(a: Appliance, seconds: float) -> dict:
    p = a.arm_prefix()
    for i in range(10):
        s, _, _ = a.json("PUT", f"{p}/liveEvents/bench{i}", {
            "location": "x", "properties": {"input": {"streamingProtocol": "RTMP"}}})
        assert s in (200, 201), s
        s, _, _ = a.json("POST", f"{p}/liveEvents/bench{i}/start")
        assert s in (200, 202), s
    deadline = time.time() + 30
    while sum(e["properties"]["resourceState"] == "Running" for e in a.json("GET", f"{p}/liveEvents")[2]["value"]) < 10:
        assert time.time() < deadline, "events did not reach Running"
        time.sleep(0.2)
    time.sleep(2)
    pid = a.proc.pid
    c0, t0 = proc_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    idle = (proc_cpu_seconds(pid) - c0) / (time.monotonic() - t0) * 100
    with tempfile.TemporaryDirectory() as d:
        b = Browser(Path(d))
        try:
            b.goto(a.http_base + "/console/")
            b.fill("[data-testid=apikey]", a.api_key)
            b.click("[data-testid=signin]")
            b.wait_until("document.querySelectorAll('tr[data-event]').length === 10", 20, "ten events listed")
            time.sleep(3)
            n0 = b.eval("performance.getEntriesByType('resource').length")
            c0, t0 = proc_cpu_seconds(pid), time.monotonic()
            time.sleep(seconds)
            c1, t1 = proc_cpu_seconds(pid), time.monotonic()
            n1 = b.eval("performance.getEntriesByType('resource').length")
            healthy = b.eval("document.querySelectorAll('tr[data-event] [data-testid=event-health] .badge').length")
        finally:
            b.close()
    with_dash = (c1 - c0) / (t1 - t0) * 100
    return {"idle": idle, "dash": with_dash, "delta": with_dash - idle, "rps": (n1 - n0) / (t1 - t0),
            "rows": healthy, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    if not (ROOT / "tests" / "js" / "node_modules" / "playwright-core").exists():
        raise SystemExit("tests/js/node_modules/playwright-core is missing: run scripts/install-test-deps.sh")
    with Appliance() as a:
        s, _, body = a.request("GET", "/console/", auth=False)
        assert s == 200 and b"console" in body, f"{os.environ['RMS_EDGE_BIN']} does not serve the console: rebuild it"
        fl = first_load(a, args.runs)
        version = re.search(r"/console/([0-9a-f]+)/app\.js", body.decode()).group(1)
        hls_gz, hls_raw = gz_size(f"{a.http_base}/console/{version}/vendor/hls.min.js")
        cpu = dashboard_cpu(a, args.seconds)
    ready = sorted(fl["ready"])
    med = statistics.median(ready)
    dash = statistics.median(fl["dash"])
    print(f"Binary: {os.environ['RMS_EDGE_BIN']}; {args.runs} cold loads; CPU windows of {args.seconds:.0f} s; "
          f"load average {os.getloadavg()[0]:.2f}")
    print()
    print("| measure | value | target (issue 9) | met |")
    print("|---|---|---|---|")
    print(f"| first load, compressed bytes of all {fl['files']} requests (index, {', '.join(fl['names'])}) | "
          f"{fl['bytes'] / 1000:.1f} kB ({fl['raw'] / 1000:.1f} kB uncompressed) | < 300 kB | "
          f"**{'yes' if fl['bytes'] < TARGET_BYTES else 'no'}** |")
    print(f"| the same with the bundled hls.js (fetched when a preview first plays) | "
          f"{(fl['bytes'] + hls_gz) / 1000:.1f} kB (hls.min.js {hls_gz / 1000:.1f} kB gzip, {hls_raw / 1000:.0f} kB raw) | "
          f"< 300 kB | **{'yes' if fl['bytes'] + hls_gz < TARGET_BYTES else 'no'}** |")
    print(f"| time to interactive, cold cache, loopback (median of {len(ready)}; min–max) | "
          f"{med:.0f} ms ({ready[0]:.0f}–{ready[-1]:.0f} ms) | < 1 s | **{'yes' if med < TARGET_TTI_MS else 'no'}** |")
    print(f"| reload, bytes transferred (hashed files from cache, index revalidated) | "
          f"{statistics.median(fl['reload']) / 1000:.1f} kB | — | — |")
    print(f"| Sign in → dashboard with data (median) | {dash:.0f} ms | — | — |")
    print(f"| appliance CPU, 10 Running events, no browser | {cpu['idle']:.2f} % of one core | — | — |")
    print(f"| appliance CPU, 10 Running events, dashboard open (refresh 3 s, {cpu['rps']:.1f} API requests/s) | "
          f"{cpu['dash']:.2f} % of one core (+{cpu['delta']:.2f}) | < 1 % | "
          f"**{'yes' if cpu['delta'] < TARGET_CPU_PCT else 'no'}** |")


if __name__ == "__main__":
    main()
