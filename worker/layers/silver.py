"""Silver: contract-valid transactions, typed, enriched, deduplicated on transaction_id.

Enrichment (`enrich`) follows `contracts.silver`, the definition the historical seeder
(delta-rs) also writes by, so both engines produce the same table.

Deduplication (`SilverWriter.append`), in two steps per write:

1. within the write: of the rows sharing a transaction_id, the first received is kept
   (earliest Kafka timestamp, then partition, then offset);
2. against the table: a row is a duplicate when silver already holds its transaction_id
   with an `event_date` within the horizon of the row's (`PIPELINE_DEDUPE_HORIZON_HOURS`,
   at least 24 h, rounded up to whole days either side), whenever the copy arrives. Only
   those date partitions are read, and only the `transaction_id` and `ingest_run` columns.
   Rows that this very write added before (a replayed micro-batch, a re-run backfill
   chunk: same `ingest_run`) are not duplicates of themselves; Delta's idempotent write
   skips the replay as a whole.

The check and the append run under one lock shared by every writer of silver in this
driver (the stream, backfills), so two writers cannot both add the same transaction.
"""

from __future__ import annotations

import math
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.silver import AMOUNT_BANDS, PARTITION_COLUMN, SILVER_EXTRA_COLUMNS
from worker.transaction_parser import contract_columns

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# Lineage columns of the Kafka source rows the writer needs (renamed in `enrich`).
_SOURCE = ("topic", "partition", "offset", "timestamp")


def silver_columns() -> list[str]:
    return [*contract_columns(), *(name for name, _ in SILVER_EXTRA_COLUMNS)]


def amount_band(amount: Column) -> Column:
    from pyspark.sql import functions as F

    band = F.lit(None).cast("string")
    for name, lower in AMOUNT_BANDS:
        band = F.when(amount >= F.lit(lower), F.lit(name)).otherwise(band)
    return band


def enrich(rows: DataFrame, ingest_run: str) -> DataFrame:
    """Parsed, valid rows (contract columns + Kafka source columns) in silver's columns."""
    from pyspark.sql import functions as F

    ts = F.col("event_timestamp")
    # Spark's dayofweek is 1 = Sunday ... 7 = Saturday; ISO is 1 = Monday ... 7 = Sunday.
    iso_day = ((F.dayofweek(ts) + 5) % 7) + 1
    extra = {
        "event_date": F.to_date(ts),
        "event_hour": F.hour(ts),
        "day_of_week": iso_day,
        "is_weekend": iso_day >= 6,
        "amount_band": amount_band(F.col("total_amount")),
        "source_topic": F.col("topic"),
        "source_partition": F.col("partition"),
        "source_offset": F.col("offset"),
        "ingest_run": F.lit(ingest_run),
    }
    typed = dict(SILVER_EXTRA_COLUMNS)
    return rows.select(
        *[F.current_timestamp().alias(c) if c == "processing_timestamp" else F.col(c)
          for c in contract_columns()],
        *[extra[name].cast(typed[name]).alias(name) for name, _ in SILVER_EXTRA_COLUMNS],
    )


class SilverWriter:
    def __init__(self, spark: SparkSession, path: Path, horizon_hours: float) -> None:
        self.spark = spark
        self.path = path
        self.horizon_days = max(1, math.ceil(horizon_hours / 24))
        self.lock = threading.Lock()
        self._exists = False

    def append(self, candidates: DataFrame, dates: set[date], ingest_run: str,
               txn: dict[str, str]) -> int:
        """Append the first copy of each new transaction of `candidates` (valid rows with
        the Kafka source columns, event dates `dates`); returns how many were duplicates
        (the rest was written)."""
        from pyspark.sql import functions as F

        with self.lock:
            losers = self._duplicates(candidates, dates, ingest_run).persist()
            try:
                duplicates = losers.count()
                rows = candidates
                if duplicates:
                    rows = candidates.join(F.broadcast(losers), ["partition", "offset"],
                                           "left_anti")
                (enrich(rows, ingest_run).write.format("delta").mode("append")
                 .partitionBy(PARTITION_COLUMN).options(**txn).save(str(self.path)))
                self._exists = True
            finally:
                losers.unpersist()
        return duplicates

    def _duplicates(self, candidates: DataFrame, dates: set[date],
                    ingest_run: str) -> DataFrame:
        """(partition, offset) of every candidate that must not be written: a later copy
        within the write, or a transaction silver already holds."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        first = Window.partitionBy("transaction_id").orderBy("timestamp", "partition", "offset")
        keys = candidates.select("transaction_id", "timestamp", "partition", "offset") \
            .withColumn("_n", F.row_number().over(first))
        loser = F.col("_n") > 1
        stored = self._stored_ids(dates, ingest_run)
        if stored is not None:
            # Silver's side is the big one: scan it once against the write's ids
            # (broadcast), then mark the few matches.
            matched = (stored.join(F.broadcast(keys.select("transaction_id")),
                                   "transaction_id", "left_semi")
                       .distinct().withColumn("_known", F.lit(True)))
            keys = keys.join(F.broadcast(matched), "transaction_id", "left")
            loser = loser | F.col("_known").isNotNull()
        return keys.where(loser).select("partition", "offset")

    def _stored_ids(self, dates: set[date], ingest_run: str) -> DataFrame | None:
        from delta.tables import DeltaTable
        from pyspark.sql import functions as F

        if not dates:
            return None
        if not self._exists:
            self._exists = DeltaTable.isDeltaTable(self.spark, str(self.path))
            if not self._exists:
                return None
        span = {d + timedelta(days=k) for d in dates
                for k in range(-self.horizon_days, self.horizon_days + 1)}
        return (self.spark.read.format("delta").load(str(self.path))
                .where(F.col(PARTITION_COLUMN).isin(*sorted(span)))
                .where(F.col("ingest_run").isNull() | (F.col("ingest_run") != ingest_run))
                .select("transaction_id"))
