"""Local capture (issue 5, item 2) on a machine without V4L2 devices: GET /edge/v1/captureDevices
answers an empty list, a LocalCapture event for a missing device is validated, starts, says plainly in
getStatus and the stream events that the device is missing, and stops cleanly. Capturing from a real
device is hw-tests/test_capture.py (vivid in the qemu dev image).
"""
from __future__ import annotations

import glob
import time

import pytest

from _api import Api
from _live import unique

pytestmark = pytest.mark.skipif(bool(glob.glob("/dev/video*")), reason="this machine has V4L2 devices: see hw-tests/test_capture.py")

DEVICE = "usb-rms-edge_test_camera_0000-video-index0"


def test_capture_devices_listing_is_empty_and_authenticated(make_appliance):
    app = make_appliance()
    status, _, doc = app.json("GET", "/edge/v1/captureDevices")
    assert status == 200, doc
    assert doc == {"value": []}
    status, _, doc = app.json("GET", "/edge/v1/captureDevices", auth=False)
    assert status == 401, doc


def test_capture_input_validation(make_appliance):
    api = Api(make_appliance())
    for input_, needle in [
        ({"streamingProtocol": "LocalCapture"}, "captureDevice"),
        ({"streamingProtocol": "LocalCapture", "captureDevice": "../../etc/passwd"}, "captureDevices"),
        ({"streamingProtocol": "RTMP", "captureDevice": "video0"}, "LocalCapture"),
        ({"streamingProtocol": "Webcam", "captureDevice": "video0"}, "streamingProtocol"),
    ]:
        r = api.call("PUT", f"liveEvents/{unique('cap-')}", {"location": "x", "properties": {"input": input_}})
        assert r.status == 400, (input_, r)
        assert needle in r.doc["error"]["message"], (input_, r.doc)


def test_missing_device_is_reported_and_the_event_stops(make_appliance):
    app = make_appliance()
    api = Api(app)
    name = unique("cap-")
    doc = api.create_live_event(name, {
        "location": "x", "tags": {"IngestOptions.CaptureDevice": DEVICE},
        "properties": {"input": {"streamingProtocol": "LocalCapture"}, "encoding": {"encodingType": "Standard"}}})
    assert doc["properties"]["input"]["streamingProtocol"] == "LocalCapture"
    assert doc["properties"]["input"]["captureDevice"] == DEVICE
    assert doc["properties"]["input"]["endpoints"] == []
    api.start_live_event(name)
    deadline = time.time() + 20
    st = events = None
    while time.time() < deadline:
        st = api.call("POST", f"liveEvents/{name}/getStatus").doc["value"][0]
        events = api.call("POST", f"liveEvents/{name}/getStreamEvents").doc["value"]
        text = " ".join(st.get("healthDescriptions", []))
        if "is missing" in text and any("CaptureDeviceMissing" in e["eventType"] for e in events):
            break
        time.sleep(0.5)
    text = " ".join(st.get("healthDescriptions", []))
    assert f"the device {DEVICE} is missing" in text and "plug it in" in text, st
    cap = st["transcoding"]["capture"]
    assert cap["state"] == "deviceMissing" and cap["device"] == DEVICE, st
    assert cap["path"] == f"/dev/v4l/by-id/{DEVICE}", st
    missing = [e for e in events if e["eventType"].endswith("CaptureDeviceMissing")]
    assert len(missing) == 1, events  # reported once, not once per poll
    assert DEVICE in missing[0]["data"]["resultMessage"], missing
    # No worker runs while the device is missing; the event stops cleanly.
    assert st["transcoding"]["workerPid"] is None, st
    t0 = time.time()
    api.stop_live_event(name)
    assert time.time() - t0 < 10
    r = api.call("DELETE", f"liveEvents/{name}")
    assert r.status in (200, 202, 204), r
    assert app.proc.poll() is None


@pytest.mark.skipif(bool(glob.glob("/dev/dri/renderD*")), reason="this machine has a GPU render node")
def test_encoder_choice_is_in_the_appliance_info(make_appliance):
    app = make_appliance()
    status, _, doc = app.json("GET", "/edge/v1/encoders")
    assert status == 200, doc
    # No /dev/dri and no V4L2 M2M encoder here: the software encoder, with the reason for each one skipped.
    assert doc["encoder"] == "x264enc" and doc["hardware"] is False, doc
    assert "no /dev/dri render node" in doc["reason"] and "v4l2h264enc" in doc["reason"], doc
    status, _, doc = app.json("GET", "/edge/v1/encoders", auth=False)
    assert status == 401, doc
