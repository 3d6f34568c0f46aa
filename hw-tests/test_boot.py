"""Boot: the service reaches READY under systemd, is healthy, hardened, and runs where it should."""
import re

import pytest


def test_healthz_answers_ok(target):
    status, doc = target.health()
    assert status == 200, status
    assert doc and doc.get("status") == "ok", doc
    print(f"test start -> healthy: {target.extra.get('boot_seconds', 0):.1f}s (power-on -> healthy: boot.sh --wait)")


@pytest.mark.ssh
def test_service_reached_ready_under_systemd(target):
    p = target.unit_props("rms-edge.service", "Type", "ActiveState", "SubState", "WatchdogUSec",
                          "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic", "StatusText",
                          "NotifyAccess", "Restart")
    assert p["Type"] == "notify"
    # For Type=notify, "active (running)" is only entered after READY=1.
    assert (p["ActiveState"], p["SubState"]) == ("active", "running"), p
    assert p["NotifyAccess"] == "main"
    assert p["Restart"] == "on-failure"
    assert p["WatchdogUSec"] not in ("0", "infinity", ""), p
    ready_s = (int(p["ActiveEnterTimestampMonotonic"]) - int(p["ExecMainStartTimestampMonotonic"])) / 1e6
    print(f"rms-edge start -> READY=1: {ready_s:.2f}s; STATUS={p['StatusText']!r}")


@pytest.mark.ssh
def test_boot_completes_without_failed_units(target):
    state = target.ssh("systemctl is-system-running --wait", check=False, timeout=600).stdout.strip()
    failed = target.ssh("systemctl --failed --no-legend --plain", check=False).stdout.strip()
    assert state == "running", f"{state}; failed units:\n{failed}"
    # The health gate ran and boot-complete.target (what mark-good waits for) was reached.
    assert target.unit_props("rms-edge-healthcheck.service", "ActiveState")["ActiveState"] == "active"
    assert target.unit_props("boot-complete.target", "ActiveState")["ActiveState"] == "active"
    print(target.ssh("systemd-analyze", check=False).stdout.strip())


@pytest.mark.ssh
def test_runs_unprivileged_with_only_bind_capability(target):
    pid = target.unit_props("rms-edge.service", "MainPID")["MainPID"]
    status = target.ssh(f"cat /proc/{pid}/status").stdout
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", status, re.M))
    uid = fields["Uid"].split()[0]
    user = target.ssh(f"getent passwd {uid} | cut -d: -f1").stdout.strip()
    assert user == "rms-edge"
    assert fields["NoNewPrivs"] == "1"
    assert fields["Seccomp"] == "2"
    # Either no capability at all, or CAP_NET_BIND_SERVICE (bit 10) alone when a port < 1024 is configured.
    for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(fields[k], 16) in (0, 1 << 10), (k, fields[k])
    groups = target.ssh("id -nG rms-edge").stdout.split()
    assert {"render", "video"} <= set(groups), groups


@pytest.mark.ssh
def test_exposure_score_at_most_2(target):
    out = target.ssh("systemd-analyze security --no-pager rms-edge.service", check=False).stdout
    m = re.search(r"Overall exposure level for rms-edge.service: (\d+\.\d+)", out)
    assert m, out[-2000:]
    assert float(m.group(1)) <= 2.0, m.group(0)


@pytest.mark.ssh
def test_read_only_root_and_state_on_data(target):
    assert "ro" in target.ssh("findmnt -no OPTIONS /").stdout.split(",")
    assert "rw" in target.ssh("findmnt -no OPTIONS /data").stdout.split(",")
    owner = target.ssh("stat -c %U:%G:%a /data/rms-edge").stdout.strip()
    assert owner == "rms-edge:rms-edge:750", owner
    # Nothing the service wrote lives outside /data (ProtectSystem=strict + ReadWritePaths).
    rw = target.unit_props("rms-edge.service", "ReadWritePaths")["ReadWritePaths"]
    assert rw.split() == ["/data/rms-edge"], rw


@pytest.mark.ssh
def test_firewall_opens_only_configured_ports(target):
    rules = target.ssh("nft list table inet rms_edge").stdout
    assert "policy drop" in rules
    opened = {(proto, int(port)) for proto, port in re.findall(r"(tcp|udp) dport (\d+) accept", rules)}
    expected = {("tcp", target.guest_ports[k]) for k in ("http", "https", "rtmp", "rtmps", "rtsp")}
    expected.add(("udp", target.guest_ports["srt"]))
    extra = opened - expected - {("udp", 68), ("udp", 546), ("tcp", 22)}
    assert expected <= opened, (expected - opened)
    assert not extra, f"ports open that no listener uses: {sorted(extra)}"


@pytest.mark.console
def test_console_shows_service_start(target):
    text = target.console_text()
    assert "rms-edge" in text and ("Started" in text or "login:" in text), text[-3000:]


@pytest.mark.ssh
def test_idle_memory(target):
    """Records the service's RSS at idle (docs/image.md, benchmarks); fails only if absurd."""
    pid = target.unit_props("rms-edge.service", "MainPID")["MainPID"]
    rss_kb = int(re.search(r"VmRSS:\s+(\d+)", target.ssh(f"cat /proc/{pid}/status").stdout).group(1))
    cg = target.unit_props("rms-edge.service", "MemoryCurrent")["MemoryCurrent"]
    print(f"rms-edge idle RSS: {rss_kb / 1024:.1f} MiB (cgroup MemoryCurrent {cg})")
    assert rss_kb < 512 * 1024
