"""The console suite's browser: headless Debian Chromium driven by playwright-core (browser.mjs)."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("RMS_EDGE_CHROMIUM", "/usr/bin/chromium")


class Browser:
    def __init__(self, artifacts: Path, width: int = 1280, height: int = 860):
        self.artifacts = artifacts
        self.events: list[dict] = []
        self.results: dict[int, dict] = {}
        self.cond = threading.Condition()
        self.ready = threading.Event()
        self._seq = 0
        self._log = open(artifacts / "browser.log", "a")
        cfg = {"executablePath": CHROMIUM, "width": width, "height": height}
        self.proc = subprocess.Popen(["node", str(_HERE / "browser.mjs"), json.dumps(cfg)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1)
        threading.Thread(target=self._reader, daemon=True).start()
        assert self.ready.wait(60) and self.proc.poll() is None, f"chromium did not start: {self.tail()}"

    def _reader(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                if msg.get("type") == "result":
                    self.results[msg["seq"]] = msg
                else:
                    self._log.write(json.dumps(msg) + "\n")
                    self._log.flush()
                    if msg.get("type") == "event":
                        self.events.append(msg)
                    if msg.get("type") in ("ready", "fatal"):
                        self.ready.set()
                self.cond.notify_all()
        self.ready.set()

    def tail(self) -> str:
        try:
            return (self.artifacts / "browser.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def send(self, cmd: str, timeout: float = 60.0, check: bool = True, **kw):
        with self.cond:
            self._seq += 1
            seq = self._seq
        self.proc.stdin.write(json.dumps({"seq": seq, "cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with self.cond:
            while seq not in self.results:
                left = deadline - time.monotonic()
                assert left > 0 and self.proc.poll() is None, f"browser: no answer to {cmd}: {self.tail()}"
                self.cond.wait(min(left, 0.5))
            res = self.results.pop(seq)
        if check:
            assert not res.get("error"), f"browser {cmd} {kw}: {res['error']}"
        return res

    def goto(self, url: str) -> str:
        return self.send("goto", url=url)["value"]

    def reload(self) -> str:
        return self.send("reload")["value"]

    def click(self, sel: str, timeout_ms: int = 15000) -> None:
        self.send("click", sel=sel, ms=timeout_ms, timeout=timeout_ms / 1000 + 10)

    def fill(self, sel: str, value: str) -> None:
        self.send("fill", sel=sel, value=value)

    def select(self, sel: str, value: str) -> None:
        self.send("select", sel=sel, value=value)

    def wait(self, sel: str, timeout_ms: int = 15000, state: str = "visible") -> None:
        self.send("wait", sel=sel, ms=timeout_ms, state=state, timeout=timeout_ms / 1000 + 10)

    def text(self, sel: str) -> str:
        return self.send("text", sel=sel)["value"]

    def value(self, sel: str) -> str:
        return self.send("value", sel=sel)["value"]

    def eval(self, js: str):
        return self.send("eval", js=js).get("value")

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        p = self.artifacts / f"{name}.png"
        if full_page:  # the header is sticky: from the top, it is drawn once, where it belongs
            self.send("eval", js="window.scrollTo(0, 0)", check=False)
        self.send("screenshot", path=str(p), fullPage=full_page)
        return p

    def viewport(self, width: int, height: int) -> None:
        self.send("viewport", width=width, height=height)

    def wait_until(self, js: str, timeout: float, what: str, interval: float = 0.25):
        """Polls a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.send("eval", js=js, check=False).get("value")
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"not reached in {timeout}s: {what} (last {last!r}); browser log: {self.tail()[-1500:]}")

    def page_errors(self) -> list[dict]:
        with self.cond:
            return [e for e in self.events if e.get("kind") in ("pageerror",)]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self._log.close()
