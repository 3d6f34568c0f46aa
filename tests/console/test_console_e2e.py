"""Issue 9, end to end in a real browser: a technician signs in to the console served by the real
appliance, goes live through the Go-live flow, copies the RTMP server and stream key from the page
into an encoder (ffmpeg), sees the ingest health turn good and the preview play, stops, finds the
recording in the archive and plays it; a wrong key is refused. Screenshots of every page are kept
in tests/artifacts/console/<test>/.
"""
from __future__ import annotations

import json
import shutil
import time

import pytest

from _browser import Browser
from _procs import Encoder
from appliance import Appliance

pytestmark = pytest.mark.timeout(300)

CURRENT_TIME = "(() => { const v = document.querySelector('{sel}'); return v ? v.currentTime : null; })()"


def video_time(browser, sel: str) -> float:
    return browser.eval(CURRENT_TIME.replace("{sel}", sel)) or 0.0


def wait_playing(browser, sel: str, advance: float, timeout: float, what: str) -> float:
    """Waits until the video's currentTime has moved `advance` seconds past its first value > 0."""
    start = browser.wait_until(
        f"(() => {{ const v = document.querySelector('{sel}'); return v && v.currentTime > 0 ? v.currentTime : 0; }})()",
        timeout, f"{what}: playback starts")
    end = browser.wait_until(
        f"(() => {{ const v = document.querySelector('{sel}'); return v && v.currentTime >= {start + advance} ? v.currentTime : 0; }})()",
        timeout, f"{what}: currentTime advances {advance} s past {start:.2f}")
    return end - start


def sign_in(browser, app, key: str) -> None:
    browser.fill("[data-testid=apikey]", key)
    browser.click("[data-testid=signin]")


def test_wrong_key_is_refused(appliance, browser, artifacts):
    url = browser.goto(appliance.http_base + "/")
    assert url.endswith("/console/#/login"), f"/ should lead to the console's sign-in page, got {url}"
    browser.wait("[data-testid=apikey]")
    browser.screenshot("login")
    sign_in(browser, appliance, "rmse_0000000000000000_" + "0" * 64)
    browser.wait("[data-testid=error]")
    msg = browser.text("[data-testid=error]")
    assert msg.startswith("That API key was not accepted."), msg
    assert "rmse_" in msg, "the sentence says what a key looks like"
    assert browser.eval("location.hash") == "#/login"
    assert browser.eval("sessionStorage.length") == 0, "nothing is kept for a refused key"
    browser.screenshot("login-refused")
    # The console's endpoints refuse requests without a key, as the API does.
    for path in ("/edge/v1/system", "/edge/v1/keys", "/edge/v1/storage"):
        status, _, doc = appliance.json("GET", path, auth=False)
        assert status == 401 and doc["error"]["code"] == "AuthenticationFailed", (path, status, doc)
    assert not browser.page_errors(), browser.page_errors()


def test_go_live_preview_stop_archive_and_every_page(appliance, browser, artifacts):
    app = appliance
    prefix = app.arm_prefix()
    browser.goto(app.http_base + "/console/")
    browser.wait("[data-testid=apikey]")
    sign_in(browser, app, app.api_key)
    browser.wait("[data-testid=events-table], [data-testid=events-card] p.muted")
    stored = browser.eval("sessionStorage.getItem('rms-edge-console')")
    assert stored and app.api_key not in stored and json.loads(stored)["token"].count(".") == 2, \
        "a JWT, not the key, is kept in sessionStorage"
    browser.wait_until("document.querySelector('[data-testid=cpu]') && "
                       "/of one core/.test(document.querySelector('[data-testid=cpu]').textContent)",
                       15, "dashboard shows the appliance's CPU")
    assert "Sync not configured" in browser.text("[data-testid=sync-summary]")
    assert "None" in browser.text("[data-testid=hw-encoder]")
    browser.screenshot("dashboard-empty")

    # -- Go live: one form creates the event, asset, live output and locator, and starts it.
    browser.click("[data-testid=golive-link]")
    browser.wait("[data-testid=ev-name]")
    browser.fill("[data-testid=ev-name]", "bad name!")
    browser.click("[data-testid=golive-create]")
    browser.wait("[data-testid=error]")
    assert "no spaces" in browser.text("[data-testid=error]")
    browser.fill("[data-testid=ev-name]", "stage1")
    browser.select("[data-testid=ev-protocol]", "RTMP")
    browser.screenshot("golive")
    t0 = time.monotonic()
    browser.click("[data-testid=golive-create]")
    browser.wait("[data-testid=obs-server]", timeout_ms=60000)
    status, _, ev = app.json("GET", f"{prefix}/liveEvents/stage1")
    assert status == 200 and ev["properties"]["resourceState"] == "Running", ev
    status, _, outs = app.json("GET", f"{prefix}/liveEvents/stage1/liveOutputs")
    assert len(outs["value"]) == 1, outs
    asset = outs["value"][0]["properties"]["assetName"]
    assert asset.startswith("stage1-")
    status, _, locs = app.json("POST", f"{prefix}/assets/{asset}/listStreamingLocators")
    assert len(locs["streamingLocators"]) == 1, locs
    locator = locs["streamingLocators"][0]["name"]
    print(f"go-live flow took {time.monotonic() - t0:.1f} s (event, asset, output, locator, start)")

    # -- The encoder settings as a technician copies them (OBS's Server and Stream key).
    server = browser.value("[data-testid=obs-server]")
    key = browser.value("[data-testid=obs-key]")
    rtmp = next(e["url"] for e in ev["properties"]["input"]["endpoints"] if e["protocol"] == "RTMP")
    assert server == rtmp and key == ev["properties"]["input"]["accessToken"], (server, key)
    assert browser.value("[data-testid=rtmp-url]") == f"{server}/{key}"
    assert browser.value("[data-testid=rtmps-server]").startswith("rtmps://")
    browser.screenshot("event-waiting")
    assert browser.eval("document.querySelector('[data-testid=health-level]').dataset.level") in ("bad", "warn")

    enc = Encoder(f"{server}/{key}", artifacts, duration=90).start()
    try:
        level = browser.wait_until(
            "(() => { const e = document.querySelector('[data-testid=health-level]'); "
            "return e && e.dataset.level === 'good' ? e.dataset.level : ''; })()", 40, "ingest health turns good")
        assert level == "good"
        enc.assert_alive()
        advanced = wait_playing(browser, "video#preview", 4.0, 60, "live preview")
        assert advanced >= 4.0
        assert browser.eval("!!window.Hls && window.Hls.version") == "1.7.4", "the bundled hls.js plays the preview"
        # The playback URL to copy is the streaming endpoint's host + the locator's listPaths path.
        _, _, paths = app.json("POST", f"{prefix}/streamingLocators/{locator}/listPaths")
        hls_path = next(p["paths"][0] for p in paths["streamingPaths"] if p["streamingProtocol"] == "Hls")
        _, _, sep = app.json("GET", f"{prefix}/streamingEndpoints/default")
        assert browser.value("[data-testid=play-hls]") == f"https://{sep['properties']['hostName']}{hls_path}"
        bitrate = browser.wait_until(
            "(() => { const c = document.querySelector('[data-testid=tracks] tr[data-track=video] td:nth-child(2)'); "
            "return c && /b\\/s$/.test(c.textContent) ? c.textContent : ''; })()", 15, "incoming video bitrate shown")
        assert "Mb/s" in bitrate or "kb/s" in bitrate, bitrate
        line = browser.wait_until("(() => { const e = document.querySelector('[data-testid=video-input]'); "
                                  "return e && /keyframe every/.test(e.textContent) ? e.textContent : ''; })()",
                                  20, "the video input as measured")
        assert line == "Video: 640×360 H.264, 30 fps, keyframe every 2.0 s", line
        browser.screenshot("event-live")

        browser.goto(app.http_base + "/console/#/")
        browser.wait_until("(() => { const r = document.querySelector('tr[data-event=stage1] .badge.good'); "
                           "return r ? r.textContent : ''; })()", 20, "dashboard shows the event healthy")
        browser.screenshot("dashboard-live")
        browser.goto(app.http_base + "/console/#/event/stage1")
        browser.wait("[data-testid=stop]")
    finally:
        enc.stop()
    # -- Stop: the recording is kept as an asset.
    browser.click("[data-testid=stop]")
    browser.wait_until("(() => { const e = document.querySelector('[data-testid=event-state]'); "
                       "return e && e.textContent === 'Stopped'; })()", 60, "event stopped")
    browser.wait("[data-testid=start]")
    browser.screenshot("event-stopped")
    _, _, ev = app.json("GET", f"{prefix}/liveEvents/stage1")
    assert ev["properties"]["resourceState"] == "Stopped"

    # -- Archive: the recording with its duration and size, and it plays.
    browser.click("nav a[href='#/archive']")
    row = f"tr[data-asset='{asset}']"
    browser.wait(row)
    browser.wait_until(f"(() => {{ const d = document.querySelector(\"{row} [data-testid=asset-duration]\"); "
                       "return d && /\\d/.test(d.textContent) ? d.textContent : ''; })()", 20, "asset duration shown")
    size_text = browser.text(f"{row} td:nth-child(4)")
    assert size_text.endswith("MB") or size_text.endswith("kB"), size_text
    assert browser.text(f"{row} [data-testid=asset-sync]") == "Sync not configured"
    browser.click(f"{row} [data-testid=play-asset]")
    wait_playing(browser, "video#archive-player", 2.0, 40, "archive playback")
    browser.eval("window.scrollTo(0, 0)")
    browser.screenshot("archive")

    # -- Cameras: none on this machine, said plainly.
    browser.click("nav a[href='#/cameras']")
    browser.wait("[data-testid=no-capture]")
    assert browser.text("[data-testid=no-capture]") == "No capture devices are connected to this appliance."
    browser.screenshot("cameras")

    # -- Settings: version, listeners, keys (create one; it works against the API; revoke it).
    browser.click("nav a[href='#/settings']")
    browser.wait("[data-testid=keys] table")
    assert browser.text("[data-testid=version]") == "rms-edge 0.1.0"
    assert f"rtmp://127.0.0.1:{app.rtmp_port}/live" in browser.text("[data-testid=listeners]")
    enc_fact = browser.wait_until("(() => { const e = document.querySelector('[data-testid=video-encoder]'); "
                                  "return e && !/Probing/.test(e.textContent) ? e.textContent : ''; })()", 20, "the encoder probe")
    _, _, probe = app.json("GET", "/edge/v1/encoders")
    assert enc_fact.startswith(probe["encoder"] + (" (hardware)" if probe["hardware"] else " (software)")), (enc_fact, probe)
    browser.fill("[data-testid=key-name]", "ops-laptop")
    browser.click("[data-testid=create-key]")
    browser.wait("[data-testid=new-key]")
    new_key = browser.value("[data-testid=new-key]")
    assert new_key.startswith("rmse_")
    status, _, _ = app.json("GET", f"{prefix}/liveEvents", token=new_key)
    assert status == 200, "the key created in the console works against the API"
    browser.screenshot("settings")
    new_id = new_key.split("_")[1]
    browser.click(f"tr[data-key='{new_id}'] [data-testid=revoke-key]")
    browser.wait_until(f"(() => {{ const r = document.querySelector(\"tr[data-key='{new_id}']\"); "
                       "return r && /revoked/.test(r.textContent); })()", 10, "key revoked")
    status, _, _ = app.json("GET", f"{prefix}/liveEvents", token=new_key)
    assert status == 401, "a revoked key stops working"

    # -- Phone layout: nothing wider than the screen.
    browser.viewport(390, 844)
    for page_hash, name in (("#/", "phone-dashboard"), ("#/event/stage1", "phone-event"), ("#/archive", "phone-archive")):
        browser.goto(app.http_base + "/console/" + page_hash)
        browser.wait("main .card")
        time.sleep(0.5)
        overflow = browser.eval("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: the page is {overflow}px wider than a phone screen"
        browser.screenshot(name)

    errors = browser.page_errors()
    assert not errors, f"page errors: {errors}"


def test_srt_event_and_a_refusal_in_plain_words(appliance, browser, artifacts):
    """The Go-live flow for an SRT encoder shows the event's SRT URL; deleting a recording that is
    still being recorded is refused with the API's sentence, and nothing is deleted."""
    app = appliance
    prefix = app.arm_prefix()
    browser.goto(app.http_base + "/console/#/golive")
    browser.wait("[data-testid=apikey]")
    sign_in(browser, app, app.api_key)
    browser.wait("[data-testid=events-card] h2")
    browser.goto(app.http_base + "/console/#/golive")
    browser.wait("[data-testid=ev-name]")
    browser.fill("[data-testid=ev-name]", "srt1")
    browser.select("[data-testid=ev-protocol]", "SRT")
    browser.click("[data-testid=ev-start]")  # create only; start later
    browser.click("[data-testid=golive-create]")
    browser.wait("[data-testid=srt-url]", timeout_ms=60000)
    _, _, ev = app.json("GET", f"{prefix}/liveEvents/srt1")
    assert ev["properties"]["resourceState"] == "Stopped", "created without starting"
    srt = next(e["url"] for e in ev["properties"]["input"]["endpoints"] if e["protocol"] == "SRT")
    assert browser.value("[data-testid=srt-url]") == srt
    assert srt.startswith(f"srt://127.0.0.1:{app.srt_port}?streamid=")
    assert browser.eval("document.querySelector('[data-testid=obs-server]')") is None, "no RTMP fields for SRT"
    browser.wait("[data-testid=start]")
    browser.screenshot("event-srt")

    _, _, outs = app.json("GET", f"{prefix}/liveEvents/srt1/liveOutputs")
    asset = outs["value"][0]["properties"]["assetName"]
    browser.click("nav a[href='#/archive']")
    browser.wait(f"tr[data-asset='{asset}']")
    browser.click(f"tr[data-asset='{asset}'] [data-testid=delete-asset]")
    browser.wait("[data-testid=error]")
    msg = browser.text("[data-testid=error]")
    assert msg.startswith("The asset is being recorded by live output") and "first" in msg, msg
    browser.screenshot("archive-refused")
    assert app.json("GET", f"{prefix}/assets/{asset}")[0] == 200, "nothing was deleted"

    # -- Start and stop from the event page, with progress; a second start records into a new asset.
    def running_state(want: str) -> None:
        browser.wait_until("(() => { const e = document.querySelector('[data-testid=event-state]'); "
                           f"return e && e.textContent === '{want}'; }})()", 60, f"event {want}")

    browser.goto(app.http_base + "/console/#/event/srt1")
    browser.click("[data-testid=start]")
    running_state("Running")
    steps = browser.eval("[...document.querySelectorAll('[data-testid=event-steps] li')].map((l) => [l.textContent, l.className])")
    assert steps == [["Starting the live event", "done"]], steps
    browser.click("[data-testid=stop]")
    running_state("Stopped")
    assert app.json("GET", f"{prefix}/liveEvents/srt1/liveOutputs")[2]["value"] == [], "stop removed the output"
    time.sleep(1.1)  # names carry a UTC stamp to the second
    browser.click("[data-testid=start]")
    running_state("Running")
    steps = [t for t, _ in browser.eval(
        "[...document.querySelectorAll('[data-testid=event-steps] li')].map((l) => [l.textContent, l.className])")]
    assert [t.split(" ")[1] for t in steps[:3]] == ["asset", "live", "streaming"] and steps[3] == "Starting the live event", steps
    second = app.json("GET", f"{prefix}/liveEvents/srt1/liveOutputs")[2]["value"][0]["properties"]["assetName"]
    assert second != asset and second.startswith("srt1-"), (asset, second)
    browser.screenshot("event-restarted")
    browser.click("[data-testid=stop]")
    running_state("Stopped")
    assert not browser.page_errors(), browser.page_errors()

    # -- An IP camera added from the cameras page: an RTSP pull event; its password is not shown.
    browser.click("nav a[href='#/cameras']")
    browser.wait("[data-testid=cam-url]")
    browser.fill("[data-testid=cam-url]", "http://192.0.2.10/stream1")
    browser.click("[data-testid=cam-add]")
    browser.wait("[data-testid=error]")
    assert "rtsp://" in browser.text("[data-testid=error]")
    browser.fill("[data-testid=cam-name]", "cam1")
    browser.fill("[data-testid=cam-url]", "rtsp://admin:s3cret@192.0.2.10:554/stream1")
    browser.click("[data-testid=cam-add]")
    browser.wait("[data-testid=camera-url]", timeout_ms=60000)
    shown = browser.value("[data-testid=camera-url]")
    assert "192.0.2.10" in shown and "s3cret" not in shown, shown
    _, _, cam = app.json("GET", f"{prefix}/liveEvents/cam1")
    assert cam["properties"]["input"]["streamingProtocol"] == "RTSPPull"
    browser.click("nav a[href='#/cameras']")
    browser.wait("a[href='#/event/cam1']")
    browser.screenshot("cameras-with-camera")
    assert not browser.page_errors(), browser.page_errors()


def test_archive_sync_state_and_retry(artifacts, tmp_path):
    """With a storage target configured (a directory, edge-sync's simplest kind), the console shows
    the queue, the target and each recording's sync state as it moves to Synced; Retry sync queues
    it again."""
    cloud = tmp_path / "cloud"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'default-storage = "nas"\n\n[storage.nas]\nkind = "dir"\npath = "{cloud}"\n')
    app = Appliance(extra_args=["--config", str(cfg)]).start()
    browser = Browser(artifacts)
    enc = None
    try:
        prefix = app.arm_prefix()
        browser.goto(app.http_base + "/console/")
        browser.wait("[data-testid=apikey]")
        sign_in(browser, app, app.api_key)
        browser.wait_until("(() => { const e = document.querySelector('[data-testid=sync-summary]'); "
                           "return e && e.textContent; })()", 15, "sync summary")
        assert browser.text("[data-testid=sync-summary]") == "Nothing waiting"
        browser.goto(app.http_base + "/console/#/golive")
        browser.wait("[data-testid=ev-name]")
        browser.fill("[data-testid=ev-name]", "synced1")
        browser.click("[data-testid=golive-create]")
        browser.wait("[data-testid=rtmp-url]", timeout_ms=60000)
        enc = Encoder(browser.value("[data-testid=rtmp-url]"), artifacts, duration=60).start()
        browser.wait_until("(() => { const e = document.querySelector('[data-testid=health-level]'); "
                           "return e && e.dataset.level === 'good'; })()", 40, "ingest health good")
        time.sleep(5)  # a few segments recorded
        enc.stop()
        browser.click("[data-testid=stop]")
        browser.wait("[data-testid=start]", timeout_ms=60000)
        _, _, assets = app.json("GET", f"{prefix}/assets")
        asset = next(a["name"] for a in assets["value"] if a["name"].startswith("synced1-"))
        browser.click("nav a[href='#/archive']")
        cell = f"tr[data-asset='{asset}'] [data-testid=asset-sync]"
        browser.wait(cell)
        state = browser.wait_until(f"(() => {{ const c = document.querySelector(\"{cell}\"); "
                                   "return c && c.textContent.startsWith('Synced') ? c.textContent : ''; })()",
                                   60, "the recording's sync state reaches Synced without a reload")
        assert state.startswith("Synced")
        doc = app.json("GET", f"{prefix}/assets/{asset}")[2]["properties"]["edgeSync"]
        assert doc["state"] == "synced" and doc["bytesDone"] == doc["bytesTotal"] > 0, doc
        browser.screenshot("archive-synced")
        browser.click(f"tr[data-asset='{asset}'] [data-testid=retry-sync]")
        browser.wait("p.notice")
        assert browser.text("p.notice") == f"Sync of {asset} queued again."
        browser.click("nav a[href='#/settings']")
        browser.wait("ul[data-testid=storage-targets]")
        targets = browser.text("ul[data-testid=storage-targets]")
        assert "nas" in targets and "dir" in targets, targets
        browser.screenshot("settings-sync")
        assert not browser.page_errors(), browser.page_errors()
    finally:
        if enc:
            enc.close()
        browser.close()
        app.stop()
        shutil.copy(app.log_path, artifacts / "rms-edge.log")
        app.cleanup()


def test_cameras_page_adds_an_ip_camera_and_shows_its_picture_and_video_numbers(appliance, browser, artifacts):
    """Cameras: an IP camera (gst-rtsp-server with a password) is added from the Cameras page, started from its
    event page, and then shows its thumbnail (decoded from the newest keyframe) on the Cameras page; the event
    page and dashboard show the video as measured (size, frame rate, keyframe interval)."""
    import subprocess
    from pathlib import Path

    from appliance import free_port

    app = appliance
    port = free_port()
    cam_log = open(artifacts / "camera.log", "w")
    camera = subprocess.Popen(["/usr/bin/python3", str(Path(__file__).resolve().parents[1] / "ingest" / "rtsp_camera.py"),
                               str(port), "cam", "s3cret"], stdout=cam_log, stderr=subprocess.STDOUT)
    try:
        browser.goto(app.http_base + "/console/")
        browser.wait("[data-testid=apikey]")
        sign_in(browser, app, app.api_key)
        browser.wait("[data-testid=events-card] h2")
        browser.click("nav a[href='#/cameras']")
        browser.wait("[data-testid=cam-url]")
        assert "No IP cameras yet" in browser.text("[data-testid=rtsp-cameras]")
        browser.fill("[data-testid=cam-name]", "lobby")
        browser.fill("[data-testid=cam-url]", f"rtsp://cam:s3cret@127.0.0.1:{port}/cam")
        browser.click("[data-testid=cam-add]")
        browser.wait("[data-testid=start]", timeout_ms=60000)
        browser.click("[data-testid=start]")
        browser.wait_until("(() => { const e = document.querySelector('[data-testid=health-level]'); "
                           "return e && e.dataset.level === 'good' ? 'good' : ''; })()", 60, "camera health turns good")
        line = browser.wait_until("(() => { const e = document.querySelector('[data-testid=video-input]'); "
                                  "return e && /keyframe every/.test(e.textContent) ? e.textContent : ''; })()",
                                  30, "the video input line")
        assert line.startswith("Video: 640×360 H.264, 30 fps, keyframe every 2.0 s"), line
        assert browser.eval("document.querySelector('[data-testid=gop-warning]')") is None, "the camera's GOP is the event's"
        browser.screenshot("camera-event")

        browser.click("nav a[href='#/cameras']")
        tile = "[data-camera=lobby]"
        browser.wait(tile)
        width = browser.wait_until(f"(() => {{ const i = document.querySelector('{tile} img[data-testid=camera-thumb]'); "
                                   "return i && !i.hidden && i.complete && i.naturalWidth ? i.naturalWidth : 0; })()",
                                   30, "the camera's thumbnail")
        assert width == 320
        assert browser.eval(f"document.querySelector('{tile} img').naturalHeight") == 180
        assert "s3cret" not in browser.text(tile), "the camera's password is not shown"
        browser.screenshot("cameras-rtsp")

        browser.goto(app.http_base + "/console/#/")
        cell = browser.wait_until("(() => { const c = document.querySelector('tr[data-event=lobby] [data-testid=event-video]'); "
                                  "return c && /keyframe \\d/.test(c.textContent) ? c.textContent : ''; })()",
                                  20, "dashboard shows frame rate and keyframe interval")
        assert cell == "30 fps, keyframe 2.0 s", cell
        browser.screenshot("dashboard-camera")
        assert not browser.page_errors(), browser.page_errors()
    finally:
        camera.terminate()
        camera.wait(10)
        cam_log.close()


def test_settings_page_sets_the_upload_bandwidth_cap(browser, artifacts, tmp_path):
    """Settings: on an appliance with a storage target, the upload cap from config.toml is shown and changed
    from the page; the API then reports the new cap; a bad window is refused in a sentence."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'upload-max-mbps = 20\n\n[storage.venue]\nkind = "dir"\npath = "{tmp_path / "cloud"}"\n')
    app = Appliance(extra_args=["--config", str(cfg)])
    app.start()
    try:
        browser.goto(app.http_base + "/console/#/settings")
        browser.wait("[data-testid=apikey]")
        sign_in(browser, app, app.api_key)
        browser.wait("[data-testid=events-card] h2")
        browser.goto(app.http_base + "/console/#/settings")
        now = browser.wait_until("(() => { const e = document.querySelector('[data-testid=cap-now]'); "
                                 "return e && /Uploads/.test(e.textContent) ? e.textContent : ''; })()", 15, "the cap now")
        assert now == "Uploads are capped at 20 Mbit/s (from config.toml).", now
        assert browser.value("[data-testid=cap-mbps]") == "20"
        browser.fill("[data-testid=cap-window]", "25:00-01:00")
        browser.click("[data-testid=cap-save]")
        browser.wait("[data-testid=error]")
        assert "uploadUnlimitedWindow" in browser.text("[data-testid=error]")
        browser.fill("[data-testid=cap-mbps]", "6")
        browser.fill("[data-testid=cap-window]", "22:00-06:00")
        browser.click("[data-testid=cap-save]")
        browser.wait("[data-testid=cap-saved]")
        assert browser.text("[data-testid=cap-now]") == "Uploads are capped at 6 Mbit/s, except 22:00-06:00 UTC (set here)."
        status, _, doc = app.json("GET", "/edge/v1/sync/settings")
        assert doc == {"uploadMaxMbps": 6.0, "uploadUnlimitedWindow": "22:00-06:00", "source": "console"}, doc
        browser.screenshot("settings-cap")
        assert not browser.page_errors(), browser.page_errors()
    finally:
        app.stop()
        shutil.copy(app.log_path, artifacts / "rms-edge.log")
        app.cleanup()
