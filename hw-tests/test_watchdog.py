"""The systemd watchdog restarts a process whose critical loop stopped making progress."""
import re
import time

import pytest

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600}


def timespan_seconds(text: str) -> float:
    """systemd's formatted timespan ("30s", "1min 30s", "500ms") in seconds; "infinity"/"0" -> 0."""
    return sum(float(n) * UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(us|ms|min|h|s)\b", text))


@pytest.mark.ssh
@pytest.mark.test_hooks
def test_watchdog_restarts_a_stalled_process(target):
    before = target.unit_props("rms-edge.service", "MainPID", "NRestarts", "WatchdogUSec")
    watchdog_s = timespan_seconds(before["WatchdogUSec"])
    assert watchdog_s > 0, before
    since = target.ssh("date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    status, _, body = target.http("POST", "/_test/stall")
    assert status in (200, 202, 204), (status, body[:200])
    # The process stops sending WATCHDOG=1; within WatchdogSec systemd aborts it, then restarts
    # it after RestartSec; allow generous slack for TCG.
    deadline = time.monotonic() + watchdog_s * 3 + 120
    after = before
    while time.monotonic() < deadline:
        after = target.unit_props("rms-edge.service", "MainPID", "NRestarts", "ActiveState", "SubState")
        if int(after["NRestarts"]) > int(before["NRestarts"]) and after["MainPID"] not in ("0", before["MainPID"]) \
                and (after["ActiveState"], after["SubState"]) == ("active", "running"):
            break
        time.sleep(2)
    else:
        pytest.fail(f"not restarted by the watchdog: before={before} after={after}")
    journal = target.ssh(f"journalctl -u rms-edge.service --since '{since}' --no-pager -o cat", check=False).stdout
    assert "Watchdog timeout" in journal, journal[-2000:]
    target.wait_healthy(timeout=300)
