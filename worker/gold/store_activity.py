"""gold.store_activity: 15-minute windows sliding every 5 minutes, per store.

Transactions without a store_id (online sales) form one group of their own, keyed
"online", so the table answers "how is each point of sale doing" for online too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from contracts.tables import GOLD_STORE_ACTIVITY
from worker.gold.common import (
    ONLINE_STORE,
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
    name=GOLD_STORE_ACTIVITY.name,
    path=lambda paths: paths.store_activity,
    size=timedelta(minutes=15),
    slide=timedelta(minutes=5),
    keys=("store_id",),
)

METRICS = ["txn_count", "revenue", "avg_value", "fraud_count", "fraud_rate_pct",
           "unique_customers", "unique_sessions"]


def compute(silver: DataFrame, scores: DataFrame | None = None) -> DataFrame:
    """One row per (window, store) with at least one transaction. `scores` is unused."""
    from pyspark.sql import functions as F

    rows = windowed(silver, SPEC).withColumn(
        "store_id", F.coalesce(F.col("store_id"), F.lit(ONLINE_STORE)))
    grouped = rows.groupBy(WINDOW_START, WINDOW_END, "store_id").agg(
        F.count(F.lit(1)).cast("long").alias("txn_count"),
        revenue().alias("revenue"),
        F.avg("total_amount").cast("double").alias("avg_value"),
        count_where(F.col("is_fraudulent")).alias("fraud_count"),
        distinct("customer_id").alias("unique_customers"),
        distinct("session_id").alias("unique_sessions"),
    )
    grouped = grouped.withColumn(
        "fraud_rate_pct", rate_pct(F.col("fraud_count"), F.col("txn_count")))
    return finish(grouped, SPEC, METRICS)
