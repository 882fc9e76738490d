"""Keeps the gold business tables (docs/gold-tables.md) in step with silver.

Given the event-time spans a write to silver touched, each table recomputes, from silver,
every one of its windows that overlaps a span and replaces those windows, in one commit
per table. Recomputing from the table (rather than adding increments) makes an update
idempotent, and a late row simply adds a span in the past: the windows it falls into are
recomputed whatever their age.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from worker.event_spans import EventSpan, merge_spans, sql_in_spans, widen, window_starts
from worker.gold import customer_activity, hourly_summary, region_activity, store_activity
from worker.gold.common import WINDOW_START, GoldSpec
from worker.storage import StoragePaths

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import Column, DataFrame, SparkSession

    Compute = Callable[[DataFrame, DataFrame | None], DataFrame]

# In refresh order; each is (spec, compute).
TABLES: tuple[tuple[GoldSpec, Compute], ...] = (
    (store_activity.SPEC, store_activity.compute),
    (customer_activity.SPEC, customer_activity.compute),
    (region_activity.SPEC, region_activity.compute),
    (hourly_summary.SPEC, hourly_summary.compute),
)

# The tables are not partitioned. They hold aggregates, a few hundred rows per day and
# key, so date partitions would mostly add a directory and a tiny file per day and write.
# Each write is coalesced to one file holding only the windows it recomputed, so the
# files' min/max statistics on window_start (the first column) let replaceWhere find the
# few files a span touches without partitions.


class GoldUpdater:
    def __init__(self, spark: SparkSession, paths: StoragePaths,
                 velocity_minutes: float = 30.0) -> None:
        self.spark = spark
        self.paths = paths
        self.velocity = timedelta(minutes=velocity_minutes)
        self._existing: set[str] = set()  # tables known to exist: once created, they stay
        # A stream refresher and a backfill may both recompute: one at a time, or their
        # overwrites of the same windows would conflict.
        self._lock = threading.Lock()

    def recompute(self, spans: list[EventSpan]) -> dict[str, int]:
        """Recompute every window of every gold table that overlaps one of the event-time
        spans, from silver, and replace those windows. Returns rows written per table."""
        spans = merge_spans(spans)
        if not spans:
            return {}
        with self._lock:
            silver = self._silver()
            if silver is None:
                return {spec.name: 0 for spec, _ in TABLES}
            return {spec.name: self._recompute_table(spec, compute, silver, spans)
                    for spec, compute in TABLES}

    def rebuild(self) -> dict[str, int]:
        """Recompute every table from all of silver, replacing its whole content."""
        with self._lock:
            silver = self._silver()
            if silver is None:
                return {spec.name: 0 for spec, _ in TABLES}
            written = {}
            for spec, compute in TABLES:
                scores = self._scores(None) if spec.widen_by_velocity else None
                result = compute(silver, scores)
                written[spec.name] = self._write(spec, result, None)
            return written

    def _recompute_table(self, spec: GoldSpec, compute: Compute, silver: DataFrame,
                         spans: list[EventSpan]) -> int:
        from pyspark.sql import functions as F

        if spec.widen_by_velocity:
            spans = widen(spans, after=self.velocity)
        starts = window_starts(spans, spec.size, spec.slide)
        # The windows starting in [first, last + slide) hold the event times in
        # [first, last + size).
        reads = merge_spans(EventSpan(s.start, s.end - spec.slide + spec.size)
                            for s in starts)
        rows = silver.where(_in_spans(reads))
        scores = self._scores(reads) if spec.widen_by_velocity else None
        result = compute(rows, scores).where(F.expr(sql_in_spans(WINDOW_START, starts)))
        return self._write(spec, result, starts)

    def _write(self, spec: GoldSpec, result: DataFrame, starts: list[EventSpan] | None
               ) -> int:
        """Write `result` as the windows starting in `starts` (all windows when None).
        The result is cached so that counting it and writing it aggregate once."""
        from delta.tables import DeltaTable

        target = str(spec.path(self.paths))
        if spec.name not in self._existing and DeltaTable.isDeltaTable(self.spark, target):
            self._existing.add(spec.name)
        frame = result.coalesce(1).persist()
        try:
            count = frame.count()
            writer = frame.write.format("delta")
            if spec.name not in self._existing:
                writer.mode("append").save(target)
                self._existing.add(spec.name)
            elif starts is None:
                writer.mode("overwrite").save(target)
            else:
                # Replace the windows in one commit rather than MERGE them: a MERGE rewrites
                # every file holding a matched row, copying the file's other rows along;
                # replaceWhere deletes the windows and adds the new ones as a file of their
                # own, so the work stays proportional to the spans (as worker/dashboard.py).
                (writer.mode("overwrite")
                 .option("replaceWhere", sql_in_spans(WINDOW_START, starts)).save(target))
            return count
        finally:
            frame.unpersist()

    def _silver(self) -> DataFrame | None:
        from delta.tables import DeltaTable

        path = str(self.paths.silver)
        if not DeltaTable.isDeltaTable(self.spark, path):
            return None
        return self.spark.read.format("delta").load(path)

    def _scores(self, reads: list[EventSpan] | None) -> DataFrame | None:
        """gold.fraud_scores rows in the spans (all when None), or None if it does not
        exist yet. Scores share their transaction's event time, so the same spans apply."""
        from delta.tables import DeltaTable

        path = str(self.paths.fraud_scores)
        if not DeltaTable.isDeltaTable(self.spark, path):
            return None
        scores = self.spark.read.format("delta").load(path)
        if reads is None:
            return scores
        return scores.where(_in_spans(reads, by_date="event_date" in scores.columns))


def _in_spans(spans: list[EventSpan], *, by_date: bool = True) -> Column:
    """event_timestamp inside the spans, with the event_date predicate that lets Delta
    prune the date partitions (the timestamp alone does not)."""
    from pyspark.sql import functions as F

    times = sql_in_spans("event_timestamp", spans)
    if not by_date:
        return F.expr(times)
    dates = " OR ".join(
        f"(event_date >= '{_date(s.start)}' AND event_date <= '{_date(s.end - _US)}')"
        for s in spans) or "false"
    return F.expr(f"({dates}) AND ({times})")


_US = timedelta(microseconds=1)


def _date(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()
