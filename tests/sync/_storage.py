"""Real storage peers for the archive sync suites: Azurite (npm) and moto's S3 server (pip), a TCP
proxy in front of either (to take the "network" down and up, and to count the bytes the appliance
sends), and the appliance configuration that points at them."""
from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

from appliance import free_port

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / "tests" / "js" / "node_modules" / ".bin" / "azurite-blob"
MOTO = ROOT / ".venv" / "bin" / "moto_server"
# Azurite's well-known development account (public, documented by Microsoft).
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class Server:
    def __init__(self, cmd: list[str], port: int, log: Path):
        self.cmd, self.port, self.log_path = cmd, port, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     start_new_session=True)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            self._log.close()


class Azurite(Server):
    """Azurite blob service, in memory, on a free port; `container` is created public (anonymous
    reads, as a CDN origin would be) with CORS for browsers."""

    def __init__(self, artifacts: Path, container: str = "recordings"):
        port = free_port()
        super().__init__([str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--disableTelemetry",
                          "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--silent"],
                         port, artifacts / "azurite.log")
        self.container = container

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZ_ACCOUNT}"

    def service(self):
        from azure.storage.blob import BlobServiceClient
        conn = (f"DefaultEndpointsProtocol=http;AccountName={AZ_ACCOUNT};AccountKey={AZ_KEY};"
                f"BlobEndpoint={self.account_url};")
        return BlobServiceClient.from_connection_string(conn)

    def start(self) -> "Azurite":
        super().start()
        from azure.storage.blob import CorsRule
        svc = self.service()
        svc.create_container(self.container, public_access="container")
        svc.set_service_properties(cors=[CorsRule(["*"], ["GET", "HEAD", "OPTIONS"], allowed_headers=["*"],
                                                  exposed_headers=["*"], max_age_in_seconds=60)])
        return self

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        c = self.service().get_container_client(self.container)
        return {b.name: c.download_blob(b.name).readall() for b in c.list_blobs(name_starts_with=prefix)}

    def storage_toml(self, name: str, endpoint_port: int | None = None) -> str:
        port = endpoint_port or self.port
        return (f'[storage.{name}]\nkind = "azure"\naccount = "{AZ_ACCOUNT}"\ncontainer = "{self.container}"\n'
                f'key = "{AZ_KEY}"\nendpoint = "http://127.0.0.1:{port}/{AZ_ACCOUNT}"\n'
                # Players read the copy from Azurite itself, not through the test proxy.
                f'public-url = "{self.account_url}/{self.container}"\n')


class Moto(Server):
    """moto's S3 server on a free port with one bucket."""

    def __init__(self, artifacts: Path, bucket: str = "recordings"):
        port = free_port()
        super().__init__([str(MOTO), "-H", "127.0.0.1", "-p", str(port)], port, artifacts / "moto.log")
        self.bucket = bucket

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def start(self) -> "Moto":
        super().start()
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        s3, out = self.client(), {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
        return out

    def pending_multipart(self) -> list[dict]:
        return self.client().list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])

    def storage_toml(self, name: str, endpoint_port: int | None = None) -> str:
        port = endpoint_port or self.port
        return (f'[storage.{name}]\nkind = "s3"\nbucket = "{self.bucket}"\nregion = "us-east-1"\n'
                f'endpoint = "http://127.0.0.1:{port}"\nallow-http = true\n'
                f'access-key-id = "test"\nsecret-access-key = "test"\n')


class Proxy:
    """A TCP proxy 127.0.0.1:port -> upstream that counts the bytes clients send (with arrival
    times), and can be taken down (listener closed, connections cut) and brought back on the same
    port: a link outage as the appliance sees it."""

    def __init__(self, upstream: int):
        self.upstream, self.port = upstream, free_port()
        self.lock = threading.Lock()
        self.samples: list[tuple[float, int]] = []
        self.conns: list[socket.socket] = []
        self.listener: socket.socket | None = None

    @property
    def bytes_up(self) -> int:
        with self.lock:
            return sum(n for _, n in self.samples)

    def start(self) -> "Proxy":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.listener:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, s: socket.socket) -> None:
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self._pipe, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if count:
                    with self.lock:
                        self.samples.append((time.monotonic(), len(data)))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for x in (src, dst):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def rate(self, skip_s: float = 1.0) -> tuple[float, int, float]:
        """Bytes/s over the transfer, skipping the first `skip_s` (the limiter's small burst)."""
        with self.lock:
            s = list(self.samples)
        assert s, "nothing went through the proxy"
        t0 = s[0][0] + skip_s
        body = [(t, n) for t, n in s if t >= t0]
        span = body[-1][0] - t0
        total = sum(n for _, n in body)
        return total / span, total, span


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def local_files(app, asset_id: str) -> dict[str, bytes]:
    """The asset's recording on the appliance's disk: {'<rendition>/<file>': bytes}."""
    root = Path(app.data_dir) / "assets" / asset_id
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def config_file(tmp: Path, *tables: str, **keys) -> str:
    """A config.toml with top-level `keys` (dashes for underscores) and storage tables."""
    lines = []
    for k, v in keys.items():
        k = k.replace("_", "-")
        if isinstance(v, bool):
            lines.append(f"{k} = {str(v).lower()}")
        elif isinstance(v, str):
            lines.append(f'{k} = "{v}"')
        else:
            lines.append(f"{k} = {v}")
    text = "\n".join(lines) + "\n\n" + "\n".join(tables)
    p = tmp / "config.toml"
    p.write_text(text)
    return str(p)
