"""Real worker processes for end-to-end tests, each on its own topics and data dir."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.events import Event, EventType
from contracts.kafka_clients import ensure_topics, make_producer, read_events
from contracts.settings import Settings
from devkit.processes import terminate
from tests.conftest import isolated_env, settings_from

PIPELINE = str(Path(sys.executable).with_name("pipeline"))


@dataclass
class WorkerProcess:
    env: dict[str, str]
    settings: Settings
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)

    def start(self, timeout: float = 180.0, *, wait_ready: bool = True) -> Event | None:
        since = self.event_count()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([PIPELINE, "worker", *self.extra_args], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        if not wait_ready:
            return None
        started = self.wait_for(lambda e: e.type is EventType.WORKER_STARTED, timeout,
                                after=since)
        assert started is not None, f"worker did not start:\n{self.log_tail()}"
        return started

    def stop(self, timeout: float = 120.0) -> int | None:
        return terminate(self.proc, timeout)

    def discard(self) -> None:
        """End a worker whose shutdown is not under test: SIGKILL, no drain. (A graceful
        stop would first apply every queued fraud/gold recompute: 20-40 s per worker on
        two cores, for nothing the test looks at. The JVM exits with its Python parent.)"""
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # ---- talking to it ------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PIPELINE, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def cli_json(self, *args: str, timeout: float = 300.0) -> tuple[int, dict[str, Any]]:
        result = self.cli(*args, "--json", timeout=timeout)
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 1, f"expected one JSON line, got {result.stdout!r} {result.stderr}"
        return result.returncode, orjson.loads(lines[0])

    def cli_popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([PIPELINE, *args], env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def send_raw(self, value: bytes | None, key: bytes | None = None) -> None:
        producer = make_producer(self.settings)
        producer.produce(self.settings.commands_topic, key=key, value=value)
        assert producer.flush(30) == 0

    def send(self, command_type: str, payload: dict[str, Any] | None = None,
             command_id: str | None = None) -> str:
        command_id = command_id or str(uuid.uuid4())
        self.send_raw(orjson.dumps({
            "schema_version": 1, "command_id": command_id, "type": command_type,
            "issued_at": "2025-01-15T14:32:07Z", "payload": payload or {},
        }), key=command_id.encode())
        return command_id

    def events(self) -> list[Event]:
        return list(read_events(self.settings, from_beginning=True))

    def event_count(self) -> int:
        return len(self.events())

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 60.0,
                 after: int = 0) -> Event | None:
        """The first event (past the first `after` events) matching, polling the log."""
        deadline = time.monotonic() + timeout
        events = read_events(self.settings, follow=True,
                             should_stop=lambda: time.monotonic() > deadline)
        for seen, event in enumerate(events, start=1):
            if seen > after and predicate(event):
                return event
        return None

    def answer_to(self, command_id: str, timeout: float = 60.0) -> Event:
        event = self.wait_for(lambda e: e.command_id == command_id and e.type in (
            EventType.COMMAND_ACCEPTED, EventType.COMMAND_REJECTED), timeout)
        assert event is not None, f"no answer to {command_id}:\n{self.log_tail()}"
        return event


def seed_history(worker: WorkerProcess, records: int, *, days: int, seed: int) -> None:
    """Delta history through `pipeline seed` (no worker needed)."""
    result = worker.cli("seed", "--records", str(records), "--days", str(days), "--seed",
                        str(seed), "--json")
    assert result.returncode == 0, result.stderr


def send_full_report(worker: WorkerProcess, batch_id: str) -> str:
    """A full_report over all the history there is; returns the command id."""
    return worker.send("run_batch", {
        "batch_id": batch_id, "analysis_type": "full_report",
        "source": {"kind": "delta", "start_date": "2020-01-01",
                   "end_date": str(date.today())},
    })


def twin(worker: WorkerProcess, log_path: Path) -> WorkerProcess:
    """A second worker process on the same topics, group and data dir."""
    return WorkerProcess(env=dict(worker.env), settings=worker.settings, log_path=log_path)


def make_worker(kafka_bootstrap: str, tmp: Path) -> WorkerProcess:
    suffix = uuid.uuid4().hex[:10]
    env = {**os.environ, **isolated_env(kafka_bootstrap, tmp / "data", suffix)}
    env.pop("PIPELINE_WORKER_ID", None)
    settings = settings_from(isolated_env(kafka_bootstrap, tmp / "data", suffix))
    ensure_topics(settings)
    return WorkerProcess(env=env, settings=settings, log_path=tmp / "worker.log")


@pytest.fixture
def new_worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[[], WorkerProcess]]:
    """A factory of not-yet-started workers; all are stopped at the end."""
    made: list[WorkerProcess] = []

    def factory() -> WorkerProcess:
        worker = make_worker(kafka_bootstrap, tmp_path / f"w{len(made)}")
        (tmp_path / f"w{len(made)}").mkdir(parents=True, exist_ok=True)
        made.append(worker)
        return worker

    yield factory
    for worker in made:
        worker.discard()


@pytest.fixture(scope="module")
def running_worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[WorkerProcess]:
    """One worker shared by a module's tests."""
    tmp = tmp_path_factory.mktemp("worker")
    worker = make_worker(kafka_bootstrap, tmp)
    worker.start()
    yield worker
    worker.discard()
