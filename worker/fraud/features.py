"""The fraud model's features, shared by training and serving (docs/fraud-model.md#features).

Computed from the transaction's own fields and its velocity only: never from the label
(`is_fraudulent`) nor from the producer's `fraud_score`, which a real feed would not have.
Every feature column is prefixed `f_`, so that adding them never clashes with a column of
the frame being scored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.fraud.velocity import VELOCITY_COUNT, with_velocity

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# Categorical features: the transaction's field, a missing value becomes "none".
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "f_payment_method", "f_category", "f_channel", "f_device_type", "f_customer_tier",
    "f_region", "f_card_network", "f_event_hour",
)
NUMERIC_FEATURES: tuple[str, ...] = (
    "f_log_total_amount", "f_log_unit_price", "f_quantity", "f_discount_percent",
    "f_is_weekend", "f_velocity_count",
)
FEATURES: list[str] = [*CATEGORICAL_FEATURES, *NUMERIC_FEATURES]
LABEL = "is_fraudulent"


def feature_frame(frame: DataFrame, velocity_minutes: float) -> DataFrame:
    """`frame` (silver's columns at least the contract's) with the FEATURES columns added.

    `velocity_count` is computed over `frame` when it is not there yet (training: over
    the whole range read); the stream passes it in, computed over silver's recent rows.
    The hour is taken as a category: fraud's night peak is not linear in the hour.
    """
    from pyspark.sql import functions as F

    if VELOCITY_COUNT not in frame.columns:
        frame = with_velocity(frame, velocity_minutes)

    def category(column: str) -> object:
        return F.coalesce(F.col(column).cast("string"), F.lit("none"))

    def number(column: object) -> object:
        return F.coalesce(column, F.lit(0.0)).cast("double")  # type: ignore[arg-type]

    # Session time zone is UTC (worker.spark_session), so hour() is the UTC hour.
    weekday = F.dayofweek("event_timestamp")  # 1 = Sunday ... 7 = Saturday
    return frame.select(
        "*",
        category("payment_method").alias("f_payment_method"),
        category("category").alias("f_category"),
        category("channel").alias("f_channel"),
        category("device_type").alias("f_device_type"),
        category("customer_tier").alias("f_customer_tier"),
        category("region").alias("f_region"),
        category("card_network").alias("f_card_network"),
        F.hour("event_timestamp").cast("string").alias("f_event_hour"),
        number(F.log1p(F.col("total_amount"))).alias("f_log_total_amount"),
        number(F.log1p(F.col("unit_price"))).alias("f_log_unit_price"),
        number(F.col("quantity")).alias("f_quantity"),
        number(F.col("discount_percent")).alias("f_discount_percent"),
        weekday.isin(1, 7).cast("double").alias("f_is_weekend"),
        number(F.col(VELOCITY_COUNT)).alias("f_velocity_count"),
    )
