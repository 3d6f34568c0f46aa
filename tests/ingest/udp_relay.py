"""A userspace UDP impairment relay for one SRT caller (this kernel has no netem): datagrams from the
caller to `--listen` go to `--target`, the answers go back to the caller's address; each datagram, in
each direction, is held for `delay ± jitter` ms (uniform, from a seeded generator, so datagrams closer
together than the jitter arrive reordered) and dropped with probability `--loss`.

    python3 udp_relay.py --listen 127.0.0.1:0 --target 127.0.0.1:9000 --delay 40 --jitter 25 --seed 7 \
        --port-file /tmp/port --stats /tmp/stats.json

Prints nothing; writes its port to --port-file once bound and its counters (JSON) to --stats on
SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import selectors
import signal
import socket
import time


def addr(s: str) -> tuple[str, int]:
    host, port = s.rsplit(":", 1)
    return host, int(port)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=addr, required=True)
    ap.add_argument("--target", type=addr, required=True)
    ap.add_argument("--delay", type=float, default=0.0, help="ms, each way")
    ap.add_argument("--jitter", type=float, default=0.0, help="ms, uniform ±, each way")
    ap.add_argument("--loss", type=float, default=0.0, help="probability, each way")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--stats", required=True)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(a.listen)
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.connect(a.target)
    for s in (front, back):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setblocking(False)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(front.getsockname()[1]))
    os.replace(a.port_file + ".tmp", a.port_file)

    stats = {"up": 0, "down": 0, "dropped_up": 0, "dropped_down": 0, "reordered": 0,
             "delay_ms": a.delay, "jitter_ms": a.jitter, "loss": a.loss, "seed": a.seed}
    client: tuple[str, int] | None = None
    queue: list[tuple[float, int, str, bytes]] = []  # (due, arrival order, direction, datagram)
    order = 0
    last_sent = {"up": -1, "down": -1}
    running = True

    def halt(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, halt)
    signal.signal(signal.SIGINT, halt)
    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ, "up")
    sel.register(back, selectors.EVENT_READ, "down")

    def hold(direction: str, data: bytes) -> None:
        nonlocal order
        if a.loss and rng.random() < a.loss:
            stats["dropped_" + direction] += 1
            return
        d = a.delay + (rng.uniform(-a.jitter, a.jitter) if a.jitter else 0.0)
        order += 1
        heapq.heappush(queue, (time.monotonic() + max(0.0, d) / 1000, order, direction, data))

    while running:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 0.2
        for key, _ in sel.select(min(timeout, 0.2)):
            while True:
                try:
                    if key.data == "up":
                        data, src = front.recvfrom(65536)
                        client = src
                    else:
                        data = back.recv(65536)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                hold(key.data, data)
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, n, direction, data = heapq.heappop(queue)
            if n < last_sent[direction]:
                stats["reordered"] += 1
            last_sent[direction] = max(last_sent[direction], n)
            try:
                if direction == "up":
                    back.send(data)
                elif client is not None:
                    front.sendto(data, client)
                stats[direction] += 1
            except (BlockingIOError, ConnectionRefusedError):
                stats["dropped_" + direction] += 1
    with open(a.stats, "w") as f:
        json.dump(stats, f)


if __name__ == "__main__":
    main()
