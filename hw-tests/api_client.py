"""Minimal AMS v3 / RMS client for hw-tests (stdlib only), following docs/api-contract-notes.md."""
from __future__ import annotations

import json
import re
import shlex
import time
import tomllib
import urllib.parse

from target import Target, TargetError

API_VERSION = "2022-11-01"
CONFIG = "/etc/rms-edge/config.toml"


class ApiClient:
    def __init__(self, target: Target, subscription: str, resource_group: str, account: str, api_key: str):
        self.t = target
        self.sub, self.rg, self.account = subscription, resource_group, account
        self.api_key = api_key
        self._token: str | None = None
        self._token_at = 0.0

    @classmethod
    def connect(cls, target: Target) -> "ApiClient":
        cfg: dict = {}
        if target.has_ssh:
            cfg = tomllib.loads(target.ssh(f"cat {CONFIG}").stdout)
        key = target.api_key or cfg.get("api-key") or None
        if not key:
            key = create_key(target)
        return cls(target, cfg.get("subscription-id", "00000000-0000-0000-0000-000000000000"),
                   cfg.get("resource-group", "rms-edge"), cfg.get("account-name", "edge"), key)

    # -- auth -------------------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None or time.time() - self._token_at > 1800:
            status, _, body = self.t.http("POST", "/auth/token",
                                          {"subscriptionId": self.sub, "apiKey": self.api_key})
            if status != 200:
                raise TargetError(f"POST /auth/token -> {status}: {body[:300]!r}")
            self._token, self._token_at = body.decode().strip(), time.time()
        return self._token

    # -- ARM --------------------------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return (f"/subscriptions/{self.sub}/resourceGroups/{self.rg}/providers/Microsoft.Media/"
                f"mediaservices/{self.account}")

    def arm(self, method: str, path: str, body=None, *, auth: bool = True):
        url = path if path.startswith(("http://", "https://")) else self.prefix + path
        sep = "&" if "?" in url else "?"
        if "api-version=" not in url:
            url += f"{sep}api-version={API_VERSION}"
        headers = {"Authorization": f"Bearer {self.token()}"} if auth else {}
        status, hdrs, raw = self.t.http(method, url, body, headers=headers)
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw.decode(errors="replace")
        return status, hdrs, doc

    def wait_op(self, status: int, headers: dict, timeout: float = 300) -> None:
        """Follow an LRO (201/202 + Azure-AsyncOperation) until it ends; 200 means already done."""
        if status == 200 or status == 204:
            return
        assert status in (201, 202), status
        loc = {k.lower(): v for k, v in headers.items()}.get("azure-asyncoperation")
        if not loc:
            return
        u = urllib.parse.urlsplit(loc)
        path = u.path + ("?" + u.query if u.query else "")
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            s, _, doc = self.t.http("GET", path, headers={"Authorization": f"Bearer {self.token()}"})
            d = json.loads(doc) if doc else {}
            st = d.get("status")
            if st in ("Succeeded", "Failed", "Canceled"):
                if st != "Succeeded":
                    raise TargetError(f"operation {loc} ended {st}: {d}")
                return
            time.sleep(1)
        raise TargetError(f"operation {loc} did not finish in {timeout}s")

    def put_and_wait(self, path: str, body: dict):
        s, h, d = self.arm("PUT", path, body)
        assert s in (200, 201, 202), (s, d)
        self.wait_op(s, h)
        return self.arm("GET", path)

    def post_and_wait(self, path: str, body: dict | None = None):
        s, h, d = self.arm("POST", path, body if body is not None else {})
        assert s in (200, 202), (s, d)
        self.wait_op(s, h)

    def delete_and_wait(self, path: str):
        s, h, _ = self.arm("DELETE", path)
        if s in (200, 202):
            self.wait_op(s, h)
        return s


def create_key(target: Target) -> str:
    """A fresh API key from the appliance itself (`rms-edge keys create`, run as the service user)."""
    if not target.has_ssh:
        raise TargetError("no --api-key given and no SSH access to create one")
    cp = target.ssh(f"runuser -u rms-edge -- rms-edge keys --config {shlex.quote(CONFIG)} create --name hw-tests")
    m = re.search(r"apiKey:\s+(\S+)", cp.stdout)
    if m:
        return m.group(1)
    lines = [line.strip() for line in cp.stdout.splitlines() if line.strip()]
    if not lines:
        raise TargetError(f"`rms-edge keys create` printed nothing: {cp.stderr}")
    return lines[-1].split()[-1]
