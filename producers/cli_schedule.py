"""`pipeline schedule ...`: recurring batches.

`add` sends `schedule_batch` (a batch template plus `--every` or `--cron`), `remove` sends
`unschedule_batch`, `list` reads the schedules from the event log. Like `pipeline batch
run`, the CLI picks the command_id before sending and re-sends the same command when no
answer comes; `--json` prints one object on stdout. Exit codes: 0 ok, 1 rejected,
2 usage, 3 timed out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import typer

from contracts.commands import AnalysisType
from contracts.events import EventType
from contracts.schedules import ScheduleRecord, ScheduleStatus, next_slot

schedule_app = typer.Typer(help="Recurring batches: a batch on every slot of an interval "
                                "or a cron expression (UTC).")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `pipeline` app."""
    app.add_typer(schedule_app, name="schedule")


# `producers.cli` registers this module at its end: with the app and `register` defined
# above, importing this module first works too.
from producers.cli import (  # noqa: E402
    CommandIdOpt,
    JsonOpt,
    RetriesOpt,
    _delivery,
    _fail,
    _parse_filters,
    _parse_offset,
    _registry,
    _send_and_answer,
    _settings,
)
from producers.client import WorkerClient  # noqa: E402
from producers.output import EXIT_USAGE, print_json, print_table  # noqa: E402

_DURATION_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
LIST_COLUMNS = ["schedule_id", "status", "cadence", "analysis", "next_slot", "last_slot",
                "last_batch", "last_status"]


def parse_duration(text: str) -> int:
    """`90`, `90s`, `30m`, `1h`, `1h30m`, `1d` -> seconds; ValueError otherwise."""
    value = text.strip().lower()
    if value.isdigit():
        return int(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r} is not a duration: use e.g. 90s, 30m, 1h, 1h30m, 1d")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def batch_source(kafka_topic: str | None, start_offset: str | None, end_offset: str | None,
                 from_date: str | None, to_date: str | None, as_json: bool) -> dict[str, Any]:
    """The source of `pipeline batch run`, from the same options."""
    if kafka_topic and (from_date or to_date):
        raise _fail("give either --kafka-topic or --from-date/--to-date", as_json, EXIT_USAGE)
    if kafka_topic:
        source: dict[str, Any] = {"kind": "kafka", "topic": kafka_topic}
        if start_offset is not None:
            source["start_offset"] = _parse_offset(start_offset, "--start-offset", as_json)
        if end_offset is not None:
            source["end_offset"] = _parse_offset(end_offset, "--end-offset", as_json)
        return source
    if from_date and to_date:
        return {"kind": "delta", "start_date": from_date, "end_date": to_date}
    raise _fail("give --kafka-topic T, or --from-date D --to-date D", as_json, EXIT_USAGE)


def schedule_view(record: ScheduleRecord, batches: dict[str, Any],
                  now: datetime) -> dict[str, Any]:
    """The record as the CLI shows it: `next_slot` computed for now, and the status of
    the last slot's batch."""
    out = record.model_dump(mode="json")
    active = record.status is ScheduleStatus.ACTIVE
    out["next_slot"] = next_slot(record, now).isoformat() if active else None
    last = batches.get(record.last_batch_id or "")
    out["last_batch_status"] = None if last is None else last.status.value
    return out


@schedule_app.command("add")
def schedule_add(
    schedule_id: str = typer.Option(..., "--id", help="Schedule id (1-47 of A-Z a-z 0-9 _ -); "
                                    "each slot's batch is <id>-<YYYYMMDDTHHMMSSZ>."),
    every: str | None = typer.Option(None, "--every", help="Interval: 90s, 30m, 1h, 1d... "
                                     "(at least 10 s); slots on multiples since the epoch."),
    cron: str | None = typer.Option(None, "--cron", help="Five-field cron expression, UTC, "
                                    "e.g. '0 2 * * *'."),
    start_at: str | None = typer.Option(
        None, help="ISO-8601 time with a zone: no slot before it; with --every, also the "
                   "anchor of the slots (default: now, and the epoch as anchor)."),
    analysis: AnalysisType = typer.Option(..., "--analysis", help="Analysis type."),
    kafka_topic: str | None = typer.Option(None, help="Read a bounded Kafka range."),
    start_offset: str | None = typer.Option(
        None, help="earliest | latest | per-partition JSON | timestamp (ISO or epoch ms)."),
    end_offset: str | None = typer.Option(None, help="Like --start-offset (default latest)."),
    from_date: str | None = typer.Option(None, help="Delta history start date (YYYY-MM-DD)."),
    to_date: str | None = typer.Option(None, help="Delta history end date, inclusive."),
    filter_: list[str] = typer.Option([], "--filter", help="key=value (repeat; a,b = IN)."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for the answer."),
    retries: int = RetriesOpt,
    command_id: str | None = CommandIdOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run a batch on every slot of an interval (--every) or a cron expression (--cron)."""
    if (every is None) == (cron is None):
        raise _fail("give exactly one of --every and --cron", as_json, EXIT_USAGE)
    payload: dict[str, Any] = {"schedule_id": schedule_id, "batch": {
        "analysis_type": analysis.value,
        "source": batch_source(kafka_topic, start_offset, end_offset, from_date, to_date,
                               as_json),
        "filters": _parse_filters(filter_, as_json)}}
    if every is not None:
        try:
            payload["interval_seconds"] = parse_duration(every)
        except ValueError as exc:
            raise _fail(f"--every: {exc}", as_json, EXIT_USAGE) from None
    else:
        payload["cron"] = cron
    if start_at is not None:
        payload["start_at"] = start_at
    client = WorkerClient(_settings())
    sent, answer = _send_and_answer(client, "schedule_batch", payload, as_json, timeout,
                                    retries=retries, command_id=command_id)
    sid = answer.data.get("schedule_id") or schedule_id
    known = client.registry().schedules.get(sid) if answer.data.get("duplicate") else None
    if known is None:
        created = client.wait(sent, lambda e: e.type is EventType.SCHEDULE_CREATED
                              and e.data.get("schedule_id") == sid, timeout)
        known = None if created is None else ScheduleRecord.model_validate(created.data)
    record = (schedule_view(known, {}, datetime.now(UTC)) if known is not None
              else {"schedule_id": sid, "status": "active"})
    print_schedule(record, as_json, _delivery(sent, answer))


@schedule_app.command("remove")
def schedule_remove(schedule_id: str,
                    timeout: float = typer.Option(30.0, help="Seconds to wait for the answer."),
                    retries: int = RetriesOpt, command_id: str | None = CommandIdOpt,
                    as_json: bool = JsonOpt) -> None:
    """Stop a schedule: no further slot is submitted (batches already submitted go on;
    `pipeline batch cancel` stops one)."""
    client = WorkerClient(_settings())
    sent, answer = _send_and_answer(client, "unschedule_batch", {"schedule_id": schedule_id},
                                    as_json, timeout, retries=retries, command_id=command_id)
    removed = client.wait(sent, lambda e: e.type is EventType.SCHEDULE_REMOVED
                          and e.data.get("schedule_id") == schedule_id, timeout) \
        if not answer.data.get("duplicate") else None
    record = removed.data if removed is not None else {"schedule_id": schedule_id,
                                                       "status": "removed"}
    print_schedule(record, as_json, _delivery(sent, answer))


@schedule_app.command("list")
def schedule_list(show_all: bool = typer.Option(False, "--all", help="Removed ones too."),
                  as_json: bool = JsonOpt) -> None:
    """Schedules known to the event log: cadence, next slot, last slot and its batch."""
    registry = _registry(as_json)
    now = datetime.now(UTC)
    records = [schedule_view(r, registry.batches, now)
               for r in sorted(registry.schedules.values(), key=lambda r: r.schedule_id)
               if show_all or r.status is ScheduleStatus.ACTIVE]
    if as_json:
        print_json({"ok": True, "total": len(records), "schedules": records})
        return
    print_table([{"schedule_id": r["schedule_id"], "status": r["status"],
                  "cadence": f"cron {r['cron']}" if r.get("cron")
                  else f"every {r['interval_seconds']}s",
                  "analysis": r["batch"].get("analysis_type"), "next_slot": r["next_slot"],
                  "last_slot": r["last_slot"], "last_batch": r["last_batch_id"],
                  "last_status": r["last_batch_status"]} for r in records],
                LIST_COLUMNS, title=f"{len(records)} schedule(s)")


def print_schedule(record: dict[str, Any], as_json: bool,
                   delivery: dict[str, Any] | None = None) -> None:
    if as_json:
        out = {"ok": True, **record}
        if delivery is not None:
            out["delivery"] = delivery
        print_json(out)
        return
    rows = [{"field": k, "value": v} for k, v in record.items() if v not in (None, {}, [])]
    print_table(rows, ["field", "value"], title=f"schedule {record.get('schedule_id')}")
