"""The dashboard windows: static helper, streaming form, affected-window ranges."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from worker.analytics import (
    DASHBOARD_KEY_COLUMNS,
    OUTPUT_COLUMNS,
    REALTIME_DASHBOARD,
    affected_windows,
    dashboard_windows,
    merge_spans,
    realtime_dashboard,
    window_start_predicate,
    windows_in_spans,
)

from .data import TRANSACTION_SCHEMA, Row, make_row

pytestmark = pytest.mark.spark

MINUTE = timedelta(minutes=1)
T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
WindowKey = tuple[datetime, str]


def event(
    n: int,
    ts: datetime,
    product_id: str,
    customer: str,
    status: str,
    price: float,
    fraud: bool | None,
) -> Row:
    return make_row(
        random.Random(n),
        n,
        ts=ts,
        customer_id=customer,
        tier=None,
        product_id=product_id,
        status=status,
        quantity=1,
        unit_price=price,
        discount=None,
        is_fraudulent=fraud,
        fraud_score=None,
    )


# SKU-001 is electronics, SKU-002 clothing, SKU-008 books (see data.PRODUCTS).
HAND_EVENTS: list[Row] = [
    event(1, T0 + timedelta(minutes=2, seconds=30), "SKU-001", "A", "completed", 100.0, True),
    event(
        2,
        T0 + timedelta(minutes=2, seconds=59, microseconds=999_999),
        "SKU-001",
        "B",
        "pending",
        50.5,
        False,
    ),
    # Exactly on a minute boundary: belongs to windows starting 10:01 .. 10:05.
    event(3, T0 + timedelta(minutes=5), "SKU-001", "A", "completed", 10.25, None),
    event(4, T0 + timedelta(minutes=4, seconds=10), "SKU-002", "C", "completed", 7.0, None),
    event(5, T0 + timedelta(minutes=3), "SKU-001", "D", "failed", 999.0, True),  # excluded
    event(6, T0 + timedelta(minutes=3), "SKU-002", "D", "refunded", 999.0, True),  # excluded
    event(7, T0 + timedelta(minutes=3), "SKU-002", "E", "chargeback", 999.0, False),  # excl.
    event(8, T0 + timedelta(hours=1, minutes=30), "SKU-008", "F", "completed", 12.0, True),
    event(9, T0 + timedelta(minutes=9, seconds=59), "SKU-001", "B", "pending", 3.5, True),
]


def containing_windows(ts: datetime) -> list[datetime]:
    """The five 5-minute windows, sliding by 1 minute, that contain `ts` (start <= ts < end)."""
    floor = ts.replace(second=0, microsecond=0)
    return [floor - k * MINUTE for k in range(4, -1, -1)]


def reference(rows: list[Row]) -> dict[WindowKey, dict[str, Any]]:
    groups: dict[WindowKey, list[Row]] = defaultdict(list)
    for r in rows:
        if r["transaction_status"] in ("completed", "pending"):
            for start in containing_windows(r["event_timestamp"]):
                groups[(start, r["category"])].append(r)
    return {
        key: {
            "window_end": key[0] + timedelta(minutes=5),
            "txn_count": len(rs),
            "window_revenue": math.fsum(r["total_amount"] for r in rs),
            "avg_order_value": math.fsum(r["total_amount"] for r in rs) / len(rs),
            "fraud_alerts": sum(r["is_fraudulent"] is True for r in rs),
            "unique_customers": len({r["customer_id"] for r in rs}),
        }
        for key, rs in groups.items()
    }


def as_utc(ts: datetime) -> datetime:
    # Spark hands back naive local-time datetimes; turn them into the instant they denote.
    return datetime.fromtimestamp(ts.timestamp(), tz=UTC)


def by_key(rows: list[dict[str, Any]]) -> dict[WindowKey, dict[str, Any]]:
    out = {(as_utc(r["window_start"]), r["category"]): r for r in rows}
    assert len(out) == len(rows), "one row per (window_start, category)"
    return out


def assert_matches(
    actual_rows: list[dict[str, Any]], expected: dict[WindowKey, dict[str, Any]]
) -> None:
    actual = by_key(actual_rows)
    assert set(actual) == set(expected)
    for key, e in expected.items():
        a = actual[key]
        assert as_utc(a["window_end"]) == e["window_end"], key
        assert a["txn_count"] == e["txn_count"], key
        assert a["fraud_alerts"] == e["fraud_alerts"], key
        assert a["window_revenue"] == pytest.approx(e["window_revenue"], rel=1e-9), key
        assert a["avg_order_value"] == pytest.approx(e["avg_order_value"], rel=1e-9), key
        exact = e["unique_customers"]
        # HyperLogLog++ (rsd 0.05) is exact in practice for a handful of values; allow its
        # documented error (3 sigma) for larger sets.
        tolerance = 0 if exact <= 10 else math.ceil(3 * 0.05 * exact)
        assert abs(a["approx_unique_customers"] - exact) <= tolerance, key


def frame(spark: SparkSession, rows: list[Row]) -> DataFrame:
    return spark.createDataFrame(rows, schema=TRANSACTION_SCHEMA)


def collect(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.collect()]


def test_hand_built_windows(spark: SparkSession) -> None:
    result = collect(dashboard_windows(frame(spark, HAND_EVENTS)))
    expected = reference(HAND_EVENTS)
    assert_matches(result, expected)

    # Spot checks written out by hand, independent of the reference helper.
    got = by_key(result)
    at = T0 + 2 * MINUTE  # window [10:02, 10:07): events 1, 2, 3 (electronics)
    assert got[(at, "electronics")]["txn_count"] == 3
    assert got[(at, "electronics")]["window_revenue"] == pytest.approx(160.75)
    assert got[(at, "electronics")]["fraud_alerts"] == 1
    assert got[(at, "electronics")]["approx_unique_customers"] == 2
    assert (T0 - 3 * MINUTE, "electronics") not in got  # 10:02:30 is not in [09:57, 10:02)
    assert got[(T0 + 5 * MINUTE, "electronics")]["txn_count"] == 2  # events 3 and 9
    assert (T0 + 6 * MINUTE, "electronics") in got  # event 9 only
    assert got[(T0 + 6 * MINUTE, "electronics")]["txn_count"] == 1

    # Each included event appears in exactly the five windows containing it.
    included = [r for r in HAND_EVENTS if r["transaction_status"] in ("completed", "pending")]
    assert sum(r["txn_count"] for r in result) == 5 * len(included)
    # Excluded statuses leave no trace (their 999.0 amounts would show up in revenue).
    assert all(r["window_revenue"] < 999 for r in result)

    # Sorted by window_start, then category.
    keys = [(as_utc(r["window_start"]), r["category"]) for r in result]
    assert keys == sorted(keys)


def test_random_rows_windows(spark: SparkSession, rows: list[Row], transactions: DataFrame) -> None:
    assert_matches(collect(dashboard_windows(transactions)), reference(rows))


def test_schema_matches_output_columns(spark: SparkSession) -> None:
    df = frame(spark, HAND_EVENTS)
    expected = [(c, t) for c, t, _ in OUTPUT_COLUMNS[REALTIME_DASHBOARD]]
    for fn in (dashboard_windows, realtime_dashboard):
        actual = [(f.name, f.dataType.simpleString()) for f in fn(df).schema.fields]
        assert actual == expected, fn.__name__
        assert "Output columns:" in (fn.__doc__ or "")
    assert set(DASHBOARD_KEY_COLUMNS) <= {c for c, _ in expected}


def test_streaming_matches_static(spark: SparkSession, tmp_path: Path) -> None:
    source = tmp_path / "source"
    frame(spark, HAND_EVENTS).write.parquet(str(source))
    stream = spark.readStream.schema(TRANSACTION_SCHEMA).parquet(str(source))
    dashboard = realtime_dashboard(stream)
    assert dashboard.isStreaming
    # The 10-minute watermark is part of the plan (append mode would be refused without it).
    assert "EventTimeWatermark" in dashboard._jdf.queryExecution().logical().toString()

    query = (
        dashboard.writeStream.format("memory")
        .queryName("analytics_dashboard_test")
        .outputMode("update")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    try:
        query.awaitTermination(120)
        assert query.exception() is None
        streamed = collect(spark.table("analytics_dashboard_test"))
    finally:
        query.stop()
    assert_matches(streamed, reference(HAND_EVENTS))


def test_affected_windows_ranges() -> None:
    t = datetime(2025, 1, 15, 10, 2, 30, 500, tzinfo=UTC)
    w = affected_windows(t, t)
    assert w.first_window_start == datetime(2025, 1, 15, 9, 58, tzinfo=UTC)
    assert w.last_window_start == datetime(2025, 1, 15, 10, 2, tzinfo=UTC)
    assert w.source_start == w.first_window_start
    assert w.source_end == datetime(2025, 1, 15, 10, 7, tzinfo=UTC)
    boundary = datetime(2025, 1, 15, 10, 5, tzinfo=UTC)
    assert affected_windows(boundary, boundary).first_window_start == boundary - 4 * MINUTE
    with pytest.raises(ValueError):
        affected_windows(t, t - MINUTE)


def test_incremental_recompute_equals_full(spark: SparkSession, transactions: DataFrame) -> None:
    # What the stream manager does: new rows arrived in [lo, hi]; recompute only the windows
    # they touch from the rows in the source range; those must equal a full recomputation.
    lo = datetime(2025, 1, 15, 9, 10, 7, tzinfo=UTC)
    hi = datetime(2025, 1, 15, 13, 3, 0, tzinfo=UTC)
    w = affected_windows(lo, hi)
    source = transactions.filter(
        (F.col("event_timestamp") >= F.lit(w.source_start))
        & (F.col("event_timestamp") < F.lit(w.source_end))
    )
    in_range = (F.col("window_start") >= F.lit(w.first_window_start)) & (
        F.col("window_start") <= F.lit(w.last_window_start)
    )
    partial = collect(dashboard_windows(source).filter(in_range))
    full = collect(dashboard_windows(transactions).filter(in_range))
    assert partial, "the chosen range must contain windows"
    assert partial == full


def test_merge_spans_coalesces_touching_ranges_and_keeps_gaps() -> None:
    at = lambda minutes: T0 + minutes * MINUTE  # noqa: E731
    a = affected_windows(at(0), at(3))           # windows 09:56 .. 10:03
    b = affected_windows(at(8), at(9))           # 10:04 .. 10:09: touches a
    c = affected_windows(at(1), at(2))           # inside a
    far = affected_windows(at(120), at(121))     # two hours later: stays apart
    merged = merge_spans([far, b, c, a])
    assert len(merged) == 2
    first, second = merged
    assert (first.first_window_start, first.last_window_start) == (a.first_window_start,
                                                                    b.last_window_start)
    assert (first.source_start, first.source_end) == (a.source_start, b.source_end)
    assert second == far
    assert merge_spans([]) == []
    assert merge_spans([a, a]) == [a]


def test_recompute_over_merged_spans_equals_full(spark: SparkSession,
                                                 transactions: DataFrame) -> None:
    # The dashboard refresher recomputes several micro-batches' spans in one pass.
    spans = merge_spans([
        affected_windows(datetime(2025, 1, 15, 9, 10, tzinfo=UTC),
                         datetime(2025, 1, 15, 9, 40, tzinfo=UTC)),
        affected_windows(datetime(2025, 1, 15, 12, 0, tzinfo=UTC),
                         datetime(2025, 1, 15, 12, 30, tzinfo=UTC)),
    ])
    assert len(spans) == 2
    in_windows = F.lit(False)
    for w in spans:
        in_windows = in_windows | F.col("window_start").between(F.lit(w.first_window_start),
                                                                F.lit(w.last_window_start))
    key = lambda row: (row["window_start"], row["category"])  # noqa: E731
    partial = sorted(collect(windows_in_spans(transactions, spans)), key=key)
    full = sorted(collect(dashboard_windows(transactions).filter(in_windows)), key=key)
    assert partial, "the chosen spans must contain windows"
    assert partial == full


def test_window_start_predicate_selects_exactly_the_spans_windows(spark: SparkSession) -> None:
    # The dashboard table's replaceWhere (and windows_in_spans' filter) must select the
    # spans' window starts, ends included, and nothing else (those would be deleted).
    spans = merge_spans([affected_windows(T0, T0 + 2 * MINUTE),
                         affected_windows(T0 + 90 * MINUTE, T0 + 90 * MINUTE)])
    starts = [T0 + k * MINUTE for k in range(-10, 100)]
    frame_ = spark.createDataFrame([(s,) for s in starts], "window_start TIMESTAMP")
    chosen = {r.window_start.replace(tzinfo=UTC)
              for r in frame_.where(F.expr(window_start_predicate(spans))).collect()}
    want = {s for s in starts
            if any(w.first_window_start <= s <= w.last_window_start for w in spans)}
    assert chosen == want
    assert min(want) == T0 - 4 * MINUTE and T0 + 90 * MINUTE in want
