"""Issue 6, end to end against real storage servers: a recorded event is stopped, its archive appears
in the container complete (every file, byte for byte, plus static HLS and DASH manifests), and the
HLS manifest plays from the container's URL in headless Chromium (hls.js)."""
from __future__ import annotations

import pytest

from _media import parse_media, parse_multivariant
from _procs import advanced
from _storage import config_file
from _sync import check_copy, make_live, queue, record, wait_sync

pytestmark = pytest.mark.timeout(240)


def test_azurite_archive_is_complete_and_plays_from_the_container(azurite, make_appliance, encoders, player,
                                                                    tmp_path):
    cfg = config_file(tmp_path, azurite.storage_toml("venue"), default_storage="venue", upload_part_size_kib=128)
    app = make_appliance(cfg)
    live = make_live(app)
    record(live, encoders, segments=4)
    sync = wait_sync(app, live.asset)
    # Segments of ~300 KB go up as 128 KiB blocks: the block path is exercised.
    copy = check_copy(app, live.asset, azurite.objects())
    mv = parse_multivariant(copy["index.m3u8"].decode())
    assert mv, copy["index.m3u8"]
    media = parse_media(copy["video/index.m3u8"].decode())
    assert media.endlist and len(media.segments) >= 4, copy["video/index.m3u8"]
    assert b"<MPD" in copy["manifest.mpd"] and b'type="static"' in copy["manifest.mpd"]
    url = sync["url"]
    assert url == f"{azurite.account_url}/{azurite.container}/{live_container(app, live.asset)}/index.m3u8", sync
    q = queue(app)
    assert [t["name"] for t in q["targets"]] == ["venue"] and q["targets"][0]["reachable"] is True, q
    assert q["stats"]["md5Verified"] >= len(copy) - 4, q["stats"]
    assert q["stats"]["md5Mismatches"] == 0
    # Playable straight from blob storage (anonymous reads, CORS), no appliance involved.
    app.stop()
    player.open("cloud-hls", "hls", url)
    player.wait_for("cloud-hls", lambda s: advanced(s, 4.0), 40, "playback of the cloud copy past 4 s")


def live_container(app, asset: str) -> str:
    from _sync import asset_doc
    return asset_doc(app, asset)["properties"]["container"]


def test_s3_archive_is_complete_with_multipart_and_checksums(moto, make_appliance, encoders, tmp_path):
    # CBR 24 Mb/s with filler: ~6 MB video segments, above the 5 MiB S3 part size.
    cfg = config_file(tmp_path, moto.storage_toml("s3venue"), default_storage="s3venue", upload_part_size_kib=5120)
    app = make_appliance(cfg)
    live = make_live(app)
    record(live, encoders, segments=3, bitrate="24M",
           extra=["-minrate", "24M", "-maxrate", "24M", "-bufsize", "24M", "-x264-params", "nal-hrd=cbr"])
    wait_sync(app, live.asset, timeout=120)
    objects = moto.objects()
    copy = check_copy(app, live.asset, objects)
    big = [k for k, v in copy.items() if len(v) > 5 * 1024 * 1024]
    assert big, f"no file above the part size: {[(k, len(v)) for k, v in copy.items()]}"
    # Multipart objects have S3's "<md5 of part md5s>-<parts>" ETag: they went up in parts.
    s3 = moto.client()
    container = live_container(app, live.asset)
    etag = s3.head_object(Bucket=moto.bucket, Key=f"{container}/{big[0]}")["ETag"]
    assert etag.strip('"').endswith("-2"), etag
    assert moto.pending_multipart() == [], "an upload was left open"


def test_unknown_storage_account_is_refused_at_create(azurite, make_appliance, tmp_path):
    cfg = config_file(tmp_path, azurite.storage_toml("venue"))
    app = make_appliance(cfg)
    pre = f"{app.arm_prefix()}/assets"
    st, _, doc = app.json("PUT", f"{pre}/a1?api-version=2022-08-01", {"properties": {"storageAccountName": "nope"}})
    assert st == 400, doc
    assert doc["error"]["code"] == "InvalidParameter", doc
    assert "'nope'" in doc["error"]["message"] and "venue" in doc["error"]["message"], doc
    st, _, doc = app.json("PUT", f"{pre}/a2?api-version=2022-08-01", {"properties": {"storageAccountName": "Venue"}})
    assert st == 201, doc
    assert doc["properties"]["edgeSync"] is None, doc
    # The retry endpoint explains why there is nothing to sync yet.
    st, _, doc = app.json("POST", "/edge/v1/sync/a2/retry")
    assert st == 409, doc
    st, _, doc = app.json("POST", "/edge/v1/sync/missing/retry")
    assert st == 404, doc
    st, _, _ = app.json("GET", "/edge/v1/sync", auth=False)
    assert st == 401


def test_a_permanent_failure_shows_its_reason_and_retry_completes_the_copy(azurite, make_appliance, encoders,
                                                                           tmp_path):
    # The target's container does not exist yet: the copy fails (not retried forever) with the reason.
    toml = azurite.storage_toml("venue").replace(f'container = "{azurite.container}"', 'container = "later"')
    cfg = config_file(tmp_path, toml, default_storage="venue")
    app = make_appliance(cfg)
    live = make_live(app)
    record(live, encoders, segments=3)
    s = wait_sync(app, live.asset, "failed", timeout=60)
    assert "not found" in s["error"] and "container or bucket" in s["error"], s
    q = queue(app)
    assert [j["assetName"] for j in q["value"]] == [live.asset] and q["value"][0]["state"] == "failed", q
    # The operator creates the container and retries: the copy completes.
    azurite.service().create_container("later")
    st, _, doc = app.json("POST", f"/edge/v1/sync/{live.asset}/retry")
    assert st == 202 and doc["state"] == "pending" and doc["error"] is None, doc
    wait_sync(app, live.asset, timeout=60)
    c = azurite.service().get_container_client("later")
    check_copy(app, live.asset, {b.name: c.download_blob(b.name).readall() for b in c.list_blobs()})
