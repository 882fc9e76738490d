"""The registry fold: events in, current state out. One pure function, used by the
worker at start-up and by the CLI (`pipeline batch|backfill list/status`, `pipeline
quality alerts`).

The fold trusts nothing it reads: an event whose data does not validate, or whose type
and content disagree (a `batch.completed` without its result pointers), is skipped and
counted, and an event of a leadership epoch that has passed is ignored, so neither a
forged message nor a stale worker can mark a batch completed.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from contracts.errors import ContractError
from contracts.events import (
    BACKFILL_EVENT_FOR_STATUS,
    BATCH_EVENT_FOR_STATUS,
    BackfillRecord,
    BatchRecord,
    BatchStatus,
    Event,
    EventType,
    QualityAlertData,
    ScheduleRecord,
    ScheduleStatus,
    StreamState,
    backfill_subject,
    decode_event,
    envelope_fields,
    event_from_fields,
    quality_subject,
    schedule_subject,
)
from contracts.schedules import is_slot, parse_slot_batch_id

_COMMAND_OUTCOMES = (EventType.COMMAND_ACCEPTED, EventType.COMMAND_REJECTED)
_STREAM_STATES = {
    EventType.STREAM_STARTED: StreamState.RUNNING,
    EventType.STREAM_STOPPED: StreamState.STOPPED,
    EventType.STREAM_FAILED: StreamState.FAILED,
}
_STATUS_FOR_EVENT = {event: status for status, event in BATCH_EVENT_FOR_STATUS.items()}
_BACKFILL_STATUS_FOR_EVENT = {event: status
                              for status, event in BACKFILL_EVENT_FOR_STATUS.items()}
# Events that change what the worker does or reports; only the current epoch's count.
_FENCED = frozenset(t for t in EventType if t.value.startswith(
    ("batch.", "backfill.", "stream.", "command.", "quality.", "schedule.")))
_BATCH_EVENTS = frozenset(t for t in EventType if t.value.startswith("batch."))
_BACKFILL_EVENTS = frozenset(_BACKFILL_STATUS_FOR_EVENT)
_QUALITY_EVENTS = (EventType.QUALITY_ALERT, EventType.QUALITY_RECOVERED)
_SCHEDULE_STATUS_FOR_EVENT = {EventType.SCHEDULE_CREATED: ScheduleStatus.ACTIVE,
                              EventType.SCHEDULE_REMOVED: ScheduleStatus.REMOVED}
_WORKER_EVENTS = frozenset(t for t in EventType if t.value.startswith("worker."))


class CommandOutcome(NamedTuple):
    """The answer a command got, replayed verbatim when the same command_id comes again.
    (A tuple: a restart builds one per command of the last week, 10^6 of them.)"""

    command_id: str
    event_type: EventType
    data: dict[str, Any]
    answered_at: datetime | None = None


@dataclass(frozen=True)
class StreamDesire:
    """What the stream should be doing: the last lifecycle event and its options."""

    state: str
    data: dict[str, Any]


@dataclass
class Registry:
    batches: dict[str, BatchRecord] = field(default_factory=dict)
    backfills: dict[str, BackfillRecord] = field(default_factory=dict)
    # Open quality alerts by subject (`quality/<layer>/<expectation>`).
    quality_alerts: dict[str, QualityAlertData] = field(default_factory=dict)
    # Every schedule by id, removed ones too (status `removed`): its last_slot and
    # last_batch_id follow the batches named after its slots.
    schedules: dict[str, ScheduleRecord] = field(default_factory=dict)
    commands: dict[str, CommandOutcome] = field(default_factory=dict)
    streams: dict[str, StreamDesire] = field(default_factory=dict)
    last_progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers: dict[str, tuple[EventType, dict[str, Any]]] = field(default_factory=dict)
    events_seen: int = 0
    skipped_events: int = 0
    stale_events: int = 0
    epoch: int = 0  # the highest leadership epoch seen

    def batches_with(self, *statuses: BatchStatus) -> list[BatchRecord]:
        return [b for b in self.batches.values() if b.status in statuses]

    def backfills_with(self, *statuses: BatchStatus) -> list[BackfillRecord]:
        return [b for b in self.backfills.values() if b.status in statuses]

    def active_schedules(self) -> list[ScheduleRecord]:
        return [s for s in self.schedules.values() if s.status is ScheduleStatus.ACTIVE]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in BatchStatus}
        for record in self.batches.values():
            out[record.status.value] += 1
        return out


class InconsistentEvent(ValueError):
    """An event that decodes but cannot be true (its type and its data disagree)."""


def batch_record_of(event: Event) -> BatchRecord:
    """The batch record a `batch.*` event carries, checked against the event's type."""
    record = BatchRecord.model_validate(event.data)
    if _STATUS_FOR_EVENT.get(event.type) is not record.status:
        raise InconsistentEvent(f"{event.type} carries a {record.status} record")
    if event.subject != f"batch/{record.batch_id}":
        raise InconsistentEvent(f"{event.type} for {record.batch_id} keyed {event.subject}")
    if record.status is BatchStatus.COMPLETED and record.analysis_type == "train_fraud_model":
        if record.model is None or record.finished_at is None:  # its result is the model
            raise InconsistentEvent(f"batch.completed of {record.batch_id} lacks its model")
    elif record.status is BatchStatus.COMPLETED:
        missing = [a for a in record.analyses if a not in record.aggregated]
        if record.raw is None or record.finished_at is None or not record.analyses or missing:
            raise InconsistentEvent(f"batch.completed of {record.batch_id} lacks its results")
    return record


def backfill_record_of(event: Event) -> BackfillRecord:
    """The backfill record a `backfill.*` event carries, checked against the event."""
    record = BackfillRecord.model_validate(event.data)
    if _BACKFILL_STATUS_FOR_EVENT.get(event.type) is not record.status:
        raise InconsistentEvent(f"{event.type} carries a {record.status} record")
    if event.subject != backfill_subject(record.backfill_id):
        raise InconsistentEvent(f"{event.type} for {record.backfill_id} keyed {event.subject}")
    if record.status is BatchStatus.COMPLETED and (
            record.finished_at is None or record.resolved_offsets is None):
        raise InconsistentEvent(f"backfill.completed of {record.backfill_id} lacks its "
                                "end time or its resolved range")
    return record


def quality_alert_of(event: Event) -> QualityAlertData:
    """The alert a `quality.*` event carries: keyed by its expectation, and with
    `recovered_at` set exactly when it is a recovery."""
    alert = QualityAlertData.model_validate(event.data)
    if event.subject != quality_subject(alert.layer, alert.expectation):
        raise InconsistentEvent(f"{event.type} for {alert.layer}/{alert.expectation} keyed "
                                f"{event.subject}")
    if (alert.recovered_at is None) != (event.type is EventType.QUALITY_ALERT):
        raise InconsistentEvent(f"{event.type} with recovered_at {alert.recovered_at}")
    return alert


def schedule_record_of(event: Event) -> ScheduleRecord:
    """The schedule a `schedule.*` event carries: keyed by its id, and removed (with
    `removed_at`) exactly when the event is a removal."""
    record = ScheduleRecord.model_validate(event.data)
    if event.subject != schedule_subject(record.schedule_id):
        raise InconsistentEvent(f"{event.type} for {record.schedule_id} keyed {event.subject}")
    if _SCHEDULE_STATUS_FOR_EVENT[event.type] is not record.status or (
            (record.removed_at is None) != (record.status is ScheduleStatus.ACTIVE)):
        raise InconsistentEvent(f"{event.type} carries a {record.status} record "
                                f"(removed_at {record.removed_at})")
    if (record.interval_seconds is None) == (record.cron is None):
        raise InconsistentEvent(f"{event.type} of {record.schedule_id} needs exactly one of "
                                "interval_seconds and cron")
    return record


def _note_slot(registry: Registry, batch: BatchRecord) -> None:
    """A batch named after a slot of an active schedule moves its last slot forward.
    Only a real slot counts: one of the schedule's instants, not before it began, and not
    after the batch was submitted (a hand-made batch id must not skip future slots)."""
    parsed = parse_slot_batch_id(batch.batch_id)
    if parsed is None:
        return
    schedule_id, slot = parsed
    schedule = registry.schedules.get(schedule_id)
    if (schedule is None or schedule.status is not ScheduleStatus.ACTIVE
            or (schedule.last_slot is not None and schedule.last_slot >= slot)
            or not schedule.not_before <= slot <= batch.submitted_at
            or not is_slot(schedule, slot)):
        return
    registry.schedules[schedule_id] = schedule.model_copy(
        update={"last_slot": slot, "last_batch_id": batch.batch_id})


def apply_event(registry: Registry, event: Event) -> Registry:
    """Fold one event into `registry` (in place, for speed over 10^4+ events) and return it.

    Never raises on content: what cannot be applied is counted in `skipped_events`."""
    registry.events_seen += 1
    if _stale(registry, event.type, event.epoch):
        return registry
    try:
        _apply(registry, event)
    except (ValidationError, InconsistentEvent, TypeError, ValueError):
        registry.skipped_events += 1
    return registry


def _stale(registry: Registry, event_type: EventType, epoch: int | None) -> bool:
    if epoch is None:
        return False
    # Writers are fenced at the broker (one transactional id per group), so once an
    # epoch shows up, an older epoch's entity event can only be a forgery or a leak.
    if event_type in _FENCED and epoch < registry.epoch:
        registry.stale_events += 1
        return True
    if epoch > registry.epoch:
        registry.epoch = epoch
    return False


def _apply(registry: Registry, event: Event) -> None:
    if event.type in _COMMAND_OUTCOMES:
        _apply_answer(registry, event.type, event.command_id, event.data, event.occurred_at)
    elif event.type in _BATCH_EVENTS:
        record = batch_record_of(event)
        registry.batches[record.batch_id] = record
        if registry.schedules:
            _note_slot(registry, record)
    elif event.type in _BACKFILL_EVENTS:
        backfill = backfill_record_of(event)
        registry.backfills[backfill.backfill_id] = backfill
    elif event.type in _QUALITY_EVENTS:
        alert = quality_alert_of(event)
        if event.type is EventType.QUALITY_ALERT:
            registry.quality_alerts[event.subject] = alert
        else:
            registry.quality_alerts.pop(event.subject, None)
    elif event.type in _SCHEDULE_STATUS_FOR_EVENT:
        schedule = schedule_record_of(event)
        registry.schedules[schedule.schedule_id] = schedule
    elif event.type in _STREAM_STATES:
        registry.streams[event.subject] = StreamDesire(_STREAM_STATES[event.type], dict(event.data))
    elif event.type is EventType.STREAM_PROGRESS:
        registry.last_progress[event.subject] = dict(event.data)
    elif event.type in _WORKER_EVENTS:
        registry.workers[event.worker_id] = (event.type, dict(event.data))


def _apply_answer(registry: Registry, event_type: EventType, command_id: str | None,
                  data: dict[str, Any], answered_at: datetime) -> None:
    if not command_id or command_id in registry.commands:
        return
    if event_type is EventType.COMMAND_REJECTED and data.get("retryable"):
        return  # a temporary refusal is not the command's outcome: a retry may succeed
    # The first answer is the outcome. A duplicate's answer repeats it verbatim (its
    # `duplicate` flag is set again when it is replayed), so after compaction (same key,
    # latest wins) it still tells the original outcome.
    if data.get("duplicate"):  # rare: only a compacted duplicate's answer
        data = {k: v for k, v in data.items() if k != "duplicate"}
    registry.commands[command_id] = CommandOutcome(command_id, event_type, data, answered_at)


def expired_commands(registry: Registry, now: datetime, retention: timedelta,
                     ping_ttl: timedelta) -> list[str]:
    """Command ids whose answers may be removed from the compacted log: older than the
    commands topic's retention (the command can no longer be delivered again), or, for
    pings, older than `ping_ttl` (answering a ping twice is harmless)."""
    return [c.command_id for c in list(registry.commands.values())
            if c.answered_at is not None and c.answered_at < now - (
                ping_ttl if c.data.get("command_type") == "ping" else retention)]


def forget_command(registry: Registry, command_id: str) -> None:
    """Apply a tombstone of `command/<id>`: the answer is gone from the log."""
    registry.commands.pop(command_id, None)


def fold_events(events: Iterable[Event], registry: Registry | None = None) -> Registry:
    """Rebuild the registry from the event log, oldest first."""
    registry = registry if registry is not None else Registry()
    with _no_cyclic_gc():
        for event in events:
            apply_event(registry, event)
    return registry


def fold_values(values: Iterable[bytes], registry: Registry | None = None,
                on_bad_record: Callable[[bytes, ContractError], None] | None = None
                ) -> Registry:
    """`fold_events` over the raw values of the log, as a restart reads it. Command
    answers, most of a busy week's log, are applied straight from their JSON without
    building an Event; the rest are decoded as usual. Same result, same counts."""
    registry = registry if registry is not None else Registry()
    with _no_cyclic_gc():
        for raw in values:
            try:
                fields = envelope_fields(orjson.loads(raw))
            except orjson.JSONDecodeError:
                fields = None
            if fields is not None and fields.type in _COMMAND_OUTCOMES:
                registry.events_seen += 1
                if not _stale(registry, fields.type, fields.epoch):
                    _apply_answer(registry, fields.type, fields.command_id, fields.data,
                                  fields.occurred_at)
                continue
            try:
                event = event_from_fields(fields) if fields is not None else decode_event(raw)
            except ContractError as exc:
                registry.events_seen += 1
                registry.skipped_events += 1
                if on_bad_record is not None:
                    on_bad_record(raw, exc)
                continue
            apply_event(registry, event)
    return registry


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """A rebuild allocates millions of small objects that all stay alive: the cyclic
    collector would rescan the growing registry again and again (a fifth of the time)
    for nothing it could free."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
