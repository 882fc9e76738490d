"""The worker as a real process: it answers, rejects bad input precisely, keeps running,
and shuts down cleanly."""

from __future__ import annotations

import orjson
import pytest

from contracts.events import Event, EventType
from tests.e2e.conftest import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def test_ping_answers_with_health(running_worker: WorkerProcess) -> None:
    code, out = running_worker.cli_json("ping", "--timeout", "60")
    assert code == 0, out
    assert out["ok"] is True
    health = out["health"]
    assert health["spark_alive"] is True
    assert health["stream"]["state"] == "stopped"
    assert health["uptime_seconds"] > 0
    assert set(health["batches"]) >= {"pending", "running"}


def _envelope(**overrides: object) -> bytes:
    base: dict[str, object] = {"schema_version": 1, "command_id": "x", "type": "ping",
                               "issued_at": "2025-01-15T14:32:07Z", "payload": {}}
    base.update(overrides)
    return orjson.dumps({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(
    ("name", "raw", "code"),
    [
        ("garbage", b"\x00\x01 definitely not json", "INVALID_REQUEST"),
        ("array", b"[1,2,3]", "INVALID_REQUEST"),
        ("wrong-types", _envelope(command_id="wrong-types", payload="nope"), "INVALID_REQUEST"),
        ("unknown", _envelope(command_id="unknown", type="launch_rockets"), "UNKNOWN_COMMAND"),
        ("version", _envelope(command_id="version", schema_version=99),
         "UNSUPPORTED_SCHEMA_VERSION"),
        ("oversized", _envelope(command_id="oversized", payload={"pad": "x" * 200_000}),
         "INVALID_REQUEST"),
        ("bad-batch", _envelope(command_id="bad-batch", type="run_batch",
                                payload={"analysis_type": "astrology",
                                         "source": {"kind": "delta", "start_date": "2025-01-02",
                                                    "end_date": "2025-01-01"}}),
         "INVALID_REQUEST"),
    ],
)
def test_bad_commands_are_rejected_with_a_code(running_worker: WorkerProcess, name: str,
                                               raw: bytes, code: str) -> None:
    before = running_worker.event_count()
    running_worker.send_raw(raw)
    rejected = running_worker.wait_for(
        lambda e: e.type is EventType.COMMAND_REJECTED and e.data.get("code") == code,
        timeout=60, after=before)
    assert rejected is not None, running_worker.log_tail()
    assert isinstance(rejected.data["offset"], int)
    if name in ("garbage", "array"):
        assert rejected.command_id is None
    else:
        assert rejected.command_id == name
    # ...and the worker keeps answering.
    code_, out = running_worker.cli_json("ping", "--timeout", "60")
    assert code_ == 0 and out["health"]["spark_alive"], out


def test_every_command_gets_exactly_one_answer(running_worker: WorkerProcess) -> None:
    ids = [running_worker.send("ping") for _ in range(5)]
    last = running_worker.answer_to(ids[-1])
    assert last.type is EventType.COMMAND_ACCEPTED
    answers = [e for e in running_worker.events() if e.command_id in ids
               and e.type in (EventType.COMMAND_ACCEPTED, EventType.COMMAND_REJECTED)]
    assert sorted(e.command_id for e in answers) == sorted(ids)


def test_duplicate_command_id_is_executed_once(running_worker: WorkerProcess) -> None:
    for _ in range(3):
        running_worker.send("ping", command_id="same-ping-id")
    answers: list[Event] = []

    def third_answer(event: Event) -> bool:
        if event.command_id == "same-ping-id" and event.type is EventType.COMMAND_ACCEPTED:
            answers.append(event)
        return len(answers) == 3

    assert running_worker.wait_for(third_answer, timeout=60) is not None
    pongs = [e for e in running_worker.events()
             if e.command_id == "same-ping-id" and e.type is EventType.WORKER_PONG]
    assert len(pongs) == 1  # executed once
    assert [bool(a.data.get("duplicate")) for a in answers] == [False, True, True]


def test_stream_stop_when_not_running_is_rejected(running_worker: WorkerProcess) -> None:
    code, out = running_worker.cli_json("stream", "stop")
    assert code == 1
    assert out["error"]["code"] == "STREAM_NOT_RUNNING"


def test_heartbeats_are_published(running_worker: WorkerProcess) -> None:
    beat = running_worker.wait_for(lambda e: e.type is EventType.WORKER_HEARTBEAT, timeout=30)
    assert beat is not None and beat.data["spark_alive"] is True


def test_stop_command_shuts_down_cleanly(running_worker: WorkerProcess) -> None:
    code, out = running_worker.cli_json("stop", "--wait", "--timeout", "120")
    assert code == 0, out
    assert out["stopped"] is True
    assert running_worker.proc is not None
    assert running_worker.proc.wait(60) == 0
    types = [e.type for e in running_worker.events()]
    assert EventType.WORKER_STOPPING in types and EventType.WORKER_STOPPED in types


def test_sigterm_shuts_down_cleanly(new_worker) -> None:
    worker = new_worker()
    worker.start()
    assert worker.stop() == 0
    assert worker.events()[-1].type is EventType.WORKER_STOPPED
