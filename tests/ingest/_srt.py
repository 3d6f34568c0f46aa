"""Helpers of the SRT ingest tests (issue 4): SRT callers (GStreamer `srtsink`, ffmpeg) pushing a
browser-playable test source, and the conversion of the live event's ready-to-paste SRT URL into the
form GStreamer takes."""
from __future__ import annotations

import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

from _ingest import FFMPEG_SRC

# GStreamer's audiotestsrc default buffer is 1024 samples: 48000/1024 buffers per second.
AUDIO_BUFFERS_PER_S = 48000 / 1024


def gst_srt_uri(endpoint_url: str, *, host: str | None = None, streamid: str | None = None,
                passphrase: str | None = None) -> str:
    """The live event's `srt://host:port?streamid=…&passphrase=…&pbkeylen=…&latency=<µs>` as a
    GStreamer `srtsink` URI: `mode=caller`, latency in milliseconds (libsrt/ffmpeg URLs give it in
    microseconds, GStreamer in milliseconds). `host`, `streamid`, `passphrase` override the URL's."""
    u = urllib.parse.urlsplit(endpoint_url)
    assert u.scheme == "srt" and u.port, endpoint_url
    q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    out = {"mode": "caller"}
    sid = streamid if streamid is not None else q.get("streamid")
    if sid:
        out["streamid"] = sid
    pw = passphrase if passphrase is not None else q.get("passphrase")
    if pw:
        out["passphrase"] = pw
        out["pbkeylen"] = q.get("pbkeylen", "16")
    if "latency" in q:
        out["latency"] = str(max(1, int(q["latency"]) // 1000))
    return f"srt://{host or u.hostname}:{u.port}?" + urllib.parse.urlencode(out, quote_via=urllib.parse.quote, safe="")


def gst_srt_cmd(uri: str, seconds: float | None, *, bitrate_kbps: int = 1500) -> list[str]:
    """The pipeline of platform-notes §1.2 (`mpegtsmux alignment=7` is required on 1.22): live
    640x360 I420 test video through x264 (zerolatency, 2 s max GOP) and AAC, muxed to TS, SRT caller.
    With `seconds`, both sources stop after that much media and the pipeline ends with EOS."""
    vn = [f"num-buffers={int(seconds * 30)}"] if seconds else []
    an = [f"num-buffers={int(seconds * AUDIO_BUFFERS_PER_S)}"] if seconds else []
    return ["gst-launch-1.0", "-e",
            "videotestsrc", "is-live=true", *vn, "!", "video/x-raw,format=I420,width=640,height=360,framerate=30/1",
            "!", "x264enc", "tune=zerolatency", "key-int-max=60", f"bitrate={bitrate_kbps}",
            "!", "h264parse", "config-interval=-1",
            "!", "mpegtsmux", "alignment=7", "name=m",
            "!", "srtsink", f"uri={uri}",
            "audiotestsrc", "is-live=true", *an, "!", "audio/x-raw,rate=48000,channels=2",
            "!", "voaacenc", "!", "aacparse", "!", "m."]


def ffmpeg_srt_cmd(url: str, seconds: float | None) -> list[str]:
    """ffmpeg (libsrt) as an SRT caller with the tests' browser-playable source, in real time."""
    t = ["-t", str(seconds)] if seconds else []
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-re", *FFMPEG_SRC, "-b:v", "1500k",
            *t, "-f", "mpegts", url]


class Caller:
    """One SRT caller process, its output kept in the artifacts; `prefix` runs it elsewhere (e.g.
    `ip netns exec NS`)."""

    def __init__(self, cmd: list[str], artifacts: Path, name: str, prefix: list[str] | None = None):
        self.cmd = [*(prefix or []), *cmd]
        self.log_path = artifacts / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.t_start: float | None = None

    def start(self) -> "Caller":
        self._log = open(self.log_path, "w")
        self._log.write("$ " + " ".join(self.cmd) + "\n")
        self._log.flush()
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def assert_alive(self) -> None:
        assert self.alive(), f"SRT caller exited with {self.proc.returncode}:\n{self.output()}"

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"SRT caller still running after {timeout}s:\n{self.output()}") from None

    def close(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None:
            self._log.close()
