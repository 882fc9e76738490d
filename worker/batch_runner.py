"""On-demand batch analyses on a bounded thread pool, in the `batch-pool` FAIR pool.

Each batch: read source -> filter -> write raw -> run the analysis function(s) -> write
aggregated -> `batch.completed` with pointers. Every state change is published with the
full record, so the event log alone tells what happened. Each batch thread tags its Spark
jobs; `cancel_batch` cancels by tag from the command loop's thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contracts.commands import AnalysisType, RunBatchPayload, validation_message
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
from worker.batch_sources import apply_filters, read_source
from worker.errors import CommandRefused, is_source_error, is_transient, short_message
from worker.fraud.model_training import ModelTrainingFailed, training_updates
from worker.publisher import EventPublisher
from worker.spark_session import BATCH_POOL
from worker.storage import StoragePaths

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


# After the drain timeout, cancelled Spark jobs get this long to end before the worker
# leaves them behind (documented in the README's shutdown bound).
CANCEL_MARGIN_SECONDS = 10.0
# A batch that failed transiently runs again after this many seconds times its attempts.
RETRY_PAUSE_SECONDS = 10.0


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
        # The newest record this worker published per batch: the registry only follows
        # once Kafka has acknowledged an event, so in-flight work reads its own copy.
        self._records: dict[str, BatchRecord] = {}
        self._tags: dict[str, str] = {}  # batch id -> the job tag of its running attempt
        self._cancel_requested: set[str] = set()
        self._shutting_down = threading.Event()
        self._abandon = threading.Event()  # drain time is over: unfinished batches stop
        self._lock = threading.Lock()
        self.stuck: list[str] = []  # batches that did not stop within the cancel margin

    @property
    def registry(self) -> Registry:
        return self.publisher.registry

    def _record(self, batch_id: str) -> BatchRecord | None:
        with self._lock:
            record = self._records.get(batch_id)
        return record or self.registry.batches.get(batch_id)

    # ---- commands ----------------------------------------------------------------------

    def prepare_submit(self, payload: RunBatchPayload,
                       command_id: str | None) -> tuple[str, Callable[[], None]]:
        batch_id = payload.batch_id or _new_batch_id()
        existing = self._record(batch_id)
        if existing is not None:
            raise CommandRefused(ErrorCode.BATCH_ALREADY_EXISTS,
                                 f"batch {batch_id!r} already exists (status {existing.status})")
        waiting = len(self.registry.batches_with(BatchStatus.PENDING))
        if waiting >= self.settings.max_pending_batches:
            raise CommandRefused(ErrorCode.CAPACITY_EXCEEDED,
                                 f"{waiting} batches are already waiting; the limit is "
                                 f"{self.settings.max_pending_batches}", retryable=True)
        record = BatchRecord(
            batch_id=batch_id,
            status=BatchStatus.PENDING,
            analysis_type=payload.analysis_type.value,
            analyses=[] if payload.analysis_type is AnalysisType.TRAIN_FRAUD_MODEL
            else analyses_for(payload.analysis_type.value),
            source=payload.source.model_dump(mode="json") if payload.source else {},
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
        record = self._record(batch_id)
        if record is None:
            raise CommandRefused(ErrorCode.BATCH_NOT_FOUND, f"no batch {batch_id!r}")
        if record.status.terminal:
            raise CommandRefused(ErrorCode.BATCH_NOT_CANCELLABLE,
                                 f"batch {batch_id!r} already ended ({record.status})")
        return lambda: self._cancel(batch_id, command_id)

    def resume(self, registry: Registry) -> None:
        """Re-run what a previous worker left pending or running: nothing stays RUNNING.
        A batch that already used up its attempts (it kept failing or crashing workers)
        ends failed instead of taking every restart and every standby down with it."""
        unfinished = registry.batches_with(BatchStatus.PENDING, BatchStatus.RUNNING)
        limit = self.settings.batch_max_attempts
        for record in sorted(unfinished, key=lambda r: r.submitted_at):
            if record.attempts >= limit:
                log.error("batch %s was interrupted on all of its %d attempts: failing it",
                          record.batch_id, record.attempts)
                self._publish(record.model_copy(update={
                    "status": BatchStatus.FAILED, "finished_at": datetime.now(UTC),
                    "error": ErrorInfo(code=ErrorCode.ATTEMPTS_EXHAUSTED, message=(
                        f"the batch was interrupted on {record.attempts} attempts "
                        f"(limit {limit}, PIPELINE_BATCH_MAX_ATTEMPTS); the worker "
                        "running it crashed or was replaced each time"))}))
                continue
            log.info("re-running batch %s (was %s, attempt %d of %d)", record.batch_id,
                     record.status, record.attempts + 1, limit)
            try:
                payload = RunBatchPayload.model_validate({
                    "batch_id": record.batch_id, "analysis_type": record.analysis_type,
                    "source": record.source, "filters": record.filters,
                })
            except ValidationError as exc:
                # Accepted by an older, laxer contract: it can never run, and must not
                # stop every worker that starts.
                self._publish(record.model_copy(update={
                    "status": BatchStatus.FAILED, "finished_at": datetime.now(UTC),
                    "error": ErrorInfo(code=ErrorCode.INVALID_REQUEST,
                                       message=validation_message(exc))}))
                continue
            if record.status is BatchStatus.RUNNING:
                record = self._publish(record.model_copy(update={"status": BatchStatus.PENDING}))
            else:
                with self._lock:
                    self._records[record.batch_id] = record
            self._schedule(record, payload)

    def abandon(self) -> None:
        """Leadership is lost: stop every batch now (their events are no longer written)."""
        self._shutting_down.set()
        self._abandon.set()
        with self._lock:
            tags = list(self._tags.values())
        for tag in tags:
            self.spark.sparkContext.cancelJobsWithTag(tag)

    def shutdown(self, drain_timeout: float) -> None:
        """Let running batches finish within `drain_timeout`, then cancel the rest; those
        are left pending in the log, so the next worker runs them again. Bounded: a batch
        stuck outside Spark's reach after `CANCEL_MARGIN_SECONDS` is left behind."""
        self._shutting_down.set()
        with self._lock:
            futures = dict(self._futures)
        deadline = time.monotonic() + drain_timeout
        for future in futures.values():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(Exception):  # a failed batch's event says so
                future.result(timeout=remaining)
        unfinished = {b: f for b, f in futures.items() if not f.done()}
        if unfinished:
            log.info("drain timeout: cancelling %s; they re-run on the next start",
                     ", ".join(sorted(unfinished)))
            self.abandon()
            for future in unfinished.values():
                future.cancel()
            self._keep_cancelling(unfinished, CANCEL_MARGIN_SECONDS)
            self.stuck = sorted(b for b, f in unfinished.items() if not f.done())
            for batch_id in self.stuck:
                log.error("batch %s did not stop within %.0fs of its cancellation; leaving "
                          "it behind (it re-runs on the next start)", batch_id,
                          CANCEL_MARGIN_SECONDS)
                record = self._record(batch_id)
                if record is not None and record.status is BatchStatus.RUNNING:
                    self._publish(_interrupted(record))
        self._pool.shutdown(wait=not self.stuck, cancel_futures=True)

    # ---- execution ---------------------------------------------------------------------

    def _schedule(self, record: BatchRecord, payload: RunBatchPayload) -> None:
        future = self._pool.submit(self._run, record.batch_id, payload)
        with self._lock:
            self._futures[record.batch_id] = future
        future.add_done_callback(lambda _f, b=record.batch_id: self._forget(b))

    def _forget(self, batch_id: str) -> None:
        with self._lock:
            self._futures.pop(batch_id, None)
            self._tags.pop(batch_id, None)
            record = self._records.get(batch_id)
            if record is not None and record.status.terminal:
                del self._records[batch_id]

    def _run(self, batch_id: str, payload: RunBatchPayload) -> None:
        sc = self.spark.sparkContext
        record = self._record(batch_id)
        if record is None or batch_id in self._cancel_requested or self._abandon.is_set():
            return  # cancelled while pending: the cancel already published the outcome
        # A tag per attempt: a thread is reused, and a later cancel of this batch id must
        # never reach another batch's jobs.
        tag = f"pipeline-batch-{batch_id}-{uuid.uuid4().hex[:8]}"
        sc.setLocalProperty("spark.scheduler.pool", BATCH_POOL)
        sc.setInterruptOnCancel(True)
        sc.clearJobTags()
        sc.addJobTag(tag)
        with self._lock:
            self._tags[batch_id] = tag
        started = datetime.now(UTC)
        record = self._publish(record.model_copy(update={
            "status": BatchStatus.RUNNING, "started_at": started, "finished_at": None,
            "attempts": record.attempts + 1, "error": None, "worker_id": self.settings.worker_id,
        }))
        try:
            updates = self._execute(batch_id, payload, record.attempts)
            status, error = BatchStatus.COMPLETED, None
        except Exception as exc:
            updates = {}
            status, error = self._classify(batch_id, exc)
            if status is None:  # interrupted by shutdown: pending again for the next worker
                self._publish(_interrupted(record))
                return
            if is_transient(exc) and record.attempts < self.settings.batch_max_attempts \
                    and not self._shutting_down.is_set():
                self._retry_later(record, payload, error)
                return
        finally:
            sc.removeJobTag(tag)
            with self._lock:
                self._tags.pop(batch_id, None)
        finished = datetime.now(UTC)
        self._publish(record.model_copy(update={
            **updates, "status": status, "error": error, "finished_at": finished,
            "duration_seconds": round((finished - started).total_seconds(), 3),
        }))
        log.info("batch %s %s", batch_id, status)

    def _retry_later(self, record: BatchRecord, payload: RunBatchPayload,
                     error: ErrorInfo | None) -> None:
        """A transient failure (Kafka unreachable, a timeout): pending again, with the
        failed attempt counted, and run again once Kafka has taken an event since the
        failure (an outage does not burn the attempts) and a pause that grows per
        attempt has passed."""
        failed_at = time.monotonic()
        delay = RETRY_PAUSE_SECONDS * record.attempts
        log.warning("batch %s attempt %d failed transiently (%s); retrying in %.0fs or "
                    "once Kafka answers again", record.batch_id, record.attempts,
                    error.message if error else "", delay)
        pending = self._publish(record.model_copy(update={
            "status": BatchStatus.PENDING, "error": error}))

        def again() -> None:
            deadline = failed_at + delay
            while not self._shutting_down.wait(1.0):
                if record.batch_id in self._cancel_requested:
                    return
                committed = self.publisher.last_commit
                if time.monotonic() >= deadline and committed is not None \
                        and committed > failed_at:
                    self._schedule(pending, payload)
                    return

        threading.Thread(target=again, name=f"retry-{record.batch_id}", daemon=True).start()

    def _execute(self, batch_id: str, payload: RunBatchPayload, attempt: int) -> dict[str, Any]:
        from pyspark.sql import functions as F

        self._check_cancel(batch_id)
        if payload.analysis_type is AnalysisType.TRAIN_FRAUD_MODEL:
            return training_updates(self.spark, self.settings, payload, batch_id,
                                    lambda: self._check_cancel(batch_id))
        # Output fencing: Delta skips a write whose txnVersion is not above the last one
        # for the same txnAppId, so a stale worker (an older epoch) that wakes up late
        # cannot overwrite a newer attempt's results.
        fence = (self.publisher.epoch or 0) * 1000 + attempt
        source = read_source(self.spark, self.settings, payload.source)  # type: ignore[arg-type]
        raw_path = str(self.paths.batch_raw(batch_id))
        try:
            rows = apply_filters(source.valid, payload.filters) \
                .withColumn("batch_id", F.lit(batch_id)) \
                .withColumn("processing_timestamp", F.current_timestamp())
            # Overwrite makes a re-run replace the previous attempt atomically.
            (rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
             .options(**_fenced(batch_id, "raw", fence))
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
            aggregated = self._aggregate(batch_id, analyses, stored, fence)
        finally:
            stored.unpersist()
        return {"row_count": raw.row_count, "raw": raw, "aggregated": aggregated,
                "skipped_invalid_records": skipped}

    def _aggregate(self, batch_id: str, analyses: list[str], stored: DataFrame, fence: int
                   ) -> dict[str, TablePointer]:
        aggregated: dict[str, TablePointer] = {}
        for analysis in analyses:
            self._check_cancel(batch_id)
            path = str(self.paths.batch_aggregated(batch_id, analysis))
            # Aggregates are small: one file keeps the analysis' sort order for readers.
            result: DataFrame = ANALYSES[analysis](stored).coalesce(1)
            (result.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
             .options(**_fenced(batch_id, analysis, fence)).save(path))
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
        if batch_id in self._cancel_requested or self._abandon.is_set():
            raise BatchCancelled(batch_id)

    def _classify(self, batch_id: str, exc: Exception) -> tuple[BatchStatus | None,
                                                                 ErrorInfo | None]:
        if batch_id in self._cancel_requested:
            return BatchStatus.CANCELLED, None
        if isinstance(exc, BatchCancelled) or self._abandon.is_set():
            return None, None  # stopped by shutdown or a lost leadership, not failed
        message = short_message(exc)
        log.error("batch %s failed: %s", batch_id, message)
        code = ErrorCode.MODEL_TRAINING_FAILED if isinstance(exc, ModelTrainingFailed) \
            else ErrorCode.SOURCE_ERROR if is_source_error(exc) else ErrorCode.INTERNAL_ERROR
        return BatchStatus.FAILED, ErrorInfo(code=code, message=message)

    def _cancel(self, batch_id: str, command_id: str | None) -> None:
        self._cancel_requested.add(batch_id)
        with self._lock:
            future = self._futures.get(batch_id)
        if future is None or future.cancel():
            # Not started yet (or no longer known here): it ends now.
            record = self._record(batch_id)
            if record is not None and not record.status.terminal:
                self._publish(record.model_copy(update={
                    "status": BatchStatus.CANCELLED, "finished_at": datetime.now(UTC)}))
            return
        # In a thread: the command loop answers now, the cancel keeps hitting the batch's
        # jobs (its tag may not even be set yet) until it ends.
        threading.Thread(target=self._keep_cancelling, args=({batch_id: future}, 600.0),
                         name=f"cancel-{batch_id}", daemon=True).start()

    def _keep_cancelling(self, futures: dict[str, Future[None]], timeout: float) -> None:
        """A cancel reaches only the jobs running at that moment, and a batch may be
        planning on the driver between jobs: repeat it until the batch has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = [b for b, f in futures.items() if not f.done()]
            if not pending:
                return
            with self._lock:
                tags = [self._tags[b] for b in pending if b in self._tags]
            for tag in tags:
                self.spark.sparkContext.cancelJobsWithTag(tag)
            wait([futures[b] for b in pending], timeout=0.5)

    def _publish(self, record: BatchRecord) -> BatchRecord:
        with self._lock:
            self._records[record.batch_id] = record
        self.publisher.publish(BATCH_EVENT_FOR_STATUS[record.status],
                               batch_subject(record.batch_id), record,
                               command_id=record.command_id)
        return record


def _interrupted(record: BatchRecord) -> BatchRecord:
    """Back to pending for the next worker. A shutdown is not the batch's fault, so the
    attempt is not counted against its limit."""
    return record.model_copy(update={"status": BatchStatus.PENDING,
                                     "attempts": max(0, record.attempts - 1)})


def _fenced(batch_id: str, table: str, version: int) -> dict[str, str]:
    return {"txnAppId": f"pipeline-batch-{batch_id}-{table}", "txnVersion": str(version)}


def _new_batch_id() -> str:
    return f"batch-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
