"""Playback URLs resolve their locator from memory for at most a second: deleting a locator
or its asset is seen by players within that second, and an unknown locator never resolves."""
import time
import uuid

from _api import Api


def playback(api: Api, lid: str):
    return api.raw("GET", f"/{lid}/output.ism/manifest(format=m3u8-cmaf)", auth=False)


def wait_code(api: Api, lid: str, code: str, timeout: float = 3.0):
    deadline = time.time() + timeout
    while True:
        r = playback(api, lid)
        if r.status == 404 and r.doc["error"]["code"] == code:
            return time.time()
        assert time.time() < deadline, f"still {r.status} {r.doc} after {timeout}s, want {code}"
        time.sleep(0.05)


def test_deleted_locator_stops_resolving_within_the_cache_lifetime(api):
    api.create_live_event("ev1")
    api.create_asset("a1")
    api.create_live_output("ev1", "out1", "a1", manifestName="output")
    lid = api.create_locator("loc1", "a1")["properties"]["streamingLocatorId"]
    # Resolved and cached: no media yet.
    wait_code(api, lid, "ManifestNotAvailable")
    r = api.call("DELETE", "streamingLocators/loc1")
    assert r.status in (200, 204), r
    t0 = time.time()
    t1 = wait_code(api, lid, "LocatorNotFound")
    assert t1 - t0 < 2.5


def test_unknown_locator_is_404(api):
    assert playback(api, str(uuid.uuid4())).doc["error"]["code"] == "LocatorNotFound"
