"""Schedules in the contract: payload validation, cron parsing, the slot rule, the fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.commands import new_command
from contracts.cron import CronError, parse_cron
from contracts.errors import ContractError
from contracts.events import BatchRecord, BatchStatus, EventType, make_event
from contracts.registry import Registry, apply_event, fold_events
from contracts.schedules import (
    MAX_CATCH_UP_SLOTS,
    ScheduleRecord,
    ScheduleStatus,
    due_slots,
    first_slot,
    next_slot,
    parse_slot_batch_id,
    schedule_subject,
    slot_batch_id,
)

BATCH = {"analysis_type": "revenue_by_category",
         "source": {"kind": "delta", "start_date": "2025-01-01", "end_date": "2030-12-31"}}


def T(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def payload(**extra: Any) -> dict[str, Any]:
    return {"schedule_id": "nightly", "batch": BATCH, **extra}


def rejected(body: dict[str, Any]) -> str:
    with pytest.raises(ContractError) as info:
        new_command("schedule_batch", body)
    return info.value.message


# ---- payloads ---------------------------------------------------------------------------


def test_a_valid_schedule_decodes_with_either_cadence() -> None:
    every = new_command("schedule_batch", payload(interval_seconds=3600)).payload
    assert every.interval_seconds == 3600 and every.cron is None and every.batch.batch_id is None
    cron = new_command("schedule_batch", payload(cron="  */15  2-4 * * MON-FRI ")).payload
    assert cron.cron == "*/15 2-4 * * MON-FRI"  # normalized


def test_start_at_is_utc_to_the_second_and_must_carry_a_zone() -> None:
    p = new_command("schedule_batch", payload(interval_seconds=60,
                                              start_at="2025-01-15T15:30:00.750+01:00")).payload
    assert p.start_at == T("2025-01-15T14:30:00")
    assert "timezone" in rejected(payload(interval_seconds=60, start_at="2025-01-15T14:30:00"))


@pytest.mark.parametrize(("extra", "message"), [
    ({}, "exactly one of interval_seconds and cron"),
    ({"interval_seconds": 60, "cron": "* * * * *"}, "exactly one of"),
    ({"interval_seconds": 9}, "greater than or equal to 10"),
    ({"interval_seconds": "60"}, "valid integer"),
    ({"cron": "0 25 * * *"}, "hour: 25 is outside 0-23"),
    ({"cron": "0 0 * *"}, "has 4 field(s)"),
    ({"cron": "*/0 * * * *"}, "step '0'"),
    ({"cron": "0 0 31 2 *"}, "never matches"),
    ({"cron": "@fortnightly"}, "unknown macro"),
])
def test_bad_cadences_are_refused_with_a_clear_message(extra: dict[str, Any],
                                                       message: str) -> None:
    assert message in rejected(payload(**extra))


def test_the_template_has_no_batch_id_and_the_id_leaves_room_for_the_slot() -> None:
    assert "leave batch_id out" in rejected(
        payload(interval_seconds=60, batch={**BATCH, "batch_id": "mine"}))
    assert "at most 47 characters" in rejected(
        {**payload(interval_seconds=60), "schedule_id": "s" * 48})
    longest = new_command("schedule_batch", {**payload(interval_seconds=60),
                                             "schedule_id": "s" * 47}).payload
    assert len(slot_batch_id(longest.schedule_id, T("2025-01-15T14:30:00"))) == 64
    assert "filter" in rejected(payload(interval_seconds=60,
                                        batch={**BATCH, "filters": {"nope": 1}}))


def test_unschedule_takes_a_schedule_id() -> None:
    assert new_command("unschedule_batch", {"schedule_id": "nightly"}).payload.schedule_id \
        == "nightly"
    with pytest.raises(ContractError):
        new_command("unschedule_batch", {"schedule_id": "../x"})


# ---- cron -------------------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("* * * * *", "2025-01-15T14:30:00", "2025-01-15T14:31:00"),
    ("* * * * *", "2025-01-15T14:30:59", "2025-01-15T14:31:00"),
    ("*/15 * * * *", "2025-01-15T14:30:00", "2025-01-15T14:45:00"),
    ("0 2 * * *", "2025-01-15T14:30:00", "2025-01-16T02:00:00"),
    ("30 9 * * MON", "2025-01-15T14:30:00", "2025-01-20T09:30:00"),  # a Wednesday
    ("0 0 * * 7", "2025-01-15T00:00:00", "2025-01-19T00:00:00"),  # 7 is Sunday too
    ("0 0 29 2 *", "2025-01-01T00:00:00", "2028-02-29T00:00:00"),
    ("0 0 1 * *", "2025-12-15T00:00:00", "2026-01-01T00:00:00"),
    ("@hourly", "2025-01-15T14:30:00", "2025-01-15T15:00:00"),
    # Both day fields restricted: either matches (the 20th, or any Friday).
    ("0 12 20 * FRI", "2025-01-15T14:30:00", "2025-01-17T12:00:00"),
    ("0 12 20 * FRI", "2025-01-17T12:00:00", "2025-01-20T12:00:00"),
    ("5-10/5 1,3 * JAN-FEB *", "2025-01-31T03:10:00", "2025-02-01T01:05:00"),
])
def test_cron_next_after(expr: str, after: str, expected: str) -> None:
    assert parse_cron(expr).next_after(T(after)) == T(expected)


def test_cron_errors_name_the_field() -> None:
    with pytest.raises(CronError, match="day of week: 'XYZ' is not a number or a name"):
        parse_cron("0 0 * * XYZ")
    with pytest.raises(CronError, match="range '5-1' runs backwards"):
        parse_cron("5-1 * * * *")


# ---- slots ------------------------------------------------------------------------------


def record(**fields: Any) -> ScheduleRecord:
    return ScheduleRecord.model_validate({"schedule_id": "nightly", "batch": BATCH,
                                          "created_at": T("2025-01-15T14:30:20"), **fields})


def test_interval_slots_are_epoch_aligned_unless_start_at_anchors_them() -> None:
    hourly = record(interval_seconds=3600)
    assert first_slot(hourly) == T("2025-01-15T15:00:00")  # not before creation
    anchored = record(interval_seconds=3600, start_at=T("2025-01-15T14:20:00"))
    assert first_slot(anchored) == T("2025-01-15T14:20:00")  # start_at may be the past
    assert next_slot(anchored, T("2025-01-15T16:00:00")) == T("2025-01-15T16:20:00")
    assert first_slot(record(cron="*/10 * * * *")) == T("2025-01-15T14:40:00")


def test_due_slots_run_each_slot_once_and_resume_after_the_last() -> None:
    every = record(interval_seconds=60)
    now = T("2025-01-15T14:33:05")
    slots, clipped = due_slots(every, now)
    assert slots == [T("2025-01-15T14:31:00"), T("2025-01-15T14:32:00"),
                     T("2025-01-15T14:33:00")] and not clipped
    # After the newest one ran, nothing is due until the next slot...
    assert due_slots(every, now, after=slots[-1]) == ([], False)
    # ...and a restart after downtime submits just the slots missed since.
    later = T("2025-01-15T14:35:00")
    assert due_slots(every, later, after=slots[-1])[0] == [T("2025-01-15T14:34:00"), later]
    assert due_slots(every.model_copy(update={"last_slot": slots[-1]}), later)[0] \
        == [T("2025-01-15T14:34:00"), later]


@pytest.mark.parametrize("cadence", [{"interval_seconds": 60}, {"cron": "* * * * *"}])
def test_catch_up_runs_only_the_most_recent_slots(cadence: dict[str, Any]) -> None:
    every = record(**cadence)
    now = T("2025-01-22T14:30:00")  # a week later
    slots, clipped = due_slots(every, now)
    assert clipped and len(slots) == MAX_CATCH_UP_SLOTS
    assert slots[-1] == now and slots[0] == now - timedelta(minutes=MAX_CATCH_UP_SLOTS - 1)
    assert slots == sorted(set(slots))


def test_cron_catch_up_widens_its_window_for_rare_slots() -> None:
    daily = record(cron="0 2 * * *")
    slots, clipped = due_slots(daily, T("2025-03-01T03:00:00"))
    assert slots[0] == T("2025-01-16T02:00:00") and slots[-1] == T("2025-03-01T02:00:00")
    assert len(slots) == 45 and not clipped


def test_slot_batch_ids_round_trip() -> None:
    slot = T("2025-01-15T14:30:00")
    assert slot_batch_id("nightly-eu", slot) == "nightly-eu-20250115T143000Z"
    assert parse_slot_batch_id("nightly-eu-20250115T143000Z") == ("nightly-eu", slot)
    for other in ("batch-20250115-143000-abcdef", "x-2025011XT143000Z", "20250115T143000Z"):
        assert parse_slot_batch_id(other) is None


# ---- the registry fold ------------------------------------------------------------------


def schedule_event(event_type: EventType, rec: ScheduleRecord, epoch: int = 1) -> Any:
    return make_event(event_type, schedule_subject(rec.schedule_id), "w1", rec, epoch=epoch)


def batch_event(batch_id: str, submitted: datetime, status: BatchStatus = BatchStatus.PENDING
                ) -> Any:
    rec = BatchRecord(batch_id=batch_id, status=status, analysis_type="revenue_by_category",
                      source=BATCH["source"], submitted_at=submitted)
    return make_event(EventType.BATCH_PENDING, f"batch/{batch_id}", "w1", rec, epoch=1)


def test_the_fold_keeps_schedules_and_follows_their_slots() -> None:
    created = record(interval_seconds=60)
    registry = fold_events([
        schedule_event(EventType.SCHEDULE_CREATED, created),
        batch_event("nightly-20250115T143100Z", T("2025-01-15T14:31:00.2")),
        batch_event("nightly-20250115T143200Z", T("2025-01-15T14:32:01")),
        # Not slots: another id, a stamp off the grid, a stamp later than its submission.
        batch_event("other-20250115T143300Z", T("2025-01-15T14:33:00")),
        batch_event("nightly-20250115T143230Z", T("2025-01-15T14:33:00")),
        batch_event("nightly-20300101T000000Z", T("2025-01-15T14:33:00")),
    ])
    schedule = registry.schedules["nightly"]
    assert schedule.status is ScheduleStatus.ACTIVE
    assert schedule.last_slot == T("2025-01-15T14:32:00")
    assert schedule.last_batch_id == "nightly-20250115T143200Z"
    assert registry.active_schedules() == [schedule]

    removed = schedule.model_copy(update={"status": ScheduleStatus.REMOVED,
                                          "removed_at": T("2025-01-15T14:40:00")})
    apply_event(registry, schedule_event(EventType.SCHEDULE_REMOVED, removed))
    assert registry.schedules["nightly"].status is ScheduleStatus.REMOVED
    assert registry.active_schedules() == []
    # After compaction only the removal is left: it alone rebuilds the same state.
    again = fold_events([schedule_event(EventType.SCHEDULE_REMOVED, removed)])
    assert again.schedules == registry.schedules


def test_the_fold_skips_inconsistent_or_stale_schedule_events() -> None:
    created = record(interval_seconds=60)
    registry = Registry(epoch=2)
    bad = [
        make_event(EventType.SCHEDULE_CREATED, "schedule/other", "w1", created, epoch=2),
        schedule_event(EventType.SCHEDULE_REMOVED, created, epoch=2),  # no removed_at
        schedule_event(EventType.SCHEDULE_CREATED,
                       created.model_copy(update={"cron": "* * * * *"}), epoch=2),
    ]
    fold_events(bad, registry)
    assert registry.skipped_events == 3 and registry.schedules == {}
    apply_event(registry, schedule_event(EventType.SCHEDULE_CREATED, created, epoch=1))
    assert registry.stale_events == 1 and registry.schedules == {}
