"""What the published schemas say about schedules: the intent of `schedule_batch` /
`unschedule_batch` and of the `schedule.*` events, and their examples (built through the
contract by the builders `contracts.schema_export` passes in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.commands import CommandType
from contracts.events import EventType
from contracts.schedules import ScheduleRecord, ScheduleStatus, schedule_subject

Example = tuple[str, str, dict[str, Any]]  # (name, summary, message)
CommandBuilder = Callable[[CommandType, str, dict[str, Any]], dict[str, Any]]
EventBuilder = Callable[..., dict[str, Any]]

WORKER_ID = "worker-1"

COMMAND_DOCS: dict[CommandType, str] = {
    CommandType.SCHEDULE_BATCH: (
        "Run a batch on every slot of an interval or a cron expression (UTC); each slot's "
        "batch is named `<schedule_id>-<YYYYMMDDTHHMMSSZ>` and runs once."
    ),
    CommandType.UNSCHEDULE_BATCH: (
        "Remove a schedule: no further slot is submitted (submitted batches go on)."
    ),
}
EVENT_DOCS: dict[EventType, str] = {
    EventType.SCHEDULE_CREATED: "A schedule was created; carries the full schedule record.",
    EventType.SCHEDULE_REMOVED: (
        "A schedule was removed; the record keeps its definition and its last slot."
    ),
}
_TEMPLATE = {
    "analysis_type": "revenue_by_region",
    "source": {"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-12-31"},
    "filters": {"channel": "web"},
}


def command_examples(command: CommandBuilder) -> dict[CommandType, list[Example]]:
    c = CommandType
    return {
        c.SCHEDULE_BATCH: [
            (
                "schedule_hourly",
                "Web revenue by region, every hour on the hour",
                command(c.SCHEDULE_BATCH, "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a20",
                        {"schedule_id": "hourly-web", "interval_seconds": 3600,
                         "batch": _TEMPLATE}),
            ),
            (
                "schedule_cron",
                "A full report at 02:00 UTC on weekdays",
                command(c.SCHEDULE_BATCH, "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a21",
                        {"schedule_id": "nightly-report", "cron": "0 2 * * MON-FRI",
                         "batch": {"analysis_type": "full_report",
                                   "source": {"kind": "kafka",
                                              "topic": "transactions-batch"}}}),
            ),
        ],
        c.UNSCHEDULE_BATCH: [
            (
                "unschedule",
                "Stop the hourly schedule",
                command(c.UNSCHEDULE_BATCH, "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a22",
                        {"schedule_id": "hourly-web"}),
            )
        ],
    }


def event_examples(event: EventBuilder, schedule: dict[str, Any],
                   unschedule: dict[str, Any]) -> dict[EventType, list[Example]]:
    """`schedule` / `unschedule`: the first command examples, whose events these are."""
    e = EventType
    payload = schedule["payload"]
    created = ScheduleRecord(
        schedule_id=payload["schedule_id"], interval_seconds=payload["interval_seconds"],
        batch=payload["batch"],
        created_at="2025-01-15T14:42:10.250Z", command_id=schedule["command_id"],
        worker_id=WORKER_ID, next_slot="2025-01-15T15:00:00Z")
    removed = ScheduleRecord.model_validate({
        **created.model_dump(), "status": ScheduleStatus.REMOVED,
        "removed_at": "2025-01-16T09:12:40.080Z", "next_slot": None,
        "last_slot": "2025-01-16T09:00:00Z", "last_batch_id": "hourly-web-20250116T090000Z"})
    subject = schedule_subject(created.schedule_id)
    return {
        e.SCHEDULE_CREATED: [
            (
                "schedule_created",
                "An hourly schedule; its first slot is 15:00 UTC",
                event(e.SCHEDULE_CREATED, subject, "2025-01-15T14:42:10.262Z", created,
                      event_id="0b9d7a61-7f0e-4d42-b1c5-000000000020",
                      command_id=schedule["command_id"]),
            )
        ],
        e.SCHEDULE_REMOVED: [
            (
                "schedule_removed",
                "The schedule removed after its 09:00 slot",
                event(e.SCHEDULE_REMOVED, subject, "2025-01-16T09:12:40.091Z", removed,
                      event_id="0b9d7a61-7f0e-4d42-b1c5-000000000021",
                      command_id=unschedule["command_id"]),
            )
        ],
    }
