"""Fixtures for the official-SDK integration tests (helpers live in sdk_helpers.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sdk_helpers import Appliance, make_client  # noqa: E402


@pytest.fixture(scope="session")
def appliance():
    app = Appliance()
    try:
        app.start()
    except Exception:
        app.cleanup()
        raise
    yield app
    app.cleanup()


@pytest.fixture(params=["https", "http"])
def scheme(request) -> str:
    return request.param


@pytest.fixture
def client(appliance, scheme):
    c = make_client(appliance, scheme)
    yield c
    c.close()
