"""Event envelope (`pipeline-events`) and the typed `data` of each event type.

The topic is compacted and keyed by `subject`; every `batch.*` event carries the full
`BatchRecord` and every `backfill.*` event the full `BackfillRecord`, so the latest event
per key is enough to rebuild the registry.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.commands import SCHEMA_VERSION, validation_message
from contracts.errors import ContractError, ErrorCode
from contracts.event_data import (  # defined there, part of this module's interface
    BackfillRecord,
    BatchStatus,
    ErrorInfo,
    ExpectationResult,
    QualityAlertData,
)
from contracts.event_data import EventData as _Data
from contracts.event_data import ExpectationAction as ExpectationAction
from contracts.fraud import ModelInfo
from contracts.schedules import ScheduleRecord as ScheduleRecord
from contracts.schedules import ScheduleStatus as ScheduleStatus
from contracts.schedules import schedule_subject as schedule_subject


class EventType(StrEnum):
    WORKER_STARTED = "worker.started"
    WORKER_HEARTBEAT = "worker.heartbeat"
    WORKER_PONG = "worker.pong"
    WORKER_STOPPING = "worker.stopping"
    WORKER_STOPPED = "worker.stopped"
    COMMAND_ACCEPTED = "command.accepted"
    COMMAND_REJECTED = "command.rejected"
    STREAM_STARTED = "stream.started"
    STREAM_PROGRESS = "stream.progress"
    STREAM_STOPPED = "stream.stopped"
    STREAM_FAILED = "stream.failed"
    BATCH_PENDING = "batch.pending"
    BATCH_RUNNING = "batch.running"
    BATCH_COMPLETED = "batch.completed"
    BATCH_FAILED = "batch.failed"
    BATCH_CANCELLED = "batch.cancelled"
    BACKFILL_PENDING = "backfill.pending"
    BACKFILL_RUNNING = "backfill.running"
    BACKFILL_COMPLETED = "backfill.completed"
    BACKFILL_FAILED = "backfill.failed"
    BACKFILL_CANCELLED = "backfill.cancelled"
    QUALITY_ALERT = "quality.alert"
    QUALITY_RECOVERED = "quality.recovered"
    SCHEDULE_CREATED = "schedule.created"
    SCHEDULE_REMOVED = "schedule.removed"
    MODEL_LOADED = "model.loaded"
    MODEL_FAILED = "model.failed"


BATCH_EVENT_FOR_STATUS: dict[BatchStatus, EventType] = {
    BatchStatus.PENDING: EventType.BATCH_PENDING,
    BatchStatus.RUNNING: EventType.BATCH_RUNNING,
    BatchStatus.COMPLETED: EventType.BATCH_COMPLETED,
    BatchStatus.FAILED: EventType.BATCH_FAILED,
    BatchStatus.CANCELLED: EventType.BATCH_CANCELLED,
}
BACKFILL_EVENT_FOR_STATUS: dict[BatchStatus, EventType] = {
    BatchStatus.PENDING: EventType.BACKFILL_PENDING,
    BatchStatus.RUNNING: EventType.BACKFILL_RUNNING,
    BatchStatus.COMPLETED: EventType.BACKFILL_COMPLETED,
    BatchStatus.FAILED: EventType.BACKFILL_FAILED,
    BatchStatus.CANCELLED: EventType.BACKFILL_CANCELLED,
}


class StreamState(StrEnum):
    """States of a stream query, as reported in health and lifecycle events."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  # the query died of a transient fault; it restarts by itself
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class TablePointer(_Data):
    """Where a result lives: an ordinary Delta table and the version written."""

    path: str
    version: int
    row_count: int | None = None


class BatchRecord(_Data):
    """Everything known about one batch; carried whole by every `batch.*` event."""

    batch_id: str
    status: BatchStatus
    analysis_type: str
    analyses: list[str] = Field(default_factory=list)
    source: dict[str, Any]
    filters: dict[str, Any] = Field(default_factory=dict)
    command_id: str | None = None
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    row_count: int | None = None
    raw: TablePointer | None = None
    aggregated: dict[str, TablePointer] = Field(default_factory=dict)
    error: ErrorInfo | None = None
    attempts: int = 0
    worker_id: str | None = None
    skipped_invalid_records: int | None = None
    # train_fraud_model: the model it stored (README.md#training-the-fraud-model).
    model: ModelInfo | None = None


class ModelEventData(_Data):
    """`model.loaded` / `model.failed`: the stream's fraud model changed, or a stored
    version could not be loaded (the stream keeps the model it had, or none)."""

    version: str
    path: str
    error: ErrorInfo | None = None


class StreamHealth(_Data):
    state: StreamState = StreamState.STOPPED
    query_id: str | None = None
    topic: str | None = None
    started_at: datetime | None = None
    last_progress: dict[str, Any] | None = None


class BatchCounts(_Data):
    pending: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0


class RegistryStats(_Data):
    """How the registry was rebuilt from the event log at start-up."""

    events: int = 0
    skipped_events: int = 0  # undecodable, invalid or inconsistent events, ignored
    stale_events: int = 0  # events of a worker whose leadership epoch had passed
    # events without a valid worker MAC (README.md#trusted-events), also in skipped_events
    untrusted_events: int = 0
    batches: int = 0
    seconds: float = 0.0


class WorkerHealth(_Data):
    """`worker.started` / `worker.heartbeat` / `worker.pong` / `worker.stopping|stopped`."""

    worker_id: str
    status: Literal["starting", "standby", "ready", "degraded", "stopping", "stopped"] = "ready"
    # Why the worker is degraded (e.g. events not acknowledged by Kafka); empty when healthy.
    degraded_reasons: list[str] = Field(default_factory=list)
    # The leadership epoch of an active worker (see `Event.epoch`); None while standby.
    epoch: int | None = None
    spark_alive: bool
    spark_version: str | None = None
    spark_master: str | None = None
    uptime_seconds: float
    stream: StreamHealth = StreamHealth()
    batches: BatchCounts = BatchCounts()
    kafka_bootstrap: str | None = None
    version: str | None = None
    # `worker.started` only: what the registry rebuild read (events, skipped, stale).
    registry: RegistryStats | None = None


class CommandAcceptedData(_Data):
    command_type: str
    batch_id: str | None = None
    backfill_id: str | None = None  # for `backfill` and `cancel_backfill`
    schedule_id: str | None = None  # for `schedule_batch` and `unschedule_batch`
    duplicate: bool = False


class CommandRejectedData(_Data):
    code: ErrorCode
    message: str
    # A temporary refusal (capacity, a stop in flight...): not the command's final outcome,
    # so the same command_id may be sent again once the condition clears.
    retryable: bool = False
    command_type: str | None = None
    duplicate: bool = False
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class StreamProgress(_Data):
    """`stream.progress`: one micro-batch of the ingest."""

    query_id: str
    batch_id: int
    rows_in: int
    rows_written: int
    rows_quarantined: int
    rows_per_second: float
    batch_duration_ms: int
    late_rows: int = 0
    offsets: dict[str, Any] = Field(default_factory=dict)
    total_rows_written: int = 0
    total_rows_quarantined: int = 0
    # Micro-batches whose DLQ copies could not be written yet (retried; quarantine has
    # the records).
    dlq_owed_batches: int = 0
    # `rows_written` counts the rows written to silver. Records appended to bronze:
    rows_bronze: int = 0
    # Valid records not written to silver: it already had the transaction_id, or the
    # id repeated within the micro-batch.
    duplicates: int = 0
    # Dropped by `drop` expectations (also counted in rows_quarantined).
    rows_dropped: int = 0
    total_duplicates: int = 0
    quality: list[ExpectationResult] = Field(default_factory=list)
    # Rows written per logical table name, e.g. {"silver.transactions": 97}.
    layers: dict[str, int] = Field(default_factory=dict)
    # Valid rows whose event time is more than the lateness horizon behind the newest
    # event time seen: in silver, but not re-scored into fraud and gold (README.md#late-data).
    too_late_rows: int = 0
    total_too_late_rows: int = 0
    # Per downstream table (gold.dashboard, gold.fraud_scores, gold.*): how many seconds
    # its content trails silver when this event is sent (0.0: it holds everything silver
    # holds).
    freshness_seconds: dict[str, float] = Field(default_factory=dict)


class StreamLifecycle(_Data):
    """`stream.started` / `stream.stopped` / `stream.failed`."""

    state: Literal[StreamState.RUNNING, StreamState.STOPPED, StreamState.FAILED]
    query_id: str | None = None
    topic: str | None = None
    starting_offsets: str | None = None
    trigger_seconds: float | None = None
    reason: str | None = None
    error: ErrorInfo | None = None
    # The stream's tables: logical name -> path.
    tables: dict[str, str] = Field(default_factory=dict)


EVENT_DATA_MODELS: dict[EventType, type[_Data]] = {
    EventType.WORKER_STARTED: WorkerHealth,
    EventType.WORKER_HEARTBEAT: WorkerHealth,
    EventType.WORKER_PONG: WorkerHealth,
    EventType.WORKER_STOPPING: WorkerHealth,
    EventType.WORKER_STOPPED: WorkerHealth,
    EventType.COMMAND_ACCEPTED: CommandAcceptedData,
    EventType.COMMAND_REJECTED: CommandRejectedData,
    EventType.STREAM_STARTED: StreamLifecycle,
    EventType.STREAM_PROGRESS: StreamProgress,
    EventType.STREAM_STOPPED: StreamLifecycle,
    EventType.STREAM_FAILED: StreamLifecycle,
    EventType.BATCH_PENDING: BatchRecord,
    EventType.BATCH_RUNNING: BatchRecord,
    EventType.BATCH_COMPLETED: BatchRecord,
    EventType.BATCH_FAILED: BatchRecord,
    EventType.BATCH_CANCELLED: BatchRecord,
    EventType.BACKFILL_PENDING: BackfillRecord,
    EventType.BACKFILL_RUNNING: BackfillRecord,
    EventType.BACKFILL_COMPLETED: BackfillRecord,
    EventType.BACKFILL_FAILED: BackfillRecord,
    EventType.BACKFILL_CANCELLED: BackfillRecord,
    EventType.QUALITY_ALERT: QualityAlertData,
    EventType.QUALITY_RECOVERED: QualityAlertData,
    EventType.SCHEDULE_CREATED: ScheduleRecord,
    EventType.SCHEDULE_REMOVED: ScheduleRecord,
    EventType.MODEL_LOADED: ModelEventData,
    EventType.MODEL_FAILED: ModelEventData,
}


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    type: EventType
    subject: str
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    worker_id: str
    command_id: str | None = None
    # Leadership epoch of the active worker that published it (one higher per takeover).
    # The registry fold ignores batch/stream/command events of an epoch that has passed.
    epoch: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @property
    def key(self) -> bytes:
        return self.subject.encode()

    def typed_data(self) -> Any:
        """`data` parsed with the model of this event type."""
        return EVENT_DATA_MODELS[self.type].model_validate(self.data)


def make_event(
    event_type: EventType,
    subject: str,
    worker_id: str,
    data: BaseModel | dict[str, Any],
    *,
    command_id: str | None = None,
    epoch: int | None = None,
) -> Event:
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return Event(type=event_type, subject=subject, worker_id=worker_id, command_id=command_id,
                 epoch=epoch, data=payload)


def decode_event(raw: bytes | None) -> Event:
    """Bytes -> Event, or `ContractError`. A restart folds every event of the log (10^6
    after a busy week), so the envelope of a well-formed event is checked by hand, which
    is several times faster than pydantic; anything unusual takes pydantic's full path,
    so both accept and reject the same messages. `data` is validated by its consumer."""
    if raw is None:
        raise ContractError(ErrorCode.INVALID_REQUEST, "a tombstone (null value), not an event")
    try:
        fields = envelope_fields(orjson.loads(raw))
    except orjson.JSONDecodeError:
        fields = None
    if fields is not None:
        return event_from_fields(fields)
    try:
        return Event.model_validate_json(raw)
    except ValidationError as exc:
        raise ContractError(ErrorCode.INVALID_REQUEST, validation_message(exc)) from None


_EVENT_TYPES: dict[str, EventType] = {t.value: t for t in EventType}


class EnvelopeFields(NamedTuple):
    type: EventType
    event_id: str
    subject: str
    worker_id: str
    occurred_at: datetime
    command_id: str | None
    epoch: int | None
    data: dict[str, Any]


def envelope_fields(obj: Any) -> EnvelopeFields | None:
    """A parsed event's envelope when every field has exactly its type, else None (then
    pydantic's full validation decides, e.g. it keeps naive datetimes naive)."""
    try:
        event_type = _EVENT_TYPES[obj["type"]]
        event_id, subject, worker_id = obj["event_id"], obj["subject"], obj["worker_id"]
        occurred_at = datetime.fromisoformat(obj["occurred_at"])
        version = obj["schema_version"]
    except (TypeError, KeyError, ValueError):
        return None
    command_id, epoch, data = obj.get("command_id"), obj.get("epoch"), obj.get("data", {})
    if (version != 1 or type(version) is not int or type(event_id) is not str
            or type(subject) is not str or type(worker_id) is not str
            or (command_id is not None and type(command_id) is not str)
            or (epoch is not None and type(epoch) is not int)
            or type(data) is not dict or occurred_at.tzinfo is None):
        return None
    return EnvelopeFields(event_type, event_id, subject, worker_id, occurred_at, command_id,
                          epoch, data)


def event_from_fields(fields: EnvelopeFields) -> Event:
    # What `model_construct` does, without its per-call overhead (3x the whole decode).
    event = object.__new__(Event)
    object.__setattr__(event, "__dict__", {
        "schema_version": 1, "event_id": fields.event_id, "type": fields.type,
        "subject": fields.subject, "occurred_at": fields.occurred_at,
        "worker_id": fields.worker_id, "command_id": fields.command_id,
        "epoch": fields.epoch, "data": fields.data})
    object.__setattr__(event, "__pydantic_fields_set__", _EVENT_FIELDS)
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", None)
    return event


_EVENT_FIELDS = frozenset(Event.model_fields)


def batch_subject(batch_id: str) -> str:
    return f"batch/{batch_id}"


def backfill_subject(backfill_id: str) -> str:
    return f"backfill/{backfill_id}"


def quality_subject(layer: str, expectation: str) -> str:
    """One key per expectation: its latest alert or recovery is what compaction keeps."""
    return f"quality/{layer}/{expectation}"


def model_subject(name: str = "fraud") -> str:
    return f"model/{name}"


def stream_subject(name: str = "transactions") -> str:
    return f"stream/{name}"


def stream_progress_subject(name: str = "transactions") -> str:
    """Progress has its own key: on the compacted topic it must not replace the stream's
    lifecycle event, which carries the desired state a restart resumes."""
    return f"stream/{name}/progress"


def worker_subject(worker_id: str) -> str:
    return f"worker/{worker_id}"


def command_subject(command_id: str) -> str:
    return f"command/{command_id}"
