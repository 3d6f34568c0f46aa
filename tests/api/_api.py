"""Shared helpers for the black-box API suites in tests/api/.

Everything here talks to a real `rms-edge serve` process started by tests/harness/appliance.py.
Only the standard library is used, so the suites need nothing but pytest.
"""
from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
DURATION_RE = re.compile(r"^-?P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
                         r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$")
URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s]+")

STREAMING_API_VERSION = "2022-11-01"
METADATA_API_VERSION = "2023-01-01"

# The quickstart's live event body (rms-live-quickstart.txt step 1).
QUICKSTART_LIVE_EVENT = {
    "location": "West Europe",
    "properties": {
        "description": "",
        "input": {
            "streamingProtocol": "RTMP",
            "keyFrameIntervalDuration": "PT2S",
            "accessControl": {"ip": {"allow": [
                {"name": "AllowAll", "address": "0.0.0.0", "subnetPrefixLength": 0}]}},
        },
        "encoding": {"encodingType": "PassthroughStandard"},
        "streamOptions": ["Default"],
    },
}


class Headers(dict):
    """Case-insensitive view of response headers."""

    def __init__(self, raw: dict | None):
        super().__init__((k.lower(), v) for k, v in (raw or {}).items())

    def get(self, key, default=None):  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key) -> bool:  # type: ignore[override]
        return super().__contains__(key.lower())

    def __getitem__(self, key):
        return super().__getitem__(key.lower())


@dataclass
class Resp:
    status: int
    headers: Headers
    raw: bytes
    method: str = ""
    url: str = ""

    @property
    def doc(self):
        if not self.raw:
            return None
        try:
            return json.loads(self.raw)
        except ValueError:
            return self.raw.decode(errors="replace")

    def __repr__(self) -> str:
        body = self.raw[:600].decode(errors="replace")
        return f"<{self.method} {self.url} -> {self.status} {body!r}>"


def deep_merge(base, patch):
    """JSON merge for echo expectations: dicts merge, everything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = deep_merge(base.get(k), v) if k in base else v
        return out
    return patch


def jwt_parts(token: str):
    def dec(seg: str):
        seg += "=" * (-len(seg) % 4)
        return json.loads(base64.urlsafe_b64decode(seg))
    h, p, s = token.split(".")
    return dec(h), dec(p), s


class Api:
    """Thin ARM client over the harness' request()."""

    def __init__(self, app, *, base: str | None = None, token: str | None = None, use_jwt: bool = True):
        self.app = app
        self.base = base or app.http_base
        self._token = token
        self.use_jwt = use_jwt

    # -- auth --------------------------------------------------------------------------
    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self.app.token(base=self.base) if self.use_jwt else self.app.api_key
        return self._token

    # -- urls --------------------------------------------------------------------------
    def prefix(self, seg: str = "mediaservices") -> str:
        return self.app.arm_prefix(seg)

    def url(self, rel: str, *, seg: str = "mediaservices", api_version: str | None = STREAMING_API_VERSION,
            query: dict | None = None) -> str:
        q = {}
        if api_version is not None:
            q["api-version"] = api_version
        q.update(query or {})
        path = self.prefix(seg) + "/" + rel.lstrip("/")
        return path + ("?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote) if q else "")

    # -- raw calls ---------------------------------------------------------------------
    def raw(self, method: str, path: str, body=None, *, auth: bool = True, token: str | None = None,
            headers: dict | None = None, raw_body: bytes | None = None, base: str | None = None) -> Resp:
        st, hd, data = self.app.request(method, path, body, auth=auth, token=token or (self.token if auth else None),
                                        base=base or self.base, headers=headers, raw_body=raw_body)
        return Resp(st, Headers(hd), data, method, path)

    def call(self, method: str, rel: str, body=None, *, seg: str = "mediaservices",
             api_version: str | None = STREAMING_API_VERSION, query: dict | None = None, **kw) -> Resp:
        return self.raw(method, self.url(rel, seg=seg, api_version=api_version, query=query), body, **kw)

    def meta(self, method: str, rel: str, body=None, **kw) -> Resp:
        """Metadata resources (assets, locators, policies, filters) use the `mediaServices` spelling."""
        kw.setdefault("seg", "mediaServices")
        kw.setdefault("api_version", METADATA_API_VERSION)
        return self.call(method, rel, body, **kw)

    # -- LRO -----------------------------------------------------------------------------
    def wait(self, resp: Resp, timeout: float = 30.0) -> dict | None:
        """If `resp` started an LRO (201/202), poll Azure-AsyncOperation until terminal and return the
        final operation document; otherwise None. Asserts the operation succeeded."""
        if resp.status not in (201, 202):
            return None
        aop = resp.headers.get("Azure-AsyncOperation")
        assert aop, f"{resp!r}: 201/202 without Azure-AsyncOperation header"
        deadline = time.time() + timeout
        while True:
            r = self.raw("GET", aop)
            assert r.status == 200, f"operation status {aop}: {r!r}"
            doc = r.doc
            assert isinstance(doc, dict) and isinstance(doc.get("status"), str) and doc["status"], r
            if doc["status"].lower() in ("succeeded", "failed", "canceled"):
                assert doc["status"] == "Succeeded", f"operation {aop} ended {doc}"
                return doc
            assert time.time() < deadline, f"operation {aop} still {doc['status']} after {timeout}s"
            time.sleep(0.1)

    def wait_location(self, resp: Resp, timeout: float = 30.0) -> Resp:
        loc = resp.headers.get("Location")
        assert loc, f"{resp!r}: no Location header"
        deadline = time.time() + timeout
        while True:
            r = self.raw("GET", loc)
            if r.status != 202:
                return r
            assert time.time() < deadline, f"{loc} still 202 after {timeout}s"
            time.sleep(0.1)

    # -- resources ---------------------------------------------------------------------
    def get_live_event(self, name: str) -> Resp:
        return self.call("GET", f"liveEvents/{name}")

    def create_live_event(self, name: str, body: dict | None = None, *, query: dict | None = None) -> dict:
        body = QUICKSTART_LIVE_EVENT if body is None else body
        r = self.call("PUT", f"liveEvents/{name}", body, query=query)
        assert r.status in (200, 201), f"create live event {name}: {r!r}"
        self.wait(r)
        g = self.get_live_event(name)
        assert g.status == 200, g
        return g.doc

    def action(self, name: str, action: str, body=None, *, expect_ok: bool = True) -> Resp:
        r = self.call("POST", f"liveEvents/{name}/{action}", body)
        if expect_ok:
            assert r.status in (200, 202), f"{action} {name}: {r!r}"
            self.wait(r)
        return r

    def start_live_event(self, name: str) -> dict:
        self.action(name, "start")
        doc = self.get_live_event(name).doc
        assert doc["properties"]["resourceState"] == "Running", doc
        return doc

    def stop_live_event(self, name: str, body=None) -> dict:
        self.action(name, "stop", {} if body is None else body)
        doc = self.get_live_event(name).doc
        assert doc["properties"]["resourceState"] == "Stopped", doc
        return doc

    def create_asset(self, name: str, props: dict | None = None) -> dict:
        r = self.meta("PUT", f"assets/{name}", {"properties": props or {}})
        assert r.status in (200, 201), f"create asset {name}: {r!r}"
        return r.doc

    def ensure_asset(self, name: str) -> None:
        if self.meta("GET", f"assets/{name}").status == 404:
            self.create_asset(name)

    def ensure_live_event(self, name: str) -> None:
        if self.get_live_event(name).status == 404:
            self.create_live_event(name)

    def create_live_output(self, event: str, name: str, asset: str, archive: str = "PT5M", **props) -> Resp:
        """Creates (and waits for) a live output; returns the initial response."""
        body = {"properties": {"assetName": asset, "archiveWindowLength": archive, **props}}
        r = self.call("PUT", f"liveEvents/{event}/liveOutputs/{name}", body)
        assert r.status in (200, 201), f"create live output {event}/{name}: {r!r}"
        self.wait(r)
        return r

    def create_locator(self, name: str, asset: str, policy: str = "Predefined_ClearStreamingOnly", **props) -> dict:
        r = self.meta("PUT", f"streamingLocators/{name}",
                      {"properties": {"assetName": asset, "streamingPolicyName": policy, **props}})
        assert r.status == 201, f"create locator {name}: {r!r}"
        return r.doc

    def create_clear_policy(self, name: str) -> dict:
        r = self.meta("PUT", f"streamingPolicies/{name}", {"properties": {"noEncryption": {"enabledProtocols": {
            "download": True, "dash": True, "hls": True, "smoothStreaming": True}}}})
        assert r.status == 201, f"create policy {name}: {r!r}"
        return r.doc

    def list_all(self, rel: str, *, meta: bool = False, query: dict | None = None, max_pages: int = 50) -> list:
        """Follows @odata.nextLink and returns every element of `value`."""
        r = (self.meta if meta else self.call)("GET", rel, query=query)
        assert r.status == 200, r
        items = list(r.doc["value"])
        pages = 1
        while r.doc.get("@odata.nextLink"):
            pages += 1
            assert pages <= max_pages, "nextLink loop"
            r = self.raw("GET", r.doc["@odata.nextLink"])
            assert r.status == 200, r
            items += r.doc["value"]
        return items


def assert_error(resp: Resp, statuses, *, contains: str | tuple | None = None, code: str | None = None) -> dict:
    """Asserts an ARM error: the status, `Content-Type: application/json` and the
    {"error":{"code","message"}} envelope with non-empty strings. Returns the error object."""
    if isinstance(statuses, int):
        statuses = (statuses,)
    assert resp.status in statuses, f"expected {statuses}, got {resp!r}"
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", f"Content-Type {ctype!r} on {resp!r}"
    doc = resp.doc
    assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), f"no error envelope: {resp!r}"
    err = doc["error"]
    assert isinstance(err.get("code"), str) and err["code"], f"error.code missing/empty: {resp!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"error.message missing/empty: {resp!r}"
    if code is not None:
        assert err["code"] == code, f"error.code {err['code']!r} != {code!r}"
    if contains:
        words = (contains,) if isinstance(contains, str) else contains
        msg = err["message"].lower()
        assert any(w.lower() in msg for w in words), f"message {err['message']!r} mentions none of {words}"
    return err


def assert_lro_headers(resp: Resp, base: str, *, op_collection: str | None = None) -> None:
    """The three LRO headers, absolute URLs on the scheme/host/port the client used."""
    aop = resp.headers.get("Azure-AsyncOperation")
    loc = resp.headers.get("Location")
    ra = resp.headers.get("Retry-After")
    assert aop and loc, f"LRO response without Azure-AsyncOperation/Location: {resp!r} headers={dict(resp.headers)}"
    for u in (aop, loc):
        assert u.startswith(base + "/"), f"LRO URL {u!r} is not absolute on the client's base {base!r}"
    assert ra is not None and ra.strip().isdigit() and 0 < int(ra) <= 60, f"Retry-After {ra!r}"
    if op_collection:
        assert f"/{op_collection.lower()}/" in urllib.parse.urlsplit(aop).path.lower(), \
            f"Azure-AsyncOperation {aop!r} is not under {op_collection}"
        assert "/operationlocations/" in urllib.parse.urlsplit(loc).path.lower(), f"Location {loc!r}"


# -- the `rms-edge keys` CLI ---------------------------------------------------------------------
KEY_RE = re.compile(r"rmse_([0-9a-f]{16})_[0-9a-f]{64}")


def keys_cli(app, *args: str, check: bool = True):
    """Runs `rms-edge keys --data-dir <the appliance's data dir> ARGS`; returns CompletedProcess."""
    import subprocess
    from appliance import binary
    cp = subprocess.run([binary(), "keys", "--data-dir", app.data_dir, *args], capture_output=True, text=True,
                        timeout=60)
    if check:
        assert cp.returncode == 0, f"rms-edge keys {' '.join(args)} exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}"
    return cp


def create_key(app, name: str = "test-key") -> tuple[str, str]:
    """`rms-edge keys create --name NAME`: returns (key id, full key)."""
    cp = keys_cli(app, "create", "--name", name)
    m = KEY_RE.search(cp.stdout)
    assert m, f"`keys create` printed no key of the form rmse_<id>_<secret>:\n{cp.stdout}"
    return m.group(1), m.group(0)
