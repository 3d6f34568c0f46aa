"""Fixtures for the technician console suite (issue 9).

- `appliance`: the real rms-edge binary on free ports (tests/harness/appliance.py).
- `browser`: headless Debian Chromium driven by playwright-core (browser.mjs, _browser.py).
- `artifacts`: tests/artifacts/console/<test>/ (screenshots, browser and appliance logs, encoder logs).

Needs: ffmpeg, node, /usr/bin/chromium and tests/js/node_modules (scripts/install-test-deps.sh).
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parents[1]
for p in (str(_HERE), str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "live"), str(ROOT / "tests" / "api")):
    if p not in sys.path:
        sys.path.insert(0, p)

from appliance import Appliance  # noqa: E402
from _browser import CHROMIUM, Browser  # noqa: E402

ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
JS = ROOT / "tests" / "js"


def _missing_tools(browser: bool) -> list[str]:
    missing = [t for t in ("node",) if shutil.which(t) is None]
    if browser:
        missing += [t for t in ("ffmpeg",) if shutil.which(t) is None]
        if not (JS / "node_modules" / "playwright-core" / "package.json").exists():
            missing.append("tests/js/node_modules/playwright-core")
        if not os.access(CHROMIUM, os.X_OK):
            missing.append(CHROMIUM)
    return missing


def pytest_collection_modifyitems(config, items):
    for it in items:
        if Path(str(it.fspath)).parent != _HERE:
            continue
        missing = _missing_tools(browser=it.fspath.basename == "test_console_e2e.py")
        if not missing:
            continue
        if os.environ.get("CI"):  # on CI a missing tool is a broken install, not a reason to skip
            raise pytest.UsageError(f"tests/console needs {missing}: run scripts/install-test-deps.sh")
        it.add_marker(pytest.mark.skip(reason=f"missing {missing}: run scripts/install-test-deps.sh"))


@pytest.fixture
def artifacts(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    d = ARTIFACTS / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def appliance(artifacts):
    app = Appliance()
    app.start()
    try:
        yield app
    finally:
        app.stop()
        shutil.copy(app.log_path, artifacts / "rms-edge.log")
        app.cleanup()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def browser(request, artifacts):
    b = Browser(artifacts)
    try:
        yield b
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed and b.proc.poll() is None:
            try:
                b.screenshot("failure")
                (artifacts / "failure.html").write_text(b.eval("document.documentElement.outerHTML") or "")
            except AssertionError:
                pass
        b.close()
