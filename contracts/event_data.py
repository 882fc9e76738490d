"""Typed `data` of events: the shared base, and the records of the medallion's events
(backfills, expectation results, quality alerts).

`contracts.events` re-exports every name here; import them from there.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator


class EventData(BaseModel):
    """Base of every event's `data`: frozen, and fields it does not know are kept."""

    model_config = ConfigDict(frozen=True, extra="allow")


class ErrorInfo(EventData):
    code: str
    message: str


class BatchStatus(StrEnum):
    """Status of a batch, and of a backfill."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED)


ExpectationAction = Literal["warn", "drop", "fail"]
"""What a failing row of an expectation does: counted only, sent to quarantine, or stops
the stream (`stream.failed` with `EXPECTATION_FAILED`)."""

# An offset as the command gave it, in its JSON form: "earliest", "latest", a map
# partition -> offset, or an ISO-8601 timestamp.
OffsetJson = str | dict[str, int]
_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


class BackfillRecord(EventData):
    """Everything known about one backfill; carried whole by every `backfill.*` event."""

    backfill_id: str
    status: BatchStatus
    topic: str
    start_offset: OffsetJson = "earliest"
    end_offset: OffsetJson = "latest"
    # partition -> [start, end): the concrete offsets, once the range is resolved.
    resolved_offsets: dict[str, Annotated[list[int], Field(min_length=2, max_length=2)]] | None = (
        None
    )
    command_id: str | None = None
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    attempts: int = 0
    worker_id: str | None = None
    error: ErrorInfo | None = None
    records_read: int = 0
    bronze_new: int = 0  # records appended to bronze
    silver_new: int = 0  # rows appended to silver
    duplicates: int = 0  # valid records silver already had, or repeated in the range
    quarantined: int = 0  # records sent to quarantine: invalid + dropped by expectations
    chunks_done: int = 0
    chunks_total: int = 0
    # Records per chunk, fixed with the resolved range: a re-run cuts the same chunks.
    chunk_records: int | None = None

    @field_validator("start_offset", "end_offset", mode="before")
    @classmethod
    def _json_form(cls, value: Any) -> Any:
        """A timestamp given as a datetime is kept in the form the command's JSON has."""
        if isinstance(value, datetime):
            return _DATETIME.dump_python(value, mode="json")
        return value


class ExpectationResult(EventData):
    """One expectation checked over one micro-batch (`stream.progress` `quality`)."""

    layer: str
    expectation: str
    action: ExpectationAction
    rows_checked: int
    rows_failed: int
    metric: float | None = None
    passed: bool


class QualityAlertData(EventData):
    """`quality.alert` / `quality.recovered`: an expectation's failure rate over its window
    of micro-batches crossed its threshold (alert), or came back under it (recovered)."""

    layer: str
    expectation: str
    action: ExpectationAction
    threshold: float  # the failure-rate threshold, e.g. 0.01
    window_batches: int
    rows_checked: int  # over the window
    rows_failed: int  # over the window
    failure_rate: float
    micro_batch_id: int  # the micro-batch that crossed the threshold
    opened_at: datetime  # when the alert opened; on recovered, that of the alert it closes
    recovered_at: datetime | None = None  # set on quality.recovered only
