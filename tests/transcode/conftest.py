"""Fixtures for the transcoding suite (issue 5): the live suites' fixtures (tests/live/conftest.py: the real
appliance, ffmpeg encoders, headless Chromium with hls.js) reused, with artifacts in tests/artifacts/transcode/.

The appliance runs x264 at `ultrafast` here (RMS_EDGE_X264_PRESET) so two shared cores keep a 1080p30 ladder in
real time; the encoder table still forces CABAC and 8x8 transforms, so every rendition is H.264 High profile.
Needs what tests/live needs plus GStreamer 1.22 with x264enc/avdec_h264/avenc_aac (scripts/install-test-deps.sh).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parents[1]
_spec = importlib.util.spec_from_file_location("live_conftest", ROOT / "tests" / "live" / "conftest.py")
live_conftest = importlib.util.module_from_spec(_spec)
sys.modules["live_conftest"] = live_conftest
_spec.loader.exec_module(live_conftest)

# Re-exported fixtures (pytest registers fixtures by the conftest's attributes).
make_appliance = live_conftest.make_appliance
encoders = live_conftest.encoders
static_server = live_conftest.static_server
player = live_conftest.player

X264_PRESET = "ultrafast"
GST_ELEMENTS = ("x264enc", "avdec_h264", "avenc_aac", "videorate", "audiorate", "h264parse", "aacparse")


def _missing() -> list[str]:
    missing = live_conftest._missing_tools()
    if shutil.which("gst-inspect-1.0") is None:
        missing.append("gst-inspect-1.0")
    else:
        for el in GST_ELEMENTS:
            if subprocess.run(["gst-inspect-1.0", "--exists", el]).returncode != 0:
                missing.append(f"GStreamer element {el}")
    return missing


def pytest_collection_modifyitems(config, items):
    mine = [it for it in items if Path(str(it.fspath)).parent == _HERE]
    if not mine:
        return
    missing = _missing()
    if not missing:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"tests/transcode needs {missing}: run scripts/install-test-deps.sh")
    skip = pytest.mark.skip(reason=f"missing {missing}: run scripts/install-test-deps.sh")
    for it in mine:
        it.add_marker(skip)


@pytest.fixture
def artifacts(request, monkeypatch) -> Path:
    # Appliances started by this test (make_appliance) inherit the preset.
    monkeypatch.setenv("RMS_EDGE_X264_PRESET", X264_PRESET)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    d = ROOT / "tests" / "artifacts" / "transcode" / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True, exist_ok=True)
    return d
