"""Local capture into a live event (issue 5, item 2): a V4L2 device on the box (a UVC camera, an HDMI/SDI card,
or vivid in the qemu dev image) is listed by GET /edge/v1/captureDevices, a LocalCapture event records it,
its HLS plays, and unplugging it (vivid: rmmod) is reported and recovered from when it comes back.

Skips cleanly without a target, without the real binary, without ffmpeg on the test machine, and without a
capture device (`v4l2` marker; in qemu the vivid driver is loaded by the fixture in test_v4l2.py's way).
"""
import json
import subprocess
import time
import uuid

import pytest

from test_v4l2 import capture_device  # noqa: F401  (fixture: loads vivid in qemu, finds the device)


def _wait(pred, timeout: float, what: str, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.product
@pytest.mark.ffmpeg
@pytest.mark.ssh
@pytest.mark.v4l2
def test_capture_device_into_a_live_event(target, api, capture_device, tmp_path):  # noqa: F811
    _capture_event(target, api)


@pytest.mark.product
@pytest.mark.ffmpeg
@pytest.mark.ssh
@pytest.mark.v4l2
def test_capture_failure_recovers_by_itself(target, api, capture_device, tmp_path):  # noqa: F811
    """A capture that breaks under the worker (vivid's `disconnect` control: the open handle fails, the device
    stays) is restarted by itself, with a discontinuity, and the event is healthy again. (A device that goes
    away entirely is reported missing: tests/transcode/test_capture.py and the supervisor's unit tests.)"""
    if target.kind != "qemu" or not target.ssh_ok("lsmod | grep -q '^vivid' && command -v v4l2-ctl >/dev/null"):
        pytest.skip("needs the vivid test driver and v4l2-ctl on the target (the qemu dev image has both)")

    def status(ev):
        s, _, st = api.arm("POST", f"{ev}/getStatus", {})
        assert s == 200, st
        return st["value"][0]

    def unplug(api, ev):
        before = status(ev)
        assert before["healthStatus"] in ("Excellent", "Good"), before
        restarts = before["transcoding"]["workerRestarts"]
        node = target.ssh("ls /dev/video* | head -1").stdout.strip()
        # vivid's disconnect breaks the open handle (the capture fails with a read error) while the
        # node stays: the worker must fail, be restarted, and capture again by itself.
        target.ssh(f"v4l2-ctl -d {node} -c disconnect=1")

        def recovered():
            st = status(ev)
            t = st["transcoding"]
            return (t["workerRestarts"] > restarts and t["capture"]["state"] == "running"
                    and st["healthStatus"] in ("Excellent", "Good")) and st
        try:
            _wait(recovered, 60, "the capture to fail and recover by itself")
        except BaseException:
            # What the box saw, for the report: the device nodes and the service's capture log lines.
            print(target.ssh("ls -l /dev/video* /dev/v4l/by-path 2>&1; "
                             "journalctl -u rms-edge --no-pager -n 400 | grep -iE 'capture|worker|v4l2' | tail -40",
                             check=False).stdout)
            print(json.dumps(status(ev))[:3000])
            raise
        s, _, evs = api.arm("POST", f"{ev}/getStreamEvents", {})
        kinds = [e["eventType"] for e in evs["value"]]
        assert any(k.endswith("Discontinuity") for k in kinds), kinds
    _capture_event(target, api, unplug)


def _jpeg_width(data: bytes) -> int:
    assert data[:3] == b"\xff\xd8\xff", f"not a JPEG: {data[:32]!r}"
    i = data.index(b"\xff\xc0")
    return int.from_bytes(data[i + 7:i + 9], "big")


def _thumbnail(target, api, path: str):
    return target.http("GET", target.http_base + path, headers={"Authorization": f"Bearer {api.token()}"})


@pytest.mark.product
@pytest.mark.ssh
@pytest.mark.v4l2
def test_idle_capture_device_thumbnail(target, api, capture_device):  # noqa: F811
    """The console's picture of a device no event uses: a frame grabbed by `rms-edge thumbnail --device`."""
    s, _, body = _thumbnail(target, api, "/edge/v1/captureDevices")
    assert s == 200, body
    dev = json.loads(body)["value"][0]
    s, headers, pic = _thumbnail(target, api, f"/edge/v1/captureDevices/{dev['id']}/thumbnail?width=320")
    assert s == 200, pic[:500]
    assert _jpeg_width(pic) == 320
    s, _, err = _thumbnail(target, api, "/edge/v1/captureDevices/usb-nothing-video-index0/thumbnail")
    assert s == 404 and b"not connected" in err, err


def _capture_event(target, api, unplug=None):
    s, _, body = target.http("GET", target.http_base + "/edge/v1/captureDevices", headers={"Authorization": f"Bearer {api.token()}"})
    assert s == 200, body
    devices = json.loads(body)["value"]
    assert devices, "the device the fixture found is not listed by /edge/v1/captureDevices"
    dev = devices[0]
    print("capture device:", json.dumps(dev)[:500])
    name = "hwcap" + uuid.uuid4().hex[:8]
    ev = f"/liveEvents/{name}"
    s, _, doc = api.put_and_wait(ev, {"location": "Local", "properties": {
        "input": {"streamingProtocol": "LocalCapture", "captureDevice": dev["id"]},
        "encoding": {"encodingType": "PassthroughStandard"}}})
    assert s == 200, doc
    try:
        asset = f"{name}-asset"
        s, _, doc = api.arm("PUT", f"/assets/{asset}", {"properties": {}})
        assert s in (200, 201), doc
        api.put_and_wait(f"{ev}/liveOutputs/out1", {"properties": {
            "assetName": asset, "manifestName": "output", "archiveWindowLength": "PT10M"}})
        s, _, doc = api.arm("PUT", f"/streamingLocators/{name}-loc", {"properties": {
            "assetName": asset, "streamingPolicyName": "Predefined_ClearStreamingOnly"}})
        assert s == 201, doc
        api.post_and_wait(f"{ev}/start")
        s, _, paths = api.arm("POST", f"/streamingLocators/{name}-loc/listPaths", {})
        assert s == 200, paths
        hls = next(p["paths"][0] for p in paths["streamingPaths"] if p["streamingProtocol"] == "Hls")
        manifest = target.http_base + hls

        def playable():
            st, _, b = target.http("GET", manifest)
            return st == 200 and b"RESOLUTION=" in b
        _wait(playable, 120, f"a playable manifest at {manifest}", step=2)
        play = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", manifest, "-t", "3", "-f", "null", "-"],
                              capture_output=True, text=True, timeout=120)
        assert play.returncode == 0, play.stderr[-2000:]
        # The console's numbers and pictures: the video as packaged, the event's thumbnail, and the device's
        # thumbnail while the event holds it (served through the event: a device is opened once).
        s, _, st = api.arm("POST", f"{ev}/getStatus", {})
        vi = st["value"][0]["videoInput"]
        assert vi and vi["width"] > 0 and vi["frameRate"] and abs(vi["frameRate"] - 30) < 1, vi
        for path in (f"/edge/v1/liveEvents/{name}/thumbnail", f"/edge/v1/captureDevices/{dev['id']}/thumbnail"):
            s, _, pic = _thumbnail(target, api, path)
            assert s == 200 and _jpeg_width(pic) == 320, (path, s, pic[:300])

        if unplug:
            unplug(api, ev)
    finally:
        api.post_and_wait(f"{ev}/stop", {"removeOutputsOnStop": True})
        api.delete_and_wait(ev)
