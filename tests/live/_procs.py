"""Processes the live suites drive: the ffmpeg encoder (Encoder) and headless Chromium with hls.js/dash.js
(Player, talking to player.mjs). Fixtures that build them are in conftest.py."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

_HERE = Path(__file__).resolve().parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CHROMIUM = os.environ.get("RMS_EDGE_CHROMIUM", "/usr/bin/chromium")


# Measurements shown in pytest's terminal summary (conftest.py: pytest_terminal_summary).
SUMMARY: list[str] = []


def log_line(artifacts: Path, msg: str, *, summary: bool = False) -> None:
    """Prints (shown with -s or on failure) and keeps a timeline in artifacts/timeline.txt; `summary`
    lines also appear at the end of the pytest run."""
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line)
    if summary:
        SUMMARY.append(f"{artifacts.name}: {msg}")
    with open(artifacts / "timeline.txt", "a") as f:
        f.write(line + "\n")


def appliance_log(app: Appliance) -> str:
    try:
        return ANSI.sub("", app.log_path.read_text(errors="replace"))
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------- encoder
class Encoder:
    """ffmpeg pushing testsrc2 + sine (H.264 High yuv420p, 2 s GOP, AAC 48 kHz) to an RTMP(S) URL."""

    def __init__(self, url: str, artifacts: Path, *, name: str = "encoder", size: str = "640x360",
                 duration: float | None = 120, rtmp_app: str | None = None, rtmp_playpath: str | None = None,
                 bitrate: str = "1500k", extra: list[str] | None = None):
        self.url, self.artifacts, self.name, self.size = url, artifacts, name, size
        self.duration, self.rtmp_app, self.rtmp_playpath = duration, rtmp_app, rtmp_playpath
        self.bitrate, self.extra = bitrate, extra or []
        self.proc: subprocess.Popen | None = None
        self.t_start: float | None = None
        self.log_path: Path | None = None

    def cmd(self) -> list[str]:
        c = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-nostats",
             "-re", "-f", "lavfi", "-i", f"testsrc2=size={self.size}:rate=30",
             "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
        if self.duration:
            c += ["-t", str(self.duration)]
        c += ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
              "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-b:v", self.bitrate,
              "-c:a", "aac", "-ar", "48000", "-b:a", "128k", *self.extra]
        if self.rtmp_app is not None:
            c += ["-rtmp_app", self.rtmp_app]
        if self.rtmp_playpath is not None:
            c += ["-rtmp_playpath", self.rtmp_playpath]
        c += ["-f", "flv", "-flvflags", "no_duration_filesize", self.url]
        return c

    def start(self) -> "Encoder":
        n = 0
        while (self.artifacts / f"{self.name}-{n}.log").exists():
            n += 1
        self.log_path = self.artifacts / f"{self.name}-{n}.log"
        with open(self.log_path, "w") as f:
            f.write("$ " + " ".join(self.cmd()) + "\n")
        self._log = open(self.log_path, "a")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(self.cmd(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._log)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:] if self.log_path else ""
        except OSError:
            return ""

    def assert_alive(self) -> None:
        assert self.alive(), f"encoder {self.name} exited with {self.proc.returncode}: {self.stderr_text()}"

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Graceful end (SIGINT: ffmpeg flushes and unpublishes)."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            if self.wait(timeout) is None:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def kill(self) -> None:
        """An encoder crash / cable pull as the appliance sees it: the TCP connection just closes."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def close(self) -> None:
        self.kill()
        if self.proc is not None:
            self._log.close()


# ---------------------------------------------------------------------------------------- player
class Player:
    """Headless Chromium with one page per player (hls.js or dash.js); states are polled every 250 ms."""

    def __init__(self, static_base: str, artifacts: Path):
        self.static_base, self.artifacts = static_base, artifacts
        self.proc: subprocess.Popen | None = None
        self.states: dict[str, list[dict]] = {}
        self.latest: dict[str, dict] = {}
        self.other: list[dict] = []
        self.results: dict[int, dict] = {}
        self.ready = threading.Event()
        self.cond = threading.Condition()
        self._seq = 0
        self._log = open(artifacts / "player.log", "a")

    def start(self) -> "Player":
        cfg = {"executablePath": CHROMIUM, "interval": 250}
        self.proc = subprocess.Popen(["node", str(_HERE / "player.mjs"), json.dumps(cfg)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1)
        threading.Thread(target=self._reader, daemon=True).start()
        return self

    def _reader(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                self._log.write(f"(non-json) {line}")
                continue
            typ = msg.get("type")
            with self.cond:
                if typ == "state":
                    self.states.setdefault(msg["id"], []).append(msg)
                    self.latest[msg["id"]] = msg
                elif typ == "result":
                    if msg.get("seq") is not None:
                        self.results[msg["seq"]] = msg
                else:
                    self.other.append(msg)
                    self._log.write(json.dumps(msg) + "\n")
                    self._log.flush()
                    if typ == "ready":
                        self.ready.set()
                self.cond.notify_all()
        self.ready.set()
        with self.cond:
            self.cond.notify_all()

    def _send(self, cmd: dict, timeout: float = 30.0):
        assert self.proc and self.proc.poll() is None, f"player process gone: {self.tail_log()}"
        with self.cond:
            self._seq += 1
            seq = cmd["seq"] = self._seq
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with self.cond:
            while seq not in self.results:
                left = deadline - time.monotonic()
                assert left > 0 and self.proc.poll() is None, f"player: no answer to {cmd['cmd']}: {self.tail_log()}"
                self.cond.wait(min(left, 0.5))
            res = self.results.pop(seq)
        assert not res.get("error"), f"player {cmd['cmd']} {cmd.get('id')}: {res['error']}"
        return res.get("value")

    def tail_log(self) -> str:
        try:
            return (self.artifacts / "player.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.ready.wait(timeout) and self.proc.poll() is None, f"chromium did not start: {self.tail_log()}"

    def open(self, pid: str, kind: str, src: str) -> None:
        """Opens a page playing `src` with `kind` ('hls' | 'dash')."""
        self.wait_ready()
        with self.cond:
            self.states.pop(pid, None)
            self.latest.pop(pid, None)
        url = f"{self.static_base}/live/player.html?" + urllib.parse.urlencode({"kind": kind, "src": src})
        self._send({"cmd": "open", "id": pid, "url": url})

    def close_page(self, pid: str) -> None:
        self._send({"cmd": "close", "id": pid})

    def eval(self, pid: str, js: str):
        return self._send({"cmd": "eval", "id": pid, "js": js})

    def screenshot(self, pid: str, name: str) -> Path:
        p = self.artifacts / f"{name}.png"
        self._send({"cmd": "screenshot", "id": pid, "path": str(p)})
        return p

    def state(self, pid: str) -> dict | None:
        with self.cond:
            return self.latest.get(pid)

    def history(self, pid: str) -> list[dict]:
        with self.cond:
            return list(self.states.get(pid, []))

    def events(self, pid: str) -> list:
        return self.eval(pid, "playerEvents()")

    def wait_for(self, pid: str, pred, timeout: float, what: str, *, fail_on_fatal: bool = True) -> dict:
        """Waits until pred(state) holds for page `pid`; fails early on a fatal player error."""
        deadline = time.monotonic() + timeout
        last = None
        with self.cond:
            while True:
                last = self.latest.get(pid)
                if last is not None:
                    if fail_on_fatal and last.get("fatal"):
                        break
                    if pred(last):
                        return last
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self.cond.wait(min(left, 0.5))
        self.dump(pid)
        brief = {k: last.get(k) for k in ("currentTime", "readyState", "paused", "ended", "duration", "buffered",
                                           "videoWidth", "fatal", "errors", "maxCc", "frags")} if last else None
        why = "fatal player error before" if last and fail_on_fatal and last.get("fatal") else f"not reached in {timeout}s:"
        raise AssertionError(f"{pid}: {why} {what}; last state {json.dumps(brief)[:3000]}")

    def dump(self, pid: str) -> None:
        """Keeps the page's state history, event list and a screenshot in the artifacts."""
        try:
            with open(self.artifacts / f"{pid}-states.jsonl", "w") as f:
                for s in self.history(pid):
                    f.write(json.dumps(s) + "\n")
            (self.artifacts / f"{pid}-events.json").write_text(json.dumps(self.events(pid), indent=1))
            self.screenshot(pid, f"{pid}-last")
        except Exception as e:  # noqa: BLE001 - best effort diagnostics
            self._log.write(f"dump {pid}: {e}\n")

    def quit(self) -> None:
        if self.proc and self.proc.poll() is None:
            for pid in list(self.latest):
                self.dump(pid)
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# ---------------------------------------------------------------------------------------- player checks
def advanced(state: dict, seconds: float) -> bool:
    """currentTime has moved `seconds` past where playback started, and playback is running."""
    first = state.get("firstPlayingTime")
    return first is not None and state["currentTime"] - first >= seconds and not state.get("fatal")


def assert_no_fatal(player: Player, pid: str) -> None:
    st = player.state(pid)
    assert st is not None, f"{pid}: no state"
    assert not st.get("fatal"), f"{pid}: fatal player error(s): {st['fatal']}"
