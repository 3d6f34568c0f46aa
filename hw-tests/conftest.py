"""hw-tests: black-box tests of a booted rms-edge appliance (qemu dev image or a real box).

Capabilities are probed once per session; a test marked with a capability the target lacks is
skipped with the reason, never failed. See hw-tests/README.md.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from target import Target, TargetError  # noqa: E402

# marker -> what it needs
CAPABILITIES = {
    "vaapi": "a VAAPI render node (/dev/dri/renderD*) on the target",
    "v4l2": "a V4L2 capture device on the target (qemu: the vivid driver is loaded by the test)",
    "power_control": "hard power cycling (qemu: QMP; real box: --power-cycle-cmd)",
    "rauc": "RAUC on the target (the Yocto image; not the Debian dev image)",
    "ssh": "SSH access to the target (systemctl, journalctl)",
    "test_hooks": "RMS_EDGE_TEST_HOOKS=1 in the service environment (dev image / meta-rms-edge-ci)",
    "product": "the real rms-edge binary (not the image stand-in): API, ingest, playback",
    "console": "the serial console log",
    "ffmpeg": "ffmpeg/ffprobe on the machine running the tests (stream source and player)",
}


def pytest_addoption(parser):
    g = parser.getgroup("rms-edge hw-tests")
    g.addoption("--target", default=os.environ.get("RMS_EDGE_TARGET"),
                help="qemu:DIR (scripts/dev-image/boot.sh output) or ssh://root@HOST[:PORT] or http://HOST[:PORT]")
    g.addoption("--port", action="append", default=[], metavar="NAME=PORT",
                help="override a port of a real box: http, https, rtmp, rtmps, rtsp, srt, ssh")
    g.addoption("--ssh-key", default=None, help="SSH identity for a real box")
    g.addoption("--api-key", default=os.environ.get("RMS_EDGE_API_KEY"),
                help="API key; default: create one over SSH with `rms-edge keys create`")
    g.addoption("--power-cycle-cmd", default=None, help="shell command that power-cycles a real box")
    g.addoption("--console-log", default=None, help="file receiving the real box's serial console")
    g.addoption("--rauc-bundle", default=None, help="RAUC bundle for the update/rollback test")


def pytest_configure(config):
    for name, what in CAPABILITIES.items():
        config.addinivalue_line("markers", f"{name}: needs {what}")


@pytest.fixture(scope="session")
def target(pytestconfig) -> Target:
    spec = pytestconfig.getoption("--target")
    if not spec:
        pytest.skip("no --target given (e.g. --target qemu:target/dev-image)")
    ports = {}
    for item in pytestconfig.getoption("--port"):
        k, _, v = item.partition("=")
        ports[k] = int(v)
    t = Target.parse(spec, ports=ports, ssh_key=pytestconfig.getoption("--ssh-key"),
                     power_cycle_cmd=pytestconfig.getoption("--power-cycle-cmd"),
                     console_log=pytestconfig.getoption("--console-log"),
                     api_key=pytestconfig.getoption("--api-key"))
    t.extra["rauc_bundle"] = pytestconfig.getoption("--rauc-bundle")
    try:
        t.extra["boot_seconds"] = t.wait_healthy(timeout=float(os.environ.get("HW_TESTS_BOOT_TIMEOUT", "900")))
    except TargetError as e:
        pytest.fail(f"target never became healthy: {e}")
    return t


@pytest.fixture(scope="session")
def caps(target) -> dict[str, bool]:
    c = {name: False for name in CAPABILITIES}
    c["ssh"] = target.has_ssh and target.ssh_ok("true")
    c["power_control"] = target.has_power_control
    c["console"] = target.has_console
    c["ffmpeg"] = bool(shutil.which("ffmpeg") and shutil.which("ffprobe"))
    _, health = target.health()
    c["product"] = bool(health) and not health.get("standin", False)
    if c["ssh"]:
        c["vaapi"] = target.ssh_ok("ls /dev/dri/renderD* >/dev/null 2>&1")
        c["rauc"] = target.ssh_ok("command -v rauc >/dev/null && rauc status >/dev/null 2>&1")
        env = target.unit_props("rms-edge.service", "Environment").get("Environment", "")
        c["test_hooks"] = "RMS_EDGE_TEST_HOOKS=1" in env
        c["v4l2"] = target.ssh_ok("ls /dev/v4l/by-path/* >/dev/null 2>&1") or (
            target.kind == "qemu" and target.ssh_ok("modinfo vivid >/dev/null 2>&1"))
    target.extra["caps"] = c
    _SESSION_CAPS.update(c)
    return c


@pytest.fixture(autouse=True)
def _require_capabilities(request):
    needed = [m.name for m in request.node.iter_markers() if m.name in CAPABILITIES]
    if not needed:
        return
    c = request.getfixturevalue("caps")
    missing = [n for n in needed if not c.get(n)]
    if missing:
        pytest.skip("target lacks: " + "; ".join(f"{n} ({CAPABILITIES[n]})" for n in missing))


def pytest_report_header(config):
    return f"rms-edge hw-tests target: {config.getoption('--target') or '(none: every test skips)'}"


_SESSION_CAPS: dict = {}


def pytest_terminal_summary(terminalreporter):
    # Say what the target offered, so a report shows what was and was not exercised.
    if _SESSION_CAPS:
        have = ", ".join(k for k, v in _SESSION_CAPS.items() if v) or "none"
        lack = ", ".join(k for k, v in _SESSION_CAPS.items() if not v) or "none"
        terminalreporter.write_line(f"target capabilities: present: {have}; missing: {lack}")


# -- API helpers (product only) -------------------------------------------------------------------
@pytest.fixture(scope="session")
def api(target, caps):
    """A small AMS/ARM client bound to the target (needs the real binary)."""
    if not caps["product"]:
        pytest.skip("target runs the image stand-in, not the rms-edge binary")
    from api_client import ApiClient
    return ApiClient.connect(target)
