"""Fixtures for the archive sync suites (issue 6, "How it is shown to work").

- `azurite` / `moto`: real storage servers on free ports (Azurite from tests/js/node_modules, moto's S3
  server from the venv), each with its container / bucket created.
- `make_appliance`: the real rms-edge binary with a config file naming storage targets; logs are kept in
  tests/artifacts/sync/<test>/.
- `encoders`, `player`: the live suites' ffmpeg encoder and headless Chromium (tests/live/_procs.py),
  imported, not copied.

Needs: ffmpeg, node, /usr/bin/chromium, tests/js/node_modules (azurite, hls.js, playwright-core) and the
venv's moto[server], boto3, azure-storage-blob (scripts/install-test-deps.sh).
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
for p in (str(_HERE), str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "api"), str(ROOT / "tests" / "live")):
    if p not in sys.path:
        sys.path.insert(0, p)

from appliance import Appliance  # noqa: E402
from _procs import ANSI, CHROMIUM, Encoder, Player  # noqa: E402
from _storage import AZURITE, MOTO, Azurite, Moto  # noqa: E402

ARTIFACTS = ROOT / "tests" / "artifacts" / "sync"


def _missing() -> list[str]:
    missing = [t for t in ("ffmpeg", "node") if shutil.which(t) is None]
    for p in (AZURITE, MOTO, ROOT / "tests" / "js" / "node_modules" / "hls.js" / "dist" / "hls.min.js"):
        if not p.exists():
            missing.append(str(p.relative_to(ROOT)))
    try:
        import azure.storage.blob  # noqa: F401
        import boto3  # noqa: F401
    except ImportError as e:
        missing.append(str(e))
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    return missing


def pytest_collection_modifyitems(config, items):
    missing = _missing()
    if not missing:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"tests/sync needs {missing}: run scripts/install-test-deps.sh")
    skip = pytest.mark.skip(reason=f"missing {missing}: run scripts/install-test-deps.sh")
    for it in items:
        if Path(str(it.fspath)).parent == _HERE:
            it.add_marker(skip)


@pytest.fixture
def artifacts(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    d = ARTIFACTS / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def azurite(artifacts):
    s = Azurite(artifacts).start()
    yield s
    s.stop()


@pytest.fixture
def moto(artifacts):
    s = Moto(artifacts).start()
    yield s
    s.stop()


@pytest.fixture
def make_appliance(artifacts):
    """make_appliance(config_path, data_dir=None) -> a started appliance; stopped at teardown, logs kept."""
    made: list[Appliance] = []

    def make(config: str, data_dir: str | None = None) -> Appliance:
        a = Appliance(data_dir=data_dir, extra_args=["--config", config])
        made.append(a)
        a.start()
        return a

    yield make
    for a in reversed(made):
        a.stop()
    for i, a in enumerate(made):
        try:
            (artifacts / f"appliance-{i}.log").write_text(ANSI.sub("", a.log_path.read_text(errors="replace")))
        except OSError:
            pass
        a.cleanup()


@pytest.fixture
def encoders(artifacts):
    made: list[Encoder] = []

    def make(url: str, **kw) -> Encoder:
        e = Encoder(url, artifacts, **kw)
        made.append(e)
        return e.start()

    yield make
    for e in made:
        e.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture(scope="session")
def static_server():
    """Serves tests/ (the live suites' player.html and the players) on a free port."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(ROOT / "tests")))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def player(static_server, artifacts):
    p = Player(static_server, artifacts).start()
    yield p
    p.quit()
