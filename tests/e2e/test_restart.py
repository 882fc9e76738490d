"""State lives in Kafka, not in the worker's memory: crashes, restarts, duplicate
commands, graceful drain and hot-standby takeover, with real worker processes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import orjson
import pytest

from contracts.events import EventType
from tests.e2e.conftest import WorkerProcess, seed_history, send_full_report, twin
from tests.e2e.delta_reads import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


def seed(worker: WorkerProcess, records: int = 10000) -> None:
    seed_history(worker, records, days=20, seed=4)


full_report = send_full_report


def final_status(worker: WorkerProcess, batch_id: str, timeout: float = 600) -> dict:
    event = worker.wait_for(
        lambda e: e.type in (EventType.BATCH_COMPLETED, EventType.BATCH_FAILED,
                             EventType.BATCH_CANCELLED) and e.data.get("batch_id") == batch_id,
        timeout)
    assert event is not None, worker.log_tail()
    return event.data


def test_kill_9_during_a_batch_then_restart_completes_it(
        new_worker: Callable[[], WorkerProcess]) -> None:
    worker = new_worker()
    worker.start()
    seed(worker)
    full_report(worker, "crash-1")
    running = worker.wait_for(lambda e: e.type is EventType.BATCH_RUNNING
                              and e.data["batch_id"] == "crash-1", 120)
    assert running is not None
    worker.kill9()
    assert orjson.loads(worker.cli("batch", "status", "crash-1", "--json").stdout)["status"] \
        == "running"

    worker.start()
    record = final_status(worker, "crash-1")
    assert record["status"] == "completed"
    assert record["attempts"] == 2
    code, listed = worker.cli_json("batch", "list")
    assert code == 0 and [b["batch_id"] for b in listed["batches"]] == ["crash-1"]
    # Nothing stays RUNNING after a restart.
    assert listed["batches"][0]["status"] == "completed"


def test_duplicate_commands_execute_once_also_across_restarts(
        new_worker: Callable[[], WorkerProcess]) -> None:
    worker = new_worker()
    worker.start()
    seed(worker, 5000)
    payload = {"batch_id": "dup-1", "analysis_type": "revenue_by_category",
               "source": {"kind": "delta", "start_date": "2020-01-01",
                          "end_date": str(date.today())}}
    for _ in range(3):
        worker.send("run_batch", payload, command_id="same-command")
    final_status(worker, "dup-1")
    assert worker.stop() == 0
    worker.start()
    worker.send("run_batch", payload, command_id="same-command")
    worker.wait_for(lambda e: e.command_id == "same-command"
                    and e.type is EventType.COMMAND_ACCEPTED
                    and e.worker_id != worker.events()[0].worker_id, 60)
    answers = [e for e in worker.events() if e.command_id == "same-command"
               and e.type is EventType.COMMAND_ACCEPTED]
    assert len(answers) == 4
    assert [bool(a.data.get("duplicate")) for a in answers] == [False, True, True, True]
    running = [e for e in worker.events() if e.type is EventType.BATCH_RUNNING]
    assert len(running) == 1  # executed once

    # A new command reusing the batch id is a different request: rejected.
    worker.send("run_batch", payload, command_id="another-command")
    assert worker.answer_to("another-command").data["code"] == "BATCH_ALREADY_EXISTS"


def test_graceful_shutdown_under_load_requeues_unfinished_batches(
        new_worker: Callable[[], WorkerProcess]) -> None:
    worker = new_worker()
    worker.start()
    seed(worker)
    worker.cli_json("stream", "start", "--from", "earliest")
    for i in range(4):
        full_report(worker, f"drain-{i}")
    worker.wait_for(lambda e: e.type is EventType.BATCH_RUNNING, 120)
    code, out = worker.cli_json("stop", "--wait", "--drain-timeout", "0", "--timeout", "300")
    assert code == 0 and out["stopped"] is True, out
    assert worker.proc is not None and worker.proc.wait(60) == 0
    types = [e.type for e in worker.events()]
    assert types.index(EventType.WORKER_STOPPING) < types.index(EventType.WORKER_STOPPED)
    code, listed = worker.cli_json("batch", "list")
    statuses = {b["batch_id"]: b["status"] for b in listed["batches"]}
    assert "running" not in statuses.values()
    assert "cancelled" not in statuses.values()  # a shutdown is not a user's cancel

    worker.start()  # the unfinished ones run again, and the stream resumes
    for i in range(4):
        assert final_status(worker, f"drain-{i}")["status"] == "completed"
    code, status = worker.cli_json("stream", "status")
    assert status["status"] == "running"


def test_hot_standby_takes_over_when_the_active_worker_dies(
        new_worker: Callable[[], WorkerProcess]) -> None:
    active = new_worker()
    active.start()
    standby = twin(active, active.log_path.with_name("standby.log"))
    standby.start(wait_ready=False)
    beat = active.wait_for(lambda e: e.type is EventType.WORKER_HEARTBEAT
                           and e.data.get("status") == "standby", 180)
    assert beat is not None, standby.log_tail()
    code, out = active.cli_json("ping", "--timeout", "30")
    assert code == 0 and out["worker_id"] != beat.worker_id  # the active one answers

    seed(active, 5000)
    full_report(active, "takeover-1")
    active.wait_for(lambda e: e.type is EventType.BATCH_RUNNING, 120)
    active.kill9()
    taken = standby.wait_for(lambda e: e.type is EventType.WORKER_STARTED
                             and e.worker_id == beat.worker_id, 120)
    assert taken is not None, standby.log_tail()
    assert final_status(standby, "takeover-1")["status"] == "completed"
    code, out = standby.cli_json("ping", "--timeout", "30")
    assert code == 0 and out["worker_id"] == beat.worker_id
    wait_until(lambda: standby.stop() == 0, 120, "the standby to stop")
