"""Network impairment for the SRT tests (platform-notes §9: no netem in this kernel).

- `NetNs`: a network namespace joined to the host by a veth pair (host 10.231.N.1, namespace 10.231.N.2),
  and an nftables table in the namespace that drops a random share of the UDP datagrams of one port
  (`numgen random mod 100 < P drop`), each way, with counters. Everything is removed by `close()`,
  which never raises; the namespace's name carries this process's pid so leftovers can be told apart.
- `Relay`: tests/ingest/udp_relay.py as a subprocess (seeded delay, jitter, loss)."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from appliance import Appliance

_HERE = Path(__file__).resolve().parent


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {r.returncode}: {r.stderr.strip()}")
    return r


def netns_unavailable() -> str | None:
    """Why a namespace test cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` missing: scripts/install-test-deps.sh installs iproute2 and nftables"
    probe = f"rmsprobe{os.getpid()}"
    r = run("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"`ip netns add` fails: {r.stderr.strip()}"
    try:
        r = run("ip", "netns", "exec", probe, "nft", "add", "table", "inet", "probe", check=False)
        if r.returncode != 0:
            return f"nftables unusable in a namespace: {r.stderr.strip()}"
    finally:
        run("ip", "netns", "del", probe, check=False)
    return None


class NetNs:
    TABLE = "rmsimp"

    def __init__(self):
        tag = f"{os.getpid() % 100000}{random.randrange(100):02d}"
        self.name = f"rmsedge{tag}"
        self.veth_host, self.veth_ns = f"rmh{tag}", f"rmn{tag}"  # <= 15 characters
        used = {int(m) for m in re.findall(r"inet 10\.231\.(\d+)\.", run("ip", "-4", "addr").stdout)}
        self.subnet = random.choice([n for n in range(1, 250) if n not in used])
        self.host_ip, self.ns_ip = f"10.231.{self.subnet}.1", f"10.231.{self.subnet}.2"
        self.created: list[str] = []

    def open(self) -> "NetNs":
        try:
            run("ip", "netns", "add", self.name)
            self.created.append("netns")
            run("ip", "link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
            self.created.append("veth")
            run("ip", "link", "set", self.veth_ns, "netns", self.name)
            run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.veth_host)
            run("ip", "link", "set", self.veth_host, "up")
            self.exec("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.veth_ns)
            self.exec("ip", "link", "set", self.veth_ns, "up")
            self.exec("ip", "link", "set", "lo", "up")
            deadline = time.monotonic() + 5
            while "LOWER_UP" not in run("ip", "-o", "link", "show", self.veth_host).stdout:
                assert time.monotonic() < deadline, f"{self.veth_host} has no carrier"
                time.sleep(0.05)
        except BaseException:
            self.close()
            raise
        return self

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(*self.prefix(), *cmd, check=check)

    def drop(self, udp_port: int, percent: int) -> None:
        """Drops ~`percent` % of the datagrams to and from the host's `udp_port`, each way."""
        t = f"inet {self.TABLE}"
        self.exec("nft", "add", "table", *t.split())
        self.created.append("nft")
        self.exec("nft", "add", "chain", *t.split(), "out", "{ type filter hook output priority 0; }")
        self.exec("nft", "add", "chain", *t.split(), "in", "{ type filter hook input priority 0; }")
        self.exec("nft", "add", "rule", *t.split(), "out", "ip", "daddr", self.host_ip, "udp", "dport", str(udp_port),
                  "numgen", "random", "mod", "100", "<", str(percent), "counter", "drop")
        self.exec("nft", "add", "rule", *t.split(), "out", "ip", "daddr", self.host_ip, "udp", "dport", str(udp_port),
                  "counter")
        self.exec("nft", "add", "rule", *t.split(), "in", "ip", "saddr", self.host_ip, "udp", "sport", str(udp_port),
                  "numgen", "random", "mod", "100", "<", str(percent), "counter", "drop")
        self.exec("nft", "add", "rule", *t.split(), "in", "ip", "saddr", self.host_ip, "udp", "sport", str(udp_port),
                  "counter")

    def counters(self) -> dict:
        """{'out': (dropped, passed), 'in': (dropped, passed)} in packets."""
        doc = json.loads(self.exec("nft", "-j", "list", "table", "inet", self.TABLE).stdout)
        out: dict[str, list[int]] = {}
        for item in doc["nftables"]:
            rule = item.get("rule")
            if not rule:
                continue
            packets = next((e["counter"]["packets"] for e in rule["expr"] if "counter" in e), 0)
            dropping = any("drop" in e for e in rule["expr"])
            out.setdefault(rule["chain"], [0, 0])[0 if dropping else 1] += packets
        return {k: tuple(v) for k, v in out.items()}

    def close(self) -> list[str]:
        """Removes the nft table, the veth pair and the namespace; returns what could not be removed."""
        left = []
        if "nft" in self.created:
            self.exec("nft", "delete", "table", "inet", self.TABLE, check=False)
        if "veth" in self.created:
            # Deleting one end removes the pair, wherever the other end is.
            run("ip", "link", "del", self.veth_host, check=False)
            if self.veth_host in run("ip", "-o", "link", "show", check=False).stdout:
                left.append(self.veth_host)
        if "netns" in self.created:
            for p in run("ip", "netns", "pids", self.name, check=False).stdout.split():
                run("kill", "-9", p, check=False)
            run("ip", "netns", "del", self.name, check=False)
            if self.name in run("ip", "netns", "list", check=False).stdout.split():
                left.append(self.name)
        self.created.clear()
        return left


class ApplianceOn(Appliance):
    """The harness's appliance with its SRT listener on another address (e.g. the host end of a veth)."""

    def __init__(self, srt_host: str, **kw):
        self.srt_host = srt_host
        super().__init__(**kw)

    def args(self) -> list[str]:
        a = super().args()
        a[a.index("--srt-addr") + 1] = f"{self.srt_host}:{self.srt_port}"
        return a


class Relay:
    """udp_relay.py between an SRT caller and the appliance's SRT port."""

    def __init__(self, target: tuple[str, int], artifacts: Path, *, delay_ms: float, jitter_ms: float,
                 loss: float = 0.0, seed: int = 1):
        self.artifacts = artifacts
        self.port_file = artifacts / "relay.port"
        self.stats_file = artifacts / "relay-stats.json"
        for f in (self.port_file, self.stats_file):
            f.unlink(missing_ok=True)
        self.cmd = [sys.executable, str(_HERE / "udp_relay.py"), "--listen", "127.0.0.1:0",
                    "--target", f"{target[0]}:{target[1]}", "--delay", str(delay_ms), "--jitter", str(jitter_ms),
                    "--loss", str(loss), "--seed", str(seed), "--port-file", str(self.port_file),
                    "--stats", str(self.stats_file)]
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> "Relay":
        self._log = open(self.artifacts / "relay.log", "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.port_file.exists():
            assert self.proc.poll() is None, (self.artifacts / "relay.log").read_text()
            assert time.monotonic() < deadline, "the UDP relay did not start"
            time.sleep(0.05)
        self.port = int(self.port_file.read_text())
        return self

    def stop(self) -> dict:
        """Stops the relay; returns its counters."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            self._log.close()
        try:
            return json.loads(self.stats_file.read_text())
        except (OSError, ValueError):
            return {}
