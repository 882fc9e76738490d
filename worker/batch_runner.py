"""On-demand batch analyses on a bounded thread pool, in the `batch-pool` FAIR pool.

Each batch: read source -> filter -> write raw -> run the analysis function(s) -> write
aggregated -> `batch.completed` with pointers. Every state change is published with the
full record, so the event log alone tells what happened. Each batch thread tags its Spark
jobs; `cancel_batch` cancels by tag from the command loop's thread.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from contracts.commands import RunBatchPayload
from contracts.errors import ErrorCode
from contracts.events import (
    BATCH_EVENT_FOR_STATUS,
    BatchRecord,
    BatchStatus,
    ErrorInfo,
    TablePointer,
    batch_subject,
)
from contracts.registry import Registry
from contracts.settings import Settings
from worker.analytics import ANALYSES, analyses_for
from worker.batch_sources import SourceError, apply_filters, read_source
from worker.errors import CommandRefused
from worker.publisher import EventPublisher
from worker.spark_session import BATCH_POOL
from worker.storage import StoragePaths

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


class BatchCancelled(Exception):
    pass


class BatchRunner:
    def __init__(self, spark: SparkSession, settings: Settings, publisher: EventPublisher) -> None:
        self.spark = spark
        self.settings = settings
        self.publisher = publisher
        self.paths = StoragePaths(settings)
        self._pool = ThreadPoolExecutor(settings.batch_concurrency, thread_name_prefix="batch")
        self._futures: dict[str, Future[None]] = {}
        self._cancel_requested: set[str] = set()
        self._shutting_down = threading.Event()
        self._abandon = threading.Event()  # drain time is over: unfinished batches stop
        self._lock = threading.Lock()

    @property
    def registry(self) -> Registry:
        return self.publisher.registry

    # ---- commands ----------------------------------------------------------------------

    def prepare_submit(self, payload: RunBatchPayload,
                       command_id: str | None) -> tuple[str, Callable[[], None]]:
        batch_id = payload.batch_id or _new_batch_id()
        if batch_id in self.registry.batches:
            raise CommandRefused(ErrorCode.BATCH_ALREADY_EXISTS,
                                 f"batch {batch_id!r} already exists "
                                 f"(status {self.registry.batches[batch_id].status})")
        waiting = len(self.registry.batches_with(BatchStatus.PENDING))
        if waiting >= self.settings.max_pending_batches:
            raise CommandRefused(ErrorCode.CAPACITY_EXCEEDED,
                                 f"{waiting} batches are already waiting; the limit is "
                                 f"{self.settings.max_pending_batches}")
        record = BatchRecord(
            batch_id=batch_id,
            status=BatchStatus.PENDING,
            analysis_type=payload.analysis_type.value,
            analyses=analyses_for(payload.analysis_type.value),
            source=payload.source.model_dump(mode="json"),
            filters=payload.filters,
            command_id=command_id,
            submitted_at=datetime.now(UTC),
            worker_id=self.settings.worker_id,
        )

        def submit() -> None:
            self._publish(record)
            self._schedule(record, payload)

        return batch_id, submit

    def prepare_cancel(self, batch_id: str, command_id: str | None) -> Callable[[], None]:
        record = self.registry.batches.get(batch_id)
        if record is None:
            raise CommandRefused(ErrorCode.BATCH_NOT_FOUND, f"no batch {batch_id!r}")
        if record.status.terminal:
            raise CommandRefused(ErrorCode.BATCH_NOT_CANCELLABLE,
                                 f"batch {batch_id!r} already ended ({record.status})")
        return lambda: self._cancel(batch_id, command_id)

    def resume(self, registry: Registry) -> None:
        """Re-run what a previous worker left pending or running: nothing stays RUNNING."""
        unfinished = registry.batches_with(BatchStatus.PENDING, BatchStatus.RUNNING)
        for record in sorted(unfinished, key=lambda r: r.submitted_at):
            log.info("re-running batch %s (was %s, attempt %d)", record.batch_id, record.status,
                     record.attempts + 1)
            payload = RunBatchPayload.model_validate({
                "batch_id": record.batch_id, "analysis_type": record.analysis_type,
                "source": record.source, "filters": record.filters,
            })
            if record.status is BatchStatus.RUNNING:
                record = self._publish(record.model_copy(update={"status": BatchStatus.PENDING}))
            self._schedule(record, payload)

    def shutdown(self, drain_timeout: float) -> None:
        """Let running batches finish within `drain_timeout`, then cancel the rest; those
        are left pending in the log, so the next worker runs them again."""
        self._shutting_down.set()
        with self._lock:
            futures = dict(self._futures)
        deadline = time.monotonic() + drain_timeout
        for batch_id, future in futures.items():
            remaining = deadline - time.monotonic()
            if remaining > 0:
                try:
                    future.result(timeout=remaining)
                except FutureTimeout:
                    pass
                except Exception:  # the batch ended failed; its event says so
                    continue
            if future.done():
                continue
            self._abandon.set()
            if not future.done():
                log.info("drain timeout: cancelling batch %s; it re-runs on the next start",
                         batch_id)
                future.cancel()
                self.spark.sparkContext.cancelJobsWithTag(_tag(batch_id))
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ---- execution ---------------------------------------------------------------------

    def _schedule(self, record: BatchRecord, payload: RunBatchPayload) -> None:
        future = self._pool.submit(self._run, record.batch_id, payload)
        with self._lock:
            self._futures[record.batch_id] = future
        future.add_done_callback(lambda _f, b=record.batch_id: self._forget(b))

    def _forget(self, batch_id: str) -> None:
        with self._lock:
            self._futures.pop(batch_id, None)

    def _run(self, batch_id: str, payload: RunBatchPayload) -> None:
        sc = self.spark.sparkContext
        tag = _tag(batch_id)
        record = self.registry.batches[batch_id]
        if batch_id in self._cancel_requested:
            return  # cancelled while pending: the cancel already published the outcome
        sc.setLocalProperty("spark.scheduler.pool", BATCH_POOL)
        sc.setInterruptOnCancel(True)
        sc.addJobTag(tag)
        started = datetime.now(UTC)
        record = self._publish(record.model_copy(update={
            "status": BatchStatus.RUNNING, "started_at": started, "finished_at": None,
            "attempts": record.attempts + 1, "error": None, "worker_id": self.settings.worker_id,
        }))
        try:
            updates = self._execute(batch_id, payload)
            status, error = BatchStatus.COMPLETED, None
        except Exception as exc:
            updates = {}
            status, error = self._classify(batch_id, exc)
            if status is None:  # interrupted by shutdown: stays pending for the next worker
                self._publish(record.model_copy(update={"status": BatchStatus.PENDING}))
                return
        finally:
            sc.removeJobTag(tag)
        finished = datetime.now(UTC)
        self._publish(record.model_copy(update={
            **updates, "status": status, "error": error, "finished_at": finished,
            "duration_seconds": round((finished - started).total_seconds(), 3),
        }))
        log.info("batch %s %s", batch_id, status)

    def _execute(self, batch_id: str, payload: RunBatchPayload) -> dict[str, Any]:
        from pyspark.sql import functions as F

        self._check_cancel(batch_id)
        source = read_source(self.spark, self.settings, payload.source)
        raw_path = str(self.paths.batch_raw(batch_id))
        try:
            rows = apply_filters(source.valid, payload.filters) \
                .withColumn("batch_id", F.lit(batch_id)) \
                .withColumn("processing_timestamp", F.current_timestamp())
            # Overwrite makes a re-run replace the previous attempt atomically.
            (rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
             .partitionBy("category").save(raw_path))
            raw = self._pointer(raw_path)
            skipped = source.invalid.count() if source.invalid is not None else 0
        finally:
            source.release()
        self._check_cancel(batch_id)
        analyses = analyses_for(payload.analysis_type.value)
        stored = self.spark.read.format("delta").load(raw_path)
        if len(analyses) > 1:
            stored = stored.persist()  # full_report scans the same rows eight times
        try:
            aggregated = self._aggregate(batch_id, analyses, stored)
        finally:
            stored.unpersist()
        return {"row_count": raw.row_count, "raw": raw, "aggregated": aggregated,
                "skipped_invalid_records": skipped}

    def _aggregate(self, batch_id: str, analyses: list[str], stored: DataFrame
                   ) -> dict[str, TablePointer]:
        aggregated: dict[str, TablePointer] = {}
        for analysis in analyses:
            self._check_cancel(batch_id)
            path = str(self.paths.batch_aggregated(batch_id, analysis))
            # Aggregates are small: one file keeps the analysis' sort order for readers.
            result: DataFrame = ANALYSES[analysis](stored).coalesce(1)
            (result.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
             .save(path))
            aggregated[analysis] = self._pointer(path)
        return aggregated

    def _pointer(self, path: str) -> TablePointer:
        from delta.tables import DeltaTable

        last = DeltaTable.forPath(self.spark, path).history(1).select(
            "version", "operationMetrics").first()
        metrics = last["operationMetrics"] or {}
        return TablePointer(path=path, version=int(last["version"]),
                            row_count=int(metrics.get("numOutputRows", 0)))

    def _check_cancel(self, batch_id: str) -> None:
        if batch_id in self._cancel_requested:
            raise BatchCancelled(batch_id)
        if self._abandon.is_set():
            raise BatchCancelled(batch_id)

    def _classify(self, batch_id: str, exc: Exception) -> tuple[BatchStatus | None,
                                                                 ErrorInfo | None]:
        if batch_id in self._cancel_requested or isinstance(exc, BatchCancelled):
            if batch_id in self._cancel_requested:
                return BatchStatus.CANCELLED, None
            return None, None
        if self._shutting_down.is_set() and "cancel" in str(exc).lower():
            return None, None
        if isinstance(exc, SourceError):
            return BatchStatus.FAILED, ErrorInfo(code=ErrorCode.SOURCE_ERROR, message=str(exc))
        message = _short(exc)
        log.error("batch %s failed: %s", batch_id, message)
        code = ErrorCode.SOURCE_ERROR if _looks_like_source_error(message) \
            else ErrorCode.INTERNAL_ERROR
        return BatchStatus.FAILED, ErrorInfo(code=code, message=message)

    def _cancel(self, batch_id: str, command_id: str | None) -> None:
        self._cancel_requested.add(batch_id)
        with self._lock:
            future = self._futures.get(batch_id)
        if future is None or future.cancel():
            # Not started yet (or no longer known here): it ends now.
            record = self.registry.batches[batch_id]
            if not record.status.terminal:
                self._publish(record.model_copy(update={
                    "status": BatchStatus.CANCELLED, "finished_at": datetime.now(UTC)}))
            return
        self.spark.sparkContext.cancelJobsWithTag(_tag(batch_id))

    def _publish(self, record: BatchRecord) -> BatchRecord:
        self.publisher.publish(BATCH_EVENT_FOR_STATUS[record.status],
                               batch_subject(record.batch_id), record,
                               command_id=record.command_id, flush=True)
        return record


def _new_batch_id() -> str:
    return f"batch-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def _tag(batch_id: str) -> str:
    return f"pipeline-batch-{batch_id}"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:1000]


def _looks_like_source_error(message: str) -> bool:
    lowered = message.lower()
    return any(s in lowered for s in ("offset", "kafka", "partition", "path does not exist"))
