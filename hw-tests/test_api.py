"""The management API answers on the appliance (black box, product binary only)."""
import pytest


@pytest.mark.product
def test_api_requires_auth(api):
    s, h, doc = api.arm("GET", "/liveEvents", auth=False)
    assert s == 401, (s, doc)
    assert "error" in doc


@pytest.mark.product
def test_token_then_list_live_events(api):
    s, _, doc = api.arm("GET", "/liveEvents")
    assert s == 200, doc
    assert isinstance(doc.get("value"), list)


@pytest.mark.product
def test_default_streaming_endpoint(api):
    s, _, doc = api.arm("GET", "/streamingEndpoints/default")
    assert s == 200, doc
    assert doc["properties"]["hostName"]
