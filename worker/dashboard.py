"""The real-time dashboard table (docs/analyses.md#dashboard-windows), kept fresh every trigger.

Instead of a watermark-bound streaming aggregation (which only emits once the watermark
passes), the windows that new events fall into are recomputed from silver (`silver.transactions`)
and upserted by (window_start, category). Recomputing from the table makes the update
idempotent: a replayed micro-batch writes the same numbers.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from worker.analytics import AffectedWindows, window_start_predicate, windows_in_spans
from worker.storage import StoragePaths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class DashboardUpdater:
    def __init__(self, spark: SparkSession, paths: StoragePaths) -> None:
        self.spark = spark
        self.paths = paths
        self._table_exists = False  # once it exists, it stays: no need to ask Delta again
        # The stream's refresher and backfills both recompute: one at a time, or their
        # overwrites of the same windows would conflict.
        self._lock = threading.Lock()

    def recompute(self, spans: list[AffectedWindows]) -> None:
        """Recompute, in one commit, every window whose start lies in one of the (disjoint)
        spans, from the stored rows."""

        if not spans:
            return
        with self._lock:
            self._recompute(spans)

    def _recompute(self, spans: list[AffectedWindows]) -> None:
        from delta.tables import DeltaTable
        from pyspark.sql import functions as F

        stored = self.spark.read.format("delta").load(str(self.paths.transactions))
        windows = windows_in_spans(stored, spans).withColumn("updated_at", F.current_timestamp())
        target = str(self.paths.stream_aggregations)
        if not self._table_exists:
            self._table_exists = DeltaTable.isDeltaTable(self.spark, target)
        if not self._table_exists:
            windows.write.format("delta").mode("append").save(target)
            self._table_exists = True
            return
        # Replace the spans' windows in one commit rather than MERGE them: a MERGE rewrites
        # every file holding a matched row, copying the file's other rows along, and as its
        # output files mix all window starts, each MERGE ended up rewriting the whole table.
        # replaceWhere deletes the range and appends the new windows as files of their own,
        # so the work stays proportional to the spans, however long the stream has run.
        (windows.coalesce(1).write.format("delta").mode("overwrite")
         .option("replaceWhere", window_start_predicate(spans)).save(target))

