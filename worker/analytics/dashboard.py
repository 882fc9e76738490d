"""Real-time dashboard windows (docs/analyses.md#dashboard-windows).

Two entry points share one aggregation:

* `realtime_dashboard(stream_df)`: the streaming form, watermark (10 minutes) plus
  sliding windows, for a streaming query in update/append mode.
* `dashboard_windows(df)`: the same windows for a *static* DataFrame. The stream manager
  uses it to recompute, per micro-batch, the windows touched by the new rows from silver
  and upsert them into `gold.dashboard`, which keeps the dashboard fresh within a trigger
  instead of only after watermark expiry
  (docs/design.md#the-medallion-one-query-every-layer).
  `affected_windows` tells it which source rows to read and which windows are complete.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from worker.analytics.columns import REALTIME_DASHBOARD, documents

WINDOW_DURATION = timedelta(minutes=5)
SLIDE_DURATION = timedelta(minutes=1)
WATERMARK_DELAY = "10 minutes"
DASHBOARD_STATUSES = ("completed", "pending")

# Spark interval strings for the durations above (kept next to them so they cannot diverge).
_WINDOW = "5 minutes"
_SLIDE = "1 minute"

DASHBOARD_KEY_COLUMNS = ("window_start", "category")
"""The upsert key of `gold.dashboard`: one row per window and category."""


def _windowed(df: DataFrame) -> DataFrame:
    return (
        df.groupBy(F.window(F.col("event_timestamp"), _WINDOW, _SLIDE), F.col("category"))
        .agg(
            F.count("transaction_id").alias("txn_count"),
            F.sum("total_amount").alias("window_revenue"),
            F.avg("total_amount").alias("avg_order_value"),
            F.sum(F.when(F.col("is_fraudulent") == F.lit(True), 1).otherwise(0)).alias(
                "fraud_alerts"
            ),
            F.approx_count_distinct("customer_id").alias("approx_unique_customers"),
        )
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "category",
            "txn_count",
            "window_revenue",
            "avg_order_value",
            "fraud_alerts",
            "approx_unique_customers",
        )
    )


def _dashboard_rows(df: DataFrame) -> DataFrame:
    return df.filter(F.col("transaction_status").isin(*DASHBOARD_STATUSES))


@documents(REALTIME_DASHBOARD)
def realtime_dashboard(stream_df: DataFrame) -> DataFrame:
    """Streaming sliding-window dashboard metrics per category.

    Takes the parsed transaction stream (event_timestamp as TimestampType). Completed and
    pending transactions, 10-minute watermark on event_timestamp, 5-minute windows sliding
    by 1 minute, so every event lands in exactly five windows. Unordered (streaming).
    """
    return _windowed(_dashboard_rows(stream_df).withWatermark("event_timestamp", WATERMARK_DELAY))


@documents(REALTIME_DASHBOARD)
def dashboard_windows(df: DataFrame, *, ordered: bool = True) -> DataFrame:
    """The realtime_dashboard windows for a static DataFrame (no watermark).

    Every window that contains at least one completed or pending row of `df` is returned, so
    windows at the edges of `df`'s time range are partial unless `df` was read with the
    margins given by `affected_windows`. Sorted by window_start, category unless `ordered`
    is false (an upsert gains nothing from a sort but pays a sampling job for it).
    """
    windows = _windowed(_dashboard_rows(df))
    return windows.orderBy("window_start", "category") if ordered else windows


@dataclass(frozen=True)
class AffectedWindows:
    """What to recompute after new events with timestamps in [min_ts, max_ts] arrived.

    Read source rows with `source_start <= event_timestamp < source_end`, run
    `dashboard_windows` on them, keep the windows with
    `first_window_start <= window_start <= last_window_start` (these are complete because
    the source range covers them entirely) and upsert those.
    """

    source_start: datetime
    source_end: datetime
    first_window_start: datetime
    last_window_start: datetime


def _floor_to_slide(ts: datetime) -> datetime:
    # Spark aligns sliding windows to the epoch; a 1-minute slide therefore aligns to whole
    # minutes in any time zone (all zone offsets in use are whole minutes).
    return ts.replace(second=0, microsecond=0)


def affected_windows(min_ts: datetime, max_ts: datetime) -> AffectedWindows:
    """The windows containing any instant of [min_ts, max_ts] and the source rows they need.

    An event at t belongs to the windows starting at floor_minute(t) - 4 min ..
    floor_minute(t); those windows span [floor_minute(t) - 4 min, floor_minute(t) + 5 min).
    """
    if max_ts < min_ts:
        raise ValueError(f"max_ts {max_ts} is before min_ts {min_ts}")
    first = _floor_to_slide(min_ts) - (WINDOW_DURATION - SLIDE_DURATION)
    last = _floor_to_slide(max_ts)
    return AffectedWindows(
        source_start=first,
        source_end=last + WINDOW_DURATION,
        first_window_start=first,
        last_window_start=last,
    )


def merge_spans(spans: list[AffectedWindows]) -> list[AffectedWindows]:
    """Coalesce spans whose window ranges overlap or touch, sorted by start.

    Several micro-batches' spans are recomputed in one pass; disjoint ones stay apart so a
    stray old row does not drag the whole gap between it and the present into the pass.
    """
    merged: list[AffectedWindows] = []
    for span in sorted(spans, key=lambda s: s.first_window_start):
        last = merged[-1] if merged else None
        if last is not None and span.first_window_start <= last.last_window_start + SLIDE_DURATION:
            if span.last_window_start > last.last_window_start:
                merged[-1] = AffectedWindows(
                    source_start=last.source_start,
                    source_end=span.source_end,
                    first_window_start=last.first_window_start,
                    last_window_start=span.last_window_start,
                )
        else:
            merged.append(span)
    return merged


def windows_in_spans(df: DataFrame, spans: list[AffectedWindows]) -> DataFrame:
    """The complete dashboard windows of the (disjoint) spans, computed from `df`, the stored
    rows, in one pass; unordered. When `df` has `event_date`, it is filtered first so a
    partitioned table is pruned to the spans' days."""
    if not spans:
        raise ValueError("no spans to recompute")

    def any_of(condition: Callable[[AffectedWindows], Column]) -> Column:
        return reduce(operator.or_, (condition(span) for span in spans))

    if "event_date" in df.columns:
        day = F.col("event_date")
        df = df.where(any_of(lambda s: day.between(F.lit(s.source_start.date()),
                                                   F.lit(s.source_end.date()))))
    ts = F.col("event_timestamp")
    source = df.where(any_of(lambda s: (ts >= F.lit(s.source_start)) & (ts < F.lit(s.source_end))))
    return dashboard_windows(source, ordered=False).where(F.expr(window_start_predicate(spans)))


def window_start_predicate(spans: list[AffectedWindows]) -> str:
    """SQL selecting the window starts the spans cover. `windows_in_spans` filters with it,
    and the dashboard table's replaceWhere uses it, so the two cannot drift apart."""
    if not spans:
        raise ValueError("no spans")
    return " OR ".join(
        f"(window_start >= TIMESTAMP'{_utc_literal(s.first_window_start)}' AND "
        f"window_start <= TIMESTAMP'{_utc_literal(s.last_window_start)}')"
        for s in spans)


def _utc_literal(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "Z"
