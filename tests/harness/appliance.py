"""Start the real rms-edge binary for black-box tests.

Each Appliance gets its own data directory and its own free ports, so tests never assume
1935/8080 are free and never share state. The API key is the one the binary printed on first
start (parsed from stdout), which also proves the first-start path.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def binary() -> str:
    env = os.environ.get("RMS_EDGE_BIN")
    if env:
        return env
    for profile in ("debug", "release"):
        p = ROOT / "target" / profile / "rms-edge"
        if p.exists():
            return str(p)
    raise RuntimeError("rms-edge binary not built: run `cargo build` or set RMS_EDGE_BIN")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports, each also free for UDP. The sockets are held until all are
    chosen: picking them one after another can hand out the same port twice."""
    held, ports = [], []
    try:
        while len(ports) < n:
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            held.append(t)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                u.close()
                continue
            held.append(u)
            ports.append(port)
        return ports
    finally:
        for s in held:
            s.close()


class Appliance:
    """One running rms-edge process. Use as a context manager or call start()/stop()."""

    SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
    RESOURCE_GROUP = "venue-rg"
    ACCOUNT = "edgeaccount"

    def __init__(self, data_dir: str | None = None, extra_args: list[str] | None = None):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="rms-edge-test-")
        os.makedirs(self.data_dir, exist_ok=True)
        self._pick_ports()
        self._started_once = False
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.api_key: str | None = None
        self.stdout_lines: list[str] = []
        self.log_path = Path(self.data_dir) / "test-stderr.log"

    # -- addresses -------------------------------------------------------------------
    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_base(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def cert_path(self) -> str:
        return str(Path(self.data_dir) / "tls" / "cert.pem")

    def arm_prefix(self, media_segment: str = "mediaservices") -> str:
        return (f"/subscriptions/{self.SUBSCRIPTION}/resourceGroups/{self.RESOURCE_GROUP}"
                f"/providers/Microsoft.Media/{media_segment}/{self.ACCOUNT}")

    def args(self) -> list[str]:
        return [
            binary(), "serve",
            "--data-dir", self.data_dir,
            "--http-addr", f"127.0.0.1:{self.http_port}",
            "--https-addr", f"127.0.0.1:{self.https_port}",
            "--rtmp-addr", f"127.0.0.1:{self.rtmp_port}",
            "--rtmps-addr", f"127.0.0.1:{self.rtmps_port}",
            "--srt-addr", f"127.0.0.1:{self.srt_port}",
            "--rtsp-addr", f"127.0.0.1:{self.rtsp_port}",
            "--public-host", f"127.0.0.1:{self.https_port}",
            "--subscription-id", self.SUBSCRIPTION,
            "--resource-group", self.RESOURCE_GROUP,
            "--account-name", self.ACCOUNT,
            *self.extra_args,
        ]

    def _pick_ports(self) -> None:
        (self.http_port, self.https_port, self.rtmp_port, self.rtmps_port, self.srt_port,
         self.rtsp_port) = free_ports(6)

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> "Appliance":
        # Another process on the machine (an ffmpeg, a browser) can take a chosen port before
        # rms-edge binds it; on a first start, choose new ports and try again. A restart keeps
        # its ports, as a restarted appliance does.
        for attempt in range(3):
            try:
                return self._start(timeout)
            except RuntimeError as e:
                if self._started_once or attempt == 2 or "Address already in use" not in str(e):
                    raise
                self._pick_ports()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> "Appliance":
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self._stderr = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=env, text=True, bufsize=1)
        deadline = time.time() + timeout
        # The banner is printed once everything is bound; read stdout until it ends.
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"rms-edge exited with {self.proc.returncode}:\n{self.stderr_text()}")
                continue
            self.stdout_lines.append(line.rstrip("\n"))
            m = re.match(r"^\s*apiKey:\s+(\S+)", line)
            if m and not m.group(1).startswith("("):  # "(already created; ...)" on later starts
                self.api_key = m.group(1)
            if line.startswith("rms-edge ready"):
                break
        else:
            raise RuntimeError("rms-edge did not print its ready banner in time")
        if self.api_key is None:
            key_file = Path(self.data_dir) / "test-api-key"
            if key_file.exists():
                self.api_key = key_file.read_text().strip()
        else:
            (Path(self.data_dir) / "test-api-key").write_text(self.api_key)
        self.wait_healthy(deadline - time.time())
        self._started_once = True
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.time() + max(timeout, 1.0)
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.http_base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError("rms-edge /healthz did not answer 200")

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir and not os.environ.get("RMS_EDGE_KEEP_DATA"):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "Appliance":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def stderr_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    # -- raw HTTP helpers (stdlib only) ------------------------------------------------
    def token(self, base: str | None = None) -> str:
        status, _, body = self.request("POST", "/auth/token", {
            "subscriptionId": self.SUBSCRIPTION, "apiKey": self.api_key}, auth=False, base=base)
        assert status == 200, body
        return body.decode()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cert_path)

    def request(self, method: str, path: str, body=None, *, auth=True, token: str | None = None,
                base: str | None = None, headers: dict | None = None, raw_body: bytes | None = None):
        """Returns (status, headers, body bytes). `path` may be absolute (http...) or server-relative."""
        url = path if path.startswith("http") else (base or self.http_base) + path
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {token or self.api_key}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        ctx = self.ssl_context() if url.startswith("https") else None
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, method: str, path: str, body=None, **kw):
        status, headers, raw = self.request(method, path, body, **kw)
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw.decode(errors="replace")
        return status, headers, doc
