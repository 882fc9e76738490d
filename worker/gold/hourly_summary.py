"""gold.hourly_summary: 1-hour tumbling windows over the whole platform, with the mix of
payment methods as a map (method -> transactions)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from contracts.tables import GOLD_HOURLY_SUMMARY
from worker.gold.common import (
    WINDOW_END,
    WINDOW_START,
    GoldSpec,
    count_where,
    finish,
    rate_pct,
    revenue,
    windowed,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

SPEC = GoldSpec(
    name=GOLD_HOURLY_SUMMARY.name,
    path=lambda paths: paths.hourly_summary,
    size=timedelta(hours=1),
    slide=timedelta(hours=1),
    keys=(),
)

HIGH_VALUE = 1000.0  # a "high value" transaction has total_amount above this

METRICS = ["txn_count", "revenue", "avg_value", "fraud_rate_pct", "high_value_rate_pct",
           "payment_method_counts"]


def compute(silver: DataFrame, scores: DataFrame | None = None) -> DataFrame:
    """One row per hour with at least one transaction. `scores` is unused."""
    from pyspark.sql import functions as F

    rows = windowed(silver, SPEC)
    window = [WINDOW_START, WINDOW_END]
    grouped = rows.groupBy(*window).agg(
        F.count(F.lit(1)).cast("long").alias("txn_count"),
        revenue().alias("revenue"),
        F.avg("total_amount").cast("double").alias("avg_value"),
        count_where(F.col("is_fraudulent")).alias("_fraud_count"),
        count_where(F.col("total_amount") > F.lit(HIGH_VALUE)).alias("_high_value_count"),
    )
    # Counted per (hour, method) first and folded into a map: one aggregation, where
    # counting each method inside the hour's list would be quadratic in the hour's size.
    per_method = (rows.where(F.col("payment_method").isNotNull())
                  .groupBy(*window, "payment_method").count()
                  .groupBy(*window)
                  .agg(F.map_from_entries(F.array_sort(F.collect_list(
                      F.struct(F.col("payment_method"), F.col("count").cast("long")))))
                      .alias("payment_method_counts")))
    empty = F.create_map().cast("map<string,bigint>")
    joined = (grouped.join(per_method, window, "left")
              .withColumn("payment_method_counts",
                          F.coalesce(F.col("payment_method_counts"), empty))
              .withColumn("fraud_rate_pct",
                          rate_pct(F.col("_fraud_count"), F.col("txn_count")))
              .withColumn("high_value_rate_pct",
                          rate_pct(F.col("_high_value_count"), F.col("txn_count"))))
    return finish(joined, SPEC, METRICS)
