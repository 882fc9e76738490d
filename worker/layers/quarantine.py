"""Quarantine: what silver refused, with the raw bytes and the reason, plus the DLQ copy.

A record lands here when it breaks the record contract (the parser's reason) or fails a
`drop` expectation (the expectation's name is the reason). Like bronze, a record is kept
once per (topic, partition, offset): when the bronze write found records it already held
(a replay of a range ingested before), those coordinates are looked up here too, so a
backfill over quarantined records adds nothing and sends no second DLQ copy.
"""

from __future__ import annotations

from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING

from worker.dlq import DlqForwarder

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


def quarantine_rows(records: DataFrame, reason: Column) -> DataFrame:
    from pyspark.sql import functions as F

    return records.select(
        F.col("key").alias("raw_key"),
        F.col("value").alias("raw_value"),
        reason.alias("reason"),
        "topic",
        "partition",
        "offset",
        F.col("timestamp").alias("kafka_timestamp"),
        F.current_timestamp().alias("quarantined_at"),
    )


class QuarantineWriter:
    def __init__(self, spark: SparkSession, path: Path) -> None:
        self.spark = spark
        self.path = path

    def append(self, rows: DataFrame, count: int,
               seen_ranges: dict[tuple[str, int], tuple[int, int]], txn: dict[str, str],
               dlq: DlqForwarder | None, dlq_key: int | str) -> int:
        """Append `rows` (`count` of them, in quarantine's columns) and forward them to the
        DLQ; rows whose coordinates fall in `seen_ranges` are first checked against the
        table. Returns the number of rows appended."""
        from delta.tables import DeltaTable
        from pyspark.sql import functions as F

        new: int | None = None
        if seen_ranges and DeltaTable.isDeltaTable(self.spark, str(self.path)):
            within = reduce(lambda a, b: a | b, [
                (F.col("topic") == topic) & (F.col("partition") == partition)
                & F.col("offset").between(low, high)
                for (topic, partition), (low, high) in seen_ranges.items()])
            present = (self.spark.read.format("delta").load(str(self.path)).where(within)
                       .select("topic", "partition", "offset"))
            rows = rows.join(present, ["topic", "partition", "offset"], "left_anti")
            rows = rows.persist()
            new = rows.count()
        try:
            if new == 0:
                return 0
            rows.write.format("delta").mode("append").options(**txn).save(str(self.path))
            # The DLQ carries the original bytes, with headers naming the error and the
            # origin; a DLQ that cannot take them is owed the copies, never a reason to stop.
            if dlq is not None:
                dlq.forward(rows, dlq_key)
            return new if new is not None else count
        finally:
            if new is not None:
                rows.unpersist()
