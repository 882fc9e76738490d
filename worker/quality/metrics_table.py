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
    rows = [
        (o.expectation.layer, o.expectation.name, str(o.expectation.action), o.rows_checked,
         o.rows_failed, None if o.metric is None else float(o.metric), o.passed,
         micro_batch_id, checked_at, run)
        for o in outcomes
    ]
    if not rows:
        return
    (spark.createDataFrame(rows, SCHEMA).coalesce(1).write.format("delta").mode("append")
     .options(**txn).save(str(path)))


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
