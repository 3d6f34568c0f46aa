"""Fixtures for the low-latency suite: the live-path fixtures of tests/live/conftest.py (appliance,
encoders, static server, player, artifacts), imported from there, not copied."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parents[1]
for p in (str(_HERE), str(ROOT / "tests" / "live"), str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "api")):
    if p not in sys.path:
        sys.path.insert(0, p)

_spec = importlib.util.spec_from_file_location("_live_conftest", ROOT / "tests" / "live" / "conftest.py")
_live = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_live)

artifacts = _live.artifacts
make_appliance = _live.make_appliance
appliance = _live.appliance
encoders = _live.encoders
static_server = _live.static_server
player = _live.player
pytest_terminal_summary = _live.pytest_terminal_summary


def pytest_collection_modifyitems(config, items):
    missing = _live._missing_tools()
    if not missing:
        return
    import os

    import pytest
    if os.environ.get("CI"):
        raise pytest.UsageError(f"tests/lowlatency needs {missing}: run scripts/install-test-deps.sh")
    skip = pytest.mark.skip(reason=f"missing {missing}: run scripts/install-test-deps.sh")
    for it in items:
        if Path(str(it.fspath)).parent == _HERE:
            it.add_marker(skip)
