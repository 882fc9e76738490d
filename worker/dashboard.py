"""The real-time dashboard table (seed 001 §7.8), kept fresh every trigger.

Instead of a watermark-bound streaming aggregation (which only emits once the watermark
passes), the windows that new events fall into are recomputed from `stream/transactions`
and upserted by (window_start, category). Recomputing from the table makes the update
idempotent: a replayed micro-batch writes the same numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.analytics import AffectedWindows, windows_in_spans
from worker.storage import StoragePaths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class DashboardUpdater:
    def __init__(self, spark: SparkSession, paths: StoragePaths) -> None:
        self.spark = spark
        self.paths = paths

    def recompute(self, spans: list[AffectedWindows]) -> None:
        """Recompute, in one MERGE, every window whose start lies in one of the (disjoint)
        spans, from the stored rows."""
        from delta.tables import DeltaTable
        from pyspark.sql import functions as F

        if not spans:
            return
        stored = self.spark.read.format("delta").load(str(self.paths.transactions))
        windows = windows_in_spans(stored, spans).withColumn("updated_at", F.current_timestamp())
        target = str(self.paths.stream_aggregations)
        if not DeltaTable.isDeltaTable(self.spark, target):
            windows.write.format("delta").mode("append").save(target)
            return
        (
            DeltaTable.forPath(self.spark, target)
            .alias("t")
            .merge(
                windows.alias("s"), "t.window_start = s.window_start AND t.category = s.category"
            )
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )

