"""Issue 6, disk policy on a small filesystem the test creates (tmpfs, 64 MiB; needs root): when free
space falls below disk-min-free-percent the oldest *synced* archive loses its local copy (its cloud copy
stays); an unsynced archive is never deleted; when unsynced data alone fills the disk, new recordings
are refused with a clear status and stream event, and accepted again once space is back."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from appliance import free_port
from _media import fetch
from _storage import config_file, local_files, md5_b64
from _sync import asset_doc, edge_sync, make_live, queue, record, wait_sync

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")]

MIN_FREE = 50  # percent of the 64 MiB filesystem: 32 MiB


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def usage(path: Path) -> tuple[int, int]:
    s = os.statvfs(path)
    return s.f_blocks * s.f_frsize, s.f_bavail * s.f_frsize


def fill(path: Path, name: str, nbytes: int) -> Path:
    p = path / name
    with open(p, "wb") as f:
        f.write(b"\0" * max(0, nbytes))
    return p


def test_only_synced_archives_are_deleted_and_a_full_disk_refuses_new_recordings(small_fs, make_appliance,
                                                                                   encoders, tmp_path):
    cloud = tmp_path / "cloud"
    dead = free_port()  # an S3 endpoint nobody answers: archives for it stay unsynced
    cfg = config_file(
        tmp_path,
        f'[storage.good]\nkind = "dir"\npath = "{cloud}"\n',
        f'[storage.down]\nkind = "s3"\nbucket = "b"\nregion = "us-east-1"\nendpoint = "http://127.0.0.1:{dead}"\n'
        'allow-http = true\naccess-key-id = "k"\nsecret-access-key = "s"\n',
        disk_min_free_percent=MIN_FREE)
    data = small_fs / "data"
    app = make_appliance(cfg, data_dir=str(data))

    a = make_live(app, storage="good", prefix="synced")
    record(a, encoders, segments=3)
    wait_sync(app, a.asset)
    a_id = asset_doc(app, a.asset)["properties"]["assetId"]
    a_files = local_files(app, a_id)
    b = make_live(app, storage="down", prefix="unsynced")
    record(b, encoders, segments=3)
    b_id = asset_doc(app, b.asset)["properties"]["assetId"]
    b_files = local_files(app, b_id)
    wait_sync(app, b.asset, "pending", pred=lambda s: "unreachable" in (s["error"] or ""), timeout=30)
    time.sleep(6)  # a few disk passes with plenty of space: nothing is deleted
    assert edge_sync(app, a.asset)["localCopyRemovedAt"] is None
    assert local_files(app, a_id) == a_files

    # 1. Free space just below the threshold: the synced archive goes, the unsynced one stays.
    total, avail = usage(small_fs)
    want = total * MIN_FREE // 100
    a_size = sum(len(v) for v in a_files.values())
    fill(small_fs, "filler1", avail - (want - a_size // 2))
    s = wait_sync(app, a.asset, "synced", pred=lambda s: s["localCopyRemovedAt"] is not None, timeout=30)
    assert not (data / "assets" / a_id).exists(), "the synced archive's local copy is still there"
    # Its locator URL says where the recording went instead of "no media yet".
    got = fetch(a.hls_url)
    assert got.status == 410 and b"RecordingArchived" in got.body and b"'good'" in got.body, (got.status, got.body)
    assert local_files(app, b_id) == b_files, "an unsynced archive was touched"
    container = asset_doc(app, a.asset)["properties"]["container"]
    for rel, blob in a_files.items():
        assert md5_b64((cloud / container / rel).read_bytes()) == md5_b64(blob), f"cloud copy of {rel} damaged"
    assert queue(app)["disk"]["recordingRefused"] is False

    # 2. The rest is unsynced data: new recordings are refused, clearly, and nothing is deleted.
    _, avail = usage(small_fs)
    filler2 = fill(small_fs, "filler2", avail - (want - 4 * 1024 * 1024))
    deadline = time.monotonic() + 20
    while not queue(app)["disk"]["recordingRefused"]:
        assert time.monotonic() < deadline, queue(app)["disk"]
        time.sleep(0.25)
    d = queue(app)["disk"]
    assert "not yet synced" in d["reason"] and "disk-min-free-percent" in d["reason"], d
    c = make_live(app, storage="down", prefix="refused")
    enc = encoders(c.rtmp_url(), duration=None)
    deadline = time.monotonic() + 30
    while True:
        enc.assert_alive()
        evs = [e for e in c.stream_events() if e["eventType"].endswith("RecordingError")]
        if evs:
            break
        assert time.monotonic() < deadline, c.stream_events()
        time.sleep(0.5)
    assert "recording refused" in evs[0]["data"]["resultMessage"], evs[0]
    assert "not yet synced" in evs[0]["data"]["resultMessage"], evs[0]
    c_id = asset_doc(app, c.asset)["properties"]["assetId"]
    assert local_files(app, c_id) == {}, "a refused recording wrote files"
    assert local_files(app, b_id) == b_files, "an unsynced archive was deleted"

    # 3. Space is back: recordings are accepted again, on their own.
    filler2.unlink()
    deadline = time.monotonic() + 20
    while queue(app)["disk"]["recordingRefused"]:
        assert time.monotonic() < deadline, queue(app)["disk"]
        time.sleep(0.25)
    deadline = time.monotonic() + 30
    while not local_files(app, c_id):
        enc.assert_alive()
        assert time.monotonic() < deadline, "recording did not resume once space was back"
        time.sleep(0.5)
    # The refusal was said once, not at every segment, and the resumption is said too.
    evs = c.stream_events()
    errors = [e for e in evs if e["eventType"].endswith("RecordingError")]
    assert len(errors) == 1, errors
    deadline = time.monotonic() + 10
    while not any(e["eventType"].endswith("RecordingResumed") for e in c.stream_events()):
        assert time.monotonic() < deadline, c.stream_events()
        time.sleep(0.25)
    enc.stop()
