"""Spark analyses of retail transactions (docs/analyses.md) as pure DataFrame transformations.

Every analysis is `(df: DataFrame) -> DataFrame` over TransactionEvent rows: it builds a
plan and runs nothing. `ANALYSES` maps run_batch analysis types to them, `analyses_for`
expands `full_report`, and `OUTPUT_COLUMNS` describes every output (also for README
generation). The streaming dashboard lives in `realtime_dashboard` / `dashboard_windows`.
"""

from worker.analytics.columns import OUTPUT_COLUMNS, REALTIME_DASHBOARD, columns_table
from worker.analytics.dashboard import (
    DASHBOARD_KEY_COLUMNS,
    AffectedWindows,
    affected_windows,
    dashboard_windows,
    merge_spans,
    realtime_dashboard,
    window_start_predicate,
    windows_in_spans,
)
from worker.analytics.functions import (
    channel_performance,
    customer_segmentation,
    fraud_analysis,
    hourly_trends,
    inventory_velocity,
    payment_analysis,
    revenue_by_category,
    revenue_by_region,
)
from worker.analytics.registry import (
    ANALYSES,
    ANALYSIS_TYPES,
    FULL_REPORT,
    Analysis,
    analyses_for,
)

__all__ = [
    "ANALYSES",
    "ANALYSIS_TYPES",
    "DASHBOARD_KEY_COLUMNS",
    "FULL_REPORT",
    "OUTPUT_COLUMNS",
    "REALTIME_DASHBOARD",
    "AffectedWindows",
    "Analysis",
    "affected_windows",
    "analyses_for",
    "channel_performance",
    "columns_table",
    "customer_segmentation",
    "dashboard_windows",
    "fraud_analysis",
    "hourly_trends",
    "inventory_velocity",
    "merge_spans",
    "payment_analysis",
    "realtime_dashboard",
    "revenue_by_category",
    "revenue_by_region",
    "window_start_predicate",
    "windows_in_spans",
]
