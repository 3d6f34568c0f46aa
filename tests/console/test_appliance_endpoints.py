"""The appliance endpoints the console needs beyond the ARM API, against the real binary:
GET /edge/v1/system, GET /edge/v1/storage and GET/POST/DELETE /edge/v1/keys; and how the console's
files are served (precompressed, ETag, cache lifetimes)."""
from __future__ import annotations

import glob
import gzip
import os
import re
import shutil
import urllib.request


def test_system_report(appliance):
    a = appliance
    status, _, doc = a.json("GET", "/edge/v1/system")
    assert status == 200, doc
    assert doc["version"] == "0.1.0"
    assert doc["identity"] == {"subscriptionId": a.SUBSCRIPTION, "resourceGroup": a.RESOURCE_GROUP,
                               "accountName": a.ACCOUNT, "location": doc["identity"]["location"]}
    total, _, free = shutil.disk_usage(a.data_dir)
    assert doc["disk"]["path"] == a.data_dir
    assert doc["disk"]["totalBytes"] == total
    assert abs(doc["disk"]["availableBytes"] - free) < 512 * 1024 * 1024, "statvfs f_bavail, as df shows it"
    assert doc["disk"]["freeBytes"] >= doc["disk"]["availableBytes"]
    assert doc["cpu"]["cores"] == os.cpu_count() and len(doc["cpu"]["loadAverage"]) == 3
    assert doc["memory"]["totalBytes"] > doc["memory"]["availableBytes"] > 0
    assert doc["memory"]["processRssBytes"] > 1_000_000
    videos = sorted(glob.glob("/dev/video[0-9]*"))
    assert [d["path"] for d in doc["captureDevices"]] == videos
    if not videos:
        assert doc["captureNote"] == "No capture device (/dev/video*) is connected."
    if not glob.glob("/dev/dri/renderD*"):
        assert doc["hardwareEncoders"] == [] and "No hardware video encoder" in doc["hardwareEncoderNote"]
    ingest = {i["protocol"]: i for i in doc["ingest"]}
    assert ingest["RTMP"]["url"] == f"rtmp://127.0.0.1:{a.rtmp_port}/live" and ingest["RTMP"]["available"]
    assert ingest["RTMPS"]["url"] == f"rtmps://127.0.0.1:{a.rtmps_port}/live"
    assert ingest["SRT"]["url"] == f"srt://127.0.0.1:{a.srt_port}"
    assert ingest["RTSP"]["url"] == f"rtsp://127.0.0.1:{a.rtsp_port}/live"
    # The JWT from /auth/token works as well as the raw key.
    status, _, _ = a.json("GET", "/edge/v1/system", token=a.token())
    assert status == 200
    status, _, doc = a.json("GET", "/edge/v1/system", token="rmse_nope")
    assert status == 401 and doc["error"]["code"] == "AuthenticationFailed"


def test_keys_create_list_revoke(appliance):
    a = appliance
    status, _, doc = a.json("GET", "/edge/v1/keys")
    assert status == 200 and len(doc["value"]) == 1
    first = doc["value"][0]
    assert first["revoked"] is None and "secret" not in str(first).lower()
    # The last valid key cannot be revoked: nobody could sign in any more.
    status, _, doc = a.json("DELETE", f"/edge/v1/keys/{first['id']}")
    assert status == 409 and "last valid API key" in doc["error"]["message"], doc
    for bad in ({"name": ""}, {"name": 5}, {"name": "x" * 65}):
        status, _, doc = a.json("POST", "/edge/v1/keys", bad)
        assert status == 400 and doc["error"]["code"] == "InvalidParameter", (bad, doc)
    assert a.request("POST", "/edge/v1/keys", raw_body=b"{not json")[0] == 400
    status, _, new = a.json("POST", "/edge/v1/keys", {"name": "ops laptop"})
    assert status == 201 and new["name"] == "ops laptop" and new["apiKey"].startswith(f"rmse_{new['id']}_")
    status, _, doc = a.json("GET", "/edge/v1/keys")
    assert [k["id"] for k in doc["value"]] == [first["id"], new["id"]]
    assert all("apiKey" not in k for k in doc["value"]), "a secret is shown only at creation"
    # The new key works for the API, for a token, and stops working when revoked.
    assert a.json("GET", a.arm_prefix() + "/liveEvents", token=new["apiKey"])[0] == 200
    jwt = a.request("POST", "/auth/token", {"subscriptionId": a.SUBSCRIPTION, "apiKey": new["apiKey"]}, auth=False)[2].decode()
    assert a.json("GET", "/edge/v1/keys", token=jwt)[0] == 200
    assert a.json("DELETE", f"/edge/v1/keys/{new['id']}", token=new["apiKey"])[0] == 204
    assert a.json("GET", a.arm_prefix() + "/liveEvents", token=new["apiKey"])[0] == 401
    assert a.json("GET", "/edge/v1/keys", token=jwt)[0] == 401, "its tokens stop working too"
    assert a.json("DELETE", f"/edge/v1/keys/{new['id']}")[0] == 404, "already revoked"
    assert a.json("DELETE", "/edge/v1/keys/0000000000000000")[0] == 404
    # Revoking through the API is what `rms-edge keys list` sees.
    status, _, doc = a.json("GET", "/edge/v1/keys")
    assert [k["revoked"] is not None for k in doc["value"]] == [False, True]


def test_storage_sizes(appliance):
    a = appliance
    p = a.arm_prefix()
    status, _, asset = a.json("PUT", f"{p}/assets/rec1", {"properties": {}})
    assert status in (200, 201)
    # A recording directory as edge-record lays it out: <assets>/<assetId>/<rendition>/...
    d = os.path.join(a.data_dir, "assets", asset["properties"]["assetId"], "video")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "1.m4s"), "wb") as f:
        f.write(b"\0" * 5000)
    status, _, doc = a.json("GET", "/edge/v1/storage")
    assert status == 200
    mine = [x for x in doc["assets"] if x["assetId"] == asset["properties"]["assetId"]]
    assert mine == [{"assetId": asset["properties"]["assetId"], "bytes": 5000, "files": 1}], doc


def _get(url: str, headers: dict):
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_console_files_are_precompressed_and_cached(appliance):
    base = appliance.http_base
    # `/` leads to the console (redirect, not followed here).
    opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,), {
        "redirect_request": lambda *a, **k: None}))
    try:
        opener.open(base + "/", timeout=10)
        raise AssertionError("/ did not redirect")
    except urllib.error.HTTPError as e:
        assert e.code in (302, 303, 307) and e.headers["Location"] == "/console/"
    status, h, body = _get(base + "/console/", {"Accept-Encoding": "gzip"})
    assert status == 200 and h["Content-Encoding"] == "gzip" and h["Cache-Control"] == "no-cache"
    assert "default-src 'self'" in h["Content-Security-Policy"]
    html = gzip.decompress(body).decode()
    version = re.search(r"/console/([0-9a-f]{12})/app\.js", html).group(1)
    assert _get(base + "/console/", {"If-None-Match": h["ETag"]})[0] == 304
    status, h, body = _get(f"{base}/console/{version}/vendor/hls.min.js", {"Accept-Encoding": "gzip, br"})
    assert status == 200 and h["Cache-Control"] == "public, max-age=31536000, immutable"
    assert h["Content-Type"].startswith("text/javascript") and len(body) < 200_000
    assert b'"1.7.4"' in gzip.decompress(body)
    status, h, plain = _get(f"{base}/console/{version}/app.js", {})
    assert status == 200 and "Content-Encoding" not in h and plain.startswith(b"//")
    assert _get(f"{base}/console/{version}/nope.js", {})[0] == 404
    # The console is not mistaken for the ARM API or playback.
    status, _, doc = appliance.json("GET", "/console/x/y/z.css", auth=False)
    assert status == 404
