"""Recurring batches with a real worker: each slot runs once under its derived batch id, a
slot missed while the worker was down runs once after the restart, and an unscheduled
schedule submits nothing more."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from contracts.events import EventType
from contracts.schedules import parse_slot_batch_id
from tests.e2e.conftest import WorkerProcess, seed_history

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SCHEDULE = "tick"
EVERY = 20  # seconds: short, yet few enough batches for a busy 2-core machine


def slot_batches(worker: WorkerProcess, event_type: EventType) -> list[tuple[str, datetime]]:
    """(batch id, slot) of every `event_type` event of this schedule's batches."""
    out = []
    for event in worker.events():
        parsed = parse_slot_batch_id(event.data.get("batch_id") or "") \
            if event.type is event_type else None
        if parsed is not None and parsed[0] == SCHEDULE:
            out.append((event.data["batch_id"], parsed[1]))
    return out


def wait_submitted(worker: WorkerProcess, after: datetime | None = None, count: int = 1,
                   timeout: float = 240) -> list[datetime]:
    """Wait until `count` slots after `after` have their batch submitted (`batch.pending`)."""
    def slots() -> list[datetime]:
        return sorted({s for _, s in slot_batches(worker, EventType.BATCH_PENDING)
                       if after is None or s > after})

    worker.wait_for(lambda e: e.type is EventType.BATCH_PENDING and len(slots()) >= count,
                    timeout)
    found = slots()
    assert len(found) >= count, worker.log_tail()
    return found


def sleep_past_next_slot(margin: float = 1.0) -> datetime:
    """Sleep until just past the next slot boundary; returns that slot."""
    now = datetime.now(UTC)
    boundary = datetime.fromtimestamp((int(now.timestamp()) // EVERY + 1) * EVERY, UTC)
    time.sleep((boundary - now).total_seconds() + margin)
    return boundary


def test_slots_run_once_across_a_restart_and_stop_when_unscheduled(
        new_worker: Callable[[], WorkerProcess]) -> None:
    worker = new_worker()
    # Slot batches still running at the stop are re-run after it, not waited for long.
    worker.env["PIPELINE_DRAIN_TIMEOUT_SECONDS"] = "5"
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

    before_stop = wait_submitted(worker, count=2)
    first = f"{SCHEDULE}-{before_stop[0]:%Y%m%dT%H%M%SZ}"  # and it runs like any batch
    done = worker.wait_for(lambda e: e.type is EventType.BATCH_COMPLETED
                           and e.data["batch_id"] == first, 240)
    assert done is not None, worker.log_tail()
    assert worker.stop() == 0  # graceful: the scheduler stops first, then batches drain
    last_before = max(s for _, s in slot_batches(worker, EventType.BATCH_PENDING))
    missed = sleep_past_next_slot()  # at least this slot falls while no worker runs

    assert worker.start() is not None
    assert missed in wait_submitted(worker, after=last_before)

    code, listed = worker.cli_json("schedule", "list")
    assert code == 0 and [s["schedule_id"] for s in listed["schedules"]] == [SCHEDULE]
    assert listed["schedules"][0]["last_slot"] is not None

    code, removed = worker.cli_json("schedule", "remove", SCHEDULE)
    assert code == 0 and removed["status"] == "removed" and removed["removed_at"], removed
    removed_at = datetime.fromisoformat(removed["removed_at"])
    code, gone = worker.cli_json("schedule", "remove", SCHEDULE)
    assert code == 1 and gone["error"]["code"] == "SCHEDULE_NOT_FOUND"
    sleep_past_next_slot(margin=3.0)  # the scheduler ticks every second

    # Every slot from the first to the last was submitted exactly once (a batch re-run
    # after the stop keeps its submission), the missed ones included, each under its
    # derived batch id, and none came after the removal.
    pending = [e.data for e in worker.events() if e.type is EventType.BATCH_PENDING]
    submissions: dict[str, set[str]] = {}
    for record in pending:
        submissions.setdefault(record["batch_id"], set()).add(record["submitted_at"])
    assert all(len(times) == 1 for times in submissions.values()), submissions
    slots = sorted({s for _, s in slot_batches(worker, EventType.BATCH_PENDING)})
    assert set(submissions) == {f"{SCHEDULE}-{s:%Y%m%dT%H%M%SZ}" for s in slots}
    assert slots == [slots[0] + timedelta(seconds=EVERY * k) for k in range(len(slots))]
    assert slots[0] == before_stop[0] and last_before < missed <= slots[-1] <= removed_at
