"""Fixtures for the live-path suites (issue 3, "How it is shown to work").

- `appliance` / `make_appliance`: the real rms-edge binary on free ports (tests/harness/appliance.py);
  its log is copied to tests/artifacts/<test>/ at teardown.
- `encoders`: a factory of ffmpeg encoders (Encoder) pushing a browser-playable test source over
  RTMP/RTMPS; each one's stderr is kept in tests/artifacts/<test>/.
- `player`: headless Debian Chromium driven by playwright-core (player.mjs) playing the appliance's
  URLs with hls.js / dash.js from tests/js/node_modules, loaded by a local page (player.html) from a
  static server thread on another port (so the appliance's CORS headers are exercised).

Needs: ffmpeg/ffprobe, node, /usr/bin/chromium and tests/js/node_modules (scripts/install-test-deps.sh).
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parents[1]
for p in (str(_HERE), str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "api"), str(ROOT / "tests" / "sdk")):
    if p not in sys.path:
        sys.path.insert(0, p)

from appliance import Appliance  # noqa: E402
from _procs import ANSI, CHROMIUM, SUMMARY, Encoder, Player  # noqa: E402

ARTIFACTS = ROOT / "tests" / "artifacts"
JS = ROOT / "tests" / "js"


def _missing_tools() -> list[str]:
    missing = [t for t in ("ffmpeg", "ffprobe", "node") if shutil.which(t) is None]
    for f in ("hls.js/dist/hls.min.js", "dashjs/dist/modern/umd/dash.all.min.js", "playwright-core/package.json"):
        if not (JS / "node_modules" / f).exists():
            missing.append(f"tests/js/node_modules/{f}")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    return missing


def pytest_collection_modifyitems(config, items):
    missing = _missing_tools()
    if not missing:
        return
    # On CI a missing tool is a broken install, not a reason to skip.
    if os.environ.get("CI"):
        raise pytest.UsageError(f"tests/live needs {missing}: run scripts/install-test-deps.sh")
    skip = pytest.mark.skip(reason=f"missing {missing}: run scripts/install-test-deps.sh")
    for it in items:
        if Path(str(it.fspath)).parent == _HERE:
            it.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    """The measurements the suites record but do not assert (e.g. time to first playable manifest)."""
    if SUMMARY:
        terminalreporter.section("live measurements")
        for line in SUMMARY:
            terminalreporter.write_line(line)


# ---------------------------------------------------------------------------------------- artifacts
@pytest.fixture
def artifacts(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    d = ARTIFACTS / "live" / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---------------------------------------------------------------------------------------- appliance
@pytest.fixture
def make_appliance(artifacts):
    """make_appliance(data_dir=None) starts an appliance; all are stopped at teardown (latest first),
    their logs copied to the artifacts, and data dirs removed by their owner."""
    made: list[Appliance] = []

    def make(data_dir: str | None = None, extra_args: list[str] | None = None) -> Appliance:
        a = Appliance(data_dir=data_dir, extra_args=extra_args)
        made.append(a)
        a.start()
        return a

    yield make
    for a in reversed(made):
        a.stop()
    for a in made:
        try:
            txt = ANSI.sub("", a.log_path.read_text(errors="replace"))
            (artifacts / "appliance.log").write_text(txt)
        except OSError:
            pass
    for a in made:
        a.cleanup()


@pytest.fixture
def appliance(make_appliance) -> Appliance:
    return make_appliance()


# ---------------------------------------------------------------------------------------- encoder
@pytest.fixture
def encoders(artifacts):
    """encoders(url, **kw) -> a started Encoder; all are killed at teardown."""
    made: list[Encoder] = []

    def make(url: str, **kw) -> Encoder:
        e = Encoder(url, artifacts, **kw)
        made.append(e)
        return e.start()

    yield make
    for e in made:
        e.close()


# ---------------------------------------------------------------------------------------- static pages
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):  # noqa: D401 - keep pytest output clean
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@pytest.fixture(scope="session")
def static_server():
    """Serves tests/ (player.html at /live/player.html, players at /js/node_modules/...) on a free port."""
    handler = functools.partial(_QuietHandler, directory=str(ROOT / "tests"))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def player(static_server, artifacts):
    """A started Player (Chromium launching in the background: the first open() waits for it)."""
    p = Player(static_server, artifacts).start()
    yield p
    p.quit()


