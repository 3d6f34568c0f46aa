"""A/B updates with RAUC: the booted slot is confirmed only after the health gate; an update
switches slots and is confirmed; a broken update rolls back (Yocto image only)."""
import json
import time
from pathlib import Path

import pytest


def rauc_status(target) -> dict:
    return json.loads(target.ssh("rauc status --output-format=json").stdout)


@pytest.mark.ssh
@pytest.mark.rauc
def test_booted_slot_marked_good_after_health_gate(target):
    p = target.unit_props("rms-edge-mark-good.service", "ActiveState", "Result", "ExecMainStartTimestampMonotonic")
    assert (p["ActiveState"], p["Result"]) == ("active", "success"), p
    gate = target.unit_props("rms-edge-healthcheck.service", "ActiveEnterTimestampMonotonic")
    assert int(p["ExecMainStartTimestampMonotonic"]) >= int(gate["ActiveEnterTimestampMonotonic"])
    st = rauc_status(target)
    booted = st["booted"]
    slots = [s for entry in st["slots"] for s in entry.values()]
    mine = [s for s in slots if s.get("bootname") == booted]
    assert mine and mine[0].get("boot_status") == "good", st


@pytest.mark.ssh
@pytest.mark.rauc
def test_update_switches_slot_and_is_confirmed(target):
    bundle = target.extra.get("rauc_bundle")
    if not bundle:
        pytest.skip("no --rauc-bundle given")
    before = rauc_status(target)["booted"]
    remote = "/data/update.raucb"
    key = ["-i", target.ssh_key] if target.ssh_key else []
    import subprocess
    subprocess.run(["scp", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-P", str(target.ports["ssh"]), *key, str(Path(bundle)),
                    f"{target.ssh_user}@{target.host}:{remote}"], check=True, timeout=600)
    target.ssh(f"rauc install {remote} && rm -f {remote}", timeout=1800)
    target.ssh("systemctl reboot", check=False)
    time.sleep(20)
    target.wait_healthy(timeout=900)
    target.wait_ssh()
    st = rauc_status(target)
    assert st["booted"] != before, st
    test_booted_slot_marked_good_after_health_gate(target)
