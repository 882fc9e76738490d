"""What the four gold tables share: their spec, the epoch-aligned windows, and the metric
expressions whose definitions must not drift between tables (revenue, rates)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from worker.storage import StoragePaths

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

WINDOW_START = "window_start"
WINDOW_END = "window_end"
UPDATED_AT = "updated_at"
COMPLETED = "completed"
ONLINE_STORE = "online"  # the store_activity key of transactions without a store_id


@dataclass(frozen=True)
class GoldSpec:
    name: str                             # logical name (contracts.tables)
    path: Callable[[StoragePaths], Path]  # where it lives
    size: timedelta                       # window length
    slide: timedelta                      # window step (== size: tumbling)
    keys: tuple[str, ...]                 # group columns besides the window
    # The fraud scores of rows up to the velocity window after a changed row can change,
    # so a table that reads them recomputes that much further.
    widen_by_velocity: bool = False


def windowed(silver: DataFrame, spec: GoldSpec) -> DataFrame:
    """`silver` with `window_start`/`window_end` of every window (of the spec's size and
    slide, aligned to the epoch) that holds the row's event time: a row appears once per
    window, so three times in a 15-minute window sliding every 5 minutes."""
    from pyspark.sql import functions as F

    window = F.window("event_timestamp", _duration(spec.size), _duration(spec.slide))
    return (silver.withColumn("_window", window)
            .withColumn(WINDOW_START, F.col("_window.start"))
            .withColumn(WINDOW_END, F.col("_window.end"))
            .drop("_window"))


def revenue() -> Column:
    """Sum of total_amount over completed transactions; 0.0 when there are none."""
    from pyspark.sql import functions as F

    completed = F.when(F.col("transaction_status") == COMPLETED, F.col("total_amount"))
    return F.coalesce(F.sum(completed), F.lit(0.0)).cast("double")


def count_where(condition: Column) -> Column:
    """Rows where `condition` is true (null counts as false), as a long."""
    from pyspark.sql import functions as F

    return F.count(F.when(condition, F.lit(1))).cast("long")


def rate_pct(count: Column, total: Column) -> Column:
    """100 x count / total, rounded half-up to 2 decimals, computed in decimals.

    Both operands are decimal(20, 0), so Spark keeps 18 fractional digits in the quotient
    (with decimal(38, 12) operands it would keep only 6) before rounding: 1/8 -> 12.5,
    1/32 -> 3.125 -> 3.13, where double arithmetic could round 3.125 either way.
    """
    from pyspark.sql import functions as F

    exact = (count * F.lit(100)).cast("decimal(20,0)") / total.cast("decimal(20,0)")
    return F.round(exact, 2).cast("double")


def distinct(column: str) -> Column:
    """Exact count of the distinct non-null values (countDistinct skips nulls)."""
    from pyspark.sql import functions as F

    return F.countDistinct(F.col(column)).cast("long")


def finish(frame: DataFrame, spec: GoldSpec, metrics: list[str]) -> DataFrame:
    """The table's columns in order, `updated_at` last (one instant for the whole write)."""
    from pyspark.sql import functions as F

    return frame.select(WINDOW_START, WINDOW_END, *spec.keys, *metrics,
                        F.current_timestamp().alias(UPDATED_AT))


def _duration(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())} seconds"
