"""RMS live quickstart (12 steps) driven through the official Python SDK, azure-mgmt-media 10.2.1.

Every test runs over HTTPS (self-signed cert trusted via connection_verify) and over plain HTTP.
What the SDK accepts (from the generated code, azure-mgmt-media 10.2.1 / azure-mgmt-core ARMPolling):
  live_events.begin_create 200|201, begin_start/stop/allocate/reset 200|202, begin_delete 200|202|204;
  live_outputs.begin_create 200|201, begin_delete 200|202|204; assets.create_or_update 200|201;
  streaming_locators.create 201 only; list_paths 200; streaming_endpoints.get 200.
  LRO: Azure-AsyncOperation polled until status Succeeded/Failed/Canceled, then final GET (PUT: resource
  URL; POST: Location URL); Retry-After drives the interval (SDK default would be 30 s).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ResourceExistsError,
                                   ResourceNotFoundError)
from azure.core.rest import HttpRequest
from azure.mgmt.media.models import (Asset, IPAccessControl, IPRange, LiveEvent, LiveEventActionInput,
                                     LiveEventEncoding, LiveEventInput, LiveEventInputAccessControl, LiveOutput,
                                     StreamingLocator)

from sdk_helpers import StaticTokenCredential, make_client, unique

pytestmark = pytest.mark.timeout(600)

LRO_LIMIT_S = 20.0  # an appliance LRO plus Retry-After: 1 polling; >= 30 s means the SDK fell back to its default


def quickstart_live_event() -> LiveEvent:
    """Step 1 request body of the RMS quickstart, expressed with the SDK models."""
    return LiveEvent(
        location="West Europe",
        description="",
        input=LiveEventInput(
            streaming_protocol="RTMP",
            key_frame_interval_duration="PT2S",
            access_control=LiveEventInputAccessControl(
                ip=IPAccessControl(allow=[IPRange(name="AllowAll", address="0.0.0.0", subnet_prefix_length=0)])),
        ),
        encoding=LiveEventEncoding(encoding_type="PassthroughStandard"),
        stream_options=["Default"],
    )


def wait(poller, what: str):
    t0 = time.monotonic()
    result = poller.result()
    took = time.monotonic() - t0
    assert poller.status().lower() == "succeeded", f"{what}: poller status {poller.status()}"
    assert took < LRO_LIMIT_S, (f"{what} took {took:.1f}s: the SDK waited its default 30 s polling interval, "
                                f"so the server did not send Retry-After (or the operation is slow)")
    return result


def rg_acct(app):
    return app.RESOURCE_GROUP, app.ACCOUNT


def raw(client, method: str, path: str, api_version: str = "2022-11-01", json_body=None):
    """Call an action the Python SDK has no method for, through the SDK pipeline (auth, TLS, retries)."""
    sep = "&" if "?" in path else "?"
    req = HttpRequest(method, f"{path}{sep}api-version={api_version}", json=json_body)
    return client._send_request(req)


def cleanup_event(client, app, name: str) -> None:
    rg, acct = rg_acct(app)
    for op in (lambda: client.live_events.begin_stop(rg, acct, name, LiveEventActionInput(remove_outputs_on_stop=True)),
               lambda: client.live_events.begin_delete(rg, acct, name)):
        try:
            op().result()
        except Exception:  # best effort: the test already failed if we get here with a live event
            pass


# ---------------------------------------------------------------------------------------------
def test_quickstart_12_steps(appliance, client, scheme):
    app = appliance
    rg, acct = rg_acct(app)
    event, asset, output, locator = unique(f"qs-{scheme}-"), unique("Video-"), unique("out"), unique("loc-")
    le_path = f"{app.arm_prefix()}/liveEvents/{event}"
    try:
        # 1. Create a live event (LRO) -> Stopped, with ingest URLs and stream key right away (RMS behaviour).
        created = wait(client.live_events.begin_create(rg, acct, event, quickstart_live_event()), "create live event")
        assert created.name == event
        assert created.provisioning_state == "Succeeded"
        assert created.resource_state == "Stopped"
        assert created.input.streaming_protocol == "RTMP"
        assert created.encoding.encoding_type == "PassthroughStandard"
        assert created.stream_options == ["Default"]
        check_ingest(app, created)

        # 2. Create an asset (storageAccountName omitted: the appliance uses its default storage).
        a = client.assets.create_or_update(rg, acct, asset, Asset())
        assert a.name == asset
        assert a.asset_id and uuid.UUID(str(a.asset_id))

        # 3. Create a live output (LRO), archiveWindowLength PT5M.
        lo = wait(client.live_outputs.begin_create(
            rg, acct, event, output, LiveOutput(asset_name=asset, archive_window_length="PT5M")), "create live output")
        assert lo.name == output and lo.asset_name == asset
        assert lo.archive_window_length.total_seconds() == 300
        assert lo.provisioning_state == "Succeeded"

        # 4. Start (LRO). "Starting a live event completes only once the event reaches Running state."
        assert wait(client.live_events.begin_start(rg, acct, event), "start live event") is None
        started = client.live_events.get(rg, acct, event)
        assert started.resource_state == "Running", "begin_start().result() returned before the event was Running"
        assert started.provisioning_state == "Succeeded"

        # 5. Check status: POST getStatus (2022-11-01; no Python SDK method) -> 200 synchronously.
        resp = raw(client, "POST", f"{le_path}/getStatus")
        assert resp.status_code == 200, f"getStatus: {resp.status_code} {resp.text()[:500]}"
        status = resp.json()
        assert isinstance(status.get("value"), list) and status["value"], status
        assert status["value"][0].get("state") == "Running", status

        # 6. Encoder settings come from the event: endpoints[0] RTMP url, endpoints[1] RTMPS url, accessToken.
        check_ingest(app, started)
        assert started.input.access_token == created.input.access_token

        # 7. Streaming locator (201 only) for the asset.
        loc = client.streaming_locators.create(rg, acct, locator, StreamingLocator(
            asset_name=asset, streaming_policy_name="Predefined_ClearStreamingOnly"))
        assert loc.name == locator and loc.asset_name == asset
        assert loc.streaming_policy_name == "Predefined_ClearStreamingOnly"
        locator_id = str(loc.streaming_locator_id)
        uuid.UUID(locator_id)

        # 8. List paths: HLS m3u8-cmaf and DASH mpd-time-cmaf under /<locatorId>/.
        paths = client.streaming_locators.list_paths(rg, acct, locator)
        by_proto = {p.streaming_protocol: p for p in paths.streaming_paths}
        assert "Hls" in by_proto and "Dash" in by_proto, [p.as_dict() for p in paths.streaming_paths]
        hls, dash = by_proto["Hls"].paths, by_proto["Dash"].paths
        assert any(re.fullmatch(rf"/{locator_id}/[^/]+\.ism/manifest\(format=m3u8-cmaf\)", p) for p in hls), hls
        assert any(re.fullmatch(rf"/{locator_id}/[^/]+\.ism/manifest\(format=mpd-time-cmaf\)", p) for p in dash), dash
        for p in paths.streaming_paths:
            assert p.encryption_scheme == "NoEncryption"
            assert all(x.startswith(f"/{locator_id}/") for x in p.paths), p.paths

        # 9. Streaming endpoint 'default': hostName is the public host players put after https://.
        se = client.streaming_endpoints.get(rg, acct, "default")
        assert se.name == "default"
        assert se.host_name == f"127.0.0.1:{app.https_port}"
        assert se.resource_state == "Running"

        # (10. playback verification needs an encoder: see test_quickstart_live_playback.)

        # 11. Stop (LRO; the SDK always sends a body, {} here) -> Stopped, live outputs removed, asset kept.
        assert wait(client.live_events.begin_stop(rg, acct, event, LiveEventActionInput()), "stop live event") is None
        stopped = client.live_events.get(rg, acct, event)
        assert stopped.resource_state == "Stopped"
        assert list(client.live_outputs.list(rg, acct, event)) == [], "stop must delete the live outputs (RMS)"
        with pytest.raises(ResourceNotFoundError):
            client.live_outputs.get(rg, acct, event, output)
        assert client.assets.get(rg, acct, asset).name == asset
        assert client.streaming_locators.get(rg, acct, locator).name == locator

        # 12. Delete (LRO) -> gone.
        wait(client.live_events.begin_delete(rg, acct, event), "delete live event")
        with pytest.raises(ResourceNotFoundError) as ei:
            client.live_events.get(rg, acct, event)
        assert ei.value.error is not None and ei.value.error.code, "404 without an ARM error envelope"
        assert event not in [e.name for e in client.live_events.list(rg, acct)]

        # The token was fetched once and reused (exp parsed from the JWT, 1 h).
        assert client.rms_credential.calls == 1
    finally:
        cleanup_event(client, app, event)


def check_ingest(app, ev: LiveEvent) -> None:
    inp = ev.input
    assert inp.access_token, "input.accessToken (stream key) missing"
    eps = inp.endpoints or []
    assert len(eps) >= 2, f"expected RTMP and RTMPS ingest endpoints, got {[e.as_dict() for e in eps]}"
    rtmp, rtmps = urllib.parse.urlparse(eps[0].url), urllib.parse.urlparse(eps[1].url)
    assert eps[0].protocol.upper() == "RTMP" and rtmp.scheme == "rtmp", eps[0].as_dict()
    assert eps[1].protocol.upper() in ("RTMP", "RTMPS") and rtmps.scheme == "rtmps", eps[1].as_dict()
    assert (rtmp.hostname, rtmp.port) == ("127.0.0.1", app.rtmp_port), eps[0].url
    assert (rtmps.hostname, rtmps.port) == ("127.0.0.1", app.rtmps_port), eps[1].url
    # RTMP/RTMPS: the key is entered separately, it is not part of the URL (RMS).
    assert inp.access_token not in eps[0].url


# ---------------------------------------------------------------------------------------------
def test_allocate_start_reset_stop(appliance, client, scheme):
    app = appliance
    rg, acct = rg_acct(app)
    event, asset, output = unique(f"ar-{scheme}-"), unique("ar-asset-"), unique("arout")
    try:
        wait(client.live_events.begin_create(rg, acct, event, quickstart_live_event()), "create")
        assert wait(client.live_events.begin_allocate(rg, acct, event), "allocate") is None
        assert client.live_events.get(rg, acct, event).resource_state == "StandBy"

        wait(client.live_events.begin_start(rg, acct, event), "start from StandBy")
        assert client.live_events.get(rg, acct, event).resource_state == "Running"

        client.assets.create_or_update(rg, acct, asset, Asset(description="reset test"))
        wait(client.live_outputs.begin_create(rg, acct, event, output,
                                              LiveOutput(asset_name=asset, archive_window_length="PT5M")), "output")
        assert [o.name for o in client.live_outputs.list(rg, acct, event)] == [output]

        # Delete of a Running live event -> 409 -> ResourceExistsError (the SDK maps 409).
        with pytest.raises(ResourceExistsError):
            client.live_events.begin_delete(rg, acct, event)

        # Reset: outputs deleted, event back to Running, the asset untouched.
        assert wait(client.live_events.begin_reset(rg, acct, event), "reset") is None
        ev = client.live_events.get(rg, acct, event)
        assert ev.resource_state == "Running"
        assert list(client.live_outputs.list(rg, acct, event)) == [], "reset must delete all live outputs"
        assert client.assets.get(rg, acct, asset).description == "reset test"

        wait(client.live_events.begin_stop(rg, acct, event, LiveEventActionInput(remove_outputs_on_stop=True)), "stop")
        assert client.live_events.get(rg, acct, event).resource_state == "Stopped"
        wait(client.live_events.begin_delete(rg, acct, event), "delete")
        with pytest.raises(ResourceNotFoundError):
            client.live_events.get(rg, acct, event)
    finally:
        cleanup_event(client, app, event)


def test_sdk_error_mapping(appliance, client, scheme):
    app = appliance
    rg, acct = rg_acct(app)
    # GET of a missing resource -> 404 + envelope -> ResourceNotFoundError with the ARM error parsed.
    with pytest.raises(ResourceNotFoundError) as ei:
        client.live_events.get(rg, acct, unique("missing"))
    assert ei.value.error is not None and ei.value.error.code and ei.value.error.message
    with pytest.raises(ResourceNotFoundError):
        client.assets.get(rg, acct, unique("missing-asset"))

    # DELETE of a missing live event -> 204 -> the poller simply succeeds.
    wait(client.live_events.begin_delete(rg, acct, unique("missing")), "delete missing")

    # Locator names are unique: a second create -> 409 -> ResourceExistsError.
    asset, locator = unique("err-asset-"), unique("err-loc-")
    client.assets.create_or_update(rg, acct, asset, Asset())
    body = StreamingLocator(asset_name=asset, streaming_policy_name="Predefined_ClearStreamingOnly")
    client.streaming_locators.create(rg, acct, locator, body)
    with pytest.raises(ResourceExistsError):
        client.streaming_locators.create(rg, acct, locator, body)
    client.streaming_locators.delete(rg, acct, locator)
    client.assets.delete(rg, acct, asset)

    # A bad bearer token -> 401 -> ClientAuthenticationError.
    bad = make_client(app, scheme, credential=StaticTokenCredential("not-a-valid-token"))
    try:
        with pytest.raises(ClientAuthenticationError):
            bad.streaming_endpoints.get(rg, acct, "default")
    finally:
        bad.close()

    # Another subscription/account -> 404.
    with pytest.raises(ResourceNotFoundError):
        client.live_events.get(rg, "someoneelsesaccount", "x")


# ---------------------------------------------------------------------------------------------
PAGING_STEPS = (5, 105, 505, 1005, 1100)  # AMS pages asset lists at 1000 items; look for paging up to a bit past that


def test_assets_list_paging(appliance, client, scheme):
    app = appliance
    rg, acct = rg_acct(app)
    prefix = f"pg-{scheme}-{uuid.uuid4().hex[:6]}-"
    made: list[str] = []
    page_size = None

    def create_up_to(n):
        names = [f"{prefix}{i:05d}" for i in range(len(made), n)]
        with ThreadPoolExecutor(4) as pool:  # the SDK client (requests session) is thread-safe
            list(pool.map(lambda name: client.assets.create_or_update(rg, acct, name, Asset()), names))
        made.extend(names)

    def first_page():
        r = raw(client, "GET", f"{app.arm_prefix('mediaServices')}/assets", api_version="2022-08-01")
        assert r.status_code == 200, r.text()[:300]
        return r.json()

    try:
        # Grow until the server starts paging (or the last step is reached).
        for step in PAGING_STEPS:
            create_up_to(step)
            doc = first_page()
            if doc.get("@odata.nextLink"):
                page_size = len(doc["value"])
                next_link = urllib.parse.urlparse(doc["@odata.nextLink"])
                assert next_link.scheme == scheme, f"nextLink {doc['@odata.nextLink']} not on the {scheme} listener"
                create_up_to(len(made) + 3)  # make sure the last page is partial
                break
        assert page_size is None or page_size > 0

        # Follow the SDK pager (by_page follows @odata.nextLink verbatim).
        pages = [list(p) for p in client.assets.list(rg, acct).by_page()]
        names = [a.name for page in pages for a in page]
        mine = [n for n in names if n.startswith(prefix)]
        assert sorted(mine) == sorted(made), f"{len(mine)} of {len(made)} listed"
        assert len(mine) == len(set(mine)), "an asset was listed twice across pages"
        if page_size is None:
            pytest.fail(f"server returned {len(names)} assets in one page without @odata.nextLink "
                        f"(AMS pages asset lists at 1000 items)")
        assert len(pages) >= 2
        assert all(len(p) <= page_size for p in pages)

        # $top limits the total number of results ("The service returns the number of available items up to
        # but not greater than the specified value n"), also when the pager follows @odata.nextLink.
        got = len(list(client.assets.list(rg, acct, top=3)))
        assert got == 3, f"assets.list(top=3) yielded {got} items through the SDK pager"
    finally:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: client.assets.delete(rg, acct, n), made))
    assert not [a.name for a in client.assets.list(rg, acct) if a.name.startswith(prefix)]


# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (scripts/install-test-deps.sh)")
def test_quickstart_live_playback(appliance):
    """Steps 6 and 10 for real: push RTMP with ffmpeg to endpoints[0].url/<accessToken>, then fetch the
    HLS and DASH manifests at https://{hostName}{path} (HTTPS only; the other steps are covered above)."""
    app = appliance
    client = make_client(app, "https")
    rg, acct = rg_acct(app)
    event, asset, output, locator = unique("play-"), unique("play-asset-"), unique("playout"), unique("play-loc-")
    ffmpeg = None
    try:
        wait(client.live_events.begin_create(rg, acct, event, quickstart_live_event()), "create")
        client.assets.create_or_update(rg, acct, asset, Asset())
        wait(client.live_outputs.begin_create(rg, acct, event, output,
                                              LiveOutput(asset_name=asset, archive_window_length="PT5M")), "output")
        wait(client.live_events.begin_start(rg, acct, event), "start")
        ev = client.live_events.get(rg, acct, event)
        ingest = f"{ev.input.endpoints[0].url.rstrip('/')}/{ev.input.access_token}"
        ffmpeg = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine", "-t", "60",
             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
             "-c:a", "aac", "-ar", "48000", "-f", "flv", ingest],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client.streaming_locators.create(rg, acct, locator, StreamingLocator(
            asset_name=asset, streaming_policy_name="Predefined_ClearStreamingOnly"))
        paths = {p.streaming_protocol: p.paths[0]
                 for p in client.streaming_locators.list_paths(rg, acct, locator).streaming_paths if p.paths}
        host = client.streaming_endpoints.get(rg, acct, "default").host_name
        ctx = app.ssl_context()
        deadline = time.time() + 40
        got = {}
        while time.time() < deadline and len(got) < 2:
            assert ffmpeg.poll() is None, f"ffmpeg exited: {ffmpeg.stderr.read().decode(errors='replace')[-2000:]}"
            for proto in ("Hls", "Dash"):
                if proto in got:
                    continue
                try:
                    with urllib.request.urlopen(f"https://{host}{paths[proto]}", timeout=10, context=ctx) as r:
                        if r.status == 200:
                            got[proto] = r.read().decode(errors="replace")
                except Exception:
                    pass
            time.sleep(1)
        assert "Hls" in got and got["Hls"].startswith("#EXTM3U"), f"no HLS manifest within 40 s: {got.get('Hls')}"
        assert "Dash" in got and "<MPD" in got["Dash"], f"no DASH manifest within 40 s: {got.get('Dash', '')[:300]}"
        status = raw(client, "POST", f"{app.arm_prefix()}/liveEvents/{event}/getStatus").json()
        assert status["value"][0]["state"] == "Running"
    finally:
        if ffmpeg and ffmpeg.poll() is None:
            ffmpeg.terminate()
            try:
                ffmpeg.wait(10)
            except subprocess.TimeoutExpired:
                ffmpeg.kill()
        cleanup_event(client, app, event)
        client.close()
