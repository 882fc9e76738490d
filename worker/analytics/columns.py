"""Machine-readable output schemas of the analyses (docs/analyses.md).

`OUTPUT_COLUMNS` is the single source of truth for what each analysis writes: the analysis
functions get their docstring column tables from it, the tests check every function's real
Spark schema against it, and README generation can render it. Types are Spark
`DataType.simpleString()` names so they can be compared with `df.schema` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

# (column, spark type, description)
Column = tuple[str, str, str]

REALTIME_DASHBOARD = "realtime_dashboard"

OUTPUT_COLUMNS: dict[str, list[Column]] = {
    "revenue_by_category": [
        ("category", "string", "Product category"),
        ("total_revenue", "double", "Sum of total_amount of completed transactions"),
        ("avg_order_value", "double", "Mean total_amount of completed transactions"),
        ("transaction_count", "bigint", "Number of completed transactions"),
        ("total_units_sold", "bigint", "Sum of quantity"),
        ("avg_discount_pct", "double", "Mean discount_percent (nulls ignored; null if all null)"),
        ("unique_customers", "bigint", "Distinct customer_id count"),
    ],
    "revenue_by_region": [
        ("region", "string", "Geographic region"),
        ("city", "string", "City of the transaction origin"),
        ("total_revenue", "double", "Sum of total_amount of completed transactions"),
        ("transaction_count", "bigint", "Number of completed transactions"),
        ("avg_order_value", "double", "Mean total_amount of completed transactions"),
        ("active_stores", "bigint", "Distinct non-null store_id count"),
        ("unique_customers", "bigint", "Distinct customer_id count"),
    ],
    "payment_analysis": [
        ("payment_method", "string", "Payment method"),
        ("card_network", "string", "Card network; null for non-card payments (own group)"),
        ("transaction_count", "bigint", "Number of completed transactions"),
        ("total_revenue", "double", "Sum of total_amount of completed transactions"),
        ("avg_transaction_value", "double", "Mean total_amount of completed transactions"),
        ("unique_customers", "bigint", "Distinct customer_id count"),
        (
            "revenue_share_pct",
            "double",
            "total_revenue / total completed revenue of all groups * 100, rounded to 2 "
            "decimals (half up); null if the overall revenue is 0",
        ),
    ],
    "customer_segmentation": [
        ("customer_id", "string", "Customer identifier"),
        ("customer_tier", "string", "Loyalty tier (a customer seen with two tiers gets two rows)"),
        ("lifetime_value", "double", "Sum of total_amount of completed transactions"),
        ("total_transactions", "bigint", "Number of completed transactions"),
        ("avg_order_value", "double", "Mean total_amount of completed transactions"),
        ("last_purchase_date", "timestamp", "Latest event_timestamp (a timestamp, not a date)"),
        ("first_purchase_date", "timestamp", "Earliest event_timestamp (a timestamp, not a date)"),
        ("category_diversity", "bigint", "Distinct categories bought"),
        ("mobile_orders", "bigint", "Completed transactions with channel = mobile_app"),
        ("web_orders", "bigint", "Completed transactions with channel = web"),
        ("instore_orders", "bigint", "Completed transactions with channel = pos_in_store"),
        (
            "segment",
            "string",
            "vip (lifetime_value >= 10000), high_value (>= 5000), mid_value (>= 1000), "
            "one_time (1 transaction), else low_value; first match wins",
        ),
    ],
    "fraud_analysis": [
        ("category", "string", "Product category"),
        ("region", "string", "Geographic region"),
        ("channel", "string", "Sales channel"),
        ("payment_method", "string", "Payment method"),
        (
            "fraud_count",
            "bigint",
            "Transactions (any status) with is_fraudulent = true or fraud_score > 0.7",
        ),
        ("fraud_total_amount", "double", "Sum of total_amount of those transactions"),
        ("avg_fraud_score", "double", "Mean fraud_score (nulls ignored; null if all null)"),
        ("avg_fraud_amount", "double", "Mean total_amount of those transactions"),
        ("affected_customers", "bigint", "Distinct customer_id count"),
        ("affected_cities", "array<string>", "Distinct cities, sorted ascending"),
    ],
    "hourly_trends": [
        ("event_date", "date", "UTC date of event_timestamp"),
        ("event_hour", "int", "UTC hour of event_timestamp (0-23)"),
        ("transaction_count", "bigint", "Number of completed transactions"),
        ("hourly_revenue", "double", "Sum of total_amount of completed transactions"),
        ("avg_order_value", "double", "Mean total_amount of completed transactions"),
        ("unique_customers", "bigint", "Distinct customer_id count"),
        ("units_sold", "bigint", "Sum of quantity"),
    ],
    "channel_performance": [
        ("channel", "string", "Sales channel"),
        ("transaction_count", "bigint", "Number of completed transactions"),
        ("total_revenue", "double", "Sum of total_amount of completed transactions"),
        ("avg_order_value", "double", "Mean total_amount of completed transactions"),
        ("unique_customers", "bigint", "Distinct customer_id count"),
        ("avg_discount", "double", "Mean discount_percent (nulls ignored; null if all null)"),
        ("fraud_count", "bigint", "Completed transactions with is_fraudulent = true"),
        ("avg_fraud_score", "double", "Mean fraud_score (nulls ignored; null if all null)"),
        (
            "fraud_rate_pct",
            "double",
            "fraud_count / transaction_count * 100, rounded to 4 decimals (half up)",
        ),
    ],
    "inventory_velocity": [
        ("product_id", "string", "Product identifier"),
        ("product_name", "string", "Product name"),
        ("category", "string", "Product category"),
        ("sub_category", "string", "Sub-category (nullable)"),
        ("brand", "string", "Brand (nullable)"),
        ("total_units_sold", "bigint", "Sum of quantity of completed transactions"),
        ("order_count", "bigint", "Number of completed transactions"),
        ("total_revenue", "double", "Sum of total_amount"),
        ("avg_selling_price", "double", "Mean unit_price"),
        ("avg_discount", "double", "Mean discount_percent (nulls ignored; null if all null)"),
        ("regions_sold_in", "bigint", "Distinct regions"),
        ("stores_sold_in", "bigint", "Distinct non-null store_id count"),
        ("first_sale", "timestamp", "Earliest event_timestamp"),
        ("last_sale", "timestamp", "Latest event_timestamp"),
        ("days_in_range", "int", "datediff(last_sale, first_sale) + 1, UTC calendar days"),
        (
            "daily_velocity",
            "double",
            "total_units_sold / days_in_range, rounded to 2 decimals (half up)",
        ),
    ],
    REALTIME_DASHBOARD: [
        ("window_start", "timestamp", "Window start (inclusive), aligned to the minute"),
        ("window_end", "timestamp", "Window end (exclusive) = window_start + 5 minutes"),
        ("category", "string", "Product category"),
        ("txn_count", "bigint", "Completed + pending transactions in the window"),
        ("window_revenue", "double", "Sum of their total_amount"),
        ("avg_order_value", "double", "Mean of their total_amount"),
        ("fraud_alerts", "bigint", "Of those, transactions with is_fraudulent = true"),
        (
            "approx_unique_customers",
            "bigint",
            "approx_count_distinct(customer_id) (HyperLogLog++, rsd 0.05)",
        ),
    ],
}

F = TypeVar("F", bound=Callable[..., object])


def columns_table(analysis: str) -> str:
    """Render an analysis' output columns as an aligned plain-text table (docstrings, CLI)."""
    cols = OUTPUT_COLUMNS[analysis]
    w_name = max(len(c[0]) for c in cols)
    w_type = max(len(c[1]) for c in cols)
    return "\n".join(f"{n:<{w_name}}  {t:<{w_type}}  {d}" for n, t, d in cols)


def documents(analysis: str) -> Callable[[F], F]:
    """Append the analysis' output column table to the decorated function's docstring.

    Generated rather than hand-copied so the docstring can never drift from OUTPUT_COLUMNS.
    """

    def decorate(fn: F) -> F:
        table = "\n".join("    " + line for line in columns_table(analysis).splitlines())
        fn.__doc__ = f"{(fn.__doc__ or '').rstrip()}\n\n    Output columns:\n\n{table}\n"
        return fn

    return decorate
