"""SRT ingest into the same live path (issue 4, first part): ffmpeg as an SRT caller with the
event's passphrase, the ready-to-paste URL from the live event, HLS at the locator URL, and a
wrong passphrase refused with a stream event while the good stream keeps flowing."""
import subprocess
import time

import pytest

from appliance import Appliance

FFMPEG_SRC = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
              "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
              "-c:a", "aac", "-ar", "48000"]


@pytest.fixture
def appliance():
    a = Appliance().start()
    yield a
    a.cleanup()


def test_srt_with_passphrase_plays_and_a_wrong_passphrase_is_refused(appliance):
    a = appliance
    p = a.arm_prefix()
    s, _, ev = a.json("PUT", f"{p}/liveEvents/srt1", {"location": "x", "properties": {
        "input": {"streamingProtocol": "SRT", "srtPassphrase": "venue-secret-123", "srtLatency": 200,
                  "keyFrameIntervalDuration": "PT2S"}}})
    assert s == 201, ev
    url = ev["properties"]["input"]["endpoints"][0]["url"]
    assert url.startswith(f"srt://127.0.0.1:{a.srt_port}?streamid=") and "passphrase=venue-secret-123" in url, url
    assert "pbkeylen=16" in url and "latency=200000" in url, url
    assert a.json("PUT", f"{p}/assets/srt-archive", {"properties": {}})[0] == 201
    assert a.json("PUT", f"{p}/liveEvents/srt1/liveOutputs/o1",
                  {"properties": {"assetName": "srt-archive", "archiveWindowLength": "PT5M"}})[0] == 201
    time.sleep(0.3)
    assert a.json("POST", f"{p}/liveEvents/srt1/start")[0] == 202
    deadline = time.time() + 5
    while a.json("GET", f"{p}/liveEvents/srt1")[2]["properties"]["resourceState"] != "Running":
        assert time.time() < deadline
        time.sleep(0.05)
    assert a.json("PUT", f"{p}/streamingLocators/srtloc", {"properties": {
        "assetName": "srt-archive", "streamingPolicyName": "Predefined_ClearStreamingOnly"}})[0] == 201
    paths = a.json("POST", f"{p}/streamingLocators/srtloc/listPaths")[2]["streamingPaths"]
    hls = next(x["paths"][0] for x in paths if x["streamingProtocol"] == "Hls")
    media = hls.rsplit("/", 1)[0] + "/video/index.m3u8"

    enc = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", *FFMPEG_SRC, "-t", "12",
                            "-f", "mpegts", url], stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 15
        while True:
            st, _, body = a.request("GET", media, auth=False)
            if st == 200 and body.count(b".m4s") >= 2:
                break
            assert time.time() < deadline, f"no SRT segments: {st} {body[:300]!r}"
            time.sleep(0.2)
        listed_before = body.count(b".m4s")

        bad = url.replace("venue-secret-123", "wrong-secret-999")
        r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", *FFMPEG_SRC, "-t", "2", "-f", "mpegts", bad],
                           capture_output=True, timeout=60)
        assert r.returncode != 0, "a wrong passphrase must be refused"
        events = a.json("POST", f"{p}/liveEvents/srt1/getStreamEvents")[2]["value"]
        refused = [e for e in events if e["eventType"] == "StreamEvent/InvalidConnection"]
        assert refused and "passphrase" in refused[-1]["data"]["resultMessage"].lower(), events

        time.sleep(2.5)
        st, _, body = a.request("GET", media, auth=False)
        assert st == 200 and body.count(b".m4s") > listed_before, "the good stream stopped advancing"
    finally:
        enc.wait(timeout=30)
    assert enc.returncode == 0, enc.stderr.read().decode()[-500:]
    assert a.json("POST", f"{p}/liveEvents/srt1/stop")[0] == 202
    deadline = time.time() + 10
    while True:
        st, _, body = a.request("GET", media, auth=False)
        if b"#EXT-X-ENDLIST" in body:
            break
        assert time.time() < deadline, body[-300:]
        time.sleep(0.2)
