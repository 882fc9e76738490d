"""Poison batches, a poisoned event log, a bounded shutdown and retryable refusals, with
real worker processes, a real broker and real Spark/Delta work."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
from confluent_kafka import TopicPartition

from contracts.events import (
    BatchRecord,
    BatchStatus,
    Event,
    EventType,
    TablePointer,
    make_event,
)
from contracts.kafka_clients import make_consumer, make_producer
from tests.e2e.conftest import WorkerProcess, seed_history, send_full_report

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# A full_report over this much history runs for many seconds in a fresh worker (most of
# it planning on a cold JVM), so a test can act on it while it is `running`; a step that
# still misses the batch running is retried with a new batch id instead of failing.
RECORDS = 20_000
TRIALS = 3
TERMINAL = (EventType.BATCH_COMPLETED, EventType.BATCH_FAILED, EventType.BATCH_CANCELLED)


# ---- helpers -----------------------------------------------------------------------------

def seed(worker: WorkerProcess, records: int = RECORDS) -> None:
    seed_history(worker, records, days=7, seed=7)


full_report = send_full_report


def status_of(worker: WorkerProcess, batch_id: str) -> dict[str, Any]:
    """The batch as the registry fold of the event log tells it (what `pipeline batch
    status` shows a user); `{"status": None}` if the log knows no such batch."""
    _code, out = worker.cli_json("batch", "status", batch_id)
    if out.get("ok") is False and out.get("error", {}).get("code") == "BATCH_NOT_FOUND":
        return {"status": None}
    return out


def batch_events(worker: WorkerProcess, batch_id: str, *types: EventType) -> list[Event]:
    return [e for e in worker.events()
            if e.data.get("batch_id") == batch_id and (not types or e.type in types)]


def wait_running(worker: WorkerProcess, batch_id: str, attempts: int,
                 timeout: float = 300) -> Event:
    event = worker.wait_for(lambda e: e.type is EventType.BATCH_RUNNING
                            and e.data.get("batch_id") == batch_id
                            and e.data.get("attempts") == attempts, timeout)
    assert event is not None, f"{batch_id} never ran (attempt {attempts}):\n{worker.log_tail()}"
    return event


def terminal_event(worker: WorkerProcess, batch_id: str, timeout: float = 600) -> Event:
    event = worker.wait_for(lambda e: e.type in TERMINAL and e.data.get("batch_id") == batch_id,
                            timeout)
    assert event is not None, f"{batch_id} did not end:\n{worker.log_tail()}"
    return event


def answer_after(worker: WorkerProcess, command_id: str, after: int,
                 timeout: float = 60) -> Event:
    """The first answer to `command_id` among the events past the first `after`."""
    event = worker.wait_for(lambda e: e.command_id == command_id and e.type in (
        EventType.COMMAND_ACCEPTED, EventType.COMMAND_REJECTED), timeout, after=after)
    assert event is not None, f"no new answer to {command_id}:\n{worker.log_tail()}"
    return event


def command(command_type: str, command_id: str,
            payload: dict[str, Any] | None = None) -> tuple[bytes, bytes]:
    return command_id.encode(), orjson.dumps({
        "schema_version": 1, "command_id": command_id, "type": command_type,
        "issued_at": "2025-01-15T14:32:07Z", "payload": payload or {},
    })


def send_burst(worker: WorkerProcess, commands: list[tuple[bytes, bytes]]) -> None:
    """Several commands in one produce burst: the worker reads them back to back."""
    producer = make_producer(worker.settings, **{"linger.ms": 50})
    for key, value in commands:
        producer.produce(worker.settings.commands_topic, key=key, value=value)
    assert producer.flush(30) == 0


def kill_while_running(worker: WorkerProcess, batch_id: str, attempts: int) -> bool:
    """kill -9 the worker as soon as `batch_id` runs its attempt number `attempts`. True if
    the log still says running (the kill interrupted it); False if it finished first."""
    wait_running(worker, batch_id, attempts)
    worker.kill9()
    record = status_of(worker, batch_id)
    if record["status"] == "running":
        assert record["attempts"] == attempts, record
        return True
    return False


# ---- 1. poison batch ---------------------------------------------------------------------

def test_a_batch_that_crashed_its_worker_on_every_attempt_ends_failed(
        new_worker: Callable[[], WorkerProcess]) -> None:
    """A batch whose worker dies under it on each of its PIPELINE_BATCH_MAX_ATTEMPTS
    attempts is failed with ATTEMPTS_EXHAUSTED by the next worker instead of being run
    (and crashing that worker) once more; the worker goes on serving."""
    worker = new_worker()
    worker.env["PIPELINE_BATCH_MAX_ATTEMPTS"] = "2"
    worker.env["PIPELINE_TAKEOVER_SECONDS"] = "6"  # a killed worker's partition frees sooner
    worker.start()
    seed(worker)

    poisoned = None
    for trial in range(TRIALS):
        batch_id = f"poison-{trial}"
        full_report(worker, batch_id)
        interrupted = kill_while_running(worker, batch_id, attempts=1)
        worker.start()  # the second worker re-runs it: attempt 2
        if interrupted and kill_while_running(worker, batch_id, attempts=2):
            poisoned = batch_id
            break
        if worker.proc is not None and worker.proc.poll() is not None:
            worker.start()  # killed after the batch had finished: next trial on a live worker
    assert poisoned is not None, f"no batch was caught running twice in {TRIALS} trials"

    started = worker.start()  # the third worker must not run it a third time
    assert started is not None
    ended = terminal_event(worker, poisoned, timeout=120)
    assert ended.type is EventType.BATCH_FAILED, (ended.type, ended.data)
    assert ended.worker_id == started.worker_id
    assert ended.data["error"]["code"] == "ATTEMPTS_EXHAUSTED", ended.data
    assert ended.data["attempts"] == 2

    code, out = worker.cli_json("ping", "--timeout", "60")  # the worker is alive and serving
    assert code == 0 and out["worker_id"] == started.worker_id, out
    runs = batch_events(worker, poisoned, EventType.BATCH_RUNNING)
    assert [e.data["attempts"] for e in runs] == [1, 2], "the batch ran a third time"
    record = status_of(worker, poisoned)
    assert record["status"] == "failed" and record["error"]["code"] == "ATTEMPTS_EXHAUSTED"


# ---- 2. unreadable / forged event log ----------------------------------------------------

def _forged_record(batch_id: str, status: BatchStatus) -> BatchRecord:
    now = datetime.now(UTC)
    return BatchRecord(
        batch_id=batch_id, status=status, analysis_type="full_report",
        analyses=["revenue_by_category"],
        source={"kind": "delta", "start_date": "2020-01-01", "end_date": str(date.today())},
        submitted_at=now, started_at=now, finished_at=now, attempts=1, worker_id="forger",
    )


def test_a_poisoned_event_log_is_skipped_and_counted_never_trusted(
        new_worker: Callable[[], WorkerProcess]) -> None:
    """Records on the events topic that are not JSON, not an Event, or a `batch.completed`
    that cannot be true (no result pointers; a running record) are skipped and counted in
    `worker.started`; neither the worker nor the CLI takes a forged batch for completed.
    Then well-formed forgeries without the workers' MAC (README.md#trusted-events) are
    ignored by the next restart: a real batch keeps its real result pointers."""
    worker = new_worker()
    topic = worker.settings.events_topic
    no_results = make_event(EventType.BATCH_COMPLETED, "batch/forged", "forger",
                            _forged_record("forged", BatchStatus.COMPLETED))
    says_running = make_event(EventType.BATCH_COMPLETED, "batch/forged-running", "forger",
                              _forged_record("forged-running", BatchStatus.RUNNING))
    bad: list[tuple[bytes, bytes]] = [
        (b"batch/forged", b"\x00\xff\xfe not json at all"),
        (b"batch/forged", b'{"type": "batch.completed", "subject": '),  # truncated JSON
        (b"batch/forged", b"batch.completed forged"),
        (b"batch/forged", orjson.dumps({"hello": "world", "data": {"status": "completed"}})),
        (no_results.key, no_results.encode()),
        (says_running.key, says_running.encode()),
    ]
    producer = make_producer(worker.settings)
    for key, value in bad:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    started = worker.start()
    assert started is not None
    stats = started.data.get("registry")
    assert stats is not None, f"worker.started does not report the rebuild: {started.data}"
    assert stats["skipped_events"] == len(bad), stats
    assert stats["untrusted_events"] == len(bad), stats  # none carries a worker's MAC
    assert stats["batches"] == 0, stats

    for batch_id in ("forged", "forged-running"):
        record = status_of(worker, batch_id)
        assert record["status"] != "completed", record
    code, listed = worker.cli_json("batch", "list")
    assert code == 0 and not [b for b in listed["batches"] if b["status"] == "completed"]

    # The worker does not believe the forged id is taken either: the id is free to run.
    cid = worker.send("run_batch", {
        "batch_id": "forged", "analysis_type": "revenue_by_category",
        "source": {"kind": "delta", "start_date": "2020-01-01", "end_date": str(date.today())},
    })
    answer = worker.answer_to(cid)
    assert answer.type is EventType.COMMAND_ACCEPTED, answer.data
    genuine = terminal_event(worker, "forged")
    before = status_of(worker, "forged")
    assert before["status"] == genuine.data["status"], before

    # Well-formed forgeries that only the workers' MAC tells apart: a completed record
    # whose results point at another path (no MAC, a made-up MAC), and a genuine event
    # of the worker copied under another key (its MAC covers the key).
    elsewhere = _forged_record("forged", BatchStatus.COMPLETED).model_copy(update={
        "raw": TablePointer(path="/tmp/elsewhere/raw", version=0, row_count=1),
        "aggregated": {"revenue_by_category": TablePointer(
            path="/tmp/elsewhere/agg", version=0, row_count=1)}})
    forged = make_event(EventType.BATCH_COMPLETED, "batch/forged", "forger", elsewhere)
    copied = _genuine_record(worker, answer.event_id)
    producer.produce(topic, key=forged.key, value=forged.encode())
    producer.produce(topic, key=forged.key, value=forged.encode(),
                     headers=[("pipeline-mac", b"\x00" * 32)])
    producer.produce(topic, key=b"batch/forged", value=copied.value(),
                     headers=copied.headers())
    assert producer.flush(30) == 0
    worker.discard()
    restarted = worker.start()
    assert restarted is not None
    stats = restarted.data["registry"]
    assert stats["untrusted_events"] >= 3, stats
    after = status_of(worker, "forged")
    assert after["status"] == before["status"], after
    assert after.get("raw") == before.get("raw"), after
    assert "/tmp/elsewhere" not in orjson.dumps(after).decode(), after


def _genuine_record(worker: WorkerProcess, event_id: str) -> Any:
    """The Kafka record (value and headers) of one of the worker's own events."""
    consumer = make_consumer(worker.settings)
    try:
        consumer.assign([TopicPartition(worker.settings.events_topic, 0, 0)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error() or msg.value() is None:
                continue
            if f'"event_id":"{event_id}"'.encode() in msg.value():
                return msg  # a substring test: the poisoned records are not all JSON
        raise AssertionError(f"event {event_id} not found")
    finally:
        consumer.close()


# ---- 3. bounded shutdown -----------------------------------------------------------------

def test_shutdown_with_a_short_drain_exits_promptly_and_requeues_the_batch(
        new_worker: Callable[[], WorkerProcess]) -> None:
    """`shutdown` with drain_timeout_seconds=1 stops a worker busy with a long batch well
    within the bound (exit 0, `worker.stopped` published); the batch is left pending with
    the interrupted attempt not counted, and the next worker completes it on attempt 1."""
    worker = new_worker()
    started = worker.start()
    assert started is not None
    seed(worker)

    requeued = None
    elapsed = 0.0
    for trial in range(TRIALS):
        batch_id = f"drain-{trial}"
        full_report(worker, batch_id)
        wait_running(worker, batch_id, attempts=1)
        sent = time.monotonic()
        worker.send("shutdown", {"drain_timeout_seconds": 1})
        assert worker.proc is not None
        exit_code = worker.proc.wait(120)
        elapsed = time.monotonic() - sent
        print(f"shutdown with drain 1s took {elapsed:.1f}s (trial {trial})")
        assert exit_code == 0, worker.log_tail()
        # README: the drain timeout plus about 30 s (cancelled jobs, last events, Spark
        # stop); the rest is slack for a busy machine. Measured: about 12 s.
        assert elapsed < 60, f"shutdown took {elapsed:.1f}s:\n{worker.log_tail()}"
        stopped = [e for e in worker.events() if e.type is EventType.WORKER_STOPPED
                   and e.worker_id == started.worker_id]
        assert stopped, f"no worker.stopped:\n{worker.log_tail()}"
        record = status_of(worker, batch_id)
        if record["status"] != "completed":  # completed: it beat the drain; try again
            requeued = batch_id
            assert record["status"] == "pending", record
            assert record["attempts"] == 0, record  # a shutdown is not the batch's fault
            break
        started = worker.start()
        assert started is not None
    assert requeued is not None, f"no batch was still running at shutdown in {TRIALS} trials"

    worker.start()
    ended = terminal_event(worker, requeued)
    assert ended.type is EventType.BATCH_COMPLETED, (ended.type, ended.data)
    assert ended.data["attempts"] == 1, ended.data
    assert status_of(worker, requeued)["status"] == "completed"


# ---- 4. retryable refusals ---------------------------------------------------------------

def test_a_temporary_refusal_can_be_retried_with_the_same_command_id(
        new_worker: Callable[[], WorkerProcess]) -> None:
    """A start_stream refused while a stop is in flight says `retryable: true`, and the
    same command_id sent again later is executed (the stream starts); a final refusal
    (BATCH_NOT_FOUND) is replayed as a duplicate instead."""
    worker = new_worker()
    worker.start()

    rejected = None
    for _trial in range(TRIALS):
        start = worker.send("start_stream", {"starting_offsets": "earliest"})
        assert worker.answer_to(start).type is EventType.COMMAND_ACCEPTED
        assert worker.wait_for(lambda e, c=start: e.type is EventType.STREAM_STARTED
                               and e.command_id == c, 180) is not None, worker.log_tail()
        stop, retry = f"stop-{uuid.uuid4().hex[:8]}", f"start-{uuid.uuid4().hex[:8]}"
        send_burst(worker, [command("stop_stream", stop),
                            command("start_stream", retry, {"starting_offsets": "earliest"})])
        assert worker.answer_to(stop).type is EventType.COMMAND_ACCEPTED
        answer = worker.answer_to(retry)
        if answer.type is EventType.COMMAND_REJECTED:
            rejected = (stop, retry, answer)
            break
        # The stop was over before the start was read: the start ran; stop it and retry.
        assert worker.wait_for(lambda e, c=retry: e.type is EventType.STREAM_STARTED
                               and e.command_id == c, 180) is not None, worker.log_tail()
        halt = worker.send("stop_stream")
        assert worker.wait_for(lambda e, c=halt: e.type is EventType.STREAM_STOPPED
                               and e.command_id == c, 180) is not None, worker.log_tail()
    if rejected is None:
        pytest.skip(f"the stop never outlasted the next command in {TRIALS} bursts")
    stop, retry, answer = rejected
    assert answer.data["code"] == "STREAM_ALREADY_RUNNING", answer.data
    assert answer.data.get("retryable") is True, answer.data

    assert worker.wait_for(lambda e: e.type is EventType.STREAM_STOPPED
                           and e.command_id == stop, 180) is not None, worker.log_tail()
    seen = worker.event_count()
    worker.send("start_stream", {"starting_offsets": "earliest"}, command_id=retry)
    again = answer_after(worker, retry, seen)
    assert again.type is EventType.COMMAND_ACCEPTED, again.data
    assert not again.data.get("duplicate"), again.data
    assert worker.wait_for(lambda e: e.type is EventType.STREAM_STARTED
                           and e.command_id == retry, 180) is not None, worker.log_tail()
    code, status = worker.cli_json("stream", "status")
    assert code == 0 and status["status"] == "running", status

    # Now that it ran, the same id again is answered from the log, not executed twice.
    seen = worker.event_count()
    worker.send("start_stream", {"starting_offsets": "earliest"}, command_id=retry)
    dup = answer_after(worker, retry, seen)
    assert dup.type is EventType.COMMAND_ACCEPTED and dup.data.get("duplicate") is True

    # A final refusal stays the command's outcome: a retry gets it again, as a duplicate.
    cancel = worker.send("cancel_batch", {"batch_id": "no-such-batch"})
    first = worker.answer_to(cancel)
    assert first.type is EventType.COMMAND_REJECTED
    assert first.data["code"] == "BATCH_NOT_FOUND" and not first.data.get("retryable")
    seen = worker.event_count()
    worker.send("cancel_batch", {"batch_id": "no-such-batch"}, command_id=cancel)
    replay = answer_after(worker, cancel, seen)
    assert replay.type is EventType.COMMAND_REJECTED, replay.data
    assert replay.data["code"] == "BATCH_NOT_FOUND" and replay.data.get("duplicate") is True
