"""A live event stops itself after `event-max-duration-secs` (RMS: 12 h), keeping its
recording, and says so in its stream events."""
import time

from appliance import Appliance


def test_event_stops_itself_after_its_maximum_duration():
    with Appliance(extra_args=["--event-max-duration-secs", "8"]) as a:
        p = a.arm_prefix()
        s, _, _ = a.json("PUT", f"{p}/liveEvents/short", {"location": "x", "properties": {"input": {"streamingProtocol": "RTMP"}}})
        assert s == 201
        s, _, _ = a.json("POST", f"{p}/liveEvents/short/start")
        assert s == 202
        deadline = time.time() + 6
        while a.json("GET", f"{p}/liveEvents/short")[2]["properties"]["resourceState"] != "Running":
            assert time.time() < deadline, "never reached Running"
            time.sleep(0.05)
        time.sleep(1)
        assert a.json("GET", f"{p}/liveEvents/short")[2]["properties"]["resourceState"] == "Running", "stopped too early"
        deadline = time.time() + 25
        while a.json("GET", f"{p}/liveEvents/short")[2]["properties"]["resourceState"] != "Stopped":
            assert time.time() < deadline, "the event did not stop itself"
            time.sleep(0.1)
        events = a.json("POST", f"{p}/liveEvents/short/getStreamEvents")[2]["value"]
        assert any(e["data"].get("resultCode") == "MPE_INGEST_MAX_DURATION" for e in events), events
