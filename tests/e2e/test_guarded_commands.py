"""Commands the worker must not trust, and commands that must not run twice.

One worker serves the module, and it is started late on purpose: first a `pipeline batch
run` goes unanswered and re-sends its command, then the worker comes up and finds the
copies queued. Hostile commands then each get `command.rejected` INVALID_REQUEST and
leave nothing on disk, inside or outside the data directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from contracts.events import Event, EventType
from contracts.kafka_clients import make_consumer
from contracts.registry import fold_events
from contracts.settings import Settings
from tests.e2e.conftest import WorkerProcess, make_worker

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ANSWERS = (EventType.COMMAND_ACCEPTED, EventType.COMMAND_REJECTED)
NO_HISTORY = ("--from-date", "2025-01-01", "--to-date", "2025-01-02")


@dataclass
class Guarded:
    worker: WorkerProcess
    tmp: Path                                    # holds the data dir (tmp / "data")
    timed_out: subprocess.CompletedProcess[str]  # the batch run sent while no worker ran


@pytest.fixture(scope="module")
def guarded(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Guarded]:
    tmp = tmp_path_factory.mktemp("guarded").resolve()
    worker = make_worker(kafka_bootstrap, tmp)
    # No worker yet: no answer comes, so the CLI re-sends the same command, then gives up.
    timed_out = worker.cli("batch", "run", "--analysis", "revenue_by_category", *NO_HISTORY,
                           "--timeout", "6", "--retries", "2", "--json", timeout=120)
    worker.start()
    yield Guarded(worker, tmp, timed_out)
    worker.discard()


def _answers(worker: WorkerProcess, ids: set[str], timeout: float = 120.0, count: int = 1
             ) -> dict[str, list[Event]]:
    """The answers to each of `ids`, in log order, once each has at least `count`."""
    found: dict[str, list[Event]] = {}

    def seen_all(event: Event) -> bool:
        if event.command_id in ids and event.type in ANSWERS:
            found.setdefault(event.command_id, []).append(event)
        return len(found) == len(ids) and all(len(a) >= count for a in found.values())

    assert worker.wait_for(seen_all, timeout) is not None, (
        f"no answer to {ids - set(found)}:\n{worker.log_tail()}")
    return found


def _commands_keyed(settings: Settings, key: str) -> list[bytes]:
    consumer = make_consumer(settings)
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(settings.commands_topic, 0, OFFSET_BEGINNING)])
        while (msg := consumer.poll(10)) is not None:
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    break
                continue
            if msg.key() == key.encode():
                values.append(msg.value())
    finally:
        consumer.close()
    return values


def _one_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"{result.stdout!r} {result.stderr}"
    out: dict[str, Any] = orjson.loads(lines[0])
    return out


# ---- a retried batch run never creates a second batch ----------------------------------


def test_an_unanswered_batch_run_is_re_sent_and_runs_once(guarded: Guarded) -> None:
    worker, result = guarded.worker, guarded.timed_out
    assert result.returncode == 3, result.stderr
    out = _one_json(result)
    assert out["ok"] is False and out["delivery"]["attempts"] == 3
    command_id = out["delivery"]["command_id"]
    assert out["error"]["command_id"] == command_id
    for attempt in (2, 3):
        assert f"re-sending command {command_id} (attempt {attempt}/3)" in result.stderr
    # The timeout says how to pick the command up again, with the batch id chosen up front.
    match = re.search(r"--command-id (\S+) --batch-id (\S+)", out["error"]["message"])
    assert match is not None and match.group(1) == command_id
    batch_id = match.group(2)

    # Three byte-identical copies went out, all naming the same batch.
    copies = _commands_keyed(worker.settings, command_id)
    assert len(copies) == 3 and len(set(copies)) == 1
    assert orjson.loads(copies[0])["payload"]["batch_id"] == batch_id

    # The late worker answers each copy: the first is executed, the others are replays.
    answers = _answers(worker, {command_id}, count=3)[command_id]
    assert [bool(a.data.get("duplicate")) for a in answers] == [False, True, True]
    assert {a.data["batch_id"] for a in answers} == {batch_id}

    # Picking it up again with --command-id replays the outcome; still one batch.
    again = worker.cli("batch", "run", "--analysis", "revenue_by_category", *NO_HISTORY,
                       "--command-id", command_id, "--batch-id", batch_id, "--json")
    assert again.returncode == 0, again.stderr
    out = _one_json(again)
    assert out["batch_id"] == batch_id and out["command_id"] == command_id
    assert out["delivery"] == {"command_id": command_id, "attempts": 1, "duplicate": True}
    assert "reusing command id" in again.stderr and "answered before" in again.stderr
    events = worker.events()
    pending = [e for e in events if e.type is EventType.BATCH_PENDING
               and e.data.get("batch_id") == batch_id]
    assert len(pending) == 1
    registry = fold_events(events)
    assert [b.batch_id for b in registry.batches.values() if b.command_id == command_id] == [
        batch_id]


# ---- hostile input is refused and leaves no trace --------------------------------------


def _hostile(settings: Settings, tmp: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """command_id -> (type, payload). The escapes aim at siblings of the data dir."""
    checkpoint = settings.data_dir.resolve() / "checkpoints" / "stream_transactions__x"
    escape_stream = "x/" + os.path.relpath(tmp / "escaped-stream", checkpoint)
    batch = {"analysis_type": "revenue_by_category"}
    kafka = {"kind": "kafka", "topic": settings.batch_topic}
    delta = {"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-01-02"}
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "stream-escape": ("start_stream", {"topic": escape_stream}),
        "stream-dotdot": ("start_stream", {"topic": ".."}),
        "stream-dot": ("start_stream", {"topic": "."}),
        "stream-list": ("start_stream",
                        {"topic": f"{settings.stream_topic},{settings.dlq_topic}"}),
        "stream-too-long": ("start_stream", {"topic": "t" * 250}),
        "stream-on-dlq": ("start_stream", {"topic": settings.dlq_topic}),
        "stream-on-events": ("start_stream", {"topic": settings.events_topic}),
        "stream-on-commands": ("start_stream", {"topic": settings.commands_topic}),
        "stream-on-internal": ("start_stream", {"topic": "__consumer_offsets"}),
        "batch-escape-topic": ("run_batch", {**batch, "source": {**kafka,
                                                                 "topic": escape_stream}}),
        "batch-on-dlq": ("run_batch", {**batch, "source": {**kafka,
                                                           "topic": settings.dlq_topic}}),
        "batch-on-events": ("run_batch", {**batch, "source": {
            **kafka, "topic": settings.events_topic}}),
        "batch-escape-id": ("run_batch", {**batch, "source": delta,
                                          "batch_id": "../../escaped-batch"}),
        "batch-offsets-of-another-topic": ("run_batch", {**batch, "source": {
            **kafka, "start_offset": {"elsewhere": {"0": 0}}}}),
        "batch-offset-overflow": ("run_batch", {**batch, "source": {
            **kafka, "start_offset": 1e300}}),
        "batch-offset-before-1970": ("run_batch", {**batch, "source": {
            **kafka, "start_offset": "1960-01-01T00:00:00Z"}}),
        "cancel-escape-id": ("cancel_batch", {"batch_id": "../escaped-batch"}),
    }
    return {f"{name}-{uuid.uuid4().hex[:6]}": case for name, case in cases.items()}


def test_hostile_commands_are_rejected_and_leave_no_trace(guarded: Guarded) -> None:
    worker, tmp = guarded.worker, guarded.tmp
    cases = _hostile(worker.settings, tmp)
    for command_id, (command_type, payload) in cases.items():
        worker.send(command_type, payload, command_id=command_id)
    answers = _answers(worker, set(cases))
    wrong = {cid: (a[0].type.value, a[0].data.get("code"), a[0].data.get("message"))
             for cid, a in answers.items()
             if a[0].type is not EventType.COMMAND_REJECTED
             or a[0].data.get("code") != "INVALID_REQUEST"}
    assert wrong == {}
    for cid in (c for c in cases if "-on-" in c):  # refused by the worker, with the reason
        assert "cannot be a stream or batch source" in answers[cid][0].data["message"], cid

    # Nothing outside the data directory, nothing for them inside it.
    assert not (tmp / "escaped-stream").exists()
    assert not (tmp / "escaped-batch").exists()
    assert {p.name for p in tmp.iterdir()} <= {"data", "worker.log"}
    data = worker.settings.data_dir
    checkpoints = data / "checkpoints"
    assert not checkpoints.exists() or not any(
        p.name.startswith("stream_transactions__") for p in checkpoints.iterdir())
    assert not any("escaped" in str(p) for p in data.rglob("*"))
    assert not any(e.type is EventType.STREAM_STARTED for e in worker.events())

    # ...and the worker is still there (an out-of-range offset used to raise out of the
    # decoder and end the command loop).
    code, out = worker.cli_json("ping", "--timeout", "60")
    assert code == 0 and out["health"]["spark_alive"], out


def test_the_cli_refuses_bad_topics_too(guarded: Guarded) -> None:
    worker = guarded.worker
    # A malformed name never leaves the CLI: the contract check fails first.
    code, out = worker.cli_json("stream", "start", "--topic", "x/../../evil")
    assert code == 1 and out["error"]["code"] == "INVALID_REQUEST"
    assert "command_id" not in out and "not a Kafka topic name" in out["error"]["message"]
    # A well-formed name that is one of the worker's own topics: refused by the worker.
    code, out = worker.cli_json("stream", "start", "--topic", worker.settings.dlq_topic)
    assert code == 1 and out["error"]["code"] == "INVALID_REQUEST", out
    assert "dead-letter" in out["error"]["message"]
    assert out["delivery"]["attempts"] == 1
