#!/usr/bin/python3
"""Stand-in for the rms-edge binary, for exercising the *image* (units, hardening, watchdog,
/data persistence, firewall, mark-good gate) before the real binary exists or without building it.

It implements only the process contract the image relies on (docs/image.md, "binary contract"):
  rms-edge serve --config FILE [--data-dir D] [--http-addr A] ...
  * binds every configured listener (TCP; srt-addr UDP), opens <data-dir>/standin-state.json
  * sd_notify READY=1 after that, STATUS= lines, WATCHDOG=1 at half of WATCHDOG_USEC while the
    "critical loop" makes progress, STOPPING=1 on SIGTERM
  * GET /healthz -> 200 {"status":"ok",...}; 503 while stalled
  * RMS_EDGE_TEST_HOOKS=1: POST /_test/stall stops the critical loop's progress
  * GET /_standin/state -> boot counter and the value stored by PUT /_standin/state (persistence)
It is NOT the product: no API, no ingest, no playback. hw-tests that need those skip or fail.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEFAULTS = {
    "data-dir": "/data/rms-edge", "http-addr": "0.0.0.0:80", "https-addr": "0.0.0.0:443",
    "rtmp-addr": "0.0.0.0:1935", "rtmps-addr": "0.0.0.0:2935", "srt-addr": "0.0.0.0:8890",
    "rtsp-addr": "0.0.0.0:554",
}


def notify(msg: str) -> None:
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(path)
        s.sendall(msg.encode())


def split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class State:
    def __init__(self, data_dir: Path):
        self.path = data_dir / "standin-state.json"
        self.lock = threading.Lock()
        self.doc = json.loads(self.path.read_text()) if self.path.exists() else {"boots": 0, "value": None}
        self.doc["boots"] += 1
        self.save()
        self.progress = time.monotonic()
        self.stalled = False

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(self.doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "serve":
        print("rms-edge stand-in: only `serve` is implemented", file=sys.stderr)
        return 2
    opts: dict[str, str] = {}
    args = argv[2:]
    i = 0
    while i < len(args):
        if args[i].startswith("--") and i + 1 < len(args):
            opts[args[i][2:]] = args[i + 1]
            i += 2
        else:
            i += 1
    cfg = dict(DEFAULTS)
    if "config" in opts and Path(opts["config"]).exists():
        cfg.update({k: str(v) for k, v in tomllib.loads(Path(opts["config"]).read_text()).items()
                    if not isinstance(v, dict)})
    cfg.update({k: v for k, v in opts.items() if k != "config"})
    data_dir = Path(cfg["data-dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    state = State(data_dir)
    hooks = os.environ.get("RMS_EDGE_TEST_HOOKS") == "1"

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: dict) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *a):  # journal noise
            pass

        def do_GET(self):
            if self.path == "/healthz":
                ok = not state.stalled
                self._send(200 if ok else 503, {"status": "ok" if ok else "stalled", "standin": True})
            elif self.path == "/_standin/state":
                with state.lock:
                    self._send(200, state.doc)
            else:
                self._send(404, {"error": {"code": "NotFound", "message": "stand-in"}})

        def do_PUT(self):
            if self.path == "/_standin/state":
                n = int(self.headers.get("Content-Length", "0"))
                with state.lock:
                    state.doc["value"] = json.loads(self.rfile.read(n) or b"null")
                    state.save()
                self._send(200, state.doc)
            else:
                self._send(404, {"error": {"code": "NotFound", "message": "stand-in"}})

        def do_POST(self):
            if self.path == "/_test/stall" and hooks:
                state.stalled = True
                notify("STATUS=stalled by /_test/stall")
                self._send(202, {"status": "stalling"})
            else:
                self._send(404, {"error": {"code": "NotFound", "message": "stand-in"}})

    host, port = split(cfg["http-addr"])
    httpd = ThreadingHTTPServer((host, port), Handler)
    # The other listeners: bound (so ports, capability and firewall are exercised) but idle.
    held = []
    for key in ("https-addr", "rtmp-addr", "rtmps-addr", "rtsp-addr", "srt-addr"):
        if not cfg.get(key):
            continue
        h, p = split(cfg[key])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if key == "srt-addr" else socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((h, p))
        if key != "srt-addr":
            s.listen(16)
        held.append(s)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def critical_loop():
        while True:
            if not state.stalled:
                state.progress = time.monotonic()
            time.sleep(0.5)

    threading.Thread(target=critical_loop, daemon=True).start()
    print("rms-edge stand-in ready", flush=True)
    notify(f"READY=1\nSTATUS=stand-in serving on {cfg['http-addr']} (boot {state.doc['boots']})")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    wd_usec = int(os.environ.get("WATCHDOG_USEC", "0"))
    interval = wd_usec / 2e6 if wd_usec else 1.0
    while not stop.wait(interval):
        # Feed the watchdog only if the critical loop made progress within one watchdog period.
        if wd_usec and time.monotonic() - state.progress < wd_usec / 1e6:
            notify("WATCHDOG=1")
    notify("STOPPING=1")
    httpd.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
