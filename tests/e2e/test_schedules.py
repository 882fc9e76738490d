"""Recurring batches with a real worker: each slot runs once under its derived batch id, a
slot missed while the worker was down runs once after the restart, and an unscheduled
schedule submits nothing more."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from contracts.events import Event, EventType
from contracts.schedules import parse_slot_batch_id
from tests.e2e.conftest import WorkerProcess, seed_history

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SCHEDULE = "tick"
EVERY = 10  # the contract's minimum interval, in seconds


def slot_batches(worker: WorkerProcess, event_type: EventType) -> list[tuple[str, datetime]]:
    """(batch id, slot) of every `event_type` event of this schedule's batches."""
    out = []
    for event in worker.events():
        parsed = parse_slot_batch_id(event.data.get("batch_id") or "") \
            if event.type is event_type else None
        if parsed is not None and parsed[0] == SCHEDULE:
            out.append((event.data["batch_id"], parsed[1]))
    return out


def completed_slots(worker: WorkerProcess) -> list[datetime]:
    return sorted(slot for _, slot in slot_batches(worker, EventType.BATCH_COMPLETED))


def wait_completed(worker: WorkerProcess, count: int, after: datetime | None = None,
                   timeout: float = 180) -> list[datetime]:
    """Wait until `count` slots (after `after`) have completed batches."""
    def enough(_: Event) -> bool:
        return len([s for s in completed_slots(worker) if after is None or s > after]) >= count

    worker.wait_for(lambda e: e.type is EventType.BATCH_COMPLETED and enough(e), timeout)
    slots = completed_slots(worker)
    assert len([s for s in slots if after is None or s > after]) >= count, worker.log_tail()
    return slots


def sleep_past_next_slot(margin: float = 1.0) -> datetime:
    """Sleep until just past the next slot boundary; returns that slot."""
    now = datetime.now(UTC)
    boundary = datetime.fromtimestamp((int(now.timestamp()) // EVERY + 1) * EVERY, UTC)
    time.sleep((boundary - now).total_seconds() + margin)
    return boundary


def test_slots_run_once_across_a_restart_and_stop_when_unscheduled(
        new_worker: Callable[[], WorkerProcess]) -> None:
    worker = new_worker()
    worker.start()
    seed_history(worker, 500, days=2, seed=11)
    tomorrow = str(date.today() + timedelta(days=1))
    code, added = worker.cli_json(
        "schedule", "add", "--id", SCHEDULE, "--every", f"{EVERY}s",
        "--analysis", "revenue_by_category", "--from-date", "2020-01-01", "--to-date", tomorrow)
    assert code == 0 and added["status"] == "active", added
    assert added["interval_seconds"] == EVERY and added["next_slot"]

    # The same id again is refused, whatever the definition.
    code, again = worker.cli_json(
        "schedule", "add", "--id", SCHEDULE, "--cron", "* * * * *",
        "--analysis", "revenue_by_category", "--from-date", "2020-01-01", "--to-date", tomorrow)
    assert code == 1 and again["error"]["code"] == "SCHEDULE_ALREADY_EXISTS"

    before_stop = wait_completed(worker, 2)
    assert worker.stop() == 0  # graceful: running slot batches finish first
    last_before = max(s for _, s in slot_batches(worker, EventType.BATCH_PENDING))
    missed = sleep_past_next_slot()  # at least this slot falls while no worker runs

    started = worker.start()
    assert started is not None
    after_restart = wait_completed(worker, 1, after=missed - timedelta(seconds=1))
    assert missed in after_restart

    code, listed = worker.cli_json("schedule", "list")
    assert code == 0 and [s["schedule_id"] for s in listed["schedules"]] == [SCHEDULE]
    assert listed["schedules"][0]["last_slot"] is not None

    code, removed = worker.cli_json("schedule", "remove", SCHEDULE)
    assert code == 0 and removed["status"] == "removed" and removed["removed_at"], removed
    removed_at = datetime.fromisoformat(removed["removed_at"])
    code, gone = worker.cli_json("schedule", "remove", SCHEDULE)
    assert code == 1 and gone["error"]["code"] == "SCHEDULE_NOT_FOUND"
    sleep_past_next_slot(margin=3.0)  # the scheduler ticks every second

    # Every slot from the first to the last ran exactly once, the missed ones included,
    # each under its derived batch id, and none came after the removal.
    pending = slot_batches(worker, EventType.BATCH_PENDING)
    slots = sorted({s for _, s in pending})
    assert all(bid == f"{SCHEDULE}-{s:%Y%m%dT%H%M%SZ}" for bid, s in pending)
    assert slots == [slots[0] + timedelta(seconds=EVERY * k) for k in range(len(slots))]
    assert slots[0] == before_stop[0] and missed in slots and last_before < missed
    assert slots[-1] <= removed_at
    running = Counter(bid for bid, _ in slot_batches(worker, EventType.BATCH_RUNNING))
    completed = Counter(bid for bid, _ in slot_batches(worker, EventType.BATCH_COMPLETED))
    assert max(running.values()) == 1 and max(completed.values()) == 1, (running, completed)
