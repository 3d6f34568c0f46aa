"""Issue 3 "Bad input": while a good ffmpeg stream runs, the RTMP/RTMPS listeners get random bytes, a
half handshake, silent connections, 200 idle connections, a wrong key, a second publisher on the running
event, a publish to an event that is not Running and one from outside an event's IP allow list. Each is
refused (connection closed, ffmpeg fails) and logged; after each, the good stream's playlist keeps advancing
and the API answers."""
from __future__ import annotations

import random
import select
import socket
import ssl
import threading
import time

import pytest

from _live import PlaylistWatcher, assert_advancing, setup_live, wait_manifest, wait_segments
from _procs import appliance_log, log_line

pytestmark = pytest.mark.timeout(240)

HANDSHAKE_TIMEOUT_S = 10.0   # edge-rtmp default: handshake (and publish) must happen within 10 s
CLOSE_SLACK_S = 3.0


class Conns(threading.Thread):
    """Open TCP connections, watched for the server closing them (EOF or reset); records when."""

    def __init__(self):
        super().__init__(daemon=True)
        self.socks: dict[socket.socket, tuple[str, float]] = {}
        self.closed: dict[str, float] = {}  # label -> seconds from open to close
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def add(self, label: str, s: socket.socket) -> None:
        with self.lock:
            self.socks[s] = (label, time.monotonic())

    def run(self) -> None:
        while not self.halt.is_set():
            with self.lock:
                live = list(self.socks)
            if not live:
                time.sleep(0.1)
                continue
            r, _, _ = select.select(live, [], [], 0.2)
            for s in r:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    with self.lock:
                        label, t0 = self.socks.pop(s)
                        self.closed[label] = time.monotonic() - t0
                    s.close()

    def open_count(self) -> int:
        with self.lock:
            return len(self.socks)

    def close_all(self) -> None:
        self.halt.set()
        self.join(5)
        for s in list(self.socks):
            s.close()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(None)
    return s


def time_to_close(s: socket.socket, timeout: float) -> float | None:
    """Seconds until the server closes `s` (EOF/reset), or None if still open after `timeout`."""
    t0 = time.monotonic()
    s.settimeout(0.5)
    while time.monotonic() - t0 < timeout:
        try:
            if not s.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


def send_quietly(s: socket.socket, data: bytes) -> None:
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may close before taking it all: that is the point


def rtmp_handshake(port: int, timeout: float = 3.0) -> float:
    """C0+C1 -> S0+S1+S2; returns seconds taken (asserts it completes)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"\x03" + bytes(4) + bytes(4) + random.Random(7).randbytes(1528))
        got = b""
        while len(got) < 1 + 1536 * 2:
            chunk = s.recv(65536)
            assert chunk, f"server closed during the handshake after {len(got)} bytes"
            got += chunk
        assert got[0] == 3, f"S0 version {got[0]}"
    return time.monotonic() - t0


def wait_log(app, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        lines = [l for l in appliance_log(app).splitlines() if needle in l]
        if lines:
            return lines[-1]
        assert time.monotonic() < deadline, f"nothing logged about {needle!r} within {timeout}s"
        time.sleep(0.2)


def refusals(app) -> list[str]:
    return [l for l in appliance_log(app).splitlines() if "refused" in l.lower()]


def stream_event_codes(live) -> list[tuple[str, str]]:
    return [(e["eventType"].split("/")[-1], (e.get("data") or {}).get("resultCode", "")) for e in live.stream_events()]


def wait_stream_event(live, etype: str, code: str | None = None, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        evs = stream_event_codes(live)
        if any(t == etype and (code is None or c == code) for t, c in evs):
            return
        assert time.monotonic() < deadline, f"no {etype} {code or ''} stream event on {live.event}: {evs}"
        time.sleep(0.25)


def test_bad_ingest_input_leaves_the_running_stream_alone(appliance, encoders, artifacts):
    app = appliance
    good = setup_live(app, prefix="good")
    enc = encoders(good.rtmp_url(), name="good")
    wait_manifest(good, encoder=enc)
    wait_segments(good, 2, encoder=enc)
    watcher = PlaylistWatcher(good, renditions=("video",))
    watcher.start()
    conns = Conns()
    conns.start()
    try:
        # ---- 1. random bytes -------------------------------------------------------------------
        rnd = random.Random(20261127)
        cases = {
            "random bytes (not an RTMP version byte)": (app.rtmp_port, b"\xff" + rnd.randbytes(256 * 1024), False),
            "valid C0/C1/C2 then random chunk stream": (app.rtmp_port, None, False),
            "random bytes to RTMPS": (app.rtmps_port, b"\x16\x03\x01" + rnd.randbytes(64 * 1024), False),
        }
        for what, (port, payload, _) in cases.items():
            s = connect(port)
            local = s.getsockname()[1]
            if payload is None:
                s.sendall(b"\x03" + bytes(8) + rnd.randbytes(1528))
                got = b""
                s.settimeout(5)
                while len(got) < 1 + 2 * 1536:
                    chunk = s.recv(65536)
                    assert chunk, f"{what}: closed during a valid handshake"
                    got += chunk
                send_quietly(s, got[1:1 + 1536])  # C2 = echo of S1
                payload = rnd.randbytes(256 * 1024)
            send_quietly(s, payload)
            took = time_to_close(s, HANDSHAKE_TIMEOUT_S + CLOSE_SLACK_S)
            s.close()
            assert took is not None, f"{what}: connection still open {HANDSHAKE_TIMEOUT_S + CLOSE_SLACK_S}s later"
            line = wait_log(app, f"127.0.0.1:{local}")
            log_line(artifacts, f"{what}: closed after {took:.2f}s; logged: {line[-160:]}")
            assert_advancing(good, what=f"after {what}")

        # ---- 2. silent, half-handshake and 200 idle connections --------------------------------------
        silent = connect(app.rtmp_port)
        silent_port = silent.getsockname()[1]
        conns.add("silent", silent)
        half = connect(app.rtmp_port)
        half_port = half.getsockname()[1]
        half.sendall(b"\x03" + bytes(8) + rnd.randbytes(760))  # C0 + half of C1, then nothing
        conns.add("half handshake", half)
        for i in range(200):
            conns.add(f"idle-{i}", connect(app.rtmp_port))
        t_idle = time.monotonic()
        hs = rtmp_handshake(app.rtmp_port)
        log_line(artifacts, f"202 idle connections open; a new RTMP handshake still completes in {hs:.3f}s")
        assert hs < 1.0, f"a handshake took {hs:.2f}s with 202 idle connections open"
        assert_advancing(good, what="with 202 idle connections open")

        # ---- 3. wrong key -----------------------------------------------------------------------
        n0 = len(refusals(app))
        bad = encoders(f"rtmp://127.0.0.1:{app.rtmp_port}/live/{'0f' * 16}", name="wrong-key", duration=5)
        rc = bad.wait(20)
        assert rc is not None and rc != 0, f"ffmpeg with a wrong key: rc {rc}; {bad.stderr_text()[-500:]}"
        assert len(refusals(app)) > n0, "the wrong key was not logged as refused"
        log_line(artifacts, f"wrong key: ffmpeg rc {rc}; logged: {refusals(app)[-1][-160:]}")
        assert_advancing(good, what="after a wrong key")

        # ---- 4. a second publisher on the running event ----------------------------------------
        n0 = len(refusals(app))
        dup = encoders(good.rtmp_url(), name="second-publisher", duration=5)
        rc = dup.wait(20)
        assert rc is not None and rc != 0, f"a second publisher on the same key was not refused (rc {rc})"
        enc.assert_alive()
        assert len(refusals(app)) > n0, "the second publisher was not logged as refused"
        wait_stream_event(good, "InvalidConnection")
        log_line(artifacts, f"second publisher: ffmpeg rc {rc}; stream events {stream_event_codes(good)}")
        assert_advancing(good, what="after a second publisher")

        # ---- 5. an event that is not Running, and an address outside the allow list ---------------
        acl = setup_live(app, prefix="acl", start=False, locator=False,
                         allow=[{"name": "OnlyThere", "address": "10.9.9.9", "subnetPrefixLength": 32}])
        n0 = len(refusals(app))
        e = encoders(acl.rtmp_url(), name="not-running", duration=5)
        rc = e.wait(20)
        assert rc is not None and rc != 0, f"publish to a Stopped event was not refused (rc {rc})"
        assert len(refusals(app)) > n0, "the publish to a Stopped event was not logged as refused"
        wait_stream_event(acl, "InvalidConnection")
        acl.api.start_live_event(acl.event)
        n0 = len(refusals(app))
        e = encoders(acl.rtmp_url(), name="ip-not-allowed", duration=5)
        rc = e.wait(20)
        assert rc is not None and rc != 0, f"a publisher outside accessControl.ip.allow was not refused (rc {rc})"
        assert len(refusals(app)) > n0, "the disallowed address was not logged as refused"
        wait_stream_event(acl, "InvalidConnection", "MPE_INGEST_IP_NOT_ALLOWED")
        st = acl.status()
        assert st["ingestion"].get("begin") is None, f"the refused publisher shows as ingesting: {st}"
        assert not [t for t, _ in stream_event_codes(acl) if t == "BeginIngest"], stream_event_codes(acl)
        log_line(artifacts, f"not Running / IP not allowed: stream events {stream_event_codes(acl)}")
        assert_advancing(good, what="after refused publishers on another event")

        # ---- 6. the idle connections are closed by the server ------------------------------------
        deadline = t_idle + HANDSHAKE_TIMEOUT_S + CLOSE_SLACK_S
        while conns.open_count() and time.monotonic() < deadline:
            time.sleep(0.2)
        still = conns.open_count()
        closed = conns.closed
        log_line(artifacts, f"idle connections: {len(closed)} closed by the server (silent after "
                            f"{closed.get('silent', float('nan')):.1f}s, half handshake after "
                            f"{closed.get('half handshake', float('nan')):.1f}s), {still} still open")
        assert "silent" in closed and closed["silent"] <= HANDSHAKE_TIMEOUT_S + CLOSE_SLACK_S, closed.get("silent")
        assert "half handshake" in closed, "a half handshake was never closed"
        assert still == 0, f"{still} idle connections still open {HANDSHAKE_TIMEOUT_S + CLOSE_SLACK_S}s after opening"
        for port in (silent_port, half_port):
            wait_log(app, f"127.0.0.1:{port}")
        assert_advancing(good, what="after the idle connections")
    finally:
        conns.close_all()
        watcher.stop()
    watcher.check()
    enc.assert_alive()
    evs = stream_event_codes(good)
    assert [t for t, _ in evs].count("BeginIngest") == 1 and "EndIngest" not in [t for t, _ in evs], \
        f"the good stream was interrupted: {evs}"
    st = good.status()
    assert st["healthStatus"] in ("Excellent", "Good"), st
