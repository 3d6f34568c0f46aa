"""Transcoding on the box's hardware encoder (issue 5): a Standard / Premium1080p event encodes its ladder on
VAAPI (`va`/`vaapi` plugin on /dev/dri) or a V4L2 M2M encoder, in real time, and it plays.

Skips cleanly without a target, without the real binary, without ffmpeg on the test machine, and without the
hardware (`vaapi` marker: a render node; the V4L2 M2M test checks for `v4l2h264enc` on the target itself).
Prints the encoder, its speed against real time and the renditions (recorded in docs/benchmarks.md when run).
"""
import json
import subprocess
import time
import urllib.parse
import uuid

import pytest

HW_ENCODERS = {"vah264lpenc", "vah264enc", "vaapih264enc", "v4l2h264enc"}


def _ladder_on_target(target, api, tmp_path, encoding_type: str, size: str, expect_encoders: set[str]) -> dict:
    name = "hwtc" + uuid.uuid4().hex[:8]
    ev = f"/liveEvents/{name}"
    s, _, doc = api.put_and_wait(ev, {"location": "Local", "properties": {
        "input": {"streamingProtocol": "RTMP"}, "encoding": {"encodingType": encoding_type}}})
    assert s == 200, doc
    proc = None
    try:
        api.post_and_wait(f"{ev}/start")
        asset = f"{name}-asset"
        s, _, doc = api.arm("PUT", f"/assets/{asset}", {"properties": {}})
        assert s in (200, 201), doc
        api.put_and_wait(f"{ev}/liveOutputs/out1", {"properties": {
            "assetName": asset, "manifestName": "output", "archiveWindowLength": "PT10M"}})
        s, _, doc = api.arm("PUT", f"/streamingLocators/{name}-loc", {"properties": {
            "assetName": asset, "streamingPolicyName": "Predefined_ClearStreamingOnly"}})
        assert s == 201, doc
        s, _, ev_doc = api.arm("GET", ev)
        token = ev_doc["properties"]["input"]["accessToken"]
        ingest = urllib.parse.urlsplit(ev_doc["properties"]["input"]["endpoints"][0]["url"])
        url = f"rtmp://{target.host}:{target.ports['rtmp']}{ingest.path.rstrip('/')}/{token}"
        log = open(tmp_path / "ffmpeg-push.log", "w")
        proc = subprocess.Popen([
            "ffmpeg", "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
            "-f", "lavfi", "-i", "sine", "-t", "180", "-c:v", "libx264", "-preset", "veryfast",
            "-pix_fmt", "yuv420p", "-g", "60", "-b:v", "8M", "-c:a", "aac", "-f", "flv", url], stdout=log, stderr=log)
        s, _, paths = api.arm("POST", f"/streamingLocators/{name}-loc/listPaths", {})
        assert s == 200, paths
        hls = next(p["paths"][0] for p in paths["streamingPaths"] if p["streamingProtocol"] == "Hls")
        manifest = target.http_base + hls
        deadline = time.monotonic() + 120
        body = b""
        while time.monotonic() < deadline:
            st, _, body = target.http("GET", manifest)
            if st == 200 and body.count(b"RESOLUTION=") >= 2:
                break
            assert proc.poll() is None, (tmp_path / "ffmpeg-push.log").read_text()[-2000:]
            time.sleep(2)
        else:
            pytest.fail(f"no ladder at {manifest}")
        time.sleep(20)  # steady state for the speed figure
        s, _, status = api.arm("POST", f"{ev}/getStatus", {})
        assert s == 200, status
        t = status["value"][0].get("transcoding") or {}
        print(f"{encoding_type} from {size}: encoder {t.get('encoder')} ({t.get('reason')}), "
              f"{t.get('encoderFps')} fps = {t.get('realTimeFactor')}x real time, renditions "
              f"{[(r['width'], r['height'], r['outputBitrate']) for r in t.get('renditions', [])]}")
        assert t.get("encoder") in expect_encoders, t
        assert t.get("realTimeFactor", 0) >= 0.95, f"the hardware ladder is not real time: {t}"
        play = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", manifest, "-t", "3", "-f", "null", "-"],
                              capture_output=True, text=True, timeout=120)
        assert play.returncode == 0, play.stderr[-2000:]
        return t
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        api.post_and_wait(f"{ev}/stop", {"removeOutputsOnStop": True})
        api.delete_and_wait(ev)


@pytest.mark.product
@pytest.mark.ffmpeg
@pytest.mark.ssh
@pytest.mark.vaapi
def test_premium1080p_ladder_on_vaapi(target, api, tmp_path):
    if not target.ssh_ok("gst-inspect-1.0 vah264lpenc >/dev/null 2>&1 || gst-inspect-1.0 vah264enc >/dev/null 2>&1"
                         " || gst-inspect-1.0 vaapih264enc >/dev/null 2>&1"):
        pytest.skip("no VA-API H.264 encoder registered on the target (driver missing?)")
    t = _ladder_on_target(target, api, tmp_path, "Premium1080p", "1920x1080",
                          {"vah264lpenc", "vah264enc", "vaapih264enc"})
    assert t.get("reason", "").find("/dev/dri/renderD") >= 0, t


@pytest.mark.product
@pytest.mark.ffmpeg
@pytest.mark.ssh
def test_standard_ladder_on_v4l2_m2m(target, api, tmp_path):
    if not target.ssh_ok("gst-inspect-1.0 v4l2h264enc >/dev/null 2>&1"):
        pytest.skip("no V4L2 M2M H.264 encoder (v4l2h264enc) on the target")
    if target.ssh_ok("ls /dev/dri/renderD* >/dev/null 2>&1"):
        pytest.skip("the target has a render node: VA-API is preferred over V4L2 M2M there")
    _ladder_on_target(target, api, tmp_path, "Standard", "1280x720", {"v4l2h264enc"})
