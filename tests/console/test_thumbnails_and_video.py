"""What the console shows of a live input beyond bitrate, against the real binary and a real encoder:
the video as packaged (getStatus `videoInput`: size, frame rate, keyframe interval, measured, not
declared) and the event's thumbnail (GET /edge/v1/liveEvents/{name}/thumbnail: the newest keyframe
decoded by GStreamer in a child process), with the errors a technician meets."""
from __future__ import annotations

import subprocess
import time

import pytest

from _live import setup_live
from _procs import Encoder

pytestmark = pytest.mark.timeout(240)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a baseline JPEG's SOF0 marker."""
    assert data[:3] == b"\xff\xd8\xff", f"not a JPEG: {data[:16]!r}"
    i = data.index(b"\xff\xc0")
    return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")


def gray_stddev(data: bytes, tmp) -> float:
    """The picture's luma spread (a uniform or black frame is ~0; testsrc2 is colourful)."""
    p = tmp / "t.jpg"
    p.write_bytes(data)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(p), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         capture_output=True, check=True).stdout
    mean = sum(raw) / len(raw)
    return (sum((b - mean) ** 2 for b in raw[::7]) / len(raw[::7])) ** 0.5


def thumb(app, event: str, **kw):
    q = "&".join(f"{k}={v}" for k, v in kw.items())
    return app.request("GET", f"/edge/v1/liveEvents/{event}/thumbnail" + (f"?{q}" if q else ""))


def test_video_input_is_measured_and_the_thumbnail_is_the_newest_keyframe(appliance, artifacts, tmp_path):
    app = appliance
    live = setup_live(app, prefix="thumb")
    status, _, err = app.json("GET", f"/edge/v1/liveEvents/{live.event}/thumbnail")
    assert status == 404 and err["error"]["code"] == "ThumbnailNotAvailable" and "no video yet" in err["error"]["message"], err
    assert live.status()["videoInput"] is None

    # A 4 s GOP on an event that expects 2 s: the numbers are what the encoder sends, not what was asked.
    enc = Encoder(live.rtmp_url(), artifacts, size="640x360", duration=60,
                  extra=["-g", "120", "-keyint_min", "120"]).start()
    try:
        deadline = time.monotonic() + 30
        vi = None
        while time.monotonic() < deadline:
            vi = live.status()["videoInput"]
            if vi and vi["keyFrameIntervalSeconds"] is not None:
                break
            time.sleep(0.5)
        enc.assert_alive()
        assert vi and vi["keyFrameIntervalSeconds"] is not None, vi
        assert (vi["width"], vi["height"]) == (640, 360) and vi["codec"].startswith("avc1."), vi
        assert abs(vi["frameRate"] - 30) < 0.5, vi
        assert abs(vi["keyFrameIntervalSeconds"] - 4.0) < 0.05, vi

        status, headers, first = thumb(app, live.event)
        headers = {k.lower(): v for k, v in dict(headers).items()}
        assert status == 200 and headers["content-type"] == "image/jpeg", (status, first[:200])
        assert "no-store" in headers["cache-control"]
        assert jpeg_size(first) == (320, 180)
        assert gray_stddev(first, tmp_path) > 20, "a decoded picture, not a blank frame"
        (artifacts / "thumb-320.jpg").write_bytes(first)
        status, _, big = thumb(app, live.event, width=640)
        assert status == 200 and jpeg_size(big) == (640, 360)
        # After the next keyframe, a new picture.
        changed = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status, _, pic = thumb(app, live.event)
            if status == 200 and pic != first:
                changed = pic
                break
            time.sleep(1)
        assert changed is not None, "the thumbnail follows the stream (testsrc2's clock moves)"
        (artifacts / "thumb-later.jpg").write_bytes(changed)

        for bad in ("width=8", "width=5000", "width=abc"):
            status, _, raw = app.request("GET", f"/edge/v1/liveEvents/{live.event}/thumbnail?{bad}")
            assert status == 400, (bad, status, raw[:200])
        status, _, err = app.json("GET", f"/edge/v1/liveEvents/{live.event}/thumbnail?width=8")
        assert err["error"]["code"] == "InvalidParameter" and "16 to 1280" in err["error"]["message"], err
        assert app.request("GET", f"/edge/v1/liveEvents/{live.event}/thumbnail", auth=False)[0] == 401
    finally:
        enc.stop()

    status, _, err = app.json("GET", "/edge/v1/liveEvents/nosuchevent/thumbnail")
    assert status == 404 and "nosuchevent" in err["error"]["message"], err
    # After the event stops, the camera list keeps its last picture.
    live.stop()
    status, _, last = thumb(app, live.event)
    assert status == 200 and jpeg_size(last) == (320, 180)
    assert live.status()["videoInput"] is None

    # Capture devices: an unknown one is named in the answer, a malformed id is refused.
    status, _, err = app.json("GET", "/edge/v1/captureDevices/usb-nothing-here-video-index0/thumbnail")
    assert status == 404 and "is not connected" in err["error"]["message"], err
    status, _, err = app.json("GET", "/edge/v1/captureDevices/..%2F..%2Fetc/thumbnail")
    assert status == 400 and err["error"]["code"] == "InvalidParameter", err
    assert app.json("GET", "/edge/v1/system")[0] == 200, "the API is still fine"
