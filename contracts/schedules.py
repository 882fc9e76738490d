"""Recurring batches: the schedule record carried by `schedule.*` events, and the slot
rule every party (worker, CLI, tests) computes the same way.

A schedule's slots are UTC instants: `anchor + k * interval_seconds` (the anchor is
`start_at`, or the Unix epoch when there is none, so `3600` runs on the hour), or the
minutes a cron expression matches. Only slots at or after the schedule's `not_before`
(`start_at`, else the time the command was accepted) count. The batch of a slot is named
`<schedule_id>-<YYYYMMDDTHHMMSSZ>`: the id is the slot, so a slot whose batch exists, in
any status, is never submitted again.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from contracts.cron import parse_cron
from contracts.event_data import EventData

SLOT_FORMAT = "%Y%m%dT%H%M%SZ"
SLOT_STAMP_LENGTH = 16  # len("20250115T143000Z")
MAX_SCHEDULE_ID_LENGTH = 64 - 1 - SLOT_STAMP_LENGTH  # the batch id is at most 64 chars
SCHEDULE_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_SCHEDULE_ID_LENGTH - 1}}}$"
MIN_INTERVAL_SECONDS = 10
MAX_INTERVAL_SECONDS = 366 * 86_400
# After downtime, at most this many of the most recent missed slots run; older ones are
# skipped (logged), so a worker that was away for a month does not flood the batch pool.
MAX_CATCH_UP_SLOTS = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
# Parsed once per expression: the scheduler asks for slots every second.
_parse_cron = functools.lru_cache(maxsize=256)(parse_cron)


class ScheduleStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"


class ScheduleRecord(EventData):
    """Everything known about one schedule; carried whole by every `schedule.*` event."""

    schedule_id: str
    status: ScheduleStatus = ScheduleStatus.ACTIVE
    interval_seconds: int | None = None
    cron: str | None = None
    # The run_batch payload of every slot, without batch_id.
    batch: dict[str, Any]
    start_at: datetime | None = None
    created_at: datetime
    removed_at: datetime | None = None
    command_id: str | None = None
    worker_id: str | None = None
    # When published: the first slot still to come; for `schedule.removed`, None.
    next_slot: datetime | None = None
    # The newest slot whose batch is known (kept current by the registry fold).
    last_slot: datetime | None = None
    last_batch_id: str | None = None

    @property
    def not_before(self) -> datetime:
        return self.start_at or self.created_at

    def definition(self) -> dict[str, Any]:
        """What makes two schedules the same: cadence, anchor and batch template."""
        return {"interval_seconds": self.interval_seconds, "cron": self.cron,
                "start_at": self.start_at, "batch": self.batch}


def schedule_subject(schedule_id: str) -> str:
    return f"schedule/{schedule_id}"


def slot_batch_id(schedule_id: str, slot: datetime) -> str:
    return f"{schedule_id}-{slot.astimezone(UTC):{SLOT_FORMAT}}"


def parse_slot_batch_id(batch_id: str) -> tuple[str, datetime] | None:
    """(schedule_id, slot) when `batch_id` has the form of a slot's batch, else None."""
    if len(batch_id) < SLOT_STAMP_LENGTH + 2 or batch_id[-SLOT_STAMP_LENGTH - 1] != "-":
        return None
    stamp = batch_id[-SLOT_STAMP_LENGTH:]
    if stamp[8] != "T" or stamp[-1] != "Z":
        return None
    try:
        slot = datetime.strptime(stamp, SLOT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return batch_id[:-SLOT_STAMP_LENGTH - 1], slot


def slot_after(record: ScheduleRecord, t: datetime) -> datetime:
    """The first slot strictly after `t`."""
    if record.cron is not None:
        return _parse_cron(record.cron).next_after(t)
    assert record.interval_seconds is not None
    anchor = record.start_at or EPOCH
    step = record.interval_seconds * 1_000_000
    elapsed = (t - anchor) // _TICK
    return anchor + timedelta(microseconds=(elapsed // step + 1) * step)


def is_slot(record: ScheduleRecord, t: datetime) -> bool:
    return slot_after(record, t - _TICK) == t


def first_slot(record: ScheduleRecord) -> datetime:
    return slot_after(record, record.not_before - _TICK)


def next_slot(record: ScheduleRecord, now: datetime) -> datetime:
    """The first slot after `now` and after the newest one already run."""
    after = max(now, record.last_slot or now, record.not_before - _TICK)
    return slot_after(record, after)


def due_slots(record: ScheduleRecord, now: datetime, after: datetime | None = None,
              limit: int = MAX_CATCH_UP_SLOTS) -> tuple[list[datetime], bool]:
    """The slots in (after, now] that count (not before `not_before`), oldest first:
    at most the `limit` most recent. `after` defaults to the record's last slot. The flag
    tells that older due slots were left out."""
    lower = max(after or record.last_slot or EPOCH, record.not_before - _TICK)
    if lower >= now:
        return [], False
    if record.cron is None:
        return _interval_slots(record, lower, now, limit)
    # Cron: walk forward over a window ending at `now`, widened until it holds `limit`
    # slots or reaches `lower` (a minute-cron after a week away walks 100 minutes).
    window = timedelta(minutes=limit)
    while True:
        start = max(lower, now - window)
        slots = _walk(record, start, now)
        if len(slots) >= limit or start == lower:
            return slots[-limit:], len(slots) > limit or start > lower
        window *= 4


def _walk(record: ScheduleRecord, after: datetime, until: datetime) -> list[datetime]:
    slots, t = [], after
    while (t := slot_after(record, t)) <= until:
        slots.append(t)
    return slots


def _interval_slots(record: ScheduleRecord, lower: datetime, now: datetime,
                    limit: int) -> tuple[list[datetime], bool]:
    assert record.interval_seconds is not None
    anchor = record.start_at or EPOCH
    step = timedelta(seconds=record.interval_seconds)
    first = (lower - anchor) // step + 1  # the first index strictly after `lower`
    last = (now - anchor) // step
    if last < first:
        return [], False
    start = max(first, last - limit + 1)
    return [anchor + k * step for k in range(start, last + 1)], start > first
