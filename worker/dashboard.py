"""The real-time dashboard table (seed 001 §7.8), kept fresh every trigger.

Instead of a watermark-bound streaming aggregation (which only emits once the watermark
passes), each micro-batch recomputes just the 5-minute windows its events fall into from
`stream/transactions` and upserts them by (window_start, category). Recomputing from the
table makes the update idempotent: a replayed micro-batch writes the same numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.analytics import AffectedWindows, dashboard_windows
from worker.storage import StoragePaths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class DashboardUpdater:
    def __init__(self, spark: SparkSession, paths: StoragePaths) -> None:
        self.spark = spark
        self.paths = paths

    def recompute(self, span: AffectedWindows) -> None:
        """Recompute every window whose start lies in the span, from the stored rows."""
        from delta.tables import DeltaTable
        from pyspark.sql import functions as F

        lo, hi = span.source_start, span.source_end
        first_start, last_start = span.first_window_start, span.last_window_start
        source = (
            self.spark.read.format("delta")
            .load(str(self.paths.transactions))
            .where(F.col("event_date").between(F.lit(lo.date()), F.lit(hi.date())))
            .where((F.col("event_timestamp") >= F.lit(lo)) & (F.col("event_timestamp") < F.lit(hi)))
        )
        windows = (
            dashboard_windows(source)
            .where(F.col("window_start").between(F.lit(first_start), F.lit(last_start)))
            .withColumn("updated_at", F.current_timestamp())
        )
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
