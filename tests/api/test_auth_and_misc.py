"""Auth (JWT flow, keys CLI), HTTPS, the `default` streaming endpoint, LRO header URLs, ingest URLs,
list paging and OData $filter/$orderby/$top."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sqlite3
import ssl
import time
import urllib.parse
from pathlib import Path

import pytest

from _api import (GUID_RE, KEY_RE, QUICKSTART_LIVE_EVENT, Api, assert_error, assert_lro_headers, create_key,
                  jwt_parts, keys_cli)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_hs256(header: dict, payload: dict, secret: bytes) -> str:
    h = b64u(json.dumps(header, separators=(",", ":")).encode())
    p = b64u(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64u(sig)}"


def jwt_secret(app) -> bytes | None:
    """White-box aid: the HS256 secret from the `meta` table of the appliance's SQLite database, so
    that expired / foreign-audience tokens can be forged with the real key."""
    for f in sorted(Path(app.data_dir).rglob("*")):
        if not f.is_file() or f.suffix in (".pem", ".log", ".toml") or f.name.endswith(("-wal", "-shm")):
            continue
        try:
            with open(f, "rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    continue
            con = sqlite3.connect(f"file:{f}?mode=ro", uri=True, timeout=5)
            try:
                row = con.execute("SELECT value FROM meta WHERE key = 'jwt-secret'").fetchone()
            finally:
                con.close()
            if row:
                return row[0].encode()
        except sqlite3.Error:
            continue
    return None


def unauthorized(r):
    assert_error(r, 401)
    assert (r.headers.get("WWW-Authenticate") or "").lower().startswith("bearer"), r.headers


# ---------------------------------------------------------------------------------------------
# JWT.

def test_token_is_hs256_jwt_with_exp(api):
    r = api.raw("POST", "/auth/token", {"subscriptionId": api.app.SUBSCRIPTION, "apiKey": api.app.api_key},
                auth=False)
    assert r.status == 200, r
    assert (r.headers.get("Content-Type") or "").startswith("text/plain"), r.headers
    token = r.raw.decode()
    assert token == token.strip() and token.count(".") == 2, f"not a bare JWT: {token!r}"
    header, payload, _ = jwt_parts(token)
    assert header.get("alg") == "HS256", header
    now = time.time()
    assert isinstance(payload.get("exp"), int), payload
    assert 3000 <= payload["exp"] - now <= 3700, f"exp should be about now + 1 h: {payload}"
    assert api.call("GET", "liveEvents", token=token).status == 200


def test_token_subscription_is_case_insensitive(api):
    r = api.raw("POST", "/auth/token", {"subscriptionId": api.app.SUBSCRIPTION.upper(),
                                        "apiKey": api.app.api_key}, auth=False)
    assert r.status == 200, r


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "...", "x" * 5000])
def test_garbage_tokens_rejected(api, token):
    unauthorized(api.call("GET", "liveEvents", token=token))


def test_tampered_token_rejected(api):
    token = api.token
    h, p, s = token.split(".")
    header, payload, _ = jwt_parts(token)
    payload["exp"] = payload["exp"] + 10 * 365 * 86400
    forged = f"{h}.{b64u(json.dumps(payload).encode())}.{s}"
    unauthorized(api.call("GET", "liveEvents", token=forged))
    # signature bit flip
    sig = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    sig[0] ^= 1
    unauthorized(api.call("GET", "liveEvents", token=f"{h}.{p}.{b64u(bytes(sig))}"))
    # alg=none
    none = f"{b64u(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{p}."
    unauthorized(api.call("GET", "liveEvents", token=none))
    # signed with another secret
    unauthorized(api.call("GET", "liveEvents", token=sign_hs256(header, payload, b"not the secret")))


def test_expired_and_foreign_tokens_rejected(api):
    secret = jwt_secret(api.app)
    if secret is None:
        pytest.skip("JWT secret not found in the data dir's SQLite `meta` table; cannot forge tokens")
    header, payload, _ = jwt_parts(api.token)
    now = int(time.time())
    good = sign_hs256(header, dict(payload, iat=now, exp=now + 600), secret)
    assert api.call("GET", "liveEvents", token=good).status == 200, "forging with the real secret must work"
    expired = sign_hs256(header, dict(payload, iat=now - 7200, exp=now - 3600), secret)
    r = api.call("GET", "liveEvents", token=expired)
    unauthorized(r)
    assert "expire" in r.doc["error"]["message"].lower(), r
    foreign = sign_hs256(header, dict(payload, aud="11111111-1111-1111-1111-111111111111"), secret)
    unauthorized(api.call("GET", "liveEvents", token=foreign))
    no_exp = {k: v for k, v in payload.items() if k != "exp"}
    unauthorized(api.call("GET", "liveEvents", token=sign_hs256(header, no_exp, secret)))


def test_x_api_key_header(api):
    r = api.call("GET", "liveEvents", auth=False, headers={"x-api-key": api.app.api_key})
    assert r.status == 200, r


# ---------------------------------------------------------------------------------------------
# keys CLI.

def test_keys_cli_create_list_revoke(app):
    api = Api(app)
    kid, key = create_key(app, "ops-team")
    listed = keys_cli(app, "list").stdout
    assert kid in listed and "ops-team" in listed, listed
    assert key not in listed and key.split("_")[-1] not in listed, "`keys list` must not show secrets"
    r = api.raw("POST", "/auth/token", {"subscriptionId": app.SUBSCRIPTION, "apiKey": key}, auth=False)
    assert r.status == 200, r
    token = r.raw.decode()
    assert api.call("GET", "liveEvents", token=token).status == 200
    keys_cli(app, "revoke", kid)
    after = keys_cli(app, "list").stdout
    line = next((ln for ln in after.splitlines() if kid in ln), "")
    assert "revoked" in line.lower(), f"`keys list` should mark {kid} revoked:\n{after}"
    unauthorized(api.call("GET", "liveEvents", token=token))
    unauthorized(api.call("GET", "liveEvents", token=key))
    assert api.call("GET", "liveEvents", token=app.api_key).status == 200


def test_keys_cli_revoke_unknown_fails(app):
    cp = keys_cli(app, "revoke", "0123456789abcdef", check=False)
    assert cp.returncode != 0, cp.stdout


def test_keys_cli_first_key_is_listed_and_only_printed_once(app):
    kid = KEY_RE.search(app.api_key)
    assert kid, f"first-start key {app.api_key!r} does not look like rmse_<id>_<secret>"
    assert kid.group(1) in keys_cli(app, "list").stdout
    banner = "\n".join(app.stdout_lines)
    assert app.api_key in banner
    assert banner.count(app.api_key) == 1


def test_keys_cli_create_prints_a_distinct_key(app):
    a = create_key(app, "a")
    b = create_key(app, "b")
    assert a[0] != b[0] and a[1] != b[1]


# ---------------------------------------------------------------------------------------------
# HTTPS.

def test_https_with_generated_certificate(app):
    cert = Path(app.cert_path)
    assert cert.is_file(), f"no certificate at {cert}"
    dec = ssl._ssl._test_decode_cert(str(cert))  # CPython helper: parses a PEM certificate
    sans = {(k, v.lower()) for k, v in dec.get("subjectAltName", ())}
    assert ("DNS", "localhost") in sans, sans
    assert ("IP Address", "127.0.0.1") in sans, sans
    assert any(k == "IP Address" and v in ("::1", "0:0:0:0:0:0:0:1") for k, v in sans), sans
    api = Api(app, base=app.https_base)  # verifies the chain and the 127.0.0.1 SAN
    r = api.call("GET", "liveEvents")
    assert r.status == 200, r
    r = api.call("PUT", "liveEvents/tls1", QUICKSTART_LIVE_EVENT)
    assert r.status in (200, 201), r
    if r.status == 201:
        assert_lro_headers(r, app.https_base, op_collection="liveEventOperations")
        api.wait(r)
    assert api.get_live_event("tls1").status == 200



# ---------------------------------------------------------------------------------------------
# Streaming endpoint `default`.

def test_default_streaming_endpoint(api):
    app = api.app
    public_host = f"127.0.0.1:{app.https_port}"
    r = api.call("GET", "streamingEndpoints/default")
    assert r.status == 200, r
    d = r.doc
    assert d["name"] == "default"
    assert d["properties"]["hostName"] == public_host, d["properties"]
    assert d["properties"]["resourceState"] == "Running", d["properties"]
    lst = api.call("GET", "streamingEndpoints").doc["value"]
    assert [e["name"] for e in lst] == ["default"], lst
    assert lst[0]["properties"]["hostName"] == public_host
    # playback URL = https:// + hostName + path, as the quickstart builds it
    r = api.raw("GET", f"https://{public_host}/healthz", auth=False)
    assert r.status == 200, r


# ---------------------------------------------------------------------------------------------
# LRO headers follow the client's scheme/host.

@pytest.mark.parametrize("headers,base", [
    ({"Host": "api.example.test:8443"}, "http://api.example.test:8443"),
    ({"Host": "edge.local"}, "http://edge.local"),
    ({"Host": "api.example.test", "X-Forwarded-Proto": "https"}, "https://api.example.test"),
])
def test_lro_urls_use_client_host(api, headers, base):
    r = api.call("PUT", "liveEvents/hosted", QUICKSTART_LIVE_EVENT, headers=headers)
    assert r.status in (200, 201), r
    if r.status == 200:
        r = api.call("POST", "liveEvents/hosted/start", headers=headers)
        assert r.status == 202, f"no LRO to inspect: {r!r}"
    assert_lro_headers(r, base, op_collection="liveEventOperations")
    # the same operation, reached through the real address
    for h in ("Azure-AsyncOperation", "Location"):
        u = urllib.parse.urlsplit(r.headers[h])
        local = api.base + u.path + ("?" + u.query if u.query else "")
        g = api.raw("GET", local)
        assert g.status in (200, 202), (h, g)


def test_lro_urls_plain_http(api):
    r = api.call("PUT", "liveEvents/plain", QUICKSTART_LIVE_EVENT)
    assert r.status in (200, 201), r
    if r.status == 201:
        assert_lro_headers(r, api.base, op_collection="liveEventOperations")
        op = api.raw("GET", r.headers["Azure-AsyncOperation"])
        assert op.status == 200 and op.doc["status"] in ("InProgress", "Succeeded"), op
        api.wait(r)
        loc = api.wait_location(r)
        assert loc.status == 200 and loc.doc["name"] == "plain", loc


# ---------------------------------------------------------------------------------------------
# Ingest URLs (create already carries endpoints and accessToken, as RMS does).

def test_rtmp_ingest_urls_on_create(api):
    app = api.app
    r = api.call("PUT", "liveEvents/rtmp1", QUICKSTART_LIVE_EVENT)
    assert r.status in (200, 201), r
    initial = r.doc
    api.wait(r)
    for doc in (initial, api.get_live_event("rtmp1").doc):
        inp = doc["properties"]["input"]
        # a GUID, with or without hyphens (ams-rms-api §6)
        assert GUID_RE.match(inp.get("accessToken") or "") or re.fullmatch(r"[0-9a-fA-F]{32}", inp["accessToken"]), inp
        eps = inp["endpoints"]
        assert len(eps) >= 2, eps
        assert eps[0]["protocol"] == "RTMP" and eps[0]["url"].startswith(f"rtmp://127.0.0.1:{app.rtmp_port}/"), eps
        assert eps[1]["protocol"] in ("RTMP", "RTMPS") and \
            eps[1]["url"].startswith(f"rtmps://127.0.0.1:{app.rtmps_port}/"), eps


def test_given_access_token_is_kept(api):
    b = json.loads(json.dumps(QUICKSTART_LIVE_EVENT))
    b["properties"]["input"]["accessToken"] = "0fa4c1de-5bd7-4f1c-9b83-2f0b5c0a6a77"
    d = api.create_live_event("tok1", b)
    assert d["properties"]["input"]["accessToken"] == "0fa4c1de-5bd7-4f1c-9b83-2f0b5c0a6a77"


@pytest.mark.parametrize("protocol,scheme,port_attr", [("SRT", "srt", "srt_port"), ("RTSPPush", "rtsp", "rtsp_port")])
def test_srt_and_rtsp_ingest_urls(api, protocol, scheme, port_attr):
    b = json.loads(json.dumps(QUICKSTART_LIVE_EVENT))
    b["properties"]["input"]["streamingProtocol"] = protocol
    d = api.create_live_event("ing1", b)
    inp = d["properties"]["input"]
    assert inp["streamingProtocol"] == protocol
    port = getattr(api.app, port_attr)
    urls = [e["url"] for e in inp["endpoints"]]
    assert any(u.startswith(f"{scheme}://127.0.0.1:{port}") and inp["accessToken"] in u for u in urls), \
        f"no {scheme} URL on port {port} carrying the access token: {inp['endpoints']}"


def test_auto_start(api):
    d = api.create_live_event("auto1", query={"autoStart": "true"})
    assert d["properties"]["resourceState"] == "Running", d["properties"]


def test_get_status_follows_state(api):
    api.create_live_event("st1")
    r = api.call("POST", "liveEvents/st1/getStatus")
    assert r.status == 200 and r.doc["value"][0]["state"] == "Stopped", r
    api.start_live_event("st1")
    r = api.call("POST", "liveEvents/st1/getStatus")
    assert r.status == 200 and r.doc["value"][0]["state"] == "Running", r


def test_list_paths_rms_formats(api):
    api.create_live_event("ev1")
    api.create_asset("a1")
    api.create_live_output("ev1", "out1", "a1", manifestName="output")
    loc = api.create_locator("loc1", "a1")
    lid = loc["properties"]["streamingLocatorId"]
    r = api.meta("POST", "streamingLocators/loc1/listPaths")
    assert r.status == 200, r
    by = {p["streamingProtocol"]: p for p in r.doc["streamingPaths"]}
    assert by["Hls"]["encryptionScheme"] == "NoEncryption"
    assert f"/{lid}/output.ism/manifest(format=m3u8-cmaf)" in by["Hls"]["paths"], by
    assert f"/{lid}/output.ism/manifest(format=mpd-time-cmaf)" in by["Dash"]["paths"], by


def test_healthz_without_auth(app):
    api = Api(app)
    assert api.raw("GET", "/healthz", auth=False).status == 200


# ---------------------------------------------------------------------------------------------
# Paging and OData.

def _make_assets(api: Api, names: list[str]) -> None:
    for n in names:
        api.create_asset(n, {"description": f"asset {n}", "alternateId": n.upper()})
        time.sleep(0.02)


def test_assets_top_caps_the_total(api):
    """OData `$top`: "the number of available items up to but not greater than n" (AMS paging
    docs): no nextLink once n items were returned."""
    names = [f"asset{i:02d}" for i in range(7)]
    _make_assets(api, names)
    r = api.meta("GET", "assets", query={"$top": "3"})
    assert r.status == 200, r
    assert [v["name"] for v in r.doc["value"]] == names[:3], r.doc
    assert "@odata.nextLink" not in r.doc, r.doc


def _bulk_assets(api: Api, n: int) -> list[str]:
    names = [f"bulk{i:04d}" for i in range(n)]
    for name in names:
        r = api.meta("PUT", f"assets/{name}", body={"properties": {}})
        assert r.status == 201, r
    return names


def test_paging_past_the_page_size_with_client_host(api):
    """AMS pages by 1000: the 1001st item is reached through an absolute @odata.nextLink on
    the host the client used, and a `$top` larger than a page carries over to the next page."""
    names = _bulk_assets(api, 1004)
    r = api.meta("GET", "assets", headers={"Host": "media.example.test:9000"})
    assert r.status == 200, r
    assert len(r.doc["value"]) == 1000
    link = r.doc["@odata.nextLink"]
    assert link.startswith("http://media.example.test:9000/"), link
    r2 = api.raw("GET", link.replace("http://media.example.test:9000", api.base))
    assert r2.status == 200, r2
    assert [v["name"] for v in r.doc["value"] + r2.doc["value"]] == names
    assert "@odata.nextLink" not in r2.doc
    r = api.meta("GET", "assets", query={"$top": "1002"})
    assert len(r.doc["value"]) == 1000
    r2 = api.raw("GET", r.doc["@odata.nextLink"])
    assert [v["name"] for v in r2.doc["value"]] == names[1000:1002], r2.doc
    assert "@odata.nextLink" not in r2.doc


def test_locators_top(api):
    api.create_asset("a1")
    for i in range(5):
        api.create_locator(f"loc{i}", "a1")
    got = api.list_all("streamingLocators", meta=True, query={"$top": "2"})
    assert len(got) == 2
    got = api.list_all("streamingLocators", meta=True)
    assert sorted(v["name"] for v in got) == [f"loc{i}" for i in range(5)]


def test_filter_name_eq(api):
    _make_assets(api, ["alpha", "beta", "gamma"])
    r = api.meta("GET", "assets", query={"$filter": "name eq 'beta'"})
    assert r.status == 200, r
    assert [v["name"] for v in r.doc["value"]] == ["beta"], r.doc


def test_filter_created_range(api):
    _make_assets(api, ["alpha", "beta", "gamma"])
    r = api.meta("GET", "assets", query={"$filter": "properties/created gt 2020-01-01T00:00:00Z"})
    assert r.status == 200 and sorted(v["name"] for v in r.doc["value"]) == ["alpha", "beta", "gamma"], r
    r = api.meta("GET", "assets", query={"$filter": "properties/created lt 2020-01-01T00:00:00Z"})
    assert r.status == 200 and r.doc["value"] == [], r
    created = {v["name"]: v["properties"]["created"] for v in api.list_all("assets", meta=True)}
    r = api.meta("GET", "assets", query={"$filter": f"properties/created gt {created['alpha']}"})
    assert r.status == 200 and sorted(v["name"] for v in r.doc["value"]) == ["beta", "gamma"], r


def test_orderby_created(api):
    names = ["zulu", "alpha", "mike", "bravo"]
    _make_assets(api, names)
    r = api.meta("GET", "assets", query={"$orderby": "properties/created desc"})
    assert r.status == 200 and [v["name"] for v in r.doc["value"]] == names[::-1], r
    r = api.meta("GET", "assets", query={"$orderby": "properties/created"})
    assert r.status == 200 and [v["name"] for v in r.doc["value"]] == names, r
    r = api.meta("GET", "assets", query={"$orderby": "properties/created asc"})
    assert r.status == 200 and [v["name"] for v in r.doc["value"]] == names, r


def test_orderby_and_filter_survive_paging(api):
    names = [f"n{i}" for i in range(6)]
    _make_assets(api, names)
    got = api.list_all("assets", meta=True, query={"$orderby": "properties/created desc", "$top": "4",
                                                   "$filter": "properties/created gt 2020-01-01T00:00:00Z"})
    assert [v["name"] for v in got] == names[::-1][:4], [v["name"] for v in got]


@pytest.mark.parametrize("q", [{"$filter": "name eq"}, {"$filter": "nosuchfield eq 'x'"},
                               {"$orderby": "properties/nosuch"}, {"$top": "-1"}, {"$top": "abc"}])
def test_bad_odata_is_400(api, q):
    r = api.meta("GET", "assets", query=q)
    assert_error(r, 400)
