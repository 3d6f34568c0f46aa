"""The upload bandwidth cap set at run time (GET/PUT /edge/v1/sync/settings, the console's Settings page):
it starts as config.toml says, a change is kept across a restart and wins over the file, bad values are
refused with the API's error envelope and change nothing, and an appliance without storage targets says
sync is not configured. (That a cap set this way holds the upload rate is measured in
test_sync_resilience.py::test_upload_rate_stays_within_ten_percent_of_the_cap[console].)"""
from __future__ import annotations

from _storage import config_file


def test_cap_set_at_run_time_is_validated_and_survives_a_restart(make_appliance, tmp_path):
    cloud = tmp_path / "cloud"
    cfg = config_file(tmp_path, f'[storage.good]\nkind = "dir"\npath = "{cloud}"\n',
                      upload_max_mbps=20, upload_unlimited_window="18:00-09:00")
    app = make_appliance(cfg)
    status, _, doc = app.json("GET", "/edge/v1/sync/settings")
    assert status == 200 and doc == {"uploadMaxMbps": 20.0, "uploadUnlimitedWindow": "18:00-09:00", "source": "config"}, doc
    assert app.json("GET", "/edge/v1/sync/settings", auth=False)[0] == 401
    assert app.json("PUT", "/edge/v1/sync/settings", {"uploadMaxMbps": 1}, auth=False)[0] == 401

    for body, code, words in (
        ({"uploadMaxMbps": -1}, "InvalidParameter", "0 (no cap)"),
        ({"uploadMaxMbps": 5, "uploadUnlimitedWindow": "25:00-01:00"}, "InvalidParameter", "uploadUnlimitedWindow"),
        ({"uploadMaxMbps": "fast"}, "BadRequest", "uploadMaxMbps"),
        ({"uploadMaxMbps": 5, "burst": 1}, "BadRequest", "unknown field"),
        ({}, "BadRequest", "uploadMaxMbps"),
    ):
        status, _, err = app.json("PUT", "/edge/v1/sync/settings", body)
        assert status == 400 and err["error"]["code"] == code and words in err["error"]["message"], (body, err)
    assert app.request("PUT", "/edge/v1/sync/settings", raw_body=b"{not json")[0] == 400
    assert app.json("GET", "/edge/v1/sync/settings")[2]["source"] == "config", "a refused change changes nothing"

    status, _, doc = app.json("PUT", "/edge/v1/sync/settings", {"uploadMaxMbps": 2.5, "uploadUnlimitedWindow": "1:30-6:00"})
    assert status == 200 and doc == {"uploadMaxMbps": 2.5, "uploadUnlimitedWindow": "01:30-06:00", "source": "console"}, doc
    app.stop()
    app.start()
    status, _, doc = app.json("GET", "/edge/v1/sync/settings")
    assert doc == {"uploadMaxMbps": 2.5, "uploadUnlimitedWindow": "01:30-06:00", "source": "console"}, \
        "the cap set at run time outlives a restart and wins over config.toml"
    status, _, doc = app.json("PUT", "/edge/v1/sync/settings", {"uploadMaxMbps": 0})
    assert status == 200 and doc["uploadMaxMbps"] == 0 and doc["uploadUnlimitedWindow"] == ""


def test_without_storage_targets_the_settings_say_sync_is_not_configured(make_appliance, tmp_path):
    app = make_appliance(config_file(tmp_path))
    for method, body in (("GET", None), ("PUT", {"uploadMaxMbps": 1})):
        status, _, err = app.json(method, "/edge/v1/sync/settings", body)
        assert status == 404 and "not configured" in err["error"]["message"], (method, err)
