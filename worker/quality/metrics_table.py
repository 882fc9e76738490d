"""`quality.metrics`: one row per micro-batch and expectation, in Delta.

Appended with the micro-batch's idempotency key, so a replayed micro-batch does not add
its rows twice. The last rows of each expectation also seed the alert windows when the
stream starts again, so a restart neither forgets an alert nor raises it twice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from worker.quality.checks import Outcome

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SCHEMA = (
    "layer STRING, expectation STRING, action STRING, rows_checked LONG, rows_failed LONG, "
    "metric DOUBLE, passed BOOLEAN, micro_batch_id LONG, checked_at TIMESTAMP, run STRING"
)
STREAM_RUN = "stream"


def write_metrics(spark: SparkSession, path: Path, outcomes: list[Outcome], *,
                  micro_batch_id: int, checked_at: datetime, run: str,
                  txn: dict[str, str]) -> None:
    from pyspark.sql import functions as F

    if not outcomes:
        return
    # Literal rows, built in the JVM: createDataFrame from Python rows would start Python
    # workers for six rows on every micro-batch.
    rows = [F.struct(
        F.lit(o.expectation.layer).alias("layer"),
        F.lit(o.expectation.name).alias("expectation"),
        F.lit(str(o.expectation.action)).alias("action"),
        F.lit(o.rows_checked).cast("long").alias("rows_checked"),
        F.lit(o.rows_failed).cast("long").alias("rows_failed"),
        F.lit(None if o.metric is None else float(o.metric)).cast("double").alias("metric"),
        F.lit(o.passed).alias("passed"),
        F.lit(micro_batch_id).cast("long").alias("micro_batch_id"),
        F.lit(checked_at).cast("timestamp").alias("checked_at"),
        F.lit(run).alias("run"),
    ) for o in outcomes]
    frame = spark.range(1).select(F.inline(F.array(*rows)))
    frame.write.format("delta").mode("append").options(**txn).save(str(path))


def recent_windows(spark: SparkSession, path: Path, depth: int
                   ) -> dict[str, list[tuple[int, int]]]:
    """The stream's last `depth` (rows_checked, rows_failed) per `layer.expectation`,
    oldest first; empty when the table does not exist yet."""
    from delta.tables import DeltaTable
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not DeltaTable.isDeltaTable(spark, str(path)):
        return {}
    order = Window.partitionBy("layer", "expectation").orderBy(F.col("checked_at").desc(),
                                                                F.col("micro_batch_id").desc())
    rows = (spark.read.format("delta").load(str(path)).where(F.col("run") == STREAM_RUN)
            .withColumn("_n", F.row_number().over(order)).where(F.col("_n") <= depth)
            .orderBy("checked_at", "micro_batch_id").collect())
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for row in rows:
        out[f"{row['layer']}.{row['expectation']}"].append(
            (int(row["rows_checked"]), int(row["rows_failed"])))
    return dict(out)
