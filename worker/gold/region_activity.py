"""gold.region_activity: 30-minute tumbling windows per region."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from contracts.tables import GOLD_REGION_ACTIVITY
from worker.gold.common import (
    WINDOW_END,
    WINDOW_START,
    GoldSpec,
    count_where,
    distinct,
    finish,
    rate_pct,
    revenue,
    windowed,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

SPEC = GoldSpec(
    name=GOLD_REGION_ACTIVITY.name,
    path=lambda paths: paths.region_activity,
    size=timedelta(minutes=30),
    slide=timedelta(minutes=30),
    keys=("region",),
)

METRICS = ["txn_count", "revenue", "fraud_rate_pct", "active_customers", "active_stores"]


def compute(silver: DataFrame, scores: DataFrame | None = None) -> DataFrame:
    """One row per (window, region) with at least one transaction. `scores` is unused."""
    from pyspark.sql import functions as F

    grouped = windowed(silver, SPEC).groupBy(WINDOW_START, WINDOW_END, "region").agg(
        F.count(F.lit(1)).cast("long").alias("txn_count"),
        revenue().alias("revenue"),
        count_where(F.col("is_fraudulent")).alias("_fraud_count"),
        distinct("customer_id").alias("active_customers"),
        distinct("store_id").alias("active_stores"),
    )
    grouped = grouped.withColumn(
        "fraud_rate_pct", rate_pct(F.col("_fraud_count"), F.col("txn_count")))
    return finish(grouped, SPEC, METRICS)
