"""Issue 4, SRT on a bad network: ffmpeg's SRT caller pushing through impairment, and the stream stays
playable without gaps (the live playlists keep advancing with contiguous media sequence numbers and
program date-times, no discontinuity, every segment decodes with the frames its EXTINF says, the TS
demultiplexer saw no continuity error, hls.js plays).

1. ~5 % random loss each way: the caller runs in a network namespace joined to the host by a veth pair;
   an nftables `numgen random mod 100 < 5 drop` rule in the namespace drops SRT datagrams (counted, so
   the test knows loss happened). Needs root, `ip netns` and nft; skipped otherwise.
2. A userspace UDP relay (udp_relay.py, seeded) adding 40 ± 25 ms each way (so datagrams arrive
   reordered) and 2 % loss each way; no root needed.

getStatus and getTrackIngestHeartbeats are checked for health and, when they carry them, for the SRT
packet-loss/retransmission counters."""
from __future__ import annotations

import json
import re
import time
import urllib.parse

import pytest

from _ingest import setup_event
from _live import PlaylistWatcher, decode_segments, manifest_ready, wait_manifest, wait_segments
from _netimp import ApplianceOn, NetNs, Relay, netns_unavailable
from _procs import ANSI, advanced, appliance_log, assert_no_fatal, log_line
from _srt import Caller, ffmpeg_srt_cmd

pytestmark = pytest.mark.timeout(240)

# Segments of media watched under impairment (2 s GOP, so about 2.3 s each with this source).
WATCH_SEGMENTS = 7


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture
def netns():
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    ns = NetNs().open()
    try:
        yield ns
    finally:
        left = ns.close()
        assert not left, f"not removed: {left}"


@pytest.fixture
def veth_appliance(netns, artifacts):
    """An appliance whose SRT listener is on the host end of the veth pair."""
    a = ApplianceOn(netns.host_ip)
    try:
        a.start()
        yield a
    finally:
        a.stop()
        (artifacts / "appliance.log").write_text(appliance_log(a))
        a.cleanup()


# ---------------------------------------------------------------------------------------- checks
def heartbeats(live) -> list[dict]:
    r = live.api.call("POST", f"liveEvents/{live.event}/getTrackIngestHeartbeats")
    assert r.status == 200, r
    return r.doc["value"]


def loss_fields(doc, path="") -> dict[str, object]:
    """Every field whose name speaks of packet loss or retransmission, anywhere in `doc`."""
    out = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = f"{path}.{k}" if path else k
            if re.search(r"loss|lost|retrans|drop", k, re.I) and not isinstance(v, (dict, list)):
                out[p] = v
            out.update(loss_fields(v, p))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.update(loss_fields(v, f"{path}[{i}]"))
    return out


def check_gapless(live, watcher: PlaylistWatcher, artifacts) -> int:
    """The snapshots the watcher took: no discontinuity, contiguous media sequence numbers, each
    segment's program date-time continuing the previous one's, and every segment seen decodes with the
    number of frames its duration says. Returns the number of video segments checked."""
    watcher.check()
    for r in ("video", "audio"):
        snaps = watcher.snapshots[r]
        for _t, pl in snaps:
            assert pl.discontinuity_sequence == 0 and not pl.discontinuities, f"{r}: discontinuity:\n{pl.text}"
        segs = sorted(watcher.all_segments(r).values(), key=lambda s: s.msn)
        msns = [s.msn for s in segs]
        assert msns == list(range(msns[0], msns[0] + len(msns))), f"{r}: media sequence numbers with holes {msns}"
        for a, b in zip(segs, segs[1:]):
            if a.pdt is not None and b.pdt is not None:
                gap = (b.pdt - a.pdt).total_seconds() - a.duration
                assert abs(gap) < 0.1, f"{r}: {b.uri} starts {gap:+.3f}s from the end of {a.uri} (PROGRAM-DATE-TIME)"
        last = snaps[-1][1]
        decode_segments(live, r, last, segs if len(segs) <= len(last.segments) else last.segments, workdir=artifacts)
    video = sorted(watcher.all_segments("video").values(), key=lambda s: s.msn)
    audio = sorted(watcher.all_segments("audio").values(), key=lambda s: s.msn)
    common = min(len(video), len(audio))
    dv, da = sum(s.duration for s in video[:common]), sum(s.duration for s in audio[:common])
    assert abs(dv - da) < 0.25 * common, f"audio ({da:.2f}s) and video ({dv:.2f}s) drifted apart"
    return len(video)


def run_impaired(live, caller: Caller, player, artifacts, label: str) -> dict:
    """Watches the stream under impairment until WATCH_SEGMENTS new segments are out, plays it with
    hls.js, then ends the caller and returns what the API said meanwhile."""
    wait_manifest(live, min_segments=1, timeout=40, encoder=caller)
    watcher = PlaylistWatcher(live, period=0.5)
    watcher.start()
    try:
        player.open("hls", "hls", live.hls_url)
        start = live.media_playlist("video")
        wait_segments(live, len(start.segments) + WATCH_SEGMENTS, timeout=60, encoder=caller)
        s = player.wait_for("hls", lambda s: advanced(s, 8.0), 45, f"{label}: hls.js advancing")
        assert (s["videoWidth"], s["videoHeight"]) == (640, 360), s
        assert_no_fatal(player, "hls")
        log_line(artifacts, f"{label}: hls.js played {s['currentTime'] - s['firstPlayingTime']:.1f}s, "
                            f"state {json.dumps({k: s.get(k) for k in ('readyState', 'buffered', 'frags')})[:300]}")
        status, beats = live.status(), heartbeats(live)
    finally:
        watcher.stop()
        watcher.dump(artifacts)
    caller.assert_alive()
    n = check_gapless(live, watcher, artifacts)
    log_line(artifacts, f"{label}: {n} video segments without a gap or discontinuity")
    assert status["state"] == "Running" and status["healthStatus"] != "Poor", status
    tracks = {t["trackId"]: t for t in status["trackStatus"]}
    assert {"video", "audio"} <= set(tracks) and tracks["video"]["incomingBitrate"] > 500_000, status
    assert {b["data"]["trackType"] for b in beats} >= {"video", "audio"}, beats
    assert all(b["data"]["healthy"] and b["data"]["discontinuityCount"] == 0 for b in beats), beats
    (artifacts / "status.json").write_text(json.dumps({"getStatus": status, "heartbeats": beats}, indent=1))

    caller.close()
    deadline = time.monotonic() + 15
    while True:
        m = re.search(r"SRT encoder disconnected .*?bytes=(\d+) cc_errors=(\d+) dropped_units=(\d+)",
                      ANSI.sub("", appliance_log(live.app)))
        if m:
            break
        assert time.monotonic() < deadline, "the SRT session did not end"
        time.sleep(0.2)
    bytes_, cc, dropped = map(int, m.groups())
    log_line(artifacts, f"{label}: TS bytes {bytes_}, continuity errors {cc}, dropped units {dropped}", summary=True)
    assert cc == 0 and dropped == 0, f"{label}: media was lost: {m.group(0)}"
    return {"getStatus": status, "heartbeats": beats}


def check_loss_reported(api_docs: dict, artifacts, label: str) -> None:
    fields = loss_fields(api_docs)
    log_line(artifacts, f"{label}: loss/retransmission fields in the API: {fields or 'none'}", summary=True)
    assert fields, f"{label}: getStatus/getTrackIngestHeartbeats carry no SRT packet-loss or retransmission counters"
    assert any(isinstance(v, (int, float)) and v > 0 for v in fields.values()), \
        f"{label}: the API reports no loss/retransmission under loss: {fields}"


def connect_like_an_encoder(live, make, artifacts, tries: int = 3) -> Caller:
    """Starts a caller and, as encoders do, starts it again if it gives up before its stream is up. Under
    loss a handshake packet is lost now and then. A lost conclusion response is answered again by the
    appliance (edge-srt's transport; srt-tokio did not, and ffmpeg gave up with "CONFUSED: expected
    UMSG_HANDSHAKE"), so this is now rare; other handshake losses can still make libsrt give up, which an
    encoder answers by connecting again. What this test is about, a stream without gaps under loss once
    connected, is unaffected; a retry is logged (none in the runs since the transport changed)."""
    for n in range(1, tries + 1):
        caller = make(n).start()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if manifest_ready(live):
                return caller
            if not caller.alive():
                break
            time.sleep(0.5)
        if caller.alive():
            return caller  # connected but slow: run_impaired's own wait reports it
        log_line(artifacts, f"SRT caller attempt {n} gave up before its stream was up (lost handshake); retrying",
                 summary=True)
    caller.assert_alive()
    return caller


# ---------------------------------------------------------------------------------------- tests
def test_srt_under_5_percent_packet_loss_stays_gapless(netns, veth_appliance, player, artifacts):
    app = veth_appliance
    # 400 ms: room for a NAK, its periodic repeat when the NAK itself is lost, and the retransmission,
    # on a machine whose 2 cores may be fully loaded. With libsrt's default 120 ms, a run at load
    # average 8 gave up on 7 runs of packets in 20 s (too late) and Chromium failed to decode a frame.
    live, doc = setup_event(app, "SRT", {"srtLatency": 400})
    url = doc["properties"]["input"]["endpoints"][0]["url"]
    assert "latency=400000" in url, url
    u = urllib.parse.urlsplit(url)
    caller_url = u._replace(netloc=f"{netns.host_ip}:{app.srt_port}").geturl()
    netns.drop(app.srt_port, 5)
    caller = connect_like_an_encoder(
        live, lambda n: Caller(ffmpeg_srt_cmd(caller_url, 90), artifacts, f"ffmpeg-netns-{n}", prefix=netns.prefix()),
        artifacts)
    try:
        docs = run_impaired(live, caller, player, artifacts, "5 % loss")
    finally:
        caller.close()
    c = netns.counters()
    (artifacts / "nft-counters.json").write_text(json.dumps(c))
    log_line(artifacts, f"nft (dropped, passed) packets: to the appliance {c['out']}, from it {c['in']}", summary=True)
    for chain in ("out", "in"):
        dropped, passed = c[chain]
        assert passed > 500 and 0.02 < dropped / (dropped + passed) < 0.09, f"{chain}: loss not ~5 %: {c}"
    check_loss_reported(docs, artifacts, "5 % loss")


def test_srt_through_a_delaying_jittering_relay_stays_gapless(appliance, player, artifacts):
    app = appliance
    live, doc = setup_event(app, "SRT", {"srtLatency": 500})
    url = doc["properties"]["input"]["endpoints"][0]["url"]
    assert "latency=500000" in url, url
    relay = Relay(("127.0.0.1", app.srt_port), artifacts, delay_ms=40, jitter_ms=25, loss=0.02, seed=4).start()
    caller_url = urllib.parse.urlsplit(url)._replace(netloc=f"127.0.0.1:{relay.port}").geturl()
    caller = connect_like_an_encoder(
        live, lambda n: Caller(ffmpeg_srt_cmd(caller_url, 90), artifacts, f"ffmpeg-relay-{n}"), artifacts)
    try:
        docs = run_impaired(live, caller, player, artifacts, "relay 40±25 ms, 2 % loss")
    finally:
        caller.close()
        stats = relay.stop()
    log_line(artifacts, f"relay: {stats}", summary=True)
    assert stats["up"] > 1000 and stats["reordered"] > 0 and stats["dropped_up"] > 0, stats
    check_loss_reported(docs, artifacts, "relay")
