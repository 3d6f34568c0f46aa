"""Helpers of the RTSP ingest tests: live events of any protocol on the live suite's `Live`."""
from __future__ import annotations

import socket
import time

from _api import Api
from _live import Live, live_event_body, paths_from_list_paths, unique
from _media import iso_duration

FFMPEG_SRC = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
              "-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60",
              "-sc_threshold", "0", "-c:a", "aac", "-ar", "48000"]


def setup_event(app, protocol: str, extra_input: dict | None = None, *, window: str = "PT5M") -> tuple[Live, dict]:
    """A started live event of `protocol` with an asset, a live output and a locator."""
    api = Api(app)
    event, asset, output, loc = unique("rtsp-"), unique("rtsp-asset-"), unique("out"), unique("loc-")
    body = live_event_body()
    body["properties"]["input"]["streamingProtocol"] = protocol
    body["properties"]["input"].update(extra_input or {})
    doc = api.create_live_event(event, body)
    api.create_asset(asset)
    api.create_live_output(event, output, asset, archive=window)
    api.start_live_event(event)
    locator_id = api.create_locator(loc, asset)["properties"]["streamingLocatorId"]
    r = api.meta("POST", f"streamingLocators/{loc}/listPaths")
    assert r.status == 200, r
    hls, dash = paths_from_list_paths(r.doc)
    live = Live(app, api, event, asset, output, loc, doc["properties"]["input"]["accessToken"], locator_id, hls, dash,
                iso_duration(window))
    return live, doc


def wait_event(live: Live, event_type: str, timeout: float = 15.0, pred=lambda e: True) -> dict:
    deadline = time.time() + timeout
    while True:
        evs = [e for e in live.stream_events() if e["eventType"].endswith(event_type) and pred(e)]
        if evs:
            return evs[-1]
        assert time.time() < deadline, f"no {event_type}: {live.stream_events()[-5:]}"
        time.sleep(0.2)


def rtsp_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends raw bytes to the RTSP port; returns what the server answered before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        except (ConnectionResetError, socket.timeout):
            pass
        return out
