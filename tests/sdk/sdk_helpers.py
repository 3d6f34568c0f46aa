"""Helpers shared by the official-SDK integration tests.

The SDKs are used unmodified; the only things we change are what any RMS customer changes:
the endpoint (`base_url`) and the credential (an API-key -> JWT TokenCredential, as in Ravnur's
demo clients). Plain-HTTP access needs one extra supported knob, see AllowBearerOverHttpPolicy.
"""
from __future__ import annotations

import base64
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
from appliance import Appliance  # noqa: E402

from azure.core.credentials import AccessToken  # noqa: E402
from azure.core.exceptions import ClientAuthenticationError  # noqa: E402
from azure.core.pipeline.policies import SansIOHTTPPolicy  # noqa: E402
from azure.mgmt.media import AzureMediaServices  # noqa: E402


def jwt_exp(token: str) -> int:
    """`exp` claim of a JWT (what Ravnur's C# credential does); 1 h when absent (their Python/JS demos)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return int(json.loads(base64.urlsafe_b64decode(payload))["exp"])
    except (IndexError, KeyError, ValueError):
        return int(time.time()) + 3600


class RmsApiKeyCredential:
    """azure.core TokenCredential: POST {endpoint}/auth/token {"subscriptionId","apiKey"} -> raw JWT text."""

    def __init__(self, endpoint: str, subscription_id: str, api_key: str, cafile: str | None = None):
        self.endpoint = endpoint.rstrip("/")
        self.subscription_id = subscription_id
        self.api_key = api_key
        self.cafile = cafile
        self.calls = 0

    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs) -> AccessToken:
        self.calls += 1
        body = json.dumps({"subscriptionId": self.subscription_id, "apiKey": self.api_key}).encode()
        req = urllib.request.Request(self.endpoint + "/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        ctx = ssl.create_default_context(cafile=self.cafile) if self.endpoint.startswith("https") else None
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
                token = r.read().decode().strip()
        except urllib.error.HTTPError as e:
            raise ClientAuthenticationError(f"/auth/token answered {e.code}: {e.read()[:300]!r}") from e
        assert token.count(".") == 2, f"/auth/token did not return a raw JWT: {token[:80]!r}"
        return AccessToken(token, jwt_exp(token))

    def close(self) -> None:  # TokenCredential protocol nicety
        pass


class StaticTokenCredential:
    """Returns a fixed (possibly bogus) bearer token; used to check 401 mapping."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


class AllowBearerOverHttpPolicy(SansIOHTTPPolicy):
    """Lets the SDK's own ARMChallengeAuthenticationPolicy send the bearer token over plain http.

    azure-core refuses bearer tokens on non-https URLs ("Bearer token authentication is not
    permitted for non-TLS protected (non-https) URLs"). Its supported opt-out is the per-request
    keyword `enforce_https=False` (azure-core changelog: "Support kwarg `enforce_https` to disable
    HTTPS check on authentication"). Passing it to every operation (and its LRO polls and pager
    pages) by hand is noisy, so this per-call policy - which runs before the authentication policy -
    sets that same documented option on every request. The SDK's auth policy, token caching and
    challenge handling stay untouched (least invasive; no custom authentication_policy needed).
    """

    def on_request(self, request):
        request.context.options.setdefault("enforce_https", False)


def make_client(app: Appliance, scheme: str, credential=None, **kwargs) -> AzureMediaServices:
    base = app.https_base if scheme == "https" else app.http_base
    if credential is None:
        credential = RmsApiKeyCredential(base, app.SUBSCRIPTION, app.api_key,
                                         cafile=app.cert_path if scheme == "https" else None)
    if scheme == "https":
        # Trust the appliance's generated self-signed certificate (no verify=False).
        kwargs.setdefault("connection_verify", app.cert_path)
    else:
        kwargs.setdefault("per_call_policies", [AllowBearerOverHttpPolicy()])
    # polling_interval is left at the SDK default (30 s): the server must drive polling with Retry-After.
    client = AzureMediaServices(credential, app.SUBSCRIPTION, base_url=base, **kwargs)
    client.rms_credential = credential  # for assertions on token caching
    return client


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"
