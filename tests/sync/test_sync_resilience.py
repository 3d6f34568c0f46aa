"""Issue 6: uploads survive the storage link going down and the appliance being killed, resuming
multipart uploads where they stopped (bytes counted by a proxy in front of the storage server); the
bandwidth cap holds; a live event tagged for live upload trails live in the container.

The outage stops the TCP proxy between the appliance and the storage server (listener closed, open
connections cut) and starts it again on the same port: to the appliance the storage endpoint is gone and
comes back. The storage process itself is not restarted because Azurite and moto run in memory here: a
restart would lose what they had stored, which no real storage service does."""
from __future__ import annotations

import time

import pytest

from _storage import Proxy, config_file, local_files
from _sync import asset_doc, check_copy, edge_sync, make_live, queue, record, wait_sync

pytestmark = pytest.mark.timeout(300)

CBR = ["-x264-params", "nal-hrd=cbr"]


def cbr(mbps: int) -> dict:
    return {"bitrate": f"{mbps}M", "extra": ["-minrate", f"{mbps}M", "-maxrate", f"{mbps}M", "-bufsize", f"{mbps}M", *CBR]}


def archive_bytes(app, asset: str) -> int:
    return sum(len(v) for v in local_files(app, asset_doc(app, asset)["properties"]["assetId"]).values())


def test_storage_outage_mid_upload_pauses_and_resumes(azurite, make_appliance, encoders, tmp_path):
    proxy = Proxy(azurite.port).start()
    cfg = config_file(tmp_path, azurite.storage_toml("venue", endpoint_port=proxy.port), default_storage="venue",
                      upload_part_size_kib=128, upload_max_mbps=8)
    app = make_appliance(cfg)
    live = make_live(app)
    record(live, encoders, segments=4, **cbr(3))
    total = archive_bytes(app, live.asset)
    s = wait_sync(app, live.asset, "uploading", pred=lambda s: s["bytesDone"] > 0.3 * s["bytesTotal"], timeout=60)
    proxy.stop()
    down = time.monotonic()
    # The worker notices, pauses (job pending with the reason; target unreachable), and backs off.
    s = wait_sync(app, live.asset, "pending", pred=lambda s: "unreachable" in (s["error"] or ""), timeout=30)
    assert s["nextAttemptAt"], s
    q = queue(app)
    assert q["targets"][0]["reachable"] is False, q["targets"]
    done_during = s["bytesDone"]
    time.sleep(max(0.0, 4.0 - (time.monotonic() - down)))
    assert edge_sync(app, live.asset)["bytesDone"] == done_during, "progress while the target was down"
    sent_before = proxy.bytes_up
    proxy.start()
    wait_sync(app, live.asset, timeout=90)
    check_copy(app, live.asset, azurite.objects())
    q = queue(app)
    assert q["targets"][0]["reachable"] is True
    # Resumed, not restarted: what was re-sent after the outage is at most the parts in flight
    # when the link went down (and the manifests and request headers).
    sent_after = proxy.bytes_up - sent_before
    print(f"outage: archive {total} B, done at outage {done_during} B, sent before {sent_before} B, after {sent_after} B")
    assert sent_after <= (total - done_during) * 1.05 + 3 * 128 * 1024 + 64 * 1024, (sent_after, total, done_during)
    assert proxy.bytes_up <= total * 1.1 + 4 * 128 * 1024, (proxy.bytes_up, total)
    assert q["stats"]["partsResumed"] >= 1, q["stats"]


def test_kill9_mid_multipart_upload_resumes_after_restart(moto, make_appliance, encoders, tmp_path):
    proxy = Proxy(moto.port).start()
    part = 5 * 1024 * 1024
    cfg = config_file(tmp_path, moto.storage_toml("s3venue", endpoint_port=proxy.port), default_storage="s3venue",
                      upload_part_size_kib=5120, upload_max_mbps=8)
    app = make_appliance(cfg)
    live = make_live(app)
    record(live, encoders, segments=3, **cbr(24))
    total = archive_bytes(app, live.asset)
    assert any(len(v) > part for v in local_files(app, asset_doc(app, live.asset)["properties"]["assetId"]).values())
    # Kill as soon as a 5 MiB part is committed: the object it belongs to is mid-upload.
    s = wait_sync(app, live.asset, "uploading", pred=lambda s: s["bytesDone"] >= part, timeout=90)
    app.kill9()
    done_at_kill = edge_sync_after_kill = None
    sent_before = proxy.bytes_up
    assert moto.pending_multipart(), "no multipart upload was open at the kill"
    app.start()
    edge_sync_after_kill = edge_sync(app, live.asset)
    done_at_kill = edge_sync_after_kill["bytesDone"]
    assert done_at_kill >= s["bytesDone"], (edge_sync_after_kill, s)
    wait_sync(app, live.asset, timeout=120)
    check_copy(app, live.asset, moto.objects())
    # Nothing duplicated: the upload open at the kill was completed, not abandoned for a new one.
    assert moto.pending_multipart() == [], moto.pending_multipart()
    q = queue(app)
    assert q["stats"]["partsResumed"] >= 1, q["stats"]
    sent_after = proxy.bytes_up - sent_before
    print(f"kill -9: archive {total} B, committed at kill {done_at_kill} B, sent before {sent_before} B, after {sent_after} B")
    assert sent_after <= (total - done_at_kill) * 1.03 + 64 * 1024, (sent_after, total, done_at_kill)


@pytest.mark.parametrize("set_by", ["config", "console"])
def test_upload_rate_stays_within_ten_percent_of_the_cap(azurite, make_appliance, encoders, tmp_path, set_by):
    """The cap from config.toml, or set at run time (PUT /edge/v1/sync/settings, as the console's Settings
    page does) on an appliance configured without one."""
    proxy = Proxy(azurite.port).start()
    mbps = 8
    cfg = config_file(tmp_path, azurite.storage_toml("venue", endpoint_port=proxy.port), default_storage="venue",
                      upload_part_size_kib=256, upload_max_mbps=mbps if set_by == "config" else 0)
    app = make_appliance(cfg)
    if set_by == "console":
        status, _, doc = app.json("PUT", "/edge/v1/sync/settings", {"uploadMaxMbps": mbps, "uploadUnlimitedWindow": ""})
        assert status == 200 and doc == {"uploadMaxMbps": mbps, "uploadUnlimitedWindow": "", "source": "console"}, doc
    live = make_live(app)
    record(live, encoders, segments=5, **cbr(6))
    t0 = time.monotonic()
    wait_sync(app, live.asset, timeout=90)
    took = time.monotonic() - t0
    rate, total, span = proxy.rate(skip_s=1.0)
    cap = mbps * 1_000_000 / 8
    print(f"rate cap {mbps} Mb/s: measured {rate * 8 / 1e6:.3f} Mb/s over {span:.1f} s ({total} B)")
    assert total > 2 * cap, f"too little data to measure a rate: {total} B"
    assert abs(rate - cap) <= 0.10 * cap, f"{rate * 8 / 1e6:.2f} Mb/s over {span:.1f}s (cap {mbps}; took {took:.1f}s)"


def test_live_upload_trails_the_event_and_completes_at_stop(azurite, make_appliance, encoders, tmp_path):
    cfg = config_file(tmp_path, azurite.storage_toml("venue"), default_storage="venue", upload_part_size_kib=128)
    app = make_appliance(cfg)
    live = make_live(app, tags={"edgeSync": "live"})
    container = asset_doc(app, live.asset)["properties"]["container"]
    enc = encoders(live.rtmp_url(), duration=None)
    # While the event runs, segments reach the container (manifests only once it ends).
    deadline = time.monotonic() + 60
    while True:
        enc.assert_alive()
        keys = [k for k in azurite.objects(container + "/") if k.endswith(".m4s") and "/video/" in k]
        if len(keys) >= 3:
            break
        assert time.monotonic() < deadline, f"live upload: {keys}; {edge_sync(app, live.asset)}"
        time.sleep(0.5)
    s = edge_sync(app, live.asset)
    assert s["live"] is True and s["state"] in ("uploading", "pending"), s
    assert live.resource_state() == "Running"
    assert f"{container}/index.m3u8" not in azurite.objects(container + "/")
    enc.stop()
    live.stop()
    wait_sync(app, live.asset, timeout=60, pred=lambda s: not s["live"])
    check_copy(app, live.asset, azurite.objects())
