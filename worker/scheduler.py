"""Recurring batches: `schedule_batch` / `unschedule_batch`, and a thread that submits
each due slot of every active schedule as a batch.

State lives in the event log like everything else: `schedule.created` and
`schedule.removed` carry the whole `ScheduleRecord`, and a slot's batch is named after the
slot (`<schedule_id>-<YYYYMMDDTHHMMSSZ>`), so "has this slot run?" is "is that batch in the
registry?". A restart (or a standby taking over) therefore resumes from the registry: the
slots between a schedule's newest batch and now are submitted once each, at most the
`MAX_CATCH_UP_SLOTS` most recent, and none twice. Batches go through the same
`BatchRunner.prepare_submit` path as a `run_batch` command, so they obey the same pending
limit (a refused slot is tried again on the next tick) and publish the same events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from contracts.commands import RunBatchPayload, ScheduleBatchPayload
from contracts.errors import ErrorCode
from contracts.events import EventType
from contracts.registry import Registry
from contracts.schedules import (
    MAX_CATCH_UP_SLOTS,
    ScheduleRecord,
    ScheduleStatus,
    due_slots,
    first_slot,
    schedule_subject,
    slot_batch_id,
)
from contracts.settings import Settings
from worker.batch_runner import BatchRunner
from worker.errors import CommandRefused
from worker.publisher import EventPublisher

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# A slot refused for capacity is retried every tick; its warning repeats at most this often.
REFUSAL_LOG_SECONDS = 60.0


class Scheduler:
    def __init__(self, settings: Settings, publisher: EventPublisher,
                 batches: BatchRunner) -> None:
        self.settings = settings
        self.publisher = publisher
        self.batches = batches
        # The newest record this worker published per schedule, and the newest slot it
        # submitted: the registry follows only once Kafka has acknowledged the events.
        self._published: dict[str, ScheduleRecord] = {}
        self._submitted: dict[str, datetime] = {}
        self._refusal_logged: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def registry(self) -> Registry:
        return self.publisher.registry

    def record(self, schedule_id: str) -> ScheduleRecord | None:
        """The current record: the registry's once it has caught up with this worker's."""
        with self._lock:
            own = self._published.get(schedule_id)
        known = self.registry.schedules.get(schedule_id)
        if own is None or (known is not None and known.created_at == own.created_at
                           and known.status is own.status):
            return known
        return own

    def active(self) -> list[ScheduleRecord]:
        with self._lock:
            ids = set(self._published)
        ids.update(list(self.registry.schedules))
        records = (self.record(i) for i in sorted(ids))
        return [r for r in records if r is not None and r.status is ScheduleStatus.ACTIVE]

    # ---- commands ----------------------------------------------------------------------

    def prepare_create(self, payload: ScheduleBatchPayload,
                       command_id: str | None) -> Callable[[], None]:
        schedule_id = payload.schedule_id
        record = ScheduleRecord(
            schedule_id=schedule_id, interval_seconds=payload.interval_seconds,
            cron=payload.cron, batch=payload.batch.model_dump(mode="json",
                                                              exclude={"batch_id"}),
            start_at=payload.start_at, created_at=datetime.now(UTC), command_id=command_id,
            worker_id=self.settings.worker_id)
        existing = self.record(schedule_id)
        if existing is not None and existing.status is ScheduleStatus.ACTIVE:
            same = existing.definition() == record.definition()
            raise CommandRefused(ErrorCode.SCHEDULE_ALREADY_EXISTS, (
                f"schedule {schedule_id!r} already exists "
                + ("with this same definition" if same else
                   "with a different definition; unschedule_batch it first to change it")))
        record = record.model_copy(update={"next_slot": first_slot(record)})

        def create() -> None:
            with self._lock:
                self._submitted.pop(schedule_id, None)
            self._publish(EventType.SCHEDULE_CREATED, record, command_id)
            log.info("schedule %s created; first slot %s", schedule_id,
                     record.next_slot)

        return create

    def prepare_remove(self, schedule_id: str, command_id: str | None) -> Callable[[], None]:
        existing = self.record(schedule_id)
        if existing is None or existing.status is not ScheduleStatus.ACTIVE:
            raise CommandRefused(ErrorCode.SCHEDULE_NOT_FOUND, f"no schedule {schedule_id!r}" + (
                f" (removed at {existing.removed_at:%Y-%m-%dT%H:%M:%SZ})" if existing else ""))

        def remove() -> None:
            current = self.record(schedule_id) or existing
            last = self._last_slot(current)
            self._publish(EventType.SCHEDULE_REMOVED, current.model_copy(update={
                "status": ScheduleStatus.REMOVED, "removed_at": datetime.now(UTC),
                "next_slot": None, "last_slot": last,
                "last_batch_id": slot_batch_id(schedule_id, last) if last else None}),
                command_id)
            log.info("schedule %s removed", schedule_id)

        return remove

    # ---- lifecycle ---------------------------------------------------------------------

    def resume(self, registry: Registry) -> None:
        """Start ticking: the first tick submits every slot missed while no worker was
        active (from `registry`, the log as this worker read it)."""
        for record in registry.active_schedules():
            log.info("schedule %s active; last slot %s", record.schedule_id, record.last_slot)
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop submitting slots (before batches drain, so nothing new starts)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.publisher.fenced:
                return  # leadership is gone: the new active worker schedules
            try:
                self.tick()
            except Exception:  # never let one bad tick end scheduling
                log.exception("scheduler tick failed")
            self._stop.wait(TICK_SECONDS)

    # ---- slots -------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[str]:
        """Submit every due slot; returns the batch ids submitted."""
        now = now or datetime.now(UTC)
        submitted: list[str] = []
        for record in self.active():
            if self._stop.is_set():
                break
            submitted += self._submit_due(record, now)
        return submitted

    def _last_slot(self, record: ScheduleRecord) -> datetime | None:
        with self._lock:
            mine = self._submitted.get(record.schedule_id)
        known = [s for s in (record.last_slot, mine)
                 if s is not None and s >= record.not_before]
        return max(known, default=None)

    def _submit_due(self, record: ScheduleRecord, now: datetime) -> list[str]:
        sid = record.schedule_id
        slots, clipped = due_slots(record, now, after=self._last_slot(record))
        if clipped:
            log.warning("schedule %s missed more than %d slots: only the %d most recent "
                        "(from %s) run", sid, MAX_CATCH_UP_SLOTS, len(slots), slots[0])
        submitted = []
        for slot in slots:
            batch_id = slot_batch_id(sid, slot)
            if batch_id not in self.registry.batches:
                payload = RunBatchPayload.model_validate({**record.batch, "batch_id": batch_id})
                try:
                    _, submit = self.batches.prepare_submit(payload, record.command_id)
                except CommandRefused as exc:
                    if exc.code is not ErrorCode.BATCH_ALREADY_EXISTS:
                        self._log_refusal(sid, batch_id, exc)
                        break  # in order: this slot first, on the next tick
                else:
                    submit()
                    submitted.append(batch_id)
                    log.info("schedule %s: slot %s submitted as batch %s", sid, slot, batch_id)
            with self._lock:
                self._submitted[sid] = slot
        return submitted

    def _log_refusal(self, sid: str, batch_id: str, exc: CommandRefused) -> None:
        now = time.monotonic()
        if now - self._refusal_logged.get(sid, -REFUSAL_LOG_SECONDS) >= REFUSAL_LOG_SECONDS:
            self._refusal_logged[sid] = now
            log.warning("schedule %s: batch %s not submitted yet (%s: %s); retrying",
                        sid, batch_id, exc.code, exc.message)

    def _publish(self, event_type: EventType, record: ScheduleRecord,
                 command_id: str | None) -> None:
        with self._lock:
            self._published[record.schedule_id] = record
        self.publisher.publish(event_type, schedule_subject(record.schedule_id), record,
                               command_id=command_id)
