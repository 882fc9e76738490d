"""A real `pipeline worker` process, as users run it, with its log kept for profiling."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.events import EventWatcher
from devkit.processes import terminate

PIPELINE = str(Path(sys.executable).with_name("pipeline"))


class WorkerFailed(RuntimeError):
    pass


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, watcher: EventWatcher, timeout: float = 240.0,
              on_spawn: Callable[[int], None] | None = None) -> float:
        """Spawn the worker; seconds from spawn to its `worker.started` event."""
        mark = watcher.mark()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            spawned = time.monotonic()
            # DEBUG: the stream logs each micro-batch's step timings, which we profile.
            self.proc = subprocess.Popen([PIPELINE, "worker", "--log-level", "DEBUG"],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)
        proc = self.proc
        if on_spawn is not None:
            on_spawn(proc.pid)
        deadline = spawned + timeout
        while True:
            started = watcher.wait_for(lambda e: e.type == "worker.started", 1.0, after=mark)
            if started is not None:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise WorkerFailed(f"worker did not start within {timeout:g}s "
                                   f"(exit code {proc.poll()}):\n{self.log_tail()}")
        return started.mono - spawned

    def stop(self, timeout: float = 120.0) -> int | None:
        return terminate(self.proc, timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_offset(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_text(self, start: int = 0, end: int | None = None) -> str:
        with self.log_path.open("rb") as handle:
            handle.seek(start)
            data = handle.read() if end is None else handle.read(max(0, end - start))
        return data.decode("utf-8", "replace")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_text().splitlines()[-lines:])
