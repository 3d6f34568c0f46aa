"""V4L2 capture devices get stable names and the service can open them."""
import time

import pytest


@pytest.fixture
def capture_device(target):
    loaded = False
    if not target.ssh_ok("ls /dev/v4l/by-path/* >/dev/null 2>&1") and target.kind == "qemu":
        # The dev image's Debian kernel ships vivid (virtual capture driver).
        target.ssh("modprobe vivid n_devs=1 node_types=0x1 && udevadm settle")
        loaded = True
    deadline = time.monotonic() + 30
    links = []
    while time.monotonic() < deadline:
        links = target.ssh("ls /dev/rms-edge/capture/by-path/ 2>/dev/null", check=False).stdout.split()
        if links:
            break
        time.sleep(1)
    yield links
    if loaded:
        target.ssh("rmmod vivid", check=False)


@pytest.mark.ssh
@pytest.mark.v4l2
def test_capture_device_stable_name_and_access(target, capture_device):
    assert capture_device, "udev rule 70-rms-edge.rules did not create /dev/rms-edge/capture/by-path/*"
    dev = f"/dev/rms-edge/capture/by-path/{capture_device[0]}"
    real = target.ssh(f"readlink -f {dev}").stdout.strip()
    assert real.startswith("/dev/video"), real
    assert target.ssh(f"stat -c %G:%a {real}").stdout.strip() == "video:660"
    # Open it as the service user, inside the service's own mount namespace and device policy.
    target.run_in_service_sandbox(f"exec 3<>{real}")
    # ...while a device outside DeviceAllow= is refused even though file permissions allow it
    # (/dev/net/tun is 0666): the device cgroup of DevicePolicy=closed, not DAC, says no.
    if target.ssh_ok("test -c /dev/net/tun && [ $(stat -c %a /dev/net/tun) = 666 ]"):
        target.ssh("runuser -u rms-edge -- sh -c 'exec 3<>/dev/net/tun'")  # allowed outside the unit
        denied = target.run_in_service_sandbox("exec 3<>/dev/net/tun", check=False)
        assert denied.returncode != 0 and "not permitted" in denied.stderr, denied
