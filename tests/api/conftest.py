"""Fixtures for the black-box API suites: every test gets its own freshly started appliance
(own data dir, own ports), so no test sees another test's resources."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parents[1]
for p in (str(_HERE), str(ROOT / "tests" / "harness")):
    if p not in sys.path:
        sys.path.insert(0, p)

from appliance import Appliance  # noqa: E402  (tests/harness/appliance.py)
from _api import Api  # noqa: E402


@pytest.fixture
def app():
    a = Appliance()
    try:
        a.start()
    except Exception:
        a.cleanup()
        raise
    yield a
    a.cleanup()


@pytest.fixture
def api(app) -> Api:
    """ARM client that authenticates with a JWT from POST /auth/token, over plain HTTP."""
    return Api(app)
