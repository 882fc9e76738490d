"""One write through the medallion: Kafka records -> bronze -> silver (+ quarantine),
with every expectation counted and `quality.metrics` appended.

The stream runs it once per micro-batch, a backfill once per chunk of its range; both
hand in the Kafka source rows and a `WriteRun` (the idempotency key of the write). In
order:

1. parse with the record contract and count, in one aggregate job over the cached rows:
   the batch's counts, offsets, event-time span and every expectation's failing rows;
2. a `fail` expectation with failing rows stops here, before anything is written;
3. bronze gets every record it does not hold yet (`worker.layers.bronze`);
4. silver gets the valid, kept rows, deduplicated (`worker.layers.silver`);
5. quarantine (+ DLQ) gets invalid and dropped records (`worker.layers.quarantine`);
6. `quality.metrics` gets one row per expectation (`worker.quality.metrics_table`).

Every Delta append carries txnAppId/txnVersion (the `WriteRun`), so a replayed write is
skipped table by table: a crash anywhere neither loses nor duplicates rows.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from contracts.settings import Settings
from contracts.silver import ingest_run
from contracts.tables import (
    BRONZE_TRANSACTIONS,
    QUARANTINE_TRANSACTIONS,
    SILVER_TRANSACTIONS,
)
from contracts.timeutil import as_utc
from worker.analytics import AffectedWindows, affected_windows
from worker.dashboard import DashboardUpdater
from worker.dlq import DlqForwarder
from worker.downstream import DownstreamWork
from worker.event_spans import BUCKET_SECONDS, EventSpan, bucket_spans
from worker.layers.bronze import BronzeWriter
from worker.layers.quarantine import QuarantineWriter, quarantine_rows
from worker.layers.silver import SilverWriter
from worker.quality.checks import ExpectationFailed, Outcome, QualityChecks
from worker.quality.metrics_table import write_metrics
from worker.storage import StoragePaths
from worker.transaction_parser import REASON, parse_transactions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger(__name__)

_DROP = "_drop"  # the first `drop` expectation a valid row fails, else null


@dataclass(frozen=True)
class WriteRun:
    """Who writes: the idempotency key (txnAppId, txnVersion) and the label of the run
    in `quality.metrics` ("stream" or "backfill:<id>")."""

    app_id: str
    version: int
    run: str

    @property
    def txn(self) -> dict[str, str]:
        return {"txnAppId": self.app_id, "txnVersion": str(self.version)}

    @property
    def ingest_run(self) -> str:
        return ingest_run(self.app_id, self.version)


@dataclass
class WriteCounts:
    records: int = 0        # Kafka records in the write
    bronze_new: int = 0     # appended to bronze
    valid: int = 0          # contract-valid
    dropped: int = 0        # valid, but dropped by a `drop` expectation
    duplicates: int = 0     # valid and kept, but silver had them (or repeated here)
    silver_new: int = 0     # appended to silver
    quarantined: int = 0    # appended to quarantine (invalid + dropped, new ones)
    late: int = 0           # valid rows older than the dashboard's watermark
    too_late: int = 0       # kept rows beyond the lateness horizon (no fraud/gold update)
    offsets: dict[str, int] = field(default_factory=dict)  # partition -> next offset
    outcomes: list[Outcome] = field(default_factory=list)
    span: AffectedWindows | None = None  # dashboard windows the kept rows fall into
    newest_event: datetime | None = None  # the latest valid event time
    # Event-time spans of the kept rows within the lateness horizon: what fraud and gold
    # recompute.
    spans: list[EventSpan] = field(default_factory=list)

    @property
    def work(self) -> DownstreamWork:
        return DownstreamWork([self.span] if self.span is not None else [], self.spans)

    def layers(self) -> dict[str, int]:
        return {BRONZE_TRANSACTIONS.name: self.bronze_new,
                SILVER_TRANSACTIONS.name: self.silver_new,
                QUARANTINE_TRANSACTIONS.name: self.quarantined}


class Medallion:
    def __init__(self, spark: SparkSession, settings: Settings, checks: QualityChecks) -> None:
        self.spark = spark
        self.settings = settings
        self.paths = StoragePaths(settings)
        self.checks = checks
        self.bronze = BronzeWriter(spark, self.paths.bronze)
        self.silver = SilverWriter(spark, self.paths.silver, settings.dedupe_horizon_hours)
        self.quarantine = QuarantineWriter(spark, self.paths.quarantine)
        self._write_lock = threading.Lock()
        # gold.dashboard, recomputed from silver behind the stream and after backfills.
        self.dashboard = DashboardUpdater(spark, self.paths)

    def write(self, records: DataFrame, run: WriteRun, dlq: DlqForwarder | None, *,
              watermark: datetime | None = None, horizon: datetime | None = None,
              label: int | str = 0) -> WriteCounts | None:
        """Write Kafka source rows through every layer; their counts, or None when there
        were none. Rows with an event time before `watermark` are late: stored, but they
        do not move the dashboard; before `horizon`, too late: stored, but they do not
        update the fraud scores and gold tables either. Raises `ExpectationFailed` before
        writing anything when a `fail` expectation fails."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        steps = StepTimer(label)
        checks = self.checks
        reason = F.col(REASON)
        valid = reason.isNull()
        ingested = parse_transactions(records).withColumn("ingested_at", F.current_timestamp())
        frame = checks.with_lag(ingested, "ingested_at", "event_timestamp")
        drop = checks.drop_reason(valid, reason)
        frame = frame.withColumn(_DROP, drop if drop is not None else F.lit(None).cast("string"))
        parsed = frame.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            counts = self._count(parsed, valid, reason, watermark, horizon)
            steps.mark("parse+count")
            if not counts:
                return None
            out, sums, dates = self._totals(counts)
            failing = checks.failing(checks.outcomes(sums, records=out.records, valid=out.valid,
                                                     kept=out.valid - out.dropped,
                                                     duplicates=0))
            if failing:
                raise ExpectationFailed(checks.failure_message(failing))
            ranges = {(r["topic"], int(r["partition"])): (int(r["min_offset"]),
                                                          int(r["max_offset"]))
                      for r in counts}
            # One writer at a time from bronze to quarantine (the stream, a backfill): which
            # records are new is decided by bronze, and the layers after it must see the
            # other writer's records complete, not half written.
            with self._write_lock:
                self._write_layers(parsed, out, ranges, dates, run, dlq, steps)
            out.outcomes = checks.outcomes(sums, records=out.records, valid=out.valid,
                                           kept=out.valid - out.dropped, duplicates=out.duplicates)
            write_metrics(self.spark, self.paths.quality_metrics, out.outcomes,
                          micro_batch_id=run.version, checked_at=datetime.now(UTC),
                          run=run.run, txn=run.txn)
            steps.mark("quality")
            steps.log()
            return out
        finally:
            parsed.unpersist()

    def _write_layers(self, parsed: DataFrame, out: WriteCounts,
                      ranges: dict[tuple[str, int], tuple[int, int]], dates: set[date],
                      run: WriteRun, dlq: DlqForwarder | None, steps: StepTimer) -> None:
        from pyspark.sql import functions as F

        reason = F.col(REASON)
        valid = reason.isNull()
        out.bronze_new = self.bronze.append(parsed, ranges, out.records, run.txn)
        steps.mark("bronze")
        kept = out.valid - out.dropped
        if kept:
            candidates = parsed.where(valid & F.col(_DROP).isNull())
            out.duplicates = self.silver.append(candidates, dates, run.ingest_run, run.txn)
            out.silver_new = kept - out.duplicates
            steps.mark("silver")
        refused = out.records - out.valid + out.dropped
        if refused:
            # Records bronze already held went through the layers before: look them up.
            seen = ranges if out.bronze_new < out.records else {}
            rows = quarantine_rows(parsed.where(~valid | F.col(_DROP).isNotNull()),
                                   F.coalesce(reason, F.col(_DROP)))
            out.quarantined = self.quarantine.append(rows, refused, seen, run.txn, dlq,
                                                     run.version)
            steps.mark("quarantine+dlq")

    def _count(self, parsed: DataFrame, valid: Any, reason: Any,
               watermark: datetime | None, horizon: datetime | None) -> list[Any]:
        """One job for every question the write needs answered before it writes."""
        from pyspark.sql import functions as F

        ts = F.col("event_timestamp")
        kept = valid & F.col(_DROP).isNull()
        is_late = F.lit(False) if watermark is None else ts < F.lit(watermark)
        on_time = F.when(kept & ~is_late, ts)
        too_late = F.lit(False) if horizon is None else ts < F.lit(horizon)
        bucket = (F.floor(F.unix_seconds(ts) / BUCKET_SECONDS) * BUCKET_SECONDS).cast("long")
        return (
            parsed.groupBy("topic", "partition")
            .agg(
                F.count(F.lit(1)).alias("n"),
                F.sum(F.when(valid, 1).otherwise(0)).alias("valid"),
                F.sum(F.when(valid & F.col(_DROP).isNotNull(), 1).otherwise(0)).alias("dropped"),
                F.sum(F.when(valid & is_late, 1).otherwise(0)).alias("late"),
                F.sum(F.when(kept & too_late, 1).otherwise(0)).alias("too_late"),
                F.collect_set(F.when(kept & ~too_late, bucket)).alias("buckets"),
                F.min("offset").alias("min_offset"),
                F.max("offset").alias("max_offset"),
                F.max(F.when(valid, ts)).alias("max_event"),
                F.min(on_time).alias("min_on_time"),
                F.max(on_time).alias("max_on_time"),
                F.collect_set(F.when(kept, F.to_date(ts))).alias("dates"),
                *self.checks.aggregates(valid, reason),
            )
            .collect()
        )

    @staticmethod
    def _totals(counts: list[Any]) -> tuple[WriteCounts, dict[str, float], set[date]]:
        out = WriteCounts()
        sums: dict[str, float] = {}
        dates: set[date] = set()
        buckets: set[int] = set()
        for row in counts:
            out.records += int(row["n"])
            out.valid += int(row["valid"])
            out.dropped += int(row["dropped"])
            out.late += int(row["late"])
            out.too_late += int(row["too_late"])
            buckets.update(int(b) for b in row["buckets"])
            out.offsets[str(row["partition"])] = int(row["max_offset"]) + 1
            dates.update(row["dates"])
            for name, value in row.asDict().items():
                if name.startswith("_q") and value is not None:
                    sums[name] = sums.get(name, 0.0) + float(value)
        lows = [r["min_on_time"] for r in counts if r["min_on_time"] is not None]
        highs = [r["max_on_time"] for r in counts if r["max_on_time"] is not None]
        if lows:
            out.span = affected_windows(as_utc(min(lows)), as_utc(max(highs)))
        out.spans = bucket_spans(buckets)
        newest = [r["max_event"] for r in counts if r["max_event"] is not None]
        out.newest_event = as_utc(max(newest)) if newest else None
        return out, sums, dates


class StepTimer:
    """Durations of a write's steps, logged at debug level for profiling
    (`micro-batch N: parse+count=..s bronze=..s ...`, which `bench.profiling` reads)."""

    def __init__(self, label: int | str) -> None:
        self.label = label
        self.last = time.monotonic()
        self.steps: list[str] = []

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.steps.append(f"{name}={now - self.last:.2f}s")
        self.last = now

    def log(self) -> None:
        log.debug("micro-batch %s: %s", self.label, " ".join(self.steps))


def log_trigger_overhead(query: StreamingQuery) -> None:
    """Spark's own timings of the previous trigger (offset fetch, WAL, commit), for
    profiling what a micro-batch costs outside foreachBatch."""
    progress = query.lastProgress
    if progress:
        durations = progress.get("durationMs") or {}
        log.debug("trigger %s: %s", progress.get("batchId"),
                  " ".join(f"{k}={v}ms" for k, v in sorted(durations.items())))
