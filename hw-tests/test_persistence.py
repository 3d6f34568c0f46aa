"""Data under /data survives a hard reset (power cut) of the appliance."""
import time
import uuid

import pytest


@pytest.mark.power_control
def test_data_survives_hard_reset(target, caps):
    marker = uuid.uuid4().hex[:12]
    if caps["product"]:
        from api_client import ApiClient
        api = ApiClient.connect(target)
        name = f"persist-{marker}"
        s, _, doc = api.put_and_wait(f"/liveEvents/{name}", {
            "location": "Local", "properties": {"input": {"streamingProtocol": "RTMP"},
                                                "encoding": {"encodingType": "PassthroughStandard"}}})
        assert s == 200, doc
    else:
        # Image stand-in: the same durability path (write + fsync under /data/rms-edge).
        s, _, _ = target.http("PUT", "/_standin/state", {"marker": marker})
        assert s == 200
        boots_before = __import__("json").loads(target.http("GET", "/_standin/state")[2])["boots"]
    # Give the filesystem commit interval (data.mount commit=10) a chance only for what the service
    # did NOT fsync; what it acknowledged must already be durable, so reset right away.
    time.sleep(1)
    target.hard_reset()
    time.sleep(5)
    elapsed = target.wait_healthy(timeout=900)
    print(f"hard reset -> healthy: {elapsed:.1f}s")
    if caps["product"]:
        api = ApiClient.connect(target)
        s, _, doc = api.arm("GET", f"/liveEvents/{name}")
        assert s == 200, doc
        api.delete_and_wait(f"/liveEvents/{name}")
    else:
        doc = __import__("json").loads(target.http("GET", "/_standin/state")[2])
        assert doc["value"] == {"marker": marker}, doc
        assert doc["boots"] == boots_before + 1, doc
    if caps["ssh"]:
        target.wait_ssh()
        assert target.unit_props("data.mount", "ActiveState")["ActiveState"] == "active"
