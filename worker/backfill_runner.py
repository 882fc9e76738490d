"""Backfills: a bounded Kafka range replayed through bronze, silver and everything after
them, in `batch-pool`, next to the running stream.

One backfill runs at a time (a thread of its own), chunk by chunk: each chunk is one
medallion write whose idempotency key is (`pipeline-backfill-<id>`, chunk number), so a
chunk that was half written when the worker died is completed, never applied twice, when
the backfill runs again after a restart (from the chunk its last event reported). The
range is resolved to concrete offsets before the first chunk and carried in the events.
Already ingested records add nothing: bronze and quarantine keep a record once per
(topic, partition, offset) and silver once per transaction_id.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from contracts.commands import BackfillPayload
from contracts.errors import ErrorCode
from contracts.events import (
    BACKFILL_EVENT_FOR_STATUS,
    BackfillRecord,
    BatchStatus,
    ErrorInfo,
    backfill_subject,
)
from contracts.registry import Registry
from contracts.settings import Settings
from worker.dlq import DlqForwarder
from worker.downstream import Downstream
from worker.errors import CommandRefused, is_source_error, short_message
from worker.kafka_range import as_json, chunk_range, from_json, resolve_range, spark_options
from worker.medallion import Medallion, WriteRun
from worker.publisher import EventPublisher
from worker.quality.checks import ExpectationFailed
from worker.spark_session import BATCH_POOL

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


# At most this many records per chunk: the stream waits while a chunk writes the layers
# (one writer at a time keeps every record once), so a chunk stays a few seconds long.
CHUNK_RECORDS = 50_000


class BackfillCancelled(Exception):
    pass


class BackfillRunner:
    def __init__(self, spark: SparkSession, settings: Settings, publisher: EventPublisher,
                 medallion: Medallion, downstream: Downstream) -> None:
        self.spark = spark
        self.settings = settings
        self.publisher = publisher
        self.medallion = medallion
        self.downstream = downstream
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="backfill")
        self._records: dict[str, BackfillRecord] = {}
        self._futures: dict[str, Future[None]] = {}
        self._tags: dict[str, str] = {}
        self._cancel_requested: set[str] = set()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._dlq: DlqForwarder | None = None

    def _record(self, backfill_id: str) -> BackfillRecord | None:
        with self._lock:
            record = self._records.get(backfill_id)
        return record or self.publisher.registry.backfills.get(backfill_id)

    # ---- commands ----------------------------------------------------------------------

    def prepare_submit(self, payload: BackfillPayload,
                       command_id: str | None) -> tuple[str, Callable[[], None]]:
        backfill_id = payload.backfill_id or \
            f"backfill-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        existing = self._record(backfill_id)
        if existing is not None:
            raise CommandRefused(ErrorCode.BACKFILL_ALREADY_EXISTS,
                                 f"backfill {backfill_id!r} already exists "
                                 f"(status {existing.status})")
        waiting = len(self.publisher.registry.backfills_with(BatchStatus.PENDING))
        if waiting >= self.settings.max_pending_batches:
            raise CommandRefused(ErrorCode.CAPACITY_EXCEEDED,
                                 f"{waiting} backfills are already waiting; the limit is "
                                 f"{self.settings.max_pending_batches}", retryable=True)
        record = BackfillRecord(
            backfill_id=backfill_id, status=BatchStatus.PENDING, topic=payload.topic,
            start_offset=payload.start_offset,  # type: ignore[arg-type]
            end_offset=payload.end_offset,  # type: ignore[arg-type]
            command_id=command_id, submitted_at=datetime.now(UTC),
            worker_id=self.settings.worker_id)

        def submit() -> None:
            self._publish(record)
            self._schedule(record, payload)

        return backfill_id, submit

    def prepare_cancel(self, backfill_id: str, command_id: str | None) -> Callable[[], None]:
        record = self._record(backfill_id)
        if record is None:
            raise CommandRefused(ErrorCode.BACKFILL_NOT_FOUND, f"no backfill {backfill_id!r}")
        if record.status.terminal:
            raise CommandRefused(ErrorCode.BACKFILL_NOT_CANCELLABLE,
                                 f"backfill {backfill_id!r} already ended ({record.status})")
        return lambda: self._cancel(backfill_id)

    def resume(self, registry: Registry) -> None:
        """Run again what a previous worker left pending or running, from the chunk its
        last event reported done."""
        limit = self.settings.batch_max_attempts
        unfinished = registry.backfills_with(BatchStatus.PENDING, BatchStatus.RUNNING)
        for record in sorted(unfinished, key=lambda r: r.submitted_at):
            if record.attempts >= limit:
                self._publish(record.model_copy(update={
                    "status": BatchStatus.FAILED, "finished_at": datetime.now(UTC),
                    "error": ErrorInfo(code=ErrorCode.ATTEMPTS_EXHAUSTED, message=(
                        f"the backfill was interrupted on {record.attempts} attempts "
                        f"(limit {limit}, PIPELINE_BATCH_MAX_ATTEMPTS)"))}))
                continue
            try:
                payload = BackfillPayload.model_validate({
                    "backfill_id": record.backfill_id, "topic": record.topic,
                    "start_offset": record.start_offset, "end_offset": record.end_offset})
            except Exception as exc:
                self._publish(record.model_copy(update={
                    "status": BatchStatus.FAILED, "finished_at": datetime.now(UTC),
                    "error": ErrorInfo(code=ErrorCode.INVALID_REQUEST,
                                       message=short_message(exc))}))
                continue
            log.info("resuming backfill %s at chunk %d", record.backfill_id,
                     record.chunks_done)
            with self._lock:
                self._records[record.backfill_id] = record
            self._schedule(record, payload)

    def shutdown(self, timeout: float) -> None:
        """Stop at once: the running chunk is cancelled and the backfill stays running in
        the log, so the next worker resumes it (its chunk writes are idempotent)."""
        self._stopping.set()
        with self._lock:
            tags = list(self._tags.values())
        for tag in tags:
            self.spark.sparkContext.cancelJobsWithTag(tag)
        self._pool.shutdown(wait=timeout > 0, cancel_futures=True)
        if self._dlq is not None:
            self._dlq.close()

    # ---- execution ---------------------------------------------------------------------

    def _schedule(self, record: BackfillRecord, payload: BackfillPayload) -> None:
        future = self._pool.submit(self._run, record.backfill_id, payload)
        with self._lock:
            self._futures[record.backfill_id] = future

    def _run(self, backfill_id: str, payload: BackfillPayload) -> None:
        record = self._record(backfill_id)
        if record is None or record.status.terminal or self._stopping.is_set():
            return
        sc = self.spark.sparkContext
        tag = f"pipeline-backfill-{backfill_id}-{uuid.uuid4().hex[:8]}"
        sc.setLocalProperty("spark.scheduler.pool", BATCH_POOL)
        sc.setInterruptOnCancel(True)
        sc.clearJobTags()
        sc.addJobTag(tag)
        with self._lock:
            self._tags[backfill_id] = tag
        started = datetime.now(UTC)
        record = self._publish(record.model_copy(update={
            "status": BatchStatus.RUNNING, "started_at": record.started_at or started,
            "attempts": record.attempts + 1, "error": None,
            "worker_id": self.settings.worker_id}))
        status, error = BatchStatus.COMPLETED, None
        try:
            record = self._execute(record, payload)
        except Exception as exc:
            record = self._record(backfill_id) or record
            if self._stopping.is_set() and backfill_id not in self._cancel_requested:
                log.info("backfill %s interrupted by shutdown; the next start resumes it",
                         backfill_id)
                return
            status, error = self._classify(backfill_id, exc)
        finally:
            sc.removeJobTag(tag)
            with self._lock:
                self._tags.pop(backfill_id, None)
                self._futures.pop(backfill_id, None)
        finished = datetime.now(UTC)
        self._publish(record.model_copy(update={
            "status": status, "error": error, "finished_at": finished,
            "duration_seconds": round((finished - started).total_seconds(), 3)}))
        log.info("backfill %s %s", backfill_id, status)

    def _execute(self, record: BackfillRecord, payload: BackfillPayload) -> BackfillRecord:
        backfill_id = record.backfill_id
        self._check(backfill_id)
        if record.resolved_offsets is None or record.chunk_records is None:
            full = resolve_range(self.settings, payload.topic, payload.start_offset,
                                 payload.end_offset)
            record = self._publish(record.model_copy(update={
                "resolved_offsets": as_json(full), "chunks_done": 0,
                "chunk_records": min(self.settings.max_offsets_per_trigger, CHUNK_RECORDS)}))
        else:
            full = from_json(record.resolved_offsets)
        # The chunk size is the recorded one, whatever the settings say now: a chunk's
        # idempotency key must always stand for the same records.
        chunks = chunk_range(full, record.chunk_records or CHUNK_RECORDS)
        record = self._publish(record.model_copy(update={"chunks_total": len(chunks)}))
        app_id = f"pipeline-backfill-{backfill_id}"
        for index in range(record.chunks_done, len(chunks)):
            self._check(backfill_id)
            df = (self.spark.read.format("kafka")
                  .options(**self.settings.spark_kafka_options())
                  .options(**spark_options(payload.topic, chunks[index]))
                  .option("failOnDataLoss", "false")
                  .option("includeHeaders", "true").load())
            counts = self.medallion.write(df, WriteRun(app_id, index, f"backfill:{backfill_id}"),
                                          self._dlq_forwarder(),
                                          label=f"{backfill_id}/{index}")
            if counts is not None:
                # Replayed history is not late: every row re-scores fraud and gold.
                self.downstream.apply(counts.work)
            update: dict[str, Any] = {"chunks_done": index + 1}
            if counts is not None:
                update.update({
                    "records_read": record.records_read + counts.records,
                    "bronze_new": record.bronze_new + counts.bronze_new,
                    "silver_new": record.silver_new + counts.silver_new,
                    "duplicates": record.duplicates + counts.duplicates,
                    "quarantined": record.quarantined + counts.quarantined})
            record = self._publish(record.model_copy(update=update))
        return record

    def _dlq_forwarder(self) -> DlqForwarder:
        if self._dlq is None:
            paths = self.medallion.paths
            state_dir = paths.checkpoint("backfills")
            state_dir.mkdir(parents=True, exist_ok=True)
            self._dlq = DlqForwarder(self.spark, self.settings, paths.quarantine,
                                     state_dir / "dlq-owed.json", BATCH_POOL)
        return self._dlq

    def _check(self, backfill_id: str) -> None:
        if backfill_id in self._cancel_requested or self._stopping.is_set():
            raise BackfillCancelled(backfill_id)

    def _classify(self, backfill_id: str, exc: Exception
                  ) -> tuple[BatchStatus, ErrorInfo | None]:
        if backfill_id in self._cancel_requested:
            return BatchStatus.CANCELLED, None
        message = short_message(exc)
        log.error("backfill %s failed: %s", backfill_id, message)
        if isinstance(exc, ExpectationFailed):
            code = ErrorCode.EXPECTATION_FAILED
        elif is_source_error(exc):
            code = ErrorCode.SOURCE_ERROR
        else:
            code = ErrorCode.INTERNAL_ERROR
        return BatchStatus.FAILED, ErrorInfo(code=code, message=message)

    def _cancel(self, backfill_id: str) -> None:
        self._cancel_requested.add(backfill_id)
        with self._lock:
            future = self._futures.get(backfill_id)
            tag = self._tags.get(backfill_id)
        if future is None or future.cancel():
            record = self._record(backfill_id)
            if record is not None and not record.status.terminal:
                self._publish(record.model_copy(update={
                    "status": BatchStatus.CANCELLED, "finished_at": datetime.now(UTC)}))
            return
        # A cancel reaches only the jobs running at that moment, and a chunk runs several:
        # keep cancelling until the backfill has ended.
        def keep_cancelling() -> None:
            while not future.done():
                with self._lock:
                    current = self._tags.get(backfill_id, tag)
                if current is not None:
                    self.spark.sparkContext.cancelJobsWithTag(current)
                wait([future], timeout=0.5)

        threading.Thread(target=keep_cancelling, name=f"cancel-{backfill_id}",
                         daemon=True).start()

    def _publish(self, record: BackfillRecord) -> BackfillRecord:
        with self._lock:
            self._records[record.backfill_id] = record
        self.publisher.publish(BACKFILL_EVENT_FOR_STATUS[record.status],
                               backfill_subject(record.backfill_id), record,
                               command_id=record.command_id)
        return record
