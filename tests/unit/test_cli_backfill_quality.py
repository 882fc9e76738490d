"""`pipeline backfill ...` and `pipeline quality ...` without a worker: a scripted client
stands in for Kafka, and `quality status` reads a Delta table written here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from typer.testing import CliRunner

from contracts.commands import BATCH_ID_PATTERN, new_command
from contracts.events import (
    BACKFILL_EVENT_FOR_STATUS,
    BackfillRecord,
    BatchStatus,
    Event,
    EventType,
    QualityAlertData,
    backfill_subject,
    command_subject,
    make_event,
    quality_subject,
)
from contracts.registry import Registry, fold_events
from contracts.tables import QUALITY_METRICS
from producers import cli, cli_backfill, cli_quality
from producers.client import Sent

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 1, 15, 14, 0, tzinfo=UTC)


def record(backfill_id: str, status: BatchStatus, **extra: Any) -> BackfillRecord:
    done = status is BatchStatus.COMPLETED
    return BackfillRecord.model_validate({
        "backfill_id": backfill_id, "status": status, "topic": "transactions-stream",
        "submitted_at": T0, "resolved_offsets": {"0": [0, 10]} if done else None,
        "finished_at": T0 if status.terminal else None, "records_read": 10 if done else 0,
        "bronze_new": 10 if done else 0, "silver_new": 9 if done else 0,
        "duplicates": 1 if done else 0, "chunks_done": 1 if done else 0, "chunks_total": 1,
        **extra})


def backfill_event(rec: BackfillRecord) -> Event:
    return make_event(BACKFILL_EVENT_FOR_STATUS[rec.status], backfill_subject(rec.backfill_id),
                      "w1", rec)


class FakeClient:
    """What `WorkerClient` does, scripted: answers every command with `accepted` (or what
    `answer` says), then replays `events` in order to whoever waits."""

    def __init__(self, answer: Callable[[str, dict[str, Any]], tuple[EventType, dict]] | None
                 = None, events: Callable[[dict[str, Any]], list[Event]] | None = None,
                 history: list[Event] | None = None) -> None:
        self.answer = answer
        self.events = events or (lambda payload: [])
        self.history = history or []
        self.sent: list[tuple[str, dict[str, Any], str]] = []

    def __call__(self, settings: Any) -> FakeClient:  # stands in for the class
        return self

    def send(self, command_type: str, payload: dict[str, Any] | None = None,
             command_id: str | None = None) -> Sent:
        command = new_command(command_type, payload, command_id=command_id)  # the contract
        self.sent.append((command_type, payload or {}, command.command_id))
        return Sent(command.command_id, command_type, {0: 0}, command.encode())

    def wait_answer(self, sent: Sent, timeout: float) -> Event | None:
        command_type, payload, _ = self.sent[-1]
        event_type, data = (self.answer(command_type, payload) if self.answer else
                            (EventType.COMMAND_ACCEPTED,
                             {"command_type": command_type,
                              "backfill_id": payload.get("backfill_id")}))
        return make_event(event_type, command_subject(sent.command_id), "w1", data,
                          command_id=sent.command_id)

    def resend(self, sent: Sent) -> None:
        sent.attempts += 1

    def wait(self, sent: Sent, predicate: Callable[[Event], bool], timeout: float,
             on_event: Callable[[Event], None] | None = None) -> Event | None:
        for event in self.events(self.sent[-1][1]):
            if on_event is not None:
                on_event(event)
            if predicate(event):
                return event
        return None

    def registry(self) -> Registry:
        return fold_events(self.history)


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[FakeClient], FakeClient]:
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))

    def install(client: FakeClient) -> FakeClient:
        monkeypatch.setattr(cli, "WorkerClient", client)
        monkeypatch.setattr(cli_backfill, "WorkerClient", client)
        return client

    return install


def run(*args: str) -> tuple[int, Any, str]:
    """Exit code, the JSON on stdout (or its text), stderr."""
    result = CliRunner().invoke(cli.app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    out = result.stdout
    try:
        parsed: Any = orjson.loads(out) if out.strip() else None
    except orjson.JSONDecodeError:
        parsed = out
    return result.exit_code, parsed, result.stderr


def lifecycle(*statuses: BatchStatus) -> Callable[[dict[str, Any]], list[Event]]:
    def events(payload: dict[str, Any]) -> list[Event]:
        bid = payload["backfill_id"]
        return [backfill_event(record(bid, s, **({"error": {"code": "SOURCE_ERROR",
                                                            "message": "gone"}}
                                                   if s is BatchStatus.FAILED else {})))
                for s in statuses]
    return events


# ---- backfill ---------------------------------------------------------------------------


def test_backfill_sends_the_parsed_offsets_and_follows_to_the_end(use: Any) -> None:
    client = use(FakeClient(events=lifecycle(BatchStatus.PENDING, BatchStatus.RUNNING,
                                             BatchStatus.COMPLETED)))
    code, out, _ = run("backfill", "--topic", "transactions-stream", "--start-offset",
                       '{"0": 5, "1": 7}', "--end-offset", "1736985600000",
                       "--backfill-id", "bf-1", "--wait", "--json")
    assert code == 0
    assert client.sent[0][:2] == ("backfill", {
        "backfill_id": "bf-1", "topic": "transactions-stream",
        "start_offset": {"0": 5, "1": 7}, "end_offset": 1736985600000})
    assert out["ok"] is True and out["status"] == "completed" and out["backfill_id"] == "bf-1"
    assert out["silver_new"] == 9 and out["resolved_offsets"] == {"0": [0, 10]}
    assert out["delivery"] == {"command_id": client.sent[0][2], "attempts": 1,
                               "duplicate": False}


def test_backfill_without_wait_prints_the_first_record_with_a_picked_id(use: Any) -> None:
    client = use(FakeClient(events=lifecycle(BatchStatus.PENDING, BatchStatus.RUNNING)))
    code, out, _ = run("backfill", "--topic", "transactions-batch", "--json")
    assert code == 0
    payload = client.sent[0][1]
    assert payload.keys() == {"backfill_id", "topic"}  # default offsets left to the contract
    assert re.fullmatch(r"backfill-\d{8}-\d{6}-[0-9a-f]{6}", payload["backfill_id"])
    assert re.fullmatch(BATCH_ID_PATTERN, payload["backfill_id"])
    assert out["status"] == "pending" and out["backfill_id"] == payload["backfill_id"]


@pytest.mark.parametrize("final", [BatchStatus.FAILED, BatchStatus.CANCELLED])
def test_a_failed_or_cancelled_backfill_exits_1(use: Any, final: BatchStatus) -> None:
    use(FakeClient(events=lifecycle(BatchStatus.RUNNING, final)))
    code, out, _ = run("backfill", "--topic", "t", "--backfill-id", "bf-2", "--wait", "--json")
    assert code == 1
    assert out["ok"] is False and out["status"] == final.value


def test_backfill_wait_times_out_with_exit_3(use: Any) -> None:
    use(FakeClient(events=lifecycle(BatchStatus.PENDING, BatchStatus.RUNNING)))
    code, out, _ = run("backfill", "--topic", "t", "--backfill-id", "bf-3", "--wait",
                       "--timeout", "1", "--json")
    assert code == 3
    assert out["ok"] is False and out["error"]["backfill_id"] == "bf-3"


def test_a_replayed_answer_reports_the_known_record(use: Any) -> None:
    def duplicate(command_type: str, payload: dict[str, Any]) -> tuple[EventType, dict]:
        return EventType.COMMAND_ACCEPTED, {"command_type": command_type,
                                            "backfill_id": "original", "duplicate": True}

    use(FakeClient(answer=duplicate,
                   history=[backfill_event(record("original", BatchStatus.COMPLETED))]))
    code, out, err = run("backfill", "--topic", "t", "--command-id", "c-9", "--wait", "--json")
    assert code == 0
    assert out["backfill_id"] == "original" and out["status"] == "completed"
    assert out["delivery"]["duplicate"] is True
    assert "original outcome" in err


def test_rejections_and_usage_errors(use: Any) -> None:
    client = use(FakeClient(answer=lambda t, p: (EventType.COMMAND_REJECTED, {
        "code": "BACKFILL_ALREADY_EXISTS", "message": "bf-1 exists", "command_type": t})))
    code, out, _ = run("backfill", "--topic", "t", "--backfill-id", "bf-1", "--json")
    assert code == 1
    assert out["status"] == "rejected" and out["error"]["code"] == "BACKFILL_ALREADY_EXISTS"

    # the contract refuses before anything is sent
    code, out, _ = run("backfill", "--topic", "a/b", "--json")
    assert code == 1 and out["error"]["code"] == "INVALID_REQUEST"
    code, out, _ = run("backfill", "--topic", "t", "--end-offset", "earliest", "--json")
    assert code == 1 and out["error"]["code"] == "INVALID_REQUEST"
    assert len(client.sent) == 1

    assert run("backfill", "--json")[0] == 2  # neither --topic nor a subcommand
    assert run("backfill", "--topic", "t", "list")[0] == 2
    assert run("backfill", "--topic", "t", "--start-offset", "{oops", "--json")[0] == 2
    assert len(client.sent) == 1


def test_status_list_and_cancel(use: Any) -> None:
    history = [
        backfill_event(record("old", BatchStatus.COMPLETED)),
        backfill_event(record("new", BatchStatus.RUNNING,
                              submitted_at=datetime(2025, 1, 16, tzinfo=UTC))),
    ]
    client = use(FakeClient(history=history, events=lambda payload: [
        backfill_event(record("new", BatchStatus.CANCELLED))]))
    code, out, _ = run("backfill", "status", "old", "--json")
    assert code == 0 and out["ok"] is True and out["status"] == "completed"
    code, out, _ = run("backfill", "status", "nope", "--json")
    assert code == 1 and out["error"]["code"] == "BACKFILL_NOT_FOUND"

    code, out, _ = run("backfill", "list", "--json")
    assert code == 0 and out["total"] == 2
    assert [b["backfill_id"] for b in out["backfills"]] == ["new", "old"]
    code, out, _ = run("backfill", "list", "--status", "completed", "--limit", "5", "--json")
    assert [b["backfill_id"] for b in out["backfills"]] == ["old"]
    code, out, _ = run("backfill", "list", "--limit", "1", "--json")
    assert out["total"] == 2 and len(out["backfills"]) == 1

    code, out, _ = run("backfill", "cancel", "new", "--json")
    assert code == 0
    assert client.sent[-1][:2] == ("cancel_backfill", {"backfill_id": "new"})
    assert out["status"] == "cancelled" and out["delivery"]["attempts"] == 1
    code, out, _ = run("backfill", "cancel", "new", "--no-wait", "--json")
    assert code == 0 and out["status"] == "cancelling"

    code, text, _ = run("backfill", "list")
    assert code == 0 and "2 backfill(s)" in text


# ---- quality ----------------------------------------------------------------------------


def alert(expectation: str, opened_minute: int) -> QualityAlertData:
    return QualityAlertData(layer="silver", expectation=expectation, action="warn",
                            threshold=0.01, window_batches=10, rows_checked=100,
                            rows_failed=5, failure_rate=0.05, micro_batch_id=3,
                            opened_at=datetime(2025, 1, 15, 14, opened_minute, tzinfo=UTC))


def test_quality_alerts_are_the_open_ones(use: Any) -> None:
    closed = alert("freshness", 1)
    history = [
        make_event(EventType.QUALITY_ALERT, quality_subject("silver", "validity"), "w1",
                   alert("validity", 5)),
        make_event(EventType.QUALITY_ALERT, quality_subject("silver", "freshness"), "w1",
                   closed),
        make_event(EventType.QUALITY_ALERT, quality_subject("silver", "amount"), "w1",
                   alert("amount", 2)),
        make_event(EventType.QUALITY_RECOVERED, quality_subject("silver", "freshness"), "w1",
                   closed.model_copy(update={"recovered_at": T0})),
    ]
    use(FakeClient(history=history))
    code, out, _ = run("quality", "alerts", "--json")
    assert code == 0
    assert out["ok"] is True
    assert [a["expectation"] for a in out["alerts"]] == ["amount", "validity"]
    assert out["alerts"][0]["failure_rate"] == 0.05
    code, text, _ = run("quality", "alerts")
    assert code == 0 and "2 open quality alert(s)" in text

    use(FakeClient())
    code, out, err = run("quality", "alerts")
    assert code == 0 and "no open quality alerts" in err


SCHEMA = pa.schema([
    ("layer", pa.string()), ("expectation", pa.string()), ("action", pa.string()),
    ("rows_checked", pa.int64()), ("rows_failed", pa.int64()), ("metric", pa.float64()),
    ("passed", pa.bool_()), ("micro_batch_id", pa.int64()),
    ("checked_at", pa.timestamp("us", tz="UTC")), ("run", pa.string()),
    ("extra", pa.string()),  # a column `status` does not need
])


def at(minute: int) -> datetime:
    return datetime(2025, 1, 15, 14, minute, tzinfo=UTC)


METRIC_ROWS = [
    # the stream's newest row wins, even over a newer backfill row; its null metric stays
    ("silver", "completeness", "drop", 100, 1, 0.01, False, 1, at(1), "stream"),
    ("silver", "completeness", "drop", 100, 0, None, True, 2, at(2), "stream"),
    ("silver", "completeness", "drop", 50, 5, 0.1, False, 0, at(9), "backfill:bf-1"),
    # no stream rows: the newest of any run
    ("bronze", "volume", "warn", 10, 0, 10.0, True, 0, at(5), "backfill:bf-1"),
    ("bronze", "volume", "warn", 20, 0, 20.0, True, 1, at(4), "backfill:bf-2"),
    # the same checked_at: the higher micro-batch wins
    ("silver", "freshness", "warn", 7, 0, 1.5, True, 4, at(3), "stream"),
    ("silver", "freshness", "warn", 8, 1, 2.5, True, 5, at(3), "stream"),
]


def write_metrics(delta_dir: Path, rows: list[tuple[Any, ...]], chunks: int = 1) -> None:
    path = QUALITY_METRICS.path(delta_dir)
    for i in range(chunks):  # one commit (one file) per chunk
        part = rows[i::chunks]
        write_deltalake(str(path), pa.Table.from_pylist(
            [dict(zip(SCHEMA.names, (*r, "x"), strict=True)) for r in part], schema=SCHEMA),
            mode="append")


EXPECTED = [
    {"layer": "bronze", "expectation": "volume", "action": "warn", "rows_checked": 10,
     "rows_failed": 0, "metric": 10.0, "passed": True, "micro_batch_id": 0,
     "checked_at": "2025-01-15T14:05:00+00:00", "run": "backfill:bf-1"},
    {"layer": "silver", "expectation": "completeness", "action": "drop", "rows_checked": 100,
     "rows_failed": 0, "metric": None, "passed": True, "micro_batch_id": 2,
     "checked_at": "2025-01-15T14:02:00+00:00", "run": "stream"},
    {"layer": "silver", "expectation": "freshness", "action": "warn", "rows_checked": 8,
     "rows_failed": 1, "metric": 2.5, "passed": True, "micro_batch_id": 5,
     "checked_at": "2025-01-15T14:03:00+00:00", "run": "stream"},
]


@pytest.mark.parametrize("chunks", [1, 3])
def test_latest_results_per_expectation(tmp_path: Path, chunks: int) -> None:
    write_metrics(tmp_path, METRIC_ROWS, chunks)
    got = cli_quality.latest_results(QUALITY_METRICS.path(tmp_path))
    assert got is not None
    assert [{**r, "checked_at": r["checked_at"].isoformat()} for r in got] == EXPECTED


def test_quality_status_reads_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(cli_quality, "_exit_after_read", lambda: None)
    code, out, err = run("quality", "status", "--json")
    assert (code, out) == (0, {"ok": True, "expectations": []})
    assert "no quality.metrics table" in err

    write_metrics(tmp_path / "delta", METRIC_ROWS)
    code, out, _ = run("quality", "status", "--json")
    assert code == 0 and out == {"ok": True, "expectations": EXPECTED}
    code, text, _ = run("quality", "status")
    assert code == 0 and "3 expectation(s), latest result" in text


def test_quality_status_as_the_console_script_runs_it(tmp_path: Path) -> None:
    write_metrics(tmp_path / "delta", METRIC_ROWS)
    env = {**os.environ, "PIPELINE_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", "from producers.cli import main; main()",
                           "quality", "status", "--json"], cwd=ROOT, env=env,
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert orjson.loads(done.stdout) == {"ok": True, "expectations": EXPECTED}


def test_events_describe_backfills_and_alerts() -> None:
    line = cli._describe(backfill_event(record("bf-1", BatchStatus.COMPLETED)))
    assert "backfill.completed" in line and "backfill/bf-1" in line
    assert "silver=9" in line and "chunks=1/1" in line
    line = cli._describe(make_event(EventType.QUALITY_ALERT,
                                    quality_subject("silver", "validity"), "w1",
                                    alert("validity", 1)))
    assert "quality/silver/validity" in line and "failure_rate=0.05" in line


def test_stream_status_shows_the_medallion_progress(use: Any) -> None:
    progress = {"query_id": "q", "batch_id": 4, "rows_in": 10, "rows_written": 8,
                "rows_quarantined": 2, "rows_per_second": 5.0, "batch_duration_ms": 20,
                "rows_bronze": 10, "duplicates": 0, "rows_dropped": 1,
                "quality": [{"layer": "silver", "expectation": "completeness",
                             "action": "drop", "rows_checked": 9, "rows_failed": 1,
                             "metric": 0.111111, "passed": False}],
                "layers": {"bronze.transactions": 10, "silver.transactions": 8}}
    use(FakeClient(history=[
        make_event(EventType.STREAM_STARTED, "stream/transactions", "w1",
                   {"state": "running", "topic": "t",
                    "tables": {"silver.transactions": "/d/silver/transactions"}}),
        make_event(EventType.STREAM_PROGRESS, "stream/transactions/progress", "w1", progress),
    ]))
    code, out, _ = run("stream", "status", "--json")
    assert code == 0 and out["last_progress"] == progress
    assert out["stream"]["tables"] == {"silver.transactions": "/d/silver/transactions"}
    code, text, _ = run("stream", "status")
    assert code == 0 and "expectations, latest micro-batch" in text
