"""Bronze: every Kafka record as received, appended exactly once.

Columns: `key`, `value` (the bytes as received), `headers`, `topic`, `partition`,
`offset`, `kafka_timestamp`, `ingested_at`. Nothing is dropped or parsed here: this is the
table an audit or a replay starts from.

Exactly once per (topic, partition, offset), whoever writes: the stream's micro-batches,
a backfill of the same range, a second stream checkpoint. A write first compares its
offsets with the highest offset bronze holds per partition (kept in memory, read once):
records above it are new, which is every record of a stream that keeps up, so the common
case costs no lookup. Only records at or below it are looked up in bronze (by topic and
offset range, which Delta's file statistics narrow down) and skipped when present. Writes
are serialised by one lock, so two writers can never both find a record missing.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

COLUMNS = ("key", "value", "headers", "topic", "partition", "offset", "kafka_timestamp",
           "ingested_at")


def bronze_rows(records: DataFrame) -> DataFrame:
    """Kafka source rows (with `ingested_at`) in bronze's columns."""
    from pyspark.sql import functions as F

    return records.select("key", "value", "headers", "topic", "partition", "offset",
                          F.col("timestamp").alias("kafka_timestamp"), "ingested_at")


class BronzeWriter:
    def __init__(self, spark: SparkSession, path: Path) -> None:
        self.spark = spark
        self.path = path
        self.lock = threading.Lock()
        self._high: dict[tuple[str, int], int] | None = None  # (topic, partition) -> max

    def append(self, records: DataFrame, ranges: dict[tuple[str, int], tuple[int, int]],
               total: int, txn: dict[str, str]) -> int:
        """Append the records bronze does not hold yet; returns how many were new.
        `ranges` maps (topic, partition) to the batch's (min, max) offsets there, `total`
        is the number of records."""
        with self.lock:
            high = self._highest()
            overlapping = {tp: r for tp, r in ranges.items() if r[0] <= high.get(tp, -1)}
            rows = bronze_rows(records)
            if overlapping:
                rows, new = self._missing_only(rows, overlapping)
            else:
                new = total
            if new:
                rows.write.format("delta").mode("append").options(**txn).save(str(self.path))
            for tp, (_, top) in ranges.items():
                high[tp] = max(high.get(tp, -1), top)
            return new

    def forget(self) -> None:
        """Read the high offsets again on the next write (after a failed write)."""
        with self.lock:
            self._high = None

    # ---- internals ---------------------------------------------------------------------

    def _highest(self) -> dict[tuple[str, int], int]:
        if self._high is None:
            from delta.tables import DeltaTable
            from pyspark.sql import functions as F

            high: dict[tuple[str, int], int] = {}
            if DeltaTable.isDeltaTable(self.spark, str(self.path)):
                for row in (self.spark.read.format("delta").load(str(self.path))
                            .groupBy("topic", "partition").agg(F.max("offset").alias("top"))
                            .collect()):
                    high[(row["topic"], int(row["partition"]))] = int(row["top"])
            self._high = high
        return self._high

    def _missing_only(self, rows: DataFrame,
                      overlapping: dict[tuple[str, int], tuple[int, int]]
                      ) -> tuple[DataFrame, int]:
        from functools import reduce

        from pyspark.sql import functions as F

        stored = self.spark.read.format("delta").load(str(self.path))
        within = reduce(lambda a, b: a | b, [
            (F.col("topic") == topic) & (F.col("partition") == partition)
            & F.col("offset").between(low, top)
            for (topic, partition), (low, top) in overlapping.items()])
        present = stored.where(within).select("topic", "partition", "offset")
        missing = rows.join(present, ["topic", "partition", "offset"], "left_anti")
        return missing, missing.count()
