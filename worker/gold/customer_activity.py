"""gold.customer_activity: 1-hour tumbling windows per customer, with how many of the
customer's transactions the fraud rules rated HIGH or CRITICAL (gold.fraud_scores) and a
`suspicious` flag: the velocity rule fired on one of them, or one is high-risk."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from contracts.fraud import ALERT_LEVELS, Rule
from contracts.tables import GOLD_CUSTOMER_ACTIVITY
from worker.gold.common import (
    WINDOW_END,
    WINDOW_START,
    GoldSpec,
    count_where,
    distinct,
    finish,
    revenue,
    windowed,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

SPEC = GoldSpec(
    name=GOLD_CUSTOMER_ACTIVITY.name,
    path=lambda paths: paths.customer_activity,
    size=timedelta(hours=1),
    slide=timedelta(hours=1),
    keys=("customer_id",),
    widen_by_velocity=True,
)

METRICS = ["txn_count", "revenue", "distinct_stores", "distinct_payment_methods",
           "high_risk_count", "suspicious"]

HIGH_RISK_LEVELS = sorted(str(level) for level in ALERT_LEVELS)


def compute(silver: DataFrame, scores: DataFrame | None) -> DataFrame:
    """One row per (window, customer) with at least one transaction. `scores` holds
    gold.fraud_scores rows (transaction_id, risk_level, reasons), or None when that table
    does not exist yet: then no transaction is high-risk and none fired the velocity rule."""
    from pyspark.sql import functions as F

    if scores is None:
        rows = (silver.withColumn("risk_level", F.lit(None).cast("string"))
                .withColumn("reasons", F.lit(None).cast("array<string>")))
    else:
        rows = silver.join(scores.select("transaction_id", "risk_level", "reasons"),
                           "transaction_id", "left")
    high_risk = F.col("risk_level").isin(*HIGH_RISK_LEVELS)
    velocity = F.array_contains(F.col("reasons"), str(Rule.VELOCITY))
    grouped = windowed(rows, SPEC).groupBy(WINDOW_START, WINDOW_END, "customer_id").agg(
        F.count(F.lit(1)).cast("long").alias("txn_count"),
        revenue().alias("revenue"),
        distinct("store_id").alias("distinct_stores"),
        distinct("payment_method").alias("distinct_payment_methods"),
        count_where(high_risk).alias("high_risk_count"),
        F.coalesce(F.max(velocity), F.lit(False)).alias("_velocity"),
    )
    grouped = grouped.withColumn(
        "suspicious", F.col("_velocity") | (F.col("high_risk_count") > 0))
    return finish(grouped, SPEC, METRICS)
