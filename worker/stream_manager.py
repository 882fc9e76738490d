"""The streaming ingest's life cycle: Kafka `transactions-stream` -> bronze -> silver
(+ quarantine, quality metrics, gold dashboard), exactly once, in `streaming-pool`.

Starts, stops, restarts (from the checkpoint, when the query dies of a transient fault)
and reports the one Structured Streaming query. What a micro-batch writes is
`worker.medallion` (through `worker.stream_batch`); after each micro-batch this publishes
`stream.progress` and any `quality.alert` / `quality.recovered`. A `fail` expectation ends
the stream with `stream.failed` (`EXPECTATION_FAILED`), without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.commands import StartStreamPayload
from contracts.errors import ErrorCode
from contracts.events import (
    ErrorInfo,
    EventType,
    StreamHealth,
    StreamLifecycle,
    StreamState,
    stream_progress_subject,
    stream_subject,
)
from contracts.registry import Registry
from contracts.settings import Settings
from contracts.tables import STREAM_TABLES
from worker.dlq import DlqForwarder
from worker.downstream import Downstream
from worker.downstream_refresher import DownstreamRefresher
from worker.errors import CommandRefused, short_message
from worker.health import HealthReporter
from worker.input_guard import check_source_topic
from worker.medallion import Medallion, log_trigger_overhead
from worker.publisher import EventPublisher
from worker.quality.checks import ExpectationFailed
from worker.silver_follower import SilverFollower
from worker.spark_session import STREAMING_POOL
from worker.storage import StoragePaths
from worker.stream_batch import StreamBatches, alert_event, progress_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger(__name__)

STREAM_NAME = "transactions"
# A query that dies (the broker went away, a transient I/O error) is restarted from its
# checkpoint with growing pauses; only failing for this long without one good
# micro-batch in between makes it `stream.failed`.
RESTART_WINDOW_SECONDS = 600.0
_RESTART_PAUSE_MAX = 30.0


class StreamManager:
    def __init__(self, spark: SparkSession, settings: Settings, publisher: EventPublisher,
                 health: HealthReporter, medallion: Medallion, downstream: Downstream) -> None:
        self.spark = spark
        self.settings = settings
        self.publisher = publisher
        self.health = health
        self.paths = StoragePaths(settings)
        self.subject = stream_subject(STREAM_NAME)
        self.progress_subject = stream_progress_subject(STREAM_NAME)
        self._lock = threading.Lock()         # guards state changes
        self._batch_lock = threading.Lock()   # held while a micro-batch writes
        self._stop_requested = threading.Event()
        self._state = StreamState.STOPPED
        self._abandoned = threading.Event()
        self._starting = threading.Event()
        self._failing_since: float | None = None
        self._dlq: DlqForwarder | None = None
        self._query: StreamingQuery | None = None
        self._options: dict[str, Any] = {}
        self._stop_reason = ""
        self._batches = StreamBatches(medallion)
        self._fatal: ErrorInfo | None = None  # why the query must not be restarted
        self._started_at: datetime | None = None
        self._downstream = downstream
        self._refresher: DownstreamRefresher | None = None

    # ---- commands ----------------------------------------------------------------------

    def prepare_start(self, payload: StartStreamPayload,
                      command_id: str | None) -> Callable[[], None]:
        with self._lock:
            if self._state in (StreamState.RUNNING, StreamState.STARTING,
                               StreamState.RESTARTING):
                raise CommandRefused(ErrorCode.STREAM_ALREADY_RUNNING,
                                     f"the stream is already {self._state} "
                                     f"(topic {self._options.get('topic')})")
            if self._state is StreamState.STOPPING:
                raise CommandRefused(ErrorCode.STREAM_ALREADY_RUNNING,
                                     "the stream is still stopping; try again shortly",
                                     retryable=True)
            self._set_state(StreamState.STARTING)
        options = {
            "topic": payload.topic or self.settings.stream_topic,
            "starting_offsets": payload.starting_offsets,
            "trigger_seconds": payload.trigger_seconds or self.settings.trigger_seconds,
        }
        return lambda: self._start_async(options, command_id)

    def prepare_stop(self, command_id: str | None) -> Callable[[], None]:
        with self._lock:
            if self._state not in (StreamState.RUNNING, StreamState.STARTING,
                                   StreamState.RESTARTING):
                raise CommandRefused(ErrorCode.STREAM_NOT_RUNNING,
                                     f"the stream is not running (state: {self._state})")
            self._set_state(StreamState.STOPPING)
        return lambda: self._stop_async(command_id, "stop_stream command")

    def resume(self, registry: Registry) -> None:
        """Restart the stream from its checkpoint if its last desired state was running."""
        desire = registry.streams.get(self.subject)
        if desire is None or desire.state != StreamState.RUNNING:
            return
        log.info("resuming the stream (last desired state: running)")
        with self._lock:
            self._set_state(StreamState.STARTING)
        self._start_async(
            {
                "topic": desire.data.get("topic") or self.settings.stream_topic,
                "starting_offsets": desire.data.get("starting_offsets") or "latest",
                "trigger_seconds": desire.data.get("trigger_seconds")
                or self.settings.trigger_seconds,
            },
            None,
        )

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop at a micro-batch boundary, keeping the desired state 'running' so that the
        next worker resumes the stream (a shutdown is not a stop_stream). With a zero
        timeout (leadership lost), stop at once: a half-written micro-batch is replayed
        by the next worker, and the idempotent writes drop what this one did commit."""
        with self._lock:
            query = self._query
            if query is None and self._state is StreamState.STOPPED:
                return
            self._set_state(StreamState.STOPPING)
        if query is not None:
            self._stop_query(query, timeout)
        if self._dlq is not None:
            self._dlq.close()
        with self._lock:
            self._query = None
            self._set_state(StreamState.STOPPED)
        log.info("stream stopped for shutdown")

    def abandon(self) -> None:
        """Leadership is lost: no further micro-batch may start or report."""
        self._abandoned.set()
        self._stop_requested.set()

    def state(self) -> StreamState:
        return self._state

    # ---- lifecycle ---------------------------------------------------------------------

    def _set_state(self, state: StreamState) -> None:
        self._state = state
        self.health.replace_stream(StreamHealth(
            state=state,
            query_id=str(self._query.id) if self._query is not None else None,
            topic=self._options.get("topic"),
            started_at=self._started_at if state is StreamState.RUNNING else None,
            last_progress=self.health.stream_state.last_progress,
        ))

    def problems(self) -> list[str]:
        out = self._dlq.problems() if self._dlq is not None else []
        if self._state is StreamState.RESTARTING:
            out.append("the stream query failed and is restarting")
        return out

    def _start_async(self, options: dict[str, Any], command_id: str | None) -> None:
        threading.Thread(target=self._start, args=(options, command_id),
                         name="stream-start", daemon=True).start()

    def _start(self, options: dict[str, Any], command_id: str | None) -> None:
        self._starting.set()
        try:
            query = self._start_query(options)
        except Exception as exc:
            log.exception("the stream failed to start")
            with self._lock:
                self._query = None
                self._set_state(StreamState.FAILED)
            self._publish_lifecycle(EventType.STREAM_FAILED, StreamState.FAILED, options,
                                    command_id, error=ErrorInfo(code=ErrorCode.SOURCE_ERROR,
                                                                message=short_message(exc)))
            return
        finally:
            self._starting.clear()
        with self._lock:
            self._query = query
            self._options = options
            self._started_at = datetime.now(UTC)
            self._set_state(StreamState.RUNNING)
        self._publish_lifecycle(EventType.STREAM_STARTED, StreamState.RUNNING, options,
                                command_id, query_id=str(query.id))
        self._watch_async(query, options)

    def _watch_async(self, query: StreamingQuery, options: dict[str, Any]) -> None:
        threading.Thread(target=self._watch, args=(query, options), name="stream-watch",
                         daemon=True).start()

    def _start_query(self, options: dict[str, Any]) -> StreamingQuery:
        spark = self.spark
        topic = options["topic"]
        check_source_topic(topic, self.settings)  # also a topic resumed from an older log
        name = "stream_transactions" if topic == self.settings.stream_topic else (
            f"stream_transactions__{topic}")
        checkpoint = self.paths.checkpoint(name)
        app_id = _checkpoint_app_id(checkpoint)
        # Jobs started from this thread (the query's micro-batches) run in the favoured pool.
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", STREAMING_POOL)
        pending = checkpoint / "downstream-pending.json"
        downstream = self.paths.checkpoint("downstream")  # state shared by every topic's query
        if (checkpoint / "dashboard-pending.json").exists() and not pending.exists():
            (checkpoint / "dashboard-pending.json").rename(pending)  # before fraud and gold
        self._refresher = DownstreamRefresher(
            self._downstream, pending, STREAMING_POOL,
            poll_seconds=float(options["trigger_seconds"]),
            follower=SilverFollower(self.paths.silver, downstream / "silver-followed.json"))
        self._batches.resume_newest(downstream / "newest-event.json")
        self._batches.seed_alerts({
            f"{a.layer}.{a.expectation}": a.opened_at
            for a in self.publisher.registry.quality_alerts.values()})
        if self._dlq is None:
            self._dlq = DlqForwarder(spark, self.settings, self.paths.quarantine,
                                     checkpoint / "dlq-owed.json", STREAMING_POOL)
        try:
            query = self._query_on(topic, name, checkpoint, app_id, options)
        except Exception:
            self._close_refresher(60.0)
            raise
        log.info("stream %s started on topic %s (checkpoint %s)", name, topic, checkpoint)
        return query

    def _query_on(self, topic: str, name: str, checkpoint: Path, app_id: str,
                  options: dict[str, Any]) -> StreamingQuery:
        source = (
            self.spark.readStream.format("kafka")
            .options(**self.settings.spark_kafka_options())
            .option("subscribe", topic)
            .option("startingOffsets", options["starting_offsets"])
            # Records deleted by retention before we read them are reported, not fatal.
            .option("failOnDataLoss", "false")
            .option("maxOffsetsPerTrigger", str(self.settings.max_offsets_per_trigger))
            .option("includeHeaders", "true")
            .load()
        )
        return (
            source.writeStream.queryName(name)
            .foreachBatch(lambda df, batch_id: self._process(df, batch_id, app_id, topic))
            .option("checkpointLocation", str(checkpoint))
            .trigger(processingTime=f"{options['trigger_seconds']} seconds")
            .start()
        )

    def _watch(self, query: StreamingQuery, options: dict[str, Any]) -> None:
        """Restart a dying query from its checkpoint (exactly once still holds: replayed
        micro-batches are idempotent); `stream.failed` only when it keeps dying."""
        try:
            query.awaitTermination()
            return
        except Exception as exc:
            error = exc
        if self._query is not query or self._state is not StreamState.RUNNING \
                or self._abandoned.is_set():
            return
        now = time.monotonic()
        self._failing_since = self._failing_since or now
        self._close_refresher(60.0)
        fatal, self._fatal = self._fatal, None
        if fatal is not None or now - self._failing_since > RESTART_WINDOW_SECONDS:
            log.error("stream failed for good: %s",
                      fatal.message if fatal else short_message(error))
            with self._lock:
                self._query = None
                self._set_state(StreamState.FAILED)
            self._publish_lifecycle(EventType.STREAM_FAILED, StreamState.FAILED, options, None,
                                    error=fatal or ErrorInfo(code=ErrorCode.INTERNAL_ERROR,
                                                             message=short_message(error)))
            return
        log.warning("stream query died (%s); restarting it from its checkpoint",
                    short_message(error))
        with self._lock:
            self._query = None
            self._set_state(StreamState.RESTARTING)
        self._restart(options)

    def _restart(self, options: dict[str, Any]) -> None:
        pause = 1.0
        while True:
            deadline = time.monotonic() + pause
            while time.monotonic() < deadline:
                if self._state is not StreamState.RESTARTING or self._abandoned.is_set():
                    return  # stopped meanwhile
                time.sleep(0.2)
            self._starting.set()
            try:
                query = self._start_query(options)
            except Exception as exc:
                log.warning("stream restart failed (%s); next try in %.0fs",
                            short_message(exc), min(pause * 2, _RESTART_PAUSE_MAX))
                pause = min(pause * 2, _RESTART_PAUSE_MAX)
                continue
            finally:
                self._starting.clear()
            with self._lock:
                if self._state is not StreamState.RESTARTING:
                    stopping = True
                else:
                    stopping = False
                    self._query = query
                    self._set_state(StreamState.RUNNING)
            if stopping:
                query.stop()
                return
            log.info("stream query restarted")
            self._watch_async(query, options)
            return

    def _stop_async(self, command_id: str | None, reason: str) -> None:
        def stop() -> None:
            query, options = self._query, dict(self._options)
            if query is None:  # still starting: wait for it, then stop it
                deadline = time.monotonic() + 120
                while self._query is None and self._starting.is_set() and \
                        time.monotonic() < deadline:
                    time.sleep(0.2)
                query, options = self._query, dict(self._options)
            if query is not None:
                self._stop_query(query, 120.0)
            with self._lock:
                self._query = None
                self._set_state(StreamState.STOPPED)
            self._publish_lifecycle(EventType.STREAM_STOPPED, StreamState.STOPPED, options,
                                    command_id, reason=reason)

        threading.Thread(target=stop, name="stream-stop", daemon=True).start()

    def _stop_query(self, query: StreamingQuery, timeout: float) -> None:
        """Stop at a micro-batch boundary: no new batch starts writing once a stop is asked,
        the running one finishes (within `timeout`), then the query stops. (Holding the
        lock across `query.stop()` would deadlock with a batch callback waiting for it.)"""
        self._stop_requested.set()
        if timeout > 0 and self._batch_lock.acquire(timeout=timeout):
            self._batch_lock.release()
        query.stop()
        if not self._abandoned.is_set():
            self._stop_requested.clear()
        # The downstream tables catch up with the last micro-batches before the caller
        # announces the stop.
        self._close_refresher(timeout)

    def _close_refresher(self, timeout: float) -> None:
        refresher, self._refresher = self._refresher, None
        if refresher is not None:
            refresher.close(timeout)

    def _publish_lifecycle(self, event_type: EventType, state: StreamState,
                           options: dict[str, Any],
                           command_id: str | None, **extra: Any) -> None:
        data = StreamLifecycle(
            state=state,  # type: ignore[arg-type]
            topic=options.get("topic"),
            starting_offsets=options.get("starting_offsets"),
            trigger_seconds=options.get("trigger_seconds"),
            tables={spec.name: str(spec.path(self.paths.delta)) for spec in STREAM_TABLES},
            **extra,
        )
        self.publisher.publish(event_type, self.subject, data, command_id=command_id, flush=True)

    # ---- one micro-batch ---------------------------------------------------------------

    def _process(self, df: DataFrame, batch_id: int, app_id: str, topic: str) -> None:
        with self._batch_lock:
            if self._stop_requested.is_set():
                # Not committed: the next start replays this micro-batch from its offsets.
                raise StreamStopping(f"micro-batch {batch_id} not started: the stream stops")
            started = time.monotonic()
            try:
                written = self._batches.write(df, batch_id, app_id, self._refresher, self._dlq)
            except ExpectationFailed as exc:
                # Not committed either: after the expectation (or the data) is fixed, a
                # start replays this micro-batch.
                self._fatal = ErrorInfo(code=ErrorCode.EXPECTATION_FAILED,
                                        message=f"micro-batch {batch_id}: {exc}")
                raise
            duration = time.monotonic() - started
        if log.isEnabledFor(logging.DEBUG) and self._query is not None:
            log_trigger_overhead(self._query)
        if written is None:
            return
        counts, alerts = written
        self._failing_since = None  # a good micro-batch: restarts start counting afresh
        if self._abandoned.is_set():
            return
        progress = progress_of(
            counts, self._batches.totals, batch_id=batch_id, duration=duration, topic=topic,
            query_id=str(self._query.id) if self._query is not None else "",
            dlq_owed=self._dlq.owed() if self._dlq is not None else 0,
            downstream_lag=self._refresher.lag_seconds() if self._refresher is not None
            else None)
        self.health.update_stream(last_progress=progress.model_dump(mode="json"))
        self.publisher.publish(EventType.STREAM_PROGRESS, self.progress_subject, progress)
        for change in alerts:
            self.publisher.publish(*alert_event(change))


class StreamStopping(Exception):
    """Raised inside a micro-batch that begins after a stop was requested."""


def _checkpoint_app_id(checkpoint: Any) -> str:
    """A stable id per checkpoint: a new checkpoint restarts batch ids at 0, so it must
    not share the old one's idempotency key (or its first batches would be skipped)."""
    checkpoint.mkdir(parents=True, exist_ok=True)
    marker = checkpoint / "pipeline-app-id"
    if not marker.exists():
        marker.write_text(f"pipeline-{checkpoint.name}-{uuid.uuid4()}")
    return marker.read_text().strip()
