"""Everything a measurement needs in one place: the isolated environment, the running
worker, the event watcher, the command sender and the memory sampler."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cluster import Isolated
from bench.config import BenchConfig
from bench.events import Commander, EventWatcher
from bench.memory import RssSampler
from bench.worker_proc import WorkerProcess
from contracts.settings import Settings
from worker.storage import StoragePaths


@dataclass
class Harness:
    config: BenchConfig
    iso: Isolated
    root: Path
    watcher: EventWatcher
    commander: Commander
    worker: WorkerProcess
    rss: RssSampler
    topics: dict[str, Any] = field(default_factory=dict)
    histories: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.commander.settings

    @property
    def env(self) -> dict[str, str]:
        return self.iso.process_env()

    @property
    def paths(self) -> StoragePaths:
        return StoragePaths(self.settings)

    def phase(self, name: str) -> None:
        self.rss.phase(name)

    # ---- stream control -------------------------------------------------------------

    def start_stream(self, topic: str, starting_offsets: str) -> tuple[float, float]:
        """(wall time the command was sent, seconds until stream.started)."""
        sent_wall = time.time()
        command_id, sent, mark = self.commander.request(
            "start_stream", {"topic": topic, "starting_offsets": starting_offsets})
        started = self.commander.wait(
            lambda e: e.type in ("stream.started", "stream.failed")
            and e.command_id == command_id, 180, mark, "stream.started")
        if started.type == "stream.failed":
            raise RuntimeError(f"stream failed to start: {started.data.get('error')}")
        return sent_wall, started.mono - sent

    def stop_stream(self, timeout: float = 180.0) -> None:
        command_id, _sent, mark = self.commander.request("stop_stream")
        self.commander.wait(lambda e: e.type == "stream.stopped" and e.command_id == command_id,
                            timeout, mark, "stream.stopped")

    # ---- batches --------------------------------------------------------------------

    def submit_batch(self, batch_id: str, analysis: str, source: dict[str, Any]
                     ) -> tuple[float, int]:
        """(monotonic send time, watcher mark) of a run_batch command."""
        _command_id, sent, mark = self.commander.request(
            "run_batch", {"batch_id": batch_id, "analysis_type": analysis, "source": source})
        return sent, mark

    def wait_batch(self, batch_id: str, after: int, timeout: float) -> Any:
        subject = f"batch/{batch_id}"
        event = self.commander.wait(
            lambda e: e.subject == subject
            and e.type in ("batch.completed", "batch.failed", "batch.cancelled"),
            timeout, after, f"batch {batch_id}")
        if event.type != "batch.completed":
            raise RuntimeError(f"batch {batch_id} {event.type}: {event.data.get('error')}")
        return event
