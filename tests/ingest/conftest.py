"""Fixtures for the RTSP ingest suite (issue 4): the live suite's fixtures (appliance, player,
artifacts, …) imported from tests/live/conftest.py, not copied."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_LIVE = Path(__file__).resolve().parents[1] / "live"
if str(_LIVE) not in sys.path:
    sys.path.insert(0, str(_LIVE))

_spec = importlib.util.spec_from_file_location("live_conftest", _LIVE / "conftest.py")
_live = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_live)

artifacts = _live.artifacts
make_appliance = _live.make_appliance
appliance = _live.appliance
static_server = _live.static_server
player = _live.player
pytest_collection_modifyitems = _live.pytest_collection_modifyitems
pytest_terminal_summary = _live.pytest_terminal_summary
