"""Archive sync benchmark of issue 6 (not a test: it measures, it asserts nothing).

Upload throughput of rms-edge's archive sync to Azurite (Azure Blob) and to moto's S3 server on
loopback, side by side with the official Python SDKs uploading the same files to the same servers
in the same run (azcopy is not available here): azure-storage-blob `upload_blob` and boto3
`upload_file`, both with their default settings. CPU and memory per MB/s for each uploader.

How: one live event records the same ffmpeg stream (CBR, --mbps) for --seconds into two assets, one
per storage target (two live outputs). Stopping the event queues both archives (the first sync).
Then, --rounds times, interleaved: rms-edge uploads each archive again
(`POST /edge/v1/sync/{asset}/retry?resync=true`, timed from the request to `synced`, the asset
polled every 20 ms, with rms-edge's CPU from /proc and its RSS sampled over the same window), and
each SDK uploads the same asset directory in a fresh process (timed, with its CPU and peak RSS, from
its first request to its last, excluding interpreter start-up). Medians are reported: the machine is
shared, and single runs of ~1 s vary by tens of percent. The storage servers' CPU is not counted.

Usage: python3 bench/sync_bench.py [--bin target/release/rms-edge] [--seconds 30] [--mbps 20]
Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in ("tests/sync", "tests/harness", "tests/api", "tests/live"):
    sys.path.insert(0, str(ROOT / p))

from _api import Api  # noqa: E402
from _live import live_event_body, unique  # noqa: E402
from _procs import Encoder  # noqa: E402
from _storage import AZ_ACCOUNT, AZ_KEY, Azurite, Moto, config_file  # noqa: E402
from appliance import Appliance  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
CLK = os.sysconf("SC_CLK_TCK")

SDK_AZURE = """
import json, os, resource, sys, time
from azure.storage.blob import BlobServiceClient
root, url, container, prefix = sys.argv[1:5]
conn = f"DefaultEndpointsProtocol=http;AccountName={AZ_ACCOUNT};AccountKey={AZ_KEY};BlobEndpoint={url};"
c = BlobServiceClient.from_connection_string(conn).get_container_client(container)
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
n = 0
for p in files:
    with open(p, "rb") as f:
        c.upload_blob(prefix + "/" + os.path.relpath(p, root), f, overwrite=True)
    n += os.path.getsize(p)
t1, r1 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"bytes": n, "secs": t1 - t0, "cpu": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
                  "rss_kb": r1.ru_maxrss}))
"""

SDK_S3 = """
import json, os, resource, sys, time
import boto3
root, endpoint, bucket, prefix = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                  aws_secret_access_key="test")
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
s3.head_bucket(Bucket=bucket)
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
n = 0
for p in files:
    s3.upload_file(p, bucket, prefix + "/" + os.path.relpath(p, root))
    n += os.path.getsize(p)
t1, r1 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"bytes": n, "secs": t1 - t0, "cpu": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
                  "rss_kb": r1.ru_maxrss}))
"""


def proc_cpu(pid: int) -> float:
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK


def proc_rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def edge_sync(app: Appliance, asset: str) -> dict | None:
    st, _, doc = app.json("GET", f"{app.arm_prefix()}/assets/{asset}?api-version=2022-08-01")
    assert st == 200, doc
    return doc["properties"]


def wait_synced(app: Appliance, asset: str) -> dict:
    deadline = time.monotonic() + 1800
    while True:
        s = edge_sync(app, asset)["edgeSync"]
        if s and s["state"] == "synced":
            return s
        assert not (s and s["state"] == "failed"), s
        assert time.monotonic() < deadline, "sync did not finish in 30 min"
        time.sleep(0.02)


def edge_round(app: Appliance, asset: str) -> dict:
    """One full re-upload of an archive by rms-edge: seconds, CPU, peak RSS."""
    pid = app.proc.pid
    c0, r0 = proc_cpu(pid), proc_rss_kb(pid)
    t0 = time.monotonic()
    st, _, doc = app.json("POST", f"/edge/v1/sync/{asset}/retry?resync=true")
    assert st == 202, doc
    peak = r0
    while True:
        s = edge_sync(app, asset)["edgeSync"]
        peak = max(peak, proc_rss_kb(pid))
        if s["state"] == "synced" and s["bytesDone"] == s["bytesTotal"]:
            break
        assert s["state"] != "failed", s
        time.sleep(0.02)
    return {"bytes": s["bytesTotal"], "secs": time.monotonic() - t0, "cpu": proc_cpu(pid) - c0, "rss_kb": peak,
            "rss_before_kb": r0}


def median_run(runs: list[dict]) -> dict:
    """The run with the median duration (its CPU and RSS with it)."""
    return sorted(runs, key=lambda r: r["secs"])[len(runs) // 2]


def row(target: str, who: str, m: dict, ref: dict | None) -> str:
    mb = m["bytes"] / 1e6
    mbps = mb / m["secs"]
    cpu_ms_per_mb = m["cpu"] * 1000 / mb
    ratio = "" if ref is None else f"{mbps / (ref['bytes'] / 1e6 / ref['secs']):.2f}x"
    return (f"| {target} | {who} | {mb:.1f} | {m['secs']:.2f} | {mbps:.1f} | {ratio} | {cpu_ms_per_mb:.1f} | "
            f"{m['cpu'] * 100 / m['secs']:.0f}% | {m['rss_kb'] / 1024:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    rel = ROOT / "target" / "release" / "rms-edge"
    ap.add_argument("--bin", default=str(rel if rel.exists() else ROOT / "target" / "debug" / "rms-edge"))
    ap.add_argument("--seconds", type=int, default=30, help="media recorded per asset")
    ap.add_argument("--mbps", type=int, default=20, help="encoder CBR bitrate")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved uploads per uploader (median reported)")
    args = ap.parse_args()
    os.environ["RMS_EDGE_BIN"] = args.bin
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    az, s3 = Azurite(tmp).start(), Moto(tmp).start()
    app = None
    try:
        cfg = config_file(tmp, az.storage_toml("az"), s3.storage_toml("s3"), upload_part_size_kib=8192)
        app = Appliance(extra_args=["--config", cfg]).start()
        api = Api(app)
        ev = unique("bench-")
        token = api.create_live_event(ev, live_event_body())["properties"]["input"]["accessToken"]
        assets = {"az": unique("bench-az-"), "s3": unique("bench-s3-")}
        for tgt, a in assets.items():
            api.create_asset(a, {"storageAccountName": tgt})
            api.create_live_output(ev, unique("out"), a)
        api.start_live_event(ev)
        m = args.mbps
        enc = Encoder(f"rtmp://127.0.0.1:{app.rtmp_port}/live/{token}", tmp, duration=args.seconds,
                      bitrate=f"{m}M", extra=["-minrate", f"{m}M", "-maxrate", f"{m}M", "-bufsize", f"{m}M",
                                              "-x264-params", "nal-hrd=cbr"]).start()
        enc.wait(args.seconds + 60)
        time.sleep(2)
        api.stop_live_event(ev)
        for a in assets.values():
            wait_synced(app, a)
        ids = {t: edge_sync(app, a)["assetId"] for t, a in assets.items()}
        root = Path(app.data_dir) / "assets"
        sdk_cmd = {
            "az": [PY, "-c", f"AZ_ACCOUNT={AZ_ACCOUNT!r}\nAZ_KEY={AZ_KEY!r}\n" + SDK_AZURE, str(root / ids["az"]),
                   az.account_url, az.container, "sdk-copy"],
            "s3": [PY, "-c", SDK_S3, str(root / ids["s3"]), f"http://127.0.0.1:{s3.port}", s3.bucket, "sdk-copy"],
        }
        edge_runs: dict[str, list] = {"az": [], "s3": []}
        sdk_runs: dict[str, list] = {"az": [], "s3": []}
        for _ in range(args.rounds):
            for t in ("az", "s3"):
                edge_runs[t].append(edge_round(app, assets[t]))
                r = subprocess.run(sdk_cmd[t], capture_output=True, text=True, check=True)
                sdk_runs[t].append(json.loads(r.stdout))
        edge = {assets[t]: median_run(edge_runs[t]) for t in ("az", "s3")}
        sdk = {t: median_run(sdk_runs[t]) for t in ("az", "s3")}
        print(f"rms-edge binary: {args.bin}; {args.seconds} s of {args.mbps} Mb/s CBR per asset; "
              f"{os.cpu_count()} cores; loopback; part size 8 MiB (rms-edge), SDK defaults; "
              f"median of {args.rounds} interleaved rounds.")
        for t in ("az", "s3"):
            print(f"  {t}: rms-edge s {[round(r['secs'], 2) for r in edge_runs[t]]}, "
                  f"SDK s {[round(r['secs'], 2) for r in sdk_runs[t]]}")
        print()
        print("| target | uploader | MB | s | MB/s | vs SDK | CPU ms per MB | CPU (% of a core) | RSS MB (peak) |")
        print("|---|---|---|---|---|---|---|---|---|")
        names = {"az": ("Azurite", "azure-storage-blob"), "s3": ("moto S3", "boto3")}
        for t in ("az", "s3"):
            e = edge[assets[t]]
            print(row(names[t][0], "rms-edge", e, sdk[t]))
            print(row(names[t][0], names[t][1], sdk[t], None))
        for t in ("az", "s3"):
            e = edge[assets[t]]
            print(f"\nrms-edge RSS before the {names[t][0]} upload: {e['rss_before_kb'] / 1024:.0f} MB, "
                  f"peak during it: {e['rss_kb'] / 1024:.0f} MB")
    finally:
        if app:
            app.stop()
            app.cleanup()
        az.stop()
        s3.stop()


if __name__ == "__main__":
    main()
