"""The eight batch analyses (docs/analyses.md) as pure DataFrame -> DataFrame transformations.

Each function only builds a logical plan: no Spark actions, no I/O, no session access, so the
batch runner decides when and where (which FAIR pool, which job tag) the work runs, and the
functions can be unit-tested on a plain local session.

Conventions, applied the same way everywhere:

* Aggregations, filters and thresholds are the ones docs/analyses.md defines.
* Each analysis' sort order is extended with the group keys as tie-breakers, so the
  output order is fully deterministic (Spark otherwise returns ties in arbitrary order).
  String keys sort ascending with nulls last.
* Spark 4 runs with ANSI mode on, where dividing by zero raises; the one ratio whose divisor
  can legitimately be zero (a payment share of zero total revenue) uses `try_divide` and
  yields null instead.
* `event_timestamp` dates and hours are taken in the session time zone, which this project
  pins to UTC.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from worker.analytics.columns import documents

COMPLETED = "completed"
FRAUD_SCORE_THRESHOLD = 0.7

# Lifetime-value thresholds of the customer segments, checked top-down.
VIP_THRESHOLD = 10_000
HIGH_VALUE_THRESHOLD = 5_000
MID_VALUE_THRESHOLD = 1_000


def _completed(df: DataFrame) -> DataFrame:
    return df.filter(F.col("transaction_status") == COMPLETED)


def _asc(*names: str) -> list[Column]:
    # Explicit null placement so the order does not depend on Spark's default.
    return [F.col(n).asc_nulls_last() for n in names]


def _count_if(condition: Column) -> Column:
    # sum(when(cond, 1).otherwise(0)): null conditions count as 0, and the
    # result is a bigint 0 (not null) for groups without matches.
    return F.sum(F.when(condition, 1).otherwise(0))


@documents("revenue_by_category")
def revenue_by_category(df: DataFrame) -> DataFrame:
    """Revenue, order value and volume per product category.

    Completed transactions only; sorted by total_revenue descending, then category.
    """
    return (
        _completed(df)
        .groupBy("category")
        .agg(
            F.sum("total_amount").alias("total_revenue"),
            F.avg("total_amount").alias("avg_order_value"),
            F.count("transaction_id").alias("transaction_count"),
            F.sum("quantity").cast("bigint").alias("total_units_sold"),
            F.avg("discount_percent").alias("avg_discount_pct"),
            F.countDistinct("customer_id").alias("unique_customers"),
        )
        .orderBy(F.desc("total_revenue"), *_asc("category"))
    )


@documents("revenue_by_region")
def revenue_by_region(df: DataFrame) -> DataFrame:
    """Geographic revenue heatmap per region and city.

    Completed transactions only; sorted by total_revenue descending, then region, city.
    """
    return (
        _completed(df)
        .groupBy("region", "city")
        .agg(
            F.sum("total_amount").alias("total_revenue"),
            F.count("transaction_id").alias("transaction_count"),
            F.avg("total_amount").alias("avg_order_value"),
            F.countDistinct("store_id").alias("active_stores"),
            F.countDistinct("customer_id").alias("unique_customers"),
        )
        .orderBy(F.desc("total_revenue"), *_asc("region", "city"))
    )


@documents("payment_analysis")
def payment_analysis(df: DataFrame) -> DataFrame:
    """Payment preferences per payment method and card network.

    Completed transactions only. A null card_network (non-card payments) forms its own group.
    Sorted by transaction_count descending, then payment_method, card_network.
    """
    # An unpartitioned window over the *aggregated* rows (a few dozen at most), so moving
    # them to one partition is cheap and saves a second scan of the input for the total.
    overall = F.sum("total_revenue").over(Window.partitionBy())
    return (
        _completed(df)
        .groupBy("payment_method", "card_network")
        .agg(
            F.count("transaction_id").alias("transaction_count"),
            F.sum("total_amount").alias("total_revenue"),
            F.avg("total_amount").alias("avg_transaction_value"),
            F.countDistinct("customer_id").alias("unique_customers"),
        )
        .withColumn(
            "revenue_share_pct",
            F.round(F.try_divide(F.col("total_revenue"), overall) * 100, 2),
        )
        .orderBy(F.desc("transaction_count"), *_asc("payment_method", "card_network"))
    )


@documents("customer_segmentation")
def customer_segmentation(df: DataFrame) -> DataFrame:
    """Customer lifetime value, behaviour and segment.

    Completed transactions only, grouped by customer_id and customer_tier.
    Sorted by lifetime_value descending, then customer_id, customer_tier.
    """
    metrics = (
        _completed(df)
        .groupBy("customer_id", "customer_tier")
        .agg(
            F.sum("total_amount").alias("lifetime_value"),
            F.count("transaction_id").alias("total_transactions"),
            F.avg("total_amount").alias("avg_order_value"),
            F.max("event_timestamp").alias("last_purchase_date"),
            F.min("event_timestamp").alias("first_purchase_date"),
            F.countDistinct("category").alias("category_diversity"),
            _count_if(F.col("channel") == "mobile_app").alias("mobile_orders"),
            _count_if(F.col("channel") == "web").alias("web_orders"),
            _count_if(F.col("channel") == "pos_in_store").alias("instore_orders"),
        )
    )
    segment = (
        F.when(F.col("lifetime_value") >= VIP_THRESHOLD, "vip")
        .when(F.col("lifetime_value") >= HIGH_VALUE_THRESHOLD, "high_value")
        .when(F.col("lifetime_value") >= MID_VALUE_THRESHOLD, "mid_value")
        .when(F.col("total_transactions") == 1, "one_time")
        .otherwise("low_value")
    )
    return metrics.withColumn("segment", segment).orderBy(
        F.desc("lifetime_value"), *_asc("customer_id", "customer_tier")
    )


@documents("fraud_analysis")
def fraud_analysis(df: DataFrame) -> DataFrame:
    """Fraud hotspots by category, region, channel and payment method.

    Unlike the other analyses this does not filter on status: a transaction counts when
    is_fraudulent is true or fraud_score > 0.7 (a null label or score never matches on its
    own). affected_cities is sorted so the result is deterministic (collect_set is not).
    Sorted by fraud_count descending, then category, region, channel, payment_method.
    """
    flagged = df.filter(
        (F.col("is_fraudulent") == F.lit(True)) | (F.col("fraud_score") > FRAUD_SCORE_THRESHOLD)
    )
    keys = ("category", "region", "channel", "payment_method")
    return (
        flagged.groupBy(*keys)
        .agg(
            F.count("transaction_id").alias("fraud_count"),
            F.sum("total_amount").alias("fraud_total_amount"),
            F.avg("fraud_score").alias("avg_fraud_score"),
            F.avg("total_amount").alias("avg_fraud_amount"),
            F.countDistinct("customer_id").alias("affected_customers"),
            F.array_sort(F.collect_set("city")).alias("affected_cities"),
        )
        .orderBy(F.desc("fraud_count"), *_asc(*keys))
    )


@documents("hourly_trends")
def hourly_trends(df: DataFrame) -> DataFrame:
    """Hourly time series of completed transactions.

    event_date and event_hour are recomputed from event_timestamp (an input event_date
    column, e.g. the Delta partition column, is replaced by the same value).
    Sorted by event_date, event_hour.
    """
    return (
        _completed(df)
        .withColumn("event_date", F.to_date(F.col("event_timestamp")))
        .withColumn("event_hour", F.hour(F.col("event_timestamp")))
        .groupBy("event_date", "event_hour")
        .agg(
            F.count("transaction_id").alias("transaction_count"),
            F.sum("total_amount").alias("hourly_revenue"),
            F.avg("total_amount").alias("avg_order_value"),
            F.countDistinct("customer_id").alias("unique_customers"),
            F.sum("quantity").cast("bigint").alias("units_sold"),
        )
        .orderBy("event_date", "event_hour")
    )


@documents("channel_performance")
def channel_performance(df: DataFrame) -> DataFrame:
    """Sales channel comparison.

    Completed transactions only. fraud_count counts is_fraudulent = true only (fraud_score
    is reported separately as avg_fraud_score). Sorted by total_revenue descending, then
    channel.
    """
    return (
        _completed(df)
        .groupBy("channel")
        .agg(
            F.count("transaction_id").alias("transaction_count"),
            F.sum("total_amount").alias("total_revenue"),
            F.avg("total_amount").alias("avg_order_value"),
            F.countDistinct("customer_id").alias("unique_customers"),
            F.avg("discount_percent").alias("avg_discount"),
            _count_if(F.col("is_fraudulent") == F.lit(True)).alias("fraud_count"),
            F.avg("fraud_score").alias("avg_fraud_score"),
        )
        # transaction_count >= 1 in every group, so this division is always defined.
        .withColumn(
            "fraud_rate_pct",
            F.round(F.col("fraud_count") / F.col("transaction_count") * 100, 4),
        )
        .orderBy(F.desc("total_revenue"), *_asc("channel"))
    )


@documents("inventory_velocity")
def inventory_velocity(df: DataFrame) -> DataFrame:
    """Product sell-through rate for replenishment.

    Completed transactions only. days_in_range counts UTC calendar days inclusively, so a
    product sold on a single day has days_in_range = 1 and daily_velocity = units sold.
    Sorted by daily_velocity descending, then product_id, product_name, category,
    sub_category, brand.
    """
    keys = ("product_id", "product_name", "category", "sub_category", "brand")
    return (
        _completed(df)
        .groupBy(*keys)
        .agg(
            F.sum("quantity").cast("bigint").alias("total_units_sold"),
            F.count("transaction_id").alias("order_count"),
            F.sum("total_amount").alias("total_revenue"),
            F.avg("unit_price").alias("avg_selling_price"),
            F.avg("discount_percent").alias("avg_discount"),
            F.countDistinct("region").alias("regions_sold_in"),
            F.countDistinct("store_id").alias("stores_sold_in"),
            F.min("event_timestamp").alias("first_sale"),
            F.max("event_timestamp").alias("last_sale"),
        )
        .withColumn("days_in_range", F.datediff(F.col("last_sale"), F.col("first_sale")) + 1)
        # days_in_range >= 1 (last_sale >= first_sale), so this division is always defined.
        .withColumn(
            "daily_velocity",
            F.round(F.col("total_units_sold") / F.col("days_in_range"), 2),
        )
        .orderBy(F.desc("daily_velocity"), *_asc(*keys))
    )
