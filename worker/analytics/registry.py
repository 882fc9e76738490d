"""analysis_type -> analysis function (docs/analyses.md#registry)."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame

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

Analysis = Callable[[DataFrame], DataFrame]

FULL_REPORT = "full_report"

# Insertion order is the fixed order in which full_report runs (and reports) the analyses:
# the order of the table in docs/analyses.md#registry.
ANALYSES: dict[str, Analysis] = {
    "revenue_by_category": revenue_by_category,
    "revenue_by_region": revenue_by_region,
    "payment_analysis": payment_analysis,
    "customer_segmentation": customer_segmentation,
    "fraud_analysis": fraud_analysis,
    "hourly_trends": hourly_trends,
    "channel_performance": channel_performance,
    "inventory_velocity": inventory_velocity,
}

ANALYSIS_TYPES: tuple[str, ...] = (*ANALYSES, FULL_REPORT)
"""Every valid run_batch analysis_type."""


def analyses_for(analysis_type: str) -> list[str]:
    """The analysis names a run_batch of `analysis_type` executes, in execution order.

    Raises KeyError for an unknown analysis_type.
    """
    if analysis_type == FULL_REPORT:
        return list(ANALYSES)
    if analysis_type not in ANALYSES:
        raise KeyError(analysis_type)
    return [analysis_type]
