"""A stream pushed from the host over RTMP plays back over HLS from the appliance."""
import json
import subprocess
import time
import urllib.parse
import uuid

import pytest


@pytest.mark.product
@pytest.mark.ffmpeg
def test_rtmp_push_plays_over_hls(target, api, tmp_path):
    name = "hw" + uuid.uuid4().hex[:10]
    ev = f"/liveEvents/{name}"
    s, _, doc = api.put_and_wait(ev, {"location": "Local", "properties": {
        "input": {"streamingProtocol": "RTMP"}, "encoding": {"encodingType": "PassthroughStandard"}}})
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
        t_push = time.monotonic()
        proc = subprocess.Popen([
            "ffmpeg", "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
            "-f", "lavfi", "-i", "sine", "-t", "120", "-c:v", "libx264", "-preset", "veryfast",
            "-pix_fmt", "yuv420p", "-g", "60", "-c:a", "aac", "-f", "flv", url], stdout=log, stderr=log)
        s, _, paths = api.arm("POST", f"/streamingLocators/{name}-loc/listPaths", {})
        assert s == 200, paths
        hls = next(p["paths"][0] for p in paths["streamingPaths"] if p["streamingProtocol"] == "Hls")
        manifest = target.http_base + hls
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            st, _, body = target.http("GET", manifest)
            # The multivariant playlist lists variants (EXT-X-STREAM-INF) once media exists.
            if st == 200 and b"#EXT-X-STREAM-INF" in body:
                break
            assert proc.poll() is None, (tmp_path / "ffmpeg-push.log").read_text()[-2000:]
            time.sleep(2)
        else:
            pytest.fail(f"no playable HLS at {manifest}")
        # "Plays": a real player decodes 3 s from the manifest.
        play = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", manifest, "-t", "3", "-f", "null", "-"],
                              capture_output=True, text=True, timeout=120)
        assert play.returncode == 0, play.stderr[-2000:]
        print(f"first RTMP byte -> playable HLS: {time.monotonic() - t_push:.1f}s")
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", manifest],
                               capture_output=True, text=True, timeout=60)
        kinds = {s["codec_type"] for s in json.loads(probe.stdout or "{}").get("streams", [])}
        assert "video" in kinds, probe.stderr
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        api.post_and_wait(f"{ev}/stop", {"removeOutputsOnStop": True})
        api.delete_and_wait(ev)

