"""How hw-tests reach a booted appliance: only over the network (HTTP, ingest ports, SSH), the
serial console and the power switch. Two kinds of target:

* ``qemu:DIR``: the development image booted by ``scripts/dev-image/boot.sh DIR``; everything is
  read from ``DIR/target.json`` (forwarded ports, SSH key, QMP socket for hard resets, console log).
* ``ssh://USER@HOST[:PORT]`` or ``http://HOST[:PORT]``: a real box. Listener ports are the
  defaults of ``rootfs/etc/rms-edge/config.toml`` unless overridden with ``--port NAME=PORT``;
  power control needs ``--power-cycle-cmd`` (e.g. a PDU or relay command); the console needs
  ``--console-log FILE`` (a file your serial logger appends to).
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORTS = {"ssh": 22, "http": 80, "https": 443, "rtmp": 1935, "rtmps": 2935, "rtsp": 554, "srt": 8890}


class TargetError(RuntimeError):
    pass


@dataclass
class Target:
    kind: str                      # "qemu" or "remote"
    host: str                      # address the host-side tests connect to
    ports: dict[str, int]          # host-side ports (forwarded ones for qemu)
    guest_ports: dict[str, int]    # ports inside the appliance (what config.toml says)
    ssh_user: str | None = None
    ssh_key: str | None = None
    qmp: str | None = None
    console_log: str | None = None
    power_cycle_cmd: str | None = None
    outdir: str | None = None
    api_key: str | None = None
    extra: dict = field(default_factory=dict)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def parse(cls, spec: str, *, ports: dict[str, int] | None = None, ssh_key: str | None = None,
              power_cycle_cmd: str | None = None, console_log: str | None = None,
              api_key: str | None = None) -> "Target":
        if spec.startswith("qemu:"):
            outdir = Path(spec[5:]).resolve()
            meta_path = outdir / "target.json"
            if not meta_path.exists():
                raise TargetError(f"{meta_path} missing: boot the image with scripts/dev-image/boot.sh {outdir}")
            meta = json.loads(meta_path.read_text())
            return cls(kind="qemu", host=meta["host"], ports=dict(meta["ports"]),
                       guest_ports=dict(meta.get("guest_ports", {})), ssh_user=meta.get("ssh_user", "root"),
                       ssh_key=ssh_key or meta.get("ssh_key"), qmp=meta.get("qmp"),
                       console_log=console_log or meta.get("console_log"), outdir=str(outdir),
                       power_cycle_cmd=power_cycle_cmd, api_key=api_key)
        u = urllib.parse.urlsplit(spec if "://" in spec else "ssh://" + spec)
        p = dict(DEFAULT_PORTS)
        if u.scheme == "ssh" and u.port:
            p["ssh"] = u.port
        if u.scheme == "http" and u.port:
            p["http"] = u.port
        p.update(ports or {})
        guest = {k: v for k, v in p.items() if k != "ssh"}
        return cls(kind="remote", host=u.hostname or "", ports=p, guest_ports=guest,
                   ssh_user=(u.username or "root") if u.scheme == "ssh" else None, ssh_key=ssh_key,
                   console_log=console_log, power_cycle_cmd=power_cycle_cmd, api_key=api_key)

    # -- HTTP ----------------------------------------------------------------------------------
    @property
    def http_base(self) -> str:
        return f"http://{self.host}:{self.ports['http']}"

    def http(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 30):
        """Returns (status, headers, bytes)."""
        url = path if path.startswith("http") else self.http_base + path
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        req = urllib.request.Request(url, data=data, method=method)
        if isinstance(body, (dict, list)):
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def health(self, timeout: float = 5) -> tuple[int, dict | None]:
        try:
            status, _, raw = self.http("GET", "/healthz", timeout=timeout)
        except (urllib.error.URLError, OSError, TimeoutError):
            return 0, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None

    def wait_healthy(self, timeout: float = 600, interval: float = 2) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.health()[0] == 200:
                return time.monotonic() - t0
            time.sleep(interval)
        raise TargetError(f"/healthz did not answer 200 within {timeout:.0f}s")

    # -- SSH -------------------------------------------------------------------------------------
    @property
    def has_ssh(self) -> bool:
        return self.ssh_user is not None

    def ssh(self, command: str, *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        if not self.has_ssh:
            raise TargetError("no SSH access to this target")
        argv = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-p", str(self.ports["ssh"])]
        if self.ssh_key:
            argv += ["-i", self.ssh_key]
        argv += [f"{self.ssh_user}@{self.host}", command]
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and cp.returncode != 0:
            raise TargetError(f"ssh {command!r} -> {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
        return cp

    def ssh_ok(self, command: str) -> bool:
        try:
            return self.ssh(command, check=False, timeout=60).returncode == 0
        except (TargetError, subprocess.TimeoutExpired, OSError):
            return False

    def wait_ssh(self, timeout: float = 600) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.ssh_ok("true"):
                return
            time.sleep(3)
        raise TargetError("SSH did not come up")

    def unit_props(self, unit: str, *props: str) -> dict[str, str]:
        out = self.ssh(f"systemctl show {shlex.quote(unit)} " + " ".join(f"-p {p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def run_in_service_sandbox(self, command: str, *, check: bool = True) -> subprocess.CompletedProcess:
        """Run `command` as the service user inside rms-edge.service's cgroup (so its DevicePolicy /
        DeviceAllow BPF filter applies) and mount namespace (ProtectSystem, PrivateTmp, ...)."""
        pid = self.unit_props("rms-edge.service", "MainPID")["MainPID"]
        cg = self.ssh(f"cut -d: -f3 /proc/{pid}/cgroup").stdout.strip().splitlines()[0]
        inner = shlex.quote(f"exec nsenter -t {pid} -m -- runuser -u rms-edge -- sh -c {shlex.quote(command)}")
        return self.ssh(f"sh -c 'echo $$ > /sys/fs/cgroup{cg}/cgroup.procs && '{inner}", check=check)

    # -- power -----------------------------------------------------------------------------------
    @property
    def has_power_control(self) -> bool:
        return bool(self.qmp and os.path.exists(self.qmp)) or bool(self.power_cycle_cmd)

    def hard_reset(self) -> None:
        """Power cut + power on: no shutdown, no sync. qemu: QMP system_reset."""
        if self.qmp and os.path.exists(self.qmp):
            qmp_command(self.qmp, "system_reset")
        elif self.power_cycle_cmd:
            subprocess.run(self.power_cycle_cmd, shell=True, check=True, timeout=120)
        else:
            raise TargetError("no power control for this target")

    # -- console ---------------------------------------------------------------------------------
    @property
    def has_console(self) -> bool:
        return bool(self.console_log and os.path.exists(self.console_log))

    def console_text(self) -> str:
        return Path(self.console_log).read_text(errors="replace") if self.has_console else ""


def qmp_command(path: str, command: str, arguments: dict | None = None) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        f = s.makefile("rwb")
        f.readline()  # greeting
        f.write(json.dumps({"execute": "qmp_capabilities"}).encode() + b"\n")
        f.flush()
        f.readline()
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        f.write(json.dumps(msg).encode() + b"\n")
        f.flush()
        while True:
            reply = json.loads(f.readline())
            if "return" in reply or "error" in reply:
                if "error" in reply:
                    raise TargetError(f"QMP {command}: {reply['error']}")
                return reply["return"]
