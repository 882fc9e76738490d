"""The scheduler's slot loop against an in-memory event log: each slot is submitted once,
a new scheduler (a restart) resumes from the registry, and refusals are retried."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.commands import RunBatchPayload, new_command
from contracts.errors import ErrorCode
from contracts.events import BatchRecord, BatchStatus, EventType, make_event
from contracts.registry import Registry, apply_event
from contracts.settings import Settings
from worker.errors import CommandRefused
from worker.scheduler import Scheduler

BATCH = {"analysis_type": "revenue_by_category",
         "source": {"kind": "delta", "start_date": "2025-01-01", "end_date": "2030-12-31"}}


class Log:
    """The publisher's part the scheduler uses: every event is acknowledged at once."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.fenced = False
        self.events: list[Any] = []

    def publish(self, event_type: EventType, subject: str, data: Any, *,
                command_id: str | None = None) -> None:
        event = make_event(event_type, subject, "w1", data, command_id=command_id)
        self.events.append(event)
        apply_event(self.registry, event)


class Batches:
    """BatchRunner.prepare_submit's contract: refuse a known id or a full queue."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.full = False

    def prepare_submit(self, payload: RunBatchPayload, command_id: str | None
                       ) -> tuple[str, Callable[[], None]]:
        batch_id = payload.batch_id
        assert batch_id is not None
        if batch_id in self.log.registry.batches:
            raise CommandRefused(ErrorCode.BATCH_ALREADY_EXISTS, batch_id)
        if self.full:
            raise CommandRefused(ErrorCode.CAPACITY_EXCEEDED, "full", retryable=True)
        record = BatchRecord(batch_id=batch_id, status=BatchStatus.PENDING,
                             analysis_type=payload.analysis_type.value,
                             source=payload.source.model_dump(mode="json"),
                             command_id=command_id, submitted_at=self.log.now)
        return batch_id, lambda: self.log.publish(EventType.BATCH_PENDING,
                                                  f"batch/{batch_id}", record)


def T(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def log() -> Log:
    return Log()


def scheduler(log: Log) -> tuple[Scheduler, Batches]:
    batches = Batches(log)
    return Scheduler(Settings(), log, batches), batches  # type: ignore[arg-type]


def create(s: Scheduler, log: Log, at: datetime, **cadence: Any) -> None:
    log.now = at  # type: ignore[attr-defined]
    command = new_command("schedule_batch", {"schedule_id": "every", "batch": BATCH,
                                             **cadence})
    create_it = s.prepare_create(command.payload, command.command_id)
    create_it()
    # What the command saw as "now" is the schedule's creation time.
    rec = log.registry.schedules["every"].model_copy(update={"created_at": at})
    log.registry.schedules["every"] = rec
    s._published["every"] = rec


def tick(s: Scheduler, log: Log, at: str) -> list[str]:
    log.now = T(at)  # type: ignore[attr-defined]
    return s.tick(T(at))


def test_slots_run_once_and_a_restart_submits_only_the_missed_ones(log: Log) -> None:
    first, _ = scheduler(log)
    create(first, log, T("2025-01-15T14:30:05"), interval_seconds=60)
    assert tick(first, log, "2025-01-15T14:30:59") == []
    assert tick(first, log, "2025-01-15T14:31:00") == ["every-20250115T143100Z"]
    assert tick(first, log, "2025-01-15T14:31:30") == []
    assert tick(first, log, "2025-01-15T14:32:10") == ["every-20250115T143200Z"]
    # The worker stops; a new one starts three slots later with the same log.
    second, _ = scheduler(log)
    assert tick(second, log, "2025-01-15T14:35:01") == [
        "every-20250115T143300Z", "every-20250115T143400Z", "every-20250115T143500Z"]
    assert tick(second, log, "2025-01-15T14:35:30") == []
    pending = [e.subject for e in log.events if e.type is EventType.BATCH_PENDING]
    assert len(pending) == len(set(pending)) == 5
    assert log.registry.schedules["every"].last_batch_id == "every-20250115T143500Z"


def test_a_refused_slot_is_retried_in_order_and_a_taken_one_is_skipped(log: Log) -> None:
    s, batches = scheduler(log)
    create(s, log, T("2025-01-15T14:30:05"), interval_seconds=60)
    batches.full = True
    assert tick(s, log, "2025-01-15T14:31:00") == []
    # Someone ran the 14:31 slot by hand meanwhile: it is not run again.
    log.publish(EventType.BATCH_PENDING, "batch/every-20250115T143100Z", BatchRecord(
        batch_id="every-20250115T143100Z", status=BatchStatus.PENDING,
        analysis_type="revenue_by_category", source=BATCH["source"],
        submitted_at=T("2025-01-15T14:31:01")))
    assert tick(s, log, "2025-01-15T14:32:00") == []
    batches.full = False
    assert tick(s, log, "2025-01-15T14:33:05") == ["every-20250115T143200Z",
                                                   "every-20250115T143300Z"]


def test_a_schedule_is_refused_twice_and_unscheduled_once(log: Log) -> None:
    s, _ = scheduler(log)
    create(s, log, T("2025-01-15T14:30:05"), interval_seconds=60)
    again = new_command("schedule_batch", {"schedule_id": "every", "batch": BATCH,
                                           "cron": "* * * * *"}).payload
    with pytest.raises(CommandRefused) as info:
        s.prepare_create(again, "c2")
    assert info.value.code is ErrorCode.SCHEDULE_ALREADY_EXISTS
    assert "different definition" in info.value.message
    tick(s, log, "2025-01-15T14:31:00")
    s.prepare_remove("every", "c3")()
    removed = log.registry.schedules["every"]
    assert removed.removed_at is not None and removed.next_slot is None
    assert removed.last_batch_id == "every-20250115T143100Z"
    assert tick(s, log, "2025-01-15T14:40:00") == []
    with pytest.raises(CommandRefused) as info:
        s.prepare_remove("every", "c4")
    assert info.value.code is ErrorCode.SCHEDULE_NOT_FOUND
    with pytest.raises(CommandRefused):
        s.prepare_remove("never", "c5")


def test_catch_up_after_a_long_absence_is_bounded(log: Log) -> None:
    s, _ = scheduler(log)
    create(s, log, T("2025-01-15T14:30:05"), cron="* * * * *")
    submitted = tick(s, log, "2025-01-16T14:30:00")
    assert len(submitted) == 100 and submitted[-1] == "every-20250116T143000Z"
    assert tick(s, log, "2025-01-16T14:30:30") == []
    assert (T("2025-01-16T14:30:00") - timedelta(minutes=99)).strftime("%H%M") \
        == submitted[0][-7:-3]
