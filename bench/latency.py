"""Command answer latency: sequential pings, timed from produce to the `worker.pong`
(and to the `command.accepted` that precedes it) arriving at a client."""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.harness import Harness
from bench.stats import summary


def ping_series(h: Harness, count: int, *, pause: float = 0.05,
                stop: threading.Event | None = None, timeout: float = 30.0,
                warmup: int = 3) -> dict[str, Any]:
    """`count` sequential pings after `warmup` uncounted ones. The pong's Kafka timestamp
    (set when the worker produced it) splits each latency into the way there (command
    delivery + handling) and the way back (event delivery to the client)."""
    pong_ms: list[float] = []
    there_ms: list[float] = []
    back_ms: list[float] = []
    lost = 0
    for i in range(count + warmup):
        if stop is not None and stop.is_set():
            break
        command_id, sent, mark = h.commander.send("ping")
        sent_wall = time.time() - (time.monotonic() - sent)
        pong = h.watcher.wait_for(
            lambda e, cid=command_id: e.type == "worker.pong" and e.command_id == cid,
            timeout, after=mark)
        if i < warmup:
            continue
        if pong is None:
            lost += 1
            continue
        pong_ms.append((pong.mono - sent) * 1000)
        there_ms.append((pong.produced - sent_wall) * 1000)
        back_ms.append((pong.wall - pong.produced) * 1000)
        time.sleep(pause)
    return {"pings": len(pong_ms), "lost": lost, "pong_ms": summary(pong_ms, 1),
            "command_to_pong_produced_ms": summary(there_ms, 1),
            "pong_produced_to_client_ms": summary(back_ms, 1)}


class BackgroundPinger:
    """Pings in a thread until stopped (or `limit` pings), for latency under load."""

    def __init__(self, h: Harness, limit: int, pause: float = 0.2) -> None:
        self._stop = threading.Event()
        self.result: dict[str, Any] = {}
        self._thread = threading.Thread(
            target=lambda: self.result.update(ping_series(h, limit, pause=pause,
                                                          stop=self._stop)),
            name="bench-pinger", daemon=True)

    def __enter__(self) -> BackgroundPinger:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
