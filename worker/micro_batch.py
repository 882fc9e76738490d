"""One micro-batch of the streaming ingest: parse with the contract, count in one job,
append valid rows to `stream/transactions` and invalid ones to `stream/quarantine` (+ the
DLQ copies), and hand the dashboard the windows the batch touched.

Both Delta appends are idempotent (txnAppId = the checkpoint's id, txnVersion = the
micro-batch id), so a replayed micro-batch is a no-op: a restart or a `kill -9` neither
loses nor duplicates rows. The stream manager decides when a micro-batch runs; this
module only knows how to write one.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from contracts.timeutil import as_utc
from worker.analytics import AffectedWindows, affected_windows
from worker.dashboard_refresher import DashboardRefresher
from worker.dlq import DlqForwarder
from worker.storage import StoragePaths
from worker.transaction_parser import REASON, contract_columns, parse_transactions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger(__name__)

# Rows older than this behind the newest event time still land in the table, but no
# longer move the dashboard; they are counted as late instead.
WATERMARK = timedelta(minutes=10)


class MicroBatchWriter:
    def __init__(self, paths: StoragePaths) -> None:
        self.paths = paths
        # The newest event time seen by this process (the late-row watermark's base).
        self.max_event_time: datetime | None = None

    def write(self, df: DataFrame, batch_id: int, app_id: str,
              refresher: DashboardRefresher | None, dlq: DlqForwarder | None
              ) -> dict[str, Any] | None:
        """Write one micro-batch; its counts, or None when it was empty."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        parsed = parse_transactions(df).persist(StorageLevel.MEMORY_AND_DISK)
        steps = _StepTimer(batch_id)
        is_valid = F.col(REASON).isNull()
        ts = F.col("event_timestamp")
        # Rows older than the watermark still land in the table, but no longer move the
        # dashboard; they are counted in progress instead.
        watermark = self.max_event_time - WATERMARK if self.max_event_time else None
        is_late = F.lit(False) if watermark is None else ts < F.lit(watermark)
        on_time = F.when(is_valid & ~is_late, ts)
        try:
            # One job answers every question the batch needs before writing.
            counts = (
                parsed.groupBy("partition")
                .agg(
                    F.count(F.lit(1)).alias("n"),
                    F.sum(F.when(is_valid, 1).otherwise(0)).alias("valid"),
                    F.sum(F.when(is_valid & is_late, 1).otherwise(0)).alias("late"),
                    F.max("offset").alias("max_offset"),
                    F.max(F.when(is_valid, ts)).alias("max_event"),
                    F.min(on_time).alias("min_on_time"),
                    F.max(on_time).alias("max_on_time"),
                )
                .collect()
            )
            steps.mark("parse+count")
            if not counts:
                return None
            valid_n = sum(int(r["valid"]) for r in counts)
            invalid_n = sum(int(r["n"]) for r in counts) - valid_n
            offsets = {str(r["partition"]): int(r["max_offset"]) + 1 for r in counts}
            txn = {"txnAppId": app_id, "txnVersion": str(batch_id)}
            late = 0
            if valid_n:
                valid = parsed.where(F.col(REASON).isNull()).select(
                    *[c for c in contract_columns() if c not in ("processing_timestamp",)],
                )
                valid = valid.withColumn("processing_timestamp", F.current_timestamp()) \
                    .withColumn("event_date", F.to_date("event_timestamp")) \
                    .select(*contract_columns(), "event_date")
                (valid.write.format("delta").mode("append").partitionBy("event_date")
                 .options(**txn).save(str(self.paths.transactions)))
                steps.mark("transactions")
                late = sum(int(r["late"]) for r in counts)
                span = self._dashboard_span(counts)
                if span is not None and refresher is not None:
                    # On disk before Spark commits this micro-batch's offsets.
                    refresher.submit(span)
            if invalid_n:
                self._quarantine(parsed.where(F.col(REASON).isNotNull()), txn, steps, dlq)
            steps.log()
            return {"valid": valid_n, "invalid": invalid_n, "offsets": offsets, "late": late}
        finally:
            parsed.unpersist()

    def _quarantine(self, invalid: DataFrame, txn: dict[str, str], steps: _StepTimer,
                    dlq: DlqForwarder | None) -> None:
        from pyspark.sql import functions as F

        rows = invalid.select(
            F.col("key").alias("raw_key"),
            F.col("value").alias("raw_value"),
            F.col(REASON).alias("reason"),
            "topic",
            "partition",
            "offset",
            F.col("timestamp").alias("kafka_timestamp"),
            F.current_timestamp().alias("quarantined_at"),
        )
        rows.write.format("delta").mode("append").options(**txn).save(str(self.paths.quarantine))
        steps.mark("quarantine")
        # The DLQ carries the original bytes, with headers naming the error and the origin;
        # a DLQ that cannot take them is owed the copies, never a reason to stop.
        if dlq is not None:
            dlq.forward(rows, int(txn["txnVersion"]))
        steps.mark("dlq")

    def _dashboard_span(self, counts: list[Any]) -> AffectedWindows | None:
        """The dashboard windows this batch's on-time rows fall into; moves the watermark."""
        lows = [r["min_on_time"] for r in counts if r["min_on_time"] is not None]
        highs = [r["max_on_time"] for r in counts if r["max_on_time"] is not None]
        span = affected_windows(as_utc(min(lows)), as_utc(max(highs))) if lows else None
        newest = max((r["max_event"] for r in counts if r["max_event"] is not None),
                     default=None)
        if newest is not None and (self.max_event_time is None
                                   or as_utc(newest) > self.max_event_time):
            self.max_event_time = as_utc(newest)
        return span


class _StepTimer:
    """Durations of a micro-batch's steps, logged at debug level for profiling."""

    def __init__(self, batch_id: int) -> None:
        self.batch_id = batch_id
        self.last = time.monotonic()
        self.steps: list[str] = []

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.steps.append(f"{name}={now - self.last:.2f}s")
        self.last = now

    def log(self) -> None:
        log.debug("micro-batch %d: %s", self.batch_id, " ".join(self.steps))


def log_trigger_overhead(query: StreamingQuery) -> None:
    """Spark's own timings of the previous trigger (offset fetch, WAL, commit), for
    profiling what a micro-batch costs outside foreachBatch."""
    progress = query.lastProgress
    if progress:
        durations = progress.get("durationMs") or {}
        log.debug("trigger %s: %s", progress.get("batchId"),
                  " ".join(f"{k}={v}ms" for k, v in sorted(durations.items())))
