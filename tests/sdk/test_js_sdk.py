"""Runs tests/sdk/js/*.test.mjs (official @azure/arm-mediaservices, node:test) against the real binary.

One appliance per scheme; URL, key and ports go to node through the environment, and for https
NODE_EXTRA_CA_CERTS makes node trust the appliance's self-signed certificate.
Needs `npm ci` in tests/js (scripts/install-test-deps.sh).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sdk_helpers import Appliance

pytestmark = pytest.mark.timeout(600)

HERE = Path(__file__).resolve().parent
JS_DIR = HERE.parents[0] / "js"
TESTS = sorted(str(p) for p in (HERE / "js").glob("*.test.mjs"))


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_js_sdk(scheme):
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (JS_DIR / "node_modules" / "@azure" / "arm-mediaservices").is_dir(), \
        "tests/js/node_modules missing: run scripts/install-test-deps.sh"
    assert TESTS, "no tests/sdk/js/*.test.mjs"
    with Appliance() as app:
        env = dict(os.environ)
        env.update({
            "RMS_EDGE_URL": app.https_base if scheme == "https" else app.http_base,
            "RMS_EDGE_API_KEY": app.api_key,
            "RMS_EDGE_SUBSCRIPTION": app.SUBSCRIPTION,
            "RMS_EDGE_RESOURCE_GROUP": app.RESOURCE_GROUP,
            "RMS_EDGE_ACCOUNT": app.ACCOUNT,
            "RMS_EDGE_PUBLIC_HOST": f"127.0.0.1:{app.https_port}",
            "RMS_EDGE_RTMP_PORT": str(app.rtmp_port),
            "RMS_EDGE_RTMPS_PORT": str(app.rtmps_port),
            "NODE_EXTRA_CA_CERTS": app.cert_path,
        })
        env.pop("NODE_TLS_REJECT_UNAUTHORIZED", None)  # never skip verification
        proc = subprocess.run([node, "--test", "--test-reporter=spec", *TESTS], env=env, cwd=str(JS_DIR),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=540)
        out = proc.stdout + proc.stderr
        print(out)
        assert proc.returncode == 0, f"node --test failed ({scheme}):\n{out[-12000:]}\n--- rms-edge log ---\n{app.stderr_text()[-4000:]}"
