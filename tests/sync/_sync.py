"""Archive sync helpers: record a short live event with ffmpeg (the live suites' helpers, imported),
stop it, and follow its sync through the API."""
from __future__ import annotations

import time

from _api import Api
from _live import Live, live_event_body, paths_from_list_paths, setup_live, unique, wait_segments
from _media import iso_duration
from _storage import local_files, md5_b64


def make_live(app, *, storage: str | None = None, tags: dict | None = None, prefix: str = "sync") -> Live:
    """A started live event recording into a new asset (with `storageAccountName` = storage, if given)."""
    if storage is None and tags is None:
        return setup_live(app, prefix=prefix)
    api = Api(app)
    event, asset, output, loc = unique(f"{prefix}-"), unique(f"{prefix}-asset-"), unique("out"), unique("loc-")
    body = live_event_body()
    if tags:
        body["tags"] = tags
    token = api.create_live_event(event, body)["properties"]["input"]["accessToken"]
    api.create_asset(asset, {"storageAccountName": storage} if storage else None)
    api.create_live_output(event, output, asset)
    api.start_live_event(event)
    locator_id = api.create_locator(loc, asset)["properties"]["streamingLocatorId"]
    r = api.meta("POST", f"streamingLocators/{loc}/listPaths")
    hls, dash = paths_from_list_paths(r.doc)
    return Live(app, api, event, asset, output, loc, token, locator_id, hls, dash, iso_duration("PT5M"))


def record(live: Live, encoders, *, segments: int = 4, stop: bool = True, **enc_kw) -> None:
    """Pushes ffmpeg into the event until `segments` video segments are recorded, then (by default)
    stops the encoder and the event: the stop queues the archive."""
    enc = encoders(live.rtmp_url(), duration=None, **enc_kw)
    wait_segments(live, segments, encoder=enc, timeout=60)
    if stop:
        enc.stop()
        live.stop()


def asset_doc(app, name: str) -> dict:
    st, _, doc = app.json("GET", f"{app.arm_prefix()}/assets/{name}?api-version=2022-08-01")
    assert st == 200, doc
    return doc


def edge_sync(app, asset: str) -> dict | None:
    return asset_doc(app, asset)["properties"]["edgeSync"]


def queue(app) -> dict:
    st, _, doc = app.json("GET", "/edge/v1/sync")
    assert st == 200, doc
    return doc


def wait_sync(app, asset: str, state: str = "synced", timeout: float = 90.0, pred=None) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = edge_sync(app, asset)
        if last and last["state"] == state and (pred is None or pred(last)):
            return last
        time.sleep(0.25)
    raise AssertionError(f"asset {asset}: sync state not {state} in {timeout}s: {last}; queue {queue(app)}")


def check_copy(app, asset: str, objects: dict[str, bytes]) -> dict[str, bytes]:
    """The copy holds every recorded file byte for byte (MD5s match) under `<container>/`, plus the
    static manifests, and nothing else. Returns the copy's objects under the prefix, relative."""
    doc = asset_doc(app, asset)
    container, asset_id = doc["properties"]["container"], doc["properties"]["assetId"]
    local = local_files(app, asset_id)
    assert local, "nothing recorded"
    copy = {k[len(container) + 1:]: v for k, v in objects.items() if k.startswith(container + "/")}
    manifests = {"index.m3u8", "manifest.mpd"} | {f"{r}/index.m3u8" for r in {k.split('/')[0] for k in local}}
    assert set(copy) == set(local) | manifests, (sorted(set(copy) ^ (set(local) | manifests)))
    bad = [k for k in local if md5_b64(local[k]) != md5_b64(copy[k])]
    assert not bad, f"checksums differ for {bad}"
    total = sum(len(v) for v in local.values())
    sync = edge_sync(app, asset)
    assert sync["bytesDone"] == sync["bytesTotal"] >= total, sync
    return copy
