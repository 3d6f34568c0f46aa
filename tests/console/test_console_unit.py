"""The console's own unit tests (crates/edge-console/web-tests, node's built-in runner) run as
part of the test command, and the vendored hls.js is the version the tests/js player suites use."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "crates" / "edge-console"


def test_node_unit_tests_pass():
    tests = sorted(str(p) for p in (CONSOLE / "web-tests").glob("*.test.mjs"))
    assert len(tests) >= 2, tests
    r = subprocess.run(["node", "--test", *tests], cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    passed = int(re.search(r"^# pass (\d+)", out, re.M).group(1))
    failed = int(re.search(r"^# fail (\d+)", out, re.M).group(1))
    assert failed == 0 and passed >= 15, out[-3000:]


def test_vendored_hls_js_is_the_pinned_release_with_its_license():
    vendored = (CONSOLE / "web" / "vendor" / "hls.min.js").read_text()
    pinned = json.loads((ROOT / "tests" / "js" / "package.json").read_text())["dependencies"]["hls.js"]
    assert f'"{pinned}"' in vendored, f"web/vendor/hls.min.js is not hls.js {pinned}"
    assert "sourceMappingURL" not in vendored, "the source map is not shipped: drop the reference"
    lic = (CONSOLE / "web" / "vendor" / "hls.js-LICENSE.txt").read_text()
    assert "Apache License" in lic
    # Nothing in the console loads from another origin (it must work with no internet).
    for f in (CONSOLE / "web").rglob("*"):
        if f.suffix in (".html", ".css", ".js") and f.name != "hls.min.js":
            assert not re.search(r"""(src|href|import|url)\s*[=(]?\s*["'`]?https?://""", f.read_text()), f
