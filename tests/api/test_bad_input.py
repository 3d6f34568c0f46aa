"""One test per bad input of issue 2 section 4 and the behaviour matrix of ams-rms-api.md §4.3.

Every rejection must carry the ARM envelope {"error":{"code","message"}} (application/json), and a
follow-up GET/list must show that nothing was created (each test runs on a fresh appliance, so the
collections start empty).
"""
from __future__ import annotations

import copy
import threading
import time

import pytest

from _api import (METADATA_API_VERSION, QUICKSTART_LIVE_EVENT, Api, assert_error, create_key, keys_cli)


def le_body(**props) -> dict:
    b = copy.deepcopy(QUICKSTART_LIVE_EVENT)
    b["properties"].update(props)
    return b


def no_live_events(api: Api) -> None:
    r = api.call("GET", "liveEvents")
    assert r.status == 200, r
    assert r.doc["value"] == [], f"a rejected request created something: {[v['name'] for v in r.doc['value']]}"


def names(api: Api, rel: str, meta: bool = False) -> list:
    r = (api.meta if meta else api.call)("GET", rel)
    assert r.status == 200, r
    return [v["name"] for v in r.doc["value"]]


# ---------------------------------------------------------------------------------------------
# Live event names: ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$, unique case-insensitively.

@pytest.mark.parametrize("name", [
    pytest.param("x" * 33, id="33-chars"),
    pytest.param("my.event", id="dot"),
    pytest.param("-event", id="leading-hyphen"),
    pytest.param("_event", id="leading-underscore"),
    pytest.param("my%20event", id="space"),
    pytest.param("ev%C3%A9nt", id="non-ascii"),
])
def test_bad_live_event_name(api, name):
    r = api.call("PUT", f"liveEvents/{name}", le_body())
    assert_error(r, 400, contains="name")
    no_live_events(api)


def test_empty_live_event_name(api):
    # PUT on the collection itself: there is no resource to create.
    r = api.call("PUT", "liveEvents/", le_body())
    assert 400 <= r.status < 500 and r.status not in (401, 403), r
    assert_error(r, r.status)
    no_live_events(api)


@pytest.mark.parametrize("name", ["x" * 32, "a", "0start", "My_Event-1", "lower_case_rms"])
def test_good_live_event_names_accepted(api, name):
    r = api.call("PUT", f"liveEvents/{name}", le_body())
    assert r.status in (200, 201), r
    api.wait(r)
    assert names(api, "liveEvents") == [name]


def test_live_event_names_unique_case_insensitively(api):
    api.create_live_event("MyEvent")
    other = le_body(description="second")
    r = api.call("PUT", "liveEvents/myevent", other)
    # Either a conflict, or an update of the same resource (ARM names are case-insensitive):
    # never a second event.
    if r.status == 409:
        assert_error(r, 409)
    else:
        assert r.status in (200, 201), r
        api.wait(r)
    assert names(api, "liveEvents") == ["MyEvent"], "names must be unique case-insensitively; created spelling kept"
    g = api.call("GET", "liveEvents/MYEVENT")
    assert g.status == 200 and g.doc["name"] == "MyEvent", g


# ---------------------------------------------------------------------------------------------
# Live event bodies.

@pytest.mark.parametrize("field,value,word", [
    ("streamingProtocol", "HLS", "streamingProtocol"),
    ("streamingProtocol", "", "streamingProtocol"),
    ("streamingProtocol", 5, "streamingProtocol"),
])
def test_unknown_streaming_protocol(api, field, value, word):
    b = le_body()
    b["properties"]["input"][field] = value
    r = api.call("PUT", "liveEvents/ev1", b)
    assert_error(r, 400, contains=word)
    no_live_events(api)


def test_unknown_encoding_type(api):
    b = le_body(encoding={"encodingType": "UltraHD8k"})
    r = api.call("PUT", "liveEvents/ev1", b)
    assert_error(r, 400, contains="encodingType")
    no_live_events(api)


def test_fragmented_mp4_not_supported(api):
    b = le_body()
    b["properties"]["input"]["streamingProtocol"] = "FragmentedMP4"
    r = api.call("PUT", "liveEvents/ev1", b)
    assert_error(r, 400, contains=("not supported", "unsupported"))
    assert "fragmentedmp4" in r.doc["error"]["message"].lower(), r
    no_live_events(api)


def test_missing_input(api):
    b = le_body()
    del b["properties"]["input"]
    r = api.call("PUT", "liveEvents/ev1", b)
    assert_error(r, 400, contains="input")
    no_live_events(api)


def test_missing_streaming_protocol(api):
    b = le_body()
    del b["properties"]["input"]["streamingProtocol"]
    r = api.call("PUT", "liveEvents/ev1", b)
    assert_error(r, 400, contains="streamingProtocol")
    no_live_events(api)


def test_missing_properties(api):
    r = api.call("PUT", "liveEvents/ev1", {"location": "West Europe"})
    assert_error(r, 400)
    no_live_events(api)


def test_missing_body(api):
    r = api.call("PUT", "liveEvents/ev1", None)
    assert_error(r, 400)
    no_live_events(api)


@pytest.mark.parametrize("raw", [b'{"location": "x", "properties": {', b"not json", b'{"a":1}}', b"\xff\xfe"],
                         ids=["truncated", "text", "trailing", "binary"])
def test_malformed_json(api, raw):
    r = api.call("PUT", "liveEvents/ev1", raw_body=raw)
    assert_error(r, 400)
    no_live_events(api)


@pytest.mark.parametrize("raw", [b"[]", b'"live"', b"42", b"null", b"true"],
                         ids=["array", "string", "number", "null", "bool"])
def test_body_not_an_object(api, raw):
    r = api.call("PUT", "liveEvents/ev1", raw_body=raw)
    assert_error(r, 400)
    no_live_events(api)


def test_properties_not_an_object(api):
    r = api.call("PUT", "liveEvents/ev1", {"location": "x", "properties": "RTMP"})
    assert_error(r, 400)
    no_live_events(api)


def test_missing_location(api):
    b = le_body()
    del b["location"]
    r = api.call("PUT", "liveEvents/ev1", b)
    assert_error(r, 400, contains="location")
    no_live_events(api)


def test_access_token_not_a_guid(api):
    b = le_body()
    b["properties"]["input"]["accessToken"] = "not a guid!"
    r = api.call("PUT", "liveEvents/ev1", b)
    assert_error(r, 400, contains="accessToken")
    no_live_events(api)


def test_patch_create_only_protocol_rejected(api):
    api.create_live_event("ev1")
    r = api.call("PATCH", "liveEvents/ev1", {"properties": {"input": {"streamingProtocol": "SRT"}}})
    assert_error(r, 400, contains="streamingProtocol")
    d = api.get_live_event("ev1").doc
    assert d["properties"]["input"]["streamingProtocol"] == "RTMP", d


# ---------------------------------------------------------------------------------------------
# 404 / 204.

@pytest.mark.parametrize("method,rel,meta", [
    ("GET", "liveEvents/nope", False),
    ("POST", "liveEvents/nope/start", False),
    ("POST", "liveEvents/nope/stop", False),
    ("POST", "liveEvents/nope/getStatus", False),
    ("POST", "liveEvents/nope/getStreamEvents", False),
    ("GET", "liveEvents/nope/liveOutputs", False),
    ("GET", "liveEvents/nope/liveOutputs/out1", False),
    ("GET", "liveEventOperations/9d6d1a45-8f8e-4b7a-9a62-5b3d1b0c7e11", False),
    ("GET", "assets/nope", True),
    ("POST", "assets/nope/listStreamingLocators", True),
    ("GET", "streamingLocators/nope", True),
    ("POST", "streamingLocators/nope/listPaths", True),
    ("POST", "streamingLocators/nope/listContentKeys", True),
    ("GET", "streamingPolicies/nope", True),
    ("GET", "streamingEndpoints/nope", False),
    ("GET", "accountFilters/nope", True),
], ids=lambda v: v if isinstance(v, str) else "")
def test_not_found(api, method, rel, meta):
    r = (api.meta if meta else api.call)(method, rel)
    assert_error(r, 404)


def test_live_output_on_missing_event_not_found(api):
    api.create_asset("a1")
    r = api.call("PUT", "liveEvents/nope/liveOutputs/out1", {"properties": {"assetName": "a1",
                                                                             "archiveWindowLength": "PT5M"}})
    assert_error(r, 404)
    no_live_events(api)


@pytest.mark.parametrize("which", ["subscription", "resourceGroup", "account"])
def test_foreign_identity_not_found(api, which):
    app = api.app
    sub, rg, acct = app.SUBSCRIPTION, app.RESOURCE_GROUP, app.ACCOUNT
    if which == "subscription":
        sub = "11111111-1111-1111-1111-111111111111"
    elif which == "resourceGroup":
        rg = "other-rg"
    else:
        acct = "otheraccount"
    path = (f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Media/mediaservices/{acct}"
            f"/liveEvents/ev1?api-version=2022-11-01")
    r = api.raw("PUT", path, le_body())
    assert_error(r, 404)
    r = api.raw("GET", path.replace("/liveEvents/ev1", "/liveEvents"))
    assert_error(r, 404)
    no_live_events(api)


def test_unknown_collection_not_found(api):
    r = api.call("GET", "liveStreams")
    assert_error(r, 404)
    r = api.raw("GET", "/no/such/path")
    assert 400 <= r.status < 500, r
    assert_error(r, r.status)


@pytest.mark.parametrize("rel,meta", [
    ("liveEvents/nope", False),
    ("streamingEndpoints/nope", False),
    ("assets/nope", True),
    ("streamingLocators/nope", True),
    ("streamingPolicies/nope", True),
    ("accountFilters/nope", True),
], ids=lambda v: v if isinstance(v, str) else "")
def test_delete_missing_is_204(api, rel, meta):
    r = (api.meta if meta else api.call)("DELETE", rel)
    assert r.status == 204, r
    assert not r.raw, f"204 must have no body: {r!r}"


def test_delete_missing_live_output_and_asset_filter_is_204(api):
    api.create_live_event("ev1")
    r = api.call("DELETE", "liveEvents/ev1/liveOutputs/nope")
    assert r.status == 204, r
    api.create_asset("a1")
    r = api.meta("DELETE", "assets/a1/assetFilters/nope")
    assert r.status == 204, r


# ---------------------------------------------------------------------------------------------
# Live outputs.

def lo_body(asset="a1", archive="PT5M", **props):
    return {"properties": {"assetName": asset, "archiveWindowLength": archive, **props}}


def no_outputs(api: Api, ev="ev1"):
    assert names(api, f"liveEvents/{ev}/liveOutputs") == [], "a rejected live output was created"


def test_live_output_missing_asset(api):
    api.create_live_event("ev1")
    r = api.call("PUT", "liveEvents/ev1/liveOutputs/out1", lo_body(asset="nosuchasset"))
    assert r.status in (400, 404), r
    assert_error(r, r.status, contains="asset")
    no_outputs(api)
    assert names(api, "assets", meta=True) == [], "the missing asset must not be auto-created"


@pytest.mark.parametrize("missing", ["archiveWindowLength", "assetName"])
def test_live_output_missing_required(api, missing):
    api.create_live_event("ev1")
    api.create_asset("a1")
    b = lo_body()
    del b["properties"][missing]
    r = api.call("PUT", "liveEvents/ev1/liveOutputs/out1", b)
    assert_error(r, 400, contains=missing)
    no_outputs(api)


@pytest.mark.parametrize("props", [
    {"archiveWindowLength": "PT59S"},
    {"archiveWindowLength": "PT25H1M"},
    {"archiveWindowLength": "P2D"},
    {"archiveWindowLength": "five minutes"},
    {"archiveWindowLength": 300},
    {"archiveWindowLength": "PT10M", "rewindWindowLength": "PT30S"},
    {"archiveWindowLength": "PT10M", "rewindWindowLength": "PT11M"},
], ids=["59s", "25h1m", "2d", "text", "number", "rewind-30s", "rewind-gt-archive"])
def test_live_output_window_out_of_range(api, props):
    api.create_live_event("ev1")
    api.create_asset("a1")
    b = {"properties": {"assetName": "a1", **props}}
    r = api.call("PUT", "liveEvents/ev1/liveOutputs/out1", b)
    assert_error(r, 400, contains=("archiveWindowLength", "rewindWindowLength"))
    no_outputs(api)


@pytest.mark.parametrize("archive", ["PT1M", "PT25H"])
def test_live_output_window_bounds_accepted(api, archive):
    api.create_live_event("ev1")
    api.create_asset("a1")
    api.create_live_output("ev1", "out1", "a1", archive)
    assert names(api, "liveEvents/ev1/liveOutputs") == ["out1"]


def test_fourth_live_output_rejected(api):
    api.create_live_event("ev1")
    for i in range(4):
        api.create_asset(f"a{i}")
    for i in range(3):
        api.create_live_output("ev1", f"out{i}", f"a{i}")
    r = api.call("PUT", "liveEvents/ev1/liveOutputs/out3", lo_body(asset="a3"))
    assert r.status in (400, 409), r
    assert_error(r, r.status)
    assert sorted(names(api, "liveEvents/ev1/liveOutputs")) == ["out0", "out1", "out2"]


def test_live_output_bad_name(api):
    api.create_live_event("ev1")
    api.create_asset("a1")
    r = api.call("PUT", "liveEvents/ev1/liveOutputs/out_1", lo_body())
    assert_error(r, 400, contains="name")
    no_outputs(api)


def test_live_output_has_no_patch(api):
    api.create_live_event("ev1")
    api.create_asset("a1")
    api.create_live_output("ev1", "out1", "a1")
    r = api.call("PATCH", "liveEvents/ev1/liveOutputs/out1", {"properties": {"description": "x"}})
    assert r.status in (400, 405), r
    assert_error(r, r.status)


def test_live_output_allowed_on_stopped_event(api):
    api.create_live_event("ev1")
    api.create_asset("a1")
    api.create_live_output("ev1", "out1", "a1")
    assert api.get_live_event("ev1").doc["properties"]["resourceState"] == "Stopped"


# ---------------------------------------------------------------------------------------------
# Assets, locators, policies.

def test_bad_asset_name(api):
    for bad in ("bad'name", "bad*name", "bad+name"):
        r = api.meta("PUT", f"assets/{bad}", {"properties": {}})
        assert_error(r, 400, contains="name")
    assert names(api, "assets", meta=True) == []


def loc_body(asset="a1", policy="Predefined_ClearStreamingOnly", **props):
    return {"properties": {"assetName": asset, "streamingPolicyName": policy, **props}}


def test_locator_missing_asset(api):
    r = api.meta("PUT", "streamingLocators/loc1", loc_body(asset="nosuchasset"))
    assert r.status in (400, 404), r
    assert_error(r, r.status, contains="asset")
    assert names(api, "streamingLocators", meta=True) == []


def test_locator_unknown_policy(api):
    api.create_asset("a1")
    r = api.meta("PUT", "streamingLocators/loc1", loc_body(policy="Predefined_NoSuchPolicy"))
    assert r.status in (400, 404), r
    assert_error(r, r.status, contains="polic")
    assert names(api, "streamingLocators", meta=True) == []


@pytest.mark.parametrize("missing", ["assetName", "streamingPolicyName"])
def test_locator_missing_required(api, missing):
    api.create_asset("a1")
    b = loc_body()
    del b["properties"][missing]
    r = api.meta("PUT", "streamingLocators/loc1", b)
    assert_error(r, 400, contains=missing)
    assert names(api, "streamingLocators", meta=True) == []


def test_locator_put_existing_name_conflicts(api):
    api.create_asset("a1")
    api.create_asset("a2")
    first = api.create_locator("loc1", "a1")
    r = api.meta("PUT", "streamingLocators/loc1", loc_body(asset="a2"))
    assert_error(r, 409)
    g = api.meta("GET", "streamingLocators/loc1").doc
    assert g["properties"]["assetName"] == "a1", "the 409 changed the locator"
    assert g["properties"]["streamingLocatorId"] == first["properties"]["streamingLocatorId"]
    r = api.meta("PATCH", "streamingLocators/loc1", loc_body(asset="a2"))
    assert r.status in (400, 405), f"locators are immutable (no PATCH): {r!r}"
    assert_error(r, r.status)


def test_locator_id_not_a_guid(api):
    api.create_asset("a1")
    r = api.meta("PUT", "streamingLocators/loc1", loc_body(streamingLocatorId="not-a-guid"))
    assert_error(r, 400, contains="streamingLocatorId")
    assert names(api, "streamingLocators", meta=True) == []


def test_duplicate_locator_id_rejected(api):
    api.create_asset("a1")
    guid = "8e0b2f2c-3a0c-4b27-9d9e-6c2f7f0f5a11"
    api.create_locator("loc1", "a1", streamingLocatorId=guid)
    r = api.meta("PUT", "streamingLocators/loc2", loc_body(streamingLocatorId=guid))
    assert r.status in (400, 409), r
    assert_error(r, r.status)
    assert names(api, "streamingLocators", meta=True) == ["loc1"]


def test_predefined_policy_cannot_be_deleted_or_replaced(api):
    r = api.meta("PUT", "streamingPolicies/Predefined_ClearStreamingOnly",
                 {"properties": {"noEncryption": {"enabledProtocols": {"download": True, "dash": False,
                                                                        "hls": False, "smoothStreaming": False}}}})
    assert 400 <= r.status < 500, r
    assert_error(r, r.status)
    r = api.meta("DELETE", "streamingPolicies/Predefined_ClearStreamingOnly")
    assert 400 <= r.status < 500, f"deleting a predefined policy must be refused: {r!r}"
    assert_error(r, r.status)
    assert api.meta("GET", "streamingPolicies/Predefined_ClearStreamingOnly").status == 200


# ---------------------------------------------------------------------------------------------
# Live event state rules.

def test_delete_running_event_conflicts(api):
    api.create_live_event("ev1")
    api.start_live_event("ev1")
    r = api.call("DELETE", "liveEvents/ev1")
    assert_error(r, 409, contains="stop")
    assert api.get_live_event("ev1").doc["properties"]["resourceState"] == "Running"


def test_stop_already_stopped_is_ok(api):
    api.create_live_event("ev1")
    r = api.call("POST", "liveEvents/ev1/stop", {})
    assert r.status in (200, 202), r
    api.wait(r)
    assert api.get_live_event("ev1").doc["properties"]["resourceState"] == "Stopped"


def test_start_already_running_is_ok(api):
    api.create_live_event("ev1")
    api.start_live_event("ev1")
    r = api.call("POST", "liveEvents/ev1/start")
    assert r.status in (200, 202), r
    api.wait(r)
    assert api.get_live_event("ev1").doc["properties"]["resourceState"] == "Running"


def _event_with_output(api: Api):
    api.create_live_event("ev1")
    api.create_asset("a1")
    api.create_live_output("ev1", "out1", "a1")
    api.start_live_event("ev1")


@pytest.mark.parametrize("how", ["no-body", "empty-object"])
def test_stop_without_options(api, how):
    """The RMS quickstart stops with no body, the SDK sends {}. Both stop the event; with no
    removeOutputsOnStop the RMS behaviour applies (quickstart step 11: the live output is deleted), and
    the asset stays."""
    _event_with_output(api)
    if how == "no-body":
        r = api.call("POST", "liveEvents/ev1/stop")
    else:
        r = api.call("POST", "liveEvents/ev1/stop", {})
    assert r.status in (200, 202), r
    api.wait(r)
    assert api.get_live_event("ev1").doc["properties"]["resourceState"] == "Stopped"
    assert names(api, "liveEvents/ev1/liveOutputs") == [], "stop must delete the live outputs (RMS)"
    assert api.meta("GET", "assets/a1").status == 200, "stop must keep the asset"


def test_stop_remove_outputs_true(api):
    _event_with_output(api)
    api.stop_live_event("ev1", {"removeOutputsOnStop": True})
    assert names(api, "liveEvents/ev1/liveOutputs") == []
    assert api.meta("GET", "assets/a1").status == 200


def test_stop_remove_outputs_false_keeps_outputs(api):
    """An explicit removeOutputsOnStop=false (the AMS SDK's liveevent-stop example) keeps the outputs."""
    _event_with_output(api)
    api.stop_live_event("ev1", {"removeOutputsOnStop": False})
    assert names(api, "liveEvents/ev1/liveOutputs") == ["out1"]


@pytest.mark.parametrize("raw", [b"[]", b"{", b'{"removeOutputsOnStop": "yes"}'], ids=["array", "malformed", "bad-type"])
def test_stop_bad_body(api, raw):
    api.create_live_event("ev1")
    api.start_live_event("ev1")
    r = api.call("POST", "liveEvents/ev1/stop", raw_body=raw)
    assert_error(r, 400)
    assert api.get_live_event("ev1").doc["properties"]["resourceState"] == "Running"


def test_concurrent_lro_on_one_event(api):
    """One LRO at a time per live event (409 otherwise). Operations on the appliance are fast, so a
    collision is provoked by firing several at once; whatever wins, every answer is a success or a 409
    envelope, every accepted operation reaches a terminal state and the event ends in a stable state."""
    api.create_live_event("ev1")
    saw_409 = False
    for attempt in range(15):
        # start and stop are valid in every stable state (start on Running and stop on Stopped are
        # no-ops), so any 409 here is an operation conflict.
        actions = ["start", "stop"] * 3
        results: list = [None] * len(actions)
        barrier = threading.Barrier(len(actions))

        def fire(i, action):
            barrier.wait()
            results[i] = api.call("POST", f"liveEvents/ev1/{action}", {} if action == "stop" else None)

        threads = [threading.Thread(target=fire, args=(i, a)) for i, a in enumerate(actions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for r in results:
            assert r is not None
            if r.status == 409:
                saw_409 = True
                assert_error(r, 409)
            elif r.status in (200, 202):
                if r.status == 202:
                    aop = r.headers.get("Azure-AsyncOperation")
                    assert aop, r
                    deadline = time.time() + 30
                    while True:
                        s = api.raw("GET", aop).doc["status"]
                        if s in ("Succeeded", "Failed", "Canceled"):
                            break
                        assert time.time() < deadline, f"operation stuck: {aop}"
                        time.sleep(0.05)
            else:
                raise AssertionError(f"concurrent start/stop must answer 200/202 or 409: {r!r}")
        st = api.get_live_event("ev1").doc["properties"]["resourceState"]
        assert st in ("Stopped", "StandBy", "Running"), f"event left in {st}"
        if saw_409:
            break
    if not saw_409:
        pytest.skip("could not provoke two overlapping operations (every LRO finished before the next "
                    "arrived); invariants were checked")


# ---------------------------------------------------------------------------------------------
# Authentication.

def _assert_401(r):
    assert_error(r, 401)
    www = r.headers.get("WWW-Authenticate")
    assert www and www.lower().startswith("bearer"), f"WWW-Authenticate {www!r}"


def test_missing_credentials(api):
    _assert_401(api.call("GET", "liveEvents", auth=False))
    _assert_401(api.call("PUT", "liveEvents/ev1", le_body(), auth=False))
    no_live_events(api)


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer-token abc", "Token x"])
def test_malformed_authorization_header(api, header):
    r = api.call("GET", "liveEvents", auth=False, headers={"Authorization": header})
    _assert_401(r)


def test_wrong_api_key_as_bearer(api):
    _assert_401(api.call("GET", "liveEvents", token="rmse_0123456789abcdef_" + "0" * 64))
    _assert_401(api.call("GET", "liveEvents", token="not-a-key"))


def test_raw_api_key_as_bearer_accepted(api):
    r = api.call("GET", "liveEvents", token=api.app.api_key)
    assert r.status == 200, r


def test_token_wrong_key(api):
    r = api.raw("POST", "/auth/token", {"subscriptionId": api.app.SUBSCRIPTION, "apiKey": "wrong"}, auth=False)
    assert r.status in (401, 403), r
    assert_error(r, r.status)


def test_token_wrong_subscription(api):
    r = api.raw("POST", "/auth/token", {"subscriptionId": "11111111-1111-1111-1111-111111111111",
                                        "apiKey": api.app.api_key}, auth=False)
    assert r.status in (401, 403), r
    assert_error(r, r.status)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"subscriptionId": "x"}', b'{"apiKey": "x"}'],
                         ids=["empty", "malformed", "array", "no-key", "no-subscription"])
def test_token_bad_body(api, raw):
    r = api.raw("POST", "/auth/token", auth=False, raw_body=raw)
    assert r.status in (400, 401, 403), r
    assert_error(r, r.status)


def test_revoked_key(api):
    app = api.app
    kid, key = create_key(app, "to-revoke")
    r = api.raw("POST", "/auth/token", {"subscriptionId": app.SUBSCRIPTION, "apiKey": key}, auth=False)
    assert r.status == 200, r
    token = r.raw.decode()
    assert api.call("GET", "liveEvents", token=key).status == 200
    assert api.call("GET", "liveEvents", token=token).status == 200
    keys_cli(app, "revoke", kid)
    _assert_401(api.call("GET", "liveEvents", token=key))
    _assert_401(api.call("GET", "liveEvents", token=token))  # "deleting a key breaks integrations immediately"
    r = api.raw("POST", "/auth/token", {"subscriptionId": app.SUBSCRIPTION, "apiKey": key}, auth=False)
    assert r.status in (401, 403), r
    assert_error(r, r.status)
    # the first key is untouched
    assert api.call("GET", "liveEvents", token=app.api_key).status == 200


def test_playback_needs_no_key_but_api_does(api):
    r = api.raw("GET", "/healthz", auth=False)
    assert r.status == 200, r
    _assert_401(api.call("GET", "streamingEndpoints", auth=False))


# ---------------------------------------------------------------------------------------------
# Paths, api-version, enums.

@pytest.mark.parametrize("seg,coll,action", [
    ("mediaservices", "liveEvents", "getStatus"),
    ("mediaServices", "liveevents", "getstatus"),
    ("MEDIASERVICES", "LIVEEVENTS", "GETSTATUS"),
])
def test_case_insensitive_live_event_paths(api, seg, coll, action):
    api.create_live_event("MyEvent")
    p = api.prefix(seg)
    r = api.raw("GET", f"{p}/{coll}?api-version=2022-11-01")
    assert r.status == 200 and [v["name"] for v in r.doc["value"]] == ["MyEvent"], r
    r = api.raw("GET", f"{p}/{coll}/myevent?api-version=2022-11-01")
    assert r.status == 200 and r.doc["name"] == "MyEvent", r
    r = api.raw("POST", f"{p}/{coll}/MYEVENT/{action}?api-version=2022-11-01")
    assert r.status == 200, r


def test_case_insensitive_provider_and_prefix(api):
    app = api.app
    api.create_live_event("ev1")
    p = (f"/SUBSCRIPTIONS/{app.SUBSCRIPTION.upper()}/resourcegroups/{app.RESOURCE_GROUP.upper()}"
         f"/PROVIDERS/microsoft.media/MediaServices/{app.ACCOUNT.upper()}/liveEvents/EV1")
    r = api.raw("GET", p + "?api-version=2022-11-01")
    assert r.status == 200 and r.doc["name"] == "ev1", r


@pytest.mark.parametrize("seg,action", [("mediaServices", "listPaths"), ("mediaservices", "LISTPATHS"),
                                        ("MediaServices", "listpaths")])
def test_case_insensitive_locator_paths(api, seg, action):
    api.create_asset("a1")
    api.create_locator("Loc1", "a1")
    p = api.prefix(seg)
    r = api.raw("POST", f"{p}/streamingLocators/loc1/{action}?api-version={METADATA_API_VERSION}")
    assert r.status == 200 and "streamingPaths" in r.doc, r
    r = api.raw("GET", f"{p}/STREAMINGLOCATORS?api-version={METADATA_API_VERSION}")
    assert r.status == 200 and [v["name"] for v in r.doc["value"]] == ["Loc1"], r
    r = api.raw("GET", f"{p}/streamingendpoints/DEFAULT?api-version=2022-11-01")
    assert r.status == 200 and r.doc["name"] == "default", r


@pytest.mark.parametrize("api_version", [None, "2022-08-01", "2023-01-01", "1999-12-31", "garbage"])
def test_any_or_no_api_version(api, api_version):
    r = api.call("PUT", "liveEvents/ev1", le_body(), api_version=api_version)
    assert r.status in (200, 201), r
    api.wait(r)
    r = api.call("GET", "liveEvents/ev1", api_version=api_version)
    assert r.status == 200, r
    r = api.meta("GET", "assets", api_version=api_version)
    assert r.status == 200, r


@pytest.mark.parametrize("sent,field,canonical", [
    ("premium1080P", "encodingType", "Premium1080p"),
    ("PREMIUM1080P", "encodingType", "Premium1080p"),
    ("passthroughstandard", "encodingType", "PassthroughStandard"),
    ("passthroughBASIC", "encodingType", "PassthroughBasic"),
    ("standard", "encodingType", "Standard"),
    ("rtmp", "streamingProtocol", "RTMP"),
    ("srt", "streamingProtocol", "SRT"),
    ("rtsppush", "streamingProtocol", "RTSPPush"),
    ("lowlatency", "streamOptions", "LowLatency"),
    ("default", "streamOptions", "Default"),
])
def test_enums_case_insensitive_and_canonical(api, sent, field, canonical):
    b = le_body()
    if field == "encodingType":
        b["properties"]["encoding"] = {"encodingType": sent}
        get = lambda d: d["properties"]["encoding"]["encodingType"]  # noqa: E731
    elif field == "streamingProtocol":
        b["properties"]["input"]["streamingProtocol"] = sent
        get = lambda d: d["properties"]["input"]["streamingProtocol"]  # noqa: E731
    else:
        b["properties"]["streamOptions"] = [sent]
        get = lambda d: d["properties"]["streamOptions"][0]  # noqa: E731
    r = api.call("PUT", "liveEvents/ev1", b)
    assert r.status in (200, 201), r
    assert get(r.doc) == canonical, f"PUT echoed {get(r.doc)!r}, expected {canonical!r}"
    api.wait(r)
    d = api.get_live_event("ev1").doc
    assert get(d) == canonical, f"GET shows {get(d)!r}, expected {canonical!r}"


def test_locator_policy_name_case_insensitive(api):
    api.create_asset("a1")
    r = api.meta("PUT", "streamingLocators/loc1", loc_body(policy="predefined_clearstreamingonly"))
    assert r.status == 201, r
